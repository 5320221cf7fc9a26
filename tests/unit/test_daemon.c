/* common/daemon: flags, config order, the listening socket and readiness. */
#include "tests/lib/testlib.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <systemd/sd-daemon.h>

#include "common/daemon.h"
#include "common/log.h"
#include "common/sock.h"

TEST_SUITE(daemon_suite)

struct test_daemon_config {
	int64_t count;
	int64_t wait_ms;
	char *label;
};

static const struct config_key test_daemon_keys[] = {
	{ "count", CONFIG_INT, "3",
	    offsetof(struct test_daemon_config, count), 0, 100, "how many" },
	{ "wait_ms", CONFIG_MS, "250",
	    offsetof(struct test_daemon_config, wait_ms), 1, 100000, "how long" },
	{ "label", CONFIG_STR, NULL,
	    offsetof(struct test_daemon_config, label), 0, 0, "what" },
	CONFIG_KEY_END
};

static char *test_daemon_dir;
static char test_daemon_data[4096];
static struct test_daemon_config test_daemon_cfg;
static struct daemon_opts test_daemon_opts;

/* Exit tests end in daemon_init's exit(): the teardown never runs then. */
static void
test_daemon_atexit(void)
{
	if (test_daemon_dir != NULL)
		testlib_rmrf(test_daemon_dir);
}

static void
test_daemon_setup(void)
{
	test_daemon_dir = testlib_tmpdir();
	atexit(test_daemon_atexit);
	snprintf(test_daemon_data, sizeof(test_daemon_data), "%s/data",
	    test_daemon_dir);
	memset(&test_daemon_cfg, 0, sizeof(test_daemon_cfg));
	unsetenv("AO_DATA_DIR");
	unsetenv("AO_RUNTIME_DIR");
	unsetenv("AO_CONFIG");
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_PID");
	unsetenv("NOTIFY_SOCKET");
	setenv("HOME", test_daemon_dir, 1);
	/* --help and fatal messages would clutter the test output. */
	if (freopen("/dev/null", "w", stdout) == NULL ||
	    freopen("/dev/null", "w", stderr) == NULL)
		abort();
}

static void
test_daemon_teardown(void)
{
	testlib_rmrf(test_daemon_dir);
	free(test_daemon_dir);
	test_daemon_dir = NULL;
}

static void
test_daemon_write(const char *name, const char *text)
{
	char path[4200];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", test_daemon_dir, name);
	f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fputs(text, f);
	fclose(f);
}

/* Runs daemon_init on a NULL-terminated argument list after "ao-testd". */
static void
test_daemon_run(const char *arg, ...)
{
	char *argv[32];
	va_list ap;
	int argc = 0;

	argv[argc++] = "ao-testd";
	va_start(ap, arg);
	for (; arg != NULL && argc < 31; arg = va_arg(ap, const char *))
		argv[argc++] = (char *)arg;
	va_end(ap);
	argv[argc] = NULL;
	daemon_init(&test_daemon_opts, argc, argv, "testd", "A test daemon.",
	    test_daemon_keys, &test_daemon_cfg);
}

static mode_t
test_daemon_mode(const char *path)
{
	struct stat st;

	ck_assert_int_eq(stat(path, &st), 0);
	return st.st_mode & 07777;
}

START_TEST(test_daemon_defaults)
{
	char run[4200];

	test_daemon_run("--data-dir", test_daemon_data, NULL);
	ck_assert_str_eq(test_daemon_opts.component, "testd");
	ck_assert_str_eq(test_daemon_opts.progname, "ao-testd");
	ck_assert_str_eq(log_component(), "ao-testd");
	ck_assert_int_eq(test_daemon_opts.verbose, 0);
	ck_assert_int_eq(test_daemon_opts.ready_fd, -1);
	ck_assert_ptr_null(test_daemon_opts.config_path);
	ck_assert_int_eq(test_daemon_cfg.count, 3);
	ck_assert_int_eq(test_daemon_cfg.wait_ms, 250);
	ck_assert_str_eq(test_daemon_cfg.label, "");
	ck_assert_str_eq(test_daemon_opts.paths.data_dir, test_daemon_data);
	snprintf(run, sizeof(run), "%s/run", test_daemon_data);
	ck_assert_str_eq(test_daemon_opts.paths.runtime_dir, run);
	ck_assert_uint_eq(test_daemon_mode(test_daemon_data), 0700);
	ck_assert_uint_eq(test_daemon_mode(run), 0700);
	daemon_opts_free(&test_daemon_opts);
	config_free(test_daemon_keys, &test_daemon_cfg);
}
END_TEST

