#include "proto/peer.h"

#include <errno.h>
#include <sys/socket.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <bsd/sys/tree.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>

#include "common/aotime.h"
#include "common/memtrim.h"
#include "common/sendbatch.h"
#include "common/xmalloc.h"
#include "proto/scan.h"

/* An outgoing request waiting for its response. */
struct peer_call {
	RB_ENTRY(peer_call) node;
	uint32_t msgid;
	peer_reply_fn cb;
	void *arg;
	struct event *timer;
	struct peer *peer;
	int64_t timeout_ms;
};
RB_HEAD(call_tree, peer_call);

static int
call_cmp(const struct peer_call *a, const struct peer_call *b)
{
	return a->msgid < b->msgid ? -1 : a->msgid > b->msgid;
}
/* libbsd's RB_GENERATE_STATIC relies on BSD's __unused, which it leaves undefined. */
#define __unused __attribute__((__unused__))
RB_GENERATE_STATIC(call_tree, peer_call, node, call_cmp)
#undef __unused

struct peer {
	struct event_base *base;
	struct bufferevent *bev;
	struct peer_limits lim;
	struct peer_cbs cbs;
	void *arg;
	struct scan scan;

	struct call_tree calls;
	size_t ncalls;
	uint32_t next_msgid;

	TAILQ_HEAD(, peer_req) reqs;	/* unanswered incoming requests */
	unsigned nreqs;

	bool closed;
	bool flushing;		/* close once the output is written */
	bool paused;		/* EV_READ disabled for backpressure */
	bool above_lowat;	/* output went above out_lowat since last drain */
	char *flush_reason;

	struct event *resume_ev;
	struct event *free_ev;
	struct evbuffer *corked_out;	/* sent while corked: see peer_cork */
	bool in_batch;		/* corked_out goes before anything else */
	bool listed;		/* in the batch list (in_batch, not yet flushing) */
	TAILQ_ENTRY(peer) batch_entry;

	/*
	 * The unfinished message at the head of the input: when its clock
	 * started (0: none), the bytes of it counted in partial_total, and
	 * its deadline (lim.msg_timeout_ms).  See partial_update.
	 */
	int64_t partial_us;
	size_t partial_held;
	struct event *deadline_ev;
	TAILQ_ENTRY(peer) partial_entry;
	uint64_t nmsgs;		/* complete messages received */
	uid_t uid;
	pid_t pid;
	void *udata;
};

void
peer_limits_default(struct peer_limits *l)
{
	l->max_msg = SCAN_DEFAULT_MAX_MSG;
	l->max_objects = SCAN_DEFAULT_MAX_OBJECTS;
	l->out_cap = 64u * 1024 * 1024;
	l->out_hiwat = 1024 * 1024;
	l->out_lowat = 256 * 1024;
	l->max_inflight = 1024;
	l->msg_timeout_ms = PEER_DEFAULT_MSG_TIMEOUT_MS;
}

#define ZONE_CHUNK	1000	/* first msgpack zone chunk of a message */
/*
 * Big messages and buffers are the heap churn worth giving back once work
 * stops (common/memtrim.h): they are noted, small ones are not.
 */
#define NOTE_BYTES	(64 * 1024)

static void
note_churn(size_t bytes)
{
	if (bytes >= NOTE_BYTES)
		memtrim_note(bytes);
}

/* The peers with corked output, in the order they were first sent to. */
static TAILQ_HEAD(, peer) batch = TAILQ_HEAD_INITIALIZER(batch);
static int corked;	/* peer_cork() depth */

/*
 * The peers holding an unfinished message, oldest clock first, and the
 * bytes they hold: the process-wide cap (peer_set_unfinished_cap) closes
 * the oldest first.
 */
static TAILQ_HEAD(, peer) partials = TAILQ_HEAD_INITIALIZER(partials);
static size_t partial_total;
static size_t partial_cap = PEER_DEFAULT_UNFINISHED_CAP;

static void batch_leave(struct peer *);
static size_t outlen(const struct peer *);
static void partial_end(struct peer *);
static void partial_start(struct peer *);

static void peer_readcb(struct bufferevent *, void *);
static void peer_writecb(struct bufferevent *, void *);
static void peer_eventcb(struct bufferevent *, short, void *);
static void peer_process(struct peer *);

static void
peer_free_cb(evutil_socket_t fd, short what, void *arg)
{
	struct peer *p = arg;

	(void)fd;
	(void)what;
	bufferevent_free(p->bev);
	event_free(p->resume_ev);
	event_free(p->free_ev);
	event_free(p->deadline_ev);
	if (p->corked_out != NULL)
		evbuffer_free(p->corked_out);
	free(p->flush_reason);
	free(p);
}

