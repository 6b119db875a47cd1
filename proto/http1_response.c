/* HTTP/1.1 response heads and chunked bodies. See http1_response.h. */
#include "proto/http1_response.h"

#include <string.h>

static int lower(int c)
{
    return c >= 'A' && c <= 'Z' ? c + 32 : c;
}

static int name_is(const char *s, size_t n, const char *want)
{
    size_t wl = strlen(want);
    if (n != wl)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (lower((unsigned char)s[i]) != want[i])
            return 0;
    return 1;
}

/* 1 when the comma-separated list s[0..n) contains `token` (any case). */
static int list_has(const char *s, size_t n, const char *token)
{
    size_t i = 0;
    while (i < n) {
        while (i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == ','))
            i++;
        size_t b = i;
        while (i < n && s[i] != ',')
            i++;
        size_t e = i;
        while (e > b && (s[e - 1] == ' ' || s[e - 1] == '\t'))
            e--;
        if (e > b && name_is(s + b, e - b, token))
            return 1;
    }
    return 0;
}

/* The last element of a comma-separated list is `token`. */
static int list_ends_with(const char *s, size_t n, const char *token)
{
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
        n--;
    size_t b = n;
    while (b > 0 && s[b - 1] != ',')
        b--;
    while (b < n && (s[b] == ' ' || s[b] == '\t'))
        b++;
    return name_is(s + b, n - b, token);
}

