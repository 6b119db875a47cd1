/* libFuzzer target for the download's Content-Disposition and query flag (proto/disposition.c):
 * the input is the uploaded name and, after the first NUL, a query string.
 *
 * Checks: nothing reads past its slice; the value is NUL-terminated, fits its buffer, holds no
 * control byte, exactly two '"' (the quoted filename's), and after filename*= only attr-chars
 * and %XX; a bigger buffer gives the same value a smaller one could not hold. */
#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/disposition.c"
#include "proto/http1.c"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t nl = strnlen((const char *)data, size);
    char *name = malloc(nl ? nl : 1);
    memcpy(name, data, nl);
    size_t ql = nl < size ? size - nl - 1 : 0;
    char *q = malloc(ql ? ql : 1);
    memcpy(q, data + (nl < size ? nl + 1 : size), ql);
    int f = disposition_query_flag(q, ql, "download");
    assert(f == 0 || f == 1);
    const char *v = NULL;
    size_t vl = 0;
    if (disposition_query_param(q, ql, "name", &v, &vl))
        assert(v >= q && v + vl <= q + ql && memchr(v, '&', vl) == NULL);

    char big[2048], small[64];
    int n = disposition_attachment(big, sizeof(big), name, nl, ".mp4");
    assert(n > 0 && (size_t)n < sizeof(big) && big[n] == '\0');
    int quotes = 0;
    for (int i = 0; i < n; i++) {
        assert((uint8_t)big[i] >= 0x20 && (uint8_t)big[i] < 0x7F);
        quotes += big[i] == '"';
    }
    assert(quotes == 2);
    const char *close = strrchr(big, '"'); /* the quoted name's end: the name holds no '"' */
    assert(strncmp(close, "\"; filename*=UTF-8''", 20) == 0);
    for (const char *p = close + 20; *p; p++) {
        if (*p == '%') {
            assert(strchr("0123456789ABCDEF", p[1]) && p[1] && strchr("0123456789ABCDEF", p[2]) &&
                   p[2]);
            p += 2;
        } else {
            assert(attr_char((uint8_t)*p));
        }
    }
    int m = disposition_attachment(small, sizeof(small), name, nl, ".mp4");
    assert(m == -ENOSPC || (m == n && memcmp(small, big, (size_t)n + 1) == 0));
    free(name);
    free(q);
    return 0;
}
