/* The event loop: one thread, one io_uring, the actors that live on it.
 *
 * owns:  its io_uring (created SINGLE_ISSUER|DEFER_TASKRUN when the kernel allows, so only the
 *        loop's own thread submits), its timer heap, its ready queue of actors, its local
 *        ready list (actors with mail from this loop's own actors), an eventfd.
 * takes: actors to run (loop_schedule, from any thread; loop_schedule_local, from its own
 *        thread), wake-ups (IORING_OP_MSG_RING from
 *        another loop, an eventfd write from any other thread), a stop request.
 * does:  runs ready actors in bounded batches, fires due timers, runs the turn's end hooks,
 *        submits and reaps I/O. A completion's user data is the rd_op that asked:
 *        `op->done(op, res, flags)`.
 * never: blocks in anything but io_uring_enter; runs an actor of another loop; lets one actor
 *        starve the others (each run is bounded).
 *
 * All functions are for the loop's own thread unless they say "any thread". */
#ifndef REELD_RT_LOOP_H
#define REELD_RT_LOOP_H

#include <liburing.h>
#include <stdatomic.h>
#include <stdint.h>

struct rd_actor;
struct rd_msg;
typedef struct rd_loop rd_loop;

/* An I/O operation in flight. Embed it in the struct that owns the operation. `res` is the
 * completion's result (>= 0 or -errno), `flags` its CQE flags (IORING_CQE_F_MORE, ...). */
typedef struct rd_op rd_op;
struct rd_op {
    void (*done)(rd_op *op, int res, uint32_t flags);
};

/* A timer. Embed it; it must stay valid while armed. */
typedef struct rd_timer rd_timer;
struct rd_timer {
    void (*fire)(rd_timer *t); /* called on the loop thread; may re-arm or cancel */
    uint64_t deadline_ns;      /* monotonic */
    uint64_t period_ns;        /* 0: one-shot */
    uint32_t slot;             /* position in the heap + 1; 0 when not armed */
};

/* Hook called once on the loop thread when the loop begins to stop (stop accepting, ...). */
typedef struct rd_stop_hook rd_stop_hook;
struct rd_stop_hook {
    void (*fn)(rd_stop_hook *hook, rd_loop *loop);
    rd_stop_hook *next;
};

/* Work deferred to the end of the turn (loop_at_turn_end). Embed it; it must stay valid while
 * queued. */
typedef struct rd_turn_hook rd_turn_hook;
struct rd_turn_hook {
    void (*fn)(rd_turn_hook *hook); /* on the loop thread */
    rd_turn_hook *next;
    int queued;
};

typedef struct rd_loop_stats {
    uint64_t busy_ns;    /* time spent outside io_uring_enter waits */
    uint64_t iterations; /* turns of the loop */
    uint64_t wakes_sent; /* MSG_RING or eventfd wakes this loop sent to others */
    uint64_t actor_runs; /* batches run */
    uint64_t sqes;       /* operations queued for the kernel (loop_sqe) */
} rd_loop_stats;

/* Monotonic clock in nanoseconds. */
uint64_t rd_now_ns(void);
/* rd_now_ns as the calling loop read it when its wait for completions ended, which is where
 * its turn begins (behind the true time by at most what one turn takes); the clock itself off
 * a loop thread.
 * For the per-request stamps of a hot path (idle and header clocks, durations), where a clock
 * read per stamp was several per cent of a small request's CPU; a timer's deadline takes the
 * true time (loop_timer_start), so it never fires early. */
uint64_t rd_turn_ns(void);
/* Wall clock in milliseconds since the epoch (timestamps that other nodes and stores compare:
 * event times, link lifetimes). Any thread. */
int64_t rd_wall_ms(void);

/* Creates loop number `index`, to be pinned to `cpu` (-1: not pinned). The ring itself is set
 * up by the thread that runs the loop. Returns 0 or -errno. */
int loop_create(rd_loop **out, int index, int cpu);
/* Frees a loop that is not running. NULL is a no-op. */
void loop_destroy(rd_loop *loop);

/* Starts a thread running the loop; returns once its ring is ready. 0 or -errno. */
int loop_start(rd_loop *loop);
/* Runs the loop on the calling thread until it has stopped. 0 or -errno (ring setup). */
int loop_run(rd_loop *loop);
/* Waits for a loop started with loop_start to finish. */
void loop_join(rd_loop *loop);

/* Any thread: begin a graceful stop. Stop hooks run, then the loop keeps turning until no
 * operation is in flight, no request of its actors awaits an answer and no actor is ready, or
 * until `deadline_ns` (monotonic) passes. Requests still unanswered then are cancelled on the
 * loop's thread (their callbacks get -ECANCELED) before loop_run returns, so whatever they
 * hold is freed by its owner. */
