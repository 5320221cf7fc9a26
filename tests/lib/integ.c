#include "tests/lib/integ.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>

#include <jansson.h>

#include "common/sock.h"
#include "tests/lib/testlib.h"

static struct integ_conf conf;
static char *case_dir;	/* INTEG_CASE_DIR: made and removed by the runner */

void
integ_configure(const struct integ_conf *c)
{
	conf = *c;
}

/* ---- test cases ---- */

static void
case_setup(void)
{
	case_dir = testlib_tmpdir();
}

static void
case_remove(void)
{
	testlib_rmrf(case_dir);
	free(case_dir);
	case_dir = NULL;
}

/* Twice: a script that was forking when it was killed. */
static void
case_kill_remove(void)
{
	integ_kill_by_cwd(case_dir);
	usleep(20 * 1000);
	integ_kill_by_cwd(case_dir);
	case_remove();
}

TCase *
integ_tcase(Suite *s, const char *name, int timeout_s, void (*setup)(void),
    void (*teardown)(void), int flags)
{
	TCase *tc = tcase_create(name);

	if (flags & INTEG_CASE_DIR)
		tcase_add_unchecked_fixture(tc, case_setup,
		    flags & INTEG_CASE_KILL ? case_kill_remove : case_remove);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, timeout_s);
	suite_add_tcase(s, tc);
	return tc;
}

char *
integ_test_dir(void)
{
	size_t len;
	char *d;

	ck_assert_msg(case_dir != NULL, "the test case has no INTEG_CASE_DIR");
	len = strlen(case_dir) + sizeof("/t.XXXXXX");
	ck_assert_ptr_nonnull(d = malloc(len));
	snprintf(d, len, "%s/t.XXXXXX", case_dir);
	ck_assert_ptr_nonnull(mkdtemp(d));
	return d;
}

/* ---- daemons and commands ---- */

const char *
integ_log_tail(void)
{
	static char buf[1024];
	char *all;
	size_t n;

	if (conf.log == NULL || (all = testlib_read_file(conf.log)) == NULL)
		return "(no log)";
	n = strlen(all);
	snprintf(buf, sizeof(buf), "%s",
	    all + (n >= sizeof(buf) ? n - (sizeof(buf) - 1) : 0));
	free(all);
	return buf;
}

/* integ_spawn, run by the NULL-terminated command pre (NULL: none). */
static pid_t
spawn_under(const char *const pre[], const char *name,
    const char *const extra[], int *ready)
{
	char *argv[56];
	int n = 0, i, logfd = -1, saved = -1;
	pid_t pid;

	for (i = 0; pre != NULL && pre[i] != NULL; i++) {
		ck_assert_int_lt(n, 8);
		argv[n++] = (char *)pre[i];
	}
	argv[n++] = (char *)testlib_bin(name);
	argv[n++] = "--data-dir";
	argv[n++] = (char *)conf.dir;
	for (i = 0; extra != NULL && extra[i] != NULL; i++) {
		ck_assert_int_lt(n, 52);
		argv[n++] = (char *)extra[i];
	}
	argv[n] = NULL;
	if (conf.log != NULL) {
		logfd = open(conf.log, O_WRONLY | O_CREAT | O_APPEND |
		    O_CLOEXEC, 0600);
		ck_assert_int_ne(logfd, -1);
		/* The child inherits fd 2 only; saved must not leak into it. */
		saved = fcntl(2, F_DUPFD_CLOEXEC, 3);
		ck_assert_int_ne(saved, -1);
		dup2(logfd, 2);
	}
	pid = testlib_spawn(argv, ready);
	if (conf.log != NULL) {
		dup2(saved, 2);
		close(saved);
		close(logfd);
	}
	ck_assert_int_gt(pid, 0);
	return pid;
}

pid_t
integ_spawn(const char *name, const char *const extra[], int *ready)
{
	return spawn_under(NULL, name, extra, ready);
}

pid_t
integ_start_nofile(const char *name, int nofile, const char *const extra[])
{
	char lim[64];
	const char *const pre[] = { "/usr/bin/prlimit", lim, "--", NULL };
	int ready;
	pid_t pid;

	snprintf(lim, sizeof(lim), "--nofile=%d:%d", nofile, nofile);
	pid = spawn_under(pre, name, extra, &ready);
	integ_wait_ready(name, ready);
	return pid;
}

