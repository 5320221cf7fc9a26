/*
 * Notifiers.  A stored notification is handed to the notifiers its priority
 * routes to (notify_urgent / notify_action / notify_info, each a list of
 * "command" and "desktop").  Every delivery is a child process with a
 * deadline (notify_timeout_ms): a hung or failing notifier is killed,
 * logged and counted, and never holds up lcmd or the other deliveries.
 * At most NOTIFY_MAX_RUNNING run at once; the rest wait in order.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <bsd/sys/queue.h>
#include <jansson.h>

#include "common/log.h"
#include "common/subprocess.h"
#include "common/xmalloc.h"
#include "lcmd/lcmd.h"
#include "proto/jsonmp.h"

#define NOTIFY_MAX_RUNNING	16
#define NOTIFY_MAX_QUEUED	1024
#define N_COMMAND		1
#define N_DESKTOP		2

struct delivery {
	struct notify *n;
	char *what;		/* "command" or "desktop", for logs */
	char **argv;
	char **env;
	char *input;
	int64_t id;
	TAILQ_ENTRY(delivery) entry;
};

struct notify {
	struct lcmd_ctx *ctx;
	char **command;		/* NULL when no command notifier */
	bool desktop;
	unsigned routes[3];	/* per enum lpriority: N_COMMAND | N_DESKTOP */
	TAILQ_HEAD(, delivery) queue;
	unsigned queued, running;
};

static void
strv_free(char **v)
{
	size_t i;

	for (i = 0; v != NULL && v[i] != NULL; i++)
		free(v[i]);
	free(v);
}

/*
 * Splits a command line into words: blanks separate, '…' and "…" group,
 * a backslash escapes the next character outside single quotes.  No
 * expansion of any kind: the words are run directly, never by a shell.
 */
static int
split_words(const char *s, char ***out, char *err, size_t errlen)
{
	size_t n = 0, cap = 8, len = strlen(s);
	char **v = xcalloc(cap, sizeof(*v));
	char *w = xmalloc(len + 1);

	while (*s != '\0') {
		size_t o = 0;
		char q = 0;

		while (*s == ' ' || *s == '\t')
			s++;
		if (*s == '\0')
			break;
		while (*s != '\0' && (q != 0 || (*s != ' ' && *s != '\t'))) {
			if (q == 0 && (*s == '\'' || *s == '"'))
				q = *s++;
			else if (q != 0 && *s == q) {
				q = 0;
				s++;
			} else if (*s == '\\' && q != '\'' && s[1] != '\0') {
				w[o++] = s[1];
				s += 2;
			} else
				w[o++] = *s++;
		}
		if (q != 0) {
			snprintf(err, errlen, "unterminated %c quote", q);
			free(w);
			strv_free(v);
			return -1;
		}
		if (n + 2 > cap) {
			cap *= 2;
			v = xreallocarray(v, cap, sizeof(*v));
		}
		v[n++] = xstrndup(w, o);
		v[n] = NULL;
	}
	free(w);
	if (n == 0) {
		free(v);
		*out = NULL;
		return 0;
	}
	*out = v;
	return 0;
}

static int
parse_route(const char *key, const char *list, unsigned *out, char *err, size_t errlen)
{
	char *copy = xstrdup(list != NULL ? list : ""), *tok, *save = NULL;

	*out = 0;
	for (tok = strtok_r(copy, ", ", &save); tok != NULL; tok = strtok_r(NULL, ", ", &save)) {
		if (strcmp(tok, "command") == 0)
			*out |= N_COMMAND;
		else if (strcmp(tok, "desktop") == 0)
			*out |= N_DESKTOP;
		else if (strcmp(tok, "none") != 0) {
			snprintf(err, errlen, "%s: unknown notifier '%s' (command, "
			    "desktop, none)", key, tok);
			free(copy);
			return -1;
		}
	}
	free(copy);
	return 0;
}

struct notify *
notify_new(struct lcmd_ctx *ctx)
{
	struct notify *n = xcalloc(1, sizeof(*n));
	const struct lcmd_config *c = &ctx->cfg;
	const char *desk = c->notify_desktop != NULL ? c->notify_desktop : "auto";
	char err[256];

	n->ctx = ctx;
	TAILQ_INIT(&n->queue);
	if (c->notify_command != NULL &&
	    split_words(c->notify_command, &n->command, err, sizeof(err)) == -1)
		fatalx_perm("notify_command: %s", err);
	if (strcmp(desk, "on") == 0)
		n->desktop = true;
	else if (strcmp(desk, "auto") == 0)
		n->desktop = subprocess_runnable("notify-send");
	else if (strcmp(desk, "off") != 0)
		fatalx_perm("notify_desktop: '%s' is not auto, on or off", desk);
	if (parse_route("notify_urgent", c->notify_urgent, &n->routes[PRIO_URGENT],
	    err, sizeof(err)) == -1 ||
	    parse_route("notify_action", c->notify_action, &n->routes[PRIO_ACTION],
	    err, sizeof(err)) == -1 ||
	    parse_route("notify_info", c->notify_info, &n->routes[PRIO_INFO],
	    err, sizeof(err)) == -1)
		fatalx_perm("%s", err);
	log_info("notifiers: command %s, desktop %s", n->command != NULL ?
	    n->command[0] : "(none)", n->desktop ? "on" : "off");
	return n;
}

static void
delivery_free(struct delivery *d)
{
	strv_free(d->argv);
	strv_free(d->env);
	free(d->input);
	free(d->what);
	free(d);
}

static void run_next(struct notify *);

