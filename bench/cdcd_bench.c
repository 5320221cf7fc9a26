/*
 * Change fan-out benchmark: commit-to-subscriber latency through ao-storaged
 * and ao-cdcd with 1 and 100 subscribers, and the events per second each of
 * 100 subscribers receives, against Redis Streams (XADD, and XREAD BLOCK per
 * subscriber) measured in the same run when redis-server is installed.
 *
 *   cdcd_bench BIN_DIR
 *
 * One process holds both ends, so a write and its delivery are timed on one
 * clock: the main thread writes (libevent and proto/client.h for ao, plain
 * pipelined RESP for Redis) and NREADERS threads read every subscriber
 * socket with epoll and raw nonblocking reads.  A subscriber only frames
 * messages and reads one field of each (the seq, or the stream entry id), so
 * the harness costs little and the same for both systems.
 *
 * Latency is the time from storaged's COMMIT returning until a subscriber's
 * read returns the event it produced: the harness watches storaged too,
 * and its `committed {head, mono_us}` wake says when each commit returned
 * on the host's monotonic clock (write i of the phase produces seq
 * head + 1 + i: the harness is the only writer).  The time from just
 * before the session.update is handed to the client is printed beside it.
 * Events per second is THRU_N over the time from the first write to the
 * moment the last subscriber holds all THRU_N events; Redis gets the same
 * harness, the same writer concurrency and an entry of the same fields.
 *
 * The 100-subscriber latency and its raw floor (below) run LAT_ROUNDS
 * rounds each and report the round with the median p99, printing every
 * round's p99: on a shared VM a host stall of a few milliseconds freezes
 * every process at once, and the 1% of samples it spoils is the p99 of the
 * round it falls in.
 *
 * Diagnostics say where the time goes: the latency split at the write's
 * acknowledgement; a raw floor (one thread write()s each event to 100
 * socketpairs, read by the same readers); the CPU each process used in the
 * throughput phases (per delivery for the fan-out process); and a replay of
 * the stored events to 100 new subscribers, which measures the fan-out
 * alone, without ao-storaged's writes (XREAD from 0 for Redis).
 *
 * Prints a markdown table and "BENCH <name> <value> <unit>" lines.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "bench/benchlib.h"
#include "common/aotime.h"
#include "common/log.h"
#include "common/sock.h"
#include "common/xmalloc.h"
#include "proto/bclient.h"
#include "proto/client.h"
#include "proto/scan.h"

#define NSUBS		100
#define NREADERS	2		/* threads reading subscriber sockets */
#define LAT_N		2000		/* latency samples per subscriber */
#define LAT_WARMUP	200		/* paced writes before the samples */
#define LAT_WRITES	(LAT_WARMUP + LAT_N)
#define LAT_PERIOD_MS	2		/* one write every */
#define LAT_ROUNDS	3		/* 100-subscriber and raw latency rounds */
#define THRU_N		20000		/* events per throughput figure */
#define NWRITERS	8		/* pipelined writer connections */
#define WINDOW		64		/* writes in flight per writer */
#define PER_WRITER	(THRU_N / NWRITERS)
#define SESS_PER_WRITER	8
#define NSESS		(NWRITERS * SESS_PER_WRITER)
#define XREAD_COUNT	"1000"
#define READ_CHUNK	(256 * 1024)
#define CALL_MS		10000
#define DELIVER_MS	30000		/* every event delivered within */
#define START_MS	5000		/* redis-server answering within */
#define SETTLE_MS	300		/* before reading the idle RSS */
#define AFTER_LOAD_MS	2500		/* cdcd trims its heap within 2 s of the load */

enum proc {
	PROC_STORAGED,
	PROC_CDCD,
	PROC_REDIS,
	PROC_MAX,
};

static struct {
	char dir[32];		/* the temporary directory of the run */
	pid_t self;
	pid_t pid[PROC_MAX];	/* -1 when not running */
	int done;		/* the run finished: remove dir */
	char ids[NSESS][BENCH_ID_LEN];
	/* activity_state last written: 0 unknown, 1 active, 2 idle. */
	int activity[NSESS];
} bench;

enum sub_kind {
	SUB_CDC,
	SUB_REDIS,
};

/* A subscriber: one socket, owned by reader thread idx % NREADERS. */
struct sub {
	int fd;
	int idx;
	enum sub_kind kind;
	char *buf;		/* received, not yet parsed */
	size_t len, cap;
	int64_t seq;		/* cdc: the last seq received */
	bool in_reply;		/* redis: an XREAD reply's entries are due */
	int64_t left;		/* redis: entries of it still due */
	char last_id[64];	/* redis: the last entry id received */
	_Atomic int64_t got;	/* events received in this phase */
};

/*
 * What the main thread and the readers share.  The main thread changes the
 * phase only while nothing is in flight.
 */
static struct {
	struct sub subs[NSUBS];
	int nsubs;
	int ep[NREADERS];
	pthread_t thr[NREADERS];
	atomic_bool stop;
	_Atomic int64_t target;		/* events due to each subscriber */
	atomic_int finished;		/* subscribers that have them all */
	_Atomic int64_t end_ns;		/* when the last of them did */
	atomic_bool timing;		/* a latency phase: fill lat_ns */
	_Atomic int64_t seq0;		/* write i produces seq0 + 1 + i */
	_Atomic int64_t sent_ns[LAT_WRITES];
	int64_t lat_ns[NSUBS * LAT_N];	/* [subscriber][sample] */
	_Atomic int64_t cdc_bytes;	/* size of the first event message */
	_Atomic int64_t redis_bytes;	/* size of the first XREAD entry */
} rd;

static void
proc_stop(enum proc p)
{
	if (bench.pid[p] <= 0)
		return;
	kill(bench.pid[p], SIGTERM);
	waitpid(bench.pid[p], NULL, 0);
	bench.pid[p] = -1;
}

/*
 * atexit: a failed run still stops its processes; the directory stays for
 * its logs.
 */
static void
cleanup(void)
{
	if (getpid() != bench.self)
		return;
	proc_stop(PROC_REDIS);
	proc_stop(PROC_CDCD);
	proc_stop(PROC_STORAGED);
	if (bench.done)
		bench_rmrf(bench.dir);
	else if (bench.dir[0] != '\0')
		fprintf(stderr, "cdcd_bench: kept %s (logs: *.log)\n",
		    bench.dir);
}

/*
 * In a child: dies with the bench, however the bench ends (a fatal error in
 * a reader thread exits while cleanup may not finish), and points its
 * stderr (and stdout) at dir/<name>.log.
 */
static void
child_setup(const char *name, bool out)
{
	char logf[128];
	int fd;

	if (prctl(PR_SET_PDEATHSIG, SIGTERM) == -1 || getppid() != bench.self)
		_exit(127);

	snprintf(logf, sizeof(logf), "%s/%s.log", bench.dir, name);
	if ((fd = open(logf, O_WRONLY | O_CREAT | O_APPEND, 0600)) == -1)
		return;
	dup2(fd, STDERR_FILENO);
	if (out)
		dup2(fd, STDOUT_FILENO);
	close(fd);
}

/* Starts BIN_DIR/ao-<name> on the run's data and runtime dirs. */
static void
daemon_start(const char *bin, const char *name, enum proc slot)
{
	char data[64], run[64], logf[128];

	snprintf(data, sizeof(data), "%s/data", bench.dir);
	snprintf(run, sizeof(run), "%s/run", bench.dir);
	snprintf(logf, sizeof(logf), "%s/%s.log", bench.dir, name);
	bench.pid[slot] = bench_daemon_start(bin, name, data, run, NULL, logf);
}

