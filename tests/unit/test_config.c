/* common/config: defaults, INI sections, command-line keys, value parsing. */
#include "tests/lib/testlib.h"

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/config.h"

TEST_SUITE(config_suite)

#define TEST_CONFIG_MIB (1024LL * 1024)

struct test_config {
	int64_t count;
	int64_t wait_ms;
	int64_t buffer_bytes;
	int enabled;
	char *label;
	char *name;
};

static const struct config_key test_config_keys[] = {
	{ "count", CONFIG_INT, "3",
	    offsetof(struct test_config, count), 0, 100, "how many" },
	{ "wait_ms", CONFIG_MS, "250",
	    offsetof(struct test_config, wait_ms), 1, 3600000, "how long" },
	{ "buffer_bytes", CONFIG_BYTES, "1MiB",
	    offsetof(struct test_config, buffer_bytes), 0, INT64_MAX,
	    "how big" },
	{ "enabled", CONFIG_BOOL, "yes",
	    offsetof(struct test_config, enabled), 0, 0, "whether" },
	{ "label", CONFIG_STR, NULL,
	    offsetof(struct test_config, label), 0, 0, "what" },
	{ "name", CONFIG_STR, "ao",
	    offsetof(struct test_config, name), 0, 0, "who" },
	CONFIG_KEY_END
};

static struct test_config test_config_cfg;
static char *test_config_dir;
static char test_config_file[4096];
static char test_config_err[1024];

static void
test_config_setup(void)
{
	memset(&test_config_cfg, 0, sizeof(test_config_cfg));
	test_config_dir = testlib_tmpdir();
	snprintf(test_config_file, sizeof(test_config_file), "%s/ao.ini",
	    test_config_dir);
	test_config_err[0] = '\0';
	ck_assert_int_eq(config_defaults(test_config_keys, &test_config_cfg,
	    test_config_err, sizeof(test_config_err)), 0);
}

static void
test_config_teardown(void)
{
	config_free(test_config_keys, &test_config_cfg);
	testlib_rmrf(test_config_dir);
	free(test_config_dir);
}

static void
test_config_write(const char *text)
{
	FILE *f = fopen(test_config_file, "w");

	ck_assert_ptr_nonnull(f);
	fputs(text, f);
	fclose(f);
}

/* Loads the [lcmd] section of `text`; returns what config_load_file did. */
static int
test_config_load(const char *text)
{
	test_config_write(text);
	return config_load_file(test_config_keys, &test_config_cfg, "lcmd",
	    test_config_file, test_config_err, sizeof(test_config_err));
}

static int
test_config_set(const char *name, const char *value)
{
	return config_set(test_config_keys, &test_config_cfg, name, value,
	    test_config_err, sizeof(test_config_err));
}

/* err contains every NULL-terminated needle. */
static void
test_config_err_has(const char *needle, ...)
{
	va_list ap;
	const char *s;

	ck_assert_msg(strstr(test_config_err, needle) != NULL,
	    "'%s' not in '%s'", needle, test_config_err);
	va_start(ap, needle);
	while ((s = va_arg(ap, const char *)) != NULL)
		ck_assert_msg(strstr(test_config_err, s) != NULL,
		    "'%s' not in '%s'", s, test_config_err);
	va_end(ap);
}

START_TEST(test_config_defaults_applied)
{
	ck_assert_int_eq(test_config_cfg.count, 3);
	ck_assert_int_eq(test_config_cfg.wait_ms, 250);
	ck_assert_int_eq(test_config_cfg.buffer_bytes, TEST_CONFIG_MIB);
	ck_assert_int_eq(test_config_cfg.enabled, 1);
	ck_assert_str_eq(test_config_cfg.label, "");
	ck_assert_str_eq(test_config_cfg.name, "ao");
	/* Defaults again free the strings they replace (ASan would tell). */
	ck_assert_int_eq(config_defaults(test_config_keys, &test_config_cfg,
	    test_config_err, sizeof(test_config_err)), 0);
}
END_TEST

START_TEST(test_config_file_values)
{
	ck_assert_int_eq(test_config_load(
	    "; comment\n"
	    "# another\n"
	    "[storaged]\n"
	    "retention_ms = 5\n"
	    "\n"
	    "[lcmd]\n"
	    "  count = 7\n"
	    "\twait_ms=1000 ; inline comment\n"
	    "buffer_bytes = 2 MiB\n"
	    "enabled = off\n"
	    "label = hello world\n"
	    "[reaperd]\n"
	    "tick_ms = nonsense but not ours\n"
	    "count = 99\n"), 0);
	ck_assert_int_eq(test_config_cfg.count, 7);
	ck_assert_int_eq(test_config_cfg.wait_ms, 1000);
	ck_assert_int_eq(test_config_cfg.buffer_bytes, 2 * TEST_CONFIG_MIB);
	ck_assert_int_eq(test_config_cfg.enabled, 0);
	ck_assert_str_eq(test_config_cfg.label, "hello world");
	ck_assert_str_eq(test_config_cfg.name, "ao");
}
END_TEST

