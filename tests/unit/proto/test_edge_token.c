/* Edge tokens: known-answer signatures (computed independently with Python's hmac), tampering,
 * expiry, key rotation, the cache of verified tokens (the same answers, a forgery beside a
 * cached token, expiry and the previous key's grace on a cached one), and the names a token may
 * cover. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "proto/edge_token.h"
#include "tests/unit/test.h"

#define KEY  "0123456789abcdef0123456789abcdef"
#define PREV "previous-key-16bytes"
#define SIG1 "3a5dc43ec567d1640ed12c93511135fc2dc8c0a3f79fbebf8be88b25e6c08574"
#define SIG2 "04c812f76fc3f4562267f24a1799a7e704fcbb239d5208eaeed407dbcadd2553"

static int verify(const edge_keyring *kr, const char *exp, const char *sig, const char *asset,
                  int64_t now)
{
    return edge_token_verify(kr, exp, strlen(exp), sig, strlen(sig), asset, strlen(asset), now);
}

TEST(known_answers)
{
    edge_keyring kr, old;
    char sig[EDGE_TOKEN_SIG_LEN + 1];
    edge_keyring_init(&kr, KEY, strlen(KEY), NULL, 0, 0);
    CHECK_EQ_INT(edge_token_sign(&kr, 1795370697, "a1", 2, sig), 0);
    CHECK_EQ_STR(sig, SIG1);
    edge_keyring_init(&old, PREV, strlen(PREV), NULL, 0, 0);
    CHECK_EQ_INT(edge_token_sign(&old, 1700000000, "asset_X-9", 9, sig), 0);
    CHECK_EQ_STR(sig, SIG2);
    CHECK_EQ_INT(verify(&kr, "1795370697", SIG1, "a1", 1700000000), 0);
    CHECK_EQ_INT(edge_token_sign(&kr, -1, "a1", 2, sig), -EINVAL);
    CHECK_EQ_INT(edge_token_sign(&kr, 1, "a/1", 3, sig), -EINVAL);
}

TEST(tampering)
{
    edge_keyring kr;
    edge_keyring_init(&kr, KEY, strlen(KEY), NULL, 0, 0);
    int64_t now = 1700000000;
    char bad[] = SIG1;
    bad[10] ^= 1;
    CHECK_EQ_INT(verify(&kr, "1795370697", bad, "a1", now), -EKEYREJECTED);
    CHECK_EQ_INT(verify(&kr, "1795370698", SIG1, "a1", now), -EKEYREJECTED);  /* longer life */
    CHECK_EQ_INT(verify(&kr, "01795370697", SIG1, "a1", now), -EKEYREJECTED); /* respelt */
    CHECK_EQ_INT(verify(&kr, "1795370697", SIG1, "a2", now), -EKEYREJECTED);  /* other asset */
    CHECK_EQ_INT(verify(&kr, "1795370697", "3a5dc4", "a1", now), -EKEYREJECTED);
    CHECK_EQ_INT(verify(&kr, "", SIG1, "a1", now), -EKEYREJECTED);
    CHECK_EQ_INT(verify(&kr, "-1", SIG1, "a1", now), -EKEYREJECTED);
    CHECK_EQ_INT(verify(&kr, "1795370697", SIG1, "..", now), -EKEYREJECTED);
    edge_keyring other;
    edge_keyring_init(&other, PREV, strlen(PREV), NULL, 0, 0);
    CHECK_EQ_INT(verify(&other, "1795370697", SIG1, "a1", now), -EKEYREJECTED);
}

TEST(expiry)
{
    edge_keyring kr;
    edge_keyring_init(&kr, KEY, strlen(KEY), NULL, 0, 0);
    CHECK_EQ_INT(verify(&kr, "1795370697", SIG1, "a1", 1795370697), 0); /* the last second */
    CHECK_EQ_INT(verify(&kr, "1795370697", SIG1, "a1", 1795370698), -EKEYEXPIRED);
}

TEST(rotation)
{
    edge_keyring kr;
    /* SIG2 was signed by PREV: accepted while the grace window lasts, then refused. */
    edge_keyring_init(&kr, KEY, strlen(KEY), PREV, strlen(PREV), 1600000000);
    CHECK_EQ_INT(verify(&kr, "1700000000", SIG2, "asset_X-9", 1599999999), 0);
    CHECK_EQ_INT(verify(&kr, "1700000000", SIG2, "asset_X-9", 1600000000), -EKEYREJECTED);
    /* The current key still verifies, and only it signs. */
    char sig[EDGE_TOKEN_SIG_LEN + 1];
    edge_token_sign(&kr, 1795370697, "a1", 2, sig);
    CHECK_EQ_STR(sig, SIG1);
    CHECK_EQ_INT(verify(&kr, "1795370697", SIG1, "a1", 1599999999), 0);
    edge_keyring_clear(&kr);
    CHECK_EQ_INT(kr.has_previous, 0);
}

