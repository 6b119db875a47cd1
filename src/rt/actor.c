/* Actors, request/reply and supervision. See actor.h for the contract.
 *
 * Scheduling follows the mailbox rule (mailbox.h): the send that finds the mailbox idle
 * schedules the actor (loop actors) or writes its eventfd (thread actors); nothing else does,
 * so an actor is never on a ready queue twice. A failed actor that still has mail is "parked":
 * its restart timer schedules it, and only then. */
#include "src/rt/actor.h"

#include <assert.h>
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "src/rt/alloc.h"
#include "src/rt/log.h"

#define PENDING_BUCKETS 64 /* power of two */
#define BACKOFF_MIN_MS  10
#define BACKOFF_MAX_MS  5000

struct rd_pending {
    rd_pending *next;
    rd_actor *self;
    uint32_t corr;
    rd_timer timer;
    rd_reply_fn cb;
    void *ctx;
};

#define SPARE_PENDING_MAX 1024 /* request records an actor keeps for reuse */

static void drop_local(rd_actor *a);

static pthread_mutex_t registry_mu = PTHREAD_MUTEX_INITIALIZER;
static rd_actor *registry;

static rd_actor *actor_new(const rd_actor_def *def, void *arg, rd_loop *loop)
{
    assert(def != NULL && def->handle != NULL && def->name != NULL);
    rd_actor *a = rd_calloc_aligned(sizeof(*a), "an actor");
    a->def = def;
    a->arg = arg;
    a->loop = loop; /* before the registry has it: actor_cancel_requests reads it there */
    a->wake_fd = -1;
    a->cpu = -1;
    a->backoff_ms = BACKOFF_MIN_MS;
    mailbox_init(&a->mbox, def->mailbox_bound > 0 ? def->mailbox_bound : RD_MAILBOX_DEFAULT_BOUND);
    pthread_mutex_lock(&registry_mu);
    a->next_all = registry;
    registry = a;
    pthread_mutex_unlock(&registry_mu);
    return a;
}

void actor_foreach(void (*fn)(rd_actor *a, void *ctx), void *ctx)
{
    pthread_mutex_lock(&registry_mu);
    for (rd_actor *a = registry; a != NULL; a = a->next_all)
        fn(a, ctx);
    pthread_mutex_unlock(&registry_mu);
}

void actor_free_all(void)
{
    pthread_mutex_lock(&registry_mu);
    rd_actor *a = registry;
    registry = NULL;
    pthread_mutex_unlock(&registry_mu);
    while (a != NULL) {
        rd_actor *next = a->next_all;
        rd_msg *m;
        while ((m = mailbox_pop(&a->mbox)) != NULL)
            msg_free(m);
        drop_local(a);
        if (a->wake_fd >= 0)
            close(a->wake_fd);
        /* Requests still unanswered when the loops stopped: no callback can run any more (its
         * loop is gone), but their records are ours to free. */
        for (int i = 0; a->pending != NULL && i < PENDING_BUCKETS; i++) {
            while (a->pending[i] != NULL) {
                rd_pending *p = a->pending[i];
                a->pending[i] = p->next;
                free(p);
            }
        }
        free(a->pending);
        while (a->spare_pending != NULL) {
            rd_pending *p = a->spare_pending;
            a->spare_pending = p->next;
            free(p);
        }
        free(a);
        a = next;
    }
}

/* ---- sending ---- */

static void notify(rd_actor *to)
{
    if (to->loop != NULL) {
        loop_schedule(to->loop, to);
    } else {
        uint64_t one = 1;
        ssize_t n = write(to->wake_fd, &one, sizeof(one));
        (void)n; /* fails only when the counter is saturated: it is awake anyway */
    }
}

/* Puts an actor with local mail on its loop's local ready list, once. */
static void queue_local(rd_actor *a)
{
    if (!a->local_queued) {
        a->local_queued = 1;
        loop_schedule_local(a->loop, a);
    }
}