static void
pack_update(struct rpc_buf *b, int sess)
{
	bench_pack_update(b, bench.ids[sess], &bench.activity[sess]);
}

/* CPU time (user + system) of pid, or of this process for 0, in ms. */
static int64_t
cpu_ms(pid_t pid)
{
	char path[64], line[1024], *p;
	unsigned long ut, st;
	struct rusage ru;
	FILE *f;

	if (pid == 0) {
		if (getrusage(RUSAGE_SELF, &ru) == -1)
			fatal("getrusage");
		return ((int64_t)ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) *
		    1000 + (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1000;
	}
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if ((f = fopen(path, "r")) == NULL)
		fatal("%s", path);
	p = fgets(line, sizeof(line), f);
	fclose(f);
	/* Fields 14 and 15, counted after the parenthesised command name. */
	if (p == NULL || (p = strrchr(line, ')')) == NULL ||
	    sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u"
	    " %lu %lu", &ut, &st) != 2)
		fatalx("%s: unreadable", path);
	return (int64_t)(ut + st) * 1000 / sysconf(_SC_CLK_TCK);
}

/* Redis RESP, by hand: the commands used here and the replies they get. */

/* Packs argv as a RESP command into out; returns its length. */
static size_t
resp_cmd(char *out, size_t cap, int argc, const char *const *argv)
{
	size_t n;
	int i;

	n = (size_t)snprintf(out, cap, "*%d\r\n", argc);
	for (i = 0; i < argc && n < cap; i++)
		n += (size_t)snprintf(out + n, cap - n, "$%zu\r\n%s\r\n",
		    strlen(argv[i]), argv[i]);
	if (n >= cap)
		fatalx("RESP command too long");
	return n;
}

/*
 * The header line at p, of type `type`: '*' or '$' (its count in *n), '+'
 * or ':'.  Returns the byte after its CRLF, or NULL when it is incomplete.
 * An error reply, or another type, is fatal: the harness only sends
 * commands that succeed.
 */
static const char *
resp_line(const char *p, const char *end, char type, int64_t *n)
{
	const char *nl, *q;
	int64_t v = 0;
	bool neg = false;

	if (p >= end || (nl = memchr(p, '\n', (size_t)(end - p))) == NULL)
		return NULL;
	if (*p != type || nl - p < 2 || nl[-1] != '\r')
		fatalx("redis: expected a '%c' reply, got \"%.*s\"", type,
		    (int)(nl - p > 200 ? 200 : nl - p), p);
	q = p + 1;
	if (*q == '-') {
		neg = true;
		q++;
	}
	for (; q < nl - 1; q++) {
		if (*q < '0' || *q > '9') {
			if (type == '*' || type == '$' || type == ':')
				fatalx("redis: bad length in \"%.*s\"",
				    (int)(nl - p), p);
			break;
		}
		v = v * 10 + (*q - '0');
	}
	if (n != NULL)
		*n = neg ? -v : v;
	return nl + 1;
}

/* A bulk string: *s and *len (s NULL for a nil bulk).  As resp_line. */
static const char *
resp_bulk(const char *p, const char *end, const char **s, int64_t *len)
{
	const char *q;

	if ((q = resp_line(p, end, '$', len)) == NULL)
		return NULL;
	*s = NULL;
	if (*len < 0)
		return q;
	if (end - q < *len + 2)
		return NULL;
	*s = q;
	return q + *len + 2;
}

/* Skips one whole reply; NULL when it is incomplete. */
static const char *
resp_skip(const char *p, const char *end)
{
	const char *s;
	int64_t n, i;

	if (p >= end)
		return NULL;
	switch (*p) {
	case '+':
	case ':':
		return resp_line(p, end, *p, NULL);
	case '$':
		return resp_bulk(p, end, &s, &n);
	case '*':
		if ((p = resp_line(p, end, '*', &n)) == NULL)
			return NULL;
		for (i = 0; i < n && p != NULL; i++)
			p = resp_skip(p, end);
		return p;
	default:
		/* '-': an error reply, fatal once its line is whole. */
		return resp_line(p, end, '+', NULL);
	}
}

/*
 * The head of an XREAD reply on one stream, up to its entry count (0 for a
 * nil reply).  As resp_line.
 */
static const char *
xread_head(const char *p, const char *end, int64_t *n)
{
	const char *s;
	int64_t k, len;

	if ((p = resp_line(p, end, '*', &k)) == NULL)
		return NULL;
	if (k == -1) {
		*n = 0;
		return p;
	}
	if (k != 1)
		fatalx("redis: XREAD returned %lld streams", (long long)k);
	if ((p = resp_line(p, end, '*', &k)) == NULL)
		return NULL;
	if (k != 2)
		fatalx("redis: a stream reply of %lld elements", (long long)k);
	if ((p = resp_bulk(p, end, &s, &len)) == NULL)
		return NULL;
	return resp_line(p, end, '*', n);
}

/* One stream entry [id, [field, value, ...]]; its id into id.  As resp_line. */
static const char *
xread_entry(const char *p, const char *end, char *id, size_t idlen)
{
	const char *s;
	int64_t k, len;

	if ((p = resp_line(p, end, '*', &k)) == NULL)
		return NULL;
	if (k != 2)
		fatalx("redis: a stream entry of %lld elements", (long long)k);
	if ((p = resp_bulk(p, end, &s, &len)) == NULL)
		return NULL;
	if (s == NULL || (size_t)len >= idlen)
		fatalx("redis: a bad stream entry id");
	if ((p = resp_skip(p, end)) == NULL)
		return NULL;
	memcpy(id, s, (size_t)len);
	id[len] = '\0';
	return p;
}

/* Writes all of buf to fd: a blocking one, or one with room for it. */
static void
write_all(int fd, const char *buf, size_t len)
{
	ssize_t n;

	while (len > 0) {
		if ((n = write(fd, buf, len)) == -1) {
			if (errno == EINTR)
				continue;
			fatal("write");
		}
		buf += n;
		len -= (size_t)n;
	}
}

/* Sends a command on a blocking connection; its whole reply goes to out. */
static size_t
redis_call(int fd, int argc, const char *const *argv, char *out, size_t cap)
{
	char cmd[512];
	size_t len = 0;
	ssize_t n;

	write_all(fd, cmd, resp_cmd(cmd, sizeof(cmd), argc, argv));
	while (len == 0 || resp_skip(out, out + len) == NULL) {
		if (len == cap)
			fatalx("redis: reply to %s longer than %zu bytes",
			    argv[0], cap);
		if ((n = read(fd, out + len, cap - len)) <= 0) {
			if (n == -1 && errno == EINTR)
				continue;
			fatalx("redis: connection lost during %s", argv[0]);
		}
		len += (size_t)n;
	}
	return len;
}

/* The readers. */

/* Drops the first n received bytes. */
static void
sub_consume(struct sub *s, size_t n)
{
	if (n == 0)
		return;
	memmove(s->buf, s->buf + n, s->len - n);
	s->len -= n;
}

/* One more event for s, received at t. */
static void
sub_count(struct sub *s, int64_t t)
{
	int64_t got = atomic_fetch_add(&s->got, 1) + 1, cur;

	if (got != atomic_load(&rd.target))
		return;
	cur = atomic_load(&rd.end_ns);
	while (t > cur && !atomic_compare_exchange_weak(&rd.end_ns, &cur, t))
		;
	atomic_fetch_add(&rd.finished, 1);
}

