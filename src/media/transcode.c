/* The transcode pipeline. The job's thread (the encoder actor's) demuxes through a custom
 * AVIOContext over a source, decodes once, encodes AAC once, and gives every rung references
 * to the pictures and packets. Each rung has a worker thread that scales (swscale, or
 * scale_cuda in a filter graph on the GPU path), encodes and muxes into segments collected in
 * memory; closed segments come back to the job's thread, which alone talks to the sink. With
 * opts->cascade (CPU) the top rung gets the decoded picture and each rung hands its scaled
 * picture to the next smaller one (a scaler that reads less). The
 * rungs thus run side by side with one libx264 thread each on a small machine, instead of
 * frame threads that hold pictures (memory) for little speed. Queues are bounded both ways.
 *
 * Timestamps: everything after the decoder is in 90 kHz, relative to the input's start, plus
 * OUT_OFFSET so B-frame dts and AAC priming never go below zero. A keyframe is forced on the
 * first frame at or after every multiple of the segment length, and no encoder cuts on scenes,
 * so every rung's keyframes fall on the same frames. A rung's segment is cut at the first
 * keyframe past the next multiple: the same rule on the same frames gives the same cuts.
 *
 * Segments: one muxer per rung for the whole job. MPEG-TS: continuity counters run on; at a cut
 * its PES buffers are flushed, the bytes handed to the sink, and PAT/PMT re-sent so the next
 * segment starts decodable. fMP4: the header is the init segment, and a cut flushes one
 * fragment (frag_custom), which starts with the keyframe the cut was made at. Audio packets
 * wait in a per-rung queue until the rung's video has caught up with them (the video encoder
 * lags), so they land in the segment they belong to. */
#include "src/media/transcode.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <stdatomic.h>
#include <unistd.h>
#include <sys/resource.h>

#include <libavcodec/avcodec.h>
#include <libavfilter/buffersink.h>
#include <libavfilter/buffersrc.h>
#include <libavformat/avformat.h>
#include <libavutil/hwcontext.h>
#include <libavutil/imgutils.h>
#include <libavutil/opt.h>
#include <libswscale/swscale.h>

#include "proto/hls.h"
#include "src/media/thumb.h"
#include "src/media/aac.h"
#include "src/media/avlog.h"
#include "src/media/avsource.h"
#include "src/media/ladder.h"
#include "src/media/rss.h"
#include "src/media/scaler.h"
#include "src/media/storyboard.h"
#include "src/media/vpath.h"
#include "src/rt/log.h"
#include "src/rt/loop.h"

#define TB90            ((AVRational){1, 90000})
#define OUT_OFFSET      126000  /* 1.4 s, where FFmpeg's own HLS output starts too */
#define IO_BUF_SIZE     65536   /* AVIOContext buffers, in and out */
#define AUDIO_QUEUE_MAX 4096    /* AAC frames (~85 s) a rung holds for its video: more is refused */
#define PLAYLIST_MAX    1048576 /* bytes of one playlist */

typedef struct seginfo {
    double duration; /* seconds */
    int64_t bytes;
} seginfo;

/* A rung's queue: frames and audio packets waiting for its worker, of which pictures. Each
 * picture pins a decoded one (3 MB at 1080p): two keep the slowest rung fed, more only hold
 * memory. */
#define RUNG_QUEUE  32
#define RUNG_FRAMES 2
#define RUNG_BEHIND 5 /* nice steps below the top rung for the others (run_behind) */

/* What the job's thread gives a rung: a decoded picture, an AAC packet, or (neither) the end. */
typedef struct rung_item {
    AVFrame *frame; /* a reference to the decoder's picture, stamped and flagged */
    AVPacket *audio;
    uint8_t scaled; /* cascade: the picture is a rung above's, scaled once already */
} rung_item;

/* A closed segment on its way from a worker to the sink. */
typedef struct outobj {
    struct outobj *next;
    char name[64];
    uint8_t *data;
    size_t len;
} outobj;

typedef struct variant {
    ladder_rung rung; /* size and bitrate (video rungs) */
    char name[8];     /* directory: rung name or "audio" */
    int video;        /* 0: the audio-only rung */
    int vst, ast;     /* stream indexes in the muxer; -1 when absent */
    AVCodecContext *enc;
    scaler sc;
    AVBufferPool *pool; /* scaled and rotated pictures */
    AVFilterGraph *graph;
    AVFilterContext *gsrc, *gsink;
    AVBufferRef *enc_frames; /* NVENC from CUDA frames: the NV12 frames its encoder opened with */
    AVFormatContext *mux;
    uint8_t *seg; /* bytes of the open segment */
    size_t seg_len, seg_cap;
    int io_failed;
    int fmp4; /* fragmented MP4 segments (mp4 muxer) instead of MPEG-TS */
    int seg_open;
    int64_t seg_start; /* 90 kHz pts of the open segment's first frame */
    int64_t next_cut;  /* relative 90 kHz time the open segment may end at */
    int64_t end;       /* 90 kHz end of the last packet written */
    seginfo *segs;
    int nsegs, segs_cap;
    int64_t bytes; /* of all its segments */
    AVPacket **aq; /* audio waiting for this rung's video */
    int aq_head, aq_len, aq_cap;
    char codecs[40];

    /* The rung's worker thread and what passes between it and the job's thread (under mu). */
    struct job *j;
    AVFormatContext *dl; /* top rung with opts->mp4: the download's MP4 muxer, into dl_path */
    char dl_path[256];
    pthread_t thread;
    int running; /* thread started and not joined */
    pthread_mutex_t mu;
    pthread_cond_t cv; /* broadcast on every change below */
    rung_item q[RUNG_QUEUE];
    int q_head, q_len;
    int q_frames;                /* pictures among them */
    outobj *out_head, *out_tail; /* closed segments for the job's thread to hand over */
    int finished;                /* the worker has ended */
    int status;                  /* its result */
    char err[256];               /* its message */
    AVPacket *pkt, *mpkt;        /* from the encoder; a reference on its way into the muxer */
    int threads;                 /* libx264 threads */
    int behind;                  /* runs at a lower priority than the top rung (run_behind) */
    /* Cascade (software path): the next smaller rung is scaled from this one's pictures, not
     * from the decoded one (feeds), and its pictures come from here, upright (fed). */
    struct variant *feeds;
    int fed;
} variant;

typedef struct job {
    _Atomic int abort; /* workers stop at their next item */
    const transcode_opts *o;
    media_encoder path; /* o->encoder, or hybrid after NVENC failed to open */
    AVFilterGraph *up;  /* NVENC, software-decoded input: the one upload of the job */
    AVFilterContext *up_src, *up_sink;
    AVFrame *up_frame;
    const transcode_sink *sink;
    int64_t seg90; /* segment length in 90 kHz */
    uint64_t t0_ns;
    uint64_t last_progress_ns;

    AVFormatContext *in;
    AVIOContext *in_pb;
    int vi, ai; /* input stream indexes; -1 when absent */
    AVCodecContext *vdec, *adec;
    int rotation;  /* clockwise degrees to display the picture upright */
    int64_t start; /* input start, AV_TIME_BASE */
    double duration;
    AVRational frame_rate;
    int64_t frame_dur90;

    variant *v;
    int nv;
    aac_encoder aac; /* encoded once for every rung; .next: pts of the next AAC frame */

    int64_t next_kf; /* relative 90 kHz time of the next forced keyframe */
    int64_t last_t;  /* relative 90 kHz time of the last frame sent */
    int64_t vframes, aframes, decode_errors;
    int64_t poster_at;
    int poster_tried;
    AVFrame *poster_pic; /* the poster's picture until the rungs are done */
    AVFrame *poster_yuv; /* the same in the video's range, for the WebP */
    uint8_t *poster;
    size_t poster_len;
    uint8_t *poster_webp;
    size_t poster_webp_len;

    /* The storyboard (storyboard.h): a tile from the decoded picture every sb_step90. */
    int sb_off; /* none: no tile size, or a GPU picture could not be read */
    int64_t sb_step90, sb_next;
    int sb_tw, sb_th;
    int sb_n, sb_cap;
    int64_t *sb_ms;     /* each tile's start, ms */
    AVFrame *sb_sprite; /* the sprite being filled, full range */
    AVFrame *sb_tile;   /* one tile, scaled (turned when the video is) */
    struct SwsContext *sb_sws;
    AVFrame *frame;
    AVFrame *sw_frame; /* a GPU frame copied down (poster) */
    AVPacket *pkt;     /* from the demuxer or the AAC encoder */
} job;

/* ---- errors ---- */

/* Where fail() writes: the job's message on the job's thread, a rung's on its worker. */
static __thread char *err_buf;
static __thread size_t err_len;

static int fail(int r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(int r, const char *fmt, ...)
{
    if (err_buf != NULL && err_buf[0] == '\0') {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err_buf, err_len, fmt, ap);
        va_end(ap);
    }
    return r < 0 ? r : -EIO;
}

/* FFmpeg's AVERROR values are negative errnos or tags; callers only need "negative". */
static int av_fail(int r, const char *what)
{
    return fail(r, "%s failed: %s", what, av_err2str(r));
}

/* ---- input through the source ---- */

static const char *media_kind(const AVCodecParameters *p)
{
    return p->codec_type == AVMEDIA_TYPE_VIDEO ? "video" : "audio";
}

static int check_size(int w, int h)
{
    if (w > LADDER_MAX_SIDE || h > LADDER_MAX_SIDE || (w > 0 && w < 2) || (h > 0 && h < 2))
        return fail(-EINVAL,
                    "the video is %dx%d: reeld takes 2 to %d pixels on a side, scale it first", w,
                    h, LADDER_MAX_SIDE);
    return 0;
}

/* Transcode bombs: pictures bigger than REELD_MAX_FRAME_PIXELS. */
static int check_pixels(const job *j, int w, int h)
{
    int64_t max = j->o->max_frame_pixels;
    if (max > 0 && (int64_t)w * h > max)
        return fail(-E2BIG,
                    "the video is %dx%d, %lld pixels a picture, more than the %lld that "
                    "REELD_MAX_FRAME_PIXELS allows: scale it down first",
                    w, h, (long long)w * h, (long long)max);
    return 0;
}

/* Transcode bombs: media longer than REELD_MAX_DURATION_SEC, by the header (`decoded` 0) or by
 * the timestamps decoded so far (a header that lies, or none). */
static int check_duration(const job *j, double sec, int decoded)
{
    int max = j->o->max_duration_sec;
    if (max <= 0 || sec <= max)
        return 0;
    if (decoded && j->duration > 0)
        return fail(-E2BIG,
                    "the input's media runs past %d s, the most REELD_MAX_DURATION_SEC allows, "
                    "though its header says %.0f s: cut it into parts",
                    max, j->duration);
    if (decoded)
        return fail(-E2BIG,
                    "the input's media runs past %d s, the most REELD_MAX_DURATION_SEC allows (its "
                    "header gives no length): cut it into parts",
                    max);
    return fail(-E2BIG,
                "the input lasts %.0f s, longer than the %d s REELD_MAX_DURATION_SEC allows: cut "
                "it into parts",
                sec, max);
}

