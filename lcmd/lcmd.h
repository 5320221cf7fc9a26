/* ao-lcmd: sessions, their lifecycle and reactions (DESIGN.md §6).  Private header. */
#ifndef AO_LCMD_H
#define AO_LCMD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct lcmd_config {
	int64_t recent_activity_ms;	/* activity this recent vetoes death */
	int64_t detecting_max_attempts;	/* same-evidence probes → stuck */
	int64_t detecting_max_ms;	/* time in detecting → stuck */
	int64_t ci_brake_runs;		/* failed runs in a row → escalate */
	int64_t review_max_nudges;	/* review nudges before escalating */
	int64_t escalate_after_ms;	/* merge-conflicts, agent-idle */
	int64_t notify_timeout_ms;	/* a notifier child's deadline */
	int64_t max_sessions;		/* live sessions at once */
	char *tmux_socket;		/* "" for tmux's default server */
	int64_t max_message_bytes;	/* largest msgpack-rpc message */
	int64_t message_timeout_ms;	/* an unfinished message's deadline */
	int64_t max_unfinished_bytes;	/* cap over all connections (0: auto) */
	char *notify_command;		/* argv as words; "" for none */
	char *notify_desktop;		/* auto | on | off */
	char *notify_urgent;		/* notifier names per priority */
	char *notify_action;
	char *notify_info;
	char *message_log;		/* audit file of messages to agents */
	int64_t storaged_timeout_ms;	/* a storaged call's deadline */
};

/*
 * model.c — the enumerations of DESIGN.md §6, as indices into name tables
 * (the names are the wire and database values).
 */
enum lstate { ST_NOT_STARTED, ST_WORKING, ST_IDLE, ST_NEEDS_INPUT, ST_STUCK,
	ST_DETECTING, ST_DONE, ST_TERMINATED };
enum lreason { RS_NONE = -1, RS_MANUALLY_KILLED, RS_RUNTIME_LOST,
	RS_AGENT_PROCESS_EXITED, RS_PROBE_FAILURE, RS_ERROR_IN_PROCESS,
	RS_AUTO_CLEANUP, RS_PR_MERGED };
enum lactivity { ACT_NONE = -1, ACT_ACTIVE, ACT_READY, ACT_IDLE,
	ACT_WAITING_INPUT, ACT_BLOCKED, ACT_EXITED };
enum lpr_state { PRS_DRAFT, PRS_OPEN, PRS_MERGED, PRS_CLOSED };
enum lreview { RV_NONE, RV_APPROVED, RV_CHANGES_REQUESTED, RV_REVIEW_REQUIRED };
enum lci { CI_UNKNOWN, CI_PENDING, CI_PASSING, CI_FAILING };
enum lmerge { MG_UNKNOWN, MG_MERGEABLE, MG_CONFLICTING, MG_BLOCKED, MG_UNSTABLE };
enum lcheck_status { CHK_UNKNOWN, CHK_QUEUED, CHK_IN_PROGRESS, CHK_PASSED,
	CHK_FAILED, CHK_SKIPPED, CHK_CANCELLED };
enum lprobe { PROBE_ALIVE, PROBE_DEAD, PROBE_FAILED, PROBE_UNKNOWN };
enum lproc { PROC_ALIVE, PROC_DEAD, PROC_INDETERMINATE };
enum lpriority { PRIO_URGENT, PRIO_ACTION, PRIO_INFO };

extern const char *const model_states[];
extern const char *const model_reasons[];
extern const char *const model_activities[];
extern const char *const model_pr_states[];
extern const char *const model_reviews[];
extern const char *const model_ci[];
extern const char *const model_merge[];
extern const char *const model_check_statuses[];
extern const char *const model_probes[];
extern const char *const model_procs[];
extern const char *const model_priorities[];

/* The index of s in a NULL-terminated table, or -1. */
int model_parse(const char *const *names, const char *s);

