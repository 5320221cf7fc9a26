#include "proto/scan.h"

#include <string.h>

/*
 * State: remain[0..depth] counts the objects still due at each open level
 * (remain[0] is the single top-level object).  An object is charged to its
 * level when its header completes; a str/bin/ext payload is then skipped in
 * bulk (skip), a non-empty container opens a level.  When an object
 * completes, exhausted levels close; the message is done when level 0 is.
 *
 *   type byte --> whole header ---+--> scalar --------------------+
 *        ^        (a split one    +--> str/bin/ext: skip payload -+--> complete
 *        |         waits in hdr)  +--> container: open a level    |
 *        |                                                        |
 *        +---- close exhausted levels; level 0 exhausted: DONE <--+
 *
 * Invariant: len <= max_msg; bytes past the limit are never looked at.
 */

/*
 * Header length by type byte 0xc0..0xdf, fixed-size numbers included (at
 * most 9 bytes, the size of hdr); 0 for the never-used 0xc1.  Every other
 * type byte is a one-byte header.  fixext headers are the type byte and the
 * ext type; their data is skipped like a payload.
 */
static const uint8_t scan_hdrlen[32] = {
	1, 0, 1, 1,	/* nil, (never used), false, true */
	2, 3, 5,	/* bin 8/16/32 */
	3, 4, 6,	/* ext 8/16/32 */
	5, 9,		/* float 32/64 */
	2, 3, 5, 9,	/* uint 8/16/32/64 */
	2, 3, 5, 9,	/* int 8/16/32/64 */
	2, 2, 2, 2, 2,	/* fixext 1/2/4/8/16 */
	2, 3, 5,	/* str 8/16/32 */
	3, 5,		/* array 16/32 */
	3, 5,		/* map 16/32 */
};

#define SCAN_OBJ_PENDING	0	/* payload or children still due */
#define SCAN_OBJ_COMPLETE	1

static size_t
scan_header_len(uint8_t c)
{
	if (c < 0xc0 || c >= 0xe0)
		return 1;
	return scan_hdrlen[c - 0xc0];
}

static uint64_t
scan_be16(const uint8_t *p)
{
	return (uint64_t)p[0] << 8 | p[1];
}

static uint64_t
scan_be32(const uint8_t *p)
{
	return (uint64_t)p[0] << 24 | (uint64_t)p[1] << 16 |
	    (uint64_t)p[2] << 8 | p[3];
}

static int
scan_fail(struct scan *s, const char *why)
{
	s->status = SCAN_ERROR;
	s->error = why;
	return -1;
}

/*
 * Accounts for one complete header h; off is the message length through it.
 * Returns SCAN_OBJ_COMPLETE, SCAN_OBJ_PENDING, or -1 with the scanner in
 * error.  Limits are checked here, before any payload or child arrives.
 */
static int
scan_header(struct scan *s, const uint8_t *h, size_t off)
{
	size_t room = s->max_msg - off;
	uint64_t n, children;

	if (s->objects >= s->max_objects)
		return scan_fail(s, "too many objects");
	s->objects++;
	s->remain[s->depth]--;

	if (h[0] <= 0x7f || h[0] >= 0xe0)
		return SCAN_OBJ_COMPLETE;
	if (h[0] <= 0x8f) {
		children = 2 * (uint64_t)(h[0] & 0x0f);
		goto container;
	}
	if (h[0] <= 0x9f) {
		children = h[0] & 0x0f;
		goto container;
	}
	if (h[0] <= 0xbf) {
		n = h[0] & 0x1f;
		goto payload;
	}
	switch (h[0]) {
	case 0xc4: case 0xc7: case 0xd9:
		n = h[1];
		goto payload;
	case 0xc5: case 0xc8: case 0xda:
		n = scan_be16(h + 1);
		goto payload;
	case 0xc6: case 0xc9: case 0xdb:
		n = scan_be32(h + 1);
		goto payload;
	case 0xd4: case 0xd5: case 0xd6: case 0xd7: case 0xd8:
		n = (uint64_t)1 << (h[0] - 0xd4);
		goto payload;
	case 0xdc:
		children = scan_be16(h + 1);
		goto container;
	case 0xdd:
		children = scan_be32(h + 1);
		goto container;
	case 0xde:
		children = 2 * scan_be16(h + 1);
		goto container;
	case 0xdf:
		children = 2 * scan_be32(h + 1);
		goto container;
	}
	return SCAN_OBJ_COMPLETE;

payload:
	if (n > room)
		return scan_fail(s, "length exceeds message limit");
	if (n == 0)
		return SCAN_OBJ_COMPLETE;
	s->skip = n;
	return SCAN_OBJ_PENDING;

container:
	/* Empty containers count too: msgpack-c's stack has the same bound. */
	if (s->depth >= SCAN_MAX_DEPTH)
		return scan_fail(s, "nesting too deep");
	if (children > room)
		return scan_fail(s, "count exceeds message limit");
	if (children > s->max_objects - s->objects)
		return scan_fail(s, "too many objects");
	if (children == 0)
		return SCAN_OBJ_COMPLETE;
	s->remain[++s->depth] = children;
	return SCAN_OBJ_PENDING;
}

