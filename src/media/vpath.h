/* A rung's video path, as text and settings: the filter chains each encoder path builds and
 * the video encoder's settings. Pure functions (no device, no open codec), so the GPU paths are
 * tested on machines without a GPU.
 *
 * The three paths (media_encoder):
 *   x264:   software decode, swscale, libx264 (no filter graph).
 *   NVENC:  NVDEC decode (or software decode, uploaded once per job with vpath_upload_chain),
 *           scale_cuda to NV12 on the GPU, h264_nvenc from CUDA frames.
 *   hybrid: a GPU without NVENC (H100, H200, A100): NVDEC decode, scale_cuda to NV12, the
 *           small frames downloaded, libx264.
 * A rotated source is scaled on the GPU first, to the rung's size turned a quarter, then the
 * small frame is downloaded and turned on the CPU (this FFmpeg has no CUDA transpose); NVENC
 * then takes it as NV12 from system memory. */
#ifndef REELD_MEDIA_VPATH_H
#define REELD_MEDIA_VPATH_H

#include <stddef.h>

#include <libavcodec/avcodec.h>
#include <libavutil/dict.h>

#include "src/media/hwprobe.h"

/* What a video encoder is set up with: the rung, the job's choices, and the pixel format its
 * frames arrive in (AV_PIX_FMT_CUDA, AV_PIX_FMT_NV12 downloaded, AV_PIX_FMT_YUV420P). */
typedef struct vpath_params {
    int width, height;
    int video_kbps, maxrate_kbps;
    AVRational frame_rate;
    int segment_sec;
    int fmp4;                /* global header: SPS/PPS in the init segment */
    int threads;             /* libx264 threads */
    const char *x264_preset; /* NULL: veryfast */
    enum AVPixelFormat pix_fmt;
} vpath_params;

/* "h264_nvenc" for NVENC, "libx264" for x264 and hybrid. */
const char *vpath_codec_name(media_encoder enc);

/* Names the path for logs: "nvenc", "x264", "hybrid". */
const char *vpath_name(media_encoder enc);

/* The chain that brings software-decoded frames onto the GPU, once per job: 8-bit 4:2:0 first
 * (whatever the source's depth or chroma: H.264 NVENC takes neither 10-bit nor 4:4:4), then
 * hwupload, whose filter the caller gives the job's CUDA device. Returns the length written,
 * or -ENOSPC. */
int vpath_upload_chain(char *buf, size_t len);

/* The rung's chain from CUDA frames (the decoder's or the upload's) to what its encoder takes:
 * scale_cuda to NV12 at the rung's size (never a passthrough: NVENC must not hold the
 * decoder's own surfaces), then, for hybrid or a turned source, hwdownload to NV12 and the
 * turn on the small frame. `rotation` is clockwise degrees (0, 90, 180, 270), `w` x `h` the
 * rung as displayed. Returns the length written, -EINVAL for x264 (no graph) or -ENOSPC. */
int vpath_rung_chain(char *buf, size_t len, media_encoder enc, int rotation, int w, int h);

/* The pixel format a rung's encoder receives from vpath_rung_chain: AV_PIX_FMT_CUDA (NVENC,
 * upright source) or AV_PIX_FMT_NV12 (downloaded). */
enum AVPixelFormat vpath_rung_pix_fmt(media_encoder enc, int rotation);

/* Fills a video encoder context (allocated, not opened) and its options for `enc`: size,
 * rates, a GOP a little longer than a segment, no scene cuts, forced IDR keyframes; on NVENC
 * also no B-frames (FFmpeg 5.1's NVENC shifts DTS past PTS in a 1/90000 time base, which the
 * muxers refuse) and the High profile. The caller adds the hardware contexts. 0 or -ENOMEM. */
int vpath_encoder_setup(AVCodecContext *c, AVDictionary **opts, media_encoder enc,
                        const vpath_params *p);

/* The path a job falls back to when h264_nvenc cannot open (a GPU out of sessions, a driver
 * too old): libx264 on the frames the GPU still decodes and scales (hybrid) when the job has
 * a CUDA device, else x264. */
media_encoder vpath_fallback(media_encoder failed, int has_cuda);

/* A failure on the GPU side mid-job (scale_cuda, hwupload, NVENC encoding), as the job's
 * status: the device's fault, not the master's, so the errno class is one a worker retries
 * (-EIO); -ENOMEM and -ECANCELED stay as they are. */
int vpath_gpu_status(int r);

#endif
