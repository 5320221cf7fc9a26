/*
 * WAL checkpoints: the WAL stays bounded under sustained writes and goes
 * back to nothing at rest, while the copying stays off storaged's loop.
 *
 * SQLite's automatic checkpoint copies the whole WAL into ao.db inside
 * whichever COMMIT crosses wal_autocheckpoint frames, fsyncs included,
 * and every request queued behind it on storaged's single loop waits too.
 * So by default it is off.  A thread with its own connection does the
 * copying, told by the writer's WAL hook how many frames each commit left;
 * the writer only finishes the job:
 *
 *   thread:  frames >= checkpoint_pages (or half the limit), then every
 *              quarter of that more ──► PASSIVE: copies what no reader
 *                                       needs; nobody waits
 *            no commit for interval ──► TRUNCATE: the file goes to 0 bytes
 *   writer:  frames >= limit ─────────► RESTART, in the loop, after the
 *              answers are sent         commit: copies the tail the thread
 *                                       has not, and the next commit
 *                                       starts the log over
 *            a write failed for want
 *              of space ──────────────► RESTART at once
 *            busy (a reader on an old
 *              snapshot) or failed ───► again 100 ms later, or at once
 *                                       after a commit while space was out
 *
 * A passive pass alone never restarts the log under sustained writes (new
 * frames keep arriving while it copies, and the log only starts over once
 * every frame is in ao.db); the writer's RESTART does, since nothing else
 * writes meanwhile.  The limit shrinks with free disk space, so on a nearly
 * full disk the log starts over inside the file it has instead of growing
 * it, and journal_size_limit cuts the file back to the limit.  The choices
 * are pure functions of a small state (struct ckpt_state), unit-tested.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>

#include "common/aotime.h"
#include "common/log.h"
#include "common/xmalloc.h"
#include "storaged/storaged.h"

#define CKPT_BUSY_MS		100	/* the thread's TRUNCATE waits for readers */
#define CKPT_LIMIT_FLOOR	(64 * 4096)	/* the smallest limit free space can set */
#define CKPT_LOG_EVERY_MS	60000	/* repeated warnings, at most this often */
#define CKPT_WRITER_RETRY_MS	100	/* the writer's passes after a failed one */

enum { CKPT_WARN_FAILED, CKPT_WARN_BEHIND, CKPT_WARN_HELD, CKPT_WARN_KINDS };

const char *
checkpoint_mode_name(enum ckpt_mode m)
{
	switch (m) {
	case CKPT_NONE:
		return "none";
	case CKPT_PASSIVE:
		return "passive";
	case CKPT_RESTART:
		return "restart";
	case CKPT_TRUNCATE:
		return "truncate";
	}
	return "?";
}

enum ckpt_mode
checkpoint_next(const struct ckpt_state *s, int64_t now_ms)
{
	if (now_ms < s->retry_at_ms)
		return CKPT_NONE;
	/*
	 * Passes of a quarter wake at least: each one costs an fsync.  None
	 * once the writer's RESTART is due: it would only make it wait.
	 */
	if (s->frames >= s->wake_frames &&
	    s->frames >= s->seen_frames + (s->wake_frames + 3) / 4 &&
	    !checkpoint_writer_due(s, now_ms))
		return CKPT_PASSIVE;
	if (!s->wal_empty && now_ms - s->last_commit_ms >= s->interval_ms)
		return CKPT_TRUNCATE;
	return CKPT_NONE;
}

int64_t
checkpoint_wait_ms(const struct ckpt_state *s, int64_t now_ms)
{
	int64_t wait = s->interval_ms;

	if (!s->wal_empty && s->last_commit_ms + s->interval_ms - now_ms < wait)
		wait = s->last_commit_ms + s->interval_ms - now_ms;
	if (s->retry_at_ms > now_ms && s->retry_at_ms - now_ms > wait)
		wait = s->retry_at_ms - now_ms;
	return wait < 1 ? 1 : wait;
}

