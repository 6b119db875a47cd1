/* gpu-encoder: runs transcode and export jobs, one at a time, on its own thread.
 *
 * owns:  its slot (NVENC sessions on one GPU, one per rung, or a CPU slot), its job and, for an
 *        export, the job's files in tmp_dir (the captions read back, the MP4 being written).
 * takes: TRANSCODE (a job: a ladder, or with export_mp4 an export), TRANSCODE_CANCEL (noticed
 *        between packets while a job runs), STOP (a running job is cancelled, then the actor
 *        ends).
 * sends: to the job's sink: for a ladder, HLS_OBJECT for every closed segment while encoding
 *        goes on, then the variant playlists, the master playlist and the poster; for an
 *        export nothing but progress and its end (the encoder stores the one MP4 itself, from
 *        the file, in parts: blocking calls on its own thread); TRANSCODE_PROGRESS at most
 *        once a second; exactly one TRANSCODE_DONE. A TRANSCODE that arrives while busy gets
 *        TRANSCODE_DONE with -EBUSY (an idle encoder pulls work; a busy one is never pushed).
 * never: drops an HLS_OBJECT or TRANSCODE_DONE: when the sink's mailbox is full it waits (still
 *        noticing a cancel), which is the back-pressure that slows encoding to upload speed;
 *        touches anything but its own state; blocks a loop (it is a thread actor). */
#include "actors/gpu_encoder.h"

#include <dirent.h>
#include <errno.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "src/blob/blob.h"
#include "src/media/avlog.h"
#include "src/media/export.h"
#include "src/media/ladder.h"
#include "src/media/transcode.h"
#include "src/rt/log.h"

#define CANCEL_CHECK_MS 50     /* waiting on a full sink, look at our own mail this often */
#define MMAP_FROM       131072 /* bytes from which malloc maps (and unmaps) a block of its own */

typedef struct encoder {
    rd_actor *self;
    const encoder_slot *slot;
    uint64_t job;   /* the running job, 0 when idle */
    rd_actor *sink; /* its sink */
    int cancel;     /* the running job is to stop */
    int stop_seen;  /* a STOP was taken off the mailbox mid-job: re-sent after it */
} encoder;

static const char *kind_name(media_encoder k)
{
    return k == MEDIA_ENC_NVENC ? "nvenc" : k == MEDIA_ENC_HYBRID ? "hybrid" : "x264";
}

/* Takes every message queued behind the running job: cancels, stops, refused jobs. */
static void poll_mailbox(encoder *e)
{
    rd_msg *m;
    while ((m = actor_try_receive(e->self)) != NULL) {
        if (m->type == MSG_TRANSCODE_CANCEL && msg_body(m, transcode_cancel)->job == e->job) {
            e->cancel = 1;
        } else if (m->type == MSG_STOP && (m->flags & RD_MSG_SYSTEM)) {
            e->cancel = 1;
            e->stop_seen = 1;
        } else if (m->type == MSG_TRANSCODE) {
            struct rd_msg_transcode *t = msg_body(m, transcode);
            rd_msg *d = msg_new(MSG_TRANSCODE_DONE);
            msg_body(d, transcode_done)->job = t->job;
            msg_body(d, transcode_done)->status = -EBUSY;
            snprintf(msg_body(d, transcode_done)->error, sizeof(msg_body(d, transcode_done)->error),
                     "the encoder is busy with another job: send it to an idle one");
            if (t->sink == NULL || actor_send(t->sink, d) < 0)
                msg_free(d);
        }
        msg_free(m);
    }
}

/* Sends `m` to the sink, waiting while its mailbox is full. 0, -EPIPE (the sink has stopped)
 * or -ECANCELED (cancelled while waiting; `m` is freed). */
static int send_reliably(encoder *e, rd_msg *m, int cancellable)
{
    for (;;) {
        int r = actor_send(e->sink, m);
        if (r == 0)
            return 0;
        if (r != -EAGAIN) {
            msg_free(m);
            return r;
        }
        poll_mailbox(e);
        if (cancellable && e->cancel) {
            msg_free(m);
            return -ECANCELED;
        }
        /* Woken as soon as the sink makes room; the timeout only bounds how long a cancel
         * (which arrives in our own mailbox) waits to be seen. */
        mailbox_wait_room(&e->sink->mbox, CANCEL_CHECK_MS);
    }
}

