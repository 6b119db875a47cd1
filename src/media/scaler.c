/* One rung's picture scaler: zimg where it applies, swscale otherwise (see scaler.h). */
#include "src/media/scaler.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <libavutil/mem.h>
#include <libavutil/pixdesc.h>
#include <libswscale/swscale.h>
#include <zimg.h>

/* The largest alignment every plane's address and stride has: 64, 32, or 0 (zimg cannot). */
static int align_of(uint8_t *const data[3], const int linesize[3])
{
    uintptr_t bits = 0;
    for (int p = 0; p < 3; p++)
        bits |= (uintptr_t)data[p] | (uintptr_t)(unsigned)linesize[p];
    if (bits % 64 == 0)
        return 64;
    return bits % 32 == 0 ? 32 : 0;
}

static void drop(scaler *s)
{
    zimg_filter_graph_free(s->graph);
    s->graph = NULL;
    av_freep(&s->tmp);
    sws_freeContext(s->sws);
    s->sws = NULL;
    s->iw = 0;
}

/* zimg for YUV420P in limited range to YUV420P at even sizes; NULL where it does not apply or
 * cannot build (swscale then). */
static zimg_filter_graph *build_zimg(const AVFrame *in, int ow, int oh, int align,
                                     scaler_filter filter)
{
    if (in->format != AV_PIX_FMT_YUV420P || align == 0 || (in->width | in->height | ow | oh) & 1)
        return NULL;
    zimg_image_format fi, fo;
    zimg_image_format_default(&fi, ZIMG_API_VERSION);
    fi.width = (unsigned)in->width;
    fi.height = (unsigned)in->height;
    fi.pixel_type = ZIMG_PIXEL_BYTE;
    fi.subsample_w = 1;
    fi.subsample_h = 1;
    fi.color_family = ZIMG_COLOR_YUV;
    fi.pixel_range = ZIMG_RANGE_LIMITED;
    /* swscale scales each 4:2:0 chroma plane as a picture of its own, i.e. centred samples;
     * so does this, so the pictures stay the ones reeld made before (and ffmpeg's scale). */
    fi.chroma_location = ZIMG_CHROMA_CENTER;
    fo = fi;
    fo.width = (unsigned)ow;
    fo.height = (unsigned)oh;
    zimg_graph_builder_params gp;
    zimg_graph_builder_params_default(&gp, ZIMG_API_VERSION);
    if (filter == SCALER_LANCZOS) {
        gp.resample_filter = gp.resample_filter_uv = ZIMG_RESIZE_LANCZOS;
        gp.filter_param_a = gp.filter_param_a_uv = 3; /* swscale's default taps */
    } else {
        gp.resample_filter = gp.resample_filter_uv = ZIMG_RESIZE_BICUBIC;
        gp.filter_param_a = gp.filter_param_a_uv = 0;   /* B, as swscale's SWS_BICUBIC */
        gp.filter_param_b = gp.filter_param_b_uv = 0.6; /* C */
    }
    gp.dither_type = ZIMG_DITHER_NONE;
    gp.cpu_type = align == 64 ? ZIMG_CPU_AUTO_64B : ZIMG_CPU_AUTO;
    return zimg_filter_graph_build(&fi, &fo, &gp);
}

static int rebuild(scaler *s, const AVFrame *in, int ow, int oh, int align, scaler_filter filter)
{
    drop(s);
    if (s->impl == SCALER_AUTO && (s->graph = build_zimg(in, ow, oh, align, filter)) != NULL) {
        size_t n = 0;
        if (zimg_filter_graph_get_tmp_size(s->graph, &n) != ZIMG_ERROR_SUCCESS ||
            (s->tmp = av_malloc(n ? n : 1)) == NULL) { /* av_malloc: 64-byte aligned */
            zimg_filter_graph_free(s->graph);
            s->graph = NULL;
        }
    }
    if (s->graph == NULL) {
        s->sws = sws_getContext(
            in->width, in->height, (enum AVPixelFormat)in->format, ow, oh, AV_PIX_FMT_YUV420P,
            filter == SCALER_LANCZOS ? SWS_LANCZOS : SWS_BICUBIC, NULL, NULL, NULL);
        if (s->sws == NULL)
            return -EINVAL;
    }
    s->iw = in->width;
    s->ih = in->height;
    s->ifmt = in->format;
    s->ow = ow;
    s->oh = oh;
    s->align = align;
    s->filter = filter;
    return 0;
}

int scaler_run(scaler *s, const AVFrame *in, AVFrame *out, scaler_filter filter)
{
    int a_in = align_of((uint8_t *const *)in->data, in->linesize);
    int a_out = align_of(out->data, out->linesize);
    int align = a_in < a_out ? a_in : a_out;
    if (in->format == AV_PIX_FMT_YUVJ420P || in->color_range == AVCOL_RANGE_JPEG)
        align = 0; /* a range conversion too: swscale's */
    if (s->iw != in->width || s->ih != in->height || s->ifmt != in->format || s->ow != out->width ||
        s->oh != out->height || s->filter != filter || s->align != align) {
        int r = rebuild(s, in, out->width, out->height, align, filter);
        if (r < 0)
            return r;
    }
    if (s->graph != NULL) {
        zimg_image_buffer_const src = {.version = ZIMG_API_VERSION};
        zimg_image_buffer dst = {.version = ZIMG_API_VERSION};
        for (int p = 0; p < 3; p++) {
            src.plane[p].data = in->data[p];
            src.plane[p].stride = in->linesize[p];
            src.plane[p].mask = ZIMG_BUFFER_MAX;
            dst.plane[p].data = out->data[p];
            dst.plane[p].stride = out->linesize[p];
            dst.plane[p].mask = ZIMG_BUFFER_MAX;
        }
        if (zimg_filter_graph_process(s->graph, &src, &dst, s->tmp, NULL, NULL, NULL, NULL) ==
            ZIMG_ERROR_SUCCESS)
            return 0;
        /* Not expected with the checks above; swscale from here on for this geometry. */
        drop(s);
        scaler_impl was = s->impl;
        s->impl = SCALER_SWSCALE;
        int r = rebuild(s, in, out->width, out->height, align, filter);
        s->impl = was;
        if (r < 0)
            return r;
    }
    int h = sws_scale(s->sws, (const uint8_t *const *)in->data, in->linesize, 0, in->height,
                      out->data, out->linesize);
    return h > 0 ? 0 : -EINVAL;
}

int scaler_is_zimg(const scaler *s)
{
    return s->graph != NULL;
}

void scaler_free(scaler *s)
{
    drop(s);
}
