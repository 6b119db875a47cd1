/* hls-dir-writer: puts a job's HLS outputs into a local directory (the CLI's sink; the server
 * will use s3-uploader). See hls_dir_writer.c for the contract. */
#ifndef REELD_ACTORS_HLS_DIR_WRITER_H
#define REELD_ACTORS_HLS_DIR_WRITER_H

#include "src/rt/actor.h"

typedef struct hlsdir_arg {
    const char *outdir; /* created if missing; must outlive the actor */
    /* Called on the writer's thread. on_done gets the job's end; `write_error` is the first
     * file that could not be written (the job then counts as failed), or NULL. */
    void (*on_progress)(void *ctx, const struct rd_msg_transcode_progress *p);
    void (*on_done)(void *ctx, const struct rd_msg_transcode_done *d, const char *write_error);
    void *ctx;
} hlsdir_arg;

/* Spawns the writer as a thread actor (file writes block). `arg` must outlive it. 0 or -errno. */
int hlsdir_spawn(const hlsdir_arg *arg, rd_actor **out);

#endif
