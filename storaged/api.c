/*
 * The storaged.sock methods (DESIGN.md §3) over a store.  Each handler parses
 * its params with the typed getters (unknown keys are rejected), validates
 * enumerations here so errors name the field and the allowed values (the
 * schema's CHECK constraints are the backstop), runs cached statements, and
 * packs exactly one result object.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "common/xmalloc.h"
#include "proto/sqlrow.h"
#include "storaged/storaged.h"

#define DEFAULT_LIMIT	100
#define MAX_LIMIT	10000

static const char *const session_states[] = { "not_started", "working", "idle",
	"needs_input", "stuck", "detecting", "done", "terminated", NULL };
/* The states a detecting session can return to. */
static const char *const recoverable_states[] = { "not_started", "working",
	"idle", "needs_input", "stuck", NULL };
static const char *const termination_reasons[] = { "manually_killed",
	"runtime_lost", "agent_process_exited", "probe_failure",
	"error_in_process", "auto_cleanup", "pr_merged", NULL };
static const char *const activity_states[] = { "active", "ready", "idle",
	"waiting_input", "blocked", "exited", NULL };
static const char *const kinds[] = { "worker", "orchestrator", NULL };
static const char *const runtimes[] = { "tmux", "process", NULL };
static const char *const pr_states[] = { "draft", "open", "merged", "closed", NULL };
static const char *const review_decisions[] = { "none", "approved",
	"changes_requested", "review_required", NULL };
static const char *const ci_states[] = { "unknown", "pending", "passing",
	"failing", NULL };
static const char *const mergeabilities[] = { "unknown", "mergeable",
	"conflicting", "blocked", "unstable", NULL };
static const char *const check_statuses[] = { "unknown", "queued", "in_progress",
	"passed", "failed", "skipped", "cancelled", NULL };
static const char *const priorities[] = { "urgent", "action", "info", NULL };

#define PROJECT_COLS "id, path, origin_url, display_name, registered_at, archived_at"
#define SESSION_COLS "id, project_id, num, issue_id, kind, harness, runtime, " \
	"state, termination_reason, is_alive, activity_state, activity_at, " \
	"activity_source, detecting_attempts, detecting_started_at, " \
	"detecting_evidence_hash, branch, workspace_path, runtime_handle, " \
	"agent_session_id, prompt, created_at, updated_at, " \
	"state_before_detecting, dead_probes, command"
#define PR_COLS "url, session_id, number, state, review_decision, ci_state, " \
	"mergeability, created_at, updated_at"
#define CHECK_COLS "pr_url, name, commit_hash, status, url, log_tail, " \
	"created_at, updated_at"
#define COMMENT_COLS "pr_url, comment_id, author, file, line, body, resolved, " \
	"created_at"
#define TRACKER_COLS "session_id, reaction, attempts, first_at, last_at, " \
	"signature, escalated"
#define NOTIFICATION_COLS "id, project_id, session_id, priority, reaction, " \
	"message, created_at"

/* The kind store_cols records for a column. */
static int
column_kind(const char *name)
{
	return (int)sqlrow_kind(name);
}

/*
 * Packs the current row as a map of column name → value, with the keys
 * packed once per statement (store_cols).
 */
static void
pack_row(struct store *st, msgpack_packer *pk, sqlite3_stmt *s)
{
	const struct store_cols *c = store_cols(st, s, column_kind);
	int i;

	msgpack_pack_map(pk, (size_t)c->n);
	for (i = 0; i < c->n; i++) {
		msgpack_pack_str_body(pk, c->keys + c->off[i], c->len[i]);
		sqlrow_pack_value(pk, s, i, (enum sqlrow_kind)c->kind[i]);
	}
}

/* Steps s to the end, packing {key: [rows]}.  -1 with err on failure. */
static int
pack_rows(struct store *st, sqlite3_stmt *s, const char *key, msgpack_packer *pk,
    struct rpc_error *err)
{
	struct rpc_buf rows;
	uint32_t n = 0;
	int rc;

	rpc_buf_init(&rows);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		pack_row(st, &rows.pk, s);
		n++;
	}
	if (rc != SQLITE_DONE) {
		rpc_buf_free(&rows);
		return store_sqlerr(st, rc, err);
	}
	msgpack_pack_map(pk, 1);
	rpc_pack_str(pk, key);
	msgpack_pack_array(pk, n);
	msgpack_pack_str_body(pk, rows.sb.data, rows.sb.size);	/* raw append */
	rpc_buf_free(&rows);
	return 0;
}

/*
 * Steps a single-row SELECT and packs the row.  No row → not_found naming
 * what was looked for.
 */
static int
pack_one(struct store *st, sqlite3_stmt *s, msgpack_packer *pk, struct rpc_error *err,
    const char *what, const char *id)
{
	int rc = sqlite3_step(s);

	if (rc == SQLITE_ROW) {
		pack_row(st, pk, s);
		sqlite3_reset(s);
		return 0;
	}
	sqlite3_reset(s);
	if (rc == SQLITE_DONE)
		return rpc_error_set(err, RPC_NOT_FOUND, "no %s '%s'", what, id);
	return store_sqlerr(st, rc, err);
}

static int
step_done(struct store *st, sqlite3_stmt *s, struct rpc_error *err)
{
	int rc = sqlite3_step(s);

	sqlite3_reset(s);
	if (rc == SQLITE_DONE || rc == SQLITE_ROW)
		return 0;
	return store_sqlerr(st, rc, err);
}

static void
bind_str(sqlite3_stmt *s, int i, const char *v)
{
	if (v == NULL)
		sqlite3_bind_null(s, i);
	else
		sqlite3_bind_text(s, i, v, -1, SQLITE_STATIC);
}

static void
bind_opt_i64(sqlite3_stmt *s, int i, int present, int64_t v)
{
	if (present == 1)
		sqlite3_bind_int64(s, i, v);
	else
		sqlite3_bind_null(s, i);
}

static int
limit_param(struct rpc_params *p, int64_t *limit)
{
	int r;

	*limit = DEFAULT_LIMIT;
	if ((r = rpc_get_i64(p, "limit", RPC_OPTIONAL, limit)) == -1)
		return -1;
	if (*limit < 1 || *limit > MAX_LIMIT)
		return rpc_error_set(p->err, RPC_BAD_REQUEST,
		    "limit must be 1..%d", MAX_LIMIT);
	return 0;
}

/* Project ids name directories and session ids: [A-Za-z0-9_.-], 1..64. */
static int
valid_project_id(const char *id, struct rpc_error *err)
{
	size_t i, n = strlen(id);

	if (n == 0 || n > 64 || id[0] == '.' || id[0] == '-')
		goto bad;
	for (i = 0; i < n; i++)
		if (!((id[i] >= 'a' && id[i] <= 'z') || (id[i] >= 'A' && id[i] <= 'Z') ||
		    (id[i] >= '0' && id[i] <= '9') || id[i] == '_' || id[i] == '.' ||
		    id[i] == '-'))
			goto bad;
	return 0;
bad:
	return rpc_error_set(err, RPC_BAD_REQUEST, "id must be 1-64 characters of "
	    "A-Z a-z 0-9 _ . - not starting with . or -");
}

static int
nonempty(struct rpc_params *p, const char *key, const char *v)
{
	if (v != NULL && v[0] == '\0')
		return rpc_error_set(p->err, RPC_BAD_REQUEST, "%s must not be empty", key);
	return 0;
}

/* Projects. */

static const char sql_project_get[] =
    "SELECT " PROJECT_COLS " FROM projects WHERE id = ?1";

static int
project_pack(struct store *st, const char *id, msgpack_packer *out, struct rpc_error *err)
{
	sqlite3_stmt *s = store_stmt(st, sql_project_get);

	bind_str(s, 1, id);
	return pack_one(st, s, out, err, "project", id);
}

