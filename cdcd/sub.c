#include <stdlib.h>
#include <string.h>

#include "cdcd/cdcd.h"

static bool
eq(const char *want, const char *have)
{
	return want == NULL || (have != NULL && strcmp(want, have) == 0);
}

bool
sub_filter_match(const struct sub_filter *f, const char *project_id,
    const char *session_id, const char *type)
{
	size_t i;

	if (!eq(f->project_id, project_id) || !eq(f->session_id, session_id))
		return false;
	if (f->types == NULL)
		return true;
	for (i = 0; i < f->ntypes; i++)
		if (strcmp(f->types[i], type) == 0)
			return true;
	return false;
}

void
sub_filter_free(struct sub_filter *f)
{
	size_t i;

	free(f->project_id);
	free(f->session_id);
	for (i = 0; i < f->ntypes; i++)
		free(f->types[i]);
	free(f->types);
	memset(f, 0, sizeof(*f));
}

bool
sub_needs_reset(int64_t from, int64_t oldest, int64_t head)
{
	/*
	 * Events from+1 .. oldest-1 are gone; a from past head is from another
	 * history.  from 0 asks for "the whole retained log", whatever its start.
	 */
	return from > head || (from > 0 && from < oldest - 1);
}

enum sub_source
sub_source(int64_t cursor, int64_t ring_base, int64_t ring_last)
{
	if (cursor >= ring_last)
		return SUB_SRC_NONE;
	if (cursor >= ring_base)
		return SUB_SRC_RING;
	return SUB_SRC_DB;
}

bool
sub_can_send(size_t buffered, size_t high_water)
{
	return buffered < high_water;
}

bool
sub_stalled(size_t buffered, int64_t progress_ms, int64_t now_ms, int64_t stall_ms)
{
	return buffered > 0 && now_ms - progress_ms >= stall_ms;
}

void
sub_turn_begin(struct sub_turn *t, size_t max_bytes, int64_t deadline_us)
{
	memset(t, 0, sizeof(*t));
	t->max_bytes = max_bytes;
	t->deadline_us = deadline_us;
}

bool
sub_turn_more(struct sub_turn *t, int64_t now_us)
{
	if (t->events == 0)
		return true;
	if (t->bytes >= t->max_bytes || (now_us > 0 && now_us >= t->deadline_us))
		t->spent = true;
	return !t->spent;
}

void
sub_turn_took(struct sub_turn *t, size_t bytes)
{
	t->events++;
	t->bytes += bytes;
}
