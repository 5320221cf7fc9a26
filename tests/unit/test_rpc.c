/* proto/rpc.c: envelope parsing, typed getters, packing helpers. */
#include <string.h>

#include "proto/jsonmp.h"
#include "proto/rpc.h"
#include "tests/lib/testlib.h"

/* An unpacked message built by the test. */
struct obj {
	msgpack_sbuffer sb;
	msgpack_packer pk;
	msgpack_unpacked up;
	struct rpc_error err;
};

static msgpack_packer *
obj_begin(struct obj *o)
{
	memset(o, 0, sizeof(*o));
	msgpack_sbuffer_init(&o->sb);
	msgpack_packer_init(&o->pk, &o->sb, msgpack_sbuffer_write);
	rpc_error_clear(&o->err);
	return &o->pk;
}

static const msgpack_object *
obj_end(struct obj *o)
{
	size_t off = 0;

	msgpack_unpacked_init(&o->up);
	ck_assert_int_eq(msgpack_unpack_next(&o->up, o->sb.data, o->sb.size, &off),
	    MSGPACK_UNPACK_SUCCESS);
	return &o->up.data;
}

static void
obj_free(struct obj *o)
{
	msgpack_unpacked_destroy(&o->up);
	msgpack_sbuffer_destroy(&o->sb);
}

/* Params {s, n, neg, big, t, m, a, e, argv, none}. */
static const msgpack_object *
full_params(struct obj *o)
{
	msgpack_packer *pk = obj_begin(o);

	msgpack_pack_map(pk, 10);
	rpc_pack_kv_str(pk, "s", "héllo");
	rpc_pack_kv_i64(pk, "n", 42);
	rpc_pack_kv_i64(pk, "neg", INT64_MIN);
	rpc_pack_kv_i64(pk, "big", INT64_MAX);
	rpc_pack_kv_bool(pk, "t", true);
	rpc_pack_str(pk, "m");
	msgpack_pack_map(pk, 1);
	rpc_pack_kv_str(pk, "url", "u");
	rpc_pack_str(pk, "a");
	msgpack_pack_array(pk, 2);
	msgpack_pack_int(pk, 1);
	msgpack_pack_int(pk, 2);
	rpc_pack_kv_str(pk, "e", "process");
	rpc_pack_str(pk, "argv");
	msgpack_pack_array(pk, 2);
	rpc_pack_str(pk, "sh");
	rpc_pack_str(pk, "-c");
	rpc_pack_kv_nil(pk, "none");
	return obj_end(o);
}

START_TEST(getters_round_trip)
{
	static const char *const runtimes[] = { "tmux", "process", NULL };
	struct obj o;
	struct rpc_params p, sub;
	const msgpack_object *params = full_params(&o), *m, *a;
	const char *s, **argv;
	int64_t n, neg, big;
	bool t;
	int e;
	size_t argc;

	ck_assert_int_eq(rpc_params_init(&p, params, o.up.zone, NULL, &o.err), 0);
	ck_assert_int_eq(rpc_get_str(&p, "s", RPC_REQUIRED, &s), 1);
	ck_assert_str_eq(s, "héllo");
	ck_assert_int_eq(rpc_get_i64(&p, "n", RPC_REQUIRED, &n), 1);
	ck_assert_int_eq(n, 42);
	ck_assert_int_eq(rpc_get_i64(&p, "neg", RPC_REQUIRED, &neg), 1);
	ck_assert(neg == INT64_MIN);
	ck_assert_int_eq(rpc_get_i64(&p, "big", RPC_REQUIRED, &big), 1);
	ck_assert(big == INT64_MAX);
	ck_assert_int_eq(rpc_get_bool(&p, "t", RPC_REQUIRED, &t), 1);
	ck_assert(t);
	ck_assert_int_eq(rpc_get_map(&p, "m", RPC_REQUIRED, &m), 1);
	ck_assert_int_eq(rpc_get_array(&p, "a", RPC_REQUIRED, &a), 1);
	ck_assert_int_eq(a->via.array.size, 2);
	ck_assert_int_eq(rpc_get_enum(&p, "e", RPC_REQUIRED, runtimes, &e), 1);
	ck_assert_int_eq(e, 1);
	ck_assert_int_eq(rpc_get_str_array(&p, "argv", RPC_REQUIRED, &argv, &argc), 1);
	ck_assert_int_eq(argc, 2);
	ck_assert_str_eq(argv[0], "sh");
	ck_assert_str_eq(argv[1], "-c");
	ck_assert_ptr_null(argv[2]);
	/* nil is "absent" for an optional key, and absent keys are fine. */
	s = "untouched";
	ck_assert_int_eq(rpc_get_str(&p, "none", RPC_OPTIONAL, &s), 0);
	ck_assert_str_eq(s, "untouched");
	ck_assert_int_eq(rpc_get_i64(&p, "absent", RPC_OPTIONAL, &n), 0);
	ck_assert_int_eq(rpc_params_end(&p), 0);
	ck_assert_int_eq(o.err.code, RPC_OK);

	ck_assert_int_eq(rpc_params_init(&sub, m, o.up.zone, "pr", &o.err), 0);
	ck_assert_int_eq(rpc_get_str(&sub, "url", RPC_REQUIRED, &s), 1);
	ck_assert_str_eq(s, "u");
	ck_assert_int_eq(rpc_params_end(&sub), 0);
	obj_free(&o);
}
END_TEST

