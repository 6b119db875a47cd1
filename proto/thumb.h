/* On-demand thumbnails (GET /hls/{exp}/{sig}/{asset}/thumbnail.jpg?time=42.5&width=320): the
 * request's parameters, the name the edge caches the picture under, and the two questions the
 * ladder's playlists answer: which rung is the top one, and which of its segments holds a time.
 *
 * owns:  nothing; pure parsing over the caller's bytes.
 * never: allocates; reads past a length it was given; accepts a number it cannot represent. */
#ifndef REELD_PROTO_THUMB_H
#define REELD_PROTO_THUMB_H

#include <stddef.h>
#include <stdint.h>

#define THUMB_MAX_WIDTH     3840             /* a width above this is refused (400) */
#define THUMB_MIN_WIDTH     16               /* and below this */
#define THUMB_DEFAULT_WIDTH 320              /* no width= */
#define THUMB_MAX_TIME_MS   (7LL * 86400000) /* a week: no video of reeld's is longer */
#define THUMB_STEP_MS       100              /* times are rounded to this: one cached picture */
#define THUMB_PATH_MAX      48

/* Parses the query string (without '?'): time= (seconds, a decimal with up to 3 decimals;
 * required) and width= (pixels; optional). Other parameters are ignored. 0 with the time in
 * milliseconds rounded to THUMB_STEP_MS, or -EINVAL with `why` (one sentence). */
int thumb_params(const char *query, size_t len, int64_t *time_ms, int *width, const char **why);

/* The cached object's name for a picture: "thumb/<ms>_<width>.jpg". Its length, or -ENOSPC. */
int thumb_path(char *out, size_t cap, int64_t time_ms, int width);

/* 1 when `path` is such a name (filling time and width, both in range), else 0. */
int thumb_path_parse(const char *path, int64_t *time_ms, int *width);

/* In a master playlist: the URI of the variant with the highest BANDWIDTH, and its
 * RESOLUTION's width (0 when it has none). 0, or -ENOENT when there is no variant. */
int thumb_top_variant(const char *text, size_t len, char *uri, size_t cap, int *width);

/* In a media playlist: the URI of the segment that holds `time_ms` (the last one for a time
 * past the end), the time its segment starts at, and the URI of its EXT-X-MAP ("" when
 * none: MPEG-TS). 0, or -ENOENT when there is no segment, -ENOSPC when a URI is too long,
 * -EINVAL when one holds a space, a control byte or a non-ASCII byte. */
int thumb_segment_at(const char *text, size_t len, int64_t time_ms, char *uri, size_t cap,
                     int64_t *start_ms, char *map, size_t mapcap);

/* In a media playlist: the sum of its segments' durations, and whether they are fragmented MP4
 * (an EXT-X-MAP) rather than MPEG-TS. 0, or -ENOENT when there is no segment. (Captions are
 * segmented to the length of the video they go with.) */
int thumb_media_length(const char *text, size_t len, int64_t *duration_ms, int *fmp4);

#endif
