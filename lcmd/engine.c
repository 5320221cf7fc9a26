/*
 * The engine: every input for a session goes through that session's queue
 * and is applied in arrival order; different sessions proceed
 * independently (no lock is held across I/O — each step is a callback).
 *
 * One input, step by step:
 *   load (session, PRs, trackers) → [prelude write, load again] → load (the primary
 *   PR's checks and comments) → reducer_apply → session.apply (state,
 *   budgets, notifications in one storaged transaction) → effects
 *   (notifier deliveries, messages) → reply.
 * lcmd keeps no state of its own between inputs: facts are loaded fresh.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bsd/sys/queue.h>
#include <bsd/sys/tree.h>

#include "common/aotime.h"
#include "common/log.h"
#include "common/subprocess.h"
#include "common/xmalloc.h"
#include "lcmd/lcmd.h"

#define CHECKS_LIMIT 200

enum job_kind { JK_INPUT, JK_SEND, JK_GET, JK_LAUNCH };

struct squeue;

struct job {
	struct lcmd_ctx *ctx;
	struct squeue *q;		/* NULL for reads */
	enum job_kind kind;
	char id[128];
	struct linput in;
	char *source, *evidence, *error, *text;
	enum job_check check;
	struct peer_req *req;
	char *prelude_method, *prelude;
	size_t prelude_len;
	struct calls *calls;
	struct held session_map;
	struct lsession session;
	struct lpr *prs;
	size_t nprs;
	struct held pr_map;		/* the primary PR as storaged sent it */
	const struct lpr *primary;
	struct lcheck *checks;
	size_t nchecks;
	struct lcomment *comments;
	size_t ncomments;
	struct ltracker *trackers;
	size_t ntrackers;
	struct leffects *fx;		/* between reducer_apply and its effects */
	/* launches and cleanups */
	bool restore;
	char project_path[4096];
	char *x_branch, *x_workspace, *x_handle;
	bool workspace_created;		/* by this launch: undo on failure */
	bool branch_created;
	char *launch_error, *launch_step;
	enum rpc_code launch_code;
	char **argv;
	char *prompt_after;		/* sent once the agent runs */
	char cleanup_note[200];
	bool cleanup_done;
	int sending;			/* a stop or deliveries still running */
	int next_message;		/* of fx->messages */
	TAILQ_ENTRY(job) entry;
};

struct squeue {
	char id[128];
	TAILQ_HEAD(, job) jobs;
	unsigned n;
	RB_ENTRY(squeue) node;
};
RB_HEAD(squeues, squeue);

static int
squeue_cmp(const struct squeue *a, const struct squeue *b)
{
	return strcmp(a->id, b->id);
}
/* libbsd's RB_GENERATE_STATIC relies on BSD's __unused, which it leaves undefined. */
#define __unused __attribute__((__unused__))
RB_GENERATE_STATIC(squeues, squeue, node, squeue_cmp)
#undef __unused

static struct squeues queues = RB_INITIALIZER(&queues);
static unsigned nbusy, nqueued;

static void job_start(struct job *);
static void load_done(struct calls *, void *);

static void
job_free(struct job *j)
{
	size_t i;

	calls_free(j->calls);
	held_free(&j->session_map);
	held_free(&j->pr_map);
	for (i = 0; i < j->nchecks; i++)
		facts_check_free(&j->checks[i]);
	for (i = 0; i < j->ncomments; i++)
		facts_comment_free(&j->comments[i]);
	free(j->prs);
	free(j->checks);
	free(j->comments);
	free(j->trackers);
	free(j->source);
	free(j->evidence);
	free(j->error);
	free(j->text);
	free(j->prelude_method);
	free(j->prelude);
	if (j->fx != NULL) {
		reducer_effects_free(j->fx);
		free(j->fx);
	}
	free(j->x_branch);
	free(j->x_workspace);
	free(j->x_handle);
	free(j->launch_error);
	free(j->launch_step);
	free(j->prompt_after);
	for (i = 0; j->argv != NULL && j->argv[i] != NULL; i++)
		free(j->argv[i]);
	free(j->argv);
	free(j);
}

/* Done with j: the next input of its session starts. */
static void
job_finish(struct job *j)
{
	struct squeue *q = j->q;
	struct job *next;

	if (q != NULL) {
		TAILQ_REMOVE(&q->jobs, j, entry);
		q->n--;
		nqueued--;
		if ((next = TAILQ_FIRST(&q->jobs)) != NULL) {
			job_free(j);
			job_start(next);
			return;
		}
		RB_REMOVE(squeues, &queues, q);
		free(q);
		nbusy--;
	}
	job_free(j);
}

static void
job_fail(struct job *j, const struct rpc_error *err)
{
	j->ctx->stats.input_errors++;
	if (j->req != NULL)
		peer_reply_error(j->req, err);
	j->req = NULL;
	job_finish(j);
}

static void
job_failf(struct job *j, enum rpc_code code, const char *fmt, const char *arg)
{
	struct rpc_error err;

	rpc_error_set(&err, code, fmt, arg);
	job_fail(j, &err);
}

