#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <msgpack.h>

#include "common/aotime.h"
#include "common/log.h"
#include "common/xmalloc.h"
#include "storaged/storaged.h"

int
store_sql(sqlite3 *db, const char *sql, char *err, size_t errlen)
{
	char *msg = NULL;

	if (sqlite3_exec(db, sql, NULL, NULL, &msg) == SQLITE_OK)
		return 0;
	snprintf(err, errlen, "%s: %s", sql, msg != NULL ? msg : sqlite3_errmsg(db));
	sqlite3_free(msg);
	return -1;
}

int
store_open(struct store *st, const char *path, int *perm, char *err, size_t errlen)
{
	int rc;

	memset(st, 0, sizeof(*st));
	*perm = 0;
	rc = sqlite3_open_v2(path, &st->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
	    SQLITE_OPEN_NOMUTEX, NULL);
	if (rc != SQLITE_OK) {
		snprintf(err, errlen, "opening %s: %s", path,
		    st->db != NULL ? sqlite3_errmsg(st->db) : sqlite3_errstr(rc));
		goto fail;
	}
	sqlite3_extended_result_codes(st->db, 1);
	sqlite3_busy_timeout(st->db, 5000);
	if (store_sql(st->db, "PRAGMA journal_mode=WAL", err, errlen) == -1 ||
	    store_sql(st->db, "PRAGMA synchronous=NORMAL", err, errlen) == -1 ||
	    store_sql(st->db, "PRAGMA foreign_keys=ON", err, errlen) == -1)
		goto fail;
	if (schema_migrate(st->db, perm, err, errlen) == -1)
		goto fail;
	return 0;
fail:
	sqlite3_close(st->db);
	st->db = NULL;
	return -1;
}

static size_t
cols_slot(const sqlite3_stmt *s)
{
	uintptr_t a = (uintptr_t)s;

	return (size_t)((a >> 4) ^ (a >> 12)) % STORE_COLS_SLOTS;
}

static void
cols_free(struct store_cols *c)
{
	if (c == NULL)
		return;
	free(c->kind);
	free(c->off);
	free(c->len);
	free(c->keys);
	free(c);
}

/* Forgets s's columns: it is being finalized, and its address may return. */
static void
cols_forget(struct store *st, const sqlite3_stmt *s)
{
	size_t i = cols_slot(s);

	if (st->cols[i] != NULL && st->cols[i]->stmt == s) {
		cols_free(st->cols[i]);
		st->cols[i] = NULL;
	}
}

static int
sbuf_write(void *data, const char *buf, size_t len)
{
	return msgpack_sbuffer_write(data, buf, len);
}

const struct store_cols *
store_cols(struct store *st, sqlite3_stmt *s, int (*kind)(const char *name))
{
	size_t slot = cols_slot(s);
	struct store_cols *c = st->cols[slot];
	msgpack_sbuffer sb;
	msgpack_packer pk;
	const char *name;
	int i;

	if (c != NULL && c->stmt == s)
		return c;
	cols_free(c);
	c = xcalloc(1, sizeof(*c));
	c->stmt = s;
	c->n = sqlite3_column_count(s);
	c->kind = xcalloc((size_t)c->n + 1, sizeof(*c->kind));
	c->off = xcalloc((size_t)c->n + 1, sizeof(*c->off));
	c->len = xcalloc((size_t)c->n + 1, sizeof(*c->len));
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, sbuf_write);
	for (i = 0; i < c->n; i++) {
		name = sqlite3_column_name(s, i);
		if (name == NULL)
			fatalx("sqlite3_column_name: out of memory");
		c->off[i] = sb.size;
		msgpack_pack_str(&pk, strlen(name));
		msgpack_pack_str_body(&pk, name, strlen(name));
		c->len[i] = sb.size - c->off[i];
		c->kind[i] = kind(name);
	}
	c->keys = sb.data != NULL ? sb.data : xcalloc(1, 1);
	st->cols[slot] = c;
	return c;
}

void
store_close(struct store *st)
{
	int i;

	for (i = 0; i < st->nstmts; i++)
		sqlite3_finalize(st->stmts[i].st);
	st->nstmts = 0;
	for (i = 0; i < STORE_COLS_SLOTS; i++) {
		cols_free(st->cols[i]);
		st->cols[i] = NULL;
	}
	for (i = 0; i < st->ndyn; i++)
		sqlite3_finalize(st->dyn[i].st);
	st->ndyn = 0;
	if (st->db != NULL)
		sqlite3_close(st->db);
	st->db = NULL;
}

int64_t
store_now(const struct store *st)
{
	return st->fixed_now > 0 ? st->fixed_now : aotime_wall_ms();
}

