/* proto/s3_wire: S3 error documents, element text with entities, the sentence for a user, the
 * retry classification, jittered backoff bounds, HTTP and ISO dates. */
#include <errno.h>

#include "proto/s3_wire.h"
#include "tests/unit/test.h"

static const char sig_error[] =
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>SignatureDoesNotMatch</Code>"
    "<Message>The request signature we calculated does not match the signature you provided. "
    "Check your key and signing method.</Message><RequestId>4442587FB7D0A2F9</RequestId></Error>";

TEST(error_document)
{
    s3wire_error e;
    CHECK_EQ_INT(s3wire_parse_error(sig_error, strlen(sig_error), &e), 0);
    CHECK_EQ_STR(e.code, "SignatureDoesNotMatch");
    CHECK(strncmp(e.message, "The request signature", 21) == 0);
    char line[512];
    s3wire_describe(line, sizeof(line), "PUT", "b", "k", 403, &e, 0);
    CHECK_EQ_STR(line, "S3 PUT b/k failed: 403 SignatureDoesNotMatch: The request signature we "
                       "calculated does not match the signature you provided. Check your key "
                       "and signing method.");
    CHECK_EQ_INT(s3wire_parse_error("<html/>", 7, &e), -ENOENT);
    CHECK_EQ_STR(e.code, "");
}

TEST(describe_without_body)
{
    char line[256];
    s3wire_describe(line, sizeof(line), "HEAD", "b", "missing", 404, NULL, 0);
    CHECK_EQ_STR(line, "S3 HEAD b/missing failed: 404 Not Found.");
    s3wire_describe(line, sizeof(line), "GET", "b", "k", 0, NULL, -ECONNREFUSED);
    CHECK_EQ_STR(line, "S3 GET b/k failed: no response (Connection refused).");
}

TEST(xml_entities)
{
    const char *x = "<R><Key>a&amp;b&lt;c&gt;&quot;&apos;&#233;&#x41;&bogus;</Key><ETag>&quot;e"
                    "&quot;</ETag></R>";
    char out[64];
    CHECK_EQ_INT(s3wire_xml_text(x, strlen(x), "Key", out, sizeof(out)), 18);
    CHECK_EQ_STR(out, "a&b<c>\"'\xc3\xa9"
                      "A&bogus;");
    CHECK(s3wire_xml_text(x, strlen(x), "ETag", out, sizeof(out)) > 0);
    CHECK_EQ_STR(out, "\"e\"");
    CHECK_EQ_INT(s3wire_xml_text(x, strlen(x), "UploadId", out, sizeof(out)), -ENOENT);
    char small[4];
    CHECK_EQ_INT(s3wire_xml_text(x, strlen(x), "Key", small, sizeof(small)), 3);
    CHECK_EQ_STR(small, "a&b");
    /* unterminated element */
    CHECK_EQ_INT(s3wire_xml_text("<Key>abc", 8, "Key", out, sizeof(out)), -ENOENT);
}

TEST(retry_policy)
{
    CHECK(s3wire_retryable(500, "InternalError", 0));
    CHECK(s3wire_retryable(503, "SlowDown", 0));
    CHECK(s3wire_retryable(503, NULL, 0));
    CHECK(s3wire_retryable(429, NULL, 0));
    CHECK(s3wire_retryable(400, "RequestTimeout", 0));
    CHECK(s3wire_retryable(403, "RequestTimeTooSkewed", 0));
    CHECK(s3wire_retryable(0, NULL, -ECONNRESET));
    CHECK(s3wire_retryable(0, NULL, -ETIMEDOUT));
    CHECK(!s3wire_retryable(0, NULL, -ENOENT));
    CHECK(!s3wire_retryable(403, "SignatureDoesNotMatch", 0));
    CHECK(!s3wire_retryable(404, "NoSuchKey", 0));
    CHECK(!s3wire_retryable(400, NULL, 0));
}

TEST(backoff_bounds)
{
    CHECK_EQ_INT(s3wire_backoff_ms(1, 0), 0);
    CHECK_EQ_INT(s3wire_backoff_ms(1, 100), 100);
    CHECK_EQ_INT(s3wire_backoff_ms(1, 101), 0);
    CHECK_EQ_INT(s3wire_backoff_ms(2, 200), 200);
    CHECK_EQ_INT(s3wire_backoff_ms(3, 400), 400);
    for (int a = 1; a < 40; a++) {
        CHECK(s3wire_backoff_ms(a, 0xFFFFFFFFu) <= S3WIRE_BACKOFF_MAX);
        CHECK(s3wire_backoff_ms(a, 12345) <= S3WIRE_BACKOFF_MAX);
    }
    CHECK_EQ_INT(s3wire_backoff_ms(30, S3WIRE_BACKOFF_MAX), S3WIRE_BACKOFF_MAX);
}

TEST(dates)
{
    int64_t t;
    const char *d = "Sun, 06 Nov 1994 08:49:37 GMT";
    CHECK_EQ_INT(s3wire_parse_http_date(d, strlen(d), &t), 0);
    CHECK_EQ_INT(t, 784111777);
    CHECK_EQ_INT(s3wire_parse_http_date("Sun, 06 Xxx 1994 08:49:37 GMT", 29, &t), -EINVAL);
    CHECK_EQ_INT(s3wire_parse_http_date("Sun, 06 Nov 1994 08:49:37", 25, &t), -EINVAL);
    char iso[32];
    CHECK_EQ_INT(s3wire_iso8601(784111777, iso, sizeof(iso)), 0);
    CHECK_EQ_STR(iso, "1994-11-06T08:49:37Z");
    CHECK_EQ_INT(s3wire_iso8601(951782400, iso, sizeof(iso)), 0);
    CHECK_EQ_STR(iso, "2000-02-29T00:00:00Z");
    CHECK_EQ_INT(s3wire_iso8601(-1, iso, sizeof(iso)), -ERANGE);
    const char *ok[] = {"1994-11-06T08:49:37Z", "1994-11-06T08:49:37.123Z",
                        "1994-11-06T08:49:37+00:00", "1994-11-06T08:49:37.5+00:00"};
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        t = 0;
        CHECK_EQ_INT(s3wire_parse_iso8601(ok[i], strlen(ok[i]), &t), 0);
        CHECK_EQ_INT(t, 784111777);
    }
    const char *bad[] = {"1994-11-06T08:49:37",   "1994-11-06 08:49:37Z",
                         "1994-13-06T08:49:37Z",  "1994-11-06T08:49:37+01:00",
                         "1994-11-06T08:49:37.Z", "1994-11-06T24:49:37Z",
                         "94-11-06T08:49:37Z",    "1994-11-06T08:49:37ZZ"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        CHECK_EQ_INT(s3wire_parse_iso8601(bad[i], strlen(bad[i]), &t), -EINVAL);
}

int main(void)
{
    RUN(error_document);
    RUN(describe_without_body);
    RUN(xml_entities);
    RUN(retry_policy);
    RUN(backoff_bounds);
    RUN(dates);
    return test_summary();
}
