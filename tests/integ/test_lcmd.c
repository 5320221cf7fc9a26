/*
 * bin/ao-lcmd end to end: the real binary with a real ao-storaged on a
 * temporary data dir, driven over lcmd.sock with the blocking client.  The
 * reducer's truth tables are the unit suite's job (tests/unit/test_lcmd.c);
 * this suite covers what only the running daemons show: the API and its
 * shapes on the wire, the lifecycle and the reactions as stored by storaged,
 * budgets that survive a restart of lcmd, notifier children that hang, a
 * storaged that goes away, and hostile bytes.
 *
 * Projects are throw-away git repositories; agents are scripted: a `process`
 * runtime running `cat`, so every message lcmd sends lands in the agent's
 * log, and every attempt is also a JSON line in lcmd's --message-log (how
 * these tests count nudges).  tmux, where used, runs on a private socket.
 * runtime.report and tick answer once their inputs are queued, not
 * applied, so tests wait for lcmd's queues to drain (`stats`
 * inputs.queued == 0) before they look.  Every process a test causes —
 * daemons, agents, notifier scripts, the tmux server — is killed by pid in
 * its fixture, and what a failed test leaves behind by the test case's
 * (see setup).  Spawn-heavy cases double as concurrency checks:
 * max_sessions and worktree creation under simultaneous spawns.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>

#include "common/aotime.h"
#include "common/sock.h"
#include "proto/bclient.h"
#include "tests/lib/integ.h"
#include "tests/lib/testlib.h"

#define CALL_TIMEOUT_MS		5000
#define READY_TIMEOUT_MS	10000	/* generous: ASan start-up is slow */
#define SETTLE_TIMEOUT_MS	5000	/* queues draining, notifiers finishing */
#define FAST_MS			250	/* "answers at once", even under ASan */

static char *dir;		/* per test,
    inside the test case's (INTEG_CASE_DIR) */
static char storaged_sock[256];	/* <dir>/run/storaged.sock */
static char lcmd_sock[256];	/* <dir>/run/lcmd.sock */
static char logpath[256];	/* the daemons' stderr */
static char msglog[256];	/* lcmd's --message-log */
static char pidfile[256];	/* pids written by notifier scripts */
static char delivered[256];	/* what the recording notifier got */
static char agentpids[256];	/* pids written by agent scripts */
static char tmuxsock[256];	/* lcmd's private tmux server */
static char agentcmd[512];	/* the scripted agent, for sh -c */
static pid_t storaged_pid = -1, lcmd_pid = -1;
static pid_t agents[256];	/* agent pids seen in runtime handles */
static int nagents;

static const char *const session_keys[] = { "id", "project_id", "num",
	"issue_id", "kind", "harness", "runtime", "state", "termination_reason",
	"is_alive", "activity_state", "activity_at", "activity_source", "branch",
	"workspace_path", "runtime_handle", "prompt", "created_at", "updated_at",
	"status", "pr", NULL };
static const char *const project_keys[] = { "id", "path", "origin_url",
	"display_name", "registered_at", "archived_at", NULL };
static const char *const notification_keys[] = { "id", "project_id",
	"session_id", "priority", "reaction", "message", "created_at", NULL };

/* ---- daemons ---- */

/* The daemons' log from the first line containing needle (1 KiB), else its tail. */
static const char *
log_from(const char *needle)
{
	static char buf[1024];
	char *all = testlib_read_file(logpath), *p;

	if (all == NULL || (p = strstr(all, needle)) == NULL) {
		free(all);
		return integ_log_tail();
	}
	while (p > all && p[-1] != '\n')
		p--;
	snprintf(buf, sizeof(buf), "%s", p);
	free(all);
	return buf;
}

static void
start_storaged(void)
{
	storaged_pid = integ_start("ao-storaged", NULL);
}

static void
start_lcmd(const char *const extra[])
{
	lcmd_pid = integ_start_lcmd(msglog, tmuxsock, extra);
}

/* Runs argv to its end (at most 10 s), quietly; the exit code, -1 if it did not exit. */
static int
run(const char *const argv[])
{
	return integ_run(argv, NULL, 0, 10000);
}

/*
 * Kills the process groups whose leaders' pids scripts appended to path:
 * notifiers (lcmd's grandchildren) and agents (setsid'd, adopted by init).
 */
static void
kill_recorded(const char *path)
{
	char *pids = testlib_read_file(path), *line, *save = NULL;

	if (pids == NULL)
		return;
	for (line = strtok_r(pids, "\n", &save); line != NULL;
	    line = strtok_r(NULL, "\n", &save)) {
		pid_t pid = (pid_t)atoi(line);

		if (pid > 1) {
			kill(-pid, SIGKILL);
			kill(pid, SIGKILL);
		}
	}
	free(pids);
}

/*
 * Everything a test started, by pid: the daemons, then what outlives them —
 * agents (setsid'd), notifier scripts (they cd into dir), the private tmux
 * server — then the directory.
 */
static void
cleanup(void)
{
	const char *kill_server[] = { "/usr/bin/env", "tmux", "-S", tmuxsock,
		"kill-server", NULL };
	struct stat st;
	int i;

	testlib_reap_all();
	kill_recorded(pidfile);
	kill_recorded(agentpids);
	for (i = 0; i < nagents; i++)
		kill(agents[i], SIGKILL);
	nagents = 0;
	integ_kill_by_cwd(dir);
	if (stat(tmuxsock, &st) == 0)
		run(kill_server);
	testlib_reap_all();
	usleep(20 * 1000);	/* a script that was forking when it was killed */
	integ_kill_by_cwd(dir);
	testlib_rmrf(dir);
	free(dir);
	dir = NULL;
}

/*
 * Check runs each test in a child and skips its teardown when it fails
 * (or times out); the daemons die with it (PR_SET_PDEATHSIG), but agents
 * and notifier scripts outlive lcmd by design.  So the runner itself makes
 * a directory per test case and, after the case, kills whatever still
 * works inside it and removes it (INTEG_CASE_KILL).
 */
static void
setup(void)
{
	dir = integ_test_dir();
	snprintf(storaged_sock, sizeof(storaged_sock), "%s/run/storaged.sock", dir);
	snprintf(lcmd_sock, sizeof(lcmd_sock), "%s/run/lcmd.sock", dir);
	snprintf(logpath, sizeof(logpath), "%s/daemons.log", dir);
	snprintf(msglog, sizeof(msglog), "%s/messages.log", dir);
	snprintf(pidfile, sizeof(pidfile), "%s/notifier.pids", dir);
	snprintf(delivered, sizeof(delivered), "%s/delivered.log", dir);
	snprintf(agentpids, sizeof(agentpids), "%s/agents.pids", dir);
	snprintf(tmuxsock, sizeof(tmuxsock), "%s/tmux.sock", dir);
	snprintf(agentcmd, sizeof(agentcmd), "echo $$ >> '%s'; exec cat", agentpids);
	storaged_pid = lcmd_pid = -1;
	nagents = 0;
	integ_configure(&(struct integ_conf){ .dir = dir, .log = logpath,
	    .ready_ms = READY_TIMEOUT_MS, .call_ms = CALL_TIMEOUT_MS });
	start_storaged();
}

static void
teardown(void)
{
	cleanup();
}

/* ---- calls ---- */

/* Waits until lcmd has applied every queued input. */
static void
quiesce(struct bclient *bc)
{
	INTEG_WAIT(integ_stat(bc, "inputs", "queued") == 0, SETTLE_TIMEOUT_MS, 10,
	    "lcmd's queues never drained");
}

/* ---- projects and sessions ---- */

/* Makes <dir>/<name> a git repository with one commit; path receives it. */
static void
make_repo(const char *name, char *path, size_t len)
{
	snprintf(path, len, "%s/%s", dir, name);
	ck_assert_int_eq(mkdir(path, 0755), 0);
	ck_assert_int_eq(integ_git(path, NULL, 0, "init", "-q", NULL), 0);
	ck_assert_int_eq(integ_git(path, NULL, 0, "commit", "-q", "--allow-empty",
	    "-m", "initial", NULL), 0);
}

/* Makes <dir>/<name> a repository and adds it; id receives the project id. */
static void
add_project(struct bclient *bc, const char *name, char *id, size_t idlen)
{
	char path[512];

	make_repo(name, path, sizeof(path));
	integ_project_add(bc, path, id, idlen);
}

/* Remembers the agent of a process-runtime session, for cleanup. */
static void
note_agent(const struct integ_session *v)
{
	if (v->pid > 1 && nagents < (int)(sizeof(agents) / sizeof(agents[0])))
		agents[nagents++] = v->pid;
}

/* A session map as lcmd shows it: every key there. */
static void
sview_from(const msgpack_object *m, struct integ_session *v)
{
	integ_session_from(m, session_keys, v);
	note_agent(v);
}

/* Calls a method taking {id} that answers a session map. */
static void
session_call(struct bclient *bc, const char *method, const char *id,
    struct integ_session *v)
{
	integ_session_call(bc, method, id, session_keys, v);
	note_agent(v);
}

static void
sget(struct bclient *bc, const char *id, struct integ_session *v)
{
	session_call(bc, "session.get", id, v);
}

/*
 * Packs session.spawn params for the scripted agent (`cat`, which echoes
 * what it is sent into its log) on runtime (NULL: the default, tmux).
 */
static void
pack_spawn(struct rpc_buf *b, const char *project, const char *runtime,
    const char *prompt)
{
	integ_params(b, 2 + (runtime != NULL) + (prompt != NULL));
	rpc_pack_kv_str(&b->pk, "project_id", project);
	if (runtime != NULL)
		rpc_pack_kv_str(&b->pk, "runtime", runtime);
	if (prompt != NULL)
		rpc_pack_kv_str(&b->pk, "prompt", prompt);
	rpc_pack_str(&b->pk, "command");
	msgpack_pack_array(&b->pk, 3);
	rpc_pack_str(&b->pk, "sh");
	rpc_pack_str(&b->pk, "-c");
	rpc_pack_str(&b->pk, agentcmd);
}

/* Spawns a scripted agent with the process runtime; it must start. */
static void
spawn(struct bclient *bc, const char *project, struct integ_session *v)
{
	struct bclient_msg res;
	struct rpc_buf b;

	rpc_buf_init(&b);
	pack_spawn(&b, project, "process", NULL);
	integ_call_ok(bc, "session.spawn", &b, &res);
	sview_from(res.m.result, v);
	ck_assert_str_eq(v->state, "working");
	ck_assert_int_gt(v->pid, 1);
	bclient_msg_free(&res);
	rpc_buf_free(&b);
}

/* session.activity {id, state}; v gets the answer. */
static void
activity(struct bclient *bc, const char *id, const char *state,
    struct integ_session *v)
{
	struct bclient_msg res;
	struct rpc_buf b;

	rpc_buf_init(&b);
	integ_params(&b, 3);
	rpc_pack_kv_str(&b.pk, "id", id);
	rpc_pack_kv_str(&b.pk, "state", state);
	rpc_pack_kv_str(&b.pk, "source", "test-hook");
	integ_call_ok(bc, "session.activity", &b, &res);
	sview_from(res.m.result, v);
	bclient_msg_free(&res);
	rpc_buf_free(&b);
}

/* runtime.report with one result; evidence may be NULL. */
static void
report(struct bclient *bc, const char *id, const char *runtime, const char *process,
    const char *evidence)
{
	struct bclient_msg res;
	struct rpc_buf b;
	int64_t n;

	rpc_buf_init(&b);
	integ_params(&b, 1);
	rpc_pack_str(&b.pk, "results");
	msgpack_pack_array(&b.pk, 1);
	msgpack_pack_map(&b.pk, 3 + (evidence != NULL));
	rpc_pack_kv_str(&b.pk, "session_id", id);
	rpc_pack_kv_str(&b.pk, "runtime", runtime);
	rpc_pack_kv_str(&b.pk, "process", process);
	if (evidence != NULL)
		rpc_pack_kv_str(&b.pk, "evidence", evidence);
	integ_call_ok(bc, "runtime.report", &b, &res);
	ck_assert_int_eq(rpc_obj_i64(rpc_map_get(res.m.result, "accepted"), &n), 0);
	ck_assert_int_eq(n, 1);
	bclient_msg_free(&res);
	rpc_buf_free(&b);
}

static void
tick(struct bclient *bc)
{
	struct bclient_msg res;

	integ_call_ok(bc, "tick", NULL, &res);
	bclient_msg_free(&res);
}

/* Applies a probe and waits for it; returns the session afterwards. */
static void
probe(struct bclient *bc, const char *id, const char *runtime, const char *process,
    const char *evidence, struct integ_session *v)
{
	report(bc, id, runtime, process, evidence);
	quiesce(bc);
	sget(bc, id, v);
}

/* ---- PR observations ---- */

/* pr.observe; v gets the session map it answers. */
static void
observe(struct bclient *bc, const char *sid, const struct integ_obs *o,
    struct integ_session *v)
{
	integ_observe(bc, sid, o, session_keys, v);
	note_agent(v);
}

