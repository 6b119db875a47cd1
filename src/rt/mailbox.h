/* An actor's mailbox: a bounded lock-free MPSC queue of messages that also decides, without a
 * lock, who schedules the actor.
 *
 * owns:  the messages queued in it (until popped).
 * rule:  the depth (q.count) counts messages pushed and not yet finished. The push that raises it
 * from 0 learns that the actor is idle and must schedule it; the consumer, after a batch, subtracts
 * what it finished and stays scheduled while anything remains. So an actor is scheduled exactly
 * once per burst, whatever the number of senders. bound: a push that finds the depth at or above
 * the bound is refused with -EAGAIN and the message stays the sender's (back-pressure). The check
 * is a plain load, so concurrent senders may overshoot by at most their own number. System messages
 * ignore the bound. */
#ifndef REELD_RT_MAILBOX_H
#define REELD_RT_MAILBOX_H

#include <stdatomic.h>
#include <stdint.h>

#include "src/rt/msg.h"
#include "src/rt/mpsc.h"

typedef struct rd_mailbox {
    rd_mpsc q;               /* q.count is the depth: pushed and not yet finished */
    int32_t bound;           /* refuse pushes at this depth; 0 = unbounded */
    _Atomic int32_t waiters; /* senders blocked in mailbox_wait_room */
    _Atomic uint32_t room;   /* bumped (and futex-woken) when the depth falls below the bound
                              * while someone waits */
} rd_mailbox;

void mailbox_init(rd_mailbox *mb, int32_t bound);

/* Any thread. Returns 1 when the mailbox was idle (the caller must schedule its consumer), 0
 * when it was not, -EAGAIN when full (the message is still the caller's). On success the
 * message belongs to the mailbox. */
int mailbox_push(rd_mailbox *mb, rd_msg *m);

/* Any thread: pushes `n` messages linked first..last through node.next, in that order, as
 * mailbox_push would one by one but with one exchange and one count update. Never refused:
 * the caller checked the bound when it collected them. Returns 1 when the mailbox was idle. */
int mailbox_push_chain(rd_mailbox *mb, rd_msg *first, rd_msg *last, int32_t n);

/* Consumer only. The oldest message, or NULL if none can be taken right now (a push may be
 * half-way: mailbox_done() then reports messages remaining). The message becomes the
 * consumer's. */
static inline rd_msg *mailbox_pop(rd_mailbox *mb)
{
    return (rd_msg *)(void *)mpsc_pop(&mb->q);
}

/* Consumer only: `n` popped messages are finished. Returns how many remain (> 0: stay
 * scheduled and run again; 0: idle, the next push schedules). Wakes the senders waiting for
 * room once the depth is below the bound. */
int32_t mailbox_done(rd_mailbox *mb, int32_t n);

/* A sender that may block (a thread, never a loop): waits until the depth is below the bound,
 * at most `timeout_ms` (-1: no limit). 0 when there is room (a push may still lose the race
 * to another sender: push again), -ETIMEDOUT. Back-pressure without polling: the consumer's
 * mailbox_done wakes it. */
int mailbox_wait_room(rd_mailbox *mb, int timeout_ms);

/* Approximate number of queued messages (for metrics). */
static inline int32_t mailbox_depth(rd_mailbox *mb)
{
    return atomic_load_explicit(&mb->q.count, memory_order_relaxed);
}

#endif
