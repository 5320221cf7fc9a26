#include "common/paths.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/sock.h"

#define PATHS_SUN_MAX (sizeof(((struct sockaddr_un *)0)->sun_path) - 1)

/*
 * Writes the absolute form of `in` (relative to the current directory) to
 * `out`, without trailing slashes, so a daemon may chdir later.  `what`
 * names the source in errors ("--data-dir", "AO_DATA_DIR").
 */
static int
paths_absolute(char *out, size_t outlen, const char *what, const char *in,
    char *err, size_t errlen)
{
	char cwd[PATH_MAX];
	size_t len;
	int n;

	if (*in == '\0') {
		snprintf(err, errlen, "%s is empty", what);
		errno = EINVAL;
		return -1;
	}
	if (*in == '/')
		n = snprintf(out, outlen, "%s", in);
	else {
		if (getcwd(cwd, sizeof(cwd)) == NULL) {
			snprintf(err, errlen, "%s: cannot make %s absolute: getcwd: %s",
			    what, in, strerror(errno));
			return -1;
		}
		n = snprintf(out, outlen, "%s%s%s", cwd,
		    strcmp(cwd, "/") == 0 ? "" : "/", in);
	}
	if (n < 0 || (size_t)n >= outlen) {
		snprintf(err, errlen, "%s: path too long (max %zu bytes): %s", what,
		    outlen - 1, in);
		errno = ENAMETOOLONG;
		return -1;
	}
	len = (size_t)n;
	while (len > 1 && out[len - 1] == '/')
		out[--len] = '\0';
	return 0;
}

/* `base` (not empty) + "/" + `leaf` into out, as paths_absolute does. */
static int
paths_join(char *out, size_t outlen, const char *what, const char *base,
    const char *leaf, char *err, size_t errlen)
{
	char buf[PATH_MAX];
	int n;

	n = snprintf(buf, sizeof(buf), "%s%s%s", base,
	    base[strlen(base) - 1] == '/' ? "" : "/", leaf);
	if (n < 0 || (size_t)n >= sizeof(buf)) {
		snprintf(err, errlen, "%s: path too long (max %zu bytes): %s/%s",
		    what, sizeof(buf) - 1, base, leaf);
		errno = ENAMETOOLONG;
		return -1;
	}
	return paths_absolute(out, outlen, what, buf, err, errlen);
}

static int
paths_data_dir(struct paths *p, const char *flag, char *err, size_t errlen)
{
	const char *v;

	if (flag != NULL)
		return paths_absolute(p->data_dir, sizeof(p->data_dir),
		    "--data-dir", flag, err, errlen);
	if ((v = getenv("AO_DATA_DIR")) != NULL)
		return paths_absolute(p->data_dir, sizeof(p->data_dir),
		    "AO_DATA_DIR", v, err, errlen);
	/* The XDG base-dir spec says to ignore a relative XDG_STATE_HOME. */
	if ((v = getenv("XDG_STATE_HOME")) != NULL && *v == '/')
		return paths_join(p->data_dir, sizeof(p->data_dir),
		    "XDG_STATE_HOME", v, "ao", err, errlen);
	if ((v = getenv("HOME")) == NULL || *v == '\0') {
		snprintf(err, errlen, "cannot find a data dir: HOME is not set "
		    "(use --data-dir or AO_DATA_DIR)");
		errno = ENOENT;
		return -1;
	}
	return paths_join(p->data_dir, sizeof(p->data_dir), "HOME", v,
	    ".local/state/ao", err, errlen);
}

int
paths_resolve(struct paths *p, const char *data_flag, const char *runtime_flag,
    char *err, size_t errlen)
{
	const char *v;

	memset(p, 0, sizeof(*p));
	if (paths_data_dir(p, data_flag, err, errlen) == -1)
		return -1;
	if (runtime_flag != NULL)
		return paths_absolute(p->runtime_dir, sizeof(p->runtime_dir),
		    "--runtime-dir", runtime_flag, err, errlen);
	if ((v = getenv("AO_RUNTIME_DIR")) != NULL)
		return paths_absolute(p->runtime_dir, sizeof(p->runtime_dir),
		    "AO_RUNTIME_DIR", v, err, errlen);
	return paths_join(p->runtime_dir, sizeof(p->runtime_dir), "runtime dir",
	    p->data_dir, "run", err, errlen);
}

int
paths_prepare(const struct paths *p, char *err, size_t errlen)
{
	char why[512];

	if (sock_mkdir_private(p->data_dir, why, sizeof(why)) == -1) {
		snprintf(err, errlen, "data dir: %s", why);
		return -1;
	}
	if (sock_mkdir_private(p->runtime_dir, why, sizeof(why)) == -1) {
		snprintf(err, errlen, "runtime dir: %s", why);
		return -1;
	}
	return 0;
}

int
paths_socket(const struct paths *p, const char *name, char *out, size_t outlen,
    char *err, size_t errlen)
{
	int n;

	if (*name == '\0' || strchr(name, '/') != NULL) {
		snprintf(err, errlen, "bad socket name '%s'", name);
		errno = EINVAL;
		return -1;
	}
	n = snprintf(out, outlen, "%s/%s", p->runtime_dir, name);
	if (n < 0 || (size_t)n >= outlen) {
		snprintf(err, errlen, "socket path too long (max %zu bytes): %s/%s",
		    outlen - 1, p->runtime_dir, name);
		errno = ENAMETOOLONG;
		return -1;
	}
	if ((size_t)n > PATHS_SUN_MAX) {
		snprintf(err, errlen, "socket path too long (%d bytes, max %zu): %s",
		    n, PATHS_SUN_MAX, out);
		errno = ENAMETOOLONG;
		return -1;
	}
	return 0;
}
