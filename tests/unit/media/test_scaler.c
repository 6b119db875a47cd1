/* The rung scaler: zimg where it applies makes swscale's pictures (to rounding), and every
 * input zimg cannot take still scales through swscale. */
#include "src/media/scaler.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

#include <libavutil/frame.h>
#include <libavutil/log.h>
#include <libavutil/pixdesc.h>

#include "tests/unit/test.h"

/* A picture with edges, gradients and fine detail in every plane: a zone plate (every
 * frequency up to the picture's limit, where a filter's kernel shows) over a ramp, and
 * chroma that moves against luma (where a chroma-siting mistake shows). */
static AVFrame *picture(int w, int h, enum AVPixelFormat fmt, int align)
{
    AVFrame *f = av_frame_alloc();
    if (f == NULL)
        return NULL;
    f->width = w;
    f->height = h;
    f->format = fmt;
    if (av_frame_get_buffer(f, align) < 0) {
        av_frame_free(&f);
        return NULL;
    }
    const AVPixFmtDescriptor *d = av_pix_fmt_desc_get(fmt);
    int wide = d->comp[0].depth > 8;
    for (int p = 0; p < 3; p++) {
        int pw = p ? AV_CEIL_RSHIFT(w, d->log2_chroma_w) : w;
        int ph = p ? AV_CEIL_RSHIFT(h, d->log2_chroma_h) : h;
        for (int y = 0; y < ph; y++)
            for (int x = 0; x < pw; x++) {
                double dx = x - pw / 2.0, dy = y - ph / 2.0;
                double v = 128 + 60 * sin((dx * dx + dy * dy) * (p ? 0.004 : 0.0015) + p) +
                           50.0 * (x + 2 * y) / (pw + 2 * ph) - 25;
                if (((x / 37) + (y / 23) + p) % 5 == 0)
                    v = p == 1 ? 40 : 220; /* hard edges */
                int q = (int)lrint(v < 16 ? 16 : v > 235 ? 235 : v);
                if (wide)
                    ((uint16_t *)(f->data[p] + (ptrdiff_t)y * f->linesize[p]))[x] =
                        (uint16_t)(q << 2);
                else
                    f->data[p][(ptrdiff_t)y * f->linesize[p] + x] = (uint8_t)q;
            }
    }
    return f;
}

static AVFrame *out_frame(int w, int h, int align)
{
    return picture(w, h, AV_PIX_FMT_YUV420P, align);
}

/* The lowest PSNR (dB) of the three planes of two 4:2:0 pictures of one size; INFINITY when
 * they are the same. Written here again, not scaler.c's check: the tests judge the scaler's
 * pictures, its check included, by a measure it does not share (with the scaler's own, one
 * that always said "equal" passed every test). */
static double psnr_min(const AVFrame *a, const AVFrame *b)
{
    double worst = INFINITY;
    for (int p = 0; p < 3; p++) {
        int pw = p ? (a->width + 1) / 2 : a->width, ph = p ? (a->height + 1) / 2 : a->height;
        double se = 0;
        for (int y = 0; y < ph; y++)
            for (int x = 0; x < pw; x++) {
                int d = a->data[p][(ptrdiff_t)y * a->linesize[p] + x] -
                        b->data[p][(ptrdiff_t)y * b->linesize[p] + x];
                se += d * d;
            }
        if (se > 0) {
            double db = 10 * log10(255.0 * 255.0 * pw * ph / se);
            if (db < worst)
                worst = db;
        }
    }
    return worst;
}

/* Scales `in` to w x h both ways; returns the PSNR between them, and through *zimg whether the
 * automatic one went through zimg. */
static double both_ways(const AVFrame *in, int w, int h, int out_align, scaler_filter filter,
                        int *zimg)
{
    scaler fast = {.impl = SCALER_AUTO}, ref = {.impl = SCALER_SWSCALE};
    AVFrame *a = out_frame(w, h, out_align), *b = out_frame(w, h, out_align);
    double db = -1;
    if (a != NULL && b != NULL && scaler_run(&fast, in, a, filter) == 0 &&
        scaler_run(&ref, in, b, filter) == 0) {
        db = psnr_min(a, b);
        *zimg = scaler_is_zimg(&fast);
    }
    CHECK(!scaler_is_zimg(&ref));
    scaler_free(&fast);
    scaler_free(&ref);
    av_frame_free(&a);
    av_frame_free(&b);
    return db;
}

