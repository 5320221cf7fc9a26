/*
 * A blocking client for the CLI and tests: one connection, one call at a
 * time, every wait bounded by a timeout.  Notifications that arrive while
 * waiting for a response are queued for bclient_next().
 */
#ifndef AO_BCLIENT_H
#define AO_BCLIENT_H

#include <stddef.h>
#include <stdint.h>

#include <msgpack.h>

#include "proto/rpc.h"

struct bclient;

/* A received message; owns its memory until bclient_msg_free(). */
struct bclient_msg {
	msgpack_unpacked up;
	struct rpc_msg m;
	char *raw;		/* the message bytes: msgpack-c's strings point here */
};

struct bclient *bclient_connect(const char *path, char *err, size_t errlen);
void bclient_free(struct bclient *);
int bclient_fd(const struct bclient *);

/*
 * Calls method with params (one packed map, or NULL/0) and waits up to
 * timeout_ms for the response.  On success returns 0 and fills *out (its
 * m.result is the result).  On failure returns -1 with err: the remote error,
 * or `unavailable` for a timeout or a lost connection, or `bad_request` for a
 * malformed response.
 */
int bclient_call(struct bclient *, const char *method, const void *params, size_t plen,
    int64_t timeout_ms, struct bclient_msg *out, struct rpc_error *err);

/* Sends raw bytes (tests use this for hostile input). */
int bclient_send_raw(struct bclient *, const void *, size_t);

/*
 * Waits up to timeout_ms (-1: forever) for the next notification.  Returns
 * 1 with *out filled, 0 on timeout, -1 on a lost connection or bad input
 * (err says which).
 */
int bclient_next(struct bclient *, int64_t timeout_ms, struct bclient_msg *out,
    struct rpc_error *err);

void bclient_msg_free(struct bclient_msg *);

#endif