static int cached(const edge_keyring *kr, edge_token_cache *c, const char *exp, const char *sig,
                  const char *asset, int64_t now)
{
    return edge_token_verify_cached(kr, c, exp, strlen(exp), sig, strlen(sig), asset, strlen(asset),
                                    now);
}

/* The cache answers what edge_token_verify answers: after a valid token is kept, a forged one
 * for the same exp and asset (its slot) is still refused, a kept token expires on time, and
 * one only the previous key signed stops at the end of its grace even though it was kept. */
TEST(cache)
{
    static edge_token_cache c; /* zeroed: empty */
    edge_keyring kr;
    edge_keyring_init(&kr, KEY, strlen(KEY), NULL, 0, 0);
    int64_t now = 1700000000;
    CHECK_EQ_INT(cached(&kr, &c, "1795370697", SIG1, "a1", now), 0);
    int kept = 0;
    for (int i = 0; i < EDGE_TOKEN_CACHE_SLOTS; i++)
        kept += c.slot[i].exp_len != 0;
    CHECK_EQ_INT(kept, 1);
    CHECK_EQ_INT(cached(&kr, &c, "1795370697", SIG1, "a1", now), 0); /* from the cache */
    char bad[] = SIG1;
    bad[63] ^= 1; /* the last digit: a compare that stopped early would pass it */
    CHECK_EQ_INT(cached(&kr, &c, "1795370697", bad, "a1", now), -EKEYREJECTED);
    CHECK_EQ_INT(cached(&kr, &c, "1795370697", "3a5dc4", "a1", now), -EKEYREJECTED);
    CHECK_EQ_INT(cached(&kr, &c, "1795370698", SIG1, "a1", now), -EKEYREJECTED);
    CHECK_EQ_INT(cached(&kr, &c, "1795370697", SIG1, "a2", now), -EKEYREJECTED);
    CHECK_EQ_INT(cached(&kr, &c, "1795370697", SIG1, "a1", 1795370697), 0);
    CHECK_EQ_INT(cached(&kr, &c, "1795370697", SIG1, "a1", 1795370698), -EKEYEXPIRED);
    /* A keyring whose previous key is in its grace: SIG2 (signed by PREV) is kept, answered
     * from the cache within the grace, and refused at its end all the same. */
    static edge_token_cache g;
    edge_keyring rot;
    edge_keyring_init(&rot, KEY, strlen(KEY), PREV, strlen(PREV), 1600000000);
    CHECK_EQ_INT(cached(&rot, &g, "1700000000", SIG2, "asset_X-9", 1599999990), 0);
    CHECK_EQ_INT(cached(&rot, &g, "1700000000", SIG2, "asset_X-9", 1599999999), 0);
    CHECK_EQ_INT(cached(&rot, &g, "1700000000", SIG2, "asset_X-9", 1600000000), -EKEYREJECTED);
    /* Past the grace, tokens of the current key are kept without that bound. */
    CHECK_EQ_INT(cached(&rot, &g, "1795370697", SIG1, "a1", 1600000001), 0);
    int found = 0;
    for (int i = 0; i < EDGE_TOKEN_CACHE_SLOTS; i++)
        if (g.slot[i].exp_len == 10 && memcmp(g.slot[i].exp, "1795370697", 10) == 0)
            found = g.slot[i].until == INT64_MAX;
    CHECK(found);
    edge_keyring_clear(&rot);
    edge_keyring_clear(&kr);
}

TEST(names)
{
    CHECK(edge_asset_valid("a1", 2));
    CHECK(edge_asset_valid("A_b-9", 5));
    CHECK(!edge_asset_valid("", 0));
    CHECK(!edge_asset_valid("..", 2));
    CHECK(!edge_asset_valid("a%2f", 4));
    CHECK(!edge_asset_valid("a.b", 3));
    const char *ok[] = {"master.m3u8", "v0/seg0.ts", "720p/init.mp4", "poster.jpg", "a-b_c/d.e.f"};
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
        CHECK(edge_path_valid(ok[i], strlen(ok[i])));
    const char *bad[] = {"",        "..",          "../x.ts",  "v0/../../x", "v0/./x.ts",
                         "/abs.ts", "v0//x.ts",    "v0/",      ".hidden",    "%2e%2e/x.ts",
                         "v0%2fx",  "v0/seg 1.ts", "v0\\x.ts", "x?.ts",      "v0/.."};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (edge_path_valid(bad[i], strlen(bad[i])))
            printf("  accepted \"%s\"\n", bad[i]);
        CHECK(!edge_path_valid(bad[i], strlen(bad[i])));
    }
    char nul[] = "v0/x\0.ts";
    CHECK(!edge_path_valid(nul, sizeof(nul) - 1));
}

