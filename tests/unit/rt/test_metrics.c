/* Metrics registry: what a scrape writes for counters, gauges and histograms, counts from a loop
 * and from many threads summed, the runtime's own figures, and collectors: their samples appear
 * while they are added, once however often they were added, never after their removal, and a
 * removal racing a scrape leaves nothing running on a freed context. */
#include <pthread.h>
#include <semaphore.h>
#include <stdlib.h>

#include "src/rt/actor.h"
#include "src/rt/metrics.h"
#include "src/rt/runtime.h"
#include "tests/unit/test.h"

static rd_runtime rt;
static int have_loop;
static char out[1 << 20];

/* The whole scrape into `out`, NUL-terminated. */
static const char *scrape(void)
{
    prom_writer w;
    prom_init(&w, out, sizeof(out) - 1);
    int full = metrics_write(&w);
    CHECK_EQ_INT(full, 0);
    out[w.len] = 0;
    return out;
}

static int occurrences(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = strstr(hay, needle); p != NULL; p = strstr(p + 1, needle))
        n++;
    return n;
}

TEST(counter_gauge_histogram_are_written)
{
    rd_metric *c =
        metrics_family("t_requests_total", "Requests.", RD_COUNTER, "route,code", NULL, 0);
    CHECK(metrics_family("t_requests_total", "Other help.", RD_COUNTER, NULL, NULL, 0) == c);
    const char *v[] = {"/a", "200"};
    rd_series *s = metrics_series(c, v);
    CHECK(metrics_series(c, v) == s);
    metrics_add(s, 2);
    metrics_add(s, 1);
    rd_series *g =
        metrics_series(metrics_family("t_depth", "Depth.", RD_GAUGE, NULL, NULL, 0), NULL);
    metrics_gauge_add(g, 5);
    metrics_gauge_add(g, -7);
    static const double b[] = {0.1, 1};
    const char *op[] = {"get"};
    rd_series *h =
        metrics_series(metrics_family("t_seconds", "Time.", RD_HISTOGRAM, "op", b, 2), op);
    metrics_observe(h, 0.05);
    metrics_observe(h, 0.5);
    metrics_observe(h, 5);
    /* A family with no series yet writes nothing. */
    metrics_family("t_unused_total", "Never counted.", RD_COUNTER, NULL, NULL, 0);

    const char *t = scrape();
    CHECK(strstr(t, "# HELP t_requests_total Requests.\n# TYPE t_requests_total counter\n"
                    "t_requests_total{route=\"/a\",code=\"200\"} 3\n") != NULL);
    CHECK(strstr(t, "# TYPE t_depth gauge\nt_depth -2\n") != NULL);
    CHECK(strstr(t, "t_seconds_bucket{op=\"get\",le=\"0.1\"} 1\n"
                    "t_seconds_bucket{op=\"get\",le=\"1\"} 2\n"
                    "t_seconds_bucket{op=\"get\",le=\"+Inf\"} 3\n"
                    "t_seconds_sum{op=\"get\"} 5.55\n"
                    "t_seconds_count{op=\"get\"} 3\n") != NULL);
    CHECK(strstr(t, "t_unused_total") == NULL);
}

TEST(runtime_figures_are_written)
{
    const char *t = scrape();
    CHECK(strstr(t, "# TYPE reeld_build_info gauge\nreeld_build_info{version=\"") != NULL);
    CHECK(strstr(t, "# TYPE reeld_uptime_seconds gauge\n") != NULL);
    CHECK(strstr(t, "# TYPE reeld_process_resident_memory_bytes gauge\n") != NULL);
    CHECK(metrics_rss_bytes() > 0);
    CHECK(metrics_uptime_s() >= 0);
    CHECK(strstr(t, "# TYPE reeld_actor_mailbox_depth gauge\n") != NULL);
    CHECK(strstr(t, "# TYPE reeld_actor_restarts_total counter\n") != NULL);
    CHECK(strstr(t, "# TYPE reeld_actor_messages_total counter\n") != NULL);
    if (have_loop) {
        CHECK(strstr(t, "reeld_loop_busy_seconds_total{loop=\"0\"} ") != NULL);
        CHECK(strstr(t, "reeld_loop_iterations_total{loop=\"0\"} ") != NULL);
        CHECK(strstr(t, "reeld_actor_messages_total{actor=\"counter\"} ") != NULL);
    }
}

/* ---- counts from a loop (its own cell) and from other threads (the shared cell) ---- */

static rd_series *loop_series;
static sem_t counted;

static int counter_handle(rd_actor *self, rd_msg *m)
{
    (void)self;
    (void)m;
    metrics_add(loop_series, 10);
    sem_post(&counted);
    return RD_DONE;
}

static const rd_actor_def counter_def = {.name = "counter", .handle = counter_handle};
static rd_actor *counter;

