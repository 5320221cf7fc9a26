/*
 * Git worktrees for sessions.  A session's work lives in its own worktree
 * on its own branch; restore reuses it; it is removed only on cleanup, and
 * never with --force: uncommitted work is kept and reported instead.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <bsd/sys/queue.h>

#include "common/log.h"
#include "common/sock.h"
#include "common/subprocess.h"
#include "common/xmalloc.h"
#include "lcmd/lcmd.h"

#define GIT_TIMEOUT_MS 60000

/* A chain of git commands; each step's result decides the next. */
struct gitjob {
	struct lcmd_ctx *ctx;
	bool reuse_branch;
	char *repo, *path, *branch, *base;
	int step;
	workspace_cb cb;
	void *arg;
	TAILQ_ENTRY(gitjob) entry;
};

/*
 * One chain of git commands at a time: concurrent `git worktree add` in one
 * repository race on .git/worktrees (seen: "failed to read …/commondir").
 * Chains are short, so a single line is simplest and fair.
 */
static TAILQ_HEAD(, gitjob) waiting = TAILQ_HEAD_INITIALIZER(waiting);
static struct gitjob *running;

static void gitjob_next(struct gitjob *, const struct subprocess_result *);
static void gitjob_first(struct gitjob *);

static void
gitjob_free(struct gitjob *g)
{
	free(g->repo);
	free(g->path);
	free(g->branch);
	free(g->base);
	free(g);
}

static void
gitjob_done(struct gitjob *g, const char *error, const char *detail)
{
	struct gitjob *next;

	g->cb(g->arg, error, detail);
	if (running == g) {
		running = NULL;
		if ((next = TAILQ_FIRST(&waiting)) != NULL) {
			TAILQ_REMOVE(&waiting, next, entry);
			running = next;
			gitjob_first(next);
		}
	}
	gitjob_free(g);
}

/* Runs g now if no other chain runs, else after the ones before it. */
static void
gitjob_run(struct gitjob *g)
{
	if (running != NULL) {
		TAILQ_INSERT_TAIL(&waiting, g, entry);
		return;
	}
	running = g;
	gitjob_first(g);
}

static void
git_cb(const struct subprocess_result *r, void *arg)
{
	gitjob_next(arg, r);
}

/* Runs git with argv (after "git") in the background; the result comes to gitjob_next. */
static void
git(struct gitjob *g, const char *const *args)
{
	const char *argv[16];
	struct subprocess_opts o = { 0 };
	char err[256];
	int i;

	argv[0] = "git";
	for (i = 0; args[i] != NULL && i < 14; i++)
		argv[i + 1] = args[i];
	argv[i + 1] = NULL;
	o.argv = argv;
	o.timeout_ms = GIT_TIMEOUT_MS;
	o.capture_max = 16 * 1024;
	if (subprocess_start(g->ctx->base, &o, git_cb, g, err, sizeof(err)) == NULL) {
		char *msg = xasprintf("running git: %s", err);

		gitjob_done(g, msg, NULL);
		free(msg);
	}
}

static bool
ok(const struct subprocess_result *r)
{
	return !r->start_failed && !r->timed_out && WIFEXITED(r->status) &&
	    WEXITSTATUS(r->status) == 0;
}

/* git's reason: its "fatal:"/"error:" line, else its last line. */
static const char *
why(const struct subprocess_result *r, char *buf, size_t len)
{
	const char *e, *line, *pick = NULL;
	size_t n;

	if (r->start_failed) {
		snprintf(buf, len, "git could not start: %s", strerror(r->start_errno));
		return buf;
	}
	if (r->timed_out) {
		snprintf(buf, len, "git timed out");
		return buf;
	}
	e = r->err_len > 0 ? r->err : r->out;
	for (line = e; *line != '\0'; line += n + (line[n] == '\n')) {
		n = strcspn(line, "\n");
		if (n == 0)
			continue;
		pick = line;
		if (strncmp(line, "fatal:", 6) == 0 || strncmp(line, "error:", 6) == 0)
			break;
	}
	n = pick != NULL ? strcspn(pick, "\n") : 0;
	snprintf(buf, len, "%.*s", (int)n, pick != NULL ? pick : "");
	if (buf[0] == '\0')
		snprintf(buf, len, "git exited %d", WEXITSTATUS(r->status));
	return buf;
}

static struct gitjob *
gitjob_new(struct lcmd_ctx *ctx, const struct workspace_req *r, workspace_cb cb,
    void *arg)
{
	struct gitjob *g = xcalloc(1, sizeof(*g));

	g->ctx = ctx;
	g->repo = r->repo != NULL ? xstrdup(r->repo) : NULL;
	g->path = r->path != NULL ? xstrdup(r->path) : NULL;
	g->branch = r->branch != NULL ? xstrdup(r->branch) : NULL;
	g->base = r->base != NULL ? xstrdup(r->base) : NULL;
	g->reuse_branch = r->reuse_branch;
	g->cb = cb;
	g->arg = arg;
	return g;
}

enum {
	CREATE_ADD = 1, CREATE_HAVE_BRANCH, CREATE_CHECKOUT,
	REMOVE_STATUS = 10, REMOVE_REMOVE, REMOVE_BRANCH,
	PROBE_TOPLEVEL = 20, PROBE_ORIGIN,
};

