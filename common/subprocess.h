/*
 * Asynchronous child processes on a libevent loop.  An argv is executed
 * directly (never through a shell) in its own process group, with optional
 * cwd, extra environment and stdin bytes; stdout and stderr are captured up
 * to a cap; a timeout kills the whole group.  Completion is a callback from
 * the loop, driven by a pidfd — never a blocking wait.
 */
#ifndef AO_SUBPROCESS_H
#define AO_SUBPROCESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/types.h>

#include <event2/event.h>

struct subprocess;

struct subprocess_opts {
	const char *const *argv;	/* argv[0] is looked up in PATH */
	const char *cwd;		/* NULL: inherit */
	const char *const *env;		/* NULL, or "KEY=VALUE" entries that
					 * override or extend the environment */
	const void *input;		/* written to stdin, then closed */
	size_t input_len;
	size_t capture_max;		/* per stream; 0: 64 KiB */
	int64_t timeout_ms;		/* 0: none */
};

struct subprocess_result {
	pid_t pid;
	int status;		/* wait status; valid when !start_failed */
	bool timed_out;		/* killed by the timeout */
	bool start_failed;	/* exec failed: see start_errno */
	int start_errno;
	char *out, *err;	/* NUL-terminated captures */
	size_t out_len, err_len;
	bool out_truncated, err_truncated;
	int64_t elapsed_ms;
};

typedef void (*subprocess_cb)(const struct subprocess_result *, void *arg);

/*
 * Starts the process.  Returns a handle, or NULL with err when it cannot
 * be started at all (fork/pipe failure).  An exec failure (no such file,
 * permission) is reported through cb with start_failed.  cb runs exactly
 * once, from the event loop, unless subprocess_cancel is called first.
 */
struct subprocess *subprocess_start(struct event_base *, const struct subprocess_opts *,
    subprocess_cb cb, void *arg, char *err, size_t errlen);

/*
 * The RLIMIT_NOFILE soft limit children start with; 0 (the default): the
 * parent's.  A daemon that raised its own (daemon_init) gives children the
 * one it was started with, which programs using select(2) expect.
 */
void subprocess_set_child_nofile(rlim_t soft);
/*
 * In a forked child of our own (not subprocess_start's): applies it.
 * Call it right before exec: the lower limit makes open() fail with
 * EMFILE while the inherited descriptors number more than it.
 */
void subprocess_child_limits(void);

/* Kills the process group and forgets it: cb will not run. */
void subprocess_cancel(struct subprocess *);

pid_t subprocess_pid(const struct subprocess *);

/* Whether prog would be found by execvp: a path to an executable, or in PATH. */
bool subprocess_runnable(const char *prog);

/* "exited 3", "killed by signal 9", "timed out", "exec failed: ..." */
void subprocess_describe(const struct subprocess_result *, char *buf, size_t len);

#endif