static enum AVPixelFormat pick_cuda(AVCodecContext *c, const enum AVPixelFormat *fmts)
{
    for (const enum AVPixelFormat *p = fmts; *p != AV_PIX_FMT_NONE; p++)
        if (*p == AV_PIX_FMT_CUDA)
            return *p;
    return avcodec_default_get_format(c, fmts);
}

static int open_decoder(job *j, int index, AVCodecContext **out)
{
    AVStream *st = j->in->streams[index];
    const AVCodec *codec = avcodec_find_decoder(st->codecpar->codec_id);
    if (codec == NULL) {
        char tag[AV_FOURCC_MAX_STRING_SIZE] = "";
        av_fourcc_make_string(tag, st->codecpar->codec_tag);
        return fail(-ENOTSUP,
                    "the %s codec is not supported (%s, tag '%s'): convert it to H.264/AAC first",
                    media_kind(st->codecpar), avcodec_get_name(st->codecpar->codec_id), tag);
    }
    AVCodecContext *c = avcodec_alloc_context3(codec);
    if (c == NULL)
        return -ENOMEM;
    *out = c;
    int r = avcodec_parameters_to_context(c, st->codecpar);
    if (r < 0)
        return av_fail(r, "reading the codec parameters");
    c->pkt_timebase = st->time_base;
    /* On a small machine the rungs' encoders already fill every core: frame threads in the
     * decoder would only hold more pictures (memory) without adding speed. */
    c->thread_count = sysconf(_SC_NPROCESSORS_ONLN) > 4 ? 0 : 1;
    c->max_pixels = (int64_t)LADDER_MAX_SIDE * LADDER_MAX_SIDE;
    if (c->codec_type == AVMEDIA_TYPE_VIDEO && j->path != MEDIA_ENC_X264 &&
        j->o->cuda_device != NULL) {
        /* Decode on the GPU when NVDEC knows the codec; pick_cuda falls back otherwise. One
         * thread: frame threads each hold surfaces, and with the rungs' they pass NVDEC's 32.
         * (A codec NVDEC refuses then decodes on one CPU thread: rare, and still correct.) */
        c->hw_device_ctx = av_buffer_ref(j->o->cuda_device);
        c->get_format = pick_cuda;
        c->thread_count = 1;
        c->extra_hw_frames = RUNG_FRAMES + 2; /* pictures the rungs' queues hold on the GPU */
    }
    r = avcodec_open2(c, codec, NULL);
    if (r < 0)
        return fail(r,
                    "the %s stream cannot be decoded (%s): the input is corrupt or uses an "
                    "unsupported profile",
                    media_kind(st->codecpar), av_err2str(r));
    return 0;
}

static int open_input(job *j, media_source *src)
{
    if (src->size == 0)
        return fail(-EINVAL, "the input is empty (0 bytes): upload the file again");
    j->in_pb = source_avio(src);
    if (j->in_pb == NULL)
        return -ENOMEM;
    j->in = avformat_alloc_context();
    if (j->in == NULL)
        return -ENOMEM;
    j->in->pb = j->in_pb;
    j->in->format_whitelist = av_strdup(SOURCE_DEMUXERS);
    int r = avformat_open_input(&j->in, NULL, NULL, NULL);
    if (r < 0)
        return fail(r,
                    "the input is not audio or video reeld can read (%s): it is corrupt, truncated "
                    "or another kind of file",
                    av_err2str(r));
    for (unsigned i = 0; i < j->in->nb_streams; i++) {
        const AVCodecParameters *p = j->in->streams[i]->codecpar;
        if (p->codec_type == AVMEDIA_TYPE_VIDEO && check_size(p->width, p->height) < 0)
            return -EINVAL;
        if (p->codec_type == AVMEDIA_TYPE_VIDEO && (r = check_pixels(j, p->width, p->height)) < 0)
            return r;
    }
    r = avformat_find_stream_info(j->in, NULL);
    if (r < 0)
        return fail(r, "the input's streams cannot be read (%s): it is corrupt or truncated",
                    av_err2str(r));
    source_pick_streams(j->in, &j->vi, &j->ai);
    if (j->vi < 0 && j->ai < 0)
        return fail(-EINVAL, "the input has no audio or video stream");
    j->start = j->in->start_time != AV_NOPTS_VALUE ? j->in->start_time : 0;
    j->duration = j->in->duration > 0 ? (double)j->in->duration / AV_TIME_BASE : 0;
    if ((r = check_duration(j, j->duration, 0)) < 0)
        return r;
    if (j->vi >= 0) {
        AVStream *st = j->in->streams[j->vi];
        if (check_size(st->codecpar->width, st->codecpar->height) < 0)
            return -EINVAL;
        if ((r = check_pixels(j, st->codecpar->width, st->codecpar->height)) < 0)
            return r;
        j->rotation = source_rotation(st);
        j->frame_rate = source_frame_rate(j->in, st);
        j->frame_dur90 = av_rescale_q(1, av_inv_q(j->frame_rate), TB90);
        if ((r = open_decoder(j, j->vi, &j->vdec)) < 0)
            return r;
    }
    if (j->ai >= 0 && (r = open_decoder(j, j->ai, &j->adec)) < 0)
        return r;
    return 0;
}

/* ---- output: segments in memory ---- */

static int seg_write(void *opaque, uint8_t *buf, int n)
{
    variant *v = opaque;
    if (v->seg_len + (size_t)n > v->seg_cap) {
        size_t cap = v->seg_cap ? v->seg_cap : 262144;
        while (cap < v->seg_len + (size_t)n)
            cap *= 2;
        uint8_t *p = realloc(v->seg, cap);
        if (p == NULL) {
            v->io_failed = 1;
            return AVERROR(ENOMEM);
        }
        v->seg = p;
        v->seg_cap = cap;
    }
    memcpy(v->seg + v->seg_len, buf, (size_t)n);
    v->seg_len += (size_t)n;
    return n;
}

static int emit(job *j, const char *name, uint8_t *data, size_t len)
{
    int r = j->sink->object(j->sink->ctx, name, data, len);
    if (r < 0)
        return fail(r, "handing over %s failed: %s", name, strerror(-r));
    return 0;
}

/* Hands a finished object of the rung (a segment, the init segment) to the job's thread, which
 * alone talks to the sink. `data` becomes the queue's. */
static int queue_out(variant *v, const char *name, uint8_t *data, size_t len)
{
    outobj *o = calloc(1, sizeof(*o));
    if (o == NULL) {
        free(data);
        return -ENOMEM;
    }
    snprintf(o->name, sizeof(o->name), "%s", name);
    o->data = data;
    o->len = len;
    pthread_mutex_lock(&v->mu);
    if (v->out_tail != NULL)
        v->out_tail->next = o;
    else
        v->out_head = o;
    v->out_tail = o;
    pthread_mutex_unlock(&v->mu);
    return 0;
}

/* The download (opts->mp4, top rung): an MP4 muxer beside the segments' that gets the same
 * packets, into a temporary file, so the mov muxer can move its moov to the front at the end
 * (faststart reads the file back). Shifted to start at zero, with an edit list for the
 * B-frame delay, like any ffmpeg -c copy. */
static int open_download(job *j, variant *v)
{
    const char *dir = getenv("TMPDIR");
    snprintf(v->dl_path, sizeof(v->dl_path), "%s/reeld-download-XXXXXX.mp4",
             dir != NULL && dir[0] != '\0' && strlen(dir) < 200 ? dir : "/tmp");
    int fd = mkstemps(v->dl_path, 4);
    if (fd < 0) {
        int e = errno;
        v->dl_path[0] = '\0';
        return fail(-e, "cannot create a temporary file for the MP4 download: %s", strerror(e));
    }
    close(fd);
    int r = avformat_alloc_output_context2(&v->dl, NULL, "mp4", v->dl_path);
    if (r < 0)
        return fail(r, "creating the MP4 muxer failed: %s", av_err2str(r));
    if ((r = avio_open(&v->dl->pb, v->dl_path, AVIO_FLAG_WRITE)) < 0)
        return fail(r, "opening the MP4 download's file failed: %s", av_err2str(r));
    for (unsigned i = 0; i < v->mux->nb_streams; i++) {
        AVStream *st = avformat_new_stream(v->dl, NULL);
        if (st == NULL || avcodec_parameters_copy(st->codecpar, v->mux->streams[i]->codecpar) < 0)
            return -ENOMEM;
        st->codecpar->codec_tag = 0;
        st->time_base = TB90;
    }
    v->dl->avoid_negative_ts = AVFMT_AVOID_NEG_TS_MAKE_ZERO;
    AVDictionary *opts = NULL;
    av_dict_set(&opts, "movflags", "+faststart", 0);
    r = avformat_write_header(v->dl, &opts);
    av_dict_free(&opts);
    if (r < 0)
        return fail(r, "starting the MP4 muxer failed: %s", av_err2str(r));
    (void)j;
    return 0;
}

/* Rung side, at the end: the download's trailer (the moov, moved to the front). */
static int close_download(variant *v)
{
    if (v->dl == NULL)
        return 0;
    int r = av_write_trailer(v->dl);
    int c = avio_closep(&v->dl->pb);
    avformat_free_context(v->dl);
    v->dl = NULL;
    if (r < 0 || c < 0)
        return fail(r < 0 ? r : c, "finishing the MP4 download failed: %s",
                    av_err2str(r < 0 ? r : c));
    return 0;
}

