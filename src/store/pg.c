/* The postgres store: the fleet's truth (POSTGRES_URL).
 *
 * A loop actor with a small pool of libpq connections in non-blocking mode. Each connection is
 * a little state machine driven by one-shot io_uring polls on its socket: connecting
 * (PQconnectPoll), idle (a read poll stays armed so a server that goes away is noticed at
 * once), busy (PQflush until sent, then PQconsumeInput/PQisBusy/PQgetResult). Every request is
 * one SQL statement, so it is one transaction: a job and its outbox row are written by one
 * INSERT with a data-modifying CTE. Batches travel as arrays (unnest), so a request of 32 jobs
 * costs one round trip.
 *
 * A broken connection answers its request with -ECONNRESET and reconnects with backoff (50 ms
 * doubling to 2 s). While no connection is up after a failure, requests are answered at once
 * with -ENOTCONN rather than queued: callers retry, and the API says 503.
 *
 * What the server says besides results (a WARNING raised by a trigger, a NOTICE) becomes a
 * "postgres_notice" line of the log: libpq would print it raw on stderr, between JSON lines. */
#include <assert.h>
#include <errno.h>
#include <libpq-fe.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "src/rt/alloc.h"
#include "src/rt/log.h"
#include "src/store/sql.h"
#include "src/store/store.h"

#define PG_POOL_MAX    16
#define PG_QUEUE_BOUND 1024 /* requests waiting for a connection */
#define PG_BACKOFF_MIN 50
#define PG_BACKOFF_MAX 2000
#define PG_PARAMS      12
#define PG_PARAM_BUF   24576 /* 32 errors of 160 bytes, escaped, fit */
#define PG_FIND_BATCH  32    /* asset reads sent as one statement */

/* ---- schema ---- */

static const char *const migrations[] = {
    "CREATE TABLE assets ("
    " id bigserial PRIMARY KEY, org text NOT NULL, filename text NOT NULL DEFAULT '',"
    " content_type text NOT NULL DEFAULT '', size_bytes bigint NOT NULL DEFAULT 0,"
    " state text NOT NULL, staging_key text NOT NULL DEFAULT '',"
    " master_key text NOT NULL DEFAULT '', created_ms bigint NOT NULL,"
    " updated_ms bigint NOT NULL);"
    "CREATE INDEX assets_org ON assets (org, id);"
    "CREATE TABLE jobs ("
    " id bigserial PRIMARY KEY, asset_id bigint NOT NULL, kind text NOT NULL,"
    " state text NOT NULL CHECK (state IN"
    "  ('queued','running','succeeded','failed','cancelled','dead')),"
    " priority integer NOT NULL DEFAULT 0, attempts integer NOT NULL DEFAULT 0,"
    " max_attempts integer NOT NULL DEFAULT 5, progress integer NOT NULL DEFAULT 0,"
    " run_after_ms bigint NOT NULL, lease_owner text NOT NULL DEFAULT '',"
    " lease_expires_ms bigint NOT NULL DEFAULT 0, error text NOT NULL DEFAULT '',"
    " published_ms bigint NOT NULL DEFAULT 0,"
    " created_ms bigint NOT NULL, updated_ms bigint NOT NULL, UNIQUE (asset_id, kind));"
    /* The queue's order, over the few rows that can be claimed; finished jobs are listed by a
     * second index that the claim cannot use (a planner with stale statistics would otherwise
     * pick it and sort the whole backlog). */
    "CREATE INDEX jobs_ready ON jobs (kind, priority DESC, id)"
    " WHERE state IN ('queued','running');"
    "CREATE INDEX jobs_finished ON jobs (state, id) WHERE state NOT IN ('queued','running');"
    "CREATE TABLE renditions ("
    " id bigserial PRIMARY KEY, asset_id bigint NOT NULL, name text NOT NULL,"
    " width integer NOT NULL, height integer NOT NULL, bitrate_kbps integer NOT NULL,"
    " playlist_key text NOT NULL, created_ms bigint NOT NULL, UNIQUE (asset_id, name));"
    "CREATE TABLE outbox ("
    " id bigserial PRIMARY KEY, job_id bigint NOT NULL, created_ms bigint NOT NULL);",
    /* 2: the asset is the upload session (the API keeps none in memory). Rows of schema 1
     * named their object by the public id (staging_key), and their job by asset and kind. */
    "ALTER TABLE assets ADD COLUMN public_id text, ADD COLUMN upload_id text NOT NULL DEFAULT '',"
    " ADD COLUMN part_size bigint NOT NULL DEFAULT 0,"
    " ADD COLUMN nparts integer NOT NULL DEFAULT 0,"
    " ADD COLUMN job_id bigint NOT NULL DEFAULT 0;"
    "UPDATE assets SET public_id = CASE WHEN staging_key <> '' THEN staging_key"
    " ELSE 'legacy' || id END;"
    "UPDATE assets a SET job_id = j.id, state = 'processing' FROM jobs j"
    " WHERE j.asset_id = a.id AND j.kind = 'transcode';"
    "ALTER TABLE assets ALTER COLUMN public_id SET NOT NULL;"
    "CREATE UNIQUE INDEX assets_public ON assets (public_id);",
    /* 3: what the promote body asks of a transcode (poster_ms -1: no time asked). */
    "ALTER TABLE jobs ADD COLUMN mp4 integer NOT NULL DEFAULT 0,"
    " ADD COLUMN poster_ms bigint NOT NULL"
    " DEFAULT -1;",
    /* 4: webhooks. One endpoint per org; an event row per asset and type, written with the
     * change that causes it, delivered by a job of kind 'webhook' whose asset_id is the
     * event's row; one row per delivery attempt. */
    "CREATE TABLE webhooks ("
    " org text PRIMARY KEY, url text NOT NULL, events text NOT NULL, secret text NOT NULL,"
    " previous_secret text NOT NULL DEFAULT '', previous_until_ms bigint NOT NULL DEFAULT 0,"
    " created_ms bigint NOT NULL, updated_ms bigint NOT NULL);"
    "CREATE TABLE webhook_events ("
    " id bigserial PRIMARY KEY, event_id text NOT NULL UNIQUE, org text NOT NULL,"
    " asset_id bigint NOT NULL, type text NOT NULL, error text NOT NULL DEFAULT '',"
    " created_ms bigint NOT NULL, UNIQUE (asset_id, type));"
    "CREATE TABLE webhook_attempts ("
    " id bigserial PRIMARY KEY, event bigint NOT NULL, org text NOT NULL,"
    " attempt integer NOT NULL, status_code integer NOT NULL, latency_ms integer NOT NULL,"
    " state text NOT NULL, error text NOT NULL DEFAULT '', created_ms bigint NOT NULL);"
    "CREATE INDEX webhook_attempts_org ON webhook_attempts (org, id);"
    "ALTER TABLE assets ADD COLUMN duration_ms bigint NOT NULL DEFAULT 0;",
    /* 5: deletion. A deleted asset keeps its row (its id answers 404, its events keep their
     * asset, the edges read the deletions of the last link lifetime); purge_after_ms says
     * when its objects are to be deleted next (0: done), master_until_ms until when Object
     * Lock keeps its master. */
    "ALTER TABLE assets ADD COLUMN deleted_ms bigint NOT NULL DEFAULT 0,"
    " ADD COLUMN purge_after_ms bigint NOT NULL DEFAULT 0,"
    " ADD COLUMN master_until_ms bigint NOT NULL DEFAULT 0;"
    "CREATE INDEX assets_deleted ON assets (deleted_ms, id) WHERE deleted_ms > 0;"
    "CREATE INDEX assets_purge ON assets (purge_after_ms) WHERE purge_after_ms > 0;",
    /* 6: caption tracks, one per asset and language (the cues are objects); the asset's
     * captions_version counts their changes, so a republished master playlist can tell. */
    "CREATE TABLE captions ("
    " asset_id bigint NOT NULL REFERENCES assets (id) ON DELETE CASCADE,"
    " lang text NOT NULL, name text NOT NULL, is_default boolean NOT NULL DEFAULT false,"
    " created_ms bigint NOT NULL, updated_ms bigint NOT NULL, PRIMARY KEY (asset_id, lang));"
    "ALTER TABLE assets ADD COLUMN captions_version bigint NOT NULL DEFAULT 0;",
    /* 7: exports, a range of an asset encoded to one MP4; one row per identical request (the
     * unique index), so asking again finds the same export and, by its id, the same job. */
    "CREATE TABLE exports ("
    " id bigserial PRIMARY KEY, public_id text NOT NULL UNIQUE, org text NOT NULL,"
    " asset_id bigint NOT NULL REFERENCES assets (id), start_ms bigint NOT NULL,"
    " end_ms bigint NOT NULL, height integer NOT NULL DEFAULT 0, lang text NOT NULL DEFAULT '',"
    " format text NOT NULL, created_ms bigint NOT NULL, updated_ms bigint NOT NULL);"
    "CREATE UNIQUE INDEX exports_request ON exports"
    " (asset_id, start_ms, end_ms, height, lang, format);",
    /* 8: an export's events (export.ready, export.failed) are of its source asset, so they go
     * out in order with the asset's own, and name the export (export_id); one per export and
     * type, where an asset's event is one per asset and type. */
    "ALTER TABLE webhook_events ADD COLUMN export_id bigint REFERENCES exports (id);"
    "ALTER TABLE webhook_events DROP CONSTRAINT webhook_events_asset_id_type_key;"
    "CREATE UNIQUE INDEX webhook_events_once ON webhook_events"
    " (asset_id, type, coalesce(export_id, 0));",
    /* 9: clips. A clip is an asset of its own cut from another (source_id; NULL for an upload)
     * over a range; it only names its source, so deleting the source (a mark, never a row
     * deletion) leaves the clip as it is: nothing cascades. */
    "ALTER TABLE assets ADD COLUMN source_id bigint REFERENCES assets (id),"
    " ADD COLUMN source_start_ms bigint NOT NULL DEFAULT 0,"
    " ADD COLUMN source_end_ms bigint NOT NULL DEFAULT 0;",
};

#define NMIGRATIONS ((int)(sizeof(migrations) / sizeof(migrations[0])))

/* The database server's clock in Unix milliseconds: one clock for the whole fleet. */
#define NOW "(extract(epoch from statement_timestamp()) * 1000)::bigint"
/* The jobs table's size in pages as the planner last saw it (pg_class.relpages: 0 before the
 * first ANALYZE or VACUUM) and as it is: two columns (stats_stale). */
#define JOBS_PAGES                                                                                 \
    "(SELECT relpages FROM pg_class WHERE oid = 'jobs'::regclass)::bigint,"                        \
    " pg_relation_size('jobs'::regclass) / current_setting('block_size')::bigint"
/* STORE_JOB_COUNTS' columns per state, over every job or the queue alone (counts_active). */
#define COUNTS_COLS                                                                                \
    "state, count(*), coalesce(max(" NOW " - run_after_ms) FILTER (WHERE state = 'queued'"         \
    " AND run_after_ms <= " NOW "), 0), coalesce(max(" NOW " - created_ms) FILTER (WHERE kind ="   \
    " 'webhook' AND state IN ('queued', 'running')), 0), " JOBS_PAGES
#define JOB_COLS                                                                                   \
    "j.id, j.asset_id, j.kind, j.state, j.priority, j.attempts, j.max_attempts, j.progress,"       \
    " j.run_after_ms, j.lease_expires_ms, j.created_ms, j.updated_ms, j.lease_owner, j.error,"     \
    " j.mp4, j.poster_ms"
/* The columns of ASSET_COLS_J, over an asset `a`, its job `j` and its source `s` (each a table
 * or a CTE with those columns). */
#define ASSET_SEL                                                                                  \
    "a.id, a.public_id, a.org, a.filename, a.content_type, a.size_bytes, " ASSET_STATE ","         \
    " a.staging_key, a.master_key, a.upload_id, a.part_size, a.nparts, a.job_id, a.created_ms,"    \
    " a.updated_ms, coalesce(j.state, ''), coalesce(j.progress, 0), coalesce(j.attempts, 0),"      \
    " coalesce(j.error, ''), a.deleted_ms, a.purge_after_ms, a.master_until_ms,"                   \
    " coalesce(a.source_id, 0), a.source_start_ms, a.source_end_ms, coalesce(s.public_id, ''),"    \
    " coalesce(s.master_key, '')"
#define ASSET_COLS_J                                                                               \
    ASSET_SEL " FROM assets a LEFT JOIN jobs j ON j.id = a.job_id"                                 \
              " LEFT JOIN assets s ON s.id = a.source_id"
#define CLAIMABLE_OF(state)                                                                        \
    "((" state " = 'queued' AND j.run_after_ms <= " NOW ") OR"                                     \
    " (" state " = 'running' AND j.lease_expires_ms < " NOW " AND j.attempts < j.max_attempts))"
