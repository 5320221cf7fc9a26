/*
 * ao-cdcd end to end: the real ao-storaged and ao-cdcd on a temporary data
 * dir.  Events are produced through storaged's write methods (session.update
 * flipping the state, so each call adds exactly one change_log row), either
 * from the test process or from a forked writer.  Subscribers are raw
 * sockets read with msgpack_unpacker, so a test decides how fast (and
 * whether) each one reads, or the blocking client where pacing does not
 * matter.
 *
 * The stream checks are strict: nothing here rolls back and nothing is
 * pruned unless a test turns retention on, so seqs are contiguous from 1 and
 * an unfiltered subscriber must see exactly last + 1 every time — a gap, a
 * duplicate or a reordering fails at the event where it happens.  A reset
 * (reset, snapshot…, snapshot_end {seq}) is the only thing allowed to move
 * the expected next seq, and only forward to seq + 1.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/aotime.h"
#include "proto/bclient.h"
#include "tests/lib/integ.h"
#include "tests/lib/testlib.h"

#define START_MS	20000	/* daemon readiness: generous for ASan on 2 slow cores */
#define WAIT_MS		30000	/* any wait for a stream condition */
#define MAX_KIDS	8

static char *dir;	/* per test, inside the test case's (INTEG_CASE_DIR) */
static char sd_sock[300], cd_sock[300];
static pid_t sd_pid, cd_pid;
static pid_t kids[MAX_KIDS];	/* forked writers */
static int nkids;

/* Daemons and fixture. */

static void
start_storaged(const char *const extra[])
{
	sd_pid = integ_start("ao-storaged", extra);
}

static void
start_cdcd(const char *const extra[])
{
	cd_pid = integ_start("ao-cdcd", extra);
}

/*
 * A failed assertion _exits the forked test process without its checked
 * teardown: the daemons and writers die with it (PR_SET_PDEATHSIG), and the
 * runner removes the case directory with whatever a failed test left in it.
 */
static void
setup(void)
{
	dir = integ_test_dir();
	snprintf(sd_sock, sizeof(sd_sock), "%s/run/storaged.sock", dir);
	snprintf(cd_sock, sizeof(cd_sock), "%s/run/cdcd.sock", dir);
	sd_pid = cd_pid = -1;
	nkids = 0;
	integ_configure(&(struct integ_conf){ .dir = dir, .log = NULL,
	    .ready_ms = START_MS, .call_ms = WAIT_MS });
}

static void
teardown(void)
{
	int i;

	for (i = 0; i < nkids; i++) {
		kill(kids[i], SIGKILL);
		waitpid(kids[i], NULL, 0);
	}
	nkids = 0;
	testlib_reap_all();
	testlib_rmrf(dir);
	free(dir);
	dir = NULL;
}

/* Whether our child pid is still running; a zombie is left for its waiter. */
static bool
alive(pid_t pid)
{
	siginfo_t si;

	memset(&si, 0, sizeof(si));
	if (waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) == -1)
		return false;
	return si.si_pid == 0;
}

/* Raw msgpack-rpc connections (no Check asserts: forked writers use them). */

struct tconn {
	int fd;
	msgpack_unpacker up;
	msgpack_unpacked msg;
	uint32_t msgid;
	bool eof;
};

