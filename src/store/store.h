/* The store: assets, jobs and renditions, durable, behind one message interface with two
 * backends.
 *
 * owns:  one database connection (sqlite) or a small pool of them (postgres), and the requests
 *        in flight on them.
 * takes: MSG_STORE requests (actor_request). The store answers with the request message itself,
 *        filled in: `status` is 0 or -errno and the results are in the same payload. Whoever
 *        sent the request owns the answer.
 * sends: nothing but those answers.
 * never: blocks a loop. The sqlite backend is a thread actor (SQLite calls block: they run on
 *        the store's own thread, which owns the connection). The postgres backend is a loop
 *        actor that drives libpq's asynchronous API (PQconnectStart/PQconnectPoll,
 *        PQsendQueryParams, PQconsumeInput/PQisBusy/PQgetResult) from io_uring polls on the
 *        connection's socket.
 *
 * Times are milliseconds since the Unix epoch, read from the store's own clock (the database
 * server's for postgres), so leases mean the same thing on every node of a fleet. Callers pass
 * durations (lease_ms, retry_ms), never deadlines.
 *
 * Errors: -ENOENT (no such row), -EALREADY (the job is already finished: cancel of a finished
 * job), -EINVAL (bad argument), and the retryable ones, store_retryable(): -ENOTCONN (the
 * database cannot be reached; reconnecting with backoff), -ECONNRESET (the connection broke
 * with the request in flight: it may or may not have been applied; every operation is safe to
 * repeat), -EAGAIN (too many requests queued). The API maps retryable errors to 503 with
 * Retry-After. */
#ifndef REELD_STORE_STORE_H
#define REELD_STORE_STORE_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>

#include "src/rt/msg.h"
#include "src/rt/actor.h"
#include "src/rt/config.h"

/* 1 when `err` is worth retrying later (the database is unreachable or busy). */
static inline int store_retryable(int err)
{
    return err == -ENOTCONN || err == -ECONNRESET || err == -EAGAIN || err == -ETIMEDOUT;
}

/* Applies the schema migrations to the configured store (POSTGRES_URL, else
 * REELD_DATA_DIR/reeld.db, created as needed) and returns. Blocking: call it from the main
 * thread before the loops serve, or from `reeld migrate`. Safe when several nodes start at once
 * (postgres: an advisory lock). 0, or -errno with one line in `err`. */
int store_migrate(const rd_config *cfg, char *err, size_t errlen);

/* The same, up to schema `version` only (1: the first schema): the store suite builds a
 * database as an older reeld left it, then upgrades it. */
int store_migrate_to(const rd_config *cfg, int version, char *err, size_t errlen);

/* Spawns the store's actor for `cfg`: the postgres backend on `loop` when POSTGRES_URL is set
 * (REELD_PG_POOL connections, default 4, at most 16), else the sqlite backend on its own
 * thread. The schema must be migrated. 0 or -errno. */
int store_spawn(const rd_config *cfg, rd_loop *loop, rd_actor **out);

/* After the loops have stopped (rt_stop): stops the store (the sqlite thread ends) and frees
 * what its actor held. NULL is a no-op. */
void store_free(rd_actor *store);

/* Attempts of a webhook delivery job (WEBHOOK_MAX_ATTEMPTS): the store creates those jobs
 * itself, in the transaction of the change that causes the event. Set by store_spawn. */
extern int store_webhook_max_attempts;

/* A new store request (zeroed) for `op`. Send it with actor_request. */
rd_msg *store_request(rd_store_op op);
/* The same for STORE_ASSET_FIND, sized for its one row (assets[0]) rather than RD_STORE_BATCH
 * rows: a status poll allocates and zeroes ~1 KB, not the whole union. Both stores read and
 * write only assets[0] of a find. */
rd_msg *store_request_find(void);

/* One-line description of a store error for users ("the database is unreachable; retry"). */
const char *store_strerror(int err);

/* ---- backends (store_spawn picks one) ---- */

/* The sqlite backend on a thread of its own; `path` must outlive the actor. */
int store_sqlite_spawn(const char *path, rd_actor **out);
int store_sqlite_migrate(const char *path, int version, char *err, size_t errlen);

/* The postgres backend on `loop`: a pool of `pool` connections to `url` (must outlive it),
 * reconnecting with backoff (50 ms doubling to 2 s). Writes an outbox row with each new job when
 * `outbox` is set (fleet queue on Redis). */
int store_pg_spawn(rd_loop *loop, const char *url, int pool, int outbox, rd_actor **out);
int store_pg_migrate(const char *url, int version, char *err, size_t errlen);
void store_pg_free(rd_actor *a);
int store_is_pg(const rd_actor *a);

#endif
