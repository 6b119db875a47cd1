/* webhook-worker: delivers webhook events, the worker side of the dispatcher's protocol for
 * jobs of kind "webhook" (one job per event; its asset_id is the event's row).
 *
 * A job goes: JOB_ASSIGN → the event and its org's endpoint (STORE_WEBHOOK_EVENT) → for
 * asset.ready the renditions (STORE_RENDITION_LIST), for export.ready a signed download link
 * (the event names the export) → the JSON body, signed (Reeld-Signature,
 * proto/webhook.h) → the endpoint's name resolved, every address checked (no private address
 * unless WEBHOOK_ALLOW_PRIVATE: DNS rebinding cannot reach inside) → one POST over HTTP or
 * HTTPS within WEBHOOK_TIMEOUT_MS → the attempt recorded (STORE_WEBHOOK_ATTEMPT) → JOB_DONE.
 * 2xx succeeds. A timeout, a connection error, 408, 429, 5xx (anything but another 4xx) is
 * retried by the dispatcher after the worker's own jittered exponential backoff
 * (WEBHOOK_RETRY_BASE_MS doubling to WEBHOOK_RETRY_MAX_MS) until WEBHOOK_MAX_ATTEMPTS; another
 * 4xx, a private address, a deleted endpoint end the job at once (dead).
 *
 * A thread actor: the delivery blocks (getaddrinfo, connect, TLS, the answer), one at a time,
 * bounded by the timeout. WEBHOOK_WORKERS of them per node.
 *
 * owns:  a store client, the job it delivers.
 * takes: MSG_JOB_ASSIGN (MSG_JOB_CANCEL is ignored: a delivery ends within the timeout).
 * sends: MSG_JOB_PULL, MSG_JOB_DONE to the dispatcher; MSG_STORE through its store client.
 * never: sends to an address it has not checked; follows redirects; logs a secret. */
#ifndef REELD_ACTORS_WEBHOOK_WORKER_H
#define REELD_ACTORS_WEBHOOK_WORKER_H

#include "src/rt/actor.h"
#include "src/rt/config.h"
#include "src/rt/runtime.h"

typedef struct webhook_workers webhook_workers;

/* Spawns cfg->webhook_workers workers (none when 0) pulling from `dispatcher`, their store
 * clients on rt's first loop. 0, or -errno with one line in `err`. */
int webhook_workers_start(const rd_config *cfg, rd_runtime *rt, rd_actor *dispatcher,
                          rd_actor *store, webhook_workers **out, char *err, size_t errlen);

/* Before rt_halt: stops the workers (a delivery in flight ends first, within the timeout). */
void webhook_workers_stop(webhook_workers *w);

/* After the loops have stopped. NULL is a no-op. */
void webhook_workers_free(webhook_workers *w);

/* 1 when an attempt that got HTTP `status` (0: none) is worth retrying. */
int webhook_retryable(int status);

#endif
