/* The per-core event loop. See loop.h for what it owns and promises.
 *
 * One turn: run up to LOOP_ACTOR_RUNS ready actors (each a bounded batch; those with mail sent
 * within this loop come from a list no other thread touches, taking turns with the shared
 * ready queue), fire due timers,
 * then enter the kernel once to submit what the turn queued and to wait for completions (not
 * waiting at all when actors are still ready). A sender on another thread that finds the loop
 * asleep wakes it; the `sleeping` flag makes that happen at most once per burst. */
#include "src/rt/loop.h"

#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "src/rt/actor.h"
#include "src/rt/alloc.h"
#include "src/rt/log.h"

#define LOOP_RING_ENTRIES 1024
#define LOOP_CQ_ENTRIES   16384
#define LOOP_ACTOR_RUNS   64 /* actor batches per turn before I/O gets its turn */
#define LOOP_CQE_BATCH    64
#define OUTBOX_SLOTS      32 /* destinations buffered at once */
#define OUTBOX_CHAIN      16 /* messages per destination before a flush (as Seastar batches) */

typedef struct outbox_slot {
    rd_actor *to;
    rd_msg *first, *last;
    int32_t n;
} outbox_slot;

/* CQE user data that is not an rd_op (rd_op pointers are at least 8-byte aligned). */
#define UD_IGNORE    0ULL
#define UD_WAKE      1ULL /* a wake that arrived by MSG_RING */
#define UD_WAKE_FAIL 2ULL /* low bits of a failed MSG_RING's CQE; the rest is the target loop */

struct rd_loop {
    struct io_uring ring;
    int ring_ready;
    int index;
    int cpu;
    int use_msg_ring;
    int force_eventfd;
    pthread_t thread;
    int thread_started;
    pthread_mutex_t start_mu; /* start handshake only */
    pthread_cond_t start_cv;
    int start_result;
    int start_done;

    rd_mpsc ready;                            /* actors to run; any thread pushes */
    struct rd_actor *local_head, *local_tail; /* actors with local mail; this thread only */
    _Atomic int sleeping;                     /* 1 while waiting in io_uring_enter */
    int event_fd;                             /* wake path for threads that are not loops */
    uint64_t event_buf;
    rd_op event_op;

    rd_timer **heap; /* min-heap on deadline_ns */
    uint32_t heap_len, heap_cap;

    uint32_t inflight; /* operations submitted through loop_sqe, not yet finished */
    uint32_t held;     /* loop_hold's less loop_release's: requests awaiting an answer */
    uint64_t turn_ns;  /* rd_turn_ns: the clock at the wait's end, where the turn starts */
    _Atomic int ended; /* loop_run has left its turns: nothing here handles mail any more */
    _Atomic int stop_requested;
    _Atomic uint64_t stop_deadline_ns;
    int stopping; /* stop hooks have run */
    rd_stop_hook *stop_hooks;
    rd_turn_hook *turn_hooks; /* to run before the loop next enters the kernel */

    outbox_slot outbox[OUTBOX_SLOTS]; /* messages for actors of other loops, by destination */
    int noutbox;

    _Atomic uint64_t busy_ns, iterations, wakes_sent, actor_runs, sqes;
};

_Thread_local rd_loop *rd_loop_here;
_Thread_local int rd_loop_here_index = -1;

static void set_current(rd_loop *loop)
{
    rd_loop_here = loop;
    rd_loop_here_index = loop != NULL ? loop->index : -1;
}

uint64_t rd_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

uint64_t rd_turn_ns(void)
{
    return rd_loop_here != NULL ? rd_loop_here->turn_ns : rd_now_ns();
}

int64_t rd_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int loop_index(const rd_loop *loop)
{
    return loop->index;
}

struct io_uring *loop_ring(rd_loop *loop)
{
    return &loop->ring;
}

int loop_uses_msg_ring(const rd_loop *loop)
{
    return loop->use_msg_ring;
}

void loop_force_eventfd(rd_loop *loop)
{
    loop->force_eventfd = 1;
}

int loop_ended(const rd_loop *loop)
{
    return atomic_load_explicit(&loop->ended, memory_order_acquire);
}

int loop_stopping(const rd_loop *loop)
{
    return atomic_load_explicit(&loop->stop_requested, memory_order_acquire);
}

void loop_hold(rd_loop *loop)
{
    loop->held++;
}

