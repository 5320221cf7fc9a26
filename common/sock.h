/*
 * Unix stream socket helpers.  Every function fills `err` (errlen bytes) with
 * a one-line reason on failure and returns -1 with errno set; none of them
 * logs.
 */
#ifndef AO_SOCK_H
#define AO_SOCK_H

#include <stddef.h>
#include <sys/types.h>

/*
 * Creates `dir` and its missing parents.  The last component gets mode 0700;
 * an existing one that we own is tightened to 0700.
 */
int sock_mkdir_private(const char *dir, char *err, size_t errlen);

/*
 * Binds and listens on `path` (mode 0600), non-blocking, close-on-exec.
 * A stale socket (connect refused) is removed first.  When a live instance
 * answers on the path, fails with errno EADDRINUSE.  A path longer than
 * sun_path fails with ENAMETOOLONG.  Returns the listening fd.
 */
int sock_listen_unix(const char *path, int backlog, char *err, size_t errlen);

/* Connects to `path`; the fd is close-on-exec and, if `nonblock`, O_NONBLOCK. */
int sock_connect_unix(const char *path, int nonblock, char *err, size_t errlen);

/*
 * SO_PEERCRED check: succeeds when the peer runs as our uid or as root.
 * `uid`/`pid` (either may be NULL) receive the peer's credentials.
 */
int sock_peer_allowed(int fd, uid_t *uid, pid_t *pid, char *err, size_t errlen);

int sock_set_nonblock(int fd, int on);

#endif
