/* cdcd's pure parts: the shared ring and the subscriber decisions. */
#include <string.h>

#include "cdcd/cdcd.h"
#include "tests/lib/testlib.h"

static struct ring_buf *
buf(size_t len)
{
	char data[4096];

	memset(data, 'e', sizeof(data));
	return ring_buf_new(data, len);
}

START_TEST(ring_append_and_find)
{
	struct ring r;
	const struct ring_entry *e;
	int64_t seq;
	int n;

	ring_init(&r, 1 << 20, 10);
	ck_assert_ptr_null(ring_after(&r, 10));
	for (seq = 11; seq <= 5000; seq++)
		ring_append(&r, seq, "app", seq % 2 ? "app-1" : NULL, "session_updated",
		    buf(32));
	ck_assert_int_eq(r.base, 10);
	ck_assert_int_eq(r.last, 5000);
	ck_assert_int_eq(r.n, 4990);
	e = ring_after(&r, 10);
	ck_assert_int_eq(e->seq, 11);
	e = ring_after(&r, 4321);
	ck_assert_int_eq(e->seq, 4322);
	ck_assert_str_eq(e->project_id, "app");
	ck_assert_ptr_null(e->session_id);
	ck_assert_ptr_null(ring_after(&r, 5000));
	for (n = 0, e = ring_after(&r, 4990); e != NULL; e = ring_next(&r, e))
		n++;
	ck_assert_int_eq(n, 10);
	ring_free(&r);
}
END_TEST

/* Past max_bytes the oldest go; base moves so "everything after base" holds. */
START_TEST(ring_eviction)
{
	struct ring r;
	const struct ring_entry *e;
	int64_t seq;

	ring_init(&r, 10 * 1024, 0);
	for (seq = 1; seq <= 1000; seq++)
		ring_append(&r, seq, NULL, NULL, "pr_created", buf(100));
	ck_assert_uint_le(r.bytes, 10 * 1024);
	ck_assert_int_gt(r.n, 10);
	ck_assert_int_lt(r.n, 1000);
	ck_assert_int_eq(r.last, 1000);
	ck_assert_int_eq(r.base + (int64_t)r.n, 1000);
	ck_assert_uint_eq(r.evicted, 1000 - r.n);
	e = ring_after(&r, r.base);
	ck_assert_int_eq(e->seq, r.base + 1);
	/* An entry larger than the whole ring is still kept (the newest). */
	ring_append(&r, 1001, NULL, NULL, "pr_created", buf(4096));
	ring_append(&r, 1002, NULL, NULL, "pr_created", buf(4096));
	ring_append(&r, 1003, NULL, NULL, "pr_created", buf(4096));
	ck_assert_int_ge(r.n, 1);
	ck_assert_int_eq(r.last, 1003);
	ring_free(&r);
}
END_TEST

/* Buffers live while a subscriber's output references them. */
START_TEST(ring_refcounts)
{
	struct ring r;
	struct ring_buf *b = buf(64);

	ring_init(&r, 256, 0);
	ring_append(&r, 1, NULL, NULL, "t", b);
	ring_buf_ref(b);		/* a subscriber's queued output */
	ring_append(&r, 2, NULL, NULL, "t", buf(64));
	ring_append(&r, 3, NULL, NULL, "t", buf(64));
	ck_assert_int_gt(r.base, 0);	/* seq 1 was evicted… */
	ck_assert_uint_eq(b->refs, 1);	/* …but its bytes are still referenced */
	ck_assert_int_eq(b->data[0], 'e');
	ring_buf_unref(b);
	ring_reset(&r, 50);
	ck_assert_int_eq(r.n, 0);
	ck_assert_int_eq(r.base, 50);
	ck_assert_int_eq(r.last, 50);
	ring_free(&r);
}
END_TEST

/* Wrap-around of the circular array keeps order and lookup right. */
START_TEST(ring_wraps)
{
	struct ring r;
	const struct ring_entry *e;
	int64_t seq, want;

	ring_init(&r, 300 * (100 + sizeof(struct ring_entry) + 64), 0);
	for (seq = 1; seq <= 10000; seq += 3)	/* non-contiguous seqs */
		ring_append(&r, seq, NULL, NULL, "t", buf(100));
	want = ring_after(&r, r.base)->seq;
	for (e = ring_after(&r, r.base); e != NULL; e = ring_next(&r, e)) {
		ck_assert_int_eq(e->seq, want);
		want += 3;
	}
	e = ring_after(&r, 9990);	/* between two seqs */
	ck_assert_int_eq(e->seq, 9991);
	ring_free(&r);
}
END_TEST

