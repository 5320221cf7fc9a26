/* proto/scan: the bounded msgpack pre-scanner, checked against msgpack-c. */
#include "tests/lib/testlib.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <msgpack.h>

#include "proto/scan.h"

TEST_SUITE(scan_suite)

#define TEST_SCAN_NMSG		43
/* Messages up to this size are split at every offset (quadratic). */
#define TEST_SCAN_SPLIT_ALL	4096

static char test_scan_fill[70000];

/*
 * Packs message i into a fresh sb with msgpack-c's packer; returns the type
 * byte the message must start with, so each format is known to be covered.
 */
static int
test_scan_pack(int i, msgpack_sbuffer *sb)
{
	msgpack_packer pk;
	int j;

	memset(test_scan_fill, 'x', sizeof(test_scan_fill));
	msgpack_sbuffer_init(sb);
	msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
	switch (i) {
	case 0:
		msgpack_pack_int(&pk, 5);
		return 0x05;
	case 1:
		msgpack_pack_int(&pk, -3);
		return 0xfd;
	case 2:
		msgpack_pack_nil(&pk);
		return 0xc0;
	case 3:
		msgpack_pack_false(&pk);
		return 0xc2;
	case 4:
		msgpack_pack_true(&pk);
		return 0xc3;
	case 5:
		msgpack_pack_map(&pk, 1);
		msgpack_pack_str_with_body(&pk, "a", 1);
		msgpack_pack_int(&pk, 1);
		return 0x81;
	case 6:
		msgpack_pack_array(&pk, 3);
		for (j = 1; j <= 3; j++)
			msgpack_pack_int(&pk, j);
		return 0x93;
	case 7:
		msgpack_pack_str_with_body(&pk, "hello", 5);
		return 0xa5;
	case 8:
		msgpack_pack_str_with_body(&pk, test_scan_fill, 40);
		return 0xd9;
	case 9:
		msgpack_pack_str_with_body(&pk, test_scan_fill, 300);
		return 0xda;
	case 10:
		msgpack_pack_str_with_body(&pk, test_scan_fill, 70000);
		return 0xdb;
	case 11:
		msgpack_pack_bin_with_body(&pk, test_scan_fill, 5);
		return 0xc4;
	case 12:
		msgpack_pack_bin_with_body(&pk, test_scan_fill, 300);
		return 0xc5;
	case 13:
		msgpack_pack_bin_with_body(&pk, test_scan_fill, 70000);
		return 0xc6;
	case 14:
		msgpack_pack_ext_with_body(&pk, test_scan_fill, 3, 7);
		return 0xc7;
	case 15:
		msgpack_pack_ext_with_body(&pk, test_scan_fill, 300, -2);
		return 0xc8;
	case 16:
		msgpack_pack_ext_with_body(&pk, test_scan_fill, 70000, 1);
		return 0xc9;
	case 17:
		msgpack_pack_ext_with_body(&pk, test_scan_fill, 1, 1);
		return 0xd4;
	case 18:
		msgpack_pack_ext_with_body(&pk, test_scan_fill, 2, 1);
		return 0xd5;
	case 19:
		msgpack_pack_ext_with_body(&pk, test_scan_fill, 4, 1);
		return 0xd6;
	case 20:
		msgpack_pack_ext_with_body(&pk, test_scan_fill, 8, 1);
		return 0xd7;
	case 21:
		msgpack_pack_ext_with_body(&pk, test_scan_fill, 16, 1);
		return 0xd8;
	case 22:
		msgpack_pack_float(&pk, 1.5f);
		return 0xca;
	case 23:
		msgpack_pack_double(&pk, -2.25);
		return 0xcb;
	case 24:
		msgpack_pack_fix_uint8(&pk, 200);
		return 0xcc;
	case 25:
		msgpack_pack_fix_uint16(&pk, 60000);
		return 0xcd;
	case 26:
		msgpack_pack_fix_uint32(&pk, 4000000000u);
		return 0xce;
	case 27:
		msgpack_pack_fix_uint64(&pk, UINT64_MAX);
		return 0xcf;
	case 28:
		msgpack_pack_fix_int8(&pk, -100);
		return 0xd0;
	case 29:
		msgpack_pack_fix_int16(&pk, -30000);
		return 0xd1;
	case 30:
		msgpack_pack_fix_int32(&pk, -2000000000);
		return 0xd2;
	case 31:
		msgpack_pack_fix_int64(&pk, INT64_MIN);
		return 0xd3;
	case 32:
		msgpack_pack_array(&pk, 20);
		for (j = 0; j < 20; j++)
			msgpack_pack_int(&pk, j * 1000);
		return 0xdc;
	case 33:
		msgpack_pack_array(&pk, 70000);
		for (j = 0; j < 70000; j++)
			msgpack_pack_nil(&pk);
		return 0xdd;
	case 34:
		msgpack_pack_map(&pk, 20);
		for (j = 0; j < 20; j++) {
			msgpack_pack_int(&pk, j);
			msgpack_pack_str_with_body(&pk, "v", 1);
		}
		return 0xde;
	case 35:
		msgpack_pack_map(&pk, 70000);
		for (j = 0; j < 70000; j++) {
			msgpack_pack_int(&pk, j);
			msgpack_pack_true(&pk);
		}
		return 0xdf;
	case 36:
		/* [0, 1, "hello", [{}]]: a msgpack-rpc request */
		msgpack_pack_array(&pk, 4);
		msgpack_pack_int(&pk, 0);
		msgpack_pack_int(&pk, 1);
		msgpack_pack_str_with_body(&pk, "hello", 5);
		msgpack_pack_array(&pk, 1);
		msgpack_pack_map(&pk, 0);
		return 0x94;
	case 37:
		/* {"a": [1, {"b": bin}, ext, []], "c": nil, "d": {}} */
		msgpack_pack_map(&pk, 3);
		msgpack_pack_str_with_body(&pk, "a", 1);
		msgpack_pack_array(&pk, 4);
		msgpack_pack_int(&pk, 1);
		msgpack_pack_map(&pk, 1);
		msgpack_pack_str_with_body(&pk, "b", 1);
		msgpack_pack_bin_with_body(&pk, test_scan_fill, 10);
		msgpack_pack_ext_with_body(&pk, test_scan_fill, 5, 3);
		msgpack_pack_array(&pk, 0);
		msgpack_pack_str_with_body(&pk, "c", 1);
		msgpack_pack_nil(&pk);
		msgpack_pack_str_with_body(&pk, "d", 1);
		msgpack_pack_map(&pk, 0);
		return 0x83;
	case 38:
		msgpack_pack_array(&pk, 0);
		return 0x90;
	case 39:
		msgpack_pack_map(&pk, 0);
		return 0x80;
	case 40:
		msgpack_pack_ext(&pk, 0, 5);
		return 0xc7;
	case 41:
		msgpack_pack_bin(&pk, 0);
		return 0xc4;
	case 42:
		/* Forms the packer never emits for these sizes. */
		msgpack_sbuffer_write(sb, "\xdc\x00\x02\xd9\x00\xde\x00\x00",
		    8);
		return 0xdc;
	}
	return -1;
}

