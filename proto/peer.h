/*
 * A msgpack-rpc connection over a libevent bufferevent, symmetric like tmux's
 * peers: either side may send requests, responses and notifications.
 *
 * Input: bytes go through the bounded scanner; a complete message is
 * unpacked and dispatched.  A framing violation closes the connection with a
 * logged reason.  A malformed envelope of a request is answered with
 * bad_request when its msgid is readable, else the connection is closed.
 * A notification is never a reason to close: one ao cannot use (a method
 * that is not UTF-8 str or bin, params other than [] or [map]) is dropped,
 * logged at debug, and on_notify sees only the others.
 *
 * Unfinished input: a message whose first bytes have arrived must complete
 * within msg_timeout_ms of reading it, or the connection is closed (the
 * clock starts again when reading resumes after backpressure).  The bytes
 * of unfinished messages of every peer of the process are capped
 * (peer_set_unfinished_cap): past the cap the peer whose unfinished message
 * is the oldest is closed, until the rest fits.  Both are logged warnings.
 *
 * Output accounting: every send is counted against out_cap.  A send that
 * would take the output buffer past out_cap closes the connection ("output
 * buffer overflow") — the policy for a peer that stops reading.  While the
 * output is above out_hiwat, or max_inflight requests are unanswered, the
 * peer stops reading (backpressure instead of memory growth).  on_drain fires
 * when the output falls to out_lowat after having been above it.
 *
 * Lifetime: peer_close() (or any I/O error / EOF) calls on_close exactly once,
 * fails every pending call with `unavailable`, detaches every unanswered
 * incoming request (their replies are dropped) and frees the peer from the
 * event loop later, so a callback may close its own peer safely.
 */
#ifndef AO_PEER_H
#define AO_PEER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <bsd/sys/queue.h>
#include <sys/types.h>

#include <event2/event.h>
#include <msgpack.h>

#include "proto/rpc.h"

struct peer;

#define PEER_DEFAULT_MSG_TIMEOUT_MS	10000
#define PEER_DEFAULT_UNFINISHED_CAP	(64u * 1024 * 1024)

struct peer_limits {
	size_t max_msg;		/* largest incoming message (16 MiB) */
	size_t max_objects;	/* objects per incoming message */
	size_t out_cap;		/* output hard cap: past it the peer is closed */
	size_t out_hiwat;	/* stop reading above this */
	size_t out_lowat;	/* on_drain / resume reading at or below this */
	unsigned max_inflight;	/* unanswered incoming requests before pausing */
	int64_t msg_timeout_ms;	/* for an unfinished message (0: none) */
	/*
	 * Its unfinished input counts in the process-wide cap (servers: what
	 * any local process sends).  A daemon's own connection to a peer
	 * daemon does not: a long answer on it must never be the one evicted.
	 */
	bool pooled;
};

/*
 * The defaults: 16 MiB messages of up to 4,194,304 objects (what a client
 * reading ao's own daemons needs; servers take fewer, see server.h), a 10 s
 * deadline for a message, 64 MiB of output at most.
 */
void peer_limits_default(struct peer_limits *);

/*
 * Process-wide cap on the bytes of unfinished incoming messages over all
 * peers (PEER_DEFAULT_UNFINISHED_CAP until set), and what they hold now.
 */
void peer_set_unfinished_cap(size_t);
size_t peer_unfinished_bytes(void);

/* An incoming request; the handler owns it until it replies. */
struct peer_req {
	struct peer *peer;		/* NULL once the connection is gone */
	uint32_t msgid;
	const char *method;
	const msgpack_object *params;	/* a map, or NULL */
	msgpack_zone *zone;
	msgpack_unpacked msg;		/* owns the memory above, with raw */
	char *raw;			/* the message bytes: msgpack-c's strings point here */
	void *udata;
	int64_t received_us;
	TAILQ_ENTRY(peer_req) entry;
};

