/* The ao CLI: shared pieces.  Private header. */
#ifndef AO_CLI_H
#define AO_CLI_H

#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

#include "common/paths.h"
#include "proto/rpc.h"

#define EXIT_USAGE 2

struct cli {
	struct paths paths;
	int json;
	int64_t timeout_ms;
};

/* "<runtime dir>/<component>.sock" into buf; -1 after printing the reason. */
int cli_socket(const struct cli *, const char *component, char *buf, size_t len);
/*
 * Calls method on component's socket with params (one packed map or NULL)
 * and prints the result as JSON.  Returns the exit code.
 */
int cli_call(const struct cli *, const char *component, const char *method,
    const void *params, size_t plen);
/* The same, returning the result (NULL after printing the error). */
json_t *cli_request(const struct cli *, const char *component, const char *method,
    const void *params, size_t plen);
json_t *cli_request_json(const struct cli *, const char *component,
    const char *method, json_t *params);
void cli_print_json(const struct cli *, json_t *);
/* Takes "--flag VALUE" or "--flag=VALUE" at argv[*i]; the value or NULL. */
const char *cli_flag_value(int *i, int argc, char **argv, const char *flag);

/* lc.c: the commands of the lifecycle manager. */
int lc_project(const struct cli *, int argc, char **argv);
int lc_session(const struct cli *, int argc, char **argv);
int lc_spawn(const struct cli *, int argc, char **argv);
int lc_send(const struct cli *, int argc, char **argv);
int lc_pr(const struct cli *, int argc, char **argv);
int lc_notifications(const struct cli *, int argc, char **argv);

/* watch.c */
int watch_main(const struct cli *, int argc, char **argv);

#endif