/* Each getter on the wrong type fails with bad_request naming the key. */
START_TEST(getters_wrong_type)
{
	struct obj o;
	struct rpc_params p;
	const msgpack_object *params = full_params(&o), *x;
	const char *s, **v;
	int64_t n;
	bool b;
	int e;
	static const char *const allowed[] = { "tmux", "process", NULL };

	ck_assert_int_eq(rpc_params_init(&p, params, o.up.zone, NULL, &o.err), 0);
	ck_assert_int_eq(rpc_get_str(&p, "n", RPC_REQUIRED, &s), -1);
	ck_assert_int_eq(o.err.code, RPC_BAD_REQUEST);
	ck_assert_str_eq(o.err.message, "n must be a string");
	ck_assert_int_eq(rpc_get_i64(&p, "s", RPC_REQUIRED, &n), -1);
	ck_assert_str_eq(o.err.message, "s must be an integer");
	ck_assert_int_eq(rpc_get_bool(&p, "n", RPC_REQUIRED, &b), -1);
	ck_assert_str_eq(o.err.message, "n must be a boolean");
	ck_assert_int_eq(rpc_get_map(&p, "a", RPC_REQUIRED, &x), -1);
	ck_assert_str_eq(o.err.message, "a must be a map");
	ck_assert_int_eq(rpc_get_array(&p, "m", RPC_REQUIRED, &x), -1);
	ck_assert_str_eq(o.err.message, "m must be an array");
	ck_assert_int_eq(rpc_get_enum(&p, "s", RPC_REQUIRED, allowed, &e), -1);
	ck_assert_str_eq(o.err.message, "s must be one of: tmux, process");
	ck_assert_int_eq(rpc_get_str_array(&p, "a", RPC_REQUIRED, &v, NULL), -1);
	ck_assert_str_eq(o.err.message, "a must be an array of UTF-8 strings");
	ck_assert_int_eq(rpc_get_str(&p, "missing", RPC_REQUIRED, &s), -1);
	ck_assert_str_eq(o.err.message, "missing is required");
	/* nil for a required key is missing too. */
	ck_assert_int_eq(rpc_get_str(&p, "none", RPC_REQUIRED, &s), -1);
	ck_assert_str_eq(o.err.message, "none is required");
	obj_free(&o);
}
END_TEST

START_TEST(getters_unknown_key)
{
	struct obj o;
	struct rpc_params p;
	const msgpack_object *params = full_params(&o);
	const char *s;

	ck_assert_int_eq(rpc_params_init(&p, params, o.up.zone, NULL, &o.err), 0);
	ck_assert_int_eq(rpc_get_str(&p, "s", RPC_REQUIRED, &s), 1);
	ck_assert_int_eq(rpc_params_end(&p), -1);
	ck_assert_int_eq(o.err.code, RPC_BAD_REQUEST);
	ck_assert_str_eq(o.err.message, "unknown parameter 'n'");
	obj_free(&o);
}
END_TEST