#define CLAIMABLE CLAIMABLE_OF("j.state")
/* Statements that name their jobs by key test the state so that it cannot use the queue's
 * partial index (jobs_ready, led by kind): with statistics that lag a fast-growing backlog the
 * planner chose that index for "id = ANY (...)", which reads every queued job per statement.
 * The fenced updates also say "j.id = ANY ($3)" beside their join on d: it is what offers the
 * primary key's index to a generic plan made while the table was still small. */
#define STATE_BY_KEY "(j.state || '')"
#define CLAIM_SET                                                                                  \
    "UPDATE jobs j SET state = 'running', attempts = j.attempts + 1, lease_owner = $1,"            \
    " lease_expires_ms = " NOW " + $2::bigint, progress = 0, updated_ms = " NOW
/* The last part of a fenced update's statement (below). A job the update did not take is looked
 * up by its key in a subquery, once per such job: as a join, a planner with stale statistics
 * (a queue grows faster than autoanalyze) chose to scan the whole table per statement, and the
 * completions then cost more with every job ever run (3.3 ms a batch at 20,000 jobs, 11.6 at
 * 40,000). */
#define FENCED_ANSWER                                                                              \
    " SELECT d.id, CASE WHEN u.id IS NOT NULL THEN u.state ELSE coalesce((SELECT j.state"          \
    "  FROM jobs j WHERE j.id = d.id AND j.lease_owner = $1 AND j.attempts = d.attempt), '')"      \
    "  END FROM d LEFT JOIN u ON u.id = d.id"
/* The answer to a fenced update: per job, the new state where it applied, else its state now
 * when the owner still holds that attempt (a cancel keeps both), else ''. */
#define FENCED(set, where)                                                                         \
    "WITH d AS (SELECT * FROM unnest($3::bigint[], $4::int[], $5::bigint[], $6::text[])"           \
    "  AS d(id, attempt, num, txt)),"                                                              \
    " u AS (UPDATE jobs j SET " set                                                                \
    " FROM d WHERE j.id = ANY ($3) AND j.id = d.id AND j.lease_owner = $1"                         \
    "  AND j.attempts = d.attempt AND " STATE_BY_KEY " = 'running' " where                         \
    " RETURNING j.id, j.state)" FENCED_ANSWER

/* A webhook job waits while an earlier event of the same asset is still being delivered:
 * deliveries of one asset go out in order. */
#define NOT_BLOCKED                                                                                \
    "(j.kind <> 'webhook' OR NOT EXISTS (SELECT 1 FROM webhook_events e JOIN webhook_events p"     \
    " ON p.asset_id = e.asset_id AND p.id < e.id JOIN jobs pj ON pj.asset_id = p.id"               \
    " AND pj.kind = 'webhook' WHERE e.id = j.asset_id AND pj.state IN ('queued', 'running')))"
/* The webhook events of CTE x (asset_id, type, error, export_id: NULL but for an export's
 * event, whose asset is the export's source), where the org (the export's, else the asset's)
 * has an endpoint that takes the type, with their delivery jobs (and outbox rows when
 * `outbox`), in the statement's transaction. */
#define EMIT(outbox, attempts)                                                                     \
    " ev AS (INSERT INTO webhook_events (event_id, org, asset_id, export_id, type, error,"         \
    "  created_ms) SELECT 'evt_' || substr(md5(gen_random_uuid()::text), 1, 24), w.org, a.id,"     \
    "  x.export_id, x.type, x.error, " NOW " FROM x JOIN assets a ON a.id = x.asset_id"            \
    "  LEFT JOIN exports xe ON xe.id = x.export_id JOIN webhooks w ON"                             \
    "  w.org = coalesce(xe.org, a.org)"                                                            \
    "  WHERE position(',' || x.type || ',' in ',' || w.events || ',') > 0"                         \
    "  ON CONFLICT DO NOTHING RETURNING id),"                                                      \
    " wj AS (INSERT INTO jobs (asset_id, kind, state, priority, max_attempts, run_after_ms,"       \
    "  published_ms, created_ms, updated_ms) SELECT id, 'webhook', 'queued', 0, " attempts ","     \
    "  " NOW ", " NOW ", " NOW ", " NOW " FROM ev RETURNING id),"                                  \
    " wo AS (INSERT INTO outbox (job_id, created_ms) SELECT id, " NOW " FROM wj WHERE " outbox ")"
/* Complete and fail: FENCED, and the outcome of a transcode job as its asset's event, of an
 * export job (whose asset_id is the export's row) as its export's. */
#define FENCED_EV(set, where)                                                                      \
    "WITH d AS (SELECT * FROM unnest($3::bigint[], $4::int[], $5::bigint[], $6::text[])"           \
    "  AS d(id, attempt, num, txt)),"                                                              \
    " u AS (UPDATE jobs j SET " set                                                                \
    " FROM d WHERE j.id = ANY ($3) AND j.id = d.id AND j.lease_owner = $1"                         \
    "  AND j.attempts = d.attempt AND " STATE_BY_KEY " = 'running' " where                         \
    "  RETURNING j.id, j.state, j.kind, j.asset_id, j.error),"                                     \
    " x AS (SELECT coalesce(xe.asset_id, u.asset_id) AS asset_id,"                                 \
    "  CASE WHEN u.kind = 'export' THEN 'export.' ELSE 'asset.' END ||"                            \
    "  CASE WHEN u.state = 'succeeded' THEN 'ready' ELSE 'failed' END AS type,"                    \
    "  CASE WHEN u.state = 'succeeded' THEN '' ELSE u.error END AS error,"                         \
    "  xe.id AS export_id FROM u LEFT JOIN exports xe ON xe.id = u.asset_id"                       \
    "  AND u.kind = 'export' WHERE u.kind IN ('transcode', 'export')"                              \
    "  AND u.state IN ('succeeded', 'failed', 'dead'))," EMIT("$7::boolean", "$8::int")            \
        FENCED_ANSWER
/* The jobs of CTE d (asset_id, kind, priority, max_attempts, mp4, poster_ms) unless their asset
 * has one of that kind, as CTE j (JOB_COLS and `created`), with their outbox rows when $5 (a
 * boolean: fleet mode) is true: STORE_JOB_CREATE and the export create both write jobs this way,
 * so both pass the outbox flag as $5. */
#define JOB_INSERT                                                                                 \
    " j AS (INSERT INTO jobs AS j (asset_id, kind, state, priority, max_attempts,"                 \
    "  run_after_ms, published_ms, created_ms, updated_ms, mp4, poster_ms)"                        \
    "  SELECT asset_id, kind, 'queued', priority, max_attempts, " NOW ", " NOW ", " NOW ", " NOW   \
    ", mp4, poster_ms FROM d ON CONFLICT (asset_id, kind) DO UPDATE SET kind = excluded.kind"      \
    "  RETURNING " JOB_COLS ", (j.xmax = 0) AS created),"                                          \
    " o AS (INSERT INTO outbox (job_id, created_ms)"                                               \
    "  SELECT id, " NOW " FROM j WHERE created AND $5::boolean)"
/* An export as read back, with its asset's public id and master and its job (kind 'export',
 * whose asset_id is the export's row). */
#define EXPORT_COLS_J                                                                              \
    "e.id, e.asset_id, coalesce(j.id, 0), e.start_ms, e.end_ms, e.created_ms, e.updated_ms,"       \
    " e.height, e.public_id, e.org, e.lang, e.format, a.public_id, a.master_key,"                  \
    " coalesce(j.state, ''), coalesce(j.progress, 0), coalesce(j.attempts, 0),"                    \
    " coalesce(j.error, '') FROM exports e JOIN assets a ON a.id = e.asset_id"                     \
    " LEFT JOIN jobs j ON j.asset_id = e.id AND j.kind = 'export'"
#define WEBHOOK_COLS                                                                               \
    "org, url, events, secret, previous_secret, previous_until_ms, created_ms, updated_ms"
#define CAPTION_COLS "c.lang, c.name, c.is_default::int, c.created_ms, c.updated_ms"