/* An open PR whose check "build" failed on commit, with a log tail. */
static void
observe_ci_failure(struct bclient *bc, const char *sid, const char *commit,
    const char *tail, struct integ_session *v)
{
	struct integ_check c = { "build", commit, "failed", tail };
	struct integ_obs o = { "https://git.example/pr/7", "open",
		"review_required", "failing", "mergeable", &c, 1, NULL, -1 };

	observe(bc, sid, &o, v);
}

/* ---- what lcmd told agents and humans ---- */

/*
 * The message-log lines for session sid whose message contains needle,
 * counted; when nth >= 0 and buf is set, the nth of them is copied to buf.
 */
static int
msglog_find(const char *sid, const char *needle, int nth, char *buf, size_t len)
{
	return integ_msglog_find(msglog, sid, needle, nth, buf, len, NULL);
}

static int
msglog_count(const char *sid, const char *needle)
{
	return msglog_find(sid, needle, -1, NULL, 0);
}

/*
 * A message is logged once its delivery is done, just after the call that
 * caused it answers: waits for want lines, then a little longer to see
 * that no more follow, and asserts exactly want.
 */
static void
msglog_expect(const char *sid, const char *needle, int want)
{
	int n;

	INTEG_WAIT((n = msglog_count(sid, needle)) >= want, SETTLE_TIMEOUT_MS, 10,
	    "%s: %d messages with '%s', expected %d", sid, n, needle, want);
	usleep(100 * 1000);
	n = msglog_count(sid, needle);
	ck_assert_msg(n == want, "%s: %d messages with '%s', expected %d", sid, n,
	    needle, want);
}

/* Whether the agent of session sid (process runtime) was sent text: its log. */
static bool
agent_got(const char *sid, const char *text)
{
	char path[512], *all;
	bool got;

	snprintf(path, sizeof(path), "%s/logs/%s.log", dir, sid);
	if ((all = testlib_read_file(path)) == NULL)
		return false;
	got = strstr(all, text) != NULL;
	free(all);
	return got;
}

static void
wait_agent_got(const char *sid, const char *text)
{
	INTEG_WAIT(agent_got(sid, text), SETTLE_TIMEOUT_MS, 10,
	    "agent %s never got '%s'", sid, text);
}

/* Notifications for sid with this reaction (NULL: any) and priority (NULL: any). */
static int
notes_count(struct bclient *bc, const char *sid, const char *reaction,
    const char *priority)
{
	struct bclient_msg res;
	struct rpc_buf b;
	const msgpack_object_array *a;
	uint32_t i;
	int n = 0;

	rpc_buf_init(&b);
	rpc_pack_kv_i64(&integ_params(&b, 1)->pk, "limit", 1000);
	integ_call_ok(bc, "notification.list", &b, &res);
	a = integ_get_list(res.m.result, "notifications", NULL);
	for (i = 0; i < a->size; i++) {
		char s[128], r[160], p[16];

		integ_assert_keys(&a->ptr[i], "notification", notification_keys);
		integ_str_field(&a->ptr[i], "session_id", s, sizeof(s));
		integ_str_field(&a->ptr[i], "reaction", r, sizeof(r));
		integ_str_field(&a->ptr[i], "priority", p, sizeof(p));
		if (strcmp(s, sid) == 0 &&
		    (reaction == NULL || strcmp(r, reaction) == 0) &&
		    (priority == NULL || strcmp(p, priority) == 0))
			n++;
	}
	bclient_msg_free(&res);
	rpc_buf_free(&b);
	return n;
}

