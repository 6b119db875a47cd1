/* Metrics: the registry of sharded counters, gauges and histograms, and the runtime's figures.
 *
 * owns:  the families and series (shared, created under one mutex), each series' cells, the
 *        list of collectors.
 * takes: counts from any thread; collectors from the modules that own figures of their own.
 * sends: nothing: metrics_write renders it all into a caller's prom_writer (proto/prom.h); the
 *        HTTP side (GET /metrics) is actors/metrics.c.
 * never: takes the mutex on a hot path (only when a family or series is made, a collector added
 *        or removed, and at scrape); blocks (a scrape reads /proc/self/statm, which does not
 *        block); knows any module above the runtime (those add collectors instead).
 *
 * Every series has one cell per loop plus one shared cell for threads that are not loops. A
 * loop adds to its own cell with a plain load and store (one writer, no locked instruction);
 * other threads use atomic adds on the shared cell. A scrape sums the cells. Look a series up
 * once and keep the pointer.
 *
 * A scrape writes every family, then what the runtime itself knows: loop busy time and turns,
 * mailbox depth, messages and restarts by actor, RSS, uptime, build info; then the samples of
 * each collector, in the order they were added (the job dispatcher's queue gauges are one). */
#ifndef REELD_RT_METRICS_H
#define REELD_RT_METRICS_H

#include <stdint.h>

#include "proto/prom.h"
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

/* A collector: called at each scrape, under the registry's mutex, to write samples the registry
 * does not hold (whole families: prom_family, then prom_sample...). It must not block, nor call
 * the other functions of this file. */
typedef void (*rd_metrics_collector_fn)(prom_writer *w, void *ctx);

/* Adds a collector. The same fn and ctx added twice are written once, and stay until removed as
 * many times: two instances of a module that report one process-wide figure may each add it.
 * Any thread. Aborts on out-of-memory. */
void metrics_collector_add(rd_metrics_collector_fn fn, void *ctx);
/* Undoes one metrics_collector_add (no-op when there is none). Once it returns, a scrape is
 * not running `fn` and will not call it again: ctx may be freed. Any thread; not from a
 * collector. */
void metrics_collector_remove(rd_metrics_collector_fn fn, void *ctx);

/* Frees every family, series and collector; when no thread uses them any more. */
void metrics_free_all(void);

/* Writes every family, the runtime's own metrics and the collectors' samples. Returns nonzero
 * when something did not fit (w->err; retry with a bigger buffer), 0 when it all fit. */
int metrics_write(prom_writer *w);

/* Resident set size of the process in bytes (0 when unknown). */
uint64_t metrics_rss_bytes(void);
/* Seconds since metrics_init. */
double metrics_uptime_s(void);

#endif
