#include <stdlib.h>
#include <string.h>

#include "cdcd/cdcd.h"
#include "common/xmalloc.h"

struct ring_buf *
ring_buf_new(const void *data, size_t len)
{
	struct ring_buf *b = xmalloc(sizeof(*b) + len);

	b->refs = 1;
	b->len = len;
	memcpy(b->data, data, len);
	return b;
}

void
ring_buf_ref(struct ring_buf *b)
{
	b->refs++;
}

void
ring_buf_unref(struct ring_buf *b)
{
	if (--b->refs == 0)
		free(b);
}

/* What an entry costs: its bytes plus a fixed overhead. */
static size_t
entry_cost(const struct ring_entry *e)
{
	return e->buf->len + sizeof(*e) + 64;
}

static void
entry_free(struct ring_entry *e)
{
	free(e->project_id);
	free(e->session_id);
	free(e->type);
	ring_buf_unref(e->buf);
}

void
ring_init(struct ring *r, size_t max_bytes, int64_t base)
{
	memset(r, 0, sizeof(*r));
	r->max_bytes = max_bytes;
	r->base = r->last = base;
}

void
ring_reset(struct ring *r, int64_t base)
{
	while (r->n > 0) {
		entry_free(&r->v[r->start]);
		r->start = (r->start + 1) % r->cap;
		r->n--;
	}
	r->start = 0;
	r->bytes = 0;
	r->base = r->last = base;
}

void
ring_free(struct ring *r)
{
	ring_reset(r, 0);
	free(r->v);
	r->v = NULL;
	r->cap = 0;
}

static void
ring_grow(struct ring *r)
{
	size_t ncap = r->cap == 0 ? 1024 : r->cap * 2, i;
	struct ring_entry *nv = xreallocarray(NULL, ncap, sizeof(*nv));

	for (i = 0; i < r->n; i++)
		nv[i] = r->v[(r->start + i) % r->cap];
	free(r->v);
	r->v = nv;
	r->start = 0;
	r->cap = ncap;
}

static char *
dup_or_null(const char *s)
{
	return s != NULL ? xstrdup(s) : NULL;
}

void
ring_append(struct ring *r, int64_t seq, const char *project_id,
    const char *session_id, const char *type, struct ring_buf *buf)
{
	struct ring_entry *e;

	if (r->n == r->cap)
		ring_grow(r);
	e = &r->v[(r->start + r->n) % r->cap];
	e->seq = seq;
	e->project_id = dup_or_null(project_id);
	e->session_id = dup_or_null(session_id);
	e->type = xstrdup(type);
	e->buf = buf;
	r->n++;
	r->last = seq;
	r->bytes += entry_cost(e);
	while (r->bytes > r->max_bytes && r->n > 1) {
		struct ring_entry *old = &r->v[r->start];

		r->bytes -= entry_cost(old);
		r->base = old->seq;
		entry_free(old);
		r->start = (r->start + 1) % r->cap;
		r->n--;
		r->evicted++;
	}
}

static const struct ring_entry *
at(const struct ring *r, size_t i)
{
	return &r->v[(r->start + i) % r->cap];
}

const struct ring_entry *
ring_after(const struct ring *r, int64_t after)
{
	size_t lo = 0, hi = r->n;

	/* Binary search: seqs are increasing, not necessarily contiguous. */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (at(r, mid)->seq <= after)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < r->n ? at(r, lo) : NULL;
}

const struct ring_entry *
ring_next(const struct ring *r, const struct ring_entry *e)
{
	size_t i = (size_t)(e - r->v);
	size_t logical = (i + r->cap - r->start) % r->cap;

	return logical + 1 < r->n ? at(r, logical + 1) : NULL;
}
