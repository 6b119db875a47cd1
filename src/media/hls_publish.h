/* The publication order of an HLS ladder: which of a job's objects may be stored now.
 *
 * owns:  a copy of each object's name and of the URIs its playlist names; never the bytes.
 * never: does I/O; decides how an object is stored (the uploader does that).
 *
 * Rules, whatever order the objects arrive in:
 *   - a segment (".ts", ".m4s", an fMP4 "init.mp4": anything but a playlist or the poster, so
 *     also the storyboard's sprites and VTT and "download.mp4") may go at once;
 *   - a variant playlist ("720p/index.m3u8") once every object it names (its segments and its
 *     EXT-X-MAP) has landed;
 *   - the master playlist ("master.m3u8") once the producer has said the job is whole
 *     (hlspub_finish) and every other object but the poster has landed, so a viewer who can
 *     read the master can read everything it leads to;
 *   - the poster ("poster.jpg", "poster.webp") last, once the master has landed (or, for a job
 * without a master, once everything else has). A failed job is never finished: its master is never
 * handed out. */
#ifndef REELD_MEDIA_HLS_PUBLISH_H
#define REELD_MEDIA_HLS_PUBLISH_H

#include <stddef.h>
#include <stdint.h>

#define HLSPUB_MAX_NAME 64 /* bytes of an object name, NUL included (rd_msg_hls_object.name) */

typedef enum hlspub_kind {
    HLSPUB_SEGMENT, /* media segment or fMP4 initialisation segment */
    HLSPUB_VARIANT, /* a rendition's media playlist */
    HLSPUB_MASTER,  /* master.m3u8 */
    HLSPUB_POSTER,  /* poster.jpg, poster.webp */
} hlspub_kind;

typedef struct hlspub hlspub;

/* What kind of object `name` is, by its name alone. */
hlspub_kind hlspub_kind_of(const char *name);

/* An empty plan. Aborts on out-of-memory (runtime rule). */
hlspub *hlspub_new(void);
/* NULL is a no-op. */
void hlspub_free(hlspub *p);

/* Adds an object that has arrived; a playlist's bytes are read now for the URIs it names
 * (relative to the playlist's directory) and not kept. Returns its index (>= 0), -EEXIST for a
 * name already added, -EINVAL for a name that is empty, too long, absolute or holds "..", or a
 * playlist naming an absolute URI or one outside the ladder, -EALREADY after hlspub_finish. */
int hlspub_add(hlspub *p, const char *name, const uint8_t *data, size_t len);

/* The producer has handed over every object. Returns 0, or -ENOENT when a playlist names an
 * object that never arrived (one sentence in `err`): the job cannot be published whole. */
int hlspub_finish(hlspub *p, char *err, size_t errlen);

/* The index of an object that may be stored now (it is then counted as started), or -EAGAIN
 * when none may go until more land or arrive. Segments come out in arrival order. */
int hlspub_next(hlspub *p);

/* The started object `i` has landed. */
void hlspub_landed(hlspub *p, int i);

/* 1 once finished and every object has landed. */
int hlspub_complete(const hlspub *p);

int hlspub_count(const hlspub *p);
const char *hlspub_name(const hlspub *p, int i);
hlspub_kind hlspub_kind_at(const hlspub *p, int i);
int hlspub_has_landed(const hlspub *p, int i);

#endif
