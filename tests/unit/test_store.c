/*
 * storaged's store against a temp database: every method, the triggers,
 * observation atomicity, group-commit isolation, cascades, retention and
 * migrations.  Methods are called as the daemon calls them (api_call inside
 * a transaction for writes), with params written as JSON for readability.
 */
#include <string.h>

#include <jansson.h>

#include "proto/jsonmp.h"
#include "storaged/storaged.h"
#include "tests/lib/testlib.h"

static struct store st;
static char *dir;
static char dbpath[256];

static void
setup(void)
{
	char err[256];
	int perm;

	dir = testlib_tmpdir();
	snprintf(dbpath, sizeof(dbpath), "%s/ao.db", dir);
	ck_assert_msg(store_open(&st, dbpath, &perm, err, sizeof(err)) == 0, "%s", err);
	st.fixed_now = 1000;
}

static void
teardown(void)
{
	store_close(&st);
	testlib_rmrf(dir);
	free(dir);
}

/*
 * Runs method with JSON params.  Returns the result as JSON, or NULL with
 * *err set.  When in_txn is false, a write gets its own transaction.
 */
static json_t *
call_txn(const char *method, const char *params, struct rpc_error *err, bool in_txn)
{
	const struct api_method *m = api_find(method);
	struct rpc_buf in, out;
	msgpack_unpacked up;
	json_error_t jerr;
	json_t *j = NULL, *res = NULL;
	size_t off = 0;

	ck_assert_msg(m != NULL, "no method %s", method);
	rpc_buf_init(&in);
	rpc_buf_init(&out);
	if (params != NULL) {
		j = json_loads(params, 0, &jerr);
		ck_assert_msg(j != NULL, "bad test JSON: %s", jerr.text);
		jsonmp_pack(&in.pk, j);
		json_decref(j);
	}
	msgpack_unpacked_init(&up);
	if (params != NULL)
		ck_assert_int_eq(msgpack_unpack_next(&up, in.sb.data, in.sb.size, &off),
		    MSGPACK_UNPACK_SUCCESS);
	if (m->write && !in_txn)
		ck_assert_int_eq(store_exec(&st, "BEGIN IMMEDIATE", err), 0);
	if (api_call(&st, m, params != NULL ? &up.data : NULL, up.zone, &out, err) == 0) {
		msgpack_unpacked r;

		off = 0;
		msgpack_unpacked_init(&r);
		ck_assert_int_eq(msgpack_unpack_next(&r, out.sb.data, out.sb.size, &off),
		    MSGPACK_UNPACK_SUCCESS);
		ck_assert_int_eq(off, out.sb.size);	/* exactly one object */
		res = jsonmp_from_object(&r.data);
		msgpack_unpacked_destroy(&r);
	}
	if (m->write && !in_txn)
		ck_assert_int_eq(store_exec(&st, "COMMIT", NULL), 0);
	msgpack_unpacked_destroy(&up);
	rpc_buf_free(&in);
	rpc_buf_free(&out);
	return res;
}

static json_t *
call(const char *method, const char *params, struct rpc_error *err)
{
	return call_txn(method, params, err, false);
}

#define OK(res, method, params) do {					\
	struct rpc_error e_;						\
	const char *p_ = (params);					\
	res = call(method, p_, &e_);					\
	ck_assert_msg(res != NULL, "%s %s: %s", method,			\
	    p_ != NULL ? p_ : "(none)", e_.message);			\
} while (0)

/* Expects failure with code; returns the message (static). */
static const char *
fails(const char *method, const char *params, enum rpc_code code)
{
	static struct rpc_error e;
	json_t *r = call(method, params, &e);

	if (params == NULL)
		params = "(none)";
	ck_assert_msg(r == NULL, "%s %s succeeded", method, params);
	ck_assert_msg(e.code == code, "%s %s: got %s (%s), want %s", method, params,
	    rpc_code_name(e.code), e.message, rpc_code_name(code));
	return e.message;
}

static void
ok(const char *method, const char *params)
{
	json_t *r;

	OK(r, method, params);
	json_decref(r);
}

static const char *
str(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);

	return json_is_string(v) ? json_string_value(v) : NULL;
}

static json_int_t
num(json_t *o, const char *key)
{
	return json_integer_value(json_object_get(o, key));
}

static json_int_t
head(void)
{
	return store_head(&st);
}

/* The events after seq, as a JSON array (caller frees). */
static json_t *
events_after(json_int_t after)
{
	char params[64];
	json_t *r, *ev;

	snprintf(params, sizeof(params), "{\"after\": %lld}", (long long)after);
	OK(r, "changelog.read", params);
	ev = json_incref(json_object_get(r, "events"));
	json_decref(r);
	return ev;
}

/* Asserts that the events after seq are exactly the given types, in order. */
static void
expect_events(json_int_t after, const char *const *types)
{
	json_t *ev = events_after(after);
	size_t i, n = 0;

	while (types[n] != NULL)
		n++;
	ck_assert_msg(json_array_size(ev) == n, "want %zu events, got %zu: %s", n,
	    json_array_size(ev), json_dumps(ev, JSON_COMPACT));
	for (i = 0; i < n; i++)
		ck_assert_str_eq(str(json_array_get(ev, i), "type"), types[i]);
	json_decref(ev);
}

static const char *const NONE[] = { NULL };

/* The keys of an object, sorted, comma separated. */
static const char *
keys(json_t *o)
{
	static char buf[512];
	const char *k[32];
	const char *key;
	json_t *v;
	size_t n = 0, i, j;

	json_object_foreach(o, key, v)
		if (n < 32)
			k[n++] = key;
	for (i = 1; i < n; i++)
		for (j = i; j > 0 && strcmp(k[j - 1], k[j]) > 0; j--) {
			const char *t = k[j];

			k[j] = k[j - 1];
			k[j - 1] = t;
		}
	buf[0] = '\0';
	for (i = 0; i < n; i++) {
		strcat(buf, k[i]);
		if (i + 1 < n)
			strcat(buf, ",");
	}
	return buf;
}

static void
make_project(const char *id)
{
	char p[128];

	snprintf(p, sizeof(p), "{\"id\": \"%s\", \"path\": \"/src/%s\"}", id, id);
	ok("project.upsert", p);
}

START_TEST(projects)
{
	json_t *r, *list;
	json_int_t h;

	OK(r, "project.upsert", "{\"id\": \"app\", \"path\": \"/src/app\","
	    " \"origin_url\": \"git@x:app\", \"display_name\": \"App\"}");
	ck_assert_str_eq(str(r, "id"), "app");
	ck_assert_str_eq(str(r, "origin_url"), "git@x:app");
	ck_assert_int_eq(num(r, "registered_at"), 1000);
	ck_assert(json_is_null(json_object_get(r, "archived_at")));
	json_decref(r);
	static const char *const added[] = { "project_added", NULL };
	expect_events(0, added);

	/* Re-upserting identical data emits nothing. */
	h = head();
	ok("project.upsert", "{\"id\": \"app\", \"path\": \"/src/app\","
	    " \"origin_url\": \"git@x:app\", \"display_name\": \"App\"}");
	expect_events(h, NONE);

	make_project("web");
	OK(list, "project.list", NULL);
	ck_assert_int_eq(json_array_size(json_object_get(list, "projects")), 2);
	json_decref(list);

	st.fixed_now = 2000;
	h = head();
	OK(r, "project.archive", "{\"id\": \"web\"}");
	ck_assert_int_eq(num(r, "archived_at"), 2000);
	json_decref(r);
	static const char *const archived[] = { "project_archived", NULL };
	expect_events(h, archived);
	/* Archiving twice keeps the first time and emits nothing. */
	h = head();
	st.fixed_now = 3000;
	OK(r, "project.archive", "{\"id\": \"web\"}");
	ck_assert_int_eq(num(r, "archived_at"), 2000);
	json_decref(r);
	expect_events(h, NONE);

	OK(list, "project.list", NULL);
	ck_assert_int_eq(json_array_size(json_object_get(list, "projects")), 1);
	json_decref(list);
	OK(list, "project.list", "{\"include_archived\": true}");
	ck_assert_int_eq(json_array_size(json_object_get(list, "projects")), 2);
	json_decref(list);

	/* An upsert brings an archived project back, and says so. */
	h = head();
	make_project("web");
	expect_events(h, added);

	OK(r, "project.get", "{\"id\": \"web\"}");
	ck_assert(json_is_null(json_object_get(r, "archived_at")));
	json_decref(r);
	OK(r, "project.delete", "{\"id\": \"web\"}");
	json_decref(r);
	fails("project.get", "{\"id\": \"web\"}", RPC_NOT_FOUND);
	fails("project.delete", "{\"id\": \"web\"}", RPC_NOT_FOUND);
	fails("project.archive", "{\"id\": \"nope\"}", RPC_NOT_FOUND);
}
END_TEST

