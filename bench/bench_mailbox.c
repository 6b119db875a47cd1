/* Mailbox and wake-up benchmark.
 *
 *   cross-core stream  one producer thread (CPU 0) pushes into a mailbox, one consumer (CPU 1)
 *                      pops in batches; once in chains of 16 (what a loop's outbox sends), once
 *                      one message per push (what a thread that is no loop sends), with the
 * mailbox's scheduling count kept exactly as an actor keeps it. Messages come from a preallocated
 * pool, reused by round, so the figure is the queue's, not malloc's. bare Vyukov        the peer:
 * the queue the mailbox is built on, without its count, bound or chains, one push per message.
 *   same-core          the same, on one thread: push 64, pop 64.
 *   actor streams      the whole runtime path, msg_new and msg_free included: an actor on one
 *                      loop sending to an actor on the other; a plain thread sending to a loop
 *                      actor.
 *   wake latency       ping-pong between actors on two loops pinned to two cores; every hop
 *                      finds the other loop asleep, so every hop is a wake. Once with
 *                      IORING_OP_MSG_RING, once with eventfd.
 *
 * Prints one line per figure; bench/mailbox runs it. */
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "src/rt/actor.h"
#include "src/rt/loop.h"
#include "src/rt/mailbox.h"

#define POOL   4096
#define ROUNDS 3000

static void pin(int cpu)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
}

static int ncpus; /* read once at start: pinning the main thread changes its own affinity */

static int ncpu(void)
{
    return ncpus;
}

/* ---- cross-core stream over the raw mailbox ---- */

static rd_mailbox mb;
static rd_msg *pool[POOL];
static atomic_int round_go;

static int chain_len; /* 1: one push per message; 16: chains, as a loop's outbox sends */

static void *producer(void *arg)
{
    (void)arg;
    pin(0);
    for (int r = 0; r < ROUNDS; r++) {
        while (atomic_load_explicit(&round_go, memory_order_acquire) <= r)
            ;
        if (chain_len == 1) {
            for (int i = 0; i < POOL; i++)
                mailbox_push(&mb, pool[i]);
            continue;
        }
        for (int i = 0; i < POOL; i += chain_len) {
            for (int j = 0; j < chain_len - 1; j++)
                atomic_store_explicit(&pool[i + j]->node.next, &pool[i + j + 1]->node,
                                      memory_order_relaxed);
            mailbox_push_chain(&mb, pool[i], pool[i + chain_len - 1], chain_len);
        }
    }
    return NULL;
}

static double cross_core_stream(int chain)
{
    chain_len = chain;
    atomic_store(&round_go, 0);
    mailbox_init(&mb, 0);
    pthread_t th;
    pthread_create(&th, NULL, producer, NULL);
    pin(ncpu() > 1 ? 1 : 0);
    uint64_t total_ns = 0;
    for (int r = 0; r < ROUNDS; r++) {
        uint64_t t0 = rd_now_ns();
        atomic_store_explicit(&round_go, r + 1, memory_order_release);
        int got = 0;
        while (got < POOL) {
            int32_t n = 0;
            rd_msg *m;
            while (n < RD_ACTOR_BATCH && (m = mailbox_pop(&mb)) != NULL) {
                if (m != pool[got + n]) {
                    fprintf(stderr, "bench_mailbox: message out of order\n");
                    exit(1);
                }
                n++;
            }
            if (n > 0) /* an idle actor would not be running: no count to read */
                mailbox_done(&mb, n);
            got += n;
        }
        total_ns += rd_now_ns() - t0;
    }
    pthread_join(th, NULL);
    return (double)total_ns / ((double)POOL * ROUNDS);
}

/* The peer: the bare Vyukov queue (no count, no bound, one push per message), the design
 * the mailbox is built on, streamed the same way. */
static rd_mpsc bare;

static void *bare_producer(void *arg)
{
    (void)arg;
    pin(0);
    for (int r = 0; r < ROUNDS; r++) {
        while (atomic_load_explicit(&round_go, memory_order_acquire) <= r)
            ;
        for (int i = 0; i < POOL; i++)
            mpsc_push(&bare, &pool[i]->node);
    }
    return NULL;
}

