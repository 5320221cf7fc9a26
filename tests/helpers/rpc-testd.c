/*
 * A test server over the real proto/ layer, for the integration tests:
 *
 *   rpc-testd SOCKET [--ready-fd N] [--max-msg BYTES] [--out-cap BYTES]
 *
 * Methods: echo {...} → the params map; sleep {ms, tag?} → {tag} after ms
 * (replies out of order); flood {count, size} → count "blob" notifications
 * then {sent}; notify {n} → n "tick" notifications {i} then {}; stats →
 * {conns, rss_kib}.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "common/aotime.h"
#include "common/log.h"
#include "common/sock.h"
#include "common/xmalloc.h"
#include "proto/server.h"

static struct server *srv;

static void
m_echo(struct peer_req *r, void *arg)
{
	struct rpc_buf b;

	(void)arg;
	rpc_buf_init(&b);
	if (r->params != NULL)
		msgpack_pack_object(&b.pk, *r->params);
	else
		msgpack_pack_map(&b.pk, 0);
	peer_reply(r, b.sb.data, b.sb.size);
	rpc_buf_free(&b);
}

static void
sleep_done(evutil_socket_t fd, short what, void *arg)
{
	struct peer_req *r = arg;
	const msgpack_object *tag = r->udata;
	struct rpc_buf b;

	(void)fd;
	(void)what;
	rpc_buf_init(&b);
	msgpack_pack_map(&b.pk, 1);
	rpc_pack_str(&b.pk, "tag");
	if (tag != NULL)
		msgpack_pack_object(&b.pk, *tag);
	else
		msgpack_pack_nil(&b.pk);
	peer_reply(r, b.sb.data, b.sb.size);
	rpc_buf_free(&b);
}

static void
m_sleep(struct peer_req *r, void *arg)
{
	struct event_base *base = arg;
	struct rpc_params p;
	struct rpc_error err;
	const char *tag = NULL;
	int64_t ms = 0;
	struct timeval tv;

	rpc_error_clear(&err);
	if (rpc_params_init(&p, r->params, r->zone, NULL, &err) == -1 ||
	    rpc_get_i64(&p, "ms", RPC_REQUIRED, &ms) == -1 ||
	    rpc_get_str(&p, "tag", RPC_OPTIONAL, &tag) == -1 ||
	    rpc_params_end(&p) == -1) {
		peer_reply_error(r, &err);
		return;
	}
	r->udata = (void *)rpc_map_get(r->params, "tag");
	aotime_tv(&tv, ms);
	event_base_once(base, -1, EV_TIMEOUT, sleep_done, r, &tv);
}

static void
m_flood(struct peer_req *r, void *arg)
{
	struct rpc_params p;
	struct rpc_error err;
	int64_t count = 0, size = 0, i, sent = 0;
	struct rpc_buf b;
	char *blob;

	(void)arg;
	rpc_error_clear(&err);
	if (rpc_params_init(&p, r->params, r->zone, NULL, &err) == -1 ||
	    rpc_get_i64(&p, "count", RPC_REQUIRED, &count) == -1 ||
	    rpc_get_i64(&p, "size", RPC_REQUIRED, &size) == -1 ||
	    rpc_params_end(&p) == -1) {
		peer_reply_error(r, &err);
		return;
	}
	if (size < 0 || size > 1024 * 1024 || count < 0) {
		peer_reply_errorf(r, RPC_BAD_REQUEST, "size must be 0..1MiB");
		return;
	}
	blob = xcalloc(1, (size_t)size + 1);
	memset(blob, 'x', (size_t)size);
	rpc_buf_init(&b);
	msgpack_pack_map(&b.pk, 1);
	rpc_pack_kv_str(&b.pk, "data", blob);
	for (i = 0; i < count; i++) {
		if (peer_notify(r->peer, "blob", b.sb.data, b.sb.size) == -1)
			break;	/* the output cap closed the connection */
		sent++;
	}
	rpc_buf_reset(&b);
	msgpack_pack_map(&b.pk, 1);
	rpc_pack_kv_i64(&b.pk, "sent", sent);
	peer_reply(r, b.sb.data, b.sb.size);
	rpc_buf_free(&b);
	free(blob);
}

