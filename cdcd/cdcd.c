/*
 * ao-cdcd: tails change_log and serves cdcd.sock.
 *
 * New rows are learnt from storaged's `committed` wakes and, as a backstop,
 * from PRAGMA data_version polls; each is encoded once into the shared ring.
 * A subscriber has a cursor (the last seq written to its socket).  It is
 * fed from the ring, or from the database when it is behind the ring, while
 * its unsent output is under the high-water mark; past it, it waits for its
 * socket to drain (the peer's on_drain) and continues at its own pace, so it
 * never loses an event and never costs more than its cap.  Live subscribers
 * are fed as events are read; the others in catch-up turns, one per loop
 * turn, round-robin within a budget (catchup_turn_bytes and
 * CATCHUP_TURN_US), so a backlog never keeps the loop from its sockets.
 * See cdcd.h for the state diagrams.
 */
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <bsd/sys/queue.h>
#include <event2/event.h>

#include "cdcd/cdcd.h"
#include "common/aotime.h"
#include "common/daemon.h"
#include "common/log.h"
#include "common/memtrim.h"
#include "common/sendbatch.h"
#include "common/xmalloc.h"
#include "proto/client.h"
#include "proto/server.h"

#define DAY_MS (24LL * 60 * 60 * 1000)
#define READ_BATCH	500	/* events per database read */
#define ACK_EVERY_MS	100	/* consumer.commit coalescing */
#define CLOSE_GRACE_MS	2000	/* a closing subscriber's last chance to read */
#define CATCHUP_TURN_US	10000	/* the longest catch-up turn, past its first event */

static const struct config_key cdcd_keys[] = {
	{ "poll_ms", CONFIG_MS, "250",
	    offsetof(struct cdcd_config, poll_ms), 1, DAY_MS,
	    "poll the database for commits that sent no wake" },
	{ "subscriber_buffer_bytes", CONFIG_BYTES, "1MiB",
	    offsetof(struct cdcd_config, subscriber_buffer_bytes), 1,
	    1024LL * 1024 * 1024,
	    "a subscriber's output high-water mark; past it, it catches up "
	    "from the database" },
	{ "stall_timeout_ms", CONFIG_MS, "600000",
	    offsetof(struct cdcd_config, stall_timeout_ms), 1, 30 * DAY_MS,
	    "close a subscriber that has read nothing for this long" },
	{ "max_message_bytes", CONFIG_BYTES, "16MiB",
	    offsetof(struct cdcd_config, max_message_bytes), 256,
	    1024LL * 1024 * 1024,
	    "largest request or response on cdcd.sock" },
	SERVER_LIMIT_KEYS(struct cdcd_config),
	{ "ring_bytes", CONFIG_BYTES, "64MiB",
	    offsetof(struct cdcd_config, ring_bytes), 4096,
	    16LL * 1024 * 1024 * 1024,
	    "memory for the shared cache of recent encoded events" },
	{ "catchup_turn_bytes", CONFIG_BYTES, "4MiB",
	    offsetof(struct cdcd_config, catchup_turn_bytes), 4096,
	    1024LL * 1024 * 1024,
	    "what one loop turn sends to subscribers that catch up, across "
	    "all of them (the first event of a turn always goes)" },
	CONFIG_KEY_END
};

static const char *const event_types[] = { "session_created", "session_updated",
	"pr_created", "pr_updated", "pr_check_recorded", "notification_created",
	"project_added", "project_archived", NULL };

struct sub {
	struct peer *peer;
	uint64_t id;
	bool subscribed;
	enum sub_mode mode;
	int64_t cursor;		/* last seq written to the socket */
	struct sub_filter filter;
	char *consumer;		/* durable consumer name, or NULL */
	int64_t acked;		/* highest seq acknowledged */
	int64_t committed;	/* highest seq stored by storaged */
	bool commit_inflight;
	int64_t progress_ms;	/* when the output last shrank */
	size_t last_out;
	int64_t closing_since;	/* 0, or when `closing` was sent */
	uint64_t delivered;
	size_t peak_out;	/* the most unsent output an event send left */
	bool gone;		/* connection closed: freed from the loop */
	bool queued;		/* in cd.catchq */
	TAILQ_ENTRY(sub) entry;
	TAILQ_ENTRY(sub) qentry;
};

static struct {
	struct cdcd_config cfg;
	struct daemon_opts opts;
	struct event_base *base;
	struct server *srv;
	struct client *storaged;
	struct reader rd;
	bool rd_open;
	char dbpath[PATH_MAX + 8];
	struct ring ring;
	int64_t data_version;
	struct event *poll_ev, *ack_ev, *tick_ev;
	TAILQ_HEAD(, sub) subs;
	TAILQ_HEAD(, sub) catchq;	/* to serve in catch-up turns, in order */
	size_t nqueued;
	struct event *catchup_ev;	/* a zero timeout: the next turn */
	uint64_t turns, turns_cut;	/* catch-up turns; those a limit ended */
	uint64_t next_id;
	uint64_t appended, appended_at_tick;
	int64_t tick_ms;
	double events_per_s;
	bool reading;		/* poll_db re-entrancy guard */
	unsigned commits_inflight;	/* consumer.commit calls unanswered */
} cd;

/* What serving a subscriber ended on. */
enum serve {
	SERVE_LIVE,	/* caught up: fed as events are read */
	SERVE_FULL,	/* at its high-water mark: on_drain brings it back */
	SERVE_CUT,	/* the turn's budget ran out: to the back of the queue */
	SERVE_IDLE,	/* nothing to do now: gone, no rows yet, a read error */
};

