/* common/paths: data dir and runtime dir resolution (DESIGN.md §2). */
#include "tests/lib/testlib.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/paths.h"

TEST_SUITE(paths_suite)

static char *test_paths_dir;
static char test_paths_err[1024];

/* Every test starts from a known environment: only HOME is set. */
static void
test_paths_setup(void)
{
	test_paths_dir = testlib_tmpdir();
	test_paths_err[0] = '\0';
	unsetenv("AO_DATA_DIR");
	unsetenv("AO_RUNTIME_DIR");
	unsetenv("XDG_STATE_HOME");
	setenv("HOME", "/home/tester", 1);
}

static void
test_paths_teardown(void)
{
	testlib_rmrf(test_paths_dir);
	free(test_paths_dir);
}

static void
test_paths_ok(struct paths *p, const char *data, const char *runtime)
{
	int r;

	r = paths_resolve(p, data, runtime, test_paths_err,
	    sizeof(test_paths_err));
	ck_assert_msg(r == 0, "paths_resolve: %s", test_paths_err);
}

START_TEST(test_paths_home_default)
{
	struct paths p;

	test_paths_ok(&p, NULL, NULL);
	ck_assert_str_eq(p.data_dir, "/home/tester/.local/state/ao");
	ck_assert_str_eq(p.runtime_dir, "/home/tester/.local/state/ao/run");
}
END_TEST

START_TEST(test_paths_xdg_over_home)
{
	struct paths p;

	setenv("XDG_STATE_HOME", "/xdg/state", 1);
	test_paths_ok(&p, NULL, NULL);
	ck_assert_str_eq(p.data_dir, "/xdg/state/ao");
	ck_assert_str_eq(p.runtime_dir, "/xdg/state/ao/run");

	/* A relative or empty XDG_STATE_HOME is ignored (XDG base-dir spec). */
	setenv("XDG_STATE_HOME", "rel/state", 1);
	test_paths_ok(&p, NULL, NULL);
	ck_assert_str_eq(p.data_dir, "/home/tester/.local/state/ao");
	setenv("XDG_STATE_HOME", "", 1);
	test_paths_ok(&p, NULL, NULL);
	ck_assert_str_eq(p.data_dir, "/home/tester/.local/state/ao");
}
END_TEST

START_TEST(test_paths_env_over_xdg)
{
	struct paths p;

	setenv("XDG_STATE_HOME", "/xdg/state", 1);
	setenv("AO_DATA_DIR", "/env/data", 1);
	test_paths_ok(&p, NULL, NULL);
	ck_assert_str_eq(p.data_dir, "/env/data");
	ck_assert_str_eq(p.runtime_dir, "/env/data/run");
}
END_TEST

START_TEST(test_paths_flag_over_env)
{
	struct paths p;

	setenv("XDG_STATE_HOME", "/xdg/state", 1);
	setenv("AO_DATA_DIR", "/env/data", 1);
	test_paths_ok(&p, "/flag/data", NULL);
	ck_assert_str_eq(p.data_dir, "/flag/data");
	ck_assert_str_eq(p.runtime_dir, "/flag/data/run");
}
END_TEST

START_TEST(test_paths_runtime_precedence)
{
	struct paths p;

	setenv("AO_DATA_DIR", "/env/data", 1);
	setenv("AO_RUNTIME_DIR", "/env/run", 1);
	test_paths_ok(&p, NULL, NULL);
	ck_assert_str_eq(p.data_dir, "/env/data");
	ck_assert_str_eq(p.runtime_dir, "/env/run");
	test_paths_ok(&p, "/flag/data", "/flag/run");
	ck_assert_str_eq(p.data_dir, "/flag/data");
	ck_assert_str_eq(p.runtime_dir, "/flag/run");
	unsetenv("AO_RUNTIME_DIR");
	test_paths_ok(&p, "/flag/data", NULL);
	ck_assert_str_eq(p.runtime_dir, "/flag/data/run");
}
END_TEST

