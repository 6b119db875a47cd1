/* CORS policy: parsing the allowlist, the response lines for allowed and refused origins,
 * "*", request-header lists and preflight answers. */
#include <errno.h>
#include <string.h>

#include "proto/cors.h"
#include "tests/unit/test.h"

static const char *const hdrs[] = {"content-type", "range", NULL};

static int lines(const cors_policy *p, const char *origin, const char *expose, char *out)
{
    return cors_response_lines(p, origin, origin ? strlen(origin) : 0, expose, out, 512);
}

TEST(parse_and_match)
{
    cors_policy p;
    char err[128];
    CHECK_EQ_INT(cors_parse(&p, " https://a.example , http://localhost:3000,,", "ALLOWED_ORIGINS",
                            err, sizeof(err)),
                 0);
    CHECK_EQ_INT(p.n, 2);
    CHECK(cors_allowed(&p, "https://a.example", 17));
    CHECK(cors_allowed(&p, "http://localhost:3000", 21));
    CHECK(!cors_allowed(&p, "https://a.example.evil", 22));
    CHECK(!cors_allowed(&p, "https://a.exampl", 16));
    CHECK(!cors_allowed(&p, NULL, 0));
    CHECK_EQ_INT(cors_parse(&p, "", "X", err, sizeof(err)), 0);
    CHECK(!cors_allowed(&p, "https://a.example", 17));
    CHECK_EQ_INT(cors_parse(&p, "https://a b", "X", err, sizeof(err)), -EINVAL);
    CHECK(strstr(err, "X:") == err);
    char many[2048] = "";
    for (int i = 0; i < CORS_MAX_ORIGINS + 1; i++)
        strcat(many, "https://o.example,");
    CHECK_EQ_INT(cors_parse(&p, many, "X", err, sizeof(err)), -EINVAL);
}

TEST(response_lines)
{
    cors_policy p;
    char err[64], out[512];
    cors_parse(&p, "https://a.example", "X", err, sizeof(err));
    CHECK_EQ_INT(lines(&p, "https://a.example", "ETag", out), (int)strlen(out));
    CHECK_EQ_STR(out, "Access-Control-Allow-Origin: https://a.example\r\nVary: Origin\r\n"
                      "Access-Control-Expose-Headers: ETag\r\n");
    CHECK_EQ_INT(lines(&p, "https://b.example", "ETag", out), 0);
    CHECK_EQ_STR(out, "");
    CHECK_EQ_INT(lines(&p, NULL, NULL, out), 0);
    cors_parse(&p, "*", "X", err, sizeof(err));
    lines(&p, "https://b.example", NULL, out);
    CHECK_EQ_STR(out, "Access-Control-Allow-Origin: *\r\n");
    char tiny[20];
    CHECK_EQ_INT(cors_response_lines(&p, "https://b.example", 17, "ETag", tiny, sizeof(tiny)),
                 -ENOSPC);
    CHECK_EQ_STR(tiny, "");
}

TEST(request_header_lists)
{
    CHECK(cors_headers_allowed("", 0, hdrs));
    CHECK(cors_headers_allowed("content-type", 12, hdrs));
    CHECK(cors_headers_allowed("Range, Content-Type", 19, hdrs));
    CHECK(!cors_headers_allowed("range,x-amz-meta-a", 18, hdrs));
    CHECK(!cors_headers_allowed("content-typ", 11, hdrs));
}

TEST(preflights)
{
    cors_policy p;
    char err[64], out[512];
    cors_parse(&p, "https://a.example", "X", err, sizeof(err));
    const char *o = "https://a.example";
    int n = cors_preflight(&p, o, strlen(o), "PUT", 3, "content-type", 12, "GET, HEAD, PUT", hdrs,
                           out, sizeof(out));
    CHECK(n > 0);
    CHECK_EQ_STR(out, "Access-Control-Allow-Origin: https://a.example\r\nVary: Origin\r\n"
                      "Access-Control-Allow-Methods: GET, HEAD, PUT\r\n"
                      "Access-Control-Allow-Headers: content-type, range\r\n"
                      "Access-Control-Max-Age: 600\r\n");
    CHECK_EQ_INT(cors_preflight(&p, o, strlen(o), "DELETE", 6, NULL, 0, "GET, HEAD, PUT", hdrs, out,
                                sizeof(out)),
                 0);
    CHECK_EQ_INT(cors_preflight(&p, o, strlen(o), "PU", 2, NULL, 0, "GET, HEAD, PUT", hdrs, out,
                                sizeof(out)),
                 0);
    CHECK_EQ_INT(cors_preflight(&p, o, strlen(o), "PUT", 3, "authorization", 13, "PUT", hdrs, out,
                                sizeof(out)),
                 0);
    CHECK_EQ_INT(
        cors_preflight(&p, "https://evil", 12, "PUT", 3, NULL, 0, "PUT", hdrs, out, sizeof(out)),
        0);
    CHECK_EQ_INT(cors_preflight(&p, o, strlen(o), NULL, 0, NULL, 0, "PUT", hdrs, out, sizeof(out)),
                 0);
    CHECK_EQ_INT(cors_preflight(&p, o, strlen(o), "PUT", 3, NULL, 0, "PUT", hdrs, out, 40),
                 -ENOSPC);
}

int main(void)
{
    RUN(parse_and_match);
    RUN(response_lines);
    RUN(request_header_lists);
    RUN(preflights);
    return test_summary();
}