/* The facts the lifecycle works from, loaded fresh from storaged per input. */
struct lsession {
	char id[128];
	char project_id[80];
	char runtime[16];
	enum lstate state;
	int reason;			/* enum lreason */
	bool is_alive;
	int activity;			/* enum lactivity */
	int64_t activity_at;		/* 0: never */
	char activity_source[64];
	int64_t detecting_attempts;
	int64_t detecting_started_at;	/* 0: not detecting */
	char evidence_hash[65];
	int state_before_detecting;	/* enum lstate, or -1 */
	int64_t dead_probes;
	int64_t created_at;
	char runtime_handle[1024];	/* JSON; "" when no runtime */
	char workspace_path[1024];
};

struct lpr {
	char url[512];
	int64_t number;
	enum lpr_state state;
	enum lreview review;
	enum lci ci;
	enum lmerge merge;
	int64_t created_at;
};

struct lcheck {
	char name[128];
	char commit[96];
	enum lcheck_status status;
	const char *log_tail;		/* owned by the caller, may be NULL */
	const char *url;
};

struct lcomment {
	char id[96];
	const char *author, *file, *body;	/* owned by the caller */
	int64_t line;			/* 0: none */
	bool resolved;
};

struct ltracker {
	char reaction[160];
	int64_t attempts;
	int64_t first_at, last_at;	/* 0: none */
	char signature[600];
	bool escalated;
};

struct lfacts {
	struct lsession session;
	const struct lpr *prs;		/* all of the session's, newest first */
	size_t nprs;
	const struct lcheck *checks;	/* the primary PR's runs, newest first */
	size_t nchecks;
	const struct lcomment *comments;	/* the primary PR's */
	size_t ncomments;
	const struct ltracker *trackers;
	size_t ntrackers;
};

/* status.c — display status, derived on read, never stored. */
/* The PR a status is derived from: the newest draft/open one, else the newest. */
const struct lpr *status_pick_pr(const struct lpr *prs, size_t n);
const char *status_derive(const struct lsession *, const struct lpr *pr,
    bool unresolved_comments);

/* evidence.c — probe evidence fingerprints for detecting's anti-flap. */
/*
 * Strips ISO-8601 datetimes, hh:mm:ss(.frac) times and 10–13 digit epochs,
 * collapses whitespace runs to one space and trims; out gets the result
 * (NUL-terminated, truncated to outlen).
 */
void evidence_normalize(const char *in, char *out, size_t outlen);
/* SHA-256 of the normalized evidence, as 64 hex digits + NUL. */
void evidence_hash(const char *evidence, char out[65]);
/* SHA-256 of text as it is (NULL: ""), as 64 hex digits + NUL. */
void evidence_sha256(const char *text, char out[65]);

/* reducer.c — the lifecycle as a pure function. */
enum linput_type {
	IN_SPAWN_OK,
	IN_SPAWN_FAILED,
	IN_ACTIVITY,
	IN_PROBE,
	IN_PR,		/* a PR observation was stored; facts hold the result */
	IN_KILL,
	IN_RESTORE,
	IN_TICK,
	IN_DONE,
	IN_CLEANUP,
};

struct linput {
	enum linput_type type;
	int activity;			/* IN_ACTIVITY: enum lactivity */
	const char *source;		/* IN_ACTIVITY */
	int probe_runtime;		/* IN_PROBE: enum lprobe */
	int probe_process;		/* IN_PROBE: enum lproc */
	const char *evidence;		/* IN_PROBE, may be NULL */
	const char *error;		/* IN_SPAWN_FAILED */
};

#define EFFECTS_MAX 16

struct lnote {
	enum lpriority priority;
	char reaction[160];
	char *message;
};

struct ltracker_op {
	struct ltracker t;
	bool clear;		/* delete t.reaction ("*": all) */
};

struct leffects {
	struct lsession next;		/* the session after the input */
	bool stop_runtime;
	char *messages[EFFECTS_MAX];	/* to the agent, in order */
	int nmessages;
	struct lnote notes[EFFECTS_MAX];	/* to humans */
	int nnotes;
	struct ltracker_op trackers[EFFECTS_MAX];
	int ntrackers;
};