static int
project_upsert(struct store *st, struct rpc_params *p, msgpack_packer *out,
    struct rpc_error *err)
{
	static const char sql[] =
	    "INSERT INTO projects (id, path, origin_url, display_name, registered_at)"
	    " VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (id) DO UPDATE SET"
	    " path = excluded.path, origin_url = excluded.origin_url,"
	    " display_name = excluded.display_name, archived_at = NULL";
	const char *id, *path, *origin = NULL, *display = NULL;
	sqlite3_stmt *s;

	if (rpc_get_str(p, "id", RPC_REQUIRED, &id) == -1 ||
	    rpc_get_str(p, "path", RPC_REQUIRED, &path) == -1 ||
	    rpc_get_str(p, "origin_url", RPC_OPTIONAL, &origin) == -1 ||
	    rpc_get_str(p, "display_name", RPC_OPTIONAL, &display) == -1 ||
	    rpc_params_end(p) == -1 || valid_project_id(id, err) == -1)
		return -1;
	if (path[0] != '/')
		return rpc_error_set(err, RPC_BAD_REQUEST, "path must be absolute");
	s = store_stmt(st, sql);
	bind_str(s, 1, id);
	bind_str(s, 2, path);
	bind_str(s, 3, origin);
	bind_str(s, 4, display);
	sqlite3_bind_int64(s, 5, store_now(st));
	if (step_done(st, s, err) == -1)
		return -1;
	return project_pack(st, id, out, err);
}

static int
project_get(struct store *st, struct rpc_params *p, msgpack_packer *out,
    struct rpc_error *err)
{
	const char *id;

	if (rpc_get_str(p, "id", RPC_REQUIRED, &id) == -1 || rpc_params_end(p) == -1)
		return -1;
	return project_pack(st, id, out, err);
}

static int
project_list(struct store *st, struct rpc_params *p, msgpack_packer *out,
    struct rpc_error *err)
{
	static const char sql[] = "SELECT " PROJECT_COLS " FROM projects"
	    " WHERE ?1 OR archived_at IS NULL ORDER BY registered_at, id";
	bool all = false;
	sqlite3_stmt *s;

	if (rpc_get_bool(p, "include_archived", RPC_OPTIONAL, &all) == -1 ||
	    rpc_params_end(p) == -1)
		return -1;
	s = store_stmt(st, sql);
	sqlite3_bind_int(s, 1, all);
	return pack_rows(st, s, "projects", out, err);
}

static int
project_archive(struct store *st, struct rpc_params *p, msgpack_packer *out,
    struct rpc_error *err)
{
	static const char sql[] = "UPDATE projects SET archived_at ="
	    " COALESCE(archived_at, ?2) WHERE id = ?1";
	const char *id;
	sqlite3_stmt *s;

	if (rpc_get_str(p, "id", RPC_REQUIRED, &id) == -1 || rpc_params_end(p) == -1)
		return -1;
	s = store_stmt(st, sql);
	bind_str(s, 1, id);
	sqlite3_bind_int64(s, 2, store_now(st));
	if (step_done(st, s, err) == -1)
		return -1;
	return project_pack(st, id, out, err);
}

static int
project_delete(struct store *st, struct rpc_params *p, msgpack_packer *out,
    struct rpc_error *err)
{
	static const char sql[] = "DELETE FROM projects WHERE id = ?1";
	const char *id;
	sqlite3_stmt *s;

	if (rpc_get_str(p, "id", RPC_REQUIRED, &id) == -1 || rpc_params_end(p) == -1)
		return -1;
	s = store_stmt(st, sql);
	bind_str(s, 1, id);
	if (step_done(st, s, err) == -1)
		return -1;
	if (sqlite3_changes(st->db) == 0)
		return rpc_error_set(err, RPC_NOT_FOUND, "no project '%s'", id);
	msgpack_pack_map(out, 2);
	rpc_pack_kv_str(out, "id", id);
	rpc_pack_kv_bool(out, "deleted", true);
	return 0;
}

/* Sessions. */

static const char sql_session_get[] =
    "SELECT " SESSION_COLS " FROM sessions WHERE id = ?1";

static int
session_pack(struct store *st, const char *id, msgpack_packer *out,
    struct rpc_error *err)
{
	sqlite3_stmt *s = store_stmt(st, sql_session_get);

	bind_str(s, 1, id);
	return pack_one(st, s, out, err, "session", id);
}

/* 0 when the project exists (and, if live, is not archived); -1 with err. */
static int
project_check(struct store *st, const char *id, bool live, struct rpc_error *err)
{
	static const char sql[] = "SELECT archived_at IS NOT NULL FROM projects"
	    " WHERE id = ?1";
	sqlite3_stmt *s = store_stmt(st, sql);
	int rc, archived = 0;

	bind_str(s, 1, id);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		archived = sqlite3_column_int(s, 0);
	sqlite3_reset(s);
	if (rc == SQLITE_DONE)
		return rpc_error_set(err, RPC_NOT_FOUND, "no project '%s'", id);
	if (rc != SQLITE_ROW)
		return store_sqlerr(st, rc, err);
	if (live && archived)
		return rpc_error_set(err, RPC_INVALID_STATE, "project '%s' is archived",
		    id);
	return 0;
}

static int
session_create(struct store *st, struct rpc_params *p, msgpack_packer *out,
    struct rpc_error *err)
{
	/* The number is taken inside the write transaction: no two creates collide. */
	static const char sql[] =
	    "INSERT INTO sessions (id, project_id, num, issue_id, kind, harness,"
	    " runtime, branch, workspace_path, prompt, agent_session_id, command,"
	    " created_at, updated_at)"
	    " SELECT ?1 || '-' || n, ?1, n, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?11,"
	    " ?10, ?10"
	    " FROM (SELECT COALESCE(MAX(num), 0) + 1 AS n FROM sessions"
	    " WHERE project_id = ?1)"
	    " RETURNING id";
	const char *project, *issue = NULL, *harness = NULL, *branch = NULL;
	const char *workspace = NULL, *prompt = NULL, *agent = NULL, **argv = NULL;
	int kind = 0, runtime = 0, rc;
	char id[128], *command = NULL;
	sqlite3_stmt *s;
	size_t argc = 0, i;

	if (rpc_get_str(p, "project_id", RPC_REQUIRED, &project) == -1 ||
	    rpc_get_str(p, "issue_id", RPC_OPTIONAL, &issue) == -1 ||
	    rpc_get_enum(p, "kind", RPC_OPTIONAL, kinds, &kind) == -1 ||
	    rpc_get_str(p, "harness", RPC_OPTIONAL, &harness) == -1 ||
	    rpc_get_enum(p, "runtime", RPC_OPTIONAL, runtimes, &runtime) == -1 ||
	    rpc_get_str(p, "branch", RPC_OPTIONAL, &branch) == -1 ||
	    rpc_get_str(p, "workspace_path", RPC_OPTIONAL, &workspace) == -1 ||
	    rpc_get_str(p, "prompt", RPC_OPTIONAL, &prompt) == -1 ||
	    rpc_get_str(p, "agent_session_id", RPC_OPTIONAL, &agent) == -1 ||
	    rpc_get_str_array(p, "command", RPC_OPTIONAL, &argv, &argc) == -1 ||
	    rpc_params_end(p) == -1 || project_check(st, project, true, err) == -1)
		return -1;
	if (argv != NULL) {
		json_t *a = json_array();

		if (argc == 0 || argv[0][0] == '\0') {
			json_decref(a);
			return rpc_error_set(err, RPC_BAD_REQUEST,
			    "command must be a non-empty argv array");
		}
		for (i = 0; i < argc; i++)
			json_array_append_new(a, json_string(argv[i]));
		command = json_dumps(a, JSON_COMPACT);
		json_decref(a);
	}
	s = store_stmt(st, sql);
	bind_str(s, 1, project);
	bind_str(s, 2, issue);
	bind_str(s, 3, kinds[kind]);
	bind_str(s, 4, harness);
	bind_str(s, 5, runtimes[runtime]);
	bind_str(s, 6, branch);
	bind_str(s, 7, workspace);
	bind_str(s, 8, prompt);
	bind_str(s, 9, agent);
	sqlite3_bind_int64(s, 10, store_now(st));
	bind_str(s, 11, command);
	rc = sqlite3_step(s);
	free(command);
	if (rc != SQLITE_ROW) {
		sqlite3_reset(s);
		return store_sqlerr(st, rc, err);
	}
	snprintf(id, sizeof(id), "%s", (const char *)sqlite3_column_text(s, 0));
	sqlite3_reset(s);
	return session_pack(st, id, out, err);
}