START_TEST(session_ids)
{
	json_t *r;
	struct rpc_error e;

	make_project("app");
	make_project("web");
	OK(r, "session.create", "{\"project_id\": \"app\"}");
	ck_assert_str_eq(str(r, "id"), "app-1");
	ck_assert_int_eq(num(r, "num"), 1);
	ck_assert_str_eq(str(r, "state"), "not_started");
	ck_assert_str_eq(str(r, "runtime"), "tmux");
	ck_assert_str_eq(str(r, "kind"), "worker");
	ck_assert(json_is_false(json_object_get(r, "is_alive")));
	json_decref(r);
	OK(r, "session.create", "{\"project_id\": \"web\", \"runtime\": \"process\","
	    " \"kind\": \"orchestrator\", \"harness\": \"codex\", \"prompt\": \"go\","
	    " \"issue_id\": \"42\", \"branch\": \"ao/web-1\"}");
	ck_assert_str_eq(str(r, "id"), "web-1");
	ck_assert_str_eq(str(r, "runtime"), "process");
	ck_assert_str_eq(str(r, "issue_id"), "42");
	json_decref(r);

	/* Several creates in one transaction (one group commit) never collide. */
	ck_assert_int_eq(store_exec(&st, "BEGIN IMMEDIATE", &e), 0);
	for (int i = 2; i <= 6; i++) {
		char want[16];

		r = call_txn("session.create", "{\"project_id\": \"app\"}", &e, true);
		ck_assert_ptr_nonnull(r);
		snprintf(want, sizeof(want), "app-%d", i);
		ck_assert_str_eq(str(r, "id"), want);
		json_decref(r);
	}
	ck_assert_int_eq(store_exec(&st, "COMMIT", &e), 0);

	/* session.count: live ones (neither terminated nor done). */
	OK(r, "session.count", NULL);
	ck_assert_int_eq(num(r, "live"), 7);
	json_decref(r);
	ok("session.update", "{\"id\": \"app-2\", \"state\": \"done\"}");
	ok("session.update", "{\"id\": \"app-3\", \"state\": \"terminated\","
	    " \"termination_reason\": \"manually_killed\"}");
	OK(r, "session.count", NULL);
	ck_assert_int_eq(num(r, "live"), 5);
	json_decref(r);
	fails("session.count", "{\"x\": 1}", RPC_BAD_REQUEST);
	ok("session.update", "{\"id\": \"app-2\", \"state\": \"working\"}");
	ok("session.update", "{\"id\": \"app-3\", \"state\": \"working\","
	    " \"termination_reason\": null}");

	/* The number is 1 + the max: the list shows all six. */
	OK(r, "session.list", "{\"project_id\": \"app\"}");
	ck_assert_int_eq(json_array_size(json_object_get(r, "sessions")), 6);
	json_decref(r);
	OK(r, "session.list", NULL);
	ck_assert_int_eq(json_array_size(json_object_get(r, "sessions")), 7);
	json_decref(r);

	fails("session.create", "{\"project_id\": \"nope\"}", RPC_NOT_FOUND);
	ok("project.archive", "{\"id\": \"web\"}");
	fails("session.create", "{\"project_id\": \"web\"}", RPC_INVALID_STATE);
	fails("session.list", "{\"project_id\": \"nope\"}", RPC_NOT_FOUND);
	ck_assert_str_eq(fails("session.create", "{\"project_id\": \"app\","
	    " \"runtime\": \"docker\"}", RPC_BAD_REQUEST),
	    "runtime must be one of: tmux, process");
}
END_TEST

START_TEST(session_update)
{
	json_t *r;
	json_int_t h;

	make_project("app");
	ok("session.create", "{\"project_id\": \"app\"}");
	static const char *const updated[] = { "session_updated", NULL };

	h = head();
	OK(r, "session.update", "{\"id\": \"app-1\", \"state\": \"working\","
	    " \"is_alive\": true, \"runtime_handle\": \"{\\\"pid\\\": 5}\"}");
	ck_assert_str_eq(str(r, "state"), "working");
	ck_assert(json_is_true(json_object_get(r, "is_alive")));
	ck_assert_str_eq(str(r, "runtime_handle"), "{\"pid\": 5}");
	json_decref(r);
	expect_events(h, updated);

	/* Metadata-only changes emit nothing. */
	h = head();
	ok("session.update", "{\"id\": \"app-1\", \"branch\": \"b\", \"prompt\": \"p\","
	    " \"activity_at\": 5, \"activity_source\": \"hook\","
	    " \"detecting_attempts\": 2, \"detecting_evidence_hash\": \"abc\"}");
	expect_events(h, NONE);
	/* Identical watched values emit nothing. */
	ok("session.update", "{\"id\": \"app-1\", \"state\": \"working\"}");
	expect_events(h, NONE);
	OK(r, "session.get", "{\"id\": \"app-1\"}");
	ck_assert_str_eq(str(r, "branch"), "b");
	ck_assert_int_eq(num(r, "detecting_attempts"), 2);
	ck_assert_str_eq(str(r, "state"), "working");	/* untouched */
	json_decref(r);

	ok("session.update", "{\"id\": \"app-1\", \"activity_state\": \"idle\"}");
	expect_events(h, updated);

	/* Terminate and restore: nil clears a nullable field. */
	h = head();
	OK(r, "session.update", "{\"id\": \"app-1\", \"state\": \"terminated\","
	    " \"termination_reason\": \"manually_killed\", \"is_alive\": false}");
	ck_assert_str_eq(str(r, "termination_reason"), "manually_killed");
	json_decref(r);
	OK(r, "session.update", "{\"id\": \"app-1\", \"state\": \"working\","
	    " \"termination_reason\": null, \"branch\": null}");
	ck_assert(json_is_null(json_object_get(r, "termination_reason")));
	ck_assert(json_is_null(json_object_get(r, "branch")));
	json_decref(r);
	static const char *const two[] = { "session_updated", "session_updated", NULL };
	expect_events(h, two);

	/* Terminated sessions drop out of the default list. */
	ok("session.update", "{\"id\": \"app-1\", \"state\": \"terminated\","
	    " \"termination_reason\": \"pr_merged\"}");
	OK(r, "session.list", NULL);
	ck_assert_int_eq(json_array_size(json_object_get(r, "sessions")), 0);
	json_decref(r);
	OK(r, "session.list", "{\"include_terminated\": true}");
	ck_assert_int_eq(json_array_size(json_object_get(r, "sessions")), 1);
	json_decref(r);
}
END_TEST

