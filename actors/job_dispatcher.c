/* The job dispatcher. The contract is in job_dispatcher.h; this file explains the surprises.
 *
 * owns:  worker credits, the running table, unwritten completions, the Redis queue.
 * takes: MSG_JOB_PULL, MSG_JOB_PROGRESS, MSG_JOB_DONE, MSG_JOB_CANCEL (request), MSG_STORE
 *        (request, forwarded).
 * sends: MSG_JOB_ASSIGN, MSG_JOB_CANCEL to workers; MSG_STORE to the store; the queue gauges
 *        to a scrape (write_queue, a metrics collector).
 * never: blocks; claims more than its workers' credit; writes a job without the fence.
 *
 * One claim is in flight at a time, so credit cannot be promised twice. Completions are
 * written in batches (up to 32 per statement, two statements in flight): a worker's MSG_JOB_DONE
 * costs no round trip of its own, and a store that is down only delays them: they stay queued
 * and are retried, so nothing a worker finished is forgotten while the process lives. */
#include "actors/job_dispatcher.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "proto/prom.h"
#include "src/rt/alloc.h"
#include "src/rt/log.h"
#include "src/rt/metrics.h"
#include "src/store/store.h"

#define MAX_WORKERS     256
#define MAX_RUNNING     1024
#define MAX_DONE        2048
#define WRITES_INFLIGHT 2
#define OUTCOMES_HIGH   256   /* unwritten outcomes above which no more jobs are claimed */
#define STORE_TIMEOUT   10000 /* ms a store request may take before it counts as failed */
#define READ_BLOCK_MS   1000
#define CLAIM_SAMPLES   65536
/* The finished jobs (which only grow) are counted at most every COUNT_ALL_MIN_MS, and no more
 * often than keeps that count to 1/COUNT_ALL_SHARE of the time: 2 s on a young store, a minute
 * where counting the history takes 0.6 s. (The queue is counted every second.) */
#define COUNT_ALL_MIN_MS 2000
#define COUNT_ALL_SHARE  100

#define OUTCOME_KINDS    5 /* entries of outcome_kinds */

/* Kinds one worker's credit is for: a worker whose slots run more than one kind of job (the
 * transcode worker's encoders also run exports) pulls "transcode,export", and its credit is
 * spent on whichever kind is due first, so a slot is never promised twice. */
#define KINDS_PER_WORKER 4

typedef struct worker {
    rd_actor *a;
    char kind[RD_JOB_KIND_MAX]; /* as pulled: one kind, or several separated by commas */
    char kinds[KINDS_PER_WORKER][RD_JOB_KIND_MAX];
    int nkinds;
    uint32_t credit; /* jobs it asked for and has not been given */
    uint32_t empty;  /* embedded: bit k: the last claim of kinds[k] came back short */
} worker;

typedef struct running {
    int64_t id;
    int32_t attempt;
    int32_t progress;
    int lost;             /* cancelled or leased elsewhere: the worker was told to stop */
    uint64_t progress_ns; /* when the worker last said how far along it is (or started) */
    rd_actor *worker;
    char kind[RD_JOB_KIND_MAX];
    char entry[32]; /* stream entry to XACK when done ("" when none) */
} running;

typedef struct outcome {
    int64_t id;
    int32_t attempt;
    int32_t status;
    int32_t release;  /* hand the job back (this node stops); neither success nor failure */
    int64_t retry_ms; /* fail: delay before the next attempt; < 0: do not retry */
    char kind[RD_JOB_KIND_MAX];
    char entry[32];
    char error[RD_JOB_ERROR_MAX];
} outcome;

/* A callback context of a request in flight. Tracked so that one whose answer never comes (the
 * loops stopped first) is still freed, by dispatcher_free. */
typedef struct ctx_link ctx_link;
struct ctx_link {
    ctx_link *prev, *next;
    void (*dispose)(ctx_link *l);
};

typedef struct disp disp;
struct disp {
    rd_actor *self, *store;
    rd_dispatcher_config dc;
    worker workers[MAX_WORKERS];
    int nworkers;
    int next_worker; /* round-robin start */
    running run[MAX_RUNNING];
    int nrun;
    outcome done[MAX_DONE];
    int ndone;
    int claim_inflight;
    int claim_asked;
    /* Embedded: a kind whose last claim came back short is not asked again until a wake (a
     * job created or ended) or the tick. Per kind: a short claim of webhooks says nothing of
     * transcodes. */
    char claim_kind[RD_JOB_KIND_MAX];
    int hb_inflight;
    int writes_inflight;
    int writes_blocked; /* the store failed a write: retry on the tick */
    int relay_inflight, due_inflight, sweep_inflight, counts_inflight;
    uint64_t counts_ns;   /* when the queue counts were last asked for */
    uint64_t all_due_ns;  /* when the finished jobs are to be counted too (0: at once) */
    int store_failing;    /* logged once when the store starts failing, once when it is back */
    ctx_link contexts;    /* callback contexts of requests in flight (a ring; this is its head) */
    int republish;        /* Redis lost the stream: publish what is due, page by page */
    int64_t republish_ms; /* when (wall clock): what was announced before it is republished */
    int64_t republish_cursor;
    rd_stream_entry entries[RD_STORE_BATCH]; /* announced jobs being claimed */
    int nentries;
    /* Fleet: entries of another kind that came in the same read as those being claimed,
     * claimed next (one claim is in flight at a time). */
    rd_stream_entry held[RD_STORE_BATCH];
    int nheld;
    rd_timer tick, hb, sweep;
    rd_redisq *q;
    uint32_t rnd;
    int stopping; /* the loop is stopping: no new claims */
    uint64_t claim_sent_ns;
    uint32_t claim_us[CLAIM_SAMPLES]; /* claim round trips, a ring (benchmarks, metrics) */
    uint64_t nclaims;
    rd_stop_hook hook; /* in the settings copy (arg): registered once, survives restarts */
    int collecting;    /* in the settings copy: write_queue is a metrics collector */
    disp *live;        /* in the settings copy: the running state */
    rd_series *outcomes[OUTCOME_KINDS]; /* reeld_job_outcomes_total by outcome_kinds */
};

/* reeld_job_outcomes_total{outcome}: what each written attempt came to. */
static const char *const outcome_kinds[] = {"succeeded", "retried", "failed", "dead", "cancelled"};

static _Atomic uint64_t written_total; /* outcomes the store confirmed, all dispatchers */
/* The last queue counts read from the store (refreshed about once a second), for /api/health. */
static _Atomic int64_t counts_cache[9];
static _Atomic int counts_known;

