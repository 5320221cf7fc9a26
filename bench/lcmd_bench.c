/*
 * lcmd's memory: VmRSS idle, and again once a load is over — API calls,
 * big requests (1 MiB session.send messages), and connections that each
 * hold 15 MiB of a message that never finishes (issue 10 item 3: the
 * daemons kept such memory resident for good).  The goal is to return
 * under twice the idle size; lcmd trims its heap a second after the churn.
 *
 *   lcmd_bench BIN_DIR
 *
 * Prints a markdown table and "BENCH <name> <value> <unit>" lines.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench/benchlib.h"
#include "common/log.h"
#include "common/xmalloc.h"
#include "proto/bclient.h"

#define CALLS		5000		/* project.list and session.list */
#define BIG_SENDS	200		/* session.send of BIG_SEND bytes */
#define BIG_SEND	(1u << 20)
#define BIG_CONNS	40		/* connections holding an unfinished message */
#define BIG_BYTES	(15u << 20)
#define SETTLE_MS	300
#define TRIM_WAIT_MS	3000		/* a trim comes after 1 s without churn */

static struct {
	char dir[32];
	pid_t self, storaged, lcmd;
	int done;
} bench;

static void
cleanup(void)
{
	if (getpid() != bench.self)
		return;
	if (bench.lcmd > 0)
		bench_daemon_stop(bench.lcmd);
	if (bench.storaged > 0)
		bench_daemon_stop(bench.storaged);
	if (bench.done)
		bench_rmrf(bench.dir);
	else if (bench.dir[0] != '\0')
		fprintf(stderr, "lcmd_bench: kept %s (logs: *.log)\n", bench.dir);
}

static void
sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

/* session.send of a big message to a session that does not exist. */
static void
big_sends(struct bclient *bc)
{
	struct bclient_msg res;
	struct rpc_error err;
	struct rpc_buf b;
	char *text = xmalloc(BIG_SEND);
	int i;

	memset(text, 'm', BIG_SEND);
	rpc_buf_init(&b);
	msgpack_pack_map(&b.pk, 2);
	rpc_pack_kv_str(&b.pk, "id", "nobody-1");
	rpc_pack_str(&b.pk, "message");
	msgpack_pack_str(&b.pk, BIG_SEND);
	msgpack_pack_str_body(&b.pk, text, BIG_SEND);
	for (i = 0; i < BIG_SENDS; i++) {
		if (bclient_call(bc, "session.send", b.sb.data, b.sb.size, 10000,
		    &res, &err) == 0)
			fatalx("session.send to no session succeeded");
		if (err.code != RPC_NOT_FOUND)
			fatalx("session.send: %s: %s", rpc_code_name(err.code),
			    err.message);
	}
	rpc_buf_free(&b);
	free(text);
}

int
main(int argc, char **argv)
{
	char data[64], run[64], logf[80], sock[96], err[256];
	struct bclient_msg res;
	struct bclient *bc;
	long idle, after, peak;
	int i;

	log_init("lcmd_bench", 0);
	bench_args(argc, argv, "lcmd_bench BIN_DIR",
	    "lcmd's memory, idle and after a load of calls and big messages");
	signal(SIGPIPE, SIG_IGN);
	bench.self = getpid();
	snprintf(bench.dir, sizeof(bench.dir), "/tmp/aoL.XXXXXX");
	if (mkdtemp(bench.dir) == NULL)
		fatal("mkdtemp");
	atexit(cleanup);

	snprintf(data, sizeof(data), "%s/data", bench.dir);
	snprintf(run, sizeof(run), "%s/run", bench.dir);
	snprintf(logf, sizeof(logf), "%s/daemons.log", bench.dir);
	snprintf(sock, sizeof(sock), "%s/lcmd.sock", run);
	bench.storaged = bench_daemon_start(argv[1], "storaged", data, run, NULL,
	    logf);
	{
		static const char *const flags[] = { "--notify-desktop=off", NULL };

		bench.lcmd = bench_daemon_start(argv[1], "lcmd", data, run, flags,
		    logf);
	}
	if ((bc = bclient_connect(sock, err, sizeof(err))) == NULL)
		fatalx("%s", err);
	bench_call(bc, "project.list", NULL, &res);	/* connected to storaged */
	bclient_msg_free(&res);
	sleep_ms(SETTLE_MS);
	idle = bench_rss_kib(bench.lcmd, NULL);

	for (i = 0; i < CALLS; i++) {
		bench_call(bc, i % 2 ? "project.list" : "session.list", NULL, &res);
		bclient_msg_free(&res);
	}
	big_sends(bc);
	bench_unfinished_messages(sock, BIG_CONNS, BIG_BYTES);
	sleep_ms(TRIM_WAIT_MS);
	after = bench_rss_kib(bench.lcmd, &peak);
	bclient_free(bc);
	bench.done = 1;

	printf("| figure | value |\n|---|---|\n");
	printf("| lcmd VmRSS idle / after the load (%d calls, %d session.send of "
	    "%u KiB, %d connections each holding %u MiB of an unfinished "
	    "message), %.1f s later / peak | %ld / %ld / %ld KiB |\n", CALLS,
	    BIG_SENDS, BIG_SEND >> 10, BIG_CONNS, BIG_BYTES >> 20,
	    TRIM_WAIT_MS / 1000.0, idle, after, peak);
	printf("| ratio after the load / idle (goal < 2) | %.2f |\n",
	    (double)after / (double)idle);
	printf("BENCH rss_kib_lcmd_idle %ld KiB\n", idle);
	printf("BENCH rss_kib_lcmd_after_load %ld KiB\n", after);
	printf("BENCH rss_kib_lcmd_peak %ld KiB\n", peak);
	return 0;
}
