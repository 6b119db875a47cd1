/* Token buckets per client and route class: RATE_LIMIT_MAX/WINDOW and the RL_* pairs.
 *
 * owns:  a fixed table of buckets (RATELIMIT_SLOTS), allocated once by ratelimit_create; no
 *        allocation afterwards, so a flood of new clients cannot grow memory: when the probe
 *        window is full, the bucket idle longest is reused (its client starts full again).
 * never: reads the clock (callers pass `now_ms`). A table may be shared between threads (the
 *        API's readers, one front per loop, share one): a mutex, held for one probe, guards it.
 *
 * A bucket holds up to `max` tokens and gains max / window tokens per second; a request takes
 * one. Client keys are opaque text (an org, an API key's org, an IP address), hashed with the
 * class id. */
#ifndef REELD_RATELIMIT_H
#define REELD_RATELIMIT_H

#include <stdint.h>

#define RATELIMIT_SLOTS 16384 /* buckets in the table (power of two) */
#define RATELIMIT_PROBE 8     /* slots searched per key */
#define RATELIMIT_KEY   64    /* bytes of a client key kept (longer keys are cut) */

typedef struct ratelimit ratelimit;

/* 0 or -ENOMEM. */
int ratelimit_create(ratelimit **out);
/* NULL is a no-op. */
void ratelimit_destroy(ratelimit *rl);

/* Takes one token for (class, client) with `max` per `window_s`. Returns 0 when allowed, or the
 * seconds to wait (>= 1) before a token is back. */
int ratelimit_take(ratelimit *rl, int cls, const char *client, int max, int window_s,
                   int64_t now_ms);

/* What ratelimit_take would answer now, taking nothing and creating no bucket: 0 when a token
 * is there (or the client has no bucket), else the seconds to wait. For limits that count only
 * some requests (failed authentication) but must refuse every request once spent. */
int ratelimit_peek(ratelimit *rl, int cls, const char *client, int max, int window_s,
                   int64_t now_ms);

#endif
