/*
 * bin/ao-storaged end to end: the real binary on a temporary data dir,
 * driven over storaged.sock with the blocking client, and with raw bytes
 * where a test needs pipelining or hostile input.  The SQL behind each
 * method is the unit suite's job (tests/unit/test_store.c); this suite covers
 * what only the running process shows: readiness, the socket, the result
 * shapes on the wire, group commit across connections, `committed` wakes,
 * durability across SIGKILL, clean shutdown on SIGTERM, restarts, exit codes
 * and flags.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sqlite3.h>

#include "common/aotime.h"
#include "common/log.h"
#include "common/sock.h"
#include "proto/bclient.h"
#include "tests/lib/integ.h"
#include "tests/lib/testlib.h"

#define CALL_TIMEOUT_MS		5000
#define READY_TIMEOUT_MS	10000	/* generous: ASan start-up is slow */

static char *dir;
static char sock[256];		/* <dir>/run/storaged.sock */
static char dbpath[256];	/* <dir>/ao.db */
static char logpath[256];	/* the daemons' stderr, for failure messages */
static pid_t srv;

static const char *const project_keys[] = { "id", "path", "origin_url",
	"display_name", "registered_at", "archived_at", NULL };
static const char *const session_keys[] = { "id", "project_id", "num",
	"issue_id", "kind", "harness", "runtime", "state", "termination_reason",
	"is_alive", "activity_state", "activity_at", "activity_source", "branch",
	"workspace_path", "runtime_handle", "prompt", "created_at", "updated_at",
	NULL };
static const char *const pr_keys[] = { "url", "session_id", "number", "state",
	"review_decision", "ci_state", "mergeability", NULL };
static const char *const check_keys[] = { "pr_url", "name", "commit_hash",
	"status", "url", "log_tail", NULL };
static const char *const comment_keys[] = { "comment_id", "author", "file",
	"line", "body", "resolved", NULL };
static const char *const tracker_keys[] = { "session_id", "reaction",
	"attempts", "first_at", "last_at", "signature", "escalated", NULL };
static const char *const notification_keys[] = { "id", "project_id",
	"session_id", "priority", "reaction", "message", "created_at", NULL };
static const char *const event_keys[] = { "seq", "project_id", "session_id",
	"type", "payload", "at", NULL };

static void
setup(void)
{
	dir = testlib_tmpdir();
	snprintf(sock, sizeof(sock), "%s/run/storaged.sock", dir);
	snprintf(dbpath, sizeof(dbpath), "%s/ao.db", dir);
	snprintf(logpath, sizeof(logpath), "%s/storaged.log", dir);
	srv = -1;
	integ_configure(&(struct integ_conf){ .dir = dir, .log = logpath,
	    .ready_ms = READY_TIMEOUT_MS, .call_ms = CALL_TIMEOUT_MS });
}

static void
teardown(void)
{
	testlib_reap_all();
	testlib_rmrf(dir);
	free(dir);
}

/* Runs the daemon to its exit; returns the exit code (-1 if it did not exit). */
static int
run_to_exit(const char *const extra[])
{
	pid_t pid = integ_spawn("ao-storaged", extra, NULL);
	int st = testlib_wait(pid, READY_TIMEOUT_MS);

	if (st == -1) {
		testlib_stop(pid, SIGKILL, 2000);
		return -1;
	}
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* Asserts a bad_request whose message names field. */
static void
expect_bad(struct bclient *bc, const char *method, const struct rpc_buf *b,
    const char *field)
{
	integ_expect_err(bc, method, b, RPC_BAD_REQUEST, field);
}

static void
add_project(struct bclient *bc, const char *id)
{
	struct rpc_buf b;
	struct bclient_msg res;
	char path[128];

	rpc_buf_init(&b);
	snprintf(path, sizeof(path), "/srv/%s", id);
	integ_params(&b, 2);
	rpc_pack_kv_str(&b.pk, "id", id);
	rpc_pack_kv_str(&b.pk, "path", path);
	integ_call_ok(bc, "project.upsert", &b, &res);
	bclient_msg_free(&res);
	rpc_buf_free(&b);
}

/* Creates a session of project; its id goes to id. */
static void
add_session(struct bclient *bc, const char *project, char *id, size_t idlen)
{
	struct rpc_buf b;
	struct bclient_msg res;

	rpc_buf_init(&b);
	integ_params(&b, 1);
	rpc_pack_kv_str(&b.pk, "project_id", project);
	integ_call_ok(bc, "session.create", &b, &res);
	integ_get_str(res.m.result, "id", id, idlen);
	bclient_msg_free(&res);
	rpc_buf_free(&b);
}

/* changelog.head → head (and oldest when non-NULL). */
static int64_t
log_head(struct bclient *bc, int64_t *oldest)
{
	struct bclient_msg res;
	int64_t head;

	integ_call_ok(bc, "changelog.head", NULL, &res);
	head = integ_get_i64(res.m.result, "head");
	if (oldest != NULL)
		*oldest = integ_get_i64(res.m.result, "oldest");
	bclient_msg_free(&res);
	return head;
}

/*
 * A raw connection: requests are written as bytes, responses unpacked one by
 * one, so tests control exactly what shares a write (and thus a batch).
 */
struct raw {
	int fd;
	msgpack_unpacker up;
	msgpack_unpacked msg;	/* the message raw_next returned last */
};

static void
raw_open(struct raw *r)
{
	char err[256];

	r->fd = sock_connect_unix(sock, 0, err, sizeof(err));
	ck_assert_msg(r->fd != -1, "connect %s: %s", sock, err);
	ck_assert(msgpack_unpacker_init(&r->up, 64 * 1024));
	msgpack_unpacked_init(&r->msg);
}

static void
raw_close(struct raw *r)
{
	msgpack_unpacked_destroy(&r->msg);
	msgpack_unpacker_destroy(&r->up);
	close(r->fd);
	r->fd = -1;
}

static void
raw_send(struct raw *r, const void *buf, size_t n)
{
	ck_assert_msg(integ_write_all(r->fd, buf, n) == 0, "write: %s",
	    strerror(errno));
}

/* One read(2) from fd into up's buffer; returns what read returned. */
static ssize_t
unpacker_read(int fd, msgpack_unpacker *up)
{
	ssize_t n;

	if (!msgpack_unpacker_reserve_buffer(up, 64 * 1024))
		ck_abort_msg("msgpack_unpacker_reserve_buffer failed");
	n = read(fd, msgpack_unpacker_buffer(up), msgpack_unpacker_buffer_capacity(up));
	if (n > 0)
		msgpack_unpacker_buffer_consumed(up, (size_t)n);
	return n;
}

/*
 * Unpacks the next message into r->msg.  Returns 1, 0 on EOF (a reset counts:
 * on a Unix socket it only follows the data already sent), -1 when nothing
 * complete arrives within timeout_ms.
 */
static int
raw_next(struct raw *r, int timeout_ms)
{
	int64_t deadline = aotime_mono_ms() + timeout_ms, left;

	for (;;) {
		struct pollfd pfd = { .fd = r->fd, .events = POLLIN };
		msgpack_unpack_return ur;
		ssize_t n;

		ur = msgpack_unpacker_next(&r->up, &r->msg);
		if (ur == MSGPACK_UNPACK_SUCCESS)
			return 1;
		ck_assert_msg(ur != MSGPACK_UNPACK_PARSE_ERROR,
		    "undecodable bytes from storaged");
		left = deadline - aotime_mono_ms();
		if (left <= 0 || poll(&pfd, 1, (int)left) != 1)
			return -1;
		n = unpacker_read(r->fd, &r->up);
		if (n == 0 || (n == -1 && errno == ECONNRESET))
			return 0;
		if (n == -1 && errno != EINTR && errno != EAGAIN)
			ck_abort_msg("read: %s", strerror(errno));
	}
}

/*
 * Decodes a response object: returns its msgid, sets err (RPC_OK for a nil
 * error) and *result.
 */
static uint32_t
resp_of(const msgpack_object *o, struct rpc_error *err, const msgpack_object **result)
{
	const msgpack_object *a;

	ck_assert_msg(o->type == MSGPACK_OBJECT_ARRAY && o->via.array.size == 4,
	    "a response must be an array of 4");
	a = o->via.array.ptr;
	ck_assert_msg(a[0].type == MSGPACK_OBJECT_POSITIVE_INTEGER &&
	    a[0].via.u64 == RPC_RESPONSE, "not a response");
	ck_assert(a[1].type == MSGPACK_OBJECT_POSITIVE_INTEGER);
	rpc_error_from_object(&a[2], err);
	if (result != NULL)
		*result = &a[3];
	return (uint32_t)a[1].via.u64;
}

/* Reads the next response on r (within 10 s); as resp_of. */
static uint32_t
raw_resp(struct raw *r, struct rpc_error *err, const msgpack_object **result)
{
	ck_assert_msg(raw_next(r, 10000) == 1, "no response from storaged: %s",
	    integ_log_tail());
	return resp_of(&r->msg.data, err, result);
}

/* Packs an observation of url for session with 3 checks, the last with status3. */
static void
pack_observation(struct rpc_buf *b, const char *session, const char *url,
    int64_t number, const char *commit, const char *status3)
{
	static const char *const names[] = { "build", "test", "lint" };
	int i;

	integ_params(b, 3);
	rpc_pack_kv_str(&b->pk, "session_id", session);
	rpc_pack_str(&b->pk, "pr");
	msgpack_pack_map(&b->pk, 3);
	rpc_pack_kv_str(&b->pk, "url", url);
	rpc_pack_kv_i64(&b->pk, "number", number);
	rpc_pack_kv_str(&b->pk, "ci_state", "passing");
	rpc_pack_str(&b->pk, "checks");
	msgpack_pack_array(&b->pk, 3);
	for (i = 0; i < 3; i++) {
		msgpack_pack_map(&b->pk, 3);
		rpc_pack_kv_str(&b->pk, "name", names[i]);
		rpc_pack_kv_str(&b->pk, "commit_hash", commit);
		rpc_pack_kv_str(&b->pk, "status", i == 2 ? status3 : "passed");
	}
}

/* Sends bytes on a fresh connection; the daemon must close it unanswered. */
static void
expect_closed(const char *what, const void *bytes, size_t n)
{
	integ_expect_closed(sock, what, bytes, n, true);
}

/* The whole of a file, or NULL; *len gets its size. */
static char *
read_bytes(const char *path, size_t *len)
{
	struct stat st;
	char *buf;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd == -1)
		return NULL;
	if (fstat(fd, &st) == -1 || (buf = malloc((size_t)st.st_size + 1)) == NULL) {
		close(fd);
		return NULL;
	}
	*len = (size_t)st.st_size;
	if (read(fd, buf, *len) != (ssize_t)*len) {
		free(buf);
		buf = NULL;
	}
	close(fd);
	return buf;
}