/* Closes the levels an object completed; true when the message is done. */
static int
scan_complete(struct scan *s)
{
	while (s->remain[s->depth] == 0) {
		if (s->depth == 0)
			return 1;
		s->depth--;
	}
	return 0;
}

void
scan_init(struct scan *s, size_t max_msg, size_t max_objects)
{
	memset(s, 0, sizeof(*s));
	s->max_msg = max_msg;
	s->max_objects = max_objects;
	s->remain[0] = 1;
	s->status = SCAN_MORE;
}

void
scan_reset(struct scan *s)
{
	scan_init(s, s->max_msg, s->max_objects);
}

enum scan_status
scan_feed(struct scan *s, const void *buf, size_t len, size_t *used)
{
	const uint8_t *start = buf, *p = buf, *end, *h;
	size_t room, hl, take;
	int r;

	*used = 0;
	if (s->status != SCAN_MORE || len == 0)
		return s->status;
	room = s->max_msg - s->len;
	end = p + (len < room ? len : room);

	for (;;) {
		if (s->skip > 0) {
			take = (size_t)(end - p);
			if (take > s->skip)
				take = (size_t)s->skip;
			p += take;
			s->skip -= take;
			if (s->skip > 0)
				break;
			if (scan_complete(s))
				goto done;
			continue;
		}
		if (p == end)
			break;

		if (s->hdr_need > 0) {
			take = s->hdr_need - s->hdr_have;
			if (take > (size_t)(end - p))
				take = (size_t)(end - p);
			memcpy(s->hdr + s->hdr_have, p, take);
			p += take;
			s->hdr_have += (uint8_t)take;
			if (s->hdr_have < s->hdr_need)
				break;
			h = s->hdr;
			s->hdr_need = s->hdr_have = 0;
		} else {
			if ((hl = scan_header_len(*p)) == 0) {
				scan_fail(s, "reserved byte 0xc1");
				goto fail;
			}
			if (hl > (size_t)(end - p)) {
				take = (size_t)(end - p);
				memcpy(s->hdr, p, take);
				s->hdr_have = (uint8_t)take;
				s->hdr_need = (uint8_t)hl;
				p = end;
				break;
			}
			h = p;
			p += hl;
		}

		r = scan_header(s, h, s->len + (size_t)(p - start));
		if (r == -1)
			goto fail;
		if (r == SCAN_OBJ_COMPLETE && scan_complete(s))
			goto done;
	}

	/* Out of input (or of room): the message is still incomplete. */
	s->len += (size_t)(p - start);
	*used = (size_t)(p - start);
	if (s->len >= s->max_msg)
		scan_fail(s, "message too large");
	return s->status;

done:
	s->len += (size_t)(p - start);
	*used = (size_t)(p - start);
	s->status = SCAN_DONE;
	return SCAN_DONE;

fail:
	s->len += (size_t)(p - start);
	*used = (size_t)(p - start);
	return SCAN_ERROR;
}

size_t
scan_length(const struct scan *s)
{
	return s->len;
}

const char *
scan_error(const struct scan *s)
{
	return s->error;
}

enum scan_status
scan_buffer(const void *buf, size_t len, size_t max_msg, size_t *msglen,
    const char **err)
{
	struct scan s;
	enum scan_status st;
	size_t used;

	scan_init(&s, max_msg, SCAN_DEFAULT_MAX_OBJECTS);
	st = scan_feed(&s, buf, len, &used);
	if (st == SCAN_DONE && msglen != NULL)
		*msglen = used;
	if (st == SCAN_ERROR && err != NULL)
		*err = s.error;
	return st;
}