void loop_release(rd_loop *loop)
{
    assert(loop->held > 0);
    loop->held--;
}

static void add_counter(_Atomic uint64_t *c, uint64_t n)
{
    /* Only the loop thread writes; a relaxed load+store avoids a locked instruction. */
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + n,
                          memory_order_relaxed);
}

void loop_stats(const rd_loop *loop, rd_loop_stats *out)
{
    out->busy_ns = atomic_load_explicit(&loop->busy_ns, memory_order_relaxed);
    out->iterations = atomic_load_explicit(&loop->iterations, memory_order_relaxed);
    out->wakes_sent = atomic_load_explicit(&loop->wakes_sent, memory_order_relaxed);
    out->actor_runs = atomic_load_explicit(&loop->actor_runs, memory_order_relaxed);
    out->sqes = atomic_load_explicit(&loop->sqes, memory_order_relaxed);
}

int loop_create(rd_loop **out, int index, int cpu)
{
    rd_loop *loop = rd_calloc_aligned(sizeof(*loop), "a loop");
    loop->index = index;
    loop->cpu = cpu;
    loop->event_fd = eventfd(0, EFD_CLOEXEC);
    if (loop->event_fd < 0) {
        int err = -errno;
        free(loop);
        return err;
    }
    mpsc_init(&loop->ready);
    pthread_mutex_init(&loop->start_mu, NULL);
    pthread_cond_init(&loop->start_cv, NULL);
    *out = loop;
    return 0;
}

void loop_destroy(rd_loop *loop)
{
    if (loop == NULL)
        return;
    if (loop->ring_ready)
        io_uring_queue_exit(&loop->ring);
    close(loop->event_fd);
    free(loop->heap);
    pthread_mutex_destroy(&loop->start_mu);
    pthread_cond_destroy(&loop->start_cv);
    free(loop);
}

struct io_uring_sqe *loop_sqe(rd_loop *loop, rd_op *op)
{
    assert(rd_loop_here == loop);
    struct io_uring_sqe *sqe = io_uring_get_sqe(&loop->ring);
    if (sqe == NULL) {
        io_uring_submit(&loop->ring);
        sqe = io_uring_get_sqe(&loop->ring);
        if (sqe == NULL) {
            log_error("loop_sqe_exhausted", KV_INT("loop", loop->index));
            abort();
        }
    }
    io_uring_sqe_set_data(sqe, op);
    if (op != NULL)
        loop->inflight++;
    add_counter(&loop->sqes, 1);
    return sqe;
}

void loop_at_turn_end(rd_loop *loop, rd_turn_hook *hook)
{
    assert(rd_loop_here == loop);
    if (hook->queued)
        return;
    hook->queued = 1;
    hook->next = loop->turn_hooks;
    loop->turn_hooks = hook;
}

/* Runs the hooks queued this turn; one queued while they run (a hook's work queued more) runs
 * in the same pass. What they post leaves with the turn's last flush. */
static void run_turn_hooks(rd_loop *loop)
{
    while (loop->turn_hooks != NULL) {
        rd_turn_hook *h = loop->turn_hooks;
        loop->turn_hooks = h->next;
        h->queued = 0;
        h->fn(h);
    }
}

/* ---- timers: a binary min-heap of armed timers, slot = index + 1 ---- */

static void heap_swap(rd_loop *loop, uint32_t i, uint32_t j)
{
    rd_timer *t = loop->heap[i];
    loop->heap[i] = loop->heap[j];
    loop->heap[j] = t;
    loop->heap[i]->slot = i + 1;
    loop->heap[j]->slot = j + 1;
}

static void heap_up(rd_loop *loop, uint32_t i)
{
    while (i > 0) {
        uint32_t p = (i - 1) / 2;
        if (loop->heap[p]->deadline_ns <= loop->heap[i]->deadline_ns)
            break;
        heap_swap(loop, i, p);
        i = p;
    }
}

static void heap_down(rd_loop *loop, uint32_t i)
{
    for (;;) {
        uint32_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < loop->heap_len && loop->heap[l]->deadline_ns < loop->heap[m]->deadline_ns)
            m = l;
        if (r < loop->heap_len && loop->heap[r]->deadline_ns < loop->heap[m]->deadline_ns)
            m = r;
        if (m == i)
            return;
        heap_swap(loop, i, m);
        i = m;
    }
}

