/* libFuzzer target for the JSON reader (proto/json.c).
 *
 * Checks: token offsets stay inside the input, every subtree ends after it starts, every string
 * token decodes (or is refused for a NUL) into a NUL-terminated buffer, and a document the
 * writer re-emits from decoded strings parses again. */
#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/json.c"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *buf = malloc(size ? size : 1);
    memcpy(buf, data, size);
    json_tok t[256];
    int n = json_parse(buf, size, t, 256);
    char out[4096];
    json_writer w;
    json_writer_init(&w, out, sizeof(out));
    json_array_begin(&w);
    for (int i = 0; i < n; i++) {
        assert((size_t)t[i].start + t[i].len <= size);
        assert(t[i].end > (uint32_t)i && t[i].end <= (uint32_t)n);
        if (t[i].type == JSON_STRING) {
            char s[512];
            int k = json_string(buf, &t[i], s, sizeof(s));
            assert(k == -EINVAL || k == -ENOSPC || (k >= 0 && strlen(s) == (size_t)k));
            if (k >= 0)
                json_str(&w, s);
        } else if (t[i].type == JSON_NUMBER) {
            int64_t v;
            if (json_int(buf, &t[i], &v) == 0)
                json_int64(&w, v);
        }
    }
    json_array_end(&w);
    if (json_writer_finish(&w) > 0) {
        json_tok again[256];
        int m = json_parse(out, strlen(out), again, 256);
        assert(m > 0 || m == -ENOSPC);
    }
    free(buf);
    return 0;
}
