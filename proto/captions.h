/* Captions for PUT /api/assets/{id}/captions/{lang}: an upload in WebVTT or SRT is read and
 * checked, written back as one clean WebVTT file, and cut into the WebVTT segments and the
 * media playlist of an HLS subtitle rendition.
 *
 * owns:  a parsed track (its cues, their text and settings: two blocks, freed by
 *        captions_free) and, while captions_segment runs, one segment's text.
 * never: does I/O; allocates more than a bound set by the input's size (CAPTIONS_MAX_BYTES)
 *        and the limits below; reads past a length it was given; keeps a cue it could not
 *        write back (every track it returns round-trips through captions_write_vtt).
 *
 * Times are milliseconds from the start of the video. Cue text is UTF-8 with lines joined by
 * "\n"; tags (<i>, <b>, <c.x>, <v Name>) are kept as they are, being WebVTT's as well as
 * what SRT files use. SRT's ASS override tags ("{\an8}") are dropped; a top position (\an7,
 * \an8, \an9) becomes the cue setting "line:0". */
#ifndef REELD_PROTO_CAPTIONS_H
#define REELD_PROTO_CAPTIONS_H

#include <stddef.h>
#include <stdint.h>

#define CAPTIONS_MAX_BYTES    (8u << 20) /* an upload larger than 8 MiB is refused (-E2BIG) */
#define CAPTIONS_MAX_CUES     100000
#define CAPTIONS_MAX_TEXT     4096 /* bytes of one cue's text, its "\n"s included */
#define CAPTIONS_MAX_MS       (100000LL * 3600000 - 1) /* timestamps have at most 5 hour digits */
#define CAPTIONS_MAX_SEGMENTS 1000000                  /* a week in 1 s segments is 604,800 */
#define CAPTIONS_LANG_MAX     35
#define CAPTIONS_SEGMENT_NAME "seg_%05d.vtt" /* segment i's URI, relative to its playlist */
/* Bytes that always hold the playlist of n segments. */
#define CAPTIONS_PLAYLIST_CAP(n) (256 + 64 * (size_t)(n))

enum captions_format { CAPTIONS_AUTO, CAPTIONS_VTT, CAPTIONS_SRT };

typedef struct captions_cue {
    int64_t start_ms, end_ms; /* end_ms > start_ms */
    const char *text;         /* never empty, no empty line, no "-->" */
    const char *settings;     /* WebVTT cue settings ("line:0 align:start"), "" when none */
} captions_cue;

typedef struct captions_track {
    captions_cue *cues; /* sorted by start time; cues starting together stay in input order */
    size_t n;
    char *mem; /* the cues' text and settings */
} captions_track;

typedef struct captions_error {
    int line;          /* 1-based line of the input where it went wrong; 0 for bad arguments */
    char message[128]; /* one sentence, e.g. "line 7: the end time is not after the start time" */
} captions_error;

/* Reads a WebVTT or SRT file. A file that starts (after an optional UTF-8 BOM) with "WEBVTT"
 * and a space, tab, line break or its end is WebVTT whatever the hint; otherwise it is SRT
 * unless `format_hint` is CAPTIONS_VTT (the upload's Content-Type said so: then it is refused).
 * Line breaks may be LF, CRLF or CR; trailing spaces and tabs are ignored, so is a missing
 * last blank line. WebVTT's NOTE, STYLE and REGION blocks are skipped; cue identifiers and
 * SRT's numbers are not kept; a cue without text is dropped. Overlapping cues are kept.
 *
 * 0 with the track in *out (captions_free it). -EINVAL when the file is not captions: a
 * malformed timestamp or timing line, minutes or seconds of 60 or more, an end not after its
 * start, a "-->" in cue text, invalid UTF-8, a NUL byte, an empty file. -E2BIG beyond
 * CAPTIONS_MAX_BYTES, CAPTIONS_MAX_CUES or CAPTIONS_MAX_TEXT. -ENOMEM. On error *out is empty
 * and err (may be NULL) says where: the first error of the input. */
int captions_parse(const char *src, size_t len, int format_hint, captions_track *out,
                   captions_error *err);

void captions_free(captions_track *t);

/* The track as a WebVTT file: "WEBVTT\n\n", then per cue "HH:MM:SS.mmm --> HH:MM:SS.mmm
 * settings\ntext\n\n". Blank lines of a cue's text are left out and "-->" is written "--&gt;",
 * so text can neither end its cue nor read as a timing line; a cue that could not be read back
 * (no text, end not after start, a time outside 0..CAPTIONS_MAX_MS) is left out. 0 with a
 * malloc'd NUL-terminated *out of *len bytes, or -ENOMEM. */
int captions_write_vtt(const captions_track *t, char **out, size_t *len);

/* The number of segments of `segment_ms` that cover `duration_ms` (the last may be shorter),
 * -EINVAL unless both are in 1..CAPTIONS_MAX_MS, -E2BIG above CAPTIONS_MAX_SEGMENTS. */
int64_t captions_segments(int64_t segment_ms, int64_t duration_ms);

/* Receives segment `index`: a NUL-terminated WebVTT document of `len` bytes that lives until
 * the callback returns. A nonzero return stops captions_segment, which returns it. */
typedef int (*captions_segment_fn)(void *ctx, int index, const char *vtt, size_t len);

/* Hands each segment i of captions_segments(segment_ms, duration_ms) to `fn`: the header
 * "WEBVTT\nX-TIMESTAMP-MAP=MPEGTS:<mpegts_offset_90k>,LOCAL:00:00:00.000\n\n" (without the
 * X-TIMESTAMP-MAP line when mpegts_offset_90k is negative: fMP4 renditions), then every cue that
 * overlaps [i * segment_ms, (i + 1) * segment_ms) with its own times, so a cue across a
 * boundary is in both segments as HLS players expect. The track's cues must be sorted by start
 * (as captions_parse leaves them). 0, the callback's nonzero return, -EINVAL (arguments, an
 * unsorted track), -E2BIG (too many segments) or -ENOMEM. */
int captions_segment(const captions_track *t, int64_t segment_ms, int64_t duration_ms,
                     int64_t mpegts_offset_90k, captions_segment_fn fn, void *ctx);

/* Writes the subtitle media playlist (VOD, version 3) of those segments into buf, named with
 * CAPTIONS_SEGMENT_NAME; CAPTIONS_PLAYLIST_CAP(segments) bytes always suffice. Its length,
 * -ENOSPC when `cap` is too small, or an error of captions_segments. */
int captions_playlist(char *buf, size_t cap, int64_t segment_ms, int64_t duration_ms);

/* 1 when s[0..len) may name a captions language in a URL: a BCP 47-like tag of a primary
 * subtag of 2 or 3 lowercase letters and optional "-" subtags of 1 to 8 ASCII letters or
 * digits ("en", "pt-BR", "zh-Hant-TW", "es-419"), at most CAPTIONS_LANG_MAX bytes; else 0. */
int captions_lang_ok(const char *s, size_t len);

#endif
