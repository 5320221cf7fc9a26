/* common/subprocess.c: capture, stdin, env, cwd, timeouts, exec failures. */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <event2/event.h>

#include "common/aotime.h"
#include "common/subprocess.h"
#include "tests/lib/testlib.h"

static struct event_base *base;

struct outcome {
	int done;
	struct subprocess_result r;
	char out[70000], err[4096];
};

static void
on_done(const struct subprocess_result *r, void *arg)
{
	struct outcome *o = arg;

	o->done++;
	o->r = *r;
	memcpy(o->out, r->out, r->out_len + 1);
	memcpy(o->err, r->err, r->err_len + 1);
	o->r.out = o->out;
	o->r.err = o->err;
}

static void
setup(void)
{
	base = event_base_new();
}

static void
teardown(void)
{
	event_base_free(base);
}

/* Runs the loop until the callback ran or timeout_ms passed. */
static void
run(struct outcome *o, int64_t timeout_ms)
{
	int64_t deadline = aotime_mono_ms() + timeout_ms;
	struct timeval tv = { 0, 10000 };

	while (o->done == 0 && aotime_mono_ms() < deadline)
		event_base_loopexit(base, &tv), event_base_dispatch(base);
	ck_assert_int_eq(o->done, 1);
}

static struct subprocess *
start(const char *const *argv, struct subprocess_opts *o, struct outcome *out)
{
	char err[256];
	struct subprocess *sp;

	o->argv = argv;
	memset(out, 0, sizeof(*out));
	sp = subprocess_start(base, o, on_done, out, err, sizeof(err));
	ck_assert_msg(sp != NULL, "%s", err);
	return sp;
}

/*
 * Children start with the RLIMIT_NOFILE soft limit set for them (a daemon
 * raised its own), the hard one untouched.
 */
START_TEST(child_nofile)
{
	static const char *const argv[] = { "sh", "-c", "ulimit -Sn", NULL };
	struct subprocess_opts o = { 0 };
	static struct outcome out;

	subprocess_set_child_nofile(77);
	start(argv, &o, &out);
	run(&out, 5000);
	ck_assert_str_eq(out.out, "77\n");
	subprocess_set_child_nofile(0);
}
END_TEST

START_TEST(capture_and_status)
{
	static const char *const argv[] = { "sh", "-c",
		"echo out; echo err >&2; exit 3", NULL };
	struct subprocess_opts o = { 0 };
	static struct outcome out;
	char desc[128];

	start(argv, &o, &out);
	ck_assert_int_eq(out.done, 0);	/* never before the loop runs */
	run(&out, 5000);
	ck_assert(WIFEXITED(out.r.status));
	ck_assert_int_eq(WEXITSTATUS(out.r.status), 3);
	ck_assert_str_eq(out.out, "out\n");
	ck_assert_str_eq(out.err, "err\n");
	ck_assert(!out.r.timed_out);
	subprocess_describe(&out.r, desc, sizeof(desc));
	ck_assert_str_eq(desc, "exited 3");
}
END_TEST

START_TEST(stdin_env_cwd)
{
	static const char *const argv[] = { "sh", "-c",
		"cat; printf ' %s %s ' \"$AO_TEST_X\" \"$HOME\"; pwd", NULL };
	static const char *const env[] = { "AO_TEST_X=yes", "HOME=/nowhere", NULL };
	struct subprocess_opts o = { 0 };
	static struct outcome out;

	o.input = "hello";
	o.input_len = 5;
	o.env = env;
	o.cwd = "/tmp";
	start(argv, &o, &out);
	run(&out, 5000);
	ck_assert_str_eq(out.out, "hello yes /nowhere /tmp\n");
}
END_TEST

/* A big input the child reads slowly, and output past the cap. */
START_TEST(big_input_and_truncation)
{
	static const char *const argv[] = { "sh", "-c", "cat; head -c 100000 /dev/zero",
		NULL };
	struct subprocess_opts o = { 0 };
	static struct outcome out;
	static char input[300000];

	memset(input, 'i', sizeof(input));
	o.input = input;
	o.input_len = sizeof(input);
	o.capture_max = 1000;
	start(argv, &o, &out);
	run(&out, 10000);
	ck_assert_uint_eq(out.r.out_len, 1000);
	ck_assert(out.r.out_truncated);
	ck_assert(WIFEXITED(out.r.status) && WEXITSTATUS(out.r.status) == 0);
}
END_TEST

/* Alive and not a zombie (an orphan waits for init to reap it). */
static bool
running(pid_t pid)
{
	char path[64], *stat, *p;
	bool alive;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if ((stat = testlib_read_file(path)) == NULL)
		return false;
	p = strrchr(stat, ')');
	alive = p != NULL && p[1] == ' ' && p[2] != 'Z' && p[2] != 'X';
	free(stat);
	return alive;
}

