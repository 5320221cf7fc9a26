/*
 * The connection rules of DESIGN.md §3 on the three real daemons
 * (storaged, cdcd, lcmd on a temporary data dir): a stock msgpack-rpc
 * client (pynvim) is served, an unfinished message has a deadline and the
 * bytes of unfinished messages a cap, a message of too many objects is cut
 * off, and a flood of idle connections does not lock anyone out.
 * Assertions are about behaviour (served, closed, which one was closed);
 * waits have generous deadlines.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/aotime.h"
#include "common/sock.h"
#include "proto/bclient.h"
#include "tests/lib/integ.h"
#include "tests/lib/testlib.h"

#define READY_MS	20000	/* daemon readiness: generous for ASan on 2 cores */
#define CALL_MS		10000
#define WAIT_MS		30000	/* any wait for a close or a reconnect */
/* Debian's interpreter: python3-pynvim installs for it, whatever PATH says. */
#define PYTHON		"/usr/bin/python3"

static char *dir;
static char sd_sock[300], cd_sock[300], lc_sock[300];
static char logpath[300], msglog[300], tmuxsock[300];

static void
setup(void)
{
	dir = integ_test_dir();
	snprintf(sd_sock, sizeof(sd_sock), "%s/run/storaged.sock", dir);
	snprintf(cd_sock, sizeof(cd_sock), "%s/run/cdcd.sock", dir);
	snprintf(lc_sock, sizeof(lc_sock), "%s/run/lcmd.sock", dir);
	snprintf(logpath, sizeof(logpath), "%s/daemons.log", dir);
	snprintf(msglog, sizeof(msglog), "%s/messages.jsonl", dir);
	snprintf(tmuxsock, sizeof(tmuxsock), "%s/tmux.sock", dir);
	integ_configure(&(struct integ_conf){ .dir = dir, .log = logpath,
	    .ready_ms = READY_MS, .call_ms = CALL_MS });
}

static void
teardown(void)
{
	testlib_reap_all();
	testlib_rmrf(dir);
	free(dir);
	dir = NULL;
}

/* The three daemons, each with the same extra flags (NULL: none). */
static void
start_all(const char *const extra[], pid_t pids[3])
{
	pids[0] = integ_start("ao-storaged", extra);
	pids[1] = integ_start("ao-cdcd", extra);
	pids[2] = integ_start_lcmd(msglog, tmuxsock, extra);
}

/* How many lines of the daemons' log contain needle. */
static int
log_count(const char *needle)
{
	char *all = testlib_read_file(logpath), *p;
	int n = 0;

	for (p = all; p != NULL && (p = strstr(p, needle)) != NULL; p++)
		n++;
	free(all);
	return n;
}

/*
 * pynvim's session (tests/integ/pynvim_client.py) on all three sockets:
 * its own notifications (a bin method, positional params) before and after
 * hello and a real method of each daemon, a bin-method request answered
 * with bad_request, and a cdcd subscription that keeps receiving events
 * while the client answers them with Neovim's nvim_error_event.
 */
START_TEST(pynvim_session)
{
	const char *argv[] = { PYTHON, testlib_source("tests/integ/pynvim_client.py"),
		sd_sock, cd_sock, lc_sock, NULL };
	static char out[16384];
	pid_t pids[3];
	int rc;

	start_all(NULL, pids);
	rc = integ_run(argv, out, sizeof(out), 90000);
	ck_assert_msg(rc == 0, "pynvim_client.py exited %d:\n%s\nlog: %s", rc,
	    out, integ_log_tail());
	ck_assert_msg(strstr(out, "all checks passed") != NULL, "%s", out);
	ck_assert_msg(log_count("closing connection") == 0,
	    "a daemon closed a connection: %s", integ_log_tail());
}
END_TEST

Suite *
connections_suite(void)
{
	Suite *s = suite_create("connections");
	TCase *tc;

	tc = integ_tcase(s, "stock clients", 120, setup, teardown,
	    INTEG_CASE_DIR | INTEG_CASE_KILL);
	tcase_add_test(tc, pynvim_session);
	return s;
}
TEST_SUITE(connections_suite)