/*
 * Applies one input to the facts at time now.  Fills out (which the caller
 * frees with reducer_effects_free): the next session, the runtime to stop,
 * the messages for the agent, the notifications and the tracker changes.
 * No I/O.
 */
void reducer_apply(const struct lfacts *, const struct linput *, int64_t now,
    const struct lcmd_config *, struct leffects *out);
void reducer_effects_free(struct leffects *);
/* Whether the session fields the lifecycle owns differ. */
bool reducer_session_changed(const struct lsession *a, const struct lsession *b);

#endif

/* ---- the daemon around the core ---- */

#include <event2/event.h>
#include <msgpack.h>

#include "proto/client.h"
#include "proto/server.h"

struct notify;
struct messenger;

struct lcmd_stats {
	uint64_t inputs, input_errors;
	uint64_t notes_sent, notes_failed, notes_timed_out;
	uint64_t messages_sent, messages_failed;
};

struct lcmd_ctx {
	struct lcmd_config cfg;
	struct event_base *base;
	struct client *storaged;
	struct notify *notify;
	struct messenger *messenger;
	struct lcmd_stats stats;
	char lcmd_socket[4096];
	char data_dir[4096];
	char runtime_dir[4096];
	unsigned spawning;		/* session.spawn between count and create */
};

/* calls.c — several storaged calls in flight, one continuation when all are back. */
struct held {
	char *bytes;
	size_t len;
	msgpack_unpacked up;	/* up.data: a copy that outlives the callback */
};

struct calls;
typedef void (*calls_done_fn)(struct calls *, void *arg);

struct calls *calls_new(struct client *, int max, calls_done_fn, void *arg);
/* Queues a call; params is one packed map or NULL.  Returns its index. */
int calls_add(struct calls *, const char *method, const void *params, size_t plen,
    int64_t timeout_ms);
/* Arms the continuation; it runs from the loop once every call is back. */
void calls_go(struct calls *);
/* The result of call i, or NULL with *err set. */
const msgpack_object *calls_result(struct calls *, int i, const struct rpc_error **err);
/* Moves call i's result into h (which the caller frees with held_free). */
void calls_take(struct calls *, int i, struct held *h);
void calls_free(struct calls *);
void held_set(struct held *, const msgpack_object *);
void held_free(struct held *);

/* facts.c — storaged's maps into the core's structs. */
int facts_session(const msgpack_object *, struct lsession *);
int facts_pr(const msgpack_object *, struct lpr *);
int facts_check(const msgpack_object *, struct lcheck *);
int facts_comment(const msgpack_object *, struct lcomment *);
void facts_check_free(struct lcheck *);
void facts_comment_free(struct lcomment *);
int facts_tracker(const msgpack_object *, struct ltracker *);
/* Fields a launch sets beside the lifecycle's own (NULL: unchanged). */
struct lextra {
	const char *branch, *workspace_path, *runtime_handle;
};

/* Packs the session.apply params for the effects of one step. */
void facts_pack_apply(msgpack_packer *, const struct lsession *prev,
    const struct leffects *, const struct lextra *);

/* notify.c — notifiers: child processes with a deadline, routed by priority. */
struct notify *notify_new(struct lcmd_ctx *);
void notify_free(struct notify *);
/* Delivers one stored notification (a storaged notification map). */
void notify_deliver(struct notify *, const msgpack_object *notification);
/* In flight + queued deliveries. */
unsigned notify_pending(const struct notify *);

/* messenger.c — text to an agent. */
typedef void (*messenger_cb)(void *arg, const char *error);
struct messenger *messenger_new(struct lcmd_ctx *);
void messenger_free(struct messenger *);
/*
 * Sends text to the session's agent; cb gets NULL on delivery or the
 * reason it failed.  Every attempt is appended to message_log when set.
 */
void messenger_send(struct messenger *, const struct lsession *, const char *text,
    messenger_cb cb, void *arg);