static const char *const sql[STORE_OP_COUNT] = {
    [STORE_ASSET_CREATE] = "INSERT INTO assets (public_id, org, filename, content_type,"
                           " size_bytes, state, staging_key, master_key, upload_id, part_size,"
                           " nparts, created_ms, updated_ms) VALUES ($1, $2, $3, $4, $5, $6, $7,"
                           " $8, $9, $10, $11, " NOW ", " NOW ") RETURNING " ASSET_COLS,
    [STORE_ASSET_GET] = "SELECT " ASSET_COLS_J " WHERE a.id = $1",
    [STORE_ASSET_LIST] = "SELECT " ASSET_COLS_J " WHERE ($1::bigint = 0 OR a.id < $1::bigint)"
                         " AND a.deleted_ms = 0 AND ($3::text = '' OR a.org = $3::text)"
                         " AND ($4::text = '' OR " ASSET_STATE " = $4::text)"
                         " ORDER BY a.id DESC LIMIT $2",
    [STORE_ASSET_FIND] = "SELECT " ASSET_COLS_J " WHERE a.public_id = $1"
                         " AND ($2::text = '' OR a.org = $2::text) AND a.deleted_ms = 0",
    [STORE_ASSET_UPDATE] = "UPDATE assets SET state = $3,"
                           " job_id = CASE WHEN $4::bigint > 0 THEN $4::bigint ELSE job_id END,"
                           " updated_ms = " NOW " WHERE public_id = $1 AND org = $2"
                           " AND (job_id = 0 OR $4::bigint > 0) AND state <> 'expired'"
                           " AND deleted_ms = 0 RETURNING " ASSET_COLS,
    [STORE_ASSET_EXPIRE] = "UPDATE assets SET state = 'expired', updated_ms = " NOW
                           " WHERE id IN (SELECT id FROM assets WHERE job_id = 0 AND deleted_ms = 0"
                           " AND created_ms < $1 AND state IN ('uploading', 'uploaded')"
                           " ORDER BY id LIMIT $2 FOR UPDATE SKIP LOCKED) RETURNING " ASSET_COLS,
    /* A webhook job's asset_id is its event, an export job's its export. */
    [STORE_ORG_ACTIVE_JOBS] =
        "SELECT (SELECT count(*) FROM jobs j JOIN assets a ON a.id = j.asset_id"
        " WHERE j.state IN ('queued', 'running') AND a.org = $1"
        " AND j.kind NOT IN ('webhook', 'export')) + (SELECT count(*) FROM jobs j"
        " JOIN exports e ON e.id = j.asset_id WHERE j.state IN ('queued', 'running')"
        " AND j.kind = 'export' AND e.org = $1)",
    [STORE_RENDITION_PUT] =
        "WITH d AS (UPDATE assets SET duration_ms = $7::bigint WHERE id = $1 AND $7::bigint > 0)"
        " INSERT INTO renditions (asset_id, name, width, height, bitrate_kbps, playlist_key,"
        " created_ms) VALUES ($1, $2, $3, $4, $5, $6, " NOW ")"
        " ON CONFLICT (asset_id, name) DO UPDATE SET width = excluded.width,"
        " height = excluded.height, bitrate_kbps = excluded.bitrate_kbps,"
        " playlist_key = excluded.playlist_key RETURNING id",
    [STORE_RENDITION_LIST] = "SELECT id, asset_id, name, width, height, bitrate_kbps,"
                             " playlist_key FROM renditions WHERE asset_id = $1"
                             " ORDER BY height DESC, id LIMIT 32",
    [STORE_JOB_CREATE] =
        "WITH d AS (SELECT * FROM unnest($1::bigint[], $2::text[], $3::int[], $4::int[],"
        "  $6::int[], $7::bigint[])"
        "  AS d(asset_id, kind, priority, max_attempts, mp4, poster_ms))," JOB_INSERT ","
        /* The promote was accepted: its event. */
        " x AS (SELECT asset_id, 'asset.uploaded'::text AS type, ''::text AS error,"
        "  NULL::bigint AS export_id FROM j WHERE created AND kind = 'transcode')," EMIT(
            "$5::boolean", "$8::int") " SELECT * FROM j",
    [STORE_JOB_GET] = "SELECT " JOB_COLS " FROM jobs j WHERE j.id = $1",
    [STORE_JOB_LIST] = "SELECT " JOB_COLS " FROM jobs j WHERE j.id > $1"
                       " AND ($3 = '' OR j.state = $3) ORDER BY j.id LIMIT $2",
    [STORE_JOB_CLAIM] =
        CLAIM_SET " WHERE j.id = ANY (ARRAY(SELECT j.id FROM jobs j"
                  " WHERE j.state IN ('queued', 'running') AND " CLAIMABLE
                  " AND j.kind = $4 AND " NOT_BLOCKED " ORDER BY j.priority DESC, j.id LIMIT $3"
                  " FOR UPDATE SKIP LOCKED)) RETURNING " JOB_COLS,
    [STORE_JOB_HEARTBEAT] = FENCED("lease_expires_ms = " NOW " + $2::bigint,"
                                   " progress = d.num, updated_ms = " NOW,
                                   ""),
    [STORE_JOB_COMPLETE] = FENCED_EV("state = 'succeeded', progress = 1000, lease_expires_ms = 0,"
                                     " error = '', updated_ms = " NOW,
                                     "AND $2::bigint IS NOT NULL"),
    [STORE_JOB_FAIL] = FENCED_EV("state = CASE WHEN d.num < 0 THEN 'failed'"
                                 " WHEN j.attempts >= j.max_attempts THEN 'dead' ELSE 'queued' END,"
                                 " run_after_ms = " NOW " + greatest(d.num, 0), error = d.txt,"
                                 " lease_expires_ms = 0, published_ms = 0, updated_ms = " NOW,
                                 "AND $2::bigint IS NOT NULL"),
    [STORE_JOB_RELEASE] = FENCED("state = 'queued', attempts = j.attempts - 1,"
                                 " lease_expires_ms = 0, run_after_ms = " NOW ", published_ms = 0,"
                                 " updated_ms = " NOW,
                                 "AND $2::bigint IS NOT NULL"),
    [STORE_JOB_CANCEL] = "WITH u AS (UPDATE jobs SET state = 'cancelled', lease_expires_ms = 0,"
                         " updated_ms = " NOW " WHERE id = $1"
                         " AND state IN ('queued', 'running') RETURNING id)"
                         " SELECT " JOB_COLS ", (SELECT count(*) FROM u)"
                         " FROM jobs j WHERE j.id = $1",
    [STORE_JOB_COUNTS] = "SELECT " COUNTS_COLS " FROM jobs GROUP BY state",
    [STORE_JOB_SWEEP] = "UPDATE jobs SET state = 'dead', lease_expires_ms = 0,"
                        " updated_ms = " NOW ", error = 'the worker stopped answering on the"
                        " last attempt (lease expired)' WHERE state = 'running'"
                        " AND lease_expires_ms < " NOW " AND attempts >= max_attempts",
    [STORE_OUTBOX_TAKE] = "WITH o AS (DELETE FROM outbox WHERE id = ANY (ARRAY(SELECT id FROM"
                          " outbox ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED)) RETURNING job_id)"
                          " SELECT o.job_id, j.kind FROM o JOIN jobs j ON j.id = o.job_id",
    [STORE_JOB_DUE] = "UPDATE jobs SET published_ms = " NOW " WHERE id = ANY (ARRAY(SELECT j.id"
                      " FROM jobs j WHERE j.state IN ('queued', 'running') AND " CLAIMABLE
                      " AND j.published_ms <= " NOW " - $3::bigint AND j.id > $1 ORDER BY j.id"
                      " LIMIT $2 FOR UPDATE SKIP LOCKED)) RETURNING id, kind",
    [STORE_WEBHOOK_PUT] =
        "INSERT INTO webhooks AS w (org, url, events, secret, created_ms,"
        " updated_ms) VALUES ($1, $2, $3, $4, " NOW ", " NOW ")"
        " ON CONFLICT (org) DO UPDATE SET url = excluded.url,"
        " events = excluded.events, updated_ms = " NOW " RETURNING " WEBHOOK_COLS ", (w.xmax = 0)",
    [STORE_WEBHOOK_GET] = "SELECT " WEBHOOK_COLS " FROM webhooks WHERE org = $1",
    [STORE_WEBHOOK_DELETE] = "DELETE FROM webhooks WHERE org = $1 RETURNING " WEBHOOK_COLS,
    [STORE_WEBHOOK_ROTATE] = "UPDATE webhooks SET previous_secret = secret, secret = $2,"
                             " previous_until_ms = " NOW " + $3::bigint, updated_ms = " NOW
                             " WHERE org = $1 RETURNING " WEBHOOK_COLS,
    [STORE_WEBHOOK_EVENT] =
        "SELECT e.id, e.asset_id, e.created_ms, e.event_id, e.type, e.org,"
        " coalesce(a.public_id, ''), e.error, coalesce(w.url, ''),"
        " coalesce(w.events, ''), coalesce(w.secret, ''),"
        " coalesce(w.previous_secret, ''), coalesce(w.previous_until_ms, 0),"
        " coalesce(a.duration_ms, 0), coalesce(e.export_id, 0), coalesce(x.public_id, ''),"
        " coalesce(x.start_ms, 0), coalesce(x.end_ms, 0), coalesce(x.lang, ''),"
        " coalesce(a.master_key, '') FROM webhook_events e LEFT JOIN assets a ON a.id = e.asset_id"
        " LEFT JOIN exports x ON x.id = e.export_id"
        " LEFT JOIN webhooks w ON w.org = e.org WHERE e.id = $1",
    [STORE_WEBHOOK_ATTEMPT] = "INSERT INTO webhook_attempts (event, org, attempt, status_code,"
                              " latency_ms, state, error, created_ms) SELECT id, org, $2, $3,"
                              " $4, $5, $6, " NOW " FROM webhook_events WHERE id = $1",
    /* The next retry: the job's due time while it waits, on its latest attempt's row. */
    [STORE_WEBHOOK_LIST] =
        "SELECT t.id, t.event, e.asset_id, t.created_ms,"
        " CASE WHEN j.state = 'queued' AND j.attempts = t.attempt THEN j.run_after_ms"
        " ELSE 0 END, t.status_code, t.latency_ms, t.attempt, e.event_id, e.type,"
        " t.org, coalesce(a.public_id, ''), t.state, t.error"
        " FROM webhook_attempts t JOIN webhook_events e ON e.id = t.event"
        " LEFT JOIN jobs j ON j.asset_id = e.id AND j.kind = 'webhook'"
        " LEFT JOIN assets a ON a.id = e.asset_id"
        " WHERE t.org = $1 AND ($2::bigint = 0 OR t.id < $2::bigint) ORDER BY t.id DESC LIMIT $3",
    /* The row as it was (the job's state before the cancel), with the deletion's times and
     * whether this statement made it. */
    [STORE_ASSET_DELETE] =
        "WITH a0 AS (SELECT id, job_id FROM assets WHERE public_id = $1 AND org = $2"
        "  AND deleted_ms = 0 FOR UPDATE),"
        " c AS (UPDATE jobs SET state = 'cancelled', lease_expires_ms = 0, updated_ms = " NOW
        "  WHERE id = (SELECT job_id FROM a0) AND state IN ('queued', 'running') RETURNING id),"
        /* Its exports' jobs stop with its own. */
        " ce AS (UPDATE jobs SET state = 'cancelled', lease_expires_ms = 0, updated_ms = " NOW
        "  WHERE kind = 'export' AND state IN ('queued', 'running') AND asset_id IN"
        "  (SELECT id FROM exports WHERE asset_id = (SELECT id FROM a0))),"
        " d AS (UPDATE assets SET deleted_ms = " NOW ", purge_after_ms = " NOW ","
        "  updated_ms = " NOW " WHERE id = (SELECT id FROM a0) AND deleted_ms = 0 RETURNING id),"
        " x AS (SELECT id AS asset_id, 'asset.deleted'::text AS type, ''::text AS error,"
        "  NULL::bigint AS export_id FROM d)," EMIT(
            "$3::boolean",
            "$4::int") " SELECT a.id, a.public_id, a.org, a.filename, a.content_type, "
                       "a.size_bytes, 'deleted',"
                       " a.staging_key, a.master_key, a.upload_id, a.part_size, a.nparts, a.job_id,"
                       " a.created_ms, a.updated_ms, coalesce(j.state, ''), coalesce(j.progress, "
                       "0),"
                       " coalesce(j.attempts, 0), coalesce(j.error, ''),"
                       " CASE WHEN d.id IS NULL THEN a.deleted_ms ELSE " NOW " END,"
                       " CASE WHEN d.id IS NULL THEN a.purge_after_ms ELSE " NOW
                       " END, a.master_until_ms, coalesce(a.source_id, 0), a.source_start_ms,"
                       " a.source_end_ms, coalesce(s.public_id, ''), coalesce(s.master_key, ''),"
                       " (d.id IS NOT NULL) FROM assets a LEFT JOIN jobs j ON j.id = a.job_id"
                       " LEFT JOIN assets s ON s.id = a.source_id"
                       " LEFT JOIN d ON d.id = a.id WHERE a.public_id = $1 AND a.org = $2",
    [STORE_ASSET_PURGE_DUE] =
        "UPDATE assets SET purge_after_ms = " NOW " + $2::bigint WHERE id = ANY (ARRAY("
        "SELECT id FROM assets WHERE purge_after_ms > 0 AND purge_after_ms <= " NOW
        " ORDER BY purge_after_ms LIMIT $1 FOR UPDATE SKIP LOCKED)) RETURNING " ASSET_COLS,
    [STORE_ASSET_PURGED] = "UPDATE assets SET purge_after_ms = CASE WHEN $2::bigint > 0"
                           " THEN " NOW " + $2::bigint ELSE 0 END, master_until_ms = $3::bigint"
                           " WHERE id = $1 AND deleted_ms > 0 RETURNING id",
    [STORE_ASSET_DELETED] =
        "SELECT " ASSET_COLS " FROM assets WHERE deleted_ms > 0 AND CASE WHEN $1::bigint = 0"
        " THEN deleted_ms >= " NOW " - $3::bigint ELSE (deleted_ms, id) > ($1::bigint, $2::bigint)"
        " END ORDER BY deleted_ms, id LIMIT $4",
    /* One row always: whether the asset is there (0: -ENOENT), the track as stored (NULL:
     * the asset has all its tracks, -ENOSPC), whether it is new, the version after. The
     * version's UPDATE is the gate: it waits for a concurrent put or delete of the asset and
     * re-checks deleted_ms on the row as that left it. */
    [STORE_CAPTION_PUT] =
        "WITH a AS (SELECT id, (SELECT count(*) FROM captions WHERE asset_id = $1::bigint) AS n,"
        "  EXISTS (SELECT 1 FROM captions WHERE asset_id = $1::bigint AND lang = $2::text) AS has"
        "  FROM assets WHERE id = $1::bigint AND deleted_ms = 0),"
        " v AS (UPDATE assets SET captions_version = captions_version + 1"
        "  WHERE id = (SELECT id FROM a WHERE has OR n < $5::int) AND deleted_ms = 0"
        "  RETURNING captions_version),"
        " o AS (UPDATE captions SET is_default = false WHERE asset_id = $1::bigint"
        "  AND lang <> $2::text AND is_default AND $4::int <> 0 AND EXISTS (SELECT 1 FROM v)),"
        " c AS (INSERT INTO captions AS c (asset_id, lang, name, is_default, created_ms,"
        "  updated_ms) SELECT $1::bigint, $2::text, $3::text, $4::int <> 0, " NOW ", " NOW
        "  FROM v ON CONFLICT (asset_id, lang) DO UPDATE SET name = excluded.name,"
        "  is_default = excluded.is_default, updated_ms = excluded.updated_ms"
        "  RETURNING " CAPTION_COLS ", (c.xmax = 0) AS created)"
        " SELECT (SELECT count(*) FROM a), c.*, v.captions_version FROM (SELECT 1) one"
        " LEFT JOIN c ON true LEFT JOIN v ON true",
    /* No row for an unknown or deleted asset, one with a NULL lang when it has no tracks. */
    [STORE_CAPTION_LIST] = "SELECT a.captions_version, " CAPTION_COLS " FROM assets a"
                           " LEFT JOIN captions c ON c.asset_id = a.id WHERE a.id = $1"
                           " AND a.deleted_ms = 0 ORDER BY c.lang COLLATE \"C\" LIMIT 32",
    [STORE_CAPTION_DELETE] =
        "WITH d AS (DELETE FROM captions WHERE asset_id = $1::bigint AND lang = $2::text"
        "  RETURNING asset_id) UPDATE assets SET captions_version = captions_version + 1"
        " WHERE id = (SELECT asset_id FROM d) RETURNING captions_version",
    /* The asset (the org's, not deleted) is locked against a concurrent delete (FOR KEY SHARE
     * waits for it, then re-checks deleted_ms); the export is inserted unless the identical
     * one is there (the no-op update returns that one), then its job, as STORE_JOB_CREATE
     * writes them. No row: the asset is unknown. */
    [STORE_EXPORT_CREATE] =
        "WITH a AS (SELECT id, public_id, master_key FROM assets WHERE id = $1::bigint"
        "  AND org = $2::text AND deleted_ms = 0 FOR KEY SHARE),"
        " e AS (INSERT INTO exports AS e (public_id, org, asset_id, start_ms, end_ms, height,"
        "  lang, format, created_ms, updated_ms) SELECT $3::text, $2::text, id, $6::bigint,"
        "  $7::bigint, $8::int, $9::text, $10::text, " NOW ", " NOW " FROM a"
        "  ON CONFLICT (asset_id, start_ms, end_ms, height, lang, format)"
        "  DO UPDATE SET format = excluded.format RETURNING e.id, e.asset_id, e.start_ms,"
        "  e.end_ms, e.created_ms, e.updated_ms, e.height, e.public_id, e.org, e.lang, e.format,"
        "  (e.xmax = 0) AS created),"
        " d AS (SELECT id AS asset_id, 'export'::text AS kind, 0 AS priority,"
        "  $4::int AS max_attempts, 0 AS mp4, (-1)::bigint AS poster_ms FROM e)," JOB_INSERT
        " SELECT e.id, e.asset_id, j.id, e.start_ms, e.end_ms, e.created_ms, e.updated_ms,"
        " e.height, e.public_id, e.org, e.lang, e.format, a.public_id, a.master_key, j.state,"
        " j.progress, j.attempts, j.error, e.created FROM e JOIN a ON a.id = e.asset_id"
        " JOIN j ON j.asset_id = e.id",
    /* By public id, within the org ("": any); by id: export_by_id. */
    [STORE_EXPORT_GET] = "SELECT " EXPORT_COLS_J " WHERE e.public_id = $1"
                         " AND ($2::text = '' OR e.org = $2::text)",
    /* The source (the org's, not deleted) is locked against a concurrent delete as for an
     * export. The clip's id is taken first, so its job (written as STORE_JOB_CREATE writes
     * jobs, without the promote's asset.uploaded) and the asset naming that job are each one
     * INSERT: a CTE cannot update a row another CTE inserted. The answer is read from what
     * they returned, as STORE_ASSET_GET reads it. No row: the source is unknown. */
    [STORE_CLIP_CREATE] =
        "WITH s AS (SELECT id, public_id, master_key FROM assets WHERE id = $1::bigint"
        "  AND org = $2::text AND deleted_ms = 0 FOR KEY SHARE),"
        " d AS (SELECT nextval(pg_get_serial_sequence('assets', 'id')) AS asset_id,"
        "  'transcode'::text AS kind, 0 AS priority, $4::int AS max_attempts, 0 AS mp4,"
        "  (-1)::bigint AS poster_ms FROM s)," JOB_INSERT ","
        " a AS (INSERT INTO assets (id, public_id, org, filename, content_type, size_bytes, state,"
        "  master_key, source_id, source_start_ms, source_end_ms, job_id, created_ms, updated_ms)"
        "  SELECT j.asset_id, $3::text, $2::text, $6::text, $7::text, 0, 'processing', $8::text,"
        "  s.id, $9::bigint, $10::bigint, j.id, " NOW ", " NOW " FROM j, s RETURNING *)"
        " SELECT " ASSET_SEL " FROM a JOIN j ON j.id = a.job_id JOIN s ON s.id = a.source_id",
};

