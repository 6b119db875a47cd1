/* progress-stream: live progress of assets as Server-Sent Events (GET /api/assets/{id}/events).
 *
 * The API authenticates the request, finds the asset in the caller's org, starts the response
 * (200, text/event-stream, chunked) and hands the stream over with MSG_SSE_OPEN. From then on
 * this actor reads the asset from the store (through the dispatcher) every poll and sends an
 * `event: asset` with the asset's JSON (as GET /api/assets/{id}) whenever it changed, a comment
 * every 15 s to keep proxies from closing an idle stream, and ends the response after the
 * asset is ready or failed. The store is the truth: whichever node runs the job, every API
 * node's streams see its progress.
 *
 * owns:  the open streams (at most PROGRESS_STREAMS_MAX; beyond, a new one is ended at once
 *        with an `event: error`).
 * takes: MSG_SSE_OPEN, MSG_HTTP_PART_ACK (a client gone: the stream is dropped), store answers.
 * sends: MSG_HTTP_PART to listeners; MSG_STORE requests to the dispatcher.
 * never: blocks; keeps more than one store request in flight per stream. */
#ifndef REELD_ACTORS_PROGRESS_STREAM_H
#define REELD_ACTORS_PROGRESS_STREAM_H

#include "src/rt/actor.h"

#define PROGRESS_STREAMS_MAX 256

/* Spawns the actor on `loop`; it asks `dispatcher` for assets every `poll_ms`. 0 or -errno. */
int progress_stream_spawn(rd_loop *loop, rd_actor *dispatcher, int poll_ms, rd_actor **out);

/* After the loops have stopped: frees the actor's state. NULL is a no-op. */
void progress_stream_free(rd_actor *a);

#endif
