/*
 * Agent runtimes.  Both outlive lcmd: a tmux session belongs to the tmux
 * server, and a process agent is double-forked into its own session
 * (setsid), adopted by init.  Every tmux call is an asynchronous child with
 * a deadline; the process runtime needs no helper process at all.
 *
 * tmux:    handle {"tmux_session": NAME, "socket": S|null}; send-keys -l for a
 *          short single line, load-buffer + paste-buffer otherwise, then Enter.
 * process: handle {"pid", "start_time", "fifo", "log"}; stdin is a FIFO that
 *          send writes (text + newline); stdout/stderr append to the log.  The
 *          start time (from /proc) tells a reused pid from the agent.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <bsd/sys/queue.h>
#include <jansson.h>

#include "common/aotime.h"
#include "common/log.h"
#include "common/sock.h"
#include "common/subprocess.h"
#include "common/xmalloc.h"
#include "lcmd/lcmd.h"

#define TMUX_TIMEOUT_MS		10000
#define SEND_KEYS_MAX		512	/* longer text goes through a paste buffer */
#define STOP_GRACE_MS		5000
#define FIFO_WRITE_MS		5000

/*
 * tmux gives '.' and ':' meaning in targets, so other characters are
 * escaped as "_xx" (hex) and '_' as "__": distinct ids, distinct names.
 */
void
runtime_tmux_name(const char *id, char *buf, size_t len)
{
	size_t i, n;

	n = (size_t)snprintf(buf, len, "ao-");
	for (i = 0; id[i] != '\0' && n + 4 < len; i++) {
		unsigned char c = (unsigned char)id[i];

		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '-')
			buf[n++] = (char)c;
		else if (c == '_') {
			buf[n++] = '_';
			buf[n++] = '_';
		} else
			n += (size_t)snprintf(buf + n, len - n, "_%02x", c);
	}
	buf[n] = '\0';
}

/* Deferred callbacks, so cb never runs inside the call that started it. */
struct later {
	runtime_cb cb;
	void *arg;
	char *error, *handle;
};

static void
later_cb(evutil_socket_t fd, short what, void *arg)
{
	struct later *l = arg;

	(void)fd;
	(void)what;
	l->cb(l->arg, l->error, l->handle);
	free(l->error);
	free(l->handle);
	free(l);
}

static void
finish(struct lcmd_ctx *ctx, runtime_cb cb, void *arg, const char *error,
    const char *handle)
{
	struct later *l = xcalloc(1, sizeof(*l));

	l->cb = cb;
	l->arg = arg;
	l->error = error != NULL ? xstrdup(error) : NULL;
	l->handle = handle != NULL ? xstrdup(handle) : NULL;
	if (event_base_once(ctx->base, -1, EV_TIMEOUT, later_cb, l, NULL) == -1)
		fatalx("event_base_once failed");
}

/* ---- tmux ---- */

/* A sequence of tmux commands run one after another. */
struct tmuxjob {
	struct lcmd_ctx *ctx;
	char ***cmds;		/* each a NULL-terminated argv */
	char **inputs;		/* stdin per command, or NULL */
	int n, i;
	bool ignore_missing;	/* "can't find session" is success (stop) */
	char *socket;		/* the session's tmux server, or NULL */
	char *handle;		/* reported on success */
	runtime_cb cb;
	void *arg;
};

static void
tmuxjob_free(struct tmuxjob *t)
{
	int i, k;

	for (i = 0; i < t->n; i++) {
		for (k = 0; t->cmds[i][k] != NULL; k++)
			free(t->cmds[i][k]);
		free(t->cmds[i]);
		free(t->inputs[i]);
	}
	free(t->cmds);
	free(t->inputs);
	free(t->socket);
	free(t->handle);
	free(t);
}

static struct tmuxjob *
tmuxjob_new(struct lcmd_ctx *ctx, runtime_cb cb, void *arg)
{
	struct tmuxjob *t = xcalloc(1, sizeof(*t));

	t->ctx = ctx;
	t->cb = cb;
	t->arg = arg;
	t->cmds = xcalloc(8, sizeof(*t->cmds));
	t->inputs = xcalloc(8, sizeof(*t->inputs));
	return t;
}

/*
 * Appends "tmux [-L name | -S path] args..." (args NULL-terminated).  The
 * server is the job's (from a session's handle), else the configured one.
 */
