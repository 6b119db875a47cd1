/* Captions: WebVTT and SRT in, WebVTT out, HLS segments and playlist, language tags. */
#include "proto/captions.h"

#include <errno.h>
#include <stdlib.h>

#include "tests/unit/test.h"

static int parse(const char *s, int hint, captions_track *t, captions_error *e)
{
    return captions_parse(s, strlen(s), hint, t, e);
}

/* Parses src[0..len) and compares the track with want[0..n). */
static void expect(const char *src, size_t len, int hint, const captions_cue *want, size_t n)
{
    captions_track t;
    captions_error e = {0};
    CHECK_EQ_INT(captions_parse(src, len, hint, &t, &e), 0);
    CHECK_EQ_STR(e.message, "");
    CHECK_EQ_INT(t.n, n);
    for (size_t i = 0; i < n && i < t.n; i++) {
        CHECK_EQ_INT(t.cues[i].start_ms, want[i].start_ms);
        CHECK_EQ_INT(t.cues[i].end_ms, want[i].end_ms);
        CHECK_EQ_STR(t.cues[i].text, want[i].text);
        CHECK_EQ_STR(t.cues[i].settings, want[i].settings);
    }
    captions_free(&t);
}

#define EXPECT(src, hint, ...)                                                                     \
    expect(src, strlen(src), hint, (const captions_cue[]){__VA_ARGS__},                            \
           sizeof((const captions_cue[]){__VA_ARGS__}) / sizeof(captions_cue))

TEST(srt_crlf_bom)
{
    const char src[] = "\xEF\xBB\xBF"
                       "1\r\n00:00:01,000 --> 00:00:02,500\r\nHello\r\nworld  \r\n\r\n"
                       "2\r\n00:00:03,000 --> 00:00:04,000 X1:40 X2:600 Y1:20 Y2:50\r\n"
                       "<i>Italic</i>\r\n";
    EXPECT(src, CAPTIONS_AUTO, {1000, 2500, "Hello\nworld", ""}, {3000, 4000, "<i>Italic</i>", ""});
    /* Lone CRs, blank lines with spaces, a '.' before the milliseconds, no number. */
    const char cr[] = "1\r00:00:01.000 --> 00:00:02.000\rA\r \r00:00:05,000-->00:00:06,000\rB";
    EXPECT(cr, CAPTIONS_SRT, {1000, 2000, "A", ""}, {5000, 6000, "B", ""});
}

TEST(vtt_features)
{
    const char src[] = "WEBVTT - a title\nKind: captions\n\n"
                       "NOTE a comment\nspanning --> lines\n\n"
                       "STYLE\n::cue { color: red }\n\n"
                       "intro\n00:01.000 --> 00:04.000 line:0 align:start position:10%\n"
                       "<v Bob><b>Hi</b> there\n<c.yellow>second</c>\n\n"
                       "01:00:00.000 --> 01:00:02.250\t\nLate\n\n"
                       "00:05.000 --> 00:06.000\n\n"; /* no text: dropped */
    EXPECT(src, CAPTIONS_VTT,
           {1000, 4000, "<v Bob><b>Hi</b> there\n<c.yellow>second</c>",
            "line:0 align:start position:10%"},
           {3600000, 3602250, "Late", ""});
    /* A header alone; a cue right under the header; "WEBVTT" wins over an SRT hint. */
    expect("WEBVTT", 6, CAPTIONS_AUTO, NULL, 0);
    EXPECT("WEBVTT\n00:00.000 --> 00:00.001\nx\n", CAPTIONS_SRT, {0, 1, "x", ""});
}

TEST(srt_ass_tags)
{
    const char src[] = "1\n00:00:01,000 --> 00:00:02,000\n{\\an8}Top {\\i1}line{\\i0}\n\n"
                       "2\n00:00:03,000 --> 00:00:04,000\n{\\pos(10,20)}\n{not a tag} {\\b1\n";
    EXPECT(src, CAPTIONS_SRT, {1000, 2000, "Top line", "line:0"},
           {3000, 4000, "{not a tag} {\\b1", ""});
}

