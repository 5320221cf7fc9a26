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
	    "how often the WAL is checkpointed (in a thread, off the commit path)" },
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
 * in what a kept buffer may hold.
 */
#define PENDING_KEEP		1024
#define PENDING_KEEP_BYTES	(64 * 1024)

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

static struct {
	struct event_base *base;
	struct server *srv;
	struct store st;
	struct storaged_config cfg;
	TAILQ_HEAD(, pending) batch;
	unsigned nbatch;
	struct event *flush_ev;
	struct event *janitor_ev;
	struct checkpoint *ckpt;
	int64_t last_head;
	uint64_t commits, writes;
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

/* Runs the batch in one transaction, then answers every request in it. */
static void
flush_cb(evutil_socket_t fd, short what, void *arg)
{
	struct rpc_error txerr;
	struct pending *p;
	int64_t committed_us, head;
	int failed;

	(void)fd;
	(void)what;
	(void)arg;
	if (TAILQ_EMPTY(&sd.batch))
		return;
	rpc_error_clear(&txerr);
	failed = store_exec(&sd.st, "BEGIN IMMEDIATE", &txerr) == -1;
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
	while ((p = TAILQ_FIRST(&sd.batch)) != NULL) {
		TAILQ_REMOVE(&sd.batch, p, entry);
		if (p->req->peer != NULL)
			((struct conn *)peer_udata(p->req->peer))->queued--;
		if (failed)
			reply_result(p->req, -1, &p->out, &txerr);
		else
			reply_result(p->req, p->rc, &p->out, &p->err);
		if (p->m->write)
			sd.writes++;
		pending_put(p);
	}
	sd.nbatch = 0;
	peer_cork(false);
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
handle_stats(struct peer_req *req, void *arg)
{
	struct rpc_buf out;

	(void)arg;
	rpc_buf_init(&out);
	msgpack_pack_map(&out.pk, 5);
	rpc_pack_kv_i64(&out.pk, "connections", server_nconns(sd.srv));
	rpc_pack_kv_i64(&out.pk, "commits", (int64_t)sd.commits);
	rpc_pack_kv_i64(&out.pk, "writes", (int64_t)sd.writes);
	rpc_pack_kv_i64(&out.pk, "head", store_head(&sd.st));
	rpc_pack_kv_i64(&out.pk, "oldest", store_oldest(&sd.st));
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
	struct pending *p;
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
	sd.last_head = store_head(&sd.st);
	if ((sd.ckpt = checkpoint_start(path, sd.cfg.checkpoint_interval_ms, err,
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
	flush_cb(-1, 0, NULL);
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
	daemon_signals_free(sigs);
	event_free(sd.flush_ev);
	event_free(sd.janitor_ev);
	event_base_free(sd.base);
	checkpoint_stop(sd.ckpt);
	store_close(&sd.st);
	while ((p = TAILQ_FIRST(&pending_free)) != NULL) {
		TAILQ_REMOVE(&pending_free, p, entry);
		rpc_buf_free(&p->out);
		free(p);
	}
	free(methods);
	daemon_opts_free(&opts);
	return 0;
}
