/*
 * The lifecycle (DESIGN.md §6) as a pure function of (facts, input, now,
 * config) → (next session, effects).  No I/O: lcmd loads the facts from
 * storaged, stores the result with session.apply, then carries out the
 * effects.  Reaction budgets live in trackers (one per reaction name, e.g.
 * "ci-failed/build"), so they survive restarts.
 *
 *  not_started ──spawn ok──► working ◄──activity──► idle / needs_input / stuck
 *       │                      │  ▲
 *   spawn failed        probe  │  │ healthy probe (back to the state before)
 *       ▼              failed/ ▼  │
 *  terminated ◄──────── unknown detecting ──3 same-evidence probes or 5 min──► stuck
 *   (reason)   dead twice,
 *              no recent activity
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/xmalloc.h"
#include "lcmd/lcmd.h"

static bool
terminal(const struct lsession *s)
{
	return s->state == ST_TERMINATED || s->state == ST_DONE;
}

bool
reducer_session_changed(const struct lsession *a, const struct lsession *b)
{
	return a->state != b->state || a->reason != b->reason ||
	    a->is_alive != b->is_alive || a->activity != b->activity ||
	    a->activity_at != b->activity_at ||
	    strcmp(a->activity_source, b->activity_source) != 0 ||
	    a->detecting_attempts != b->detecting_attempts ||
	    a->detecting_started_at != b->detecting_started_at ||
	    strcmp(a->evidence_hash, b->evidence_hash) != 0 ||
	    a->state_before_detecting != b->state_before_detecting ||
	    a->dead_probes != b->dead_probes;
}

void
reducer_effects_free(struct leffects *e)
{
	int i;

	for (i = 0; i < e->nmessages; i++)
		free(e->messages[i]);
	for (i = 0; i < e->nnotes; i++)
		free(e->notes[i].message);
	e->nmessages = e->nnotes = e->ntrackers = 0;
}

static void
message(struct leffects *e, char *text)
{
	if (e->nmessages == EFFECTS_MAX) {
		free(text);
		return;
	}
	e->messages[e->nmessages++] = text;
}

static void
notify(struct leffects *e, enum lpriority prio, const char *reaction, char *text)
{
	struct lnote *n;

	if (e->nnotes == EFFECTS_MAX) {
		free(text);
		return;
	}
	n = &e->notes[e->nnotes++];
	n->priority = prio;
	snprintf(n->reaction, sizeof(n->reaction), "%s", reaction);
	n->message = text;
}

static void
tracker_put(struct leffects *e, const struct ltracker *t)
{
	if (e->ntrackers < EFFECTS_MAX) {
		e->trackers[e->ntrackers].t = *t;
		e->trackers[e->ntrackers].clear = false;
		e->ntrackers++;
	}
}

static void
tracker_clear(struct leffects *e, const char *reaction)
{
	if (e->ntrackers < EFFECTS_MAX) {
		memset(&e->trackers[e->ntrackers], 0, sizeof(e->trackers[0]));
		snprintf(e->trackers[e->ntrackers].t.reaction,
		    sizeof(e->trackers[0].t.reaction), "%s", reaction);
		e->trackers[e->ntrackers].clear = true;
		e->ntrackers++;
	}
}

static const struct ltracker *
tracker_find(const struct lfacts *f, const char *reaction)
{
	size_t i;

	for (i = 0; i < f->ntrackers; i++)
		if (strcmp(f->trackers[i].reaction, reaction) == 0)
			return &f->trackers[i];
	return NULL;
}

/* A fresh tracker, or a copy of the stored one. */
static struct ltracker
tracker_load(const struct lfacts *f, const char *reaction)
{
	const struct ltracker *t = tracker_find(f, reaction);
	struct ltracker n;

	if (t != NULL)
		return *t;
	memset(&n, 0, sizeof(n));
	snprintf(n.reaction, sizeof(n.reaction), "%s", reaction);
	return n;
}

static void
clear_detecting(struct lsession *s)
{
	s->detecting_attempts = 0;
	s->detecting_started_at = 0;
	s->evidence_hash[0] = '\0';
	s->state_before_detecting = -1;
}

static void
terminate(struct lsession *s, enum lreason reason)
{
	s->state = ST_TERMINATED;
	s->reason = reason;
	s->is_alive = false;
	s->dead_probes = 0;
	clear_detecting(s);
}

