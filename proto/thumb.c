/* Thumbnail parameters and playlist lookups. Contract in thumb.h. */
#include "proto/thumb.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "proto/http1.h"

/* The value of `name` in the query; 1 when present. */
static int param(const char *q, size_t len, const char *name, const char **v, size_t *vl)
{
    http1_str s = http1_query_param((http1_str){q, len}, name);
    *v = s.p;
    *vl = s.len;
    return s.p != NULL;
}

/* Seconds with up to 3 decimals ("42", "42.5", "0.125") into milliseconds, at most `max`. */
static int parse_ms(const char *p, size_t n, int64_t max, int64_t *out)
{
    int64_t whole = 0, frac = 0;
    size_t i = 0, digits = 0, fd = 0;
    while (i < n && p[i] >= '0' && p[i] <= '9') {
        whole = whole * 10 + (p[i++] - '0');
        if (++digits > 9)
            return -EINVAL;
    }
    if (i < n && p[i] == '.') {
        i++;
        while (i < n && p[i] >= '0' && p[i] <= '9' && fd < 3) {
            frac = frac * 10 + (p[i++] - '0');
            fd++;
        }
        if (fd == 0)
            return -EINVAL;
    }
    if (digits == 0 || i != n)
        return -EINVAL;
    while (fd++ < 3)
        frac *= 10;
    int64_t ms = whole * 1000 + frac;
    if (ms > max)
        return -EINVAL;
    *out = ms;
    return 0;
}

int thumb_params(const char *query, size_t len, int64_t *time_ms, int *width, const char **why)
{
    const char *v;
    size_t vl;
    int64_t t;
    if (!param(query, len, "time", &v, &vl) || parse_ms(v, vl, THUMB_MAX_TIME_MS, &t) < 0) {
        *why = "time= must be a number of seconds (up to 3 decimals), e.g. time=42.5.";
        return -EINVAL;
    }
    *time_ms = (t + THUMB_STEP_MS / 2) / THUMB_STEP_MS * THUMB_STEP_MS;
    *width = THUMB_DEFAULT_WIDTH;
    if (param(query, len, "width", &v, &vl)) {
        int64_t w = 0;
        size_t i = 0;
        while (i < vl && i < 6 && v[i] >= '0' && v[i] <= '9')
            w = w * 10 + (v[i++] - '0');
        if (i == 0 || i != vl || w < THUMB_MIN_WIDTH || w > THUMB_MAX_WIDTH) {
            *why = "width= must be a whole number of pixels from 16 to 3840.";
            return -EINVAL;
        }
        *width = (int)w;
    }
    return 0;
}

int thumb_path(char *out, size_t cap, int64_t time_ms, int width)
{
    int n = snprintf(out, cap, "thumb/%lld_%d.jpg", (long long)time_ms, width);
    return n < 0 || (size_t)n >= cap ? -ENOSPC : n;
}

int thumb_path_parse(const char *path, int64_t *time_ms, int *width)
{
    if (strncmp(path, "thumb/", 6) != 0)
        return 0;
    const char *p = path + 6;
    int64_t t = 0, w = 0;
    int nt = 0, nw = 0;
    while (*p >= '0' && *p <= '9' && nt < 12)
        t = t * 10 + (*p++ - '0'), nt++;
    if (nt == 0 || *p++ != '_')
        return 0;
    while (*p >= '0' && *p <= '9' && nw < 5)
        w = w * 10 + (*p++ - '0'), nw++;
    if (nw == 0 || strcmp(p, ".jpg") != 0 || t > THUMB_MAX_TIME_MS || w < THUMB_MIN_WIDTH ||
        w > THUMB_MAX_WIDTH)
        return 0;
    *time_ms = t;
    *width = (int)w;
    return 1;
}

/* The next line of [*pos, len): its start and length (without CR LF); 0 at the end. */
static int next_line(const char *text, size_t len, size_t *pos, const char **line, size_t *ll)
{
    if (*pos >= len)
        return 0;
    size_t s = *pos, e = s;
    while (e < len && text[e] != '\n')
        e++;
    *pos = e + 1;
    size_t l = e - s;
    if (l > 0 && text[s + l - 1] == '\r')
        l--;
    *line = text + s;
    *ll = l;
    return 1;
}

static int starts(const char *line, size_t ll, const char *tag)
{
    size_t n = strlen(tag);
    return ll >= n && memcmp(line, tag, n) == 0;
}