static bool
is_dir(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* Writes an executable script to <dir>/<name>; returns its path (static). */
static const char *
write_script(const char *name, const char *body)
{
	static char path[512];

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	integ_write_file(path, body, 0755);
	return path;
}

/*
 * Sends n requests (method[i] with params[i]) in one write on a fresh
 * connection and collects the n responses: codes[i] gets RPC_OK or the
 * error's code, by msgid.
 */
static void
pipeline(int n, const char *const *methods, const struct rpc_buf *const *bufs,
    enum rpc_code *codes)
{
	char err[256];
	int fd = sock_connect_unix(lcmd_sock, 0, err, sizeof(err)), got = 0, i;
	int64_t deadline = aotime_mono_ms() + 2 * CALL_TIMEOUT_MS;
	struct rpc_buf b;
	msgpack_unpacker up;
	msgpack_unpacked msg;
	bool *seen = calloc((size_t)n, sizeof(*seen));

	ck_assert_msg(fd != -1, "connect: %s", err);
	ck_assert_ptr_nonnull(seen);
	rpc_buf_init(&b);
	for (i = 0; i < n; i++)
		integ_pack_request(&b, 100 + (uint32_t)i, methods[i], bufs[i]);
	ck_assert_int_eq(write(fd, b.sb.data, b.sb.size), (ssize_t)b.sb.size);
	rpc_buf_free(&b);
	msgpack_unpacker_init(&up, 4096);
	msgpack_unpacked_init(&msg);
	while (got < n) {
		struct timeval tv = { 1, 0 };
		ssize_t r;

		ck_assert_msg(aotime_mono_ms() < deadline, "%d of %d answers", got, n);
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		msgpack_unpacker_reserve_buffer(&up, 65536);
		r = read(fd, msgpack_unpacker_buffer(&up), 65536);
		if (r == -1 && errno == EAGAIN)
			continue;
		ck_assert_int_gt(r, 0);
		msgpack_unpacker_buffer_consumed(&up, (size_t)r);
		while (msgpack_unpacker_next(&up, &msg) == MSGPACK_UNPACK_SUCCESS) {
			const msgpack_object *a = msg.data.via.array.ptr;
			int id = (int)a[1].via.u64 - 100;
			struct rpc_error e;

			ck_assert(id >= 0 && id < n && !seen[id]);
			seen[id] = true;
			rpc_error_from_object(&a[2], &e);
			codes[id] = e.code;
			if (e.code == RPC_OK && rpc_map_get(&a[3], "runtime_handle") != NULL) {
				struct integ_session v;

				sview_from(&a[3], &v);	/* records the agent */
			}
			got++;
		}
	}
	msgpack_unpacked_destroy(&msg);
	msgpack_unpacker_destroy(&up);
	free(seen);
	close(fd);
}

/* ---- 1. the API ---- */

START_TEST(api_projects)
{
	struct bclient *bc;
	struct bclient_msg res;
	struct rpc_buf b;
	char path[256], file[512], id[80], p2[512], origin[128];
	int64_t reg1, reg2;
	const msgpack_object *arch;

	start_lcmd(NULL);
	bc = integ_connect(lcmd_sock);
	integ_assert_hello(bc, "lcmd", lcmd_pid);
	make_repo("proj1", path, sizeof(path));
	ck_assert_int_eq(integ_git(path, NULL, 0, "remote", "add", "origin",
	    "https://git.example/proj1.git", NULL), 0);
	rpc_buf_init(&b);

	integ_params(&b, 2);
	rpc_pack_kv_str(&b.pk, "path", path);
	rpc_pack_kv_str(&b.pk, "display_name", "Project One");
	integ_call_ok(bc, "project.add", &b, &res);
	integ_assert_keys(res.m.result, "project.add", project_keys);
	integ_str_field(res.m.result, "id", id, sizeof(id));
	ck_assert_str_eq(id, "proj1");	/* the directory's name */
	integ_str_field(res.m.result, "origin_url", origin, sizeof(origin));
	ck_assert_str_eq(origin, "https://git.example/proj1.git");	/* from git */
	rpc_obj_i64(rpc_map_get(res.m.result, "registered_at"), &reg1);
	ck_assert_int_eq(rpc_map_get(res.m.result, "archived_at")->type,
	    MSGPACK_OBJECT_NIL);
	bclient_msg_free(&res);

	/* The same path again, even spelled with a trailing slash: the same project. */
	snprintf(p2, sizeof(p2), "%s/", path);
	integ_params(&b, 2);
	rpc_pack_kv_str(&b.pk, "path", p2);
	rpc_pack_kv_str(&b.pk, "display_name", "Project One");
	integ_call_ok(bc, "project.add", &b, &res);
	integ_str_field(res.m.result, "id", id, sizeof(id));
	ck_assert_str_eq(id, "proj1");
	integ_str_field(res.m.result, "path", p2, sizeof(p2));
	ck_assert_str_eq(p2, path);
	rpc_obj_i64(rpc_map_get(res.m.result, "registered_at"), &reg2);
	ck_assert_int_eq(reg1, reg2);
	bclient_msg_free(&res);
	integ_call_ok(bc, "project.list", NULL, &res);
	ck_assert_uint_eq(integ_get_list(res.m.result, "projects",
	    project_keys)->size, 1);
	bclient_msg_free(&res);

	/* Another repository under an id that is taken: conflict. */
	make_repo("proj2", p2, sizeof(p2));
	integ_params(&b, 2);
	rpc_pack_kv_str(&b.pk, "path", p2);
	rpc_pack_kv_str(&b.pk, "id", "proj1");
	integ_expect_err(bc, "project.add", &b, RPC_CONFLICT, "proj1");
	/* Not a directory, not there, not absolute, not a repository: bad_request. */
	snprintf(file, sizeof(file), "%s/afile", dir);
	ck_assert_int_eq(close(open(file, O_WRONLY | O_CREAT, 0600)), 0);
	rpc_pack_kv_str(&integ_params(&b, 1)->pk, "path", file);
	integ_expect_err(bc, "project.add", &b, RPC_BAD_REQUEST, "afile");
	snprintf(file, sizeof(file), "%s/missing", dir);
	rpc_pack_kv_str(&integ_params(&b, 1)->pk, "path", file);
	integ_expect_err(bc, "project.add", &b, RPC_BAD_REQUEST, "missing");
	rpc_pack_kv_str(&integ_params(&b, 1)->pk, "path", "relative/dir");
	integ_expect_err(bc, "project.add", &b, RPC_BAD_REQUEST, "relative/dir");
	snprintf(file, sizeof(file), "%s/plain", dir);
	ck_assert_int_eq(mkdir(file, 0755), 0);
	rpc_pack_kv_str(&integ_params(&b, 1)->pk, "path", file);
	integ_expect_err(bc, "project.add", &b, RPC_BAD_REQUEST, "plain");
	integ_params(&b, 0);
	integ_expect_err(bc, "project.add", &b, RPC_BAD_REQUEST, "path");
	rpc_pack_kv_i64(&integ_params(&b, 1)->pk, "path", 5);
	integ_expect_err(bc, "project.add", &b, RPC_BAD_REQUEST, "path");
	integ_params(&b, 2);
	rpc_pack_kv_str(&b.pk, "path", path);
	rpc_pack_kv_str(&b.pk, "paht", path);
	integ_expect_err(bc, "project.add", &b, RPC_BAD_REQUEST, "paht");

	/* With an explicit id. */
	integ_params(&b, 2);
	rpc_pack_kv_str(&b.pk, "path", p2);
	rpc_pack_kv_str(&b.pk, "id", "second");
	integ_call_ok(bc, "project.add", &b, &res);
	integ_str_field(res.m.result, "id", id, sizeof(id));
	ck_assert_str_eq(id, "second");
	bclient_msg_free(&res);

	rpc_pack_kv_str(&integ_params(&b, 1)->pk, "id", "proj1");
	integ_call_ok(bc, "project.get", &b, &res);
	integ_assert_keys(res.m.result, "project.get", project_keys);
	integ_str_field(res.m.result, "path", file, sizeof(file));
	ck_assert_str_eq(file, path);
	bclient_msg_free(&res);
	rpc_pack_kv_str(&integ_params(&b, 1)->pk, "id", "nosuch");
	integ_expect_err(bc, "project.get", &b, RPC_NOT_FOUND, NULL);

	/* remove archives: gone from the list, still readable, no new sessions. */
	rpc_pack_kv_str(&integ_params(&b, 1)->pk, "id", "second");
	integ_call_ok(bc, "project.remove", &b, &res);
	bclient_msg_free(&res);
	integ_call_ok(bc, "project.list", NULL, &res);
	ck_assert_uint_eq(integ_get_list(res.m.result, "projects", NULL)->size, 1);
	integ_str_field(&integ_get_list(res.m.result, "projects", NULL)->ptr[0],
	    "id", id, sizeof(id));
	ck_assert_str_eq(id, "proj1");
	bclient_msg_free(&res);
	rpc_pack_kv_str(&integ_params(&b, 1)->pk, "id", "second");
	integ_call_ok(bc, "project.get", &b, &res);
	arch = rpc_map_get(res.m.result, "archived_at");
	ck_assert(arch != NULL && arch->type != MSGPACK_OBJECT_NIL);
	bclient_msg_free(&res);
	pack_spawn(&b, "second", "process", NULL);
	integ_expect_err(bc, "session.spawn", &b, RPC_INVALID_STATE, "archived");
	rpc_pack_kv_str(&integ_params(&b, 1)->pk, "id", "nosuch");
	integ_expect_err(bc, "project.remove", &b, RPC_NOT_FOUND, NULL);

	rpc_buf_free(&b);
	bclient_free(bc);
}
END_TEST

/*
 * Re-adding a registered path "is a no-op" (lcmd/api.c): it must not wipe
 * what the first add set (display name, origin) when the second omits it.
 */
START_TEST(api_project_readd_keeps_metadata)
{
	struct bclient *bc;
	struct bclient_msg res;
	struct rpc_buf b;
	char path[512], name[64], origin[128];

	start_lcmd(NULL);
	bc = integ_connect(lcmd_sock);
	make_repo("meta", path, sizeof(path));
	rpc_buf_init(&b);
	integ_params(&b, 3);
	rpc_pack_kv_str(&b.pk, "path", path);
	rpc_pack_kv_str(&b.pk, "display_name", "Meta Project");
	rpc_pack_kv_str(&b.pk, "origin_url", "https://git.example/meta.git");
	integ_call_ok(bc, "project.add", &b, &res);
	bclient_msg_free(&res);
	rpc_pack_kv_str(&integ_params(&b, 1)->pk, "path", path);
	integ_call_ok(bc, "project.add", &b, &res);
	integ_str_field(res.m.result, "display_name", name, sizeof(name));
	integ_str_field(res.m.result, "origin_url", origin, sizeof(origin));
	ck_assert_msg(strcmp(name, "Meta Project") == 0 &&
	    strcmp(origin, "https://git.example/meta.git") == 0,
	    "re-adding %s without display_name/origin_url changed them to "
	    "'%s' / '%s'", path, name, origin);
	bclient_msg_free(&res);
	rpc_buf_free(&b);
	bclient_free(bc);
}
END_TEST

START_TEST(api_sessions)
{
	struct bclient *bc;
	struct bclient_msg res;
	struct rpc_buf b;
	struct rpc_error err;
	struct integ_session s1, s2, v;
	char proj[80], key[512], want[512], fakebin[300], newpath[4096], *args;
	const msgpack_object_array *list;
	uint32_t i;

	/* A fake `codex` first in lcmd's PATH: shows the argv and env it got. */
	snprintf(fakebin, sizeof(fakebin), "%s/fakebin", dir);
	ck_assert_int_eq(mkdir(fakebin, 0755), 0);
	snprintf(key, sizeof(key), "#!/bin/sh\n"
	    "echo $$ >> '%s'\n"
	    "{ printf '%%s\\n' \"$@\"; echo \"env=$AO_SESSION_ID,$AO_PROJECT_ID,"
	    "$AO_ISSUE_ID\"; echo \"cwd=$(pwd)\"; } > '%s/codex.out'\n"
	    "exec cat\n", agentpids, dir);
	write_script("fakebin/codex", key);
	snprintf(newpath, sizeof(newpath), "%s:%s", fakebin, getenv("PATH"));
	setenv("PATH", newpath, 1);
	start_lcmd(NULL);
	bc = integ_connect(lcmd_sock);
	add_project(bc, "app", proj, sizeof(proj));
	rpc_buf_init(&b);

	/* A command agent on the process runtime; its prompt is its first message. */
	pack_spawn(&b, proj, "process", "start with issue 5");
	integ_call_ok(bc, "session.spawn", &b, &res);
	sview_from(res.m.result, &s1);
	bclient_msg_free(&res);
	ck_assert_str_eq(s1.id, "app-1");
	ck_assert_str_eq(s1.state, "working");
	ck_assert_str_eq(s1.status, "working");
	ck_assert_str_eq(s1.reason, "");
	ck_assert_str_eq(s1.harness, "command");
	ck_assert_str_eq(s1.runtime, "process");
	ck_assert_str_eq(s1.branch, "ao/app-1");
	ck_assert(s1.pr_nil);
	ck_assert(s1.alive);
	ck_assert_int_gt(s1.pid, 1);
	ck_assert(!integ_pid_gone(s1.pid));
	snprintf(want, sizeof(want), "%s/worktrees/app/app-1", dir);
	ck_assert_str_eq(s1.workspace, want);
	ck_assert(is_dir(want));
	wait_agent_got(s1.id, "start with issue 5");
	msglog_expect(s1.id, "start with issue 5", 1);

	/* A harness, with the optional fields. */
	integ_params(&b, 5);
	rpc_pack_kv_str(&b.pk, "project_id", proj);
	rpc_pack_kv_str(&b.pk, "harness", "codex");
	rpc_pack_kv_str(&b.pk, "prompt", "fix issue 12");
	rpc_pack_kv_str(&b.pk, "issue_id", "12");
	rpc_pack_kv_str(&b.pk, "runtime", "process");
	integ_call_ok(bc, "session.spawn", &b, &res);
	sview_from(res.m.result, &s2);
	ck_assert_str_eq(s2.status, "working");
	ck_assert_str_eq(s2.harness, "codex");
	ck_assert(s2.pr_nil);
	integ_str_field(res.m.result, "issue_id", key, sizeof(key));
	ck_assert_str_eq(key, "12");
	integ_str_field(res.m.result, "project_id", key, sizeof(key));
	ck_assert_str_eq(key, proj);
	integ_str_field(res.m.result, "prompt", key, sizeof(key));
	ck_assert_str_eq(key, "fix issue 12");
	bclient_msg_free(&res);
	snprintf(key, sizeof(key), "%s/codex.out", dir);
	for (i = 0; i < 500 && ((args = testlib_read_file(key)) == NULL ||
	    strstr(args, "cwd=") == NULL); i++) {
		free(args);
		usleep(10 * 1000);
	}
	ck_assert_ptr_nonnull(args);
	snprintf(want, sizeof(want), "fix issue 12\nenv=app-2,%s,12\n"
	    "cwd=%s/worktrees/app/app-2\n", proj, dir);
	ck_assert_str_eq(args, want);
	free(args);

	/* A harness that is not installed: the answer names the step and the session. */
	ck_assert_int_ne(run((const char *[]){ "/bin/sh", "-c",
	    "command -v aider", NULL }), 0);
	integ_params(&b, 3);
	rpc_pack_kv_str(&b.pk, "project_id", proj);
	rpc_pack_kv_str(&b.pk, "harness", "aider");
	rpc_pack_kv_str(&b.pk, "runtime", "process");
	ck_assert_int_eq(integ_call_err(bc, "session.spawn", &b, &err),
	    RPC_BAD_REQUEST);
	ck_assert_msg(strstr(err.message, "aider") != NULL, "%s", err.message);
	ck_assert_str_eq(err.extra_key, "session_id");
	ck_assert_str_eq(err.extra_val, "app-3");
	sget(bc, "app-3", &v);
	ck_assert_str_eq(v.state, "terminated");
	ck_assert_str_eq(v.reason, "error_in_process");
	ck_assert_str_eq(v.status, "errored");
	snprintf(want, sizeof(want), "%s/worktrees/app/app-3", dir);
	ck_assert_msg(!is_dir(want), "the failed spawn left its worktree %s", want);

	/* Neither or both of harness and command; an unknown harness. */
	rpc_pack_kv_str(&integ_params(&b, 1)->pk, "project_id", proj);
	integ_expect_err(bc, "session.spawn", &b, RPC_BAD_REQUEST, "harness");
	integ_params(&b, 3);
	rpc_pack_kv_str(&b.pk, "project_id", proj);
	rpc_pack_kv_str(&b.pk, "harness", "codex");
	rpc_pack_str(&b.pk, "command");
	msgpack_pack_array(&b.pk, 1);
	rpc_pack_str(&b.pk, "true");
	integ_expect_err(bc, "session.spawn", &b, RPC_BAD_REQUEST, "command");
	integ_params(&b, 2);
	rpc_pack_kv_str(&b.pk, "project_id", proj);
	rpc_pack_kv_str(&b.pk, "harness", "gpt-agent-9000");
	integ_expect_err(bc, "session.spawn", &b, RPC_BAD_REQUEST, "harness");
	integ_params(&b, 2);
	rpc_pack_kv_str(&b.pk, "project_id", proj);
	rpc_pack_str(&b.pk, "command");
	msgpack_pack_array(&b.pk, 0);
	integ_expect_err(bc, "session.spawn", &b, RPC_BAD_REQUEST, "command");
	/* An unknown project. */
	pack_spawn(&b, "nosuch", "process", NULL);
	integ_expect_err(bc, "session.spawn", &b, RPC_NOT_FOUND, "nosuch");

	/* session.list: wrapped, live sessions with their status. */
	integ_call_ok(bc, "session.list", NULL, &res);
	list = integ_get_list(res.m.result, "sessions", NULL);
	ck_assert_uint_eq(list->size, 2);
	for (i = 0; i < list->size; i++) {
		sview_from(&list->ptr[i], &v);
		ck_assert_str_eq(v.status, "working");
		ck_assert(strcmp(v.id, s1.id) == 0 || strcmp(v.id, s2.id) == 0);
	}
	bclient_msg_free(&res);
	integ_params(&b, 2);
	rpc_pack_kv_str(&b.pk, "project_id", proj);
	rpc_pack_kv_bool(&b.pk, "include_terminated", true);
	integ_call_ok(bc, "session.list", &b, &res);
	ck_assert_uint_eq(integ_get_list(res.m.result, "sessions", NULL)->size, 3);
	bclient_msg_free(&res);

	sget(bc, s2.id, &v);
	ck_assert_str_eq(v.status, "working");
	ck_assert_str_eq(v.harness, "codex");
	/* Unknown sessions: not_found, whatever the method. */
	integ_id_err(bc, "session.get", "app-99", RPC_NOT_FOUND);
	integ_id_err(bc, "session.kill", "app-99", RPC_NOT_FOUND);
	integ_id_err(bc, "session.restore", "app-99", RPC_NOT_FOUND);
	integ_id_err(bc, "session.done", "app-99", RPC_NOT_FOUND);
	integ_id_err(bc, "session.cleanup", "app-99", RPC_NOT_FOUND);
	integ_params(&b, 2);
	rpc_pack_kv_str(&b.pk, "id", "app-99");
	rpc_pack_kv_str(&b.pk, "state", "active");
	integ_expect_err(bc, "session.activity", &b, RPC_NOT_FOUND, NULL);
	integ_params(&b, 2);
	rpc_pack_kv_str(&b.pk, "id", "app-99");
	rpc_pack_kv_str(&b.pk, "message", "hello");
	integ_expect_err(bc, "session.send", &b, RPC_NOT_FOUND, NULL);
	{
		struct integ_obs o = { "https://git.example/pr/1", NULL, NULL,
			NULL, NULL, NULL, -1, NULL, -1 };

		integ_pack_observe(&b, "app-99", &o);
		integ_expect_err(bc, "pr.observe", &b, RPC_NOT_FOUND, NULL);
	}
	rpc_pack_kv_bool(&integ_params(&b, 1)->pk, "include_terminated", true);
	integ_call_ok(bc, "session.list", &b, &res);
	ck_assert_uint_eq(integ_get_list(res.m.result, "sessions", NULL)->size, 3);
	bclient_msg_free(&res);

	/* session.send reaches the agent. */
	integ_params(&b, 2);
	rpc_pack_kv_str(&b.pk, "id", s2.id);
	rpc_pack_kv_str(&b.pk, "message", "please also update the docs");
	integ_call_ok(bc, "session.send", &b, &res);
	bclient_msg_free(&res);
	wait_agent_got(s2.id, "please also update the docs");

	rpc_buf_free(&b);
	bclient_free(bc);
}
END_TEST

/* The default runtime: a detached tmux session on lcmd's (private) server. */
START_TEST(api_tmux_runtime)
{
	struct bclient *bc;
	struct bclient_msg res;
	struct rpc_buf b;
	struct integ_session s, v;
	char proj[80];
	const char *has[] = { "/usr/bin/env", "tmux", "-S", tmuxsock,
		"has-session", "-t", "=ao-app-1", NULL };

	start_lcmd(NULL);
	bc = integ_connect(lcmd_sock);
	add_project(bc, "app", proj, sizeof(proj));
	rpc_buf_init(&b);
	pack_spawn(&b, proj, NULL, NULL);
	integ_call_ok(bc, "session.spawn", &b, &res);
	sview_from(res.m.result, &s);
	bclient_msg_free(&res);
	ck_assert_str_eq(s.runtime, "tmux");
	ck_assert_str_eq(s.status, "working");
	ck_assert_int_eq(run(has), 0);
	integ_params(&b, 2);
	rpc_pack_kv_str(&b.pk, "id", s.id);
	rpc_pack_kv_str(&b.pk, "message", "hello over tmux");
	integ_call_ok(bc, "session.send", &b, &res);
	bclient_msg_free(&res);
	msglog_expect(s.id, "hello over tmux", 1);
	session_call(bc, "session.kill", s.id, &v);
	ck_assert_str_eq(v.status, "killed");
	ck_assert_int_ne(run(has), 0);
	rpc_buf_free(&b);
	bclient_free(bc);
}
END_TEST

/* --max-sessions=2: a third live session is refused; killing one frees a slot. */
START_TEST(api_max_sessions)
{
	static const char *const flags[] = { "--max-sessions=2", NULL };
	struct bclient *bc;
	struct rpc_buf b;
	struct integ_session s1, s2, v;
	char proj[80];

	start_lcmd(flags);
	bc = integ_connect(lcmd_sock);
	add_project(bc, "app", proj, sizeof(proj));
	spawn(bc, proj, &s1);
	spawn(bc, proj, &s2);
	rpc_buf_init(&b);
	pack_spawn(&b, proj, "process", NULL);
	integ_expect_err(bc, "session.spawn", &b, RPC_CONFLICT, "max_sessions");
	ck_assert_int_eq(integ_stat(bc, "inputs", "queued"), 0);
	session_call(bc, "session.kill", s1.id, &v);
	ck_assert_str_eq(v.status, "killed");
	spawn(bc, proj, &v);
	ck_assert_str_eq(v.status, "working");
	ck_assert_str_eq(v.id, "app-3");
	integ_expect_err(bc, "session.spawn", &b, RPC_CONFLICT, "max_sessions");
	rpc_buf_free(&b);
	bclient_free(bc);
}
END_TEST

/* Spawns that arrive together still respect --max-sessions. */
START_TEST(api_max_sessions_pipelined)
{
	static const char *const flags[] = { "--max-sessions=2", NULL };
	enum { N = 5 };
	const char *methods[N];
	struct rpc_buf bufs[N];
	const struct rpc_buf *bp[N];
	enum rpc_code codes[N];
	struct bclient *bc;
	struct bclient_msg res;
	char proj[80];
	int i, ok = 0, conflict = 0;

	start_lcmd(flags);
	bc = integ_connect(lcmd_sock);
	add_project(bc, "app", proj, sizeof(proj));
	for (i = 0; i < N; i++) {
		rpc_buf_init(&bufs[i]);
		pack_spawn(&bufs[i], proj, "process", NULL);
		methods[i] = "session.spawn";
		bp[i] = &bufs[i];
	}
	pipeline(N, methods, bp, codes);
	for (i = 0; i < N; i++) {
		ok += codes[i] == RPC_OK;
		conflict += codes[i] == RPC_CONFLICT;
		rpc_buf_free(&bufs[i]);
	}
	integ_call_ok(bc, "session.list", NULL, &res);
	ck_assert_msg(ok == 2 && conflict == N - 2, "%d of %d spawns sent together "
	    "succeeded with --max-sessions=2 (%d conflicts; answers %s %s %s %s "
	    "%s); %u live sessions", ok, N, conflict,
	    rpc_code_name(codes[0]), rpc_code_name(codes[1]),
	    rpc_code_name(codes[2]), rpc_code_name(codes[3]),
	    rpc_code_name(codes[4]),
	    integ_get_list(res.m.result, "sessions", NULL)->size);
	bclient_msg_free(&res);
	bclient_free(bc);
}
END_TEST

/*
 * Spawns in one project at the same time each get their worktree: git
 * worktree add is not safe to run concurrently on one repository, so lcmd
 * must not run two at once there.  (A race: this fails only sometimes.)
 */
START_TEST(api_concurrent_spawns_one_project)
{
	static const char *const flags[] = { "--max-sessions=100", NULL };
	enum { N = 12, ROUNDS = 3 };
	const char *methods[N];
	struct rpc_buf bufs[N];
	const struct rpc_buf *bp[N];
	enum rpc_code codes[N];
	struct bclient *bc;
	struct bclient_msg res;
	char proj[80], *log, *fail;
	int i, round, ok = 0;

	start_lcmd(flags);
	bc = integ_connect(lcmd_sock);
	add_project(bc, "app", proj, sizeof(proj));
	for (round = 0; round < ROUNDS; round++) {
		for (i = 0; i < N; i++) {
			rpc_buf_init(&bufs[i]);
			pack_spawn(&bufs[i], proj, "process", NULL);
			methods[i] = "session.spawn";
			bp[i] = &bufs[i];
		}
		pipeline(N, methods, bp, codes);
		for (i = 0; i < N; i++) {
			ok += codes[i] == RPC_OK;
			rpc_buf_free(&bufs[i]);
		}
	}
	integ_call_ok(bc, "session.list", NULL, &res);
	ck_assert_uint_eq(integ_get_list(res.m.result, "sessions", NULL)->size,
	    (unsigned)ok);
	bclient_msg_free(&res);
	log = testlib_read_file(logpath);
	fail = log != NULL ? strstr(log, "spawn failed") : NULL;
	if (fail != NULL)
		fail[strcspn(fail, "\n")] = '\0';
	ck_assert_msg(ok == N * ROUNDS, "%d of %d spawns in one project, sent %d "
	    "at a time, failed: %s", N * ROUNDS - ok, N * ROUNDS, N,
	    fail != NULL ? fail : "(no reason logged)");
	free(log);
	bclient_free(bc);
}
END_TEST

/* ---- 2. the lifecycle ---- */

START_TEST(lifecycle_activity_and_probes)
{
	static const char *const flags[] = { "--recent-activity-ms=100", NULL };
	struct bclient *bc;
	struct integ_session s, v;
	char proj[80];

	start_lcmd(flags);
	bc = integ_connect(lcmd_sock);
	add_project(bc, "app", proj, sizeof(proj));
	spawn(bc, proj, &s);

	/* Activity signals and the status they show. */
	activity(bc, s.id, "active", &v);
	ck_assert_str_eq(v.state, "working");
	ck_assert_str_eq(v.status, "working");
	ck_assert_str_eq(v.activity, "active");
	ck_assert(v.alive);
	activity(bc, s.id, "idle", &v);
	ck_assert_str_eq(v.status, "idle");
	activity(bc, s.id, "ready", &v);
	ck_assert_str_eq(v.status, "idle");
	activity(bc, s.id, "waiting_input", &v);
	ck_assert_str_eq(v.status, "needs_input");
	ck_assert_int_eq(notes_count(bc, s.id, "agent-needs-input", "urgent"), 1);
	activity(bc, s.id, "blocked", &v);
	ck_assert_str_eq(v.status, "stuck");
	ck_assert_int_eq(notes_count(bc, s.id, "agent-stuck", "urgent"), 1);
	activity(bc, s.id, "active", &v);
	ck_assert_str_eq(v.status, "working");
	/* "exited" is a claim: only probes conclude death. */
	activity(bc, s.id, "exited", &v);
	ck_assert_str_eq(v.state, "working");
	ck_assert_str_eq(v.status, "working");
	sget(bc, s.id, &v);
	ck_assert_str_eq(v.status, "working");
	activity(bc, s.id, "active", &v);

	/* A failed probe is never death: detecting; a healthy one recovers. */
	probe(bc, s.id, "failed", "indeterminate", "probe timed out at 10:00:00", &v);
	ck_assert_str_eq(v.state, "detecting");
	ck_assert_str_eq(v.status, "detecting");
	probe(bc, s.id, "alive", "alive", NULL, &v);
	ck_assert_str_eq(v.state, "working");
	ck_assert_str_eq(v.status, "working");
	ck_assert(v.alive);
	probe(bc, s.id, "unknown", "indeterminate", "tmux did not answer", &v);
	ck_assert_str_eq(v.status, "detecting");
	probe(bc, s.id, "alive", "alive", NULL, &v);
	ck_assert_str_eq(v.status, "working");

	/*
	 * Anti-flap: evidence that differs only in timestamps is the same;
	 * different evidence starts the count again; 3 alike → stuck.
	 */
	probe(bc, s.id, "failed", "indeterminate",
	    "pane unresponsive since 2024-05-01T10:00:00Z, last output 10:00:01.250 "
	    "(epoch 1714557601)", &v);
	ck_assert_str_eq(v.status, "detecting");
	probe(bc, s.id, "failed", "indeterminate",
	    "pane unresponsive  since 2024-05-01T10:00:05Z, last output 10:00:06.999 "
	    "(epoch 1714557606123)", &v);
	ck_assert_str_eq(v.status, "detecting");
	probe(bc, s.id, "failed", "indeterminate", "list-panes: server exited "
	    "at 10:00:10", &v);
	ck_assert_str_eq(v.status, "detecting");	/* new evidence: attempt 1 */
	probe(bc, s.id, "failed", "indeterminate", "list-panes: server exited "
	    "at 10:00:15", &v);
	ck_assert_str_eq(v.status, "detecting");
	ck_assert_int_eq(notes_count(bc, s.id, "agent-stuck", NULL), 1);
	probe(bc, s.id, "failed", "indeterminate", "list-panes:  server exited "
	    "at 10:00:20.5", &v);
	ck_assert_str_eq(v.state, "stuck");
	ck_assert_str_eq(v.status, "stuck");
	ck_assert_int_eq(notes_count(bc, s.id, "agent-stuck", "urgent"), 2);

	/* Death: runtime and process dead, twice, with no recent activity. */
	activity(bc, s.id, "active", &v);
	ck_assert_str_eq(v.status, "working");
	usleep(250 * 1000);	/* past --recent-activity-ms */
	probe(bc, s.id, "dead", "dead", NULL, &v);
	ck_assert_str_eq(v.state, "working");	/* one dead probe is not death */
	ck_assert_int_eq(notes_count(bc, s.id, "agent-exited", NULL), 0);
	probe(bc, s.id, "dead", "dead", NULL, &v);
	ck_assert_str_eq(v.state, "terminated");
	ck_assert_str_eq(v.reason, "runtime_lost");
	ck_assert_str_eq(v.status, "killed");
	ck_assert(!v.alive);
	ck_assert_int_eq(notes_count(bc, s.id, "agent-exited", "urgent"), 1);
	/* Further probes and ticks change nothing and page no one again. */
	probe(bc, s.id, "dead", "dead", NULL, &v);
	tick(bc);
	quiesce(bc);
	sget(bc, s.id, &v);
	ck_assert_str_eq(v.reason, "runtime_lost");
	ck_assert_int_eq(notes_count(bc, s.id, "agent-exited", NULL), 1);
	/* cleanup of a terminated session keeps its termination reason. */
	session_call(bc, "session.cleanup", s.id, &v);
	ck_assert_str_eq(v.state, "terminated");
	ck_assert_str_eq(v.reason, "runtime_lost");
	bclient_free(bc);
}
END_TEST

/*
 * DESIGN.md §3: "cleanup of an already terminated session keeps its
 * termination reason and only removes the worktree."
 */
START_TEST(lifecycle_cleanup_of_terminated_removes_worktree)
{
	struct bclient *bc;
	struct bclient_msg res;
	struct rpc_buf b;
	struct integ_session s, v;
	char proj[80], note[200];

	start_lcmd(NULL);
	bc = integ_connect(lcmd_sock);
	add_project(bc, "app", proj, sizeof(proj));
	spawn(bc, proj, &s);
	session_call(bc, "session.kill", s.id, &v);
	ck_assert_str_eq(v.reason, "manually_killed");
	ck_assert(is_dir(s.workspace));
	rpc_buf_init(&b);
	rpc_pack_kv_str(&integ_params(&b, 1)->pk, "id", s.id);
	integ_call_ok(bc, "session.cleanup", &b, &res);
	sview_from(res.m.result, &v);
	integ_str_field(res.m.result, "worktree", note, sizeof(note));
	bclient_msg_free(&res);
	ck_assert_str_eq(v.state, "terminated");
	ck_assert_str_eq(v.reason, "manually_killed");
	ck_assert_msg(!is_dir(s.workspace), "session.cleanup of a terminated "
	    "session kept its (clean) worktree %s; the answer's worktree note: "
	    "'%s'", s.workspace, note);
	rpc_buf_free(&b);
	bclient_free(bc);
}
END_TEST

/*
 * Spawn completion is recent activity: dead probes right after a spawn
 * (recent_activity_ms is a minute here) are not death.
 */
START_TEST(lifecycle_recent_activity_vetoes_death)
{
	struct bclient *bc;
	struct integ_session s, v;
	char proj[80];

	start_lcmd(NULL);
	bc = integ_connect(lcmd_sock);
	add_project(bc, "app", proj, sizeof(proj));
	spawn(bc, proj, &s);
	probe(bc, s.id, "dead", "dead", NULL, &v);
	probe(bc, s.id, "dead", "dead", NULL, &v);
	probe(bc, s.id, "dead", "dead", NULL, &v);
	ck_assert_str_eq(v.state, "working");
	activity(bc, s.id, "exited", &v);	/* not activity */
	probe(bc, s.id, "alive", "dead", NULL, &v);
	probe(bc, s.id, "alive", "dead", NULL, &v);
	ck_assert_str_eq(v.state, "working");
	ck_assert_int_eq(notes_count(bc, s.id, NULL, NULL), 0);
	ck_assert(!integ_pid_gone(s.pid));
	bclient_free(bc);
}
END_TEST

/* detecting for longer than --detecting-max-ms becomes stuck on tick. */
START_TEST(lifecycle_detecting_times_out)
{
	static const char *const flags[] = { "--detecting-max-ms=300", NULL };
	struct bclient *bc;
	struct integ_session s, v;
	char proj[80];

	start_lcmd(flags);
	bc = integ_connect(lcmd_sock);
	add_project(bc, "app", proj, sizeof(proj));
	spawn(bc, proj, &s);
	activity(bc, s.id, "idle", &v);
	probe(bc, s.id, "failed", "indeterminate", "no answer", &v);
	ck_assert_str_eq(v.status, "detecting");
	usleep(400 * 1000);
	tick(bc);
	quiesce(bc);
	sget(bc, s.id, &v);
	ck_assert_str_eq(v.state, "stuck");
	ck_assert_int_eq(notes_count(bc, s.id, "agent-stuck", "urgent"), 1);
	bclient_free(bc);
}
END_TEST

START_TEST(lifecycle_kill_restore_done_cleanup)
{
	struct bclient *bc;
	struct bclient_msg res;
	struct rpc_buf b;
	struct integ_session s, v, r;
	char proj[80];

	start_lcmd(NULL);
	bc = integ_connect(lcmd_sock);
	add_project(bc, "app", proj, sizeof(proj));
	spawn(bc, proj, &s);
	activity(bc, s.id, "active", &v);
	integ_id_err(bc, "session.restore", s.id,
	    RPC_INVALID_STATE);	/* not terminated */

	session_call(bc, "session.kill", s.id, &v);
	ck_assert_str_eq(v.state, "terminated");
	ck_assert_str_eq(v.reason, "manually_killed");
	ck_assert_str_eq(v.status, "killed");
	ck_assert(!v.alive);
	integ_wait_pid_gone(s.pid, 8000, "the killed session's agent");
	ck_assert(is_dir(s.workspace));	/* kept for restore */
	ck_assert_int_eq(notes_count(bc, s.id, NULL, NULL), 0);	/* no reaction */

	/* Acting on a terminated session: invalid_state; reading it works. */
	integ_id_err(bc, "session.kill", s.id, RPC_INVALID_STATE);
	integ_id_err(bc, "session.done", s.id, RPC_INVALID_STATE);
	rpc_buf_init(&b);
	integ_params(&b, 2);
	rpc_pack_kv_str(&b.pk, "id", s.id);
	rpc_pack_kv_str(&b.pk, "state", "active");
	integ_expect_err(bc, "session.activity", &b, RPC_INVALID_STATE, NULL);
	integ_params(&b, 2);
	rpc_pack_kv_str(&b.pk, "id", s.id);
	rpc_pack_kv_str(&b.pk, "message", "are you there?");
	integ_expect_err(bc, "session.send", &b, RPC_INVALID_STATE, NULL);
	{
		struct integ_obs o = { "https://git.example/pr/3", "open", NULL,
			"failing", NULL, NULL, -1, NULL, -1 };

		integ_pack_observe(&b, s.id, &o);
		integ_expect_err(bc, "pr.observe", &b, RPC_INVALID_STATE, NULL);
	}
	sget(bc, s.id, &v);
	ck_assert_str_eq(v.status, "killed");
	ck_assert(v.pr_nil);	/* the refused observation wrote nothing */
	integ_call_ok(bc, "session.list", NULL, &res);
	ck_assert_uint_eq(integ_get_list(res.m.result, "sessions", NULL)->size, 0);
	bclient_msg_free(&res);
	rpc_pack_kv_bool(&integ_params(&b, 1)->pk, "include_terminated", true);
	integ_call_ok(bc, "session.list", &b, &res);
	ck_assert_uint_eq(integ_get_list(res.m.result, "sessions", NULL)->size, 1);
	bclient_msg_free(&res);

	/* restore: a new agent in the same worktree. */
	session_call(bc, "session.restore", s.id, &r);
	ck_assert_str_eq(r.state, "working");
	ck_assert_str_eq(r.status, "working");
	ck_assert_str_eq(r.reason, "");
	ck_assert(r.alive);
	ck_assert_str_eq(r.workspace, s.workspace);
	ck_assert_int_gt(r.pid, 1);
	ck_assert_int_ne(r.pid, s.pid);
	ck_assert(!integ_pid_gone(r.pid));
	/* done: finished without a PR, the agent stopped. */
	session_call(bc, "session.done", s.id, &v);
	ck_assert_str_eq(v.state, "done");
	ck_assert_str_eq(v.status, "done");
	ck_assert(!v.alive);
	integ_wait_pid_gone(r.pid, 8000, "the done session's agent");
	/* cleanup: terminated/auto_cleanup, the (clean) worktree removed. */
	session_call(bc, "session.cleanup", s.id, &v);
	ck_assert_str_eq(v.state, "terminated");
	ck_assert_str_eq(v.reason, "auto_cleanup");
	ck_assert_str_eq(v.status, "cleanup");
	ck_assert(!is_dir(s.workspace));
	ck_assert_int_eq(notes_count(bc, s.id, NULL, NULL), 0);
	rpc_buf_free(&b);
	bclient_free(bc);
}
END_TEST

/* ---- 3. reactions ---- */

/* CI failing on c1, c2, c3: two nudges with their log tails, then one escalation. */
START_TEST(reactions_ci_brake)
{
	struct bclient *bc;
	struct integ_session s, v;
	char proj[80], msg[4096];

	start_lcmd(NULL);
	bc = integ_connect(lcmd_sock);
	add_project(bc, "app", proj, sizeof(proj));
	spawn(bc, proj, &s);
	activity(bc, s.id, "active", &v);

	observe_ci_failure(bc, s.id, "c1", "error: undefined reference to `frob' (c1)", &v);
	ck_assert_str_eq(v.status, "ci_failed");
	ck_assert(!v.pr_nil);
	msglog_expect(s.id, "CI failed", 1);
	observe_ci_failure(bc, s.id, "c2", "test_frob: assertion failed (c2)", &v);
	msglog_expect(s.id, "CI failed", 2);
	ck_assert_int_eq(notes_count(bc, s.id, NULL, NULL), 0);
	observe_ci_failure(bc, s.id, "c3", "test_frob: still failing (c3)", &v);
	ck_assert_str_eq(v.status, "ci_failed");
	ck_assert_int_eq(notes_count(bc, s.id, "ci-failed/build", "urgent"), 1);
	ck_assert_int_eq(notes_count(bc, s.id, NULL, NULL), 1);
	msglog_expect(s.id, "CI failed", 2);

	msglog_find(s.id, "CI failed", 0, msg, sizeof(msg));
	ck_assert_msg(strstr(msg, "c1") != NULL && strstr(msg, "build") != NULL &&
	    strstr(msg, "undefined reference to `frob' (c1)") != NULL,
	    "first nudge: %s", msg);
	msglog_find(s.id, "CI failed", 1, msg, sizeof(msg));
	ck_assert_msg(strstr(msg, "c2") != NULL &&
	    strstr(msg, "test_frob: assertion failed (c2)") != NULL &&
	    strstr(msg, "(c1)") == NULL, "second nudge: %s", msg);
	/* The nudges reached the agent. */
	wait_agent_got(s.id, "undefined reference to `frob' (c1)");
	wait_agent_got(s.id, "test_frob: assertion failed (c2)");
	ck_assert(!agent_got(s.id, "still failing (c3)"));

	/* The same observation again: nothing new. */
	observe_ci_failure(bc, s.id, "c3", "test_frob: still failing (c3)", &v);
	tick(bc);
	quiesce(bc);
	msglog_expect(s.id, "CI failed", 2);
	ck_assert_int_eq(notes_count(bc, s.id, NULL, NULL), 1);
	ck_assert_int_eq(msglog_count(s.id, ""), 2);
	bclient_free(bc);
}
END_TEST

/* Unresolved review comments: a nudge per new set, 3 at most, then one escalation. */
START_TEST(reactions_review_comments)
{
	static const struct integ_comment cm[] = { { "rc-1",
		"please rename frob to frobnicate", false }, { "rc-2",
		"missing bounds check", false }, { "rc-3",
		"add a test for the empty case", false }, { "rc-4",
		"typo in the comment", false }, { "rc-5", "one more thing",
		false }, };
	static const struct integ_comment resolved[] = { { "rc-1",
		"please rename frob to frobnicate", true }, };
	struct integ_obs o = { "https://git.example/pr/8", "open",
		"review_required", "passing", "mergeable", NULL, -1, resolved,
		1 };
	struct bclient *bc;
	struct integ_session s, v;
	char proj[80], msg[4096];

	start_lcmd(NULL);
	bc = integ_connect(lcmd_sock);
	add_project(bc, "app", proj, sizeof(proj));
	spawn(bc, proj, &s);
	activity(bc, s.id, "active", &v);

	/* Everything resolved: no nudge. */
	observe(bc, s.id, &o, &v);
	ck_assert_str_eq(v.status, "mergeable");
	msglog_expect(s.id, "", 0);

	o.comments = cm;
	observe(bc, s.id, &o, &v);
	ck_assert_str_eq(v.status, "changes_requested");
	msglog_expect(s.id, "review", 1);
	msglog_find(s.id, "review", 0, msg, sizeof(msg));
	ck_assert_msg(strstr(msg, "please rename frob to frobnicate") != NULL,
	    "review nudge: %s", msg);
	observe(bc, s.id, &o, &v);	/* the same set: no new nudge */
	msglog_expect(s.id, "review", 1);
	o.ncomments = 2;
	observe(bc, s.id, &o, &v);
	o.ncomments = 3;
	observe(bc, s.id, &o, &v);
	msglog_expect(s.id, "review", 3);
	msglog_find(s.id, "review", 2, msg, sizeof(msg));
	ck_assert_msg(strstr(msg, "add a test for the empty case") != NULL,
	    "third review nudge: %s", msg);
	ck_assert_int_eq(notes_count(bc, s.id, NULL, NULL), 0);
	o.ncomments = 4;
	observe(bc, s.id, &o, &v);
	ck_assert_int_eq(notes_count(bc, s.id, "review-comments", "urgent"), 1);
	msglog_expect(s.id, "review", 3);
	o.ncomments = 5;
	observe(bc, s.id, &o, &v);
	o.review = "changes_requested";
	observe(bc, s.id, &o, &v);
	msglog_expect(s.id, "review", 3);
	ck_assert_int_eq(notes_count(bc, s.id, NULL, NULL), 1);
	ck_assert_str_eq(v.status, "changes_requested");
	bclient_free(bc);
}
END_TEST

/*
 * Merge conflicts and an idle agent: a nudge, then an urgent escalation on
 * tick after --escalate-after-ms.
 */
START_TEST(reactions_merge_conflicts)
{
	static const char *const flags[] = { "--escalate-after-ms=200", NULL };
	struct integ_obs o = { "https://git.example/pr/9", "open",
		"review_required", "pending", "conflicting", NULL, -1, NULL,
		-1 };
	struct bclient *bc;
	struct integ_session s, idle, v;
	char proj[80];
	int64_t t0;

	start_lcmd(flags);
	bc = integ_connect(lcmd_sock);
	add_project(bc, "app", proj, sizeof(proj));
	spawn(bc, proj, &s);
	spawn(bc, proj, &idle);
	activity(bc, s.id, "active", &v);

	t0 = aotime_mono_ms();
	activity(bc, idle.id, "idle", &v);
	ck_assert_str_eq(v.status, "idle");
	observe(bc, s.id, &o, &v);
	ck_assert_str_eq(v.status, "review_pending");
	observe(bc, s.id, &o, &v);	/* still conflicting: no second nudge */
	tick(bc);
	quiesce(bc);
	if (aotime_mono_ms() - t0 < 150)
		ck_assert_int_eq(notes_count(bc, s.id, NULL, NULL), 0);
	msglog_expect(s.id, "merge conflicts", 1);
	msglog_expect(idle.id, "idle", 1);
	usleep(300 * 1000);
	tick(bc);
	quiesce(bc);
	ck_assert_int_eq(notes_count(bc, s.id, "merge-conflicts", "urgent"), 1);
	ck_assert_int_eq(notes_count(bc, idle.id, "agent-idle", "urgent"), 1);
	tick(bc);
	quiesce(bc);
	ck_assert_int_eq(notes_count(bc, s.id, NULL, NULL), 1);
	ck_assert_int_eq(notes_count(bc, idle.id, NULL, NULL), 1);
	msglog_expect(s.id, "merge conflicts", 1);
	msglog_expect(idle.id, "idle", 1);

	/* Resolved, then conflicting again: a fresh budget, a fresh nudge. */
	o.merge = "mergeable";
	observe(bc, s.id, &o, &v);
	o.merge = "conflicting";
	observe(bc, s.id, &o, &v);
	msglog_expect(s.id, "merge conflicts", 2);
	bclient_free(bc);
}
END_TEST

/* approved-and-green once; merged → cleanup with pr-merged; closed → pr-closed. */
START_TEST(reactions_pr_outcomes)
{
	static const struct integ_check green[] = { { "build", "c9", "passed",
		NULL } };
	struct integ_obs o = { "https://git.example/pr/10", "open", "approved",
		"passing", "mergeable", green, 1, NULL, 0 };
	struct bclient *bc, *sbc;
	struct bclient_msg res;
	struct rpc_buf b;
	struct integ_session s, c, v;
	char proj[80], err[256];

	start_lcmd(NULL);
	bc = integ_connect(lcmd_sock);
	add_project(bc, "app", proj, sizeof(proj));
	spawn(bc, proj, &s);
	spawn(bc, proj, &c);
	activity(bc, s.id, "active", &v);
	activity(bc, c.id, "active", &v);

	observe(bc, s.id, &o, &v);
	ck_assert_str_eq(v.status, "mergeable");
	ck_assert_int_eq(notes_count(bc, s.id, "approved-and-green", "action"), 1);
	observe(bc, s.id, &o, &v);
	ck_assert_int_eq(notes_count(bc, s.id, NULL, NULL), 1);

	o.state = "merged";
	observe(bc, s.id, &o, &v);
	ck_assert_str_eq(v.state, "terminated");
	ck_assert_str_eq(v.reason, "pr_merged");
	ck_assert_str_eq(v.status, "cleanup");
	ck_assert(!v.pr_nil);
	ck_assert_int_eq(notes_count(bc, s.id, "pr-merged", "info"), 1);
	ck_assert_int_eq(notes_count(bc, s.id, NULL, NULL), 2);
	integ_wait_pid_gone(s.pid, 8000, "the merged session's agent");
	/* Budgets cleared (storaged directly: tests may). */
	sbc = bclient_connect(storaged_sock, err, sizeof(err));
	ck_assert_msg(sbc != NULL, "connect storaged: %s", err);
	rpc_buf_init(&b);
	rpc_pack_kv_str(&integ_params(&b, 1)->pk, "session_id", s.id);
	integ_call_ok(sbc, "reaction.get", &b, &res);
	ck_assert_uint_eq(integ_get_list(res.m.result, "trackers", NULL)->size, 0);
	bclient_msg_free(&res);
	bclient_free(sbc);
	/* A terminated session takes no more observations. */
	integ_pack_observe(&b, s.id, &o);
	integ_expect_err(bc, "pr.observe", &b, RPC_INVALID_STATE, NULL);

	/* Closed without merging: pr-closed, once; the status falls through. */
	o.url = "https://git.example/pr/11";
	o.state = "open";
	o.review = "review_required";
	observe(bc, c.id, &o, &v);
	ck_assert_str_eq(v.status, "mergeable");
	o.state = "closed";
	observe(bc, c.id, &o, &v);
	ck_assert_str_eq(v.state, "working");
	ck_assert_str_eq(v.status, "working");
	ck_assert_int_eq(notes_count(bc, c.id, "pr-closed", "action"), 1);
	observe(bc, c.id, &o, &v);
	tick(bc);
	quiesce(bc);
	ck_assert_int_eq(notes_count(bc, c.id, NULL, NULL), 1);
	msglog_expect(c.id, "", 0);
	msglog_expect(s.id, "", 0);
	rpc_buf_free(&b);
	bclient_free(bc);
}
END_TEST

/*
 * Inputs for one session are applied in order even when they arrive
 * together; two sessions' inputs interleaved do not disturb each other.
 */
START_TEST(reactions_pipelined_in_order)
{
	static const char *const commits[] = { "c1", "c2", "c3" };
	enum { N = 6 };
	const char *methods[N];
	struct rpc_buf bufs[N];
	const struct rpc_buf *bp[N];
	enum rpc_code codes[N];
	struct bclient *bc;
	struct integ_session a, b, v;
	char proj[80], tail[256], msg[4096];
	int i;

	start_lcmd(NULL);
	bc = integ_connect(lcmd_sock);
	add_project(bc, "app", proj, sizeof(proj));
	spawn(bc, proj, &a);
	spawn(bc, proj, &b);
	for (i = 0; i < N; i++) {
		const char *sid = i % 2 == 0 ? a.id : b.id;
		struct integ_check c = { "build", commits[i / 2], "failed", tail };
		struct integ_obs o = { NULL, "open", NULL, "failing", NULL, &c,
			1, NULL, -1 };
		char url[256];

		snprintf(url, sizeof(url), "https://git.example/pr/%s", sid);
		o.url = url;
		snprintf(tail, sizeof(tail), "tail of %s on %s", commits[i / 2], sid);
		rpc_buf_init(&bufs[i]);
		integ_pack_observe(&bufs[i], sid, &o);
		methods[i] = "pr.observe";
		bp[i] = &bufs[i];
	}
	pipeline(N, methods, bp, codes);
	for (i = 0; i < N; i++) {
		ck_assert_msg(codes[i] == RPC_OK, "observation %d: %s", i,
		    rpc_code_name(codes[i]));
		rpc_buf_free(&bufs[i]);
	}
	msglog_expect(a.id, "CI failed", 2);
	msglog_expect(b.id, "CI failed", 2);
	ck_assert_int_eq(notes_count(bc, a.id, "ci-failed/build", "urgent"), 1);
	ck_assert_int_eq(notes_count(bc, b.id, "ci-failed/build", "urgent"), 1);
	msglog_find(a.id, "CI failed", 0, msg, sizeof(msg));
	snprintf(tail, sizeof(tail), "tail of c1 on %s", a.id);
	ck_assert_msg(strstr(msg, tail) != NULL, "first nudge: %s", msg);
	msglog_find(b.id, "CI failed", 1, msg, sizeof(msg));
	snprintf(tail, sizeof(tail), "tail of c2 on %s", b.id);
	ck_assert_msg(strstr(msg, tail) != NULL, "second nudge: %s", msg);
	sget(bc, a.id, &v);
	ck_assert_str_eq(v.status, "ci_failed");
	bclient_free(bc);
}
END_TEST

/* ---- 4. budgets across restarts ---- */

START_TEST(restart_keeps_ci_brake)
{
	struct bclient *bc;
	struct integ_session s, v;
	char proj[80], msg[4096];
	int st;

	start_lcmd(NULL);
	bc = integ_connect(lcmd_sock);
	add_project(bc, "app", proj, sizeof(proj));
	spawn(bc, proj, &s);
	activity(bc, s.id, "active", &v);
	observe_ci_failure(bc, s.id, "c1", "log of c1", &v);
	observe_ci_failure(bc, s.id, "c2", "log of c2", &v);
	msglog_expect(s.id, "CI failed", 2);
	bclient_free(bc);

	/* SIGKILL: no chance to flush anything it kept to itself. */
	st = testlib_stop(lcmd_pid, SIGKILL, 5000);
	ck_assert(WIFSIGNALED(st));
	ck_assert(!integ_pid_gone(s.pid));	/* agents outlive lcmd */
	start_lcmd(NULL);
	bc = integ_connect(lcmd_sock);
	integ_assert_hello(bc, "lcmd", lcmd_pid);
	sget(bc, s.id, &v);
	ck_assert_str_eq(v.status, "ci_failed");
	/* c1 and c2 seen again after the restart: already handled. */
	observe_ci_failure(bc, s.id, "c2", "log of c2", &v);
	observe_ci_failure(bc, s.id, "c1", "log of c1", &v);
	tick(bc);
	quiesce(bc);
	msglog_expect(s.id, "CI failed", 2);
	ck_assert_int_eq(notes_count(bc, s.id, NULL, NULL), 0);
	/* The third failure still counts the two before the restart. */
	observe_ci_failure(bc, s.id, "c3", "log of c3", &v);
	ck_assert_int_eq(notes_count(bc, s.id, "ci-failed/build", "urgent"), 1);
	msglog_expect(s.id, "CI failed", 2);
	bclient_free(bc);

	/* SIGTERM, restart, the same observation: no second page. */
	st = testlib_stop(lcmd_pid, SIGTERM, 5000);
	ck_assert(WIFEXITED(st));	/* its exit code: shutdown_is_clean */
	start_lcmd(NULL);
	bc = integ_connect(lcmd_sock);
	observe_ci_failure(bc, s.id, "c3", "log of c3", &v);
	tick(bc);
	quiesce(bc);
	ck_assert_int_eq(notes_count(bc, s.id, "ci-failed/build", NULL), 1);
	ck_assert_int_eq(notes_count(bc, s.id, NULL, NULL), 1);
	msglog_expect(s.id, "CI failed", 2);
	msglog_find(s.id, "CI failed", 1, msg, sizeof(msg));
	ck_assert_msg(strstr(msg, "log of c2") != NULL, "second nudge: %s", msg);
	bclient_free(bc);
}
END_TEST

/*
 * SIGTERM after ordinary work: exit 0 (under ASan that includes "nothing
 * leaked": LeakSanitizer turns a leak into exit 1).
 */
START_TEST(shutdown_is_clean)
{
	static const struct integ_comment cm[] = { { "rc-1", "rename it", false } };
	struct integ_obs o = { "https://git.example/pr/20", "open",
		"review_required", "pending", "conflicting", NULL, -1, cm, 1 };
	struct bclient *bc;
	struct bclient_msg res;
	struct integ_session s, v;
	char proj[80];
	int st;

	start_lcmd(NULL);
	bc = integ_connect(lcmd_sock);
	add_project(bc, "app", proj, sizeof(proj));
	spawn(bc, proj, &s);
	activity(bc, s.id, "active", &v);
	observe_ci_failure(bc, s.id, "c1", "log of c1", &v);
	observe(bc, s.id, &o, &v);
	report(bc, s.id, "failed", "indeterminate", "no answer");
	quiesce(bc);
	tick(bc);
	quiesce(bc);
	sget(bc, s.id, &v);
	integ_call_ok(bc, "session.list", NULL, &res);
	bclient_msg_free(&res);
	session_call(bc, "session.kill", s.id, &v);
	bclient_free(bc);
	st = testlib_stop(lcmd_pid, SIGTERM, 5000);
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "lcmd after SIGTERM: "
	    "%s %d; its log ends: %s", WIFEXITED(st) ? "exit" : "signal",
	    WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st), log_from("leak of"));
}
END_TEST

