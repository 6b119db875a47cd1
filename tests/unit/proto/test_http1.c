/* HTTP/1.1 parser: request heads, partial input, limits, framing and the request-smuggling
 * cases a front proxy could read differently, chunked bodies, response heads. */
#include <errno.h>
#include <stdlib.h>

#include "proto/http1.h"
#include "tests/unit/proto/http1_ref.h"
#include "tests/unit/test.h"

static http1_header hdrs[HTTP1_MAX_HEADERS];

static int parse(const char *s, http1_request *req)
{
    return http1_parse_request(s, strlen(s), req, hdrs, HTTP1_MAX_HEADERS);
}

static int str_is(http1_str s, const char *lit)
{
    return s.len == strlen(lit) && memcmp(s.p, lit, s.len) == 0;
}

/* Framing of a complete head; -100 when the head itself does not parse. */
static int framing(const char *s, http1_framing *fr)
{
    http1_request req;
    if (parse(s, &req) <= 0)
        return -100;
    return http1_framing_of(&req, fr);
}

TEST(simple_get)
{
    const char *s = "GET /api/health?x=1 HTTP/1.1\r\nHost: a\r\nX-Long:  v v \r\n\r\nNEXT";
    http1_request req;
    int n = parse(s, &req);
    CHECK_EQ_INT(n, (int)strlen(s) - 4);
    CHECK(str_is(req.method, "GET"));
    CHECK(str_is(req.target, "/api/health?x=1"));
    CHECK(str_is(req.path, "/api/health"));
    CHECK(str_is(req.query, "x=1"));
    CHECK_EQ_INT(req.minor, 1);
    CHECK_EQ_INT(req.num_headers, 2);
    CHECK(str_is(req.headers[1].name, "X-Long"));
    CHECK(str_is(req.headers[1].value, "v v"));
    const http1_header *h = http1_find_header(&req, "x-long");
    CHECK(h != NULL && str_is(h->value, "v v"));
    CHECK(http1_find_header(&req, "absent") == NULL);
}

TEST(every_prefix_is_partial)
{
    /* The second: the empty line a client may send before a request (after a body), cut
     * anywhere, the first cut between its CR and its LF. */
    static const char *const heads[] = {
        "POST /u HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\n",
        "\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
    };
    for (size_t h = 0; h < sizeof(heads) / sizeof(heads[0]); h++) {
        const char *s = heads[h];
        size_t len = strlen(s);
        http1_request req;
        for (size_t i = 0; i < len; i++)
            CHECK_EQ_INT(http1_parse_request(s, i, &req, hdrs, HTTP1_MAX_HEADERS), HTTP1_PARTIAL);
        CHECK_EQ_INT(http1_parse_request(s, len, &req, hdrs, HTTP1_MAX_HEADERS), (int)len);
    }
}

TEST(leading_empty_lines_skipped)
{
    http1_request req;
    const char *s = "\r\n\r\nGET / HTTP/1.0\r\n\r\n";
    CHECK_EQ_INT(parse(s, &req), (int)strlen(s));
    CHECK_EQ_INT(req.minor, 0);
}

TEST(bad_syntax)
{
    static const char *const bad[] = {
        "GET  / HTTP/1.1\r\n\r\n",                 /* two spaces */
        "GET / HTTP/1.1\n\r\n",                    /* bare LF */
        "GET / HTTP/1.1\r\nHost: a\n\r\n",         /* bare LF in a header */
        "GET / HTTP/2.0\r\n\r\n",                  /* not HTTP/1.x */
        "GET / HTTP/1.1 \r\n\r\n",                 /* trailing space */
        "GET http://x/ HTTP/1.1\r\n\r\n",          /* absolute-form */
        "G(T / HTTP/1.1\r\n\r\n",                  /* not a token */
        "GET / HTTP/1.1\r\nHost : a\r\n\r\n",      /* space before colon */
        "GET / HTTP/1.1\r\nHost: a\r\n b\r\n\r\n", /* folded line */
        "GET / HTTP/1.1\r\n: a\r\n\r\n",           /* empty name */
        "GET / HTTP/1.1\r\nX: a\x01b\r\n\r\n",     /* control byte */
        "GET / HTTP/1.1\r\nX: a\rb\r\n\r\n",       /* bare CR */
        "GET /a\x7f HTTP/1.1\r\n\r\n",             /* DEL in target */
    };
    http1_request req;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int r = parse(bad[i], &req);
        if (r != HTTP1_BAD)
            printf("  case %zu: got %d\n", i, r);
        CHECK_EQ_INT(r, HTTP1_BAD);
    }
}

