/* The export pipeline, all on the calling thread: demux through an AVIOContext over the source
 * from the keyframe at or before the range's start, decode, keep the pictures and samples of
 * the range, run the pictures through one filter graph (scale, turn upright, burn the captions),
 * encode H.264 (libx264's own threads, or NVENC) and AAC, and mux into the output file as the
 * packets come; the mov muxer moves its moov to the front at the end (faststart), reading the
 * file back a buffer at a time.
 *
 * Timestamps: the source's timeline is 90 kHz from the video stream's first picture (its
 * start_time), the same for the audio. Pictures enter the graph on that timeline, because the
 * subtitles filter times its cues by the picture's pts; they leave it shifted by the range's
 * start, so the output starts at zero. The picture shown at the start (the last one at or
 * before it) is held back while decoding towards the start and goes in stamped at the start.
 * Audio is cut to the sample in the input's own rate, before resampling to the AAC encoder's
 * 48 kHz stereo. */
#include "src/media/export.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libavcodec/avcodec.h>
#include <libavfilter/avfilter.h>
#include <libavfilter/buffersink.h>
#include <libavfilter/buffersrc.h>
#include <libavformat/avformat.h>
#include <libavutil/opt.h>

#include "src/media/aac.h"
#include "src/media/avlog.h"
#include "src/media/avsource.h"
#include "src/media/ladder.h"
#include "src/media/rss.h"
#include "src/rt/log.h"
#include "src/rt/loop.h"

#define TB90            ((AVRational){1, 90000})
#define X264_CRF        "20"
#define X264_MASTER_CRF "16" /* a clip's master: the ladder is made from it later */
#define GOP_SEC         2

typedef struct ex {
    const export_opts *o;
    const export_sink *sink;
    char *err;
    size_t errlen;
    uint64_t t0_ns, last_progress_ns;

    AVFormatContext *in;
    AVIOContext *in_pb;
    int vi, ai;
    AVCodecContext *vdec, *adec;
    int64_t base90;         /* the source timeline's zero: the video's start_time */
    int64_t start90, end90; /* the range on that timeline */
    AVRational frame_rate;
    int64_t frame_dur90;
    int rotation;
    int out_w, out_h;

    /* video */
    AVFrame *frame, *held, *filtered;
    int64_t held_end90; /* where the held picture stops being shown */
    int64_t last_t;     /* source time of the last picture given to the graph; INT64_MIN: none */
    int v_done;
    AVFilterGraph *graph;
    AVFilterContext *gsrc, *gsink;
    int g_w, g_h, g_fmt; /* what the graph's source was made for */
    AVCodecContext *venc;
    media_encoder path;
    int64_t vframes;
    int64_t v_end90; /* output time after the last picture */

    /* audio */
    int a_done;
    aac_encoder aac; /* .next: output pts of the next AAC frame, 48 kHz; INT64_MIN: none yet */

    AVFormatContext *out;
    int out_open; /* the file was created (removed again on failure) */
    int vst, ast;
    AVPacket *pkt;
} ex;