static int open_mux(job *j, variant *v)
{
    v->fmp4 = j->o->fmp4;
    const char *kind = v->fmp4 ? "fMP4" : "MPEG-TS";
    int r = avformat_alloc_output_context2(&v->mux, NULL, v->fmp4 ? "mp4" : "mpegts", NULL);
    if (r < 0)
        return fail(r, "creating the %s muxer failed: %s", kind, av_err2str(r));
    uint8_t *buf = av_malloc(IO_BUF_SIZE);
    if (buf == NULL)
        return -ENOMEM;
    v->mux->pb = avio_alloc_context(buf, IO_BUF_SIZE, 1, v, NULL, seg_write, NULL);
    if (v->mux->pb == NULL) {
        av_free(buf);
        return -ENOMEM;
    }
    v->vst = v->ast = -1;
    if (v->video) {
        AVStream *st = avformat_new_stream(v->mux, NULL);
        if (st == NULL || avcodec_parameters_from_context(st->codecpar, v->enc) < 0)
            return -ENOMEM;
        st->time_base = TB90;
        v->vst = st->index;
    }
    if (j->aac.enc != NULL) {
        AVStream *st = avformat_new_stream(v->mux, NULL);
        if (st == NULL || avcodec_parameters_from_context(st->codecpar, j->aac.enc) < 0)
            return -ENOMEM;
        st->time_base = TB90;
        v->ast = st->index;
    }
    AVDictionary *opts = NULL;
    if (v->fmp4) {
        /* The header is ftyp and a moov without samples (the init segment); every cut flushes
         * one fragment whose offsets count from its moof, as CMAF asks. A fragment's tfdt is
         * our own timestamp (frag_discont, no edit list, no shift to zero: they are never
         * negative), so the rungs, the audio and the segments' EXTINF share one timeline as
         * in MPEG-TS. Shifted to zero, each track would start at 0 on its own and the AAC
         * priming and the B-frame delay would move audio against video. Not "+cmaf": its
         * negative composition offsets come back two frames late from FFmpeg's own reader. */
        av_dict_set(&opts, "movflags", "+frag_custom+empty_moov+default_base_moof+frag_discont", 0);
        av_dict_set(&opts, "use_editlist", "0", 0);
        v->mux->avoid_negative_ts = AVFMT_AVOID_NEG_TS_DISABLED;
    } else {
        av_dict_set(&opts, "mpegts_copyts", "1", 0); /* our timestamps, unshifted */
    }
    r = avformat_write_header(v->mux, &opts);
    av_dict_free(&opts);
    if (r < 0)
        return fail(r, "starting the %s muxer failed: %s", kind, av_err2str(r));
    if (j->o->mp4 && v->video && v == &j->v[0] && (r = open_download(j, v)) < 0)
        return r;
    if (v->fmp4) {
        avio_flush(v->mux->pb);
        if (v->io_failed)
            return fail(-ENOMEM, "out of memory collecting the init segment");
        char name[64];
        snprintf(name, sizeof(name), "%s/init.mp4", v->name);
        uint8_t *data = v->seg;
        size_t len = v->seg_len;
        v->seg = NULL;
        v->seg_len = v->seg_cap = 0;
        return queue_out(v, name, data, len);
    }
    return 0;
}

/* Writes one packet (a reference; `pkt` stays the caller's) stamped in 90 kHz. */
static int mux_write(variant *v, const AVPacket *pkt, int stream)
{
    AVPacket *p = v->mpkt;
    int r = av_packet_ref(p, pkt);
    if (r < 0)
        return r;
    p->stream_index = stream;
    av_packet_rescale_ts(p, TB90, v->mux->streams[stream]->time_base);
    r = av_write_frame(v->mux, p);
    av_packet_unref(p);
    if (r < 0 || v->io_failed)
        return av_fail(r < 0 ? r : AVERROR(ENOMEM), "muxing a segment");
    if (v->dl != NULL) {
        /* The same packet into the download: a reference, never a second encode. */
        if ((r = av_packet_ref(p, pkt)) < 0)
            return r;
        p->stream_index = stream;
        av_packet_rescale_ts(p, TB90, v->dl->streams[stream]->time_base);
        r = av_interleaved_write_frame(v->dl, p); /* takes the reference */
        if (r < 0)
            return av_fail(r, "muxing the MP4 download");
    }
    return 0;
}

/* Opens a segment at `pts`; it may end at the first boundary after pts + slack (90 kHz). */
static void open_segment(job *j, variant *v, int64_t pts, int64_t slack)
{
    int64_t rel = pts + slack - OUT_OFFSET;
    v->seg_open = 1;
    v->seg_start = pts;
    v->next_cut = (rel < 0 ? 1 : rel / j->seg90 + 1) * j->seg90;
}

/* Closes the open segment at `end` (90 kHz) and queues it for the job thread to hand over. */
static int cut_segment(variant *v, int64_t end)
{
    if (!v->seg_open)
        return 0;
    /* mpegts: flushes the PES packets it holds back; mp4 (frag_custom): writes the fragment,
     * one moof+mdat, of everything since the last cut. */
    av_write_frame(v->mux, NULL);
    avio_flush(v->mux->pb);
    if (v->io_failed)
        return fail(-ENOMEM, "out of memory collecting a segment");
    if (v->nsegs == v->segs_cap) {
        int cap = v->segs_cap ? v->segs_cap * 2 : 64;
        seginfo *s = realloc(v->segs, (size_t)cap * sizeof(*s));
        if (s == NULL)
            return -ENOMEM;
        v->segs = s;
        v->segs_cap = cap;
    }
    seginfo *s = &v->segs[v->nsegs];
    /* The first segment's timeline starts at zero: AAC priming before it is never played. */
    int64_t start = v->nsegs == 0 && v->seg_start < OUT_OFFSET ? OUT_OFFSET : v->seg_start;
    s->duration = (double)(end - start) / 90000.0;
    s->bytes = (int64_t)v->seg_len;
    v->bytes += s->bytes;
    char name[64];
    snprintf(name, sizeof(name), "%s/seg_%05d.%s", v->name, v->nsegs, v->fmp4 ? "m4s" : "ts");
    v->nsegs++;
    uint8_t *data = v->seg;
    size_t len = v->seg_len;
    v->seg = NULL;
    v->seg_len = v->seg_cap = 0;
    v->seg_open = 0;
    if (!v->fmp4)
        av_opt_set(v->mux->priv_data, "mpegts_flags", "+resend_headers", 0);
    return queue_out(v, name, data, len);
}

/* ---- audio ---- */

/* Queues an AAC packet for the rung's video to catch up with; `pkt` becomes the queue's. */
static int queue_audio(variant *v, AVPacket *pkt)
{
    if (v->aq_head > 0 && v->aq_head == v->aq_len)
        v->aq_head = v->aq_len = 0;
    if (v->aq_len == v->aq_cap) {
        if (v->aq_head > 0) {
            memmove(v->aq, v->aq + v->aq_head, (size_t)(v->aq_len - v->aq_head) * sizeof(*v->aq));
            v->aq_len -= v->aq_head;
            v->aq_head = 0;
        } else {
            if (v->aq_cap >= AUDIO_QUEUE_MAX)
                return -E2BIG;
            int cap = v->aq_cap ? v->aq_cap * 2 : 64;
            AVPacket **q = realloc(v->aq, (size_t)cap * sizeof(*q));
            if (q == NULL)
                return -ENOMEM;
            v->aq = q;
            v->aq_cap = cap;
        }
    }
    v->aq[v->aq_len++] = pkt;
    return 0;
}

/* Writes the queued audio packets that start before `limit` (90 kHz; INT64_MAX: all). */
static int flush_audio(variant *v, int64_t limit)
{
    while (v->aq_head < v->aq_len && v->aq[v->aq_head]->pts < limit) {
        AVPacket *p = v->aq[v->aq_head++];
        int r = mux_write(v, p, v->ast);
        av_packet_free(&p);
        if (r < 0)
            return r;
    }
    return 0;
}

static int push(job *j, variant *v, rung_item it);

/* An AAC packet (90 kHz): straight into the audio rung, to the video rungs' workers. */
static int audio_packet(job *j, AVPacket *pkt)
{
    for (int i = 0; i < j->nv; i++) {
        variant *v = &j->v[i];
        int r;
        if (!v->video) {
            int64_t rel = pkt->pts - OUT_OFFSET;
            /* Cut at the AAC frame nearest the boundary: off by half a frame at most. */
            if (v->seg_open && rel + pkt->duration / 2 >= v->next_cut &&
                (r = cut_segment(v, pkt->pts)) < 0)
                return r;
            if (!v->seg_open)
                open_segment(j, v, pkt->pts, pkt->duration / 2);
            if ((r = mux_write(v, pkt, v->ast)) < 0)
                return r;
            if (pkt->pts + pkt->duration > v->end)
                v->end = pkt->pts + pkt->duration;
            continue;
        }
        AVPacket *c = av_packet_clone(pkt);
        if (c == NULL)
            return -ENOMEM;
        if ((r = push(j, v, (rung_item){.audio = c})) < 0)
            return r;
    }
    return 0;
}

/* An AAC packet from the encoder (1/48000): onto the rungs' 90 kHz timeline, then to them. */
static int aac_packet(void *ctx, AVPacket *pkt)
{
    job *j = ctx;
    av_packet_rescale_ts(pkt, j->aac.enc->time_base, TB90);
    pkt->pts += OUT_OFFSET;
    pkt->dts += OUT_OFFSET;
    return audio_packet(j, pkt);
}

static int audio_frame(job *j, AVFrame *f)
{
    AVStream *st = j->in->streams[j->ai];
    if (j->aac.next == INT64_MIN) {
        int64_t ts = f->best_effort_timestamp != AV_NOPTS_VALUE ? f->best_effort_timestamp : 0;
        int64_t rel = av_rescale_q(ts, st->time_base, (AVRational){1, AAC_RATE}) -
                      av_rescale_q(j->start, AV_TIME_BASE_Q, (AVRational){1, AAC_RATE});
        j->aac.next = rel;
    }
    int r = check_duration(j, (double)j->aac.next / AAC_RATE, 1);
    if (r < 0)
        return r;
    if ((r = aac_write(&j->aac, (const uint8_t **)f->extended_data, f->nb_samples)) < 0)
        return r;
    j->aframes++;
    return 0;
}

/* ---- video ---- */

/* Opens the rung's video encoder for frames in `pix_fmt` on the job's path (NVENC from CUDA
 * frames: `hw_frames` is what they look like). The muxer is opened after, by the caller. */
static int open_video_encoder(job *j, variant *v, enum AVPixelFormat pix_fmt,
                              AVBufferRef *hw_frames)
{
    int nvenc = j->path == MEDIA_ENC_NVENC;
    const char *name = vpath_codec_name(j->path);
    const AVCodec *codec = avcodec_find_encoder_by_name(name);
    if (codec == NULL)
        return fail(-ENOSYS, "this FFmpeg has no %s encoder", name);
    AVCodecContext *c = v->enc = avcodec_alloc_context3(codec);
    if (c == NULL)
        return -ENOMEM;
    vpath_params p = {
        .width = v->rung.width,
        .height = v->rung.height,
        .video_kbps = v->rung.video_kbps,
        .maxrate_kbps = v->rung.maxrate_kbps,
        .frame_rate = j->frame_rate,
        .segment_sec = j->o->segment_sec,
        .fmp4 = j->o->fmp4,
        .threads = v->threads,
        .x264_preset = j->o->x264_preset,
        .pix_fmt = pix_fmt,
    };
    AVDictionary *opts = NULL;
    int r = vpath_encoder_setup(c, &opts, j->path, &p);
    if (r >= 0 && nvenc && pix_fmt == AV_PIX_FMT_CUDA)
        r = (c->hw_frames_ctx = av_buffer_ref(hw_frames)) != NULL ? 0 : -ENOMEM;
    else if (r >= 0 && nvenc) /* NV12 from system memory, onto the job's GPU */
        r = (c->hw_device_ctx = av_buffer_ref(j->o->cuda_device)) != NULL ? 0 : -ENOMEM;
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
        return fail(r, "opening the %s encoder for %s failed: %s%s%s", codec->name, v->name,
                    av_err2str(r), ffmsg[0] ? " (FFmpeg: " : "", ffmsg[0] ? ffmsg : "");
    return 0;
}

/* NVENC: the NV12 CUDA frames of the rung's size its encoder opens with, before any frame has
 * come (scale_cuda's own come later: NVENC takes any frames of that device and format). */