static enum serve sub_serve(struct sub *, struct sub_turn *);
static void sub_reset(struct sub *, int64_t oldest, int64_t head);
static void catchq_add(struct sub *);

static void
buf_unref_cb(const void *data, size_t len, void *arg)
{
	(void)data;
	(void)len;
	ring_buf_unref(arg);
}

/*
 * Queues an encoded event on a subscriber's socket.  Small events are
 * copied: libevent gives every reference its own ~1 KiB chain (bench: 1 KiB
 * of heap and 1.4 us per 180-byte event), while copies pack into shared
 * chains.  Large ones are referenced, shared by every subscriber.
 */
#define RING_COPY_MAX 4096

static int
ring_send(struct peer *p, struct ring_buf *b)
{
	if (b->len < RING_COPY_MAX)
		return peer_send(p, b->data, b->len);
	ring_buf_ref(b);
	return peer_send_ref(p, b->data, b->len, buf_unref_cb, b);
}

/* Tries to open the database; storaged creates it before it is ready. */
static bool
reader_ready(void)
{
	char err[512];
	int64_t head, oldest;

	if (cd.rd_open)
		return true;
	if (reader_open(&cd.rd, cd.dbpath, err, sizeof(err)) == -1) {
		log_debug("%s (retrying)", err);
		return false;
	}
	if (reader_bounds(&cd.rd, &head, &oldest) == -1) {
		reader_close(&cd.rd);
		return false;
	}
	cd.rd_open = true;
	ring_reset(&cd.ring, head);
	reader_data_version(&cd.rd, &cd.data_version);
	log_info("reading %s (head %lld)", cd.dbpath, (long long)head);
	return true;
}

struct tail_read {
	struct rpc_buf b;
	bool contiguous;	/* stop at a gap after the ring's end */
	bool gap;		/* met one: that event and later are not appended */
};

static int
tail_cb(void *arg, const struct reader_event *ev)
{
	struct tail_read *t = arg;
	struct ring_buf *rb;

	if (t->contiguous && ev->seq != cd.ring.last + 1) {
		t->gap = true;
		return -1;
	}
	rpc_buf_reset(&t->b);
	reader_encode_event(&t->b, ev);
	rb = ring_buf_new(t->b.sb.data, t->b.sb.size);
	ring_append(&cd.ring, ev->seq, ev->project_id, ev->session_id, ev->type, rb);
	cd.appended++;
	return 0;
}

/*
 * Encodes every change_log row after the ring's end into it, in batches;
 * when contiguous, stops at a seq that does not follow the ring's end.
 * Returns 0, 1 on such a gap, -1 on a read error (logged).
 */
static int
read_tail(bool contiguous)
{
	struct tail_read t = { .contiguous = contiguous, .gap = false };
	char err[512];
	int n;

	rpc_buf_init(&t.b);
	do {
		n = reader_events(&cd.rd, cd.ring.last, READ_BATCH, tail_cb, &t,
		    err, sizeof(err));
		if (n == -1)
			log_warnx("%s", err);
	} while (n == READ_BATCH && !t.gap);
	rpc_buf_free(&t.b);
	return n == -1 ? -1 : t.gap;
}

/*
 * Feeds every live subscriber the events just read, with one system call
 * for all of them (peer_cork): each takes them from the ring until its
 * high-water mark.  One the ring left behind, and one catching up that may
 * be sent more, waits for a catch-up turn instead.
 */
static void
fill_all(void)
{
	size_t hw = (size_t)cd.cfg.subscriber_buffer_bytes;
	struct sub_turn live;
	struct sub *s, *next;

	sub_turn_begin(&live, SIZE_MAX, INT64_MAX);
	peer_cork(true);
	TAILQ_FOREACH_SAFE(s, &cd.subs, entry, next) {
		if (!s->subscribed || s->queued)
			continue;
		if (s->mode == SUB_LIVE && sub_source(s->cursor, cd.ring.base,
		    cd.ring.last) != SUB_SRC_DB)
			sub_serve(s, &live);
		else if (sub_can_send(peer_outlen(s->peer), hw)) {
			s->mode = SUB_CATCHUP;
			catchq_add(s);
		}
	}
	peer_cork(false);
	memtrim_note(live.bytes);
}

/*
 * Brings the ring up to the database's head and feeds the live subscribers.
 * A head behind the ring means the database went back in time (restored
 * from a backup): every subscriber past it is reset.
 */
static void
poll_db(void)
{
	struct sub *s, *next;
	int64_t head, oldest;

	if (cd.reading || !reader_ready())
		return;
	cd.reading = true;
	if (reader_bounds(&cd.rd, &head, &oldest) == -1) {
		log_warnx("reading change_log bounds: %s", sqlite3_errmsg(cd.rd.db));
		cd.reading = false;
		return;
	}
	if (cd.ring.last < oldest - 1) {
		/* cdcd itself lagged past retention: the ring restarts at the oldest. */
		log_warnx("change_log pruned past %lld: skipping to %lld",
		    (long long)cd.ring.last, (long long)oldest - 1);
		ring_reset(&cd.ring, oldest - 1);
	}
	if (head < cd.ring.last) {
		log_warnx("change_log head went back from %lld to %lld: resetting "
		    "subscribers", (long long)cd.ring.last, (long long)head);
		ring_reset(&cd.ring, head);
		TAILQ_FOREACH_SAFE(s, &cd.subs, entry, next)
			if (s->subscribed && s->cursor > head)
				sub_reset(s, oldest, head);
	}
	read_tail(false);
	cd.reading = false;
	fill_all();
}

