#include "proto/rpc.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "common/memtrim.h"
#include "common/xmalloc.h"

static const char *const rpc_code_names[] = {
	[RPC_OK] = "ok",
	[RPC_BAD_REQUEST] = "bad_request",
	[RPC_NOT_FOUND] = "not_found",
	[RPC_CONFLICT] = "conflict",
	[RPC_INVALID_STATE] = "invalid_state",
	[RPC_UNKNOWN_METHOD] = "unknown_method",
	[RPC_TOO_LARGE] = "too_large",
	[RPC_UNAVAILABLE] = "unavailable",
	[RPC_INTERNAL] = "internal",
};

const char *
rpc_code_name(enum rpc_code c)
{
	if ((unsigned)c >= sizeof(rpc_code_names) / sizeof(rpc_code_names[0]))
		return "internal";
	return rpc_code_names[c];
}

enum rpc_code
rpc_code_parse(const char *s, size_t len)
{
	size_t i;

	for (i = 1; i < sizeof(rpc_code_names) / sizeof(rpc_code_names[0]); i++)
		if (strlen(rpc_code_names[i]) == len && len > 0 &&
		    memcmp(rpc_code_names[i], s, len) == 0)
			return (enum rpc_code)i;
	return RPC_INTERNAL;
}

void
rpc_error_clear(struct rpc_error *e)
{
	e->code = RPC_OK;
	e->message[0] = '\0';
	e->extra_key[0] = '\0';
	e->extra_val[0] = '\0';
}

void
rpc_utf8_trim(char *s)
{
	size_t n = strlen(s), back;

	/* A cut can only have split the last sequence: drop at most 3 bytes. */
	for (back = 0; back < 4 && back <= n; back++)
		if (rpc_utf8_valid(s, n - back)) {
			s[n - back] = '\0';
			return;
		}
}

int
rpc_error_set(struct rpc_error *e, enum rpc_code code, const char *fmt, ...)
{
	va_list ap;

	if (e == NULL)
		return -1;
	e->code = code;
	va_start(ap, fmt);
	vsnprintf(e->message, sizeof(e->message), fmt, ap);
	va_end(ap);
	rpc_utf8_trim(e->message);
	e->extra_key[0] = '\0';
	e->extra_val[0] = '\0';
	return -1;
}

void
rpc_error_extra(struct rpc_error *e, const char *key, const char *val)
{
	snprintf(e->extra_key, sizeof(e->extra_key), "%s", key);
	snprintf(e->extra_val, sizeof(e->extra_val), "%s", val);
}

bool
rpc_utf8_valid(const char *str, size_t len)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t i = 0;

	while (i < len) {
		unsigned char c = s[i];
		size_t n;
		uint32_t cp;

		if (c == 0)
			return false;
		if (c < 0x80) {
			i++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf) {
			n = 1;
			cp = c & 0x1f;
		} else if (c >= 0xe0 && c <= 0xef) {
			n = 2;
			cp = c & 0x0f;
		} else if (c >= 0xf0 && c <= 0xf4) {
			n = 3;
			cp = c & 0x07;
		} else
			return false;
		if (len - i - 1 < n)
			return false;
		for (size_t k = 1; k <= n; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return false;
			cp = (cp << 6) | (s[i + k] & 0x3f);
		}
		/* Overlong forms, surrogates and values past U+10FFFF. */
		if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) ||
		    (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
			return false;
		i += n + 1;
	}
	return true;
}

static const char *
zone_strdup(msgpack_zone *zone, const char *s, size_t len)
{
	char *p = msgpack_zone_malloc(zone, len + 1);

	if (p == NULL)
		fatalx("out of memory in msgpack zone");
	if (len > 0)	/* msgpack-c may give NULL for an empty string */
		memcpy(p, s, len);
	p[len] = '\0';
	return p;
}

static int
get_u32(const msgpack_object *o, uint32_t *out)
{
	if (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER || o->via.u64 > UINT32_MAX)
		return -1;
	*out = (uint32_t)o->via.u64;
	return 0;
}

/*
 * The method of a request (a str) or notification (str or bin: the
 * msgpack-rpc spec predates str, and pynvim still sends bin), copied
 * NUL-terminated into the zone.
 */
