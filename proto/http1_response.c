/* HTTP/1.1 response heads. See http1_response.h. */
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
        return len >= HTTP1_RESPONSE_MAX_HEAD ? HTTP1_BAD : HTTP1_PARTIAL;
    if (end > HTTP1_RESPONSE_MAX_HEAD)
        return HTTP1_BAD;

    memset(r, 0, sizeof(*r));
    r->headers = headers;
    r->content_length = -1;
    /* "HTTP/1.x SSS reason" */
    if (end < 13 || memcmp(buf, "HTTP/1.", 7) != 0 || (buf[7] != '0' && buf[7] != '1') ||
        buf[8] != ' ')
        return HTTP1_BAD;
    r->minor = buf[7] - '0';
    for (int i = 9; i < 12; i++) {
        if (buf[i] < '0' || buf[i] > '9')
            return HTTP1_BAD;
        r->status = r->status * 10 + (buf[i] - '0');
    }
    if (r->status < 100 || (buf[12] != ' ' && buf[12] != '\r' && buf[12] != '\n'))
        return HTTP1_BAD;
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
            return HTTP1_BAD;
        size_t vb = colon + 1, ve = stop;
        while (vb < ve && (buf[vb] == ' ' || buf[vb] == '\t'))
            vb++;
        while (ve > vb && (buf[ve - 1] == ' ' || buf[ve - 1] == '\t'))
            ve--;
        if (r->num_headers == cap)
            return HTTP1_TOO_MANY_HEADERS;
        http1_header *h = &headers[r->num_headers++];
        h->name = (http1_str){buf + p, colon - p};
        h->value = (http1_str){buf + vb, ve - vb};
        const char *hv = h->value.p;
        size_t hl = h->value.len;

        if (name_is(h->name.p, h->name.len, "content-length")) {
            if (hl == 0 || hl > 18)
                return HTTP1_BAD;
            int64_t v = 0;
            for (size_t i = 0; i < hl; i++) {
                if (hv[i] < '0' || hv[i] > '9')
                    return HTTP1_BAD;
                v = v * 10 + (hv[i] - '0');
            }
            if (r->content_length >= 0 && r->content_length != v)
                return HTTP1_BAD;
            r->content_length = v;
        } else if (name_is(h->name.p, h->name.len, "transfer-encoding")) {
            r->chunked = list_ends_with(hv, hl, "chunked");
        } else if (name_is(h->name.p, h->name.len, "connection")) {
            conn_close |= list_has(hv, hl, "close");
            conn_keep |= list_has(hv, hl, "keep-alive");
        }
        p = eol + 1;
    }
    r->keep_alive = r->minor == 1 ? !conn_close : conn_keep && !conn_close;
    return (int)end;
}

const char *http1_response_header(const http1_response *r, const char *name, size_t *len)
{
    for (size_t i = 0; i < r->num_headers; i++) {
        if (name_is(r->headers[i].name.p, r->headers[i].name.len, name)) {
            *len = r->headers[i].value.len;
            return r->headers[i].value.p;
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