/* ---- 5. notifiers ---- */

/* The number of lines in a file (0 when it does not exist). */
static int
count_lines(const char *path)
{
	char *all = testlib_read_file(path);
	int n = all != NULL ? integ_count_lines(all) : 0;

	free(all);
	return n;
}

/*
 * A notifier that hangs: lcmd and its API are not held up, every
 * notification is still stored, and the child (with its own child) is
 * killed and counted after --notify-timeout-ms.
 */
START_TEST(notifier_hangs)
{
	char body[1024], flag[600], proj[80], *pids, *line, *save = NULL;
	const char *flags[] = { flag, "--notify-timeout-ms=500", NULL };
	struct bclient *bc;
	struct bclient_msg res;
	struct integ_session s, v;
	int64_t t0, t;
	int npids = 0;

	snprintf(body, sizeof(body), "#!/bin/sh\n"
	    "# a notifier that never finishes (its sleep is a child of its own)\n"
	    "cd '%s' || exit 1\n"
	    "echo $$ >> '%s'\n"
	    "sleep 1000 &\n"
	    "echo $! >> '%s'\n"
	    "wait\n", dir, pidfile, pidfile);
	snprintf(flag, sizeof(flag), "--notify-command=%s",
	    write_script("hang.sh", body));
	start_lcmd(flags);
	bc = integ_connect(lcmd_sock);
	add_project(bc, "app", proj, sizeof(proj));
	spawn(bc, proj, &s);

	t0 = aotime_mono_ms();
	activity(bc, s.id, "waiting_input", &v);	/* agent-needs-input */
	ck_assert_int_lt(aotime_mono_ms() - t0, FAST_MS);
	t = aotime_mono_ms();
	sget(bc, s.id, &v);
	ck_assert_int_lt(aotime_mono_ms() - t, FAST_MS);
	ck_assert_str_eq(v.status, "needs_input");
	t = aotime_mono_ms();
	activity(bc, s.id, "blocked", &v);		/* agent-stuck */
	ck_assert_int_lt(aotime_mono_ms() - t, FAST_MS);
	t = aotime_mono_ms();
	integ_call_ok(bc, "session.list", NULL, &res);
	bclient_msg_free(&res);
	ck_assert_int_eq(notes_count(bc, s.id, "agent-needs-input", "urgent"), 1);
	ck_assert_int_eq(notes_count(bc, s.id, "agent-stuck", "urgent"), 1);
	ck_assert_int_lt(aotime_mono_ms() - t, FAST_MS);
	ck_assert_int_lt(aotime_mono_ms() - t0, 500);	/* all before the timeout */
	ck_assert_int_eq(integ_stat(bc, "notifications", "timed_out"), 0);
	ck_assert_int_ge(integ_stat(bc, "notifications", "pending"), 1);

	/* After the timeout: both killed, counted, nothing left pending. */
	INTEG_WAIT(integ_stat(bc, "notifications", "timed_out") >= 2 &&
	    integ_stat(bc, "notifications", "pending") == 0, SETTLE_TIMEOUT_MS, 20,
	    "notifiers never timed out: timed_out %lld, pending %lld",
	    (long long)integ_stat(bc, "notifications", "timed_out"),
	    (long long)integ_stat(bc, "notifications", "pending"));
	ck_assert_int_ge(aotime_mono_ms() - t0, 450);
	ck_assert_int_ge(integ_stat(bc, "notifications", "failed"), 2);
	ck_assert_int_eq(integ_stat(bc, "notifications", "sent"), 0);
	/* The scripts and their sleeps are gone. */
	ck_assert_ptr_nonnull(pids = testlib_read_file(pidfile));
	for (line = strtok_r(pids, "\n", &save); line != NULL;
	    line = strtok_r(NULL, "\n", &save)) {
		integ_wait_pid_gone((pid_t)atoi(line), 2000,
		    "a notifier process after its timeout");
		npids++;
	}
	free(pids);
	ck_assert_int_eq(npids, 4);
	integ_assert_hello(bc, "lcmd", lcmd_pid);
	bclient_free(bc);
}
END_TEST