static void
peer_resume_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	peer_process(arg);
}

static void peer_violation(struct peer *, const char *);

/*
 * Paused because of our own backlog (too many requests unanswered), not
 * because the peer leaves our answers unread: then its time does not run.
 */
static bool
paused_by_us(const struct peer *p)
{
	return p->paused && p->nreqs >= p->lim.max_inflight;
}

/* Arms the deadline msg_timeout_ms from now, unless it is already running. */
static void
deadline_arm(struct peer *p)
{
	struct timeval tv;

	if (p->lim.msg_timeout_ms <= 0 || evtimer_pending(p->deadline_ev, NULL))
		return;
	aotime_tv(&tv, p->lim.msg_timeout_ms);
	evtimer_add(p->deadline_ev, &tv);
}

static void
peer_deadline_cb(evutil_socket_t fd, short what, void *arg)
{
	struct peer *p = arg;
	char reason[160];

	(void)fd;
	(void)what;
	if (p->paused && !paused_by_us(p))
		snprintf(reason, sizeof(reason), "answers not read for %lld ms "
		    "(%zu bytes unread)", (long long)p->lim.msg_timeout_ms,
		    outlen(p));
	else
		snprintf(reason, sizeof(reason), "message unfinished after %lld ms "
		    "(%zu bytes of it received)", (long long)p->lim.msg_timeout_ms,
		    p->partial_held);
	peer_violation(p, reason);
}

struct peer *
peer_new(struct event_base *base, int fd, const struct peer_limits *lim,
    const struct peer_cbs *cbs, void *arg)
{
	struct peer *p = xcalloc(1, sizeof(*p));

	p->base = base;
	if (lim != NULL)
		p->lim = *lim;
	else
		peer_limits_default(&p->lim);
	p->cbs = *cbs;
	p->arg = arg;
	p->uid = (uid_t)-1;
	p->pid = -1;
	p->next_msgid = 1;
	RB_INIT(&p->calls);
	TAILQ_INIT(&p->reqs);
	scan_init(&p->scan, p->lim.max_msg, p->lim.max_objects);
	p->bev = bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (p->bev == NULL)
		fatalx("bufferevent_socket_new failed");
	p->resume_ev = event_new(base, -1, 0, peer_resume_cb, p);
	p->free_ev = event_new(base, -1, 0, peer_free_cb, p);
	p->deadline_ev = evtimer_new(base, peer_deadline_cb, p);
	if (p->resume_ev == NULL || p->free_ev == NULL || p->deadline_ev == NULL)
		fatalx("event_new failed");
	bufferevent_set_max_single_read(p->bev, 256 * 1024);
	bufferevent_set_max_single_write(p->bev, 256 * 1024);
	bufferevent_setwatermark(p->bev, EV_WRITE, p->lim.out_lowat, 0);
	bufferevent_setcb(p->bev, peer_readcb, peer_writecb, peer_eventcb, p);
	bufferevent_enable(p->bev, EV_READ | EV_WRITE);
	return p;
}

bool
peer_closed(const struct peer *p)
{
	return p->closed;
}

/* Runs a reply callback with an error from the event loop (never re-entrantly). */
struct late_error {
	peer_reply_fn cb;
	void *arg;
	struct rpc_error err;
};

static void
late_error_cb(evutil_socket_t fd, short what, void *arg)
{
	struct late_error *le = arg;

	(void)fd;
	(void)what;
	le->cb(le->arg, &le->err, NULL);
	free(le);
}

void
peer_schedule_error(struct event_base *base, peer_reply_fn cb, void *arg,
    const struct rpc_error *err)
{
	struct late_error *le;

	if (cb == NULL)
		return;
	le = xmalloc(sizeof(*le));
	le->cb = cb;
	le->arg = arg;
	le->err = *err;
	if (event_base_once(base, -1, EV_TIMEOUT, late_error_cb, le, NULL) == -1)
		fatalx("event_base_once failed");
}

static void
call_free(struct peer_call *c)
{
	if (c->timer != NULL)
		event_free(c->timer);
	free(c);
}