START_TEST(test_daemon_home_default)
{
	char want[4200];

	test_daemon_run(NULL);
	snprintf(want, sizeof(want), "%s/.local/state/ao", test_daemon_dir);
	ck_assert_str_eq(test_daemon_opts.paths.data_dir, want);
	ck_assert_uint_eq(test_daemon_mode(want), 0700);
	daemon_opts_free(&test_daemon_opts);
	config_free(test_daemon_keys, &test_daemon_cfg);
}
END_TEST

START_TEST(test_daemon_all_flags)
{
	char conf[4200], rt[4200], fd[16];
	int p[2];

	test_daemon_write("ao.ini", "[testd]\ncount = 7\nwait_ms = 9\n"
	    "label = file\n[lcmd]\nmax_sessions = 1\n");
	snprintf(conf, sizeof(conf), "%s/ao.ini", test_daemon_dir);
	snprintf(rt, sizeof(rt), "%s/rt", test_daemon_dir);
	ck_assert_int_eq(pipe(p), 0);
	snprintf(fd, sizeof(fd), "%d", p[1]);
	/* Command-line keys come before --config and still win over it. */
	test_daemon_run("--count=11", "--label", "cli", "-v",
	    "--config", conf, "--data-dir", test_daemon_data,
	    "--runtime-dir", rt, "--ready-fd", fd, NULL);
	ck_assert_int_eq(test_daemon_cfg.count, 11);
	ck_assert_int_eq(test_daemon_cfg.wait_ms, 9);
	ck_assert_str_eq(test_daemon_cfg.label, "cli");
	ck_assert_int_eq(test_daemon_opts.verbose, 1);
	ck_assert_int_eq(log_getverbose(), 1);
	ck_assert_str_eq(test_daemon_opts.config_path, conf);
	ck_assert_str_eq(test_daemon_opts.paths.runtime_dir, rt);
	ck_assert_uint_eq(test_daemon_mode(rt), 0700);
	ck_assert_int_eq(test_daemon_opts.ready_fd, p[1]);
	ck_assert(fcntl(p[1], F_GETFD) & FD_CLOEXEC);
	daemon_opts_free(&test_daemon_opts);
	ck_assert_ptr_null(test_daemon_opts.config_path);
	ck_assert_int_eq(test_daemon_opts.ready_fd, -1);
	ck_assert_int_eq(fcntl(p[1], F_GETFD), -1);
	config_free(test_daemon_keys, &test_daemon_cfg);
	close(p[0]);
}
END_TEST

START_TEST(test_daemon_env_config)
{
	char conf[4200];

	test_daemon_write("env.ini", "[testd]\nwait-ms = 42\n");
	snprintf(conf, sizeof(conf), "%s/env.ini", test_daemon_dir);
	setenv("AO_CONFIG", conf, 1);
	setenv("AO_DATA_DIR", test_daemon_data, 1);
	test_daemon_run("--wait-ms", "43", NULL);
	ck_assert_int_eq(test_daemon_cfg.wait_ms, 43);
	ck_assert_str_eq(test_daemon_opts.config_path, conf);
	ck_assert_str_eq(test_daemon_opts.paths.data_dir, test_daemon_data);
	daemon_opts_free(&test_daemon_opts);
	config_free(test_daemon_keys, &test_daemon_cfg);

	memset(&test_daemon_cfg, 0, sizeof(test_daemon_cfg));
	test_daemon_run(NULL);
	ck_assert_int_eq(test_daemon_cfg.wait_ms, 42);
	daemon_opts_free(&test_daemon_opts);
	config_free(test_daemon_keys, &test_daemon_cfg);

	/* An empty AO_CONFIG means none. */
	setenv("AO_CONFIG", "", 1);
	memset(&test_daemon_cfg, 0, sizeof(test_daemon_cfg));
	test_daemon_run(NULL);
	ck_assert_ptr_null(test_daemon_opts.config_path);
	ck_assert_int_eq(test_daemon_cfg.wait_ms, 250);
	daemon_opts_free(&test_daemon_opts);
	config_free(test_daemon_keys, &test_daemon_cfg);
}
END_TEST

START_TEST(test_daemon_help)
{
	test_daemon_run("--count=abc", "--help", NULL);
}
END_TEST

START_TEST(test_daemon_short_help)
{
	test_daemon_run("-h", NULL);
}
END_TEST

START_TEST(test_daemon_version)
{
	test_daemon_run("--version", "--bogus", NULL);
}
END_TEST

