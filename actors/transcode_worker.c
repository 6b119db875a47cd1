/* The transcode worker. Contract in transcode_worker.h.
 *
 * owns:  its slots, one per encoder.
 * takes: JOB_ASSIGN (transcode or export), JOB_CANCEL, store answers, TRANSCODE_PROGRESS,
 *        TRANSCODE_DONE (an export's from its encoder, a ladder's through the uploader),
 *        UPLOAD_DONE.
 * sends: JOB_PULL/PROGRESS/DONE, STORE, UPLOAD_JOB, TRANSCODE, TRANSCODE_CANCEL.
 * never: blocks. */
#include "actors/transcode_worker.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "actors/job_dispatcher.h"
#include "src/rt/alloc.h"
#include "src/rt/log.h"
#include "src/store/store.h"

#define STORE_TIMEOUT_MS 10000

typedef enum slot_state {
    SLOT_IDLE,
    SLOT_ASSET,      /* asking the store for the job's asset (or export) */
    SLOT_CUTTING,    /* a clip: its encoder cuts the clip's master from the source's first */
    SLOT_RUNNING,    /* encoding and uploading; ends with the uploader's UPLOAD_DONE */
    SLOT_RENDITIONS, /* published: writing its renditions' rows (webhooks list them) */
} slot_state;

typedef struct slot {
    slot_state state;
    uint32_t gen; /* counts assignments, so a late store answer finds no slot */
    int cancelled;
    int is_export; /* a job of kind "export": no uploader, its encoder's TRANSCODE_DONE ends it */
    int is_clip;   /* a transcode of a clip: its master is cut first (SLOT_CUTTING) */
    rd_job job;
    char asset[64];
    uint64_t started_ns;
    int transcoded; /* the encoder's TRANSCODE_DONE has come (through the uploader) */
    int pending;    /* SLOT_RENDITIONS: rendition rows not yet answered */
    struct rd_msg_transcode_done done;
} slot;

typedef struct worker {
    rd_actor *self;
    const transcode_worker_arg *arg;
    slot slots[TRANSCODE_WORKER_MAX];
} worker;

int transcode_worker_retryable(int status)
{
    switch (status) {
    case 0:
    case -ECANCELED: /* nothing failed: the job was stopped */
    case -EINVAL:    /* the master cannot be decoded */
    case -ENOTSUP:   /* nor demuxed, or holds nothing reeld encodes */
    case -ENOSYS:    /* this FFmpeg lacks an encoder: so would the next attempt */
    case -ENOENT:    /* no master, or no asset */
    case -E2BIG:     /* a picture too big for any rung */
    case -ENAMETOOLONG:
        return 0;
    default:
        /* FFmpeg's own error tags (AVERROR_INVALIDDATA and kin) are far below -errno: the
         * input is at fault, not the moment. */
        return status > -4096;
    }
}

static void to_dispatcher(worker *w, rd_msg *m)
{
    job_worker_send(w->self, w->arg->dispatcher, m);
}

static void pull(worker *w, int n)
{
    job_worker_pull(w->self, w->arg->dispatcher, "transcode,export", n);
}

/* The job of slot `s` has ended with `status`: tell the dispatcher, free the slot, pull. */
static void finish(worker *w, slot *s, int status, const char *error)
{
    if (s->cancelled)
        status = -ECANCELED;
    rd_msg *m = msg_new(MSG_JOB_DONE);
    struct rd_msg_job_done *d = msg_body(m, job_done);
    d->id = s->job.id;
    d->attempt = s->job.attempts;
    d->status = status;
    d->retryable = transcode_worker_retryable(status);
    snprintf(d->error, sizeof(d->error), "%s",
             status == 0 ? ""
             : error     ? error
                         : strerror(-status));
    if (status == 0)
        log_info("transcode_job_finished", KV_INT("job", s->job.id), KV_STR("kind", s->job.kind),
                 KV_STR("asset", s->asset), KV_INT("attempt", s->job.attempts),
                 KV_DBL("wall_sec", (double)(rd_now_ns() - s->started_ns) / 1e9));
    else
        log_warn("transcode_job_failed", KV_INT("job", s->job.id), KV_STR("kind", s->job.kind),
                 KV_STR("asset", s->asset), KV_INT("attempt", s->job.attempts),
                 KV_STR("reason", d->error), KV_INT("retryable", d->retryable));
    s->state = SLOT_IDLE;
    to_dispatcher(w, m);
    pull(w, 1);
}

