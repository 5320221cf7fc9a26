#include "common/subprocess.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/aotime.h"
#include "common/xmalloc.h"

#define CAPTURE_DEFAULT (64 * 1024)

extern char **environ;

struct capture {
	int fd;
	struct event *ev;
	char *buf;
	size_t len, max;
	bool truncated;
};

struct subprocess {
	struct event_base *base;
	pid_t pid;
	int pidfd;
	struct event *exit_ev, *timer_ev, *in_ev;
	int in_fd;
	char *input;
	size_t input_len, input_off;
	struct capture out, err;
	subprocess_cb cb;
	void *arg;
	bool timed_out;
	int64_t started_ms;
};

static int
pidfd_open_compat(pid_t pid)
{
	return (int)syscall(SYS_pidfd_open, pid, 0);
}

static void
capture_drain(struct capture *c)
{
	char tmp[16384];
	ssize_t n;

	while (c->fd != -1) {
		n = read(c->fd, tmp, sizeof(tmp));
		if (n > 0) {
			size_t take = (size_t)n;

			if (c->len + take > c->max) {
				take = c->max - c->len;
				c->truncated = true;
			}
			memcpy(c->buf + c->len, tmp, take);
			c->len += take;
			continue;
		}
		if (n == -1 && errno == EINTR)
			continue;
		if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) {
			event_del(c->ev);
			close(c->fd);
			c->fd = -1;
		}
		return;
	}
}

static void
capture_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	capture_drain(arg);
}

static void
capture_close(struct capture *c)
{
	if (c->ev != NULL)
		event_free(c->ev);
	if (c->fd != -1)
		close(c->fd);
	free(c->buf);
}

static void
input_close(struct subprocess *sp)
{
	if (sp->in_ev != NULL) {
		event_free(sp->in_ev);
		sp->in_ev = NULL;
	}
	if (sp->in_fd != -1) {
		close(sp->in_fd);
		sp->in_fd = -1;
	}
}

static void
input_cb(evutil_socket_t fd, short what, void *arg)
{
	struct subprocess *sp = arg;
	ssize_t n;

	(void)fd;
	(void)what;
	while (sp->input_off < sp->input_len) {
		n = write(sp->in_fd, sp->input + sp->input_off,
		    sp->input_len - sp->input_off);
		if (n > 0) {
			sp->input_off += (size_t)n;
			continue;
		}
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		break;		/* EPIPE: the child does not read its input */
	}
	input_close(sp);
}

static void
subprocess_free(struct subprocess *sp)
{
	input_close(sp);
	capture_close(&sp->out);
	capture_close(&sp->err);
	if (sp->exit_ev != NULL)
		event_free(sp->exit_ev);
	if (sp->timer_ev != NULL)
		event_free(sp->timer_ev);
	if (sp->pidfd != -1)
		close(sp->pidfd);
	free(sp->input);
	free(sp);
}

static void
exit_cb(evutil_socket_t fd, short what, void *arg)
{
	struct subprocess *sp = arg;
	struct subprocess_result r;
	int status;

	(void)fd;
	(void)what;
	if (waitpid(sp->pid, &status, WNOHANG) != sp->pid)
		return;		/* not yet: pidfd readiness is level-triggered */
	/* What the child wrote before exiting is in the pipes: take it. */
	capture_drain(&sp->out);
	capture_drain(&sp->err);
	memset(&r, 0, sizeof(r));
	r.pid = sp->pid;
	r.timed_out = sp->timed_out;
	r.elapsed_ms = aotime_mono_ms() - sp->started_ms;
	r.out = sp->out.buf;
	r.out_len = sp->out.len;
	r.out_truncated = sp->out.truncated;
	r.err = sp->err.buf;
	r.err_len = sp->err.len;
	r.err_truncated = sp->err.truncated;
	sp->out.buf[sp->out.len] = '\0';
	sp->err.buf[sp->err.len] = '\0';
	/* exit 127 with the marker on stderr is how the child reports exec failure */
	if (WIFEXITED(status) && WEXITSTATUS(status) == 127 &&
	    strncmp(sp->err.buf, "\x01" "exec:", 6) == 0) {
		r.start_failed = true;
		r.start_errno = atoi(sp->err.buf + 6);
		r.err_len = 0;
		sp->err.buf[0] = '\0';
	}
	r.status = status;
	sp->cb(&r, sp->arg);
	subprocess_free(sp);
}

