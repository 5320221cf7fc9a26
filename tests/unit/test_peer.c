/* proto/peer.c over a socketpair: calls, notifications, ordering, limits. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>

#include "common/aotime.h"
#include "common/sendbatch.h"
#include "proto/peer.h"
#include "tests/lib/testlib.h"

/* One side of the pair and what happened to it. */
struct side {
	struct peer *peer;
	int nreq, nnotify, nclose, ndrain;
	char close_reason[256];
	char last_notify[64];
	int64_t last_i;
	int disorder;			/* notifications whose i was not nnotify - 1 */
	struct peer_req *held[64];	/* requests not yet answered */
	int nheld;
	bool hold;			/* keep requests instead of echoing */
};

static struct event_base *base;
static struct event *tick;
/* Open peers, so teardown can close what a test left open. */
static struct peer *open_peers[64];
static int nopen;
static bool tearing_down;

static void
track(struct peer *p)
{
	ck_assert_int_lt(nopen, 64);
	open_peers[nopen++] = p;
}

static void
untrack(struct peer *p)
{
	int i;

	for (i = 0; i < nopen; i++)
		if (open_peers[i] == p) {
			open_peers[i] = open_peers[--nopen];
			return;
		}
}

static void
setup(void)
{
	base = testlib_base_new(&tick);
}

static void
teardown(void)
{
	tearing_down = true;
	while (nopen > 0)
		peer_close(open_peers[nopen - 1], "teardown");
	testlib_base_free(base, tick);
}

/* Runs the loop until *flag becomes true or timeout_ms passes. */
static bool
run_until(const int *flag, int want, int64_t timeout_ms)
{
	int64_t deadline = aotime_mono_ms() + timeout_ms;

	while (*flag < want && aotime_mono_ms() < deadline)
		event_base_loop(base, EVLOOP_ONCE);
	return *flag >= want;
}

static void
run_for(int64_t ms)
{
	int64_t deadline = aotime_mono_ms() + ms;

	while (aotime_mono_ms() < deadline)
		event_base_loop(base, EVLOOP_ONCE);
}

static void
on_request(struct peer *p, struct peer_req *r, void *arg)
{
	struct side *s = arg;
	struct rpc_buf b;

	(void)p;
	s->nreq++;
	if (s->hold) {
		ck_assert_int_lt(s->nheld, 64);
		s->held[s->nheld++] = r;
		return;
	}
	rpc_buf_init(&b);
	if (r->params != NULL)
		msgpack_pack_object(&b.pk, *r->params);
	else
		msgpack_pack_nil(&b.pk);
	peer_reply(r, b.sb.data, b.sb.size);
	rpc_buf_free(&b);
}

static void
on_notify(struct peer *p, const char *method, const msgpack_object *params, void *arg)
{
	struct side *s = arg;

	(void)p;
	s->nnotify++;
	snprintf(s->last_notify, sizeof(s->last_notify), "%s", method);
	rpc_obj_i64(rpc_map_get(params, "i"), &s->last_i);
	if (s->last_i != s->nnotify - 1)
		s->disorder++;
}

static void
on_close(struct peer *p, const char *reason, void *arg)
{
	struct side *s = arg;

	untrack(p);
	if (tearing_down)
		return;		/* the test's sides are gone */
	s->nclose++;
	snprintf(s->close_reason, sizeof(s->close_reason), "%s", reason);
	s->peer = NULL;
}

static void
on_drain(struct peer *p, void *arg)
{
	struct side *s = arg;

	(void)p;
	s->ndrain++;
}

static const struct peer_cbs cbs = { on_request, on_notify, on_close, on_drain };

/* Two peers, or one peer and a raw fd in *raw when raw != NULL. */
static void
pair(struct side *a, struct side *b, const struct peer_limits *lb, int *raw)
{
	struct peer_limits l;
	int sv[2];

	/* b is the side under test, a server's: in the unfinished pool. */
	if (lb != NULL)
		l = *lb;
	else
		peer_limits_default(&l);
	l.pooled = true;
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
	memset(b, 0, sizeof(*b));
	b->peer = peer_new(base, sv[1], &l, &cbs, b);
	track(b->peer);
	if (raw != NULL) {
		*raw = sv[0];
		return;
	}
	memset(a, 0, sizeof(*a));
	a->peer = peer_new(base, sv[0], NULL, &cbs, a);
	track(a->peer);
}

/* A reply recorder. */
struct reply {
	int n;
	enum rpc_code code;
	char msg[600];
	int64_t i;
	char tag[32];
	int order;
};
static int reply_seq;

static void
on_reply(void *arg, const struct rpc_error *err, const msgpack_object *result)
{
	struct reply *r = arg;

	r->n++;
	r->order = ++reply_seq;
	r->code = err != NULL ? err->code : RPC_OK;
	if (err != NULL)
		snprintf(r->msg, sizeof(r->msg), "%s", err->message);
	else {
		rpc_obj_i64(rpc_map_get(result, "i"), &r->i);
		rpc_obj_str(rpc_map_get(result, "tag"), r->tag, sizeof(r->tag));
	}
}

static void
pack_i(struct rpc_buf *b, int64_t i)
{
	rpc_buf_reset(b);
	msgpack_pack_map(&b->pk, 1);
	rpc_pack_kv_i64(&b->pk, "i", i);
}