/* Human notifications tied to entering a state. */
static void
entered(const struct lsession *prev, const struct lsession *next, struct leffects *e)
{
	if (prev->state == next->state && prev->reason == next->reason)
		return;
	/* Back from a detecting blip to where it was: nothing new to tell. */
	if (prev->state == ST_DETECTING &&
	    prev->state_before_detecting == (int)next->state)
		return;
	if (next->state == ST_STUCK)
		notify(e, PRIO_URGENT, "agent-stuck", xasprintf("Session %s is stuck "
		    "and needs a human.", next->id));
	else if (next->state == ST_NEEDS_INPUT)
		notify(e, PRIO_URGENT, "agent-needs-input", xasprintf("Session %s is "
		    "waiting for input.", next->id));
	else if (next->state == ST_TERMINATED && (next->reason == RS_RUNTIME_LOST ||
	    next->reason == RS_AGENT_PROCESS_EXITED))
		notify(e, PRIO_URGENT, "agent-exited", xasprintf("The agent of session "
		    "%s exited (%s).", next->id, model_reasons[next->reason]));
}

static void
on_activity(const struct lfacts *f, const struct linput *in, int64_t now,
    struct lsession *s)
{
	(void)f;
	if (terminal(s) || in->activity < 0)
		return;
	s->activity = in->activity;
	snprintf(s->activity_source, sizeof(s->activity_source), "%s",
	    in->source != NULL ? in->source : "");
	/* "exited" is a claim, not a sign of life: only probes conclude death. */
	if (in->activity == ACT_EXITED)
		return;
	s->activity_at = now;
	s->dead_probes = 0;
	switch (in->activity) {
	case ACT_ACTIVE:
		s->state = ST_WORKING;
		break;
	case ACT_READY:
	case ACT_IDLE:
		s->state = ST_IDLE;
		break;
	case ACT_WAITING_INPUT:
		s->state = ST_NEEDS_INPUT;
		break;
	case ACT_BLOCKED:
		s->state = ST_STUCK;
		break;
	}
	clear_detecting(s);
	s->is_alive = true;
}

static bool
recent_activity(const struct lsession *s, int64_t now, const struct lcmd_config *c)
{
	return s->activity_at > 0 && now - s->activity_at < c->recent_activity_ms;
}

static void
enter_detecting(struct lsession *s, const char *evidence, int64_t now,
    const struct lcmd_config *c)
{
	char hash[65];

	evidence_hash(evidence, hash);
	if (s->state != ST_DETECTING) {
		s->state_before_detecting = (int)s->state;
		s->state = ST_DETECTING;
		s->detecting_started_at = now;
		s->detecting_attempts = 1;
	} else if (strcmp(hash, s->evidence_hash) == 0)
		s->detecting_attempts++;
	else
		s->detecting_attempts = 1;
	snprintf(s->evidence_hash, sizeof(s->evidence_hash), "%s", hash);
	if (s->detecting_attempts >= c->detecting_max_attempts ||
	    now - s->detecting_started_at >= c->detecting_max_ms) {
		s->state = ST_STUCK;
		clear_detecting(s);
	}
}

static void
on_probe(const struct linput *in, int64_t now, const struct lcmd_config *c,
    struct lsession *s)
{
	bool process_runtime = strcmp(s->runtime, "process") == 0;
	int r = in->probe_runtime, p = in->probe_process;

	if (terminal(s) || s->state == ST_NOT_STARTED)
		return;
	/* For the process runtime the runtime is the process. */
	if (process_runtime && (r == PROBE_ALIVE || r == PROBE_DEAD))
		p = r == PROBE_ALIVE ? PROC_ALIVE : PROC_DEAD;
	if (r == PROBE_ALIVE && p == PROC_ALIVE) {
		if (s->state == ST_DETECTING)
			s->state = s->state_before_detecting >= 0 ?
			    (enum lstate)s->state_before_detecting : ST_WORKING;
		clear_detecting(s);
		s->dead_probes = 0;
		s->is_alive = true;
		return;
	}
	if (r == PROBE_ALIVE && p == PROC_INDETERMINATE) {
		/* The runtime is there; nothing says the agent is gone. */
		s->dead_probes = 0;
		return;
	}
	if ((r == PROBE_DEAD && p == PROC_DEAD) || (r == PROBE_ALIVE && p == PROC_DEAD)) {
		if (recent_activity(s, now, c)) {
			s->dead_probes = 0;
			return;
		}
		if (++s->dead_probes >= 2)
			terminate(s, r == PROBE_DEAD ? RS_RUNTIME_LOST :
			    RS_AGENT_PROCESS_EXITED);
		return;
	}
	/* failed, unknown or contradictory: never death, only detecting. */
	s->dead_probes = 0;
	if (s->state == ST_STUCK)
		return;		/* already a human's: no stuck/detecting flapping */
	enter_detecting(s, in->evidence, now, c);
}

