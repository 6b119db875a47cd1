/* The job routes of the HTTP API (operators: loopback clients only; jobs carry no org):
 *
 *   GET    /api/jobs/{id}               the job, or 404
 *   GET    /api/jobs?state=&cursor=     a page of jobs by id ({"jobs":[…],"next_cursor":…});
 *                                       an unknown state or a malformed cursor is a 400
 *   DELETE /api/jobs/{id}               cancels it (a running job's worker is told to stop);
 *                                       404 unknown, 409 already finished
 *
 * The asset routes (GET /api/assets/{id}, GET /api/assets) belong to the client API
 * (actors/api.h): one owner per route, with its auth and org scoping; in the open embedded
 * mode they give operators the cross-org view this file used to.
 *
 * A store that cannot be reached answers 503 with Retry-After: 1. Ids are decimal; anything
 * else names no job (404). Cursors are opaque (proto/jobs.h).
 *
 * owns:  nothing but the requests it is answering.
 * takes: MSG_HTTP_REQUEST for the routes above.
 * sends: MSG_STORE requests to the store (reads), MSG_JOB_CANCEL requests to the dispatcher;
 *        MSG_HTTP_RESPONSE replies to the listener.
 * never: blocks; keeps state between requests (one actor per loop, all alike). */
#ifndef REELD_ACTORS_JOBS_API_H
#define REELD_ACTORS_JOBS_API_H

#include "actors/http_listener.h"
#include "src/rt/actor.h"

/* What the actors talk to; must outlive them. */
typedef struct rd_jobs_api {
    rd_actor *store;
    rd_actor *dispatcher;
} rd_jobs_api;

/* The actor; spawn one per loop with a rd_jobs_api * argument. */
extern const rd_actor_def jobs_api_actor_def;

/* Registers the routes above for `actors` (one per loop). 0 or -errno. Before the listeners
 * start. */
int jobs_api_routes(rd_http_routes *routes, rd_actor *const *actors, int n);

#endif