void loop_stop(rd_loop *loop, uint64_t deadline_ns);
void loop_on_stop(rd_loop *loop, rd_stop_hook *hook);
int loop_stopping(const rd_loop *loop);
/* Any thread: 1 once loop_run has left its turns (actor_send then refuses its actors' mail
 * with -EPIPE, so a request to one fails at once instead of waiting for its timeout). */
int loop_ended(const rd_loop *loop);
/* Work of the loop's actors that is no io_uring operation (a request to another actor, whose
 * answer comes through a mailbox): a stopping loop waits for it as for its I/O. */
void loop_hold(rd_loop *loop);
void loop_release(rd_loop *loop);

/* The loop that runs on the calling thread, or NULL, and its index (-1: none). Thread-local
 * variables read in place: the per-request paths (metrics cells, message pools) ask for them
 * several times a request, and a call each was a visible share of a cached playlist's time. */
extern _Thread_local rd_loop *rd_loop_here;
extern _Thread_local int rd_loop_here_index;
static inline rd_loop *loop_current(void)
{
    return rd_loop_here;
}
int loop_index(const rd_loop *loop);
struct io_uring *loop_ring(rd_loop *loop);
/* 1 when wakes travel by IORING_OP_MSG_RING, 0 when by eventfd. */
int loop_uses_msg_ring(const rd_loop *loop);
/* Forces the eventfd wake path (benchmarks compare the two). Before loop_start only. */
void loop_force_eventfd(rd_loop *loop);

/* An SQE whose completion will call op->done. The operation counts as in flight until a
 * completion without IORING_CQE_F_MORE arrives. Submitted at the end of the turn. */
struct io_uring_sqe *loop_sqe(rd_loop *loop, rd_op *op);

/* Arms `t` to fire after `after_ns`, then every `period_ns` if non-zero. Re-arming an armed
 * timer moves it. */
void loop_timer_start(rd_loop *loop, rd_timer *t, uint64_t after_ns, uint64_t period_ns);
/* loop_timer_start for a one-shot timeout armed on a hot path (a request's answer awaited):
 * `after_ns` counts from the turn's clock (rd_turn_ns), so it may fire up to one turn early,
 * never late. For timeouts of seconds, where that is nothing and a clock read per request was
 * half a per cent of a small request's CPU. Called on the loop's own thread. */
void loop_timer_start_coarse(rd_loop *loop, rd_timer *t, uint64_t after_ns);
/* Disarms `t`; a no-op when it is not armed. */
void loop_timer_cancel(rd_loop *loop, rd_timer *t);
static inline int loop_timer_armed(const rd_timer *t)
{
    return t->slot != 0;
}

/* Runs `hook` once, after this turn's actors, timers and completions have run and before the
 * loop enters the kernel to submit what the turn queued. For I/O that is cheaper made once per
 * turn than once per message: the listener gathers what a connection is owed from every
 * message of the turn (a reply's head and its parts) and sends it with one operation. A hook
 * already queued is not queued twice; one queued while the hooks run runs in the same pass. */
void loop_at_turn_end(rd_loop *loop, rd_turn_hook *hook);

/* Any thread: put `a` on the loop's ready queue and wake the loop if it sleeps (at most one
 * wake per burst: only the sender that finds it asleep wakes it). */
void loop_schedule(rd_loop *loop, struct rd_actor *a);
/* Loop thread: put `a`, an actor of this loop with mail on its local list (actor_send from
 * this loop), on the loop's local ready list: plain stores, no wake (the loop is awake). The
 * turn runs both lists, taking turns while both have actors. */
void loop_schedule_local(rd_loop *loop, struct rd_actor *a);
/* Loop thread: queues `m` for `to`, an actor of another loop, in this loop's outbox. The
 * outbox leaves as one chain per destination (one exchange, one count update, at most one
 * wake) when 16 messages for one destination have piled up, and after every actor batch,
 * timer round and completion round. Returns 0, or -EAGAIN when `to`'s mailbox plus what is
 * already queued for it reaches its bound (`m` is then still the caller's). */
int loop_post(rd_loop *loop, struct rd_actor *to, struct rd_msg *m);
/* Loop thread: sends everything in the outbox now. */
void loop_flush(rd_loop *loop);

/* Any thread: make the loop turn once (wake it if asleep). */
void loop_wake(rd_loop *loop);

/* The loop's counters; read from any thread, values may be slightly stale. */
void loop_stats(const rd_loop *loop, rd_loop_stats *out);

#endif