void
checkpoint_done(struct ckpt_state *s, enum ckpt_mode m, int rc,
    int64_t frames_at_start, uint64_t commits_at_start, int64_t now_ms)
{
	if (m == CKPT_TRUNCATE && rc == SQLITE_OK) {
		/* A commit right after it has its own frames: leave them. */
		if (s->commits == commits_at_start) {
			s->frames = s->seen_frames = s->writer_mark = 0;
			s->wal_empty = true;
		}
		return;
	}
	/* A passive pass has nothing more to do until the next commits. */
	s->seen_frames = frames_at_start;
	/* Busy (another process's lock, a reader at rest) or failed. */
	if (rc != SQLITE_OK)
		s->retry_at_ms = now_ms + s->interval_ms;
}

bool
checkpoint_writer_due(const struct ckpt_state *s, int64_t now_ms)
{
	if (now_ms < s->writer_at_ms)
		return false;
	if (s->disk_full)
		return true;
	/* After a RESTART a reader held back: again a quarter wake later. */
	return s->frames > 0 && s->frames >= s->limit_frames &&
	    (s->writer_mark == 0 ||
	    s->frames >= s->writer_mark + (s->wake_frames + 3) / 4);
}

void
checkpoint_writer_done(struct ckpt_state *s, int rc, int64_t now_ms)
{
	s->writer_mark = s->frames;
	if (rc == SQLITE_OK) {
		s->disk_full = false;
		return;
	}
	/* No space for ao.db either, an I/O error: not before 100 ms. */
	if (rc != SQLITE_BUSY)
		s->writer_at_ms = now_ms + CKPT_WRITER_RETRY_MS;
}

void
checkpoint_commit(struct ckpt_state *s, int64_t frames, int64_t now_ms)
{
	if (frames < s->frames)
		s->seen_frames = s->writer_mark = 0;	/* the log started over */
	/* A commit went through while writes were failing: space is back. */
	if (s->disk_full) {
		s->disk_full = false;
		s->writer_at_ms = 0;
	}
	s->frames = frames;
	s->last_commit_ms = now_ms;
	s->wal_empty = false;
	s->retry_at_ms = 0;
	s->commits++;
}

struct checkpoint {
	pthread_t thread;
	pthread_mutex_t mu;	/* st, stats, stop */
	pthread_cond_t cv;
	pthread_mutex_t run_mu;	/* held for each pass: thread or writer */
	bool started, stop;
	sqlite3 *db;		/* the thread's connection */
	sqlite3 *writer;	/* storaged's: its WAL hook and its RESTART */
	char *wal_path, *dir;
	int64_t frame_bytes;
	int64_t cfg_pages, cfg_limit_bytes;

	struct ckpt_state st;
	int64_t thread_copied;	/* frames the thread's last pass reached */
	struct checkpoint_stats stats;	/* for stats, under mu */
	int64_t prev_frames;	/* before the last commit */
	struct log_limit warned[CKPT_WARN_KINDS];	/* each kind apart; under mu */
};

/* Under c->mu: the limits from the configuration and the free disk space. */
static void
ckpt_limits(struct checkpoint *c, int64_t wal_bytes, int64_t free_bytes)
{
	int64_t limit = c->cfg_limit_bytes, room;

	/* Free space lowers the limit, never below the floor nor raises it. */
	if (free_bytes >= 0) {
		room = wal_bytes + free_bytes / 2;
		if (room < CKPT_LIMIT_FLOOR)
			room = CKPT_LIMIT_FLOOR;
		if (room < limit)
			limit = room;
	}
	c->stats.limit_bytes = limit;
	c->st.limit_frames = limit / c->frame_bytes;
	c->st.wake_frames = c->cfg_pages;
	if (c->st.wake_frames > c->st.limit_frames / 2)
		c->st.wake_frames = c->st.limit_frames / 2;
	if (c->st.wake_frames < 1)
		c->st.wake_frames = 1;
}

static int64_t
file_size(const char *path)
{
	struct stat sb;

	return stat(path, &sb) == 0 ? (int64_t)sb.st_size : 0;
}

static int64_t
free_space(const char *dir)
{
	struct statvfs vfs;

	if (statvfs(dir, &vfs) == -1)
		return -1;
	return (int64_t)vfs.f_bavail * (int64_t)vfs.f_frsize;
}