START_TEST(test_paths_relative_made_absolute)
{
	struct paths p;
	char want[PATH_MAX + 16], cwd[PATH_MAX];

	ck_assert_int_eq(chdir(test_paths_dir), 0);
	ck_assert_ptr_nonnull(getcwd(cwd, sizeof(cwd)));
	test_paths_ok(&p, "data", "./rt/");
	snprintf(want, sizeof(want), "%s/data", cwd);
	ck_assert_str_eq(p.data_dir, want);
	snprintf(want, sizeof(want), "%s/./rt", cwd);
	ck_assert_str_eq(p.runtime_dir, want);

	setenv("AO_DATA_DIR", "envrel", 1);
	test_paths_ok(&p, NULL, NULL);
	snprintf(want, sizeof(want), "%s/envrel", cwd);
	ck_assert_str_eq(p.data_dir, want);
	snprintf(want, sizeof(want), "%s/envrel/run", cwd);
	ck_assert_str_eq(p.runtime_dir, want);

	/* From the root directory there is no doubled slash. */
	ck_assert_int_eq(chdir("/"), 0);
	test_paths_ok(&p, "x", NULL);
	ck_assert_str_eq(p.data_dir, "/x");
}
END_TEST

START_TEST(test_paths_trailing_slashes)
{
	struct paths p;

	test_paths_ok(&p, "/some/data///", NULL);
	ck_assert_str_eq(p.data_dir, "/some/data");
	ck_assert_str_eq(p.runtime_dir, "/some/data/run");
	test_paths_ok(&p, "/", NULL);
	ck_assert_str_eq(p.data_dir, "/");
	ck_assert_str_eq(p.runtime_dir, "/run");
}
END_TEST

START_TEST(test_paths_prepare_modes)
{
	struct paths p;
	struct stat st;
	char data[4096];

	snprintf(data, sizeof(data), "%s/deep/data", test_paths_dir);
	test_paths_ok(&p, data, NULL);
	ck_assert_int_eq(paths_prepare(&p, test_paths_err,
	    sizeof(test_paths_err)), 0);
	ck_assert_int_eq(stat(p.data_dir, &st), 0);
	ck_assert(S_ISDIR(st.st_mode));
	ck_assert_uint_eq(st.st_mode & 07777, 0700);
	ck_assert_int_eq(stat(p.runtime_dir, &st), 0);
	ck_assert(S_ISDIR(st.st_mode));
	ck_assert_uint_eq(st.st_mode & 07777, 0700);
	/* Twice is fine. */
	ck_assert_int_eq(paths_prepare(&p, test_paths_err,
	    sizeof(test_paths_err)), 0);
}
END_TEST

START_TEST(test_paths_socket_ok)
{
	struct paths p;
	char out[PATH_MAX];

	test_paths_ok(&p, "/d", "/r");
	ck_assert_int_eq(paths_socket(&p, "lcmd.sock", out, sizeof(out),
	    test_paths_err, sizeof(test_paths_err)), 0);
	ck_assert_str_eq(out, "/r/lcmd.sock");
}
END_TEST

