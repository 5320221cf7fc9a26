/*
 * lcmd.sock, the public API (DESIGN.md §3).  Handlers validate their params
 * (bad params → bad_request naming the field), then hand lifecycle inputs
 * to the engine, which answers once the input is applied; plain reads are
 * forwarded to storaged.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/log.h"
#include "common/xmalloc.h"
#include "lcmd/lcmd.h"

static struct lcmd_ctx *ctx_of(void *arg) { return arg; }

static const char *const harnesses[] = { "claude-code", "codex", "aider",
	"opencode", NULL };
static const char *const runtimes[] = { "tmux", "process", NULL };

/* Parses params; on failure answers bad_request and returns -1. */
static int
params(struct peer_req *r, struct rpc_params *p, struct rpc_error *err)
{
	rpc_error_clear(err);
	if (rpc_params_init(p, r->params, r->zone, NULL, err) == -1) {
		peer_reply_error(r, err);
		return -1;
	}
	return 0;
}

static int
done_params(struct peer_req *r, struct rpc_params *p, struct rpc_error *err, int ok)
{
	if (ok == -1 || rpc_params_end(p) == -1) {
		peer_reply_error(r, err);
		return -1;
	}
	return 0;
}

/* Forwarding: one storaged call whose result is the answer. */
struct fwd {
	struct peer_req *req;
	struct calls *calls;
};

static void
fwd_done(struct calls *c, void *arg)
{
	struct fwd *f = arg;
	const struct rpc_error *err;
	const msgpack_object *res = calls_result(c, 0, &err);
	struct rpc_buf b;

	if (res == NULL)
		peer_reply_error(f->req, err);
	else {
		rpc_buf_init(&b);
		msgpack_pack_object(&b.pk, *res);
		peer_reply(f->req, b.sb.data, b.sb.size);
		rpc_buf_free(&b);
	}
	calls_free(c);
	free(f);
}

static void
forward(struct lcmd_ctx *ctx, struct peer_req *r, const char *method,
    const void *params, size_t plen)
{
	struct fwd *f = xcalloc(1, sizeof(*f));

	f->req = r;
	f->calls = calls_new(ctx->storaged, 1, fwd_done, f);
	calls_add(f->calls, method, params, plen, ctx->cfg.storaged_timeout_ms);
	calls_go(f->calls);
}

/* Forwards the request's own params unchanged. */
static void
forward_same(struct lcmd_ctx *ctx, struct peer_req *r, const char *method)
{
	struct rpc_buf b;

	rpc_buf_init(&b);
	if (r->params != NULL)
		msgpack_pack_object(&b.pk, *r->params);
	forward(ctx, r, method, r->params != NULL ? b.sb.data : NULL,
	    r->params != NULL ? b.sb.size : 0);
	rpc_buf_free(&b);
}

static void
m_project_list(struct peer_req *r, void *arg)
{
	forward_same(ctx_of(arg), r, "project.list");
}

static void
m_project_get(struct peer_req *r, void *arg)
{
	forward_same(ctx_of(arg), r, "project.get");
}

static void
m_project_remove(struct peer_req *r, void *arg)
{
	forward_same(ctx_of(arg), r, "project.archive");
}

static void
m_notification_list(struct peer_req *r, void *arg)
{
	forward_same(ctx_of(arg), r, "notification.list");
}

/* project.add: register a directory; re-adding the same path is a no-op. */
struct addjob {
	struct lcmd_ctx *ctx;
	struct peer_req *req;
	struct calls *calls;
	struct rpc_buf upsert;
	bool has_origin;
	bool explicit_meta;		/* origin_url or display_name given */
	char id[80], path[4096];
};

static void
add_upserted(struct calls *c, void *arg)
{
	struct addjob *a = arg;
	const struct rpc_error *err;
	const msgpack_object *res = calls_result(c, 0, &err);
	struct rpc_buf b;

	if (res == NULL)
		peer_reply_error(a->req, err);
	else {
		rpc_buf_init(&b);
		msgpack_pack_object(&b.pk, *res);
		peer_reply(a->req, b.sb.data, b.sb.size);
		rpc_buf_free(&b);
	}
	calls_free(c);
	rpc_buf_free(&a->upsert);
	free(a);
}

