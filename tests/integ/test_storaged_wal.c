/*
 * bin/ao-storaged and ao.db's files: the WAL stays bounded under sustained
 * writes (with cdcd's reader open) and shrinks at rest, a lagging
 * checkpoint is logged, another process's lock stalls only the writes that
 * need it, and a full disk recovers once space is freed.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sqlite3.h>

#include "common/aotime.h"
#include "proto/bclient.h"
#include "tests/lib/integ.h"
#include "tests/lib/testlib.h"

#define CALL_TIMEOUT_MS		5000
#define READY_TIMEOUT_MS	10000
#define MIB			(1024 * 1024)

static char *dir;
static char sock[256];		/* <dir>/run/storaged.sock */
static char dbpath[256];	/* <dir>/ao.db */
static char walpath[256];	/* <dir>/ao.db-wal */
static char logpath[256];
static bool mounted;		/* dir is a tmpfs of the test's */

static void
paths_in(const char *d)
{
	snprintf(sock, sizeof(sock), "%s/run/storaged.sock", d);
	snprintf(dbpath, sizeof(dbpath), "%s/ao.db", d);
	snprintf(walpath, sizeof(walpath), "%s/ao.db-wal", d);
}

static void
setup(void)
{
	dir = testlib_tmpdir();
	mounted = false;
	paths_in(dir);
	/* Outside dir: the full-disk test mounts a tmpfs over it. */
	snprintf(logpath, sizeof(logpath), "%s.log", dir);
	integ_configure(&(struct integ_conf){ .dir = dir, .log = logpath,
	    .ready_ms = READY_TIMEOUT_MS, .call_ms = CALL_TIMEOUT_MS });
}

static void
teardown(void)
{
	testlib_reap_all();
	if (mounted)
		umount2(dir, MNT_DETACH);
	testlib_rmrf(dir);
	unlink(logpath);
	free(dir);
}

static int64_t
fsize(const char *path)
{
	struct stat sb;

	return stat(path, &sb) == 0 ? (int64_t)sb.st_size : 0;
}

/* A project and one session; the session's id goes to id. */
static void
add_session(struct bclient *bc, char *id, size_t idlen)
{
	struct rpc_buf b;
	struct bclient_msg res;

	rpc_buf_init(&b);
	integ_params(&b, 2);
	rpc_pack_kv_str(&b.pk, "id", "app");
	rpc_pack_kv_str(&b.pk, "path", "/srv/app");
	integ_call_ok(bc, "project.upsert", &b, NULL);
	integ_params(&b, 1);
	rpc_pack_kv_str(&b.pk, "project_id", "app");
	integ_call_ok(bc, "session.create", &b, &res);
	integ_get_str(res.m.result, "id", id, idlen);
	bclient_msg_free(&res);
	rpc_buf_free(&b);
}

/*
 * session.update {id, activity_at: i}, and with flip an activity_state
 * change too (then session_updated writes change_log, as real traffic
 * does).  Returns 0, or -1 with err.
 */
static int
update(struct bclient *bc, const char *id, int64_t i, bool flip,
    struct rpc_error *err)
{
	struct rpc_buf b;
	struct bclient_msg res;
	int rc;

	rpc_buf_init(&b);
	integ_params(&b, flip ? 3 : 2);
	rpc_pack_kv_str(&b.pk, "id", id);
	rpc_pack_kv_i64(&b.pk, "activity_at", i);
	if (flip)
		rpc_pack_kv_str(&b.pk, "activity_state", i % 2 ? "active" : "idle");
	rc = bclient_call(bc, "session.update", b.sb.data, b.sb.size,
	    CALL_TIMEOUT_MS, &res, err);
	if (rc == 0)
		bclient_msg_free(&res);
	rpc_buf_free(&b);
	return rc;
}

static void
update_ok(struct bclient *bc, const char *id, int64_t i, bool flip)
{
	struct rpc_error err;

	ck_assert_msg(update(bc, id, i, flip, &err) == 0, "update %lld: %s: %s",
	    (long long)i, rpc_code_name(err.code), err.message);
}

static int64_t
activity_at(struct bclient *bc, const char *id)
{
	struct rpc_buf b;
	struct bclient_msg res;
	int64_t v;

	rpc_buf_init(&b);
	integ_params(&b, 1);
	rpc_pack_kv_str(&b.pk, "id", id);
	integ_call_ok(bc, "session.get", &b, &res);
	v = integ_is_nil(res.m.result, "activity_at") ? -1 :
	    integ_get_i64(res.m.result, "activity_at");
	bclient_msg_free(&res);
	rpc_buf_free(&b);
	return v;
}

