/* The worker role. See worker_role.h. */
#include "cmd/worker_role.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "src/rt/log.h"

int worker_role_start(worker_role *w, const rd_config *cfg, rd_runtime *rt, rd_actor *dispatcher,
                      rd_actor *store, char *err, size_t errlen)
{
    memset(w, 0, sizeof(*w));
    /* The uploader's PUTs (fs: that loop's io_uring) and the encoders' ranged GETs go through
     * one client on the last loop, beside the dispatcher, away from loop 0's API and store. */
    int r = blob_backend_open(&w->backend, cfg, &rt->loops[rt->nloops - 1], 1, err, errlen);
    if (r < 0)
        return r;
    w->started = 1;
    r = encoder_pool_start(cfg, cfg->cpu_encoders, TRANSCODE_WORKER_MAX, w->backend.blob, &w->pool,
                           err, errlen);
    if (r < 0)
        return r;
    encoder_pool_sweep(&w->pool); /* before the worker takes jobs */
    w->up = (uploader_arg){.store = w->backend.aio,
                           .bucket = cfg->s3_bucket_previews,
                           .concurrency = cfg->upload_concurrency};
    r = uploader_spawn(&w->up, &w->uploader);
    if (r < 0) {
        snprintf(err, errlen, "cannot start the uploader: %s", strerror(-r));
        return r;
    }
    memcpy(w->encoders, w->pool.actors, sizeof(rd_actor *) * (size_t)w->pool.n);
    w->wa = (transcode_worker_arg){.dispatcher = dispatcher,
                                   .store = store,
                                   .uploader = w->uploader,
                                   .encoders = w->encoders,
                                   .n = w->pool.n,
                                   .masters_bucket = cfg->s3_bucket_masters,
                                   .previews_bucket = cfg->s3_bucket_previews,
                                   .staging_bucket = cfg->s3_bucket_staging,
                                   .lock_days = cfg->object_lock_default_days,
                                   .lock_mode = cfg->object_lock_mode};
    r = transcode_worker_spawn(rt->loops[0], &w->wa, &w->worker);
    if (r < 0) {
        snprintf(err, errlen, "cannot start the transcode worker: %s", strerror(-r));
        return r;
    }
    log_info("worker_started", KV_INT("encoders", w->pool.n),
             KV_STR("encoder", w->pool.probe.encoder == MEDIA_ENC_NVENC ? "nvenc" : "x264"),
             KV_STR("storage", blob_aio_kind(w->backend.aio)));
    return 0;
}

void worker_role_stop(worker_role *w)
{
    if (!w->started)
        return;
    /* Encoders first: a running job is cancelled and its TRANSCODE_DONE reaches the uploader,
     * which deletes what the job stored while the S3 client's loop still runs; the uploader
     * takes its STOP only once nothing is in flight. */
    encoder_pool_stop(&w->pool);
    if (w->uploader != NULL) {
        actor_stop(w->uploader);
        actor_join(w->uploader);
    }
}

void worker_role_free(worker_role *w)
{
    if (!w->started)
        return;
    transcode_worker_free(w->worker);
    blob_backend_close(&w->backend);
    memset(w, 0, sizeof(*w));
}
