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
 * Every route is owned by one loop actor per loop, the "front": it admits each request (auth,
 * rate limits: one table for the whole API, shared by the fronts) and answers it itself, every
 * one an asynchronous chain of store requests and object storage requests (the blob store's
 * client on the front's own loop), as many in flight as clients ask: a status poll is one store
 * read, a promote waits minutes on the copy of a large master holding no thread, a caption
 * track's objects go up eight at a time, a deletion lists and deletes the asset's objects. The
 * API has no thread: nothing waiting on a slow object store or store holds up another request.
 * Assets live in the store only (any node, or this one after a restart, answers for them).
 * A flood turns into 503s: the store's bound mailbox for the reads, REELD_API_INFLIGHT_MAX for
 * the writes' chains in flight on a node. */
#ifndef REELD_ACTORS_API_H
#define REELD_ACTORS_API_H

#include <stddef.h>

#include "actors/http_listener.h"
#include "src/blob/aio.h"
#include "src/rt/config.h"
#include "src/rt/loop.h"

typedef struct rd_api rd_api;

/* Starts the API: its shared state (its progress streams on loop 1, or 0; a blob client on
 * every loop; it checks at start that the masters bucket has Object Lock when retention is
 * asked for) and a front on each of `loops` (the first loop's also runs the periodic sweeps);
 * registers the routes, all owned by the fronts. The fronts ask `store` directly, and
 * `dispatcher` (actors/job_dispatcher.h) for an export's cancel. Logs once when the API is open
 * to loopback clients only (no REELD_API_KEYS, no JWT_SECRET). 0, or -errno with one sentence
 * in `err` (then api_free what `out` holds). */
int api_start(const rd_config *cfg, rd_loop *const *loops, int nloops, rd_actor *dispatcher,
              rd_actor *store, rd_http_routes *routes, rd_api **out, char *err, size_t errlen);

/* The API's asynchronous blob store (a client on every loop; fs or S3 as configured), for the
 * embedded blob server to share: one store per process. Valid until api_free. */
blob_aio *api_blob_store(const rd_api *api);

/* After the loops have stopped: closes the blob backends and the S3 clients, frees the rest.
 * NULL is a no-op. */
void api_free(rd_api *api);

#endif
