/* Metrics: the sharded registry, the runtime's own figures and the collectors.
 *
 * owns:  the registry of families and series (shared, created under `mu`), each series' cells
 *        (one per loop + one shared), the collectors (under `mu`).
 * takes: counts from any thread; collectors.
 * sends: nothing.
 * never: takes `mu` on a hot path (only when a family, series or collector is made or removed,
 *        and at scrape); blocks (a scrape reads /proc/self/statm, which does not block). */
#include "src/rt/alloc.h"
#include "src/rt/metrics.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "src/rt/actor.h"
#include "src/rt/mailbox.h"

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

/* A collector, and how many adds it has not had removes for. */
typedef struct collector collector;
struct collector {
    collector *next;
    rd_metrics_collector_fn fn;
    void *ctx;
    int refs;
};

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static rd_metric *families, **families_tail = &families;
static collector *collectors, **collectors_tail = &collectors;
static rd_loop *const *metric_loops;
static int nshards = 1; /* loops + 1 */
static uint64_t started_ns;

static void *xalloc(size_t n)
{
    return rd_calloc(1, n, "in metrics");
}

static char *xstrdup(const char *s)
{
    return rd_strdup(s, "in metrics");
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
    rd_series *s = rd_aligned(CELL_ALIGN, size, "a metric's series");
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
    int i = rd_loop_here_index;
    if (i < 0 || i >= nshards - 1)
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
    collector *c = collectors;
    collectors = NULL;
    collectors_tail = &collectors;
    pthread_mutex_unlock(&mu);
    while (c != NULL) {
        collector *next = c->next;
        free(c);
        c = next;
    }
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
    s->a[i].depth +=
        mailbox_depth(&a->mbox) + atomic_load_explicit(&a->local_n, memory_order_relaxed);
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
}

void metrics_collector_add(rd_metrics_collector_fn fn, void *ctx)
{
    pthread_mutex_lock(&mu);
    collector *c = collectors;
    while (c != NULL && (c->fn != fn || c->ctx != ctx))
        c = c->next;
    if (c == NULL) {
        c = xalloc(sizeof(*c));
        c->fn = fn;
        c->ctx = ctx;
        *collectors_tail = c;
        collectors_tail = &c->next;
    }
    c->refs++;
    pthread_mutex_unlock(&mu);
}

void metrics_collector_remove(rd_metrics_collector_fn fn, void *ctx)
{
    pthread_mutex_lock(&mu);
    for (collector **pc = &collectors; *pc != NULL; pc = &(*pc)->next) {
        collector *c = *pc;
        if (c->fn != fn || c->ctx != ctx)
            continue;
        if (--c->refs == 0) {
            *pc = c->next;
            if (collectors_tail == &c->next)
                collectors_tail = pc;
            free(c);
        }
        break;
    }
    pthread_mutex_unlock(&mu);
}

int metrics_write(prom_writer *w)
{
    pthread_mutex_lock(&mu);
    for (const rd_metric *m = families; m != NULL; m = m->next)
        write_family(w, m);
    pthread_mutex_unlock(&mu);
    write_runtime(w);
    /* Under `mu`, so that a collector removed (and its context freed) is not running. */
    pthread_mutex_lock(&mu);
    for (const collector *c = collectors; c != NULL; c = c->next)
        c->fn(w, c->ctx);
    pthread_mutex_unlock(&mu);
    return w->err != 0;
}
