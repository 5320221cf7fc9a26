/*
 * Real agent sessions end to end (DESIGN.md §6 "Runtimes", §1): bin/ao-storaged
 * and bin/ao-lcmd on a temporary data dir, a private tmux server (lcmd
 * --tmux-socket=NAME, so `tmux -L NAME` reaches it), a git repository made by
 * each test, and a scripted agent that writes what it sees into files in its
 * own worktree.  Those files are how these tests see what reached the agent:
 *
 *   env.txt     AO_SESSION_ID, AO_PROJECT_ID, AO_ISSUE_ID, AO_LCMD_SOCKET
 *   pwd.txt     pwd -P: where it was started
 *   starts.txt  its pid, one line per start (restore adds a line); written
 *               last, so a line here means the agent is reading its input
 *   got.txt     every line it read from stdin (it exits after EXIT_LINE)
 *   child.txt   the pid of its helper process (child_script only)
 *
 * Under tmux the script first runs `stty -icanon`: a pty in canonical mode
 * truncates a line at 4095 bytes, and real TUI agents run in raw mode too.
 * The process runtime feeds a FIFO and needs nothing.
 *
 * Every test waits on files, pids or tmux with a deadline, never a bare
 * sleep.  Cleanup is a guardian process's job (see below), so it happens
 * even when a failed assertion ends the test process at once: the private
 * tmux server, every agent pid (checked by its working directory, so a
 * reused pid is spared), and the temporary directory with the repository
 * and its worktrees.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>

#include "common/aotime.h"
#include "common/sock.h"
#include "proto/bclient.h"
#include "tests/lib/integ.h"
#include "tests/lib/testlib.h"

#define CALL_TIMEOUT_MS		15000	/* spawn runs git and tmux; ASan is slow */
#define READY_TIMEOUT_MS	10000
#define WAIT_MS			10000	/* a file, a pid, a tmux session */
#define EXIT_LINE		"ao-test: exit now"	/* the agent exits on it */

static const char *const runtimes[] = { "tmux", "process" };

static char *dir;
static char realdir[PATH_MAX];	/* dir with symlinks resolved */
static char lcmd_sock[256];	/* <dir>/run/lcmd.sock */
static char logpath[256];	/* the daemons' stderr, and the helpers' */
static char msglog[256];	/* lcmd's --message-log */
static char script[256];	/* the scripted agent */
static char child_script[256];	/* the agent with a child process */
static char tmux_name[64];	/* the private tmux server: tmux -L tmux_name */
static pid_t lcmd_pid = -1;

static const char agent_script[] =
    "#!/bin/sh\n"
    "# A scripted agent: who and where it is, then every line it reads.\n"
    "if [ -t 0 ]; then stty -icanon; fi\n"
    "printf 'AO_SESSION_ID=%s\\nAO_PROJECT_ID=%s\\nAO_ISSUE_ID=%s\\n"
    "AO_LCMD_SOCKET=%s\\n' \"$AO_SESSION_ID\" \"$AO_PROJECT_ID\" "
    "\"$AO_ISSUE_ID\" \"$AO_LCMD_SOCKET\" > env.txt\n"
    "pwd -P > pwd.txt\n"
    "printf '%s\\n' \"$$\" >> starts.txt\n"
    "while IFS= read -r line; do\n"
    "\tprintf '%s\\n' \"$line\" >> got.txt\n"
    "\tif [ \"$line\" = \"" EXIT_LINE "\" ]; then exit 0; fi\n"
    "done\n";

/* An agent with a helper process of its own (a build, a dev server). */
static const char child_script_fmt[] =
    "#!/bin/sh\n"
    "sleep 300 &\n"
    "printf '%%s\\n' \"$!\" > child.txt\n"
    "exec %s\n";

/* ---- small helpers ---- */

/* A file's content, "" when it does not exist yet; caller frees. */
static char *
slurp(const char *path)
{
	char *s = testlib_read_file(path);

	return s != NULL ? s : strdup("");
}

static bool
exists(const char *path)
{
	struct stat st;

	return lstat(path, &st) == 0;
}

/* Whether the private tmux server has a session of exactly this name. */
static bool
tmux_has(const char *name)
{
	char target[200];
	const char *argv[] = { "tmux", "-L", tmux_name, "has-session", "-t", target,
		NULL };

	snprintf(target, sizeof(target), "=%s", name);
	return integ_run(argv, NULL, 0, WAIT_MS) == 0;
}

static void
wait_tmux_gone(const char *name)
{
	INTEG_WAIT(!tmux_has(name), WAIT_MS, 20, "tmux session %s is still there",
	    name);
}

/*
 * ---- the guardian: cleanup that survives a failing test ----
 *
 * A failed ck_assert ends the test process with _exit(): no teardown, no
 * atexit.  The daemons die with it (PR_SET_PDEATHSIG), but the tmux server
 * and the agents are nobody's children: that is the point of them.  So
 * setup forks a guardian holding the read end of a pipe.  The test tells it
 * the pids it learns (lcmd's, the agents'); when the pipe closes — in
 * teardown, or because the test process died in any way — the guardian
 * waits for lcmd to be gone, stops the private tmux server, kills the
 * agents (those it was told of and those whose pid files are in the
 * worktrees) and removes the directory.
 */
struct gmsg {
	char kind;		/* 'L': lcmd, 'A': an agent */
	int32_t pid;
};

#define GUARDIAN_MAX_PIDS	256

static pid_t guardian = -1;
static int guardian_fd = -1;

static void
tell_guardian(char kind, pid_t pid)
{
	struct gmsg m;

	memset(&m, 0, sizeof(m));
	m.kind = kind;
	m.pid = (int32_t)pid;
	if (guardian_fd != -1 && pid > 1 &&
	    write(guardian_fd, &m, sizeof(m)) != (ssize_t)sizeof(m))
		fprintf(stderr, "test_runtime: the guardian is gone\n");
}

static void
track_pid(pid_t pid)
{
	tell_guardian('A', pid);
}

/* Kills pid (and its group, when it leads one) if it still works under dir. */
static void
kill_agent(pid_t pid)
{
	/* Elsewhere, the pid was reused by someone else. */
	if (pid <= 1 || !integ_cwd_in(pid, realdir))
		return;
	if (getpgid(pid) == pid)
		kill(-pid, SIGKILL);
	kill(pid, SIGKILL);
}

/* Adds the pids the agents wrote into <dir>/worktrees/<project>/<session>/. */
static int
guardian_scan(pid_t *pids, int n)
{
	static const char *const files[] = { "starts.txt", "child.txt", NULL };
	char top[300], proj[600];
	struct dirent *pe, *se;
	DIR *pd, *sd;
	int k;

	snprintf(top, sizeof(top), "%s/worktrees", dir);
	if ((pd = opendir(top)) == NULL)
		return n;
	while ((pe = readdir(pd)) != NULL) {
		if (pe->d_name[0] == '.')
			continue;
		snprintf(proj, sizeof(proj), "%s/%.200s", top, pe->d_name);
		if ((sd = opendir(proj)) == NULL)
			continue;
		while ((se = readdir(sd)) != NULL) {
			if (se->d_name[0] == '.')
				continue;
			for (k = 0; files[k] != NULL; k++) {
				char path[1200], *all, *line, *save = NULL;

				snprintf(path, sizeof(path), "%s/%.200s/%s", proj,
				    se->d_name, files[k]);
				if ((all = testlib_read_file(path)) == NULL)
					continue;
				for (line = strtok_r(all, "\n", &save); line != NULL &&
				    n < GUARDIAN_MAX_PIDS; line = strtok_r(NULL, "\n", &save))
					pids[n++] = (pid_t)atoi(line);
				free(all);
			}
		}
		closedir(sd);
	}
	closedir(pd);
	return n;
}