/* One line of the recording notifier: env, then the JSON it read on stdin. */
struct delivery {
	char session[128], priority[16], reaction[160];
	json_t *json;
};

static int
read_deliveries(struct delivery *d, int max)
{
	char *all = testlib_read_file(delivered), *line, *save = NULL;
	int n = 0;

	if (all == NULL)
		return 0;
	for (line = strtok_r(all, "\n", &save); line != NULL && n < max;
	    line = strtok_r(NULL, "\n", &save)) {
		char *f[4], *p = line;
		json_error_t je;
		int i;

		for (i = 0; i < 3; i++) {
			f[i] = p;
			ck_assert_ptr_nonnull(p = strchr(p, '|'));
			*p++ = '\0';
		}
		f[3] = p;
		snprintf(d[n].session, sizeof(d[n].session), "%s", f[0]);
		snprintf(d[n].priority, sizeof(d[n].priority), "%s", f[1]);
		snprintf(d[n].reaction, sizeof(d[n].reaction), "%s", f[2]);
		d[n].json = json_loads(f[3], 0, &je);
		ck_assert_msg(d[n].json != NULL, "notifier stdin is not JSON: %s (%s)",
		    f[3], je.text);
		n++;
	}
	free(all);
	return n;
}

/*
 * A notifier that hangs for one reaction and records the others: those are
 * delivered while it hangs, with the notification as JSON on stdin and
 * AO_SESSION_ID / AO_PRIORITY / AO_REACTION in the environment.
 */