static void try_claim(disp *d);
static int claim_held(disp *d);
static void flush_done(disp *d);
static void relay_outbox(disp *d);
static void run_due(disp *d);

static uint32_t rnd_next(disp *d)
{
    d->rnd ^= d->rnd << 13;
    d->rnd ^= d->rnd >> 17;
    d->rnd ^= d->rnd << 5;
    return d->rnd;
}

int64_t dispatcher_backoff_ms(const rd_dispatcher_config *dc, int attempt, uint32_t rnd)
{
    int64_t delay = dc->retry_base_ms;
    for (int i = 1; i < attempt && delay < dc->retry_max_ms; i++)
        delay *= 2;
    if (delay > dc->retry_max_ms)
        delay = dc->retry_max_ms;
    /* Full-ish jitter: spread retries of jobs that failed together. */
    return delay / 2 + (int64_t)((uint64_t)(delay / 2) * rnd / UINT32_MAX);
}

static rd_msg *request(disp *d, rd_store_op op)
{
    rd_msg *m = store_request(op);
    snprintf(msg_body(m, store)->owner, RD_LEASE_OWNER_MAX, "%s", d->dc.owner);
    msg_body(m, store)->lease_ms = d->dc.lease_ms;
    return m;
}

/* Sends a store request; on refusal the callback is not called and the message is freed. */
static int ask(disp *d, rd_msg *m, rd_reply_fn cb, void *ctx)
{
    int r = actor_request(d->self, d->store, m, STORE_TIMEOUT, cb, ctx);
    if (r < 0) {
        msg_free(m);
        log_warn("dispatcher_store_refused", KV_ERRNO(r));
    }
    return r;
}

/* The status of a store answer: the transport's error, else the store's. */
static int status_of(const rd_msg *reply, int err)
{
    return err < 0 ? err : msg_body(reply, store)->status;
}

/* A store outage is logged when it begins and when it ends, not at every retry. */
static void store_failed(disp *d, const char *what, int err)
{
    if (d->store_failing)
        return;
    d->store_failing = 1;
    log_warn("dispatcher_store_failing", KV_STR("in", what), KV_ERRNO(err),
             KV_STR("detail", store_strerror(err)));
}

static void store_answered(disp *d)
{
    if (!d->store_failing)
        return;
    d->store_failing = 0;
    log_info("dispatcher_store_back");
}

static running *find_running(disp *d, int64_t id, int32_t attempt)
{
    for (int i = 0; i < d->nrun; i++)
        if (d->run[i].id == id && (attempt < 0 || d->run[i].attempt == attempt))
            return &d->run[i];
    return NULL;
}

/* The index of `kind` among the kinds of `w`, or -1. */
static int kind_of(const worker *w, const char *kind)
{
    for (int k = 0; k < w->nkinds; k++)
        if (strcmp(w->kinds[k], kind) == 0)
            return k;
    return -1;
}

static uint32_t credit_for(const disp *d, const char *kind)
{
    uint32_t n = 0;
    for (int i = 0; i < d->nworkers; i++)
        if (kind_of(&d->workers[i], kind) >= 0)
            n += d->workers[i].credit;
    return n;
}

/* Embedded: every kind may have due jobs again. */
static void queue_filled(disp *d)
{
    for (int i = 0; i < d->nworkers; i++)
        d->workers[i].empty = 0;
}

/* A kind some worker has credit for (and, embedded, not known to have nothing due), starting
 * the search round-robin over workers and, within a worker, in the order it named them; NULL
 * when none. */
static const char *wanted_kind(disp *d)
{
    for (int k = 0; k < d->nworkers; k++) {
        worker *w = &d->workers[(d->next_worker + k) % d->nworkers];
        for (int j = 0; w->credit > 0 && j < w->nkinds; j++) {
            if (!(w->empty & (1u << j))) {
                d->next_worker = (d->next_worker + k + 1) % d->nworkers;
                return w->kinds[j];
            }
        }
    }
    return NULL;
}

/* ---- completions ---- */

static outcome *queue_outcome(disp *d, const running *r, int status, int retryable,
                              const char *error)
{
    if (d->ndone == MAX_DONE) {
        /* Bounded (claims stop long before): the lease expires and the job runs again. */
        log_error("dispatcher_outcomes_full", KV_INT("job", r->id));
        return NULL;
    }
    outcome *o = &d->done[d->ndone++];
    memset(o, 0, sizeof(*o));
    o->id = r->id;
    o->attempt = r->attempt;
    o->status = status;
    o->retry_ms = retryable ? dispatcher_backoff_ms(&d->dc, r->attempt, rnd_next(d)) : -1;
    snprintf(o->kind, sizeof(o->kind), "%s", r->kind);
    snprintf(o->entry, sizeof(o->entry), "%s", r->entry);
    snprintf(o->error, sizeof(o->error), "%s", error ? error : "");
    return o;
}

static void track(disp *d, ctx_link *l, void (*dispose)(ctx_link *l))
{
    l->dispose = dispose;
    l->next = d->contexts.next;
    l->prev = &d->contexts;
    d->contexts.next->prev = l;
    d->contexts.next = l;
}

static void untrack(ctx_link *l)
{
    l->prev->next = l->next;
    l->next->prev = l->prev;
}

static void dispose_free(ctx_link *l)
{
    free(l);
}

typedef struct write_ctx {
    ctx_link link; /* first: the context is freed through it */
    int n;
    outcome o[RD_STORE_BATCH];
} write_ctx;

