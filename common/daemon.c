#include "common/daemon.h"

#include <event2/event.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <systemd/sd-daemon.h>

#include "common/log.h"
#include "common/sock.h"
#include "common/subprocess.h"
#include "common/version.h"
#include "common/xmalloc.h"

/* A config key given on the command line, applied after the config file. */
struct daemon_arg {
	const struct config_key *key;
	const char *value;
};

/* One daemon per process, so the name "ao-<component>" can live here. */
static char daemon_progname[64];

static void
daemon_usage(const char *component, const char *summary,
    const struct config_key *keys)
{
	printf("usage: %s [options]\n", daemon_progname);
	if (summary != NULL)
		printf("%s\n", summary);
	printf("\noptions:\n"
	    "  --data-dir=DIR      data directory (env AO_DATA_DIR; default\n"
	    "                      $XDG_STATE_HOME/ao, else ~/.local/state/ao)\n"
	    "  --runtime-dir=DIR   socket directory (env AO_RUNTIME_DIR; "
	    "default DIR/run\n"
	    "                      under the data dir)\n"
	    "  --config=FILE       INI file whose [%s] section sets the keys "
	    "below\n"
	    "                      (env AO_CONFIG)\n"
	    "  --ready-fd=N        write a newline to fd N once ready\n"
	    "  -v, --verbose       log debug messages\n"
	    "  -h, --help          print this help and exit\n"
	    "  --version           print the version and exit\n",
	    component);
	if (keys != NULL && keys->name != NULL) {
		printf("\nsettings (command line wins over [%s] in the config "
		    "file):\n", component);
		config_usage(keys, stdout);
	}
}

/*
 * The value of the option at argv[*i]: after '=' when `eq` is set, else the
 * next argument (consumed).
 */
static const char *
daemon_optarg(int argc, char **argv, int *i, const char *eq)
{
	if (eq != NULL)
		return eq + 1;
	if (*i + 1 >= argc)
		fatalx_perm("option %s needs a value (try --help)", argv[*i]);
	return argv[++*i];
}

static int
daemon_parse_fd(const char *s)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (*s < '0' || *s > '9' || *end != '\0' || errno != 0 || v > INT_MAX)
		fatalx_perm("--ready-fd: '%s' is not a file descriptor number", s);
	if (fcntl((int)v, F_GETFD) == -1)
		fatalx_perm("--ready-fd: %ld is not an open file descriptor", v);
	/* Agents and other children must not inherit the readiness pipe. */
	if (fcntl((int)v, F_SETFD, FD_CLOEXEC) == -1)
		fatalx_perm("--ready-fd: %ld: %s", v, strerror(errno));
	return (int)v;
}

/*
 * Raises the RLIMIT_NOFILE soft limit to the hard limit: a server's
 * connection table is sized from it (proto/server.c).  Children get the
 * soft limit we started with back (subprocess_set_child_nofile).
 */
static void
daemon_raise_nofile(void)
{
	struct rlimit rl;
	rlim_t was;

	if (getrlimit(RLIMIT_NOFILE, &rl) == -1) {
		log_warn("getrlimit(RLIMIT_NOFILE)");
		return;
	}
	if (rl.rlim_cur == rl.rlim_max)
		return;
	was = rl.rlim_cur;
	rl.rlim_cur = rl.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &rl) == -1) {
		log_warn("raising the file descriptor limit from %llu to %llu",
		    (unsigned long long)was, (unsigned long long)rl.rlim_max);
		return;
	}
	subprocess_set_child_nofile(was);
	log_debug("file descriptor limit raised from %llu to %llu",
	    (unsigned long long)was, (unsigned long long)rl.rlim_max);
}