void
peer_close(struct peer *p, const char *reason)
{
	struct peer_call *c;
	struct peer_req *r;
	struct rpc_error err;

	if (p->closed)
		return;
	p->closed = true;
	/* What it held goes when it is freed: unread input, unsent output. */
	note_churn(evbuffer_get_length(bufferevent_get_input(p->bev)) + outlen(p));
	batch_leave(p);
	partial_end(p);
	if (p->corked_out != NULL)
		evbuffer_drain(p->corked_out, evbuffer_get_length(p->corked_out));
	bufferevent_disable(p->bev, EV_READ | EV_WRITE);
	bufferevent_setcb(p->bev, NULL, NULL, NULL, NULL);
	event_del(p->resume_ev);

	while ((r = TAILQ_FIRST(&p->reqs)) != NULL) {
		TAILQ_REMOVE(&p->reqs, r, entry);
		r->peer = NULL;
	}
	p->nreqs = 0;

	rpc_error_set(&err, RPC_UNAVAILABLE, "connection closed: %s", reason);
	while ((c = RB_MIN(call_tree, &p->calls)) != NULL) {
		RB_REMOVE(call_tree, &p->calls, c);
		p->ncalls--;
		if (c->cb != NULL)
			c->cb(c->arg, &err, NULL);
		call_free(c);
	}
	if (p->cbs.on_close != NULL)
		p->cbs.on_close(p, reason, p->arg);
	event_active(p->free_ev, EV_TIMEOUT, 1);
}

/*
 * A protocol violation, a peer that stopped reading or one that holds
 * resources too long: one warning, then closed.
 */
static void
peer_violation(struct peer *p, const char *reason)
{
	log_warnx("closing connection (pid %ld): %s", (long)p->pid, reason);
	peer_close(p, reason);
}

void
peer_close_after_flush(struct peer *p, const char *reason)
{
	if (p->closed || p->flushing)
		return;
	p->flushing = true;
	p->flush_reason = xstrdup(reason);
	bufferevent_disable(p->bev, EV_READ);
	partial_end(p);		/* its input is never read again */
	/* Corked output goes first, through the bufferevent. */
	if (p->in_batch) {
		batch_leave(p);
		if (evbuffer_add_buffer(bufferevent_get_output(p->bev),
		    p->corked_out) == -1) {
			peer_close(p, "evbuffer_add_buffer failed");
			return;
		}
	}
	if (evbuffer_get_length(bufferevent_get_output(p->bev)) == 0) {
		peer_close(p, reason);
		return;
	}
	bufferevent_setwatermark(p->bev, EV_WRITE, 0, 0);
}

/* Stops or resumes reading according to the backpressure rules. */
static void
peer_update_reading(struct peer *p)
{
	size_t out = outlen(p);
	bool pause;

	if (p->closed || p->flushing)
		return;
	if (p->paused)
		pause = p->nreqs >= p->lim.max_inflight || out > p->lim.out_lowat;
	else
		pause = p->nreqs >= p->lim.max_inflight || out > p->lim.out_hiwat;
	if (pause) {
		if (!p->paused) {
			p->paused = true;
			bufferevent_disable(p->bev, EV_READ);
		}
		/*
		 * (Again, as the reason may change.)  Our backlog: the sender
		 * is not what holds a message up.  Its own unread answers: it
		 * must read them within the deadline, or it could hold buffers
		 * for ever by never reading.
		 */
		if (paused_by_us(p))
			evtimer_del(p->deadline_ev);
		else
			deadline_arm(p);
	} else if (p->paused) {
		p->paused = false;
		bufferevent_enable(p->bev, EV_READ);
		evtimer_del(p->deadline_ev);
		if (p->partial_us != 0)
			partial_start(p);
		/* Complete messages may already sit in the input buffer. */
		event_active(p->resume_ev, EV_TIMEOUT, 1);
	}
}

static int
peer_account(struct peer *p, size_t len)
{
	size_t out;

	if (p->closed)
		return -1;
	out = outlen(p);
	if (out + len > p->lim.out_cap) {
		char reason[128];

		snprintf(reason, sizeof(reason),
		    "output buffer overflow (%zu bytes unread, cap %zu)",
		    out, p->lim.out_cap);
		peer_violation(p, reason);
		return -1;
	}
	return 0;
}

static void
peer_after_send(struct peer *p)
{
	if (outlen(p) > p->lim.out_lowat)
		p->above_lowat = true;
	peer_update_reading(p);
}

/*
 * With nothing queued, write straight to the socket: the common case then
 * costs one write(2) instead of arming EV_WRITE (epoll_ctl), a loop turn,
 * a writev and disarming.  Only what the socket does not take is buffered,
 * after which the bufferevent keeps the order.
 *
 * Corked, a send to a peer with nothing queued collects in its corked_out
 * instead, and the last peer_cork(false) sends every peer's collection with
 * one sendbatch: one system call for a fan-out to 100 subscribers or for a
 * group commit's answers.  What a socket does not take joins the
 * bufferevent's output, as above.
 */
