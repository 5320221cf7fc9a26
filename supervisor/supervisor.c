/* ao-supervisor: the parent of every ao daemon. */
#include <stddef.h>
#include <string.h>

#include "common/daemon.h"
#include "common/log.h"
#include "supervisor/supervisor.h"

#define DAY_MS (24LL * 60 * 60 * 1000)

static const struct config_key supervisor_keys[] = {
	{ "stop_timeout_ms", CONFIG_MS, "10000",
	    offsetof(struct supervisor_config, stop_timeout_ms), 1, DAY_MS,
	    "a child still running this long after SIGTERM gets SIGKILL" },
	CONFIG_KEY_END
};

int
main(int argc, char **argv)
{
	struct daemon_opts opts;
	struct supervisor_config cfg;

	memset(&cfg, 0, sizeof(cfg));
	daemon_init(&opts, argc, argv, "supervisor",
	    "Starts the ao daemons in order, restarts them, reports status.",
	    supervisor_keys, &cfg);
	fatalx_perm("not implemented");
}
