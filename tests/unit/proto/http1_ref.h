/* The request-head parser as it was written first: a line found, then each part checked byte by
 * byte, in the plainest form. proto/http1.c's parser is a faster rewrite of it (one pass, byte
 * classes from a table); tests hold the two to the same answers: every complete head gets the
 * same result and slices, and where the reference waits for more input (HTTP1_PARTIAL) the
 * rewrite may only wait too or refuse what no later byte can mend (HTTP1_BAD). A reference
 * oracle for tests/unit/proto/test_http1.c and tests/fuzz/fuzz_http1.c only. */
#ifndef REELD_TESTS_HTTP1_REF_H
#define REELD_TESTS_HTTP1_REF_H

#include <stdlib.h>
#include <string.h>

#include "proto/http1.h"

/* RFC 9110 tchar: the characters of methods and header names. */
static int ref_is_tchar(unsigned char c)
{
    static const char extra[] = "!#$%&'*+-.^_`|~";
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
        return 1;
    return c != 0 && strchr(extra, c) != NULL;
}

/* Header value bytes: visible ASCII, space, tab, obs-text. No CR, LF, NUL or other controls. */
static int ref_is_value_char(unsigned char c)
{
    return c == '\t' || (c >= 0x20 && c != 0x7f);
}

/* Finds the CRLF ending the line that starts at p; returns the line's length, HTTP1_PARTIAL,
 * or HTTP1_BAD for a bare CR or LF. */
static int ref_line_end(const char *p, const char *end)
{
    for (const char *q = p; q < end; q++) {
        if (*q == '\n')
            return HTTP1_BAD;
        if (*q == '\r') {
            if (q + 1 == end)
                return HTTP1_PARTIAL;
            return q[1] == '\n' ? (int)(q - p) : HTTP1_BAD;
        }
    }
    return HTTP1_PARTIAL;
}

static int ref_parse_request_line(const char *p, size_t n, http1_request *req)
{
    const char *end = p + n, *s = p;
    while (s < end && ref_is_tchar((unsigned char)*s))
        s++;
    if (s == p || s == end || *s != ' ')
        return HTTP1_BAD;
    req->method = (http1_str){p, (size_t)(s - p)};
    const char *t = ++s;
    while (s < end && (unsigned char)*s > 0x20 && (unsigned char)*s < 0x7f)
        s++;
    if (s == t || s == end || *s != ' ' || *t != '/')
        return HTTP1_BAD; /* origin-form only: "*" and absolute-form have no route here */
    req->target = (http1_str){t, (size_t)(s - t)};
    const char *q = memchr(t, '?', (size_t)(s - t));
    req->path = (http1_str){t, (size_t)((q ? q : s) - t)};
    req->query = q ? (http1_str){q + 1, (size_t)(s - q - 1)} : (http1_str){s, 0};
    s++;
    if (end - s != 8 || memcmp(s, "HTTP/1.", 7) != 0 || (s[7] != '0' && s[7] != '1'))
        return HTTP1_BAD;
    req->minor = s[7] - '0';
    return 0;
}

static int ref_http1_parse_request(const char *buf, size_t len, http1_request *req,
                                   http1_header *headers, size_t max_headers)
{
    const char *p = buf, *end = buf + len;
    /* Empty lines before the request line are tolerated (RFC 9112 2.2). */
    while (end - p >= 2 && p[0] == '\r' && p[1] == '\n')
        p += 2;
    int n = ref_line_end(p, end);
    if (n < 0)
        return n;
    if (ref_parse_request_line(p, (size_t)n, req) < 0)
        return HTTP1_BAD;
    p += n + 2;
    req->headers = headers;
    req->num_headers = 0;
    for (;;) {
        n = ref_line_end(p, end);
        if (n < 0)
            return n;
        if (n == 0)
            return (int)(p + 2 - buf);
        const char *line = p, *lend = p + n;
        p += n + 2;
        const char *c = line;
        while (c < lend && ref_is_tchar((unsigned char)*c))
            c++;
        /* An empty name, whitespace before the colon or a folded line are all refused. */
        if (c == line || c == lend || *c != ':')
            return HTTP1_BAD;
        const char *v = c + 1;
        while (v < lend && (*v == ' ' || *v == '\t'))
            v++;
        const char *ve = lend;
        while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
            ve--;
        for (const char *x = v; x < ve; x++)
            if (!ref_is_value_char((unsigned char)*x))
                return HTTP1_BAD;
        if (req->num_headers == max_headers)
            return HTTP1_TOO_MANY_HEADERS;
        headers[req->num_headers++] = (http1_header){
            .name = {line, (size_t)(c - line)},
            .value = {v, (size_t)(ve - v)},
        };
    }
}

static int ref_same_str(http1_str a, http1_str b)
{
    return a.p == b.p && a.len == b.len;
}

/* Endings that complete a head cut anywhere in the grammar: after a lone CR, a method, a
 * target, "HTTP/1.", a header name, a value, a line. */
static const char *const ref_endings[] = {
    "\r\n\r\n",
    "\n\r\n",
    "\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
    "GET / HTTP/1.1\r\nHost: a\r\n\r\n",
    " / HTTP/1.1\r\nHost: a\r\n\r\n",
    " HTTP/1.1\r\nHost: a\r\n\r\n",
    "1\r\nHost: a\r\n\r\n",
    "\nHost: a\r\n\r\n",
    ": a\r\n\r\n",
};

/* 1 when http1_parse_request answers buf[0..len) as the reference does: the same result, the
 * same slices of the same bytes; or, where the reference still waits, a wait, or a refusal
 * that the reference makes too however the head goes on (each of ref_endings appended). */
static int http1_ref_agrees(const char *buf, size_t len, size_t max_headers)
{
    http1_header h1[HTTP1_MAX_HEADERS], h2[HTTP1_MAX_HEADERS];
    http1_request r1, r2;
    if (max_headers > HTTP1_MAX_HEADERS)
        max_headers = HTTP1_MAX_HEADERS;
    int a = ref_http1_parse_request(buf, len, &r1, h1, max_headers);
    int b = http1_parse_request(buf, len, &r2, h2, max_headers);
    if (a == HTTP1_PARTIAL && b == HTTP1_BAD) {
        for (size_t e = 0; e < sizeof(ref_endings) / sizeof(ref_endings[0]); e++) {
            size_t el = strlen(ref_endings[e]);
            char *ended = malloc(len + el);
            if (ended == NULL)
                return 0;
            memcpy(ended, buf, len);
            memcpy(ended + len, ref_endings[e], el);
            int c = ref_http1_parse_request(ended, len + el, &r1, h1, max_headers);
            free(ended);
            if (c != HTTP1_BAD)
                return 0;
        }
        return 1;
    }
    if (a != b)
        return 0;
    if (a < 0)
        return 1;
    if (!ref_same_str(r1.method, r2.method) || !ref_same_str(r1.target, r2.target) ||
        !ref_same_str(r1.path, r2.path) || !ref_same_str(r1.query, r2.query) ||
        r1.minor != r2.minor || r1.num_headers != r2.num_headers)
        return 0;
    for (size_t i = 0; i < r1.num_headers; i++)
        if (!ref_same_str(h1[i].name, h2[i].name) || !ref_same_str(h1[i].value, h2[i].value))
            return 0;
    return 1;
}

#endif
