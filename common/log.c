#include "common/log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *log_name = "ao";
static int log_verbose;
static int log_journal = -1;

void
log_init(const char *component, int verbose)
{
	log_name = component;
	log_verbose = verbose;
	log_journal = getenv("JOURNAL_STREAM") != NULL;
}

void
log_setverbose(int v)
{
	log_verbose = v;
}

int
log_getverbose(void)
{
	return log_verbose;
}

const char *
log_component(void)
{
	return log_name;
}

/* prio is the syslog priority: 3 err, 4 warning, 6 info, 7 debug. */
static void
vlog(int prio, const char *fmt, va_list ap, const char *errstr)
{
	char msg[2048];

	vsnprintf(msg, sizeof(msg), fmt, ap);
	if (log_journal < 0)
		log_journal = getenv("JOURNAL_STREAM") != NULL;
	if (log_journal)
		fprintf(stderr, "<%d>", prio);
	if (errstr != NULL)
		fprintf(stderr, "%s: %s: %s\n", log_name, msg, errstr);
	else
		fprintf(stderr, "%s: %s\n", log_name, msg);
	fflush(stderr);
}

void
log_warn(const char *fmt, ...)
{
	va_list ap;
	const char *e = strerror(errno);

	va_start(ap, fmt);
	vlog(4, fmt, ap, e);
	va_end(ap);
}

void
log_warnx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(4, fmt, ap, NULL);
	va_end(ap);
}

void
log_warnx_limited(struct log_limit *l, int64_t every_ms, int64_t now_ms,
    const char *fmt, ...)
{
	char msg[2048];
	va_list ap;

	if (l->at_ms != 0 && now_ms - l->at_ms < every_ms) {
		l->held++;
		return;
	}
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (l->held > 0)
		log_warnx("%s (and %llu more like it since the last)", msg,
		    (unsigned long long)l->held);
	else
		log_warnx("%s", msg);
	l->at_ms = now_ms;
	l->held = 0;
}

void
log_info(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(6, fmt, ap, NULL);
	va_end(ap);
}

void
log_debug(const char *fmt, ...)
{
	va_list ap;

	if (!log_verbose)
		return;
	va_start(ap, fmt);
	vlog(7, fmt, ap, NULL);
	va_end(ap);
}

void
fatal(const char *fmt, ...)
{
	va_list ap;
	const char *e = strerror(errno);

	va_start(ap, fmt);
	vlog(3, fmt, ap, e);
	va_end(ap);
	exit(EXIT_TEMP);
}

void
fatalx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(3, fmt, ap, NULL);
	va_end(ap);
	exit(EXIT_TEMP);
}

void
fatalx_perm(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(3, fmt, ap, NULL);
	va_end(ap);
	exit(EXIT_PERM);
}