static int rung_frames(job *j, variant *v, AVBufferRef **out)
{
    AVBufferRef *ref = av_hwframe_ctx_alloc(j->o->cuda_device);
    if (ref == NULL)
        return -ENOMEM;
    AVHWFramesContext *fc = (AVHWFramesContext *)(void *)ref->data;
    fc->format = AV_PIX_FMT_CUDA;
    fc->sw_format = AV_PIX_FMT_NV12;
    fc->width = v->rung.width;
    fc->height = v->rung.height;
    int r = av_hwframe_ctx_init(ref);
    if (r < 0) {
        av_buffer_unref(&ref);
        return fail(vpath_gpu_status(r), "the GPU refused frames for %s: %s", v->name,
                    av_err2str(r));
    }
    *out = ref;
    return 0;
}

/* NVENC: every rung's encoder opens before the first packet is decoded, so a GPU out of
 * sessions shows here, not rungs into the job. If one fails, the job goes on hybrid (libx264
 * on the GPU's frames): the FFmpeg message that said why goes to the log. */
static int open_nvenc_rungs(job *j)
{
    int r = 0;
    for (int i = 0; i < j->nv && r == 0; i++) {
        variant *v = &j->v[i];
        if (!v->video)
            continue;
        enum AVPixelFormat fmt = vpath_rung_pix_fmt(MEDIA_ENC_NVENC, j->rotation);
        if (fmt == AV_PIX_FMT_CUDA && (r = rung_frames(j, v, &v->enc_frames)) < 0)
            break;
        r = open_video_encoder(j, v, fmt, v->enc_frames);
    }
    if (r == -ENOMEM || r == -ECANCELED)
        return r;
    if (r < 0) {
        media_encoder to = vpath_fallback(MEDIA_ENC_NVENC, j->o->cuda_device != NULL);
        log_warn("nvenc_fallback", KV_STR("reason", err_buf ? err_buf : ""),
                 KV_STR("path", vpath_name(to)));
        if (err_buf != NULL)
            err_buf[0] = '\0';
        for (int i = 0; i < j->nv; i++) {
            avcodec_free_context(&j->v[i].enc);
            av_buffer_unref(&j->v[i].enc_frames);
        }
        j->path = to;
        return 0;
    }
    for (int i = 0; i < j->nv; i++)
        if (j->v[i].video && (r = open_mux(j, &j->v[i])) < 0)
            return r;
    return 0;
}

/* Runs a filter chain between a buffer source shaped like `f` and a buffer sink. Filters whose
 * name has "hwupload" get the job's CUDA device. */
static int build_graph(job *j, const AVFrame *f, const char *chain, AVFilterGraph **graph,
                       AVFilterContext **src, AVFilterContext **sink)
{
    char args[256];
    AVFilterGraph *g = *graph = avfilter_graph_alloc();
    if (g == NULL)
        return -ENOMEM;
    snprintf(args, sizeof(args), "video_size=%dx%d:pix_fmt=%d:time_base=1/90000:pixel_aspect=1/1",
             f->width, f->height, f->format);
    int r = avfilter_graph_create_filter(src, avfilter_get_by_name("buffer"), "in", args, NULL, g);
    if (r >= 0 && f->hw_frames_ctx != NULL) {
        AVBufferSrcParameters *par = av_buffersrc_parameters_alloc();
        if (par == NULL)
            return -ENOMEM;
        par->hw_frames_ctx = f->hw_frames_ctx;
        r = av_buffersrc_parameters_set(*src, par);
        av_free(par);
    }
    if (r >= 0)
        r = avfilter_graph_create_filter(sink, avfilter_get_by_name("buffersink"), "out", NULL,
                                         NULL, g);
    if (r < 0)
        return r;
    AVFilterInOut *outs = avfilter_inout_alloc(), *ins = avfilter_inout_alloc();
    if (outs == NULL || ins == NULL) {
        avfilter_inout_free(&outs);
        avfilter_inout_free(&ins);
        return -ENOMEM;
    }
    outs->name = av_strdup("in");
    outs->filter_ctx = *src;
    ins->name = av_strdup("out");
    ins->filter_ctx = *sink;
    r = avfilter_graph_parse_ptr(g, chain, &ins, &outs, NULL);
    avfilter_inout_free(&outs);
    avfilter_inout_free(&ins);
    for (unsigned i = 0; r >= 0 && i < g->nb_filters; i++)
        if (strstr(g->filters[i]->filter->name, "hwupload") != NULL &&
            (g->filters[i]->hw_device_ctx = av_buffer_ref(j->o->cuda_device)) == NULL)
            r = AVERROR(ENOMEM);
    if (r >= 0)
        r = avfilter_graph_config(g, NULL);
    return r;
}

/* Sends `in` through a graph and takes the one frame out: 0 with it in `out`, 1 when the graph
 * holds it back, or an AVERROR. */
static int filter_one(AVFilterContext *src, AVFilterContext *sink, AVFrame *in, AVFrame *out)
{
    int r = av_buffersrc_add_frame_flags(src, in, AV_BUFFERSRC_FLAG_KEEP_REF);
    if (r < 0)
        return r;
    r = av_buffersink_get_frame(sink, out);
    return r == AVERROR(EAGAIN) ? 1 : r;
}

/* NVENC and hybrid: the rung's graph from CUDA frames (vpath_rung_chain): scale_cuda to NV12,
 * and for hybrid or a turned source the download and the turn of the small frame. */
static int open_graph(job *j, variant *v, const AVFrame *f)
{
    char chain[256];
    int r =
        vpath_rung_chain(chain, sizeof(chain), j->path, j->rotation, v->rung.width, v->rung.height);
    if (r >= 0)
        r = build_graph(j, f, chain, &v->graph, &v->gsrc, &v->gsink);
    if (r < 0)
        return fail(vpath_gpu_status(r), "building the GPU scaler (%s) failed: %s", chain,
                    av_err2str(r));
    return 0;
}

/* NVENC, a software-decoded picture: brought to the GPU once for every rung (8-bit 4:2:0 on
 * the way, which H.264 NVENC needs), into j->up_frame. 0, 1 when held back, or -errno. */
static int upload_frame(job *j, AVFrame *in)
{
    char chain[64];
    int r = 0;
    if (j->up == NULL && (r = vpath_upload_chain(chain, sizeof(chain))) >= 0)
        r = build_graph(j, in, chain, &j->up, &j->up_src, &j->up_sink);
    if (r >= 0) {
        av_frame_unref(j->up_frame);
        r = filter_one(j->up_src, j->up_sink, in, j->up_frame);
    }
    if (r < 0)
        return fail(vpath_gpu_status(r), "uploading a picture to the GPU failed: %s",
                    av_err2str(r));
    if (r == 0) {
        j->up_frame->pts = in->pts;
        j->up_frame->pict_type = in->pict_type;
    }
    return r;
}

/* A yuv420p picture from the rung's pool (its worker's), or of its own when `pooled` is 0. */
static AVFrame *pool_frame(variant *v, int pooled, int w, int h)
{
    if (!pooled)
        return scaler_frame(w, h);
    int size = av_image_get_buffer_size(AV_PIX_FMT_YUV420P, w, h, SCALER_ALIGN);
    if (v->pool == NULL) {
        int other = av_image_get_buffer_size(AV_PIX_FMT_YUV420P, h, w, SCALER_ALIGN);
        v->pool = av_buffer_pool_init((size_t)FFMAX(size, other), NULL);
        if (v->pool == NULL)
            return NULL;
    }
    AVFrame *f = av_frame_alloc();
    if (f == NULL)
        return NULL;
    f->buf[0] = av_buffer_pool_get(v->pool);
    if (f->buf[0] == NULL) {
        av_frame_free(&f);
        return NULL;
    }
    av_image_fill_arrays(f->data, f->linesize, f->buf[0]->data, AV_PIX_FMT_YUV420P, w, h,
                         SCALER_ALIGN);
    f->width = w;
    f->height = h;
    f->format = AV_PIX_FMT_YUV420P;
    return f;
}

static void rotate_plane(const uint8_t *s, int sls, int w, int h, uint8_t *d, int dls, int deg)
{
    for (int y = 0; y < h; y++) {
        const uint8_t *row = s + (ptrdiff_t)y * sls;
        if (deg == 90)
            for (int x = 0; x < w; x++)
                d[(ptrdiff_t)x * dls + (h - 1 - y)] = row[x];
        else if (deg == 180)
            for (int x = 0; x < w; x++)
                d[(ptrdiff_t)(h - 1 - y) * dls + (w - 1 - x)] = row[x];
        else
            for (int x = 0; x < w; x++)
                d[(ptrdiff_t)(w - 1 - x) * dls + y] = row[x];
    }
}

/* Scales `in` to the rung (and turns it `rotation` degrees upright) into a picture from the
 * rung's pool when `pooled`; *out is the caller's. */
static int scale_frame(variant *v, int rotation, int second, int pooled, scaler *sc,
                       const AVFrame *in, AVFrame **out)
{
    int turned = rotation == 90 || rotation == 270;
    int sw = turned ? v->rung.height : v->rung.width, sh = turned ? v->rung.width : v->rung.height;
    /* A `second` scaling (cascade) with bicubic's 4 taps lost up to 1 dB of PSNR against the
     * source (testsrc2, 480p → 360p); lanczos keeps the rung at or above bicubic from the
     * source (bench/cascade_psnr). A first scaling stays bicubic. */
    AVFrame *f = pool_frame(v, pooled, sw, sh);
    if (f == NULL)
        return -ENOMEM;
    int r = scaler_run(sc, in, f, second ? SCALER_LANCZOS : SCALER_BICUBIC);
    if (r < 0) {
        av_frame_free(&f);
        return fail(-EINVAL, "cannot scale %dx%d %s video", in->width, in->height,
                    av_get_pix_fmt_name(in->format));
    }
    if (rotation != 0) {
        AVFrame *up = pool_frame(v, pooled, v->rung.width, v->rung.height);
        if (up == NULL) {
            av_frame_free(&f);
            return -ENOMEM;
        }
        for (int p = 0; p < 3; p++) {
            int pw = p ? (sw + 1) / 2 : sw, ph = p ? (sh + 1) / 2 : sh;
            rotate_plane(f->data[p], f->linesize[p], pw, ph, up->data[p], up->linesize[p],
                         rotation);
        }
        av_frame_free(&f);
        f = up;
    }
    *out = f;
    return 0;
}

