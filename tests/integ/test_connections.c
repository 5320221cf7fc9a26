/*
 * The connection rules of DESIGN.md §3 on the three real daemons
 * (storaged, cdcd, lcmd on a temporary data dir): a stock msgpack-rpc
 * client (pynvim) is served, an unfinished message has a deadline and the
 * bytes of unfinished messages a cap, a message of too many objects is cut
 * off, and a flood of idle connections does not lock anyone out.
 * Assertions are about behaviour (served, closed, which one was closed);
 * waits have generous deadlines.
 */
#include <errno.h>
#include <linux/sockios.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/aotime.h"
#include "common/sock.h"
#include "proto/bclient.h"
#include "proto/server.h"
#include "tests/lib/integ.h"
#include "tests/lib/testlib.h"

#define READY_MS	20000	/* daemon readiness: generous for ASan on 2 cores */
#define CALL_MS		10000
#define WAIT_MS		30000	/* any wait for a close or a reconnect */
/* Debian's interpreter: python3-pynvim installs for it, whatever PATH says. */
#define PYTHON		"/usr/bin/python3"

static char *dir;
static char sd_sock[300], cd_sock[300], lc_sock[300];
static char logpath[300], msglog[300], tmuxsock[300];

static void
setup(void)
{
	dir = integ_test_dir();
	snprintf(sd_sock, sizeof(sd_sock), "%s/run/storaged.sock", dir);
	snprintf(cd_sock, sizeof(cd_sock), "%s/run/cdcd.sock", dir);
	snprintf(lc_sock, sizeof(lc_sock), "%s/run/lcmd.sock", dir);
	snprintf(logpath, sizeof(logpath), "%s/daemons.log", dir);
	snprintf(msglog, sizeof(msglog), "%s/messages.jsonl", dir);
	snprintf(tmuxsock, sizeof(tmuxsock), "%s/tmux.sock", dir);
	integ_configure(&(struct integ_conf){ .dir = dir, .log = logpath,
	    .ready_ms = READY_MS, .call_ms = CALL_MS });
}

static void
teardown(void)
{
	testlib_reap_all();
	testlib_rmrf(dir);
	free(dir);
	dir = NULL;
}

/* The three daemons, each with the same extra flags (NULL: none). */
static void
start_all(const char *const extra[], pid_t pids[3])
{
	pids[0] = integ_start("ao-storaged", extra);
	pids[1] = integ_start("ao-cdcd", extra);
	pids[2] = integ_start_lcmd(msglog, tmuxsock, extra);
}

static const char *const names[3] = { "storaged", "cdcd", "lcmd" };

static const char *
sock_of(int i)
{
	return i == 0 ? sd_sock : i == 1 ? cd_sock : lc_sock;
}

/* How many lines of the daemons' log contain needle. */
static int
log_count(const char *needle)
{
	char *all = testlib_read_file(logpath), *p;
	int n = 0;

	for (p = all; p != NULL && (p = strstr(p, needle)) != NULL; p++)
		n++;
	free(all);
	return n;
}

/*
 * Exactly one warning in daemon i's log about closing our connection for
 * why: visible without --verbose, naming this process's pid (item 9).
 */
static void
assert_one_warning(int i, const char *why)
{
	char needle[256];

	snprintf(needle, sizeof(needle), "ao-%s: closing connection (pid %d): %s",
	    names[i], (int)getpid(), why);
	ck_assert_msg(log_count(needle) == 1, "%d lines of '%s' in: %s",
	    log_count(needle), needle, integ_log_tail());
}

/* A raw connection: blocking, with generous read and write timeouts. */
static int
raw_open(const char *sock)
{
	struct timeval tv = { WAIT_MS / 1000, 0 };
	char err[256];
	int fd = sock_connect_unix(sock, 0, err, sizeof(err));

	ck_assert_msg(fd != -1, "connect %s: %s", sock, err);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	return fd;
}

/* Waits until the daemon has read everything sent on fd (SIOCOUTQ). */
static void
wait_read_by_peer(int fd, const char *what)
{
	int unread = 0;

	INTEG_WAIT(ioctl(fd, SIOCOUTQ, &unread) == 0 && unread == 0, WAIT_MS, 5,
	    "%s: %d bytes still unread", what, unread);
}

