/* The noop worker. Contract in noop_worker.h.
 *
 * owns:  its slots (job, timers).
 * takes: MSG_JOB_ASSIGN, MSG_JOB_CANCEL.
 * sends: MSG_JOB_PULL, MSG_JOB_PROGRESS, MSG_JOB_DONE to the dispatcher.
 * never: blocks. */
#include "actors/noop_worker.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "actors/job_dispatcher.h"
#include "src/rt/alloc.h"
#include "src/rt/log.h"

typedef struct settings {
    rd_actor *dispatcher;
    int slots;
    int work_ms;
    int fail_attempts;
    int silent; /* REELD_NOOP_SILENT=1: no progress reports (a stuck worker, for tests) */
} settings;

typedef struct slot {
    struct noop *w;
    int busy;
    rd_job job;
    uint64_t started_ns;
    rd_timer finish, progress;
} slot;

typedef struct noop {
    rd_actor *self;
    settings set;
    slot slots[RD_NOOP_MAX_SLOTS];
} noop;

static void send_to_dispatcher(noop *w, rd_msg *m)
{
    job_worker_send(w->self, w->set.dispatcher, m);
}

static void pull(noop *w, int n)
{
    job_worker_pull(w->self, w->set.dispatcher, "noop", n);
}

static void end_job(slot *s, int status, const char *error)
{
    noop *w = s->w;
    loop_timer_cancel(w->self->loop, &s->finish);
    loop_timer_cancel(w->self->loop, &s->progress);
    rd_msg *m = msg_new(MSG_JOB_DONE);
    struct rd_msg_job_done *d = msg_body(m, job_done);
    d->id = s->job.id;
    d->attempt = s->job.attempts;
    d->status = status;
    d->retryable = status != 0;
    snprintf(d->error, sizeof(d->error), "%s", error ? error : "");
    s->busy = 0;
    send_to_dispatcher(w, m);
    pull(w, 1);
}

static void finish(slot *s)
{
    if (s->job.attempts <= s->w->set.fail_attempts) {
        char why[96];
        snprintf(why, sizeof(why), "noop: attempt %d fails as REELD_NOOP_FAIL_ATTEMPTS asks",
                 s->job.attempts);
        end_job(s, -EIO, why);
        return;
    }
    end_job(s, 0, NULL);
}

static void finish_fire(rd_timer *t)
{
    finish((slot *)(void *)((char *)t - offsetof(slot, finish)));
}

static void progress_fire(rd_timer *t)
{
    slot *s = (slot *)(void *)((char *)t - offsetof(slot, progress));
    uint64_t elapsed_ms = (rd_now_ns() - s->started_ns) / 1000000ull;
    rd_msg *m = msg_new(MSG_JOB_PROGRESS);
    struct rd_msg_job_progress *p = msg_body(m, job_progress);
    p->id = s->job.id;
    p->attempt = s->job.attempts;
    p->progress = (int32_t)(elapsed_ms * 1000 / (uint64_t)s->w->set.work_ms);
    send_to_dispatcher(s->w, m);
}

static int noop_handle(rd_actor *self, rd_msg *m)
{
    noop *w = self->state;
    if (m->type == MSG_JOB_ASSIGN) {
        slot *s = NULL;
        for (int i = 0; i < w->set.slots && s == NULL; i++)
            if (!w->slots[i].busy)
                s = &w->slots[i];
        if (s == NULL) {
            log_error("worker_overcommitted", KV_INT("job", msg_body(m, job_assign)->job.id));
            return RD_DONE;
        }
        s->busy = 1;
        s->job = msg_body(m, job_assign)->job;
        s->started_ns = rd_now_ns();
        if (w->set.work_ms == 0) {
            finish(s);
            return RD_DONE;
        }
        loop_timer_start(self->loop, &s->finish, (uint64_t)w->set.work_ms * 1000000ull, 0);
        if (!w->set.silent)
            loop_timer_start(self->loop, &s->progress, 200000000ull, 200000000ull);
        return RD_DONE;
    }
    if (m->type == MSG_JOB_CANCEL) {
        int64_t id = msg_body(m, job_cancel)->id;
        for (int i = 0; i < w->set.slots; i++) {
            slot *s = &w->slots[i];
            if (s->busy && s->job.id == id) {
                log_info("worker_stopping", KV_INT("job", id));
                end_job(s, -ECANCELED, "stopped: the job was cancelled or its lease lost");
            }
        }
    }
    return RD_DONE;
}

static int noop_init(rd_actor *self, void *arg)
{
    noop *w = rd_calloc(1, sizeof(*w), "a noop worker");
    w->self = self;
    w->set = *(settings *)arg;
    for (int i = 0; i < RD_NOOP_MAX_SLOTS; i++) {
        w->slots[i].w = w;
        w->slots[i].finish.fire = finish_fire;
        w->slots[i].progress.fire = progress_fire;
    }
    self->state = w;
    pull(w, w->set.slots);
    return 0;
}

static void noop_fini(rd_actor *self)
{
    noop *w = self->state;
    if (w == NULL)
        return;
    for (int i = 0; i < RD_NOOP_MAX_SLOTS; i++) {
        loop_timer_cancel(self->loop, &w->slots[i].finish);
        loop_timer_cancel(self->loop, &w->slots[i].progress);
    }
    free(w);
    self->state = NULL;
}

static const rd_actor_def noop_def = {
    .name = "noop-worker", .init = noop_init, .handle = noop_handle, .fini = noop_fini};

int noop_worker_spawn(rd_loop *loop, rd_actor *dispatcher, int slots, rd_actor **out)
{
    settings *s = rd_calloc(1, sizeof(*s), "a noop worker's settings");
    s->dispatcher = dispatcher;
    s->slots = slots < 1 ? 1 : slots > RD_NOOP_MAX_SLOTS ? RD_NOOP_MAX_SLOTS : slots;
    const char *v = getenv("REELD_NOOP_WORK_MS");
    s->work_ms = v ? atoi(v) : 0;
    if (s->work_ms < 0)
        s->work_ms = 0;
    v = getenv("REELD_NOOP_FAIL_ATTEMPTS");
    s->fail_attempts = v ? atoi(v) : 0;
    v = getenv("REELD_NOOP_SILENT");
    s->silent = v != NULL && atoi(v) == 1;
    return actor_spawn(loop, &noop_def, s, out);
}

void noop_worker_free(rd_actor *a)
{
    if (a == NULL)
        return;
    free(a->state); /* its timers died with the loop */
    a->state = NULL;
    free(a->arg);
    a->arg = NULL;
}
