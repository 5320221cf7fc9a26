/*
 * A reconnecting client for daemons (lcmd → storaged, cdcd → storaged,
 * reaperd → lcmd).  Connects to a socket path and says `hello` at once;
 * when the peer goes away it reconnects with backoff (50 ms doubling to
 * 2 s).  Only a `hello` answered resets the backoff, so a server that
 * accepts and closes at once is not retried 20 times a second.  Calls made
 * while disconnected fail fast with `unavailable`; calls in flight when the
 * connection drops fail with `unavailable`; nothing hangs.
 */
#ifndef AO_CLIENT_H
#define AO_CLIENT_H

#include <stdbool.h>

#include "proto/peer.h"

#define CLIENT_BACKOFF_MIN_MS	50
#define CLIENT_BACKOFF_MAX_MS	2000
#define CLIENT_HELLO_TIMEOUT_MS	10000	/* unanswered: close, back off, retry */

struct client;

struct client_cbs {
	/*
	 * Connected (again), and the server answered hello: the place to
	 * re-issue subscriptions such as `watch`.
	 */
	void (*on_connect)(struct client *, void *arg);
	void (*on_disconnect)(struct client *, const char *reason, void *arg);
	void (*on_notify)(struct client *, const char *method,
	    const msgpack_object *params, void *arg);
};

/*
 * Connects at once, so calls can be made right away (they follow the
 * hello); on_connect always runs from the event loop, never inside
 * client_new.  limits may be NULL.
 */
struct client *client_new(struct event_base *, const char *path,
    const struct client_cbs *, void *arg, const struct peer_limits *);
/* Pending calls are cancelled: their callbacks never run. */
void client_free(struct client *);

/* Connected: calls go out (behind the hello sent on connect). */
bool client_connected(const struct client *);
/* Connected and the server has answered hello (on_connect has run). */
bool client_ready(const struct client *);
struct event_base *client_base(const struct client *);
/* The delay of the next reconnect, for tests and stats. */
int64_t client_backoff_ms(const struct client *);

/* As peer_call; while disconnected cb gets `unavailable` from the event loop. */
int client_call(struct client *, const char *method, const void *params, size_t plen,
    int64_t timeout_ms, peer_reply_fn cb, void *arg);
int client_notify(struct client *, const char *method, const void *params, size_t plen);
/* Cancels pending callbacks whose arg is `arg`. */
void client_cancel(struct client *, void *arg);

#endif