void loop_timer_cancel(rd_loop *loop, rd_timer *t)
{
    if (t->slot == 0)
        return;
    uint32_t i = t->slot - 1;
    assert(i < loop->heap_len && loop->heap[i] == t);
    t->slot = 0;
    loop->heap_len--;
    if (i == loop->heap_len)
        return;
    loop->heap[i] = loop->heap[loop->heap_len];
    loop->heap[i]->slot = i + 1;
    heap_up(loop, i);
    heap_down(loop, loop->heap[i]->slot - 1);
}

static void timer_arm(rd_loop *loop, rd_timer *t, uint64_t deadline_ns, uint64_t period_ns)
{
    assert(t->fire != NULL);
    loop_timer_cancel(loop, t);
    if (loop->heap_len == loop->heap_cap) {
        uint32_t cap = loop->heap_cap ? loop->heap_cap * 2 : 64;
        rd_timer **h = rd_realloc(loop->heap, cap * sizeof(*h), "growing the timer heap");
        loop->heap = h;
        loop->heap_cap = cap;
    }
    t->deadline_ns = deadline_ns;
    t->period_ns = period_ns;
    loop->heap[loop->heap_len] = t;
    t->slot = ++loop->heap_len;
    heap_up(loop, t->slot - 1);
}

void loop_timer_start(rd_loop *loop, rd_timer *t, uint64_t after_ns, uint64_t period_ns)
{
    timer_arm(loop, t, rd_now_ns() + after_ns, period_ns);
}

void loop_timer_start_coarse(rd_loop *loop, rd_timer *t, uint64_t after_ns)
{
    assert(rd_loop_here == loop);
    timer_arm(loop, t, loop->turn_ns + after_ns, 0);
}

static void fire_timers(rd_loop *loop, uint64_t now)
{
    while (loop->heap_len > 0 && loop->heap[0]->deadline_ns <= now) {
        rd_timer *t = loop->heap[0];
        if (t->period_ns != 0) {
            /* Periodic: next deadline from the previous one, so the period does not drift;
             * a loop that fell behind skips the missed ticks rather than bursting. */
            uint64_t next = t->deadline_ns + t->period_ns;
            if (next <= now)
                next = now + t->period_ns;
            t->deadline_ns = next;
            heap_down(loop, 0);
        } else {
            loop_timer_cancel(loop, t);
        }
        t->fire(t);
    }
}

/* ---- wakes ---- */

static void event_read_done(rd_op *op, int res, uint32_t flags);

static void arm_event_read(rd_loop *loop)
{
    /* Not counted in flight: it is the loop's own, always armed. */
    struct io_uring_sqe *sqe = loop_sqe(loop, NULL);
    io_uring_prep_read(sqe, loop->event_fd, &loop->event_buf, sizeof(loop->event_buf), 0);
    io_uring_sqe_set_data(sqe, &loop->event_op);
}

static void event_read_done(rd_op *op, int res, uint32_t flags)
{
    (void)flags;
    rd_loop *loop = (rd_loop *)((char *)op - offsetof(rd_loop, event_op));
    if (res < 0 && res != -EINTR && res != -EAGAIN)
        log_error("loop_eventfd_read", KV_INT("loop", loop->index), KV_ERRNO(res));
    arm_event_read(loop);
}

void loop_wake(rd_loop *loop)
{
    rd_loop *self = rd_loop_here;
    if (self == loop)
        return; /* it is awake: it is running this code */
    atomic_thread_fence(memory_order_seq_cst);
    if (!atomic_load_explicit(&loop->sleeping, memory_order_relaxed))
        return;
    if (!atomic_exchange_explicit(&loop->sleeping, 0, memory_order_acq_rel))
        return; /* another sender of this burst woke it */
    if (self != NULL && self->use_msg_ring && loop->use_msg_ring) {
        /* From one ring to another: no syscall on the target's side, no eventfd read. The
         * sender's own CQE is skipped on success; a failure comes back tagged with the target,
         * which is then woken through its eventfd. */
        struct io_uring_sqe *sqe = loop_sqe(self, NULL);
        io_uring_prep_msg_ring(sqe, loop->ring.ring_fd, 0, UD_WAKE, 0);
        sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
        io_uring_sqe_set_data64(sqe, (uint64_t)(uintptr_t)loop | UD_WAKE_FAIL);
        io_uring_submit(&self->ring);
        add_counter(&self->wakes_sent, 1);
        return;
    }
    uint64_t one = 1;
    ssize_t n = write(loop->event_fd, &one, sizeof(one));
    (void)n; /* an eventfd write only fails when the counter would overflow: already awake */
    if (self != NULL)
        add_counter(&self->wakes_sent, 1);
}

