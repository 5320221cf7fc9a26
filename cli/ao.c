/*
 * ao — the command-line client.  Talks to the daemons' sockets; owns nothing.
 *
 *   ao [--runtime-dir DIR] [--data-dir DIR] [--json] [--timeout MS] COMMAND ...
 *
 * Exit codes: 0 success, 1 the daemon answered with an error or could not be
 * reached, 2 usage error.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cli/cli.h"
#include "common/log.h"
#include "common/version.h"
#include "proto/jsonmp.h"

static const char *const components[] = {
	"storaged", "cdcd", "lcmd", "supervisor", NULL,
};

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: ao [options] COMMAND [ARGS]\n"
	    "\n"
	    "commands:\n"
	    "  project add PATH [--id ID] [--origin URL] [--name NAME]\n"
	    "  project ls [--all] | get ID | rm ID\n"
	    "  session ls [--project P] [--all]\n"
	    "  spawn --project P [--harness H | -- ARGV...] [--prompt T] [--branch B]\n"
	    "        [--issue ID] [--runtime tmux|process]   start an agent\n"
	    "  session get|kill|restore|done|cleanup|attach ID\n"
	    "  send ID MESSAGE...             message the session's agent (\"-\": stdin)\n"
	    "  pr observe SESSION < obs.json  record a PR observation (JSON on stdin)\n"
	    "  notifications [--limit N]      the latest notifications\n"
	    "  hello [COMPONENT]              identify a daemon (default lcmd)\n"
	    "  ping [COMPONENT]               check that a daemon answers\n"
	    "  call COMPONENT METHOD [JSON]   call any method; JSON is the params\n"
	    "                                 object (\"-\" reads it from stdin)\n"
	    "  watch [--from SEQ] [--project P] [--session S] [--type T]...\n"
	    "        [--consumer NAME] [--count N]\n"
	    "                                 print the event stream; resumes after\n"
	    "                                 the last seen event if the connection\n"
	    "                                 drops\n"
	    "\n"
	    "COMPONENT is one of storaged, cdcd, lcmd, supervisor.\n"
	    "\n"
	    "options:\n"
	    "  --runtime-dir DIR   where the sockets are (env AO_RUNTIME_DIR)\n"
	    "  --data-dir DIR      the data dir (env AO_DATA_DIR); sockets in DIR/run\n"
	    "  --json              print results as one line of JSON\n"
	    "  --timeout MS        how long to wait for an answer (default 10000)\n"
	    "  --help, --version\n");
}

static int
component_ok(const char *c)
{
	int i;

	for (i = 0; components[i] != NULL; i++)
		if (strcmp(components[i], c) == 0)
			return 1;
	return 0;
}

static int
cmd_call(const struct cli *cli, int argc, char **argv)
{
	msgpack_sbuffer sb;
	msgpack_packer pk;
	json_error_t jerr;
	json_t *params = NULL;
	int rc;

	if (argc < 2 || argc > 3) {
		fprintf(stderr, "usage: ao call COMPONENT METHOD [JSON]\n");
		return EXIT_USAGE;
	}
	if (!component_ok(argv[0])) {
		fprintf(stderr, "ao: unknown component '%s' (storaged, cdcd, lcmd, "
		    "supervisor)\n", argv[0]);
		return EXIT_USAGE;
	}
	if (argc == 3) {
		if (strcmp(argv[2], "-") == 0)
			params = json_loadf(stdin, 0, &jerr);
		else
			params = json_loads(argv[2], 0, &jerr);
		if (params == NULL) {
			fprintf(stderr, "ao: params: invalid JSON at line %d column %d: %s\n",
			    jerr.line, jerr.column, jerr.text);
			return EXIT_USAGE;
		}
		if (!json_is_object(params)) {
			fprintf(stderr, "ao: params must be a JSON object\n");
			json_decref(params);
			return EXIT_USAGE;
		}
	}
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	if (params != NULL && jsonmp_pack(&pk, params) == -1) {
		fprintf(stderr, "ao: params nest too deeply\n");
		rc = EXIT_USAGE;
	} else
		rc = cli_call(cli, argv[0], argv[1], sb.data, sb.size);
	msgpack_sbuffer_destroy(&sb);
	json_decref(params);
	return rc;
}

static int
cmd_simple(const struct cli *cli, const char *method, int argc, char **argv)
{
	const char *component = argc > 0 ? argv[0] : "lcmd";

	if (argc > 1 || !component_ok(component)) {
		fprintf(stderr, "usage: ao %s [storaged|cdcd|lcmd|supervisor]\n", method);
		return EXIT_USAGE;
	}
	return cli_call(cli, component, method, NULL, 0);
}

int
main(int argc, char **argv)
{
	struct cli cli = { .timeout_ms = 10000 };
	const char *data = NULL, *runtime = NULL, *v;
	char err[512], *end;
	int i;

	log_init("ao", 0);
	/* A daemon that closes on us is an error to report, not a silent death. */
	signal(SIGPIPE, SIG_IGN);
	for (i = 1; i < argc && argv[i][0] == '-'; i++) {
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			usage(stdout);
			return 0;
		} else if (strcmp(argv[i], "--version") == 0) {
			printf("ao %s (protocol %d)\n", AO_VERSION, AO_PROTO);
			return 0;
		} else if (strcmp(argv[i], "--json") == 0)
			cli.json = 1;
		else if ((v = cli_flag_value(&i, argc, argv, "--data-dir")) != NULL)
			data = v;
		else if ((v = cli_flag_value(&i, argc, argv, "--runtime-dir")) != NULL)
			runtime = v;
		else if ((v = cli_flag_value(&i, argc, argv, "--timeout")) != NULL) {
			errno = 0;
			cli.timeout_ms = strtoll(v, &end, 10);
			if (errno != 0 || *end != '\0' || cli.timeout_ms <= 0) {
				fprintf(stderr, "ao: --timeout: not a positive number "
				    "of milliseconds: %s\n", v);
				return EXIT_USAGE;
			}
		} else {
			fprintf(stderr, "ao: unknown option %s (try --help)\n", argv[i]);
			return EXIT_USAGE;
		}
	}
	if (i >= argc) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (paths_resolve(&cli.paths, data, runtime, err, sizeof(err)) == -1) {
		fprintf(stderr, "ao: %s\n", err);
		return 1;
	}
	if (strcmp(argv[i], "project") == 0)
		return lc_project(&cli, argc - i - 1, argv + i + 1);
	if (strcmp(argv[i], "session") == 0)
		return lc_session(&cli, argc - i - 1, argv + i + 1);
	if (strcmp(argv[i], "spawn") == 0)
		return lc_spawn(&cli, argc - i - 1, argv + i + 1);
	if (strcmp(argv[i], "send") == 0)
		return lc_send(&cli, argc - i - 1, argv + i + 1);
	if (strcmp(argv[i], "pr") == 0)
		return lc_pr(&cli, argc - i - 1, argv + i + 1);
	if (strcmp(argv[i], "notifications") == 0)
		return lc_notifications(&cli, argc - i - 1, argv + i + 1);
	if (strcmp(argv[i], "watch") == 0)
		return watch_main(&cli, argc - i - 1, argv + i + 1);
	if (strcmp(argv[i], "call") == 0)
		return cmd_call(&cli, argc - i - 1, argv + i + 1);
	if (strcmp(argv[i], "hello") == 0 || strcmp(argv[i], "ping") == 0)
		return cmd_simple(&cli, argv[i], argc - i - 1, argv + i + 1);
	fprintf(stderr, "ao: unknown command '%s' (try --help)\n", argv[i]);
	return EXIT_USAGE;
}