#define BATCH_PEERS	64	/* peers per sendbatch call */
#define BATCH_IOV	8	/* chains of one peer's corked output per send */

static void
batch_leave(struct peer *p)
{
	if (p->listed)
		TAILQ_REMOVE(&batch, p, batch_entry);
	p->listed = p->in_batch = false;
}

static size_t
outlen(const struct peer *p)
{
	size_t n = evbuffer_get_length(bufferevent_get_output(p->bev));

	if (p->in_batch)
		n += evbuffer_get_length(p->corked_out);
	return n;
}

/* Where a send goes while corked, or NULL: the socket or the bufferevent. */
static struct evbuffer *
cork_target(struct peer *p)
{
	/* Still in a batch being flushed: behind what it holds. */
	if (p->in_batch)
		return p->corked_out;
	if (corked == 0 || evbuffer_get_length(bufferevent_get_output(p->bev)) > 0)
		return NULL;
	if (p->corked_out == NULL && (p->corked_out = evbuffer_new()) == NULL)
		fatalx("evbuffer_new failed");
	p->in_batch = p->listed = true;
	TAILQ_INSERT_TAIL(&batch, p, batch_entry);
	return p->corked_out;
}

static void
batch_flush(void)
{
	struct sendbatch_msg m[BATCH_PEERS];
	struct iovec iov[BATCH_PEERS][BATCH_IOV];
	struct evbuffer_iovec ev[BATCH_IOV];
	struct peer *who[BATCH_PEERS], *p;
	size_t n, i;
	int k, j;

	while (!TAILQ_EMPTY(&batch)) {
		n = 0;
		while (n < BATCH_PEERS && (p = TAILQ_FIRST(&batch)) != NULL) {
			k = evbuffer_peek(p->corked_out, -1, NULL, ev, BATCH_IOV);
			if (k > BATCH_IOV)
				k = BATCH_IOV;
			if (k <= 0) {
				batch_leave(p);
				continue;
			}
			for (j = 0; j < k; j++) {
				iov[n][j].iov_base = ev[j].iov_base;
				iov[n][j].iov_len = ev[j].iov_len;
			}
			m[n].fd = bufferevent_getfd(p->bev);
			m[n].iov = iov[n];
			m[n].iovcnt = k;
			who[n++] = p;
			/* Sends from callbacks meanwhile still queue behind it. */
			TAILQ_REMOVE(&batch, p, batch_entry);
			p->listed = false;
		}
		sendbatch(m, n);
		/* First what went, before anything below can call out. */
		for (i = 0; i < n; i++)
			if (m[i].res > 0)
				evbuffer_drain(who[i]->corked_out, (size_t)m[i].res);
		for (i = 0; i < n; i++) {
			p = who[i];
			if (!p->in_batch)
				continue;	/* closed meanwhile */
			p->in_batch = false;
			/* Errors (EPIPE, ECONNRESET) surface through the bufferevent. */
			if (evbuffer_get_length(p->corked_out) > 0 &&
			    evbuffer_add_buffer(bufferevent_get_output(p->bev),
			    p->corked_out) == -1) {
				peer_close(p, "evbuffer_add_buffer failed");
				continue;
			}
			peer_after_send(p);
			/*
			 * Over out_lowat while corked, yet all sent: no write
			 * will report the drain (on_drain), so report it from
			 * the loop.
			 */
			if (p->above_lowat && evbuffer_get_length(
			    bufferevent_get_output(p->bev)) == 0)
				bufferevent_trigger(p->bev, EV_WRITE,
				    BEV_TRIG_DEFER_CALLBACKS);
		}
	}
}

void
peer_cork(bool on)
{
	if (on)
		corked++;
	else if (--corked == 0)
		batch_flush();
}

static size_t
write_through(struct peer *p, const void *buf, size_t len)
{
	ssize_t n;

	if (evbuffer_get_length(bufferevent_get_output(p->bev)) > 0)
		return 0;
	do
		n = send(bufferevent_getfd(p->bev), buf, len, MSG_NOSIGNAL | MSG_DONTWAIT);
	while (n == -1 && errno == EINTR);
	/* Errors (EPIPE, ECONNRESET) surface through the bufferevent's own write. */
	return n > 0 ? (size_t)n : 0;
}