static void __attribute__((noreturn))
guardian_main(int fd)
{
	const char *argv[] = { "tmux", "-L", tmux_name, "kill-server", NULL };
	pid_t pids[GUARDIAN_MAX_PIDS], lcmd = -1;
	char sock[PATH_MAX];
	struct gmsg m;
	int64_t deadline;
	int n = 0, i;

	setsid();	/* a ^C to the test run must not stop the cleanup */
	while (read(fd, &m, sizeof(m)) == (ssize_t)sizeof(m)) {
		if (m.kind == 'L')
			lcmd = (pid_t)m.pid;
		else if (n < GUARDIAN_MAX_PIDS)
			pids[n++] = (pid_t)m.pid;
	}
	/* lcmd must not start an agent or a tmux server behind our back. */
	deadline = aotime_mono_ms() + 5000;
	while (lcmd > 1 && !integ_pid_gone(lcmd) && aotime_mono_ms() < deadline)
		usleep(10 * 1000);
	integ_run(argv, NULL, 0, WAIT_MS);
	/* A tmux server that exits leaves its socket file behind. */
	snprintf(sock, sizeof(sock), "%s/tmux-%u/%s", getenv("TMUX_TMPDIR") != NULL ?
	    getenv("TMUX_TMPDIR") : "/tmp", (unsigned)getuid(), tmux_name);
	unlink(sock);
	n = guardian_scan(pids, n);
	for (i = 0; i < n; i++)
		kill_agent(pids[i]);
	testlib_rmrf(dir);
	_exit(0);
}

static void
start_guardian(void)
{
	int p[2];

	if (pipe2(p, O_CLOEXEC) == -1)
		ck_abort_msg("pipe2: %s", strerror(errno));
	fflush(NULL);
	if ((guardian = fork()) == -1)
		ck_abort_msg("fork: %s", strerror(errno));
	if (guardian == 0) {
		close(p[1]);
		guardian_main(p[0]);
	}
	close(p[0]);
	guardian_fd = p[1];
}

/* ---- daemons ---- */

static void
start_lcmd(void)
{
	lcmd_pid = integ_start_lcmd(msglog, tmux_name, NULL);
	tell_guardian('L', lcmd_pid);
}

static void
setup(void)
{
	static int counter;
	char text[600];

	dir = testlib_tmpdir();
	if (realpath(dir, realdir) == NULL)
		snprintf(realdir, sizeof(realdir), "%s", dir);
	snprintf(lcmd_sock, sizeof(lcmd_sock), "%s/run/lcmd.sock", dir);
	snprintf(logpath, sizeof(logpath), "%s/daemons.log", dir);
	snprintf(msglog, sizeof(msglog), "%s/messages.log", dir);
	snprintf(script, sizeof(script), "%s/agent.sh", dir);
	snprintf(child_script, sizeof(child_script), "%s/agent-child.sh", dir);
	snprintf(tmux_name, sizeof(tmux_name), "aotest-%d-%d", (int)getpid(),
	    counter++);
	integ_configure(&(struct integ_conf){ .dir = dir, .log = logpath,
	    .ready_ms = READY_TIMEOUT_MS, .call_ms = CALL_TIMEOUT_MS });
	start_guardian();
	integ_write_file(script, agent_script, 0755);
	snprintf(text, sizeof(text), child_script_fmt, script);
	integ_write_file(child_script, text, 0755);
	/*
	 * A soft descriptor limit below the hard one, as on most systems,
	 * so that lcmd raising its own is visible (agents must not get it).
	 */
	{
		struct rlimit rl;

		if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_max > 1024 &&
		    rl.rlim_cur > 1024) {
			rl.rlim_cur = 1024;
			setrlimit(RLIMIT_NOFILE, &rl);
		}
	}
	integ_start("ao-storaged", NULL);
	start_lcmd();
}

/* The daemons first; then the guardian removes everything else. */
static void
teardown(void)
{
	testlib_reap_all();
	lcmd_pid = -1;
	close(guardian_fd);
	guardian_fd = -1;
	if (testlib_wait(guardian, 30000) == -1) {
		kill(guardian, SIGKILL);
		waitpid(guardian, NULL, 0);
	}
	free(dir);
	dir = NULL;
}

/* ---- calls ---- */

/* Makes <dir>/<name> a git repository with one commit on main; path gets it. */
static void
make_repo(const char *name, char *path, size_t len)
{
	char readme[600];

	snprintf(path, len, "%s/%s", dir, name);
	ck_assert_int_eq(mkdir(path, 0755), 0);
	ck_assert_int_eq(integ_git(path, NULL, 0, "init", "-q", "-b", "main",
	    NULL), 0);
	snprintf(readme, sizeof(readme), "%s/README.md", path);
	integ_write_file(readme, "# test\n", 0644);
	ck_assert_int_eq(integ_git(path, NULL, 0, "add", "README.md", NULL), 0);
	ck_assert_int_eq(integ_git(path, NULL, 0, "commit", "-q", "-m",
	    "initial", NULL), 0);
}

/* Makes a repository <dir>/<name> and registers it. */
static void
new_project(struct bclient *bc, const char *name, char *repo, size_t repolen,
    char *id, size_t idlen)
{
	make_repo(name, repo, repolen);
	integ_project_add(bc, repo, id, idlen);
}

/* A string member of the session's JSON runtime handle, "" when absent. */
static const char *
handle_str(const struct integ_session *s, const char *key)
{
	static char buf[512];
	json_error_t je;
	json_t *h = json_loads(s->handle, 0, &je), *v;

	ck_assert_msg(h != NULL, "runtime_handle is not JSON: '%s'", s->handle);
	v = json_object_get(h, key);
	snprintf(buf, sizeof(buf), "%s", json_is_string(v) ? json_string_value(v) : "");
	json_decref(h);
	return buf;
}

static pid_t
handle_pid(const struct integ_session *s)
{
	json_error_t je;
	json_t *h = json_loads(s->handle, 0, &je);
	pid_t pid;

	ck_assert_msg(h != NULL, "runtime_handle is not JSON: '%s'", s->handle);
	pid = (pid_t)json_integer_value(json_object_get(h, "pid"));
	json_decref(h);
	return pid;
}

/* What the guardian needs to find the agent of a session. */
static void
track(const struct integ_session *s)
{
	if (strcmp(s->runtime, "process") == 0 && s->handle[0] != '\0')
		track_pid(handle_pid(s));
}

/* Calls a method taking {id} that answers a session map. */
static void
session_call(struct bclient *bc, const char *method, const char *id,
    struct integ_session *s)
{
	integ_session_call(bc, method, id, NULL, s);
	track(s);
}

struct spawn_opts {
	const char *project, *runtime;		/* runtime NULL: the default */
	const char *command;			/* NULL: the agent script */
	const char *harness, *prompt, *branch;	/* NULL: omitted */
};

