/*
 * proto/server.c + proto/client.c in one process on a temp socket: built-in
 * methods, dispatch errors, and reconnect with backoff across a restart.
 */
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/listener.h>

#include "common/aotime.h"
#include "common/sock.h"
#include "proto/client.h"
#include "proto/server.h"
#include "tests/lib/testlib.h"

static struct event_base *base;
static struct event *tick;
static char *dir;
static char path[256];

static void
setup(void)
{
	base = testlib_base_new(&tick);
	dir = testlib_tmpdir();
	snprintf(path, sizeof(path), "%s/t.sock", dir);
}

static void
teardown(void)
{
	testlib_base_free(base, tick);
	testlib_rmrf(dir);
	free(dir);
}

static bool
run_until(const int *flag, int want, int64_t timeout_ms)
{
	int64_t deadline = aotime_mono_ms() + timeout_ms;

	while (*flag < want && aotime_mono_ms() < deadline)
		event_base_loop(base, EVLOOP_ONCE);
	return *flag >= want;
}

static void
m_add(struct peer_req *r, void *arg)
{
	struct rpc_params p;
	struct rpc_error err;
	struct rpc_buf b;
	int64_t x = 0, y = 0;

	(void)arg;
	rpc_error_clear(&err);
	if (rpc_params_init(&p, r->params, r->zone, NULL, &err) == -1 ||
	    rpc_get_i64(&p, "x", RPC_REQUIRED, &x) == -1 ||
	    rpc_get_i64(&p, "y", RPC_REQUIRED, &y) == -1 ||
	    rpc_params_end(&p) == -1) {
		peer_reply_error(r, &err);
		return;
	}
	rpc_buf_init(&b);
	msgpack_pack_map(&b.pk, 1);
	rpc_pack_kv_i64(&b.pk, "sum", x + y);
	peer_reply(r, b.sb.data, b.sb.size);
	rpc_buf_free(&b);
}

/* nils → an array of twice the objects a server takes in a message. */
static void
m_nils(struct peer_req *r, void *arg)
{
	struct rpc_buf b;
	uint32_t i;

	(void)arg;
	if (peer_req_no_params(r) == -1)
		return;
	rpc_buf_init(&b);
	msgpack_pack_array(&b.pk, 2 * SERVER_MAX_OBJECTS);
	for (i = 0; i < 2 * SERVER_MAX_OBJECTS; i++)
		msgpack_pack_nil(&b.pk);
	peer_reply(r, b.sb.data, b.sb.size);
	rpc_buf_free(&b);
}

static const struct server_method methods[] = {
	{ "add", m_add },
	{ "nils", m_nils },
	{ NULL, NULL },
};

static int server_opens, server_closes;

static void
srv_open(struct peer *p, void *arg)
{
	(void)p;
	(void)arg;
	server_opens++;
}

static void
srv_close(struct peer *p, const char *reason, void *arg)
{
	(void)p;
	(void)reason;
	(void)arg;
	server_closes++;
}

static struct server *
start_server(void)
{
	static const struct server_cbs cbs = { srv_open, srv_close, NULL, NULL };
	char err[256];
	int fd = sock_listen_unix(path, 16, err, sizeof(err));

	ck_assert_msg(fd != -1, "%s", err);
	return server_new(base, fd, "testd", methods, &cbs, NULL, NULL);
}

struct res {
	int n;
	enum rpc_code code;
	char msg[600];
	int64_t sum, proto, pid;
	char component[32];
	uint32_t len;		/* an array result's */
};

static void
on_res(void *arg, const struct rpc_error *err, const msgpack_object *result)
{
	struct res *r = arg;

	r->n++;
	r->code = err != NULL ? err->code : RPC_OK;
	if (err != NULL) {
		snprintf(r->msg, sizeof(r->msg), "%s", err->message);
		return;
	}
	rpc_obj_i64(rpc_map_get(result, "sum"), &r->sum);
	rpc_obj_i64(rpc_map_get(result, "proto"), &r->proto);
	rpc_obj_i64(rpc_map_get(result, "pid"), &r->pid);
	rpc_obj_str(rpc_map_get(result, "component"), r->component,
	    sizeof(r->component));
	if (result->type == MSGPACK_OBJECT_ARRAY)
		r->len = result->via.array.size;
}

