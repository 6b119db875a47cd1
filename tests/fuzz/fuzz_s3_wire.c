/* libFuzzer target for S3 error documents, element text and dates (proto/s3_wire.c).
 *
 * Checks: outputs are NUL-terminated within their buffers, lengths agree with strlen, and the
 * one-sentence description always fits. */
#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/s3_wire.c"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *buf = malloc(size ? size : 1);
    memcpy(buf, data, size);
    s3wire_error e;
    if (s3wire_parse_error(buf, size, &e) == 0) {
        assert(strlen(e.code) < sizeof(e.code) && strlen(e.message) < sizeof(e.message));
        char line[128];
        int n = s3wire_describe(line, sizeof(line), "GET", "b", "k", 404, &e, 0);
        assert(n >= 0 && (size_t)n < sizeof(line) && strlen(line) == (size_t)n);
    }
    char small[8];
    int n = s3wire_xml_text(buf, size, "UploadId", small, sizeof(small));
    assert(n == -ENOENT || (n >= 0 && (size_t)n == strlen(small) && n < 8));
    int64_t t;
    s3wire_parse_http_date(buf, size, &t);
    /* An ISO date that parses formats back to one that parses to the same time. */
    if (s3wire_parse_iso8601(buf, size, &t) == 0 && t >= 0) {
        char iso[32];
        int64_t again = -1;
        if (s3wire_iso8601(t, iso, sizeof(iso)) == 0) {
            assert(s3wire_parse_iso8601(iso, strlen(iso), &again) == 0 && again == t);
        }
    }
    free(buf);
    return 0;
}