static int
get_method(const msgpack_object *o, bool bin_ok, msgpack_zone *zone,
    const char **out, struct rpc_error *err)
{
	const char *ptr;
	uint32_t size;

	if (o->type == MSGPACK_OBJECT_STR) {
		ptr = o->via.str.ptr;
		size = o->via.str.size;
	} else if (bin_ok && o->type == MSGPACK_OBJECT_BIN) {
		ptr = o->via.bin.ptr;
		size = o->via.bin.size;
	} else
		return rpc_error_set(err, RPC_BAD_REQUEST, "method must be a string");
	if (size == 0 || size > 128 || !rpc_utf8_valid(ptr, size))
		return rpc_error_set(err, RPC_BAD_REQUEST,
		    "method must be 1-128 bytes of UTF-8");
	*out = zone_strdup(zone, ptr, size);
	return 0;
}

/* [params]: an empty array (no params) or an array of one map. */
static int
get_params(const msgpack_object *o, const msgpack_object **out, struct rpc_error *err)
{
	if (o->type != MSGPACK_OBJECT_ARRAY)
		return rpc_error_set(err, RPC_BAD_REQUEST,
		    "params must be an array holding one map");
	if (o->via.array.size == 0) {
		*out = NULL;
		return 0;
	}
	if (o->via.array.size != 1 || o->via.array.ptr[0].type != MSGPACK_OBJECT_MAP)
		return rpc_error_set(err, RPC_BAD_REQUEST,
		    "params must be an array holding one map");
	*out = &o->via.array.ptr[0];
	return 0;
}

/*
 * A notification is never answered, so one that ao cannot use is marked
 * for dropping instead of failing the parse (DESIGN.md §3): stock clients
 * send their own (pynvim: a bin method and positional params).
 */
static int
parse_notify(const msgpack_object *a, uint32_t n, msgpack_zone *zone,
    struct rpc_msg *m)
{
	struct rpc_error why;

	m->method = "";
	if (n != 3)
		m->ignore = "a notification has 3 elements";
	else if (get_method(&a[1], true, zone, &m->method, &why) == -1)
		m->ignore = "the method is not 1-128 bytes of UTF-8 (str or bin)";
	else if (get_params(&a[2], &m->params, &why) == -1)
		m->ignore = "the params are not [] or [map]";
	return 0;
}

int
rpc_msg_parse(const msgpack_object *root, msgpack_zone *zone, struct rpc_msg *m,
    struct rpc_error *err)
{
	const msgpack_object *a;
	uint32_t n;

	memset(m, 0, sizeof(*m));
	if (root->type != MSGPACK_OBJECT_ARRAY || root->via.array.size == 0)
		return rpc_error_set(err, RPC_BAD_REQUEST,
		    "message must be an array of 3 or 4 elements");
	a = root->via.array.ptr;
	n = root->via.array.size;
	if (a[0].type != MSGPACK_OBJECT_POSITIVE_INTEGER || a[0].via.u64 > 2)
		return rpc_error_set(err, RPC_BAD_REQUEST,
		    "message type must be 0, 1 or 2");
	m->type = (enum rpc_type)a[0].via.u64;
	switch (m->type) {
	case RPC_REQUEST:
		if (n != 4)
			return rpc_error_set(err, RPC_BAD_REQUEST,
			    "request must have 4 elements");
		if (get_u32(&a[1], &m->msgid) == -1)
			return rpc_error_set(err, RPC_BAD_REQUEST,
			    "msgid must be an unsigned 32-bit integer");
		if (get_method(&a[2], false, zone, &m->method, err) == -1)
			return -1;
		return get_params(&a[3], &m->params, err);
	case RPC_RESPONSE:
		if (n != 4)
			return rpc_error_set(err, RPC_BAD_REQUEST,
			    "response must have 4 elements");
		if (get_u32(&a[1], &m->msgid) == -1)
			return rpc_error_set(err, RPC_BAD_REQUEST,
			    "msgid must be an unsigned 32-bit integer");
		if (a[2].type != MSGPACK_OBJECT_NIL && a[2].type != MSGPACK_OBJECT_MAP)
			return rpc_error_set(err, RPC_BAD_REQUEST,
			    "response error must be nil or a map");
		m->error = &a[2];
		m->result = &a[3];
		return 0;
	case RPC_NOTIFY:
		return parse_notify(a, n, zone, m);
	}
	return rpc_error_set(err, RPC_BAD_REQUEST, "unknown message type");
}

static bool
str_eq(const msgpack_object *o, const char *s)
{
	size_t n = strlen(s);

	return o->type == MSGPACK_OBJECT_STR && o->via.str.size == n &&
	    (n == 0 || memcmp(o->via.str.ptr, s, n) == 0);
}

