/* One transcode job: an input becomes an HLS ladder, decoded once, scaled and encoded per rung
 * with keyframes aligned across rungs, cut into MPEG-TS (or fragmented MP4) segments as it goes.
 *
 * owns:  every FFmpeg context of the job, created and freed inside transcode_run.
 * takes: a source (still the caller's afterwards) and a sink of callbacks.
 * never: writes a file or sends a message itself: every output leaves through the sink, so the
 *        same job feeds a directory (the CLI) or an uploader (the server); keeps more than one
 *        open segment per rung in memory.
 *
 * Output names, relative to the job's prefix: "<rung>/seg_00000.ts", "<rung>/index.m3u8",
 * "master.m3u8", "poster.jpg" (video only). Video also gets "poster.webp" (when this FFmpeg has
 * libwebp), the storyboard: "sprite_0.jpg"... (tiles taken from the same decode, never a
 * second pass) and "storyboard.vtt", and with `mp4` "download.mp4". With `fmp4`, a rung's first
 * output is
 * "<rung>/init.mp4" (ftyp and moov: the EXT-X-MAP of its playlist) and its segments are
 * "<rung>/seg_00000.m4s" (one moof and mdat each), cut at the same keyframes.
 *
 * Audio is AAC, encoded once and muxed into every rung: each variant stays self-contained (every
 * HLS player plays it, no audio groups), and the shared packets are references, not copies. An
 * input without video gets one "audio" rung. */
#ifndef REELD_MEDIA_TRANSCODE_H
#define REELD_MEDIA_TRANSCODE_H

#include <stddef.h>
#include <stdint.h>

#include "src/media/hwprobe.h"
#include "src/media/ladder.h"
#include "src/media/source.h"

typedef struct transcode_opts {
    const char *preset;      /* auto|1080p|720p|480p (ladder_preset) */
    int segment_sec;         /* HLS_SEGMENT_SEC, 1..30 */
    int fmp4;                /* HLS_SEGMENT_FORMAT=fmp4: CMAF segments behind an init segment */
    media_encoder encoder;   /* x264, NVENC or hybrid (vpath.h) */
    void *cuda_device;       /* NVENC, hybrid: AVBufferRef * of the GPU's CUDA device context */
    const char *x264_preset; /* NULL: "veryfast" */
    int x264_threads;        /* 0: libx264's own choice */
    /* Transcode bombs: an input longer (REELD_MAX_DURATION_SEC), by its header or by the
     * timestamps decoded, or with bigger pictures (REELD_MAX_FRAME_PIXELS) fails with -E2BIG.
     * 0: no limit. */
    int max_duration_sec;
    int64_t max_frame_pixels;
    /* The storyboard (src/media/storyboard.h): a tile every this many seconds of video
     * (STORYBOARD_INTERVAL_SEC); 0: from the duration, at most ~200 tiles, at least 1 s; below
     * 0: no storyboard. */
    int storyboard_interval_sec;
    /* The poster's time in seconds when has_poster_time (the promote body's poster_time), else
     * a tenth of the way in, at most 1 s. A time past the header's duration is taken half a second
     * before its end. */
    int has_poster_time;
    double poster_time;
    /* Also "download.mp4": the top rung's H.264 packets and the AAC track remuxed into one
     * MP4 with its moov first (MP4_DOWNLOAD, the promote body's "mp4"). No second encode. */
    int mp4;
    /* CPU path: each rung scaled from the next larger rung's picture instead of the decoded
     * one (`reeld transcode --cascade`). Off by default: on this machine's ladders it saved no
     * CPU on 1080p (0.996-1.016x) and lost 0.12 dB on the 480p ladder's sharp edges
     * (bench/cascade_psnr); it pays where the source is much larger than the top rung. */
    int cascade;
} transcode_opts;

typedef struct transcode_progress {
    double percent;   /* of the input's duration; 0 when unknown */
    double fps;       /* decoded frames per wall second, since the start */
    double speed;     /* media seconds per wall second */
    int64_t frames;   /* video frames decoded */
    double media_sec; /* position reached */
} transcode_progress;

typedef struct transcode_sink {
    /* A finished output. `data` (malloc'd, `len` bytes) becomes the callee's, who frees it with
     * free(). Segments and sprites come as they close; the last sprite, storyboard.vtt,
     * download.mp4 and the playlists, then the master, then the posters last.
     * Returns 0, or -errno to fail the job. */
    int (*object)(void *ctx, const char *name, uint8_t *data, size_t len);
    /* At most once a second. May be NULL. */
    void (*progress)(void *ctx, const transcode_progress *p);
    /* Polled between packets: non-zero stops the job with -ECANCELED. May be NULL. */
    int (*cancelled)(void *ctx);
    void *ctx;
} transcode_sink;

typedef struct transcode_result {
    char preset[8];   /* the ladder used ("auto" resolved) */
    int rungs;        /* renditions written */
    int64_t frames;   /* video frames decoded */
    int64_t segments; /* segments over all rungs */
    double media_sec; /* output duration */
    double wall_sec;
    int64_t peak_rss_kb; /* the process's peak resident memory during the job */
    int64_t damaged;     /* packets the decoders refused (concealed; the job went on) */
    char encoder[8];     /* the path that ran: "nvenc", "hybrid" (NVENC failed to open, or
                          * none), "x264" */
    ladder_rung ladder[LADDER_MAX_RUNGS]; /* the video renditions (nladder of them) */
    int nladder;
} transcode_result;

/* Runs the job to the end on the calling thread (it blocks for as long as encoding takes).
 * Returns 0, -ECANCELED, or another -errno with one sentence in `err` for the user
 * ("the input is not audio or video reeld can read: ..."). `res` is filled either way.
 *
 * On NVENC every rung's encoder opens before the first packet is decoded; if one cannot (a
 * GPU out of sessions, a driver NVENC refuses), the job goes on with libx264 on the GPU's
 * decoded and scaled frames (hybrid), logging FFmpeg's message ("nvenc_fallback"). A failure
 * of the GPU side later (scaling, NVENC encoding) returns -EIO: the device's, retried. */
int transcode_run(media_source *src, const transcode_opts *o, const transcode_sink *sink,
                  transcode_result *res, char *err, size_t errlen);

#endif
