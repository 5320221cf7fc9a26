#!/bin/sh
# make run: the daemon set in the foreground, on the default data dir (or
# $AO_DATA_DIR), until Ctrl-C.  Starts ao-storaged, then ao-cdcd and ao-lcmd,
# each once the one before answers on its socket, and stops them in reverse
# order by pid.  ao-supervisor will take this job over (DESIGN.md §8).
set -eu
bin=${1:-bin}
[ $# -gt 0 ] && shift
pids=""
# The readiness check must look where the daemons listen.
aoflags=""
for a in "$@"; do
	case $a in
	--data-dir=*|--runtime-dir=*) aoflags="$aoflags $a" ;;
	esac
done

stop() {
	trap - INT TERM EXIT
	for pid in $pids; do
		kill -TERM "$pid" 2>/dev/null || true
	done
	for pid in $pids; do
		wait "$pid" 2>/dev/null || true
	done
}
trap stop INT TERM EXIT

start() {
	name=$1
	shift
	"$bin/ao-$name" "$@" &
	pid=$!
	pids="$pid $pids"
	# Up to 10 s for the daemon to answer `hello` on its socket.
	i=0
	# shellcheck disable=SC2086
	while ! "$bin/ao" $aoflags --timeout 500 hello "$name" >/dev/null 2>&1; do
		if ! kill -0 "$pid" 2>/dev/null; then
			echo "run: ao-$name exited; see its messages above" >&2
			exit 1
		fi
		i=$((i + 1))
		if [ "$i" -ge 100 ]; then
			echo "run: ao-$name did not answer within 10 s" >&2
			exit 1
		fi
		sleep 0.1
	done
	echo "run: ao-$name is up" >&2
}

start storaged "$@"
start cdcd "$@"
start lcmd "$@"
echo "run: the daemon set is up; try: $bin/ao session ls, $bin/ao watch (Ctrl-C stops)" >&2
wait
