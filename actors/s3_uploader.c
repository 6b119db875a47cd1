/* s3-uploader: puts the objects of transcode jobs into S3_BUCKET_PREVIEWS under
 * {asset}/hls/{name}, in the order hls_publish allows, and reports each job's end.
 *
 * owns:  its jobs (asset, notify actor, publication plan, the HLS_OBJECT messages whose bytes
 *        are not stored yet), its PUTs in flight (at most `concurrency`), the list on which the
 *        blob store's home loop hands finished requests back (then it wakes the thread:
 *        actor_wake). One path for both backends (src/blob/aio.h): it never asks which.
 * takes: UPLOAD_JOB (registers a job), HLS_OBJECT (an object of a registered job),
 *        TRANSCODE_PROGRESS and TRANSCODE_DONE (the encoder's, passed on to the job's notify),
 *        STOP.
 * sends: to a job's notify: its TRANSCODE_PROGRESS (dropped when notify is full: the next one
 *        supersedes it), TRANSCODE_DONE, then exactly one UPLOAD_DONE. To a job's encoder, when
 *        the upload fails while it still encodes: TRANSCODE_CANCEL. To the blob store's
 *        actor: MSG_BLOB_CALL, PUT and, after a failure, DELETE (one at a time). Counts
 *        reeld_upload_objects_total{outcome}, reeld_upload_bytes_total,
 *        reeld_upload_jobs_total{outcome}.
 * never: PUTs a master playlist before the job is whole and everything else has landed, nor
 *        leaves one behind after a failure (what a failed job stored is deleted, master first);
 *        holds more than `concurrency` objects that could go but wait for a PUT slot: while it
 *        does, it takes no new message, so the encoder's send waits (back-pressure); drops an
 *        HLS_OBJECT of a registered job silently; runs on a loop (its handler waits for PUT
 *        slots, which is the back-pressure); looks at its mailbox or its finished PUTs on a
 *        period: it sleeps in actor_wait until a PUT
 *        comes back or, only while it takes new mail, a message arrives.
 *
 * Every PUT that lands logs "upload_stored" at debug level and every PUT that starts
 * "upload_put", in order, so the order can be read back from the log. */
#include "actors/s3_uploader.h"

#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/hls.h"
#include "src/media/hls_publish.h"
#include "src/rt/alloc.h"
#include "src/rt/log.h"
#include "src/rt/metrics.h"

#define DONE_WAIT_MS 10000 /* waiting for room at a full notify mailbox, then given up */

typedef struct upload_job upload_job;
typedef struct uploader uploader;

/* One PUT on its way through the blob store, or one DELETE of a failed job's clean-up. */
typedef struct put_op {
    blob_sink sink;
    uploader *u;
    upload_job *job;
    int index;      /* in the job's plan */
    int is_delete;  /* a clean-up's DELETE */
    rd_msg *object; /* the HLS_OBJECT whose bytes are the body, until done */
    size_t len;
    uint64_t started_ns;
    int res;             /* set on the store's loop before the op is handed back */
    char why[512];       /* the store's sentence when res < 0 */
    struct put_op *next; /* in the finished queue */
    char key[S3_MAX_KEY + 1];
} put_op;

struct upload_job {
    uint64_t id;
    char asset[64];
    rd_actor *notify;
    rd_actor *encoder; /* told to cancel when the upload fails first; may be NULL */
    hlspub *plan;
    rd_msg **objects; /* by plan index: the HLS_OBJECTs that wait to be stored */
    int cap;
    int inflight;   /* PUTs of this job on the wire */
    int transcoded; /* its TRANSCODE_DONE has arrived */
    int status;     /* 0, or the first failure */
    int cleaned;    /* a failed job's clean-up has ended */
    size_t clean_kind;
    int clean_at, deleted, left; /* the clean-up's place in the plan, and its counts */
    char error[512];
    int64_t stored, bytes;
    uint64_t started_ns;
    upload_job *next;
};