/* Decodes the msgpack unsigned integer at p: its length, or 0 for none. */
static size_t
mp_uint(const unsigned char *p, size_t n, int64_t *v)
{
	size_t len, i;
	uint64_t x = 0;

	if (n == 0)
		return 0;
	if (p[0] <= 0x7f) {
		*v = p[0];
		return 1;
	}
	switch (p[0]) {
	case 0xcc:
		len = 1;
		break;
	case 0xcd:
		len = 2;
		break;
	case 0xce:
		len = 4;
		break;
	case 0xcf:
		len = 8;
		break;
	default:
		return 0;
	}
	if (n < len + 1)
		return 0;
	for (i = 1; i <= len; i++)
		x = x << 8 | p[i];
	if (x > INT64_MAX)
		return 0;
	*v = (int64_t)x;
	return len + 1;
}

/*
 * Returns 0 with the seq of an `event` notification, 1 for a successful
 * response (to a subscribe sent by the replay), or -1 with what it is.
 * cdcd packs seq first, so the fast path reads it at a fixed offset;
 * anything else is decoded properly.
 */
static int
event_seq(const char *msg, size_t len, int64_t *seq, char *what, size_t whatlen)
{
	static const unsigned char head[] = { 0x93, 0x02, 0xa5, 'e', 'v', 'e',
		'n', 't', 0x91, 0x86, 0xa3, 's', 'e', 'q' };
	msgpack_unpacked up;
	struct rpc_error err;
	struct rpc_msg m;
	int rc = -1;

	if (len > sizeof(head) && memcmp(msg, head, sizeof(head)) == 0 &&
	    mp_uint((const unsigned char *)msg + sizeof(head),
	    len - sizeof(head), seq) > 0)
		return 0;
	msgpack_unpacked_init(&up);
	snprintf(what, whatlen, "an undecodable message");
	if (msgpack_unpack_next(&up, msg, len, NULL) ==
	    MSGPACK_UNPACK_SUCCESS &&
	    rpc_msg_parse(&up.data, up.zone, &m, &err) == 0) {
		if (m.type == RPC_NOTIFY && strcmp(m.method, "event") == 0 &&
		    rpc_obj_i64(rpc_map_get(m.params, "seq"), seq) == 0)
			rc = 0;
		else if (m.type == RPC_RESPONSE) {
			rpc_error_from_object(m.error, &err);
			if (err.code == RPC_OK)
				rc = 1;
			else
				snprintf(what, whatlen, "an error (%.100s)",
				    err.message);
		} else
			snprintf(what, whatlen, "a %s '%.64s'",
			    m.type == RPC_NOTIFY ? "notification" : "request",
			    m.method);
	}
	msgpack_unpacked_destroy(&up);
	return rc;
}

static void
cdc_event(struct sub *s, int64_t seq, int64_t t)
{
	int64_t i;

	if (seq != s->seq + 1)
		fatalx("subscriber %d: seq %lld after %lld: a gap or a "
		    "duplicate", s->idx, (long long)seq, (long long)s->seq);
	s->seq = seq;
	if (atomic_load(&rd.timing)) {
		i = seq - atomic_load(&rd.seq0) - 1;
		if (i >= LAT_WARMUP && i < LAT_WRITES)
			rd.lat_ns[s->idx * LAT_N + (i - LAT_WARMUP)] =
			    t - atomic_load(&rd.sent_ns[i]);
	}
	sub_count(s, t);
}

static void
cdc_input(struct sub *s, int64_t t)
{
	const char *err;
	char what[128];
	size_t off = 0, mlen;
	int64_t seq;

	for (;;) {
		switch (scan_buffer(s->buf + off, s->len - off,
		    SCAN_DEFAULT_MAX_MSG, &mlen, &err)) {
		case SCAN_MORE:
			sub_consume(s, off);
			return;
		case SCAN_ERROR:
			fatalx("subscriber %d: %s", s->idx, err);
		case SCAN_DONE:
			break;
		}
		switch (event_seq(s->buf + off, mlen, &seq, what,
		    sizeof(what))) {
		case -1:
			fatalx("subscriber %d: %s where an event was due",
			    s->idx, what);
		case 0:
			if (atomic_load(&rd.cdc_bytes) == 0)
				atomic_store(&rd.cdc_bytes, (int64_t)mlen);
			cdc_event(s, seq, t);
			break;
		}
		off += mlen;
	}
}

/* Sends XREAD BLOCK 0 for the entries after the last one received. */
static void
redis_xread(struct sub *s)
{
	const char *argv[] = { "XREAD", "BLOCK", "0", "COUNT", XREAD_COUNT,
		"STREAMS", "s", s->last_id };
	char cmd[256];
	size_t len = resp_cmd(cmd, sizeof(cmd), 8, argv);
	ssize_t n;

	do
		n = write(s->fd, cmd, len);
	while (n == -1 && errno == EINTR);
	if (n == -1)
		fatal("subscriber %d: sending XREAD", s->idx);
	if (n != (ssize_t)len)
		fatalx("subscriber %d: XREAD only partly sent", s->idx);
}

/* Counts whole entries as they arrive; a whole reply sends the next XREAD. */
static void
redis_input(struct sub *s, int64_t t)
{
	const char *p = s->buf, *end = s->buf + s->len, *q;

	for (;;) {
		if (!s->in_reply) {
			if ((q = xread_head(p, end, &s->left)) == NULL)
				break;
			p = q;
			s->in_reply = true;
		}
		while (s->left > 0 && (q = xread_entry(p, end, s->last_id,
		    sizeof(s->last_id))) != NULL) {
			if (atomic_load(&rd.redis_bytes) == 0)
				atomic_store(&rd.redis_bytes, (int64_t)(q - p));
			p = q;
			s->left--;
			sub_count(s, t);
		}
		if (s->left > 0)
			break;
		s->in_reply = false;
		redis_xread(s);
	}
	sub_consume(s, (size_t)(p - s->buf));
}

static void
sub_read(struct sub *s)
{
	ssize_t n;
	int64_t t;

	if (s->cap - s->len < READ_CHUNK) {
		s->cap = s->len + 2 * READ_CHUNK;
		s->buf = xreallocarray(s->buf, 1, s->cap);
	}
	n = read(s->fd, s->buf + s->len, s->cap - s->len);
	t = bench_now_ns();
	if (n == -1 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0)
		fatalx("subscriber %d: connection lost", s->idx);
	s->len += (size_t)n;
	if (s->kind == SUB_CDC)
		cdc_input(s, t);
	else
		redis_input(s, t);
}

static void *
reader_main(void *arg)
{
	struct epoll_event evs[64];
	int ep = *(int *)arg, n, i;

	while (!atomic_load(&rd.stop)) {
		if ((n = epoll_wait(ep, evs, 64, 50)) == -1) {
			if (errno == EINTR)
				continue;
			fatal("epoll_wait");
		}
		for (i = 0; i < n; i++)
			sub_read(evs[i].data.ptr);
	}
	return NULL;
}

static void
readers_start(void)
{
	int i;

	atomic_store(&rd.stop, false);
	for (i = 0; i < NREADERS; i++) {
		if ((rd.ep[i] = epoll_create1(EPOLL_CLOEXEC)) == -1)
			fatal("epoll_create1");
		if (pthread_create(&rd.thr[i], NULL, reader_main,
		    &rd.ep[i]) != 0)
			fatalx("pthread_create failed");
	}
}