void
daemon_init(struct daemon_opts *o, int argc, char **argv,
    const char *component, const char *summary,
    const struct config_key *keys, void *cfg)
{
	static const struct config_key nokeys[] = { CONFIG_KEY_END };
	const char *data_flag = NULL, *runtime_flag = NULL, *config_flag = NULL;
	const char *arg, *eq, *val;
	const struct config_key *k;
	struct daemon_arg *set;
	char name[128], err[1024];
	size_t len;
	int i, nset = 0;

	if (keys == NULL)
		keys = nokeys;
	memset(o, 0, sizeof(*o));
	o->ready_fd = -1;
	snprintf(daemon_progname, sizeof(daemon_progname), "ao-%s", component);
	o->component = component;
	o->progname = daemon_progname;
	log_init(daemon_progname, 0);

	set = xcalloc(argc > 0 ? argc : 1, sizeof(*set));
	for (i = 1; i < argc; i++) {
		arg = argv[i];
		if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0) {
			daemon_usage(component, summary, keys);
			exit(0);
		}
		if (strcmp(arg, "--version") == 0) {
			printf("%s %s\n", daemon_progname, AO_VERSION);
			exit(0);
		}
		if (strcmp(arg, "-v") == 0 || strcmp(arg, "--verbose") == 0) {
			o->verbose = 1;
			continue;
		}
		if (arg[0] != '-')
			fatalx_perm("unexpected argument '%s' (try --help)", arg);
		if (arg[1] != '-' || arg[2] == '\0' || arg[2] == '=')
			fatalx_perm("unknown option %s (try --help)", arg);
		eq = strchr(arg, '=');
		len = eq != NULL ? (size_t)(eq - arg) : strlen(arg);
		if (len >= sizeof(name))
			fatalx_perm("unknown option %.*s (try --help)", (int)len,
			    arg);
		memcpy(name, arg, len);
		name[len] = '\0';

		if (strcmp(name, "--data-dir") == 0)
			data_flag = daemon_optarg(argc, argv, &i, eq);
		else if (strcmp(name, "--runtime-dir") == 0)
			runtime_flag = daemon_optarg(argc, argv, &i, eq);
		else if (strcmp(name, "--config") == 0)
			config_flag = daemon_optarg(argc, argv, &i, eq);
		else if (strcmp(name, "--ready-fd") == 0) {
			val = daemon_optarg(argc, argv, &i, eq);
			if (o->ready_fd >= 0)
				fatalx_perm("--ready-fd given twice");
			o->ready_fd = daemon_parse_fd(val);
		} else if (strcmp(name, "--verbose") == 0 ||
		    strcmp(name, "--help") == 0 || strcmp(name, "--version") == 0)
			fatalx_perm("option %s takes no value", name);
		else if ((k = config_find(keys, name + 2)) != NULL) {
			set[nset].key = k;
			set[nset].value = daemon_optarg(argc, argv, &i, eq);
			nset++;
		} else
			fatalx_perm("unknown option %s (try --help)", name);
	}
	log_init(daemon_progname, o->verbose);
	daemon_raise_nofile();

	if (config_flag != NULL) {
		if (*config_flag == '\0')
			fatalx_perm("--config is empty");
		o->config_path = xstrdup(config_flag);
	} else if ((val = getenv("AO_CONFIG")) != NULL && *val != '\0')
		o->config_path = xstrdup(val);

	if (config_defaults(keys, cfg, err, sizeof(err)) == -1)
		fatalx_perm("%s", err);
	if (o->config_path != NULL && config_load_file(keys, cfg, component,
	    o->config_path, err, sizeof(err)) == -1)
		fatalx_perm("%s", err);
	for (i = 0; i < nset; i++)
		if (config_set(keys, cfg, set[i].key->name, set[i].value, err,
		    sizeof(err)) == -1)
			fatalx_perm("%s", err);
	free(set);

	if (paths_resolve(&o->paths, data_flag, runtime_flag, err,
	    sizeof(err)) == -1)
		fatalx_perm("%s", err);
	if (paths_prepare(&o->paths, err, sizeof(err)) == -1)
		fatalx_perm("%s", err);
	log_debug("data dir %s, runtime dir %s, config %s", o->paths.data_dir,
	    o->paths.runtime_dir,
	    o->config_path != NULL ? o->config_path : "(none)");
}

