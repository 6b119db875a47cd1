/* Pictures from what the ladder already made: one frame of a rung's segment, scaled and encoded
 * (the edge's on-demand thumbnails), and the still-image encoder the transcode's posters and
 * storyboard sprites use too.
 *
 * owns:  nothing beyond one call: every FFmpeg context is made and freed inside it.
 * never: touches the master (a segment is a few seconds of the top rung); runs on a loop (it
 *        decodes: call it from a thread actor). */
#ifndef REELD_MEDIA_THUMB_H
#define REELD_MEDIA_THUMB_H

#include <stddef.h>
#include <stdint.h>

#include <libavcodec/avcodec.h>

/* Encodes `f` (already in `fmt`) as one picture with `codec` (MJPEG, libwebp), at `qscale`
 * when above 0. *out is malloc'ed. 0 or an AVERROR. */
int media_encode_image(const AVCodec *codec, const AVFrame *f, enum AVPixelFormat fmt, int qscale,
                       uint8_t **out, size_t *len);

/* The JPEG of the frame nearest `offset_ms` after the first frame of a segment: `init`
 * (fMP4's init segment; NULL for MPEG-TS) followed by `seg`, decoded from memory. A time past
 * the segment's last frame gives that frame. `width` is capped at the frame's; the height keeps
 * the aspect (both even). *jpeg is malloc'ed. 0, or -errno / an AVERROR with one sentence in
 * `err`. */
int thumb_render(const uint8_t *init, size_t init_len, const uint8_t *seg, size_t seg_len,
                 int64_t offset_ms, int width, uint8_t **jpeg, size_t *jpeg_len, char *err,
                 size_t errlen);

#endif
