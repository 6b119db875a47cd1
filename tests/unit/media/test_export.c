/* Exports: a range of a 12 s 640x360 25 fps master (2 s GOP) becomes an MP4 whose first picture
 * is the master's picture shown at the start, as long as the range, with the moov first;
 * captions are timed on the master's timeline; a range past the end, a cancel and a caption
 * file that is not WebVTT fail and leave no file. Inputs are made with the ffmpeg CLI; the test
 * skips when it is missing. Pictures are compared by the PSNR of their luma. */
#include "src/media/export.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>

#include "tests/unit/media/fixture.h"
#include "tests/unit/test.h"

static char dir[64], master[96], master_ts[96], vtt[96], notvtt[96], out[96], out2[96];

static int cancel_now(void *ctx)
{
    (void)ctx;
    return 1;
}

static int progress_calls;

static void count_progress(void *ctx, const transcode_progress *p)
{
    (void)ctx;
    (void)p;
    progress_calls++;
}

static int run_export(const char *in, int64_t start_ms, int64_t end_ms, int height,
                      const char *captions, const char *to, const export_sink *sink,
                      export_result *res, char *err, size_t errlen)
{
    media_source *src = NULL;
    int r = source_open_file(in, &src);
    if (r < 0)
        return r;
    export_opts o = {.start_ms = start_ms,
                     .end_ms = end_ms,
                     .height = height,
                     .captions_vtt = captions,
                     .encoder = MEDIA_ENC_X264,
                     .x264_preset = "ultrafast",
                     .x264_threads = 2};
    r = export_run(src, &o, to, sink, res, err, errlen);
    source_close(src);
    if (r < 0)
        printf("  export: %s\n", err);
    return r;
}

/* The video picture shown at `t` seconds after the file's first (the last one at or before
 * it), in yuv420p; NULL when none. */
static AVFrame *picture_at(const char *path, double t)
{
    AVFormatContext *in = NULL;
    AVCodecContext *dec = NULL;
    AVFrame *f = av_frame_alloc(), *keep = NULL;
    AVPacket *pkt = av_packet_alloc();
    if (avformat_open_input(&in, path, NULL, NULL) < 0 || avformat_find_stream_info(in, NULL) < 0)
        goto out;
    int vi = av_find_best_stream(in, AVMEDIA_TYPE_VIDEO, -1, -1, NULL, 0);
    if (vi < 0)
        goto out;
    AVStream *st = in->streams[vi];
    const AVCodec *codec = avcodec_find_decoder(st->codecpar->codec_id);
    dec = avcodec_alloc_context3(codec);
    avcodec_parameters_to_context(dec, st->codecpar);
    dec->pkt_timebase = st->time_base;
    if (avcodec_open2(dec, codec, NULL) < 0)
        goto out;
    int64_t t0 = st->start_time != AV_NOPTS_VALUE ? st->start_time : 0;
    int done = 0, eof = 0;
    while (!done) {
        if (!eof) {
            int r = av_read_frame(in, pkt);
            if (r < 0) {
                eof = 1;
                avcodec_send_packet(dec, NULL);
            } else {
                if (pkt->stream_index == vi)
                    avcodec_send_packet(dec, pkt);
                av_packet_unref(pkt);
            }
        }
        int r;
        while ((r = avcodec_receive_frame(dec, f)) == 0) {
            double at = (double)(f->best_effort_timestamp - t0) * av_q2d(st->time_base);
            if (at > t + 1e-4) {
                done = 1;
                av_frame_unref(f);
                break;
            }
            av_frame_free(&keep);
            keep = av_frame_clone(f);
            av_frame_unref(f);
        }
        if (r == AVERROR_EOF)
            done = 1;
    }
out:
    av_frame_free(&f);
    av_packet_free(&pkt);
    avcodec_free_context(&dec);
    avformat_close_input(&in);
    return keep;
}

/* PSNR of the luma rows [y0, y1) of two pictures of one size; 99 when identical. */
static double psnr_rows(const AVFrame *a, const AVFrame *b, int y0, int y1)
{
    if (a == NULL || b == NULL || a->width != b->width || a->height != b->height)
        return -1;
    double se = 0;
    long n = 0;
    for (int y = y0; y < y1; y++)
        for (int x = 0; x < a->width; x++) {
            int d = a->data[0][(ptrdiff_t)y * a->linesize[0] + x] -
                    b->data[0][(ptrdiff_t)y * b->linesize[0] + x];
            se += d * d;
            n++;
        }
    if (se == 0)
        return 99;
    return 10 * log10(255.0 * 255.0 / (se / (double)n));
}