int
peer_send(struct peer *p, const void *buf, size_t len)
{
	struct evbuffer *cork;
	size_t done;

	if (peer_account(p, len) == -1)
		return -1;
	note_churn(len);
	if ((cork = cork_target(p)) != NULL) {
		if (evbuffer_add(cork, buf, len) == -1) {
			peer_close(p, "evbuffer_add failed");
			return -1;
		}
		peer_after_send(p);
		return 0;
	}
	done = write_through(p, buf, len);
	if (done == len) {
		peer_after_send(p);
		return 0;
	}
	if (bufferevent_write(p->bev, (const char *)buf + done, len - done) == -1) {
		peer_close(p, "bufferevent_write failed");
		return -1;
	}
	peer_after_send(p);
	return 0;
}

struct send_ref {
	void (*cleanup)(const void *, size_t, void *);
	void *arg;
};

static void
send_ref_cleanup(const void *data, size_t len, void *arg)
{
	struct send_ref *sr = arg;

	sr->cleanup(data, len, sr->arg);
	free(sr);
}

int
peer_send_ref(struct peer *p, const void *buf, size_t len,
    void (*cleanup)(const void *, size_t, void *), void *arg)
{
	struct evbuffer *cork;
	struct send_ref *sr;

	if (peer_account(p, len) == -1) {
		cleanup(buf, len, arg);
		return -1;
	}
	sr = xmalloc(sizeof(*sr));
	sr->cleanup = cleanup;
	sr->arg = arg;
	if ((cork = cork_target(p)) == NULL)
		cork = bufferevent_get_output(p->bev);
	if (evbuffer_add_reference(cork, buf, len, send_ref_cleanup, sr) == -1) {
		send_ref_cleanup(buf, len, sr);
		peer_close(p, "evbuffer_add_reference failed");
		return -1;
	}
	peer_after_send(p);
	return 0;
}

static void
call_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	struct peer_call *c = arg;
	struct peer *p = c->peer;
	struct rpc_error err;

	(void)fd;
	(void)what;
	RB_REMOVE(call_tree, &p->calls, c);
	p->ncalls--;
	rpc_error_set(&err, RPC_UNAVAILABLE, "timed out after %lld ms",
	    (long long)c->timeout_ms);
	if (c->cb != NULL)
		c->cb(c->arg, &err, NULL);
	call_free(c);
}

/* Packs the [params] element: empty for none, else one raw packed map. */
static void
pack_params(struct rpc_buf *b, const void *params, size_t plen)
{
	if (params == NULL || plen == 0) {
		msgpack_pack_array(&b->pk, 0);
		return;
	}
	msgpack_pack_array(&b->pk, 1);
	msgpack_sbuffer_write(&b->sb, params, plen);
}

int
peer_call(struct peer *p, const char *method, const void *params, size_t plen,
    int64_t timeout_ms, peer_reply_fn cb, void *arg)
{
	struct peer_call *c, key;
	struct rpc_buf b;
	struct rpc_error err;
	int r;

	if (p->closed || p->flushing) {
		rpc_error_set(&err, RPC_UNAVAILABLE, "connection closed");
		peer_schedule_error(p->base, cb, arg, &err);
		return -1;
	}
	/* msgids wrap at 2^32; skip any still pending. */
	do {
		key.msgid = p->next_msgid++;
	} while (RB_FIND(call_tree, &p->calls, &key) != NULL);

	rpc_buf_init(&b);
	rpc_pack_request_head(&b.pk, key.msgid, method);
	pack_params(&b, params, plen);
	r = peer_send(p, b.sb.data, b.sb.size);
	rpc_buf_free(&b);
	if (r == -1) {
		rpc_error_set(&err, RPC_UNAVAILABLE, "connection closed");
		peer_schedule_error(p->base, cb, arg, &err);
		return -1;
	}
	/* The response cannot arrive before we return to the loop. */
	c = xcalloc(1, sizeof(*c));
	c->msgid = key.msgid;
	c->cb = cb;
	c->arg = arg;
	c->peer = p;
	c->timeout_ms = timeout_ms;
	if (timeout_ms > 0) {
		struct timeval tv;

		c->timer = evtimer_new(p->base, call_timeout_cb, c);
		aotime_tv(&tv, timeout_ms);
		evtimer_add(c->timer, &tv);
	}
	RB_INSERT(call_tree, &p->calls, c);
	p->ncalls++;
	return 0;
}

void
peer_cancel_calls(struct peer *p, void *arg)
{
	struct peer_call *c;

	RB_FOREACH(c, call_tree, &p->calls)
		if (c->arg == arg)
			c->cb = NULL;
}

void
peer_cancel_all_calls(struct peer *p)
{
	struct peer_call *c;

	RB_FOREACH(c, call_tree, &p->calls)
		c->cb = NULL;
}

