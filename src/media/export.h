/* One export job: a range of a master becomes one MP4, optionally scaled down and with a WebVTT
 * caption track rendered into the picture (libass, through libavfilter's subtitles filter, with
 * the fonts the system has).
 *
 * owns:  every FFmpeg context of the job, created and freed inside export_run, and the output
 *        file while it is written.
 * takes: a source (still the caller's afterwards), the options, a path to write.
 * never: decodes more of the input than the range needs (it seeks to the keyframe at or
 *        before `start_ms` and stops at `end_ms`); holds the output in memory (it is written
 *        to `out_path` as it is encoded, then its moov is moved to the front); sends a
 *        message or touches a store: the caller publishes the file.
 *
 * The cut is frame-accurate: the first video frame of the output is the source's frame shown
 * at `start_ms` (the last one whose time is at or before it), at time 0; the last is the last
 * one before `end_ms`. Audio (AAC) is cut to the same range. Caption cue times are the
 * source's timeline (0 = the first frame of the master), as the HLS subtitle track uses. */
#ifndef REELD_MEDIA_EXPORT_H
#define REELD_MEDIA_EXPORT_H

#include <stddef.h>
#include <stdint.h>

#include "src/media/hwprobe.h"
#include "src/media/source.h"
#include "src/media/transcode.h"

typedef struct export_opts {
    int64_t start_ms, end_ms; /* 0 <= start_ms < end_ms; an end past the input's end is its end */
    int height;               /* output height, even, never above the source's; 0: the source's */
    const char *captions_vtt; /* path of a WebVTT file to burn in; NULL or "": none */
    media_encoder encoder;    /* NVENC (h264_nvenc), or libx264 for the others */
    void *cuda_device;        /* NVENC: AVBufferRef * of the GPU's CUDA device context */
    const char *x264_preset;  /* NULL: "veryfast" */
    int x264_threads;         /* 0: libx264's own choice */
    int64_t max_frame_pixels; /* REELD_MAX_FRAME_PIXELS: bigger pictures fail with -E2BIG */
    int master_quality;       /* a clip's master, which ladders are made from later: near
                               * lossless (x264 CRF 16, NVENC CQ 18) and no bitrate cap */
} export_opts;

typedef struct export_sink {
    /* At most once a second; percent of the range. May be NULL. */
    void (*progress)(void *ctx, const transcode_progress *p);
    /* Polled between packets: non-zero stops the job with -ECANCELED. May be NULL. */
    int (*cancelled)(void *ctx);
    void *ctx;
} export_sink;

typedef struct export_result {
    int width, height; /* of the output picture (0 for audio only) */
    int64_t frames;    /* video frames written */
    int64_t bytes;     /* of the output file */
    double media_sec;  /* output duration */
    double wall_sec;
    int64_t peak_rss_kb; /* the process's peak resident memory during the job */
    char encoder[8];     /* "nvenc" or "x264" */
} export_result;

/* Runs the export to the end on the calling thread (blocking) and writes the MP4 (H.264 and
 * AAC, moov first) to `out_path`, created or truncated; on failure the file is removed (a
 * failure found before it is created, such as a bad range, leaves `out_path` untouched).
 * Returns 0, -ECANCELED, or another -errno with one sentence for the user in `err`:
 * -EINVAL (the input cannot be decoded; a range that starts past the input's end; captions
 * libass cannot read, or a file that does not start with "WEBVTT": nothing else reaches
 * FFmpeg's probe), -ENOTSUP (no stream reeld encodes), -E2BIG (pictures too big), -EIO
 * (the device's, worth retrying), -ENOSPC (the disk). `res` is filled either way. An NVENC
 * encoder that will not open falls back to libx264, as a transcode does. */
int export_run(media_source *src, const export_opts *o, const char *out_path,
               const export_sink *sink, export_result *res, char *err, size_t errlen);

#endif
