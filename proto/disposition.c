/* Content-Disposition for downloads (disposition.h). */
#include "proto/disposition.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "proto/http1.h"

int disposition_query_param(const char *q, size_t len, const char *name, const char **val,
                            size_t *vlen)
{
    http1_str v = http1_query_param((http1_str){q, len}, name);
    if (v.p == NULL || v.p[-1] != '=')
        return 0; /* absent, or given without '=' */
    *val = v.p;
    *vlen = v.len;
    return 1;
}

int disposition_query_flag(const char *q, size_t len, const char *name)
{
    const char *v;
    size_t vl;
    if (!disposition_query_param(q, len, name, &v, &vl))
        return 0;
    return (vl == 1 && v[0] == '1') || (vl == 4 && memcmp(v, "true", 4) == 0);
}

/* The length of the valid UTF-8 sequence at s (1..4), or 0 when it is not one. */
static size_t utf8_len(const uint8_t *s, size_t n)
{
    size_t k;
    uint32_t c;
    if (s[0] < 0x80)
        return 1;
    if (s[0] >= 0xC2 && s[0] <= 0xDF)
        k = 2, c = s[0] & 0x1F;
    else if (s[0] >= 0xE0 && s[0] <= 0xEF)
        k = 3, c = s[0] & 0x0F;
    else if (s[0] >= 0xF0 && s[0] <= 0xF4)
        k = 4, c = s[0] & 0x07;
    else
        return 0;
    if (n < k)
        return 0;
    for (size_t i = 1; i < k; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        c = c << 6 | (s[i] & 0x3F);
    }
    if ((k == 3 && c < 0x800) || (k == 4 && (c < 0x10000 || c > 0x10FFFF)) ||
        (c >= 0xD800 && c <= 0xDFFF))
        return 0;
    return k;
}

/* RFC 8187 attr-char: ALPHA / DIGIT / "!" / "#" / "$" / "&" / "+" / "-" / "." / "^" / "_" /
 * "`" / "|" / "~" */
static int attr_char(uint8_t c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c != 0 && strchr("!#$&+-.^_`|~", c) != NULL);
}

int disposition_attachment(char *out, size_t cap, const char *orig, size_t len, const char *ext)
{
    const uint8_t *s = (const uint8_t *)orig;
    /* The last path component, without its extension. */
    size_t start = 0, end = len;
    for (size_t i = 0; i < len; i++)
        if (s[i] == '/' || s[i] == '\\')
            start = i + 1;
    for (size_t i = end; i > start; i--)
        if (s[i - 1] == '.') {
            end = i - 1;
            break;
        }
    /* Keep whole UTF-8 sequences, at most DISPOSITION_STEM_MAX bytes of them. */
    uint8_t stem[DISPOSITION_STEM_MAX];
    size_t sl = 0;
    for (size_t i = start; i < end;) {
        size_t k = utf8_len(s + i, end - i);
        size_t take = k ? k : 1;
        if (sl + take > sizeof(stem))
            break;
        if (k == 0 || s[i] < 0x20 || s[i] == 0x7F)
            stem[sl++] = '_';
        else
            memcpy(stem + sl, s + i, k), sl += k;
        i += take;
    }
    while (sl > 0 && (stem[sl - 1] == ' ' || stem[sl - 1] == '.'))
        sl--; /* "name ." would end up "name ..mp4" */
    size_t lead = 0;
    while (lead < sl && (stem[lead] == ' ' || stem[lead] == '.'))
        lead++;
    const uint8_t *st = stem + lead;
    sl -= lead;
    if (sl == 0) {
        st = (const uint8_t *)"download";
        sl = 8;
    }
    size_t n = 0;
#define PUT(c)                                                                                     \
    do {                                                                                           \
        if (n + 1 >= cap)                                                                          \
            return -ENOSPC;                                                                        \
        out[n++] = (char)(c);                                                                      \
    } while (0)
#define PUTS(str)                                                                                  \
    do {                                                                                           \
        for (const char *p_ = (str); *p_; p_++)                                                    \
            PUT(*p_);                                                                              \
    } while (0)
    PUTS("attachment; filename=\"");
    for (size_t i = 0; i < sl; i++) {
        uint8_t c = st[i];
        if (c >= 0x80) { /* one '_' for a whole character (the stem holds only valid UTF-8) */
            size_t k = utf8_len(st + i, sl - i);
            i += k > 0 ? k - 1 : 0;
        }
        PUT(c < 0x20 || c >= 0x7F || c == '"' || c == '\\' || c == '%' || c == ';' ? '_' : c);
    }
    for (const char *e = ext; *e; e++)
        PUT(attr_char((uint8_t)*e) ? *e : '_');
    PUTS("\"; filename*=UTF-8''");
    static const char hex[] = "0123456789ABCDEF";
    for (size_t i = 0; i < sl; i++) {
        uint8_t c = st[i];
        if (attr_char(c)) {
            PUT(c);
        } else {
            PUT('%');
            PUT(hex[c >> 4]);
            PUT(hex[c & 15]);
        }
    }
    for (const char *e = ext; *e; e++)
        PUT(attr_char((uint8_t)*e) ? *e : '_');
#undef PUT
#undef PUTS
    out[n] = '\0';
    return (int)n;
}