static void
delivered(const struct subprocess_result *r, void *arg)
{
	struct delivery *d = arg;
	struct notify *n = d->n;
	char desc[160];

	subprocess_describe(r, desc, sizeof(desc));
	if (r->timed_out) {
		n->ctx->stats.notes_timed_out++;
		n->ctx->stats.notes_failed++;
		log_warnx("notification %lld: %s notifier %s", (long long)d->id,
		    d->what, desc);
	} else if (r->start_failed || !WIFEXITED(r->status) ||
	    WEXITSTATUS(r->status) != 0) {
		n->ctx->stats.notes_failed++;
		log_warnx("notification %lld: %s notifier %s%s%.200s", (long long)d->id,
		    d->what, desc, r->err_len > 0 ? ": " : "", r->err);
	} else {
		n->ctx->stats.notes_sent++;
		log_debug("notification %lld: %s notifier done", (long long)d->id,
		    d->what);
	}
	n->running--;
	delivery_free(d);
	run_next(n);
}

static void
run_next(struct notify *n)
{
	struct delivery *d;

	while (n->running < NOTIFY_MAX_RUNNING && (d = TAILQ_FIRST(&n->queue)) != NULL) {
		struct subprocess_opts o = { 0 };
		char err[256];

		TAILQ_REMOVE(&n->queue, d, entry);
		n->queued--;
		o.argv = (const char *const *)d->argv;
		o.env = (const char *const *)d->env;
		o.input = d->input;
		o.input_len = d->input != NULL ? strlen(d->input) : 0;
		o.capture_max = 4096;
		o.timeout_ms = n->ctx->cfg.notify_timeout_ms;
		if (subprocess_start(n->ctx->base, &o, delivered, d, err,
		    sizeof(err)) == NULL) {
			n->ctx->stats.notes_failed++;
			log_warnx("notification %lld: %s notifier: %s", (long long)d->id,
			    d->what, err);
			delivery_free(d);
			continue;
		}
		n->running++;
	}
}

static char **
strv_copy(char *const *v, size_t extra)
{
	size_t n = 0, i;
	char **c;

	while (v != NULL && v[n] != NULL)
		n++;
	c = xcalloc(n + extra + 1, sizeof(*c));
	for (i = 0; i < n; i++)
		c[i] = xstrdup(v[i]);
	return c;
}

static void
enqueue(struct notify *n, const char *what, char **argv, char **env, char *input,
    int64_t id)
{
	struct delivery *d;

	if (n->queued >= NOTIFY_MAX_QUEUED) {
		n->ctx->stats.notes_failed++;
		log_warnx("notification %lld: %s notifier skipped: %u deliveries "
		    "already waiting", (long long)id, what, n->queued);
		strv_free(argv);
		strv_free(env);
		free(input);
		return;
	}
	d = xcalloc(1, sizeof(*d));
	d->n = n;
	d->what = xstrdup(what);
	d->argv = argv;
	d->env = env;
	d->input = input;
	d->id = id;
	TAILQ_INSERT_TAIL(&n->queue, d, entry);
	n->queued++;
	run_next(n);
}

static const char *
jstr(json_t *j, const char *key)
{
	json_t *v = json_object_get(j, key);

	return json_is_string(v) ? json_string_value(v) : "";
}

void
notify_deliver(struct notify *n, const msgpack_object *note)
{
	json_t *j = jsonmp_from_object(note);
	int prio = model_parse(model_priorities, jstr(j, "priority"));
	int64_t id = json_integer_value(json_object_get(j, "id"));
	unsigned route;

	if (prio < 0) {
		json_decref(j);
		return;
	}
	route = n->routes[prio];
	if ((route & N_COMMAND) && n->command != NULL) {
		char **env = xcalloc(7, sizeof(*env));
		char *input = json_dumps(j, JSON_COMPACT);

		env[0] = xasprintf("AO_NOTIFICATION_ID=%lld", (long long)id);
		env[1] = xasprintf("AO_SESSION_ID=%s", jstr(j, "session_id"));
		env[2] = xasprintf("AO_PROJECT_ID=%s", jstr(j, "project_id"));
		env[3] = xasprintf("AO_PRIORITY=%s", jstr(j, "priority"));
		env[4] = xasprintf("AO_REACTION=%s", jstr(j, "reaction"));
		env[5] = xasprintf("AO_MESSAGE=%s", jstr(j, "message"));
		enqueue(n, "command", strv_copy(n->command, 0), env,
		    input != NULL ? input : xstrdup("{}"), id);
	}
	if ((route & N_DESKTOP) && n->desktop) {
		char **argv = xcalloc(6, sizeof(*argv));

		argv[0] = xstrdup("notify-send");
		argv[1] = xasprintf("--urgency=%s", prio == PRIO_URGENT ? "critical" :
		    prio == PRIO_ACTION ? "normal" : "low");
		argv[2] = xstrdup("--app-name=ao");
		argv[3] = xasprintf("ao: %s", jstr(j, "reaction")[0] != '\0' ?
		    jstr(j, "reaction") : jstr(j, "priority"));
		argv[4] = xstrdup(jstr(j, "message"));
		enqueue(n, "desktop", argv, NULL, NULL, id);
	}
	json_decref(j);
}

unsigned
notify_pending(const struct notify *n)
{
	return n->queued + n->running;
}

void
notify_free(struct notify *n)
{
	struct delivery *d;

	if (n == NULL)
		return;
	while ((d = TAILQ_FIRST(&n->queue)) != NULL) {
		TAILQ_REMOVE(&n->queue, d, entry);
		delivery_free(d);
	}
	strv_free(n->command);
	free(n);
}
