/*
 * Logging: one vocabulary for every ao process, to stderr, prefixed with the
 * component name ("ao-lcmd: ...").  journald adds the timestamp; when stderr
 * is the journal (JOURNAL_STREAM set) each line also carries its priority as
 * an sd-daemon "<N>" prefix.
 */
#ifndef AO_LOG_H
#define AO_LOG_H

#include <stdarg.h>
#include <stdint.h>

/* Exit codes with meaning (s6): 100 permanent — do not restart; 111 temporary. */
#define EXIT_PERM 100
#define EXIT_TEMP 111

#define AO_PRINTF(a, b) __attribute__((format(printf, a, b)))
#define AO_DEAD __attribute__((noreturn))

void log_init(const char *component, int verbose);
void log_setverbose(int);
int log_getverbose(void);
const char *log_component(void);

/* log_warn appends ": strerror(errno)"; log_warnx does not. */
void log_warn(const char *, ...) AO_PRINTF(1, 2);
void log_warnx(const char *, ...) AO_PRINTF(1, 2);
void log_info(const char *, ...) AO_PRINTF(1, 2);
void log_debug(const char *, ...) AO_PRINTF(1, 2);

/*
 * For a warning that can come in floods: at most one line per every_ms for
 * one limiter, the next line saying how many were held back.  now_ms is
 * the caller's monotonic clock.  Not thread-safe: one limiter, one thread
 * (or the caller's lock).
 */
struct log_limit {
	int64_t at_ms;		/* the last line, 0: none yet */
	uint64_t held;		/* held back since */
};
void log_warnx_limited(struct log_limit *, int64_t every_ms, int64_t now_ms,
    const char *, ...) AO_PRINTF(4, 5);

/* Log and exit EXIT_TEMP (the supervisor restarts the process). */
AO_DEAD void fatal(const char *, ...) AO_PRINTF(1, 2);
AO_DEAD void fatalx(const char *, ...) AO_PRINTF(1, 2);
/* Log and exit EXIT_PERM: bad configuration, live instance, unusable paths. */
AO_DEAD void fatalx_perm(const char *, ...) AO_PRINTF(1, 2);

#endif
