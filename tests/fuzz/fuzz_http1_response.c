/* libFuzzer target for the client's response-head parser (proto/http1_response.c).
 *
 * Checks: results stay within their contract, every header slice lies inside the input, the
 * body kind agrees with the framing found, and a header looked up is one of those parsed. */
#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/http1_response.c"

static void check_slice(http1_str s, const char *buf, size_t len)
{
    assert(s.len == 0 || (s.p >= buf && s.p + s.len <= buf + len));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *buf = malloc(size ? size : 1);
    memcpy(buf, data, size);
    http1_header hdrs[16];
    http1_response r;
    int n = http1_parse_response(buf, size, &r, hdrs, 16);
    assert(n == HTTP1_BAD || n == HTTP1_PARTIAL || n == HTTP1_TOO_MANY_HEADERS ||
           (n > 0 && (size_t)n <= size));
    if (n > 0) {
        assert(r.status >= 100 && r.status <= 999 && r.num_headers <= 16);
        for (size_t i = 0; i < r.num_headers; i++) {
            check_slice(r.headers[i].name, buf, size);
            check_slice(r.headers[i].value, buf, size);
        }
        http1_body k = http1_body_kind(&r, 0);
        assert(k != HTTP1_BODY_LENGTH || r.content_length >= 0);
        assert(k != HTTP1_BODY_CHUNKED || r.chunked);
        assert(http1_body_kind(&r, 1) == HTTP1_BODY_NONE);
        size_t vl;
        const char *v = http1_response_header(&r, "etag", &vl);
        assert(v == NULL || (v >= buf && v + vl <= buf + size));
    }
    free(buf);
    return 0;
}
