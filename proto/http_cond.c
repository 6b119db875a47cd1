/* Range and conditional headers; see http_cond.h for what is served and what is ignored. */
#include "proto/http_cond.h"

#include <errno.h>
#include <strings.h>
#include <string.h>

/* Reads decimal digits at s[*i..len); -1 when there are none or they overflow. */
static int64_t digits(const char *s, size_t len, size_t *i)
{
    size_t start = *i;
    uint64_t v = 0;
    while (*i < len && s[*i] >= '0' && s[*i] <= '9') {
        if (v > (UINT64_MAX - 9) / 10 || *i - start >= 18)
            return -1;
        v = v * 10 + (uint64_t)(s[*i] - '0');
        (*i)++;
    }
    return *i == start ? -1 : (int64_t)v;
}

static void skip_ows(const char *s, size_t len, size_t *i)
{
    while (*i < len && (s[*i] == ' ' || s[*i] == '\t'))
        (*i)++;
}

int httpcond_range(const char *value, size_t len, uint64_t size, uint64_t *start, uint64_t *end)
{
    if (value == NULL || len < 6 || strncasecmp(value, "bytes=", 6) != 0)
        return HTTPCOND_FULL;
    size_t i = 6;
    skip_ows(value, len, &i);
    int64_t first = -1, last = -1;
    if (i < len && value[i] == '-') {
        i++;
        last = digits(value, len, &i); /* suffix: the last N bytes */
        if (last < 0)
            return HTTPCOND_FULL;
    } else {
        first = digits(value, len, &i);
        if (first < 0 || i >= len || value[i] != '-')
            return HTTPCOND_FULL;
        i++;
        if (i < len && value[i] >= '0' && value[i] <= '9') {
            last = digits(value, len, &i);
            if (last < 0 || last < first)
                return HTTPCOND_FULL; /* invalid range-spec: the header is ignored */
        }
    }
    skip_ows(value, len, &i);
    if (i != len)
        return HTTPCOND_FULL; /* more than one range (or junk): the whole representation */
    if (first < 0) {
        if (last == 0 || size == 0)
            return HTTPCOND_UNSATISFIABLE;
        *start = (uint64_t)last >= size ? 0 : size - (uint64_t)last;
        *end = size - 1;
        return HTTPCOND_PARTIAL;
    }
    if ((uint64_t)first >= size)
        return HTTPCOND_UNSATISFIABLE;
    *start = (uint64_t)first;
    *end = last < 0 || (uint64_t)last >= size ? size - 1 : (uint64_t)last;
    return HTTPCOND_PARTIAL;
}

int httpcond_none_match(const char *value, size_t len, const char *etag)
{
    size_t elen = strlen(etag);
    size_t i = 0;
    while (i < len) {
        while (i < len && (value[i] == ' ' || value[i] == '\t' || value[i] == ','))
            i++;
        if (i == len)
            break;
        if (value[i] == '*')
            return 1;
        if (len - i >= 2 && value[i] == 'W' && value[i + 1] == '/')
            i += 2;
        size_t s = i;
        if (i < len && value[i] == '"') {
            i++;
            while (i < len && value[i] != '"')
                i++;
            if (i < len)
                i++;
        } else {
            while (i < len && value[i] != ',')
                i++;
        }
        if (i - s == elen && memcmp(value + s, etag, elen) == 0)
            return 1;
    }
    return 0;
}

int httpcond_parse_date(const char *v, size_t len, time_t *out)
{
    static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
    /* "Sun, 06 Nov 1994 08:49:37 GMT": fixed positions */
    if (len != 29 || v[3] != ',' || v[4] != ' ' || v[7] != ' ' || v[11] != ' ' || v[16] != ' ' ||
        v[19] != ':' || v[22] != ':' || memcmp(v + 25, " GMT", 4) != 0)
        return -EINVAL;
    const int pos[] = {5, 12, 17, 20, 23};
    const int width[] = {2, 4, 2, 2, 2};
    int val[5];
    for (int k = 0; k < 5; k++) {
        val[k] = 0;
        for (int j = 0; j < width[k]; j++) {
            char c = v[pos[k] + j];
            if (c < '0' || c > '9')
                return -EINVAL;
            val[k] = val[k] * 10 + (c - '0');
        }
    }
    int mon = -1;
    for (int m = 0; m < 12; m++)
        if (memcmp(v + 8, months + 3 * m, 3) == 0)
            mon = m;
    if (mon < 0 || val[0] < 1 || val[0] > 31 || val[2] > 23 || val[3] > 59 || val[4] > 60)
        return -EINVAL;
    /* Days from the civil date (Howard Hinnant's algorithm), so no timegm and no TZ. */
    int y = val[1] - (mon < 2);
    int era = (y >= 0 ? y : y - 399) / 400;
    int yoe = y - era * 400;
    int mp = (mon + 10) % 12; /* March = 0 */
    int doy = (153 * mp + 2) / 5 + val[0] - 1;
    int doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    int64_t days = (int64_t)era * 146097 + doe - 719468;
    *out = (time_t)(days * 86400 + val[2] * 3600 + val[3] * 60 + val[4]);
    return 0;
}

int httpcond_not_modified(const char *inm, size_t inm_len, const char *ims, size_t ims_len,
                          const char *etag, time_t mtime)
{
    if (inm != NULL)
        return httpcond_none_match(inm, inm_len, etag);
    time_t t;
    if (ims != NULL && httpcond_parse_date(ims, ims_len, &t) == 0)
        return mtime <= t;
    return 0;
}