static void
tmux_add(struct tmuxjob *t, const char *input, const char *const *args)
{
	const char *sock = t->socket != NULL ? t->socket : t->ctx->cfg.tmux_socket;
	char **argv;
	int n = 0, i, nargs = 0;

	while (args[nargs] != NULL)
		nargs++;
	argv = xcalloc((size_t)nargs + 4, sizeof(*argv));
	argv[n++] = xstrdup("tmux");
	if (sock != NULL && sock[0] != '\0') {
		argv[n++] = xstrdup(strchr(sock, '/') != NULL ? "-S" : "-L");
		argv[n++] = xstrdup(sock);
	}
	for (i = 0; args[i] != NULL; i++)
		argv[n++] = xstrdup(args[i]);
	t->cmds[t->n] = argv;
	t->inputs[t->n] = input != NULL ? xstrdup(input) : NULL;
	t->n++;
}

static void tmuxjob_run(struct tmuxjob *);

static void
tmux_done(const struct subprocess_result *r, void *arg)
{
	struct tmuxjob *t = arg;
	char desc[160];

	if (r->start_failed || r->timed_out || !WIFEXITED(r->status) ||
	    WEXITSTATUS(r->status) != 0) {
		if (t->ignore_missing && r->err_len > 0 &&
		    (strstr(r->err, "can't find session") != NULL ||
		    strstr(r->err, "no server running") != NULL ||
		    strstr(r->err, "error connecting") != NULL)) {
			t->i++;
			tmuxjob_run(t);
			return;
		}
		subprocess_describe(r, desc, sizeof(desc));
		{
			char *msg = xasprintf("tmux %s: %s%s%.*s", t->cmds[t->i][1][0] == '-' ?
			    t->cmds[t->i][3] : t->cmds[t->i][1], desc,
			    r->err_len > 0 ? ": " : "", (int)strcspn(r->err, "\n"), r->err);

			t->cb(t->arg, msg, NULL);
			free(msg);
		}
		tmuxjob_free(t);
		return;
	}
	t->i++;
	tmuxjob_run(t);
}

static void
tmuxjob_run(struct tmuxjob *t)
{
	struct subprocess_opts o = { 0 };
	char err[256];

	if (t->i == t->n) {
		t->cb(t->arg, NULL, t->handle);
		tmuxjob_free(t);
		return;
	}
	o.argv = (const char *const *)t->cmds[t->i];
	o.input = t->inputs[t->i];
	o.input_len = t->inputs[t->i] != NULL ? strlen(t->inputs[t->i]) : 0;
	o.timeout_ms = TMUX_TIMEOUT_MS;
	o.capture_max = 8192;
	if (subprocess_start(t->ctx->base, &o, tmux_done, t, err, sizeof(err)) == NULL) {
		char *msg = xasprintf("running tmux: %s", err);

		finish(t->ctx, t->cb, t->arg, msg, NULL);
		free(msg);
		tmuxjob_free(t);
	}
}

static char *
env_arg(const char *key, const char *val)
{
	return xasprintf("%s=%s", key, val != NULL ? val : "");
}

static void
tmux_start(struct lcmd_ctx *ctx, const struct runtime_spec *sp, runtime_cb cb, void *arg)
{
	struct tmuxjob *t = tmuxjob_new(ctx, cb, arg);
	const char **args;
	char name[400], *env[4];
	json_t *h;
	int n = 0, i, argc = 0;

	while (sp->argv[argc] != NULL)
		argc++;
	args = xcalloc((size_t)argc + 20, sizeof(*args));

	runtime_tmux_name(sp->session_id, name, sizeof(name));
	env[0] = env_arg("AO_SESSION_ID", sp->session_id);
	env[1] = env_arg("AO_PROJECT_ID", sp->project_id);
	env[2] = env_arg("AO_ISSUE_ID", sp->issue_id);
	env[3] = env_arg("AO_LCMD_SOCKET", ctx->lcmd_socket);
	args[n++] = "new-session";
	args[n++] = "-d";
	args[n++] = "-s";
	args[n++] = name;
	args[n++] = "-c";
	args[n++] = sp->cwd;
	for (i = 0; i < 4; i++) {
		args[n++] = "-e";
		args[n++] = env[i];
	}
	args[n++] = "--";
	for (i = 0; i < argc; i++)
		args[n++] = sp->argv[i];
	args[n] = NULL;
	tmux_add(t, NULL, args);
	free(args);
	for (i = 0; i < 4; i++)
		free(env[i]);
	h = json_pack("{s:s, s:s?}", "tmux_session", name, "socket",
	    ctx->cfg.tmux_socket != NULL && ctx->cfg.tmux_socket[0] != '\0' ?
	    ctx->cfg.tmux_socket : NULL);
	t->handle = json_dumps(h, JSON_COMPACT);
	json_decref(h);
	tmuxjob_run(t);
}

