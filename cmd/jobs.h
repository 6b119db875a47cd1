/* The job system of one process, put together: store, dispatcher and (when asked) noop
 * workers, for `reeld serve` and `reeld worker`.
 *
 * owns:  the actors it spawns, until jobs_free.
 * never: starts before the schema is migrated (jobs_start migrates first, on the calling
 *        thread, which must not be a loop). */
#ifndef REELD_JOBS_H
#define REELD_JOBS_H

#include <stddef.h>

#include "actors/http_listener.h"
#include "actors/job_dispatcher.h"
#include "actors/jobs_api.h"
#include "actors/noop_worker.h"
#include "src/rt/runtime.h"

typedef struct rd_jobs {
    rd_actor *store;
    rd_actor *dispatcher;
    rd_actor *workers[64];
    int nworkers;
    rd_dispatcher_config dc;
    rd_jobs_api api;       /* what the API actors talk to */
    rd_actor **api_actors; /* one per loop, after jobs_routes */
} rd_jobs;

/* Loads the dispatcher's settings; `reeld serve` checks them before anything starts. */
int jobs_config(rd_jobs *j, const rd_config *cfg, char *err, size_t errlen);

/* Migrates the store, then spawns the store on loop 0, the dispatcher on the last loop, and
 * `noop_slots` slots of noop workers (REELD_NOOP_SLOTS; 0: none) spread over the loops.
 * 0, or -errno with one line in `err`. */
int jobs_start(rd_jobs *j, const rd_config *cfg, rd_runtime *rt, int noop_slots, char *err,
               size_t errlen);

/* Spawns the jobs/assets API actors (one per loop) and registers their routes. Before the
 * listeners start. 0 or -errno. */
int jobs_routes(rd_jobs *j, rd_runtime *rt, rd_http_routes *routes);

/* After rt_halt, before rt_free: stops the store's thread (SQLite), which may still be answering
 * a loop actor's request. Then jobs_free. */
void jobs_halt(rd_jobs *j);

/* After the loops have stopped: frees what the actors held. */
void jobs_free(rd_jobs *j);

#endif
