/* The worker role of `reeld serve`, put together: the gpu-encoders (NVENC sessions or libx264
 * slots), the blob backend they read masters from and the s3-uploader publishes ladders to, and
 * the transcode-worker that pulls jobs for them from the dispatcher.
 *
 * owns:  those actors and the backend, until worker_role_free.
 * never: reports a job cancelled because this process is stopping: such a job is left to the
 *        dispatcher, which releases it (its attempt uncounted) for another worker. */
#ifndef REELD_WORKER_ROLE_H
#define REELD_WORKER_ROLE_H

#include <stddef.h>

#include "actors/gpu_encoder.h"
#include "actors/s3_uploader.h"
#include "actors/transcode_worker.h"
#include "src/blob/backend.h"
#include "src/rt/runtime.h"

typedef struct worker_role {
    blob_backend backend;
    encoder_pool pool;
    uploader_arg up;
    rd_actor *uploader;
    /* The encoders' actors, kept past encoder_pool_stop (which frees the pool's array): the
     * worker may still name them while the loops drain, and a stopped actor refuses mail. */
    rd_actor *encoders[TRANSCODE_WORKER_MAX];
    transcode_worker_arg wa;
    rd_actor *worker;
    int started;
} worker_role;

/* Starts the role on `rt` for `dispatcher` and `store`. 0, or -errno with one line in `err`
 * (ENCODER=nvenc without NVENC, an S3 endpoint that does not resolve). */
int worker_role_start(worker_role *w, const rd_config *cfg, rd_runtime *rt, rd_actor *dispatcher,
                      rd_actor *store, char *err, size_t errlen);

/* Before the loops stop: cancels running encodes, lets the uploader clean up what they stored
 * (no master is left behind), and stops it. The jobs stay with the dispatcher, which releases
 * them when its loop stops. */
void worker_role_stop(worker_role *w);

/* After the loops have stopped. A role never started is a no-op. */
void worker_role_free(worker_role *w);

#endif