static int is_tchar(int c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

int http1_parse_response(const char *buf, size_t len, http1_response *r, http1_header *headers,
                         size_t cap)
{
    /* Find the end of the head first: a partial head is the common case and costs one scan. */
    size_t end = 0;
    for (size_t i = 0; i < len; i++) {
        if (buf[i] != '\n')
            continue;
        if (i >= 1 && buf[i - 1] == '\n') {
            end = i + 1;
            break;
        }
        if (i >= 2 && buf[i - 1] == '\r' && buf[i - 2] == '\n') {
            end = i + 1;
            break;
        }
    }
    if (end == 0)
        return len >= HTTP1_MAX_HEAD_BYTES ? -1 : -2;
    if (end > HTTP1_MAX_HEAD_BYTES)
        return -1;

    memset(r, 0, sizeof(*r));
    r->headers = headers;
    r->content_length = -1;
    /* "HTTP/1.x SSS reason" */
    if (end < 13 || memcmp(buf, "HTTP/1.", 7) != 0 || (buf[7] != '0' && buf[7] != '1') ||
        buf[8] != ' ')
        return -1;
    r->minor = buf[7] - '0';
    for (int i = 9; i < 12; i++) {
        if (buf[i] < '0' || buf[i] > '9')
            return -1;
        r->status = r->status * 10 + (buf[i] - '0');
    }
    if (r->status < 100 || (buf[12] != ' ' && buf[12] != '\r' && buf[12] != '\n'))
        return -1;
    size_t p = 12;
    while (buf[p] != '\n')
        p++;
    p++;

    int conn_close = 0, conn_keep = 0;
    while (p < end) {
        size_t eol = p;
        while (buf[eol] != '\n')
            eol++;
        size_t stop = eol > p && buf[eol - 1] == '\r' ? eol - 1 : eol;
        if (stop == p)
            break; /* the blank line */
        size_t colon = p;
        while (colon < stop && is_tchar((unsigned char)buf[colon]))
            colon++;
        if (colon == p || colon == stop || buf[colon] != ':')
            return -1;
        size_t vb = colon + 1, ve = stop;
        while (vb < ve && (buf[vb] == ' ' || buf[vb] == '\t'))
            vb++;
        while (ve > vb && (buf[ve - 1] == ' ' || buf[ve - 1] == '\t'))
            ve--;
        if (r->nheaders == cap)
            return -1;
        http1_header *h = &headers[r->nheaders++];
        h->name = buf + p;
        h->name_len = colon - p;
        h->value = buf + vb;
        h->value_len = ve - vb;

        if (name_is(h->name, h->name_len, "content-length")) {
            if (h->value_len == 0 || h->value_len > 18)
                return -1;
            int64_t v = 0;
            for (size_t i = 0; i < h->value_len; i++) {
                if (h->value[i] < '0' || h->value[i] > '9')
                    return -1;
                v = v * 10 + (h->value[i] - '0');
            }
            if (r->content_length >= 0 && r->content_length != v)
                return -1;
            r->content_length = v;
        } else if (name_is(h->name, h->name_len, "transfer-encoding")) {
            r->chunked = list_ends_with(h->value, h->value_len, "chunked");
        } else if (name_is(h->name, h->name_len, "connection")) {
            conn_close |= list_has(h->value, h->value_len, "close");
            conn_keep |= list_has(h->value, h->value_len, "keep-alive");
        }
        p = eol + 1;
    }
    r->keep_alive = r->minor == 1 ? !conn_close : conn_keep && !conn_close;
    return (int)end;
}

const char *http1_header_get(const http1_response *r, const char *name, size_t *len)
{
    for (size_t i = 0; i < r->nheaders; i++) {
        if (name_is(r->headers[i].name, r->headers[i].name_len, name)) {
            *len = r->headers[i].value_len;
            return r->headers[i].value;
        }
    }
    *len = 0;
    return NULL;
}

http1_body http1_body_kind(const http1_response *r, int head_request)
{
    if (head_request || r->status < 200 || r->status == 204 || r->status == 304)
        return HTTP1_BODY_NONE;
    if (r->chunked)
        return HTTP1_BODY_CHUNKED; /* chunked wins over Content-Length (RFC 9112 6.3) */
    if (r->content_length >= 0)
        return HTTP1_BODY_LENGTH;
    return HTTP1_BODY_CLOSE;
}

enum {
    CH_SIZE,    /* hex digits of the chunk size */
    CH_EXT,     /* a chunk extension, up to the line's end */
    CH_DATA,    /* chunk data */
    CH_DATA_CR, /* the CR after chunk data */
    CH_DATA_LF, /* the LF after chunk data */
    CH_TRAILER, /* at the start of a trailer line (or of the final blank line) */
    CH_TRAILER_LINE,
    CH_END_LF, /* the LF of the final blank line */
};

int http1_chunked_decode(http1_chunked *d, char *buf, size_t *len)
{
    size_t n = *len, in = 0, out = 0;
    while (in < n) {
        char c = buf[in];
        switch (d->state) {
        case CH_SIZE: {
            int v = c >= '0' && c <= '9'   ? c - '0'
                    : c >= 'a' && c <= 'f' ? c - 'a' + 10
                    : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                           : -1;
            if (v >= 0) {
                if (++d->hexdigits > 15)
                    return -1;
                d->left = d->left * 16 + (uint64_t)v;
                in++;
                break;
            }
            if (d->hexdigits == 0)
                return -1;
            d->state = CH_EXT;
            break;
        }
        case CH_EXT:
            in++;
            if (c != '\n')
                break;
            d->hexdigits = 0;
            d->state = d->left ? CH_DATA : CH_TRAILER;
            break;
        case CH_DATA: {
            size_t take = n - in;
            if (take > d->left)
                take = (size_t)d->left;
            memmove(buf + out, buf + in, take);
            out += take;
            in += take;
            d->left -= take;
            if (d->left == 0)
                d->state = CH_DATA_CR;
            break;
        }
        case CH_DATA_CR:
            in++;
            if (c == '\r')
                d->state = CH_DATA_LF;
            else if (c == '\n')
                d->state = CH_SIZE;
            else
                return -1;
            break;
        case CH_DATA_LF:
            in++;
            if (c != '\n')
                return -1;
            d->state = CH_SIZE;
            break;
        case CH_TRAILER:
            in++;
            if (c == '\r') {
                d->state = CH_END_LF;
            } else if (c == '\n') {
                goto done;
            } else {
                d->state = CH_TRAILER_LINE;
            }
            break;
        case CH_TRAILER_LINE:
            in++;
            if (c == '\n')
                d->state = CH_TRAILER;
            break;
        case CH_END_LF:
            in++;
            if (c != '\n')
                return -1;
            goto done;
        }
    }
    *len = out;
    return -2;
done:
    memmove(buf + out, buf + in, n - in);
    *len = out;
    return (int)(n - in);
}