/* Whether path holds exactly n bytes equal to want. */
static bool
same_bytes(const char *path, const char *want, size_t n)
{
	size_t len;
	char *now = read_bytes(path, &len);
	bool same = now != NULL && len == n && memcmp(now, want, n) == 0;

	free(now);
	return same;
}

/*
 * 1. Start-up: the readiness line comes only once the socket accepts (the
 * first connect after it must work, with no retry), hello names storaged
 * and proto 1, stats answers, and the runtime dir and socket are private.
 */
START_TEST(start_ready_hello)
{
	struct bclient *bc;
	struct bclient_msg res;
	struct stat st;
	char err[256], rundir[300];
	int ready, fd;

	srv = integ_spawn("ao-storaged", NULL, &ready);
	integ_wait_ready("ao-storaged", ready);
	fd = sock_connect_unix(sock, 0, err, sizeof(err));
	ck_assert_msg(fd != -1, "connect right after the ready line: %s", err);
	close(fd);

	bc = integ_connect(sock);
	integ_call_ok(bc, "hello", NULL, &res);
	integ_assert_keys(res.m.result, "hello", (const char *const[]){ "component",
	    "version", "proto", "pid", NULL });
	ck_assert_str_eq(integ_get_str(res.m.result, "component", NULL, 0),
	    "storaged");
	ck_assert_int_eq(integ_get_i64(res.m.result, "proto"), 1);
	ck_assert_int_eq(integ_get_i64(res.m.result, "pid"), srv);
	ck_assert_str_ne(integ_get_str(res.m.result, "version", NULL, 0), "");
	bclient_msg_free(&res);
	integ_call_ok(bc, "ping", NULL, &res);
	bclient_msg_free(&res);

	integ_call_ok(bc, "stats", NULL, &res);
	integ_assert_keys(res.m.result, "stats", (const char *const[]){
	    "connections", "commits", "writes", "head", "oldest", NULL });
	ck_assert_int_eq(integ_get_i64(res.m.result, "head"), 0);
	ck_assert_int_ge(integ_get_i64(res.m.result, "connections"), 1);
	bclient_msg_free(&res);
	bclient_free(bc);

	ck_assert_int_eq(stat(sock, &st), 0);
	ck_assert_int_eq(st.st_mode & 0777, 0600);
	snprintf(rundir, sizeof(rundir), "%s/run", dir);
	ck_assert_int_eq(stat(rundir, &st), 0);
	ck_assert_int_eq(st.st_mode & 0777, 0700);
	ck_assert_int_eq(stat(dbpath, &st), 0);
}
END_TEST

/*
 * 2. Every storaged.sock method once, happy path, with the result shapes
 * of DESIGN.md §3 and the change_log rows §4 says the writes produce.
 */
