/*
 * storaged/checkpoint.c's pure core: which WAL checkpoint runs next, as a
 * truth table over the state the WAL hook and the passes keep.
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

START_TEST(choose_by_frames)
{
	struct ckpt_state s = fresh();

	checkpoint_commit(&s, 10, 0);
	ck_assert_int_eq(checkpoint_next(&s, 1), CKPT_NONE);
	checkpoint_commit(&s, WAKE - 1, 2);
	ck_assert_int_eq(checkpoint_next(&s, 2), CKPT_NONE);
	checkpoint_commit(&s, WAKE, 3);
	ck_assert_int_eq(checkpoint_next(&s, 3), CKPT_PASSIVE);
	checkpoint_commit(&s, LIMIT, 4);
	ck_assert_int_eq(checkpoint_next(&s, 4), CKPT_RESTART);
}
END_TEST

/* A passive pass is not repeated until commits bring a quarter wake more. */
START_TEST(passive_once_per_commit)
{
	struct ckpt_state s = fresh();

	checkpoint_commit(&s, 600, 0);
	ck_assert_int_eq(checkpoint_next(&s, 0), CKPT_PASSIVE);
	/* A reader kept some frames back: still nothing more until a commit. */
	checkpoint_done(&s, CKPT_PASSIVE, SQLITE_OK, 600, 1);
	ck_assert_int_eq(checkpoint_next(&s, 2), CKPT_NONE);
	/* Each pass costs an fsync: the next one waits for a quarter wake. */
	checkpoint_commit(&s, 600 + WAKE / 4 - 1, 3);
	ck_assert_int_eq(checkpoint_next(&s, 3), CKPT_NONE);
	checkpoint_commit(&s, 600 + WAKE / 4, 4);
	ck_assert_int_eq(checkpoint_next(&s, 4), CKPT_PASSIVE);
	/* Enough commits during the pass: another pass at once. */
	checkpoint_commit(&s, 600 + WAKE / 2, 5);
	checkpoint_done(&s, CKPT_PASSIVE, SQLITE_OK, 600 + WAKE / 4, 6);
	ck_assert_int_eq(checkpoint_next(&s, 6), CKPT_PASSIVE);
}
END_TEST

/* A successful RESTART empties the state; the next commit starts small. */
START_TEST(restart_starts_over)
{
	struct ckpt_state s = fresh();

	checkpoint_commit(&s, 1200, 0);
	ck_assert_int_eq(checkpoint_next(&s, 0), CKPT_RESTART);
	checkpoint_done(&s, CKPT_RESTART, SQLITE_OK, 1200, 1);
	ck_assert_int_eq(s.frames, 0);
	ck_assert(!s.wal_empty);	/* the file is still there, for reuse */
	ck_assert_int_eq(checkpoint_next(&s, 2), CKPT_NONE);
	checkpoint_commit(&s, 4, 3);
	ck_assert_int_eq(checkpoint_next(&s, 3), CKPT_NONE);
}
END_TEST

/*
 * A RESTART a reader blocks is not retried in a loop: only after the WAL
 * grew by half a wake, or an interval passed.
 */
START_TEST(busy_restart_backs_off)
{
	struct ckpt_state s = fresh();

	checkpoint_commit(&s, 1200, 0);
	checkpoint_done(&s, CKPT_RESTART, SQLITE_BUSY, 1200, 10);
	ck_assert_int_eq(checkpoint_next(&s, 11), CKPT_NONE);
	checkpoint_commit(&s, 1200 + WAKE / 2 - 1, 12);
	ck_assert_int_eq(checkpoint_next(&s, 12), CKPT_NONE);
	checkpoint_commit(&s, 1200 + WAKE / 2, 13);
	ck_assert_int_eq(checkpoint_next(&s, 13), CKPT_RESTART);
	checkpoint_done(&s, CKPT_RESTART, SQLITE_BUSY, 1450, 20);
	ck_assert_int_eq(checkpoint_next(&s, 21), CKPT_NONE);
	ck_assert_int_eq(checkpoint_next(&s, 20 + IVL), CKPT_RESTART);
	/* The log starting over (the reader left) clears the back-off. */
	checkpoint_commit(&s, 3, 30);
	ck_assert_int_eq(s.retry_at_ms, 0);
	ck_assert_int_eq(s.retry_frames, 0);
}
END_TEST

/* At rest the WAL is truncated once; a commit makes it due again. */
START_TEST(truncate_at_rest)
{
	struct ckpt_state s = fresh();

	checkpoint_commit(&s, 40, 100);
	ck_assert_int_eq(checkpoint_next(&s, 100 + IVL - 1), CKPT_NONE);
	ck_assert_int_eq(checkpoint_next(&s, 100 + IVL), CKPT_TRUNCATE);
	checkpoint_done(&s, CKPT_TRUNCATE, SQLITE_OK, 40, 100 + IVL);
	ck_assert(s.wal_empty);
	ck_assert_int_eq(checkpoint_next(&s, 100 + 5 * IVL), CKPT_NONE);
	checkpoint_commit(&s, 2, 200 + 5 * IVL);
	ck_assert_int_eq(checkpoint_next(&s, 200 + 6 * IVL), CKPT_TRUNCATE);
	/* Busy at rest (a reader): tried again an interval later. */
	checkpoint_done(&s, CKPT_TRUNCATE, SQLITE_BUSY, 2, 200 + 6 * IVL);
	ck_assert_int_eq(checkpoint_next(&s, 200 + 7 * IVL - 1), CKPT_NONE);
	ck_assert_int_eq(checkpoint_next(&s, 200 + 7 * IVL), CKPT_TRUNCATE);
}
END_TEST