/* Stops the readers, then closes every subscriber. */
static void
readers_stop(void)
{
	int i;

	atomic_store(&rd.stop, true);
	for (i = 0; i < NREADERS; i++) {
		pthread_join(rd.thr[i], NULL);
		close(rd.ep[i]);
	}
	for (i = 0; i < rd.nsubs; i++) {
		close(rd.subs[i].fd);
		free(rd.subs[i].buf);
	}
	memset(rd.subs, 0, sizeof(rd.subs));
	rd.nsubs = 0;
}

/* Hands a connected subscriber to its reader. */
static void
sub_add(struct sub *s)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = s };

	if (sock_set_nonblock(s->fd, 1) == -1)
		fatal("O_NONBLOCK");
	if (epoll_ctl(rd.ep[s->idx % NREADERS], EPOLL_CTL_ADD, s->fd,
	    &ev) == -1)
		fatal("epoll_ctl");
}

static struct sub *
sub_new(const char *path, enum sub_kind kind)
{
	struct sub *s;
	char err[256];

	if (rd.nsubs == NSUBS)
		fatalx("too many subscribers");
	s = &rd.subs[rd.nsubs];
	s->idx = rd.nsubs++;
	s->kind = kind;
	s->cap = 2 * READ_CHUNK;
	s->buf = xmalloc(s->cap);
	if ((s->fd = sock_connect_unix(path, 0, err, sizeof(err))) == -1)
		fatalx("%s", err);
	return s;
}

/* Connects, subscribes live from the head, and hands the socket to a reader. */
static void
cdc_subscribe(const char *path)
{
	struct sub *s = sub_new(path, SUB_CDC);
	struct rpc_error err;
	struct rpc_buf b;
	struct rpc_msg m;
	struct pollfd pfd = { .fd = s->fd, .events = POLLIN };
	msgpack_unpacked up;
	const char *serr;
	size_t mlen;
	ssize_t n;

	rpc_buf_init(&b);
	rpc_pack_request_head(&b.pk, 1, "subscribe");
	msgpack_pack_array(&b.pk, 0);
	write_all(s->fd, b.sb.data, b.sb.size);
	rpc_buf_free(&b);
	for (;;) {
		enum scan_status st = scan_buffer(s->buf, s->len,
		    SCAN_DEFAULT_MAX_MSG, &mlen, &serr);

		if (st == SCAN_DONE)
			break;
		if (st == SCAN_ERROR)
			fatalx("subscribe: %s", serr);
		if (poll(&pfd, 1, CALL_MS) != 1)
			fatalx("subscribe: no reply from ao-cdcd");
		if ((n = read(s->fd, s->buf + s->len, s->cap - s->len)) <= 0)
			fatalx("subscribe: connection lost");
		s->len += (size_t)n;
	}
	msgpack_unpacked_init(&up);
	if (msgpack_unpack_next(&up, s->buf, mlen, NULL) !=
	    MSGPACK_UNPACK_SUCCESS ||
	    rpc_msg_parse(&up.data, up.zone, &m, &err) == -1 ||
	    m.type != RPC_RESPONSE)
		fatalx("subscribe: a malformed reply");
	rpc_error_from_object(m.error, &err);
	if (err.code != RPC_OK)
		fatalx("subscribe: %s", err.message);
	if (rpc_obj_i64(rpc_map_get(m.result, "head"), &s->seq) == -1)
		fatalx("subscribe: no head in the reply");
	msgpack_unpacked_destroy(&up);
	sub_consume(s, mlen);
	sub_add(s);
}

/* Phases: every subscriber is to receive `target` events. */
static void
phase_begin(int64_t target)
{
	int i;

	for (i = 0; i < rd.nsubs; i++)
		atomic_store(&rd.subs[i].got, 0);
	atomic_store(&rd.finished, 0);
	atomic_store(&rd.end_ns, 0);
	atomic_store(&rd.target, target);
}

/* Waits until every subscriber has them all; returns when the last one did. */
static int64_t
phase_wait(const char *what)
{
	struct timespec ms = { 0, 1000000 };
	int64_t deadline = bench_now_ns() + (int64_t)DELIVER_MS * 1000000, least;
	int i;

	while (atomic_load(&rd.finished) < rd.nsubs) {
		if (bench_now_ns() > deadline) {
			least = INT64_MAX;
			for (i = 0; i < rd.nsubs; i++)
				if (atomic_load(&rd.subs[i].got) < least)
					least = atomic_load(&rd.subs[i].got);
			fatalx("%s: after %d s a subscriber has %lld of %lld "
			    "events", what, DELIVER_MS / 1000, (long long)least,
			    (long long)atomic_load(&rd.target));
		}
		nanosleep(&ms, NULL);
	}
	return atomic_load(&rd.end_ns);
}

/* The ao side: latency, one write every LAT_PERIOD_MS on one connection. */

struct pacer {
	struct client *c;
	struct client *watch;	/* storaged's `committed {head, mono_us}` */
	int64_t last_head;
	int64_t *commit_ns;	/* [write]: when its COMMIT returned */
	bool watching;
	struct event_base *base;
	struct event *tick;
	int sent, acked;
	int64_t *ack_ns;	/* replies come in order: [write] */
	struct rpc_buf params;
};

static void
pacer_reply(void *arg, const struct rpc_error *err,
    const msgpack_object *result)
{
	struct pacer *pc = arg;

	(void)result;
	if (err != NULL)
		fatalx("session.update: %s", err->message);
	pc->ack_ns[pc->acked] = bench_now_ns() - atomic_load(&rd.sent_ns[pc->acked]);
	if (++pc->acked == LAT_WRITES)
		event_base_loopbreak(pc->base);
}

static void
pacer_tick(evutil_socket_t fd, short what, void *arg)
{
	struct pacer *pc = arg;

	(void)fd;
	(void)what;
	if (pc->sent == LAT_WRITES) {
		event_del(pc->tick);
		return;
	}
	pack_update(&pc->params, 0);
	atomic_store(&rd.sent_ns[pc->sent], bench_now_ns());
	pc->sent++;
	client_call(pc->c, "session.update", pc->params.sb.data,
	    pc->params.sb.size, CALL_MS, pacer_reply, pc);
}

static void
pacer_start(struct pacer *pc)
{
	struct timeval tv;

	if (!pc->watching || pc->c == NULL || !client_connected(pc->c) ||
	    event_pending(pc->tick, EV_TIMEOUT, NULL))
		return;
	aotime_tv(&tv, LAT_PERIOD_MS);
	event_add(pc->tick, &tv);
}

static void
pacer_connect(struct client *c, void *arg)
{
	(void)c;
	pacer_start(arg);
}

static void
watch_reply(void *arg, const struct rpc_error *err, const msgpack_object *result)
{
	struct pacer *pc = arg;

	if (err != NULL)
		fatalx("storaged watch: %s", err->message);
	if (rpc_obj_i64(rpc_map_get(result, "head"), &pc->last_head) == -1)
		fatalx("storaged watch: no head");
	pc->watching = true;
	pacer_start(pc);
}

static void
watch_connect(struct client *c, void *arg)
{
	client_call(c, "watch", NULL, 0, CALL_MS, watch_reply, arg);
}

/* Every seq a commit covered gets its time. */
static void
watch_notify(struct client *c, const char *method, const msgpack_object *params,
    void *arg)
{
	struct pacer *pc = arg;
	int64_t head, us, seq, w;

	(void)c;
	if (strcmp(method, "committed") != 0)
		return;
	if (rpc_obj_i64(rpc_map_get(params, "head"), &head) == -1 ||
	    rpc_obj_i64(rpc_map_get(params, "mono_us"), &us) == -1)
		fatalx("committed: no head or mono_us");
	for (seq = pc->last_head + 1; seq <= head; seq++) {
		w = seq - atomic_load(&rd.seq0) - 1;
		if (w >= 0 && w < LAT_WRITES)
			pc->commit_ns[w] = us * 1000;
	}
	if (head > pc->last_head)
		pc->last_head = head;
}

