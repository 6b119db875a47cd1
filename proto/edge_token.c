/* Playback tokens: signing and constant-time verification. See edge_token.h. */
#include "proto/edge_token.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "proto/fnv.h"
#include "proto/jwt.h"

#define DOMAIN "reeld-edge-v1\n"

static int name_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-';
}

int edge_asset_valid(const char *s, size_t len)
{
    if (len == 0 || len > EDGE_ASSET_MAX)
        return 0;
    for (size_t i = 0; i < len; i++)
        if (!name_char(s[i]))
            return 0;
    return 1;
}

int edge_path_valid(const char *s, size_t len)
{
    if (len == 0 || len > EDGE_PATH_MAX)
        return 0;
    size_t seg = 0; /* bytes in the current segment */
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (c == '/') {
            if (seg == 0)
                return 0;
            seg = 0;
            continue;
        }
        if (!name_char(c) && c != '.')
            return 0;
        if (seg == 0 && c == '.')
            return 0;
        seg++;
    }
    return seg > 0;
}

void edge_keyring_init(edge_keyring *kr, const void *key, size_t keylen, const void *prev,
                       size_t prevlen, int64_t previous_until)
{
    memset(kr, 0, sizeof(*kr));
    hmac_key_init(&kr->current, key, keylen);
    if (prev != NULL) {
        hmac_key_init(&kr->previous, prev, prevlen);
        kr->has_previous = 1;
        kr->previous_until = previous_until;
    }
}

void edge_keyring_clear(edge_keyring *kr)
{
    if (kr == NULL)
        return;
    explicit_bzero(kr, sizeof(*kr)); /* a memset the compiler may not drop */
}

/* The signed message: DOMAIN exp "\n" asset. */
static size_t message(char *out, const char *exp, size_t exp_len, const char *asset,
                      size_t asset_len)
{
    size_t n = sizeof(DOMAIN) - 1;
    memcpy(out, DOMAIN, n);
    memcpy(out + n, exp, exp_len);
    n += exp_len;
    out[n++] = '\n';
    memcpy(out + n, asset, asset_len);
    return n + asset_len;
}

#define MSG_MAX (sizeof(DOMAIN) + EDGE_TOKEN_EXP_MAX + 1 + EDGE_ASSET_MAX)

int edge_token_sign(const edge_keyring *kr, int64_t exp, const char *asset, size_t asset_len,
                    char sig[EDGE_TOKEN_SIG_LEN + 1])
{
    char digits[24], msg[MSG_MAX];
    uint8_t mac[HMAC_SHA256_LEN];
    if (exp < 0 || !edge_asset_valid(asset, asset_len))
        return -EINVAL;
    int n = snprintf(digits, sizeof(digits), "%lld", (long long)exp);
    if (n > EDGE_TOKEN_EXP_MAX)
        return -EINVAL;
    size_t len = message(msg, digits, (size_t)n, asset, asset_len);
    hmac_key_sign(&kr->current, msg, len, mac);
    hmac_hex(sig, mac, sizeof(mac));
    return 0;
}

/* Canonical decimal: digits only, no leading zero (so one expiry has one spelling). */
static int parse_exp(const char *s, size_t len, int64_t *out)
{
    if (len == 0 || len > EDGE_TOKEN_EXP_MAX || (s[0] == '0' && len > 1))
        return -EINVAL;
    int64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -EINVAL;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 0;
}

int edge_token_verify(const edge_keyring *kr, const char *exp, size_t exp_len, const char *sig,
                      size_t sig_len, const char *asset, size_t asset_len, int64_t now)
{
    int64_t when;
    uint8_t want[HMAC_SHA256_LEN], mac[HMAC_SHA256_LEN];
    char msg[MSG_MAX];
    if (parse_exp(exp, exp_len, &when) < 0 || !edge_asset_valid(asset, asset_len) ||
        hmac_unhex(want, sizeof(want), sig, sig_len) < 0)
        return -EKEYREJECTED;
    size_t len = message(msg, exp, exp_len, asset, asset_len);
    hmac_key_sign(&kr->current, msg, len, mac);
    int ok = hmac_equal(mac, want, sizeof(mac));
    if (kr->has_previous) {
        /* Computed whatever the first answer was, so timing does not say which key signed. */
        hmac_key_sign(&kr->previous, msg, len, mac);
        ok |= hmac_equal(mac, want, sizeof(mac)) & (now < kr->previous_until);
    }
    memset(mac, 0, sizeof(mac));
    if (!ok)
        return -EKEYREJECTED;
    return when < now ? -EKEYEXPIRED : 0;
}

static uint32_t cache_slot(const char *exp, size_t exp_len, const char *asset, size_t asset_len)
{
    /* exp and asset are public: any spread will do; a word at a time (per request). */
    return (uint32_t)(mulhash64(mulhash64(0, exp, exp_len), asset, asset_len) %
                      EDGE_TOKEN_CACHE_SLOTS);
}