static double bare_vyukov_stream(void)
{
    atomic_store(&round_go, 0);
    mpsc_init(&bare);
    pthread_t th;
    pthread_create(&th, NULL, bare_producer, NULL);
    pin(ncpu() > 1 ? 1 : 0);
    uint64_t total_ns = 0;
    for (int r = 0; r < ROUNDS; r++) {
        uint64_t t0 = rd_now_ns();
        atomic_store_explicit(&round_go, r + 1, memory_order_release);
        for (int got = 0; got < POOL;)
            got += mpsc_pop(&bare) != NULL;
        total_ns += rd_now_ns() - t0;
    }
    pthread_join(th, NULL);
    return (double)total_ns / ((double)POOL * ROUNDS);
}

static double same_core(void)
{
    mailbox_init(&mb, 0);
    uint64_t t0 = rd_now_ns();
    for (int r = 0; r < ROUNDS; r++) {
        for (int i = 0; i < POOL; i += 64) {
            for (int j = 0; j < 64; j++)
                mailbox_push(&mb, pool[i + j]);
            int32_t n = 0;
            while (mailbox_pop(&mb) != NULL)
                n++;
            mailbox_done(&mb, n);
        }
    }
    return (double)(rd_now_ns() - t0) / ((double)POOL * ROUNDS);
}

/* ---- the runtime path: actor_send from a thread into a loop actor ---- */

static atomic_long sink_count;

static int sink_handle(rd_actor *self, rd_msg *m)
{
    (void)self;
    (void)m;
    atomic_store_explicit(&sink_count, atomic_load_explicit(&sink_count, memory_order_relaxed) + 1,
                          memory_order_release);
    return RD_DONE;
}

static const rd_actor_def sink_def = {
    .name = "sink", .handle = sink_handle, .mailbox_bound = 65536};

static double actor_stream(long n)
{
    rd_loop *loop;
    loop_create(&loop, 1, ncpu() > 1 ? 1 : 0);
    loop_start(loop);
    rd_actor *sink;
    actor_spawn(loop, &sink_def, NULL, &sink);
    pin(0);
    atomic_store(&sink_count, 0);
    uint64_t t0 = rd_now_ns();
    for (long i = 0; i < n; i++) {
        rd_msg *m = msg_new(MSG_PING);
        while (actor_send(sink, m) != 0)
            sched_yield();
    }
    while (atomic_load_explicit(&sink_count, memory_order_acquire) < n)
        ;
    double ns = (double)(rd_now_ns() - t0) / (double)n;
    loop_stop(loop, rd_now_ns() + 1000000000ull);
    loop_join(loop);
    loop_destroy(loop);
    actor_free_all();
    return ns;
}

/* ---- loop to loop: a producer actor streams into an actor of another loop ---- */

typedef struct source {
    rd_actor *sink;
    long left;
} source;

static int source_handle(rd_actor *self, rd_msg *m)
{
    source *s = self->state;
    /* 256 messages per turn, then yield to the loop by mailing itself the next turn. */
    for (int i = 0; i < 256 && s->left > 0; i++) {
        rd_msg *out = msg_new(MSG_PING);
        if (actor_send(s->sink, out) != 0) {
            msg_free(out);
            break; /* back-pressure: try again next turn */
        }
        s->left--;
    }
    if (s->left > 0 && actor_send(self, m) == 0)
        return RD_KEPT;
    return RD_DONE;
}

static const rd_actor_def source_def = {.name = "source", .handle = source_handle};

/* `same`: the sink on the producer's loop (a send within a loop: its local list). */
static double loop_stream(long n, int same)
{
    rd_loop *a, *b;
    loop_create(&a, 0, 0);
    loop_create(&b, 1, ncpu() > 1 ? 1 : 0);
    loop_start(a);
    loop_start(b);
    rd_actor *sink, *src;
    actor_spawn(same ? a : b, &sink_def, NULL, &sink);
    static source s;
    s = (source){.sink = sink, .left = n};
    atomic_store(&sink_count, 0);
    actor_spawn(a, &source_def, &s, &src);
    uint64_t t0 = rd_now_ns();
    actor_send(src, msg_new(MSG_PING));
    /* Looked at every 50 us, not spun on: a reader spinning on the sink's counter takes its
     * line away after every message, and that transfer was counted as the actors' cost. */
    while (atomic_load_explicit(&sink_count, memory_order_acquire) < n)
        nanosleep(&(struct timespec){0, 50000}, NULL);
    double ns = (double)(rd_now_ns() - t0) / (double)n;
    loop_stop(a, rd_now_ns() + 1000000000ull);
    loop_stop(b, rd_now_ns() + 1000000000ull);
    loop_join(a);
    loop_join(b);
    loop_destroy(a);
    loop_destroy(b);
    actor_free_all();
    return ns;
}

