/* HLS playlist writers. Numbers are written with the C locale's '.' (reeld never calls
 * setlocale), durations with three decimals: players sum them, so they must not drift. */
#include "proto/hls.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "proto/wbuf.h"

int hls_target_duration(const hls_segment *segs, int n)
{
    double longest = 0;
    for (int i = 0; i < n; i++)
        if (segs[i].duration > longest)
            longest = segs[i].duration;
    int t = (int)ceil(longest - 0.001);
    return t < 1 ? 1 : t;
}

int hls_write_media(char *buf, size_t cap, const char *map, const hls_segment *segs, int n)
{
    if (cap == 0)
        return -ENOSPC;
    rd_wbuf o = wbuf_init(buf, cap);
    buf[0] = '\0';
    wbuf_printf(&o, "#EXTM3U\n#EXT-X-VERSION:%d\n#EXT-X-TARGETDURATION:%d\n", map != NULL ? 6 : 3,
                hls_target_duration(segs, n));
    wbuf_printf(&o, "#EXT-X-MEDIA-SEQUENCE:0\n#EXT-X-PLAYLIST-TYPE:VOD\n");
    if (map != NULL)
        wbuf_printf(&o, "#EXT-X-MAP:URI=\"%s\"\n", map);
    for (int i = 0; i < n; i++)
        wbuf_printf(&o, "#EXTINF:%.3f,\n%s\n", segs[i].duration, segs[i].uri);
    wbuf_printf(&o, "#EXT-X-ENDLIST\n");
    return wbuf_end(&o);
}

int hls_write_master(char *buf, size_t cap, const hls_variant *v, int n)
{
    if (cap == 0)
        return -ENOSPC;
    rd_wbuf o = wbuf_init(buf, cap);
    buf[0] = '\0';
    wbuf_printf(&o, "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-INDEPENDENT-SEGMENTS\n");
    for (int i = 0; i < n; i++) {
        wbuf_printf(&o, "#EXT-X-STREAM-INF:BANDWIDTH=%lld,AVERAGE-BANDWIDTH=%lld",
                    (long long)v[i].bandwidth, (long long)v[i].average_bandwidth);
        if (v[i].width > 0 && v[i].height > 0)
            wbuf_printf(&o, ",RESOLUTION=%dx%d", v[i].width, v[i].height);
        if (v[i].frame_rate > 0)
            wbuf_printf(&o, ",FRAME-RATE=%.3f", v[i].frame_rate);
        wbuf_printf(&o, ",CODECS=\"%s\"\n%s\n", v[i].codecs, v[i].uri);
    }
    return wbuf_end(&o);
}

int hls_avc1_codec(const uint8_t *p, size_t n, char *out_name, size_t cap)
{
    /* A start code is 00 00 01 (a four-byte 00 00 00 01 ends with it); the NAL header follows,
     * and an SPS (type 7) begins with profile_idc, the constraint flags and level_idc. */
    for (size_t i = 0; i + 6 < n; i++) {
        if (p[i] != 0 || p[i + 1] != 0 || p[i + 2] != 1)
            continue;
        if ((p[i + 3] & 0x1f) == 7) {
            int r = snprintf(out_name, cap, "avc1.%02x%02x%02x", p[i + 4], p[i + 5], p[i + 6]);
            return r > 0 && (size_t)r < cap ? 0 : -ENOSPC;
        }
    }
    return -ENOENT;
}

const char *hls_content_type(const char *name)
{
    static const struct {
        const char *ext, *type;
    } types[] = {{".m3u8", "application/vnd.apple.mpegurl"},
                 {".ts", "video/mp2t"},
                 {".m4s", "video/mp4"},
                 {".mp4", "video/mp4"},
                 {".jpg", "image/jpeg"},
                 {".jpeg", "image/jpeg"},
                 {".webp", "image/webp"},
                 {".vtt", "text/vtt"}};
    const char *dot = strrchr(name, '.');
    for (size_t i = 0; dot != NULL && i < sizeof(types) / sizeof(types[0]); i++)
        if (strcmp(dot, types[i].ext) == 0)
            return types[i].type;
    return "application/octet-stream";
}

/* Copies an EXT-X-STREAM-INF line without its SUBTITLES="..." attribute. */
static void put_stream_inf(rd_wbuf *o, const char *l, size_t ll)
{
    static const char attr[] = ",SUBTITLES=\"";
    const char *a = NULL;
    for (size_t i = 0; i + sizeof(attr) - 1 <= ll && a == NULL; i++)
        if (memcmp(l + i, attr, sizeof(attr) - 1) == 0)
            a = l + i;
    if (a == NULL) {
        wbuf_printf(o, "%.*s", (int)ll, l);
        return;
    }
    const char *q = memchr(a + sizeof(attr) - 1, '"', ll - (size_t)(a - l) - (sizeof(attr) - 1));
    const char *rest = q ? q + 1 : l + ll;
    wbuf_printf(o, "%.*s%.*s", (int)(a - l), l, (int)(l + ll - rest), rest);
}

int hls_master_subtitles(const char *in, size_t len, const hls_subtitle *subs, int n, char *buf,
                         size_t cap)
{
    rd_wbuf o = wbuf_init(buf, cap);
    if (cap == 0)
        return -ENOSPC;
    buf[0] = '\0';
    int variants = 0;
    static const char media[] = "#EXT-X-MEDIA:TYPE=SUBTITLES";
    static const char inf[] = "#EXT-X-STREAM-INF:";
    for (size_t pos = 0; pos < len;) {
        const char *l = in + pos;
        const char *nl = memchr(l, '\n', len - pos);
        size_t ll = nl ? (size_t)(nl - l) : len - pos;
        pos += ll + (nl != NULL);
        size_t bare = ll > 0 && l[ll - 1] == '\r' ? ll - 1 : ll;
        if (bare >= sizeof(media) - 1 && memcmp(l, media, sizeof(media) - 1) == 0)
            continue;
        if (bare >= sizeof(inf) - 1 && memcmp(l, inf, sizeof(inf) - 1) == 0) {
            if (variants++ == 0)
                for (int i = 0; i < n; i++)
                    wbuf_printf(
                        &o,
                        "#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID=\"subs\",NAME=\"%s\",LANGUAGE=\"%s\","
                        "DEFAULT=%s,AUTOSELECT=YES,URI=\"%s\"\n",
                        subs[i].name, subs[i].lang, subs[i].is_default ? "YES" : "NO", subs[i].uri);
            put_stream_inf(&o, l, bare);
            wbuf_printf(&o, "%s\n", n > 0 ? ",SUBTITLES=\"subs\"" : "");
            continue;
        }
        if (ll == 0 && nl == NULL)
            break;
        wbuf_printf(&o, "%.*s\n", (int)bare, l);
    }
    if (variants == 0)
        return -EINVAL;
    return wbuf_end(&o);
}
