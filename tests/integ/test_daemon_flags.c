/*
 * The common flags of every bin/ao-* daemon: --help, --version, config keys
 * on the command line and in the config file, and exit code 100 for every
 * mistake.  Each run gets a fresh HOME and data dir, so nothing outside the
 * temporary directory is touched.
 */
#include "tests/lib/testlib.h"

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/version.h"

TEST_SUITE(daemon_flags_suite)

#define TEST_FLAGS_TIMEOUT_MS 10000

/* Each daemon with one of its config keys (snake_case and dashed). */
static const struct {
	const char *name;
	const char *key;
	const char *flag;
} test_flags_daemons[] = {
	{ "storaged", "retention_ms", "--retention-ms" },
	{ "cdcd", "subscriber_buffer_bytes", "--subscriber-buffer-bytes" },
	{ "lcmd", "max_sessions", "--max-sessions" },
	{ "reaperd", "tick_ms", "--tick-ms" },
	{ "supervisor", "stop_timeout_ms", "--stop-timeout-ms" },
};
/* Daemons from this index on still exit 100 "not implemented". */
#define TEST_FLAGS_FIRST_TODO 3
#define TEST_FLAGS_NDAEMONS \
	(int)(sizeof(test_flags_daemons) / sizeof(test_flags_daemons[0]))

static char *test_flags_dir;
static char test_flags_data[4096];
static char *test_flags_out;	/* stdout and stderr of the last run */

static void
test_flags_setup(void)
{
	test_flags_dir = testlib_tmpdir();
	snprintf(test_flags_data, sizeof(test_flags_data), "%s/data",
	    test_flags_dir);
	test_flags_out = NULL;
}

static void
test_flags_teardown(void)
{
	free(test_flags_out);
	testlib_rmrf(test_flags_dir);
	free(test_flags_dir);
}

/*
 * Runs bin/ao-<daemon> with the NULL-terminated args in the temp dir, with
 * HOME there and the given AO_DATA_DIR / AO_CONFIG (NULL: unset).  Returns
 * the exit code (-1 when killed or timed out); test_flags_out gets the
 * output.
 */
static int
test_flags_run(const char *daemon, const char *data_env,
    const char *config_env, const char *const args[])
{
	char bin[64], out[4200];
	char *argv[16];
	pid_t pid, parent = getpid();
	int i, fd, status;

	snprintf(bin, sizeof(bin), "ao-%s", daemon);
	snprintf(out, sizeof(out), "%s/out", test_flags_dir);
	argv[0] = (char *)testlib_bin(bin);
	for (i = 0; args[i] != NULL && i < 14; i++)
		argv[i + 1] = (char *)args[i];
	argv[i + 1] = NULL;

	fflush(NULL);
	pid = fork();
	ck_assert_int_ne(pid, -1);
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(127);
		fd = open(out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		if (fd == -1 || dup2(fd, 1) == -1 || dup2(fd, 2) == -1 ||
		    chdir(test_flags_dir) == -1)
			_exit(127);
		setenv("HOME", test_flags_dir, 1);
		unsetenv("XDG_STATE_HOME");
		unsetenv("AO_RUNTIME_DIR");
		unsetenv("LISTEN_FDS");
		unsetenv("LISTEN_PID");
		unsetenv("NOTIFY_SOCKET");
		if (data_env != NULL)
			setenv("AO_DATA_DIR", data_env, 1);
		else
			unsetenv("AO_DATA_DIR");
		if (config_env != NULL)
			setenv("AO_CONFIG", config_env, 1);
		else
			unsetenv("AO_CONFIG");
		execv(argv[0], argv);
		dprintf(2, "exec %s failed\n", argv[0]);
		_exit(127);
	}
	status = testlib_wait(pid, TEST_FLAGS_TIMEOUT_MS);
	if (status == -1) {
		kill(pid, SIGKILL);
		waitpid(pid, &status, 0);
		status = -1;
	}
	free(test_flags_out);
	test_flags_out = testlib_read_file(out);
	ck_assert_ptr_nonnull(test_flags_out);
	if (status == -1 || !WIFEXITED(status))
		return -1;
	return WEXITSTATUS(status);
}

static void
test_flags_has(const char *needle)
{
	ck_assert_msg(strstr(test_flags_out, needle) != NULL,
	    "'%s' not in output:\n%s", needle, test_flags_out);
}

