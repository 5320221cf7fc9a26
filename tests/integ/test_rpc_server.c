/*
 * The proto layer end to end: a real server process (tests/helpers/rpc-testd)
 * on a temp socket, driven through the blocking client and raw bytes.
 */
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/aotime.h"
#include "common/log.h"
#include "common/sock.h"
#include "proto/bclient.h"
#include "tests/lib/integ.h"
#include "tests/lib/testlib.h"

static char *dir;
static char sock[256];
static pid_t srv;

static pid_t
start_server(const char *out_cap)
{
	char *argv[] = {
		(char *)testlib_helper("rpc-testd"), sock,
		out_cap != NULL ? "--out-cap" : NULL, (char *)out_cap, NULL,
	};
	int ready;
	pid_t pid = testlib_spawn(argv, &ready);

	ck_assert_int_gt(pid, 0);
	integ_wait_ready("rpc-testd", ready);
	return pid;
}

static void
setup(void)
{
	dir = testlib_tmpdir();
	snprintf(sock, sizeof(sock), "%s/t.sock", dir);
	integ_configure(&(struct integ_conf){ .dir = dir, .log = NULL,
	    .ready_ms = 5000, .call_ms = 5000 });
	srv = start_server(NULL);
}

static void
teardown(void)
{
	testlib_reap_all();
	testlib_rmrf(dir);
	free(dir);
}

START_TEST(round_trip)
{
	struct bclient *bc = integ_connect(sock);
	struct bclient_msg res;
	struct rpc_buf b;
	char s[32];

	integ_assert_hello_at(sock, "rpc-testd", srv);
	rpc_buf_init(&b);
	msgpack_pack_map(&b.pk, 2);
	rpc_pack_kv_str(&b.pk, "s", "ünïcode");
	rpc_pack_kv_i64(&b.pk, "n", -5);
	integ_call_ok(bc, "echo", &b, &res);
	rpc_obj_str(rpc_map_get(res.m.result, "s"), s, sizeof(s));
	ck_assert_str_eq(s, "ünïcode");
	bclient_msg_free(&res);
	rpc_buf_free(&b);

	integ_call_ok(bc, "ping", NULL, &res);
	bclient_msg_free(&res);
	integ_expect_err(bc, "missing", NULL, RPC_UNKNOWN_METHOD, NULL);
	bclient_free(bc);
}
END_TEST

/* Notifications sent before a response are queued, in order. */
START_TEST(notifications)
{
	struct bclient *bc = integ_connect(sock);
	struct bclient_msg res, n;
	struct rpc_error err;
	struct rpc_buf b;
	int64_t i, v;

	rpc_buf_init(&b);
	msgpack_pack_map(&b.pk, 1);
	rpc_pack_kv_i64(&b.pk, "n", 100);
	integ_call_ok(bc, "notify", &b, &res);
	bclient_msg_free(&res);
	rpc_buf_free(&b);
	for (i = 0; i < 100; i++) {
		ck_assert_int_eq(bclient_next(bc, 2000, &n, &err), 1);
		ck_assert_str_eq(n.m.method, "tick");
		ck_assert_int_eq(rpc_obj_i64(rpc_map_get(n.m.params, "i"), &v), 0);
		ck_assert_int_eq(v, i);
		bclient_msg_free(&n);
	}
	ck_assert_int_eq(bclient_next(bc, 50, &n, &err), 0);
	bclient_free(bc);
}
END_TEST

