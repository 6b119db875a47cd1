/* HTTP/1.1 request parsing and response heads; see http1.h for the contract and the
 * strictness rules. Everything here works on the caller's bytes and nothing else. */
#include "proto/http1.h"
#include "proto/wbuf.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

/* Byte classes, one table lookup a byte: the parser's loops were a few compares and a strchr
 * a byte, and a request head is parsed once per request. */
enum {
    C_TCHAR = 1,  /* RFC 9110 tchar: methods and header names */
    C_VALUE = 2,  /* header value bytes: visible ASCII, space, tab, obs-text (no CR, LF, NUL,
                   * other controls or DEL) */
    C_TARGET = 4, /* request-target bytes: visible ASCII */
};
static const uint8_t cls[256] = {
    0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, /* 0x00 */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 0x10 */
    2, 7, 6, 7, 7, 7, 7, 7, 6, 6, 7, 7, 6, 7, 7, 6, /* 0x20  !"#$%&'()*+,-./ */
    7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 6, 6, 6, 6, 6, 6, /* 0x30 0-9:;<=>? */
    6, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, /* 0x40 @A-O */
    7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 6, 6, 6, 7, 7, /* 0x50 P-Z[\]^_ */
    7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, /* 0x60 `a-o */
    7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 6, 7, 6, 7, 0, /* 0x70 p-z{|}~ DEL */
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, /* 0x80: obs-text */
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, /* 0x90: obs-text */
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, /* 0xa0: obs-text */
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, /* 0xb0: obs-text */
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, /* 0xc0: obs-text */
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, /* 0xd0: obs-text */
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, /* 0xe0: obs-text */
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, /* 0xf0: obs-text */
};

/* The bytes from p while they are of class k. */
static inline const char *span(const char *p, const char *end, unsigned k)
{
    while (p < end && (cls[(unsigned char)*p] & k))
        p++;
    return p;
}

#if defined(__SSE2__)
#include <emmintrin.h>

/* The request-target and header values are the long runs of a head (a signed link's target is
 * ~100 bytes, a browser's User-Agent more): 16 bytes a step while 16 remain, then the table.
 * Signed compares: obs-text (0x80-0xff) reads as negative. */
static inline const char *span_target(const char *p, const char *end)
{
    const __m128i lo = _mm_set1_epi8(0x21), hi = _mm_set1_epi8(0x7e);
    while (end - p >= 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)p);
        unsigned m =
            (unsigned)_mm_movemask_epi8(_mm_or_si128(_mm_cmplt_epi8(v, lo), _mm_cmpgt_epi8(v, hi)));
        if (m)
            return p + __builtin_ctz(m);
        p += 16;
    }
    return span(p, end, C_TARGET);
}

static inline const char *span_value(const char *p, const char *end)
{
    const __m128i sp = _mm_set1_epi8(0x20), none = _mm_set1_epi8(-1);
    const __m128i tab = _mm_set1_epi8(0x09), del = _mm_set1_epi8(0x7f);
    while (end - p >= 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)p);
        __m128i ctl = _mm_and_si128(_mm_cmplt_epi8(v, sp), _mm_cmpgt_epi8(v, none));
        ctl = _mm_andnot_si128(_mm_cmpeq_epi8(v, tab), ctl); /* 0x00-0x1f but tab */
        unsigned m = (unsigned)_mm_movemask_epi8(_mm_or_si128(ctl, _mm_cmpeq_epi8(v, del)));
        if (m)
            return p + __builtin_ctz(m);
        p += 16;
    }
    return span(p, end, C_VALUE);
}
#else
static inline const char *span_target(const char *p, const char *end)
{
    return span(p, end, C_TARGET);
}

static inline const char *span_value(const char *p, const char *end)
{
    return span(p, end, C_VALUE);
}
#endif

/* The CRLF expected at p: 0 when it is there, HTTP1_PARTIAL when the input ends first,
 * HTTP1_BAD for anything else (a bare CR or LF, or a byte the line may not hold). */
static inline int crlf_at(const char *p, const char *end)
{
    if (p == end || (*p == '\r' && p + 1 == end))
        return HTTP1_PARTIAL;
    return p[0] == '\r' && p[1] == '\n' ? 0 : HTTP1_BAD;
}