static int mux_video(job *j, variant *v, const AVPacket *pkt)
{
    int r;
    int key = pkt->flags & AV_PKT_FLAG_KEY;
    if (key && v->codecs[0] == '\0') {
        char avc[16];
        /* The SPS is in the keyframe (MPEG-TS), or only in the encoder's global header (fMP4). */
        if (hls_avc1_codec(pkt->data, (size_t)pkt->size, avc, sizeof(avc)) < 0 &&
            (v->enc->extradata == NULL ||
             hls_avc1_codec(v->enc->extradata, (size_t)v->enc->extradata_size, avc, sizeof(avc)) <
                 0))
            snprintf(avc, sizeof(avc), "avc1.640028");
        snprintf(v->codecs, sizeof(v->codecs), "%s%s", avc, j->aac.enc ? ",mp4a.40.2" : "");
    }
    if (v->seg_open && key && pkt->pts - OUT_OFFSET >= v->next_cut) {
        if ((r = flush_audio(v, pkt->pts)) < 0 || (r = cut_segment(v, pkt->pts)) < 0)
            return r;
    }
    if (!v->seg_open)
        open_segment(j, v, pkt->pts, 0);
    if ((r = flush_audio(v, pkt->dts + 1)) < 0 || (r = mux_write(v, pkt, v->vst)) < 0)
        return r;
    if (pkt->pts + j->frame_dur90 > v->end)
        v->end = pkt->pts + j->frame_dur90;
    return 0;
}

static int drain_video(job *j, variant *v)
{
    int r;
    while ((r = avcodec_receive_packet(v->enc, v->pkt)) == 0) {
        if (v->pkt->duration <= 0)
            v->pkt->duration = j->frame_dur90; /* mp4 sizes a fragment's last sample by it */
        r = mux_video(j, v, v->pkt);
        av_packet_unref(v->pkt);
        if (r < 0)
            return r;
    }
    return r == AVERROR(EAGAIN) || r == AVERROR_EOF ? 0 : av_fail(r, "video encoding");
}

static int encode_video(job *j, variant *v, AVFrame *f)
{
    int r = avcodec_send_frame(v->enc, f);
    if (r < 0)
        return av_fail(r, "video encoding");
    return drain_video(j, v);
}

/* Job side: the poster's picture, scaled to the top rung, upright and full range (JPEG's; one
 * more cheap conversion, once, from the video's limited range), kept for encode_poster. */
static int take_poster(job *j, const AVFrame *in)
{
    const AVFrame *src = in;
    if (in->format == AV_PIX_FMT_CUDA) {
        av_frame_unref(j->sw_frame);
        if (av_hwframe_transfer_data(j->sw_frame, in, 0) < 0)
            return 0; /* no poster is better than no ladder */
        src = j->sw_frame;
    }
    scaler sc = {.impl = SCALER_SWSCALE}; /* one picture: no zimg graph to build and check */
    AVFrame *pic = NULL;
    int r = scale_frame(&j->v[0], j->rotation, 0, 0, &sc, src, &pic);
    scaler_free(&sc);
    av_frame_unref(j->sw_frame);
    if (r < 0)
        return r;
    AVFrame *full = av_frame_alloc();
    struct SwsContext *sws = NULL;
    if (full != NULL) {
        full->width = pic->width;
        full->height = pic->height;
        full->format = AV_PIX_FMT_YUVJ420P;
        sws = sws_getContext(pic->width, pic->height, AV_PIX_FMT_YUV420P, pic->width, pic->height,
                             AV_PIX_FMT_YUVJ420P, SWS_BICUBIC, NULL, NULL, NULL);
    }
    if (sws != NULL && av_frame_get_buffer(full, 0) >= 0) {
        sws_scale(sws, (const uint8_t *const *)pic->data, pic->linesize, 0, pic->height, full->data,
                  full->linesize);
        j->poster_pic = full;
        full = NULL;
        j->poster_yuv = pic;
        pic = NULL;
    }
    sws_freeContext(sws);
    av_frame_free(&full);
    av_frame_free(&pic);
    return 0;
}

/* One picture as one image (JPEG, WebP), malloc'd into *out. 0, or a negative AVERROR. */
/* Encodes the poster's JPEG once the rungs' encoders are gone: the MJPEG encoder's tables
 * (12 MB at 1080p) would otherwise add to the job's peak memory, taken a second into it. */
static void encode_poster(job *j)
{
    const AVCodec *codec = avcodec_find_encoder(AV_CODEC_ID_MJPEG);
    if (j->poster_pic != NULL && codec != NULL)
        media_encode_image(codec, j->poster_pic, AV_PIX_FMT_YUVJ420P, 3, &j->poster,
                           &j->poster_len);
    /* poster.webp only where this FFmpeg was built with libwebp: asked at run time, and
     * without it there is simply no WebP. */
    const AVCodec *webp = avcodec_find_encoder_by_name("libwebp");
    if (j->poster_yuv != NULL && webp != NULL) {
        int r = media_encode_image(webp, j->poster_yuv, AV_PIX_FMT_YUV420P, 0, &j->poster_webp,
                                   &j->poster_webp_len);
        if (r < 0)
            log_warn("poster_webp_failed", KV_STR("why", av_err2str(r)));
    }
    av_frame_free(&j->poster_pic);
    av_frame_free(&j->poster_yuv);
}

/* ---- the storyboard ---- */

/* The sprite of the tiles so far as one JPEG, "sprite_<s>.jpg", handed to the sink now: only
 * as many rows (and columns) as it holds tiles. */
static int flush_sprite(job *j)
{
    if (j->sb_sprite == NULL)
        return 0;
    int s = (j->sb_n - 1) / STORYBOARD_PER_SPRITE, w, h;
    storyboard_sprite_size(s, j->sb_n, j->sb_tw, j->sb_th, &w, &h);
    AVFrame *view = av_frame_clone(j->sb_sprite);
    av_frame_free(&j->sb_sprite);
    if (view == NULL)
        return -ENOMEM;
    view->width = w;
    view->height = h;
    uint8_t *data = NULL;
    size_t len = 0;
    const AVCodec *codec = avcodec_find_encoder(AV_CODEC_ID_MJPEG);
    int r = codec != NULL ? media_encode_image(codec, view, AV_PIX_FMT_YUVJ420P, 5, &data, &len)
                          : AVERROR_ENCODER_NOT_FOUND;
    av_frame_free(&view);
    if (r < 0)
        return av_fail(r, "encoding a storyboard sprite");
    char name[32];
    snprintf(name, sizeof(name), "sprite_%d.jpg", s);
    return emit(j, name, data, len);
}

/* Job side: a tile from the picture just decoded (the same decode the rungs get), scaled,
 * turned upright and put in its place in the sprite; a full sprite goes out at once. A GPU
 * picture is copied down first; if it cannot be, the job goes on without a storyboard. */
static int take_tile(job *j, const AVFrame *in, int64_t slot90)
{
    const AVFrame *src = in;
    if (in->format == AV_PIX_FMT_CUDA) {
        av_frame_unref(j->sw_frame);
        int r = av_hwframe_transfer_data(j->sw_frame, in, 0);
        if (r < 0) {
            log_warn("storyboard_skipped", KV_STR("why", "a GPU picture could not be copied down"),
                     KV_STR("error", av_err2str(r)));
            j->sb_off = 1;
            return 0;
        }
        src = j->sw_frame;
    }
    int turned = j->rotation == 90 || j->rotation == 270;
    int sw = turned ? j->sb_th : j->sb_tw, sh = turned ? j->sb_tw : j->sb_th;
    j->sb_sws = sws_getCachedContext(j->sb_sws, src->width, src->height, src->format, sw, sh,
                                     AV_PIX_FMT_YUVJ420P, SWS_BICUBIC, NULL, NULL, NULL);
    if (j->sb_sws == NULL) {
        log_warn("storyboard_skipped", KV_STR("why", "the picture's format cannot be scaled"),
                 KV_STR("format", av_get_pix_fmt_name(src->format)));
        j->sb_off = 1;
        return 0;
    }
    if (j->sb_tile == NULL) {
        j->sb_tile = av_frame_alloc();
        if (j->sb_tile == NULL)
            return -ENOMEM;
        j->sb_tile->width = sw;
        j->sb_tile->height = sh;
        j->sb_tile->format = AV_PIX_FMT_YUVJ420P;
        if (av_frame_get_buffer(j->sb_tile, 0) < 0)
            return -ENOMEM;
    }
    sws_scale(j->sb_sws, (const uint8_t *const *)src->data, src->linesize, 0, src->height,
              j->sb_tile->data, j->sb_tile->linesize);
    av_frame_unref(j->sw_frame);
    if (j->sb_n == j->sb_cap) {
        int cap = j->sb_cap ? j->sb_cap * 2 : 256;
        int64_t *ms = realloc(j->sb_ms, (size_t)cap * sizeof(*ms));
        if (ms == NULL)
            return -ENOMEM;
        j->sb_ms = ms;
        j->sb_cap = cap;
    }
    if (j->sb_sprite == NULL) {
        AVFrame *sp = av_frame_alloc();
        if (sp == NULL)
            return -ENOMEM;
        sp->width = STORYBOARD_COLS * j->sb_tw;
        sp->height = STORYBOARD_ROWS * j->sb_th;
        sp->format = AV_PIX_FMT_YUVJ420P;
        if (av_frame_get_buffer(sp, 0) < 0) {
            av_frame_free(&sp);
            return -ENOMEM;
        }
        for (int p = 0; p < 3; p++) /* black, full range */
            memset(sp->data[p], p ? 128 : 0,
                   (size_t)sp->linesize[p] * (p ? sp->height / 2 : sp->height));
        j->sb_sprite = sp;
    }
    int s, x, y;
    storyboard_place(j->sb_n, j->sb_tw, j->sb_th, &s, &x, &y);
    for (int p = 0; p < 3; p++) {
        int k = p ? 1 : 0; /* chroma planes are half size both ways */
        int pw = sw >> k, ph = sh >> k;
        uint8_t *d =
            j->sb_sprite->data[p] + (ptrdiff_t)(y >> k) * j->sb_sprite->linesize[p] + (x >> k);
        const uint8_t *t = j->sb_tile->data[p];
        if (j->rotation == 0)
            for (int row = 0; row < ph; row++)
                memcpy(d + (ptrdiff_t)row * j->sb_sprite->linesize[p],
                       t + (ptrdiff_t)row * j->sb_tile->linesize[p], (size_t)pw);
        else
            rotate_plane(t, j->sb_tile->linesize[p], pw, ph, d, j->sb_sprite->linesize[p],
                         j->rotation);
    }
    j->sb_ms[j->sb_n++] = slot90 / 90;
    if (j->sb_n % STORYBOARD_PER_SPRITE == 0)
        return flush_sprite(j);
    return 0;
}

/* The last sprite and storyboard.vtt, once the video's end is known. */
static int finish_storyboard(job *j)
{
    if (j->sb_n == 0)
        return 0;
    int r = flush_sprite(j);
    if (r < 0)
        return r;
    int64_t end_ms = (j->last_t + j->frame_dur90) / 90;
    if (end_ms <= j->sb_ms[j->sb_n - 1])
        end_ms = j->sb_ms[j->sb_n - 1] + 1;
    size_t cap = 64 + (size_t)j->sb_n * 96;
    char *text = malloc(cap);
    if (text == NULL)
        return -ENOMEM;
    int len = storyboard_vtt(text, cap, j->sb_ms, j->sb_n, end_ms, j->sb_tw, j->sb_th);
    if (len < 0) {
        free(text);
        return fail(len, "the storyboard's VTT could not be written");
    }
    return emit(j, "storyboard.vtt", (uint8_t *)text, (size_t)len);
}