START_TEST(getters_nested_path)
{
	struct obj o;
	msgpack_packer *pk = obj_begin(&o);
	struct rpc_params p;
	const msgpack_object *params;
	const char *s;
	int64_t n;

	msgpack_pack_map(pk, 2);
	rpc_pack_kv_i64(pk, "url", 5);
	rpc_pack_kv_i64(pk, "extra", 1);
	params = obj_end(&o);
	ck_assert_int_eq(rpc_params_init(&p, params, o.up.zone, "pr", &o.err), 0);
	ck_assert_int_eq(rpc_get_str(&p, "url", RPC_REQUIRED, &s), -1);
	ck_assert_str_eq(o.err.message, "pr.url must be a string");
	ck_assert_int_eq(rpc_get_i64(&p, "number", RPC_REQUIRED, &n), -1);
	ck_assert_str_eq(o.err.message, "pr.number is required");
	ck_assert_int_eq(rpc_params_end(&p), -1);
	ck_assert_str_eq(o.err.message, "unknown parameter 'pr.extra'");
	obj_free(&o);
}
END_TEST

/* Hostile values: bad UTF-8, NUL bytes, integers out of range, non-map params. */
START_TEST(getters_bad_input)
{
	struct obj o;
	msgpack_packer *pk = obj_begin(&o);
	struct rpc_params p;
	const msgpack_object *params;
	const char *s, **v;
	int64_t n;

	msgpack_pack_map(pk, 5);
	rpc_pack_str(pk, "bad");
	rpc_pack_strn(pk, "\xc3\x28", 2);
	rpc_pack_str(pk, "nul");
	rpc_pack_strn(pk, "a\0b", 3);
	rpc_pack_str(pk, "huge");
	msgpack_pack_uint64(pk, UINT64_MAX);
	rpc_pack_str(pk, "float");
	msgpack_pack_double(pk, 1.5);
	rpc_pack_str(pk, "arr");
	msgpack_pack_array(pk, 1);
	rpc_pack_strn(pk, "\xff", 1);
	params = obj_end(&o);
	ck_assert_int_eq(rpc_params_init(&p, params, o.up.zone, NULL, &o.err), 0);
	ck_assert_int_eq(rpc_get_str(&p, "bad", RPC_REQUIRED, &s), -1);
	ck_assert_str_eq(o.err.message, "bad must be valid UTF-8 without NUL bytes");
	ck_assert_int_eq(rpc_get_str(&p, "nul", RPC_REQUIRED, &s), -1);
	ck_assert_int_eq(rpc_get_i64(&p, "huge", RPC_REQUIRED, &n), -1);
	ck_assert_str_eq(o.err.message, "huge is out of range");
	ck_assert_int_eq(rpc_get_i64(&p, "float", RPC_REQUIRED, &n), -1);
	ck_assert_int_eq(rpc_get_str_array(&p, "arr", RPC_REQUIRED, &v, NULL), -1);
	obj_free(&o);

	pk = obj_begin(&o);
	msgpack_pack_array(pk, 0);
	params = obj_end(&o);
	ck_assert_int_eq(rpc_params_init(&p, params, o.up.zone, NULL, &o.err), -1);
	ck_assert_str_eq(o.err.message, "params must be a map");
	obj_free(&o);

	/* A map whose key is not a string is rejected at the end check. */
	pk = obj_begin(&o);
	msgpack_pack_map(pk, 1);
	msgpack_pack_int(pk, 1);
	msgpack_pack_int(pk, 2);
	params = obj_end(&o);
	ck_assert_int_eq(rpc_params_init(&p, params, o.up.zone, NULL, &o.err), 0);
	ck_assert_int_eq(rpc_params_end(&p), -1);
	ck_assert_int_eq(o.err.code, RPC_BAD_REQUEST);
	obj_free(&o);

	/* No params at all: every optional getter says absent. */
	ck_assert_int_eq(rpc_params_init(&p, NULL, NULL, NULL, &o.err), 0);
	ck_assert_int_eq(rpc_get_str(&p, "x", RPC_OPTIONAL, &s), 0);
	ck_assert_int_eq(rpc_get_str(&p, "x", RPC_REQUIRED, &s), -1);
	ck_assert_int_eq(rpc_params_end(&p), 0);
}
END_TEST

