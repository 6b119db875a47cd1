/* proto/sigv4 against published vectors:
 *  - the Amazon S3 API reference examples (sigv4-query-string-auth, sig-v4-header-based-auth):
 *    presigned GET of examplebucket/test.txt and GET Object with Range: bytes=0-9;
 *  - awslabs/aws-c-auth tests/aws-signing-test-suite/v4 (credentials AKIDEXAMPLE, region
 *    us-east-1, service "service", 2015-08-30T12:36:00Z, expiry 3600 s), the cases that apply
 *    to S3-style signing: no path normalization, single encoding. Signatures come from each
 *    case's header-signed-request.txt and query-signed-request.txt; the canonical requests and
 *    strings to sign from query-canonical-request.txt / query-string-to-sign.txt (a version of
 *    the suite that left X-Amz-Expires out of them, which the intermediate functions can
 *    still be checked against);
 * then the verifier of the embedded blob server, one test per way a URL can go bad. */
#include <errno.h>

#include "proto/sigv4.h"
#include "tests/unit/test.h"

static const sigv4_credentials doc_cred = {
    "AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "us-east-1", "s3"};
static const sigv4_credentials suite_cred = {
    "AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "us-east-1", "service"};
#define SUITE_DATE "20150830T123600Z"

static int64_t at(const char *amz_date)
{
    int64_t t = -1;
    CHECK_EQ_INT(sigv4_parse_date(amz_date, strlen(amz_date), &t), 0);
    return t;
}

/* ---- Amazon S3 documentation ---------------------------------------------------------- */

TEST(s3_doc_presigned_get)
{
    static const char want_canonical[] =
        "GET\n/test.txt\n"
        "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-"
        "east-1%2Fs3%2Faws4_request&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-"
        "SignedHeaders=host\n"
        "host:examplebucket.s3.amazonaws.com\n\nhost\nUNSIGNED-PAYLOAD";
    static const char want_url[] =
        "/test.txt?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F"
        "20130524%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&"
        "X-Amz-SignedHeaders=host&X-Amz-Signature="
        "aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404";
    sigv4_pair host = {"Host", "examplebucket.s3.amazonaws.com"};
    sigv4_pair auth[] = {
        {"X-Amz-Algorithm", SIGV4_ALGORITHM},
        {"X-Amz-Credential", "AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request"},
        {"X-Amz-Date", "20130524T000000Z"},
        {"X-Amz-Expires", "86400"},
        {"X-Amz-SignedHeaders", "host"}};
    sigv4_request creq = {"GET", "/test.txt", auth, 5, &host, 1, SIGV4_UNSIGNED_PAYLOAD};
    char canonical[1024], url[1024];
    CHECK_EQ_INT(sigv4_canonical_request(canonical, sizeof(canonical), &creq),
                 (int)strlen(want_canonical));
    CHECK_EQ_STR(canonical, want_canonical);

    sigv4_key_cache cache = {0};
    sigv4_request req = {"GET", "/test.txt", NULL, 0, &host, 1, NULL};
    int n = sigv4_presign(&cache, &doc_cred, at("20130524T000000Z"), 86400, &req, url, sizeof(url));
    CHECK_EQ_INT(n, (int)strlen(want_url));
    CHECK_EQ_STR(url, want_url);
    /* Same day: the cached key must give the same answer. */
    n = sigv4_presign(&cache, &doc_cred, at("20130524T000000Z"), 86400, &req, url, sizeof(url));
    CHECK_EQ_STR(url, want_url);
    sigv4_key_cache_clear(&cache);
}

TEST(s3_doc_get_object_header)
{
    static const char want[] =
        "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
        "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, "
        "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41";
    sigv4_key_cache cache = {0};
    sigv4_pair range = {"Range", "bytes=0-9"};
    sigv4_request req = {"GET", "/test.txt", NULL, 0, NULL, 0, SIGV4_EMPTY_SHA256};
    sigv4_signed out;
    CHECK_EQ_INT(sigv4_sign_headers(&cache, &doc_cred, at("20130524T000000Z"),
                                    "examplebucket.s3.amazonaws.com", &req, &range, 1, &out),
                 0);
    CHECK_EQ_STR(out.amz_date, "20130524T000000Z");
    CHECK_EQ_STR(out.content_sha256, SIGV4_EMPTY_SHA256);
    CHECK_EQ_STR(out.authorization, want);
    sigv4_key_cache_clear(&cache);
}

/* ---- aws-c-auth signing test suite ---------------------------------------------------- */

typedef struct suite_case {
    const char *name;
    const char *method;
    const char *path; /* raw; where the suite's request line is percent-encoded it is decoded */
    sigv4_pair query[4];
    size_t nquery;
    sigv4_pair headers[4]; /* besides Host (and X-Amz-Date for header signing) */
    size_t nheaders;
    const char *header_signature; /* header-signed-request.txt */
    const char *query_signature;  /* query-signed-request.txt; NULL when the suite has none */
} suite_case;

#define UNRESERVED "-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

static const suite_case suite[] = {
    {"get-utf8",
     "GET",
     "/\xe1\x88\xb4",
     {{0}},
     0,
     {{0}},
     0,
     "8318018e0b0f223aa2bbf98705b62bb787dc9c0e678f255a891fd03141be5d85",
     "10eae3f14a260bd3911cc6d008d3c576d143b05b62f09782a7a4b37f52178e44"},
    {"get-vanilla-query-order-key-case",
     "GET",
     "/",
     {{"Param2", "value2"}, {"Param1", "value1"}},
     2,
     {{0}},
     0,
     "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500",
     "86012e2c9ad4d77369f5d81c11f75158aae4f895a085212cc6d3f923d300bed5"},
    {"get-vanilla-query-order-encoded",
     "GET",
     "/",
     {{"Param-3", "Value3"}, {"Param", "Value2"}, {"\xe1\x88\xb4", "Value1"}},
     3,
     {{0}},
     0,
     "371d3713e185cc334048618a97f809c9ffe339c62934c032af5a0e595648fcac",
     "c5f1848ceec943ac2ca68ee720460c23aaae30a2300586597ada94c4a65e4787"},
    {"get-vanilla-query-unreserved",
     "GET",
     "/",
     {{UNRESERVED, UNRESERVED}},
     1,
     {{0}},
     0,
     "9c3e54bfcdf0b19771a7f523ee5669cdf59bc7cc0884027167c21bb143a40197",
     "8e76a88a7433637b12778d5592799b29ad21ecd6cf6325051c21d86f0acda2bf"},
    {"get-vanilla-utf8-query",
     "GET",
     "/",
     {{"\xe1\x88\xb4", "bar"}},
     1,
     {{0}},
     0,
     "2cdec8eed098649ff3a119c94853b13c643bcf08f8b0a1d91e12c9027818dd04",
     "0bdd809b1519ac4f0c1dc3540e2cc46bd0c7f778eda408b2ebf3b913d21ff600"},
    {"get-vanilla-empty-query-key",
     "GET",
     "/",
     {{"Param1", "value1"}},
     1,
     {{0}},
     0,
     "a67d582fa61cc504c4bae71f336f98b97f1ea3c7a6bfe1b6e45aec72011b9aeb",
     "49096700cbbaa5753443850f40df10f904fc2fdb544dc9512203cc77c471a9de"},
    {"get-unreserved",
     "GET",
     "/" UNRESERVED,
     {{0}},
     0,
     {{0}},
     0,
     "07ef7494c76fa4850883e2b006601f940f8a34d404d0cfa977f52a65bbf5f24f",
     "95968482db1b9e0fadef6efc1bd24689f77c77d9ef56919c96a28cc92e0d6005"},
    {"get-header-value-trim",
     "GET",
     "/",
     {{0}},
     0,
     {{"My-Header1", " value1"}, {"My-Header2", " \"a   b   c\""}},
     2,
     "acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736",
     "e7bb0fd515e125e1aec2ecc4c0c17484fb06f6846b927c35e46005dd3df3acd4"},
    {"get-header-key-duplicate",
     "GET",
     "/",
     {{0}},
     0,
     {{"My-Header1", "value2"}, {"My-Header1", "value2"}, {"My-Header1", "value1"}},
     3,
     "c9d5ea9f3f72853aea855b47ea873832890dbdd183b4468f858259531a5138ea",
     NULL},
    {"get-header-value-order",
     "GET",
     "/",
     {{0}},
     0,
     {{"My-Header1", "value4"},
      {"My-Header1", "value1"},
      {"My-Header1", "value3"},
      {"My-Header1", "value2"}},
     4,
     "08c7e5a9acfcfeb3ab6b2185e75ce8b1deb5e634ec47601a50643f830c755c01",
     NULL},
    {"get-space-unnormalized",
     "GET",
     "/example space/",
     {{0}},
     0,
     {{0}},
     0,
     "652487583200325589f1fba4c7e578f72c47cb61beeca81406b39ddec1366741",
     NULL},
    {"get-slash-unnormalized",
     "GET",
     "//",
     {{0}},
     0,
     {{0}},
     0,
     "c88bcd3d312d75078c0cd961d6deae3f4c754924b01669efcfcb439fd5e5b76e",
     "b2a9542809db687769200f56a844a03f2bd0291d6eb90232d5101c6a579446cd"},
    {"get-slashes-unnormalized",
     "GET",
     "//example//",
     {{0}},
     0,
     {{0}},
     0,
     "87cca117541a147f6df867677d98a7d80dff226d2bfca9e4ffa899665623c7e5",
     "822a5a9ba28072c5ab2bb4a6307d0c88276d40e49fec6b724c03fb4d4ba60fc2"},
    {"get-slash-dot-slash-unnormalized",
     "GET",
     "/./",
     {{0}},
     0,
     {{0}},
     0,
     "68714168e6557f8f2de0ef956fc24dc2593a4bd2961f8df51898d8a134695145",
     "a9b13e8f3484d9505bf1a6f347219f8f35b0fe8f128ceea597efc146a3dfe90c"},
    {"get-relative-unnormalized",
     "GET",
     "/example/..",
     {{0}},
     0,
     {{0}},
     0,
     "eca7ead57bb5aa5c8e28007acd4ff04e1ff9a0ff3b237ec1554a184887ff9282",
     NULL},
};

/* The signature at the end of `s` (after the last "Signature="). */
static const char *signature_of(const char *s)
{
    const char *p = strstr(s, "Signature="), *next;
    while (p && (next = strstr(p + 1, "Signature=")) != NULL)
        p = next;
    return p ? p + strlen("Signature=") : "";
}

TEST(suite_header_signing)
{
    sigv4_key_cache cache = {0};
    for (size_t i = 0; i < sizeof(suite) / sizeof(suite[0]); i++) {
        const suite_case *c = &suite[i];
        sigv4_pair h[8] = {{"Host", "example.amazonaws.com"}};
        size_t n = 1;
        for (size_t k = 0; k < c->nheaders; k++)
            h[n++] = c->headers[k];
        h[n++] = (sigv4_pair){"X-Amz-Date", SUITE_DATE};
        sigv4_request req = {c->method, c->path, c->query, c->nquery, h, n, SIGV4_EMPTY_SHA256};
        char auth[512];
        int r = sigv4_authorization(&cache, &suite_cred, SUITE_DATE, &req, auth, sizeof(auth));
        CHECK(r > 0);
        if (strcmp(signature_of(auth), c->header_signature) != 0)
            printf("  case %s\n", c->name);
        CHECK_EQ_STR(signature_of(auth), c->header_signature);
        CHECK(strstr(auth, "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/"
                           "aws4_request, SignedHeaders=host;") == auth);
    }
    sigv4_key_cache_clear(&cache);
}

TEST(suite_query_signing)
{
    sigv4_key_cache cache = {0};
    for (size_t i = 0; i < sizeof(suite) / sizeof(suite[0]); i++) {
        const suite_case *c = &suite[i];
        if (c->query_signature == NULL)
            continue;
        sigv4_pair h[8] = {{"Host", "example.amazonaws.com"}};
        size_t n = 1;
        for (size_t k = 0; k < c->nheaders; k++)
            h[n++] = c->headers[k];
        sigv4_request req = {c->method, c->path, c->query, c->nquery, h, n, SIGV4_EMPTY_SHA256};
        char url[2048];
        int r = sigv4_presign(&cache, &suite_cred, at(SUITE_DATE), 3600, &req, url, sizeof(url));
        CHECK(r > 0);
        if (strcmp(signature_of(url), c->query_signature) != 0)
            printf("  case %s: %s\n", c->name, url);
        CHECK_EQ_STR(signature_of(url), c->query_signature);
    }
    sigv4_key_cache_clear(&cache);
}

/* The intermediate steps against the suite's own canonical requests and strings to sign. */
TEST(suite_canonical_and_string_to_sign)
{
    static const struct {
        const char *path;
        sigv4_pair query[6];
        size_t nquery;
        sigv4_pair headers[3];
        size_t nheaders;
        const char *canonical, *string_to_sign;
    } cases[] = {
        {"/\xe1\x88\xb4",
         {{"X-Amz-Algorithm", "AWS4-HMAC-SHA256"},
          {"X-Amz-Credential", "AKIDEXAMPLE/20150830/us-east-1/service/aws4_request"},
          {"X-Amz-Date", SUITE_DATE},
          {"X-Amz-SignedHeaders", "host"}},
         4,
         {{"Host", "example.amazonaws.com"}},
         1,
         "GET\n/"
         "%E1%88%B4\nX-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIDEXAMPLE%2F20150830%"
         "2Fus-east-1%2Fservice%2Faws4_request&X-Amz-Date=20150830T123600Z&X-Amz-SignedHeaders="
         "host\nhost:example.amazonaws.com\n\nhost\n"
         "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
         "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\n"
         "4148d48eedde44fc6b52c92dcab505640ab9350b6ac42891703d9e3575b770ab"},
        {"/",
         {{"Param2", "value2"},
          {"Param1", "value1"},
          {"X-Amz-Algorithm", "AWS4-HMAC-SHA256"},
          {"X-Amz-Credential", "AKIDEXAMPLE/20150830/us-east-1/service/aws4_request"},
          {"X-Amz-Date", SUITE_DATE},
          {"X-Amz-SignedHeaders", "host"}},
         6,
         {{"Host", "example.amazonaws.com"}},
         1,
         "GET\n/\nParam1=value1&Param2=value2&X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential="
         "AKIDEXAMPLE%2F20150830%2Fus-east-1%2Fservice%2Faws4_request&X-Amz-Date=20150830T123600Z&"
         "X-Amz-SignedHeaders=host\nhost:example.amazonaws.com\n\nhost\n"
         "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
         "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\n"
         "eb1512f5ed1470925b7b1072c2108953680032d6bc3ccbef8eb7c6fdf1639827"},
        {"/",
         {{"X-Amz-Algorithm", "AWS4-HMAC-SHA256"},
          {"X-Amz-Credential", "AKIDEXAMPLE/20150830/us-east-1/service/aws4_request"},
          {"X-Amz-Date", SUITE_DATE},
          {"X-Amz-SignedHeaders", "host;my-header1;my-header2"}},
         4,
         {{"Host", "example.amazonaws.com"},
          {"My-Header1", " value1"},
          {"My-Header2", " \"a   b   c\""}},
         3,
         "GET\n/\nX-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIDEXAMPLE%2F20150830%2Fus-"
         "east-1%2Fservice%2Faws4_request&X-Amz-Date=20150830T123600Z&X-Amz-SignedHeaders=host%"
         "3Bmy-header1%3Bmy-header2\nhost:example.amazonaws.com\nmy-header1:value1\nmy-header2:"
         "\"a b c\"\n\nhost;my-header1;my-header2\n"
         "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
         "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\n"
         "79b6cafb02b93e8b4cfc53cbf6dcf562477c321fe4af691f077f9213ad23876e"},
        {"//",
         {{"X-Amz-Algorithm", "AWS4-HMAC-SHA256"},
          {"X-Amz-Credential", "AKIDEXAMPLE/20150830/us-east-1/service/aws4_request"},
          {"X-Amz-Date", SUITE_DATE},
          {"X-Amz-SignedHeaders", "host"}},
         4,
         {{"Host", "example.amazonaws.com"}},
         1,
         "GET\n//\nX-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIDEXAMPLE%2F20150830%2Fus-"
         "east-1%2Fservice%2Faws4_request&X-Amz-Date=20150830T123600Z&X-Amz-SignedHeaders=host\n"
         "host:example.amazonaws.com\n\nhost\n"
         "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
         NULL},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        sigv4_request req = {"GET",
                             cases[i].path,
                             cases[i].query,
                             cases[i].nquery,
                             cases[i].headers,
                             cases[i].nheaders,
                             SIGV4_EMPTY_SHA256};
        char canonical[1024], scope[128], sts[512];
        int n = sigv4_canonical_request(canonical, sizeof(canonical), &req);
        CHECK_EQ_INT(n, (int)strlen(cases[i].canonical));
        CHECK_EQ_STR(canonical, cases[i].canonical);
        if (cases[i].string_to_sign == NULL || n < 0)
            continue;
        CHECK(sigv4_scope(scope, sizeof(scope), SUITE_DATE, &suite_cred) > 0);
        CHECK(sigv4_string_to_sign(sts, sizeof(sts), SUITE_DATE, scope, canonical, (size_t)n) > 0);
        CHECK_EQ_STR(sts, cases[i].string_to_sign);
    }
}

/* ---- building blocks ------------------------------------------------------------------ */

TEST(uri_encoding)
{
    char out[128];
    const char key[] = "videos/a b+c$d~e_f.g-h!*'()@=&?#%/\xc3\xbc.mp4";
    CHECK(sigv4_uri_encode(out, sizeof(out), key, strlen(key), 1) > 0);
    CHECK_EQ_STR(out, "videos/a%20b%2Bc%24d~e_f.g-h%21%2A%27%28%29%40%3D%26%3F%23%25/%C3%BC.mp4");
    CHECK(sigv4_uri_encode(out, sizeof(out), "a/b", 3, 0) > 0);
    CHECK_EQ_STR(out, "a%2Fb");
    CHECK_EQ_INT(sigv4_uri_encode(out, 4, "a b", 3, 0), -ENOSPC); /* "a%20b" needs 6 */
    CHECK_EQ_INT(sigv4_uri_encode(out, 6, "a b", 3, 0), 5);
}

TEST(dates)
{
    char s[SIGV4_DATE_LEN + 1];
    int64_t t;
    CHECK_EQ_INT(sigv4_format_date(0, s), 0);
    CHECK_EQ_STR(s, "19700101T000000Z");
    CHECK_EQ_INT(sigv4_format_date(1369353600, s), 0); /* 2013-05-24 */
    CHECK_EQ_STR(s, "20130524T000000Z");
    CHECK_EQ_INT(sigv4_format_date(951868799, s), 0); /* the last second of 2000-02-29 */
    CHECK_EQ_STR(s, "20000229T235959Z");
    CHECK_EQ_INT(sigv4_format_date(-1, s), -ERANGE);
    CHECK_EQ_INT(sigv4_parse_date("20000229T235959Z", 16, &t), 0);
    CHECK_EQ_INT(t, 951868799);
    CHECK_EQ_INT(sigv4_parse_date("20150830T123600Z", 16, &t), 0);
    CHECK_EQ_INT(sigv4_format_date(t, s), 0);
    CHECK_EQ_STR(s, "20150830T123600Z");
    CHECK_EQ_INT(sigv4_parse_date("20130229T000000Z", 16, &t), -EINVAL);
    CHECK_EQ_INT(sigv4_parse_date("20131301T000000Z", 16, &t), -EINVAL);
    CHECK_EQ_INT(sigv4_parse_date("20130524T240000Z", 16, &t), -EINVAL);
    CHECK_EQ_INT(sigv4_parse_date("20130524 000000Z", 16, &t), -EINVAL);
    CHECK_EQ_INT(sigv4_parse_date("20130524T000000", 15, &t), -EINVAL);
    CHECK_EQ_INT(sigv4_parse_date("2013052AT000000Z", 16, &t), -EINVAL);
}

TEST(key_cache_follows_day_and_secret)
{
    sigv4_key_cache cache = {0};
    const hmac_key *k;
    uint8_t a[32], b[32], c[32];
    CHECK_EQ_INT(sigv4_signing_key(&cache, &doc_cred, "20130524T000000Z", &k), 0);
    hmac_key_sign(k, "x", 1, a);
    CHECK_EQ_INT(sigv4_signing_key(&cache, &doc_cred, "20130525T000000Z", &k), 0);
    hmac_key_sign(k, "x", 1, b);
    CHECK(memcmp(a, b, 32) != 0);
    sigv4_credentials other = doc_cred;
    other.secret_access_key = "another secret";
    CHECK_EQ_INT(sigv4_signing_key(&cache, &other, "20130525T000000Z", &k), 0);
    hmac_key_sign(k, "x", 1, c);
    CHECK(memcmp(b, c, 32) != 0);
    CHECK_EQ_INT(sigv4_signing_key(&cache, &doc_cred, "20130524T000000Z", &k), 0);
    hmac_key_sign(k, "x", 1, c);
    CHECK_EQ_MEM(a, c, 32);
    sigv4_key_cache_clear(&cache);
    CHECK_EQ_INT(cache.valid, 0);
    sigv4_key_cache_clear(NULL);
}

TEST(presign_rejects)
{
    sigv4_key_cache cache = {0};
    sigv4_pair host = {"host", "h"};
    sigv4_pair sig = {"X-Amz-Signature", "x"};
    sigv4_request req = {"GET", "/k", NULL, 0, &host, 1, NULL};
    char url[512];
    CHECK_EQ_INT(sigv4_presign(&cache, &doc_cred, 0, 0, &req, url, sizeof(url)), -EINVAL);
    CHECK_EQ_INT(sigv4_presign(&cache, &doc_cred, 0, SIGV4_MAX_EXPIRES + 1, &req, url, sizeof(url)),
                 -EINVAL);
    CHECK(sigv4_presign(&cache, &doc_cred, 0, SIGV4_MAX_EXPIRES, &req, url, sizeof(url)) > 0);
    CHECK_EQ_INT(sigv4_presign(&cache, &doc_cred, 0, 60, &req, url, 100), -ENOSPC);
    req.query = &sig;
    req.nquery = 1;
    CHECK_EQ_INT(sigv4_presign(&cache, &doc_cred, 0, 60, &req, url, sizeof(url)), -EINVAL);
    req.nquery = 0;
    req.path = "k";
    CHECK_EQ_INT(sigv4_presign(&cache, &doc_cred, 0, 60, &req, url, sizeof(url)), -EINVAL);
}

/* ---- verifier ------------------------------------------------------------------------- */

static const sigv4_credentials local_cred = {"REELDLOCALKEY", "local-secret-0123456789",
                                             "us-east-1", "s3"};
#define LOCAL_HOST "127.0.0.1:8080"
#define T0         1700000000 /* 2023-11-14T22:13:20Z */

/* Presigns METHOD on `path` at T0 for `expires` s; `url` gets "/path?query". */
static void presign_local(const char *method, const char *path, int64_t expires, char *url,
                          size_t cap)
{
    sigv4_key_cache cache = {0};
    sigv4_pair host = {"host", LOCAL_HOST};
    sigv4_request req = {method, path, NULL, 0, &host, 1, NULL};
    CHECK(sigv4_presign(&cache, &local_cred, T0, expires, &req, url, cap) > 0);
}

static int verify_url(const char *method, const char *url, const char *host, int64_t now)
{
    sigv4_key_cache cache = {0};
    const char *q = strchr(url, '?');
    sigv4_incoming in = {method,
                         strlen(method),
                         url,
                         q ? (size_t)(q - url) : strlen(url),
                         q ? q + 1 : NULL,
                         q ? strlen(q + 1) : 0,
                         host,
                         strlen(host),
                         NULL,
                         0};
    int r = sigv4_verify(&cache, &local_cred, now, &in);
    sigv4_key_cache_clear(&cache);
    return r;
}

/* Replaces the first `from` in `s` with `to`, in place (s has room). */
static void replace(char *s, size_t cap, const char *from, const char *to)
{
    char *p = strstr(s, from);
    CHECK(p != NULL);
    if (p == NULL)
        return;
    char tail[2048];
    snprintf(tail, sizeof(tail), "%s", p + strlen(from));
    snprintf(p, cap - (size_t)(p - s), "%s%s", to, tail);
}

TEST(verify_good)
{
    char url[1024];
    presign_local("PUT", "/blob/staging/my video+1 \xc3\xbc$~.mp4", 900, url, sizeof(url));
    CHECK_EQ_INT(verify_url("PUT", url, LOCAL_HOST, T0), 0);
    CHECK_EQ_INT(verify_url("PUT", url, LOCAL_HOST, T0 + 900), 0);
    CHECK_EQ_INT(verify_url("PUT", url, LOCAL_HOST, T0 - SIGV4_MAX_SKEW), 0);
    /* A client that escapes '~' or writes lowercase hex sends the same key. */
    replace(url, sizeof(url), "~", "%7e");
    replace(url, sizeof(url), "%C3%BC", "%c3%bc");
    CHECK_EQ_INT(verify_url("PUT", url, LOCAL_HOST, T0 + 1), 0);
}

TEST(verify_s3_doc_url)
{
    char url[] = "/test.txt?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%"
                 "2F20130524%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20130524T000000Z&X-Amz-"
                 "Expires=86400&X-Amz-SignedHeaders=host&X-Amz-Signature="
                 "aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404";
    const char *host = "examplebucket.s3.amazonaws.com";
    sigv4_key_cache cache = {0};
    const char *q = strchr(url, '?');
    sigv4_incoming in = {"GET",        3,    url, (size_t)(q - url), q + 1, strlen(q + 1), host,
                         strlen(host), NULL, 0};
    CHECK_EQ_INT(sigv4_verify(&cache, &doc_cred, at("20130524T120000Z"), &in), 0);
    CHECK_EQ_INT(sigv4_verify(&cache, &doc_cred, at("20130525T000001Z"), &in), -EKEYEXPIRED);
    sigv4_key_cache_clear(&cache);
}

TEST(verify_expired)
{
    char url[1024];
    presign_local("GET", "/blob/masters/a.mp4", 60, url, sizeof(url));
    CHECK_EQ_INT(verify_url("GET", url, LOCAL_HOST, T0 + 60), 0);
    CHECK_EQ_INT(verify_url("GET", url, LOCAL_HOST, T0 + 61), -EKEYEXPIRED);
}

TEST(verify_tampered_signature)
{
    char url[1024];
    presign_local("GET", "/blob/masters/a.mp4", 60, url, sizeof(url));
    size_t n = strlen(url);
    url[n - 1] = url[n - 1] == '0' ? '1' : '0';
    CHECK_EQ_INT(verify_url("GET", url, LOCAL_HOST, T0), -EACCES);
    url[n - 1] = '\0'; /* 63 hex digits */
    CHECK_EQ_INT(verify_url("GET", url, LOCAL_HOST, T0), -EACCES);
}

TEST(verify_tampered_key)
{
    char url[1024];
    presign_local("GET", "/blob/masters/a.mp4", 60, url, sizeof(url));
    replace(url, sizeof(url), "a.mp4", "b.mp4");
    CHECK_EQ_INT(verify_url("GET", url, LOCAL_HOST, T0), -EACCES);
    presign_local("GET", "/blob/masters/a.mp4", 60, url, sizeof(url));
    CHECK_EQ_INT(verify_url("GET", url, "127.0.0.1:8081", T0), -EACCES);
    replace(url, sizeof(url), "X-Amz-Expires=60", "X-Amz-Expires=600");
    CHECK_EQ_INT(verify_url("GET", url, LOCAL_HOST, T0), -EACCES);
    presign_local("GET", "/blob/masters/a.mp4", 60, url, sizeof(url));
    size_t n = strlen(url);
    snprintf(url + n, sizeof(url) - n, "&extra=1");
    CHECK_EQ_INT(verify_url("GET", url, LOCAL_HOST, T0), -EACCES);
}

TEST(verify_wrong_method)
{
    char url[1024];
    presign_local("GET", "/blob/masters/a.mp4", 60, url, sizeof(url));
    CHECK_EQ_INT(verify_url("PUT", url, LOCAL_HOST, T0), -EACCES);
    CHECK_EQ_INT(verify_url("get", url, LOCAL_HOST, T0), -EACCES);
}

TEST(verify_future_date)
{
    char url[1024];
    presign_local("GET", "/blob/masters/a.mp4", 60, url, sizeof(url));
    CHECK_EQ_INT(verify_url("GET", url, LOCAL_HOST, T0 - SIGV4_MAX_SKEW - 1), -EAGAIN);
}

TEST(verify_too_long_expiry)
{
    char url[1024];
    presign_local("GET", "/blob/masters/a.mp4", SIGV4_MAX_EXPIRES, url, sizeof(url));
    CHECK_EQ_INT(verify_url("GET", url, LOCAL_HOST, T0), 0);
    replace(url, sizeof(url), "X-Amz-Expires=604800", "X-Amz-Expires=604801");
    CHECK_EQ_INT(verify_url("GET", url, LOCAL_HOST, T0), -EINVAL);
    replace(url, sizeof(url), "X-Amz-Expires=604801", "X-Amz-Expires=0");
    CHECK_EQ_INT(verify_url("GET", url, LOCAL_HOST, T0), -EINVAL);
    replace(url, sizeof(url), "X-Amz-Expires=0", "X-Amz-Expires=-5");
    CHECK_EQ_INT(verify_url("GET", url, LOCAL_HOST, T0), -EINVAL);
}

TEST(verify_malformed_and_foreign)
{
    char url[1024], base[1024];
    presign_local("GET", "/blob/masters/a.mp4", 60, base, sizeof(base));

    memcpy(url, base, sizeof(url));
    replace(url, sizeof(url), "AWS4-HMAC-SHA256", "AWS4-HMAC-SHA1");
    CHECK_EQ_INT(verify_url("GET", url, LOCAL_HOST, T0), -EINVAL);

    memcpy(url, base, sizeof(url));
    replace(url, sizeof(url), "X-Amz-Date=", "X-Amz-Datum=");
    CHECK_EQ_INT(verify_url("GET", url, LOCAL_HOST, T0), -EINVAL);

    memcpy(url, base, sizeof(url));
    replace(url, sizeof(url), "&X-Amz-Expires=60", "&X-Amz-Expires=60&X-Amz-Expires=60");
    CHECK_EQ_INT(verify_url("GET", url, LOCAL_HOST, T0), -EINVAL);

    memcpy(url, base, sizeof(url));
    replace(url, sizeof(url), "X-Amz-SignedHeaders=host", "X-Amz-SignedHeaders=content-type");
    CHECK_EQ_INT(verify_url("GET", url, LOCAL_HOST, T0), -EINVAL);

    memcpy(url, base, sizeof(url));
    replace(url, sizeof(url), "20231114%2F", "20231115%2F"); /* credential day != X-Amz-Date */
    CHECK_EQ_INT(verify_url("GET", url, LOCAL_HOST, T0), -EINVAL);

    memcpy(url, base, sizeof(url));
    replace(url, sizeof(url), "a.mp4", "a%2.mp4");
    CHECK_EQ_INT(verify_url("GET", url, LOCAL_HOST, T0), -EINVAL);

    memcpy(url, base, sizeof(url));
    replace(url, sizeof(url), "REELDLOCALKEY", "SOMEONEELSE");
    CHECK_EQ_INT(verify_url("GET", url, LOCAL_HOST, T0), -EKEYREJECTED);

    memcpy(url, base, sizeof(url));
    replace(url, sizeof(url), "us-east-1", "eu-west-1");
    CHECK_EQ_INT(verify_url("GET", url, LOCAL_HOST, T0), -EKEYREJECTED);

    CHECK_EQ_INT(verify_url("GET", "/blob/masters/a.mp4", LOCAL_HOST, T0), -EINVAL);
    CHECK(strstr(sigv4_strerror(-EKEYEXPIRED), "expired") != NULL);
}

int main(void)
{
    RUN(s3_doc_presigned_get);
    RUN(s3_doc_get_object_header);
    RUN(suite_header_signing);
    RUN(suite_query_signing);
    RUN(suite_canonical_and_string_to_sign);
    RUN(uri_encoding);
    RUN(dates);
    RUN(key_cache_follows_day_and_secret);
    RUN(presign_rejects);
    RUN(verify_good);
    RUN(verify_s3_doc_url);
    RUN(verify_expired);
    RUN(verify_tampered_signature);
    RUN(verify_tampered_key);
    RUN(verify_wrong_method);
    RUN(verify_future_date);
    RUN(verify_too_long_expiry);
    RUN(verify_malformed_and_foreign);
    return test_summary();
}
