/* gpu-encoder actors: one thread actor per GPU encoder slot (a ladder's worth of NVENC
 * sessions) or CPU slot, each running one transcode job at a time. See gpu_encoder.c for the
 * contract. */
#ifndef REELD_ACTORS_GPU_ENCODER_H
#define REELD_ACTORS_GPU_ENCODER_H

#include "src/media/hwprobe.h"
#include "src/rt/actor.h"
#include "src/rt/config.h"

typedef struct encoder_slot {
    int index;                   /* 0.. over the pool, for logs */
    media_encoder kind;          /* what this slot encodes with */
    int gpu;                     /* CUDA index; -1 for a CPU slot */
    void *cuda_device;           /* AVBufferRef * of its GPU, borrowed from the probe */
    const char *preset;          /* default ladder (PREVIEW_PRESET) */
    int segment_sec;             /* default HLS_SEGMENT_SEC */
    const char *segment_format;  /* default HLS_SEGMENT_FORMAT: ts|fmp4 */
    const char *x264_preset;     /* NULL: veryfast */
    int x264_threads;            /* 0: libx264's own */
    int max_duration_sec;        /* REELD_MAX_DURATION_SEC (0: no limit) */
    int64_t max_frame_pixels;    /* REELD_MAX_FRAME_PIXELS (0: no limit) */
    int storyboard_interval_sec; /* STORYBOARD_INTERVAL_SEC (0: from the duration) */
    int mp4;                     /* MP4_DOWNLOAD=on: download.mp4 for every job */
    struct blob_store *blob;     /* where TRANSCODE's `bucket` inputs are read from; may be NULL */
    const char *tmp_dir;         /* exports: where the MP4 is written before it is stored */
} encoder_slot;

typedef struct encoder_pool {
    hwprobe_result probe;
    encoder_slot *slots;
    rd_actor **actors;
    int n;
    char tmp_dir[512]; /* REELD_DATA_DIR/tmp: exports' files, emptied at start */
} encoder_pool;

/* Probes the GPUs (ENCODER, GPU_DEVICES, NVENC_SESSIONS_PER_GPU in `cfg`) and spawns the
 * encoders: on NVENC one per GPU for every ladder's worth of sessions that opened (a job opens
 * one session per rung of PREVIEW_PRESET), else `cpu_slots` libx264 encoders (on hybrid, GPUs
 * with CUDA but no NVENC, spread over those GPUs, which decode and scale); at most `max`
 * (0: no limit). `blob` (borrowed, outliving the pool; may be NULL) is where TRANSCODEs that
 * name a bucket are read from. Returns 0, or -ENODEV when ENCODER=nvenc and no NVENC opened,
 * with one line in `err`. */
int encoder_pool_start(const rd_config *cfg, int cpu_slots, int max, struct blob_store *blob,
                       encoder_pool *pool, char *err, size_t errlen);

/* Deletes what exports of an earlier process left in the pool's tmp_dir (REELD_DATA_DIR/tmp):
 * a killed job runs again from the start, so its files are of no use. Only for the server that
 * owns the data directory (the worker role), before it takes jobs: a `reeld transcode` beside
 * a running server must not pull a running export's file from under it. */
void encoder_pool_sweep(const encoder_pool *pool);

/* Stops every encoder (a running job is cancelled first), waits for their threads, frees the
 * pool. The actors themselves are freed by actor_free_all. */
void encoder_pool_stop(encoder_pool *pool);

#endif