static int written(rd_actor *self, rd_msg *reply, int err, void *ctx)
{
    disp *d = self->state;
    write_ctx *w = ctx;
    d->writes_inflight--;
    int st = status_of(reply, err);
    if (st < 0) {
        /* Not written: keep them (in front) and retry on the tick. */
        store_failed(d, "write", st);
        int room = MAX_DONE - d->ndone < w->n ? MAX_DONE - d->ndone : w->n;
        memmove(&d->done[room], &d->done[0], sizeof(outcome) * (size_t)d->ndone);
        memcpy(&d->done[0], w->o, sizeof(outcome) * (size_t)room);
        d->ndone += room;
        d->writes_blocked = 1;
    } else {
        store_answered(d);
        struct rd_msg_store *b = msg_body(reply, store);
        atomic_fetch_add_explicit(&written_total, b->n, memory_order_relaxed);
        /* A job that ended may have made work in the same transaction (a webhook event for a
         * transcode's end) or let some go (an asset's next event, once the one before it is
         * delivered or dead): look now, not at the next poll (REELD_JOB_POLL_MS). */
        int ended = 0;
        for (uint32_t i = 0; i < b->n; i++)
            ended |= b->jobs[i].state != JOB_QUEUED && b->jobs[i].state != JOB_RUNNING;
        if (ended) {
            queue_filled(d);
            relay_outbox(d);
        }
        for (uint32_t i = 0; i < b->n; i++) {
            const rd_job *j = &b->jobs[i];
            const outcome *o = &w->o[i];
            int k = o->release                  ? -1
                    : j->state == JOB_SUCCEEDED ? 0
                    : j->state == JOB_QUEUED    ? 1
                    : j->state == JOB_FAILED    ? 2
                    : j->state == JOB_DEAD      ? 3
                    : j->state == JOB_CANCELLED ? 4
                                                : -1;
            if (k >= 0)
                metrics_add(d->outcomes[k], 1);
            log_info(o->release       ? "job_released"
                     : o->status == 0 ? "job_succeeded"
                                      : "job_failed",
                     KV_INT("job", j->id), KV_INT("attempt", o->attempt),
                     KV_STR("state", job_state_name(j->state)), KV_STR("error", o->error));
            if (d->q != NULL && o->entry[0])
                redisq_ack(d->q, o->kind, o->entry);
        }
    }
    if (reply != NULL)
        msg_free(reply);
    untrack(&w->link);
    free(w);
    flush_done(d);
    try_claim(d);
    return 0;
}

static rd_store_op write_op(const outcome *o)
{
    return o->release ? STORE_JOB_RELEASE : o->status != 0 ? STORE_JOB_FAIL : STORE_JOB_COMPLETE;
}

/* Writes queued outcomes: batches of one kind of write (complete, fail or release). */
static void flush_done(disp *d)
{
    while (d->ndone > 0 && d->writes_inflight < WRITES_INFLIGHT && !d->writes_blocked) {
        rd_store_op op = write_op(&d->done[0]);
        write_ctx *w = rd_calloc(1, sizeof(*w), "a completion batch");
        int keep = 0;
        for (int i = 0; i < d->ndone; i++) {
            if (write_op(&d->done[i]) == op && w->n < RD_STORE_BATCH)
                w->o[w->n++] = d->done[i];
            else
                d->done[keep++] = d->done[i];
        }
        d->ndone = keep;
        rd_msg *m = request(d, op);
        struct rd_msg_store *b = msg_body(m, store);
        b->n = (uint32_t)w->n;
        for (int i = 0; i < w->n; i++) {
            b->jobs[i].id = w->o[i].id;
            b->jobs[i].attempts = w->o[i].attempt;
            b->jobs[i].retry_ms = w->o[i].retry_ms;
            snprintf(b->jobs[i].error, RD_JOB_ERROR_MAX, "%s", w->o[i].error);
        }
        d->writes_inflight++;
        if (ask(d, m, written, w) < 0) {
            d->writes_inflight--;
            memcpy(&d->done[d->ndone], w->o, sizeof(outcome) * (size_t)w->n);
            d->ndone += w->n;
            d->writes_blocked = 1;
            free(w);
            return;
        }
        track(d, &w->link, dispose_free);
    }
}

/* ---- claims ---- */

static void assign(disp *d, const rd_job *job, const char *entry)
{
    worker *w = NULL;
    for (int k = 0; k < d->nworkers && w == NULL; k++) {
        worker *c = &d->workers[k];
        if (c->credit > 0 && kind_of(c, job->kind) >= 0)
            w = c;
    }
    running r = {.id = job->id, .attempt = job->attempts, .progress_ns = rd_now_ns()};
    snprintf(r.kind, sizeof(r.kind), "%s", job->kind);
    snprintf(r.entry, sizeof(r.entry), "%s", entry ? entry : "");
    if (w == NULL || d->nrun == MAX_RUNNING) {
        /* Cannot happen while claims stay within credit; hand the job back if it does. */
        log_error("dispatcher_no_worker", KV_INT("job", job->id), KV_STR("kind", job->kind));
        outcome *o = queue_outcome(d, &r, 0, 0, "");
        if (o != NULL)
            o->release = 1;
        return;
    }
    rd_msg *m = msg_new(MSG_JOB_ASSIGN);
    msg_body(m, job_assign)->job = *job;
    if (actor_send(w->a, m) < 0) {
        msg_free(m);
        w->credit = 0;
        outcome *o = queue_outcome(d, &r, 0, 0, "");
        if (o != NULL)
            o->release = 1; /* the worker is gone: the job did not run */
        return;
    }
    w->credit--;
    r.worker = w->a;
    d->run[d->nrun++] = r;
    log_info("job_started", KV_INT("job", job->id), KV_STR("kind", job->kind),
             KV_INT("attempt", job->attempts), KV_STR("owner", d->dc.owner));
}

static int claimed(rd_actor *self, rd_msg *reply, int err, void *ctx)
{
    (void)ctx;
    disp *d = self->state;
    d->claim_inflight = 0;
    d->claim_us[d->nclaims++ % CLAIM_SAMPLES] = (uint32_t)((rd_now_ns() - d->claim_sent_ns) / 1000);
    int st = status_of(reply, err);
    int n = 0;
    if (st < 0) {
        store_failed(d, "claim", st);
        for (int i = 0; d->q == NULL && i < d->nworkers; i++)
            d->workers[i].empty = ~0u; /* try again on the tick */
    } else {
        store_answered(d);
        struct rd_msg_store *b = msg_body(reply, store);
        n = (int)b->n;
        for (int i = 0; i < n; i++) {
            const char *entry = NULL;
            for (int k = 0; k < d->nentries; k++) {
                if (d->entries[k].job_id == b->jobs[i].id) {
                    entry = d->entries[k].id;
                    d->entries[k].job_id = 0; /* taken: acknowledged when done */
                    break;                    /* a duplicate announcement is acknowledged now */
                }
            }
            assign(d, &b->jobs[i], entry);
        }
        for (int i = 0; d->q == NULL && i < d->nworkers; i++) {
            int k = kind_of(&d->workers[i], d->claim_kind);
            if (k >= 0 && n < d->claim_asked)
                d->workers[i].empty |= 1u << k;
            else if (k >= 0)
                d->workers[i].empty &= ~(1u << k);
        }
    }
    /* Announced jobs not claimed here are running elsewhere, finished, or not due: the store
     * says so, and its sweep publishes them again when they are due. When the store did not
     * answer, the entries stay for the tick to claim again. */
    if (st == 0) {
        for (int k = 0; d->q != NULL && k < d->nentries; k++)
            if (d->entries[k].job_id != 0)
                redisq_ack(d->q, d->entries[k].kind, d->entries[k].id);
        d->nentries = 0;
    }
    if (reply != NULL)
        msg_free(reply);
    if (st == 0 && claim_held(d))
        return 0;
    if (st == 0)
        try_claim(d); /* embedded: more may be due, or another kind; fleet: read again */
    return 0;
}

