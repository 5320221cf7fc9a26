#include "bench/benchlib.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "common/aotime.h"
#include "common/log.h"
#include "common/sock.h"
#include "common/xmalloc.h"
#include "proto/client.h"

#define CALL_MS	10000

void
bench_args(int argc, char **argv, const char *usage, const char *what)
{
	if (argc == 2 && (strcmp(argv[1], "-h") == 0 ||
	    strcmp(argv[1], "--help") == 0)) {
		printf("usage: %s\n%s.\nRun by `make bench`; prints BENCH lines.\n",
		    usage, what);
		exit(0);
	}
	if (argc != 2 || argv[1][0] == '-') {
		fprintf(stderr, "usage: %s\n", usage);
		exit(2);
	}
}

int64_t
bench_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int
cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return (x > y) - (x < y);
}

/* The p-th percentile of sorted v[0..n), in microseconds. */
static double
percentile_us(const int64_t *v, size_t n, int p)
{
	size_t i = n * (size_t)p / 100;

	if (i >= n)
		i = n - 1;
	return (double)v[i] / 1000.0;
}

void
bench_percentiles(int64_t *v, size_t n, double *p50, double *p99)
{
	qsort(v, n, sizeof(*v), cmp_i64);
	*p50 = percentile_us(v, n, 50);
	*p99 = percentile_us(v, n, 99);
}

static int
rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)ftw;
	if (flag == FTW_DP)
		rmdir(path);
	else
		unlink(path);
	return 0;
}

void
bench_rmrf(const char *dir)
{
	nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

void
bench_call(struct bclient *bc, const char *method, const struct rpc_buf *params,
    struct bclient_msg *res)
{
	struct rpc_error err;

	if (bclient_call(bc, method, params != NULL ? params->sb.data : NULL,
	    params != NULL ? params->sb.size : 0, CALL_MS, res, &err) == -1)
		fatalx("%s: %s", method, err.message);
}

void
bench_populate(const char *sock, char (*ids)[BENCH_ID_LEN], int n)
{
	struct bclient_msg res;
	struct rpc_buf b;
	struct bclient *bc;
	char err[256];
	int i;

	if ((bc = bclient_connect(sock, err, sizeof(err))) == NULL)
		fatalx("%s", err);
	rpc_buf_init(&b);
	msgpack_pack_map(&b.pk, 2);
	rpc_pack_kv_str(&b.pk, "id", "bench");
	rpc_pack_kv_str(&b.pk, "path", "/nonexistent/bench");
	bench_call(bc, "project.upsert", &b, &res);
	bclient_msg_free(&res);
	for (i = 0; i < n; i++) {
		rpc_buf_reset(&b);
		msgpack_pack_map(&b.pk, 1);
		rpc_pack_kv_str(&b.pk, "project_id", "bench");
		bench_call(bc, "session.create", &b, &res);
		if (rpc_obj_str(rpc_map_get(res.m.result, "id"), ids[i],
		    BENCH_ID_LEN) == -1)
			fatalx("session.create returned no id");
		bclient_msg_free(&res);
	}
	rpc_buf_free(&b);
	bclient_free(bc);
}

const char *
bench_next_activity(int *state)
{
	*state = *state == 1 ? 2 : 1;
	return *state == 1 ? "active" : "idle";
}

void
bench_pack_update(struct rpc_buf *b, const char *id, int *state)
{
	rpc_buf_reset(b);
	msgpack_pack_map(&b->pk, 3);
	rpc_pack_kv_str(&b->pk, "id", id);
	rpc_pack_kv_str(&b->pk, "activity_state", bench_next_activity(state));
	rpc_pack_kv_i64(&b->pk, "activity_at", aotime_wall_ms());
}

double
bench_raw_rtt_us(int n)
{
	char buf[32] = { 0 };
	int sv[2], i;
	pid_t pid;
	int64_t t0;

	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == -1)
		fatal("socketpair");
	if ((pid = fork()) == 0) {
		close(sv[0]);
		while (read(sv[1], buf, sizeof(buf)) > 0)
			if (write(sv[1], buf, sizeof(buf)) != sizeof(buf))
				_exit(1);
		_exit(0);
	}
	close(sv[1]);
	t0 = aotime_mono_us();
	for (i = 0; i < n; i++) {
		if (write(sv[0], buf, sizeof(buf)) != sizeof(buf) ||
		    read(sv[0], buf, sizeof(buf)) <= 0)
			fatal("raw round trip");
	}
	t0 = aotime_mono_us() - t0;
	close(sv[0]);
	waitpid(pid, NULL, 0);
	return (double)t0 / n;
}

/* One client of bench_write_storm. */
struct storm {
	struct client *c;
	struct event_base *base;
	int idx, sent, done;
	int per_client, window, spc;
	char (*ids)[BENCH_ID_LEN];
	int *state;
	int *running;
	struct rpc_buf params;
};

static void storm_issue(struct storm *);

static void
storm_reply(void *arg, const struct rpc_error *err, const msgpack_object *result)
{
	struct storm *w = arg;

	(void)result;
	if (err != NULL)
		fatalx("session.update: %s", err->message);
	if (++w->done < w->per_client)
		storm_issue(w);
	else if (--*w->running == 0)
		event_base_loopbreak(w->base);
}

static void
storm_issue(struct storm *w)
{
	int j;

	if (w->sent == w->per_client)
		return;
	j = w->idx * w->spc + w->sent++ % w->spc;
	bench_pack_update(&w->params, w->ids[j], &w->state[j]);
	client_call(w->c, "session.update", w->params.sb.data, w->params.sb.size,
	    CALL_MS, storm_reply, w);
}

static void
storm_connect(struct client *c, void *arg)
{
	struct storm *w = arg;
	int i;

	(void)c;
	for (i = 0; i < w->window; i++)
		storm_issue(w);
}