/*
 * A `committed {head}` wake: the common case is a head just past the
 * ring's, and then one read of the new rows is all it takes.  Anything
 * else (a head behind the ring, a gap after it: pruning, or a database
 * restored from a backup) takes poll_db's full look at the bounds.
 */
static void
on_committed(int64_t head)
{
	int r;

	if (head == cd.ring.last && cd.rd_open)
		return;
	if (head < cd.ring.last || cd.reading || !cd.rd_open) {
		poll_db();
		return;
	}
	cd.reading = true;
	r = read_tail(true);
	cd.reading = false;
	if (r != 0)
		poll_db();
	else
		fill_all();
}

static void
poll_cb(evutil_socket_t fd, short what, void *arg)
{
	int64_t v;

	(void)fd;
	(void)what;
	(void)arg;
	if (!reader_ready())
		return;
	/* data_version changes when another connection commits. */
	if (reader_data_version(&cd.rd, &v) == 0 && v != cd.data_version) {
		cd.data_version = v;
		poll_db();
	}
}

/* Records the output an event send left, for stats. */
static void
sub_note_out(struct sub *s)
{
	size_t out = peer_outlen(s->peer);

	if (out > s->peak_out)
		s->peak_out = out;
}

/*
 * Sends ring events after the cursor while the subscriber's output and the
 * turn allow; the cursor moves past filtered-out events too.
 */
static void
serve_ring(struct sub *s, struct sub_turn *t, size_t hw)
{
	const struct ring_entry *e;

	for (e = ring_after(&cd.ring, s->cursor); e != NULL;
	    e = ring_next(&cd.ring, e)) {
		if (!sub_can_send(peer_outlen(s->peer), hw) || !sub_turn_more(t, 0))
			return;
		s->cursor = e->seq;
		if (!sub_filter_match(&s->filter, e->project_id, e->session_id,
		    e->type)) {
			sub_turn_took(t, 0);
			continue;
		}
		if (ring_send(s->peer, e->buf) == -1)
			return;
		sub_turn_took(t, e->buf->len);
		s->delivered++;
		sub_note_out(s);
	}
}

struct db_fill {
	struct sub *s;
	struct sub_turn *t;
	size_t out0, hw;	/* the output before the batch; its mark */
	struct rpc_buf out;
	int64_t last;
	int n;
	bool gap;	/* the next row was not last + 1: pruned meanwhile */
};

static int
db_fill_cb(void *arg, const struct reader_event *ev)
{
	struct db_fill *f = arg;
	size_t before = f->out.sb.size;

	/*
	 * Seqs are contiguous but for what retention pruned (a prefix), and
	 * the janitor may prune between the bounds check and this read: a
	 * jump means the cursor fell behind the log (from 0 excepted: "the
	 * whole retained log" starts wherever it starts).
	 */
	if (f->last > 0 && ev->seq != f->last + 1) {
		f->gap = true;
		return -1;
	}

	/* The batch counts as output: it stops at the mark, as the ring does. */
	if (!sub_can_send(f->out0 + before, f->hw) ||
	    !sub_turn_more(f->t, aotime_mono_us()))
		return -1;
	f->last = ev->seq;
	if (sub_filter_match(&f->s->filter, ev->project_id, ev->session_id,
	    ev->type)) {
		reader_encode_event(&f->out, ev);
		f->n++;
	}
	sub_turn_took(f->t, f->out.sb.size - before);
	return 0;
}

static void
batch_free_cb(const void *data, size_t len, void *arg)
{
	(void)len;
	(void)arg;
	free((void *)data);
}

/*
 * Sends one database batch after the cursor: the events the subscriber's
 * output and the turn allow, at most READ_BATCH, in one buffer (handed to
 * its output as it is unless small: see ring_send).  Returns 1 when the
 * cursor moved, else 0: nothing after the cursor yet, the turn was spent, a
 * read error (logged), or the connection closed.
 */
static int
serve_db(struct sub *s, struct sub_turn *t, size_t hw)
{
	struct db_fill f = { .s = s, .t = t, .hw = hw, .last = s->cursor };
	int64_t head, oldest;
	char err[512], *data;
	size_t len;
	int n, r;

	if (!reader_ready())
		return 0;
	/* Pruned past this subscriber while it lagged: a gap. */
	if (reader_bounds(&cd.rd, &head, &oldest) == 0 &&
	    sub_needs_reset(s->cursor, oldest, head)) {
		sub_reset(s, oldest, head);
		return 1;
	}
	f.out0 = peer_outlen(s->peer);
	rpc_buf_init(&f.out);
	n = reader_events(&cd.rd, s->cursor, READ_BATCH, db_fill_cb, &f, err,
	    sizeof(err));
	if (n == -1)
		log_warnx("%s", err);
	if (f.gap && f.last == s->cursor) {
		rpc_buf_free(&f.out);
		if (reader_bounds(&cd.rd, &head, &oldest) == -1)
			return 0;
		sub_reset(s, oldest, head);
		return 1;
	}
	if (n <= 0) {
		rpc_buf_free(&f.out);
		return 0;
	}
	s->cursor = f.last;
	if ((len = f.out.sb.size) == 0) {
		rpc_buf_free(&f.out);
		return 1;
	}
	if (len < RING_COPY_MAX) {
		r = peer_send(s->peer, f.out.sb.data, len);
		rpc_buf_free(&f.out);
	} else {
		/* Growth by doubling may have left up to half of it unused. */
		if (f.out.sb.alloc - len > len / 4)
			f.out.sb.data = xreallocarray(f.out.sb.data, 1, len);
		data = msgpack_sbuffer_release(&f.out.sb);
		r = peer_send_ref(s->peer, data, len, batch_free_cb, NULL);
	}
	if (r == -1)
		return 0;
	s->delivered += (uint64_t)f.n;
	sub_note_out(s);
	return 1;
}

