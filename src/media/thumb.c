/* Thumbnails from a segment, and the still-image encoder. Contract in thumb.h. */
#include "src/media/thumb.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libavformat/avformat.h>
#include <libavutil/imgutils.h>
#include <libswscale/swscale.h>

int media_encode_image(const AVCodec *codec, const AVFrame *f, enum AVPixelFormat fmt, int qscale,
                       uint8_t **out, size_t *len)
{
    AVCodecContext *c = avcodec_alloc_context3(codec);
    AVPacket *pkt = av_packet_alloc();
    int r = c != NULL && pkt != NULL ? 0 : AVERROR(ENOMEM);
    if (r == 0) {
        c->width = f->width;
        c->height = f->height;
        c->pix_fmt = fmt;
        c->time_base = (AVRational){1, 1};
        if (qscale > 0) {
            c->flags |= AV_CODEC_FLAG_QSCALE;
            c->global_quality = FF_QP2LAMBDA * qscale;
        }
        if ((r = avcodec_open2(c, codec, NULL)) >= 0 && (r = avcodec_send_frame(c, f)) >= 0 &&
            (r = avcodec_send_frame(c, NULL)) >= 0 && (r = avcodec_receive_packet(c, pkt)) >= 0) {
            *out = malloc((size_t)pkt->size);
            if (*out == NULL) {
                r = AVERROR(ENOMEM);
            } else {
                memcpy(*out, pkt->data, (size_t)pkt->size);
                *len = (size_t)pkt->size;
            }
        }
    }
    av_packet_free(&pkt);
    avcodec_free_context(&c);
    return r;
}

/* The segment, read from memory. */
typedef struct mem {
    const uint8_t *p;
    size_t len, pos;
} mem;

static int mem_read(void *opaque, uint8_t *buf, int size)
{
    mem *m = opaque;
    size_t left = m->len - m->pos;
    if (left == 0)
        return AVERROR_EOF;
    size_t n = (size_t)size < left ? (size_t)size : left;
    memcpy(buf, m->p + m->pos, n);
    m->pos += n;
    return (int)n;
}

static int64_t mem_seek(void *opaque, int64_t offset, int whence)
{
    mem *m = opaque;
    int64_t base = 0;
    switch (whence & ~AVSEEK_FORCE) {
    case AVSEEK_SIZE:
        return (int64_t)m->len;
    case SEEK_SET:
        base = 0;
        break;
    case SEEK_CUR:
        base = (int64_t)m->pos;
        break;
    case SEEK_END:
        base = (int64_t)m->len;
        break;
    default:
        return AVERROR(EINVAL);
    }
    int64_t to = base + offset;
    if (to < 0 || to > (int64_t)m->len)
        return AVERROR(EINVAL);
    m->pos = (size_t)to;
    return to;
}

/* Scales `f` to `width` (capped at its own) and encodes it as JPEG. */
static int encode_scaled(const AVFrame *f, int width, uint8_t **jpeg, size_t *jlen)
{
    int w = width < f->width ? width : f->width;
    w &= ~1;
    int h = (int)(((int64_t)f->height * w + f->width / 2) / f->width) & ~1;
    if (w < 2 || h < 2)
        return AVERROR(EINVAL);
    const AVCodec *codec = avcodec_find_encoder(AV_CODEC_ID_MJPEG);
    if (codec == NULL)
        return AVERROR_ENCODER_NOT_FOUND;
    AVFrame *out = av_frame_alloc();
    struct SwsContext *sws = sws_getContext(f->width, f->height, (enum AVPixelFormat)f->format, w,
                                            h, AV_PIX_FMT_YUVJ420P, SWS_BICUBIC, NULL, NULL, NULL);
    int r = out != NULL && sws != NULL ? 0 : AVERROR(ENOMEM);
    if (r == 0) {
        out->width = w;
        out->height = h;
        out->format = AV_PIX_FMT_YUVJ420P;
        r = av_frame_get_buffer(out, 0);
    }
    if (r == 0) {
        r = sws_scale(sws, (const uint8_t *const *)f->data, f->linesize, 0, f->height, out->data,
                      out->linesize);
        r = r > 0 ? media_encode_image(codec, out, AV_PIX_FMT_YUVJ420P, 3, jpeg, jlen)
                  : AVERROR(EINVAL);
    }
    sws_freeContext(sws);
    av_frame_free(&out);
    return r;
}

