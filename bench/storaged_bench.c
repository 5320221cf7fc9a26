/*
 * Storage benchmark: ao-storaged's group-committed session.update throughput
 * from 8 concurrent clients and its one-call-at-a-time latency, against raw
 * SQLite applying the same updates in-process and a raw Unix socket round
 * trip, all measured in the same run.
 *
 *   storaged_bench BIN_DIR
 *
 * The raw baseline runs on an ao.db that a real ao-storaged created and
 * populated, so the schema, CHECKs and change-capture triggers are the
 * daemon's own.  Every update flips a session's activity_state between
 * active and idle, so session_updated fires and writes change_log, as real
 * traffic does; both sides check that it did, once per update.  The raw
 * UPDATE sets just the columns that change (activity_state, activity_at,
 * updated_at), as a hand-written program would: what storaged costs beyond
 * that, its generic statement included, is what the ratios show.
 *
 * Prints a markdown table and "BENCH <name> <value> <unit>" lines.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <sqlite3.h>

#include "bench/benchlib.h"
#include "common/aotime.h"
#include "common/log.h"
#include "common/xmalloc.h"
#include "proto/bclient.h"
#include "proto/client.h"

#define NCLIENTS	8
#define WINDOW		64		/* requests in flight per client */
#define SESS_PER_CLIENT	8		/* each client owns its sessions */
#define NSESS		(NCLIENTS * SESS_PER_CLIENT)
#define NWRITES		40000		/* updates per throughput figure */
#define RAW_BATCH	100		/* rows per batched raw transaction */
#define RAW_1ROW_N	10000		/* 1-row raw transactions: slow, fewer */
#define RAW_LAT_N	3000		/* 1-row raw transactions per latency round */
#define LAT_N		5000		/* per round */
#define LAT_ROUNDS	3
#define WARMUP_N	500
#define RTT_N		20000
#define CALL_MS		10000
#define SETTLE_MS	300		/* before reading the idle RSS */
#define TRIM_WAIT_MS	3000		/* after load: kept buffers go after 1 s, a trim 1 s later */
#define BIG_CONNS	40		/* connections holding an unfinished message */
#define BIG_BYTES	(15u << 20)	/* what each sends of it */

static struct {
	char dir[32];		/* the temporary directory of the run */
	pid_t self;
	pid_t daemon;		/* the running ao-storaged, or -1 */
	int done;		/* the run finished: remove dir */
	char ids[NSESS][BENCH_ID_LEN];
	/* activity_state last written per session: 0 unknown, 1 active, 2 idle. */
	int activity[NSESS];
	int raw_activity[NSESS];	/* the same for the raw database */
} bench;

/* atexit: a failed run still stops its daemon, but keeps the directory for its logs. */
static void
cleanup(void)
{
	if (getpid() != bench.self)
		return;
	if (bench.daemon > 0) {
		kill(bench.daemon, SIGTERM);
		waitpid(bench.daemon, NULL, 0);
		bench.daemon = -1;
	}
	if (bench.done)
		bench_rmrf(bench.dir);
	else if (bench.dir[0] != '\0')
		fprintf(stderr, "storaged_bench: kept %s (daemon logs: *.log)\n",
		    bench.dir);
}

/*
 * Starts BIN_DIR/ao-storaged on data dir `data` (sockets in data/run, stderr
 * to data.log) with one extra flag (or NULL).  Fills sock.
 */
static void
storaged_start(const char *bin, const char *data, const char *extra, char *sock,
    size_t socklen)
{
	const char *const flags[] = { extra, NULL };
	char run[128], logf[128];

	snprintf(run, sizeof(run), "%s/run", data);
	snprintf(logf, sizeof(logf), "%s.log", data);
	snprintf(sock, socklen, "%s/run/storaged.sock", data);
	bench.daemon = bench_daemon_start(bin, "storaged", data, run, flags, logf);
}