/* Worker side, cascade: gives the rung below a picture of this one (or, `it` empty, the end,
 * after the last one), waiting while its queue is full: that rung drains it by itself, never
 * waiting on this one. A rung that has ended takes nothing more (its own failure is what the
 * job reports). */
static int hand_down(job *j, variant *to, rung_item it)
{
    pthread_mutex_lock(&to->mu);
    while (!to->finished && !atomic_load(&j->abort) &&
           (to->q_len == RUNG_QUEUE || (it.frame != NULL && to->q_frames >= RUNG_FRAMES)))
        pthread_cond_wait(&to->cv, &to->mu);
    if (to->finished || atomic_load(&j->abort)) {
        pthread_mutex_unlock(&to->mu);
        av_frame_free(&it.frame);
        return atomic_load(&j->abort) ? -ECANCELED : 0;
    }
    to->q[(to->q_head + to->q_len) % RUNG_QUEUE] = it;
    to->q_len++;
    to->q_frames += it.frame != NULL;
    pthread_cond_broadcast(&to->cv);
    pthread_mutex_unlock(&to->mu);
    return 0;
}

/* Worker side: scales (or hands the GPU graph) one stamped picture and encodes it. */
static int rung_video(job *j, variant *v, AVFrame *in, int scaled)
{
    int64_t t = in->pts;
    int force = in->pict_type == AV_PICTURE_TYPE_I;
    AVFrame *f = NULL;
    int r;
    if (in->format == AV_PIX_FMT_CUDA) {
        /* NVENC (its encoder opened with the job) or hybrid (opened here, at the first frame
         * its graph gives). NVENC's frames all come here: software-decoded ones uploaded. */
        if (v->graph == NULL && (r = open_graph(j, v, in)) < 0)
            return r;
        f = av_frame_alloc();
        if (f == NULL)
            return -ENOMEM;
        if ((r = filter_one(v->gsrc, v->gsink, in, f)) != 0) {
            av_frame_free(&f);
            return r > 0 ? 0 : fail(vpath_gpu_status(r), "GPU scaling failed: %s", av_err2str(r));
        }
        if (v->enc == NULL &&
            ((r = open_video_encoder(j, v, (enum AVPixelFormat)f->format, NULL)) < 0 ||
             (r = open_mux(j, v)) < 0)) {
            av_frame_free(&f);
            return r;
        }
    } else {
        if (v->enc == NULL && ((r = open_video_encoder(j, v, AV_PIX_FMT_YUV420P, NULL)) < 0 ||
                               (r = open_mux(j, v)) < 0))
            return r;
        int rotation = v->fed ? 0 : j->rotation;
        if (rotation == 0 && in->format == AV_PIX_FMT_YUV420P && in->width == v->rung.width &&
            in->height == v->rung.height) {
            f = av_frame_clone(in); /* the decoded picture is this rung: encode it as it is */
            if (f == NULL)
                return -ENOMEM;
        } else if ((r = scale_frame(v, rotation, scaled, 1, &v->sc, in, &f)) < 0) {
            return r;
        } else {
            scaled = 1;
        }
        if (v->feeds != NULL) {
            AVFrame *next = av_frame_clone(f);
            if (next == NULL) {
                av_frame_free(&f);
                return -ENOMEM;
            }
            next->pts = t;
            next->pict_type = in->pict_type;
            if ((r = hand_down(j, v->feeds,
                               (rung_item){.frame = next, .scaled = (uint8_t)scaled})) < 0) {
                av_frame_free(&f);
                return r;
            }
        }
    }
    f->pts = t + OUT_OFFSET;
    f->pict_type = force ? AV_PICTURE_TYPE_I : AV_PICTURE_TYPE_NONE;
    r = encode_video(j, v, f);
    av_frame_free(&f);
    return r < 0 && j->path == MEDIA_ENC_NVENC ? vpath_gpu_status(r) : r;
}

/* Worker side, at the end of the input: drains the encoder, closes the last segment. */
static int rung_finish(job *j, variant *v)
{
    int r;
    if (v->mux == NULL)
        return 0; /* never got a picture: nothing to close */
    if (v->enc != NULL) {
        if ((r = avcodec_send_frame(v->enc, NULL)) < 0)
            return av_fail(r, "video encoding");
        if ((r = drain_video(j, v)) < 0)
            return r;
    }
    if ((r = flush_audio(v, INT64_MAX)) < 0)
        return r;
    if ((r = cut_segment(v, v->end)) < 0 || (r = close_download(v)) < 0)
        return r;
    /* No picture comes after this: the encoder's frames (libx264's are most of the job's
     * memory) go now, so the poster's encoder after the last rung never adds to the peak. */
    avcodec_free_context(&v->enc);
    av_buffer_unref(&v->enc_frames);
    scaler_free(&v->sc);
    avfilter_graph_free(&v->graph);
    av_buffer_pool_uninit(&v->pool);
    return 0;
}

/* Worker side: the top rung's libx264 paces a software ladder (half the job's CPU at 1080p).
 * At one priority the smaller rungs finish each picture early and wait for the next, which
 * waits for room in the top rung's queue; whenever the top rung's encoder is in a part that
 * runs on one thread (sliced threads run the lookahead on the caller's), a core idles: 1.84
 * of two cores busy. A few nice steps lower, the smaller rungs run behind the top one, mostly
 * in those gaps: 1.90-1.92 busy, for the same CPU time and memory (their queues are as short).
 * Linux keeps a nice value per thread; libx264's threads, started by this one when its encoder
 * opens, inherit it. Best effort: a failure leaves the old schedule. */
static void run_behind(void)
{
    id_t tid = (id_t)gettid();
    errno = 0;
    int nice = getpriority(PRIO_PROCESS, tid);
    if (nice != -1 || errno == 0)
        (void)setpriority(PRIO_PROCESS, tid, FFMIN(nice + RUNG_BEHIND, 19));
}

static void *rung_main(void *arg)
{
    variant *v = arg;
    job *j = v->j;
    err_buf = v->err;
    err_len = sizeof(v->err);
    int r = 0;
    if (v->behind)
        run_behind();
    for (;;) {
        pthread_mutex_lock(&v->mu);
        while (v->q_len == 0 && !atomic_load(&j->abort))
            pthread_cond_wait(&v->cv, &v->mu);
        if (atomic_load(&j->abort)) {
            pthread_mutex_unlock(&v->mu);
            r = -ECANCELED;
            break;
        }
        rung_item it = v->q[v->q_head];
        v->q_head = (v->q_head + 1) % RUNG_QUEUE;
        v->q_len--;
        v->q_frames -= it.frame != NULL;
        pthread_cond_broadcast(&v->cv);
        pthread_mutex_unlock(&v->mu);
        if (it.frame != NULL) {
            r = rung_video(j, v, it.frame, it.scaled);
            av_frame_free(&it.frame);
        } else if (it.audio != NULL) {
            r = queue_audio(v, it.audio);
            if (r < 0)
                av_packet_free(&it.audio);
            if (r == -E2BIG)
                r = fail(r, "the input's audio runs far ahead of its video: remux it first");
        } else {
            r = rung_finish(j, v);
            /* The rung below has had every picture: now its end (even after a failure here,
             * so it stops waiting). */
            if (v->feeds != NULL)
                hand_down(j, v->feeds, (rung_item){0});
            break;
        }
        if (r < 0)
            break;
    }
    pthread_mutex_lock(&v->mu);
    v->status = r;
    v->finished = 1;
    pthread_cond_broadcast(&v->cv);
    pthread_mutex_unlock(&v->mu);
    return NULL;
}

static int cancelled(job *j)
{
    return j->sink->cancelled != NULL && j->sink->cancelled(j->sink->ctx);
}

/* Hands the segments the workers have closed to the sink, in each rung's order. */
static int drain_outputs(job *j)
{
    int r = 0;
    for (int i = 0; i < j->nv; i++) {
        variant *v = &j->v[i];
        pthread_mutex_lock(&v->mu);
        outobj *o = v->out_head;
        v->out_head = v->out_tail = NULL;
        pthread_mutex_unlock(&v->mu);
        while (o != NULL) {
            outobj *next = o->next;
            if (r == 0)
                r = emit(j, o->name, o->data, o->len);
            else
                free(o->data);
            free(o);
            o = next;
        }
    }
    return r;
}

/* The worker's failure as the job's: its message becomes the job's. */
static int rung_failed(variant *v)
{
    return v->status == -ECANCELED ? -ECANCELED : fail(v->status, "%s", v->err);
}

/* Gives a rung an item, waiting while its queue is full (handing over segments and noticing a
 * cancel meanwhile). The item is the rung's afterwards, or freed on failure. */
static int push(job *j, variant *v, rung_item it)
{
    int r = 0;
    for (;;) {
        pthread_mutex_lock(&v->mu);
        if (v->finished) {
            pthread_mutex_unlock(&v->mu);
            r = rung_failed(v);
            break;
        }
        if (v->q_len < RUNG_QUEUE && (it.frame == NULL || v->q_frames < RUNG_FRAMES)) {
            v->q[(v->q_head + v->q_len) % RUNG_QUEUE] = it;
            v->q_len++;
            v->q_frames += it.frame != NULL;
            pthread_cond_broadcast(&v->cv);
            pthread_mutex_unlock(&v->mu);
            return 0;
        }
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_nsec += 20000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&v->cv, &v->mu, &until);
        pthread_mutex_unlock(&v->mu);
        if (cancelled(j)) {
            r = -ECANCELED;
            break;
        }
        if ((r = drain_outputs(j)) < 0)
            break;
    }
    av_frame_free(&it.frame);
    av_packet_free(&it.audio);
    return r;
}

/* Ends every worker: with the end item and a wait for the last segments when `finish`, at once
 * (abort) otherwise. Returns the first worker failure, or 0. */
static int stop_rungs(job *j, int finish)
{
    int r = 0;
    for (int i = 0; finish && r == 0 && i < j->nv; i++)
        if (j->v[i].running && !j->v[i].fed)
            r = push(j, &j->v[i], (rung_item){0}); /* a fed rung's comes from the one above */
    for (int i = 0; finish && r == 0 && i < j->nv; i++) {
        variant *v = &j->v[i];
        while (r == 0 && v->running) {
            pthread_mutex_lock(&v->mu);
            int done = v->finished;
            if (!done) {
                struct timespec until;
                clock_gettime(CLOCK_REALTIME, &until);
                until.tv_nsec += 20000000L;
                if (until.tv_nsec >= 1000000000L) {
                    until.tv_sec++;
                    until.tv_nsec -= 1000000000L;
                }
                pthread_cond_timedwait(&v->cv, &v->mu, &until);
            }
            pthread_mutex_unlock(&v->mu);
            if (done) {
                pthread_join(v->thread, NULL);
                v->running = 0;
                if (v->status < 0)
                    r = rung_failed(v);
            } else if (cancelled(j)) {
                r = -ECANCELED;
            } else {
                r = drain_outputs(j);
            }
        }
    }
    atomic_store(&j->abort, 1);
    for (int i = 0; i < j->nv; i++) {
        variant *v = &j->v[i];
        if (!v->running)
            continue;
        pthread_mutex_lock(&v->mu);
        pthread_cond_broadcast(&v->cv);
        pthread_mutex_unlock(&v->mu);
        pthread_join(v->thread, NULL);
        v->running = 0;
    }
    return r;
}

