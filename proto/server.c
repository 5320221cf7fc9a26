#include "proto/server.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include <event2/listener.h>

#include "common/aotime.h"
#include "common/sock.h"
#include "common/version.h"
#include "common/xmalloc.h"

#define SERVER_FD_RESERVE	64	/* at least; see server_conn_limit */
#define SERVER_ACCEPT_RETRY_MS	100

struct server_conn {
	struct server *srv;
	struct peer *peer;
	int64_t accepted_ms;
	TAILQ_ENTRY(server_conn) entry;	/* oldest first */
};

struct server {
	struct event_base *base;
	struct evconnlistener *lev;
	struct event *retry_ev;
	char *component;
	const struct server_method *methods;
	struct server_cbs cbs;
	void *arg;
	struct peer_limits lim;
	TAILQ_HEAD(, server_conn) conns;
	unsigned nconns;
	unsigned max_conns;
	struct log_limit warned;	/* refusals and evictions */
};

/*
 * At most this many connections whatever the descriptor limit: an idle one
 * costs about 2 KB and evicting scans the table (a hard limit of 458,752
 * would have allowed a gigabyte of idle connections).
 */
#define SERVER_MAX_CONNS	16384
#define SERVER_WARN_EVERY_MS	1000	/* refusal and eviction warnings */

/*
 * Connections fit in the RLIMIT_NOFILE soft limit (which daemon_init raised
 * to the hard limit) less a reserve for the daemon's own descriptors: its
 * database, its clients, its children's pipes, the event loop.  The reserve
 * is an eighth of the limit, at least SERVER_FD_RESERVE, at most half.
 */
static unsigned
server_conn_limit(void)
{
	struct rlimit rl;
	rlim_t reserve;

	if (getrlimit(RLIMIT_NOFILE, &rl) == -1 || rl.rlim_cur == RLIM_INFINITY)
		return 1024;
	reserve = rl.rlim_cur / 8;
	if (reserve < SERVER_FD_RESERVE)
		reserve = SERVER_FD_RESERVE;
	if (reserve > rl.rlim_cur / 2)
		reserve = rl.rlim_cur / 2;
	if (rl.rlim_cur - reserve > SERVER_MAX_CONNS)
		return SERVER_MAX_CONNS;
	return (unsigned)(rl.rlim_cur - reserve);
}

void
server_limits_default(struct peer_limits *l)
{
	peer_limits_default(l);
	l->max_objects = SERVER_MAX_OBJECTS;
	l->pooled = true;
}

int
server_limits_config(struct peer_limits *l, int64_t max_message_bytes,
    int64_t message_timeout_ms, int64_t max_unfinished_bytes, char *err,
    size_t errlen)
{
	int64_t cap = max_unfinished_bytes;

	if (cap == 0) {
		cap = 2 * max_message_bytes;
		if (cap < PEER_DEFAULT_UNFINISHED_CAP)
			cap = PEER_DEFAULT_UNFINISHED_CAP;
	} else if (cap < max_message_bytes) {
		snprintf(err, errlen, "max_unfinished_bytes (%lld) is below "
		    "max_message_bytes (%lld): a message that large could never "
		    "arrive", (long long)cap, (long long)max_message_bytes);
		return -1;
	}
	server_limits_default(l);
	l->max_msg = (size_t)max_message_bytes;
	l->msg_timeout_ms = message_timeout_ms;
	peer_set_unfinished_cap((size_t)cap);
	return 0;
}

static void
reply_hello(struct peer_req *r, struct server *srv)
{
	struct rpc_buf b;

	rpc_buf_init(&b);
	msgpack_pack_map(&b.pk, 4);
	rpc_pack_kv_str(&b.pk, "component", srv->component);
	rpc_pack_kv_str(&b.pk, "version", AO_VERSION);
	rpc_pack_kv_i64(&b.pk, "proto", AO_PROTO);
	rpc_pack_kv_i64(&b.pk, "pid", getpid());
	peer_reply(r, b.sb.data, b.sb.size);
	rpc_buf_free(&b);
}