START_TEST(every_method)
{
	static const char *const want_types[] = { "project_added",
		"session_created", "session_updated", "pr_created",
		"pr_check_recorded", "notification_created" };
	static const char url[] = "https://example.com/app/pull/7";
	const msgpack_object_array *a;
	const msgpack_object *r, *pl;
	struct bclient *bc;
	struct bclient_msg res;
	struct rpc_error err;
	struct rpc_buf b;
	int64_t head;
	uint32_t i;

	srv = integ_start("ao-storaged", NULL);
	bc = integ_connect(sock);
	rpc_buf_init(&b);

	integ_params(&b, 4);
	rpc_pack_kv_str(&b.pk, "id", "app");
	rpc_pack_kv_str(&b.pk, "path", "/srv/app");
	rpc_pack_kv_str(&b.pk, "origin_url", "https://example.com/app.git");
	rpc_pack_kv_str(&b.pk, "display_name", "App");
	integ_call_ok(bc, "project.upsert", &b, &res);
	integ_assert_keys(res.m.result, "project.upsert", project_keys);
	ck_assert_str_eq(integ_get_str(res.m.result, "id", NULL, 0), "app");
	ck_assert(integ_is_nil(res.m.result, "archived_at"));
	bclient_msg_free(&res);

	integ_params(&b, 1);
	rpc_pack_kv_str(&b.pk, "id", "app");
	integ_call_ok(bc, "project.get", &b, &res);
	integ_assert_keys(res.m.result, "project.get", project_keys);
	ck_assert_str_eq(integ_get_str(res.m.result, "path", NULL, 0), "/srv/app");
	ck_assert_str_eq(integ_get_str(res.m.result, "display_name", NULL, 0),
	    "App");
	bclient_msg_free(&res);

	integ_call_ok(bc, "project.list", integ_params(&b, 0), &res);
	ck_assert_uint_eq(integ_get_list(res.m.result, "projects",
	    project_keys)->size, 1);
	bclient_msg_free(&res);

	integ_params(&b, 6);
	rpc_pack_kv_str(&b.pk, "project_id", "app");
	rpc_pack_kv_str(&b.pk, "issue_id", "ISSUE-1");
	rpc_pack_kv_str(&b.pk, "harness", "claude");
	rpc_pack_kv_str(&b.pk, "runtime", "process");
	rpc_pack_kv_str(&b.pk, "branch", "ao/app-1");
	rpc_pack_kv_str(&b.pk, "prompt", "fix the build");
	integ_call_ok(bc, "session.create", &b, &res);
	integ_assert_keys(res.m.result, "session.create", session_keys);
	ck_assert_str_eq(integ_get_str(res.m.result, "id", NULL, 0), "app-1");
	ck_assert_int_eq(integ_get_i64(res.m.result, "num"), 1);
	ck_assert_str_eq(integ_get_str(res.m.result, "state", NULL, 0),
	    "not_started");
	ck_assert_str_eq(integ_get_str(res.m.result, "kind", NULL, 0), "worker");
	ck_assert_str_eq(integ_get_str(res.m.result, "runtime", NULL, 0),
	    "process");
	ck_assert(!integ_get_bool(res.m.result, "is_alive"));
	ck_assert(integ_is_nil(res.m.result, "termination_reason"));
	bclient_msg_free(&res);

	integ_params(&b, 1);
	rpc_pack_kv_str(&b.pk, "id", "app-1");
	integ_call_ok(bc, "session.get", &b, &res);
	integ_assert_keys(res.m.result, "session.get", session_keys);
	ck_assert_str_eq(integ_get_str(res.m.result, "prompt", NULL, 0),
	    "fix the build");
	bclient_msg_free(&res);

	integ_params(&b, 1);
	rpc_pack_kv_str(&b.pk, "project_id", "app");
	integ_call_ok(bc, "session.list", &b, &res);
	ck_assert_uint_eq(integ_get_list(res.m.result, "sessions",
	    session_keys)->size, 1);
	bclient_msg_free(&res);

	integ_params(&b, 4);
	rpc_pack_kv_str(&b.pk, "id", "app-1");
	rpc_pack_kv_str(&b.pk, "state", "working");
	rpc_pack_kv_bool(&b.pk, "is_alive", true);
	rpc_pack_kv_str(&b.pk, "activity_state", "active");
	integ_call_ok(bc, "session.update", &b, &res);
	integ_assert_keys(res.m.result, "session.update", session_keys);
	ck_assert_str_eq(integ_get_str(res.m.result, "state", NULL, 0), "working");
	ck_assert(integ_get_bool(res.m.result, "is_alive"));
	bclient_msg_free(&res);

	integ_params(&b, 4);
	rpc_pack_kv_str(&b.pk, "session_id", "app-1");
	rpc_pack_str(&b.pk, "pr");
	msgpack_pack_map(&b.pk, 3);
	rpc_pack_kv_str(&b.pk, "url", url);
	rpc_pack_kv_i64(&b.pk, "number", 7);
	rpc_pack_kv_str(&b.pk, "ci_state", "failing");
	rpc_pack_str(&b.pk, "checks");
	msgpack_pack_array(&b.pk, 1);
	msgpack_pack_map(&b.pk, 4);
	rpc_pack_kv_str(&b.pk, "name", "build");
	rpc_pack_kv_str(&b.pk, "commit_hash", "c1");
	rpc_pack_kv_str(&b.pk, "status", "failed");
	rpc_pack_kv_str(&b.pk, "log_tail", "error: boom");
	rpc_pack_str(&b.pk, "comments");
	msgpack_pack_array(&b.pk, 1);
	msgpack_pack_map(&b.pk, 6);
	rpc_pack_kv_str(&b.pk, "comment_id", "101");
	rpc_pack_kv_str(&b.pk, "author", "reviewer");
	rpc_pack_kv_str(&b.pk, "file", "main.c");
	rpc_pack_kv_i64(&b.pk, "line", 3);
	rpc_pack_kv_str(&b.pk, "body", "nit");
	rpc_pack_kv_bool(&b.pk, "resolved", false);
	integ_call_ok(bc, "pr.write_observation", &b, &res);
	integ_assert_keys(res.m.result, "pr.write_observation", pr_keys);
	/* Omitted PR enums default to open/none/unknown. */
	ck_assert_str_eq(integ_get_str(res.m.result, "state", NULL, 0), "open");
	ck_assert_str_eq(integ_get_str(res.m.result, "review_decision", NULL, 0),
	    "none");
	ck_assert_str_eq(integ_get_str(res.m.result, "mergeability", NULL, 0),
	    "unknown");
	ck_assert_str_eq(integ_get_str(res.m.result, "ci_state", NULL, 0),
	    "failing");
	bclient_msg_free(&res);

	integ_params(&b, 1);
	rpc_pack_kv_str(&b.pk, "session_id", "app-1");
	integ_call_ok(bc, "pr.list", &b, &res);
	ck_assert_uint_eq(integ_get_list(res.m.result, "prs", pr_keys)->size, 1);
	bclient_msg_free(&res);

	integ_params(&b, 1);
	rpc_pack_kv_str(&b.pk, "url", url);
	integ_call_ok(bc, "pr.get", &b, &res);
	integ_assert_keys(res.m.result, "pr.get", pr_keys);
	ck_assert_int_eq(integ_get_i64(res.m.result, "number"), 7);
	bclient_msg_free(&res);

	integ_call_ok(bc, "pr.checks", &b, &res);
	a = integ_get_list(res.m.result, "checks", check_keys);
	ck_assert_uint_eq(a->size, 1);
	ck_assert_str_eq(integ_get_str(&a->ptr[0], "status", NULL, 0), "failed");
	ck_assert_str_eq(integ_get_str(&a->ptr[0], "log_tail", NULL, 0),
	    "error: boom");
	bclient_msg_free(&res);

	integ_call_ok(bc, "pr.comments", &b, &res);
	a = integ_get_list(res.m.result, "comments", comment_keys);
	ck_assert_uint_eq(a->size, 1);
	ck_assert_str_eq(integ_get_str(&a->ptr[0], "comment_id", NULL, 0), "101");
	ck_assert(!integ_get_bool(&a->ptr[0], "resolved"));
	bclient_msg_free(&res);

	integ_params(&b, 7);
	rpc_pack_kv_str(&b.pk, "session_id", "app-1");
	rpc_pack_kv_str(&b.pk, "reaction", "ci-failed");
	rpc_pack_kv_i64(&b.pk, "attempts", 1);
	rpc_pack_kv_i64(&b.pk, "first_at", 1000);
	rpc_pack_kv_i64(&b.pk, "last_at", 2000);
	rpc_pack_kv_str(&b.pk, "signature", "c1");
	rpc_pack_kv_bool(&b.pk, "escalated", false);
	integ_call_ok(bc, "reaction.put", &b, &res);
	integ_assert_keys(res.m.result, "reaction.put", tracker_keys);
	ck_assert_int_eq(integ_get_i64(res.m.result, "attempts"), 1);
	bclient_msg_free(&res);

	integ_params(&b, 1);
	rpc_pack_kv_str(&b.pk, "session_id", "app-1");
	integ_call_ok(bc, "reaction.get", &b, &res);
	a = integ_get_list(res.m.result, "trackers", tracker_keys);
	ck_assert_uint_eq(a->size, 1);
	ck_assert_str_eq(integ_get_str(&a->ptr[0], "signature", NULL, 0), "c1");
	bclient_msg_free(&res);

	integ_params(&b, 2);
	rpc_pack_kv_str(&b.pk, "session_id", "app-1");
	rpc_pack_kv_str(&b.pk, "reaction", "ci-failed");
	integ_call_ok(bc, "reaction.clear", &b, &res);
	ck_assert_int_eq(integ_get_i64(res.m.result, "cleared"), 1);
	bclient_msg_free(&res);

	integ_params(&b, 4);
	rpc_pack_kv_str(&b.pk, "session_id", "app-1");
	rpc_pack_kv_str(&b.pk, "priority", "urgent");
	rpc_pack_kv_str(&b.pk, "reaction", "ci-failed");
	rpc_pack_kv_str(&b.pk, "message", "CI failed three times");
	integ_call_ok(bc, "notification.add", &b, &res);
	integ_assert_keys(res.m.result, "notification.add", notification_keys);
	/* The project is taken from the session. */
	ck_assert_str_eq(integ_get_str(res.m.result, "project_id", NULL, 0), "app");
	bclient_msg_free(&res);

	integ_call_ok(bc, "notification.list", integ_params(&b, 0), &res);
	ck_assert_uint_eq(integ_get_list(res.m.result, "notifications",
	    notification_keys)->size, 1);
	bclient_msg_free(&res);

	integ_call_ok(bc, "changelog.head", integ_params(&b, 0), &res);
	head = integ_get_i64(res.m.result, "head");
	ck_assert_int_eq(head, 6);
	ck_assert_int_eq(integ_get_i64(res.m.result, "oldest"), 1);
	bclient_msg_free(&res);

	integ_params(&b, 1);
	rpc_pack_kv_i64(&b.pk, "after", 0);
	integ_call_ok(bc, "changelog.read", &b, &res);
	ck_assert_int_eq(integ_get_i64(res.m.result, "head"), head);
	a = integ_get_list(res.m.result, "events", event_keys);
	ck_assert_uint_eq(a->size, 6);
	for (i = 0; i < a->size; i++) {
		r = &a->ptr[i];
		ck_assert_int_eq(integ_get_i64(r, "seq"), i + 1);
		ck_assert_str_eq(integ_get_str(r, "type", NULL, 0), want_types[i]);
		pl = rpc_map_get(r, "payload");
		ck_assert_msg(pl != NULL && pl->type == MSGPACK_OBJECT_MAP,
		    "event %u: the payload is not a map", i + 1);
	}
	/* A session event's payload, per DESIGN.md §4. */
	pl = rpc_map_get(&a->ptr[2], "payload");
	integ_assert_keys(pl, "session_updated payload", (const char *const[]){
	    "id", "state", "termination_reason", "is_alive", "activity_state",
	    NULL });
	ck_assert_str_eq(integ_get_str(pl, "state", NULL, 0), "working");
	ck_assert(integ_get_bool(pl, "is_alive"));
	bclient_msg_free(&res);

	integ_params(&b, 2);
	rpc_pack_kv_str(&b.pk, "name", "cdcd");
	rpc_pack_kv_i64(&b.pk, "seq", head);
	integ_call_ok(bc, "consumer.commit", &b, &res);
	ck_assert_int_eq(integ_get_i64(res.m.result, "seq"), head);
	bclient_msg_free(&res);

	integ_params(&b, 1);
	rpc_pack_kv_str(&b.pk, "name", "cdcd");
	integ_call_ok(bc, "consumer.get", &b, &res);
	integ_assert_keys(res.m.result, "consumer.get", (const char *const[]){
	    "name", "seq", "updated_at", NULL });
	ck_assert_int_eq(integ_get_i64(res.m.result, "seq"), head);
	bclient_msg_free(&res);

	/* session.apply: lcmd's one-step update → {session, notifications}. */
	integ_params(&b, 4);
	rpc_pack_kv_str(&b.pk, "id", "app-1");
	rpc_pack_str(&b.pk, "update");
	msgpack_pack_map(&b.pk, 1);
	rpc_pack_kv_str(&b.pk, "state", "idle");
	rpc_pack_str(&b.pk, "trackers");
	msgpack_pack_array(&b.pk, 1);
	msgpack_pack_map(&b.pk, 2);
	rpc_pack_kv_str(&b.pk, "reaction", "agent-idle");
	rpc_pack_kv_i64(&b.pk, "attempts", 1);
	rpc_pack_str(&b.pk, "notifications");
	msgpack_pack_array(&b.pk, 1);
	msgpack_pack_map(&b.pk, 2);
	rpc_pack_kv_str(&b.pk, "priority", "info");
	rpc_pack_kv_str(&b.pk, "message", "the agent is idle");
	integ_call_ok(bc, "session.apply", &b, &res);
	r = rpc_map_get(res.m.result, "session");
	integ_assert_keys(r, "session.apply session", session_keys);
	ck_assert_str_eq(integ_get_str(r, "state", NULL, 0), "idle");
	ck_assert_uint_eq(integ_get_list(res.m.result, "notifications",
	    notification_keys)->size, 1);
	bclient_msg_free(&res);

	integ_params(&b, 1);
	rpc_pack_kv_str(&b.pk, "id", "app");
	integ_call_ok(bc, "project.archive", &b, &res);
	integ_assert_keys(res.m.result, "project.archive", project_keys);
	ck_assert(!integ_is_nil(res.m.result, "archived_at"));
	bclient_msg_free(&res);
	integ_call_ok(bc, "project.list", integ_params(&b, 0), &res);
	ck_assert_uint_eq(integ_get_list(res.m.result, "projects", NULL)->size, 0);
	bclient_msg_free(&res);
	integ_params(&b, 1);
	rpc_pack_kv_bool(&b.pk, "include_archived", true);
	integ_call_ok(bc, "project.list", &b, &res);
	ck_assert_uint_eq(integ_get_list(res.m.result, "projects", NULL)->size, 1);
	bclient_msg_free(&res);

	add_project(bc, "scratch");
	integ_params(&b, 1);
	rpc_pack_kv_str(&b.pk, "id", "scratch");
	integ_call_ok(bc, "project.delete", &b, &res);
	bclient_msg_free(&res);
	ck_assert_int_eq(integ_call_err(bc, "project.get", &b, &err),
	    RPC_NOT_FOUND);

	integ_call_ok(bc, "watch", integ_params(&b, 0), &res);
	ck_assert_int_eq(integ_get_i64(res.m.result, "head"), log_head(bc, NULL));
	bclient_msg_free(&res);

	rpc_buf_free(&b);
	bclient_free(bc);
}
END_TEST

