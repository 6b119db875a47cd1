/* HTTP/1.1 responses as a client reads them: the status line and headers, and how the body
 * ends (Content-Length, chunked, or when the peer closes), in the picohttpparser manner. Header
 * slices and the chunked decoder are the server's (proto/http1.h): one wire format, one set of
 * types.
 *
 * owns:  nothing. Parsed names and values are slices of the caller's buffer; the header array is
 *        the caller's.
 * never: does I/O, allocates, or copies a header. */
#ifndef REELD_PROTO_HTTP1_RESPONSE_H
#define REELD_PROTO_HTTP1_RESPONSE_H

#include <stddef.h>
#include <stdint.h>

#include "proto/http1.h"

#define HTTP1_RESPONSE_MAX_HEAD (64 << 10) /* status line and headers together */

typedef struct http1_response {
    int minor;              /* 0 or 1: HTTP/1.x */
    int status;             /* 100..999 */
    http1_header *headers;  /* the caller's array; filled */
    size_t num_headers;     /* headers found */
    int64_t content_length; /* -1 when absent */
    int chunked;            /* Transfer-Encoding ends in chunked */
    int keep_alive;         /* the connection may carry another request after this one */
} http1_response;

/* Parses the status line and headers at the start of buf[0..len) into `r`, using `headers`
 * (cap entries). Returns the bytes of the head (through the blank line), HTTP1_PARTIAL when
 * more bytes are needed, HTTP1_TOO_MANY_HEADERS past `cap`, or HTTP1_BAD when the bytes are not
 * an HTTP/1.x response (bad status line or header, conflicting or invalid Content-Length, a
 * head over HTTP1_RESPONSE_MAX_HEAD). */
int http1_parse_response(const char *buf, size_t len, http1_response *r, http1_header *headers,
                         size_t cap);

/* The value of the first header `name` (any case) of `r`, or NULL; its length in *len. */
const char *http1_response_header(const http1_response *r, const char *name, size_t *len);

/* How the body of `r` ends, given the request's method. */
typedef enum http1_body {
    HTTP1_BODY_NONE,    /* HEAD, 1xx, 204, 304: no body at all */
    HTTP1_BODY_LENGTH,  /* content_length bytes */
    HTTP1_BODY_CHUNKED, /* chunked framing (http1_chunked_decode) */
    HTTP1_BODY_CLOSE,   /* until the peer closes: the connection cannot be reused */
} http1_body;

http1_body http1_body_kind(const http1_response *r, int head_request);

#endif
