/*
 * storaged's maps decoded into the core's structs.  Short strings are
 * copied into fixed fields; long ones (log tails, comment bodies) into heap
 * copies that facts_check_free / facts_comment_free release.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/xmalloc.h"
#include "lcmd/lcmd.h"

static void
str(const msgpack_object *m, const char *key, char *buf, size_t len)
{
	if (rpc_obj_str(rpc_map_get(m, key), buf, len) == -1)
		buf[0] = '\0';
}

static int64_t
num(const msgpack_object *m, const char *key)
{
	int64_t v = 0;

	rpc_obj_i64(rpc_map_get(m, key), &v);
	return v;
}

static int
enumval(const msgpack_object *m, const char *key, const char *const *names, int def)
{
	char buf[64];
	int v;

	if (rpc_obj_str(rpc_map_get(m, key), buf, sizeof(buf)) == -1)
		return def;
	v = model_parse(names, buf);
	return v < 0 ? def : v;
}

int
facts_session(const msgpack_object *m, struct lsession *s)
{
	const msgpack_object *alive;
	int st;

	memset(s, 0, sizeof(*s));
	if (m == NULL || m->type != MSGPACK_OBJECT_MAP)
		return -1;
	str(m, "id", s->id, sizeof(s->id));
	str(m, "project_id", s->project_id, sizeof(s->project_id));
	str(m, "runtime", s->runtime, sizeof(s->runtime));
	if ((st = enumval(m, "state", model_states, -1)) < 0 || s->id[0] == '\0')
		return -1;
	s->state = (enum lstate)st;
	s->reason = enumval(m, "termination_reason", model_reasons, RS_NONE);
	alive = rpc_map_get(m, "is_alive");
	s->is_alive = alive != NULL && alive->type == MSGPACK_OBJECT_BOOLEAN &&
	    alive->via.boolean;
	s->activity = enumval(m, "activity_state", model_activities, ACT_NONE);
	s->activity_at = num(m, "activity_at");
	str(m, "activity_source", s->activity_source, sizeof(s->activity_source));
	s->detecting_attempts = num(m, "detecting_attempts");
	s->detecting_started_at = num(m, "detecting_started_at");
	str(m, "detecting_evidence_hash", s->evidence_hash, sizeof(s->evidence_hash));
	s->state_before_detecting = enumval(m, "state_before_detecting", model_states, -1);
	s->dead_probes = num(m, "dead_probes");
	s->created_at = num(m, "created_at");
	str(m, "runtime_handle", s->runtime_handle, sizeof(s->runtime_handle));
	str(m, "workspace_path", s->workspace_path, sizeof(s->workspace_path));
	return 0;
}

int
facts_pr(const msgpack_object *m, struct lpr *p)
{
	memset(p, 0, sizeof(*p));
	if (m == NULL || m->type != MSGPACK_OBJECT_MAP)
		return -1;
	str(m, "url", p->url, sizeof(p->url));
	p->number = num(m, "number");
	p->state = (enum lpr_state)enumval(m, "state", model_pr_states, PRS_OPEN);
	p->review = (enum lreview)enumval(m, "review_decision", model_reviews, RV_NONE);
	p->ci = (enum lci)enumval(m, "ci_state", model_ci, CI_UNKNOWN);
	p->merge = (enum lmerge)enumval(m, "mergeability", model_merge, MG_UNKNOWN);
	p->created_at = num(m, "created_at");
	return p->url[0] != '\0' ? 0 : -1;
}

/* A heap copy of a string field, or NULL; freed by facts_*_free. */
static const char *
longstr(const msgpack_object *m, const char *key)
{
	const msgpack_object *o = rpc_map_get(m, key);

	if (o == NULL || o->type != MSGPACK_OBJECT_STR)
		return NULL;
	return o->via.str.size > 0 ? xstrndup(o->via.str.ptr, o->via.str.size) :
	    xstrdup("");
}

int
facts_check(const msgpack_object *m, struct lcheck *c)
{
	memset(c, 0, sizeof(*c));
	if (m == NULL || m->type != MSGPACK_OBJECT_MAP)
		return -1;
	str(m, "name", c->name, sizeof(c->name));
	str(m, "commit_hash", c->commit, sizeof(c->commit));
	c->status = (enum lcheck_status)enumval(m, "status", model_check_statuses,
	    CHK_UNKNOWN);
	c->log_tail = longstr(m, "log_tail");
	c->url = longstr(m, "url");
	return 0;
}

int
facts_comment(const msgpack_object *m, struct lcomment *c)
{
	const msgpack_object *r;

	memset(c, 0, sizeof(*c));
	if (m == NULL || m->type != MSGPACK_OBJECT_MAP)
		return -1;
	str(m, "comment_id", c->id, sizeof(c->id));
	c->author = longstr(m, "author");
	c->file = longstr(m, "file");
	c->body = longstr(m, "body");
	c->line = num(m, "line");
	r = rpc_map_get(m, "resolved");
	c->resolved = r != NULL && r->type == MSGPACK_OBJECT_BOOLEAN && r->via.boolean;
	return 0;
}