static uint64_t
test_scan_rand(uint64_t *state)
{
	uint64_t x = *state;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return *state = x;
}

/*
 * Feeds buf in one go, asserting status and bytes used; msg names the case.
 * Plain ifs, not ck_assert: these run per byte, and every ck_assert that
 * passes still costs Check a write.
 */
static void
test_scan_expect(struct scan *s, const void *buf, size_t len,
    enum scan_status want, size_t want_used, int msg)
{
	size_t used = (size_t)-1;
	enum scan_status st;

	st = scan_feed(s, buf, len, &used);
	if (st != want || used != want_used)
		ck_abort_msg("case %d: fed %zu bytes at %zu: status %d "
		    "used %zu, want %d used %zu", msg, len, scan_length(s), st,
		    used, want, want_used);
}

static enum scan_status
test_scan_one(const void *buf, size_t len, size_t max_msg)
{
	size_t n;
	const char *err = NULL;
	enum scan_status st;

	st = scan_buffer(buf, len, max_msg, &n, &err);
	if (st == SCAN_ERROR)
		ck_assert_ptr_nonnull(err);
	return st;
}

START_TEST(test_scan_formats)
{
	msgpack_sbuffer sb;
	msgpack_unpacked u;
	const char *err;
	size_t n, off;
	int i, first;

	for (i = 0; i < TEST_SCAN_NMSG; i++) {
		first = test_scan_pack(i, &sb);
		ck_assert_int_ne(first, -1);
		ck_assert_uint_gt(sb.size, 0);
		ck_assert_msg((uint8_t)sb.data[0] == first,
		    "case %d: packed as 0x%02x, want 0x%02x", i,
		    (uint8_t)sb.data[0], first);
		n = off = 0;
		err = NULL;
		ck_assert_msg(scan_buffer(sb.data, sb.size,
		    SCAN_DEFAULT_MAX_MSG, &n, &err) == SCAN_DONE, "case %d: %s",
		    i, err != NULL ? err : "not done");
		ck_assert_msg(n == sb.size, "case %d: scanned %zu of %zu", i, n,
		    sb.size);

		msgpack_unpacked_init(&u);
		ck_assert_int_eq(msgpack_unpack_next(&u, sb.data, sb.size,
		    &off), MSGPACK_UNPACK_SUCCESS);
		ck_assert_uint_eq(off, sb.size);
		msgpack_unpacked_destroy(&u);
		msgpack_sbuffer_destroy(&sb);
	}
}
END_TEST

