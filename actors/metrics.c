/* Metrics: the sharded registry and the actor that serves /metrics, /api/health, /api/ping.
 *
 * owns:  the registry of families and series (shared, created under `mu`), each series' cells
 *        (one per loop + one shared); per actor instance nothing.
 * takes: MSG_HTTP_REQUEST for its three routes.
 * sends: MSG_HTTP_RESPONSE replies to the listener that asked.
 * never: takes `mu` on a hot path (only when a family or series is made, and at scrape);
 *        blocks its loop (a scrape reads /proc/self/statm, which does not block). */
#include "actors/metrics.h"

#include "actors/job_dispatcher.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "src/rt/buf.h"

#ifndef REELD_VERSION
#define REELD_VERSION "0.0.0-dev"
#endif

#define MAX_LABELS 4
#define CELL_ALIGN 64

static const double latency_buckets[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                         0.1,    0.25,  0.5,    1,     2.5,  5,     10};

struct rd_series {
    rd_series *next;
    const rd_metric *family;
    char *values[MAX_LABELS];
    size_t stride; /* bytes per cell, a multiple of CELL_ALIGN */
    /* cells: [0, nloops) one per loop, [nloops] shared by other threads. A cell is a counter
     * or gauge value, or for a histogram: count, sum (double bits), buckets[nbuckets]. */
    _Alignas(CELL_ALIGN) unsigned char cells[];
};

struct rd_metric {
    rd_metric *next;
    char *name, *help;
    rd_metric_kind kind;
    int nlabels;
    char *labels[MAX_LABELS];
    double *buckets;
    int nbuckets;
    rd_series *series, **series_tail;
};

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static rd_metric *families, **families_tail = &families;
static rd_loop *const *metric_loops;
static int nshards = 1; /* loops + 1 */
static uint64_t started_ns;

static void *xalloc(size_t n)
{
    void *p = calloc(1, n);
    if (p == NULL) {
        fputs("reeld: out of memory in metrics\n", stderr);
        abort();
    }
    return p;
}

static char *xstrdup(const char *s)
{
    char *d = xalloc(strlen(s) + 1);
    strcpy(d, s);
    return d;
}

void metrics_init(rd_loop *const *loops, int nloops)
{
    metric_loops = loops;
    nshards = nloops + 1;
    started_ns = rd_now_ns();
}

rd_metric *metrics_family(const char *name, const char *help, rd_metric_kind kind,
                          const char *labels, const double *buckets, int nbuckets)
{
    pthread_mutex_lock(&mu);
    for (rd_metric *m = families; m != NULL; m = m->next) {
        if (strcmp(m->name, name) == 0) {
            pthread_mutex_unlock(&mu);
            return m;
        }
    }
    rd_metric *m = xalloc(sizeof(*m));
    m->name = xstrdup(name);
    m->help = xstrdup(help);
    m->kind = kind;
    if (labels != NULL && *labels) {
        char *copy = xstrdup(labels), *save = NULL;
        for (char *t = strtok_r(copy, ",", &save); t && m->nlabels < MAX_LABELS;
             t = strtok_r(NULL, ",", &save))
            m->labels[m->nlabels++] = xstrdup(t);
        free(copy);
    }
    if (kind == RD_HISTOGRAM) {
        if (buckets == NULL) {
            buckets = latency_buckets;
            nbuckets = (int)(sizeof(latency_buckets) / sizeof(latency_buckets[0]));
        }
        m->buckets = xalloc(sizeof(double) * (size_t)nbuckets);
        memcpy(m->buckets, buckets, sizeof(double) * (size_t)nbuckets);
        m->nbuckets = nbuckets;
    }
    m->series_tail = &m->series;
    *families_tail = m;
    families_tail = &m->next;
    pthread_mutex_unlock(&mu);
    return m;
}

