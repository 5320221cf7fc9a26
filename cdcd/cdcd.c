/* ao-cdcd: tails change_log and serves cdcd.sock. */
#include <stddef.h>
#include <string.h>

#include "cdcd/cdcd.h"
#include "common/daemon.h"
#include "common/log.h"

#define DAY_MS (24LL * 60 * 60 * 1000)

static const struct config_key cdcd_keys[] = {
	{ "poll_ms", CONFIG_MS, "250",
	    offsetof(struct cdcd_config, poll_ms), 1, DAY_MS,
	    "poll the database for commits that sent no wake" },
	{ "subscriber_buffer_bytes", CONFIG_BYTES, "1MiB",
	    offsetof(struct cdcd_config, subscriber_buffer_bytes), 1,
	    1024LL * 1024 * 1024,
	    "a subscriber's output high-water mark; past it, it catches up "
	    "from the database" },
	{ "stall_timeout_ms", CONFIG_MS, "600000",
	    offsetof(struct cdcd_config, stall_timeout_ms), 1, 30 * DAY_MS,
	    "close a subscriber that has read nothing for this long" },
	{ "max_message_bytes", CONFIG_BYTES, "16MiB",
	    offsetof(struct cdcd_config, max_message_bytes), 256,
	    1024LL * 1024 * 1024,
	    "largest request or response on cdcd.sock" },
	CONFIG_KEY_END
};

int
main(int argc, char **argv)
{
	struct daemon_opts opts;
	struct cdcd_config cfg;

	memset(&cfg, 0, sizeof(cfg));
	daemon_init(&opts, argc, argv, "cdcd",
	    "Streams every change in ao.db to subscribers, in order.",
	    cdcd_keys, &cfg);
	fatalx_perm("not implemented");
}
