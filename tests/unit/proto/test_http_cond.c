/* Range and conditional headers: every Range form, unsatisfiable and ignored ranges,
 * If-None-Match lists, IMF-fixdate parsing and the If-Modified-Since fallback. */
#include <string.h>

#include "proto/http_cond.h"
#include "tests/unit/test.h"

static int range(const char *v, uint64_t size, uint64_t *a, uint64_t *b)
{
    *a = *b = 12345;
    return httpcond_range(v, v ? strlen(v) : 0, size, a, b);
}

TEST(ranges)
{
    uint64_t a, b;
    CHECK_EQ_INT(range(NULL, 100, &a, &b), HTTPCOND_FULL);
    CHECK_EQ_INT(range("bytes=0-9", 100, &a, &b), HTTPCOND_PARTIAL);
    CHECK_EQ_INT(a, 0);
    CHECK_EQ_INT(b, 9);
    CHECK_EQ_INT(range("bytes=90-", 100, &a, &b), HTTPCOND_PARTIAL); /* open-ended */
    CHECK_EQ_INT(a, 90);
    CHECK_EQ_INT(b, 99);
    CHECK_EQ_INT(range("bytes=-10", 100, &a, &b), HTTPCOND_PARTIAL); /* suffix */
    CHECK_EQ_INT(a, 90);
    CHECK_EQ_INT(b, 99);
    CHECK_EQ_INT(range("bytes=-1000", 100, &a, &b), HTTPCOND_PARTIAL); /* suffix past start */
    CHECK_EQ_INT(a, 0);
    CHECK_EQ_INT(b, 99);
    CHECK_EQ_INT(range("bytes=50-1000", 100, &a, &b), HTTPCOND_PARTIAL); /* end clamped */
    CHECK_EQ_INT(a, 50);
    CHECK_EQ_INT(b, 99);
    CHECK_EQ_INT(range("bytes=99-99", 100, &a, &b), HTTPCOND_PARTIAL);
    CHECK_EQ_INT(a, 99);
    CHECK_EQ_INT(range("BYTES=0-0", 100, &a, &b), HTTPCOND_PARTIAL);
}

TEST(unsatisfiable_and_ignored)
{
    uint64_t a, b;
    CHECK_EQ_INT(range("bytes=100-", 100, &a, &b), HTTPCOND_UNSATISFIABLE);
    CHECK_EQ_INT(range("bytes=100-200", 100, &a, &b), HTTPCOND_UNSATISFIABLE);
    CHECK_EQ_INT(range("bytes=-0", 100, &a, &b), HTTPCOND_UNSATISFIABLE);
    CHECK_EQ_INT(range("bytes=0-", 0, &a, &b), HTTPCOND_UNSATISFIABLE);
    CHECK_EQ_INT(range("bytes=-5", 0, &a, &b), HTTPCOND_UNSATISFIABLE);
    /* Several ranges: the whole object (documented choice). */
    CHECK_EQ_INT(range("bytes=0-9,20-29", 100, &a, &b), HTTPCOND_FULL);
    CHECK_EQ_INT(range("bytes=0-9, 200-", 100, &a, &b), HTTPCOND_FULL);
    /* Malformed or other units: ignored. */
    CHECK_EQ_INT(range("bytes=9-0", 100, &a, &b), HTTPCOND_FULL);
    CHECK_EQ_INT(range("bytes=", 100, &a, &b), HTTPCOND_FULL);
    CHECK_EQ_INT(range("bytes=-", 100, &a, &b), HTTPCOND_FULL);
    CHECK_EQ_INT(range("bytes=a-b", 100, &a, &b), HTTPCOND_FULL);
    CHECK_EQ_INT(range("items=0-9", 100, &a, &b), HTTPCOND_FULL);
    CHECK_EQ_INT(range("bytes=99999999999999999999-", 100, &a, &b), HTTPCOND_FULL);
}

TEST(if_none_match)
{
    const char *tag = "\"abc-1\"";
    CHECK(httpcond_none_match("\"abc-1\"", 7, tag));
    CHECK(httpcond_none_match("W/\"abc-1\"", 9, tag));
    CHECK(httpcond_none_match("\"x\", \"abc-1\"", 12, tag));
    CHECK(httpcond_none_match("*", 1, tag));
    CHECK(!httpcond_none_match("\"abc-2\"", 7, tag));
    CHECK(!httpcond_none_match("abc-1", 5, tag));
    CHECK(!httpcond_none_match("", 0, tag));
}

TEST(dates)
{
    time_t t;
    CHECK_EQ_INT(httpcond_parse_date("Sun, 06 Nov 1994 08:49:37 GMT", 29, &t), 0);
    CHECK_EQ_INT(t, 784111777);
    CHECK_EQ_INT(httpcond_parse_date("Thu, 01 Jan 1970 00:00:00 GMT", 29, &t), 0);
    CHECK_EQ_INT(t, 0);
    CHECK_EQ_INT(httpcond_parse_date("Tue, 29 Feb 2028 23:59:59 GMT", 29, &t), 0);
    CHECK_EQ_INT(t, 1835481599);
    CHECK(httpcond_parse_date("Sunday, 06-Nov-94 08:49:37 GMT", 30, &t) < 0);
    CHECK(httpcond_parse_date("Sun Nov  6 08:49:37 1994", 24, &t) < 0);
    CHECK(httpcond_parse_date("Sun, 06 Foo 1994 08:49:37 GMT", 29, &t) < 0);
}

TEST(not_modified)
{
    const char *tag = "\"t\"";
    const char *d = "Sun, 06 Nov 1994 08:49:37 GMT";
    CHECK(httpcond_not_modified("\"t\"", 3, NULL, 0, tag, 784111777));
    CHECK(!httpcond_not_modified("\"u\"", 3, NULL, 0, tag, 784111777));
    CHECK(httpcond_not_modified(NULL, 0, d, 29, tag, 784111777));
    CHECK(httpcond_not_modified(NULL, 0, d, 29, tag, 784111776));
    CHECK(!httpcond_not_modified(NULL, 0, d, 29, tag, 784111778));
    /* If-None-Match wins over If-Modified-Since. */
    CHECK(!httpcond_not_modified("\"u\"", 3, d, 29, tag, 784111777));
    CHECK(!httpcond_not_modified(NULL, 0, "yesterday", 9, tag, 784111777));
}

int main(void)
{
    RUN(ranges);
    RUN(unsatisfiable_and_ignored);
    RUN(if_none_match);
    RUN(dates);
    RUN(not_modified);
    return test_summary();
}