static void claim_from_store(disp *d, const char *kind, uint32_t n, const rd_stream_entry *e,
                             int ne)
{
    rd_msg *m = request(d, STORE_JOB_CLAIM);
    struct rd_msg_store *b = msg_body(m, store);
    snprintf(b->kind, sizeof(b->kind), "%s", kind);
    snprintf(d->claim_kind, sizeof(d->claim_kind), "%s", kind);
    b->limit = n > RD_STORE_BATCH ? RD_STORE_BATCH : n;
    d->nentries = 0;
    for (int i = 0; i < ne && i < (int)b->limit; i++) {
        d->entries[d->nentries++] = e[i];
        b->jobs[b->n++].id = e[i].job_id;
    }
    /* Entries beyond the credit: not ours to claim now; leave them pending (XAUTOCLAIM). */
    d->claim_asked = (int)b->limit;
    d->claim_inflight = 1;
    d->claim_sent_ns = rd_now_ns();
    if (ask(d, m, claimed, NULL) < 0)
        d->claim_inflight = 0; /* entries, if any, stay for the tick */
}

/* Claims the held entries of one kind; 1 when a claim went out. Entries of a kind that has
 * no credit now are left pending: XAUTOCLAIM returns them after the lease. */
static int claim_held(disp *d)
{
    while (d->nheld > 0 && !d->claim_inflight) {
        char kind[RD_JOB_KIND_MAX];
        snprintf(kind, sizeof(kind), "%s", d->held[0].kind);
        rd_stream_entry e[RD_STORE_BATCH];
        int n = 0, keep = 0;
        for (int i = 0; i < d->nheld; i++) {
            if (strcmp(d->held[i].kind, kind) == 0)
                e[n++] = d->held[i];
            else
                d->held[keep++] = d->held[i];
        }
        d->nheld = keep;
        uint32_t credit = credit_for(d, kind);
        if (credit > 0) {
            claim_from_store(d, kind, credit, e, n);
            return d->claim_inflight;
        }
    }
    return 0;
}

static void on_entries(void *ctx, const char *kind, const rd_stream_entry *e, int n, int err)
{
    disp *d = ctx;
    if (err < 0 || n == 0) {
        if (err == 0)
            try_claim(d); /* the blocking read timed out empty: read again */
        return;
    }
    uint32_t credit = credit_for(d, kind);
    if (credit == 0) {
        /* Credit went away meanwhile: leave the entries pending; XAUTOCLAIM returns them. */
        return;
    }
    if (d->claim_inflight) {
        /* Another kind's entries from the same read are being claimed: these are next. */
        for (int i = 0; i < n && d->nheld < RD_STORE_BATCH; i++)
            d->held[d->nheld++] = e[i];
        return;
    }
    claim_from_store(d, kind, credit, e, n);
}

static void on_reset(void *ctx)
{
    disp *d = ctx;
    log_info("queue_republish", KV_STR("why", "the stream was created or lost"));
    d->republish = 1;
    d->republish_ms = rd_wall_ms();
    d->republish_cursor = 0;
    run_due(d);
}

static void try_claim(disp *d)
{
    /* Back-pressure: while outcomes wait for the store, claiming more only makes more. */
    if (d->claim_inflight || d->stopping || d->nentries > 0 || d->ndone >= OUTCOMES_HIGH)
        return;
    if (d->q != NULL) {
        if (d->nheld > 0 || redisq_reading(d->q))
            return;
        /* One blocking read of every kind with credit: COUNT is per stream, so the smallest
         * credit, which no kind's entries can exceed. */
        const char *kinds[MAX_WORKERS];
        uint32_t credit[MAX_WORKERS];
        int nk = 0;
        for (int i = 0; i < d->nworkers; i++) {
            const worker *w = &d->workers[i];
            for (int j = 0; j < w->nkinds; j++) {
                int k = 0;
                while (k < nk && strcmp(kinds[k], w->kinds[j]) != 0)
                    k++;
                if (k == nk) {
                    if (nk == MAX_WORKERS)
                        break;
                    kinds[nk] = w->kinds[j];
                    credit[nk++] = 0;
                }
                credit[k] += w->credit;
            }
        }
        uint32_t count = RD_STORE_BATCH;
        int with = 0;
        for (int k = 0; k < nk; k++) {
            if (credit[k] == 0)
                continue;
            count = credit[k] < count ? credit[k] : count;
            kinds[with++] = kinds[k];
        }
        if (with > 0)
            redisq_read(d->q, kinds, with, (int)count, READ_BLOCK_MS);
        return;
    }
    const char *kind = wanted_kind(d);
    if (kind == NULL)
        return;
    claim_from_store(d, kind, credit_for(d, kind), NULL, 0);
}

/* ---- heartbeats ---- */

static int heartbeat_done(rd_actor *self, rd_msg *reply, int err, void *ctx)
{
    (void)ctx;
    disp *d = self->state;
    d->hb_inflight--;
    int st = status_of(reply, err);
    if (st < 0) {
        store_failed(d, "heartbeat", st);
    } else {
        struct rd_msg_store *b = msg_body(reply, store);
        for (uint32_t i = 0; i < b->n; i++) {
            const rd_job *j = &b->jobs[i];
            if (j->state == JOB_RUNNING)
                continue;
            running *r = find_running(d, j->id, j->attempts);
            if (r == NULL || r->lost)
                continue;
            r->lost = 1;
            log_warn("job_lease_lost", KV_INT("job", j->id), KV_INT("attempt", j->attempts),
                     KV_STR("state", j->state ? job_state_name(j->state) : "leased elsewhere"));
            rd_msg *m = msg_new(MSG_JOB_CANCEL);
            msg_body(m, job_cancel)->id = j->id;
            msg_body(m, job_cancel)->prior_state = j->state;
            if (actor_send(r->worker, m) < 0)
                msg_free(m);
        }
    }
    if (reply != NULL)
        msg_free(reply);
    return 0;
}