/* The value of key in a JSON handle, or NULL; caller frees. */
static char *
handle_str(const char *handle, const char *key)
{
	json_error_t jerr;
	json_t *h = json_loads(handle != NULL ? handle : "", 0, &jerr);
	json_t *v = json_object_get(h, key);
	char *s = json_is_string(v) ? xstrdup(json_string_value(v)) : NULL;

	json_decref(h);
	return s;
}

static int64_t
handle_int(const char *handle, const char *key)
{
	json_error_t jerr;
	json_t *h = json_loads(handle != NULL ? handle : "", 0, &jerr);
	int64_t v = json_integer_value(json_object_get(h, key));

	json_decref(h);
	return v;
}

static void
tmux_send(struct lcmd_ctx *ctx, const char *handle, const char *text, runtime_cb cb,
    void *arg)
{
	char *name = handle_str(handle, "tmux_session"), target[450], buf[450];
	struct tmuxjob *t;

	if (name == NULL) {
		finish(ctx, cb, arg, "the session has no tmux runtime handle", NULL);
		return;
	}
	t = tmuxjob_new(ctx, cb, arg);
	/* The server the session was started on, whatever the setting is now. */
	t->socket = handle_str(handle, "socket");
	snprintf(target, sizeof(target), "=%s:", name);
	snprintf(buf, sizeof(buf), "ao-send-%s", name);
	/*
	 * send-keys for a short single line, unless it ends in ';', which tmux
	 * reads as a command separator (and "\;" as an escaped one): the paste
	 * buffer takes such text verbatim from stdin.
	 */
	if (strlen(text) <= SEND_KEYS_MAX && strchr(text, '\n') == NULL &&
	    strchr(text, '\r') == NULL && text[0] != '\0' &&
	    text[strlen(text) - 1] != ';') {
		const char *keys[] = { "send-keys", "-t", target, "-l", "--", text, NULL };

		tmux_add(t, NULL, keys);
	} else {
		const char *load[] = { "load-buffer", "-b", buf, "-", NULL };
		const char *paste[] = { "paste-buffer", "-d", "-p", "-b", buf, "-t",
			target, NULL };

		tmux_add(t, text, load);
		tmux_add(t, NULL, paste);
	}
	{
		const char *enter[] = { "send-keys", "-t", target, "Enter", NULL };

		tmux_add(t, NULL, enter);
	}
	free(name);
	tmuxjob_run(t);
}

static void
tmux_stop(struct lcmd_ctx *ctx, const char *handle, runtime_cb cb, void *arg)
{
	char *name = handle_str(handle, "tmux_session"), target[450];
	struct tmuxjob *t;

	if (name == NULL) {
		finish(ctx, cb, arg, NULL, NULL);	/* nothing was started */
		return;
	}
	t = tmuxjob_new(ctx, cb, arg);
	t->ignore_missing = true;
	t->socket = handle_str(handle, "socket");
	snprintf(target, sizeof(target), "=%s", name);
	{
		const char *kill[] = { "kill-session", "-t", target, NULL };

		tmux_add(t, NULL, kill);
	}
	free(name);
	tmuxjob_run(t);
}

/* ---- process ---- */

/* Field 22 of /proc/<pid>/stat: the start time in clock ticks since boot. */
static int64_t
proc_start_time(pid_t pid)
{
	char path[64], buf[1024], *p;
	int fd, i;
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	/* The command name may contain spaces: count fields after its ')'. */
	if ((p = strrchr(buf, ')')) == NULL)
		return -1;
	p += 2;	/* field 3 */
	if (*p == 'Z' || *p == 'X')
		return -1;	/* exited, not yet reaped */
	for (i = 3; i < 22 && p != NULL; i++)
		if ((p = strchr(p, ' ')) != NULL)
			p++;
	return p != NULL ? strtoll(p, NULL, 10) : -1;
}