START_TEST(call_and_notify)
{
	struct side a, b;
	struct reply r = { 0 };
	struct rpc_buf buf;

	pair(&a, &b, NULL, NULL);
	rpc_buf_init(&buf);
	pack_i(&buf, 7);
	ck_assert_int_eq(peer_call(a.peer, "echo", buf.sb.data, buf.sb.size, 1000,
	    on_reply, &r), 0);
	ck_assert_int_eq(r.n, 0);	/* never before the loop runs */
	ck_assert(run_until(&r.n, 1, 2000));
	ck_assert_int_eq(r.code, RPC_OK);
	ck_assert_int_eq(r.i, 7);
	ck_assert_int_eq(peer_pending_calls(a.peer), 0);

	pack_i(&buf, 3);
	ck_assert_int_eq(peer_notify(b.peer, "tick", buf.sb.data, buf.sb.size), 0);
	ck_assert(run_until(&a.nnotify, 1, 2000));
	ck_assert_str_eq(a.last_notify, "tick");
	ck_assert_int_eq(a.last_i, 3);
	rpc_buf_free(&buf);
	peer_close(a.peer, "done");
	ck_assert(run_until(&b.nclose, 1, 2000));
	ck_assert_int_eq(a.nclose, 1);
}
END_TEST

/* 2000 pipelined calls all come back, each to its own callback. */
START_TEST(pipelined)
{
	enum { N = 2000 };
	static struct reply r[N];
	struct side a, b;
	struct rpc_buf buf;
	int i, done = 0;

	memset(r, 0, sizeof(r));
	pair(&a, &b, NULL, NULL);
	rpc_buf_init(&buf);
	for (i = 0; i < N; i++) {
		pack_i(&buf, i);
		peer_call(a.peer, "echo", buf.sb.data, buf.sb.size, 5000, on_reply, &r[i]);
	}
	rpc_buf_free(&buf);
	while (done < N) {
		int64_t deadline = aotime_mono_ms() + 5000;

		event_base_loop(base, EVLOOP_ONCE);
		for (done = 0, i = 0; i < N; i++)
			done += r[i].n;
		ck_assert(aotime_mono_ms() < deadline);
	}
	for (i = 0; i < N; i++) {
		ck_assert_int_eq(r[i].n, 1);
		ck_assert_int_eq(r[i].i, i);
	}
	ck_assert_int_eq(b.nreq, N);
}
END_TEST

/* The server answers in reverse order; replies reach the right callbacks. */
START_TEST(out_of_order)
{
	struct side a, b;
	struct reply r[3] = { { 0 } };
	struct rpc_buf buf;
	int i;

	pair(&a, &b, NULL, NULL);
	b.hold = true;
	rpc_buf_init(&buf);
	for (i = 0; i < 3; i++) {
		pack_i(&buf, i);
		peer_call(a.peer, "x", buf.sb.data, buf.sb.size, 2000, on_reply, &r[i]);
	}
	ck_assert(run_until(&b.nheld, 3, 2000));
	for (i = 2; i >= 0; i--) {
		struct peer_req *q = b.held[i];

		rpc_buf_reset(&buf);
		msgpack_pack_object(&buf.pk, *q->params);
		peer_reply(q, buf.sb.data, buf.sb.size);
	}
	rpc_buf_free(&buf);
	ck_assert(run_until(&r[0].n, 1, 2000));
	for (i = 0; i < 3; i++)
		ck_assert_int_eq(r[i].i, i);
	ck_assert_int_gt(r[0].order, r[1].order);
	ck_assert_int_gt(r[1].order, r[2].order);
}
END_TEST

START_TEST(timeout_then_late_reply)
{
	struct side a, b;
	struct reply r = { 0 };

	pair(&a, &b, NULL, NULL);
	b.hold = true;
	peer_call(a.peer, "slow", NULL, 0, 50, on_reply, &r);
	ck_assert(run_until(&r.n, 1, 2000));
	ck_assert_int_eq(r.code, RPC_UNAVAILABLE);
	ck_assert_str_eq(r.msg, "timed out after 50 ms");
	/* The late reply is dropped: the callback does not run twice. */
	ck_assert_int_eq(b.nheld, 1);
	peer_reply(b.held[0], NULL, 0);
	run_for(50);
	ck_assert_int_eq(r.n, 1);
	ck_assert_int_eq(a.nclose, 0);
}
END_TEST

START_TEST(close_fails_pending)
{
	struct side a, b;
	struct reply r = { 0 };

	pair(&a, &b, NULL, NULL);
	b.hold = true;
	peer_call(a.peer, "x", NULL, 0, 0, on_reply, &r);
	ck_assert(run_until(&b.nheld, 1, 2000));
	peer_close(b.peer, "bye");
	/* Replying to a request of a closed peer is harmless. */
	peer_reply(b.held[0], NULL, 0);
	ck_assert(run_until(&r.n, 1, 2000));
	ck_assert_int_eq(r.code, RPC_UNAVAILABLE);
	ck_assert_int_eq(a.nclose, 1);
	ck_assert_int_eq(b.nclose, 1);
	ck_assert_str_eq(b.close_reason, "bye");
	/* A call on a closed peer fails from the loop, not re-entrantly. */
	memset(&b, 0, sizeof(b));
	pair(&a, &b, NULL, NULL);
	peer_close(a.peer, "gone");
	ck_assert_int_eq(a.nclose, 1);
}
END_TEST

