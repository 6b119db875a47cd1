#include "src/media/avsource.h"

#include <math.h>

#include <libavutil/display.h>
#include <libavutil/error.h>
#include <libavutil/mem.h>

#define IO_BUF_SIZE 65536

static int src_read(void *opaque, uint8_t *buf, int len)
{
    media_source *s = opaque;
    int n = s->read(s, buf, len);
    if (n == 0)
        return AVERROR_EOF;
    return n < 0 ? AVERROR(-n) : n;
}

static int64_t src_seek(void *opaque, int64_t offset, int whence)
{
    media_source *s = opaque;
    whence &= ~AVSEEK_FORCE;
    if (whence == AVSEEK_SIZE)
        return s->size >= 0 ? s->size : AVERROR(ENOSYS);
    int64_t r = s->seek(s, offset, whence);
    return r < 0 ? AVERROR((int)-r) : r;
}

AVIOContext *source_avio(media_source *s)
{
    uint8_t *buf = av_malloc(IO_BUF_SIZE);
    if (buf == NULL)
        return NULL;
    AVIOContext *pb = avio_alloc_context(buf, IO_BUF_SIZE, 0, s, src_read, NULL, src_seek);
    if (pb == NULL)
        av_free(buf);
    return pb;
}

void source_avio_free(AVIOContext **pb)
{
    if (*pb != NULL)
        av_freep(&(*pb)->buffer);
    avio_context_free(pb);
}

int source_rotation(const AVStream *st)
{
    const uint8_t *m = av_stream_get_side_data(st, AV_PKT_DATA_DISPLAYMATRIX, NULL);
    if (m == NULL)
        return 0;
    double a = av_display_rotation_get((const int32_t *)(const void *)m);
    if (isnan(a))
        return 0;
    int deg = (int)lround(-a) % 360;
    if (deg < 0)
        deg += 360;
    deg = (deg + 45) / 90 * 90 % 360; /* only quarter turns */
    return deg;
}

void source_pick_streams(AVFormatContext *in, int *vi, int *ai)
{
    *vi = av_find_best_stream(in, AVMEDIA_TYPE_VIDEO, -1, -1, NULL, 0);
    if (*vi >= 0 && (in->streams[*vi]->disposition & AV_DISPOSITION_ATTACHED_PIC))
        *vi = -1; /* cover art of an audio file */
    *ai = av_find_best_stream(in, AVMEDIA_TYPE_AUDIO, -1, *vi, NULL, 0);
    for (unsigned i = 0; i < in->nb_streams; i++)
        if ((int)i != *vi && (int)i != *ai)
            in->streams[i]->discard = AVDISCARD_ALL;
}

AVRational source_frame_rate(AVFormatContext *in, AVStream *st)
{
    AVRational r = av_guess_frame_rate(in, st, NULL);
    if (r.num <= 0 || r.den <= 0 || av_q2d(r) > 240)
        r = (AVRational){30, 1};
    return r;
}
