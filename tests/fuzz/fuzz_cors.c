/* libFuzzer target for the CORS checks (proto/cors.c): the input is split into an allowlist,
 * an Origin, a requested method and a requested header list at NUL bytes.
 *
 * Checks: nothing reads past its slice; an answer is NUL-terminated, fits its buffer and ends
 * in CRLF; a refused origin gets no lines; a preflight allowed for an origin implies its
 * response lines are allowed too. */
#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/cors.c"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *part[4] = {"", "", "", ""};
    size_t len[4] = {0, 0, 0, 0};
    char *buf = malloc(size + 1);
    memcpy(buf, data, size);
    buf[size] = '\0';
    size_t at = 0;
    for (int i = 0; i < 4 && at <= size; i++) {
        part[i] = buf + at;
        size_t n = strnlen(buf + at, size - at);
        len[i] = n;
        at += n + 1;
    }
    cors_policy p;
    char err[128];
    if (cors_parse(&p, part[0], "X", err, sizeof(err)) == 0) {
        static const char *const hdrs[] = {"content-type", "range", NULL};
        char out[512];
        int n = cors_response_lines(&p, part[1], len[1], "ETag", out, sizeof(out));
        assert(n >= -ENOSPC && n < (int)sizeof(out));
        if (n > 0)
            assert(strlen(out) == (size_t)n && out[n - 1] == '\n');
        else
            assert(out[0] == '\0');
        int allowed = n > 0;
        n = cors_preflight(&p, part[1], len[1], part[2], len[2], part[3], len[3], "GET, PUT", hdrs,
                           out, sizeof(out));
        assert(n >= -ENOSPC && n < (int)sizeof(out));
        if (n > 0)
            assert(allowed && strlen(out) == (size_t)n && out[n - 1] == '\n');
    }
    free(buf);
    return 0;
}