START_TEST(notifier_others_delivered)
{
	char body[1536], flag[600], proj[80];
	const char *flags[] = { flag, "--notify-timeout-ms=2000", NULL };
	struct integ_check chk = { "build", "c1", "passed", NULL };
	struct integ_obs o = { "https://git.example/pr/12", "open", "approved",
		"passing", "mergeable", &chk, 1, NULL, 0 };
	struct delivery d[8];
	struct bclient *bc;
	struct integ_session s, m, v;
	int64_t t0, elapsed;
	int n, i, seen = 0;

	snprintf(body, sizeof(body), "#!/bin/sh\n"
	    "# hangs for agent-needs-input; records every other notification\n"
	    "cd '%s' || exit 1\n"
	    "echo $$ >> '%s'\n"
	    "case \"$AO_REACTION\" in\n"
	    "agent-needs-input) sleep 1000 & echo $! >> '%s'; wait; exit 0 ;;\n"
	    "esac\n"
	    "in=$(cat)\n"
	    "printf '%%s|%%s|%%s|%%s\\n' \"$AO_SESSION_ID\" \"$AO_PRIORITY\" "
	    "\"$AO_REACTION\" \"$in\" >> '%s'\n", dir, pidfile, pidfile, delivered);
	snprintf(flag, sizeof(flag), "--notify-command=%s",
	    write_script("record.sh", body));
	start_lcmd(flags);
	bc = integ_connect(lcmd_sock);
	add_project(bc, "app", proj, sizeof(proj));
	spawn(bc, proj, &s);
	spawn(bc, proj, &m);
	activity(bc, m.id, "active", &v);

	t0 = aotime_mono_ms();
	activity(bc, s.id, "waiting_input", &v);	/* hangs */
	activity(bc, s.id, "blocked", &v);		/* agent-stuck, urgent */
	observe(bc, m.id, &o, &v);			/* approved-and-green, action */
	o.state = "merged";
	observe(bc, m.id, &o, &v);			/* pr-merged, info */
	ck_assert_int_lt(aotime_mono_ms() - t0, 1000);

	INTEG_WAIT(count_lines(delivered) >= 3, SETTLE_TIMEOUT_MS, 10, "only %d "
	    "notifications delivered: %s", count_lines(delivered),
	    integ_log_tail());
	elapsed = aotime_mono_ms() - t0;
	/* Delivered while the hung one still hangs. */
	if (elapsed < 1800) {
		ck_assert_int_eq(integ_stat(bc, "notifications", "timed_out"), 0);
		ck_assert_int_ge(integ_stat(bc, "notifications", "pending"), 1);
	}
	ck_assert_msg(elapsed < 2000, "deliveries took %lld ms: held up by the "
	    "hung notifier", (long long)elapsed);

	n = read_deliveries(d, 8);
	ck_assert_int_eq(n, 3);
	for (i = 0; i < n; i++) {
		json_t *j = d[i].json;
		const char *want_sid = strcmp(d[i].reaction, "agent-stuck") == 0 ?
		    s.id : m.id;
		const char *want_prio = strcmp(d[i].reaction, "agent-stuck") == 0 ?
		    "urgent" : strcmp(d[i].reaction, "approved-and-green") == 0 ?
		    "action" : "info";

		ck_assert_msg(strcmp(d[i].reaction, "agent-stuck") == 0 ||
		    strcmp(d[i].reaction, "approved-and-green") == 0 ||
		    strcmp(d[i].reaction, "pr-merged") == 0,
		    "unexpected delivery: %s", d[i].reaction);
		seen |= 1 << (d[i].reaction[0] == 'a' ? (d[i].reaction[1] == 'g' ?
		    0 : 1) : 2);
		ck_assert_str_eq(d[i].session, want_sid);
		ck_assert_str_eq(d[i].priority, want_prio);
		ck_assert(json_is_integer(json_object_get(j, "id")));
		ck_assert_str_eq(json_string_value(json_object_get(j, "session_id")),
		    want_sid);
		ck_assert_str_eq(json_string_value(json_object_get(j, "project_id")),
		    proj);
		ck_assert_str_eq(json_string_value(json_object_get(j, "priority")),
		    want_prio);
		ck_assert_str_eq(json_string_value(json_object_get(j, "reaction")),
		    d[i].reaction);
		ck_assert(json_is_string(json_object_get(j, "message")) &&
		    json_string_length(json_object_get(j, "message")) > 0);
		ck_assert(json_is_integer(json_object_get(j, "created_at")));
		json_decref(j);
	}
	ck_assert_int_eq(seen, 7);
	/* The hung one is stored all the same, and ends as a timeout. */
	ck_assert_int_eq(notes_count(bc, s.id, "agent-needs-input", "urgent"), 1);
	INTEG_WAIT(integ_stat(bc, "notifications", "timed_out") >= 1,
	    SETTLE_TIMEOUT_MS, 20, "the hung notifier never timed out");
	ck_assert_int_eq(integ_stat(bc, "notifications", "timed_out"), 1);
	ck_assert_int_eq(integ_stat(bc, "notifications", "sent"), 3);
	ck_assert_int_eq(integ_stat(bc, "notifications", "pending"), 0);
	bclient_free(bc);
}
END_TEST