/* engine.c — inputs applied per session, in order; sessions independent. */
struct job;
enum job_check {
	JOB_ANY,		/* any state */
	JOB_LIVE,		/* not terminated, else invalid_state */
	JOB_RESTORABLE,		/* terminated or done, else invalid_state */
};
/*
 * Applies input to session id and answers req (may be NULL) with the
 * session map plus status and pr.  When prelude_method is set, that storaged
 * write (params prelude, one packed map) runs first in the session's turn.
 */
void engine_submit(struct lcmd_ctx *, const char *id, const struct linput *input,
    enum job_check, struct peer_req *req, const char *prelude_method,
    const void *prelude, size_t prelude_len);
/*
 * Starts the agent of a not_started session (after session.create, or after
 * restore's reducer step): worktree, runtime, spawn completed.
 */
void engine_launch(struct lcmd_ctx *, const char *id, bool restore, struct peer_req *);
/* session.send through the session's queue. */
void engine_send(struct lcmd_ctx *, const char *id, const char *text,
    struct peer_req *req);
/* session.get and session.list with derived status (no queue: reads). */
void engine_get(struct lcmd_ctx *, const char *id, struct peer_req *req);
void engine_list(struct lcmd_ctx *, const msgpack_object *params, struct peer_req *req);
unsigned engine_busy(void);
unsigned engine_queued(void);

/* api.c — the lcmd.sock method table. */
extern const struct server_method api_methods[];

/*
 * workspace.c — git worktrees, one per session under
 * <data dir>/worktrees/<project>/<session>.  Every git call is an
 * asynchronous child with a deadline.
 */
typedef void (*workspace_cb)(void *arg, const char *error, const char *detail);

struct workspace_req {
	const char *repo;		/* the project's path */
	const char *path;		/* the worktree */
	const char *branch;
	const char *base;		/* NULL: the repository's HEAD */
	bool reuse_branch;		/* restore: check out branch if it exists */
};

/*
 * Creates the worktree on a new branch, or reuses one already at path.
 * detail: "created" (worktree and branch), "checked-out" (worktree on an
 * existing branch, reuse_branch only) or "reused".
 */
void workspace_create(struct lcmd_ctx *, const struct workspace_req *,
    workspace_cb, void *arg);
/*
 * Removes the worktree unless it holds uncommitted work: then it is kept
 * and cb gets error NULL with detail saying why.  Never --force.  When
 * branch is set, that branch is deleted too (a launch undoing itself).
 */
void workspace_remove(struct lcmd_ctx *, const struct workspace_req *,
    workspace_cb, void *arg);
/* Checks that path is a git work tree; detail gets `origin` when it has one. */
void workspace_probe_repo(struct lcmd_ctx *, const char *path, workspace_cb, void *arg);

/*
 * runtime.c — where an agent runs: a detached tmux session ("tmux") or a
 * setsid'd process fed through a FIFO ("process").  Neither is a child
 * that dies with lcmd.  The handle is a JSON object stored with the session.
 */
struct runtime_spec {
	const char *session_id, *project_id, *issue_id;
	const char *kind;		/* "tmux" | "process" */
	const char *cwd;
	const char *const *argv;
};

typedef void (*runtime_cb)(void *arg, const char *error, const char *handle);

void runtime_start(struct lcmd_ctx *, const struct runtime_spec *, runtime_cb, void *arg);
/* Delivers text (then Enter / a newline); cb gets NULL or why it failed. */
void runtime_send(struct lcmd_ctx *, const char *kind, const char *handle,
    const char *text, runtime_cb, void *arg);
/* Stops the agent (tmux: kill the session; process: TERM, then KILL). */
void runtime_stop(struct lcmd_ctx *, const char *kind, const char *handle,
    runtime_cb, void *arg);
/* Ends stops still in their grace period now (lcmd is exiting). */
void runtime_shutdown(void);
/* The tmux session name for a session id (sanitized, "ao-" prefixed). */
void runtime_tmux_name(const char *session_id, char *buf, size_t len);
