/*
 * common/memtrim: the decision as a truth table, the timer on a real event
 * loop (deadlines are liveness bounds only), and what a trim gives back
 * from a fragmented heap.
 */
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "common/aotime.h"
#include "common/memtrim.h"
#include "tests/lib/testlib.h"

#define LIVENESS_MS	10000

static struct event_base *base;

static void
setup(void)
{
	base = event_base_new();
	ck_assert_ptr_nonnull(base);
}

static void
teardown(void)
{
	memtrim_shutdown();
	event_base_free(base);
}

static uint64_t
trims(void)
{
	struct memtrim_stats st;

	memtrim_stats(&st);
	return st.trims;
}

/* Runs the loop for ms, or until the trim count reaches want (0: for ms). */
static void
run(int ms, uint64_t want)
{
	int64_t end = aotime_mono_ms() + ms;
	struct timeval tv = { 0, 10 * 1000 };

	while (aotime_mono_ms() < end && (want == 0 || trims() < want)) {
		event_base_loopexit(base, &tv);
		event_base_dispatch(base);
	}
}

START_TEST(step)
{
	/* Notes keep coming: wait, for up to MEMTRIM_MAX_WAIT quiet periods. */
	ck_assert_int_eq(memtrim_step(true, 0, 1 << 30, 1000, 1024), MEMTRIM_WAIT);
	ck_assert_int_eq(memtrim_step(true, 9999, 1 << 30, 1000, 1024),
	    MEMTRIM_WAIT);
	ck_assert_int_eq(memtrim_step(true, 10000, 1 << 30, 1000, 1024),
	    MEMTRIM_TRIM);
	/* A quiet period: trim when enough was noted, else stop. */
	ck_assert_int_eq(memtrim_step(false, 1000, 1024, 1000, 1024), MEMTRIM_TRIM);
	ck_assert_int_eq(memtrim_step(false, 1000, 1023, 1000, 1024), MEMTRIM_IDLE);
	/* Too little is never trimmed, however long it has been busy. */
	ck_assert_int_eq(memtrim_step(true, 50000, 1023, 1000, 1024), MEMTRIM_IDLE);
	ck_assert_int_eq(memtrim_step(false, 0, 0, 1000, 0), MEMTRIM_TRIM);
}
END_TEST

/*
 * Below min_bytes nothing happens, however long the loop runs; past it one
 * trim follows once notes stop, then the timer stops (no trim without
 * notes).
 */
START_TEST(timer)
{
	uint64_t t0 = trims();
	struct memtrim_stats st;

	memtrim_init(base, 10, 1000);
	memtrim_note(600);
	run(100, 0);
	ck_assert_uint_eq(trims(), t0);
	memtrim_note(600);
	run(LIVENESS_MS, t0 + 1);
	ck_assert_uint_eq(trims(), t0 + 1);
	memtrim_stats(&st);
	ck_assert_int_gt(st.last_ms, 0);
	ck_assert_int_ge(st.trimmed_kib, 0);
	run(100, 0);
	ck_assert_uint_eq(trims(), t0 + 1);
	/* Notes made before init count, and the next burst trims again. */
	memtrim_shutdown();
	memtrim_note(2000);
	run(50, 0);
	ck_assert_uint_eq(trims(), t0 + 1);
	memtrim_init(base, 10, 1000);
	run(LIVENESS_MS, t0 + 2);
	ck_assert_uint_eq(trims(), t0 + 2);
}
END_TEST

/*
 * Freed chunks below one that stays are not returned by free(): a trim
 * gives them back.  ASan's allocator is not glibc's: no RSS check there.
 */
START_TEST(releases_fragmented_heap)
{
	enum { N = 2048, BIG = 16 * 1024 };
	static char *big[N], *pin[N];
	uint64_t t0 = trims();
	int64_t before, after;
	int i;

	memtrim_init(base, 10, 1);
	for (i = 0; i < N; i++) {
		ck_assert_ptr_nonnull(big[i] = malloc(BIG));
		memset(big[i], 'x', BIG);
		ck_assert_ptr_nonnull(pin[i] = malloc(64));
	}
	for (i = 0; i < N; i++)
		free(big[i]);
	before = memtrim_rss_kib();
	ck_assert_int_gt(before, 0);
	memtrim_note((size_t)N * BIG);
	run(LIVENESS_MS, t0 + 1);
	ck_assert_uint_eq(trims(), t0 + 1);
	after = memtrim_rss_kib();
	ck_assert_int_gt(after, 0);
#if !defined(__SANITIZE_ADDRESS__)
	/* 32 MiB were free in the heap, every 16 KiB pinned by 64 bytes. */
	ck_assert_msg(before - after >= 16 * 1024, "VmRSS %lld -> %lld KiB after "
	    "the trim", (long long)before, (long long)after);
#endif
	for (i = 0; i < N; i++)
		free(pin[i]);
}
END_TEST

START_TEST(bad_input)
{
	uint64_t t0 = trims();

	/* Before init, and after shutdown: counted, never acted on. */
	memtrim_note(SIZE_MAX);
	memtrim_note(SIZE_MAX);	/* saturates */
	memtrim_note(0);
	memtrim_shutdown();
	memtrim_shutdown();
	run(50, 0);
	ck_assert_uint_eq(trims(), t0);
	/* A quiet period of 0 is 1 ms; init twice replaces the timer. */
	memtrim_init(base, 0, SIZE_MAX);
	memtrim_init(base, -5, SIZE_MAX);
	run(LIVENESS_MS, t0 + 1);
	ck_assert_uint_eq(trims(), t0 + 1);
	ck_assert_int_gt(memtrim_rss_kib(), 0);
}
END_TEST

Suite *
memtrim_suite(void)
{
	Suite *s = suite_create("memtrim");
	TCase *tc = tcase_create("memtrim");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, step);
	tcase_add_test(tc, timer);
	tcase_add_test(tc, releases_fragmented_heap);
	suite_add_tcase(s, tc);
	tc = tcase_create("bad input");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, bad_input);
	suite_add_tcase(s, tc);
	return s;
}
TEST_SUITE(memtrim_suite)
