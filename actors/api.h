/* The upload → promote API: presigned uploads, multipart completion, promotion to masters,
 * playback links, the OpenAPI document; with bearer auth, CORS and rate limits in front.
 *
 *   POST /api/uploads                   {filename, content_type, size} → 201 {asset_id, upload}
 *   POST /api/uploads/{id}/complete     {parts:[{n, etag}]} (S3 multipart) → 200
 *   POST /api/assets/{id}/promote       → 202 {job_id} (idempotent)
 *   GET  /api/assets/{id}               → 200 the asset
 *   DELETE /api/assets/{id}             → 204, or 202 {master_retained_until} (idempotent)
 *   GET  /api/assets?cursor=&limit=&state= → 200 the caller's assets, newest first
 *   GET  /api/assets/{id}/playback      → 200 {url, expires_at}: a signed link to the edge
 *   GET  /api/docs                      → the OpenAPI 3.1 document (no auth)
 *   OPTIONS on each of them             → CORS preflight
 *
 * Two thread actors of this code serve them: the writers (uploads, complete, promote, delete: HEAD,
 * CopyObject and the multipart calls block, so they cannot run on a loop) and the readers
 * (the asset, its playback link, the listing, the document: one store read each). A promote
 * waiting seconds on a slow object store then holds up other writes only, never a status
 * poll or a playback link. Each keeps its own rate-limit buckets, exact for its routes in the
 * whole process. Assets live in the store only (any node, or this one after a restart,
 * answers for them). A bound mailbox turns a flood into 503s. */
#ifndef REELD_ACTORS_API_H
#define REELD_ACTORS_API_H

#include <stddef.h>

#include "actors/http_listener.h"
#include "src/rt/config.h"
#include "src/rt/loop.h"

/* Opens the blob backend of `cfg` (S3 through a client on `loop`, or files in the data
 * directory), spawns the API actor on its own thread and registers its routes. Assets and jobs
 * are written to the store through `dispatcher` (actors/job_dispatcher.h: it forwards MSG_STORE
 * and wakes itself for new jobs), over a store client bridged on `loop`. Logs once when the API
 * is open to loopback clients only (no REELD_API_KEYS, no JWT_SECRET). 0, or -errno with one
 * sentence in `err`. */
enum { API_WRITES, API_READS };
int api_start(const rd_config *cfg, rd_loop *loop, rd_actor *dispatcher, rd_http_routes *routes,
              int part, rd_actor **out, char *err, size_t errlen);

/* Shutdown: actor_stop and actor_join while the loops still run (the request being handled
 * finishes, the store client's bridge stops), then rt_stop, then api_free: it closes the blob
 * backend and the S3 client, whose loop has stopped by then. NULL is a no-op. */
void api_free(rd_actor *a);

#endif
