/* proto/jwt: the RFC 7515 A.1 HS256 example, a token of our own computed with Python's hmac,
 * and every refusal: alg none, other algorithms, a tampered payload, expiry and nbf with the
 * leeway, malformed parts, and base64url edge cases. */
#include <errno.h>

#include "proto/hmac.h"
#include "proto/jwt.h"
#include "tests/unit/test.h"

/* RFC 7515 appendix A.1: the JWK "k" in hex, and the compact serialization. */
static const char rfc_key_hex[] =
    "0323354b2b0fa5bc837e0665777ba68f5ab328e6f054c928a90f84b2d2502ebfd3fb5a92d20647ef968ab4c377"
    "623d223d2e2172052e4f08c0cd9af567d080a3";
static const char rfc_token[] =
    "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9."
    "eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVl"
    "fQ.dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";

/* Ours: {"org":"acme","sub":"u1","exp":2000000000,"nbf":1700000000}, signed by Python's hmac. */
static const char secret[] = "reeld-test-secret-0123456789abcdef";
static const char own_token[] =
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."
    "eyJvcmciOiJhY21lIiwic3ViIjoidTEiLCJleHAiOjIwMDAwMDAwMDAsIm5iZiI6MTcwMDAwMDAwMH0."
    "IAHOhTt9zpni8m_rtJKQ06TocXurv8hfriF-6_tvaoU";

static int verify(const char *tok, int64_t now, jwt_claims *c)
{
    return jwt_verify_hs256(tok, strlen(tok), secret, sizeof(secret) - 1, now, 30, c);
}

TEST(rfc7515_a1)
{
    uint8_t key[64];
    CHECK_EQ_INT(hmac_unhex(key, sizeof(key), rfc_key_hex, 128), 0);
    jwt_claims c;
    CHECK_EQ_INT(jwt_verify_hs256(rfc_token, strlen(rfc_token), key, 64, 1300819000, 0, &c), 0);
    CHECK_EQ_INT(c.exp, 1300819380);
    CHECK_EQ_STR(c.org, "");
    CHECK_EQ_INT(jwt_verify_hs256(rfc_token, strlen(rfc_token), key, 64, 1300819381, 0, &c),
                 -EKEYEXPIRED);
    key[0] ^= 1;
    CHECK_EQ_INT(jwt_verify_hs256(rfc_token, strlen(rfc_token), key, 64, 1300819000, 0, &c),
                 -EACCES);
}

TEST(own_token_and_signer)
{
    jwt_claims c;
    CHECK_EQ_INT(verify(own_token, 1800000000, &c), 0);
    CHECK_EQ_STR(c.org, "acme");
    CHECK_EQ_STR(c.sub, "u1");
    CHECK_EQ_INT(c.nbf, 1700000000);
    static const char claims[] = "{\"org\":\"acme\",\"sub\":\"u1\",\"exp\":2000000000,"
                                 "\"nbf\":1700000000}";
    char tok[512];
    int n =
        jwt_sign_hs256(claims, sizeof(claims) - 1, secret, sizeof(secret) - 1, tok, sizeof(tok));
    CHECK_EQ_INT(n, (int)strlen(own_token));
    CHECK_EQ_STR(tok, own_token);
    CHECK_EQ_INT(jwt_sign_hs256(claims, sizeof(claims) - 1, secret, 4, tok, 40), -ENOSPC);
}

TEST(times_with_leeway)
{
    jwt_claims c;
    CHECK_EQ_INT(verify(own_token, 2000000030, &c), 0);
    CHECK_EQ_INT(verify(own_token, 2000000031, &c), -EKEYEXPIRED);
    CHECK_EQ_INT(verify(own_token, 1699999970, &c), 0);
    CHECK_EQ_INT(verify(own_token, 1699999969, &c), -EAGAIN);
}

/* A token with the given header and claims, signed with `secret`. */
static void mint(const char *header, const char *claims, char *out, size_t cap)
{
    int n = jwt_b64url_encode(out, cap, header, strlen(header));
    out[n++] = '.';
    n += jwt_b64url_encode(out + n, cap - (size_t)n, claims, strlen(claims));
    uint8_t mac[32];
    hmac_sha256(secret, sizeof(secret) - 1, out, (size_t)n, mac);
    out[n++] = '.';
    jwt_b64url_encode(out + n, cap - (size_t)n, mac, 32);
}

