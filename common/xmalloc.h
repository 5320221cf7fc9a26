/* Allocation wrappers that never return NULL: out of memory is fatal. */
#ifndef AO_XMALLOC_H
#define AO_XMALLOC_H

#include <stddef.h>

#include "common/log.h"

void *xmalloc(size_t);
void *xcalloc(size_t, size_t);
void *xreallocarray(void *, size_t, size_t);
char *xstrdup(const char *);
char *xstrndup(const char *, size_t);
char *xasprintf(const char *, ...) AO_PRINTF(1, 2);

#endif
