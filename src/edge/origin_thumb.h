/* The origin of on-demand thumbnails: "thumb/<ms>_<width>.jpg" of an asset (proto/thumb.h) is
 * made, not fetched. The edge's cache treats it like any object from an origin: one flight per
 * picture however many clients ask at once, the result stored in CACHE_DIR and evicted like a
 * segment.
 *
 * A GET reads, through the inner origin (fs or s3) on the asking loop: the master playlist (the
 * top rung: the highest BANDWIDTH), that rung's playlist (the segment that holds the time), its
 * init segment when fMP4, and the segment. Then the render thread (a thread actor, one per
 * node) decodes the nearest frame, scales it and encodes a JPEG (src/media/thumb.h), and wakes
 * the loop through a pipe read on the loop's ring; the sink gets head, data, done there.
 *
 * owns:  the render thread; each GET's buffers, sub-GET and pipe until its end.
 * takes: (render thread) MSG_THUMB_RENDER.
 * never: decodes on a loop; reads the master; keeps a picture (the edge's cache does). */
#ifndef REELD_EDGE_ORIGIN_THUMB_H
#define REELD_EDGE_ORIGIN_THUMB_H

#include "src/edge/origin.h"

/* The thumbnail origin over `inner` (borrowed: it must outlive this one). Starts the render
 * thread. 0 or -errno. */
int origin_thumb_create(origin *inner, origin **out);

#endif
