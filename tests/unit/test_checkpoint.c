/*
 * storaged/checkpoint.c's pure core: which WAL checkpoint runs next, in the
 * thread and in the writer, as a truth table over the state the WAL hook
 * and the passes keep.
 */
#include <string.h>

#include "storaged/storaged.h"
#include "tests/lib/testlib.h"

#define WAKE	500
#define LIMIT	1000
#define IVL	1000

/* A state at time 0: empty WAL, just committed. */
static struct ckpt_state
fresh(void)
{
	struct ckpt_state s;

	memset(&s, 0, sizeof(s));
	s.wake_frames = WAKE;
	s.limit_frames = LIMIT;
	s.interval_ms = IVL;
	return s;
}

/* The thread copies from the wake on; the writer finishes at the limit. */
START_TEST(choose_by_frames)
{
	struct ckpt_state s = fresh();

	checkpoint_commit(&s, 10, 0);
	ck_assert_int_eq(checkpoint_next(&s, 1), CKPT_NONE);
	ck_assert(!checkpoint_writer_due(&s, 1));
	checkpoint_commit(&s, WAKE - 1, 2);
	ck_assert_int_eq(checkpoint_next(&s, 2), CKPT_NONE);
	checkpoint_commit(&s, WAKE, 3);
	ck_assert_int_eq(checkpoint_next(&s, 3), CKPT_PASSIVE);
	ck_assert(!checkpoint_writer_due(&s, 3));
	checkpoint_commit(&s, LIMIT - 1, 4);
	ck_assert(!checkpoint_writer_due(&s, 4));
	checkpoint_commit(&s, LIMIT, 5);
	ck_assert(checkpoint_writer_due(&s, 5));
}
END_TEST

/* A passive pass is not repeated until commits bring a quarter wake more. */
START_TEST(passive_per_quarter_wake)
{
	struct ckpt_state s = fresh();

	checkpoint_commit(&s, 600, 0);
	ck_assert_int_eq(checkpoint_next(&s, 0), CKPT_PASSIVE);
	/* A reader kept some frames back: still nothing more until commits. */
	checkpoint_done(&s, CKPT_PASSIVE, SQLITE_OK, 600, s.commits, 1);
	ck_assert_int_eq(checkpoint_next(&s, 2), CKPT_NONE);
	/* Each pass costs an fsync: the next one waits for a quarter wake. */
	checkpoint_commit(&s, 600 + WAKE / 4 - 1, 3);
	ck_assert_int_eq(checkpoint_next(&s, 3), CKPT_NONE);
	checkpoint_commit(&s, 600 + WAKE / 4, 4);
	ck_assert_int_eq(checkpoint_next(&s, 4), CKPT_PASSIVE);
	/* Enough commits during the pass: another pass at once. */
	checkpoint_commit(&s, 600 + WAKE / 2, 5);
	checkpoint_done(&s, CKPT_PASSIVE, SQLITE_OK, 600 + WAKE / 4, s.commits, 6);
	ck_assert_int_eq(checkpoint_next(&s, 6), CKPT_PASSIVE);
}
END_TEST

/*
 * The writer's RESTART: once per limit; when a reader holds the log back,
 * again once the WAL has grown by a quarter wake; the log starting over
 * resets it.  The thread leaves the copying to it once it is due.
 */
START_TEST(writer_restart)
{
	struct ckpt_state s = fresh();

	checkpoint_commit(&s, LIMIT + 5, 0);
	ck_assert(checkpoint_writer_due(&s, 0));
	ck_assert_int_eq(checkpoint_next(&s, 0), CKPT_NONE);
	checkpoint_writer_done(&s, SQLITE_OK, 1);
	ck_assert(!checkpoint_writer_due(&s, 1));
	checkpoint_commit(&s, 4, 2);	/* the next commit started it over */
	ck_assert_int_eq(s.writer_mark, 0);
	ck_assert_int_eq(s.seen_frames, 0);
	ck_assert(!checkpoint_writer_due(&s, 2));

	checkpoint_commit(&s, LIMIT, 10);
	checkpoint_writer_done(&s, SQLITE_BUSY, 10);
	checkpoint_commit(&s, LIMIT + WAKE / 4 - 1, 11);
	ck_assert(!checkpoint_writer_due(&s, 11));
	ck_assert(!checkpoint_writer_due(&s, 5000));
	checkpoint_commit(&s, LIMIT + WAKE / 4, 12);
	ck_assert(checkpoint_writer_due(&s, 12));
	/* A truncate at rest (the reader left) starts everything over. */
	checkpoint_done(&s, CKPT_TRUNCATE, SQLITE_OK, LIMIT + WAKE / 4, s.commits,
	    2000);
	ck_assert_int_eq(s.writer_mark, 0);
	checkpoint_commit(&s, LIMIT, 2001);
	ck_assert(checkpoint_writer_due(&s, 2001));
}
END_TEST

/* A commit that lands while a truncate runs keeps its frames. */
START_TEST(truncate_race)
{
	struct ckpt_state s = fresh();
	uint64_t at_start;

	checkpoint_commit(&s, 40, 0);
	at_start = s.commits;
	checkpoint_commit(&s, 3, 1500);	/* right after the truncate returned */
	checkpoint_done(&s, CKPT_TRUNCATE, SQLITE_OK, 40, at_start, 1501);
	ck_assert_int_eq(s.frames, 3);
	ck_assert(!s.wal_empty);
	ck_assert_int_eq(checkpoint_next(&s, 1500 + IVL), CKPT_TRUNCATE);
}
END_TEST