/* A key with a NUL byte is no field's name, even when its prefix is. */
START_TEST(update_key_with_nul)
{
	const struct api_method *m = api_find("session.update");
	struct rpc_buf in, out;
	struct rpc_error e;
	msgpack_unpacked up;
	size_t off = 0;

	make_project("app");
	ok("session.create", "{\"project_id\": \"app\"}");
	rpc_buf_init(&in);
	rpc_buf_init(&out);
	msgpack_pack_map(&in.pk, 2);
	rpc_pack_kv_str(&in.pk, "id", "app-1");
	rpc_pack_strn(&in.pk, "state\0junk", 10);
	rpc_pack_str(&in.pk, "idle");
	msgpack_unpacked_init(&up);
	ck_assert_int_eq(msgpack_unpack_next(&up, in.sb.data, in.sb.size, &off),
	    MSGPACK_UNPACK_SUCCESS);
	ck_assert_int_eq(store_exec(&st, "BEGIN IMMEDIATE", &e), 0);
	ck_assert_int_eq(api_call(&st, m, &up.data, up.zone, &out, &e), -1);
	ck_assert_int_eq(e.code, RPC_BAD_REQUEST);
	ck_assert_int_eq(store_exec(&st, "ROLLBACK", &e), 0);
	msgpack_unpacked_destroy(&up);
	rpc_buf_free(&in);
	rpc_buf_free(&out);
}
END_TEST

START_TEST(session_update_bad_input)
{
	json_int_t h;

	make_project("app");
	ok("session.create", "{\"project_id\": \"app\"}");
	h = head();
	ck_assert_str_eq(fails("session.update", "{\"id\": \"app-1\", \"nope\": 1}",
	    RPC_BAD_REQUEST), "unknown parameter 'nope'");
	ck_assert_str_eq(fails("session.update", "{\"id\": \"app-1\", \"state\": "
	    "\"sleeping\"}", RPC_BAD_REQUEST), "state must be one of: not_started, "
	    "working, idle, needs_input, stuck, detecting, done, terminated");
	fails("session.update", "{\"id\": \"app-1\", \"activity_state\": \"zzz\"}",
	    RPC_BAD_REQUEST);
	ck_assert_str_eq(fails("session.update", "{\"id\": \"app-1\", \"is_alive\": 1}",
	    RPC_BAD_REQUEST), "is_alive must be a boolean");
	fails("session.update", "{\"id\": \"app-1\", \"activity_at\": \"now\"}",
	    RPC_BAD_REQUEST);
	ck_assert_str_eq(fails("session.update", "{\"id\": \"app-1\", \"state\": null}",
	    RPC_BAD_REQUEST), "state cannot be null");
	ck_assert_str_eq(fails("session.update", "{\"id\": \"app-1\", \"state\": "
	    "\"terminated\"}", RPC_BAD_REQUEST), "termination_reason must be set "
	    "exactly when state is terminated");
	fails("session.update", "{\"id\": \"app-1\", \"termination_reason\": "
	    "\"runtime_lost\"}", RPC_BAD_REQUEST);
	fails("session.update", "{\"id\": \"app-9\", \"state\": \"idle\"}", RPC_NOT_FOUND);
	fails("session.update", "{\"state\": \"idle\"}", RPC_BAD_REQUEST);
	fails("session.update", "{\"id\": \"app-1\", \"num\": 5}", RPC_BAD_REQUEST);
	fails("session.get", "{\"id\": \"app-9\"}", RPC_NOT_FOUND);
	fails("session.get", "{\"id\": 5}", RPC_BAD_REQUEST);
	fails("session.get", "{\"id\": \"app-1\", \"x\": 1}", RPC_BAD_REQUEST);
	expect_events(h, NONE);
}
END_TEST

static const char obs_c1[] =
    "{\"session_id\": \"app-1\", \"pr\": {\"url\": \"https://x/pr/1\", \"number\": 1,"
    " \"ci_state\": \"pending\"},"
    " \"checks\": [{\"name\": \"build\", \"commit_hash\": \"c1\","
    "   \"status\": \"in_progress\"},"
    "  {\"name\": \"lint\", \"commit_hash\": \"c1\", \"status\": \"passed\"}],"
    " \"comments\": [{\"comment_id\": \"10\", \"author\": \"rev\", \"file\": \"a.c\","
    "   \"line\": 3, \"body\": \"nit\"}]}";

static void
session_with_project(void)
{
	make_project("app");
	ok("session.create", "{\"project_id\": \"app\"}");
}

/*
 * More combinations of updated fields than the statement cache holds: the
 * oldest statements are finalized (with their packed column keys) and
 * prepared again when they come back, and every answer stays whole.
 */
START_TEST(update_combinations)
{
	static const char *const fields[] = {
		"\"detecting_attempts\": 1", "\"activity_at\": 5",
		"\"branch\": \"b\"", "\"workspace_path\": \"/w\"",
		"\"runtime_handle\": \"h\"", "\"activity_source\": \"s\"",
		"\"detecting_started_at\": 7",
	};
	char params[512];
	size_t off;
	json_t *r;
	int mask, round, k;

	session_with_project();
	for (round = 0; round < 2; round++)
		for (mask = 1; mask < 1 << 7; mask++) {
			off = (size_t)snprintf(params, sizeof(params),
			    "{\"id\": \"app-1\"");
			for (k = 0; k < 7; k++)
				if (mask & (1 << k))
					off += (size_t)snprintf(params + off,
					    sizeof(params) - off, ", %s", fields[k]);
			snprintf(params + off, sizeof(params) - off, "}");
			OK(r, "session.update", params);
			ck_assert_str_eq(str(r, "id"), "app-1");
			ck_assert_str_eq(str(r, "project_id"), "app");
			ck_assert(json_is_boolean(json_object_get(r, "is_alive")));
			ck_assert_int_eq(json_object_size(r), 26);
			json_decref(r);
		}
	ck_assert_int_eq(st.ndyn, STORE_MAX_DYN);
}
END_TEST