/* A send within a loop (never a system message): onto the actor's local list, the loop's
 * thread being the only one that touches it. The bound counts both lists. */
static int send_local(rd_actor *to, rd_msg *m)
{
    if (actor_mail_full(to, 0))
        return -EAGAIN;
    atomic_store_explicit(&m->node.next, NULL, memory_order_relaxed);
    if (to->local_last != NULL)
        atomic_store_explicit(&to->local_last->node.next, &m->node, memory_order_relaxed);
    else
        to->local_first = m;
    to->local_last = m;
    atomic_store_explicit(&to->local_n,
                          atomic_load_explicit(&to->local_n, memory_order_relaxed) + 1,
                          memory_order_relaxed);
    if (!to->down) /* else its restart timer queues it */
        queue_local(to);
    return 0;
}

static rd_msg *pop_local(rd_actor *a)
{
    rd_msg *m = a->local_first;
    if (m == NULL)
        return NULL;
    a->local_first = (rd_msg *)(void *)atomic_load_explicit(&m->node.next, memory_order_relaxed);
    if (a->local_first == NULL)
        a->local_last = NULL;
    atomic_store_explicit(&a->local_n, atomic_load_explicit(&a->local_n, memory_order_relaxed) - 1,
                          memory_order_relaxed);
    return m;
}

static void drop_local(rd_actor *a)
{
    rd_msg *m;
    while ((m = pop_local(a)) != NULL)
        msg_free(m);
}

int actor_send(rd_actor *to, rd_msg *m)
{
    assert(to != NULL && m != NULL);
    if (atomic_load_explicit(&to->stopped, memory_order_acquire) ||
        (to->loop != NULL && loop_ended(to->loop)))
        return -EPIPE; /* nothing will handle it */
    rd_loop *here = loop_current();
    if (here != NULL && to->loop == here && !(m->flags & RD_MSG_SYSTEM))
        return send_local(to, m);
    if (here != NULL && to->loop != NULL && !(m->flags & RD_MSG_SYSTEM))
        return loop_post(here, to, m); /* leaves in a chain at the end of this batch */
    if (!(m->flags & RD_MSG_SYSTEM) && actor_mail_full(to, 0))
        return -EAGAIN; /* the bound counts both lists */
    int r = mailbox_push(&to->mbox, m);
    if (r < 0)
        return r;
    if (r == 1)
        notify(to);
    return 0;
}

int actor_send_wait(rd_actor *to, rd_msg *m, int timeout_ms)
{
    assert(loop_current() == NULL);
    uint64_t end = timeout_ms >= 0 ? rd_now_ns() + (uint64_t)timeout_ms * 1000000ull : 0;
    for (;;) {
        int r = actor_send(to, m);
        if (r != -EAGAIN)
            return r;
        int left = -1;
        if (timeout_ms >= 0) {
            uint64_t now = rd_now_ns();
            if (now >= end)
                return -EAGAIN;
            left = (int)((end - now + 999999) / 1000000);
        }
        if (mailbox_wait_room(&to->mbox, left) == -ETIMEDOUT)
            return -EAGAIN;
    }
}

void actor_stop(rd_actor *a)
{
    atomic_store_explicit(&a->stopping, 1, memory_order_release);
    rd_msg *m = msg_new(MSG_STOP);
    m->flags |= RD_MSG_SYSTEM;
    if (actor_send(a, m) != 0)
        msg_free(m); /* already stopped */
    else if (a->loop == NULL)
        actor_wake(a); /* ends a restart back-off (fail) */
}

/* ---- requests ---- */

/* A request record: reused from the actor's spares (its loop's thread only), else allocated. */
static rd_pending *pending_new(rd_actor *self)
{
    rd_pending *p = self->spare_pending;
    if (p == NULL)
        return rd_calloc(1, sizeof(*p), "a pending request");
    self->spare_pending = p->next;
    self->spare_count--;
    memset(p, 0, sizeof(*p));
    return p;
}