static int
tconn_open(struct tconn *c, const char *path, int rcvbuf)
{
	struct sockaddr_un sun;
	struct timeval tv = { WAIT_MS / 1000, 0 };

	memset(c, 0, sizeof(*c));
	if ((c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
		return -1;
	/* Before connect, so the connection is set up with the small buffer. */
	if (rcvbuf > 0 && setsockopt(c->fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf,
	    sizeof(rcvbuf)) == -1)
		goto fail;
	/* A blocked write never hangs the test past its deadline. */
	setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
	if (connect(c->fd, (struct sockaddr *)&sun, sizeof(sun)) == -1)
		goto fail;
	if (!msgpack_unpacker_init(&c->up, 64 * 1024))
		goto fail;
	msgpack_unpacked_init(&c->msg);
	c->msgid = 1;
	return 0;
fail:
	close(c->fd);
	c->fd = -1;
	return -1;
}

static void
tconn_close(struct tconn *c)
{
	if (c->fd == -1)
		return;
	close(c->fd);
	c->fd = -1;
	msgpack_unpacked_destroy(&c->msg);
	msgpack_unpacker_destroy(&c->up);
}

/* Sends [0, msgid, method, [params]] (params: one packed map, or NULL). */
static uint32_t
tconn_request(struct tconn *c, const char *method, const struct rpc_buf *params)
{
	uint32_t id = c->msgid++;
	struct rpc_buf b;
	int r;

	rpc_buf_init(&b);
	integ_pack_request(&b, id, method, params);
	r = integ_write_all(c->fd, b.sb.data, b.sb.size);
	rpc_buf_free(&b);
	return r == -1 ? 0 : id;
}

/*
 * Waits up to wait_ms for input and reads at most max bytes, once.
 * Returns the bytes read, 0 at EOF (or a reset connection), -1 when
 * nothing arrived.
 */
static ssize_t
tconn_fill(struct tconn *c, size_t max, int wait_ms)
{
	struct pollfd pfd = { .fd = c->fd, .events = POLLIN };
	ssize_t r;

	if (c->eof)
		return 0;
	if (poll(&pfd, 1, wait_ms) <= 0)
		return -1;
	if (!msgpack_unpacker_reserve_buffer(&c->up, max))
		abort();
	r = read(c->fd, msgpack_unpacker_buffer(&c->up), max);
	if (r == -1 && (errno == EINTR || errno == EAGAIN))
		return -1;
	if (r <= 0) {
		c->eof = true;
		return 0;
	}
	msgpack_unpacker_buffer_consumed(&c->up, (size_t)r);
	return r;
}

/* 1 with *o (valid until the next call), 0 when incomplete, -1 on bad bytes. */
static int
tconn_next(struct tconn *c, const msgpack_object **o)
{
	switch (msgpack_unpacker_next(&c->up, &c->msg)) {
	case MSGPACK_UNPACK_SUCCESS:
		*o = &c->msg.data;
		return 1;
	case MSGPACK_UNPACK_CONTINUE:
		return 0;
	default:
		return -1;
	}
}

static bool
is_ok_response(const msgpack_object *o)
{
	return o->type == MSGPACK_OBJECT_ARRAY && o->via.array.size == 4 &&
	    o->via.array.ptr[0].type == MSGPACK_OBJECT_POSITIVE_INTEGER &&
	    o->via.array.ptr[0].via.u64 == 1 &&
	    o->via.array.ptr[2].type == MSGPACK_OBJECT_NIL;
}

/* Writers. */

struct wsess {
	char id[64];
	long n;		/* updates so far: the next state alternates */
};

/* Reads n responses on w, each of which must be a success; 0, or -1. */
static int
tconn_read_ok(struct tconn *w, long n)
{
	const msgpack_object *o;
	long got = 0;
	int r = 0;

	while (got < n) {
		while (got < n && (r = tconn_next(w, &o)) == 1) {
			if (!is_ok_response(o))
				return -1;
			got++;
		}
		if (got < n && (r == -1 || tconn_fill(w, 64 * 1024, WAIT_MS) <= 0))
			return -1;
	}
	return 0;
}

/*
 * Pipelines count session.update calls on s, batch at a time, each flipping
 * the state between working and idle so each adds exactly one event; every
 * response is read and must be a success.  pause_us between batches paces
 * the stream.  Returns 0, or -1 on any error.
 */
static int
write_updates(struct tconn *w, struct wsess *s, long count, long batch, int pause_us)
{
	struct rpc_buf b;
	long done = 0;

	rpc_buf_init(&b);
	while (done < count) {
		long nb = count - done > batch ? batch : count - done, i;

		rpc_buf_reset(&b);
		for (i = 0; i < nb; i++) {
			rpc_pack_request_head(&b.pk, w->msgid++, "session.update");
			msgpack_pack_array(&b.pk, 1);
			msgpack_pack_map(&b.pk, 2);
			rpc_pack_kv_str(&b.pk, "id", s->id);
			rpc_pack_kv_str(&b.pk, "state", s->n++ % 2 == 0 ? "working" :
			    "idle");
		}
		if (integ_write_all(w->fd, b.sb.data, b.sb.size) == -1 ||
		    tconn_read_ok(w, nb) == -1)
			goto fail;
		done += nb;
		if (pause_us > 0 && done < count)
			usleep((useconds_t)pause_us);
	}
	rpc_buf_free(&b);
	return 0;
fail:
	rpc_buf_free(&b);
	return -1;
}

/* The same from the test process, asserting success. */
static void
updates(struct wsess *s, long count)
{
	struct tconn w;

	ck_assert_msg(tconn_open(&w, sd_sock, 0) == 0, "connect %s", sd_sock);
	ck_assert_msg(write_updates(&w, s, count, 256, 0) == 0,
	    "session.update x%ld on %s failed", count, s->id);
	tconn_close(&w);
}

/*
 * Forks a writer that streams count1 updates on s from its own storaged
 * connection, then, when count2 > 0, waits for writer_go(*go) and streams
 * count2 more; it exits 0 when all succeeded.  s advances at once, as if the
 * writes were done, so the caller must not write to s until it waited.
 */
static pid_t
fork_writer2(struct wsess *s, long count1, long count2, long batch, int pause_us,
    int *go)
{
	pid_t pid, parent = getpid();
	int p[2] = { -1, -1 };

	ck_assert_int_lt(nkids, MAX_KIDS);
	if (count2 > 0)
		ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
	fflush(NULL);
	pid = fork();
	ck_assert_int_ne(pid, -1);
	if (pid == 0) {
		struct tconn w;
		long fd, max = sysconf(_SC_OPEN_MAX);
		char c;

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(2);
		/*
		 * Hold no copy of the test's sockets (their EOF must be the
		 * test's): only the go pipe survives, as fd 3.
		 */
		if (count2 > 0 && dup2(p[0], 3) == -1)
			_exit(4);
		for (fd = count2 > 0 ? 4 : 3;
		    fd < (max > 0 && max < 65536 ? max : 65536); fd++)
			close((int)fd);
		if (tconn_open(&w, sd_sock, 0) == -1)
			_exit(3);
		if (write_updates(&w, s, count1, batch, pause_us) == -1)
			_exit(1);
		if (count2 == 0)
			_exit(0);
		if (read(3, &c, 1) != 1)
			_exit(5);
		_exit(write_updates(&w, s, count2, batch, pause_us) == 0 ? 0 : 1);
	}
	kids[nkids++] = pid;
	s->n += count1 + count2;
	if (count2 > 0) {
		close(p[0]);
		*go = p[1];
	}
	return pid;
}

static pid_t
fork_writer(struct wsess *s, long count, long batch, int pause_us)
{
	return fork_writer2(s, count, 0, batch, pause_us, NULL);
}

/* Lets a fork_writer2 writer start its second part. */
static void
writer_go(int go)
{
	ck_assert_int_eq(write(go, "g", 1), 1);
	close(go);
}

static void
wait_writer(pid_t pid)
{
	int st, i;

	st = testlib_wait(pid, WAIT_MS);
	for (i = 0; i < nkids; i++)
		if (kids[i] == pid)
			kids[i] = kids[--nkids];
	ck_assert_msg(st != -1, "writer %ld did not finish", (long)pid);
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0,
	    "writer %ld failed (status 0x%x)", (long)pid, st);
}

/*
 * Pipelines count notification.add calls on session sid, 8 at a time: each
 * adds one notification_created event whose payload holds its message, of
 * size bytes, or of huge bytes for every huge_every-th (0: none).
 */
static void
big_notifications(const char *sid, int count, size_t size, size_t huge,
    int huge_every)
{
	size_t max = huge > size ? huge : size, len;
	char *msg = malloc(max);
	struct rpc_buf b;
	struct tconn w;
	int done = 0, nb, i;

	ck_assert_ptr_nonnull(msg);
	memset(msg, 'm', max);
	ck_assert_msg(tconn_open(&w, sd_sock, 0) == 0, "connect %s", sd_sock);
	rpc_buf_init(&b);
	for (; done < count; done += nb) {
		nb = count - done > 8 ? 8 : count - done;
		rpc_buf_reset(&b);
		for (i = 0; i < nb; i++) {
			len = huge_every > 0 && (done + i) % huge_every == 0 ? huge : size;
			rpc_pack_request_head(&b.pk, w.msgid++, "notification.add");
			msgpack_pack_array(&b.pk, 1);
			msgpack_pack_map(&b.pk, 3);
			rpc_pack_kv_str(&b.pk, "session_id", sid);
			rpc_pack_kv_str(&b.pk, "priority", "info");
			rpc_pack_str(&b.pk, "message");
			msgpack_pack_str(&b.pk, len);
			msgpack_pack_str_body(&b.pk, msg, len);
		}
		ck_assert_msg(integ_write_all(w.fd, b.sb.data, b.sb.size) == 0 &&
		    tconn_read_ok(&w, nb) == 0, "notification.add x%d failed at %d",
		    count, done);
	}
	rpc_buf_free(&b);
	tconn_close(&w);
	free(msg);
}

/* storaged through the blocking client. */

static void
sd_call(const char *method, const struct rpc_buf *params, struct bclient_msg *res)
{
	struct bclient *bc = integ_connect(sd_sock);

	integ_call_ok(bc, method, params, res);
	bclient_free(bc);
}

static void
add_project(const char *id)
{
	struct rpc_buf b;
	char path[64];

	snprintf(path, sizeof(path), "/tmp/%s", id);
	rpc_buf_init(&b);
	msgpack_pack_map(&b.pk, 2);
	rpc_pack_kv_str(&b.pk, "id", id);
	rpc_pack_kv_str(&b.pk, "path", path);
	sd_call("project.upsert", &b, NULL);
	rpc_buf_free(&b);
}

/* Creates a session in project; s gets its id. */
static void
add_session(const char *project, struct wsess *s)
{
	struct bclient_msg res;
	struct rpc_buf b;

	rpc_buf_init(&b);
	msgpack_pack_map(&b.pk, 1);
	rpc_pack_kv_str(&b.pk, "project_id", project);
	sd_call("session.create", &b, &res);
	rpc_buf_free(&b);
	memset(s, 0, sizeof(*s));
	ck_assert_int_eq(rpc_obj_str(rpc_map_get(res.m.result, "id"), s->id,
	    sizeof(s->id)), 0);
	bclient_msg_free(&res);
}

/* A PR on session (pr_created), with one check (pr_check_recorded). */
static void
add_pr(const char *session, const char *url, int number)
{
	struct rpc_buf b;

	rpc_buf_init(&b);
	msgpack_pack_map(&b.pk, 3);
	rpc_pack_kv_str(&b.pk, "session_id", session);
	rpc_pack_str(&b.pk, "pr");
	msgpack_pack_map(&b.pk, 2);
	rpc_pack_kv_str(&b.pk, "url", url);
	rpc_pack_kv_i64(&b.pk, "number", number);
	rpc_pack_str(&b.pk, "checks");
	msgpack_pack_array(&b.pk, 1);
	msgpack_pack_map(&b.pk, 3);
	rpc_pack_kv_str(&b.pk, "name", "build");
	rpc_pack_kv_str(&b.pk, "commit_hash", "c0ffee");
	rpc_pack_kv_str(&b.pk, "status", "in_progress");
	sd_call("pr.write_observation", &b, NULL);
	rpc_buf_free(&b);
}

static void
add_notification(const char *session)
{
	struct rpc_buf b;

	rpc_buf_init(&b);
	msgpack_pack_map(&b.pk, 3);
	rpc_pack_kv_str(&b.pk, "session_id", session);
	rpc_pack_kv_str(&b.pk, "priority", "info");
	rpc_pack_kv_str(&b.pk, "message", "hello");
	sd_call("notification.add", &b, NULL);
	rpc_buf_free(&b);
}

static void
sd_bounds(int64_t *head, int64_t *oldest)
{
	struct bclient_msg res;
	int64_t o;

	sd_call("changelog.head", NULL, &res);
	ck_assert_int_eq(rpc_obj_i64(rpc_map_get(res.m.result, "head"), head), 0);
	ck_assert_int_eq(rpc_obj_i64(rpc_map_get(res.m.result, "oldest"), &o), 0);
	if (oldest != NULL)
		*oldest = o;
	bclient_msg_free(&res);
}

static int64_t
sd_head(void)
{
	int64_t h;

	sd_bounds(&h, NULL);
	return h;
}

/* Waits until retention has left the last keep rows; the bounds then. */
static void
wait_retained(int64_t keep, int64_t *head, int64_t *oldest)
{
	INTEG_WAIT((sd_bounds(head, oldest), *oldest == *head - keep + 1), WAIT_MS,
	    10, "retention never pruned (oldest %lld, head %lld)",
	    (long long)*oldest, (long long)*head);
}

/* cdcd stats. */

struct cstat_sub {
	int64_t id, cursor, lag, buffered, delivered;
	int64_t peak;		/* peak_buffered_bytes, -1 when absent */
	char mode[16];
};

struct cstat {
	int n;
	struct cstat_sub sub[16];	/* in cdcd's order: by connection */
	int64_t head;
	int64_t turns, turns_cut;	/* catchup.*, -1 when absent */
};

/* The integer at key of map o, or -1 when it is not there. */
static int64_t
opt_i64(const msgpack_object *o, const char *key)
{
	int64_t v;

	return o != NULL && rpc_obj_i64(rpc_map_get(o, key), &v) == 0 ? v : -1;
}

static void
cdcd_stats(struct cstat *st)
{
	struct bclient *bc = integ_connect(cd_sock);
	struct bclient_msg res;
	const msgpack_object *subs;
	uint32_t i;

	integ_call_ok(bc, "stats", NULL, &res);
	memset(st, 0, sizeof(*st));
	rpc_obj_i64(rpc_map_get(res.m.result, "head"), &st->head);
	st->turns = opt_i64(rpc_map_get(res.m.result, "catchup"), "turns");
	st->turns_cut = opt_i64(rpc_map_get(res.m.result, "catchup"), "turns_cut");
	subs = rpc_map_get(res.m.result, "subscribers");
	ck_assert_ptr_nonnull(subs);
	ck_assert_int_eq(subs->type, MSGPACK_OBJECT_ARRAY);
	for (i = 0; i < subs->via.array.size && st->n < 16; i++) {
		const msgpack_object *o = &subs->via.array.ptr[i];
		struct cstat_sub *s = &st->sub[st->n++];

		ck_assert_int_eq(rpc_obj_i64(rpc_map_get(o, "id"), &s->id), 0);
		ck_assert_int_eq(rpc_obj_i64(rpc_map_get(o, "cursor"), &s->cursor), 0);
		ck_assert_int_eq(rpc_obj_i64(rpc_map_get(o, "lag"), &s->lag), 0);
		ck_assert_int_eq(rpc_obj_i64(rpc_map_get(o, "buffered_bytes"),
		    &s->buffered), 0);
		ck_assert_int_eq(rpc_obj_i64(rpc_map_get(o, "delivered"),
		    &s->delivered), 0);
		ck_assert_int_eq(rpc_obj_str(rpc_map_get(o, "mode"), s->mode,
		    sizeof(s->mode)), 0);
		s->peak = opt_i64(o, "peak_buffered_bytes");
	}
	bclient_msg_free(&res);
	bclient_free(bc);
}

/* Subscribers on raw sockets. */

struct subopt {
	int64_t from;			/* -1: none (live from head) */
	const char *project, *session, *consumer;
	const char *const *types;	/* NULL-terminated, or NULL */
};

struct rec {
	int64_t seq;
	char project[32], session[32], type[32];
};

struct tsub {
	const char *name;
	struct tconn c;
	uint32_t sub_msgid;
	int state;		/* 0 awaiting the reply, 1 subscribed, -1 refused,
				   2 unsubscribed */
	char err_code[32];
	char err_msg[512];
	int64_t head, oldest;	/* from the reply */
	bool from_reply;	/* the stream starts after the reply's head */
	bool contiguous;	/* unfiltered: every event is last + 1 */
	int64_t last;		/* last event seq, or where the stream starts */
	long nevents;
	size_t max_event;	/* largest event notification seen, in bytes */
	/* reset / snapshot bookkeeping */
	int nreset, nsnap_end, nclosing;
	bool in_reset;
	int64_t reset_head, reset_oldest, snap_end_seq;
	int nsnap_project, nsnap_session, nsnap_pr;
	/* one other call in flight on the connection */
	uint32_t call_msgid;
	int call_state;		/* 0 pending, 1 ok, -1 error */
	bool call_unsub;	/* the call is unsubscribe: no event after its reply */
	char call_code[32];
	char call_msg[512];
	/* every event, when recording */
	bool record;
	struct rec *recs;
	size_t nrecs, caprecs;
};

static void
pack_subscribe(struct rpc_buf *b, const struct subopt *o)
{
	int n = (o->from >= 0) + (o->project != NULL) + (o->session != NULL) +
	    (o->consumer != NULL) + (o->types != NULL), i;

	msgpack_pack_map(&b->pk, n);
	if (o->from >= 0)
		rpc_pack_kv_i64(&b->pk, "from", o->from);
	if (o->project != NULL)
		rpc_pack_kv_str(&b->pk, "project_id", o->project);
	if (o->session != NULL)
		rpc_pack_kv_str(&b->pk, "session_id", o->session);
	if (o->consumer != NULL)
		rpc_pack_kv_str(&b->pk, "consumer", o->consumer);
	if (o->types != NULL) {
		for (i = 0; o->types[i] != NULL; i++)
			;
		rpc_pack_str(&b->pk, "types");
		msgpack_pack_array(&b->pk, i);
		for (i = 0; o->types[i] != NULL; i++)
			rpc_pack_str(&b->pk, o->types[i]);
	}
}

/*
 * Connects (with SO_RCVBUF rcvbuf when > 0) and sends subscribe.  The
 * stream is expected to start after `start`, or after the reply's head when
 * start is -1.
 */
static void
tsub_open(struct tsub *s, const char *name, int rcvbuf, const struct subopt *o,
    int64_t start)
{
	struct rpc_buf b;

	memset(s, 0, sizeof(*s));
	s->name = name;
	ck_assert_msg(tconn_open(&s->c, cd_sock, rcvbuf) == 0, "%s: connect %s", name,
	    cd_sock);
	s->from_reply = start < 0;
	s->last = start;
	s->contiguous = o->project == NULL && o->session == NULL && o->types == NULL;
	rpc_buf_init(&b);
	pack_subscribe(&b, o);
	s->sub_msgid = tconn_request(&s->c, "subscribe", &b);
	rpc_buf_free(&b);
	ck_assert_msg(s->sub_msgid != 0, "%s: sending subscribe failed", name);
}

static void
tsub_close(struct tsub *s)
{
	tconn_close(&s->c);
	free(s->recs);
	s->recs = NULL;
}

/* Sends another request on the subscriber's connection (ack, a 2nd subscribe). */
static void
tsub_call(struct tsub *s, const char *method, const struct rpc_buf *params)
{
	s->call_state = 0;
	s->call_unsub = strcmp(method, "unsubscribe") == 0;
	s->call_msgid = tconn_request(&s->c, method, params);
	ck_assert_msg(s->call_msgid != 0, "%s: sending %s failed", s->name, method);
}

/* Subscribes again on the same connection; the stream restarts after start. */
static void
tsub_resubscribe(struct tsub *s, const struct subopt *o, int64_t start)
{
	struct rpc_buf b;

	rpc_buf_init(&b);
	pack_subscribe(&b, o);
	s->state = 0;
	s->from_reply = start < 0;
	s->last = start;
	s->contiguous = o->project == NULL && o->session == NULL && o->types == NULL;
	s->sub_msgid = tconn_request(&s->c, "subscribe", &b);
	rpc_buf_free(&b);
	ck_assert_msg(s->sub_msgid != 0, "%s: sending subscribe failed", s->name);
}

static void
copy_str(const msgpack_object *o, char *buf, size_t len)
{
	if (o == NULL || rpc_obj_str(o, buf, len) == -1)
		buf[0] = '\0';
}

static void
tsub_response(struct tsub *s, const msgpack_object *a)
{
	uint32_t id = (uint32_t)a[1].via.u64;
	const msgpack_object *err = &a[2];
	bool ok = err->type == MSGPACK_OBJECT_NIL;

	if (id == s->sub_msgid && s->state == 0) {
		if (!ok) {
			s->state = -1;
			copy_str(rpc_map_get(err, "code"), s->err_code, sizeof(s->err_code));
			copy_str(rpc_map_get(err, "message"), s->err_msg,
			    sizeof(s->err_msg));
			return;
		}
		s->state = 1;
		ck_assert_msg(rpc_obj_i64(rpc_map_get(&a[3], "head"), &s->head) == 0 &&
		    rpc_obj_i64(rpc_map_get(&a[3], "oldest"), &s->oldest) == 0,
		    "%s: subscribe reply without {head, oldest}", s->name);
		if (s->from_reply)
			s->last = s->head;
		return;
	}
	ck_assert_msg(id == s->call_msgid && s->call_state == 0,
	    "%s: unexpected response to msgid %u", s->name, id);
	s->call_state = ok ? 1 : -1;
	if (ok && s->call_unsub)
		s->state = 2;
	if (!ok) {
		copy_str(rpc_map_get(err, "code"), s->call_code, sizeof(s->call_code));
		copy_str(rpc_map_get(err, "message"), s->call_msg, sizeof(s->call_msg));
	}
}

static void
tsub_event(struct tsub *s, const msgpack_object *ev, size_t size)
{
	const msgpack_object *pl = rpc_map_get(ev, "payload");
	int64_t seq, at;
	char type[32];

	ck_assert_msg(s->state == 1, "%s: event %s", s->name, s->state == 2 ?
	    "after the unsubscribe reply" : "before the subscribe reply");
	ck_assert_msg(!s->in_reset, "%s: event between reset and snapshot_end",
	    s->name);
	ck_assert_msg(ev->type == MSGPACK_OBJECT_MAP && ev->via.map.size == 6,
	    "%s: an event is a map of 6 keys", s->name);
	ck_assert_int_eq(rpc_obj_i64(rpc_map_get(ev, "seq"), &seq), 0);
	ck_assert_int_eq(rpc_obj_i64(rpc_map_get(ev, "at"), &at), 0);
	ck_assert_int_eq(rpc_obj_str(rpc_map_get(ev, "type"), type, sizeof(type)), 0);
	ck_assert_ptr_nonnull(rpc_map_get(ev, "project_id"));
	ck_assert_ptr_nonnull(rpc_map_get(ev, "session_id"));
	ck_assert_msg(pl != NULL && pl->type == MSGPACK_OBJECT_MAP,
	    "%s: seq %lld: payload is not a map", s->name, (long long)seq);
	ck_assert_msg(seq > s->last, "%s: seq %lld after %lld (duplicate or "
	    "reordered)", s->name, (long long)seq, (long long)s->last);
	if (s->contiguous)
		ck_assert_msg(seq == s->last + 1, "%s: gap: seq %lld after %lld "
		    "(events %lld..%lld never delivered)", s->name, (long long)seq,
		    (long long)s->last, (long long)s->last + 1, (long long)seq - 1);
	s->last = seq;
	s->nevents++;
	if (size > s->max_event)
		s->max_event = size;
	if (s->record) {
		struct rec *r;

		if (s->nrecs == s->caprecs) {
			s->caprecs = s->caprecs == 0 ? 256 : s->caprecs * 2;
			s->recs = realloc(s->recs, s->caprecs * sizeof(*s->recs));
			ck_assert_ptr_nonnull(s->recs);
		}
		r = &s->recs[s->nrecs++];
		r->seq = seq;
		copy_str(rpc_map_get(ev, "project_id"), r->project, sizeof(r->project));
		copy_str(rpc_map_get(ev, "session_id"), r->session, sizeof(r->session));
		snprintf(r->type, sizeof(r->type), "%s", type);
	}
}

static void
tsub_notify(struct tsub *s, const char *method, const msgpack_object *p, size_t size)
{
	if (strcmp(method, "event") == 0) {
		tsub_event(s, p, size);
	} else if (strcmp(method, "reset") == 0) {
		ck_assert_msg(s->state == 1 && !s->in_reset, "%s: reset out of order",
		    s->name);
		ck_assert_int_eq(rpc_obj_i64(rpc_map_get(p, "oldest"), &s->reset_oldest), 0);
		ck_assert_int_eq(rpc_obj_i64(rpc_map_get(p, "head"), &s->reset_head), 0);
		s->in_reset = true;
		s->nreset++;
	} else if (strcmp(method, "snapshot") == 0) {
		const msgpack_object *obj = rpc_map_get(p, "object");
		char type[16], key[128];

		ck_assert_msg(s->in_reset, "%s: snapshot without reset", s->name);
		ck_assert_int_eq(rpc_obj_str(rpc_map_get(p, "type"), type, sizeof(type)), 0);
		ck_assert_msg(obj != NULL && obj->type == MSGPACK_OBJECT_MAP,
		    "%s: snapshot object is not a map", s->name);
		if (strcmp(type, "project") == 0) {
			ck_assert_int_eq(rpc_obj_str(rpc_map_get(obj, "id"), key,
			    sizeof(key)), 0);
			s->nsnap_project++;
		} else if (strcmp(type, "session") == 0) {
			ck_assert_int_eq(rpc_obj_str(rpc_map_get(obj, "id"), key,
			    sizeof(key)), 0);
			ck_assert_int_eq(rpc_obj_str(rpc_map_get(obj, "state"), key,
			    sizeof(key)), 0);
			s->nsnap_session++;
		} else if (strcmp(type, "pr") == 0) {
			ck_assert_int_eq(rpc_obj_str(rpc_map_get(obj, "url"), key,
			    sizeof(key)), 0);
			s->nsnap_pr++;
		} else
			ck_abort_msg("%s: snapshot of unknown type '%s'", s->name, type);
	} else if (strcmp(method, "snapshot_end") == 0) {
		ck_assert_msg(s->in_reset, "%s: snapshot_end without reset", s->name);
		ck_assert_int_eq(rpc_obj_i64(rpc_map_get(p, "seq"), &s->snap_end_seq), 0);
		s->in_reset = false;
		s->nsnap_end++;
		/* Events after seq follow; never backwards. */
		ck_assert_msg(s->snap_end_seq >= s->last || s->nevents == 0,
		    "%s: snapshot_end seq %lld is behind delivered seq %lld", s->name,
		    (long long)s->snap_end_seq, (long long)s->last);
		s->last = s->snap_end_seq;
	} else if (strcmp(method, "closing") == 0) {
		s->nclosing++;
	} else
		ck_abort_msg("%s: unknown notification '%s'", s->name, method);
}

static void
tsub_msg(struct tsub *s, const msgpack_object *o, size_t size)
{
	const msgpack_object *a;
	char method[32];

	ck_assert_msg(o->type == MSGPACK_OBJECT_ARRAY && o->via.array.size >= 3 &&
	    o->via.array.ptr[0].type == MSGPACK_OBJECT_POSITIVE_INTEGER,
	    "%s: a message that is not an rpc array", s->name);
	a = o->via.array.ptr;
	if (a[0].via.u64 == 1) {
		ck_assert(o->via.array.size == 4 &&
		    a[1].type == MSGPACK_OBJECT_POSITIVE_INTEGER);
		tsub_response(s, a);
		return;
	}
	ck_assert_msg(a[0].via.u64 == 2 && o->via.array.size == 3,
	    "%s: a message that is neither a response nor a notification", s->name);
	ck_assert_int_eq(rpc_obj_str(&a[1], method, sizeof(method)), 0);
	ck_assert_msg(a[2].type == MSGPACK_OBJECT_ARRAY && a[2].via.array.size == 1,
	    "%s: %s params are not [map]", s->name, method);
	tsub_notify(s, method, &a[2].via.array.ptr[0], size);
}

/*
 * Reads at most max bytes (waiting up to wait_ms) and handles every complete
 * message.  Returns bytes read, 0 at EOF, -1 when nothing arrived.
 */
static ssize_t
tsub_pump(struct tsub *s, size_t max, int wait_ms)
{
	ssize_t r = tconn_fill(&s->c, max, wait_ms);
	msgpack_unpack_return k;
	size_t used;

	while ((k = msgpack_unpacker_next_with_size(&s->c.up, &s->c.msg, &used)) ==
	    MSGPACK_UNPACK_SUCCESS)
		tsub_msg(s, &s->c.msg.data, used);
	ck_assert_msg(k == MSGPACK_UNPACK_CONTINUE, "%s: cdcd sent bytes that are "
	    "not msgpack", s->name);
	return r;
}

/* Reads until the subscribe reply arrived; returns its state. */
static int
tsub_wait_reply(struct tsub *s)
{
	int64_t deadline = aotime_mono_ms() + WAIT_MS;

	while (s->state == 0) {
		ck_assert_msg(aotime_mono_ms() < deadline, "%s: no subscribe reply",
		    s->name);
		ck_assert_msg(tsub_pump(s, 64 * 1024, 100) != 0,
		    "%s: connection closed before the subscribe reply", s->name);
	}
	return s->state;
}

static void
tsub_wait_call(struct tsub *s)
{
	int64_t deadline = aotime_mono_ms() + WAIT_MS;

	while (s->call_state == 0) {
		ck_assert_msg(aotime_mono_ms() < deadline, "%s: no response", s->name);
		ck_assert_msg(tsub_pump(s, 64 * 1024, 100) != 0,
		    "%s: connection closed before the response", s->name);
	}
}

/* Reads until the last event is at least seq. */
static void
tsub_until(struct tsub *s, int64_t seq)
{
	int64_t deadline = aotime_mono_ms() + WAIT_MS;

	while (s->state != 1 || s->last < seq) {
		ck_assert_msg(aotime_mono_ms() < deadline, "%s: waited for seq %lld; "
		    "the last is %lld", s->name, (long long)seq, (long long)s->last);
		ck_assert_msg(tsub_pump(s, 64 * 1024, 100) != 0,
		    "%s: connection closed at seq %lld, waiting for %lld", s->name,
		    (long long)s->last, (long long)seq);
	}
	ck_assert_int_eq(s->last, seq);
}

/* Nothing more arrives for wait_ms. */
static void
tsub_quiet(struct tsub *s, int wait_ms)
{
	int64_t last = s->last, deadline = aotime_mono_ms() + wait_ms;

	while (aotime_mono_ms() < deadline)
		if (tsub_pump(s, 64 * 1024, 20) == 0)
			break;
	ck_assert_msg(s->last == last, "%s: unexpected events after %lld (up to %lld)",
	    s->name, (long long)last, (long long)s->last);
}

/* Reads until EOF (cdcd closed the connection). */
static void
tsub_until_eof(struct tsub *s)
{
	int64_t deadline = aotime_mono_ms() + WAIT_MS;

	while (tsub_pump(s, 64 * 1024, 100) != 0)
		ck_assert_msg(aotime_mono_ms() < deadline, "%s: no EOF", s->name);
}

static void
pack_seq(struct rpc_buf *b, int64_t seq)
{
	rpc_buf_reset(b);
	msgpack_pack_map(&b->pk, 1);
	rpc_pack_kv_i64(&b->pk, "seq", seq);
}

/* Seeds project p1 with session p1-1 (events 1 and 2). */
static void
seed(struct wsess *s)
{
	add_project("p1");
	add_session("p1", s);
	ck_assert_str_eq(s->id, "p1-1");
}

/*
 * 1. 10,000 events to three subscribers from 0, one reading 4 KiB at a time
 * through a 4 KiB receive buffer.  Each gets every event once, in order; the
 * slow one is held to its cap plus one event; cdcd's RSS stays bounded.
 */
START_TEST(fanout_slow_reader)
{
	enum { N = 10000, FIRST = 6000, HW = 65536 };
	static const char *const cd_args[] = { "--subscriber-buffer-bytes=65536",
		NULL };
	static const char *const names[3] = { "slow", "fast1", "fast2" };
	const struct subopt all = { .from = 0 };
	struct tsub sub[3];
	struct wsess ws;
	struct cstat st;
	int64_t final, t0, deadline, max_buffered = 0;
	long rss, rss0, rss_max = 0, rss_bound_kib;
	int i, iter = 0, samples = 0, catchup_lagging = 0;
	pid_t writer;
	size_t slack;

	start_storaged(NULL);
	start_cdcd(cd_args);
	rss0 = integ_rss_kib(cd_pid);
	seed(&ws);
	updates(&ws, FIRST);
	final = 2 + N;
	t0 = aotime_mono_ms();
	/* Connection order is id order in stats: the slow one is first. */
	tsub_open(&sub[0], names[0], 4096, &all, 0);
	tsub_open(&sub[1], names[1], 0, &all, 0);
	tsub_open(&sub[2], names[2], 0, &all, 0);
	writer = fork_writer(&ws, N - FIRST, 256, 0);
	deadline = aotime_mono_ms() + 2 * WAIT_MS;
	while (sub[0].last < final || sub[1].last < final || sub[2].last < final) {
		ck_assert_msg(aotime_mono_ms() < deadline, "timed out at seqs "
		    "%lld/%lld/%lld of %lld", (long long)sub[0].last,
		    (long long)sub[1].last, (long long)sub[2].last, (long long)final);
		ck_assert_msg(tsub_pump(&sub[0], 4096, 0) != 0, "slow: EOF");
		for (i = 1; i < 3; i++)
			ck_assert_msg(tsub_pump(&sub[i], 64 * 1024, 0) != 0,
			    "%s: EOF", names[i]);
		usleep(1000);
		if (iter++ % 20 != 0 || sub[0].last >= final)
			continue;
		/* While the slow reader lags: its cap, its mode, cdcd's RSS. */
		cdcd_stats(&st);
		ck_assert_int_eq(st.n, 3);
		samples++;
		for (i = 0; i < st.n; i++)
			if (st.sub[i].buffered > max_buffered)
				max_buffered = st.sub[i].buffered;
		if (strcmp(st.sub[0].mode, "catchup") == 0 && st.sub[0].lag > 0)
			catchup_lagging++;
		rss = integ_rss_kib(cd_pid);
		ck_assert_int_gt(rss, 0);
		if (rss > rss_max)
			rss_max = rss;
	}
	wait_writer(writer);
	for (i = 0; i < 3; i++) {
		ck_assert_int_eq(sub[i].nevents, final);
		tsub_quiet(&sub[i], 100);
	}
	ck_assert_int_eq(sd_head(), final);
	/*
	 * At most the high-water mark plus one event: a database batch stops
	 * at the mark as the ring does.
	 */
	slack = sub[1].max_event;
	ck_assert_msg(samples >= 3, "only %d stats samples while the slow reader "
	    "lagged", samples);
	ck_assert_msg(max_buffered <= (int64_t)(HW + slack), "buffered_bytes %lld "
	    "> subscriber_buffer_bytes %d + one event %zu", (long long)max_buffered,
	    HW, slack);
	ck_assert_msg(catchup_lagging > 0, "the slow subscriber never showed mode "
	    "catchup while lagging (%d samples)", samples);
	/*
	 * The RSS bound, 64 MiB: the ring holds all 10,002 events (~160 B
	 * encoded + ~150 B bookkeeping each: ~3 MiB), each subscriber's output
	 * is capped at 64 KiB + one event, SQLite's page cache is ~2 MiB and the
	 * binary with its libraries ~5 MiB: ~11 MiB expected (~9 MiB measured).
	 * The whole stream is only ~1.6 MB, so this bound catches gross growth
	 * (a leak per event or per fill, a runaway buffer); the buffered_bytes
	 * check above is the precise one for the slow subscriber's cap.  ASan's
	 * shadow memory and 256 MiB free quarantine inflate RSS, so under ASan
	 * the bound is on growth past the start.
	 */
#if defined(__SANITIZE_ADDRESS__)
	rss_bound_kib = rss0 + 384 * 1024;
#else
	rss_bound_kib = 64 * 1024;
#endif
	ck_assert_msg(rss_max > 0 && rss_max < rss_bound_kib, "cdcd VmRSS %ld KiB "
	    "(start %ld KiB) >= bound %ld KiB", rss_max, rss0, rss_bound_kib);
	fprintf(stderr, "cdcd fanout: %d events x3 in %lld ms; slow reader: %d "
	    "samples, %d in catchup; max buffered %lld B (max event %zu B); VmRSS "
	    "%ld -> max %ld KiB\n", (int)final, (long long)(aotime_mono_ms() - t0),
	    samples, catchup_lagging, (long long)max_buffered, sub[1].max_event,
	    rss0, rss_max);
	for (i = 0; i < 3; i++)
		tsub_close(&sub[i]);
}
END_TEST

/*
 * 2. Subscribing while a writer streams: live from the head (no from), and
 * from a seq in the middle.  The ring is kept small (~50 events) so the
 * from-the-middle subscriber crosses from the database to the ring to live
 * under load, and any subscriber that lags falls back to the database.
 */
START_TEST(subscribe_in_flight)
{
	enum { N1 = 1000, N2 = 1000 };
	static const char *const cd_args[] = { "--ring-bytes=16384", NULL };
	const struct subopt live = { .from = -1 };
	struct subopt mid = { .from = 0 };
	struct tsub a, b;
	struct wsess ws;
	int64_t final, h;
	pid_t writer;
	int go;

	start_storaged(NULL);
	start_cdcd(cd_args);
	seed(&ws);
	final = 2 + N1 + N2;
	/*
	 * Paced: the first part (at least 100 ms of pauses) is usually still
	 * streaming when the subscribes land; the second starts only after
	 * them, so live hand-over is certain to be exercised.
	 */
	writer = fork_writer2(&ws, N1, N2, 50, 5000, &go);
	INTEG_WAIT((h = sd_head()) >= 300, WAIT_MS, 1, "the writer is stuck at "
	    "%lld", (long long)h);
	tsub_open(&a, "live", 0, &live, -1);
	mid.from = h / 2;
	tsub_open(&b, "mid", 0, &mid, mid.from);
	ck_assert_int_eq(tsub_wait_reply(&a), 1);
	ck_assert_int_eq(tsub_wait_reply(&b), 1);
	ck_assert_int_ge(a.head, h);
	ck_assert_int_ge(b.head, h);
	ck_assert_int_le(a.head, 2 + N1);
	writer_go(go);
	while (alive(writer)) {
		tsub_pump(&a, 64 * 1024, 1);
		tsub_pump(&b, 64 * 1024, 1);
		ck_assert(!a.c.eof && !b.c.eof);
	}
	wait_writer(writer);
	ck_assert_int_eq(sd_head(), final);
	tsub_until(&a, final);
	tsub_until(&b, final);
	ck_assert_int_eq(a.nevents, final - a.head);
	ck_assert_int_eq(b.nevents, final - mid.from);
	tsub_quiet(&a, 100);
	tsub_quiet(&b, 0);
	fprintf(stderr, "cdcd in flight: subscribed at head %lld (%s the first "
	    "%d writes), from %lld\n", (long long)a.head, a.head < 2 + N1 ?
	    "during" : "after", N1, (long long)mid.from);
	tsub_close(&a);
	tsub_close(&b);
}
END_TEST

/*
 * unsubscribe stops the stream at its reply (events written to the socket
 * before it still arrive, none after); the connection can subscribe again.
 */
START_TEST(unsubscribe_resubscribe)
{
	const struct subopt all = { .from = 0 };
	const struct subopt from5 = { .from = 5 };
	struct tsub a;
	struct wsess ws;
	struct rpc_buf p;

	start_storaged(NULL);
	start_cdcd(NULL);
	seed(&ws);
	updates(&ws, 20);
	tsub_open(&a, "unsub", 0, &all, 0);
	tsub_until(&a, 22);
	updates(&ws, 200);
	rpc_buf_init(&p);
	msgpack_pack_map(&p.pk, 0);
	tsub_call(&a, "unsubscribe", &p);
	tsub_wait_call(&a);
	ck_assert_int_eq(a.call_state, 1);
	ck_assert_int_eq(a.state, 2);
	updates(&ws, 20);
	tsub_quiet(&a, 300);	/* any event now fails in tsub_event */
	pack_seq(&p, 1);
	tsub_call(&a, "ack", &p);
	tsub_wait_call(&a);
	ck_assert_str_eq(a.call_code, "invalid_state");
	tsub_resubscribe(&a, &from5, 5);
	tsub_until(&a, 242);
	ck_assert_int_eq(a.nreset, 0);
	rpc_buf_free(&p);
	tsub_close(&a);
}
END_TEST

/*
 * 3. kill -9 cdcd mid-stream, while it holds events the subscriber has not
 * read yet (they die with it); writes continue while it is down and after
 * it returns.  Resubscribing from the last seq seen loses and repeats
 * nothing.
 */
START_TEST(kill_cdcd_resume)
{
	/* N1 events (~700 KB) are more than the kernel's socket buffers hold. */
	enum { N1 = 4000, N2 = 1000 };
	const struct subopt all = { .from = 0 };
	struct subopt resume = { .from = 0 };
	struct tsub a, b;
	struct cstat st;
	struct wsess ws;
	int64_t final, at_kill, deadline, cursor = 0;
	pid_t writer;
	int go;

	start_storaged(NULL);
	start_cdcd(NULL);
	seed(&ws);
	final = 2 + N1 + N2;
	/* A small receive buffer and no reading: cdcd must buffer the rest. */
	tsub_open(&a, "before", 4096, &all, 0);
	ck_assert_int_eq(tsub_wait_reply(&a), 1);
	writer = fork_writer2(&ws, N1, N2, 50, 5000, &go);
	deadline = aotime_mono_ms() + WAIT_MS;
	for (;;) {
		ck_assert_msg(aotime_mono_ms() < deadline, "cdcd never held unread "
		    "output (cursor %lld)", (long long)cursor);
		if (sd_head() == 2 + N1) {
			cdcd_stats(&st);
			ck_assert_int_eq(st.n, 1);
			cursor = st.sub[0].cursor;
			if (st.sub[0].buffered > 0)
				break;
		}
		usleep(5000);
	}
	testlib_stop(cd_pid, SIGKILL, 5000);
	/* The second part is written while cdcd is down and after it returns. */
	writer_go(go);
	/* What reached the socket is delivered; then EOF. */
	tsub_until_eof(&a);
	at_kill = a.last;
	ck_assert_msg(at_kill < cursor, "nothing was lost with cdcd (seen %lld, its "
	    "cursor %lld)", (long long)at_kill, (long long)cursor);
	INTEG_WAIT(sd_head() != 2 + N1, WAIT_MS, 1, "the writer did not resume");
	start_cdcd(NULL);
	resume.from = at_kill;
	tsub_open(&b, "after", 0, &resume, at_kill);
	ck_assert_int_eq(tsub_wait_reply(&b), 1);
	wait_writer(writer);
	tsub_until(&b, final);
	ck_assert_int_eq(a.nevents + b.nevents, final);
	ck_assert_int_eq(b.nreset, 0);
	tsub_quiet(&b, 100);
	fprintf(stderr, "cdcd kill -9: seen %lld, cdcd had written up to %lld; "
	    "resumed with head %lld\n", (long long)at_kill, (long long)cursor,
	    (long long)b.head);
	tsub_close(&a);
	tsub_close(&b);
}
END_TEST

/*
 * 4. storaged restarts (SIGTERM, start again on the same data dir) while a
 * subscriber is connected to cdcd: events written after it returns keep
 * arriving, with nothing lost in between.  Run with the default poll and with
 * the poll out of the way, so cdcd's watch reconnect alone must deliver.
 */
static void
restart_storaged(const char *const cd_args[])
{
	const struct subopt all = { .from = 0 };
	struct tsub a;
	struct wsess ws;
	int64_t t0;
	int st;

	start_storaged(NULL);
	start_cdcd(cd_args);
	seed(&ws);
	tsub_open(&a, "sub", 0, &all, 0);
	updates(&ws, 300);
	while (a.last < 100)
		ck_assert_msg(tsub_pump(&a, 4096, WAIT_MS) > 0, "no events");
	st = testlib_stop(sd_pid, SIGTERM, 10000);
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "storaged exit 0x%x", st);
	start_storaged(NULL);
	ck_assert_int_eq(sd_head(), 302);
	tsub_until(&a, 302);
	t0 = aotime_mono_ms();
	updates(&ws, 300);
	tsub_until(&a, 602);
	fprintf(stderr, "cdcd %s: events after the storaged restart arrived in "
	    "%lld ms\n", cd_args != NULL ? cd_args[0] : "default poll",
	    (long long)(aotime_mono_ms() - t0));
	/* And later ones, once the reconnect has settled. */
	updates(&ws, 10);
	tsub_until(&a, 612);
	ck_assert_int_eq(a.nevents, 612);
	ck_assert_int_eq(a.nreset, 0);
	ck_assert(alive(cd_pid));
	tsub_close(&a);
}

