/* The metrics actor: serves the registry (src/rt/metrics.h) over HTTP.
 *
 * One per loop, so no route crosses cores. It answers GET /metrics (Prometheus text 0.0.4: what
 * metrics_write renders: the families, the runtime's figures, the collectors' samples), GET
 * /api/health, and GET /api/ping ({"ok":true}; POST answers the length of the body it was sent).
 *
 * owns:  nothing per instance (the registry is the runtime's).
 * takes: MSG_HTTP_REQUEST for the routes metrics_routes registered.
 * sends: MSG_HTTP_RESPONSE replies to the listener that asked.
 * never: keeps figures of its own (a module with figures adds a collector to the registry);
 *        blocks its loop. */
#ifndef REELD_ACTORS_METRICS_H
#define REELD_ACTORS_METRICS_H

#include "actors/http_listener.h"
#include "src/rt/actor.h"

/* The actor: takes MSG_HTTP_REQUEST for the routes metrics_routes registered, replies
 * MSG_HTTP_RESPONSE. Spawn one per loop with a NULL argument. */
extern const rd_actor_def metrics_actor_def;

/* Registers /metrics, /api/health and /api/ping on `routes` with `actors` (one per loop, or
 * one). 0 or -errno from http_routes_add. */
int metrics_routes(rd_http_routes *routes, rd_actor *const *actors, int n);

#endif
