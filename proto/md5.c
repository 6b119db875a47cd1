/* MD5 and Content-MD5. See md5.h. */
#include "proto/md5.h"

#include <bearssl.h>

void md5_digest(const void *data, size_t len, uint8_t out[MD5_LEN])
{
    br_md5_context c;
    br_md5_init(&c);
    br_md5_update(&c, data, len);
    br_md5_out(&c, out);
}

void md5_base64(const void *data, size_t len, char out[MD5_BASE64_LEN + 1])
{
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    uint8_t d[MD5_LEN + 2] = {0}; /* two zero bytes past the digest: 16 = 5 * 3 + 1 */
    md5_digest(data, len, d);
    size_t o = 0;
    for (size_t i = 0; i < MD5_LEN; i += 3) {
        uint32_t v = (uint32_t)d[i] << 16 | (uint32_t)d[i + 1] << 8 | d[i + 2];
        out[o++] = alphabet[v >> 18 & 63];
        out[o++] = alphabet[v >> 12 & 63];
        out[o++] = i + 1 < MD5_LEN ? alphabet[v >> 6 & 63] : '=';
        out[o++] = i + 2 < MD5_LEN ? alphabet[v & 63] : '=';
    }
    out[o] = '\0';
}