static int counted(rd_actor *self, rd_msg *reply, int err, void *ctx)
{
    (void)ctx;
    disp *d = self->state;
    d->counts_inflight = 0;
    if (status_of(reply, err) == 0) {
        rd_queue_counts c = msg_body(reply, store)->counts;
        int all = c.completed >= 0; /* else the queue alone: the finished stay as last counted */
        if (all) {
            uint64_t now = rd_now_ns(), every = (now - d->counts_ns) * COUNT_ALL_SHARE;
            if (every < COUNT_ALL_MIN_MS * 1000000ull)
                every = COUNT_ALL_MIN_MS * 1000000ull;
            d->all_due_ns = now + every;
        }
        c.stream_length = c.stream_pending = -1;
        if (d->q != NULL)
            redisq_stats(d->q, &c.stream_length, &c.stream_pending);
        int64_t v[9] = {
            c.waiting,       c.active,         c.completed,        c.failed,           c.dead,
            c.stream_length, c.stream_pending, c.oldest_queued_ms, c.oldest_webhook_ms};
        for (int i = 0; i < 9; i++)
            if (all || i < 2 || i > 4) /* 2..4: completed, failed, dead */
                atomic_store_explicit(&counts_cache[i], v[i], memory_order_relaxed);
        atomic_store_explicit(&counts_known, 1, memory_order_release);
    }
    if (reply != NULL)
        msg_free(reply);
    return 0;
}

int dispatcher_queue_counts(rd_queue_counts *out)
{
    if (!atomic_load_explicit(&counts_known, memory_order_acquire))
        return -ENOENT;
    int64_t v[9];
    for (int i = 0; i < 9; i++)
        v[i] = atomic_load_explicit(&counts_cache[i], memory_order_relaxed);
    *out = (rd_queue_counts){v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8]};
    return 0;
}

/* The metrics collector: the queue, as the dispatchers last counted it (about a second old; the
 * finished jobs up to COUNT_ALL_SHARE times their count's time);
 * the stream's length and pending entries are what a fleet's autoscaler reads. Process-wide
 * like the counts: every dispatcher adds it with a NULL context, so it is written once. */
