/* The fs blob backends' metadata file. See blob_meta.h. */
#include "proto/blob_meta.h"

#include <errno.h>
#include <string.h>

#include "proto/hmac.h"
#include "proto/wbuf.h"

int blob_meta_format(char *out, size_t cap, const uint8_t md5[16], const char *content_type)
{
    char hex[33];
    hmac_hex(hex, md5, 16);
    rd_wbuf w = wbuf_init(out, cap);
    wbuf_chr(&w, '"');
    wbuf_put(&w, hex, 32);
    wbuf_str(&w, "\"\n");
    wbuf_str(&w, content_type);
    wbuf_chr(&w, '\n');
    return wbuf_end(&w);
}

/* text[0..len) into out[0..cap), cut to fit, terminated. */
static void put(char *out, size_t cap, const char *text, size_t len)
{
    if (cap == 0)
        return;
    if (len > cap - 1)
        len = cap - 1;
    memcpy(out, text, len);
    out[len] = '\0';
}

void blob_meta_parse(const char *text, size_t n, char *etag, size_t etag_cap, char *content_type,
                     size_t type_cap)
{
    put(etag, etag_cap, "", 0);
    put(content_type, type_cap, BLOB_META_DEFAULT_TYPE, strlen(BLOB_META_DEFAULT_TYPE));
    const char *nl = memchr(text, '\n', n);
    if (nl == NULL)
        return;
    /* A NUL inside a line ends it, as the C strings these become would. */
    size_t el = (size_t)(nl - text);
    const char *z = memchr(text, '\0', el);
    put(etag, etag_cap, text, z ? (size_t)(z - text) : el);
    const char *ct = nl + 1, *end = memchr(ct, '\n', n - (size_t)(ct - text));
    if (end == NULL || end == ct)
        return;
    size_t cl = (size_t)(end - ct);
    z = memchr(ct, '\0', cl);
    if (z != NULL)
        cl = (size_t)(z - ct);
    if (cl > 0)
        put(content_type, type_cap, ct, cl);
}