/* STORE_JOB_COUNTS of the queue alone (RD_COUNT_ACTIVE), every second on every node: the
 * predicate of the queue's partial index, so it reads the queue, not every job ever run (the
 * whole table's count took 33-49 ms at 60,000 jobs). */
static const char counts_active[] =
    "SELECT " COUNTS_COLS " FROM jobs WHERE state IN ('queued', 'running') GROUP BY state";

/* Claim variants: one statement per shape, so each gets a plan of its own (an "$n IS NULL OR"
 * filter would make the generic plan sort the whole table). "id = ANY (ARRAY(subquery))" rather
 * than "id IN (subquery)": with a LIMIT that is a parameter the planner would hash-join the
 * whole table; the array makes it fetch the few rows by primary key. */
static const char claim_any[] =
    CLAIM_SET " WHERE j.id = ANY (ARRAY(SELECT j.id FROM jobs j"
              " WHERE j.state IN ('queued', 'running') AND " CLAIMABLE " AND " NOT_BLOCKED
              " ORDER BY j.priority DESC, j.id LIMIT $3"
              " FOR UPDATE SKIP LOCKED)) RETURNING " JOB_COLS;
/* Announced jobs: a row another claimer holds is waited for, then re-checked (READ COMMITTED
 * re-evaluates the WHERE on the new version), so exactly one claimer wins. */
static const char claim_ids[] = CLAIM_SET
    " WHERE j.id = ANY ($3::bigint[]) AND " CLAIMABLE_OF(STATE_BY_KEY) " AND " NOT_BLOCKED
                                                                       " RETURNING " JOB_COLS;
/* STORE_EXPORT_GET by the store's key (workers). */
static const char export_by_id[] = "SELECT " EXPORT_COLS_J " WHERE e.id = $1";
/* Asset reads waiting together (status polls come in floods) in one statement: each row ends
 * with its request's place in the arrays (1-based). The lateral subquery, kept apart by OFFSET
 * 0, is one lookup in the public id's index per request whatever the statistics say (on a
 * table not yet analyzed the planner otherwise scans every asset per statement). */
static const char find_batch[] =
    "SELECT " ASSET_SEL ", q.i FROM unnest($1::text[], $2::text[]) WITH ORDINALITY"
    " AS q(pid, org, i) CROSS JOIN LATERAL (SELECT * FROM assets x WHERE x.public_id = q.pid"
    " OFFSET 0) a LEFT JOIN jobs j ON j.id = a.job_id LEFT JOIN assets s ON s.id = a.source_id"
    " WHERE (q.org = '' OR a.org = q.org) AND a.deleted_ms = 0";

/* ---- migrations (blocking: main thread, before the loops serve) ---- */

/* What the server says besides results (a WARNING from a trigger or an extension, a NOTICE
 * the session's level lets through): one line of reeld's log, not libpq's raw text on stderr
 * between JSON lines. */
static void pg_notice(void *arg, const char *message)
{
    (void)arg;
    char line[512];
    snprintf(line, sizeof(line), "%s", message);
    size_t n = strlen(line);
    while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == ' '))
        line[--n] = '\0';
    log_warn("postgres_notice", KV_STR("message", line));
}

static int exec_blocking(PGconn *c, const char *q, char *err, size_t errlen)
{
    PGresult *res = PQexec(c, q);
    ExecStatusType st = PQresultStatus(res);
    int ok = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;
    if (!ok)
        snprintf(err, errlen, "POSTGRES_URL: migration failed: %s", PQerrorMessage(c));
    PQclear(res);
    return ok ? 0 : -EIO;
}

int store_pg_migrate(const char *url, int upto, char *err, size_t errlen)
{
    if (upto > NMIGRATIONS)
        upto = NMIGRATIONS;
    PGconn *c = PQconnectdb(url);
    if (PQstatus(c) != CONNECTION_OK) {
        snprintf(err, errlen, "POSTGRES_URL: cannot connect: %s", PQerrorMessage(c));
        char *nl = strchr(err, '\n');
        if (nl)
            *nl = '\0';
        PQfinish(c);
        return -ENOTCONN;
    }
    PQsetNoticeProcessor(c, pg_notice, NULL);
    PQclear(PQexec(c, "SET client_min_messages = warning"));
    /* The advisory lock makes nodes starting together migrate one after the other. */
    int r = exec_blocking(c,
                          "BEGIN; SELECT pg_advisory_xact_lock(7305240901);"
                          "CREATE TABLE IF NOT EXISTS schema_version (version integer NOT NULL);"
                          "INSERT INTO schema_version SELECT 0"
                          " WHERE NOT EXISTS (SELECT 1 FROM schema_version);",
                          err, errlen);
    int version = 0;
    if (r == 0) {
        PGresult *res = PQexec(c, "SELECT version FROM schema_version");
        if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1)
            version = atoi(PQgetvalue(res, 0, 0));
        PQclear(res);
        if (version > NMIGRATIONS) {
            snprintf(err, errlen,
                     "POSTGRES_URL: the database has schema version %d, newer than this reeld"
                     " knows (%d); run a newer reeld",
                     version, NMIGRATIONS);
            r = -EPROTO;
        }
    }
    for (int i = version; r == 0 && i < upto; i++) {
        r = exec_blocking(c, migrations[i], err, errlen);
        if (r == 0) {
            char q[64];
            snprintf(q, sizeof(q), "UPDATE schema_version SET version = %d", i + 1);
            r = exec_blocking(c, q, err, errlen);
        }
    }
    if (r == 0)
        r = exec_blocking(c, "COMMIT", err, errlen);
    if (r == 0 && version < upto)
        log_info("store_migrated", KV_STR("backend", "postgres"), KV_INT("from", version),
                 KV_INT("to", upto));
    char *nl = strchr(err, '\n');
    if (r < 0 && nl)
        *nl = '\0';
    PQfinish(c);
    return r;
}

/* ---- the actor ---- */

enum { C_DOWN, C_CONNECTING, C_IDLE, C_BUSY };

typedef struct pgstore pgstore;

typedef struct pg_conn {
    rd_op poll;  /* the one poll on the socket, when `polling` */
    pgstore *st; /* NULL once the store is gone: the last completion frees this */
    PGconn *pg;
    int state;                       /* C_* */
    int polling;                     /* a poll is in flight */
    int flushing;                    /* the request is not all sent yet */
    int analyzing;                   /* in flight: the store's own ANALYZE, for no request */
    rd_msg *req;                     /* the request in flight (C_BUSY) */
    rd_msg *more[PG_FIND_BATCH - 1]; /* asset reads riding in req's statement (find_batch) */
    int nmore;
    PGresult *result; /* its first result */
    rd_timer retry;   /* reconnect after backoff */
    uint32_t backoff_ms;
    int index;
    uint64_t prepared;         /* statements prepared on this connection, by stmt_key bit */
    int preparing;             /* -1, or the key being prepared before the request runs */
    const char *pv[PG_PARAMS]; /* the request's parameters, kept across the prepare */
    int pn;
    char params[PG_PARAM_BUF];
} pg_conn;

typedef struct pg_arg {
    const char *url;
    int pool, outbox;
    rd_stop_hook hook; /* registered once; survives restarts */
    int hooked;
    pgstore *live; /* the current state, for the stop hook */
} pg_arg;

struct pgstore {
    rd_actor *self;
    pg_arg *arg;
    pg_conn *conns[PG_POOL_MAX];
    int npool;
    int down; /* a connection failed and none is up: answer -ENOTCONN at once */
    int stopping;
    int draining; /* the loop is stopping: finish what comes, keep no idle poll armed */
    rd_msg *queue[PG_QUEUE_BOUND]; /* waiting for a connection, FIFO */
    uint32_t qhead, qlen;
    rd_msg *urgent[PG_QUEUE_BOUND]; /* claims and heartbeats: they go first */
    uint32_t uhead, ulen;
    int analyze_due;           /* the jobs table outgrew its statistics (stats_stale) */
    uint64_t analyze_after_ns; /* not again before (ANALYZE_GAP_MS after the last) */
};

static void conn_poll_done(rd_op *op, int res, uint32_t flags);
static void conn_start(pg_conn *c);
static void retry_due(rd_timer *t);
static int send_statement(pg_conn *c);
static void pump(pgstore *st);

static void answer(rd_msg *m, int status)
{
    msg_body(m, store)->status = status;
    if (m->from == NULL || actor_reply(m, m) != 0)
        msg_free(m);
}

/* Answers the asset reads that rode with the connection's request, all with `status`. */
static void answer_more(pg_conn *c, int status)
{
    for (int i = 0; i < c->nmore; i++)
        answer(c->more[i], status);
    c->nmore = 0;
}

static int any_up(const pgstore *st)
{
    for (int i = 0; i < st->npool; i++)
        if (st->conns[i]->state == C_IDLE || st->conns[i]->state == C_BUSY)
            return 1;
    return 0;
}

static void fail_queue(pgstore *st, int err)
{
    while (st->qlen > 0) {
        rd_msg *m = st->queue[st->qhead];
        st->qhead = (st->qhead + 1) % PG_QUEUE_BOUND;
        st->qlen--;
        answer(m, err);
    }
    while (st->ulen > 0) {
        rd_msg *m = st->urgent[st->uhead];
        st->uhead = (st->uhead + 1) % PG_QUEUE_BOUND;
        st->ulen--;
        answer(m, err);
    }
}

/* Claims and heartbeats are what workers wait on (and what a lease depends on): they overtake
 * bulk writes waiting for a connection. (Keeping a connection for them alone measured slower:
 * the bulk writes then queue behind three.) */
static int is_urgent(const rd_msg *m)
{
    int op = msg_body(m, store)->op;
    return op == STORE_JOB_CLAIM || op == STORE_JOB_HEARTBEAT;
}

static void arm(pg_conn *c, unsigned mask)
{
    if (c->polling || (c->st->draining && c->state == C_IDLE))
        return;
    rd_loop *loop = c->st->self->loop;
    struct io_uring_sqe *sqe = loop_sqe(loop, &c->poll);
    io_uring_prep_poll_add(sqe, PQsocket(c->pg), mask);
    c->polling = 1;
}

static void retry_due(rd_timer *t)
{
    pg_conn *c = (pg_conn *)(void *)((char *)t - offsetof(pg_conn, retry));
    conn_start(c);
}

static pg_conn *conn_new(pgstore *st, int index, uint32_t backoff_ms)
{
    pg_conn *c = rd_calloc(1, sizeof(*c), "a postgres connection");
    c->st = st;
    c->index = index;
    c->poll.done = conn_poll_done;
    c->retry.fire = retry_due;
    c->backoff_ms = backoff_ms;
    c->preparing = -1;
    st->conns[index] = c;
    return c;
}