START_TEST(filters)
{
	struct sub_filter f = { 0 };

	ck_assert(sub_filter_match(&f, NULL, NULL, "project_added"));
	f.project_id = strdup("app");
	ck_assert(sub_filter_match(&f, "app", "app-1", "session_created"));
	ck_assert(!sub_filter_match(&f, "web", "web-1", "session_created"));
	ck_assert(!sub_filter_match(&f, NULL, NULL, "session_created"));
	f.session_id = strdup("app-1");
	ck_assert(!sub_filter_match(&f, "app", "app-2", "session_created"));
	f.types = calloc(2, sizeof(char *));
	f.types[0] = strdup("pr_updated");
	f.types[1] = strdup("pr_created");
	f.ntypes = 2;
	ck_assert(sub_filter_match(&f, "app", "app-1", "pr_created"));
	ck_assert(!sub_filter_match(&f, "app", "app-1", "session_updated"));
	sub_filter_free(&f);
	ck_assert_ptr_null(f.types);
}
END_TEST

START_TEST(reset_decisions)
{
	/* Retained 5..100: from 4 still sees 5 onwards; from 3 missed 4. */
	ck_assert(!sub_needs_reset(4, 5, 100));
	ck_assert(sub_needs_reset(3, 5, 100));
	ck_assert(!sub_needs_reset(100, 5, 100));
	ck_assert(sub_needs_reset(101, 5, 100));
	/* An empty log after pruning: oldest is head + 1. */
	ck_assert(!sub_needs_reset(100, 101, 100));
	ck_assert(sub_needs_reset(99, 101, 100));
	/* A fresh database: from 0 is the whole log; so after pruning. */
	ck_assert(!sub_needs_reset(0, 1, 0));
	ck_assert(!sub_needs_reset(0, 500, 900));
	ck_assert(sub_needs_reset(5, 1, 0));
}
END_TEST

/* Hand-over: database below the ring, ring inside it, live at its end. */
START_TEST(handover)
{
	ck_assert_int_eq(sub_source(10, 50, 100), SUB_SRC_DB);
	ck_assert_int_eq(sub_source(49, 50, 100), SUB_SRC_DB);
	ck_assert_int_eq(sub_source(50, 50, 100), SUB_SRC_RING);
	ck_assert_int_eq(sub_source(99, 50, 100), SUB_SRC_RING);
	ck_assert_int_eq(sub_source(100, 50, 100), SUB_SRC_NONE);
	/* An empty ring: everything is live or from the database. */
	ck_assert_int_eq(sub_source(100, 100, 100), SUB_SRC_NONE);
	ck_assert_int_eq(sub_source(7, 100, 100), SUB_SRC_DB);
}
END_TEST

START_TEST(slow_subscriber)
{
	ck_assert(sub_can_send(0, 1024));
	ck_assert(sub_can_send(1023, 1024));
	ck_assert(!sub_can_send(1024, 1024));
	ck_assert(!sub_can_send(5000, 1024));
	/* Stalled only with unread output and no progress for the timeout. */
	ck_assert(!sub_stalled(0, 0, 100000, 1000));
	ck_assert(!sub_stalled(10, 99500, 100000, 1000));
	ck_assert(sub_stalled(10, 99000, 100000, 1000));
}
END_TEST

/*
 * A catch-up batch is checked before each event with the batch counted as
 * output: it stops at the mark, and an event larger than the mark goes
 * alone (the check before it passed with nothing buffered).
 */
START_TEST(catchup_batch)
{
	size_t hw = 1000, batch = 0, n = 0;

	while (sub_can_send(batch, hw)) {
		batch += 300;
		n++;
	}
	ck_assert_uint_eq(n, 4);		/* 0, 300, 600, 900 < 1000 */
	ck_assert_uint_lt(batch, hw + 300);	/* the mark plus one event */
	ck_assert(sub_can_send(0, hw));		/* a 5000-byte event: alone */
	ck_assert(!sub_can_send(0 + 5000, hw));
	ck_assert(!sub_can_send(999 + 1, hw));
}
END_TEST