/*
 * Runs one pass of mode on db (the thread's or the writer's connection);
 * records it.  Called without c->mu.
 */
static void
ckpt_pass(struct checkpoint *c, sqlite3 *db, enum ckpt_mode m, bool in_writer)
{
	static const int modes[] = {
		[CKPT_PASSIVE] = SQLITE_CHECKPOINT_PASSIVE,
		[CKPT_RESTART] = SQLITE_CHECKPOINT_RESTART,
		[CKPT_TRUNCATE] = SQLITE_CHECKPOINT_TRUNCATE,
	};
	int64_t t0, us, now, wal, avail, frames, before;
	uint64_t commits;
	bool wait;
	int rc, nlog = -1, nckpt = -1;

	/*
	 * The writer waits for a pass of the thread in progress only when
	 * the WAL is past twice its limit; short of that, the next commit
	 * tries again, so the loop rarely waits for the thread's fsync.
	 */
	pthread_mutex_lock(&c->mu);
	frames = c->st.frames;
	wait = !in_writer || c->st.disk_full || frames >= 2 * c->st.limit_frames;
	pthread_mutex_unlock(&c->mu);
	if (wait)
		pthread_mutex_lock(&c->run_mu);
	else if (pthread_mutex_trylock(&c->run_mu) != 0)
		return;
	pthread_mutex_lock(&c->mu);
	frames = c->st.frames;
	commits = c->st.commits;
	before = c->prev_frames;
	pthread_mutex_unlock(&c->mu);
	t0 = aotime_mono_us();
	rc = sqlite3_wal_checkpoint_v2(db, "main", modes[m], &nlog, &nckpt);
	us = aotime_mono_us() - t0;
	pthread_mutex_unlock(&c->run_mu);
	wal = file_size(c->wal_path);
	avail = free_space(c->dir);
	now = aotime_mono_ms();

	pthread_mutex_lock(&c->mu);
	if (in_writer)
		checkpoint_writer_done(&c->st, rc & 0xff, now);
	else
		checkpoint_done(&c->st, m, rc & 0xff, frames, commits, now);
	c->stats.runs++;
	if (in_writer)
		c->stats.in_writer++;
	c->stats.last_at = aotime_wall_ms();
	c->stats.last_mode = m;
	c->stats.last_us = us;
	c->stats.last_rc = rc;
	c->stats.wal_bytes = wal;
	if (rc == SQLITE_OK && m != CKPT_PASSIVE)
		c->stats.restarts++;
	ckpt_limits(c, wal, avail);
	if ((rc & 0xff) == SQLITE_BUSY) {
		c->stats.busy++;
		/* At rest a reader in the way is normal; growing past it is not. */
		if (in_writer && frames >= 2 * c->st.limit_frames) {
			log_warnx_limited(&c->warned[CKPT_WARN_HELD],
			    CKPT_LOG_EVERY_MS, now, "WAL checkpoint lagging: "
			    "the WAL holds %lld frames (%lld KiB), over twice "
			    "its limit, and a reader on an old snapshot or "
			    "another process's lock keeps it from starting over",
			    (long long)frames,
			    (long long)(frames * c->frame_bytes / 1024));
		}
	} else if (rc != SQLITE_OK) {
		c->stats.failed++;
		snprintf(c->stats.last_error, sizeof(c->stats.last_error), "%s",
		    sqlite3_errstr(rc));
		log_warnx_limited(&c->warned[CKPT_WARN_FAILED], CKPT_LOG_EVERY_MS,
		    now, "WAL checkpoint (%s) failed: %s",
		    checkpoint_mode_name(m), sqlite3_errstr(rc));
	} else if (in_writer && before >= c->st.wake_frames &&
	    nckpt - c->thread_copied > c->st.limit_frames / 2) {
		/*
		 * The thread copied less than half though it had been due
		 * (not one big commit that crossed the limit): behind.
		 */
		log_warnx_limited(&c->warned[CKPT_WARN_BEHIND], CKPT_LOG_EVERY_MS,
		    now, "WAL checkpoint lagging: storaged copied %lld of %d "
		    "frames itself (%lld ms): the checkpoint thread is not "
		    "keeping up", (long long)(nckpt - c->thread_copied), nlog,
		    (long long)(us / 1000));
	}
	if (!in_writer && m == CKPT_PASSIVE && rc == SQLITE_OK)
		c->thread_copied = nckpt;
	else if (rc == SQLITE_OK && m != CKPT_PASSIVE)
		c->thread_copied = 0;
	pthread_mutex_unlock(&c->mu);
	log_debug("WAL checkpoint %s%s: rc %d, %d of %d frames, %lld us",
	    checkpoint_mode_name(m), in_writer ? " (writer)" : "", rc, nckpt,
	    nlog, (long long)us);
}