static int sink_object(void *ctx, const char *name, uint8_t *data, size_t len)
{
    encoder *e = ctx;
    rd_msg *m = msg_new(MSG_HLS_OBJECT);
    struct rd_msg_hls_object *o = msg_body(m, hls_object);
    o->job = e->job;
    snprintf(o->name, sizeof(o->name), "%s", name);
    o->data = data;
    o->len = len;
    return send_reliably(e, m, 1);
}

static void sink_progress(void *ctx, const transcode_progress *p)
{
    encoder *e = ctx;
    rd_msg *m = msg_new(MSG_TRANSCODE_PROGRESS);
    struct rd_msg_transcode_progress *b = msg_body(m, transcode_progress);
    b->job = e->job;
    b->percent = p->percent;
    b->fps = p->fps;
    b->speed = p->speed;
    b->media_sec = p->media_sec;
    b->frames = p->frames;
    if (actor_send(e->sink, m) < 0)
        msg_free(m); /* progress may be dropped: the next one supersedes it */
}

static int sink_cancelled(void *ctx)
{
    encoder *e = ctx;
    poll_mailbox(e);
    return e->cancel;
}

static void begin_job(encoder *e, const struct rd_msg_transcode *t)
{
    e->job = t->job;
    e->sink = t->sink;
    e->cancel = 0;
}

/* The job's one TRANSCODE_DONE, with what every kind of job reports. */
static rd_msg *done_message(const encoder *e, const struct rd_msg_transcode *t, int r,
                            const char *err, const char *encoder_used, int64_t frames,
                            double media_sec, double wall_sec, int64_t peak_rss_kb)
{
    rd_msg *m = msg_new(MSG_TRANSCODE_DONE);
    struct rd_msg_transcode_done *d = msg_body(m, transcode_done);
    d->job = t->job;
    d->status = r;
    snprintf(d->error, sizeof(d->error), "%s", r < 0 ? err : "");
    snprintf(d->encoder, sizeof(d->encoder), "%s",
             encoder_used[0] ? encoder_used : kind_name(e->slot->kind));
    d->frames = frames;
    d->media_sec = media_sec;
    d->wall_sec = wall_sec;
    d->peak_rss_kb = peak_rss_kb;
    return m;
}

/* Sends the job's end and makes the encoder idle (or stops it, when a STOP came mid-job). */
static void end_job(encoder *e, const struct rd_msg_transcode *t, rd_msg *done)
{
    if (send_reliably(e, done, 0) < 0)
        log_warn("transcode_done_undelivered", KV_INT("job", t->job));
    e->job = 0;
    e->sink = NULL;
    if (e->stop_seen)
        actor_stop(e->self); /* the STOP taken mid-job, put back */
}

/* Reads a small object (the captions to burn in) of `bucket` into a new file of tmp_dir,
 * whose path goes to `path`. 0 or -errno with one sentence in err. */
static int fetch_to_file(const encoder_slot *s, const char *bucket, const char *key, char *path,
                         size_t pathlen, char *err, size_t errlen)
{
    size_t cap = (16u << 20) + 1, got = 0; /* captions are at most 8 MiB as uploaded */
    char *buf = malloc(cap), msg[256] = "";
    if (buf == NULL)
        return -ENOMEM;
    int r = blob_get_range(s->blob, bucket, key, 0, buf, cap, &got, msg, sizeof(msg));
    if (r == 0 && got == cap)
        r = -EFBIG;
    int fd = -1;
    if (r == 0) {
        snprintf(path, pathlen, "%s/reeld-captions-XXXXXX", s->tmp_dir);
        fd = mkstemp(path);
        if (fd < 0)
            r = -errno;
    }
    for (size_t off = 0; r == 0 && off < got;) {
        ssize_t w = write(fd, buf + off, got - off);
        if (w < 0)
            r = -errno;
        else
            off += (size_t)w;
    }
    if (fd >= 0)
        close(fd);
    free(buf);
    if (r < 0 && fd >= 0)
        unlink(path);
    if (r == -ENOENT)
        snprintf(err, errlen,
                 "the caption track to burn in has no full-track file; upload it again");
    else if (r < 0)
        snprintf(err, errlen, "cannot read the captions %.120s: %.100s", key,
                 msg[0] ? msg : strerror(-r));
    return r;
}

