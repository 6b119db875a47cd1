/* HLS playlist text (RFC 8216) and the codec strings it names.
 *
 * owns:  nothing: writers fill a buffer the caller supplies, parsers read the caller's bytes.
 * never: does I/O or allocates.
 *
 * A media playlist lists one rendition's segments (VOD: ENDLIST, TARGETDURATION the longest
 * segment rounded up); the master playlist lists the renditions. Both are written only once a
 * job has finished, so every number in them is final. Segments are MPEG-TS, or fragmented MP4
 * (CMAF) behind an initialisation segment that the media playlist names in EXT-X-MAP. */
#ifndef REELD_PROTO_HLS_H
#define REELD_PROTO_HLS_H

#include <stddef.h>
#include <stdint.h>

typedef struct hls_segment {
    const char *uri; /* relative to the playlist, e.g. "seg_00000.ts" */
    double duration; /* seconds */
} hls_segment;

typedef struct hls_variant {
    const char *uri;           /* relative to the master, e.g. "720p/index.m3u8" */
    int64_t bandwidth;         /* peak bits per second of any segment */
    int64_t average_bandwidth; /* total bits / total seconds */
    int width, height;         /* 0 for an audio-only variant: no RESOLUTION */
    double frame_rate;         /* 0: no FRAME-RATE */
    const char *codecs;        /* e.g. "avc1.64001f,mp4a.40.2" */
} hls_variant;

/* The EXT-X-TARGETDURATION of `n` segments: the longest duration rounded up to whole seconds,
 * durations within 1 ms of an integer counting as that integer; at least 1. */
int hls_target_duration(const hls_segment *segs, int n);

/* Writes a VOD media playlist of `n` segments into buf (NUL-terminated). `map` is the URI of the
 * fMP4 initialisation segment (EXT-X-MAP, which raises EXT-X-VERSION from 3 to 6 as RFC 8216
 * requires), or NULL for MPEG-TS segments. Returns its length, or -ENOSPC when `cap` is too
 * small (buf then holds a truncated prefix). */
int hls_write_media(char *buf, size_t cap, const char *map, const hls_segment *segs, int n);

/* Writes the master playlist of `n` variants. Returns the length or -ENOSPC, as above. */
int hls_write_master(char *buf, size_t cap, const hls_variant *v, int n);

/* A subtitle rendition for hls_master_subtitles. Names and languages must hold no '"' and no
 * control byte (the API checks them). */
typedef struct hls_subtitle {
    const char *lang; /* LANGUAGE, e.g. "en" or "pt-BR" */
    const char *name; /* NAME, shown in players' menus */
    const char *uri;  /* its media playlist, relative to the master */
    int is_default;
} hls_subtitle;

/* Rewrites the master playlist in[0..len) with exactly these `n` subtitle renditions (0: none):
 * its EXT-X-MEDIA TYPE=SUBTITLES lines and the SUBTITLES attribute of every EXT-X-STREAM-INF
 * are replaced, the new EXT-X-MEDIA lines (GROUP-ID "subs") go before the first variant, and
 * every variant names the group. Anything else is kept as it was. Idempotent. Returns the
 * length written to out (NUL-terminated), -ENOSPC, or -EINVAL when `in` has no variant. */
int hls_master_subtitles(const char *in, size_t len, const hls_subtitle *subs, int n, char *out,
                         size_t cap);

/* Finds the first H.264 SPS in Annex B bytes and writes its RFC 6381 name ("avc1.PPCCLL") into
 * `out` (at least 12 bytes). Returns 0, or -ENOENT when there is no SPS. */
int hls_avc1_codec(const uint8_t *annexb, size_t n, char *out, size_t cap);

/* The Content-Type of an object of a ladder, by its name's extension: playlists, MPEG-TS and
 * fMP4 segments (init.mp4 and .m4s are video/mp4), the download (.mp4), the posters (JPEG,
 * WebP), the storyboard (sprites .jpg, its WebVTT .vtt: text/vtt); "application/octet-stream"
 * for anything else. The string is static. */
const char *hls_content_type(const char *name);

#endif
