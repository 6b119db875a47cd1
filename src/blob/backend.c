/* Opening the configured blob backend. See backend.h. */
#include "src/blob/backend.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

int blob_backend_open(blob_backend *b, const rd_config *cfg, rd_loop *loop, char *err,
                      size_t errlen)
{
    memset(b, 0, sizeof(*b));
    if (cfg->s3_endpoint == NULL)
        return blob_open_fs(&b->blob, cfg->data_dir, err, errlen);
    int tls = strncmp(cfg->s3_endpoint, "https://", 8) == 0;
    int r = tls ? tls_anchors_load(&b->anchors, TLS_SYSTEM_CA_FILE, err, errlen) : 0;
    s3_config sc = {.endpoint = cfg->s3_endpoint,
                    .region = cfg->s3_region,
                    .access_key_id = cfg->s3_access_key_id,
                    .secret_access_key = cfg->s3_secret_access_key,
                    .anchors = tls ? &b->anchors : NULL};
    if (r == 0)
        r = s3_client_create(&b->s3, loop, &sc, err, errlen);
    if (r == 0)
        r = blob_open_s3(&b->blob, b->s3);
    if (r == 0 && cfg->copy_part_size > 0)
        blob_set_copy_parts(b->blob, (uint64_t)cfg->copy_part_size);
    if (r < 0) {
        if (err[0] == '\0')
            snprintf(err, errlen, "cannot open S3_ENDPOINT: %s", strerror(-r));
        blob_backend_close(b);
    }
    return r;
}

void blob_backend_close(blob_backend *b)
{
    blob_close(b->blob);
    s3_client_destroy(b->s3);
    tls_anchors_free(&b->anchors);
    memset(b, 0, sizeof(*b));
}
