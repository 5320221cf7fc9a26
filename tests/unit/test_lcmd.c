/*
 * lcmd's pure core (DESIGN.md §6): the enumerations, status derivation,
 * evidence fingerprints and the reducer with its reactions.  Multi-step
 * scenarios carry the session and the reaction trackers from one input to
 * the next exactly as lcmd does: the next session replaces the stored one
 * and the tracker operations are applied to the stored trackers.
 */
#include <stdio.h>
#include <string.h>

#include "lcmd/lcmd.h"
#include "tests/lib/testlib.h"

#define SEC	1000LL
#define MIN	(60 * SEC)
#define T0	1796012968000LL		/* 2026-11-30T04:09:28Z */

#define PR_URL	"https://github.com/acme/app/pull/7"

#define ck_assert_contains(hay, needle) \
	ck_assert_msg(strstr((hay), (needle)) != NULL, \
	    "'%s' not found in '%s'", (needle), (hay))
#define ck_assert_not_contains(hay, needle) \
	ck_assert_msg(strstr((hay), (needle)) == NULL, \
	    "'%s' unexpectedly in '%s'", (needle), (hay))

/* DESIGN.md §2 defaults. */
static const struct lcmd_config cfg = {
	.recent_activity_ms = 60000,
	.detecting_max_attempts = 3,
	.detecting_max_ms = 300000,
	.ci_brake_runs = 3,
	.review_max_nudges = 3,
	.escalate_after_ms = 900000,
	.notify_timeout_ms = 10000,
	.max_sessions = 16,
};

/* Fixtures. */

static struct lsession
sess(enum lstate state)
{
	struct lsession s;

	memset(&s, 0, sizeof(s));
	snprintf(s.id, sizeof(s.id), "app-1");
	snprintf(s.project_id, sizeof(s.project_id), "app");
	snprintf(s.runtime, sizeof(s.runtime), "tmux");
	s.state = state;
	s.reason = RS_NONE;
	s.is_alive = state != ST_NOT_STARTED && state != ST_DONE &&
	    state != ST_TERMINATED;
	s.activity = ACT_NONE;
	s.state_before_detecting = -1;
	s.created_at = T0 - 60 * MIN;
	return s;
}

static struct lsession
sess_terminated(enum lreason reason)
{
	struct lsession s = sess(ST_TERMINATED);

	s.reason = reason;
	return s;
}

static struct lpr
mkpr(enum lpr_state state, enum lreview review, enum lci ci, enum lmerge merge)
{
	struct lpr p;

	memset(&p, 0, sizeof(p));
	snprintf(p.url, sizeof(p.url), PR_URL);
	p.number = 7;
	p.state = state;
	p.review = review;
	p.ci = ci;
	p.merge = merge;
	p.created_at = T0 - 30 * MIN;
	return p;
}

struct world {
	struct lsession s;
	struct lpr prs[4];		/* newest first */
	size_t nprs;
	struct lcheck checks[16];	/* newest first */
	size_t nchecks;
	struct lcomment comments[16];
	size_t ncomments;
	struct ltracker trackers[32];
	size_t ntrackers;
};

static void
world_init(struct world *w, enum lstate state)
{
	memset(w, 0, sizeof(*w));
	w->s = sess(state);
}

static void
world_pr(struct world *w, enum lpr_state state, enum lreview review, enum lci ci,
    enum lmerge merge)
{
	w->prs[0] = mkpr(state, review, ci, merge);
	w->nprs = 1;
}

/* A new run of a check: it becomes the newest. */
static void
push_check(struct world *w, const char *name, const char *commit,
    enum lcheck_status status, const char *log_tail)
{
	struct lcheck *c;

	ck_assert_uint_lt(w->nchecks, sizeof(w->checks) / sizeof(w->checks[0]));
	memmove(&w->checks[1], &w->checks[0], w->nchecks * sizeof(w->checks[0]));
	w->nchecks++;
	c = &w->checks[0];
	memset(c, 0, sizeof(*c));
	snprintf(c->name, sizeof(c->name), "%s", name);
	snprintf(c->commit, sizeof(c->commit), "%s", commit);
	c->status = status;
	c->log_tail = log_tail;
	c->url = "https://ci.example/run";
}

static struct lcomment *
add_comment(struct world *w, const char *id, const char *body)
{
	struct lcomment *c;

	ck_assert_uint_lt(w->ncomments,
	    sizeof(w->comments) / sizeof(w->comments[0]));
	c = &w->comments[w->ncomments++];
	memset(c, 0, sizeof(*c));
	snprintf(c->id, sizeof(c->id), "%s", id);
	c->author = "alice";
	c->file = "src/main.c";
	c->line = 42;
	c->body = body;
	return c;
}

static void
add_tracker(struct world *w, const char *reaction, const char *signature)
{
	struct ltracker *t;

	ck_assert_uint_lt(w->ntrackers,
	    sizeof(w->trackers) / sizeof(w->trackers[0]));
	t = &w->trackers[w->ntrackers++];
	memset(t, 0, sizeof(*t));
	snprintf(t->reaction, sizeof(t->reaction), "%s", reaction);
	snprintf(t->signature, sizeof(t->signature), "%s", signature);
	t->attempts = 1;
	t->first_at = t->last_at = T0 - MIN;
}

static struct ltracker *
tracker(struct world *w, const char *reaction)
{
	size_t i;

	for (i = 0; i < w->ntrackers; i++)
		if (strcmp(w->trackers[i].reaction, reaction) == 0)
			return &w->trackers[i];
	return NULL;
}

/* What lcmd does with tracker operations: put replaces or adds, clear deletes. */
static void
trackers_apply(struct world *w, const struct leffects *e)
{
	int i;
	size_t j;

	for (i = 0; i < e->ntrackers; i++) {
		const struct ltracker_op *op = &e->trackers[i];
		struct ltracker *t = tracker(w, op->t.reaction);

		if (op->clear && strcmp(op->t.reaction, "*") == 0)
			w->ntrackers = 0;
		else if (op->clear && t != NULL) {
			j = (size_t)(t - w->trackers);
			memmove(t, t + 1, (w->ntrackers - j - 1) * sizeof(*t));
			w->ntrackers--;
		} else if (!op->clear && t != NULL)
			*t = op->t;
		else if (!op->clear) {
			ck_assert_uint_lt(w->ntrackers,
			    sizeof(w->trackers) / sizeof(w->trackers[0]));
			w->trackers[w->ntrackers++] = op->t;
		}
	}
}

static struct lfacts
facts(const struct world *w)
{
	struct lfacts f;

	memset(&f, 0, sizeof(f));
	f.session = w->s;
	f.prs = w->prs;
	f.nprs = w->nprs;
	f.checks = w->checks;
	f.nchecks = w->nchecks;
	f.comments = w->comments;
	f.ncomments = w->ncomments;
	f.trackers = w->trackers;
	f.ntrackers = w->ntrackers;
	return f;
}

/* Applies in at now; w moves on.  The caller frees e. */
static void
step(struct world *w, struct linput in, int64_t now, struct leffects *e)
{
	struct lfacts f = facts(w);

	reducer_apply(&f, &in, now, &cfg, e);
	w->s = e->next;
	trackers_apply(w, e);
}

/* A step whose effects are only counted. */
static void
expect(struct world *w, struct linput in, int64_t now, int nmessages, int nnotes)
{
	struct leffects e;

	step(w, in, now, &e);
	ck_assert_int_eq(e.nmessages, nmessages);
	ck_assert_int_eq(e.nnotes, nnotes);
	reducer_effects_free(&e);
}

/*
 * An input that must leave the session and everything else alone; may_stop
 * allows a (repeated, harmless) request to stop the runtime.
 */
static void
expect_ignored(struct world *w, struct linput in, int64_t now, bool may_stop)
{
	struct lsession before = w->s;
	struct leffects e;
	size_t ntrackers = w->ntrackers;

	step(w, in, now, &e);
	ck_assert(!reducer_session_changed(&before, &e.next));
	ck_assert_int_eq(e.next.state, before.state);
	ck_assert_int_eq(e.next.reason, before.reason);
	if (!may_stop)
		ck_assert(!e.stop_runtime);
	ck_assert_int_eq(e.nmessages, 0);
	ck_assert_int_eq(e.nnotes, 0);
	ck_assert_int_eq(e.ntrackers, 0);
	ck_assert_uint_eq(w->ntrackers, ntrackers);
	reducer_effects_free(&e);
}

static void
expect_nothing(struct world *w, struct linput in, int64_t now)
{
	expect_ignored(w, in, now, false);
}

static int
notes_of(const struct leffects *e, const char *reaction)
{
	int i, n = 0;

	for (i = 0; i < e->nnotes; i++)
		if (strcmp(e->notes[i].reaction, reaction) == 0)
			n++;
	return n;
}

static const struct lnote *
note(const struct leffects *e, const char *reaction)
{
	int i;

	for (i = 0; i < e->nnotes; i++)
		if (strcmp(e->notes[i].reaction, reaction) == 0)
			return &e->notes[i];
	return NULL;
}

static struct linput
input(enum linput_type type)
{
	struct linput in;

	memset(&in, 0, sizeof(in));
	in.type = type;
	in.activity = ACT_NONE;
	return in;
}

static struct linput
activity(int act)
{
	struct linput in = input(IN_ACTIVITY);

	in.activity = act;
	in.source = "hook";
	return in;
}

static struct linput
probe(int runtime, int process, const char *evidence)
{
	struct linput in = input(IN_PROBE);

	in.probe_runtime = runtime;
	in.probe_process = process;
	in.evidence = evidence;
	return in;
}

/*
 * model
 */

START_TEST(model_tables)
{
	ck_assert_int_eq(model_parse(model_states, "not_started"), ST_NOT_STARTED);
	ck_assert_int_eq(model_parse(model_states, "detecting"), ST_DETECTING);
	ck_assert_int_eq(model_parse(model_states, "terminated"), ST_TERMINATED);
	ck_assert_int_eq(model_parse(model_reasons, "manually_killed"),
	    RS_MANUALLY_KILLED);
	ck_assert_int_eq(model_parse(model_reasons, "pr_merged"), RS_PR_MERGED);
	ck_assert_int_eq(model_parse(model_activities, "waiting_input"),
	    ACT_WAITING_INPUT);
	ck_assert_int_eq(model_parse(model_activities, "exited"), ACT_EXITED);
	ck_assert_int_eq(model_parse(model_pr_states, "closed"), PRS_CLOSED);
	ck_assert_int_eq(model_parse(model_reviews, "review_required"),
	    RV_REVIEW_REQUIRED);
	ck_assert_int_eq(model_parse(model_ci, "failing"), CI_FAILING);
	ck_assert_int_eq(model_parse(model_merge, "unstable"), MG_UNSTABLE);
	ck_assert_int_eq(model_parse(model_check_statuses, "cancelled"),
	    CHK_CANCELLED);
	ck_assert_int_eq(model_parse(model_probes, "unknown"), PROBE_UNKNOWN);
	ck_assert_int_eq(model_parse(model_procs, "indeterminate"),
	    PROC_INDETERMINATE);
	ck_assert_int_eq(model_parse(model_priorities, "info"), PRIO_INFO);
	/* Every table ends right after its enum's last value. */
	ck_assert_ptr_null(model_states[ST_TERMINATED + 1]);
	ck_assert_ptr_null(model_reasons[RS_PR_MERGED + 1]);
	ck_assert_ptr_null(model_activities[ACT_EXITED + 1]);
	ck_assert_ptr_null(model_pr_states[PRS_CLOSED + 1]);
	ck_assert_ptr_null(model_reviews[RV_REVIEW_REQUIRED + 1]);
	ck_assert_ptr_null(model_ci[CI_FAILING + 1]);
	ck_assert_ptr_null(model_merge[MG_UNSTABLE + 1]);
	ck_assert_ptr_null(model_check_statuses[CHK_CANCELLED + 1]);
	ck_assert_ptr_null(model_probes[PROBE_UNKNOWN + 1]);
	ck_assert_ptr_null(model_procs[PROC_INDETERMINATE + 1]);
	ck_assert_ptr_null(model_priorities[PRIO_INFO + 1]);
}
END_TEST

START_TEST(model_bad_input)
{
	ck_assert_int_eq(model_parse(model_states, "bogus"), -1);
	ck_assert_int_eq(model_parse(model_states, NULL), -1);
	ck_assert_int_eq(model_parse(model_states, ""), -1);
	ck_assert_int_eq(model_parse(model_states, "Working"), -1);
	ck_assert_int_eq(model_parse(model_states, "working "), -1);
	ck_assert_int_eq(model_parse(model_states, "work"), -1);
	/* A name from another table. */
	ck_assert_int_eq(model_parse(model_reasons, "working"), -1);
	ck_assert_int_eq(model_parse(model_activities, "needs_input"), -1);
	ck_assert_int_eq(model_parse(model_probes, "indeterminate"), -1);
	ck_assert_int_eq(model_parse(model_ci, "failed"), -1);
	ck_assert_int_eq(model_parse(model_check_statuses, "failing"), -1);
	ck_assert_int_eq(model_parse(model_priorities, "URGENT"), -1);
}
END_TEST