START_TEST(test_scan_bytewise)
{
	msgpack_sbuffer sb;
	struct scan s;
	size_t k;
	int i;

	for (i = 0; i < TEST_SCAN_NMSG; i++) {
		test_scan_pack(i, &sb);
		scan_init(&s, SCAN_DEFAULT_MAX_MSG, SCAN_DEFAULT_MAX_OBJECTS);
		for (k = 0; k + 1 < sb.size; k++)
			test_scan_expect(&s, sb.data + k, 1, SCAN_MORE, 1, i);
		test_scan_expect(&s, sb.data + k, 1, SCAN_DONE, 1, i);
		ck_assert_uint_eq(scan_length(&s), sb.size);
		ck_assert_ptr_null(scan_error(&s));
		/* Done stays done until reset. */
		test_scan_expect(&s, "\x01", 1, SCAN_DONE, 0, i);
		msgpack_sbuffer_destroy(&sb);
	}
}
END_TEST

/* Splits at every offset (near both ends, for large messages). */
START_TEST(test_scan_splits)
{
	msgpack_sbuffer sb;
	struct scan s;
	size_t k, step;
	int i;

	for (i = 0; i < TEST_SCAN_NMSG; i++) {
		test_scan_pack(i, &sb);
		step = sb.size <= TEST_SCAN_SPLIT_ALL ? 1 : 997;
		for (k = 0; k < sb.size;
		    k += (k < 64 || sb.size - k < 64) ? 1 : step) {
			scan_init(&s, SCAN_DEFAULT_MAX_MSG,
			    SCAN_DEFAULT_MAX_OBJECTS);
			test_scan_expect(&s, sb.data, k, SCAN_MORE, k, i);
			test_scan_expect(&s, sb.data + k, sb.size - k,
			    SCAN_DONE, sb.size - k, i);
			if (scan_length(&s) != sb.size)
				ck_abort_msg("case %d: length %zu, want %zu", i,
				    scan_length(&s), sb.size);
		}
		msgpack_sbuffer_destroy(&sb);
	}
}
END_TEST

START_TEST(test_scan_truncated)
{
	msgpack_sbuffer sb;
	size_t k, step;
	int i;

	for (i = 0; i < TEST_SCAN_NMSG; i++) {
		test_scan_pack(i, &sb);
		step = sb.size <= TEST_SCAN_SPLIT_ALL ? 1 : 997;
		for (k = 0; k < sb.size; k += (sb.size - k < 64) ? 1 : step)
			if (test_scan_one(sb.data, k, SCAN_DEFAULT_MAX_MSG) !=
			    SCAN_MORE)
				ck_abort_msg("case %d: prefix of %zu not MORE",
				    i, k);
		msgpack_sbuffer_destroy(&sb);
	}
}
END_TEST