START_TEST(call_on_closed_peer)
{
	struct side a, b;
	struct reply r = { 0 };
	struct peer *p;

	pair(&a, &b, NULL, NULL);
	p = a.peer;
	b.hold = true;
	peer_close_after_flush(p, "flushing");
	ck_assert_int_eq(peer_call(p, "x", NULL, 0, 0, on_reply, &r), -1);
	ck_assert_int_eq(r.n, 0);
	ck_assert(run_until(&r.n, 1, 2000));
	ck_assert_int_eq(r.code, RPC_UNAVAILABLE);
	ck_assert(run_until(&a.nclose, 1, 2000));
}
END_TEST

START_TEST(cancel)
{
	struct side a, b;
	struct reply r = { 0 }, keep = { 0 };

	pair(&a, &b, NULL, NULL);
	peer_call(a.peer, "echo", NULL, 0, 1000, on_reply, &r);
	peer_call(a.peer, "echo", NULL, 0, 1000, on_reply, &keep);
	peer_cancel_calls(a.peer, &r);
	ck_assert(run_until(&keep.n, 1, 2000));
	run_for(20);
	ck_assert_int_eq(r.n, 0);
	ck_assert_int_eq(peer_pending_calls(a.peer), 0);
}
END_TEST

/* Reads one whole message from a raw fd into up (blocking up to 2 s). */
static int
raw_read(int fd, msgpack_unpacked *up)
{
	static char buf[65536];
	static size_t len;
	int64_t deadline = aotime_mono_ms() + 2000;

	for (;;) {
		size_t off = 0;

		if (len > 0 && msgpack_unpack_next(up, buf, len, &off) ==
		    MSGPACK_UNPACK_SUCCESS) {
			memmove(buf, buf + off, len - off);
			len -= off;
			return 0;
		}
		ssize_t r = read(fd, buf + len, sizeof(buf) - len);

		if (r > 0)
			len += (size_t)r;
		else if (r == 0)
			return -1;
		else if (aotime_mono_ms() > deadline)
			return -1;
		else
			event_base_loop(base, EVLOOP_ONCE);
	}
}

/* A bad envelope with a readable msgid gets bad_request; the peer lives on. */
START_TEST(bad_envelope_answered)
{
	static const unsigned char req[] = {
		0x94, 0x00, 0x07, 0x05, 0x90,	/* [0, 7, 5, []] */
	};
	static const unsigned char ping[] = {
		0x94, 0x00, 0x08, 0xa4, 'e', 'c', 'h', 'o', 0x90,
	};
	struct side b;
	msgpack_unpacked up;
	const msgpack_object *a;
	int raw;

	pair(NULL, &b, NULL, &raw);
	ck_assert_int_eq(write(raw, req, sizeof(req)), sizeof(req));
	msgpack_unpacked_init(&up);
	ck_assert_int_eq(raw_read(raw, &up), 0);
	a = up.data.via.array.ptr;
	ck_assert_int_eq(a[0].via.u64, 1);
	ck_assert_int_eq(a[1].via.u64, 7);
	ck_assert_int_eq(a[2].type, MSGPACK_OBJECT_MAP);
	ck_assert_int_eq(b.nclose, 0);
	ck_assert_int_eq(write(raw, ping, sizeof(ping)), sizeof(ping));
	ck_assert_int_eq(raw_read(raw, &up), 0);
	a = up.data.via.array.ptr;
	ck_assert_int_eq(a[1].via.u64, 8);
	ck_assert_int_eq(a[2].type, MSGPACK_OBJECT_NIL);
	msgpack_unpacked_destroy(&up);
	close(raw);
}
END_TEST

/*
 * Notifications of stock clients never close the connection: pynvim's
 * nvim_set_client_info (bin method, five positional params) and Neovim's
 * nvim_error_event ([int, str]) are dropped; a bin method with ao's params
 * is delivered; requests before and after are answered.
 */