/* One pass over each byte: every loop stops at the first byte its part may not hold, and that
 * byte decides: the end of the input is PARTIAL, the delimiter the grammar wants goes on,
 * anything else is BAD at once (a head that can never become valid is not waited for). */
int http1_parse_request(const char *buf, size_t len, http1_request *req, http1_header *headers,
                        size_t max_headers)
{
    const char *p = buf, *end = buf + len;
    /* Empty lines before the request line are tolerated (RFC 9112 2.2). */
    while (end - p >= 2 && p[0] == '\r' && p[1] == '\n')
        p += 2;
    if (p < end && *p == '\r') /* the CR of an empty line whose LF has not come yet, or a bare CR */
        return p + 1 == end ? HTTP1_PARTIAL : HTTP1_BAD;
    /* The request line: method SP origin-form SP "HTTP/1." ("0" / "1") CRLF. */
    const char *s = span(p, end, C_TCHAR);
    if (s == end)
        return HTTP1_PARTIAL;
    if (s == p || *s != ' ')
        return HTTP1_BAD;
    req->method = (http1_str){p, (size_t)(s - p)};
    const char *t = ++s;
    s = span_target(t, end);
    if (s == end)
        return t < end && *t != '/' ? HTTP1_BAD : HTTP1_PARTIAL;
    if (s == t || *s != ' ' || *t != '/')
        return HTTP1_BAD; /* origin-form only: "*" and absolute-form have no route here */
    req->target = (http1_str){t, (size_t)(s - t)};
    const char *q = memchr(t, '?', (size_t)(s - t));
    req->path = (http1_str){t, (size_t)((q ? q : s) - t)};
    req->query = q ? (http1_str){q + 1, (size_t)(s - q - 1)} : (http1_str){s, 0};
    s++;
    static const char version[] = "HTTP/1.";
    for (size_t i = 0; i < sizeof(version) - 1; i++) {
        if (s + i == end)
            return HTTP1_PARTIAL;
        if (s[i] != version[i])
            return HTTP1_BAD;
    }
    s += sizeof(version) - 1;
    if (s == end)
        return HTTP1_PARTIAL;
    if (*s != '0' && *s != '1')
        return HTTP1_BAD;
    req->minor = *s - '0';
    int r = crlf_at(s + 1, end);
    if (r < 0)
        return r;
    p = s + 3;
    req->headers = headers;
    req->num_headers = 0;
    for (;;) {
        /* The blank line ends the head. */
        if (p == end || *p == '\r') {
            r = crlf_at(p, end);
            return r < 0 ? r : (int)(p + 2 - buf);
        }
        const char *line = p;
        const char *c = span(line, end, C_TCHAR);
        if (c == end)
            return HTTP1_PARTIAL;
        /* An empty name, whitespace before the colon or a folded line are all refused. */
        if (c == line || *c != ':')
            return HTTP1_BAD;
        const char *lend = span_value(c + 1, end);
        r = crlf_at(lend, end);
        if (r < 0)
            return r;
        p = lend + 2;
        const char *v = c + 1;
        while (v < lend && (*v == ' ' || *v == '\t'))
            v++;
        const char *ve = lend;
        while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
            ve--;
        if (req->num_headers == max_headers)
            return HTTP1_TOO_MANY_HEADERS;
        headers[req->num_headers++] = (http1_header){
            .name = {line, (size_t)(c - line)},
            .value = {v, (size_t)(ve - v)},
        };
    }
}

static int str_ieq(http1_str s, const char *lit)
{
    size_t n = strlen(lit);
    return s.len == n && strncasecmp(s.p, lit, n) == 0;
}

/* `p` equals the lowercase `lower` but for ASCII case: inline, not strncasecmp's call and
 * locale tables, for the few names every request's framing looks at. */
static inline int ieq_lower(const char *p, const char *lower, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        if ((c >= 'A' && c <= 'Z' ? c + 32 : c) != (unsigned char)lower[i])
            return 0;
    }
    return 1;
}

/* str_ieq with a literal: its length known at compile time, so most names cost one compare. */
#define STR_IEQ_LIT(s, lit) ((s).len == sizeof(lit) - 1 && ieq_lower((s).p, lit, sizeof(lit) - 1))

const http1_header *http1_find_header(const http1_request *req, const char *name)
{
    for (size_t i = 0; i < req->num_headers; i++)
        if (str_ieq(req->headers[i].name, name))
            return &req->headers[i];
    return NULL;
}