/* The daemon closes fd without answering (a reset counts: it read less). */
static void
wait_closed(int fd, const char *what)
{
	char buf[256];
	ssize_t r = read(fd, buf, sizeof(buf));

	ck_assert_msg(r == 0 || (r == -1 && errno == ECONNRESET),
	    "%s: read returned %zd (%s), expected EOF", what, r,
	    r == -1 ? strerror(errno) : "data");
}

/* One response on fd; its error's code ("" for none) into code. */
static void
read_response(int fd, char *code, size_t len, const char *what)
{
	msgpack_unpacker up;
	msgpack_unpacked m;
	msgpack_unpack_return ur = MSGPACK_UNPACK_CONTINUE;
	const msgpack_object *a;

	ck_assert(msgpack_unpacker_init(&up, 4096));
	msgpack_unpacked_init(&m);
	while ((ur = msgpack_unpacker_next(&up, &m)) == MSGPACK_UNPACK_CONTINUE) {
		ssize_t r;

		msgpack_unpacker_reserve_buffer(&up, 4096);
		r = read(fd, msgpack_unpacker_buffer(&up), 4096);
		ck_assert_msg(r > 0, "%s: no response (read %zd: %s)", what, r,
		    r == -1 ? strerror(errno) : "EOF");
		msgpack_unpacker_buffer_consumed(&up, (size_t)r);
	}
	ck_assert_int_eq(ur, MSGPACK_UNPACK_SUCCESS);
	a = m.data.via.array.ptr;
	ck_assert_int_eq(a[0].via.u64, RPC_RESPONSE);
	code[0] = '\0';
	rpc_obj_str(rpc_map_get(&a[2], "code"), code, len);
	msgpack_unpacked_destroy(&m);
	msgpack_unpacker_destroy(&up);
}

/* [0, 1, "ping", [{"x": X}]] with X's header in xhead, its body to follow. */
static void
pack_ping_x(struct rpc_buf *b, const unsigned char *xhead, size_t n)
{
	rpc_pack_request_head(&b->pk, 1, "ping");
	msgpack_pack_array(&b->pk, 1);
	msgpack_pack_map(&b->pk, 1);
	rpc_pack_str(&b->pk, "x");
	msgpack_sbuffer_write(&b->sb, (const char *)xhead, n);
}

/*
 * pynvim's session (tests/integ/pynvim_client.py) on all three sockets:
 * its own notifications (a bin method, positional params) before and after
 * hello and a real method of each daemon, a bin-method request answered
 * with bad_request, and a cdcd subscription that keeps receiving events
 * while the client answers them with Neovim's nvim_error_event.
 */
START_TEST(pynvim_session)
{
	const char *argv[] = { PYTHON, testlib_source("tests/integ/pynvim_client.py"),
		sd_sock, cd_sock, lc_sock, NULL };
	static char out[16384];
	pid_t pids[3];
	int rc;

	start_all(NULL, pids);
	rc = integ_run(argv, out, sizeof(out), 90000);
	ck_assert_msg(rc == 0, "pynvim_client.py exited %d:\n%s\nlog: %s", rc,
	    out, integ_log_tail());
	ck_assert_msg(strstr(out, "all checks passed") != NULL, "%s", out);
	ck_assert_msg(log_count("closing connection") == 0,
	    "a daemon closed a connection: %s", integ_log_tail());
}
END_TEST

/*
 * A message that has started must arrive whole within message_timeout_ms:
 * on each daemon one that stalls is closed (one warning naming our pid),
 * while one sent in two pieces is answered.
 */
START_TEST(unfinished_deadline)
{
	static const char *const extra[] = { "--message-timeout-ms=2000", NULL };
	static const unsigned char ping[] = {	/* [0, 1, "ping", []] */
		0x94, 0x00, 0x01, 0xa4, 'p', 'i', 'n', 'g', 0x90,
	};
	char code[64];
	pid_t pids[3];
	int fd[3], i;

	start_all(extra, pids);
	for (i = 0; i < 3; i++) {
		fd[i] = raw_open(sock_of(i));
		ck_assert_int_eq(integ_write_all(fd[i], ping, 4), 0);
	}
	for (i = 0; i < 3; i++) {
		int ok = raw_open(sock_of(i));

		ck_assert_int_eq(integ_write_all(ok, ping, 4), 0);
		wait_read_by_peer(ok, names[i]);
		ck_assert_int_eq(integ_write_all(ok, ping + 4, 5), 0);
		read_response(ok, code, sizeof(code), names[i]);
		ck_assert_str_eq(code, "");
		close(ok);
	}
	for (i = 0; i < 3; i++) {
		wait_closed(fd[i], names[i]);
		close(fd[i]);
		assert_one_warning(i, "message unfinished after 2000 ms");
		integ_assert_hello_at(sock_of(i), names[i], pids[i]);
	}
}
END_TEST