static void
writer_disconnect(struct client *c, const char *reason, void *arg)
{
	(void)c;
	(void)arg;
	fatalx("ao-storaged went away: %s", reason);
}

/* Latency figures of one phase, in microseconds. */
struct lat {
	double p50, p99;		/* COMMIT returned → event read */
	double sent_p50, sent_p99;	/* write sent → event read */
	double ack_p50, ack_p99;	/* write sent → write acknowledged */
	double after_p50, after_p99;	/* write acknowledged → event read */
};

/*
 * LAT_WRITES paced writes while the connected subscribers read; the last
 * LAT_N count, each once per subscriber.  storaged notifies cdcd only after
 * it has answered a batch, so "acknowledged → read" is roughly cdcd's share.
 */
static void
cdc_latency(const char *sock, struct lat *out)
{
	static const struct client_cbs cbs = { pacer_connect, writer_disconnect,
		NULL };
	static const struct client_cbs wcbs = { watch_connect, writer_disconnect,
		watch_notify };
	static int64_t commits[LAT_WRITES];
	struct pacer pc = { 0 };
	struct event_config *ecfg;
	size_t n = (size_t)rd.nsubs * LAT_N, k;
	int64_t acks[LAT_WRITES], *v, w;

	/*
	 * A precise (timerfd) timer: with epoll's millisecond timeouts the
	 * 2 ms period fired as pairs of writes 10 us apart every 4 ms.
	 */
	if ((ecfg = event_config_new()) == NULL ||
	    event_config_set_flag(ecfg, EVENT_BASE_FLAG_PRECISE_TIMER) == -1 ||
	    (pc.base = event_base_new_with_config(ecfg)) == NULL)
		fatalx("event_base_new_with_config failed");
	event_config_free(ecfg);
	pc.tick = event_new(pc.base, -1, EV_PERSIST, pacer_tick, &pc);
	rpc_buf_init(&pc.params);
	pc.ack_ns = acks;
	memset(commits, 0, sizeof(commits));
	pc.commit_ns = commits;
	memset(rd.lat_ns, 0, sizeof(rd.lat_ns));
	atomic_store(&rd.seq0, rd.subs[0].seq);
	atomic_store(&rd.timing, true);
	phase_begin(LAT_WRITES);
	pc.watch = client_new(pc.base, sock, &wcbs, &pc, NULL);
	pc.c = client_new(pc.base, sock, &cbs, &pc, NULL);
	event_base_dispatch(pc.base);
	phase_wait("latency");
	atomic_store(&rd.timing, false);
	/* The wake of the last commit may trail its acknowledgement. */
	while (pc.last_head < atomic_load(&rd.seq0) + LAT_WRITES)
		event_base_loop(pc.base, EVLOOP_ONCE);
	client_free(pc.watch);
	client_free(pc.c);
	event_free(pc.tick);
	event_base_loop(pc.base, EVLOOP_NONBLOCK);
	event_base_free(pc.base);
	rpc_buf_free(&pc.params);

	v = xcalloc(n, sizeof(*v));
	for (k = 0; k < n; k++) {
		if (rd.lat_ns[k] <= 0)
			fatalx("latency: a sample is missing");
		v[k] = rd.lat_ns[k] - acks[LAT_WARMUP + k % LAT_N];
	}
	bench_percentiles(v, n, &out->after_p50, &out->after_p99);
	memcpy(v, rd.lat_ns, n * sizeof(*v));
	bench_percentiles(v, n, &out->sent_p50, &out->sent_p99);
	for (k = 0; k < n; k++) {
		w = LAT_WARMUP + (int64_t)(k % LAT_N);
		if (commits[w] == 0)
			fatalx("latency: no committed wake for write %lld",
			    (long long)w);
		v[k] = atomic_load(&rd.sent_ns[w]) + rd.lat_ns[k] - commits[w];
	}
	bench_percentiles(v, n, &out->p50, &out->p99);
	bench_percentiles(acks + LAT_WARMUP, LAT_N, &out->ack_p50, &out->ack_p99);
	free(v);
}

/* Packs an event shaped as cdcd's, with the same fields and sizes. */
static void
pack_event(struct rpc_buf *b, int64_t seq)
{
	rpc_buf_reset(b);
	rpc_pack_notify_head(&b->pk, "event");
	msgpack_pack_array(&b->pk, 1);
	msgpack_pack_map(&b->pk, 6);
	rpc_pack_kv_i64(&b->pk, "seq", seq);
	rpc_pack_kv_str(&b->pk, "project_id", "bench");
	rpc_pack_kv_str(&b->pk, "session_id", "bench-1");
	rpc_pack_kv_str(&b->pk, "type", "session_updated");
	rpc_pack_str(&b->pk, "payload");
	msgpack_pack_map(&b->pk, 5);
	rpc_pack_kv_str(&b->pk, "id", "bench-1");
	rpc_pack_kv_str(&b->pk, "state", "not_started");
	rpc_pack_kv_nil(&b->pk, "termination_reason");
	rpc_pack_kv_bool(&b->pk, "is_alive", false);
	rpc_pack_kv_str(&b->pk, "activity_state", seq % 2 ? "active" : "idle");
	rpc_pack_kv_i64(&b->pk, "at", aotime_wall_ms());
}

/*
 * The floor under the fan-out latency on this machine: this thread writes
 * each event, paced as cdc_latency paces its writes, to NSUBS socketpairs
 * in a plain loop, and the same readers time them.  Starts and stops the
 * readers itself: they must be gone before the writing ends close.
 */
static void
raw_fanout_latency(double *p50, double *p99)
{
	struct timespec next;
	struct rpc_buf b;
	struct sub *s;
	size_t n = (size_t)NSUBS * LAT_N;
	int64_t *v;
	int wfd[NSUBS], sv[2], i, k;

	readers_start();
	for (k = 0; k < NSUBS; k++) {
		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0,
		    sv) == -1)
			fatal("socketpair");
		s = &rd.subs[rd.nsubs];
		s->idx = rd.nsubs++;
		s->kind = SUB_CDC;
		s->cap = 2 * READ_CHUNK;
		s->buf = xmalloc(s->cap);
		s->fd = sv[1];
		wfd[k] = sv[0];
		sub_add(s);
	}
	rpc_buf_init(&b);
	memset(rd.lat_ns, 0, sizeof(rd.lat_ns));
	atomic_store(&rd.seq0, 0);
	atomic_store(&rd.timing, true);
	phase_begin(LAT_WRITES);
	clock_gettime(CLOCK_MONOTONIC, &next);
	for (i = 0; i < LAT_WRITES; i++) {
		next.tv_nsec += LAT_PERIOD_MS * 1000000L;
		if (next.tv_nsec >= 1000000000L) {
			next.tv_sec++;
			next.tv_nsec -= 1000000000L;
		}
		while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next,
		    NULL) == EINTR)
			;
		pack_event(&b, i + 1);
		atomic_store(&rd.sent_ns[i], bench_now_ns());
		for (k = 0; k < NSUBS; k++)
			write_all(wfd[k], b.sb.data, b.sb.size);
	}
	phase_wait("raw fan-out");
	atomic_store(&rd.timing, false);
	readers_stop();
	rpc_buf_free(&b);
	for (k = 0; k < NSUBS; k++)
		close(wfd[k]);
	v = xcalloc(n, sizeof(*v));
	memcpy(v, rd.lat_ns, n * sizeof(*v));
	bench_percentiles(v, n, p50, p99);
	free(v);
}

