/* Known-answer tests of the HLS playlist writers and the avc1 codec string. */
#include "proto/hls.h"

#include <errno.h>

#include "tests/unit/test.h"

TEST(media_playlist)
{
    const hls_segment segs[] = {
        {"seg_00000.ts", 4.0}, {"seg_00001.ts", 4.0333}, {"seg_00002.ts", 1.5}};
    char buf[512];
    int n = hls_write_media(buf, sizeof(buf), NULL, segs, 3);
    CHECK_EQ_STR(buf, "#EXTM3U\n"
                      "#EXT-X-VERSION:3\n"
                      "#EXT-X-TARGETDURATION:5\n"
                      "#EXT-X-MEDIA-SEQUENCE:0\n"
                      "#EXT-X-PLAYLIST-TYPE:VOD\n"
                      "#EXTINF:4.000,\nseg_00000.ts\n"
                      "#EXTINF:4.033,\nseg_00001.ts\n"
                      "#EXTINF:1.500,\nseg_00002.ts\n"
                      "#EXT-X-ENDLIST\n");
    CHECK_EQ_INT(n, (long long)strlen(buf));
}

TEST(fmp4_media_playlist_names_its_init_segment)
{
    const hls_segment segs[] = {{"seg_00000.m4s", 4.0}, {"seg_00001.m4s", 2.5}};
    char buf[512];
    int n = hls_write_media(buf, sizeof(buf), "init.mp4", segs, 2);
    CHECK_EQ_STR(buf, "#EXTM3U\n"
                      "#EXT-X-VERSION:6\n"
                      "#EXT-X-TARGETDURATION:4\n"
                      "#EXT-X-MEDIA-SEQUENCE:0\n"
                      "#EXT-X-PLAYLIST-TYPE:VOD\n"
                      "#EXT-X-MAP:URI=\"init.mp4\"\n"
                      "#EXTINF:4.000,\nseg_00000.m4s\n"
                      "#EXTINF:2.500,\nseg_00001.m4s\n"
                      "#EXT-X-ENDLIST\n");
    CHECK_EQ_INT(n, (long long)strlen(buf));
}

TEST(content_types)
{
    CHECK_EQ_STR(hls_content_type("720p/index.m3u8"), "application/vnd.apple.mpegurl");
    CHECK_EQ_STR(hls_content_type("720p/seg_00001.ts"), "video/mp2t");
    CHECK_EQ_STR(hls_content_type("720p/init.mp4"), "video/mp4");
    CHECK_EQ_STR(hls_content_type("720p/seg_00001.m4s"), "video/mp4");
    CHECK_EQ_STR(hls_content_type("poster.jpg"), "image/jpeg");
    CHECK_EQ_STR(hls_content_type("poster.webp"), "image/webp");
    CHECK_EQ_STR(hls_content_type("sprite_0.jpg"), "image/jpeg");
    CHECK_EQ_STR(hls_content_type("storyboard.vtt"), "text/vtt");
    CHECK_EQ_STR(hls_content_type("download.mp4"), "video/mp4");
    CHECK_EQ_STR(hls_content_type("notes"), "application/octet-stream");
    CHECK_EQ_STR(hls_content_type("a.ts.bak"), "application/octet-stream");
}

TEST(target_duration_rounds_up_but_forgives_float_noise)
{
    const hls_segment exact[] = {{"a", 4.0000004}, {"b", 3.9}};
    CHECK_EQ_INT(hls_target_duration(exact, 2), 4);
    const hls_segment over[] = {{"a", 4.01}};
    CHECK_EQ_INT(hls_target_duration(over, 1), 5);
    CHECK_EQ_INT(hls_target_duration(NULL, 0), 1);
}

TEST(master_playlist)
{
    const hls_variant v[] = {
        {"720p/index.m3u8", 3100000, 2900000, 1280, 720, 30, "avc1.64001f,mp4a.40.2"},
        {"audio/index.m3u8", 140000, 132000, 0, 0, 0, "mp4a.40.2"},
    };
    char buf[512];
    int n = hls_write_master(buf, sizeof(buf), v, 2);
    CHECK_EQ_STR(buf, "#EXTM3U\n"
                      "#EXT-X-VERSION:3\n"
                      "#EXT-X-INDEPENDENT-SEGMENTS\n"
                      "#EXT-X-STREAM-INF:BANDWIDTH=3100000,AVERAGE-BANDWIDTH=2900000,"
                      "RESOLUTION=1280x720,FRAME-RATE=30.000,CODECS=\"avc1.64001f,mp4a.40.2\"\n"
                      "720p/index.m3u8\n"
                      "#EXT-X-STREAM-INF:BANDWIDTH=140000,AVERAGE-BANDWIDTH=132000,"
                      "CODECS=\"mp4a.40.2\"\n"
                      "audio/index.m3u8\n");
    CHECK_EQ_INT(n, (long long)strlen(buf));
}