void loop_schedule(rd_loop *loop, rd_actor *a)
{
    mpsc_push(&loop->ready, &a->ready);
    loop_wake(loop);
}

void loop_schedule_local(rd_loop *loop, rd_actor *a)
{
    assert(rd_loop_here == loop);
    a->local_next = NULL;
    if (loop->local_tail != NULL)
        loop->local_tail->local_next = a;
    else
        loop->local_head = a;
    loop->local_tail = a;
}

static int ready_empty(rd_loop *loop)
{
    return loop->local_head == NULL && mpsc_empty(&loop->ready);
}

/* ---- the outbox: cross-loop sends leave in chains ---- */

static void flush_slot(rd_loop *loop, outbox_slot *o)
{
    (void)loop;
    rd_actor *to = o->to;
    if (mailbox_push_chain(&to->mbox, o->first, o->last, o->n) == 1)
        loop_schedule(to->loop, to);
    o->to = NULL;
    o->n = 0;
}

void loop_flush(rd_loop *loop)
{
    for (int i = 0; i < loop->noutbox; i++)
        flush_slot(loop, &loop->outbox[i]);
    loop->noutbox = 0;
    msg_pool_flush(); /* and the messages this loop freed for other loops' pools */
}

int loop_post(rd_loop *loop, rd_actor *to, struct rd_msg *m)
{
    assert(rd_loop_here == loop && to->loop != loop);
    outbox_slot *o = NULL;
    for (int i = 0; i < loop->noutbox; i++) {
        if (loop->outbox[i].to == to) {
            o = &loop->outbox[i];
            break;
        }
    }
    int32_t queued = o ? o->n : 0;
    if (actor_mail_full(to, queued))
        return -EAGAIN;
    if (o == NULL) {
        if (loop->noutbox == OUTBOX_SLOTS)
            loop_flush(loop);
        o = &loop->outbox[loop->noutbox++];
        o->to = to;
        o->first = m;
        o->n = 0;
    } else {
        atomic_store_explicit(&o->last->node.next, &m->node, memory_order_relaxed);
    }
    o->last = m;
    if (++o->n == OUTBOX_CHAIN) {
        flush_slot(loop, o);
        *o = loop->outbox[--loop->noutbox]; /* keep the used slots packed */
    }
    return 0;
}

/* ---- stop ---- */

void loop_on_stop(rd_loop *loop, rd_stop_hook *hook)
{
    assert(rd_loop_here == NULL || rd_loop_here == loop);
    hook->next = loop->stop_hooks;
    loop->stop_hooks = hook;
}

void loop_stop(rd_loop *loop, uint64_t deadline_ns)
{
    atomic_store_explicit(&loop->stop_deadline_ns, deadline_ns, memory_order_relaxed);
    atomic_store_explicit(&loop->stop_requested, 1, memory_order_release);
    if (rd_loop_here != loop) {
        /* Always through the eventfd: the caller may be a loop with a full turn ahead. */
        atomic_store_explicit(&loop->sleeping, 0, memory_order_relaxed);
        uint64_t one = 1;
        ssize_t n = write(loop->event_fd, &one, sizeof(one));
        (void)n;
    }
}

/* ---- the loop ---- */

static int setup_ring(rd_loop *loop)
{
    struct io_uring_params p;
    memset(&p, 0, sizeof(p));
    p.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_CQSIZE |
              IORING_SETUP_SUBMIT_ALL;
    p.cq_entries = LOOP_CQ_ENTRIES;
    int r = io_uring_queue_init_params(LOOP_RING_ENTRIES, &loop->ring, &p);
    if (r == -EINVAL) {
        /* Older kernels: no single issuer / deferred task work; same semantics, less speed. */
        memset(&p, 0, sizeof(p));
        p.flags = IORING_SETUP_CQSIZE;
        p.cq_entries = LOOP_CQ_ENTRIES;
        r = io_uring_queue_init_params(LOOP_RING_ENTRIES, &loop->ring, &p);
    }
    if (r < 0)
        return r;
    loop->ring_ready = 1;
    struct io_uring_probe *probe = io_uring_get_probe_ring(&loop->ring);
    loop->use_msg_ring = !loop->force_eventfd && probe != NULL &&
                         io_uring_opcode_supported(probe, IORING_OP_MSG_RING);
    io_uring_free_probe(probe);
    loop->event_op.done = event_read_done;
    set_current(loop);
    arm_event_read(loop);
    return 0;
}