/* Two messages in one buffer: the first DONE stops at its end. */
START_TEST(test_scan_back_to_back)
{
	msgpack_sbuffer a, b;
	struct scan s;
	char *buf;
	int i;

	for (i = 0; i < TEST_SCAN_NMSG; i++) {
		test_scan_pack(i, &a);
		test_scan_pack((i + 1) % TEST_SCAN_NMSG, &b);
		buf = malloc(a.size + b.size);
		ck_assert_ptr_nonnull(buf);
		memcpy(buf, a.data, a.size);
		memcpy(buf + a.size, b.data, b.size);

		scan_init(&s, SCAN_DEFAULT_MAX_MSG, SCAN_DEFAULT_MAX_OBJECTS);
		test_scan_expect(&s, buf, a.size + b.size, SCAN_DONE, a.size,
		    i);
		ck_assert_uint_eq(scan_length(&s), a.size);
		scan_reset(&s);
		test_scan_expect(&s, buf + a.size, b.size, SCAN_DONE, b.size,
		    i);
		ck_assert_uint_eq(scan_length(&s), b.size);

		free(buf);
		msgpack_sbuffer_destroy(&a);
		msgpack_sbuffer_destroy(&b);
	}
}
END_TEST

/* Every message back to back in one stream, fed in random chunks. */
START_TEST(test_scan_stream)
{
	msgpack_sbuffer all, m;
	size_t ends[TEST_SCAN_NMSG], off, chunk, used;
	uint64_t seed;
	struct scan s;
	enum scan_status st;
	int i, round, done;

	msgpack_sbuffer_init(&all);
	for (i = 0; i < TEST_SCAN_NMSG; i++) {
		test_scan_pack(i, &m);
		msgpack_sbuffer_write(&all, m.data, m.size);
		ends[i] = all.size;
		msgpack_sbuffer_destroy(&m);
	}
	for (round = 0; round < 8; round++) {
		seed = 0x5ca9u + (uint64_t)round;
		scan_init(&s, SCAN_DEFAULT_MAX_MSG, SCAN_DEFAULT_MAX_OBJECTS);
		off = 0;
		done = 0;
		while (off < all.size) {
			chunk = 1 + test_scan_rand(&seed) % 300;
			if (chunk > all.size - off)
				chunk = all.size - off;
			st = scan_feed(&s, all.data + off, chunk, &used);
			off += used;
			if (st == SCAN_MORE && used == chunk)
				continue;
			ck_assert_int_eq(st, SCAN_DONE);
			ck_assert_int_lt(done, TEST_SCAN_NMSG);
			ck_assert_uint_eq(off, ends[done]);
			done++;
			scan_reset(&s);
		}
		ck_assert_int_eq(done, TEST_SCAN_NMSG);
	}
	msgpack_sbuffer_destroy(&all);
}
END_TEST

/* A large payload is skipped, not walked; one byte past the limit is not. */
START_TEST(test_scan_large)
{
	size_t max = SCAN_DEFAULT_MAX_MSG, n = 0;
	uint8_t hdr[5] = { 0xc6 };
	uint8_t *buf;
	uint32_t body = (uint32_t)(max - sizeof(hdr));
	struct scan s;

	buf = calloc(1, max + 1);
	ck_assert_ptr_nonnull(buf);
	hdr[1] = (uint8_t)(body >> 24);
	hdr[2] = (uint8_t)(body >> 16);
	hdr[3] = (uint8_t)(body >> 8);
	hdr[4] = (uint8_t)body;
	memcpy(buf, hdr, sizeof(hdr));
	ck_assert_int_eq(scan_buffer(buf, max + 1, max, &n, NULL), SCAN_DONE);
	ck_assert_uint_eq(n, max);

	body++;
	buf[4] = (uint8_t)body;
	scan_init(&s, max, SCAN_DEFAULT_MAX_OBJECTS);
	test_scan_expect(&s, buf, sizeof(hdr), SCAN_ERROR, sizeof(hdr), 0);
	free(buf);
}
END_TEST

