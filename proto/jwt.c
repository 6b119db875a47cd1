/* HS256 JWTs: base64url, the header's alg, the signature over "header.payload", then claims. */
#include "proto/jwt.h"

#include <errno.h>
#include <string.h>

#include "proto/hmac.h"
#include "proto/json.h"

static const char b64url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

int jwt_b64url_encode(char *out, size_t cap, const void *src, size_t len)
{
    const uint8_t *s = src;
    size_t need = len / 3 * 4 + (len % 3 ? len % 3 + 1 : 0);
    if (need + 1 > cap)
        return -ENOSPC;
    size_t o = 0, i = 0;
    for (; i + 3 <= len; i += 3) {
        uint32_t v = (uint32_t)s[i] << 16 | (uint32_t)s[i + 1] << 8 | s[i + 2];
        out[o++] = b64url[v >> 18];
        out[o++] = b64url[(v >> 12) & 63];
        out[o++] = b64url[(v >> 6) & 63];
        out[o++] = b64url[v & 63];
    }
    if (len - i == 1) {
        uint32_t v = (uint32_t)s[i] << 16;
        out[o++] = b64url[v >> 18];
        out[o++] = b64url[(v >> 12) & 63];
    } else if (len - i == 2) {
        uint32_t v = (uint32_t)s[i] << 16 | (uint32_t)s[i + 1] << 8;
        out[o++] = b64url[v >> 18];
        out[o++] = b64url[(v >> 12) & 63];
        out[o++] = b64url[(v >> 6) & 63];
    }
    out[o] = '\0';
    return (int)o;
}

static int b64val(char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '-')
        return 62;
    if (c == '_')
        return 63;
    return -1;
}

int jwt_b64url_decode(void *out, size_t cap, const char *src, size_t len)
{
    if (len % 4 == 1)
        return -EINVAL;
    size_t need = len / 4 * 3 + (len % 4 ? len % 4 - 1 : 0);
    if (need > cap)
        return -ENOSPC;
    uint8_t *o = out;
    size_t n = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < len; i++) {
        int v = b64val(src[i]);
        if (v < 0)
            return -EINVAL;
        acc = acc << 6 | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            o[n++] = (uint8_t)(acc >> bits);
        }
    }
    /* Leftover bits must be zero, so each token has one encoding. */
    if (bits && (acc & ((1u << bits) - 1)) != 0)
        return -EINVAL;
    return (int)n;
}

/* A NumericDate: an integer, or a number with a fraction (truncated). */
static int numeric_date(const char *s, const json_tok *t, int64_t *out)
{
    if (json_int(s, t, out) == 0)
        return 0;
    if (t->type != JSON_NUMBER)
        return -EINVAL;
    int64_t v = 0;
    size_t i = 0;
    for (; i < t->len && s[t->start + i] >= '0' && s[t->start + i] <= '9'; i++) {
        if (v > (INT64_MAX - 9) / 10)
            return -EINVAL;
        v = v * 10 + (s[t->start + i] - '0');
    }
    if (i == 0 || i == t->len || s[t->start + i] != '.')
        return -EINVAL;
    for (i++; i < t->len; i++)
        if (s[t->start + i] < '0' || s[t->start + i] > '9')
            return -EINVAL;
    *out = v;
    return 0;
}

static int opt_string(const char *s, const json_tok *t, int obj, const char *name, char *out,
                      size_t cap)
{
    int i = json_get(s, t, obj, name);
    out[0] = '\0';
    if (i < 0)
        return 0;
    return json_string(s, &t[i], out, cap) < 0 ? -EINVAL : 0;
}