static int
session_get(struct store *st, struct rpc_params *p, msgpack_packer *out,
    struct rpc_error *err)
{
	const char *id;

	if (rpc_get_str(p, "id", RPC_REQUIRED, &id) == -1 || rpc_params_end(p) == -1)
		return -1;
	return session_pack(st, id, out, err);
}

static int
session_list(struct store *st, struct rpc_params *p, msgpack_packer *out,
    struct rpc_error *err)
{
	static const char sql[] = "SELECT " SESSION_COLS " FROM sessions"
	    " WHERE (?1 IS NULL OR project_id = ?1)"
	    " AND (?2 OR state != 'terminated')"
	    " ORDER BY created_at, project_id, num";
	const char *project = NULL;
	bool all = false;
	sqlite3_stmt *s;

	if (rpc_get_str(p, "project_id", RPC_OPTIONAL, &project) == -1 ||
	    rpc_get_bool(p, "include_terminated", RPC_OPTIONAL, &all) == -1 ||
	    rpc_params_end(p) == -1)
		return -1;
	if (project != NULL && project_check(st, project, false, err) == -1)
		return -1;
	s = store_stmt(st, sql);
	bind_str(s, 1, project);
	sqlite3_bind_int(s, 2, all);
	return pack_rows(st, s, "sessions", out, err);
}

/* session.count {}: how many sessions are live (neither terminated nor done). */
static int
session_count(struct store *st, struct rpc_params *p, msgpack_packer *out,
    struct rpc_error *err)
{
	static const char sql[] = "SELECT COUNT(*) FROM sessions"
	    " WHERE state NOT IN ('terminated', 'done')";
	sqlite3_stmt *s;
	int rc;

	if (rpc_params_end(p) == -1)
		return -1;
	s = store_stmt(st, sql);
	rc = sqlite3_step(s);
	if (rc != SQLITE_ROW) {
		sqlite3_reset(s);
		return store_sqlerr(st, rc, err);
	}
	msgpack_pack_map(out, 1);
	rpc_pack_kv_i64(out, "live", sqlite3_column_int64(s, 0));
	sqlite3_reset(s);
	return 0;
}

/*
 * session.update: the fields a caller may change.  A key sent as nil sets a
 * nullable column to NULL; absent keys are untouched.
 */
enum field_type { F_ENUM, F_STR, F_INT, F_BOOL };
static const struct update_field {
	const char *name;
	enum field_type type;
	bool nullable;
	const char *const *allowed;
} update_fields[] = {
	{ "state", F_ENUM, false, session_states },
	{ "termination_reason", F_ENUM, true, termination_reasons },
	{ "is_alive", F_BOOL, false, NULL },
	{ "activity_state", F_ENUM, true, activity_states },
	{ "activity_at", F_INT, true, NULL },
	{ "activity_source", F_STR, true, NULL },
	{ "detecting_attempts", F_INT, false, NULL },
	{ "detecting_started_at", F_INT, true, NULL },
	{ "detecting_evidence_hash", F_STR, true, NULL },
	{ "branch", F_STR, true, NULL },
	{ "workspace_path", F_STR, true, NULL },
	{ "runtime_handle", F_STR, true, NULL },
	{ "agent_session_id", F_STR, true, NULL },
	{ "prompt", F_STR, true, NULL },
	{ "issue_id", F_STR, true, NULL },
	{ "harness", F_STR, true, NULL },
	{ "state_before_detecting", F_ENUM, true, recoverable_states },
	{ "dead_probes", F_INT, false, NULL },
};
#define NUPDATE_FIELDS (sizeof(update_fields) / sizeof(update_fields[0]))
/* store_stmt_key names an UPDATE by a bit per field. */
_Static_assert(NUPDATE_FIELDS <= 64, "update_fields: more than 64");

static int
bind_field(sqlite3_stmt *s, int idx, const struct update_field *f,
    const msgpack_object *v, msgpack_zone *zone, struct rpc_error *err)
{
	const char *str;
	int i;

	if (v->type == MSGPACK_OBJECT_NIL) {
		if (!f->nullable)
			return rpc_error_set(err, RPC_BAD_REQUEST, "%s cannot be null",
			    f->name);
		sqlite3_bind_null(s, idx);
		return 0;
	}
	switch (f->type) {
	case F_BOOL:
		if (v->type != MSGPACK_OBJECT_BOOLEAN)
			return rpc_error_set(err, RPC_BAD_REQUEST,
			    "%s must be a boolean", f->name);
		sqlite3_bind_int(s, idx, v->via.boolean);
		return 0;
	case F_INT: {
		int64_t x;

		if (rpc_obj_i64(v, &x) == -1)
			return rpc_error_set(err, RPC_BAD_REQUEST,
			    "%s must be an integer", f->name);
		sqlite3_bind_int64(s, idx, x);
		return 0;
	}
	case F_STR:
	case F_ENUM:
		if (v->type != MSGPACK_OBJECT_STR ||
		    !rpc_utf8_valid(v->via.str.ptr, v->via.str.size))
			return rpc_error_set(err, RPC_BAD_REQUEST,
			    "%s must be a UTF-8 string", f->name);
		str = msgpack_zone_malloc(zone, v->via.str.size + 1);
		if (str == NULL)
			fatalx("out of memory");
		if (v->via.str.size > 0)
			memcpy((char *)str, v->via.str.ptr, v->via.str.size);
		((char *)str)[v->via.str.size] = '\0';
		if (f->type == F_ENUM) {
			char list[300];
			size_t off = 0;

			for (i = 0; f->allowed[i] != NULL; i++)
				if (strcmp(f->allowed[i], str) == 0)
					break;
			if (f->allowed[i] == NULL) {
				list[0] = '\0';
				for (i = 0; f->allowed[i] != NULL; i++)
					off += snprintf(list + off, sizeof(list) - off,
					    "%s%s", i ? ", " : "", f->allowed[i]);
				return rpc_error_set(err, RPC_BAD_REQUEST,
				    "%s must be one of: %s", f->name, list);
			}
		}
		sqlite3_bind_text(s, idx, str, (int)v->via.str.size, SQLITE_STATIC);
		return 0;
	}
	return -1;
}

/*
 * Validates the fields of map m (keys of update_fields; "id" is skipped when
 * skip_id) and binds them to an UPDATE that sets exactly those fields (one
 * cached statement per combination: assigning untouched columns would run
 * their CHECK constraints for nothing).  *out is then run by exec_update.
 * seen, when not NULL, marks the keys consumed.
 */
