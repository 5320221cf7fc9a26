/*
 * Shared test scaffolding: suite registration, temp dirs, spawning the real
 * binaries, and cleaning up every process a test starts (by pid).
 */
#ifndef AO_TESTLIB_H
#define AO_TESTLIB_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <check.h>

/* Registers a `Suite *fn(void)` with the runner of this test binary. */
#define TEST_SUITE(fn)							\
	Suite *fn(void);						\
	static void __attribute__((constructor)) fn##_register(void)	\
	{ testlib_register(fn); }

void testlib_register(Suite *(*fn)(void));
/* Runs every registered suite (CK_RUN_SUITE selects one); returns the exit code. */
int testlib_run(const char *name);

/* A fresh directory under /tmp (short, so socket paths fit); caller frees. */
char *testlib_tmpdir(void);
/* rm -rf; silently ignores what does not exist. */
void testlib_rmrf(const char *path);

/*
 * $AO_BIN_DIR/<name>, $AO_TEST_DIR/<name> and $AO_SRC_DIR/<name> (a file of
 * the source tree) in static buffers, one set per function.
 */
const char *testlib_bin(const char *name);
const char *testlib_helper(const char *name);
const char *testlib_source(const char *name);

/*
 * Starts argv[0] with argv.  The child gets PR_SET_PDEATHSIG(SIGKILL) so it
 * cannot outlive the test process, and is recorded so testlib_reap_all() (run
 * at exit) kills it.  When ready_fd is non-NULL, a pipe's write end is passed
 * as --ready-fd N (appended to argv) and *ready_fd receives the read end.
 */
pid_t testlib_spawn(char *const argv[], int *ready_fd);
/* Waits up to timeout_ms for a line on fd; 0 when ready, -1 otherwise. */
int testlib_wait_ready(int fd, int timeout_ms);
/* Sends sig, waits up to timeout_ms, then SIGKILLs.  Returns the wait status. */
int testlib_stop(pid_t, int sig, int timeout_ms);
/* Waits for exit up to timeout_ms; returns the wait status or -1 on timeout. */
int testlib_wait(pid_t, int timeout_ms);
/* Kills every process testlib_spawn started and that is still running. */
void testlib_reap_all(void);
/* Polls until connect(path) succeeds; 0 or -1 on timeout. */
int testlib_wait_socket(const char *path, int timeout_ms);
/* Reads a whole file (NUL-terminated) or NULL. */
char *testlib_read_file(const char *path);

struct event_base;
struct event;
/*
 * A new event base with a 5 ms no-op timer (*tick), so one loop turn never
 * blocks for long; testlib_base_free runs what is pending and frees both.
 */
struct event_base *testlib_base_new(struct event **tick);
void testlib_base_free(struct event_base *, struct event *tick);

#endif