static bool
has_unresolved(const struct job *j)
{
	size_t i;

	for (i = 0; i < j->ncomments; i++)
		if (!j->comments[i].resolved)
			return true;
	return false;
}

/*
 * Packs the session map (as storaged has it) with the derived `status` and
 * the PR facts it was derived from (`pr`, or nil).
 */
static void
pack_session(msgpack_packer *pk, const msgpack_object *map, const struct lsession *s,
    const struct lpr *primary, const struct held *pr_map, bool unresolved,
    const char *extra_key, const char *extra_val)
{
	uint32_t i;

	msgpack_pack_map(pk, map->via.map.size + 2 + (extra_key != NULL));
	if (extra_key != NULL)
		rpc_pack_kv_str(pk, extra_key, extra_val);
	for (i = 0; i < map->via.map.size; i++) {
		msgpack_pack_object(pk, map->via.map.ptr[i].key);
		msgpack_pack_object(pk, map->via.map.ptr[i].val);
	}
	rpc_pack_kv_str(pk, "status", status_derive(s, primary, unresolved));
	rpc_pack_str(pk, "pr");
	if (primary != NULL && pr_map->bytes != NULL)
		msgpack_pack_object(pk, pr_map->up.data);
	else
		msgpack_pack_nil(pk);
}

static void
job_reply(struct job *j)
{
	struct rpc_buf b;

	if (j->req != NULL && j->launch_error != NULL) {
		struct rpc_error err;

		/* The session stays visible, terminated: the error says which. */
		rpc_error_set(&err, j->launch_code, "spawn failed at %s: %s",
		    j->launch_step, j->launch_error);
		rpc_error_extra(&err, "session_id", j->id);
		peer_reply_error(j->req, &err);
		j->req = NULL;
	} else if (j->req != NULL) {
		const msgpack_object *m = &j->session_map.up.data;

		rpc_buf_init(&b);
		/* session.cleanup also says what became of the worktree. */
		pack_session(&b.pk, m, &j->session, j->primary, &j->pr_map,
		    has_unresolved(j), j->cleanup_done ? "worktree" : NULL,
		    j->cleanup_note);
		peer_reply(j->req, b.sb.data, b.sb.size);
		rpc_buf_free(&b);
		j->req = NULL;
	}
	job_finish(j);
}

static void
pack_id(struct rpc_buf *b, const char *key, const char *val)
{
	rpc_buf_reset(b);
	msgpack_pack_map(&b->pk, 1);
	rpc_pack_kv_str(&b->pk, key, val);
}

static void
job_load(struct job *j)
{
	struct rpc_buf b;
	int64_t t = j->ctx->cfg.storaged_timeout_ms;

	calls_free(j->calls);
	j->calls = calls_new(j->ctx->storaged, 3, load_done, j);
	rpc_buf_init(&b);
	pack_id(&b, "id", j->id);
	calls_add(j->calls, "session.get", b.sb.data, b.sb.size, t);
	pack_id(&b, "session_id", j->id);
	calls_add(j->calls, "pr.list", b.sb.data, b.sb.size, t);
	if (j->kind == JK_INPUT)
		calls_add(j->calls, "reaction.get", b.sb.data, b.sb.size, t);
	rpc_buf_free(&b);
	calls_go(j->calls);
}

/* The prelude wrote what the input is about; load the facts again. */
static void
prelude_done(struct calls *c, void *arg)
{
	struct job *j = arg;
	const struct rpc_error *err;

	if (calls_result(c, 0, &err) == NULL) {
		job_fail(j, err);
		return;
	}
	free(j->prelude_method);
	j->prelude_method = NULL;
	job_load(j);
}

static void
job_start(struct job *j)
{
	job_load(j);
}

/* Decodes the array under key of a result map with fn into an array of size sz. */
static size_t
decode_list(const msgpack_object *res, const char *key, void **out, size_t sz,
    int (*fn)(const msgpack_object *, void *))
{
	const msgpack_object *a = rpc_map_get(res, key);
	size_t n = 0;
	uint32_t i;
	char *v;

	*out = NULL;
	if (a == NULL || a->type != MSGPACK_OBJECT_ARRAY || a->via.array.size == 0)
		return 0;
	v = xcalloc(a->via.array.size, sz);
	for (i = 0; i < a->via.array.size; i++)
		if (fn(&a->via.array.ptr[i], v + n * sz) == 0)
			n++;
	*out = v;
	return n;
}

static void step(struct job *);
static void details_done(struct calls *, void *);

static bool
check_ok(struct job *j)
{
	const struct lsession *s = &j->session;

	if (j->kind == JK_LAUNCH && s->state != ST_NOT_STARTED) {
		job_failf(j, RPC_INVALID_STATE, j->restore ? "session %s is not "
		    "terminated: nothing to restore" : "session %s was already started",
		    s->id);
		return false;
	}
	switch (j->check) {
	case JOB_ANY:
		return true;
	case JOB_LIVE:
		if (s->state != ST_TERMINATED)
			return true;
		job_failf(j, RPC_INVALID_STATE, "session %s is terminated", s->id);
		return false;
	case JOB_RESTORABLE:
		if (s->state == ST_TERMINATED || s->state == ST_DONE)
			return true;
		job_failf(j, RPC_INVALID_STATE, "session %s is not terminated: "
		    "nothing to restore", s->id);
		return false;
	}
	return true;
}