static void write_queue(prom_writer *w, void *ctx)
{
    (void)ctx;
    rd_queue_counts c;
    if (dispatcher_queue_counts(&c) != 0)
        return;
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

/* `proto` is the settings copy: added once per dispatcher, removed at its stop or free. */
static void stop_collecting(disp *proto)
{
    if (!proto->collecting)
        return;
    proto->collecting = 0;
    metrics_collector_remove(write_queue, NULL);
}

static void heartbeat_fire(rd_timer *t)
{
    disp *d = (disp *)(void *)((char *)t - offsetof(disp, hb));
    uint64_t now = rd_now_ns();
    /* Counted at each heartbeat (a second), with slack for the timer's jitter: with none, a
     * tick a hair early would skip a count and leave the figures two seconds old. The queue
     * every second; the finished jobs, which only grow, at the first count and then as
     * COUNT_ALL_MIN_MS and COUNT_ALL_SHARE say: counting them reads every job ever run. */
    if (!d->counts_inflight && now - d->counts_ns >= 900000000ull) {
        rd_msg *m = request(d, STORE_JOB_COUNTS);
        int all = now >= d->all_due_ns;
        if (!all)
            msg_body(m, store)->state = RD_COUNT_ACTIVE;
        d->counts_ns = now;
        d->counts_inflight = 1;
        if (ask(d, m, counted, NULL) < 0)
            d->counts_inflight = 0;
    }
    if (d->hb_inflight > 0)
        return; /* the store is slow: do not pile up */
    /* The lease is renewed only while the work moves: a worker silent for a whole lease is
     * taken to be stuck. It is told to stop, and the lease runs out for another node. */
    for (int k = 0; k < d->nrun; k++) {
        running *r = &d->run[k];
        if (r->lost || now - r->progress_ns < (uint64_t)d->dc.lease_ms * 1000000ull)
            continue;
        r->lost = 1;
        log_warn("job_stalled", KV_INT("job", r->id), KV_INT("attempt", r->attempt),
                 KV_INT("silent_ms", (now - r->progress_ns) / 1000000));
        rd_msg *m = msg_new(MSG_JOB_CANCEL);
        msg_body(m, job_cancel)->id = r->id;
        if (actor_send(r->worker, m) < 0)
            msg_free(m);
    }
    for (int i = 0; i < d->nrun; i += RD_STORE_BATCH) {
        rd_msg *m = request(d, STORE_JOB_HEARTBEAT);
        struct rd_msg_store *b = msg_body(m, store);
        for (int k = i; k < d->nrun && b->n < RD_STORE_BATCH; k++) {
            if (d->run[k].lost)
                continue;
            rd_job *j = &b->jobs[b->n++];
            j->id = d->run[k].id;
            j->attempts = d->run[k].attempt;
            j->progress = d->run[k].progress;
        }
        if (b->n == 0) {
            msg_free(m);
            continue;
        }
        d->hb_inflight++;
        if (ask(d, m, heartbeat_done, NULL) < 0)
            d->hb_inflight--;
    }
}

/* ---- fleet: outbox relay, republish, sweep ---- */

static int relayed(rd_actor *self, rd_msg *reply, int err, void *ctx)
{
    (void)ctx;
    disp *d = self->state;
    d->relay_inflight = 0;
    int st = status_of(reply, err);
    int again = 0;
    if (st == 0 && d->q != NULL) {
        struct rd_msg_store *b = msg_body(reply, store);
        for (uint32_t i = 0; i < b->n; i++)
            redisq_publish(d->q, b->jobs[i].id, b->jobs[i].kind);
        again = b->n == RD_STORE_BATCH;
    }
    if (reply != NULL)
        msg_free(reply);
    if (again)
        relay_outbox(d);
    return 0;
}

static void relay_outbox(disp *d)
{
    if (d->q == NULL || d->relay_inflight || !redisq_ready(d->q))
        return;
    rd_msg *m = request(d, STORE_OUTBOX_TAKE);
    msg_body(m, store)->limit = RD_STORE_BATCH;
    d->relay_inflight = 1;
    if (ask(d, m, relayed, NULL) < 0)
        d->relay_inflight = 0;
}

static int due_done(rd_actor *self, rd_msg *reply, int err, void *ctx)
{
    disp *d = self->state;
    int pass = (int)(intptr_t)ctx; /* 1: a republish's page */
    d->due_inflight = 0;
    int st = status_of(reply, err);
    int64_t next = 0;
    if (st == 0 && d->q != NULL) {
        struct rd_msg_store *b = msg_body(reply, store);
        for (uint32_t i = 0; i < b->n; i++)
            redisq_publish(d->q, b->jobs[i].id, b->jobs[i].kind);
        if (b->n > 0)
            log_info("queue_republished", KV_INT("jobs", b->n), KV_INT("after_reset", pass));
        next = b->cursor;
    }
    if (reply != NULL)
        msg_free(reply);
    if (st == 0 && next != 0) {
        d->republish_cursor = next;
        run_due(d);
    } else if (st == 0 && pass) {
        d->republish = 0;
    }
    return 0;
}

/* Publishes what is due and not announced for a lease, or after the stream was lost, what is
 * due and was announced before that. Not "everything due": jobs created since the reset are
 * announced by the outbox as usual, and a republish that took them too chased the producers
 * through the whole backlog, each job announced twice (20,000 jobs: 22,784 republished, 1,400
 * jobs/s). Announcement times are the database's clock and the reset this node's: a skew only
 * moves the edge, and what a late edge leaves out is republished by the lease-age pass. */
static void run_due(disp *d)
{
    int64_t age_ms = d->dc.lease_ms;
    if (d->republish) {
        age_ms = rd_wall_ms() - d->republish_ms;
        if (age_ms < 0)
            age_ms = 0;
    }
    if (d->q == NULL || d->due_inflight || !redisq_ready(d->q))
        return;
    rd_msg *m = request(d, STORE_JOB_DUE);
    msg_body(m, store)->lease_ms = age_ms;
    msg_body(m, store)->cursor = d->republish_cursor;
    msg_body(m, store)->limit = RD_STORE_BATCH;
    d->due_inflight = 1;
    if (ask(d, m, due_done, (void *)(intptr_t)d->republish) < 0)
        d->due_inflight = 0;
}

static int swept(rd_actor *self, rd_msg *reply, int err, void *ctx)
{
    (void)ctx;
    disp *d = self->state;
    d->sweep_inflight = 0;
    if (status_of(reply, err) == 0 && msg_body(reply, store)->n > 0)
        log_warn("jobs_dead_after_lease", KV_INT("jobs", msg_body(reply, store)->n));
    if (reply != NULL)
        msg_free(reply);
    return 0;
}

static void sweep_fire(rd_timer *t)
{
    disp *d = (disp *)(void *)((char *)t - offsetof(disp, sweep));
    if (!d->sweep_inflight) {
        d->sweep_inflight = 1;
        if (ask(d, request(d, STORE_JOB_SWEEP), swept, NULL) < 0)
            d->sweep_inflight = 0;
    }
    if (d->q != NULL) {
        if (!d->republish)
            d->republish_cursor = 0;
        run_due(d);
        /* Webhook deliveries are not what a fleet scales on: their stream is never the one
         * reported (every node has webhook workers). */
        int reported = 0;
        for (int i = 0; i < d->nworkers; i++)
            if (strcmp(d->workers[i].kinds[0], "webhook") != 0 &&
                (!reported || strcmp(d->workers[i].kinds[0], d->workers[0].kinds[0]) != 0)) {
                redisq_refresh_stats(d->q, d->workers[i].kinds[0]);
                reported = 1;
            }
        /* A node without workers (API and edge only) still reports the transcode stream: it is
         * what a fleet's autoscaler scales on, and any node may be the one scraped. */
        if (!reported)
            redisq_refresh_stats(d->q, "transcode");
        /* Entries a dead node read and never acknowledged come back after the lease: on this
         * timer, whether or not the blocking read is waiting (it nearly always is). */
        const char *kind = wanted_kind(d);
        if (kind != NULL && !d->claim_inflight)
            redisq_reclaim(d->q, kind, (int)credit_for(d, kind), d->dc.lease_ms);
    }
}

static void tick_fire(rd_timer *t)
{
    disp *d = (disp *)(void *)((char *)t - offsetof(disp, tick));
    queue_filled(d);
    d->writes_blocked = 0;
    flush_done(d);
    relay_outbox(d);
    if (d->nentries > 0 && !d->claim_inflight && !d->stopping) {
        /* Announced jobs whose claim failed (the store was unreachable): try them again. */
        rd_stream_entry e[RD_STORE_BATCH];
        int n = d->nentries;
        memcpy(e, d->entries, sizeof(e[0]) * (size_t)n);
        uint32_t credit = credit_for(d, e[0].kind);
        if (credit > 0) {
            claim_from_store(d, e[0].kind, credit, e, n);
            return;
        }
    }
    try_claim(d);
}

/* ---- requests from the API ---- */

typedef struct fwd {
    ctx_link link; /* first: the context is freed through it */
    rd_actor *from;
    uint32_t corr;
    uint16_t op;
} fwd;

static void answer_to(const fwd *f, rd_msg *reply)
{
    reply->corr = f->corr;
    reply->flags = RD_MSG_REPLY;
    reply->from = NULL;
    if (actor_send(f->from, reply) < 0)
        msg_free(reply);
}

static int forwarded(rd_actor *self, rd_msg *reply, int err, void *ctx)
{
    disp *d = self->state;
    fwd *f = ctx;
    if (reply == NULL) {
        reply = store_request((rd_store_op)f->op);
        msg_body(reply, store)->status = err;
    }
    struct rd_msg_store *b = msg_body(reply, store);
    if (b->status == 0 &&
        (b->op == STORE_JOB_CREATE || b->op == STORE_EXPORT_CREATE || b->op == STORE_CLIP_CREATE)) {
        int created = b->op == STORE_CLIP_CREATE; /* a clip's job is always new */
        for (uint32_t i = 0; i < b->n && b->op != STORE_CLIP_CREATE; i++)
            created += b->op == STORE_JOB_CREATE ? b->jobs[i].created : b->exports[i].created;
        if (created) {
            queue_filled(d);
            relay_outbox(d);
            try_claim(d);
        }
    }
    if (b->op == STORE_JOB_COUNTS) {
        b->counts.stream_length = b->counts.stream_pending = -1;
        if (d->q != NULL)
            redisq_stats(d->q, &b->counts.stream_length, &b->counts.stream_pending);
    }
    answer_to(f, reply);
    untrack(&f->link);
    free(f);
    return 0;
}

static int forward(disp *d, rd_msg *m)
{
    fwd *f = rd_calloc(1, sizeof(*f), "a forwarded request");
    f->from = m->from;
    f->corr = m->corr;
    f->op = msg_body(m, store)->op;
    m->flags = 0;
    int r = actor_request(d->self, d->store, m, STORE_TIMEOUT, forwarded, f);
    if (r < 0) {
        msg_body(m, store)->status = r == -EAGAIN ? -EAGAIN : -ENOTCONN;
        answer_to(f, m);
        free(f);
    } else {
        track(d, &f->link, dispose_free);
    }
    return RD_KEPT;
}

typedef struct cancel_ctx {
    ctx_link link; /* first */
    rd_msg *req;   /* the MSG_JOB_CANCEL request, answered in place */
} cancel_ctx;

static void dispose_cancel(ctx_link *l)
{
    msg_free(((cancel_ctx *)(void *)l)->req);
    free(l);
}

static int cancelled(rd_actor *self, rd_msg *reply, int err, void *ctx)
{
    disp *d = self->state;
    cancel_ctx *cc = ctx;
    rd_msg *req = cc->req;
    untrack(&cc->link);
    free(cc);
    int st = status_of(reply, err);
    struct rd_msg_job_cancel *c = msg_body(req, job_cancel);
    c->status = st;
    if (reply != NULL) {
        c->prior_state = msg_body(reply, store)->jobs[0].state;
        msg_free(reply);
    }
    if (st == 0) {
        log_info("job_cancelled", KV_INT("job", c->id),
                 KV_STR("was", job_state_name(c->prior_state)));
        running *r = find_running(d, c->id, -1);
        if (r != NULL && !r->lost) {
            r->lost = 1;
            rd_msg *m = msg_new(MSG_JOB_CANCEL);
            msg_body(m, job_cancel)->id = c->id;
            msg_body(m, job_cancel)->prior_state = JOB_CANCELLED;
            if (actor_send(r->worker, m) < 0)
                msg_free(m);
        }
    }
    if (req->from == NULL || actor_reply(req, req) < 0)
        msg_free(req);
    return 0;
}

/* ---- the actor ---- */

static void on_pull(disp *d, const struct rd_msg_job_pull *p, rd_actor *from)
{
    worker *w = NULL;
    for (int i = 0; i < d->nworkers; i++)
        if (d->workers[i].a == from && strcmp(d->workers[i].kind, p->kind) == 0)
            w = &d->workers[i];
    if (w == NULL) {
        if (d->nworkers == MAX_WORKERS || from == NULL) {
            log_error("dispatcher_workers_full", KV_STR("kind", p->kind));
            return;
        }
        w = &d->workers[d->nworkers++];
        w->a = from;
        snprintf(w->kind, sizeof(w->kind), "%s", p->kind);
        w->nkinds = 0;
        for (const char *k = w->kind; *k != '\0' && w->nkinds < KINDS_PER_WORKER;) {
            size_t len = strcspn(k, ",");
            if (len > 0)
                snprintf(w->kinds[w->nkinds++], RD_JOB_KIND_MAX, "%.*s", (int)len, k);
            k += len + (k[len] == ',');
        }
    }
    w->credit += p->slots;
    try_claim(d);
}

static void on_done(disp *d, const struct rd_msg_job_done *m)
{
    running *r = find_running(d, m->id, m->attempt);
    if (r == NULL) {
        log_debug("dispatcher_unknown_done", KV_INT("job", m->id), KV_INT("attempt", m->attempt));
        return;
    }
    if (m->status == -ECANCELED && r->lost) {
        log_info("job_stopped", KV_INT("job", r->id), KV_INT("attempt", r->attempt));
        if (d->q != NULL && r->entry[0])
            redisq_ack(d->q, r->kind, r->entry);
    } else {
        outcome *o = queue_outcome(d, r, m->status, m->retryable, m->error);
        if (o != NULL && m->retryable && m->retry_after_ms > 0)
            o->retry_ms = m->retry_after_ms; /* the worker's own schedule (webhooks) */
    }
    *r = d->run[--d->nrun];
    flush_done(d);
}

static int disp_handle(rd_actor *self, rd_msg *m)
{
    disp *d = self->state;
    switch (m->type) {
    case MSG_JOB_PULL:
        on_pull(d, msg_body(m, job_pull), m->from);
        return RD_DONE;
    case MSG_JOB_PROGRESS: {
        struct rd_msg_job_progress *p = msg_body(m, job_progress);
        running *r = find_running(d, p->id, p->attempt);
        if (r != NULL)
            r->progress = p->progress < 0 ? 0 : p->progress > 1000 ? 1000 : p->progress;
        if (r != NULL)
            r->progress_ns = rd_now_ns();
        return RD_DONE;
    }
    case MSG_JOB_DONE:
        on_done(d, msg_body(m, job_done));
        return RD_DONE;
    case MSG_JOB_CANCEL: {
        rd_msg *s = store_request(STORE_JOB_CANCEL);
        msg_body(s, store)->jobs[0].id = msg_body(m, job_cancel)->id;
        cancel_ctx *cc = rd_calloc(1, sizeof(*cc), "a cancel request");
        cc->req = m;
        if (ask(d, s, cancelled, cc) < 0) {
            free(cc);
            msg_body(m, job_cancel)->status = -ENOTCONN;
            if (m->from == NULL || actor_reply(m, m) < 0)
                return RD_DONE;
            return RD_KEPT;
        }
        track(d, &cc->link, dispose_cancel);
        return RD_KEPT;
    }
    case MSG_STORE:
        return forward(d, m);
    default:
        return RD_DONE;
    }
}

/* The loop is stopping: no more claims; the Redis connections close while the loop can still
 * reap their polls. Completions keep being written while the store answers. */
static void disp_stop_hook(rd_stop_hook *hook, rd_loop *loop)
{
    disp *proto = (disp *)(void *)((char *)hook - offsetof(disp, hook));
    stop_collecting(proto);
    disp *d = proto->live;
    if (d == NULL)
        return;
    d->stopping = 1;
    /* Running jobs go back to the queue now (not after their lease), their attempt uncounted,
     * and their workers are told to stop. The store answers while the loops drain. */
    for (int i = 0; i < d->nrun; i++) {
        running *r = &d->run[i];
        if (r->lost)
            continue;
        r->lost = 1;
        outcome *o = queue_outcome(d, r, 0, 0, "");
        if (o != NULL)
            o->release = 1;
        rd_msg *m = msg_new(MSG_JOB_CANCEL);
        msg_body(m, job_cancel)->id = r->id;
        if (actor_send(r->worker, m) < 0)
            msg_free(m);
    }
    d->writes_blocked = 0;
    flush_done(d);
    loop_timer_cancel(loop, &d->tick);
    loop_timer_cancel(loop, &d->hb);
    loop_timer_cancel(loop, &d->sweep);
    redisq_destroy(d->q);
    d->q = NULL;
}

static int disp_init(rd_actor *self, void *arg)
{
    disp *d = rd_calloc(1, sizeof(*d), "the job dispatcher");
    disp *proto = arg;
    proto->live = d;
    if (proto->hook.fn == NULL) {
        proto->hook.fn = disp_stop_hook;
        loop_on_stop(self->loop, &proto->hook);
        proto->collecting = 1;
        metrics_collector_add(write_queue, NULL);
    }
    d->self = self;
    d->store = proto->store;
    d->dc = proto->dc;
    d->rnd = (uint32_t)rd_now_ns() | 1;
    rd_metric *outcomes = metrics_family("reeld_job_outcomes_total",
                                         "Job attempts written to the store, by what they came to "
                                         "(retried: failed, queued again after a backoff)",
                                         RD_COUNTER, "outcome", NULL, 0);
    for (int i = 0; i < OUTCOME_KINDS; i++)
        d->outcomes[i] = metrics_series(outcomes, &outcome_kinds[i]);
    d->contexts.next = d->contexts.prev = &d->contexts;
    self->state = d;
    d->tick.fire = tick_fire;
    d->hb.fire = heartbeat_fire;
    d->sweep.fire = sweep_fire;
    int64_t hb_ms = d->dc.lease_ms / 3;
    if (hb_ms > 1000)
        hb_ms = 1000; /* progress is written with the heartbeat: once a second at most */
    if (hb_ms < 20)
        hb_ms = 20;
    int64_t sweep_ms = d->dc.lease_ms / 4 < 500    ? 500
                       : d->dc.lease_ms / 4 > 5000 ? 5000
                                                   : d->dc.lease_ms / 4;
    loop_timer_start(self->loop, &d->tick, (uint64_t)d->dc.poll_ms * 1000000ull,
                     (uint64_t)d->dc.poll_ms * 1000000ull);
    loop_timer_start(self->loop, &d->hb, (uint64_t)hb_ms * 1000000ull,
                     (uint64_t)hb_ms * 1000000ull);
    loop_timer_start(self->loop, &d->sweep, (uint64_t)sweep_ms * 1000000ull,
                     (uint64_t)sweep_ms * 1000000ull);
    if (d->dc.use_redis) {
        rd_redisq_events ev = {.ctx = d, .entries = on_entries, .reset = on_reset};
        int r = redisq_create(self->loop, &d->dc.redis, d->dc.owner, &ev, &d->q);
        if (r < 0)
            return r;
    }
    log_info("dispatcher_started", KV_STR("owner", d->dc.owner),
             KV_STR("queue", d->q ? "redis" : "embedded"), KV_INT("lease_ms", d->dc.lease_ms));
    return 0;
}

static void disp_fini(rd_actor *self)
{
    disp *d = self->state;
    if (d == NULL)
        return;
    loop_timer_cancel(self->loop, &d->tick);
    loop_timer_cancel(self->loop, &d->hb);
    loop_timer_cancel(self->loop, &d->sweep);
    redisq_destroy(d->q);
    if (d->ndone > 0)
        log_warn("dispatcher_outcomes_unwritten", KV_INT("jobs", d->ndone));
    ((disp *)self->arg)->live = NULL;
    free(d);
    self->state = NULL;
}

static const rd_actor_def disp_def = {.name = "job-dispatcher",
                                      .init = disp_init,
                                      .handle = disp_handle,
                                      .fini = disp_fini,
                                      .mailbox_bound = 8192};

int dispatcher_spawn(rd_loop *loop, rd_actor *store, const rd_dispatcher_config *dc, rd_actor **out)
{
    disp *proto = rd_calloc(1, sizeof(*proto), "the dispatcher's settings");
    proto->store = store;
    proto->dc = *dc;
    return actor_spawn(loop, &disp_def, proto, out);
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

int dispatcher_claim_latency(rd_actor *a, uint64_t *count, double *p50_ms, double *p99_ms)
{
    disp *d = a->state;
    if (d == NULL || d->nclaims == 0)
        return -ENOENT;
    size_t n = d->nclaims < CLAIM_SAMPLES ? (size_t)d->nclaims : CLAIM_SAMPLES;
    uint32_t *v = malloc(n * sizeof(*v));
    if (v == NULL)
        return -ENOMEM;
    memcpy(v, d->claim_us, n * sizeof(*v));
    qsort(v, n, sizeof(*v), cmp_u32);
    *count = d->nclaims;
    *p50_ms = v[n / 2] / 1000.0;
    *p99_ms = v[(n * 99) / 100] / 1000.0;
    free(v);
    return 0;
}

uint64_t dispatcher_outcomes_written(void)
{
    return atomic_load_explicit(&written_total, memory_order_relaxed);
}

void dispatcher_free(rd_actor *a)
{
    if (a == NULL)
        return;
    disp *d = a->state;
    if (d != NULL && d->ndone > 0)
        log_warn("dispatcher_outcomes_unwritten", KV_INT("jobs", d->ndone));
    while (d != NULL && d->contexts.next != &d->contexts) {
        ctx_link *l = d->contexts.next;
        untrack(l);
        l->dispose(l);
    }
    free(d); /* its timers and connections ended with the loop (the stop hook) */
    a->state = NULL;
    if (a->arg != NULL)
        stop_collecting(a->arg);
    free(a->arg);
    a->arg = NULL;
}

int dispatcher_config_load(rd_dispatcher_config *dc, const rd_config *cfg, char *err, size_t errlen)
{
    memset(dc, 0, sizeof(*dc));
    dc->lease_ms = cfg->job_lease_ms;
    dc->retry_base_ms = cfg->job_retry_base_ms;
    dc->retry_max_ms = cfg->job_retry_max_ms;
    dc->poll_ms = cfg->job_poll_ms;
    const char *node = cfg->node_name;
    int r;
    if (node != NULL && node[0] != '\0') {
        snprintf(dc->owner, sizeof(dc->owner), "%s", node);
    } else {
        char host[48] = "reeld";
        gethostname(host, sizeof(host) - 1);
        snprintf(dc->owner, sizeof(dc->owner), "%s:%d", host, (int)getpid());
    }
    if (cfg->redis_url != NULL) {
        r = redisq_parse_url(cfg->redis_url, &dc->redis, err, errlen);
        if (r < 0)
            return r;
        dc->use_redis = 1;
    }
    return 0;
}

void job_worker_send(rd_actor *self, rd_actor *dispatcher, rd_msg *m)
{
    m->from = self;
    if (actor_send(dispatcher, m) < 0) {
        log_warn("worker_send_failed", KV_STR("msg", msg_name((rd_msg_type)m->type)));
        msg_free(m);
    }
}

void job_worker_pull(rd_actor *self, rd_actor *dispatcher, const char *kind, int n)
{
    rd_msg *m = msg_new(MSG_JOB_PULL);
    msg_body(m, job_pull)->slots = (uint32_t)n;
    snprintf(msg_body(m, job_pull)->kind, RD_JOB_KIND_MAX, "%s", kind);
    job_worker_send(self, dispatcher, m);
}