START_TEST(observation_triggers)
{
	json_t *r, *ev;
	json_int_t h;

	session_with_project();
	h = head();
	OK(r, "pr.write_observation", obs_c1);
	ck_assert_str_eq(str(r, "url"), "https://x/pr/1");
	ck_assert_str_eq(str(r, "state"), "open");	/* defaults */
	ck_assert_str_eq(str(r, "review_decision"), "none");
	ck_assert_str_eq(str(r, "mergeability"), "unknown");
	json_decref(r);
	static const char *const first[] = { "pr_created", "pr_check_recorded",
		"pr_check_recorded", NULL };
	expect_events(h, first);

	/* Payload fields are exactly those DESIGN.md §4 lists. */
	ev = events_after(h);
	ck_assert_str_eq(keys(json_object_get(json_array_get(ev, 0), "payload")),
	    "ci_state,mergeability,number,review_decision,session_id,state,url");
	ck_assert_str_eq(keys(json_object_get(json_array_get(ev, 1), "payload")),
	    "commit_hash,name,pr_url,status");
	ck_assert_str_eq(keys(json_array_get(ev, 1)),
	    "at,payload,project_id,seq,session_id,type");
	ck_assert_str_eq(str(json_array_get(ev, 1), "session_id"), "app-1");
	ck_assert_str_eq(str(json_array_get(ev, 1), "project_id"), "app");
	json_decref(ev);

	/* Re-observing identical data emits nothing. */
	h = head();
	st.fixed_now = 2000;
	ok("pr.write_observation", obs_c1);
	expect_events(h, NONE);

	/* in_progress → failed on the same commit is recorded. */
	ok("pr.write_observation", "{\"session_id\": \"app-1\", \"pr\": {\"url\":"
	    " \"https://x/pr/1\", \"number\": 1, \"ci_state\": \"failing\"},"
	    " \"checks\": [{\"name\": \"build\", \"commit_hash\": \"c1\","
	    " \"status\": \"failed\", \"log_tail\": \"error: x\"}]}");
	static const char *const flip[] = { "pr_updated", "pr_check_recorded", NULL };
	expect_events(h, flip);
	ev = events_after(h);
	ck_assert_str_eq(str(json_object_get(json_array_get(ev, 1), "payload"),
	    "status"), "failed");
	json_decref(ev);

	/* Omitted checks/comments are unchanged: the comment is still there. */
	OK(r, "pr.comments", "{\"url\": \"https://x/pr/1\"}");
	ck_assert_int_eq(json_array_size(json_object_get(r, "comments")), 1);
	ck_assert(json_is_false(json_object_get(json_array_get(
	    json_object_get(r, "comments"), 0), "resolved")));
	json_decref(r);
	/* An empty array means none. */
	ok("pr.write_observation", "{\"session_id\": \"app-1\", \"pr\": {\"url\":"
	    " \"https://x/pr/1\", \"number\": 1, \"ci_state\": \"failing\"},"
	    " \"comments\": []}");
	OK(r, "pr.comments", "{\"url\": \"https://x/pr/1\"}");
	ck_assert_int_eq(json_array_size(json_object_get(r, "comments")), 0);
	json_decref(r);
	/* The comment set is replaced, keeping only the ids given. */
	ok("pr.write_observation", "{\"session_id\": \"app-1\", \"pr\": {\"url\":"
	    " \"https://x/pr/1\", \"number\": 1, \"ci_state\": \"failing\"},"
	    " \"comments\": [{\"comment_id\": \"1\", \"body\": \"a\"},"
	    " {\"comment_id\": \"2\", \"body\": \"b\", \"resolved\": true}]}");
	ok("pr.write_observation", "{\"session_id\": \"app-1\", \"pr\": {\"url\":"
	    " \"https://x/pr/1\", \"number\": 1, \"ci_state\": \"failing\"},"
	    " \"comments\": [{\"comment_id\": \"2\", \"body\": \"b2\"}]}");
	OK(r, "pr.comments", "{\"url\": \"https://x/pr/1\"}");
	ck_assert_int_eq(json_array_size(json_object_get(r, "comments")), 1);
	ck_assert_str_eq(str(json_array_get(json_object_get(r, "comments"), 0), "body"),
	    "b2");
	json_decref(r);

	OK(r, "pr.list", "{\"session_id\": \"app-1\"}");
	ck_assert_int_eq(json_array_size(json_object_get(r, "prs")), 1);
	json_decref(r);
	OK(r, "pr.get", "{\"url\": \"https://x/pr/1\"}");
	ck_assert_str_eq(str(r, "ci_state"), "failing");
	json_decref(r);
}
END_TEST

/* The CI-brake query: the newest runs of one check first. */
START_TEST(checks_newest_first)
{
	json_t *r, *c;
	const char *commits[] = { "c1", "c2", "c3" };
	int i;

	session_with_project();
	for (i = 0; i < 3; i++) {
		char p[512];

		st.fixed_now = 1000 + i * 10;
		snprintf(p, sizeof(p), "{\"session_id\": \"app-1\", \"pr\": {\"url\": \"u\","
		    " \"number\": 1}, \"checks\": [{\"name\": \"build\", \"commit_hash\":"
		    " \"%s\", \"status\": \"failed\"}, {\"name\": \"lint\","
		    " \"commit_hash\": \"%s\", \"status\": \"passed\"}]}",
		    commits[i], commits[i]);
		ok("pr.write_observation", p);
	}
	/* Same created_at: insertion order breaks the tie. */
	ok("pr.write_observation", "{\"session_id\": \"app-1\", \"pr\": {\"url\": \"u\","
	    " \"number\": 1}, \"checks\": [{\"name\": \"build\", \"commit_hash\":"
	    " \"c4\", \"status\": \"queued\"}]}");
	OK(r, "pr.checks", "{\"url\": \"u\", \"name\": \"build\", \"limit\": 3}");
	c = json_object_get(r, "checks");
	ck_assert_int_eq(json_array_size(c), 3);
	ck_assert_str_eq(str(json_array_get(c, 0), "commit_hash"), "c4");
	ck_assert_str_eq(str(json_array_get(c, 1), "commit_hash"), "c3");
	ck_assert_str_eq(str(json_array_get(c, 2), "commit_hash"), "c2");
	json_decref(r);
	OK(r, "pr.checks", "{\"url\": \"u\"}");
	ck_assert_int_eq(json_array_size(json_object_get(r, "checks")), 7);
	json_decref(r);
	fails("pr.checks", "{\"url\": \"u\", \"limit\": 10001}", RPC_BAD_REQUEST);
	fails("pr.checks", "{\"url\": \"u\", \"limit\": 0}", RPC_BAD_REQUEST);
	fails("pr.checks", "{\"url\": \"nope\"}", RPC_NOT_FOUND);
}
END_TEST

/* An invalid third check rejects the whole observation: nothing written. */
START_TEST(observation_atomic)
{
	json_int_t h;

	session_with_project();
	h = head();
	ck_assert_str_eq(fails("pr.write_observation", "{\"session_id\": \"app-1\","
	    " \"pr\": {\"url\": \"u\", \"number\": 1},"
	    " \"checks\": [{\"name\": \"a\", \"commit_hash\": \"c\", \"status\": \"passed\"},"
	    " {\"name\": \"b\", \"commit_hash\": \"c\", \"status\": \"failed\"},"
	    " {\"name\": \"c\", \"commit_hash\": \"c\", \"status\": \"exploded\"}]}",
	    RPC_BAD_REQUEST), "checks[2].status must be one of: unknown, queued, "
	    "in_progress, passed, failed, skipped, cancelled");
	fails("pr.write_observation", "{\"session_id\": \"app-1\","
	    " \"pr\": {\"url\": \"u\", \"number\": 1},"
	    " \"checks\": [{\"name\": \"a\", \"commit_hash\": \"c\", \"status\": \"passed\"},"
	    " {\"name\": \"b\", \"commit_hash\": \"c\", \"status\": \"failed\"},"
	    " {\"commit_hash\": \"c\", \"status\": \"failed\"}]}", RPC_BAD_REQUEST);
	fails("pr.write_observation", "{\"session_id\": \"app-1\","
	    " \"pr\": {\"url\": \"u\", \"number\": 1},"
	    " \"comments\": [{\"comment_id\": \"1\", \"body\": \"x\"}, 5]}",
	    RPC_BAD_REQUEST);
	fails("pr.get", "{\"url\": \"u\"}", RPC_NOT_FOUND);
	expect_events(h, NONE);

	/* A PR URL belongs to one session. */
	ok("session.create", "{\"project_id\": \"app\"}");
	ok("pr.write_observation", "{\"session_id\": \"app-1\", \"pr\": {\"url\": \"u\","
	    " \"number\": 1}}");
	h = head();
	fails("pr.write_observation", "{\"session_id\": \"app-2\", \"pr\": {\"url\": \"u\","
	    " \"number\": 1, \"state\": \"merged\"}}", RPC_CONFLICT);
	fails("pr.write_observation", "{\"session_id\": \"app-9\", \"pr\": {\"url\": \"v\","
	    " \"number\": 1}}", RPC_NOT_FOUND);
	fails("pr.write_observation", "{\"session_id\": \"app-1\", \"pr\": {\"url\": \"v\","
	    " \"number\": 1, \"ci_state\": \"red\"}}", RPC_BAD_REQUEST);
	fails("pr.write_observation", "{\"session_id\": \"app-1\", \"pr\": {\"url\": \"\","
	    " \"number\": 1}}", RPC_BAD_REQUEST);
	fails("pr.write_observation", "{\"session_id\": \"app-1\", \"pr\": {\"url\": \"v\","
	    " \"number\": 1, \"extra\": 1}}", RPC_BAD_REQUEST);
	expect_events(h, NONE);
}
END_TEST

