/*
 * ao watch: prints the event stream from cdcd.  When the connection drops
 * it reconnects with backoff (50 ms doubling to 2 s) and subscribes again
 * from the last event it printed, so nothing is skipped or printed twice.
 */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "proto/bclient.h"
#include "proto/jsonmp.h"

#define MAX_TYPES 16

struct watch {
	int64_t from;		/* -1: live from the head */
	const char *project, *session, *consumer;
	const char *types[MAX_TYPES];
	int ntypes;
	long count;		/* stop after this many events; 0: never */
	long seen;
};

static volatile sig_atomic_t stop;

static void
on_sigint(int sig)
{
	(void)sig;
	stop = 1;
}

static void
pack_subscribe(const struct watch *w, struct rpc_buf *b)
{
	int n = (w->from >= 0) + (w->project != NULL) + (w->session != NULL) +
	    (w->ntypes > 0) + (w->consumer != NULL), i;

	msgpack_pack_map(&b->pk, n);
	if (w->from >= 0)
		rpc_pack_kv_i64(&b->pk, "from", w->from);
	if (w->project != NULL)
		rpc_pack_kv_str(&b->pk, "project_id", w->project);
	if (w->session != NULL)
		rpc_pack_kv_str(&b->pk, "session_id", w->session);
	if (w->ntypes > 0) {
		rpc_pack_str(&b->pk, "types");
		msgpack_pack_array(&b->pk, w->ntypes);
		for (i = 0; i < w->ntypes; i++)
			rpc_pack_str(&b->pk, w->types[i]);
	}
	if (w->consumer != NULL)
		rpc_pack_kv_str(&b->pk, "consumer", w->consumer);
}

static void
print_event(const struct cli *cli, const msgpack_object *ev)
{
	json_t *j = jsonmp_from_object(ev);
	char *payload, when[32];
	time_t t;
	struct tm tm;

	if (cli->json) {
		cli_print_json(cli, j);
		json_decref(j);
		return;
	}
	t = (time_t)(json_integer_value(json_object_get(j, "at")) / 1000);
	localtime_r(&t, &tm);
	strftime(when, sizeof(when), "%H:%M:%S", &tm);
	payload = json_dumps(json_object_get(j, "payload"), JSON_COMPACT |
	    JSON_ENCODE_ANY);
	printf("%-8lld %s %-20s %-16s %s\n",
	    (long long)json_integer_value(json_object_get(j, "seq")), when,
	    json_string_value(json_object_get(j, "type")),
	    json_is_string(json_object_get(j, "session_id")) ?
	    json_string_value(json_object_get(j, "session_id")) : "-",
	    payload != NULL ? payload : "");
	fflush(stdout);
	free(payload);
	json_decref(j);
}

/* Prints reset/snapshot/snapshot_end/closing as {"<method>": params}. */
static void
print_other(const struct cli *cli, const char *method, const msgpack_object *params)
{
	json_t *j = json_object();

	json_object_set_new(j, method, params != NULL ? jsonmp_from_object(params) :
	    json_object());
	if (cli->json)
		cli_print_json(cli, j);
	else {
		char *s = json_dumps(j, JSON_COMPACT);

		printf("# %s\n", s != NULL ? s : method);
		fflush(stdout);
		free(s);
	}
	json_decref(j);
}