TEST(too_many_headers)
{
    char buf[8192];
    size_t n = (size_t)snprintf(buf, sizeof(buf), "GET / HTTP/1.1\r\n");
    for (int i = 0; i < HTTP1_MAX_HEADERS; i++)
        n += (size_t)snprintf(buf + n, sizeof(buf) - n, "X-%d: v\r\n", i);
    snprintf(buf + n, sizeof(buf) - n, "\r\n");
    http1_request req;
    CHECK(parse(buf, &req) > 0);
    CHECK_EQ_INT(req.num_headers, HTTP1_MAX_HEADERS);
    snprintf(buf + n, sizeof(buf) - n, "One-More: v\r\n\r\n");
    CHECK_EQ_INT(parse(buf, &req), HTTP1_TOO_MANY_HEADERS);
}

/* The one-pass parser against the plain reference (http1_ref.h): every byte value at every
 * place of heads that use each part of the grammar, cut right after that byte and whole. */
TEST(same_answers_as_the_reference)
{
    static const char *const heads[] = {
        "GET /hls/1/ab/asset/v0/index.m3u8?x=1&y HTTP/1.1\r\nHost: a:1\r\nX-Y:  v v \t\r\n\r\n",
        "\r\nPOST /u HTTP/1.0\r\nContent-Length: 3\r\nA:\r\nB:\tq\r\n\r\n",
        "OPTIONS /a?b HTTP/1.1\r\nOrigin: http://x\r\n\r\n",
        /* Targets and values long enough for 16-byte steps: every byte lands in one, in the
         * step's tail and, cut right after it, at the input's end. */
        "GET /hls/1767225600/8f3a1c9e0b2d4f6a8c1e3b5d7f9a0c2e/asset_01H/v0/index.m3u8 HTTP/1.1\r\n"
        "User-Agent: Mozilla/5.0 (X11; Linux x86_64) \x80\xff obs\ttext\r\n\r\n",
    };
    char buf[256];
    long checked = 0, disagree = 0;
    for (size_t h = 0; h < sizeof(heads) / sizeof(heads[0]); h++) {
        size_t len = strlen(heads[h]);
        for (size_t i = 0; i < len; i++) {
            for (int b = 0; b < 256; b++) {
                memcpy(buf, heads[h], len);
                buf[i] = (char)b;
                size_t cuts[] = {i + 1, len};
                for (int k = 0; k < 2; k++) {
                    for (size_t max = 1; max <= HTTP1_MAX_HEADERS; max += HTTP1_MAX_HEADERS - 1) {
                        checked++;
                        if (!http1_ref_agrees(buf, cuts[k], max)) {
                            if (disagree++ < 5)
                                printf("  head %zu, byte %zu = 0x%02x, cut %zu, max %zu\n", h, i, b,
                                       cuts[k], max);
                        }
                    }
                }
            }
        }
    }
    CHECK(checked > 100000);
    CHECK_EQ_INT(disagree, 0);
}