/*
 * 3. A watcher gets `committed {head}` after a commit that adds change_log
 * rows, and nothing after writes that add none: a branch-only update, a
 * re-write of the same state, a failed write.
 */
START_TEST(watch_committed)
{
	struct bclient *watcher, *bc;
	struct bclient_msg res, n;
	struct rpc_error err;
	struct rpc_buf b;
	char id[64];
	int64_t head;

	srv = integ_start("ao-storaged", NULL);
	watcher = integ_connect(sock);
	bc = integ_connect(sock);
	rpc_buf_init(&b);
	add_project(bc, "app");

	integ_call_ok(watcher, "watch", NULL, &res);
	ck_assert_int_eq(integ_get_i64(res.m.result, "head"), 1);
	bclient_msg_free(&res);

	add_session(bc, "app", id, sizeof(id));
	head = log_head(bc, NULL);
	ck_assert_int_eq(head, 2);
	ck_assert_msg(bclient_next(watcher, 2000, &n, &err) == 1,
	    "no committed notification: %s", err.message);
	ck_assert_str_eq(n.m.method, "committed");
	ck_assert_int_eq(integ_get_i64(n.m.params, "head"), head);
	/* When COMMIT returned, on this host's monotonic clock: just now. */
	ck_assert_int_le(integ_get_i64(n.m.params, "mono_us"), aotime_mono_us());
	ck_assert_int_gt(integ_get_i64(n.m.params, "mono_us"),
	    aotime_mono_us() - 2000000);
	bclient_msg_free(&n);

	integ_params(&b, 2);
	rpc_pack_kv_str(&b.pk, "id", id);
	rpc_pack_kv_str(&b.pk, "branch", "feature/x");
	integ_call_ok(bc, "session.update", &b, &res);
	bclient_msg_free(&res);
	integ_params(&b, 2);
	rpc_pack_kv_str(&b.pk, "id", id);
	rpc_pack_kv_str(&b.pk, "state", "not_started");
	integ_call_ok(bc, "session.update", &b, &res);
	bclient_msg_free(&res);
	integ_params(&b, 2);
	rpc_pack_kv_str(&b.pk, "id", id);
	rpc_pack_kv_str(&b.pk, "state", "bogus");
	ck_assert_int_eq(integ_call_err(bc, "session.update", &b, &err),
	    RPC_BAD_REQUEST);
	ck_assert_int_eq(log_head(bc, NULL), head);
	ck_assert_msg(bclient_next(watcher, 300, &n, &err) == 0,
	    "a committed notification for a write that changed nothing watched");

	integ_params(&b, 2);
	rpc_pack_kv_str(&b.pk, "id", id);
	rpc_pack_kv_str(&b.pk, "state", "working");
	integ_call_ok(bc, "session.update", &b, &res);
	bclient_msg_free(&res);
	ck_assert_int_eq(bclient_next(watcher, 2000, &n, &err), 1);
	ck_assert_str_eq(n.m.method, "committed");
	ck_assert_int_eq(integ_get_i64(n.m.params, "head"), head + 1);
	bclient_msg_free(&n);

	rpc_buf_free(&b);
	bclient_free(bc);
	bclient_free(watcher);
}
END_TEST

/*
 * 6. Read-your-writes: an update and a get pipelined in one write; the get
 * sees the update although reads are otherwise answered without waiting
 * for the group commit.
 */
START_TEST(read_your_writes)
{
	static const char *const states[] = { "working", "idle" };
	const msgpack_object *result;
	struct bclient *bc;
	struct rpc_error err;
	struct rpc_buf b, out;
	struct raw r;
	char id[64];
	uint32_t msgid;
	int round, k;

	srv = integ_start("ao-storaged", NULL);
	bc = integ_connect(sock);
	add_project(bc, "app");
	add_session(bc, "app", id, sizeof(id));
	rpc_buf_init(&b);
	rpc_buf_init(&out);
	raw_open(&r);
	for (round = 0; round < 20; round++) {
		const char *want = states[round % 2];

		rpc_buf_reset(&out);
		integ_params(&b, 2);
		rpc_pack_kv_str(&b.pk, "id", id);
		rpc_pack_kv_str(&b.pk, "state", want);
		integ_pack_request(&out, 2 * round + 1, "session.update", &b);
		integ_params(&b, 1);
		rpc_pack_kv_str(&b.pk, "id", id);
		integ_pack_request(&out, 2 * round + 2, "session.get", &b);
		raw_send(&r, out.sb.data, out.sb.size);
		for (k = 0; k < 2; k++) {
			msgid = raw_resp(&r, &err, &result);
			ck_assert_msg(err.code == RPC_OK, "msgid %u: %s", msgid,
			    err.message);
			ck_assert_msg(msgid == (uint32_t)(2 * round + 1 + k),
			    "answered out of order: msgid %u", msgid);
			ck_assert_str_eq(integ_get_str(result, "state", NULL, 0),
			    want);
		}
	}
	raw_close(&r);
	rpc_buf_free(&out);
	rpc_buf_free(&b);
	bclient_free(bc);
}
END_TEST

/*
 * 4. Concurrent creates: 8 connections each pipeline 50 session.create for
 * one project; the ids are app-1..app-400, each exactly once.
 */
START_TEST(concurrent_creates)
{
	enum { NCONN = 8, PER = 50, TOTAL = NCONN * PER };
	const msgpack_object *result;
	struct raw r[NCONN];
	struct bclient *bc;
	struct bclient_msg res;
	struct rpc_error err;
	struct rpc_buf b, out;
	bool seen[TOTAL + 1] = { false }, got[PER + 1];
	uint32_t msgid;
	char id[64];
	int c, i, num;

	srv = integ_start("ao-storaged", NULL);
	bc = integ_connect(sock);
	add_project(bc, "app");
	rpc_buf_init(&b);
	rpc_buf_init(&out);
	integ_params(&b, 1);
	rpc_pack_kv_str(&b.pk, "project_id", "app");
	for (c = 0; c < NCONN; c++)
		raw_open(&r[c]);
	for (c = 0; c < NCONN; c++) {
		rpc_buf_reset(&out);
		for (i = 1; i <= PER; i++)
			integ_pack_request(&out, i, "session.create", &b);
		raw_send(&r[c], out.sb.data, out.sb.size);
	}
	for (c = 0; c < NCONN; c++) {
		memset(got, 0, sizeof(got));
		for (i = 0; i < PER; i++) {
			msgid = raw_resp(&r[c], &err, &result);
			ck_assert_msg(err.code == RPC_OK, "conn %d msgid %u: %s: %s", c,
			    msgid, rpc_code_name(err.code), err.message);
			ck_assert(msgid >= 1 && msgid <= PER && !got[msgid]);
			got[msgid] = true;
			integ_get_str(result, "id", id, sizeof(id));
			ck_assert_msg(sscanf(id, "app-%d", &num) == 1 && num >= 1 &&
			    num <= TOTAL, "unexpected id '%s'", id);
			ck_assert_msg(!seen[num], "id %s assigned twice", id);
			seen[num] = true;
			ck_assert_int_eq(integ_get_i64(result, "num"), num);
		}
		raw_close(&r[c]);
	}
	for (i = 1; i <= TOTAL; i++)
		ck_assert_msg(seen[i], "app-%d never assigned", i);

	integ_params(&b, 1);
	rpc_pack_kv_str(&b.pk, "project_id", "app");
	integ_call_ok(bc, "session.list", &b, &res);
	ck_assert_uint_eq(integ_get_list(res.m.result, "sessions", NULL)->size,
	    TOTAL);
	bclient_msg_free(&res);
	ck_assert_int_eq(log_head(bc, NULL), 1 + TOTAL);
	rpc_buf_free(&out);
	rpc_buf_free(&b);
	bclient_free(bc);
}
END_TEST

/*
 * 5. Group commit isolation over the socket: [create, observation with a bad
 * third check, create] in one write run as one batch; the bad request fails
 * alone and leaves nothing of the observation behind.
 */
START_TEST(group_commit_isolation)
{
	static const char url[] = "https://example.com/app/pull/1";
	const msgpack_object *result;
	struct bclient *bc;
	struct bclient_msg res;
	struct rpc_error err, e[4];
	struct rpc_buf b, out;
	struct raw r;
	char ids[4][64];
	int64_t commits0;
	uint32_t msgid;
	int i;

	srv = integ_start("ao-storaged", NULL);
	bc = integ_connect(sock);
	add_project(bc, "app");
	commits0 = integ_stat(bc, NULL, "commits");
	rpc_buf_init(&b);
	rpc_buf_init(&out);
	integ_params(&b, 1);
	rpc_pack_kv_str(&b.pk, "project_id", "app");
	integ_pack_request(&out, 1, "session.create", &b);
	/* app-1 is created by request 1 of the same batch. */
	pack_observation(&b, "app-1", url, 1, "c1", "bogus");
	integ_pack_request(&out, 2, "pr.write_observation", &b);
	integ_params(&b, 1);
	rpc_pack_kv_str(&b.pk, "project_id", "app");
	integ_pack_request(&out, 3, "session.create", &b);
	raw_open(&r);
	raw_send(&r, out.sb.data, out.sb.size);
	memset(ids, 0, sizeof(ids));
	for (i = 0; i < 3; i++) {
		msgid = raw_resp(&r, &err, &result);
		ck_assert(msgid >= 1 && msgid <= 3);
		e[msgid] = err;
		if (err.code == RPC_OK && msgid != 2)
			integ_get_str(result, "id", ids[msgid], sizeof(ids[msgid]));
	}
	raw_close(&r);
	ck_assert_msg(e[1].code == RPC_OK, "create 1: %s", e[1].message);
	ck_assert_msg(e[3].code == RPC_OK, "create 3: %s", e[3].message);
	ck_assert_str_eq(ids[1], "app-1");
	ck_assert_str_eq(ids[3], "app-2");
	ck_assert_msg(e[2].code == RPC_BAD_REQUEST, "observation: %s (%s)",
	    rpc_code_name(e[2].code), e[2].message);
	ck_assert_msg(strstr(e[2].message, "checks[2]") != NULL,
	    "the error does not name checks[2]: %s", e[2].message);
	/* One write of three requests: one group commit. */
	ck_assert_int_eq(integ_stat(bc, NULL, "commits"), commits0 + 1);

	integ_params(&b, 1);
	rpc_pack_kv_str(&b.pk, "url", url);
	ck_assert_int_eq(integ_call_err(bc, "pr.get", &b, &err), RPC_NOT_FOUND);
	ck_assert_int_eq(integ_call_err(bc, "pr.checks", &b, &err), RPC_NOT_FOUND);
	integ_params(&b, 1);
	rpc_pack_kv_str(&b.pk, "session_id", "app-1");
	integ_call_ok(bc, "pr.list", &b, &res);
	ck_assert_uint_eq(integ_get_list(res.m.result, "prs", NULL)->size, 0);
	bclient_msg_free(&res);
	/* project_added and two session_created; nothing of the PR. */
	ck_assert_int_eq(log_head(bc, NULL), 3);
	rpc_buf_free(&out);
	rpc_buf_free(&b);
	bclient_free(bc);
}
END_TEST