int thumb_render(const uint8_t *init, size_t init_len, const uint8_t *seg, size_t seg_len,
                 int64_t offset_ms, int width, uint8_t **jpeg, size_t *jpeg_len, char *err,
                 size_t errlen)
{
    *jpeg = NULL;
    *jpeg_len = 0;
    uint8_t *whole = malloc(init_len + seg_len + 1);
    if (whole == NULL) {
        snprintf(err, errlen, "out of memory for the segment");
        return -ENOMEM;
    }
    if (init_len > 0)
        memcpy(whole, init, init_len);
    memcpy(whole + init_len, seg, seg_len);
    mem m = {.p = whole, .len = init_len + seg_len};
    const size_t iosz = 64 * 1024;
    uint8_t *iobuf = av_malloc(iosz);
    AVIOContext *io =
        iobuf ? avio_alloc_context(iobuf, (int)iosz, 0, &m, mem_read, NULL, mem_seek) : NULL;
    AVFormatContext *fmt = avformat_alloc_context();
    AVCodecContext *dec = NULL;
    AVPacket *pkt = av_packet_alloc();
    AVFrame *frame = av_frame_alloc(), *best = av_frame_alloc();
    int r = io != NULL && fmt != NULL && pkt != NULL && frame != NULL && best != NULL
                ? 0
                : AVERROR(ENOMEM);
    if (io == NULL)
        av_free(iobuf);
    int vs = -1;
    if (r == 0) {
        fmt->pb = io;
        fmt->flags |= AVFMT_FLAG_CUSTOM_IO;
        r = avformat_open_input(&fmt, NULL, NULL, NULL);
        if (r < 0) {
            fmt = NULL; /* freed by the failed open */
            snprintf(err, errlen, "the segment cannot be read (%s)", av_err2str(r));
        }
    }
    if (r == 0 && (r = avformat_find_stream_info(fmt, NULL)) < 0)
        snprintf(err, errlen, "the segment's streams cannot be read (%s)", av_err2str(r));
    const AVCodec *codec = NULL;
    if (r >= 0) {
        vs = av_find_best_stream(fmt, AVMEDIA_TYPE_VIDEO, -1, -1, &codec, 0);
        if (vs < 0) {
            r = vs;
            snprintf(err, errlen, "the segment has no video");
        }
    }
    if (r >= 0) {
        dec = avcodec_alloc_context3(codec);
        if (dec == NULL)
            r = AVERROR(ENOMEM);
        else if ((r = avcodec_parameters_to_context(dec, fmt->streams[vs]->codecpar)) >= 0 &&
                 (r = avcodec_open2(dec, codec, NULL)) < 0)
            snprintf(err, errlen, "the segment's video cannot be decoded (%s)", av_err2str(r));
    }
    /* Decode until a frame reaches the time; keep whichever of it and the one before is
     * nearer. */
    int have = 0, done = 0;
    int64_t first = AV_NOPTS_VALUE, target = 0, best_dist = INT64_MAX;
    AVRational tb = vs >= 0 && fmt != NULL ? fmt->streams[vs]->time_base : (AVRational){1, 1};
    while (r >= 0 && !done) {
        int rr = av_read_frame(fmt, pkt);
        if (rr >= 0 && pkt->stream_index != vs) {
            av_packet_unref(pkt);
            continue;
        }
        rr = avcodec_send_packet(dec, rr >= 0 ? pkt : NULL);
        av_packet_unref(pkt);
        int eof = rr == AVERROR_EOF;
        for (;;) {
            int g = avcodec_receive_frame(dec, frame);
            if (g == AVERROR(EAGAIN))
                break;
            if (g < 0) {
                done = 1; /* the end (or a broken tail: the best so far stands) */
                break;
            }
            int64_t pts = frame->best_effort_timestamp;
            if (pts == AV_NOPTS_VALUE)
                pts = have ? first : 0;
            if (first == AV_NOPTS_VALUE) {
                first = pts;
                target = first + av_rescale_q(offset_ms, (AVRational){1, 1000}, tb);
            }
            int64_t dist = pts > target ? pts - target : target - pts;
            if (!have || dist <= best_dist || pts <= target) {
                av_frame_unref(best);
                av_frame_move_ref(best, frame);
                best_dist = dist;
                have = 1;
            } else {
                av_frame_unref(frame);
            }
            if (pts >= target) {
                done = 1;
                break;
            }
        }
        if (eof)
            done = 1;
    }
    if (r >= 0 && !have) {
        r = AVERROR_INVALIDDATA;
        snprintf(err, errlen, "no frame could be decoded from the segment");
    }
    if (r >= 0 && (r = encode_scaled(best, width, jpeg, jpeg_len)) < 0)
        snprintf(err, errlen, "the picture cannot be encoded (%s)", av_err2str(r));
    av_frame_free(&frame);
    av_frame_free(&best);
    av_packet_free(&pkt);
    avcodec_free_context(&dec);
    avformat_close_input(&fmt);
    if (io != NULL) {
        av_freep(&io->buffer);
        avio_context_free(&io);
    }
    free(whole);
    return r < 0 ? r : 0;
}