TEST(overlap_and_order)
{
    /* Out of order (SRT allows it), two cues at the same start, overlaps: sorted by start,
     * ties in input order. */
    const char src[] = "1\n00:00:05,000 --> 00:00:06,000\nfive\n\n"
                       "2\n00:00:01,000 --> 00:00:09,000\none-a\n\n"
                       "3\n00:00:03,000 --> 00:00:04,000\nthree\n\n"
                       "4\n00:00:01,000 --> 00:00:02,000\none-b\n";
    EXPECT(src, CAPTIONS_AUTO, {1000, 9000, "one-a", ""}, {1000, 2000, "one-b", ""},
           {3000, 4000, "three", ""}, {5000, 6000, "five", ""});
}

TEST(write_round_trip)
{
    const char src[] = "1\r\n00:00:01,500 --> 00:01:02,000\r\n{\\an8}Ça va ? — 日本語 🎬\r\n"
                       "<i>ünïcödé</i>\r\n\r\n2\r\n100:00:00,000 --> 100:00:00,001\r\nend\r\n";
    captions_track t;
    captions_error e;
    CHECK_EQ_INT(parse(src, CAPTIONS_AUTO, &t, &e), 0);
    char *vtt = NULL;
    size_t len = 0;
    CHECK_EQ_INT(captions_write_vtt(&t, &vtt, &len), 0);
    CHECK_EQ_STR(vtt, "WEBVTT\n\n"
                      "00:00:01.500 --> 00:01:02.000 line:0\nÇa va ? — 日本語 🎬\n<i>ünïcödé</i>\n\n"
                      "100:00:00.000 --> 100:00:00.001\nend\n\n");
    CHECK_EQ_INT(len, strlen(vtt));
    EXPECT(vtt, CAPTIONS_VTT, {1500, 62000, "Ça va ? — 日本語 🎬\n<i>ünïcödé</i>", "line:0"},
           {360000000, 360000001, "end", ""});
    free(vtt);
    captions_free(&t);
}

TEST(write_escapes)
{
    /* A track made by hand: blank lines and "-->" in text, a cue that could not be read back. */
    captions_cue cues[] = {{0, 1000, "a\n\n  \nb --> c\r\n", "align:end\n"},
                           {2000, 2000, "never", ""},
                           {3000, 4000, " \n", ""}};
    captions_track t = {cues, 3, NULL};
    char *vtt = NULL;
    size_t len = 0;
    CHECK_EQ_INT(captions_write_vtt(&t, &vtt, &len), 0);
    CHECK_EQ_STR(vtt, "WEBVTT\n\n00:00:00.000 --> 00:00:01.000 align:end\na\nb --&gt; c\n\n");
    free(vtt);
}

typedef struct seen {
    int n, stop_at;
    char docs[4][256];
} seen;

static int keep(void *ctx, int index, const char *vtt, size_t len)
{
    seen *s = ctx;
    CHECK_EQ_INT(index, s->n);
    CHECK_EQ_INT(len, strlen(vtt));
    if (s->n < 4)
        snprintf(s->docs[s->n], sizeof(s->docs[0]), "%s", vtt);
    s->n++;
    return s->n == s->stop_at ? 42 : 0;
}