/* A Content-Length value: decimal digits, possibly a comma-separated list of the same number
 * (RFC 9110 8.6 lets a recipient accept "5, 5"). -1 when bad. */
static int64_t parse_length(http1_str v)
{
    int64_t val = -1;
    size_t i = 0;
    while (i <= v.len) {
        while (i < v.len && (v.p[i] == ' ' || v.p[i] == '\t'))
            i++;
        size_t start = i;
        int64_t x = 0;
        while (i < v.len && v.p[i] >= '0' && v.p[i] <= '9') {
            if (x > (INT64_MAX - 9) / 10)
                return -1;
            x = x * 10 + (v.p[i] - '0');
            i++;
        }
        if (i == start)
            return -1;
        if (val >= 0 && x != val)
            return -1;
        val = x;
        while (i < v.len && (v.p[i] == ' ' || v.p[i] == '\t'))
            i++;
        if (i == v.len)
            return val;
        if (v.p[i] != ',')
            return -1;
        i++;
    }
    return -1;
}

/* 1 when the comma-separated list in a header value holds `token` (case-insensitive). */
static int has_token(http1_str v, const char *token)
{
    size_t i = 0;
    while (i < v.len) {
        while (i < v.len && (v.p[i] == ' ' || v.p[i] == '\t' || v.p[i] == ','))
            i++;
        size_t s = i;
        while (i < v.len && v.p[i] != ',')
            i++;
        size_t e = i;
        while (e > s && (v.p[e - 1] == ' ' || v.p[e - 1] == '\t'))
            e--;
        if (e > s && str_ieq((http1_str){v.p + s, e - s}, token))
            return 1;
    }
    return 0;
}

int http1_framing_of(const http1_request *req, http1_framing *out)
{
    out->content_length = -1;
    out->chunked = 0;
    out->keep_alive = req->minor >= 1;
    out->expect_continue = 0;
    int te = 0, hosts = 0;
    for (size_t i = 0; i < req->num_headers; i++) {
        const http1_header *h = &req->headers[i];
        if (STR_IEQ_LIT(h->name, "content-length")) {
            int64_t n = parse_length(h->value);
            if (n < 0 || (out->content_length >= 0 && n != out->content_length))
                return HTTP1_BAD;
            out->content_length = n;
        } else if (STR_IEQ_LIT(h->name, "transfer-encoding")) {
            /* Only a lone "chunked", once: anything else is a coding we cannot frame. */
            if (te++ || !STR_IEQ_LIT(h->value, "chunked"))
                return HTTP1_BAD;
            out->chunked = 1;
        } else if (STR_IEQ_LIT(h->name, "connection")) {
            if (has_token(h->value, "close"))
                out->keep_alive = 0;
            else if (req->minor == 0 && has_token(h->value, "keep-alive"))
                out->keep_alive = 1;
        } else if (STR_IEQ_LIT(h->name, "expect")) {
            if (STR_IEQ_LIT(h->value, "100-continue"))
                out->expect_continue = 1;
        } else if (STR_IEQ_LIT(h->name, "host")) {
            hosts++;
        }
    }
    if (te && out->content_length >= 0)
        return HTTP1_BAD;
    if (te && req->minor == 0)
        return HTTP1_BAD; /* HTTP/1.0 has no chunked coding */
    if (req->minor >= 1 && hosts != 1)
        return HTTP1_BAD;
    if (hosts > 1)
        return HTTP1_BAD;
    return 0;
}

/* ---- chunked bodies ---- */

enum {
    CH_SIZE,    /* hex digits of a chunk size */
    CH_EXT,     /* after ';': a chunk extension, skipped */
    CH_SIZE_LF, /* CR seen after the size line */
    CH_DATA,    /* chunk bytes */
    CH_DATA_CR, /* expecting CR after the data */
    CH_DATA_LF, /* expecting LF after the data */
    CH_TRAILER, /* at the start of a trailer line (or the final CRLF) */
    CH_TRAILER_LINE,
    CH_TRAILER_LF, /* CR seen ending a trailer line */
    CH_END_LF,     /* CR seen on the empty line that ends the body */
};

#define CH_MAX_LINE    4096 /* a size line with extensions */
#define CH_MAX_TRAILER 8192 /* all trailers together */

