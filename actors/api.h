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
 * rate limits: one table for the whole API, shared by the fronts) and answers every read
 * itself, with asynchronous store reads (and HEADs of a ready asset's outputs through the
 * asynchronous blob store), as many in flight as clients ask: no read waits on a thread, nor
 * do the webhook's requests (one store statement each), nor an upload's creation (its multipart
 * start through the asynchronous blob store, then one store statement), nor its completion,
 * nor a promote (the staging object's HEAD and the copy to masters through the asynchronous
 * blob store, between store statements): a promote waiting minutes on the copy of a large
 * master holds no thread; nor an export's cancel, nor a new export or clip (the source's
 * playlists read through the asynchronous blob store, between store statements), nor an
 * asset's deletion (its objects listed and deleted through the asynchronous blob store). The
 * captions' writes (a track's many objects and the master's republishing wait on object
 * storage through its blocking face) it hands to the writer thread with the fewest requests
 * waiting (API_WRITERS of them). So nothing waiting on a slow object store holds up a status poll,
 * a playback link, a listing or another writer's requests. Assets live in the store only (any node,
 * or this one after a restart, answers for them). Bound mailboxes turn a flood into 503s. */
#ifndef REELD_ACTORS_API_H
#define REELD_ACTORS_API_H

#include <stddef.h>

#include "actors/http_listener.h"
#include "src/rt/config.h"
#include "src/rt/loop.h"

typedef struct rd_api rd_api;

/* Starts the API: the fronts' part (its progress streams on loop 1, or 0; a blob client on
 * every loop; it checks at start that the masters bucket has Object Lock when retention is
 * asked for, and the first loop's front runs the periodic sweeps), API_WRITERS writers' threads
 * for the captions (spread over the loops), each with its own blob backend (S3 through a
 * client on its loop, or files in the data directory), and a front on each of `loops`;
 * registers the routes, all owned by the fronts. The writers write to the store through
 * `dispatcher` (actors/job_dispatcher.h: it forwards MSG_STORE and wakes itself for new jobs)
 * over each thread's store client; the fronts ask `store` directly. Logs once when the API is
 * open to loopback clients only (no REELD_API_KEYS, no JWT_SECRET). 0, or -errno with one
 * sentence in `err` (then api_stop and api_free what `out` holds). */
int api_start(const rd_config *cfg, rd_loop *const *loops, int nloops, rd_actor *dispatcher,
              rd_actor *store, rd_http_routes *routes, rd_api **out, char *err, size_t errlen);

/* Shutdown, while the loops still run: stops the threads and waits for them (the request being
 * handled finishes, the store clients' bridges stop). NULL is a no-op. */
void api_stop(rd_api *api);

/* After the loops have stopped: closes the blob backends and the S3 clients, frees the rest.
 * NULL is a no-op. */
void api_free(rd_api *api);

#endif