START_TEST(restart_storaged_poll)
{
	restart_storaged(NULL);
}
END_TEST

START_TEST(restart_storaged_watch_only)
{
	static const char *const cd_args[] = { "--poll-ms=600000", NULL };

	restart_storaged(cd_args);
}
END_TEST

/*
 * 5a. from past the head: reset {oldest, head}, one snapshot per project,
 * session and PR, snapshot_end {seq = head}, then live events.  from = head
 * and from = head - 1 need no reset.
 */
/*
 * A snapshot larger than the connection's output cap closes that
 * connection mid-reset.  cdcd must survive it (it used to touch the freed
 * subscriber) and keep serving others.
 */
START_TEST(reset_snapshot_over_cap)
{
	enum { N = 24, PROMPT = 3 * 1024 * 1024 };
	struct rpc_buf b;
	struct bclient *bc;
	struct bclient_msg res, n;
	struct rpc_error err;
	char *prompt = malloc(PROMPT + 1);
	int i, r;

	ck_assert_ptr_nonnull(prompt);
	memset(prompt, 'p', PROMPT);
	prompt[PROMPT] = '\0';
	start_storaged(NULL);
	add_project("big");
	rpc_buf_init(&b);
	for (i = 0; i < N; i++) {
		rpc_buf_reset(&b);
		msgpack_pack_map(&b.pk, 2);
		rpc_pack_kv_str(&b.pk, "project_id", "big");
		rpc_pack_kv_str(&b.pk, "prompt", prompt);
		sd_call("session.create", &b, NULL);
	}
	free(prompt);
	start_cdcd(NULL);
	/* 72 MiB of snapshot against a 64 MiB output cap. */
	bc = integ_connect(cd_sock);
	rpc_buf_reset(&b);
	msgpack_pack_map(&b.pk, 1);
	rpc_pack_kv_i64(&b.pk, "from", 1000000);
	/*
	 * The connection is closed with the snapshot: the subscribe answer may
	 * go with it (it shares the dropped output).  Either way it ends closed.
	 */
	if (bclient_call(bc, "subscribe", b.sb.data, b.sb.size, 30000, &res,
	    &err) == 0) {
		bclient_msg_free(&res);
		while ((r = bclient_next(bc, 30000, &n, &err)) == 1)
			bclient_msg_free(&n);
		ck_assert_msg(r == -1, "the over-cap snapshot did not close the "
		    "connection");
	} else
		ck_assert_int_eq(err.code, RPC_UNAVAILABLE);
	bclient_free(bc);
	rpc_buf_free(&b);
	ck_assert_msg(!integ_pid_gone(cd_pid), "cdcd died: %s", integ_log_tail());
	integ_assert_hello_at(cd_sock, "cdcd", cd_pid);
}
END_TEST