static int
bind_update(struct store *st, const msgpack_object_map *m, bool *seen,
    msgpack_zone *zone, bool skip_id, sqlite3_stmt **out, struct rpc_error *err)
{
	int pos[NUPDATE_FIELDS], where[NUPDATE_FIELDS];
	char sql[2048];
	size_t k, off, n = 0;
	uint64_t mask = 0;
	sqlite3_stmt *s;
	uint32_t i;

	for (k = 0; k < NUPDATE_FIELDS; k++)
		pos[k] = -1;
	for (i = 0; m != NULL && i < m->size; i++) {
		const msgpack_object *key = &m->ptr[i].key;
		char name[64];

		if (rpc_obj_str(key, name, sizeof(name)) == -1)
			return rpc_error_set(err, RPC_BAD_REQUEST,
			    "params keys must be strings");
		if (skip_id && strcmp(name, "id") == 0)
			continue;
		/* The size too: a key with a NUL in it is no field's name. */
		for (k = 0; k < NUPDATE_FIELDS; k++)
			if (key->via.str.size == strlen(update_fields[k].name) &&
			    strcmp(update_fields[k].name, name) == 0)
				break;
		if (k == NUPDATE_FIELDS)
			return rpc_error_set(err, RPC_BAD_REQUEST,
			    "unknown parameter '%s'", name);
		pos[k] = (int)i;
		mask |= (uint64_t)1 << k;
	}
	for (k = 0; k < NUPDATE_FIELDS; k++)
		if (pos[k] >= 0)
			where[k] = (int)(2 + n++);
	/* The statement is named by the set of columns it assigns. */
	if ((s = store_stmt_key(st, mask)) == NULL) {
		off = (size_t)snprintf(sql, sizeof(sql), "UPDATE sessions SET");
		for (k = 0; k < NUPDATE_FIELDS; k++)
			if (pos[k] >= 0)
				off += (size_t)snprintf(sql + off, sizeof(sql) - off,
				    " %s = ?%d,", update_fields[k].name, where[k]);
		snprintf(sql + off, sizeof(sql) - off, " updated_at = ?%zu WHERE"
		    " id = ?1", 2 + n);
		s = store_stmt_add(st, mask, sql);
	}
	for (k = 0; k < NUPDATE_FIELDS; k++) {
		if (pos[k] < 0)
			continue;
		if (bind_field(s, where[k], &update_fields[k], &m->ptr[pos[k]].val,
		    zone, err) == -1)
			return -1;
		if (seen != NULL)
			seen[pos[k]] = true;
	}
	sqlite3_bind_int64(s, (int)(2 + n), store_now(st));
	*out = s;
	return 0;
}

/*
 * Runs the update bound by bind_update for session id; packs the updated
 * session into out when out is not NULL, read back by the cached
 * session.get statement.  (RETURNING costs more: SQLite collects its rows
 * in an ephemeral table, about 18 K instructions a write, callgrind.)
 */
static int
exec_update(struct store *st, sqlite3_stmt *s, const char *id, msgpack_packer *out,
    struct rpc_error *err)
{
	int rc;

	bind_str(s, 1, id);
	rc = sqlite3_step(s);
	sqlite3_reset(s);
	if (rc == SQLITE_CONSTRAINT_CHECK &&
	    strstr(sqlite3_errmsg(st->db), "termination_reason_iff_terminated") != NULL)
		return rpc_error_set(err, RPC_BAD_REQUEST, "termination_reason must be "
		    "set exactly when state is terminated");
	if (rc != SQLITE_DONE)
		return store_sqlerr(st, rc, err);
	if (sqlite3_changes(st->db) == 0)
		return rpc_error_set(err, RPC_NOT_FOUND, "no session '%s'", id);
	if (out == NULL)
		return 0;
	s = store_stmt(st, sql_session_get);
	bind_str(s, 1, id);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		pack_row(st, out, s);
	sqlite3_reset(s);
	if (rc != SQLITE_ROW)
		return store_sqlerr(st, rc, err);
	return 0;
}

static int
session_update(struct store *st, struct rpc_params *p, msgpack_packer *out,
    struct rpc_error *err)
{
	sqlite3_stmt *s;
	const char *id;

	if (bind_update(st, p->map, p->seen, p->zone, true, &s, err) == -1 ||
	    rpc_get_str(p, "id", RPC_REQUIRED, &id) == -1 ||
	    rpc_params_end(p) == -1)
		return -1;
	return exec_update(st, s, id, out, err);
}

/* Pull requests. */

static const char sql_pr_get[] = "SELECT " PR_COLS " FROM pr WHERE url = ?1";

struct obs_check {
	const char *name, *commit_hash, *url, *log_tail;
	int status;
};

struct obs_comment {
	const char *id, *author, *file, *body;
	int64_t line;
	int has_line;
	bool resolved;
};

struct observation {
	const char *session_id;
	const char *url;
	int64_t number;
	int state, review, ci, merge;
	struct obs_check *checks;	/* NULL: checks unchanged */
	size_t nchecks;
	struct obs_comment *comments;	/* NULL: comments unchanged */
	size_t ncomments;
};

/* Parses and validates a whole observation before anything is written. */
static int
observation_parse(struct rpc_params *p, struct observation *o)
{
	const msgpack_object *pr, *checks = NULL, *comments = NULL;
	struct rpc_params sub;
	char path[32];
	uint32_t i;

	memset(o, 0, sizeof(*o));
	o->state = 1;	/* open; the other enums default to their first value */
	if (rpc_get_str(p, "session_id", RPC_REQUIRED, &o->session_id) == -1 ||
	    rpc_get_map(p, "pr", RPC_REQUIRED, &pr) == -1 ||
	    rpc_get_array(p, "checks", RPC_OPTIONAL, &checks) == -1 ||
	    rpc_get_array(p, "comments", RPC_OPTIONAL, &comments) == -1 ||
	    rpc_params_end(p) == -1)
		return -1;
	if (rpc_params_init(&sub, pr, p->zone, "pr", p->err) == -1 ||
	    rpc_get_str(&sub, "url", RPC_REQUIRED, &o->url) == -1 ||
	    rpc_get_i64(&sub, "number", RPC_REQUIRED, &o->number) == -1 ||
	    rpc_get_enum(&sub, "state", RPC_OPTIONAL, pr_states, &o->state) == -1 ||
	    rpc_get_enum(&sub, "review_decision", RPC_OPTIONAL, review_decisions,
	    &o->review) == -1 ||
	    rpc_get_enum(&sub, "ci_state", RPC_OPTIONAL, ci_states, &o->ci) == -1 ||
	    rpc_get_enum(&sub, "mergeability", RPC_OPTIONAL, mergeabilities,
	    &o->merge) == -1 ||
	    rpc_params_end(&sub) == -1 || nonempty(&sub, "pr.url", o->url) == -1)
		return -1;
	if (checks != NULL) {
		o->nchecks = checks->via.array.size;
		o->checks = msgpack_zone_malloc(p->zone, (o->nchecks + 1) *
		    sizeof(*o->checks));
		if (o->checks == NULL)
			fatalx("out of memory");
		for (i = 0; i < checks->via.array.size; i++) {
			struct obs_check *c = &o->checks[i];

			memset(c, 0, sizeof(*c));
			snprintf(path, sizeof(path), "checks[%u]", i);
			if (rpc_params_init(&sub, &checks->via.array.ptr[i], p->zone,
			    path, p->err) == -1 ||
			    rpc_get_str(&sub, "name", RPC_REQUIRED, &c->name) == -1 ||
			    rpc_get_str(&sub, "commit_hash", RPC_REQUIRED,
			    &c->commit_hash) == -1 ||
			    rpc_get_enum(&sub, "status", RPC_REQUIRED, check_statuses,
			    &c->status) == -1 ||
			    rpc_get_str(&sub, "url", RPC_OPTIONAL, &c->url) == -1 ||
			    rpc_get_str(&sub, "log_tail", RPC_OPTIONAL, &c->log_tail) == -1 ||
			    rpc_params_end(&sub) == -1 ||
			    nonempty(&sub, "name", c->name) == -1 ||
			    nonempty(&sub, "commit_hash", c->commit_hash) == -1)
				return -1;
			if (checks->via.array.ptr[i].type != MSGPACK_OBJECT_MAP)
				return rpc_error_set(p->err, RPC_BAD_REQUEST,
				    "%s must be a map", path);
		}
	}
	if (comments != NULL) {
		o->ncomments = comments->via.array.size;
		o->comments = msgpack_zone_malloc(p->zone, (o->ncomments + 1) *
		    sizeof(*o->comments));
		if (o->comments == NULL)
			fatalx("out of memory");
		for (i = 0; i < comments->via.array.size; i++) {
			struct obs_comment *c = &o->comments[i];

			memset(c, 0, sizeof(*c));
			snprintf(path, sizeof(path), "comments[%u]", i);
			if (rpc_params_init(&sub, &comments->via.array.ptr[i], p->zone,
			    path, p->err) == -1 ||
			    rpc_get_str(&sub, "comment_id", RPC_REQUIRED, &c->id) == -1 ||
			    rpc_get_str(&sub, "author", RPC_OPTIONAL, &c->author) == -1 ||
			    rpc_get_str(&sub, "file", RPC_OPTIONAL, &c->file) == -1 ||
			    (c->has_line = rpc_get_i64(&sub, "line", RPC_OPTIONAL,
			    &c->line)) == -1 ||
			    rpc_get_str(&sub, "body", RPC_REQUIRED, &c->body) == -1 ||
			    rpc_get_bool(&sub, "resolved", RPC_OPTIONAL, &c->resolved) == -1 ||
			    rpc_params_end(&sub) == -1 ||
			    nonempty(&sub, "comment_id", c->id) == -1)
				return -1;
			if (comments->via.array.ptr[i].type != MSGPACK_OBJECT_MAP)
				return rpc_error_set(p->err, RPC_BAD_REQUEST,
				    "%s must be a map", path);
		}
	}
	return 0;
}