void
facts_check_free(struct lcheck *c)
{
	free((char *)c->log_tail);
	free((char *)c->url);
	c->log_tail = c->url = NULL;
}

void
facts_comment_free(struct lcomment *c)
{
	free((char *)c->author);
	free((char *)c->file);
	free((char *)c->body);
	c->author = c->file = c->body = NULL;
}

int
facts_tracker(const msgpack_object *m, struct ltracker *t)
{
	const msgpack_object *e;

	memset(t, 0, sizeof(*t));
	if (m == NULL || m->type != MSGPACK_OBJECT_MAP)
		return -1;
	str(m, "reaction", t->reaction, sizeof(t->reaction));
	t->attempts = num(m, "attempts");
	t->first_at = num(m, "first_at");
	t->last_at = num(m, "last_at");
	str(m, "signature", t->signature, sizeof(t->signature));
	e = rpc_map_get(m, "escalated");
	t->escalated = e != NULL && e->type == MSGPACK_OBJECT_BOOLEAN && e->via.boolean;
	return t->reaction[0] != '\0' ? 0 : -1;
}

static void
kv_opt_i64(msgpack_packer *pk, const char *key, int64_t v)
{
	rpc_pack_str(pk, key);
	if (v > 0)
		msgpack_pack_int64(pk, v);
	else
		msgpack_pack_nil(pk);
}

static void
kv_opt_str(msgpack_packer *pk, const char *key, const char *v)
{
	rpc_pack_str(pk, key);
	if (v != NULL && v[0] != '\0')
		rpc_pack_str(pk, v);
	else
		msgpack_pack_nil(pk);
}

void
facts_pack_apply(msgpack_packer *pk, const struct lsession *prev,
    const struct leffects *e, const struct lextra *x)
{
	const struct lsession *s = &e->next;
	int nx = x == NULL ? 0 : (x->branch != NULL) + (x->workspace_path != NULL) +
	    (x->runtime_handle != NULL);
	bool update = reducer_session_changed(prev, s) || nx > 0;
	int n = 1 + update + (e->ntrackers > 0) + (e->nnotes > 0), i;

	msgpack_pack_map(pk, n);
	rpc_pack_kv_str(pk, "id", s->id);
	if (update) {
		rpc_pack_str(pk, "update");
		msgpack_pack_map(pk, 11 + nx);
		if (x != NULL && x->branch != NULL)
			kv_opt_str(pk, "branch", x->branch);
		if (x != NULL && x->workspace_path != NULL)
			kv_opt_str(pk, "workspace_path", x->workspace_path);
		if (x != NULL && x->runtime_handle != NULL)
			kv_opt_str(pk, "runtime_handle", x->runtime_handle);
		rpc_pack_kv_str(pk, "state", model_states[s->state]);
		kv_opt_str(pk, "termination_reason",
		    s->reason >= 0 ? model_reasons[s->reason] : NULL);
		rpc_pack_kv_bool(pk, "is_alive", s->is_alive);
		kv_opt_str(pk, "activity_state",
		    s->activity >= 0 ? model_activities[s->activity] : NULL);
		kv_opt_i64(pk, "activity_at", s->activity_at);
		kv_opt_str(pk, "activity_source", s->activity_source);
		rpc_pack_kv_i64(pk, "detecting_attempts", s->detecting_attempts);
		kv_opt_i64(pk, "detecting_started_at", s->detecting_started_at);
		kv_opt_str(pk, "detecting_evidence_hash", s->evidence_hash);
		kv_opt_str(pk, "state_before_detecting", s->state_before_detecting >= 0 ?
		    model_states[s->state_before_detecting] : NULL);
		rpc_pack_kv_i64(pk, "dead_probes", s->dead_probes);
	}
	if (e->ntrackers > 0) {
		rpc_pack_str(pk, "trackers");
		msgpack_pack_array(pk, e->ntrackers);
		for (i = 0; i < e->ntrackers; i++) {
			const struct ltracker *t = &e->trackers[i].t;

			if (e->trackers[i].clear) {
				msgpack_pack_map(pk, 2);
				rpc_pack_kv_str(pk, "reaction", t->reaction);
				rpc_pack_kv_bool(pk, "clear", true);
				continue;
			}
			msgpack_pack_map(pk, 6);
			rpc_pack_kv_str(pk, "reaction", t->reaction);
			rpc_pack_kv_i64(pk, "attempts", t->attempts);
			kv_opt_i64(pk, "first_at", t->first_at);
			kv_opt_i64(pk, "last_at", t->last_at);
			kv_opt_str(pk, "signature", t->signature);
			rpc_pack_kv_bool(pk, "escalated", t->escalated);
		}
	}
	if (e->nnotes > 0) {
		rpc_pack_str(pk, "notifications");
		msgpack_pack_array(pk, e->nnotes);
		for (i = 0; i < e->nnotes; i++) {
			msgpack_pack_map(pk, 3);
			rpc_pack_kv_str(pk, "priority", model_priorities[e->notes[i].priority]);
			rpc_pack_kv_str(pk, "reaction", e->notes[i].reaction);
			rpc_pack_kv_str(pk, "message", e->notes[i].message);
		}
	}
}