static void
reply_ping(struct peer_req *r)
{
	struct rpc_buf b;

	rpc_buf_init(&b);
	msgpack_pack_map(&b.pk, 1);
	rpc_pack_kv_i64(&b.pk, "now", aotime_wall_ms());
	peer_reply(r, b.sb.data, b.sb.size);
	rpc_buf_free(&b);
}

static void
server_on_request(struct peer *peer, struct peer_req *r, void *arg)
{
	struct server_conn *sc = arg;
	struct server *srv = sc->srv;
	const struct server_method *m;

	(void)peer;
	if (strcmp(r->method, "hello") == 0) {
		if (peer_req_no_params(r) == 0)
			reply_hello(r, srv);
		return;
	}
	if (strcmp(r->method, "ping") == 0) {
		if (peer_req_no_params(r) == 0)
			reply_ping(r);
		return;
	}
	for (m = srv->methods; m != NULL && m->name != NULL; m++)
		if (strcmp(m->name, r->method) == 0) {
			m->fn(r, srv->arg);
			return;
		}
	peer_reply_errorf(r, RPC_UNKNOWN_METHOD, "unknown method '%s'", r->method);
}

static void
server_on_notify(struct peer *peer, const char *method, const msgpack_object *params,
    void *arg)
{
	struct server_conn *sc = arg;

	if (sc->srv->cbs.on_notify != NULL)
		sc->srv->cbs.on_notify(peer, method, params, sc->srv->arg);
	else
		log_debug("dropping notification '%s' (pid %ld): not handled here",
		    method, (long)peer_pid(peer));
}

static void
server_on_close(struct peer *peer, const char *reason, void *arg)
{
	struct server_conn *sc = arg;
	struct server *srv = sc->srv;

	log_debug("connection closed (pid %ld): %s", (long)peer_pid(peer), reason);
	TAILQ_REMOVE(&srv->conns, sc, entry);
	srv->nconns--;
	if (srv->cbs.on_close != NULL)
		srv->cbs.on_close(peer, reason, srv->arg);
	free(sc);
}

static void
server_on_drain(struct peer *peer, void *arg)
{
	struct server_conn *sc = arg;

	if (sc->srv->cbs.on_drain != NULL)
		sc->srv->cbs.on_drain(peer, sc->srv->arg);
}

/*
 * The table is full: closes the oldest connection that never sent a whole
 * message, to make room for one from pid.  -1 when there is none.
 */
static int
server_evict(struct server *srv, pid_t pid)
{
	struct server_conn *sc;
	char reason[160];

	TAILQ_FOREACH(sc, &srv->conns, entry)
		if (peer_messages_in(sc->peer) == 0 && !peer_closed(sc->peer))
			break;
	if (sc == NULL)
		return -1;
	snprintf(reason, sizeof(reason), "connection table full (%u): it sent "
	    "nothing whole in %lld ms, pid %ld takes its place", srv->nconns,
	    (long long)(aotime_mono_ms() - sc->accepted_ms), (long)pid);
	/* A flood of connections must not flood the log (journald drops). */
	log_warnx_limited(&srv->warned, SERVER_WARN_EVERY_MS, aotime_mono_ms(),
	    "closing connection (pid %ld): %s", (long)peer_pid(sc->peer), reason);
	peer_close(sc->peer, reason);
	return 0;
}

