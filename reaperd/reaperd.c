/* ao-reaperd: probes runtimes and reports to lcmd. */
#include <stddef.h>
#include <string.h>

#include "common/daemon.h"
#include "common/log.h"
#include "reaperd/reaperd.h"

#define DAY_MS (24LL * 60 * 60 * 1000)

static const struct config_key reaperd_keys[] = {
	{ "tick_ms", CONFIG_MS, "5000",
	    offsetof(struct reaperd_config, tick_ms), 1, DAY_MS,
	    "time between probe rounds" },
	{ "probe_timeout_ms", CONFIG_MS, "5000",
	    offsetof(struct reaperd_config, probe_timeout_ms), 1, DAY_MS,
	    "a probe that takes longer counts as failed, never dead" },
	CONFIG_KEY_END
};

int
main(int argc, char **argv)
{
	struct daemon_opts opts;
	struct reaperd_config cfg;

	memset(&cfg, 0, sizeof(cfg));
	daemon_init(&opts, argc, argv, "reaperd",
	    "Probes agent runtimes on a tick and reports to ao-lcmd.",
	    reaperd_keys, &cfg);
	fatalx_perm("not implemented");
}