/* Routing: --notify-urgent=none keeps urgent notifications stored but undelivered. */
START_TEST(notifier_routing)
{
	char body[1024], flag[600], proj[80];
	const char *flags[] = { flag, "--notify-urgent=none", NULL };
	struct integ_obs o = { "https://git.example/pr/13", "closed", NULL,
		NULL, NULL, NULL, -1, NULL, -1 };
	struct delivery d[4];
	struct bclient *bc;
	struct integ_session s, v;

	snprintf(body, sizeof(body), "#!/bin/sh\n"
	    "cd '%s' || exit 1\n"
	    "in=$(cat)\n"
	    "printf '%%s|%%s|%%s|%%s\\n' \"$AO_SESSION_ID\" \"$AO_PRIORITY\" "
	    "\"$AO_REACTION\" \"$in\" >> '%s'\n", dir, delivered);
	snprintf(flag, sizeof(flag), "--notify-command=%s",
	    write_script("record.sh", body));
	start_lcmd(flags);
	bc = integ_connect(lcmd_sock);
	add_project(bc, "app", proj, sizeof(proj));
	spawn(bc, proj, &s);
	activity(bc, s.id, "blocked", &v);		/* agent-stuck: urgent */
	observe(bc, s.id, &o, &v);			/* pr-closed: action */
	ck_assert_int_eq(notes_count(bc, s.id, "agent-stuck", "urgent"), 1);
	ck_assert_int_eq(notes_count(bc, s.id, "pr-closed", "action"), 1);
	INTEG_WAIT(integ_stat(bc, "notifications", "sent") >= 1 &&
	    integ_stat(bc, "notifications", "pending") == 0, SETTLE_TIMEOUT_MS, 10,
	    "the action notification was never delivered");
	ck_assert_int_eq(read_deliveries(d, 4), 1);
	ck_assert_str_eq(d[0].reaction, "pr-closed");
	ck_assert_str_eq(d[0].priority, "action");
	json_decref(d[0].json);
	ck_assert_int_eq(integ_stat(bc, "notifications", "sent"), 1);
	ck_assert_int_eq(integ_stat(bc, "notifications", "failed"), 0);
	bclient_free(bc);
}
END_TEST

/* ---- 6. storaged down ---- */

/* Asserts a call fails with unavailable, fast. */
static void
expect_unavailable(struct bclient *bc, const char *method, const struct rpc_buf *b,
    int64_t within_ms)
{
	int64_t t0 = aotime_mono_ms();

	integ_expect_err(bc, method, b, RPC_UNAVAILABLE, NULL);
	ck_assert_msg(aotime_mono_ms() - t0 < within_ms, "%s took %lld ms to fail",
	    method, (long long)(aotime_mono_ms() - t0));
}

/* Polls session.get until it works again (lcmd reconnects with backoff). */
static void
wait_storaged_back(struct bclient *bc, const char *id)
{
	int64_t deadline = aotime_mono_ms() + 8000;
	struct bclient_msg res;
	struct rpc_error err;
	struct rpc_buf b;

	rpc_buf_init(&b);
	rpc_pack_kv_str(&integ_params(&b, 1)->pk, "id", id);
	while (bclient_call(bc, "session.get", b.sb.data, b.sb.size, CALL_TIMEOUT_MS,
	    &res, &err) == -1) {
		ck_assert_msg(err.code == RPC_UNAVAILABLE, "session.get: %s: %s",
		    rpc_code_name(err.code), err.message);
		ck_assert_msg(aotime_mono_ms() < deadline, "lcmd never got "
		    "storaged back: %s", integ_log_tail());
		usleep(50 * 1000);
	}
	bclient_msg_free(&res);
	rpc_buf_free(&b);
}

START_TEST(storaged_down)
{
	static const char *const flags[] = { "--storaged-timeout-ms=500", NULL };
	struct bclient *bc;
	struct bclient_msg res;
	struct rpc_buf b;
	struct integ_session s, v;
	char proj[80];
	int64_t t0;

	start_lcmd(flags);
	bc = integ_connect(lcmd_sock);
	add_project(bc, "app", proj, sizeof(proj));
	spawn(bc, proj, &s);
	rpc_buf_init(&b);

	/* Stopped cleanly: every call that needs it fails at once. */
	testlib_stop(storaged_pid, SIGTERM, 5000);
	rpc_pack_kv_str(&integ_params(&b, 1)->pk, "id", s.id);
	expect_unavailable(bc, "session.get", &b, 1000);
	expect_unavailable(bc, "session.kill", &b, 1000);
	expect_unavailable(bc, "project.list", NULL, 1000);
	expect_unavailable(bc, "session.list", NULL, 1000);
	expect_unavailable(bc, "notification.list", NULL, 1000);
	expect_unavailable(bc, "tick", NULL, 1000);
	integ_params(&b, 2);
	rpc_pack_kv_str(&b.pk, "id", s.id);
	rpc_pack_kv_str(&b.pk, "state", "active");
	expect_unavailable(bc, "session.activity", &b, 1000);
	integ_params(&b, 2);
	rpc_pack_kv_str(&b.pk, "project_id", proj);
	rpc_pack_kv_str(&b.pk, "harness", "codex");
	expect_unavailable(bc, "session.spawn", &b, 1000);
	/* lcmd itself is fine and says what is wrong. */
	integ_assert_hello(bc, "lcmd", lcmd_pid);
	integ_call_ok(bc, "stats", NULL, &res);
	ck_assert_int_eq(rpc_map_get(res.m.result, "storaged_connected")->type,
	    MSGPACK_OBJECT_BOOLEAN);
	ck_assert(!rpc_map_get(res.m.result, "storaged_connected")->via.boolean);
	bclient_msg_free(&res);
	ck_assert_int_eq(integ_stat(bc, "inputs", "queued"), 0);

	start_storaged();
	wait_storaged_back(bc, s.id);
	sget(bc, s.id, &v);
	ck_assert_str_eq(v.status, "working");
	activity(bc, s.id, "active", &v);
	ck_assert_str_eq(v.status, "working");

	/* Killed: the same. */
	testlib_stop(storaged_pid, SIGKILL, 5000);
	rpc_pack_kv_str(&integ_params(&b, 1)->pk, "id", s.id);
	expect_unavailable(bc, "session.get", &b, 1000);
	start_storaged();
	wait_storaged_back(bc, s.id);

	/* Hung (SIGSTOP): answered within lcmd's storaged deadline, not never. */
	ck_assert_int_eq(kill(storaged_pid, SIGSTOP), 0);
	t0 = aotime_mono_ms();
	integ_expect_err(bc, "session.get", &b, RPC_UNAVAILABLE, NULL);
	ck_assert_int_lt(aotime_mono_ms() - t0, 3000);
	integ_assert_hello(bc, "lcmd", lcmd_pid);
	ck_assert_int_eq(kill(storaged_pid, SIGCONT), 0);
	wait_storaged_back(bc, s.id);
	sget(bc, s.id, &v);
	ck_assert_str_eq(v.status, "working");
	rpc_buf_free(&b);
	bclient_free(bc);
}
END_TEST