/* The ao side: throughput, NWRITERS clients, WINDOW calls in flight each. */

/* Returns events/s per subscriber; *written is the writers' own rate. */
static double
cdc_throughput(const char *sock, double *written)
{
	int64_t t0, t1, t2;

	phase_begin(THRU_N);
	bench_write_storm(sock, NWRITERS, PER_WRITER, WINDOW, SESS_PER_WRITER,
	    bench.ids, bench.activity, &t0, &t1);
	t2 = phase_wait("ao throughput");
	*written = THRU_N / ((double)(t1 - t0) / 1e9);
	return THRU_N / ((double)(t2 - t0) / 1e9);
}

/*
 * cdcd alone, without storaged in the path: NSUBS new subscribers ask for
 * the THRU_N stored events after `from` at once.  Returns events/s per
 * subscriber, from the first request to the last subscriber having them all.
 */
static double
cdc_replay(const char *path, int64_t from)
{
	struct rpc_buf b;
	struct sub *s;
	int64_t t0;
	int i;

	rpc_buf_init(&b);
	rpc_pack_request_head(&b.pk, 1, "subscribe");
	msgpack_pack_array(&b.pk, 1);
	msgpack_pack_map(&b.pk, 1);
	rpc_pack_kv_i64(&b.pk, "from", from);
	phase_begin(THRU_N);
	for (i = 0; i < NSUBS; i++) {
		s = sub_new(path, SUB_CDC);
		s->seq = from;
		sub_add(s);
	}
	t0 = bench_now_ns();
	for (i = 0; i < NSUBS; i++)
		write_all(rd.subs[i].fd, b.sb.data, b.sb.size);
	rpc_buf_free(&b);
	return THRU_N / ((double)(phase_wait("ao replay") - t0) / 1e9);
}

/* The Redis side. */

/* Whether prog is an executable file on PATH. */
static bool
in_path(const char *prog)
{
	char *path, *dir, *save = NULL, file[4096];
	bool found = false;

	if (getenv("PATH") == NULL)
		return false;
	path = xstrdup(getenv("PATH"));
	for (dir = strtok_r(path, ":", &save); dir != NULL && !found;
	    dir = strtok_r(NULL, ":", &save)) {
		snprintf(file, sizeof(file), "%s/%s", dir, prog);
		found = access(file, X_OK) == 0;
	}
	free(path);
	return found;
}

/*
 * Starts redis-server on a Unix socket only, without persistence; returns
 * a connection to it.
 */
static int
redis_start(const char *path)
{
	static const char *const ping[] = { "PING" };
	char err[256], reply[64];
	int64_t deadline = bench_now_ns() + (int64_t)START_MS * 1000000;
	struct timespec ms10 = { 0, 10000000 };
	pid_t pid;
	int fd;

	if ((pid = fork()) == -1)
		fatal("fork");
	if (pid == 0) {
		child_setup("redis", true);
		execlp("redis-server", "redis-server", "--port", "0",
		    "--unixsocket", path, "--unixsocketperm", "700", "--save",
		    "", "--appendonly", "no", "--dir", bench.dir,
		    "--daemonize", "no", (char *)NULL);
		_exit(127);
	}
	bench.pid[PROC_REDIS] = pid;
	while ((fd = sock_connect_unix(path, 0, err, sizeof(err))) == -1) {
		if (bench_now_ns() > deadline ||
		    waitpid(pid, NULL, WNOHANG) == pid) {
			bench.pid[PROC_REDIS] = -1;
			fatalx("redis-server did not start: see %s/redis.log",
			    bench.dir);
		}
		nanosleep(&ms10, NULL);
	}
	redis_call(fd, 1, ping, reply, sizeof(reply));
	if (strncmp(reply, "+PONG", 5) != 0)
		fatalx("redis: PING answered \"%.20s\"", reply);
	return fd;
}

/* Waits until n clients are blocked (the readers' first XREAD). */
static void
redis_wait_blocked(int ctl, int n)
{
	static const char *const info[] = { "INFO", "clients" };
	int64_t deadline = bench_now_ns() + (int64_t)START_MS * 1000000;
	struct timespec ms = { 0, 1000000 };
	char reply[4096], want[64];
	size_t len;

	snprintf(want, sizeof(want), "blocked_clients:%d\r", n);
	for (;;) {
		len = redis_call(ctl, 2, info, reply, sizeof(reply) - 1);
		reply[len] = '\0';
		if (strstr(reply, want) != NULL)
			return;
		if (bench_now_ns() > deadline)
			fatalx("redis: the readers did not block: %s", reply);
		nanosleep(&ms, NULL);
	}
}

/*
 * NWRITERS connections with WINDOW XADDs in flight each, while the readers
 * read; returns events/s per subscriber, *written the writers' own rate.
 */
static double
redis_throughput(const char *path, double *written)
{
	const char *payload = "{\"id\":\"bench-1\",\"state\":\"not_started\","
	    "\"termination_reason\":null,\"is_alive\":false,"
	    "\"activity_state\":\"active\"}";
	char at[32], cmd[512], err[256], *batch, rbuf[NWRITERS][8192];
	const char *argv[13] = { "XADD", "s", "*", "project_id", "bench",
		"session_id", "bench-1", "type", "session_updated", "payload",
		payload, "at", at };
	struct pollfd pfd[NWRITERS];
	size_t clen, len[NWRITERS];
	int sent[NWRITERS], acked[NWRITERS], running = NWRITERS, i, k;
	int64_t t0, t1, t2;
	const char *p, *q;
	ssize_t n;

	snprintf(at, sizeof(at), "%lld", (long long)aotime_wall_ms());
	clen = resp_cmd(cmd, sizeof(cmd), 13, argv);
	batch = xcalloc(WINDOW, clen);
	for (i = 0; i < WINDOW; i++)
		memcpy(batch + (size_t)i * clen, cmd, clen);
	for (i = 0; i < NWRITERS; i++) {
		pfd[i].fd = sock_connect_unix(path, 0, err, sizeof(err));
		if (pfd[i].fd == -1)
			fatalx("%s", err);
		pfd[i].events = POLLIN;
		len[i] = 0;
		sent[i] = acked[i] = 0;
	}
	phase_begin(THRU_N);
	t0 = bench_now_ns();
	for (i = 0; i < NWRITERS; i++) {
		write_all(pfd[i].fd, batch, WINDOW * clen);
		sent[i] = WINDOW;
	}
	/* A window of replies (short bulk strings: entry ids) fits rbuf[i]. */
	while (running > 0) {
		if (poll(pfd, NWRITERS, CALL_MS) <= 0)
			fatalx("redis: no XADD replies for %d ms", CALL_MS);
		for (i = 0; i < NWRITERS; i++) {
			if (pfd[i].fd < 0 || pfd[i].revents == 0)
				continue;
			if ((n = read(pfd[i].fd, rbuf[i] + len[i],
			    sizeof(rbuf[i]) - len[i])) <= 0)
				fatalx("redis: writer connection lost");
			len[i] += (size_t)n;
			p = rbuf[i];
			for (k = 0; (q = resp_skip(p, rbuf[i] + len[i])) !=
			    NULL; p = q) {
				acked[i]++;
				if (sent[i] + k < PER_WRITER)
					k++;
			}
			len[i] -= (size_t)(p - rbuf[i]);
			memmove(rbuf[i], p, len[i]);
			if (k > 0) {
				write_all(pfd[i].fd, batch, (size_t)k * clen);
				sent[i] += k;
			}
			if (acked[i] == PER_WRITER) {
				close(pfd[i].fd);
				pfd[i].fd = -1;
				running--;
			}
		}
	}
	t1 = bench_now_ns();
	t2 = phase_wait("redis throughput");
	free(batch);
	*written = THRU_N / ((double)(t1 - t0) / 1e9);
	return THRU_N / ((double)(t2 - t0) / 1e9);
}

