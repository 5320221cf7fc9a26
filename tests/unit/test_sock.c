/* common/sock: Unix socket helpers and private directories. */
#include "tests/lib/testlib.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/sock.h"

TEST_SUITE(sock_suite)

/* An unprivileged uid for the tests that need a stranger (run as root). */
#define TEST_SOCK_NOBODY 65534

static char *test_sock_dir;
static char test_sock_err[512];

static void
test_sock_setup(void)
{
	test_sock_dir = testlib_tmpdir();
	test_sock_err[0] = '\0';
}

static void
test_sock_teardown(void)
{
	testlib_rmrf(test_sock_dir);
	free(test_sock_dir);
}

/* "<tmpdir>/<name>" in a static buffer. */
static const char *
test_sock_path(const char *name)
{
	static char buf[4096];

	snprintf(buf, sizeof(buf), "%s/%s", test_sock_dir, name);
	return buf;
}

static mode_t
test_sock_mode(const char *path)
{
	struct stat st;

	ck_assert_int_eq(lstat(path, &st), 0);
	return st.st_mode & 07777;
}

/* Leaves a socket file behind with nobody listening on it. */
static void
test_sock_make_stale(const char *path)
{
	struct sockaddr_un sa;
	int fd;

	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	ck_assert_int_eq(listen(fd, 1), 0);
	close(fd);
}

START_TEST(test_sock_mkdir_creates_nested)
{
	char path[4096];

	snprintf(path, sizeof(path), "%s/a/b/c", test_sock_dir);
	ck_assert_int_eq(sock_mkdir_private(path, test_sock_err,
	    sizeof(test_sock_err)), 0);
	ck_assert_uint_eq(test_sock_mode(path), 0700);
	/* Idempotent. */
	ck_assert_int_eq(sock_mkdir_private(path, test_sock_err,
	    sizeof(test_sock_err)), 0);
	ck_assert_uint_eq(test_sock_mode(path), 0700);
}
END_TEST

START_TEST(test_sock_mkdir_trailing_slash)
{
	char path[4096];

	snprintf(path, sizeof(path), "%s//x/y//", test_sock_dir);
	ck_assert_int_eq(sock_mkdir_private(path, test_sock_err,
	    sizeof(test_sock_err)), 0);
	ck_assert_uint_eq(test_sock_mode(test_sock_path("x/y")), 0700);
}
END_TEST

START_TEST(test_sock_mkdir_tightens_existing)
{
	const char *path = test_sock_path("loose");

	ck_assert_int_eq(mkdir(path, 0755), 0);
	ck_assert_int_eq(chmod(path, 0777), 0);
	ck_assert_int_eq(sock_mkdir_private(path, test_sock_err,
	    sizeof(test_sock_err)), 0);
	ck_assert_uint_eq(test_sock_mode(path), 0700);
}
END_TEST

START_TEST(test_sock_mkdir_despite_umask)
{
	const char *path = test_sock_path("masked");

	umask(0277);
	ck_assert_int_eq(sock_mkdir_private(path, test_sock_err,
	    sizeof(test_sock_err)), 0);
	umask(022);
	ck_assert_uint_eq(test_sock_mode(path), 0700);
}
END_TEST

START_TEST(test_sock_mkdir_not_a_dir)
{
	const char *path = test_sock_path("file");
	char sub[4200];
	FILE *f;

	f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fclose(f);
	ck_assert_int_eq(sock_mkdir_private(path, test_sock_err,
	    sizeof(test_sock_err)), -1);
	ck_assert_int_eq(errno, ENOTDIR);
	ck_assert_ptr_nonnull(strstr(test_sock_err, "not a directory"));

	/* A file in the middle of the path. */
	snprintf(sub, sizeof(sub), "%s/below", path);
	ck_assert_int_eq(sock_mkdir_private(sub, test_sock_err,
	    sizeof(test_sock_err)), -1);
	ck_assert_int_eq(errno, ENOTDIR);
}
END_TEST

START_TEST(test_sock_mkdir_foreign_owner)
{
	const char *path = test_sock_path("theirs");

	ck_assert_int_eq(mkdir(path, 0755), 0);
	if (geteuid() == 0)
		ck_assert_int_eq(chown(path, TEST_SOCK_NOBODY, TEST_SOCK_NOBODY), 0);
	else {
		/* Without root, a directory we cannot own: use a system one. */
		path = "/usr";
	}
	ck_assert_int_eq(sock_mkdir_private(path, test_sock_err,
	    sizeof(test_sock_err)), -1);
	ck_assert_int_eq(errno, EPERM);
	ck_assert_ptr_nonnull(strstr(test_sock_err, "owned by uid"));
	if (geteuid() == 0)
		ck_assert_uint_eq(test_sock_mode(path), 0755);
}
END_TEST