/*
 * Writes events after the cursor while the subscriber's output is under its
 * high-water mark and the turn's budget lasts: from the ring when the
 * cursor is inside it, else from the database.  Caught up → LIVE; stopped
 * by the mark → CATCHUP (resumed by on_drain).  The caller corks.
 */
static enum serve
sub_serve(struct sub *s, struct sub_turn *t)
{
	size_t hw = (size_t)cd.cfg.subscriber_buffer_bytes;

	while (!s->gone && s->subscribed && !peer_closed(s->peer)) {
		if (!sub_can_send(peer_outlen(s->peer), hw)) {
			s->mode = SUB_CATCHUP;
			return SERVE_FULL;
		}
		if (!sub_turn_more(t, 0))
			return SERVE_CUT;
		switch (sub_source(s->cursor, cd.ring.base, cd.ring.last)) {
		case SUB_SRC_NONE:
			s->mode = SUB_LIVE;
			return SERVE_LIVE;
		case SUB_SRC_RING:
			serve_ring(s, t, hw);
			break;
		case SUB_SRC_DB:
			if (serve_db(s, t, hw) == 0)
				return t->spent ? SERVE_CUT : SERVE_IDLE;
			break;
		}
	}
	return SERVE_IDLE;
}

static void
catchup_kick(void)
{
	struct timeval now = { 0, 0 };

	if (!evtimer_pending(cd.catchup_ev, NULL))
		evtimer_add(cd.catchup_ev, &now);
}

/*
 * Queues a subscriber for the catch-up turns (once) and makes sure one
 * runs.  One whose connection closed meanwhile (a send can close it) or
 * that unsubscribed is left out.
 */
static void
catchq_add(struct sub *s)
{
	if (s->gone || !s->subscribed)
		return;
	if (!s->queued) {
		s->queued = true;
		TAILQ_INSERT_TAIL(&cd.catchq, s, qentry);
		cd.nqueued++;
	}
	catchup_kick();
}

static void
catchq_remove(struct sub *s)
{
	if (s->queued) {
		TAILQ_REMOVE(&cd.catchq, s, qentry);
		s->queued = false;
		cd.nqueued--;
	}
}

/*
 * One catch-up turn: serves the queue in order, each subscriber until its
 * high-water mark, the ring's end or the end of the turn's budget, corked
 * into one send.  One the budget cut short goes to the back, so each gets
 * its turn and none starves; the one at the head always moves on.  Runs
 * from a zero timeout, so the loop reads its sockets (hello, acks, wakes
 * for the live subscribers) between two turns.
 */
static void
catchup_cb(evutil_socket_t fd, short what, void *arg)
{
	struct sub_turn t;
	struct sub *s;

	(void)fd;
	(void)what;
	(void)arg;
	sub_turn_begin(&t, (size_t)cd.cfg.catchup_turn_bytes,
	    aotime_mono_us() + CATCHUP_TURN_US);
	peer_cork(true);
	while ((s = TAILQ_FIRST(&cd.catchq)) != NULL &&
	    sub_turn_more(&t, aotime_mono_us())) {
		catchq_remove(s);
		if (sub_serve(s, &t) == SERVE_CUT)
			catchq_add(s);
	}
	peer_cork(false);
	memtrim_note(t.bytes);
	cd.turns++;
	if (t.spent)
		cd.turns_cut++;
	if (!TAILQ_EMPTY(&cd.catchq))
		catchup_kick();
}

/* reset {oldest, head}, the snapshot, snapshot_end {seq}; then events after seq. */
static void
sub_reset(struct sub *s, int64_t oldest, int64_t head)
{
	struct rpc_buf b;
	char err[512];
	int64_t seq;
	int n;

	log_info("subscriber %llu: reset (cursor %lld, retained %lld..%lld)",
	    (unsigned long long)s->id, (long long)s->cursor, (long long)oldest,
	    (long long)head);
	rpc_buf_init(&b);
	msgpack_pack_map(&b.pk, 2);
	rpc_pack_kv_i64(&b.pk, "oldest", oldest);
	rpc_pack_kv_i64(&b.pk, "head", head);
	peer_notify(s->peer, "reset", b.sb.data, b.sb.size);
	rpc_buf_reset(&b);
	n = reader_snapshot(&cd.rd, &b, &seq, err, sizeof(err));
	if (n == -1) {
		rpc_buf_free(&b);
		log_warnx("subscriber %llu: %s", (unsigned long long)s->id, err);
		peer_close(s->peer, "snapshot failed");
		return;
	}
	if (b.sb.size > 0 && peer_send(s->peer, b.sb.data, b.sb.size) == -1) {
		rpc_buf_free(&b);
		return;
	}
	rpc_buf_reset(&b);
	msgpack_pack_map(&b.pk, 1);
	rpc_pack_kv_i64(&b.pk, "seq", seq);
	peer_notify(s->peer, "snapshot_end", b.sb.data, b.sb.size);
	rpc_buf_free(&b);
	s->cursor = seq;
	s->mode = SUB_CATCHUP;
	/* A durable consumer's offset restarts from the snapshot too. */
	if (s->consumer != NULL && s->acked > seq)
		s->acked = s->committed = seq;
}