/*
 * 7a. Framing violations and non-envelopes close that connection only; the
 * daemon allocates nothing near the declared sizes, keeps its data and its
 * other connections.
 */
START_TEST(hostile_bytes)
{
	static const unsigned char arr_4g[] = { 0xdd, 0xff, 0xff, 0xff, 0xff };
	static const unsigned char arr_16m[] = { 0xdd, 0x01, 0x00, 0x00, 0x00 };
	static const unsigned char str_1g[] = { 0xdb, 0x40, 0x00, 0x00, 0x00 };
	static const unsigned char map_4g[] = { 0xdf, 0xff, 0xff, 0xff, 0xff };
	static const unsigned char never[] = { 0xc1 };
	static const unsigned char bare_map[] = { 0x81, 0xa1, 'a', 0x01 };
	static const unsigned char bare_int[] = { 0x2a };
	unsigned char deep[41];
	struct bclient *bc, *idle;
	struct bclient_msg res;
	struct rpc_buf b;
	char id[64];
	int64_t rss0, head;

	srv = integ_start("ao-storaged", NULL);
	bc = integ_connect(sock);
	add_project(bc, "app");
	add_session(bc, "app", id, sizeof(id));
	head = log_head(bc, NULL);
	bclient_free(bc);
	idle = integ_connect(sock);
	rss0 = integ_rss_kib(srv);

	memset(deep, 0x91, sizeof(deep) - 1);	/* [[[[...[]...]]]] 40 deep */
	deep[sizeof(deep) - 1] = 0x90;
	expect_closed("array32 of 2^32-1", arr_4g, sizeof(arr_4g));
	expect_closed("array32 of 16 Mi", arr_16m, sizeof(arr_16m));
	expect_closed("str32 of 1 GiB", str_1g, sizeof(str_1g));
	expect_closed("map32 of 2^32-1", map_4g, sizeof(map_4g));
	expect_closed("0xc1", never, sizeof(never));
	expect_closed("40 nested arrays", deep, sizeof(deep));
	expect_closed("a bare map", bare_map, sizeof(bare_map));
	expect_closed("a bare integer", bare_int, sizeof(bare_int));

	integ_assert_hello_at(sock, "storaged", srv);
	integ_call_ok(idle, "ping", NULL, &res);
	bclient_msg_free(&res);
	rpc_buf_init(&b);
	integ_params(&b, 1);
	rpc_pack_kv_str(&b.pk, "id", id);
	integ_call_ok(idle, "session.get", &b, &res);
	ck_assert_str_eq(integ_get_str(res.m.result, "project_id", NULL, 0), "app");
	bclient_msg_free(&res);
	ck_assert_int_eq(log_head(idle, NULL), head);
	rpc_buf_free(&b);
	ck_assert_int_gt(rss0, 0);
	ck_assert_msg(integ_rss_kib(srv) - rss0 < 16 * 1024,
	    "RSS grew from %lld to %lld KiB", (long long)rss0,
	    (long long)integ_rss_kib(srv));
	bclient_free(idle);
}
END_TEST

/* 7b. A real 17 MiB request is cut off at its header; the daemon lives on. */
START_TEST(oversized_request)
{
	size_t n = 17u * 1024 * 1024, total;
	struct bclient *bc;
	struct rpc_buf b;
	unsigned char *big;
	char err[256];
	ssize_t w;
	int fd;

	srv = integ_start("ao-storaged", NULL);
	big = malloc(n + 64);
	ck_assert_ptr_nonnull(big);
	memset(big, 'x', n + 64);
	rpc_buf_init(&b);
	rpc_pack_request_head(&b.pk, 1, "project.upsert");
	msgpack_pack_array(&b.pk, 1);
	msgpack_pack_map(&b.pk, 2);
	rpc_pack_kv_str(&b.pk, "id", "big");
	rpc_pack_str(&b.pk, "path");
	msgpack_pack_bin(&b.pk, n);
	memcpy(big, b.sb.data, b.sb.size);
	total = b.sb.size + n;
	rpc_buf_free(&b);
	fd = sock_connect_unix(sock, 0, err, sizeof(err));
	ck_assert_msg(fd != -1, "connect: %s", err);
	/* The daemon closes mid-stream: the write fails (EPIPE or ECONNRESET). */
	for (size_t sent = 0; sent < total; sent += (size_t)w)
		if ((w = write(fd, big + sent, total - sent)) <= 0)
			break;
	close(fd);
	free(big);
	integ_assert_hello_at(sock, "storaged", srv);
	bc = integ_connect(sock);
	ck_assert_int_eq(integ_stat(bc, NULL, "connections"), 1);
	ck_assert_int_eq(log_head(bc, NULL), 0);
	bclient_free(bc);
}
END_TEST

/*
 * 7c. A bad envelope with a readable msgid, and params of the wrong type,
 * get bad_request (naming the field) on a connection that stays usable;
 * an unknown method gets unknown_method; none of it writes anything.
 */
START_TEST(bad_requests)
{
	static const unsigned char method_int[] = { 0x94, 0x00, 0x07, 0x05, 0x90 };
	static const unsigned char params_int[] = { 0x94, 0x00, 0x09, 0xab,
		's', 'e', 's', 's', 'i', 'o', 'n', '.', 'g', 'e', 't', 0x91, 0x05 };
	struct bclient *bc;
	struct rpc_error err;
	struct rpc_buf b, out;
	struct raw r;
	char id[64];
	int64_t head;

	srv = integ_start("ao-storaged", NULL);
	bc = integ_connect(sock);
	add_project(bc, "app");
	add_session(bc, "app", id, sizeof(id));
	head = log_head(bc, NULL);
	rpc_buf_init(&b);
	rpc_buf_init(&out);

	raw_open(&r);
	raw_send(&r, method_int, sizeof(method_int));		/* [0, 7, 5, []] */
	ck_assert_uint_eq(raw_resp(&r, &err, NULL), 7);
	ck_assert_int_eq(err.code, RPC_BAD_REQUEST);
	raw_send(&r, params_int, sizeof(params_int));	/* params [5] */
	ck_assert_uint_eq(raw_resp(&r, &err, NULL), 9);
	ck_assert_int_eq(err.code, RPC_BAD_REQUEST);
	integ_pack_request(&out, 10, "ping", NULL);
	raw_send(&r, out.sb.data, out.sb.size);
	ck_assert_uint_eq(raw_resp(&r, &err, NULL), 10);
	ck_assert_int_eq(err.code, RPC_OK);
	raw_close(&r);

	integ_params(&b, 1);
	rpc_pack_kv_i64(&b.pk, "id", 5);
	expect_bad(bc, "session.get", &b, "id");
	integ_params(&b, 2);
	rpc_pack_kv_str(&b.pk, "id", id);
	rpc_pack_kv_i64(&b.pk, "bogus", 1);
	expect_bad(bc, "session.get", &b, "bogus");
	integ_params(&b, 2);
	rpc_pack_kv_str(&b.pk, "id", "x");
	rpc_pack_kv_i64(&b.pk, "path", 5);
	expect_bad(bc, "project.upsert", &b, "path");
	integ_params(&b, 2);
	rpc_pack_kv_str(&b.pk, "id", "x");
	rpc_pack_str(&b.pk, "path");
	rpc_pack_strn(&b.pk, "/srv/\xff\xfe", 7);
	expect_bad(bc, "project.upsert", &b, "path");
	integ_params(&b, 1);
	rpc_pack_kv_i64(&b.pk, "include_archived", 1);
	expect_bad(bc, "project.list", &b, "include_archived");
	integ_params(&b, 2);
	rpc_pack_kv_str(&b.pk, "id", id);
	rpc_pack_kv_i64(&b.pk, "state", 7);
	expect_bad(bc, "session.update", &b, "state");
	integ_params(&b, 2);
	rpc_pack_kv_str(&b.pk, "id", id);
	rpc_pack_kv_str(&b.pk, "is_alive", "yes");
	expect_bad(bc, "session.update", &b, "is_alive");
	integ_params(&b, 2);
	rpc_pack_kv_str(&b.pk, "id", id);
	rpc_pack_kv_str(&b.pk, "activity_at", "now");
	expect_bad(bc, "session.update", &b, "activity_at");
	integ_params(&b, 2);
	rpc_pack_kv_str(&b.pk, "session_id", id);
	rpc_pack_str(&b.pk, "pr");
	msgpack_pack_map(&b.pk, 2);
	rpc_pack_kv_str(&b.pk, "url", "https://example.com/p/1");
	rpc_pack_kv_str(&b.pk, "number", "seven");
	expect_bad(bc, "pr.write_observation", &b, "pr.number");
	integ_params(&b, 3);
	rpc_pack_kv_str(&b.pk, "session_id", id);
	rpc_pack_str(&b.pk, "pr");
	msgpack_pack_map(&b.pk, 2);
	rpc_pack_kv_str(&b.pk, "url", "https://example.com/p/1");
	rpc_pack_kv_i64(&b.pk, "number", 1);
	rpc_pack_str(&b.pk, "checks");
	msgpack_pack_array(&b.pk, 1);
	msgpack_pack_map(&b.pk, 3);
	rpc_pack_kv_str(&b.pk, "name", "build");
	rpc_pack_kv_str(&b.pk, "commit_hash", "c1");
	rpc_pack_kv_i64(&b.pk, "status", 3);
	expect_bad(bc, "pr.write_observation", &b, "checks[0].status");
	integ_params(&b, 1);
	rpc_pack_kv_str(&b.pk, "after", "zero");
	expect_bad(bc, "changelog.read", &b, "after");
	integ_params(&b, 2);
	rpc_pack_kv_str(&b.pk, "name", "c");
	rpc_pack_kv_str(&b.pk, "seq", "1");
	expect_bad(bc, "consumer.commit", &b, "seq");

	ck_assert_int_eq(integ_call_err(bc, "session.frobnicate",
	    integ_params(&b, 0), &err), RPC_UNKNOWN_METHOD);
	ck_assert_int_eq(integ_call_err(bc, "session.frobnicate", NULL, &err),
	    RPC_UNKNOWN_METHOD);
	ck_assert_int_eq(log_head(bc, NULL), head);
	rpc_buf_free(&out);
	rpc_buf_free(&b);
	bclient_free(bc);
}
END_TEST

