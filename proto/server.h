/*
 * An RPC server: an accept loop on a listening Unix socket (bound by us or
 * inherited through LISTEN_FDS), a peer per connection, and a method table.
 * `hello` and `ping` are built in.  Connections from another uid (except
 * root) are refused via SO_PEERCRED.  An unknown method gets unknown_method.
 *
 * The connection table holds the RLIMIT_NOFILE soft limit less a reserve
 * (an eighth, at least 64 descriptors), at most 16,384.  When it is full,
 * the oldest connection that has not sent a whole message yet is closed to
 * admit the new one, so a flood of idle connections cannot lock the
 * daemons' own peers out (they say hello at once); when every one has, the
 * new one is refused.  Both are warnings, at most one line a second.
 */
#ifndef AO_SERVER_H
#define AO_SERVER_H

#include <stddef.h>

#include "common/config.h"
#include "proto/peer.h"

struct server;

typedef void (*server_handler_fn)(struct peer_req *, void *arg);

struct server_method {
	const char *name;
	server_handler_fn fn;
};

struct server_cbs {
	/* Optional: a connection was accepted / is gone. */
	void (*on_open)(struct peer *, void *arg);
	void (*on_close)(struct peer *, const char *reason, void *arg);
	/* Optional: notifications from clients. */
	void (*on_notify)(struct peer *, const char *method,
	    const msgpack_object *params, void *arg);
	/* Optional: a connection's output fell back to out_lowat (peer.h). */
	void (*on_drain)(struct peer *, void *arg);
};

/* Objects per incoming message a server takes (DESIGN.md §3). */
#define SERVER_MAX_OBJECTS	(256u * 1024)

/*
 * peer_limits_default, with at most SERVER_MAX_OBJECTS objects a message:
 * msgpack-c spends 24 bytes an object, so this bounds what a client's
 * message can make a daemon allocate to 6 MiB beyond its bytes.
 */
void server_limits_default(struct peer_limits *);

/*
 * The two connection keys every daemon's table has beside
 * max_message_bytes; cfgtype is its config struct, with int64_t fields
 * message_timeout_ms and max_unfinished_bytes (docs/operations.md).
 */
#define SERVER_LIMIT_KEYS(cfgtype)					\
	{ "message_timeout_ms", CONFIG_MS, "10000",			\
	    offsetof(cfgtype, message_timeout_ms), 10, 3600000,		\
	    "close a connection whose message has not arrived whole, or "	\
	    "that leaves its answers unread, this long" },		\
	{ "max_unfinished_bytes", CONFIG_BYTES, "0",			\
	    offsetof(cfgtype, max_unfinished_bytes), 0,			\
	    64LL * 1024 * 1024 * 1024,					\
	    "bytes of unfinished messages over all connections; past it "	\
	    "the oldest is closed (0: max(64MiB, 2 x max_message_bytes))" }

/*
 * A daemon's server limits from those keys and max_message_bytes: fills
 * lim (server_limits_default, the message limit, the deadline) and sets
 * the process-wide cap (peer_set_unfinished_cap; 0 picks the larger of
 * 64 MiB and twice the message limit).  Returns 0, or -1 with err when the
 * cap is below the message limit (such a message could never arrive).
 */
int server_limits_config(struct peer_limits *lim, int64_t max_message_bytes,
    int64_t message_timeout_ms, int64_t max_unfinished_bytes, char *err,
    size_t errlen);

/*
 * Serves `methods` (terminated by a {NULL, NULL} entry, not copied) on
 * listen_fd, which it takes over.  limits may be NULL for
 * server_limits_default.
 */
struct server *server_new(struct event_base *, int listen_fd, const char *component,
    const struct server_method *methods, const struct server_cbs *cbs, void *arg,
    const struct peer_limits *limits);
/*
 * Graceful shutdown, first half: stops accepting and asks every connection
 * to close once its output (answers already given) is written.  Run the
 * loop until server_nconns() is 0 or a deadline, then server_free.
 */
void server_drain(struct server *);
/* Closes the listener and every connection. */
void server_free(struct server *);

unsigned server_nconns(const struct server *);
/* Calls fn for every open connection. */
void server_foreach(struct server *, void (*fn)(struct peer *, void *), void *arg);

#endif