int
peer_notify(struct peer *p, const char *method, const void *params, size_t plen)
{
	struct rpc_buf b;
	int r;

	rpc_buf_init(&b);
	rpc_pack_notify_head(&b.pk, method);
	pack_params(&b, params, plen);
	r = peer_send(p, b.sb.data, b.sb.size);
	rpc_buf_free(&b);
	return r;
}

static void
req_destroy(struct peer_req *r)
{
	msgpack_unpacked_destroy(&r->msg);
	free(r);		/* raw with it */
}

int
peer_req_no_params(struct peer_req *r)
{
	struct rpc_params p;
	struct rpc_error err;

	rpc_error_clear(&err);
	if (rpc_params_init(&p, r->params, r->zone, NULL, &err) == -1 ||
	    rpc_params_end(&p) == -1) {
		peer_reply_error(r, &err);
		return -1;
	}
	return 0;
}

void
peer_req_free(struct peer_req *r)
{
	struct peer *p = r->peer;

	if (p != NULL) {
		TAILQ_REMOVE(&p->reqs, r, entry);
		p->nreqs--;
		peer_update_reading(p);
	}
	req_destroy(r);
}

static void
reply_raw(struct peer_req *r, const struct rpc_error *e, const void *result, size_t len)
{
	struct peer *p = r->peer;
	struct rpc_buf b;
	struct rpc_error big;

	if (p != NULL && !p->closed) {
		if (result != NULL && len + 64 > p->lim.max_msg) {
			rpc_error_set(&big, RPC_TOO_LARGE,
			    "result of %zu bytes exceeds the %zu-byte message limit",
			    len, p->lim.max_msg);
			e = &big;
			result = NULL;
		}
		rpc_buf_init(&b);
		rpc_pack_response_head(&b.pk, r->msgid, e);
		if (result != NULL)
			msgpack_sbuffer_write(&b.sb, result, len);
		else
			msgpack_pack_nil(&b.pk);
		peer_send(p, b.sb.data, b.sb.size);
		rpc_buf_free(&b);
	}
	/* peer_send may have closed the peer, which detaches r. */
	peer_req_free(r);
}

void
peer_reply(struct peer_req *r, const void *result, size_t len)
{
	static const char nil = (char)0xc0;

	if (result == NULL || len == 0) {
		result = &nil;
		len = 1;
	}
	reply_raw(r, NULL, result, len);
}

void
peer_reply_error(struct peer_req *r, const struct rpc_error *e)
{
	reply_raw(r, e, NULL, 0);
}

void
peer_reply_errorf(struct peer_req *r, enum rpc_code code, const char *fmt, ...)
{
	struct rpc_error e;
	va_list ap;

	rpc_error_clear(&e);
	e.code = code;
	va_start(ap, fmt);
	vsnprintf(e.message, sizeof(e.message), fmt, ap);
	va_end(ap);
	rpc_utf8_trim(e.message);
	reply_raw(r, &e, NULL, 0);
}

/* Answers a request whose envelope is bad but whose msgid is readable. */
static bool
reply_bad_envelope(struct peer *p, const msgpack_object *root, const struct rpc_error *e)
{
	const msgpack_object *a;
	struct rpc_buf b;

	if (root->type != MSGPACK_OBJECT_ARRAY || root->via.array.size < 2)
		return false;
	a = root->via.array.ptr;
	if (a[0].type != MSGPACK_OBJECT_POSITIVE_INTEGER || a[0].via.u64 != 0 ||
	    a[1].type != MSGPACK_OBJECT_POSITIVE_INTEGER || a[1].via.u64 > UINT32_MAX)
		return false;
	rpc_buf_init(&b);
	rpc_pack_response_head(&b.pk, (uint32_t)a[1].via.u64, e);
	msgpack_pack_nil(&b.pk);
	peer_send(p, b.sb.data, b.sb.size);
	rpc_buf_free(&b);
	return true;
}

static void
dispatch_response(struct peer *p, const struct rpc_msg *m)
{
	struct peer_call key, *c;
	struct rpc_error err;

	key.msgid = m->msgid;
	if ((c = RB_FIND(call_tree, &p->calls, &key)) == NULL)
		return;		/* timed out or cancelled: drop the late reply */
	RB_REMOVE(call_tree, &p->calls, c);
	p->ncalls--;
	if (c->cb != NULL) {
		rpc_error_from_object(m->error, &err);
		if (err.code != RPC_OK)
			c->cb(c->arg, &err, NULL);
		else
			c->cb(c->arg, NULL, m->result);
	}
	call_free(c);
}