START_TEST(foreign_notifications)
{
	static const char info[] = "nvim_set_client_info";
	static const unsigned char echo[] = {
		0x94, 0x00, 0x09, 0xa4, 'e', 'c', 'h', 'o', 0x90,
	};
	struct side b;
	struct rpc_buf buf;
	msgpack_unpacked up;
	int raw;

	pair(NULL, &b, NULL, &raw);
	rpc_buf_init(&buf);
	msgpack_pack_array(&buf.pk, 3);
	msgpack_pack_int(&buf.pk, RPC_NOTIFY);
	msgpack_pack_bin(&buf.pk, sizeof(info) - 1);
	msgpack_pack_bin_body(&buf.pk, info, sizeof(info) - 1);
	msgpack_pack_array(&buf.pk, 5);
	rpc_pack_str(&buf.pk, "python3-client");
	msgpack_pack_map(&buf.pk, 1);
	rpc_pack_kv_i64(&buf.pk, "major", 0);
	rpc_pack_str(&buf.pk, "remote");
	msgpack_pack_map(&buf.pk, 0);
	msgpack_pack_map(&buf.pk, 0);
	rpc_pack_notify_head(&buf.pk, "nvim_error_event");
	msgpack_pack_array(&buf.pk, 2);
	msgpack_pack_int(&buf.pk, 0);
	rpc_pack_str(&buf.pk, "Invalid method: event");
	ck_assert_int_eq(write(raw, buf.sb.data, buf.sb.size), (ssize_t)buf.sb.size);
	ck_assert_int_eq(write(raw, echo, sizeof(echo)), sizeof(echo));
	msgpack_unpacked_init(&up);
	ck_assert_int_eq(raw_read(raw, &up), 0);
	ck_assert_int_eq(up.data.via.array.ptr[1].via.u64, 9);
	ck_assert_int_eq(b.nclose, 0);
	ck_assert_int_eq(b.nnotify, 0);

	rpc_buf_reset(&buf);
	msgpack_pack_array(&buf.pk, 3);
	msgpack_pack_int(&buf.pk, RPC_NOTIFY);
	msgpack_pack_bin(&buf.pk, 4);
	msgpack_pack_bin_body(&buf.pk, "tick", 4);
	msgpack_pack_array(&buf.pk, 1);
	msgpack_pack_map(&buf.pk, 1);
	rpc_pack_kv_i64(&buf.pk, "i", 0);
	ck_assert_int_eq(write(raw, buf.sb.data, buf.sb.size), (ssize_t)buf.sb.size);
	ck_assert(run_until(&b.nnotify, 1, 2000));
	ck_assert_str_eq(b.last_notify, "tick");
	ck_assert_int_eq(write(raw, echo, sizeof(echo)), sizeof(echo));
	ck_assert_int_eq(raw_read(raw, &up), 0);
	ck_assert_int_eq(b.nclose, 0);
	msgpack_unpacked_destroy(&up);
	rpc_buf_free(&buf);
	close(raw);
}
END_TEST

static void
expect_framing_close(const void *bytes, size_t n, const char *reason)
{
	struct side b;
	int raw;

	pair(NULL, &b, NULL, &raw);
	ck_assert_int_eq(write(raw, bytes, n), (ssize_t)n);
	/* Closed at once: no wait for the declared bytes. */
	ck_assert(run_until(&b.nclose, 1, 2000));
	ck_assert_msg(strstr(b.close_reason, reason) != NULL, "reason: %s",
	    b.close_reason);
	ck_assert_int_eq(b.nreq, 0);
	close(raw);
}

START_TEST(hostile_huge_count)
{
	static const unsigned char a[] = { 0xdd, 0xff, 0xff, 0xff, 0xff };
	static const unsigned char b[] = { 0xdd, 0x01, 0x00, 0x00, 0x00 };
	static const unsigned char c[] = { 0xdb, 0x40, 0x00, 0x00, 0x00 };
	static const unsigned char d[] = { 0xdf, 0x00, 0x80, 0x00, 0x00 };
	static const unsigned char e[] = { 0xc1 };

	expect_framing_close(a, sizeof(a), "framing error");
	expect_framing_close(b, sizeof(b), "framing error");
	expect_framing_close(c, sizeof(c), "framing error");
	expect_framing_close(d, sizeof(d), "framing error");
	expect_framing_close(e, sizeof(e), "framing error");
}
END_TEST

START_TEST(hostile_not_rpc)
{
	static const unsigned char a[] = { 0x80 };		/* {} */
	static const unsigned char b[] = { 0x93, 0x05, 0x01, 0x02 };	/* [5,1,2] */

	expect_framing_close(a, sizeof(a), "malformed message");
	expect_framing_close(b, sizeof(b), "malformed message");
}
END_TEST

START_TEST(message_over_limit)
{
	struct peer_limits lim;
	struct side b;
	unsigned char hdr[5] = { 0xdb, 0, 0, 0x10, 0 };	/* str32 of 4096 */
	int sv[2];

	peer_limits_default(&lim);
	lim.max_msg = 1024;
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
	memset(&b, 0, sizeof(b));
	b.peer = peer_new(base, sv[1], &lim, &cbs, &b);
	track(b.peer);
	ck_assert_int_eq(write(sv[0], hdr, sizeof(hdr)), 5);
	ck_assert(run_until(&b.nclose, 1, 2000));
	ck_assert_ptr_nonnull(strstr(b.close_reason, "framing error"));
	close(sv[0]);
}
END_TEST

/* Runs the loop until the process holds n bytes of unfinished messages. */
static bool
run_until_held(size_t n, int64_t timeout_ms)
{
	int64_t deadline = aotime_mono_ms() + timeout_ms;

	while (peer_unfinished_bytes() != n && aotime_mono_ms() < deadline)
		event_base_loop(base, EVLOOP_ONCE);
	return peer_unfinished_bytes() == n;
}

static const unsigned char echo9[] = {		/* [0, 9, "echo", []] */
	0x94, 0x00, 0x09, 0xa4, 'e', 'c', 'h', 'o', 0x90,
};

/*
 * An unfinished message is closed at its deadline; one that arrives in
 * pieces is answered; time spent paused by backpressure does not count.
 */
