/* Reference-counted byte buffers; see buf.h. */
#include "src/rt/alloc.h"
#include "src/rt/buf.h"

#include <stdio.h>
#include <stdlib.h>

rd_buf *buf_init(void *mem, size_t cap)
{
    rd_buf *b = mem;
    atomic_init(&b->refs, 1);
    b->len = 0;
    b->cap = cap;
    return b;
}

rd_buf *buf_new(size_t cap)
{
    return buf_init(rd_malloc(sizeof(rd_buf) + cap, "allocating a buffer"), cap);
}

rd_buf *buf_ref(rd_buf *b)
{
    atomic_fetch_add_explicit(&b->refs, 1, memory_order_relaxed);
    return b;
}

void buf_unref(rd_buf *b)
{
    if (b == NULL)
        return;
    if (atomic_fetch_sub_explicit(&b->refs, 1, memory_order_acq_rel) == 1)
        free(b);
}
