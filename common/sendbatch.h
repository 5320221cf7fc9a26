/*
 * Many socket sends for one system call.  A fan-out of one event to 100
 * subscribers, or a group commit's answers, is a send per socket; with
 * io_uring they all go in one io_uring_enter.  Where io_uring is missing or
 * forbidden (old kernels, seccomp profiles that block it), each is one
 * sendmsg, which is what the callers did before.
 */
#ifndef AO_SENDBATCH_H
#define AO_SENDBATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <sys/uio.h>

struct sendbatch_msg {
	int fd;				/* a nonblocking stream socket */
	const struct iovec *iov;	/* valid until sendbatch returns */
	int iovcnt;
	ssize_t res;			/* out: bytes sent, or -errno */
};

/*
 * Sends each message once, without blocking and without SIGPIPE, as
 * sendmsg(MSG_DONTWAIT | MSG_NOSIGNAL) would: res may be short, or
 * -EAGAIN when the socket is full.  Messages to one fd must not repeat in
 * one call (their order would not be kept).
 */
void sendbatch(struct sendbatch_msg *, size_t n);

/*
 * What sendbatch uses, for logs: "io_uring", or "sendmsg (…why…)".  Sets
 * io_uring up on first use.
 */
const char *sendbatch_backend(void);

/* Tests: force sendmsg (true), or go back to io_uring where it works. */
void sendbatch_force_sendmsg(bool);

#endif
