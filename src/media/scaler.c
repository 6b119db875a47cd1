/* One rung's picture scaler: zimg where it applies, swscale otherwise (see scaler.h). */
#include "src/media/scaler.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <libavutil/pixdesc.h>
#include <libswscale/swscale.h>
#include <zimg.h>

#include "src/rt/log.h"

/* How far a new graph's test picture may be from swscale's, in dB per plane: the right
 * kernels give 52-57 dB on it (rounding, and swscale's clipped 15-bit intermediates at hard
 * edges); zimg 3.0.4's AVX-512 resizer gave 30 dB for 1312x738 to 640x360. */
#define AGREE_DB 45.0

/* The alignment every plane's address and stride has, as zimg's code needs it: 64 (its
 * AVX-512 code), 32 (AVX2), or 0 (neither). */
static int align_of(uint8_t *const data[3], const int linesize[3])
{
    uintptr_t bits = 0;
    for (int p = 0; p < 3; p++)
        bits |= (uintptr_t)data[p] | (uintptr_t)(unsigned)linesize[p];
    return bits % 64 == 0 ? 64 : bits % 32 == 0 ? 32 : 0;
}

static void drop(scaler *s)
{
    zimg_filter_graph_free(s->graph);
    s->graph = NULL;
    free(s->tmp);
    s->tmp = NULL;
    sws_freeContext(s->sws);
    s->sws = NULL;
    s->iw = 0;
}

static struct SwsContext *sws_for(int iw, int ih, int ifmt, int ow, int oh, scaler_filter filter)
{
    return sws_getContext(iw, ih, (enum AVPixelFormat)ifmt, ow, oh, AV_PIX_FMT_YUV420P,
                          filter == SCALER_LANCZOS ? SWS_LANCZOS : SWS_BICUBIC, NULL, NULL, NULL);
}

/* zimg for YUV420P to YUV420P at even sizes; NULL where it does not apply or cannot build. */
static zimg_filter_graph *build_zimg(const AVFrame *in, int ow, int oh, scaler_filter filter,
                                     int avx512)
{
    if (in->format != AV_PIX_FMT_YUV420P || (in->width | in->height | ow | oh) & 1)
        return NULL;
    zimg_image_format fi, fo;
    zimg_image_format_default(&fi, ZIMG_API_VERSION);
    fi.width = (unsigned)in->width;
    fi.height = (unsigned)in->height;
    fi.pixel_type = ZIMG_PIXEL_BYTE;
    fi.subsample_w = 1;
    fi.subsample_h = 1;
    fi.color_family = ZIMG_COLOR_YUV;
    /* Limited range in and out: no range conversion, as swscale does for YUV420P whatever the
     * picture's color_range says. */
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
    /* zimg 3.0.4's AVX-512 resizer made a wrong picture for one geometry of 84 tried (1312x738
     * to 640x360, 30 dB from swscale's; its AVX2 code right on all): the check catches it and
     * the AVX2 code takes over. Where it is right it saves 2.5 % of a 1080p ladder's CPU. */
    gp.cpu_type = avx512 ? ZIMG_CPU_AUTO_64B : ZIMG_CPU_AUTO;
    return zimg_filter_graph_build(&fi, &fo, &gp);
}

static int process(zimg_filter_graph *g, void *tmp, const AVFrame *in, AVFrame *out)
{
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
    return zimg_filter_graph_process(g, &src, &dst, tmp, NULL, NULL, NULL, NULL) ==
                   ZIMG_ERROR_SUCCESS
               ? 0
               : -EIO;
}

AVFrame *scaler_frame(int w, int h)
{
    AVFrame *f = av_frame_alloc();
    if (f == NULL)
        return NULL;
    f->width = w;
    f->height = h;
    f->format = AV_PIX_FMT_YUV420P;
    if (av_frame_get_buffer(f, SCALER_ALIGN) < 0)
        av_frame_free(&f);
    return f;
}

/* The lowest PSNR of the planes of two YUV420P pictures of one size (dB; 99 when equal). */
static double agreement(const AVFrame *a, const AVFrame *b)
{
    double worst = 99;
    for (int p = 0; p < 3; p++) {
        int pw = p ? (a->width + 1) / 2 : a->width, ph = p ? (a->height + 1) / 2 : a->height;
        uint64_t se = 0;
        for (int y = 0; y < ph; y++) {
            const uint8_t *ra = a->data[p] + (ptrdiff_t)y * a->linesize[p];
            const uint8_t *rb = b->data[p] + (ptrdiff_t)y * b->linesize[p];
            for (int x = 0; x < pw; x++)
                se += (uint64_t)((ra[x] - rb[x]) * (ra[x] - rb[x]));
        }
        if (se > 0) {
            double db = 10 * log10(255.0 * 255.0 * pw * ph / (double)se);
            worst = db < worst ? db : worst;
        }
    }
    return worst;
}

/* zimg picks its SIMD code by geometry, and a wrong picture would go out silently; so a new
 * graph first scales a test picture of the input's size (triangle waves of different periods
 * in each plane, with hard-edged blocks) and is kept only if swscale makes the same one: with
 * the graph's own building 12-18 ms a rung of a 1080p source, once a job. Returns 1 when it
 * agrees, 0 when not, -ENOMEM or -EIO (a run failed). */