static void
gitjob_next(struct gitjob *g, const struct subprocess_result *r)
{
	char buf[512];

	switch (g->step) {
	case CREATE_HAVE_BRANCH:
		/* Restore after cleanup: the branch is there, the worktree is not. */
		g->step = CREATE_ADD;
		if (ok(r)) {
			const char *args[] = { "-C", g->repo, "worktree", "add", g->path,
				g->branch, NULL };

			g->step = CREATE_CHECKOUT;
			git(g, args);
		} else {
			const char *args[] = { "-C", g->repo, "worktree", "add", "-b",
				g->branch, g->path, g->base != NULL ? g->base : "HEAD", NULL };

			git(g, args);
		}
		return;
	case CREATE_ADD:
	case CREATE_CHECKOUT:
		if (!ok(r)) {
			char *msg = xasprintf("git worktree add: %s", why(r, buf, sizeof(buf)));

			gitjob_done(g, msg, NULL);
			free(msg);
			return;
		}
		/* "created": a new branch too; "checked-out": an existing one. */
		gitjob_done(g, NULL, g->step == CREATE_ADD ? "created" : "checked-out");
		return;
	case REMOVE_STATUS:
		if (!ok(r)) {
			char *msg = xasprintf("git status: %s", why(r, buf, sizeof(buf)));

			gitjob_done(g, msg, NULL);
			free(msg);
			return;
		}
		if (r->out_len > 0) {
			gitjob_done(g, NULL, "kept: the worktree has uncommitted work");
			return;
		}
		g->step = REMOVE_REMOVE;
		{
			const char *args[] = { "-C", g->repo, "worktree", "remove", g->path,
				NULL };

			git(g, args);
		}
		return;
	case REMOVE_REMOVE:
		if (!ok(r)) {
			char *msg = xasprintf("git worktree remove: %s",
			    why(r, buf, sizeof(buf)));

			gitjob_done(g, msg, NULL);
			free(msg);
			return;
		}
		if (g->branch == NULL) {
			gitjob_done(g, NULL, "removed");
			return;
		}
		g->step = REMOVE_BRANCH;
		{
			const char *args[] = { "-C", g->repo, "branch", "-D", g->branch,
				NULL };

			git(g, args);
		}
		return;
	case REMOVE_BRANCH:
		if (!ok(r)) {
			char *msg = xasprintf("git branch -D: %s", why(r, buf, sizeof(buf)));

			gitjob_done(g, msg, NULL);
			free(msg);
			return;
		}
		gitjob_done(g, NULL, "removed with its branch");
		return;
	case PROBE_TOPLEVEL:
		if (!ok(r)) {
			char *msg = xasprintf("%s is not a git repository", g->path);

			gitjob_done(g, msg, NULL);
			free(msg);
			return;
		}
		g->step = PROBE_ORIGIN;
		{
			const char *args[] = { "-C", g->path, "remote", "get-url", "origin",
				NULL };

			git(g, args);
		}
		return;
	case PROBE_ORIGIN:
		if (ok(r) && r->out_len > 0) {
			snprintf(buf, sizeof(buf), "%.*s", (int)strcspn(r->out, "\n"), r->out);
			gitjob_done(g, NULL, buf);
		} else
			gitjob_done(g, NULL, NULL);
		return;
	}
	gitjob_done(g, "workspace: internal error", NULL);
}

/* The first command of a chain, by its starting step. */
static void
gitjob_first(struct gitjob *g)
{
	char parent[4096], err[256], ref[600], *slash;
	struct stat st;

	switch (g->step) {
	case CREATE_ADD:
		/* Restore: the worktree is still there. */
		if (stat(g->path, &st) == 0 && S_ISDIR(st.st_mode)) {
			gitjob_done(g, NULL, "reused");
			return;
		}
		snprintf(parent, sizeof(parent), "%s", g->path);
		if ((slash = strrchr(parent, '/')) != NULL)
			*slash = '\0';
		if (sock_mkdir_private(parent, err, sizeof(err)) == -1) {
			char *msg = xasprintf("creating %s: %s", parent, err);

			gitjob_done(g, msg, NULL);
			free(msg);
			return;
		}
		if (g->reuse_branch) {
			const char *args[] = { "-C", g->repo, "rev-parse", "--verify",
				"--quiet", ref, NULL };

			snprintf(ref, sizeof(ref), "refs/heads/%s", g->branch);
			g->step = CREATE_HAVE_BRANCH;
			git(g, args);
			return;
		}
		{
			const char *args[] = { "-C", g->repo, "worktree", "add", "-b",
				g->branch, g->path, g->base != NULL ? g->base : "HEAD", NULL };

			git(g, args);
		}
		return;
	case REMOVE_STATUS:
		if (stat(g->path, &st) == -1) {
			gitjob_done(g, NULL, "already gone");
			return;
		}
		{
			const char *args[] = { "-C", g->path, "status", "--porcelain",
				NULL };

			git(g, args);
		}
		return;
	case PROBE_TOPLEVEL:
		{
			const char *args[] = { "-C", g->path, "rev-parse",
				"--is-inside-work-tree", NULL };

			git(g, args);
		}
		return;
	}
	gitjob_done(g, "workspace: internal error", NULL);
}

void
workspace_create(struct lcmd_ctx *ctx, const struct workspace_req *r, workspace_cb cb,
    void *arg)
{
	struct gitjob *g = gitjob_new(ctx, r, cb, arg);

	g->step = CREATE_ADD;
	gitjob_run(g);
}

void
workspace_remove(struct lcmd_ctx *ctx, const struct workspace_req *r, workspace_cb cb,
    void *arg)
{
	struct gitjob *g = gitjob_new(ctx, r, cb, arg);

	g->step = REMOVE_STATUS;
	gitjob_run(g);
}

void
workspace_probe_repo(struct lcmd_ctx *ctx, const char *path, workspace_cb cb, void *arg)
{
	struct workspace_req r = { .path = path };
	struct gitjob *g = gitjob_new(ctx, &r, cb, arg);

	g->step = PROBE_TOPLEVEL;
	gitjob_run(g);
}
