/*
 * msgpack-rpc codec (docs/protocol.md): error codes, message parsing, typed
 * parameter getters and packing helpers.  No I/O here.
 *
 *   request       [0, msgid, method, [params]]
 *   response      [1, msgid, error, result]
 *   notification  [2, method, [params]]
 *
 * params is one map of named arguments (or an empty array for none); error is
 * nil or {"code": str, "message": str, ...}.
 */
#ifndef AO_RPC_H
#define AO_RPC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <msgpack.h>

#include "common/log.h"

enum rpc_code {
	RPC_OK = 0,
	RPC_BAD_REQUEST,
	RPC_NOT_FOUND,
	RPC_CONFLICT,
	RPC_INVALID_STATE,
	RPC_UNKNOWN_METHOD,
	RPC_TOO_LARGE,
	RPC_UNAVAILABLE,
	RPC_INTERNAL,
};

enum rpc_type {
	RPC_REQUEST = 0,
	RPC_RESPONSE = 1,
	RPC_NOTIFY = 2,
};

/* An error; code RPC_OK means none.  One optional extra string key. */
struct rpc_error {
	enum rpc_code code;
	char message[512];
	char extra_key[32];
	char extra_val[256];
};

const char *rpc_code_name(enum rpc_code);
/* Parses a code name; unknown names map to RPC_INTERNAL. */
enum rpc_code rpc_code_parse(const char *, size_t);

void rpc_error_clear(struct rpc_error *);
/* Sets code and message; returns -1 so handlers can `return rpc_error_set(...)`. */
int rpc_error_set(struct rpc_error *, enum rpc_code, const char *fmt, ...)
    AO_PRINTF(3, 4);
void rpc_error_extra(struct rpc_error *, const char *key, const char *val);

/* A parsed message.  Pointers point into the unpacked object and its zone. */
struct rpc_msg {
	enum rpc_type type;
	uint32_t msgid;			/* requests and responses */
	const char *method;		/* NUL-terminated; requests, notifications */
	const msgpack_object *params;	/* a map, or NULL when none */
	const msgpack_object *error;	/* responses: nil or a map */
	const msgpack_object *result;	/* responses */
	const char *ignore;		/* notifications: why ao cannot use it */
};

/*
 * Validates the envelope of `root` and fills `m`.  Strings that must be
 * NUL-terminated are copied into `zone`.  Returns 0, or -1 with err
 * (RPC_BAD_REQUEST) describing what is wrong.
 *
 * A notification never fails: one whose method is not 1-128 bytes of UTF-8
 * (str, or bin as pynvim sends it) or whose params are not [] or [map]
 * (Neovim's and pynvim's are positional) comes back with `ignore` saying
 * why and `method` "" when unreadable; the receiver drops it (DESIGN.md §3).
 */
int rpc_msg_parse(const msgpack_object *root, msgpack_zone *zone,
    struct rpc_msg *m, struct rpc_error *err);

/* Decodes a response's error object into err (RPC_OK for nil). */
void rpc_error_from_object(const msgpack_object *, struct rpc_error *err);

/* True when s[0..len) is valid UTF-8 without NUL bytes. */
bool rpc_utf8_valid(const char *s, size_t len);
/* Drops a UTF-8 sequence a truncation cut in two at the end of s. */
void rpc_utf8_trim(char *s);

/*
 * Typed getters over one params map.  Each getter looks up `key`:
 *   returns 1 when present (value stored), 0 when absent or nil and optional,
 *   -1 on error (err set to bad_request naming "<path>.<key>").
 * A getter marks its key as seen; rpc_params_end() rejects any key no getter
 * asked for ("unknown parameter").  Strings are returned NUL-terminated,
 * copied into the message's zone, and must be valid UTF-8.
 */
struct rpc_params {
	const msgpack_object_map *map;	/* NULL for an empty params */
	msgpack_zone *zone;
	bool *seen;
	const char *path;		/* prefix for error messages, or NULL */
	struct rpc_error *err;
};

#define RPC_OPTIONAL	0
#define RPC_REQUIRED	1

/* obj may be NULL (no params).  -1 with err when obj is not a map. */
int rpc_params_init(struct rpc_params *, const msgpack_object *obj,
    msgpack_zone *zone, const char *path, struct rpc_error *err);
int rpc_params_end(struct rpc_params *);

int rpc_get_str(struct rpc_params *, const char *key, int required, const char **out);
int rpc_get_i64(struct rpc_params *, const char *key, int required, int64_t *out);
int rpc_get_bool(struct rpc_params *, const char *key, int required, bool *out);
int rpc_get_map(struct rpc_params *, const char *key, int required, const msgpack_object **out);
int rpc_get_array(struct rpc_params *, const char *key, int required, const msgpack_object **out);
/* A string that must be one of `allowed` (NULL-terminated); *out is its index. */
int rpc_get_enum(struct rpc_params *, const char *key, int required,
    const char *const *allowed, int *out);
/* An array of strings; *out is a NULL-terminated array in the zone. */
int rpc_get_str_array(struct rpc_params *, const char *key, int required,
    const char ***out, size_t *n);

/* Lookups on a decoded map (responses, notifications): NULL when absent. */
const msgpack_object *rpc_map_get(const msgpack_object *map, const char *key);
/* Convenience readers for decoded results; return -1 on absence or wrong type. */
int rpc_obj_i64(const msgpack_object *, int64_t *);
/* Copies a str object into buf (NUL-terminated, truncated); -1 if not a str. */
int rpc_obj_str(const msgpack_object *, char *buf, size_t buflen);

/* Packing helpers.  A NULL string packs as nil. */
void rpc_pack_str(msgpack_packer *, const char *);
/*
 * Packs the key "memory" and its map {rss_kib, trims, trimmed_kib}: this
 * process's resident set and its heap trims (common/memtrim.h), for stats.
 */
void rpc_pack_memory(msgpack_packer *);
void rpc_pack_strn(msgpack_packer *, const char *, size_t);
void rpc_pack_kv_str(msgpack_packer *, const char *key, const char *val);
void rpc_pack_kv_i64(msgpack_packer *, const char *key, int64_t val);
void rpc_pack_kv_bool(msgpack_packer *, const char *key, bool val);
void rpc_pack_kv_nil(msgpack_packer *, const char *key);
/* Packs nil for RPC_OK, else {"code", "message"[, extra]}. */
void rpc_pack_error(msgpack_packer *, const struct rpc_error *);

/* Packs a whole message header; the caller packs the remaining element(s). */
void rpc_pack_request_head(msgpack_packer *, uint32_t msgid, const char *method);
void rpc_pack_response_head(msgpack_packer *, uint32_t msgid, const struct rpc_error *);
void rpc_pack_notify_head(msgpack_packer *, const char *method);

/*
 * A growable output buffer with its packer: the usual way to build params and
 * results.  rpc_buf_free() releases it.
 */
struct rpc_buf {
	msgpack_sbuffer sb;
	msgpack_packer pk;
};
void rpc_buf_init(struct rpc_buf *);
void rpc_buf_reset(struct rpc_buf *);
void rpc_buf_free(struct rpc_buf *);

#endif
