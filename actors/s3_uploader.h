/* s3-uploader: publishes the HLS ladder of transcode jobs to S3_BUCKET_PREVIEWS, segments
 * first and the master playlist only once the rest has landed. See s3_uploader.c for the
 * contract.
 *
 * Use: spawn one uploader, send it UPLOAD_JOB {job, asset, notify}, then send the encoder a
 * TRANSCODE for that job whose sink is the uploader. `notify` gets the job's progress, its
 * TRANSCODE_DONE, then one UPLOAD_DONE (proto/msg.h) once everything has landed or the job has
 * failed (then nothing of it stays behind that a player could find: no master playlist). */
#ifndef REELD_ACTORS_S3_UPLOADER_H
#define REELD_ACTORS_S3_UPLOADER_H

#include "src/blob/aio.h"
#include "src/rt/actor.h"

#define UPLOAD_CACHE_IMMUTABLE "public, max-age=31536000, immutable" /* segments, poster */
#define UPLOAD_CACHE_PLAYLIST  "no-cache"                            /* playlists */

typedef struct uploader_arg {
    blob_aio *store;    /* PUTs and DELETEs run on its home loop (fs: io_uring; s3: its client) */
    const char *bucket; /* S3_BUCKET_PREVIEWS */
    int concurrency;    /* UPLOAD_CONCURRENCY: PUTs in flight at once */
} uploader_arg;

/* Spawns the uploader as a thread actor (a handler that waits for a PUT slot is what slows the
 * encoders down to upload speed). `arg` and what it points to must outlive the actor; stop the
 * uploader (actor_stop, actor_join) before the store's home loop. 0 or -errno. */
int uploader_spawn(const uploader_arg *arg, rd_actor **out);

/* The S3 key of `name` of `asset`'s ladder: "{asset}/hls/{name}". 0, or -ENAMETOOLONG. */
int uploader_key(char *key, size_t cap, const char *asset, const char *name);

/* The Cache-Control an object of a ladder is stored with, by its name. */
const char *uploader_cache_control(const char *name);

#endif