/* One failing request in a batch rolls back alone; the others commit. */
START_TEST(group_commit_isolation)
{
	struct rpc_error e;
	json_t *a, *b, *c;

	make_project("app");
	ck_assert_int_eq(store_exec(&st, "BEGIN IMMEDIATE", &e), 0);
	a = call_txn("session.create", "{\"project_id\": \"app\"}", &e, true);
	b = call_txn("pr.write_observation", "{\"session_id\": \"app-1\", \"pr\": {\"url\":"
	    " \"u\", \"number\": 1}, \"checks\": [{\"name\": \"x\", \"commit_hash\": \"c\","
	    " \"status\": \"passed\"}, {\"name\": \"y\", \"commit_hash\": \"c\","
	    " \"status\": \"bad\"}]}", &e, true);
	c = call_txn("session.create", "{\"project_id\": \"app\"}", &e, true);
	ck_assert_int_eq(store_exec(&st, "COMMIT", &e), 0);
	ck_assert_ptr_nonnull(a);
	ck_assert_ptr_null(b);
	ck_assert_ptr_nonnull(c);
	ck_assert_str_eq(str(c, "id"), "app-2");
	json_decref(a);
	json_decref(c);
	ok("session.get", "{\"id\": \"app-2\"}");
	fails("pr.get", "{\"url\": \"u\"}", RPC_NOT_FOUND);
	static const char *const three[] = { "project_added", "session_created",
		"session_created", NULL };
	expect_events(0, three);
}
END_TEST

START_TEST(cascades)
{
	json_t *r;
	sqlite3_stmt *s;
	static const char *const tables[] = { "sessions", "pr", "pr_checks",
		"pr_comment", "reaction_trackers", "notifications", NULL };
	char sql[128];
	int i;

	session_with_project();
	make_project("other");
	ok("session.create", "{\"project_id\": \"other\"}");
	ok("pr.write_observation", obs_c1);
	ok("reaction.put", "{\"session_id\": \"app-1\", \"reaction\": \"ci-failed\","
	    " \"attempts\": 1}");
	ok("notification.add", "{\"session_id\": \"app-1\", \"priority\": \"urgent\","
	    " \"message\": \"help\"}");
	OK(r, "project.delete", "{\"id\": \"app\"}");
	json_decref(r);
	for (i = 0; tables[i] != NULL; i++) {
		snprintf(sql, sizeof(sql), "SELECT COUNT(*) FROM %s WHERE %s", tables[i],
		    strcmp(tables[i], "sessions") == 0 ? "project_id = 'app'" : "1");
		ck_assert_int_eq(sqlite3_prepare_v2(st.db, sql, -1, &s, NULL), SQLITE_OK);
		ck_assert_int_eq(sqlite3_step(s), SQLITE_ROW);
		ck_assert_msg(sqlite3_column_int(s, 0) == 0, "%s not emptied", tables[i]);
		sqlite3_finalize(s);
	}
	ok("session.get", "{\"id\": \"other-1\"}");
	/* History stays: the change_log has no foreign keys. */
	ck_assert_int_gt(head(), 5);
}
END_TEST

START_TEST(reactions)
{
	json_t *r, *t;

	session_with_project();
	OK(r, "reaction.get", "{\"session_id\": \"app-1\"}");
	ck_assert_int_eq(json_array_size(json_object_get(r, "trackers")), 0);
	json_decref(r);
	OK(r, "reaction.put", "{\"session_id\": \"app-1\", \"reaction\": \"ci-failed\","
	    " \"attempts\": 2, \"first_at\": 5, \"last_at\": 9, \"signature\": \"c2\"}");
	ck_assert_int_eq(num(r, "attempts"), 2);
	ck_assert(json_is_false(json_object_get(r, "escalated")));
	json_decref(r);
	ok("reaction.put", "{\"session_id\": \"app-1\", \"reaction\": \"ci-failed\","
	    " \"attempts\": 3, \"first_at\": 5, \"last_at\": 12, \"signature\": \"c3\","
	    " \"escalated\": true}");
	ok("reaction.put", "{\"session_id\": \"app-1\", \"reaction\": \"agent-idle\","
	    " \"attempts\": 1}");
	OK(r, "reaction.get", "{\"session_id\": \"app-1\", \"reaction\": \"ci-failed\"}");
	t = json_array_get(json_object_get(r, "trackers"), 0);
	ck_assert_int_eq(num(t, "attempts"), 3);
	ck_assert_str_eq(str(t, "signature"), "c3");
	ck_assert(json_is_true(json_object_get(t, "escalated")));
	json_decref(r);
	OK(r, "reaction.clear", "{\"session_id\": \"app-1\", \"reaction\": \"agent-idle\"}");
	ck_assert_int_eq(num(r, "cleared"), 1);
	json_decref(r);
	OK(r, "reaction.clear", "{\"session_id\": \"app-1\"}");
	ck_assert_int_eq(num(r, "cleared"), 1);
	json_decref(r);
	fails("reaction.put", "{\"session_id\": \"app-1\", \"reaction\": \"x\","
	    " \"attempts\": -1}", RPC_BAD_REQUEST);
	fails("reaction.put", "{\"session_id\": \"app-9\", \"reaction\": \"x\","
	    " \"attempts\": 1}", RPC_NOT_FOUND);
	fails("reaction.get", "{\"session_id\": \"app-9\"}", RPC_NOT_FOUND);
}
END_TEST

START_TEST(notifications)
{
	json_t *r, *ev;
	json_int_t h;

	session_with_project();
	h = head();
	OK(r, "notification.add", "{\"session_id\": \"app-1\", \"priority\": \"action\","
	    " \"reaction\": \"approved-and-green\", \"message\": \"ready to merge\"}");
	ck_assert_str_eq(str(r, "project_id"), "app");
	ck_assert_int_eq(num(r, "id"), 1);
	json_decref(r);
	ok("notification.add", "{\"priority\": \"info\", \"message\": \"hi\"}");
	static const char *const two[] = { "notification_created",
		"notification_created", NULL };
	expect_events(h, two);
	ev = events_after(h);
	ck_assert_str_eq(keys(json_object_get(json_array_get(ev, 0), "payload")),
	    "id,message,priority,reaction,session_id");
	json_decref(ev);
	OK(r, "notification.list", NULL);
	ck_assert_int_eq(json_array_size(json_object_get(r, "notifications")), 2);
	ck_assert_int_eq(num(json_array_get(json_object_get(r, "notifications"), 0),
	    "id"), 2);	/* newest first */
	json_decref(r);
	OK(r, "notification.list", "{\"session_id\": \"app-1\", \"limit\": 5}");
	ck_assert_int_eq(json_array_size(json_object_get(r, "notifications")), 1);
	json_decref(r);
	fails("notification.add", "{\"priority\": \"meh\", \"message\": \"x\"}",
	    RPC_BAD_REQUEST);
	fails("notification.add", "{\"priority\": \"info\", \"message\": \"\"}",
	    RPC_BAD_REQUEST);
	fails("notification.add", "{\"session_id\": \"app-9\", \"priority\": \"info\","
	    " \"message\": \"x\"}", RPC_NOT_FOUND);
}
END_TEST

