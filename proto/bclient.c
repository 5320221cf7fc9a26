#include "proto/bclient.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bsd/sys/queue.h>

#include "common/aotime.h"
#include "common/sock.h"
#include "common/xmalloc.h"
#include "proto/scan.h"

struct queued {
	struct bclient_msg msg;
	STAILQ_ENTRY(queued) entry;
};

struct bclient {
	int fd;
	struct scan scan;
	char *buf;		/* unprocessed input; a message starts at buf[0] */
	size_t len, cap;
	uint32_t next_msgid;
	STAILQ_HEAD(, queued) queue;	/* notifications not yet taken */
	char dead[160];		/* why the connection is unusable, or "" */
};

struct bclient *
bclient_connect(const char *path, char *err, size_t errlen)
{
	struct bclient *bc;
	int fd;

	if ((fd = sock_connect_unix(path, 1, err, errlen)) == -1)
		return NULL;
	bc = xcalloc(1, sizeof(*bc));
	bc->fd = fd;
	bc->next_msgid = 1;
	bc->cap = 64 * 1024;
	bc->buf = xmalloc(bc->cap);
	scan_init(&bc->scan, SCAN_DEFAULT_MAX_MSG, SCAN_DEFAULT_MAX_OBJECTS);
	STAILQ_INIT(&bc->queue);
	return bc;
}

void
bclient_msg_free(struct bclient_msg *m)
{
	msgpack_unpacked_destroy(&m->up);
	free(m->raw);
	m->raw = NULL;
}

void
bclient_free(struct bclient *bc)
{
	struct queued *q;

	if (bc == NULL)
		return;
	while ((q = STAILQ_FIRST(&bc->queue)) != NULL) {
		STAILQ_REMOVE_HEAD(&bc->queue, entry);
		bclient_msg_free(&q->msg);
		free(q);
	}
	close(bc->fd);
	free(bc->buf);
	free(bc);
}

int
bclient_fd(const struct bclient *bc)
{
	return bc->fd;
}

static int
remaining_ms(int64_t deadline)
{
	int64_t left;

	if (deadline < 0)
		return -1;
	left = deadline - aotime_mono_ms();
	return left < 0 ? 0 : (int)left;
}

static int
fail(struct bclient *bc, struct rpc_error *err, const char *why)
{
	if (bc->dead[0] == '\0')
		snprintf(bc->dead, sizeof(bc->dead), "%s", why);
	return rpc_error_set(err, RPC_UNAVAILABLE, "%s", bc->dead);
}

static int
write_all(struct bclient *bc, const char *p, size_t n, int64_t deadline,
    struct rpc_error *err)
{
	while (n > 0) {
		struct pollfd pfd = { .fd = bc->fd, .events = POLLOUT };
		ssize_t w = write(bc->fd, p, n);

		if (w > 0) {
			p += w;
			n -= (size_t)w;
			continue;
		}
		if (w == -1 && errno != EAGAIN && errno != EINTR)
			return fail(bc, err, "connection lost while writing");
		if (poll(&pfd, 1, remaining_ms(deadline)) == 0)
			return rpc_error_set(err, RPC_UNAVAILABLE,
			    "timed out writing the request");
	}
	return 0;
}

int
bclient_send_raw(struct bclient *bc, const void *p, size_t n)
{
	struct rpc_error err;

	return write_all(bc, p, n, aotime_mono_ms() + 5000, &err);
}

/*
 * Reads the next message.  Returns 1 with *out filled, 0 on timeout, -1 on a
 * lost connection or a framing error (the connection is then unusable).
 */