void
integ_wait_ready(const char *name, int ready)
{
	ck_assert_msg(testlib_wait_ready(ready, conf.ready_ms) == 0,
	    "%s not ready: %s", name, integ_log_tail());
	close(ready);
}

pid_t
integ_start(const char *name, const char *const extra[])
{
	int ready;
	pid_t pid = integ_spawn(name, extra, &ready);

	integ_wait_ready(name, ready);
	return pid;
}

/* The child's side of integ_run: the descriptors, then exec. */
static void __attribute__((noreturn))
run_child(const char *const argv[], pid_t parent, int out)
{
	int in = open("/dev/null", O_RDONLY | O_CLOEXEC);
	int err = open(conf.log != NULL ? conf.log : "/dev/null",
	    O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent)
		_exit(127);
	signal(SIGPIPE, SIG_DFL);
	if (out == -1)
		out = open("/dev/null", O_WRONLY | O_CLOEXEC);
	if (in == -1 || out == -1 || dup2(in, 0) == -1 || dup2(out, 1) == -1 ||
	    (err != -1 && dup2(err, 2) == -1))
		_exit(126);
	execvp(argv[0], (char *const *)argv);
	_exit(127);
}

int
integ_run(const char *const argv[], char *out, size_t outlen, int timeout_ms)
{
	int64_t deadline = aotime_mono_ms() + timeout_ms;
	pid_t pid, parent = getpid();
	int p[2] = { -1, -1 }, status;
	size_t n = 0;

	if (out != NULL && outlen > 0)
		out[0] = '\0';
	if (out != NULL && pipe2(p, O_CLOEXEC) == -1)
		return -1;
	fflush(NULL);
	if ((pid = fork()) == -1) {
		if (out != NULL) {
			close(p[0]);
			close(p[1]);
		}
		return -1;
	}
	if (pid == 0)
		run_child(argv, parent, p[1]);
	if (out != NULL) {
		close(p[1]);
		for (;;) {
			struct pollfd pfd = { .fd = p[0], .events = POLLIN };
			int64_t left = deadline - aotime_mono_ms();
			char buf[4096];
			ssize_t r;

			if (left <= 0 || poll(&pfd, 1, (int)left) <= 0)
				break;
			if ((r = read(p[0], buf, sizeof(buf))) <= 0)
				break;
			if (n + 1 < outlen) {
				size_t k = outlen - 1 - n;

				if ((size_t)r < k)
					k = (size_t)r;
				memcpy(out + n, buf, k);
				n += k;
				out[n] = '\0';
			}
		}
		close(p[0]);
	}
	status = testlib_wait(pid, (int)(deadline - aotime_mono_ms()) + 100);
	if (status == -1) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		return -1;
	}
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

int
integ_git(const char *repo, char *out, size_t outlen, ...)
{
	const char *argv[32];
	va_list ap;
	int n = 0;

	argv[n++] = "git";
	argv[n++] = "-C";
	argv[n++] = repo;
	argv[n++] = "-c";
	argv[n++] = "user.name=ao test";
	argv[n++] = "-c";
	argv[n++] = "user.email=test@ao.invalid";
	va_start(ap, outlen);
	while ((argv[n] = va_arg(ap, const char *)) != NULL)
		ck_assert_int_lt(++n, 31);
	va_end(ap);
	return integ_run(argv, out, outlen, 10000);
}

void
integ_write_file(const char *path, const char *text, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);

	ck_assert_msg(fd != -1, "%s: %s", path, strerror(errno));
	ck_assert_int_eq(integ_write_all(fd, text, strlen(text)), 0);
	ck_assert_int_eq(fchmod(fd, mode), 0);
	ck_assert_int_eq(close(fd), 0);
}

int
integ_count_lines(const char *s)
{
	int n = 0;

	for (; *s != '\0'; s++)
		n += *s == '\n';
	return n;
}

/* ---- calls ---- */

struct bclient *
integ_connect(const char *sock)
{
	char err[256];
	struct bclient *bc = bclient_connect(sock, err, sizeof(err));

	ck_assert_msg(bc != NULL, "connect %s: %s", sock, err);
	return bc;
}

struct rpc_buf *
integ_params(struct rpc_buf *b, uint32_t n)
{
	rpc_buf_reset(b);
	msgpack_pack_map(&b->pk, n);
	return b;
}

void
integ_call_ok(struct bclient *bc, const char *method, const struct rpc_buf *b,
    struct bclient_msg *res)
{
	struct bclient_msg m;
	struct rpc_error err;

