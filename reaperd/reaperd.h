/* ao-reaperd: probes agent runtimes on a tick (DESIGN.md §7). */
#ifndef AO_REAPERD_H
#define AO_REAPERD_H

#include <stdint.h>

struct reaperd_config {
	int64_t tick_ms;		/* time between probe rounds */
	int64_t probe_timeout_ms;	/* a probe slower than this failed */
};

#endif