static int
parse_types(struct rpc_params *p, struct sub_filter *f)
{
	const char **types;
	size_t n, i;
	int j, r;

	if ((r = rpc_get_str_array(p, "types", RPC_OPTIONAL, &types, &n)) != 1)
		return r;
	f->types = xcalloc(n + 1, sizeof(*f->types));
	for (i = 0; i < n; i++) {
		for (j = 0; event_types[j] != NULL; j++)
			if (strcmp(types[i], event_types[j]) == 0)
				break;
		if (event_types[j] == NULL)
			return rpc_error_set(p->err, RPC_BAD_REQUEST, "types: unknown "
			    "event type '%s' (session_created, session_updated, "
			    "pr_created, pr_updated, pr_check_recorded, "
			    "notification_created, project_added, project_archived)",
			    types[i]);
		f->types[f->ntypes++] = xstrdup(types[i]);
	}
	return 1;
}

static void
handle_subscribe(struct peer_req *req, void *arg)
{
	struct sub *s = peer_udata(req->peer);
	struct sub_filter f = { 0 };
	struct rpc_params p;
	struct rpc_error err;
	struct rpc_buf out;
	const char *project = NULL, *session = NULL, *consumer = NULL;
	int64_t from = 0, head, oldest, stored;
	int has_from;

	(void)arg;
	rpc_error_clear(&err);
	if (rpc_params_init(&p, req->params, req->zone, NULL, &err) == -1 ||
	    (has_from = rpc_get_i64(&p, "from", RPC_OPTIONAL, &from)) == -1 ||
	    rpc_get_str(&p, "project_id", RPC_OPTIONAL, &project) == -1 ||
	    rpc_get_str(&p, "session_id", RPC_OPTIONAL, &session) == -1 ||
	    parse_types(&p, &f) == -1 ||
	    rpc_get_str(&p, "consumer", RPC_OPTIONAL, &consumer) == -1 ||
	    rpc_params_end(&p) == -1) {
		sub_filter_free(&f);
		peer_reply_error(req, &err);
		return;
	}
	if (s->subscribed) {
		sub_filter_free(&f);
		peer_reply_errorf(req, RPC_CONFLICT, "this connection already has a "
		    "subscription (one per connection; unsubscribe first)");
		return;
	}
	if (has_from && from < 0) {
		sub_filter_free(&f);
		peer_reply_errorf(req, RPC_BAD_REQUEST, "from must be >= 0");
		return;
	}
	if (consumer != NULL && consumer[0] == '\0') {
		sub_filter_free(&f);
		peer_reply_errorf(req, RPC_BAD_REQUEST, "consumer must not be empty");
		return;
	}
	poll_db();
	if (!cd.rd_open || reader_bounds(&cd.rd, &head, &oldest) == -1) {
		sub_filter_free(&f);
		peer_reply_errorf(req, RPC_UNAVAILABLE, "the database is not readable "
		    "yet (is ao-storaged running?)");
		return;
	}
	if (consumer != NULL) {
		int r = reader_consumer(&cd.rd, consumer, &stored);

		if (r == -1) {
			sub_filter_free(&f);
			peer_reply_errorf(req, RPC_UNAVAILABLE, "reading consumer "
			    "offsets: %s", sqlite3_errmsg(cd.rd.db));
			return;
		}
		if (r == 1) {
			from = stored;
			has_from = 1;
		}
		s->consumer = xstrdup(consumer);
	}
	if (!has_from)
		from = head;
	f.project_id = project != NULL ? xstrdup(project) : NULL;
	f.session_id = session != NULL ? xstrdup(session) : NULL;
	s->filter = f;
	s->subscribed = true;
	s->cursor = from;
	s->acked = s->committed = from;
	s->mode = SUB_CATCHUP;
	s->progress_ms = aotime_mono_ms();

	rpc_buf_init(&out);
	msgpack_pack_map(&out.pk, 2);
	rpc_pack_kv_i64(&out.pk, "head", head);
	rpc_pack_kv_i64(&out.pk, "oldest", oldest);
	peer_reply(req, out.sb.data, out.sb.size);
	rpc_buf_free(&out);
	log_debug("subscriber %llu: from %lld%s%s", (unsigned long long)s->id,
	    (long long)from, consumer != NULL ? " consumer " : "",
	    consumer != NULL ? consumer : "");
	if (sub_needs_reset(from, oldest, head))
		sub_reset(s, oldest, head);
	if (!s->gone)
		catchq_add(s);
}

static void commit_offset(struct sub *);

static void
handle_unsubscribe(struct peer_req *req, void *arg)
{
	struct sub *s = peer_udata(req->peer);

	(void)arg;
	if (peer_req_no_params(req) == -1)
		return;
	if (s->consumer != NULL)
		commit_offset(s);
	s->subscribed = false;
	catchq_remove(s);
	sub_filter_free(&s->filter);
	free(s->consumer);
	s->consumer = NULL;
	peer_reply(req, "\x80", 1);
}