	ck_assert_msg(bclient_call(bc, method, b != NULL ? b->sb.data : NULL,
	    b != NULL ? b->sb.size : 0, conf.call_ms, &m, &err) == 0,
	    "%s: %s: %s (log: %s)", method, rpc_code_name(err.code),
	    err.message, integ_log_tail());
	if (res != NULL)
		*res = m;
	else
		bclient_msg_free(&m);
}

enum rpc_code
integ_call_err(struct bclient *bc, const char *method, const struct rpc_buf *b,
    struct rpc_error *err)
{
	struct bclient_msg res;

	if (bclient_call(bc, method, b != NULL ? b->sb.data : NULL,
	    b != NULL ? b->sb.size : 0, conf.call_ms, &res, err) == 0) {
		bclient_msg_free(&res);
		ck_abort_msg("%s succeeded; an error was expected", method);
	}
	return err->code;
}

void
integ_assert_err(const struct rpc_error *err, const char *what,
    enum rpc_code code, const char *needle)
{
	ck_assert_msg(err->code == code, "%s: %s (%s), expected %s", what,
	    rpc_code_name(err->code), err->message, rpc_code_name(code));
	if (needle != NULL)
		ck_assert_msg(strstr(err->message, needle) != NULL,
		    "%s: message '%s' does not name '%s'", what, err->message,
		    needle);
}

void
integ_expect_err(struct bclient *bc, const char *method,
    const struct rpc_buf *b, enum rpc_code code, const char *needle)
{
	struct rpc_error err;

	integ_call_err(bc, method, b, &err);
	integ_assert_err(&err, method, code, needle);
}

void
integ_assert_hello(struct bclient *bc, const char *component, pid_t pid)
{
	struct bclient_msg res;
	char comp[64];

	integ_call_ok(bc, "hello", NULL, &res);
	ck_assert_str_eq(integ_get_str(res.m.result, "component", comp,
	    sizeof(comp)), component);
	ck_assert_int_eq(integ_get_i64(res.m.result, "pid"), pid);
	bclient_msg_free(&res);
}

void
integ_assert_hello_at(const char *sock, const char *component, pid_t pid)
{
	struct bclient *bc = integ_connect(sock);

	integ_assert_hello(bc, component, pid);
	bclient_free(bc);
}

int64_t
integ_stat_at(const char *sock, const char *section, const char *key)
{
	struct bclient *bc = integ_connect(sock);
	int64_t v = integ_stat(bc, section, key);

	bclient_free(bc);
	return v;
}

int64_t
integ_stat(struct bclient *bc, const char *section, const char *key)
{
	struct bclient_msg res;
	const msgpack_object *o;
	int64_t v = -1;

	integ_call_ok(bc, "stats", NULL, &res);
	o = res.m.result;
	if (section != NULL)
		o = rpc_map_get(o, section);
	ck_assert_msg(rpc_obj_i64(rpc_map_get(o, key), &v) == 0,
	    "stats has no %s%s%s", section != NULL ? section : "",
	    section != NULL ? "." : "", key);
	bclient_msg_free(&res);
	return v;
}

void
integ_pack_request(struct rpc_buf *out, uint32_t msgid, const char *method,
    const struct rpc_buf *b)
{
	rpc_pack_request_head(&out->pk, msgid, method);
	if (b == NULL) {
		msgpack_pack_array(&out->pk, 0);
		return;
	}
	msgpack_pack_array(&out->pk, 1);
	msgpack_sbuffer_write(&out->sb, b->sb.data, b->sb.size);
}