static void
on_tick(int64_t now, const struct lcmd_config *c, struct lsession *s)
{
	if (s->state == ST_DETECTING && s->detecting_started_at > 0 &&
	    now - s->detecting_started_at >= c->detecting_max_ms) {
		s->state = ST_STUCK;
		clear_detecting(s);
	}
}

/* Appends formatted text to a heap string (NULL starts one). */
static void AO_PRINTF(2, 3)
append(char **buf, const char *fmt, ...)
{
	va_list ap;
	char *more, *n;

	va_start(ap, fmt);
	if (vasprintf(&more, fmt, ap) == -1)
		fatalx("out of memory");
	va_end(ap);
	n = xasprintf("%s%s", *buf != NULL ? *buf : "", more);
	free(more);
	free(*buf);
	*buf = n;
}

/*
 * ci-failed: for each check whose newest run failed on a commit not yet
 * handled, nudge the agent — unless its last ci_brake_runs runs all failed,
 * then escalate to a human instead (once).  A check that passes again
 * resets its budget.
 */
static void
react_ci(const struct lfacts *f, int64_t now, const struct lcmd_config *c,
    struct leffects *e)
{
	char *nudge = NULL;
	size_t i, j;

	for (i = 0; i < f->nchecks; i++) {
		const struct lcheck *run = &f->checks[i];
		char reaction[sizeof(((struct ltracker *)0)->reaction)];
		struct ltracker t;
		bool newest = true, braked = true;
		int64_t runs = 0;

		for (j = 0; j < i; j++)
			if (strcmp(f->checks[j].name, run->name) == 0)
				newest = false;
		if (!newest)
			continue;
		snprintf(reaction, sizeof(reaction), "ci-failed/%s", run->name);
		if (run->status == CHK_PASSED) {
			if (tracker_find(f, reaction) != NULL)
				tracker_clear(e, reaction);
			continue;
		}
		if (run->status != CHK_FAILED)
			continue;
		t = tracker_load(f, reaction);
		if (strcmp(t.signature, run->commit) == 0)
			continue;	/* this failing run was handled */
		for (j = i; j < f->nchecks && runs < c->ci_brake_runs; j++) {
			if (strcmp(f->checks[j].name, run->name) != 0)
				continue;
			runs++;
			if (f->checks[j].status != CHK_FAILED)
				braked = false;
		}
		braked = braked && runs >= c->ci_brake_runs;
		snprintf(t.signature, sizeof(t.signature), "%s", run->commit);
		t.last_at = now;
		if (t.first_at == 0)
			t.first_at = now;
		if (braked) {
			if (!t.escalated)
				notify(e, PRIO_URGENT, reaction, xasprintf("Session %s: "
				    "check '%s' failed %lld times in a row (latest on "
				    "%s); the agent could not fix it.", f->session.id,
				    run->name, (long long)runs, run->commit));
			t.escalated = true;
		} else {
			t.attempts++;
			if (nudge == NULL)
				append(&nudge, "CI failed on your pull request.\n");
			append(&nudge, "\nCheck '%s' failed on commit %s.\n", run->name,
			    run->commit);
			if (run->log_tail != NULL && run->log_tail[0] != '\0')
				append(&nudge, "Log tail:\n%s\n", run->log_tail);
		}
		tracker_put(e, &t);
	}
	if (nudge != NULL) {
		append(&nudge, "\nPlease fix the failures and push.");
		message(e, nudge);
	}
}

/*
 * review-comments: when changes are requested or comments are unresolved,
 * send the agent the unresolved comments — again only when the set changes,
 * at most review_max_nudges times, then escalate once.
 */