START_TEST(reset_past_head)
{
	const struct subopt future = { .from = 1000000 };
	struct subopt at = { .from = 0 };
	struct tsub a, b, c;
	struct wsess s1, s2, s3;
	int64_t head, oldest;

	start_storaged(NULL);
	add_project("p1");
	add_project("p2");
	add_session("p1", &s1);
	add_session("p1", &s2);
	add_session("p2", &s3);
	add_pr(s1.id, "https://example.com/pr/1", 1);
	updates(&s3, 3);
	start_cdcd(NULL);
	sd_bounds(&head, &oldest);
	ck_assert_int_eq(oldest, 1);

	tsub_open(&a, "future", 0, &future, -1);
	ck_assert_int_eq(tsub_wait_reply(&a), 1);
	ck_assert_int_eq(a.head, head);
	ck_assert_int_eq(a.oldest, 1);
	while (a.nsnap_end == 0)
		ck_assert_msg(tsub_pump(&a, 64 * 1024, WAIT_MS) > 0,
		    "future: no snapshot_end");
	ck_assert_int_eq(a.nreset, 1);
	ck_assert_int_eq(a.reset_oldest, 1);
	ck_assert_int_eq(a.reset_head, head);
	ck_assert_int_eq(a.nsnap_project, 2);
	ck_assert_int_eq(a.nsnap_session, 3);
	ck_assert_int_eq(a.nsnap_pr, 1);
	ck_assert_int_eq(a.snap_end_seq, head);
	ck_assert_int_eq(a.nevents, 0);

	at.from = head;
	tsub_open(&b, "at-head", 0, &at, head);
	at.from = head - 1;
	tsub_open(&c, "head-1", 0, &at, head - 1);
	ck_assert_int_eq(tsub_wait_reply(&b), 1);
	tsub_until(&c, head);

	updates(&s1, 2);
	tsub_until(&a, head + 2);
	tsub_until(&b, head + 2);
	tsub_until(&c, head + 2);
	ck_assert_int_eq(a.nevents, 2);
	ck_assert_int_eq(b.nreset + c.nreset, 0);
	ck_assert_int_eq(a.nreset, 1);
	tsub_close(&a);
	tsub_close(&b);
	tsub_close(&c);
}
END_TEST