/* An export: the master's range to one MP4 in tmp_dir, then stored from the file. */
static void run_export(encoder *e, const struct rd_msg_transcode *t)
{
    const encoder_slot *s = e->slot;
    begin_job(e, t);
    char err[256] = "", vtt[512] = "", out[512], msg[256] = "";
    export_result res;
    memset(&res, 0, sizeof(res));
    log_info("export_started", KV_INT("job", t->job), KV_STR("input", t->input),
             KV_STR("encoder", kind_name(s->kind)), KV_INT("slot", s->index),
             KV_INT("start_ms", t->start_ms), KV_INT("end_ms", t->end_ms),
             KV_INT("height", t->height), KV_STR("captions", t->captions_key));
    media_source *src = NULL;
    int r = 0, have_out = 0;
    if (s->blob == NULL || s->tmp_dir == NULL) {
        r = -EINVAL;
        snprintf(err, sizeof(err), "this encoder has no blob store or directory for exports");
    }
    if (r == 0 && t->captions_key[0] != '\0')
        r = fetch_to_file(s, t->out_bucket, t->captions_key, vtt, sizeof(vtt), err, sizeof(err));
    if (r == 0)
        r = source_open_blob(s->blob, t->bucket, t->input, &src, err, sizeof(err));
    if (r == 0) {
        snprintf(out, sizeof(out), "%s/reeld-export-%llu.mp4", s->tmp_dir,
                 (unsigned long long)t->job);
        export_opts o = {
            .start_ms = t->start_ms,
            .end_ms = t->end_ms,
            .height = t->height,
            .captions_vtt = vtt[0] ? vtt : NULL,
            .encoder = s->kind,
            .cuda_device = s->cuda_device,
            .x264_preset = s->x264_preset,
            .x264_threads = s->x264_threads,
            .max_frame_pixels = s->max_frame_pixels,
            .master_quality = t->master_quality,
        };
        export_sink sink = {sink_progress, sink_cancelled, e};
        r = export_run(src, &o, out, &sink, &res, err, sizeof(err));
        have_out = r == 0;
        if (src->error < 0 && r != -ECANCELED) {
            r = src->error;
            snprintf(err, sizeof(err), "%s", src->why);
        }
    }
    source_close(src);
    const char *put_bucket = t->via_bucket[0] ? t->via_bucket : t->out_bucket;
    if (r == 0) {
        r = blob_put_file(s->blob, put_bucket, t->out_key, out, "video/mp4", NULL, msg,
                          sizeof(msg));
        if (r < 0)
            snprintf(err, sizeof(err), "storing the export failed: %.200s",
                     msg[0] ? msg : strerror(-r));
    }
    if (r == 0 && t->via_bucket[0]) {
        r = blob_copy(s->blob, t->via_bucket, t->out_key, -1, t->out_bucket, t->out_key,
                      t->lock_days, t->lock_mode[0] ? t->lock_mode : NULL, NULL, msg, sizeof(msg));
        if (r < 0)
            snprintf(err, sizeof(err), "copying the master into %.40s failed: %.180s",
                     t->out_bucket, msg[0] ? msg : strerror(-r));
        char dmsg[256];
        if (blob_delete(s->blob, t->via_bucket, t->out_key, dmsg, sizeof(dmsg)) < 0)
            log_warn("export_staged_left", KV_INT("job", t->job), KV_STR("key", t->out_key),
                     KV_STR("detail", dmsg)); /* the staging bucket's lifecycle expires it */
    }
    if (have_out)
        unlink(out);
    if (vtt[0])
        unlink(vtt);
    rd_msg *m = done_message(e, t, r, err, res.encoder, res.frames, res.media_sec, res.wall_sec,
                             res.peak_rss_kb);
    struct rd_msg_transcode_done *d = msg_body(m, transcode_done);
    if (r == 0)
        log_info("export_done", KV_INT("job", t->job), KV_STR("encoder", d->encoder),
                 KV_INT("width", res.width), KV_INT("height", res.height),
                 KV_INT("frames", res.frames), KV_INT("bytes", res.bytes),
                 KV_DBL("media_sec", res.media_sec), KV_DBL("wall_sec", res.wall_sec),
                 KV_INT("peak_rss_kb", res.peak_rss_kb));
    else
        log_error("export_failed", KV_INT("job", t->job), KV_STR("reason", err), KV_ERRNO(r),
                  KV_DBL("wall_sec", res.wall_sec));
    end_job(e, t, m);
}

