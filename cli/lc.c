/*
 * The lifecycle commands of the ao CLI, against lcmd.sock: projects,
 * sessions, messages, PR observations, notifications.  Tables for people by
 * default; --json prints the daemon's answer as one JSON line.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"

static const char *
jstr(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);

	return json_is_string(v) ? json_string_value(v) : "-";
}

/* "3m", "2h", "5d": how long ago a millisecond timestamp was. */
static void
age(json_t *o, const char *key, char *buf, size_t len)
{
	json_int_t ms = json_integer_value(json_object_get(o, key));
	long long s = ms > 0 ? (long long)time(NULL) - ms / 1000 : -1;

	if (s < 0)
		snprintf(buf, len, "-");
	else if (s < 120)
		snprintf(buf, len, "%llds", s);
	else if (s < 7200)
		snprintf(buf, len, "%lldm", s / 60);
	else if (s < 172800)
		snprintf(buf, len, "%lldh", s / 3600);
	else
		snprintf(buf, len, "%lldd", s / 86400);
}

/* Prints the result as JSON (--json) or with fn; returns the exit code. */
static int
show(const struct cli *cli, json_t *r, void (*fn)(json_t *))
{
	if (r == NULL)
		return 1;
	if (cli->json || fn == NULL)
		cli_print_json(cli, r);
	else
		fn(r);
	json_decref(r);
	return 0;
}

static void
print_project(json_t *p)
{
	printf("id:           %s\npath:         %s\norigin:       %s\nname:         %s\n",
	    jstr(p, "id"), jstr(p, "path"), jstr(p, "origin_url"),
	    jstr(p, "display_name"));
	if (json_is_integer(json_object_get(p, "archived_at")))
		printf("archived:     yes\n");
}

static void
print_projects(json_t *r)
{
	json_t *list = json_object_get(r, "projects"), *p;
	size_t i;

	printf("%-20s %-8s %s\n", "ID", "ARCHIVED", "PATH");
	json_array_foreach(list, i, p)
		printf("%-20s %-8s %s\n", jstr(p, "id"),
		    json_is_integer(json_object_get(p, "archived_at")) ? "yes" : "",
		    jstr(p, "path"));
}

static int
usage_project(void)
{
	fprintf(stderr, "usage: ao project add PATH [--id ID] [--origin URL] "
	    "[--name NAME]\n       ao project ls [--all]\n"
	    "       ao project get ID\n       ao project rm ID\n");
	return EXIT_USAGE;
}

int
lc_project(const struct cli *cli, int argc, char **argv)
{
	json_t *params;
	const char *v;
	int i;

	if (argc < 1)
		return usage_project();
	if (strcmp(argv[0], "add") == 0) {
		if (argc < 2)
			return usage_project();
		params = json_pack("{s:s}", "path", argv[1]);
		for (i = 2; i < argc; i++) {
			if ((v = cli_flag_value(&i, argc, argv, "--id")) != NULL)
				json_object_set_new(params, "id", json_string(v));
			else if ((v = cli_flag_value(&i, argc, argv, "--origin")) != NULL)
				json_object_set_new(params, "origin_url", json_string(v));
			else if ((v = cli_flag_value(&i, argc, argv, "--name")) != NULL)
				json_object_set_new(params, "display_name", json_string(v));
			else {
				json_decref(params);
				return usage_project();
			}
		}
		if (argv[1][0] != '/') {
			char cwd[4096];

			if (getcwd(cwd, sizeof(cwd)) != NULL) {
				char *abs = NULL;

				if (asprintf(&abs, "%s/%s", cwd, argv[1]) != -1) {
					json_object_set_new(params, "path", json_string(abs));
					free(abs);
				}
			}
		}
		i = show(cli, cli_request_json(cli, "lcmd", "project.add", params),
		    print_project);
		json_decref(params);
		return i;
	}
	if (strcmp(argv[0], "ls") == 0) {
		params = json_object();
		if (argc > 1 && strcmp(argv[1], "--all") == 0)
			json_object_set_new(params, "include_archived", json_true());
		else if (argc > 1)
			return usage_project();
		i = show(cli, cli_request_json(cli, "lcmd", "project.list", params),
		    print_projects);
		json_decref(params);
		return i;
	}
	if ((strcmp(argv[0], "get") == 0 || strcmp(argv[0], "rm") == 0) && argc == 2) {
		params = json_pack("{s:s}", "id", argv[1]);
		i = show(cli, cli_request_json(cli, "lcmd", argv[0][0] == 'g' ?
		    "project.get" : "project.remove", params), print_project);
		json_decref(params);
		return i;
	}
	return usage_project();
}

