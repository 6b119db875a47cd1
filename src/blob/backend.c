/* Opening the configured blob backend. See backend.h. */
#include "src/blob/backend.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

int blob_backend_open(blob_backend *b, const rd_config *cfg, rd_loop *const *loops, int nloops,
                      char *err, size_t errlen)
{
    memset(b, 0, sizeof(*b));
    int r = blob_aio_open(cfg, loops, nloops, 0, &b->aio, err, errlen);
    if (r < 0)
        return r;
    b->s3 = blob_aio_client(b->aio, loops[0]);
    if (cfg->copy_part_size > 0)
        blob_aio_set_copy_parts(b->aio, (uint64_t)cfg->copy_part_size);
    b->blob = blob_open(b->aio);
    return 0;
}

void blob_backend_close(blob_backend *b)
{
    blob_close(b->blob);
    blob_aio_close(b->aio); /* and its client */
    memset(b, 0, sizeof(*b));
}