/* tmux names: safe characters only, and distinct ids never share a name. */
START_TEST(tmux_names)
{
	char a[128], b[128];

	runtime_tmux_name("app-1", a, sizeof(a));
	ck_assert_str_eq(a, "ao-app-1");
	runtime_tmux_name("a.b-1", a, sizeof(a));
	runtime_tmux_name("a_b-1", b, sizeof(b));
	ck_assert_str_eq(a, "ao-a_2eb-1");
	ck_assert_str_eq(b, "ao-a__b-1");
	ck_assert_str_ne(a, b);
	runtime_tmux_name("x:y", a, sizeof(a));
	ck_assert_ptr_null(strchr(a, ':'));
	runtime_tmux_name("a_2eb-1", b, sizeof(b));
	runtime_tmux_name("a.b-1", a, sizeof(a));
	ck_assert_str_ne(a, b);
	runtime_tmux_name("long-long-long-long", a, 8);	/* truncated, terminated */
	ck_assert_uint_lt(strlen(a), 8);
}
END_TEST

Suite *
model_suite(void)
{
	Suite *s = suite_create("model");
	TCase *tc = tcase_create("tables");

	tcase_set_timeout(tc, 10);
	tcase_add_test(tc, model_tables);
	tcase_add_test(tc, tmux_names);
	suite_add_tcase(s, tc);
	tc = tcase_create("bad input");
	tcase_set_timeout(tc, 10);
	tcase_add_test(tc, model_bad_input);
	suite_add_tcase(s, tc);
	return s;
}
TEST_SUITE(model_suite)

/*
 * status
 */

#define NOPR	false, PRS_OPEN, RV_NONE, CI_UNKNOWN, MG_UNKNOWN
#define PR(st, rv, ci, mg)	true, st, rv, ci, mg

static const struct status_case {
	enum lstate state;
	int reason;
	bool has_pr;
	enum lpr_state pr_state;
	enum lreview review;
	enum lci ci;
	enum lmerge merge;
	bool unresolved;
	const char *want;
} status_cases[] = {
	/* 1. the session itself, over any PR */
	{ ST_DONE, RS_NONE, NOPR, false, "done" },
	{ ST_DONE, RS_NONE, PR(PRS_OPEN, RV_APPROVED, CI_FAILING, MG_MERGEABLE),
	    true, "done" },
	{ ST_TERMINATED, RS_MANUALLY_KILLED, NOPR, false, "killed" },
	{ ST_TERMINATED, RS_RUNTIME_LOST, NOPR, false, "killed" },
	{ ST_TERMINATED, RS_AGENT_PROCESS_EXITED,
	    PR(PRS_OPEN, RV_NONE, CI_FAILING, MG_UNKNOWN), false, "killed" },
	{ ST_TERMINATED, RS_AUTO_CLEANUP, NOPR, false, "cleanup" },
	{ ST_TERMINATED, RS_PR_MERGED,
	    PR(PRS_MERGED, RV_APPROVED, CI_PASSING, MG_UNKNOWN), false, "cleanup" },
	{ ST_TERMINATED, RS_ERROR_IN_PROCESS, NOPR, false, "errored" },
	{ ST_TERMINATED, RS_PROBE_FAILURE,
	    PR(PRS_DRAFT, RV_NONE, CI_PENDING, MG_UNKNOWN), false, "errored" },
	{ ST_NEEDS_INPUT, RS_NONE, PR(PRS_OPEN, RV_NONE, CI_FAILING, MG_UNKNOWN),
	    false, "needs_input" },
	{ ST_NEEDS_INPUT, RS_NONE, PR(PRS_MERGED, RV_NONE, CI_PASSING, MG_UNKNOWN),
	    false, "needs_input" },
	{ ST_STUCK, RS_NONE, PR(PRS_OPEN, RV_APPROVED, CI_PASSING, MG_MERGEABLE),
	    false, "stuck" },
	{ ST_STUCK, RS_NONE, NOPR, false, "stuck" },
	{ ST_DETECTING, RS_NONE, PR(PRS_MERGED, RV_NONE, CI_UNKNOWN, MG_UNKNOWN),
	    false, "detecting" },
	{ ST_DETECTING, RS_NONE, PR(PRS_DRAFT, RV_CHANGES_REQUESTED, CI_FAILING,
	    MG_CONFLICTING), true, "detecting" },
	{ ST_NOT_STARTED, RS_NONE, NOPR, false, "spawning" },
	{ ST_NOT_STARTED, RS_NONE, PR(PRS_OPEN, RV_NONE, CI_FAILING, MG_UNKNOWN),
	    false, "spawning" },
	/* 2. the PR of a working or idle session */
	{ ST_WORKING, RS_NONE, PR(PRS_MERGED, RV_NONE, CI_FAILING, MG_CONFLICTING),
	    true, "merged" },
	{ ST_IDLE, RS_NONE, PR(PRS_MERGED, RV_APPROVED, CI_PASSING, MG_UNKNOWN),
	    false, "merged" },
	{ ST_WORKING, RS_NONE, PR(PRS_CLOSED, RV_CHANGES_REQUESTED, CI_FAILING,
	    MG_CONFLICTING), true, "working" },
	{ ST_IDLE, RS_NONE, PR(PRS_CLOSED, RV_APPROVED, CI_PASSING, MG_MERGEABLE),
	    false, "idle" },
	{ ST_WORKING, RS_NONE, PR(PRS_OPEN, RV_APPROVED, CI_FAILING, MG_MERGEABLE),
	    false, "ci_failed" },
	{ ST_WORKING, RS_NONE, PR(PRS_DRAFT, RV_NONE, CI_FAILING, MG_UNKNOWN),
	    false, "ci_failed" },
	{ ST_IDLE, RS_NONE, PR(PRS_DRAFT, RV_CHANGES_REQUESTED, CI_PENDING,
	    MG_MERGEABLE), true, "draft" },
	{ ST_WORKING, RS_NONE, PR(PRS_DRAFT, RV_NONE, CI_PASSING, MG_UNKNOWN),
	    true, "draft" },
	{ ST_WORKING, RS_NONE, PR(PRS_OPEN, RV_CHANGES_REQUESTED, CI_PASSING,
	    MG_MERGEABLE), false, "changes_requested" },
	{ ST_WORKING, RS_NONE, PR(PRS_OPEN, RV_APPROVED, CI_PASSING, MG_MERGEABLE),
	    true, "changes_requested" },
	{ ST_IDLE, RS_NONE, PR(PRS_OPEN, RV_NONE, CI_UNKNOWN, MG_UNKNOWN),
	    true, "changes_requested" },
	{ ST_WORKING, RS_NONE, PR(PRS_OPEN, RV_APPROVED, CI_PASSING, MG_MERGEABLE),
	    false, "mergeable" },
	{ ST_IDLE, RS_NONE, PR(PRS_OPEN, RV_REVIEW_REQUIRED, CI_PENDING,
	    MG_MERGEABLE), false, "mergeable" },
	{ ST_WORKING, RS_NONE, PR(PRS_OPEN, RV_APPROVED, CI_PASSING, MG_UNKNOWN),
	    false, "approved" },
	{ ST_WORKING, RS_NONE, PR(PRS_OPEN, RV_APPROVED, CI_PENDING,
	    MG_CONFLICTING), false, "approved" },
	{ ST_WORKING, RS_NONE, PR(PRS_OPEN, RV_REVIEW_REQUIRED, CI_PASSING,
	    MG_BLOCKED), false, "review_pending" },
	{ ST_WORKING, RS_NONE, PR(PRS_OPEN, RV_NONE, CI_PASSING, MG_UNKNOWN),
	    false, "pr_open" },
	{ ST_IDLE, RS_NONE, PR(PRS_OPEN, RV_NONE, CI_PENDING, MG_UNSTABLE),
	    false, "pr_open" },
	/* 3. no PR */
	{ ST_IDLE, RS_NONE, NOPR, false, "idle" },
	{ ST_WORKING, RS_NONE, NOPR, false, "working" },
};

START_TEST(status_table)
{
	const struct status_case *c = &status_cases[_i];
	struct lsession s = sess(c->state);
	struct lpr pr = mkpr(c->pr_state, c->review, c->ci, c->merge);

	s.reason = c->reason;
	ck_assert_msg(strcmp(status_derive(&s, c->has_pr ? &pr : NULL,
	    c->unresolved), c->want) == 0, "case %d: got %s, want %s", _i,
	    status_derive(&s, c->has_pr ? &pr : NULL, c->unresolved), c->want);
}
END_TEST

START_TEST(status_pick)
{
	struct lpr prs[3];

	memset(prs, 0, sizeof(prs));
	ck_assert_ptr_null(status_pick_pr(prs, 0));
	/* newest first: a closed newest yields to an older open one */
	prs[0] = mkpr(PRS_CLOSED, RV_NONE, CI_FAILING, MG_UNKNOWN);
	prs[1] = mkpr(PRS_OPEN, RV_NONE, CI_PASSING, MG_UNKNOWN);
	prs[2] = mkpr(PRS_DRAFT, RV_NONE, CI_PASSING, MG_UNKNOWN);
	ck_assert_ptr_eq(status_pick_pr(prs, 3), &prs[1]);
	prs[0].state = PRS_MERGED;
	prs[1].state = PRS_CLOSED;
	ck_assert_ptr_eq(status_pick_pr(prs, 3), &prs[2]);
	prs[0].state = PRS_DRAFT;
	prs[1].state = PRS_OPEN;
	ck_assert_ptr_eq(status_pick_pr(prs, 3), &prs[0]);
	/* none draft/open: the newest */
	prs[0].state = PRS_CLOSED;
	prs[1].state = PRS_MERGED;
	prs[2].state = PRS_MERGED;
	ck_assert_ptr_eq(status_pick_pr(prs, 3), &prs[0]);
	prs[0].state = PRS_MERGED;
	prs[1].state = PRS_CLOSED;
	ck_assert_ptr_eq(status_pick_pr(prs, 2), &prs[0]);
	ck_assert_ptr_eq(status_pick_pr(prs, 1), &prs[0]);
}
END_TEST

/* The display status of a session with several PRs is the picked one's. */
START_TEST(status_with_several_prs)
{
	struct lsession s = sess(ST_WORKING);
	struct lpr prs[2];

	prs[0] = mkpr(PRS_CLOSED, RV_NONE, CI_FAILING, MG_UNKNOWN);
	prs[1] = mkpr(PRS_OPEN, RV_APPROVED, CI_PASSING, MG_UNKNOWN);
	ck_assert_str_eq(status_derive(&s, status_pick_pr(prs, 2), false),
	    "approved");
	prs[1].state = PRS_MERGED;
	ck_assert_str_eq(status_derive(&s, status_pick_pr(prs, 2), false),
	    "working");
	prs[0].state = PRS_MERGED;
	prs[1].state = PRS_CLOSED;
	ck_assert_str_eq(status_derive(&s, status_pick_pr(prs, 2), false),
	    "merged");
}
END_TEST

START_TEST(status_bad_input)
{
	struct lsession s = sess(ST_TERMINATED);
	struct lpr pr = mkpr(PRS_CLOSED, RV_NONE, CI_UNKNOWN, MG_UNKNOWN);

	ck_assert_ptr_null(status_pick_pr(NULL, 0));
	/* A terminated row without a reason still gets a terminal status. */
	ck_assert_str_eq(status_derive(&s, NULL, false), "killed");
	/* Unresolved comments without a PR to hold them change nothing. */
	s = sess(ST_WORKING);
	ck_assert_str_eq(status_derive(&s, NULL, true), "working");
	s = sess(ST_IDLE);
	ck_assert_str_eq(status_derive(&s, NULL, true), "idle");
	/* ... nor on a closed PR, which falls through. */
	ck_assert_str_eq(status_derive(&s, &pr, true), "idle");
}
END_TEST

Suite *
status_suite(void)
{
	Suite *s = suite_create("status");
	TCase *tc = tcase_create("derive");

	tcase_set_timeout(tc, 10);
	tcase_add_loop_test(tc, status_table, 0,
	    (int)(sizeof(status_cases) / sizeof(status_cases[0])));
	tcase_add_test(tc, status_with_several_prs);
	suite_add_tcase(s, tc);
	tc = tcase_create("pick");
	tcase_set_timeout(tc, 10);
	tcase_add_test(tc, status_pick);
	suite_add_tcase(s, tc);
	tc = tcase_create("bad input");
	tcase_set_timeout(tc, 10);
	tcase_add_test(tc, status_bad_input);
	suite_add_tcase(s, tc);
	return s;
}
TEST_SUITE(status_suite)