struct uploader {
    rd_actor *self;
    const uploader_arg *arg;
    upload_job *jobs;
    int inflight; /* PUTs on the wire, all jobs */
    int waiting;  /* objects held that are not on their way yet (objects[]), all jobs */
    int stop_seen;
    pthread_mutex_t mu; /* guards `finished`: the store's loop pushes, this thread pops */
    put_op *finished, **finished_tail;
    rd_series *objects_ok, *objects_failed, *bytes, *jobs_ok, *jobs_failed;
};

int uploader_key(char *key, size_t cap, const char *asset, const char *name)
{
    int n = snprintf(key, cap, "%s/hls/%s", asset, name);
    return n < 0 || (size_t)n >= cap ? -ENAMETOOLONG : 0;
}

const char *uploader_cache_control(const char *name)
{
    hlspub_kind k = hlspub_kind_of(name);
    return k == HLSPUB_VARIANT || k == HLSPUB_MASTER ? UPLOAD_CACHE_PLAYLIST
                                                     : UPLOAD_CACHE_IMMUTABLE;
}

/* An asset id is a path segment: letters, digits, '-', '_', '.', not "." or "..". */
static int valid_asset(const char *a)
{
    size_t n = strlen(a);
    if (n == 0 || n >= 64 || strcmp(a, ".") == 0 || strcmp(a, "..") == 0)
        return 0;
    for (const char *p = a; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '-' || *p == '_' || *p == '.'))
            return 0;
    return 1;
}

static upload_job *find_job(uploader *u, uint64_t id)
{
    for (upload_job *j = u->jobs; j != NULL; j = j->next)
        if (j->id == id)
            return j;
    return NULL;
}

/* Sends `m` to the job's notify, waiting while its mailbox is full (the end of a job must
 * arrive). */
static void notify_reliably(upload_job *j, rd_msg *m)
{
    if (j->notify != NULL && actor_send_wait(j->notify, m, DONE_WAIT_MS) == 0)
        return;
    if (j->notify != NULL)
        log_warn("upload_notify_undelivered", KV_INT("job", j->id),
                 KV_STR("type", msg_name((rd_msg_type)m->type)));
    msg_free(m);
}

static void drop_waiting(uploader *u, upload_job *j);

static void fail_job(uploader *u, upload_job *j, int status, const char *fmt, const char *a,
                     const char *b)
{
    drop_waiting(u, j); /* nothing more of a failed job is stored */
    if (j->status < 0)
        return; /* the first failure is the one reported */
    j->status = status;
    snprintf(j->error, sizeof(j->error), fmt, a, b);
    log_error("upload_failed", KV_INT("job", j->id), KV_STR("asset", j->asset),
              KV_STR("reason", j->error), KV_ERRNO(status));
    if (!j->transcoded && j->encoder != NULL) {
        rd_msg *m = msg_new(MSG_TRANSCODE_CANCEL);
        msg_body(m, transcode_cancel)->job = j->id;
        if (actor_send(j->encoder, m) < 0)
            msg_free(m); /* a full or stopped encoder: the job just runs to its end */
    }
}

static void drop_waiting(uploader *u, upload_job *j)
{
    for (int i = 0; i < j->cap; i++)
        if (j->objects[i] != NULL) {
            msg_free(j->objects[i]);
            j->objects[i] = NULL;
            u->waiting--;
        }
}

/* ---- storing ---- */

/* On the store's home loop. */
static void put_finished(blob_sink *sink, int err, const char *why)
{
    put_op *p = (put_op *)(void *)sink;
    uploader *u = p->u;
    rd_actor *self = u->self; /* once unlocked, u may be gone (the uploader stopped) */
    p->res = err;
    snprintf(p->why, sizeof(p->why), "%s", why);
    pthread_mutex_lock(&u->mu);
    *u->finished_tail = p;
    u->finished_tail = &p->next;
    pthread_mutex_unlock(&u->mu);
    actor_wake(self); /* the actor itself outlives its stop */
}

