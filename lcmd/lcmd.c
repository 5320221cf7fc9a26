/*
 * ao-lcmd: the lifecycle manager and the public API (lcmd.sock).  A client
 * of storaged for every read and write: lcmd keeps no cache that could
 * disagree with the database.  See engine.c for how inputs flow.
 */
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "common/daemon.h"
#include "common/log.h"
#include "common/memtrim.h"
#include "lcmd/lcmd.h"

#define DAY_MS (24LL * 60 * 60 * 1000)

static const struct config_key lcmd_keys[] = {
	{ "recent_activity_ms", CONFIG_MS, "60000",
	    offsetof(struct lcmd_config, recent_activity_ms), 0, DAY_MS,
	    "activity this recent means a session is not dead" },
	{ "detecting_max_attempts", CONFIG_INT, "3",
	    offsetof(struct lcmd_config, detecting_max_attempts), 1, 1000,
	    "probes with the same evidence before detecting becomes stuck" },
	{ "detecting_max_ms", CONFIG_MS, "300000",
	    offsetof(struct lcmd_config, detecting_max_ms), 1, 30 * DAY_MS,
	    "time in detecting before it becomes stuck" },
	{ "ci_brake_runs", CONFIG_INT, "3",
	    offsetof(struct lcmd_config, ci_brake_runs), 1, 1000,
	    "failed runs of one check in a row that escalate to a human" },
	{ "review_max_nudges", CONFIG_INT, "3",
	    offsetof(struct lcmd_config, review_max_nudges), 0, 1000,
	    "review-comment nudges to the agent before escalating" },
	{ "escalate_after_ms", CONFIG_MS, "900000",
	    offsetof(struct lcmd_config, escalate_after_ms), 1, 30 * DAY_MS,
	    "merge-conflicts and agent-idle escalate after this long" },
	{ "notify_timeout_ms", CONFIG_MS, "10000",
	    offsetof(struct lcmd_config, notify_timeout_ms), 1, DAY_MS,
	    "a notifier command is killed after this long" },
	{ "max_sessions", CONFIG_INT, "16",
	    offsetof(struct lcmd_config, max_sessions), 1, 100000,
	    "live sessions at once; spawn fails beyond it" },
	{ "tmux_socket", CONFIG_STR, NULL,
	    offsetof(struct lcmd_config, tmux_socket), 0, 0,
	    "tmux server socket, a name (-L) or a path (-S); none: tmux's "
	    "default" },
	{ "max_message_bytes", CONFIG_BYTES, "16MiB",
	    offsetof(struct lcmd_config, max_message_bytes), 256,
	    1024LL * 1024 * 1024,
	    "largest request or response on lcmd.sock" },
	SERVER_LIMIT_KEYS(struct lcmd_config),
	{ "notify_command", CONFIG_STR, NULL,
	    offsetof(struct lcmd_config, notify_command), 0, 0,
	    "notifier command (words, quotes allowed; run directly, no shell); "
	    "gets the notification as JSON on stdin and AO_* variables" },
	{ "notify_desktop", CONFIG_STR, "auto",
	    offsetof(struct lcmd_config, notify_desktop), 0, 0,
	    "desktop notifications with notify-send: auto (when installed), on, "
	    "off" },
	{ "notify_urgent", CONFIG_STR, "command,desktop",
	    offsetof(struct lcmd_config, notify_urgent), 0, 0,
	    "notifiers for urgent notifications (command, desktop, none)" },
	{ "notify_action", CONFIG_STR, "command,desktop",
	    offsetof(struct lcmd_config, notify_action), 0, 0,
	    "notifiers for notifications that ask for an action" },
	{ "notify_info", CONFIG_STR, "command,desktop",
	    offsetof(struct lcmd_config, notify_info), 0, 0,
	    "notifiers for informational notifications" },
	{ "message_log", CONFIG_STR, NULL,
	    offsetof(struct lcmd_config, message_log), 0, 0,
	    "append every message sent to an agent to this file (JSON lines)" },
	{ "storaged_timeout_ms", CONFIG_MS, "10000",
	    offsetof(struct lcmd_config, storaged_timeout_ms), 1, 3600000,
	    "deadline of one call to ao-storaged" },
	CONFIG_KEY_END
};

static struct event_base *base;

static void
storaged_connect(struct client *c, void *arg)
{
	(void)c;
	(void)arg;
	log_info("connected to ao-storaged");
}

static void
storaged_disconnect(struct client *c, const char *reason, void *arg)
{
	(void)c;
	(void)arg;
	log_warnx("lost ao-storaged (%s): calls fail with unavailable until it "
	    "returns", reason);
}

int
main(int argc, char **argv)
{
	static const struct client_cbs ccbs = { storaged_connect, storaged_disconnect,
		NULL };
	struct lcmd_ctx ctx;
	struct daemon_opts opts;
	struct peer_limits lim;
	struct daemon_signals *sigs;
	struct server *srv;
	char sock[PATH_MAX], err[512];
	int fd;

	memset(&ctx, 0, sizeof(ctx));
	daemon_init(&opts, argc, argv, "lcmd",
	    "Runs agent sessions through their lifecycle and reacts to their "
	    "PRs.", lcmd_keys, &ctx.cfg);
	signal(SIGPIPE, SIG_IGN);
	if (paths_socket(&opts.paths, "storaged.sock", sock, sizeof(sock), err,
	    sizeof(err)) == -1 ||
	    paths_socket(&opts.paths, "lcmd.sock", ctx.lcmd_socket,
	    sizeof(ctx.lcmd_socket), err, sizeof(err)) == -1)
		fatalx_perm("%s", err);
	snprintf(ctx.data_dir, sizeof(ctx.data_dir), "%s", opts.paths.data_dir);
	snprintf(ctx.runtime_dir, sizeof(ctx.runtime_dir), "%s", opts.paths.runtime_dir);
	fd = daemon_listen(&opts, "lcmd.sock");
	if ((base = event_base_new()) == NULL)
		fatalx("event_base_new failed");
	ctx.base = base;
	ctx.storaged = client_new(base, sock, &ccbs, NULL, NULL);
	ctx.notify = notify_new(&ctx);
	ctx.messenger = messenger_new(&ctx);
	if (server_limits_config(&lim, ctx.cfg.max_message_bytes,
	    ctx.cfg.message_timeout_ms, ctx.cfg.max_unfinished_bytes, err,
	    sizeof(err)) == -1)
		fatalx_perm("%s", err);
	if (lim.out_cap < 2 * lim.max_msg)
		lim.out_cap = 2 * lim.max_msg;
	srv = server_new(base, fd, "lcmd", api_methods, NULL, &ctx, &lim);
	sigs = daemon_signals(base);
	/* Big messages and answers (session.list, observations) are the churn. */
	memtrim_init(base, MEMTRIM_QUIET_MS, MEMTRIM_MIN_BYTES);
	daemon_ready(&opts);
	event_base_dispatch(base);

	server_free(srv);
	client_free(ctx.storaged);
	event_base_loop(base, EVLOOP_NONBLOCK);
	runtime_shutdown();
	notify_free(ctx.notify);
	messenger_free(ctx.messenger);
	memtrim_shutdown();
	daemon_signals_free(sigs);
	event_base_free(base);
	config_free(lcmd_keys, &ctx.cfg);
	daemon_opts_free(&opts);
	return 0;
}
