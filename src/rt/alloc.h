/* Runtime allocation: out of memory aborts with one clear line (the runtime's rule; proto/
 * returns -ENOMEM instead). Cache-line-aligned variants for structs holding atomics that
 * producers on other cores touch. */
#ifndef REELD_RT_ALLOC_H
#define REELD_RT_ALLOC_H

#include <stddef.h>

/* malloc, calloc and realloc that never return NULL: out of memory prints one line naming
 * `what` and the size, and aborts. The one place that pattern is written. */
void *rd_malloc(size_t size, const char *what);
void *rd_calloc(size_t n, size_t size, const char *what);
void *rd_realloc(void *p, size_t size, const char *what);
/* Zeroed memory aligned to 64 bytes; never NULL. Free with free(). */
void *rd_calloc_aligned(size_t size, const char *what);
/* Memory aligned to `align` (a power of two: 64 for a cache line, 4096 for a page the kernel
 * maps), `size` rounded up to it, not zeroed; never NULL. Free with free(). */
void *rd_aligned(size_t align, size_t size, const char *what);
/* A copy of `s`; never NULL. */
char *rd_strdup(const char *s, const char *what);

#endif
