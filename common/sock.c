#include "common/sock.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

/* Longest path a sockaddr_un holds with its terminating NUL. */
#define SOCK_PATH_MAX (sizeof(((struct sockaddr_un *)0)->sun_path) - 1)

/* Fills addr from path; -1 with ENAMETOOLONG and err when it does not fit. */
static int
sock_addr(struct sockaddr_un *addr, const char *path, char *err, size_t errlen)
{
	size_t len = strlen(path);

	if (len == 0) {
		snprintf(err, errlen, "empty socket path");
		errno = EINVAL;
		return -1;
	}
	if (len > SOCK_PATH_MAX) {
		snprintf(err, errlen, "socket path too long (%zu bytes, max %zu): %s",
		    len, SOCK_PATH_MAX, path);
		errno = ENAMETOOLONG;
		return -1;
	}
	memset(addr, 0, sizeof(*addr));
	addr->sun_family = AF_UNIX;
	memcpy(addr->sun_path, path, len + 1);
	return 0;
}

/* Closes fd without clobbering the errno of the failure being reported. */
static void
sock_close_keep_errno(int fd)
{
	int saved = errno;

	close(fd);
	errno = saved;
}

/*
 * Decides what to do with whatever exists at `path` before binding there:
 * nothing, a stale socket (removed), a live instance or a non-socket (both
 * refused).  Returns 0 when the path is free to bind.
 */
static int
sock_clear_stale(const struct sockaddr_un *addr, const char *path, char *err,
    size_t errlen)
{
	struct stat st;
	int fd, r;

	if (lstat(path, &st) == -1) {
		if (errno == ENOENT)
			return 0;
		snprintf(err, errlen, "stat %s: %s", path, strerror(errno));
		return -1;
	}
	if (!S_ISSOCK(st.st_mode)) {
		snprintf(err, errlen, "%s exists and is not a socket; not removing it",
		    path);
		errno = EEXIST;
		return -1;
	}
	/*
	 * Non-blocking, so a live instance whose backlog is full answers
	 * EAGAIN instead of stalling start-up; that still means "live".
	 */
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd == -1) {
		snprintf(err, errlen, "socket: %s", strerror(errno));
		return -1;
	}
	r = connect(fd, (const struct sockaddr *)addr, sizeof(*addr));
	if (r == 0 || errno == EAGAIN || errno == EINPROGRESS) {
		close(fd);
		snprintf(err, errlen, "another instance is listening on %s", path);
		errno = EADDRINUSE;
		return -1;
	}
	if (errno != ECONNREFUSED && errno != ENOENT) {
		snprintf(err, errlen, "connect %s: %s", path, strerror(errno));
		sock_close_keep_errno(fd);
		return -1;
	}
	close(fd);
	if (unlink(path) == -1 && errno != ENOENT) {
		snprintf(err, errlen, "remove stale socket %s: %s", path,
		    strerror(errno));
		return -1;
	}
	return 0;
}

int
sock_listen_unix(const char *path, int backlog, char *err, size_t errlen)
{
	struct sockaddr_un addr;
	mode_t old;
	int fd, r;

	if (sock_addr(&addr, path, err, errlen) == -1)
		return -1;
	if (sock_clear_stale(&addr, path, err, errlen) == -1)
		return -1;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd == -1) {
		snprintf(err, errlen, "socket: %s", strerror(errno));
		return -1;
	}
	/* The umask closes the window between bind() and chmod(). */
	old = umask(0177);
	r = bind(fd, (struct sockaddr *)&addr, sizeof(addr));
	umask(old);
	if (r == -1) {
		snprintf(err, errlen, "bind %s: %s", path, strerror(errno));
		sock_close_keep_errno(fd);
		return -1;
	}
	if (chmod(path, 0600) == -1) {
		snprintf(err, errlen, "chmod %s: %s", path, strerror(errno));
		goto fail;
	}
	if (listen(fd, backlog) == -1) {
		snprintf(err, errlen, "listen %s: %s", path, strerror(errno));
		goto fail;
	}
	return fd;
fail:
	r = errno;
	unlink(path);
	close(fd);
	errno = r;
	return -1;
}

