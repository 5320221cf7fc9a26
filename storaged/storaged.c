/*
 * ao-storaged: owns ao.db and serves storaged.sock.
 *
 * Reads are answered at once from the committed state.  Writes are group
 * committed: every write request that arrives in one event-loop turn runs in
 * one BEGIN IMMEDIATE … COMMIT, each inside its own SAVEPOINT (a failing
 * request rolls back alone), and all of them are answered only after COMMIT
 * returns.  A connection's reads that follow its own queued writes join the
 * batch behind them, so a client always reads its writes.  After a commit
 * that added change_log rows, watchers get `committed {head}`.
 */
#include <malloc.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <bsd/sys/queue.h>
#include <event2/event.h>

#include "common/aotime.h"
#include "common/daemon.h"
#include "common/log.h"
#include "common/memtrim.h"
#include "common/sendbatch.h"
#include "common/xmalloc.h"
#include "proto/server.h"
#include "storaged/storaged.h"

#define DAY_MS (24LL * 60 * 60 * 1000)

static const struct config_key storaged_keys[] = {
	{ "retention_ms", CONFIG_MS, "604800000",
	    offsetof(struct storaged_config, retention_ms), 1, 100 * 365 * DAY_MS,
	    "prune change_log events older than this" },
	{ "retention_rows", CONFIG_INT, "1000000",
	    offsetof(struct storaged_config, retention_rows), 1, INT64_MAX,
	    "keep at most this many change_log events" },
	{ "max_message_bytes", CONFIG_BYTES, "16MiB",
	    offsetof(struct storaged_config, max_message_bytes), 256,
	    1024LL * 1024 * 1024,
	    "largest request or response on storaged.sock" },
	SERVER_LIMIT_KEYS(struct storaged_config),
	{ "janitor_interval_ms", CONFIG_MS, "60000",
	    offsetof(struct storaged_config, janitor_interval_ms), 10, DAY_MS,
	    "how often change_log retention runs" },
	{ "checkpoint_interval_ms", CONFIG_MS, "1000",
	    offsetof(struct storaged_config, checkpoint_interval_ms), 10, 3600000,
	    "with no commit for this long the WAL is truncated (and a busy "
	    "checkpoint is retried after it)" },
	{ "checkpoint_pages", CONFIG_INT, "1000",
	    offsetof(struct storaged_config, checkpoint_pages), 1, 1000000,
	    "WAL frames after a commit that start a passive checkpoint (in a "
	    "thread, off the commit path)" },
	{ "wal_limit_bytes", CONFIG_BYTES, "4MiB",
	    offsetof(struct storaged_config, wal_limit_bytes), 64 * 1024,
	    1024LL * 1024 * 1024,
	    "past this the WAL is made to start over (writers wait briefly); "
	    "less when the disk is nearly full" },
	{ "checkpoint_thread", CONFIG_BOOL, "true",
	    offsetof(struct storaged_config, checkpoint_thread), 0, 1,
	    "checkpoint in a thread; false: SQLite's automatic checkpoint "
	    "inside COMMIT every checkpoint_pages" },
	{ "busy_timeout_ms", CONFIG_MS, "5000",
	    offsetof(struct storaged_config, busy_timeout_ms), 0, 3600000,
	    "how long a write waits for a lock another process holds on ao.db "
	    "before failing with unavailable (the loop keeps serving)" },
	CONFIG_KEY_END
};

/* Per-connection state. */
struct conn {
	unsigned queued;	/* requests of this connection in the batch */
	bool watcher;
};

/* A request waiting for the group commit. */
struct pending {
	struct peer_req *req;
	const struct api_method *m;
	struct rpc_buf out;
	struct rpc_error err;
	int rc;
	TAILQ_ENTRY(pending) entry;
};

/*
 * Answered pendings are kept for reuse, answer buffer included: a fresh
 * one cost a calloc and an 8 KiB buffer per write.  Bounded in count and
 * in what a kept buffer may hold, and let go a second after the last
 * commit (1024 of them hold 8 MiB: after load, storaged stayed at twice
 * its idle size).
 */
