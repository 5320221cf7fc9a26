#include "cli/cli.h"

#include <stdlib.h>
#include <string.h>

#include "proto/bclient.h"
#include "proto/jsonmp.h"

int
cli_socket(const struct cli *cli, const char *component, char *buf, size_t len)
{
	char name[64], err[512];

	snprintf(name, sizeof(name), "%s.sock", component);
	if (paths_socket(&cli->paths, name, buf, len, err, sizeof(err)) == -1) {
		fprintf(stderr, "ao: %s\n", err);
		return -1;
	}
	return 0;
}

void
cli_print_json(const struct cli *cli, json_t *j)
{
	char *s = json_dumps(j, JSON_ENCODE_ANY |
	    (cli->json ? JSON_COMPACT : JSON_INDENT(2)));

	if (s != NULL) {
		printf("%s\n", s);
		free(s);
	}
	fflush(stdout);
}

json_t *
cli_request(const struct cli *cli, const char *component, const char *method,
    const void *params, size_t plen)
{
	char sock[PATH_MAX], err[512];
	struct bclient *bc;
	struct bclient_msg res;
	struct rpc_error rerr;
	json_t *j;

	if (cli_socket(cli, component, sock, sizeof(sock)) == -1)
		return NULL;
	if ((bc = bclient_connect(sock, err, sizeof(err))) == NULL) {
		fprintf(stderr, "ao: cannot reach ao-%s: %s\n"
		    "ao: is the daemon set running? (make run, or systemctl start ao)\n",
		    component, err);
		return NULL;
	}
	if (bclient_call(bc, method, params, plen, cli->timeout_ms, &res, &rerr) == -1) {
		fprintf(stderr, "ao: %s: %s: %s%s%s%s%s%s\n", method,
		    rpc_code_name(rerr.code), rerr.message,
		    rerr.extra_key[0] != '\0' ? " (" : "", rerr.extra_key,
		    rerr.extra_key[0] != '\0' ? ": " : "", rerr.extra_val,
		    rerr.extra_key[0] != '\0' ? ")" : "");
		bclient_free(bc);
		return NULL;
	}
	j = jsonmp_from_object(res.m.result);
	bclient_msg_free(&res);
	bclient_free(bc);
	return j;
}

json_t *
cli_request_json(const struct cli *cli, const char *component, const char *method,
    json_t *params)
{
	msgpack_sbuffer sb;
	msgpack_packer pk;
	json_t *r;

	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	if (params != NULL)
		jsonmp_pack(&pk, params);
	r = cli_request(cli, component, method, params != NULL ? sb.data : NULL,
	    params != NULL ? sb.size : 0);
	msgpack_sbuffer_destroy(&sb);
	return r;
}

int
cli_call(const struct cli *cli, const char *component, const char *method,
    const void *params, size_t plen)
{
	json_t *j = cli_request(cli, component, method, params, plen);

	if (j == NULL)
		return 1;
	cli_print_json(cli, j);
	json_decref(j);
	return 0;
}

const char *
cli_flag_value(int *i, int argc, char **argv, const char *flag)
{
	size_t n = strlen(flag);

	if (strncmp(argv[*i], flag, n) != 0)
		return NULL;
	if (argv[*i][n] == '=')
		return argv[*i] + n + 1;
	if (argv[*i][n] != '\0')
		return NULL;
	if (*i + 1 >= argc) {
		fprintf(stderr, "ao: %s needs a value\n", flag);
		exit(EXIT_USAGE);
	}
	return argv[++*i];
}
