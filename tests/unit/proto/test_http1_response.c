/* proto/http1_response: heads (Content-Length, chunked, keep-alive, partial, bad). Chunked bodies
 * are proto/http1's decoder, tested there and, over a socket, in tests/unit/net. */
#include "proto/http1_response.h"
#include "tests/unit/test.h"

static int parse(const char *s, http1_response *r, http1_header *h, size_t cap)
{
    return http1_parse_response(s, strlen(s), r, h, cap);
}

TEST(content_length_keep_alive)
{
    const char *s = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nETag: \"abc\"  \r\n\r\nhello";
    http1_header h[8];
    http1_response r;
    CHECK_EQ_INT(parse(s, &r, h, 8), (int)strlen(s) - 5);
    CHECK_EQ_INT(r.status, 200);
    CHECK_EQ_INT(r.minor, 1);
    CHECK_EQ_INT(r.content_length, 5);
    CHECK_EQ_INT(r.keep_alive, 1);
    CHECK_EQ_INT(r.num_headers, 2);
    CHECK_EQ_INT(http1_body_kind(&r, 0), HTTP1_BODY_LENGTH);
    CHECK_EQ_INT(http1_body_kind(&r, 1), HTTP1_BODY_NONE);
    size_t n;
    const char *v = http1_response_header(&r, "etag", &n);
    CHECK(v != NULL && n == 5 && memcmp(v, "\"abc\"", 5) == 0);
    CHECK(http1_response_header(&r, "date", &n) == NULL);
}

TEST(connection_close_and_http10)
{
    http1_header h[8];
    http1_response r;
    CHECK(parse("HTTP/1.1 503 Slow Down\r\nConnection: close\r\n\r\n", &r, h, 8) > 0);
    CHECK_EQ_INT(r.status, 503);
    CHECK_EQ_INT(r.keep_alive, 0);
    CHECK_EQ_INT(http1_body_kind(&r, 0), HTTP1_BODY_CLOSE);
    CHECK(parse("HTTP/1.0 200 ok\n\n", &r, h, 8) > 0);
    CHECK_EQ_INT(r.keep_alive, 0);
    CHECK(parse("HTTP/1.0 200 ok\r\nConnection: Keep-Alive\r\nContent-Length: 0\r\n\r\n", &r, h,
                8) > 0);
    CHECK_EQ_INT(r.keep_alive, 1);
    CHECK(parse("HTTP/1.1 204 No Content\r\n\r\n", &r, h, 8) > 0);
    CHECK_EQ_INT(http1_body_kind(&r, 0), HTTP1_BODY_NONE);
}

TEST(chunked_head)
{
    http1_header h[8];
    http1_response r;
    CHECK(parse("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, Chunked\r\nContent-Length: 3\r\n\r\n",
                &r, h, 8) > 0);
    CHECK_EQ_INT(r.chunked, 1);
    CHECK_EQ_INT(http1_body_kind(&r, 0), HTTP1_BODY_CHUNKED);
}

TEST(partial_and_bad)
{
    http1_header h[2];
    http1_response r;
    CHECK_EQ_INT(parse("", &r, h, 2), HTTP1_PARTIAL);
    CHECK_EQ_INT(parse("HTTP/1.1 200 OK\r\nContent-Le", &r, h, 2), HTTP1_PARTIAL);
    CHECK_EQ_INT(parse("HTTP/1.1 200 OK\r\n\r", &r, h, 2), HTTP1_PARTIAL);
    CHECK_EQ_INT(parse("HTTP/2 200 OK\r\n\r\n", &r, h, 2), HTTP1_BAD);
    CHECK_EQ_INT(parse("HTTP/1.1 2x0 OK\r\n\r\n", &r, h, 2), HTTP1_BAD);
    CHECK_EQ_INT(parse("HTTP/1.1 099 OK\r\n\r\n", &r, h, 2), HTTP1_BAD);
    CHECK_EQ_INT(parse("HTTP/1.1 200 OK\r\nNo colon\r\n\r\n", &r, h, 2), HTTP1_BAD);
    CHECK_EQ_INT(parse("HTTP/1.1 200 OK\r\n: empty\r\n\r\n", &r, h, 2), HTTP1_BAD);
    CHECK_EQ_INT(parse("HTTP/1.1 200 OK\r\nContent-Length: 1x\r\n\r\n", &r, h, 2), HTTP1_BAD);
    CHECK_EQ_INT(
        parse("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", &r, h, 2),
        HTTP1_BAD);
    CHECK_EQ_INT(parse("HTTP/1.1 200 OK\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n", &r, h, 2),
                 HTTP1_TOO_MANY_HEADERS);
}

int main(void)
{
    RUN(content_length_keep_alive);
    RUN(connection_close_and_http10);
    RUN(chunked_head);
    RUN(partial_and_bad);
    return test_summary();
}
