/*
 * What the benchmark programs share: a clock, percentiles, removing the run's
 * directory, a project with sessions to update, and the raw socket round trip
 * that the ratios are measured against.
 */
#ifndef AO_BENCHLIB_H
#define AO_BENCHLIB_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "proto/bclient.h"
#include "proto/rpc.h"

#define BENCH_ID_LEN	32

/*
 * The one argument every benchmark takes: --help prints usage ("name ARG")
 * and what it measures, then exits 0; anything but one non-flag argument
 * exits 2 with the usage.
 */
void bench_args(int argc, char **argv, const char *usage, const char *what);

int64_t bench_now_ns(void);
/* Sorts v[0..n) and stores its p50 and p99 in microseconds. */
void bench_percentiles(int64_t *v, size_t n, double *p50, double *p99);
/* Removes dir and everything under it (not following symlinks). */
void bench_rmrf(const char *dir);

/* A call that must succeed (10 s timeout); exits with the error otherwise. */
void bench_call(struct bclient *, const char *method, const struct rpc_buf *params,
    struct bclient_msg *res);
/* Project "bench" and n sessions in it, through storaged at sock. */
void bench_populate(const char *sock, char (*ids)[BENCH_ID_LEN], int n);
/*
 * The next activity_state of a session whose last one is *state (0 unknown,
 * 1 active, 2 idle): never the current one, so session_updated fires.
 */
const char *bench_next_activity(int *state);
/* session.update params that flip the session's activity_state. */
void bench_pack_update(struct rpc_buf *, const char *id, int *state);

/*
 * Pipelined session.update load through storaged at sock: nclients
 * event-driven clients in one loop, each keeping window calls in flight
 * until it has made per_client; client i cycles over the sessions
 * ids[i * spc] … ids[i * spc + spc - 1] (state[]: their activity, as for
 * bench_pack_update).  *t0 is taken before the first connect, *t1 after the
 * last answer.  Any failure exits.
 */
void bench_write_storm(const char *sock, int nclients, int per_client, int window,
    int spc, char (*ids)[BENCH_ID_LEN], int *state, int64_t *t0, int64_t *t1);

/*
 * Starts BIN_DIR/ao-<name> --data-dir=DATA --runtime-dir=RUN --ready-fd=N
 * and the NULL-terminated extra flags (extra may be NULL), its stderr
 * appended to log, and waits for its readiness line.  The child dies with
 * the benchmark (PR_SET_PDEATHSIG).  Returns its pid; exits on failure.
 */
pid_t bench_daemon_start(const char *bin, const char *name, const char *data,
    const char *run, const char *const extra[], const char *log);
/* SIGTERM, then waits; exits unless the daemon exited 0. */
void bench_daemon_stop(pid_t);
/* VmRSS of pid in KiB, and its peak (VmHWM) when hwm is not NULL. */
long bench_rss_kib(pid_t, long *hwm);
/*
 * The hostile load of issue 10 item 3: nconn connections to sock, each
 * sending bytes of a message that never finishes (a 15 MiB string), then
 * closing.  The daemon's cap on unfinished bytes closes the oldest ones
 * as they come; what is measured is the memory left afterwards.
 */
void bench_unfinished_messages(const char *sock, int nconn, size_t bytes);

/* Raw baseline: n round trips of 32 bytes to an echoing child over a socketpair. */
double bench_raw_rtt_us(int n);

#endif