int
daemon_listen(struct daemon_opts *o, const char *name)
{
	char path[PATH_MAX], err[1024];
	int fd, n;

	/* Unsets LISTEN_FDS so the children we spawn do not inherit it. */
	n = sd_listen_fds(1);
	if (n < 0)
		fatalx_perm("sd_listen_fds: %s", strerror(-n));
	if (n >= 1) {
		fd = SD_LISTEN_FDS_START;
		if (sd_is_socket_unix(fd, SOCK_STREAM, 1, NULL, 0) <= 0)
			fatalx_perm("inherited fd %d is not a listening Unix "
			    "stream socket", fd);
		if (sock_set_nonblock(fd, 1) == -1)
			fatal("inherited fd %d: O_NONBLOCK", fd);
		if (n > 1)
			log_warnx("%d sockets inherited, using only fd %d", n, fd);
		log_debug("listening on inherited fd %d for %s", fd, name);
		return fd;
	}
	if (paths_socket(&o->paths, name, path, sizeof(path), err,
	    sizeof(err)) == -1)
		fatalx_perm("%s", err);
	if ((fd = sock_listen_unix(path, SOMAXCONN, err, sizeof(err))) == -1) {
		switch (errno) {
		case EMFILE:
		case ENFILE:
		case ENOBUFS:
		case ENOMEM:
			fatalx("%s", err);
		default:
			/* A live instance, a bad path or a permission problem. */
			fatalx_perm("%s", err);
		}
	}
	log_debug("listening on %s", path);
	return fd;
}

void
daemon_ready(struct daemon_opts *o)
{
	struct sigaction ign, old;
	ssize_t r;

	if (o->ready_fd >= 0) {
		/* A reader that went away must not kill us with SIGPIPE. */
		memset(&ign, 0, sizeof(ign));
		ign.sa_handler = SIG_IGN;
		sigaction(SIGPIPE, &ign, &old);
		do
			r = write(o->ready_fd, "\n", 1);
		while (r == -1 && errno == EINTR);
		if (r != 1)
			log_warn("readiness fd %d", o->ready_fd);
		sigaction(SIGPIPE, &old, NULL);
		close(o->ready_fd);
		o->ready_fd = -1;
	}
	sd_notify(0, "READY=1");
}

void
daemon_opts_free(struct daemon_opts *o)
{
	free(o->config_path);
	o->config_path = NULL;
	if (o->ready_fd >= 0) {
		close(o->ready_fd);
		o->ready_fd = -1;
	}
}

struct daemon_signals {
	struct event *ev[3];
};

static void
daemon_on_signal(evutil_socket_t sig, short what, void *arg)
{
	(void)what;
	if (sig == SIGHUP) {
		log_info("SIGHUP: configuration is read at start; restart to apply "
		    "changes");
		return;
	}
	log_info("shutting down on signal %d", (int)sig);
	event_base_loopbreak(arg);
}

struct daemon_signals *
daemon_signals(struct event_base *base)
{
	static const int sigs[] = { SIGTERM, SIGINT, SIGHUP };
	struct daemon_signals *ds = xcalloc(1, sizeof(*ds));
	int i;

	for (i = 0; i < 3; i++) {
		ds->ev[i] = evsignal_new(base, sigs[i], daemon_on_signal, base);
		if (ds->ev[i] == NULL || evsignal_add(ds->ev[i], NULL) == -1)
			fatalx("installing signal handlers failed");
	}
	return ds;
}

void
daemon_signals_free(struct daemon_signals *ds)
{
	int i;

	if (ds == NULL)
		return;
	for (i = 0; i < 3; i++)
		event_free(ds->ev[i]);
	free(ds);
}
