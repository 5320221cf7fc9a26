/* ao-storaged: the sole writer of ao.db (DESIGN.md §4).  Private header. */
#ifndef AO_STORAGED_H
#define AO_STORAGED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sqlite3.h>

#include "proto/rpc.h"

struct storaged_config {
	int64_t retention_ms;		/* change_log age limit */
	int64_t retention_rows;		/* change_log row limit */
	int64_t max_message_bytes;	/* largest msgpack-rpc message */
	int64_t message_timeout_ms;	/* an unfinished message's deadline */
	int64_t max_unfinished_bytes;	/* cap over all connections (0: auto) */
	int64_t janitor_interval_ms;	/* how often retention runs */
	int64_t checkpoint_interval_ms;	/* WAL checkpoints, off the commit path */
};

/* schema.c: the embedded migrations. */
int schema_version(void);
/*
 * Applies every pending migration in one transaction.  Returns 0, or -1 with
 * err; *too_new is set when the database is newer than this binary.
 */
int schema_migrate(sqlite3 *, int *too_new, char *err, size_t errlen);

/* store.c: the database handle, cached statements, transactions, errors. */
#define STORE_MAX_STMTS 96
#define STORE_MAX_DYN 64
#define STORE_COLS_SLOTS 64

/*
 * What packing a statement's rows needs once per statement, not per row:
 * each result column's map key, packed, and the caller's kind for it.
 */
struct store_cols {
	sqlite3_stmt *stmt;
	int n;
	int *kind;
	size_t *off, *len;	/* column i's packed key: keys[off[i]], len[i] bytes */
	char *keys;
};

struct store {
	sqlite3 *db;
	struct {
		const char *sql;	/* identity: the literal's address */
		sqlite3_stmt *st;
	} stmts[STORE_MAX_STMTS];
	int nstmts;
	struct {
		uint64_t key;	/* identity: the caller's name for the SQL */
		sqlite3_stmt *st;
	} dyn[STORE_MAX_DYN];
	int ndyn;
	struct store_cols *cols[STORE_COLS_SLOTS];	/* by statement address */
	int64_t fixed_now;	/* tests: a fixed clock when > 0 */
};

/*
 * Opens (creating) the database at path with WAL, synchronous=NORMAL,
 * foreign_keys=ON, busy_timeout=5000, and migrates it.  Returns 0, or -1
 * with err; *perm says the failure is permanent (schema too new).
 */
int store_open(struct store *, const char *path, int *perm, char *err, size_t errlen);
void store_close(struct store *);
int64_t store_now(const struct store *);
/* A reset prepared statement for a static SQL literal (prepared once). */
sqlite3_stmt *store_stmt(struct store *, const char *sql);
/*
 * SQL built at run time, cached under a key that says what it is (e.g. a
 * bit per column set): store_stmt_key returns the statement reset, or NULL
 * when none is cached; store_stmt_add prepares sql and caches it under key,
 * dropping the oldest when full.
 */
sqlite3_stmt *store_stmt_key(struct store *, uint64_t key);
sqlite3_stmt *store_stmt_add(struct store *, uint64_t key, const char *sql);
/*
 * The columns of a statement from the caches above, built on first use
 * with kind(name) for each; forgotten when the statement is finalized.
 */
const struct store_cols *store_cols(struct store *, sqlite3_stmt *,
    int (*kind)(const char *name));
/* Steps a cached statement-free command such as "SAVEPOINT api" once. */
int store_step_sql(struct store *, const char *sql, struct rpc_error *);
/* Maps the last SQLite failure (rc) to an rpc error; returns -1. */
int store_sqlerr(struct store *, int rc, struct rpc_error *);
/* Runs one statement-free SQL command such as "BEGIN IMMEDIATE". */
int store_exec(struct store *, const char *sql, struct rpc_error *);
/* The last assigned change_log seq (0 when none ever was). */
int64_t store_head(struct store *);
/* The oldest retained change_log seq, or head + 1 when the log is empty. */
int64_t store_oldest(struct store *);

/* api.c: the storaged.sock methods over a store. */
struct api_method {
	const char *name;
	bool write;	/* runs inside the group-commit transaction */
	/* Parses p (ending with rpc_params_end), acts, packs one result object. */
	int (*fn)(struct store *, struct rpc_params *p, msgpack_packer *out,
	    struct rpc_error *err);
	/*
	 * A write of at most one writing statement (its triggers included):
	 * SQLite undoes a failed statement by itself, so no SAVEPOINT is needed.
	 */
	bool one_statement;
};

const struct api_method *api_find(const char *name);
/* The i-th method of the table, or NULL past the end. */
const struct api_method *api_method_at(int i);
/*
 * Runs one method.  A write runs inside a SAVEPOINT of the caller's open
 * transaction and is rolled back alone on failure.  On success the result
 * is in out; on failure out is empty and err is set.
 */
int api_call(struct store *, const struct api_method *, const msgpack_object *params,
    msgpack_zone *zone, struct rpc_buf *out, struct rpc_error *err);

/* checkpoint.c: WAL checkpoints in a thread of their own. */
struct checkpoint;
struct checkpoint *checkpoint_start(const char *path, int64_t interval_ms,
    char *err, size_t errlen);
void checkpoint_stop(struct checkpoint *);

/* janitor.c: change_log retention. */
#define JANITOR_CHUNK 1000
/*
 * Deletes at most JANITOR_CHUNK change_log rows that are past the age or row
 * limit and not beyond the lowest offset of a consumer active within the age
 * limit, in its own transaction.  Returns the number deleted, or -1.
 */
int janitor_chunk(struct store *, const struct storaged_config *, struct rpc_error *);

#endif