static void run_job(encoder *e, const struct rd_msg_transcode *t)
{
    const encoder_slot *s = e->slot;
    begin_job(e, t);
    const char *format = t->format[0] ? t->format : s->segment_format;
    transcode_opts o = {
        .preset = t->preset[0] ? t->preset : s->preset,
        .segment_sec = t->segment_sec > 0 ? t->segment_sec : s->segment_sec,
        .fmp4 = format != NULL && strcmp(format, "fmp4") == 0,
        .encoder = s->kind,
        .cuda_device = s->cuda_device,
        .x264_preset = s->x264_preset,
        .x264_threads = s->x264_threads,
        .max_duration_sec = s->max_duration_sec,
        .max_frame_pixels = s->max_frame_pixels,
        .storyboard_interval_sec = s->storyboard_interval_sec,
        .has_poster_time = t->has_poster_time,
        .poster_time = t->poster_time,
        .mp4 = s->mp4 || t->mp4,
        .cascade = t->cascade,
    };
    transcode_sink sink = {sink_object, sink_progress, sink_cancelled, e};
    transcode_result res;
    char err[256];
    log_info("transcode_started", KV_INT("job", t->job), KV_STR("input", t->input),
             KV_STR("encoder", kind_name(s->kind)), KV_INT("slot", s->index),
             KV_STR("preset", o.preset), KV_INT("segment_sec", o.segment_sec),
             KV_STR("segment_format", o.fmp4 ? "fmp4" : "ts"), KV_INT("mp4", o.mp4));
    media_source *src = NULL;
    int r;
    memset(&res, 0, sizeof(res));
    if (t->bucket[0] != '\0' && s->blob == NULL) {
        r = -EINVAL;
        snprintf(err, sizeof(err), "this encoder has no blob store to read %s from", t->bucket);
    } else if (t->bucket[0] != '\0') {
        r = source_open_blob(s->blob, t->bucket, t->input, &src, err, sizeof(err));
    } else {
        r = source_open_file(t->input, &src);
        if (r < 0)
            snprintf(err, sizeof(err), "cannot open the input %.160s: %s", t->input, strerror(-r));
    }
    if (r == 0)
        r = transcode_run(src, &o, &sink, &res, err, sizeof(err));
    /* A read that failed may have looked like the end of the input to the demuxer: the
     * source's own error decides, so a short ladder is never called whole. */
    if (src != NULL && src->error < 0 && r != -ECANCELED) {
        r = src->error;
        snprintf(err, sizeof(err), "%s", src->why);
    }
    source_close(src);

    rd_msg *m = done_message(e, t, r, err, res.encoder, res.frames, res.media_sec, res.wall_sec,
                             res.peak_rss_kb);
    struct rd_msg_transcode_done *d = msg_body(m, transcode_done);
    snprintf(d->preset, sizeof(d->preset), "%s", res.preset);
    d->rungs = res.rungs;
    d->segments = res.segments;
    for (int i = 0; i < res.nladder && i < (int)(sizeof(d->ladder) / sizeof(d->ladder[0])); i++) {
        snprintf(d->ladder[i].name, sizeof(d->ladder[i].name), "%s", res.ladder[i].name);
        d->ladder[i].width = res.ladder[i].width;
        d->ladder[i].height = res.ladder[i].height;
        d->ladder[i].kbps = res.ladder[i].video_kbps;
        d->nladder = i + 1;
    }
    if (r == 0)
        log_info("transcode_done", KV_INT("job", t->job), KV_STR("encoder", d->encoder),
                 KV_STR("preset", res.preset), KV_INT("rungs", res.rungs),
                 KV_INT("segments", res.segments), KV_INT("frames", res.frames),
                 KV_DBL("media_sec", res.media_sec), KV_DBL("wall_sec", res.wall_sec),
                 KV_DBL("fps", res.wall_sec > 0 ? (double)res.frames / res.wall_sec : 0),
                 KV_INT("peak_rss_kb", res.peak_rss_kb), KV_INT("damaged_packets", res.damaged));
    else
        log_error("transcode_failed", KV_INT("job", t->job), KV_STR("reason", err), KV_ERRNO(r),
                  KV_DBL("wall_sec", res.wall_sec), KV_INT("peak_rss_kb", res.peak_rss_kb));
    end_job(e, t, m);
}