static void
test_flags_write(const char *name, const char *text, char *path, size_t len)
{
	FILE *f;

	snprintf(path, len, "%s/%s", test_flags_dir, name);
	f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fputs(text, f);
	fclose(f);
}

static void
test_flags_is_private_dir(const char *path)
{
	struct stat st;

	ck_assert_msg(stat(path, &st) == 0, "%s missing", path);
	ck_assert(S_ISDIR(st.st_mode));
	ck_assert_uint_eq(st.st_mode & 07777, 0700);
}

START_TEST(test_flags_help)
{
	const char *d = test_flags_daemons[_i].name;
	const char *const help[] = { "--help", NULL };
	const char *const h[] = { "-h", NULL };
	char usage[64];

	snprintf(usage, sizeof(usage), "usage: ao-%s", d);
	ck_assert_int_eq(test_flags_run(d, NULL, NULL, help), 0);
	test_flags_has(usage);
	test_flags_has("--data-dir");
	test_flags_has("--runtime-dir");
	test_flags_has("--config");
	test_flags_has("--ready-fd");
	test_flags_has(test_flags_daemons[_i].flag);
	ck_assert_int_eq(test_flags_run(d, NULL, NULL, h), 0);
	test_flags_has(test_flags_daemons[_i].flag);
}
END_TEST

START_TEST(test_flags_version)
{
	const char *d = test_flags_daemons[_i].name;
	const char *const args[] = { "--version", NULL };
	char want[64];

	snprintf(want, sizeof(want), "ao-%s %s\n", d, AO_VERSION);
	ck_assert_int_eq(test_flags_run(d, NULL, NULL, args), 0);
	ck_assert_str_eq(test_flags_out, want);
}
END_TEST

START_TEST(test_flags_not_implemented)
{
	const char *d = test_flags_daemons[_i].name;
	const char *const none[] = { NULL };
	const char *const flag[] = { "--data-dir", "flagdata", "-v", NULL };
	char path[4200];

	ck_assert_int_eq(test_flags_run(d, test_flags_data, NULL, none), 100);
	test_flags_has("not implemented");
	test_flags_is_private_dir(test_flags_data);
	snprintf(path, sizeof(path), "%s/run", test_flags_data);
	test_flags_is_private_dir(path);

	/* A relative --data-dir beats AO_DATA_DIR. */
	ck_assert_int_eq(test_flags_run(d, test_flags_data, NULL, flag), 100);
	test_flags_has("not implemented");
	snprintf(path, sizeof(path), "%s/flagdata/run", test_flags_dir);
	test_flags_is_private_dir(path);
}
END_TEST

START_TEST(test_flags_config_values)
{
	const char *d = test_flags_daemons[_i].name;
	const char *const none[] = { NULL };
	char text[512], conf[4200];

	/* A valid value for every daemon's key, plus other daemons' sections. */
	snprintf(text, sizeof(text), "[supervisor]\nstop_timeout_ms = 5\n"
	    "[%s]\n%s = 1000\n[lcmd]\ntmux_socket = ao-test\n", d,
	    test_flags_daemons[_i].key);
	test_flags_write("ok.ini", text, conf, sizeof(conf));
	ck_assert_int_eq(test_flags_run(d, test_flags_data, conf, none), 100);
	test_flags_has("not implemented");
}
END_TEST

START_TEST(test_flags_unknown_flag)
{
	const char *d = test_flags_daemons[_i].name;
	const char *const args[] = { "--no-such-flag", NULL };
	const char *const stray[] = { "stray", NULL };

	ck_assert_int_eq(test_flags_run(d, test_flags_data, NULL, args), 100);
	test_flags_has("unknown option --no-such-flag (try --help)");
	ck_assert_int_eq(test_flags_run(d, test_flags_data, NULL, stray), 100);
	test_flags_has("stray");
}
END_TEST

START_TEST(test_flags_bad_value)
{
	const char *d = test_flags_daemons[_i].name;
	char arg[128], want[128];
	const char *const args[] = { arg, NULL };
	const char *const split[] = { test_flags_daemons[_i].flag, "-5", NULL };
	const char *const missing[] = { test_flags_daemons[_i].flag, NULL };

	snprintf(arg, sizeof(arg), "%s=abc", test_flags_daemons[_i].flag);
	snprintf(want, sizeof(want), "%s: 'abc'", test_flags_daemons[_i].key);
	ck_assert_int_eq(test_flags_run(d, test_flags_data, NULL, args), 100);
	test_flags_has(want);

	ck_assert_int_eq(test_flags_run(d, test_flags_data, NULL, split), 100);
	test_flags_has(test_flags_daemons[_i].key);
	test_flags_has("out of range");

	ck_assert_int_eq(test_flags_run(d, test_flags_data, NULL, missing), 100);
	test_flags_has("needs a value");
}
END_TEST

