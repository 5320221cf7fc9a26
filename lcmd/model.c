#include <string.h>

#include "lcmd/lcmd.h"

const char *const model_states[] = { "not_started", "working", "idle",
	"needs_input", "stuck", "detecting", "done", "terminated", NULL };
const char *const model_reasons[] = { "manually_killed", "runtime_lost",
	"agent_process_exited", "probe_failure", "error_in_process", "auto_cleanup",
	"pr_merged", NULL };
const char *const model_activities[] = { "active", "ready", "idle",
	"waiting_input", "blocked", "exited", NULL };
const char *const model_pr_states[] = { "draft", "open", "merged", "closed", NULL };
const char *const model_reviews[] = { "none", "approved", "changes_requested",
	"review_required", NULL };
const char *const model_ci[] = { "unknown", "pending", "passing", "failing", NULL };
const char *const model_merge[] = { "unknown", "mergeable", "conflicting",
	"blocked", "unstable", NULL };
const char *const model_check_statuses[] = { "unknown", "queued", "in_progress",
	"passed", "failed", "skipped", "cancelled", NULL };
const char *const model_probes[] = { "alive", "dead", "failed", "unknown", NULL };
const char *const model_procs[] = { "alive", "dead", "indeterminate", NULL };
const char *const model_priorities[] = { "urgent", "action", "info", NULL };

int
model_parse(const char *const *names, const char *s)
{
	int i;

	if (s == NULL)
		return -1;
	for (i = 0; names[i] != NULL; i++)
		if (strcmp(names[i], s) == 0)
			return i;
	return -1;
}