static int connects, disconnects;

static void
cl_connect(struct client *c, void *arg)
{
	(void)c;
	(void)arg;
	connects++;
}

static void
cl_disconnect(struct client *c, const char *reason, void *arg)
{
	(void)c;
	(void)reason;
	(void)arg;
	disconnects++;
}

static const struct client_cbs ccbs = { cl_connect, cl_disconnect, NULL };

static void
call_add(struct client *c, int64_t x, int64_t y, struct res *r)
{
	struct rpc_buf b;

	rpc_buf_init(&b);
	msgpack_pack_map(&b.pk, 2);
	rpc_pack_kv_i64(&b.pk, "x", x);
	rpc_pack_kv_i64(&b.pk, "y", y);
	client_call(c, "add", b.sb.data, b.sb.size, 2000, on_res, r);
	rpc_buf_free(&b);
}

START_TEST(builtins_and_methods)
{
	struct server *srv = start_server();
	struct client *c;
	struct res hello = { 0 }, ping = { 0 }, add = { 0 };

	connects = 0;
	c = client_new(base, path, &ccbs, NULL, NULL);
	ck_assert_int_eq(connects, 0);	/* on_connect runs from the loop */
	ck_assert(run_until(&connects, 1, 2000));
	client_call(c, "hello", NULL, 0, 2000, on_res, &hello);
	client_call(c, "ping", NULL, 0, 2000, on_res, &ping);
	call_add(c, 40, 2, &add);
	ck_assert(run_until(&add.n, 1, 2000));
	ck_assert(run_until(&hello.n, 1, 2000));
	ck_assert_int_eq(hello.code, RPC_OK);
	ck_assert_str_eq(hello.component, "testd");
	ck_assert_int_eq(hello.proto, 1);
	ck_assert_int_eq(hello.pid, getpid());
	ck_assert_int_eq(ping.code, RPC_OK);
	ck_assert_int_eq(add.sum, 42);
	ck_assert_int_eq(server_nconns(srv), 1);
	ck_assert_int_eq(server_opens, 1);
	client_free(c);
	ck_assert(run_until(&server_closes, 1, 2000));
	server_free(srv);
}
END_TEST

START_TEST(dispatch_bad_input)
{
	struct server *srv = start_server();
	struct client *c = client_new(base, path, &ccbs, NULL, NULL);
	struct res unk = { 0 }, bad = { 0 }, extra = { 0 };
	struct rpc_buf b;

	client_call(c, "nope", NULL, 0, 2000, on_res, &unk);
	call_add(c, 1, 0, &bad);
	rpc_buf_init(&b);
	msgpack_pack_map(&b.pk, 1);
	rpc_pack_kv_i64(&b.pk, "x", 1);
	client_call(c, "hello", b.sb.data, b.sb.size, 2000, on_res, &extra);
	rpc_buf_reset(&b);
	msgpack_pack_map(&b.pk, 2);
	rpc_pack_kv_str(&b.pk, "x", "one");
	rpc_pack_kv_i64(&b.pk, "y", 1);
	client_call(c, "add", b.sb.data, b.sb.size, 2000, on_res, &bad);
	rpc_buf_free(&b);
	ck_assert(run_until(&bad.n, 2, 2000));
	ck_assert(run_until(&extra.n, 1, 2000));
	ck_assert_int_eq(unk.code, RPC_UNKNOWN_METHOD);
	ck_assert_str_eq(unk.msg, "unknown method 'nope'");
	ck_assert_int_eq(extra.code, RPC_BAD_REQUEST);
	ck_assert_str_eq(extra.msg, "unknown parameter 'x'");
	ck_assert_int_eq(bad.code, RPC_BAD_REQUEST);
	ck_assert_str_eq(bad.msg, "x must be an integer");
	ck_assert(client_connected(c));
	client_free(c);
	server_free(srv);
}
END_TEST