int
integ_write_all(int fd, const void *p, size_t n)
{
	const char *s = p;

	while (n > 0) {
		ssize_t w = write(fd, s, n);

		if (w == -1 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		s += w;
		n -= (size_t)w;
	}
	return 0;
}

void
integ_expect_closed(const char *sock, const char *what, const void *bytes,
    size_t n, bool reset_ok)
{
	struct timeval tv = { 5, 0 };
	char err[256], buf[64];
	ssize_t r;
	int fd = sock_connect_unix(sock, 0, err, sizeof(err));

	ck_assert_msg(fd != -1, "connect %s: %s", sock, err);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	ck_assert_int_eq(write(fd, bytes, n), (ssize_t)n);
	/* EOF, with no response: the connection was dropped. */
	r = read(fd, buf, sizeof(buf));
	ck_assert_msg(r == 0 || (reset_ok && r == -1 && errno == ECONNRESET),
	    "%s: read returned %zd (%s), expected EOF", what, r,
	    r == -1 ? strerror(errno) : "data");
	close(fd);
}

/* ---- results ---- */

void
integ_assert_keys(const msgpack_object *map, const char *what,
    const char *const keys[])
{
	int i;

	ck_assert_msg(map != NULL && map->type == MSGPACK_OBJECT_MAP,
	    "%s: not a map", what);
	for (i = 0; keys[i] != NULL; i++)
		ck_assert_msg(rpc_map_get(map, keys[i]) != NULL,
		    "%s: no '%s'", what, keys[i]);
}

const msgpack_object_array *
integ_get_list(const msgpack_object *map, const char *key,
    const char *const keys[])
{
	const msgpack_object *o = rpc_map_get(map, key);
	uint32_t i;

	ck_assert_msg(o != NULL && o->type == MSGPACK_OBJECT_ARRAY,
	    "'%s' is missing or not an array", key);
	for (i = 0; keys != NULL && i < o->via.array.size; i++)
		integ_assert_keys(&o->via.array.ptr[i], key, keys);
	return &o->via.array;
}

int64_t
integ_get_i64(const msgpack_object *map, const char *key)
{
	int64_t v = 0;

	ck_assert_msg(rpc_obj_i64(rpc_map_get(map, key), &v) == 0,
	    "'%s' is missing or not an integer", key);
	return v;
}

const char *
integ_get_str(const msgpack_object *map, const char *key, char *buf,
    size_t len)
{
	static char own[256];

	if (buf == NULL) {
		buf = own;
		len = sizeof(own);
	}
	ck_assert_msg(rpc_obj_str(rpc_map_get(map, key), buf, len) == 0,
	    "'%s' is missing or not a string", key);
	return buf;
}

bool
integ_get_bool(const msgpack_object *map, const char *key)
{
	const msgpack_object *o = rpc_map_get(map, key);

	ck_assert_msg(o != NULL && o->type == MSGPACK_OBJECT_BOOLEAN,
	    "'%s' is missing or not a boolean", key);
	return o->via.boolean;
}

bool
integ_is_nil(const msgpack_object *map, const char *key)
{
	const msgpack_object *o = rpc_map_get(map, key);

	ck_assert_msg(o != NULL, "'%s' is missing", key);
	return o->type == MSGPACK_OBJECT_NIL;
}

void
integ_str_field(const msgpack_object *map, const char *key, char *buf,
    size_t len)
{
	if (rpc_obj_str(rpc_map_get(map, key), buf, len) == -1)
		buf[0] = '\0';
}

/* ---- lcmd, for the suites that drive it ---- */

pid_t
integ_start_lcmd(const char *msglog, const char *tmux_socket,
    const char *const extra[])
{
	char logflag[300], tmuxflag[300];
	const char *argv[40];
	int n = 0, i;

	snprintf(logflag, sizeof(logflag), "--message-log=%s", msglog);
	snprintf(tmuxflag, sizeof(tmuxflag), "--tmux-socket=%s", tmux_socket);
	argv[n++] = "--notify-desktop=off";
	argv[n++] = logflag;
	argv[n++] = tmuxflag;
	for (i = 0; extra != NULL && extra[i] != NULL; i++) {
		ck_assert_int_lt(n, 39);
		argv[n++] = extra[i];
	}
	argv[n] = NULL;
	return integ_start("ao-lcmd", argv);
}

void
integ_project_add(struct bclient *bc, const char *path, char *id,
    size_t idlen)
{
	struct bclient_msg res;
	struct rpc_buf b;

	rpc_buf_init(&b);
	rpc_pack_kv_str(&integ_params(&b, 1)->pk, "path", path);
	integ_call_ok(bc, "project.add", &b, &res);
	integ_str_field(res.m.result, "id", id, idlen);
	ck_assert_str_ne(id, "");
	bclient_msg_free(&res);
	rpc_buf_free(&b);
}

void
integ_session_from(const msgpack_object *m, const char *const keys[],
    struct integ_session *s)
{
	const msgpack_object *o;
	json_error_t je;
	json_t *h;

	ck_assert_msg(m != NULL && m->type == MSGPACK_OBJECT_MAP,
	    "not a session map");
	if (keys != NULL)
		integ_assert_keys(m, "session", keys);
	integ_str_field(m, "id", s->id, sizeof(s->id));
	integ_str_field(m, "state", s->state, sizeof(s->state));
	integ_str_field(m, "status", s->status, sizeof(s->status));
	integ_str_field(m, "termination_reason", s->reason, sizeof(s->reason));
	integ_str_field(m, "activity_state", s->activity, sizeof(s->activity));
	integ_str_field(m, "harness", s->harness, sizeof(s->harness));
	integ_str_field(m, "runtime", s->runtime, sizeof(s->runtime));
	integ_str_field(m, "branch", s->branch, sizeof(s->branch));
	integ_str_field(m, "workspace_path", s->workspace,
	    sizeof(s->workspace));
	integ_str_field(m, "runtime_handle", s->handle, sizeof(s->handle));
	integ_str_field(m, "worktree", s->worktree_note,
	    sizeof(s->worktree_note));
	s->pid = 0;
	if (s->handle[0] != '\0' &&
	    (h = json_loads(s->handle, 0, &je)) != NULL) {
		s->pid = (pid_t)json_integer_value(json_object_get(h, "pid"));
		json_decref(h);
	}
	o = rpc_map_get(m, "is_alive");
	ck_assert_msg(o != NULL && o->type == MSGPACK_OBJECT_BOOLEAN,
	    "is_alive is not a bool");
	s->alive = o->via.boolean;
	o = rpc_map_get(m, "pr");
	s->pr_nil = o != NULL && o->type == MSGPACK_OBJECT_NIL;
}

/* Calls method with b; its answer is session id, read into s. */
static void
session_answer(struct bclient *bc, const char *method, const struct rpc_buf *b,
    const char *id, const char *const keys[], struct integ_session *s)
{
	struct bclient_msg res;

	integ_call_ok(bc, method, b, &res);
	integ_session_from(res.m.result, keys, s);
	ck_assert_str_eq(s->id, id);
	bclient_msg_free(&res);
}

void
integ_session_call(struct bclient *bc, const char *method, const char *id,
    const char *const keys[], struct integ_session *s)
{
	struct rpc_buf b;

	rpc_buf_init(&b);
	rpc_pack_kv_str(&integ_params(&b, 1)->pk, "id", id);
	session_answer(bc, method, &b, id, keys, s);
	rpc_buf_free(&b);
}

void
integ_id_err(struct bclient *bc, const char *method, const char *id,
    enum rpc_code code)
{
	struct rpc_buf b;

	rpc_buf_init(&b);
	rpc_pack_kv_str(&integ_params(&b, 1)->pk, "id", id);
	integ_expect_err(bc, method, &b, code, NULL);
	rpc_buf_free(&b);
}

void
integ_pack_observe(struct rpc_buf *b, const char *sid,
    const struct integ_obs *o)
{
	int i;

	integ_params(b, 2 + (o->nchecks >= 0) + (o->ncomments >= 0));
	rpc_pack_kv_str(&b->pk, "session_id", sid);
	rpc_pack_str(&b->pk, "pr");
	msgpack_pack_map(&b->pk, 2 + (o->state != NULL) + (o->review != NULL) +
	    (o->ci != NULL) + (o->merge != NULL));
	rpc_pack_kv_str(&b->pk, "url", o->url);
	rpc_pack_kv_i64(&b->pk, "number", 7);
	if (o->state != NULL)
		rpc_pack_kv_str(&b->pk, "state", o->state);
	if (o->review != NULL)
		rpc_pack_kv_str(&b->pk, "review_decision", o->review);
	if (o->ci != NULL)
		rpc_pack_kv_str(&b->pk, "ci_state", o->ci);
	if (o->merge != NULL)
		rpc_pack_kv_str(&b->pk, "mergeability", o->merge);
	if (o->nchecks >= 0) {
		rpc_pack_str(&b->pk, "checks");
		msgpack_pack_array(&b->pk, (uint32_t)o->nchecks);
		for (i = 0; i < o->nchecks; i++) {
			const struct integ_check *c = &o->checks[i];

			msgpack_pack_map(&b->pk, 3 + (c->log_tail != NULL));
			rpc_pack_kv_str(&b->pk, "name", c->name);
			rpc_pack_kv_str(&b->pk, "commit_hash", c->commit);
			rpc_pack_kv_str(&b->pk, "status", c->status);
			if (c->log_tail != NULL)
				rpc_pack_kv_str(&b->pk, "log_tail",
				    c->log_tail);
		}
	}
	if (o->ncomments >= 0) {
		rpc_pack_str(&b->pk, "comments");
		msgpack_pack_array(&b->pk, (uint32_t)o->ncomments);
		for (i = 0; i < o->ncomments; i++) {
			const struct integ_comment *c = &o->comments[i];

			msgpack_pack_map(&b->pk, 6);
			rpc_pack_kv_str(&b->pk, "comment_id", c->id);
			rpc_pack_kv_str(&b->pk, "author", "reviewer1");
			rpc_pack_kv_str(&b->pk, "file", "src/main.c");
			rpc_pack_kv_i64(&b->pk, "line", 10 + i);
			rpc_pack_kv_str(&b->pk, "body", c->body);
			rpc_pack_kv_bool(&b->pk, "resolved", c->resolved);
		}
	}
}

void
integ_observe(struct bclient *bc, const char *sid, const struct integ_obs *o,
    const char *const keys[], struct integ_session *s)
{
	struct rpc_buf b;

	rpc_buf_init(&b);
	integ_pack_observe(&b, sid, o);
	session_answer(bc, "pr.observe", &b, sid, keys, s);
	rpc_buf_free(&b);
}

int
integ_msglog_find(const char *path, const char *sid, const char *needle,
    int nth, char *msg, size_t len, bool *delivered)
{
	char *all = testlib_read_file(path), *line, *save = NULL;
	int n = 0;

	if (msg != NULL)
		msg[0] = '\0';
	if (all == NULL)
		return 0;
	for (line = strtok_r(all, "\n", &save); line != NULL;
	    line = strtok_r(NULL, "\n", &save)) {
		json_error_t je;
		json_t *j = json_loads(line, 0, &je);
		const char *s, *m;

		ck_assert_msg(j != NULL, "message log line is not JSON: %s",
		    line);
		s = json_string_value(json_object_get(j, "session_id"));
		m = json_string_value(json_object_get(j, "message"));
		ck_assert_msg(s != NULL && m != NULL, "message log line lacks "
		    "session_id or message: %s", line);
		ck_assert_msg(json_is_integer(json_object_get(j, "at")) &&
		    json_is_boolean(json_object_get(j, "delivered")),
		    "message log line lacks at or delivered: %s", line);
		if (strcmp(s, sid) == 0 && strstr(m, needle) != NULL) {
			if (n == nth && msg != NULL)
				snprintf(msg, len, "%s", m);
			if (n == nth && delivered != NULL)
				*delivered = json_is_true(json_object_get(j,
				    "delivered"));
			n++;
		}
		json_decref(j);
	}
	free(all);
	return n;
}

/* ---- waiting and processes ---- */

char
integ_proc_state(pid_t pid)
{
	char path[64], *st, *p;
	char state = '\0';

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if ((st = testlib_read_file(path)) == NULL)
		return '\0';
	/* The state follows the command name, which may hold ") ". */
	if ((p = strrchr(st, ')')) != NULL && p[1] == ' ')
		state = p[2];
	free(st);
	return state;
}

bool
integ_pid_gone(pid_t pid)
{
	char state;

	if (kill(pid, 0) == -1 && errno == ESRCH)
		return true;
	state = integ_proc_state(pid);
	return state == '\0' || state == 'Z' || state == 'X';
}

void
integ_wait_pid_gone(pid_t pid, int timeout_ms, const char *what)
{
	INTEG_WAIT(integ_pid_gone(pid), timeout_ms, 10,
	    "%s (pid %d) is still running", what, (int)pid);
}

int64_t
integ_rss_kib(pid_t pid)
{
	char path[64], *all, *p;
	int64_t kib = -1;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	if ((all = testlib_read_file(path)) == NULL)
		return -1;
	if ((p = strstr(all, "\nVmRSS:")) != NULL)
		kib = strtoll(p + 7, NULL, 10);
	free(all);
	return kib;
}

bool
integ_cwd_in(pid_t pid, const char *top)
{
	char path[64], cwd[4096];
	size_t len = strlen(top);
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%d/cwd", (int)pid);
	if ((n = readlink(path, cwd, sizeof(cwd) - 1)) <= 0)
		return false;
	cwd[n] = '\0';
	return strncmp(cwd, top, len) == 0 &&
	    (cwd[len] == '/' || cwd[len] == '\0');
}

void
integ_kill_by_cwd(const char *top)
{
	struct dirent *de;
	DIR *d;

	if ((d = opendir("/proc")) == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		pid_t pid = (pid_t)atoi(de->d_name);

		if (pid > 1 && pid != getpid() && integ_cwd_in(pid, top))
			kill(pid, SIGKILL);
	}
	closedir(d);
}