static void
add_checked(struct calls *c, void *arg)
{
	struct addjob *a = arg;
	const struct rpc_error *err;
	const msgpack_object *res = calls_result(c, 0, &err), *arch;
	char path[4096];

	if (res == NULL && err->code != RPC_NOT_FOUND) {
		peer_reply_error(a->req, err);
		goto done;
	}
	arch = rpc_map_get(res, "archived_at");
	if (res != NULL && (arch == NULL || arch->type == MSGPACK_OBJECT_NIL) &&
	    rpc_obj_str(rpc_map_get(res, "path"), path, sizeof(path)) == 0) {
		struct rpc_buf b;

		if (strcmp(path, a->path) != 0) {
			peer_reply_errorf(a->req, RPC_CONFLICT, "project '%s' already "
			    "exists at %s (choose another id)", a->id, path);
			goto done;
		}
		if (!a->explicit_meta) {
			/* Re-adding the same path: nothing to change. */
			rpc_buf_init(&b);
			msgpack_pack_object(&b.pk, *res);
			peer_reply(a->req, b.sb.data, b.sb.size);
			rpc_buf_free(&b);
			goto done;
		}
	}
	a->calls = calls_new(a->ctx->storaged, 1, add_upserted, a);
	calls_add(a->calls, "project.upsert", a->upsert.sb.data, a->upsert.sb.size,
	    a->ctx->cfg.storaged_timeout_ms);
	calls_go(a->calls);
	calls_free(c);
	return;
done:
	calls_free(c);
	rpc_buf_free(&a->upsert);
	free(a);
}

/* The default project id: the directory's name, made safe. */
static void
default_id(const char *path, char *id, size_t len)
{
	const char *base = strrchr(path, '/');
	size_t i, n = 0;

	base = base != NULL && base[1] != '\0' ? base + 1 : path;
	for (i = 0; base[i] != '\0' && n + 1 < len && n < 64; i++) {
		char ch = base[i];

		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		    (ch >= '0' && ch <= '9') || ch == '_' || ch == '.' || ch == '-'))
			ch = '-';
		if (n == 0 && (ch == '.' || ch == '-'))
			continue;
		id[n++] = ch;
	}
	id[n] = '\0';
	if (n == 0)
		snprintf(id, len, "project");
}

/* The path is a git work tree: check what storaged has under that id. */
static void
add_probed(void *arg, const char *error, const char *origin)
{
	struct addjob *a = arg;
	struct rpc_buf b;

	if (error != NULL) {
		peer_reply_errorf(a->req, RPC_BAD_REQUEST, "%s", error);
		rpc_buf_free(&a->upsert);
		free(a);
		return;
	}
	if (origin != NULL && origin[0] != '\0' && !a->has_origin) {
		/* The upsert params end with their last pair: append origin_url. */
		struct rpc_buf u;
		msgpack_unpacked up;
		size_t off = 0;
		uint32_t i;

		msgpack_unpacked_init(&up);
		msgpack_unpack_next(&up, a->upsert.sb.data, a->upsert.sb.size, &off);
		rpc_buf_init(&u);
		msgpack_pack_map(&u.pk, up.data.via.map.size + 1);
		for (i = 0; i < up.data.via.map.size; i++) {
			msgpack_pack_object(&u.pk, up.data.via.map.ptr[i].key);
			msgpack_pack_object(&u.pk, up.data.via.map.ptr[i].val);
		}
		rpc_pack_kv_str(&u.pk, "origin_url", origin);
		msgpack_unpacked_destroy(&up);
		rpc_buf_free(&a->upsert);
		a->upsert = u;
	}
	rpc_buf_init(&b);
	msgpack_pack_map(&b.pk, 1);
	rpc_pack_kv_str(&b.pk, "id", a->id);
	a->calls = calls_new(a->ctx->storaged, 1, add_checked, a);
	calls_add(a->calls, "project.get", b.sb.data, b.sb.size,
	    a->ctx->cfg.storaged_timeout_ms);
	rpc_buf_free(&b);
	calls_go(a->calls);
}