/* The connection is unusable: drop it, answer its request, reconnect after the backoff. A
 * connection with a poll in flight is left to that poll's completion to free (after a cancel),
 * and a fresh one takes its place. */
static void conn_broken(pg_conn *c, const char *why)
{
    pgstore *st = c->st;
    int was = c->state;
    c->analyzing = 0;
    rd_msg *req = c->req;
    c->req = NULL;
    answer_more(c, was == C_BUSY ? -ECONNRESET : -ENOTCONN);
    PQclear(c->result);
    c->result = NULL;
    /* Logged when a connection that worked breaks; failed reconnects only at debug level. */
    if (was == C_IDLE || was == C_BUSY || !st->down)
        log_warn("store_connection_lost", KV_STR("backend", "postgres"), KV_INT("conn", c->index),
                 KV_STR("detail", why), KV_INT("retry_in_ms", c->backoff_ms));
    else
        log_debug("store_connect_failed", KV_STR("backend", "postgres"), KV_INT("conn", c->index),
                  KV_STR("detail", why), KV_INT("retry_in_ms", c->backoff_ms));
    if (c->polling) {
        struct io_uring_sqe *sqe = loop_sqe(st->self->loop, NULL);
        io_uring_prep_poll_remove(sqe, (uint64_t)(uintptr_t)&c->poll);
        c->st = NULL;
        c = conn_new(st, c->index, c->backoff_ms);
    } else {
        PQfinish(c->pg);
        c->pg = NULL;
    }
    c->state = C_DOWN;
    c->flushing = 0;
    if (req != NULL)
        answer(req, was == C_BUSY ? -ECONNRESET : -ENOTCONN);
    if (!any_up(st)) {
        st->down = 1;
        fail_queue(st, -ENOTCONN);
    }
    if (!st->stopping && !st->draining)
        loop_timer_start(st->self->loop, &c->retry, (uint64_t)c->backoff_ms * 1000000ull, 0);
    c->backoff_ms = c->backoff_ms * 2 > PG_BACKOFF_MAX ? PG_BACKOFF_MAX : c->backoff_ms * 2;
}

static void connect_step(pg_conn *c)
{
    switch (PQconnectPoll(c->pg)) {
    case PGRES_POLLING_READING:
        arm(c, POLLIN);
        return;
    case PGRES_POLLING_WRITING:
        arm(c, POLLOUT);
        return;
    case PGRES_POLLING_OK:
        c->state = C_IDLE;
        c->backoff_ms = PG_BACKOFF_MIN;
        if (c->st->down)
            log_info("store_reconnected", KV_STR("backend", "postgres"), KV_INT("conn", c->index));
        c->st->down = 0;
        arm(c, POLLIN); /* notices the server going away while idle */
        pump(c->st);
        return;
    default:
        conn_broken(c, PQerrorMessage(c->pg));
        return;
    }
}

static void conn_start(pg_conn *c)
{
    c->prepared = 0; /* a new session has no prepared statements */
    c->preparing = -1;
    c->pg = PQconnectStart(c->st->arg->url);
    if (c->pg == NULL || PQstatus(c->pg) == CONNECTION_BAD) {
        conn_broken(c, c->pg ? PQerrorMessage(c->pg) : "out of memory");
        return;
    }
    PQsetnonblocking(c->pg, 1);
    PQsetNoticeProcessor(c->pg, pg_notice, NULL);
    c->state = C_CONNECTING;
    arm(c, POLLOUT);
}

/* ---- building a request's parameters (text format) ---- */

typedef struct params {
    const char *v[PG_PARAMS];
    int n;
    char *buf;
    size_t len, cap;
    int overflow;
} params;

static char *pstart(params *p)
{
    return p->buf + p->len;
}

static void pputc(params *p, char ch)
{
    if (p->len + 1 < p->cap)
        p->buf[p->len++] = ch;
    else
        p->overflow = 1;
}

static void pputs(params *p, const char *s)
{
    while (*s)
        pputc(p, *s++);
}

static void pputi(params *p, int64_t v)
{
    char tmp[24];
    snprintf(tmp, sizeof(tmp), "%lld", (long long)v);
    pputs(p, tmp);
}

/* Ends the value being built and adds it as the next parameter. */
static void pend(params *p, char *start)
{
    pputc(p, '\0');
    p->v[p->n++] = p->overflow ? "" : start;
}

static void param_text(params *p, const char *s)
{
    char *start = pstart(p);
    pputs(p, s);
    pend(p, start);
}

/* An element of a text[] literal: quoted, \ and " escaped. */
static void pquote(params *p, const char *s)
{
    pputc(p, '"');
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            pputc(p, '\\');
        pputc(p, *s);
    }
    pputc(p, '"');
}

static void param_int(params *p, int64_t v)
{
    char *start = pstart(p);
    pputi(p, v);
    pend(p, start);
}

enum {
    F_ID,
    F_ASSET,
    F_PRIORITY,
    F_MAX_ATTEMPTS,
    F_ATTEMPTS,
    F_PROGRESS,
    F_RETRY,
    F_MP4,
    F_POSTER
};

static int64_t job_field(const rd_job *j, int f)
{
    switch (f) {
    case F_ID:
        return j->id;
    case F_ASSET:
        return j->asset_id;
    case F_PRIORITY:
        return j->priority;
    case F_MAX_ATTEMPTS:
        return j->max_attempts > 0 ? j->max_attempts : 5;
    case F_ATTEMPTS:
        return j->attempts;
    case F_PROGRESS:
        return j->progress;
    case F_MP4:
        return j->mp4 ? 1 : 0;
    case F_POSTER:
        return j->has_poster && j->poster_ms >= 0 ? j->poster_ms : -1;
    default:
        return j->retry_ms;
    }
}

static void param_int_array(params *p, const struct rd_msg_store *b, int f)
{
    char *start = pstart(p);
    pputc(p, '{');
    for (uint32_t i = 0; i < b->n; i++) {
        if (i)
            pputc(p, ',');
        pputi(p, job_field(&b->jobs[i], f));
    }
    pputc(p, '}');
    pend(p, start);
}

/* A text[] literal of the jobs' kinds (f = 0) or errors (f = 1): quoted, \ and " escaped. */
static void param_text_array(params *p, const struct rd_msg_store *b, int f)
{
    char *start = pstart(p);
    pputc(p, '{');
    for (uint32_t i = 0; i < b->n; i++) {
        if (i)
            pputc(p, ',');
        pquote(p, f ? b->jobs[i].error : b->jobs[i].kind);
    }
    pputc(p, '}');
    pend(p, start);
}

static uint32_t page_limit(const struct rd_msg_store *b)
{
    return b->limit == 0 || b->limit > RD_STORE_BATCH ? RD_STORE_BATCH : b->limit;
}

/* Fills the parameters of request `b`. 0 or -EINVAL. */
static int build(pg_conn *c, const struct rd_msg_store *b, params *p)
{
    p->buf = c->params;
    p->cap = sizeof(c->params);
    if (b->n > RD_STORE_BATCH || b->op == 0 || b->op >= STORE_OP_COUNT)
        return -EINVAL;
    const rd_asset *a = &b->assets[0];
    switch (b->op) {
    case STORE_ASSET_CREATE:
        if (a->public_id[0] == '\0' || a->org[0] == '\0')
            return -EINVAL;
        param_text(p, a->public_id);
        param_text(p, a->org);
        param_text(p, a->filename);
        param_text(p, a->content_type);
        param_int(p, a->size_bytes);
        param_text(p, a->state[0] ? a->state : "uploading");
        param_text(p, a->staging_key);
        param_text(p, a->master_key);
        param_text(p, a->upload_id);
        param_int(p, a->part_size);
        param_int(p, a->nparts);
        break;
    case STORE_ASSET_GET:
        param_int(p, a->id);
        break;
    case STORE_ASSET_LIST:
        param_int(p, b->cursor);
        param_int(p, page_limit(b) + 1);
        param_text(p, a->org);
        param_text(p, a->state);
        break;
    case STORE_ASSET_FIND:
        if (c->nmore == 0) {
            param_text(p, a->public_id);
            param_text(p, a->org);
            break;
        }
        for (int f = 0; f < 2; f++) { /* the ids, then the orgs */
            char *start = pstart(p);
            pputc(p, '{');
            for (int i = 0; i <= c->nmore; i++) {
                const rd_asset *x = &msg_body(i ? c->more[i - 1] : c->req, store)->assets[0];
                if (i)
                    pputc(p, ',');
                pquote(p, f ? x->org : x->public_id);
            }
            pputc(p, '}');
            pend(p, start);
        }
        break;
    case STORE_ORG_ACTIVE_JOBS:
        param_text(p, a->org);
        break;
    case STORE_ASSET_EXPIRE:
        param_int(p, b->cursor);
        param_int(p, page_limit(b));
        break;
    case STORE_ASSET_UPDATE: {
        int processing = strcmp(a->state, "processing") == 0;
        if (a->public_id[0] == '\0' || a->org[0] == '\0' ||
            (processing ? a->job_id <= 0 : strcmp(a->state, "uploaded") != 0 || a->job_id != 0))
            return -EINVAL;
        param_text(p, a->public_id);
        param_text(p, a->org);
        param_text(p, a->state);
        param_int(p, a->job_id);
        break;
    }
    case STORE_RENDITION_PUT: {
        const rd_rendition *r = &b->renditions[0];
        param_int(p, r->asset_id);
        param_text(p, r->name);
        param_int(p, r->width);
        param_int(p, r->height);
        param_int(p, r->bitrate_kbps);
        param_text(p, r->playlist_key);
        param_int(p, r->duration_ms);
        break;
    }
    case STORE_RENDITION_LIST:
        param_int(p, b->asset_id);
        break;
    case STORE_JOB_CREATE:
        for (uint32_t i = 0; i < b->n; i++)
            if (b->jobs[i].kind[0] == '\0' || b->jobs[i].asset_id <= 0)
                return -EINVAL;
        param_int_array(p, b, F_ASSET);
        param_text_array(p, b, 0);
        param_int_array(p, b, F_PRIORITY);
        param_int_array(p, b, F_MAX_ATTEMPTS);
        param_text(p, c->st->arg->outbox ? "true" : "false");
        param_int_array(p, b, F_MP4);
        param_int_array(p, b, F_POSTER);
        param_int(p, store_webhook_max_attempts); /* $8 */
        break;
    case STORE_JOB_GET:
    case STORE_JOB_CANCEL:
        param_int(p, b->jobs[0].id);
        break;
    case STORE_JOB_LIST:
        param_int(p, b->cursor);
        param_int(p, page_limit(b) + 1);
        param_text(p, job_state_name(b->state));
        break;
    case STORE_JOB_CLAIM:
        if (b->owner[0] == '\0' || b->lease_ms <= 0)
            return -EINVAL;
        param_text(p, b->owner);
        param_int(p, b->lease_ms);
        if (b->n > 0) {
            param_int_array(p, b, F_ID);
        } else {
            param_int(p, page_limit(b));
            if (b->kind[0])
                param_text(p, b->kind);
        }
        break;
    case STORE_JOB_HEARTBEAT:
    case STORE_JOB_COMPLETE:
    case STORE_JOB_FAIL:
    case STORE_JOB_RELEASE:
        param_text(p, b->owner);
        param_int(p, b->lease_ms);
        param_int_array(p, b, F_ID);
        param_int_array(p, b, F_ATTEMPTS);
        param_int_array(p, b, b->op == STORE_JOB_HEARTBEAT ? F_PROGRESS : F_RETRY);
        param_text_array(p, b, 1);
        if (b->op == STORE_JOB_COMPLETE || b->op == STORE_JOB_FAIL) {
            param_text(p, c->st->arg->outbox ? "true" : "false");
            param_int(p, store_webhook_max_attempts);
        }
        break;
    case STORE_WEBHOOK_PUT:
    case STORE_WEBHOOK_GET:
    case STORE_WEBHOOK_DELETE:
    case STORE_WEBHOOK_ROTATE:
        if (b->webhook.org[0] == '\0')
            return -EINVAL;
        param_text(p, b->webhook.org);
        if (b->op == STORE_WEBHOOK_PUT) {
            if (b->webhook.url[0] == '\0' || b->webhook.secret[0] == '\0')
                return -EINVAL;
            param_text(p, b->webhook.url);
            param_text(p, b->webhook.events);
            param_text(p, b->webhook.secret);
        } else if (b->op == STORE_WEBHOOK_ROTATE) {
            if (b->webhook.secret[0] == '\0')
                return -EINVAL;
            param_text(p, b->webhook.secret);
            param_int(p, b->lease_ms);
        }
        break;
    case STORE_WEBHOOK_EVENT:
        param_int(p, b->deliveries[0].event_row);
        break;
    case STORE_WEBHOOK_ATTEMPT: {
        const rd_webhook_delivery *d = &b->deliveries[0];
        param_int(p, d->event_row);
        param_int(p, d->attempt);
        param_int(p, d->status_code);
        param_int(p, d->latency_ms);
        param_text(p, d->state);
        param_text(p, d->error);
        break;
    }
    case STORE_WEBHOOK_LIST:
        param_text(p, b->webhook.org);
        param_int(p, b->cursor);
        param_int(p, page_limit(b) + 1);
        break;
    case STORE_ASSET_DELETE:
        if (a->public_id[0] == '\0' || a->org[0] == '\0')
            return -EINVAL;
        param_text(p, a->public_id);
        param_text(p, a->org);
        param_text(p, c->st->arg->outbox ? "true" : "false");
        param_int(p, store_webhook_max_attempts);
        break;
    case STORE_ASSET_PURGE_DUE:
        param_int(p, page_limit(b));
        param_int(p, b->lease_ms > 0 ? b->lease_ms : 60000);
        break;
    case STORE_ASSET_PURGED:
        param_int(p, a->id);
        param_int(p, b->lease_ms);
        param_int(p, a->master_until_ms);
        break;
    case STORE_ASSET_DELETED:
        param_int(p, b->cursor);
        param_int(p, b->asset_id);
        param_int(p, b->lease_ms);
        param_int(p, page_limit(b));
        break;
    case STORE_CAPTION_PUT:
    case STORE_CAPTION_LIST:
    case STORE_CAPTION_DELETE: {
        const rd_caption *cap = &b->captions[0];
        if (b->op == STORE_CAPTION_PUT && cap->lang[0] == '\0')
            return -EINVAL;
        param_int(p, b->asset_id);
        if (b->op == STORE_CAPTION_LIST)
            break;
        param_text(p, cap->lang);
        if (b->op == STORE_CAPTION_PUT) {
            param_text(p, cap->name);
            param_int(p, cap->is_default ? 1 : 0);
            param_int(p, RD_CAPTIONS_MAX);
        }
        break;
    }
    case STORE_EXPORT_CREATE: {
        /* jobs[0] shares the union with exports[0]: its max_attempts lies over
         * exports[0].updated_ms, which is not an input. */
        const rd_export *e = &b->exports[0];
        if (e->asset_id <= 0 || e->public_id[0] == '\0' || e->org[0] == '\0' ||
            e->format[0] == '\0' || e->start_ms < 0 || e->end_ms <= e->start_ms || e->height < 0)
            return -EINVAL;
        param_int(p, e->asset_id);
        param_text(p, e->org);
        param_text(p, e->public_id);
        param_int(p, job_field(&b->jobs[0], F_MAX_ATTEMPTS));
        param_text(p, c->st->arg->outbox ? "true" : "false"); /* $5, as JOB_INSERT reads it */
        param_int(p, e->start_ms);
        param_int(p, e->end_ms);
        param_int(p, e->height);
        param_text(p, e->lang);
        param_text(p, e->format);
        break;
    }
    case STORE_CLIP_CREATE:
        /* jobs[0] shares the union with assets[0]: its max_attempts lies over
         * assets[0].job_state, which is not an input. */
        if (a->public_id[0] == '\0' || a->org[0] == '\0' || a->source_id <= 0 ||
            a->source_start_ms < 0 || a->source_end_ms <= a->source_start_ms)
            return -EINVAL;
        param_int(p, a->source_id);
        param_text(p, a->org);
        param_text(p, a->public_id);
        param_int(p, job_field(&b->jobs[0], F_MAX_ATTEMPTS));
        param_text(p, c->st->arg->outbox ? "true" : "false"); /* $5, as JOB_INSERT reads it */
        param_text(p, a->filename);
        param_text(p, a->content_type);
        param_text(p, a->master_key);
        param_int(p, a->source_start_ms);
        param_int(p, a->source_end_ms);
        break;
    case STORE_EXPORT_GET:
        if (b->exports[0].public_id[0] != '\0') {
            param_text(p, b->exports[0].public_id);
            param_text(p, b->exports[0].org);
        } else if (b->exports[0].id > 0) {
            param_int(p, b->exports[0].id);
        } else {
            return -EINVAL;
        }
        break;
    case STORE_JOB_COUNTS:
    case STORE_JOB_SWEEP:
        break;
    case STORE_OUTBOX_TAKE:
        param_int(p, page_limit(b));
        break;
    case STORE_JOB_DUE:
        param_int(p, b->cursor);
        param_int(p, page_limit(b));
        param_int(p, b->lease_ms);
        break;
    }
    return p->overflow ? -EINVAL : 0;
}