static void
storaged_stop(void)
{
	bench_daemon_stop(bench.daemon);
	bench.daemon = -1;
}

static int64_t
result_i64(const struct bclient_msg *res, const char *key)
{
	int64_t v;

	if (rpc_obj_i64(rpc_map_get(res->m.result, key), &v) == -1)
		fatalx("result has no integer '%s'", key);
	return v;
}

static void
pack_update(struct rpc_buf *b, int sess)
{
	bench_pack_update(b, bench.ids[sess], &bench.activity[sess]);
}

/* stats.<section>.<key> of a stats answer. */
static int64_t
stat_in(const struct bclient_msg *res, const char *section, const char *key)
{
	int64_t v;

	if (rpc_obj_i64(rpc_map_get(rpc_map_get(res->m.result, section), key),
	    &v) == -1)
		fatalx("stats has no integer '%s.%s'", section, key);
	return v;
}

/* The stats answer of the daemon at sock (free it). */
static void
stats_of(const char *sock, struct bclient_msg *res)
{
	struct bclient *bc;
	char err[256];

	if ((bc = bclient_connect(sock, err, sizeof(err))) == NULL)
		fatalx("%s", err);
	bench_call(bc, "stats", NULL, res);
	bclient_free(bc);
}

/* storaged's stats: commits, writes and head. */
static void
storaged_stats(const char *sock, int64_t *commits, int64_t *writes, int64_t *head)
{
	struct bclient_msg res;

	stats_of(sock, &res);
	*commits = result_i64(&res, "commits");
	*writes = result_i64(&res, "writes");
	*head = result_i64(&res, "head");
	bclient_msg_free(&res);
}

/* Raw SQLite, opened as store_open() opens ao.db. */

static void
raw_exec(sqlite3 *db, const char *sql)
{
	char *msg = NULL;

	if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK)
		fatalx("%s: %s", sql, msg != NULL ? msg : sqlite3_errmsg(db));
}

static sqlite3 *
raw_open(const char *path)
{
	sqlite3 *db;

	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX,
	    NULL) != SQLITE_OK)
		fatalx("opening %s: %s", path, sqlite3_errmsg(db));
	sqlite3_busy_timeout(db, 5000);
	raw_exec(db, "PRAGMA journal_mode=WAL");
	raw_exec(db, "PRAGMA synchronous=NORMAL");
	raw_exec(db, "PRAGMA foreign_keys=ON");
	return db;
}

static sqlite3_stmt *
raw_prepare(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *s;

	if (sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, &s,
	    NULL) != SQLITE_OK)
		fatalx("preparing \"%s\": %s", sql, sqlite3_errmsg(db));
	return s;
}

static void
raw_step(sqlite3 *db, sqlite3_stmt *s)
{
	int rc = sqlite3_step(s);

	sqlite3_reset(s);
	if (rc != SQLITE_DONE)
		fatalx("%s: %s", sqlite3_sql(s), sqlite3_errmsg(db));
}

static int64_t
raw_head(sqlite3 *db)
{
	sqlite3_stmt *s = raw_prepare(db,
	    "SELECT seq FROM sqlite_sequence WHERE name = 'change_log'");
	int64_t v = 0;

	if (sqlite3_step(s) == SQLITE_ROW)
		v = sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	return v;
}

/* The raw UPDATE of session sess, its activity_state flipped. */
static void
raw_flip(sqlite3 *db, sqlite3_stmt *update, int sess)
{
	sqlite3_bind_text(update, 1, bench.ids[sess], -1, SQLITE_STATIC);
	sqlite3_bind_text(update, 2, bench_next_activity(&bench.raw_activity[sess]),
	    -1, SQLITE_STATIC);
	sqlite3_bind_int64(update, 3, aotime_wall_ms());
	raw_step(db, update);
	if (sqlite3_changes(db) != 1)
		fatalx("no session '%s'", bench.ids[sess]);
}

