/*
 * WAL checkpoints off the commit path.  SQLite's automatic checkpoint runs
 * inside whichever COMMIT crosses wal_autocheckpoint pages, and with it the
 * fsyncs: a write that happens to be that one waits milliseconds, and so
 * does every request queued behind it on storaged's single loop.  Instead
 * automatic checkpoints are off and a thread with its own connection runs
 * PASSIVE checkpoints (they never block readers or the writer) every
 * interval.  Durability is unchanged: commits are in the WAL either way.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/log.h"
#include "common/xmalloc.h"
#include "storaged/storaged.h"

struct checkpoint {
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool stop;
	sqlite3 *db;
	int64_t interval_ms;
	uint64_t runs;
};

static void *
checkpoint_main(void *arg)
{
	struct checkpoint *c = arg;
	struct timespec ts;
	int log_frames, done_frames, rc;

	pthread_mutex_lock(&c->mu);
	while (!c->stop) {
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += c->interval_ms / 1000;
		ts.tv_nsec += (c->interval_ms % 1000) * 1000000;
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
		pthread_cond_timedwait(&c->cv, &c->mu, &ts);
		if (c->stop)
			break;
		pthread_mutex_unlock(&c->mu);
		rc = sqlite3_wal_checkpoint_v2(c->db, NULL, SQLITE_CHECKPOINT_PASSIVE,
		    &log_frames, &done_frames);
		pthread_mutex_lock(&c->mu);
		c->runs++;
		if (rc != SQLITE_OK && rc != SQLITE_BUSY)
			log_warnx("checkpoint: %s", sqlite3_errstr(rc));
	}
	pthread_mutex_unlock(&c->mu);
	return NULL;
}

struct checkpoint *
checkpoint_start(const char *path, int64_t interval_ms, char *err, size_t errlen)
{
	struct checkpoint *c = xcalloc(1, sizeof(*c));

	if (sqlite3_open_v2(path, &c->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_FULLMUTEX,
	    NULL) != SQLITE_OK) {
		snprintf(err, errlen, "checkpoint connection to %s: %s", path,
		    c->db != NULL ? sqlite3_errmsg(c->db) : "out of memory");
		sqlite3_close(c->db);
		free(c);
		return NULL;
	}
	sqlite3_busy_timeout(c->db, 5000);
	c->interval_ms = interval_ms;
	pthread_mutex_init(&c->mu, NULL);
	pthread_cond_init(&c->cv, NULL);
	if (pthread_create(&c->thread, NULL, checkpoint_main, c) != 0) {
		snprintf(err, errlen, "checkpoint thread: cannot start");
		sqlite3_close(c->db);
		free(c);
		return NULL;
	}
	return c;
}

void
checkpoint_stop(struct checkpoint *c)
{
	if (c == NULL)
		return;
	pthread_mutex_lock(&c->mu);
	c->stop = true;
	pthread_cond_signal(&c->cv);
	pthread_mutex_unlock(&c->mu);
	pthread_join(c->thread, NULL);
	/* A last full pass so the WAL does not carry over a large backlog. */
	sqlite3_wal_checkpoint_v2(c->db, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
	sqlite3_close(c->db);
	pthread_mutex_destroy(&c->mu);
	pthread_cond_destroy(&c->cv);
	free(c);
}