TEST(refusals)
{
    char tok[1024];
    jwt_claims c;
    static const char ok_claims[] = "{\"org\":\"acme\",\"exp\":2000000000}";
    mint("{\"alg\":\"none\"}", ok_claims, tok, sizeof(tok));
    CHECK_EQ_INT(verify(tok, 1800000000, &c), -ENOTSUP);
    /* alg none with an empty signature, as attackers send it */
    char *dot = strrchr(tok, '.');
    dot[1] = '\0';
    CHECK_EQ_INT(verify(tok, 1800000000, &c), -ENOTSUP);
    mint("{\"alg\":\"HS512\"}", ok_claims, tok, sizeof(tok));
    CHECK_EQ_INT(verify(tok, 1800000000, &c), -ENOTSUP);
    mint("{\"typ\":\"JWT\"}", ok_claims, tok, sizeof(tok));
    CHECK_EQ_INT(verify(tok, 1800000000, &c), -ENOTSUP);
    mint("{\"alg\":\"HS256\"}", "{\"org\":\"acme\"}", tok, sizeof(tok));
    CHECK_EQ_INT(verify(tok, 1800000000, &c), -EINVAL); /* no exp */
    mint("{\"alg\":\"HS256\"}", "{\"org\":7,\"exp\":2000000000}", tok, sizeof(tok));
    CHECK_EQ_INT(verify(tok, 1800000000, &c), -EINVAL);
    mint("{\"alg\":\"HS256\"}", "{\"exp\":\"soon\"}", tok, sizeof(tok));
    CHECK_EQ_INT(verify(tok, 1800000000, &c), -EINVAL);
    mint("{\"alg\":\"HS256\"}", "[1]", tok, sizeof(tok));
    CHECK_EQ_INT(verify(tok, 1800000000, &c), -EINVAL);
    mint("{\"alg\":\"HS256\"}", "{\"org\":\"x\",\"exp\":2000000000.5}", tok, sizeof(tok));
    CHECK_EQ_INT(verify(tok, 1800000000, &c), 0);
    CHECK_EQ_INT(c.exp, 2000000000);

    /* The payload of one token with the signature of another. */
    char forged[512];
    snprintf(forged, sizeof(forged), "%s", own_token);
    char *p = strchr(forged, '.') + 1;
    p[3] = p[3] == 'A' ? 'B' : 'A';
    CHECK_EQ_INT(verify(forged, 1800000000, &c), -EACCES);

    static const char *const malformed[] = {"",   "a",        "a.b",        "a.b.c.d",
                                            "..", "!!.e30.x", "e30.e30.***"};
    for (size_t i = 0; i < sizeof(malformed) / sizeof(malformed[0]); i++)
        CHECK_EQ_INT(verify(malformed[i], 1800000000, &c), -EINVAL);
}

/* Times at the ends of int64 (and past them): adding or subtracting the leeway must not
 * overflow (a ReleaseSafe build traps on it); such a token is refused, never accepted. */
TEST(extreme_times)
{
    char tok[1024];
    jwt_claims c;
    static const char *const claims[] = {
        "{\"org\":\"x\",\"exp\":9223372036854775807}",
        "{\"org\":\"x\",\"exp\":9223372036854775790}",
        "{\"org\":\"x\",\"exp\":9223372036854775799.5}",
        "{\"org\":\"x\",\"exp\":-9223372036854775808}",
        "{\"org\":\"x\",\"exp\":2000000000,\"nbf\":-9223372036854775808}",
        "{\"org\":\"x\",\"exp\":2000000000,\"nbf\":-9223372036854775800}",
        "{\"org\":\"x\",\"exp\":9223372036854775807,\"nbf\":-9223372036854775808}",
        "{\"org\":\"x\",\"exp\":1e300}",
        "{\"org\":\"x\",\"exp\":2000000000,\"nbf\":-1e300}",
        "{\"org\":\"x\",\"exp\":99999999999999999999999}",
    };
    for (size_t i = 0; i < sizeof(claims) / sizeof(claims[0]); i++) {
        mint("{\"alg\":\"HS256\"}", claims[i], tok, sizeof(tok));
        CHECK(verify(tok, 1800000000, &c) < 0);
    }
    /* The leeway at the other end: now near INT64_MIN and INT64_MAX with ordinary times. */
    mint("{\"alg\":\"HS256\"}", "{\"org\":\"x\",\"exp\":2000000000,\"nbf\":-5}", tok, sizeof(tok));
    CHECK_EQ_INT(verify(tok, INT64_MAX, &c), -EKEYEXPIRED);
    CHECK_EQ_INT(verify(tok, INT64_MIN, &c), -EAGAIN);
    /* A negative but representable nbf is an ordinary past time. */
    CHECK_EQ_INT(verify(tok, 1800000000, &c), 0);
}

TEST(base64url)
{
    char out[16];
    uint8_t bin[16];
    CHECK_EQ_INT(jwt_b64url_encode(out, sizeof(out), "\xfb\xff", 2), 3);
    CHECK_EQ_STR(out, "-_8");
    CHECK_EQ_INT(jwt_b64url_decode(bin, sizeof(bin), "-_8", 3), 2);
    CHECK_EQ_MEM(bin, "\xfb\xff", 2);
    CHECK_EQ_INT(jwt_b64url_decode(bin, sizeof(bin), "-_9", 3), -EINVAL); /* stray low bits */
    CHECK_EQ_INT(jwt_b64url_decode(bin, sizeof(bin), "abcde", 5), -EINVAL);
    CHECK_EQ_INT(jwt_b64url_decode(bin, sizeof(bin), "ab==", 4), -EINVAL);
    CHECK_EQ_INT(jwt_b64url_decode(bin, sizeof(bin), "a+b/", 4), -EINVAL);
    CHECK_EQ_INT(jwt_b64url_decode(bin, 1, "abcd", 4), -ENOSPC);
}

int main(void)
{
    RUN(rfc7515_a1);
    RUN(own_token_and_signer);
    RUN(times_with_leeway);
    RUN(refusals);
    RUN(extreme_times);
    RUN(base64url);
    return test_summary();
}