static void pending_free(rd_actor *self, rd_pending *p)
{
    if (self->spare_count >= SPARE_PENDING_MAX) {
        free(p);
        return;
    }
    p->next = self->spare_pending;
    self->spare_pending = p;
    self->spare_count++;
}

static rd_pending **bucket(rd_actor *self, uint32_t corr)
{
    return &self->pending[corr & (PENDING_BUCKETS - 1)];
}

static rd_pending *take_pending(rd_actor *self, uint32_t corr)
{
    if (self->pending == NULL)
        return NULL;
    for (rd_pending **pp = bucket(self, corr); *pp != NULL; pp = &(*pp)->next) {
        if ((*pp)->corr == corr) {
            rd_pending *p = *pp;
            *pp = p->next;
            self->pending_count--;
            loop_release(self->loop);
            return p;
        }
    }
    return NULL;
}

static void fail(rd_actor *a, int err, const char *where);

static void request_timed_out(rd_timer *t)
{
    rd_pending *p = (rd_pending *)(void *)((char *)t - offsetof(rd_pending, timer));
    rd_actor *self = p->self;
    rd_pending *q = take_pending(self, p->corr);
    assert(q == p);
    (void)q;
    int r = p->cb(self, NULL, -ETIMEDOUT, p->ctx);
    pending_free(self, p);
    if (r < 0)
        fail(self, r, "reply_callback");
}

int actor_request(rd_actor *self, rd_actor *to, rd_msg *m, uint32_t timeout_ms, rd_reply_fn cb,
                  void *ctx)
{
    assert(self->loop != NULL && loop_current() == self->loop);
    assert(cb != NULL);
    if (self->pending == NULL)
        self->pending = rd_calloc(PENDING_BUCKETS, sizeof(*self->pending), "pending requests");
    uint32_t corr = ++self->next_corr;
    if (corr == 0)
        corr = ++self->next_corr;
    m->corr = corr;
    m->from = self;
    int r = actor_send(to, m);
    if (r < 0) {
        m->corr = 0;
        m->from = NULL;
        return r;
    }
    rd_pending *p = pending_new(self);
    p->self = self;
    p->corr = corr;
    p->cb = cb;
    p->ctx = ctx;
    p->timer.fire = request_timed_out;
    rd_pending **b = bucket(self, corr);
    p->next = *b;
    *b = p;
    self->pending_count++;
    loop_hold(self->loop);
    loop_timer_start_coarse(self->loop, &p->timer, (uint64_t)timeout_ms * 1000000ull);
    return 0;
}

int actor_reply(const rd_msg *request, rd_msg *reply)
{
    if (request->from == NULL || request->corr == 0)
        return -EINVAL;
    reply->corr = request->corr;
    reply->flags |= RD_MSG_REPLY;
    return actor_send(request->from, reply);
}

/* Calls every outstanding request's callback with -ECANCELED (before fini: the callbacks may
 * still use the state). */
static void cancel_pending(rd_actor *a)
{
    if (a->pending == NULL)
        return;
    for (int i = 0; i < PENDING_BUCKETS; i++) {
        while (a->pending[i] != NULL) {
            rd_pending *p = a->pending[i];
            a->pending[i] = p->next;
            a->pending_count--;
            loop_release(a->loop);
            loop_timer_cancel(a->loop, &p->timer);
            p->cb(a, NULL, -ECANCELED, p->ctx);
            pending_free(a, p);
        }
    }
}

void actor_cancel_requests(rd_loop *loop)
{
    /* One actor at a time, until none of this loop's has a request: a callback may ask again
     * (a chain's next step; refused once the loop has ended, but an actor of a loop still
     * running takes it). Actors leave the registry only in actor_free_all, after the loops. */
    for (long rounds = 0;; rounds++) {
        rd_actor *next = NULL;
        pthread_mutex_lock(&registry_mu);
        for (rd_actor *a = registry; a != NULL && next == NULL; a = a->next_all)
            if (a->loop == loop && a->pending_count > 0)
                next = a;
        pthread_mutex_unlock(&registry_mu);
        if (next == NULL)
            return;
        if (rounds == 100000) { /* a callback that asks again for ever: leave it */
            log_error("requests_left_at_stop", KV_STR("actor", next->def->name),
                      KV_INT("pending", next->pending_count));
            return;
        }
        cancel_pending(next);
    }
}