START_TEST(test_scan_hostile_count)
{
	static const struct {
		const char *bytes;
		size_t len;
	} bad[] = {
		{ "\xdd\xff\xff\xff\xff", 5 },
		{ "\xdd\x01\x00\x00\x00", 5 },
		{ "\xdd\x00\xff\xff\xfc", 5 },	/* one element more than fits */
		{ "\xdf\x00\x80\x00\x00", 5 },	/* 2 x 8 Mi entries */
		{ "\xdf\xff\xff\xff\xff", 5 },
		{ "\x91\xdd\x00\xff\xff\xfb", 6 },
		{ "\xdb\x40\x00\x00\x00", 5 },	/* str32 of 1 GiB */
		{ "\xc6\x40\x00\x00\x00", 5 },	/* bin32 */
		{ "\xc9\x40\x00\x00\x00\x01", 6 },	/* ext32 */
		{ "\xdb\x01\x00\x00\x00", 5 },	/* 16 MiB str after a header */
	};
	struct scan s;
	size_t i, j;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		scan_init(&s, SCAN_DEFAULT_MAX_MSG, SCAN_DEFAULT_MAX_OBJECTS);
		test_scan_expect(&s, bad[i].bytes, bad[i].len, SCAN_ERROR,
		    bad[i].len, (int)i);
		ck_assert_ptr_nonnull(scan_error(&s));

		/* Rejected on the header's last byte, however it arrives. */
		scan_init(&s, SCAN_DEFAULT_MAX_MSG, SCAN_DEFAULT_MAX_OBJECTS);
		for (j = 0; j + 1 < bad[i].len; j++)
			test_scan_expect(&s, bad[i].bytes + j, 1, SCAN_MORE, 1,
			    (int)i);
		test_scan_expect(&s, bad[i].bytes + j, 1, SCAN_ERROR, 1,
		    (int)i);
		/* Errors are sticky. */
		test_scan_expect(&s, "\x01", 1, SCAN_ERROR, 0, (int)i);
		scan_reset(&s);
		test_scan_expect(&s, "\x01", 1, SCAN_DONE, 1, (int)i);
	}

	/*
	 * Exactly as many elements as bytes can follow: keep reading, unless
	 * that many objects are too many.
	 */
	scan_init(&s, SCAN_DEFAULT_MAX_MSG, SIZE_MAX);
	test_scan_expect(&s, "\xdd\x00\xff\xff\xfb", 5, SCAN_MORE, 5, 0);
	scan_init(&s, SCAN_DEFAULT_MAX_MSG, SIZE_MAX);
	test_scan_expect(&s, "\xdf\x00\x7f\xff\xfd", 5, SCAN_MORE, 5, 0);
	scan_init(&s, SCAN_DEFAULT_MAX_MSG, SCAN_DEFAULT_MAX_OBJECTS);
	test_scan_expect(&s, "\xdd\x00\xff\xff\xfb", 5, SCAN_ERROR, 5, 0);
	ck_assert_str_eq(scan_error(&s), "too many objects");
}
END_TEST

static void
test_scan_nested(uint8_t *buf, int depth, int empty_innermost)
{
	memset(buf, 0x91, (size_t)depth);
	if (empty_innermost)
		buf[depth - 1] = 0x90;
	else
		buf[depth] = 0xc0;
}

START_TEST(test_scan_depth)
{
	uint8_t buf[64];
	msgpack_unpacked u;
	size_t off = 0;

	test_scan_nested(buf, SCAN_MAX_DEPTH, 0);
	ck_assert_int_eq(test_scan_one(buf, SCAN_MAX_DEPTH + 1,
	    SCAN_DEFAULT_MAX_MSG), SCAN_DONE);
	msgpack_unpacked_init(&u);
	ck_assert_int_eq(msgpack_unpack_next(&u, (char *)buf,
	    SCAN_MAX_DEPTH + 1, &off), MSGPACK_UNPACK_SUCCESS);
	msgpack_unpacked_destroy(&u);

	test_scan_nested(buf, SCAN_MAX_DEPTH + 1, 0);
	ck_assert_int_eq(test_scan_one(buf, SCAN_MAX_DEPTH + 2,
	    SCAN_DEFAULT_MAX_MSG), SCAN_ERROR);
	/* The 33rd level is refused at its header, not at its contents. */
	ck_assert_int_eq(test_scan_one(buf, SCAN_MAX_DEPTH + 1,
	    SCAN_DEFAULT_MAX_MSG), SCAN_ERROR);

	/* An empty container still counts as a level. */
	test_scan_nested(buf, SCAN_MAX_DEPTH, 1);
	ck_assert_int_eq(test_scan_one(buf, SCAN_MAX_DEPTH,
	    SCAN_DEFAULT_MAX_MSG), SCAN_DONE);
	test_scan_nested(buf, SCAN_MAX_DEPTH + 1, 1);
	ck_assert_int_eq(test_scan_one(buf, SCAN_MAX_DEPTH + 1,
	    SCAN_DEFAULT_MAX_MSG), SCAN_ERROR);

	/* Depth is per path: many siblings at level 32 are fine. */
	memset(buf, 0x91, SCAN_MAX_DEPTH - 1);
	buf[SCAN_MAX_DEPTH - 1] = 0x93;
	memset(buf + SCAN_MAX_DEPTH, 0xc0, 3);
	ck_assert_int_eq(test_scan_one(buf, SCAN_MAX_DEPTH + 3,
	    SCAN_DEFAULT_MAX_MSG), SCAN_DONE);
}
END_TEST