/* add {x: [nil × n]}: what a client sends to make the server allocate. */
static void
call_add_nils(struct client *c, uint32_t n, struct res *r)
{
	struct rpc_buf b;
	uint32_t i;

	rpc_buf_init(&b);
	msgpack_pack_map(&b.pk, 1);
	rpc_pack_str(&b.pk, "x");
	msgpack_pack_array(&b.pk, n);
	for (i = 0; i < n; i++)
		msgpack_pack_nil(&b.pk);
	client_call(c, "add", b.sb.data, b.sb.size, 5000, on_res, r);
	rpc_buf_free(&b);
}

/*
 * A server takes SERVER_MAX_OBJECTS objects a message at most: past it
 * the connection is cut off (a framing error) before msgpack-c allocates
 * anything.  A client still reads larger answers.
 */
START_TEST(server_objects_limit)
{
	struct server *srv = start_server();
	struct client *c = client_new(base, path, &ccbs, NULL, NULL);
	struct res under = { 0 }, over = { 0 }, big = { 0 };

	connects = 0;
	/* The envelope, the params map, its key and the array: 8 objects. */
	call_add_nils(c, SERVER_MAX_OBJECTS - 8, &under);
	ck_assert(run_until(&under.n, 1, 10000));
	ck_assert_int_eq(under.code, RPC_BAD_REQUEST);
	call_add_nils(c, SERVER_MAX_OBJECTS - 7, &over);
	ck_assert(run_until(&over.n, 1, 10000));
	ck_assert_int_eq(over.code, RPC_UNAVAILABLE);
	ck_assert_msg(strstr(over.msg, "too many objects") == NULL,
	    "the client saw the server's reason: %s", over.msg);

	ck_assert(run_until(&connects, 2, 5000));	/* reconnected */
	client_call(c, "nils", NULL, 0, 10000, on_res, &big);
	ck_assert(run_until(&big.n, 1, 10000));
	ck_assert_int_eq(big.code, RPC_OK);
	ck_assert_uint_eq(big.len, 2 * SERVER_MAX_OBJECTS);
	client_free(c);
	server_free(srv);
}
END_TEST

/*
 * The server goes away: calls fail fast with unavailable (no hang, no
 * timeout wait), the client backs off, and reconnects when it returns.
 */
START_TEST(reconnect_after_restart)
{
	struct server *srv = start_server();
	struct client *c;
	struct res r1 = { 0 }, down = { 0 }, r2 = { 0 };
	int64_t t0;

	connects = disconnects = 0;
	c = client_new(base, path, &ccbs, NULL, NULL);
	ck_assert(run_until(&connects, 1, 2000));
	call_add(c, 1, 1, &r1);
	ck_assert(run_until(&r1.n, 1, 2000));
	ck_assert_int_eq(r1.sum, 2);

	server_free(srv);
	unlink(path);
	ck_assert(run_until(&disconnects, 1, 2000));
	ck_assert(!client_connected(c));
	t0 = aotime_mono_ms();
	call_add(c, 1, 1, &down);
	ck_assert_int_eq(down.n, 0);
	ck_assert(run_until(&down.n, 1, 2000));
	ck_assert_int_eq(down.code, RPC_UNAVAILABLE);
	ck_assert_int_lt(aotime_mono_ms() - t0, 500);

	/* Let a few retries fail: the delay doubles, capped at 2 s. */
	{
		int never = 0;

		run_until(&never, 1, 400);
	}
	ck_assert_int_gt(client_backoff_ms(c), CLIENT_BACKOFF_MIN_MS);
	ck_assert_int_le(client_backoff_ms(c), CLIENT_BACKOFF_MAX_MS);

	srv = start_server();
	ck_assert(run_until(&connects, 2, 3000));
	ck_assert_int_eq(client_backoff_ms(c), CLIENT_BACKOFF_MIN_MS);
	call_add(c, 2, 3, &r2);
	ck_assert(run_until(&r2.n, 1, 2000));
	ck_assert_int_eq(r2.code, RPC_OK);
	ck_assert_int_eq(r2.sum, 5);
	client_free(c);
	server_free(srv);
}
END_TEST

