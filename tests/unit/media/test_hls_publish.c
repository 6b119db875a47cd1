/* The publication order of a ladder: objects arriving in any order come out segments first,
 * a variant after its segments, the master only once the job is whole, the poster last. */
#include "src/media/hls_publish.h"

#include <errno.h>
#include <string.h>

#include "tests/unit/test.h"

static const char V720[] = "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:4\n"
                           "#EXTINF:4.000,\nseg_00000.ts\n#EXTINF:2.000,\nseg_00001.ts\n"
                           "#EXT-X-ENDLIST\n";
static const char V480[] = "#EXTM3U\n#EXT-X-VERSION:6\n#EXT-X-MAP:URI=\"init.mp4\"\n"
                           "#EXTINF:4.000,\r\nseg_00000.m4s\r\n#EXT-X-ENDLIST\n";
static const char MASTER[] = "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\n720p/index.m3u8\n"
                             "#EXT-X-STREAM-INF:BANDWIDTH=1\n480p/index.m3u8\n";

static int add(hlspub *p, const char *name)
{
    const char *body = "";
    if (!strcmp(name, "720p/index.m3u8"))
        body = V720;
    else if (!strcmp(name, "480p/index.m3u8"))
        body = V480;
    else if (!strcmp(name, "master.m3u8"))
        body = MASTER;
    return hlspub_add(p, name, (const uint8_t *)body, strlen(body));
}

/* Drains what may go now, landing each at once; appends names to `order`. */
static int drain(hlspub *p, char order[][64], int n)
{
    int i;
    while ((i = hlspub_next(p)) >= 0) {
        snprintf(order[n++], 64, "%s", hlspub_name(p, i));
        hlspub_landed(p, i);
    }
    return n;
}

static int pos(char order[][64], int n, const char *name)
{
    for (int i = 0; i < n; i++)
        if (!strcmp(order[i], name))
            return i;
    return -1;
}

TEST(kinds)
{
    CHECK_EQ_INT(hlspub_kind_of("720p/seg_00003.ts"), HLSPUB_SEGMENT);
    CHECK_EQ_INT(hlspub_kind_of("720p/init.mp4"), HLSPUB_SEGMENT);
    CHECK_EQ_INT(hlspub_kind_of("720p/seg_00003.m4s"), HLSPUB_SEGMENT);
    CHECK_EQ_INT(hlspub_kind_of("720p/index.m3u8"), HLSPUB_VARIANT);
    CHECK_EQ_INT(hlspub_kind_of("master.m3u8"), HLSPUB_MASTER);
    CHECK_EQ_INT(hlspub_kind_of("poster.jpg"), HLSPUB_POSTER);
    CHECK_EQ_INT(hlspub_kind_of("poster.webp"), HLSPUB_POSTER);
    /* The storyboard and the download go before the master, which promises them. */
    CHECK_EQ_INT(hlspub_kind_of("sprite_0.jpg"), HLSPUB_SEGMENT);
    CHECK_EQ_INT(hlspub_kind_of("storyboard.vtt"), HLSPUB_SEGMENT);
    CHECK_EQ_INT(hlspub_kind_of("download.mp4"), HLSPUB_SEGMENT);
}

/* Every arrival order of a two-rung ladder (reversed, interleaved, encoder order) gives the
 * same guarantees. */
TEST(any_arrival_order)
{
    static const char *const all[] = {"720p/seg_00000.ts",  "720p/seg_00001.ts", "480p/init.mp4",
                                      "480p/seg_00000.m4s", "720p/index.m3u8",   "480p/index.m3u8",
                                      "master.m3u8",        "poster.jpg"};
    const int n = 8;
    static const int orders[][8] = {
        {0, 1, 2, 3, 4, 5, 6, 7}, {7, 6, 5, 4, 3, 2, 1, 0}, {6, 4, 0, 7, 5, 2, 1, 3},
        {4, 0, 5, 3, 6, 1, 7, 2}, {2, 3, 7, 6, 5, 4, 1, 0},
    };
    for (size_t o = 0; o < sizeof(orders) / sizeof(orders[0]); o++) {
        hlspub *p = hlspub_new();
        char out[16][64];
        int got = 0;
        for (int k = 0; k < n; k++) {
            CHECK(add(p, all[orders[o][k]]) >= 0);
            got = drain(p, out, got);
            CHECK_EQ_INT(pos(out, got, "master.m3u8"), -1); /* never before finish */
        }
        char err[160];
        CHECK_EQ_INT(hlspub_finish(p, err, sizeof(err)), 0);
        got = drain(p, out, got);
        CHECK_EQ_INT(got, n);
        CHECK(hlspub_complete(p));
        CHECK_EQ_INT(pos(out, got, "master.m3u8"), n - 2);
        CHECK_EQ_INT(pos(out, got, "poster.jpg"), n - 1);
        CHECK(pos(out, got, "720p/index.m3u8") > pos(out, got, "720p/seg_00001.ts"));
        CHECK(pos(out, got, "720p/index.m3u8") > pos(out, got, "720p/seg_00000.ts"));
        CHECK(pos(out, got, "480p/index.m3u8") > pos(out, got, "480p/init.mp4"));
        CHECK(pos(out, got, "480p/index.m3u8") > pos(out, got, "480p/seg_00000.m4s"));
        hlspub_free(p);
    }
}

