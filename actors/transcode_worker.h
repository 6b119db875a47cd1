/* transcode-worker: the worker side of the dispatcher's protocol for jobs of kinds "transcode"
 * and "export", in front of a pool of gpu-encoders and one s3-uploader. One credit per idle
 * encoder covers both kinds (it pulls "transcode,export"), so exports run on the same slots,
 * GPUs and durable jobs as ladders, never beside them on more encoders than there are.
 *
 * A job goes: JOB_ASSIGN → the asset's row (STORE_ASSET_GET: its master's key, which is also
 * the prefix of its ladder) → UPLOAD_JOB to the uploader → TRANSCODE to an idle encoder, which
 * reads the master from S3_BUCKET_MASTERS by ranged GETs and hands each object to the uploader
 * → TRANSCODE_PROGRESS passed on as JOB_PROGRESS → UPLOAD_DONE (every object landed, master
 * last; or the job failed and nothing of it is left that a player could find) → JOB_DONE. Then
 * the encoder's slot is pulled for again.
 *
 * A clip (an asset with a source) goes the same way, but its encoder first cuts the clip's
 * master from the source's master (an export-mode TRANSCODE into S3_BUCKET_MASTERS under the
 * clip's key, answered to us: SLOT_CUTTING), then the ladder is made from it as for any asset.
 *
 * An export goes: JOB_ASSIGN → the export's row (STORE_EXPORT_GET by the job's asset_id: the
 * range, the track, the source's master) → TRANSCODE with export_mp4 to an idle encoder, which
 * writes the MP4 and stores it in S3_BUCKET_PREVIEWS itself → its TRANSCODE_DONE → JOB_DONE.
 *
 * Errors: a master that cannot be decoded, is missing or is too big fails the job for good
 * (retrying cannot help); anything else (the store, S3 or the network failing mid-job) fails
 * the attempt as retryable, and the dispatcher backs off and runs it again, here or on another
 * node.
 *
 * owns:  one slot per encoder: the job it runs and where it stands.
 * takes: MSG_JOB_ASSIGN, MSG_JOB_CANCEL (from the dispatcher: the encoder is told to stop and
 *        the job ends -ECANCELED once the uploader has cleaned up), the store's answers,
 *        MSG_TRANSCODE_PROGRESS, MSG_TRANSCODE_DONE and MSG_UPLOAD_DONE (from the uploader).
 * sends: MSG_JOB_PULL, MSG_JOB_PROGRESS, MSG_JOB_DONE to the dispatcher; MSG_STORE requests to
 *        the store; MSG_UPLOAD_JOB to the uploader; MSG_TRANSCODE and MSG_TRANSCODE_CANCEL to
 *        encoders.
 * never: blocks; pulls more jobs than it has idle encoders; sends an encoder a second job while
 *        one runs; reports a job done before the uploader has said how its upload ended. */
#ifndef REELD_ACTORS_TRANSCODE_WORKER_H
#define REELD_ACTORS_TRANSCODE_WORKER_H

#include "src/rt/actor.h"

#define TRANSCODE_WORKER_MAX 64 /* encoders one worker drives */

typedef struct transcode_worker_arg {
    rd_actor *dispatcher;
    rd_actor *store;
    rd_actor *uploader;
    rd_actor **encoders; /* n idle encoders (actors/gpu_encoder.h), borrowed */
    int n;
    const char *masters_bucket;  /* S3_BUCKET_MASTERS: where the encoders read masters */
    const char *previews_bucket; /* S3_BUCKET_PREVIEWS: exports and captions */
    const char *staging_bucket;  /* S3_BUCKET_STAGING: a clip's master on its way to masters */
    int lock_days;               /* OBJECT_LOCK_DEFAULT_DAYS: a clip's master's retention */
    const char *lock_mode;       /* OBJECT_LOCK_MODE: governance|compliance */
} transcode_worker_arg;

/* Spawns the worker on `loop`; `arg` and what it points to must outlive it. 0 or -errno. */
int transcode_worker_spawn(rd_loop *loop, const transcode_worker_arg *arg, rd_actor **out);

/* After the loops have stopped: frees the worker's state. NULL is a no-op. */
void transcode_worker_free(rd_actor *a);

/* 1 when a job that failed with `status` may succeed if run again. */
int transcode_worker_retryable(int status);

#endif