/* How close zimg's pictures must be to swscale's, in dB per plane. On these pictures the
 * right kernels give 54-57 dB (bicubic) and 52-56 (lanczos) here: samples equal or one off, a
 * few more where swscale's 15-bit intermediates clip at the hard edges (swscale's own code
 * differs by CPU, hence the margin). Wrong ones land under: a wrong chroma siting 36-37 dB,
 * bicubic with C = 0.5 49 dB, lanczos with 4 taps 42-48 dB. */
#define MATCH_DB(filter) ((filter) == SCALER_LANCZOS ? 50.0 : 52.0)

/* The 1080p ladder's rungs, bicubic (the first scaling) and lanczos (the cascade's second):
 * zimg does them, and its pictures are swscale's to rounding. */
TEST(ladder_rungs_through_zimg_match_swscale)
{
    AVFrame *in = picture(1920, 1080, AV_PIX_FMT_YUV420P, 64);
    NEED(in != NULL);
    static const int sizes[][2] = {{1280, 720}, {854, 480}, {640, 360}, {426, 240}};
    for (int f = 0; f < 2; f++)
        for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
            int zimg = 0;
            double db = both_ways(in, sizes[i][0], sizes[i][1], 64,
                                  f ? SCALER_LANCZOS : SCALER_BICUBIC, &zimg);
            if (!(db >= MATCH_DB(f ? SCALER_LANCZOS : SCALER_BICUBIC)) || !zimg)
                printf("  %s %dx%d: %.2f dB, zimg %d\n", f ? "lanczos" : "bicubic", sizes[i][0],
                       sizes[i][1], db, zimg);
            CHECK(zimg);
            CHECK(db >= MATCH_DB(f ? SCALER_LANCZOS : SCALER_BICUBIC));
        }
    av_frame_free(&in);
}

/* Up as well as down (a small source on a larger ladder), and from rows aligned to 32 rather
 * than 64 (all zimg's AVX2 code needs). */
TEST(upscale_and_32_byte_rows_through_zimg)
{
    AVFrame *in = picture(640, 360, AV_PIX_FMT_YUV420P, 64);
    NEED(in != NULL);
    int zimg = 0;
    double db = both_ways(in, 1280, 720, 64, SCALER_BICUBIC, &zimg);
    CHECK(zimg);
    CHECK(db >= MATCH_DB(SCALER_BICUBIC));
    av_frame_free(&in);

    in = picture(1312, 738, AV_PIX_FMT_YUV420P, 32); /* luma rows of 1312: 32-byte aligned */
    NEED(in != NULL);
    CHECK(in->linesize[0] % 64 != 0 && in->linesize[0] % 32 == 0);
    zimg = 0;
    db = both_ways(in, 854, 480, 64, SCALER_BICUBIC, &zimg);
    CHECK(zimg);
    CHECK(db >= MATCH_DB(SCALER_BICUBIC));
    av_frame_free(&in);
}

/* What zimg is not given goes to swscale, and comes out exactly as swscale makes it: full range
 * (a range conversion), 10-bit, 4:2:2, odd sizes, rows with no alignment. */
TEST(other_inputs_through_swscale_unchanged)
{
    struct {
        int w, h, align;
        enum AVPixelFormat fmt;
        int ow, oh;
    } cases[] = {
        {1920, 1080, 64, AV_PIX_FMT_YUVJ420P, 1280, 720},
        {1920, 1080, 64, AV_PIX_FMT_YUV420P10LE, 854, 480},
        {1280, 720, 64, AV_PIX_FMT_YUV422P, 640, 360},
        {1279, 719, 64, AV_PIX_FMT_YUV420P, 640, 360}, /* odd source */
        {1280, 720, 64, AV_PIX_FMT_YUV420P, 853, 479}, /* odd rung */
        {1918, 1080, 1, AV_PIX_FMT_YUV420P, 854, 480}, /* rows of 1918 bytes */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        AVFrame *in = picture(cases[i].w, cases[i].h, cases[i].fmt, cases[i].align);
        NEED(in != NULL);
        int zimg = 1;
        double db = both_ways(in, cases[i].ow, cases[i].oh, 64, SCALER_BICUBIC, &zimg);
        if (zimg || db != INFINITY)
            printf("  case %zu: zimg %d, %.2f dB\n", i, zimg, db);
        CHECK(!zimg);
        CHECK(db == INFINITY);
        av_frame_free(&in);
    }
    /* Planes that start 16 bytes into 64-byte rows: aligned to 16 only, less than zimg's SIMD
     * loads take. */
    AVFrame *in = picture(1280, 720, AV_PIX_FMT_YUV420P, 64);
    NEED(in != NULL);
    in->width -= 32; /* the chroma rows' 16 bytes less too: reads stay inside each row */
    for (int p = 0; p < 3; p++)
        in->data[p] += 16;
    int zimg = 1;
    double db = both_ways(in, 640, 360, 64, SCALER_BICUBIC, &zimg);
    CHECK(!zimg);
    CHECK(db == INFINITY);
    for (int p = 0; p < 3; p++)
        in->data[p] -= 16;
    av_frame_free(&in);
}