/* The download's name: signed over exp, asset and the name, by Python's hmac too. */
#define NSIG "96e1e1025e1df0a35dec25a7f7ff5c621a518d38ab4f0fa6e1dbc7983521ffa8"
TEST(download_name)
{
    edge_keyring kr, other;
    char sig[EDGE_TOKEN_SIG_LEN + 1];
    edge_keyring_init(&kr, KEY, strlen(KEY), NULL, 0, 0);
    edge_keyring_init(&other, PREV, strlen(PREV), NULL, 0, 0);
    const char *name = "aG9saWRheS5tb3Y"; /* "holiday.mov" */
    CHECK_EQ_INT(edge_name_sign(&kr, 1795370697, "a1", 2, name, strlen(name), sig), 0);
    CHECK_EQ_STR(sig, NSIG);
    CHECK_EQ_INT(
        edge_name_verify(&kr, "1795370697", 10, "a1", 2, name, strlen(name), NSIG, 64, 1700000000),
        1);
    /* another name, asset, expiry or key, an expired link, a token of the path: refused */
    CHECK_EQ_INT(edge_name_verify(&kr, "1795370697", 10, "a1", 2, "aG9saWRheS5tb3Z", 15, NSIG, 64,
                                  1700000000),
                 0);
    CHECK_EQ_INT(
        edge_name_verify(&kr, "1795370697", 10, "a2", 2, name, strlen(name), NSIG, 64, 1700000000),
        0);
    CHECK_EQ_INT(
        edge_name_verify(&kr, "1795370698", 10, "a1", 2, name, strlen(name), NSIG, 64, 1700000000),
        0);
    CHECK_EQ_INT(edge_name_verify(&other, "1795370697", 10, "a1", 2, name, strlen(name), NSIG, 64,
                                  1700000000),
                 0);
    CHECK_EQ_INT(
        edge_name_verify(&kr, "1795370697", 10, "a1", 2, name, strlen(name), NSIG, 64, 1795370698),
        0);
    CHECK_EQ_INT(
        edge_name_verify(&kr, "1795370697", 10, "a1", 2, name, strlen(name), SIG1, 64, 1700000000),
        0);
    /* names outside base64url, empty or too long are neither signed nor accepted */
    CHECK_EQ_INT(edge_name_sign(&kr, 1795370697, "a1", 2, "a=b", 3, sig), -EINVAL);
    CHECK_EQ_INT(edge_name_sign(&kr, 1795370697, "a1", 2, "", 0, sig), -EINVAL);
    char longname[EDGE_NAME_MAX + 2];
    memset(longname, 'A', sizeof(longname));
    CHECK_EQ_INT(edge_name_sign(&kr, 1795370697, "a1", 2, longname, EDGE_NAME_MAX, sig), 0);
    CHECK_EQ_INT(edge_name_sign(&kr, 1795370697, "a1", 2, longname, EDGE_NAME_MAX + 1, sig),
                 -EINVAL);
}

/* The one maker of playback links: the path's token, then the download's flag and signed name. */
TEST(urls)
{
    edge_keyring kr;
    char sig[EDGE_TOKEN_SIG_LEN + 1], url[512], want[512];
    edge_keyring_init(&kr, KEY, strlen(KEY), NULL, 0, 0);
    CHECK_EQ_INT(edge_token_sign(&kr, 1795370697, "a1", 2, sig), 0);
    int n = edge_url_sign(&kr, "https://e.example", 1795370697, "a1", "720p/index.m3u8", 0, NULL,
                          url, sizeof(url));
    snprintf(want, sizeof(want), "https://e.example/hls/1795370697/%s/a1/720p/index.m3u8", sig);
    CHECK_EQ_STR(url, want);
    CHECK_EQ_INT(n, (int)strlen(want));
    edge_url_sign(&kr, "B", 1795370697, "a1", "download.mp4", 1, "holiday.mov", url, sizeof(url));
    snprintf(want, sizeof(want),
             "B/hls/1795370697/%s/a1/download.mp4?download=1&name=aG9saWRheS5tb3Y&nsig=" NSIG, sig);
    CHECK_EQ_STR(url, want);
    /* no name (or an empty one): the flag alone, and the edge names it after the asset */
    edge_url_sign(&kr, "B", 1795370697, "a1", "download.mp4", 1, "", url, sizeof(url));
    snprintf(want, sizeof(want), "B/hls/1795370697/%s/a1/download.mp4?download=1", sig);
    CHECK_EQ_STR(url, want);
    CHECK_EQ_INT(edge_url_sign(&kr, "B", 1795370697, "a1", "x", 0, NULL, url, 40), -ENOSPC);
    CHECK_EQ_INT(edge_url_sign(&kr, "B", 1795370697, "a/1", "x", 0, NULL, url, sizeof(url)),
                 -EINVAL);
}

int main(void)
{
    RUN(known_answers);
    RUN(tampering);
    RUN(expiry);
    RUN(rotation);
    RUN(cache);
    RUN(names);
    RUN(download_name);
    RUN(urls);
    return test_summary();
}