rd_series *metrics_series(rd_metric *m, const char *const *values)
{
    pthread_mutex_lock(&mu);
    for (rd_series *s = m->series; s != NULL; s = s->next) {
        int same = 1;
        for (int i = 0; i < m->nlabels && same; i++)
            same = strcmp(s->values[i], values[i]) == 0;
        if (same) {
            pthread_mutex_unlock(&mu);
            return s;
        }
    }
    size_t words = m->kind == RD_HISTOGRAM ? 2 + (size_t)m->nbuckets : 1;
    size_t stride = (words * 8 + CELL_ALIGN - 1) / CELL_ALIGN * CELL_ALIGN;
    size_t size = sizeof(rd_series) + stride * (size_t)nshards;
    rd_series *s = aligned_alloc(CELL_ALIGN, (size + CELL_ALIGN - 1) / CELL_ALIGN * CELL_ALIGN);
    if (s == NULL) {
        fputs("reeld: out of memory in metrics\n", stderr);
        abort();
    }
    memset(s, 0, size);
    s->family = m;
    s->stride = stride;
    for (int i = 0; i < m->nlabels; i++)
        s->values[i] = xstrdup(values[i]);
    *m->series_tail = s;
    m->series_tail = &s->next;
    pthread_mutex_unlock(&mu);
    return s;
}

/* The calling thread's cell: its loop's, or the shared one (then `shared` is set). */
static _Atomic uint64_t *cell(rd_series *s, int *shared)
{
    rd_loop *l = loop_current();
    int i = l != NULL ? loop_index(l) : nshards - 1;
    if (i >= nshards - 1)
        i = nshards - 1;
    *shared = i == nshards - 1;
    return (_Atomic uint64_t *)(void *)(s->cells + s->stride * (size_t)i);
}

static void bump(_Atomic uint64_t *c, uint64_t n, int shared)
{
    if (shared)
        atomic_fetch_add_explicit(c, n, memory_order_relaxed);
    else
        atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + n,
                              memory_order_relaxed);
}

void metrics_add(rd_series *s, uint64_t n)
{
    int shared;
    _Atomic uint64_t *c = cell(s, &shared);
    bump(c, n, shared);
}

void metrics_gauge_add(rd_series *s, int64_t delta)
{
    int shared;
    _Atomic uint64_t *c = cell(s, &shared);
    bump(c, (uint64_t)delta, shared); /* two's complement: sums come out right */
}

void metrics_observe(rd_series *s, double v)
{
    const rd_metric *m = s->family;
    int shared;
    _Atomic uint64_t *c = cell(s, &shared);
    int b = 0;
    while (b < m->nbuckets && v > m->buckets[b])
        b++;
    bump(&c[0], 1, shared);
    if (b < m->nbuckets)
        bump(&c[2 + b], 1, shared);
    /* The sum is a double kept as bits; the shared cell needs a compare-and-swap. */
    uint64_t old = atomic_load_explicit(&c[1], memory_order_relaxed), nv;
    do {
        double d;
        memcpy(&d, &old, sizeof(d));
        d += v;
        memcpy(&nv, &d, sizeof(nv));
        if (!shared) {
            atomic_store_explicit(&c[1], nv, memory_order_relaxed);
            break;
        }
    } while (!atomic_compare_exchange_weak_explicit(&c[1], &old, nv, memory_order_relaxed,
                                                    memory_order_relaxed));
}

static uint64_t sum_word(const rd_series *s, int word)
{
    uint64_t t = 0;
    for (int i = 0; i < nshards; i++) {
        const _Atomic uint64_t *c =
            (const _Atomic uint64_t *)(const void *)(s->cells + s->stride * (size_t)i);
        t += atomic_load_explicit(&c[word], memory_order_relaxed);
    }
    return t;
}

static double sum_double(const rd_series *s)
{
    double t = 0;
    for (int i = 0; i < nshards; i++) {
        const _Atomic uint64_t *c =
            (const _Atomic uint64_t *)(const void *)(s->cells + s->stride * (size_t)i);
        uint64_t bits = atomic_load_explicit(&c[1], memory_order_relaxed);
        double d;
        memcpy(&d, &bits, sizeof(d));
        t += d;
    }
    return t;
}