START_TEST(test_config_empty_file)
{
	ck_assert_int_eq(test_config_load(""), 0);
	ck_assert_int_eq(test_config_cfg.count, 3);
	ck_assert_int_eq(test_config_load("[lcmd]\n[cdcd]\n"), 0);
	ck_assert_int_eq(test_config_cfg.count, 3);
}
END_TEST

START_TEST(test_config_own_section)
{
	/* The caller's section is allowed even when config_sections lacks it. */
	test_config_write("[testd]\ncount = 8\n[lcmd]\ncount = 9\n");
	ck_assert_int_eq(config_load_file(test_config_keys, &test_config_cfg,
	    "testd", test_config_file, test_config_err,
	    sizeof(test_config_err)), 0);
	ck_assert_int_eq(test_config_cfg.count, 8);
	/* ...but is unknown to everybody else. */
	ck_assert_int_eq(test_config_load("[testd]\ncount = 8\n"), -1);
	test_config_err_has("unknown section [testd]", NULL);
}
END_TEST

START_TEST(test_config_command_line_wins)
{
	ck_assert_int_eq(test_config_load("[lcmd]\ncount = 7\nwait-ms = 9\n"), 0);
	ck_assert_int_eq(test_config_cfg.wait_ms, 9);
	ck_assert_int_eq(test_config_set("count", "11"), 0);
	ck_assert_int_eq(test_config_cfg.count, 11);
	ck_assert_int_eq(test_config_cfg.wait_ms, 9);
}
END_TEST

START_TEST(test_config_dashed_names)
{
	const struct config_key *k;

	k = config_find(test_config_keys, "wait_ms");
	ck_assert_ptr_nonnull(k);
	ck_assert_str_eq(k->name, "wait_ms");
	ck_assert_ptr_eq(config_find(test_config_keys, "wait-ms"), k);
	ck_assert_ptr_null(config_find(test_config_keys, "wait"));
	ck_assert_ptr_null(config_find(test_config_keys, "wait_ms_"));
	ck_assert_ptr_null(config_find(test_config_keys, "waitms"));
	ck_assert_ptr_null(config_find(test_config_keys, ""));
	ck_assert_int_eq(test_config_set("buffer-bytes", "4K"), 0);
	ck_assert_int_eq(test_config_cfg.buffer_bytes, 4096);
}
END_TEST

START_TEST(test_config_bytes_suffixes)
{
	static const struct {
		const char *text;
		int64_t want;
	} ok[] = {
		{ "0", 0 }, { "512", 512 },
		{ "1K", 1024 }, { "2KiB", 2048 }, { "3k", 3072 }, { "1kib", 1024 },
		{ "3M", 3 * TEST_CONFIG_MIB }, { "4MiB", 4 * TEST_CONFIG_MIB },
		{ "1 MiB", TEST_CONFIG_MIB },
		{ "1G", 1024 * TEST_CONFIG_MIB }, { "2GiB", 2048 * TEST_CONFIG_MIB },
		{ "8589934591G", 8589934591LL * 1024 * TEST_CONFIG_MIB },
	};
	static const char *const bad[] = {
		"", "K", "MiB", "1T", "1.5M", "1 M B", "1MB", " 1K", "1K ", "x",
		"8589934592G", "99999999999999999999", "-",
	};
	size_t i;

	for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		ck_assert_msg(test_config_set("buffer_bytes", ok[i].text) == 0,
		    "%s: %s", ok[i].text, test_config_err);
		ck_assert_int_eq(test_config_cfg.buffer_bytes, ok[i].want);
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		test_config_cfg.buffer_bytes = 42;
		ck_assert_msg(test_config_set("buffer_bytes", bad[i]) == -1,
		    "'%s' accepted", bad[i]);
		test_config_err_has("buffer_bytes", "not a size", NULL);
		ck_assert_int_eq(test_config_cfg.buffer_bytes, 42);
	}
	/* Below the minimum after the suffix. */
	ck_assert_int_eq(test_config_set("buffer_bytes", "-1K"), -1);
	test_config_err_has("buffer_bytes", "-1024", "out of range", NULL);
}
END_TEST