/* ---- reading results ---- */

static int64_t num(const PGresult *r, int row, int col)
{
    return strtoll(PQgetvalue(r, row, col), NULL, 10);
}

static void text(char *dst, size_t cap, const PGresult *r, int row, int col)
{
    snprintf(dst, cap, "%s", PQgetvalue(r, row, col));
}

static int state_of(const PGresult *r, int row, int col)
{
    return job_state_parse(PQgetvalue(r, row, col), (size_t)PQgetlength(r, row, col));
}

static void read_job(const PGresult *r, int row, rd_job *j)
{
    memset(j, 0, sizeof(*j));
    j->id = num(r, row, 0);
    j->asset_id = num(r, row, 1);
    text(j->kind, sizeof(j->kind), r, row, 2);
    j->state = state_of(r, row, 3);
    j->priority = (int32_t)num(r, row, 4);
    j->attempts = (int32_t)num(r, row, 5);
    j->max_attempts = (int32_t)num(r, row, 6);
    j->progress = (int32_t)num(r, row, 7);
    j->run_after_ms = num(r, row, 8);
    j->lease_expires_ms = num(r, row, 9);
    j->created_ms = num(r, row, 10);
    j->updated_ms = num(r, row, 11);
    text(j->lease_owner, sizeof(j->lease_owner), r, row, 12);
    text(j->error, sizeof(j->error), r, row, 13);
    j->mp4 = (int32_t)num(r, row, 14);
    j->poster_ms = num(r, row, 15);
    j->has_poster = j->poster_ms >= 0;
    if (!j->has_poster)
        j->poster_ms = 0;
}

static void read_asset(const PGresult *r, int row, rd_asset *a)
{
    memset(a, 0, sizeof(*a));
    a->id = num(r, row, 0);
    text(a->public_id, sizeof(a->public_id), r, row, 1);
    text(a->org, sizeof(a->org), r, row, 2);
    text(a->filename, sizeof(a->filename), r, row, 3);
    text(a->content_type, sizeof(a->content_type), r, row, 4);
    a->size_bytes = num(r, row, 5);
    text(a->state, sizeof(a->state), r, row, 6);
    text(a->staging_key, sizeof(a->staging_key), r, row, 7);
    text(a->master_key, sizeof(a->master_key), r, row, 8);
    text(a->upload_id, sizeof(a->upload_id), r, row, 9);
    a->part_size = num(r, row, 10);
    a->nparts = (int32_t)num(r, row, 11);
    a->job_id = num(r, row, 12);
    a->created_ms = num(r, row, 13);
    a->updated_ms = num(r, row, 14);
    a->job_state = state_of(r, row, 15);
    a->job_progress = (int32_t)num(r, row, 16);
    a->job_attempts = (int32_t)num(r, row, 17);
    text(a->job_error, sizeof(a->job_error), r, row, 18);
    a->deleted_ms = num(r, row, 19);
    a->purge_after_ms = num(r, row, 20);
    a->master_until_ms = num(r, row, 21);
    a->source_id = num(r, row, 22);
    a->source_start_ms = num(r, row, 23);
    a->source_end_ms = num(r, row, 24);
    text(a->source_public, sizeof(a->source_public), r, row, 25);
    text(a->source_master, sizeof(a->source_master), r, row, 26);
}

static void read_caption(const PGresult *r, int row, int col, rd_caption *c)
{
    memset(c, 0, sizeof(*c));
    text(c->lang, sizeof(c->lang), r, row, col);
    text(c->name, sizeof(c->name), r, row, col + 1);
    c->is_default = num(r, row, col + 2) != 0;
    c->created_ms = num(r, row, col + 3);
    c->updated_ms = num(r, row, col + 4);
}

static void read_export(const PGresult *r, int row, rd_export *e)
{
    memset(e, 0, sizeof(*e));
    e->id = num(r, row, 0);
    e->asset_id = num(r, row, 1);
    e->job_id = num(r, row, 2);
    e->start_ms = num(r, row, 3);
    e->end_ms = num(r, row, 4);
    e->created_ms = num(r, row, 5);
    e->updated_ms = num(r, row, 6);
    e->height = (int32_t)num(r, row, 7);
    text(e->public_id, sizeof(e->public_id), r, row, 8);
    text(e->org, sizeof(e->org), r, row, 9);
    text(e->lang, sizeof(e->lang), r, row, 10);
    text(e->format, sizeof(e->format), r, row, 11);
    text(e->asset_public, sizeof(e->asset_public), r, row, 12);
    text(e->master_key, sizeof(e->master_key), r, row, 13);
    e->job_state = state_of(r, row, 14);
    e->job_progress = (int32_t)num(r, row, 15);
    e->job_attempts = (int32_t)num(r, row, 16);
    text(e->job_error, sizeof(e->job_error), r, row, 17);
}