static void
m_notify(struct peer_req *r, void *arg)
{
	struct rpc_params p;
	struct rpc_error err;
	struct rpc_buf b;
	int64_t n = 0, i;

	(void)arg;
	rpc_error_clear(&err);
	if (rpc_params_init(&p, r->params, r->zone, NULL, &err) == -1 ||
	    rpc_get_i64(&p, "n", RPC_REQUIRED, &n) == -1 ||
	    rpc_params_end(&p) == -1) {
		peer_reply_error(r, &err);
		return;
	}
	rpc_buf_init(&b);
	for (i = 0; i < n; i++) {
		rpc_buf_reset(&b);
		msgpack_pack_map(&b.pk, 1);
		rpc_pack_kv_i64(&b.pk, "i", i);
		peer_notify(r->peer, "tick", b.sb.data, b.sb.size);
	}
	rpc_buf_reset(&b);
	msgpack_pack_map(&b.pk, 0);
	peer_reply(r, b.sb.data, b.sb.size);
	rpc_buf_free(&b);
}

static long
rss_kib(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	long kib = -1;

	if (f == NULL)
		return -1;
	while (fgets(line, sizeof(line), f) != NULL)
		if (sscanf(line, "VmRSS: %ld", &kib) == 1)
			break;
	fclose(f);
	return kib;
}

static void
m_stats(struct peer_req *r, void *arg)
{
	struct rpc_buf b;

	(void)arg;
	rpc_buf_init(&b);
	msgpack_pack_map(&b.pk, 2);
	rpc_pack_kv_i64(&b.pk, "conns", server_nconns(srv));
	rpc_pack_kv_i64(&b.pk, "rss_kib", rss_kib());
	peer_reply(r, b.sb.data, b.sb.size);
	rpc_buf_free(&b);
}

static void
on_signal(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	event_base_loopbreak(arg);
}

int
main(int argc, char **argv)
{
	const struct server_method methods[] = {
		{ "echo", m_echo },
		{ "sleep", m_sleep },
		{ "flood", m_flood },
		{ "notify", m_notify },
		{ "stats", m_stats },
		{ NULL, NULL },
	};
	struct peer_limits lim;
	struct event_base *base;
	struct event *sigev;
	char err[256];
	int i, fd, ready_fd = -1;

	log_init("rpc-testd", getenv("AO_TEST_VERBOSE") != NULL);
	if (argc < 2 || strcmp(argv[1], "--help") == 0) {
		fprintf(stderr, "usage: rpc-testd SOCKET [--ready-fd N] "
		    "[--max-msg BYTES] [--out-cap BYTES]\n");
		return argc < 2 ? EXIT_PERM : 0;
	}
	server_limits_default(&lim);
	for (i = 2; i + 1 < argc; i += 2) {
		if (strcmp(argv[i], "--ready-fd") == 0)
			ready_fd = atoi(argv[i + 1]);
		else if (strcmp(argv[i], "--max-msg") == 0)
			lim.max_msg = strtoul(argv[i + 1], NULL, 10);
		else if (strcmp(argv[i], "--out-cap") == 0)
			lim.out_cap = strtoul(argv[i + 1], NULL, 10);
		else
			fatalx_perm("unknown option %s", argv[i]);
	}
	signal(SIGPIPE, SIG_IGN);
	if ((fd = sock_listen_unix(argv[1], 128, err, sizeof(err))) == -1)
		fatalx_perm("%s", err);
	base = event_base_new();
	srv = server_new(base, fd, "rpc-testd", methods, NULL, base, &lim);
	sigev = evsignal_new(base, SIGTERM, on_signal, base);
	evsignal_add(sigev, NULL);
	if (ready_fd >= 0) {
		if (write(ready_fd, "\n", 1) != 1)
			fatal("ready fd");
		close(ready_fd);
	}
	event_base_dispatch(base);
	server_free(srv);
	event_base_loop(base, EVLOOP_NONBLOCK);
	event_free(sigev);
	event_base_free(base);
	unlink(argv[1]);
	return 0;
}
