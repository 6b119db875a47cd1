/* A bounded writer into a caller's buffer: proto/'s writers (HTTP heads, Prometheus text,
 * SigV4 canonical strings) all fill memory they are given and never allocate.
 *
 * The first write that does not fit sets err = -ENOSPC and every later write is ignored, so a
 * writer checks once at the end instead of after every piece (playlists, S3 documents too). A byte
 * is always kept free for the terminating NUL of wbuf_end. */
#ifndef REELD_PROTO_WBUF_H
#define REELD_PROTO_WBUF_H

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

typedef struct rd_wbuf {
    char *p;
    size_t cap, len;
    int err; /* 0, or -ENOSPC once something did not fit */
} rd_wbuf;

static inline rd_wbuf wbuf_init(char *p, size_t cap)
{
    rd_wbuf w = {p, cap, 0, cap == 0 ? -ENOSPC : 0};
    return w;
}

static inline void wbuf_put(rd_wbuf *w, const char *s, size_t n)
{
    if (w->err)
        return;
    if (n >= w->cap - w->len) {
        w->err = -ENOSPC;
        return;
    }
    memcpy(w->p + w->len, s, n);
    w->len += n;
}

static inline void wbuf_str(rd_wbuf *w, const char *s)
{
    wbuf_put(w, s, strlen(s));
}

static inline void wbuf_chr(rd_wbuf *w, char c)
{
    wbuf_put(w, &c, 1);
}

/* Makes room for n bytes and returns where they go, or NULL (err set, or already set). */
static inline char *wbuf_room(rd_wbuf *w, size_t n)
{
    if (w->err)
        return NULL;
    if (n >= w->cap - w->len) {
        w->err = -ENOSPC;
        return NULL;
    }
    char *p = w->p + w->len;
    w->len += n;
    return p;
}

/* The numbers are written in place, last digit first. Built in a scratch array and copied
 * from it, the copy's wide load waited for the byte stores before it (a store that cannot be
 * forwarded): on the edge's playlist path the ETag's three numbers and the Content-Length
 * were a tenth of the user time. */
static inline void wbuf_uint(rd_wbuf *w, uint64_t v)
{
    size_t n = 1;
    for (uint64_t t = 10; n < 20 && v >= t; t *= 10)
        n++;
    char *p = wbuf_room(w, n);
    if (p == NULL)
        return;
    p += n;
    do {
        *--p = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
}

/* Appends v in lowercase hex, at least `digits` of them (zeros in front; none below 1). */
static inline void wbuf_hex(rd_wbuf *w, uint64_t v, int digits)
{
    size_t n = v ? (size_t)(64 - __builtin_clzll(v) + 3) / 4 : 1;
    if (digits > 0 && n < (size_t)digits)
        n = (size_t)digits;
    char *p = wbuf_room(w, n);
    if (p == NULL)
        return;
    for (size_t i = n; i-- > 0; v >>= 4)
        p[i] = "0123456789abcdef"[v & 15];
}

/* Appends v as exactly two decimal digits (0..99). */
static inline void wbuf_dec2(rd_wbuf *w, unsigned v)
{
    char d[2] = {(char)('0' + v / 10 % 10), (char)('0' + v % 10)};
    wbuf_put(w, d, 2);
}

/* Copies s into dst[0..cap) as snprintf(dst, cap, "%s", s) would (cut to fit, always
 * terminated when cap > 0), without the format machinery: for the hot paths. Returns strlen(s). */
static inline size_t wbuf_copy(char *dst, size_t cap, const char *s)
{
    size_t n = strlen(s);
    if (cap == 0)
        return n;
    size_t k = n < cap ? n : cap - 1;
    memcpy(dst, s, k);
    dst[k] = '\0';
    return n;
}

/* Appends a printf format (C locale: reeld never calls setlocale). */
static inline void wbuf_printf(rd_wbuf *w, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static inline void wbuf_printf(rd_wbuf *w, const char *fmt, ...)
{
    if (w->err)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(w->p + w->len, w->cap - w->len, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= w->cap - w->len)
        w->err = -ENOSPC;
    else
        w->len += (size_t)n;
}

/* NUL-terminates and returns the length, or the first error. */
static inline int wbuf_end(rd_wbuf *w)
{
    if (w->err)
        return w->err;
    w->p[w->len] = '\0';
    return (int)w->len;
}

#endif