/*
 * 5b. from before the oldest retained event (retention keeps 5 rows): reset
 * + snapshot; from = oldest - 1 is exactly the retained log, no reset.
 */
START_TEST(reset_before_oldest)
{
	static const char *const sd_args[] = { "--retention-rows=5",
		"--janitor-interval-ms=50", NULL };
	struct subopt o = { .from = 1 };
	struct tsub a, b;
	struct wsess ws;
	int64_t head, oldest;

	start_storaged(sd_args);
	start_cdcd(NULL);
	seed(&ws);
	updates(&ws, 28);
	wait_retained(5, &head, &oldest);
	ck_assert_int_eq(head, 30);
	ck_assert_int_gt(oldest, 2);

	tsub_open(&a, "from-1", 0, &o, 1);
	ck_assert_int_eq(tsub_wait_reply(&a), 1);
	while (a.nsnap_end == 0)
		ck_assert_msg(tsub_pump(&a, 64 * 1024, WAIT_MS) > 0,
		    "from-1: no snapshot_end");
	ck_assert_int_eq(a.nreset, 1);
	ck_assert_int_eq(a.reset_oldest, oldest);
	ck_assert_int_eq(a.reset_head, head);
	ck_assert_int_eq(a.nsnap_project, 1);
	ck_assert_int_eq(a.nsnap_session, 1);
	ck_assert_int_eq(a.nsnap_pr, 0);
	ck_assert_int_eq(a.snap_end_seq, head);

	o.from = oldest - 1;
	tsub_open(&b, "oldest-1", 0, &o, oldest - 1);
	tsub_until(&b, head);
	ck_assert_int_eq(b.nreset, 0);
	ck_assert_int_eq(b.nevents, head - oldest + 1);

	updates(&ws, 1);
	tsub_until(&a, head + 1);
	tsub_until(&b, head + 1);
	ck_assert_int_eq(a.nevents, 1);
	tsub_close(&a);
	tsub_close(&b);
}
END_TEST