/* Fills request `b` from result `r`; returns the status. */
static int read_result(struct rd_msg_store *b, const PGresult *r)
{
    int rows = PQntuples(r);
    uint32_t limit = page_limit(b);
    switch (b->op) {
    case STORE_ORG_ACTIVE_JOBS:
        b->counts.active = rows ? strtoll(PQgetvalue(r, 0, 0), NULL, 10) : 0;
        return 0;
    case STORE_ASSET_EXPIRE:
        b->n = 0;
        for (int i = 0; i < rows && b->n < RD_STORE_BATCH; i++)
            read_asset(r, i, &b->assets[b->n++]);
        return 0;
    case STORE_ASSET_CREATE:
    case STORE_ASSET_GET:
    case STORE_ASSET_FIND:
    case STORE_ASSET_UPDATE:
    case STORE_CLIP_CREATE:
        if (rows == 0)
            return -ENOENT;
        read_asset(r, 0, &b->assets[0]);
        b->n = 1;
        return 0;
    case STORE_ASSET_LIST:
        b->n = 0;
        b->cursor = 0;
        for (int i = 0; i < rows; i++) {
            if (b->n == limit) {
                b->cursor = b->assets[b->n - 1].id;
                break;
            }
            read_asset(r, i, &b->assets[b->n++]);
        }
        return 0;
    case STORE_RENDITION_PUT:
        b->renditions[0].id = rows ? num(r, 0, 0) : 0;
        b->n = 1;
        return 0;
    case STORE_RENDITION_LIST:
        b->n = 0;
        for (int i = 0; i < rows && i < RD_STORE_BATCH; i++) {
            rd_rendition *x = &b->renditions[b->n++];
            memset(x, 0, sizeof(*x));
            x->id = num(r, i, 0);
            x->asset_id = num(r, i, 1);
            text(x->name, sizeof(x->name), r, i, 2);
            x->width = (int32_t)num(r, i, 3);
            x->height = (int32_t)num(r, i, 4);
            x->bitrate_kbps = (int32_t)num(r, i, 5);
            text(x->playlist_key, sizeof(x->playlist_key), r, i, 6);
        }
        return 0;
    case STORE_JOB_CREATE:
        /* Rows come back in any order: put each where its (asset, kind) was asked. */
        for (int i = 0; i < rows; i++) {
            rd_job j;
            read_job(r, i, &j);
            j.created = PQgetvalue(r, i, 16)[0] == 't';
            for (uint32_t k = 0; k < b->n; k++) {
                if (b->jobs[k].id == 0 && b->jobs[k].asset_id == j.asset_id &&
                    strcmp(b->jobs[k].kind, j.kind) == 0) {
                    b->jobs[k] = j;
                    break;
                }
            }
        }
        return 0;
    case STORE_JOB_GET:
        if (rows == 0)
            return -ENOENT;
        read_job(r, 0, &b->jobs[0]);
        b->n = 1;
        return 0;
    case STORE_JOB_LIST:
        b->n = 0;
        b->cursor = 0;
        for (int i = 0; i < rows; i++) {
            if (b->n == limit) {
                b->cursor = b->jobs[b->n - 1].id;
                break;
            }
            read_job(r, i, &b->jobs[b->n++]);
        }
        return 0;
    case STORE_JOB_CLAIM:
        b->n = 0;
        for (int i = 0; i < rows && i < RD_STORE_BATCH; i++)
            read_job(r, i, &b->jobs[b->n++]);
        return 0;
    case STORE_JOB_HEARTBEAT:
    case STORE_JOB_COMPLETE:
    case STORE_JOB_FAIL:
    case STORE_JOB_RELEASE:
        for (int i = 0; i < rows; i++) {
            int64_t id = num(r, i, 0);
            for (uint32_t k = 0; k < b->n; k++)
                if (b->jobs[k].id == id)
                    b->jobs[k].state = state_of(r, i, 1);
        }
        return 0;
    case STORE_JOB_CANCEL:
        if (rows == 0)
            return -ENOENT;
        read_job(r, 0, &b->jobs[0]);
        b->n = 1;
        return num(r, 0, 16) == 1 ? 0 : -EALREADY;
    case STORE_JOB_COUNTS:
        memset(&b->counts, 0, sizeof(b->counts));
        if (b->state == RD_COUNT_ACTIVE)
            b->counts.completed = b->counts.failed = b->counts.dead = -1;
        for (int i = 0; i < rows; i++) {
            queue_counts_add(&b->counts, state_of(r, i, 0), num(r, i, 1));
            if (num(r, i, 2) > b->counts.oldest_queued_ms)
                b->counts.oldest_queued_ms = num(r, i, 2);
            if (num(r, i, 3) > b->counts.oldest_webhook_ms)
                b->counts.oldest_webhook_ms = num(r, i, 3);
        }
        return 0;
    case STORE_JOB_SWEEP:
        b->n = (uint32_t)atoi(PQcmdTuples((PGresult *)r));
        return 0;
    case STORE_OUTBOX_TAKE:
    case STORE_JOB_DUE:
        b->n = 0;
        for (int i = 0; i < rows && i < RD_STORE_BATCH; i++) {
            memset(&b->jobs[b->n], 0, sizeof(rd_job));
            b->jobs[b->n].id = num(r, i, 0);
            text(b->jobs[b->n].kind, sizeof(b->jobs[b->n].kind), r, i, 1);
            b->n++;
        }
        if (b->op == STORE_JOB_DUE)
            b->cursor = b->n == limit ? b->jobs[b->n - 1].id : 0;
        return 0;
    case STORE_WEBHOOK_PUT:
    case STORE_WEBHOOK_GET:
    case STORE_WEBHOOK_DELETE:
    case STORE_WEBHOOK_ROTATE: {
        if (rows == 0)
            return -ENOENT;
        rd_webhook *w = &b->webhook;
        memset(w, 0, sizeof(*w));
        text(w->org, sizeof(w->org), r, 0, 0);
        text(w->url, sizeof(w->url), r, 0, 1);
        text(w->events, sizeof(w->events), r, 0, 2);
        text(w->secret, sizeof(w->secret), r, 0, 3);
        text(w->previous, sizeof(w->previous), r, 0, 4);
        w->previous_until_ms = num(r, 0, 5);
        w->created_ms = num(r, 0, 6);
        w->updated_ms = num(r, 0, 7);
        if (b->op == STORE_WEBHOOK_PUT)
            w->created = PQgetvalue(r, 0, 8)[0] == 't';
        return 0;
    }
    case STORE_WEBHOOK_EVENT: {
        if (rows == 0)
            return -ENOENT;
        rd_webhook_delivery *d = &b->deliveries[0];
        memset(d, 0, sizeof(*d));
        d->event_row = num(r, 0, 0);
        d->asset_id = num(r, 0, 1);
        d->created_ms = num(r, 0, 2);
        text(d->event_id, sizeof(d->event_id), r, 0, 3);
        text(d->type, sizeof(d->type), r, 0, 4);
        text(d->org, sizeof(d->org), r, 0, 5);
        text(d->asset_public, sizeof(d->asset_public), r, 0, 6);
        text(d->error, sizeof(d->error), r, 0, 7);
        rd_webhook *w = &b->webhook;
        memset(w, 0, sizeof(*w));
        snprintf(w->org, sizeof(w->org), "%s", d->org);
        text(w->url, sizeof(w->url), r, 0, 8);
        text(w->events, sizeof(w->events), r, 0, 9);
        text(w->secret, sizeof(w->secret), r, 0, 10);
        text(w->previous, sizeof(w->previous), r, 0, 11);
        w->previous_until_ms = num(r, 0, 12);
        d->duration_ms = num(r, 0, 13);
        d->export_id = num(r, 0, 14);
        text(d->export_public, sizeof(d->export_public), r, 0, 15);
        d->export_start_ms = num(r, 0, 16);
        d->export_end_ms = num(r, 0, 17);
        text(d->export_lang, sizeof(d->export_lang), r, 0, 18);
        text(d->master_key, sizeof(d->master_key), r, 0, 19);
        b->n = 1;
        return 0;
    }
    case STORE_WEBHOOK_ATTEMPT:
        return 0;
    case STORE_WEBHOOK_LIST:
        b->n = 0;
        b->cursor = 0;
        for (int i = 0; i < rows; i++) {
            if (b->n == limit) {
                b->cursor = b->deliveries[b->n - 1].id;
                break;
            }
            rd_webhook_delivery *d = &b->deliveries[b->n++];
            memset(d, 0, sizeof(*d));
            d->id = num(r, i, 0);
            d->event_row = num(r, i, 1);
            d->asset_id = num(r, i, 2);
            d->created_ms = num(r, i, 3);
            d->next_retry_ms = num(r, i, 4);
            d->status_code = (int32_t)num(r, i, 5);
            d->latency_ms = (int32_t)num(r, i, 6);
            d->attempt = (int32_t)num(r, i, 7);
            text(d->event_id, sizeof(d->event_id), r, i, 8);
            text(d->type, sizeof(d->type), r, i, 9);
            text(d->org, sizeof(d->org), r, i, 10);
            text(d->asset_public, sizeof(d->asset_public), r, i, 11);
            text(d->state, sizeof(d->state), r, i, 12);
            text(d->error, sizeof(d->error), r, i, 13);
        }
        return 0;
    case STORE_ASSET_DELETE:
        if (rows == 0)
            return -ENOENT;
        read_asset(r, 0, &b->assets[0]);
        b->n = 1;
        b->state = strcmp(PQgetvalue(r, 0, 27), "t") == 0;
        return 0;
    case STORE_ASSET_PURGED:
        return rows == 0 ? -ENOENT : 0;
    case STORE_ASSET_PURGE_DUE:
    case STORE_ASSET_DELETED:
        b->n = 0;
        for (int i = 0; i < rows && b->n < RD_STORE_BATCH; i++)
            read_asset(r, i, &b->assets[b->n++]);
        return 0;
    case STORE_CAPTION_PUT:
        if (rows != 1 || num(r, 0, 0) == 0)
            return -ENOENT;
        if (PQgetisnull(r, 0, 1))
            return -ENOSPC;
        read_caption(r, 0, 1, &b->captions[0]);
        b->n = 1;
        b->state = PQgetvalue(r, 0, 6)[0] == 't';
        b->cursor = num(r, 0, 7);
        return 0;
    case STORE_CAPTION_LIST:
        if (rows == 0)
            return -ENOENT;
        b->n = 0;
        b->cursor = num(r, 0, 0);
        for (int i = 0; i < rows && b->n < RD_STORE_BATCH && !PQgetisnull(r, i, 1); i++)
            read_caption(r, i, 1, &b->captions[b->n++]);
        return 0;
    case STORE_CAPTION_DELETE:
        if (rows == 0)
            return -ENOENT;
        b->cursor = num(r, 0, 0);
        return 0;
    case STORE_EXPORT_CREATE:
    case STORE_EXPORT_GET:
        if (rows == 0)
            return -ENOENT;
        read_export(r, 0, &b->exports[0]);
        if (b->op == STORE_EXPORT_CREATE)
            b->exports[0].created = PQgetvalue(r, 0, 18)[0] == 't';
        b->n = 1;
        return 0;
    case STORE_OP_COUNT:
        break;
    }
    return -EINVAL;
}

/* A failed statement: SQLSTATE classes that mean "try again" become retryable errors. */
static int result_error(const PGresult *r)
{
    const char *code = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    if (code == NULL)
        return -EIO;
    if (!strncmp(code, "40", 2) || !strncmp(code, "53", 2) || !strncmp(code, "57", 2) ||
        !strncmp(code, "08", 2))
        return -EAGAIN; /* serialization, resources, shutdown, connection */
    if (!strncmp(code, "22", 2) || !strncmp(code, "23", 2))
        return -EINVAL; /* bad data, constraint */
    return -EIO;
}

/* ---- running requests ---- */

/* PostgreSQL plans a prepared statement for good once it has run a few times, with the
 * statistics of that moment, and plans again only when they change; autoanalyze looks at most
 * once a minute (autovacuum_naptime). A queue that grows from empty faster than that kept plans
 * made for an empty table: every completion and claim read the whole jobs table (bench/dispatch
 * at 2,500 jobs/s offered: 9,400 rows read per statement, claim p99 13 ms). So the store takes
 * the statistics itself once the table is twice the size they say (and at least
 * STATS_MIN_PAGES: some hundreds of jobs); that is a few times while a table grows from empty,
 * then autovacuum keeps them. Only the columns the claim filters on (a sixth of the time of the
 * whole row's: 37-68 ms at 60,000 jobs under load). SKIP_LOCKED: a fleet's nodes that notice
 * together do not queue behind one another. */
#define STATS_MIN_PAGES 16
/* An ANALYZE that changed nothing (skipped: another one held the table; refused: the role does
 * not own it) is not tried again every second. */
#define ANALYZE_GAP_MS 10000

/* 1 when STORE_JOB_COUNTS' answer says the statistics are stale (its last two columns are
 * JOBS_PAGES). An answer with no rows (an empty queue) says nothing. */
static int stats_stale(const PGresult *r)
{
    if (PQntuples(r) == 0)
        return 0;
    int64_t planned = num(r, 0, 4), pages = num(r, 0, 5);
    return pages >= STATS_MIN_PAGES && pages > 2 * planned;
}

static void analyzed(pg_conn *c)
{
    PGresult *r = c->result;
    if (r == NULL || PQresultStatus(r) != PGRES_COMMAND_OK)
        log_warn("store_analyze_failed", KV_STR("backend", "postgres"),
                 KV_STR("detail", r ? PQresultErrorMessage(r) : PQerrorMessage(c->pg)));
    else
        log_info("store_analyzed", KV_STR("backend", "postgres"), KV_STR("table", "jobs"));
    PQclear(r);
    c->result = NULL;
    c->analyzing = 0;
    c->state = C_IDLE;
}

static void finish_request(pg_conn *c)
{
    if (c->analyzing) {
        analyzed(c);
        return;
    }
    rd_msg *m = c->req;
    struct rd_msg_store *b = msg_body(m, store);
    PGresult *r = c->result;
    int status;
    ExecStatusType es = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
    if (es == PGRES_TUPLES_OK && c->nmore > 0) {
        /* find_batch: each row names its request; the others found nothing. */
        rd_msg *all[PG_FIND_BATCH];
        int found[PG_FIND_BATCH] = {0}, n = c->nmore + 1;
        all[0] = m;
        memcpy(all + 1, c->more, sizeof(rd_msg *) * (size_t)c->nmore);
        for (int row = 0; row < PQntuples(r); row++) {
            int64_t i = num(r, row, PQnfields(r) - 1) - 1;
            if (i < 0 || i >= n)
                continue;
            struct rd_msg_store *x = msg_body(all[i], store);
            read_asset(r, row, &x->assets[0]);
            x->n = 1;
            found[i] = 1;
        }
        c->nmore = 0;
        for (int i = 1; i < n; i++)
            answer(all[i], found[i] ? 0 : -ENOENT);
        status = found[0] ? 0 : -ENOENT;
    } else if (es == PGRES_TUPLES_OK || es == PGRES_COMMAND_OK) {
        status = read_result(b, r);
        if (status == 0 && b->op == STORE_JOB_COUNTS && stats_stale(r) &&
            rd_now_ns() >= c->st->analyze_after_ns)
            c->st->analyze_due = 1;
    } else {
        status = r ? result_error(r) : -EIO;
        const char *code = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
        if (code != NULL && strcmp(code, "26000") == 0) {
            /* Our prepared statements are gone (DISCARD ALL, a pooler): prepare again. */
            c->prepared = 0;
            status = -EAGAIN;
        }
        log_warn("store_failed", KV_STR("backend", "postgres"), KV_INT("op", b->op),
                 KV_ERRNO(status),
                 KV_STR("detail", r ? PQresultErrorMessage(r) : PQerrorMessage(c->pg)));
    }
    PQclear(r);
    c->result = NULL;
    c->req = NULL;
    c->state = C_IDLE;
    answer_more(c, status);
    answer(m, status);
}