/* Job side: stamps a decoded picture (time, forced keyframe) and gives every rung a
 * reference to it; the poster is taken here too. */
static int video_frame(job *j, AVFrame *in)
{
    AVStream *st = j->in->streams[j->vi];
    int64_t ts = in->best_effort_timestamp;
    int64_t t = ts == AV_NOPTS_VALUE ? j->last_t + j->frame_dur90
                                     : av_rescale_q(ts, st->time_base, TB90) -
                                           av_rescale_q(j->start, AV_TIME_BASE_Q, TB90);
    if (j->vframes > 0 && t <= j->last_t)
        return 0; /* a repeated or backward timestamp: the encoders need them increasing */
    if (check_size(in->width, in->height) < 0)
        return -EINVAL;
    int r;
    if ((r = check_pixels(j, in->width, in->height)) < 0 ||
        (r = check_duration(j, (double)t / 90000, 1)) < 0)
        return r;
    j->last_t = t;
    if (j->vframes++ == 0 && j->path != MEDIA_ENC_X264) {
        /* On a GPU path, where the pictures are decoded: NVDEC, or the CPU when it does not
         * know the codec or profile (4:4:4, ProRes, AV1 through libdav1d): what a slow job's
         * operator asks first. */
        int gpu = in->format == AV_PIX_FMT_CUDA;
        enum AVPixelFormat pf =
            gpu && in->hw_frames_ctx != NULL
                ? ((AVHWFramesContext *)(void *)in->hw_frames_ctx->data)->sw_format
                : (enum AVPixelFormat)in->format;
        const char *pn = av_get_pix_fmt_name(pf);
        log_info("video_decode", KV_STR("decoder", j->vdec->codec->name),
                 KV_STR("on", gpu ? "nvdec" : "cpu"), KV_STR("format", pn != NULL ? pn : "?"),
                 KV_INT("width", in->width), KV_INT("height", in->height));
    }
    int force = t >= j->next_kf;
    if (force)
        j->next_kf = (t < 0 ? 1 : t / j->seg90 + 1) * j->seg90;
    in->pts = t;
    in->pict_type = force ? AV_PICTURE_TYPE_I : AV_PICTURE_TYPE_NONE;
    const AVFrame *give = in;
    if (j->path == MEDIA_ENC_NVENC && in->format != AV_PIX_FMT_CUDA) {
        if ((r = upload_frame(j, in)) < 0)
            return r;
        give = r == 0 ? j->up_frame : NULL; /* an upload holds nothing back: never NULL */
    }
    for (int i = 0; give != NULL && i < j->nv; i++) {
        if (j->v[i].fed)
            continue; /* scaled from the rung above */
        AVFrame *f = av_frame_clone(give);
        if (f == NULL)
            return -ENOMEM;
        if ((r = push(j, &j->v[i], (rung_item){.frame = f})) < 0)
            return r;
    }
    av_frame_unref(j->up_frame);
    if (!j->sb_off && t >= j->sb_next) {
        /* The slot this picture falls in (a gap in the video skips slots: the tile before
         * covers them). The first tile stands for the start, whenever its picture is. */
        int64_t slot = t < 0 ? 0 : t / j->sb_step90 * j->sb_step90;
        j->sb_next = slot + j->sb_step90;
        if ((r = take_tile(j, in, j->sb_n == 0 ? 0 : slot)) < 0)
            return r;
    }
    if (!j->poster_tried && t >= j->poster_at) {
        j->poster_tried = 1;
        return take_poster(j, in);
    }
    return 0;
}

/* ---- the job ---- */

static void progress(job *j, int force)
{
    uint64_t now = rd_now_ns();
    if (j->sink->progress == NULL || (!force && now - j->last_progress_ns < 1000000000ull))
        return;
    j->last_progress_ns = now;
    double wall = (double)(now - j->t0_ns) / 1e9;
    transcode_progress p = {0};
    p.frames = j->vframes;
    p.media_sec = j->vi >= 0 ? (double)j->last_t / 90000.0
                             : (j->aac.next == INT64_MIN ? 0 : (double)j->aac.next / AAC_RATE);
    if (p.media_sec < 0)
        p.media_sec = 0;
    p.percent = j->duration > 0 ? FFMIN(100.0, 100.0 * p.media_sec / j->duration) : 0;
    p.fps = wall > 0 ? (double)j->vframes / wall : 0;
    p.speed = wall > 0 ? p.media_sec / wall : 0;
    j->sink->progress(j->sink->ctx, &p);
}

static int decode(job *j, AVCodecContext *dec, const AVPacket *pkt)
{
    int r = avcodec_send_packet(dec, pkt);
    if (r == AVERROR_INVALIDDATA) {
        j->decode_errors++;
        return 0; /* a damaged packet: conceal and go on; a file with no good frame fails */
    }
    if (r < 0 && r != AVERROR_EOF)
        return av_fail(r, "decoding");
    for (;;) {
        r = avcodec_receive_frame(dec, j->frame);
        if (r == AVERROR(EAGAIN) || r == AVERROR_EOF)
            return 0;
        if (r == AVERROR_INVALIDDATA) {
            j->decode_errors++;
            continue;
        }
        if (r < 0)
            return av_fail(r, "decoding");
        r = dec == j->vdec ? video_frame(j, j->frame) : audio_frame(j, j->frame);
        av_frame_unref(j->frame);
        if (r < 0)
            return r;
    }
}

static int setup_ladder(job *j, transcode_result *res)
{
    const char *preset = ladder_preset(j->o->preset, j->path == MEDIA_ENC_NVENC);
    snprintf(res->preset, sizeof(res->preset), "%s", preset);
    ladder_rung rungs[LADDER_MAX_RUNGS];
    int n = 1;
    if (j->vi >= 0) {
        const AVCodecParameters *p = j->in->streams[j->vi]->codecpar;
        AVRational sar = p->sample_aspect_ratio;
        long w = p->width, h = p->height;
        if (sar.num > 0 && sar.den > 0)
            w = w * sar.num / sar.den;
        if (j->rotation == 90 || j->rotation == 270) {
            long t = w;
            w = h;
            h = t;
        }
        n = ladder_build(preset, (int)w, (int)h, rungs);
        if (n == -EINVAL && (w < 2 || h < 2 || w > LADDER_MAX_SIDE || h > LADDER_MAX_SIDE))
            return fail(n, "the video is %ldx%ld: reeld takes 2 to %d pixels on a side", w, h,
                        LADDER_MAX_SIDE);
        if (n < 0)
            return fail(n, "unknown preset '%s': use auto, 1080p, 720p or 480p", preset);
        memcpy(res->ladder, rungs, sizeof(ladder_rung) * (size_t)n);
        res->nladder = n;
    }
    j->v = calloc((size_t)n, sizeof(*j->v));
    if (j->v == NULL)
        return -ENOMEM;
    j->nv = n;
    long total_px = 0, ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    for (int i = 0; i < n && j->vi >= 0; i++)
        total_px += (long)rungs[i].width * rungs[i].height;
    for (int i = 0; i < n; i++) {
        variant *v = &j->v[i];
        pthread_mutex_init(&v->mu, NULL);
        pthread_cond_init(&v->cv, NULL);
        v->pkt = av_packet_alloc();
        v->mpkt = av_packet_alloc();
        if (v->pkt == NULL || v->mpkt == NULL)
            return -ENOMEM;
        /* libx264 threads by the rung's share of the pixels: the rungs' workers already run
         * side by side, so one thread each is right on a small machine, and frame threads
         * (each holding pictures) are spent only where a rung needs more than a core. */
        v->threads = j->o->x264_threads;
        if (v->threads <= 0 && j->vi >= 0 && total_px > 0)
            v->threads = (int)ceil((double)ncpu * rungs[i].width * rungs[i].height / total_px);
        if (v->threads < 1)
            v->threads = 1;
        v->vst = v->ast = -1;
        if (j->vi >= 0) {
            v->video = 1;
            v->rung = rungs[i];
            _Static_assert(sizeof(v->name) == sizeof(rungs[i].name), "rung names fit");
            memcpy(v->name, rungs[i].name, sizeof(v->name));
        } else {
            snprintf(v->name, sizeof(v->name), "audio");
            snprintf(v->codecs, sizeof(v->codecs), "mp4a.40.2");
        }
    }
    return 0;
}

/* The download's file, closed by its rung, as the object "download.mp4". */
static int emit_download(job *j)
{
    variant *v = &j->v[0];
    if (v->dl_path[0] == '\0')
        return 0;
    FILE *f = fopen(v->dl_path, "rb");
    if (f == NULL)
        return fail(-errno, "the MP4 download's file is gone: %s", strerror(errno));
    uint8_t *data = NULL;
    long n = -1;
    if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) > 0 && fseek(f, 0, SEEK_SET) == 0) {
        data = malloc((size_t)n);
        if (data != NULL && fread(data, 1, (size_t)n, f) != (size_t)n) {
            free(data);
            data = NULL;
        }
    }
    fclose(f);
    unlink(v->dl_path);
    v->dl_path[0] = '\0';
    if (data == NULL)
        return fail(n > 0 ? -ENOMEM : -EIO, "reading the MP4 download back failed");
    return emit(j, "download.mp4", data, (size_t)n);
}