/*
 * Three unfinished messages of 0.9 MB against a 2 MiB cap on each daemon:
 * the third one's bytes take the total over, and the oldest connection is
 * closed; the other two complete and are answered.
 */
START_TEST(unfinished_cap)
{
	enum { BODY = 1000000, PART = 900000 };
	static const char *const extra[] = { "--max-message-bytes=1MiB",
		"--max-unfinished-bytes=2MiB", NULL };
	static const unsigned char bin32[] = { 0xc6, BODY >> 24, (BODY >> 16) & 0xff,
		(BODY >> 8) & 0xff, BODY & 0xff };
	struct rpc_buf b;
	char *msg, code[64];
	size_t len, part;
	pid_t pids[3];
	int fd[3], i, k;

	start_all(extra, pids);
	rpc_buf_init(&b);
	pack_ping_x(&b, bin32, sizeof(bin32));
	part = b.sb.size + PART;
	len = b.sb.size + BODY;
	ck_assert_ptr_nonnull(msg = calloc(1, len));
	memcpy(msg, b.sb.data, b.sb.size);
	rpc_buf_free(&b);
	for (i = 0; i < 3; i++) {
		for (k = 0; k < 3; k++) {
			fd[k] = raw_open(sock_of(i));
			ck_assert_int_eq(integ_write_all(fd[k], msg, part), 0);
			if (k < 2)
				wait_read_by_peer(fd[k], names[i]);
		}
		wait_closed(fd[0], names[i]);
		assert_one_warning(i, "unfinished messages over the cap");
		for (k = 2; k >= 1; k--) {
			ck_assert_int_eq(integ_write_all(fd[k], msg + part,
			    len - part), 0);
			read_response(fd[k], code, sizeof(code), names[i]);
			ck_assert_str_eq(code, "bad_request");
		}
		for (k = 0; k < 3; k++)
			close(fd[k]);
		integ_assert_hello_at(sock_of(i), names[i], pids[i]);
	}
	free(msg);
}
END_TEST

/*
 * What a daemon takes from a client: SERVER_MAX_OBJECTS objects in one
 * message.  One more is a framing error, found at the array's header
 * (nothing is allocated for it); one fewer is decoded and answered.
 */
START_TEST(objects_limit)
{
	const uint32_t fit = SERVER_MAX_OBJECTS - 8;	/* envelope, map, key, array */
	unsigned char arr32[5] = { 0xdd };
	struct rpc_buf b;
	char code[64], *nils;
	pid_t pids[3];
	uint32_t n;
	int fd, i;

	start_all(NULL, pids);
	ck_assert_ptr_nonnull(nils = malloc(fit + 1));
	memset(nils, 0xc0, fit + 1);
	rpc_buf_init(&b);
	for (i = 0; i < 3; i++) {
		for (n = fit; n <= fit + 1; n++) {
			arr32[1] = n >> 24;
			arr32[2] = (n >> 16) & 0xff;
			arr32[3] = (n >> 8) & 0xff;
			arr32[4] = n & 0xff;
			rpc_buf_reset(&b);
			pack_ping_x(&b, arr32, sizeof(arr32));
			fd = raw_open(sock_of(i));
			ck_assert_int_eq(integ_write_all(fd, b.sb.data, b.sb.size), 0);
			if (n == fit) {
				ck_assert_int_eq(integ_write_all(fd, nils, n), 0);
				read_response(fd, code, sizeof(code), names[i]);
				ck_assert_str_eq(code, "bad_request");
			} else {
				integ_write_all(fd, nils, n);	/* may be cut off */
				wait_closed(fd, names[i]);
			}
			close(fd);
		}
		assert_one_warning(i, "framing error: too many objects");
		integ_assert_hello_at(sock_of(i), names[i], pids[i]);
	}
	rpc_buf_free(&b);
	free(nils);
}
END_TEST

