/*
 * Giving freed heap back to the kernel once a burst of work is over.
 *
 * glibc's free() returns memory to the kernel only from the top of the heap
 * (and whole mmap'd chunks).  After a burst of short-lived buffers (output
 * queued for subscribers, unfinished messages) interleaved with allocations
 * that stay (cache entries, connections), the freed pages sit below the top
 * and stay resident: ao-cdcd held 113 MiB of heap with 6 MiB in use after
 * 100 subscribers had gone, and fixed mmap or trim thresholds changed
 * nothing (the buffers are small chunks).  malloc_trim(0) releases every
 * free page, but walks the heap to do it, so it is done once work stops
 * rather than on every free.
 *
 * One per process, on the event loop's thread:
 *
 *   memtrim_init(base, quiet_ms, min_bytes)   once the loop exists
 *   memtrim_note(bytes)                        where memory was churned
 *
 * A note says "about this many bytes were (or are about to be) allocated
 * and freed": a connection closed with its buffers, output written, a large
 * message dropped.  The heap is trimmed once notes stop for quiet_ms (or,
 * under unbroken activity, after MEMTRIM_MAX_WAIT quiet periods), when they
 * add up to at least min_bytes since the last trim: so at most once per
 * quiet period, never while idle (no timer runs until a note), and never
 * for a trickle of small work.
 *
 *   note ─► [timer armed] ── quiet_ms ──► memtrim_step():
 *             ▲      WAIT: notes came in, busy < MAX_WAIT periods ──┐
 *             └─────────────────────────────────────────────────────┘
 *                    TRIM: pending >= min_bytes → malloc_trim(0), stop
 *                    IDLE: too little to trim → stop (pending is kept)
 */
#ifndef AO_MEMTRIM_H
#define AO_MEMTRIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct event_base;

#define MEMTRIM_MAX_WAIT	10	/* quiet periods a busy process may defer a trim */
/* What the daemons use: a second of quiet, after a MiB of churn. */
#define MEMTRIM_QUIET_MS	1000
#define MEMTRIM_MIN_BYTES	(1024 * 1024)

/*
 * Starts watching notes on base: quiet_ms (>= 1) is how long notes must
 * stop before a trim, min_bytes how much must have been noted.  Notes made
 * before memtrim_init count.
 */
void memtrim_init(struct event_base *, int64_t quiet_ms, size_t min_bytes);
/* Frees the timer; notes after it are counted and never acted on. */
void memtrim_shutdown(void);
/* Notes bytes of churn (saturating); cheap enough for every send. */
void memtrim_note(size_t bytes);

struct memtrim_stats {
	uint64_t trims;		/* malloc_trim calls */
	int64_t trimmed_kib;	/* VmRSS they released, in total */
	int64_t last_ms;	/* monotonic time of the last, 0 if none */
};

void memtrim_stats(struct memtrim_stats *);
/* This process's resident set (VmRSS) in KiB, or -1 when unreadable. */
int64_t memtrim_rss_kib(void);

/* The decision at each timer check; pure, for tests. */
enum memtrim_step {
	MEMTRIM_IDLE,	/* too little noted: stop until the next note */
	MEMTRIM_WAIT,	/* notes keep coming: check again in quiet_ms */
	MEMTRIM_TRIM,	/* trim now, then stop until the next note */
};

/*
 * noted: whether notes came in since the last check; busy_ms: how long
 * since the timer was armed; pending: bytes noted since the last trim.
 */
enum memtrim_step memtrim_step(bool noted, int64_t busy_ms, size_t pending,
    int64_t quiet_ms, size_t min_bytes);

#endif