static slot *slot_of_job(worker *w, int64_t id)
{
    for (int i = 0; i < w->arg->n; i++)
        if (w->slots[i].state != SLOT_IDLE && w->slots[i].job.id == id)
            return &w->slots[i];
    return NULL;
}

/* The asset is known: register the job with the uploader, then start the encoder. */
static void start(worker *w, slot *s)
{
    int i = (int)(s - w->slots);
    rd_msg *u = msg_new(MSG_UPLOAD_JOB);
    struct rd_msg_upload_job *uj = msg_body(u, upload_job);
    uj->job = (uint64_t)s->job.id;
    snprintf(uj->asset, sizeof(uj->asset), "%s", s->asset);
    uj->notify = w->self;
    uj->encoder = w->arg->encoders[i];
    if (actor_send(w->arg->uploader, u) < 0) {
        msg_free(u);
        finish(w, s, -EAGAIN, "the uploader is not taking jobs (its queue is full or it stopped)");
        return;
    }
    rd_msg *t = msg_new(MSG_TRANSCODE);
    struct rd_msg_transcode *tc = msg_body(t, transcode);
    tc->job = (uint64_t)s->job.id;
    tc->sink = w->arg->uploader;
    snprintf(tc->input, sizeof(tc->input), "%s", s->asset);
    snprintf(tc->bucket, sizeof(tc->bucket), "%s", w->arg->masters_bucket);
    tc->mp4 = s->job.mp4 != 0; /* what the promote body asked */
    tc->has_poster_time = s->job.has_poster != 0;
    tc->poster_time = (double)s->job.poster_ms / 1000.0;
    s->state = SLOT_RUNNING;
    if (actor_send(w->arg->encoders[i], t) < 0) {
        msg_free(t);
        /* The uploader holds the job now: end it there as an encoder would, and the job ends
         * with the UPLOAD_DONE that follows. */
        rd_msg *d = msg_new(MSG_TRANSCODE_DONE);
        msg_body(d, transcode_done)->job = (uint64_t)s->job.id;
        msg_body(d, transcode_done)->status = -EAGAIN;
        snprintf(msg_body(d, transcode_done)->error, sizeof(msg_body(d, transcode_done)->error),
                 "the encoder did not take the job");
        if (actor_send(w->arg->uploader, d) < 0) {
            msg_free(d);
            finish(w, s, -EAGAIN, "neither the encoder nor the uploader took the job");
        }
    }
}

/* An export-mode TRANSCODE of `master`'s range for the slot's encoder, answered to us. */
static rd_msg *cut_message(worker *w, slot *s, const char *master, int64_t start_ms, int64_t end_ms)
{
    rd_msg *t = msg_new(MSG_TRANSCODE);
    struct rd_msg_transcode *tc = msg_body(t, transcode);
    tc->job = (uint64_t)s->job.id;
    tc->sink = w->self;
    tc->export_mp4 = 1;
    tc->start_ms = start_ms;
    tc->end_ms = end_ms;
    snprintf(tc->input, sizeof(tc->input), "%s", master);
    snprintf(tc->bucket, sizeof(tc->bucket), "%s", w->arg->masters_bucket);
    return t;
}

static void send_cut(worker *w, slot *s, rd_msg *t, slot_state state)
{
    s->state = state;
    if (actor_send(w->arg->encoders[s - w->slots], t) < 0) {
        msg_free(t);
        finish(w, s, -EAGAIN, "the encoder did not take the job");
    }
}

/* The export's row is known: its encoder writes and stores the MP4 and answers to us. */
static void start_export(worker *w, slot *s, const rd_export *x)
{
    rd_msg *t = cut_message(w, s, x->master_key, x->start_ms, x->end_ms);
    struct rd_msg_transcode *tc = msg_body(t, transcode);
    tc->height = x->height;
    snprintf(tc->out_bucket, sizeof(tc->out_bucket), "%s", w->arg->previews_bucket);
    snprintf(tc->out_key, sizeof(tc->out_key), RD_EXPORT_KEY_FMT, x->master_key, x->public_id);
    if (x->lang[0] != '\0')
        snprintf(tc->captions_key, sizeof(tc->captions_key), RD_CAPTION_TRACK_KEY_FMT,
                 x->master_key, x->lang);
    send_cut(w, s, t, SLOT_RUNNING);
}