START_TEST(unfinished_deadline)
{
	struct peer_limits lim;
	struct side b;
	unsigned char two[2 * sizeof(echo9)];
	msgpack_unpacked up;
	int raw;

	peer_limits_default(&lim);
	lim.msg_timeout_ms = 1000;
	lim.max_inflight = 1;
	pair(NULL, &b, &lim, &raw);
	msgpack_unpacked_init(&up);

	ck_assert_int_eq(write(raw, echo9, 4), 4);
	ck_assert(run_until_held(4, 2000));
	ck_assert_int_eq(write(raw, echo9 + 4, 5), 5);
	ck_assert_int_eq(raw_read(raw, &up), 0);
	ck_assert_int_eq(peer_unfinished_bytes(), 0);

	/* A request held unanswered pauses the peer, a message behind it. */
	b.hold = true;
	memcpy(two, echo9, sizeof(echo9));
	memcpy(two + sizeof(echo9), echo9, 4);
	ck_assert_int_eq(write(raw, two, sizeof(two) - 5), sizeof(two) - 5);
	ck_assert(run_until(&b.nheld, 1, 2000));
	run_for(1500);
	ck_assert_int_eq(b.nclose, 0);
	b.hold = false;
	peer_reply(b.held[0], NULL, 0);
	ck_assert(run_until_held(4, 2000));
	ck_assert_int_eq(write(raw, echo9 + 4, 5), 5);
	ck_assert_int_eq(raw_read(raw, &up), 0);
	ck_assert_int_eq(raw_read(raw, &up), 0);
	ck_assert_int_eq(b.nclose, 0);

	/* And one that stalls. */
	ck_assert_int_eq(write(raw, echo9, 4), 4);
	ck_assert(run_until(&b.nclose, 1, 10000));
	ck_assert_msg(strstr(b.close_reason, "message unfinished after 1000 ms") !=
	    NULL, "reason: %s", b.close_reason);
	ck_assert_int_eq(peer_unfinished_bytes(), 0);
	msgpack_unpacked_destroy(&up);
	close(raw);
}
END_TEST

/*
 * A peer that sends requests but never reads the answers: once its unread
 * output stops us reading it, it must read within msg_timeout_ms, or it is
 * closed (it could otherwise hold its buffers for ever).  While it reads,
 * nothing happens.
 */
START_TEST(unread_answers_deadline)
{
	enum { STR = 32768 };
	static const unsigned char head[] = {	/* [0, 1, "echo", [{"x": str32 */
		0x94, 0x00, 0x01, 0xa4, 'e', 'c', 'h', 'o', 0x91, 0x81,
		0xa1, 'x', 0xdb, 0x00, 0x00, STR >> 8, STR & 0xff,
	};
	static unsigned char msg[sizeof(head) + STR], sink[1 << 16];
	struct peer_limits lim;
	struct side b;
	int raw, i;

	memcpy(msg, head, sizeof(head));
	memset(msg + sizeof(head), 'a', STR);
	peer_limits_default(&lim);
	lim.msg_timeout_ms = 1000;
	lim.out_hiwat = 64 * 1024;
	lim.out_lowat = 16 * 1024;
	pair(NULL, &b, &lim, &raw);
	ck_assert_int_eq(fcntl(raw, F_SETFL, O_NONBLOCK), 0);
	/* Reading all along: served, never closed. */
	for (i = 0; i < 200; i++) {
		ck_assert_int_eq(write(raw, msg, sizeof(msg)), (ssize_t)sizeof(msg));
		run_for(5);
		while (read(raw, sink, sizeof(sink)) > 0)
			;
	}
	run_for(1500);
	ck_assert_int_eq(b.nclose, 0);
	/* Not reading: the answers pile up past the kernel's buffers. */
	for (i = 0; i < 400 && b.nclose == 0; i++) {
		if (write(raw, msg, sizeof(msg)) == -1)
			ck_assert_int_eq(errno, EAGAIN);
		run_for(10);
	}
	ck_assert(run_until(&b.nclose, 1, 10000));
	ck_assert_msg(strstr(b.close_reason, "answers not read for 1000 ms") !=
	    NULL, "reason: %s", b.close_reason);
	close(raw);
}
END_TEST

/*
 * A daemon's own connection to another daemon (not a server's peer) is
 * outside the pool: a long answer arriving on it is never counted, so
 * never the one evicted when hostile clients fill the cap.
 */
START_TEST(client_side_not_pooled)
{
	static const unsigned char head[] = { 0x94, 0x01, 0x01, 0xc0, 0xdb, 0x00,
		0x00, 0x40, 0x00 };	/* [1, 1, nil, str32 of 16 KiB … */
	static unsigned char body[8192];
	struct side a;
	int sv[2];

	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
	memset(&a, 0, sizeof(a));
	a.peer = peer_new(base, sv[0], NULL, &cbs, &a);
	track(a.peer);
	ck_assert_int_eq(write(sv[1], head, sizeof(head)), (ssize_t)sizeof(head));
	ck_assert_int_eq(write(sv[1], body, sizeof(body)), (ssize_t)sizeof(body));
	run_for(200);
	ck_assert_int_eq(peer_unfinished_bytes(), 0);
	ck_assert_int_eq(a.nclose, 0);
	close(sv[1]);
}
END_TEST