static void
m_project_add(struct peer_req *r, void *arg)
{
	struct lcmd_ctx *ctx = ctx_of(arg);
	struct rpc_params p;
	struct rpc_error err;
	const char *path, *id = NULL, *origin = NULL, *display = NULL;
	struct addjob *a;
	struct stat st;
	char real[4096];

	if (params(r, &p, &err) == -1 ||
	    done_params(r, &p, &err,
	    rpc_get_str(&p, "path", RPC_REQUIRED, &path) == -1 ||
	    rpc_get_str(&p, "id", RPC_OPTIONAL, &id) == -1 ||
	    rpc_get_str(&p, "origin_url", RPC_OPTIONAL, &origin) == -1 ||
	    rpc_get_str(&p, "display_name", RPC_OPTIONAL, &display) == -1 ? -1 : 0) == -1)
		return;
	if (path[0] != '/') {
		peer_reply_errorf(r, RPC_BAD_REQUEST, "path must be absolute: %s", path);
		return;
	}
	if (stat(path, &st) == -1 || !S_ISDIR(st.st_mode) ||
	    realpath(path, real) == NULL) {
		peer_reply_errorf(r, RPC_BAD_REQUEST, "path is not a directory: %s", path);
		return;
	}
	a = xcalloc(1, sizeof(*a));
	a->ctx = ctx;
	a->req = r;
	snprintf(a->path, sizeof(a->path), "%s", real);
	if (id != NULL)
		snprintf(a->id, sizeof(a->id), "%s", id);
	else
		default_id(real, a->id, sizeof(a->id));
	rpc_buf_init(&a->upsert);
	msgpack_pack_map(&a->upsert.pk, 2 + (origin != NULL) + (display != NULL));
	rpc_pack_kv_str(&a->upsert.pk, "id", a->id);
	rpc_pack_kv_str(&a->upsert.pk, "path", a->path);
	if (origin != NULL)
		rpc_pack_kv_str(&a->upsert.pk, "origin_url", origin);
	if (display != NULL)
		rpc_pack_kv_str(&a->upsert.pk, "display_name", display);
	a->has_origin = origin != NULL;
	a->explicit_meta = origin != NULL || display != NULL;
	workspace_probe_repo(ctx, a->path, add_probed, a);
}

/* session.spawn: the row (not_started); starting the agent is the runtime's. */
struct spawnjob {
	struct lcmd_ctx *ctx;
	struct peer_req *req;
	struct rpc_buf create;
	struct calls *calls;
};

static void
spawn_created(struct calls *c, void *arg)
{
	struct spawnjob *s = arg;
	const struct rpc_error *err;
	const msgpack_object *res = calls_result(c, 0, &err);
	char id[128];

	s->ctx->spawning--;
	if (res == NULL)
		peer_reply_error(s->req, err);
	else {
		rpc_obj_str(rpc_map_get(res, "id"), id, sizeof(id));
		log_info("session %s created", id);
		engine_launch(s->ctx, id, false, s->req);
	}
	calls_free(c);
	rpc_buf_free(&s->create);
	free(s);
}

static void
spawn_counted(struct calls *c, void *arg)
{
	struct spawnjob *s = arg;
	const struct rpc_error *err;
	const msgpack_object *res = calls_result(c, 0, &err);
	int64_t live = 0;

	if (res == NULL) {
		peer_reply_error(s->req, err);
		goto done;
	}
	rpc_obj_i64(rpc_map_get(res, "live"), &live);
	/* Spawns counted but not yet created count too: no race past the cap. */
	live += s->ctx->spawning;
	if (live >= s->ctx->cfg.max_sessions) {
		peer_reply_errorf(s->req, RPC_CONFLICT, "%lld live sessions already "
		    "(max_sessions is %lld): kill or clean one up first",
		    (long long)live, (long long)s->ctx->cfg.max_sessions);
		goto done;
	}
	s->ctx->spawning++;
	s->calls = calls_new(s->ctx->storaged, 1, spawn_created, s);
	calls_add(s->calls, "session.create", s->create.sb.data, s->create.sb.size,
	    s->ctx->cfg.storaged_timeout_ms);
	calls_go(s->calls);
	calls_free(c);
	return;
done:
	calls_free(c);
	rpc_buf_free(&s->create);
	free(s);
}

