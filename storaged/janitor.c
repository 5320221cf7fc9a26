/*
 * change_log retention.  A row goes when it is older than retention_ms or
 * beyond the newest retention_rows — unless a durable consumer that was
 * active within retention_ms has not read it yet.  Deletion is chunked, each
 * chunk its own short transaction, so the write lock is never held long.
 */
#include "storaged/storaged.h"

int
janitor_chunk(struct store *st, const struct storaged_config *cfg,
    struct rpc_error *err)
{
	static const char sql[] =
	    "DELETE FROM change_log WHERE seq IN (SELECT seq FROM change_log"
	    " WHERE (at < ?1 OR seq <= ?2)"
	    " AND seq <= COALESCE((SELECT MIN(seq) FROM consumer_offsets"
	    "   WHERE updated_at >= ?1), ?3)"
	    " ORDER BY seq LIMIT ?4)";
	int64_t now = store_now(st), head;
	sqlite3_stmt *s;
	int rc, n;

	if (store_exec(st, "BEGIN IMMEDIATE", err) == -1)
		return -1;
	head = store_head(st);
	s = store_stmt(st, sql);
	sqlite3_bind_int64(s, 1, now - cfg->retention_ms);
	sqlite3_bind_int64(s, 2, head - cfg->retention_rows);
	sqlite3_bind_int64(s, 3, head);
	sqlite3_bind_int(s, 4, JANITOR_CHUNK);
	rc = sqlite3_step(s);
	sqlite3_reset(s);
	if (rc != SQLITE_DONE) {
		store_sqlerr(st, rc, err);
		store_exec(st, "ROLLBACK", NULL);
		return -1;
	}
	n = sqlite3_changes(st->db);
	if (store_exec(st, "COMMIT", err) == -1) {
		store_exec(st, "ROLLBACK", NULL);
		return -1;
	}
	return n;
}