static void
storm_disconnect(struct client *c, const char *reason, void *arg)
{
	(void)c;
	(void)arg;
	fatalx("ao-storaged went away: %s", reason);
}

void
bench_write_storm(const char *sock, int nclients, int per_client, int window,
    int spc, char (*ids)[BENCH_ID_LEN], int *state, int64_t *t0, int64_t *t1)
{
	static const struct client_cbs cbs = { storm_connect, storm_disconnect,
		NULL };
	struct storm *w = xcalloc((size_t)nclients, sizeof(*w));
	struct event_base *base;
	int i, running = nclients;

	if ((base = event_base_new()) == NULL)
		fatalx("event_base_new failed");
	*t0 = bench_now_ns();
	for (i = 0; i < nclients; i++) {
		w[i].base = base;
		w[i].idx = i;
		w[i].per_client = per_client;
		w[i].window = window;
		w[i].spc = spc;
		w[i].ids = ids;
		w[i].state = state;
		w[i].running = &running;
		rpc_buf_init(&w[i].params);
		w[i].c = client_new(base, sock, &cbs, &w[i], NULL);
	}
	event_base_dispatch(base);
	*t1 = bench_now_ns();
	for (i = 0; i < nclients; i++) {
		client_free(w[i].c);
		rpc_buf_free(&w[i].params);
	}
	event_base_loop(base, EVLOOP_NONBLOCK);
	event_base_free(base);
	free(w);
}

pid_t
bench_daemon_start(const char *bin, const char *name, const char *data,
    const char *run, const char *const extra[], const char *log)
{
	char exe[4096], a_data[4200], a_run[4200], a_fd[32], c;
	const char *argv[32];
	pid_t pid, self = getpid();
	ssize_t n;
	int p[2], fd, i, k = 0;

	snprintf(exe, sizeof(exe), "%s/ao-%s", bin, name);
	snprintf(a_data, sizeof(a_data), "--data-dir=%s", data);
	snprintf(a_run, sizeof(a_run), "--runtime-dir=%s", run);
	if (pipe(p) == -1)
		fatal("pipe");
	snprintf(a_fd, sizeof(a_fd), "--ready-fd=%d", p[1]);
	argv[k++] = exe;
	argv[k++] = a_data;
	argv[k++] = a_run;
	argv[k++] = a_fd;
	for (i = 0; extra != NULL && extra[i] != NULL && k < 31; i++)
		argv[k++] = extra[i];
	argv[k] = NULL;
	if ((pid = fork()) == -1)
		fatal("fork");
	if (pid == 0) {
		close(p[0]);
		if (prctl(PR_SET_PDEATHSIG, SIGTERM) == -1 || getppid() != self)
			_exit(127);
		if ((fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600)) != -1) {
			dup2(fd, STDERR_FILENO);
			close(fd);
		}
		/* Not systemd's child: bind our own socket, notify nobody. */
		unsetenv("LISTEN_FDS");
		unsetenv("LISTEN_PID");
		unsetenv("LISTEN_FDNAMES");
		unsetenv("NOTIFY_SOCKET");
		execv(exe, (char *const *)argv);
		dprintf(STDERR_FILENO, "exec %s: %s\n", exe, strerror(errno));
		_exit(127);
	}
	close(p[1]);
	do
		n = read(p[0], &c, 1);
	while (n == -1 && errno == EINTR);
	close(p[0]);
	if (n != 1)
		fatalx("%s did not start: see %s", exe, log);
	return pid;
}

void
bench_daemon_stop(pid_t pid)
{
	int status;

	kill(pid, SIGTERM);
	if (waitpid(pid, &status, 0) == -1)
		fatal("waitpid");
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		fatalx("daemon %d did not exit cleanly (status %#x)", (int)pid, status);
}

long
bench_rss_kib(pid_t pid, long *hwm)
{
	char path[64], line[256];
	long rss = -1, v;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	if ((f = fopen(path, "r")) == NULL)
		fatal("%s", path);
	if (hwm != NULL)
		*hwm = -1;
	while (fgets(line, sizeof(line), f) != NULL) {
		if (sscanf(line, "VmRSS: %ld kB", &v) == 1)
			rss = v;
		else if (hwm != NULL && sscanf(line, "VmHWM: %ld kB", &v) == 1)
			*hwm = v;
	}
	fclose(f);
	if (rss < 0)
		fatalx("%s: no VmRSS", path);
	return rss;
}

void
bench_unfinished_messages(const char *sock, int nconn, size_t bytes)
{
	/* [0, 1, "ping", [{"x": str32 of 15 MiB …]] */
	static const unsigned char head[] = { 0x94, 0x00, 0x01, 0xa4, 'p', 'i',
		'n', 'g', 0x91, 0x81, 0xa1, 'x', 0xdb, 0x00, 0xf0, 0x00, 0x00 };
	static char chunk[1 << 20];
	char err[256];
	size_t sent;
	ssize_t w;
	int *fd, i;

	fd = xcalloc((size_t)nconn, sizeof(*fd));
	for (i = 0; i < nconn; i++) {
		if ((fd[i] = sock_connect_unix(sock, 0, err, sizeof(err))) == -1)
			fatalx("%s", err);
		if (write(fd[i], head, sizeof(head)) != (ssize_t)sizeof(head))
			continue;	/* closed by the cap meanwhile */
		for (sent = 0; sent < bytes; sent += (size_t)w)
			if ((w = write(fd[i], chunk, bytes - sent < sizeof(chunk) ?
			    bytes - sent : sizeof(chunk))) <= 0)
				break;
	}
	for (i = 0; i < nconn; i++)
		close(fd[i]);
	free(fd);
}