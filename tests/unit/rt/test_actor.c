/* Actors: request/reply, the timeout path and a late reply, a stopping loop that waits for its
 * requests' answers and cancels what is left at its deadline, supervisor restarts without losing
 * mail, back-pressure from a full mailbox, stop, a thread actor that blocks, one that waits in
 * its handler for a wake or mail, a stop during a thread actor's restart back-off, and sends
 * between actors of one loop (their local lists): order, bound, a restart, a stop behind them. */
#include <errno.h>
#include <semaphore.h>
#include <stdlib.h>
#include <time.h>

#include "src/rt/actor.h"
#include "src/rt/loop.h"
#include "tests/unit/test.h"

#define MS 1000000ull

enum { ASK_ECHO = 0, ASK_IGNORE = 1, ASK_FAIL = 2, ASK_LATE = 3 };

typedef struct server {
    atomic_int inits, finis, handled;
    rd_timer late;
    rd_msg *late_req;
    rd_loop *loop;
} server;

static void late_reply(rd_timer *t)
{
    server *s = (server *)(void *)((char *)t - offsetof(server, late));
    rd_msg *r = msg_new(MSG_PONG);
    if (actor_reply(s->late_req, r) != 0)
        msg_free(r);
    msg_free(s->late_req);
    s->late_req = NULL;
}

static int server_init(rd_actor *self, void *arg)
{
    server *s = arg;
    atomic_fetch_add(&s->inits, 1);
    self->state = s;
    return 0;
}

static void server_fini(rd_actor *self)
{
    server *s = self->state;
    atomic_fetch_add(&s->finis, 1);
}

static int server_handle(rd_actor *self, rd_msg *m)
{
    server *s = self->state;
    struct rd_msg_ping *p = msg_body(m, ping);
    switch (p->producer) {
    case ASK_ECHO: {
        rd_msg *r = msg_new(MSG_PONG);
        msg_body(r, ping)->seq = p->seq + 1;
        if (actor_reply(m, r) != 0)
            msg_free(r);
        break;
    }
    case ASK_FAIL:
        return -EIO;
    case ASK_LATE:
        s->late_req = m;
        s->late.fire = late_reply;
        loop_timer_start(s->loop, &s->late, 100 * MS, 0);
        atomic_fetch_add(&s->handled, 1);
        return RD_KEPT;
    default:
        break;
    }
    atomic_fetch_add(&s->handled, 1);
    return RD_DONE;
}

static const rd_actor_def server_def = {
    .name = "server", .init = server_init, .handle = server_handle, .fini = server_fini};

typedef struct client {
    rd_actor *server;
    atomic_int replies, timeouts, cancels;
    int timeout_ms; /* a request's; 0: 50 */
    atomic_ulong last_seq;
    atomic_ulong timeout_after_ns;
    uint64_t asked_ns;
} client;

static int on_reply(rd_actor *self, rd_msg *reply, int err, void *ctx)
{
    client *c = self->state;
    (void)ctx;
    if (err == -ETIMEDOUT) {
        atomic_store(&c->timeout_after_ns, rd_now_ns() - c->asked_ns);
        atomic_fetch_add(&c->timeouts, 1);
        return 0;
    }
    if (err == -ECANCELED) {
        atomic_fetch_add(&c->cancels, 1);
        return 0;
    }
    if (err == 0 && reply->type == MSG_PONG && (reply->flags & RD_MSG_REPLY)) {
        atomic_store(&c->last_seq, msg_body(reply, ping)->seq);
        atomic_fetch_add(&c->replies, 1);
    }
    msg_free(reply);
    return 0;
}

static int client_handle(rd_actor *self, rd_msg *m)
{
    client *c = self->state;
    /* Forward the test's message as a request; 50 ms to answer unless the test says. A
     * request's timeout counts from the loop turn's clock (loop_timer_start_coarse). */
    c->asked_ns = rd_turn_ns();
    int r = actor_request(self, c->server, m, c->timeout_ms > 0 ? (uint32_t)c->timeout_ms : 50,
                          on_reply, NULL);
    return r == 0 ? RD_KEPT : r;
}

static const rd_actor_def client_def = {.name = "client", .handle = client_handle};