/*
 * A subscriber that falls behind the retained log while connected (it reads
 * nothing while retention prunes past its cursor) must be told with a reset,
 * as one that asks for a pruned `from` is: a silent jump over pruned seqs is
 * a lost event the client cannot detect.
 */
START_TEST(reset_when_pruned_behind_cursor)
{
	static const char *const sd_args[] = { "--retention-rows=50",
		"--janitor-interval-ms=20", NULL };
	static const char *const cd_args[] = { "--subscriber-buffer-bytes=4096",
		"--ring-bytes=4096", NULL };
	const struct subopt all = { .from = 0 };
	struct tsub a;
	struct wsess ws;
	int64_t head, oldest;

	start_storaged(sd_args);
	start_cdcd(cd_args);
	seed(&ws);
	tsub_open(&a, "behind", 4096, &all, 0);
	ck_assert_int_eq(tsub_wait_reply(&a), 1);
	updates(&ws, 4000);
	wait_retained(50, &head, &oldest);
	/* tsub_event fails at the first seq that skips without a reset. */
	tsub_until(&a, head);
	ck_assert_int_ge(a.nreset, 1);
	tsub_close(&a);
}
END_TEST

/*
 * 6. A durable consumer: acks are stored (coalesced) through storaged, and
 * after cdcd is killed and restarted, subscribe {consumer} resumes after the
 * last ack.  ack past what was delivered is bad_request; ack without a
 * consumer name (or without a subscription) is invalid_state.
 */
static bool
consumer_seq(const char *name, int64_t *seq)
{
	struct bclient *bc = integ_connect(sd_sock);
	struct bclient_msg res;
	struct rpc_error err;
	struct rpc_buf b;
	bool ok;

	rpc_buf_init(&b);
	msgpack_pack_map(&b.pk, 1);
	rpc_pack_kv_str(&b.pk, "name", name);
	ok = bclient_call(bc, "consumer.get", b.sb.data, b.sb.size, WAIT_MS, &res,
	    &err) == 0;
	rpc_buf_free(&b);
	if (ok) {
		ck_assert_int_eq(rpc_obj_i64(rpc_map_get(res.m.result, "seq"), seq), 0);
		bclient_msg_free(&res);
	} else
		ck_assert_msg(err.code == RPC_NOT_FOUND, "consumer.get: %s",
		    err.message);
	bclient_free(bc);
	return ok;
}

START_TEST(durable_consumer)
{
	const struct subopt first = { .from = 0, .consumer = "c1" };
	const struct subopt again = { .from = -1, .consumer = "c1" };
	const struct subopt plain = { .from = 0 };
	struct tsub a, b, c;
	struct bclient *bc;
	struct rpc_buf p;
	struct wsess ws;
	int64_t seq = -1, deadline, t0, stored_ms, writes0, commits, burst_ms;

	start_storaged(NULL);
	start_cdcd(NULL);
	seed(&ws);
	updates(&ws, 18);
	rpc_buf_init(&p);

	tsub_open(&a, "c1", 0, &first, 0);
	tsub_until(&a, 20);
	pack_seq(&p, 10);
	tsub_call(&a, "ack", &p);
	tsub_wait_call(&a);
	ck_assert_msg(a.call_state == 1, "ack 10: %s: %s", a.call_code, a.call_msg);
	t0 = aotime_mono_ms();
	pack_seq(&p, 4);	/* older: accepted, changes nothing */
	tsub_call(&a, "ack", &p);
	tsub_wait_call(&a);
	ck_assert_int_eq(a.call_state, 1);
	pack_seq(&p, 1000);
	tsub_call(&a, "ack", &p);
	tsub_wait_call(&a);
	ck_assert_int_eq(a.call_state, -1);
	ck_assert_str_eq(a.call_code, "bad_request");
	/* Coalesced: stored through storaged within about 100 ms. */
	deadline = aotime_mono_ms() + WAIT_MS;
	while (!consumer_seq("c1", &seq) || seq != 10) {
		ck_assert_msg(aotime_mono_ms() < deadline, "the ack was never stored "
		    "(consumer.get seq %lld)", (long long)seq);
		usleep(10000);
	}
	stored_ms = aotime_mono_ms() - t0;

	/*
	 * A burst of acks is coalesced: cdcd commits at most once per 100 ms,
	 * so storaged sees no more consumer.commit writes than 100 ms periods
	 * elapsed (+1 for the period in progress, +1 in flight).
	 */
	writes0 = integ_stat_at(sd_sock, NULL, "writes");
	t0 = aotime_mono_ms();
	for (seq = 11; seq <= 15; seq++) {
		pack_seq(&p, seq);
		tsub_call(&a, "ack", &p);
		tsub_wait_call(&a);
		ck_assert_int_eq(a.call_state, 1);
	}
	while (!consumer_seq("c1", &seq) || seq != 15) {
		ck_assert_msg(aotime_mono_ms() < deadline, "ack 15 was never stored "
		    "(consumer.get seq %lld)", (long long)seq);
		usleep(10000);
	}
	commits = integ_stat_at(sd_sock, NULL, "writes") - writes0;
	burst_ms = aotime_mono_ms() - t0;
	ck_assert_int_ge(commits, 1);
	ck_assert_msg(commits <= burst_ms / 100 + 2, "5 acks in %lld ms took %lld "
	    "consumer.commit writes", (long long)burst_ms, (long long)commits);

	testlib_stop(cd_pid, SIGKILL, 5000);
	tsub_until_eof(&a);
	start_cdcd(NULL);
	tsub_open(&b, "c1-again", 0, &again, 15);
	ck_assert_int_eq(tsub_wait_reply(&b), 1);
	tsub_until(&b, 20);
	ck_assert_int_eq(b.nevents, 5);
	updates(&ws, 5);
	tsub_until(&b, 25);
	ck_assert_int_eq(b.nreset, 0);

	/* ack without a consumer name, and without a subscription. */
	tsub_open(&c, "plain", 0, &plain, 0);
	tsub_until(&c, 25);
	pack_seq(&p, 1);
	tsub_call(&c, "ack", &p);
	tsub_wait_call(&c);
	ck_assert_int_eq(c.call_state, -1);
	ck_assert_str_eq(c.call_code, "invalid_state");
	bc = integ_connect(cd_sock);
	integ_expect_err(bc, "ack", &p, RPC_INVALID_STATE, NULL);
	bclient_free(bc);
	fprintf(stderr, "cdcd consumer: ack stored after ~%lld ms; 5 acks -> %lld "
	    "commits in %lld ms\n", (long long)stored_ms, (long long)commits,
	    (long long)burst_ms);
	rpc_buf_free(&p);
	tsub_close(&a);
	tsub_close(&b);
	tsub_close(&c);
}
END_TEST

/*
 * 7. Filters: project_id, session_id, types, and a combination deliver
 * exactly the matching events (compared with changelog.read), from the
 * database backlog (written before cdcd started) and live.
 */
struct cl_event {
	int64_t seq;
	char project[32], session[32], type[32];
};

static size_t
read_changelog(struct cl_event *out, size_t cap)
{
	struct bclient_msg res;
	const msgpack_object *evs;
	struct rpc_buf b;
	size_t n = 0;
	uint32_t i;

	rpc_buf_init(&b);
	msgpack_pack_map(&b.pk, 2);
	rpc_pack_kv_i64(&b.pk, "after", 0);
	rpc_pack_kv_i64(&b.pk, "limit", 10000);
	sd_call("changelog.read", &b, &res);
	rpc_buf_free(&b);
	evs = rpc_map_get(res.m.result, "events");
	ck_assert_ptr_nonnull(evs);
	for (i = 0; i < evs->via.array.size && n < cap; i++, n++) {
		const msgpack_object *e = &evs->via.array.ptr[i];

		ck_assert_int_eq(rpc_obj_i64(rpc_map_get(e, "seq"), &out[n].seq), 0);
		copy_str(rpc_map_get(e, "project_id"), out[n].project,
		    sizeof(out[n].project));
		copy_str(rpc_map_get(e, "session_id"), out[n].session,
		    sizeof(out[n].session));
		copy_str(rpc_map_get(e, "type"), out[n].type, sizeof(out[n].type));
	}
	bclient_msg_free(&res);
	return n;
}

static bool
cl_match(const struct cl_event *e, const struct subopt *o)
{
	int i;

	if (o->project != NULL && strcmp(e->project, o->project) != 0)
		return false;
	if (o->session != NULL && strcmp(e->session, o->session) != 0)
		return false;
	if (o->types == NULL)
		return true;
	for (i = 0; o->types[i] != NULL; i++)
		if (strcmp(e->type, o->types[i]) == 0)
			return true;
	return false;
}

static void
check_filtered(struct tsub *s, const struct subopt *o, const struct cl_event *cl,
    size_t ncl)
{
	int64_t want_last = 0;
	size_t i, k = 0;

	for (i = 0; i < ncl; i++)
		if (cl_match(&cl[i], o))
			want_last = cl[i].seq;
	ck_assert_int_gt(want_last, 0);
	tsub_until(s, want_last);
	for (i = 0; i < ncl; i++) {
		if (!cl_match(&cl[i], o))
			continue;
		ck_assert_msg(k < s->nrecs, "%s: seq %lld (%s %s) missing", s->name,
		    (long long)cl[i].seq, cl[i].type, cl[i].session);
		ck_assert_msg(s->recs[k].seq == cl[i].seq, "%s: got seq %lld, expected "
		    "%lld", s->name, (long long)s->recs[k].seq, (long long)cl[i].seq);
		ck_assert_str_eq(s->recs[k].type, cl[i].type);
		ck_assert_str_eq(s->recs[k].project, cl[i].project);
		ck_assert_str_eq(s->recs[k].session, cl[i].session);
		k++;
	}
	ck_assert_int_eq(k, s->nrecs);
}