/*
 * Three unfinished messages over the process-wide cap: the oldest one's
 * connection is closed, the others complete and are answered.
 */
START_TEST(unfinished_cap)
{
	enum { STR = 16384, PART = 10000 };
	static const unsigned char head[] = {	/* [0, 1, "echo", [{"x": str32 */
		0x94, 0x00, 0x01, 0xa4, 'e', 'c', 'h', 'o', 0x91, 0x81,
		0xa1, 'x', 0xdb, 0x00, 0x00, STR >> 8, STR & 0xff,
	};
	static unsigned char msg[sizeof(head) + STR];
	size_t part = sizeof(head) + PART;
	struct side s[3];
	msgpack_unpacked up;
	int raw[3], k;

	memcpy(msg, head, sizeof(head));
	memset(msg + sizeof(head), 'a', STR);
	peer_set_unfinished_cap(2 * part + part / 2);
	for (k = 0; k < 3; k++) {
		pair(NULL, &s[k], NULL, &raw[k]);
		ck_assert_int_eq(write(raw[k], msg, part), (ssize_t)part);
		if (k < 2)
			ck_assert(run_until_held((k + 1) * part, 2000));
	}
	ck_assert(run_until(&s[0].nclose, 1, 2000));
	ck_assert_msg(strstr(s[0].close_reason, "unfinished messages over the "
	    "cap") != NULL, "reason: %s", s[0].close_reason);
	ck_assert(run_until_held(2 * part, 2000));
	msgpack_unpacked_init(&up);
	for (k = 2; k >= 1; k--) {
		ck_assert_int_eq(write(raw[k], msg + part, sizeof(msg) - part),
		    (ssize_t)(sizeof(msg) - part));
		ck_assert_int_eq(raw_read(raw[k], &up), 0);
		ck_assert_int_eq(up.data.via.array.ptr[1].via.u64, 1);
		ck_assert_int_eq(s[k].nclose, 0);
	}
	ck_assert_int_eq(peer_unfinished_bytes(), 0);
	msgpack_unpacked_destroy(&up);
	for (k = 0; k < 3; k++)
		close(raw[k]);
	peer_set_unfinished_cap(PEER_DEFAULT_UNFINISHED_CAP);
}
END_TEST

/* A peer that never reads: sends past out_cap close the connection. */
START_TEST(output_cap)
{
	struct peer_limits lim;
	struct side b;
	struct rpc_buf buf;
	char blob[8192];
	int raw, i, sent = 0;

	peer_limits_default(&lim);
	lim.out_cap = 256 * 1024;
	pair(NULL, &b, &lim, &raw);
	memset(blob, 'x', sizeof(blob));
	rpc_buf_init(&buf);
	msgpack_pack_map(&buf.pk, 1);
	rpc_pack_str(&buf.pk, "data");
	rpc_pack_strn(&buf.pk, blob, sizeof(blob));
	for (i = 0; i < 1000; i++) {
		if (peer_notify(b.peer, "blob", buf.sb.data, buf.sb.size) == -1)
			break;
		sent++;
		if (i % 8 == 0)
			event_base_loop(base, EVLOOP_NONBLOCK);
	}
	rpc_buf_free(&buf);
	ck_assert_int_lt(i, 1000);
	ck_assert_int_eq(b.nclose, 1);
	ck_assert_ptr_nonnull(strstr(b.close_reason, "output buffer overflow"));
	/* Kernel buffers took some; the rest stayed within the cap. */
	ck_assert_int_gt(sent, 0);
	close(raw);
}
END_TEST

/*
 * Backpressure: with max_inflight 4 and no replies, the peer stops reading
 * after 4 requests; answering one lets exactly one more in.
 */
START_TEST(inflight_limit)
{
	struct peer_limits lim;
	struct side a, b;
	struct reply r[10];
	int i;

	memset(r, 0, sizeof(r));
	peer_limits_default(&lim);
	lim.max_inflight = 4;
	pair(&a, &b, &lim, NULL);
	b.hold = true;
	for (i = 0; i < 10; i++)
		peer_call(a.peer, "x", NULL, 0, 0, on_reply, &r[i]);
	ck_assert(run_until(&b.nreq, 4, 2000));
	run_for(50);
	ck_assert_int_eq(b.nreq, 4);
	peer_reply(b.held[0], NULL, 0);
	ck_assert(run_until(&b.nreq, 5, 2000));
	run_for(50);
	ck_assert_int_eq(b.nreq, 5);
	ck_assert(run_until(&r[0].n, 1, 2000));
	for (i = 1; i < b.nheld; i++)
		peer_reply(b.held[i], NULL, 0);
	b.hold = false;
	ck_assert(run_until(&r[9].n, 1, 2000));
	ck_assert_int_eq(b.nreq, 10);
}
END_TEST