int jwt_verify_hs256(const char *token, size_t len, const void *secret, size_t secret_len,
                     int64_t now, int64_t leeway, jwt_claims *out)
{
    if (len > JWT_MAX_LEN)
        return -EINVAL;
    const char *d1 = memchr(token, '.', len);
    if (d1 == NULL)
        return -EINVAL;
    const char *d2 = memchr(d1 + 1, '.', len - (size_t)(d1 + 1 - token));
    if (d2 == NULL || memchr(d2 + 1, '.', len - (size_t)(d2 + 1 - token)) != NULL)
        return -EINVAL;
    char head[JWT_MAX_LEN], body[JWT_MAX_LEN];
    uint8_t sig[HMAC_SHA256_LEN + 4];
    int hl = jwt_b64url_decode(head, sizeof(head), token, (size_t)(d1 - token));
    int bl = jwt_b64url_decode(body, sizeof(body), d1 + 1, (size_t)(d2 - d1 - 1));
    int sl = jwt_b64url_decode(sig, sizeof(sig), d2 + 1, len - (size_t)(d2 + 1 - token));
    if (hl <= 0 || bl <= 0 || sl < 0)
        return -EINVAL;

    json_tok t[64];
    if (json_parse(head, (size_t)hl, t, 64) <= 0 || t[0].type != JSON_OBJECT)
        return -EINVAL;
    int ai = json_get(head, t, 0, "alg");
    char alg[16];
    if (ai < 0 || json_string(head, &t[ai], alg, sizeof(alg)) < 0 || strcmp(alg, "HS256") != 0)
        return -ENOTSUP;

    uint8_t mac[HMAC_SHA256_LEN];
    hmac_sha256(secret, secret_len, token, (size_t)(d2 - token), mac);
    if (sl != HMAC_SHA256_LEN || !hmac_equal(mac, sig, HMAC_SHA256_LEN))
        return -EACCES;

    if (json_parse(body, (size_t)bl, t, 64) <= 0 || t[0].type != JSON_OBJECT)
        return -EINVAL;
    memset(out, 0, sizeof(*out));
    int ei = json_get(body, t, 0, "exp");
    if (ei < 0 || numeric_date(body, &t[ei], &out->exp) < 0)
        return -EINVAL;
    int ni = json_get(body, t, 0, "nbf");
    if (ni >= 0 && numeric_date(body, &t[ni], &out->nbf) < 0)
        return -EINVAL;
    if (opt_string(body, t, 0, "org", out->org, sizeof(out->org)) < 0 ||
        opt_string(body, t, 0, "sub", out->sub, sizeof(out->sub)) < 0)
        return -EINVAL;
    /* Checked: a time at the end of int64 would overflow with the leeway (and trap in a
     * ReleaseSafe build). No honest token carries one, so it is refused as malformed. */
    int64_t last, first = INT64_MIN;
    if (__builtin_add_overflow(out->exp, leeway, &last) ||
        (ni >= 0 && __builtin_sub_overflow(out->nbf, leeway, &first)))
        return -EINVAL;
    if (now > last)
        return -EKEYEXPIRED;
    if (ni >= 0 && now < first)
        return -EAGAIN;
    return 0;
}

const char *jwt_strerror(int err)
{
    switch (err) {
    case 0:
        return "The token is valid.";
    case -ENOTSUP:
        return "The token's algorithm is not HS256.";
    case -EACCES:
        return "The token's signature does not match.";
    case -EKEYEXPIRED:
        return "The token has expired.";
    case -EAGAIN:
        return "The token is not valid yet (nbf).";
    default:
        return "The token is malformed (a JWT with exp is expected).";
    }
}

int jwt_sign_hs256(const char *claims_json, size_t len, const void *secret, size_t secret_len,
                   char *out, size_t cap)
{
    static const char head[] = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";
    int n = jwt_b64url_encode(out, cap, head, sizeof(head) - 1);
    if (n < 0 || (size_t)n + 1 >= cap)
        return -ENOSPC;
    out[n++] = '.';
    int k = jwt_b64url_encode(out + n, cap - (size_t)n, claims_json, len);
    if (k < 0)
        return k;
    n += k;
    uint8_t mac[HMAC_SHA256_LEN];
    hmac_sha256(secret, secret_len, out, (size_t)n, mac);
    if ((size_t)n + 1 >= cap)
        return -ENOSPC;
    out[n++] = '.';
    k = jwt_b64url_encode(out + n, cap - (size_t)n, mac, sizeof(mac));
    if (k < 0)
        return k;
    return n + k;
}