static void
react_review(const struct lfacts *f, const struct lpr *pr, int64_t now,
    const struct lcmd_config *c, struct leffects *e)
{
	static const char reaction[] = "review-comments";
	char sig[65], *ids = NULL, *text;
	struct ltracker t;
	size_t i, unresolved = 0;

	/* The signature hashes every unresolved id: long lists still compare right. */
	for (i = 0; i < f->ncomments; i++)
		if (!f->comments[i].resolved) {
			append(&ids, "%s%s", unresolved > 0 ? "," : "", f->comments[i].id);
			unresolved++;
		}
	if (pr->review != RV_CHANGES_REQUESTED && unresolved == 0) {
		if (tracker_find(f, reaction) != NULL)
			tracker_clear(e, reaction);
		free(ids);
		return;
	}
	if (pr->review == RV_CHANGES_REQUESTED)
		append(&ids, "%schanges_requested", unresolved > 0 ? "," : "");
	evidence_sha256(ids, sig);
	free(ids);
	t = tracker_load(f, reaction);
	if (strcmp(t.signature, sig) == 0)
		return;
	snprintf(t.signature, sizeof(t.signature), "%s", sig);
	t.last_at = now;
	if (t.first_at == 0)
		t.first_at = now;
	if (t.attempts >= c->review_max_nudges) {
		if (!t.escalated)
			notify(e, PRIO_URGENT, reaction, xasprintf("Session %s: review "
			    "feedback on %s is still open after %lld nudges.",
			    f->session.id, pr->url, (long long)t.attempts));
		t.escalated = true;
		tracker_put(e, &t);
		return;
	}
	t.attempts++;
	text = NULL;
	append(&text, "%s", pr->review == RV_CHANGES_REQUESTED ?
	    "Changes were requested on your pull request.\n" :
	    "Your pull request has unresolved review comments.\n");
	for (i = 0; i < f->ncomments; i++) {
		const struct lcomment *cm = &f->comments[i];
		char where[300];

		if (cm->resolved)
			continue;
		if (cm->file != NULL && cm->line > 0)
			snprintf(where, sizeof(where), "%s:%lld", cm->file,
			    (long long)cm->line);
		else
			snprintf(where, sizeof(where), "%s",
			    cm->file != NULL ? cm->file : "general");
		append(&text, "\n- %s (%s): %s\n", where,
		    cm->author != NULL ? cm->author : "reviewer",
		    cm->body != NULL ? cm->body : "");
	}
	append(&text, "\nPlease address them and push.");
	message(e, text);
	tracker_put(e, &t);
}

/* A nudge now, an escalation after escalate_after_ms (checked on tick). */
static void
react_timed(const struct lfacts *f, const char *reaction, bool active, bool fire_now,
    const char *nudge, int64_t now, const struct lcmd_config *c, struct leffects *e,
    const char *what)
{
	const struct ltracker *old = tracker_find(f, reaction);
	struct ltracker t;

	if (!active) {
		if (old != NULL)
			tracker_clear(e, reaction);
		return;
	}
	if (old == NULL) {
		if (!fire_now)
			return;
		t = tracker_load(f, reaction);
		t.attempts = 1;
		t.first_at = t.last_at = now;
		message(e, xstrdup(nudge));
		tracker_put(e, &t);
		return;
	}
	if (!old->escalated && now - old->first_at >= c->escalate_after_ms) {
		t = *old;
		t.escalated = true;
		t.last_at = now;
		notify(e, PRIO_URGENT, reaction, xasprintf("Session %s: %s for %lld "
		    "minutes.", f->session.id, what,
		    (long long)((now - old->first_at) / 60000)));
		tracker_put(e, &t);
	}
}

static void
react_pr(const struct lfacts *f, const struct lpr *pr, int64_t now,
    const struct lcmd_config *c, struct leffects *e, bool observed)
{
	struct ltracker t;
	bool green;

	if (pr->state == PRS_CLOSED) {
		t = tracker_load(f, "pr-closed");
		if (observed && strcmp(t.signature, pr->url) != 0) {
			snprintf(t.signature, sizeof(t.signature), "%s", pr->url);
			t.attempts = 1;
			t.first_at = t.last_at = now;
			notify(e, PRIO_ACTION, "pr-closed", xasprintf("Session %s: pull "
			    "request %s was closed without merging.", f->session.id,
			    pr->url));
			tracker_put(e, &t);
		}
		return;
	}
	if (observed) {
		const struct ltracker *closed = tracker_find(f, "pr-closed");

		/* Reopened: a later close is news again. */
		if (closed != NULL && strcmp(closed->signature, pr->url) == 0)
			tracker_clear(e, "pr-closed");
		react_ci(f, now, c, e);
		react_review(f, pr, now, c, e);
	}
	react_timed(f, "merge-conflicts", pr->merge == MG_CONFLICTING, observed,
	    "Your pull request has merge conflicts with its base branch. Please "
	    "merge or rebase onto the base branch, resolve them and push.",
	    now, c, e, "merge conflicts unresolved");
	green = pr->review == RV_APPROVED && pr->ci == CI_PASSING;
	if (observed) {
		const struct ltracker *old = tracker_find(f, "approved-and-green");

		if (green && (old == NULL || strcmp(old->signature, pr->url) != 0)) {
			t = tracker_load(f, "approved-and-green");
			snprintf(t.signature, sizeof(t.signature), "%s", pr->url);
			t.attempts = 1;
			t.first_at = t.last_at = now;
			notify(e, PRIO_ACTION, "approved-and-green", xasprintf("Session "
			    "%s: pull request %s is approved and green.",
			    f->session.id, pr->url));
			tracker_put(e, &t);
		} else if (!green && old != NULL)
			tracker_clear(e, "approved-and-green");
	}
}