/* The thread sleeps until its next decision can change, no longer. */
START_TEST(wait_until_due)
{
	struct ckpt_state s = fresh();

	checkpoint_commit(&s, 40, 100);
	ck_assert_int_eq(checkpoint_wait_ms(&s, 100), IVL);
	ck_assert_int_eq(checkpoint_wait_ms(&s, 600), IVL - 500);
	ck_assert_int_eq(checkpoint_wait_ms(&s, 100 + IVL + 7), 1);
	checkpoint_done(&s, CKPT_TRUNCATE, SQLITE_OK, 40, s.commits, 100 + IVL);
	ck_assert_int_eq(checkpoint_wait_ms(&s, 5000), IVL);
	/* After a busy pass: until the retry. */
	checkpoint_commit(&s, 40, 6000);
	checkpoint_done(&s, CKPT_TRUNCATE, SQLITE_BUSY, 40, s.commits, 7000);
	ck_assert_int_eq(checkpoint_wait_ms(&s, 7000), IVL);
	ck_assert_int_eq(checkpoint_wait_ms(&s, 7400), IVL - 400);
}
END_TEST

/* At rest the WAL is truncated once; a commit makes it due again. */
START_TEST(truncate_at_rest)
{
	struct ckpt_state s = fresh();

	checkpoint_commit(&s, 40, 100);
	ck_assert_int_eq(checkpoint_next(&s, 100 + IVL - 1), CKPT_NONE);
	ck_assert_int_eq(checkpoint_next(&s, 100 + IVL), CKPT_TRUNCATE);
	checkpoint_done(&s, CKPT_TRUNCATE, SQLITE_OK, 40, s.commits, 100 + IVL);
	ck_assert(s.wal_empty);
	ck_assert_int_eq(s.frames, 0);
	ck_assert_int_eq(checkpoint_next(&s, 100 + 5 * IVL), CKPT_NONE);
	checkpoint_commit(&s, 2, 200 + 5 * IVL);
	ck_assert_int_eq(checkpoint_next(&s, 200 + 6 * IVL), CKPT_TRUNCATE);
	/* Busy at rest (a reader): tried again an interval later. */
	checkpoint_done(&s, CKPT_TRUNCATE, SQLITE_BUSY, 2, s.commits, 200 + 6 * IVL);
	ck_assert(!s.wal_empty);
	ck_assert_int_eq(checkpoint_next(&s, 200 + 7 * IVL - 1), CKPT_NONE);
	ck_assert_int_eq(checkpoint_next(&s, 200 + 7 * IVL), CKPT_TRUNCATE);
}
END_TEST

/*
 * A write that failed for want of space: the writer's RESTART at once;
 * failing too (no room for ao.db), every 100 ms; a commit that goes
 * through means space is back: the ordinary rules again.
 */
START_TEST(disk_full)
{
	struct ckpt_state s = fresh();

	checkpoint_commit(&s, 20, 0);
	s.disk_full = true;
	ck_assert(checkpoint_writer_due(&s, 1));
	checkpoint_writer_done(&s, SQLITE_FULL, 1);
	ck_assert(s.disk_full);
	ck_assert(!checkpoint_writer_due(&s, 50));
	ck_assert(checkpoint_writer_due(&s, 101));
	checkpoint_writer_done(&s, SQLITE_FULL, 110);
	checkpoint_commit(&s, 25, 120);
	ck_assert(!s.disk_full);
	ck_assert(!checkpoint_writer_due(&s, 120));	/* 25 frames: nothing due */
	s.disk_full = true;
	checkpoint_writer_done(&s, SQLITE_OK, 130);
	ck_assert(!s.disk_full);
	checkpoint_commit(&s, LIMIT, 140);
	ck_assert(checkpoint_writer_due(&s, 140));
}
END_TEST

/* An error never makes a tight loop; names are stable for stats. */
START_TEST(bad_input)
{
	struct ckpt_state s = fresh();

	checkpoint_commit(&s, 700, 0);
	checkpoint_done(&s, CKPT_PASSIVE, SQLITE_IOERR, 700, s.commits, 5);
	ck_assert_int_eq(checkpoint_next(&s, 6), CKPT_NONE);
	ck_assert_int_eq(checkpoint_next(&s, 4 + IVL), CKPT_NONE);
	/* A commit with enough new frames makes a pass due again. */
	checkpoint_commit(&s, 900, 6);
	ck_assert_int_eq(checkpoint_next(&s, 6), CKPT_PASSIVE);
	ck_assert_str_eq(checkpoint_mode_name(CKPT_NONE), "none");
	ck_assert_str_eq(checkpoint_mode_name(CKPT_PASSIVE), "passive");
	ck_assert_str_eq(checkpoint_mode_name(CKPT_RESTART), "restart");
	ck_assert_str_eq(checkpoint_mode_name(CKPT_TRUNCATE), "truncate");
	ck_assert_str_eq(checkpoint_mode_name((enum ckpt_mode)42), "?");
	/* An empty WAL is never restarted. */
	s = fresh();
	s.limit_frames = 0;
	ck_assert(!checkpoint_writer_due(&s, 0));
}
END_TEST

Suite *
checkpoint_suite(void)
{
	Suite *s = suite_create("checkpoint");
	TCase *tc = tcase_create("choice");

	tcase_set_timeout(tc, 10);
	tcase_add_test(tc, choose_by_frames);
	tcase_add_test(tc, passive_per_quarter_wake);
	tcase_add_test(tc, writer_restart);
	tcase_add_test(tc, truncate_at_rest);
	tcase_add_test(tc, truncate_race);
	tcase_add_test(tc, wait_until_due);
	tcase_add_test(tc, disk_full);
	suite_add_tcase(s, tc);
	tc = tcase_create("bad input");
	tcase_set_timeout(tc, 10);
	tcase_add_test(tc, bad_input);
	suite_add_tcase(s, tc);
	return s;
}
TEST_SUITE(checkpoint_suite)