static void
pack_spawn(struct rpc_buf *b, const struct spawn_opts *o)
{
	integ_params(b, 2 + (o->runtime != NULL) + (o->prompt != NULL) +
	    (o->branch != NULL));
	rpc_pack_kv_str(&b->pk, "project_id", o->project);
	if (o->harness != NULL)
		rpc_pack_kv_str(&b->pk, "harness", o->harness);
	else {
		rpc_pack_str(&b->pk, "command");
		msgpack_pack_array(&b->pk, 1);
		rpc_pack_str(&b->pk, o->command != NULL ? o->command : script);
	}
	if (o->runtime != NULL)
		rpc_pack_kv_str(&b->pk, "runtime", o->runtime);
	if (o->prompt != NULL)
		rpc_pack_kv_str(&b->pk, "prompt", o->prompt);
	if (o->branch != NULL)
		rpc_pack_kv_str(&b->pk, "branch", o->branch);
}

static void
spawn_ok(struct bclient *bc, const struct spawn_opts *o, struct integ_session *s)
{
	struct bclient_msg res;
	struct rpc_buf b;

	rpc_buf_init(&b);
	pack_spawn(&b, o);
	integ_call_ok(bc, "session.spawn", &b, &res);
	integ_session_from(res.m.result, NULL, s);
	track(s);
	bclient_msg_free(&res);
	rpc_buf_free(&b);
}

/* Spawns the agent script in project under runtime. */
static void
spawn_agent(struct bclient *bc, const char *project, const char *runtime,
    const char *prompt, struct integ_session *s)
{
	struct spawn_opts o = { project, runtime, NULL, NULL, prompt, NULL };

	spawn_ok(bc, &o, s);
}

static void
spawn_err(struct bclient *bc, const struct spawn_opts *o, struct rpc_error *err)
{
	struct rpc_buf b;

	rpc_buf_init(&b);
	pack_spawn(&b, o);
	integ_call_err(bc, "session.spawn", &b, err);
	rpc_buf_free(&b);
}

/* session.send {id, message}: the answer is {id, delivered: true}. */
static void
send_ok(struct bclient *bc, const char *id, const char *message)
{
	struct bclient_msg res;
	struct rpc_buf b;
	const msgpack_object *d;
	char rid[128];

	rpc_buf_init(&b);
	integ_params(&b, 2);
	rpc_pack_kv_str(&b.pk, "id", id);
	rpc_pack_kv_str(&b.pk, "message", message);
	integ_call_ok(bc, "session.send", &b, &res);
	integ_str_field(res.m.result, "id", rid, sizeof(rid));
	ck_assert_str_eq(rid, id);
	d = rpc_map_get(res.m.result, "delivered");
	ck_assert_msg(d != NULL && d->type == MSGPACK_OBJECT_BOOLEAN && d->via.boolean,
	    "session.send did not answer delivered: true");
	bclient_msg_free(&res);
	rpc_buf_free(&b);
}

static void
send_err(struct bclient *bc, const char *id, const char *message, enum rpc_code code)
{
	struct rpc_error err;
	struct rpc_buf b;

	rpc_buf_init(&b);
	integ_params(&b, 2);
	rpc_pack_kv_str(&b.pk, "id", id);
	rpc_pack_kv_str(&b.pk, "message", message);
	integ_call_err(bc, "session.send", &b, &err);
	integ_assert_err(&err, "session.send", code, NULL);
	rpc_buf_free(&b);
}

/* ---- what the agent saw ---- */

static void
agent_path(const struct integ_session *s, const char *file, char *buf, size_t len)
{
	snprintf(buf, len, "%s/%s", s->workspace, file);
}

/* Waits until the agent has started n times; returns the pid of the nth start. */
static pid_t
wait_started(const struct integ_session *s, int n)
{
	int64_t deadline = aotime_mono_ms() + WAIT_MS;
	char path[600], *all, *line, *save = NULL;
	pid_t pid = -1;
	int k = 0;

	agent_path(s, "starts.txt", path, sizeof(path));
	for (;;) {
		all = slurp(path);
		if (integ_count_lines(all) >= n)
			break;
		free(all);
		ck_assert_msg(aotime_mono_ms() < deadline, "agent of %s started fewer "
		    "than %d times (log: %s)", s->id, n, integ_log_tail());
		usleep(20 * 1000);
	}
	for (line = strtok_r(all, "\n", &save); line != NULL;
	    line = strtok_r(NULL, "\n", &save)) {
		track_pid((pid_t)atoi(line));
		if (++k == n)
			pid = (pid_t)atoi(line);
	}
	free(all);
	ck_assert_int_gt(pid, 1);
	return pid;
}

/* Describes how got differs from want: lengths, first difference, context. */
static void
describe_diff(const char *got, const char *want, char *buf, size_t len)
{
	size_t i = 0, gl = strlen(got), wl = strlen(want);

	while (got[i] != '\0' && got[i] == want[i])
		i++;
	snprintf(buf, len, "%zu bytes, expected %zu; first difference at byte %zu: "
	    "got '%.60s' expected '%.60s'", gl, wl, i, got + i, want + i);
}

/* Waits until the agent's file is exactly want. */
static void
wait_content(const struct integ_session *s, const char *file, const char *want)
{
	int64_t deadline = aotime_mono_ms() + WAIT_MS;
	char path[600], diff[512];
	char *got;

	agent_path(s, file, path, sizeof(path));
	for (;;) {
		got = slurp(path);
		if (strcmp(got, want) == 0)
			break;
		/* A longer file, or a different prefix, will not get better. */
		if (aotime_mono_ms() >= deadline || strlen(got) > strlen(want) ||
		    strncmp(got, want, strlen(got)) != 0) {
			describe_diff(got, want, diff, sizeof(diff));
			free(got);
			ck_abort_msg("%s of %s (%s runtime): %s", file, s->id, s->runtime,
			    diff);
		}
		free(got);
		usleep(20 * 1000);
	}
	free(got);
}

/* The message-log line for sid whose message contains needle, once written. */
static void
wait_msglog(const char *sid, const char *needle, char *msg, size_t len,
    bool *delivered)
{
	INTEG_WAIT(integ_msglog_find(msglog, sid, needle, 0, msg, len,
	    delivered) > 0, WAIT_MS, 20, "no message with '%s' to %s in the "
	    "message log", needle, sid);
}

/* Asserts the session's runtime is running: its tmux session or its pid. */
static void
assert_runtime_alive(const struct integ_session *s)
{
	if (strcmp(s->runtime, "tmux") == 0) {
		char want[160];

		snprintf(want, sizeof(want), "ao-%s", s->id);
		ck_assert_str_eq(handle_str(s, "tmux_session"), want);
		ck_assert_msg(tmux_has(want), "tmux session %s is missing", want);
	} else {
		pid_t pid = handle_pid(s);

		ck_assert_int_gt(pid, 1);
		ck_assert_msg(!integ_pid_gone(pid), "agent pid %d is gone",
		    (int)pid);
	}
}

/* Waits until the session's runtime and its agent (agent_pid) are gone. */
static void
wait_runtime_gone(const struct integ_session *s, pid_t agent_pid)
{
	if (strcmp(s->runtime, "tmux") == 0)
		wait_tmux_gone(handle_str(s, "tmux_session"));
	else
		integ_wait_pid_gone(handle_pid(s), WAIT_MS,
		    "the process runtime's agent");
	integ_wait_pid_gone(agent_pid, WAIT_MS, "the agent");
}

/* The session's entry in session.list {project_id, include_terminated}. */
static bool
listed(struct bclient *bc, const char *project, const char *id,
    struct integ_session *s)
{
	struct bclient_msg res;
	struct rpc_buf b;
	const msgpack_object *a;
	bool found = false;
	uint32_t i;

