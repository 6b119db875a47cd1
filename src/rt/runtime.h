/* The runtime: the set of loops of one process, one per core, and its graceful stop.
 *
 * owns:  the loops (created, pinned, started, stopped, joined, freed here).
 * never: decides what runs on the loops; callers spawn actors once rt_start returns.
 *
 * Signals: rt_block_signals() must run before any thread starts, so SIGINT, SIGTERM and SIGHUP
 * reach only the thread that calls rt_wait_signal(). */
#ifndef REELD_RT_RUNTIME_H
#define REELD_RT_RUNTIME_H

#include <stdint.h>

#include "src/rt/loop.h"

typedef struct rd_runtime {
    rd_loop **loops;
    int nloops;
} rd_runtime;

/* Creates and starts `cores` loops, loop i pinned to the i-th CPU this process may use.
 * 0 or -errno (nothing is left running on failure). */
int rt_start(rd_runtime *rt, int cores);

/* Asks every loop to stop, giving in-flight work `drain_ns`, waits for them, frees them. */
void rt_stop(rd_runtime *rt, uint64_t drain_ns);

/* rt_stop in two halves, for a process whose thread actors may still answer loop actors while
 * the loops drain (the SQLite store, the blob server): rt_halt stops and joins the loops but
 * keeps them, so a late reply lands in a mailbox nobody reads instead of freed memory; stop
 * those thread actors, then rt_free. */
void rt_halt(rd_runtime *rt, uint64_t drain_ns);
void rt_free(rd_runtime *rt);

/* Blocks SIGINT, SIGTERM, SIGHUP and SIGPIPE in the calling thread (and the threads it
 * creates). */
void rt_block_signals(void);

/* Waits for SIGINT or SIGTERM and returns the signal number. Each SIGHUP meanwhile calls
 * on_hup(ctx) on the calling thread (a reload; NULL: it is logged and ignored, where it would
 * otherwise have ended the process). */
int rt_wait_signal(void (*on_hup)(void *ctx), void *ctx);

#endif
