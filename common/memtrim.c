#include "common/memtrim.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

#include <event2/event.h>

#include "common/aotime.h"
#include "common/log.h"

static struct {
	struct event *ev;	/* the check; NULL before init and after shutdown */
	int64_t quiet_ms;
	size_t min_bytes;
	size_t pending;		/* noted since the last trim */
	uint64_t notes, seen;	/* notes made; as of the last check */
	int64_t armed_ms;	/* when the timer was armed by a note */
	struct memtrim_stats st;
} mt;

enum memtrim_step
memtrim_step(bool noted, int64_t busy_ms, size_t pending, int64_t quiet_ms,
    size_t min_bytes)
{
	if (noted && busy_ms < MEMTRIM_MAX_WAIT * quiet_ms)
		return MEMTRIM_WAIT;
	return pending >= min_bytes ? MEMTRIM_TRIM : MEMTRIM_IDLE;
}

int64_t
memtrim_rss_kib(void)
{
	long long size, resident;
	FILE *f = fopen("/proc/self/statm", "re");
	int n;

	if (f == NULL)
		return -1;
	n = fscanf(f, "%lld %lld", &size, &resident);
	fclose(f);
	if (n != 2)
		return -1;
	return (int64_t)resident * (sysconf(_SC_PAGESIZE) / 1024);
}

static void
memtrim_arm(void)
{
	struct timeval tv;

	aotime_tv(&tv, mt.quiet_ms);
	evtimer_add(mt.ev, &tv);
}

static void
memtrim_trim(void)
{
	int64_t before = memtrim_rss_kib(), t0 = aotime_mono_us(), after;

#ifdef __GLIBC__
	malloc_trim(0);
#endif
	after = memtrim_rss_kib();
	mt.st.trims++;
	mt.st.last_ms = aotime_mono_ms();
	if (before > after && after >= 0)
		mt.st.trimmed_kib += before - after;
	log_debug("heap trimmed after %zu bytes of churn: VmRSS %lld -> %lld KiB "
	    "in %lld us", mt.pending, (long long)before, (long long)after,
	    (long long)(aotime_mono_us() - t0));
	mt.pending = 0;
}

static void
memtrim_cb(evutil_socket_t fd, short what, void *arg)
{
	bool noted = mt.notes != mt.seen;

	(void)fd;
	(void)what;
	(void)arg;
	mt.seen = mt.notes;
	switch (memtrim_step(noted, aotime_mono_ms() - mt.armed_ms, mt.pending,
	    mt.quiet_ms, mt.min_bytes)) {
	case MEMTRIM_WAIT:
		memtrim_arm();
		break;
	case MEMTRIM_TRIM:
		memtrim_trim();
		break;
	case MEMTRIM_IDLE:
		break;
	}
}

void
memtrim_init(struct event_base *base, int64_t quiet_ms, size_t min_bytes)
{
	memtrim_shutdown();
	mt.quiet_ms = quiet_ms > 0 ? quiet_ms : 1;
	mt.min_bytes = min_bytes;
	if ((mt.ev = evtimer_new(base, memtrim_cb, NULL)) == NULL)
		fatalx("evtimer_new failed");
	if (mt.pending > 0)
		memtrim_note(0);
}

void
memtrim_shutdown(void)
{
	if (mt.ev != NULL)
		event_free(mt.ev);
	mt.ev = NULL;
}

void
memtrim_note(size_t bytes)
{
	mt.pending = bytes > SIZE_MAX - mt.pending ? SIZE_MAX : mt.pending + bytes;
	mt.notes++;
	if (mt.ev == NULL || evtimer_pending(mt.ev, NULL))
		return;
	/* The note that arms the timer starts the period: it is not "more". */
	mt.seen = mt.notes;
	mt.armed_ms = aotime_mono_ms();
	memtrim_arm();
}

void
memtrim_stats(struct memtrim_stats *st)
{
	*st = mt.st;
}
