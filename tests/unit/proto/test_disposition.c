/* Content-Disposition values and the download flag, known answers and hostile names. */
#include "proto/disposition.h"

#include <errno.h>

#include "tests/unit/test.h"

TEST(query_flag)
{
    CHECK_EQ_INT(disposition_query_flag("download=1", 10, "download"), 1);
    CHECK_EQ_INT(disposition_query_flag("a=b&download=true", 17, "download"), 1);
    CHECK_EQ_INT(disposition_query_flag("download=0", 10, "download"), 0);
    CHECK_EQ_INT(disposition_query_flag("download", 8, "download"), 0);
    CHECK_EQ_INT(disposition_query_flag("xdownload=1", 11, "download"), 0);
    CHECK_EQ_INT(disposition_query_flag("download=11", 11, "download"), 0);
    CHECK_EQ_INT(disposition_query_flag("download=1", 9, "download"), 0); /* cut short */
    CHECK_EQ_INT(disposition_query_flag("", 0, "download"), 0);
    const char *v = NULL;
    size_t vl = 0;
    CHECK_EQ_INT(disposition_query_param("download=1&name=aGk&nsig=ab", 27, "name", &v, &vl), 1);
    CHECK(vl == 3 && memcmp(v, "aGk", 3) == 0);
    CHECK_EQ_INT(disposition_query_param("download=1&name=&x", 18, "name", &v, &vl), 1);
    CHECK_EQ_INT((long long)vl, 0);
    CHECK_EQ_INT(disposition_query_param("download=1&names=x", 18, "name", &v, &vl), 0);
}

static const char *value(const char *name)
{
    static char buf[512];
    int n = disposition_attachment(buf, sizeof(buf), name, strlen(name), ".mp4");
    return n < 0 ? "ERR" : buf;
}

TEST(plain_names)
{
    CHECK_EQ_STR(value("holiday.mov"),
                 "attachment; filename=\"holiday.mp4\"; filename*=UTF-8''holiday.mp4");
    CHECK_EQ_STR(value("My Clip.v2.MKV"),
                 "attachment; filename=\"My Clip.v2.mp4\"; filename*=UTF-8''My%20Clip.v2.mp4");
    CHECK_EQ_STR(value("noext"), "attachment; filename=\"noext.mp4\"; filename*=UTF-8''noext.mp4");
    CHECK_EQ_STR(value("C:\\Users\\me\\take 1.mp4"),
                 "attachment; filename=\"take 1.mp4\"; filename*=UTF-8''take%201.mp4");
    CHECK_EQ_STR(value("a2xK9_zz"), "attachment; filename=\"a2xK9_zz.mp4\"; "
                                    "filename*=UTF-8''a2xK9_zz.mp4");
}

TEST(unicode_keeps_utf8_in_filename_star)
{
    CHECK_EQ_STR(value("\xc3\xa9t\xc3\xa9.mov"),
                 "attachment; filename=\"_t_.mp4\"; filename*=UTF-8''%C3%A9t%C3%A9.mp4");
    /* an invalid sequence is one '_' per byte */
    CHECK_EQ_STR(value("a\xff\xc3.mov"),
                 "attachment; filename=\"a__.mp4\"; filename*=UTF-8''a__.mp4");
}

TEST(hostile_names_cannot_break_the_header)
{
    const char *v = value("x\"; filename=evil.exe\r\nSet-Cookie: a=b.mov");
    CHECK(strchr(v, '\r') == NULL && strchr(v, '\n') == NULL);
    CHECK_EQ_STR(v, "attachment; filename=\"x__ filename=evil.exe__Set-Cookie: a=b.mp4\"; "
                    "filename*=UTF-8''x%22%3B%20filename%3Devil.exe__Set-Cookie%3A%20a%3Db.mp4");
    CHECK_EQ_STR(value("back\\slash%41.mov"),
                 "attachment; filename=\"slash_41.mp4\"; filename*=UTF-8''slash%2541.mp4");
    CHECK_EQ_STR(value(".mov"), "attachment; filename=\"download.mp4\"; "
                                "filename*=UTF-8''download.mp4");
    CHECK_EQ_STR(value(""), "attachment; filename=\"download.mp4\"; "
                            "filename*=UTF-8''download.mp4");
    CHECK_EQ_STR(value("../../etc/passwd"),
                 "attachment; filename=\"passwd.mp4\"; filename*=UTF-8''passwd.mp4");
}

TEST(long_names_are_cut_on_a_character)
{
    char name[400];
    size_t n = 0;
    for (int i = 0; i < 100; i++) {
        name[n++] = '\xc3';
        name[n++] = '\xa9';
    }
    name[n] = '\0';
    char buf[1024];
    int len = disposition_attachment(buf, sizeof(buf), name, n, ".mp4");
    CHECK(len > 0);
    /* 60 characters (120 bytes) kept, none cut in half */
    const char *star = strstr(buf, "UTF-8''");
    CHECK(star != NULL);
    CHECK_EQ_INT((long long)strlen(star), (long long)(7 + 60 * 6 + 4));
}

TEST(small_buffers)
{
    char buf[30];
    CHECK_EQ_INT(disposition_attachment(buf, sizeof(buf), "holiday.mov", 11, ".mp4"), -ENOSPC);
    CHECK_EQ_INT(disposition_attachment(buf, 0, "a", 1, ".mp4"), -ENOSPC);
}

int main(void)
{
    RUN(query_flag);
    RUN(plain_names);
    RUN(unicode_keeps_utf8_in_filename_star);
    RUN(hostile_names_cannot_break_the_header);
    RUN(long_names_are_cut_on_a_character);
    RUN(small_buffers);
    return test_summary();
}
