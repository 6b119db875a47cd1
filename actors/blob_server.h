/* The embedded object store's HTTP face: presigned PUT, GET and HEAD under /blob/{bucket}/{key}
 * for the fs blob backend, so clients upload and download with the same SigV4 URLs they would
 * use against S3 (reeld's own, or any S3 client's such as botocore's generate_presigned_url).
 *
 * A thread actor (file-system calls block): PUT bodies arrive streamed (RD_HTTP_STREAM_BODY) and
 * go into a temp file that becomes the object on the last byte; GET bodies leave in 64 KiB parts
 * with acknowledgements, so a slow client holds a few hundred KiB, not the object. Errors are
 * S3's XML documents (AccessDenied, SignatureDoesNotMatch, ...) since S3 clients parse those. */
#ifndef REELD_ACTORS_BLOB_SERVER_H
#define REELD_ACTORS_BLOB_SERVER_H

#include <stdint.h>

#include "actors/http_listener.h"
#include "src/blob/fs.h"
#include "src/rt/config.h"

/* Spawns the actor on its own thread with the store `fs` (borrowed; outlives the actor) and the
 * credentials of `cfg` (see src/urlsign.h), and registers /blob/{bucket}/{key...} on `routes`
 * with REELD_MAX_UPLOAD_BYTES as the body limit. 0, or -errno with one sentence in `err`. */
int blob_server_start(blobfs *fs, const rd_config *cfg, rd_http_routes *routes, rd_actor **out,
                      char *err, size_t errlen);

/* Stop it with actor_stop, then actor_join: its fini aborts unfinished uploads (their temp
 * files go) and closes open downloads. */

#endif
