/* Bounded MPSC mailbox; see mailbox.h for the scheduling rule. */
#include "src/rt/mailbox.h"

#include <assert.h>
#include <errno.h>

void mailbox_init(rd_mailbox *mb, int32_t bound)
{
    assert(bound >= 0);
    mpsc_init(&mb->q);
    mb->bound = bound;
}

int mailbox_push(rd_mailbox *mb, rd_msg *m)
{
    if (mb->bound > 0 && !(m->flags & RD_MSG_SYSTEM) &&
        atomic_load_explicit(&mb->q.count, memory_order_relaxed) >= mb->bound)
        return -EAGAIN;
    /* Count before linking: the consumer may then see depth > 0 with nothing to pop yet, and
     * runs again; it can never see an empty count with a message in the queue. */
    int32_t before = atomic_fetch_add_explicit(&mb->q.count, 1, memory_order_acq_rel);
    mpsc_push(&mb->q, &m->node);
    return before == 0;
}

int32_t mailbox_done(rd_mailbox *mb, int32_t n)
{
    assert(n >= 0);
    if (n == 0)
        return atomic_load_explicit(&mb->q.count, memory_order_acquire);
    return atomic_fetch_sub_explicit(&mb->q.count, n, memory_order_acq_rel) - n;
}

int mailbox_push_chain(rd_mailbox *mb, rd_msg *first, rd_msg *last, int32_t n)
{
    assert(n > 0);
    int32_t before = atomic_fetch_add_explicit(&mb->q.count, n, memory_order_acq_rel);
    mpsc_push_chain(&mb->q, &first->node, &last->node);
    return before == 0;
}