/* One scaler across a change of input (a stream whose size changes mid-file) rebuilds, and
 * keeps matching swscale on both sides of the change. */
TEST(rebuilds_when_the_input_changes)
{
    AVFrame *big = picture(1920, 1080, AV_PIX_FMT_YUV420P, 64);
    AVFrame *small = picture(1280, 720, AV_PIX_FMT_YUV420P, 64);
    AVFrame *full = picture(1280, 720, AV_PIX_FMT_YUVJ420P, 64);
    AVFrame *a = out_frame(640, 360, 64), *b = out_frame(640, 360, 64);
    NEED(big != NULL && small != NULL && full != NULL && a != NULL && b != NULL);
    scaler s = {.impl = SCALER_AUTO};
    const AVFrame *seq[] = {big, small, full, big};
    for (int i = 0; i < 4; i++) {
        scaler ref = {.impl = SCALER_SWSCALE};
        CHECK_EQ_INT(scaler_run(&s, seq[i], a, SCALER_BICUBIC), 0);
        CHECK_EQ_INT(scaler_is_zimg(&s), seq[i] != full);
        CHECK_EQ_INT(scaler_run(&ref, seq[i], b, SCALER_BICUBIC), 0);
        CHECK(psnr_min(a, b) >= MATCH_DB(SCALER_BICUBIC));
        scaler_free(&ref);
    }
    scaler_free(&s);
    scaler_free(&s); /* twice: a freed scaler is an empty one */
    av_frame_free(&big);
    av_frame_free(&small);
    av_frame_free(&full);
    av_frame_free(&a);
    av_frame_free(&b);
}

/* One scaler kept across what its cache is keyed by: the kernel, the output size, and rows
 * less aligned than its graph was built for (a graph allowed AVX-512 code, given 32-byte rows,
 * rebuilt for AVX2; given 64-byte rows again, kept). Each picture held to swscale's. */
TEST(one_scaler_across_alignment_kernel_and_size)
{
    AVFrame *wide = picture(1312, 738, AV_PIX_FMT_YUV420P, 64);   /* rows of 1344 */
    AVFrame *narrow = picture(1312, 738, AV_PIX_FMT_YUV420P, 32); /* rows of 1312 */
    NEED(wide != NULL && narrow != NULL);
    CHECK(wide->linesize[0] % 64 == 0 && narrow->linesize[0] % 64 != 0);
    struct {
        const AVFrame *in;
        scaler_filter filter;
        int w, h;
    } seq[] = {
        {wide, SCALER_BICUBIC, 640, 360},   {narrow, SCALER_BICUBIC, 640, 360},
        {wide, SCALER_BICUBIC, 640, 360},   {narrow, SCALER_LANCZOS, 640, 360},
        {narrow, SCALER_LANCZOS, 854, 480}, {wide, SCALER_BICUBIC, 854, 480},
        {narrow, SCALER_BICUBIC, 854, 480}, {wide, SCALER_BICUBIC, 854, 480},
    };
    /* The rows each step's graph is for: 64 from 64-byte rows (but 1312x738 to 640x360, which
     * zimg's AVX-512 code gets wrong: 32), 32 after 32-byte rows, and kept at 32 after. */
    static const int rows[] = {32, 32, 32, 32, 32, 64, 32, 32};
    _Static_assert(sizeof rows / sizeof rows[0] == 8, "a row count a step");
    scaler s = {.impl = SCALER_AUTO};
    for (size_t i = 0; i < sizeof seq / sizeof seq[0]; i++) {
        scaler ref = {.impl = SCALER_SWSCALE};
        AVFrame *a = out_frame(seq[i].w, seq[i].h, 64), *b = out_frame(seq[i].w, seq[i].h, 64);
        NEED(a != NULL && b != NULL);
        CHECK_EQ_INT(scaler_run(&s, seq[i].in, a, seq[i].filter), 0);
        CHECK(scaler_is_zimg(&s));
        if (s.align != rows[i] && !(i == 0 && s.align == 64)) /* step 0: 64 where not faulty */
            printf("  step %zu: a graph for %d-byte rows\n", i, s.align);
        CHECK(s.align == rows[i] || (i == 0 && s.align == 64));
        CHECK_EQ_INT(scaler_run(&ref, seq[i].in, b, seq[i].filter), 0);
        double db = psnr_min(a, b);
        if (!(db >= MATCH_DB(seq[i].filter)))
            printf("  step %zu: %.2f dB\n", i, db);
        CHECK(db >= MATCH_DB(seq[i].filter));
        scaler_free(&ref);
        av_frame_free(&a);
        av_frame_free(&b);
    }
    scaler_free(&s);
    av_frame_free(&wide);
    av_frame_free(&narrow);
}