START_TEST(utf8)
{
	ck_assert(rpc_utf8_valid("", 0));
	ck_assert(rpc_utf8_valid("plain", 5));
	ck_assert(rpc_utf8_valid("\xe2\x82\xac", 3));		/* € */
	ck_assert(rpc_utf8_valid("\xf0\x9f\x98\x80", 4));	/* emoji */
	ck_assert(!rpc_utf8_valid("\xc0\xaf", 2));		/* overlong */
	ck_assert(!rpc_utf8_valid("\xe0\x80\xaf", 3));		/* overlong */
	ck_assert(!rpc_utf8_valid("\xed\xa0\x80", 3));		/* surrogate */
	ck_assert(!rpc_utf8_valid("\xf4\x90\x80\x80", 4));	/* > U+10FFFF */
	ck_assert(!rpc_utf8_valid("\xe2\x82", 2));		/* truncated */
	ck_assert(!rpc_utf8_valid("\x80", 1));
	ck_assert(!rpc_utf8_valid("a\0", 2));
}
END_TEST

static int
parse(struct obj *o, struct rpc_msg *m)
{
	const msgpack_object *root = obj_end(o);

	return rpc_msg_parse(root, o->up.zone, m, &o->err);
}

/* A message cut inside a multi-byte character stays valid UTF-8. */
START_TEST(utf8_trim)
{
	char buf[16];
	struct rpc_error e;
	char big[1200];
	size_t i;

	snprintf(buf, sizeof(buf), "ab\xc3\xa9");	/* "abé" */
	rpc_utf8_trim(buf);
	ck_assert_str_eq(buf, "ab\xc3\xa9");
	snprintf(buf, sizeof(buf), "ab\xc3");		/* cut after the lead byte */
	rpc_utf8_trim(buf);
	ck_assert_str_eq(buf, "ab");
	snprintf(buf, sizeof(buf), "x\xf0\x9f\x98");	/* 3 of 4 bytes */
	rpc_utf8_trim(buf);
	ck_assert_str_eq(buf, "x");
	for (i = 0; i + 2 < sizeof(big); i += 2)
		memcpy(big + i, "\xc3\xa9", 2);
	big[i] = '\0';
	rpc_error_set(&e, RPC_BAD_REQUEST, "x%s", big);	/* 1 + even: cut mid-char */
	ck_assert(rpc_utf8_valid(e.message, strlen(e.message)));
	ck_assert_uint_ge(strlen(e.message), sizeof(e.message) - 4);
}
END_TEST

START_TEST(envelope_valid)
{
	struct obj o;
	msgpack_packer *pk;
	struct rpc_msg m;

	pk = obj_begin(&o);
	rpc_pack_request_head(pk, 4000000000u, "session.get");
	msgpack_pack_array(pk, 1);
	msgpack_pack_map(pk, 0);
	ck_assert_int_eq(parse(&o, &m), 0);
	ck_assert_int_eq(m.type, RPC_REQUEST);
	ck_assert_uint_eq(m.msgid, 4000000000u);
	ck_assert_str_eq(m.method, "session.get");
	ck_assert_ptr_nonnull(m.params);
	obj_free(&o);

	pk = obj_begin(&o);
	rpc_pack_request_head(pk, 1, "hello");
	msgpack_pack_array(pk, 0);
	ck_assert_int_eq(parse(&o, &m), 0);
	ck_assert_ptr_null(m.params);
	obj_free(&o);

	pk = obj_begin(&o);
	rpc_pack_response_head(pk, 9, NULL);
	msgpack_pack_int(pk, 3);
	ck_assert_int_eq(parse(&o, &m), 0);
	ck_assert_int_eq(m.type, RPC_RESPONSE);
	ck_assert_int_eq(m.result->via.u64, 3);
	obj_free(&o);

	pk = obj_begin(&o);
	rpc_pack_notify_head(pk, "event");
	msgpack_pack_array(pk, 1);
	msgpack_pack_map(pk, 0);
	ck_assert_int_eq(parse(&o, &m), 0);
	ck_assert_int_eq(m.type, RPC_NOTIFY);
	ck_assert_str_eq(m.method, "event");
	ck_assert_ptr_null(m.ignore);
	obj_free(&o);
}
END_TEST

