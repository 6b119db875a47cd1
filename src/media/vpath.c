/* Filter-chain strings and encoder settings of the three video paths (see vpath.h). Option
 * names are FFmpeg 5.1's: scale_cuda's w, h, interp_algo, format and passthrough; h264_nvenc's
 * preset, rc, profile, no-scenecut, strict_gop and forced-idr. */
#include "src/media/vpath.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>

const char *vpath_codec_name(media_encoder enc)
{
    return enc == MEDIA_ENC_NVENC ? "h264_nvenc" : "libx264";
}

const char *vpath_name(media_encoder enc)
{
    return enc == MEDIA_ENC_NVENC ? "nvenc" : enc == MEDIA_ENC_HYBRID ? "hybrid" : "x264";
}

static int written(int n, size_t len)
{
    return n < 0 || (size_t)n >= len ? -ENOSPC : n;
}

int vpath_upload_chain(char *buf, size_t len)
{
    return written(snprintf(buf, len, "format=nv12,hwupload"), len);
}

int vpath_rung_chain(char *buf, size_t len, media_encoder enc, int rotation, int w, int h)
{
    static const char *const turn[] = {"", ",transpose=clock", ",hflip,vflip", ",transpose=cclock"};
    if (enc != MEDIA_ENC_NVENC && enc != MEDIA_ENC_HYBRID)
        return -EINVAL;
    int q = ((rotation % 360 + 360) % 360) / 90;
    int sw = q % 2 ? h : w, sh = q % 2 ? w : h; /* the size before the turn */
    int download = enc == MEDIA_ENC_HYBRID || q != 0;
    /* scale_cuda's bicubic (its default) and lanczos read a fixed 4x4 neighbourhood of the
     * source, however far it shrinks: a ladder's rungs (1.5x to 3x smaller) alias. Its
     * bilinear widens its four taps with the ratio. Measured on an H200 against the source
     * scaled by swscale's lanczos (bench/gpu_check's scalers section, 1080p testsrc2 to
     * 720p/480p/360p): bilinear 46.2/45.8/43.9 dB, bicubic 41.3/37.8/33.6, swscale's area
     * (what the CPU path's quality is near) 46.1/46.0/43.9. At one size it reads each pixel
     * as it is. */
    return written(
        snprintf(buf, len,
                 "scale_cuda=w=%d:h=%d:interp_algo=bilinear:format=nv12:passthrough=0%s%s", sw, sh,
                 download ? ",hwdownload,format=nv12" : "", turn[q]),
        len);
}

enum AVPixelFormat vpath_rung_pix_fmt(media_encoder enc, int rotation)
{
    return enc == MEDIA_ENC_NVENC && rotation % 360 == 0 ? AV_PIX_FMT_CUDA : AV_PIX_FMT_NV12;
}

int vpath_encoder_setup(AVCodecContext *c, AVDictionary **opts, media_encoder enc,
                        const vpath_params *p)
{
    c->width = p->width;
    c->height = p->height;
    c->sample_aspect_ratio = (AVRational){1, 1};
    c->time_base = (AVRational){1, 90000};
    c->framerate = p->frame_rate;
    c->bit_rate = (int64_t)p->video_kbps * 1000;
    c->rc_max_rate = (int64_t)p->maxrate_kbps * 1000;
    c->rc_buffer_size = (int)(c->rc_max_rate * 2);
    /* A GOP a little longer than a segment: the forced keyframes set the real boundaries. */
    c->gop_size = (int)ceil(av_q2d(p->frame_rate) * p->segment_sec) + 1;
    c->keyint_min = c->gop_size;
    c->color_range = AVCOL_RANGE_MPEG;
    c->pix_fmt = p->pix_fmt;
    if (p->fmp4)
        c->flags |= AV_CODEC_FLAG_GLOBAL_HEADER; /* SPS and PPS in the init segment's avcC */
    int r = av_dict_set(opts, "forced-idr", "1", 0);
    if (enc == MEDIA_ENC_NVENC) {
        /* Explicit: h264_nvenc otherwise keeps the preset's B-frames, and FFmpeg 5.1 then
         * stamps a DTS after the PTS with our 1/90000 time base (the muxer's EINVAL). */
        c->max_b_frames = 0;
        if (r >= 0)
            r = av_dict_set(opts, "preset", "p4", 0);
        if (r >= 0)
            r = av_dict_set(opts, "profile", "high", 0);
        if (r >= 0)
            r = av_dict_set(opts, "rc", "vbr", 0);
        if (r >= 0)
            r = av_dict_set(opts, "no-scenecut", "1", 0);
        if (r >= 0)
            r = av_dict_set(opts, "strict_gop", "1", 0);
    } else {
        c->thread_count = p->threads;
        if (r >= 0)
            r = av_dict_set(opts, "preset", p->x264_preset ? p->x264_preset : "veryfast", 0);
        if (r >= 0)
            r = av_dict_set(opts, "x264-params",
                            p->threads > 1 ? "scenecut=0:open-gop=0:sliced-threads=1"
                                           : "scenecut=0:open-gop=0",
                            0);
    }
    return r < 0 ? -ENOMEM : 0;
}

media_encoder vpath_fallback(media_encoder failed, int has_cuda)
{
    (void)failed;
    return has_cuda ? MEDIA_ENC_HYBRID : MEDIA_ENC_X264;
}

int vpath_gpu_status(int r)
{
    if (r >= 0 || r == -ENOMEM || r == AVERROR(ENOMEM) || r == -ECANCELED)
        return r;
    return -EIO;
}