static void
m_session_spawn(struct peer_req *r, void *arg)
{
	struct lcmd_ctx *ctx = ctx_of(arg);
	struct rpc_params p;
	struct rpc_error err;
	const char *project, *harness = NULL, *prompt = NULL, *branch = NULL;
	const char *issue = NULL, **argv = NULL;
	int h = -1, rt = 0, ok;
	size_t argc = 0, i;
	struct spawnjob *s;

	if (params(r, &p, &err) == -1)
		return;
	ok = rpc_get_str(&p, "project_id", RPC_REQUIRED, &project) == -1 ||
	    rpc_get_str(&p, "harness", RPC_OPTIONAL, &harness) == -1 ||
	    rpc_get_str_array(&p, "command", RPC_OPTIONAL, &argv, &argc) == -1 ||
	    rpc_get_str(&p, "prompt", RPC_OPTIONAL, &prompt) == -1 ||
	    rpc_get_str(&p, "branch", RPC_OPTIONAL, &branch) == -1 ||
	    rpc_get_str(&p, "issue_id", RPC_OPTIONAL, &issue) == -1 ||
	    rpc_get_enum(&p, "runtime", RPC_OPTIONAL, runtimes, &rt) == -1 ? -1 : 0;
	if (done_params(r, &p, &err, ok) == -1)
		return;
	if ((harness == NULL) == (argv == NULL)) {
		peer_reply_errorf(r, RPC_BAD_REQUEST, "give exactly one of harness "
		    "(claude-code, codex, aider, opencode) or command (an argv array)");
		return;
	}
	if (harness != NULL && (h = model_parse(harnesses, harness)) < 0) {
		peer_reply_errorf(r, RPC_BAD_REQUEST, "harness must be one of: "
		    "claude-code, codex, aider, opencode");
		return;
	}
	if (argv != NULL && (argc == 0 || argv[0][0] == '\0')) {
		peer_reply_errorf(r, RPC_BAD_REQUEST, "command must be a non-empty "
		    "argv array");
		return;
	}
	s = xcalloc(1, sizeof(*s));
	s->ctx = ctx;
	s->req = r;
	rpc_buf_init(&s->create);
	msgpack_pack_map(&s->create.pk, 3 + (argv != NULL) + (prompt != NULL) +
	    (branch != NULL) + (issue != NULL));
	rpc_pack_kv_str(&s->create.pk, "project_id", project);
	rpc_pack_kv_str(&s->create.pk, "harness", h >= 0 ? harnesses[h] : "command");
	rpc_pack_kv_str(&s->create.pk, "runtime", runtimes[rt]);
	if (argv != NULL) {
		rpc_pack_str(&s->create.pk, "command");
		msgpack_pack_array(&s->create.pk, argc);
		for (i = 0; i < argc; i++)
			rpc_pack_str(&s->create.pk, argv[i]);
	}
	if (prompt != NULL)
		rpc_pack_kv_str(&s->create.pk, "prompt", prompt);
	if (branch != NULL)
		rpc_pack_kv_str(&s->create.pk, "branch", branch);
	if (issue != NULL)
		rpc_pack_kv_str(&s->create.pk, "issue_id", issue);
	s->calls = calls_new(ctx->storaged, 1, spawn_counted, s);
	calls_add(s->calls, "session.count", NULL, 0, ctx->cfg.storaged_timeout_ms);
	calls_go(s->calls);
}