#define PENDING_KEEP		1024
#define PENDING_KEEP_BYTES	(64 * 1024)
#define PENDING_KEEP_MS		1000

static TAILQ_HEAD(, pending) pending_free = TAILQ_HEAD_INITIALIZER(pending_free);
static unsigned npending_free;

static struct pending *
pending_get(struct peer_req *req, const struct api_method *m)
{
	struct pending *p = TAILQ_FIRST(&pending_free);

	if (p != NULL) {
		TAILQ_REMOVE(&pending_free, p, entry);
		npending_free--;
		rpc_buf_reset(&p->out);
	} else {
		p = xcalloc(1, sizeof(*p));
		rpc_buf_init(&p->out);
	}
	p->req = req;
	p->m = m;
	p->rc = 0;
	rpc_error_clear(&p->err);
	return p;
}

/* Frees every kept pending. */
static void
pending_release(void)
{
	struct pending *p;
	size_t bytes = 0;

	while ((p = TAILQ_FIRST(&pending_free)) != NULL) {
		TAILQ_REMOVE(&pending_free, p, entry);
		bytes += p->out.sb.alloc + sizeof(*p);
		rpc_buf_free(&p->out);
		free(p);
	}
	npending_free = 0;
	memtrim_note(bytes);
}

static void
pending_put(struct pending *p)
{
	if (npending_free < PENDING_KEEP && p->out.sb.alloc <= PENDING_KEEP_BYTES) {
		TAILQ_INSERT_HEAD(&pending_free, p, entry);
		npending_free++;
		return;
	}
	rpc_buf_free(&p->out);
	free(p);
}

/*
 * Where the last commits' time went, for stats: waiting in the batch (the
 * oldest request's arrival to BEGIN), the transaction (BEGIN to COMMIT
 * returned) and the answers (COMMIT to the last one handed to its socket).
 */
#define STAGE_N		1024
enum { STAGE_QUEUE, STAGE_TXN, STAGE_REPLY, STAGE_MAX };
static const char *const stage_names[STAGE_MAX] = { "queue", "txn", "reply" };

struct stages {
	int64_t us[STAGE_MAX][STAGE_N];
	uint64_t n;
};

static int
cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return x < y ? -1 : x > y;
}

static void
stages_pack(const struct stages *st, msgpack_packer *pk)
{
	static int64_t v[STAGE_N];
	size_t n = st->n < STAGE_N ? (size_t)st->n : STAGE_N;
	char key[32];
	int k;

	rpc_pack_str(pk, "write_stages");
	msgpack_pack_map(pk, 1 + 2 * STAGE_MAX);
	rpc_pack_kv_i64(pk, "samples", (int64_t)n);
	for (k = 0; k < STAGE_MAX; k++) {
		memcpy(v, st->us[k], n * sizeof(v[0]));
		qsort(v, n, sizeof(v[0]), cmp_i64);
		snprintf(key, sizeof(key), "%s_p50_us", stage_names[k]);
		rpc_pack_kv_i64(pk, key, n > 0 ? v[n / 2] : 0);
		snprintf(key, sizeof(key), "%s_p99_us", stage_names[k]);
		rpc_pack_kv_i64(pk, key, n > 0 ? v[n * 99 / 100] : 0);
	}
}

static struct {
	struct event_base *base;
	struct server *srv;
	struct store st;
	struct storaged_config cfg;
	TAILQ_HEAD(, pending) batch;
	unsigned nbatch;
	struct event *flush_ev;
	struct event *janitor_ev;
	struct event *lock_ev;	/* the next try for a lock another holds */
	struct event *idle_ev;	/* lets the kept pendings go after a burst */
	int64_t last_flush_ms;
	unsigned lock_tries;	/* of the batch's BEGIN; 0 when not waiting */
	struct checkpoint *ckpt;
	int64_t last_head;
	uint64_t commits, writes, lock_waits, lock_timeouts;
	struct stages stages;
} sd;

static void
reply_result(struct peer_req *req, int rc, struct rpc_buf *out, const struct rpc_error *err)
{
	if (rc == 0)
		peer_reply(req, out->sb.data, out->sb.size);
	else
		peer_reply_error(req, err);
}

