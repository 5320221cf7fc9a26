#include <stdlib.h>
#include <string.h>

#include "common/xmalloc.h"
#include "lcmd/lcmd.h"
#include "proto/server.h"

struct slot {
	struct calls *owner;
	bool ok;
	struct held res;
	struct rpc_error err;
};

struct calls {
	struct client *client;
	struct slot *slots;
	int n, max, pending;
	bool armed, fired;
	calls_done_fn done;
	void *arg;
	struct event *fire_ev;
};

void
held_set(struct held *h, const msgpack_object *o)
{
	struct rpc_buf b;
	size_t off = 0;

	rpc_buf_init(&b);
	msgpack_pack_object(&b.pk, *o);
	h->len = b.sb.size;
	h->bytes = xmalloc(h->len);
	memcpy(h->bytes, b.sb.data, h->len);
	rpc_buf_free(&b);
	msgpack_unpacked_init(&h->up);
	if (msgpack_unpack_next(&h->up, h->bytes, h->len, &off) != MSGPACK_UNPACK_SUCCESS)
		fatalx("held_set: re-unpacking failed");
}

void
held_free(struct held *h)
{
	if (h->bytes == NULL)
		return;
	msgpack_unpacked_destroy(&h->up);
	free(h->bytes);
	memset(h, 0, sizeof(*h));
}

static void
fire_cb(evutil_socket_t fd, short what, void *arg)
{
	struct calls *c = arg;

	(void)fd;
	(void)what;
	if (!c->fired) {
		c->fired = true;
		c->done(c, c->arg);
	}
}

static void
maybe_fire(struct calls *c)
{
	if (c->armed && c->pending == 0)
		event_active(c->fire_ev, EV_TIMEOUT, 1);
}

static void
slot_cb(void *arg, const struct rpc_error *err, const msgpack_object *result)
{
	struct slot *s = arg;

	if (err != NULL)
		s->err = *err;
	else {
		s->ok = true;
		held_set(&s->res, result);
	}
	s->owner->pending--;
	maybe_fire(s->owner);
}

struct calls *
calls_new(struct client *client, int max, calls_done_fn done, void *arg)
{
	struct calls *c = xcalloc(1, sizeof(*c));

	c->client = client;
	c->max = max > 0 ? max : 1;
	c->slots = xcalloc((size_t)c->max, sizeof(*c->slots));
	c->done = done;
	c->arg = arg;
	c->fire_ev = event_new(client_base(client), -1, 0, fire_cb, c);
	return c;
}

int
calls_add(struct calls *c, const char *method, const void *params, size_t plen,
    int64_t timeout_ms)
{
	struct slot *s;

	if (c->n == c->max)
		fatalx("calls_add: more than %d calls", c->max);
	s = &c->slots[c->n];
	s->owner = c;
	c->pending++;
	client_call(c->client, method, params, plen, timeout_ms, slot_cb, s);
	return c->n++;
}

void
calls_go(struct calls *c)
{
	c->armed = true;
	maybe_fire(c);
}

const msgpack_object *
calls_result(struct calls *c, int i, const struct rpc_error **err)
{
	if (i < 0 || i >= c->n)
		fatalx("calls_result: no call %d", i);
	if (!c->slots[i].ok) {
		if (err != NULL)
			*err = &c->slots[i].err;
		return NULL;
	}
	return &c->slots[i].res.up.data;
}

void
calls_take(struct calls *c, int i, struct held *h)
{
	*h = c->slots[i].res;
	memset(&c->slots[i].res, 0, sizeof(c->slots[i].res));
	c->slots[i].ok = false;
	rpc_error_set(&c->slots[i].err, RPC_INTERNAL, "result taken");
}

void
calls_free(struct calls *c)
{
	int i;

	if (c == NULL)
		return;
	for (i = 0; i < c->n; i++) {
		client_cancel(c->client, &c->slots[i]);
		held_free(&c->slots[i].res);
	}
	event_free(c->fire_ev);
	free(c->slots);
	free(c);
}