static void
server_accept(struct evconnlistener *lev, evutil_socket_t fd, struct sockaddr *sa,
    int salen, void *arg)
{
	static const struct peer_cbs cbs = {
		.on_request = server_on_request,
		.on_notify = server_on_notify,
		.on_close = server_on_close,
		.on_drain = server_on_drain,
	};
	struct server *srv = arg;
	struct server_conn *sc;
	char err[256];
	uid_t uid;
	pid_t pid;

	(void)lev;
	(void)sa;
	(void)salen;
	if (sock_peer_allowed(fd, &uid, &pid, err, sizeof(err)) == -1) {
		log_warnx("refused connection: %s", err);
		close(fd);
		return;
	}
	if (srv->nconns >= srv->max_conns && server_evict(srv, pid) == -1) {
		log_warnx_limited(&srv->warned, SERVER_WARN_EVERY_MS,
		    aotime_mono_ms(), "refused connection from pid %ld: %u "
		    "connections open, each has sent a message", (long)pid,
		    srv->nconns);
		close(fd);
		return;
	}
	if (sock_set_nonblock(fd, 1) == -1) {
		log_warn("refused connection: O_NONBLOCK");
		close(fd);
		return;
	}
	sc = xcalloc(1, sizeof(*sc));
	sc->srv = srv;
	sc->accepted_ms = aotime_mono_ms();
	TAILQ_INSERT_TAIL(&srv->conns, sc, entry);
	srv->nconns++;
	sc->peer = peer_new(srv->base, fd, &srv->lim, &cbs, sc);
	peer_set_creds(sc->peer, uid, pid);
	log_debug("connection from pid %ld", (long)pid);
	if (srv->cbs.on_open != NULL)
		srv->cbs.on_open(sc->peer, srv->arg);
}

static void
server_retry_cb(evutil_socket_t fd, short what, void *arg)
{
	struct server *srv = arg;

	(void)fd;
	(void)what;
	evconnlistener_enable(srv->lev);
}

/* Out of fds (or similar): pause accepting briefly rather than spin. */
static void
server_accept_error(struct evconnlistener *lev, void *arg)
{
	struct server *srv = arg;
	struct timeval tv;

	(void)lev;
	log_warn("accept");
	evconnlistener_disable(srv->lev);
	aotime_tv(&tv, SERVER_ACCEPT_RETRY_MS);
	evtimer_add(srv->retry_ev, &tv);
}

struct server *
server_new(struct event_base *base, int listen_fd, const char *component,
    const struct server_method *methods, const struct server_cbs *cbs, void *arg,
    const struct peer_limits *lim)
{
	struct server *srv = xcalloc(1, sizeof(*srv));

	srv->base = base;
	srv->component = xstrdup(component);
	srv->methods = methods;
	if (cbs != NULL)
		srv->cbs = *cbs;
	srv->arg = arg;
	if (lim != NULL)
		srv->lim = *lim;
	else
		server_limits_default(&srv->lim);
	TAILQ_INIT(&srv->conns);
	srv->max_conns = server_conn_limit();
	log_debug("%s: at most %u connections", component, srv->max_conns);
	srv->lev = evconnlistener_new(base, server_accept, srv,
	    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 0, listen_fd);
	if (srv->lev == NULL)
		fatalx("evconnlistener_new failed");
	evconnlistener_set_error_cb(srv->lev, server_accept_error);
	srv->retry_ev = evtimer_new(base, server_retry_cb, srv);
	return srv;
}

void
server_drain(struct server *srv)
{
	struct server_conn *sc, *next;

	if (srv->lev != NULL) {
		evconnlistener_free(srv->lev);
		srv->lev = NULL;
	}
	TAILQ_FOREACH_SAFE(sc, &srv->conns, entry, next)
		peer_close_after_flush(sc->peer, "server shutting down");
}

void
server_free(struct server *srv)
{
	struct server_conn *sc;

	if (srv == NULL)
		return;
	if (srv->lev != NULL)
		evconnlistener_free(srv->lev);
	event_free(srv->retry_ev);
	while ((sc = TAILQ_FIRST(&srv->conns)) != NULL)
		peer_close(sc->peer, "server shutting down");
	free(srv->component);
	free(srv);
}

unsigned
server_nconns(const struct server *srv)
{
	return srv->nconns;
}

void
server_foreach(struct server *srv, void (*fn)(struct peer *, void *), void *arg)
{
	struct server_conn *sc, *next;

	TAILQ_FOREACH_SAFE(sc, &srv->conns, entry, next)
		fn(sc->peer, arg);
}