TEST(segments)
{
    const char src[] = "WEBVTT\n\n00:00.500 --> 00:01.500\nA\n\n"
                       "00:01.900 --> 00:02.100\nacross\n\n"
                       "00:02.000 --> 00:04.000\nB\n\n"
                       "00:04.500 --> 00:07.000\npast the end\n";
    captions_track t;
    captions_error e;
    CHECK_EQ_INT(parse(src, CAPTIONS_VTT, &t, &e), 0);
    seen s = {0};
    CHECK_EQ_INT(captions_segment(&t, 2000, 5000, 900000, keep, &s), 0);
    CHECK_EQ_INT(s.n, 3);
    CHECK_EQ_STR(s.docs[0], "WEBVTT\nX-TIMESTAMP-MAP=MPEGTS:900000,LOCAL:00:00:00.000\n\n"
                            "00:00:00.500 --> 00:00:01.500\nA\n\n"
                            "00:00:01.900 --> 00:00:02.100\nacross\n\n");
    CHECK_EQ_STR(s.docs[1], "WEBVTT\nX-TIMESTAMP-MAP=MPEGTS:900000,LOCAL:00:00:00.000\n\n"
                            "00:00:01.900 --> 00:00:02.100\nacross\n\n"
                            "00:00:02.000 --> 00:00:04.000\nB\n\n");
    CHECK_EQ_STR(s.docs[2], "WEBVTT\nX-TIMESTAMP-MAP=MPEGTS:900000,LOCAL:00:00:00.000\n\n"
                            "00:00:04.500 --> 00:00:07.000\npast the end\n\n");
    /* fMP4: no timestamp map; an empty segment is a header alone; a callback's stop. */
    seen f = {0};
    CHECK_EQ_INT(captions_segment(&t, 1000, 4000, -1, keep, &f), 0);
    CHECK_EQ_INT(f.n, 4);
    CHECK_EQ_STR(f.docs[3], "WEBVTT\n\n00:00:02.000 --> 00:00:04.000\nB\n\n");
    seen g = {.stop_at = 2};
    CHECK_EQ_INT(captions_segment(&t, 1000, 4000, -1, keep, &g), 42);
    CHECK_EQ_INT(g.n, 2);
    CHECK_EQ_INT(captions_segment(&t, 0, 4000, -1, keep, &g), -EINVAL);
    CHECK_EQ_INT(captions_segment(&t, 1, CAPTIONS_MAX_MS, -1, keep, &g), -E2BIG);
    captions_cue unsorted[] = {{5, 6, "b", ""}, {1, 2, "a", ""}};
    captions_track u = {unsorted, 2, NULL};
    CHECK_EQ_INT(captions_segment(&u, 1000, 4000, -1, keep, &g), -EINVAL);
    captions_free(&t);
}

TEST(playlist)
{
    char buf[CAPTIONS_PLAYLIST_CAP(3)];
    int n = captions_playlist(buf, sizeof(buf), 6000, 15500);
    CHECK_EQ_INT(n, strlen(buf));
    CHECK_EQ_STR(buf, "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:6\n"
                      "#EXT-X-PLAYLIST-TYPE:VOD\n#EXT-X-MEDIA-SEQUENCE:0\n"
                      "#EXTINF:6.000,\nseg_00000.vtt\n#EXTINF:6.000,\nseg_00001.vtt\n"
                      "#EXTINF:3.500,\nseg_00002.vtt\n#EXT-X-ENDLIST\n");
    CHECK_EQ_INT(captions_playlist(buf, sizeof(buf), 2500, 2500), strlen(buf));
    CHECK(strstr(buf, "#EXT-X-TARGETDURATION:3\n") != NULL);
    CHECK(strstr(buf, "#EXTINF:2.500,\nseg_00000.vtt\n#EXT-X-ENDLIST\n") != NULL);
    CHECK_EQ_INT(captions_playlist(buf, 40, 6000, 15500), -ENOSPC);
    CHECK_EQ_INT(captions_playlist(buf, sizeof(buf), 6000, 0), -EINVAL);
    CHECK_EQ_INT(captions_segments(6000, 12000), 2);
    CHECK_EQ_INT(captions_segments(6000, 12001), 3);
}