static void dispatch_cqe(rd_loop *loop, uint64_t ud, int res, uint32_t flags)
{
    if (ud == UD_IGNORE || ud == UD_WAKE)
        return;
    if ((ud & 3) == UD_WAKE_FAIL) {
        rd_loop *target = (rd_loop *)(uintptr_t)(ud & ~3ULL);
        log_warn("loop_msg_ring_failed", KV_INT("loop", loop->index),
                 KV_INT("target", target->index), KV_ERRNO(res));
        uint64_t one = 1;
        ssize_t n = write(target->event_fd, &one, sizeof(one));
        (void)n;
        return;
    }
    rd_op *op = (rd_op *)(uintptr_t)ud;
    if (op != &loop->event_op && !(flags & IORING_CQE_F_MORE)) {
        assert(loop->inflight > 0);
        loop->inflight--;
    }
    op->done(op, res, flags);
}

static void reap(rd_loop *loop)
{
    struct io_uring_cqe *cqes[LOOP_CQE_BATCH];
    for (;;) {
        unsigned n = io_uring_peek_batch_cqe(&loop->ring, cqes, LOOP_CQE_BATCH);
        if (n == 0)
            return;
        /* Copy out and release the slots before calling back: callbacks submit new work. */
        struct {
            uint64_t ud;
            int res;
            uint32_t flags;
        } c[LOOP_CQE_BATCH];
        for (unsigned i = 0; i < n; i++) {
            c[i].ud = cqes[i]->user_data;
            c[i].res = cqes[i]->res;
            c[i].flags = cqes[i]->flags;
        }
        io_uring_cq_advance(&loop->ring, n);
        for (unsigned i = 0; i < n; i++)
            dispatch_cqe(loop, c[i].ud, c[i].res, c[i].flags);
        loop_flush(loop);
    }
}

static int run_ready(rd_loop *loop)
{
    int runs = 0, local = 0;
    while (runs < LOOP_ACTOR_RUNS) {
        /* The two lists take turns while both have actors: actors of this loop that keep
         * mailing each other must not starve what other loops and threads sent. */
        rd_actor *a = loop->local_head;
        if (a != NULL && (local || mpsc_empty(&loop->ready))) {
            if ((loop->local_head = a->local_next) == NULL)
                loop->local_tail = NULL;
            runs++;
            local = 0;
            int again = actor_run_local(a);
            loop_flush(loop);
            if (again)
                loop_schedule_local(loop, a);
            continue;
        }
        local = 1;
        rd_mpsc_node *n = mpsc_pop(&loop->ready);
        if (n == NULL) {
            if (loop->local_head != NULL)
                continue; /* the queue looked busy but had nothing yet: the local list */
            break;
        }
        a = (rd_actor *)(void *)((char *)n - offsetof(rd_actor, ready));
        runs++;
        int again = actor_run_batch(a);
        loop_flush(loop);
        if (again)
            mpsc_push(&loop->ready, &a->ready);
    }
    if (runs)
        add_counter(&loop->actor_runs, (uint64_t)runs);
    return runs;
}

static void begin_stop(rd_loop *loop)
{
    loop->stopping = 1;
    rd_stop_hook *h = loop->stop_hooks;
    loop->stop_hooks = NULL;
    while (h != NULL) {
        rd_stop_hook *next = h->next;
        h->fn(h, loop);
        h = next;
    }
}