sqlite3_stmt *
store_stmt(struct store *st, const char *sql)
{
	sqlite3_stmt *s;
	int i;

	for (i = 0; i < st->nstmts; i++)
		if (st->stmts[i].sql == sql) {
			sqlite3_reset(st->stmts[i].st);
			sqlite3_clear_bindings(st->stmts[i].st);
			return st->stmts[i].st;
		}
	if (st->nstmts == STORE_MAX_STMTS)
		fatalx("statement cache full: raise STORE_MAX_STMTS");
	if (sqlite3_prepare_v3(st->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &s,
	    NULL) != SQLITE_OK)
		fatalx("preparing \"%s\": %s", sql, sqlite3_errmsg(st->db));
	st->stmts[st->nstmts].sql = sql;
	st->stmts[st->nstmts].st = s;
	st->nstmts++;
	return s;
}

sqlite3_stmt *
store_stmt_key(struct store *st, uint64_t key)
{
	int i;

	for (i = 0; i < st->ndyn; i++)
		if (st->dyn[i].key == key) {
			sqlite3_reset(st->dyn[i].st);
			sqlite3_clear_bindings(st->dyn[i].st);
			return st->dyn[i].st;
		}
	return NULL;
}

sqlite3_stmt *
store_stmt_add(struct store *st, uint64_t key, const char *sql)
{
	sqlite3_stmt *s;

	if (st->ndyn == STORE_MAX_DYN) {
		/* Full: drop the oldest (combinations are few in practice). */
		cols_forget(st, st->dyn[0].st);
		sqlite3_finalize(st->dyn[0].st);
		memmove(&st->dyn[0], &st->dyn[1], (STORE_MAX_DYN - 1) * sizeof(st->dyn[0]));
		st->ndyn--;
	}
	if (sqlite3_prepare_v3(st->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &s,
	    NULL) != SQLITE_OK)
		fatalx("preparing \"%s\": %s", sql, sqlite3_errmsg(st->db));
	st->dyn[st->ndyn].key = key;
	st->dyn[st->ndyn].st = s;
	st->ndyn++;
	return s;
}

int
store_step_sql(struct store *st, const char *sql, struct rpc_error *err)
{
	sqlite3_stmt *s = store_stmt(st, sql);
	int rc = sqlite3_step(s);

	sqlite3_reset(s);
	if (rc != SQLITE_DONE && rc != SQLITE_ROW)
		return store_sqlerr(st, rc, err);
	return 0;
}

int
store_sqlerr(struct store *st, int rc, struct rpc_error *err)
{
	const char *msg = sqlite3_errmsg(st->db);

	switch (rc) {
	case SQLITE_CONSTRAINT_UNIQUE:
	case SQLITE_CONSTRAINT_PRIMARYKEY:
		return rpc_error_set(err, RPC_CONFLICT, "already exists (%s)", msg);
	case SQLITE_CONSTRAINT_FOREIGNKEY:
		return rpc_error_set(err, RPC_NOT_FOUND, "a referenced row does not "
		    "exist (%s)", msg);
	case SQLITE_CONSTRAINT_CHECK:
	case SQLITE_CONSTRAINT_NOTNULL:
		return rpc_error_set(err, RPC_BAD_REQUEST, "%s", msg);
	}
	switch (rc & 0xff) {
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		return rpc_error_set(err, RPC_UNAVAILABLE, "database busy: %s", msg);
	case SQLITE_TOOBIG:
		return rpc_error_set(err, RPC_TOO_LARGE, "%s", msg);
	case SQLITE_FULL:
		/* Passes once space is freed: the WAL is then reused (checkpoint.c). */
		st->full = true;
		return rpc_error_set(err, RPC_UNAVAILABLE, "%s", msg);
	}
	return rpc_error_set(err, RPC_INTERNAL, "database error: %s", msg);
}

int
store_exec(struct store *st, const char *sql, struct rpc_error *err)
{
	int rc = sqlite3_exec(st->db, sql, NULL, NULL, NULL);

	if (rc != SQLITE_OK)
		return store_sqlerr(st, sqlite3_extended_errcode(st->db), err);
	return 0;
}

static int64_t
one_int(struct store *st, const char *sql, int64_t def)
{
	sqlite3_stmt *s = store_stmt(st, sql);
	int64_t v = def;

	if (sqlite3_step(s) == SQLITE_ROW && sqlite3_column_type(s, 0) != SQLITE_NULL)
		v = sqlite3_column_int64(s, 0);
	sqlite3_reset(s);
	return v;
}

int64_t
store_head(struct store *st)
{
	static const char sql[] =
	    "SELECT seq FROM sqlite_sequence WHERE name = 'change_log'";

	return one_int(st, sql, 0);
}

int64_t
store_oldest(struct store *st)
{
	static const char sql[] = "SELECT MIN(seq) FROM change_log";
	int64_t v = one_int(st, sql, -1);

	return v == -1 ? store_head(st) + 1 : v;
}
