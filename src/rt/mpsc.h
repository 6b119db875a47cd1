/* Intrusive lock-free multi-producer single-consumer queue (Dmitry Vyukov's design).
 *
 * Producers never wait and never fail: push is one atomic exchange and one store. The single
 * consumer pops in FIFO order per producer. Between a producer's exchange and its store the
 * queue is briefly "inconsistent": pop then returns NULL although a node is coming; callers
 * that know a node is due (the mailbox counts them) simply try again later.
 *
 * Nodes are embedded in the caller's structs (messages, actors); the queue never allocates.
 * Header-only because push and pop sit on every message's path. */
#ifndef REELD_RT_MPSC_H
#define REELD_RT_MPSC_H

#include <stdatomic.h>
#include <stddef.h>

typedef struct rd_mpsc_node rd_mpsc_node;
struct rd_mpsc_node {
    _Atomic(rd_mpsc_node *) next;
};

typedef struct rd_mpsc {
    _Alignas(64) _Atomic(rd_mpsc_node *) head; /* producers swap themselves in here */
    _Atomic int32_t count; /* not used by the queue: owners that count pushes (the mailbox)
                              keep the count here, on the line a push owns anyway */
    _Alignas(64) rd_mpsc_node *tail; /* consumer's end; touched by it alone */
    rd_mpsc_node stub;               /* keeps the list non-empty */
} rd_mpsc;

static inline void mpsc_init(rd_mpsc *q)
{
    atomic_store_explicit(&q->stub.next, NULL, memory_order_relaxed);
    atomic_store_explicit(&q->head, &q->stub, memory_order_relaxed);
    atomic_store_explicit(&q->count, 0, memory_order_relaxed);
    q->tail = &q->stub;
}

/* Any thread. After the call the node belongs to the queue until popped. */
static inline void mpsc_push(rd_mpsc *q, rd_mpsc_node *n)
{
    atomic_store_explicit(&n->next, NULL, memory_order_relaxed);
    rd_mpsc_node *prev = atomic_exchange_explicit(&q->head, n, memory_order_acq_rel);
    atomic_store_explicit(&prev->next, n, memory_order_release);
}

/* Any thread: pushes a chain first..last that the caller linked through `next` (last->next is
 * set here). One exchange for the whole chain, and the consumer can only see it whole: this is
 * what keeps a streaming consumer from fighting the producer over each node's cache line. */
static inline void mpsc_push_chain(rd_mpsc *q, rd_mpsc_node *first, rd_mpsc_node *last)
{
    atomic_store_explicit(&last->next, NULL, memory_order_relaxed);
    rd_mpsc_node *prev = atomic_exchange_explicit(&q->head, last, memory_order_acq_rel);
    atomic_store_explicit(&prev->next, first, memory_order_release);
}

/* Consumer thread only. Returns the oldest node, or NULL when empty or a push is mid-way. */
static inline rd_mpsc_node *mpsc_pop(rd_mpsc *q)
{
    rd_mpsc_node *tail = q->tail;
    rd_mpsc_node *next = atomic_load_explicit(&tail->next, memory_order_acquire);
    if (tail == &q->stub) {
        if (next == NULL)
            return NULL;
        q->tail = next;
        tail = next;
        next = atomic_load_explicit(&next->next, memory_order_acquire);
    }
    if (next != NULL) {
        q->tail = next;
        return tail;
    }
    if (tail != atomic_load_explicit(&q->head, memory_order_acquire))
        return NULL; /* a producer has swapped head but not linked yet */
    mpsc_push(q, &q->stub);
    next = atomic_load_explicit(&tail->next, memory_order_acquire);
    if (next != NULL) {
        q->tail = next;
        return tail;
    }
    return NULL;
}

/* Consumer thread only: true when nothing is queued and no push is in flight. */
static inline int mpsc_empty(rd_mpsc *q)
{
    rd_mpsc_node *tail = q->tail;
    return tail == &q->stub && atomic_load_explicit(&tail->next, memory_order_acquire) == NULL &&
           atomic_load_explicit(&q->head, memory_order_acquire) == tail;
}

#endif