/*
 * n updates in transactions of `batch` rows; returns updates/s.  With batch
 * 1, txn_us[0] and txn_us[1] are the p50 and p99 transaction times.
 */
static double
raw_writes_per_s(sqlite3 *db, int n, int batch, double txn_us[2])
{
	sqlite3_stmt *begin, *update, *commit;
	int64_t t0, t1, head, *ns = NULL;
	int i, k;

	begin = raw_prepare(db, "BEGIN IMMEDIATE");
	commit = raw_prepare(db, "COMMIT");
	update = raw_prepare(db, "UPDATE sessions SET activity_state = ?2,"
	    " activity_at = ?3, updated_at = ?3 WHERE id = ?1");
	if (batch == 1)
		ns = xcalloc((size_t)n, sizeof(*ns));
	head = raw_head(db);
	t0 = bench_now_ns();
	for (i = 0; i < n; i += batch) {
		t1 = bench_now_ns();
		raw_step(db, begin);
		for (k = 0; k < batch; k++) {
			raw_flip(db, update, (i + k) % NSESS);
		}
		raw_step(db, commit);
		if (ns != NULL)
			ns[i] = bench_now_ns() - t1;
	}
	t0 = bench_now_ns() - t0;
	sqlite3_finalize(begin);
	sqlite3_finalize(update);
	sqlite3_finalize(commit);
	if (raw_head(db) - head != n)
		fatalx("raw: %lld change_log rows for %d updates",
		    (long long)(raw_head(db) - head), n);
	if (ns != NULL) {
		bench_percentiles(ns, (size_t)n, &txn_us[0], &txn_us[1]);
		free(ns);
	}
	return n / ((double)t0 / 1e9);
}

/*
 * The floor measured as one: a server process that reads a 32-byte request
 * from a socket, runs the raw 1-row transaction and writes 32 bytes back,
 * one at a time, as storaged does.  It sleeps between requests like
 * storaged, so it pays the same wake-ups and cold caches that a raw
 * transaction in a tight loop does not.  Each session is flipped an even
 * number of times, so the raw database ends as it began (raw_activity).
 * Returns p50 and p99 in microseconds.
 */
#define RAW_SRV_N	(48 * NSESS)

static void
raw_server_latency(const char *dbpath, double *p50, double *p99)
{
	sqlite3_stmt *begin, *update, *commit;
	char buf[32] = { 0 };
	int64_t t0, *ns;
	int sv[2], i, st;
	sqlite3 *db;
	pid_t pid;

	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == -1)
		fatal("socketpair");
	if ((pid = fork()) == -1)
		fatal("fork");
	if (pid == 0) {
		close(sv[0]);
		db = raw_open(dbpath);
		begin = raw_prepare(db, "BEGIN IMMEDIATE");
		commit = raw_prepare(db, "COMMIT");
		update = raw_prepare(db, "UPDATE sessions SET activity_state = ?2,"
		    " activity_at = ?3, updated_at = ?3 WHERE id = ?1");
		for (i = 0; read(sv[1], buf, sizeof(buf)) == sizeof(buf); i++) {
			raw_step(db, begin);
			raw_flip(db, update, i % NSESS);
			raw_step(db, commit);
			if (write(sv[1], buf, sizeof(buf)) != sizeof(buf))
				_exit(1);
		}
		sqlite3_finalize(begin);
		sqlite3_finalize(update);
		sqlite3_finalize(commit);
		_exit(sqlite3_close(db) == SQLITE_OK && i == RAW_SRV_N ? 0 : 1);
	}
	close(sv[1]);
	ns = xcalloc(RAW_SRV_N, sizeof(*ns));
	for (i = 0; i < RAW_SRV_N; i++) {
		t0 = bench_now_ns();
		if (write(sv[0], buf, sizeof(buf)) != sizeof(buf) ||
		    read(sv[0], buf, sizeof(buf)) != sizeof(buf))
			fatal("raw server");
		ns[i] = bench_now_ns() - t0;
	}
	close(sv[0]);
	if (waitpid(pid, &st, 0) == -1 || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
		fatalx("raw server failed (status %#x)", st);
	bench_percentiles(ns, RAW_SRV_N, p50, p99);
	free(ns);
}

