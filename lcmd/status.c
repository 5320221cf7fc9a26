/*
 * Display status (DESIGN.md §6), derived on read in this precedence:
 *
 *   1. the session itself: done; terminated → killed | cleanup | errored;
 *      needs_input, stuck, detecting; not_started → spawning
 *   2. its PR: merged; unless closed: ci_failed, draft, changes_requested,
 *      mergeable, approved, review_pending, pr_open (a closed PR falls
 *      through)
 *   3. idle, else working
 */
#include "lcmd/lcmd.h"

const struct lpr *
status_pick_pr(const struct lpr *prs, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (prs[i].state == PRS_DRAFT || prs[i].state == PRS_OPEN)
			return &prs[i];
	return n > 0 ? &prs[0] : NULL;
}

const char *
status_derive(const struct lsession *s, const struct lpr *pr, bool unresolved)
{
	switch (s->state) {
	case ST_DONE:
		return "done";
	case ST_TERMINATED:
		switch (s->reason) {
		case RS_AUTO_CLEANUP:
		case RS_PR_MERGED:
			return "cleanup";
		case RS_ERROR_IN_PROCESS:
		case RS_PROBE_FAILURE:
			return "errored";
		default:
			return "killed";
		}
	case ST_NEEDS_INPUT:
		return "needs_input";
	case ST_STUCK:
		return "stuck";
	case ST_DETECTING:
		return "detecting";
	case ST_NOT_STARTED:
		return "spawning";
	case ST_WORKING:
	case ST_IDLE:
		break;
	}
	if (pr != NULL) {
		if (pr->state == PRS_MERGED)
			return "merged";
		if (pr->state != PRS_CLOSED) {
			if (pr->ci == CI_FAILING)
				return "ci_failed";
			if (pr->state == PRS_DRAFT)
				return "draft";
			if (pr->review == RV_CHANGES_REQUESTED || unresolved)
				return "changes_requested";
			if (pr->merge == MG_MERGEABLE)
				return "mergeable";
			if (pr->review == RV_APPROVED)
				return "approved";
			if (pr->review == RV_REVIEW_REQUIRED)
				return "review_pending";
			return "pr_open";
		}
	}
	return s->state == ST_IDLE ? "idle" : "working";
}