	rpc_buf_init(&b);
	integ_params(&b, 2);
	rpc_pack_kv_str(&b.pk, "project_id", project);
	rpc_pack_kv_bool(&b.pk, "include_terminated", true);
	integ_call_ok(bc, "session.list", &b, &res);
	a = rpc_map_get(res.m.result, "sessions");
	ck_assert_msg(a != NULL && a->type == MSGPACK_OBJECT_ARRAY, "no sessions");
	for (i = 0; i < a->via.array.size && !found; i++) {
		char sid[128];

		integ_str_field(&a->via.array.ptr[i], "id", sid, sizeof(sid));
		if (strcmp(sid, id) == 0) {
			integ_session_from(&a->via.array.ptr[i], NULL, s);
			found = true;
		}
	}
	bclient_msg_free(&res);
	rpc_buf_free(&b);
	return found;
}

/* Whether the repository has branch. */
static bool
has_branch(const char *repo, const char *branch)
{
	char out[1024];

	ck_assert_int_eq(integ_git(repo, out, sizeof(out), "branch", "--list",
	    branch, NULL), 0);
	return out[0] != '\0';
}

/* The worktrees git knows of for repo. */
static int
worktree_count(const char *repo)
{
	char out[4096], *p;
	int n = 0;

	ck_assert_int_eq(integ_git(repo, out, sizeof(out), "worktree", "list",
	    "--porcelain", NULL), 0);
	for (p = out; (p = strstr(p, "worktree ")) != NULL; p++)
		if (p == out || p[-1] == '\n')
			n++;
	return n;
}

/*
 * A failed spawn left nothing behind: the session is listed as
 * terminated/error_in_process, and there is no worktree directory, no git
 * worktree, no ao/<id> branch and no tmux session.
 */
static void
assert_nothing_left(struct bclient *bc, const char *project, const char *repo,
    const char *id)
{
	char path[600], branch[200], name[160];
	struct integ_session s;

	ck_assert_msg(listed(bc, project, id, &s), "session %s is not listed", id);
	ck_assert_str_eq(s.state, "terminated");
	ck_assert_str_eq(s.reason, "error_in_process");
	ck_assert_str_eq(s.status, "errored");
	ck_assert(!s.alive);
	snprintf(path, sizeof(path), "%s/worktrees/%s/%s", dir, project, id);
	ck_assert_msg(!exists(path), "%s was left behind", path);
	snprintf(branch, sizeof(branch), "ao/%s", id);
	ck_assert_msg(!has_branch(repo, branch), "branch %s was left behind", branch);
	ck_assert_int_eq(worktree_count(repo), 1);
	snprintf(name, sizeof(name), "ao-%s", id);
	ck_assert_msg(!tmux_has(name), "tmux session %s was left behind", name);
}

/* An open PR whose check "build" failed on commit, with a log tail. */
static void
observe_ci_failure(struct bclient *bc, const char *sid, const char *commit,
    const char *tail, struct integ_session *s)
{
	struct integ_check c = { "build", commit, "failed", tail };
	struct integ_obs o = { "https://git.example/pr/7", "open",
		"review_required", "failing", NULL, &c, 1, NULL, -1 };

	integ_observe(bc, sid, &o, NULL, s);
}

/* ---- 1. spawn ---- */

/*
 * Each runtime: the session is working and alive, its worktree is
 * <dir>/worktrees/<project>/<id> on branch ao/<id>, the agent runs there with
 * the AO_* environment, and the prompt is its first line of input.
 */
START_TEST(spawn_each_runtime)
{
	const char *rt = runtimes[_i];
	struct bclient *bc = integ_connect(lcmd_sock);
	char repo[512], proj[80], want[1024], out[1024], real[PATH_MAX];
	struct integ_session s, g;

	new_project(bc, "repo", repo, sizeof(repo), proj, sizeof(proj));
	spawn_agent(bc, proj, rt, "build the frobnicator", &s);
	ck_assert_str_eq(s.state, "working");
	ck_assert_str_eq(s.status, "working");
	ck_assert_str_eq(s.runtime, rt);
	ck_assert(s.alive);
	snprintf(want, sizeof(want), "%s/worktrees/%s/%s", dir, proj, s.id);
	ck_assert_str_eq(s.workspace, want);
	snprintf(want, sizeof(want), "ao/%s", s.id);
	ck_assert_str_eq(s.branch, want);
	assert_runtime_alive(&s);

	/* The branch and the worktree, as git sees them. */
	ck_assert_msg(has_branch(repo, want), "no branch %s in %s", want, repo);
	ck_assert_int_eq(integ_git(s.workspace, out, sizeof(out), "rev-parse",
	    "--abbrev-ref", "HEAD", NULL), 0);
	out[strcspn(out, "\n")] = '\0';
	ck_assert_str_eq(out, want);
	ck_assert_int_eq(worktree_count(repo), 2);

	/* The agent: its environment, its directory, its first message. */
	wait_started(&s, 1);
	snprintf(want, sizeof(want), "AO_SESSION_ID=%s\nAO_PROJECT_ID=%s\n"
	    "AO_ISSUE_ID=\nAO_LCMD_SOCKET=%s\n", s.id, proj, lcmd_sock);
	wait_content(&s, "env.txt", want);
	ck_assert_ptr_nonnull(realpath(s.workspace, real));
	snprintf(want, sizeof(want), "%.1000s\n", real);
	wait_content(&s, "pwd.txt", want);
	wait_content(&s, "got.txt", "build the frobnicator\n");

	session_call(bc, "session.get", s.id, &g);
	ck_assert_str_eq(g.status, "working");
	ck_assert(g.alive);
	ck_assert_str_eq(g.handle, s.handle);
	bclient_free(bc);
}
END_TEST

/* ---- 2. send ---- */

/* A one-line, a 5,000-character and a 3-line message arrive intact, in order. */
START_TEST(send_each_runtime)
{
	static const char *const one = "please run the test suite and report back";
	static const char *const multi = "first line of three\n"
	    "second line: with `code` and \"quotes\"\nthird line, the last";
	const char *rt = runtimes[_i];
	struct bclient *bc = integ_connect(lcmd_sock);
	char repo[512], proj[80], big[5001], *want;
	struct integ_session s;
	size_t i;

	/* Every 100 bytes says where it is: a lost or moved chunk shows. */
	for (i = 0; i < 5000; i += 100) {
		size_t k;

		snprintf(big + i, 12, "<%04zu>", i);
		for (k = i + 6; k < i + 100; k++)
			big[k] = (char)('a' + (k % 26));
	}
	big[5000] = '\0';
	ck_assert_uint_eq(strlen(big), 5000);

	new_project(bc, "repo", repo, sizeof(repo), proj, sizeof(proj));
	spawn_agent(bc, proj, rt, NULL, &s);
	wait_started(&s, 1);

	want = calloc(1, strlen(one) + strlen(big) + strlen(multi) + 8);
	ck_assert_ptr_nonnull(want);
	send_ok(bc, s.id, one);
	strcat(strcat(want, one), "\n");
	wait_content(&s, "got.txt", want);
	send_ok(bc, s.id, big);
	strcat(strcat(want, big), "\n");
	wait_content(&s, "got.txt", want);
	send_ok(bc, s.id, multi);
	strcat(strcat(want, multi), "\n");
	wait_content(&s, "got.txt", want);
	free(want);
	bclient_free(bc);
}
END_TEST