/*
 * The writer's own passes: a write that failed for want of space, a WAL
 * at a limit that free space lowered, a thread that fell behind.
 */
START_TEST(writer_passes)
{
	struct ckpt_state s = fresh();

	checkpoint_commit(&s, 20, 0);
	ck_assert(!checkpoint_writer_due(&s, 0));
	/* Disk full: at once; failing, every 100 ms; then done. */
	s.disk_full = true;
	ck_assert(checkpoint_writer_due(&s, 1));
	checkpoint_writer_done(&s, SQLITE_FULL, false, 1);
	ck_assert(s.disk_full);
	ck_assert(!checkpoint_writer_due(&s, 50));
	ck_assert(checkpoint_writer_due(&s, 101));
	/* A commit that went through means space is back: try at once. */
	checkpoint_writer_done(&s, SQLITE_FULL, false, 110);
	checkpoint_commit(&s, 25, 120);
	ck_assert(checkpoint_writer_due(&s, 120));
	checkpoint_writer_done(&s, SQLITE_OK, true, 121);
	ck_assert(!s.disk_full);
	ck_assert(!checkpoint_writer_due(&s, 122));

	/* Space short: past the lowered limit, after every commit. */
	s = fresh();
	s.tight = true;
	checkpoint_commit(&s, LIMIT - 1, 0);
	ck_assert(!checkpoint_writer_due(&s, 0));
	checkpoint_commit(&s, LIMIT, 1);
	ck_assert(checkpoint_writer_due(&s, 1));
	checkpoint_writer_done(&s, SQLITE_OK, true, 1);
	ck_assert(!checkpoint_writer_due(&s, 2));
	checkpoint_commit(&s, 3, 3);	/* the log started over */
	ck_assert_int_eq(s.writer_mark, 0);
	ck_assert(!checkpoint_writer_due(&s, 3));
	/* A reader holds the log back: not more than every 100 ms. */
	checkpoint_commit(&s, LIMIT + 10, 4);
	checkpoint_writer_done(&s, SQLITE_OK, false, 4);
	checkpoint_commit(&s, LIMIT + 20, 5);
	ck_assert(!checkpoint_writer_due(&s, 5));
	ck_assert(checkpoint_writer_due(&s, 104));

	/* Plenty of space: only at twice the limit, then every half limit. */
	s = fresh();
	checkpoint_commit(&s, 2 * LIMIT - 1, 0);
	ck_assert(!checkpoint_writer_due(&s, 0));
	checkpoint_commit(&s, 2 * LIMIT, 1);
	ck_assert(checkpoint_writer_due(&s, 1));
	checkpoint_writer_done(&s, SQLITE_OK, false, 1);
	checkpoint_commit(&s, 2 * LIMIT + LIMIT / 2 - 1, 200);
	ck_assert(!checkpoint_writer_due(&s, 200));
	checkpoint_commit(&s, 2 * LIMIT + LIMIT / 2, 201);
	ck_assert(checkpoint_writer_due(&s, 201));
}
END_TEST

/* An error never makes a tight loop; names are stable for stats. */
START_TEST(bad_input)
{
	struct ckpt_state s = fresh();

	checkpoint_commit(&s, 700, 0);
	checkpoint_done(&s, CKPT_PASSIVE, SQLITE_IOERR, 700, 5);
	checkpoint_commit(&s, 900, 6);
	ck_assert_int_eq(checkpoint_next(&s, 6), CKPT_NONE);
	ck_assert_int_eq(checkpoint_next(&s, 5 + IVL), CKPT_PASSIVE);
	ck_assert_str_eq(checkpoint_mode_name(CKPT_NONE), "none");
	ck_assert_str_eq(checkpoint_mode_name(CKPT_PASSIVE), "passive");
	ck_assert_str_eq(checkpoint_mode_name(CKPT_RESTART), "restart");
	ck_assert_str_eq(checkpoint_mode_name(CKPT_TRUNCATE), "truncate");
	ck_assert_str_eq(checkpoint_mode_name((enum ckpt_mode)42), "?");
	/* An empty WAL is never restarted. */
	s = fresh();
	s.limit_frames = 0;
	ck_assert_int_eq(checkpoint_next(&s, 0), CKPT_NONE);
}
END_TEST

Suite *
checkpoint_suite(void)
{
	Suite *s = suite_create("checkpoint");
	TCase *tc = tcase_create("choice");

	tcase_set_timeout(tc, 10);
	tcase_add_test(tc, choose_by_frames);
	tcase_add_test(tc, passive_once_per_commit);
	tcase_add_test(tc, restart_starts_over);
	tcase_add_test(tc, busy_restart_backs_off);
	tcase_add_test(tc, truncate_at_rest);
	tcase_add_test(tc, writer_passes);
	suite_add_tcase(s, tc);
	tc = tcase_create("bad input");
	tcase_set_timeout(tc, 10);
	tcase_add_test(tc, bad_input);
	suite_add_tcase(s, tc);
	return s;
}
TEST_SUITE(checkpoint_suite)
