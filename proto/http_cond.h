/* Conditional and partial GETs (RFC 9110 §13, §14): the Range, If-None-Match and
 * If-Modified-Since headers of a request for a representation whose size, ETag and
 * modification time are known.
 *
 * owns:  nothing; no I/O, no allocation. Header values are the caller's slices.
 *
 * Ranges: one range ("bytes=0-99", "bytes=100-", "bytes=-100") is served as 206. Several
 * ranges are answered with the whole representation (200): RFC 9110 lets a server ignore
 * Range, and players ask for one range at a time, so multipart/byteranges is not worth its
 * code. A Range that is not "bytes=" or does not parse is ignored (200) as the RFC says; a
 * well-formed single range that starts at or past the end is unsatisfiable (416). */
#ifndef REELD_PROTO_HTTP_COND_H
#define REELD_PROTO_HTTP_COND_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

enum {
    HTTPCOND_FULL = 0,           /* no usable Range: send everything (200) */
    HTTPCOND_PARTIAL = 1,        /* one satisfiable range: 206 with [*start, *end] */
    HTTPCOND_UNSATISFIABLE = -1, /* 416 with "Content-Range: bytes * /size" */
};

/* Reads a Range header value (`value` may be NULL: absent) against a representation of `size`
 * bytes. On HTTPCOND_PARTIAL, *start and *end are the first and last byte (inclusive). */
int httpcond_range(const char *value, size_t len, uint64_t size, uint64_t *start, uint64_t *end);

/* 1 when the If-None-Match value matches `etag` (the quoted strong tag, as sent in ETag) by
 * the weak comparison that GET uses: "*", or any listed tag with or without a W/ prefix. */
int httpcond_none_match(const char *value, size_t len, const char *etag);

/* Parses an IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT"). 0 with *out set, or -EINVAL (the
 * obsolete RFC 850 and asctime forms are refused: If-Modified-Since is then ignored). */
int httpcond_parse_date(const char *value, size_t len, time_t *out);

/* 1 when the request's conditions say "not modified" (304): If-None-Match matches, or, only
 * when there is no If-None-Match, If-Modified-Since is at or after `mtime`. NULL values are
 * absent headers. */
int httpcond_not_modified(const char *inm, size_t inm_len, const char *ims, size_t ims_len,
                          const char *etag, time_t mtime);

#endif