/* CPU used by the processes of a phase, in ms. */
struct cpu {
	int64_t daemon;		/* ao-cdcd, or redis-server */
	int64_t storaged;	/* ao-storaged, or 0 */
	int64_t harness;	/* this process: the writers and the readers */
};

static void
cpu_sample(struct cpu *c, pid_t daemon, pid_t storaged)
{
	c->daemon = cpu_ms(daemon);
	c->storaged = storaged > 0 ? cpu_ms(storaged) : 0;
	c->harness = cpu_ms(0);
}

static void
cpu_since(struct cpu *c, const struct cpu *before, pid_t daemon, pid_t storaged)
{
	struct cpu now;

	cpu_sample(&now, daemon, storaged);
	c->daemon = now.daemon - before->daemon;
	c->storaged = now.storaged - before->storaged;
	c->harness = now.harness - before->harness;
}

/* CPU ns one delivery cost the fan-out process. */
static double
ns_per_delivery(const struct cpu *c)
{
	return (double)c->daemon * 1e6 / ((double)THRU_N * NSUBS);
}

static void
print_cpu(const char *what, const struct cpu *c, double secs)
{
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);

	if (strcmp(what, "cdcd") == 0)
		printf("| CPU in the cdcd throughput phase (%.2f s × %ld "
		    "CPUs): cdcd / storaged / harness | %.2f / %.2f / %.2f s "
		    "|\n", secs, ncpu, c->daemon / 1e3, c->storaged / 1e3,
		    c->harness / 1e3);
	else
		printf("| CPU in the %s throughput phase (%.2f s × %ld CPUs): "
		    "%s / harness | %.2f / %.2f s |\n", what, secs, ncpu,
		    what, c->daemon / 1e3, c->harness / 1e3);
}

/* As cdc_replay: NSUBS new readers XREAD the stream from its start. */
static double
redis_replay(const char *path)
{
	struct sub *s;
	int64_t t0;
	int i;

	phase_begin(THRU_N);
	for (i = 0; i < NSUBS; i++) {
		s = sub_new(path, SUB_REDIS);
		snprintf(s->last_id, sizeof(s->last_id), "0-0");
		sub_add(s);
	}
	t0 = bench_now_ns();
	for (i = 0; i < NSUBS; i++)
		redis_xread(&rd.subs[i]);
	return THRU_N / ((double)(phase_wait("redis replay") - t0) / 1e9);
}

/*
 * The Redis Streams phases: NSUBS readers blocked in XREAD, the writers,
 * then the replay.  Fills events/s per reader live and replayed, the
 * writers' rate and the CPU of the live phase.
 */
static void
redis_run(double *live, double *written, double *replay, struct cpu *cpu)
{
	struct sub *s;
	struct cpu c0;
	char path[128];
	int i, ctl;

	snprintf(path, sizeof(path), "%s/redis.sock", bench.dir);
	ctl = redis_start(path);
	readers_start();
	for (i = 0; i < NSUBS; i++) {
		s = sub_new(path, SUB_REDIS);
		snprintf(s->last_id, sizeof(s->last_id), "0-0");
		sub_add(s);
		redis_xread(s);
	}
	redis_wait_blocked(ctl, NSUBS);
	cpu_sample(&c0, bench.pid[PROC_REDIS], -1);
	*live = redis_throughput(path, written);
	cpu_since(cpu, &c0, bench.pid[PROC_REDIS], -1);
	readers_stop();
	readers_start();
	*replay = redis_replay(path);
	readers_stop();
	close(ctl);
	proc_stop(PROC_REDIS);
}

/* The index of the median of n values (n odd). */
static int
median_index(const double *v, int n)
{
	int i, j, below;

	for (i = 0; i < n; i++) {
		for (below = 0, j = 0; j < n; j++)
			if (v[j] < v[i] || (v[j] == v[i] && j < i))
				below++;
		if (below == n / 2)
			return i;
	}
	return 0;
}