int
sock_connect_unix(const char *path, int nonblock, char *err, size_t errlen)
{
	struct sockaddr_un addr;
	int fd, type = SOCK_STREAM | SOCK_CLOEXEC;

	if (sock_addr(&addr, path, err, errlen) == -1)
		return -1;
	if (nonblock)
		type |= SOCK_NONBLOCK;
	if ((fd = socket(AF_UNIX, type, 0)) == -1) {
		snprintf(err, errlen, "socket: %s", strerror(errno));
		return -1;
	}
	if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) == -1) {
		snprintf(err, errlen, "connect %s: %s", path, strerror(errno));
		sock_close_keep_errno(fd);
		return -1;
	}
	return fd;
}

int
sock_peer_allowed(int fd, uid_t *uid, pid_t *pid, char *err, size_t errlen)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == -1) {
		snprintf(err, errlen, "SO_PEERCRED: %s", strerror(errno));
		return -1;
	}
	if (uid != NULL)
		*uid = cred.uid;
	if (pid != NULL)
		*pid = cred.pid;
	if (cred.uid != geteuid() && cred.uid != 0) {
		snprintf(err, errlen, "peer uid %u (pid %ld) is not our uid (%u) "
		    "or root", (unsigned)cred.uid, (long)cred.pid, (unsigned)geteuid());
		errno = EPERM;
		return -1;
	}
	return 0;
}

int
sock_set_nonblock(int fd, int on)
{
	int fl;

	if ((fl = fcntl(fd, F_GETFL)) == -1)
		return -1;
	fl = on ? fl | O_NONBLOCK : fl & ~O_NONBLOCK;
	return fcntl(fd, F_SETFL, fl);
}

/* Makes sure `path` is a directory, creating it with `mode` when missing. */
static int
sock_mkdir_one(const char *path, mode_t mode, char *err, size_t errlen)
{
	struct stat st;

	if (mkdir(path, mode) == 0)
		return 0;
	if (errno != EEXIST) {
		snprintf(err, errlen, "mkdir %s: %s", path, strerror(errno));
		return -1;
	}
	if (stat(path, &st) == -1) {
		snprintf(err, errlen, "stat %s: %s", path, strerror(errno));
		return -1;
	}
	if (!S_ISDIR(st.st_mode)) {
		snprintf(err, errlen, "%s exists and is not a directory", path);
		errno = ENOTDIR;
		return -1;
	}
	return 0;
}

int
sock_mkdir_private(const char *dir, char *err, size_t errlen)
{
	char buf[PATH_MAX];
	struct stat st;
	size_t len = strlen(dir);
	char *p;

	if (len == 0) {
		snprintf(err, errlen, "empty directory path");
		errno = EINVAL;
		return -1;
	}
	if (len >= sizeof(buf)) {
		snprintf(err, errlen, "directory path too long (%zu bytes, max %zu)",
		    len, sizeof(buf) - 1);
		errno = ENAMETOOLONG;
		return -1;
	}
	memcpy(buf, dir, len + 1);
	while (len > 1 && buf[len - 1] == '/')
		buf[--len] = '\0';

	/* Parents are created like mkdir -p would (0755 less the umask). */
	for (p = buf + 1; (p = strchr(p, '/')) != NULL; p++) {
		if (p[1] == '/' || p[1] == '\0')
			continue;
		*p = '\0';
		if (sock_mkdir_one(buf, 0755, err, errlen) == -1)
			return -1;
		*p = '/';
	}
	if (sock_mkdir_one(buf, 0700, err, errlen) == -1)
		return -1;
	if (stat(buf, &st) == -1) {
		snprintf(err, errlen, "stat %s: %s", buf, strerror(errno));
		return -1;
	}
	if (st.st_uid != geteuid()) {
		snprintf(err, errlen, "%s is owned by uid %u, not by us (uid %u)",
		    buf, (unsigned)st.st_uid, (unsigned)geteuid());
		errno = EPERM;
		return -1;
	}
	/* Also undoes a umask that took bits away from a new directory. */
	if ((st.st_mode & 07777) != 0700 && chmod(buf, 0700) == -1) {
		snprintf(err, errlen, "chmod %s: %s", buf, strerror(errno));
		return -1;
	}
	return 0;
}
