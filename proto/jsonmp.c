#include "proto/jsonmp.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "common/xmalloc.h"
#include "proto/scan.h"

/* Whether j nests no deeper than the scanner accepts. */
static bool
depth_ok(const json_t *j, int depth)
{
	const char *key;
	json_t *v;
	size_t i;

	if (depth > SCAN_MAX_DEPTH)
		return false;
	if (json_is_object(j)) {
		json_object_foreach((json_t *)j, key, v)
			if (!depth_ok(v, depth + 1))
				return false;
	} else if (json_is_array(j)) {
		json_array_foreach(j, i, v)
			if (!depth_ok(v, depth + 1))
				return false;
	}
	return true;
}

static int
pack(msgpack_packer *pk, const json_t *j)
{
	const char *key;
	json_t *v;
	size_t i;

	switch (json_typeof(j)) {
	case JSON_OBJECT:
		msgpack_pack_map(pk, json_object_size(j));
		json_object_foreach((json_t *)j, key, v) {
			msgpack_pack_str(pk, strlen(key));
			msgpack_pack_str_body(pk, key, strlen(key));
			if (pack(pk, v) == -1)
				return -1;
		}
		return 0;
	case JSON_ARRAY:
		msgpack_pack_array(pk, json_array_size(j));
		json_array_foreach(j, i, v)
			if (pack(pk, v) == -1)
				return -1;
		return 0;
	case JSON_STRING:
		msgpack_pack_str(pk, json_string_length(j));
		msgpack_pack_str_body(pk, json_string_value(j), json_string_length(j));
		return 0;
	case JSON_INTEGER:
		msgpack_pack_int64(pk, json_integer_value(j));
		return 0;
	case JSON_REAL:
		msgpack_pack_double(pk, json_real_value(j));
		return 0;
	case JSON_TRUE:
		msgpack_pack_true(pk);
		return 0;
	case JSON_FALSE:
		msgpack_pack_false(pk);
		return 0;
	case JSON_NULL:
		msgpack_pack_nil(pk);
		return 0;
	}
	return -1;
}

int
jsonmp_pack(msgpack_packer *pk, const json_t *j)
{
	/* Checked first, so a refused value packs nothing at all. */
	if (!depth_ok(j, 0))
		return -1;
	return pack(pk, j);
}

void
jsonmp_pack_text(msgpack_packer *pk, const char *text, size_t len)
{
	json_error_t jerr;
	json_t *j = text != NULL ? json_loadb(text, len, 0, &jerr) : NULL;

	if (j == NULL || jsonmp_pack(pk, j) == -1)
		msgpack_pack_nil(pk);
	json_decref(j);
}

/*
 * A string that is not valid UTF-8: every non-ASCII or NUL byte becomes
 * U+FFFD so the output stays valid JSON.
 */
static json_t *
lossy_string(const char *s, size_t n)
{
	char *buf = xmalloc(n * 3 + 1);
	size_t i, o = 0;
	json_t *j;

	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c != 0 && c < 0x80)
			buf[o++] = (char)c;
		else {
			memcpy(buf + o, "\xef\xbf\xbd", 3);
			o += 3;
		}
	}
	j = json_stringn(buf, o);
	free(buf);
	return j != NULL ? j : json_null();
}

json_t *
jsonmp_from_object(const msgpack_object *o)
{
	json_t *j;
	uint32_t i;

	switch (o->type) {
	case MSGPACK_OBJECT_NIL:
		return json_null();
	case MSGPACK_OBJECT_BOOLEAN:
		return json_boolean(o->via.boolean);
	case MSGPACK_OBJECT_POSITIVE_INTEGER:
		if (o->via.u64 > INT64_MAX)
			return json_real((double)o->via.u64);
		return json_integer((json_int_t)o->via.u64);
	case MSGPACK_OBJECT_NEGATIVE_INTEGER:
		return json_integer((json_int_t)o->via.i64);
	case MSGPACK_OBJECT_FLOAT32:
	case MSGPACK_OBJECT_FLOAT64:
		return json_real(o->via.f64);
	case MSGPACK_OBJECT_STR:
		if ((j = json_stringn(o->via.str.ptr, o->via.str.size)) != NULL)
			return j;
		return lossy_string(o->via.str.ptr, o->via.str.size);
	case MSGPACK_OBJECT_ARRAY:
		j = json_array();
		for (i = 0; i < o->via.array.size; i++)
			json_array_append_new(j, jsonmp_from_object(&o->via.array.ptr[i]));
		return j;
	case MSGPACK_OBJECT_MAP:
		j = json_object();
		for (i = 0; i < o->via.map.size; i++) {
			const msgpack_object_kv *kv = &o->via.map.ptr[i];
			char *key;

			if (kv->key.type == MSGPACK_OBJECT_STR)
				key = xstrndup(kv->key.via.str.ptr, kv->key.via.str.size);
			else {
				json_t *k = jsonmp_from_object(&kv->key);

				key = json_dumps(k, JSON_ENCODE_ANY | JSON_COMPACT);
				json_decref(k);
				if (key == NULL)
					key = xstrdup("?");
			}
			json_object_set_new(j, key, jsonmp_from_object(&kv->val));
			free(key);
		}
		return j;
	case MSGPACK_OBJECT_BIN:
	case MSGPACK_OBJECT_EXT:
		return json_null();
	}
	return json_null();
}
