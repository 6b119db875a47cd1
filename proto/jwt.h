/* JSON Web Tokens (RFC 7519) signed with HS256 (RFC 7515): the bearer tokens of the API.
 *
 * owns:  nothing. Decoding happens in stack buffers bounded by JWT_MAX_LEN; no I/O, no
 *        allocation, the clock is the caller's `now`.
 * never: accepts an algorithm other than HS256 ("none" included, whatever the signature says),
 *        compares signatures with memcmp (hmac_equal), or trusts a claim before the signature
 *        has been checked.
 *
 * Claims read: exp (required: a token that never expires is refused), nbf (optional), iat
 * (ignored), org (the tenant; optional here, required by the API), sub (optional). Times are
 * NumericDate seconds; `leeway` seconds of clock skew are allowed on exp and nbf. */
#ifndef REELD_PROTO_JWT_H
#define REELD_PROTO_JWT_H

#include <stddef.h>
#include <stdint.h>

#define JWT_MAX_LEN   4096 /* bytes of a whole token */
#define JWT_MAX_CLAIM 128  /* bytes of org and sub, NUL included */

typedef struct jwt_claims {
    char org[JWT_MAX_CLAIM]; /* "" when absent */
    char sub[JWT_MAX_CLAIM]; /* "" when absent */
    int64_t exp;
    int64_t nbf; /* 0 when absent */
} jwt_claims;

/* Verifies token[0..len) ("header.payload.signature", base64url without padding) with `secret`
 * at time `now`. Returns:
 *   0            valid; `out` filled;
 *   -EINVAL      malformed: not three base64url parts, header or payload not a JSON object, a
 *                claim of the wrong type, exp missing, longer than JWT_MAX_LEN, exp + leeway
 *                or nbf - leeway outside int64 (no overflow: such a token is refused);
 *   -ENOTSUP     the header's alg is not "HS256" (alg "none" lands here);
 *   -EACCES      the signature does not match;
 *   -EKEYEXPIRED now > exp + leeway;
 *   -EAGAIN      now < nbf - leeway (not valid yet). */
int jwt_verify_hs256(const char *token, size_t len, const void *secret, size_t secret_len,
                     int64_t now, int64_t leeway, jwt_claims *out);

/* One sentence for a jwt_verify_hs256() result, for error bodies. */
const char *jwt_strerror(int err);

/* Signs `claims_json` (a JSON object, taken as is) with header {"alg":"HS256","typ":"JWT"}
 * into out (cap bytes, NUL-terminated). Returns the token's length or -ENOSPC. For tests,
 * benchmarks and tools that mint tokens. */
int jwt_sign_hs256(const char *claims_json, size_t len, const void *secret, size_t secret_len,
                   char *out, size_t cap);

/* base64url (RFC 4648 section 5) without padding. encode: returns the length written (NUL
 * added) or -ENOSPC. decode: returns the bytes written, -EINVAL for a character outside the
 * alphabet, padding, or an impossible length, -ENOSPC. */
int jwt_b64url_encode(char *out, size_t cap, const void *src, size_t len);
int jwt_b64url_decode(void *out, size_t cap, const char *src, size_t len);

#endif