static void
m_session_list(struct peer_req *r, void *arg)
{
	struct rpc_params p;
	struct rpc_error err;
	const char *project = NULL;
	bool all = false;

	if (params(r, &p, &err) == -1 ||
	    done_params(r, &p, &err,
	    rpc_get_str(&p, "project_id", RPC_OPTIONAL, &project) == -1 ||
	    rpc_get_bool(&p, "include_terminated", RPC_OPTIONAL, &all) == -1 ?
	    -1 : 0) == -1)
		return;
	engine_list(ctx_of(arg), r->params, r);
}

/* Parses {id} alone. */
static int
id_only(struct peer_req *r, const char **id)
{
	struct rpc_params p;
	struct rpc_error err;

	if (params(r, &p, &err) == -1)
		return -1;
	return done_params(r, &p, &err,
	    rpc_get_str(&p, "id", RPC_REQUIRED, id) == -1 ? -1 : 0);
}

static void
m_session_get(struct peer_req *r, void *arg)
{
	const char *id;

	if (id_only(r, &id) == 0)
		engine_get(ctx_of(arg), id, r);
}

static void
simple_input(struct peer_req *r, void *arg, enum linput_type type, enum job_check check)
{
	struct linput in = { .type = type };
	const char *id;

	if (id_only(r, &id) == 0)
		engine_submit(ctx_of(arg), id, &in, check, r, NULL, NULL, 0);
}

static void
m_session_kill(struct peer_req *r, void *arg)
{
	simple_input(r, arg, IN_KILL, JOB_LIVE);
}

/* Restore: reopen (the reducer), then start the agent in the same worktree. */
static void
m_session_restore(struct peer_req *r, void *arg)
{
	struct linput in = { .type = IN_RESTORE };
	const char *id;

	if (id_only(r, &id) == -1)
		return;
	engine_submit(ctx_of(arg), id, &in, JOB_RESTORABLE, NULL, NULL, NULL, 0);
	engine_launch(ctx_of(arg), id, true, r);
}

static void
m_session_cleanup(struct peer_req *r, void *arg)
{
	simple_input(r, arg, IN_CLEANUP, JOB_ANY);
}

static void
m_session_done(struct peer_req *r, void *arg)
{
	simple_input(r, arg, IN_DONE, JOB_LIVE);
}

static void
m_session_send(struct peer_req *r, void *arg)
{
	struct rpc_params p;
	struct rpc_error err;
	const char *id, *message;

	if (params(r, &p, &err) == -1 ||
	    done_params(r, &p, &err,
	    rpc_get_str(&p, "id", RPC_REQUIRED, &id) == -1 ||
	    rpc_get_str(&p, "message", RPC_REQUIRED, &message) == -1 ? -1 : 0) == -1)
		return;
	if (message[0] == '\0') {
		peer_reply_errorf(r, RPC_BAD_REQUEST, "message must not be empty");
		return;
	}
	engine_send(ctx_of(arg), id, message, r);
}

static void
m_session_activity(struct peer_req *r, void *arg)
{
	struct rpc_params p;
	struct rpc_error err;
	struct linput in = { .type = IN_ACTIVITY };
	const char *id, *source = NULL;
	int a;

	if (params(r, &p, &err) == -1 ||
	    done_params(r, &p, &err,
	    rpc_get_str(&p, "id", RPC_REQUIRED, &id) == -1 ||
	    rpc_get_enum(&p, "state", RPC_REQUIRED, model_activities, &a) == -1 ||
	    rpc_get_str(&p, "source", RPC_OPTIONAL, &source) == -1 ? -1 : 0) == -1)
		return;
	in.activity = a;
	in.source = source;
	engine_submit(ctx_of(arg), id, &in, JOB_LIVE, r, NULL, NULL, 0);
}