TEST(framing_defaults)
{
    http1_framing fr;
    CHECK_EQ_INT(framing("GET / HTTP/1.1\r\nHost: a\r\n\r\n", &fr), 0);
    CHECK_EQ_INT(fr.content_length, -1);
    CHECK_EQ_INT(fr.chunked, 0);
    CHECK_EQ_INT(fr.keep_alive, 1);
    CHECK_EQ_INT(framing("GET / HTTP/1.0\r\n\r\n", &fr), 0);
    CHECK_EQ_INT(fr.keep_alive, 0);
    CHECK_EQ_INT(framing("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", &fr), 0);
    CHECK_EQ_INT(fr.keep_alive, 1);
    CHECK_EQ_INT(framing("GET / HTTP/1.1\r\nHost: a\r\nConnection: foo, close\r\n\r\n", &fr), 0);
    CHECK_EQ_INT(fr.keep_alive, 0);
    CHECK_EQ_INT(framing("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 12\r\n"
                         "Expect: 100-Continue\r\n\r\n",
                         &fr),
                 0);
    CHECK_EQ_INT(fr.content_length, 12);
    CHECK_EQ_INT(fr.expect_continue, 1);
    CHECK_EQ_INT(framing("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: Chunked\r\n\r\n", &fr),
                 0);
    CHECK_EQ_INT(fr.chunked, 1);
    CHECK_EQ_INT(framing("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n"
                         "Content-Length: 5\r\n\r\n",
                         &fr),
                 0);
    CHECK_EQ_INT(fr.content_length, 5);
    CHECK_EQ_INT(framing("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n\r\n", &fr), 0);
    CHECK_EQ_INT(fr.content_length, 5);
}

TEST(smuggling_refused)
{
    static const char *const bad[] = {
        /* CL.TE and TE.CL */
        "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n",
        /* differing lengths */
        "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nContent-Length: 5\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4, 5\r\n\r\n",
        /* lengths that are not plain decimal */
        "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +4\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x10\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4 4\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: a\r\nContent-Length:\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999\r\n\r\n",
        /* transfer codings we cannot frame, or obfuscated */
        "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, identity\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\n\r\n",
        ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n"
         "Transfer-Encoding: chunked\r\n\r\n"),
        "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
        /* Host missing or repeated on 1.1 */
        "GET / HTTP/1.1\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        http1_framing fr;
        int r = framing(bad[i], &fr);
        if (r != HTTP1_BAD)
            printf("  case %zu: got %d\n", i, r);
        CHECK_EQ_INT(r, HTTP1_BAD);
    }
    /* Whitespace before the colon never reaches the framing check: the head is refused. */
    http1_request req;
    CHECK_EQ_INT(parse("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding : chunked\r\n\r\n", &req),
                 HTTP1_BAD);
}

/* Decodes `in` fed in pieces of `step` bytes; returns the decode result and the output. */
static int decode_steps(const char *in, size_t step, char *out, size_t *out_len, size_t *used)
{
    http1_chunked d;
    memset(&d, 0, sizeof(d));
    size_t len = strlen(in), off = 0, o = 0;
    char *buf = malloc(len + 1);
    memcpy(buf, in, len);
    int r = 0;
    while (off < len) {
        size_t n = len - off < step ? len - off : step;
        size_t consumed, produced;
        r = http1_chunked_decode(&d, buf + off, n, &consumed, out + o, &produced);
        if (r < 0)
            break;
        off += consumed;
        o += produced;
        if (r == 1)
            break;
    }
    free(buf);
    *out_len = o;
    *used = off;
    return r;
}

TEST(chunked_decode)
{
    const char *body = "4\r\nWiki\r\n5;ext=1\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\n"
                       "Trailer: x\r\n\r\nGET /next";
    size_t steps[] = {1, 2, 3, 7, 1000};
    for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
        char out[128];
        size_t n, used;
        int r = decode_steps(body, steps[i], out, &n, &used);
        CHECK_EQ_INT(r, 1);
        CHECK_EQ_INT(n, 23);
        CHECK(n == 23 && memcmp(out, "Wikipedia in\r\n\r\nchunks.", 23) == 0);
        CHECK_EQ_INT(used, strlen(body) - strlen("GET /next"));
    }
    /* In place: the output may overwrite the input. */
    char buf[] = "3\r\nabc\r\n0\r\n\r\n";
    http1_chunked d;
    memset(&d, 0, sizeof(d));
    size_t consumed, produced;
    CHECK_EQ_INT(http1_chunked_decode(&d, buf, strlen(buf), &consumed, buf, &produced), 1);
    CHECK_EQ_INT(produced, 3);
    CHECK(memcmp(buf, "abc", 3) == 0);
}