/* A clip's transcode: its master is the source's range, cut (frame-accurately, at master
 * quality) into the masters bucket under the clip's own key; then its ladder, as for any
 * asset. Every attempt cuts again: a master half-written by a dead worker is replaced. */
static void start_clip(worker *w, slot *s, const rd_asset *a)
{
    rd_msg *t = cut_message(w, s, a->source_master, a->source_start_ms, a->source_end_ms);
    struct rd_msg_transcode *tc = msg_body(t, transcode);
    tc->master_quality = 1;
    snprintf(tc->out_bucket, sizeof(tc->out_bucket), "%s", w->arg->masters_bucket);
    snprintf(tc->out_key, sizeof(tc->out_key), "%s", a->master_key);
    /* Into masters by a copy with retention, like a promoted upload's master. */
    snprintf(tc->via_bucket, sizeof(tc->via_bucket), "%s",
             w->arg->staging_bucket ? w->arg->staging_bucket : "");
    tc->lock_days = w->arg->lock_days;
    snprintf(tc->lock_mode, sizeof(tc->lock_mode), "%s",
             w->arg->lock_mode != NULL && strcmp(w->arg->lock_mode, "governance") == 0
                 ? "GOVERNANCE"
                 : "COMPLIANCE");
    send_cut(w, s, t, SLOT_CUTTING);
}

/* The store's answer for the job's row: the asset (a transcode, or a clip's), or the export. */
static int row_answered(rd_actor *self, rd_msg *reply, int err, void *ctx)
{
    worker *w = self->state;
    uintptr_t c = (uintptr_t)ctx;
    slot *s = &w->slots[c & 0xff];
    int st = err < 0 ? err : msg_body(reply, store)->status;
    const char *what = s->is_export ? "the export" : "the job's asset";
    if (s->state != SLOT_ASSET || s->gen != (uint32_t)(c >> 8)) {
        /* not this slot's question any more */
    } else if (st == -ENOENT) {
        finish(w, s, -ENOENT,
               s->is_export ? "the export is not in the store"
                            : "the job's asset is not in the store");
    } else if (st < 0) {
        char why[128];
        snprintf(why, sizeof(why), "the store did not answer for %s: %s", what, strerror(-st));
        finish(w, s, st, why);
    } else if (s->cancelled) {
        finish(w, s, -ECANCELED, NULL);
    } else {
        const rd_export *x = &msg_body(reply, store)->exports[0];
        const rd_asset *a = &msg_body(reply, store)->assets[0];
        const char *master = s->is_export ? x->master_key : a->master_key;
        s->is_clip = !s->is_export && a->source_id != 0;
        if (master[0] == '\0' || strlen(master) >= sizeof(s->asset)) {
            finish(w, s, -EINVAL, "the job's asset names no usable master key");
        } else if (s->is_clip && a->source_master[0] == '\0') {
            finish(w, s, -ENOENT, "the clip's source names no master");
        } else {
            memcpy(s->asset, master, strlen(master) + 1); /* length checked */
            if (s->is_export)
                start_export(w, s, x);
            else if (s->is_clip)
                start_clip(w, s, a);
            else
                start(w, s);
        }
    }
    if (reply != NULL)
        msg_free(reply);
    return RD_DONE;
}

static void on_assign(worker *w, const rd_job *job)
{
    slot *s = NULL;
    for (int i = 0; i < w->arg->n && s == NULL; i++)
        if (w->slots[i].state == SLOT_IDLE)
            s = &w->slots[i];
    if (s == NULL) {
        log_error("worker_overcommitted", KV_INT("job", job->id));
        return;
    }
    memset(&s->done, 0, sizeof(s->done));
    s->job = *job;
    s->asset[0] = '\0';
    s->cancelled = 0;
    s->transcoded = 0;
    s->is_export = strcmp(job->kind, "export") == 0;
    s->is_clip = 0;
    s->started_ns = rd_now_ns();
    s->state = SLOT_ASSET;
    s->gen++;
    rd_msg *q = store_request(s->is_export ? STORE_EXPORT_GET : STORE_ASSET_GET);
    if (s->is_export)
        msg_body(q, store)->exports[0].id = job->asset_id; /* an export job points at its row */
    else
        msg_body(q, store)->assets[0].id = job->asset_id;
    uintptr_t ctx = (uintptr_t)(s - w->slots) | ((uintptr_t)s->gen << 8);
    int r = actor_request(w->self, w->arg->store, q, STORE_TIMEOUT_MS, row_answered, (void *)ctx);
    if (r < 0) {
        msg_free(q);
        finish(w, s, r, "the store is not taking requests");
    }
}