static double duration_of(const char *path, int *w, int *h, int *nstreams)
{
    AVFormatContext *in = NULL;
    double d = -1;
    if (avformat_open_input(&in, path, NULL, NULL) < 0)
        return -1;
    if (avformat_find_stream_info(in, NULL) >= 0) {
        d = in->duration > 0 ? (double)in->duration / AV_TIME_BASE : -1;
        *nstreams = (int)in->nb_streams;
        int vi = av_find_best_stream(in, AVMEDIA_TYPE_VIDEO, -1, -1, NULL, 0);
        *w = vi >= 0 ? in->streams[vi]->codecpar->width : 0;
        *h = vi >= 0 ? in->streams[vi]->codecpar->height : 0;
    }
    avformat_close_input(&in);
    return d;
}

/* 1 when the file's top-level boxes have the moov before the mdat (faststart). */
static int moov_first(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return 0;
    uint8_t hd[8];
    long at = 0;
    int found = 0;
    while (fseek(f, at, SEEK_SET) == 0 && fread(hd, 1, 8, f) == 8) {
        uint32_t size =
            (uint32_t)hd[0] << 24 | (uint32_t)hd[1] << 16 | (uint32_t)hd[2] << 8 | hd[3];
        if (!memcmp(hd + 4, "moov", 4)) {
            found = 1;
            break;
        }
        if (!memcmp(hd + 4, "mdat", 4) || size < 8)
            break;
        at += size;
    }
    fclose(f);
    return found;
}

TEST(a_range_starts_at_the_picture_shown_at_its_start)
{
    export_result res;
    char err[256];
    progress_calls = 0;
    export_sink sink = {count_progress, NULL, NULL};
    int r = run_export(master, 3000, 7000, 0, NULL, out, &sink, &res, err, sizeof(err));
    CHECK_EQ_INT(r, 0);
    CHECK_EQ_INT(res.width, 640);
    CHECK_EQ_INT(res.height, 360);
    CHECK_EQ_INT(res.frames, 100);
    CHECK(fabs(res.media_sec - 4.0) < 0.041);
    CHECK(res.bytes > 0);
    CHECK(res.peak_rss_kb > 0);
    CHECK_EQ_STR(res.encoder, "x264");
    CHECK(progress_calls >= 1);
    int w = 0, h = 0, n = 0;
    double d = duration_of(out, &w, &h, &n);
    printf("  duration %.3f s, %dx%d, %d streams\n", d, w, h, n);
    CHECK(fabs(d - 4.0) <= 0.041);
    CHECK_EQ_INT(n, 2);
    CHECK(moov_first(out));
    AVFrame *first = picture_at(out, 0), *at3 = picture_at(master, 3.0),
            *next = picture_at(master, 3.04);
    double same = psnr_rows(first, at3, 0, 360), other = psnr_rows(first, next, 0, 360);
    printf("  first picture vs the master's at 3.00 s: %.1f dB, at 3.04 s: %.1f dB\n", same, other);
    CHECK(same > 35);
    CHECK(other < same - 3);
    av_frame_free(&first);
    av_frame_free(&at3);
    av_frame_free(&next);
}

/* MPEG-TS starts at 1.4 s and is sought by timestamps, not an index: still the same cut. */
TEST(a_master_whose_first_pts_is_not_zero_cuts_the_same)
{
    export_result res;
    char err[256];
    int r = run_export(master_ts, 3000, 7000, 0, NULL, out2, NULL, &res, err, sizeof(err));
    CHECK_EQ_INT(r, 0);
    CHECK_EQ_INT(res.frames, 100);
    AVFrame *first = picture_at(out2, 0), *at3 = picture_at(master, 3.0);
    double same = psnr_rows(first, at3, 0, 360);
    printf("  first picture vs the master's at 3.00 s: %.1f dB\n", same);
    CHECK(same > 35);
    av_frame_free(&first);
    av_frame_free(&at3);
    unlink(out2);
}

TEST(captions_are_timed_on_the_masters_timeline)
{
    export_result res;
    char err[256];
    int r = run_export(master, 3000, 7000, 0, vtt, out2, NULL, &res, err, sizeof(err));
    CHECK_EQ_INT(r, 0);
    /* Output 1.5 s is the master's 4.5 s: inside the cue (4 to 6 s). */
    AVFrame *plain = picture_at(out, 1.5), *cap = picture_at(out2, 1.5);
    double bottom = psnr_rows(plain, cap, 288, 360), top = psnr_rows(plain, cap, 0, 180);
    printf("  at 1.5 s: bottom fifth %.1f dB, top half %.1f dB\n", bottom, top);
    CHECK(bottom < 30);
    CHECK(top > 35);
    av_frame_free(&plain);
    av_frame_free(&cap);
    /* Output 0.5 s is the master's 3.5 s: before the cue. */
    plain = picture_at(out, 0.5);
    cap = picture_at(out2, 0.5);
    bottom = psnr_rows(plain, cap, 288, 360);
    printf("  at 0.5 s: bottom fifth %.1f dB\n", bottom);
    CHECK(bottom > 35);
    av_frame_free(&plain);
    av_frame_free(&cap);
    unlink(out2);
}