/*
 * 7d. --max-message-bytes bounds both directions: a larger request closes
 * the connection, a larger result is a too_large error, and neither costs
 * the daemon anything.
 */
START_TEST(message_limit_flag)
{
	static const char *const flags[] = { "--max-message-bytes=4KiB", NULL };
	struct bclient *bc;
	struct rpc_error err;
	struct rpc_buf b, out;
	char id[64], prompt[5000];
	int i;

	srv = integ_start("ao-storaged", flags);
	bc = integ_connect(sock);
	add_project(bc, "app");
	/* About 400 bytes each: 20 of them do not fit in one 4 KiB result. */
	for (i = 0; i < 20; i++)
		add_session(bc, "app", id, sizeof(id));
	rpc_buf_init(&b);
	integ_params(&b, 1);
	rpc_pack_kv_str(&b.pk, "project_id", "app");
	ck_assert_int_eq(integ_call_err(bc, "session.list", &b, &err),
	    RPC_TOO_LARGE);

	memset(prompt, 'p', sizeof(prompt) - 1);
	prompt[sizeof(prompt) - 1] = '\0';
	integ_params(&b, 2);
	rpc_pack_kv_str(&b.pk, "project_id", "app");
	rpc_pack_kv_str(&b.pk, "prompt", prompt);
	rpc_buf_init(&out);
	integ_pack_request(&out, 1, "session.create", &b);
	expect_closed("a 5 KB request", out.sb.data, out.sb.size);
	rpc_buf_free(&out);

	integ_assert_hello_at(sock, "storaged", srv);
	ck_assert_int_eq(log_head(bc, NULL), 21);
	rpc_buf_free(&b);
	bclient_free(bc);
}
END_TEST

/* 11. A bad flag value is a permanent error: exit 100. */
START_TEST(bad_flag)
{
	static const char *const abc[] = { "--retention-rows=abc", NULL };
	static const char *const zero[] = { "--retention-rows=0", NULL };
	static const char *const fast[] = { "--janitor-interval-ms=1", NULL };
	static const char *const unknown[] = { "--retention-bogus=1", NULL };
	char *log;

	ck_assert_int_eq(run_to_exit(abc), EXIT_PERM);
	ck_assert_int_eq(run_to_exit(zero), EXIT_PERM);
	ck_assert_int_eq(run_to_exit(fast), EXIT_PERM);
	ck_assert_int_eq(run_to_exit(unknown), EXIT_PERM);
	log = testlib_read_file(logpath);
	ck_assert_ptr_nonnull(log);
	ck_assert_msg(strstr(log, "retention_rows") != NULL ||
	    strstr(log, "retention-rows") != NULL,
	    "no message names retention_rows: %s", log);
	free(log);
	/* Nothing was started: no socket. */
	ck_assert_int_eq(access(sock, F_OK), -1);
}
END_TEST

/*
 * 8. SIGKILL in the middle of a stream of writes.  Three connections each
 * keep a window of requests in flight, alternating session.update (activity_at
 * and branch from the msgid, on the connection's own session) and
 * pr.write_observation (a fresh PR with exactly 3 checks).  After ~500 acks
 * the daemon is killed; after a restart every acknowledged write must be
 * there and every PR must have its 3 checks (no half observation).
 */
#define KILL_CONNS	3
#define KILL_PER_CONN	1000
#define KILL_WINDOW	200
#define KILL_AFTER	500

struct stream {
	int fd;
	char session[64];
	struct rpc_buf reqs;		/* every request, back to back */
	size_t ends[KILL_PER_CONN + 1];	/* ends[i]: offset past msgid i */
	size_t sent;			/* bytes written */
	bool acked[KILL_PER_CONN + 1];
	uint32_t nresp;
	msgpack_unpacker up;
	msgpack_unpacked msg;
	bool eof;
};

static void
kill_url(char *buf, size_t len, int c, uint32_t msgid)
{
	snprintf(buf, len, "https://example.com/r%d/pull/%u", c, msgid);
}

static void
stream_init(struct stream *s, int c, const char *session)
{
	char url[128], commit[32], branch[32];
	struct rpc_buf b;
	uint32_t i;

	memset(s, 0, sizeof(*s));
	snprintf(s->session, sizeof(s->session), "%.63s", session);
	rpc_buf_init(&s->reqs);
	rpc_buf_init(&b);
	for (i = 1; i <= KILL_PER_CONN; i++) {
		if (i % 2 == 1) {
			snprintf(branch, sizeof(branch), "b%u", i);
			integ_params(&b, 3);
			rpc_pack_kv_str(&b.pk, "id", session);
			rpc_pack_kv_i64(&b.pk, "activity_at", i);
			rpc_pack_kv_str(&b.pk, "branch", branch);
			integ_pack_request(&s->reqs, i, "session.update", &b);
		} else {
			kill_url(url, sizeof(url), c, i);
			snprintf(commit, sizeof(commit), "h%u", i);
			pack_observation(&b, session, url, i, commit, "passed");
			integ_pack_request(&s->reqs, i, "pr.write_observation", &b);
		}
		s->ends[i] = s->reqs.sb.size;
	}
	rpc_buf_free(&b);
	s->fd = -1;
	msgpack_unpacked_init(&s->msg);
	ck_assert(msgpack_unpacker_init(&s->up, 64 * 1024));
}

static void
stream_free(struct stream *s)
{
	rpc_buf_free(&s->reqs);
	msgpack_unpacked_destroy(&s->msg);
	msgpack_unpacker_destroy(&s->up);
	if (s->fd != -1)
		close(s->fd);
}

/* The last msgid whose bytes were all written. */
static uint32_t
stream_nsent(const struct stream *s)
{
	uint32_t i = 0;

	while (i < KILL_PER_CONN && s->ends[i + 1] <= s->sent)
		i++;
	return i;
}

/* How far the stream may be written: KILL_WINDOW requests past the last response. */
static size_t
stream_limit(const struct stream *s)
{
	uint32_t n = s->nresp + KILL_WINDOW;

	return s->ends[n > KILL_PER_CONN ? KILL_PER_CONN : n];
}

/* Reads what is there; records acks.  Returns the number of new acks. */
static int
stream_read(struct stream *s)
{
	struct rpc_error err;
	uint32_t msgid;
	ssize_t n;
	int acks = 0;

	n = unpacker_read(s->fd, &s->up);
	if (n == 0 || (n == -1 && errno == ECONNRESET))
		s->eof = true;
	else if (n == -1 && errno != EAGAIN && errno != EINTR)
		ck_abort_msg("read: %s", strerror(errno));
	while (msgpack_unpacker_next(&s->up, &s->msg) == MSGPACK_UNPACK_SUCCESS) {
		msgid = resp_of(&s->msg.data, &err, NULL);
		ck_assert_msg(err.code == RPC_OK, "%s msgid %u: %s: %s", s->session,
		    msgid, rpc_code_name(err.code), err.message);
		ck_assert(msgid >= 1 && msgid <= KILL_PER_CONN && !s->acked[msgid]);
		s->acked[msgid] = true;
		s->nresp++;
		acks++;
	}
	return acks;
}

/*
 * Runs the streams on fresh connections to the running daemon and sends it
 * sig partway; reads every response until the daemon is gone.  Returns the
 * number of acks.
 */