/* 0 when sql (one ?1 parameter) finds a row for key; else not_found naming what. */
static int
row_exists(struct store *st, const char *sql, const char *key, const char *what,
    struct rpc_error *err)
{
	sqlite3_stmt *s = store_stmt(st, sql);
	int rc;

	bind_str(s, 1, key);
	rc = sqlite3_step(s);
	sqlite3_reset(s);
	if (rc == SQLITE_ROW)
		return 0;
	if (rc == SQLITE_DONE)
		return rpc_error_set(err, RPC_NOT_FOUND, "no %s '%s'", what, key);
	return store_sqlerr(st, rc, err);
}

static int
session_exists(struct store *st, const char *id, struct rpc_error *err)
{
	static const char sql[] = "SELECT 1 FROM sessions WHERE id = ?1";

	return row_exists(st, sql, id, "session", err);
}

/*
 * pr.write_observation: the PR, its checks and its comment set, atomically
 * (the caller's SAVEPOINT rolls all of it back on any failure).
 */
static int
pr_write_observation(struct store *st, struct rpc_params *p, msgpack_packer *out,
    struct rpc_error *err)
{
	static const char sql_owner[] = "SELECT session_id FROM pr WHERE url = ?1";
	static const char sql_pr[] =
	    "INSERT INTO pr (url, session_id, number, state, review_decision,"
	    " ci_state, mergeability, created_at, updated_at)"
	    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8)"
	    " ON CONFLICT (url) DO UPDATE SET number = excluded.number,"
	    " state = excluded.state, review_decision = excluded.review_decision,"
	    " ci_state = excluded.ci_state, mergeability = excluded.mergeability,"
	    " updated_at = excluded.updated_at";
	static const char sql_check[] =
	    "INSERT INTO pr_checks (pr_url, name, commit_hash, status, url, log_tail,"
	    " created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7)"
	    " ON CONFLICT (pr_url, name, commit_hash) DO UPDATE SET"
	    " status = excluded.status, url = excluded.url,"
	    " log_tail = excluded.log_tail, updated_at = excluded.updated_at";
	static const char sql_comment[] =
	    "INSERT INTO pr_comment (pr_url, comment_id, author, file, line, body,"
	    " resolved, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"
	    " ON CONFLICT (pr_url, comment_id) DO UPDATE SET author = excluded.author,"
	    " file = excluded.file, line = excluded.line, body = excluded.body,"
	    " resolved = excluded.resolved";
	static const char sql_prune[] =
	    "DELETE FROM pr_comment WHERE pr_url = ?1 AND comment_id NOT IN"
	    " (SELECT value FROM json_each(?2))";
	struct observation o;
	int64_t now = store_now(st);
	sqlite3_stmt *s;
	json_t *ids;
	char *idtext;
	size_t i;
	int rc;

	if (observation_parse(p, &o) == -1 ||
	    session_exists(st, o.session_id, err) == -1)
		return -1;
	s = store_stmt(st, sql_owner);
	bind_str(s, 1, o.url);
	if ((rc = sqlite3_step(s)) == SQLITE_ROW &&
	    strcmp((const char *)sqlite3_column_text(s, 0), o.session_id) != 0) {
		rpc_error_set(err, RPC_CONFLICT, "pr %s belongs to session %s", o.url,
		    (const char *)sqlite3_column_text(s, 0));
		sqlite3_reset(s);
		return -1;
	}
	sqlite3_reset(s);

	s = store_stmt(st, sql_pr);
	bind_str(s, 1, o.url);
	bind_str(s, 2, o.session_id);
	sqlite3_bind_int64(s, 3, o.number);
	bind_str(s, 4, pr_states[o.state]);
	bind_str(s, 5, review_decisions[o.review]);
	bind_str(s, 6, ci_states[o.ci]);
	bind_str(s, 7, mergeabilities[o.merge]);
	sqlite3_bind_int64(s, 8, now);
	if (step_done(st, s, err) == -1)
		return -1;

	for (i = 0; i < o.nchecks; i++) {
		s = store_stmt(st, sql_check);
		bind_str(s, 1, o.url);
		bind_str(s, 2, o.checks[i].name);
		bind_str(s, 3, o.checks[i].commit_hash);
		bind_str(s, 4, check_statuses[o.checks[i].status]);
		bind_str(s, 5, o.checks[i].url);
		bind_str(s, 6, o.checks[i].log_tail);
		sqlite3_bind_int64(s, 7, now);
		if (step_done(st, s, err) == -1)
			return -1;
	}

	if (o.comments != NULL) {
		ids = json_array();
		for (i = 0; i < o.ncomments; i++) {
			struct obs_comment *c = &o.comments[i];

			json_array_append_new(ids, json_string(c->id));
			s = store_stmt(st, sql_comment);
			bind_str(s, 1, o.url);
			bind_str(s, 2, c->id);
			bind_str(s, 3, c->author);
			bind_str(s, 4, c->file);
			bind_opt_i64(s, 5, c->has_line, c->line);
			bind_str(s, 6, c->body);
			sqlite3_bind_int(s, 7, c->resolved);
			sqlite3_bind_int64(s, 8, now);
			if (step_done(st, s, err) == -1) {
				json_decref(ids);
				return -1;
			}
		}
		idtext = json_dumps(ids, JSON_COMPACT);
		json_decref(ids);
		if (idtext == NULL)
			fatalx("out of memory");
		s = store_stmt(st, sql_prune);
		bind_str(s, 1, o.url);
		bind_str(s, 2, idtext);
		rc = step_done(st, s, err);
		free(idtext);
		if (rc == -1)
			return -1;
	}
	s = store_stmt(st, sql_pr_get);
	bind_str(s, 1, o.url);
	return pack_one(st, s, out, err, "pr", o.url);
}

static int
pr_list(struct store *st, struct rpc_params *p, msgpack_packer *out,
    struct rpc_error *err)
{
	static const char sql[] = "SELECT " PR_COLS " FROM pr WHERE session_id = ?1"
	    " ORDER BY created_at DESC, rowid DESC";
	const char *session;
	sqlite3_stmt *s;

	if (rpc_get_str(p, "session_id", RPC_REQUIRED, &session) == -1 ||
	    rpc_params_end(p) == -1 || session_exists(st, session, err) == -1)
		return -1;
	s = store_stmt(st, sql);
	bind_str(s, 1, session);
	return pack_rows(st, s, "prs", out, err);
}

