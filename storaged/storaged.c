/* ao-storaged: owns ao.db and serves storaged.sock. */
#include <stddef.h>
#include <string.h>

#include "common/daemon.h"
#include "common/log.h"
#include "storaged/storaged.h"

#define DAY_MS (24LL * 60 * 60 * 1000)

static const struct config_key storaged_keys[] = {
	{ "retention_ms", CONFIG_MS, "604800000",
	    offsetof(struct storaged_config, retention_ms), 1, 100 * 365 * DAY_MS,
	    "prune change_log events older than this" },
	{ "retention_rows", CONFIG_INT, "1000000",
	    offsetof(struct storaged_config, retention_rows), 1, INT64_MAX,
	    "keep at most this many change_log events" },
	{ "max_message_bytes", CONFIG_BYTES, "16MiB",
	    offsetof(struct storaged_config, max_message_bytes), 256,
	    1024LL * 1024 * 1024,
	    "largest request or response on storaged.sock" },
	CONFIG_KEY_END
};

int
main(int argc, char **argv)
{
	struct daemon_opts opts;
	struct storaged_config cfg;

	memset(&cfg, 0, sizeof(cfg));
	daemon_init(&opts, argc, argv, "storaged",
	    "The sole writer of ao.db: sessions, PRs, the change log.",
	    storaged_keys, &cfg);
	fatalx_perm("not implemented");
}