/*
 * A catch-up turn: its first event always goes, whatever it costs and
 * whatever the clock says; after it, bytes and the deadline both hold or
 * the turn is spent, for good.  A clock of 0 checks bytes only.
 */
START_TEST(catchup_turn)
{
	struct sub_turn t;
	int i;

	sub_turn_begin(&t, 1000, 5000);
	ck_assert(sub_turn_more(&t, 999999));	/* first: past the deadline */
	sub_turn_took(&t, 4000);		/* first: past the bytes */
	ck_assert(!sub_turn_more(&t, 0));
	ck_assert(t.spent);
	ck_assert(!sub_turn_more(&t, 1));	/* spent stays spent */

	sub_turn_begin(&t, 1000, 5000);
	ck_assert(!t.spent);
	sub_turn_took(&t, 999);
	ck_assert(sub_turn_more(&t, 4999));
	ck_assert(sub_turn_more(&t, 0));
	ck_assert(!t.spent);
	ck_assert(!sub_turn_more(&t, 5000));	/* the deadline */
	ck_assert(t.spent);

	sub_turn_begin(&t, 1000, 5000);
	sub_turn_took(&t, 999);
	sub_turn_took(&t, 1);
	ck_assert(!sub_turn_more(&t, 1));	/* the bytes */
	ck_assert_uint_eq(t.events, 2);

	/* A filtered-out event costs no bytes but is the turn's first. */
	sub_turn_begin(&t, 1000, 5000);
	sub_turn_took(&t, 0);
	ck_assert(sub_turn_more(&t, 0));
	ck_assert(!sub_turn_more(&t, 6000));

	/* Live fan-out runs on a turn without limits. */
	sub_turn_begin(&t, SIZE_MAX, INT64_MAX);
	for (i = 0; i < 1000; i++)
		sub_turn_took(&t, 1 << 20);
	ck_assert(sub_turn_more(&t, INT64_MAX - 1));
	ck_assert(!t.spent);
}
END_TEST

/* Hostile shapes: empty strings, NULL fields, a type list of one. */
START_TEST(bad_input)
{
	struct sub_filter f = { 0 };
	struct sub_turn t;
	struct ring r;

	f.types = calloc(1, sizeof(char *));
	f.types[0] = strdup("");
	f.ntypes = 1;
	ck_assert(!sub_filter_match(&f, NULL, NULL, "pr_created"));
	ck_assert(sub_filter_match(&f, NULL, NULL, ""));
	sub_filter_free(&f);
	f.session_id = strdup("");
	ck_assert(!sub_filter_match(&f, NULL, NULL, "x"));
	ck_assert(sub_filter_match(&f, NULL, "", "x"));
	sub_filter_free(&f);
	ring_init(&r, 0, 0);	/* a zero budget still keeps the newest */
	ring_append(&r, 1, NULL, NULL, "t", buf(0));
	ring_append(&r, 2, NULL, NULL, "t", buf(0));
	ck_assert_int_eq(r.n, 1);
	ck_assert_int_eq(ring_after(&r, 0)->seq, 2);
	ring_free(&r);
	/* A zero budget: each turn takes its first event, and only that. */
	sub_turn_begin(&t, 0, 0);
	ck_assert(sub_turn_more(&t, 0));
	sub_turn_took(&t, 0);
	ck_assert(!sub_turn_more(&t, 0));
}
END_TEST

Suite *
cdcd_unit_suite(void)
{
	Suite *s = suite_create("cdcd_unit");
	TCase *tc = tcase_create("ring");

	tcase_set_timeout(tc, 10);
	tcase_add_test(tc, ring_append_and_find);
	tcase_add_test(tc, ring_eviction);
	tcase_add_test(tc, ring_refcounts);
	tcase_add_test(tc, ring_wraps);
	suite_add_tcase(s, tc);
	tc = tcase_create("sub");
	tcase_set_timeout(tc, 10);
	tcase_add_test(tc, filters);
	tcase_add_test(tc, reset_decisions);
	tcase_add_test(tc, handover);
	tcase_add_test(tc, slow_subscriber);
	tcase_add_test(tc, catchup_batch);
	tcase_add_test(tc, catchup_turn);
	suite_add_tcase(s, tc);
	tc = tcase_create("bad input");
	tcase_set_timeout(tc, 10);
	tcase_add_test(tc, bad_input);
	suite_add_tcase(s, tc);
	return s;
}
TEST_SUITE(cdcd_unit_suite)