/* The timeout kills the whole group, grandchildren included. */
START_TEST(timeout_kills_group)
{
	static const char *const argv[] = { "sh", "-c",
		"sleep 30 & echo $! ; wait", NULL };
	struct subprocess_opts o = { 0 };
	static struct outcome out;
	int64_t t0 = aotime_mono_ms();
	pid_t grandchild;

	o.timeout_ms = 200;
	start(argv, &o, &out);
	run(&out, 5000);
	ck_assert(out.r.timed_out);
	ck_assert(WIFSIGNALED(out.r.status));
	ck_assert_int_lt(aotime_mono_ms() - t0, 3000);
	grandchild = atoi(out.out);
	ck_assert_int_gt(grandchild, 0);
	usleep(100000);
	ck_assert_msg(!running(grandchild), "grandchild %d survived", (int)grandchild);
}
END_TEST

START_TEST(cancel)
{
	static const char *const argv[] = { "sleep", "30", NULL };
	struct subprocess_opts o = { 0 };
	static struct outcome out;
	struct subprocess *sp = start(argv, &o, &out);
	pid_t pid = subprocess_pid(sp);
	struct timeval tv = { 0, 100000 };

	subprocess_cancel(sp);
	ck_assert(!running(pid));
	event_base_loopexit(base, &tv);
	event_base_dispatch(base);
	ck_assert_int_eq(out.done, 0);
}
END_TEST

/* Many at once: each completes with its own output. */
START_TEST(parallel)
{
	static struct outcome out[20];
	struct subprocess_opts o = { 0 };
	char err[128], arg[20][32];
	const char *argv[20][4];
	int i, done;
	int64_t deadline = aotime_mono_ms() + 10000;

	for (i = 0; i < 20; i++) {
		snprintf(arg[i], sizeof(arg[i]), "echo %d", i);
		argv[i][0] = "sh";
		argv[i][1] = "-c";
		argv[i][2] = arg[i];
		argv[i][3] = NULL;
		o.argv = argv[i];
		memset(&out[i], 0, sizeof(out[i]));
		ck_assert_ptr_nonnull(subprocess_start(base, &o, on_done, &out[i], err,
		    sizeof(err)));
	}
	do {
		struct timeval tv = { 0, 10000 };

		event_base_loopexit(base, &tv);
		event_base_dispatch(base);
		for (done = 0, i = 0; i < 20; i++)
			done += out[i].done;
	} while (done < 20 && aotime_mono_ms() < deadline);
	for (i = 0; i < 20; i++) {
		char want[16];

		snprintf(want, sizeof(want), "%d\n", i);
		ck_assert_str_eq(out[i].out, want);
	}
}
END_TEST

START_TEST(bad_input)
{
	static const char *const missing[] = { "/nonexistent/ao-no-such-binary", NULL };
	static const char *const empty[] = { "", NULL };
	static const char *const nocwd[] = { "true", NULL };
	struct subprocess_opts o = { 0 };
	static struct outcome out;
	char err[128], desc[128];

	start(missing, &o, &out);
	run(&out, 5000);
	ck_assert(out.r.start_failed);
	subprocess_describe(&out.r, desc, sizeof(desc));
	ck_assert_str_eq(desc, "could not start: No such file or directory");

	o.argv = empty;
	ck_assert_ptr_null(subprocess_start(base, &o, on_done, &out, err, sizeof(err)));
	o.argv = NULL;
	ck_assert_ptr_null(subprocess_start(base, &o, on_done, &out, err, sizeof(err)));

	ck_assert(subprocess_runnable("sh"));
	ck_assert(subprocess_runnable("/bin/sh"));
	ck_assert(!subprocess_runnable("ao-no-such-program"));
	ck_assert(!subprocess_runnable("/nonexistent/sh"));
	ck_assert(!subprocess_runnable(""));
	ck_assert(!subprocess_runnable(NULL));

	o.cwd = "/nonexistent-dir";
	start(nocwd, &o, &out);
	run(&out, 5000);
	ck_assert(out.r.start_failed);
}
END_TEST

Suite *
subprocess_suite(void)
{
	Suite *s = suite_create("subprocess");
	TCase *tc = tcase_create("run");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 20);
	tcase_add_test(tc, capture_and_status);
	tcase_add_test(tc, stdin_env_cwd);
	tcase_add_test(tc, big_input_and_truncation);
	tcase_add_test(tc, timeout_kills_group);
	tcase_add_test(tc, cancel);
	tcase_add_test(tc, parallel);
	tcase_add_test(tc, child_nofile);
	suite_add_tcase(s, tc);
	tc = tcase_create("bad input");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 20);
	tcase_add_test(tc, bad_input);
	suite_add_tcase(s, tc);
	return s;
}
TEST_SUITE(subprocess_suite)