static int hexval(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int http1_chunked_decode(http1_chunked *d, const char *in, size_t len, size_t *consumed, char *out,
                         size_t *produced)
{
    size_t i = 0, o = 0;
    int r = 0;
    while (i < len) {
        unsigned char c = (unsigned char)in[i];
        switch (d->state) {
        case CH_SIZE: {
            int h = hexval(c);
            if (h >= 0) {
                /* left counts the size; line_len its digits (at most 15: < 2^60). */
                if (++d->line_len > 15)
                    return HTTP1_BAD;
                d->left = d->left * 16 + (uint64_t)h;
                i++;
            } else if (d->line_len == 0) {
                return HTTP1_BAD;
            } else if (c == ';') {
                d->state = CH_EXT;
                i++;
            } else if (c == '\r') {
                d->state = CH_SIZE_LF;
                i++;
            } else {
                return HTTP1_BAD; /* no whitespace, no sign, no "0x" */
            }
            break;
        }
        case CH_EXT:
            if (c == '\r') {
                d->state = CH_SIZE_LF;
            } else if (c == '\n' || ++d->line_len > CH_MAX_LINE) {
                return HTTP1_BAD;
            }
            i++;
            break;
        case CH_SIZE_LF:
            if (c != '\n')
                return HTTP1_BAD;
            i++;
            d->line_len = 0;
            d->state = d->left == 0 ? CH_TRAILER : CH_DATA;
            break;
        case CH_DATA: {
            size_t n = len - i;
            if (n > d->left)
                n = (size_t)d->left;
            memmove(out + o, in + i, n);
            o += n;
            i += n;
            d->left -= n;
            if (d->left == 0)
                d->state = CH_DATA_CR;
            break;
        }
        case CH_DATA_CR:
            if (c != '\r')
                return HTTP1_BAD;
            i++;
            d->state = CH_DATA_LF;
            break;
        case CH_DATA_LF:
            if (c != '\n')
                return HTTP1_BAD;
            i++;
            d->state = CH_SIZE;
            d->left = 0;
            d->line_len = 0;
            break;
        case CH_TRAILER:
            if (c == '\r') {
                d->state = CH_END_LF;
                i++;
                break;
            }
            d->state = CH_TRAILER_LINE;
            /* fall through */
        case CH_TRAILER_LINE:
            if (c == '\r')
                d->state = CH_TRAILER_LF;
            else if (c == '\n' || ++d->trailer > CH_MAX_TRAILER)
                return HTTP1_BAD;
            i++;
            break;
        case CH_TRAILER_LF:
            if (c != '\n')
                return HTTP1_BAD;
            i++;
            d->state = CH_TRAILER;
            break;
        case CH_END_LF:
            if (c != '\n')
                return HTTP1_BAD;
            i++;
            r = 1;
            goto done;
        default:
            return HTTP1_BAD;
        }
    }
done:
    *consumed = i;
    *produced = o;
    return r;
}

/* ---- responses ---- */

const char *http1_reason(int status)
{
    switch (status) {
    case 100:
        return "Continue";
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 202:
        return "Accepted";
    case 204:
        return "No Content";
    case 206:
        return "Partial Content";
    case 301:
        return "Moved Permanently";
    case 302:
        return "Found";
    case 304:
        return "Not Modified";
    case 308:
        return "Permanent Redirect";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 408:
        return "Request Timeout";
    case 409:
        return "Conflict";
    case 410:
        return "Gone";
    case 413:
        return "Content Too Large";
    case 416:
        return "Range Not Satisfiable";
    case 422:
        return "Unprocessable Content";
    case 429:
        return "Too Many Requests";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 501:
        return "Not Implemented";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    case 504:
        return "Gateway Timeout";
    default:
        return "Unknown";
    }
}

void http1_date(time_t t, char out[HTTP1_DATE_LEN + 1])
{
    static const char days[7][4] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char months[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                       "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    struct tm tm;
    gmtime_r(&t, &tm);
    /* By hand, not snprintf: the edge writes one per response (Last-Modified). */
    unsigned year = (unsigned)(tm.tm_year + 1900) % 10000;
    rd_wbuf w = wbuf_init(out, 30);
    wbuf_put(&w, days[tm.tm_wday % 7], 3);
    wbuf_put(&w, ", ", 2);
    wbuf_dec2(&w, (unsigned)tm.tm_mday);
    wbuf_chr(&w, ' ');
    wbuf_put(&w, months[tm.tm_mon % 12], 3);
    wbuf_chr(&w, ' ');
    wbuf_dec2(&w, year / 100);
    wbuf_dec2(&w, year % 100);
    wbuf_chr(&w, ' ');
    wbuf_dec2(&w, (unsigned)tm.tm_hour);
    wbuf_chr(&w, ':');
    wbuf_dec2(&w, (unsigned)tm.tm_min);
    wbuf_chr(&w, ':');
    wbuf_dec2(&w, (unsigned)tm.tm_sec);
    wbuf_put(&w, " GMT", 4);
    wbuf_end(&w);
}

int http1_write_head(char *out, size_t cap, int status, const char *date, const char *server,
                     const char *content_type, int64_t content_length, int keep_alive,
                     const char *extra)
{
    rd_wbuf w = wbuf_init(out, cap);
    wbuf_str(&w, "HTTP/1.1 ");
    wbuf_uint(&w, (uint64_t)status);
    wbuf_put(&w, " ", 1);
    wbuf_str(&w, http1_reason(status));
    wbuf_str(&w, "\r\nDate: ");
    wbuf_str(&w, date);
    wbuf_str(&w, "\r\nServer: ");
    wbuf_str(&w, server);
    if (content_type != NULL) {
        wbuf_str(&w, "\r\nContent-Type: ");
        wbuf_str(&w, content_type);
    }
    if (content_length >= 0) {
        wbuf_str(&w, "\r\nContent-Length: ");
        wbuf_uint(&w, (uint64_t)content_length);
    } else if (content_length != HTTP1_UNTIL_CLOSE) {
        wbuf_str(&w, "\r\nTransfer-Encoding: chunked");
    }
    if (!keep_alive)
        wbuf_str(&w, "\r\nConnection: close");
    wbuf_str(&w, "\r\n");
    if (extra != NULL)
        wbuf_str(&w, extra);
    wbuf_str(&w, "\r\n");
    return w.err ? w.err : (int)w.len;
}

static void put_json_string(rd_wbuf *w, const char *s)
{
    wbuf_put(w, "\"", 1);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            char e[2] = {'\\', (char)c};
            wbuf_put(w, e, 2);
        } else if (c < 0x20) {
            char e[8];
            snprintf(e, sizeof(e), "\\u%04x", c);
            wbuf_put(w, e, 6);
        } else {
            wbuf_put(w, (const char *)&c, 1);
        }
    }
    wbuf_put(w, "\"", 1);
}