int edge_token_verify_cached(const edge_keyring *kr, edge_token_cache *cache, const char *exp,
                             size_t exp_len, const char *sig, size_t sig_len, const char *asset,
                             size_t asset_len, int64_t now)
{
    if (exp_len == 0 || exp_len > EDGE_TOKEN_EXP_MAX || asset_len == 0 ||
        asset_len > EDGE_ASSET_MAX || sig_len != EDGE_TOKEN_SIG_LEN)
        return edge_token_verify(kr, exp, exp_len, sig, sig_len, asset, asset_len, now);
    edge_token_cached *c = &cache->slot[cache_slot(exp, exp_len, asset, asset_len)];
    if (c->exp_len == exp_len && c->asset_len == asset_len && now < c->until &&
        memcmp(c->exp, exp, exp_len) == 0 && memcmp(c->asset, asset, asset_len) == 0 &&
        hmac_equal(c->sig, sig, EDGE_TOKEN_SIG_LEN))
        return c->when < now ? -EKEYEXPIRED : 0;
    int r = edge_token_verify(kr, exp, exp_len, sig, sig_len, asset, asset_len, now);
    if (r == 0) {
        c->exp_len = (uint8_t)exp_len;
        c->asset_len = (uint8_t)asset_len;
        memcpy(c->exp, exp, exp_len);
        memcpy(c->asset, asset, asset_len);
        memcpy(c->sig, sig, EDGE_TOKEN_SIG_LEN);
        parse_exp(exp, exp_len, &c->when); /* it parsed in edge_token_verify */
        /* Which key signed is not told: while the previous one is accepted, keep the token
         * only as long as it is. */
        c->until = kr->has_previous && now < kr->previous_until ? kr->previous_until : INT64_MAX;
    }
    return r;
}

/* ---- the download's file name ---- */

#define NAME_DOMAIN "reeld-edge-name-v1\n"
#define NAME_MSG_MAX                                                                               \
    (sizeof(NAME_DOMAIN) + EDGE_TOKEN_EXP_MAX + 1 + EDGE_ASSET_MAX + 1 + EDGE_NAME_MAX)

static int b64url_valid(const char *s, size_t len)
{
    if (len == 0 || len > EDGE_NAME_MAX)
        return 0;
    for (size_t i = 0; i < len; i++)
        if (!name_char(s[i]))
            return 0;
    return 1;
}

static size_t name_message(char *out, const char *exp, size_t exp_len, const char *asset,
                           size_t asset_len, const char *name, size_t name_len)
{
    size_t n = sizeof(NAME_DOMAIN) - 1;
    memcpy(out, NAME_DOMAIN, n);
    memcpy(out + n, exp, exp_len);
    n += exp_len;
    out[n++] = '\n';
    memcpy(out + n, asset, asset_len);
    n += asset_len;
    out[n++] = '\n';
    memcpy(out + n, name, name_len);
    return n + name_len;
}

int edge_name_sign(const edge_keyring *kr, int64_t exp, const char *asset, size_t asset_len,
                   const char *name, size_t name_len, char sig[EDGE_TOKEN_SIG_LEN + 1])
{
    char digits[24], msg[NAME_MSG_MAX];
    uint8_t mac[HMAC_SHA256_LEN];
    if (exp < 0 || !edge_asset_valid(asset, asset_len) || !b64url_valid(name, name_len))
        return -EINVAL;
    int n = snprintf(digits, sizeof(digits), "%lld", (long long)exp);
    if (n > EDGE_TOKEN_EXP_MAX)
        return -EINVAL;
    size_t len = name_message(msg, digits, (size_t)n, asset, asset_len, name, name_len);
    hmac_key_sign(&kr->current, msg, len, mac);
    hmac_hex(sig, mac, sizeof(mac));
    return 0;
}

int edge_url_sign(const edge_keyring *kr, const char *base, int64_t exp, const char *asset,
                  const char *path, int download, const char *download_name, char *out, size_t cap)
{
    char sig[EDGE_TOKEN_SIG_LEN + 1];
    size_t al = strlen(asset);
    int r = edge_token_sign(kr, exp, asset, al, sig);
    if (r < 0)
        return r;
    int n = snprintf(out, cap, "%s/hls/%lld/%s/%s/%s%s", base, (long long)exp, sig, asset, path,
                     download ? "?download=1" : "");
    if (n < 0 || (size_t)n >= cap)
        return -ENOSPC;
    size_t fl = download && download_name != NULL ? strnlen(download_name, 240) : 0;
    char b64[EDGE_NAME_MAX + 1], nsig[EDGE_TOKEN_SIG_LEN + 1];
    int bl = fl > 0 ? jwt_b64url_encode(b64, sizeof(b64), download_name, fl) : -EINVAL;
    if (bl > 0 && edge_name_sign(kr, exp, asset, al, b64, (size_t)bl, nsig) == 0) {
        int m = snprintf(out + n, cap - (size_t)n, "&name=%s&nsig=%s", b64, nsig);
        if (m < 0 || (size_t)m >= cap - (size_t)n)
            return -ENOSPC;
        n += m;
    }
    return n;
}

int edge_name_verify(const edge_keyring *kr, const char *exp, size_t exp_len, const char *asset,
                     size_t asset_len, const char *name, size_t name_len, const char *sig,
                     size_t sig_len, int64_t now)
{
    int64_t when;
    uint8_t want[HMAC_SHA256_LEN], mac[HMAC_SHA256_LEN];
    char msg[NAME_MSG_MAX];
    if (parse_exp(exp, exp_len, &when) < 0 || !edge_asset_valid(asset, asset_len) ||
        !b64url_valid(name, name_len) || hmac_unhex(want, sizeof(want), sig, sig_len) < 0)
        return 0;
    size_t len = name_message(msg, exp, exp_len, asset, asset_len, name, name_len);
    hmac_key_sign(&kr->current, msg, len, mac);
    int ok = hmac_equal(mac, want, sizeof(mac));
    if (kr->has_previous) {
        hmac_key_sign(&kr->previous, msg, len, mac);
        ok |= hmac_equal(mac, want, sizeof(mac)) & (now < kr->previous_until);
    }
    memset(mac, 0, sizeof(mac));
    return ok && when >= now;
}
