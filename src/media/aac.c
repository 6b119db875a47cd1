/* The AAC encoder shared by transcodes and exports (aac.h). FFmpeg's native encoder takes
 * frames of exactly frame_size samples (the last may be shorter), which decoders and the
 * resampler do not give: the FIFO regroups them. */
#include "src/media/aac.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>

#include <libavutil/channel_layout.h>

static int fail(aac_encoder *a, int r, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(aac_encoder *a, int r, const char *fmt, ...)
{
    if (a->err != NULL && a->err[0] == '\0') {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(a->err, a->errlen, fmt, ap);
        va_end(ap);
    }
    return r < 0 ? r : -EIO;
}

int aac_open(aac_encoder *a, const AVCodecContext *dec, int global_header, aac_packet_fn packet,
             void *ctx, char *err, size_t errlen)
{
    a->packet = packet;
    a->ctx = ctx;
    a->err = err;
    a->errlen = errlen;
    const AVCodec *codec = avcodec_find_encoder(AV_CODEC_ID_AAC);
    if (codec == NULL)
        return fail(a, -ENOSYS, "this FFmpeg has no AAC encoder");
    AVCodecContext *c = a->enc = avcodec_alloc_context3(codec);
    if (c == NULL)
        return -ENOMEM;
    c->sample_fmt = AV_SAMPLE_FMT_FLTP;
    c->sample_rate = AAC_RATE;
    av_channel_layout_default(&c->ch_layout, 2);
    c->bit_rate = AAC_KBPS * 1000;
    c->time_base = (AVRational){1, AAC_RATE};
    if (global_header)
        c->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
    int r = avcodec_open2(c, codec, NULL);
    if (r < 0)
        return fail(a, r, "opening the AAC encoder failed: %s", av_err2str(r));
    AVChannelLayout in_layout = {0}; /* av_channel_layout_copy uninits its destination first */
    if (dec->ch_layout.order == AV_CHANNEL_ORDER_UNSPEC)
        av_channel_layout_default(&in_layout, dec->ch_layout.nb_channels);
    else if ((r = av_channel_layout_copy(&in_layout, &dec->ch_layout)) < 0)
        return r;
    r = swr_alloc_set_opts2(&a->swr, &c->ch_layout, c->sample_fmt, c->sample_rate, &in_layout,
                            dec->sample_fmt, dec->sample_rate, 0, NULL);
    av_channel_layout_uninit(&in_layout);
    if (r < 0 || (r = swr_init(a->swr)) < 0)
        return fail(a, r, "setting up the audio resampler failed: %s", av_err2str(r));
    if ((a->fifo = av_audio_fifo_alloc(c->sample_fmt, 2, c->frame_size * 4)) == NULL ||
        (a->pkt = av_packet_alloc()) == NULL)
        return -ENOMEM;
    a->next = INT64_MIN;
    return 0;
}

/* Hands every packet the encoder has ready to the callback. */
static int drain(aac_encoder *a)
{
    int r;
    while ((r = avcodec_receive_packet(a->enc, a->pkt)) == 0) {
        r = a->packet(a->ctx, a->pkt);
        av_packet_unref(a->pkt);
        if (r < 0)
            return r;
    }
    if (r == AVERROR(EAGAIN) || r == AVERROR_EOF)
        return 0;
    return fail(a, r, "AAC encoding failed: %s", av_err2str(r));
}

/* Encodes whole AAC frames from the FIFO (and the short remainder when `last`). */
static int encode(aac_encoder *a, int last)
{
    int fs = a->enc->frame_size;
    while (av_audio_fifo_size(a->fifo) >= fs || (last && av_audio_fifo_size(a->fifo) > 0)) {
        AVFrame *f = av_frame_alloc();
        if (f == NULL)
            return -ENOMEM;
        int n = FFMIN(av_audio_fifo_size(a->fifo), fs);
        f->nb_samples = n;
        f->format = a->enc->sample_fmt;
        f->sample_rate = AAC_RATE;
        int r = av_channel_layout_copy(&f->ch_layout, &a->enc->ch_layout);
        if (r >= 0)
            r = av_frame_get_buffer(f, 0);
        if (r >= 0 && av_audio_fifo_read(a->fifo, (void **)f->data, n) != n)
            r = AVERROR(EIO);
        f->pts = a->next;
        a->next += n;
        if (r >= 0)
            r = avcodec_send_frame(a->enc, f);
        av_frame_free(&f);
        if (r < 0)
            return fail(a, r, "AAC encoding failed: %s", av_err2str(r));
        if ((r = drain(a)) < 0)
            return r;
    }
    return 0;
}

int aac_write(aac_encoder *a, const uint8_t **in, int n)
{
    int out = swr_get_out_samples(a->swr, n);
    if (out <= 0)
        return 0;
    if (out > a->buf_samples) {
        if (a->buf != NULL)
            av_freep(&a->buf[0]);
        av_freep(&a->buf);
        int r = av_samples_alloc_array_and_samples(&a->buf, NULL, 2, out, AV_SAMPLE_FMT_FLTP, 0);
        if (r < 0)
            return r;
        a->buf_samples = out;
    }
    int got = swr_convert(a->swr, a->buf, out, in, n);
    if (got < 0)
        return fail(a, got, "resampling audio failed: %s", av_err2str(got));
    if (av_audio_fifo_write(a->fifo, (void **)a->buf, got) < got)
        return -ENOMEM;
    return encode(a, 0);
}

int aac_finish(aac_encoder *a)
{
    int r = encode(a, 1);
    if (r < 0)
        return r;
    if ((r = avcodec_send_frame(a->enc, NULL)) < 0)
        return fail(a, r, "AAC encoding failed: %s", av_err2str(r));
    return drain(a);
}

void aac_close(aac_encoder *a)
{
    avcodec_free_context(&a->enc);
    swr_free(&a->swr);
    if (a->fifo != NULL)
        av_audio_fifo_free(a->fifo);
    a->fifo = NULL;
    if (a->buf != NULL)
        av_freep(&a->buf[0]);
    av_freep(&a->buf);
    a->buf_samples = 0;
    av_packet_free(&a->pkt);
}
