/* The loop: timers in order and never early, cancel, periodic timers; hooks at the turn's end
 * (once per turn however often queued, before the loop waits again); cross-loop sends that
 * wake a sleeping loop (MSG_RING and eventfd); a stop that drains in-flight I/O and one that
 * gives up at its deadline. */
#include <errno.h>
#include <stdlib.h>
#include <time.h>

#include "src/rt/actor.h"
#include "src/rt/loop.h"
#include "tests/unit/test.h"

#define MS 1000000ull

typedef struct tt {
    rd_timer t;
    int id;
    uint64_t due_ns; /* earliest acceptable firing time */
} tt;

static rd_loop *tloop;
static int fired[8], nfired, early;
static tt timers[4];

static void on_fire(rd_timer *t)
{
    tt *x = (tt *)t;
    if (rd_now_ns() < x->due_ns)
        early++;
    fired[nfired++] = x->id;
    if (x->id == 3)
        loop_stop(tloop, rd_now_ns() + 1000 * MS);
}

static void arm(int id, uint64_t after_ms)
{
    timers[id].id = id;
    timers[id].t.fire = on_fire;
    timers[id].due_ns = rd_now_ns() + after_ms * MS;
    loop_timer_start(tloop, &timers[id].t, after_ms * MS, 0);
}

/* Timers are armed from the loop's own thread: a stop hook cannot run before, so use a
 * zero-delay timer as the "first thing on the loop". */
static void arm_all(rd_timer *t)
{
    (void)t;
    arm(3, 60);
    arm(1, 20);
    arm(2, 40);
    arm(0, 30);
    loop_timer_cancel(tloop, &timers[0].t); /* cancelled: must never fire */
    loop_timer_cancel(tloop, &timers[0].t); /* cancelling twice is a no-op */
}

TEST(timers_in_order_not_early_and_cancel)
{
    CHECK_EQ_INT(loop_create(&tloop, 0, -1), 0);
    rd_timer first = {.fire = arm_all};
    nfired = early = 0;
    /* loop_timer_start needs the ring only for nothing: timers live in the heap. */
    loop_timer_start(tloop, &first, 0, 0);
    CHECK_EQ_INT(loop_run(tloop), 0);
    CHECK_EQ_INT(nfired, 3);
    CHECK_EQ_INT(fired[0], 1);
    CHECK_EQ_INT(fired[1], 2);
    CHECK_EQ_INT(fired[2], 3);
    CHECK_EQ_INT(early, 0);
    loop_destroy(tloop);
}

static rd_timer periodic;
static int ticks;
static uint64_t started_ns;

static void on_tick(rd_timer *t)
{
    if (++ticks == 5) {
        loop_timer_cancel(tloop, t);
        loop_stop(tloop, rd_now_ns() + 1000 * MS);
    }
}

TEST(periodic_timer_ticks_until_cancelled)
{
    CHECK_EQ_INT(loop_create(&tloop, 0, -1), 0);
    ticks = 0;
    periodic.fire = on_tick;
    started_ns = rd_now_ns();
    loop_timer_start(tloop, &periodic, 10 * MS, 10 * MS);
    CHECK_EQ_INT(loop_run(tloop), 0);
    CHECK_EQ_INT(ticks, 5);
    CHECK(rd_now_ns() - started_ns >= 50 * MS);
    CHECK(!loop_timer_armed(&periodic));
    loop_destroy(tloop);
}

/* ---- cross-loop ping-pong between two actors on two loops ---- */

typedef struct pp {
    rd_actor *peer;
    atomic_long received;
    long limit;
} pp;

static int pp_handle(rd_actor *self, rd_msg *m)
{
    pp *s = self->state;
    long n = atomic_fetch_add(&s->received, 1) + 1;
    if (n < s->limit && s->peer != NULL) {
        rd_msg *r = msg_new(MSG_PING);
        msg_body(r, ping)->seq = msg_body(m, ping)->seq + 1;
        if (actor_send(s->peer, r) != 0)
            msg_free(r);
    }
    return RD_DONE;
}

static const rd_actor_def pp_def = {.name = "pingpong", .handle = pp_handle};