START_TEST(test_config_bools)
{
	static const char *const yes[] = { "true", "yes", "on", "1", "TRUE", "Yes" };
	static const char *const no[] = { "false", "no", "off", "0", "OFF", "No" };
	size_t i;

	for (i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		test_config_cfg.enabled = 0;
		ck_assert_int_eq(test_config_set("enabled", yes[i]), 0);
		ck_assert_int_eq(test_config_cfg.enabled, 1);
	}
	for (i = 0; i < sizeof(no) / sizeof(no[0]); i++) {
		test_config_cfg.enabled = 1;
		ck_assert_int_eq(test_config_set("enabled", no[i]), 0);
		ck_assert_int_eq(test_config_cfg.enabled, 0);
	}
}
END_TEST

START_TEST(test_config_string_replace)
{
	ck_assert_int_eq(test_config_set("label", "first"), 0);
	ck_assert_str_eq(test_config_cfg.label, "first");
	ck_assert_int_eq(test_config_set("label", "second"), 0);
	ck_assert_str_eq(test_config_cfg.label, "second");
	ck_assert_int_eq(test_config_set("label", ""), 0);
	ck_assert_str_eq(test_config_cfg.label, "");
	ck_assert_int_eq(test_config_load("[lcmd]\nlabel = third\n"), 0);
	ck_assert_str_eq(test_config_cfg.label, "third");
	config_free(test_config_keys, &test_config_cfg);
	ck_assert_ptr_null(test_config_cfg.label);
	ck_assert_ptr_null(test_config_cfg.name);
	/* A second free is harmless. */
	config_free(test_config_keys, &test_config_cfg);
}
END_TEST

START_TEST(test_config_ints)
{
	ck_assert_int_eq(test_config_set("count", "0"), 0);
	ck_assert_int_eq(test_config_cfg.count, 0);
	ck_assert_int_eq(test_config_set("count", "100"), 0);
	ck_assert_int_eq(test_config_cfg.count, 100);
	ck_assert_int_eq(test_config_set("count", "+5"), 0);
	ck_assert_int_eq(test_config_cfg.count, 5);
	ck_assert_int_eq(test_config_set("wait_ms", "3600000"), 0);
	ck_assert_int_eq(test_config_cfg.wait_ms, 3600000);
}
END_TEST

START_TEST(test_config_usage_lines)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	ck_assert_ptr_nonnull(f);
	config_usage(test_config_keys, f);
	fclose(f);
	ck_assert_ptr_nonnull(strstr(buf, "  --count=N "));
	ck_assert_ptr_nonnull(strstr(buf, "  --wait-ms=MS "));
	ck_assert_ptr_nonnull(strstr(buf, "  --buffer-bytes=BYTES "));
	ck_assert_ptr_nonnull(strstr(buf, "  --enabled=BOOL "));
	ck_assert_ptr_nonnull(strstr(buf, "how long (default: 250)\n"));
	ck_assert_ptr_nonnull(strstr(buf, "how big (default: 1MiB)\n"));
	ck_assert_ptr_nonnull(strstr(buf, "what (default: none)\n"));
	ck_assert_ptr_null(strstr(buf, "wait_ms"));
	free(buf);
}
END_TEST

START_TEST(test_config_bad_values)
{
	static const char *const badint[] = {
		"", "abc", "12x", "1.5", " 5", "5 ", "0x10", "-", "+",
		"99999999999999999999", "-99999999999999999999",
	};
	size_t i;

	for (i = 0; i < sizeof(badint) / sizeof(badint[0]); i++) {
		ck_assert_msg(test_config_set("count", badint[i]) == -1,
		    "'%s' accepted", badint[i]);
		test_config_err_has("count", "not an integer", NULL);
		ck_assert_int_eq(test_config_cfg.count, 3);
	}
	ck_assert_int_eq(test_config_set("wait_ms", "5s"), -1);
	test_config_err_has("wait_ms: '5s' is not an integer (milliseconds)",
	    NULL);

	ck_assert_int_eq(test_config_set("count", "101"), -1);
	test_config_err_has("count", "101", "out of range [0, 100]", NULL);
	ck_assert_int_eq(test_config_set("count", "-1"), -1);
	test_config_err_has("count", "[0, 100]", NULL);
	ck_assert_int_eq(test_config_set("wait_ms", "0"), -1);
	test_config_err_has("wait_ms", "[1, 3600000]", NULL);
	ck_assert_int_eq(test_config_cfg.wait_ms, 250);

	ck_assert_int_eq(test_config_set("enabled", "maybe"), -1);
	test_config_err_has("enabled", "not a boolean", NULL);
	ck_assert_int_eq(test_config_set("enabled", ""), -1);
	ck_assert_int_eq(test_config_set("enabled", "2"), -1);
	ck_assert_int_eq(test_config_cfg.enabled, 1);

	ck_assert_int_eq(test_config_set("bogus", "1"), -1);
	test_config_err_has("unknown key 'bogus'", NULL);
}
END_TEST