/* Whether the agent of a process handle is alive: same pid, same start. */
static bool
proc_alive(const char *handle, pid_t *pidp)
{
	pid_t pid = (pid_t)handle_int(handle, "pid");
	int64_t start = handle_int(handle, "start_time");

	if (pidp != NULL)
		*pidp = pid;
	return pid > 1 && start > 0 && proc_start_time(pid) == start;
}

static void
proc_start(struct lcmd_ctx *ctx, const struct runtime_spec *sp, runtime_cb cb, void *arg)
{
	char agents[4200], logs[4200], fifo[4400], logpath[4400], err[256], *msg;
	int status_pipe[2], pid_pipe[2], e = 0;
	pid_t child, agent = -1;
	ssize_t n;
	json_t *h;
	char *hs;

	snprintf(agents, sizeof(agents), "%s/agents", ctx->runtime_dir);
	snprintf(logs, sizeof(logs), "%s/logs", ctx->data_dir);
	snprintf(fifo, sizeof(fifo), "%s/%s.in", agents, sp->session_id);
	snprintf(logpath, sizeof(logpath), "%s/%s.log", logs, sp->session_id);
	if (sock_mkdir_private(agents, err, sizeof(err)) == -1 ||
	    sock_mkdir_private(logs, err, sizeof(err)) == -1) {
		msg = xasprintf("process runtime: %s", err);
		finish(ctx, cb, arg, msg, NULL);
		free(msg);
		return;
	}
	if (mkfifo(fifo, 0600) == -1 && errno != EEXIST) {
		msg = xasprintf("process runtime: mkfifo %s: %s", fifo, strerror(errno));
		finish(ctx, cb, arg, msg, NULL);
		free(msg);
		return;
	}
	if (pipe2(status_pipe, O_CLOEXEC) == -1 || pipe2(pid_pipe, O_CLOEXEC) == -1)
		fatal("pipe2");
	fflush(NULL);
	if ((child = fork()) == -1) {
		msg = xasprintf("process runtime: fork: %s", strerror(errno));
		finish(ctx, cb, arg, msg, NULL);
		free(msg);
		close(status_pipe[0]);
		close(status_pipe[1]);
		close(pid_pipe[0]);
		close(pid_pipe[1]);
		return;
	}
	if (child == 0) {
		pid_t g;
		sigset_t none;
		int fd;

		if ((g = fork()) != 0) {
			if (write(pid_pipe[1], &g, sizeof(g)) != sizeof(g))
				_exit(1);
			_exit(g > 0 ? 0 : 1);
		}
		/*
		 * The agent: orphaned to init, leader of its own session and
		 * process group (so a stop reaches its children), stdin the FIFO,
		 * output the log.
		 */
		setsid();
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		signal(SIGPIPE, SIG_DFL);
		/* O_RDWR: the agent never sees EOF between two senders. */
		if ((fd = open(fifo, O_RDWR)) == -1 || dup2(fd, 0) == -1)
			goto fail;
		if (fd > 2)
			close(fd);
		if ((fd = open(logpath, O_WRONLY | O_APPEND | O_CREAT, 0600)) == -1 ||
		    dup2(fd, 1) == -1 || dup2(fd, 2) == -1)
			goto fail;
		if (fd > 2)
			close(fd);
		if (chdir(sp->cwd) == -1)
			goto fail;
		setenv("AO_SESSION_ID", sp->session_id, 1);
		setenv("AO_PROJECT_ID", sp->project_id != NULL ? sp->project_id : "", 1);
		setenv("AO_ISSUE_ID", sp->issue_id != NULL ? sp->issue_id : "", 1);
		setenv("AO_LCMD_SOCKET", ctx->lcmd_socket, 1);
		/*
		 * Last, just before exec: with the lower limit the open()s above
		 * could fail (EMFILE) while lcmd holds more descriptors.
		 */
		subprocess_child_limits();
		execvp(sp->argv[0], (char *const *)sp->argv);
fail:
		e = errno;
		if (write(status_pipe[1], &e, sizeof(e)) < 0)
			_exit(127);
		_exit(127);
	}
	close(status_pipe[1]);
	close(pid_pipe[1]);
	waitpid(child, NULL, 0);	/* the middle child exits at once */
	if (read(pid_pipe[0], &agent, sizeof(agent)) != sizeof(agent))
		agent = -1;
	close(pid_pipe[0]);
	/* EOF: exec succeeded (the pipe is close-on-exec); else the errno. */
	do
		n = read(status_pipe[0], &e, sizeof(e));
	while (n == -1 && errno == EINTR);
	close(status_pipe[0]);
	if (agent <= 0 || n == sizeof(e)) {
		msg = xasprintf("starting %s: %s", sp->argv[0], agent <= 0 ?
		    "fork failed" : strerror(e));
		unlink(fifo);
		finish(ctx, cb, arg, msg, NULL);
		free(msg);
		return;
	}
	h = json_pack("{s:i, s:I, s:s, s:s}", "pid", (int)agent, "start_time",
	    (json_int_t)proc_start_time(agent), "fifo", fifo, "log", logpath);
	hs = json_dumps(h, JSON_COMPACT);
	json_decref(h);
	finish(ctx, cb, arg, NULL, hs);
	free(hs);
}

