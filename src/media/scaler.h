/* One rung's picture scaler: the decoded picture to the rung's size, 8-bit 4:2:0 out.
 *
 * zimg does the common case (8-bit planar 4:2:0, even sizes, rows aligned to 32 bytes for its
 * AVX2 code, 64 for its AVX-512 code) at about twice swscale's speed on this machine's CPU,
 * where FFmpeg 5.1 keeps its own AVX2 scaler off (slow gathers). The kernels are swscale's
 * (bicubic B = 0, C = 0.6; lanczos 3 taps) and so is the chroma siting swscale assumes
 * (centred), so the pictures are those swscale made, to rounding. Each new zimg graph first
 * scales a test picture and is kept only if swscale makes the same one: a library's SIMD code
 * that is wrong for one geometry must not go out as pictures (zimg 3.0.4's AVX-512 resizer is,
 * for 1312x738 to 640x360; its AVX2 code then takes over).
 * Anything else (full range YUVJ, 4:2:2, 10-bit, semi-planar, odd sizes, rows zimg cannot
 * take) goes to swscale as before, so every input that scaled before still scales.
 *
 * owns:  the zimg graph and its scratch, or the swscale context, for the last geometry asked;
 *        rebuilt when the input's size or format, the kernel or the output size changes, or
 *        when a graph is given rows less aligned than it was built for.
 * never: is used by two threads at once (one per rung worker), or allocates the output
 *        picture (the caller's, from its pool). Full-range YUVJ420P comes out in limited range,
 *        as swscale always made it; nothing else changes range or colour matrix. */
#ifndef REELD_MEDIA_SCALER_H
#define REELD_MEDIA_SCALER_H

#include <libavutil/frame.h>

typedef enum { SCALER_BICUBIC, SCALER_LANCZOS } scaler_filter;

typedef enum {
    SCALER_AUTO,    /* zimg where it applies, else swscale */
    SCALER_SWSCALE, /* swscale always: the reference the unit tests hold zimg to */
} scaler_impl;

typedef struct scaler {
    scaler_impl impl;
    /* What the graph or context was built for; iw == 0: nothing yet. */
    int iw, ih, ifmt, ow, oh;
    int align; /* with a graph, the rows it was built for: 64 (AVX-512 allowed) or 32 */
    scaler_filter filter;
    struct zimg_filter_graph *graph; /* NULL: swscale does this geometry */
    void *tmp;                       /* zimg's scratch */
    struct SwsContext *sws;
} scaler;

/* Rows as zimg's widest code takes them (a picture's planes and strides). */
#define SCALER_ALIGN 64

/* A YUV420P picture of w x h with rows aligned to SCALER_ALIGN; NULL without memory. */
AVFrame *scaler_frame(int w, int h);

/* Scales `in` into `out`, whose data and linesize the caller has set up for `out->width` x
 * `out->height` YUV420P. Returns 0, or -EINVAL when neither library can. A zimg graph that
 * cannot be built, checked or run (memory included) leaves that geometry to swscale. */
int scaler_run(scaler *s, const AVFrame *in, AVFrame *out, scaler_filter filter);

/* 1 when the last scaler_run went through zimg (tests, logs). */
int scaler_is_zimg(const scaler *s);

void scaler_free(scaler *s);

#endif
