/*
 * change_log retention.  The oldest rows go while they are older than
 * retention_ms or beyond the newest retention_rows — unless a durable
 * consumer that was active within retention_ms has not read them yet.
 * Deletion is chunked, each chunk its own short transaction, so the write
 * lock is never held long.
 */
#include "storaged/storaged.h"

int
janitor_chunk(struct store *st, const struct storaged_config *cfg,
    struct rpc_error *err)
{
	static const char oldest[] =
	    "SELECT seq, at FROM change_log ORDER BY seq LIMIT ?1";
	static const char held[] = "SELECT MIN(seq) FROM consumer_offsets"
	    " WHERE updated_at >= ?1";
	static const char del[] = "DELETE FROM change_log WHERE seq <= ?1";
	int64_t now = store_now(st), cutoff = now - cfg->retention_ms;
	int64_t head, by_rows, keep_from, last = -1;
	sqlite3_stmt *s;
	int rc, n = 0;

	if (store_exec(st, "BEGIN IMMEDIATE", err) == -1)
		return -1;
	head = store_head(st);
	by_rows = head - cfg->retention_rows;
	/* The lowest offset of a consumer active within the age limit. */
	s = store_stmt(st, held);
	sqlite3_bind_int64(s, 1, cutoff);
	rc = sqlite3_step(s);
	keep_from = rc == SQLITE_ROW && sqlite3_column_type(s, 0) != SQLITE_NULL ?
	    sqlite3_column_int64(s, 0) : head;
	sqlite3_reset(s);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		goto sqlfail;
	/*
	 * Only a prefix goes: the walk stops at the first row to keep, so an
	 * old `at` behind a young one (a re-added project's event carries its
	 * registration time) never leaves a hole that readers could not tell
	 * from the log's start.
	 */
	s = store_stmt(st, oldest);
	sqlite3_bind_int(s, 1, JANITOR_CHUNK);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		int64_t seq = sqlite3_column_int64(s, 0);

		if (seq > keep_from ||
		    (seq > by_rows && sqlite3_column_int64(s, 1) >= cutoff))
			break;
		last = seq;
	}
	sqlite3_reset(s);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		goto sqlfail;
	if (last >= 0) {
		s = store_stmt(st, del);
		sqlite3_bind_int64(s, 1, last);
		rc = sqlite3_step(s);
		sqlite3_reset(s);
		if (rc != SQLITE_DONE)
			goto sqlfail;
		n = sqlite3_changes(st->db);
	}
	if (store_exec(st, "COMMIT", err) == -1) {
		store_exec(st, "ROLLBACK", NULL);
		return -1;
	}
	return n;
sqlfail:
	store_sqlerr(st, rc, err);
	store_exec(st, "ROLLBACK", NULL);
	return -1;
}