/* Reads what the server sent; finishes the request when its results are all in. */
static void conn_read(pg_conn *c)
{
    if (!PQconsumeInput(c->pg)) {
        conn_broken(c, PQerrorMessage(c->pg));
        return;
    }
    if (c->state == C_IDLE) {
        PGnotify *n;
        while ((n = PQnotifies(c->pg)) != NULL)
            PQfreemem(n);
        if (PQstatus(c->pg) == CONNECTION_BAD)
            conn_broken(c, PQerrorMessage(c->pg));
        else
            arm(c, POLLIN);
        return;
    }
    while (!PQisBusy(c->pg)) {
        PGresult *r = PQgetResult(c->pg);
        if (r == NULL && c->preparing >= 0 && c->result != NULL &&
            PQresultStatus(c->result) == PGRES_COMMAND_OK) {
            /* Prepared: now run it. */
            c->prepared |= 1ull << c->preparing;
            PQclear(c->result);
            c->result = NULL;
            if (send_statement(c) < 0)
                return;
            int f = PQflush(c->pg);
            if (f < 0) {
                conn_broken(c, PQerrorMessage(c->pg));
                return;
            }
            c->flushing = f == 1;
            continue;
        }
        if (r == NULL) {
            finish_request(c);
            arm(c, POLLIN);
            pump(c->st);
            return;
        }
        if (c->result == NULL)
            c->result = r;
        else
            PQclear(r);
    }
    arm(c, c->flushing ? POLLIN | POLLOUT : POLLIN);
}

static void conn_flush(pg_conn *c)
{
    int f = PQflush(c->pg);
    if (f < 0) {
        conn_broken(c, PQerrorMessage(c->pg));
        return;
    }
    c->flushing = f == 1;
    arm(c, c->flushing ? POLLIN | POLLOUT : POLLIN);
}

/* Each statement is prepared once per connection (named by its key) and then only executed:
 * the server parses and plans the long CTEs once, not per request. */
static int stmt_key(const pg_conn *c, const struct rd_msg_store *b, const char **q)
{
    if (b->op == STORE_ASSET_FIND && c->nmore > 0) {
        *q = find_batch;
        return STORE_OP_COUNT + 3;
    }
    if (b->op == STORE_JOB_CLAIM && b->n > 0) {
        *q = claim_ids;
        return STORE_OP_COUNT;
    }
    if (b->op == STORE_JOB_CLAIM && b->kind[0] == '\0') {
        *q = claim_any;
        return STORE_OP_COUNT + 1;
    }
    if (b->op == STORE_EXPORT_GET && b->exports[0].public_id[0] == '\0') {
        *q = export_by_id;
        return STORE_OP_COUNT + 2;
    }
    if (b->op == STORE_JOB_COUNTS && b->state == RD_COUNT_ACTIVE) {
        *q = counts_active;
        return STORE_OP_COUNT + 4;
    }
    *q = sql[b->op];
    return b->op;
}

_Static_assert(STORE_OP_COUNT + 5 <= 64, "a statement key is a bit of pg_conn.prepared");

static void stmt_name(char *name, size_t cap, int key)
{
    snprintf(name, cap, "reeld_%d", key);
}

/* Sends the request's statement (prepared), or its preparation first. 0, or -1 when the
 * connection broke (conn_broken has run). */
static int send_statement(pg_conn *c)
{
    const struct rd_msg_store *b = msg_body(c->req, store);
    const char *q;
    int key = stmt_key(c, b, &q);
    char name[32];
    stmt_name(name, sizeof(name), key);
    int ok;
    if (c->prepared & (1ull << key)) {
        c->preparing = -1;
        ok = PQsendQueryPrepared(c->pg, name, c->pn, c->pv, NULL, NULL, 0);
    } else {
        c->preparing = key;
        ok = PQsendPrepare(c->pg, name, q, c->pn, NULL);
    }
    if (!ok) {
        conn_broken(c, PQerrorMessage(c->pg));
        return -1;
    }
    return 0;
}

static void conn_sent(pg_conn *c);

static void conn_send(pg_conn *c, rd_msg *m)
{
    struct rd_msg_store *b = msg_body(m, store);
    params p = {0};
    c->req = m;
    int r = build(c, b, &p);
    if (r < 0) {
        c->req = NULL;
        answer(m, r);
        answer_more(c, r);
        return;
    }
    memcpy(c->pv, p.v, sizeof(c->pv));
    c->pn = p.n;
    c->state = C_BUSY;
    if (send_statement(c) < 0)
        return;
    conn_sent(c);
}

static void analyze_send(pg_conn *c)
{
    c->state = C_BUSY;
    c->analyzing = 1;
    c->preparing = -1;
    if (!PQsendQuery(c->pg, "ANALYZE (SKIP_LOCKED) jobs (state, kind)")) {
        conn_broken(c, PQerrorMessage(c->pg));
        return;
    }
    conn_sent(c);
}

/* A statement has been handed to libpq: send it, and wait for its answer. */
static void conn_sent(pg_conn *c)
{
    if (c->polling) {
        /* The idle read poll is armed; it wakes on the answer. Flush now, once. */
        int f = PQflush(c->pg);
        if (f < 0) {
            conn_broken(c, PQerrorMessage(c->pg));
            return;
        }
        c->flushing = f == 1;
        return;
    }
    conn_flush(c);
}

static void conn_poll_done(rd_op *op, int res, uint32_t flags)
{
    (void)flags;
    pg_conn *c = (pg_conn *)(void *)((char *)op - offsetof(pg_conn, poll));
    c->polling = 0;
    if (c->st == NULL) {
        PQfinish(c->pg); /* dropped while this poll was in flight */
        free(c);
        return;
    }
    if (res == -ECANCELED && c->st->draining) {
        /* The idle poll, cancelled at stop; a request sent meanwhile needs a poll of its own. */
        if (c->state == C_BUSY)
            arm(c, c->flushing ? POLLIN | POLLOUT : POLLIN);
        return;
    }
    if (res < 0) {
        conn_broken(c, strerror(-res));
        return;
    }
    switch (c->state) {
    case C_CONNECTING:
        connect_step(c);
        break;
    case C_BUSY:
        if (c->flushing && (res & POLLOUT)) {
            int f = PQflush(c->pg);
            if (f < 0) {
                conn_broken(c, PQerrorMessage(c->pg));
                return;
            }
            c->flushing = f == 1;
        }
        if (res & (POLLIN | POLLERR | POLLHUP)) {
            conn_read(c);
            return;
        }
        arm(c, c->flushing ? POLLIN | POLLOUT : POLLIN);
        break;
    case C_IDLE:
        conn_read(c);
        break;
    default:
        break;
    }
}

/* Gives queued requests to idle connections, urgent ones first. */
static void pump(pgstore *st)
{
    for (int i = 0; i < st->npool && (st->qlen + st->ulen > 0 || st->analyze_due); i++) {
        pg_conn *c = st->conns[i];
        if (c->state != C_IDLE)
            continue;
        /* The statistics take one idle connection; with a pool of one, only when no request
         * waits for it. */
        if (st->analyze_due && !st->draining && (st->npool > 1 || st->qlen + st->ulen == 0)) {
            st->analyze_due = 0;
            st->analyze_after_ns = rd_now_ns() + ANALYZE_GAP_MS * 1000000ull;
            analyze_send(c);
            continue;
        }
        if (st->qlen + st->ulen == 0)
            break;
        rd_msg *m;
        if (st->ulen > 0) {
            m = st->urgent[st->uhead];
            st->uhead = (st->uhead + 1) % PG_QUEUE_BOUND;
            st->ulen--;
        } else {
            m = st->queue[st->qhead];
            st->qhead = (st->qhead + 1) % PG_QUEUE_BOUND;
            st->qlen--;
            /* Asset reads queued behind it go in its statement. */
            while (msg_body(m, store)->op == STORE_ASSET_FIND && st->qlen > 0 &&
                   c->nmore < PG_FIND_BATCH - 1 &&
                   msg_body(st->queue[st->qhead], store)->op == STORE_ASSET_FIND) {
                c->more[c->nmore++] = st->queue[st->qhead];
                st->qhead = (st->qhead + 1) % PG_QUEUE_BOUND;
                st->qlen--;
            }
        }
        conn_send(c, m);
    }
}

static void pg_stop_hook(rd_stop_hook *hook, rd_loop *loop);

static int pg_init(rd_actor *self, void *argp)
{
    pg_arg *arg = argp;
    pgstore *st = rd_calloc(1, sizeof(*st), "the postgres store");
    st->self = self;
    st->arg = arg;
    st->npool = arg->pool < 1 ? 1 : arg->pool > PG_POOL_MAX ? PG_POOL_MAX : arg->pool;
    self->state = st;
    arg->live = st;
    if (!arg->hooked) {
        arg->hook.fn = pg_stop_hook;
        loop_on_stop(self->loop, &arg->hook);
        arg->hooked = 1;
    }
    for (int i = 0; i < st->npool; i++)
        conn_start(conn_new(st, i, PG_BACKOFF_MIN));
    return 0;
}

/* Closes every connection; a connection with a poll in flight is freed by its completion. */
static void shut(pgstore *st)
{
    st->stopping = 1;
    fail_queue(st, -ENOTCONN);
    for (int i = 0; i < st->npool; i++) {
        pg_conn *c = st->conns[i];
        if (c == NULL)
            continue;
        st->conns[i] = NULL;
        loop_timer_cancel(st->self->loop, &c->retry);
        if (c->req != NULL)
            answer(c->req, -ECONNRESET);
        c->req = NULL;
        answer_more(c, -ECONNRESET);
        PQclear(c->result);
        c->result = NULL;
        c->st = NULL;
        if (c->polling) {
            struct io_uring_sqe *sqe = loop_sqe(st->self->loop, NULL);
            io_uring_prep_poll_remove(sqe, (uint64_t)(uintptr_t)&c->poll);
        } else {
            PQfinish(c->pg);
            free(c);
        }
    }
}

/* The loop begins to stop: the store keeps answering while the loop drains (the dispatcher's
 * last completions), but no idle poll or reconnect may keep the loop alive. */
static void pg_stop_hook(rd_stop_hook *hook, rd_loop *loop)
{
    pg_arg *arg = (pg_arg *)(void *)((char *)hook - offsetof(pg_arg, hook));
    pgstore *st = arg->live;
    if (st == NULL)
        return;
    st->draining = 1;
    for (int i = 0; i < st->npool; i++) {
        pg_conn *c = st->conns[i];
        loop_timer_cancel(loop, &c->retry);
        if (c->state == C_IDLE && c->polling)
            io_uring_prep_poll_remove(loop_sqe(loop, NULL), (uint64_t)(uintptr_t)&c->poll);
        else if (c->state == C_CONNECTING)
            conn_broken(c, "stopping");
    }
}

static void pg_fini(rd_actor *self)
{
    pgstore *st = self->state;
    if (st == NULL)
        return;
    if (!st->stopping)
        shut(st);
    st->arg->live = NULL;
    free(st);
}

static int pg_handle(rd_actor *self, rd_msg *m)
{
    pgstore *st = self->state;
    if (m->type != MSG_STORE)
        return RD_DONE;
    if (st->stopping || (st->down && !any_up(st))) {
        answer(m, -ENOTCONN);
        return RD_KEPT;
    }
    if (is_urgent(m)) {
        if (st->ulen == PG_QUEUE_BOUND) {
            answer(m, -EAGAIN);
            return RD_KEPT;
        }
        st->urgent[(st->uhead + st->ulen) % PG_QUEUE_BOUND] = m;
        st->ulen++;
    } else {
        if (st->qlen == PG_QUEUE_BOUND) {
            answer(m, -EAGAIN);
            return RD_KEPT;
        }
        st->queue[(st->qhead + st->qlen) % PG_QUEUE_BOUND] = m;
        st->qlen++;
    }
    pump(st);
    return RD_KEPT;
}

static const rd_actor_def pg_def = {.name = "store-postgres",
                                    .init = pg_init,
                                    .handle = pg_handle,
                                    .fini = pg_fini,
                                    .mailbox_bound = 4096};

int store_pg_spawn(rd_loop *loop, const char *url, int pool, int outbox, rd_actor **out)
{
    assert(pool >= 1);
    pg_arg *arg = rd_calloc(1, sizeof(*arg), "the postgres store's settings");
    arg->url = url;
    arg->pool = pool;
    arg->outbox = outbox;
    return actor_spawn(loop, &pg_def, arg, out);
}

void store_pg_free(rd_actor *a)
{
    pgstore *st = a->state;
    pg_arg *arg = a->arg;
    if (st != NULL) {
        /* The loop is gone: no completion will come, and nobody is left to answer. */
        for (; st->qlen > 0; st->qlen--, st->qhead = (st->qhead + 1) % PG_QUEUE_BOUND)
            msg_free(st->queue[st->qhead]);
        for (; st->ulen > 0; st->ulen--, st->uhead = (st->uhead + 1) % PG_QUEUE_BOUND)
            msg_free(st->urgent[st->uhead]);
        for (int i = 0; i < st->npool; i++) {
            pg_conn *c = st->conns[i];
            if (c == NULL)
                continue;
            if (c->req != NULL)
                msg_free(c->req);
            for (int k = 0; k < c->nmore; k++)
                msg_free(c->more[k]);
            PQclear(c->result);
            PQfinish(c->pg);
            free(c);
        }
        free(st);
        a->state = NULL;
    }
    free(arg);
    a->arg = NULL;
}

int store_is_pg(const rd_actor *a)
{
    return a->def == &pg_def;
}