/* ---- supervision ---- */

static void restart_due(rd_timer *t)
{
    rd_actor *a = (rd_actor *)(void *)((char *)t - offsetof(rd_actor, restart_timer));
    a->down = 0;
    if (a->parked) {
        a->parked = 0;
        loop_schedule(a->loop, a);
    }
    if (a->local_first != NULL)
        queue_local(a);
}

static void fail(rd_actor *a, int err, const char *where)
{
    atomic_fetch_add_explicit(&a->restarts, 1, memory_order_relaxed);
    log_error("actor_failed", KV_STR("actor", a->def->name), KV_STR("in", where), KV_ERRNO(err),
              KV_INT("restart_in_ms", a->backoff_ms));
    cancel_pending(a);
    if (a->started && a->def->fini != NULL)
        a->def->fini(a);
    a->started = 0;
    a->state = NULL;
    a->down = 1;
    uint32_t delay = a->backoff_ms;
    a->backoff_ms = a->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : a->backoff_ms * 2;
    if (a->loop != NULL) {
        a->restart_timer.fire = restart_due;
        loop_timer_start(a->loop, &a->restart_timer, (uint64_t)delay * 1000000ull, 0);
    } else {
        /* A thread actor has no loop to set a timer on: its thread waits out the delay, on its
         * eventfd so that actor_stop ends the wait at once. A wait for a deadline, not a poll:
         * other wakes (a send to an idle mailbox) only make it wait again for what is left. */
        uint64_t end = rd_now_ns() + (uint64_t)delay * 1000000ull;
        for (;;) {
            uint64_t now = rd_now_ns();
            if (now >= end || atomic_load_explicit(&a->stopping, memory_order_acquire))
                break;
            struct pollfd p = {.fd = a->wake_fd, .events = POLLIN};
            if (poll(&p, 1, (int)((end - now + 999999) / 1000000)) > 0) {
                uint64_t v;
                ssize_t r = read(a->wake_fd, &v, sizeof(v));
                (void)r;
            }
        }
        a->down = 0;
    }
}

static int ensure_started(rd_actor *a)
{
    if (a->started)
        return 1;
    if (a->down)
        return 0;
    a->state = a->arg; /* the common case; init may replace it */
    int r = a->def->init != NULL ? a->def->init(a, a->arg) : 0;
    if (r < 0) {
        fail(a, r, "init");
        return 0;
    }
    a->started = 1;
    return 1;
}

/* Stops for good: pending requests cancelled, fini, queued mail dropped. */
static void finish(rd_actor *a)
{
    atomic_store_explicit(&a->stopped, 1, memory_order_release);
    cancel_pending(a);
    if (a->started && a->def->fini != NULL)
        a->def->fini(a);
    a->started = 0;
    if (a->loop != NULL)
        loop_timer_cancel(a->loop, &a->restart_timer);
    drop_local(a);
}