/*
 * Framing errors and malformed messages, as docs/protocol.md §5 says: each
 * closed connection is one warning (no --verbose here) with the peer's pid.
 */
START_TEST(close_warnings)
{
	static const unsigned char never[] = { 0xc1 };
	static const unsigned char bare_map[] = { 0x81, 0xa1, 'a', 0x01 };
	pid_t pids[3];
	int i;

	start_all(NULL, pids);
	for (i = 0; i < 3; i++) {
		integ_expect_closed(sock_of(i), "0xc1", never, sizeof(never), false);
		integ_expect_closed(sock_of(i), "a map", bare_map, sizeof(bare_map),
		    false);
		assert_one_warning(i, "framing error: reserved byte 0xc1");
		assert_one_warning(i, "malformed message: message must be an array");
		integ_assert_hello_at(sock_of(i), names[i], pids[i]);
	}
	ck_assert_int_eq(log_count("connection closed"), 0);	/* debug */
}
END_TEST

/* A cap that cannot hold one whole message is a start-up error (exit 100). */
START_TEST(unfinished_cap_below_message)
{
	static const char *const extra[] = { "--max-message-bytes=1MiB",
		"--max-unfinished-bytes=512K", NULL };
	int i, st;

	for (i = 0; i < 3; i++) {
		char bin[32];
		pid_t pid;

		snprintf(bin, sizeof(bin), "ao-%s", names[i]);
		pid = integ_spawn(bin, extra, NULL);
		st = testlib_wait(pid, READY_MS);
		ck_assert_msg(st != -1 && WIFEXITED(st) &&
		    WEXITSTATUS(st) == EXIT_PERM, "%s: status %d", bin, st);
	}
	ck_assert_int_eq(log_count("max_unfinished_bytes (524288) is below "
	    "max_message_bytes (1048576)"), 3);
}
END_TEST

/*
 * More idle connections than storaged's table holds (RLIMIT_NOFILE 128
 * leaves room for 64): the oldest idle ones make room for new ones, so a
 * new client is served and a restarted lcmd reaches storaged.  Without the
 * rule, accept fails with EMFILE and every new connection waits forever.
 */
START_TEST(idle_flood)
{
	enum { NOFILE = 128, FLOOD = NOFILE + 32 };
	static const unsigned char ping[] = {	/* [0, 1, "ping", []] */
		0x94, 0x00, 0x01, 0xa4, 'p', 'i', 'n', 'g', 0x90,
	};
	static int fd[FLOOD];
	struct bclient *lc;
	struct bclient_msg res;
	struct rpc_error err;
	char code[64];
	int64_t deadline;
	pid_t sd;
	int i;

	sd = integ_start_nofile("ao-storaged", NOFILE, NULL);
	for (i = 0; i < FLOOD; i++)
		fd[i] = raw_open(sd_sock);
	/* The oldest went first; the newest is in the table and served. */
	wait_closed(fd[0], "the oldest idle connection");
	integ_assert_hello_at(sd_sock, "storaged", sd);
	ck_assert_int_eq(integ_write_all(fd[FLOOD - 1], ping, sizeof(ping)), 0);
	read_response(fd[FLOOD - 1], code, sizeof(code), "the newest");
	ck_assert_str_eq(code, "");
	/*
	 * NOFILE less a reserve of 64 is 64 places: the others were closed,
	 * said in the log once a second at most (not a line each).
	 */
	{
		int closed = 0;
		char c;

		for (i = 0; i < FLOOD - 1; i++)
			if (recv(fd[i], &c, 1, MSG_PEEK | MSG_DONTWAIT) == 0)
				closed++;
		ck_assert_int_ge(closed, FLOOD - 64);
	}
	ck_assert_int_ge(log_count("connection table full"), 1);
	ck_assert_int_le(log_count("connection table full"), 10);
	ck_assert_int_eq(log_count("refused connection"), 0);

	/* A (re)started lcmd gets through to storaged. */
	integ_start_lcmd(msglog, tmuxsock, NULL);
	lc = integ_connect(lc_sock);
	deadline = aotime_mono_ms() + WAIT_MS;
	while (bclient_call(lc, "project.list", NULL, 0, CALL_MS, &res, &err) == -1) {
		ck_assert_msg(err.code == RPC_UNAVAILABLE &&
		    aotime_mono_ms() < deadline, "lcmd did not reach storaged: "
		    "%s: %s (log: %s)", rpc_code_name(err.code), err.message,
		    integ_log_tail());
		usleep(100 * 1000);
	}
	bclient_msg_free(&res);
	bclient_free(lc);
	for (i = 0; i < FLOOD; i++)
		close(fd[i]);
}
END_TEST