static void
notify_watcher(struct peer *p, void *arg)
{
	struct conn *c = peer_udata(p);
	const struct rpc_buf *b = arg;

	if (c != NULL && c->watcher)
		peer_notify(p, "committed", b->sb.data, b->sb.size);
}

/* committed {head, mono_us}: mono_us is when COMMIT returned. */
static void
announce_head(int64_t head, int64_t mono_us)
{
	struct rpc_buf b;

	if (head == sd.last_head)
		return;
	sd.last_head = head;
	rpc_buf_init(&b);
	msgpack_pack_map(&b.pk, 2);
	rpc_pack_kv_i64(&b.pk, "head", head);
	rpc_pack_kv_i64(&b.pk, "mono_us", mono_us);
	server_foreach(sd.srv, notify_watcher, &b);
	rpc_buf_free(&b);
}

/* Takes p out of the batch, before it is answered. */
static void
batch_remove(struct pending *p)
{
	TAILQ_REMOVE(&sd.batch, p, entry);
	sd.nbatch--;
	if (p->req->peer != NULL)
		((struct conn *)peer_udata(p->req->peer))->queued--;
	if (p->m->write)
		sd.writes++;
}

/*
 * Answers every request of the batch, corked into one send: with err, or
 * (err NULL) with each one's own result.
 */
static void
batch_answer(const struct rpc_error *err)
{
	struct pending *p;

	peer_cork(true);
	while ((p = TAILQ_FIRST(&sd.batch)) != NULL) {
		batch_remove(p);
		if (err != NULL)
			reply_result(p->req, -1, &p->out, err);
		else
			reply_result(p->req, p->rc, &p->out, &p->err);
		pending_put(p);
	}
	peer_cork(false);
}

/*
 * Another connection (an operator's sqlite3 shell, say, or at rest for a
 * moment the checkpoint thread's TRUNCATE) holds the write lock.  Waiting
 * in SQLite's busy handler would stop the whole loop, so the batch waits
 * on a timer instead (1 ms doubling to 16 ms) while reads, hello and stats
 * go on; a request waiting longer than busy_timeout_ms fails with
 * unavailable, having changed nothing.
 */
static void
flush_locked(void)
{
	int64_t now = aotime_mono_us(), limit = sd.cfg.busy_timeout_ms * 1000;
	struct pending *p, *next;
	struct rpc_error err;
	struct timeval tv;

	if (sd.lock_tries++ == 0) {
		sd.lock_waits++;
		log_debug("ao.db is locked by another connection: %u requests wait",
		    sd.nbatch);
	}
	peer_cork(true);
	TAILQ_FOREACH_SAFE(p, &sd.batch, entry, next) {
		if (now - p->req->received_us < limit)
			continue;
		batch_remove(p);
		rpc_error_set(&err, RPC_UNAVAILABLE, "ao.db is locked by another "
		    "connection (waited %lld ms)",
		    (long long)((now - p->req->received_us) / 1000));
		reply_result(p->req, -1, &p->out, &err);
		sd.lock_timeouts++;
		pending_put(p);
	}
	peer_cork(false);
	if (TAILQ_EMPTY(&sd.batch)) {
		log_warnx("ao.db stayed locked by another connection for %lld ms: "
		    "writes failed with unavailable", (long long)sd.cfg.busy_timeout_ms);
		sd.lock_tries = 0;
		return;
	}
	aotime_tv(&tv, 1 << (sd.lock_tries < 5 ? sd.lock_tries - 1 : 4));
	evtimer_add(sd.lock_ev, &tv);
}

