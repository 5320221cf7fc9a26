/* ao-lcmd: sessions, their lifecycle and reactions (DESIGN.md §6). */
#ifndef AO_LCMD_H
#define AO_LCMD_H

#include <stdint.h>

struct lcmd_config {
	int64_t recent_activity_ms;	/* activity this recent vetoes death */
	int64_t detecting_max_attempts;	/* same-evidence probes → stuck */
	int64_t detecting_max_ms;	/* time in detecting → stuck */
	int64_t ci_brake_runs;		/* failed runs in a row → escalate */
	int64_t review_max_nudges;	/* review nudges before escalating */
	int64_t escalate_after_ms;	/* merge-conflicts, agent-idle */
	int64_t notify_timeout_ms;	/* a notifier child's deadline */
	int64_t max_sessions;		/* live sessions at once */
	char *tmux_socket;		/* "" for tmux's default server */
	int64_t max_message_bytes;	/* largest msgpack-rpc message */
};

#endif