static void
timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct subprocess *sp = arg;

	(void)fd;
	(void)what;
	sp->timed_out = true;
	kill(-sp->pid, SIGKILL);
	kill(sp->pid, SIGKILL);
}

static rlim_t child_nofile;	/* 0: inherited */

void
subprocess_set_child_nofile(rlim_t soft)
{
	child_nofile = soft;
}

void
subprocess_child_limits(void)
{
	struct rlimit rl;

	if (child_nofile != 0 && getrlimit(RLIMIT_NOFILE, &rl) == 0) {
		rl.rlim_cur = child_nofile;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

/* The environment for the child: environ with opts->env overriding. */
static char **
child_env(const char *const *extra)
{
	size_t n = 0, m = 0, i, j, k = 0;
	char **env;

	while (environ[n] != NULL)
		n++;
	while (extra != NULL && extra[m] != NULL)
		m++;
	env = xcalloc(n + m + 1, sizeof(*env));
	for (i = 0; i < n; i++) {
		const char *eq = strchr(environ[i], '=');
		size_t klen = eq != NULL ? (size_t)(eq - environ[i]) : strlen(environ[i]);
		bool overridden = false;

		for (j = 0; j < m; j++)
			if (strncmp(extra[j], environ[i], klen) == 0 &&
			    extra[j][klen] == '=')
				overridden = true;
		if (!overridden)
			env[k++] = environ[i];
	}
	for (j = 0; j < m; j++)
		env[k++] = (char *)extra[j];
	env[k] = NULL;
	return env;
}

static int
nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	return fl == -1 ? -1 : fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

struct subprocess *
subprocess_start(struct event_base *base, const struct subprocess_opts *o,
    subprocess_cb cb, void *arg, char *err, size_t errlen)
{
	int in[2] = { -1, -1 }, out[2] = { -1, -1 }, errp[2] = { -1, -1 };
	struct subprocess *sp;
	char **env;
	size_t cap = o->capture_max > 0 ? o->capture_max : CAPTURE_DEFAULT;
	pid_t pid;

	if (o->argv == NULL || o->argv[0] == NULL || o->argv[0][0] == '\0') {
		snprintf(err, errlen, "empty command");
		errno = EINVAL;
		return NULL;
	}
	if (pipe2(in, O_CLOEXEC) == -1 || pipe2(out, O_CLOEXEC) == -1 ||
	    pipe2(errp, O_CLOEXEC) == -1) {
		snprintf(err, errlen, "pipe: %s", strerror(errno));
		goto fail_pipes;
	}
	env = child_env(o->env);
	fflush(NULL);
	pid = fork();
	if (pid == -1) {
		snprintf(err, errlen, "fork: %s", strerror(errno));
		free(env);
		goto fail_pipes;
	}
	if (pid == 0) {
		sigset_t none;
		char msg[32];
		int e;

		setpgid(0, 0);
		/* Safe this early: only dup2 onto 0-2 follows, nothing opens. */
		subprocess_child_limits();
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		signal(SIGPIPE, SIG_DFL);
		dup2(in[0], 0);
		dup2(out[1], 1);
		dup2(errp[1], 2);
		if (o->cwd != NULL && chdir(o->cwd) == -1)
			e = errno;
		else {
			execvpe(o->argv[0], (char *const *)o->argv, env);
			e = errno;
		}
		snprintf(msg, sizeof(msg), "\x01" "exec:%d", e);
		if (write(2, msg, strlen(msg)) < 0)
			_exit(127);
		_exit(127);
	}
	free(env);
	setpgid(pid, pid);	/* both sides, so the group exists before we kill it */
	close(in[0]);
	close(out[1]);
	close(errp[1]);

	sp = xcalloc(1, sizeof(*sp));
	sp->base = base;
	sp->pid = pid;
	sp->cb = cb;
	sp->arg = arg;
	sp->started_ms = aotime_mono_ms();
	sp->in_fd = in[1];
	sp->out.fd = out[0];
	sp->err.fd = errp[0];
	sp->out.max = sp->err.max = cap;
	sp->out.buf = xmalloc(cap + 1);
	sp->err.buf = xmalloc(cap + 1);
	nonblock(sp->in_fd);
	nonblock(sp->out.fd);
	nonblock(sp->err.fd);
	sp->out.ev = event_new(base, sp->out.fd, EV_READ | EV_PERSIST, capture_cb, &sp->out);
	sp->err.ev = event_new(base, sp->err.fd, EV_READ | EV_PERSIST, capture_cb, &sp->err);
	event_add(sp->out.ev, NULL);
	event_add(sp->err.ev, NULL);
	if (o->input != NULL && o->input_len > 0) {
		sp->input = xmalloc(o->input_len);
		memcpy(sp->input, o->input, o->input_len);
		sp->input_len = o->input_len;
		sp->in_ev = event_new(base, sp->in_fd, EV_WRITE | EV_PERSIST, input_cb, sp);
		event_add(sp->in_ev, NULL);
	} else
		input_close(sp);
	sp->pidfd = pidfd_open_compat(pid);
	if (sp->pidfd == -1) {
		snprintf(err, errlen, "pidfd_open: %s", strerror(errno));
		kill(-pid, SIGKILL);
		waitpid(pid, NULL, 0);
		subprocess_free(sp);
		return NULL;
	}
	sp->exit_ev = event_new(base, sp->pidfd, EV_READ | EV_PERSIST, exit_cb, sp);
	event_add(sp->exit_ev, NULL);
	if (o->timeout_ms > 0) {
		struct timeval tv;

		sp->timer_ev = evtimer_new(base, timer_cb, sp);
		aotime_tv(&tv, o->timeout_ms);
		evtimer_add(sp->timer_ev, &tv);
	}
	return sp;

fail_pipes:
	for (int i = 0; i < 2; i++) {
		if (in[i] != -1)
			close(in[i]);
		if (out[i] != -1)
			close(out[i]);
		if (errp[i] != -1)
			close(errp[i]);
	}
	return NULL;
}

void
subprocess_cancel(struct subprocess *sp)
{
	if (sp == NULL)
		return;
	kill(-sp->pid, SIGKILL);
	kill(sp->pid, SIGKILL);
	/* Reaped here: after SIGKILL the wait is short and certain. */
	waitpid(sp->pid, NULL, 0);
	subprocess_free(sp);
}

pid_t
subprocess_pid(const struct subprocess *sp)
{
	return sp->pid;
}

void
subprocess_describe(const struct subprocess_result *r, char *buf, size_t len)
{
	if (r->start_failed)
		snprintf(buf, len, "could not start: %s", strerror(r->start_errno));
	else if (r->timed_out)
		snprintf(buf, len, "timed out after %lld ms (killed)",
		    (long long)r->elapsed_ms);
	else if (WIFEXITED(r->status))
		snprintf(buf, len, "exited %d", WEXITSTATUS(r->status));
	else if (WIFSIGNALED(r->status))
		snprintf(buf, len, "killed by signal %d", WTERMSIG(r->status));
	else
		snprintf(buf, len, "ended with status %d", r->status);
}

bool
subprocess_runnable(const char *prog)
{
	const char *path = getenv("PATH");
	char buf[4096];

	if (prog == NULL || prog[0] == '\0')
		return false;
	if (strchr(prog, '/') != NULL)
		return access(prog, X_OK) == 0;
	while (path != NULL && *path != '\0') {
		const char *end = strchr(path, ':');
		size_t n = end != NULL ? (size_t)(end - path) : strlen(path);

		snprintf(buf, sizeof(buf), "%.*s/%s", (int)n, path, prog);
		if (access(buf, X_OK) == 0)
			return true;
		path = end != NULL ? end + 1 : NULL;
	}
	return false;
}
