/*
 * Messages to agents.  Delivery goes through the session's runtime; until a
 * session has one (runtimes arrive with ao's worktree/tmux support), a send
 * fails and says so — never a silent success.  Every attempt, delivered or
 * not, is appended as one JSON line to message_log when it is set: an audit
 * trail of what ao told each agent.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "common/aotime.h"
#include "common/log.h"
#include "common/xmalloc.h"
#include "lcmd/lcmd.h"

struct messenger {
	struct lcmd_ctx *ctx;
	FILE *log;
};

struct pending_cb {
	messenger_cb cb;
	void *arg;
	char *error;
};

struct messenger *
messenger_new(struct lcmd_ctx *ctx)
{
	struct messenger *m = xcalloc(1, sizeof(*m));
	const char *path = ctx->cfg.message_log;

	m->ctx = ctx;
	if (path != NULL && path[0] != '\0') {
		if ((m->log = fopen(path, "a")) == NULL)
			fatalx_perm("message_log %s: cannot open for appending", path);
		setvbuf(m->log, NULL, _IOLBF, 0);
	}
	return m;
}

void
messenger_free(struct messenger *m)
{
	if (m == NULL)
		return;
	if (m->log != NULL)
		fclose(m->log);
	free(m);
}

static void
record(struct messenger *m, const struct lsession *s, const char *text,
    const char *error)
{
	json_t *j;
	char *line;

	if (m->log == NULL)
		return;
	j = json_pack("{s:I, s:s, s:s, s:b, s:s?}", "at", (json_int_t)aotime_wall_ms(),
	    "session_id", s->id, "message", text, "delivered", error == NULL,
	    "error", error);
	if (j == NULL)
		return;
	if ((line = json_dumps(j, JSON_COMPACT)) != NULL) {
		fprintf(m->log, "%s\n", line);
		free(line);
	}
	json_decref(j);
}

static void
later_cb(evutil_socket_t fd, short what, void *arg)
{
	struct pending_cb *p = arg;

	(void)fd;
	(void)what;
	p->cb(p->arg, p->error);
	free(p->error);
	free(p);
}

void
messenger_send(struct messenger *m, const struct lsession *s, const char *text,
    messenger_cb cb, void *arg)
{
	struct pending_cb *p = xcalloc(1, sizeof(*p));

	p->cb = cb;
	p->arg = arg;
	p->error = xasprintf("session %s has no runtime to deliver to", s->id);
	record(m, s, text, p->error);
	m->ctx->stats.messages_failed++;
	if (event_base_once(m->ctx->base, -1, EV_TIMEOUT, later_cb, p, NULL) == -1)
		fatalx("event_base_once failed");
}
