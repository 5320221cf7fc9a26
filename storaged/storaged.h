/* ao-storaged: the sole writer of ao.db (DESIGN.md §4). */
#ifndef AO_STORAGED_H
#define AO_STORAGED_H

#include <stdint.h>

struct storaged_config {
	int64_t retention_ms;		/* change_log age limit */
	int64_t retention_rows;		/* change_log row limit */
	int64_t max_message_bytes;	/* largest msgpack-rpc message */
};

#endif