static int slammed;

static void
slam_accept(struct evconnlistener *lev, evutil_socket_t fd, struct sockaddr *sa,
    int salen, void *arg)
{
	(void)lev;
	(void)sa;
	(void)salen;
	(void)arg;
	close(fd);
	slammed++;
}

/*
 * A server that accepts and closes at once (a full connection table, a
 * crash loop) does not reset the backoff: only an answered hello does, and
 * on_connect waits for it.
 */
START_TEST(backoff_not_reset_by_closed_connect)
{
	struct evconnlistener *lev;
	struct server *srv;
	struct client *c;
	char err[256];
	int fd = sock_listen_unix(path, 16, err, sizeof(err));

	ck_assert_msg(fd != -1, "%s", err);
	lev = evconnlistener_new(base, slam_accept, NULL, LEV_OPT_CLOSE_ON_FREE,
	    0, fd);
	ck_assert_ptr_nonnull(lev);
	connects = disconnects = slammed = 0;
	c = client_new(base, path, &ccbs, NULL, NULL);
	/*
	 * Connected 4 times, closed 4 times: 50, 100, 200 and 400 ms waits.
	 * Never on_connect, so never on_disconnect either.
	 */
	{
		int64_t deadline = aotime_mono_ms() + 10000;

		while (client_backoff_ms(c) < 16 * CLIENT_BACKOFF_MIN_MS &&
		    aotime_mono_ms() < deadline)
			event_base_loop(base, EVLOOP_ONCE);
	}
	ck_assert_int_ge(client_backoff_ms(c), 16 * CLIENT_BACKOFF_MIN_MS);
	ck_assert_int_ge(slammed, 4);
	ck_assert_int_eq(connects, 0);
	ck_assert_int_eq(disconnects, 0);
	evconnlistener_free(lev);
	unlink(path);

	srv = start_server();
	ck_assert(run_until(&connects, 1, 5000));
	ck_assert_int_eq(client_backoff_ms(c), CLIENT_BACKOFF_MIN_MS);
	client_free(c);
	server_free(srv);
}
END_TEST

/* A call in flight when the server dies gets unavailable, not a hang. */
START_TEST(inflight_call_fails_on_disconnect)
{
	struct server *srv = start_server();
	struct client *c = client_new(base, path, &ccbs, NULL, NULL);
	struct res r = { 0 };

	disconnects = 0;
	call_add(c, 1, 1, &r);
	server_free(srv);
	ck_assert(run_until(&r.n, 1, 2000));
	ck_assert_int_eq(r.code, RPC_UNAVAILABLE);
	client_free(c);
}
END_TEST

START_TEST(client_free_cancels)
{
	struct server *srv = start_server();
	struct client *c = client_new(base, path, &ccbs, NULL, NULL);
	struct res r = { 0 };
	int never = 0;

	call_add(c, 1, 1, &r);
	client_free(c);
	run_until(&never, 1, 100);
	ck_assert_int_eq(r.n, 0);
	server_free(srv);
}
END_TEST

Suite *
client_suite(void)
{
	Suite *s = suite_create("client");
	TCase *tc = tcase_create("server+client");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 20);
	tcase_add_test(tc, builtins_and_methods);
	tcase_add_test(tc, reconnect_after_restart);
	tcase_add_test(tc, backoff_not_reset_by_closed_connect);
	tcase_add_test(tc, inflight_call_fails_on_disconnect);
	tcase_add_test(tc, client_free_cancels);
	suite_add_tcase(s, tc);
	tc = tcase_create("bad input");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 20);
	tcase_add_test(tc, dispatch_bad_input);
	tcase_add_test(tc, server_objects_limit);
	suite_add_tcase(s, tc);
	return s;
}
TEST_SUITE(client_suite)