/*
 * Notifications of other clients' shapes parse, marked to be dropped:
 * pynvim's nvim_set_client_info (a bin method, five positional params),
 * Neovim's nvim_error_event ([int, str]), and worse.  A bin method with ao's
 * params is usable.  A request keeps the strict rules.
 */
START_TEST(envelope_foreign_notifications)
{
	static const char info[] = "nvim_set_client_info";
	struct obj o;
	msgpack_packer *pk;
	struct rpc_msg m;
	int i;

	for (i = 0; i < 6; i++) {
		pk = obj_begin(&o);
		msgpack_pack_array(pk, i == 4 ? 2 : i == 5 ? 4 : 3);
		msgpack_pack_int(pk, RPC_NOTIFY);
		switch (i) {
		case 0:		/* pynvim, on connect */
			msgpack_pack_bin(pk, sizeof(info) - 1);
			msgpack_pack_bin_body(pk, info, sizeof(info) - 1);
			msgpack_pack_array(pk, 5);
			rpc_pack_str(pk, "python3-client");
			msgpack_pack_map(pk, 0);
			rpc_pack_str(pk, "remote");
			msgpack_pack_map(pk, 0);
			msgpack_pack_map(pk, 0);
			break;
		case 1:		/* Neovim, answering an unknown notification */
			rpc_pack_str(pk, "nvim_error_event");
			msgpack_pack_array(pk, 2);
			msgpack_pack_int(pk, 0);
			rpc_pack_str(pk, "Invalid method: event");
			break;
		case 2:		/* a method that is no name */
			msgpack_pack_int(pk, 7);
			msgpack_pack_array(pk, 0);
			break;
		case 3:		/* params not even an array */
			rpc_pack_str(pk, "x");
			msgpack_pack_nil(pk);
			break;
		case 4:		/* too short */
			rpc_pack_str(pk, "x");
			break;
		case 5:		/* too long */
			rpc_pack_str(pk, "x");
			msgpack_pack_array(pk, 0);
			msgpack_pack_nil(pk);
			break;
		}
		ck_assert_msg(parse(&o, &m) == 0, "case %d: %s", i, o.err.message);
		ck_assert_int_eq(m.type, RPC_NOTIFY);
		ck_assert_msg(m.ignore != NULL, "case %d not marked", i);
		ck_assert_ptr_nonnull(m.method);
		if (i == 0)
			ck_assert_str_eq(m.method, info);
		if (i == 2)
			ck_assert_str_eq(m.method, "");
		obj_free(&o);
	}

	pk = obj_begin(&o);
	msgpack_pack_array(pk, 3);
	msgpack_pack_int(pk, RPC_NOTIFY);
	msgpack_pack_bin(pk, 1);
	msgpack_pack_bin_body(pk, "x", 1);
	msgpack_pack_array(pk, 1);
	msgpack_pack_map(pk, 0);
	ck_assert_int_eq(parse(&o, &m), 0);
	ck_assert_ptr_null(m.ignore);
	ck_assert_str_eq(m.method, "x");
	ck_assert_ptr_nonnull(m.params);
	obj_free(&o);

	pk = obj_begin(&o);
	msgpack_pack_array(pk, 4);
	msgpack_pack_int(pk, RPC_REQUEST);
	msgpack_pack_int(pk, 1);
	msgpack_pack_bin(pk, 5);
	msgpack_pack_bin_body(pk, "hello", 5);
	msgpack_pack_array(pk, 0);
	ck_assert_int_eq(parse(&o, &m), -1);
	ck_assert_int_eq(o.err.code, RPC_BAD_REQUEST);
	obj_free(&o);
}
END_TEST