static void
load_done(struct calls *c, void *arg)
{
	struct job *j = arg;
	const msgpack_object *sess, *prs, *tr = NULL;
	const struct rpc_error *err;
	const msgpack_object *a;
	uint32_t i;

	if ((sess = calls_result(c, 0, &err)) == NULL ||
	    (prs = calls_result(c, 1, &err)) == NULL ||
	    (j->kind == JK_INPUT && (tr = calls_result(c, 2, &err)) == NULL)) {
		job_fail(j, err);
		return;
	}
	if (facts_session(sess, &j->session) == -1) {
		job_failf(j, RPC_INTERNAL, "storaged sent a malformed session %s", j->id);
		return;
	}
	/* A prelude loads twice: the second load replaces the first. */
	held_free(&j->session_map);
	held_free(&j->pr_map);
	free(j->prs);
	free(j->trackers);
	j->prs = NULL;
	j->trackers = NULL;
	j->ntrackers = 0;
	calls_take(c, 0, &j->session_map);
	j->nprs = decode_list(prs, "prs", (void **)&j->prs, sizeof(*j->prs),
	    (int (*)(const msgpack_object *, void *))facts_pr);
	if (tr != NULL)
		j->ntrackers = decode_list(tr, "trackers", (void **)&j->trackers,
		    sizeof(*j->trackers),
		    (int (*)(const msgpack_object *, void *))facts_tracker);
	j->primary = status_pick_pr(j->prs, j->nprs);
	log_debug("%s: loaded (%zu PRs, %zu trackers)", j->id, j->nprs, j->ntrackers);
	if (j->primary != NULL) {
		a = rpc_map_get(prs, "prs");
		for (i = 0; a != NULL && i < a->via.array.size; i++) {
			char url[512];

			if (rpc_obj_str(rpc_map_get(&a->via.array.ptr[i], "url"), url,
			    sizeof(url)) == 0 && strcmp(url, j->primary->url) == 0) {
				held_set(&j->pr_map, &a->via.array.ptr[i]);
				break;
			}
		}
	}
	if (!check_ok(j))
		return;
	if (j->prelude_method != NULL) {
		/* After the state check: nothing is written for a terminated session. */
		calls_free(j->calls);
		j->calls = calls_new(j->ctx->storaged, 1, prelude_done, j);
		calls_add(j->calls, j->prelude_method, j->prelude, j->prelude_len,
		    j->ctx->cfg.storaged_timeout_ms);
		calls_go(j->calls);
		return;
	}
	if (j->primary != NULL) {
		struct rpc_buf b;
		int64_t t = j->ctx->cfg.storaged_timeout_ms;
		bool checks = j->kind == JK_INPUT &&
		    (j->in.type == IN_PR || j->in.type == IN_TICK);

		calls_free(j->calls);
		j->calls = calls_new(j->ctx->storaged, 2, details_done, j);
		rpc_buf_init(&b);
		pack_id(&b, "url", j->primary->url);
		calls_add(j->calls, "pr.comments", b.sb.data, b.sb.size, t);
		if (checks) {
			rpc_buf_reset(&b);
			msgpack_pack_map(&b.pk, 2);
			rpc_pack_kv_str(&b.pk, "url", j->primary->url);
			rpc_pack_kv_i64(&b.pk, "limit", CHECKS_LIMIT);
			calls_add(j->calls, "pr.checks", b.sb.data, b.sb.size, t);
		}
		rpc_buf_free(&b);
		calls_go(j->calls);
		return;
	}
	step(j);
}

static void
details_done(struct calls *c, void *arg)
{
	struct job *j = arg;
	const msgpack_object *comments, *checks;
	const struct rpc_error *err;

	if ((comments = calls_result(c, 0, &err)) == NULL) {
		job_fail(j, err);
		return;
	}
	j->ncomments = decode_list(comments, "comments", (void **)&j->comments,
	    sizeof(*j->comments),
	    (int (*)(const msgpack_object *, void *))facts_comment);
	if (j->kind == JK_INPUT && (j->in.type == IN_PR || j->in.type == IN_TICK)) {
		if ((checks = calls_result(c, 1, &err)) == NULL) {
			job_fail(j, err);
			return;
		}
		j->nchecks = decode_list(checks, "checks", (void **)&j->checks,
		    sizeof(*j->checks),
		    (int (*)(const msgpack_object *, void *))facts_check);
	}
	step(j);
}

static void job_after_messages(struct job *);

/*
 * One message of a step delivered (or not).  A step's messages go out one
 * after another, and the session's next input waits for them, so an agent
 * receives messages in the order lcmd decided them.
 */
static void
message_done(void *arg, const char *error)
{
	struct job *j = arg;

	if (error != NULL)
		log_warnx("%s: message not delivered: %s", j->id, error);
	else
		j->ctx->stats.messages_sent++;
	j->sending--;
	job_after_messages(j);
}