static void
print_session(json_t *s)
{
	json_t *pr = json_object_get(s, "pr");
	char a[32];

	age(s, "created_at", a, sizeof(a));
	printf("id:           %s\nstatus:       %s\nstate:        %s\n",
	    jstr(s, "id"), jstr(s, "status"), jstr(s, "state"));
	if (json_is_string(json_object_get(s, "termination_reason")))
		printf("reason:       %s\n", jstr(s, "termination_reason"));
	printf("project:      %s\nruntime:      %s\nharness:      %s\n"
	    "alive:        %s\nactivity:     %s\nbranch:       %s\n"
	    "workspace:    %s\ncreated:      %s ago\n",
	    jstr(s, "project_id"), jstr(s, "runtime"), jstr(s, "harness"),
	    json_is_true(json_object_get(s, "is_alive")) ? "yes" : "no",
	    jstr(s, "activity_state"), jstr(s, "branch"), jstr(s, "workspace_path"), a);
	if (json_is_object(pr))
		printf("pr:           %s (#%lld, %s, ci %s, review %s, %s)\n",
		    jstr(pr, "url"), (long long)json_integer_value(json_object_get(pr,
		    "number")), jstr(pr, "state"), jstr(pr, "ci_state"),
		    jstr(pr, "review_decision"), jstr(pr, "mergeability"));
}

static void
print_sessions(json_t *r)
{
	json_t *list = json_object_get(r, "sessions"), *s, *pr;
	char a[32];
	size_t i;

	printf("%-16s %-18s %-12s %-8s %-6s %s\n", "ID", "STATUS", "STATE", "RUNTIME",
	    "AGE", "PR");
	json_array_foreach(list, i, s) {
		pr = json_object_get(s, "pr");
		age(s, "created_at", a, sizeof(a));
		printf("%-16s %-18s %-12s %-8s %-6s %s\n", jstr(s, "id"),
		    jstr(s, "status"), jstr(s, "state"), jstr(s, "runtime"), a,
		    json_is_object(pr) ? jstr(pr, "url") : "");
	}
}

static int attach(const struct cli *, const char *id);

static int
usage_session(void)
{
	fprintf(stderr, "usage: ao session ls [--project P] [--all]\n"
	    "       ao session get|kill|restore|done|cleanup|attach ID\n");
	return EXIT_USAGE;
}

int
lc_session(const struct cli *cli, int argc, char **argv)
{
	static const struct {
		const char *cmd, *method;
	} acts[] = {
		{ "get", "session.get" }, { "kill", "session.kill" },
		{ "restore", "session.restore" }, { "done", "session.done" },
		{ "cleanup", "session.cleanup" },
	};
	json_t *params;
	const char *v;
	size_t k;
	int i;

	if (argc < 1)
		return usage_session();
	if (strcmp(argv[0], "attach") == 0 && argc == 2)
		return attach(cli, argv[1]);
	if (strcmp(argv[0], "ls") == 0) {
		params = json_object();
		for (i = 1; i < argc; i++) {
			if ((v = cli_flag_value(&i, argc, argv, "--project")) != NULL)
				json_object_set_new(params, "project_id", json_string(v));
			else if (strcmp(argv[i], "--all") == 0)
				json_object_set_new(params, "include_terminated",
				    json_true());
			else {
				json_decref(params);
				return usage_session();
			}
		}
		i = show(cli, cli_request_json(cli, "lcmd", "session.list", params),
		    print_sessions);
		json_decref(params);
		return i;
	}
	for (k = 0; k < sizeof(acts) / sizeof(acts[0]); k++)
		if (strcmp(argv[0], acts[k].cmd) == 0 && argc == 2) {
			params = json_pack("{s:s}", "id", argv[1]);
			i = show(cli, cli_request_json(cli, "lcmd", acts[k].method, params),
			    print_session);
			json_decref(params);
			return i;
		}
	return usage_session();
}

