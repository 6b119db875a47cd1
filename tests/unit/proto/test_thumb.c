/* Thumbnail parameters, canonical names and playlist lookups: known answers and refusals. */
#include "proto/thumb.h"

#include <errno.h>

#include "tests/unit/test.h"

static int params(const char *q, int64_t *t, int *w)
{
    const char *why = NULL;
    return thumb_params(q, strlen(q), t, w, &why);
}

TEST(parameters)
{
    int64_t t = -1;
    int w = -1;
    CHECK_EQ_INT(params("time=42.5&width=320", &t, &w), 0);
    CHECK_EQ_INT(t, 42500);
    CHECK_EQ_INT(w, 320);
    CHECK_EQ_INT(params("width=640&x=1&time=0.049", &t, &w), 0);
    CHECK_EQ_INT(t, 0); /* rounded to the 100 ms step */
    CHECK_EQ_INT(params("time=0.05", &t, &w), 0);
    CHECK_EQ_INT(t, 100);
    CHECK_EQ_INT(w, THUMB_DEFAULT_WIDTH);
    CHECK_EQ_INT(params("time=604800", &t, &w), 0);
    const char *bad[] = {"",
                         "width=320",
                         "time=",
                         "time=.5",
                         "time=5.",
                         "time=-1",
                         "time=1e3",
                         "time=1.2345",
                         "time=604800.001",
                         "time=1&width=15",
                         "time=1&width=3841",
                         "time=1&width=",
                         "time=1&width=32x",
                         "time=1&width=0320000",
                         "time=99999999999"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        CHECK_EQ_INT(params(bad[i], &t, &w), -EINVAL);
}

TEST(names_round_trip)
{
    char p[THUMB_PATH_MAX];
    CHECK_EQ_INT(thumb_path(p, sizeof(p), 42500, 320), 19);
    CHECK_EQ_STR(p, "thumb/42500_320.jpg");
    int64_t t;
    int w;
    CHECK_EQ_INT(thumb_path_parse(p, &t, &w), 1);
    CHECK(t == 42500 && w == 320);
    CHECK_EQ_INT(thumb_path_parse("thumb/1_8.jpg", &t, &w), 0);     /* width too small */
    CHECK_EQ_INT(thumb_path_parse("thumb/1_320.png", &t, &w), 0);   /* not ours */
    CHECK_EQ_INT(thumb_path_parse("thumb/_320.jpg", &t, &w), 0);    /* no time */
    CHECK_EQ_INT(thumb_path_parse("seg_00001.ts", &t, &w), 0);      /* a segment */
    CHECK_EQ_INT(thumb_path_parse("thumb/1_320.jpg/x", &t, &w), 0); /* trailing */
    CHECK_EQ_INT(thumb_path(p, 8, 42500, 320), -ENOSPC);
}

static const char master[] = "#EXTM3U\n#EXT-X-VERSION:3\n"
                             "#EXT-X-STREAM-INF:BANDWIDTH=800000,RESOLUTION=640x360\n"
                             "360p/index.m3u8\n"
                             "#EXT-X-STREAM-INF:BANDWIDTH=5000000,RESOLUTION=1920x1080\n"
                             "1080p/index.m3u8\n"
                             "#EXT-X-STREAM-INF:BANDWIDTH=2500000,RESOLUTION=1280x720\n"
                             "720p/index.m3u8\n";

TEST(top_variant)
{
    char uri[64];
    int w = -1;
    CHECK_EQ_INT(thumb_top_variant(master, strlen(master), uri, sizeof(uri), &w), 0);
    CHECK_EQ_STR(uri, "1080p/index.m3u8");
    CHECK_EQ_INT(w, 1920);
    CHECK_EQ_INT(thumb_top_variant("#EXTM3U\n", 8, uri, sizeof(uri), &w), -ENOENT);
    CHECK_EQ_INT(thumb_top_variant(master, strlen(master), uri, 8, &w), -ENOSPC);
}

static const char media[] = "#EXTM3U\r\n#EXT-X-TARGETDURATION:2\r\n#EXT-X-MAP:URI=\"init.mp4\"\r\n"
                            "#EXTINF:2.000,\r\nseg_00000.m4s\r\n#EXTINF:2.000,\r\nseg_00001.m4s\r\n"
                            "#EXTINF:1.5,\r\nseg_00002.m4s\r\n#EXT-X-ENDLIST\r\n";

TEST(segment_at)
{
    char uri[64], map[64];
    int64_t start = -1;
    CHECK_EQ_INT(
        thumb_segment_at(media, strlen(media), 0, uri, sizeof(uri), &start, map, sizeof(map)), 0);
    CHECK_EQ_STR(uri, "seg_00000.m4s");
    CHECK_EQ_STR(map, "init.mp4");
    CHECK_EQ_INT(start, 0);
    CHECK_EQ_INT(
        thumb_segment_at(media, strlen(media), 2000, uri, sizeof(uri), &start, map, sizeof(map)),
        0);
    CHECK_EQ_STR(uri, "seg_00001.m4s");
    CHECK_EQ_INT(start, 2000);
    CHECK_EQ_INT(
        thumb_segment_at(media, strlen(media), 999999, uri, sizeof(uri), &start, map, sizeof(map)),
        0); /* past the end: the last */
    CHECK_EQ_STR(uri, "seg_00002.m4s");
    CHECK_EQ_INT(start, 4000);
    const char ts[] = "#EXTM3U\n#EXTINF:6.006,\nseg_00000.ts\n";
    CHECK_EQ_INT(thumb_segment_at(ts, strlen(ts), 100, uri, sizeof(uri), &start, map, sizeof(map)),
                 0);
    CHECK_EQ_STR(map, "");
    const char sp[] = "#EXTM3U\n#EXTINF:6.006,\nseg 0.ts\n";
    CHECK_EQ_INT(thumb_segment_at(sp, strlen(sp), 100, uri, sizeof(uri), &start, map, sizeof(map)),
                 -EINVAL);
    CHECK_EQ_INT(thumb_segment_at("#EXTM3U\n", 8, 0, uri, sizeof(uri), &start, map, sizeof(map)),
                 -ENOENT);
}

int main(void)
{
    RUN(parameters);
    RUN(names_round_trip);
    RUN(top_variant);
    RUN(segment_at);
    return test_summary();
}