static void
log_stopped(const char *id, const char *error)
{
	if (error != NULL)
		log_warnx("%s: stopping the runtime: %s", id, error);
	else
		log_debug("%s: runtime stopped", id);
}

static void
stop_done(void *arg, const char *error, const char *handle)
{
	char *id = arg;

	(void)handle;
	log_stopped(id, error);
	free(id);
}

static void cleanup_start(struct job *);
static void launch_orphan_undo(struct job *);

/* The next message of the step, or what comes after the last one. */
static void
job_after_messages(struct job *j)
{
	struct leffects *fx = j->fx;

	if (j->sending > 0)
		return;
	if (j->kind == JK_LAUNCH && j->launch_error == NULL && j->prompt_after != NULL) {
		char *prompt = j->prompt_after;

		/* The first message of a command or aider/opencode session. */
		j->prompt_after = NULL;
		j->sending++;
		messenger_send(j->ctx->messenger, &j->session, prompt, message_done, j);
		free(prompt);
		return;
	}
	if (fx != NULL && j->next_message < fx->nmessages) {
		j->sending++;
		messenger_send(j->ctx->messenger, &j->session,
		    fx->messages[j->next_message++], message_done, j);
		return;
	}
	if (j->kind == JK_INPUT && j->in.type == IN_CLEANUP) {
		cleanup_start(j);
		return;
	}
	job_reply(j);
}

/* The step's stop finished: its messages (if any), then the reply. */
static void
effects_stopped(void *arg, const char *error, const char *handle)
{
	struct job *j = arg;

	(void)handle;
	log_stopped(j->id, error);
	j->sending--;
	job_after_messages(j);
}

/*
 * After the step is stored (or needed no storing): stops, messages, cleanup.
 * A stop completes before the reply, so `session.kill` answers once the
 * agent is gone (process runtime: TERM, then KILL after 5 s).
 */
static void
run_effects(struct job *j)
{
	struct leffects *fx = j->fx;

	if (fx->stop_runtime && j->session.runtime_handle[0] != '\0') {
		j->sending++;
		runtime_stop(j->ctx, j->session.runtime, j->session.runtime_handle,
		    effects_stopped, j);
		return;
	}
	job_after_messages(j);
}

static void
apply_done(struct calls *c, void *arg)
{
	struct job *j = arg;
	const msgpack_object *res, *sess, *notes;
	const struct rpc_error *err;
	uint32_t i;

	if ((res = calls_result(c, 0, &err)) == NULL) {
		log_warnx("%s: storing the step failed: %s", j->id, err->message);
		if (j->kind == JK_LAUNCH && j->launch_error == NULL &&
		    j->x_handle != NULL && j->x_handle[0] != '\0')
			launch_orphan_undo(j);
		job_fail(j, err);
		return;
	}
	sess = rpc_map_get(res, "session");
	notes = rpc_map_get(res, "notifications");
	if (sess != NULL && facts_session(sess, &j->session) == 0) {
		held_free(&j->session_map);
		held_set(&j->session_map, sess);
	}
	/* Stored first, then delivered: a restart never pages twice. */
	for (i = 0; notes != NULL && notes->type == MSGPACK_OBJECT_ARRAY &&
	    i < notes->via.array.size; i++)
		notify_deliver(j->ctx->notify, &notes->via.array.ptr[i]);
	run_effects(j);
}

static void
send_done(void *arg, const char *error)
{
	struct job *j = arg;
	struct rpc_buf b;

	if (error != NULL) {
		job_failf(j, RPC_UNAVAILABLE, "not delivered: %s", error);
		return;
	}
	j->ctx->stats.messages_sent++;
	if (j->req != NULL) {
		rpc_buf_init(&b);
		msgpack_pack_map(&b.pk, 2);
		rpc_pack_kv_str(&b.pk, "id", j->id);
		rpc_pack_kv_bool(&b.pk, "delivered", true);
		peer_reply(j->req, b.sb.data, b.sb.size);
		rpc_buf_free(&b);
		j->req = NULL;
	}
	job_finish(j);
}

static void launch_start(struct job *);

