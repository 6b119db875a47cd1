/* HTTP/1.1 responses as a client reads them: the status line and headers, then the body framing
 * (Content-Length, chunked, or until the peer closes), in the picohttpparser manner.
 *
 * owns:  nothing. Parsed names and values are slices of the caller's buffer; the header array is
 *        the caller's. The chunked decoder is a small caller-owned struct.
 * never: does I/O, allocates, or copies a header. */
#ifndef REELD_PROTO_HTTP1_RESPONSE_H
#define REELD_PROTO_HTTP1_RESPONSE_H

#include <stddef.h>
#include <stdint.h>

#define HTTP1_MAX_HEADERS    64         /* headers a response may carry */
#define HTTP1_MAX_HEAD_BYTES (64 << 10) /* status line and headers together */

/* A header as a non-owning slice of the received bytes. */
typedef struct http1_header {
    const char *name;
    size_t name_len;
    const char *value; /* leading and trailing blanks trimmed */
    size_t value_len;
} http1_header;

typedef struct http1_response {
    int minor;              /* 0 or 1: HTTP/1.x */
    int status;             /* 100..599 */
    http1_header *headers;  /* caller's array; filled */
    size_t nheaders;        /* headers found */
    int64_t content_length; /* -1 when absent */
    int chunked;            /* Transfer-Encoding ends in chunked */
    int keep_alive;         /* the connection may carry another request after this one */
} http1_response;

/* Parses the status line and headers at the start of buf[0..len) into `r`, using `headers`
 * (cap entries). Returns the bytes of the head (through the blank line), -2 when more bytes are
 * needed, or -1 when the bytes are not an HTTP/1.x response (bad status line or header, more
 * than `cap` headers, conflicting or invalid Content-Length, a head over HTTP1_MAX_HEAD_BYTES). */
int http1_parse_response(const char *buf, size_t len, http1_response *r, http1_header *headers,
                         size_t cap);

/* The value of header `name` (any case), or NULL; its length in *len. */
const char *http1_header_get(const http1_response *r, const char *name, size_t *len);

/* How the body of `r` ends, given the request's method. */
typedef enum http1_body {
    HTTP1_BODY_NONE,    /* HEAD, 1xx, 204, 304: no body at all */
    HTTP1_BODY_LENGTH,  /* content_length bytes */
    HTTP1_BODY_CHUNKED, /* chunked framing (http1_chunked_decode) */
    HTTP1_BODY_CLOSE,   /* until the peer closes: the connection cannot be reused */
} http1_body;

http1_body http1_body_kind(const http1_response *r, int head_request);

/* Decoder state for a chunked body; zero it before the first call. */
typedef struct http1_chunked {
    uint64_t left; /* bytes of chunk data still to come in the current chunk */
    int state;     /* where in the framing the decoder stands */
    int hexdigits; /* digits in the size line so far */
} http1_chunked;

/* Decodes chunked framing in place: buf[0..*len) holds received bytes; on return buf[0..*len)
 * holds only chunk data, ready for the caller. Returns -2 when the body goes on (every byte was
 * used), -1 on bad framing, or, once the last chunk and its trailers have been read, the count
 * of bytes that followed the body, moved to buf[*len .. *len + count). */
int http1_chunked_decode(http1_chunked *d, char *buf, size_t *len);

#endif