START_TEST(filters)
{
	static const char *const types[] = { "session_created", "pr_created",
		"notification_created", NULL };
	static const char *const updated[] = { "session_updated", NULL };
	static const char *const bogus[] = { "session_created", "bogus", NULL };
	static struct cl_event cl[1000];
	const struct subopt opts[4] = {
		{ .from = 0, .project = "p2" },
		{ .from = 0, .session = "p1-2" },
		{ .from = 0, .types = types },
		{ .from = 0, .project = "p1", .types = updated },
	};
	static const char *const names[4] = { "project", "session", "types",
		"project+types" };
	const struct subopt bad = { .from = 0, .types = bogus };
	struct tsub s[4], e;
	struct wsess w1, w2, w3;
	size_t ncl;
	int i;

	start_storaged(NULL);
	add_project("p1");
	add_project("p2");
	add_session("p1", &w1);
	add_session("p1", &w2);
	add_session("p2", &w3);
	updates(&w1, 10);
	updates(&w2, 10);
	updates(&w3, 10);
	add_pr(w1.id, "https://example.com/pr/7", 7);
	add_notification(w3.id);
	start_cdcd(NULL);
	for (i = 0; i < 4; i++) {
		tsub_open(&s[i], names[i], 0, &opts[i], 0);
		s[i].record = true;
		ck_assert_int_eq(tsub_wait_reply(&s[i]), 1);
	}
	/* Live, after the backlog. */
	updates(&w3, 10);
	updates(&w2, 10);
	updates(&w1, 10);
	add_notification(w2.id);
	add_pr(w3.id, "https://example.com/pr/8", 8);
	ncl = read_changelog(cl, sizeof(cl) / sizeof(cl[0]));
	ck_assert_int_eq((int64_t)ncl, sd_head());
	for (i = 0; i < 4; i++) {
		check_filtered(&s[i], &opts[i], cl, ncl);
		tsub_quiet(&s[i], i == 0 ? 100 : 0);
	}

	/* An unknown type is refused with the list; the connection stays usable. */
	tsub_open(&e, "bogus", 0, &bad, 0);
	ck_assert_int_eq(tsub_wait_reply(&e), -1);
	ck_assert_str_eq(e.err_code, "bad_request");
	ck_assert_msg(strstr(e.err_msg, "bogus") != NULL &&
	    strstr(e.err_msg, "session_created") != NULL &&
	    strstr(e.err_msg, "project_archived") != NULL,
	    "the error does not list the types: %s", e.err_msg);
	tsub_resubscribe(&e, &opts[0], 0);
	e.record = true;
	check_filtered(&e, &opts[0], cl, ncl);
	for (i = 0; i < 4; i++)
		tsub_close(&s[i]);
	tsub_close(&e);
}
END_TEST

/*
 * 8. Hostile bytes on cdcd.sock close only that connection; a subscriber
 * keeps receiving every event; bad params get errors; a second subscribe on
 * one connection is a conflict.
 */
static void
expect_closed(const void *bytes, size_t n)
{
	struct tconn c;
	int64_t deadline = aotime_mono_ms() + WAIT_MS;

	ck_assert_int_eq(tconn_open(&c, cd_sock, 0), 0);
	ck_assert_int_eq(integ_write_all(c.fd, bytes, n), 0);
	while (tconn_fill(&c, 64 * 1024, 100) != 0)
		ck_assert_msg(aotime_mono_ms() < deadline, "cdcd kept a connection "
		    "open after %zu hostile bytes (0x%02x…)", n,
		    ((const unsigned char *)bytes)[0]);
	tconn_close(&c);
}

START_TEST(hostile_bytes)
{
	static const unsigned char arr32[] = { 0xdd, 0xff, 0xff, 0xff, 0xff };
	static const unsigned char never[] = { 0xc1 };
	static const unsigned char bare_map[] = { 0x81, 0xa1, 'a', 0x01 };
	static const unsigned char str32[] = { 0xdb, 0xff, 0xff, 0xff, 0xff };
	static const unsigned char map32[] = { 0xdf, 0x7f, 0xff, 0xff, 0xff };
	const struct subopt all = { .from = 0 };
	struct tsub a;
	struct bclient *bc;
	struct rpc_buf b;
	struct wsess ws;
	int64_t head;

	start_storaged(NULL);
	start_cdcd(NULL);
	seed(&ws);
	tsub_open(&a, "good", 0, &all, 0);
	updates(&ws, 50);
	tsub_until(&a, 52);

	expect_closed(arr32, sizeof(arr32));
	updates(&ws, 50);
	expect_closed(never, sizeof(never));
	updates(&ws, 50);
	expect_closed(bare_map, sizeof(bare_map));
	updates(&ws, 50);
	expect_closed(str32, sizeof(str32));
	expect_closed(map32, sizeof(map32));
	updates(&ws, 50);
	tsub_until(&a, 252);

	/* Bad params: an error each, the connection stays. */
	bc = integ_connect(cd_sock);
	rpc_buf_init(&b);
	msgpack_pack_map(&b.pk, 1);
	rpc_pack_kv_i64(&b.pk, "from", -1);
	integ_expect_err(bc, "subscribe", &b, RPC_BAD_REQUEST, NULL);
	rpc_buf_reset(&b);
	msgpack_pack_map(&b.pk, 1);
	rpc_pack_kv_str(&b.pk, "from", "x");
	integ_expect_err(bc, "subscribe", &b, RPC_BAD_REQUEST, NULL);
	rpc_buf_reset(&b);
	msgpack_pack_map(&b.pk, 1);
	rpc_pack_kv_i64(&b.pk, "bogus", 1);
	integ_expect_err(bc, "subscribe", &b, RPC_BAD_REQUEST, NULL);
	rpc_buf_reset(&b);
	msgpack_pack_map(&b.pk, 1);
	rpc_pack_kv_str(&b.pk, "consumer", "");
	integ_expect_err(bc, "subscribe", &b, RPC_BAD_REQUEST, NULL);
	integ_expect_err(bc, "nonesuch", NULL, RPC_UNKNOWN_METHOD, NULL);
	integ_call_ok(bc, "ping", NULL, NULL);
	bclient_free(bc);

	/* One subscription per connection; the stream is not disturbed. */
	rpc_buf_reset(&b);
	pack_subscribe(&b, &all);
	tsub_call(&a, "subscribe", &b);
	tsub_wait_call(&a);
	ck_assert_int_eq(a.call_state, -1);
	ck_assert_str_eq(a.call_code, "conflict");
	rpc_buf_free(&b);
	updates(&ws, 50);
	head = sd_head();
	tsub_until(&a, head);
	ck_assert_int_eq(a.nevents, head);
	tsub_quiet(&a, 100);
	ck_assert(alive(cd_pid));
	tsub_close(&a);
}
END_TEST

/*
 * 9. A subscriber that never reads is closed after stall_timeout_ms (plus
 * the grace for its closing notice), while cdcd keeps serving another.
 */
START_TEST(stall_timeout)
{
	/* N events (~700 KB) are more than the kernel's socket buffers hold. */
	enum { N = 4000 };
	static const char *const cd_args[] = { "--stall-timeout-ms=1000",
		"--subscriber-buffer-bytes=4096", NULL };
	const struct subopt all = { .from = 0 };
	const struct subopt tail = { .from = 2 + N };
	struct tsub stalled, good, later;
	struct pollfd pfd;
	struct cstat st;
	struct wsess ws;
	int64_t t0, hup_ms = -1, final;
	pid_t writer;

	start_storaged(NULL);
	start_cdcd(cd_args);
	seed(&ws);
	/* The stalled one reads nothing at all, not even its reply. */
	tsub_open(&stalled, "stalled", 4096, &all, 0);
	tsub_open(&good, "good", 0, &all, 0);
	final = 2 + N;
	writer = fork_writer(&ws, N, 256, 0);
	while (good.last < final)
		ck_assert_msg(tsub_pump(&good, 64 * 1024, WAIT_MS) > 0,
		    "good: stream stopped at %lld", (long long)good.last);
	wait_writer(writer);
	t0 = aotime_mono_ms();
	while (hup_ms < 0) {
		pfd.fd = stalled.c.fd;
		pfd.events = POLLRDHUP;
		pfd.revents = 0;
		/* Only hangup is waited for: reading would be progress. */
		if (poll(&pfd, 1, 50) == 1 && (pfd.revents & (POLLHUP | POLLRDHUP)))
			hup_ms = aotime_mono_ms() - t0;
		ck_assert_msg(aotime_mono_ms() - t0 < 10000, "the stalled subscriber "
		    "was not disconnected within 10 s");
		ck_assert(tsub_pump(&good, 64 * 1024, 0) != 0);
	}
	/* What was buffered, then EOF. */
	tsub_until_eof(&stalled);
	ck_assert_msg(stalled.last < final, "the stalled subscriber got everything");
	/* cdcd serves the others: the good one is listed, the stalled one not. */
	cdcd_stats(&st);
	ck_assert_int_eq(st.n, 1);
	ck_assert_int_eq(st.sub[0].cursor, final);
	tsub_open(&later, "later", 0, &tail, final);
	ck_assert_int_eq(tsub_wait_reply(&later), 1);
	updates(&ws, 10);
	tsub_until(&good, final + 10);
	tsub_until(&later, final + 10);
	ck_assert(alive(cd_pid));
	fprintf(stderr, "cdcd stall: disconnected %lld ms after the writes ended; "
	    "it had %lld events, closing %s\n", (long long)hup_ms,
	    (long long)stalled.last, stalled.nclosing > 0 ? "read" : "not read");
	tsub_close(&stalled);
	tsub_close(&good);
	tsub_close(&later);
}
END_TEST

/*
 * 10. Catch-up of large events from the database.  A backlog of 100 KB
 * events (notification messages; every tenth is 400 KB, more than a
 * subscriber's cap) lies behind the ring; six subscribers read it from 0
 * through small receive buffers while a seventh waits live at the head.  A
 * database batch stops at subscriber_buffer_bytes (a larger event goes
 * alone) and a catch-up turn at catchup_turn_bytes across subscribers, so:
 * each subscriber gets every event in order and none is cut off; no output
 * ever holds more than the cap plus one event (stats peak_buffered_bytes);
 * cdcd's RSS stays within the caps plus its fixed size; hello is answered
 * and the live subscriber is served while the others are still far behind;
 * turns go round-robin, so no subscriber is left far behind the others.
 */