const msgpack_object *
rpc_map_get(const msgpack_object *map, const char *key)
{
	uint32_t i;

	if (map == NULL || map->type != MSGPACK_OBJECT_MAP)
		return NULL;
	for (i = 0; i < map->via.map.size; i++)
		if (str_eq(&map->via.map.ptr[i].key, key))
			return &map->via.map.ptr[i].val;
	return NULL;
}

int
rpc_obj_i64(const msgpack_object *o, int64_t *out)
{
	if (o == NULL)
		return -1;
	if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
		if (o->via.u64 > INT64_MAX)
			return -1;
		*out = (int64_t)o->via.u64;
		return 0;
	}
	if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) {
		*out = o->via.i64;
		return 0;
	}
	return -1;
}

int
rpc_obj_str(const msgpack_object *o, char *buf, size_t buflen)
{
	size_t n;

	if (o == NULL || o->type != MSGPACK_OBJECT_STR || buflen == 0)
		return -1;
	n = o->via.str.size < buflen - 1 ? o->via.str.size : buflen - 1;
	if (n > 0)
		memcpy(buf, o->via.str.ptr, n);
	buf[n] = '\0';
	return 0;
}

void
rpc_error_from_object(const msgpack_object *o, struct rpc_error *err)
{
	const msgpack_object *code, *msg;
	char key[32];
	uint32_t i;

	rpc_error_clear(err);
	if (o == NULL || o->type == MSGPACK_OBJECT_NIL)
		return;
	if (o->type != MSGPACK_OBJECT_MAP) {
		rpc_error_set(err, RPC_INTERNAL, "malformed error object");
		return;
	}
	code = rpc_map_get(o, "code");
	msg = rpc_map_get(o, "message");
	if (code != NULL && code->type == MSGPACK_OBJECT_STR)
		err->code = rpc_code_parse(code->via.str.ptr, code->via.str.size);
	else
		err->code = RPC_INTERNAL;
	if (rpc_obj_str(msg, err->message, sizeof(err->message)) == -1)
		snprintf(err->message, sizeof(err->message), "%s",
		    rpc_code_name(err->code));
	for (i = 0; i < o->via.map.size; i++) {
		const msgpack_object_kv *kv = &o->via.map.ptr[i];

		if (str_eq(&kv->key, "code") || str_eq(&kv->key, "message") ||
		    kv->val.type != MSGPACK_OBJECT_STR)
			continue;
		if (rpc_obj_str(&kv->key, key, sizeof(key)) == 0) {
			snprintf(err->extra_key, sizeof(err->extra_key), "%s", key);
			rpc_obj_str(&kv->val, err->extra_val, sizeof(err->extra_val));
			break;
		}
	}
}

/* Typed getters. */

int
rpc_params_init(struct rpc_params *p, const msgpack_object *obj, msgpack_zone *zone,
    const char *path, struct rpc_error *err)
{
	memset(p, 0, sizeof(*p));
	p->zone = zone;
	p->path = path;
	p->err = err;
	if (obj == NULL || obj->type == MSGPACK_OBJECT_NIL)
		return 0;
	if (obj->type != MSGPACK_OBJECT_MAP)
		return rpc_error_set(err, RPC_BAD_REQUEST, "%s must be a map",
		    path != NULL ? path : "params");
	p->map = &obj->via.map;
	if (p->map->size > 0) {
		p->seen = msgpack_zone_malloc(zone, p->map->size * sizeof(bool));
		if (p->seen == NULL)
			fatalx("out of memory in msgpack zone");
		memset(p->seen, 0, p->map->size * sizeof(bool));
	}
	return 0;
}

static int
param_error(struct rpc_params *p, const char *key, const char *what)
{
	if (p->path != NULL)
		return rpc_error_set(p->err, RPC_BAD_REQUEST, "%s.%s %s",
		    p->path, key, what);
	return rpc_error_set(p->err, RPC_BAD_REQUEST, "%s %s", key, what);
}

/*
 * Finds key and marks it seen.  Returns 1 with *out set, 0 when absent (or
 * nil) and optional, -1 when absent and required.
 */
static int
lookup(struct rpc_params *p, const char *key, int required, const msgpack_object **out)
{
	uint32_t i;

	*out = NULL;
	if (p->map != NULL)
		for (i = 0; i < p->map->size; i++) {
			const msgpack_object_kv *kv = &p->map->ptr[i];

			if (!str_eq(&kv->key, key))
				continue;
			p->seen[i] = true;
			if (kv->val.type != MSGPACK_OBJECT_NIL) {
				*out = &kv->val;
				return 1;
			}
			break;
		}
	if (required)
		return param_error(p, key, "is required");
	return 0;
}