/* Handles one message; returns 1 when the actor has stopped. */
static int dispatch(rd_actor *a, rd_msg *m)
{
    if (m->type == MSG_STOP && (m->flags & RD_MSG_SYSTEM)) {
        msg_free(m);
        /* A stop travels through the mailbox, behind what other threads sent before it; what
         * senders of this loop sent before it is on the local list, which may not have run
         * yet: handled first, so no sender's mail is overtaken by its own stop. (System
         * messages never go onto the local list, so this does not recurse into a stop.) */
        rd_msg *x;
        while (!a->down && (x = pop_local(a)) != NULL)
            (void)dispatch(a, x);
        finish(a);
        return 1;
    }
    if (m->flags & RD_MSG_REPLY) {
        rd_pending *p = take_pending(a, m->corr);
        if (p == NULL) {
            log_debug("late_reply", KV_STR("actor", a->def->name), KV_INT("corr", m->corr));
            msg_free(m);
            return 0;
        }
        loop_timer_cancel(a->loop, &p->timer);
        int r = p->cb(a, m, 0, p->ctx);
        pending_free(a, p);
        if (r < 0)
            fail(a, r, "reply_callback");
        else
            a->backoff_ms = BACKOFF_MIN_MS;
        return 0;
    }
    rd_msg_type type = (rd_msg_type)m->type; /* m may be gone after the handler */
    int r = a->def->handle(a, m);
    /* One writer (the actor runs on one thread at a time): a plain add, not a locked one. */
    atomic_store_explicit(&a->handled, atomic_load_explicit(&a->handled, memory_order_relaxed) + 1,
                          memory_order_relaxed);
    if (r != RD_KEPT)
        msg_free(m);
    if (r < 0)
        fail(a, r, msg_name(type));
    else
        a->backoff_ms = BACKOFF_MIN_MS;
    return 0;
}

static void drop_mail(rd_actor *a)
{
    int32_t n = 0;
    rd_msg *m;
    while ((m = mailbox_pop(&a->mbox)) != NULL) {
        msg_free(m);
        n++;
    }
    mailbox_done(&a->mbox, n);
}

int actor_run_batch(rd_actor *a)
{
    if (atomic_load_explicit(&a->stopped, memory_order_relaxed)) {
        drop_mail(a);
        mailbox_done(&a->mbox, a->phantom);
        a->phantom = 0;
        return 0;
    }
    int32_t n = 0;
    if (ensure_started(a)) {
        while (n < RD_ACTOR_BATCH) {
            rd_msg *m = mailbox_pop(&a->mbox);
            if (m == NULL)
                break;
            n++;
            if (dispatch(a, m)) {
                drop_mail(a);
                mailbox_done(&a->mbox, n + a->phantom);
                a->phantom = 0;
                return 0;
            }
            if (a->down)
                break;
        }
    }
    int32_t left = mailbox_done(&a->mbox, n + a->phantom);
    a->phantom = 0;
    if (a->down) {
        a->parked = left > 0;
        return 0;
    }
    return left > 0;
}

int actor_run_local(rd_actor *a)
{
    /* local_queued stays set while it runs: what its handlers send to it joins the list, and
     * the loop queues it again when this returns 1. */
    int more = 0;
    if (atomic_load_explicit(&a->stopped, memory_order_relaxed)) {
        drop_local(a);
    } else if (ensure_started(a)) { /* else down: its restart timer queues the list again */
        int n = 0;
        rd_msg *m;
        while (n < RD_ACTOR_BATCH && (m = pop_local(a)) != NULL) {
            n++;
            if (dispatch(a, m) || a->down)
                break; /* stopped (finish dropped the rest) or down (the timer queues it) */
        }
        more = n == RD_ACTOR_BATCH && a->local_first != NULL && !a->down;
    }
    a->local_queued = more;
    return more;
}

int actor_spawn(rd_loop *loop, const rd_actor_def *def, void *arg, rd_actor **out)
{
    rd_actor *a = actor_new(def, arg, loop);
    /* Run once even with no mail, so init happens on the loop thread right away: a phantom
     * message in the count (finished by the first run) makes this the scheduling send. */
    a->phantom = 1;
    atomic_fetch_add_explicit(&a->mbox.q.count, 1, memory_order_release);
    *out = a;
    loop_schedule(loop, a);
    return 0;
}

/* ---- thread actors ---- */

rd_msg *actor_try_receive(rd_actor *self)
{
    assert(self->loop == NULL);
    rd_msg *m = mailbox_pop(&self->mbox);
    if (m != NULL)
        mailbox_done(&self->mbox, 1);
    return m;
}

void actor_wake(rd_actor *a)
{
    assert(a->loop == NULL);
    uint64_t one = 1;
    ssize_t n = write(a->wake_fd, &one, sizeof(one));
    (void)n; /* fails only when the counter is saturated: it is awake anyway */
}

