/* Playback tokens of the edge, and the names they may cover.
 *
 * A playback URL is EDGE_PUBLIC_BASE/hls/{exp}/{sig}/{asset}/{path}: exp is the expiry in unix
 * seconds (decimal, no sign, no leading zero), sig the 64 lowercase hex digits of
 * HMAC-SHA256(EDGE_SIGNING_KEY, "reeld-edge-v1\n" exp "\n" asset). The token sits in the path
 * so the relative URIs of a playlist inherit it; it covers every path under the asset.
 *
 * Key rotation: a keyring holds the current key and, optionally, the previous one with the
 * unix time until which it is still accepted (the grace window). Only the current key signs.
 *
 * owns:  nothing; no I/O, no allocation. Keys live in the caller's keyring.
 * never: compares signatures with memcmp; tells a caller which key matched or how closely. */
#ifndef REELD_PROTO_EDGE_TOKEN_H
#define REELD_PROTO_EDGE_TOKEN_H

#include <stddef.h>
#include <stdint.h>

#include "proto/hmac.h"

#define EDGE_TOKEN_SIG_LEN HMAC_SHA256_HEX /* hex digits of a signature */
#define EDGE_ASSET_MAX     64              /* bytes of an asset id */
#define EDGE_PATH_MAX      256             /* bytes of a path under an asset */
#define EDGE_TOKEN_EXP_MAX 12              /* decimal digits of an expiry */

typedef struct edge_keyring {
    hmac_key current;
    hmac_key previous;
    int has_previous;
    int64_t previous_until; /* unix seconds: the previous key verifies while now < this */
} edge_keyring;

/* Fills `kr` from the current key and, when `prev` is not NULL, the previous key accepted until
 * `previous_until`. Zero the keyring with edge_keyring_clear when done. */
void edge_keyring_init(edge_keyring *kr, const void *key, size_t keylen, const void *prev,
                       size_t prevlen, int64_t previous_until);
void edge_keyring_clear(edge_keyring *kr);

/* Writes the signature of (exp, asset) with the current key: 64 hex digits and a NUL. 0, or
 * -EINVAL when exp is negative or the asset is not a valid asset id. */
int edge_token_sign(const edge_keyring *kr, int64_t exp, const char *asset, size_t asset_len,
                    char sig[EDGE_TOKEN_SIG_LEN + 1]);

/* Checks a token taken from a URL at time `now` (unix seconds). Returns 0 when it is valid;
 * -EKEYREJECTED when it is malformed or signed by no accepted key (answer 403); -EKEYEXPIRED
 * when its signature is good but exp has passed (answer 410). The signature is checked before
 * the expiry, so a forged expiry is a 403 like any other forgery. */
int edge_token_verify(const edge_keyring *kr, const char *exp, size_t exp_len, const char *sig,
                      size_t sig_len, const char *asset, size_t asset_len, int64_t now);

/* Tokens verified lately, so the links a player repeats (a playlist and every segment under one
 * token) cost a compare instead of one or two HMACs each. One slot per (exp, asset) hash; a
 * token is answered from its slot only when exp and asset are the same and the signature is
 * the same 64 digits (compared with hmac_equal: a forgery learns nothing from the time taken).
 * A token that only the previous key may have signed is kept no longer than that key's grace.
 * Embed one per thread (no lock); zeroed is empty. No I/O, no allocation. */
#define EDGE_TOKEN_CACHE_SLOTS 64
typedef struct edge_token_cached {
    uint8_t exp_len, asset_len; /* 0: empty */
    char exp[EDGE_TOKEN_EXP_MAX];
    char asset[EDGE_ASSET_MAX];
    char sig[EDGE_TOKEN_SIG_LEN];
    int64_t when;  /* the expiry, parsed */
    int64_t until; /* unix seconds: answered from here while now < until */
} edge_token_cached;
typedef struct edge_token_cache {
    edge_token_cached slot[EDGE_TOKEN_CACHE_SLOTS];
} edge_token_cache;

/* edge_token_verify's answer for the same arguments, from `cache` when it holds this token,
 * else verified and, when valid, kept there. */
int edge_token_verify_cached(const edge_keyring *kr, edge_token_cache *cache, const char *exp,
                             size_t exp_len, const char *sig, size_t sig_len, const char *asset,
                             size_t asset_len, int64_t now);

/* A download's file name (?download=1&name=N&nsig=S on download.mp4): N is the name the asset
 * was uploaded with, base64url without padding (at most EDGE_NAME_MAX characters), and S the
 * 64 hex digits of HMAC-SHA256(EDGE_SIGNING_KEY, "reeld-edge-name-v1\n" exp "\n" asset "\n" N),
 * for the same exp and asset as the path's token. The path's token still decides access; this
 * one only lets the edge trust a name it cannot look up (a name nobody signed is never shown:
 * the edge uses the asset id). edge_name_sign: 0 or -EINVAL (as edge_token_sign, or a name
 * empty, too long or outside the base64url alphabet). edge_name_verify: 1 when S is good for
 * (exp, asset, N) under an accepted key at `now`, else 0; constant time in S. */
#define EDGE_NAME_MAX 400
int edge_name_sign(const edge_keyring *kr, int64_t exp, const char *asset, size_t asset_len,
                   const char *name, size_t name_len, char sig[EDGE_TOKEN_SIG_LEN + 1]);
int edge_name_verify(const edge_keyring *kr, const char *exp, size_t exp_len, const char *asset,
                     size_t asset_len, const char *name, size_t name_len, const char *sig,
                     size_t sig_len, int64_t now);

/* The playback URL base/hls/{exp}/{sig}/{asset}/{path} signed with the current key. With
 * `download`, "?download=1" follows (the edge answers with an attachment), and when
 * `download_name` is not empty, the signed name (&name=&nsig=, its first 240 bytes) that the
 * attachment is to be called. The one place such links are made (the API's playback and
 * export answers, webhook events), so they read the same everywhere. The URL's length, or
 * -EINVAL (as edge_token_sign), -ENOSPC (`cap` too small). */
int edge_url_sign(const edge_keyring *kr, const char *base, int64_t exp, const char *asset,
                  const char *path, int download, const char *download_name, char *out, size_t cap);

/* 1 when `s` is an asset id: 1 to EDGE_ASSET_MAX of [A-Za-z0-9_-]. */
int edge_asset_valid(const char *s, size_t len);

/* 1 when `s` is a path under an asset that names one object and can only name it: '/'-separated
 * segments of [A-Za-z0-9._-], none empty, none starting with '.' (so no "." or ".."), at most
 * EDGE_PATH_MAX bytes. Percent-encoding is refused rather than decoded: nothing reeld
 * publishes needs it, and a decoded "%2e%2e" could not then climb out. */
int edge_path_valid(const char *s, size_t len);

#endif
