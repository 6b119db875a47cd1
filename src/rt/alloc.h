/* Runtime allocation: out of memory aborts with one clear line (the runtime's rule; proto/
 * returns -ENOMEM instead). Cache-line-aligned variants for structs holding atomics that
 * producers on other cores touch. */
#ifndef REELD_RT_ALLOC_H
#define REELD_RT_ALLOC_H

#include <stddef.h>

/* Zeroed memory; never NULL. `what` names the allocation in the abort message. */
void *rd_calloc(size_t n, size_t size, const char *what);
/* Zeroed memory aligned to 64 bytes; never NULL. Free with free(). */
void *rd_calloc_aligned(size_t size, const char *what);

#endif