static int wait_int(atomic_int *v, int want, int timeout_ms)
{
    for (int i = 0; i < timeout_ms && atomic_load(v) < want; i++) {
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    return atomic_load(v) >= want;
}

static rd_msg *ask(int what, uint64_t seq)
{
    rd_msg *m = msg_new(MSG_PING);
    msg_body(m, ping)->producer = (uint32_t)what;
    msg_body(m, ping)->seq = seq;
    return m;
}

static rd_loop *loop;
static server srv;
static client cli;
static rd_actor *sa, *ca;

static void setup(void)
{
    loop_create(&loop, 0, -1);
    loop_start(loop);
    memset(&srv, 0, sizeof(srv));
    memset(&cli, 0, sizeof(cli));
    srv.loop = loop;
    actor_spawn(loop, &server_def, &srv, &sa);
    cli.server = sa;
    actor_spawn(loop, &client_def, &cli, &ca);
}

static void teardown(void)
{
    loop_stop(loop, rd_now_ns() + 1000 * MS);
    loop_join(loop);
    loop_destroy(loop);
    actor_free_all();
}

TEST(request_reply)
{
    setup();
    CHECK_EQ_INT(actor_send(ca, ask(ASK_ECHO, 41)), 0);
    CHECK(wait_int(&cli.replies, 1, 2000));
    CHECK_EQ_INT(atomic_load(&cli.last_seq), 42);
    CHECK_EQ_INT(atomic_load(&cli.timeouts), 0);
    teardown();
}

TEST(request_timeout_then_late_reply_dropped)
{
    setup();
    CHECK_EQ_INT(actor_send(ca, ask(ASK_IGNORE, 1)), 0);
    CHECK(wait_int(&cli.timeouts, 1, 2000));
    CHECK(atomic_load(&cli.timeout_after_ns) >= 50 * MS); /* never early by its turn's clock */
    CHECK_EQ_INT(atomic_load(&cli.replies), 0);

    CHECK_EQ_INT(actor_send(ca, ask(ASK_LATE, 1)), 0); /* answered after 100 ms */
    CHECK(wait_int(&cli.timeouts, 2, 2000));
    struct timespec ts = {0, 150 * 1000000};
    nanosleep(&ts, NULL); /* the late reply arrives and is dropped, not delivered */
    CHECK_EQ_INT(atomic_load(&cli.replies), 0);
    CHECK_EQ_INT(atomic_load(&cli.timeouts), 2);
    teardown();
}

/* A loop asked to stop keeps turning while a request of its actors awaits its answer (a chain
 * waiting on a store, say), and delivers it. */
TEST(stop_waits_for_an_answer)
{
    setup();
    cli.timeout_ms = 5000;
    CHECK_EQ_INT(actor_send(ca, ask(ASK_LATE, 1)), 0); /* answered after 100 ms */
    CHECK(wait_int(&srv.handled, 1, 2000));
    loop_stop(loop, rd_now_ns() + 3000 * MS);
    loop_join(loop);
    CHECK_EQ_INT(atomic_load(&cli.replies), 1);
    CHECK_EQ_INT(atomic_load(&cli.cancels), 0);
    /* The loop has ended: mail for its actors is refused, not left where nothing reads it. */
    rd_msg *late = ask(ASK_ECHO, 1);
    CHECK_EQ_INT(actor_send(sa, late), -EPIPE);
    msg_free(late);
    loop_destroy(loop);
    actor_free_all();
}

/* What no answer came for by the stop's deadline gets -ECANCELED on the loop's thread before
 * loop_run returns: the callback frees what it holds (a leak under ASan otherwise). */
TEST(stop_cancels_what_is_unanswered_at_the_deadline)
{
    setup();
    cli.timeout_ms = 60000;
    CHECK_EQ_INT(actor_send(ca, ask(ASK_IGNORE, 1)), 0);
    CHECK(wait_int(&srv.handled, 1, 2000));
    loop_stop(loop, rd_now_ns() + 100 * MS);
    loop_join(loop);
    CHECK_EQ_INT(atomic_load(&cli.cancels), 1);
    CHECK_EQ_INT(atomic_load(&cli.replies), 0);
    CHECK_EQ_INT(atomic_load(&cli.timeouts), 0);
    loop_destroy(loop);
    actor_free_all();
}

TEST(supervisor_restarts_and_keeps_mail)
{
    setup();
    CHECK(wait_int(&srv.inits, 1, 2000));
    CHECK_EQ_INT(actor_send(sa, ask(ASK_FAIL, 0)), 0);
    /* Sent right behind the failure: they wait through the backoff, none is lost. */
    for (int i = 0; i < 10; i++)
        CHECK_EQ_INT(actor_send(sa, ask(ASK_IGNORE, (uint64_t)i)), 0);
    CHECK(wait_int(&srv.handled, 10, 3000));
    CHECK_EQ_INT(atomic_load(&srv.inits), 2);
    CHECK_EQ_INT(atomic_load(&srv.finis), 1);
    CHECK_EQ_INT(atomic_load(&sa->restarts), 1);
    /* And it still answers requests. */
    CHECK_EQ_INT(actor_send(ca, ask(ASK_ECHO, 1)), 0);
    CHECK(wait_int(&cli.replies, 1, 2000));
    teardown();
}

TEST(stop_runs_fini_and_refuses_mail)
{
    setup();
    CHECK(wait_int(&srv.inits, 1, 2000));
    actor_stop(sa);
    CHECK(wait_int(&srv.finis, 1, 2000));
    rd_msg *m = ask(ASK_ECHO, 0);
    CHECK_EQ_INT(actor_send(sa, m), -EPIPE);
    msg_free(m);
    teardown();
}

/* ---- a thread actor that blocks, and back-pressure from its full mailbox ---- */

static sem_t gate;
static atomic_int blocked_handled;

static int blocker_handle(rd_actor *self, rd_msg *m)
{
    (void)self;
    (void)m;
    sem_wait(&gate); /* a thread actor may block: nothing else runs on its thread */
    atomic_fetch_add(&blocked_handled, 1);
    return RD_DONE;
}

static const rd_actor_def blocker_def = {
    .name = "blocker", .handle = blocker_handle, .mailbox_bound = 4};

TEST(thread_actor_blocks_and_full_mailbox_pushes_back)
{
    sem_init(&gate, 0, 0);
    atomic_store(&blocked_handled, 0);
    rd_actor *b;
    CHECK_EQ_INT(actor_spawn_thread(&blocker_def, NULL, -1, &b), 0);
    int accepted = 0, refused = 0;
    for (int i = 0; i < 10; i++) {
        rd_msg *m = ask(ASK_ECHO, (uint64_t)i);
        int r = actor_send(b, m);
        if (r == 0)
            accepted++;
        else {
            CHECK_EQ_INT(r, -EAGAIN);
            msg_free(m);
            refused++;
        }
    }
    CHECK_EQ_INT(accepted, 4);
    CHECK_EQ_INT(refused, 6);
    for (int i = 0; i < accepted; i++)
        sem_post(&gate);
    CHECK(wait_int(&blocked_handled, 4, 2000));
    /* Drained: it takes mail again. */
    for (int i = 0; i < 100 && mailbox_depth(&b->mbox) > 0; i++) {
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    rd_msg *m = ask(ASK_ECHO, 99);
    CHECK_EQ_INT(actor_send(b, m), 0);
    sem_post(&gate);
    CHECK(wait_int(&blocked_handled, 5, 2000));
    actor_stop(b);
    actor_join(b);
    actor_free_all();
    sem_destroy(&gate);
}

/* actor_send_wait: a full mailbox makes the sender wait, without polling, until the consumer
 * makes room; past its deadline the message is still the sender's. */
TEST(send_wait_blocks_until_room_then_times_out)
{
    sem_init(&gate, 0, 0);
    atomic_store(&blocked_handled, 0);
    rd_actor *b;
    CHECK_EQ_INT(actor_spawn_thread(&blocker_def, NULL, -1, &b), 0);
    for (int i = 0; i < 4; i++)
        CHECK_EQ_INT(actor_send(b, ask(ASK_ECHO, (uint64_t)i)), 0);
    rd_msg *m = ask(ASK_ECHO, 4);
    uint64_t t0 = rd_now_ns();
    CHECK_EQ_INT(actor_send_wait(b, m, 100), -EAGAIN); /* full for 100 ms: still ours */
    CHECK(rd_now_ns() - t0 >= 90000000ull);
    /* The blocker finishes its batch (depth is counted down per batch): room. */
    for (int i = 0; i < 4; i++)
        sem_post(&gate);
    t0 = rd_now_ns();
    int r = actor_send_wait(b, m, 5000);
    CHECK_EQ_INT(r, 0);
    if (r != 0)
        msg_free(m);
    CHECK(rd_now_ns() - t0 < 2000000000ull); /* woken, not timed out */
    sem_post(&gate);
    CHECK(wait_int(&blocked_handled, 5, 2000));
    actor_stop(b);
    actor_join(b);
    actor_free_all();
    sem_destroy(&gate);
}

/* A thread actor's tick: called on its own thread while it is idle, and between messages
 * while mail keeps coming, never during one. */
static atomic_int ticks, tick_in_handle, in_handle, ticked_handled;

static void ticker_tick(rd_actor *self)
{
    (void)self;
    if (atomic_load(&in_handle))
        atomic_store(&tick_in_handle, 1);
    atomic_fetch_add(&ticks, 1);
}

static int ticker_handle(rd_actor *self, rd_msg *m)
{
    (void)self;
    (void)m;
    atomic_store(&in_handle, 1);
    struct timespec ts = {0, 2000000};
    nanosleep(&ts, NULL);
    atomic_store(&in_handle, 0);
    atomic_fetch_add(&ticked_handled, 1);
    return RD_DONE;
}

static const rd_actor_def ticker_def = {
    .name = "ticker", .handle = ticker_handle, .tick = ticker_tick, .tick_ms = 20};

TEST(thread_actor_ticks_idle_and_between_messages)
{
    atomic_store(&ticks, 0);
    atomic_store(&ticked_handled, 0);
    rd_actor *t;
    CHECK_EQ_INT(actor_spawn_thread(&ticker_def, NULL, -1, &t), 0);
    CHECK(wait_int(&ticks, 3, 2000)); /* idle: nothing sent */
    int before = atomic_load(&ticks);
    for (int i = 0; i < 150; i++) { /* ~300 ms of steady mail: many ticks due, even loaded */
        rd_msg *m = ask(ASK_ECHO, (uint64_t)i);
        if (actor_send(t, m) < 0)
            msg_free(m);
        struct timespec ts = {0, 2000000};
        nanosleep(&ts, NULL);
    }
    CHECK(atomic_load(&ticks) >= before + 1);
    CHECK_EQ_INT(atomic_load(&tick_in_handle), 0);
    actor_stop(t);
    actor_join(t);
    actor_free_all();
}

/* actor_wait / actor_wake: a thread actor's handler that handed work to another thread sleeps
 * on its eventfd. Not taking mail, a send does not end the wait and a wake does; without a wake
 * the wait ends at its timeout; taking mail, what is queued comes at once and the next send
 * ends the wait. */
static sem_t waiter_phase;
static atomic_int waiter_woken, waiter_early, waiter_got, waiter_timed_out;

static int waiter_handle(rd_actor *self, rd_msg *m)
{
    (void)m;
    actor_wait(self, 0, 0); /* drains a wake left by the send that woke the thread */
    sem_post(&waiter_phase);
    for (;;) {
        actor_wait(self, 0, -1);
        if (atomic_load(&waiter_woken))
            break;
        atomic_fetch_add(&waiter_early, 1);
    }
    uint64_t t0 = rd_now_ns();
    actor_wait(self, 0, 30);
    if (rd_now_ns() - t0 >= 25 * MS)
        atomic_store(&waiter_timed_out, 1);
    int posted = 0;
    while (atomic_load(&waiter_got) < 2) {
        rd_msg *in = actor_try_receive(self);
        if (in != NULL) {
            msg_free(in);
            atomic_fetch_add(&waiter_got, 1);
            continue;
        }
        if (!posted) {
            posted = 1;
            sem_post(&waiter_phase);
        }
        actor_wait(self, 1, -1);
    }
    return RD_DONE;
}

static const rd_actor_def waiter_def = {.name = "waiter", .handle = waiter_handle};

TEST(thread_actor_waits_for_a_wake_or_mail)
{
    sem_init(&waiter_phase, 0, 0);
    rd_actor *w;
    CHECK_EQ_INT(actor_spawn_thread(&waiter_def, NULL, -1, &w), 0);
    CHECK_EQ_INT(actor_send(w, ask(ASK_ECHO, 1)), 0);
    sem_wait(&waiter_phase); /* waiting, not taking mail */
    CHECK_EQ_INT(actor_send(w, ask(ASK_ECHO, 2)), 0);
    struct timespec ts = {0, 50000000};
    nanosleep(&ts, NULL);
    CHECK_EQ_INT(atomic_load(&waiter_early), 0); /* the send did not end the wait */
    atomic_store(&waiter_woken, 1);
    actor_wake(w);
    sem_wait(&waiter_phase); /* took message 2, now waits for mail */
    CHECK_EQ_INT(atomic_load(&waiter_got), 1);
    CHECK_EQ_INT(atomic_load(&waiter_timed_out), 1);
    nanosleep(&ts, NULL);
    CHECK_EQ_INT(atomic_load(&waiter_got), 1);
    CHECK_EQ_INT(actor_send(w, ask(ASK_ECHO, 3)), 0);
    CHECK(wait_int(&waiter_got, 2, 2000)); /* woken by the send (it waits with no timeout) */
    actor_stop(w);
    actor_join(w);
    actor_free_all();
    sem_destroy(&waiter_phase);
}

/* A thread actor waits out its restart back-off on its own thread; a stop ends the wait, and
 * an actor whose init keeps failing still stops (its STOP would otherwise never be reached). */
static atomic_int failing_inits;

static int failing_init(rd_actor *self, void *arg)
{
    (void)self;
    (void)arg;
    atomic_fetch_add(&failing_inits, 1);
    return -EIO;
}

static int failing_handle(rd_actor *self, rd_msg *m)
{
    (void)self;
    (void)m;
    return RD_DONE;
}

static const rd_actor_def failing_def = {
    .name = "failing", .init = failing_init, .handle = failing_handle};

TEST(stop_ends_a_thread_actors_restart_backoff)
{
    atomic_store(&failing_inits, 0);
    rd_actor *f;
    CHECK_EQ_INT(actor_spawn_thread(&failing_def, NULL, -1, &f), 0);
    CHECK(wait_int(&failing_inits, 5, 2000)); /* 10+20+40+80 ms; now 160 ms more */
    int before = atomic_load(&failing_inits);
    actor_stop(f);
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += 2;
    int r = pthread_timedjoin_np(f->thread, NULL, &deadline);
    CHECK_EQ_INT(r, 0);
    if (r != 0)
        return; /* still running: leave it */
    /* The stop ended the back-off: init was not tried again (the old sleep tried it, and then
     * every back-off after, for ever, and the join above never returned). */
    CHECK(atomic_load(&failing_inits) <= before + 1);
    rd_msg *m = ask(ASK_ECHO, 1);
    CHECK_EQ_INT(actor_send(f, m), -EPIPE); /* stopped: the message is still ours */
    msg_free(m);
    actor_free_all();
}

/* ---- sends within one loop: the local list ---- */

enum { RELAY_BURST = 0, RELAY_FAIL_THEN = 1, RELAY_THEN_STOP = 2 };

typedef struct relay {
    rd_actor *to;
    uint64_t numbered; /* messages the target took, numbered in the order sent */
    atomic_int accepted, refused, done;
} relay;

/* Sends, from the loop, what the test's message asks: `seq` numbered messages in one handler,
 * after a failure of the target, or followed by a stop of it. */
static int relay_handle(rd_actor *self, rd_msg *m)
{
    relay *r = self->state;
    struct rd_msg_ping *p = msg_body(m, ping);
    if (p->producer == RELAY_FAIL_THEN && actor_send(r->to, ask(ASK_FAIL, 0)) != 0)
        atomic_fetch_add(&r->refused, 1);
    for (uint64_t i = 0; i < p->seq; i++) {
        rd_msg *x = ask(ASK_IGNORE, i);
        msg_body(x, ping)->sent_ns = r->numbered;
        if (actor_send(r->to, x) == 0) {
            r->numbered++;
            atomic_fetch_add(&r->accepted, 1);
        } else {
            atomic_fetch_add(&r->refused, 1);
            msg_free(x);
        }
    }
    if (p->producer == RELAY_THEN_STOP)
        actor_stop(r->to);
    atomic_fetch_add(&r->done, 1);
    return RD_DONE;
}

static const rd_actor_def relay_def = {.name = "relay", .handle = relay_handle};

typedef struct sink {
    atomic_int got, out_of_order, inits, finis;
    uint64_t next;
} sink;

static int sink_init(rd_actor *self, void *arg)
{
    sink *k = arg;
    atomic_fetch_add(&k->inits, 1);
    self->state = k;
    return 0;
}

static int sink_handle(rd_actor *self, rd_msg *m)
{
    sink *k = self->state;
    if (msg_body(m, ping)->producer == ASK_FAIL)
        return -EIO;
    if (msg_body(m, ping)->sent_ns != k->next)
        atomic_fetch_add(&k->out_of_order, 1);
    k->next = msg_body(m, ping)->sent_ns + 1;
    atomic_fetch_add(&k->got, 1);
    return RD_DONE;
}

static void sink_fini(rd_actor *self)
{
    sink *k = self->state;
    atomic_fetch_add(&k->finis, 1);
}

static const rd_actor_def small_sink_def = {.name = "sink",
                                            .init = sink_init,
                                            .handle = sink_handle,
                                            .fini = sink_fini,
                                            .mailbox_bound = 8};
static const rd_actor_def sink_def = {
    .name = "sink", .init = sink_init, .handle = sink_handle, .fini = sink_fini};

static rd_loop *lp;
static relay rl;
static sink sk;
static rd_actor *ra, *ka;

static void local_setup(const rd_actor_def *sink_of)
{
    loop_create(&lp, 0, -1);
    loop_start(lp);
    memset(&rl, 0, sizeof(rl));
    memset(&sk, 0, sizeof(sk));
    actor_spawn(lp, sink_of, &sk, &ka);
    rl.to = ka;
    actor_spawn(lp, &relay_def, &rl, &ra);
}

static void local_teardown(void)
{
    loop_stop(lp, rd_now_ns() + 1000 * MS);
    loop_join(lp);
    loop_destroy(lp);
    actor_free_all();
}

TEST(sends_within_a_loop_keep_the_bound)
{
    local_setup(&small_sink_def);
    /* 20 sent in one handler: the sink cannot run meanwhile, so its bound (8) refuses 12. */
    CHECK_EQ_INT(actor_send(ra, ask(RELAY_BURST, 20)), 0);
    CHECK(wait_int(&rl.done, 1, 2000));
    CHECK_EQ_INT(atomic_load(&rl.accepted), 8);
    CHECK_EQ_INT(atomic_load(&rl.refused), 12);
    CHECK(wait_int(&sk.got, 8, 2000));
    CHECK_EQ_INT(atomic_load(&sk.out_of_order), 0);
    local_teardown();
}

TEST(sends_within_a_loop_keep_their_order_past_a_batch)
{
    local_setup(&sink_def);
    /* 300 in one handler: the sink takes them in batches of 64, run again until done. */
    CHECK_EQ_INT(actor_send(ra, ask(RELAY_BURST, 300)), 0);
    CHECK(wait_int(&sk.got, 300, 2000));
    CHECK_EQ_INT(atomic_load(&rl.refused), 0);
    CHECK_EQ_INT(atomic_load(&sk.out_of_order), 0);
    CHECK_EQ_INT(atomic_load(&sk.got), 300);
    local_teardown();
}

TEST(sends_within_a_loop_wait_through_a_restart)
{
    local_setup(&sink_def);
    CHECK(wait_int(&sk.inits, 1, 2000));
    /* A failure, then 10 behind it on the local list: they wait for the restart, none lost. */
    CHECK_EQ_INT(actor_send(ra, ask(RELAY_FAIL_THEN, 10)), 0);
    CHECK(wait_int(&sk.got, 10, 3000));
    CHECK_EQ_INT(atomic_load(&sk.got), 10);
    CHECK_EQ_INT(atomic_load(&sk.out_of_order), 0);
    CHECK_EQ_INT(atomic_load(&sk.inits), 2);
    CHECK_EQ_INT(atomic_load(&ka->restarts), 1);
    local_teardown();
}

TEST(a_stop_from_the_same_loop_comes_after_what_was_sent_before_it)
{
    local_setup(&sink_def);
    CHECK(wait_int(&sk.inits, 1, 2000));
    CHECK_EQ_INT(actor_send(ra, ask(RELAY_THEN_STOP, 5)), 0);
    CHECK(wait_int(&sk.finis, 1, 2000));
    CHECK_EQ_INT(atomic_load(&sk.got), 5); /* handled, then stopped */
    rd_msg *m = ask(ASK_IGNORE, 0);
    CHECK_EQ_INT(actor_send(ka, m), -EPIPE);
    msg_free(m);
    local_teardown();
}

/* An actor that mails itself for as long as `spinning` is set: its loop's local list is never
 * empty. */
static atomic_int spinning, spins;

static int spinner_handle(rd_actor *self, rd_msg *m)
{
    atomic_fetch_add(&spins, 1);
    if (atomic_load(&spinning) && actor_send(self, m) == 0)
        return RD_KEPT;
    return RD_DONE;
}

static const rd_actor_def spinner_def = {.name = "spinner", .handle = spinner_handle};

TEST(a_loops_own_traffic_does_not_starve_mail_from_other_threads)
{
    local_setup(&sink_def);
    rd_actor *sp;
    atomic_store(&spinning, 1);
    atomic_store(&spins, 0);
    actor_spawn(lp, &spinner_def, NULL, &sp);
    CHECK_EQ_INT(actor_send(sp, ask(ASK_IGNORE, 0)), 0);
    CHECK(wait_int(&spins, 1000, 2000));
    /* From this thread, through the sink's mailbox, while the spinner keeps the local list full. */
    CHECK_EQ_INT(actor_send(ka, ask(ASK_IGNORE, 0)), 0);
    CHECK(wait_int(&sk.got, 1, 1000));
    atomic_store(&spinning, 0);
    local_teardown();
}

/* A loop actor that blocks its loop until the test lets it go. */
static sem_t loop_gate;

static int holder_handle(rd_actor *self, rd_msg *m)
{
    (void)self;
    (void)m;
    sem_wait(&loop_gate);
    return RD_DONE;
}

static const rd_actor_def holder_def = {.name = "holder", .handle = holder_handle};

TEST(a_stop_from_the_loop_comes_after_mail_other_threads_sent_before_it)
{
    local_setup(&sink_def);
    CHECK(wait_int(&sk.inits, 1, 2000));
    sem_init(&loop_gate, 0, 0);
    rd_actor *h;
    actor_spawn(lp, &holder_def, NULL, &h);
    CHECK_EQ_INT(actor_send(h, ask(ASK_IGNORE, 0)), 0); /* the loop waits in the holder */
    /* The relay's stop is queued first, the five after it, all while the loop waits: the relay
     * runs first and stops the sink, after the five were sent. */
    CHECK_EQ_INT(actor_send(ra, ask(RELAY_THEN_STOP, 0)), 0);
    for (uint64_t i = 0; i < 5; i++) {
        rd_msg *m = ask(ASK_IGNORE, i);
        msg_body(m, ping)->sent_ns = i;
        CHECK_EQ_INT(actor_send(ka, m), 0);
    }
    sem_post(&loop_gate);
    CHECK(wait_int(&sk.finis, 1, 2000));
    CHECK_EQ_INT(atomic_load(&sk.got), 5); /* handled, then stopped */
    CHECK_EQ_INT(atomic_load(&sk.out_of_order), 0);
    local_teardown();
    sem_destroy(&loop_gate);
}

int main(void)
{
    RUN(request_reply);
    RUN(request_timeout_then_late_reply_dropped);
    RUN(stop_waits_for_an_answer);
    RUN(stop_cancels_what_is_unanswered_at_the_deadline);
    RUN(supervisor_restarts_and_keeps_mail);
    RUN(stop_runs_fini_and_refuses_mail);
    RUN(thread_actor_blocks_and_full_mailbox_pushes_back);
    RUN(thread_actor_ticks_idle_and_between_messages);
    RUN(send_wait_blocks_until_room_then_times_out);
    RUN(thread_actor_waits_for_a_wake_or_mail);
    RUN(stop_ends_a_thread_actors_restart_backoff);
    RUN(sends_within_a_loop_keep_the_bound);
    RUN(sends_within_a_loop_keep_their_order_past_a_batch);
    RUN(sends_within_a_loop_wait_through_a_restart);
    RUN(a_stop_from_the_same_loop_comes_after_what_was_sent_before_it);
    RUN(a_loops_own_traffic_does_not_starve_mail_from_other_threads);
    RUN(a_stop_from_the_loop_comes_after_mail_other_threads_sent_before_it);
    return test_summary();
}
