/*
 * The bounded pre-scanner (DESIGN.md §3).  msgpack-c allocates a container's
 * declared size before its bytes arrive, so every incoming message is walked
 * here first.  The scanner is incremental (bytes may arrive in any split),
 * allocates nothing, and rejects:
 *   - a str/bin/ext length, or an array/map count, larger than the bytes that
 *     can still follow within the message limit (an array element takes at
 *     least 1 byte, a map entry 2);
 *   - nesting deeper than SCAN_MAX_DEPTH;
 *   - more than max_objects objects in one message (bounds what msgpack-c
 *     allocates for a message that passes);
 *   - the never-used byte 0xc1;
 *   - a message longer than max_msg.
 * Only a complete, scanned message is handed to msgpack-c.
 */
#ifndef AO_SCAN_H
#define AO_SCAN_H

#include <stddef.h>
#include <stdint.h>

#define SCAN_MAX_DEPTH		32
#define SCAN_DEFAULT_MAX_MSG	(16u * 1024 * 1024)
#define SCAN_DEFAULT_MAX_OBJECTS (4u * 1024 * 1024)

enum scan_status {
	SCAN_MORE,	/* all bytes consumed, message incomplete */
	SCAN_DONE,	/* a complete message; scan_length() bytes long */
	SCAN_ERROR,	/* framing violation; scan_error() says why */
};

struct scan {
	size_t max_msg;
	size_t max_objects;
	size_t len;		/* bytes of the current message consumed */
	size_t objects;
	unsigned depth;		/* open containers */
	uint64_t remain[SCAN_MAX_DEPTH + 1];	/* objects still due per level */
	uint8_t hdr[9];		/* a header split across feeds */
	uint8_t hdr_have, hdr_need;
	uint64_t skip;		/* payload bytes still to skip */
	enum scan_status status;
	const char *error;
};

void scan_init(struct scan *, size_t max_msg, size_t max_objects);
/* Prepares for the next message (after SCAN_DONE). */
void scan_reset(struct scan *);

/*
 * Consumes bytes of `buf` (len bytes) and stores in *used how many it took.
 * On SCAN_DONE, *used ends exactly at the end of the message (bytes after it
 * belong to the next message).  After SCAN_ERROR the scanner stays in error.
 */
enum scan_status scan_feed(struct scan *, const void *buf, size_t len, size_t *used);

size_t scan_length(const struct scan *);
const char *scan_error(const struct scan *);

/*
 * One-shot: scans the message at the start of buf.  Returns SCAN_DONE with
 * *msglen set, SCAN_MORE, or SCAN_ERROR with *err set.
 */
enum scan_status scan_buffer(const void *buf, size_t len, size_t max_msg,
    size_t *msglen, const char **err);

#endif
