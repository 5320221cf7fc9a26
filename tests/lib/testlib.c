#include "tests/lib/testlib.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "common/aotime.h"
#include "common/sock.h"

#define MAX_SUITES 64
#define MAX_PIDS 64

static Suite *(*suites[MAX_SUITES])(void);
static int nsuites;
static pid_t pids[MAX_PIDS];
static int npids;

void
testlib_register(Suite *(*fn)(void))
{
	if (nsuites < MAX_SUITES)
		suites[nsuites++] = fn;
}

int
testlib_run(const char *name)
{
	SRunner *sr = NULL;
	int i, failed;

	signal(SIGPIPE, SIG_IGN);
	for (i = 0; i < nsuites; i++) {
		Suite *s = suites[i]();

		if (sr == NULL)
			sr = srunner_create(s);
		else
			srunner_add_suite(sr, s);
	}
	if (sr == NULL) {
		fprintf(stderr, "%s: no suites registered\n", name);
		return 1;
	}
	/* CK_RUN_SUITE / CK_RUN_CASE in the environment select what runs. */
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? 0 : 1;
}

char *
testlib_tmpdir(void)
{
	char *t = strdup("/tmp/aoT.XXXXXX");

	if (t == NULL || mkdtemp(t) == NULL)
		abort();
	return t;
}

void
testlib_rmrf(const char *path)
{
	struct stat st;
	DIR *d;
	struct dirent *de;

	if (lstat(path, &st) == -1)
		return;
	if (S_ISDIR(st.st_mode) && (d = opendir(path)) != NULL) {
		while ((de = readdir(d)) != NULL) {
			char sub[4096];

			if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
				continue;
			snprintf(sub, sizeof(sub), "%s/%s", path, de->d_name);
			testlib_rmrf(sub);
		}
		closedir(d);
		rmdir(path);
	} else
		unlink(path);
}

static const char *
pathin(const char *envname, const char *fallback, const char *name, char *buf, size_t len)
{
	const char *dir = getenv(envname);

	snprintf(buf, len, "%s/%s", dir != NULL ? dir : fallback, name);
	return buf;
}

const char *
testlib_bin(const char *name)
{
	static char buf[8][4096];
	static int n;

	return pathin("AO_BIN_DIR", "bin", name, buf[n++ % 8], sizeof(buf[0]));
}

const char *
testlib_helper(const char *name)
{
	static char buf[8][4096];
	static int n;

	return pathin("AO_TEST_DIR", "build/release/tests", name, buf[n++ % 8],
	    sizeof(buf[0]));
}

const char *
testlib_source(const char *name)
{
	static char buf[8][4096];
	static int n;

	return pathin("AO_SRC_DIR", ".", name, buf[n++ % 8], sizeof(buf[0]));
}

static void
forget(pid_t pid)
{
	int i;

	for (i = 0; i < npids; i++)
		if (pids[i] == pid) {
			pids[i] = pids[--npids];
			return;
		}
}

void
testlib_reap_all(void)
{
	while (npids > 0) {
		pid_t pid = pids[npids - 1];

		testlib_stop(pid, SIGKILL, 2000);
		forget(pid);
	}
}

pid_t
testlib_spawn(char *const argv[], int *ready_fd)
{
	static int atexit_done;
	int p[2] = { -1, -1 };
	pid_t pid, parent = getpid();
	char *args[64];
	char fdarg[16];
	int n = 0;

	if (!atexit_done) {
		atexit(testlib_reap_all);
		atexit_done = 1;
	}
	while (argv[n] != NULL && n < 60) {
		args[n] = argv[n];
		n++;
	}
	if (ready_fd != NULL) {
		if (pipe2(p, O_CLOEXEC) == -1)
			return -1;
		args[n++] = "--ready-fd";
		args[n++] = fdarg;
	}
	args[n] = NULL;
	fflush(NULL);
	if ((pid = fork()) == -1)
		return -1;
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(127);
		signal(SIGPIPE, SIG_DFL);
		if (ready_fd != NULL) {
			int w = dup(p[1]);	/* without O_CLOEXEC */

			snprintf(fdarg, sizeof(fdarg), "%d", w);
		}
		execv(args[0], args);
		fprintf(stderr, "exec %s: %s\n", args[0], strerror(errno));
		_exit(127);
	}
	if (ready_fd != NULL) {
		close(p[1]);
		*ready_fd = p[0];
	}
	if (npids < MAX_PIDS)
		pids[npids++] = pid;
	return pid;
}

int
testlib_wait_ready(int fd, int timeout_ms)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	char c;

	if (poll(&pfd, 1, timeout_ms) != 1)
		return -1;
	return read(fd, &c, 1) == 1 ? 0 : -1;
}

int
testlib_wait(pid_t pid, int timeout_ms)
{
	int64_t deadline = aotime_mono_ms() + timeout_ms;
	int status;

	for (;;) {
		pid_t r = waitpid(pid, &status, WNOHANG);

		if (r == pid) {
			forget(pid);
			return status;
		}
		if (r == -1)
			return -1;
		if (aotime_mono_ms() >= deadline)
			return -1;
		usleep(2000);
	}
}

int
testlib_stop(pid_t pid, int sig, int timeout_ms)
{
	int status;

	kill(pid, sig);
	if ((status = testlib_wait(pid, timeout_ms)) != -1)
		return status;
	kill(pid, SIGKILL);
	return testlib_wait(pid, 5000);
}

int
testlib_wait_socket(const char *path, int timeout_ms)
{
	int64_t deadline = aotime_mono_ms() + timeout_ms;
	char err[256];

	for (;;) {
		int fd = sock_connect_unix(path, 0, err, sizeof(err));

		if (fd != -1) {
			close(fd);
			return 0;
		}
		if (aotime_mono_ms() >= deadline)
			return -1;
		usleep(5000);
	}
}

char *
testlib_read_file(const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf = NULL;
	size_t len = 0, cap = 0, n;

	if (f == NULL)
		return NULL;
	/* Read to EOF: /proc files report size 0. */
	do {
		if (cap - len < 4096) {
			cap = cap * 2 + 8192;
			buf = realloc(buf, cap + 1);
			if (buf == NULL)
				abort();
		}
		n = fread(buf + len, 1, cap - len, f);
		len += n;
	} while (n > 0);
	fclose(f);
	buf[len] = '\0';
	return buf;
}

static void
tick_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
}

struct event_base *
testlib_base_new(struct event **tick)
{
	struct timeval tv = { 0, 5000 };
	struct event_base *base = event_base_new();

	if (base == NULL || (*tick = event_new(base, -1, EV_PERSIST, tick_cb,
	    NULL)) == NULL || event_add(*tick, &tv) == -1)
		ck_abort_msg("cannot set up an event base");
	return base;
}

void
testlib_base_free(struct event_base *base, struct event *tick)
{
	event_free(tick);
	event_base_loop(base, EVLOOP_NONBLOCK);
	event_base_free(base);
}