/* Whether the daemons' log has needle. */
static bool
log_has(const char *needle)
{
	char buf[65536];
	int fd = open(logpath, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd == -1)
		return false;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return false;
	buf[n] = '\0';
	return strstr(buf, needle) != NULL;
}

/*
 * 1. 3,000 single writes with cdcd's reader open (3,000 made a 51 MB WAL
 * and a 4 KiB ao.db before): the WAL stays within a few MiB (twice the
 * 4 MiB limit at the very most, plus margin), ao.db gets the pages, the
 * WAL goes back to nothing at rest, and stats tell it.
 */
START_TEST(wal_bounded)
{
	struct bclient *bc, *sub;
	struct bclient_msg res;
	struct rpc_error err;
	char id[64];
	int64_t max = 0, i;

	integ_start("ao-storaged", NULL);
	integ_start("ao-cdcd", NULL);
	bc = integ_connect(sock);
	add_session(bc, id, sizeof(id));
	/* A live subscriber, so cdcd reads every commit as it lands. */
	{
		char csock[256];
		struct rpc_buf b;

		snprintf(csock, sizeof(csock), "%s/run/cdcd.sock", dir);
		sub = integ_connect(csock);
		rpc_buf_init(&b);
		integ_params(&b, 0);
		integ_call_ok(sub, "subscribe", &b, NULL);
		rpc_buf_free(&b);
	}
	for (i = 1; i <= 3000; i++) {
		update_ok(bc, id, i, true);
		if (i % 25 == 0 && fsize(walpath) > max)
			max = fsize(walpath);
		/* Drain the subscriber now and then so cdcd never holds back. */
		if (i % 500 == 0)
			while (bclient_next(sub, 0, &res, &err) == 1)
				bclient_msg_free(&res);
	}
	/* Twice the 4 MiB limit at the very most, plus a commit's frames. */
	ck_assert_msg(max <= 9 * MIB, "the WAL reached %lld bytes", (long long)max);
	/* The high-water mark of every commit, not just the samples. */
	max = integ_stat(bc, "wal", "peak_bytes");
	ck_assert_msg(max > 0 && max <= 9 * MIB, "the WAL held up to %lld bytes",
	    (long long)max);
	ck_assert_msg(fsize(dbpath) >= 256 * 1024, "ao.db is %lld bytes: the "
	    "checkpoints did not reach it", (long long)fsize(dbpath));
	/* At rest (checkpoint_interval_ms 1000): truncated. */
	INTEG_WAIT(fsize(walpath) <= 64 * 1024, 15000, 50,
	    "the WAL is still %lld bytes at rest", (long long)fsize(walpath));
	ck_assert_int_gt(integ_stat(bc, "wal", "checkpoints"), 0);
	/* storaged's RESTART at the limit, not only the truncate at rest. */
	ck_assert_int_gt(integ_stat(bc, "wal", "in_writer"), 0);
	ck_assert_int_gt(integ_stat(bc, "wal", "restarts"), 1);
	ck_assert_int_gt(integ_stat(bc, "wal", "last_checkpoint_at"), 0);
	ck_assert_int_eq(integ_stat(bc, "wal", "failed"), 0);
	ck_assert_int_eq(activity_at(bc, id), 3000);
	bclient_free(sub);
	bclient_free(bc);
}
END_TEST

/*
 * 2. A reader that keeps an old snapshot open keeps the log from starting
 * over: storaged says so in its log (lagging), writes go on, and once the
 * reader lets go the WAL folds back.
 */