/* Every malformed envelope is refused with a reason. */
START_TEST(envelope_bad_input)
{
	struct obj o;
	msgpack_packer *pk;
	struct rpc_msg m;
	int i;

	for (i = 0; i < 11; i++) {
		pk = obj_begin(&o);
		switch (i) {
		case 0:		/* not an array */
			msgpack_pack_map(pk, 0);
			break;
		case 1:		/* too short */
			msgpack_pack_array(pk, 2);
			msgpack_pack_int(pk, 0);
			msgpack_pack_int(pk, 1);
			break;
		case 2:		/* unknown type */
			msgpack_pack_array(pk, 4);
			msgpack_pack_int(pk, 3);
			msgpack_pack_int(pk, 1);
			rpc_pack_str(pk, "x");
			msgpack_pack_array(pk, 0);
			break;
		case 3:		/* negative msgid */
			msgpack_pack_array(pk, 4);
			msgpack_pack_int(pk, 0);
			msgpack_pack_int(pk, -1);
			rpc_pack_str(pk, "x");
			msgpack_pack_array(pk, 0);
			break;
		case 4:		/* msgid past 32 bits */
			msgpack_pack_array(pk, 4);
			msgpack_pack_int(pk, 0);
			msgpack_pack_uint64(pk, 1ull << 32);
			rpc_pack_str(pk, "x");
			msgpack_pack_array(pk, 0);
			break;
		case 5:		/* method not a string */
			msgpack_pack_array(pk, 4);
			msgpack_pack_int(pk, 0);
			msgpack_pack_int(pk, 1);
			msgpack_pack_int(pk, 7);
			msgpack_pack_array(pk, 0);
			break;
		case 6:		/* empty method */
			msgpack_pack_array(pk, 4);
			msgpack_pack_int(pk, 0);
			msgpack_pack_int(pk, 1);
			rpc_pack_str(pk, "");
			msgpack_pack_array(pk, 0);
			break;
		case 7:		/* params not an array */
			rpc_pack_request_head(pk, 1, "x");
			msgpack_pack_map(pk, 0);
			break;
		case 8:		/* two params */
			rpc_pack_request_head(pk, 1, "x");
			msgpack_pack_array(pk, 2);
			msgpack_pack_map(pk, 0);
			msgpack_pack_map(pk, 0);
			break;
		case 9:		/* positional params */
			rpc_pack_request_head(pk, 1, "x");
			msgpack_pack_array(pk, 1);
			msgpack_pack_int(pk, 5);
			break;
		case 10:	/* response error neither nil nor map */
			msgpack_pack_array(pk, 4);
			msgpack_pack_int(pk, 1);
			msgpack_pack_int(pk, 1);
			msgpack_pack_int(pk, 1);
			msgpack_pack_nil(pk);
			break;
		}
		ck_assert_msg(parse(&o, &m) == -1, "case %d accepted", i);
		ck_assert_int_eq(o.err.code, RPC_BAD_REQUEST);
		ck_assert(o.err.message[0] != '\0');
		obj_free(&o);
	}
}
END_TEST

START_TEST(errors_round_trip)
{
	struct obj o;
	msgpack_packer *pk;
	struct rpc_error e, back;
	const msgpack_object *obj;
	int c;

	for (c = RPC_BAD_REQUEST; c <= RPC_INTERNAL; c++) {
		const char *name = rpc_code_name(c);

		ck_assert_int_eq(rpc_code_parse(name, strlen(name)), c);
	}
	ck_assert_int_eq(rpc_code_parse("nonsense", 8), RPC_INTERNAL);

	rpc_error_set(&e, RPC_INVALID_STATE, "spawn failed at %s", "worktree");
	rpc_error_extra(&e, "session_id", "app-3");
	pk = obj_begin(&o);
	rpc_pack_error(pk, &e);
	obj = obj_end(&o);
	ck_assert_int_eq(obj->via.map.size, 3);
	rpc_error_from_object(obj, &back);
	ck_assert_int_eq(back.code, RPC_INVALID_STATE);
	ck_assert_str_eq(back.message, "spawn failed at worktree");
	ck_assert_str_eq(back.extra_key, "session_id");
	ck_assert_str_eq(back.extra_val, "app-3");
	obj_free(&o);

	pk = obj_begin(&o);
	rpc_pack_error(pk, NULL);
	obj = obj_end(&o);
	ck_assert_int_eq(obj->type, MSGPACK_OBJECT_NIL);
	rpc_error_from_object(obj, &back);
	ck_assert_int_eq(back.code, RPC_OK);
	obj_free(&o);

	/* A garbage error object still yields a usable error. */
	pk = obj_begin(&o);
	msgpack_pack_map(pk, 1);
	rpc_pack_kv_i64(pk, "code", 5);
	obj = obj_end(&o);
	rpc_error_from_object(obj, &back);
	ck_assert_int_eq(back.code, RPC_INTERNAL);
	obj_free(&o);
}
END_TEST