static void
handle_ack(struct peer_req *req, void *arg)
{
	struct sub *s = peer_udata(req->peer);
	struct rpc_params p;
	struct rpc_error err;
	int64_t seq;

	(void)arg;
	rpc_error_clear(&err);
	if (rpc_params_init(&p, req->params, req->zone, NULL, &err) == -1 ||
	    rpc_get_i64(&p, "seq", RPC_REQUIRED, &seq) == -1 ||
	    rpc_params_end(&p) == -1) {
		peer_reply_error(req, &err);
		return;
	}
	if (!s->subscribed || s->consumer == NULL) {
		peer_reply_errorf(req, RPC_INVALID_STATE, "ack needs a subscription "
		    "with a consumer name");
		return;
	}
	if (seq < 0 || seq > s->cursor) {
		peer_reply_errorf(req, RPC_BAD_REQUEST, "seq %lld was not delivered "
		    "(delivered up to %lld)", (long long)seq, (long long)s->cursor);
		return;
	}
	if (seq > s->acked)
		s->acked = seq;
	peer_reply(req, "\x80", 1);
}

struct commit_ctx {
	uint64_t sub_id;
	int64_t seq;
};

static struct sub *
sub_by_id(uint64_t id)
{
	struct sub *s;

	TAILQ_FOREACH(s, &cd.subs, entry)
		if (s->id == id)
			return s;
	return NULL;
}

static void
commit_done(void *arg, const struct rpc_error *err, const msgpack_object *result)
{
	struct commit_ctx *c = arg;
	struct sub *s = sub_by_id(c->sub_id);

	(void)result;
	cd.commits_inflight--;
	if (s != NULL) {
		s->commit_inflight = false;
		if (err == NULL && c->seq > s->committed)
			s->committed = c->seq;
	}
	if (err != NULL)
		log_debug("consumer.commit: %s (will retry)", err->message);
	free(c);
}

/* Stores the consumer's acknowledged offset through storaged. */
static void
commit_offset(struct sub *s)
{
	struct commit_ctx *c;
	struct rpc_buf b;

	if (s->consumer == NULL || s->acked <= s->committed || s->commit_inflight)
		return;
	c = xmalloc(sizeof(*c));
	c->sub_id = s->id;
	c->seq = s->acked;
	rpc_buf_init(&b);
	msgpack_pack_map(&b.pk, 2);
	rpc_pack_kv_str(&b.pk, "name", s->consumer);
	rpc_pack_kv_i64(&b.pk, "seq", s->acked);
	s->commit_inflight = true;
	cd.commits_inflight++;
	client_call(cd.storaged, "consumer.commit", b.sb.data, b.sb.size, 5000,
	    commit_done, c);
	rpc_buf_free(&b);
}

static void
ack_cb(evutil_socket_t fd, short what, void *arg)
{
	struct sub *s;

	(void)fd;
	(void)what;
	(void)arg;
	TAILQ_FOREACH(s, &cd.subs, entry)
		commit_offset(s);
}

static void
handle_stats(struct peer_req *req, void *arg)
{
	struct rpc_buf b;
	struct sub *s;
	uint32_t n = 0;

	(void)arg;
	TAILQ_FOREACH(s, &cd.subs, entry)
		if (s->subscribed)
			n++;
	rpc_buf_init(&b);
	msgpack_pack_map(&b.pk, 6);
	rpc_pack_str(&b.pk, "subscribers");
	msgpack_pack_array(&b.pk, n);
	TAILQ_FOREACH(s, &cd.subs, entry) {
		if (!s->subscribed)
			continue;
		msgpack_pack_map(&b.pk, 9);
		rpc_pack_kv_i64(&b.pk, "id", (int64_t)s->id);
		rpc_pack_kv_i64(&b.pk, "pid", peer_pid(s->peer));
		rpc_pack_kv_i64(&b.pk, "cursor", s->cursor);
		rpc_pack_kv_i64(&b.pk, "lag", cd.ring.last - s->cursor);
		rpc_pack_kv_i64(&b.pk, "buffered_bytes", (int64_t)peer_outlen(s->peer));
		rpc_pack_kv_i64(&b.pk, "peak_buffered_bytes", (int64_t)s->peak_out);
		rpc_pack_kv_str(&b.pk, "mode", s->mode == SUB_LIVE ? "live" : "catchup");
		rpc_pack_kv_str(&b.pk, "consumer", s->consumer);
		rpc_pack_kv_i64(&b.pk, "delivered", (int64_t)s->delivered);
	}
	rpc_pack_kv_i64(&b.pk, "head", cd.ring.last);
	rpc_pack_str(&b.pk, "ring");
	msgpack_pack_map(&b.pk, 5);
	rpc_pack_kv_i64(&b.pk, "events", (int64_t)cd.ring.n);
	rpc_pack_kv_i64(&b.pk, "bytes", (int64_t)cd.ring.bytes);
	rpc_pack_kv_i64(&b.pk, "base", cd.ring.base);
	rpc_pack_kv_i64(&b.pk, "last", cd.ring.last);
	rpc_pack_kv_i64(&b.pk, "evicted", (int64_t)cd.ring.evicted);
	rpc_pack_str(&b.pk, "catchup");
	msgpack_pack_map(&b.pk, 3);
	rpc_pack_kv_i64(&b.pk, "queued", (int64_t)cd.nqueued);
	rpc_pack_kv_i64(&b.pk, "turns", (int64_t)cd.turns);
	rpc_pack_kv_i64(&b.pk, "turns_cut", (int64_t)cd.turns_cut);
	rpc_pack_memory(&b.pk);
	rpc_pack_str(&b.pk, "events_per_s");
	msgpack_pack_double(&b.pk, cd.events_per_s);
	peer_reply(req, b.sb.data, b.sb.size);
	rpc_buf_free(&b);
}