/*
 * Unpacks and dispatches one complete message of len bytes at the head of
 * the input buffer, then drains it.
 */
static void
peer_dispatch(struct peer *p, size_t len)
{
	struct evbuffer *in = bufferevent_get_input(p->bev);
	struct peer_req *r = xmalloc(sizeof(*r) + len);	/* raw follows */
	struct rpc_msg m;
	struct rpc_error err;
	size_t off = 0;
	msgpack_unpack_return ur;

	memset(r, 0, sizeof(*r));
	msgpack_unpacked_init(&r->msg);
	/*
	 * msgpack_unpack_next would replace the zone with one whose first
	 * chunk is 8 KiB; a request's objects take a few hundred bytes, and
	 * a chunk this small comes from malloc's per-thread cache.  Bigger
	 * messages add chunks.  Strings still point into raw.
	 */
	if ((r->msg.zone = msgpack_zone_new(ZONE_CHUNK)) == NULL)
		fatalx("msgpack_zone_new failed");
	r->raw = (char *)(r + 1);
	evbuffer_remove(in, r->raw, len);
	note_churn(len);
	ur = msgpack_unpack(r->raw, len, &off, r->msg.zone, &r->msg.data);
	if (ur != MSGPACK_UNPACK_SUCCESS || off != len) {
		req_destroy(r);
		peer_violation(p, "undecodable message");
		return;
	}
	rpc_error_clear(&err);
	if (rpc_msg_parse(&r->msg.data, r->msg.zone, &m, &err) == -1) {
		if (!reply_bad_envelope(p, &r->msg.data, &err)) {
			char reason[600];

			snprintf(reason, sizeof(reason), "malformed message: %s",
			    err.message);
			peer_violation(p, reason);
		}
		req_destroy(r);
		return;
	}
	switch (m.type) {
	case RPC_REQUEST:
		r->peer = p;
		r->msgid = m.msgid;
		r->method = m.method;
		r->params = m.params;
		r->zone = r->msg.zone;
		r->received_us = aotime_mono_us();
		TAILQ_INSERT_TAIL(&p->reqs, r, entry);
		p->nreqs++;
		if (p->cbs.on_request != NULL)
			p->cbs.on_request(p, r, p->arg);
		else
			peer_reply_errorf(r, RPC_UNKNOWN_METHOD,
			    "unknown method '%s'", m.method);
		peer_update_reading(p);
		return;
	case RPC_RESPONSE:
		dispatch_response(p, &m);
		break;
	case RPC_NOTIFY:
		if (m.ignore != NULL)
			log_debug("dropping notification '%s' (pid %ld): %s",
			    m.method, (long)p->pid, m.ignore);
		else if (p->cbs.on_notify != NULL)
			p->cbs.on_notify(p, m.method, m.params, p->arg);
		break;
	}
	req_destroy(r);
}

/*
 * Unfinished messages.  Bytes read and not yet dispatched (a message whose
 * end has not arrived, and what a pause left behind a complete one) are
 * unfinished; their clock starts then (or again when reading resumes after
 * a pause of our own making, since the sender is not what held them up),
 * and the peer is closed when they are still there msg_timeout_ms later.
 * A server peer's bytes count in partial_total; past partial_cap the peer
 * whose clock is the oldest is closed first: a message in flight completes
 * in milliseconds, a stalled one is old.
 */
static void
partial_end(struct peer *p)
{
	if (p->partial_us == 0)
		return;
	if (p->lim.pooled) {
		TAILQ_REMOVE(&partials, p, partial_entry);
		partial_total -= p->partial_held;
	}
	p->partial_held = 0;
	p->partial_us = 0;
	evtimer_del(p->deadline_ev);
}

/* Starts the clock of the unfinished message at now, or starts it again. */
static void
partial_start(struct peer *p)
{
	if (p->lim.pooled) {
		if (p->partial_us != 0)
			TAILQ_REMOVE(&partials, p, partial_entry);
		TAILQ_INSERT_TAIL(&partials, p, partial_entry);
	}
	p->partial_us = aotime_mono_us();
	if (!paused_by_us(p)) {
		evtimer_del(p->deadline_ev);
		deadline_arm(p);
	}
}

/*
 * After a scan: accounts for the unfinished bytes, then enforces the
 * process-wide cap.
 */