static int fail(ex *x, int r, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(ex *x, int r, const char *fmt, ...)
{
    if (x->err[0] == '\0') {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(x->err, x->errlen, fmt, ap);
        va_end(ap);
    }
    return r < 0 ? r : -EIO;
}

static int cancelled(const ex *x)
{
    return x->sink != NULL && x->sink->cancelled != NULL && x->sink->cancelled(x->sink->ctx);
}

static void progress(ex *x, int force)
{
    uint64_t now = rd_now_ns();
    if (x->sink == NULL || x->sink->progress == NULL ||
        (!force && now - x->last_progress_ns < 1000000000ull))
        return;
    x->last_progress_ns = now;
    double wall = (double)(now - x->t0_ns) / 1e9;
    double range = (double)(x->end90 - x->start90) / 90000;
    double dur = x->in->duration > 0 ? (double)x->in->duration / AV_TIME_BASE : 0;
    if (dur > 0 && dur - (double)x->start90 / 90000 < range)
        range = dur - (double)x->start90 / 90000; /* an end past the input's end */
    transcode_progress p = {0};
    p.frames = x->vframes;
    p.media_sec = x->vi >= 0 ? (double)x->v_end90 / 90000
                             : (x->aac.next == INT64_MIN ? 0 : (double)x->aac.next / AAC_RATE);
    p.percent = force ? 100 : range > 0 ? FFMIN(100.0, 100.0 * p.media_sec / range) : 0;
    p.fps = wall > 0 ? (double)x->vframes / wall : 0;
    p.speed = wall > 0 ? p.media_sec / wall : 0;
    x->sink->progress(x->sink->ctx, &p);
}

/* ---- input ---- */

static int open_decoder(ex *x, int index, AVCodecContext **out)
{
    AVStream *st = x->in->streams[index];
    const char *kind = st->codecpar->codec_type == AVMEDIA_TYPE_VIDEO ? "video" : "audio";
    const AVCodec *codec = avcodec_find_decoder(st->codecpar->codec_id);
    if (codec == NULL)
        return fail(x, -ENOTSUP,
                    "the %s codec is not supported (%s): convert it to H.264/AAC first", kind,
                    avcodec_get_name(st->codecpar->codec_id));
    AVCodecContext *c = *out = avcodec_alloc_context3(codec);
    if (c == NULL)
        return -ENOMEM;
    int r = avcodec_parameters_to_context(c, st->codecpar);
    if (r < 0)
        return fail(x, r, "reading the %s codec parameters failed: %s", kind, av_err2str(r));
    c->pkt_timebase = st->time_base;
    /* Two frame threads decode the next pictures while the encoder takes this one (the job's
     * thread would otherwise do both in turn); more would each hold pictures for no speed that
     * measured, with libx264's threads already on every core. */
    c->thread_count = sysconf(_SC_NPROCESSORS_ONLN) > 4 ? 4 : 2;
    c->max_pixels = (int64_t)LADDER_MAX_SIDE * LADDER_MAX_SIDE;
    if ((r = avcodec_open2(c, codec, NULL)) < 0)
        return fail(x, -EINVAL,
                    "the %s stream cannot be decoded (%s): the input is corrupt or uses an "
                    "unsupported profile",
                    kind, av_err2str(r));
    return 0;
}

static int check_picture(ex *x, int w, int h)
{
    int64_t max = x->o->max_frame_pixels;
    if (w < 2 || h < 2 || w > LADDER_MAX_SIDE || h > LADDER_MAX_SIDE)
        return fail(x, -EINVAL, "the video is %dx%d: reeld takes 2 to %d pixels on a side", w, h,
                    LADDER_MAX_SIDE);
    if (max > 0 && (int64_t)w * h > max)
        return fail(x, -E2BIG,
                    "the video is %dx%d, %lld pixels a picture, more than the %lld that "
                    "REELD_MAX_FRAME_PIXELS allows: scale it down first",
                    w, h, (long long)w * h, (long long)max);
    return 0;
}

static int open_input(ex *x, media_source *src)
{
    if (src->size == 0)
        return fail(x, -EINVAL, "the input is empty (0 bytes)");
    if ((x->in_pb = source_avio(src)) == NULL || (x->in = avformat_alloc_context()) == NULL)
        return -ENOMEM;
    x->in->pb = x->in_pb;
    x->in->format_whitelist = av_strdup(SOURCE_DEMUXERS);
    int r = avformat_open_input(&x->in, NULL, NULL, NULL);
    if (r < 0)
        return fail(x, -EINVAL,
                    "the input is not audio or video reeld can read (%s): it is corrupt, truncated "
                    "or another kind of file",
                    av_err2str(r));
    if ((r = avformat_find_stream_info(x->in, NULL)) < 0)
        return fail(x, -EINVAL, "the input's streams cannot be read (%s): it is corrupt",
                    av_err2str(r));
    source_pick_streams(x->in, &x->vi, &x->ai);
    if (x->vi < 0 && x->ai < 0)
        return fail(x, -ENOTSUP, "the input has no audio or video stream reeld can export");
    /* The timeline's zero: the first picture (or the audio's start for audio alone). */
    AVStream *ref = x->in->streams[x->vi >= 0 ? x->vi : x->ai];
    if (ref->start_time != AV_NOPTS_VALUE)
        x->base90 = av_rescale_q(ref->start_time, ref->time_base, TB90);
    else if (x->in->start_time != AV_NOPTS_VALUE)
        x->base90 = av_rescale_q(x->in->start_time, AV_TIME_BASE_Q, TB90);
    if (x->vi >= 0) {
        AVStream *st = x->in->streams[x->vi];
        if ((r = check_picture(x, st->codecpar->width, st->codecpar->height)) < 0)
            return r;
        x->rotation = source_rotation(st);
        x->frame_rate = source_frame_rate(x->in, st);
        x->frame_dur90 = av_rescale_q(1, av_inv_q(x->frame_rate), TB90);
        if ((r = open_decoder(x, x->vi, &x->vdec)) < 0)
            return r;
    }
    if (x->ai >= 0 && (r = open_decoder(x, x->ai, &x->adec)) < 0)
        return r;
    return 0;
}

/* ---- output ---- */

/* The output picture: the source's as displayed (pixel aspect applied, turned upright), scaled
 * down to the asked height (never up), both sides even. */
static void output_size(ex *x)
{
    const AVCodecParameters *p = x->in->streams[x->vi]->codecpar;
    double w = p->width, h = p->height;
    AVRational sar = p->sample_aspect_ratio;
    if (sar.num > 0 && sar.den > 0)
        w = w * sar.num / sar.den;
    if (x->rotation == 90 || x->rotation == 270) {
        double t = w;
        w = h;
        h = t;
    }
    int oh = (int)h;
    if (x->o->height > 0 && x->o->height < oh)
        oh = x->o->height;
    oh &= ~1;
    int ow = (int)lround(w * oh / h / 2) * 2;
    x->out_h = oh < 2 ? 2 : oh;
    x->out_w = ow < 2 ? 2 : ow;
}

/* A cap on the bitrate by the picture's height: CRF decides, this keeps a noisy source's
 * file within what a download is expected to weigh. */
static int maxrate_kbps(int h)
{
    return h <= 360 ? 1500 : h <= 480 ? 2500 : h <= 720 ? 5000 : h <= 1080 ? 8000 : 20000;
}

static int open_video_encoder(ex *x, media_encoder path)
{
    const char *name = path == MEDIA_ENC_NVENC ? "h264_nvenc" : "libx264";
    const AVCodec *codec = avcodec_find_encoder_by_name(name);
    if (codec == NULL)
        return fail(x, -ENOSYS, "this FFmpeg has no %s encoder", name);
    AVCodecContext *c = x->venc = avcodec_alloc_context3(codec);
    if (c == NULL)
        return -ENOMEM;
    c->width = x->out_w;
    c->height = x->out_h;
    c->sample_aspect_ratio = (AVRational){1, 1};
    c->pix_fmt = AV_PIX_FMT_YUV420P;
    c->time_base = TB90;
    c->framerate = x->frame_rate;
    c->gop_size = (int)lround(av_q2d(x->frame_rate) * GOP_SEC);
    if (!x->o->master_quality) {
        c->rc_max_rate = (int64_t)maxrate_kbps(x->out_h) * 1000;
        c->rc_buffer_size = (int)(c->rc_max_rate * 2);
    }
    c->color_range = AVCOL_RANGE_MPEG;
    c->flags |= AV_CODEC_FLAG_GLOBAL_HEADER; /* SPS and PPS in the moov's avcC */
    AVDictionary *opts = NULL;
    int r = 0;
    if (path == MEDIA_ENC_NVENC) {
        /* No B-frames: FFmpeg 5.1's NVENC stamps a DTS past the PTS in a 1/90000 time base. */
        c->max_b_frames = 0;
        if (av_dict_set(&opts, "preset", "p4", 0) < 0 || av_dict_set(&opts, "rc", "vbr", 0) < 0 ||
            av_dict_set(&opts, "cq", x->o->master_quality ? "18" : "23", 0) < 0 ||
            av_dict_set(&opts, "profile", "high", 0) < 0)
            r = -ENOMEM;
        if (r == 0 && (c->hw_device_ctx = av_buffer_ref(x->o->cuda_device)) == NULL)
            r = -ENOMEM;
    } else {
        c->thread_count = x->o->x264_threads > 0 ? x->o->x264_threads : 0;
        if (av_dict_set(&opts, "preset", x->o->x264_preset ? x->o->x264_preset : "veryfast", 0) <
                0 ||
            av_dict_set(&opts, "crf", x->o->master_quality ? X264_MASTER_CRF : X264_CRF, 0) < 0)
            r = -ENOMEM;
        /* libx264's own frame threads. Sliced threads hold 65 MB less at 1080p on two cores
         * (249 against 314 MB peak) for the same CPU time, but their serial lookahead left a
         * core idle: 15-50 % longer in wall time. An export is waited for; speed won. */
    }
    if (r < 0) {
        av_dict_free(&opts);
        return r;
    }
    char ffmsg[192];
    avlog_capture_begin(ffmsg, sizeof(ffmsg));
    r = avcodec_open2(c, codec, &opts);
    avlog_capture_end();
    av_dict_free(&opts);
    if (r < 0)
        return fail(x, r, "opening the %s encoder failed: %s%s%s", name, av_err2str(r),
                    ffmsg[0] ? " (FFmpeg: " : "", ffmsg[0] ? ffmsg : "");
    return 0;
}

/* NVENC, or libx264 when NVENC will not open (a GPU out of sessions, no GPU): logged, as a
 * transcode does. */
static int open_video(ex *x)
{
    output_size(x);
    x->path = x->o->encoder == MEDIA_ENC_NVENC && x->o->cuda_device != NULL ? MEDIA_ENC_NVENC
                                                                            : MEDIA_ENC_X264;
    int r = open_video_encoder(x, x->path);
    if (r < 0 && x->path == MEDIA_ENC_NVENC && r != -ENOMEM) {
        log_warn("nvenc_fallback", KV_STR("reason", x->err), KV_STR("path", "x264"),
                 KV_STR("job", "export"));
        x->err[0] = '\0';
        avcodec_free_context(&x->venc);
        x->path = MEDIA_ENC_X264;
        r = open_video_encoder(x, x->path);
    }
    return r;
}

static int open_output(ex *x, const char *path)
{
    int r = avformat_alloc_output_context2(&x->out, NULL, "mp4", path);
    if (r < 0)
        return fail(x, r, "creating the MP4 muxer failed: %s", av_err2str(r));
    x->vst = x->ast = -1;
    if (x->venc != NULL) {
        AVStream *st = avformat_new_stream(x->out, NULL);
        if (st == NULL || avcodec_parameters_from_context(st->codecpar, x->venc) < 0)
            return -ENOMEM;
        st->time_base = TB90;
        st->avg_frame_rate = x->frame_rate;
        x->vst = st->index;
    }
    if (x->aac.enc != NULL) {
        AVStream *st = avformat_new_stream(x->out, NULL);
        if (st == NULL || avcodec_parameters_from_context(st->codecpar, x->aac.enc) < 0)
            return -ENOMEM;
        st->time_base = x->aac.enc->time_base;
        x->ast = st->index;
    }
    if ((r = avio_open(&x->out->pb, path, AVIO_FLAG_WRITE)) < 0)
        return fail(x, r, "cannot create %s: %s", path, av_err2str(r));
    x->out_open = 1;
    AVDictionary *opts = NULL;
    av_dict_set(&opts, "movflags", "+faststart", 0);
    r = avformat_write_header(x->out, &opts);
    av_dict_free(&opts);
    if (r < 0)
        return fail(x, r, "writing the MP4 header failed: %s", av_err2str(r));
    return 0;
}

/* A packet stamped in `tb` into the MP4's `stream`; its reference is taken. */
static int write_packet(ex *x, AVPacket *p, AVRational tb, int stream)
{
    av_packet_rescale_ts(p, tb, x->out->streams[stream]->time_base);
    p->stream_index = stream;
    int r = av_interleaved_write_frame(x->out, p); /* takes the reference */
    if (r < 0)
        return fail(x, r, "writing the MP4 failed: %s", av_err2str(r));
    return 0;
}

/* An AAC packet from the encoder, into the MP4. */
static int aac_packet(void *ctx, AVPacket *pkt)
{
    ex *x = ctx;
    return write_packet(x, pkt, x->aac.enc->time_base, x->ast);
}

/* Writes every packet the video encoder has ready. */
static int drain_video(ex *x)
{
    int r;
    while ((r = avcodec_receive_packet(x->venc, x->pkt)) == 0) {
        x->vframes++;
        if (x->pkt->duration <= 0)
            x->pkt->duration = x->frame_dur90;
        if ((r = write_packet(x, x->pkt, x->venc->time_base, x->vst)) < 0)
            return r;
    }
    if (r == AVERROR(EAGAIN) || r == AVERROR_EOF)
        return 0;
    int gpu = x->path == MEDIA_ENC_NVENC && r != AVERROR(ENOMEM);
    return fail(x, gpu ? -EIO : r, "video encoding failed: %s", av_err2str(r));
}

/* ---- pictures ---- */

/* A filter created with `args` (NULL: none), linked after *last, which it becomes. */
static int chain(ex *x, AVFilterContext **last, const char *name, const char *args)
{
    AVFilterContext *f = NULL;
    int r =
        avfilter_graph_create_filter(&f, avfilter_get_by_name(name), NULL, args, NULL, x->graph);
    if (r >= 0)
        r = avfilter_link(*last, 0, f, 0);
    if (r >= 0)
        *last = f;
    return r;
}

/* The captions' filter. Its file name is set as an option, never written into a filter-graph
 * string, so no character of the path needs escaping. */
static int chain_captions(ex *x, AVFilterContext **last)
{
    AVFilterContext *f =
        avfilter_graph_alloc_filter(x->graph, avfilter_get_by_name("subtitles"), "captions");
    if (f == NULL)
        return AVERROR_FILTER_NOT_FOUND;
    char file[4200];
    /* "file:" keeps FFmpeg to the local file whatever the path looks like (a "://" in it). */
    snprintf(file, sizeof(file), "file:%s", x->o->captions_vtt);
    int r = av_opt_set(f, "filename", file, AV_OPT_SEARCH_CHILDREN);
    if (r >= 0)
        r = avfilter_init_str(f, NULL);
    if (r < 0)
        return fail(x, -EINVAL,
                    "the captions cannot be rendered (%s): %s is not WebVTT libass reads",
                    av_err2str(r), x->o->captions_vtt);
    if ((r = avfilter_link(*last, 0, f, 0)) >= 0)
        *last = f;
    return r;
}

/* buffer -> scale to the output size (before the turn) in yuv420p -> turn upright ->
 * captions -> buffersink, for pictures like `f`. */
static int build_graph(ex *x, const AVFrame *f)
{
    avfilter_graph_free(&x->graph);
    AVFilterGraph *g = x->graph = avfilter_graph_alloc();
    if (g == NULL)
        return -ENOMEM;
    char args[256];
    snprintf(args, sizeof(args), "video_size=%dx%d:pix_fmt=%d:time_base=1/90000:pixel_aspect=1/1",
             f->width, f->height, f->format);
    int r =
        avfilter_graph_create_filter(&x->gsrc, avfilter_get_by_name("buffer"), "in", args, NULL, g);
    if (r < 0)
        return fail(x, r, "setting up the pictures' filters failed: %s", av_err2str(r));
    AVFilterContext *last = x->gsrc;
    int turned = x->rotation == 90 || x->rotation == 270;
    snprintf(args, sizeof(args), "w=%d:h=%d", turned ? x->out_h : x->out_w,
             turned ? x->out_w : x->out_h);
    r = chain(x, &last, "scale", args);
    if (r >= 0)
        r = chain(x, &last, "format", "pix_fmts=yuv420p");
    if (r >= 0 && x->rotation == 90)
        r = chain(x, &last, "transpose", "dir=clock");
    else if (r >= 0 && x->rotation == 270)
        r = chain(x, &last, "transpose", "dir=cclock");
    else if (r >= 0 && x->rotation == 180 && (r = chain(x, &last, "hflip", NULL)) >= 0)
        r = chain(x, &last, "vflip", NULL);
    if (r >= 0 && x->o->captions_vtt != NULL && x->o->captions_vtt[0] != '\0' &&
        (r = chain_captions(x, &last)) < 0)
        return r;
    if (r >= 0)
        r = avfilter_graph_create_filter(&x->gsink, avfilter_get_by_name("buffersink"), "out", NULL,
                                         NULL, g);
    if (r >= 0)
        r = avfilter_link(last, 0, x->gsink, 0);
    if (r >= 0)
        r = avfilter_graph_config(g, NULL);
    if (r < 0)
        return fail(x, r, "setting up the pictures' filters failed: %s", av_err2str(r));
    x->g_w = f->width;
    x->g_h = f->height;
    x->g_fmt = f->format;
    return 0;
}

/* Encodes what the graph gives, shifted from the source's timeline to the output's. */
static int drain_graph(ex *x)
{
    int r;
    while ((r = av_buffersink_get_frame(x->gsink, x->filtered)) >= 0) {
        AVFrame *f = x->filtered;
        f->pts -= x->start90;
        f->pict_type = AV_PICTURE_TYPE_NONE;
        f->sample_aspect_ratio = (AVRational){1, 1}; /* the scale made the pixels square */
        if (f->pts + x->frame_dur90 > x->v_end90)
            x->v_end90 = f->pts + x->frame_dur90;
        r = avcodec_send_frame(x->venc, f);
        av_frame_unref(f);
        if (r < 0)
            return fail(x, x->path == MEDIA_ENC_NVENC ? -EIO : r, "video encoding failed: %s",
                        av_err2str(r));
        if ((r = drain_video(x)) < 0)
            return r;
    }
    if (r == AVERROR(EAGAIN) || r == AVERROR_EOF)
        return 0;
    return fail(x, r, "filtering the pictures failed: %s", av_err2str(r));
}

/* One picture of the range, at source time `t` (90 kHz), into the graph; `f` is emptied. */
static int give_picture(ex *x, AVFrame *f, int64_t t)
{
    int r;
    if ((r = check_picture(x, f->width, f->height)) < 0)
        return r;
    if (x->graph == NULL || f->width != x->g_w || f->height != x->g_h || f->format != x->g_fmt) {
        /* The first picture, or the input changed size mid-stream: the output's stays. */
        if (x->graph != NULL && (r = av_buffersrc_add_frame(x->gsrc, NULL)) >= 0)
            r = drain_graph(x);
        if (r < 0 || (r = build_graph(x, f)) < 0)
            return r;
    }
    f->pts = t;
    x->last_t = t;
    if ((r = av_buffersrc_add_frame(x->gsrc, f)) < 0)
        return fail(x, r, "filtering the pictures failed: %s", av_err2str(r));
    return drain_graph(x);
}

/* A decoded picture: held while it may be the one shown at the start, given when in the
 * range, dropped before it and after it. */
static int video_frame(ex *x, AVFrame *f)
{
    AVStream *st = x->in->streams[x->vi];
    int64_t ts = f->best_effort_timestamp;
    int64_t t = ts == AV_NOPTS_VALUE ? (x->last_t != INT64_MIN ? x->last_t + x->frame_dur90 : 0)
                                     : av_rescale_q(ts, st->time_base, TB90) - x->base90;
    int64_t dur =
        f->pkt_duration > 0 ? av_rescale_q(f->pkt_duration, st->time_base, TB90) : x->frame_dur90;
    if (t >= x->end90) {
        x->v_done = 1;
        return 0;
    }
    if (t <= x->start90) {
        av_frame_unref(x->held);
        av_frame_move_ref(x->held, f);
        x->held_end90 = t + dur;
        return 0;
    }
    int r;
    if (x->held->buf[0] != NULL) {
        /* The picture shown at the start goes in at the start (a cue starting there shows). */
        if ((r = give_picture(x, x->held, x->start90)) < 0)
            return r;
    }
    if (x->last_t != INT64_MIN && t <= x->last_t)
        return 0; /* a repeated or backward timestamp: the encoder needs them increasing */
    return give_picture(x, f, t);
}

/* ---- samples ---- */

/* A decoded audio frame: the samples inside the range, cut in the input's own rate. */
static int audio_frame(ex *x, AVFrame *f)
{
    AVStream *st = x->in->streams[x->ai];
    int sr = f->sample_rate > 0 ? f->sample_rate : x->adec->sample_rate;
    if (sr <= 0 || f->nb_samples <= 0)
        return 0;
    AVRational tbs = {1, sr};
    int64_t ts = f->best_effort_timestamp;
    if (ts == AV_NOPTS_VALUE && x->aac.next == INT64_MIN)
        return 0; /* no time to place it by */
    int64_t s0 = av_rescale_q(x->start90, TB90, tbs), s1 = av_rescale_q(x->end90, TB90, tbs);
    int64_t first = ts != AV_NOPTS_VALUE
                        ? av_rescale_q(av_rescale_q(ts, st->time_base, TB90) - x->base90, TB90, tbs)
                        : s0 + av_rescale_q(x->aac.next, (AVRational){1, AAC_RATE}, tbs);
    int n = f->nb_samples;
    if (first >= s1) {
        x->a_done = 1;
        return 0;
    }
    int64_t skip = s0 > first ? s0 - first : 0, keep_end = s1 - first < n ? s1 - first : n;
    if (first + n >= s1)
        x->a_done = 1; /* the range's last samples */
    if (keep_end <= skip)
        return 0;
    if (x->aac.next == INT64_MIN) /* audio that starts after the range does starts as late */
        x->aac.next = av_rescale_q(first + skip - s0, tbs, (AVRational){1, AAC_RATE});
    int ch = f->ch_layout.nb_channels, planar = av_sample_fmt_is_planar(f->format);
    int bps = av_get_bytes_per_sample(f->format);
    const uint8_t *in[64];
    if (ch <= 0 || ch > 64 || bps <= 0)
        return fail(x, -ENOTSUP, "the audio has %d channels: reeld takes 1 to 64", ch);
    for (int c = 0; c < (planar ? ch : 1); c++)
        in[c] = f->extended_data[c] + skip * bps * (planar ? 1 : ch);
    return aac_write(&x->aac, in, (int)(keep_end - skip));
}

/* ---- the job ---- */

static int decode(ex *x, AVCodecContext *dec, const AVPacket *pkt)
{
    int r = avcodec_send_packet(dec, pkt);
    if (r == AVERROR_INVALIDDATA)
        return 0; /* a damaged packet: conceal and go on */
    if (r < 0 && r != AVERROR_EOF)
        return fail(x, -EINVAL, "decoding failed: %s", av_err2str(r));
    for (;;) {
        r = avcodec_receive_frame(dec, x->frame);
        if (r == AVERROR(EAGAIN) || r == AVERROR_EOF)
            return 0;
        if (r == AVERROR_INVALIDDATA)
            continue;
        if (r < 0)
            return fail(x, -EINVAL, "decoding failed: %s", av_err2str(r));
        if (dec == x->vdec && !x->v_done)
            r = video_frame(x, x->frame);
        else if (dec == x->adec && !x->a_done)
            r = audio_frame(x, x->frame);
        av_frame_unref(x->frame);
        if (r < 0)
            return r;
    }
}

static int finish(ex *x)
{
    int r;
    if (x->vi >= 0 && x->held->buf[0] != NULL && x->last_t == INT64_MIN &&
        x->held_end90 > x->start90 && (r = give_picture(x, x->held, x->start90)) < 0)
        return r; /* the range falls inside the input's last picture */
    if (x->graph != NULL && (r = av_buffersrc_add_frame(x->gsrc, NULL)) >= 0)
        r = drain_graph(x);
    else
        r = 0;
    if (r < 0)
        return r;
    if (x->vi >= 0 && x->vframes == 0 && x->last_t == INT64_MIN)
        return fail(x, -EINVAL,
                    "the range starts at %.3f s, past the input's last picture: pick an earlier "
                    "start",
                    (double)x->start90 / 90000);
    if (x->venc != NULL) {
        if ((r = avcodec_send_frame(x->venc, NULL)) < 0 || (r = drain_video(x)) < 0)
            return r < 0 && x->err[0] == '\0' ? fail(x, r, "video encoding failed") : r;
    }
    /* The resampler's last samples (its delay), then the FIFO's remainder and the encoder's. */
    if (x->aac.enc != NULL && x->aac.next != INT64_MIN &&
        ((r = aac_write(&x->aac, NULL, 0)) < 0 || (r = aac_finish(&x->aac)) < 0))
        return r;
    if (x->vi < 0 && x->aac.next == INT64_MIN)
        return fail(x, -EINVAL,
                    "the range starts at %.3f s, past the input's end: pick an earlier start",
                    (double)x->start90 / 90000);
    /* The moov, then moved to the front: the muxer reads the file back a buffer at a time. */
    if ((r = av_write_trailer(x->out)) < 0)
        return fail(x, r, "finishing the MP4 failed: %s", av_err2str(r));
    if ((r = avio_closep(&x->out->pb)) < 0)
        return fail(x, r, "writing the MP4 failed: %s", av_err2str(r));
    return 0;
}

/* Moves the demuxer to the keyframe at or before the start (its other streams follow). An
 * index (MP4, Matroska) lands there at once; a search by timestamps (MPEG-TS) may land past it,
 * as the keyframe the decoder would start from shows: then a little earlier, again. A source
 * that cannot seek is read from its beginning. */
static int seek_to_start(ex *x)
{
    int64_t back = 0;
    for (int tries = 0; x->start90 > 0 && tries < 8; tries++) {
        int64_t target = x->start90 - back;
        if (target <= 0)
            target = 0;
        int64_t at = av_rescale_q(x->base90 + target, TB90, AV_TIME_BASE_Q);
        if (av_seek_frame(x->in, -1, at, AVSEEK_FLAG_BACKWARD) < 0) {
            if (tries == 0)
                log_warn("export_seek_failed", KV_STR("why", "the input is read from its start"));
            return 0;
        }
        if (x->vi < 0 || target == 0)
            return 0;
        int64_t key = AV_NOPTS_VALUE;
        for (int n = 0; n < 100000 && key == AV_NOPTS_VALUE; n++) {
            int r = av_read_frame(x->in, x->pkt);
            if (r < 0)
                break;
            if (x->pkt->stream_index == x->vi && (x->pkt->flags & AV_PKT_FLAG_KEY)) {
                int64_t ts = x->pkt->pts != AV_NOPTS_VALUE ? x->pkt->pts : x->pkt->dts;
                if (ts != AV_NOPTS_VALUE)
                    key = av_rescale_q(ts, x->in->streams[x->vi]->time_base, TB90) - x->base90;
            }
            av_packet_unref(x->pkt);
        }
        if (key != AV_NOPTS_VALUE && key <= x->start90) {
            if (av_seek_frame(x->in, -1, at, AVSEEK_FLAG_BACKWARD) < 0)
                return fail(x, -EINVAL, "seeking in the input failed: it is truncated or corrupt");
            return 0;
        }
        back = back > 0 ? back * 2 : 2 * 90000;
    }
    return 0;
}

static int run(ex *x, media_source *src, const char *out_path)
{
    const export_opts *o = x->o;
    if (o->start_ms < 0 || o->end_ms <= o->start_ms)
        return fail(x, -EINVAL, "the range %.3f-%.3f s is empty: the end must come after the start",
                    (double)o->start_ms / 1000, (double)o->end_ms / 1000);
    x->start90 = o->start_ms * 90;
    x->end90 = o->end_ms > INT64_MAX / 90 ? INT64_MAX : o->end_ms * 90;
    int r;
    if ((r = open_input(x, src)) < 0)
        return r;
    if (x->in->duration > 0) {
        int64_t dur_ms = x->in->duration / 1000;
        if (o->start_ms >= dur_ms)
            return fail(x, -EINVAL,
                        "the range starts at %.3f s, past the input's end (%.3f s): pick an "
                        "earlier start",
                        (double)o->start_ms / 1000, (double)dur_ms / 1000);
    }
    if (o->captions_vtt != NULL && o->captions_vtt[0] != '\0') {
        /* Only WebVTT reaches libass: FFmpeg would probe anything (a playlist naming other
         * files or URLs), and the file is the user's. */
        FILE *f = fopen(o->captions_vtt, "rb");
        char head[16] = "";
        size_t n = f != NULL ? fread(head, 1, sizeof(head) - 1, f) : 0;
        if (f != NULL)
            fclose(f);
        head[n] = '\0';
        const char *h = strncmp(head, "\xEF\xBB\xBF", 3) == 0 ? head + 3 : head;
        if (f == NULL)
            return fail(x, -EINVAL, "the captions file %s cannot be read: %s", o->captions_vtt,
                        strerror(errno));
        if (strncmp(h, "WEBVTT", 6) != 0)
            return fail(x, -EINVAL, "the captions file %s is not WebVTT (no WEBVTT header)",
                        o->captions_vtt);
    }
    if (x->vi >= 0 && (r = open_video(x)) < 0)
        return r;
    if (x->ai >= 0 && (r = aac_open(&x->aac, x->adec, 1, aac_packet, x, x->err, x->errlen)) < 0)
        return r;
    if ((r = open_output(x, out_path)) < 0)
        return r;
    if (x->vi >= 0 && x->vdec != NULL && x->graph == NULL) {
        /* The captions' file is read now, before any decoding: a bad one fails at once. */
        AVFrame probe = {.width = x->vdec->width,
                         .height = x->vdec->height,
                         .format = x->vdec->pix_fmt != AV_PIX_FMT_NONE ? x->vdec->pix_fmt
                                                                       : AV_PIX_FMT_YUV420P};
        if ((r = build_graph(x, &probe)) < 0)
            return r;
    }
    if ((r = seek_to_start(x)) < 0)
        return r;
    x->a_done = x->ai < 0;
    x->v_done = x->vi < 0;
    while (!(x->v_done && x->a_done)) {
        r = av_read_frame(x->in, x->pkt);
        if (r == AVERROR_EOF)
            break;
        if (r < 0)
            return fail(x, -EINVAL, "reading the input failed (%s): it is truncated or corrupt",
                        av_err2str(r));
        if (x->pkt->stream_index == x->vi && !x->v_done)
            r = decode(x, x->vdec, x->pkt);
        else if (x->pkt->stream_index == x->ai && !x->a_done)
            r = decode(x, x->adec, x->pkt);
        else
            r = 0;
        av_packet_unref(x->pkt);
        if (r < 0)
            return r;
        if (cancelled(x))
            return -ECANCELED;
        progress(x, 0);
    }
    if (src->error < 0)
        return fail(x, src->error, "%s", src->why[0] ? src->why : "reading the input failed");
    if (!x->v_done && (r = decode(x, x->vdec, NULL)) < 0)
        return r;
    if (!x->a_done && (r = decode(x, x->adec, NULL)) < 0)
        return r;
    if ((r = finish(x)) < 0)
        return r;
    if (cancelled(x))
        return -ECANCELED;
    progress(x, 1);
    return 0;
}

int export_run(media_source *src, const export_opts *o, const char *out_path,
               const export_sink *sink, export_result *res, char *err, size_t errlen)
{
    memset(res, 0, sizeof(*res));
    err[0] = '\0';
    rss_reset_peak();
    ex x = {.o = o, .sink = sink, .err = err, .errlen = errlen, .vi = -1, .ai = -1};
    x.t0_ns = x.last_progress_ns = rd_now_ns();
    x.last_t = INT64_MIN;
    x.aac.next = INT64_MIN;
    x.path = MEDIA_ENC_X264;
    x.frame = av_frame_alloc();
    x.held = av_frame_alloc();
    x.filtered = av_frame_alloc();
    x.pkt = av_packet_alloc();
    int r = x.frame && x.held && x.filtered && x.pkt ? run(&x, src, out_path) : -ENOMEM;
    if (r < -4095)
        r = -EINVAL; /* an FFmpeg tag (AVERROR_INVALIDDATA, ...): callers get a -errno */
    if (r == -ENOMEM && err[0] == '\0')
        snprintf(err, errlen, "out of memory");
    else if (r < 0 && err[0] == '\0')
        snprintf(err, errlen, r == -ECANCELED ? "cancelled" : "exporting failed: %s", strerror(-r));
    if (x.venc != NULL) {
        res->width = x.venc->width;
        res->height = x.venc->height;
    }
    res->frames = x.vframes;
    res->media_sec = x.vi >= 0 ? (double)x.v_end90 / 90000
                               : (x.aac.next == INT64_MIN ? 0 : (double)x.aac.next / AAC_RATE);
    snprintf(res->encoder, sizeof(res->encoder), "%s",
             x.path == MEDIA_ENC_NVENC ? "nvenc" : "x264");
    if (x.out != NULL) {
        if (x.out->pb != NULL)
            avio_closep(&x.out->pb);
        avformat_free_context(x.out);
    }
    struct stat st;
    if (r < 0 && x.out_open)
        unlink(out_path);
    else if (r == 0 && stat(out_path, &st) == 0)
        res->bytes = st.st_size;
    avfilter_graph_free(&x.graph);
    avcodec_free_context(&x.venc);
    avcodec_free_context(&x.vdec);
    avcodec_free_context(&x.adec);
    aac_close(&x.aac);
    avformat_close_input(&x.in);
    source_avio_free(&x.in_pb);
    av_frame_free(&x.frame);
    av_frame_free(&x.held);
    av_frame_free(&x.filtered);
    av_packet_free(&x.pkt);
    res->wall_sec = (double)(rd_now_ns() - x.t0_ns) / 1e9;
    res->peak_rss_kb = rss_peak_kb();
    return r;
}
