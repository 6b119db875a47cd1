/* proto/http1_response: heads (Content-Length, chunked, keep-alive, partial, bad), chunked bodies
 * fed whole and one byte at a time. */
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
    CHECK_EQ_INT(r.nheaders, 2);
    CHECK_EQ_INT(http1_body_kind(&r, 0), HTTP1_BODY_LENGTH);
    CHECK_EQ_INT(http1_body_kind(&r, 1), HTTP1_BODY_NONE);
    size_t n;
    const char *v = http1_header_get(&r, "etag", &n);
    CHECK(v != NULL && n == 5 && memcmp(v, "\"abc\"", 5) == 0);
    CHECK(http1_header_get(&r, "date", &n) == NULL);
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
    CHECK_EQ_INT(parse("", &r, h, 2), -2);
    CHECK_EQ_INT(parse("HTTP/1.1 200 OK\r\nContent-Le", &r, h, 2), -2);
    CHECK_EQ_INT(parse("HTTP/1.1 200 OK\r\n\r", &r, h, 2), -2);
    CHECK_EQ_INT(parse("HTTP/2 200 OK\r\n\r\n", &r, h, 2), -1);
    CHECK_EQ_INT(parse("HTTP/1.1 2x0 OK\r\n\r\n", &r, h, 2), -1);
    CHECK_EQ_INT(parse("HTTP/1.1 099 OK\r\n\r\n", &r, h, 2), -1);
    CHECK_EQ_INT(parse("HTTP/1.1 200 OK\r\nNo colon\r\n\r\n", &r, h, 2), -1);
    CHECK_EQ_INT(parse("HTTP/1.1 200 OK\r\n: empty\r\n\r\n", &r, h, 2), -1);
    CHECK_EQ_INT(parse("HTTP/1.1 200 OK\r\nContent-Length: 1x\r\n\r\n", &r, h, 2), -1);
    CHECK_EQ_INT(
        parse("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", &r, h, 2), -1);
    CHECK_EQ_INT(parse("HTTP/1.1 200 OK\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n", &r, h, 2), -1);
}

static const char chunked_body[] =
    "5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: y\r\n\r\nNEXT";

TEST(chunked_whole)
{
    char buf[sizeof(chunked_body)];
    memcpy(buf, chunked_body, sizeof(chunked_body));
    size_t len = sizeof(chunked_body) - 1;
    http1_chunked d = {0};
    int left = http1_chunked_decode(&d, buf, &len);
    CHECK_EQ_INT(left, 4);
    CHECK_EQ_INT(len, 11);
    CHECK(memcmp(buf, "hello worldNEXT", 15) == 0);
}

TEST(chunked_byte_by_byte)
{
    http1_chunked d = {0};
    char out[64];
    size_t o = 0;
    int r = -2;
    size_t i;
    for (i = 0; i < sizeof(chunked_body) - 1 && r == -2; i++) {
        char c = chunked_body[i];
        size_t len = 1;
        r = http1_chunked_decode(&d, &c, &len);
        if (len)
            out[o++] = c;
    }
    CHECK_EQ_INT(r, 0);
    CHECK_EQ_INT(o, 11);
    CHECK(memcmp(out, "hello world", 11) == 0);
    CHECK_EQ_INT(sizeof(chunked_body) - 1 - i, 4); /* stopped right after the body */
}

TEST(chunked_bad)
{
    char a[] = "zz\r\n";
    size_t len = 4;
    http1_chunked d = {0};
    CHECK_EQ_INT(http1_chunked_decode(&d, a, &len), -1);
    char b[] = "3\r\nabcX\r\n";
    len = 9;
    http1_chunked e = {0};
    CHECK_EQ_INT(http1_chunked_decode(&e, b, &len), -1);
    char c[] = "ffffffffffffffff1\r\n";
    len = strlen(c);
    http1_chunked f = {0};
    CHECK_EQ_INT(http1_chunked_decode(&f, c, &len), -1);
}

int main(void)
{
    RUN(content_length_keep_alive);
    RUN(connection_close_and_http10);
    RUN(chunked_head);
    RUN(partial_and_bad);
    RUN(chunked_whole);
    RUN(chunked_byte_by_byte);
    RUN(chunked_bad);
    return test_summary();
}
