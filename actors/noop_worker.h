/* A worker for jobs of kind "noop": it does nothing for REELD_NOOP_WORK_MS (0: finishes at
 * once), reporting progress every 200 ms, then succeeds. It follows the worker side of the
 * dispatcher's protocol exactly as the encoders do, so the tests and the dispatch benchmark
 * exercise the real path: pull, assign, progress, done, cancel.
 *
 * owns:  up to `slots` jobs at once, each with its timers.
 * takes: MSG_JOB_ASSIGN, MSG_JOB_CANCEL (stops the job at once and says so).
 * sends: MSG_JOB_PULL (at start, and one slot after each job), MSG_JOB_PROGRESS, MSG_JOB_DONE,
 *        all to the dispatcher.
 * never: blocks; holds a job after being told to stop.
 *
 * REELD_NOOP_FAIL_ATTEMPTS=N makes attempts 1..N fail with a retryable error (tests of
 * retries and of dead jobs); REELD_NOOP_SILENT=1 sends no progress (a stuck worker). */
#ifndef REELD_ACTORS_NOOP_WORKER_H
#define REELD_ACTORS_NOOP_WORKER_H

#include "src/rt/actor.h"

#define RD_NOOP_MAX_SLOTS 64

/* Spawns a noop worker with `slots` (1..RD_NOOP_MAX_SLOTS) on `loop`; reads its settings from
 * the environment now. 0 or -errno. */
int noop_worker_spawn(rd_loop *loop, rd_actor *dispatcher, int slots, rd_actor **out);

/* After the loops have stopped: frees the worker's settings. NULL is a no-op. */
void noop_worker_free(rd_actor *a);

#endif
