/*
 * Read-only access to ao.db.  cdcd never writes the file: the connection is
 * opened read-only with query_only set, and every read is a short implicit
 * transaction so WAL checkpoints are never starved.
 */
#include <stdio.h>
#include <string.h>

#include "cdcd/cdcd.h"
#include "proto/jsonmp.h"
#include "proto/sqlrow.h"

static int
prep(struct reader *r, const char *sql, sqlite3_stmt **st, char *err, size_t errlen)
{
	if (sqlite3_prepare_v3(r->db, sql, -1, SQLITE_PREPARE_PERSISTENT, st,
	    NULL) == SQLITE_OK)
		return 0;
	snprintf(err, errlen, "preparing \"%s\": %s", sql, sqlite3_errmsg(r->db));
	return -1;
}

int
reader_open(struct reader *r, const char *path, char *err, size_t errlen)
{
	memset(r, 0, sizeof(*r));
	if (sqlite3_open_v2(path, &r->db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX,
	    NULL) != SQLITE_OK) {
		snprintf(err, errlen, "opening %s read-only: %s", path,
		    r->db != NULL ? sqlite3_errmsg(r->db) : "out of memory");
		goto fail;
	}
	sqlite3_busy_timeout(r->db, 5000);
	if (sqlite3_exec(r->db, "PRAGMA query_only = 1", NULL, NULL, NULL) != SQLITE_OK) {
		snprintf(err, errlen, "%s: %s", path, sqlite3_errmsg(r->db));
		goto fail;
	}
	/* The schema must exist: storaged creates it before it is ready. */
	if (prep(r, "SELECT seq, project_id, session_id, type, payload, at"
	    " FROM change_log WHERE seq > ?1 ORDER BY seq LIMIT ?2",
	    &r->events, err, errlen) == -1 ||
	    prep(r, "SELECT seq FROM sqlite_sequence WHERE name = 'change_log'",
	    &r->head, err, errlen) == -1 ||
	    prep(r, "SELECT MIN(seq) FROM change_log", &r->oldest, err, errlen) == -1 ||
	    prep(r, "PRAGMA data_version", &r->version, err, errlen) == -1 ||
	    prep(r, "SELECT seq FROM consumer_offsets WHERE name = ?1",
	    &r->consumer, err, errlen) == -1)
		goto fail;
	return 0;
fail:
	reader_close(r);
	return -1;
}

void
reader_close(struct reader *r)
{
	sqlite3_finalize(r->events);
	sqlite3_finalize(r->head);
	sqlite3_finalize(r->oldest);
	sqlite3_finalize(r->version);
	sqlite3_finalize(r->consumer);
	if (r->db != NULL)
		sqlite3_close(r->db);
	memset(r, 0, sizeof(*r));
}

static int
one_int(sqlite3_stmt *s, int64_t *v, int64_t def)
{
	int rc = sqlite3_step(s);

	*v = def;
	if (rc == SQLITE_ROW && sqlite3_column_type(s, 0) != SQLITE_NULL)
		*v = sqlite3_column_int64(s, 0);
	sqlite3_reset(s);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : -1;
}

int
reader_data_version(struct reader *r, int64_t *v)
{
	return one_int(r->version, v, 0);
}

int
reader_bounds(struct reader *r, int64_t *head, int64_t *oldest)
{
	int rc;

	/* One transaction, so oldest and head describe the same moment. */
	if (sqlite3_exec(r->db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK)
		return -1;
	rc = one_int(r->head, head, 0);
	if (rc == 0)
		rc = one_int(r->oldest, oldest, -1);
	sqlite3_exec(r->db, "COMMIT", NULL, NULL, NULL);
	if (rc == 0 && *oldest == -1)
		*oldest = *head + 1;
	return rc;
}

int
reader_events(struct reader *r, int64_t after, int limit,
    int (*fn)(void *, const struct reader_event *), void *arg,
    char *err, size_t errlen)
{
	sqlite3_stmt *s = r->events;
	struct reader_event ev;
	int rc, n = 0;

	sqlite3_bind_int64(s, 1, after);
	sqlite3_bind_int(s, 2, limit);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		ev.seq = sqlite3_column_int64(s, 0);
		ev.project_id = (const char *)sqlite3_column_text(s, 1);
		ev.session_id = (const char *)sqlite3_column_text(s, 2);
		ev.type = (const char *)sqlite3_column_text(s, 3);
		ev.payload = (const char *)sqlite3_column_text(s, 4);
		ev.payload_len = (size_t)sqlite3_column_bytes(s, 4);
		ev.at = sqlite3_column_int64(s, 5);
		if (ev.type == NULL || ev.payload == NULL)
			continue;
		if (fn(arg, &ev) == -1) {
			rc = SQLITE_DONE;
			break;
		}
		n++;
	}
	sqlite3_reset(s);
	if (rc != SQLITE_DONE) {
		snprintf(err, errlen, "reading change_log: %s", sqlite3_errmsg(r->db));
		return -1;
	}
	return n;
}