TEST(a_height_scales_down_keeping_the_aspect)
{
    export_result res;
    char err[256];
    int r = run_export(master, 1000, 2000, 180, NULL, out2, NULL, &res, err, sizeof(err));
    CHECK_EQ_INT(r, 0);
    CHECK_EQ_INT(res.width, 320);
    CHECK_EQ_INT(res.height, 180);
    int w = 0, h = 0, n = 0;
    duration_of(out2, &w, &h, &n);
    CHECK_EQ_INT(w, 320);
    CHECK_EQ_INT(h, 180);
    /* Never up: a height above the master's is the master's. */
    r = run_export(master, 1000, 2000, 720, NULL, out2, NULL, &res, err, sizeof(err));
    CHECK_EQ_INT(r, 0);
    CHECK_EQ_INT(res.height, 360);
    unlink(out2);
}

TEST(a_start_past_the_end_is_einval)
{
    export_result res;
    char err[256];
    int r = run_export(master, 20000, 25000, 0, NULL, out2, NULL, &res, err, sizeof(err));
    CHECK_EQ_INT(r, -EINVAL);
    CHECK(strstr(err, "past the input's end") != NULL);
    CHECK(access(out2, F_OK) != 0);
}

TEST(a_cancel_stops_and_removes_the_file)
{
    export_result res;
    char err[256];
    export_sink sink = {NULL, cancel_now, NULL};
    int r = run_export(master, 0, 12000, 0, NULL, out2, &sink, &res, err, sizeof(err));
    CHECK_EQ_INT(r, -ECANCELED);
    CHECK(access(out2, F_OK) != 0);
}

TEST(captions_that_are_not_webvtt_are_einval)
{
    export_result res;
    char err[256];
    int r = run_export(master, 0, 1000, 0, notvtt, out2, NULL, &res, err, sizeof(err));
    CHECK_EQ_INT(r, -EINVAL);
    CHECK(strstr(err, "not WebVTT") != NULL);
    CHECK(access(out2, F_OK) != 0);
}

int main(void)
{
    int r = fixture_begin("export", dir, sizeof(dir));
    if (r != 0)
        return r > 0 ? 0 : 1;
    snprintf(master, sizeof(master), "%s/master.mp4", dir);
    snprintf(master_ts, sizeof(master_ts), "%s/master.ts", dir);
    snprintf(vtt, sizeof(vtt), "%s/captions.vtt", dir);
    snprintf(notvtt, sizeof(notvtt), "%s/list.m3u8", dir);
    snprintf(out, sizeof(out), "%s/out.mp4", dir);
    snprintf(out2, sizeof(out2), "%s/out2.mp4", dir);
    if (fixture_sh("ffmpeg -v error -y -f lavfi -i testsrc2=size=640x360:rate=25:duration=12 -f "
                   "lavfi -i sine=frequency=440:duration=12 -c:v libx264 -preset ultrafast -g 50 "
                   "-pix_fmt yuv420p -c:a aac %s && ffmpeg -v error -y -i %s -c copy -f mpegts %s",
                   master, master, master_ts) < 0)
        return 1;
    FILE *f = fopen(vtt, "w");
    if (f == NULL)
        return 1;
    fputs("WEBVTT\n\n00:00:04.000 --> 00:00:06.000\nHELLO\n", f);
    fclose(f);
    f = fopen(notvtt, "w");
    if (f == NULL)
        return 1;
    fprintf(f, "#EXTM3U\n#EXTINF:1,\nfile:%s\n", vtt);
    fclose(f);
    RUN(a_range_starts_at_the_picture_shown_at_its_start);
    RUN(a_master_whose_first_pts_is_not_zero_cuts_the_same);
    RUN(captions_are_timed_on_the_masters_timeline);
    RUN(a_height_scales_down_keeping_the_aspect);
    RUN(a_start_past_the_end_is_einval);
    RUN(a_cancel_stops_and_removes_the_file);
    RUN(captions_that_are_not_webvtt_are_einval);
    fixture_end(dir);
    return test_summary();
}
