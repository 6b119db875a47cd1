/* The embedded object store's HTTP face: presigned PUT, GET and HEAD under /blob/{bucket}/{key}
 * for the fs blob backend, so clients upload and download with the same SigV4 URLs they would
 * use against S3 (reeld's own, or any S3 client's such as botocore's generate_presigned_url).
 *
 * A loop actor: every file-system call goes through the asynchronous blob store (src/blob/aio.h)
 * on its loop's io_uring. PUT bodies arrive streamed (RD_HTTP_STREAM_BODY) and are written into
 * a pipe that the store's PUT reads into a temp file, which becomes the object on the last
 * byte (each chunk acknowledged to the listener once the pipe took it: back-pressure without a
 * thread); GET bodies leave as ranged GETs of the store (512 KiB) whose 256 KiB chunks go out
 * as parts as they come, a range started only while fewer than two parts are unacknowledged, so
 * a slow client holds at most 768 KiB, not the object. Errors are S3's XML
 * documents (AccessDenied, SignatureDoesNotMatch, ...) since S3 clients parse those. */
#ifndef REELD_ACTORS_BLOB_SERVER_H
#define REELD_ACTORS_BLOB_SERVER_H

#include <stdint.h>

#include "actors/http_listener.h"
#include "src/blob/aio.h"
#include "src/blob/fs.h"
#include "src/rt/config.h"

typedef struct blob_server blob_server;

/* Spawns the actor on `loop` with the fs blob store `store` (borrowed; a client on `loop`;
 * outlives the actor) and the credentials of `cfg` (see src/urlsign.h), and registers
 * /blob/{bucket}/{key...} on `routes` with REELD_MAX_UPLOAD_BYTES as the body limit. 0 with
 * *out set, or -errno with one sentence in `err` (then blob_server_free what *out holds). */
int blob_server_start(blob_aio *store, rd_loop *loop, const rd_config *cfg, rd_http_routes *routes,
                      blob_server **out, char *err, size_t errlen);

/* After its loop has stopped: closes the unfinished uploads' pipes (the store kept nothing of
 * them: a temp file is renamed only on the last byte) and frees the rest. NULL is a no-op. */
void blob_server_free(blob_server *bs);

#endif