/* Runs the batch in one transaction, then answers every request in it. */
static void
flush_cb(evutil_socket_t fd, short what, void *arg)
{
	struct rpc_error txerr;
	struct pending *p;
	int64_t begin_us, committed_us, oldest_us, head;
	size_t slot;
	int failed, rc;

	(void)fd;
	(void)what;
	(void)arg;
	if (TAILQ_EMPTY(&sd.batch) || evtimer_pending(sd.lock_ev, NULL))
		return;
	rpc_error_clear(&txerr);
	oldest_us = TAILQ_FIRST(&sd.batch)->req->received_us;
	begin_us = aotime_mono_us();
	rc = sqlite3_exec(sd.st.db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
	if ((rc & 0xff) == SQLITE_BUSY) {
		flush_locked();
		return;
	}
	if (sd.lock_tries > 0) {
		log_debug("ao.db lock obtained after %u tries", sd.lock_tries);
		sd.lock_tries = 0;
	}
	failed = rc != SQLITE_OK;
	if (failed)
		store_sqlerr(&sd.st, sqlite3_extended_errcode(sd.st.db), &txerr);
	TAILQ_FOREACH(p, &sd.batch, entry) {
		if (failed)
			break;
		p->rc = api_call(&sd.st, p->m, p->req->params, p->req->zone, &p->out,
		    &p->err);
		/*
		 * SQLITE_FULL/IOERR/NOMEM can roll back the whole transaction:
		 * then nothing of the batch is stored, and the requests after it
		 * must not run in autocommit mode either.
		 */
		if (sqlite3_get_autocommit(sd.st.db)) {
			rpc_error_set(&txerr, p->err.code == RPC_OK ? RPC_INTERNAL :
			    p->err.code, "the transaction was rolled back: %s",
			    p->rc == -1 ? p->err.message : "unknown cause");
			failed = 1;
		}
	}
	/* Read inside the transaction: no read transaction of its own. */
	head = failed ? sd.last_head : store_head(&sd.st);
	if (!failed && store_exec(&sd.st, "COMMIT", &txerr) == -1) {
		store_exec(&sd.st, "ROLLBACK", NULL);
		failed = 1;
	}
	committed_us = aotime_mono_us();
	if (failed)
		log_warnx("group commit of %u requests failed: %s", sd.nbatch,
		    txerr.message);
	else
		sd.commits++;
	/* The wake and every answer leave in one system call, the wake first. */
	peer_cork(true);
	announce_head(failed ? sd.last_head : head, committed_us);
	batch_answer(failed ? &txerr : NULL);
	peer_cork(false);
	slot = (size_t)(sd.stages.n++ % STAGE_N);
	sd.stages.us[STAGE_QUEUE][slot] = begin_us - oldest_us;
	sd.stages.us[STAGE_TXN][slot] = committed_us - begin_us;
	sd.stages.us[STAGE_REPLY][slot] = aotime_mono_us() - committed_us;
	if (sd.st.full) {
		sd.st.full = false;
		checkpoint_disk_full(sd.ckpt);
	}
	checkpoint_after_commit(sd.ckpt);
	sd.last_flush_ms = aotime_mono_ms();
	if (!evtimer_pending(sd.idle_ev, NULL)) {
		struct timeval tv;

		aotime_tv(&tv, PENDING_KEEP_MS);
		evtimer_add(sd.idle_ev, &tv);
	}
}

#define STOP_LOCK_MS	2000	/* at exit, the longest wait for another's lock */

/*
 * At exit, the last group commit.  A batch waiting for another process's
 * lock now waits in SQLite's busy handler (nothing else is served any
 * more), up to its oldest request's deadline and at most STOP_LOCK_MS;
 * whatever still cannot commit is answered unavailable, unapplied.
 */
static void
flush_final(void)
{
	struct rpc_error err;
	struct pending *p;
	int64_t left;

	evtimer_del(sd.lock_ev);
	if ((p = TAILQ_FIRST(&sd.batch)) == NULL)
		return;
	left = sd.cfg.busy_timeout_ms - (aotime_mono_us() - p->req->received_us) /
	    1000;
	sqlite3_busy_timeout(sd.st.db, (int)(left < 0 ? 0 : left > STOP_LOCK_MS ?
	    STOP_LOCK_MS : left));
	flush_cb(-1, 0, NULL);
	sqlite3_busy_timeout(sd.st.db, 0);
	evtimer_del(sd.lock_ev);
	if (TAILQ_EMPTY(&sd.batch))
		return;
	rpc_error_set(&err, RPC_UNAVAILABLE, "storaged is shutting down and ao.db "
	    "is locked by another connection");
	batch_answer(&err);
	sd.lock_tries = 0;
}

/* A second after the last commit: the kept pendings go. */
static void
idle_cb(evutil_socket_t fd, short what, void *arg)
{
	int64_t left = sd.last_flush_ms + PENDING_KEEP_MS - aotime_mono_ms();
	struct timeval tv;

	(void)fd;
	(void)what;
	(void)arg;
	if (left > 0) {
		aotime_tv(&tv, left);
		evtimer_add(sd.idle_ev, &tv);
		return;
	}
	pending_release();
}

static void
handle_api(struct peer_req *req, void *arg)
{
	const struct api_method *m = api_find(req->method);
	struct conn *c = peer_udata(req->peer);
	static struct rpc_buf out;	/* answers are copied out: reused */
	static bool out_init;
	struct rpc_error err;
	struct pending *p;
	int rc;

	(void)arg;
	if (m->write || c->queued > 0) {
		p = pending_get(req, m);
		TAILQ_INSERT_TAIL(&sd.batch, p, entry);
		sd.nbatch++;
		c->queued++;
		/* While the batch waits for a lock, its timer runs the flush. */
		if (!evtimer_pending(sd.lock_ev, NULL))
			event_active(sd.flush_ev, EV_TIMEOUT, 1);
		return;
	}
	if (!out_init) {
		rpc_buf_init(&out);
		out_init = true;
	}
	rpc_buf_reset(&out);
	rc = api_call(&sd.st, m, req->params, req->zone, &out, &err);
	reply_result(req, rc, &out, &err);
	/* One big answer (a long list) is not kept. */
	if (out.sb.alloc > PENDING_KEEP_BYTES) {
		rpc_buf_free(&out);
		out_init = false;
	}
}

/* watch {}: this connection gets `committed {head}` after each commit. */
static void
handle_watch(struct peer_req *req, void *arg)
{
	struct conn *c = peer_udata(req->peer);
	struct rpc_buf out;

	(void)arg;
	if (peer_req_no_params(req) == -1)
		return;
	c->watcher = true;
	rpc_buf_init(&out);
	msgpack_pack_map(&out.pk, 1);
	rpc_pack_kv_i64(&out.pk, "head", store_head(&sd.st));
	peer_reply(req, out.sb.data, out.sb.size);
	rpc_buf_free(&out);
}

static void
pack_wal(msgpack_packer *pk)
{
	struct checkpoint_stats cs;

	checkpoint_get_stats(sd.ckpt, &cs);
	rpc_pack_str(pk, "wal");
	msgpack_pack_map(pk, 15);
	rpc_pack_kv_str(pk, "checkpointer", cs.thread ? "thread" : "sqlite");
	rpc_pack_kv_i64(pk, "bytes", cs.wal_bytes);
	rpc_pack_kv_i64(pk, "frames", cs.frames);
	/* The most any commit left: the WAL's high-water mark in use. */
	rpc_pack_kv_i64(pk, "peak_bytes", cs.peak_frames > 0 ?
	    32 + cs.peak_frames * cs.frame_bytes : 0);
	rpc_pack_kv_i64(pk, "limit_bytes", cs.limit_bytes);
	rpc_pack_kv_i64(pk, "checkpoints", (int64_t)cs.runs);
	rpc_pack_kv_i64(pk, "restarts", (int64_t)cs.restarts);
	rpc_pack_kv_i64(pk, "in_writer", (int64_t)cs.in_writer);
	rpc_pack_kv_i64(pk, "busy", (int64_t)cs.busy);
	rpc_pack_kv_i64(pk, "failed", (int64_t)cs.failed);
	rpc_pack_str(pk, "last_checkpoint_at");
	if (cs.last_at > 0)
		msgpack_pack_int64(pk, cs.last_at);
	else
		msgpack_pack_nil(pk);
	rpc_pack_kv_str(pk, "last_mode", checkpoint_mode_name(cs.last_mode));
	rpc_pack_kv_i64(pk, "last_us", cs.last_us);
	rpc_pack_kv_str(pk, "last_result", sqlite3_errstr(cs.last_rc));
	rpc_pack_str(pk, "last_error");
	if (cs.last_error[0] != '\0')
		rpc_pack_str(pk, cs.last_error);
	else
		msgpack_pack_nil(pk);
}

static void
handle_stats(struct peer_req *req, void *arg)
{
	struct rpc_buf out;

	(void)arg;
	if (peer_req_no_params(req) == -1)
		return;
	rpc_buf_init(&out);
	msgpack_pack_map(&out.pk, 10);
	rpc_pack_kv_i64(&out.pk, "connections", server_nconns(sd.srv));
	rpc_pack_kv_i64(&out.pk, "commits", (int64_t)sd.commits);
	rpc_pack_kv_i64(&out.pk, "writes", (int64_t)sd.writes);
	rpc_pack_kv_i64(&out.pk, "head", store_head(&sd.st));
	rpc_pack_kv_i64(&out.pk, "oldest", store_oldest(&sd.st));
	rpc_pack_kv_i64(&out.pk, "lock_waits", (int64_t)sd.lock_waits);
	rpc_pack_kv_i64(&out.pk, "lock_timeouts", (int64_t)sd.lock_timeouts);
	pack_wal(&out.pk);
	stages_pack(&sd.stages, &out.pk);
	rpc_pack_memory(&out.pk);
	peer_reply(req, out.sb.data, out.sb.size);
	rpc_buf_free(&out);
}

static void
on_open(struct peer *p, void *arg)
{
	(void)arg;
	peer_set_udata(p, xcalloc(1, sizeof(struct conn)));
}

static void
on_close(struct peer *p, const char *reason, void *arg)
{
	(void)reason;
	(void)arg;
	free(peer_udata(p));
	peer_set_udata(p, NULL);
}

static void
janitor_cb(evutil_socket_t fd, short what, void *arg)
{
	struct rpc_error err;
	struct timeval tv;
	int n;

	(void)fd;
	(void)what;
	(void)arg;
	n = janitor_chunk(&sd.st, &sd.cfg, &err);
	if (n == -1 && err.code == RPC_UNAVAILABLE) {
		/* Locked (another process, a checkpoint): soon again, quietly. */
		log_debug("change_log retention: %s", err.message);
		aotime_tv(&tv, sd.cfg.janitor_interval_ms < 1000 ?
		    sd.cfg.janitor_interval_ms : 1000);
		evtimer_add(sd.janitor_ev, &tv);
		return;
	}
	if (n == -1)
		log_warnx("change_log retention: %s", err.message);
	else if (n > 0)
		log_debug("change_log retention: pruned %d events", n);
	/* A full chunk means more may be due: continue after other work. */
	aotime_tv(&tv, n == JANITOR_CHUNK ? 0 : sd.cfg.janitor_interval_ms);
	evtimer_add(sd.janitor_ev, &tv);
}

int
main(int argc, char **argv)
{
	struct server_method *methods;
	struct daemon_opts opts;
	struct peer_limits lim;
	struct daemon_signals *sigs;
	struct timeval tv;
	char path[PATH_MAX + 8], err[512];
	int perm, fd, i, n;

	memset(&sd, 0, sizeof(sd));
	TAILQ_INIT(&sd.batch);
	/*
	 * SQLite's per-statement scratch (page caches of ephemeral tables) is
	 * allocated and freed on every batch; without this glibc returns it to
	 * the kernel each time and faults it back in (bench: ~3x CPU/write).
	 */
	mallopt(M_TRIM_THRESHOLD, 64 * 1024 * 1024);
	/* No allocation statistics: they take a global mutex on every malloc. */
	sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
	daemon_init(&opts, argc, argv, "storaged",
	    "The sole writer of ao.db: projects, sessions, PRs, the change log.",
	    storaged_keys, &sd.cfg);
	signal(SIGPIPE, SIG_IGN);

	/* The socket first: a second instance must not touch the database. */
	fd = daemon_listen(&opts, "storaged.sock");
	snprintf(path, sizeof(path), "%s/ao.db", opts.paths.data_dir);
	if (store_open(&sd.st, path, &perm, err, sizeof(err)) == -1) {
		if (perm)
			fatalx_perm("%s", err);
		fatalx("%s", err);
	}
	/* Waiting for a lock is flush_locked's job: SQLite's would stop the loop. */
	sqlite3_busy_timeout(sd.st.db, 0);
	sd.last_head = store_head(&sd.st);
	if ((sd.ckpt = checkpoint_start(sd.st.db, path, &sd.cfg, err,
	    sizeof(err))) == NULL)
		fatalx("%s", err);

	sd.base = event_base_new();
	if (sd.base == NULL || event_base_priority_init(sd.base, 3) == -1)
		fatalx("event_base_new failed");
	/*
	 * Events default to the middle priority (1 of 0..2); the flush runs at
	 * the lowest, once this turn's requests have all been read.
	 */
	sd.flush_ev = event_new(sd.base, -1, 0, flush_cb, NULL);
	event_priority_set(sd.flush_ev, 2);
	sd.lock_ev = evtimer_new(sd.base, flush_cb, NULL);
	sd.idle_ev = evtimer_new(sd.base, idle_cb, NULL);
	event_priority_set(sd.lock_ev, 2);

	for (n = 0; api_method_at(n) != NULL; n++)
		;
	methods = xcalloc((size_t)n + 3, sizeof(*methods));
	for (i = 0; i < n; i++) {
		methods[i].name = api_method_at(i)->name;
		methods[i].fn = handle_api;
	}
	methods[n].name = "watch";
	methods[n].fn = handle_watch;
	methods[n + 1].name = "stats";
	methods[n + 1].fn = handle_stats;

	if (server_limits_config(&lim, sd.cfg.max_message_bytes,
	    sd.cfg.message_timeout_ms, sd.cfg.max_unfinished_bytes, err,
	    sizeof(err)) == -1)
		fatalx_perm("%s", err);
	if (lim.out_cap < 2 * lim.max_msg)
		lim.out_cap = 2 * lim.max_msg;
	{
		static const struct server_cbs cbs = { on_open, on_close, NULL, NULL };

		sd.srv = server_new(sd.base, fd, "storaged", methods, &cbs, NULL, &lim);
	}
	sigs = daemon_signals(sd.base);
	/*
	 * Big messages (finished or not) and long answers are the churn:
	 * 40 connections that each held 15 MiB of a message left 629 MB
	 * resident after they closed, 5 MB after a trim.
	 */
	memtrim_init(sd.base, MEMTRIM_QUIET_MS, MEMTRIM_MIN_BYTES);
	sd.janitor_ev = evtimer_new(sd.base, janitor_cb, NULL);
	aotime_tv(&tv, 0);
	evtimer_add(sd.janitor_ev, &tv);

	log_info("serving %s (schema %d, head %lld)", path, schema_version(),
	    (long long)sd.last_head);
	log_debug("batched socket sends: %s", sendbatch_backend());
	daemon_ready(&opts);
	event_base_dispatch(sd.base);

	/*
	 * Finish what was accepted before the signal and let every answer
	 * reach its client (up to 2 s), then close.
	 */
	flush_final();
	server_drain(sd.srv);
	{
		int64_t deadline = aotime_mono_ms() + 2000;
		struct timeval tick = { 0, 10000 };

		while (server_nconns(sd.srv) > 0 && aotime_mono_ms() < deadline) {
			event_base_loopexit(sd.base, &tick);
			event_base_dispatch(sd.base);
		}
	}
	server_free(sd.srv);
	event_base_loop(sd.base, EVLOOP_NONBLOCK);
	memtrim_shutdown();
	daemon_signals_free(sigs);
	event_free(sd.flush_ev);
	event_free(sd.lock_ev);
	event_free(sd.idle_ev);
	event_free(sd.janitor_ev);
	event_base_free(sd.base);
	checkpoint_stop(sd.ckpt);
	store_close(&sd.st);
	pending_release();
	free(methods);
	daemon_opts_free(&opts);
	return 0;
}
