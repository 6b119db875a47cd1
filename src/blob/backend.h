/* The blob backend a process's settings name, opened in one place: S3 (S3_ENDPOINT set: a
 * client on a loop, trusting the system CA bundle for https) or the fs backend under
 * REELD_DATA_DIR (embedded mode), both as the asynchronous store (src/blob/aio.h, for actors)
 * and its blocking face (src/blob/blob.h: the same requests, waited for by the threads that
 * block).
 *
 * owns:  the asynchronous store (which owns the S3 client and its trust anchors) and the
 *        blocking store, until blob_backend_close.
 * never: opens a connection before the first request (the client connects lazily). */
#ifndef REELD_BLOB_BACKEND_H
#define REELD_BLOB_BACKEND_H

#include <stddef.h>

#include "src/blob/aio.h"
#include "src/blob/blob.h"
#include "src/blob/s3.h"
#include "src/net/tls.h"
#include "src/rt/config.h"

typedef struct blob_backend {
    blob_aio *aio;    /* asynchronous: home loop is the first of the backend's loops */
    s3_client *s3;    /* the aio store's client of the home loop; NULL in embedded mode */
    blob_store *blob; /* blocking: over s3, or the fs backend */
} blob_backend;

/* Opens the backend of `cfg` for `loops` (an S3 client each): loops[0] is the home, where
 * the blocking face's requests and those of threads that are not a loop run; an actor on any
 * of `loops` may pass its own loop to aio.h and have its requests run there. Not on a loop
 * thread (DNS is resolved here). 0, or -errno with one sentence in `err`; `b` is then empty. */
int blob_backend_open(blob_backend *b, const rd_config *cfg, rd_loop *const *loops, int nloops,
                      char *err, size_t errlen);

/* After the clients' loops have stopped. An empty backend is a no-op. */
void blob_backend_close(blob_backend *b);

#endif