START_TEST(wal_lagging_logged)
{
	static const char *const extra[] = { "--wal-limit-bytes=256KiB",
		"--checkpoint-interval-ms=200", NULL };
	struct bclient *bc;
	sqlite3 *rd;
	char id[64];
	int64_t i;

	integ_start("ao-storaged", extra);
	bc = integ_connect(sock);
	add_session(bc, id, sizeof(id));
	ck_assert_int_eq(sqlite3_open_v2(dbpath, &rd, SQLITE_OPEN_READONLY, NULL),
	    SQLITE_OK);
	ck_assert_int_eq(sqlite3_exec(rd, "BEGIN; SELECT count(*) FROM sessions",
	    NULL, NULL, NULL), SQLITE_OK);
	for (i = 1; i <= 1500; i++)
		update_ok(bc, id, i, true);
	ck_assert_msg(fsize(walpath) > 512 * 1024, "the WAL is only %lld bytes "
	    "with a reader in the way", (long long)fsize(walpath));
	INTEG_WAIT(log_has("WAL checkpoint lagging"), 10000, 50,
	    "no lagging warning: %s", integ_log_tail());
	ck_assert_int_gt(integ_stat(bc, "wal", "busy") +
	    integ_stat(bc, "wal", "in_writer"), 0);
	ck_assert_int_eq(sqlite3_exec(rd, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(rd);
	INTEG_WAIT(fsize(walpath) <= 64 * 1024, 15000, 50,
	    "the WAL is still %lld bytes after the reader left",
	    (long long)fsize(walpath));
	ck_assert_int_eq(activity_at(bc, id), 1500);
	bclient_free(bc);
}
END_TEST

/* A write on its own connection, from a thread, so the test can go on. */
struct bg_write {
	pthread_t t;
	const char *id;
	int rc;
	struct rpc_error err;
	volatile bool done;
};

static void *
bg_write_main(void *arg)
{
	struct bg_write *w = arg;
	struct bclient_msg res;
	struct bclient *bc;
	struct rpc_buf b;
	char err[256];

	bc = bclient_connect(sock, err, sizeof(err));
	if (bc == NULL) {
		w->rc = -1;
		rpc_error_set(&w->err, RPC_UNAVAILABLE, "%s", err);
		w->done = true;
		return NULL;
	}
	rpc_buf_init(&b);
	integ_params(&b, 2);
	rpc_pack_kv_str(&b.pk, "id", w->id);
	rpc_pack_kv_i64(&b.pk, "activity_at", 777);
	w->rc = bclient_call(bc, "session.update", b.sb.data, b.sb.size, 120000,
	    &res, &w->err);
	if (w->rc == 0)
		bclient_msg_free(&res);
	rpc_buf_free(&b);
	bclient_free(bc);
	w->done = true;
	return NULL;
}

/* An outside writer's lock, as an operator's sqlite3 shell takes it. */
static sqlite3 *
lock_db(void)
{
	sqlite3 *db;

	ck_assert_int_eq(sqlite3_open(dbpath, &db), SQLITE_OK);
	/* storaged's own checkpoint may hold the lock for a moment at rest. */
	sqlite3_busy_timeout(db, 5000);
	ck_assert_int_eq(sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL),
	    SQLITE_OK);
	return db;
}

static void
unlock_db(sqlite3 *db)
{
	ck_assert_int_eq(sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
}

/*
 * 3. While an outside writer holds BEGIN IMMEDIATE, a write waits for it,
 * and meanwhile hello, a read and stats are answered (before, the loop
 * sat in SQLite's busy handler: hello took 4.8 s).  The lock is held
 * until all three have answered, so they cannot have waited for it.
 */
START_TEST(locked_db_keeps_serving)
{
	static const char *const extra[] = { "--busy-timeout-ms=120000", NULL };
	struct bg_write w = { 0 };
	struct bclient *bc, *other;
	char id[64];
	int64_t waits;
	pid_t pid;
	sqlite3 *lock;

	pid = integ_start("ao-storaged", extra);
	bc = integ_connect(sock);
	add_session(bc, id, sizeof(id));
	lock = lock_db();
	other = integ_connect(sock);
	/* With our lock held, storaged's own truncate cannot run either. */
	waits = integ_stat(other, NULL, "lock_waits");
	w.id = id;
	ck_assert_int_eq(pthread_create(&w.t, NULL, bg_write_main, &w), 0);
	INTEG_WAIT(integ_stat(other, NULL, "lock_waits") > waits, 10000, 20,
	    "the write never waited for the lock");
	integ_assert_hello(other, "storaged", pid);
	ck_assert_int_eq(activity_at(other, id), -1);
	ck_assert_int_eq(integ_stat(other, NULL, "writes"), 2);
	ck_assert_msg(!w.done, "the write finished while the lock was held");
	unlock_db(lock);
	pthread_join(w.t, NULL);
	ck_assert_msg(w.rc == 0, "the write failed: %s", w.err.message);
	ck_assert_int_eq(activity_at(other, id), 777);
	bclient_free(other);
	bclient_free(bc);
}
END_TEST

/*
 * 3b. SIGTERM while a write waits for another's lock: storaged still runs
 * its last group commit (operations.md, shutdown) — it waits for the lock
 * a little longer, commits and answers; if the lock stays, it answers
 * unavailable, stores nothing, and exits 0 all the same.
 */
START_TEST(locked_db_sigterm)
{
	struct bg_write w = { 0 };
	struct bclient *bc;
	char id[64];
	int64_t waits;
	pid_t pid;
	int round, st;
	sqlite3 *lock;

	for (round = 0; round < 2; round++) {
		memset(&w, 0, sizeof(w));
		pid = integ_start("ao-storaged", NULL);
		bc = integ_connect(sock);
		if (round == 0)
			add_session(bc, id, sizeof(id));
		lock = lock_db();
		waits = integ_stat(bc, NULL, "lock_waits");
		w.id = id;
		ck_assert_int_eq(pthread_create(&w.t, NULL, bg_write_main, &w), 0);
		INTEG_WAIT(integ_stat(bc, NULL, "lock_waits") > waits, 10000, 20,
		    "the write never waited for the lock");
		bclient_free(bc);
		ck_assert_int_eq(kill(pid, SIGTERM), 0);
		if (round == 0) {
			/* Well inside the 2 s storaged gives it at exit. */
			usleep(300 * 1000);
			unlock_db(lock);
		}
		pthread_join(w.t, NULL);
		st = testlib_wait(pid, 10000);
		ck_assert_msg(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0,
		    "ao-storaged: status 0x%x", st);
		if (round == 0)
			ck_assert_msg(w.rc == 0, "the write failed: %s", w.err.message);
		else {
			ck_assert_int_eq(w.rc, -1);
			integ_assert_err(&w.err, "session.update", RPC_UNAVAILABLE,
			    "shutting down");
			unlock_db(lock);
		}
	}
	/* The first write is stored; the second (777 again) changed nothing. */
	integ_start("ao-storaged", NULL);
	bc = integ_connect(sock);
	ck_assert_int_eq(activity_at(bc, id), 777);
	bclient_free(bc);
}
END_TEST

/* pr.write_observation params: PR 1 of session id, several statements. */
static void
pack_observation(struct rpc_buf *b, const char *id)
{
	integ_params(b, 2);
	rpc_pack_kv_str(&b->pk, "session_id", id);
	rpc_pack_str(&b->pk, "pr");
	msgpack_pack_map(&b->pk, 2);
	rpc_pack_kv_str(&b->pk, "url", "https://example.com/o/r/pull/1");
	rpc_pack_kv_i64(&b->pk, "number", 1);
}

/*
 * 4. Past busy_timeout_ms the write fails with unavailable and changes
 * nothing; once the lock is gone the same write goes through.
 */
START_TEST(locked_db_times_out)
{
	static const char *const extra[] = { "--busy-timeout-ms=300", NULL };
	struct bclient *bc;
	struct rpc_error err;
	struct rpc_buf b;
	char id[64];
	sqlite3 *lock;

	integ_start("ao-storaged", extra);
	bc = integ_connect(sock);
	add_session(bc, id, sizeof(id));
	lock = lock_db();
	rpc_buf_init(&b);
	pack_observation(&b, id);
	integ_call_err(bc, "pr.write_observation", &b, &err);
	integ_assert_err(&err, "pr.write_observation", RPC_UNAVAILABLE, "locked");
	ck_assert_int_eq(update(bc, id, 5, true, &err), -1);
	integ_assert_err(&err, "session.update", RPC_UNAVAILABLE, "locked");
	ck_assert_int_eq(integ_stat(bc, NULL, "lock_timeouts"), 2);
	unlock_db(lock);
	ck_assert_int_eq(activity_at(bc, id), -1);
	integ_params(&b, 1);
	rpc_pack_kv_str(&b.pk, "url", "https://example.com/o/r/pull/1");
	integ_expect_err(bc, "pr.get", &b, RPC_NOT_FOUND, NULL);
	pack_observation(&b, id);
	integ_call_ok(bc, "pr.write_observation", &b, NULL);
	update_ok(bc, id, 5, true);
	ck_assert_int_eq(activity_at(bc, id), 5);
	ck_assert(log_has("stayed locked"));
	rpc_buf_free(&b);
	bclient_free(bc);
}
END_TEST

/* Writes zeros to path until the file system is full; returns the bytes. */
static int64_t
fill(const char *path)
{
	static char zeros[64 * 1024];
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	int64_t n = 0;
	ssize_t w;

	ck_assert_msg(fd != -1, "%s: %s", path, strerror(errno));
	for (;;) {
		w = write(fd, zeros, sizeof(zeros));
		if (w <= 0)
			break;
		n += w;
	}
	/* The last partial blocks too. */
	while (write(fd, zeros, 512) > 0)
		n += 512;
	fsync(fd);
	close(fd);
	return n;
}

/*
 * 5. On a small file system that fills up, writes fail with unavailable
 * (not a crash, not internal), and once 700 KB are freed writes go on
 * for good: the WAL starts over inside the space it has instead of
 * growing (before: 34 writes, then full again).  Needs root for tmpfs.
 */
START_TEST(disk_full_recovers)
{
	struct bclient *bc;
	struct rpc_error err;
	char id[64], filler[300];
	int64_t i, filled;
	int failed = 0;
	pid_t pid;

	if (geteuid() != 0 || mount("ao-test", dir, "tmpfs", 0, "size=8m,mode=0700")
	    == -1) {
		fprintf(stderr, "disk_full_recovers: skipped (cannot mount a tmpfs: "
		    "%s)\n", geteuid() != 0 ? "not root" : strerror(errno));
		return;
	}
	mounted = true;
	pid = integ_start("ao-storaged", NULL);
	bc = integ_connect(sock);
	add_session(bc, id, sizeof(id));
	for (i = 1; i <= 200; i++)
		update_ok(bc, id, i, true);
	snprintf(filler, sizeof(filler), "%s/filler", dir);
	filled = fill(filler);
	ck_assert_int_gt(filled, 0);
	/* Full: writes fail, cleanly, until one can no longer fit. */
	for (i = 201; i <= 2000 && failed < 20; i++)
		if (update(bc, id, i, true, &err) == -1) {
			integ_assert_err(&err, "session.update", RPC_UNAVAILABLE,
			    "full");
			failed++;
		}
	ck_assert_msg(failed > 0, "no write failed on a full disk");
	integ_assert_hello(bc, "storaged", pid);
	ck_assert_int_eq(truncate(filler, filled - 700 * 1000), 0);
	/* Writes that do not grow ao.db go on for as long as anyone likes. */
	for (i = 0; i < 3000; i++)
		update_ok(bc, id, 10000 + i, false);
	ck_assert_int_eq(activity_at(bc, id), 12999);
	bclient_free(bc);
}
END_TEST

/* 6. The new keys are checked like every other: a bad value exits 100. */
START_TEST(bad_flags)
{
	static const char *const bad[][2] = {
		{ "--wal-limit-bytes=1", NULL },
		{ "--wal-limit-bytes=2GiB", NULL },
		{ "--checkpoint-pages=0", NULL },
		{ "--checkpoint-thread=maybe", NULL },
		{ "--busy-timeout-ms=-1", NULL },
		{ "--busy-timeout-ms=soon", NULL },
	};
	size_t i;
	int st;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		pid_t pid = integ_spawn("ao-storaged", bad[i], NULL);

		st = testlib_wait(pid, READY_TIMEOUT_MS);
		ck_assert_msg(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 100,
		    "%s: status 0x%x", bad[i][0], st);
	}
	ck_assert_int_eq(fsize(dbpath), 0);
}
END_TEST

Suite *
storaged_wal_suite(void)
{
	Suite *s = suite_create("storaged_wal");
	TCase *tc;

	tc = integ_tcase(s, "wal", 60, setup, teardown, 0);
	tcase_add_test(tc, wal_bounded);
	tcase_add_test(tc, wal_lagging_logged);
	tc = integ_tcase(s, "locks", 30, setup, teardown, 0);
	tcase_add_test(tc, locked_db_keeps_serving);
	tcase_add_test(tc, locked_db_times_out);
	tcase_add_test(tc, locked_db_sigterm);
	tc = integ_tcase(s, "disk full", 60, setup, teardown, 0);
	tcase_add_test(tc, disk_full_recovers);
	tc = integ_tcase(s, "bad input", 30, setup, teardown, 0);
	tcase_add_test(tc, bad_flags);
	return s;
}
TEST_SUITE(storaged_wal_suite)