static int
pr_get(struct store *st, struct rpc_params *p, msgpack_packer *out,
    struct rpc_error *err)
{
	const char *url;
	sqlite3_stmt *s;

	if (rpc_get_str(p, "url", RPC_REQUIRED, &url) == -1 || rpc_params_end(p) == -1)
		return -1;
	s = store_stmt(st, sql_pr_get);
	bind_str(s, 1, url);
	return pack_one(st, s, out, err, "pr", url);
}

static int
pr_exists(struct store *st, const char *url, struct rpc_error *err)
{
	static const char sql[] = "SELECT 1 FROM pr WHERE url = ?1";

	return row_exists(st, sql, url, "pr", err);
}

/* Newest runs first: the CI brake asks for the last N runs of one check. */
static int
pr_checks(struct store *st, struct rpc_params *p, msgpack_packer *out,
    struct rpc_error *err)
{
	static const char sql[] = "SELECT " CHECK_COLS " FROM pr_checks"
	    " WHERE pr_url = ?1 AND (?2 IS NULL OR name = ?2)"
	    " ORDER BY created_at DESC, rowid DESC LIMIT ?3";
	const char *url, *name = NULL;
	int64_t limit;
	sqlite3_stmt *s;

	if (rpc_get_str(p, "url", RPC_REQUIRED, &url) == -1 ||
	    rpc_get_str(p, "name", RPC_OPTIONAL, &name) == -1 ||
	    limit_param(p, &limit) == -1 || rpc_params_end(p) == -1 ||
	    pr_exists(st, url, err) == -1)
		return -1;
	s = store_stmt(st, sql);
	bind_str(s, 1, url);
	bind_str(s, 2, name);
	sqlite3_bind_int64(s, 3, limit);
	return pack_rows(st, s, "checks", out, err);
}

static int
pr_comments(struct store *st, struct rpc_params *p, msgpack_packer *out,
    struct rpc_error *err)
{
	static const char sql[] = "SELECT " COMMENT_COLS " FROM pr_comment"
	    " WHERE pr_url = ?1 ORDER BY created_at, rowid";
	const char *url;
	sqlite3_stmt *s;

	if (rpc_get_str(p, "url", RPC_REQUIRED, &url) == -1 ||
	    rpc_params_end(p) == -1 || pr_exists(st, url, err) == -1)
		return -1;
	s = store_stmt(st, sql);
	bind_str(s, 1, url);
	return pack_rows(st, s, "comments", out, err);
}

/* Reaction trackers: lcmd's durable budgets. */

static int
reaction_get(struct store *st, struct rpc_params *p, msgpack_packer *out,
    struct rpc_error *err)
{
	static const char sql[] = "SELECT " TRACKER_COLS " FROM reaction_trackers"
	    " WHERE session_id = ?1 AND (?2 IS NULL OR reaction = ?2)"
	    " ORDER BY reaction";
	const char *session, *reaction = NULL;
	sqlite3_stmt *s;

	if (rpc_get_str(p, "session_id", RPC_REQUIRED, &session) == -1 ||
	    rpc_get_str(p, "reaction", RPC_OPTIONAL, &reaction) == -1 ||
	    rpc_params_end(p) == -1 || session_exists(st, session, err) == -1)
		return -1;
	s = store_stmt(st, sql);
	bind_str(s, 1, session);
	bind_str(s, 2, reaction);
	return pack_rows(st, s, "trackers", out, err);
}

struct tracker {
	const char *reaction, *signature;
	int64_t attempts, first_at, last_at;
	int has_first, has_last;
	bool escalated;
};

/* Parses a tracker map (path names it in errors). */
static int
tracker_parse(struct rpc_params *p, struct tracker *t)
{
	memset(t, 0, sizeof(*t));
	if (rpc_get_str(p, "reaction", RPC_REQUIRED, &t->reaction) == -1 ||
	    rpc_get_i64(p, "attempts", RPC_REQUIRED, &t->attempts) == -1 ||
	    (t->has_first = rpc_get_i64(p, "first_at", RPC_OPTIONAL,
	    &t->first_at)) == -1 ||
	    (t->has_last = rpc_get_i64(p, "last_at", RPC_OPTIONAL, &t->last_at)) == -1 ||
	    rpc_get_str(p, "signature", RPC_OPTIONAL, &t->signature) == -1 ||
	    rpc_get_bool(p, "escalated", RPC_OPTIONAL, &t->escalated) == -1 ||
	    nonempty(p, "reaction", t->reaction) == -1)
		return -1;
	if (t->attempts < 0)
		return rpc_error_set(p->err, RPC_BAD_REQUEST, "attempts must be >= 0");
	return 0;
}

/* Upserts a tracker; packs it into out when out is not NULL. */
static int
tracker_put(struct store *st, const char *session, const struct tracker *t,
    msgpack_packer *out, struct rpc_error *err)
{
	static const char sql[] =
	    "INSERT INTO reaction_trackers (session_id, reaction, attempts, first_at,"
	    " last_at, signature, escalated) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"
	    " ON CONFLICT (session_id, reaction) DO UPDATE SET"
	    " attempts = excluded.attempts, first_at = excluded.first_at,"
	    " last_at = excluded.last_at, signature = excluded.signature,"
	    " escalated = excluded.escalated"
	    " RETURNING " TRACKER_COLS;
	sqlite3_stmt *s = store_stmt(st, sql);
	int rc;

	bind_str(s, 1, session);
	bind_str(s, 2, t->reaction);
	sqlite3_bind_int64(s, 3, t->attempts);
	bind_opt_i64(s, 4, t->has_first, t->first_at);
	bind_opt_i64(s, 5, t->has_last, t->last_at);
	bind_str(s, 6, t->signature);
	sqlite3_bind_int(s, 7, t->escalated);
	if (out != NULL)
		return pack_one(st, s, out, err, "tracker", t->reaction);
	rc = sqlite3_step(s);
	sqlite3_reset(s);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : store_sqlerr(st, rc, err);
}

static int
reaction_put(struct store *st, struct rpc_params *p, msgpack_packer *out,
    struct rpc_error *err)
{
	const char *session;
	struct tracker t;

	if (rpc_get_str(p, "session_id", RPC_REQUIRED, &session) == -1 ||
	    tracker_parse(p, &t) == -1 || rpc_params_end(p) == -1 ||
	    session_exists(st, session, err) == -1)
		return -1;
	return tracker_put(st, session, &t, out, err);
}

static int
reaction_clear(struct store *st, struct rpc_params *p, msgpack_packer *out,
    struct rpc_error *err)
{
	static const char sql[] = "DELETE FROM reaction_trackers"
	    " WHERE session_id = ?1 AND (?2 IS NULL OR reaction = ?2)";
	const char *session, *reaction = NULL;
	sqlite3_stmt *s;

	if (rpc_get_str(p, "session_id", RPC_REQUIRED, &session) == -1 ||
	    rpc_get_str(p, "reaction", RPC_OPTIONAL, &reaction) == -1 ||
	    rpc_params_end(p) == -1 || session_exists(st, session, err) == -1)
		return -1;
	s = store_stmt(st, sql);
	bind_str(s, 1, session);
	bind_str(s, 2, reaction);
	if (step_done(st, s, err) == -1)
		return -1;
	msgpack_pack_map(out, 1);
	rpc_pack_kv_i64(out, "cleared", sqlite3_changes(st->db));
	return 0;
}

/* Notifications. */

/* Inserts a notification and packs it; project defaults to the session's. */
static int
notification_insert(struct store *st, const char *project, const char *session,
    int priority, const char *reaction, const char *message, msgpack_packer *out,
    struct rpc_error *err)
{
	static const char sql_project[] = "SELECT project_id FROM sessions WHERE id = ?1";
	static const char sql[] =
	    "INSERT INTO notifications (project_id, session_id, priority, reaction,"
	    " message, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)"
	    " RETURNING " NOTIFICATION_COLS;
	char project_buf[128];
	sqlite3_stmt *s;
	int rc;