static void
step(struct job *j)
{
	struct lfacts f;
	struct leffects *fx;
	struct rpc_buf b;

	if (j->kind == JK_GET) {
		job_reply(j);
		return;
	}
	if (j->kind == JK_SEND) {
		messenger_send(j->ctx->messenger, &j->session, j->text, send_done, j);
		return;
	}
	if (j->kind == JK_LAUNCH && j->x_handle == NULL && j->launch_error == NULL) {
		launch_start(j);
		return;
	}
	memset(&f, 0, sizeof(f));
	f.session = j->session;
	f.prs = j->prs;
	f.nprs = j->nprs;
	f.checks = j->checks;
	f.nchecks = j->nchecks;
	f.comments = j->comments;
	f.ncomments = j->ncomments;
	f.trackers = j->trackers;
	f.ntrackers = j->ntrackers;
	fx = j->fx = xcalloc(1, sizeof(*fx));
	reducer_apply(&f, &j->in, aotime_wall_ms(), &j->ctx->cfg, fx);
	j->ctx->stats.inputs++;
	if (!reducer_session_changed(&j->session, &fx->next) && fx->ntrackers == 0 &&
	    fx->nnotes == 0 && j->kind != JK_LAUNCH) {
		run_effects(j);
		return;
	}
	log_debug("%s: %s → %s, %d tracker changes, %d notifications, %d messages",
	    j->id, model_states[j->session.state], model_states[fx->next.state],
	    fx->ntrackers, fx->nnotes, fx->nmessages);
	rpc_buf_init(&b);
	{
		struct lextra x = { j->x_branch, j->x_workspace, j->x_handle };

		facts_pack_apply(&b.pk, &j->session, fx, j->kind == JK_LAUNCH ? &x : NULL);
	}
	calls_free(j->calls);
	j->calls = calls_new(j->ctx->storaged, 1, apply_done, j);
	calls_add(j->calls, "session.apply", b.sb.data, b.sb.size,
	    j->ctx->cfg.storaged_timeout_ms);
	rpc_buf_free(&b);
	calls_go(j->calls);
}

static struct job *
job_new(struct lcmd_ctx *ctx, enum job_kind kind, const char *id, struct peer_req *req)
{
	struct job *j = xcalloc(1, sizeof(*j));

	j->ctx = ctx;
	j->kind = kind;
	snprintf(j->id, sizeof(j->id), "%s", id);
	j->req = req;
	return j;
}

static void
enqueue(struct job *j)
{
	struct squeue key, *q;

	snprintf(key.id, sizeof(key.id), "%s", j->id);
	if ((q = RB_FIND(squeues, &queues, &key)) == NULL) {
		q = xcalloc(1, sizeof(*q));
		snprintf(q->id, sizeof(q->id), "%s", j->id);
		TAILQ_INIT(&q->jobs);
		RB_INSERT(squeues, &queues, q);
		nbusy++;
	}
	j->q = q;
	TAILQ_INSERT_TAIL(&q->jobs, j, entry);
	q->n++;
	nqueued++;
	if (q->n == 1)
		job_start(j);
}

void
engine_submit(struct lcmd_ctx *ctx, const char *id, const struct linput *in,
    enum job_check check, struct peer_req *req, const char *prelude_method,
    const void *prelude, size_t prelude_len)
{
	struct job *j = job_new(ctx, JK_INPUT, id, req);

	j->in = *in;
	j->check = check;
	if (in->source != NULL)
		j->in.source = j->source = xstrdup(in->source);
	if (in->evidence != NULL)
		j->in.evidence = j->evidence = xstrdup(in->evidence);
	if (in->error != NULL)
		j->in.error = j->error = xstrdup(in->error);
	if (prelude_method != NULL) {
		j->prelude_method = xstrdup(prelude_method);
		j->prelude = xmalloc(prelude_len);
		memcpy(j->prelude, prelude, prelude_len);
		j->prelude_len = prelude_len;
	}
	enqueue(j);
}


/*
 * Launch (spawn and restore): the worktree, then the runtime, then the
 * lifecycle's spawn-completed input with the branch, workspace and runtime
 * handle.  A failure after the row exists undoes what this launch created
 * and terminates the session with error_in_process; the answer names the
 * failed step and carries the session id.
 */
static void launch_failed(struct job *, const char *step, enum rpc_code,
    const char *error);

static void
launch_continue(struct job *j, enum linput_type type)
{
	j->in.type = type;
	step(j);	/* x_handle or launch_error is set: reduce and store */
}

static void
launch_runtime_done(void *arg, const char *error, const char *handle)
{
	struct job *j = arg;

	if (error != NULL) {
		launch_failed(j, "runtime", RPC_INTERNAL, error);
		return;
	}
	j->x_handle = xstrdup(handle);
	log_info("%s: agent started (%s)", j->id, handle);
	launch_continue(j, IN_SPAWN_OK);
}

/*
 * The agent's argv.  claude and codex take the prompt as an argument; aider,
 * opencode and plain commands get it as their first message.
 */
static void
launch_argv(struct job *j)
{
	const msgpack_object *m = &j->session_map.up.data;
	const msgpack_object *cmd = rpc_map_get(m, "command");
	const msgpack_object *prompt = rpc_map_get(m, "prompt");
	char harness[32] = "", *p = NULL;
	size_t n = 0, i;

	rpc_obj_str(rpc_map_get(m, "harness"), harness, sizeof(harness));
	if (prompt != NULL && prompt->type == MSGPACK_OBJECT_STR && prompt->via.str.size > 0)
		p = xstrndup(prompt->via.str.ptr, prompt->via.str.size);
	j->argv = xcalloc(cmd != NULL && cmd->type == MSGPACK_OBJECT_ARRAY ?
	    cmd->via.array.size + 2 : 4, sizeof(*j->argv));
	if (cmd != NULL && cmd->type == MSGPACK_OBJECT_ARRAY) {
		for (i = 0; i < cmd->via.array.size; i++)
			if (cmd->via.array.ptr[i].type == MSGPACK_OBJECT_STR)
				j->argv[n++] = xstrndup(cmd->via.array.ptr[i].via.str.ptr,
				    cmd->via.array.ptr[i].via.str.size);
		j->prompt_after = p;
		return;
	}
	if (strcmp(harness, "claude-code") == 0 || strcmp(harness, "codex") == 0) {
		j->argv[n++] = xstrdup(harness[0] == 'c' && harness[1] == 'l' ?
		    "claude" : "codex");
		if (p != NULL)
			j->argv[n++] = p;
		return;
	}
	j->argv[n++] = xstrdup(strcmp(harness, "aider") == 0 ? "aider" : "opencode");
	j->prompt_after = p;
}

