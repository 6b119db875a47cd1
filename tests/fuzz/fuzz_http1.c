/* libFuzzer target for the HTTP/1.1 parser: request heads, framing and chunked bodies.
 *
 * The input is parsed as a head; when one parses, its framing is read and the rest of the
 * input goes through the chunked decoder in pieces whose sizes come from the input itself, with
 * the decoder writing in place (as the listener does). Checks: results stay within their
 * contracts, every slice lies inside the input, and decoding in pieces never produces more
 * than it consumed; and the parser answers as the plain reference parser does (http1_ref.h),
 * with the full header array and with room for two headers only. */
#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/http1.c"
#include "tests/unit/proto/http1_ref.h"

static void check_slice(http1_str s, const char *buf, size_t len)
{
    assert(s.len == 0 || (s.p >= buf && s.p + s.len <= buf + len));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* A copy the size of the input, so ASan sees any read past it. */
    char *buf = malloc(size ? size : 1);
    memcpy(buf, data, size);
    http1_header hdrs[HTTP1_MAX_HEADERS];
    http1_request req;
    assert(http1_ref_agrees(buf, size, HTTP1_MAX_HEADERS));
    assert(http1_ref_agrees(buf, size, 2));
    int n = http1_parse_request(buf, size, &req, hdrs, HTTP1_MAX_HEADERS);
    assert(n == HTTP1_BAD || n == HTTP1_PARTIAL || n == HTTP1_TOO_MANY_HEADERS ||
           (n > 0 && (size_t)n <= size));
    if (n > 0) {
        check_slice(req.method, buf, size);
        check_slice(req.target, buf, size);
        check_slice(req.path, buf, size);
        check_slice(req.query, buf, size);
        static const char *const names[] = {"cursor", "limit", "a", "reeld-org"};
        for (size_t k = 0; k < sizeof(names) / sizeof(names[0]); k++) {
            http1_str v = http1_query_param(req.query, names[k]);
            if (v.p != NULL)
                check_slice(v, buf, size);
        }
        assert(req.num_headers <= HTTP1_MAX_HEADERS);
        for (size_t i = 0; i < req.num_headers; i++) {
            check_slice(req.headers[i].name, buf, size);
            check_slice(req.headers[i].value, buf, size);
            assert(req.headers[i].name.len > 0);
        }
        http1_framing fr;
        int f = http1_framing_of(&req, &fr);
        assert(f == 0 || f == HTTP1_BAD);
        if (f == 0) {
            assert(!(fr.chunked && fr.content_length >= 0));
        }
        /* The body, decoded as chunked in place, fed in steps of 1..16 bytes. */
        char *body = buf + n;
        size_t left = size - (size_t)n, src = 0, dst = 0;
        http1_chunked d;
        memset(&d, 0, sizeof(d));
        unsigned step_seed = size > 0 ? (unsigned char)buf[0] : 1;
        while (src < left) {
            size_t step = 1 + (step_seed = step_seed * 1103515245u + 12345u) % 16;
            if (step > left - src)
                step = left - src;
            size_t consumed, produced;
            int r = http1_chunked_decode(&d, body + src, step, &consumed, body + dst, &produced);
            assert(r == 0 || r == 1 || r == HTTP1_BAD);
            if (r == HTTP1_BAD)
                break;
            assert(consumed <= step && produced <= consumed);
            src += consumed;
            dst += produced;
            assert(dst <= src);
            if (r == 1)
                break;
            assert(consumed == step);
        }
    }
    free(buf);
    return 0;
}