START_TEST(test_sock_listen_basic)
{
	const char *path = test_sock_path("s.sock");
	uid_t uid;
	pid_t pid;
	int lfd, cfd, afd;

	lfd = sock_listen_unix(path, 16, test_sock_err, sizeof(test_sock_err));
	ck_assert_msg(lfd >= 0, "%s", test_sock_err);
	ck_assert_uint_eq(test_sock_mode(path), 0600);
	ck_assert(fcntl(lfd, F_GETFL) & O_NONBLOCK);
	ck_assert(fcntl(lfd, F_GETFD) & FD_CLOEXEC);

	cfd = sock_connect_unix(path, 0, test_sock_err, sizeof(test_sock_err));
	ck_assert_msg(cfd >= 0, "%s", test_sock_err);
	ck_assert(fcntl(cfd, F_GETFD) & FD_CLOEXEC);
	ck_assert(!(fcntl(cfd, F_GETFL) & O_NONBLOCK));

	afd = accept(lfd, NULL, NULL);
	ck_assert_int_ge(afd, 0);
	uid = (uid_t)-1;
	pid = -1;
	ck_assert_int_eq(sock_peer_allowed(afd, &uid, &pid, test_sock_err,
	    sizeof(test_sock_err)), 0);
	ck_assert_uint_eq(uid, geteuid());
	ck_assert_int_eq(pid, getpid());
	ck_assert_int_eq(sock_peer_allowed(afd, NULL, NULL, test_sock_err,
	    sizeof(test_sock_err)), 0);
	close(afd);
	close(cfd);
	close(lfd);
}
END_TEST

START_TEST(test_sock_listen_umask_ignored)
{
	const char *path = test_sock_path("u.sock");
	int fd;

	umask(0);
	fd = sock_listen_unix(path, 1, test_sock_err, sizeof(test_sock_err));
	umask(022);
	ck_assert_msg(fd >= 0, "%s", test_sock_err);
	ck_assert_uint_eq(test_sock_mode(path), 0600);
	ck_assert_int_eq(umask(022), 022);
	close(fd);
}
END_TEST

START_TEST(test_sock_listen_removes_stale)
{
	const char *path = test_sock_path("stale.sock");
	int fd, cfd;

	test_sock_make_stale(path);
	fd = sock_listen_unix(path, 4, test_sock_err, sizeof(test_sock_err));
	ck_assert_msg(fd >= 0, "%s", test_sock_err);
	cfd = sock_connect_unix(path, 1, test_sock_err, sizeof(test_sock_err));
	ck_assert_msg(cfd >= 0, "%s", test_sock_err);
	ck_assert(fcntl(cfd, F_GETFL) & O_NONBLOCK);
	close(cfd);
	close(fd);
}
END_TEST

START_TEST(test_sock_listen_refuses_live)
{
	const char *path = test_sock_path("live.sock");
	int fd, fd2, cfd;

	fd = sock_listen_unix(path, 4, test_sock_err, sizeof(test_sock_err));
	ck_assert_msg(fd >= 0, "%s", test_sock_err);
	errno = 0;
	fd2 = sock_listen_unix(path, 4, test_sock_err, sizeof(test_sock_err));
	ck_assert_int_eq(fd2, -1);
	ck_assert_int_eq(errno, EADDRINUSE);
	ck_assert_ptr_nonnull(strstr(test_sock_err, "another instance is "
	    "listening on"));
	ck_assert_ptr_nonnull(strstr(test_sock_err, path));
	/* The live instance still answers. */
	cfd = sock_connect_unix(path, 0, test_sock_err, sizeof(test_sock_err));
	ck_assert_msg(cfd >= 0, "%s", test_sock_err);
	close(cfd);
	close(fd);
}
END_TEST

START_TEST(test_sock_listen_full_backlog_is_live)
{
	const char *path = test_sock_path("full.sock");
	int fd, i, c[8], n = 0;

	fd = sock_listen_unix(path, 0, test_sock_err, sizeof(test_sock_err));
	ck_assert_msg(fd >= 0, "%s", test_sock_err);
	/* Fill the backlog without accepting. */
	for (i = 0; i < 8; i++) {
		c[i] = sock_connect_unix(path, 1, test_sock_err,
		    sizeof(test_sock_err));
		if (c[i] >= 0)
			n++;
	}
	ck_assert_int_ge(n, 1);
	ck_assert_int_eq(sock_listen_unix(path, 4, test_sock_err,
	    sizeof(test_sock_err)), -1);
	ck_assert_int_eq(errno, EADDRINUSE);
	for (i = 0; i < 8; i++)
		if (c[i] >= 0)
			close(c[i]);
	close(fd);
}
END_TEST