static void
launch_workspace_done(void *arg, const char *error, const char *detail)
{
	struct job *j = arg;
	struct runtime_spec sp = { 0 };
	char issue[128] = "";

	if (error != NULL) {
		launch_failed(j, "worktree", strstr(error, "already exists") != NULL ?
		    RPC_CONFLICT : RPC_BAD_REQUEST, error);
		return;
	}
	j->workspace_created = detail != NULL && (strcmp(detail, "created") == 0 ||
	    strcmp(detail, "checked-out") == 0);
	j->branch_created = detail != NULL && strcmp(detail, "created") == 0;
	log_debug("%s: worktree %s %s", j->id, j->x_workspace, detail);
	launch_argv(j);
	if (j->argv[0] == NULL || !subprocess_runnable(j->argv[0])) {
		char *msg = xasprintf("'%s' was not found (is it installed and in "
		    "lcmd's PATH?)", j->argv[0] != NULL ? j->argv[0] : "");

		launch_failed(j, "launch", RPC_BAD_REQUEST, msg);
		free(msg);
		return;
	}
	rpc_obj_str(rpc_map_get(&j->session_map.up.data, "issue_id"), issue,
	    sizeof(issue));
	sp.session_id = j->id;
	sp.project_id = j->session.project_id;
	sp.issue_id = issue;
	sp.kind = j->session.runtime;
	sp.cwd = j->x_workspace;
	sp.argv = (const char *const *)j->argv;
	runtime_start(j->ctx, &sp, launch_runtime_done, j);
}

static void
launch_project_done(struct calls *c, void *arg)
{
	struct job *j = arg;
	const struct rpc_error *err;
	const msgpack_object *res = calls_result(c, 0, &err);
	struct workspace_req w = { 0 };
	char branch[256];

	if (res == NULL) {
		launch_failed(j, "project", err->code, err->message);
		return;
	}
	rpc_obj_str(rpc_map_get(res, "path"), j->project_path, sizeof(j->project_path));
	if (rpc_obj_str(rpc_map_get(&j->session_map.up.data, "branch"), branch,
	    sizeof(branch)) == -1 || branch[0] == '\0')
		snprintf(branch, sizeof(branch), "ao/%s", j->id);
	j->x_branch = xstrdup(branch);
	if (j->session.workspace_path[0] != '\0')
		j->x_workspace = xstrdup(j->session.workspace_path);
	else
		j->x_workspace = xasprintf("%s/worktrees/%s/%s", j->ctx->data_dir,
		    j->session.project_id, j->id);
	w.repo = j->project_path;
	w.path = j->x_workspace;
	w.branch = j->x_branch;
	w.reuse_branch = j->restore;
	workspace_create(j->ctx, &w, launch_workspace_done, j);
}

static void
project_get(struct job *j, calls_done_fn done)
{
	struct rpc_buf b;

	calls_free(j->calls);
	j->calls = calls_new(j->ctx->storaged, 1, done, j);
	rpc_buf_init(&b);
	pack_id(&b, "id", j->session.project_id);
	calls_add(j->calls, "project.get", b.sb.data, b.sb.size,
	    j->ctx->cfg.storaged_timeout_ms);
	rpc_buf_free(&b);
	calls_go(j->calls);
}

static void
launch_start(struct job *j)
{
	project_get(j, launch_project_done);
}

static void
launch_undo_done(void *arg, const char *error, const char *detail)
{
	struct job *j = arg;

	if (error != NULL)
		log_warnx("%s: removing the new worktree: %s", j->id, error);
	else
		log_debug("%s: new worktree %s", j->id, detail);
	free(j->x_handle);
	j->x_handle = xstrdup("");
	/* What this launch created is gone: so are its traces in the row. */
	if (j->workspace_created) {
		free(j->x_workspace);
		j->x_workspace = xstrdup("");
	}
	if (j->branch_created) {
		free(j->x_branch);
		j->x_branch = xstrdup("");
	}
	launch_continue(j, IN_SPAWN_FAILED);
}