START_TEST(map_helpers)
{
	struct obj o;
	msgpack_packer *pk = obj_begin(&o);
	const msgpack_object *m;
	char buf[4];
	int64_t v;

	msgpack_pack_map(pk, 2);
	rpc_pack_kv_i64(pk, "head", -7);
	rpc_pack_kv_str(pk, "name", "abcdef");
	m = obj_end(&o);
	ck_assert_int_eq(rpc_obj_i64(rpc_map_get(m, "head"), &v), 0);
	ck_assert_int_eq(v, -7);
	ck_assert_ptr_null(rpc_map_get(m, "nope"));
	ck_assert_int_eq(rpc_obj_i64(rpc_map_get(m, "nope"), &v), -1);
	ck_assert_int_eq(rpc_obj_str(rpc_map_get(m, "name"), buf, sizeof(buf)), 0);
	ck_assert_str_eq(buf, "abc");
	ck_assert_int_eq(rpc_obj_str(rpc_map_get(m, "head"), buf, sizeof(buf)), -1);
	obj_free(&o);
}
END_TEST

/*
 * JSON text to msgpack: a value, or exactly one nil for text that is not a
 * value or nests past the limit (never a partly packed value).
 */
START_TEST(jsonmp_text)
{
	static const char *const nil_cases[] = { "{", "", "[1,", NULL };
	char deep[200];
	struct rpc_buf b;
	msgpack_unpacked up;
	size_t off;
	int i, k;

	rpc_buf_init(&b);
	jsonmp_pack_text(&b.pk, "{\"a\": [1, true, null]}",
	    strlen("{\"a\": [1, true, null]}"));
	msgpack_unpacked_init(&up);
	off = 0;
	ck_assert_int_eq(msgpack_unpack_next(&up, b.sb.data, b.sb.size, &off),
	    MSGPACK_UNPACK_SUCCESS);
	ck_assert_uint_eq(off, b.sb.size);
	ck_assert_int_eq(up.data.type, MSGPACK_OBJECT_MAP);
	/* 40 nested arrays: past SCAN_MAX_DEPTH. */
	for (k = 0; k < 40; k++)
		deep[k] = '[';
	for (; k < 80; k++)
		deep[k] = ']';
	for (i = -1; i == -1 || nil_cases[i] != NULL; i++) {
		const char *t = i < 0 ? deep : nil_cases[i];
		size_t len = i < 0 ? 80 : strlen(t);

		rpc_buf_reset(&b);
		jsonmp_pack_text(&b.pk, t, len);
		ck_assert_uint_eq(b.sb.size, 1);
		ck_assert_int_eq((unsigned char)b.sb.data[0], 0xc0);
	}
	msgpack_unpacked_destroy(&up);
	rpc_buf_free(&b);
}
END_TEST

Suite *
rpc_suite(void)
{
	Suite *s = suite_create("rpc");
	TCase *tc = tcase_create("getters");

	tcase_set_timeout(tc, 10);
	tcase_add_test(tc, getters_round_trip);
	tcase_add_test(tc, getters_wrong_type);
	tcase_add_test(tc, getters_unknown_key);
	tcase_add_test(tc, getters_nested_path);
	tcase_add_test(tc, utf8);
	tcase_add_test(tc, utf8_trim);
	tcase_add_test(tc, map_helpers);
	tcase_add_test(tc, jsonmp_text);
	suite_add_tcase(s, tc);
	tc = tcase_create("envelope");
	tcase_set_timeout(tc, 10);
	tcase_add_test(tc, envelope_valid);
	tcase_add_test(tc, errors_round_trip);
	suite_add_tcase(s, tc);
	tc = tcase_create("bad input");
	tcase_set_timeout(tc, 10);
	tcase_add_test(tc, getters_bad_input);
	tcase_add_test(tc, envelope_bad_input);
	tcase_add_test(tc, envelope_foreign_notifications);
	suite_add_tcase(s, tc);
	return s;
}
TEST_SUITE(rpc_suite)