static int
read_message(struct bclient *bc, int64_t deadline, struct bclient_msg *out,
    struct rpc_error *err)
{
	if (bc->dead[0] != '\0')
		return fail(bc, err, bc->dead);
	for (;;) {
		enum scan_status st = SCAN_MORE;
		size_t used;

		if (bc->len > bc->scan.len)
			st = scan_feed(&bc->scan, bc->buf + bc->scan.len,
			    bc->len - bc->scan.len, &used);
		if (st == SCAN_ERROR) {
			char why[128];

			snprintf(why, sizeof(why), "framing error from server: %s",
			    scan_error(&bc->scan));
			return fail(bc, err, why);
		}
		if (st == SCAN_DONE) {
			size_t n = scan_length(&bc->scan), off = 0;
			struct rpc_error perr;

			scan_reset(&bc->scan);
			out->raw = xmalloc(n);
			memcpy(out->raw, bc->buf, n);
			memmove(bc->buf, bc->buf + n, bc->len - n);
			bc->len -= n;
			msgpack_unpacked_init(&out->up);
			if (msgpack_unpack_next(&out->up, out->raw, n, &off) !=
			    MSGPACK_UNPACK_SUCCESS ||
			    rpc_msg_parse(&out->up.data, out->up.zone, &out->m,
			    &perr) == -1) {
				bclient_msg_free(out);
				return fail(bc, err, "malformed message from server");
			}
			if (out->m.ignore != NULL) {
				bclient_msg_free(out);
				continue;	/* a notification we cannot use */
			}
			return 1;
		}

		struct pollfd pfd = { .fd = bc->fd, .events = POLLIN };
		ssize_t r;
		int pr;

		if (bc->cap - bc->len < 16 * 1024) {
			bc->cap *= 2;
			bc->buf = xreallocarray(bc->buf, bc->cap, 1);
		}
		r = read(bc->fd, bc->buf + bc->len, bc->cap - bc->len);
		if (r > 0) {
			bc->len += (size_t)r;
			continue;
		}
		if (r == 0)
			return fail(bc, err, "connection closed by server");
		if (errno != EAGAIN && errno != EINTR)
			return fail(bc, err, "connection lost while reading");
		pr = poll(&pfd, 1, remaining_ms(deadline));
		if (pr == 0)
			return 0;
	}
}

int
bclient_call(struct bclient *bc, const char *method, const void *params, size_t plen,
    int64_t timeout_ms, struct bclient_msg *out, struct rpc_error *err)
{
	int64_t deadline = aotime_mono_ms() + timeout_ms;
	uint32_t msgid = bc->next_msgid++;
	struct rpc_buf b;
	int r;

	rpc_error_clear(err);
	rpc_buf_init(&b);
	rpc_pack_request_head(&b.pk, msgid, method);
	if (params == NULL || plen == 0)
		msgpack_pack_array(&b.pk, 0);
	else {
		msgpack_pack_array(&b.pk, 1);
		msgpack_sbuffer_write(&b.sb, params, plen);
	}
	r = write_all(bc, b.sb.data, b.sb.size, deadline, err);
	rpc_buf_free(&b);
	if (r == -1)
		return -1;
	for (;;) {
		struct bclient_msg m;

		r = read_message(bc, deadline, &m, err);
		if (r == -1)
			return -1;
		if (r == 0)
			return rpc_error_set(err, RPC_UNAVAILABLE,
			    "%s: timed out after %lld ms", method,
			    (long long)timeout_ms);
		if (m.m.type == RPC_NOTIFY) {
			struct queued *q = xmalloc(sizeof(*q));

			q->msg = m;
			STAILQ_INSERT_TAIL(&bc->queue, q, entry);
			continue;
		}
		if (m.m.type != RPC_RESPONSE || m.m.msgid != msgid) {
			bclient_msg_free(&m);
			continue;
		}
		rpc_error_from_object(m.m.error, err);
		if (err->code != RPC_OK) {
			bclient_msg_free(&m);
			return -1;
		}
		*out = m;
		return 0;
	}
}

int
bclient_next(struct bclient *bc, int64_t timeout_ms, struct bclient_msg *out,
    struct rpc_error *err)
{
	int64_t deadline = timeout_ms < 0 ? -1 : aotime_mono_ms() + timeout_ms;
	struct queued *q;
	int r;

	rpc_error_clear(err);
	if ((q = STAILQ_FIRST(&bc->queue)) != NULL) {
		STAILQ_REMOVE_HEAD(&bc->queue, entry);
		*out = q->msg;
		free(q);
		return 1;
	}
	for (;;) {
		struct bclient_msg m;

		if ((r = read_message(bc, deadline, &m, err)) != 1)
			return r;
		if (m.m.type == RPC_NOTIFY) {
			*out = m;
			return 1;
		}
		bclient_msg_free(&m);
	}
}