static void
partial_update(struct peer *p)
{
	struct peer *old;
	char reason[256];

	/*
	 * Every byte read and not yet dispatched counts: the unfinished
	 * message, and what a pause left unscanned behind it.
	 */
	size_t held = p->closed ? 0 :
	    evbuffer_get_length(bufferevent_get_input(p->bev));

	if (p->closed || p->flushing || held == 0) {
		partial_end(p);
	} else {
		if (p->partial_us == 0)
			partial_start(p);
		/* The pool counts only its own peers (partial_end agrees). */
		if (p->lim.pooled)
			partial_total += held - p->partial_held;
		p->partial_held = held;
	}
	while (partial_total > partial_cap &&
	    (old = TAILQ_FIRST(&partials)) != NULL) {
		snprintf(reason, sizeof(reason), "unfinished messages over the "
		    "cap (%zu bytes in all connections, cap %zu): this one's "
		    "(%zu bytes, %lld ms) was the oldest", partial_total,
		    partial_cap, old->partial_held,
		    (long long)((aotime_mono_us() - old->partial_us) / 1000));
		peer_violation(old, reason);
	}
}

void
peer_set_unfinished_cap(size_t cap)
{
	partial_cap = cap;
}

size_t
peer_unfinished_bytes(void)
{
	return partial_total;
}

/* Scans and dispatches every complete message in the input buffer. */
static void
peer_process(struct peer *p)
{
	struct evbuffer *in;

	while (!p->closed && !p->paused && !p->flushing) {
		struct evbuffer_iovec v[8];
		struct evbuffer_ptr ptr;
		enum scan_status st = SCAN_MORE;
		int i, n;

		in = bufferevent_get_input(p->bev);
		if (evbuffer_get_length(in) <= p->scan.len)
			break;
		if (evbuffer_ptr_set(in, &ptr, p->scan.len, EVBUFFER_PTR_SET) == -1)
			break;
		n = evbuffer_peek(in, -1, &ptr, v, 8);
		if (n > 8)
			n = 8;
		for (i = 0; i < n && st == SCAN_MORE; i++) {
			size_t used;

			st = scan_feed(&p->scan, v[i].iov_base, v[i].iov_len, &used);
		}
		if (st == SCAN_ERROR) {
			char reason[160];

			snprintf(reason, sizeof(reason), "framing error: %s",
			    scan_error(&p->scan));
			peer_violation(p, reason);
			return;
		}
		if (st == SCAN_MORE)
			continue;	/* more iovecs than 8: peek again */
		n = (int)scan_length(&p->scan);
		scan_reset(&p->scan);
		partial_end(p);
		p->nmsgs++;
		peer_dispatch(p, (size_t)n);
	}
	partial_update(p);
}

static void
peer_readcb(struct bufferevent *bev, void *arg)
{
	(void)bev;
	peer_process(arg);
}

static void
peer_writecb(struct bufferevent *bev, void *arg)
{
	struct peer *p = arg;
	size_t out = evbuffer_get_length(bufferevent_get_output(bev));

	if (p->flushing) {
		if (out == 0)
			peer_close(p, p->flush_reason);
		return;
	}
	if (out <= p->lim.out_lowat) {
		peer_update_reading(p);
		if (p->above_lowat) {
			p->above_lowat = false;
			if (p->cbs.on_drain != NULL)
				p->cbs.on_drain(p, p->arg);
		}
	}
}

static void
peer_eventcb(struct bufferevent *bev, short what, void *arg)
{
	struct peer *p = arg;
	char reason[160];

	(void)bev;
	if (what & BEV_EVENT_EOF)
		peer_close(p, "connection closed by peer");
	else if (what & BEV_EVENT_ERROR) {
		snprintf(reason, sizeof(reason), "connection error: %s",
		    strerror(EVUTIL_SOCKET_ERROR()));
		peer_close(p, reason);
	}
}

size_t
peer_outlen(const struct peer *p)
{
	if (p->closed)
		return 0;
	return outlen(p);
}

size_t
peer_pending_calls(const struct peer *p)
{
	return p->ncalls;
}

uint64_t
peer_messages_in(const struct peer *p)
{
	return p->nmsgs;
}

uid_t
peer_uid(const struct peer *p)
{
	return p->uid;
}

pid_t
peer_pid(const struct peer *p)
{
	return p->pid;
}

void
peer_set_creds(struct peer *p, uid_t uid, pid_t pid)
{
	p->uid = uid;
	p->pid = pid;
}

void
peer_set_udata(struct peer *p, void *u)
{
	p->udata = u;
}

void *
peer_udata(const struct peer *p)
{
	return p->udata;
}

struct event_base *
peer_base(const struct peer *p)
{
	return p->base;
}