int
reader_consumer(struct reader *r, const char *name, int64_t *seq)
{
	int rc;

	sqlite3_bind_text(r->consumer, 1, name, -1, SQLITE_STATIC);
	rc = sqlite3_step(r->consumer);
	if (rc == SQLITE_ROW)
		*seq = sqlite3_column_int64(r->consumer, 0);
	sqlite3_reset(r->consumer);
	sqlite3_clear_bindings(r->consumer);
	if (rc == SQLITE_ROW)
		return 1;
	return rc == SQLITE_DONE ? 0 : -1;
}

void
reader_encode_event(struct rpc_buf *b, const struct reader_event *ev)
{
	msgpack_packer *pk = &b->pk;

	rpc_pack_notify_head(pk, "event");
	msgpack_pack_array(pk, 1);
	msgpack_pack_map(pk, 6);
	rpc_pack_kv_i64(pk, "seq", ev->seq);
	rpc_pack_kv_str(pk, "project_id", ev->project_id);
	rpc_pack_kv_str(pk, "session_id", ev->session_id);
	rpc_pack_kv_str(pk, "type", ev->type);
	rpc_pack_str(pk, "payload");
	jsonmp_pack_text(pk, ev->payload, ev->payload_len);
	rpc_pack_kv_i64(pk, "at", ev->at);
}

int
reader_snapshot(struct reader *r, struct rpc_buf *out, int64_t *seq,
    char *err, size_t errlen)
{
	static const struct {
		const char *type, *sql;
	} parts[] = {
		{ "project", "SELECT id, path, origin_url, display_name, registered_at,"
		    " archived_at FROM projects ORDER BY registered_at, id" },
		{ "session", "SELECT id, project_id, num, issue_id, kind, harness,"
		    " runtime, state, termination_reason, is_alive, activity_state,"
		    " activity_at, activity_source, branch, workspace_path,"
		    " runtime_handle, prompt, created_at, updated_at, command"
		    " FROM sessions"
		    " ORDER BY created_at, id" },
		{ "pr", "SELECT url, session_id, number, state, review_decision,"
		    " ci_state, mergeability, created_at, updated_at FROM pr"
		    " ORDER BY created_at, url" },
	};
	sqlite3_stmt *s = NULL;
	size_t i;
	int rc = SQLITE_OK, n = 0;

	if (sqlite3_exec(r->db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK)
		goto fail;
	if (one_int(r->head, seq, 0) == -1)
		goto fail;
	for (i = 0; i < sizeof(parts) / sizeof(parts[0]); i++) {
		if (sqlite3_prepare_v2(r->db, parts[i].sql, -1, &s, NULL) != SQLITE_OK)
			goto fail;
		while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
			rpc_pack_notify_head(&out->pk, "snapshot");
			msgpack_pack_array(&out->pk, 1);
			msgpack_pack_map(&out->pk, 2);
			rpc_pack_kv_str(&out->pk, "type", parts[i].type);
			rpc_pack_str(&out->pk, "object");
			sqlrow_pack_row(&out->pk, s);
			n++;
		}
		sqlite3_finalize(s);
		s = NULL;
		if (rc != SQLITE_DONE)
			goto fail;
	}
	sqlite3_exec(r->db, "COMMIT", NULL, NULL, NULL);
	return n;
fail:
	snprintf(err, errlen, "snapshot: %s", sqlite3_errmsg(r->db));
	sqlite3_finalize(s);
	sqlite3_exec(r->db, "ROLLBACK", NULL, NULL, NULL);
	return -1;
}
