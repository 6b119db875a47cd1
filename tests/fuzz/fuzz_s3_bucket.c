/* libFuzzer target for the canonical form of bucket configuration documents
 * (proto/s3_bucket.c), which reads what an S3 server answers to GetBucketCors,
 * GetBucketLifecycleConfiguration and GetObjectLockConfiguration.
 *
 * Checks: the output is NUL-terminated within its buffer, its length agrees with strlen, every
 * line has a '=' and ends in '\n', the lines come sorted, and a buffer too small never
 * overflows. */
#include <assert.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/s3_bucket.c"
#include "proto/s3_wire.c"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *buf = malloc(size ? size : 1);
    memcpy(buf, data, size);
    static char out[S3BUCKET_MAX_DOC + 1];
    int n = s3bucket_canon(buf, size, out, sizeof(out));
    assert(n == -EINVAL || n == -E2BIG || (n >= 0 && (size_t)n == strlen(out)));
    if (n > 0) {
        const char *prev = NULL;
        size_t plen = 0;
        for (const char *l = out; *l;) {
            const char *nl = strchr(l, '\n');
            assert(nl != NULL && memchr(l, '=', (size_t)(nl - l)) != NULL);
            size_t len = (size_t)(nl - l);
            if (prev != NULL) {
                int c = memcmp(prev, l, plen < len ? plen : len);
                assert(c < 0 || (c == 0 && plen <= len));
            }
            prev = l;
            plen = len;
            l = nl + 1;
        }
    }
    /* A small buffer never overflows and is always a string. */
    char small[16];
    n = s3bucket_canon(buf, size, small, sizeof(small));
    assert(n < (int)sizeof(small) && (n < 0 || (size_t)n == strlen(small)));
    free(buf);
    return 0;
}
