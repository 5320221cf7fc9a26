/* Time in integer milliseconds (wall: since the Unix epoch, UTC). */
#ifndef AO_AOTIME_H
#define AO_AOTIME_H

#include <stdint.h>

int64_t aotime_mono_ms(void);
int64_t aotime_mono_us(void);
int64_t aotime_wall_ms(void);
/* Fills a struct timeval for libevent timers. */
struct timeval;
void aotime_tv(struct timeval *, int64_t ms);

#endif
