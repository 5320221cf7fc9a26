/*
 * Messages to agents, delivered through the session's runtime (tmux keys or
 * the process's FIFO).  A failed delivery is reported, never a silent
 * success.  Every attempt, delivered or not, is appended as one JSON line to
 * message_log when it is set: an audit trail of what ao told each agent.
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

struct sending {
	struct messenger *m;
	char id[128];
	char *text;
	messenger_cb cb;
	void *arg;
};

struct messenger *
messenger_new(struct lcmd_ctx *ctx)
{
	struct messenger *m = xcalloc(1, sizeof(*m));
	const char *path = ctx->cfg.message_log;

	m->ctx = ctx;
	if (path != NULL && path[0] != '\0') {
		/* "e": close-on-exec, so agents and tmux never inherit it. */
		if ((m->log = fopen(path, "ae")) == NULL)
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
sent(void *arg, const char *error, const char *handle)
{
	struct sending *x = arg;
	struct lsession s;

	(void)handle;
	snprintf(s.id, sizeof(s.id), "%s", x->id);
	record(x->m, &s, x->text, error);
	if (error != NULL)
		x->m->ctx->stats.messages_failed++;
	x->cb(x->arg, error);
	free(x->text);
	free(x);
}

void
messenger_send(struct messenger *m, const struct lsession *s, const char *text,
    messenger_cb cb, void *arg)
{
	struct sending *x = xcalloc(1, sizeof(*x));

	x->m = m;
	snprintf(x->id, sizeof(x->id), "%s", s->id);
	x->text = xstrdup(text);
	x->cb = cb;
	x->arg = arg;
	runtime_send(m->ctx, s->runtime, s->runtime_handle, text, sent, x);
}