/* A variant waits while one of its segments is still in flight; the master waits for the
 * variant in flight. */
TEST(waits_for_landing_not_starting)
{
    hlspub *p = hlspub_new();
    add(p, "720p/seg_00000.ts");
    add(p, "720p/seg_00001.ts");
    int a = hlspub_next(p), b = hlspub_next(p);
    CHECK(a >= 0 && b >= 0);
    add(p, "720p/index.m3u8");
    add(p, "480p/init.mp4");
    add(p, "480p/seg_00000.m4s");
    add(p, "480p/index.m3u8");
    add(p, "master.m3u8");
    char err[160];
    CHECK_EQ_INT(hlspub_finish(p, err, sizeof(err)), 0);
    int c = hlspub_next(p), d = hlspub_next(p);
    CHECK_EQ_INT(hlspub_kind_at(p, c), HLSPUB_SEGMENT);
    CHECK_EQ_INT(hlspub_kind_at(p, d), HLSPUB_SEGMENT);
    CHECK_EQ_INT(hlspub_next(p), -EAGAIN); /* 720p in flight, 480p segments in flight */
    hlspub_landed(p, a);
    CHECK_EQ_INT(hlspub_next(p), -EAGAIN);
    hlspub_landed(p, c);
    hlspub_landed(p, d);
    int v480 = hlspub_next(p);
    CHECK_EQ_STR(hlspub_name(p, v480), "480p/index.m3u8");
    hlspub_landed(p, v480);
    CHECK_EQ_INT(hlspub_next(p), -EAGAIN); /* 720p's last segment still flying */
    hlspub_landed(p, b);
    int v720 = hlspub_next(p);
    CHECK_EQ_STR(hlspub_name(p, v720), "720p/index.m3u8");
    CHECK_EQ_INT(hlspub_next(p), -EAGAIN); /* master waits for the variant to land */
    hlspub_landed(p, v720);
    int m = hlspub_next(p);
    CHECK_EQ_STR(hlspub_name(p, m), "master.m3u8");
    CHECK(!hlspub_complete(p));
    hlspub_landed(p, m);
    CHECK(hlspub_complete(p));
    hlspub_free(p);
}

/* A job that never finishes (the encoder failed) never hands out its master or poster. */
TEST(unfinished_job_never_gets_master)
{
    hlspub *p = hlspub_new();
    char out[16][64];
    add(p, "480p/init.mp4");
    add(p, "480p/seg_00000.m4s");
    add(p, "480p/index.m3u8");
    add(p, "master.m3u8");
    add(p, "poster.jpg");
    int got = drain(p, out, 0);
    CHECK_EQ_INT(got, 3);
    CHECK_EQ_INT(pos(out, got, "master.m3u8"), -1);
    CHECK_EQ_INT(pos(out, got, "poster.jpg"), -1);
    CHECK(!hlspub_complete(p));
    hlspub_free(p);
}

TEST(missing_segment_fails_finish)
{
    hlspub *p = hlspub_new();
    add(p, "720p/seg_00000.ts");
    add(p, "720p/index.m3u8");
    char err[160];
    CHECK_EQ_INT(hlspub_finish(p, err, sizeof(err)), -ENOENT);
    CHECK_EQ_STR(err, "720p/index.m3u8 names 720p/seg_00001.ts, which the job never produced");
    hlspub_free(p);
}

TEST(refuses_bad_names)
{
    hlspub *p = hlspub_new();
    CHECK_EQ_INT(hlspub_add(p, "../x.ts", NULL, 0), -EINVAL);
    CHECK_EQ_INT(hlspub_add(p, "/x.ts", NULL, 0), -EINVAL);
    CHECK_EQ_INT(hlspub_add(p, "", NULL, 0), -EINVAL);
    CHECK(hlspub_add(p, "a/x.ts", NULL, 0) >= 0);
    CHECK_EQ_INT(hlspub_add(p, "a/x.ts", NULL, 0), -EEXIST);
    const char *bad = "#EXTM3U\nhttp://elsewhere/seg.ts\n";
    CHECK_EQ_INT(hlspub_add(p, "a/index.m3u8", (const uint8_t *)bad, strlen(bad)), -EINVAL);
    const char *up = "#EXTM3U\n../b/seg.ts\n";
    CHECK_EQ_INT(hlspub_add(p, "a/index.m3u8", (const uint8_t *)up, strlen(up)), -EINVAL);
    hlspub_free(p);
}

int main(void)
{
    RUN(kinds);
    RUN(any_arrival_order);
    RUN(waits_for_landing_not_starting);
    RUN(unfinished_job_never_gets_master);
    RUN(missing_segment_fails_finish);
    RUN(refuses_bad_names);
    return test_summary();
}