int
main(int argc, char **argv)
{
	char sock[128], rsock[128];
	struct lat l1, l100, l100r[LAT_ROUNDS];
	double cdc, cdc_w, cdc_r, raw50, raw99;
	double p99r[LAT_ROUNDS], raw50r[LAT_ROUNDS], raw99r[LAT_ROUNDS];
	double red = 0, red_w = 0, red_r = 0;
	int64_t from;
	struct timespec settle = { 0, SETTLE_MS * 1000000L };
	struct timespec after_load = { AFTER_LOAD_MS / 1000,
	    (AFTER_LOAD_MS % 1000) * 1000000L };
	struct cpu c0, cdc_cpu, red_cpu = { 0 };
	long rss, hwm, idle, idle_hwm;
	bool have_redis;
	int i;

	log_init("cdcd_bench", 0);
	bench_args(argc, argv, "cdcd_bench BIN_DIR",
	    "cdcd commit-to-subscriber latency and fan-out against a raw "
	    "fan-out and Redis Streams");
	signal(SIGPIPE, SIG_IGN);
	bench.self = getpid();
	for (i = 0; i < PROC_MAX; i++)
		bench.pid[i] = -1;
	snprintf(bench.dir, sizeof(bench.dir), "/tmp/aoC.XXXXXX");
	if (mkdtemp(bench.dir) == NULL)
		fatal("mkdtemp");
	atexit(cleanup);

	daemon_start(argv[1], "storaged", PROC_STORAGED);
	snprintf(sock, sizeof(sock), "%s/run/storaged.sock", bench.dir);
	bench_populate(sock, bench.ids, NSESS);
	daemon_start(argv[1], "cdcd", PROC_CDCD);
	snprintf(rsock, sizeof(rsock), "%s/run/cdcd.sock", bench.dir);
	nanosleep(&settle, NULL);
	idle = bench_rss_kib(bench.pid[PROC_CDCD], &idle_hwm);

	readers_start();
	cdc_subscribe(rsock);
	cdc_latency(sock, &l1);
	while (rd.nsubs < NSUBS)
		cdc_subscribe(rsock);
	for (i = 0; i < LAT_ROUNDS; i++) {
		cdc_latency(sock, &l100r[i]);
		p99r[i] = l100r[i].p99;
	}
	l100 = l100r[median_index(p99r, LAT_ROUNDS)];
	from = rd.subs[0].seq;
	cpu_sample(&c0, bench.pid[PROC_CDCD], bench.pid[PROC_STORAGED]);
	cdc = cdc_throughput(sock, &cdc_w);
	cpu_since(&cdc_cpu, &c0, bench.pid[PROC_CDCD],
	    bench.pid[PROC_STORAGED]);
	readers_stop();
	readers_start();
	cdc_r = cdc_replay(rsock, from);
	readers_stop();
	for (i = 0; i < LAT_ROUNDS; i++)
		raw_fanout_latency(&raw50r[i], &raw99r[i]);
	i = median_index(raw99r, LAT_ROUNDS);
	raw50 = raw50r[i];
	raw99 = raw99r[i];
	nanosleep(&after_load, NULL);
	rss = bench_rss_kib(bench.pid[PROC_CDCD], &hwm);
	proc_stop(PROC_CDCD);
	proc_stop(PROC_STORAGED);

	if ((have_redis = in_path("redis-server")))
		redis_run(&red, &red_w, &red_r, &red_cpu);
	bench.done = 1;

	printf("| figure | value |\n|---|---|\n");
	printf("| cdcd commit-to-subscriber latency (COMMIT returned → event "
	    "read) p50 / p99, 1 subscriber | %.1f / %.1f us |\n", l1.p50, l1.p99);
	printf("| cdcd commit-to-subscriber latency p50 / p99, %d subscribers "
	    "(target p99 < 1000; the round with the median p99) | %.1f / %.1f "
	    "us |\n", NSUBS, l100.p50, l100.p99);
	printf("| write sent → event read p50 / p99, 1 / %d subscribers | "
	    "%.1f / %.1f us, %.1f / %.1f us |\n", NSUBS, l1.sent_p50, l1.sent_p99,
	    l100.sent_p50, l100.sent_p99);
	printf("| of which: write acknowledged by storaged p50 / p99, 1 / %d "
	    "subscribers | %.1f / %.1f us, %.1f / %.1f us |\n", NSUBS,
	    l1.ack_p50, l1.ack_p99, l100.ack_p50, l100.ack_p99);
	printf("| of which: acknowledgement → event read p50 / p99, 1 / %d "
	    "subscribers | %.1f / %.1f us, %.1f / %.1f us |\n", NSUBS,
	    l1.after_p50, l1.after_p99, l100.after_p50, l100.after_p99);
	printf("| raw fan-out floor: one thread write()s each event to %d "
	    "socketpairs, p50 / p99 (the round with the median p99) | %.1f / "
	    "%.1f us |\n", NSUBS, raw50, raw99);
	printf("| p99 of each round: cdcd, %d subscribers / raw floor | ", NSUBS);
	for (i = 0; i < LAT_ROUNDS; i++)
		printf("%s%.0f", i > 0 ? ", " : "", p99r[i]);
	printf(" us / ");
	for (i = 0; i < LAT_ROUNDS; i++)
		printf("%s%.0f", i > 0 ? ", " : "", raw99r[i]);
	printf(" us |\n");
	printf("| cdcd events/s per subscriber, %d subscribers, %d events | "
	    "%.0f /s |\n", NSUBS, THRU_N, cdc);
	printf("| cdcd deliveries/s, all %d subscribers | %.0f /s |\n", NSUBS,
	    cdc * NSUBS);
	printf("| storaged session.update accepted meanwhile (%d × window "
	    "%d) | %.0f /s |\n", NWRITERS, WINDOW, cdc_w);
	print_cpu("cdcd", &cdc_cpu, THRU_N / cdc);
	printf("| cdcd CPU per delivery | %.0f ns |\n",
	    ns_per_delivery(&cdc_cpu));
	printf("| cdcd replay of the %d stored events to %d new subscribers "
	    "(no writes): events/s per subscriber | %.0f /s |\n", THRU_N, NSUBS,
	    cdc_r);
	if (have_redis) {
		printf("| Redis Streams events/s per subscriber, %d XREAD "
		    "BLOCK readers | %.0f /s |\n", NSUBS, red);
		printf("| Redis Streams deliveries/s, all %d readers | "
		    "%.0f /s |\n", NSUBS, red * NSUBS);
		printf("| Redis XADD accepted meanwhile (%d × window %d) | "
		    "%.0f /s |\n", NWRITERS, WINDOW, red_w);
		print_cpu("redis-server", &red_cpu, THRU_N / red);
		printf("| redis-server CPU per delivery | %.0f ns |\n",
		    ns_per_delivery(&red_cpu));
		printf("| Redis replay of the %d stored entries to %d new "
		    "readers: events/s per reader | %.0f /s |\n", THRU_N, NSUBS,
		    red_r);
		printf("| ratio cdcd / Redis Streams events/s (target ≥ 1) | "
		    "%.2f |\n", cdc / red);
		printf("| event on the wire: cdcd message / Redis entry | "
		    "%lld B / %lld B |\n",
		    (long long)atomic_load(&rd.cdc_bytes),
		    (long long)atomic_load(&rd.redis_bytes));
	} else
		printf("| Redis Streams (redis-server not installed) | "
		    "skipped |\n");
	printf("| cdcd RSS idle at start / %.1f s after the run (peak) | %ld KiB / "
	    "%ld KiB (%ld KiB) |\n", AFTER_LOAD_MS / 1000.0, idle, rss, hwm);
	printf("BENCH cdc_latency_p50_us_1sub %.1f us\n", l1.p50);
	printf("BENCH cdc_latency_p99_us_1sub %.1f us\n", l1.p99);
	printf("BENCH cdc_latency_p50_us_100sub %.1f us\n", l100.p50);
	printf("BENCH cdc_latency_p99_us_100sub %.1f us\n", l100.p99);
	printf("BENCH cdc_write_to_event_p50_us_1sub %.1f us\n", l1.sent_p50);
	printf("BENCH cdc_write_to_event_p99_us_1sub %.1f us\n", l1.sent_p99);
	printf("BENCH cdc_write_to_event_p50_us_100sub %.1f us\n",
	    l100.sent_p50);
	printf("BENCH cdc_write_to_event_p99_us_100sub %.1f us\n",
	    l100.sent_p99);
	printf("BENCH raw_fanout_latency_p50_us_100sub %.1f us\n", raw50);
	printf("BENCH raw_fanout_latency_p99_us_100sub %.1f us\n", raw99);
	printf("BENCH cdc_events_per_s_100sub %.0f events/s\n", cdc);
	printf("BENCH cdc_deliveries_per_s_100sub %.0f events/s\n",
	    cdc * NSUBS);
	printf("BENCH cdc_cpu_ns_per_delivery %.0f ns\n",
	    ns_per_delivery(&cdc_cpu));
	printf("BENCH cdc_replay_events_per_s_100sub %.0f events/s\n", cdc_r);
	if (have_redis) {
		printf("BENCH redis_streams_events_per_s_100sub %.0f "
		    "events/s\n", red);
		printf("BENCH redis_streams_deliveries_per_s_100sub %.0f "
		    "events/s\n", red * NSUBS);
		printf("BENCH redis_streams_cpu_ns_per_delivery %.0f ns\n",
		    ns_per_delivery(&red_cpu));
		printf("BENCH redis_streams_replay_events_per_s_100sub %.0f "
		    "events/s\n", red_r);
		printf("BENCH ratio_cdc_vs_redis_streams %.2f x\n", cdc / red);
	} else {
		printf("BENCH redis_streams_events_per_s_100sub skipped -\n");
		printf("BENCH redis_streams_deliveries_per_s_100sub "
		    "skipped -\n");
		printf("BENCH redis_streams_cpu_ns_per_delivery skipped -\n");
		printf("BENCH redis_streams_replay_events_per_s_100sub "
		    "skipped -\n");
		printf("BENCH ratio_cdc_vs_redis_streams skipped -\n");
	}
	printf("BENCH rss_kib_cdcd_idle %ld KiB\n", idle);
	printf("BENCH rss_kib_cdcd_after_load %ld KiB\n", rss);
	printf("BENCH rss_kib_cdcd_peak %ld KiB\n", hwm);
	return 0;
}