START_TEST(test_sock_listen_keeps_non_socket)
{
	const char *path = test_sock_path("precious");
	char *data;
	FILE *f;

	f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fputs("keep me\n", f);
	fclose(f);
	ck_assert_int_eq(sock_listen_unix(path, 4, test_sock_err,
	    sizeof(test_sock_err)), -1);
	ck_assert_int_eq(errno, EEXIST);
	ck_assert_ptr_nonnull(strstr(test_sock_err, "not a socket"));
	data = testlib_read_file(path);
	ck_assert_ptr_nonnull(data);
	ck_assert_str_eq(data, "keep me\n");
	free(data);

	/* A directory is not removed either. */
	ck_assert_int_eq(mkdir(test_sock_path("d"), 0700), 0);
	ck_assert_int_eq(sock_listen_unix(test_sock_path("d"), 4,
	    test_sock_err, sizeof(test_sock_err)), -1);
	ck_assert_int_eq(errno, EEXIST);
	ck_assert_uint_eq(test_sock_mode(test_sock_path("d")), 0700);
}
END_TEST

START_TEST(test_sock_path_too_long)
{
	char path[300], expect[64];
	size_t max = sizeof(((struct sockaddr_un *)0)->sun_path) - 1;
	size_t n;

	/* <tmpdir>/nodir/aaa...: a parent that does not exist, so no bind. */
	n = (size_t)snprintf(path, sizeof(path), "%s/nodir/", test_sock_dir);
	memset(path + n, 'a', sizeof(path) - n);
	path[max + 1] = '\0';
	snprintf(expect, sizeof(expect), "(%zu bytes, max %zu)", max + 1, max);

	ck_assert_int_eq(sock_listen_unix(path, 4, test_sock_err,
	    sizeof(test_sock_err)), -1);
	ck_assert_int_eq(errno, ENAMETOOLONG);
	ck_assert_ptr_nonnull(strstr(test_sock_err, "socket path too long"));
	ck_assert_ptr_nonnull(strstr(test_sock_err, expect));
	ck_assert_ptr_nonnull(strstr(test_sock_err, path));

	ck_assert_int_eq(sock_connect_unix(path, 0, test_sock_err,
	    sizeof(test_sock_err)), -1);
	ck_assert_int_eq(errno, ENAMETOOLONG);

	/* Exactly max bytes fits: the failure is then the missing parent. */
	path[max] = '\0';
	ck_assert_int_eq(sock_listen_unix(path, 4, test_sock_err,
	    sizeof(test_sock_err)), -1);
	ck_assert_int_eq(errno, ENOENT);
	ck_assert_int_eq(sock_connect_unix(path, 0, test_sock_err,
	    sizeof(test_sock_err)), -1);
	ck_assert_int_eq(errno, ENOENT);
}
END_TEST

START_TEST(test_sock_bad_input)
{
	int p[2];

	ck_assert_int_eq(sock_listen_unix("", 4, test_sock_err,
	    sizeof(test_sock_err)), -1);
	ck_assert_int_eq(errno, EINVAL);
	ck_assert_int_eq(sock_connect_unix("", 0, test_sock_err,
	    sizeof(test_sock_err)), -1);
	ck_assert_int_eq(errno, EINVAL);
	ck_assert_int_eq(sock_mkdir_private("", test_sock_err,
	    sizeof(test_sock_err)), -1);
	ck_assert_int_eq(errno, EINVAL);

	/* Nobody there. */
	ck_assert_int_eq(sock_connect_unix(test_sock_path("none.sock"), 0,
	    test_sock_err, sizeof(test_sock_err)), -1);
	ck_assert_int_eq(errno, ENOENT);
	ck_assert_ptr_nonnull(strstr(test_sock_err, "none.sock"));

	/* A stale socket refuses. */
	test_sock_make_stale(test_sock_path("stale.sock"));
	ck_assert_int_eq(sock_connect_unix(test_sock_path("stale.sock"), 1,
	    test_sock_err, sizeof(test_sock_err)), -1);
	ck_assert_int_eq(errno, ECONNREFUSED);

	/* The parent of the socket does not exist. */
	ck_assert_int_eq(sock_listen_unix(test_sock_path("no/such.sock"), 4,
	    test_sock_err, sizeof(test_sock_err)), -1);
	ck_assert_ptr_nonnull(strstr(test_sock_err, "bind"));

	/* Credentials of something that is not a socket. */
	ck_assert_int_eq(pipe(p), 0);
	ck_assert_int_eq(sock_peer_allowed(p[0], NULL, NULL, test_sock_err,
	    sizeof(test_sock_err)), -1);
	ck_assert_int_eq(errno, ENOTSOCK);
	ck_assert_ptr_nonnull(strstr(test_sock_err, "SO_PEERCRED"));

	ck_assert_int_eq(sock_set_nonblock(p[0], 1), 0);
	ck_assert(fcntl(p[0], F_GETFL) & O_NONBLOCK);
	ck_assert_int_eq(sock_set_nonblock(p[0], 0), 0);
	ck_assert(!(fcntl(p[0], F_GETFL) & O_NONBLOCK));
	close(p[0]);
	close(p[1]);
	ck_assert_int_eq(sock_set_nonblock(p[0], 1), -1);
	ck_assert_int_eq(errno, EBADF);
}
END_TEST