/* pr.observe: store the observation (storaged validates it), then react. */
static void
m_pr_observe(struct peer_req *r, void *arg)
{
	struct rpc_params p;
	struct rpc_error err;
	struct linput in = { .type = IN_PR };
	const msgpack_object *pr, *checks = NULL, *comments = NULL;
	const char *session;
	struct rpc_buf b;

	if (params(r, &p, &err) == -1 ||
	    done_params(r, &p, &err,
	    rpc_get_str(&p, "session_id", RPC_REQUIRED, &session) == -1 ||
	    rpc_get_map(&p, "pr", RPC_REQUIRED, &pr) == -1 ||
	    rpc_get_array(&p, "checks", RPC_OPTIONAL, &checks) == -1 ||
	    rpc_get_array(&p, "comments", RPC_OPTIONAL, &comments) == -1 ? -1 : 0) == -1)
		return;
	rpc_buf_init(&b);
	msgpack_pack_object(&b.pk, *r->params);
	engine_submit(ctx_of(arg), session, &in, JOB_LIVE, r, "pr.write_observation",
	    b.sb.data, b.sb.size);
	rpc_buf_free(&b);
}

/* runtime.report {results: [{session_id, runtime, process, evidence?}]} */
static void
m_runtime_report(struct peer_req *r, void *arg)
{
	struct rpc_params p, sub;
	struct rpc_error err;
	const msgpack_object *results;
	struct linput *ins;
	const char **ids;
	struct rpc_buf b;
	uint32_t i, n;
	char path[32];

	if (params(r, &p, &err) == -1 ||
	    done_params(r, &p, &err, rpc_get_array(&p, "results", RPC_REQUIRED,
	    &results) == -1 ? -1 : 0) == -1)
		return;
	n = results->via.array.size;
	ins = xcalloc(n + 1, sizeof(*ins));
	ids = xcalloc(n + 1, sizeof(*ids));
	/* All valid, or none applied. */
	for (i = 0; i < n; i++) {
		snprintf(path, sizeof(path), "results[%u]", i);
		ins[i].type = IN_PROBE;
		if (results->via.array.ptr[i].type != MSGPACK_OBJECT_MAP) {
			peer_reply_errorf(r, RPC_BAD_REQUEST, "%s must be a map", path);
			goto out;
		}
		if (rpc_params_init(&sub, &results->via.array.ptr[i], r->zone, path,
		    &err) == -1 ||
		    rpc_get_str(&sub, "session_id", RPC_REQUIRED, &ids[i]) == -1 ||
		    rpc_get_enum(&sub, "runtime", RPC_REQUIRED, model_probes,
		    &ins[i].probe_runtime) == -1 ||
		    rpc_get_enum(&sub, "process", RPC_REQUIRED, model_procs,
		    &ins[i].probe_process) == -1 ||
		    rpc_get_str(&sub, "evidence", RPC_OPTIONAL, &ins[i].evidence) == -1 ||
		    rpc_params_end(&sub) == -1) {
			peer_reply_error(r, &err);
			goto out;
		}
	}
	for (i = 0; i < n; i++)
		engine_submit(ctx_of(arg), ids[i], &ins[i], JOB_ANY, NULL, NULL, NULL, 0);
	rpc_buf_init(&b);
	msgpack_pack_map(&b.pk, 1);
	rpc_pack_kv_i64(&b.pk, "accepted", n);
	peer_reply(r, b.sb.data, b.sb.size);
	rpc_buf_free(&b);
out:
	free(ins);
	free(ids);
}

/* tick {}: time-based escalations for every live session. */
struct tickjob {
	struct lcmd_ctx *ctx;
	struct peer_req *req;
};

static void
tick_listed(struct calls *c, void *arg)
{
	struct tickjob *t = arg;
	const struct rpc_error *err;
	const msgpack_object *res = calls_result(c, 0, &err), *list;
	struct linput in = { .type = IN_TICK };
	struct rpc_buf b;
	uint32_t i, n = 0;

	if (res == NULL) {
		peer_reply_error(t->req, err);
		goto done;
	}
	list = rpc_map_get(res, "sessions");
	for (i = 0; list != NULL && i < list->via.array.size; i++) {
		char id[128];

		if (rpc_obj_str(rpc_map_get(&list->via.array.ptr[i], "id"), id,
		    sizeof(id)) == -1)
			continue;
		engine_submit(t->ctx, id, &in, JOB_ANY, NULL, NULL, NULL, 0);
		n++;
	}
	rpc_buf_init(&b);
	msgpack_pack_map(&b.pk, 1);
	rpc_pack_kv_i64(&b.pk, "sessions", n);
	peer_reply(t->req, b.sb.data, b.sb.size);
	rpc_buf_free(&b);
done:
	calls_free(c);
	free(t);
}

