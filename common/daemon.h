/*
 * What every ao daemon does the same way: the common flags, the config
 * table, the listening socket (inherited through LISTEN_FDS or bound on the
 * runtime dir) and readiness (a line on --ready-fd, sd_notify READY=1).
 */
#ifndef AO_DAEMON_H
#define AO_DAEMON_H

#include "common/config.h"
#include "common/paths.h"

struct daemon_opts {
	const char *component;	/* "storaged" */
	const char *progname;	/* "ao-storaged" */
	struct paths paths;
	char *config_path;	/* NULL when none */
	int ready_fd;		/* -1 when none */
	int verbose;
};

/*
 * Parses argv: --data-dir, --runtime-dir, --config, --ready-fd, --verbose,
 * --help, --version and every key of `keys` as --key-name=VALUE (or
 * --key-name VALUE).  Loads the [component] section of the config file.
 * Prints help and exits 0 for --help/--version; prints the reason and exits
 * EXIT_PERM on a bad flag, key or value.  Initializes logging, and raises
 * the RLIMIT_NOFILE soft limit to the hard limit (children started through
 * common/subprocess get the original one).
 */
void daemon_init(struct daemon_opts *, int argc, char **argv,
    const char *component, const char *summary,
    const struct config_key *keys, void *cfg);

/*
 * Returns a listening socket for "<name>": the first LISTEN_FDS socket when
 * started by systemd or ao-supervisor, else one bound at <runtime dir>/<name>.
 * Exits EXIT_PERM when a live instance answers there or the path is too long.
 */
int daemon_listen(struct daemon_opts *, const char *name);

/* Writes "\n" to --ready-fd and closes it; sends READY=1 to systemd. */
void daemon_ready(struct daemon_opts *);

void daemon_opts_free(struct daemon_opts *);

struct event_base;
struct daemon_signals;
/*
 * The daemons' signal handling, as libevent events (no work in a handler):
 * SIGTERM and SIGINT break base's loop for an orderly exit; SIGHUP is
 * logged (configuration is read at start).
 */
struct daemon_signals *daemon_signals(struct event_base *);
void daemon_signals_free(struct daemon_signals *);

#endif