START_TEST(changelog_and_consumers)
{
	json_t *r;

	session_with_project();
	make_project("web");
	OK(r, "changelog.head", NULL);
	ck_assert_int_eq(num(r, "head"), 3);
	ck_assert_int_eq(num(r, "oldest"), 1);
	json_decref(r);
	OK(r, "changelog.read", "{\"after\": 1, \"limit\": 1}");
	ck_assert_int_eq(json_array_size(json_object_get(r, "events")), 1);
	ck_assert_int_eq(num(json_array_get(json_object_get(r, "events"), 0), "seq"), 2);
	ck_assert_int_eq(num(r, "head"), 3);
	json_decref(r);
	OK(r, "changelog.read", "{\"after\": 0, \"project_id\": \"web\"}");
	ck_assert_int_eq(json_array_size(json_object_get(r, "events")), 1);
	json_decref(r);
	fails("changelog.read", "{\"after\": 0, \"limit\": 10001}", RPC_BAD_REQUEST);
	fails("changelog.read", "{}", RPC_BAD_REQUEST);

	fails("consumer.get", "{\"name\": \"dash\"}", RPC_NOT_FOUND);
	OK(r, "consumer.commit", "{\"name\": \"dash\", \"seq\": 2}");
	ck_assert_int_eq(num(r, "seq"), 2);
	json_decref(r);
	/* Offsets only move forward. */
	OK(r, "consumer.commit", "{\"name\": \"dash\", \"seq\": 1}");
	ck_assert_int_eq(num(r, "seq"), 2);
	json_decref(r);
	OK(r, "consumer.get", "{\"name\": \"dash\"}");
	ck_assert_int_eq(num(r, "seq"), 2);
	json_decref(r);
	fails("consumer.commit", "{\"name\": \"dash\", \"seq\": 99}", RPC_BAD_REQUEST);
	fails("consumer.commit", "{\"name\": \"\", \"seq\": 1}", RPC_BAD_REQUEST);
}
END_TEST

static int
count_log(void)
{
	sqlite3_stmt *s;
	int n;

	sqlite3_prepare_v2(st.db, "SELECT COUNT(*) FROM change_log", -1, &s, NULL);
	sqlite3_step(s);
	n = sqlite3_column_int(s, 0);
	sqlite3_finalize(s);
	return n;
}

static int
prune_all(const struct storaged_config *cfg)
{
	struct rpc_error e;
	int n, total = 0;

	while ((n = janitor_chunk(&st, cfg, &e)) > 0)
		total += n;
	ck_assert_int_eq(n, 0);
	return total;
}

START_TEST(retention)
{
	struct storaged_config cfg = { .retention_ms = 100000, .retention_rows = 5 };
	json_t *r;
	int i;

	make_project("app");
	for (i = 0; i < 19; i++)
		ok("session.create", "{\"project_id\": \"app\"}");
	ck_assert_int_eq(count_log(), 20);
	/* A consumer active within the age limit holds back pruning at its offset. */
	ok("consumer.commit", "{\"name\": \"slow\", \"seq\": 8}");
	ck_assert_int_eq(prune_all(&cfg), 8);
	OK(r, "changelog.head", NULL);
	ck_assert_int_eq(num(r, "oldest"), 9);
	ck_assert_int_eq(num(r, "head"), 20);
	json_decref(r);
	/* Once it catches up, the row limit applies. */
	ok("consumer.commit", "{\"name\": \"slow\", \"seq\": 20}");
	ck_assert_int_eq(prune_all(&cfg), 7);
	ck_assert_int_eq(count_log(), 5);
	/* A consumer idle past the age limit no longer holds anything back. */
	ok("consumer.commit", "{\"name\": \"old\", \"seq\": 0}");
	st.fixed_now = 1000 + 200000;
	ok("session.create", "{\"project_id\": \"app\"}");
	/* Everything is past the age limit but the newest event. */
	ck_assert_int_eq(prune_all(&cfg), 5);
	ck_assert_int_eq(count_log(), 1);
	/* The head survives pruning (AUTOINCREMENT never reuses a seq). */
	OK(r, "changelog.head", NULL);
	ck_assert_int_eq(num(r, "head"), 21);
	ck_assert_int_eq(num(r, "oldest"), 21);
	json_decref(r);
}
END_TEST

START_TEST(retention_chunks)
{
	struct storaged_config cfg = { .retention_ms = 100000, .retention_rows = 1 };
	struct rpc_error e;
	int i;

	make_project("app");
	ck_assert_int_eq(store_exec(&st, "BEGIN IMMEDIATE", &e), 0);
	for (i = 0; i < 2500; i++) {
		json_t *r = call_txn("session.create", "{\"project_id\": \"app\"}", &e, true);

		ck_assert_ptr_nonnull(r);
		json_decref(r);
	}
	ck_assert_int_eq(store_exec(&st, "COMMIT", &e), 0);
	ck_assert_int_eq(janitor_chunk(&st, &cfg, &e), JANITOR_CHUNK);
	ck_assert_int_eq(janitor_chunk(&st, &cfg, &e), JANITOR_CHUNK);
	ck_assert_int_eq(janitor_chunk(&st, &cfg, &e), 500);
	ck_assert_int_eq(janitor_chunk(&st, &cfg, &e), 0);
	ck_assert_int_eq(count_log(), 1);
}
END_TEST

/*
 * Retention prunes only from the oldest end: a re-added project's event
 * carries the project's registration time, old by the age limit yet
 * behind young events; deleting it would leave a hole in the log.
 */
START_TEST(retention_prefix)
{
	struct storaged_config cfg = { .retention_ms = 100000,
		.retention_rows = 1000 };
	sqlite3_stmt *s;
	json_t *r;

	make_project("app");				/* 1: at 1000 */
	st.fixed_now = 1000 + 150000;
	ok("session.create", "{\"project_id\": \"app\"}");	/* 2 */
	ok("project.archive", "{\"id\": \"app\"}");		/* 3 */
	make_project("app");				/* 4: re-added, at 1000 */
	ck_assert_int_eq(count_log(), 4);
	ck_assert_int_eq(sqlite3_prepare_v2(st.db, "SELECT at FROM change_log"
	    " WHERE seq = 4 AND type = 'project_added'", -1, &s, NULL), SQLITE_OK);
	ck_assert_int_eq(sqlite3_step(s), SQLITE_ROW);
	ck_assert_int_eq(sqlite3_column_int64(s, 0), 1000);
	sqlite3_finalize(s);
	ck_assert_int_eq(prune_all(&cfg), 1);
	OK(r, "changelog.head", NULL);
	ck_assert_int_eq(num(r, "oldest"), 2);
	ck_assert_int_eq(num(r, "head"), 4);
	json_decref(r);
	ck_assert_int_eq(count_log(), 3);
	/* Once everything before it is old, it goes too. */
	st.fixed_now = 1000 + 300000;
	ck_assert_int_eq(prune_all(&cfg), 3);
	ck_assert_int_eq(count_log(), 0);
}
END_TEST

START_TEST(migrations)
{
	struct store other;
	char err[256];
	int perm;
	sqlite3_stmt *s;

	/* The fixture migrated an empty database to the current version. */
	ck_assert_int_eq(sqlite3_prepare_v2(st.db, "PRAGMA user_version", -1, &s, NULL),
	    SQLITE_OK);
	ck_assert_int_eq(sqlite3_step(s), SQLITE_ROW);
	ck_assert_int_eq(sqlite3_column_int(s, 0), schema_version());
	sqlite3_finalize(s);
	session_with_project();
	store_close(&st);

	/* Reopening an existing database keeps its data. */
	ck_assert_int_eq(store_open(&st, dbpath, &perm, err, sizeof(err)), 0);
	ok("session.get", "{\"id\": \"app-1\"}");

	/* A database from a newer ao is refused, permanently, untouched. */
	ck_assert_int_eq(sqlite3_exec(st.db, "PRAGMA user_version = 99", NULL, NULL,
	    NULL), SQLITE_OK);
	ck_assert_int_eq(store_open(&other, dbpath, &perm, err, sizeof(err)), -1);
	ck_assert_int_eq(perm, 1);
	ck_assert_ptr_nonnull(strstr(err, "version 99, newer"));
	ck_assert_int_eq(sqlite3_exec(st.db, "PRAGMA user_version = 1", NULL, NULL,
	    NULL), SQLITE_OK);
}
END_TEST