/* NCLIENTS event-driven clients in one loop, WINDOW calls in flight each. */
static double
storaged_writes_per_s(const char *sock)
{
	int64_t t0, t1;

	bench_write_storm(sock, NCLIENTS, NWRITES / NCLIENTS, WINDOW,
	    SESS_PER_CLIENT, bench.ids, bench.activity, &t0, &t1);
	return NWRITES / ((double)(t1 - t0) / 1e9);
}

/*
 * One client, one session.update at a time: p50, p99 and p99.9 in
 * microseconds (the checkpoints inside COMMIT show in the last).
 */
static void
storaged_latency(const char *sock, double *p50, double *p99, double *p999)
{
	struct bclient_msg res;
	struct rpc_buf b;
	struct bclient *bc;
	char err[256];
	int64_t t0, *ns;
	int i;

	if ((bc = bclient_connect(sock, err, sizeof(err))) == NULL)
		fatalx("%s", err);
	ns = xcalloc(LAT_N, sizeof(*ns));
	rpc_buf_init(&b);
	for (i = 0; i < WARMUP_N + LAT_N; i++) {
		pack_update(&b, i % NSESS);
		t0 = bench_now_ns();
		bench_call(bc, "session.update", &b, &res);
		t0 = bench_now_ns() - t0;
		bclient_msg_free(&res);
		if (i >= WARMUP_N)
			ns[i - WARMUP_N] = t0;
	}
	bench_percentiles(ns, LAT_N, p50, p99);	/* sorts ns */
	*p999 = (double)ns[LAT_N * 999 / 1000] / 1000;
	free(ns);
	rpc_buf_free(&b);
	bclient_free(bc);
}

/*
 * One latency round: the raw floor (a 1-row transaction, a socket round
 * trip) measured right before storaged's own, and where storaged's time
 * went by its stats (its last 1024 commits, on its monotonic clock).
 */
struct lat_round {
	double p50, p99, p999;		/* storaged, seen by the client */
	double txn50, txn99, rtt;	/* the raw floor */
	double srv50, srv99;		/* the same, as one server */
	int64_t queue50, stxn50, reply50, stxn99;	/* inside storaged */
	double ratio;
};

static void
latency_round(const char *sock, sqlite3 *raw, const char *rawpath,
    struct lat_round *r)
{
	struct bclient_msg res;
	double txn[2];

	r->rtt = bench_raw_rtt_us(RTT_N);
	raw_writes_per_s(raw, RAW_LAT_N, 1, txn);
	r->txn50 = txn[0];
	r->txn99 = txn[1];
	raw_server_latency(rawpath, &r->srv50, &r->srv99);
	storaged_latency(sock, &r->p50, &r->p99, &r->p999);
	stats_of(sock, &res);
	r->queue50 = stat_in(&res, "write_stages", "queue_p50_us");
	r->stxn50 = stat_in(&res, "write_stages", "txn_p50_us");
	r->stxn99 = stat_in(&res, "write_stages", "txn_p99_us");
	r->reply50 = stat_in(&res, "write_stages", "reply_p50_us");
	bclient_msg_free(&res);
	r->ratio = r->p50 / (r->txn50 + r->rtt);
}

static int
cmp_ratio(const void *a, const void *b)
{
	const struct lat_round *x = a, *y = b;

	return x->ratio < y->ratio ? -1 : x->ratio > y->ratio;
}