/* Hands a PUT or DELETE to the store; it comes back through put_finished. 0 or -errno (then
 * nothing was started and `p` is still the caller's). */
static int submit(uploader *u, put_op *p, const struct rd_msg_hls_object *o)
{
    const uploader_arg *a = u->arg;
    p->u = u;
    p->sink.done = put_finished;
    p->started_ns = rd_now_ns();
    int r = o != NULL ? blob_aio_put(a->store, NULL, a->bucket, p->key, o->data, o->len,
                                     hls_content_type(o->name), uploader_cache_control(o->name),
                                     &p->sink, NULL)
                      : blob_aio_delete(a->store, NULL, a->bucket, p->key, &p->sink, NULL);
    if (r == 0) {
        p->job->inflight++;
        u->inflight++;
    }
    return r;
}

static void landed(uploader *u, upload_job *j, int i, size_t len, uint64_t started_ns)
{
    hlspub_landed(j->plan, i);
    j->stored++;
    j->bytes += (int64_t)len;
    metrics_add(u->objects_ok, 1);
    metrics_add(u->bytes, len);
    log_debug("upload_stored", KV_INT("job", j->id), KV_STR("name", hlspub_name(j->plan, i)),
              KV_INT("bytes", len), KV_DBL("ms", (double)(rd_now_ns() - started_ns) / 1e6));
}

/* Starts the store of object `i`, whose message is held. */
static void store(uploader *u, upload_job *j, int i)
{
    rd_msg *m = j->objects[i];
    struct rd_msg_hls_object *o = msg_body(m, hls_object);
    j->objects[i] = NULL; /* on its way now */
    u->waiting--;
    put_op *p = rd_calloc(1, sizeof(*p), "upload put");
    p->job = j;
    p->index = i;
    p->object = m;
    p->len = o->len;
    if (uploader_key(p->key, sizeof(p->key), j->asset, o->name) < 0) {
        fail_job(u, j, -ENAMETOOLONG, "the key of %s/hls/%s is too long", j->asset, o->name);
        msg_free(m);
        free(p);
        return;
    }
    log_debug("upload_put", KV_INT("job", j->id), KV_STR("key", p->key), KV_INT("bytes", o->len));
    int r = submit(u, p, o);
    if (r < 0) {
        fail_job(u, j, r, "storing %s: %s.", p->key,
                 r == -EAGAIN   ? "the blob store is overloaded"
                 : r == -EINVAL ? "the store refused the name or type"
                                : "the blob store is stopped");
        metrics_add(u->objects_failed, 1);
        msg_free(m);
        free(p);
    }
}

/* Starts what the job's plan allows, as far as PUT slots go. */
static void pump(uploader *u, upload_job *j)
{
    while (j->status == 0 && u->inflight < u->arg->concurrency) {
        int i = hlspub_next(j->plan);
        if (i < 0)
            break;
        store(u, j, i);
    }
}

static void pump_all(uploader *u)
{
    for (upload_job *j = u->jobs; j != NULL; j = j->next)
        pump(u, j);
}

/* Deletes what a failed job stored, one object at a time: the master first (were it there),
 * then the poster and the playlists, then the segments, so no playlist ever names a missing
 * segment. 1 when a DELETE is on its way (settle comes back when it lands), 0 when nothing is
 * left to delete. */
static int clean_next(uploader *u, upload_job *j)
{
    static const hlspub_kind order[] = {HLSPUB_MASTER, HLSPUB_POSTER, HLSPUB_VARIANT,
                                        HLSPUB_SEGMENT};
    for (; j->clean_kind < sizeof(order) / sizeof(order[0]); j->clean_kind++, j->clean_at = 0) {
        while (j->clean_at < hlspub_count(j->plan)) {
            int i = j->clean_at++;
            if (hlspub_kind_at(j->plan, i) != order[j->clean_kind] ||
                !hlspub_has_landed(j->plan, i))
                continue;
            put_op *p = rd_calloc(1, sizeof(*p), "upload clean-up");
            p->job = j;
            p->index = i;
            p->is_delete = 1;
            uploader_key(p->key, sizeof(p->key), j->asset, hlspub_name(j->plan, i));
            int r = submit(u, p, NULL);
            if (r == 0)
                return 1;
            j->left++;
            log_warn("upload_cleanup_failed", KV_INT("job", j->id), KV_STR("key", p->key),
                     KV_STR("reason", "the blob store took no request"), KV_ERRNO(r));
            free(p);
        }
    }
    return 0;
}