static int encoder_init(rd_actor *self, void *arg)
{
    encoder *e = calloc(1, sizeof(*e));
    if (e == NULL)
        return -ENOMEM;
    e->self = self;
    e->slot = arg;
    self->state = e;
    return 0;
}

static int encoder_handle(rd_actor *self, rd_msg *m)
{
    encoder *e = self->state;
    switch (m->type) {
    case MSG_TRANSCODE:
        if (msg_body(m, transcode)->sink == NULL) {
            log_warn("transcode_without_sink", KV_INT("job", msg_body(m, transcode)->job));
            return RD_DONE;
        }
        if (msg_body(m, transcode)->export_mp4)
            run_export(e, msg_body(m, transcode));
        else
            run_job(e, msg_body(m, transcode));
        return RD_DONE;
    case MSG_TRANSCODE_CANCEL:
        return RD_DONE; /* not running here: nothing to stop */
    default:
        log_warn("unexpected_message", KV_STR("actor", "gpu_encoder"),
                 KV_STR("type", msg_name((rd_msg_type)m->type)));
        return RD_DONE;
    }
}

static void encoder_fini(rd_actor *self)
{
    free(self->state);
}

static const rd_actor_def encoder_def = {
    .name = "gpu_encoder",
    .init = encoder_init,
    .handle = encoder_handle,
    .fini = encoder_fini,
    .mailbox_bound = 64,
};

