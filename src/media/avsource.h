/* A source as FFmpeg's demuxers read it: an AVIOContext over media_source's read and seek, and
 * the container formats a job lets the demuxer probe.
 *
 * owns:  the AVIOContext and its buffer (source_avio_free); the source stays the caller's. */
#ifndef REELD_MEDIA_AVSOURCE_H
#define REELD_MEDIA_AVSOURCE_H

#include <libavformat/avformat.h>

#include "src/media/source.h"

/* Only container demuxers, never playlists or concat lists that would open other URLs: the
 * demuxer's format_whitelist. */
#define SOURCE_DEMUXERS                                                                            \
    "mov,matroska,avi,mpegts,flv,mpeg,mxf,asf,ogg,wav,mp3,aac,flac,nut,yuv4mpegpipe,gif"

/* An AVIOContext reading `s` (seekable when the source is; AVSEEK_SIZE answers its size), or
 * NULL when out of memory. */
AVIOContext *source_avio(media_source *s);

/* Frees it and its buffer; *pb becomes NULL. NULL is a no-op. */
void source_avio_free(AVIOContext **pb);

/* Clockwise degrees (0, 90, 180, 270) to turn a stream's pictures to show them upright, from
 * its display matrix (only quarter turns; 0 without one). */
int source_rotation(const AVStream *st);

#endif
