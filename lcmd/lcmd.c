/* ao-lcmd: the session state machine; serves lcmd.sock, the public API. */
#include <stddef.h>
#include <string.h>

#include "common/daemon.h"
#include "common/log.h"
#include "lcmd/lcmd.h"

#define DAY_MS (24LL * 60 * 60 * 1000)

static const struct config_key lcmd_keys[] = {
	{ "recent_activity_ms", CONFIG_MS, "60000",
	    offsetof(struct lcmd_config, recent_activity_ms), 0, DAY_MS,
	    "activity this recent means a session is not dead" },
	{ "detecting_max_attempts", CONFIG_INT, "3",
	    offsetof(struct lcmd_config, detecting_max_attempts), 1, 1000,
	    "probes with the same evidence before detecting becomes stuck" },
	{ "detecting_max_ms", CONFIG_MS, "300000",
	    offsetof(struct lcmd_config, detecting_max_ms), 1, 30 * DAY_MS,
	    "time in detecting before it becomes stuck" },
	{ "ci_brake_runs", CONFIG_INT, "3",
	    offsetof(struct lcmd_config, ci_brake_runs), 1, 1000,
	    "failed runs of one check in a row that escalate to a human" },
	{ "review_max_nudges", CONFIG_INT, "3",
	    offsetof(struct lcmd_config, review_max_nudges), 0, 1000,
	    "review-comment nudges to the agent before escalating" },
	{ "escalate_after_ms", CONFIG_MS, "900000",
	    offsetof(struct lcmd_config, escalate_after_ms), 1, 30 * DAY_MS,
	    "merge-conflicts and agent-idle escalate after this long" },
	{ "notify_timeout_ms", CONFIG_MS, "10000",
	    offsetof(struct lcmd_config, notify_timeout_ms), 1, DAY_MS,
	    "a notifier command is killed after this long" },
	{ "max_sessions", CONFIG_INT, "16",
	    offsetof(struct lcmd_config, max_sessions), 1, 100000,
	    "live sessions at once; spawn fails beyond it" },
	{ "tmux_socket", CONFIG_STR, NULL,
	    offsetof(struct lcmd_config, tmux_socket), 0, 0,
	    "tmux server socket, a name (-L) or a path (-S); none: tmux's "
	    "default" },
	{ "max_message_bytes", CONFIG_BYTES, "16MiB",
	    offsetof(struct lcmd_config, max_message_bytes), 256,
	    1024LL * 1024 * 1024,
	    "largest request or response on lcmd.sock" },
	CONFIG_KEY_END
};

int
main(int argc, char **argv)
{
	struct daemon_opts opts;
	struct lcmd_config cfg;

	memset(&cfg, 0, sizeof(cfg));
	daemon_init(&opts, argc, argv, "lcmd",
	    "Runs agent sessions through their lifecycle and reacts to their "
	    "PRs.", lcmd_keys, &cfg);
	fatalx_perm("not implemented");
}