START_TEST(test_scan_objects)
{
	uint8_t buf[32];
	struct scan s;

	/* An array and 9 elements: 10 objects. */
	memset(buf, 0x01, sizeof(buf));
	buf[0] = 0x99;
	scan_init(&s, SCAN_DEFAULT_MAX_MSG, 10);
	test_scan_expect(&s, buf, sizeof(buf), SCAN_DONE, 10, 0);

	/* Ten elements are refused at the array header. */
	buf[0] = 0x9a;
	scan_init(&s, SCAN_DEFAULT_MAX_MSG, 10);
	test_scan_expect(&s, buf, 1, SCAN_ERROR, 1, 0);

	/* [[1,2],[3,4],[5,6],[7,8]]: 13 objects, found as they arrive. */
	memcpy(buf, "\x94\x92\x01\x02\x92\x03\x04\x92\x05\x06\x92\x07\x08", 13);
	scan_init(&s, SCAN_DEFAULT_MAX_MSG, 13);
	test_scan_expect(&s, buf, 13, SCAN_DONE, 13, 0);
	scan_init(&s, SCAN_DEFAULT_MAX_MSG, 12);
	ck_assert_int_eq(scan_feed(&s, buf, 13, &(size_t){ 0 }), SCAN_ERROR);
	ck_assert_ptr_nonnull(scan_error(&s));

	/* The top-level object counts. */
	scan_init(&s, SCAN_DEFAULT_MAX_MSG, 0);
	test_scan_expect(&s, "\x01", 1, SCAN_ERROR, 1, 0);
	scan_init(&s, SCAN_DEFAULT_MAX_MSG, 1);
	test_scan_expect(&s, "\x01", 1, SCAN_DONE, 1, 0);

	/* A map of n entries is 2n objects. */
	memcpy(buf, "\x82\x01\x02\x03\x04", 5);
	scan_init(&s, SCAN_DEFAULT_MAX_MSG, 5);
	test_scan_expect(&s, buf, 5, SCAN_DONE, 5, 0);
	scan_init(&s, SCAN_DEFAULT_MAX_MSG, 4);
	test_scan_expect(&s, buf, 1, SCAN_ERROR, 1, 0);
}
END_TEST

START_TEST(test_scan_c1)
{
	static const struct {
		const char *bytes;
		size_t len;
	} bad[] = {
		{ "\xc1", 1 },
		{ "\x92\x01\xc1", 3 },
		{ "\x81\xc1\x01", 2 },
		{ "\x81\x01\xc1", 3 },
	};
	struct scan s;
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		scan_init(&s, SCAN_DEFAULT_MAX_MSG, SCAN_DEFAULT_MAX_OBJECTS);
		test_scan_expect(&s, bad[i].bytes, bad[i].len, SCAN_ERROR,
		    bad[i].len - 1, (int)i);
		ck_assert_str_eq(scan_error(&s), "reserved byte 0xc1");
	}
}
END_TEST

