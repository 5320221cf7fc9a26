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
	int64_t checkpoint_interval_ms;	/* at rest this long: truncate the WAL */
	int64_t checkpoint_pages;	/* WAL frames that wake a checkpoint */
	int64_t wal_limit_bytes;	/* past it the log is made to start over */
	int checkpoint_thread;		/* 0: SQLite's own, inside COMMIT */
	int64_t busy_timeout_ms;	/* a write's wait for another's lock */
};

/* schema.c: the embedded migrations. */
int schema_version(void);
/*
 * Applies every pending migration in one transaction.  Returns 0, or -1 with
 * err; *too_new is set when the database is newer than this binary.
 */
int schema_migrate(sqlite3 *, int *too_new, char *err, size_t errlen);
/*
 * sql with every "x IN ('a', 'b', 'c'…)" of three literals or more written
 * as "(x = 'a' OR x = 'b' OR …)" (migration 4); the rest, string literals
 * included, unchanged.  Returns a new string.
 */
char *schema_in_to_or(const char *sql);

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
	bool full;		/* a statement failed with SQLITE_FULL (the caller clears it) */
};

/*
 * Opens (creating) the database at path with WAL, synchronous=NORMAL,
 * foreign_keys=ON, busy_timeout=5000, and migrates it.  Returns 0, or -1
 * with err; *perm says the failure is permanent (schema too new).
 */
int store_open(struct store *, const char *path, int *perm, char *err, size_t errlen);
/* Runs SQL (a PRAGMA, say) on db: 0, or -1 with "SQL: reason" in err. */
int store_sql(sqlite3 *db, const char *sql, char *err, size_t errlen);
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

/*
 * checkpoint.c: WAL checkpoints in a thread of their own, woken by the
 * writer's WAL hook (the diagram is at the top of checkpoint.c).
 */
enum ckpt_mode {
	CKPT_NONE,
	CKPT_PASSIVE,
	CKPT_RESTART,
	CKPT_TRUNCATE,
};

/* What the choice of the next pass depends on; frame counts, ms. */
struct ckpt_state {
	int64_t frames;		/* in the WAL after the last commit */
	int64_t seen_frames;	/* at the start of the thread's last pass */
	int64_t wake_frames;	/* the thread's passes from here */
	int64_t limit_frames;	/* the writer's RESTART from here */
	int64_t last_commit_ms;	/* monotonic */
	int64_t interval_ms;	/* at rest this long: truncate */
	int64_t retry_at_ms;	/* after a failed or busy pass of the thread */
	bool wal_empty;		/* truncated, no commit since */
	bool disk_full;		/* a write failed for want of space */
	int64_t writer_mark;	/* frames at the writer's last RESTART */
	int64_t writer_at_ms;	/* after a failed one, not before this */
	uint64_t commits;	/* so far: did one land during a pass? */
};

/* The thread's next pass (PASSIVE, TRUNCATE) or CKPT_NONE.  Pure. */
enum ckpt_mode checkpoint_next(const struct ckpt_state *, int64_t now_ms);
/* With no commit, how long until checkpoint_next may say more (>= 1).  Pure. */
int64_t checkpoint_wait_ms(const struct ckpt_state *, int64_t now_ms);
/*
 * Records a pass of the thread, of mode m, that returned rc (SQLite's
 * primary code) and started with frames_at_start frames after
 * commits_at_start commits.  Pure.
 */
void checkpoint_done(struct ckpt_state *, enum ckpt_mode m, int rc,
    int64_t frames_at_start, uint64_t commits_at_start, int64_t now_ms);
/*
 * Whether the writer runs its RESTART now, in its loop: the WAL reached
 * the limit (free space lowers it; after a RESTART that a reader held
 * back, a quarter wake more), or a write failed for want of space.  Pure.
 */
bool checkpoint_writer_due(const struct ckpt_state *, int64_t now_ms);
/* Records the writer's RESTART, which returned rc.  Pure. */
void checkpoint_writer_done(struct ckpt_state *, int rc, int64_t now_ms);
/* Records a commit that left frames frames in the WAL.  Pure. */
void checkpoint_commit(struct ckpt_state *, int64_t frames, int64_t now_ms);
const char *checkpoint_mode_name(enum ckpt_mode);

struct checkpoint_stats {
	bool thread;		/* false: SQLite's automatic checkpoints */
	int64_t wal_bytes;	/* the -wal file's size now */
	int64_t frames;		/* frames after the last commit */
	int64_t peak_frames;	/* the most frames any commit left, since start */
	int64_t frame_bytes;	/* a frame's size: page size + 24 */
	int64_t limit_bytes;	/* the limit in force (free space lowers it) */
	uint64_t runs, restarts, in_writer, busy, failed;
	int64_t last_at;	/* wall ms of the last pass, 0 before any */
	enum ckpt_mode last_mode;
	int64_t last_us;	/* its duration */
	int last_rc;		/* its SQLite result */
	char last_error[128];	/* the last failure, "" when none */
};

struct checkpoint;
/*
 * Sets up checkpoints for the writer connection of the database at path:
 * journal_size_limit, then either the thread (its own connection, the WAL
 * hook on writer) or, when cfg->checkpoint_thread is 0, SQLite's automatic
 * checkpoint at checkpoint_pages.  Returns NULL with err on failure.
 */
struct checkpoint *checkpoint_start(sqlite3 *writer, const char *path,
    const struct storaged_config *cfg, char *err, size_t errlen);
/*
 * Call after each group commit (failed or not), once its answers are
 * sent: runs the writer's RESTART when checkpoint_writer_due says so.
 */
void checkpoint_after_commit(struct checkpoint *);
/* A write failed with SQLITE_FULL: the writer checkpoints at once. */
void checkpoint_disk_full(struct checkpoint *);
void checkpoint_get_stats(struct checkpoint *, struct checkpoint_stats *);
/* Stops the thread and truncates the WAL; NULL is a no-op. */
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
