/*
 * Protocol-layer benchmark: the round trip of a `ping` through the real
 * server stack against a raw Unix socket round trip measured in the same run,
 * and pipelined call throughput through the event-driven client.
 *
 *   rpc_bench HELPER_DIR
 *
 * Prints a markdown table and "BENCH <name> <value> <unit>" lines.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <event2/event.h>

#include "bench/benchlib.h"
#include "common/aotime.h"
#include "common/log.h"
#include "proto/bclient.h"
#include "proto/client.h"

#define RTT_N		20000
#define PIPE_N		200000
#define PIPE_WINDOW	256

static double
rpc_rtt_us(const char *sock)
{
	char err[256];
	struct bclient *bc = bclient_connect(sock, err, sizeof(err));
	struct bclient_msg res;
	struct rpc_error rerr;
	int64_t t0;
	int i;

	if (bc == NULL)
		fatalx("%s", err);
	t0 = aotime_mono_us();
	for (i = 0; i < RTT_N; i++) {
		if (bclient_call(bc, "ping", NULL, 0, 5000, &res, &rerr) == -1)
			fatalx("ping: %s", rerr.message);
		bclient_msg_free(&res);
	}
	t0 = aotime_mono_us() - t0;
	bclient_free(bc);
	return (double)t0 / RTT_N;
}

struct pipe_state {
	struct client *c;
	struct event_base *base;
	int sent, done;
	char params[16];
	size_t plen;
};

static void issue(struct pipe_state *);

static void
on_reply(void *arg, const struct rpc_error *err, const msgpack_object *result)
{
	struct pipe_state *ps = arg;

	(void)result;
	if (err != NULL)
		fatalx("echo: %s", err->message);
	if (++ps->done == PIPE_N)
		event_base_loopbreak(ps->base);
	else
		issue(ps);
}

static void
issue(struct pipe_state *ps)
{
	if (ps->sent < PIPE_N) {
		ps->sent++;
		client_call(ps->c, "echo", ps->params, ps->plen, 10000, on_reply, ps);
	}
}

static void
on_connect(struct client *c, void *arg)
{
	struct pipe_state *ps = arg;
	int i;

	(void)c;
	for (i = 0; i < PIPE_WINDOW; i++)
		issue(ps);
}

static double
rpc_pipelined_per_s(const char *sock)
{
	static const struct client_cbs cbs = { on_connect, NULL, NULL };
	struct pipe_state ps = { 0 };
	int64_t t0;

	ps.base = event_base_new();
	ps.params[0] = (char)0x81;	/* {"i": 1} */
	ps.params[1] = (char)0xa1;
	ps.params[2] = 'i';
	ps.params[3] = 0x01;
	ps.plen = 4;
	t0 = aotime_mono_us();
	ps.c = client_new(ps.base, sock, &cbs, &ps, NULL);
	event_base_dispatch(ps.base);
	t0 = aotime_mono_us() - t0;
	client_free(ps.c);
	event_base_loop(ps.base, EVLOOP_NONBLOCK);
	event_base_free(ps.base);
	return PIPE_N / ((double)t0 / 1e6);
}

int
main(int argc, char **argv)
{
	char dir[] = "/tmp/aoB.XXXXXX", sock[128], helper[4096];
	char fdarg[16];
	double raw, rtt, calls;
	int p[2];
	pid_t srv;

	log_init("rpc_bench", 0);
	bench_args(argc, argv, "rpc_bench HELPER_DIR",
	    "msgpack-rpc round trip against a raw Unix socket round trip");
	signal(SIGPIPE, SIG_IGN);
	if (mkdtemp(dir) == NULL)
		fatal("mkdtemp");
	snprintf(sock, sizeof(sock), "%s/b.sock", dir);
	snprintf(helper, sizeof(helper), "%s/rpc-testd", argv[1]);
	if (pipe(p) == -1)
		fatal("pipe");
	if ((srv = fork()) == 0) {
		close(p[0]);
		snprintf(fdarg, sizeof(fdarg), "%d", p[1]);
		execl(helper, helper, sock, "--ready-fd", fdarg, (char *)NULL);
		_exit(127);
	}
	close(p[1]);
	if (read(p[0], fdarg, 1) != 1)
		fatalx("rpc-testd did not start");
	close(p[0]);

	raw = bench_raw_rtt_us(RTT_N);
	rtt = rpc_rtt_us(sock);
	calls = rpc_pipelined_per_s(sock);
	kill(srv, SIGTERM);
	waitpid(srv, NULL, 0);
	rmdir(dir);

	printf("| figure | value |\n|---|---|\n");
	printf("| raw Unix socket round trip (32 B) | %.2f us |\n", raw);
	printf("| rpc ping round trip (bclient → server) | %.2f us |\n", rtt);
	printf("| ratio rpc / raw round trip | %.2f |\n", rtt / raw);
	printf("| pipelined echo calls (window %d) | %.0f /s |\n", PIPE_WINDOW, calls);
	printf("BENCH raw_socket_rtt_us %.2f us\n", raw);
	printf("BENCH rpc_ping_rtt_us %.2f us\n", rtt);
	printf("BENCH ratio_rpc_vs_raw_rtt %.2f x\n", rtt / raw);
	printf("BENCH rpc_pipelined_calls_per_s %.0f calls/s\n", calls);
	return 0;
}
