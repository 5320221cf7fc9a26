/*
 * An RPC server: an accept loop on a listening Unix socket (bound by us or
 * inherited through LISTEN_FDS), a peer per connection, and a method table.
 * `hello` and `ping` are built in.  Connections from another uid (except
 * root) are refused via SO_PEERCRED.  An unknown method gets unknown_method.
 */
#ifndef AO_SERVER_H
#define AO_SERVER_H

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

/*
 * Serves `methods` (terminated by a {NULL, NULL} entry, not copied) on
 * listen_fd, which it takes over.  limits may be NULL for the defaults.
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