int loop_run(rd_loop *loop)
{
    if (!loop->ring_ready) {
        int r = setup_ring(loop);
        if (r < 0)
            return r;
    }
    set_current(loop);
    atomic_store_explicit(&loop->ended, 0, memory_order_release);
    loop->turn_ns = rd_now_ns();
    /* Three clock reads a turn (a busy loop turns once every few requests, and each read is
     * ~20 ns): the wait's end (the turn clock, and where the busy time starts: the reap is
     * work too), the timers' after the actors ran, and one before the wait for its length and
     * the busy time. */
    for (;;) {
        uint64_t t0 = loop->turn_ns;
        run_ready(loop);
        fire_timers(loop, rd_now_ns());
        run_turn_hooks(loop);
        loop_flush(loop);

        if (atomic_load_explicit(&loop->stop_requested, memory_order_acquire)) {
            if (!loop->stopping)
                begin_stop(loop);
            uint64_t deadline = atomic_load_explicit(&loop->stop_deadline_ns, memory_order_relaxed);
            if ((loop->inflight == 0 && loop->held == 0 && ready_empty(loop)) ||
                rd_now_ns() >= deadline)
                break;
        }

        /* How long may we sleep? Not at all with actors ready; else until the next timer or
         * the stop deadline. */
        int64_t wait_ns = -1;
        uint64_t now = rd_now_ns();
        if (loop->heap_len > 0) {
            uint64_t d = loop->heap[0]->deadline_ns;
            wait_ns = d > now ? (int64_t)(d - now) : 0;
        }
        if (loop->stopping) {
            uint64_t d = atomic_load_explicit(&loop->stop_deadline_ns, memory_order_relaxed);
            int64_t left = d > now ? (int64_t)(d - now) : 0;
            if (wait_ns < 0 || left < wait_ns)
                wait_ns = left;
        }
        atomic_store_explicit(&loop->sleeping, 1, memory_order_relaxed);
        atomic_thread_fence(memory_order_seq_cst);
        if (!ready_empty(loop))
            wait_ns = 0;
        add_counter(&loop->busy_ns, now - t0);

        struct io_uring_cqe *cqe = NULL;
        struct __kernel_timespec ts;
        if (wait_ns >= 0) {
            ts.tv_sec = wait_ns / 1000000000;
            ts.tv_nsec = wait_ns % 1000000000;
        }
        int r =
            io_uring_submit_and_wait_timeout(&loop->ring, &cqe, 1, wait_ns >= 0 ? &ts : NULL, NULL);
        atomic_store_explicit(&loop->sleeping, 0, memory_order_relaxed);
        loop->turn_ns = rd_now_ns(); /* for the completions reaped next */
        if (r < 0 && r != -ETIME && r != -EINTR && r != -EBUSY && r != -EAGAIN)
            log_error("loop_enter", KV_INT("loop", loop->index), KV_ERRNO(r));
        add_counter(&loop->iterations, 1);
        reap(loop);
    }
    atomic_store_explicit(&loop->ended, 1, memory_order_release);
    actor_cancel_requests(loop);
    loop_flush(loop); /* what their callbacks sent to other loops' actors; the pools */
    set_current(NULL);
    return 0;
}

static void *loop_thread(void *arg)
{
    rd_loop *loop = arg;
    if (loop->cpu >= 0) {
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET(loop->cpu, &set);
        int r = pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
        if (r != 0)
            log_warn("loop_pin_failed", KV_INT("loop", loop->index), KV_INT("cpu", loop->cpu),
                     KV_ERRNO(-r));
    }
    char name[16];
    snprintf(name, sizeof(name), "reeld-loop-%d", loop->index);
    pthread_setname_np(pthread_self(), name);

    int r = setup_ring(loop);
    pthread_mutex_lock(&loop->start_mu);
    loop->start_result = r;
    loop->start_done = 1;
    pthread_cond_signal(&loop->start_cv);
    pthread_mutex_unlock(&loop->start_mu);
    if (r < 0)
        return NULL;
    loop_run(loop);
    return NULL;
}

int loop_start(rd_loop *loop)
{
    int r = pthread_create(&loop->thread, NULL, loop_thread, loop);
    if (r != 0)
        return -r;
    loop->thread_started = 1;
    pthread_mutex_lock(&loop->start_mu);
    while (!loop->start_done)
        pthread_cond_wait(&loop->start_cv, &loop->start_mu);
    r = loop->start_result;
    pthread_mutex_unlock(&loop->start_mu);
    if (r < 0) {
        pthread_join(loop->thread, NULL);
        loop->thread_started = 0;
    }
    return r;
}

void loop_join(rd_loop *loop)
{
    if (loop->thread_started) {
        pthread_join(loop->thread, NULL);
        loop->thread_started = 0;
    }
}