START_TEST(catchup_large_events)
{
	enum { NSUB = 6, NEV = 200, BIG = 100 * 1024, HUGE = 400 * 1024,
		HW = 256 * 1024, NLIVE = 5 };
	static const char *const cd_args[] = { "--subscriber-buffer-bytes=262144",
		"--ring-bytes=4096", "--catchup-turn-bytes=262144", NULL };
	static const char *const names[NSUB] = { "c1", "c2", "c3", "c4", "c5",
		"c6" };
	const struct subopt all = { .from = 0 };
	const struct subopt live = { .from = -1 };
	struct tsub sub[NSUB], lv;
	struct cstat st;
	struct wsess ws;
	int64_t final, deadline, max_buffered = 0, behind = INT64_MAX;
	long rss0, rss, rss_max = 0, bound_kib;
	size_t max_event = 0;
	int i, iter = 0, samples = 0, done;
	bool live_checked = false, fair_checked = false, got;

	start_storaged(NULL);
	seed(&ws);
	big_notifications(ws.id, NEV, BIG, HUGE, 10);
	final = sd_head();
	ck_assert_int_eq(final, 2 + NEV);
	/* Started after the writes: its ring begins at the head. */
	start_cdcd(cd_args);
	rss0 = integ_rss_kib(cd_pid);
	for (i = 0; i < NSUB; i++)
		tsub_open(&sub[i], names[i], 16 * 1024, &all, 0);
	tsub_open(&lv, "live", 0, &live, -1);
	ck_assert_int_eq(tsub_wait_reply(&lv), 1);
	deadline = aotime_mono_ms() + 4 * WAIT_MS;
	for (;;) {
		ck_assert_msg(aotime_mono_ms() < deadline, "timed out: %s at %lld of "
		    "%lld", names[0], (long long)sub[0].last, (long long)final);
		for (i = 0, done = 0, got = false; i < NSUB; i++) {
			ssize_t r = tsub_pump(&sub[i], 32 * 1024, 0);

			ck_assert_msg(r != 0, "%s: closed at seq %lld of %lld (log: %s)",
			    names[i], (long long)sub[i].last, (long long)final,
			    integ_log_tail());
			got |= r > 0;
			done += sub[i].last == final;
			if (sub[i].max_event > max_event)
				max_event = sub[i].max_event;
		}
		/*
		 * Round-robin: read alike, every subscriber is served alike,
		 * so none is far behind when the first has everything.
		 */
		for (i = 0; done > 0 && !fair_checked && i < NSUB; i++) {
			ck_assert_msg(sub[i].last - 2 >= (final - 2) / 4, "%s: at seq "
			    "%lld when %d subscribers had all %lld", names[i],
			    (long long)sub[i].last, done, (long long)final);
			if (sub[i].last < behind)
				behind = sub[i].last;
		}
		fair_checked |= done > 0;
		if (done == NSUB)
			break;
		if (!got)
			usleep(1000);
		if (iter++ % 16 != 0)
			continue;
		cdcd_stats(&st);
		ck_assert_int_eq(st.n, NSUB + 1);
		samples++;
		for (i = 0; i < NSUB; i++)
			if (st.sub[i].buffered > max_buffered)
				max_buffered = st.sub[i].buffered;
		rss = integ_rss_kib(cd_pid);
		if (rss > rss_max)
			rss_max = rss;
		if (live_checked || sub[0].last <= 2 || sub[NSUB - 1].last <= 2)
			continue;
		/*
		 * Once the catch-up is under way, and while nobody reads the
		 * others: new events reach the live subscriber, and hello is
		 * answered, before cdcd could have written the backlog out.
		 */
		updates(&ws, NLIVE);
		tsub_until(&lv, final + NLIVE);
		integ_assert_hello_at(cd_sock, "cdcd", cd_pid);
		cdcd_stats(&st);
		for (i = 0; i < NSUB; i++)
			ck_assert_msg(st.sub[i].cursor < final, "%s: cdcd wrote the "
			    "whole backlog (cursor %lld) before serving the live "
			    "subscriber", names[i], (long long)st.sub[i].cursor);
		final += NLIVE;
		live_checked = true;
	}
	ck_assert(live_checked);
	cdcd_stats(&st);
	for (i = 0; i < NSUB; i++) {
		ck_assert_int_eq(sub[i].nevents, final);
		ck_assert_msg(st.sub[i].peak >= 0, "stats has no "
		    "peak_buffered_bytes");
		ck_assert_msg(st.sub[i].peak <= HW + (int64_t)max_event, "%s: "
		    "peak_buffered_bytes %lld > subscriber_buffer_bytes %d + one "
		    "event %zu", names[i], (long long)st.sub[i].peak, HW, max_event);
		tsub_quiet(&sub[i], i == 0 ? 100 : 0);
	}
	ck_assert_int_eq(lv.nevents, NLIVE);
	ck_assert_msg(max_buffered <= HW + (int64_t)max_event, "buffered_bytes "
	    "%lld > subscriber_buffer_bytes %d + one event %zu",
	    (long long)max_buffered, HW, max_event);
	ck_assert_msg(st.turns > 0 && st.turns_cut > 0, "no catch-up turn was "
	    "cut by catchup_turn_bytes (%lld turns, %lld cut)",
	    (long long)st.turns, (long long)st.turns_cut);
	/*
	 * Each subscriber holds at most its cap plus one event, in its output
	 * and once more while a batch is encoded (~1.3 MiB each): ~8 MiB for
	 * six, plus SQLite's page cache and JSON parsing of one event.  The
	 * backlog is 26 MB per subscriber, so encoding it whole (as cdcd did)
	 * costs over 150 MiB.  Under ASan the quarantine keeps freed memory.
	 */
#if defined(__SANITIZE_ADDRESS__)
	bound_kib = rss0 + 384 * 1024;
#else
	bound_kib = rss0 + NSUB * 2 * (HW + HUGE) / 1024 + 24 * 1024;
#endif
	ck_assert_msg(rss_max > 0 && rss_max < bound_kib, "cdcd VmRSS %ld KiB "
	    "(start %ld KiB) >= bound %ld KiB", rss_max, rss0, bound_kib);
	fprintf(stderr, "cdcd catch-up: %d x %d events (max %zu B), the last at "
	    "%lld when the first had all; %d samples, max buffered %lld B, peak "
	    "%lld B; %lld turns, %lld cut; VmRSS %ld -> max %ld KiB\n", NSUB,
	    (int)final, max_event, (long long)behind, samples,
	    (long long)max_buffered, (long long)st.sub[0].peak,
	    (long long)st.turns, (long long)st.turns_cut, rss0, rss_max);
	for (i = 0; i < NSUB; i++)
		tsub_close(&sub[i]);
	tsub_close(&lv);
}
END_TEST

/*
 * 11. A backlog larger than a connection's output cap (64 MiB): 460 events
 * of 150 KB.  cdcd used to encode up to 500 of them into one send, past the
 * cap, and closed the subscriber for output overflow on every reconnect.
 */
START_TEST(catchup_over_output_cap)
{
	enum { NEV = 460, SIZE = 150 * 1024 };
	const struct subopt all = { .from = 0 };
	struct tsub a;
	struct wsess ws;
	int64_t final, t0;

	start_storaged(NULL);
	seed(&ws);
	big_notifications(ws.id, NEV, SIZE, 0, 0);
	final = sd_head();
	start_cdcd(NULL);
	t0 = aotime_mono_ms();
	tsub_open(&a, "big", 0, &all, 0);
	tsub_until(&a, final);
	ck_assert_int_eq(a.nevents, final);
	fprintf(stderr, "cdcd over the output cap: %lld events of %d B caught up "
	    "in %lld ms\n", (long long)final, SIZE,
	    (long long)(aotime_mono_ms() - t0));
	tsub_close(&a);
}
END_TEST

/*
 * 12. Memory goes back after load.  Fifty live subscribers receive 20,000
 * events as they are written, so the ring's entries (which stay) lie in
 * the heap between the subscribers' output chains (which go); then they
 * disconnect.  glibc alone kept the freed chains resident for good (~60
 * MiB here, 116 MiB with 100 subscribers); cdcd trims its heap once the
 * churn stops, so its RSS falls below twice its idle size plus what the
 * ring retains, and stats count the trim.
 */
START_TEST(memory_after_load)
{
	enum { NSUB = 50, N = 20000 };
	static struct tsub sub[NSUB];
	const struct subopt live = { .from = -1 };
	struct wsess ws;
	int64_t final, ring_kib, trims0, trims;
	long idle, rss, peak = 0, bound;
	int i, done;
	pid_t writer;

	start_storaged(NULL);
	start_cdcd(NULL);
	seed(&ws);
	INTEG_WAIT(integ_stat_at(cd_sock, NULL, "head") == 2, WAIT_MS, 10,
	    "cdcd never read the seed");
	idle = integ_rss_kib(cd_pid);
	for (i = 0; i < NSUB; i++)
		tsub_open(&sub[i], "live", 0, &live, -1);
	for (i = 0; i < NSUB; i++)
		ck_assert_int_eq(tsub_wait_reply(&sub[i]), 1);
	writer = fork_writer(&ws, N, 64, 0);
	final = 2 + N;
	do {
		for (i = 0, done = 0; i < NSUB; i++) {
			ck_assert_msg(tsub_pump(&sub[i], 256 * 1024, 0) != 0,
			    "subscriber %d: closed at seq %lld", i,
			    (long long)sub[i].last);
			done += sub[i].last == final;
		}
		if ((rss = integ_rss_kib(cd_pid)) > peak)
			peak = rss;
	} while (done < NSUB);
	wait_writer(writer);
	for (i = 0; i < NSUB; i++)
		ck_assert_int_eq(sub[i].nevents, N);
	ring_kib = integ_stat_at(cd_sock, "ring", "bytes") / 1024;
	trims0 = integ_stat_at(cd_sock, "memory", "trims");
	for (i = 0; i < NSUB; i++)
		tsub_close(&sub[i]);
	/* A trim comes one to two quiet periods (1 s) after the churn stops. */
	INTEG_WAIT((trims = integ_stat_at(cd_sock, "memory", "trims")) > trims0,
	    WAIT_MS, 100, "cdcd never trimmed its heap after the subscribers left");
	/* ASan's allocator and quarantine are not glibc's: no RSS bound there. */
#if !defined(__SANITIZE_ADDRESS__)
	bound = 2 * idle + ring_kib;
	INTEG_WAIT((rss = integ_rss_kib(cd_pid)) < bound, WAIT_MS, 100, "cdcd VmRSS "
	    "%ld KiB after load (idle %ld KiB, ring %lld KiB, peak %ld KiB) stays "
	    "above %ld KiB", rss, idle, (long long)ring_kib, peak, bound);
#else
	(void)bound;
	rss = integ_rss_kib(cd_pid);
#endif
	fprintf(stderr, "cdcd memory: VmRSS idle %ld KiB, peak %ld KiB with %d "
	    "subscribers, %ld KiB after (ring %lld KiB); %lld trims (%lld during "
	    "the load), %lld KiB trimmed\n", idle, peak, NSUB, rss,
	    (long long)ring_kib, (long long)trims, (long long)trims0,
	    (long long)integ_stat_at(cd_sock, "memory",
	    "trimmed_kib"));
}
END_TEST

Suite *
cdcd_suite(void)
{
	Suite *s = suite_create("cdcd");
	TCase *tc;

	tc = integ_tcase(s, "fanout", 120, setup, teardown, INTEG_CASE_DIR);
	tcase_add_test(tc, fanout_slow_reader);
	tcase_add_test(tc, subscribe_in_flight);
	tcase_add_test(tc, unsubscribe_resubscribe);
	tcase_add_test(tc, filters);

	tc = integ_tcase(s, "restart", 120, setup, teardown, INTEG_CASE_DIR);
	tcase_add_test(tc, kill_cdcd_resume);
	tcase_add_test(tc, restart_storaged_poll);
	tcase_add_test(tc, restart_storaged_watch_only);
	tcase_add_test(tc, durable_consumer);

	tc = integ_tcase(s, "reset", 60, setup, teardown, INTEG_CASE_DIR);
	tcase_add_test(tc, reset_past_head);
	tcase_add_test(tc, reset_snapshot_over_cap);
	tcase_add_test(tc, reset_before_oldest);
	tcase_add_test(tc, reset_when_pruned_behind_cursor);

	tc = integ_tcase(s, "catch-up", 240, setup, teardown, INTEG_CASE_DIR);
	tcase_add_test(tc, catchup_large_events);
	tcase_add_test(tc, catchup_over_output_cap);
	tcase_add_test(tc, memory_after_load);

	tc = integ_tcase(s, "bad input", 60, setup, teardown, INTEG_CASE_DIR);
	tcase_add_test(tc, hostile_bytes);
	tcase_add_test(tc, stall_timeout);
	return s;
}
TEST_SUITE(cdcd_suite)