static void on_cancel(worker *w, int64_t id)
{
    slot *s = slot_of_job(w, id);
    if (s == NULL || s->cancelled)
        return;
    s->cancelled = 1;
    log_info("worker_stopping", KV_INT("job", id));
    if (s->state == SLOT_RUNNING || s->state == SLOT_CUTTING) {
        rd_msg *m = msg_new(MSG_TRANSCODE_CANCEL);
        msg_body(m, transcode_cancel)->job = (uint64_t)id;
        if (actor_send(w->arg->encoders[s - w->slots], m) < 0)
            msg_free(m); /* the encoder has stopped: its job ends by itself */
    }
}

static int rendition_answered(rd_actor *self, rd_msg *reply, int err, void *ctx)
{
    worker *w = self->state;
    uintptr_t c = (uintptr_t)ctx;
    slot *s = &w->slots[c & 0xff];
    int st = err < 0 ? err : msg_body(reply, store)->status;
    if (reply != NULL)
        msg_free(reply);
    if (s->state != SLOT_RENDITIONS || s->gen != (uint32_t)(c >> 8))
        return RD_DONE;
    if (st < 0)
        log_warn("transcode_rendition_not_recorded", KV_INT("job", s->job.id),
                 KV_STR("asset", s->asset), KV_ERRNO(st));
    if (--s->pending == 0)
        finish(w, s, 0, NULL);
    return RD_DONE;
}

/* Published: the renditions' rows (what asset.ready lists), then the job's success. A row that
 * cannot be written is logged, not a failure: the renditions play all the same. */
static void record_renditions(worker *w, slot *s)
{
    s->state = SLOT_RENDITIONS;
    s->pending = 1; /* held while the requests go out */
    uintptr_t ctx = (uintptr_t)(s - w->slots) | ((uintptr_t)s->gen << 8);
    for (int i = 0; i < s->done.nladder && i < 4; i++) {
        rd_msg *q = store_request(STORE_RENDITION_PUT);
        rd_rendition *r = &msg_body(q, store)->renditions[0];
        r->asset_id = s->job.asset_id;
        snprintf(r->name, sizeof(r->name), "%s", s->done.ladder[i].name);
        r->width = s->done.ladder[i].width;
        r->height = s->done.ladder[i].height;
        r->bitrate_kbps = s->done.ladder[i].kbps;
        r->duration_ms = (int64_t)(s->done.media_sec * 1000.0);
        snprintf(r->playlist_key, sizeof(r->playlist_key), "%.60s/%s/index.m3u8", s->asset,
                 s->done.ladder[i].name);
        s->pending++;
        if (actor_request(w->self, w->arg->store, q, STORE_TIMEOUT_MS, rendition_answered,
                          (void *)ctx) < 0) {
            msg_free(q);
            s->pending--;
        }
    }
    if (--s->pending == 0)
        finish(w, s, 0, NULL);
}

static void on_upload_done(worker *w, const struct rd_msg_upload_done *u)
{
    slot *s = slot_of_job(w, (int64_t)u->job);
    if (s == NULL || s->state != SLOT_RUNNING)
        return;
    int st = s->done.status;
    const char *why = s->done.error;
    if (!s->transcoded) {
        st = u->status < 0 ? u->status : -EIO;
        why = u->status < 0 ? u->error : "the encoder's end never reached the uploader";
    } else if (u->status < 0 && (st == 0 || (st == -ECANCELED && u->status != -ECANCELED))) {
        st = u->status; /* the upload failed first (and cancelled the encode) */
        why = u->error;
    }
    if (st == -ECANCELED && !s->cancelled) {
        /* Nobody asked: the encoder was stopped because this process is stopping. The job is
         * the dispatcher's to release (its attempt uncounted), not a failure to report. */
        log_info("transcode_job_left", KV_INT("job", s->job.id), KV_STR("asset", s->asset));
        s->state = SLOT_IDLE;
        return;
    }
    if (st < 0) {
        finish(w, s, st, why);
        return;
    }
    log_info("transcode_published", KV_INT("job", s->job.id), KV_STR("asset", s->asset),
             KV_STR("encoder", s->done.encoder), KV_STR("preset", s->done.preset),
             KV_INT("rungs", s->done.rungs), KV_INT("frames", s->done.frames),
             KV_DBL("media_sec", s->done.media_sec), KV_DBL("encode_sec", s->done.wall_sec),
             KV_INT("objects", u->objects), KV_INT("bytes", u->bytes));
    record_renditions(w, s);
}