int
rpc_params_end(struct rpc_params *p)
{
	uint32_t i;

	if (p->map == NULL)
		return 0;
	for (i = 0; i < p->map->size; i++) {
		const msgpack_object *k = &p->map->ptr[i].key;
		char name[64];

		if (p->seen[i])
			continue;
		if (k->type != MSGPACK_OBJECT_STR)
			return rpc_error_set(p->err, RPC_BAD_REQUEST,
			    "%s has a key that is not a string",
			    p->path != NULL ? p->path : "params");
		rpc_obj_str(k, name, sizeof(name));
		if (!rpc_utf8_valid(name, strlen(name)))
			snprintf(name, sizeof(name), "(invalid UTF-8)");
		if (p->path != NULL)
			return rpc_error_set(p->err, RPC_BAD_REQUEST,
			    "unknown parameter '%s.%s'", p->path, name);
		return rpc_error_set(p->err, RPC_BAD_REQUEST,
		    "unknown parameter '%s'", name);
	}
	return 0;
}

int
rpc_get_str(struct rpc_params *p, const char *key, int required, const char **out)
{
	const msgpack_object *o;
	int r;

	if ((r = lookup(p, key, required, &o)) != 1)
		return r;
	if (o->type != MSGPACK_OBJECT_STR)
		return param_error(p, key, "must be a string");
	if (!rpc_utf8_valid(o->via.str.ptr, o->via.str.size))
		return param_error(p, key, "must be valid UTF-8 without NUL bytes");
	*out = zone_strdup(p->zone, o->via.str.ptr, o->via.str.size);
	return 1;
}

int
rpc_get_i64(struct rpc_params *p, const char *key, int required, int64_t *out)
{
	const msgpack_object *o;
	int r;

	if ((r = lookup(p, key, required, &o)) != 1)
		return r;
	if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER && o->via.u64 > INT64_MAX)
		return param_error(p, key, "is out of range");
	if (rpc_obj_i64(o, out) == -1)
		return param_error(p, key, "must be an integer");
	return 1;
}

int
rpc_get_bool(struct rpc_params *p, const char *key, int required, bool *out)
{
	const msgpack_object *o;
	int r;

	if ((r = lookup(p, key, required, &o)) != 1)
		return r;
	if (o->type != MSGPACK_OBJECT_BOOLEAN)
		return param_error(p, key, "must be a boolean");
	*out = o->via.boolean;
	return 1;
}

int
rpc_get_map(struct rpc_params *p, const char *key, int required,
    const msgpack_object **out)
{
	const msgpack_object *o;
	int r;

	if ((r = lookup(p, key, required, &o)) != 1)
		return r;
	if (o->type != MSGPACK_OBJECT_MAP)
		return param_error(p, key, "must be a map");
	*out = o;
	return 1;
}

int
rpc_get_array(struct rpc_params *p, const char *key, int required,
    const msgpack_object **out)
{
	const msgpack_object *o;
	int r;

	if ((r = lookup(p, key, required, &o)) != 1)
		return r;
	if (o->type != MSGPACK_OBJECT_ARRAY)
		return param_error(p, key, "must be an array");
	*out = o;
	return 1;
}

int
rpc_get_enum(struct rpc_params *p, const char *key, int required,
    const char *const *allowed, int *out)
{
	const char *s;
	char list[400];
	size_t off = 0;
	int i, r;

	if ((r = rpc_get_str(p, key, required, &s)) != 1)
		return r;
	for (i = 0; allowed[i] != NULL; i++)
		if (strcmp(s, allowed[i]) == 0) {
			*out = i;
			return 1;
		}
	list[0] = '\0';
	for (i = 0; allowed[i] != NULL && off < sizeof(list); i++)
		off += snprintf(list + off, sizeof(list) - off, "%s%s",
		    i > 0 ? ", " : "", allowed[i]);
	if (p->path != NULL)
		return rpc_error_set(p->err, RPC_BAD_REQUEST,
		    "%s.%s must be one of: %s", p->path, key, list);
	return rpc_error_set(p->err, RPC_BAD_REQUEST, "%s must be one of: %s",
	    key, list);
}