/* Once a second: events/s, and closing subscribers that stopped reading. */
static void
tick_cb(evutil_socket_t fd, short what, void *arg)
{
	int64_t now = aotime_mono_ms();
	struct sub *s, *next;
	struct rpc_buf b;
	char reason[128];

	(void)fd;
	(void)what;
	(void)arg;
	if (now > cd.tick_ms)
		cd.events_per_s = (double)(cd.appended - cd.appended_at_tick) * 1000.0 /
		    (double)(now - cd.tick_ms);
	cd.appended_at_tick = cd.appended;
	cd.tick_ms = now;
	TAILQ_FOREACH_SAFE(s, &cd.subs, entry, next) {
		size_t out = peer_outlen(s->peer);

		if (s->closing_since != 0) {
			if (now - s->closing_since >= CLOSE_GRACE_MS)
				peer_close(s->peer, "stalled: closing notice unread");
			continue;
		}
		if (out < s->last_out || out == 0)
			s->progress_ms = now;
		s->last_out = out;
		if (!s->subscribed || !sub_stalled(out, s->progress_ms, now,
		    cd.cfg.stall_timeout_ms))
			continue;
		snprintf(reason, sizeof(reason), "stalled: no read progress for %lld ms",
		    (long long)(now - s->progress_ms));
		log_warnx("subscriber %llu (pid %ld): %s", (unsigned long long)s->id,
		    (long)peer_pid(s->peer), reason);
		rpc_buf_init(&b);
		msgpack_pack_map(&b.pk, 1);
		rpc_pack_kv_str(&b.pk, "reason", reason);
		/* Past the high-water mark on purpose: it is the last message. */
		peer_notify(s->peer, "closing", b.sb.data, b.sb.size);
		rpc_buf_free(&b);
		s->closing_since = now;
		s->subscribed = false;
		peer_close_after_flush(s->peer, reason);
	}
}

static void
on_open(struct peer *p, void *arg)
{
	struct sub *s = xcalloc(1, sizeof(*s));

	(void)arg;
	s->peer = p;
	s->id = ++cd.next_id;
	s->progress_ms = aotime_mono_ms();
	TAILQ_INSERT_TAIL(&cd.subs, s, entry);
	peer_set_udata(p, s);
}

static void
sub_free_cb(evutil_socket_t fd, short what, void *arg)
{
	struct sub *s = arg;

	(void)fd;
	(void)what;
	sub_filter_free(&s->filter);
	free(s->consumer);
	free(s);
}

/*
 * A send can close the connection from inside sub_serve or sub_reset: the
 * sub is unlinked here but freed from the loop, so those callers can still
 * look at s->gone.
 */
static void
on_close(struct peer *p, const char *reason, void *arg)
{
	struct sub *s = peer_udata(p);

	(void)arg;
	if (s == NULL)
		return;
	log_debug("subscriber %llu gone: %s", (unsigned long long)s->id, reason);
	catchq_remove(s);
	memtrim_note(s->peak_out);	/* what its output may have held */
	s->commit_inflight = false;
	commit_offset(s);	/* best effort: the last acks */
	TAILQ_REMOVE(&cd.subs, s, entry);
	s->gone = true;
	s->subscribed = false;
	peer_set_udata(p, NULL);
	if (event_base_once(cd.base, -1, EV_TIMEOUT, sub_free_cb, s, NULL) == -1)
		fatalx("event_base_once failed");
}

static void
on_drain(struct peer *p, void *arg)
{
	struct sub *s = peer_udata(p);

	(void)arg;
	if (s != NULL && s->subscribed) {
		s->progress_ms = aotime_mono_ms();
		if (s->mode == SUB_CATCHUP)
			catchq_add(s);
	}
}

/*
 * storaged registers the watch when it reads the request, which may be after
 * it committed (and announced to no one) something the poll at connect did
 * not see yet.  Everything up to the reply is read here; every commit after
 * it sends a wake.
 */
static void
watch_reply(void *arg, const struct rpc_error *err, const msgpack_object *result)
{
	(void)result;
	(void)arg;
	if (err != NULL)
		log_warnx("storaged watch: %s", err->message);
	poll_db();
}

static void
storaged_connect(struct client *c, void *arg)
{
	(void)arg;
	client_call(c, "watch", NULL, 0, 5000, watch_reply, NULL);
	poll_db();
}

/* The head in `committed {head}`; other keys are ignored. */
static bool
committed_head(const msgpack_object *params, int64_t *head)
{
	const msgpack_object_kv *kv;
	uint32_t i;

	if (params == NULL || params->type != MSGPACK_OBJECT_MAP)
		return false;
	for (i = 0; i < params->via.map.size; i++) {
		kv = &params->via.map.ptr[i];
		if (kv->key.type == MSGPACK_OBJECT_STR && kv->key.via.str.size == 4 &&
		    memcmp(kv->key.via.str.ptr, "head", 4) == 0 &&
		    kv->val.type == MSGPACK_OBJECT_POSITIVE_INTEGER &&
		    kv->val.via.u64 <= INT64_MAX) {
			*head = (int64_t)kv->val.via.u64;
			return true;
		}
	}
	return false;
}

