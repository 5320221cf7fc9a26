/*
 * Logging: one vocabulary for every ao process, to stderr, prefixed with the
 * component name ("ao-lcmd: ...").  journald adds the timestamp; when stderr
 * is the journal (JOURNAL_STREAM set) each line also carries its priority as
 * an sd-daemon "<N>" prefix.
 */
#ifndef AO_LOG_H
#define AO_LOG_H

#include <stdarg.h>

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

/* Log and exit EXIT_TEMP (the supervisor restarts the process). */
AO_DEAD void fatal(const char *, ...) AO_PRINTF(1, 2);
AO_DEAD void fatalx(const char *, ...) AO_PRINTF(1, 2);
/* Log and exit EXIT_PERM: bad configuration, live instance, unusable paths. */
AO_DEAD void fatalx_perm(const char *, ...) AO_PRINTF(1, 2);

#endif
