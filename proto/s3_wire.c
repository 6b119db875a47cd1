/* S3 error documents, retry policy and dates. See s3_wire.h. */
#include "proto/s3_wire.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static const char *find(const char *s, size_t len, const char *needle, size_t nlen)
{
    if (nlen == 0 || len < nlen)
        return NULL;
    for (size_t i = 0; i + nlen <= len; i++)
        if (s[i] == needle[0] && memcmp(s + i, needle, nlen) == 0)
            return s + i;
    return NULL;
}

/* Appends the UTF-8 encoding of `cp` at out[*o], if it fits before cap - 1. */
static void put_utf8(char *out, size_t cap, size_t *o, uint32_t cp)
{
    char b[4];
    size_t n;
    if (cp < 0x80) {
        b[0] = (char)cp;
        n = 1;
    } else if (cp < 0x800) {
        b[0] = (char)(0xC0 | (cp >> 6));
        b[1] = (char)(0x80 | (cp & 0x3F));
        n = 2;
    } else if (cp < 0x10000) {
        b[0] = (char)(0xE0 | (cp >> 12));
        b[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        b[2] = (char)(0x80 | (cp & 0x3F));
        n = 3;
    } else {
        b[0] = (char)(0xF0 | (cp >> 18));
        b[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
        b[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
        b[3] = (char)(0x80 | (cp & 0x3F));
        n = 4;
    }
    if (*o + n < cap) {
        memcpy(out + *o, b, n);
        *o += n;
    }
}

int s3wire_xml_decode(const char *b, size_t len, char *out, size_t cap)
{
    if (cap == 0)
        return 0;
    const char *e = b + len;
    static const struct {
        const char *ent;
        char c;
    } ents[] = {{"&amp;", '&'}, {"&lt;", '<'}, {"&gt;", '>'}, {"&quot;", '"'}, {"&apos;", '\''}};
    size_t o = 0;
    for (const char *p = b; p < e;) {
        if (*p == '&') {
            int done = 0;
            for (size_t i = 0; i < sizeof(ents) / sizeof(ents[0]) && !done; i++) {
                size_t el = strlen(ents[i].ent);
                if ((size_t)(e - p) >= el && memcmp(p, ents[i].ent, el) == 0) {
                    if (o + 1 < cap)
                        out[o++] = ents[i].c;
                    p += el;
                    done = 1;
                }
            }
            if (!done && e - p >= 4 && p[1] == '#') {
                const char *q = p + 2;
                int hex = *q == 'x';
                q += hex;
                uint32_t cp = 0;
                int digits = 0;
                for (; q < e && *q != ';' && digits < 8; q++, digits++) {
                    int v = *q >= '0' && *q <= '9'          ? *q - '0'
                            : hex && *q >= 'a' && *q <= 'f' ? *q - 'a' + 10
                            : hex && *q >= 'A' && *q <= 'F' ? *q - 'A' + 10
                                                            : -1;
                    if (v < 0)
                        break;
                    cp = cp * (hex ? 16 : 10) + (uint32_t)v;
                }
                if (q < e && *q == ';' && digits > 0 && cp > 0 && cp <= 0x10FFFF) {
                    /* "&#10;" is a control character too: a space, as below. */
                    put_utf8(out, cap, &o, cp < 0x20 || cp == 0x7f ? ' ' : cp);
                    p = q + 1;
                    done = 1;
                }
            }
            if (done)
                continue;
        }
        /* Control characters (NUL, newlines) become spaces: the text ends up in one-line
         * messages and C strings. */
        unsigned char c = (unsigned char)*p;
        if (o + 1 < cap)
            out[o++] = c < 0x20 || c == 0x7f ? ' ' : (char)c;
        p++;
    }
    out[o] = '\0';
    return (int)o;
}

int s3wire_xml_text(const char *xml, size_t len, const char *name, char *out, size_t cap)
{
    char open[80], close[80];
    int ol = snprintf(open, sizeof(open), "<%s>", name);
    int cl = snprintf(close, sizeof(close), "</%s>", name);
    if (cap == 0 || ol <= 0 || cl <= 0 || (size_t)cl >= sizeof(close))
        return -EINVAL;
    out[0] = '\0';
    const char *b = find(xml, len, open, (size_t)ol);
    if (b == NULL)
        return -ENOENT;
    b += ol;
    const char *e = find(b, len - (size_t)(b - xml), close, (size_t)cl);
    if (e == NULL)
        return -ENOENT;
    return s3wire_xml_decode(b, (size_t)(e - b), out, cap);
}

int s3wire_parse_error(const char *xml, size_t len, s3wire_error *e)
{
    memset(e, 0, sizeof(*e));
    const char *err = find(xml, len, "<Error>", 7);
    if (err == NULL)
        return -ENOENT;
    size_t rest = len - (size_t)(err - xml);
    s3wire_xml_text(err, rest, "Code", e->code, sizeof(e->code));
    s3wire_xml_text(err, rest, "Message", e->message, sizeof(e->message));
    return 0;
}

static const char *status_text(int status)
{
    switch (status) {
    case 400:
        return "Bad Request";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 409:
        return "Conflict";
    case 412:
        return "Precondition Failed";
    case 416:
        return "Range Not Satisfiable";
    case 500:
        return "Internal Server Error";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    case 504:
        return "Gateway Timeout";
    default:
        return "HTTP error";
    }
}

int s3wire_describe(char *out, size_t cap, const char *method, const char *bucket, const char *key,
                    int status, const s3wire_error *e, int err)
{
    int n;
    const char *sep = key && *key ? "/" : "";
    if (status == 0) {
        n = snprintf(out, cap, "S3 %s %s%s%s failed: no response (%s).", method, bucket, sep,
                     key ? key : "", strerror(err < 0 ? -err : err));
    } else if (e != NULL && e->code[0]) {
        size_t ml = strlen(e->message);
        n = snprintf(out, cap, "S3 %s %s%s%s failed: %d %s: %s%s", method, bucket, sep,
                     key ? key : "", status, e->code,
                     e->message[0] ? e->message : status_text(status),
                     ml > 0 && e->message[ml - 1] == '.' ? "" : ".");
    } else {
        n = snprintf(out, cap, "S3 %s %s%s%s failed: %d %s.", method, bucket, sep, key ? key : "",
                     status, status_text(status));
    }
    if (n < 0)
        return 0;
    return (size_t)n >= cap ? (int)cap - 1 : n;
}

int s3wire_retryable(int status, const char *code, int err)
{
    if (status == 0)
        return err == -ECONNRESET || err == -ECONNREFUSED || err == -ETIMEDOUT || err == -EPIPE ||
               err == -ECONNABORTED || err == -ENOTCONN || err == -EPROTO || err == -EHOSTUNREACH ||
               err == -ENETUNREACH || err == -ECANCELED;
    if (status >= 500 || status == 429)
        return 1;
    if (code == NULL)
        return 0;
    return !strcmp(code, "SlowDown") || !strcmp(code, "RequestTimeout") ||
           !strcmp(code, "RequestTimeTooSkewed") || !strcmp(code, "InternalError");
}

uint32_t s3wire_backoff_ms(int attempt, uint32_t rnd)
{
    uint32_t cap = S3WIRE_BACKOFF_BASE;
    for (int i = 1; i < attempt && cap < S3WIRE_BACKOFF_MAX; i++)
        cap *= 2;
    if (cap > S3WIRE_BACKOFF_MAX)
        cap = S3WIRE_BACKOFF_MAX;
    return (uint32_t)((uint64_t)rnd % ((uint64_t)cap + 1));
}

static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    /* Howard Hinnant's algorithm: days since 1970-01-01 of a proleptic Gregorian date. */
    y -= m <= 2;
    const int64_t era = (y >= 0 ? y : y - 399) / 400;
    const unsigned yoe = (unsigned)(y - era * 400);
    const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static int num(const char *s, int n, int *v)
{
    *v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        *v = *v * 10 + (s[i] - '0');
    }
    return 0;
}

int s3wire_parse_http_date(const char *s, size_t len, int64_t *t)
{
    static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
    /* "Sun, 06 Nov 1994 08:49:37 GMT" is 29 bytes. */
    if (len != 29 || s[3] != ',' || s[4] != ' ' || s[7] != ' ' || s[11] != ' ' || s[16] != ' ' ||
        s[19] != ':' || s[22] != ':' || memcmp(s + 25, " GMT", 4) != 0)
        return -EINVAL;
    int day, year, hh, mm, ss, mon = -1;
    for (int i = 0; i < 12; i++)
        if (memcmp(s + 8, months + 3 * i, 3) == 0)
            mon = i + 1;
    if (mon < 0 || num(s + 5, 2, &day) || num(s + 12, 4, &year) || num(s + 17, 2, &hh) ||
        num(s + 20, 2, &mm) || num(s + 23, 2, &ss) || day < 1 || day > 31 || hh > 23 || mm > 59 ||
        ss > 60)
        return -EINVAL;
    *t = days_from_civil(year, (unsigned)mon, (unsigned)day) * 86400 + hh * 3600 + mm * 60 + ss;
    return 0;
}

int s3wire_parse_iso8601(const char *s, size_t len, int64_t *t)
{
    int year, mon, day, hh, mm, ss;
    if (len < 20 || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' || s[16] != ':' ||
        num(s, 4, &year) || num(s + 5, 2, &mon) || num(s + 8, 2, &day) || num(s + 11, 2, &hh) ||
        num(s + 14, 2, &mm) || num(s + 17, 2, &ss) || mon < 1 || mon > 12 || day < 1 || day > 31 ||
        hh > 23 || mm > 59 || ss > 60)
        return -EINVAL;
    size_t i = 19;
    if (i < len && s[i] == '.') {
        size_t d = ++i;
        while (i < len && s[i] >= '0' && s[i] <= '9')
            i++;
        if (i == d)
            return -EINVAL;
    }
    int utc = (len - i == 1 && s[i] == 'Z') || (len - i == 6 && memcmp(s + i, "+00:00", 6) == 0);
    if (!utc)
        return -EINVAL;
    *t = days_from_civil(year, (unsigned)mon, (unsigned)day) * 86400 + hh * 3600 + mm * 60 + ss;
    return 0;
}

int s3wire_iso8601(int64_t t, char *out, size_t cap)
{
    if (t < 0 || t > 253402300799LL || cap < 21)
        return -ERANGE;
    int64_t days = t / 86400, sec = t % 86400;
    /* civil_from_days */
    int64_t z = days + 719468;
    int64_t era = z / 146097;
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t y = (int64_t)yoe + era * 400;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    unsigned d = doy - (153 * mp + 2) / 5 + 1;
    unsigned m = mp < 10 ? mp + 3 : mp - 9;
    y += m <= 2;
    snprintf(out, cap, "%04d-%02u-%02uT%02d:%02d:%02dZ", (int)y, m, d, (int)(sec / 3600),
             (int)(sec / 60 % 60), (int)(sec % 60));
    return 0;
}
