/* ao-cdcd: change-log fan-out to subscribers (DESIGN.md §5).  Private header. */
#ifndef AO_CDCD_H
#define AO_CDCD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sqlite3.h>

#include "proto/rpc.h"

struct cdcd_config {
	int64_t poll_ms;			/* PRAGMA data_version poll */
	int64_t subscriber_buffer_bytes;	/* output high-water mark */
	int64_t stall_timeout_ms;		/* close a reader that stopped */
	int64_t max_message_bytes;		/* largest msgpack-rpc message */
	int64_t message_timeout_ms;		/* an unfinished message's deadline */
	int64_t max_unfinished_bytes;		/* cap over all connections (0: auto) */
	int64_t ring_bytes;			/* shared in-memory event cache */
	int64_t catchup_turn_bytes;		/* a catch-up turn's budget */
};

/*
 * ring.c — the shared cache of encoded events.  Each event's notification
 * bytes are encoded once into a reference-counted buffer that every
 * subscriber's output references; the ring drops its oldest events past
 * max_bytes.  The ring holds every event with base < seq <= last.
 */
struct ring_buf {
	unsigned refs;
	size_t len;
	char data[];
};

struct ring_entry {
	int64_t seq;
	char *project_id;	/* NULL when the event has none */
	char *session_id;
	char *type;
	struct ring_buf *buf;	/* the whole [2, "event", [...]] message */
};

struct ring {
	struct ring_entry *v;	/* circular: v[(start + i) % cap] */
	size_t start, n, cap;
	size_t bytes, max_bytes;
	int64_t base, last;
	uint64_t evicted;
};

struct ring_buf *ring_buf_new(const void *data, size_t len);
void ring_buf_ref(struct ring_buf *);
void ring_buf_unref(struct ring_buf *);

void ring_init(struct ring *, size_t max_bytes, int64_t base);
void ring_free(struct ring *);
/* Forgets everything; the ring then starts after `base`. */
void ring_reset(struct ring *, int64_t base);
/*
 * Appends an event (seq > last; takes the strings and one reference to
 * buf) and evicts the oldest while over max_bytes, keeping at least one.
 */
void ring_append(struct ring *, int64_t seq, const char *project_id,
    const char *session_id, const char *type, struct ring_buf *buf);
/* The first event with seq > after, or NULL.  Requires after >= base. */
const struct ring_entry *ring_after(const struct ring *, int64_t after);
/* The entry following e, or NULL at the end. */
const struct ring_entry *ring_next(const struct ring *, const struct ring_entry *e);

/*
 * sub.c — the subscriber decisions, as pure functions.
 *
 *   subscribe ──► [check_from] ── gap ──► RESET: reset, snapshot…,
 *                      │                  snapshot_end, then CATCHUP
 *                      ok
 *                      ▼
 *    ┌──────────► CATCHUP ── cursor reaches ring.last ──► LIVE
 *    │     (ring or database, at the pace its socket drains)  │
 *    └──────── output past the high-water mark ───────────────┘
 *
 * A CATCHUP subscriber is served in catch-up turns, never inline: it waits
 * in a round-robin queue while it may be sent more, and each turn serves
 * the queue in order within the turn's budget (struct sub_turn).  Live
 * subscribers are fed as events are read, outside the turns.
 *
 *   queued ── a turn: served until ──┬─ its high-water mark ─► waits for drain
 *     ▲                              ├─ the budget ──────────► back of the queue
 *     │                              └─ ring.last ───────────► LIVE
 *     └──────── on_drain, subscribe, a reset ─────────────────────┘
 */
enum sub_mode {
	SUB_CATCHUP,
	SUB_LIVE,
};

struct sub_filter {
	char *project_id;	/* NULL: any */
	char *session_id;
	char **types;		/* NULL: any type; else ntypes names */
	size_t ntypes;
};

bool sub_filter_match(const struct sub_filter *, const char *project_id,
    const char *session_id, const char *type);
void sub_filter_free(struct sub_filter *);

/*
 * A cursor needs a reset when it is past the head, or when events after it
 * were pruned (from 0 means the whole retained log and never does).
 */
bool sub_needs_reset(int64_t from, int64_t oldest, int64_t head);

enum sub_source {
	SUB_SRC_NONE,	/* caught up: go live */
	SUB_SRC_RING,
	SUB_SRC_DB,
};
enum sub_source sub_source(int64_t cursor, int64_t ring_base, int64_t ring_last);

/*
 * Whether a subscriber with this much unsent output may be sent more.
 * Asked before each event (with a batch being built counted in buffered),
 * so an output holds at most high_water - 1 plus one event, and an event
 * larger than the mark still goes, alone.
 */
bool sub_can_send(size_t buffered, size_t high_water);

/*
 * One catch-up turn's budget, shared by every subscriber it serves: bytes
 * sent and a deadline.  The first event of a turn always goes, so each turn
 * moves the subscriber at the head of the queue on, whatever an event
 * costs; later ones go while both limits hold.
 */
struct sub_turn {
	size_t max_bytes;
	int64_t deadline_us;	/* monotonic */
	size_t bytes;		/* sent in this turn */
	uint64_t events;	/* looked at in this turn, filtered out or sent */
	bool spent;		/* a limit stopped the turn */
};

void sub_turn_begin(struct sub_turn *, size_t max_bytes, int64_t deadline_us);
/*
 * Whether the turn may take one more event.  now_us is the monotonic clock,
 * or 0 where reading it is not worth it (the ring): only bytes count then.
 */
bool sub_turn_more(struct sub_turn *, int64_t now_us);
/* Counts one event the turn took: bytes sent, 0 when filtered out. */
void sub_turn_took(struct sub_turn *, size_t bytes);

/* Whether a subscriber whose output last shrank at progress_ms has stalled. */
bool sub_stalled(size_t buffered, int64_t progress_ms, int64_t now_ms,
    int64_t stall_ms);

/* reader.c — read-only access to ao.db. */
struct reader_event {
	int64_t seq;
	const char *project_id, *session_id, *type;
	const char *payload;	/* JSON text */
	size_t payload_len;
	int64_t at;
};

struct reader {
	sqlite3 *db;
	sqlite3_stmt *events, *head, *oldest, *version, *consumer;
};

int reader_open(struct reader *, const char *path, char *err, size_t errlen);
void reader_close(struct reader *);
/* PRAGMA data_version: changes when another connection commits. */
int reader_data_version(struct reader *, int64_t *);
int reader_bounds(struct reader *, int64_t *head, int64_t *oldest);
/*
 * Calls fn for each event with seq > after, in order, at most limit, until
 * fn returns -1: that event is not taken (nor read past).  Returns the
 * number of events taken, or -1 with err.
 */
int reader_events(struct reader *, int64_t after, int limit,
    int (*fn)(void *, const struct reader_event *), void *arg,
    char *err, size_t errlen);
/* 1 with *seq when the consumer has an offset, 0 when it has none, -1. */
int reader_consumer(struct reader *, const char *name, int64_t *seq);
/*
 * Packs the snapshot notifications (one `snapshot` message per project,
 * session and PR) into out, all read in one transaction, and stores the
 * head that snapshot corresponds to.  Returns the count, or -1 with err.
 */
int reader_snapshot(struct reader *, struct rpc_buf *out, int64_t *seq,
    char *err, size_t errlen);

/* Encodes `[2, "event", [{seq, project_id, session_id, type, payload, at}]]`. */
void reader_encode_event(struct rpc_buf *, const struct reader_event *);

#endif
