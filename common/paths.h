/*
 * Where ao keeps its files (DESIGN.md §2): the data dir (flag → AO_DATA_DIR →
 * $XDG_STATE_HOME/ao → ~/.local/state/ao) and the runtime dir (flag →
 * AO_RUNTIME_DIR → <data dir>/run), which holds the sockets.
 */
#ifndef AO_PATHS_H
#define AO_PATHS_H

#include <limits.h>
#include <stddef.h>

struct paths {
	char data_dir[PATH_MAX];
	char runtime_dir[PATH_MAX];
};

/* Resolves both dirs without touching the file system.  -1 and err on failure. */
int paths_resolve(struct paths *, const char *data_flag, const char *runtime_flag,
    char *err, size_t errlen);

/* Creates the data dir and the runtime dir (mode 0700). */
int paths_prepare(const struct paths *, char *err, size_t errlen);

/* "<runtime dir>/<name>" into out; -1 with err when it does not fit sun_path. */
int paths_socket(const struct paths *, const char *name, char *out, size_t outlen,
    char *err, size_t errlen);

#endif