static void
launch_stopped(void *arg, const char *error, const char *handle)
{
	struct job *j = arg;
	struct workspace_req w = { 0 };

	(void)handle;
	if (error != NULL)
		log_warnx("%s: stopping the failed launch: %s", j->id, error);
	if (j->workspace_created) {
		w.repo = j->project_path;
		w.path = j->x_workspace;
		/* A branch this launch created has nothing on it; any other stays. */
		w.branch = j->branch_created ? j->x_branch : NULL;
		workspace_remove(j->ctx, &w, launch_undo_done, j);
		return;
	}
	launch_undo_done(j, NULL, "kept (it existed before)");
}

static void
launch_failed(struct job *j, const char *what, enum rpc_code code, const char *error)
{
	log_warnx("%s: spawn failed at %s: %s", j->id, what, error);
	j->launch_error = xstrdup(error);
	j->launch_step = xstrdup(what);
	j->launch_code = code;
	if (j->x_handle != NULL && j->x_handle[0] != '\0') {
		runtime_stop(j->ctx, j->session.runtime, j->x_handle, launch_stopped, j);
		return;
	}
	launch_stopped(j, NULL, NULL);
}

/*
 * The agent runs but its start could not be stored (storaged went away):
 * stop it and remove what this launch created, so nothing runs unrecorded.
 * The row stays not_started; a later restore or spawn starts afresh.
 */
static void
orphan_undone(void *arg, const char *error, const char *detail)
{
	char *id = arg;

	if (error != NULL)
		log_warnx("%s: undoing an unrecorded launch: %s", id, error);
	else
		log_debug("%s: unrecorded launch undone (%s)", id,
		    detail != NULL ? detail : "");
	free(id);
}

static void
launch_orphan_undo(struct job *j)
{
	struct workspace_req w = { 0 };

	runtime_stop(j->ctx, j->session.runtime, j->x_handle, stop_done,
	    xstrdup(j->id));
	if (j->workspace_created) {
		w.repo = j->project_path;
		w.path = j->x_workspace;
		w.branch = j->branch_created ? j->x_branch : NULL;
		workspace_remove(j->ctx, &w, orphan_undone, xstrdup(j->id));
	}
}

/* session.cleanup, after the terminated state is stored: the worktree. */
static void
cleanup_removed(void *arg, const char *error, const char *detail)
{
	struct job *j = arg;

	j->cleanup_done = true;
	snprintf(j->cleanup_note, sizeof(j->cleanup_note), "%s",
	    error != NULL ? error : detail != NULL ? detail : "");
	job_reply(j);
}

static void
cleanup_project_done(struct calls *c, void *arg)
{
	struct job *j = arg;
	const msgpack_object *res = calls_result(c, 0, NULL);
	struct workspace_req w = { 0 };

	if (res == NULL || j->session.workspace_path[0] == '\0') {
		cleanup_removed(j, NULL, "none");
		return;
	}
	rpc_obj_str(rpc_map_get(res, "path"), j->project_path, sizeof(j->project_path));
	w.repo = j->project_path;
	w.path = j->session.workspace_path;
	workspace_remove(j->ctx, &w, cleanup_removed, j);
}

static void
cleanup_start(struct job *j)
{
	project_get(j, cleanup_project_done);
}

void
engine_launch(struct lcmd_ctx *ctx, const char *id, bool restore, struct peer_req *req)
{
	struct job *j = job_new(ctx, JK_LAUNCH, id, req);

	j->restore = restore;
	j->check = JOB_ANY;
	enqueue(j);
}

void
engine_send(struct lcmd_ctx *ctx, const char *id, const char *text, struct peer_req *req)
{
	struct job *j = job_new(ctx, JK_SEND, id, req);

	j->text = xstrdup(text);
	j->check = JOB_LIVE;
	enqueue(j);
}

void
engine_get(struct lcmd_ctx *ctx, const char *id, struct peer_req *req)
{
	struct job *j = job_new(ctx, JK_GET, id, req);

	j->check = JOB_ANY;
	job_start(j);
}

unsigned
engine_busy(void)
{
	return nbusy;
}

unsigned
engine_queued(void)
{
	return nqueued;
}

/*
 * session.list: storaged's list, then every session's PRs, then the primary
 * PRs' comments, all pipelined — the status of each needs them.
 */
struct listjob {
	struct lcmd_ctx *ctx;
	struct peer_req *req;
	struct calls *calls;
	struct held list;		/* {sessions} */
	uint32_t n;
	struct held *prs;		/* per session: {prs} */
	int *comment_call;		/* per session: call index, or -1 */
};

static void
listjob_free(struct listjob *l)
{
	uint32_t i;

	calls_free(l->calls);
	for (i = 0; l->prs != NULL && i < l->n; i++)
		held_free(&l->prs[i]);
	held_free(&l->list);
	free(l->prs);
	free(l->comment_call);
	free(l);
}

static void
listjob_fail(struct listjob *l, const struct rpc_error *err)
{
	peer_reply_error(l->req, err);
	listjob_free(l);
}