/* A version 2 database is upgraded in place: 3 drops change_log_at. */
START_TEST(migration_3)
{
	char err[256];
	int perm;
	sqlite3_stmt *s;

	session_with_project();
	ck_assert_int_eq(sqlite3_exec(st.db, "CREATE INDEX change_log_at ON"
	    " change_log(at); PRAGMA user_version = 2", NULL, NULL, NULL), SQLITE_OK);
	store_close(&st);
	ck_assert_int_eq(store_open(&st, dbpath, &perm, err, sizeof(err)), 0);
	ok("session.get", "{\"id\": \"app-1\"}");
	ck_assert_int_eq(sqlite3_prepare_v2(st.db, "SELECT COUNT(*) FROM"
	    " sqlite_schema WHERE name = 'change_log_at'", -1, &s, NULL), SQLITE_OK);
	ck_assert_int_eq(sqlite3_step(s), SQLITE_ROW);
	ck_assert_int_eq(sqlite3_column_int(s, 0), 0);
	sqlite3_finalize(s);
	ck_assert_int_ge(schema_version(), 3);
}
END_TEST

/* Migration 4's rewrite: IN lists of 3+ literals become OR chains. */
START_TEST(in_to_or)
{
	static const char *const cases[][2] = {
		{ "CHECK (s IN ('a','b','c'))", "CHECK ((s = 'a' OR s = 'b' OR s = 'c'))" },
		{ "CHECK (s   IN\n   ( 'a' , 'it''s', 'c' ))",
		    "CHECK ((s = 'a' OR s = 'it''s' OR s = 'c'))" },
		/* Two values cost SQLite nothing: left alone; so are numbers. */
		{ "CHECK (k IN ('a','b'))", "CHECK (k IN ('a','b'))" },
		{ "CHECK (b IN (0, 1, 2))", "CHECK (b IN (0, 1, 2))" },
		/* Text inside a literal is not SQL. */
		{ "DEFAULT 'x IN (''a'',''b'',''c'')'", "DEFAULT 'x IN (''a'',''b'',''c'')'" },
		/* Not a word of its own, not a list, not closed. */
		{ "JOIN ('a','b','c')", "JOIN ('a','b','c')" },
		{ "x IN (SELECT y FROM t)", "x IN (SELECT y FROM t)" },
		{ "x IN ('a','b','c'", "x IN ('a','b','c'" },
		{ "CHECK (s IN ('a','b','c''))", "CHECK (s IN ('a','b','c''))" },
		{ "x IN ('a", "x IN ('a" },
		{ "", "" },
		/* Only CHECK (name IN (list)): anything else could change meaning. */
		{ "x in ('a','b','c') AND y", "x in ('a','b','c') AND y" },
		{ "check(s in('a','b','c'))", "CHECK ((s = 'a' OR s = 'b' OR s = 'c'))" },
		{ "CHECK (t.x IN ('a','b','c'))", "CHECK (t.x IN ('a','b','c'))" },
		{ "CHECK (s NOT IN ('a','b','c'))", "CHECK (s NOT IN ('a','b','c'))" },
		{ "CHECK (s COLLATE NOCASE IN ('a','b','c'))",
		    "CHECK (s COLLATE NOCASE IN ('a','b','c'))" },
		{ "CHECK (a || b IN ('a','b','c'))", "CHECK (a || b IN ('a','b','c'))" },
		{ "CHECK (f = k IN ('a','b','c'))", "CHECK (f = k IN ('a','b','c'))" },
		{ "CHECK (s IN ('a','b','c') OR t)", "CHECK (s IN ('a','b','c') OR t)" },
		{ "RECHECK (s IN ('a','b','c'))", "RECHECK (s IN ('a','b','c'))" },
		/* Comments and quoted names are not SQL either. */
		{ "-- it's\nCHECK (s IN ('a','b','c'))",
		    "-- it's\nCHECK ((s = 'a' OR s = 'b' OR s = 'c'))" },
		{ "/* CHECK (s IN ('a','b','c')) */", "/* CHECK (s IN ('a','b','c')) */" },
		{ "\"CHECK (s IN ('a','b','c'))\"", "\"CHECK (s IN ('a','b','c'))\"" },
	};
	size_t i;
	char *out;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		out = schema_in_to_or(cases[i][0]);
		ck_assert_msg(strcmp(out, cases[i][1]) == 0, "%s -> %s", cases[i][0],
		    out);
		free(out);
	}
}
END_TEST

/* How many OpenEphemeral opcodes sql compiles to. */
static int
ephemerals(const char *sql)
{
	char buf[512];
	sqlite3_stmt *s;
	int n = 0;

	snprintf(buf, sizeof(buf), "EXPLAIN %s", sql);
	ck_assert_int_eq(sqlite3_prepare_v2(st.db, buf, -1, &s, NULL), SQLITE_OK);
	while (sqlite3_step(s) == SQLITE_ROW)
		n += strcmp((const char *)sqlite3_column_text(s, 1),
		    "OpenEphemeral") == 0;
	sqlite3_finalize(s);
	return n;
}

/*
 * A version 3 database gets migration 4: no CHECK builds an ephemeral
 * index any more (two did on every session.update), the data stays, the
 * checks still check.
 */
START_TEST(migration_4)
{
	static const char upd[] = "UPDATE sessions SET activity_state = 'idle',"
	    " updated_at = 5 WHERE id = 'app-1'";
	char err[256];
	int perm;
	sqlite3_stmt *s;

	session_with_project();
	ck_assert_int_eq(ephemerals(upd), 0);
	/* Back to what versions 1-3 made. */
	ck_assert_int_eq(sqlite3_exec(st.db, "PRAGMA writable_schema=ON;"
	    "UPDATE sqlite_schema SET sql = replace(sql, 'CHECK ((activity_state ="
	    " ''active'' OR activity_state = ''ready'' OR activity_state = ''idle''"
	    " OR activity_state = ''waiting_input'' OR activity_state = ''blocked''"
	    " OR activity_state = ''exited''))', 'CHECK (activity_state IN"
	    " (''active'',''ready'',''idle'',''waiting_input'',''blocked'',"
	    "''exited''))') WHERE name = 'sessions';"
	    "PRAGMA schema_version = 1000; PRAGMA writable_schema=OFF;"
	    "PRAGMA writable_schema=RESET; PRAGMA user_version = 3", NULL, NULL, NULL),
	    SQLITE_OK);
	ck_assert_int_ge(ephemerals(upd), 1);
	store_close(&st);
	ck_assert_int_eq(store_open(&st, dbpath, &perm, err, sizeof(err)), 0);
	st.fixed_now = 1000;
	ck_assert_int_eq(ephemerals(upd), 0);
	ck_assert_int_eq(ephemerals("INSERT INTO change_log (type, payload, at)"
	    " VALUES ('session_created', '{}', 1)"), 0);
	ok("session.get", "{\"id\": \"app-1\"}");
	ok("session.update", "{\"id\": \"app-1\", \"activity_state\": \"idle\"}");
	ck_assert_int_ne(sqlite3_exec(st.db, "UPDATE sessions SET activity_state ="
	    " 'zzz' WHERE id = 'app-1'", NULL, NULL, NULL), SQLITE_OK);
	ck_assert_int_eq(sqlite3_prepare_v2(st.db, "PRAGMA integrity_check", -1, &s,
	    NULL), SQLITE_OK);
	ck_assert_int_eq(sqlite3_step(s), SQLITE_ROW);
	ck_assert_str_eq((const char *)sqlite3_column_text(s, 0), "ok");
	sqlite3_finalize(s);
	ck_assert_int_eq(schema_version(), 4);
}
END_TEST