/* ao spawn --project P [--harness H | -- ARGV...] [--prompt T] [--branch B] [--runtime R] */
int
lc_spawn(const struct cli *cli, int argc, char **argv)
{
	json_t *params = json_object(), *cmd = NULL;
	const char *v;
	int i, rc;

	for (i = 0; i < argc; i++) {
		if ((v = cli_flag_value(&i, argc, argv, "--project")) != NULL)
			json_object_set_new(params, "project_id", json_string(v));
		else if ((v = cli_flag_value(&i, argc, argv, "--harness")) != NULL)
			json_object_set_new(params, "harness", json_string(v));
		else if ((v = cli_flag_value(&i, argc, argv, "--prompt")) != NULL)
			json_object_set_new(params, "prompt", json_string(v));
		else if ((v = cli_flag_value(&i, argc, argv, "--branch")) != NULL)
			json_object_set_new(params, "branch", json_string(v));
		else if ((v = cli_flag_value(&i, argc, argv, "--issue")) != NULL)
			json_object_set_new(params, "issue_id", json_string(v));
		else if ((v = cli_flag_value(&i, argc, argv, "--runtime")) != NULL)
			json_object_set_new(params, "runtime", json_string(v));
		else if (strcmp(argv[i], "--") == 0) {
			cmd = json_array();
			for (i++; i < argc; i++)
				json_array_append_new(cmd, json_string(argv[i]));
			json_object_set_new(params, "command", cmd);
		} else {
			fprintf(stderr, "usage: ao spawn --project P [--harness "
			    "claude-code|codex|aider|opencode | -- ARGV...]\n"
			    "                [--prompt TEXT] [--branch B] [--issue ID] "
			    "[--runtime tmux|process]\n");
			json_decref(params);
			return EXIT_USAGE;
		}
	}
	if (json_object_get(params, "project_id") == NULL) {
		fprintf(stderr, "ao: spawn: --project is required\n");
		json_decref(params);
		return EXIT_USAGE;
	}
	rc = show(cli, cli_request_json(cli, "lcmd", "session.spawn", params),
	    print_session);
	json_decref(params);
	return rc;
}

/* ao session attach ID: exec tmux attach on the session's tmux runtime. */
static int
attach(const struct cli *cli, const char *id)
{
	json_t *params = json_pack("{s:s}", "id", id), *s, *h;
	json_error_t jerr;
	const char *sock, *name;
	char target[256];

	s = cli_request_json(cli, "lcmd", "session.get", params);
	json_decref(params);
	if (s == NULL)
		return 1;
	if (strcmp(jstr(s, "runtime"), "tmux") != 0) {
		fprintf(stderr, "ao: attach: session %s runs as a process; its output "
		    "is in its log (see its runtime_handle)\n", id);
		json_decref(s);
		return 1;
	}
	h = json_loads(jstr(s, "runtime_handle"), 0, &jerr);
	name = json_string_value(json_object_get(h, "tmux_session"));
	sock = json_string_value(json_object_get(h, "socket"));
	if (name == NULL) {
		fprintf(stderr, "ao: attach: session %s has no tmux session (not "
		    "started)\n", id);
		json_decref(h);
		json_decref(s);
		return 1;
	}
	snprintf(target, sizeof(target), "=%s", name);
	fflush(NULL);
	if (sock != NULL)
		execlp("tmux", "tmux", strchr(sock, '/') != NULL ? "-S" : "-L", sock,
		    "attach-session", "-t", target, (char *)NULL);
	else
		execlp("tmux", "tmux", "attach-session", "-t", target, (char *)NULL);
	fprintf(stderr, "ao: attach: cannot run tmux: %s\n", strerror(errno));
	json_decref(h);
	json_decref(s);
	return 1;
}

