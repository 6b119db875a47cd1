/* The video paths without a GPU: the filter chains NVENC and hybrid build (8-bit NV12 out of
 * scale_cuda, never a passthrough, the turn after the scale), the encoder settings (no B-frames
 * and the High profile on NVENC, the pixel format each path feeds), what an NVENC that cannot
 * open turns into, and the class of a GPU failure mid-job. */
#include "src/media/vpath.h"

#include <errno.h>

#include <libavfilter/avfilter.h>

#include "actors/transcode_worker.h"
#include "tests/unit/test.h"

static const char *opt(AVDictionary *d, const char *key)
{
    AVDictionaryEntry *e = av_dict_get(d, key, NULL, 0);
    return e != NULL ? e->value : "(unset)";
}

TEST(nvenc_chain_scales_to_nv12_on_the_gpu_without_passthrough)
{
    char b[256];
    CHECK(vpath_rung_chain(b, sizeof(b), MEDIA_ENC_NVENC, 0, 1280, 720) > 0);
    CHECK_EQ_STR(b, "scale_cuda=w=1280:h=720:interp_algo=bilinear:format=nv12:passthrough=0");
    CHECK_EQ_INT(vpath_rung_pix_fmt(MEDIA_ENC_NVENC, 0), AV_PIX_FMT_CUDA);
}

TEST(hybrid_chain_downloads_the_small_frame_for_libx264)
{
    char b[256];
    CHECK(vpath_rung_chain(b, sizeof(b), MEDIA_ENC_HYBRID, 0, 854, 480) > 0);
    CHECK_EQ_STR(b, "scale_cuda=w=854:h=480:interp_algo=bilinear:format=nv12:passthrough=0,"
                    "hwdownload,format=nv12");
    CHECK_EQ_INT(vpath_rung_pix_fmt(MEDIA_ENC_HYBRID, 0), AV_PIX_FMT_NV12);
    CHECK_EQ_STR(vpath_codec_name(MEDIA_ENC_HYBRID), "libx264");
    CHECK_EQ_STR(vpath_codec_name(MEDIA_ENC_NVENC), "h264_nvenc");
    CHECK_EQ_STR(vpath_name(MEDIA_ENC_HYBRID), "hybrid");
}

TEST(a_turned_source_is_scaled_first_then_turned_small)
{
    char b[256];
    /* A 720x1280 rung of a phone video shot sideways: scaled to 1280x720, then turned. */
    CHECK(vpath_rung_chain(b, sizeof(b), MEDIA_ENC_NVENC, 90, 720, 1280) > 0);
    CHECK_EQ_STR(b, "scale_cuda=w=1280:h=720:interp_algo=bilinear:format=nv12:passthrough=0,"
                    "hwdownload,format=nv12,"
                    "transpose=clock");
    CHECK_EQ_INT(vpath_rung_pix_fmt(MEDIA_ENC_NVENC, 90), AV_PIX_FMT_NV12);
    CHECK(vpath_rung_chain(b, sizeof(b), MEDIA_ENC_HYBRID, 270, 360, 640) > 0);
    CHECK_EQ_STR(b, "scale_cuda=w=640:h=360:interp_algo=bilinear:format=nv12:passthrough=0,"
                    "hwdownload,format=nv12,"
                    "transpose=cclock");
    CHECK(vpath_rung_chain(b, sizeof(b), MEDIA_ENC_NVENC, 180, 640, 360) > 0);
    CHECK_EQ_STR(b, "scale_cuda=w=640:h=360:interp_algo=bilinear:format=nv12:passthrough=0,"
                    "hwdownload,format=nv12,"
                    "hflip,vflip");
}

TEST(upload_goes_through_8bit_nv12_once)
{
    char b[64];
    CHECK(vpath_upload_chain(b, sizeof(b)) > 0);
    CHECK_EQ_STR(b, "format=nv12,hwupload");
}

TEST(chains_refuse_x264_and_short_buffers)
{
    char b[16];
    CHECK_EQ_INT(vpath_rung_chain(b, sizeof(b), MEDIA_ENC_X264, 0, 640, 360), -EINVAL);
    CHECK_EQ_INT(vpath_rung_chain(b, sizeof(b), MEDIA_ENC_NVENC, 0, 640, 360), -ENOSPC);
    CHECK_EQ_INT(vpath_upload_chain(b, 8), -ENOSPC);
}

/* Every filter and option named in the chains exists in the FFmpeg reeld runs on: a graph
 * with them parses (scale_cuda checks its device only when configured). */
TEST(chains_parse_with_this_ffmpeg)
{
    const media_encoder encs[] = {MEDIA_ENC_NVENC, MEDIA_ENC_HYBRID};
    const int rots[] = {0, 90, 180, 270};
    for (int e = 0; e < 2; e++) {
        for (int k = 0; k < 4; k++) {
            char chain[256], full[320];
            CHECK(vpath_rung_chain(chain, sizeof(chain), encs[e], rots[k], 640, 360) > 0);
            snprintf(full, sizeof(full), "nullsrc=s=1280x720,format=cuda,%s,nullsink", chain);
            AVFilterGraph *g = avfilter_graph_alloc();
            AVFilterInOut *in = NULL, *out = NULL;
            int r = avfilter_graph_parse2(g, full, &in, &out);
            if (r < 0)
                printf("  %s: %s\n", full, av_err2str(r));
            CHECK(r >= 0);
            avfilter_inout_free(&in);
            avfilter_inout_free(&out);
            avfilter_graph_free(&g);
        }
    }
}