void metrics_free_all(void)
{
    pthread_mutex_lock(&mu);
    rd_metric *m = families;
    families = NULL;
    families_tail = &families;
    pthread_mutex_unlock(&mu);
    while (m != NULL) {
        rd_metric *next = m->next;
        for (rd_series *s = m->series, *sn; s != NULL; s = sn) {
            sn = s->next;
            for (int i = 0; i < m->nlabels; i++)
                free(s->values[i]);
            free(s);
        }
        for (int i = 0; i < m->nlabels; i++)
            free(m->labels[i]);
        free(m->name);
        free(m->help);
        free(m->buckets);
        free(m);
        m = next;
    }
}

static void write_family(prom_writer *w, const rd_metric *m)
{
    static const char *const kinds[] = {"counter", "gauge", "histogram"};
    if (m->series == NULL)
        return;
    prom_family(w, m->name, kinds[m->kind], m->help);
    const char *const *ln = (const char *const *)m->labels;
    for (const rd_series *s = m->series; s != NULL; s = s->next) {
        const char *const *lv = (const char *const *)s->values;
        if (m->kind == RD_COUNTER) {
            prom_sample_u64(w, m->name, "", ln, lv, m->nlabels, NULL, sum_word(s, 0));
        } else if (m->kind == RD_GAUGE) {
            prom_sample(w, m->name, "", ln, lv, m->nlabels, NULL, (double)(int64_t)sum_word(s, 0));
        } else {
            uint64_t cum = 0;
            char le[32];
            for (int b = 0; b < m->nbuckets; b++) {
                cum += sum_word(s, 2 + b);
                prom_format_le(m->buckets[b], le);
                prom_sample_u64(w, m->name, "_bucket", ln, lv, m->nlabels, le, cum);
            }
            /* count is read after the buckets: a racing observation can only make +Inf, not a
             * finite bucket, exceed the others. */
            uint64_t count = sum_word(s, 0);
            if (count < cum)
                count = cum;
            prom_sample_u64(w, m->name, "_bucket", ln, lv, m->nlabels, "+Inf", count);
            prom_sample(w, m->name, "_sum", ln, lv, m->nlabels, NULL, sum_double(s));
            prom_sample_u64(w, m->name, "_count", ln, lv, m->nlabels, NULL, count);
        }
    }
}

uint64_t metrics_rss_bytes(void)
{
    int fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    char buf[128];
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0)
        return 0;
    buf[n] = 0;
    unsigned long long size = 0, resident = 0;
    if (sscanf(buf, "%llu %llu", &size, &resident) != 2)
        return 0;
    return (uint64_t)resident * (uint64_t)sysconf(_SC_PAGESIZE);
}

double metrics_uptime_s(void)
{
    return (double)(rd_now_ns() - started_ns) / 1e9;
}

/* Per actor name: mailbox depth and restarts, summed over instances (one per loop, N
 * encoders). */
typedef struct actor_sums {
    struct {
        const char *name;
        int64_t depth;
        uint64_t restarts, handled;
    } a[64];
    int n;
} actor_sums;

static void sum_actor(rd_actor *a, void *ctx)
{
    actor_sums *s = ctx;
    int i = 0;
    while (i < s->n && strcmp(s->a[i].name, a->def->name) != 0)
        i++;
    if (i == s->n) {
        if (s->n == 64)
            return;
        s->n++;
        s->a[i].name = a->def->name;
        s->a[i].depth = 0;
        s->a[i].restarts = s->a[i].handled = 0;
    }
    s->a[i].depth += mailbox_depth(&a->mbox);
    s->a[i].restarts += atomic_load_explicit(&a->restarts, memory_order_relaxed);
    s->a[i].handled += atomic_load_explicit(&a->handled, memory_order_relaxed);
}