/* The schema's CHECK constraints back up the C validation. */
START_TEST(schema_checks)
{
	static const char *const bad[] = {
		"INSERT INTO projects VALUES ('app', '/p', NULL, NULL, 1, NULL)",
		"UPDATE sessions SET state = 'zzz' WHERE id = 'app-1'",
		"UPDATE sessions SET activity_state = 'zzz' WHERE id = 'app-1'",
		"UPDATE sessions SET state = 'terminated' WHERE id = 'app-1'",
		"UPDATE sessions SET termination_reason = 'pr_merged' WHERE id = 'app-1'",
		"INSERT INTO pr (url, session_id, number, state, created_at, updated_at)"
		" VALUES ('u', 'app-1', 1, 'weird', 1, 1)",
		"INSERT INTO notifications (priority, message, created_at)"
		" VALUES ('loud', 'x', 1)",
		"INSERT INTO change_log (type, payload, at) VALUES ('x', '{}', 1)",
		"INSERT INTO change_log (type, payload, at) VALUES ('project_added', '{', 1)",
		"INSERT INTO sessions (id, project_id, num, created_at, updated_at)"
		" VALUES ('z-1', 'nope', 1, 1, 1)",
		NULL,
	};
	int i;

	session_with_project();
	for (i = 0; bad[i] != NULL; i++)
		ck_assert_msg(sqlite3_exec(st.db, bad[i], NULL, NULL, NULL) != SQLITE_OK,
		    "accepted: %s", bad[i]);
}
END_TEST

START_TEST(bad_input)
{
	fails("project.upsert", "{\"id\": \"a b\", \"path\": \"/x\"}", RPC_BAD_REQUEST);
	fails("project.upsert", "{\"id\": \"-a\", \"path\": \"/x\"}", RPC_BAD_REQUEST);
	fails("project.upsert", "{\"id\": \"a\", \"path\": \"relative\"}",
	    RPC_BAD_REQUEST);
	fails("project.upsert", "{\"id\": \"a\"}", RPC_BAD_REQUEST);
	fails("project.upsert", "{\"id\": \"a\", \"path\": \"/x\", \"color\": \"red\"}",
	    RPC_BAD_REQUEST);
	fails("project.list", "{\"include_archived\": \"yes\"}", RPC_BAD_REQUEST);
	fails("session.create", NULL, RPC_BAD_REQUEST);
	fails("session.create", "{\"project_id\": [1]}", RPC_BAD_REQUEST);
	fails("changelog.head", "{\"x\": 1}", RPC_BAD_REQUEST);
	fails("pr.write_observation", "{\"session_id\": \"a-1\", \"pr\": 5}",
	    RPC_BAD_REQUEST);
	fails("pr.write_observation", "{\"session_id\": \"a-1\", \"pr\": {\"url\": \"u\","
	    " \"number\": 1}, \"checks\": {}}", RPC_BAD_REQUEST);
	ck_assert_int_eq(head(), 0);
}
END_TEST

/* session.apply: state, budgets and notifications in one step, or nothing. */
START_TEST(session_apply)
{
	json_t *r, *t;
	json_int_t h;

	session_with_project();
	ok("reaction.put", "{\"session_id\": \"app-1\", \"reaction\": \"old\","
	    " \"attempts\": 1}");
	h = head();
	OK(r, "session.apply", "{\"id\": \"app-1\","
	    " \"update\": {\"state\": \"detecting\", \"state_before_detecting\":"
	    "   \"working\", \"dead_probes\": 1, \"detecting_attempts\": 1},"
	    " \"trackers\": [{\"reaction\": \"*\", \"clear\": true},"
	    "   {\"reaction\": \"ci-failed/build\", \"attempts\": 2,"
	    "    \"signature\": \"c2\", \"first_at\": 5}],"
	    " \"notifications\": [{\"priority\": \"urgent\", \"reaction\":"
	    "   \"agent-stuck\", \"message\": \"stuck\"}]}");
	ck_assert_str_eq(str(json_object_get(r, "session"), "state"), "detecting");
	ck_assert_str_eq(str(json_object_get(r, "session"), "state_before_detecting"),
	    "working");
	ck_assert_int_eq(num(json_object_get(r, "session"), "dead_probes"), 1);
	ck_assert_int_eq(json_array_size(json_object_get(r, "notifications")), 1);
	ck_assert_str_eq(str(json_array_get(json_object_get(r, "notifications"), 0),
	    "project_id"), "app");
	json_decref(r);
	static const char *const both[] = { "session_updated", "notification_created",
		NULL };
	expect_events(h, both);
	OK(r, "reaction.get", "{\"session_id\": \"app-1\"}");
	t = json_object_get(r, "trackers");
	ck_assert_int_eq(json_array_size(t), 1);
	ck_assert_str_eq(str(json_array_get(t, 0), "reaction"), "ci-failed/build");
	json_decref(r);

	/* One bad part (the second notification) and nothing is stored. */
	h = head();
	fails("session.apply", "{\"id\": \"app-1\", \"update\": {\"state\":"
	    " \"idle\"}, \"trackers\": [{\"reaction\": \"ci-failed/build\","
	    " \"clear\": true}], \"notifications\": [{\"priority\": \"info\","
	    " \"message\": \"a\"}, {\"priority\": \"loud\", \"message\": \"b\"}]}",
	    RPC_BAD_REQUEST);
	expect_events(h, NONE);
	OK(r, "session.get", "{\"id\": \"app-1\"}");
	ck_assert_str_eq(str(r, "state"), "detecting");
	json_decref(r);
	OK(r, "reaction.get", "{\"session_id\": \"app-1\"}");
	ck_assert_int_eq(json_array_size(json_object_get(r, "trackers")), 1);
	json_decref(r);
	fails("session.apply", "{\"id\": \"app-9\"}", RPC_NOT_FOUND);
	fails("session.apply", "{\"id\": \"app-1\", \"update\": {\"bogus\": 1}}",
	    RPC_BAD_REQUEST);
	fails("session.apply", "{\"id\": \"app-1\", \"update\": {"
	    "\"state_before_detecting\": \"terminated\"}}", RPC_BAD_REQUEST);
	fails("session.apply", "{\"id\": \"app-1\", \"trackers\": [5]}",
	    RPC_BAD_REQUEST);
}
END_TEST

Suite *
store_suite(void)
{
	Suite *s = suite_create("store");
	TCase *tc = tcase_create("methods");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, projects);
	tcase_add_test(tc, session_ids);
	tcase_add_test(tc, session_update);
	tcase_add_test(tc, update_combinations);
	tcase_add_test(tc, observation_triggers);
	tcase_add_test(tc, checks_newest_first);
	tcase_add_test(tc, observation_atomic);
	tcase_add_test(tc, group_commit_isolation);
	tcase_add_test(tc, cascades);
	tcase_add_test(tc, reactions);
	tcase_add_test(tc, notifications);
	tcase_add_test(tc, changelog_and_consumers);
	tcase_add_test(tc, session_apply);
	suite_add_tcase(s, tc);
	tc = tcase_create("maintenance");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, retention);
	tcase_add_test(tc, retention_chunks);
	tcase_add_test(tc, retention_prefix);
	tcase_add_test(tc, migrations);
	tcase_add_test(tc, migration_3);
	tcase_add_test(tc, migration_4);
	tcase_add_test(tc, in_to_or);
	tcase_add_test(tc, schema_checks);
	suite_add_tcase(s, tc);
	tc = tcase_create("bad input");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, bad_input);
	tcase_add_test(tc, session_update_bad_input);
	tcase_add_test(tc, update_key_with_nul);
	suite_add_tcase(s, tc);
	return s;
}
TEST_SUITE(store_suite)