/* Refused with -EINVAL: each group's inputs on the same line, with the same message. */
static const struct {
    int hint, line;
    const char *message; /* without the "line N: " */
    const char *src[5];
} bad[] = {
    {CAPTIONS_AUTO, 1, "the file is neither WebVTT (no WEBVTT header) nor SRT", {"hi\nthere\n"}},
    {CAPTIONS_SRT,
     5,
     "expected a cue number or a timing line",
     {"1\n00:00:01,000 --> 00:00:02,000\nok\n\nhello\n"}},
    {CAPTIONS_VTT,
     1,
     "the file does not start with WEBVTT",
     {"1\n00:00:01,000 --> 00:00:02,000\nok\n", "WEBVTTX\n"}},
    {CAPTIONS_SRT, 1, "the file is empty", {"", "\xEF\xBB\xBF\r\n \r\n"}},
    {CAPTIONS_AUTO,
     3,
     "malformed timestamp (expected hh:mm:ss.ttt --> hh:mm:ss.ttt)",
     {"WEBVTT\n\n00:01.000 --> 00:0x.000\nhi\n", "WEBVTT\n\n00:01,000 --> 00:02.000\nhi\n",
      "WEBVTT\n\n0:01.000 --> 00:02.000\nhi\n",
      "WEBVTT\n\n00:01.000 --> 00:02.000 --> 00:03.000\nhi\n"}},
    {CAPTIONS_AUTO,
     2,
     "malformed timestamp (expected hh:mm:ss,ttt --> hh:mm:ss,ttt)",
     {"1\n00:00:01,00 --> 00:00:02,000\nhi\n", "1\n00:00:01,000 --> 00:00:02,000x\nhi\n"}},
    {CAPTIONS_AUTO,
     3,
     "the end time is not after the start time",
     {"WEBVTT\n\n00:03.000 --> 00:02.000\nx\n", "WEBVTT\r\r00:01.000 --> 00:01.000\rhi"}},
    {CAPTIONS_AUTO,
     6,
     "the end time is not after the start time",
     {"WEBVTT\n\n00:01.000 --> 00:02.000\nhi\n\n00:03.000 --> 00:02.000\nx\n"}},
    {CAPTIONS_AUTO,
     2,
     "minutes and seconds must be below 60",
     {"WEBVTT\n00:61.000 --> 01:02.000\nhi\n", "1\n00:60:00,000 --> 01:02:00,000\nhi\n"}},
    {CAPTIONS_AUTO,
     3,
     "cue text may not hold \"-->\" (is the blank line before a cue missing?)",
     {"1\n00:00:01,000 --> 00:00:02,000\n--{\\i1}>\n",
      "WEBVTT\n00:01.000 --> 00:02.000\n00:03.000 --> 00:04.000\n"}},
    {CAPTIONS_AUTO,
     3,
     "the text is not valid UTF-8",
     {"WEBVTT\n00:01.000 --> 00:02.000\n\xC3\x28\n", "WEBVTT\n\nNOTE \xC0\xAF\n",
      "1\r\n00:00:01,000 --> 00:00:02,000\r\n\xED\xA0\x80\r\n",
      "1\r\n00:00:01,000 --> 00:00:02,000\r\n\xF0\x9F\x8E\r\n"}},
    {CAPTIONS_AUTO,
     3,
     "the cue identifier is not followed by a timing line",
     {"WEBVTT\n\nid\n\n00:01.000 --> 00:02.000\nhi\n", "WEBVTT\n\nlast\n",
      "\n\n2\n3\n00:00:01,000 --> 00:00:02,000\nhi\n"}},
};

TEST(malformed)
{
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char want[160];
        snprintf(want, sizeof(want), "line %d: %s", bad[i].line, bad[i].message);
        for (size_t k = 0; k < 5 && bad[i].src[k] != NULL; k++) {
            captions_track t;
            captions_error e;
            CHECK_EQ_INT(parse(bad[i].src[k], bad[i].hint, &t, &e), -EINVAL);
            CHECK_EQ_INT(e.line, bad[i].line);
            CHECK_EQ_STR(e.message, want);
            CHECK(t.cues == NULL && t.mem == NULL && t.n == 0);
        }
    }
    /* A NUL byte, which strlen would hide. */
    const char nul[] = "WEBVTT\n\n00:01.000 --> 00:02.000\nab\0c\n";
    captions_track t;
    captions_error e;
    CHECK_EQ_INT(captions_parse(nul, sizeof(nul) - 1, CAPTIONS_AUTO, &t, &e), -EINVAL);
    CHECK_EQ_STR(e.message, "line 4: the file holds a NUL byte");
    CHECK_EQ_INT(captions_parse("WEBVTT", 6, 7, &t, NULL), -EINVAL);
}

