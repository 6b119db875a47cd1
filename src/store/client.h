/* A blocking way into the store for threads that are not loops: the `reeld job` commands and
 * the tests. A small bridge actor on a loop forwards each call with actor_request and hands the
 * answer back.
 *
 * owns:  the bridge actor's state (one call in flight at a time).
 * takes: MSG_STORE (or a MSG_JOB_CANCEL, when `store` is the dispatcher) from the calling
 *        thread, answers from the store.
 * sends: MSG_STORE requests to the store.
 * never: is used from a loop thread (store_client_call blocks). */
#ifndef REELD_STORE_CLIENT_H
#define REELD_STORE_CLIENT_H

#include <stdint.h>

#include "src/rt/actor.h"

typedef struct rd_store_client rd_store_client;

/* A client whose bridge runs on `loop` and talks to `store`. 0 or -errno. */
int store_client_create(rd_loop *loop, rd_actor *store, rd_store_client **out);

/* Sends `req` (a MSG_STORE; it belongs to the call from now on) and waits for the answer. Returns
 * the answer's status (0 or -errno; -ETIMEDOUT after `timeout_ms`) and, when `answer` is not
 * NULL, the answer message, which the caller frees with msg_free. */
int store_client_call(rd_store_client *c, rd_msg *req, uint32_t timeout_ms, rd_msg **answer);

/* Stops the bridge; no call may be in flight. NULL is a no-op. */
void store_client_destroy(rd_store_client *c);

#endif