/*
 * Waits until the agent's file has as many lines as want, then asserts it
 * is exactly want, naming every line that differs.
 */
static void
assert_lines(const struct integ_session *s, const char *file,
    const char *const want[])
{
	int64_t deadline = aotime_mono_ms() + WAIT_MS;
	char path[600], report[2048] = "", *all, *line, *save = NULL;
	int n, i, bad = 0;

	for (n = 0; want[n] != NULL; n++)
		;
	agent_path(s, file, path, sizeof(path));
	for (;;) {
		all = slurp(path);
		if (integ_count_lines(all) >= n || aotime_mono_ms() >= deadline)
			break;
		free(all);
		usleep(20 * 1000);
	}
	line = strtok_r(all, "\n", &save);
	for (i = 0; i < n; i++) {
		const char *got = line != NULL ? line : "(missing)";

		if (strcmp(got, want[i]) != 0) {
			size_t k = strlen(report);

			snprintf(report + k, sizeof(report) - k, "%s[%d] got '%s' "
			    "expected '%s'", bad++ > 0 ? "; " : "", i, got, want[i]);
		}
		/* An empty line is a line too: strtok_r would skip it. */
		if (line != NULL && save != NULL && *save == '\n') {
			*save++ = '\0';
			line = "";
			continue;
		}
		line = line != NULL ? strtok_r(NULL, "\n", &save) : NULL;
	}
	if (bad == 0 && line != NULL)
		snprintf(report, sizeof(report), "extra line '%s'", line);
	free(all);
	ck_assert_msg(report[0] == '\0', "%s of %s (%s runtime): %s", file, s->id,
	    s->runtime, report);
}

/*
 * One-line messages with characters a terminal multiplexer or a shell gives
 * meaning to arrive as written: a trailing ';', a backslash before ';', a
 * lone ';', '$', quotes, a leading '-', tmux key names.
 */
START_TEST(send_punctuation_each_runtime)
{
	static const char *const msgs[] = {
		"make check; make lint;",
		"echo a\\;",
		";",
		"-t =x: \"$HOME\" 'q' `id` ~ # % {}",
		"Enter",
		"C-c",
		"the last one",
		NULL,
	};
	const char *rt = runtimes[_i];
	struct bclient *bc = integ_connect(lcmd_sock);
	char repo[512], proj[80];
	struct integ_session s;
	int i;

	new_project(bc, "repo", repo, sizeof(repo), proj, sizeof(proj));
	spawn_agent(bc, proj, rt, NULL, &s);
	wait_started(&s, 1);
	for (i = 0; msgs[i] != NULL; i++)
		send_ok(bc, s.id, msgs[i]);
	assert_lines(&s, "got.txt", msgs);
	bclient_free(bc);
}
END_TEST

/*
 * An agent that has exited cannot be messaged: session.send is an error
 * (never delivered: true), and the message log says delivered: false.
 */
START_TEST(send_to_exited_agent_each_runtime)
{
	const char *rt = runtimes[_i];
	struct bclient *bc = integ_connect(lcmd_sock);
	char repo[512], proj[80], msg[256];
	struct integ_session s;
	struct rpc_error err;
	struct rpc_buf b;
	bool delivered = true;
	pid_t agent;

	new_project(bc, "repo", repo, sizeof(repo), proj, sizeof(proj));
	spawn_agent(bc, proj, rt, NULL, &s);
	agent = wait_started(&s, 1);
	send_ok(bc, s.id, EXIT_LINE);
	wait_runtime_gone(&s, agent);

	rpc_buf_init(&b);
	integ_params(&b, 2);
	rpc_pack_kv_str(&b.pk, "id", s.id);
	rpc_pack_kv_str(&b.pk, "message", "is anyone there?");
	integ_call_err(bc, "session.send", &b, &err);
	ck_assert_msg(err.code == RPC_UNAVAILABLE || err.code == RPC_INVALID_STATE,
	    "send to an exited agent: %s: %s", rpc_code_name(err.code), err.message);
	rpc_buf_free(&b);
	if (err.code == RPC_UNAVAILABLE) {
		wait_msglog(s.id, "is anyone there?", msg, sizeof(msg), &delivered);
		ck_assert_msg(!delivered, "the message log says delivered");
	}
	bclient_free(bc);
}
END_TEST

/*
 * The prompt given at spawn is the agent's first message, even when a
 * session.send follows the spawn at once: the two never interleave.
 */
START_TEST(prompt_then_send_each_runtime)
{
	const char *rt = runtimes[_i];
	struct bclient *bc = integ_connect(lcmd_sock);
	char repo[512], proj[80];
	struct integ_session s;

	new_project(bc, "repo", repo, sizeof(repo), proj, sizeof(proj));
	spawn_agent(bc, proj, rt, "the prompt: fix issue 12", &s);
	send_ok(bc, s.id, "and a follow-up sent right away");
	wait_content(&s, "got.txt", "the prompt: fix issue 12\n"
	    "and a follow-up sent right away\n");
	bclient_free(bc);
}
END_TEST

/* ---- 3. kill ---- */

/* Kill stops the runtime (tmux session gone / pid gone); send after kill is refused. */
START_TEST(kill_each_runtime)
{
	const char *rt = runtimes[_i];
	struct bclient *bc = integ_connect(lcmd_sock);
	char repo[512], proj[80];
	struct integ_session s, k, g;
	pid_t agent;

	new_project(bc, "repo", repo, sizeof(repo), proj, sizeof(proj));
	spawn_agent(bc, proj, rt, NULL, &s);
	agent = wait_started(&s, 1);
	if (strcmp(rt, "process") == 0)
		ck_assert_int_eq(handle_pid(&s), agent);

	session_call(bc, "session.kill", s.id, &k);
	ck_assert_str_eq(k.state, "terminated");
	ck_assert_str_eq(k.reason, "manually_killed");
	ck_assert_str_eq(k.status, "killed");
	wait_runtime_gone(&s, agent);

	send_err(bc, s.id, "are you there?", RPC_INVALID_STATE);
	integ_id_err(bc, "session.kill", s.id, RPC_INVALID_STATE);
	session_call(bc, "session.get", s.id, &g);
	ck_assert_str_eq(g.status, "killed");
	ck_assert(!g.alive);
	/* The worktree stays until cleanup. */
	ck_assert_msg(exists(s.workspace), "kill removed the worktree");
	bclient_free(bc);
}
END_TEST

/*
 * Kill stops what the agent started too (its build, its server): the whole
 * process group or tmux session goes, not only the agent's own pid.
 */
START_TEST(kill_stops_agent_children_each_runtime)
{
	const char *rt = runtimes[_i];
	struct bclient *bc = integ_connect(lcmd_sock);
	char repo[512], proj[80], path[600], *txt;
	struct spawn_opts o = { NULL, NULL, NULL, NULL, NULL, NULL };
	struct integ_session s, k;
	pid_t agent, child, pgid;

	new_project(bc, "repo", repo, sizeof(repo), proj, sizeof(proj));
	o.project = proj;
	o.runtime = rt;
	o.command = child_script;
	spawn_ok(bc, &o, &s);
	agent = wait_started(&s, 1);
	agent_path(&s, "child.txt", path, sizeof(path));
	txt = slurp(path);
	child = (pid_t)atoi(txt);
	free(txt);
	ck_assert_int_gt(child, 1);
	track_pid(child);
	ck_assert(!integ_pid_gone(child));

	pgid = getpgid(agent);

	session_call(bc, "session.kill", s.id, &k);
	ck_assert_str_eq(k.status, "killed");
	wait_runtime_gone(&s, agent);
	INTEG_WAIT(integ_pid_gone(child), WAIT_MS, 20, "the agent's child (pid %d, "
	    "process group %d) is still running after kill; the agent was pid %d "
	    "in process group %d", (int)child, (int)getpgid(child), (int)agent,
	    (int)pgid);
	bclient_free(bc);
}
END_TEST