/* A WebVTT file of `n` cues of `text`, each 26 bytes plus the text. */
static char *cues(size_t n, const char *text, size_t *len)
{
    size_t per = 26 + strlen(text);
    char *s = malloc(8 + n * per + 1);
    size_t at = (size_t)sprintf(s, "WEBVTT\n\n");
    for (size_t i = 0; i < n; i++)
        at += (size_t)sprintf(s + at, "00:00.000 --> 00:01.000\n%s\n\n", text);
    *len = at;
    return s;
}

TEST(limits)
{
    captions_track t;
    captions_error e;
    size_t len;
    char *s = cues(CAPTIONS_MAX_CUES, "x", &len);
    CHECK_EQ_INT(captions_parse(s, len, CAPTIONS_AUTO, &t, &e), 0);
    CHECK_EQ_INT(t.n, CAPTIONS_MAX_CUES);
    captions_free(&t);
    free(s);
    s = cues(CAPTIONS_MAX_CUES + 1, "x", &len);
    CHECK_EQ_INT(captions_parse(s, len, CAPTIONS_AUTO, &t, &e), -E2BIG);
    CHECK_EQ_INT(e.line, 3 + 3 * CAPTIONS_MAX_CUES);
    CHECK_EQ_STR(e.message, "line 300003: the file holds more than 100000 cues");
    free(s);

    /* 4096 bytes of text pass, one more is refused on the line that crosses. */
    char text[CAPTIONS_MAX_TEXT + 16];
    memset(text, 'a', CAPTIONS_MAX_TEXT);
    text[CAPTIONS_MAX_TEXT] = '\0';
    text[2000] = '\n';
    s = cues(1, text, &len);
    CHECK_EQ_INT(captions_parse(s, len, CAPTIONS_AUTO, &t, &e), 0);
    CHECK_EQ_INT(strlen(t.cues[0].text), CAPTIONS_MAX_TEXT);
    captions_free(&t);
    free(s);
    strcat(text, "\nb");
    s = cues(1, text, &len);
    CHECK_EQ_INT(captions_parse(s, len, CAPTIONS_AUTO, &t, &e), -E2BIG);
    CHECK_EQ_STR(e.message, "line 6: a cue's text is longer than 4096 bytes");
    free(s);

    /* Over 8 MiB: the line that holds the first byte too many. */
    len = CAPTIONS_MAX_BYTES + 1;
    s = malloc(len);
    memset(s, 'x', len);
    memcpy(s, "WEBVTT\n\r\n\r", 10);
    CHECK_EQ_INT(captions_parse(s, len, CAPTIONS_AUTO, &t, &e), -E2BIG);
    CHECK_EQ_STR(e.message, "line 4: the file is over 8 MiB");
    free(s);
}

TEST(lang_tags)
{
    const char *good[] = {"en", "fra", "pt-BR", "zh-Hant-TW", "es-419", "en-x-abcdefgh", "sr-Latn"};
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        CHECK_EQ_INT(captions_lang_ok(good[i], strlen(good[i])), 1);
    const char *no[] = {"",
                        "e",
                        "EN",
                        "En",
                        "engl",
                        "en-",
                        "en--US",
                        "-en",
                        "en_US",
                        "en US",
                        "en-abcdefghi",
                        "en/../x",
                        "en-US.vtt",
                        "e1",
                        "en-\xC3\xA9",
                        "en-aaaaaaaa-bbbbbbbb-cccccccc-dddddd"}; /* 36 bytes */
    for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++)
        CHECK_EQ_INT(captions_lang_ok(no[i], strlen(no[i])), 0);
    CHECK_EQ_INT(captions_lang_ok("en-aaaaaaaa-bbbbbbbb-cccccccc-ddddd", 35), 1);
    CHECK_EQ_INT(captions_lang_ok("en-US", 2), 1); /* a length, not a C string */
}

int main(void)
{
    RUN(srt_crlf_bom);
    RUN(vtt_features);
    RUN(srt_ass_tags);
    RUN(overlap_and_order);
    RUN(write_round_trip);
    RUN(write_escapes);
    RUN(segments);
    RUN(playlist);
    RUN(malformed);
    RUN(limits);
    RUN(lang_tags);
    return test_summary();
}