/* Ends the job if nothing more can happen to it: reports it and forgets it. */
static void settle(uploader *u, upload_job *j)
{
    if (!j->transcoded || j->inflight > 0)
        return;
    if (j->status == 0 && !hlspub_complete(j->plan))
        return;
    if (j->status < 0 && !j->cleaned) {
        if (clean_next(u, j))
            return;
        j->cleaned = 1;
        log_info("upload_cleaned_up", KV_INT("job", j->id), KV_STR("asset", j->asset),
                 KV_INT("deleted", j->deleted), KV_INT("left", j->left));
    }
    rd_msg *m = msg_new(MSG_UPLOAD_DONE);
    struct rd_msg_upload_done *d = msg_body(m, upload_done);
    d->job = j->id;
    d->status = j->status;
    snprintf(d->error, sizeof(d->error), "%s", j->error);
    snprintf(d->asset, sizeof(d->asset), "%s", j->asset);
    d->objects = j->stored;
    d->bytes = j->bytes;
    d->wall_sec = (double)(rd_now_ns() - j->started_ns) / 1e9;
    metrics_add(j->status == 0 ? u->jobs_ok : u->jobs_failed, 1);
    if (j->status == 0)
        log_info("upload_done", KV_INT("job", j->id), KV_STR("asset", j->asset),
                 KV_INT("objects", j->stored), KV_INT("bytes", j->bytes),
                 KV_DBL("wall_sec", d->wall_sec));
    notify_reliably(j, m);
    for (upload_job **pp = &u->jobs; *pp != NULL; pp = &(*pp)->next)
        if (*pp == j) {
            *pp = j->next;
            break;
        }
    drop_waiting(u, j);
    hlspub_free(j->plan);
    free(j->objects);
    free(j);
}

/* A PUT or a clean-up's DELETE came back from the store. */
static void put_done(uploader *u, put_op *p)
{
    upload_job *j = p->job;
    j->inflight--;
    u->inflight--;
    if (p->is_delete) {
        if (p->res < 0) {
            j->left++;
            log_warn("upload_cleanup_failed", KV_INT("job", j->id), KV_STR("key", p->key),
                     KV_STR("reason", p->why), KV_ERRNO(p->res));
        } else {
            j->deleted++;
        }
    } else if (p->res == 0) {
        landed(u, j, p->index, p->len, p->started_ns);
    } else {
        metrics_add(u->objects_failed, 1);
        log_debug("upload_put_failed", KV_INT("job", j->id), KV_STR("key", p->key),
                  KV_STR("reason", p->why), KV_ERRNO(p->res));
        fail_job(u, j, p->res, "%s%s", p->why[0] ? p->why : "storing the object failed.", "");
    }
    msg_free(p->object);
    free(p);
    pump(u, j);
    settle(u, j);
}

/* Takes every finished PUT, without waiting. */
static void take_finished(uploader *u)
{
    pthread_mutex_lock(&u->mu);
    put_op *list = u->finished;
    u->finished = NULL;
    u->finished_tail = &u->finished;
    pthread_mutex_unlock(&u->mu);
    while (list != NULL) {
        put_op *next = list->next;
        put_done(u, list);
        list = next;
    }
    pump_all(u); /* a slot freed by one job may go to another */
}

/* ---- messages ---- */

static int on_message(uploader *u, rd_msg *m);