	if (session != NULL && project == NULL) {
		s = store_stmt(st, sql_project);
		bind_str(s, 1, session);
		rc = sqlite3_step(s);
		if (rc == SQLITE_ROW) {
			snprintf(project_buf, sizeof(project_buf), "%s",
			    (const char *)sqlite3_column_text(s, 0));
			project = project_buf;
		}
		sqlite3_reset(s);
		if (rc == SQLITE_DONE)
			return rpc_error_set(err, RPC_NOT_FOUND, "no session '%s'",
			    session);
	}
	s = store_stmt(st, sql);
	bind_str(s, 1, project);
	bind_str(s, 2, session);
	bind_str(s, 3, priorities[priority]);
	bind_str(s, 4, reaction);
	bind_str(s, 5, message);
	sqlite3_bind_int64(s, 6, store_now(st));
	return pack_one(st, s, out, err, "notification", "");
}

static int
notification_add(struct store *st, struct rpc_params *p, msgpack_packer *out,
    struct rpc_error *err)
{
	const char *project = NULL, *session = NULL, *reaction = NULL, *message;
	int priority;

	if (rpc_get_str(p, "project_id", RPC_OPTIONAL, &project) == -1 ||
	    rpc_get_str(p, "session_id", RPC_OPTIONAL, &session) == -1 ||
	    rpc_get_enum(p, "priority", RPC_REQUIRED, priorities, &priority) == -1 ||
	    rpc_get_str(p, "reaction", RPC_OPTIONAL, &reaction) == -1 ||
	    rpc_get_str(p, "message", RPC_REQUIRED, &message) == -1 ||
	    rpc_params_end(p) == -1 || nonempty(p, "message", message) == -1)
		return -1;
	return notification_insert(st, project, session, priority, reaction, message,
	    out, err);
}

/*
 * session.apply: one lifecycle step of lcmd, in one transaction — the
 * session's new fields, its reaction budgets and the notifications it
 * raised.  Either all of it is stored or none, so a restart of lcmd at any
 * point never leaves a budget spent without its state, or a page recorded
 * twice.
 *
 *   {id, update?: {fields},
 *    trackers?: [{reaction, attempts, first_at?, last_at?, signature?,
 *                 escalated?} | {reaction, clear: true}  ("*": all)],
 *    notifications?: [{priority, reaction?, message}]}
 *   → {session, notifications: [...]}
 */
static int
session_apply(struct store *st, struct rpc_params *p, msgpack_packer *out,
    struct rpc_error *err)
{
	static const char sql_clear_all[] =
	    "DELETE FROM reaction_trackers WHERE session_id = ?1";
	static const char sql_clear_one[] =
	    "DELETE FROM reaction_trackers WHERE session_id = ?1 AND reaction = ?2";
	const msgpack_object *update = NULL, *trackers = NULL, *notes = NULL;
	sqlite3_stmt *upd;
	struct rpc_params sub;
	struct rpc_buf nbuf;
	const char *id;
	char path[40];
	sqlite3_stmt *s;
	uint32_t i;

	if (rpc_get_str(p, "id", RPC_REQUIRED, &id) == -1 ||
	    rpc_get_map(p, "update", RPC_OPTIONAL, &update) == -1 ||
	    rpc_get_array(p, "trackers", RPC_OPTIONAL, &trackers) == -1 ||
	    rpc_get_array(p, "notifications", RPC_OPTIONAL, &notes) == -1 ||
	    rpc_params_end(p) == -1)
		return -1;
	if (session_exists(st, id, err) == -1)
		return -1;
	if (update != NULL && (bind_update(st, &update->via.map, NULL, p->zone, false,
	    &upd, err) == -1 || exec_update(st, upd, id, NULL, err) == -1))
		return -1;
	for (i = 0; trackers != NULL && i < trackers->via.array.size; i++) {
		const msgpack_object *o = &trackers->via.array.ptr[i];
		struct tracker t;
		bool clear_it = false;

		snprintf(path, sizeof(path), "trackers[%u]", i);
		if (o->type != MSGPACK_OBJECT_MAP)
			return rpc_error_set(err, RPC_BAD_REQUEST, "%s must be a map",
			    path);
		/* {reaction, clear: true} deletes; "*" clears them all. */
		if (rpc_params_init(&sub, o, p->zone, path, err) == -1 ||
		    rpc_get_bool(&sub, "clear", RPC_OPTIONAL, &clear_it) == -1)
			return -1;
		if (clear_it) {
			const char *reaction;

			if (rpc_get_str(&sub, "reaction", RPC_REQUIRED, &reaction) == -1 ||
			    rpc_params_end(&sub) == -1)
				return -1;
			if (strcmp(reaction, "*") == 0) {
				s = store_stmt(st, sql_clear_all);
				bind_str(s, 1, id);
			} else {
				s = store_stmt(st, sql_clear_one);
				bind_str(s, 1, id);
				bind_str(s, 2, reaction);
			}
			if (step_done(st, s, err) == -1)
				return -1;
			continue;
		}
		if (tracker_parse(&sub, &t) == -1 || rpc_params_end(&sub) == -1 ||
		    tracker_put(st, id, &t, NULL, err) == -1)
			return -1;
	}
	rpc_buf_init(&nbuf);
	for (i = 0; notes != NULL && i < notes->via.array.size; i++) {
		const char *reaction = NULL, *message;
		int priority;

		snprintf(path, sizeof(path), "notifications[%u]", i);
		if (rpc_params_init(&sub, &notes->via.array.ptr[i], p->zone, path,
		    err) == -1 ||
		    rpc_get_enum(&sub, "priority", RPC_REQUIRED, priorities,
		    &priority) == -1 ||
		    rpc_get_str(&sub, "reaction", RPC_OPTIONAL, &reaction) == -1 ||
		    rpc_get_str(&sub, "message", RPC_REQUIRED, &message) == -1 ||
		    rpc_params_end(&sub) == -1 ||
		    nonempty(&sub, path, message) == -1 ||
		    notification_insert(st, NULL, id, priority, reaction, message,
		    &nbuf.pk, err) == -1) {
			rpc_buf_free(&nbuf);
			return -1;
		}
		if (notes->via.array.ptr[i].type != MSGPACK_OBJECT_MAP) {
			rpc_buf_free(&nbuf);
			return rpc_error_set(err, RPC_BAD_REQUEST, "%s must be a map",
			    path);
		}
	}
	msgpack_pack_map(out, 2);
	rpc_pack_str(out, "session");
	if (session_pack(st, id, out, err) == -1) {
		rpc_buf_free(&nbuf);
		return -1;
	}
	rpc_pack_str(out, "notifications");
	msgpack_pack_array(out, notes != NULL ? notes->via.array.size : 0);
	msgpack_pack_str_body(out, nbuf.sb.data, nbuf.sb.size);
	rpc_buf_free(&nbuf);
	return 0;
}

static int
notification_list(struct store *st, struct rpc_params *p, msgpack_packer *out,
    struct rpc_error *err)
{
	static const char sql[] = "SELECT " NOTIFICATION_COLS " FROM notifications"
	    " WHERE (?1 IS NULL OR session_id = ?1) AND (?2 IS NULL OR project_id = ?2)"
	    " ORDER BY id DESC LIMIT ?3";
	const char *session = NULL, *project = NULL;
	int64_t limit;
	sqlite3_stmt *s;

	if (rpc_get_str(p, "session_id", RPC_OPTIONAL, &session) == -1 ||
	    rpc_get_str(p, "project_id", RPC_OPTIONAL, &project) == -1 ||
	    limit_param(p, &limit) == -1 || rpc_params_end(p) == -1)
		return -1;
	s = store_stmt(st, sql);
	bind_str(s, 1, session);
	bind_str(s, 2, project);
	sqlite3_bind_int64(s, 3, limit);
	return pack_rows(st, s, "notifications", out, err);
}

