/* The fleet queue on Redis Streams (REDIS_URL, alias VALKEY_URL), driven by hiredis's
 * asynchronous API on the caller's loop: the connection's socket is polled through io_uring
 * and hiredis reads and writes only when the loop says it may.
 *
 * One stream per job kind (`reeld:jobs:<kind>`), one consumer group (`workers`), one consumer
 * per node (its lease owner name). A stream entry only says "job N may be due": PostgreSQL
 * stays the truth, and a worker runs a job only after claiming it there. So an entry read
 * twice, or published twice, costs a claim that finds nothing; an entry lost with Redis is
 * published again from PostgreSQL (the `reset` event says when).
 *
 * owns:  two connections (commands; blocking reads), reconnected with backoff (100 ms doubling
 *        to 2 s).
 * takes: calls from its owner (the dispatcher), on the owner's loop thread only.
 * sends: no messages: reads and resets come back as the owner's callbacks (rd_redisq_events),
 *        on the same thread.
 * never: blocks the loop (hostnames are resolved once at start, by redisq_parse_url, on the
 *        main thread); speaks TLS: rediss:// is refused with a clear line. */
#ifndef REELD_QUEUE_REDIS_H
#define REELD_QUEUE_REDIS_H

#include <stddef.h>
#include <stdint.h>

#include "proto/jobs.h"
#include "src/rt/loop.h"

typedef struct rd_redis_addr {
    char host[64]; /* numeric address */
    int port;
    int db;
    char password[128];
} rd_redis_addr;

/* A stream entry: the entry id (for XACK) and the job it announces. */
typedef struct rd_stream_entry {
    char id[32];
    int64_t job_id;
    char kind[RD_JOB_KIND_MAX];
} rd_stream_entry;

/* What the queue tells its owner, on the loop thread. */
typedef struct rd_redisq_events {
    void *ctx;
    /* A read (redisq_read or redisq_reclaim) finished: `n` entries (maybe 0), or err < 0. */
    void (*entries)(void *ctx, const char *kind, const rd_stream_entry *e, int n, int err);
    /* The consumer group had to be created: the stream is new or Redis lost it. Everything
     * queued must be published again from the store. Also called after each reconnect. */
    void (*reset)(void *ctx);
} rd_redisq_events;

typedef struct rd_redisq rd_redisq;

/* Parses redis://[:password@]host[:port][/db], resolving host to an address now (blocking:
 * main thread only). rediss:// gives -EPROTONOSUPPORT and one line in `err`. 0 or -errno. */
int redisq_parse_url(const char *url, rd_redis_addr *out, char *err, size_t errlen);

/* Connects (in the background) on `loop`, the calling thread's. `consumer` names this node.
 * `ev` is copied. 0 or -errno. */
int redisq_create(rd_loop *loop, const rd_redis_addr *addr, const char *consumer,
                  const rd_redisq_events *ev, rd_redisq **out);
/* Closes both connections; the struct is freed once their polls have ended. NULL: no-op. */
void redisq_destroy(rd_redisq *q);

/* 1 when the command connection is up and the group exists. */
int redisq_ready(const rd_redisq *q);

/* XADD of job `id` to its kind's stream (trimmed to about 1,000,000 entries). Fire and forget:
 * a lost publish is repaired by the store's republish sweep. 0 or -ENOTCONN. */
int redisq_publish(rd_redisq *q, int64_t id, const char *kind);

/* One XREADGROUP of the streams of `kinds` (up to `count` new entries from each), waiting up
 * to `block_ms` for any of them: a node with room for several kinds waits on all at once.
 * One read at a time: -EBUSY while one is in flight, -ENOTCONN when down. The answer comes by
 * `entries`, once per stream that had entries (in one go, on the same turn of the loop), or
 * once with n = 0 (for the first kind) when the read timed out empty or failed. */
int redisq_read(rd_redisq *q, const char *const *kinds, int nkinds, int count, int block_ms);
int redisq_reading(const rd_redisq *q);

/* XAUTOCLAIM of up to `count` entries of `kind` pending longer than `min_idle_ms` with any
 * consumer (a node that died): they become this node's; the answer comes by `entries`. It
 * runs on the command connection, alongside a blocking redisq_read: -EBUSY only while another
 * reclaim is in flight. */
int redisq_reclaim(rd_redisq *q, const char *kind, int count, int64_t min_idle_ms);

/* XACK of entry `entry_id` of `kind`'s stream. 0 or -ENOTCONN. */
int redisq_ack(rd_redisq *q, const char *kind, const char *entry_id);

/* Asks for XLEN and XPENDING of `kind`'s stream; redisq_stats then returns them. */
void redisq_refresh_stats(rd_redisq *q, const char *kind);
/* Last known stream length and pending count (-1 when not known yet). */
void redisq_stats(const rd_redisq *q, int64_t *length, int64_t *pending);

#endif