/* The WAL's high-water mark in KiB (the thread's peak, else the file). */
static int64_t
wal_peak_kib(const char *sock, const char *data)
{
	struct bclient_msg res;
	char wal[256];
	struct stat sb;
	int64_t v;

	stats_of(sock, &res);
	v = stat_in(&res, "wal", "peak_bytes");
	bclient_msg_free(&res);
	snprintf(wal, sizeof(wal), "%s/ao.db-wal", data);
	if (v == 0 && stat(wal, &sb) == 0)
		v = sb.st_size;
	return v / 1024;
}

/* CPU time (user + system) and minor page faults of a process so far. */
struct usage {
	double cpu_s;
	unsigned long minflt;
};

static void
proc_usage(pid_t pid, struct usage *u)
{
	char path[64], buf[1024], *p;
	unsigned long ut, st;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if ((f = fopen(path, "r")) == NULL)
		fatal("%s", path);
	p = fgets(buf, sizeof(buf), f);
	fclose(f);
	/* The command name may hold spaces: fields are counted after its ')'. */
	if (p == NULL || (p = strrchr(buf, ')')) == NULL ||
	    sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %lu %*u %*u %*u %lu %lu",
	    &u->minflt, &ut, &st) != 3)
		fatalx("%s: unexpected format", path);
	u->cpu_s = (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}