/* A peer running as another uid is refused (needs root to become one). */
START_TEST(test_sock_peer_denied)
{
	const char *path;
	uid_t uid = 0;
	pid_t pid, ppid = 0;
	int lfd, afd, status;

	if (geteuid() != 0)
		return;
	path = test_sock_path("open.sock");
	lfd = sock_listen_unix(path, 4, test_sock_err, sizeof(test_sock_err));
	ck_assert_msg(lfd >= 0, "%s", test_sock_err);
	ck_assert_int_eq(chmod(path, 0777), 0);
	ck_assert_int_eq(chmod(test_sock_dir, 0755), 0);
	ck_assert_int_eq(sock_set_nonblock(lfd, 0), 0);

	if ((pid = fork()) == 0) {
		char err[256];
		int fd;

		if (setgid(TEST_SOCK_NOBODY) == -1 ||
		    setuid(TEST_SOCK_NOBODY) == -1)
			_exit(2);
		fd = sock_connect_unix(path, 0, err, sizeof(err));
		if (fd == -1)
			_exit(3);
		pause();
		_exit(0);
	}
	ck_assert_int_gt(pid, 0);
	afd = accept(lfd, NULL, NULL);
	ck_assert_int_ge(afd, 0);
	ck_assert_int_eq(sock_peer_allowed(afd, &uid, &ppid, test_sock_err,
	    sizeof(test_sock_err)), -1);
	ck_assert_int_eq(errno, EPERM);
	ck_assert_uint_eq(uid, TEST_SOCK_NOBODY);
	ck_assert_int_eq(ppid, pid);
	ck_assert_ptr_nonnull(strstr(test_sock_err, "peer uid 65534"));
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	close(afd);
	close(lfd);
}
END_TEST

Suite *
sock_suite(void)
{
	Suite *s = suite_create("sock");
	TCase *tc;

	tc = tcase_create("mkdir");
	tcase_add_checked_fixture(tc, test_sock_setup, test_sock_teardown);
	tcase_set_timeout(tc, 10);
	tcase_add_test(tc, test_sock_mkdir_creates_nested);
	tcase_add_test(tc, test_sock_mkdir_trailing_slash);
	tcase_add_test(tc, test_sock_mkdir_tightens_existing);
	tcase_add_test(tc, test_sock_mkdir_despite_umask);
	tcase_add_test(tc, test_sock_mkdir_not_a_dir);
	tcase_add_test(tc, test_sock_mkdir_foreign_owner);
	suite_add_tcase(s, tc);

	tc = tcase_create("listen");
	tcase_add_checked_fixture(tc, test_sock_setup, test_sock_teardown);
	tcase_set_timeout(tc, 10);
	tcase_add_test(tc, test_sock_listen_basic);
	tcase_add_test(tc, test_sock_listen_umask_ignored);
	tcase_add_test(tc, test_sock_listen_removes_stale);
	tcase_add_test(tc, test_sock_listen_refuses_live);
	tcase_add_test(tc, test_sock_listen_full_backlog_is_live);
	tcase_add_test(tc, test_sock_listen_keeps_non_socket);
	tcase_add_test(tc, test_sock_path_too_long);
	tcase_add_test(tc, test_sock_peer_denied);
	suite_add_tcase(s, tc);

	tc = tcase_create("bad input");
	tcase_add_checked_fixture(tc, test_sock_setup, test_sock_teardown);
	tcase_set_timeout(tc, 10);
	tcase_add_test(tc, test_sock_bad_input);
	suite_add_tcase(s, tc);
	return s;
}