static vpath_params params(enum AVPixelFormat fmt)
{
    return (vpath_params){.width = 1280,
                          .height = 720,
                          .video_kbps = 3000,
                          .maxrate_kbps = 4500,
                          .frame_rate = {30, 1},
                          .segment_sec = 4,
                          .threads = 2,
                          .pix_fmt = fmt};
}

TEST(nvenc_encoder_has_no_b_frames_and_the_high_profile)
{
    const AVCodec *nvenc = avcodec_find_encoder_by_name("h264_nvenc");
    if (nvenc == NULL)
        SKIP("this FFmpeg has no h264_nvenc");
    AVCodecContext *c = avcodec_alloc_context3(nvenc); /* no GPU needed until it opens */
    AVDictionary *o = NULL;
    vpath_params p = params(AV_PIX_FMT_CUDA);
    CHECK_EQ_INT(c->max_b_frames, -1); /* h264_nvenc's default: whatever its preset says */
    CHECK_EQ_INT(vpath_encoder_setup(c, &o, MEDIA_ENC_NVENC, &p), 0);
    CHECK_EQ_INT(c->max_b_frames, 0);
    CHECK_EQ_STR(opt(o, "profile"), "high");
    CHECK_EQ_STR(opt(o, "preset"), "p4");
    CHECK_EQ_STR(opt(o, "rc"), "vbr");
    CHECK_EQ_STR(opt(o, "no-scenecut"), "1");
    CHECK_EQ_STR(opt(o, "strict_gop"), "1");
    CHECK_EQ_STR(opt(o, "forced-idr"), "1");
    CHECK_EQ_INT(c->pix_fmt, AV_PIX_FMT_CUDA);
    CHECK_EQ_INT(c->width, 1280);
    CHECK_EQ_INT(c->time_base.den, 90000);
    CHECK_EQ_INT(c->gop_size, 121);
    CHECK_EQ_INT(c->bit_rate, 3000000);
    av_dict_free(&o);
    avcodec_free_context(&c);
}

TEST(libx264_settings_stay_as_they_were)
{
    AVCodecContext *c = avcodec_alloc_context3(NULL);
    AVDictionary *o = NULL;
    vpath_params p = params(AV_PIX_FMT_YUV420P);
    p.fmp4 = 1;
    CHECK_EQ_INT(vpath_encoder_setup(c, &o, MEDIA_ENC_X264, &p), 0);
    CHECK_EQ_INT(c->pix_fmt, AV_PIX_FMT_YUV420P);
    CHECK_EQ_INT(c->thread_count, 2);
    CHECK_EQ_STR(opt(o, "preset"), "veryfast");
    CHECK_EQ_STR(opt(o, "x264-params"), "scenecut=0:open-gop=0:sliced-threads=1");
    CHECK_EQ_STR(opt(o, "profile"), "(unset)");
    CHECK(c->flags & AV_CODEC_FLAG_GLOBAL_HEADER);
    av_dict_free(&o);
    avcodec_free_context(&c);

    /* Hybrid: the same libx264, fed the NV12 frames scale_cuda made. */
    c = avcodec_alloc_context3(NULL);
    p = params(AV_PIX_FMT_NV12);
    p.threads = 1;
    CHECK_EQ_INT(vpath_encoder_setup(c, &o, MEDIA_ENC_HYBRID, &p), 0);
    CHECK_EQ_INT(c->pix_fmt, AV_PIX_FMT_NV12);
    CHECK_EQ_STR(opt(o, "x264-params"), "scenecut=0:open-gop=0");
    av_dict_free(&o);
    avcodec_free_context(&c);
}

TEST(an_nvenc_that_cannot_open_falls_back_and_is_never_the_masters_fault)
{
    CHECK_EQ_INT(vpath_fallback(MEDIA_ENC_NVENC, 1), MEDIA_ENC_HYBRID);
    CHECK_EQ_INT(vpath_fallback(MEDIA_ENC_NVENC, 0), MEDIA_ENC_X264);
    /* FFmpeg 5.1 maps NVENC's session limit to EINVAL, which alone would mean "bad master". */
    CHECK_EQ_INT(transcode_worker_retryable(AVERROR(EINVAL)), 0);
    CHECK_EQ_INT(transcode_worker_retryable(vpath_gpu_status(AVERROR(EINVAL))), 1);
    CHECK_EQ_INT(transcode_worker_retryable(vpath_gpu_status(AVERROR_EXTERNAL)), 1);
    CHECK_EQ_INT(transcode_worker_retryable(vpath_gpu_status(AVERROR(ENOSYS))), 1);
    CHECK_EQ_INT(vpath_gpu_status(AVERROR(ENOMEM)), -ENOMEM);
    CHECK_EQ_INT(vpath_gpu_status(-ECANCELED), -ECANCELED);
    CHECK_EQ_INT(vpath_gpu_status(0), 0);
}

int main(void)
{
    RUN(nvenc_chain_scales_to_nv12_on_the_gpu_without_passthrough);
    RUN(hybrid_chain_downloads_the_small_frame_for_libx264);
    RUN(a_turned_source_is_scaled_first_then_turned_small);
    RUN(upload_goes_through_8bit_nv12_once);
    RUN(chains_refuse_x264_and_short_buffers);
    RUN(chains_parse_with_this_ffmpeg);
    RUN(nvenc_encoder_has_no_b_frames_and_the_high_profile);
    RUN(libx264_settings_stay_as_they_were);
    RUN(an_nvenc_that_cannot_open_falls_back_and_is_never_the_masters_fault);
    return test_summary();
}