static void write_runtime(prom_writer *w)
{
    static const char *const vname[] = {"version"};
    const char *vval[] = {REELD_VERSION};
    prom_family(w, "reeld_build_info", "gauge", "Build of the running binary; always 1.");
    prom_sample(w, "reeld_build_info", "", vname, vval, 1, NULL, 1);
    prom_family(w, "reeld_uptime_seconds", "gauge", "Seconds since the process started serving.");
    prom_sample(w, "reeld_uptime_seconds", "", NULL, NULL, 0, NULL, metrics_uptime_s());
    prom_family(w, "reeld_process_resident_memory_bytes", "gauge", "Resident set size.");
    prom_sample_u64(w, "reeld_process_resident_memory_bytes", "", NULL, NULL, 0, NULL,
                    metrics_rss_bytes());

    static const char *const lname[] = {"loop"};
    int nloops = nshards - 1;
    prom_family(w, "reeld_loop_busy_seconds_total", "counter",
                "Time each event loop spent working rather than waiting for completions.");
    for (int i = 0; i < nloops && metric_loops != NULL; i++) {
        rd_loop_stats st;
        loop_stats(metric_loops[i], &st);
        char idx[16];
        snprintf(idx, sizeof(idx), "%d", i);
        const char *lv[] = {idx};
        prom_sample(w, "reeld_loop_busy_seconds_total", "", lname, lv, 1, NULL,
                    (double)st.busy_ns / 1e9);
    }
    prom_family(w, "reeld_loop_iterations_total", "counter", "Turns of each event loop.");
    for (int i = 0; i < nloops && metric_loops != NULL; i++) {
        rd_loop_stats st;
        loop_stats(metric_loops[i], &st);
        char idx[16];
        snprintf(idx, sizeof(idx), "%d", i);
        const char *lv[] = {idx};
        prom_sample_u64(w, "reeld_loop_iterations_total", "", lname, lv, 1, NULL, st.iterations);
    }

    actor_sums *s = xalloc(sizeof(*s));
    actor_foreach(sum_actor, s);
    static const char *const aname[] = {"actor"};
    prom_family(w, "reeld_actor_mailbox_depth", "gauge",
                "Messages queued and not yet handled, summed over the actor's instances.");
    for (int i = 0; i < s->n; i++)
        prom_sample(w, "reeld_actor_mailbox_depth", "", aname, &s->a[i].name, 1, NULL,
                    (double)s->a[i].depth);
    prom_family(w, "reeld_actor_restarts_total", "counter",
                "Failures that made the supervisor restart the actor.");
    for (int i = 0; i < s->n; i++)
        prom_sample_u64(w, "reeld_actor_restarts_total", "", aname, &s->a[i].name, 1, NULL,
                        s->a[i].restarts);
    prom_family(w, "reeld_actor_messages_total", "counter", "Messages the actor handled.");
    for (int i = 0; i < s->n; i++)
        prom_sample_u64(w, "reeld_actor_messages_total", "", aname, &s->a[i].name, 1, NULL,
                        s->a[i].handled);
    free(s);

    /* The queue, as the job dispatcher last counted it (about a second old); the stream's
     * length and pending entries are what a fleet's autoscaler reads. */
    rd_queue_counts c;
    if (dispatcher_queue_counts(&c) == 0) {
        static const char *const sname[] = {"state"};
        static const char *const states[] = {"waiting", "active", "completed", "failed", "dead"};
        const int64_t counts[] = {c.waiting, c.active, c.completed, c.failed, c.dead};
        prom_family(w, "reeld_jobs", "gauge", "Jobs in the store by state.");
        for (int i = 0; i < 5; i++)
            prom_sample(w, "reeld_jobs", "", sname, &states[i], 1, NULL, (double)counts[i]);
        prom_family(w, "reeld_queue_oldest_age_seconds", "gauge",
                    "How long the oldest due queued job has waited for a worker (0: none).");
        prom_sample(w, "reeld_queue_oldest_age_seconds", "", NULL, NULL, 0, NULL,
                    (double)c.oldest_queued_ms / 1000.0);
        prom_family(w, "reeld_webhook_oldest_undelivered_seconds", "gauge",
                    "Age of the oldest webhook event neither delivered nor dead (0: none).");
        prom_sample(w, "reeld_webhook_oldest_undelivered_seconds", "", NULL, NULL, 0, NULL,
                    (double)c.oldest_webhook_ms / 1000.0);
        if (c.stream_length >= 0) {
            prom_family(w, "reeld_queue_stream_entries", "gauge",
                        "Entries in the Redis job streams (XLEN, all kinds).");
            prom_sample(w, "reeld_queue_stream_entries", "", NULL, NULL, 0, NULL,
                        (double)c.stream_length);
        }
        if (c.stream_pending >= 0) {
            prom_family(w, "reeld_queue_stream_pending", "gauge",
                        "Stream entries read by a worker and not yet acknowledged (XPENDING).");
            prom_sample(w, "reeld_queue_stream_pending", "", NULL, NULL, 0, NULL,
                        (double)c.stream_pending);
        }
    }
}