START_TEST(test_daemon_listen_bound)
{
	char path[4200];
	int fd, fd2, c;

	test_daemon_run("--data-dir", test_daemon_data, NULL);
	fd = daemon_listen(&test_daemon_opts, "testd.sock");
	ck_assert_int_ge(fd, 0);
	ck_assert(fcntl(fd, F_GETFL) & O_NONBLOCK);
	snprintf(path, sizeof(path), "%s/run/testd.sock", test_daemon_data);
	ck_assert_uint_eq(test_daemon_mode(path), 0600);
	ck_assert_int_eq(testlib_wait_socket(path, 1000), 0);

	/* Closed without unlinking, the socket is stale: bound again. */
	close(fd);
	fd2 = daemon_listen(&test_daemon_opts, "testd.sock");
	ck_assert_int_ge(fd2, 0);
	c = accept(fd2, NULL, NULL);
	ck_assert_int_eq(c, -1);
	ck_assert_int_eq(errno, EAGAIN);

	/* A live instance: this one exits 100. */
	daemon_listen(&test_daemon_opts, "testd.sock");
}
END_TEST

START_TEST(test_daemon_listen_too_long)
{
	char rt[300];
	size_t n;

	n = (size_t)snprintf(rt, sizeof(rt), "%s/", test_daemon_dir);
	memset(rt + n, 'r', sizeof(rt) - n);
	rt[100] = '\0';
	test_daemon_run("--data-dir", test_daemon_data, "--runtime-dir", rt,
	    NULL);
	daemon_listen(&test_daemon_opts, "a-long-socket-name.sock");
}
END_TEST

/*
 * Socket activation takes over fd 3, which Check's forked test process may
 * use, so it runs in a grandchild reporting through its exit status:
 * 0 ok, 1 setup failed, 2 wrong fd, 3 not non-blocking, 4 LISTEN_FDS kept.
 */
static int
test_daemon_activated(int use_pipe)
{
	char err[256], path[4200];
	pid_t pid;
	int fd, status, p[2];

	snprintf(path, sizeof(path), "%s/act.sock", test_daemon_dir);
	if ((pid = fork()) == -1)
		return -1;
	if (pid == 0) {
		char pidbuf[32];

		if (use_pipe) {
			if (pipe(p) == -1)
				_exit(1);
			fd = p[0];
		} else if ((fd = sock_listen_unix(path, 4, err,
		    sizeof(err))) == -1 || sock_set_nonblock(fd, 0) == -1)
			_exit(1);
		if (fd != SD_LISTEN_FDS_START &&
		    dup2(fd, SD_LISTEN_FDS_START) == -1)
			_exit(1);
		snprintf(pidbuf, sizeof(pidbuf), "%ld", (long)getpid());
		setenv("LISTEN_PID", pidbuf, 1);
		setenv("LISTEN_FDS", "1", 1);
		fd = daemon_listen(&test_daemon_opts, "unused.sock");
		if (fd != SD_LISTEN_FDS_START)
			_exit(2);
		if (!(fcntl(fd, F_GETFL) & O_NONBLOCK))
			_exit(3);
		if (getenv("LISTEN_FDS") != NULL)
			_exit(4);
		_exit(0);
	}
	if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status))
		return -1;
	return WEXITSTATUS(status);
}

START_TEST(test_daemon_listen_activated)
{
	test_daemon_run("--data-dir", test_daemon_data, NULL);
	ck_assert_int_eq(test_daemon_activated(0), 0);
	/* A pipe handed over instead of a listening socket. */
	ck_assert_int_eq(test_daemon_activated(1), EXIT_PERM);
}
END_TEST

START_TEST(test_daemon_ready_notifies)
{
	struct sockaddr_un sa;
	char buf[64], fd[16];
	ssize_t n;
	int p[2], s;

	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	ck_assert_int_lt(snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/notify",
	    test_daemon_dir), (int)sizeof(sa.sun_path));
	s = socket(AF_UNIX, SOCK_DGRAM, 0);
	ck_assert_int_ge(s, 0);
	ck_assert_int_eq(bind(s, (struct sockaddr *)&sa, sizeof(sa)), 0);
	setenv("NOTIFY_SOCKET", sa.sun_path, 1);

	ck_assert_int_eq(pipe(p), 0);
	snprintf(fd, sizeof(fd), "%d", p[1]);
	test_daemon_run("--data-dir", test_daemon_data, "--ready-fd", fd, NULL);
	daemon_ready(&test_daemon_opts);
	ck_assert_int_eq(test_daemon_opts.ready_fd, -1);
	ck_assert_int_eq(read(p[0], buf, sizeof(buf)), 1);
	ck_assert_int_eq(buf[0], '\n');
	/* The write end is closed: EOF. */
	ck_assert_int_eq(read(p[0], buf, sizeof(buf)), 0);
	n = recv(s, buf, sizeof(buf) - 1, MSG_DONTWAIT);
	ck_assert_int_gt(n, 0);
	buf[n] = '\0';
	ck_assert_str_eq(buf, "READY=1");

	/* Again: nothing to write, still harmless. */
	daemon_ready(&test_daemon_opts);
	close(p[0]);
	close(s);
	daemon_opts_free(&test_daemon_opts);
	config_free(test_daemon_keys, &test_daemon_cfg);
}
END_TEST