/* One connection's worth of watching.  Returns 0 when done, 1 to reconnect. */
static int
watch_once(const struct cli *cli, struct watch *w, const char *sock, int *fatal)
{
	char err[512];
	struct bclient *bc;
	struct bclient_msg res, n;
	struct rpc_error rerr;
	struct rpc_buf b;
	int r;

	*fatal = 0;
	if ((bc = bclient_connect(sock, err, sizeof(err))) == NULL) {
		fprintf(stderr, "ao: watch: %s (retrying)\n", err);
		return 1;
	}
	rpc_buf_init(&b);
	pack_subscribe(w, &b);
	r = bclient_call(bc, "subscribe", b.sb.data, b.sb.size, cli->timeout_ms, &res,
	    &rerr);
	rpc_buf_free(&b);
	if (r == -1) {
		fprintf(stderr, "ao: watch: subscribe: %s: %s\n", rpc_code_name(rerr.code),
		    rerr.message);
		bclient_free(bc);
		*fatal = rerr.code != RPC_UNAVAILABLE;
		return 1;
	}
	bclient_msg_free(&res);
	while (!stop) {
		r = bclient_next(bc, 500, &n, &rerr);
		if (r == 0)
			continue;
		if (r == -1) {
			fprintf(stderr, "ao: watch: %s (reconnecting)\n", rerr.message);
			bclient_free(bc);
			return 1;
		}
		if (strcmp(n.m.method, "event") == 0 && n.m.params != NULL) {
			int64_t seq = 0;

			rpc_obj_i64(rpc_map_get(n.m.params, "seq"), &seq);
			print_event(cli, n.m.params);
			w->from = seq;
			if (w->consumer != NULL) {
				struct bclient_msg ack;

				rpc_buf_init(&b);
				msgpack_pack_map(&b.pk, 1);
				rpc_pack_kv_i64(&b.pk, "seq", seq);
				if (bclient_call(bc, "ack", b.sb.data, b.sb.size,
				    cli->timeout_ms, &ack, &rerr) == 0)
					bclient_msg_free(&ack);
				rpc_buf_free(&b);
			}
			if (w->count > 0 && ++w->seen >= w->count)
				stop = 1;
		} else {
			if (strcmp(n.m.method, "snapshot_end") == 0)
				rpc_obj_i64(rpc_map_get(n.m.params, "seq"), &w->from);
			print_other(cli, n.m.method, n.m.params);
		}
		bclient_msg_free(&n);
	}
	bclient_free(bc);
	return 0;
}

int
watch_main(const struct cli *cli, int argc, char **argv)
{
	struct watch w = { .from = -1 };
	char sock[PATH_MAX], *end;
	const char *v;
	int64_t backoff = 50;
	int i, fatal;

	for (i = 0; i < argc; i++) {
		if ((v = cli_flag_value(&i, argc, argv, "--from")) != NULL) {
			w.from = strtoll(v, &end, 10);
			if (*end != '\0' || w.from < 0) {
				fprintf(stderr, "ao: watch: --from needs a seq >= 0\n");
				return EXIT_USAGE;
			}
		} else if ((v = cli_flag_value(&i, argc, argv, "--project")) != NULL)
			w.project = v;
		else if ((v = cli_flag_value(&i, argc, argv, "--session")) != NULL)
			w.session = v;
		else if ((v = cli_flag_value(&i, argc, argv, "--consumer")) != NULL)
			w.consumer = v;
		else if ((v = cli_flag_value(&i, argc, argv, "--type")) != NULL) {
			if (w.ntypes == MAX_TYPES) {
				fprintf(stderr, "ao: watch: at most %d --type\n", MAX_TYPES);
				return EXIT_USAGE;
			}
			w.types[w.ntypes++] = v;
		} else if ((v = cli_flag_value(&i, argc, argv, "--count")) != NULL) {
			w.count = strtol(v, &end, 10);
			if (*end != '\0' || w.count <= 0) {
				fprintf(stderr, "ao: watch: --count needs a number > 0\n");
				return EXIT_USAGE;
			}
		} else {
			fprintf(stderr, "usage: ao watch [--from SEQ] [--project P] "
			    "[--session S] [--type T]... [--consumer NAME] [--count N]\n");
			return EXIT_USAGE;
		}
	}
	if (cli_socket(cli, "cdcd", sock, sizeof(sock)) == -1)
		return 1;
	signal(SIGINT, on_sigint);
	signal(SIGTERM, on_sigint);
	signal(SIGPIPE, SIG_IGN);
	while (!stop) {
		if (watch_once(cli, &w, sock, &fatal) == 0)
			break;
		if (fatal)
			return 1;
		/*
		 * A durable consumer resumes from its stored offset; anyone else
		 * from the last event printed.
		 */
		usleep((useconds_t)backoff * 1000);
		backoff = backoff * 2 > 2000 ? 2000 : backoff * 2;
	}
	return 0;
}