/* 50 pipelined requests answered out of order, each matched by msgid. */
START_TEST(pipelined_out_of_order)
{
	enum { N = 50 };
	char err[256];
	int fd = sock_connect_unix(sock, 0, err, sizeof(err));
	struct rpc_buf b;
	msgpack_unpacker up;
	msgpack_unpacked msg;
	int seen[N] = { 0 }, got = 0, first = -1, i;
	int64_t deadline = aotime_mono_ms() + 10000;

	ck_assert_int_ne(fd, -1);
	rpc_buf_init(&b);
	for (i = 0; i < N; i++) {
		char tag[16];

		snprintf(tag, sizeof(tag), "t%d", i);
		rpc_pack_request_head(&b.pk, 1000 + i, "sleep");
		msgpack_pack_array(&b.pk, 1);
		msgpack_pack_map(&b.pk, 2);
		rpc_pack_kv_i64(&b.pk, "ms", (N - i) * 4);
		rpc_pack_kv_str(&b.pk, "tag", tag);
	}
	ck_assert_int_eq(write(fd, b.sb.data, b.sb.size), (ssize_t)b.sb.size);
	rpc_buf_free(&b);
	msgpack_unpacker_init(&up, 4096);
	msgpack_unpacked_init(&msg);
	while (got < N && aotime_mono_ms() < deadline) {
		ssize_t r;

		msgpack_unpacker_reserve_buffer(&up, 4096);
		r = read(fd, msgpack_unpacker_buffer(&up), 4096);
		ck_assert_int_gt(r, 0);
		msgpack_unpacker_buffer_consumed(&up, (size_t)r);
		while (msgpack_unpacker_next(&up, &msg) == MSGPACK_UNPACK_SUCCESS) {
			const msgpack_object *a = msg.data.via.array.ptr;
			char tag[16], want[16];
			int id = (int)a[1].via.u64 - 1000;

			ck_assert(id >= 0 && id < N);
			ck_assert_int_eq(a[2].type, MSGPACK_OBJECT_NIL);
			rpc_obj_str(rpc_map_get(&a[3], "tag"), tag, sizeof(tag));
			snprintf(want, sizeof(want), "t%d", id);
			ck_assert_str_eq(tag, want);
			seen[id]++;
			if (first == -1)
				first = id;
			got++;
		}
	}
	ck_assert_int_eq(got, N);
	for (i = 0; i < N; i++)
		ck_assert_int_eq(seen[i], 1);
	ck_assert_int_eq(first, N - 1);	/* the shortest sleep, sent last */
	msgpack_unpacked_destroy(&msg);
	msgpack_unpacker_destroy(&up);
	close(fd);
}
END_TEST

/*
 * Hostile input: each framing violation closes only that connection, without
 * allocating the declared size, and the server keeps answering.
 */
START_TEST(hostile_bytes)
{
	static const unsigned char huge_map[] = { 0xdf, 0xff, 0xff, 0xff, 0xff };
	static const unsigned char huge_arr[] = { 0xdd, 0xff, 0xff, 0xff, 0xff };
	static const unsigned char arr_16m[] = { 0xdd, 0x01, 0x00, 0x00, 0x00 };
	static const unsigned char str_1g[] = { 0xdb, 0x40, 0x00, 0x00, 0x00 };
	static const unsigned char bin_17m[] = { 0xc6, 0x01, 0x10, 0x00, 0x00 };
	static const unsigned char never[] = { 0xc1 };
	unsigned char deep[40];
	struct bclient *idle = integ_connect(sock);
	int64_t rss0 = integ_stat_at(sock, NULL, "rss_kib");

	memset(deep, 0x91, sizeof(deep));	/* [[[[...]]]] 40 deep */
	integ_expect_closed(sock, "huge_map", huge_map, sizeof(huge_map), false);
	integ_expect_closed(sock, "huge_arr", huge_arr, sizeof(huge_arr), false);
	integ_expect_closed(sock, "arr_16m", arr_16m, sizeof(arr_16m), false);
	integ_expect_closed(sock, "str_1g", str_1g, sizeof(str_1g), false);
	integ_expect_closed(sock, "bin_17m", bin_17m, sizeof(bin_17m), false);
	integ_expect_closed(sock, "never", never, sizeof(never), false);
	integ_expect_closed(sock, "deep", deep, sizeof(deep), false);
	integ_assert_hello_at(sock, "rpc-testd", srv);
	/* Other connections are unaffected. */
	integ_call_ok(idle, "ping", NULL, NULL);
	bclient_free(idle);
	/* Nothing near the declared sizes was allocated. */
	ck_assert_int_lt(integ_stat_at(sock, NULL, "rss_kib") - rss0, 8 * 1024);
}
END_TEST

/* A real message over 16 MiB: closed as soon as the header shows it. */
START_TEST(oversized_request)
{
	size_t n = 17u * 1024 * 1024;
	unsigned char *big = calloc(1, n + 32);
	struct rpc_buf b;
	char err[256];
	int fd = sock_connect_unix(sock, 0, err, sizeof(err));
	size_t off = 0;
	ssize_t w;

	ck_assert_ptr_nonnull(big);
	rpc_buf_init(&b);
	rpc_pack_request_head(&b.pk, 1, "echo");
	msgpack_pack_array(&b.pk, 1);
	msgpack_pack_map(&b.pk, 1);
	rpc_pack_str(&b.pk, "blob");
	msgpack_pack_bin(&b.pk, n);
	memcpy(big, b.sb.data, b.sb.size);
	off = b.sb.size + n;
	rpc_buf_free(&b);
	/* The server closes mid-stream; the write fails with EPIPE/ECONNRESET. */
	signal(SIGPIPE, SIG_IGN);
	for (size_t sent = 0; sent < off; sent += (size_t)w)
		if ((w = write(fd, big + sent, off - sent)) <= 0)
			break;
	close(fd);
	free(big);
	integ_assert_hello_at(sock, "rpc-testd", srv);
	ck_assert_int_eq(integ_stat_at(sock, NULL, "conns"), 1);
}
END_TEST