int metrics_write(prom_writer *w)
{
    pthread_mutex_lock(&mu);
    for (const rd_metric *m = families; m != NULL; m = m->next)
        write_family(w, m);
    pthread_mutex_unlock(&mu);
    write_runtime(w);
    return w->err != 0;
}

/* ---- the actor ---- */

#define PING_BODY_LIMIT (64 * 1024)

static int route_metrics = -1, route_health = -1, route_ping = -1;

int metrics_routes(rd_http_routes *routes, rd_actor *const *actors, int n)
{
    int r = http_routes_add(routes, "/metrics", RD_HTTP_GET, actors, n, 0, 0);
    if (r < 0)
        return r;
    route_metrics = r;
    r = http_routes_add(routes, "/api/health", RD_HTTP_GET, actors, n, 0, 0);
    if (r < 0)
        return r;
    route_health = r;
    /* POST takes a body (up to PING_BODY_LIMIT) and says how long it was: a cheap check of
     * the upload path for load balancers and tests. */
    r = http_routes_add(routes, "/api/ping", RD_HTTP_GET | RD_HTTP_POST, actors, n, PING_BODY_LIMIT,
                        0);
    if (r < 0)
        return r;
    route_ping = r;
    return 0;
}

static int serve_metrics(const rd_msg *m)
{
    for (size_t cap = 64 * 1024; cap <= 64 * 1024 * 1024; cap *= 4) {
        rd_buf *b = buf_new(cap);
        prom_writer w;
        prom_init(&w, b->data, b->cap);
        if (!metrics_write(&w)) {
            b->len = w.len;
            return http_reply_buf(m, 200, PROM_CONTENT_TYPE, b);
        }
        buf_unref(b);
    }
    return http_reply_error(m, 500, "metrics_too_large", "The metrics did not fit; see the logs.");
}

static int serve_health(const rd_msg *m)
{
    char body[512], queue[256] = "{}";
    /* queue: job counts by state, as the job dispatcher last read them (about a second old). */
    rd_queue_counts c;
    if (dispatcher_queue_counts(&c) == 0)
        queue_counts_json(queue, sizeof(queue), &c);
    int n = snprintf(body, sizeof(body),
                     "{\"ok\":true,\"uptime_s\":%llu,\"memory\":{\"rss_bytes\":%llu},"
                     "\"queue\":%s}",
                     (unsigned long long)metrics_uptime_s(),
                     (unsigned long long)metrics_rss_bytes(), queue);
    return http_reply(m, 200, "application/json", body, (size_t)n);
}

static int metrics_handle(rd_actor *self, rd_msg *m)
{
    (void)self;
    if (m->type != MSG_HTTP_REQUEST)
        return RD_DONE;
    int route = (int)msg_body(m, http_request)->route;
    int r;
    const struct rd_msg_http_request *q = msg_body(m, http_request);
    if (route == route_ping && q->method == RD_HTTP_POST) {
        char body[64];
        int n = snprintf(body, sizeof(body), "{\"ok\":true,\"body_bytes\":%u}", q->body_len);
        r = http_reply(m, 200, "application/json", body, (size_t)n);
    } else if (route == route_ping)
        r = http_reply(m, 200, "application/json", "{\"ok\":true}", 11);
    else if (route == route_health)
        r = serve_health(m);
    else if (route == route_metrics)
        r = serve_metrics(m);
    else
        r = http_reply_error(m, 404, "not_found", "No such route.");
    /* A listener that is gone or full is not our failure: the reply is dropped. */
    (void)r;
    return RD_DONE;
}

const rd_actor_def metrics_actor_def = {
    .name = "metrics",
    .handle = metrics_handle,
};
