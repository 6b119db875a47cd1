/* progress-stream: live progress of assets as Server-Sent Events (GET /api/assets/{id}/events).
 *
 * The API authenticates the request, finds the asset in the caller's org, takes a place with
 * progress_stream_admit (429 when the node or the org has no room), starts the response (200,
 * text/event-stream, chunked) and hands the stream over with MSG_SSE_OPEN. From then on this
 * actor reads the asset from the store (through the dispatcher) every poll and sends, whenever
 * the asset's JSON (as GET /api/assets/{id}) changed, `event: progress`; once the asset is done,
 * one `event: ready` or `event: failed` (failed, or an upload that expired), and ends the
 * response. A comment every 15 s keeps proxies from closing an idle stream. The store is the
 * truth: whichever node runs the job, every API node's streams see its progress.
 *
 * Every event has an `id:` (progress_event_id): it grows with the job's attempt and progress,
 * so a client that reconnects with `Last-Event-ID` gets nothing it has already seen; a client
 * that saw the final event and reconnects gets 204, which tells EventSource to stop.
 *
 * owns:  the open streams (at most PROGRESS_STREAMS_MAX per node, REELD_SSE_MAX_PER_ORG of
 *        them for one org), and the count of places taken (shared with the API threads).
 * takes: MSG_SSE_OPEN, MSG_HTTP_PART_ACK (a client gone: the stream is dropped), store answers.
 * sends: MSG_HTTP_PART to listeners; MSG_STORE requests to the dispatcher.
 * never: blocks; keeps more than one store request in flight per stream. */
#ifndef REELD_ACTORS_PROGRESS_STREAM_H
#define REELD_ACTORS_PROGRESS_STREAM_H

#include "src/rt/actor.h"

#define PROGRESS_STREAMS_MAX 256

struct rd_asset;

/* The id of the event that shows `a` as it is: attempts * 1001 + progress per mille (1000 once
 * ready or failed). Never smaller for a later state of the same job. */
int64_t progress_event_id(const struct rd_asset *a);

/* 1 when `a` is ready, failed or expired: its stream ends with it. */
int progress_asset_final(const struct rd_asset *a);

/* Takes a place for one more stream of `org` (any thread): 0, -EBUSY (the node has
 * PROGRESS_STREAMS_MAX open) or -EUSERS (the org has `per_org` open). A place taken is given
 * back by the actor when its stream ends, or by progress_stream_release when MSG_SSE_OPEN
 * could not be sent. */
int progress_stream_admit(const char *org, int per_org);
void progress_stream_release(const char *org);

/* Spawns the actor on `loop`; it asks `dispatcher` for assets every `poll_ms`. 0 or -errno. */
int progress_stream_spawn(rd_loop *loop, rd_actor *dispatcher, int poll_ms, rd_actor **out);

/* After the loops have stopped: frees the actor's state. NULL is a no-op. */
void progress_stream_free(rd_actor *a);

#endif