static void
storaged_notify(struct client *c, const char *method, const msgpack_object *params,
    void *arg)
{
	int64_t head;

	(void)c;
	(void)arg;
	if (strcmp(method, "committed") != 0)
		return;
	if (committed_head(params, &head))
		on_committed(head);
	else
		poll_db();
}

int
main(int argc, char **argv)
{
	static const struct server_method methods[] = {
		{ "subscribe", handle_subscribe },
		{ "unsubscribe", handle_unsubscribe },
		{ "ack", handle_ack },
		{ "stats", handle_stats },
		{ NULL, NULL },
	};
	static const struct server_cbs scbs = { on_open, on_close, NULL, on_drain };
	static const struct client_cbs ccbs = { storaged_connect, NULL,
		storaged_notify };
	struct daemon_signals *sigs;
	struct peer_limits lim;
	struct timeval tv;
	char sock[PATH_MAX], err[512];
	struct sub *s;
	int fd;

	memset(&cd, 0, sizeof(cd));
	TAILQ_INIT(&cd.subs);
	TAILQ_INIT(&cd.catchq);
	daemon_init(&cd.opts, argc, argv, "cdcd",
	    "Streams every change in ao.db to subscribers, in order.",
	    cdcd_keys, &cd.cfg);
	signal(SIGPIPE, SIG_IGN);
	snprintf(cd.dbpath, sizeof(cd.dbpath), "%s/ao.db", cd.opts.paths.data_dir);
	if (paths_socket(&cd.opts.paths, "storaged.sock", sock, sizeof(sock), err,
	    sizeof(err)) == -1)
		fatalx_perm("%s", err);
	ring_init(&cd.ring, (size_t)cd.cfg.ring_bytes, 0);
	fd = daemon_listen(&cd.opts, "cdcd.sock");

	cd.base = event_base_new();
	if (cd.base == NULL)
		fatalx("event_base_new failed");
	if (server_limits_config(&lim, cd.cfg.max_message_bytes,
	    cd.cfg.message_timeout_ms, cd.cfg.max_unfinished_bytes, err,
	    sizeof(err)) == -1)
		fatalx_perm("%s", err);
	/*
	 * cdcd keeps each subscriber under subscriber_buffer_bytes itself; the
	 * peer's hard cap is only a backstop, and reading (acks) never pauses
	 * because of event output.
	 */
	if (lim.out_cap < 4 * (size_t)cd.cfg.subscriber_buffer_bytes + lim.max_msg)
		lim.out_cap = 4 * (size_t)cd.cfg.subscriber_buffer_bytes + lim.max_msg;
	lim.out_hiwat = lim.out_cap;
	lim.out_lowat = (size_t)cd.cfg.subscriber_buffer_bytes / 4;
	cd.srv = server_new(cd.base, fd, "cdcd", methods, &scbs, NULL, &lim);
	cd.storaged = client_new(cd.base, sock, &ccbs, NULL, NULL);

	cd.poll_ev = event_new(cd.base, -1, EV_PERSIST, poll_cb, NULL);
	aotime_tv(&tv, cd.cfg.poll_ms);
	event_add(cd.poll_ev, &tv);
	cd.ack_ev = event_new(cd.base, -1, EV_PERSIST, ack_cb, NULL);
	aotime_tv(&tv, ACK_EVERY_MS);
	event_add(cd.ack_ev, &tv);
	cd.catchup_ev = evtimer_new(cd.base, catchup_cb, NULL);
	/*
	 * Output queued for subscribers is the heap's churn: once it stops
	 * for a second, freed pages go back to the kernel (common/memtrim.h:
	 * after 100 subscribers of live load, 113 MiB of heap held 6 MiB).
	 */
	memtrim_init(cd.base, MEMTRIM_QUIET_MS, MEMTRIM_MIN_BYTES);
	cd.tick_ev = event_new(cd.base, -1, EV_PERSIST, tick_cb, NULL);
	aotime_tv(&tv, 1000);
	event_add(cd.tick_ev, &tv);
	cd.tick_ms = aotime_mono_ms();
	sigs = daemon_signals(cd.base);
	reader_ready();
	log_debug("batched socket sends: %s", sendbatch_backend());
	daemon_ready(&cd.opts);
	event_base_dispatch(cd.base);

	/* The last acks reach storaged before we go (up to 1 s). */
	TAILQ_FOREACH(s, &cd.subs, entry)
		commit_offset(s);
	{
		int64_t deadline = aotime_mono_ms() + 1000;
		struct timeval tick = { 0, 10000 };

		while (cd.commits_inflight > 0 && aotime_mono_ms() < deadline) {
			event_base_loopexit(cd.base, &tick);
			event_base_dispatch(cd.base);
		}
	}
	server_free(cd.srv);
	client_free(cd.storaged);
	event_base_loop(cd.base, EVLOOP_NONBLOCK);
	daemon_signals_free(sigs);
	event_free(cd.poll_ev);
	event_free(cd.ack_ev);
	event_free(cd.tick_ev);
	event_free(cd.catchup_ev);
	memtrim_shutdown();
	event_base_free(cd.base);
	if (cd.rd_open)
		reader_close(&cd.rd);
	ring_free(&cd.ring);
	daemon_opts_free(&cd.opts);
	return 0;
}