static void
m_tick(struct peer_req *r, void *arg)
{
	struct lcmd_ctx *ctx = ctx_of(arg);
	struct rpc_params p;
	struct rpc_error err;
	struct tickjob *t;
	struct calls *c;

	if (params(r, &p, &err) == -1 || done_params(r, &p, &err, 0) == -1)
		return;
	t = xcalloc(1, sizeof(*t));
	t->ctx = ctx;
	t->req = r;
	c = calls_new(ctx->storaged, 1, tick_listed, t);
	calls_add(c, "session.list", NULL, 0, ctx->cfg.storaged_timeout_ms);
	calls_go(c);
}

static void
m_stats(struct peer_req *r, void *arg)
{
	struct lcmd_ctx *ctx = ctx_of(arg);
	const struct lcmd_stats *s = &ctx->stats;
	struct rpc_params p;
	struct rpc_error err;
	struct rpc_buf b;

	if (params(r, &p, &err) == -1 || done_params(r, &p, &err, 0) == -1)
		return;
	rpc_buf_init(&b);
	msgpack_pack_map(&b.pk, 6);
	rpc_pack_kv_bool(&b.pk, "storaged_connected", client_ready(ctx->storaged));
	rpc_pack_str(&b.pk, "inputs");
	msgpack_pack_map(&b.pk, 4);
	rpc_pack_kv_i64(&b.pk, "applied", (int64_t)s->inputs);
	rpc_pack_kv_i64(&b.pk, "failed", (int64_t)s->input_errors);
	rpc_pack_kv_i64(&b.pk, "queued", engine_queued());
	rpc_pack_kv_i64(&b.pk, "sessions_busy", engine_busy());
	rpc_pack_str(&b.pk, "notifications");
	msgpack_pack_map(&b.pk, 4);
	rpc_pack_kv_i64(&b.pk, "sent", (int64_t)s->notes_sent);
	rpc_pack_kv_i64(&b.pk, "failed", (int64_t)s->notes_failed);
	rpc_pack_kv_i64(&b.pk, "timed_out", (int64_t)s->notes_timed_out);
	rpc_pack_kv_i64(&b.pk, "pending", notify_pending(ctx->notify));
	rpc_pack_str(&b.pk, "messages");
	msgpack_pack_map(&b.pk, 2);
	rpc_pack_kv_i64(&b.pk, "sent", (int64_t)s->messages_sent);
	rpc_pack_kv_i64(&b.pk, "failed", (int64_t)s->messages_failed);
	rpc_pack_kv_i64(&b.pk, "max_sessions", ctx->cfg.max_sessions);
	rpc_pack_memory(&b.pk);
	peer_reply(r, b.sb.data, b.sb.size);
	rpc_buf_free(&b);
}

const struct server_method api_methods[] = {
	{ "project.add", m_project_add },
	{ "project.list", m_project_list },
	{ "project.get", m_project_get },
	{ "project.remove", m_project_remove },
	{ "session.spawn", m_session_spawn },
	{ "session.list", m_session_list },
	{ "session.get", m_session_get },
	{ "session.kill", m_session_kill },
	{ "session.restore", m_session_restore },
	{ "session.cleanup", m_session_cleanup },
	{ "session.done", m_session_done },
	{ "session.send", m_session_send },
	{ "session.activity", m_session_activity },
	{ "pr.observe", m_pr_observe },
	{ "runtime.report", m_runtime_report },
	{ "tick", m_tick },
	{ "notification.list", m_notification_list },
	{ "stats", m_stats },
	{ NULL, NULL },
};