static void *
checkpoint_main(void *arg)
{
	struct checkpoint *c = arg;
	struct timespec ts;
	enum ckpt_mode m;
	int64_t wait_ms;

	pthread_mutex_lock(&c->mu);
	while (!c->stop) {
		m = checkpoint_next(&c->st, aotime_mono_ms());
		if (m == CKPT_NONE) {
			wait_ms = checkpoint_wait_ms(&c->st, aotime_mono_ms());
			clock_gettime(CLOCK_MONOTONIC, &ts);
			ts.tv_sec += wait_ms / 1000;
			ts.tv_nsec += (wait_ms % 1000) * 1000000;
			if (ts.tv_nsec >= 1000000000) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000;
			}
			pthread_cond_timedwait(&c->cv, &c->mu, &ts);
			continue;
		}
		pthread_mutex_unlock(&c->mu);
		ckpt_pass(c, c->db, m, false);
		pthread_mutex_lock(&c->mu);
	}
	pthread_mutex_unlock(&c->mu);
	return NULL;
}

/* The writer's WAL hook: runs inside each COMMIT, so it only takes notes. */
static int
ckpt_hook(void *arg, sqlite3 *db, const char *name, int frames)
{
	struct checkpoint *c = arg;

	(void)db;
	(void)name;
	pthread_mutex_lock(&c->mu);
	if (frames < c->st.frames)
		c->thread_copied = 0;
	c->prev_frames = c->st.frames;
	checkpoint_commit(&c->st, frames, aotime_mono_ms());
	if (frames > c->stats.peak_frames)
		c->stats.peak_frames = frames;
	if (checkpoint_next(&c->st, c->st.last_commit_ms) != CKPT_NONE)
		pthread_cond_signal(&c->cv);
	pthread_mutex_unlock(&c->mu);
	return SQLITE_OK;
}

static void
ckpt_free(struct checkpoint *c)
{
	sqlite3_close(c->db);
	pthread_mutex_destroy(&c->mu);
	pthread_mutex_destroy(&c->run_mu);
	pthread_cond_destroy(&c->cv);
	free(c->wal_path);
	free(c->dir);
	free(c);
}