/* The change log and its consumers. */

/* Packs one change_log row with its JSON payload turned into a msgpack map. */
static void
pack_event(msgpack_packer *pk, sqlite3_stmt *s)
{
	msgpack_pack_map(pk, 6);
	rpc_pack_kv_i64(pk, "seq", sqlite3_column_int64(s, 0));
	rpc_pack_str(pk, "project_id");
	sqlrow_pack_value(pk, s, 1, SQLROW_PLAIN);
	rpc_pack_str(pk, "session_id");
	sqlrow_pack_value(pk, s, 2, SQLROW_PLAIN);
	rpc_pack_str(pk, "type");
	sqlrow_pack_value(pk, s, 3, SQLROW_PLAIN);
	rpc_pack_str(pk, "payload");
	sqlrow_pack_value(pk, s, 4, SQLROW_JSON);
	rpc_pack_kv_i64(pk, "at", sqlite3_column_int64(s, 5));
}

static int
changelog_read(struct store *st, struct rpc_params *p, msgpack_packer *out,
    struct rpc_error *err)
{
	static const char sql[] = "SELECT seq, project_id, session_id, type,"
	    " payload, at FROM change_log WHERE seq > ?1"
	    " AND (?2 IS NULL OR project_id = ?2) ORDER BY seq LIMIT ?3";
	const char *project = NULL;
	int64_t after, limit, head;
	struct rpc_buf events;
	uint32_t n = 0;
	sqlite3_stmt *s;
	int rc;

	if (rpc_get_i64(p, "after", RPC_REQUIRED, &after) == -1 ||
	    rpc_get_str(p, "project_id", RPC_OPTIONAL, &project) == -1 ||
	    limit_param(p, &limit) == -1 || rpc_params_end(p) == -1)
		return -1;
	/* Read the head first: every returned event is at or below it. */
	head = store_head(st);
	s = store_stmt(st, sql);
	sqlite3_bind_int64(s, 1, after);
	bind_str(s, 2, project);
	sqlite3_bind_int64(s, 3, limit);
	rpc_buf_init(&events);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		pack_event(&events.pk, s);
		n++;
	}
	sqlite3_reset(s);
	if (rc != SQLITE_DONE) {
		rpc_buf_free(&events);
		return store_sqlerr(st, rc, err);
	}
	msgpack_pack_map(out, 2);
	rpc_pack_str(out, "events");
	msgpack_pack_array(out, n);
	msgpack_pack_str_body(out, events.sb.data, events.sb.size);
	rpc_pack_kv_i64(out, "head", head);
	rpc_buf_free(&events);
	return 0;
}

static int
changelog_head(struct store *st, struct rpc_params *p, msgpack_packer *out,
    struct rpc_error *err)
{
	(void)err;
	if (rpc_params_end(p) == -1)
		return -1;
	msgpack_pack_map(out, 2);
	rpc_pack_kv_i64(out, "head", store_head(st));
	rpc_pack_kv_i64(out, "oldest", store_oldest(st));
	return 0;
}

static int
consumer_get(struct store *st, struct rpc_params *p, msgpack_packer *out,
    struct rpc_error *err)
{
	static const char sql[] = "SELECT name, seq, updated_at FROM consumer_offsets"
	    " WHERE name = ?1";
	const char *name;
	sqlite3_stmt *s;

	if (rpc_get_str(p, "name", RPC_REQUIRED, &name) == -1 ||
	    rpc_params_end(p) == -1)
		return -1;
	s = store_stmt(st, sql);
	bind_str(s, 1, name);
	return pack_one(st, s, out, err, "consumer", name);
}

/* Offsets only move forward: a late or repeated commit of an older seq is a no-op. */
static int
consumer_commit(struct store *st, struct rpc_params *p, msgpack_packer *out,
    struct rpc_error *err)
{
	static const char sql[] =
	    "INSERT INTO consumer_offsets (name, seq, updated_at) VALUES (?1, ?2, ?3)"
	    " ON CONFLICT (name) DO UPDATE SET seq = MAX(seq, excluded.seq),"
	    " updated_at = excluded.updated_at RETURNING name, seq, updated_at";
	const char *name;
	int64_t seq, head;
	sqlite3_stmt *s;

	if (rpc_get_str(p, "name", RPC_REQUIRED, &name) == -1 ||
	    rpc_get_i64(p, "seq", RPC_REQUIRED, &seq) == -1 ||
	    rpc_params_end(p) == -1 || nonempty(p, "name", name) == -1)
		return -1;
	head = store_head(st);
	if (seq < 0 || seq > head)
		return rpc_error_set(err, RPC_BAD_REQUEST, "seq must be 0..%lld "
		    "(the head)", (long long)head);
	s = store_stmt(st, sql);
	bind_str(s, 1, name);
	sqlite3_bind_int64(s, 2, seq);
	sqlite3_bind_int64(s, 3, store_now(st));
	return pack_one(st, s, out, err, "consumer", name);
}

static const struct api_method api_methods[] = {
	{ "project.upsert", true, project_upsert, true },
	{ "project.get", false, project_get, false },
	{ "project.list", false, project_list, false },
	{ "project.archive", true, project_archive, true },
	{ "project.delete", true, project_delete, true },
	{ "session.create", true, session_create, true },
	{ "session.get", false, session_get, false },
	{ "session.list", false, session_list, false },
	{ "session.count", false, session_count, false },
	{ "session.update", true, session_update, true },
	{ "session.apply", true, session_apply, false },
	{ "pr.write_observation", true, pr_write_observation, false },
	{ "pr.list", false, pr_list, false },
	{ "pr.get", false, pr_get, false },
	{ "pr.checks", false, pr_checks, false },
	{ "pr.comments", false, pr_comments, false },
	{ "reaction.get", false, reaction_get, false },
	{ "reaction.put", true, reaction_put, true },
	{ "reaction.clear", true, reaction_clear, true },
	{ "notification.add", true, notification_add, true },
	{ "notification.list", false, notification_list, false },
	{ "changelog.read", false, changelog_read, false },
	{ "changelog.head", false, changelog_head, false },
	{ "consumer.get", false, consumer_get, false },
	{ "consumer.commit", true, consumer_commit, true },
	{ NULL, false, NULL, false },
};

const struct api_method *
api_find(const char *name)
{
	const struct api_method *m;

	for (m = api_methods; m->name != NULL; m++)
		if (strcmp(m->name, name) == 0)
			return m;
	return NULL;
}

const struct api_method *
api_method_at(int i)
{
	if (i < 0 || i >= (int)(sizeof(api_methods) / sizeof(api_methods[0])) - 1)
		return NULL;
	return &api_methods[i];
}

static const char sql_savepoint[] = "SAVEPOINT api";
static const char sql_rollback_to[] = "ROLLBACK TO api";
static const char sql_release[] = "RELEASE api";

int
api_call(struct store *st, const struct api_method *m, const msgpack_object *params,
    msgpack_zone *zone, struct rpc_buf *out, struct rpc_error *err)
{
	struct rpc_params p;
	bool savepoint;
	int r;

	rpc_error_clear(err);
	if (rpc_params_init(&p, params, zone, NULL, err) == -1)
		return -1;
	savepoint = m->write && !m->one_statement;
	if (savepoint && store_step_sql(st, sql_savepoint, err) == -1)
		return -1;
	r = m->fn(st, &p, &out->pk, err);
	if (r == -1 && err->code == RPC_OK)
		rpc_error_set(err, RPC_INTERNAL, "%s failed", m->name);
	if (savepoint) {
		struct rpc_error e2;

		if (r == -1)
			store_step_sql(st, sql_rollback_to, &e2);
		if (store_step_sql(st, sql_release, r == -1 ? &e2 : err) == -1)
			r = -1;
	}
	if (r == -1)
		rpc_buf_reset(out);
	return r;
}