static int64_t
streams_run(struct stream st[], int sig)
{
	int64_t deadline, acks = 0;
	bool signalled = false;
	char err[256];
	int c, status;

	for (c = 0; c < KILL_CONNS; c++) {
		st[c].fd = sock_connect_unix(sock, 1, err, sizeof(err));
		ck_assert_msg(st[c].fd != -1, "connect: %s", err);
	}
	deadline = aotime_mono_ms() + 15000;
	for (;;) {
		struct pollfd pfd[KILL_CONNS];
		int nopen = 0;

		for (c = 0; c < KILL_CONNS; c++) {
			pfd[c].fd = st[c].eof ? -1 : st[c].fd;
			pfd[c].events = POLLIN;
			if (!signalled && st[c].sent < stream_limit(&st[c]))
				pfd[c].events |= POLLOUT;
			pfd[c].revents = 0;
			nopen += !st[c].eof;
		}
		if (nopen == 0)
			break;
		ck_assert_msg(aotime_mono_ms() < deadline,
		    "the stream stalled after %lld acks: %s", (long long)acks,
		    integ_log_tail());
		if (poll(pfd, KILL_CONNS, 1000) <= 0)
			continue;
		for (c = 0; c < KILL_CONNS; c++) {
			struct stream *s = &st[c];
			size_t limit = stream_limit(s);
			ssize_t w;

			if ((pfd[c].revents & POLLOUT) && !signalled &&
			    s->sent < limit) {
				w = write(s->fd, s->reqs.sb.data + s->sent,
				    limit - s->sent);
				if (w > 0)
					s->sent += (size_t)w;
			}
			if (pfd[c].revents & (POLLIN | POLLHUP | POLLERR))
				acks += stream_read(s);
		}
		/*
		 * Acks arrive a batch at a time; signalling right then would hit
		 * an idle daemon.  Wait until every connection has requests in
		 * flight again, then let the daemon get up to 20 ms into its
		 * group commit (a batch this size usually takes longer).
		 */
		if (!signalled && acks >= KILL_AFTER) {
			for (c = 0; c < KILL_CONNS; c++)
				if (st[c].sent <= st[c].ends[st[c].nresp])
					break;
			if (c == KILL_CONNS) {
				usleep((useconds_t)(aotime_mono_us() % 20000));
				kill(srv, sig);
				signalled = true;
			}
		}
	}
	ck_assert(signalled);
	status = testlib_wait(srv, 5000);
	if (sig == SIGKILL)
		ck_assert_msg(status != -1 && WIFSIGNALED(status) &&
		    WTERMSIG(status) == SIGKILL, "ao-storaged was not killed");
	else
		ck_assert_msg(status != -1 && WIFEXITED(status) &&
		    WEXITSTATUS(status) == 0, "ao-storaged: status 0x%x after "
		    "signal %d", status, sig);
	/* The window guarantees the signal landed mid-stream. */
	ck_assert_int_lt(acks, KILL_CONNS * KILL_PER_CONN);
	return acks;
}

/*
 * Checks the restarted daemon's data against the streams: every acked
 * write is there, nothing that was never sent is, every PR has its 3
 * checks of one commit.  With exact, nothing unacknowledged is there
 * either (a clean stop answers all it committed).
 */
static void
streams_verify(struct stream st[], bool exact)
{
	static bool found[KILL_PER_CONN + 1];
	const msgpack_object_array *prs, *checks;
	struct bclient *bc = integ_connect(sock);
	struct bclient_msg res, cres;
	struct rpc_buf b;
	char want[32];
	uint32_t i, j, k, maxupd, nsent;
	int64_t at;
	int c;

	rpc_buf_init(&b);
	for (c = 0; c < KILL_CONNS; c++) {
		struct stream *s = &st[c];

		nsent = stream_nsent(s);
		maxupd = 0;
		for (i = 1; i <= KILL_PER_CONN; i += 2)
			if (s->acked[i])
				maxupd = i;
		/* The newest acked update, or a later one that was sent. */
		integ_params(&b, 1);
		rpc_pack_kv_str(&b.pk, "id", s->session);
		integ_call_ok(bc, "session.get", &b, &res);
		if (integ_is_nil(res.m.result, "activity_at"))
			ck_assert_msg(maxupd == 0, "%s: acknowledged update %u is lost",
			    s->session, maxupd);
		else {
			at = integ_get_i64(res.m.result, "activity_at");
			ck_assert_msg(at >= maxupd && at <= nsent,
			    "%s: activity_at %lld, acked up to %u, sent %u",
			    s->session, (long long)at, maxupd, nsent);
			ck_assert_msg(!exact || at == maxupd, "%s: update %lld was "
			    "committed but never answered (last answered: %u)",
			    s->session, (long long)at, maxupd);
			snprintf(want, sizeof(want), "b%lld", (long long)at);
			ck_assert_str_eq(integ_get_str(res.m.result, "branch",
			    NULL, 0), want);
		}
		bclient_msg_free(&res);

		memset(found, 0, sizeof(found));
		integ_params(&b, 1);
		rpc_pack_kv_str(&b.pk, "session_id", s->session);
		integ_call_ok(bc, "pr.list", &b, &res);
		prs = integ_get_list(res.m.result, "prs", pr_keys);
		for (j = 0; j < prs->size; j++) {
			const msgpack_object *pr = &prs->ptr[j];
			int64_t num = integ_get_i64(pr, "number");

			ck_assert_msg(num >= 2 && num <= nsent && num % 2 == 0,
			    "%s: a PR numbered %lld was never sent", s->session,
			    (long long)num);
			ck_assert_msg(!exact || s->acked[num], "%s: observation %lld "
			    "was committed but never answered", s->session,
			    (long long)num);
			found[num] = true;
			snprintf(want, sizeof(want), "h%lld", (long long)num);
			integ_params(&b, 1);
			rpc_pack_kv_str(&b.pk, "url", integ_get_str(pr, "url",
			    NULL, 0));
			integ_call_ok(bc, "pr.checks", &b, &cres);
			checks = integ_get_list(cres.m.result, "checks",
			    check_keys);
			ck_assert_msg(checks->size == 3, "%s: PR %lld has %u checks",
			    s->session, (long long)num, checks->size);
			for (k = 0; k < checks->size; k++)
				ck_assert_str_eq(integ_get_str(&checks->ptr[k],
				    "commit_hash", NULL, 0), want);
			bclient_msg_free(&cres);
		}
		bclient_msg_free(&res);
		for (i = 2; i <= KILL_PER_CONN; i += 2)
			ck_assert_msg(!s->acked[i] || found[i],
			    "%s: acknowledged observation %u is lost", s->session, i);
	}
	rpc_buf_free(&b);
	bclient_free(bc);
}

/* Starts the daemon with a project and one session per stream. */
static void
streams_setup(struct stream st[])
{
	struct bclient *bc;
	char id[64];
	int c;

	srv = integ_start("ao-storaged", NULL);
	bc = integ_connect(sock);
	add_project(bc, "app");
	for (c = 0; c < KILL_CONNS; c++) {
		add_session(bc, "app", id, sizeof(id));
		stream_init(&st[c], c, id);
	}
	bclient_free(bc);
}

START_TEST(kill9_stream)
{
	static struct stream st[KILL_CONNS];	/* large: off the stack */
	int c;

	streams_setup(st);
	streams_run(st, SIGKILL);
	srv = integ_start("ao-storaged", NULL);
	streams_verify(st, false);
	for (c = 0; c < KILL_CONNS; c++)
		stream_free(&st[c]);
}
END_TEST

/*
 * 8b. SIGTERM in the middle of the same stream: the daemon finishes what it
 * accepted and exits 0.  Nothing it committed may go unanswered — a client
 * told `unavailable` for a committed session.create would retry it and
 * create a second session.
 */
START_TEST(sigterm_stream)
{
	static struct stream st[KILL_CONNS];
	int c;

	streams_setup(st);
	streams_run(st, SIGTERM);
	srv = integ_start("ao-storaged", NULL);
	streams_verify(st, true);
	for (c = 0; c < KILL_CONNS; c++)
		stream_free(&st[c]);
}
END_TEST

/* Waits until /proc says pid is stopped (state T). */
static void
wait_stopped(pid_t pid)
{
	INTEG_WAIT(integ_proc_state(pid) == 'T', 5000, 1, "pid %d did not stop",
	    (int)pid);
}

/*
 * 8c. The same rule without timing luck: a write that is waiting on the
 * socket when SIGTERM arrives (the daemon is stopped meanwhile, so the
 * socket is ready before the signal) is either left alone or committed and
 * answered — never committed and dropped.
 */
START_TEST(sigterm_answers_accepted)
{
	const msgpack_object *result;
	struct bclient *bc;
	struct bclient_msg res;
	struct rpc_error err;
	struct rpc_buf b, out;
	struct raw r;
	char id[64], branch[64];
	bool answered = false;
	int status;

	srv = integ_start("ao-storaged", NULL);
	bc = integ_connect(sock);
	add_project(bc, "app");
	add_session(bc, "app", id, sizeof(id));
	bclient_free(bc);
	rpc_buf_init(&b);
	rpc_buf_init(&out);
	raw_open(&r);
	integ_pack_request(&out, 1, "ping", NULL);
	raw_send(&r, out.sb.data, out.sb.size);
	ck_assert_uint_eq(raw_resp(&r, &err, NULL), 1);	/* accepted and known */

	kill(srv, SIGSTOP);
	wait_stopped(srv);
	rpc_buf_reset(&out);
	integ_params(&b, 2);
	rpc_pack_kv_str(&b.pk, "id", id);
	rpc_pack_kv_str(&b.pk, "branch", "after-term");
	integ_pack_request(&out, 2, "session.update", &b);
	raw_send(&r, out.sb.data, out.sb.size);
	kill(srv, SIGTERM);
	kill(srv, SIGCONT);
	if (raw_next(&r, 5000) == 1) {
		ck_assert_uint_eq(resp_of(&r.msg.data, &err, &result), 2);
		ck_assert_msg(err.code == RPC_OK, "session.update: %s", err.message);
		answered = true;
	}
	raw_close(&r);
	status = testlib_wait(srv, 5000);
	ck_assert_msg(status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 0,
	    "SIGTERM: status 0x%x", status);

	srv = integ_start("ao-storaged", NULL);
	bc = integ_connect(sock);
	integ_params(&b, 1);
	rpc_pack_kv_str(&b.pk, "id", id);
	integ_call_ok(bc, "session.get", &b, &res);
	if (integ_is_nil(res.m.result, "branch"))
		branch[0] = '\0';
	else
		integ_get_str(res.m.result, "branch", branch, sizeof(branch));
	bclient_msg_free(&res);
	ck_assert_msg(answered || strcmp(branch, "after-term") != 0,
	    "the update was committed during shutdown but its response was "
	    "dropped (the client saw EOF)");
	rpc_buf_free(&out);
	rpc_buf_free(&b);
	bclient_free(bc);
}
END_TEST

