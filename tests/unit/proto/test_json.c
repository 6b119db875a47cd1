/* proto/json: tokens of valid documents, refusal of invalid ones, string decoding, integers,
 * and the writer's commas, escapes and overflow. */
#include <errno.h>

#include "proto/json.h"
#include "tests/unit/test.h"

static int parse(const char *s, json_tok *t, size_t n)
{
    return json_parse(s, strlen(s), t, n);
}

TEST(object_members)
{
    static const char doc[] =
        " {\"filename\":\"a.mp4\",\"size\":1048576,\"parts\":[{\"n\":1,\"etag\":\"\\\"x\\\"\"},"
        "{\"n\":2}],\"ok\":true,\"none\":null} ";
    json_tok t[32];
    int n = parse(doc, t, 32);
    CHECK(n > 0);
    CHECK_EQ_INT(t[0].type, JSON_OBJECT);
    CHECK_EQ_INT(t[0].size, 5);
    CHECK_EQ_INT(t[0].end, n);
    char buf[64];
    int i = json_get(doc, t, 0, "filename");
    CHECK_EQ_INT(json_string(doc, &t[i], buf, sizeof(buf)), 5);
    CHECK_EQ_STR(buf, "a.mp4");
    int64_t v = 0;
    CHECK_EQ_INT(json_int(doc, &t[json_get(doc, t, 0, "size")], &v), 0);
    CHECK_EQ_INT(v, 1048576);
    int parts = json_get(doc, t, 0, "parts");
    CHECK_EQ_INT(t[parts].type, JSON_ARRAY);
    CHECK_EQ_INT(t[parts].size, 2);
    int p1 = json_item(t, parts, 1);
    CHECK_EQ_INT(json_int(doc, &t[json_get(doc, t, p1, "n")], &v), 0);
    CHECK_EQ_INT(v, 2);
    int p0 = json_item(t, parts, 0);
    CHECK_EQ_INT(json_string(doc, &t[json_get(doc, t, p0, "etag")], buf, sizeof(buf)), 3);
    CHECK_EQ_STR(buf, "\"x\"");
    CHECK_EQ_INT(t[json_get(doc, t, 0, "ok")].type, JSON_TRUE);
    CHECK_EQ_INT(t[json_get(doc, t, 0, "none")].type, JSON_NULL);
    CHECK_EQ_INT(json_get(doc, t, 0, "missing"), -1);
    CHECK_EQ_INT(json_item(t, parts, 2), -1);
    CHECK_EQ_INT(json_get(doc, t, parts, "n"), -1);
}

TEST(refuses_what_rfc8259_does)
{
    static const char *const bad[] = {
        "",       "{",         "{\"a\":}",    "{\"a\":1,}",  "[1,]",    "[01]",
        "[1.]",   "[.5]",      "[1e]",        "[-]",         "{'a':1}", "{a:1}",
        "\"\t\"", "\"\\x\"",   "\"\\ud800\"", "\"\\udc00\"", "[1] [2]", "nul",
        "[true,", "{\"a\" 1}", "\"abc",       "/* c */ 1",   "[+1]",    "{\"a\":1 \"b\":2}",
    };
    json_tok t[16];
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int r = parse(bad[i], t, 16);
        if (r != -EINVAL)
            printf("  accepted or wrong error (%d) for: %s\n", r, bad[i]);
        CHECK_EQ_INT(r, -EINVAL);
    }
}

TEST(bounds)
{
    json_tok t[4];
    CHECK_EQ_INT(parse("[1,2,3,4]", t, 4), -ENOSPC);
    CHECK_EQ_INT(parse("[1,2,3]", t, 4), 4);
    char deep[2 * JSON_MAX_DEPTH + 8];
    size_t n = 0;
    for (int i = 0; i < JSON_MAX_DEPTH + 1; i++)
        deep[n++] = '[';
    for (int i = 0; i < JSON_MAX_DEPTH + 1; i++)
        deep[n++] = ']';
    json_tok many[64];
    CHECK_EQ_INT(json_parse(deep, n, many, 64), -E2BIG);
    CHECK_EQ_INT(json_parse(deep + 1, n - 2, many, 64), JSON_MAX_DEPTH);
}

TEST(strings_decode)
{
    static const char doc[] = "[\"caf\\u00e9 \\ud83c\\udfac\\n\\/\", \"\\u0000\", \"long enough\"]";
    json_tok t[8];
    CHECK_EQ_INT(parse(doc, t, 8), 4);
    char buf[32];
    CHECK_EQ_INT(json_string(doc, &t[1], buf, sizeof(buf)), 12);
    CHECK_EQ_STR(buf, "caf\xc3\xa9 \xf0\x9f\x8e\xac\n/");
    CHECK_EQ_INT(json_string(doc, &t[2], buf, sizeof(buf)), -EINVAL);
    char small[4];
    CHECK_EQ_INT(json_string(doc, &t[3], small, sizeof(small)), -ENOSPC);
    CHECK_EQ_INT(json_string(doc, &t[0], buf, sizeof(buf)), -EINVAL);
}

TEST(integers)
{
    static const char doc[] = "[9223372036854775807,-9223372036854775808,9223372036854775808,1.5,"
                              "1e3,-0]";
    json_tok t[8];
    CHECK_EQ_INT(parse(doc, t, 8), 7);
    int64_t v;
    CHECK_EQ_INT(json_int(doc, &t[1], &v), 0);
    CHECK(v == INT64_MAX);
    CHECK_EQ_INT(json_int(doc, &t[2], &v), 0);
    CHECK(v == INT64_MIN);
    CHECK_EQ_INT(json_int(doc, &t[3], &v), -EINVAL);
    CHECK_EQ_INT(json_int(doc, &t[4], &v), -EINVAL);
    CHECK_EQ_INT(json_int(doc, &t[5], &v), -EINVAL);
    CHECK_EQ_INT(json_int(doc, &t[6], &v), 0);
    CHECK_EQ_INT(v, 0);
}

TEST(writer)
{
    char buf[256];
    json_writer w;
    json_writer_init(&w, buf, sizeof(buf));
    json_object_begin(&w);
    json_key(&w, "asset_id");
    json_str(&w, "a\"b\\c\n\x01");
    json_key(&w, "parts");
    json_array_begin(&w);
    for (int i = 1; i <= 2; i++) {
        json_object_begin(&w);
        json_key(&w, "n");
        json_int64(&w, i);
        json_object_end(&w);
    }
    json_array_end(&w);
    json_key(&w, "ok");
    json_bool(&w, 1);
    json_key(&w, "empty");
    json_array_begin(&w);
    json_array_end(&w);
    json_object_end(&w);
    CHECK(json_writer_finish(&w) > 0);
    CHECK_EQ_STR(buf, "{\"asset_id\":\"a\\\"b\\\\c\\u000a\\u0001\",\"parts\":[{\"n\":1},{\"n\":2}],"
                      "\"ok\":true,\"empty\":[]}");
    json_tok t[16];
    CHECK(parse(buf, t, 16) > 0);

    char tiny[8];
    json_writer_init(&w, tiny, sizeof(tiny));
    json_object_begin(&w);
    json_key(&w, "overflowing");
    json_object_end(&w);
    CHECK_EQ_INT(json_writer_finish(&w), -ENOSPC);
    CHECK(strlen(tiny) < sizeof(tiny));
}

int main(void)
{
    RUN(object_members);
    RUN(refuses_what_rfc8259_does);
    RUN(bounds);
    RUN(strings_decode);
    RUN(integers);
    RUN(writer);
    return test_summary();
}