/* ao send ID MESSAGE... (or "-" to read the message from stdin) */
int
lc_send(const struct cli *cli, int argc, char **argv)
{
	json_t *params, *r;
	char *msg = NULL;
	size_t len = 0;
	int i;

	if (argc < 2) {
		fprintf(stderr, "usage: ao send ID MESSAGE...   (MESSAGE \"-\": "
		    "read stdin)\n");
		return EXIT_USAGE;
	}
	if (argc == 2 && strcmp(argv[1], "-") == 0) {
		FILE *f = open_memstream(&msg, &len);
		char buf[4096];
		size_t n;

		while ((n = fread(buf, 1, sizeof(buf), stdin)) > 0)
			fwrite(buf, 1, n, f);
		fclose(f);
	} else {
		FILE *f = open_memstream(&msg, &len);

		for (i = 1; i < argc; i++)
			fprintf(f, "%s%s", i > 1 ? " " : "", argv[i]);
		fclose(f);
	}
	params = json_pack("{s:s, s:s}", "id", argv[0], "message", msg);
	free(msg);
	if (params == NULL) {
		fprintf(stderr, "ao: send: the message must be UTF-8 text\n");
		return EXIT_USAGE;
	}
	r = cli_request_json(cli, "lcmd", "session.send", params);
	json_decref(params);
	return show(cli, r, NULL);
}

/* ao pr observe SESSION < observation.json */
int
lc_pr(const struct cli *cli, int argc, char **argv)
{
	json_error_t jerr;
	json_t *obs;
	int rc;

	if (argc != 2 || strcmp(argv[0], "observe") != 0) {
		fprintf(stderr, "usage: ao pr observe SESSION < observation.json\n"
		    "  observation: {\"pr\": {url, number, state?, review_decision?,"
		    " ci_state?, mergeability?},\n"
		    "                \"checks\"?: [...], \"comments\"?: [...]}\n");
		return EXIT_USAGE;
	}
	if ((obs = json_loadf(stdin, 0, &jerr)) == NULL) {
		fprintf(stderr, "ao: pr observe: invalid JSON on stdin at line %d "
		    "column %d: %s\n", jerr.line, jerr.column, jerr.text);
		return EXIT_USAGE;
	}
	if (!json_is_object(obs)) {
		fprintf(stderr, "ao: pr observe: the observation must be a JSON object\n");
		json_decref(obs);
		return EXIT_USAGE;
	}
	json_object_set_new(obs, "session_id", json_string(argv[1]));
	rc = show(cli, cli_request_json(cli, "lcmd", "pr.observe", obs), print_session);
	json_decref(obs);
	return rc;
}

static void
print_notes(json_t *r)
{
	json_t *list = json_object_get(r, "notifications"), *n;
	char a[32];
	size_t i;

	printf("%-6s %-6s %-8s %-22s %-14s %s\n", "ID", "AGE", "PRIORITY", "REACTION",
	    "SESSION", "MESSAGE");
	json_array_foreach(list, i, n) {
		age(n, "created_at", a, sizeof(a));
		printf("%-6lld %-6s %-8s %-22s %-14s %s\n",
		    (long long)json_integer_value(json_object_get(n, "id")), a,
		    jstr(n, "priority"), jstr(n, "reaction"), jstr(n, "session_id"),
		    jstr(n, "message"));
	}
}

int
lc_notifications(const struct cli *cli, int argc, char **argv)
{
	json_t *params = json_object();
	const char *v;
	char *end;
	int i;

	for (i = 0; i < argc; i++) {
		if ((v = cli_flag_value(&i, argc, argv, "--limit")) != NULL) {
			long n = strtol(v, &end, 10);

			if (*end != '\0' || n < 1) {
				fprintf(stderr, "ao: notifications: --limit needs a number "
				    ">= 1\n");
				json_decref(params);
				return EXIT_USAGE;
			}
			json_object_set_new(params, "limit", json_integer(n));
		} else {
			fprintf(stderr, "usage: ao notifications [--limit N]\n");
			json_decref(params);
			return EXIT_USAGE;
		}
	}
	i = show(cli, cli_request_json(cli, "lcmd", "notification.list", params),
	    print_notes);
	json_decref(params);
	return i;
}