/* Sets PRAGMA user_version of the (stopped) daemon's database. */
static void
set_user_version(int v)
{
	char sql[64], *msg = NULL;
	sqlite3 *db;

	ck_assert_int_eq(sqlite3_open_v2(dbpath, &db, SQLITE_OPEN_READWRITE, NULL),
	    SQLITE_OK);
	snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", v);
	ck_assert_msg(sqlite3_exec(db, sql, NULL, NULL, &msg) == SQLITE_OK,
	    "%s: %s", sql, msg);
	ck_assert_int_eq(sqlite3_close(db), SQLITE_OK);
}

/*
 * 9. A clean restart (SIGTERM, exit 0) keeps data and head; a second
 * instance on the same data dir exits 100 saying why; a database from a
 * newer schema makes the daemon exit 100 naming the version, without
 * touching the file.
 */
START_TEST(restart_and_refusals)
{
	struct bclient *bc;
	struct bclient_msg res;
	struct rpc_buf b;
	char id[64], *before, *log;
	size_t nbefore;
	int64_t head;
	int status;

	srv = integ_start("ao-storaged", NULL);
	bc = integ_connect(sock);
	rpc_buf_init(&b);
	add_project(bc, "app");
	add_session(bc, "app", id, sizeof(id));
	integ_params(&b, 2);
	rpc_pack_kv_str(&b.pk, "id", id);
	rpc_pack_kv_str(&b.pk, "state", "working");
	integ_call_ok(bc, "session.update", &b, &res);
	bclient_msg_free(&res);
	head = log_head(bc, NULL);
	ck_assert_int_eq(head, 3);

	ck_assert_int_eq(run_to_exit(NULL), EXIT_PERM);
	log = testlib_read_file(logpath);
	ck_assert_ptr_nonnull(log);
	ck_assert_msg(strstr(log, "another instance") != NULL,
	    "the refusal does not say why: %s", integ_log_tail());
	free(log);
	/* The live instance did not notice; SIGHUP does not stop it either. */
	kill(srv, SIGHUP);
	integ_assert_hello_at(sock, "storaged", srv);
	ck_assert_int_eq(log_head(bc, NULL), head);
	bclient_free(bc);

	status = testlib_stop(srv, SIGTERM, 5000);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	    "SIGTERM: status 0x%x", status);
	srv = integ_start("ao-storaged", NULL);
	bc = integ_connect(sock);
	ck_assert_int_eq(log_head(bc, NULL), head);
	integ_params(&b, 1);
	rpc_pack_kv_str(&b.pk, "id", id);
	integ_call_ok(bc, "session.get", &b, &res);
	ck_assert_str_eq(integ_get_str(res.m.result, "state", NULL, 0), "working");
	bclient_msg_free(&res);
	/* The sequence continues where it was. */
	add_session(bc, "app", id, sizeof(id));
	ck_assert_str_eq(id, "app-2");
	ck_assert_int_eq(log_head(bc, NULL), head + 1);
	bclient_free(bc);
	status = testlib_stop(srv, SIGTERM, 5000);
	ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);

	set_user_version(99);
	before = read_bytes(dbpath, &nbefore);
	ck_assert_ptr_nonnull(before);
	ck_assert_int_eq(run_to_exit(NULL), EXIT_PERM);
	log = testlib_read_file(logpath);
	ck_assert_ptr_nonnull(log);
	ck_assert_msg(strstr(log, "version 99") != NULL,
	    "no message names version 99: %s", integ_log_tail());
	free(log);
	ck_assert_msg(same_bytes(dbpath, before, nbefore),
	    "ao.db changed although its schema is too new");
	free(before);
	rpc_buf_free(&b);
}
END_TEST

/*
 * 9b. The refused second instance must not write to the live instance's
 * database: it finds the live socket only after it has opened ao.db, and a
 * newer binary would migrate the schema under the running daemon.
 */
START_TEST(second_instance_leaves_db_alone)
{
	char walpath[300], *db, *wal;
	struct bclient *bc;
	size_t ndb, nwal;

	srv = integ_start("ao-storaged", NULL);
	bc = integ_connect(sock);
	add_project(bc, "app");
	bclient_free(bc);
	snprintf(walpath, sizeof(walpath), "%s-wal", dbpath);
	db = read_bytes(dbpath, &ndb);
	wal = read_bytes(walpath, &nwal);
	ck_assert_ptr_nonnull(db);
	ck_assert_ptr_nonnull(wal);

	ck_assert_int_eq(run_to_exit(NULL), EXIT_PERM);
	ck_assert_msg(same_bytes(dbpath, db, ndb), "ao.db changed");
	ck_assert_msg(same_bytes(walpath, wal, nwal),
	    "the refused instance wrote to ao.db-wal (%zu bytes before)", nwal);
	free(db);
	free(wal);
	integ_assert_hello_at(sock, "storaged", srv);
}
END_TEST

/*
 * Polls changelog.head for up to 2 s (the janitor runs every 50 ms) until
 * oldest is want; returns the last oldest seen.
 */
static int64_t
wait_oldest(struct bclient *bc, int64_t want)
{
	int64_t oldest, deadline = aotime_mono_ms() + 2000;

	for (;;) {
		log_head(bc, &oldest);
		if (oldest == want || aotime_mono_ms() >= deadline)
			return oldest;
		usleep(20 * 1000);
	}
}

/*
 * 10. Retention through flags: 5 rows kept, pruned by a 50 ms janitor
 * within 2 s of the writes, except what an active durable consumer has not
 * read yet.
 */
START_TEST(retention_flags)
{
	static const char *const flags[] = { "--retention-rows=5",
		"--janitor-interval-ms=50", NULL };
	const msgpack_object_array *ev;
	struct bclient *bc;
	struct bclient_msg res;
	struct rpc_buf b;
	char id[64];
	int64_t head;
	uint32_t i;

	srv = integ_start("ao-storaged", flags);
	bc = integ_connect(sock);
	add_project(bc, "app");
	for (i = 0; i < 20; i++)
		add_session(bc, "app", id, sizeof(id));
	head = log_head(bc, NULL);
	ck_assert_int_eq(head, 21);
	ck_assert_int_eq(wait_oldest(bc, head - 4), head - 4);

	rpc_buf_init(&b);
	integ_params(&b, 1);
	rpc_pack_kv_i64(&b.pk, "after", 0);
	integ_call_ok(bc, "changelog.read", &b, &res);
	ev = integ_get_list(res.m.result, "events", event_keys);
	ck_assert_uint_eq(ev->size, 5);
	for (i = 0; i < ev->size; i++)
		ck_assert_int_eq(integ_get_i64(&ev->ptr[i], "seq"), head - 4 + i);
	bclient_msg_free(&res);

	/*
	 * A durable consumer active within the age limit holds back the row
	 * limit: what it has not read stays until it commits past it.
	 */
	integ_params(&b, 2);
	rpc_pack_kv_str(&b.pk, "name", "slow");
	rpc_pack_kv_i64(&b.pk, "seq", head);
	integ_call_ok(bc, "consumer.commit", &b, &res);
	bclient_msg_free(&res);
	for (i = 0; i < 10; i++)
		add_session(bc, "app", id, sizeof(id));
	ck_assert_int_eq(wait_oldest(bc, head + 1), head + 1);
	integ_params(&b, 2);
	rpc_pack_kv_str(&b.pk, "name", "slow");
	rpc_pack_kv_i64(&b.pk, "seq", head + 10);
	integ_call_ok(bc, "consumer.commit", &b, &res);
	bclient_msg_free(&res);
	ck_assert_int_eq(wait_oldest(bc, head + 10 - 4), head + 10 - 4);
	rpc_buf_free(&b);
	bclient_free(bc);
}
END_TEST

Suite *
storaged_suite(void)
{
	Suite *s = suite_create("storaged");
	TCase *tc;

	tc = integ_tcase(s, "methods", 20, setup, teardown, 0);
	tcase_add_test(tc, start_ready_hello);
	tcase_add_test(tc, every_method);
	tcase_add_test(tc, watch_committed);
	tcase_add_test(tc, read_your_writes);

	tc = integ_tcase(s, "concurrency", 20, setup, teardown, 0);
	tcase_add_test(tc, concurrent_creates);
	tcase_add_test(tc, group_commit_isolation);

	tc = integ_tcase(s, "durability", 30, setup, teardown, 0);
	tcase_add_test(tc, kill9_stream);
	tcase_add_test(tc, sigterm_stream);
	tcase_add_test(tc, sigterm_answers_accepted);
	tcase_add_test(tc, restart_and_refusals);
	tcase_add_test(tc, second_instance_leaves_db_alone);
	tcase_add_test(tc, retention_flags);

	tc = integ_tcase(s, "bad input", 20, setup, teardown, 0);
	tcase_add_test(tc, hostile_bytes);
	tcase_add_test(tc, oversized_request);
	tcase_add_test(tc, bad_requests);
	tcase_add_test(tc, message_limit_flag);
	tcase_add_test(tc, bad_flag);
	return s;
}
TEST_SUITE(storaged_suite)
