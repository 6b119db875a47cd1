/* The job dispatcher: hands durable jobs to idle workers, one node's share of the fleet.
 *
 * Pull: a worker sends MSG_JOB_PULL ("I can take N jobs of kind K", or "of any of the kinds
 * K1,K2": one credit for slots that run either); the dispatcher claims at
 * most that many from the store (a conditional UPDATE: queued and due, or leased by someone
 * whose lease expired) and sends one MSG_JOB_ASSIGN per job. It never claims more than its
 * workers asked for. While a job runs, the dispatcher renews its lease by heartbeat (every
 * lease/3, at most once a second, with the latest progress: progress writes are at most one a
 * second per job), but only while the work moves: a worker that reports no progress for a whole
 * lease is told to stop and the lease left to expire. A heartbeat that finds the job cancelled, or
 * leased to someone else, tells the worker to stop (MSG_JOB_CANCEL). MSG_JOB_DONE writes the
 * outcome, fenced by owner and attempt: succeeded, or failed and retried after a jittered
 * exponential backoff, or dead after max_attempts with the last error.
 *
 * Queues: embedded (no REDIS_URL), the dispatcher claims straight from the store, woken by
 * jobs created through it and by a short poll (jobs created by other nodes). Fleet (REDIS_URL),
 * new jobs are published from the store's outbox to Redis Streams; the dispatcher reads its
 * kinds' streams (XREADGROUP, one consumer per node) only while it has idle workers, claims the
 * announced jobs by id, XACKs when done, and XAUTOCLAIMs entries idle past the lease. The store
 * stays the truth: a sweep republishes what is due but unannounced (a lost XADD, a retry whose
 * delay ran out, a lease that expired), and everything due when Redis lost the stream.
 *
 * owns:  its workers' pull credits, the table of jobs running on this node, the completions not
 *        yet written, the Redis queue (fleet mode).
 * takes: MSG_JOB_PULL, MSG_JOB_PROGRESS, MSG_JOB_DONE (from workers); MSG_JOB_CANCEL and
 *        MSG_STORE requests (from the API: forwarded to the store and answered with its answer;
 *        a job created this way wakes the dispatcher; STORE_JOB_COUNTS answers carry the stream
 *        length and pending count).
 * sends: MSG_JOB_ASSIGN and MSG_JOB_CANCEL to workers; MSG_STORE requests to the store;
 *        from its start to its stop, the queue gauges at each scrape (reeld_jobs{state},
 *        reeld_queue_*, reeld_webhook_oldest_undelivered_seconds), as a collector of the metrics
 *        registry (src/rt/metrics.h).
 * never: blocks; runs two claims at once; hands a worker more jobs than it asked for; writes a
 *        job it does not hold the lease of (every write is fenced). */
#ifndef REELD_ACTORS_JOB_DISPATCHER_H
#define REELD_ACTORS_JOB_DISPATCHER_H

#include <stddef.h>
#include <stdint.h>

#include "src/queue/redis.h"
#include "src/rt/actor.h"
#include "src/rt/config.h"

typedef struct rd_dispatcher_config {
    int64_t lease_ms;      /* REELD_JOB_LEASE_MS (30000): how long a silent worker keeps a job */
    int64_t retry_base_ms; /* REELD_JOB_RETRY_BASE_MS (2000): first retry delay, doubling */
    int64_t retry_max_ms;  /* REELD_JOB_RETRY_MAX_MS (600000): longest retry delay */
    int64_t poll_ms;       /* REELD_JOB_POLL_MS (250): embedded: how often idle workers look */
    char owner[RD_LEASE_OWNER_MAX]; /* REELD_NODE_NAME (hostname:pid): lease owner, consumer */
    int use_redis;                  /* REDIS_URL / VALKEY_URL set */
    rd_redis_addr redis;
} rd_dispatcher_config;

/* Reads the settings above from the environment and `cfg` (REDIS_URL is parsed and resolved
 * here: main thread). 0, or -errno with one line in `err` (rediss:// is refused). */
int dispatcher_config_load(rd_dispatcher_config *dc, const rd_config *cfg, char *err,
                           size_t errlen);

/* Spawns the dispatcher on `loop`, talking to `store`. `dc` is copied. 0 or -errno. */
int dispatcher_spawn(rd_loop *loop, rd_actor *store, const rd_dispatcher_config *dc,
                     rd_actor **out);

/* After the loops have stopped: frees what the dispatcher held. NULL is a no-op. */
void dispatcher_free(rd_actor *a);

/* After the loops have stopped, before dispatcher_free: how many claims were made and their
 * round-trip latency percentiles (the last 65536). 0, or -ENOENT when none. */
int dispatcher_claim_latency(rd_actor *a, uint64_t *count, double *p50_ms, double *p99_ms);

/* Any thread: the queue counts as last read from the store (about once a second, by the
 * dispatcher's timer), with the stream length and pending count in fleet mode. 0, or -ENOENT
 * before the first read. For /api/health and the queue gauges. */
int dispatcher_queue_counts(rd_queue_counts *out);

/* Any thread: outcomes (succeeded or failed attempts) the store has confirmed, by every
 * dispatcher of the process since it started. */
uint64_t dispatcher_outcomes_written(void);

/* The worker side of the protocol, for worker actors: sends `m` from `self` to the dispatcher
 * (one that is refused is logged and freed: the dispatcher is stopping). */
void job_worker_send(rd_actor *self, rd_actor *dispatcher, rd_msg *m);

/* The worker side: "`self` can take `n` more jobs of `kind`". */
void job_worker_pull(rd_actor *self, rd_actor *dispatcher, const char *kind, int n);

/* Jittered exponential backoff before attempt `attempt` + 1: base * 2^(attempt-1), capped,
 * then scaled by a random factor in [0.5, 1]. `rnd` is a uniform 32-bit random number. */
int64_t dispatcher_backoff_ms(const rd_dispatcher_config *dc, int attempt, uint32_t rnd);

#endif