/* Whether pid has a file descriptor open on path (or a socket); which, in buf. */
static bool
holds_fd(pid_t pid, const char *path, bool sockets, char *buf, size_t len)
{
	char fddir[64], link[600], target[PATH_MAX];
	struct dirent *de;
	DIR *d;
	bool found = false;

	snprintf(fddir, sizeof(fddir), "/proc/%d/fd", (int)pid);
	ck_assert_ptr_nonnull(d = opendir(fddir));
	while ((de = readdir(d)) != NULL && !found) {
		ssize_t n;

		if (de->d_name[0] == '.')
			continue;
		snprintf(link, sizeof(link), "%s/%s", fddir, de->d_name);
		if ((n = readlink(link, target, sizeof(target) - 1)) <= 0)
			continue;
		target[n] = '\0';
		if (strcmp(target, path) == 0 ||
		    (sockets && strncmp(target, "socket:", 7) == 0)) {
			snprintf(buf, len, "fd %.20s -> %.500s", de->d_name, target);
			found = true;
		}
	}
	closedir(d);
	return found;
}

/* The soft RLIMIT_NOFILE of pid, from /proc/PID/limits, or -1. */
static long long
soft_nofile(pid_t pid)
{
	char path[64], line[256];
	long long v = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/limits", (int)pid);
	if ((f = fopen(path, "r")) == NULL)
		return -1;
	while (fgets(line, sizeof(line), f) != NULL)
		if (strncmp(line, "Max open files", 14) == 0)
			v = strtoll(line + 14, NULL, 10);
	fclose(f);
	return v;
}

/*
 * What lcmd has open (its message log, its sockets) does not leak into the
 * agent, nor into a tmux server lcmd started: they outlive lcmd.  Nor does
 * the descriptor limit lcmd raised for itself: the agent gets the one lcmd
 * was started with (programs using select(2) expect it).
 */
START_TEST(agent_inherits_no_lcmd_fds_each_runtime)
{
	const char *rt = runtimes[_i];
	struct bclient *bc = integ_connect(lcmd_sock);
	char repo[512], proj[80], what[700], out[64];
	struct integ_session s;
	pid_t agent;

	new_project(bc, "repo", repo, sizeof(repo), proj, sizeof(proj));
	spawn_agent(bc, proj, rt, NULL, &s);
	agent = wait_started(&s, 1);
	send_ok(bc, s.id, "something for the message log");
	wait_content(&s, "got.txt", "something for the message log\n");
	ck_assert_msg(!holds_fd(agent, msglog, true, what, sizeof(what)),
	    "the agent (pid %d) holds %s", (int)agent, what);
	{
		struct rlimit rl;

		ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
		ck_assert_int_eq(soft_nofile(agent), (long long)rl.rlim_cur);
	}
	if (strcmp(rt, "tmux") == 0) {
		const char *argv[] = { "tmux", "-L", tmux_name, "display-message", "-p",
			"#{pid}", NULL };
		pid_t server;

		ck_assert_int_eq(integ_run(argv, out, sizeof(out), WAIT_MS), 0);
		server = (pid_t)atoi(out);
		ck_assert_int_gt(server, 1);
		ck_assert_msg(!holds_fd(server, msglog, false, what, sizeof(what)),
		    "the tmux server (pid %d) holds %s", (int)server, what);
	}
	bclient_free(bc);
}
END_TEST

/*
 * lcmd raised its descriptor limit and holds more descriptors than it was
 * started with (1100 connections, our limit is 1024): a process agent
 * still starts — the child lowers the limit only right before exec, not
 * before opening its FIFO and log (EMFILE).
 */
START_TEST(spawn_with_many_lcmd_fds)
{
	enum { NCONN = 1100 };
	struct bclient *bc = integ_connect(lcmd_sock);
	char repo[512], proj[80], err[256];
	struct integ_session s;
	struct rlimit rl, was;
	int fd[NCONN], i;

	ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &was), 0);
	if (was.rlim_max < NCONN + 200) {
		fprintf(stderr, "spawn_with_many_lcmd_fds: skipped (hard limit %llu)\n",
		    (unsigned long long)was.rlim_max);
		bclient_free(bc);
		return;
	}
	rl = was;
	rl.rlim_cur = rl.rlim_max;
	ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &rl), 0);
	new_project(bc, "repo", repo, sizeof(repo), proj, sizeof(proj));
	for (i = 0; i < NCONN; i++) {
		fd[i] = sock_connect_unix(lcmd_sock, 0, err, sizeof(err));
		ck_assert_msg(fd[i] != -1, "connect %d: %s", i, err);
	}
	/* lcmd has accepted them all once it answers after them. */
	integ_assert_hello_at(lcmd_sock, "lcmd", lcmd_pid);
	spawn_agent(bc, proj, "process", NULL, &s);
	wait_started(&s, 1);
	for (i = 0; i < NCONN; i++)
		close(fd[i]);
	bclient_free(bc);
}
END_TEST

/* ---- 4. restore ---- */

/* Restore restarts the agent in the same worktree; messages reach it again. */
START_TEST(restore_each_runtime)
{
	const char *rt = runtimes[_i];
	struct bclient *bc = integ_connect(lcmd_sock);
	char repo[512], proj[80], want[1024];
	struct integ_session s, k, r;
	pid_t first, second;

	new_project(bc, "repo", repo, sizeof(repo), proj, sizeof(proj));
	spawn_agent(bc, proj, rt, NULL, &s);
	first = wait_started(&s, 1);
	send_ok(bc, s.id, "before the kill");
	wait_content(&s, "got.txt", "before the kill\n");
	session_call(bc, "session.kill", s.id, &k);
	wait_runtime_gone(&s, first);

	session_call(bc, "session.restore", s.id, &r);
	ck_assert_str_eq(r.state, "working");
	ck_assert_str_eq(r.status, "working");
	ck_assert_str_eq(r.reason, "");
	ck_assert(r.alive);
	ck_assert_str_eq(r.workspace, s.workspace);
	ck_assert_str_eq(r.branch, s.branch);
	assert_runtime_alive(&r);
	second = wait_started(&r, 2);
	ck_assert_int_ne(second, first);
	if (strcmp(rt, "process") == 0)
		ck_assert_int_eq(handle_pid(&r), second);
	snprintf(want, sizeof(want), "AO_SESSION_ID=%s\nAO_PROJECT_ID=%s\n"
	    "AO_ISSUE_ID=\nAO_LCMD_SOCKET=%s\n", s.id, proj, lcmd_sock);
	wait_content(&r, "env.txt", want);

	send_ok(bc, s.id, "after the restore");
	wait_content(&r, "got.txt", "before the kill\nafter the restore\n");
	/* Restoring a live session is refused. */
	integ_id_err(bc, "session.restore", s.id, RPC_INVALID_STATE);
	bclient_free(bc);
}
END_TEST

/* ---- 5. reactions reach the agent ---- */

/*
 * A CI-failed observation: the agent receives the nudge naming the check,
 * the commit and the log tail, exactly as the message log records it
 * (delivered: true).
 */