int encoder_pool_start(const rd_config *cfg, int cpu_slots, int max, struct blob_store *blob,
                       encoder_pool *pool, char *err, size_t errlen)
{
    memset(pool, 0, sizeof(*pool));
    avlog_install();
    /* Exports are written here before they are stored. */
    snprintf(pool->tmp_dir, sizeof(pool->tmp_dir), "%s/tmp",
             cfg->data_dir != NULL ? cfg->data_dir : ".");
    if (mkdir(pool->tmp_dir, 0700) < 0 && errno != EEXIST)
        log_warn("encoder_tmp_dir", KV_STR("dir", pool->tmp_dir), KV_ERRNO(-errno));
    /* glibc raises its mmap threshold to the largest block freed so far (up to 32 MB), after
     * which segments and packets of megabytes come from the threads' arenas and stay there,
     * freed but resident, between jobs. A fixed threshold gives them back on free(). Measured
     * on the 1080p ladder: a few MB off the peak, no change in speed. Fewer arenas
     * (M_ARENA_MAX) saved nothing: the arenas hold live pictures, not fragments. */
    mallopt(M_MMAP_THRESHOLD, MMAP_FROM);
    /* A job encodes every rung at once: one NVENC session per rung, so an encoder actor on a
     * GPU stands for as many sessions as the ladder has rungs. */
    int rungs = ladder_max_rungs(ladder_preset(cfg->preview_preset, 1));
    int per_gpu = cfg->nvenc_sessions_per_gpu;
    if (max > 0 && per_gpu > max * rungs)
        per_gpu = max * rungs;
    int r = hwprobe_run(cfg->encoder, cfg->gpu_devices, per_gpu, cpu_slots, &pool->probe);
    if (r < 0) {
        snprintf(err, errlen,
                 "ENCODER=nvenc but no GPU opened an NVENC session (%s): use ENCODER=auto or x264",
                 pool->probe.reason);
        return r;
    }
    int nvenc = pool->probe.encoder == MEDIA_ENC_NVENC;
    int hybrid = pool->probe.encoder == MEDIA_ENC_HYBRID && pool->probe.ngpus > 0;
    /* libx264 asks for transparent huge pages on its big picture buffers and rounds the advice
     * up to whole 2 MB pages, which faults in memory past the buffers' ends: 16 MB of the
     * 1080p ladder's peak (measured twice, 377 -> 361 MB), with no speed lost that the
     * measurement could see. The output does not change. */
    if (!nvenc)
        prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0);
    int per_gpu_encoders[HWPROBE_MAX_GPUS];
    int n = nvenc ? 0 : pool->probe.sessions;
    for (int g = 0; nvenc && g < pool->probe.ngpus; g++) {
        int e = pool->probe.gpus[g].sessions / rungs;
        per_gpu_encoders[g] = e > 0 ? e : 1; /* a GPU short of sessions still takes one job */
        n += per_gpu_encoders[g];
    }
    if (max > 0 && n > max)
        n = max;
    pool->slots = calloc((size_t)n, sizeof(*pool->slots));
    pool->actors = calloc((size_t)n, sizeof(*pool->actors));
    if (pool->slots == NULL || pool->actors == NULL) {
        encoder_pool_stop(pool);
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    int gpu = 0, used = 0;
    for (int i = 0; i < n; i++) {
        encoder_slot *s = &pool->slots[i];
        s->index = i;
        s->kind = pool->probe.encoder;
        s->gpu = -1;
        if (nvenc) {
            while (used >= per_gpu_encoders[gpu]) {
                gpu++;
                used = 0;
            }
            s->gpu = pool->probe.gpus[gpu].index;
            s->cuda_device = pool->probe.gpus[gpu].device;
            used++;
        } else if (hybrid) { /* the CPU's encoders, their decoding and scaling spread over GPUs */
            s->gpu = pool->probe.gpus[i % pool->probe.ngpus].index;
            s->cuda_device = pool->probe.gpus[i % pool->probe.ngpus].device;
        }
        s->preset = cfg->preview_preset;
        s->segment_sec = cfg->hls_segment_sec;
        s->segment_format = cfg->hls_segment_format;
        s->max_duration_sec = cfg->max_duration_sec;
        s->max_frame_pixels = cfg->max_frame_pixels;
        s->storyboard_interval_sec = cfg->storyboard_interval_sec;
        s->mp4 = cfg->mp4_download != NULL && strcmp(cfg->mp4_download, "on") == 0;
        s->blob = blob;
        s->tmp_dir = pool->tmp_dir;
        r = actor_spawn_thread(&encoder_def, s, -1, &pool->actors[i]);
        if (r < 0) {
            encoder_pool_stop(pool);
            snprintf(err, errlen, "cannot start an encoder thread: %s", strerror(-r));
            return r;
        }
        pool->n++;
    }
    return 0;
}

void encoder_pool_sweep(const encoder_pool *pool)
{
    DIR *dir = opendir(pool->tmp_dir);
    for (struct dirent *de; dir != NULL && (de = readdir(dir)) != NULL;)
        if (strncmp(de->d_name, "reeld-export-", 13) == 0 ||
            strncmp(de->d_name, "reeld-captions-", 15) == 0)
            unlinkat(dirfd(dir), de->d_name, 0);
    if (dir != NULL)
        closedir(dir);
}

void encoder_pool_stop(encoder_pool *pool)
{
    for (int i = 0; i < pool->n; i++)
        actor_stop(pool->actors[i]);
    for (int i = 0; i < pool->n; i++)
        actor_join(pool->actors[i]);
    free(pool->actors);
    free(pool->slots);
    hwprobe_free(&pool->probe);
    memset(pool, 0, sizeof(*pool));
}