/* While PUTs fly, this thread stays here: it hands finished PUTs back to their jobs, and takes
 * new mail only while fewer than `concurrency` objects wait for a slot, which is what holds the
 * encoders back when S3 is slower than they are. It sleeps on one thing, its eventfd
 * (actor_wait): a finished PUT always wakes it (put_finished), new mail only while it takes
 * mail. So a PUT's end and a message are each handled as soon as they come, and nothing is
 * looked at on a period. */
static void drive(uploader *u)
{
    for (;;) {
        take_finished(u);
        if (u->inflight == 0)
            break;
        int mail = u->waiting < u->arg->concurrency && !u->stop_seen;
        if (mail) {
            rd_msg *m = actor_try_receive(u->self);
            if (m != NULL) {
                if (m->type == MSG_STOP && (m->flags & RD_MSG_SYSTEM))
                    u->stop_seen = 1; /* put back once nothing is in flight */
                else if (on_message(u, m) == RD_KEPT)
                    continue;
                msg_free(m);
                continue;
            }
        }
        actor_wait(u->self, mail, -1);
    }
    if (u->stop_seen) {
        u->stop_seen = 0;
        actor_stop(u->self);
    }
}

static int on_object(uploader *u, rd_msg *m)
{
    struct rd_msg_hls_object *o = msg_body(m, hls_object);
    upload_job *j = find_job(u, o->job);
    if (j == NULL) {
        log_warn("upload_unregistered_job", KV_INT("job", o->job), KV_STR("name", o->name));
        return RD_DONE;
    }
    if (j->status < 0)
        return RD_DONE; /* failed: the rest of it is dropped (msg_free frees the bytes) */
    int i = hlspub_add(j->plan, o->name, o->data, o->len);
    if (i < 0) {
        fail_job(u, j, i, "the encoder handed over %s, which cannot be published (%s)", o->name,
                 i == -EEXIST ? "sent twice" : "a bad name or playlist");
        return RD_DONE;
    }
    if (i >= j->cap) {
        int cap = j->cap ? j->cap * 2 : 64;
        rd_msg **grown = rd_realloc(j->objects, (size_t)cap * sizeof(*grown), "upload job");
        memset(grown + j->cap, 0, (size_t)(cap - j->cap) * sizeof(*grown));
        j->objects = grown;
        j->cap = cap;
    }
    j->objects[i] = m;
    u->waiting++;
    pump(u, j);
    return RD_KEPT;
}

static void on_transcode_done(uploader *u, rd_msg *m)
{
    const struct rd_msg_transcode_done *d = msg_body(m, transcode_done);
    upload_job *j = find_job(u, d->job);
    if (j == NULL) {
        log_warn("upload_unregistered_job", KV_INT("job", d->job));
        msg_free(m);
        return;
    }
    j->transcoded = 1;
    if (d->status < 0) {
        fail_job(u, j, d->status, "%s%s", d->error[0] ? d->error : "the transcode failed", "");
    } else if (j->status == 0) {
        char err[256];
        int r = hlspub_finish(j->plan, err, sizeof(err));
        if (r < 0)
            fail_job(u, j, r, "%s%s", err, "");
    }
    notify_reliably(j, m);
    pump(u, j);
    settle(u, j);
}

static void on_register(uploader *u, const struct rd_msg_upload_job *r)
{
    upload_job *j = rd_calloc(1, sizeof(*j), "upload job");
    j->id = r->job;
    snprintf(j->asset, sizeof(j->asset), "%s", r->asset);
    j->notify = r->notify;
    j->encoder = r->encoder;
    j->plan = hlspub_new();
    j->started_ns = rd_now_ns();
    if (find_job(u, r->job) != NULL) {
        /* a second registration of a running job: refused, the first one goes on */
        rd_msg *m = msg_new(MSG_UPLOAD_DONE);
        struct rd_msg_upload_done *d = msg_body(m, upload_done);
        d->job = j->id;
        d->status = -EEXIST;
        snprintf(d->error, sizeof(d->error), "job %llu is already being uploaded",
                 (unsigned long long)r->job);
        snprintf(d->asset, sizeof(d->asset), "%s", j->asset);
        notify_reliably(j, m);
        hlspub_free(j->plan);
        free(j);
        return;
    }
    if (!valid_asset(r->asset))
        fail_job(u, j, -EINVAL,
                 "the asset id '%.63s' is not a path segment (letters, digits, '-', '_', '.')%s",
                 r->asset, "");
    j->next = u->jobs;
    u->jobs = j;
}