START_TEST(test_flags_bad_config)
{
	const char *d = test_flags_daemons[_i].name;
	const char *const none[] = { NULL };
	char text[256], conf[4200], where[4300];
	const char *const flag[] = { "--config", conf, NULL };

	snprintf(text, sizeof(text), "[%s]\n%s = abc\n", d,
	    test_flags_daemons[_i].key);
	test_flags_write("bad.ini", text, conf, sizeof(conf));
	snprintf(where, sizeof(where), "%s:2: ", conf);
	ck_assert_int_eq(test_flags_run(d, test_flags_data, NULL, flag), 100);
	test_flags_has(where);
	test_flags_has(test_flags_daemons[_i].key);

	snprintf(text, sizeof(text), "[%s]\nbogus_key = 1\n", d);
	test_flags_write("unknown.ini", text, conf, sizeof(conf));
	ck_assert_int_eq(test_flags_run(d, test_flags_data, conf, none), 100);
	snprintf(where, sizeof(where), "unknown key 'bogus_key' in [%s]", d);
	test_flags_has(where);

	test_flags_write("section.ini", "[bogus]\nx = 1\n", conf, sizeof(conf));
	ck_assert_int_eq(test_flags_run(d, test_flags_data, NULL, flag), 100);
	test_flags_has("unknown section [bogus]");

	snprintf(conf, sizeof(conf), "%s/missing.ini", test_flags_dir);
	ck_assert_int_eq(test_flags_run(d, test_flags_data, NULL, flag), 100);
	test_flags_has("missing.ini");
}
END_TEST

START_TEST(test_flags_reaperd_tick_ms)
{
	const char *const args[] = { "--tick-ms=abc", NULL };
	const char *const ok[] = { "--tick-ms", "100", NULL };

	ck_assert_int_eq(test_flags_run("reaperd", test_flags_data, NULL, args),
	    100);
	test_flags_has("tick_ms");
	test_flags_has("not an integer");
	ck_assert_int_eq(test_flags_run("reaperd", test_flags_data, NULL, ok),
	    100);
	test_flags_has("not implemented");
}
END_TEST

START_TEST(test_flags_bad_ready_fd)
{
	const char *const args[] = { "--ready-fd", "99", NULL };

	ck_assert_int_eq(test_flags_run("lcmd", test_flags_data, NULL, args),
	    100);
	test_flags_has("--ready-fd");
}
END_TEST

Suite *
daemon_flags_suite(void)
{
	Suite *s = suite_create("daemon_flags");
	TCase *tc;

	tc = tcase_create("flags");
	tcase_add_checked_fixture(tc, test_flags_setup, test_flags_teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_loop_test(tc, test_flags_help, 0, TEST_FLAGS_NDAEMONS);
	tcase_add_loop_test(tc, test_flags_version, 0, TEST_FLAGS_NDAEMONS);
	/* Only the daemons still to be written stop at "not implemented". */
	tcase_add_loop_test(tc, test_flags_not_implemented, TEST_FLAGS_FIRST_TODO,
	    TEST_FLAGS_NDAEMONS);
	tcase_add_loop_test(tc, test_flags_config_values, TEST_FLAGS_FIRST_TODO,
	    TEST_FLAGS_NDAEMONS);
	suite_add_tcase(s, tc);

	tc = tcase_create("bad input");
	tcase_add_checked_fixture(tc, test_flags_setup, test_flags_teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_loop_test(tc, test_flags_unknown_flag, 0, TEST_FLAGS_NDAEMONS);
	tcase_add_loop_test(tc, test_flags_bad_value, 0, TEST_FLAGS_NDAEMONS);
	tcase_add_loop_test(tc, test_flags_bad_config, 0, TEST_FLAGS_NDAEMONS);
	tcase_add_test(tc, test_flags_reaperd_tick_ms);
	tcase_add_test(tc, test_flags_bad_ready_fd);
	suite_add_tcase(s, tc);
	return s;
}