START_TEST(test_scan_max_msg)
{
	uint8_t buf[128];
	struct scan s;
	size_t i, used = 0;
	enum scan_status st = SCAN_MORE;

	/* str8 of 62: exactly 64 bytes. */
	memset(buf, 'x', sizeof(buf));
	buf[0] = 0xd9;
	buf[1] = 62;
	ck_assert_int_eq(test_scan_one(buf, sizeof(buf), 64), SCAN_DONE);
	buf[1] = 63;
	scan_init(&s, 64, SCAN_DEFAULT_MAX_OBJECTS);
	test_scan_expect(&s, buf, 2, SCAN_ERROR, 2, 0);

	/* fixarray of 15 fixints: 16 bytes; at a limit of 15 it is refused. */
	memset(buf, 0x01, sizeof(buf));
	buf[0] = 0x9f;
	ck_assert_int_eq(test_scan_one(buf, sizeof(buf), 16), SCAN_DONE);
	ck_assert_int_eq(test_scan_one(buf, sizeof(buf), 15), SCAN_ERROR);

	/* array16 of 21 uint16 (66 bytes): the count fits, the bytes do not. */
	buf[0] = 0xdc;
	buf[1] = 0;
	buf[2] = 21;
	for (i = 0; i < 21; i++) {
		buf[3 + 3 * i] = 0xcd;
		buf[4 + 3 * i] = 0x01;
		buf[5 + 3 * i] = 0x02;
	}
	ck_assert_int_eq(test_scan_one(buf, 66, 128), SCAN_DONE);
	ck_assert_int_eq(test_scan_one(buf, 66, 64), SCAN_ERROR);
	ck_assert_int_eq(test_scan_one(buf, 64, 64), SCAN_ERROR);
	ck_assert_int_eq(test_scan_one(buf, 63, 64), SCAN_MORE);
	/* Byte by byte, the error comes with the 64th byte. */
	scan_init(&s, 64, SCAN_DEFAULT_MAX_OBJECTS);
	for (i = 0; i < 66 && st == SCAN_MORE; i++)
		st = scan_feed(&s, buf + i, 1, &used);
	ck_assert_int_eq(st, SCAN_ERROR);
	ck_assert_uint_eq(i, 64);
	ck_assert_str_eq(scan_error(&s), "message too large");

	/* Count checks use the room left, not the whole limit. */
	memcpy(buf, "\x92\xd9\x20", 3);
	ck_assert_int_eq(test_scan_one(buf, 3, 34), SCAN_ERROR);
	ck_assert_int_eq(test_scan_one(buf, 3, 35), SCAN_MORE);
	memcpy(buf, "\x92\x00\x9f", 3);
	ck_assert_int_eq(test_scan_one(buf, 3, 17), SCAN_ERROR);
	ck_assert_int_eq(test_scan_one(buf, 3, 18), SCAN_MORE);
	memcpy(buf, "\x92\x00\x8f", 3);
	ck_assert_int_eq(test_scan_one(buf, 3, 32), SCAN_ERROR);
	ck_assert_int_eq(test_scan_one(buf, 3, 33), SCAN_MORE);
}
END_TEST

/* A split inside a multi-byte header. */
START_TEST(test_scan_split_header)
{
	static const uint8_t msg[] = {
		0xdd, 0x00, 0x00, 0x00, 0x02,
		0xcb, 1, 2, 3, 4, 5, 6, 7, 8,
		0xc9, 0x00, 0x00, 0x00, 0x02, 0x05, 'a', 'b',
	};
	struct scan s;
	size_t k, j;

	for (k = 1; k < sizeof(msg); k++) {
		for (j = k; j < sizeof(msg); j++) {
			scan_init(&s, SCAN_DEFAULT_MAX_MSG,
			    SCAN_DEFAULT_MAX_OBJECTS);
			test_scan_expect(&s, msg, k, SCAN_MORE, k, 0);
			test_scan_expect(&s, msg + k, j - k, SCAN_MORE, j - k,
			    0);
			test_scan_expect(&s, msg + j, sizeof(msg) - j,
			    SCAN_DONE, sizeof(msg) - j, 0);
		}
	}
}
END_TEST

static const uint8_t test_scan_bytes[] = {
	0x00, 0x01, 0x02, 0x7f, 0x80, 0x81, 0x82, 0x8f, 0x90, 0x91, 0x92,
	0x93, 0x9f, 0xa0, 0xa1, 0xa3, 0xbf, 0xc0, 0xc1, 0xc2, 0xc3, 0xc4,
	0xc5, 0xc6, 0xc7, 0xc8, 0xc9, 0xca, 0xcb, 0xcc, 0xcf, 0xd0, 0xd3,
	0xd4, 0xd5, 0xd6, 0xd7, 0xd8, 0xd9, 0xda, 0xdb, 0xdc, 0xdd, 0xde,
	0xdf, 0xe0, 0xff,
};

