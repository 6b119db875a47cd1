/* A source as FFmpeg's demuxers read it: an AVIOContext over media_source's read and seek, the
 * container formats a job lets the demuxer probe, and what every job takes from the opened
 * input alike (its streams, the video's rotation and frame rate).
 *
 * owns:  the AVIOContext and its buffer (source_avio_free); the source stays the caller's.
 * never: opens the demuxer or a decoder, or words an error: transcodes and exports each say
 *        in their own sentences what the input lacks. */
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

/* The streams a job reads from an opened input: the best video that is not cover art and the
 * best audio (the one that goes with that video), -1 each when absent. Every other stream is
 * discarded (the demuxer drops its packets). */
void source_pick_streams(AVFormatContext *in, int *vi, int *ai);

/* A video stream's frame rate: FFmpeg's guess, or 30/1 when it has none or one above 240. */
AVRational source_frame_rate(AVFormatContext *in, AVStream *st);

#endif