TEST(writers_report_a_small_buffer)
{
    const hls_segment segs[] = {{"seg_00000.ts", 4.0}};
    char buf[40];
    CHECK_EQ_INT(hls_write_media(buf, sizeof(buf), NULL, segs, 1), -ENOSPC);
    CHECK_EQ_INT(hls_write_master(buf, 0, NULL, 0), -ENOSPC);
}

TEST(avc1_codec_from_sps)
{
    /* An access unit delimiter, then an SPS of High profile (100), level 3.1 (31). */
    const uint8_t au[] = {0, 0, 0, 1, 0x09, 0xf0, 0, 0, 0, 1, 0x67, 0x64, 0x00, 0x1f, 0xac, 0xd9};
    char name[16];
    CHECK_EQ_INT(hls_avc1_codec(au, sizeof(au), name, sizeof(name)), 0);
    CHECK_EQ_STR(name, "avc1.64001f");
    const uint8_t none[] = {0, 0, 1, 0x65, 0x88, 0x84, 0x00, 0x10};
    CHECK_EQ_INT(hls_avc1_codec(none, sizeof(none), name, sizeof(name)), -ENOENT);
}

TEST(master_subtitles_replace_and_remove)
{
    const char *master = "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-INDEPENDENT-SEGMENTS\n"
                         "#EXT-X-STREAM-INF:BANDWIDTH=1000,RESOLUTION=640x360\n360p/index.m3u8\n"
                         "#EXT-X-STREAM-INF:BANDWIDTH=500,RESOLUTION=320x180\n180p/index.m3u8\n";
    hls_subtitle subs[2] = {{"en", "English", "captions/en/index.m3u8", 1},
                            {"pt-BR", "Português", "captions/pt-BR/index.m3u8", 0}};
    char a[2048], b[2048], c[2048];
    int n = hls_master_subtitles(master, strlen(master), subs, 2, a, sizeof(a));
    CHECK(n > 0);
    CHECK_EQ_STR(a,
                 "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-INDEPENDENT-SEGMENTS\n"
                 "#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID=\"subs\",NAME=\"English\",LANGUAGE=\"en\","
                 "DEFAULT=YES,AUTOSELECT=YES,URI=\"captions/en/index.m3u8\"\n"
                 "#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID=\"subs\",NAME=\"Português\","
                 "LANGUAGE=\"pt-BR\",DEFAULT=NO,AUTOSELECT=YES,URI=\"captions/pt-BR/index.m3u8\"\n"
                 "#EXT-X-STREAM-INF:BANDWIDTH=1000,RESOLUTION=640x360,SUBTITLES=\"subs\"\n"
                 "360p/index.m3u8\n"
                 "#EXT-X-STREAM-INF:BANDWIDTH=500,RESOLUTION=320x180,SUBTITLES=\"subs\"\n"
                 "180p/index.m3u8\n");
    /* Again with one track: the old ones go, nothing doubles. */
    CHECK(hls_master_subtitles(a, (size_t)n, subs + 1, 1, b, sizeof(b)) > 0);
    CHECK(strstr(b, "English") == NULL && strstr(b, "Português") != NULL);
    CHECK(strstr(strstr(b, "SUBTITLES=\"subs\"") + 1, "SUBTITLES=\"subs\",SUBTITLES") == NULL);
    /* None: the master as it was. */
    n = hls_master_subtitles(b, strlen(b), NULL, 0, c, sizeof(c));
    CHECK_EQ_INT(n, (int)strlen(master));
    CHECK_EQ_STR(c, master);
    CHECK_EQ_INT(hls_master_subtitles("#EXTM3U\n", 8, subs, 1, c, sizeof(c)), -EINVAL);
    CHECK_EQ_INT(hls_master_subtitles(master, strlen(master), subs, 2, c, 64), -ENOSPC);
}

int main(void)
{
    RUN(media_playlist);
    RUN(fmp4_media_playlist_names_its_init_segment);
    RUN(master_subtitles_replace_and_remove);
    RUN(content_types);
    RUN(target_duration_rounds_up_but_forgives_float_noise);
    RUN(master_playlist);
    RUN(writers_report_a_small_buffer);
    RUN(avc1_codec_from_sps);
    return test_summary();
}
