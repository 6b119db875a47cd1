/* HTTP/1.1 on the wire: request heads, request-body framing, chunked bodies, response heads.
 *
 * No I/O, no allocation: the parsers read a caller's buffer and fill a caller's structs (the
 * header array too); slices point into the buffer and are valid as long as it is. Parsers
 * return bytes consumed (> 0), HTTP1_PARTIAL when more input is needed, HTTP1_BAD when the
 * input can never be valid. Writers fill a caller's buffer and return the length written or
 * -ENOSPC.
 *
 * Strict where leniency lets two parsers disagree about where a request ends (request
 * smuggling): lines end in CRLF, no whitespace before a header's colon, no folded headers,
 * Content-Length with Transfer-Encoding is refused, as are differing Content-Length values,
 * any transfer coding other than a lone "chunked", and a malformed chunk size. */
#ifndef REELD_PROTO_HTTP1_H
#define REELD_PROTO_HTTP1_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

enum {
    HTTP1_BAD = -1,              /* malformed: answer 400 and close */
    HTTP1_PARTIAL = -2,          /* incomplete: read more */
    HTTP1_TOO_MANY_HEADERS = -3, /* more headers than the caller's array holds: 431 */
};

#define HTTP1_MAX_HEADERS 100

/* A non-owning slice of the caller's buffer. */
typedef struct http1_str {
    const char *p;
    size_t len;
} http1_str;

typedef struct http1_header {
    http1_str name;
    http1_str value; /* leading and trailing whitespace removed */
} http1_header;

typedef struct http1_request {
    http1_str method;
    http1_str target; /* origin-form: path and query, as sent */
    http1_str path;   /* target up to '?' */
    http1_str query;  /* after '?', without it; empty when none */
    int minor;        /* HTTP/1.<minor>: 0 or 1 */
    http1_header *headers;
    size_t num_headers;
} http1_request;

/* Parses one request head at the start of buf[0..len): the request line, the headers and the
 * blank line (empty lines before the request line are skipped, as RFC 9112 allows). `headers`
 * has room for `max_headers`; req->headers points at it afterwards. Returns the head's length
 * including the blank line, HTTP1_PARTIAL, HTTP1_BAD, or HTTP1_TOO_MANY_HEADERS. */
int http1_parse_request(const char *buf, size_t len, http1_request *req, http1_header *headers,
                        size_t max_headers);

/* How a parsed request's body is framed, and what the client asked of the connection. */
typedef struct http1_framing {
    int64_t content_length; /* -1: none given */
    int chunked;            /* Transfer-Encoding: chunked */
    int keep_alive;         /* 1.1 unless "Connection: close"; 1.0 only with "keep-alive" */
    int expect_continue;    /* "Expect: 100-continue" */
} http1_framing;

/* Reads the framing headers of `req`. 0, or HTTP1_BAD for anything a proxy in front of us
 * might read differently: Content-Length with Transfer-Encoding, two differing lengths, a
 * length that is not a plain decimal number, a transfer coding other than "chunked", a
 * missing or repeated Host on HTTP/1.1. */
int http1_framing_of(const http1_request *req, http1_framing *out);

/* The raw value of `name` in a query string (the bytes after '?', not decoded), the first
 * occurrence: a slice of `query`; "name" alone gives an empty value; p == NULL when absent. */
http1_str http1_query_param(http1_str query, const char *name);

/* Percent-decodes src[0..len) into dst (cap bytes with the NUL; '+' stays '+'). Returns the
 * length, -EINVAL on a bad escape or a decoded NUL, -ENAMETOOLONG when it does not fit. */
int http1_pct_decode(char *dst, size_t cap, const char *src, size_t len);

/* The first header named `name` (case-insensitive), or NULL. */
const http1_header *http1_find_header(const http1_request *req, const char *name);

/* Chunked body decoder state; zero it before the first call. */
typedef struct http1_chunked {
    int state;
    uint64_t left;     /* bytes left in the current chunk, or digits read of its size */
    uint32_t line_len; /* bytes of the current size line, extension or trailer part */
    uint32_t trailer;  /* bytes of trailers seen */
} http1_chunked;

/* Decodes chunked data from in[0..len) into out (out may be in itself: the output never
 * runs ahead of the input). Sets *consumed and *produced. Returns 1 when the last chunk and
 * its trailers have been read (the next request starts at in + *consumed), 0 when all input
 * was used and more is needed, HTTP1_BAD on a bad chunk size or missing CRLF. */
int http1_chunked_decode(http1_chunked *d, const char *in, size_t len, size_t *consumed, char *out,
                         size_t *produced);

/* The reason phrase of a status code ("Unknown" for codes we never send). */
const char *http1_reason(int status);

/* IMF-fixdate of `t` ("Sun, 06 Nov 1994 08:49:37 GMT"), HTTP1_DATE_LEN characters and a NUL
 * (the year is written modulo 10000: always four digits). */
#define HTTP1_DATE_LEN 29
void http1_date(time_t t, char out[HTTP1_DATE_LEN + 1]);

/* content_length of a body that ends when the connection closes (streaming to HTTP/1.0). */
#define HTTP1_UNTIL_CLOSE (-2)

/* A response head: status line, Date, Server, Content-Type (when not NULL), Content-Length
 * (or "Transfer-Encoding: chunked" when content_length is -1, neither for HTTP1_UNTIL_CLOSE),
 * "Connection: close" when
 * !keep_alive, the caller's `extra` header lines (each ending in CRLF; may be NULL), and the
 * blank line. Returns its length or -ENOSPC. */
int http1_write_head(char *out, size_t cap, int status, const char *date, const char *server,
                     const char *content_type, int64_t content_length, int keep_alive,
                     const char *extra);

/* The JSON error body {"error":{"code":"…","message":"…"}} (strings escaped). Returns its
 * length or -ENOSPC. */
int http1_write_error_json(char *out, size_t cap, const char *code, const char *message);

#endif
