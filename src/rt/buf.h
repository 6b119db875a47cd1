/* Reference-counted byte buffers: how big payloads travel in messages without being copied.
 *
 * owns:  its bytes (allocated with the header in one block).
 * rule:  whoever holds a reference may read; only the creator writes, and only before the
 *        first buf_ref (a buffer is frozen once shared). The last buf_unref frees it.
 *
 * Any thread may take or drop a reference. */
#ifndef REELD_RT_BUF_H
#define REELD_RT_BUF_H

#include <stdatomic.h>
#include <stddef.h>

typedef struct rd_buf {
    _Atomic unsigned refs; /* references held; the buffer is freed when it drops to 0 */
    size_t len;            /* bytes written */
    size_t cap;            /* bytes available in data */
    _Alignas(16) char data[];
} rd_buf;

/* A new buffer with room for `cap` bytes, len 0 and one reference (the caller's). Aborts with
 * one line on out-of-memory (runtime rule). */
rd_buf *buf_new(size_t cap);

/* Makes `mem` (at least sizeof(rd_buf) + cap bytes, 16-byte aligned, owned by the caller)
 * a buffer with room for `cap` bytes, len 0 and one reference: for one that lives inside
 * another allocation and is released with it, never through buf_unref. */
rd_buf *buf_init(void *mem, size_t cap);

/* Takes one more reference; returns `b`. */
rd_buf *buf_ref(rd_buf *b);

/* Drops one reference; the last one frees the buffer. NULL is a no-op. */
void buf_unref(rd_buf *b);

#endif
