/* Actors: state touched by one thread only, reached only through a mailbox.
 *
 * owns:  its state, its mailbox, its pending requests (each with a timeout timer).
 * takes: any catalogue message; MSG_STOP (system) makes it finish: fini runs, queued messages
 *        are dropped, later sends fail with -EPIPE.
 * sends: replies (same corr, RD_MSG_REPLY) to the requester; MSG_TIMEOUT is never sent: a
 *        request that times out calls its callback with -ETIMEDOUT instead.
 * never: runs on two threads at once; blocks its loop (blocking work gets a thread actor).
 *
 * Two kinds: loop actors live on an rd_loop and run in bounded batches when scheduled; thread
 * actors (encoders) own a thread that sleeps on an eventfd while the mailbox is empty. A thread
 * actor's handler that hands work to another thread sleeps in actor_wait on that same eventfd
 * until the work comes back (actor_wake) or, if it wants, new mail arrives: nothing polls.
 *
 * Supervision: a handler (or init) that returns a negative errno counts as a failure. The
 * actor's pending requests are cancelled, fini runs, and init runs again after a backoff
 * (10 ms doubling to 5 s, reset by a success). Messages wait in the mailbox meanwhile. A thread
 * actor waits out the back-off on its own thread, but actor_stop ends that wait, and a thread
 * actor asked to stop whose init fails ends there (its queued mail dropped). */
#ifndef REELD_RT_ACTOR_H
#define REELD_RT_ACTOR_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "src/rt/msg.h"
#include "src/rt/loop.h"
#include "src/rt/mailbox.h"

typedef struct rd_actor rd_actor;

/* What a handler returns: RD_DONE (the runtime frees the message), RD_KEPT (the handler kept
 * or forwarded it), or a negative errno (a failure: the message is freed, the actor
 * restarted). */
enum { RD_DONE = 0, RD_KEPT = 1 };

typedef struct rd_actor_def {
    const char *name;                         /* for logs and metrics */
    int (*init)(rd_actor *self, void *arg);   /* 0 or -errno; NULL: state = arg */
    int (*handle)(rd_actor *self, rd_msg *m); /* RD_DONE, RD_KEPT or -errno */
    void (*fini)(rd_actor *self);             /* undoes init; may be NULL */
    int32_t mailbox_bound;                    /* 0: RD_MAILBOX_DEFAULT_BOUND */
    /* Thread actors only: called on the actor's thread every tick_ms (between messages, never
     * during one), for periodic work of an actor that blocks (a loop actor uses a timer). */
    void (*tick)(rd_actor *self);
    uint32_t tick_ms;
} rd_actor_def;

#define RD_MAILBOX_DEFAULT_BOUND 4096
#define RD_ACTOR_BATCH           64 /* messages handled per run before the loop moves on */

/* Reply callback of actor_request: `reply` is the callback's to keep or free (NULL when `err`
 * is -ETIMEDOUT or -ECANCELED). Returns like a handler. */
typedef int (*rd_reply_fn)(rd_actor *self, rd_msg *reply, int err, void *ctx);

typedef struct rd_pending rd_pending;

struct rd_actor {
    rd_mpsc_node ready; /* link in the loop's ready queue */
    rd_mailbox mbox;
    const rd_actor_def *def;
    rd_loop *loop;        /* NULL for a thread actor */
    void *state;          /* the actor's own, set by init */
    void *arg;            /* init's argument, kept for restarts */
    _Atomic int stopped;  /* set once MSG_STOP is handled: sends fail */
    _Atomic int stopping; /* actor_stop was called: a thread actor's restart back-off ends */
    int started;          /* init has succeeded since the last failure */
    int down;             /* failed, waiting for the restart timer */
    int parked;           /* down with messages waiting: the timer must schedule it */
    int phantom;          /* 1 until the first run: spawn's scheduling count */
    uint32_t backoff_ms;  /* next restart delay */
    rd_timer restart_timer;
    _Atomic uint64_t restarts; /* failures that led to a restart */
    _Atomic uint64_t handled;  /* messages handled */
    uint32_t next_corr;
    rd_pending **pending; /* hash of outstanding requests by corr */
    uint32_t pending_count;
    rd_pending *spare_pending; /* finished request records for reuse (the loop's thread only) */
    uint32_t spare_count;
    /* Mail from actors of its own loop (loop actors): a list only that loop's thread touches,
     * run from the loop's local ready list, so a send within a loop takes no atomic operation
     * (the mailbox's count and link, the ready queue's link). `local_n` is atomic only so the
     * metrics thread may read it. */
    struct rd_msg *local_first, *local_last;
    _Atomic int32_t local_n;
    rd_actor *local_next; /* link in the loop's local ready list */
    int local_queued;     /* on that list */
    /* thread actors */
    pthread_t thread;
    int wake_fd;   /* eventfd the thread sleeps on; -1 for loop actors */
    int32_t taken; /* popped in the current batch and not yet finished (mailbox_done) */
    int cpu;
    rd_actor *next_all; /* registry link */
};