/*
 * Random short buffers: whatever the scanner accepts, msgpack-c decodes to
 * the same length; a prefix the scanner still reads, msgpack-c waits on.
 * msgpack-c only ever sees bytes the scanner did not reject.
 */
START_TEST(test_scan_random)
{
	uint8_t buf[48];
	uint64_t seed = 0x9e3779b97f4a7c15ull, r;
	msgpack_unpacked u;
	struct scan s;
	size_t len, i, n, off, used, total, chunk;
	enum scan_status st, st2;
	msgpack_unpack_return ret;
	int iter, ndone = 0, nmore = 0, nerr = 0;

	msgpack_unpacked_init(&u);
	for (iter = 0; iter < 100000; iter++) {
		len = 1 + test_scan_rand(&seed) % sizeof(buf);
		for (i = 0; i < len; i++) {
			r = test_scan_rand(&seed);
			if (r % 4 == 0)
				buf[i] = (uint8_t)(r >> 8);
			else if (r % 4 == 1)
				buf[i] = (uint8_t)((r >> 8) % 4);
			else
				buf[i] = test_scan_bytes[(r >> 8) %
				    sizeof(test_scan_bytes)];
		}

		n = 0;
		st = scan_buffer(buf, len, 64, &n, NULL);

		/* The same bytes in random chunks give the same verdict. */
		scan_init(&s, 64, SCAN_DEFAULT_MAX_OBJECTS);
		st2 = SCAN_MORE;
		total = 0;
		while (total < len && st2 == SCAN_MORE) {
			chunk = 1 + test_scan_rand(&seed) % 8;
			if (chunk > len - total)
				chunk = len - total;
			st2 = scan_feed(&s, buf + total, chunk, &used);
			total += used;
		}
		if (st2 != st)
			ck_abort_msg("iteration %d: chunked %d, one-shot %d",
			    iter, st2, st);

		off = 0;
		if (st == SCAN_DONE) {
			ndone++;
			if (total != n || scan_length(&s) != n)
				ck_abort_msg("iteration %d: chunked length "
				    "%zu, one-shot %zu", iter, total, n);
			ret = msgpack_unpack_next(&u, (char *)buf, n, &off);
			if (ret != MSGPACK_UNPACK_SUCCESS || off != n)
				ck_abort_msg("iteration %d: scanned %zu "
				    "bytes, msgpack-c says %d at %zu", iter, n,
				    ret, off);
		} else if (st == SCAN_MORE) {
			nmore++;
			ret = msgpack_unpack_next(&u, (char *)buf, len, &off);
			if (ret != MSGPACK_UNPACK_CONTINUE)
				ck_abort_msg("iteration %d: prefix of %zu, "
				    "msgpack-c says %d", iter, len, ret);
		} else
			nerr++;
	}
	msgpack_unpacked_destroy(&u);
	/* The generator reaches all three outcomes often. */
	ck_assert_int_gt(ndone, 5000);
	ck_assert_int_gt(nmore, 5000);
	ck_assert_int_gt(nerr, 5000);
}
END_TEST

Suite *
scan_suite(void)
{
	Suite *s = suite_create("scan");
	TCase *tc;

	tc = tcase_create("formats");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_scan_formats);
	tcase_add_test(tc, test_scan_bytewise);
	tcase_add_test(tc, test_scan_splits);
	tcase_add_test(tc, test_scan_truncated);
	tcase_add_test(tc, test_scan_split_header);
	tcase_add_test(tc, test_scan_large);
	suite_add_tcase(s, tc);

	tc = tcase_create("stream");
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_scan_back_to_back);
	tcase_add_test(tc, test_scan_stream);
	suite_add_tcase(s, tc);

	tc = tcase_create("bad input");
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_scan_hostile_count);
	tcase_add_test(tc, test_scan_depth);
	tcase_add_test(tc, test_scan_objects);
	tcase_add_test(tc, test_scan_c1);
	tcase_add_test(tc, test_scan_max_msg);
	suite_add_tcase(s, tc);

	tc = tcase_create("agree with msgpack-c");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_scan_random);
	suite_add_tcase(s, tc);

	return s;
}