static void
list_comments_done(struct calls *c, void *arg)
{
	struct listjob *l = arg;
	const msgpack_object *sessions = rpc_map_get(&l->list.up.data, "sessions");
	struct rpc_buf b;
	uint32_t i;

	rpc_buf_init(&b);
	msgpack_pack_map(&b.pk, 1);
	rpc_pack_str(&b.pk, "sessions");
	msgpack_pack_array(&b.pk, l->n);
	for (i = 0; i < l->n; i++) {
		const msgpack_object *m = &sessions->via.array.ptr[i];
		struct lsession s;
		struct lpr *prs = NULL;
		struct lcomment *cm = NULL;
		const struct lpr *primary;
		struct held prmap = { 0 };
		size_t nprs, ncm = 0, k;
		bool unresolved = false;
		const msgpack_object *a;

		facts_session(m, &s);
		nprs = decode_list(&l->prs[i].up.data, "prs", (void **)&prs, sizeof(*prs),
		    (int (*)(const msgpack_object *, void *))facts_pr);
		primary = status_pick_pr(prs, nprs);
		if (l->comment_call[i] >= 0) {
			const msgpack_object *res = calls_result(c, l->comment_call[i], NULL);

			if (res != NULL)
				ncm = decode_list(res, "comments", (void **)&cm,
				    sizeof(*cm), (int (*)(const msgpack_object *,
				    void *))facts_comment);
		}
		for (k = 0; k < ncm; k++) {
			unresolved = unresolved || !cm[k].resolved;
			facts_comment_free(&cm[k]);
		}
		a = rpc_map_get(&l->prs[i].up.data, "prs");
		if (primary != NULL)
			held_set(&prmap, &a->via.array.ptr[primary - prs]);
		pack_session(&b.pk, m, &s, primary, &prmap, unresolved, NULL, NULL);
		held_free(&prmap);
		free(prs);
		free(cm);
	}
	peer_reply(l->req, b.sb.data, b.sb.size);
	rpc_buf_free(&b);
	listjob_free(l);
}

static void
list_prs_done(struct calls *c, void *arg)
{
	struct listjob *l = arg;
	const struct rpc_error *err;
	struct calls *next;
	struct rpc_buf b;
	uint32_t i;

	for (i = 0; i < l->n; i++) {
		if (calls_result(c, (int)i, &err) == NULL) {
			listjob_fail(l, err);
			return;
		}
		calls_take(c, (int)i, &l->prs[i]);
	}
	next = calls_new(l->ctx->storaged, (int)l->n, list_comments_done, l);
	rpc_buf_init(&b);
	for (i = 0; i < l->n; i++) {
		struct lpr *prs = NULL;
		const struct lpr *primary;
		size_t nprs = decode_list(&l->prs[i].up.data, "prs", (void **)&prs,
		    sizeof(*prs), (int (*)(const msgpack_object *, void *))facts_pr);

		primary = status_pick_pr(prs, nprs);
		l->comment_call[i] = -1;
		if (primary != NULL) {
			pack_id(&b, "url", primary->url);
			l->comment_call[i] = calls_add(next, "pr.comments", b.sb.data,
			    b.sb.size, l->ctx->cfg.storaged_timeout_ms);
		}
		free(prs);
	}
	rpc_buf_free(&b);
	calls_free(l->calls);
	l->calls = next;
	calls_go(next);
}

static void
list_done(struct calls *c, void *arg)
{
	struct listjob *l = arg;
	const msgpack_object *res, *sessions;
	const struct rpc_error *err;
	struct calls *next;
	struct rpc_buf b;
	uint32_t i;

	if ((res = calls_result(c, 0, &err)) == NULL) {
		listjob_fail(l, err);
		return;
	}
	calls_take(c, 0, &l->list);
	sessions = rpc_map_get(&l->list.up.data, "sessions");
	l->n = sessions != NULL && sessions->type == MSGPACK_OBJECT_ARRAY ?
	    sessions->via.array.size : 0;
	l->prs = xcalloc(l->n + 1, sizeof(*l->prs));
	l->comment_call = xcalloc(l->n + 1, sizeof(*l->comment_call));
	next = calls_new(l->ctx->storaged, (int)l->n, list_prs_done, l);
	rpc_buf_init(&b);
	for (i = 0; i < l->n; i++) {
		char id[128];

		rpc_obj_str(rpc_map_get(&sessions->via.array.ptr[i], "id"), id, sizeof(id));
		pack_id(&b, "session_id", id);
		calls_add(next, "pr.list", b.sb.data, b.sb.size,
		    l->ctx->cfg.storaged_timeout_ms);
	}
	rpc_buf_free(&b);
	calls_free(l->calls);
	l->calls = next;
	calls_go(next);
}

void
engine_list(struct lcmd_ctx *ctx, const msgpack_object *params, struct peer_req *req)
{
	struct listjob *l = xcalloc(1, sizeof(*l));
	struct rpc_buf b;

	l->ctx = ctx;
	l->req = req;
	l->calls = calls_new(ctx->storaged, 1, list_done, l);
	rpc_buf_init(&b);
	if (params != NULL)
		msgpack_pack_object(&b.pk, *params);
	calls_add(l->calls, "session.list", params != NULL ? b.sb.data : NULL,
	    params != NULL ? b.sb.size : 0, ctx->cfg.storaged_timeout_ms);
	rpc_buf_free(&b);
	calls_go(l->calls);
}
