/*
 * Scaffolding of the integration suites (tests/integ): the real daemons on a
 * temporary data dir, calls over their sockets with the blocking client,
 * reading results, waiting with a deadline, and cleaning up what a test
 * started.  A helper fails the test (Check) rather than return an error,
 * unless it says otherwise.
 */
#ifndef AO_INTEG_H
#define AO_INTEG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <unistd.h>

#include <check.h>

#include "common/aotime.h"
#include "proto/bclient.h"

/*
 * The test at hand, as the helpers see it; a suite's checked setup sets it
 * (each test runs in its own child of the runner, so it is per test).
 */
struct integ_conf {
	const char *dir;	/* the daemons' --data-dir */
	const char *log;	/* their stderr, appended; NULL: the test's */
	int ready_ms;		/* how long a daemon may take to be ready */
	int call_ms;		/* how long one call may take */
};

void integ_configure(const struct integ_conf *);

/* ---- test cases ---- */

#define INTEG_CASE_DIR	0x1	/* the runner makes a directory per case */
#define INTEG_CASE_KILL	0x2	/* and kills what still works inside it */

/*
 * Adds a test case to s with the checked fixture setup/teardown and a
 * timeout.  With INTEG_CASE_DIR the runner makes a directory before the
 * case and removes it after, so what a failed test (whose teardown Check
 * skips) left there goes too; INTEG_CASE_KILL first kills every process
 * whose working directory is inside it.
 */
TCase *integ_tcase(Suite *s, const char *name, int timeout_s,
    void (*setup)(void), void (*teardown)(void), int flags);
/* A fresh directory inside the case's (INTEG_CASE_DIR); caller frees. */
char *integ_test_dir(void);

/* ---- daemons and commands ---- */

/* The last KiB of the daemons' log, or "(no log)"; a static buffer. */
const char *integ_log_tail(void);
/*
 * Spawns bin/<name> --data-dir <dir> extra... (NULL-terminated), its
 * stderr appended to the log; ready is as for testlib_spawn.
 */
pid_t integ_spawn(const char *name, const char *const extra[], int *ready);
/* Waits ready_ms for name's readiness line on ready, then closes it. */
void integ_wait_ready(const char *name, int ready);
/* integ_spawn, then integ_wait_ready. */
pid_t integ_start(const char *name, const char *const extra[]);
/*
 * integ_start with RLIMIT_NOFILE (soft and hard) at nofile: run by
 * prlimit(1), which execs the daemon, so the pid is the daemon's.
 */
pid_t integ_start_nofile(const char *name, int nofile,
    const char *const extra[]);
/*
 * Runs argv (searched in PATH) to its end, at most timeout_ms: stdin from
 * /dev/null, stdout into out (NUL-terminated; NULL: dropped), stderr
 * appended to the log.  Returns the exit code, or -1 when it could not
 * run, was killed or timed out (it is killed then).  Asserts nothing.
 */
int integ_run(const char *const argv[], char *out, size_t outlen,
    int timeout_ms);
/* git -C repo args... (NULL-terminated) with a test identity, 10 s at most. */
int integ_git(const char *repo, char *out, size_t outlen, ...)
    __attribute__((sentinel));
/* Writes text to path with mode (whatever the umask), replacing it. */
void integ_write_file(const char *path, const char *text, mode_t mode);
/* The number of '\n' in s. */
int integ_count_lines(const char *s);

/* ---- calls ---- */

struct bclient *integ_connect(const char *sock);
/* Starts b as a params map of n entries; returns b. */
struct rpc_buf *integ_params(struct rpc_buf *b, uint32_t n);
/* Calls method (b NULL: no params), asserting success; res NULL: dropped. */
void integ_call_ok(struct bclient *, const char *method,
    const struct rpc_buf *b, struct bclient_msg *res);
/* Calls a method that must fail; returns its error code, err has the rest. */
enum rpc_code integ_call_err(struct bclient *, const char *method,
    const struct rpc_buf *b, struct rpc_error *err);
/* Asserts err has code and, when needle is set, a message containing it. */
void integ_assert_err(const struct rpc_error *err, const char *what,
    enum rpc_code code, const char *needle);
/* integ_call_err, then integ_assert_err. */
void integ_expect_err(struct bclient *, const char *method,
    const struct rpc_buf *b, enum rpc_code code, const char *needle);
/* hello answers component and pid. */
void integ_assert_hello(struct bclient *, const char *component, pid_t pid);
/* stats.<section>.<key>, or stats.<key> when section is NULL. */
int64_t integ_stat(struct bclient *, const char *section, const char *key);
/* The same two on a fresh connection to sock. */
void integ_assert_hello_at(const char *sock, const char *component,
    pid_t pid);
int64_t integ_stat_at(const char *sock, const char *section,
    const char *key);

/* Appends the request [0, msgid, method, [b]] to out (b NULL: no params). */
void integ_pack_request(struct rpc_buf *out, uint32_t msgid,
    const char *method, const struct rpc_buf *b);