/*
 * Memory goes back after load (issue 10 item 3): on each daemon, 12
 * connections each hold 14 MiB of a message that never finishes (the
 * cap of unfinished bytes closes the oldest as they come), then go; the
 * daemon trims its heap once the churn stops, and VmRSS falls back under
 * twice its idle size (40 such connections left storaged at 629 MB).
 */
START_TEST(memory_after_big_messages)
{
	enum { NCONN = 12, BODY = 15 * 1024 * 1024, PART = 14 * 1024 * 1024 };
	static const unsigned char str32[] = { 0xdb, BODY >> 24, (BODY >> 16) & 0xff,
		(BODY >> 8) & 0xff, BODY & 0xff };
	static char chunk[1 << 20];
	struct rpc_buf b;
	long idle[3], rss, peak;
	int64_t trims0;
	pid_t pids[3];
	int fd[NCONN], i, k, n;

	start_all(NULL, pids);
	rpc_buf_init(&b);
	pack_ping_x(&b, str32, sizeof(str32));
	for (i = 0; i < 3; i++) {
		idle[i] = integ_rss_kib(pids[i]);
		trims0 = integ_stat_at(sock_of(i), "memory", "trims");
		peak = idle[i];
		for (k = 0; k < NCONN; k++) {
			fd[k] = raw_open(sock_of(i));
			/* Closed by the cap meanwhile: a write fails; fine. */
			if (integ_write_all(fd[k], b.sb.data, b.sb.size) == 0)
				for (n = 0; n < PART / (int)sizeof(chunk); n++)
					if (integ_write_all(fd[k], chunk,
					    sizeof(chunk)) == -1)
						break;
			if ((rss = integ_rss_kib(pids[i])) > peak)
				peak = rss;
		}
		for (k = 0; k < NCONN; k++)
			close(fd[k]);
		INTEG_WAIT(integ_stat_at(sock_of(i), "memory", "trims") > trims0,
		    WAIT_MS, 100, "%s never trimmed its heap (VmRSS %ld KiB, idle "
		    "%ld KiB)", names[i], integ_rss_kib(pids[i]), idle[i]);
		/* ASan's allocator and quarantine are not glibc's: no bound there. */
#if !defined(__SANITIZE_ADDRESS__)
		INTEG_WAIT((rss = integ_rss_kib(pids[i])) < 2 * idle[i], WAIT_MS, 100,
		    "%s: VmRSS %ld KiB after load (idle %ld KiB, peak %ld KiB)",
		    names[i], rss, idle[i], peak);
#endif
		fprintf(stderr, "%s memory: VmRSS idle %ld KiB, peak %ld KiB, after "
		    "%ld KiB\n", names[i], idle[i], peak, integ_rss_kib(pids[i]));
		integ_assert_hello_at(sock_of(i), names[i], pids[i]);
	}
	rpc_buf_free(&b);
}
END_TEST

Suite *
connections_suite(void)
{
	Suite *s = suite_create("connections");
	TCase *tc;

	tc = integ_tcase(s, "stock clients", 120, setup, teardown,
	    INTEG_CASE_DIR | INTEG_CASE_KILL);
	tcase_add_test(tc, pynvim_session);
	tc = integ_tcase(s, "bad input", 120, setup, teardown,
	    INTEG_CASE_DIR | INTEG_CASE_KILL);
	tcase_add_test(tc, unfinished_deadline);
	tcase_add_test(tc, unfinished_cap);
	tcase_add_test(tc, objects_limit);
	tcase_add_test(tc, close_warnings);
	tcase_add_test(tc, unfinished_cap_below_message);
	tcase_add_test(tc, idle_flood);
	tc = integ_tcase(s, "memory", 120, setup, teardown,
	    INTEG_CASE_DIR | INTEG_CASE_KILL);
	tcase_add_test(tc, memory_after_big_messages);
	return s;
}
TEST_SUITE(connections_suite)