START_TEST(ci_failed_nudge_each_runtime)
{
	static const char *const tail = "src/frob.c:12: error: undefined "
	    "reference to `frob'\ncollect2: error: ld returned 1 exit status";
	const char *rt = runtimes[_i];
	struct bclient *bc = integ_connect(lcmd_sock);
	char repo[512], proj[80], msg[4096], want[4200];
	struct integ_session s, v;
	bool delivered = false;

	new_project(bc, "repo", repo, sizeof(repo), proj, sizeof(proj));
	spawn_agent(bc, proj, rt, NULL, &s);
	wait_started(&s, 1);
	observe_ci_failure(bc, s.id, "5eedc0de", tail, &v);
	ck_assert_str_eq(v.status, "ci_failed");

	wait_msglog(s.id, "CI failed", msg, sizeof(msg), &delivered);
	ck_assert_msg(delivered, "the nudge was not delivered: %s", msg);
	ck_assert_msg(strstr(msg, "build") != NULL && strstr(msg, "5eedc0de") != NULL &&
	    strstr(msg, tail) != NULL, "the nudge lacks the check, commit or log "
	    "tail: %s", msg);
	snprintf(want, sizeof(want), "%s\n", msg);
	wait_content(&s, "got.txt", want);
	bclient_free(bc);
}
END_TEST

/* ---- 6. failures leave nothing behind ---- */

START_TEST(project_add_not_git)
{
	struct bclient *bc = integ_connect(lcmd_sock);
	struct rpc_error err;
	struct rpc_buf b;
	char path[512];

	snprintf(path, sizeof(path), "%s/plain", dir);
	ck_assert_int_eq(mkdir(path, 0755), 0);
	rpc_buf_init(&b);
	rpc_pack_kv_str(&integ_params(&b, 1)->pk, "path", path);
	integ_call_err(bc, "project.add", &b, &err);
	integ_assert_err(&err, "project.add", RPC_BAD_REQUEST,
	    "not a git repository");
	rpc_buf_free(&b);
	bclient_free(bc);
}
END_TEST

/* A command that does not exist: the launch step fails, for either runtime. */
START_TEST(spawn_missing_command)
{
	struct bclient *bc = integ_connect(lcmd_sock);
	char repo[512], proj[80];
	struct rpc_error err;
	int i;

	new_project(bc, "repo", repo, sizeof(repo), proj, sizeof(proj));
	for (i = 0; i < 2; i++) {
		struct spawn_opts o = { proj, runtimes[i], "/nonexistent/agent", NULL,
			"a prompt", NULL };

		spawn_err(bc, &o, &err);
		integ_assert_err(&err, "spawn /nonexistent/agent", RPC_BAD_REQUEST,
		    "spawn failed at launch");
		ck_assert_msg(strstr(err.message, "/nonexistent/agent") != NULL,
		    "the error does not name the command: %s", err.message);
		ck_assert_str_eq(err.extra_key, "session_id");
		ck_assert_str_ne(err.extra_val, "");
		assert_nothing_left(bc, proj, repo, err.extra_val);
	}
	bclient_free(bc);
}
END_TEST

/*
 * The process runtime cannot exec the command (a bad interpreter): the
 * runtime step fails after the worktree was made, and it is undone — the
 * worktree, the branch and the agent's FIFO.
 */
START_TEST(spawn_exec_fails)
{
	struct bclient *bc = integ_connect(lcmd_sock);
	char repo[512], proj[80], bad[300], fifo[600];
	struct rpc_error err;
	struct spawn_opts o = { NULL, "process", NULL, NULL, NULL, NULL };

	snprintf(bad, sizeof(bad), "%s/bad-interpreter.sh", dir);
	integ_write_file(bad, "#!/nonexistent/interpreter\n", 0755);
	new_project(bc, "repo", repo, sizeof(repo), proj, sizeof(proj));
	o.project = proj;
	o.command = bad;
	spawn_err(bc, &o, &err);
	ck_assert_msg(strstr(err.message, "spawn failed at runtime") != NULL,
	    "spawn bad-interpreter.sh: %s: %s", rpc_code_name(err.code), err.message);
	ck_assert_str_eq(err.extra_key, "session_id");
	assert_nothing_left(bc, proj, repo, err.extra_val);
	snprintf(fifo, sizeof(fifo), "%s/run/agents/%s.in", dir, err.extra_val);
	ck_assert_msg(!exists(fifo), "the agent's FIFO %s was left behind", fifo);
	bclient_free(bc);
}
END_TEST

/* A branch that is taken (the repository's own): the worktree step fails. */
START_TEST(spawn_taken_branch)
{
	struct bclient *bc = integ_connect(lcmd_sock);
	char repo[512], proj[80], head[64];
	struct rpc_error err;
	struct spawn_opts o = { NULL, NULL, NULL, NULL, NULL, "main" };

	new_project(bc, "repo", repo, sizeof(repo), proj, sizeof(proj));
	o.project = proj;
	spawn_err(bc, &o, &err);
	integ_assert_err(&err, "spawn on branch main", RPC_CONFLICT,
	    "spawn failed at worktree");
	ck_assert_str_eq(err.extra_key, "session_id");
	assert_nothing_left(bc, proj, repo, err.extra_val);
	/* The repository's own branch is untouched. */
	ck_assert(has_branch(repo, "main"));
	ck_assert_int_eq(integ_git(repo, head, sizeof(head), "rev-parse",
	    "--abbrev-ref", "HEAD", NULL), 0);
	ck_assert_str_eq(head, "main\n");
	bclient_free(bc);
}
END_TEST

/* A harness whose binary is not installed: bad_request naming it. */
START_TEST(spawn_missing_harness)
{
	struct bclient *bc = integ_connect(lcmd_sock);
	char repo[512], proj[80], buf[4096];
	const char *path = getenv("PATH"), *p;
	struct rpc_error err;
	struct spawn_opts o = { NULL, NULL, NULL, "claude-code", "a prompt", NULL };

	/* lcmd inherits this PATH: if claude is installed, there is nothing to test. */
	for (p = path; p != NULL && *p != '\0'; p = strchr(p, ':') ? strchr(p, ':') + 1 :
	    NULL) {
		snprintf(buf, sizeof(buf), "%.*s/claude", (int)strcspn(p, ":"), p);
		if (access(buf, X_OK) == 0) {
			fprintf(stderr, "spawn_missing_harness: %s is installed: "
			    "skipped\n", buf);
			bclient_free(bc);
			return;
		}
	}
	new_project(bc, "repo", repo, sizeof(repo), proj, sizeof(proj));
	o.project = proj;
	spawn_err(bc, &o, &err);
	integ_assert_err(&err, "spawn claude-code", RPC_BAD_REQUEST, "claude");
	ck_assert_msg(strstr(err.message, "spawn failed at") != NULL,
	    "the error does not name the step: %s", err.message);
	ck_assert_str_eq(err.extra_key, "session_id");
	assert_nothing_left(bc, proj, repo, err.extra_val);
	bclient_free(bc);
}
END_TEST

/* ---- 7. restart lcmd ---- */

/*
 * lcmd goes away (SIGTERM, then SIGKILL) while a tmux and a process agent
 * run: both keep running, and the next lcmd on the same data dir still
 * reaches and stops them.
 */
