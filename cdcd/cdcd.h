/* ao-cdcd: change-log fan-out to subscribers (DESIGN.md §5). */
#ifndef AO_CDCD_H
#define AO_CDCD_H

#include <stdint.h>

struct cdcd_config {
	int64_t poll_ms;			/* PRAGMA data_version poll */
	int64_t subscriber_buffer_bytes;	/* output high-water mark */
	int64_t stall_timeout_ms;		/* close a reader that stopped */
	int64_t max_message_bytes;		/* largest msgpack-rpc message */
};

#endif