int
rpc_get_str_array(struct rpc_params *p, const char *key, int required,
    const char ***out, size_t *n)
{
	const msgpack_object *o = NULL;
	const char **v;
	uint32_t i;
	int r;

	if ((r = rpc_get_array(p, key, required, &o)) != 1)
		return r;
	v = msgpack_zone_malloc(p->zone, (o->via.array.size + 1) * sizeof(*v));
	if (v == NULL)
		fatalx("out of memory in msgpack zone");
	for (i = 0; i < o->via.array.size; i++) {
		const msgpack_object *e = &o->via.array.ptr[i];

		if (e->type != MSGPACK_OBJECT_STR ||
		    !rpc_utf8_valid(e->via.str.ptr, e->via.str.size))
			return param_error(p, key,
			    "must be an array of UTF-8 strings");
		v[i] = zone_strdup(p->zone, e->via.str.ptr, e->via.str.size);
	}
	v[i] = NULL;
	*out = v;
	if (n != NULL)
		*n = o->via.array.size;
	return 1;
}

/* Packing. */

void
rpc_pack_strn(msgpack_packer *pk, const char *s, size_t n)
{
	if (s == NULL) {
		msgpack_pack_nil(pk);
		return;
	}
	msgpack_pack_str(pk, n);
	msgpack_pack_str_body(pk, s, n);
}

void
rpc_pack_str(msgpack_packer *pk, const char *s)
{
	rpc_pack_strn(pk, s, s != NULL ? strlen(s) : 0);
}

void
rpc_pack_kv_str(msgpack_packer *pk, const char *key, const char *val)
{
	rpc_pack_str(pk, key);
	rpc_pack_str(pk, val);
}

void
rpc_pack_kv_i64(msgpack_packer *pk, const char *key, int64_t val)
{
	rpc_pack_str(pk, key);
	msgpack_pack_int64(pk, val);
}

void
rpc_pack_kv_bool(msgpack_packer *pk, const char *key, bool val)
{
	rpc_pack_str(pk, key);
	if (val)
		msgpack_pack_true(pk);
	else
		msgpack_pack_false(pk);
}

void
rpc_pack_kv_nil(msgpack_packer *pk, const char *key)
{
	rpc_pack_str(pk, key);
	msgpack_pack_nil(pk);
}

void
rpc_pack_error(msgpack_packer *pk, const struct rpc_error *e)
{
	bool extra;

	if (e == NULL || e->code == RPC_OK) {
		msgpack_pack_nil(pk);
		return;
	}
	extra = e->extra_key[0] != '\0';
	msgpack_pack_map(pk, extra ? 3 : 2);
	rpc_pack_kv_str(pk, "code", rpc_code_name(e->code));
	rpc_pack_kv_str(pk, "message", e->message);
	if (extra)
		rpc_pack_kv_str(pk, e->extra_key, e->extra_val);
}

void
rpc_pack_request_head(msgpack_packer *pk, uint32_t msgid, const char *method)
{
	msgpack_pack_array(pk, 4);
	msgpack_pack_uint8(pk, RPC_REQUEST);
	msgpack_pack_uint32(pk, msgid);
	rpc_pack_str(pk, method);
}

void
rpc_pack_response_head(msgpack_packer *pk, uint32_t msgid, const struct rpc_error *e)
{
	msgpack_pack_array(pk, 4);
	msgpack_pack_uint8(pk, RPC_RESPONSE);
	msgpack_pack_uint32(pk, msgid);
	rpc_pack_error(pk, e);
}

void
rpc_pack_notify_head(msgpack_packer *pk, const char *method)
{
	msgpack_pack_array(pk, 3);
	msgpack_pack_uint8(pk, RPC_NOTIFY);
	rpc_pack_str(pk, method);
}

void
rpc_buf_init(struct rpc_buf *b)
{
	msgpack_sbuffer_init(&b->sb);
	msgpack_packer_init(&b->pk, &b->sb, msgpack_sbuffer_write);
}

void
rpc_buf_reset(struct rpc_buf *b)
{
	msgpack_sbuffer_clear(&b->sb);
}

void
rpc_buf_free(struct rpc_buf *b)
{
	msgpack_sbuffer_destroy(&b->sb);
}

void
rpc_pack_memory(msgpack_packer *pk)
{
	struct memtrim_stats mem;

	memtrim_stats(&mem);
	rpc_pack_str(pk, "memory");
	msgpack_pack_map(pk, 3);
	rpc_pack_kv_i64(pk, "rss_kib", memtrim_rss_kib());
	rpc_pack_kv_i64(pk, "trims", (int64_t)mem.trims);
	rpc_pack_kv_i64(pk, "trimmed_kib", mem.trimmed_kib);
}
