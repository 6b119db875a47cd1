/* proto/md5: the RFC 1321 test suite (appendix A.5), and Content-MD5 values (RFC 1864) checked
 * against digests computed independently (`printf ... | openssl md5 -binary | base64`). */
#include "proto/md5.h"
#include "tests/unit/test.h"

static void hex(const uint8_t *d, char *out)
{
    for (int i = 0; i < MD5_LEN; i++)
        snprintf(out + 2 * i, 3, "%02x", d[i]);
}

TEST(rfc1321_suite)
{
    static const struct {
        const char *in, *hex;
    } v[] = {
        {"", "d41d8cd98f00b204e9800998ecf8427e"},
        {"a", "0cc175b9c0f1b6a831c399e269772661"},
        {"abc", "900150983cd24fb0d6963f7d28e17f72"},
        {"message digest", "f96b697d7cb7938d525a2f31aaf161d0"},
        {"abcdefghijklmnopqrstuvwxyz", "c3fcd3d76192e4007dfb496cca67e13b"},
        {"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
         "d174ab98d277d9f5a5611c2c9f419d9f"},
        {"12345678901234567890123456789012345678901234567890"
         "123456789012345678901234567890",
         "57edf4a22be3c955ac49da2e2107b67a"},
    };
    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        uint8_t d[MD5_LEN];
        char h[2 * MD5_LEN + 1];
        md5_digest(v[i].in, strlen(v[i].in), d);
        hex(d, h);
        CHECK_EQ_STR(h, v[i].hex);
    }
}

TEST(content_md5)
{
    char b[MD5_BASE64_LEN + 1];
    md5_base64("", 0, b);
    CHECK_EQ_STR(b, "1B2M2Y8AsgTpgAmY7PhCfg==");
    md5_base64("abc", 3, b);
    CHECK_EQ_STR(b, "kAFQmDzST7DWlj99KOF/cg==");
    md5_base64("message digest", 14, b);
    CHECK_EQ_STR(b, "+WtpfXy3k41SWi8xqvFh0A==");
    CHECK_EQ_INT(strlen(b), MD5_BASE64_LEN);
}

int main(void)
{
    RUN(rfc1321_suite);
    RUN(content_md5);
    return test_summary();
}