START_TEST(test_config_bad_files)
{
	ck_assert_int_eq(test_config_load("[lcmd]\ncount = 1\nbogus = 2\n"), -1);
	test_config_err_has(test_config_file, ":3: ",
	    "unknown key 'bogus' in [lcmd]", NULL);

	ck_assert_int_eq(test_config_load("\n[lcdm]\ncount = 1\n"), -1);
	test_config_err_has(":3: ", "unknown section [lcdm]",
	    "storaged, cdcd, lcmd, reaperd, supervisor", NULL);

	ck_assert_int_eq(test_config_load("[lcmd]\n\n\ncount = 12x\n"), -1);
	test_config_err_has(":4: ", "count", "not an integer", NULL);

	ck_assert_int_eq(test_config_load("[lcmd]\ncount = 500\n"), -1);
	test_config_err_has(":2: ", "count", "out of range [0, 100]", NULL);

	ck_assert_int_eq(test_config_load("count = 5\n[lcmd]\n"), -1);
	test_config_err_has(":1: ", "outside of any [section]", NULL);

	ck_assert_int_eq(test_config_load("[lcmd]\ncount = 5\nnot a pair\n"),
	    -1);
	test_config_err_has(":3: ", "syntax error", NULL);

	ck_assert_int_eq(test_config_load("[lcmd\n"), -1);
	test_config_err_has(":1: ", "syntax error", NULL);

	/* The first error is reported, with its own line. */
	ck_assert_int_eq(test_config_load("[lcmd]\nbad1 = 1\nbad2 = 2\n"), -1);
	test_config_err_has(":2: ", "bad1", NULL);
	ck_assert_ptr_null(strstr(test_config_err, "bad2"));
}
END_TEST

START_TEST(test_config_long_line)
{
	char text[1200];
	int n;

	n = snprintf(text, sizeof(text), "[lcmd]\nlabel = ");
	memset(text + n, 'x', 1000);
	snprintf(text + n + 1000, sizeof(text) - n - 1000, "\ncount = 4\n");
	ck_assert_int_eq(test_config_load(text), -1);
	test_config_err_has(":2: ", "line too long", NULL);
}
END_TEST

START_TEST(test_config_missing_file)
{
	char path[4096];

	snprintf(path, sizeof(path), "%s/nope.ini", test_config_dir);
	ck_assert_int_eq(config_load_file(test_config_keys, &test_config_cfg,
	    "lcmd", path, test_config_err, sizeof(test_config_err)), -1);
	test_config_err_has(path, strerror(ENOENT), NULL);
	/* A directory cannot be read as a file. */
	ck_assert_int_eq(config_load_file(test_config_keys, &test_config_cfg,
	    "lcmd", test_config_dir, test_config_err,
	    sizeof(test_config_err)), -1);
	test_config_err_has(test_config_dir, NULL);
}
END_TEST

START_TEST(test_config_bad_default)
{
	struct test_bad {
		int64_t n;
	} cfg;
	static const struct config_key keys[] = {
		{ "n", CONFIG_INT, "5", offsetof(struct test_bad, n), 10, 20,
		    "n" },
		CONFIG_KEY_END
	};

	ck_assert_int_eq(config_defaults(keys, &cfg, test_config_err,
	    sizeof(test_config_err)), -1);
	test_config_err_has("bad default", "n: 5 is out of range [10, 20]",
	    NULL);
}
END_TEST

Suite *
config_suite(void)
{
	Suite *s = suite_create("config");
	TCase *tc;

	tc = tcase_create("values");
	tcase_add_checked_fixture(tc, test_config_setup, test_config_teardown);
	tcase_set_timeout(tc, 10);
	tcase_add_test(tc, test_config_defaults_applied);
	tcase_add_test(tc, test_config_file_values);
	tcase_add_test(tc, test_config_empty_file);
	tcase_add_test(tc, test_config_own_section);
	tcase_add_test(tc, test_config_command_line_wins);
	tcase_add_test(tc, test_config_dashed_names);
	tcase_add_test(tc, test_config_bytes_suffixes);
	tcase_add_test(tc, test_config_bools);
	tcase_add_test(tc, test_config_string_replace);
	tcase_add_test(tc, test_config_ints);
	tcase_add_test(tc, test_config_usage_lines);
	suite_add_tcase(s, tc);

	tc = tcase_create("bad input");
	tcase_add_checked_fixture(tc, test_config_setup, test_config_teardown);
	tcase_set_timeout(tc, 10);
	tcase_add_test(tc, test_config_bad_values);
	tcase_add_test(tc, test_config_bad_files);
	tcase_add_test(tc, test_config_long_line);
	tcase_add_test(tc, test_config_missing_file);
	tcase_add_test(tc, test_config_bad_default);
	suite_add_tcase(s, tc);
	return s;
}