/*
 * A message on its way into a process agent's FIFO.  What fits in the pipe
 * goes at once; the rest is written as the agent reads, from the event
 * loop, until FIFO_WRITE_MS passes (then the send fails: the agent is not
 * reading its input).
 */
struct fifo_write {
	struct lcmd_ctx *ctx;
	int fd;
	char *data;
	size_t len, off;
	struct event *ev, *timer;
	runtime_cb cb;
	void *arg;
	LIST_ENTRY(fifo_write) entry;
};
static LIST_HEAD(, fifo_write) fifo_writes = LIST_HEAD_INITIALIZER(fifo_writes);

static void
fifo_write_free(struct fifo_write *w)
{
	LIST_REMOVE(w, entry);
	event_free(w->ev);
	event_free(w->timer);
	close(w->fd);
	free(w->data);
	free(w);
}

static void
fifo_write_end(struct fifo_write *w, const char *error)
{
	runtime_cb cb = w->cb;
	void *arg = w->arg;

	fifo_write_free(w);
	cb(arg, error, NULL);
}

/* Writes what the pipe takes; 1 when all is written, 0 for more, -1 on error. */
static int
fifo_write_some(struct fifo_write *w, char *err, size_t errlen)
{
	while (w->off < w->len) {
		ssize_t n = write(w->fd, w->data + w->off, w->len - w->off);

		if (n > 0) {
			w->off += (size_t)n;
			continue;
		}
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return 0;
		snprintf(err, errlen, "writing to the agent: %s", strerror(errno));
		return -1;
	}
	return 1;
}

static void
fifo_writable(evutil_socket_t fd, short what, void *arg)
{
	struct fifo_write *w = arg;
	char err[160];
	int r;

	(void)fd;
	(void)what;
	if ((r = fifo_write_some(w, err, sizeof(err))) != 0)
		fifo_write_end(w, r == 1 ? NULL : err);
}

static void
fifo_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct fifo_write *w = arg;
	char err[160];

	(void)fd;
	(void)what;
	snprintf(err, sizeof(err), "the agent did not read its input (%zu of %zu "
	    "bytes delivered)", w->off, w->len);
	fifo_write_end(w, err);
}

static void
proc_send(struct lcmd_ctx *ctx, const char *handle, const char *text, runtime_cb cb,
    void *arg)
{
	char *fifo = handle_str(handle, "fifo"), err[300];
	struct fifo_write *w;
	struct timeval tv;
	int fd, r;

	if (fifo == NULL || !proc_alive(handle, NULL)) {
		free(fifo);
		finish(ctx, cb, arg, "the agent process is not running", NULL);
		return;
	}
	if ((fd = open(fifo, O_WRONLY | O_NONBLOCK | O_CLOEXEC)) == -1) {
		snprintf(err, sizeof(err), "opening %s: %s", fifo, strerror(errno));
		free(fifo);
		finish(ctx, cb, arg, err, NULL);
		return;
	}
	free(fifo);
	w = xcalloc(1, sizeof(*w));
	w->ctx = ctx;
	w->fd = fd;
	w->data = xasprintf("%s\n", text);
	w->len = strlen(w->data);
	w->cb = cb;
	w->arg = arg;
	if ((r = fifo_write_some(w, err, sizeof(err))) != 0) {
		/* Done (or failed) at once: still answer from the loop. */
		close(w->fd);
		finish(ctx, cb, arg, r == 1 ? NULL : err, NULL);
		free(w->data);
		free(w);
		return;
	}
	w->ev = event_new(ctx->base, fd, EV_WRITE | EV_PERSIST, fifo_writable, w);
	w->timer = evtimer_new(ctx->base, fifo_timeout, w);
	LIST_INSERT_HEAD(&fifo_writes, w, entry);
	event_add(w->ev, NULL);
	aotime_tv(&tv, FIFO_WRITE_MS);
	evtimer_add(w->timer, &tv);
}