/* A zimg graph that makes a wrong picture is not used. zimg 3.0.4's AVX-512 resizer makes one
 * for 1312x738 to 640x360 from 64-byte rows (30 dB from swscale's, every plane; its AVX2 code
 * is right): the scaler's check on a test picture must turn to the AVX2 code, whose picture
 * then matches. On a CPU without AVX-512, or a zimg without the fault, the picture must match
 * all the same; without the check it does not on this machine. */
TEST(a_graph_that_disagrees_with_swscale_is_not_used)
{
    AVFrame *in = picture(1312, 738, AV_PIX_FMT_YUV420P, 64);
    AVFrame *a = out_frame(640, 360, 64), *b = out_frame(640, 360, 64);
    NEED(in != NULL && a != NULL && b != NULL);
    CHECK(in->linesize[0] % 64 == 0 && a->linesize[1] % 64 == 0);
    scaler s = {.impl = SCALER_AUTO}, ref = {.impl = SCALER_SWSCALE};
    CHECK_EQ_INT(scaler_run(&s, in, a, SCALER_BICUBIC), 0);
    CHECK_EQ_INT(scaler_run(&ref, in, b, SCALER_BICUBIC), 0);
    double db = psnr_min(a, b);
    if (!(db >= MATCH_DB(SCALER_BICUBIC)))
        printf("  %.2f dB from swscale's\n", db);
    CHECK(scaler_is_zimg(&s));
    CHECK(db >= MATCH_DB(SCALER_BICUBIC));
    scaler_free(&s);
    scaler_free(&ref);
    av_frame_free(&in);
    av_frame_free(&a);
    av_frame_free(&b);
}

/* A picture neither library can scale (no such format for swscale's input) is an error, not a
 * crash or a blank picture passed on. */
TEST(unscalable_input_is_an_error)
{
    AVFrame *in = picture(64, 64, AV_PIX_FMT_YUV420P, 64);
    AVFrame *o = out_frame(32, 32, 64);
    NEED(in != NULL && o != NULL);
    in->format = AV_PIX_FMT_CUDA; /* a hardware picture reaching the software scaler */
    scaler s = {.impl = SCALER_AUTO};
    CHECK(scaler_run(&s, in, o, SCALER_BICUBIC) < 0);
    scaler_free(&s);
    in->format = AV_PIX_FMT_YUV420P;
    av_frame_free(&in);
    av_frame_free(&o);
}

int main(void)
{
    av_log_set_level(
        AV_LOG_FATAL); /* swscale's notes on the inputs these tests give it on purpose */
    RUN(ladder_rungs_through_zimg_match_swscale);
    RUN(upscale_and_32_byte_rows_through_zimg);
    RUN(other_inputs_through_swscale_unchanged);
    RUN(rebuilds_when_the_input_changes);
    RUN(one_scaler_across_alignment_kernel_and_size);
    RUN(a_graph_that_disagrees_with_swscale_is_not_used);
    RUN(unscalable_input_is_an_error);
    return test_summary();
}