/* write(2) until done; 0, or -1 with errno.  Asserts nothing. */
int integ_write_all(int fd, const void *p, size_t n);
/*
 * Sends bytes on a fresh connection to sock; the server must close it
 * within 5 s without answering (with reset_ok, a reset counts as a close:
 * the server left some of the bytes unread).
 */
void integ_expect_closed(const char *sock, const char *what,
    const void *bytes, size_t n, bool reset_ok);

/* ---- results ---- */

/* Every key of the NULL-terminated list is in map (values may be nil). */
void integ_assert_keys(const msgpack_object *map, const char *what,
    const char *const keys[]);
/* The array at key; each element checked against keys when not NULL. */
const msgpack_object_array *integ_get_list(const msgpack_object *map,
    const char *key, const char *const keys[]);
int64_t integ_get_i64(const msgpack_object *map, const char *key);
/* The string at key, in buf (a shared static buffer when buf is NULL). */
const char *integ_get_str(const msgpack_object *map, const char *key,
    char *buf, size_t len);
bool integ_get_bool(const msgpack_object *map, const char *key);
/* Whether key, which must be there, is nil. */
bool integ_is_nil(const msgpack_object *map, const char *key);
/* A string field into buf, "" for nil or absent. */
void integ_str_field(const msgpack_object *map, const char *key, char *buf,
    size_t len);

/* ---- lcmd, for the suites that drive it ---- */

/*
 * Starts ao-lcmd as those suites run it: desktop notifications off, every
 * message it sends in msglog, tmux on the private server tmux_socket (a
 * path or a name), then the NULL-terminated extra flags.
 */
pid_t integ_start_lcmd(const char *msglog, const char *tmux_socket,
    const char *const extra[]);
/* project.add {path}; id gets the project id. */
void integ_project_add(struct bclient *, const char *path, char *id,
    size_t idlen);

/* A session as lcmd answers it; strings are "" when nil or absent. */
struct integ_session {
	char id[128], state[32], status[32], reason[32], activity[32];
	char harness[32], runtime[16], branch[256], workspace[512];
	char handle[2048];		/* runtime_handle, JSON */
	char worktree_note[256];	/* "worktree": what cleanup did */
	bool alive;
	bool pr_nil;			/* "pr" is there, and nil */
	pid_t pid;			/* the handle's pid, or 0 */
};

/* Reads a session map into s; every key of keys (NULL: none) must be there. */
void integ_session_from(const msgpack_object *m, const char *const keys[],
    struct integ_session *s);
/* Calls a method taking {id} that answers session id; keys as above. */
void integ_session_call(struct bclient *, const char *method, const char *id,
    const char *const keys[], struct integ_session *s);
/* A method taking {id} that must fail with code. */
void integ_id_err(struct bclient *, const char *method, const char *id,
    enum rpc_code code);

/* What pr.observe reports: a PR (number 7), its checks and comments. */
struct integ_check {
	const char *name, *commit, *status;
	const char *log_tail;				/* NULL: omitted */
};

struct integ_comment {
	const char *id, *body;
	bool resolved;
};

struct integ_obs {
	const char *url;
	const char *state, *review, *ci, *merge;	/* NULL: omitted */
	const struct integ_check *checks;
	int nchecks;					/* -1: omitted */
	const struct integ_comment *comments;
	int ncomments;					/* -1: omitted */
};

/* Packs pr.observe params for session sid into b. */
void integ_pack_observe(struct rpc_buf *b, const char *sid,
    const struct integ_obs *o);
/* pr.observe; s gets the session it answers, keys as above. */
void integ_observe(struct bclient *, const char *sid,
    const struct integ_obs *o, const char *const keys[],
    struct integ_session *s);
/*
 * Counts the entries of lcmd's --message-log at path for session sid whose
 * message contains needle; the nth of them (from 0) fills msg and
 * delivered when they are not NULL.  Every line must be a whole entry.
 */
int integ_msglog_find(const char *path, const char *sid, const char *needle,
    int nth, char *msg, size_t len, bool *delivered);

/* ---- waiting and processes ---- */

/*
 * Evaluates cond every poll_ms until it holds; once timeout_ms have passed
 * without it, fails the test with the printf-style message that follows.
 */
#define INTEG_WAIT(cond, timeout_ms, poll_ms, ...) do {			\
	int64_t integ_deadline_ = aotime_mono_ms() + (timeout_ms);	\
									\
	while (!(cond)) {						\
		ck_assert_msg(aotime_mono_ms() < integ_deadline_,	\
		    __VA_ARGS__);					\
		usleep((useconds_t)(poll_ms) * 1000);			\
	}								\
} while (0)

/* The state letter of /proc/<pid>/stat ('R', 'T', 'Z'...), '\0' if none. */
char integ_proc_state(pid_t);
/* Whether pid is gone (or a zombie nobody has reaped yet). */
bool integ_pid_gone(pid_t);
void integ_wait_pid_gone(pid_t, int timeout_ms, const char *what);
/* VmRSS of pid in KiB, or -1. */
int64_t integ_rss_kib(pid_t);
/* Whether pid's working directory is top or inside it. */
bool integ_cwd_in(pid_t, const char *top);
/* SIGKILLs every process whose working directory is inside top. */
void integ_kill_by_cwd(const char *top);

#endif