/*
 * evidence
 */

static void
assert_same_hash(const char *a, const char *b)
{
	char ha[65], hb[65];

	evidence_hash(a, ha);
	evidence_hash(b, hb);
	ck_assert_msg(strcmp(ha, hb) == 0, "'%s' and '%s' hash differently", a, b);
}

static void
assert_other_hash(const char *a, const char *b)
{
	char ha[65], hb[65];

	evidence_hash(a, ha);
	evidence_hash(b, hb);
	ck_assert_msg(strcmp(ha, hb) != 0, "'%s' and '%s' hash the same", a, b);
}

static void
assert_normal(const char *in, const char *want)
{
	char out[256];

	memset(out, 'x', sizeof(out));
	evidence_normalize(in, out, sizeof(out));
	ck_assert_msg(strcmp(out, want) == 0, "normalize('%s') = '%s', want '%s'",
	    in, out, want);
}

START_TEST(evidence_timestamps)
{
	static const char *const same[] = {
		"[2026-11-30T04:05:06Z] agent: waiting for api (1796012968) "
		    "at 04:05:06",
		"[2026-11-30 04:05:06.123+01:00] agent: waiting for api "
		    "(1796012968839) at 23:59:59.999",
		"[2027-01-01T00:00:00.5-0800] agent: waiting for api (1800000000) "
		    "at 4:05:06",
		"[2026-11-30T04:05:06+02:00] agent: waiting for api "
		    "(1234567890123) at 12:00:00,250",
		"[2026-11-30 23:59:59]   agent:\twaiting for api\n(9999999999)  at "
		    "00:00:00.000000001",
	};
	size_t i;

	for (i = 1; i < sizeof(same) / sizeof(same[0]); i++)
		assert_same_hash(same[0], same[i]);
	/* Epochs of each length 10–13 alone. */
	assert_same_hash("epoch 1796012968 up", "epoch 1796012968839 up");
	assert_same_hash("epoch 17960129688 up", "epoch 179601296883 up");
	assert_same_hash("epoch 1796012968 up", "epoch  up");
}
END_TEST

START_TEST(evidence_whitespace_and_text)
{
	assert_same_hash("a \t\n  b", "a b");
	assert_same_hash("   a b\n\n", "a b");
	assert_same_hash("line one\r\nline two\n", "line one line two");
	assert_other_hash("agent idle", "agent busy");
	assert_other_hash("ab", "a b");
	assert_other_hash("Error", "error");
	/* 9 and 14 digits are not epochs. */
	assert_other_hash("pid 123456789 up", "pid 987654321 up");
	assert_other_hash("id 17960129688390 x", "id 17960129688391 x");
	assert_other_hash("id 17960129688390 x", "id x");
	/* Numbers inside words are kept. */
	assert_other_hash("build1796012968 failed", "build1796012969 failed");
	assert_other_hash("1796012968839ms", "1796012968840ms");
	assert_other_hash("v12:00:00x", "v12:00:01x");
}
END_TEST

START_TEST(evidence_normalize_outputs)
{
	assert_normal("  hello   world  ", "hello world");
	assert_normal("at 2026-11-30T04:05:06Z: error", "at : error");
	assert_normal("2026-11-30 04:05:06.123+01:00 started", "started");
	assert_normal("retry 3 of 5 at 12:30:45.5", "retry 3 of 5 at");
	assert_normal("epoch 1796012968839 done", "epoch done");
	assert_normal("(1796012968) [04:05:06]", "() []");
	assert_normal("pid 123456789 up", "pid 123456789 up");
	assert_normal("id 17960129688390 x", "id 17960129688390 x");
	assert_normal("build1796012968 a1796012968839b", "build1796012968 "
	    "a1796012968839b");
	assert_normal("1796012968839ms", "1796012968839ms");
	assert_normal("$ npm test\n\n> ok\t", "$ npm test > ok");
}
END_TEST

