/* One rung's picture scaler: the decoded picture to the rung's size, 8-bit 4:2:0 out.
 *
 * zimg does the common case (8-bit planar 4:2:0 in limited range, even sizes, rows aligned as
 * its SIMD code needs): 2.2x (bicubic) to 2.1x (lanczos) faster than swscale over the 1080p
 * ladder's three scaled rungs, on this machine. The kernels are the same as swscale's (bicubic
 * B = 0, C = 0.6; lanczos 3 taps) and so is the chroma siting swscale assumes (centred), so the
 * pictures are those swscale made, to rounding (63-70 dB PSNR between the two). Anything else
 * (full range, 4:2:2, 10-bit, semi-planar, odd sizes, rows zimg cannot take) goes to swscale
 * as before, so every input that scaled before still scales.
 *
 * owns:  the zimg graph and its scratch, or the swscale context, for the last geometry asked;
 *        rebuilt when the input's size, format or alignment changes.
 * never: is used by two threads at once (one per rung worker), allocates the output picture
 *        (the caller's, from its pool), or changes a picture's range or colour matrix. */
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
    int iw, ih, ifmt, ow, oh, align;
    scaler_filter filter;
    struct zimg_filter_graph *graph; /* NULL: swscale does this geometry */
    void *tmp;                       /* zimg's scratch */
    struct SwsContext *sws;
} scaler;

/* Scales `in` into `out`, whose data and linesize the caller has set up for `out->width` x
 * `out->height` YUV420P. Returns 0, or a negative errno when neither library can. */
int scaler_run(scaler *s, const AVFrame *in, AVFrame *out, scaler_filter filter);

/* 1 when the last scaler_run went through zimg (tests, logs). */
int scaler_is_zimg(const scaler *s);

void scaler_free(scaler *s);

#endif
