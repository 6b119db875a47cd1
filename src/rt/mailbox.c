/* Bounded MPSC mailbox; see mailbox.h for the scheduling rule. */
#include "src/rt/mailbox.h"

#include <assert.h>
#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

void mailbox_init(rd_mailbox *mb, int32_t bound)
{
    assert(bound >= 0);
    mpsc_init(&mb->q);
    mb->bound = bound;
    atomic_init(&mb->waiters, 0);
    atomic_init(&mb->room, 0);
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
    /* seq_cst with the waiter's: either it sees this depth, or this sees it waiting. */
    int32_t left = atomic_fetch_sub_explicit(&mb->q.count, n, memory_order_seq_cst) - n;
    if (mb->bound > 0 && left < mb->bound &&
        atomic_load_explicit(&mb->waiters, memory_order_seq_cst) > 0) {
        atomic_fetch_add_explicit(&mb->room, 1, memory_order_seq_cst);
        syscall(SYS_futex, &mb->room, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
    }
    return left;
}

int mailbox_wait_room(rd_mailbox *mb, int timeout_ms)
{
    struct timespec deadline;
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    if (timeout_ms >= 0) {
        deadline.tv_sec += timeout_ms / 1000;
        deadline.tv_nsec += (long)(timeout_ms % 1000) * 1000000;
        if (deadline.tv_nsec >= 1000000000) {
            deadline.tv_sec++;
            deadline.tv_nsec -= 1000000000;
        }
    }
    for (;;) {
        uint32_t seq = atomic_load_explicit(&mb->room, memory_order_seq_cst);
        atomic_fetch_add_explicit(&mb->waiters, 1, memory_order_seq_cst);
        int full =
            mb->bound > 0 && atomic_load_explicit(&mb->q.count, memory_order_seq_cst) >= mb->bound;
        struct timespec left = {0, 0}, *tp = NULL;
        if (full && timeout_ms >= 0) {
            struct timespec now;
            clock_gettime(CLOCK_MONOTONIC, &now);
            left.tv_sec = deadline.tv_sec - now.tv_sec;
            left.tv_nsec = deadline.tv_nsec - now.tv_nsec;
            if (left.tv_nsec < 0) {
                left.tv_sec--;
                left.tv_nsec += 1000000000;
            }
            tp = &left;
            if (left.tv_sec < 0) {
                atomic_fetch_sub_explicit(&mb->waiters, 1, memory_order_seq_cst);
                return -ETIMEDOUT;
            }
        }
        if (full)
            syscall(SYS_futex, &mb->room, FUTEX_WAIT_PRIVATE, seq, tp, NULL, 0);
        atomic_fetch_sub_explicit(&mb->waiters, 1, memory_order_seq_cst);
        if (!full)
            return 0;
        /* Woken, timed out or interrupted: look at the depth again. */
        if (atomic_load_explicit(&mb->q.count, memory_order_seq_cst) < mb->bound)
            return 0;
    }
}

int mailbox_push_chain(rd_mailbox *mb, rd_msg *first, rd_msg *last, int32_t n)
{
    assert(n > 0);
    int32_t before = atomic_fetch_add_explicit(&mb->q.count, n, memory_order_acq_rel);
    mpsc_push_chain(&mb->q, &first->node, &last->node);
    return before == 0;
}