/* ---- 7. bad input ---- */

START_TEST(hostile_bytes)
{
	static const unsigned char huge_arr[] = { 0xdd, 0xff, 0xff, 0xff, 0xff };
	static const unsigned char huge_map[] = { 0xdf, 0xff, 0xff, 0xff, 0xff };
	static const unsigned char bare_map[] = { 0x81, 0xa2, 'i', 'd', 0xa3,
		'a', 'p', 'p' };
	static const unsigned char empty_map[] = { 0x80 };
	static const unsigned char never[] = { 0xc1 };
	struct bclient *idle, *bc;
	struct bclient_msg res;
	struct integ_session s, v;
	char proj[80];

	start_lcmd(NULL);
	idle = integ_connect(lcmd_sock);
	add_project(idle, "app", proj, sizeof(proj));
	spawn(idle, proj, &s);
	integ_expect_closed(lcmd_sock, "huge_arr", huge_arr, sizeof(huge_arr),
	    false);
	integ_expect_closed(lcmd_sock, "huge_map", huge_map, sizeof(huge_map),
	    false);
	integ_expect_closed(lcmd_sock, "bare_map", bare_map, sizeof(bare_map),
	    false);
	integ_expect_closed(lcmd_sock, "empty_map", empty_map,
	    sizeof(empty_map), false);
	integ_expect_closed(lcmd_sock, "never", never, sizeof(never), false);
	/* lcmd still answers, on the old connection and on new ones. */
	integ_assert_hello(idle, "lcmd", lcmd_pid);
	integ_call_ok(idle, "ping", NULL, &res);
	bclient_msg_free(&res);
	bc = integ_connect(lcmd_sock);
	integ_assert_hello(bc, "lcmd", lcmd_pid);
	activity(bc, s.id, "active", &v);
	ck_assert_str_eq(v.status, "working");
	ck_assert_int_eq(kill(lcmd_pid, 0), 0);
	bclient_free(bc);
	bclient_free(idle);
}
END_TEST

/* Bad params: bad_request naming the field; the connection stays usable. */
START_TEST(bad_params)
{
	struct bclient *bc;
	struct rpc_buf b;
	struct integ_session s, v;
	char proj[80];
	static const unsigned char bad_utf8[] = { 'a', 0xff, 'b' };

	start_lcmd(NULL);
	bc = integ_connect(lcmd_sock);
	add_project(bc, "app", proj, sizeof(proj));
	spawn(bc, proj, &s);
	rpc_buf_init(&b);

	integ_expect_err(bc, "session.get", NULL, RPC_BAD_REQUEST, "id");
	rpc_pack_kv_i64(&integ_params(&b, 1)->pk, "id", 5);
	integ_expect_err(bc, "session.get", &b, RPC_BAD_REQUEST, "id");
	integ_params(&b, 2);
	rpc_pack_kv_str(&b.pk, "id", s.id);
	rpc_pack_kv_i64(&b.pk, "verbose", 1);
	integ_expect_err(bc, "session.get", &b, RPC_BAD_REQUEST, "verbose");
	integ_params(&b, 1);
	rpc_pack_str(&b.pk, "id");
	msgpack_pack_str(&b.pk, sizeof(bad_utf8));
	msgpack_pack_str_body(&b.pk, bad_utf8, sizeof(bad_utf8));
	integ_expect_err(bc, "session.get", &b, RPC_BAD_REQUEST, "id");
	rpc_pack_kv_bool(&integ_params(&b, 1)->pk, "id", true);
	integ_expect_err(bc, "session.kill", &b, RPC_BAD_REQUEST, "id");

	integ_expect_err(bc, "session.spawn", NULL, RPC_BAD_REQUEST, "project_id");
	integ_params(&b, 2);
	rpc_pack_kv_str(&b.pk, "project_id", proj);
	rpc_pack_kv_str(&b.pk, "command", "sh -c true");
	integ_expect_err(bc, "session.spawn", &b, RPC_BAD_REQUEST, "command");
	integ_params(&b, 2);
	rpc_pack_kv_str(&b.pk, "project_id", proj);
	rpc_pack_str(&b.pk, "command");
	msgpack_pack_array(&b.pk, 1);
	msgpack_pack_int(&b.pk, 1);
	integ_expect_err(bc, "session.spawn", &b, RPC_BAD_REQUEST, "command");
	integ_params(&b, 3);
	rpc_pack_kv_str(&b.pk, "project_id", proj);
	rpc_pack_kv_str(&b.pk, "harness", "codex");
	rpc_pack_kv_str(&b.pk, "runtime", "docker");
	integ_expect_err(bc, "session.spawn", &b, RPC_BAD_REQUEST, "runtime");

	integ_params(&b, 2);
	rpc_pack_kv_str(&b.pk, "id", s.id);
	rpc_pack_kv_str(&b.pk, "state", "sleeping");
	integ_expect_err(bc, "session.activity", &b, RPC_BAD_REQUEST, "state");
	rpc_pack_kv_str(&integ_params(&b, 1)->pk, "id", s.id);
	integ_expect_err(bc, "session.activity", &b, RPC_BAD_REQUEST, "state");
	integ_params(&b, 2);
	rpc_pack_kv_str(&b.pk, "id", s.id);
	rpc_pack_kv_str(&b.pk, "message", "");
	integ_expect_err(bc, "session.send", &b, RPC_BAD_REQUEST, "message");
	rpc_pack_kv_str(&integ_params(&b, 1)->pk, "id", s.id);
	integ_expect_err(bc, "session.send", &b, RPC_BAD_REQUEST, "message");

	rpc_pack_kv_i64(&integ_params(&b, 1)->pk, "results", 5);
	integ_expect_err(bc, "runtime.report", &b, RPC_BAD_REQUEST, "results");
	integ_params(&b, 1);
	rpc_pack_str(&b.pk, "results");
	msgpack_pack_array(&b.pk, 2);
	msgpack_pack_map(&b.pk, 3);
	rpc_pack_kv_str(&b.pk, "session_id", s.id);
	rpc_pack_kv_str(&b.pk, "runtime", "dead");
	rpc_pack_kv_str(&b.pk, "process", "dead");
	msgpack_pack_map(&b.pk, 3);
	rpc_pack_kv_str(&b.pk, "session_id", s.id);
	rpc_pack_kv_str(&b.pk, "runtime", "zombie");
	rpc_pack_kv_str(&b.pk, "process", "dead");
	integ_expect_err(bc, "runtime.report", &b, RPC_BAD_REQUEST,
	    "results[1].runtime");
	integ_params(&b, 1);
	rpc_pack_str(&b.pk, "results");
	msgpack_pack_array(&b.pk, 1);
	msgpack_pack_map(&b.pk, 2);
	rpc_pack_kv_str(&b.pk, "session_id", s.id);
	rpc_pack_kv_str(&b.pk, "runtime", "alive");
	integ_expect_err(bc, "runtime.report", &b, RPC_BAD_REQUEST, "process");

	rpc_pack_kv_str(&integ_params(&b, 1)->pk, "session_id", s.id);
	integ_expect_err(bc, "pr.observe", &b, RPC_BAD_REQUEST, "pr");
	integ_params(&b, 2);
	rpc_pack_kv_str(&b.pk, "session_id", s.id);
	rpc_pack_str(&b.pk, "pr");
	msgpack_pack_map(&b.pk, 1);
	rpc_pack_kv_str(&b.pk, "url", "https://git.example/pr/1");
	integ_expect_err(bc, "pr.observe", &b, RPC_BAD_REQUEST, "number");
	{
		struct integ_check c = { "build", "c1", "exploded", NULL };
		struct integ_obs o = { "https://git.example/pr/1", "open", NULL,
			NULL, NULL, &c, 1, NULL, -1 };

		integ_pack_observe(&b, s.id, &o);
		integ_expect_err(bc, "pr.observe", &b, RPC_BAD_REQUEST,
		    "checks[0].status");
		o.nchecks = -1;
		o.state = "reopened";
		integ_pack_observe(&b, s.id, &o);
		integ_expect_err(bc, "pr.observe", &b, RPC_BAD_REQUEST, "state");
	}

	rpc_pack_kv_i64(&integ_params(&b, 1)->pk, "bogus", 1);
	integ_expect_err(bc, "tick", &b, RPC_BAD_REQUEST, "bogus");
	rpc_pack_kv_i64(&integ_params(&b, 1)->pk, "bogus", 1);
	integ_expect_err(bc, "stats", &b, RPC_BAD_REQUEST, "bogus");
	rpc_pack_kv_str(&integ_params(&b, 1)->pk, "limit", "ten");
	integ_expect_err(bc, "notification.list", &b, RPC_BAD_REQUEST, "limit");
	rpc_pack_kv_str(&integ_params(&b, 1)->pk, "include_terminated", "yes");
	integ_expect_err(bc, "session.list", &b, RPC_BAD_REQUEST,
	    "include_terminated");
	integ_expect_err(bc, "session.frobnicate", NULL, RPC_UNKNOWN_METHOD, NULL);

	/* None of it changed the session, and the connection still works. */
	sget(bc, s.id, &v);
	ck_assert_str_eq(v.status, "working");
	ck_assert(v.pr_nil);
	ck_assert_int_eq(notes_count(bc, s.id, NULL, NULL), 0);
	rpc_buf_free(&b);
	bclient_free(bc);
}
END_TEST

/* A test case with its own directory, for what outlives a failed test. */
static TCase *
tcase(Suite *s, const char *name, int timeout)
{
	return integ_tcase(s, name, timeout, setup, teardown,
	    INTEG_CASE_DIR | INTEG_CASE_KILL);
}

Suite *
lcmd_suite(void)
{
	Suite *s = suite_create("lcmd");
	TCase *tc;

	tc = tcase(s, "api", 30);
	tcase_add_test(tc, api_projects);
	tcase_add_test(tc, api_project_readd_keeps_metadata);
	tcase_add_test(tc, api_sessions);
	tcase_add_test(tc, api_tmux_runtime);
	tcase_add_test(tc, api_max_sessions);
	tcase_add_test(tc, api_max_sessions_pipelined);
	tcase_add_test(tc, api_concurrent_spawns_one_project);
	tc = tcase(s, "lifecycle", 30);
	tcase_add_test(tc, lifecycle_activity_and_probes);
	tcase_add_test(tc, lifecycle_recent_activity_vetoes_death);
	tcase_add_test(tc, lifecycle_detecting_times_out);
	tcase_add_test(tc, lifecycle_kill_restore_done_cleanup);
	tcase_add_test(tc, lifecycle_cleanup_of_terminated_removes_worktree);
	tc = tcase(s, "reactions", 30);
	tcase_add_test(tc, reactions_ci_brake);
	tcase_add_test(tc, reactions_review_comments);
	tcase_add_test(tc, reactions_merge_conflicts);
	tcase_add_test(tc, reactions_pr_outcomes);
	tcase_add_test(tc, reactions_pipelined_in_order);
	tc = tcase(s, "restart", 30);
	tcase_add_test(tc, restart_keeps_ci_brake);
	tcase_add_test(tc, shutdown_is_clean);
	tc = tcase(s, "notifiers", 30);
	tcase_add_test(tc, notifier_hangs);
	tcase_add_test(tc, notifier_others_delivered);
	tcase_add_test(tc, notifier_routing);
	tc = tcase(s, "storaged down", 30);
	tcase_add_test(tc, storaged_down);
	tc = tcase(s, "bad input", 30);
	tcase_add_test(tc, hostile_bytes);
	tcase_add_test(tc, bad_params);
	return s;
}
TEST_SUITE(lcmd_suite)
