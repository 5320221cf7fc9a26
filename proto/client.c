#include "proto/client.h"

#include <stdlib.h>
#include <string.h>

#include "common/aotime.h"
#include "common/sock.h"
#include "common/xmalloc.h"

struct client {
	struct event_base *base;
	char *path;
	struct client_cbs cbs;
	void *arg;
	struct peer_limits lim;
	struct peer *peer;		/* NULL while disconnected */
	int64_t backoff_ms;		/* the next retry's delay */
	struct event *retry_ev;
	bool freeing;
	bool ready;			/* hello answered on this connection */
	char last_error[256];
};

static void client_connect(struct client *);

static void
client_on_notify(struct peer *p, const char *method, const msgpack_object *params,
    void *arg)
{
	struct client *c = arg;

	(void)p;
	if (c->cbs.on_notify != NULL)
		c->cbs.on_notify(c, method, params, c->arg);
}

static void
client_schedule(struct client *c)
{
	struct timeval tv;

	aotime_tv(&tv, c->backoff_ms);
	evtimer_add(c->retry_ev, &tv);
	c->backoff_ms *= 2;
	if (c->backoff_ms > CLIENT_BACKOFF_MAX_MS)
		c->backoff_ms = CLIENT_BACKOFF_MAX_MS;
}

static void
client_on_close(struct peer *p, const char *reason, void *arg)
{
	struct client *c = arg;
	bool was_ready;

	(void)p;
	c->peer = NULL;
	if (c->freeing)
		return;
	log_debug("%s: disconnected: %s", c->path, reason);
	/* A connection that never answered hello was never on_connect's. */
	was_ready = c->ready;
	c->ready = false;
	if (was_ready && c->cbs.on_disconnect != NULL)
		c->cbs.on_disconnect(c, reason, c->arg);
	if (c->peer == NULL && !evtimer_pending(c->retry_ev, NULL))
		client_schedule(c);
}

/*
 * The answer to the hello sent on connect.  Only a server that answers
 * resets the backoff: one that accepts and closes at once (a full
 * connection table, a crash loop) is retried ever more slowly.
 */
static void
client_hello_cb(void *arg, const struct rpc_error *err, const msgpack_object *result)
{
	struct client *c = arg;
	char reason[600];
	int64_t pid;

	if (err != NULL) {
		/* Closed meanwhile: client_on_close schedules the retry. */
		if (client_connected(c)) {
			snprintf(reason, sizeof(reason), "hello failed: %s",
			    err->message);
			peer_close(c->peer, reason);
		}
		return;
	}
	c->backoff_ms = CLIENT_BACKOFF_MIN_MS;
	c->ready = true;
	/* The server's pid, for the log lines about this connection. */
	if (rpc_obj_i64(rpc_map_get(result, "pid"), &pid) == 0)
		peer_set_creds(c->peer, peer_uid(c->peer), (pid_t)pid);
	log_debug("%s: connected", c->path);
	if (c->cbs.on_connect != NULL)
		c->cbs.on_connect(c, c->arg);
}

static void
client_connect(struct client *c)
{
	static const struct peer_cbs cbs = {
		.on_notify = client_on_notify,
		.on_close = client_on_close,
	};
	int fd;

	fd = sock_connect_unix(c->path, 1, c->last_error, sizeof(c->last_error));
	if (fd == -1) {
		log_debug("%s (retry in %lld ms)", c->last_error,
		    (long long)c->backoff_ms);
		client_schedule(c);
		return;
	}
	c->peer = peer_new(c->base, fd, &c->lim, &cbs, c);
	/* A server that accepts and never answers is no server: retry later. */
	peer_call(c->peer, "hello", NULL, 0, CLIENT_HELLO_TIMEOUT_MS,
	    client_hello_cb, c);
}

static void
client_retry_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	client_connect(arg);
}

struct client *
client_new(struct event_base *base, const char *path, const struct client_cbs *cbs,
    void *arg, const struct peer_limits *lim)
{
	struct client *c = xcalloc(1, sizeof(*c));

	c->base = base;
	c->path = xstrdup(path);
	if (cbs != NULL)
		c->cbs = *cbs;
	c->arg = arg;
	if (lim != NULL)
		c->lim = *lim;
	else
		peer_limits_default(&c->lim);
	c->backoff_ms = CLIENT_BACKOFF_MIN_MS;
	c->retry_ev = evtimer_new(base, client_retry_cb, c);
	client_connect(c);
	return c;
}

void
client_free(struct client *c)
{
	if (c == NULL)
		return;
	c->freeing = true;
	evtimer_del(c->retry_ev);
	event_free(c->retry_ev);
	if (c->peer != NULL) {
		peer_cancel_all_calls(c->peer);
		peer_close(c->peer, "client closed");
	}
	free(c->path);
	free(c);
}

bool
client_ready(const struct client *c)
{
	return client_connected(c) && c->ready;
}

bool
client_connected(const struct client *c)
{
	return c->peer != NULL && !peer_closed(c->peer);
}

struct event_base *
client_base(const struct client *c)
{
	return c->base;
}

int64_t
client_backoff_ms(const struct client *c)
{
	return c->backoff_ms;
}

int
client_call(struct client *c, const char *method, const void *params, size_t plen,
    int64_t timeout_ms, peer_reply_fn cb, void *arg)
{
	struct rpc_error err;

	if (!client_connected(c)) {
		rpc_error_set(&err, RPC_UNAVAILABLE, "not connected to %s%s%s",
		    c->path, c->last_error[0] != '\0' ? ": " : "", c->last_error);
		peer_schedule_error(c->base, cb, arg, &err);
		return -1;
	}
	return peer_call(c->peer, method, params, plen, timeout_ms, cb, arg);
}

int
client_notify(struct client *c, const char *method, const void *params, size_t plen)
{
	if (!client_connected(c))
		return -1;
	return peer_notify(c->peer, method, params, plen);
}

void
client_cancel(struct client *c, void *arg)
{
	if (c->peer != NULL)
		peer_cancel_calls(c->peer, arg);
}
