/* The edge: the cache-manager that serves signed /hls links from a disk cache in front of the
 * origin (the previews bucket).
 *
 *   GET|HEAD /hls/{exp}/{sig}/{asset}/{path...}   a playlist, segment or poster of an asset
 *
 * The edge checks links and never signs one: GET /api/assets/{id}/playback is the API's
 * (actors/api.c: auth, the caller's org, a promoted asset), so a node with only the edge role
 * has no playback route. Tokens (proto/edge_token.h) are checked before anything else: bad →
 * 403, expired → 410; each shard keeps the tokens it verified lately, so the links a player
 * repeats cost a compare, not an HMAC. Segments and posters are served from CACHE_DIR, bounded by
 * CACHE_MAX_BYTES with LRU eviction; a miss is fetched from the origin once however many clients
 * ask at the same time (single-flight), streamed to all of them while it is written to a temporary
 * file that is renamed into place when complete. Playlists are read from the origin for every
 * request and never written to disk: one read serves the requests that arrive while it is
 * under way (or in the wait for completions that brings its end), no later one. One Range per
 * request (206/416), ETag/If-None-Match and Last-Modified/If-Modified-Since (304). See
 * cache_manager.c for the sharding.
 *
 * Signing key: EDGE_SIGNING_KEY; during a rotation EDGE_SIGNING_KEY_PREVIOUS is accepted for
 * EDGE_KEY_GRACE_SEC after start. With no EDGE_SIGNING_KEY, reeld generates a random key once
 * into REELD_DATA_DIR/edge.key (0600, src/edge/edgekey.h), so links survive restarts.
 *
 * State: per instance (rd_edge, made by cache_start and freed by cache_free), none global, so
 * one edge can be started alone, or two in one process. */
#ifndef REELD_ACTORS_CACHE_MANAGER_H
#define REELD_ACTORS_CACHE_MANAGER_H

#include <stddef.h>
#include <stdint.h>

#include "actors/http_listener.h"
#include "src/rt/config.h"
#include "src/rt/loop.h"

/* One edge: its settings, signing keys, origin, metric series and shards (one cache-manager per
 * loop). All its state is per instance: two edges in one process (each with its own CACHE_DIR
 * and route table) share nothing but the process's metrics registry. */
typedef struct rd_edge rd_edge;

/* Loads the signing keys (creating DATA_DIR/edge.key when needed), opens the origin, rebuilds
 * each shard's index from CACHE_DIR (on the calling thread, before the loops serve: the only
 * blocking disk work the edge does), spawns one cache-manager per loop and registers its routes
 * on `routes`. Deleted assets (DELETE /api/assets/{id}) are learnt from the store through
 * `store` (the job dispatcher; NULL: none): shard 0 asks every second, and every shard then
 * refuses their links with 404 and drops their cached objects. 0, or -errno with one sentence
 * in `err`. In both cases *out is the edge (on failure, what was made of it, some shards
 * possibly spawned): free it with cache_free once the loops have stopped. */
int cache_start(const rd_config *cfg, rd_loop *const *loops, int nloops, rd_actor *store,
                rd_http_routes *routes, rd_edge **out, char *err, size_t errlen);

/* Frees what the edge's cache-managers hold, and the edge, once the loops have stopped. NULL
 * is a no-op. */
void cache_free(rd_edge *e);

#endif