struct checkpoint *
checkpoint_start(sqlite3 *writer, const char *path, const struct storaged_config *cfg,
    char *err, size_t errlen)
{
	struct checkpoint *c = xcalloc(1, sizeof(*c));
	sqlite3_stmt *s;
	char sql[96], *slash;
	int64_t page = 4096;

	pthread_mutex_init(&c->mu, NULL);
	pthread_mutex_init(&c->run_mu, NULL);
	{
		pthread_condattr_t ca;

		/* Waits on the monotonic clock, like every other time here. */
		pthread_condattr_init(&ca);
		pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
		pthread_cond_init(&c->cv, &ca);
		pthread_condattr_destroy(&ca);
	}
	c->writer = writer;
	c->wal_path = xasprintf("%s-wal", path);
	c->dir = xstrdup(path);
	if ((slash = strrchr(c->dir, '/')) != NULL)
		*(slash == c->dir ? slash + 1 : slash) = '\0';
	else
		strcpy(c->dir, ".");
	if (sqlite3_prepare_v2(writer, "PRAGMA page_size", -1, &s, NULL) == SQLITE_OK) {
		if (sqlite3_step(s) == SQLITE_ROW)
			page = sqlite3_column_int64(s, 0);
		sqlite3_finalize(s);
	}
	c->frame_bytes = c->stats.frame_bytes = page + 24;	/* a 24-byte header */
	c->cfg_pages = cfg->checkpoint_pages;
	c->cfg_limit_bytes = cfg->wal_limit_bytes;
	c->st.interval_ms = cfg->checkpoint_interval_ms;
	c->st.last_commit_ms = aotime_mono_ms();
	c->stats.wal_bytes = file_size(c->wal_path);
	ckpt_limits(c, c->stats.wal_bytes, free_space(c->dir));

	/* The file goes back to the limit whenever the log starts over. */
	snprintf(sql, sizeof(sql), "PRAGMA journal_size_limit=%lld",
	    (long long)cfg->wal_limit_bytes);
	if (store_sql(writer, sql, err, errlen) == -1)
		goto fail;
	if (!cfg->checkpoint_thread) {
		/* SQLite's own, inside COMMIT (for comparison and as a fallback). */
		snprintf(sql, sizeof(sql), "PRAGMA wal_autocheckpoint=%lld",
		    (long long)cfg->checkpoint_pages);
		if (store_sql(writer, sql, err, errlen) == -1)
			goto fail;
		return c;
	}
	if (store_sql(writer, "PRAGMA wal_autocheckpoint=0", err, errlen) == -1)
		goto fail;
	if (sqlite3_open_v2(path, &c->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX,
	    NULL) != SQLITE_OK) {
		snprintf(err, errlen, "checkpoint connection to %s: %s", path,
		    c->db != NULL ? sqlite3_errmsg(c->db) : "out of memory");
		goto fail;
	}
	sqlite3_busy_timeout(c->db, CKPT_BUSY_MS);
	/*
	 * A connection opens the WAL only once it has read the database: a
	 * checkpoint on one that never did does nothing at all.  It needs no
	 * page cache of its own.
	 */
	if (store_sql(c->db, "PRAGMA cache_size=16", err, errlen) == -1 ||
	    store_sql(c->db, "SELECT count(*) FROM sqlite_master", err, errlen) == -1)
		goto fail;
	sqlite3_wal_hook(writer, ckpt_hook, c);
	if (pthread_create(&c->thread, NULL, checkpoint_main, c) != 0) {
		sqlite3_wal_hook(writer, NULL, NULL);
		snprintf(err, errlen, "checkpoint thread: cannot start");
		goto fail;
	}
	c->started = true;
	return c;
fail:
	ckpt_free(c);
	return NULL;
}

void
checkpoint_after_commit(struct checkpoint *c)
{
	bool run;

	if (!c->started)
		return;
	pthread_mutex_lock(&c->mu);
	run = checkpoint_writer_due(&c->st, aotime_mono_ms());
	pthread_mutex_unlock(&c->mu);
	if (run)
		ckpt_pass(c, c->writer, CKPT_RESTART, true);
}

void
checkpoint_disk_full(struct checkpoint *c)
{
	if (!c->started)
		return;
	pthread_mutex_lock(&c->mu);
	c->st.disk_full = true;
	pthread_mutex_unlock(&c->mu);
}

void
checkpoint_get_stats(struct checkpoint *c, struct checkpoint_stats *out)
{
	pthread_mutex_lock(&c->mu);
	*out = c->stats;
	out->frames = c->st.frames;
	pthread_mutex_unlock(&c->mu);
	out->wal_bytes = file_size(c->wal_path);
	out->thread = c->started;
}

void
checkpoint_stop(struct checkpoint *c)
{
	int rc;

	if (c == NULL)
		return;
	if (c->started) {
		pthread_mutex_lock(&c->mu);
		c->stop = true;
		pthread_cond_signal(&c->cv);
		pthread_mutex_unlock(&c->mu);
		pthread_join(c->thread, NULL);
		sqlite3_wal_hook(c->writer, NULL, NULL);
		/* Leave a small WAL behind: the next start has less to recover. */
		rc = sqlite3_wal_checkpoint_v2(c->db, "main",
		    SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL);
		if (rc != SQLITE_OK)
			log_warnx("WAL checkpoint at exit (truncate): %s",
			    sqlite3_errstr(rc));
	}
	ckpt_free(c);
}