static int wait_for(atomic_long *v, long want, int timeout_ms)
{
    for (int i = 0; i < timeout_ms; i++) {
        if (atomic_load(v) >= want)
            return 1;
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    return atomic_load(v) >= want;
}

static void cross_loop(int force_eventfd)
{
    rd_loop *a, *b;
    CHECK_EQ_INT(loop_create(&a, 0, -1), 0);
    CHECK_EQ_INT(loop_create(&b, 1, -1), 0);
    if (force_eventfd) {
        loop_force_eventfd(a);
        loop_force_eventfd(b);
    }
    CHECK_EQ_INT(loop_start(a), 0);
    CHECK_EQ_INT(loop_start(b), 0);
    CHECK_EQ_INT(loop_uses_msg_ring(a), !force_eventfd);

    static pp sa, sb;
    sa = (pp){.limit = 2000};
    sb = (pp){.limit = 2000};
    rd_actor *x, *y;
    actor_spawn(a, &pp_def, &sa, &x);
    actor_spawn(b, &pp_def, &sb, &y);
    sa.peer = y;
    sb.peer = x;
    /* Each hop crosses loops while the other side sleeps: every one needs a wake. */
    rd_msg *m = msg_new(MSG_PING);
    CHECK_EQ_INT(actor_send(x, m), 0); /* from a thread that is no loop: eventfd */
    CHECK(wait_for(&sa.received, 1000, 5000));
    CHECK(wait_for(&sb.received, 1000, 5000));
    /* Some hop found the other loop asleep and woke it (which hop depends on the scheduler). */
    rd_loop_stats st, st2;
    loop_stats(a, &st);
    loop_stats(b, &st2);
    CHECK(st.wakes_sent + st2.wakes_sent > 0);
    CHECK(st.actor_runs > 0);

    uint64_t dl = rd_now_ns() + 1000 * MS;
    loop_stop(a, dl);
    loop_stop(b, dl);
    loop_join(a);
    loop_join(b);
    loop_destroy(a);
    loop_destroy(b);
    actor_free_all();
}

/* ---- hooks at the end of the turn ---- */

static char events[16];
static int nevents;
static rd_turn_hook hook_a, hook_b;
static rd_timer t_first, t_second, t_late;

static void note(char e)
{
    if (nevents < (int)sizeof(events) - 1)
        events[nevents++] = e;
}

static void hook_b_fn(rd_turn_hook *h)
{
    (void)h;
    note('b');
}

static void hook_a_fn(rd_turn_hook *h)
{
    (void)h;
    note('a');
    loop_at_turn_end(tloop, &hook_b); /* queued while hooks run: runs in the same pass */
}

static void first_fn(rd_timer *t)
{
    (void)t;
    note('1');
    loop_at_turn_end(tloop, &hook_a);
    loop_at_turn_end(tloop, &hook_a); /* already queued: once */
}

static void second_fn(rd_timer *t)
{
    (void)t;
    note('2');
    loop_at_turn_end(tloop, &hook_a); /* same turn: still once */
}

static void late_fn(rd_timer *t)
{
    (void)t;
    note('L');
    loop_at_turn_end(tloop, &hook_a); /* a later turn: runs again */
    loop_stop(tloop, rd_now_ns() + 1000 * MS);
}

static void arm_turn(rd_timer *t)
{
    (void)t;
    t_first.fire = first_fn;
    t_second.fire = second_fn;
    t_late.fire = late_fn;
    loop_timer_start(tloop, &t_first, 0, 0);
    loop_timer_start(tloop, &t_second, 0, 0);
    loop_timer_start(tloop, &t_late, 500 * MS, 0); /* far enough to be a later turn */
}

TEST(turn_end_hooks_run_once_per_turn_before_the_wait)
{
    CHECK_EQ_INT(loop_create(&tloop, 0, -1), 0);
    hook_a.fn = hook_a_fn;
    hook_b.fn = hook_b_fn;
    nevents = 0;
    static rd_timer kick = {.fire = arm_turn};
    loop_timer_start(tloop, &kick, 0, 0);
    CHECK_EQ_INT(loop_run(tloop), 0);
    events[nevents] = 0;
    /* Both timers of the first turn, then the hook once (and the one it queued), before the
     * loop slept until the late timer, whose turn runs the hook again. */
    CHECK_EQ_STR(events, "12abLab");
    loop_destroy(tloop);
}

TEST(cross_loop_wake_msg_ring)
{
    cross_loop(0);
}

TEST(cross_loop_wake_eventfd)
{
    cross_loop(1);
}

/* ---- a stream from an actor of one loop to an actor of another: outbox chains ---- */

#define STREAM 20000

typedef struct sink {
    atomic_long got;
    long out_of_order;
    uint64_t next;
} sink;

static int sink_handle(rd_actor *self, rd_msg *m)
{
    sink *s = self->state;
    if (msg_body(m, ping)->seq != s->next)
        s->out_of_order++;
    s->next = msg_body(m, ping)->seq + 1;
    atomic_fetch_add(&s->got, 1);
    return RD_DONE;
}

static const rd_actor_def sink_def = {.name = "sink", .handle = sink_handle, .mailbox_bound = 64};

typedef struct source {
    rd_actor *to;
    uint64_t seq;
    long refused;
} source;

static int source_handle(rd_actor *self, rd_msg *m)
{
    source *s = self->state;
    /* As many as the sink's bound lets through this turn, then the next turn. */
    while (s->seq < STREAM) {
        rd_msg *out = msg_new(MSG_PING);
        msg_body(out, ping)->seq = s->seq;
        int r = actor_send(s->to, out);
        if (r != 0) {
            CHECK_EQ_INT(r, -EAGAIN);
            msg_free(out);
            s->refused++;
            break;
        }
        s->seq++;
    }
    if (s->seq < STREAM && actor_send(self, m) == 0)
        return RD_KEPT;
    return RD_DONE;
}

static const rd_actor_def source_def = {.name = "source", .handle = source_handle};

TEST(cross_loop_stream_in_order_with_back_pressure)
{
    rd_loop *a, *b;
    CHECK_EQ_INT(loop_create(&a, 0, -1), 0);
    CHECK_EQ_INT(loop_create(&b, 1, -1), 0);
    CHECK_EQ_INT(loop_start(a), 0);
    CHECK_EQ_INT(loop_start(b), 0);
    static sink sk;
    static source so;
    sk = (sink){0};
    rd_actor *sa, *ra;
    actor_spawn(b, &sink_def, &sk, &sa);
    so = (source){.to = sa};
    actor_spawn(a, &source_def, &so, &ra);
    actor_send(ra, msg_new(MSG_PING));
    CHECK(wait_for(&sk.got, STREAM, 10000));
    CHECK_EQ_INT(atomic_load(&sk.got), STREAM);
    CHECK_EQ_INT(sk.out_of_order, 0);
    CHECK(so.refused > 0); /* a bound of 64 against 20000 sends: back-pressure was felt */
    uint64_t dl = rd_now_ns() + 1000 * MS;
    loop_stop(a, dl);
    loop_stop(b, dl);
    loop_join(a);
    loop_join(b);
    loop_destroy(a);
    loop_destroy(b);
    actor_free_all();
}

/* ---- stop drains in-flight I/O, up to the deadline ---- */

typedef struct sleeper {
    rd_op op;
    struct __kernel_timespec ts;
    int done;
    int res;
} sleeper;

static void sleeper_done(rd_op *op, int res, uint32_t flags)
{
    (void)flags;
    sleeper *s = (sleeper *)op;
    s->done = 1;
    s->res = res;
}

static sleeper sl;
static uint64_t stop_after_ns;

static void start_sleep(rd_timer *t)
{
    (void)t;
    sl.op.done = sleeper_done;
    struct io_uring_sqe *sqe = loop_sqe(tloop, &sl.op);
    io_uring_prep_timeout(sqe, &sl.ts, 0, 0);
    loop_stop(tloop, rd_now_ns() + stop_after_ns);
}

static uint64_t drain_case(uint64_t sleep_ms, uint64_t deadline_ms)
{
    CHECK_EQ_INT(loop_create(&tloop, 0, -1), 0);
    sl = (sleeper){.ts = {.tv_sec = 0, .tv_nsec = (long long)(sleep_ms * MS)}};
    stop_after_ns = deadline_ms * MS;
    rd_timer first = {.fire = start_sleep};
    loop_timer_start(tloop, &first, 0, 0);
    uint64_t t0 = rd_now_ns();
    CHECK_EQ_INT(loop_run(tloop), 0);
    uint64_t took = rd_now_ns() - t0;
    loop_destroy(tloop);
    return took;
}

TEST(stop_drains_in_flight_io)
{
    uint64_t took = drain_case(100, 2000);
    CHECK_EQ_INT(sl.done, 1);
    CHECK_EQ_INT(sl.res, -ETIME); /* the 100 ms timeout op ran to its end */
    CHECK(took >= 100 * MS);
    CHECK(took < 1500 * MS); /* and the loop left as soon as it had */
}

TEST(stop_gives_up_at_deadline)
{
    uint64_t took = drain_case(5000, 100);
    CHECK_EQ_INT(sl.done, 0);
    CHECK(took >= 100 * MS);
    CHECK(took < 2000 * MS);
}

int main(void)
{
    RUN(timers_in_order_not_early_and_cancel);
    RUN(periodic_timer_ticks_until_cancelled);
    RUN(turn_end_hooks_run_once_per_turn_before_the_wait);
    RUN(cross_loop_wake_msg_ring);
    RUN(cross_loop_wake_eventfd);
    RUN(cross_loop_stream_in_order_with_back_pressure);
    RUN(stop_drains_in_flight_io);
    RUN(stop_gives_up_at_deadline);
    return test_summary();
}