TEST(chunked_bad)
{
    static const char *const bad[] = {
        "x\r\n",                   /* not hex */
        "\r\n",                    /* empty size */
        " 4\r\nWiki\r\n",          /* leading space */
        "4 \r\nWiki\r\n",          /* trailing space */
        "-4\r\n",                  /* sign */
        "0x4\r\nWiki\r\n",         /* prefix */
        "4\nWiki\r\n",             /* bare LF */
        "4\r\nWikiX\r\n",          /* data longer than its size */
        "1000000000000000\r\n",    /* 16 hex digits: too large */
        "0\r\nTrailer\nx\r\n\r\n", /* bare LF in a trailer */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char out[64];
        size_t n, used;
        int r = decode_steps(bad[i], 1000, out, &n, &used);
        if (r != HTTP1_BAD)
            printf("  case %zu: got %d\n", i, r);
        CHECK_EQ_INT(r, HTTP1_BAD);
    }
    /* Incomplete is not bad. */
    char out[64];
    size_t n, used;
    CHECK_EQ_INT(decode_steps("4\r\nWi", 1000, out, &n, &used), 0);
}

TEST(response_head)
{
    char out[512], date[30];
    http1_date(784111777, date);
    CHECK_EQ_STR(date, "Sun, 06 Nov 1994 08:49:37 GMT");
    int n = http1_write_head(out, sizeof(out), 404, date, "reeld", "application/json", 12, 0,
                             "Allow: GET\r\n");
    CHECK(n > 0);
    out[n > 0 ? n : 0] = 0;
    CHECK_EQ_STR(out, "HTTP/1.1 404 Not Found\r\nDate: Sun, 06 Nov 1994 08:49:37 GMT\r\n"
                      "Server: reeld\r\nContent-Type: application/json\r\nContent-Length: 12\r\n"
                      "Connection: close\r\nAllow: GET\r\n\r\n");
    n = http1_write_head(out, sizeof(out), 200, date, "reeld", NULL, -1, 1, NULL);
    out[n > 0 ? n : 0] = 0;
    CHECK_EQ_STR(out, "HTTP/1.1 200 OK\r\nDate: Sun, 06 Nov 1994 08:49:37 GMT\r\n"
                      "Server: reeld\r\nTransfer-Encoding: chunked\r\n\r\n");
    CHECK_EQ_INT(http1_write_head(out, 20, 200, date, "reeld", NULL, 0, 1, NULL), -ENOSPC);
}

TEST(error_json)
{
    char out[128];
    int n = http1_write_error_json(out, sizeof(out), "bad", "a \"quoted\"\\ line\n");
    CHECK(n > 0);
    out[n > 0 ? n : 0] = 0;
    CHECK_EQ_STR(out,
                 "{\"error\":{\"code\":\"bad\",\"message\":\"a \\\"quoted\\\"\\\\ line\\u000a\"}}");
    CHECK_EQ_INT(http1_write_error_json(out, 10, "bad", "x"), -ENOSPC);
}

TEST(query_params)
{
    http1_str q = {"cursor=abc&limit=5&flag&limits=9&empty=", 38};
    http1_str v = http1_query_param(q, "cursor");
    CHECK(v.p != NULL && v.len == 3 && memcmp(v.p, "abc", 3) == 0);
    v = http1_query_param(q, "limit");
    CHECK(v.p != NULL && v.len == 1 && v.p[0] == '5');
    v = http1_query_param(q, "flag");
    CHECK(v.p != NULL && v.len == 0);
    v = http1_query_param(q, "empty");
    CHECK(v.p != NULL && v.len == 0);
    CHECK(http1_query_param(q, "lim").p == NULL);
    CHECK(http1_query_param(q, "state").p == NULL);
    CHECK(http1_query_param((http1_str){"", 0}, "a").p == NULL);
}

int main(void)
{
    RUN(simple_get);
    RUN(every_prefix_is_partial);
    RUN(leading_empty_lines_skipped);
    RUN(bad_syntax);
    RUN(too_many_headers);
    RUN(same_answers_as_the_reference);
    RUN(framing_defaults);
    RUN(smuggling_refused);
    RUN(chunked_decode);
    RUN(chunked_bad);
    RUN(response_head);
    RUN(error_json);
    RUN(query_params);
    return test_summary();
}
