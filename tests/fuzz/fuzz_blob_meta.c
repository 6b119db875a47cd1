/* libFuzzer target for the fs blob backends' metadata file (proto/blob_meta.c): any bytes a
 * metadata file could hold (a torn write, another program's file).
 *
 * Checks: nothing is read past the input; both outputs are terminated within their buffers and
 * hold no line break; a content type is never empty (the default stands in); what
 * blob_meta_format writes parses back to the same ETag and type. */
#include <assert.h>
#include <stdint.h>
#include <string.h>

#include "proto/blob_meta.c"
#include "proto/hmac.c"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char etag[80], type[128], small_e[8], small_t[8];
    blob_meta_parse((const char *)data, size, etag, sizeof(etag), type, sizeof(type));
    assert(memchr(etag, '\0', sizeof(etag)) != NULL && memchr(type, '\0', sizeof(type)) != NULL);
    assert(strchr(etag, '\n') == NULL && strchr(type, '\n') == NULL && type[0] != '\0');
    blob_meta_parse((const char *)data, size, small_e, sizeof(small_e), small_t, sizeof(small_t));
    assert(strncmp(small_e, etag, sizeof(small_e) - 1) == 0);
    assert(strncmp(small_t, type, sizeof(small_t) - 1) == 0);

    /* A round trip: the first 16 bytes as the MD5, the rest (up to a CR or LF) as the type. */
    if (size >= 16) {
        char ct[100];
        size_t cl = 0;
        for (size_t i = 16; i < size && cl < sizeof(ct) - 1; i++) {
            char c = (char)data[i];
            if (c == '\r' || c == '\n' || c == '\0')
                break;
            ct[cl++] = c;
        }
        ct[cl] = '\0';
        char text[BLOB_META_MAX];
        int n = blob_meta_format(text, sizeof(text), data, ct);
        assert(n > 0 && (size_t)n < sizeof(text));
        blob_meta_parse(text, (size_t)n, etag, sizeof(etag), type, sizeof(type));
        char hex[33];
        hmac_hex(hex, data, 16);
        assert(strlen(etag) == 34 && etag[0] == '"' && memcmp(etag + 1, hex, 32) == 0);
        assert(strcmp(type, cl ? ct : BLOB_META_DEFAULT_TYPE) == 0);
    }
    return 0;
}