START_TEST(test_paths_bad_input)
{
	struct paths p;
	char big[PATH_MAX + 10], out[PATH_MAX], rt[200], file[4096];
	size_t max = sizeof(((struct sockaddr_un *)0)->sun_path) - 1;
	FILE *f;

	ck_assert_int_eq(paths_resolve(&p, "", NULL, test_paths_err,
	    sizeof(test_paths_err)), -1);
	ck_assert_ptr_nonnull(strstr(test_paths_err, "--data-dir is empty"));
	ck_assert_int_eq(paths_resolve(&p, "/d", "", test_paths_err,
	    sizeof(test_paths_err)), -1);
	ck_assert_ptr_nonnull(strstr(test_paths_err, "--runtime-dir is empty"));

	setenv("AO_DATA_DIR", "", 1);
	ck_assert_int_eq(paths_resolve(&p, NULL, NULL, test_paths_err,
	    sizeof(test_paths_err)), -1);
	ck_assert_ptr_nonnull(strstr(test_paths_err, "AO_DATA_DIR is empty"));
	unsetenv("AO_DATA_DIR");
	setenv("AO_RUNTIME_DIR", "", 1);
	ck_assert_int_eq(paths_resolve(&p, NULL, NULL, test_paths_err,
	    sizeof(test_paths_err)), -1);
	ck_assert_ptr_nonnull(strstr(test_paths_err, "AO_RUNTIME_DIR is empty"));
	unsetenv("AO_RUNTIME_DIR");

	unsetenv("HOME");
	ck_assert_int_eq(paths_resolve(&p, NULL, NULL, test_paths_err,
	    sizeof(test_paths_err)), -1);
	ck_assert_ptr_nonnull(strstr(test_paths_err, "HOME is not set"));
	setenv("HOME", "", 1);
	ck_assert_int_eq(paths_resolve(&p, NULL, NULL, test_paths_err,
	    sizeof(test_paths_err)), -1);
	/* The flag does not need HOME. */
	test_paths_ok(&p, "/d", NULL);

	memset(big, 'x', sizeof(big));
	big[0] = '/';
	big[sizeof(big) - 1] = '\0';
	ck_assert_int_eq(paths_resolve(&p, big, NULL, test_paths_err,
	    sizeof(test_paths_err)), -1);
	ck_assert_int_eq(errno, ENAMETOOLONG);
	ck_assert_ptr_nonnull(strstr(test_paths_err, "too long"));
	/* The data dir fits, "<data>/run" does not. */
	big[PATH_MAX - 2] = '\0';
	ck_assert_int_eq(paths_resolve(&p, big, NULL, test_paths_err,
	    sizeof(test_paths_err)), -1);
	ck_assert_int_eq(errno, ENAMETOOLONG);

	/* A runtime dir that leaves no room in sun_path. */
	memset(rt, 'r', sizeof(rt));
	rt[0] = '/';
	rt[max - 4] = '\0';
	test_paths_ok(&p, "/d", rt);
	ck_assert_int_eq(paths_socket(&p, "abc", out, sizeof(out),
	    test_paths_err, sizeof(test_paths_err)), 0);
	ck_assert_int_eq(paths_socket(&p, "abcd", out, sizeof(out),
	    test_paths_err, sizeof(test_paths_err)), -1);
	ck_assert_int_eq(errno, ENAMETOOLONG);
	ck_assert_ptr_nonnull(strstr(test_paths_err, "socket path too long"));
	ck_assert_ptr_nonnull(strstr(test_paths_err, "abcd"));
	/* The output buffer itself too small. */
	test_paths_ok(&p, "/d", "/r");
	ck_assert_int_eq(paths_socket(&p, "lcmd.sock", out, 8,
	    test_paths_err, sizeof(test_paths_err)), -1);
	ck_assert_int_eq(errno, ENAMETOOLONG);
	ck_assert_int_eq(paths_socket(&p, "", out, sizeof(out),
	    test_paths_err, sizeof(test_paths_err)), -1);
	ck_assert_int_eq(errno, EINVAL);
	ck_assert_int_eq(paths_socket(&p, "a/b", out, sizeof(out),
	    test_paths_err, sizeof(test_paths_err)), -1);
	ck_assert_int_eq(errno, EINVAL);

	/* A file where the data dir should be. */
	snprintf(file, sizeof(file), "%s/file", test_paths_dir);
	f = fopen(file, "w");
	ck_assert_ptr_nonnull(f);
	fclose(f);
	test_paths_ok(&p, file, NULL);
	ck_assert_int_eq(paths_prepare(&p, test_paths_err,
	    sizeof(test_paths_err)), -1);
	ck_assert_ptr_nonnull(strstr(test_paths_err, "data dir: "));
	ck_assert_ptr_nonnull(strstr(test_paths_err, "not a directory"));
	/* And where the runtime dir should be. */
	test_paths_ok(&p, test_paths_dir, file);
	ck_assert_int_eq(paths_prepare(&p, test_paths_err,
	    sizeof(test_paths_err)), -1);
	ck_assert_ptr_nonnull(strstr(test_paths_err, "runtime dir: "));
}
END_TEST

Suite *
paths_suite(void)
{
	Suite *s = suite_create("paths");
	TCase *tc;

	tc = tcase_create("resolve");
	tcase_add_checked_fixture(tc, test_paths_setup, test_paths_teardown);
	tcase_set_timeout(tc, 10);
	tcase_add_test(tc, test_paths_home_default);
	tcase_add_test(tc, test_paths_xdg_over_home);
	tcase_add_test(tc, test_paths_env_over_xdg);
	tcase_add_test(tc, test_paths_flag_over_env);
	tcase_add_test(tc, test_paths_runtime_precedence);
	tcase_add_test(tc, test_paths_relative_made_absolute);
	tcase_add_test(tc, test_paths_trailing_slashes);
	suite_add_tcase(s, tc);

	tc = tcase_create("prepare");
	tcase_add_checked_fixture(tc, test_paths_setup, test_paths_teardown);
	tcase_set_timeout(tc, 10);
	tcase_add_test(tc, test_paths_prepare_modes);
	tcase_add_test(tc, test_paths_socket_ok);
	suite_add_tcase(s, tc);

	tc = tcase_create("bad input");
	tcase_add_checked_fixture(tc, test_paths_setup, test_paths_teardown);
	tcase_set_timeout(tc, 10);
	tcase_add_test(tc, test_paths_bad_input);
	suite_add_tcase(s, tc);
	return s;
}