/* A client that never reads its notifications hits the output cap. */
START_TEST(slow_reader_output_cap)
{
	char err[256], buf[65536];
	struct rpc_buf b;
	int fd, rcv = 4096;
	ssize_t r;
	size_t total = 0;

	testlib_stop(srv, SIGTERM, 5000);
	srv = start_server("1048576");
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof(rcv));
	close(fd);
	fd = sock_connect_unix(sock, 0, err, sizeof(err));
	ck_assert_int_ne(fd, -1);
	rpc_buf_init(&b);
	rpc_pack_request_head(&b.pk, 1, "flood");
	msgpack_pack_array(&b.pk, 1);
	msgpack_pack_map(&b.pk, 2);
	rpc_pack_kv_i64(&b.pk, "count", 1000);
	rpc_pack_kv_i64(&b.pk, "size", 65536);
	ck_assert_int_eq(write(fd, b.sb.data, b.sb.size), (ssize_t)b.sb.size);
	rpc_buf_free(&b);
	usleep(300 * 1000);
	/* The server is fine and has dropped the flooded connection. */
	integ_assert_hello_at(sock, "rpc-testd", srv);
	ck_assert_int_eq(integ_stat_at(sock, NULL, "conns"), 1);
	ck_assert_int_lt(integ_stat_at(sock, NULL, "rss_kib"), 64 * 1024);
	/* What was buffered before the cap arrives, then EOF: far less than 64 MB. */
	while ((r = read(fd, buf, sizeof(buf))) > 0)
		total += (size_t)r;
	ck_assert_int_eq(r, 0);
	ck_assert_uint_lt(total, 8u * 1024 * 1024);
	close(fd);
}
END_TEST

/*
 * The server is killed: calls fail with unavailable instead of hanging; a
 * second instance on the same path is refused while one is live; after a
 * restart (the stale socket is removed) new connections work.
 */
START_TEST(restart)
{
	struct bclient *bc = integ_connect(sock);
	char *argv[] = { (char *)testlib_helper("rpc-testd"), sock, NULL };
	pid_t dup;
	int st;
	int64_t t0;

	dup = testlib_spawn(argv, NULL);
	st = testlib_wait(dup, 5000);
	ck_assert(WIFEXITED(st));
	ck_assert_int_eq(WEXITSTATUS(st), EXIT_PERM);
	integ_assert_hello_at(sock, "rpc-testd", srv);

	testlib_stop(srv, SIGKILL, 5000);
	t0 = aotime_mono_ms();
	integ_expect_err(bc, "ping", NULL, RPC_UNAVAILABLE, NULL);
	ck_assert_int_lt(aotime_mono_ms() - t0, 1000);
	bclient_free(bc);

	srv = start_server(NULL);
	integ_assert_hello_at(sock, "rpc-testd", srv);
}
END_TEST

/* Many clients at once, each with its own answers. */
START_TEST(many_clients)
{
	enum { N = 40 };
	struct bclient *bc[N];
	struct bclient_msg res;
	struct rpc_buf b;
	int i, round;

	for (i = 0; i < N; i++)
		bc[i] = integ_connect(sock);
	rpc_buf_init(&b);
	for (round = 0; round < 5; round++)
		for (i = 0; i < N; i++) {
			int64_t v;

			rpc_buf_reset(&b);
			msgpack_pack_map(&b.pk, 1);
			rpc_pack_kv_i64(&b.pk, "v", i * 100 + round);
			integ_call_ok(bc[i], "echo", &b, &res);
			rpc_obj_i64(rpc_map_get(res.m.result, "v"), &v);
			ck_assert_int_eq(v, i * 100 + round);
			bclient_msg_free(&res);
		}
	rpc_buf_free(&b);
	ck_assert_int_eq(integ_stat_at(sock, NULL, "conns"), N + 1);
	for (i = 0; i < N; i++)
		bclient_free(bc[i]);
}
END_TEST

Suite *
rpc_server_suite(void)
{
	Suite *s = suite_create("rpc_server");
	TCase *tc = integ_tcase(s, "protocol", 30, setup, teardown, 0);

	tcase_add_test(tc, round_trip);
	tcase_add_test(tc, notifications);
	tcase_add_test(tc, pipelined_out_of_order);
	tcase_add_test(tc, many_clients);
	tcase_add_test(tc, restart);
	tc = integ_tcase(s, "bad input", 30, setup, teardown, 0);
	tcase_add_test(tc, hostile_bytes);
	tcase_add_test(tc, oversized_request);
	tcase_add_test(tc, slow_reader_output_cap);
	return s;
}
TEST_SUITE(rpc_server_suite)
