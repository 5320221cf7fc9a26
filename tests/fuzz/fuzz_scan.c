/*
 * libFuzzer harness for proto/scan and what sits behind it (proto/rpc).
 *
 * Input: one control byte, then the byte stream of a connection.
 *   bits 0-5  largest chunk handed to scan_feed, minus one
 *   bit 6     a 256-byte message limit instead of the default 16 MiB
 *   bit 7     chunk sizes vary (1..largest) instead of being fixed
 * The stream is scanned message by message, as a peer would.  Each verdict
 * must match a one-shot scan_buffer; each scanned message must decode with
 * msgpack-c to exactly its length, and then goes through rpc_msg_parse and
 * the typed getters, as a server would.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <msgpack.h>

#include "proto/rpc.h"
#include "proto/scan.h"

#define FUZZ_SMALL_MAX_MSG	256

#define FUZZ_CHECK(cond) do {						\
	if (!(cond)) {							\
		fprintf(stderr, "%s:%d: check failed: %s\n",		\
		    __FILE__, __LINE__, #cond);				\
		abort();						\
	}								\
} while (0)

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

/* A string a getter returned must be NUL-terminated, valid UTF-8. */
static void
fuzz_scan_check_str(const char *s)
{
	FUZZ_CHECK(s != NULL);
	FUZZ_CHECK(rpc_utf8_valid(s, strlen(s)));
}

static void
fuzz_scan_params(const msgpack_object *params, msgpack_zone *zone)
{
	static const char *const runtimes[] = { "tmux", "process", NULL };
	struct rpc_params p;
	struct rpc_error err;
	const msgpack_object *o;
	const char *str, **strs;
	int64_t i64;
	size_t i, n;
	bool b;
	int idx;

	rpc_error_clear(&err);
	if (rpc_params_init(&p, params, zone, "params", &err) == -1) {
		FUZZ_CHECK(err.code == RPC_BAD_REQUEST);
		return;
	}
	if (rpc_get_str(&p, "id", RPC_OPTIONAL, &str) == 1)
		fuzz_scan_check_str(str);
	rpc_get_i64(&p, "limit", RPC_OPTIONAL, &i64);
	rpc_get_bool(&p, "include_terminated", RPC_OPTIONAL, &b);
	if (rpc_get_map(&p, "pr", RPC_OPTIONAL, &o) == 1)
		FUZZ_CHECK(o->type == MSGPACK_OBJECT_MAP);
	if (rpc_get_array(&p, "checks", RPC_OPTIONAL, &o) == 1)
		FUZZ_CHECK(o->type == MSGPACK_OBJECT_ARRAY);
	if (rpc_get_enum(&p, "runtime", RPC_OPTIONAL, runtimes, &idx) == 1)
		FUZZ_CHECK(idx >= 0 && idx < 2);
	if (rpc_get_str_array(&p, "command", RPC_OPTIONAL, &strs, &n) == 1) {
		for (i = 0; i < n; i++)
			fuzz_scan_check_str(strs[i]);
		FUZZ_CHECK(strs[n] == NULL);
	}
	if (rpc_get_str(&p, "message", RPC_REQUIRED, &str) == 1)
		fuzz_scan_check_str(str);
	if (rpc_params_end(&p) == -1)
		FUZZ_CHECK(err.code == RPC_BAD_REQUEST);
}

/* One message the scanner accepted: msgpack-c and rpc must cope with it. */
static void
fuzz_scan_message(const uint8_t *buf, size_t len)
{
	msgpack_unpacked u;
	struct rpc_msg m;
	struct rpc_error err;
	size_t off = 0;

	msgpack_unpacked_init(&u);
	FUZZ_CHECK(msgpack_unpack_next(&u, (const char *)buf, len, &off) ==
	    MSGPACK_UNPACK_SUCCESS);
	FUZZ_CHECK(off == len);

	rpc_error_clear(&err);
	if (rpc_msg_parse(&u.data, u.zone, &m, &err) == -1) {
		FUZZ_CHECK(err.code == RPC_BAD_REQUEST);
		goto out;
	}
	if (m.type == RPC_RESPONSE) {
		FUZZ_CHECK(m.error != NULL && m.result != NULL);
		rpc_error_from_object(m.error, &err);
		goto out;
	}
	FUZZ_CHECK(m.method != NULL);
	FUZZ_CHECK(m.ignore == NULL || m.type == RPC_NOTIFY);
	if (m.type == RPC_REQUEST && m.params != NULL)
		fuzz_scan_params(m.params, u.zone);
out:
	msgpack_unpacked_destroy(&u);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct scan s;
	enum scan_status st, st1;
	const char *err;
	size_t max_msg, maxchunk, chunk, used, start, off, n1;
	unsigned ctl, rnd;

	if (size == 0)
		return 0;
	ctl = data[0];
	data++;
	size--;
	maxchunk = (ctl & 0x3f) + 1;
	max_msg = (ctl & 0x40) ? FUZZ_SMALL_MAX_MSG : SCAN_DEFAULT_MAX_MSG;
	rnd = ctl * 2654435761u;

	scan_init(&s, max_msg, SCAN_DEFAULT_MAX_OBJECTS);
	start = off = 0;
	st = SCAN_MORE;
	while (off < size) {
		chunk = maxchunk;
		if (ctl & 0x80) {
			rnd = rnd * 1103515245u + 12345u;
			chunk = 1 + (rnd >> 16) % maxchunk;
		}
		if (chunk > size - off)
			chunk = size - off;
		st = scan_feed(&s, data + off, chunk, &used);
		FUZZ_CHECK(used <= chunk);
		off += used;
		if (st == SCAN_MORE) {
			FUZZ_CHECK(used == chunk);
			continue;
		}

		n1 = 0;
		err = NULL;
		st1 = scan_buffer(data + start, size - start, max_msg, &n1,
		    &err);
		FUZZ_CHECK(st1 == st);
		if (st == SCAN_ERROR) {
			FUZZ_CHECK(scan_error(&s) != NULL && err != NULL);
			FUZZ_CHECK(strcmp(scan_error(&s), err) == 0);
			/* Sticky: the connection is closed here. */
			FUZZ_CHECK(scan_feed(&s, data, size, &used) ==
			    SCAN_ERROR && used == 0);
			return 0;
		}
		FUZZ_CHECK(scan_length(&s) == off - start);
		FUZZ_CHECK(n1 == off - start);
		FUZZ_CHECK(n1 <= max_msg);
		fuzz_scan_message(data + start, n1);
		scan_reset(&s);
		start = off;
		st = SCAN_MORE;
	}
	if (start < size) {
		FUZZ_CHECK(st == SCAN_MORE);
		FUZZ_CHECK(scan_buffer(data + start, size - start, max_msg,
		    &n1, &err) == SCAN_MORE);
		FUZZ_CHECK(scan_length(&s) == size - start);
	}
	return 0;
}