static int publish(job *j, transcode_result *res)
{
    int r = 0;
    if (j->vi >= 0 && ((r = finish_storyboard(j)) < 0 || (r = emit_download(j)) < 0))
        return r;
    char *text = malloc(PLAYLIST_MAX);
    hls_variant *hv = calloc((size_t)j->nv, sizeof(*hv));
    char(*uris)[32] = calloc((size_t)j->nv, sizeof(*uris));
    if (text == NULL || hv == NULL || uris == NULL) {
        r = -ENOMEM;
        goto out;
    }
    for (int i = 0; i < j->nv && r >= 0; i++) {
        variant *v = &j->v[i];
        hls_segment *segs = calloc((size_t)v->nsegs + 1, sizeof(*segs));
        char(*names)[24] = calloc((size_t)v->nsegs + 1, sizeof(*names));
        double total = 0, peak = 0;
        if (segs == NULL || names == NULL) {
            free(segs);
            free(names);
            r = -ENOMEM;
            break;
        }
        for (int s = 0; s < v->nsegs; s++) {
            snprintf(names[s], sizeof(names[s]), "seg_%05d.%s", s, j->o->fmp4 ? "m4s" : "ts");
            segs[s].uri = names[s];
            segs[s].duration = v->segs[s].duration;
            total += v->segs[s].duration;
            double bps = v->segs[s].duration > 0 ? v->segs[s].bytes * 8 / v->segs[s].duration : 0;
            if (bps > peak)
                peak = bps;
        }
        int len =
            hls_write_media(text, PLAYLIST_MAX, j->o->fmp4 ? "init.mp4" : NULL, segs, v->nsegs);
        free(segs);
        free(names);
        if (len < 0) {
            r = fail(len, "the playlist of %s is too long", v->name);
            break;
        }
        snprintf(uris[i], sizeof(uris[i]), "%s/index.m3u8", v->name);
        uint8_t *copy = malloc((size_t)len);
        if (copy == NULL) {
            r = -ENOMEM;
            break;
        }
        memcpy(copy, text, (size_t)len);
        r = emit(j, uris[i], copy, (size_t)len);
        hv[i].uri = uris[i];
        hv[i].bandwidth = (int64_t)ceil(peak);
        hv[i].average_bandwidth = total > 0 ? (int64_t)ceil((double)v->bytes * 8 / total) : 0;
        hv[i].width = v->video ? v->rung.width : 0;
        hv[i].height = v->video ? v->rung.height : 0;
        hv[i].frame_rate = v->video ? av_q2d(j->frame_rate) : 0;
        hv[i].codecs = v->codecs[0] ? v->codecs : "avc1.640028,mp4a.40.2";
        res->segments += v->nsegs;
        if (i == 0)
            res->media_sec = total;
    }
    if (r >= 0) {
        int len = hls_write_master(text, PLAYLIST_MAX, hv, j->nv);
        uint8_t *copy = len > 0 ? malloc((size_t)len) : NULL;
        if (copy == NULL) {
            r = -ENOMEM;
            goto out;
        }
        memcpy(copy, text, (size_t)len);
        r = emit(j, "master.m3u8", copy, (size_t)len);
    }
    if (r >= 0 && j->poster != NULL) {
        r = emit(j, "poster.jpg", j->poster, j->poster_len);
        j->poster = NULL;
    }
    if (r >= 0 && j->poster_webp != NULL) {
        r = emit(j, "poster.webp", j->poster_webp, j->poster_webp_len);
        j->poster_webp = NULL;
    }
out:
    free(text);
    free(hv);
    free(uris);
    return r;
}

static int run(job *j, media_source *src, transcode_result *res)
{
    int r;
    if ((r = open_input(j, src)) < 0 || (r = setup_ladder(j, res)) < 0)
        return r;
    if (j->ai >= 0 &&
        (r = aac_open(&j->aac, j->adec, j->o->fmp4, aac_packet, j, err_buf, err_len)) < 0)
        return r;
    if (j->path == MEDIA_ENC_NVENC && j->vi >= 0 && (r = open_nvenc_rungs(j)) < 0)
        return r;
    /* Cascade (opts->cascade, CPU): each rung scaled from the next larger one, not from the
     * decoded picture, when it is no larger on either side: the scaler reads a smaller picture
     * (720p → 480p → 360p: the last scaling reads 854x480, not 1920x1080). On the GPU paths
     * scale_cuda does every rung from the decoded picture (no CPU to save). */
    for (int i = 1; j->path == MEDIA_ENC_X264 && j->o->cascade && i < j->nv; i++) {
        variant *up = &j->v[i - 1], *v = &j->v[i];
        if (v->video && up->video && up->rung.width >= v->rung.width &&
            up->rung.height >= v->rung.height) {
            up->feeds = v;
            v->fed = 1;
        }
    }
    for (int i = 0; i < j->nv; i++) {
        variant *v = &j->v[i];
        if (!v->video && (r = open_mux(j, v)) < 0)
            return r;
        if (v->video) {
            v->j = j;
            /* v[0] is the top rung (the ladder's order), the one that paces the others;
             * NVENC's rungs wait on the GPU. */
            v->behind = i != 0 && j->path != MEDIA_ENC_NVENC;
            if ((r = -pthread_create(&v->thread, NULL, rung_main, v)) < 0)
                return fail(r, "cannot start a thread for %s: %s", v->name, strerror(-r));
            v->running = 1;
        }
    }
    res->rungs = j->nv;
    j->poster_at = (int64_t)(FFMIN(1.0, j->duration / 10) * 90000);
    if (j->o->has_poster_time && j->o->poster_time >= 0) {
        double at = j->o->poster_time;
        if (j->duration > 0 && at > j->duration - 0.5) /* past the end: near the end */
            at = FFMAX(0, j->duration - 0.5);
        j->poster_at = (int64_t)(at * 90000);
    }
    j->sb_off =
        j->vi < 0 || j->o->storyboard_interval_sec < 0 ||
        storyboard_tile_size(j->v[0].rung.width, j->v[0].rung.height, &j->sb_tw, &j->sb_th) < 0;
    j->sb_step90 = (int64_t)storyboard_interval(j->duration, j->o->storyboard_interval_sec) * 90000;
    while ((r = av_read_frame(j->in, j->pkt)) >= 0) {
        AVPacket *p = av_packet_clone(j->pkt);
        av_packet_unref(j->pkt);
        if (p == NULL)
            return -ENOMEM;
        r = 0;
        if (p->stream_index == j->vi)
            r = decode(j, j->vdec, p);
        else if (p->stream_index == j->ai)
            r = decode(j, j->adec, p);
        av_packet_free(&p);
        if (r < 0)
            return r;
        if (cancelled(j))
            return -ECANCELED;
        if ((r = drain_outputs(j)) < 0)
            return r;
        progress(j, 0);
    }
    if (r != AVERROR_EOF)
        return fail(r, "reading the input failed at byte %lld (%s): it is truncated or corrupt",
                    (long long)avio_tell(j->in_pb), av_err2str(r));
    if (j->vdec != NULL && (r = decode(j, j->vdec, NULL)) < 0)
        return r;
    if (j->adec != NULL && (r = decode(j, j->adec, NULL)) < 0)
        return r;
    if (j->vi >= 0 && j->vframes == 0)
        return fail(-EINVAL, "no video frame could be decoded: the input is corrupt or truncated");
    if (j->vi < 0 && j->aframes == 0)
        return fail(-EINVAL, "no audio could be decoded: the input is corrupt or truncated");
    /* A file cut short after a complete index (MP4 with its moov first) reads to a clean end:
     * only its own duration tells that half of it is missing. */
    double reached = FFMAX(j->vi >= 0 ? (double)j->last_t / 90000 : 0,
                           j->aac.next != INT64_MIN ? (double)j->aac.next / AAC_RATE : 0);
    if (j->duration > 0 && reached < j->duration * 0.9 - 0.5)
        return fail(-EINVAL, "the input stops at %.1f s of its %.1f s: it is truncated or corrupt",
                    reached, j->duration);
    if (j->aac.enc != NULL && (r = aac_finish(&j->aac)) < 0)
        return r;
    if ((r = stop_rungs(j, 1)) < 0)
        return r;
    encode_poster(j);
    for (int i = 0; i < j->nv; i++)
        if (!j->v[i].video && (r = cut_segment(&j->v[i], j->v[i].end)) < 0)
            return r;
    if ((r = drain_outputs(j)) < 0)
        return r;
    if (cancelled(j))
        return -ECANCELED;
    progress(j, 1);
    return publish(j, res);
}

static void free_variant(variant *v)
{
    for (int i = 0; i < v->q_len; i++) {
        rung_item *it = &v->q[(v->q_head + i) % RUNG_QUEUE];
        av_frame_free(&it->frame);
        av_packet_free(&it->audio);
    }
    while (v->out_head != NULL) {
        outobj *o = v->out_head;
        v->out_head = o->next;
        free(o->data);
        free(o);
    }
    pthread_mutex_destroy(&v->mu);
    pthread_cond_destroy(&v->cv);
    av_packet_free(&v->pkt);
    av_packet_free(&v->mpkt);
    avcodec_free_context(&v->enc);
    av_buffer_unref(&v->enc_frames);
    scaler_free(&v->sc);
    avfilter_graph_free(&v->graph);
    if (v->mux != NULL) {
        if (v->mux->pb != NULL)
            av_freep(&v->mux->pb->buffer);
        avio_context_free(&v->mux->pb);
        avformat_free_context(v->mux);
    }
    av_buffer_pool_uninit(&v->pool);
    if (v->dl != NULL) {
        avio_closep(&v->dl->pb);
        avformat_free_context(v->dl);
    }
    if (v->dl_path[0] != '\0')
        unlink(v->dl_path);
    for (int i = v->aq_head; i < v->aq_len; i++)
        av_packet_free(&v->aq[i]);
    free(v->aq);
    free(v->seg);
    free(v->segs);
}

int transcode_run(media_source *src, const transcode_opts *o, const transcode_sink *sink,
                  transcode_result *res, char *err, size_t errlen)
{
    memset(res, 0, sizeof(*res));
    err[0] = '\0';
    rss_reset_peak();
    job j = {0};
    j.o = o;
    j.path = o->encoder;
    if (j.path != MEDIA_ENC_X264 && o->cuda_device == NULL)
        j.path = MEDIA_ENC_X264; /* no GPU to run it on */
    j.sink = sink;
    j.vi = j.ai = -1;
    j.seg90 = (int64_t)(o->segment_sec > 0 ? o->segment_sec : 4) * 90000;
    j.t0_ns = j.last_progress_ns = rd_now_ns();
    j.frame = av_frame_alloc();
    j.sw_frame = av_frame_alloc();
    j.up_frame = av_frame_alloc();
    j.pkt = av_packet_alloc();
    err_buf = err;
    err_len = errlen;
    int r = j.frame && j.sw_frame && j.up_frame && j.pkt ? run(&j, src, res) : -ENOMEM;
    stop_rungs(&j, 0);
    if (r < -4095)
        r = -EINVAL; /* an FFmpeg tag (AVERROR_INVALIDDATA, ...): callers get a -errno */
    if (r == -ENOMEM && err[0] == '\0')
        snprintf(err, errlen, "out of memory");
    else if (r < 0 && err[0] == '\0')
        snprintf(err, errlen, r == -ECANCELED ? "cancelled" : "transcoding failed: %s",
                 strerror(-r));
    res->frames = j.vframes;
    res->damaged = j.decode_errors;
    snprintf(res->encoder, sizeof(res->encoder), "%s", vpath_name(j.path));
    res->wall_sec = (double)(rd_now_ns() - j.t0_ns) / 1e9;
    res->peak_rss_kb = rss_peak_kb();
    for (int i = 0; i < j.nv; i++)
        free_variant(&j.v[i]);
    free(j.v);
    free(j.poster);
    free(j.poster_webp);
    av_frame_free(&j.poster_pic);
    av_frame_free(&j.poster_yuv);
    free(j.sb_ms);
    av_frame_free(&j.sb_sprite);
    av_frame_free(&j.sb_tile);
    sws_freeContext(j.sb_sws);
    avcodec_free_context(&j.vdec);
    avcodec_free_context(&j.adec);
    aac_close(&j.aac);
    avformat_close_input(&j.in);
    source_avio_free(&j.in_pb);
    av_frame_free(&j.frame);
    av_frame_free(&j.sw_frame);
    av_frame_free(&j.up_frame);
    avfilter_graph_free(&j.up);
    av_packet_free(&j.pkt);
    err_buf = NULL;
    return r;
}
