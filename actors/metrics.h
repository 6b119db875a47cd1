/* Metrics: sharded counters, gauges and histograms, and the actor that serves them.
 *
 * Every series has one cell per loop plus one shared cell for threads that are not loops. A
 * loop adds to its own cell with a plain load and store (one writer, no locked instruction);
 * other threads use atomic adds on the shared cell. A scrape sums the cells. Families and
 * series are created under a mutex: look a series up once and keep the pointer.
 *
 * The metrics actor (one per loop, so no route crosses cores) answers GET /metrics (Prometheus
 * text 0.0.4), GET /api/health, and GET /api/ping ({"ok":true}; POST answers the length of the
 * body it was sent). At scrape it also reports what the runtime
 * knows: loop busy time, mailbox depth and restarts by actor, RSS, uptime, build info. */
#ifndef REELD_ACTORS_METRICS_H
#define REELD_ACTORS_METRICS_H

#include <stdint.h>

#include "actors/http_listener.h"
#include "proto/prom.h"
#include "src/rt/actor.h"
#include "src/rt/loop.h"

typedef struct rd_metric rd_metric;
typedef struct rd_series rd_series;

typedef enum rd_metric_kind { RD_COUNTER, RD_GAUGE, RD_HISTOGRAM } rd_metric_kind;

/* Sets the loops whose cells and stats the metrics cover. Once, before any family is made. */
void metrics_init(rd_loop *const *loops, int nloops);

/* The family `name` (created on first call; later calls return the same one). `labels` are
 * comma-separated label names or NULL; `buckets` the ascending upper bounds of a histogram
 * (NULL: request-latency buckets from 0.5 ms to 10 s). Aborts on out-of-memory. */
rd_metric *metrics_family(const char *name, const char *help, rd_metric_kind kind,
                          const char *labels, const double *buckets, int nbuckets);

/* The series of `m` with these label values (one per label name), created on first use. */
rd_series *metrics_series(rd_metric *m, const char *const *values);

/* Counter: adds n. */
void metrics_add(rd_series *s, uint64_t n);
/* Gauge: adds delta (may be negative); the scrape shows the sum over cells. */
void metrics_gauge_add(rd_series *s, int64_t delta);
/* Histogram: records one observation. */
void metrics_observe(rd_series *s, double v);

/* Frees every family and series; when no thread uses them any more. */
void metrics_free_all(void);

/* Writes every family and the runtime's own metrics. Returns w->full (0 when it all fit). */
int metrics_write(prom_writer *w);

/* Resident set size of the process in bytes (0 when unknown). */
uint64_t metrics_rss_bytes(void);
/* Seconds since metrics_init. */
double metrics_uptime_s(void);

/* The actor: takes MSG_HTTP_REQUEST for the routes metrics_routes registered, replies
 * MSG_HTTP_RESPONSE. Spawn one per loop with a NULL argument. */
extern const rd_actor_def metrics_actor_def;

/* Registers /metrics, /api/health and /api/ping on `routes` with `actors` (one per loop, or
 * one). 0 or -errno from http_routes_add. */
int metrics_routes(rd_http_routes *routes, rd_actor *const *actors, int n);

#endif