int
main(int argc, char **argv)
{
	char data[64], sock[128], db[128];
	double raw1, rawb, txn[2], w8, w8_inline, p50_inline, p99_inline, p999_inline;
	double ratio_w, cpu, flt, per;
	int64_t c0, c1, n0, n1, h0, h1, wal_peak, wal_peak_inline;
	struct lat_round rounds[LAT_ROUNDS], *med;
	struct usage u0, u1;
	struct timespec settle = { 0, SETTLE_MS * 1000000L };
	struct timespec trim_wait = { TRIM_WAIT_MS / 1000,
		(TRIM_WAIT_MS % 1000) * 1000000L };
	sqlite3 *raw;
	long rss_idle, rss_after, rss_peak;
	int i;

	log_init("storaged_bench", 0);
	bench_args(argc, argv, "storaged_bench BIN_DIR",
	    "storaged write throughput and latency against raw SQLite");
	signal(SIGPIPE, SIG_IGN);
	bench.self = getpid();
	bench.daemon = -1;
	snprintf(bench.dir, sizeof(bench.dir), "/tmp/aoS.XXXXXX");
	if (mkdtemp(bench.dir) == NULL)
		fatal("mkdtemp");
	atexit(cleanup);

	/* The raw baseline's database: made and populated by the daemon itself. */
	snprintf(data, sizeof(data), "%s/raw", bench.dir);
	storaged_start(argv[1], data, NULL, sock, sizeof(sock));
	bench_populate(sock, bench.ids, NSESS);
	storaged_stop();

	snprintf(db, sizeof(db), "%s/ao.db", data);
	raw = raw_open(db);
	raw1 = raw_writes_per_s(raw, RAW_1ROW_N, 1, txn);
	rawb = raw_writes_per_s(raw, NWRITES, RAW_BATCH, NULL);

	/* SQLite's own checkpoints inside COMMIT, for comparison. */
	snprintf(data, sizeof(data), "%s/inline", bench.dir);
	storaged_start(argv[1], data, "--checkpoint-thread=false", sock,
	    sizeof(sock));
	bench_populate(sock, bench.ids, NSESS);
	w8_inline = storaged_writes_per_s(sock);
	storaged_latency(sock, &p50_inline, &p99_inline, &p999_inline);
	wal_peak_inline = wal_peak_kib(sock, data);
	storaged_stop();

	memset(bench.activity, 0, sizeof(bench.activity));
	snprintf(data, sizeof(data), "%s/srv", bench.dir);
	storaged_start(argv[1], data, NULL, sock, sizeof(sock));
	bench_populate(sock, bench.ids, NSESS);
	nanosleep(&settle, NULL);
	rss_idle = bench_rss_kib(bench.daemon, NULL);
	storaged_stats(sock, &c0, &n0, &h0);
	proc_usage(bench.daemon, &u0);
	w8 = storaged_writes_per_s(sock);
	proc_usage(bench.daemon, &u1);
	storaged_stats(sock, &c1, &n1, &h1);
	if (n1 - n0 != NWRITES || h1 - h0 != NWRITES)
		fatalx("storaged: %lld writes, %lld change_log rows for %d updates",
		    (long long)(n1 - n0), (long long)(h1 - h0), NWRITES);
	for (i = 0; i < LAT_ROUNDS; i++)
		latency_round(sock, raw, db, &rounds[i]);
	wal_peak = wal_peak_kib(sock, data);
	/* And the hostile one: big messages that never finish. */
	bench_unfinished_messages(sock, BIG_CONNS, BIG_BYTES);
	nanosleep(&trim_wait, NULL);
	rss_after = bench_rss_kib(bench.daemon, &rss_peak);
	storaged_stop();
	if (sqlite3_close(raw) != SQLITE_OK)
		fatalx("closing %s", db);
	bench.done = 1;

	/* A host stall spoils the round it falls in: report the median one. */
	printf("| latency round | storaged p50 / p99 | raw txn p50 | raw rtt | "
	    "ratio | raw server p50 / p99 | ratio to it | inside storaged p50: "
	    "queue / txn / answers |\n|---|---|---|---|---|---|---|---|\n");
	for (i = 0; i < LAT_ROUNDS; i++)
		printf("| %d | %.1f / %.1f us | %.1f us | %.1f us | %.2f | %.1f / "
		    "%.1f us | %.2f | %lld / %lld / %lld us |\n", i + 1,
		    rounds[i].p50, rounds[i].p99, rounds[i].txn50, rounds[i].rtt,
		    rounds[i].ratio, rounds[i].srv50, rounds[i].srv99,
		    rounds[i].p50 / rounds[i].srv50, (long long)rounds[i].queue50,
		    (long long)rounds[i].stxn50, (long long)rounds[i].reply50);
	printf("\n");
	qsort(rounds, LAT_ROUNDS, sizeof(rounds[0]), cmp_ratio);
	med = &rounds[LAT_ROUNDS / 2];

	ratio_w = w8 / rawb;
	per = (double)(n1 - n0) / (double)(c1 - c0);
	cpu = (u1.cpu_s - u0.cpu_s) * 1e6 / NWRITES;
	flt = (double)(u1.minflt - u0.minflt) / NWRITES;
	printf("| figure | value |\n|---|---|\n");
	printf("| storaged session.update, %d clients × window %d | %.0f /s |\n",
	    NCLIENTS, WINDOW, w8);
	printf("| storaged writes per group commit (%d clients) | %.1f |\n",
	    NCLIENTS, per);
	printf("| storaged CPU per write (%d clients) | %.1f us |\n", NCLIENTS, cpu);
	printf("| storaged minor page faults per write (%d clients) | %.2f |\n",
	    NCLIENTS, flt);
	printf("| raw SQLite UPDATE, 1 row per transaction | %.0f /s |\n", raw1);
	printf("| raw SQLite UPDATE, %d rows per transaction | %.0f /s |\n",
	    RAW_BATCH, rawb);
	printf("| ratio storaged %dc / raw batched (target ≥ 0.7) | %.2f |\n",
	    NCLIENTS, ratio_w);
	printf("| storaged session.update latency p50 (1 client; the round with "
	    "the median ratio) | %.1f us |\n", med->p50);
	printf("| storaged session.update latency p99 / p99.9 (1 client) | %.1f / %.1f us |\n",
	    med->p99, med->p999);
	printf("| of which inside storaged, p50: in the batch / the transaction "
	    "/ the answers | %lld / %lld / %lld us |\n", (long long)med->queue50,
	    (long long)med->stxn50, (long long)med->reply50);
	printf("| raw SQLite 1-row transaction p50 / p99 | %.1f / %.1f us |\n",
	    med->txn50, med->txn99);
	printf("| raw Unix socket round trip (32 B) | %.2f us |\n", med->rtt);
	printf("| ratio latency p50 / (raw txn + raw rtt) (target ≤ 1.5) | %.2f |\n",
	    med->ratio);
	printf("| raw server (a socket round trip and the 1-row transaction in one "
	    "process that sleeps between requests, as storaged does) p50 / p99 | "
	    "%.1f / %.1f us |\n", med->srv50, med->srv99);
	printf("| ratio latency p50 / raw server p50 | %.2f |\n",
	    med->p50 / med->srv50);
	printf("| WAL high-water mark: 8 clients, then the latency rounds | %lld KiB |\n",
	    (long long)wal_peak);
	printf("| with SQLite's checkpoints inside COMMIT instead: 8 clients / "
	    "latency p50 / p99 / p99.9 / WAL high-water mark | %.0f /s / %.1f / "
	    "%.1f / %.1f us / %lld KiB |\n", w8_inline, p50_inline, p99_inline,
	    p999_inline, (long long)wal_peak_inline);
	printf("| storaged VmRSS idle / after the load (writes, then %d "
	    "connections each holding %u MiB of an unfinished message), %.1f s "
	    "later / peak | %ld / %ld / %ld KiB |\n", BIG_CONNS, BIG_BYTES >> 20,
	    TRIM_WAIT_MS / 1000.0, rss_idle, rss_after, rss_peak);
	printf("BENCH storaged_writes_per_s_8c %.0f updates/s\n", w8);
	printf("BENCH storaged_writes_per_commit_8c %.1f writes\n", per);
	printf("BENCH storaged_cpu_us_per_write_8c %.1f us\n", cpu);
	printf("BENCH storaged_minflt_per_write_8c %.2f faults\n", flt);
	printf("BENCH sqlite_raw_writes_per_s_1row %.0f updates/s\n", raw1);
	printf("BENCH sqlite_raw_writes_per_s_batched %.0f updates/s\n", rawb);
	printf("BENCH ratio_storaged_8c_vs_sqlite_batched %.2f x\n", ratio_w);
	printf("BENCH write_latency_p50_us %.1f us\n", med->p50);
	printf("BENCH write_latency_p99_us %.1f us\n", med->p99);
	printf("BENCH write_latency_p999_us %.1f us\n", med->p999);
	printf("BENCH write_txn_p50_us_in_storaged %lld us\n", (long long)med->stxn50);
	printf("BENCH sqlite_raw_txn_us %.1f us\n", med->txn50);
	printf("BENCH sqlite_raw_txn_p99_us %.1f us\n", med->txn99);
	printf("BENCH raw_socket_rtt_us %.2f us\n", med->rtt);
	printf("BENCH ratio_latency_vs_raw %.2f x\n", med->ratio);
	printf("BENCH raw_server_latency_p50_us %.1f us\n", med->srv50);
	printf("BENCH ratio_latency_vs_raw_server %.2f x\n", med->p50 / med->srv50);
	printf("BENCH wal_peak_kib %lld KiB\n", (long long)wal_peak);
	printf("BENCH storaged_writes_per_s_8c_inline_checkpoint %.0f updates/s\n",
	    w8_inline);
	printf("BENCH write_latency_p50_us_inline_checkpoint %.1f us\n", p50_inline);
	printf("BENCH write_latency_p99_us_inline_checkpoint %.1f us\n", p99_inline);
	printf("BENCH write_latency_p999_us_inline_checkpoint %.1f us\n", p999_inline);
	printf("BENCH wal_peak_kib_inline_checkpoint %lld KiB\n",
	    (long long)wal_peak_inline);
	printf("BENCH rss_kib_storaged_idle %ld KiB\n", rss_idle);
	printf("BENCH rss_kib_storaged_after_load %ld KiB\n", rss_after);
	printf("BENCH rss_kib_storaged_peak %ld KiB\n", rss_peak);
	return 0;
}