/* on_drain fires once the output falls back after having been high. */
START_TEST(drain_callback)
{
	struct peer_limits lim;
	struct side a, b;
	struct rpc_buf buf;
	char blob[4096];
	int i;

	peer_limits_default(&lim);
	lim.out_lowat = 8192;
	pair(&a, &b, &lim, NULL);
	memset(blob, 'y', sizeof(blob));
	rpc_buf_init(&buf);
	msgpack_pack_map(&buf.pk, 1);
	rpc_pack_str(&buf.pk, "data");
	rpc_pack_strn(&buf.pk, blob, sizeof(blob));
	for (i = 0; i < 200; i++)
		ck_assert_int_eq(peer_notify(b.peer, "blob", buf.sb.data, buf.sb.size), 0);
	rpc_buf_free(&buf);
	ck_assert_int_gt(peer_outlen(b.peer), 8192);
	ck_assert(run_until(&a.nnotify, 200, 5000));
	ck_assert(run_until(&b.ndrain, 1, 2000));
	ck_assert_int_eq(peer_outlen(b.peer), 0);
}
END_TEST

/* A result larger than the message limit becomes a too_large error. */
START_TEST(result_too_large)
{
	struct peer_limits lim;
	struct side a, b;
	struct reply r = { 0 };
	struct rpc_buf buf;
	char blob[2048];

	peer_limits_default(&lim);
	lim.max_msg = 1024;
	pair(&a, &b, &lim, NULL);
	b.hold = true;
	peer_call(a.peer, "big", NULL, 0, 2000, on_reply, &r);
	ck_assert(run_until(&b.nheld, 1, 2000));
	memset(blob, 'z', sizeof(blob));
	rpc_buf_init(&buf);
	rpc_pack_strn(&buf.pk, blob, sizeof(blob));
	peer_reply(b.held[0], buf.sb.data, buf.sb.size);
	rpc_buf_free(&buf);
	ck_assert(run_until(&r.n, 1, 2000));
	ck_assert_int_eq(r.code, RPC_TOO_LARGE);
}
END_TEST

/*
 * Corked sends (peer_cork): _i 0 is the automatic backend (io_uring where
 * the kernel allows it), _i 1 forces one sendmsg per peer.  NCORK pairs are
 * more than sendbatch's io_uring threshold.
 */
enum { NCORK = 12 };

static void
cork_backend(int i)
{
	sendbatch_force_sendmsg(i == 1);
	if (i == 0)
		fprintf(stderr, "peer cork tests: %s\n", sendbatch_backend());
}

static void
cork_teardown(void)
{
	sendbatch_force_sendmsg(false);
	teardown();
}

/* NCORK pairs a[k] ↔ b[k] (b's limits lim), on the backend of loop _i. */
static void
cork_pairs(int i, struct side *a, struct side *b, const struct peer_limits *lim)
{
	int k;

	cork_backend(i);
	for (k = 0; k < NCORK; k++)
		pair(&a[k], &b[k], lim, NULL);
}

/* Sends i = from..to-1 as notifications `n`. */
static void
notify_range(struct peer *p, int from, int to, size_t pad)
{
	static char blob[16384];
	struct rpc_buf b;
	int i;

	memset(blob, 'p', sizeof(blob));
	ck_assert_uint_le(pad, sizeof(blob));
	rpc_buf_init(&b);
	for (i = from; i < to; i++) {
		rpc_buf_reset(&b);
		msgpack_pack_map(&b.pk, pad > 0 ? 2 : 1);
		rpc_pack_kv_i64(&b.pk, "i", i);
		if (pad > 0) {
			rpc_pack_str(&b.pk, "pad");
			rpc_pack_strn(&b.pk, blob, pad);
		}
		ck_assert_int_eq(peer_notify(p, "n", b.sb.data, b.sb.size), 0);
	}
	rpc_buf_free(&b);
}

/* peer_notify on a closed peer: -1, and nothing is queued. */
static int
notify_range_closed(struct peer *p)
{
	return peer_notify(p, "n", NULL, 0) == -1 && peer_outlen(p) == 0 ? 0 : -1;
}

/*
 * A fan-out: what is sent while corked is counted by peer_outlen, nothing
 * reaches a socket, and the last uncork sends it all at once (no loop
 * turn), each peer's messages in order.
 */
START_TEST(cork_fanout)
{
	struct side a[NCORK], b[NCORK], x;
	char c;
	int k, raw;

	cork_pairs(_i, a, b, NULL);
	pair(NULL, &x, NULL, &raw);	/* one more, read raw below */
	peer_cork(true);
	peer_cork(true);		/* corks nest */
	for (k = 0; k < NCORK; k++)
		notify_range(b[k].peer, 0, 3 + k, 0);
	notify_range(x.peer, 0, 1, 0);
	peer_cork(false);
	ck_assert_int_gt(peer_outlen(x.peer), 0);
	ck_assert_int_eq(recv(raw, &c, 1, MSG_DONTWAIT | MSG_PEEK), -1);
	ck_assert_int_eq(errno, EAGAIN);
	peer_cork(false);
	/* Sent by the uncork itself. */
	ck_assert_int_eq(peer_outlen(x.peer), 0);
	ck_assert_int_eq(recv(raw, &c, 1, MSG_DONTWAIT | MSG_PEEK), 1);
	for (k = 0; k < NCORK; k++) {
		ck_assert_int_eq(peer_outlen(b[k].peer), 0);
		ck_assert(run_until(&a[k].nnotify, 3 + k, 2000));
		ck_assert_int_eq(a[k].disorder, 0);
	}
	run_for(20);
	for (k = 0; k < NCORK; k++)
		ck_assert_int_eq(a[k].nnotify, 3 + k);
	close(raw);
}
END_TEST