/* Idle, or detecting while it was idle: a probe blip keeps the idle budget. */
static bool
idle_like(const struct lsession *s)
{
	return s->state == ST_IDLE || (s->state == ST_DETECTING &&
	    s->state_before_detecting == ST_IDLE);
}

void
reducer_apply(const struct lfacts *f, const struct linput *in, int64_t now,
    const struct lcmd_config *c, struct leffects *e)
{
	const struct lsession *prev = &f->session;
	struct lsession *s = &e->next;
	const struct lpr *pr = status_pick_pr(f->prs, f->nprs);
	bool live_pr;

	memset(e, 0, sizeof(*e));
	*s = *prev;
	switch (in->type) {
	case IN_SPAWN_OK:
		if (s->state != ST_NOT_STARTED)
			break;
		s->state = ST_WORKING;
		s->is_alive = true;
		/* Spawning is a sign of life: the recent-activity window starts. */
		s->activity_at = now;
		snprintf(s->activity_source, sizeof(s->activity_source), "spawn");
		break;
	case IN_SPAWN_FAILED:
		if (terminal(s))
			break;
		terminate(s, RS_ERROR_IN_PROCESS);
		e->stop_runtime = true;
		break;
	case IN_ACTIVITY:
		on_activity(f, in, now, s);
		break;
	case IN_PROBE:
		on_probe(in, now, c, s);
		if (s->state == ST_TERMINATED)
			e->stop_runtime = true;
		break;
	case IN_PR:
		if (terminal(s) || pr == NULL)
			break;
		if (pr->state == PRS_MERGED) {
			terminate(s, RS_PR_MERGED);
			e->stop_runtime = true;
			tracker_clear(e, "*");
			notify(e, PRIO_INFO, "pr-merged", xasprintf("Session %s: pull "
			    "request %s was merged.", s->id, pr->url));
			return;
		}
		react_pr(f, pr, now, c, e, true);
		break;
	case IN_KILL:
		if (s->state == ST_TERMINATED)
			break;
		terminate(s, RS_MANUALLY_KILLED);
		e->stop_runtime = true;
		return;		/* a kill fires no reaction */
	case IN_RESTORE:
		if (s->state != ST_TERMINATED && s->state != ST_DONE)
			break;
		s->state = ST_NOT_STARTED;
		s->reason = RS_NONE;
		s->is_alive = false;
		s->dead_probes = 0;
		clear_detecting(s);
		return;
	case IN_TICK:
		on_tick(now, c, s);
		if (!terminal(s) && pr != NULL && pr->state != PRS_CLOSED &&
		    pr->state != PRS_MERGED)
			react_pr(f, pr, now, c, e, false);
		break;
	case IN_DONE:
		if (terminal(s))
			break;
		s->state = ST_DONE;
		s->is_alive = false;
		clear_detecting(s);
		e->stop_runtime = true;
		return;
	case IN_CLEANUP:
		if (s->state != ST_TERMINATED)
			terminate(s, RS_AUTO_CLEANUP);
		e->stop_runtime = true;
		return;
	}
	entered(prev, s, e);
	/*
	 * agent-idle: an idle agent with no PR under way is nudged, and
	 * escalated if it stays idle.
	 */
	live_pr = pr != NULL && (pr->state == PRS_OPEN || pr->state == PRS_DRAFT);
	react_timed(f, "agent-idle", idle_like(s) && !live_pr, !idle_like(prev),
	    "You seem to be idle. If the task is done, "
	    "open a pull request (or say so); otherwise, continue with it.",
	    now, c, e, "the agent has been idle");
}