/* An unsigned decimal attribute NAME= in an attribute list; -1 when absent or too big. */
static int64_t attr_num(const char *line, size_t ll, const char *name)
{
    size_t nl = strlen(name);
    for (size_t i = 0; i + nl < ll; i++) {
        if ((i == 0 || line[i - 1] == ':' || line[i - 1] == ',') &&
            memcmp(line + i, name, nl) == 0 && line[i + nl] == '=') {
            int64_t v = 0;
            size_t k = i + nl + 1, d = 0;
            while (k < ll && line[k] >= '0' && line[k] <= '9' && d < 15)
                v = v * 10 + (line[k++] - '0'), d++;
            return d ? v : -1;
        }
    }
    return -1;
}

/* A URI of a line: printable ASCII without spaces (a NUL or a control byte would cut or bend
 * the name the edge asks the origin for). */
static int copy_uri(char *out, size_t cap, const char *p, size_t n)
{
    if (n + 1 > cap)
        return -ENOSPC;
    for (size_t i = 0; i < n; i++)
        if ((uint8_t)p[i] <= 0x20 || (uint8_t)p[i] >= 0x7F)
            return -EINVAL;
    memcpy(out, p, n);
    out[n] = '\0';
    return 0;
}

int thumb_top_variant(const char *text, size_t len, char *uri, size_t cap, int *width)
{
    size_t pos = 0, ll;
    const char *line;
    int64_t best = -1, pending = -1, pw = 0;
    int found = -ENOENT;
    while (next_line(text, len, &pos, &line, &ll)) {
        if (starts(line, ll, "#EXT-X-STREAM-INF:")) {
            pending = attr_num(line, ll, "BANDWIDTH");
            pw = attr_num(line, ll, "RESOLUTION");
            if (pending < 0)
                pending = 0;
        } else if (ll > 0 && line[0] != '#' && pending >= 0) {
            if (pending > best) {
                found = copy_uri(uri, cap, line, ll);
                if (found == 0) {
                    best = pending;
                    *width = pw > 0 && pw <= 100000 ? (int)pw : 0;
                }
            }
            pending = -1;
        }
    }
    return best >= 0 ? 0 : found;
}

/* #EXTINF:<seconds>[.<fraction>], into milliseconds; -1 when malformed. */
static int64_t extinf_ms(const char *line, size_t ll)
{
    size_t i = 8, d = 0;
    int64_t whole = 0, frac = 0, scale = 1000;
    while (i < ll && line[i] >= '0' && line[i] <= '9' && d < 9)
        whole = whole * 10 + (line[i++] - '0'), d++;
    if (d == 0)
        return -1;
    if (i < ll && line[i] == '.') {
        i++;
        while (i < ll && line[i] >= '0' && line[i] <= '9') {
            if (scale > 1) {
                scale /= 10;
                frac += (line[i] - '0') * scale;
            }
            i++;
        }
    }
    return whole * 1000 + frac;
}

int thumb_segment_at(const char *text, size_t len, int64_t time_ms, char *uri, size_t cap,
                     int64_t *start_ms, char *map, size_t mapcap)
{
    size_t pos = 0, ll;
    const char *line;
    int64_t t = 0, dur = -1;
    int have = 0;
    if (mapcap > 0)
        map[0] = '\0';
    while (next_line(text, len, &pos, &line, &ll)) {
        if (starts(line, ll, "#EXT-X-MAP:")) {
            /* URI="init.mp4" */
            for (size_t i = 11; i + 5 < ll; i++) {
                if (memcmp(line + i, "URI=\"", 5) == 0) {
                    size_t s = i + 5, e = s;
                    while (e < ll && line[e] != '"')
                        e++;
                    if (e == ll || copy_uri(map, mapcap, line + s, e - s) < 0)
                        return -EINVAL;
                    break;
                }
            }
        } else if (starts(line, ll, "#EXTINF:")) {
            dur = extinf_ms(line, ll);
        } else if (ll > 0 && line[0] != '#' && dur >= 0) {
            int c = copy_uri(uri, cap, line, ll);
            if (c < 0)
                return c;
            *start_ms = t;
            have = 1;
            if (time_ms < t + dur)
                return 0;
            t += dur;
            dur = -1;
        }
    }
    return have ? 0 : -ENOENT;
}

int thumb_media_length(const char *text, size_t len, int64_t *duration_ms, int *fmp4)
{
    size_t pos = 0, ll;
    const char *line;
    int64_t t = 0, dur = -1;
    int segs = 0;
    *fmp4 = 0;
    while (next_line(text, len, &pos, &line, &ll)) {
        if (starts(line, ll, "#EXT-X-MAP:")) {
            *fmp4 = 1;
        } else if (starts(line, ll, "#EXTINF:")) {
            dur = extinf_ms(line, ll);
        } else if (ll > 0 && line[0] != '#' && dur >= 0) {
            t += dur;
            dur = -1;
            segs++;
        }
    }
    *duration_ms = t;
    return segs > 0 ? 0 : -ENOENT;
}