static int worker_handle(rd_actor *self, rd_msg *m)
{
    worker *w = self->state;
    switch (m->type) {
    case MSG_JOB_ASSIGN:
        on_assign(w, &msg_body(m, job_assign)->job);
        break;
    case MSG_JOB_CANCEL:
        on_cancel(w, msg_body(m, job_cancel)->id);
        break;
    case MSG_TRANSCODE_PROGRESS: {
        const struct rd_msg_transcode_progress *p = msg_body(m, transcode_progress);
        slot *s = slot_of_job(w, (int64_t)p->job);
        if (s == NULL)
            break;
        rd_msg *j = msg_new(MSG_JOB_PROGRESS);
        struct rd_msg_job_progress *jp = msg_body(j, job_progress);
        jp->id = s->job.id;
        jp->attempt = s->job.attempts;
        /* Per mille; 1000 is the job done, which only the upload's end says. A clip's cut is
         * its first tenth, its ladder the rest. */
        int pm = (int)(p->percent * 10.0);
        if (s->is_clip)
            pm = s->state == SLOT_CUTTING ? pm / 10 : 100 + pm * 9 / 10;
        jp->progress = pm < 0 ? 0 : pm > 999 ? 999 : pm;
        to_dispatcher(w, j);
        break;
    }
    case MSG_TRANSCODE_DONE: {
        slot *s = slot_of_job(w, (int64_t)msg_body(m, transcode_done)->job);
        if (s != NULL && s->state == SLOT_CUTTING) {
            const struct rd_msg_transcode_done *d = msg_body(m, transcode_done);
            if (d->status == -ECANCELED && !s->cancelled) {
                log_info("transcode_job_left", KV_INT("job", s->job.id), KV_STR("asset", s->asset));
                s->state = SLOT_IDLE;
            } else if (d->status < 0 || s->cancelled) {
                finish(w, s, d->status < 0 ? d->status : -ECANCELED, d->error[0] ? d->error : NULL);
            } else {
                log_info("clip_master_cut", KV_INT("job", s->job.id), KV_STR("asset", s->asset),
                         KV_DBL("media_sec", d->media_sec), KV_DBL("wall_sec", d->wall_sec));
                start(w, s); /* the clip's own master now: its ladder, as for any asset */
            }
        } else if (s != NULL && s->is_export && s->state == SLOT_RUNNING) {
            const struct rd_msg_transcode_done *d = msg_body(m, transcode_done);
            if (d->status == -ECANCELED && !s->cancelled) {
                /* This process is stopping: the dispatcher hands the job back. */
                log_info("export_job_left", KV_INT("job", s->job.id));
                s->state = SLOT_IDLE;
            } else {
                finish(w, s, d->status, d->error[0] ? d->error : NULL);
            }
        } else if (s != NULL) {
            s->done = *msg_body(m, transcode_done);
            s->transcoded = 1;
        }
        break;
    }
    case MSG_UPLOAD_DONE:
        on_upload_done(w, msg_body(m, upload_done));
        break;
    default:
        break;
    }
    return RD_DONE;
}

static int worker_init(rd_actor *self, void *arg)
{
    worker *w = rd_calloc(1, sizeof(*w), "the transcode worker");
    w->self = self;
    w->arg = arg;
    self->state = w;
    pull(w, w->arg->n);
    return 0;
}

static void worker_fini(rd_actor *self)
{
    free(self->state);
    self->state = NULL;
}

static const rd_actor_def worker_def = {
    .name = "transcode-worker",
    .init = worker_init,
    .handle = worker_handle,
    .fini = worker_fini,
};

void transcode_worker_free(rd_actor *a)
{
    if (a == NULL)
        return;
    free(a->state);
    a->state = NULL;
}

int transcode_worker_spawn(rd_loop *loop, const transcode_worker_arg *arg, rd_actor **out)
{
    if (arg->n < 1 || arg->n > TRANSCODE_WORKER_MAX)
        return -EINVAL;
    return actor_spawn(loop, &worker_def, (void *)arg, out);
}