/* Whether `to` (a loop actor, or a thread actor with no local list) holds its bound of mail
 * counting `more` still to be handed over: the mailbox and the local list together. System
 * messages ignore the bound. Any thread. */
static inline int actor_mail_full(rd_actor *to, int32_t more)
{
    return to->mbox.bound > 0 && mailbox_depth(&to->mbox) +
                                         atomic_load_explicit(&to->local_n, memory_order_relaxed) +
                                         more >=
                                     to->mbox.bound;
}

/* Creates an actor on `loop`; init runs on the loop thread before its first message. Any
 * thread. 0 or -errno. The actor lives until the runtime ends (actors are not freed while a
 * sender may still hold a pointer; see actor_stop). */
int actor_spawn(rd_loop *loop, const rd_actor_def *def, void *arg, rd_actor **out);

/* Creates a thread actor with its own thread, pinned to `cpu` (-1: not pinned). Its handler
 * may block. 0 or -errno. */
int actor_spawn_thread(const rd_actor_def *def, void *arg, int cpu, rd_actor **out);

/* Any thread. 0 on success: `m` then belongs to the receiver. From a loop thread to an actor of
 * another loop, `m` waits in the loop's outbox until the end of the current batch and leaves
 * in one chain with the others for that actor (loop_post); to an actor of the same loop it
 * goes onto that actor's local list (no atomic operation; handled in the same turn). Order is
 * kept per sender: a sender on a loop reaches an actor of that loop always through the local
 * list, and from anywhere else always through the mailbox; a stop (a system message) always
 * goes through the mailbox, and its handling first handles what is on the local list. The
 * bound counts both lists. -EAGAIN when its mailbox is full
 * (back-pressure) or -EPIPE when it has stopped: `m` is still the caller's. */
int actor_send(rd_actor *to, rd_msg *m);
/* From a thread that may block (a thread actor, a command; never a loop): actor_send, waiting
 * while `to`'s mailbox is full, at most `timeout_ms` in all (-1: no limit). The consumer wakes
 * the waiter when it makes room: no polling. 0; -EPIPE (stopped) or -EAGAIN (still full at the
 * deadline), with the message still the caller's. */
int actor_send_wait(rd_actor *to, rd_msg *m, int timeout_ms);

/* Sends `m` as a request from `self` (a loop actor, on its own thread). Exactly one call of
 * `cb` follows: with the reply, or with -ETIMEDOUT after `timeout_ms`, or with -ECANCELED if
 * `self` fails or stops first. 0, or -EAGAIN/-EPIPE as actor_send (then `cb` is not called and
 * `m` is still the caller's). */
int actor_request(rd_actor *self, rd_actor *to, rd_msg *m, uint32_t timeout_ms, rd_reply_fn cb,
                  void *ctx);

/* Answers `request` with `reply` (any message type). 0 or -errno as actor_send; -EINVAL when
 * nobody asked for a reply. After success, `reply` belongs to the requester. */
int actor_reply(const rd_msg *request, rd_msg *reply);

/* Any thread: asks the actor to stop (a system message, never refused by the bound). */
void actor_stop(rd_actor *a);

/* Thread actors, from their own handler: the next queued message without waiting, or NULL.
 * Lets a long handler (an encode) notice a cancel. The message is the caller's. */
rd_msg *actor_try_receive(rd_actor *self);

/* Thread actors, from their own handler: sleeps until actor_wake(self) or, when `mail` is set,
 * until a message is queued (take it with actor_try_receive), at most `timeout_ms` (-1: no
 * limit). With `mail` it returns at once while mail is queued; without it new mail does not
 * end the wait (what a handler does that takes no new work for now). It may return without
 * cause: the caller looks again at what it waits for. With `mail` the messages of the current
 * batch, the one being handled included, count as finished from then on (the depth counts what
 * is queued), so that the next send finds the actor idle and wakes it. */
void actor_wait(rd_actor *self, int mail, int timeout_ms);

/* Any thread: ends the thread actor's actor_wait, or makes its next one return at once. For
 * the thread that finished work the actor handed it; the actor stays alive until
 * actor_free_all, so a wake after it stopped is harmless. */
void actor_wake(rd_actor *a);

/* Waits for a stopped thread actor's thread to end. */
void actor_join(rd_actor *a);

/* Calls fn for every actor spawned (for metrics). */
void actor_foreach(void (*fn)(rd_actor *a, void *ctx), void *ctx);

/* Frees every actor; only when no loop or thread actor runs any more. */
void actor_free_all(void);

/* For the loop, as it ends: calls the callback of every request its actors still await with
 * -ECANCELED, on its thread (their contexts are the callbacks' to free). */
void actor_cancel_requests(rd_loop *loop);

/* For the loop: runs one bounded batch. Returns 1 when the actor must be scheduled again. */
int actor_run_batch(rd_actor *a);

/* For the loop: runs one bounded batch of the mail its own actors sent (the local list; the
 * loop took `a` off its local ready list). Returns 1 when more is waiting there. */
int actor_run_local(rd_actor *a);

#endif