START_TEST(test_daemon_ready_reader_gone)
{
	char fd[16];
	int p[2];

	ck_assert_int_eq(pipe(p), 0);
	close(p[0]);
	snprintf(fd, sizeof(fd), "%d", p[1]);
	test_daemon_run("--data-dir", test_daemon_data, "--ready-fd", fd, NULL);
	/* EPIPE is logged, not a SIGPIPE death. */
	daemon_ready(&test_daemon_opts);
	ck_assert_int_eq(test_daemon_opts.ready_fd, -1);
	daemon_opts_free(&test_daemon_opts);
	config_free(test_daemon_keys, &test_daemon_cfg);
}
END_TEST

/* Each of these exits EXIT_PERM from daemon_init. */
static const char *const test_daemon_bad[][5] = {
	{ "--bogus", NULL },
	{ "--bogus=1", NULL },
	{ "-x", NULL },
	{ "stray", NULL },
	{ "--", NULL },
	{ "--=x", NULL },
	{ "--count", NULL },
	{ "--count=abc", NULL },
	{ "--count", "101", NULL },
	{ "--wait-ms=", NULL },
	{ "--data-dir", NULL },
	{ "--data-dir=", NULL },
	{ "--runtime-dir=", NULL },
	{ "--config=", NULL },
	{ "--config=/nonexistent/ao.ini", NULL },
	{ "--ready-fd=999", NULL },
	{ "--ready-fd=x", NULL },
	{ "--ready-fd=-1", NULL },
	{ "--ready-fd=99999999999", NULL },
	{ "--ready-fd=0", "--ready-fd=0", NULL },
	{ "--verbose=1", NULL },
	{ "--help=1", NULL },
	{ "--data-dir=/proc/self/nope", NULL },
	{ "--runtime-dir=/proc/self/nope", NULL },
};

START_TEST(test_daemon_bad_flags)
{
	const char *const *a = test_daemon_bad[_i];

	test_daemon_run(a[0], a[1], a[2], a[3], NULL);
}
END_TEST

START_TEST(test_daemon_bad_config_file)
{
	char conf[4200];

	test_daemon_write("bad.ini", "[testd]\nnope = 1\n");
	snprintf(conf, sizeof(conf), "%s/bad.ini", test_daemon_dir);
	test_daemon_run("--config", conf, "--data-dir", test_daemon_data, NULL);
}
END_TEST

START_TEST(test_daemon_no_home)
{
	unsetenv("HOME");
	unsetenv("XDG_STATE_HOME");
	test_daemon_run(NULL);
}
END_TEST

Suite *
daemon_suite(void)
{
	Suite *s = suite_create("daemon");
	TCase *tc;

	tc = tcase_create("init");
	tcase_add_checked_fixture(tc, test_daemon_setup, test_daemon_teardown);
	tcase_set_timeout(tc, 10);
	tcase_add_test(tc, test_daemon_defaults);
	tcase_add_test(tc, test_daemon_home_default);
	tcase_add_test(tc, test_daemon_all_flags);
	tcase_add_test(tc, test_daemon_env_config);
	tcase_add_exit_test(tc, test_daemon_help, 0);
	tcase_add_exit_test(tc, test_daemon_short_help, 0);
	tcase_add_exit_test(tc, test_daemon_version, 0);
	suite_add_tcase(s, tc);

	tc = tcase_create("listen");
	tcase_add_checked_fixture(tc, test_daemon_setup, test_daemon_teardown);
	tcase_set_timeout(tc, 10);
	tcase_add_exit_test(tc, test_daemon_listen_bound, EXIT_PERM);
	tcase_add_exit_test(tc, test_daemon_listen_too_long, EXIT_PERM);
	tcase_add_test(tc, test_daemon_listen_activated);
	tcase_add_test(tc, test_daemon_ready_notifies);
	tcase_add_test(tc, test_daemon_ready_reader_gone);
	suite_add_tcase(s, tc);

	tc = tcase_create("bad input");
	tcase_add_checked_fixture(tc, test_daemon_setup, test_daemon_teardown);
	tcase_set_timeout(tc, 10);
	tcase_add_loop_exit_test(tc, test_daemon_bad_flags, EXIT_PERM, 0,
	    sizeof(test_daemon_bad) / sizeof(test_daemon_bad[0]));
	tcase_add_exit_test(tc, test_daemon_bad_config_file, EXIT_PERM);
	tcase_add_exit_test(tc, test_daemon_no_home, EXIT_PERM);
	suite_add_tcase(s, tc);
	return s;
}