static void *add_many(void *arg)
{
    for (int i = 0; i < 10000; i++)
        metrics_add(arg, 1);
    return NULL;
}

TEST(loop_and_thread_counts_are_summed)
{
    loop_series = metrics_series(
        metrics_family("t_mixed_total", "Counted everywhere.", RD_COUNTER, NULL, NULL, 0), NULL);
    int sent = 0;
    if (have_loop) {
        for (int i = 0; i < 5; i++) {
            rd_msg *m = msg_new(MSG_PING);
            if (actor_send(counter, m) == 0)
                sent++;
            else
                msg_free(m);
        }
        for (int i = 0; i < sent; i++)
            sem_wait(&counted);
    }
    pthread_t th[4];
    for (int i = 0; i < 4; i++)
        pthread_create(&th[i], NULL, add_many, loop_series);
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    char want[64];
    snprintf(want, sizeof(want), "\nt_mixed_total %d\n", 40000 + 10 * sent);
    CHECK(strstr(scrape(), want) != NULL);
}

/* ---- collectors ---- */

typedef struct probe {
    const char *name;
    int value;
} probe;

static void write_probe(prom_writer *w, void *ctx)
{
    const probe *p = ctx;
    prom_family(w, p->name, "gauge", "Written by a collector.");
    prom_sample(w, p->name, "", NULL, NULL, 0, NULL, p->value);
}

TEST(collector_samples_appear_until_removed)
{
    probe p = {"t_collected", 42}, q = {"t_other", 7};
    CHECK(strstr(scrape(), "t_collected") == NULL);
    metrics_collector_add(write_probe, &p);
    metrics_collector_add(write_probe, &q);
    const char *t = scrape();
    CHECK(strstr(t, "# HELP t_collected Written by a collector.\n# TYPE t_collected gauge\n"
                    "t_collected 42\n") != NULL);
    CHECK(strstr(t, "\nt_other 7\n") != NULL);
    /* After the registry's families and the runtime's figures, in the order added. */
    CHECK(strstr(t, "t_requests_total") < strstr(t, "t_collected"));
    CHECK(strstr(t, "reeld_actor_messages_total") < strstr(t, "t_collected"));
    CHECK(strstr(t, "t_collected") < strstr(t, "t_other"));
    /* Added twice: written once, and there until removed twice. */
    metrics_collector_add(write_probe, &p);
    CHECK_EQ_INT(occurrences(scrape(), "# TYPE t_collected "), 1);
    metrics_collector_remove(write_probe, &p);
    CHECK_EQ_INT(occurrences(scrape(), "# TYPE t_collected "), 1);
    metrics_collector_remove(write_probe, &p);
    t = scrape();
    CHECK(strstr(t, "t_collected") == NULL);
    CHECK(strstr(t, "\nt_other 7\n") != NULL);
    metrics_collector_remove(write_probe, &p); /* not there: nothing happens */
    metrics_collector_remove(write_probe, &q);
    CHECK(strstr(scrape(), "t_other") == NULL);
}

static atomic_int scraping;

static void *scrape_loop(void *arg)
{
    (void)arg;
    static char buf[1 << 20];
    while (atomic_load(&scraping)) {
        prom_writer w;
        prom_init(&w, buf, sizeof(buf));
        metrics_write(&w);
    }
    return NULL;
}

TEST(collector_removal_races_a_scrape)
{
    /* Each context is freed as soon as its collector is removed: a scrape still running the
     * collector would read freed memory (ASan) or race the free (TSan). */
    atomic_store(&scraping, 1);
    pthread_t th;
    pthread_create(&th, NULL, scrape_loop, NULL);
    for (int i = 0; i < 2000; i++) {
        probe *p = malloc(sizeof(*p));
        p->name = "t_racing";
        p->value = i;
        metrics_collector_add(write_probe, p);
        if (i % 7 == 0)
            sched_yield();
        metrics_collector_remove(write_probe, p);
        free(p);
    }
    atomic_store(&scraping, 0);
    pthread_join(th, NULL);
    CHECK(strstr(scrape(), "t_racing") == NULL);
}

int main(void)
{
    rt_block_signals();
    sem_init(&counted, 0, 0);
    int started = rt_start(&rt, 1) == 0;
    have_loop = started;
    if (have_loop) {
        metrics_init(rt.loops, 1);
        have_loop = actor_spawn(rt.loops[0], &counter_def, NULL, &counter) == 0;
    } else {
        printf("no io_uring here: loop cells are not tested\n");
        metrics_init(NULL, 0);
    }
    RUN(counter_gauge_histogram_are_written);
    RUN(loop_and_thread_counts_are_summed);
    RUN(runtime_figures_are_written);
    RUN(collector_samples_appear_until_removed);
    RUN(collector_removal_races_a_scrape);
    if (started)
        rt_stop(&rt, 1000000000ull);
    actor_free_all();
    metrics_free_all();
    sem_destroy(&counted);
    return test_summary();
}