static int on_message(uploader *u, rd_msg *m)
{
    switch (m->type) {
    case MSG_UPLOAD_JOB:
        on_register(u, msg_body(m, upload_job));
        return RD_DONE;
    case MSG_HLS_OBJECT:
        return on_object(u, m);
    case MSG_TRANSCODE_PROGRESS: {
        upload_job *j = find_job(u, msg_body(m, transcode_progress)->job);
        if (j != NULL && j->notify != NULL && actor_send(j->notify, m) == 0)
            return RD_KEPT;
        return RD_DONE; /* progress may be dropped: the next one supersedes it */
    }
    case MSG_TRANSCODE_DONE:
        on_transcode_done(u, m);
        return RD_KEPT;
    default:
        log_warn("unexpected_message", KV_STR("actor", "s3_uploader"),
                 KV_STR("type", msg_name((rd_msg_type)m->type)));
        return RD_DONE;
    }
}

static int uploader_handle(rd_actor *self, rd_msg *m)
{
    uploader *u = self->state;
    int r = on_message(u, m);
    drive(u);
    return r;
}

static int uploader_init(rd_actor *self, void *arg)
{
    uploader *u = rd_calloc(1, sizeof(*u), "uploader");
    u->self = self;
    u->arg = arg;
    u->finished_tail = &u->finished;
    pthread_mutex_init(&u->mu, NULL);
    rd_metric *objects = metrics_family("reeld_upload_objects_total",
                                        "HLS objects stored in the previews bucket, by outcome",
                                        RD_COUNTER, "outcome", NULL, 0);
    rd_metric *jobs = metrics_family("reeld_upload_jobs_total",
                                     "Jobs whose ladder was published whole (ok) or not (failed)",
                                     RD_COUNTER, "outcome", NULL, 0);
    rd_metric *bytes = metrics_family("reeld_upload_bytes_total", "Bytes of HLS objects stored",
                                      RD_COUNTER, NULL, NULL, 0);
    u->objects_ok = metrics_series(objects, (const char *const[]){"ok"});
    u->objects_failed = metrics_series(objects, (const char *const[]){"failed"});
    u->jobs_ok = metrics_series(jobs, (const char *const[]){"ok"});
    u->jobs_failed = metrics_series(jobs, (const char *const[]){"failed"});
    u->bytes = metrics_series(bytes, NULL);
    self->state = u;
    return 0;
}

/* Only once nothing is in flight (drive waits for that before a STOP is taken): jobs not yet
 * ended are dropped with their objects; their notify hears nothing more. */
static void uploader_fini(rd_actor *self)
{
    uploader *u = self->state;
    if (u == NULL)
        return;
    while (u->jobs != NULL) {
        upload_job *j = u->jobs;
        u->jobs = j->next;
        log_warn("upload_abandoned", KV_INT("job", j->id), KV_STR("asset", j->asset));
        drop_waiting(u, j);
        hlspub_free(j->plan);
        free(j->objects);
        free(j);
    }
    pthread_mutex_destroy(&u->mu);
    free(u);
}

static const rd_actor_def uploader_def = {
    .name = "s3_uploader",
    .init = uploader_init,
    .handle = uploader_handle,
    .fini = uploader_fini,
    .mailbox_bound = 64, /* a few segments of slack per encoder; then they wait */
};

int uploader_spawn(const uploader_arg *arg, rd_actor **out)
{
    assert(arg->store != NULL);
    assert(arg->concurrency > 0);
    return actor_spawn_thread(&uploader_def, (void *)arg, -1, out);
}
