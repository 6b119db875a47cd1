/* Dispatch benchmark: jobs per second through enqueue -> claim -> complete with no-op work, and
 * the claim round trip's p50/p99, on the real path: a producer actor creates jobs through the
 * dispatcher in batches of 32 (a few batches in flight), the dispatcher claims them for noop
 * workers, the workers finish at once, the dispatcher writes the outcomes in batches.
 *
 *   bench_dispatch JOBS SLOTS [RATE]   store and queue from the environment as for reeld
 *                                      itself: REELD_DATA_DIR (sqlite), POSTGRES_URL, REDIS_URL
 *
 * With RATE (jobs/s), the producer offers that load instead of all it can: a batch every
 * BATCH/RATE seconds, whatever is in flight (an open loop, as uploads arrive), so the claim's
 * latency is measured at a load below the store's capacity, not only at saturation. A tick the
 * busy loop misses is skipped, not made up: the jobs/s printed is what was offered and done.
 *
 * Prints one line: "jobs N seconds S jobs_per_s X claims C claim_p50_ms A claim_p99_ms B".
 * bench/dispatch starts the servers and runs it for sqlite, postgres and postgres+redis. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cmd/jobs.h"
#include "src/rt/actor.h"
#include "src/rt/log.h"
#include "src/rt/loop.h"
#include "src/store/client.h"
#include "src/store/store.h"

#define BATCH    32
#define INFLIGHT 4

typedef struct producer {
    rd_actor *dispatcher;
    rd_actor *self;
    int64_t total, sent, acked;
    int inflight;
    int64_t asset_base;
    double rate;   /* jobs/s offered; 0: as fast as the dispatcher takes them */
    rd_timer pace; /* rate: one batch per tick */
} producer;

static void produce(rd_actor *self, producer *p);

static int created(rd_actor *self, rd_msg *reply, int err, void *ctx)
{
    producer *p = ctx;
    p->inflight--;
    if (err < 0 || msg_body(reply, store)->status < 0) {
        fprintf(stderr, "bench: create failed: %d\n",
                err < 0 ? err : msg_body(reply, store)->status);
        exit(1);
    }
    p->acked += msg_body(reply, store)->n;
    msg_free(reply);
    if (p->rate == 0)
        produce(self, p);
    return 0;
}

static void send_batch(rd_actor *self, producer *p);

static void produce(rd_actor *self, producer *p)
{
    while (p->inflight < INFLIGHT && p->sent < p->total)
        send_batch(self, p);
}

static void paced(rd_timer *t)
{
    producer *p = (producer *)(void *)((char *)t - offsetof(producer, pace));
    if (p->sent < p->total)
        send_batch(p->self, p);
    else
        loop_timer_cancel(p->self->loop, t);
}

static void send_batch(rd_actor *self, producer *p)
{
    rd_msg *m = store_request(STORE_JOB_CREATE);
    struct rd_msg_store *b = msg_body(m, store);
    while (b->n < BATCH && p->sent < p->total) {
        rd_job *j = &b->jobs[b->n++];
        j->asset_id = p->asset_base + p->sent++;
        snprintf(j->kind, sizeof(j->kind), "noop");
        j->max_attempts = 3;
    }
    if (actor_request(self, p->dispatcher, m, 30000, created, p) < 0) {
        fprintf(stderr, "bench: the dispatcher refused a request\n");
        exit(1);
    }
    p->inflight++;
}

static int producer_init(rd_actor *self, void *arg)
{
    producer *p = arg;
    self->state = p;
    p->self = self;
    if (p->rate > 0) {
        p->pace.fire = paced;
        uint64_t every = (uint64_t)(BATCH * 1e9 / p->rate);
        loop_timer_start(self->loop, &p->pace, 0, every);
        return 0;
    }
    produce(self, p);
    return 0;
}

static int producer_handle(rd_actor *self, rd_msg *m)
{
    (void)self;
    (void)m;
    return RD_DONE;
}

static const rd_actor_def producer_def = {
    .name = "bench-producer", .init = producer_init, .handle = producer_handle};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    int64_t total = argc > 1 ? atoll(argv[1]) : 20000;
    int slots = argc > 2 ? atoi(argv[2]) : 64;
    double rate = argc > 3 ? atof(argv[3]) : 0;
    rd_config cfg;
    char err[512];
    char *none[] = {"bench"};
    if (config_load(&cfg, 1, none, err, sizeof(err)) < 0) {
        fprintf(stderr, "bench: %s\n", err);
        return 2;
    }
    log_set_level(getenv("REELD_LOG") ? cfg.log_level : "error");
    rd_jobs jobs;
    if (jobs_config(&jobs, &cfg, err, sizeof(err)) < 0) {
        fprintf(stderr, "bench: %s\n", err);
        return 2;
    }
    rd_runtime rt;
    if (rt_start(&rt, cfg.cores) < 0)
        return 1;
    if (jobs_start(&jobs, &cfg, &rt, slots, err, sizeof(err)) < 0) {
        fprintf(stderr, "bench: %s\n", err);
        return 1;
    }
    rd_store_client *client;
    store_client_create(rt.loops[0], jobs.store, &client);

    rd_msg *ans = NULL;
    if (store_client_call(client, store_request(STORE_JOB_COUNTS), 10000, &ans) < 0) {
        fprintf(stderr, "bench: the store does not answer\n");
        return 1;
    }
    msg_free(ans);

    producer p = {.dispatcher = jobs.dispatcher,
                  .total = total,
                  .asset_base = (int64_t)time(NULL) * 1000000,
                  .rate = rate};
    double t0 = now_s();
    rd_actor *prod;
    actor_spawn(rt.loops[0], &producer_def, &p, &prod);
    int64_t done = 0;
    while (done < total) {
        struct timespec ts = {0, 2000000};
        nanosleep(&ts, NULL);
        done = (int64_t)dispatcher_outcomes_written();
        if (now_s() - t0 > 300) {
            fprintf(stderr, "bench: gave up after 300 s with %lld of %lld done\n", (long long)done,
                    (long long)total);
            return 1;
        }
    }
    double secs = now_s() - t0;
    /* The store's own count, to be sure every job ended succeeded. */
    int64_t completed = -1;
    if (store_client_call(client, store_request(STORE_JOB_COUNTS), 10000, &ans) == 0)
        completed = msg_body(ans, store)->counts.completed;
    msg_free(ans);
    if (completed < total) {
        fprintf(stderr, "bench: only %lld of %lld jobs succeeded\n", (long long)completed,
                (long long)total);
        return 1;
    }
    store_client_destroy(client);
    rt_stop(&rt, 2000000000ull);
    uint64_t claims = 0;
    double p50 = 0, p99 = 0;
    dispatcher_claim_latency(jobs.dispatcher, &claims, &p50, &p99);
    printf("jobs %lld seconds %.3f jobs_per_s %.0f claims %llu claim_p50_ms %.3f claim_p99_ms "
           "%.3f\n",
           (long long)total, secs, (double)total / secs, (unsigned long long)claims, p50, p99);
    jobs_free(&jobs);
    actor_free_all();
    return 0;
}