int http1_write_error_json(char *out, size_t cap, const char *code, const char *message)
{
    rd_wbuf w = wbuf_init(out, cap);
    wbuf_str(&w, "{\"error\":{\"code\":");
    put_json_string(&w, code);
    wbuf_str(&w, ",\"message\":");
    put_json_string(&w, message);
    wbuf_str(&w, "}}");
    return w.err ? w.err : (int)w.len;
}

http1_str http1_query_param(http1_str query, const char *name)
{
    size_t nl = strlen(name), i = 0;
    while (i < query.len) {
        size_t end = i;
        while (end < query.len && query.p[end] != '&')
            end++;
        if (end - i > nl && memcmp(query.p + i, name, nl) == 0 && query.p[i + nl] == '=')
            return (http1_str){query.p + i + nl + 1, end - i - nl - 1};
        if (end - i == nl && memcmp(query.p + i, name, nl) == 0)
            return (http1_str){query.p + end, 0};
        i = end + 1;
    }
    return (http1_str){NULL, 0};
}

int http1_pct_decode(char *dst, size_t cap, const char *src, size_t len)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        char c = src[i];
        if (c == '%') {
            int h, l;
            if (i + 2 >= len || (h = hexval((unsigned char)src[i + 1])) < 0 ||
                (l = hexval((unsigned char)src[i + 2])) < 0)
                return -EINVAL;
            c = (char)(h * 16 + l);
            i += 2;
        }
        if (c == '\0')
            return -EINVAL;
        if (n + 1 >= cap)
            return -ENAMETOOLONG;
        dst[n++] = c;
    }
    dst[n] = '\0';
    return (int)n;
}
