/* ao-supervisor: starts, watches and restarts the daemons (DESIGN.md §8). */
#ifndef AO_SUPERVISOR_H
#define AO_SUPERVISOR_H

#include <stdint.h>

struct supervisor_config {
	int64_t stop_timeout_ms;	/* SIGTERM to SIGKILL on shutdown */
};

#endif