struct peer_cbs {
	void (*on_request)(struct peer *, struct peer_req *, void *arg);
	void (*on_notify)(struct peer *, const char *method,
	    const msgpack_object *params, void *arg);
	void (*on_close)(struct peer *, const char *reason, void *arg);
	void (*on_drain)(struct peer *, void *arg);
};

/* Reply callback: err is NULL on success (result then valid), else result is NULL. */
typedef void (*peer_reply_fn)(void *arg, const struct rpc_error *err,
    const msgpack_object *result);

/* Takes ownership of fd (a connected stream socket). */
struct peer *peer_new(struct event_base *, int fd, const struct peer_limits *,
    const struct peer_cbs *, void *arg);

/* Closes now: on_close(reason) runs before this returns, unless already closed. */
void peer_close(struct peer *, const char *reason);
/* Stops reading, sends what is buffered, then closes. */
void peer_close_after_flush(struct peer *, const char *reason);
bool peer_closed(const struct peer *);

/*
 * Sends one complete msgpack message.  Returns 0, or -1 when the peer is
 * closed or the send took it past out_cap (the peer is then closed).
 */
int peer_send(struct peer *, const void *buf, size_t len);
/*
 * Same, without copying: the peer references buf until it is written, then
 * calls cleanup(buf, len, arg).  cleanup runs even when the send fails.
 */
int peer_send_ref(struct peer *, const void *buf, size_t len,
    void (*cleanup)(const void *, size_t, void *), void *arg);

/*
 * Sends a request.  params is one packed msgpack map (or NULL/0 for none).
 * cb (which may be NULL: fire and forget) runs exactly once: with the
 * response, or with `unavailable` on timeout
 * (timeout_ms > 0) or when the connection closes.  cb never runs before
 * peer_call returns.  Returns 0, or -1 when the peer is already closed (cb is
 * then still called, from the event loop).
 */
int peer_call(struct peer *, const char *method, const void *params, size_t plen,
    int64_t timeout_ms, peer_reply_fn cb, void *arg);
/* Cancels the callbacks of pending calls whose arg is `arg` (they never run). */
void peer_cancel_calls(struct peer *, void *arg);
void peer_cancel_all_calls(struct peer *);
/* Runs cb(arg, err, NULL) from the event loop, never re-entrantly. */
void peer_schedule_error(struct event_base *, peer_reply_fn cb, void *arg,
    const struct rpc_error *err);

int peer_notify(struct peer *, const char *method, const void *params, size_t plen);

/*
 * Between peer_cork(true) and the matching peer_cork(false) sends collect
 * per peer, and the outermost peer_cork(false) sends them all with one
 * system call (io_uring; one sendmsg per peer where it is unavailable; see
 * common/sendbatch.h): a fan-out to many subscribers, or a group commit's
 * answers, in one go.  Order per peer is kept, peer_outlen counts what is
 * collected, and what a socket does not take is queued as usual.  Outside,
 * a send to a peer with nothing queued is written at once.  Corks nest;
 * never hold one across a return to the event loop.
 */
void peer_cork(bool);

/* Replies and frees the request.  result is one packed msgpack object. */
void peer_reply(struct peer_req *, const void *result, size_t len);
void peer_reply_error(struct peer_req *, const struct rpc_error *);
void peer_reply_errorf(struct peer_req *, enum rpc_code, const char *fmt, ...)
    AO_PRINTF(3, 4);
/*
 * For methods that take no parameters: 0 when the request has none, else
 * -1 after answering it with the error (an unknown parameter).
 */
int peer_req_no_params(struct peer_req *);
/* Frees a request without replying (only for requests whose peer is gone). */
void peer_req_free(struct peer_req *);

size_t peer_outlen(const struct peer *);
size_t peer_pending_calls(const struct peer *);
/* Complete messages received so far (framing-valid, whatever their envelope). */
uint64_t peer_messages_in(const struct peer *);
uid_t peer_uid(const struct peer *);
pid_t peer_pid(const struct peer *);
void peer_set_creds(struct peer *, uid_t, pid_t);
void peer_set_udata(struct peer *, void *);
void *peer_udata(const struct peer *);
struct event_base *peer_base(const struct peer *);

#endif