START_TEST(restart_lcmd_keeps_agents)
{
	struct bclient *bc = integ_connect(lcmd_sock);
	char repo[512], proj[80];
	struct integ_session t, p, k;
	pid_t tagent, pagent;
	int st, round;

	new_project(bc, "repo", repo, sizeof(repo), proj, sizeof(proj));
	spawn_agent(bc, proj, "tmux", NULL, &t);
	spawn_agent(bc, proj, "process", NULL, &p);
	tagent = wait_started(&t, 1);
	pagent = wait_started(&p, 1);
	bclient_free(bc);

	for (round = 0; round < 2; round++) {
		char line[64], want[256];

		st = testlib_stop(lcmd_pid, round == 0 ? SIGTERM : SIGKILL, 5000);
		if (round == 0)
			ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0,
			    "lcmd did not exit cleanly on SIGTERM: %#x", st);
		assert_runtime_alive(&t);
		assert_runtime_alive(&p);
		ck_assert(!integ_pid_gone(tagent));
		ck_assert(!integ_pid_gone(pagent));

		start_lcmd();
		bc = integ_connect(lcmd_sock);
		snprintf(line, sizeof(line), "after restart %d", round + 1);
		send_ok(bc, t.id, line);
		send_ok(bc, p.id, line);
		snprintf(want, sizeof(want), "%s%s\n", round == 0 ? "" :
		    "after restart 1\n", line);
		wait_content(&t, "got.txt", want);
		wait_content(&p, "got.txt", want);
		if (round == 0)
			bclient_free(bc);
	}
	session_call(bc, "session.kill", t.id, &k);
	ck_assert_str_eq(k.status, "killed");
	session_call(bc, "session.kill", p.id, &k);
	ck_assert_str_eq(k.status, "killed");
	wait_runtime_gone(&t, tagent);
	wait_runtime_gone(&p, pagent);
	bclient_free(bc);
}
END_TEST

/* ---- 8. cleanup ---- */

static void
remove_agent_files(const struct integ_session *s)
{
	static const char *const files[] = { "env.txt", "pwd.txt", "starts.txt",
		"got.txt", NULL };
	char path[600];
	int i;

	for (i = 0; files[i] != NULL; i++) {
		agent_path(s, files[i], path, sizeof(path));
		ck_assert_msg(unlink(path) == 0 || errno == ENOENT, "unlink %s", path);
	}
}

/*
 * Cleanup keeps a worktree with uncommitted work (the agent's untracked
 * files) and says so, and removes a clean one; cleanup of a session that
 * was already terminated keeps its termination reason.
 */
START_TEST(cleanup_keeps_dirty_removes_clean)
{
	struct bclient *bc = integ_connect(lcmd_sock);
	char repo[512], proj[80], path[600];
	struct integ_session a, b, c, g;
	pid_t aagent, bagent;

	new_project(bc, "repo", repo, sizeof(repo), proj, sizeof(proj));
	spawn_agent(bc, proj, "tmux", NULL, &a);
	spawn_agent(bc, proj, "process", NULL, &b);
	aagent = wait_started(&a, 1);
	bagent = wait_started(&b, 1);

	/* A live session with untracked files: stopped, terminated, worktree kept. */
	session_call(bc, "session.cleanup", a.id, &c);
	ck_assert_str_eq(c.state, "terminated");
	ck_assert_str_eq(c.reason, "auto_cleanup");
	ck_assert_str_eq(c.status, "cleanup");
	ck_assert_msg(strncmp(c.worktree_note, "kept", 4) == 0,
	    "worktree: '%s', expected kept: ...", c.worktree_note);
	wait_runtime_gone(&a, aagent);
	ck_assert_msg(exists(a.workspace), "a worktree with uncommitted work was "
	    "removed");
	agent_path(&a, "starts.txt", path, sizeof(path));
	ck_assert_msg(exists(path), "the uncommitted files are gone");

	/* A killed session whose worktree is clean again: removed, reason kept. */
	session_call(bc, "session.kill", b.id, &c);
	wait_runtime_gone(&b, bagent);
	remove_agent_files(&b);
	session_call(bc, "session.cleanup", b.id, &c);
	ck_assert_str_eq(c.state, "terminated");
	ck_assert_str_eq(c.reason, "manually_killed");
	ck_assert_str_eq(c.status, "killed");
	ck_assert_msg(strncmp(c.worktree_note, "removed", 7) == 0,
	    "worktree: '%s', expected removed", c.worktree_note);
	ck_assert_msg(!exists(b.workspace), "%s is still there", b.workspace);
	ck_assert_int_eq(worktree_count(repo), 2);	/* main and a's */
	session_call(bc, "session.get", b.id, &g);
	ck_assert_str_eq(g.reason, "manually_killed");

	/* Committing a's work makes it clean: a second cleanup removes it. */
	ck_assert_int_eq(integ_git(a.workspace, NULL, 0, "add", "-A", NULL), 0);
	ck_assert_int_eq(integ_git(a.workspace, NULL, 0, "commit", "-q", "-m",
	    "agent work", NULL), 0);
	session_call(bc, "session.cleanup", a.id, &c);
	ck_assert_str_eq(c.reason, "auto_cleanup");
	ck_assert_msg(strncmp(c.worktree_note, "removed", 7) == 0,
	    "worktree: '%s', expected removed", c.worktree_note);
	ck_assert_msg(!exists(a.workspace), "%s is still there", a.workspace);
	ck_assert_int_eq(worktree_count(repo), 1);
	bclient_free(bc);
}
END_TEST

static TCase *
tcase(Suite *s, const char *name, int timeout)
{
	return integ_tcase(s, name, timeout, setup, teardown, 0);
}

Suite *
runtime_suite(void)
{
	Suite *s = suite_create("runtime");
	TCase *tc;

	tc = tcase(s, "spawn", 30);
	tcase_add_loop_test(tc, spawn_each_runtime, 0, 2);
	tc = tcase(s, "send", 30);
	tcase_add_loop_test(tc, send_each_runtime, 0, 2);
	tcase_add_loop_test(tc, send_punctuation_each_runtime, 0, 2);
	tcase_add_loop_test(tc, prompt_then_send_each_runtime, 0, 2);
	tcase_add_loop_test(tc, send_to_exited_agent_each_runtime, 0, 2);
	tc = tcase(s, "kill and restore", 30);
	tcase_add_loop_test(tc, kill_each_runtime, 0, 2);
	tcase_add_loop_test(tc, restore_each_runtime, 0, 2);
	tc = tcase(s, "isolation", 30);
	tcase_add_loop_test(tc, kill_stops_agent_children_each_runtime, 0, 2);
	tcase_add_loop_test(tc, agent_inherits_no_lcmd_fds_each_runtime, 0, 2);
	tcase_add_test(tc, spawn_with_many_lcmd_fds);
	tc = tcase(s, "reactions", 30);
	tcase_add_loop_test(tc, ci_failed_nudge_each_runtime, 0, 2);
	tc = tcase(s, "restart", 45);
	tcase_add_test(tc, restart_lcmd_keeps_agents);
	tc = tcase(s, "cleanup", 30);
	tcase_add_test(tc, cleanup_keeps_dirty_removes_clean);
	tc = tcase(s, "bad input", 30);
	tcase_add_test(tc, project_add_not_git);
	tcase_add_test(tc, spawn_missing_command);
	tcase_add_test(tc, spawn_exec_fails);
	tcase_add_test(tc, spawn_taken_branch);
	tcase_add_test(tc, spawn_missing_harness);
	return s;
}
TEST_SUITE(runtime_suite)