static int graph_agrees(zimg_filter_graph *g, void *tmp, const AVFrame *in, int ow, int oh,
                        scaler_filter filter, double *db)
{
    AVFrame *t = scaler_frame(in->width, in->height), *a = scaler_frame(ow, oh),
            *b = scaler_frame(ow, oh);
    struct SwsContext *sws = sws_for(in->width, in->height, AV_PIX_FMT_YUV420P, ow, oh, filter);
    int r = -ENOMEM;
    if (t != NULL && a != NULL && b != NULL && sws != NULL) {
        for (int p = 0; p < 3; p++) {
            int pw = p ? t->width / 2 : t->width, ph = p ? t->height / 2 : t->height;
            int period = 2 * (37 + 29 * p);
            for (int y = 0; y < ph; y++) {
                uint8_t *row = t->data[p] + (ptrdiff_t)y * t->linesize[p];
                int k = (y * 3 + p * 11) % period, cx = 0, bx = (y / 31 + p) % 7;
                for (int x = 0; x < pw; x++) {
                    int v = 24 + (k < period / 2 ? k : period - k) * 200 / (period / 2);
                    row[x] = (uint8_t)(bx == 0 ? 230 - v / 4 : v); /* hard-edged blocks */
                    if ((k += 5) >= period)
                        k -= period;
                    if (++cx == 41) {
                        cx = 0;
                        bx = bx == 6 ? 0 : bx + 1;
                    }
                }
            }
        }
        r = -EIO;
        if (process(g, tmp, t, a) == 0 &&
            sws_scale(sws, (const uint8_t *const *)t->data, t->linesize, 0, t->height, b->data,
                      b->linesize) > 0) {
            *db = agreement(a, b);
            r = *db >= AGREE_DB;
        }
    }
    sws_freeContext(sws);
    av_frame_free(&t);
    av_frame_free(&a);
    av_frame_free(&b);
    return r;
}

/* A zimg graph for `align`-byte rows (64: AVX-512 allowed; 32: AVX2 at most) that passed the
 * check, with its scratch in s->tmp; NULL where it cannot build or disagrees. */
static zimg_filter_graph *checked_graph(scaler *s, const AVFrame *in, int ow, int oh,
                                        scaler_filter filter, int align)
{
    zimg_filter_graph *g = build_zimg(in, ow, oh, filter, align == 64);
    size_t n = 0;
    double db = 0;
    if (g == NULL || zimg_filter_graph_get_tmp_size(g, &n) != ZIMG_ERROR_SUCCESS ||
        posix_memalign(&s->tmp, 64, n ? n : 64) != 0) {
        s->tmp = NULL;
        zimg_filter_graph_free(g);
        return NULL;
    }
    int agrees = graph_agrees(g, s->tmp, in, ow, oh, filter, &db);
    if (agrees > 0)
        return g;
    if (agrees == 0) /* a library fault: once a rung a job, where it shows */
        log_warn("scaler_disagrees", KV_STR("zimg", align == 64 ? "avx512 allowed" : "avx2"),
                 KV_INT("from_w", in->width), KV_INT("from_h", in->height), KV_INT("to_w", ow),
                 KV_INT("to_h", oh), KV_DBL("db", db),
                 KV_STR("using", align == 64 ? "zimg avx2" : "swscale"));
    zimg_filter_graph_free(g);
    free(s->tmp);
    s->tmp = NULL;
    return NULL;
}

/* zimg's widest code the rows allow, then AVX2, then swscale: the first that makes swscale's
 * picture. `align`: what the rows allow zimg (64, 32; 0: zimg does not apply). */
static int rebuild(scaler *s, const AVFrame *in, int ow, int oh, int align, scaler_filter filter)
{
    drop(s);
    for (s->align = align; s->align >= 32; s->align /= 2)
        if ((s->graph = checked_graph(s, in, ow, oh, filter, s->align)) != NULL)
            break;
    if (s->graph == NULL &&
        (s->sws = sws_for(in->width, in->height, in->format, ow, oh, filter)) == NULL)
        return -EINVAL;
    s->iw = in->width;
    s->ih = in->height;
    s->ifmt = in->format;
    s->ow = ow;
    s->oh = oh;
    s->filter = filter;
    return 0;
}

int scaler_run(scaler *s, const AVFrame *in, AVFrame *out, scaler_filter filter)
{
    int align = 0;
    if (s->impl == SCALER_AUTO && in->format == AV_PIX_FMT_YUV420P) {
        int a_in = align_of((uint8_t *const *)in->data, in->linesize);
        int a_out = align_of(out->data, out->linesize);
        align = a_in < a_out ? a_in : a_out;
    }
    /* Rebuilt for another geometry or kernel, or when a graph is given rows less aligned than
     * it was built for. A stream's pictures keep one layout, so what the first picture chose
     * (swscale included) stays for the rest. */
    if (s->iw != in->width || s->ih != in->height || s->ifmt != in->format || s->ow != out->width ||
        s->oh != out->height || s->filter != filter || (s->graph != NULL && align < s->align)) {
        int r = rebuild(s, in, out->width, out->height, align, filter);
        if (r < 0)
            return r;
    }
    if (s->graph != NULL) {
        if (process(s->graph, s->tmp, in, out) == 0)
            return 0;
        /* Not expected with the checks above; swscale from here on for this geometry. */
        int r = rebuild(s, in, out->width, out->height, 0, filter);
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