START_TEST(evidence_hash_format)
{
	char h[65];
	size_t i;

	evidence_hash("", h);
	ck_assert_str_eq(h,
	    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	evidence_hash("abc", h);
	ck_assert_str_eq(h,
	    "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	/* The hash is of the normalized text. */
	evidence_hash("  abc 2026-11-30T04:05:06Z ", h);
	ck_assert_str_eq(h,
	    "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	ck_assert_uint_eq(strlen(h), 64);
	for (i = 0; i < 64; i++)
		ck_assert(strchr("0123456789abcdef", h[i]) != NULL);
}
END_TEST

START_TEST(evidence_bad_input)
{
	char out[8], h[65], hempty[65];
	static char big[20000];

	evidence_hash(NULL, h);
	evidence_hash("", hempty);
	ck_assert_str_eq(h, hempty);
	/* Only whitespace or only timestamps is no evidence at all. */
	assert_same_hash(" \t\n ", "");
	assert_same_hash("2026-11-30T04:05:06Z 1796012968 04:05:06", "");
	assert_normal("", "");
	assert_normal("\n\t ", "");
	/* Truncation keeps the result NUL-terminated. */
	memset(out, 'x', sizeof(out));
	evidence_normalize("abcdefghijkl", out, 4);
	ck_assert_str_eq(out, "abc");
	evidence_normalize("abc", out, 1);
	ck_assert_str_eq(out, "");
	memset(out, 'x', sizeof(out));
	evidence_normalize("abc", out, 0);
	ck_assert_int_eq(out[0], 'x');
	/* Truncated tokens at the end of the input. */
	assert_normal("2026-11-", "2026-11-");
	assert_normal("12:3", "12:3");
	assert_normal("12:34:5", "12:34:5");
	/* Evidence larger than the normalization buffer. */
	memset(big, 'a', sizeof(big) - 1);
	evidence_hash(big, h);
	ck_assert_uint_eq(strlen(h), 64);
}
END_TEST

Suite *
evidence_suite(void)
{
	Suite *s = suite_create("evidence");
	TCase *tc = tcase_create("hash");

	tcase_set_timeout(tc, 10);
	tcase_add_test(tc, evidence_timestamps);
	tcase_add_test(tc, evidence_whitespace_and_text);
	tcase_add_test(tc, evidence_hash_format);
	suite_add_tcase(s, tc);
	tc = tcase_create("normalize");
	tcase_set_timeout(tc, 10);
	tcase_add_test(tc, evidence_normalize_outputs);
	suite_add_tcase(s, tc);
	tc = tcase_create("bad input");
	tcase_set_timeout(tc, 10);
	tcase_add_test(tc, evidence_bad_input);
	suite_add_tcase(s, tc);
	return s;
}
TEST_SUITE(evidence_suite)

/*
 * reducer: spawn, activity, done, kill, restore, cleanup
 */

START_TEST(spawn_ok)
{
	struct world w;
	struct leffects e;
	struct lsession before;

	world_init(&w, ST_NOT_STARTED);
	before = w.s;
	step(&w, input(IN_SPAWN_OK), T0, &e);
	ck_assert_int_eq(e.next.state, ST_WORKING);
	ck_assert(e.next.is_alive);
	ck_assert_int_eq(e.next.activity_at, T0);
	ck_assert_int_eq(e.next.reason, RS_NONE);
	ck_assert(!e.stop_runtime);
	ck_assert_int_eq(e.nmessages, 0);
	ck_assert_int_eq(e.nnotes, 0);
	ck_assert(reducer_session_changed(&before, &e.next));
	reducer_effects_free(&e);
	ck_assert_str_eq(status_derive(&w.s, NULL, false), "working");
}
END_TEST

START_TEST(spawn_ok_only_from_not_started)
{
	static const enum lstate states[] = { ST_WORKING, ST_IDLE, ST_NEEDS_INPUT,
		ST_STUCK, ST_DETECTING, ST_DONE, ST_TERMINATED };
	struct world w;
	size_t i;

	for (i = 0; i < sizeof(states) / sizeof(states[0]); i++) {
		world_init(&w, states[i]);
		world_pr(&w, PRS_OPEN, RV_NONE, CI_PENDING, MG_UNKNOWN);
		w.s.activity_at = T0 - 10 * MIN;
		if (states[i] == ST_TERMINATED)
			w.s.reason = RS_MANUALLY_KILLED;
		expect_nothing(&w, input(IN_SPAWN_OK), T0);
	}
}
END_TEST

START_TEST(spawn_failed)
{
	struct world w;
	struct leffects e;

	world_init(&w, ST_NOT_STARTED);
	step(&w, input(IN_SPAWN_FAILED), T0, &e);
	ck_assert_int_eq(e.next.state, ST_TERMINATED);
	ck_assert_int_eq(e.next.reason, RS_ERROR_IN_PROCESS);
	ck_assert(!e.next.is_alive);
	ck_assert(e.stop_runtime);
	ck_assert_int_eq(e.nmessages, 0);
	reducer_effects_free(&e);
	ck_assert_str_eq(status_derive(&w.s, NULL, false), "errored");
	/* Again: the row is already terminated. */
	expect_nothing(&w, input(IN_SPAWN_FAILED), T0 + SEC);
}
END_TEST

static const struct {
	int activity;
	enum lstate want;
} activity_cases[] = {
	{ ACT_ACTIVE, ST_WORKING },
	{ ACT_READY, ST_IDLE },
	{ ACT_IDLE, ST_IDLE },
	{ ACT_WAITING_INPUT, ST_NEEDS_INPUT },
	{ ACT_BLOCKED, ST_STUCK },
};

START_TEST(activity_transitions)
{
	static const enum lstate from[] = { ST_WORKING, ST_IDLE, ST_NEEDS_INPUT,
		ST_STUCK, ST_DETECTING };
	struct world w;
	struct leffects e;
	size_t i;

	for (i = 0; i < sizeof(from) / sizeof(from[0]); i++) {
		world_init(&w, from[i]);
		/* An open PR keeps agent-idle out of the picture. */
		world_pr(&w, PRS_OPEN, RV_NONE, CI_PENDING, MG_UNKNOWN);
		w.s.activity_at = T0 - 10 * MIN;
		if (from[i] == ST_DETECTING) {
			w.s.detecting_attempts = 2;
			w.s.detecting_started_at = T0 - MIN;
			w.s.state_before_detecting = ST_WORKING;
			snprintf(w.s.evidence_hash, sizeof(w.s.evidence_hash), "%s",
			    "abc");
		}
		w.s.dead_probes = 1;
		step(&w, activity(activity_cases[_i].activity), T0, &e);
		ck_assert_int_eq(e.next.state, activity_cases[_i].want);
		ck_assert_int_eq(e.next.activity, activity_cases[_i].activity);
		ck_assert_int_eq(e.next.activity_at, T0);
		ck_assert_str_eq(e.next.activity_source, "hook");
		ck_assert(e.next.is_alive);
		ck_assert_int_eq(e.next.dead_probes, 0);
		ck_assert_int_eq(e.next.detecting_attempts, 0);
		ck_assert_int_eq(e.next.detecting_started_at, 0);
		ck_assert_int_eq(e.next.state_before_detecting, -1);
		ck_assert(!e.stop_runtime);
		ck_assert_int_eq(e.nmessages, 0);
		reducer_effects_free(&e);
	}
}
END_TEST

/* needs_input and stuck page a human once, not for each repeated signal. */
START_TEST(activity_pages_once)
{
	static const struct {
		int activity;
		const char *reaction;
	} pages[] = {
		{ ACT_WAITING_INPUT, "agent-needs-input" },
		{ ACT_BLOCKED, "agent-stuck" },
	};
	struct world w;
	struct leffects e;
	size_t i;

	for (i = 0; i < sizeof(pages) / sizeof(pages[0]); i++) {
		world_init(&w, ST_WORKING);
		world_pr(&w, PRS_OPEN, RV_NONE, CI_PENDING, MG_UNKNOWN);
		step(&w, activity(pages[i].activity), T0, &e);
		ck_assert_int_eq(e.nnotes, 1);
		ck_assert_int_eq(notes_of(&e, pages[i].reaction), 1);
		ck_assert_int_eq(e.notes[0].priority, PRIO_URGENT);
		ck_assert_contains(e.notes[0].message, "app-1");
		reducer_effects_free(&e);
		expect(&w, activity(pages[i].activity), T0 + SEC, 0, 0);
		expect(&w, activity(pages[i].activity), T0 + MIN, 0, 0);
	}
	/* Working and idle page nobody. */
	world_init(&w, ST_IDLE);
	world_pr(&w, PRS_OPEN, RV_NONE, CI_PENDING, MG_UNKNOWN);
	expect(&w, activity(ACT_ACTIVE), T0, 0, 0);
	expect(&w, activity(ACT_READY), T0 + SEC, 0, 0);
}
END_TEST

/* "exited" is only a claim: no state change, and not a sign of life. */
START_TEST(activity_exited)
{
	struct world w;
	struct leffects e;

	world_init(&w, ST_WORKING);
	world_pr(&w, PRS_OPEN, RV_NONE, CI_PENDING, MG_UNKNOWN);
	w.s.activity_at = T0 - 10 * MIN;
	step(&w, activity(ACT_EXITED), T0, &e);
	ck_assert_int_eq(e.next.state, ST_WORKING);
	ck_assert_int_eq(e.next.activity_at, T0 - 10 * MIN);
	ck_assert(e.next.is_alive);
	ck_assert(!e.stop_runtime);
	ck_assert_int_eq(e.nmessages, 0);
	ck_assert_int_eq(e.nnotes, 0);
	reducer_effects_free(&e);
	/* So it does not veto death either. */
	expect(&w, probe(PROBE_DEAD, PROC_DEAD, "gone"), T0 + 5 * SEC, 0, 0);
	ck_assert_int_eq(w.s.dead_probes, 1);
	expect(&w, probe(PROBE_DEAD, PROC_DEAD, "gone"), T0 + 10 * SEC, 0, 1);
	ck_assert_int_eq(w.s.state, ST_TERMINATED);
	ck_assert_int_eq(w.s.reason, RS_RUNTIME_LOST);
}
END_TEST

START_TEST(activity_on_terminal_ignored)
{
	static const int acts[] = { ACT_ACTIVE, ACT_READY, ACT_IDLE,
		ACT_WAITING_INPUT, ACT_BLOCKED, ACT_EXITED };
	struct world w;
	size_t i;

	for (i = 0; i < sizeof(acts) / sizeof(acts[0]); i++) {
		world_init(&w, ST_TERMINATED);
		w.s.reason = RS_MANUALLY_KILLED;
		w.s.activity_at = T0 - 10 * MIN;
		expect_nothing(&w, activity(acts[i]), T0);
		world_init(&w, ST_DONE);
		expect_nothing(&w, activity(acts[i]), T0);
	}
}
END_TEST

START_TEST(cmd_kill)
{
	static const enum lstate from[] = { ST_NOT_STARTED, ST_WORKING, ST_IDLE,
		ST_NEEDS_INPUT, ST_STUCK, ST_DETECTING };
	struct world w;
	struct leffects e;
	size_t i;

	for (i = 0; i < sizeof(from) / sizeof(from[0]); i++) {
		world_init(&w, from[i]);
		/* Plenty a reaction could fire on. */
		world_pr(&w, PRS_OPEN, RV_CHANGES_REQUESTED, CI_FAILING,
		    MG_CONFLICTING);
		push_check(&w, "build", "c1", CHK_FAILED, "boom");
		add_comment(&w, "r1", "fix this");
		add_tracker(&w, "merge-conflicts", "");
		w.trackers[0].first_at = T0 - 60 * MIN;
		if (from[i] == ST_DETECTING) {
			w.s.detecting_attempts = 2;
			w.s.detecting_started_at = T0 - 10 * MIN;
			w.s.state_before_detecting = ST_IDLE;
		}
		step(&w, input(IN_KILL), T0, &e);
		ck_assert_int_eq(e.next.state, ST_TERMINATED);
		ck_assert_int_eq(e.next.reason, RS_MANUALLY_KILLED);
		ck_assert(!e.next.is_alive);
		ck_assert_int_eq(e.next.detecting_attempts, 0);
		ck_assert(e.stop_runtime);
		ck_assert_int_eq(e.nmessages, 0);
		ck_assert_int_eq(e.nnotes, 0);
		ck_assert_int_eq(e.ntrackers, 0);
		reducer_effects_free(&e);
		ck_assert_str_eq(status_derive(&w.s, &w.prs[0], true), "killed");
	}
	/* An idle agent without a PR is not nudged on its way out either. */
	world_init(&w, ST_IDLE);
	step(&w, input(IN_KILL), T0, &e);
	ck_assert_int_eq(e.nmessages, 0);
	ck_assert_int_eq(e.nnotes, 0);
	ck_assert_int_eq(e.ntrackers, 0);
	reducer_effects_free(&e);
	/* Killing the killed does nothing. */
	expect_nothing(&w, input(IN_KILL), T0 + SEC);
}
END_TEST

START_TEST(cmd_restore)
{
	struct world w;
	struct leffects e;

	world_init(&w, ST_TERMINATED);
	w.s.reason = RS_RUNTIME_LOST;
	w.s.dead_probes = 2;
	step(&w, input(IN_RESTORE), T0, &e);
	ck_assert_int_eq(e.next.state, ST_NOT_STARTED);
	ck_assert_int_eq(e.next.reason, RS_NONE);
	ck_assert(!e.next.is_alive);
	ck_assert_int_eq(e.next.dead_probes, 0);
	ck_assert(!e.stop_runtime);
	ck_assert_int_eq(e.nmessages, 0);
	ck_assert_int_eq(e.nnotes, 0);
	reducer_effects_free(&e);
	ck_assert_str_eq(status_derive(&w.s, NULL, false), "spawning");
	expect(&w, input(IN_SPAWN_OK), T0 + SEC, 0, 0);
	ck_assert_int_eq(w.s.state, ST_WORKING);
	/* A live session is not restored. */
	expect_nothing(&w, input(IN_RESTORE), T0 + 2 * SEC);
	/* Done is terminal too: restore reopens it. */
	world_init(&w, ST_DONE);
	expect(&w, input(IN_RESTORE), T0, 0, 0);
	ck_assert_int_eq(w.s.state, ST_NOT_STARTED);
	ck_assert_int_eq(w.s.reason, RS_NONE);
}
END_TEST

START_TEST(cmd_done)
{
	struct world w;
	struct leffects e;

	world_init(&w, ST_IDLE);
	step(&w, input(IN_DONE), T0, &e);
	ck_assert_int_eq(e.next.state, ST_DONE);
	ck_assert_int_eq(e.next.reason, RS_NONE);
	ck_assert(!e.next.is_alive);
	ck_assert(e.stop_runtime);
	ck_assert_int_eq(e.nmessages, 0);
	ck_assert_int_eq(e.nnotes, 0);
	reducer_effects_free(&e);
	ck_assert_str_eq(status_derive(&w.s, NULL, false), "done");
	expect_nothing(&w, input(IN_DONE), T0 + SEC);
	w.s = sess_terminated(RS_MANUALLY_KILLED);
	expect_nothing(&w, input(IN_DONE), T0 + SEC);
}
END_TEST

START_TEST(cmd_cleanup)
{
	struct world w;
	struct leffects e;

	world_init(&w, ST_WORKING);
	step(&w, input(IN_CLEANUP), T0, &e);
	ck_assert_int_eq(e.next.state, ST_TERMINATED);
	ck_assert_int_eq(e.next.reason, RS_AUTO_CLEANUP);
	ck_assert(!e.next.is_alive);
	ck_assert(e.stop_runtime);
	ck_assert_int_eq(e.nmessages, 0);
	ck_assert_int_eq(e.nnotes, 0);
	reducer_effects_free(&e);
	ck_assert_str_eq(status_derive(&w.s, NULL, false), "cleanup");
	/* An existing termination reason is kept; the runtime still goes. */
	world_init(&w, ST_TERMINATED);
	w.s.reason = RS_RUNTIME_LOST;
	step(&w, input(IN_CLEANUP), T0, &e);
	ck_assert_int_eq(e.next.state, ST_TERMINATED);
	ck_assert_int_eq(e.next.reason, RS_RUNTIME_LOST);
	ck_assert(e.stop_runtime);
	ck_assert_int_eq(e.nnotes, 0);
	reducer_effects_free(&e);
	world_init(&w, ST_DONE);
	step(&w, input(IN_CLEANUP), T0, &e);
	ck_assert_int_eq(e.next.state, ST_TERMINATED);
	ck_assert_int_eq(e.next.reason, RS_AUTO_CLEANUP);
	ck_assert(e.stop_runtime);
	reducer_effects_free(&e);
}
END_TEST

/*
 * reducer: probes, detecting, death
 */

/* A working tmux session whose last sign of life is long past. */
static void
world_quiet(struct world *w, enum lstate state)
{
	world_init(w, state);
	world_pr(w, PRS_OPEN, RV_NONE, CI_PENDING, MG_UNKNOWN);
	w->s.activity = ACT_ACTIVE;
	w->s.activity_at = T0 - 10 * MIN;
}

static const struct {
	int runtime, process;
	enum lstate want;
	int reason;
} probe_matrix[] = {
	{ PROBE_ALIVE, PROC_ALIVE, ST_WORKING, RS_NONE },
	{ PROBE_ALIVE, PROC_DEAD, ST_TERMINATED, RS_AGENT_PROCESS_EXITED },
	{ PROBE_ALIVE, PROC_INDETERMINATE, ST_WORKING, RS_NONE },
	{ PROBE_DEAD, PROC_ALIVE, ST_DETECTING, RS_NONE },
	{ PROBE_DEAD, PROC_DEAD, ST_TERMINATED, RS_RUNTIME_LOST },
	{ PROBE_DEAD, PROC_INDETERMINATE, ST_DETECTING, RS_NONE },
	{ PROBE_FAILED, PROC_ALIVE, ST_DETECTING, RS_NONE },
	{ PROBE_FAILED, PROC_DEAD, ST_DETECTING, RS_NONE },
	{ PROBE_FAILED, PROC_INDETERMINATE, ST_DETECTING, RS_NONE },
	{ PROBE_UNKNOWN, PROC_ALIVE, ST_DETECTING, RS_NONE },
	{ PROBE_UNKNOWN, PROC_DEAD, ST_DETECTING, RS_NONE },
	{ PROBE_UNKNOWN, PROC_INDETERMINATE, ST_DETECTING, RS_NONE },
};

/* Every runtime × process combination, seen on two consecutive probes. */
START_TEST(probe_matrix_twice)
{
	struct world w;
	struct leffects e;
	int i;

	world_quiet(&w, ST_WORKING);
	for (i = 0; i < 2; i++) {
		step(&w, probe(probe_matrix[_i].runtime, probe_matrix[_i].process,
		    "pane: $"), T0 + i * 5 * SEC, &e);
		ck_assert_int_eq(e.stop_runtime, e.next.state == ST_TERMINATED);
		reducer_effects_free(&e);
	}
	ck_assert_msg(w.s.state == probe_matrix[_i].want,
	    "%s × %s: state %s, want %s", model_probes[probe_matrix[_i].runtime],
	    model_procs[probe_matrix[_i].process], model_states[w.s.state],
	    model_states[probe_matrix[_i].want]);
	ck_assert_int_eq(w.s.reason, probe_matrix[_i].reason);
}
END_TEST

START_TEST(probe_healthy_recovers)
{
	static const enum lstate before[] = { ST_WORKING, ST_IDLE, ST_NEEDS_INPUT };
	struct world w;
	struct leffects e;
	size_t i;

	for (i = 0; i < sizeof(before) / sizeof(before[0]); i++) {
		world_quiet(&w, ST_DETECTING);
		w.s.state_before_detecting = before[i];
		w.s.detecting_attempts = 2;
		w.s.detecting_started_at = T0 - MIN;
		snprintf(w.s.evidence_hash, sizeof(w.s.evidence_hash), "%s", "abc");
		w.s.dead_probes = 1;
		step(&w, probe(PROBE_ALIVE, PROC_ALIVE, "pane: $"), T0, &e);
		ck_assert_int_eq(e.next.state, before[i]);
		ck_assert_int_eq(e.next.detecting_attempts, 0);
		ck_assert_int_eq(e.next.detecting_started_at, 0);
		ck_assert_str_eq(e.next.evidence_hash, "");
		ck_assert_int_eq(e.next.state_before_detecting, -1);
		ck_assert_int_eq(e.next.dead_probes, 0);
		ck_assert(e.next.is_alive);
		ck_assert(!e.stop_runtime);
		ck_assert_int_eq(e.nmessages, 0);
		ck_assert_int_eq(notes_of(&e, "agent-stuck"), 0);
		reducer_effects_free(&e);
	}
	/* A healthy probe of a healthy session changes nothing. */
	world_quiet(&w, ST_WORKING);
	expect_nothing(&w, probe(PROBE_ALIVE, PROC_ALIVE, "pane: $"), T0);
	world_quiet(&w, ST_IDLE);
	expect_nothing(&w, probe(PROBE_ALIVE, PROC_ALIVE, "pane: $"), T0);
}
END_TEST

/* failed and unknown never kill, however long they last. */
START_TEST(probe_failed_never_kills)
{
	static const int results[] = { PROBE_FAILED, PROBE_UNKNOWN };
	static const int procs[] = { PROC_ALIVE, PROC_DEAD, PROC_INDETERMINATE };
	struct world w;
	struct leffects e;
	size_t i, j;
	int n;

	for (i = 0; i < 2; i++)
		for (j = 0; j < 3; j++) {
			world_quiet(&w, ST_WORKING);
			step(&w, probe(results[i], procs[j], "timeout"), T0, &e);
			ck_assert_int_eq(e.next.state, ST_DETECTING);
			ck_assert_int_eq(e.next.detecting_attempts, 1);
			ck_assert_int_eq(e.next.detecting_started_at, T0);
			ck_assert_int_eq(e.next.state_before_detecting, ST_WORKING);
			ck_assert(e.next.is_alive);
			ck_assert(!e.stop_runtime);
			ck_assert_int_eq(e.nnotes, 0);
			reducer_effects_free(&e);
			for (n = 1; n < 40; n++) {
				step(&w, probe(results[i], procs[j], n % 2 ?
				    "timeout" : "error: no pane"), T0 + n * 5 * SEC,
				    &e);
				ck_assert_int_ne(e.next.state, ST_TERMINATED);
				ck_assert(!e.stop_runtime);
				ck_assert_int_eq(notes_of(&e, "agent-exited"), 0);
				reducer_effects_free(&e);
			}
		}
}
END_TEST

START_TEST(probe_detecting_evidence)
{
	struct world w;
	struct leffects e;
	char h[65];

	world_quiet(&w, ST_IDLE);
	expect(&w, probe(PROBE_FAILED, PROC_INDETERMINATE,
	    "04:05:06 waiting for api since 1796012968"), T0, 0, 0);
	ck_assert_int_eq(w.s.state, ST_DETECTING);
	ck_assert_int_eq(w.s.state_before_detecting, ST_IDLE);
	ck_assert_int_eq(w.s.detecting_attempts, 1);
	evidence_hash("waiting for api since", h);
	ck_assert_str_eq(w.s.evidence_hash, h);
	/* The same evidence at another time counts. */
	expect(&w, probe(PROBE_UNKNOWN, PROC_INDETERMINATE,
	    "04:05:11.250 waiting for api   since 1796012973839"), T0 + 5 * SEC,
	    0, 0);
	ck_assert_int_eq(w.s.state, ST_DETECTING);
	ck_assert_int_eq(w.s.detecting_attempts, 2);
	ck_assert_int_eq(w.s.detecting_started_at, T0);
	/* Changed evidence starts over, but the clock keeps running. */
	expect(&w, probe(PROBE_FAILED, PROC_INDETERMINATE, "compiling 3/7"),
	    T0 + 10 * SEC, 0, 0);
	ck_assert_int_eq(w.s.detecting_attempts, 1);
	ck_assert_int_eq(w.s.detecting_started_at, T0);
	evidence_hash("compiling 3/7", h);
	ck_assert_str_eq(w.s.evidence_hash, h);
	expect(&w, probe(PROBE_FAILED, PROC_INDETERMINATE, "compiling 4/7"),
	    T0 + 15 * SEC, 0, 0);
	ck_assert_int_eq(w.s.detecting_attempts, 1);
	expect(&w, probe(PROBE_FAILED, PROC_INDETERMINATE, "compiling 4/7"),
	    T0 + 20 * SEC, 0, 0);
	ck_assert_int_eq(w.s.detecting_attempts, 2);
	ck_assert_int_eq(w.s.state, ST_DETECTING);
	/* A healthy probe recovers to the state before detecting. */
	step(&w, probe(PROBE_ALIVE, PROC_ALIVE, NULL), T0 + 25 * SEC, &e);
	ck_assert_int_eq(e.next.state, ST_IDLE);
	ck_assert_int_eq(e.next.detecting_attempts, 0);
	reducer_effects_free(&e);
}
END_TEST

/* detecting_max_attempts probes with the same evidence → stuck, paged once. */
START_TEST(probe_escalates_on_attempts)
{
	struct world w;
	struct leffects e;
	const struct lnote *n;

	world_quiet(&w, ST_WORKING);
	expect(&w, probe(PROBE_FAILED, PROC_INDETERMINATE, "12:00:00 spinner"), T0,
	    0, 0);
	expect(&w, probe(PROBE_FAILED, PROC_INDETERMINATE, "12:00:05 spinner"),
	    T0 + 5 * SEC, 0, 0);
	ck_assert_int_eq(w.s.state, ST_DETECTING);
	step(&w, probe(PROBE_FAILED, PROC_INDETERMINATE, "12:00:10 spinner"),
	    T0 + 10 * SEC, &e);
	ck_assert_int_eq(e.next.state, ST_STUCK);
	ck_assert_int_eq(e.next.detecting_attempts, 0);
	ck_assert_int_eq(e.next.detecting_started_at, 0);
	ck_assert_int_eq(e.next.state_before_detecting, -1);
	ck_assert(!e.stop_runtime);
	ck_assert_int_eq(e.nnotes, 1);
	n = note(&e, "agent-stuck");
	ck_assert_ptr_nonnull(n);
	ck_assert_int_eq(n->priority, PRIO_URGENT);
	ck_assert_contains(n->message, "app-1");
	reducer_effects_free(&e);
	ck_assert_str_eq(status_derive(&w.s, &w.prs[0], false), "stuck");
	/* Stuck is not a dead end: a sign of life brings the agent back. */
	expect(&w, activity(ACT_ACTIVE), T0 + 15 * SEC, 0, 0);
	ck_assert_int_eq(w.s.state, ST_WORKING);
}
END_TEST

/* detecting_max_ms in detecting → stuck, whatever the evidence does. */
START_TEST(probe_escalates_on_time)
{
	struct world w;
	struct leffects e;
	char ev[64];
	int i;

	world_quiet(&w, ST_WORKING);
	for (i = 0; i * MIN < 5 * MIN; i++) {
		snprintf(ev, sizeof(ev), "step %d", i);
		expect(&w, probe(PROBE_FAILED, PROC_INDETERMINATE, ev),
		    T0 + i * MIN, 0, 0);
		ck_assert_int_eq(w.s.state, ST_DETECTING);
		ck_assert_int_eq(w.s.detecting_attempts, 1);
	}
	expect(&w, probe(PROBE_FAILED, PROC_INDETERMINATE, "step x"),
	    T0 + 5 * MIN - 1, 0, 0);
	ck_assert_int_eq(w.s.state, ST_DETECTING);
	step(&w, probe(PROBE_FAILED, PROC_INDETERMINATE, "step y"), T0 + 5 * MIN,
	    &e);
	ck_assert_int_eq(e.next.state, ST_STUCK);
	ck_assert_int_eq(notes_of(&e, "agent-stuck"), 1);
	ck_assert_int_eq(e.notes[0].priority, PRIO_URGENT);
	reducer_effects_free(&e);
}
END_TEST

/* The same escalation on tick, when no probe comes. */
START_TEST(tick_escalates_detecting)
{
	struct world w;
	struct leffects e;

	world_quiet(&w, ST_WORKING);
	expect(&w, probe(PROBE_FAILED, PROC_INDETERMINATE, "hang"), T0, 0, 0);
	expect(&w, input(IN_TICK), T0 + MIN, 0, 0);
	expect(&w, input(IN_TICK), T0 + 5 * MIN - 1, 0, 0);
	ck_assert_int_eq(w.s.state, ST_DETECTING);
	ck_assert_int_eq(w.s.detecting_attempts, 1);
	step(&w, input(IN_TICK), T0 + 5 * MIN, &e);
	ck_assert_int_eq(e.next.state, ST_STUCK);
	ck_assert_int_eq(e.next.detecting_started_at, 0);
	ck_assert_int_eq(e.nnotes, 1);
	ck_assert_int_eq(notes_of(&e, "agent-stuck"), 1);
	ck_assert_int_eq(e.notes[0].priority, PRIO_URGENT);
	ck_assert(!e.stop_runtime);
	reducer_effects_free(&e);
	expect(&w, input(IN_TICK), T0 + 6 * MIN, 0, 0);
	expect(&w, input(IN_TICK), T0 + 60 * MIN, 0, 0);
	ck_assert_int_eq(w.s.state, ST_STUCK);
	/* Ticks leave a session that is not detecting alone. */
	world_quiet(&w, ST_WORKING);
	expect_nothing(&w, input(IN_TICK), T0 + 60 * MIN);
}
END_TEST

/*
 * A probe that keeps failing with the same evidence pages agent-stuck once:
 * anti-flap must not turn into stuck → detecting → stuck with a page per
 * round.
 */
START_TEST(probe_stuck_pages_once)
{
	struct world w;
	struct leffects e;
	int n, pages = 0;

	world_quiet(&w, ST_WORKING);
	for (n = 0; n < 24; n++) {
		step(&w, probe(PROBE_FAILED, PROC_INDETERMINATE, "no answer"),
		    T0 + n * 5 * SEC, &e);
		pages += notes_of(&e, "agent-stuck");
		reducer_effects_free(&e);
	}
	ck_assert_msg(pages == 1, "agent-stuck paged %d times over 24 identical "
	    "failed probes (state now %s)", pages, model_states[w.s.state]);
}
END_TEST

/*
 * DESIGN §6 and the reducer's diagram: a healthy probe recovers detecting
 * to the state before it — for a stuck (blocked) agent that is stuck.
 */
START_TEST(probe_healthy_restores_stuck)
{
	struct world w;

	world_quiet(&w, ST_WORKING);
	expect(&w, activity(ACT_BLOCKED), T0, 0, 1);
	ck_assert_int_eq(w.s.state, ST_STUCK);
	expect(&w, probe(PROBE_FAILED, PROC_INDETERMINATE, "timeout"), T0 + 5 * SEC,
	    0, 0);
	expect(&w, probe(PROBE_ALIVE, PROC_ALIVE, "pane"), T0 + 10 * SEC, 0, 0);
	ck_assert_msg(w.s.state == ST_STUCK, "a blocked agent is %s after a "
	    "failed then a healthy probe", model_states[w.s.state]);
}
END_TEST

/*
 * One failed probe and a healthy one (a probe timeout under load) are a
 * blip, not a new episode: the page already sent for needs_input is not
 * sent again.
 */
START_TEST(probe_blip_no_repage)
{
	struct world w;
	struct leffects e;

	world_quiet(&w, ST_WORKING);
	expect(&w, activity(ACT_WAITING_INPUT), T0, 0, 1);
	expect(&w, probe(PROBE_FAILED, PROC_INDETERMINATE, "t/o"), T0 + 5 * SEC,
	    0, 0);
	step(&w, probe(PROBE_ALIVE, PROC_ALIVE, "pane"), T0 + 10 * SEC, &e);
	ck_assert_int_eq(e.next.state, ST_NEEDS_INPUT);
	ck_assert_msg(notes_of(&e, "agent-needs-input") == 0, "agent-needs-input "
	    "paged again after a detecting blip");
	reducer_effects_free(&e);
}
END_TEST

/*
 * The same blip keeps agent-idle's budget: no second nudge, and the
 * escalation still comes escalate_after_ms after the first.
 */
START_TEST(probe_blip_keeps_idle_budget)
{
	struct world w;
	struct leffects e;

	world_init(&w, ST_WORKING);
	w.s.activity_at = T0 - MIN;
	expect(&w, activity(ACT_IDLE), T0, 1, 0);
	expect(&w, probe(PROBE_FAILED, PROC_INDETERMINATE, "t/o"), T0 + 5 * MIN,
	    0, 0);
	step(&w, probe(PROBE_ALIVE, PROC_ALIVE, "pane"), T0 + 5 * MIN + 5 * SEC,
	    &e);
	ck_assert_int_eq(e.next.state, ST_IDLE);
	ck_assert_msg(e.nmessages == 0, "the idle agent was nudged again after a "
	    "detecting blip");
	reducer_effects_free(&e);
	step(&w, input(IN_TICK), T0 + 15 * MIN, &e);
	ck_assert_msg(notes_of(&e, "agent-idle") == 1, "no agent-idle escalation "
	    "15 minutes after the agent went idle");
	reducer_effects_free(&e);
}
END_TEST

START_TEST(probe_death_two_probes)
{
	struct world w;
	struct leffects e;
	const struct lnote *n;

	world_quiet(&w, ST_WORKING);
	w.s.activity_at = T0 - 2 * MIN;
	step(&w, probe(PROBE_DEAD, PROC_DEAD, "no session"), T0, &e);
	ck_assert_int_eq(e.next.dead_probes, 1);
	ck_assert_int_eq(e.next.state, ST_WORKING);
	ck_assert(e.next.is_alive);
	ck_assert(!e.stop_runtime);
	ck_assert_int_eq(e.nnotes, 0);
	reducer_effects_free(&e);
	step(&w, probe(PROBE_DEAD, PROC_DEAD, "no session"), T0 + 5 * SEC, &e);
	ck_assert_int_eq(e.next.state, ST_TERMINATED);
	ck_assert_int_eq(e.next.reason, RS_RUNTIME_LOST);
	ck_assert(!e.next.is_alive);
	ck_assert(e.stop_runtime);
	ck_assert_int_eq(e.nmessages, 0);
	ck_assert_int_eq(e.nnotes, 1);
	n = note(&e, "agent-exited");
	ck_assert_ptr_nonnull(n);
	ck_assert_int_eq(n->priority, PRIO_URGENT);
	ck_assert_contains(n->message, "app-1");
	reducer_effects_free(&e);
	ck_assert_str_eq(status_derive(&w.s, &w.prs[0], false), "killed");
	/* Probes of the dead change nothing (they may repeat the stop). */
	expect_ignored(&w, probe(PROBE_DEAD, PROC_DEAD, "no session"),
	    T0 + 10 * SEC, true);
	expect_ignored(&w, probe(PROBE_ALIVE, PROC_ALIVE, "pane"), T0 + 15 * SEC,
	    true);
	/* From detecting too. */
	world_quiet(&w, ST_WORKING);
	expect(&w, probe(PROBE_FAILED, PROC_INDETERMINATE, "x"), T0, 0, 0);
	expect(&w, probe(PROBE_DEAD, PROC_DEAD, "x"), T0 + 5 * SEC, 0, 0);
	ck_assert_int_eq(w.s.state, ST_DETECTING);
	ck_assert_int_eq(w.s.dead_probes, 1);
	expect(&w, probe(PROBE_DEAD, PROC_DEAD, "x"), T0 + 10 * SEC, 0, 1);
	ck_assert_int_eq(w.s.state, ST_TERMINATED);
	ck_assert_int_eq(w.s.reason, RS_RUNTIME_LOST);
}
END_TEST

START_TEST(probe_death_recent_activity)
{
	struct world w;
	struct leffects e;

	/* 59.999 s ago is recent: it vetoes and resets the count. */
	world_quiet(&w, ST_WORKING);
	w.s.activity_at = T0 - 59999;
	w.s.dead_probes = 1;
	step(&w, probe(PROBE_DEAD, PROC_DEAD, "gone"), T0, &e);
	ck_assert_int_eq(e.next.state, ST_WORKING);
	ck_assert_int_eq(e.next.dead_probes, 0);
	ck_assert(!e.stop_runtime);
	reducer_effects_free(&e);
	/* 60 s ago is not. */
	world_quiet(&w, ST_WORKING);
	w.s.activity_at = T0 - 60000;
	w.s.dead_probes = 1;
	expect(&w, probe(PROBE_DEAD, PROC_DEAD, "gone"), T0, 0, 1);
	ck_assert_int_eq(w.s.state, ST_TERMINATED);
	/* Spawning counts as activity. */
	world_init(&w, ST_NOT_STARTED);
	expect(&w, input(IN_SPAWN_OK), T0, 0, 0);
	expect(&w, probe(PROBE_DEAD, PROC_DEAD, "gone"), T0 + 10 * SEC, 0, 0);
	expect(&w, probe(PROBE_DEAD, PROC_DEAD, "gone"), T0 + 15 * SEC, 0, 0);
	ck_assert_int_eq(w.s.state, ST_WORKING);
	ck_assert_int_eq(w.s.dead_probes, 0);
	expect(&w, probe(PROBE_DEAD, PROC_DEAD, "gone"), T0 + 61 * SEC, 0, 0);
	ck_assert_int_eq(w.s.dead_probes, 1);
	/* An activity signal between two dead probes restarts the count. */
	expect(&w, activity(ACT_IDLE), T0 + 62 * SEC, 1, 0);
	ck_assert_int_eq(w.s.dead_probes, 0);
	expect(&w, probe(PROBE_DEAD, PROC_DEAD, "gone"), T0 + 200 * SEC, 0, 0);
	ck_assert_int_eq(w.s.state, ST_IDLE);
	ck_assert_int_eq(w.s.dead_probes, 1);
}
END_TEST

/* Only two *consecutive* dead probes kill. */
START_TEST(probe_death_consecutive)
{
	struct world w;

	world_quiet(&w, ST_WORKING);
	expect(&w, probe(PROBE_DEAD, PROC_DEAD, "gone"), T0, 0, 0);
	expect(&w, probe(PROBE_ALIVE, PROC_ALIVE, "pane"), T0 + 5 * SEC, 0, 0);
	ck_assert_int_eq(w.s.dead_probes, 0);
	expect(&w, probe(PROBE_DEAD, PROC_DEAD, "gone"), T0 + 10 * SEC, 0, 0);
	ck_assert_int_eq(w.s.state, ST_WORKING);
	ck_assert_int_eq(w.s.dead_probes, 1);
	expect(&w, probe(PROBE_DEAD, PROC_DEAD, "gone"), T0 + 15 * SEC, 0, 1);
	ck_assert_int_eq(w.s.state, ST_TERMINATED);
	/* A failed probe in between breaks the run as well. */
	world_quiet(&w, ST_WORKING);
	expect(&w, probe(PROBE_DEAD, PROC_DEAD, "gone"), T0, 0, 0);
	expect(&w, probe(PROBE_FAILED, PROC_INDETERMINATE, "t/o"), T0 + 5 * SEC,
	    0, 0);
	ck_assert_int_eq(w.s.dead_probes, 0);
	expect(&w, probe(PROBE_DEAD, PROC_DEAD, "gone"), T0 + 10 * SEC, 0, 0);
	ck_assert_int_ne(w.s.state, ST_TERMINATED);
}
END_TEST

START_TEST(probe_agent_process_exited)
{
	struct world w;
	struct leffects e;

	world_quiet(&w, ST_IDLE);
	expect(&w, probe(PROBE_ALIVE, PROC_DEAD, "$ "), T0, 0, 0);
	ck_assert_int_eq(w.s.state, ST_IDLE);
	ck_assert_int_eq(w.s.dead_probes, 1);
	step(&w, probe(PROBE_ALIVE, PROC_DEAD, "$ "), T0 + 5 * SEC, &e);
	ck_assert_int_eq(e.next.state, ST_TERMINATED);
	ck_assert_int_eq(e.next.reason, RS_AGENT_PROCESS_EXITED);
	ck_assert(e.stop_runtime);
	ck_assert_int_eq(notes_of(&e, "agent-exited"), 1);
	ck_assert_int_eq(e.notes[0].priority, PRIO_URGENT);
	ck_assert_contains(e.notes[0].message, "agent_process_exited");
	reducer_effects_free(&e);
	/* With recent activity it is vetoed like runtime death. */
	world_quiet(&w, ST_WORKING);
	w.s.activity_at = T0 - 10 * SEC;
	expect(&w, probe(PROBE_ALIVE, PROC_DEAD, "$ "), T0, 0, 0);
	expect(&w, probe(PROBE_ALIVE, PROC_DEAD, "$ "), T0 + 5 * SEC, 0, 0);
	ck_assert_int_eq(w.s.state, ST_WORKING);
	ck_assert_int_eq(w.s.dead_probes, 0);
}
END_TEST

/* For the process runtime the runtime is the process. */
START_TEST(probe_process_runtime)
{
	struct world w;

	world_quiet(&w, ST_WORKING);
	snprintf(w.s.runtime, sizeof(w.s.runtime), "process");
	expect(&w, probe(PROBE_DEAD, PROC_INDETERMINATE, ""), T0, 0, 0);
	ck_assert_int_eq(w.s.dead_probes, 1);
	ck_assert_int_eq(w.s.state, ST_WORKING);
	expect(&w, probe(PROBE_DEAD, PROC_ALIVE, ""), T0 + 5 * SEC, 0, 1);
	ck_assert_int_eq(w.s.state, ST_TERMINATED);
	ck_assert_int_eq(w.s.reason, RS_RUNTIME_LOST);
	/* A live process is a live agent, whatever the process field says. */
	world_quiet(&w, ST_WORKING);
	snprintf(w.s.runtime, sizeof(w.s.runtime), "process");
	expect_nothing(&w, probe(PROBE_ALIVE, PROC_DEAD, ""), T0);
	expect_nothing(&w, probe(PROBE_ALIVE, PROC_DEAD, ""), T0 + 5 * SEC);
	/* failed stays failed. */
	expect(&w, probe(PROBE_FAILED, PROC_DEAD, "t/o"), T0 + 10 * SEC, 0, 0);
	ck_assert_int_eq(w.s.state, ST_DETECTING);
}
END_TEST

START_TEST(probe_process_indeterminate)
{
	struct world w;

	world_quiet(&w, ST_WORKING);
	expect_nothing(&w, probe(PROBE_ALIVE, PROC_INDETERMINATE, "pane"), T0);
	expect_nothing(&w, probe(PROBE_ALIVE, PROC_INDETERMINATE, "pane"),
	    T0 + 5 * SEC);
	/* It does break a run of dead probes. */
	w.s.dead_probes = 1;
	expect(&w, probe(PROBE_ALIVE, PROC_INDETERMINATE, "pane"), T0 + 10 * SEC,
	    0, 0);
	ck_assert_int_eq(w.s.dead_probes, 0);
	ck_assert_int_eq(w.s.state, ST_WORKING);
	/* And leaves detecting as it is. */
	expect(&w, probe(PROBE_FAILED, PROC_INDETERMINATE, "t/o"), T0 + 15 * SEC,
	    0, 0);
	expect(&w, probe(PROBE_ALIVE, PROC_INDETERMINATE, "pane"), T0 + 20 * SEC,
	    0, 0);
	ck_assert_int_eq(w.s.state, ST_DETECTING);
	ck_assert_int_eq(w.s.detecting_attempts, 1);
}
END_TEST

/*
 * reducer: reactions
 */

static void
world_pr_open(struct world *w, enum lci ci)
{
	world_init(w, ST_WORKING);
	w->s.activity_at = T0 - MIN;
	world_pr(w, PRS_OPEN, RV_NONE, ci, MG_MERGEABLE);
}

/* Failing c1, c2, c3 → two nudges, then one escalation instead of a third. */
START_TEST(ci_brake)
{
	struct world w;
	struct leffects e;
	const struct ltracker *t;

	world_pr_open(&w, CI_FAILING);
	push_check(&w, "build", "c1", CHK_FAILED, "FAIL test_parse (c1)");
	step(&w, input(IN_PR), T0, &e);
	ck_assert_int_eq(e.nmessages, 1);
	ck_assert_int_eq(e.nnotes, 0);
	ck_assert_contains(e.messages[0], "build");
	ck_assert_contains(e.messages[0], "c1");
	ck_assert_contains(e.messages[0], "FAIL test_parse (c1)");
	ck_assert_int_eq(e.next.state, ST_WORKING);
	reducer_effects_free(&e);
	t = tracker(&w, "ci-failed/build");
	ck_assert_ptr_nonnull(t);
	ck_assert_int_eq(t->attempts, 1);
	ck_assert(!t->escalated);

	push_check(&w, "build", "c2", CHK_FAILED, "FAIL test_emit (c2)");
	step(&w, input(IN_PR), T0 + 10 * MIN, &e);
	ck_assert_int_eq(e.nmessages, 1);
	ck_assert_int_eq(e.nnotes, 0);
	ck_assert_contains(e.messages[0], "c2");
	ck_assert_contains(e.messages[0], "FAIL test_emit (c2)");
	reducer_effects_free(&e);
	ck_assert_int_eq(tracker(&w, "ci-failed/build")->attempts, 2);

	push_check(&w, "build", "c3", CHK_FAILED, "FAIL test_emit (c3)");
	step(&w, input(IN_PR), T0 + 20 * MIN, &e);
	ck_assert_int_eq(e.nmessages, 0);
	ck_assert_int_eq(e.nnotes, 1);
	ck_assert_str_eq(e.notes[0].reaction, "ci-failed/build");
	ck_assert_int_eq(e.notes[0].priority, PRIO_URGENT);
	ck_assert_contains(e.notes[0].message, "build");
	reducer_effects_free(&e);
	t = tracker(&w, "ci-failed/build");
	ck_assert(t->escalated);

	/* Seeing c3 again, on an observation or a tick, is nothing new. */
	expect(&w, input(IN_PR), T0 + 21 * MIN, 0, 0);
	expect(&w, input(IN_TICK), T0 + 22 * MIN, 0, 0);
	expect(&w, input(IN_PR), T0 + 23 * MIN, 0, 0);

	/* A pass clears the budget ... */
	push_check(&w, "build", "c4", CHK_PASSED, NULL);
	w.prs[0].ci = CI_PASSING;
	expect(&w, input(IN_PR), T0 + 30 * MIN, 0, 0);
	ck_assert_ptr_null(tracker(&w, "ci-failed/build"));
	expect(&w, input(IN_PR), T0 + 31 * MIN, 0, 0);
	/* ... so the next failure is nudged again. */
	push_check(&w, "build", "c5", CHK_FAILED, "FAIL again");
	w.prs[0].ci = CI_FAILING;
	step(&w, input(IN_PR), T0 + 40 * MIN, &e);
	ck_assert_int_eq(e.nmessages, 1);
	ck_assert_contains(e.messages[0], "c5");
	ck_assert_int_eq(e.nnotes, 0);
	reducer_effects_free(&e);
}
END_TEST

/* Runs in progress are not failures; several failing checks share one nudge. */
START_TEST(ci_checks)
{
	struct world w;
	struct leffects e;

	world_pr_open(&w, CI_PENDING);
	push_check(&w, "build", "c1", CHK_IN_PROGRESS, NULL);
	push_check(&w, "lint", "c1", CHK_QUEUED, NULL);
	expect(&w, input(IN_PR), T0, 0, 0);
	ck_assert_uint_eq(w.ntrackers, 0);
	w.nchecks = 0;
	push_check(&w, "build", "c1", CHK_FAILED, "build log");
	push_check(&w, "lint", "c1", CHK_FAILED, "lint log");
	push_check(&w, "test", "c1", CHK_PASSED, NULL);
	w.prs[0].ci = CI_FAILING;
	step(&w, input(IN_PR), T0 + MIN, &e);
	ck_assert_int_eq(e.nmessages, 1);
	ck_assert_contains(e.messages[0], "build");
	ck_assert_contains(e.messages[0], "lint");
	ck_assert_contains(e.messages[0], "build log");
	ck_assert_contains(e.messages[0], "lint log");
	ck_assert_not_contains(e.messages[0], "'test'");
	reducer_effects_free(&e);
	ck_assert_ptr_nonnull(tracker(&w, "ci-failed/build"));
	ck_assert_ptr_nonnull(tracker(&w, "ci-failed/lint"));
	ck_assert_ptr_null(tracker(&w, "ci-failed/test"));
	/* Only lint fails on c2: only lint is nudged. */
	push_check(&w, "build", "c2", CHK_PASSED, NULL);
	push_check(&w, "lint", "c2", CHK_FAILED, "lint log 2");
	step(&w, input(IN_PR), T0 + 2 * MIN, &e);
	ck_assert_int_eq(e.nmessages, 1);
	ck_assert_contains(e.messages[0], "lint log 2");
	ck_assert_not_contains(e.messages[0], "'build'");
	reducer_effects_free(&e);
	ck_assert_ptr_null(tracker(&w, "ci-failed/build"));
	ck_assert_int_eq(tracker(&w, "ci-failed/lint")->attempts, 2);
	/* A pass between failures means the last three did not all fail. */
	w.nchecks = 0;
	w.ntrackers = 0;
	push_check(&w, "build", "c1", CHK_FAILED, NULL);
	push_check(&w, "build", "c2", CHK_PASSED, NULL);
	push_check(&w, "build", "c3", CHK_FAILED, NULL);
	push_check(&w, "build", "c4", CHK_FAILED, NULL);
	expect(&w, input(IN_PR), T0 + 3 * MIN, 1, 0);
	/* Three failed runs seen for the first time at once: escalate at once. */
	w.nchecks = 0;
	w.ntrackers = 0;
	push_check(&w, "build", "c1", CHK_FAILED, NULL);
	push_check(&w, "build", "c2", CHK_FAILED, NULL);
	push_check(&w, "build", "c3", CHK_FAILED, NULL);
	step(&w, input(IN_PR), T0 + 4 * MIN, &e);
	ck_assert_int_eq(e.nmessages, 0);
	ck_assert_int_eq(notes_of(&e, "ci-failed/build"), 1);
	reducer_effects_free(&e);
}
END_TEST

/* Review nudges: per new signature, at most review_max_nudges, then one page. */
START_TEST(review_nudges)
{
	struct world w;
	struct leffects e;
	static const char *const more[] = { "c-3", "c-4", "c-5", "c-6" };
	size_t i;

	world_pr_open(&w, CI_PASSING);
	add_comment(&w, "c-1", "please rename parse_x");
	add_comment(&w, "c-2", "already fixed")->resolved = true;
	step(&w, input(IN_PR), T0, &e);
	ck_assert_int_eq(e.nmessages, 1);
	ck_assert_int_eq(e.nnotes, 0);
	ck_assert_contains(e.messages[0], "please rename parse_x");
	ck_assert_contains(e.messages[0], "src/main.c:42");
	ck_assert_contains(e.messages[0], "alice");
	ck_assert_not_contains(e.messages[0], "already fixed");
	reducer_effects_free(&e);
	ck_assert_int_eq(tracker(&w, "review-comments")->attempts, 1);
	/* The same set again: nothing. */
	expect(&w, input(IN_PR), T0 + MIN, 0, 0);
	expect(&w, input(IN_TICK), T0 + 2 * MIN, 0, 0);
	/* New comments: nudges 2 and 3, then one escalation, then silence. */
	for (i = 0; i < sizeof(more) / sizeof(more[0]); i++) {
		add_comment(&w, more[i], more[i]);
		step(&w, input(IN_PR), T0 + (int64_t)(i + 3) * MIN, &e);
		if (i < 2) {
			ck_assert_int_eq(e.nmessages, 1);
			ck_assert_int_eq(e.nnotes, 0);
			ck_assert_contains(e.messages[0], more[i]);
			ck_assert_contains(e.messages[0], "please rename parse_x");
		} else if (i == 2) {
			ck_assert_int_eq(e.nmessages, 0);
			ck_assert_int_eq(e.nnotes, 1);
			ck_assert_str_eq(e.notes[0].reaction, "review-comments");
			ck_assert_int_eq(e.notes[0].priority, PRIO_URGENT);
		} else {
			ck_assert_int_eq(e.nmessages, 0);
			ck_assert_int_eq(e.nnotes, 0);
		}
		reducer_effects_free(&e);
	}
	ck_assert_int_eq(tracker(&w, "review-comments")->attempts, 3);
	ck_assert(tracker(&w, "review-comments")->escalated);
	/* Everything resolved: the tracker goes. */
	for (i = 0; i < w.ncomments; i++)
		w.comments[i].resolved = true;
	expect(&w, input(IN_PR), T0 + 10 * MIN, 0, 0);
	ck_assert_ptr_null(tracker(&w, "review-comments"));
	/* And a new round starts with a nudge. */
	add_comment(&w, "c-7", "one more thing");
	expect(&w, input(IN_PR), T0 + 11 * MIN, 1, 0);
}
END_TEST

START_TEST(review_changes_requested)
{
	struct world w;
	struct leffects e;

	world_pr_open(&w, CI_PASSING);
	w.prs[0].review = RV_CHANGES_REQUESTED;
	step(&w, input(IN_PR), T0, &e);
	ck_assert_int_eq(e.nmessages, 1);
	ck_assert_contains(e.messages[0], "Changes were requested");
	reducer_effects_free(&e);
	expect(&w, input(IN_PR), T0 + MIN, 0, 0);
	/* A comment joins the request: a new signature. */
	add_comment(&w, "c-1", "and add a test");
	step(&w, input(IN_PR), T0 + 2 * MIN, &e);
	ck_assert_int_eq(e.nmessages, 1);
	ck_assert_contains(e.messages[0], "and add a test");
	reducer_effects_free(&e);
	/* Approved with the comment resolved: done. */
	w.prs[0].review = RV_APPROVED;
	w.comments[0].resolved = true;
	expect(&w, input(IN_PR), T0 + 3 * MIN, 0, 1);	/* approved-and-green */
	ck_assert_ptr_null(tracker(&w, "review-comments"));
}
END_TEST

START_TEST(merge_conflicts)
{
	struct world w;
	struct leffects e;

	world_pr_open(&w, CI_PASSING);
	w.prs[0].merge = MG_CONFLICTING;
	step(&w, input(IN_PR), T0, &e);
	ck_assert_int_eq(e.nmessages, 1);
	ck_assert_int_eq(e.nnotes, 0);
	ck_assert_contains(e.messages[0], "conflict");
	reducer_effects_free(&e);
	ck_assert_int_eq(tracker(&w, "merge-conflicts")->first_at, T0);
	expect(&w, input(IN_PR), T0 + MIN, 0, 0);
	expect(&w, input(IN_TICK), T0 + 5 * MIN, 0, 0);
	expect(&w, input(IN_TICK), T0 + 15 * MIN - 1, 0, 0);
	step(&w, input(IN_TICK), T0 + 15 * MIN, &e);
	ck_assert_int_eq(e.nmessages, 0);
	ck_assert_int_eq(e.nnotes, 1);
	ck_assert_str_eq(e.notes[0].reaction, "merge-conflicts");
	ck_assert_int_eq(e.notes[0].priority, PRIO_URGENT);
	reducer_effects_free(&e);
	expect(&w, input(IN_TICK), T0 + 16 * MIN, 0, 0);
	expect(&w, input(IN_PR), T0 + 17 * MIN, 0, 0);
	expect(&w, input(IN_TICK), T0 + 60 * MIN, 0, 0);
	/* Resolved: the tracker goes, and a new conflict is a new round. */
	w.prs[0].merge = MG_MERGEABLE;
	expect(&w, input(IN_PR), T0 + 61 * MIN, 0, 0);
	ck_assert_ptr_null(tracker(&w, "merge-conflicts"));
	w.prs[0].merge = MG_CONFLICTING;
	expect(&w, input(IN_PR), T0 + 62 * MIN, 1, 0);
	/* A tick does not nudge a conflict nobody observed. */
	world_pr_open(&w, CI_PASSING);
	w.prs[0].merge = MG_CONFLICTING;
	expect(&w, input(IN_TICK), T0, 0, 0);
	ck_assert_ptr_null(tracker(&w, "merge-conflicts"));
}
END_TEST

START_TEST(agent_idle)
{
	struct world w;
	struct leffects e;

	world_init(&w, ST_WORKING);
	step(&w, activity(ACT_IDLE), T0, &e);
	ck_assert_int_eq(e.next.state, ST_IDLE);
	ck_assert_int_eq(e.nmessages, 1);
	ck_assert_int_eq(e.nnotes, 0);
	reducer_effects_free(&e);
	ck_assert_ptr_nonnull(tracker(&w, "agent-idle"));
	expect(&w, activity(ACT_READY), T0 + MIN, 0, 0);
	expect(&w, input(IN_TICK), T0 + 10 * MIN, 0, 0);
	expect(&w, input(IN_TICK), T0 + 15 * MIN - 1, 0, 0);
	step(&w, input(IN_TICK), T0 + 15 * MIN, &e);
	ck_assert_int_eq(e.nmessages, 0);
	ck_assert_int_eq(e.nnotes, 1);
	ck_assert_str_eq(e.notes[0].reaction, "agent-idle");
	ck_assert_int_eq(e.notes[0].priority, PRIO_URGENT);
	reducer_effects_free(&e);
	expect(&w, input(IN_TICK), T0 + 16 * MIN, 0, 0);
	expect(&w, input(IN_TICK), T0 + 90 * MIN, 0, 0);
	/* Leaving idle clears it. */
	expect(&w, activity(ACT_ACTIVE), T0 + 91 * MIN, 0, 0);
	ck_assert_ptr_null(tracker(&w, "agent-idle"));
	expect(&w, activity(ACT_IDLE), T0 + 92 * MIN, 1, 0);

	/* With an open or draft PR an idle agent is waiting on the PR. */
	world_init(&w, ST_WORKING);
	world_pr(&w, PRS_OPEN, RV_NONE, CI_PENDING, MG_UNKNOWN);
	expect(&w, activity(ACT_IDLE), T0, 0, 0);
	expect(&w, input(IN_TICK), T0 + 20 * MIN, 0, 0);
	ck_assert_ptr_null(tracker(&w, "agent-idle"));
	world_init(&w, ST_WORKING);
	world_pr(&w, PRS_DRAFT, RV_NONE, CI_PENDING, MG_UNKNOWN);
	expect(&w, activity(ACT_IDLE), T0, 0, 0);
	/* A closed PR is no PR under way. */
	world_init(&w, ST_WORKING);
	world_pr(&w, PRS_CLOSED, RV_NONE, CI_PENDING, MG_UNKNOWN);
	expect(&w, activity(ACT_IDLE), T0, 1, 0);
	/* A PR opened while idle clears the tracker. */
	world_init(&w, ST_WORKING);
	expect(&w, activity(ACT_IDLE), T0, 1, 0);
	world_pr(&w, PRS_OPEN, RV_NONE, CI_PENDING, MG_UNKNOWN);
	expect(&w, input(IN_PR), T0 + MIN, 0, 0);
	ck_assert_ptr_null(tracker(&w, "agent-idle"));
}
END_TEST

START_TEST(pr_merged)
{
	struct world w;
	struct leffects e;
	const struct lnote *n;

	world_pr_open(&w, CI_FAILING);
	push_check(&w, "build", "c1", CHK_FAILED, "boom");
	add_comment(&w, "c-1", "nit");
	add_tracker(&w, "ci-failed/build", "c1");
	add_tracker(&w, "review-comments", "c-1");
	add_tracker(&w, "merge-conflicts", "");
	w.prs[0].state = PRS_MERGED;
	step(&w, input(IN_PR), T0, &e);
	ck_assert_int_eq(e.next.state, ST_TERMINATED);
	ck_assert_int_eq(e.next.reason, RS_PR_MERGED);
	ck_assert(!e.next.is_alive);
	ck_assert(e.stop_runtime);
	ck_assert_int_eq(e.nmessages, 0);
	ck_assert_int_eq(e.ntrackers, 1);
	ck_assert(e.trackers[0].clear);
	ck_assert_str_eq(e.trackers[0].t.reaction, "*");
	ck_assert_int_eq(e.nnotes, 1);
	n = note(&e, "pr-merged");
	ck_assert_ptr_nonnull(n);
	ck_assert_int_eq(n->priority, PRIO_INFO);
	ck_assert_contains(n->message, PR_URL);
	reducer_effects_free(&e);
	ck_assert_uint_eq(w.ntrackers, 0);
	ck_assert_str_eq(status_derive(&w.s, status_pick_pr(w.prs, w.nprs), false),
	    "cleanup");
	/* Seen again: nothing more. */
	expect_nothing(&w, input(IN_PR), T0 + MIN);
	expect_nothing(&w, input(IN_TICK), T0 + 20 * MIN);
	/* Merged while the agent is idle or needs input: the same. */
	world_init(&w, ST_NEEDS_INPUT);
	world_pr(&w, PRS_MERGED, RV_APPROVED, CI_PASSING, MG_UNKNOWN);
	expect(&w, input(IN_PR), T0, 0, 1);
	ck_assert_int_eq(w.s.reason, RS_PR_MERGED);
}
END_TEST

START_TEST(pr_closed)
{
	struct world w;
	struct leffects e;

	world_pr_open(&w, CI_FAILING);
	push_check(&w, "build", "c1", CHK_FAILED, "boom");
	add_comment(&w, "c-1", "nit");
	w.prs[0].state = PRS_CLOSED;
	step(&w, input(IN_PR), T0, &e);
	ck_assert_int_eq(e.next.state, ST_WORKING);
	ck_assert(!e.stop_runtime);
	/* A closed PR's CI and review are nobody's business any more. */
	ck_assert_int_eq(e.nmessages, 0);
	ck_assert_int_eq(e.nnotes, 1);
	ck_assert_str_eq(e.notes[0].reaction, "pr-closed");
	ck_assert_int_eq(e.notes[0].priority, PRIO_ACTION);
	ck_assert_contains(e.notes[0].message, PR_URL);
	reducer_effects_free(&e);
	expect(&w, input(IN_PR), T0 + MIN, 0, 0);
	expect(&w, input(IN_TICK), T0 + 2 * MIN, 0, 0);
	expect(&w, input(IN_PR), T0 + 3 * MIN, 0, 0);
	ck_assert_str_eq(status_derive(&w.s, &w.prs[0], true), "working");
}
END_TEST

START_TEST(pr_approved_and_green)
{
	struct world w;
	struct leffects e;

	world_pr_open(&w, CI_PASSING);
	w.prs[0].review = RV_APPROVED;
	step(&w, input(IN_PR), T0, &e);
	ck_assert_int_eq(e.nmessages, 0);
	ck_assert_int_eq(e.nnotes, 1);
	ck_assert_str_eq(e.notes[0].reaction, "approved-and-green");
	ck_assert_int_eq(e.notes[0].priority, PRIO_ACTION);
	ck_assert_contains(e.notes[0].message, PR_URL);
	reducer_effects_free(&e);
	expect(&w, input(IN_PR), T0 + MIN, 0, 0);
	expect(&w, input(IN_TICK), T0 + 2 * MIN, 0, 0);
	expect(&w, input(IN_PR), T0 + 3 * MIN, 0, 0);
	/* Approved but pending, or green but not approved: nothing. */
	world_pr_open(&w, CI_PENDING);
	w.prs[0].review = RV_APPROVED;
	expect(&w, input(IN_PR), T0, 0, 0);
	world_pr_open(&w, CI_PASSING);
	w.prs[0].review = RV_REVIEW_REQUIRED;
	expect(&w, input(IN_PR), T0, 0, 0);
	/* No longer green: the tracker goes. */
	world_pr_open(&w, CI_PASSING);
	w.prs[0].review = RV_APPROVED;
	expect(&w, input(IN_PR), T0, 0, 1);
	w.prs[0].ci = CI_PENDING;
	expect(&w, input(IN_PR), T0 + MIN, 0, 0);
	ck_assert_ptr_null(tracker(&w, "approved-and-green"));
}
END_TEST

/*
 * reducer: bad input
 */

START_TEST(reducer_bad_input)
{
	static const enum linput_type all[] = { IN_SPAWN_OK, IN_SPAWN_FAILED,
		IN_ACTIVITY, IN_PROBE, IN_PR, IN_KILL, IN_TICK, IN_DONE };
	struct world w;
	struct leffects e;
	size_t i;
	char h[65];

	/* Inputs on terminal sessions (restore and cleanup: their own tests). */
	for (i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
		struct linput in = input(all[i]);

		in.activity = ACT_ACTIVE;
		in.probe_runtime = PROBE_DEAD;
		in.probe_process = PROC_DEAD;
		world_pr_open(&w, CI_FAILING);
		w.prs[0].merge = MG_CONFLICTING;
		push_check(&w, "build", "c1", CHK_FAILED, "boom");
		/* A probe of the terminated may repeat the stop of its runtime. */
		w.s = sess_terminated(RS_RUNTIME_LOST);
		expect_ignored(&w, in, T0, all[i] == IN_PROBE);
		w.prs[0].state = PRS_MERGED;
		expect_ignored(&w, in, T0, all[i] == IN_PROBE);
		if (all[i] == IN_KILL)
			continue;	/* done → killed: the kill's decision */
		w.s = sess(ST_DONE);
		w.prs[0].state = PRS_OPEN;
		expect_nothing(&w, in, T0);
	}
	/* No activity value, no source, no evidence, no PR. */
	world_init(&w, ST_WORKING);
	expect_nothing(&w, activity(ACT_NONE), T0);
	step(&w, (struct linput){ .type = IN_ACTIVITY, .activity = ACT_ACTIVE },
	    T0, &e);
	ck_assert_str_eq(e.next.activity_source, "");
	reducer_effects_free(&e);
	expect(&w, probe(PROBE_FAILED, PROC_INDETERMINATE, NULL), T0, 0, 0);
	evidence_hash("", h);
	ck_assert_str_eq(w.s.evidence_hash, h);
	expect(&w, probe(PROBE_UNKNOWN, PROC_INDETERMINATE, ""), T0 + SEC, 0, 0);
	ck_assert_int_eq(w.s.detecting_attempts, 2);
	world_init(&w, ST_WORKING);
	expect_nothing(&w, input(IN_PR), T0);
	/* Probes before the spawn completed are not about this agent yet. */
	world_init(&w, ST_NOT_STARTED);
	expect_nothing(&w, probe(PROBE_DEAD, PROC_DEAD, "gone"), T0);
	expect_nothing(&w, probe(PROBE_FAILED, PROC_DEAD, "gone"), T0);
	/* Tracker tables with odd names match nothing real. */
	world_pr_open(&w, CI_FAILING);
	add_tracker(&w, "", "c1");
	add_tracker(&w, "*", "c1");
	add_tracker(&w, "CI-FAILED/build", "c1");
	add_tracker(&w, "ci-failed/build ", "c1");
	add_tracker(&w, "ci-failed/", "c1");
	add_tracker(&w, "ci-failed/build/extra", "c1");
	push_check(&w, "build", "c1", CHK_FAILED, NULL);
	step(&w, input(IN_PR), T0, &e);
	ck_assert_int_eq(e.nmessages, 1);
	ck_assert_contains(e.messages[0], "build");
	ck_assert_int_eq(e.ntrackers, 1);
	ck_assert(!e.trackers[0].clear);
	ck_assert_str_eq(e.trackers[0].t.reaction, "ci-failed/build");
	reducer_effects_free(&e);
	ck_assert_uint_eq(w.ntrackers, 7);
	/* A pass clears only the real one. */
	push_check(&w, "build", "c2", CHK_PASSED, NULL);
	step(&w, input(IN_PR), T0 + MIN, &e);
	ck_assert_int_eq(e.ntrackers, 1);
	ck_assert(e.trackers[0].clear);
	ck_assert_str_eq(e.trackers[0].t.reaction, "ci-failed/build");
	reducer_effects_free(&e);
	ck_assert_uint_eq(w.ntrackers, 6);
	/* Empty names and missing comment fields. */
	world_pr_open(&w, CI_FAILING);
	push_check(&w, "", "c1", CHK_FAILED, "");
	add_comment(&w, "c-1", NULL);
	w.comments[0].author = NULL;
	w.comments[0].file = NULL;
	step(&w, input(IN_PR), T0, &e);
	ck_assert_int_eq(e.nmessages, 2);
	ck_assert_contains(e.messages[1], "general");
	reducer_effects_free(&e);
	ck_assert_ptr_nonnull(tracker(&w, "ci-failed/"));
	ck_assert_ptr_nonnull(tracker(&w, "review-comments"));
	/* reducer_effects_free on nothing, and twice. */
	memset(&e, 0, sizeof(e));
	reducer_effects_free(&e);
	reducer_effects_free(&e);
}
END_TEST

Suite *
reducer_suite(void)
{
	Suite *s = suite_create("reducer");
	TCase *tc = tcase_create("spawn");

	tcase_set_timeout(tc, 10);
	tcase_add_test(tc, spawn_ok);
	tcase_add_test(tc, spawn_ok_only_from_not_started);
	tcase_add_test(tc, spawn_failed);
	suite_add_tcase(s, tc);
	tc = tcase_create("activity");
	tcase_set_timeout(tc, 10);
	tcase_add_loop_test(tc, activity_transitions, 0,
	    (int)(sizeof(activity_cases) / sizeof(activity_cases[0])));
	tcase_add_test(tc, activity_pages_once);
	tcase_add_test(tc, activity_exited);
	tcase_add_test(tc, activity_on_terminal_ignored);
	suite_add_tcase(s, tc);
	tc = tcase_create("commands");
	tcase_set_timeout(tc, 10);
	tcase_add_test(tc, cmd_kill);
	tcase_add_test(tc, cmd_restore);
	tcase_add_test(tc, cmd_done);
	tcase_add_test(tc, cmd_cleanup);
	suite_add_tcase(s, tc);
	tc = tcase_create("probe");
	tcase_set_timeout(tc, 10);
	tcase_add_loop_test(tc, probe_matrix_twice, 0,
	    (int)(sizeof(probe_matrix) / sizeof(probe_matrix[0])));
	tcase_add_test(tc, probe_healthy_recovers);
	tcase_add_test(tc, probe_failed_never_kills);
	tcase_add_test(tc, probe_process_runtime);
	tcase_add_test(tc, probe_process_indeterminate);
	suite_add_tcase(s, tc);
	tc = tcase_create("detecting");
	tcase_set_timeout(tc, 10);
	tcase_add_test(tc, probe_detecting_evidence);
	tcase_add_test(tc, probe_escalates_on_attempts);
	tcase_add_test(tc, probe_escalates_on_time);
	tcase_add_test(tc, tick_escalates_detecting);
	tcase_add_test(tc, probe_stuck_pages_once);
	tcase_add_test(tc, probe_healthy_restores_stuck);
	tcase_add_test(tc, probe_blip_no_repage);
	tcase_add_test(tc, probe_blip_keeps_idle_budget);
	suite_add_tcase(s, tc);
	tc = tcase_create("death");
	tcase_set_timeout(tc, 10);
	tcase_add_test(tc, probe_death_two_probes);
	tcase_add_test(tc, probe_death_recent_activity);
	tcase_add_test(tc, probe_death_consecutive);
	tcase_add_test(tc, probe_agent_process_exited);
	suite_add_tcase(s, tc);
	tc = tcase_create("ci");
	tcase_set_timeout(tc, 10);
	tcase_add_test(tc, ci_brake);
	tcase_add_test(tc, ci_checks);
	suite_add_tcase(s, tc);
	tc = tcase_create("review");
	tcase_set_timeout(tc, 10);
	tcase_add_test(tc, review_nudges);
	tcase_add_test(tc, review_changes_requested);
	suite_add_tcase(s, tc);
	tc = tcase_create("timed");
	tcase_set_timeout(tc, 10);
	tcase_add_test(tc, merge_conflicts);
	tcase_add_test(tc, agent_idle);
	suite_add_tcase(s, tc);
	tc = tcase_create("pr");
	tcase_set_timeout(tc, 10);
	tcase_add_test(tc, pr_merged);
	tcase_add_test(tc, pr_closed);
	tcase_add_test(tc, pr_approved_and_green);
	suite_add_tcase(s, tc);
	tc = tcase_create("bad input");
	tcase_set_timeout(tc, 10);
	tcase_add_test(tc, reducer_bad_input);
	suite_add_tcase(s, tc);
	return s;
}
TEST_SUITE(reducer_suite)