/*
 * More than a socket takes: the rest is queued, and sends after the uncork
 * still go behind it.
 */
START_TEST(cork_short_write)
{
	enum { N = 200, PAD = 8192 };
	struct side a[NCORK], b[NCORK];
	int k;

	cork_pairs(_i, a, b, NULL);
	peer_cork(true);
	for (k = 0; k < NCORK; k++)
		notify_range(b[k].peer, 0, k == 0 ? N : 2, k == 0 ? PAD : 0);
	peer_cork(false);
	/* 1.6 MB is more than a Unix socket buffers. */
	ck_assert_int_gt(peer_outlen(b[0].peer), 0);
	notify_range(b[0].peer, N, N + 1, 0);
	ck_assert(run_until(&a[0].nnotify, N + 1, 10000));
	ck_assert_int_eq(a[0].disorder, 0);
	for (k = 1; k < NCORK; k++) {
		ck_assert(run_until(&a[k].nnotify, 2, 2000));
		ck_assert_int_eq(a[k].disorder, 0);
	}
}
END_TEST

/*
 * Over out_lowat while corked, all taken by the socket at the uncork: the
 * drain is still reported (cdcd resumes a subscriber on it).
 */
START_TEST(cork_drain)
{
	struct peer_limits lim;
	struct side a[NCORK], b[NCORK];
	int k;

	peer_limits_default(&lim);
	lim.out_lowat = 1024;
	cork_pairs(_i, a, b, &lim);
	run_for(50);	/* a new bufferevent reports "writable" once */
	for (k = 0; k < NCORK; k++)
		ck_assert_int_eq(b[k].ndrain, 0);
	peer_cork(true);
	for (k = 0; k < NCORK; k++) {
		notify_range(b[k].peer, 0, 2, 2048);
		ck_assert_int_gt(peer_outlen(b[k].peer), 1024);
	}
	peer_cork(false);
	for (k = 0; k < NCORK; k++) {
		ck_assert_int_eq(peer_outlen(b[k].peer), 0);
		ck_assert(run_until(&b[k].ndrain, 1, 2000));
		ck_assert(run_until(&a[k].nnotify, 2, 2000));
	}
}
END_TEST

/* A peer closed while corked is left out; the others are still sent to. */
START_TEST(cork_close)
{
	struct side a[NCORK], b[NCORK];
	struct peer *closed;
	int k;

	cork_pairs(_i, a, b, NULL);
	peer_cork(true);
	for (k = 0; k < NCORK; k++)
		notify_range(b[k].peer, 0, 2, 0);
	closed = b[3].peer;		/* freed at the next loop turn */
	peer_close(closed, "closed while corked");
	ck_assert_int_eq(notify_range_closed(closed), 0);
	peer_close_after_flush(b[5].peer, "done");
	peer_cork(false);
	ck_assert(run_until(&a[3].nclose, 1, 2000));
	ck_assert_int_eq(a[3].nnotify, 0);
	/* close_after_flush: its corked messages first, then the close. */
	ck_assert(run_until(&a[5].nclose, 1, 2000));
	ck_assert_int_eq(a[5].nnotify, 2);
	for (k = 0; k < NCORK; k++) {
		if (k == 3 || k == 5)
			continue;
		ck_assert(run_until(&a[k].nnotify, 2, 2000));
		ck_assert_int_eq(a[k].disorder, 0);
	}
}
END_TEST

Suite *
peer_suite(void)
{
	Suite *s = suite_create("peer");
	TCase *tc = tcase_create("calls");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 20);
	tcase_add_test(tc, call_and_notify);
	tcase_add_test(tc, pipelined);
	tcase_add_test(tc, out_of_order);
	tcase_add_test(tc, timeout_then_late_reply);
	tcase_add_test(tc, close_fails_pending);
	tcase_add_test(tc, call_on_closed_peer);
	tcase_add_test(tc, cancel);
	tcase_add_test(tc, result_too_large);
	suite_add_tcase(s, tc);
	tc = tcase_create("limits");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 20);
	tcase_add_test(tc, output_cap);
	tcase_add_test(tc, inflight_limit);
	tcase_add_test(tc, drain_callback);
	tcase_add_test(tc, message_over_limit);
	tcase_add_test(tc, unfinished_deadline);
	tcase_add_test(tc, unread_answers_deadline);
	tcase_add_test(tc, client_side_not_pooled);
	tcase_add_test(tc, unfinished_cap);
	suite_add_tcase(s, tc);
	tc = tcase_create("bad input");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 20);
	tcase_add_test(tc, bad_envelope_answered);
	tcase_add_test(tc, foreign_notifications);
	tcase_add_test(tc, hostile_huge_count);
	tcase_add_test(tc, hostile_not_rpc);
	suite_add_tcase(s, tc);
	tc = tcase_create("cork");
	tcase_add_checked_fixture(tc, setup, cork_teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_loop_test(tc, cork_fanout, 0, 2);
	tcase_add_loop_test(tc, cork_short_write, 0, 2);
	tcase_add_loop_test(tc, cork_close, 0, 2);
	tcase_add_loop_test(tc, cork_drain, 0, 2);
	suite_add_tcase(s, tc);
	return s;
}
TEST_SUITE(peer_suite)