/* ---- wake latency: ping-pong across two loops ---- */

#define HOPS 20000

typedef struct pp {
    rd_actor *peer;
    long hops;
    uint64_t *lat;
    atomic_long *done;
} pp;

static int pp_handle(rd_actor *self, rd_msg *m)
{
    pp *s = self->state;
    uint64_t now = rd_now_ns();
    struct rd_msg_ping *b = msg_body(m, ping);
    if (b->seq > 0 && b->seq <= HOPS)
        s->lat[b->seq - 1] = now - b->sent_ns;
    if (b->seq >= HOPS) {
        atomic_store(s->done, 1);
        return RD_DONE;
    }
    b->seq++;
    /* Spin a moment so the peer has certainly gone to sleep: every hop is then a wake. */
    while (rd_now_ns() - now < 20000)
        ;
    b->sent_ns = rd_now_ns();
    return actor_send(s->peer, m) == 0 ? RD_KEPT : RD_DONE;
}

static const rd_actor_def pp_def = {.name = "pingpong", .handle = pp_handle};

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static void wake_latency(int force_eventfd, double *p50, double *p99)
{
    static uint64_t lat[HOPS];
    memset(lat, 0, sizeof(lat));
    atomic_long done = 0;
    rd_loop *a, *b;
    loop_create(&a, 0, 0);
    loop_create(&b, 1, ncpu() > 1 ? 1 : 0);
    if (force_eventfd) {
        loop_force_eventfd(a);
        loop_force_eventfd(b);
    }
    loop_start(a);
    loop_start(b);
    static pp sa, sb;
    sa = (pp){.lat = lat, .done = &done};
    sb = (pp){.lat = lat, .done = &done};
    rd_actor *x, *y;
    actor_spawn(a, &pp_def, &sa, &x);
    actor_spawn(b, &pp_def, &sb, &y);
    sa.peer = y;
    sb.peer = x;
    rd_msg *m = msg_new(MSG_PING);
    msg_body(m, ping)->sent_ns = rd_now_ns();
    actor_send(x, m);
    while (!atomic_load(&done)) {
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    loop_stop(a, rd_now_ns() + 1000000000ull);
    loop_stop(b, rd_now_ns() + 1000000000ull);
    loop_join(a);
    loop_join(b);
    loop_destroy(a);
    loop_destroy(b);
    actor_free_all();
    qsort(lat, HOPS, sizeof(lat[0]), cmp_u64);
    *p50 = (double)lat[HOPS / 2] / 1000.0;
    *p99 = (double)lat[HOPS * 99 / 100] / 1000.0;
}

int main(void)
{
    cpu_set_t set;
    sched_getaffinity(0, sizeof(set), &set);
    ncpus = CPU_COUNT(&set);
    for (int i = 0; i < POOL; i++)
        pool[i] = msg_new(MSG_PING);
    printf("cpus %d\n", ncpu());
    double cc = cross_core_stream(16);
    printf("cross_core_chain16_ns_per_msg %.2f\n", cc);
    printf("cross_core_chain16_msgs_per_sec %.0f\n", 1e9 / cc);
    printf("cross_core_single_ns_per_msg %.2f\n", cross_core_stream(1));
    printf("bare_vyukov_single_ns_per_msg %.2f\n", bare_vyukov_stream());
    printf("same_core_ns_per_msg %.2f\n", same_core());
    printf("loop_to_loop_actor_ns_per_msg %.2f\n", loop_stream(5000000, 0));
    printf("same_loop_actor_ns_per_msg %.2f\n", loop_stream(5000000, 1));
    printf("thread_to_loop_actor_ns_per_msg %.2f\n", actor_stream(5000000));
    double p50, p99;
    wake_latency(0, &p50, &p99);
    printf("wake_msg_ring_us p50 %.2f p99 %.2f\n", p50, p99);
    wake_latency(1, &p50, &p99);
    printf("wake_eventfd_us p50 %.2f p99 %.2f\n", p50, p99);
    for (int i = 0; i < POOL; i++)
        msg_free(pool[i]);
    return 0;
}