/* Agents given SIGTERM, waiting for the grace period to end. */
struct killer {
	pid_t pid;
	int64_t start;
	struct event *ev;
	LIST_ENTRY(killer) entry;
};
static LIST_HEAD(, killer) killers = LIST_HEAD_INITIALIZER(killers);

static void
kill_cb(evutil_socket_t fd, short what, void *arg)
{
	struct killer *k = arg;

	(void)fd;
	(void)what;
	/*
	 * The agent leads its process group (setsid); a pid in use as a group
	 * id is not reused, so whatever is left of the group is the agent's.
	 */
	if (proc_start_time(k->pid) == k->start || kill(-k->pid, 0) == 0) {
		log_info("agent pid %d: its group outlived SIGTERM for %d ms: SIGKILL",
		    (int)k->pid, STOP_GRACE_MS);
		kill(-k->pid, SIGKILL);
		if (proc_start_time(k->pid) == k->start)
			kill(k->pid, SIGKILL);
	}
	LIST_REMOVE(k, entry);
	event_free(k->ev);
	free(k);
}

void
runtime_shutdown(void)
{
	struct killer *k;
	struct fifo_write *w;

	/* lcmd is exiting: messages still being written are abandoned. */
	while ((w = LIST_FIRST(&fifo_writes)) != NULL)
		fifo_write_free(w);
	/* Stops still in their grace period end now. */
	while ((k = LIST_FIRST(&killers)) != NULL) {
		if (proc_start_time(k->pid) == k->start || kill(-k->pid, 0) == 0)
			kill(-k->pid, SIGKILL);
		LIST_REMOVE(k, entry);
		event_free(k->ev);
		free(k);
	}
}

static void
proc_stop(struct lcmd_ctx *ctx, const char *handle, runtime_cb cb, void *arg)
{
	char *fifo = handle_str(handle, "fifo");
	struct killer *k;
	struct timeval tv;
	pid_t pid;

	if (proc_alive(handle, &pid)) {
		kill(-pid, SIGTERM);
		kill(pid, SIGTERM);
		k = xcalloc(1, sizeof(*k));
		k->pid = pid;
		k->start = handle_int(handle, "start_time");
		k->ev = evtimer_new(ctx->base, kill_cb, k);
		LIST_INSERT_HEAD(&killers, k, entry);
		aotime_tv(&tv, STOP_GRACE_MS);
		evtimer_add(k->ev, &tv);
	}
	if (fifo != NULL)
		unlink(fifo);
	free(fifo);
	finish(ctx, cb, arg, NULL, NULL);
}

/* ---- dispatch ---- */

void
runtime_start(struct lcmd_ctx *ctx, const struct runtime_spec *sp, runtime_cb cb,
    void *arg)
{
	if (sp->argv == NULL || sp->argv[0] == NULL || sp->argv[0][0] == '\0')
		finish(ctx, cb, arg, "no command to run", NULL);
	else if (strcmp(sp->kind, "process") == 0)
		proc_start(ctx, sp, cb, arg);
	else
		tmux_start(ctx, sp, cb, arg);
}

void
runtime_send(struct lcmd_ctx *ctx, const char *kind, const char *handle,
    const char *text, runtime_cb cb, void *arg)
{
	if (handle == NULL || handle[0] == '\0')
		finish(ctx, cb, arg, "the session has no runtime (not started)", NULL);
	else if (strcmp(kind, "process") == 0)
		proc_send(ctx, handle, text, cb, arg);
	else
		tmux_send(ctx, handle, text, cb, arg);
}

void
runtime_stop(struct lcmd_ctx *ctx, const char *kind, const char *handle,
    runtime_cb cb, void *arg)
{
	if (handle == NULL || handle[0] == '\0')
		finish(ctx, cb, arg, NULL, NULL);
	else if (strcmp(kind, "process") == 0)
		proc_stop(ctx, handle, cb, arg);
	else
		tmux_stop(ctx, handle, cb, arg);
}