void actor_wait(rd_actor *self, int mail, int timeout_ms)
{
    assert(self->loop == NULL);
    if (mail) {
        /* Finish the batch: once the depth is 0, the next send writes wake_fd (the mailbox
         * rule), as it does while the thread sleeps between batches. */
        int32_t left = mailbox_done(&self->mbox, self->taken);
        self->taken = 0;
        if (left > 0)
            return; /* queued, or a push half-way: actor_try_receive will have it */
    }
    /* Sends to a non-idle mailbox do not write wake_fd, so without `mail` only actor_wake (or
     * a send that found the depth at 0 after an earlier wait with `mail`) ends this. */
    struct pollfd p = {.fd = self->wake_fd, .events = POLLIN};
    if (poll(&p, 1, timeout_ms) > 0) {
        uint64_t v;
        ssize_t r = read(self->wake_fd, &v, sizeof(v));
        (void)r;
    }
}

static void *actor_thread(void *arg)
{
    rd_actor *a = arg;
    if (a->cpu >= 0) {
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET(a->cpu, &set);
        pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
    }
    char name[16];
    snprintf(name, sizeof(name), "reeld-%.9s", a->def->name);
    pthread_setname_np(pthread_self(), name);
    uint64_t tick_ns = (uint64_t)a->def->tick_ms * 1000000ull;
    uint64_t next_tick = a->def->tick != NULL && tick_ns ? rd_now_ns() + tick_ns : 0;
    for (;;) {
        if (!ensure_started(a)) {
            if (!atomic_load_explicit(&a->stopping, memory_order_acquire))
                continue; /* fail() waited out the back-off: init again */
            /* Asked to stop and init fails: the STOP could never be reached. */
            finish(a);
            drop_mail(a);
            return NULL;
        }
        int32_t n = 0; /* popped in this batch; a->taken: of those, not yet finished */
        int stopped = 0;
        rd_msg *m;
        while (n < RD_ACTOR_BATCH && (m = mailbox_pop(&a->mbox)) != NULL) {
            n++;
            a->taken++;
            if (dispatch(a, m)) {
                stopped = 1;
                break;
            }
            if (!a->started)
                break; /* failed: init again before the next message */
        }
        if (stopped) {
            drop_mail(a);
            mailbox_done(&a->mbox, a->taken);
            return NULL;
        }
        if (next_tick != 0 && a->started && rd_now_ns() >= next_tick) {
            a->def->tick(a);
            next_tick = rd_now_ns() + tick_ns;
        }
        int32_t left = mailbox_done(&a->mbox, a->taken);
        a->taken = 0;
        if (left > 0)
            continue;
        if (next_tick != 0) {
            /* Idle: sleep until a send finds us idle or the tick is due. */
            uint64_t now = rd_now_ns();
            int ms = next_tick > now ? (int)((next_tick - now + 999999) / 1000000) : 0;
            struct pollfd p = {.fd = a->wake_fd, .events = POLLIN};
            if (poll(&p, 1, ms) <= 0)
                continue;
        }
        uint64_t v;
        ssize_t r = read(a->wake_fd, &v, sizeof(v)); /* sleeps until a send finds us idle */
        (void)r;
    }
}

int actor_spawn_thread(const rd_actor_def *def, void *arg, int cpu, rd_actor **out)
{
    int fd = eventfd(0, EFD_CLOEXEC);
    if (fd < 0)
        return -errno;
    rd_actor *a = actor_new(def, arg, NULL);
    a->wake_fd = fd;
    a->cpu = cpu;
    int r = pthread_create(&a->thread, NULL, actor_thread, a);
    if (r != 0) {
        atomic_store(&a->stopped, 1);
        return -r;
    }
    *out = a;
    return 0;
}

void actor_join(rd_actor *a)
{
    assert(a->loop == NULL);
    pthread_join(a->thread, NULL);
}
