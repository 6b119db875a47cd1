/* The sqlite store: the embedded default, one file (REELD_DATA_DIR/reeld.db, 0600) in WAL mode.
 *
 * SQLite calls block, so the backend is a thread actor: its thread owns the connection and the
 * prepared statements, and nothing else touches them. Each request is one transaction (BEGIN
 * IMMEDIATE for writes, so two writers never deadlock on an upgrade). Times come from this
 * machine's clock: there is only one node. */
#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "src/rt/log.h"
#include "src/rt/loop.h"
#include "src/store/sql.h"
#include "src/store/store.h"

/* The schema, one migration per entry; schema_version holds how many have run. */
static const char *const migrations[] = {
    "CREATE TABLE assets ("
    " id INTEGER PRIMARY KEY, org TEXT NOT NULL, filename TEXT NOT NULL DEFAULT '',"
    " content_type TEXT NOT NULL DEFAULT '', size_bytes INTEGER NOT NULL DEFAULT 0,"
    " state TEXT NOT NULL, staging_key TEXT NOT NULL DEFAULT '',"
    " master_key TEXT NOT NULL DEFAULT '', created_ms INTEGER NOT NULL,"
    " updated_ms INTEGER NOT NULL);"
    "CREATE INDEX assets_org ON assets (org, id);"
    "CREATE TABLE jobs ("
    " id INTEGER PRIMARY KEY, asset_id INTEGER NOT NULL, kind TEXT NOT NULL,"
    " state TEXT NOT NULL CHECK (state IN"
    "  ('queued','running','succeeded','failed','cancelled','dead')),"
    " priority INTEGER NOT NULL DEFAULT 0, attempts INTEGER NOT NULL DEFAULT 0,"
    " max_attempts INTEGER NOT NULL DEFAULT 5, progress INTEGER NOT NULL DEFAULT 0,"
    " run_after_ms INTEGER NOT NULL, lease_owner TEXT NOT NULL DEFAULT '',"
    " lease_expires_ms INTEGER NOT NULL DEFAULT 0, error TEXT NOT NULL DEFAULT '',"
    " published_ms INTEGER NOT NULL DEFAULT 0,"
    " created_ms INTEGER NOT NULL, updated_ms INTEGER NOT NULL, UNIQUE (asset_id, kind));"
    /* The queue's order, over the few rows that can be claimed; finished jobs are listed by a
     * second index that the claim cannot use (a planner with stale statistics would otherwise
     * pick it and sort the whole backlog). */
    "CREATE INDEX jobs_ready ON jobs (kind, priority DESC, id)"
    " WHERE state IN ('queued','running');"
    "CREATE INDEX jobs_finished ON jobs (state, id) WHERE state NOT IN ('queued','running');"
    "CREATE TABLE renditions ("
    " id INTEGER PRIMARY KEY, asset_id INTEGER NOT NULL, name TEXT NOT NULL,"
    " width INTEGER NOT NULL, height INTEGER NOT NULL, bitrate_kbps INTEGER NOT NULL,"
    " playlist_key TEXT NOT NULL, created_ms INTEGER NOT NULL, UNIQUE (asset_id, name));",
    /* 2: the asset is the upload session (the API keeps none in memory). Rows of schema 1
     * named their object by the public id (staging_key), and their job by asset and kind. */
    "ALTER TABLE assets ADD COLUMN public_id TEXT;"
    "ALTER TABLE assets ADD COLUMN upload_id TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE assets ADD COLUMN part_size INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE assets ADD COLUMN nparts INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE assets ADD COLUMN job_id INTEGER NOT NULL DEFAULT 0;"
    "UPDATE assets SET public_id = CASE WHEN staging_key <> '' THEN staging_key"
    " ELSE 'legacy' || id END;"
    "UPDATE assets SET job_id = coalesce((SELECT j.id FROM jobs j WHERE j.asset_id = assets.id"
    " AND j.kind = 'transcode'), 0);"
    "UPDATE assets SET state = 'processing' WHERE job_id <> 0;"
    "CREATE UNIQUE INDEX assets_public ON assets (public_id);",
    /* 3: what the promote body asks of a transcode (poster_ms -1: no time asked). */
    "ALTER TABLE jobs ADD COLUMN mp4 INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE jobs ADD COLUMN poster_ms INTEGER NOT NULL"
    " DEFAULT -1;",
    /* 4: webhooks. One endpoint per org; an event row per asset and type, written with the
     * change that causes it, delivered by a job of kind 'webhook' whose asset_id is the
     * event's row; one row per delivery attempt. */
    "CREATE TABLE webhooks ("
    " org TEXT PRIMARY KEY, url TEXT NOT NULL, events TEXT NOT NULL, secret TEXT NOT NULL,"
    " previous_secret TEXT NOT NULL DEFAULT '', previous_until_ms INTEGER NOT NULL DEFAULT 0,"
    " created_ms INTEGER NOT NULL, updated_ms INTEGER NOT NULL);"
    "CREATE TABLE webhook_events ("
    " id INTEGER PRIMARY KEY, event_id TEXT NOT NULL UNIQUE, org TEXT NOT NULL,"
    " asset_id INTEGER NOT NULL, type TEXT NOT NULL, error TEXT NOT NULL DEFAULT '',"
    " created_ms INTEGER NOT NULL, UNIQUE (asset_id, type));"
    "CREATE TABLE webhook_attempts ("
    " id INTEGER PRIMARY KEY, event INTEGER NOT NULL, org TEXT NOT NULL,"
    " attempt INTEGER NOT NULL, status_code INTEGER NOT NULL, latency_ms INTEGER NOT NULL,"
    " state TEXT NOT NULL, error TEXT NOT NULL DEFAULT '', created_ms INTEGER NOT NULL);"
    "CREATE INDEX webhook_attempts_org ON webhook_attempts (org, id);"
    "ALTER TABLE assets ADD COLUMN duration_ms INTEGER NOT NULL DEFAULT 0;",
    /* 5: deletion. A deleted asset keeps its row (its id answers 404, its events keep their
     * asset, the edges read the deletions of the last link lifetime); purge_after_ms says
     * when its objects are to be deleted next (0: done), master_until_ms until when Object
     * Lock keeps its master. */
    "ALTER TABLE assets ADD COLUMN deleted_ms INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE assets ADD COLUMN purge_after_ms INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE assets ADD COLUMN master_until_ms INTEGER NOT NULL DEFAULT 0;"
    "CREATE INDEX assets_deleted ON assets (deleted_ms, id) WHERE deleted_ms > 0;"
    "CREATE INDEX assets_purge ON assets (purge_after_ms) WHERE purge_after_ms > 0;",
    /* 6: caption tracks, one per asset and language (the cues are objects); the asset's
     * captions_version counts their changes, so a republished master playlist can tell. */
    "CREATE TABLE captions ("
    " asset_id INTEGER NOT NULL REFERENCES assets (id) ON DELETE CASCADE,"
    " lang TEXT NOT NULL, name TEXT NOT NULL, is_default INTEGER NOT NULL DEFAULT 0,"
    " created_ms INTEGER NOT NULL, updated_ms INTEGER NOT NULL, PRIMARY KEY (asset_id, lang));"
    "ALTER TABLE assets ADD COLUMN captions_version INTEGER NOT NULL DEFAULT 0;",
    /* 7: exports, a range of an asset encoded to one MP4; one row per identical request (the
     * unique index), so asking again finds the same export and, by its id, the same job. */
    "CREATE TABLE exports ("
    " id INTEGER PRIMARY KEY, public_id TEXT NOT NULL UNIQUE, org TEXT NOT NULL,"
    " asset_id INTEGER NOT NULL REFERENCES assets (id), start_ms INTEGER NOT NULL,"
    " end_ms INTEGER NOT NULL, height INTEGER NOT NULL DEFAULT 0, lang TEXT NOT NULL DEFAULT '',"
    " format TEXT NOT NULL, created_ms INTEGER NOT NULL, updated_ms INTEGER NOT NULL);"
    "CREATE UNIQUE INDEX exports_request ON exports"
    " (asset_id, start_ms, end_ms, height, lang, format);",
    /* 8: an export's events (export.ready, export.failed) are of its source asset, so they go
     * out in order with the asset's own, and name the export (export_id); one per export and
     * type, where an asset's event is one per asset and type. SQLite cannot drop the old
     * UNIQUE (asset_id, type): the table is rebuilt, its rows and ids kept. */
    "CREATE TABLE webhook_events8 ("
    " id INTEGER PRIMARY KEY, event_id TEXT NOT NULL UNIQUE, org TEXT NOT NULL,"
    " asset_id INTEGER NOT NULL, type TEXT NOT NULL, error TEXT NOT NULL DEFAULT '',"
    " created_ms INTEGER NOT NULL, export_id INTEGER REFERENCES exports (id));"
    "INSERT INTO webhook_events8 (id, event_id, org, asset_id, type, error, created_ms)"
    " SELECT id, event_id, org, asset_id, type, error, created_ms FROM webhook_events;"
    "DROP TABLE webhook_events;"
    "ALTER TABLE webhook_events8 RENAME TO webhook_events;"
    "CREATE UNIQUE INDEX webhook_events_once ON webhook_events"
    " (asset_id, type, coalesce(export_id, 0));",
    /* 9: clips. A clip is an asset of its own cut from another (source_id; NULL for an upload)
     * over a range; it only names its source, so deleting the source (a mark, never a row
     * deletion) leaves the clip as it is: nothing cascades. */
    "ALTER TABLE assets ADD COLUMN source_id INTEGER REFERENCES assets (id);"
    "ALTER TABLE assets ADD COLUMN source_start_ms INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE assets ADD COLUMN source_end_ms INTEGER NOT NULL DEFAULT 0;",
};

#define NMIGRATIONS ((int)(sizeof(migrations) / sizeof(migrations[0])))

#define JOB_COLS                                                                                   \
    "id, asset_id, kind, state, priority, attempts, max_attempts, progress, run_after_ms,"         \
    " lease_expires_ms, created_ms, updated_ms, lease_owner, error, mp4, poster_ms"
#define ASSET_COLS_J                                                                               \
    "a.id, a.public_id, a.org, a.filename, a.content_type, a.size_bytes, " ASSET_STATE ","         \
    " a.staging_key, a.master_key, a.upload_id, a.part_size, a.nparts, a.job_id, a.created_ms,"    \
    " a.updated_ms, coalesce(j.state, ''), coalesce(j.progress, 0), coalesce(j.attempts, 0),"      \
    " coalesce(j.error, ''), a.deleted_ms, a.purge_after_ms, a.master_until_ms,"                   \
    " coalesce(a.source_id, 0), a.source_start_ms, a.source_end_ms, coalesce(s.public_id, ''),"    \
    " coalesce(s.master_key, '') FROM assets a LEFT JOIN jobs j ON j.id = a.job_id"                \
    " LEFT JOIN assets s ON s.id = a.source_id"
/* An export as read back, with its asset's public id and master and its job (kind 'export',
 * whose asset_id is the export's row). */
#define EXPORT_COLS_J                                                                              \
    "e.id, e.asset_id, coalesce(j.id, 0), e.start_ms, e.end_ms, e.created_ms, e.updated_ms,"       \
    " e.height, e.public_id, e.org, e.lang, e.format, a.public_id, a.master_key,"                  \
    " coalesce(j.state, ''), coalesce(j.progress, 0), coalesce(j.attempts, 0),"                    \
    " coalesce(j.error, '') FROM exports e JOIN assets a ON a.id = e.asset_id"                     \
    " LEFT JOIN jobs j ON j.asset_id = e.id AND j.kind = 'export'"
/* A job a worker may claim now (?1 = now). */
#define CLAIMABLE                                                                                  \
    "((state = 'queued' AND run_after_ms <= ?1) OR"                                                \
    " (state = 'running' AND lease_expires_ms < ?1 AND attempts < max_attempts))"

/* A webhook job waits while an earlier event of the same asset is still being delivered:
 * deliveries of one asset go out in order. */
#define NOT_BLOCKED                                                                                \
    "(kind <> 'webhook' OR NOT EXISTS (SELECT 1 FROM webhook_events e JOIN webhook_events p"       \
    " ON p.asset_id = e.asset_id AND p.id < e.id JOIN jobs pj ON pj.asset_id = p.id AND pj.kind "  \
    "= 'webhook'"                                                                                  \
    " WHERE e.id = jobs.asset_id AND pj.state IN ('queued', 'running')))"

enum {
    Q_BEGIN,
    Q_COMMIT,
    Q_ROLLBACK,
    Q_ASSET_INSERT,
    Q_ASSET_GET,
    Q_ASSET_LIST,
    Q_ASSET_FIND,
    Q_ORG_ACTIVE,
    Q_ASSET_EXPIRE,
    Q_ASSET_UPDATE,
    Q_REND_PUT,
    Q_REND_LIST,
    Q_JOB_INSERT,
    Q_JOB_BY_KEY,
    Q_JOB_GET,
    Q_JOB_LIST,
    Q_JOB_LIST_STATE,
    Q_JOB_NEXT,
    Q_JOB_CLAIM,
    Q_JOB_HEARTBEAT,
    Q_JOB_COMPLETE,
    Q_JOB_FAIL,
    Q_JOB_RELEASE,
    Q_JOB_CANCEL,
    Q_JOB_STATE,
    Q_COUNTS,
    Q_COUNTS_ACTIVE,
    Q_SWEEP,
    Q_DUE,
    Q_MARK_PUBLISHED,
    Q_ASSET_DURATION,
    Q_WH_GET,
    Q_WH_INSERT,
    Q_WH_UPDATE,
    Q_WH_DELETE,
    Q_WH_ROTATE,
    Q_EV_INSERT,
    Q_EV_INSERT_EXPORT,
    Q_EV_GET,
    Q_AT_INSERT,
    Q_AT_LIST,
    Q_ASSET_FIND_ANY,
    Q_ASSET_MARK_DELETED,
    Q_ASSET_PURGE_DUE,
    Q_ASSET_PURGED,
    Q_ASSET_DELETED,
    Q_ASSET_DELETED_SINCE,
    Q_CAP_ASSET,
    Q_CAP_UNDEFAULT,
    Q_CAP_PUT,
    Q_CAP_DELETE,
    Q_CAP_BUMP,
    Q_CAP_LIST,
    Q_ASSET_OF_ORG,
    Q_EXP_INSERT,
    Q_EXP_BY_KEY,
    Q_EXP_GET,
    Q_EXP_GET_ID,
    Q_EXP_CANCEL,
    Q_CLIP_INSERT,
    Q_CLIP_JOB,
    Q_COUNT
};

/* STORE_JOB_COUNTS' columns per state, over every job or the queue alone. */
#define COUNTS_COLS                                                                                \
    "state, count(*), coalesce(max(CASE WHEN state = 'queued' AND run_after_ms <= ?1"              \
    " THEN ?1 - run_after_ms END), 0), coalesce(max(CASE WHEN kind = 'webhook' AND state IN"       \
    " ('queued', 'running') THEN ?1 - created_ms END), 0)"

static const char *const sql[Q_COUNT] = {
    [Q_BEGIN] = "BEGIN IMMEDIATE",
    [Q_COMMIT] = "COMMIT",
    [Q_ROLLBACK] = "ROLLBACK",
    [Q_ASSET_INSERT] = "INSERT INTO assets (public_id, org, filename, content_type, size_bytes,"
                       " state, staging_key, master_key, upload_id, part_size, nparts,"
                       " created_ms, updated_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9,"
                       " ?10, ?11, ?12, ?12) RETURNING " ASSET_COLS,
    [Q_ASSET_GET] = "SELECT " ASSET_COLS_J " WHERE a.id = ?1",
    [Q_ASSET_LIST] = "SELECT " ASSET_COLS_J " WHERE (?1 = 0 OR a.id < ?1)"
                     " AND a.deleted_ms = 0 AND (?3 = '' OR a.org = ?3)"
                     " AND (?4 = '' OR " ASSET_STATE " = ?4)"
                     " ORDER BY a.id DESC LIMIT ?2",
    [Q_ASSET_FIND] = "SELECT " ASSET_COLS_J " WHERE a.public_id = ?1 AND (?2 = '' OR a.org = ?2)"
                     " AND a.deleted_ms = 0",
    /* Over the few unfinished jobs (the jobs_ready index), each checked against its asset, or
     * for an export job against its export (a webhook job's asset_id is its event, an export
     * job's its export). */
    [Q_ORG_ACTIVE] = "SELECT (SELECT count(*) FROM jobs j JOIN assets a ON a.id = j.asset_id"
                     " WHERE j.state IN ('queued', 'running') AND a.org = ?1"
                     " AND j.kind NOT IN ('webhook', 'export')) + (SELECT count(*) FROM jobs j"
                     " JOIN exports e ON e.id = j.asset_id WHERE j.state IN ('queued', 'running')"
                     " AND j.kind = 'export' AND e.org = ?1)",
    [Q_ASSET_UPDATE] = "UPDATE assets SET state = ?3,"
                       " job_id = CASE WHEN ?4 > 0 THEN ?4 ELSE job_id END, updated_ms = ?5"
                       " WHERE public_id = ?1 AND org = ?2 AND (job_id = 0 OR ?4 > 0)"
                       " AND state <> 'expired' AND deleted_ms = 0 RETURNING " ASSET_COLS,
    [Q_ASSET_EXPIRE] =
        "UPDATE assets SET state = 'expired', updated_ms = ?3 WHERE id IN"
        " (SELECT id FROM assets WHERE job_id = 0 AND created_ms < ?1"
        " AND deleted_ms = 0 AND state IN ('uploading', 'uploaded') ORDER BY id LIMIT ?2)"
        " RETURNING " ASSET_COLS,
    [Q_REND_PUT] = "INSERT INTO renditions (asset_id, name, width, height, bitrate_kbps,"
                   " playlist_key, created_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"
                   " ON CONFLICT (asset_id, name) DO UPDATE SET width = excluded.width,"
                   " height = excluded.height, bitrate_kbps = excluded.bitrate_kbps,"
                   " playlist_key = excluded.playlist_key RETURNING id",
    [Q_REND_LIST] = "SELECT id, asset_id, name, width, height, bitrate_kbps, playlist_key"
                    " FROM renditions WHERE asset_id = ?1 ORDER BY height DESC, id LIMIT ?2",
    [Q_JOB_INSERT] = "INSERT INTO jobs (asset_id, kind, state, priority, max_attempts,"
                     " run_after_ms, created_ms, updated_ms, mp4, poster_ms)"
                     " VALUES (?1, ?2, 'queued', ?3, ?4, ?5, ?5, ?5, ?6, ?7)"
                     " ON CONFLICT (asset_id, kind) DO NOTHING",
    [Q_JOB_BY_KEY] = "SELECT " JOB_COLS " FROM jobs WHERE asset_id = ?1 AND kind = ?2",
    [Q_JOB_GET] = "SELECT " JOB_COLS " FROM jobs WHERE id = ?1",
    [Q_JOB_LIST] = "SELECT " JOB_COLS " FROM jobs WHERE id > ?1 ORDER BY id LIMIT ?2",
    [Q_JOB_LIST_STATE] = "SELECT " JOB_COLS " FROM jobs WHERE state = ?3 AND id > ?1"
                         " ORDER BY id LIMIT ?2",
    [Q_JOB_NEXT] =
        "SELECT id FROM jobs WHERE state IN ('queued', 'running') AND " CLAIMABLE
        " AND (?3 = '' OR kind = ?3) AND " NOT_BLOCKED " ORDER BY priority DESC, id LIMIT ?2",
    [Q_JOB_CLAIM] =
        "UPDATE jobs SET state = 'running', attempts = attempts + 1,"
        " lease_owner = ?3, lease_expires_ms = ?1 + ?4, progress = 0,"
        " updated_ms = ?1 WHERE id = ?2 AND " CLAIMABLE " AND " NOT_BLOCKED " RETURNING " JOB_COLS,
    [Q_JOB_HEARTBEAT] = "UPDATE jobs SET lease_expires_ms = ?1 + ?5, progress = ?6,"
                        " updated_ms = ?1 WHERE id = ?2 AND lease_owner = ?3 AND attempts = ?4"
                        " AND state = 'running'",
    [Q_JOB_COMPLETE] = "UPDATE jobs SET state = 'succeeded', progress = 1000,"
                       " lease_expires_ms = 0, error = '', updated_ms = ?1"
                       " WHERE id = ?2 AND lease_owner = ?3 AND attempts = ?4"
                       " AND state = 'running'",
    [Q_JOB_FAIL] = "UPDATE jobs SET state = CASE WHEN ?5 < 0 THEN 'failed'"
                   " WHEN attempts >= max_attempts THEN 'dead' ELSE 'queued' END,"
                   " run_after_ms = ?1 + max(?5, 0), error = ?6, lease_expires_ms = 0,"
                   " published_ms = 0, updated_ms = ?1"
                   " WHERE id = ?2 AND lease_owner = ?3 AND attempts = ?4 AND state = 'running'"
                   " RETURNING state",
    [Q_JOB_RELEASE] = "UPDATE jobs SET state = 'queued', attempts = attempts - 1,"
                      " lease_expires_ms = 0, run_after_ms = ?1, published_ms = 0, updated_ms = ?1"
                      " WHERE id = ?2 AND lease_owner = ?3 AND attempts = ?4 AND state = 'running'",
    [Q_JOB_CANCEL] = "UPDATE jobs SET state = 'cancelled', lease_expires_ms = 0,"
                     " updated_ms = ?1 WHERE id = ?2 AND state IN ('queued', 'running')",
    [Q_JOB_STATE] = "SELECT state, lease_owner, attempts FROM jobs WHERE id = ?1",
    [Q_COUNTS] = "SELECT " COUNTS_COLS " FROM jobs GROUP BY state",
    /* The same over the queue: the partial index's predicate, so only its rows are read. */
    [Q_COUNTS_ACTIVE] =
        "SELECT " COUNTS_COLS " FROM jobs WHERE state IN ('queued', 'running') GROUP BY state",
    [Q_SWEEP] = "UPDATE jobs SET state = 'dead', lease_expires_ms = 0, updated_ms = ?1,"
                " error = 'the worker stopped answering on the last attempt (lease expired)'"
                " WHERE state = 'running' AND lease_expires_ms < ?1"
                " AND attempts >= max_attempts",
    [Q_DUE] = "SELECT id, kind FROM jobs WHERE state IN ('queued', 'running') AND " CLAIMABLE
              " AND published_ms <= ?1 - ?3 ORDER BY priority DESC, id LIMIT ?2",
    [Q_MARK_PUBLISHED] = "UPDATE jobs SET published_ms = ?1 WHERE id = ?2",
    [Q_ASSET_DURATION] = "UPDATE assets SET duration_ms = ?2 WHERE id = ?1",
    [Q_WH_GET] = "SELECT org, url, events, secret, previous_secret, previous_until_ms,"
                 " created_ms, updated_ms FROM webhooks WHERE org = ?1",
    [Q_WH_INSERT] = "INSERT INTO webhooks (org, url, events, secret, created_ms, updated_ms)"
                    " VALUES (?1, ?2, ?3, ?4, ?5, ?5) ON CONFLICT (org) DO NOTHING",
    [Q_WH_UPDATE] = "UPDATE webhooks SET url = ?2, events = ?3, updated_ms = ?4 WHERE org = ?1",
    [Q_WH_DELETE] = "DELETE FROM webhooks WHERE org = ?1",
    [Q_WH_ROTATE] = "UPDATE webhooks SET previous_secret = secret, secret = ?2,"
                    " previous_until_ms = ?3 + ?4, updated_ms = ?3 WHERE org = ?1",
    /* The event, when the asset's org has an endpoint that takes this type. */
    [Q_EV_INSERT] = "INSERT INTO webhook_events (event_id, org, asset_id, type, error, created_ms)"
                    " SELECT 'evt_' || lower(hex(randomblob(12))), a.org, a.id, ?2, ?3, ?4"
                    " FROM assets a JOIN webhooks w ON w.org = a.org WHERE a.id = ?1"
                    " AND instr(',' || w.events || ',', ',' || ?2 || ',') > 0"
                    " ON CONFLICT DO NOTHING RETURNING id",
    /* An export's event: of its source asset, for the export's org. */
    [Q_EV_INSERT_EXPORT] =
        "INSERT INTO webhook_events (event_id, org, asset_id, export_id, type, error,"
        " created_ms) SELECT 'evt_' || lower(hex(randomblob(12))), x.org, x.asset_id, x.id, ?2,"
        " ?3, ?4 FROM exports x JOIN webhooks w ON w.org = x.org WHERE x.id = ?1"
        " AND instr(',' || w.events || ',', ',' || ?2 || ',') > 0"
        " ON CONFLICT DO NOTHING RETURNING id",
    [Q_EV_GET] =
        "SELECT e.id, e.asset_id, e.created_ms, e.event_id, e.type, e.org,"
        " coalesce(a.public_id, ''), e.error, coalesce(w.url, ''),"
        " coalesce(w.events, ''), coalesce(w.secret, ''),"
        " coalesce(w.previous_secret, ''), coalesce(w.previous_until_ms, 0),"
        " coalesce(a.duration_ms, 0), coalesce(e.export_id, 0), coalesce(x.public_id, ''),"
        " coalesce(x.start_ms, 0), coalesce(x.end_ms, 0), coalesce(x.lang, ''),"
        " coalesce(a.master_key, '') FROM webhook_events e LEFT JOIN assets a ON a.id = e.asset_id"
        " LEFT JOIN exports x ON x.id = e.export_id"
        " LEFT JOIN webhooks w ON w.org = e.org WHERE e.id = ?1",
    [Q_AT_INSERT] = "INSERT INTO webhook_attempts (event, org, attempt, status_code, latency_ms,"
                    " state, error, created_ms) SELECT id, org, ?2, ?3, ?4, ?5, ?6, ?7"
                    " FROM webhook_events WHERE id = ?1",
    /* The next retry: the job's due time while it waits, on its latest attempt's row. */
    [Q_AT_LIST] = "SELECT t.id, t.event, e.asset_id, t.created_ms,"
                  " CASE WHEN j.state = 'queued' AND j.attempts = t.attempt THEN j.run_after_ms"
                  " ELSE 0 END, t.status_code, t.latency_ms, t.attempt, e.event_id, e.type,"
                  " t.org, coalesce(a.public_id, ''), t.state, t.error"
                  " FROM webhook_attempts t JOIN webhook_events e ON e.id = t.event"
                  " LEFT JOIN jobs j ON j.asset_id = e.id AND j.kind = 'webhook'"
                  " LEFT JOIN assets a ON a.id = e.asset_id"
                  " WHERE t.org = ?1 AND (?2 = 0 OR t.id < ?2) ORDER BY t.id DESC LIMIT ?3",
    [Q_ASSET_FIND_ANY] = "SELECT " ASSET_COLS_J " WHERE a.public_id = ?1 AND a.org = ?2",
    [Q_ASSET_MARK_DELETED] = "UPDATE assets SET deleted_ms = ?2, purge_after_ms = ?2,"
                             " updated_ms = ?2 WHERE id = ?1 AND deleted_ms = 0",
    [Q_ASSET_PURGE_DUE] =
        "UPDATE assets SET purge_after_ms = ?1 + ?3 WHERE id IN"
        " (SELECT id FROM assets WHERE purge_after_ms > 0 AND purge_after_ms <= ?1"
        " ORDER BY purge_after_ms LIMIT ?2) RETURNING " ASSET_COLS,
    [Q_ASSET_PURGED] =
        "UPDATE assets SET purge_after_ms = CASE WHEN ?2 > 0 THEN ?4 + ?2 ELSE 0 END,"
        " master_until_ms = ?3 WHERE id = ?1 AND deleted_ms > 0",
    [Q_ASSET_DELETED] = "SELECT " ASSET_COLS " FROM assets WHERE deleted_ms > 0"
                        " AND (deleted_ms > ?1 OR (deleted_ms = ?1 AND id > ?2))"
                        " ORDER BY deleted_ms, id LIMIT ?3",
    [Q_ASSET_DELETED_SINCE] = "SELECT " ASSET_COLS " FROM assets WHERE deleted_ms >= ?1"
                              " AND deleted_ms > 0 ORDER BY deleted_ms, id LIMIT ?2",
    /* A caption put's checks: the asset's tracks, and whether ?2 is one of them. */
    [Q_CAP_ASSET] = "SELECT (SELECT count(*) FROM captions WHERE asset_id = ?1),"
                    " EXISTS (SELECT 1 FROM captions WHERE asset_id = ?1 AND lang = ?2)"
                    " FROM assets WHERE id = ?1 AND deleted_ms = 0",
    [Q_CAP_UNDEFAULT] = "UPDATE captions SET is_default = 0 WHERE asset_id = ?1 AND lang <> ?2"
                        " AND is_default <> 0",
    [Q_CAP_PUT] = "INSERT INTO captions (asset_id, lang, name, is_default, created_ms, updated_ms)"
                  " VALUES (?1, ?2, ?3, ?4, ?5, ?5) ON CONFLICT (asset_id, lang) DO UPDATE SET"
                  " name = excluded.name, is_default = excluded.is_default,"
                  " updated_ms = excluded.updated_ms"
                  " RETURNING lang, name, is_default, created_ms, updated_ms",
    [Q_CAP_DELETE] = "DELETE FROM captions WHERE asset_id = ?1 AND lang = ?2",
    [Q_CAP_BUMP] = "UPDATE assets SET captions_version = captions_version + 1 WHERE id = ?1"
                   " RETURNING captions_version",
    /* One statement (one snapshot): no row for an unknown or deleted asset, one row with a
     * NULL lang for an asset without tracks. */
    [Q_CAP_LIST] = "SELECT a.captions_version, c.lang, c.name, c.is_default, c.created_ms,"
                   " c.updated_ms FROM assets a LEFT JOIN captions c ON c.asset_id = a.id"
                   " WHERE a.id = ?1 AND a.deleted_ms = 0 ORDER BY c.lang LIMIT ?2",
    /* An export's or a clip's source: the org's, not deleted. */
    [Q_ASSET_OF_ORG] = "SELECT id FROM assets WHERE id = ?1 AND org = ?2 AND deleted_ms = 0",
    /* An export create: after the source's check, the insert and the look-up by the request
     * share their parameters: ?1 public id, ?2 org, ?3 asset, ?4 start, ?5 end, ?6 height,
     * ?7 lang, ?8 format (export_stmt), and ?9 now. */
    [Q_EXP_INSERT] = "INSERT INTO exports (public_id, org, asset_id, start_ms, end_ms, height,"
                     " lang, format, created_ms, updated_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7,"
                     " ?8, ?9, ?9) ON CONFLICT (asset_id, start_ms, end_ms, height, lang, format)"
                     " DO NOTHING",
    [Q_EXP_BY_KEY] = "SELECT id FROM exports WHERE asset_id = ?3 AND start_ms = ?4"
                     " AND end_ms = ?5 AND height = ?6 AND lang = ?7 AND format = ?8",
    [Q_EXP_GET] = "SELECT " EXPORT_COLS_J " WHERE e.public_id = ?1 AND (?2 = '' OR e.org = ?2)",
    [Q_EXP_GET_ID] = "SELECT " EXPORT_COLS_J " WHERE e.id = ?1",
    /* A deleted asset's exports: their jobs stop with its own. */
    [Q_EXP_CANCEL] = "UPDATE jobs SET state = 'cancelled', lease_expires_ms = 0, updated_ms = ?1"
                     " WHERE kind = 'export' AND state IN ('queued', 'running')"
                     " AND asset_id IN (SELECT id FROM exports WHERE asset_id = ?2)",
    /* A clip: the asset (processing from the start: it has no upload), then its job. */
    [Q_CLIP_INSERT] = "INSERT INTO assets (public_id, org, filename, content_type, size_bytes,"
                      " state, master_key, source_id, source_start_ms, source_end_ms, created_ms,"
                      " updated_ms) VALUES (?1, ?2, ?3, ?4, 0, 'processing', ?5, ?6, ?7, ?8, ?9,"
                      " ?9) RETURNING id",
    [Q_CLIP_JOB] = "UPDATE assets SET job_id = ?2 WHERE id = ?1",
};

typedef struct sq {
    sqlite3 *db;
    sqlite3_stmt *stmt[Q_COUNT];
    const char *path;
} sq;

static int64_t now_ms(void)
{
    return rd_wall_ms();
}

static int sq_errno(int rc)
{
    switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        return -EAGAIN;
    case SQLITE_NOMEM:
        return -ENOMEM;
    case SQLITE_CONSTRAINT:
    case SQLITE_MISMATCH:
    case SQLITE_RANGE:
        return -EINVAL;
    case SQLITE_FULL:
        return -ENOSPC;
    case SQLITE_READONLY:
    case SQLITE_PERM:
    case SQLITE_AUTH:
        return -EACCES;
    default:
        return -EIO;
    }
}

/* Makes `path` 0600 when it has group or other bits (a file of another user's that cannot be
 * changed is only warned about). 0 (also when it does not exist and !create), or -errno. */
static int tighten(const char *path, int create)
{
    int fd = open(path, O_RDWR | O_CLOEXEC | (create ? O_CREAT : 0), 0600);
    if (fd < 0)
        return errno == ENOENT && !create ? 0 : -errno;
    struct stat st;
    int r = fstat(fd, &st) < 0 ? -errno : 0;
    if (r == 0 && (st.st_mode & 077) != 0) {
        if (fchmod(fd, st.st_mode & 0700) == 0)
            log_warn("store_file_tightened", KV_STR("path", path),
                     KV_STR("why", "it was readable by group or others; now 0600"));
        else
            log_warn("store_file_not_private", KV_STR("path", path), KV_ERRNO(-errno),
                     KV_STR("why", "readable by group or others, and its mode cannot be changed"));
    }
    close(fd);
    return r;
}

/* The database holds every org's assets and jobs: 0600 like the key files, whatever the umask.
 * SQLite creates the -wal and -shm files with the database file's mode, so the file is made
 * here first (an empty file is an empty database); ones an older reeld left readable are
 * tightened. */
static int private_files(const char *path, char *err, size_t errlen)
{
    char side[4096];
    int r = tighten(path, 1);
    for (int i = 0; r == 0 && i < 2; i++) {
        if (snprintf(side, sizeof(side), "%s%s", path, i ? "-shm" : "-wal") >= (int)sizeof(side))
            r = -ENAMETOOLONG;
        else
            r = tighten(side, 0);
    }
    if (r < 0)
        snprintf(err, errlen, "cannot make the SQLite database %s private (0600): %s", path,
                 strerror(-r));
    return r;
}

static int sq_open(const char *path, sqlite3 **out, char *err, size_t errlen)
{
    sqlite3 *db = NULL;
    int pr = private_files(path, err, errlen);
    if (pr < 0)
        return pr;
    int rc = sqlite3_open_v2(
        path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        snprintf(err, errlen, "cannot open the SQLite database %s: %s", path,
                 db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
        sqlite3_close(db);
        return sq_errno(rc);
    }
    sqlite3_busy_timeout(db, 5000);
    /* WAL: readers never wait for the writer; NORMAL sync is durable across a process crash
     * and loses at most the last transactions on power loss. */
    rc = sqlite3_exec(db, "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;", NULL, NULL,
                      NULL);
    if (rc != SQLITE_OK) {
        snprintf(err, errlen, "cannot set up the SQLite database %s: %s", path, sqlite3_errmsg(db));
        sqlite3_close(db);
        return sq_errno(rc);
    }
    *out = db;
    return 0;
}

int store_sqlite_migrate(const char *path, int upto, char *err, size_t errlen)
{
    if (upto > NMIGRATIONS)
        upto = NMIGRATIONS;
    sqlite3 *db;
    int r = sq_open(path, &db, err, errlen);
    if (r < 0)
        return r;
    char *msg = NULL;
    int rc = sqlite3_exec(db,
                          "BEGIN IMMEDIATE;"
                          "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL);"
                          "INSERT INTO schema_version SELECT 0"
                          " WHERE NOT EXISTS (SELECT 1 FROM schema_version);",
                          NULL, NULL, &msg);
    int version = 0;
    if (rc == SQLITE_OK) {
        sqlite3_stmt *st;
        rc = sqlite3_prepare_v2(db, "SELECT version FROM schema_version", -1, &st, NULL);
        if (rc == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
            version = sqlite3_column_int(st, 0);
        sqlite3_finalize(st);
    }
    if (rc == SQLITE_OK && version > NMIGRATIONS) {
        snprintf(err, errlen,
                 "the database %s has schema version %d, newer than this reeld knows (%d);"
                 " run a newer reeld",
                 path, version, NMIGRATIONS);
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
        sqlite3_close(db);
        return -EPROTO;
    }
    for (int i = version; rc == SQLITE_OK && i < upto; i++) {
        rc = sqlite3_exec(db, migrations[i], NULL, NULL, &msg);
        if (rc == SQLITE_OK) {
            char q[64];
            snprintf(q, sizeof(q), "UPDATE schema_version SET version = %d", i + 1);
            rc = sqlite3_exec(db, q, NULL, NULL, &msg);
        }
    }
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(db, "COMMIT", NULL, NULL, &msg);
    if (rc != SQLITE_OK) {
        snprintf(err, errlen, "migrating the SQLite database %s failed: %s", path,
                 msg ? msg : sqlite3_errmsg(db));
        sqlite3_free(msg);
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
        sqlite3_close(db);
        return sq_errno(rc);
    }
    if (version < upto)
        log_info("store_migrated", KV_STR("backend", "sqlite"), KV_INT("from", version),
                 KV_INT("to", upto));
    sqlite3_close(db);
    return 0;
}

/* The prepared statement for `q`, reset and unbound; NULL after logging when it cannot be
 * prepared (a bug: the SQL is fixed). */
static sqlite3_stmt *stmt(sq *s, int q)
{
    if (s->stmt[q] == NULL) {
        int rc =
            sqlite3_prepare_v3(s->db, sql[q], -1, SQLITE_PREPARE_PERSISTENT, &s->stmt[q], NULL);
        if (rc != SQLITE_OK) {
            log_error("store_prepare_failed", KV_STR("backend", "sqlite"), KV_INT("query", q),
                      KV_STR("detail", sqlite3_errmsg(s->db)));
            return NULL;
        }
    }
    sqlite3_reset(s->stmt[q]);
    sqlite3_clear_bindings(s->stmt[q]);
    return s->stmt[q];
}

static void copy_text(char *dst, size_t cap, sqlite3_stmt *st, int col)
{
    const unsigned char *t = sqlite3_column_text(st, col);
    snprintf(dst, cap, "%s", t ? (const char *)t : "");
}

static void read_job(sqlite3_stmt *st, rd_job *j)
{
    memset(j, 0, sizeof(*j));
    j->id = sqlite3_column_int64(st, 0);
    j->asset_id = sqlite3_column_int64(st, 1);
    copy_text(j->kind, sizeof(j->kind), st, 2);
    const unsigned char *state = sqlite3_column_text(st, 3);
    j->state = state ? job_state_parse((const char *)state, strlen((const char *)state)) : 0;
    j->priority = sqlite3_column_int(st, 4);
    j->attempts = sqlite3_column_int(st, 5);
    j->max_attempts = sqlite3_column_int(st, 6);
    j->progress = sqlite3_column_int(st, 7);
    j->run_after_ms = sqlite3_column_int64(st, 8);
    j->lease_expires_ms = sqlite3_column_int64(st, 9);
    j->created_ms = sqlite3_column_int64(st, 10);
    j->updated_ms = sqlite3_column_int64(st, 11);
    copy_text(j->lease_owner, sizeof(j->lease_owner), st, 12);
    copy_text(j->error, sizeof(j->error), st, 13);
    j->mp4 = sqlite3_column_int(st, 14);
    j->poster_ms = sqlite3_column_int64(st, 15);
    j->has_poster = j->poster_ms >= 0;
    if (!j->has_poster)
        j->poster_ms = 0;
}

static void read_asset(sqlite3_stmt *st, rd_asset *a)
{
    memset(a, 0, sizeof(*a));
    a->id = sqlite3_column_int64(st, 0);
    copy_text(a->public_id, sizeof(a->public_id), st, 1);
    copy_text(a->org, sizeof(a->org), st, 2);
    copy_text(a->filename, sizeof(a->filename), st, 3);
    copy_text(a->content_type, sizeof(a->content_type), st, 4);
    a->size_bytes = sqlite3_column_int64(st, 5);
    copy_text(a->state, sizeof(a->state), st, 6);
    copy_text(a->staging_key, sizeof(a->staging_key), st, 7);
    copy_text(a->master_key, sizeof(a->master_key), st, 8);
    copy_text(a->upload_id, sizeof(a->upload_id), st, 9);
    a->part_size = sqlite3_column_int64(st, 10);
    a->nparts = sqlite3_column_int(st, 11);
    a->job_id = sqlite3_column_int64(st, 12);
    a->created_ms = sqlite3_column_int64(st, 13);
    a->updated_ms = sqlite3_column_int64(st, 14);
    const unsigned char *js = sqlite3_column_text(st, 15);
    a->job_state = js ? job_state_parse((const char *)js, strlen((const char *)js)) : 0;
    a->job_progress = sqlite3_column_int(st, 16);
    a->job_attempts = sqlite3_column_int(st, 17);
    copy_text(a->job_error, sizeof(a->job_error), st, 18);
    a->deleted_ms = sqlite3_column_int64(st, 19);
    a->purge_after_ms = sqlite3_column_int64(st, 20);
    a->master_until_ms = sqlite3_column_int64(st, 21);
    a->source_id = sqlite3_column_int64(st, 22);
    a->source_start_ms = sqlite3_column_int64(st, 23);
    a->source_end_ms = sqlite3_column_int64(st, 24);
    copy_text(a->source_public, sizeof(a->source_public), st, 25);
    copy_text(a->source_master, sizeof(a->source_master), st, 26);
}

static int run(sq *s, int q)
{
    sqlite3_stmt *st = stmt(s, q);
    if (st == NULL)
        return -EIO;
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    return rc == SQLITE_DONE || rc == SQLITE_ROW ? 0 : sq_errno(rc);
}

static int step_done(sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);
    return rc == SQLITE_DONE || rc == SQLITE_ROW ? 0 : sq_errno(rc);
}

/* The state of job `id` now, for an answer to a fenced update that did not apply: the state
 * when `owner` still holds attempt `attempt`, else JOB_STATE_NONE. */
static int job_state_for(sq *s, int64_t id, const char *owner, int attempt)
{
    sqlite3_stmt *st = stmt(s, Q_JOB_STATE);
    if (st == NULL)
        return JOB_STATE_NONE;
    sqlite3_bind_int64(st, 1, id);
    int state = JOB_STATE_NONE;
    if (sqlite3_step(st) == SQLITE_ROW) {
        const char *name = (const char *)sqlite3_column_text(st, 0);
        const char *o = (const char *)sqlite3_column_text(st, 1);
        int state_now = job_state_parse(name, strlen(name));
        /* A cancel keeps the owner and attempt: the worker learns why it must stop. */
        if (o != NULL && strcmp(o, owner) == 0 && sqlite3_column_int(st, 2) == attempt)
            state = state_now;
    }
    sqlite3_reset(st);
    return state;
}

static int op_asset_create(sq *s, struct rd_msg_store *b)
{
    sqlite3_stmt *st = stmt(s, Q_ASSET_INSERT);
    if (st == NULL)
        return -EIO;
    rd_asset *a = &b->assets[0];
    if (a->public_id[0] == '\0' || a->org[0] == '\0')
        return -EINVAL;
    sqlite3_bind_text(st, 1, a->public_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, a->org, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, a->filename, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, a->content_type, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 5, a->size_bytes);
    sqlite3_bind_text(st, 6, a->state[0] ? a->state : "uploading", -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 7, a->staging_key, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 8, a->master_key, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 9, a->upload_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 10, a->part_size);
    sqlite3_bind_int(st, 11, a->nparts);
    sqlite3_bind_int64(st, 12, now_ms());
    int rc = sqlite3_step(st);
    if (rc != SQLITE_ROW)
        return sq_errno(rc);
    read_asset(st, a);
    b->n = 1;
    return 0;
}

static int op_asset_get(sq *s, struct rd_msg_store *b)
{
    sqlite3_stmt *st = stmt(s, Q_ASSET_GET);
    if (st == NULL)
        return -EIO;
    sqlite3_bind_int64(st, 1, b->assets[0].id);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_DONE)
        return -ENOENT;
    if (rc != SQLITE_ROW)
        return sq_errno(rc);
    read_asset(st, &b->assets[0]);
    b->n = 1;
    return 0;
}

static uint32_t page_limit(const struct rd_msg_store *b)
{
    return b->limit == 0 || b->limit > RD_STORE_BATCH ? RD_STORE_BATCH : b->limit;
}

static int op_asset_list(sq *s, struct rd_msg_store *b)
{
    sqlite3_stmt *st = stmt(s, Q_ASSET_LIST);
    if (st == NULL)
        return -EIO;
    uint32_t limit = page_limit(b);
    sqlite3_bind_int64(st, 1, b->cursor);
    sqlite3_bind_int(st, 2, (int)limit + 1);
    sqlite3_bind_text(st, 3, b->assets[0].org, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 4, b->assets[0].state, -1, SQLITE_TRANSIENT);
    int rc;
    b->n = 0;
    b->cursor = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (b->n == limit) {
            b->cursor = b->assets[b->n - 1].id;
            break;
        }
        read_asset(st, &b->assets[b->n++]);
    }
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : sq_errno(rc);
}

static int op_asset_find(sq *s, struct rd_msg_store *b)
{
    sqlite3_stmt *st = stmt(s, Q_ASSET_FIND);
    if (st == NULL)
        return -EIO;
    sqlite3_bind_text(st, 1, b->assets[0].public_id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 2, b->assets[0].org, -1, SQLITE_TRANSIENT);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_DONE)
        return -ENOENT;
    if (rc != SQLITE_ROW)
        return sq_errno(rc);
    read_asset(st, &b->assets[0]);
    b->n = 1;
    return 0;
}

static int op_org_active(sq *s, struct rd_msg_store *b)
{
    sqlite3_stmt *st = stmt(s, Q_ORG_ACTIVE);
    if (st == NULL)
        return -EIO;
    sqlite3_bind_text(st, 1, b->assets[0].org, -1, SQLITE_TRANSIENT);
    int rc = sqlite3_step(st);
    if (rc != SQLITE_ROW)
        return sq_errno(rc);
    b->counts.active = sqlite3_column_int64(st, 0);
    return 0;
}

static int op_asset_expire(sq *s, struct rd_msg_store *b)
{
    sqlite3_stmt *st = stmt(s, Q_ASSET_EXPIRE);
    if (st == NULL)
        return -EIO;
    sqlite3_bind_int64(st, 1, b->cursor);
    sqlite3_bind_int(st, 2,
                     (int)(b->limit && b->limit <= RD_STORE_BATCH ? b->limit : RD_STORE_BATCH));
    sqlite3_bind_int64(st, 3, now_ms());
    b->n = 0;
    int rc;
    while (b->n < RD_STORE_BATCH && (rc = sqlite3_step(st)) == SQLITE_ROW)
        read_asset(st, &b->assets[b->n++]);
    return b->n == RD_STORE_BATCH || rc == SQLITE_DONE ? 0 : sq_errno(rc);
}

static int op_asset_update(sq *s, struct rd_msg_store *b)
{
    rd_asset *a = &b->assets[0];
    int processing = strcmp(a->state, "processing") == 0;
    if (a->public_id[0] == '\0' || a->org[0] == '\0' ||
        (processing ? a->job_id <= 0 : strcmp(a->state, "uploaded") != 0 || a->job_id != 0))
        return -EINVAL;
    sqlite3_stmt *st = stmt(s, Q_ASSET_UPDATE);
    if (st == NULL)
        return -EIO;
    sqlite3_bind_text(st, 1, a->public_id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 2, a->org, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 3, a->state, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 4, a->job_id);
    sqlite3_bind_int64(st, 5, now_ms());
    int rc = sqlite3_step(st);
    if (rc == SQLITE_DONE)
        return -ENOENT;
    if (rc != SQLITE_ROW)
        return sq_errno(rc);
    read_asset(st, a);
    b->n = 1;
    return 0;
}

static int op_rendition_put(sq *s, struct rd_msg_store *b)
{
    sqlite3_stmt *st = stmt(s, Q_REND_PUT);
    if (st == NULL)
        return -EIO;
    rd_rendition *r = &b->renditions[0];
    sqlite3_bind_int64(st, 1, r->asset_id);
    sqlite3_bind_text(st, 2, r->name, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 3, r->width);
    sqlite3_bind_int(st, 4, r->height);
    sqlite3_bind_int(st, 5, r->bitrate_kbps);
    sqlite3_bind_text(st, 6, r->playlist_key, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 7, now_ms());
    int rc = sqlite3_step(st);
    if (rc != SQLITE_ROW)
        return sq_errno(rc);
    r->id = sqlite3_column_int64(st, 0);
    sqlite3_reset(st);
    b->n = 1;
    if (r->duration_ms > 0) {
        st = stmt(s, Q_ASSET_DURATION);
        if (st == NULL)
            return -EIO;
        sqlite3_bind_int64(st, 1, r->asset_id);
        sqlite3_bind_int64(st, 2, r->duration_ms);
        return step_done(st);
    }
    return 0;
}

/* Statement `q` for the rows of asset b->asset_id (?1), at most a batch of them (?2); NULL
 * when it cannot be prepared. */
static sqlite3_stmt *asset_rows(sq *s, int q, const struct rd_msg_store *b)
{
    sqlite3_stmt *st = stmt(s, q);
    if (st != NULL) {
        sqlite3_bind_int64(st, 1, b->asset_id);
        sqlite3_bind_int(st, 2, RD_STORE_BATCH);
    }
    return st;
}

static int op_rendition_list(sq *s, struct rd_msg_store *b)
{
    sqlite3_stmt *st = asset_rows(s, Q_REND_LIST, b);
    if (st == NULL)
        return -EIO;
    int rc;
    b->n = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        rd_rendition *r = &b->renditions[b->n++];
        memset(r, 0, sizeof(*r));
        r->id = sqlite3_column_int64(st, 0);
        r->asset_id = sqlite3_column_int64(st, 1);
        copy_text(r->name, sizeof(r->name), st, 2);
        r->width = sqlite3_column_int(st, 3);
        r->height = sqlite3_column_int(st, 4);
        r->bitrate_kbps = sqlite3_column_int(st, 5);
        copy_text(r->playlist_key, sizeof(r->playlist_key), st, 6);
    }
    return rc == SQLITE_DONE ? 0 : sq_errno(rc);
}

static int emit_event(sq *s, int64_t asset_id, const char *type, const char *error, int64_t now);
static int emit_outcome(sq *s, int64_t job_id, int state, int64_t now);

/* Creates job `j` (asset_id, kind, priority, max_attempts, options) unless its asset has one
 * of that kind, in the caller's transaction; *j becomes the job as stored, `created` set when
 * this call inserted it. STORE_JOB_CREATE, the export create and the clip create all come
 * here. */
static int job_create_one(sq *s, rd_job *j, int64_t now)
{
    if (j->kind[0] == '\0' || j->asset_id <= 0)
        return -EINVAL;
    sqlite3_stmt *st = stmt(s, Q_JOB_INSERT);
    if (st == NULL)
        return -EIO;
    sqlite3_bind_int64(st, 1, j->asset_id);
    sqlite3_bind_text(st, 2, j->kind, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 3, j->priority);
    sqlite3_bind_int(st, 4, j->max_attempts > 0 ? j->max_attempts : 5);
    sqlite3_bind_int64(st, 5, now);
    sqlite3_bind_int(st, 6, j->mp4 ? 1 : 0);
    sqlite3_bind_int64(st, 7, j->has_poster && j->poster_ms >= 0 ? j->poster_ms : -1);
    int r = step_done(st);
    if (r < 0)
        return r;
    int created = sqlite3_changes(s->db) == 1;
    st = stmt(s, Q_JOB_BY_KEY);
    if (st == NULL)
        return -EIO;
    sqlite3_bind_int64(st, 1, j->asset_id);
    sqlite3_bind_text(st, 2, j->kind, -1, SQLITE_TRANSIENT);
    int rc = sqlite3_step(st);
    if (rc != SQLITE_ROW)
        return sq_errno(rc);
    read_job(st, j);
    sqlite3_reset(st);
    j->created = created;
    return 0;
}

static int op_job_create(sq *s, struct rd_msg_store *b)
{
    int64_t now = now_ms();
    for (uint32_t i = 0; i < b->n; i++) {
        rd_job *j = &b->jobs[i];
        int r = job_create_one(s, j, now);
        if (r == 0 && j->created && strcmp(j->kind, "transcode") == 0)
            /* The promote was accepted: its event, in the same transaction (a clip's job is
             * not a promote: it has none). */
            r = emit_event(s, j->asset_id, "asset.uploaded", "", now);
        if (r < 0)
            return r;
    }
    return 0;
}

static int op_job_get(sq *s, struct rd_msg_store *b)
{
    sqlite3_stmt *st = stmt(s, Q_JOB_GET);
    if (st == NULL)
        return -EIO;
    sqlite3_bind_int64(st, 1, b->jobs[0].id);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_DONE)
        return -ENOENT;
    if (rc != SQLITE_ROW)
        return sq_errno(rc);
    read_job(st, &b->jobs[0]);
    b->n = 1;
    return 0;
}

static int op_job_list(sq *s, struct rd_msg_store *b)
{
    sqlite3_stmt *st = stmt(s, b->state ? Q_JOB_LIST_STATE : Q_JOB_LIST);
    if (st == NULL)
        return -EIO;
    uint32_t limit = page_limit(b);
    sqlite3_bind_int64(st, 1, b->cursor);
    sqlite3_bind_int(st, 2, (int)limit + 1);
    if (b->state)
        sqlite3_bind_text(st, 3, job_state_name(b->state), -1, SQLITE_STATIC);
    int rc;
    b->n = 0;
    b->cursor = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (b->n == limit) {
            b->cursor = b->jobs[b->n - 1].id;
            break;
        }
        read_job(st, &b->jobs[b->n++]);
    }
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : sq_errno(rc);
}

static int claim_one(sq *s, struct rd_msg_store *b, int64_t now, int64_t id, rd_job *out)
{
    sqlite3_stmt *st = stmt(s, Q_JOB_CLAIM);
    if (st == NULL)
        return -EIO;
    sqlite3_bind_int64(st, 1, now);
    sqlite3_bind_int64(st, 2, id);
    sqlite3_bind_text(st, 3, b->owner, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, b->lease_ms);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_DONE)
        return 0;
    if (rc != SQLITE_ROW)
        return sq_errno(rc);
    read_job(st, out);
    return 1;
}

static int op_job_claim(sq *s, struct rd_msg_store *b)
{
    if (b->owner[0] == '\0' || b->lease_ms <= 0)
        return -EINVAL;
    int64_t now = now_ms();
    int64_t ids[RD_STORE_BATCH];
    uint32_t nids = 0;
    if (b->n > 0) {
        for (uint32_t i = 0; i < b->n && i < RD_STORE_BATCH; i++)
            ids[nids++] = b->jobs[i].id;
    } else {
        sqlite3_stmt *st = stmt(s, Q_JOB_NEXT);
        if (st == NULL)
            return -EIO;
        sqlite3_bind_int64(st, 1, now);
        sqlite3_bind_int(st, 2, (int)page_limit(b));
        sqlite3_bind_text(st, 3, b->kind, -1, SQLITE_STATIC);
        int rc;
        while ((rc = sqlite3_step(st)) == SQLITE_ROW)
            ids[nids++] = sqlite3_column_int64(st, 0);
        if (rc != SQLITE_DONE)
            return sq_errno(rc);
    }
    b->n = 0;
    for (uint32_t i = 0; i < nids; i++) {
        int r = claim_one(s, b, now, ids[i], &b->jobs[b->n]);
        if (r < 0)
            return r;
        b->n += (uint32_t)r;
    }
    return 0;
}

/* Heartbeat, complete and fail: one fenced UPDATE per job (owner and attempt must match). */
static int op_job_fenced(sq *s, struct rd_msg_store *b)
{
    int64_t now = now_ms();
    int q = b->op == STORE_JOB_HEARTBEAT  ? Q_JOB_HEARTBEAT
            : b->op == STORE_JOB_COMPLETE ? Q_JOB_COMPLETE
            : b->op == STORE_JOB_RELEASE  ? Q_JOB_RELEASE
                                          : Q_JOB_FAIL;
    for (uint32_t i = 0; i < b->n; i++) {
        rd_job *j = &b->jobs[i];
        sqlite3_stmt *st = stmt(s, q);
        if (st == NULL)
            return -EIO;
        sqlite3_bind_int64(st, 1, now);
        sqlite3_bind_int64(st, 2, j->id);
        sqlite3_bind_text(st, 3, b->owner, -1, SQLITE_STATIC);
        sqlite3_bind_int(st, 4, j->attempts);
        if (q == Q_JOB_HEARTBEAT) {
            sqlite3_bind_int64(st, 5, b->lease_ms);
            sqlite3_bind_int(st, 6, j->progress);
        } else if (q == Q_JOB_FAIL) {
            sqlite3_bind_int64(st, 5, j->retry_ms);
            sqlite3_bind_text(st, 6, j->error, -1, SQLITE_STATIC);
        }
        int rc = sqlite3_step(st);
        int applied;
        int state = JOB_STATE_NONE;
        if (q == Q_JOB_FAIL) {
            applied = rc == SQLITE_ROW;
            if (applied) {
                const char *name = (const char *)sqlite3_column_text(st, 0);
                state = job_state_parse(name, strlen(name));
            }
            sqlite3_reset(st);
        } else {
            applied = rc == SQLITE_DONE && sqlite3_changes(s->db) == 1;
        }
        if (rc != SQLITE_ROW && rc != SQLITE_DONE)
            return sq_errno(rc);
        if (!applied)
            state = job_state_for(s, j->id, b->owner, j->attempts);
        else if (q == Q_JOB_HEARTBEAT)
            state = JOB_RUNNING;
        else if (q == Q_JOB_COMPLETE)
            state = JOB_SUCCEEDED;
        else if (q == Q_JOB_RELEASE)
            state = JOB_QUEUED;
        j->state = state;
        if (applied && (q == Q_JOB_COMPLETE || q == Q_JOB_FAIL)) {
            /* The asset's outcome: its event, in the same transaction. */
            int r = emit_outcome(s, j->id, state, now);
            if (r < 0)
                return r;
        }
    }
    return 0;
}

static int op_job_cancel(sq *s, struct rd_msg_store *b)
{
    int r = op_job_get(s, b);
    if (r < 0)
        return r;
    if (b->jobs[0].state != JOB_QUEUED && b->jobs[0].state != JOB_RUNNING)
        return -EALREADY;
    sqlite3_stmt *st = stmt(s, Q_JOB_CANCEL);
    if (st == NULL)
        return -EIO;
    sqlite3_bind_int64(st, 1, now_ms());
    sqlite3_bind_int64(st, 2, b->jobs[0].id);
    return step_done(st);
}

static int op_job_counts(sq *s, struct rd_msg_store *b)
{
    int active = b->state == RD_COUNT_ACTIVE;
    sqlite3_stmt *st = stmt(s, active ? Q_COUNTS_ACTIVE : Q_COUNTS);
    if (st == NULL)
        return -EIO;
    memset(&b->counts, 0, sizeof(b->counts));
    if (active)
        b->counts.completed = b->counts.failed = b->counts.dead = -1;
    sqlite3_bind_int64(st, 1, now_ms());
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *name = (const char *)sqlite3_column_text(st, 0);
        queue_counts_add(&b->counts, job_state_parse(name, strlen(name)),
                         sqlite3_column_int64(st, 1));
        if (sqlite3_column_int64(st, 2) > b->counts.oldest_queued_ms)
            b->counts.oldest_queued_ms = sqlite3_column_int64(st, 2);
        if (sqlite3_column_int64(st, 3) > b->counts.oldest_webhook_ms)
            b->counts.oldest_webhook_ms = sqlite3_column_int64(st, 3);
    }
    return rc == SQLITE_DONE ? 0 : sq_errno(rc);
}

static int op_job_sweep(sq *s, struct rd_msg_store *b)
{
    sqlite3_stmt *st = stmt(s, Q_SWEEP);
    if (st == NULL)
        return -EIO;
    sqlite3_bind_int64(st, 1, now_ms());
    int r = step_done(st);
    b->n = r == 0 ? (uint32_t)sqlite3_changes(s->db) : 0;
    return r;
}

static int op_job_due(sq *s, struct rd_msg_store *b)
{
    int64_t now = now_ms();
    sqlite3_stmt *st = stmt(s, Q_DUE);
    if (st == NULL)
        return -EIO;
    sqlite3_bind_int64(st, 1, now);
    sqlite3_bind_int(st, 2, (int)page_limit(b));
    sqlite3_bind_int64(st, 3, b->lease_ms);
    int rc;
    b->n = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        memset(&b->jobs[b->n], 0, sizeof(rd_job));
        b->jobs[b->n].id = sqlite3_column_int64(st, 0);
        copy_text(b->jobs[b->n].kind, sizeof(b->jobs[b->n].kind), st, 1);
        b->n++;
    }
    if (rc != SQLITE_DONE)
        return sq_errno(rc);
    for (uint32_t i = 0; i < b->n; i++) {
        st = stmt(s, Q_MARK_PUBLISHED);
        if (st == NULL)
            return -EIO;
        sqlite3_bind_int64(st, 1, now);
        sqlite3_bind_int64(st, 2, b->jobs[i].id);
        int r = step_done(st);
        if (r < 0)
            return r;
    }
    return 0;
}

/* ---- webhooks ---- */

/* Writes the `type` event of `row` (an asset for Q_EV_INSERT, an export for
 * Q_EV_INSERT_EXPORT) when its org's endpoint takes that type, with its delivery job, in the
 * caller's transaction. 0 (also when there is no endpoint), or -errno. */
static int emit_event_q(sq *s, int q, int64_t row, const char *type, const char *error, int64_t now)
{
    sqlite3_stmt *st = stmt(s, q);
    if (st == NULL)
        return -EIO;
    sqlite3_bind_int64(st, 1, row);
    sqlite3_bind_text(st, 2, type, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, error ? error : "", -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 4, now);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_DONE)
        return 0;
    if (rc != SQLITE_ROW)
        return sq_errno(rc);
    int64_t ev = sqlite3_column_int64(st, 0);
    sqlite3_reset(st);
    st = stmt(s, Q_JOB_INSERT);
    if (st == NULL)
        return -EIO;
    sqlite3_bind_int64(st, 1, ev);
    sqlite3_bind_text(st, 2, "webhook", -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 3, 0);
    sqlite3_bind_int(st, 4, store_webhook_max_attempts);
    sqlite3_bind_int64(st, 5, now);
    sqlite3_bind_int(st, 6, 0);    /* no MP4 */
    sqlite3_bind_int64(st, 7, -1); /* no poster time */
    return step_done(st);
}

static int emit_event(sq *s, int64_t asset_id, const char *type, const char *error, int64_t now)
{
    return emit_event_q(s, Q_EV_INSERT, asset_id, type, error, now);
}

/* After a transcode or export job's outcome was written: its asset's or export's event (a
 * retry to come, or a cancel, is none). */
static int emit_outcome(sq *s, int64_t job_id, int state, int64_t now)
{
    if (state != JOB_SUCCEEDED && state != JOB_FAILED && state != JOB_DEAD)
        return 0;
    sqlite3_stmt *st = stmt(s, Q_JOB_GET);
    if (st == NULL)
        return -EIO;
    sqlite3_bind_int64(st, 1, job_id);
    if (sqlite3_step(st) != SQLITE_ROW)
        return 0;
    rd_job j;
    read_job(st, &j);
    sqlite3_reset(st);
    const char *error = state == JOB_SUCCEEDED ? "" : j.error;
    if (strcmp(j.kind, "export") == 0) /* the job's asset_id is the export's row */
        return emit_event_q(s, Q_EV_INSERT_EXPORT, j.asset_id,
                            state == JOB_SUCCEEDED ? "export.ready" : "export.failed", error, now);
    if (strcmp(j.kind, "transcode") != 0)
        return 0;
    return emit_event(s, j.asset_id, state == JOB_SUCCEEDED ? "asset.ready" : "asset.failed", error,
                      now);
}

static void read_webhook(sqlite3_stmt *st, rd_webhook *w)
{
    memset(w, 0, sizeof(*w));
    copy_text(w->org, sizeof(w->org), st, 0);
    copy_text(w->url, sizeof(w->url), st, 1);
    copy_text(w->events, sizeof(w->events), st, 2);
    copy_text(w->secret, sizeof(w->secret), st, 3);
    copy_text(w->previous, sizeof(w->previous), st, 4);
    w->previous_until_ms = sqlite3_column_int64(st, 5);
    w->created_ms = sqlite3_column_int64(st, 6);
    w->updated_ms = sqlite3_column_int64(st, 7);
}

static int webhook_get(sq *s, rd_webhook *w)
{
    sqlite3_stmt *st = stmt(s, Q_WH_GET);
    if (st == NULL)
        return -EIO;
    sqlite3_bind_text(st, 1, w->org, -1, SQLITE_TRANSIENT);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_DONE)
        return -ENOENT;
    if (rc != SQLITE_ROW)
        return sq_errno(rc);
    read_webhook(st, w);
    sqlite3_reset(st);
    return 0;
}

static int op_webhook(sq *s, struct rd_msg_store *b)
{
    rd_webhook *w = &b->webhook;
    int64_t now = now_ms();
    if (w->org[0] == '\0')
        return -EINVAL;
    sqlite3_stmt *st;
    int created = 0;
    switch (b->op) {
    case STORE_WEBHOOK_GET:
        return webhook_get(s, w);
    case STORE_WEBHOOK_DELETE:
        st = stmt(s, Q_WH_DELETE);
        if (st == NULL)
            return -EIO;
        sqlite3_bind_text(st, 1, w->org, -1, SQLITE_STATIC);
        if (step_done(st) < 0)
            return -EIO;
        return sqlite3_changes(s->db) == 1 ? 0 : -ENOENT;
    case STORE_WEBHOOK_PUT:
        if (w->url[0] == '\0' || w->secret[0] == '\0')
            return -EINVAL;
        st = stmt(s, Q_WH_INSERT);
        if (st == NULL)
            return -EIO;
        sqlite3_bind_text(st, 1, w->org, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, w->url, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 3, w->events, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 4, w->secret, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 5, now);
        if (step_done(st) < 0)
            return -EIO;
        created = sqlite3_changes(s->db) == 1;
        if (!created) {
            st = stmt(s, Q_WH_UPDATE);
            if (st == NULL)
                return -EIO;
            sqlite3_bind_text(st, 1, w->org, -1, SQLITE_STATIC);
            sqlite3_bind_text(st, 2, w->url, -1, SQLITE_STATIC);
            sqlite3_bind_text(st, 3, w->events, -1, SQLITE_STATIC);
            sqlite3_bind_int64(st, 4, now);
            if (step_done(st) < 0)
                return -EIO;
        }
        break;
    case STORE_WEBHOOK_ROTATE:
        if (w->secret[0] == '\0')
            return -EINVAL;
        st = stmt(s, Q_WH_ROTATE);
        if (st == NULL)
            return -EIO;
        sqlite3_bind_text(st, 1, w->org, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, w->secret, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 3, now);
        sqlite3_bind_int64(st, 4, b->lease_ms);
        if (step_done(st) < 0)
            return -EIO;
        if (sqlite3_changes(s->db) != 1)
            return -ENOENT;
        break;
    default:
        return -EINVAL;
    }
    int r = webhook_get(s, w);
    w->created = created;
    return r;
}

static int op_webhook_event(sq *s, struct rd_msg_store *b)
{
    sqlite3_stmt *st = stmt(s, Q_EV_GET);
    if (st == NULL)
        return -EIO;
    sqlite3_bind_int64(st, 1, b->deliveries[0].event_row);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_DONE)
        return -ENOENT;
    if (rc != SQLITE_ROW)
        return sq_errno(rc);
    rd_webhook_delivery *d = &b->deliveries[0];
    memset(d, 0, sizeof(*d));
    d->event_row = sqlite3_column_int64(st, 0);
    d->asset_id = sqlite3_column_int64(st, 1);
    d->created_ms = sqlite3_column_int64(st, 2);
    copy_text(d->event_id, sizeof(d->event_id), st, 3);
    copy_text(d->type, sizeof(d->type), st, 4);
    copy_text(d->org, sizeof(d->org), st, 5);
    copy_text(d->asset_public, sizeof(d->asset_public), st, 6);
    copy_text(d->error, sizeof(d->error), st, 7);
    rd_webhook *w = &b->webhook;
    memset(w, 0, sizeof(*w));
    snprintf(w->org, sizeof(w->org), "%s", d->org);
    copy_text(w->url, sizeof(w->url), st, 8);
    copy_text(w->events, sizeof(w->events), st, 9);
    copy_text(w->secret, sizeof(w->secret), st, 10);
    copy_text(w->previous, sizeof(w->previous), st, 11);
    w->previous_until_ms = sqlite3_column_int64(st, 12);
    d->duration_ms = sqlite3_column_int64(st, 13);
    d->export_id = sqlite3_column_int64(st, 14);
    copy_text(d->export_public, sizeof(d->export_public), st, 15);
    d->export_start_ms = sqlite3_column_int64(st, 16);
    d->export_end_ms = sqlite3_column_int64(st, 17);
    copy_text(d->export_lang, sizeof(d->export_lang), st, 18);
    copy_text(d->master_key, sizeof(d->master_key), st, 19);
    b->n = 1;
    return 0;
}

static int op_webhook_attempt(sq *s, struct rd_msg_store *b)
{
    const rd_webhook_delivery *d = &b->deliveries[0];
    sqlite3_stmt *st = stmt(s, Q_AT_INSERT);
    if (st == NULL)
        return -EIO;
    sqlite3_bind_int64(st, 1, d->event_row);
    sqlite3_bind_int(st, 2, d->attempt);
    sqlite3_bind_int(st, 3, d->status_code);
    sqlite3_bind_int(st, 4, d->latency_ms);
    sqlite3_bind_text(st, 5, d->state, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 6, d->error, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 7, now_ms());
    return step_done(st);
}

static int op_webhook_list(sq *s, struct rd_msg_store *b)
{
    sqlite3_stmt *st = stmt(s, Q_AT_LIST);
    if (st == NULL)
        return -EIO;
    uint32_t limit = page_limit(b);
    sqlite3_bind_text(st, 1, b->webhook.org, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 2, b->cursor);
    sqlite3_bind_int(st, 3, (int)limit + 1);
    int rc;
    b->n = 0;
    b->cursor = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (b->n == limit) {
            b->cursor = b->deliveries[b->n - 1].id;
            break;
        }
        rd_webhook_delivery *d = &b->deliveries[b->n++];
        memset(d, 0, sizeof(*d));
        d->id = sqlite3_column_int64(st, 0);
        d->event_row = sqlite3_column_int64(st, 1);
        d->asset_id = sqlite3_column_int64(st, 2);
        d->created_ms = sqlite3_column_int64(st, 3);
        d->next_retry_ms = sqlite3_column_int64(st, 4);
        d->status_code = sqlite3_column_int(st, 5);
        d->latency_ms = sqlite3_column_int(st, 6);
        d->attempt = sqlite3_column_int(st, 7);
        copy_text(d->event_id, sizeof(d->event_id), st, 8);
        copy_text(d->type, sizeof(d->type), st, 9);
        copy_text(d->org, sizeof(d->org), st, 10);
        copy_text(d->asset_public, sizeof(d->asset_public), st, 11);
        copy_text(d->state, sizeof(d->state), st, 12);
        copy_text(d->error, sizeof(d->error), st, 13);
    }
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : sq_errno(rc);
}

/* ---- deletion ---- */

static int op_asset_delete(sq *s, struct rd_msg_store *b)
{
    rd_asset *a = &b->assets[0];
    if (a->public_id[0] == '\0' || a->org[0] == '\0')
        return -EINVAL;
    sqlite3_stmt *st = stmt(s, Q_ASSET_FIND_ANY);
    if (st == NULL)
        return -EIO;
    sqlite3_bind_text(st, 1, a->public_id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 2, a->org, -1, SQLITE_TRANSIENT);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_DONE)
        return -ENOENT;
    if (rc != SQLITE_ROW)
        return sq_errno(rc);
    read_asset(st, a);
    sqlite3_reset(st);
    b->n = 1;
    b->state = 0;
    if (a->deleted_ms > 0)
        return 0; /* deleted already: as it is */
    int64_t now = now_ms();
    if (a->job_id > 0 && (a->job_state == JOB_QUEUED || a->job_state == JOB_RUNNING)) {
        st = stmt(s, Q_JOB_CANCEL);
        if (st == NULL)
            return -EIO;
        sqlite3_bind_int64(st, 1, now);
        sqlite3_bind_int64(st, 2, a->job_id);
        int r = step_done(st);
        if (r < 0)
            return r;
    }
    st = stmt(s, Q_EXP_CANCEL);
    if (st == NULL)
        return -EIO;
    sqlite3_bind_int64(st, 1, now);
    sqlite3_bind_int64(st, 2, a->id);
    int r = step_done(st);
    if (r < 0)
        return r;
    st = stmt(s, Q_ASSET_MARK_DELETED);
    if (st == NULL)
        return -EIO;
    sqlite3_bind_int64(st, 1, a->id);
    sqlite3_bind_int64(st, 2, now);
    r = step_done(st);
    if (r < 0)
        return r;
    r = emit_event(s, a->id, "asset.deleted", "", now);
    if (r < 0)
        return r;
    a->deleted_ms = a->purge_after_ms = a->updated_ms = now;
    snprintf(a->state, sizeof(a->state), "deleted");
    b->state = 1;
    return 0;
}

static int op_asset_purge_due(sq *s, struct rd_msg_store *b)
{
    sqlite3_stmt *st = stmt(s, Q_ASSET_PURGE_DUE);
    if (st == NULL)
        return -EIO;
    sqlite3_bind_int64(st, 1, now_ms());
    sqlite3_bind_int(st, 2, (int)page_limit(b));
    sqlite3_bind_int64(st, 3, b->lease_ms > 0 ? b->lease_ms : 60000);
    b->n = 0;
    int rc;
    while (b->n < RD_STORE_BATCH && (rc = sqlite3_step(st)) == SQLITE_ROW)
        read_asset(st, &b->assets[b->n++]);
    return b->n == RD_STORE_BATCH || rc == SQLITE_DONE ? 0 : sq_errno(rc);
}

static int op_asset_purged(sq *s, struct rd_msg_store *b)
{
    sqlite3_stmt *st = stmt(s, Q_ASSET_PURGED);
    if (st == NULL)
        return -EIO;
    sqlite3_bind_int64(st, 1, b->assets[0].id);
    sqlite3_bind_int64(st, 2, b->lease_ms);
    sqlite3_bind_int64(st, 3, b->assets[0].master_until_ms);
    sqlite3_bind_int64(st, 4, now_ms());
    int r = step_done(st);
    return r < 0 ? r : sqlite3_changes(s->db) == 1 ? 0 : -ENOENT;
}

static int op_asset_deleted(sq *s, struct rd_msg_store *b)
{
    sqlite3_stmt *st = stmt(s, b->cursor > 0 ? Q_ASSET_DELETED : Q_ASSET_DELETED_SINCE);
    if (st == NULL)
        return -EIO;
    if (b->cursor > 0) {
        sqlite3_bind_int64(st, 1, b->cursor);
        sqlite3_bind_int64(st, 2, b->asset_id);
        sqlite3_bind_int(st, 3, (int)page_limit(b));
    } else {
        sqlite3_bind_int64(st, 1, now_ms() - b->lease_ms);
        sqlite3_bind_int(st, 2, (int)page_limit(b));
    }
    b->n = 0;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW && b->n < RD_STORE_BATCH)
        read_asset(st, &b->assets[b->n++]);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : sq_errno(rc);
}

/* ---- caption tracks ---- */

static void read_caption(sqlite3_stmt *st, int col, rd_caption *c)
{
    memset(c, 0, sizeof(*c));
    copy_text(c->lang, sizeof(c->lang), st, col);
    copy_text(c->name, sizeof(c->name), st, col + 1);
    c->is_default = sqlite3_column_int(st, col + 2) != 0;
    c->created_ms = sqlite3_column_int64(st, col + 3);
    c->updated_ms = sqlite3_column_int64(st, col + 4);
}

/* Binds the asset (?1) and the track's lang (?2) to statement `q`; NULL when it cannot be
 * prepared. */
static sqlite3_stmt *caption_stmt(sq *s, int q, const struct rd_msg_store *b)
{
    sqlite3_stmt *st = stmt(s, q);
    if (st != NULL) {
        sqlite3_bind_int64(st, 1, b->asset_id);
        sqlite3_bind_text(st, 2, b->captions[0].lang, -1, SQLITE_TRANSIENT);
    }
    return st;
}

/* Steps `st` (NULL: it could not be prepared) onto its first row: 0, -ENOENT when there is
 * none, or the error. */
static int first_row(sqlite3_stmt *st)
{
    if (st == NULL)
        return -EIO;
    int rc = sqlite3_step(st);
    return rc == SQLITE_ROW ? 0 : rc == SQLITE_DONE ? -ENOENT : sq_errno(rc);
}

/* One more change to the asset's tracks: its captions version after, in b->cursor. */
static int caption_bump(sq *s, struct rd_msg_store *b)
{
    sqlite3_stmt *st = stmt(s, Q_CAP_BUMP);
    if (st != NULL)
        sqlite3_bind_int64(st, 1, b->asset_id);
    int r = first_row(st);
    if (r == 0)
        b->cursor = sqlite3_column_int64(st, 0);
    return r;
}

static int op_caption_put(sq *s, struct rd_msg_store *b)
{
    rd_caption *c = &b->captions[0];
    if (c->lang[0] == '\0')
        return -EINVAL;
    sqlite3_stmt *st = caption_stmt(s, Q_CAP_ASSET, b);
    int r = first_row(st);
    if (r < 0)
        return r;
    int64_t tracks = sqlite3_column_int64(st, 0);
    int exists = sqlite3_column_int(st, 1);
    sqlite3_reset(st);
    if (!exists && tracks >= RD_CAPTIONS_MAX)
        return -ENOSPC;
    if (c->is_default) {
        st = caption_stmt(s, Q_CAP_UNDEFAULT, b);
        if (st == NULL)
            return -EIO;
        r = step_done(st);
        if (r < 0)
            return r;
    }
    st = caption_stmt(s, Q_CAP_PUT, b);
    if (st == NULL)
        return -EIO;
    sqlite3_bind_text(st, 3, c->name, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int(st, 4, c->is_default ? 1 : 0);
    sqlite3_bind_int64(st, 5, now_ms());
    int rc = sqlite3_step(st);
    if (rc != SQLITE_ROW)
        return sq_errno(rc);
    read_caption(st, 0, c);
    sqlite3_reset(st);
    b->n = 1;
    b->state = !exists;
    return caption_bump(s, b);
}

static int op_caption_list(sq *s, struct rd_msg_store *b)
{
    sqlite3_stmt *st = asset_rows(s, Q_CAP_LIST, b);
    int r = first_row(st);
    if (r < 0)
        return r;
    b->n = 0;
    b->cursor = sqlite3_column_int64(st, 0);
    int rc = SQLITE_ROW;
    for (; rc == SQLITE_ROW && sqlite3_column_type(st, 1) != SQLITE_NULL; rc = sqlite3_step(st))
        read_caption(st, 1, &b->captions[b->n++]);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : sq_errno(rc);
}

static int op_caption_delete(sq *s, struct rd_msg_store *b)
{
    sqlite3_stmt *st = caption_stmt(s, Q_CAP_DELETE, b);
    if (st == NULL)
        return -EIO;
    int r = step_done(st);
    if (r < 0)
        return r;
    if (sqlite3_changes(s->db) != 1)
        return -ENOENT;
    return caption_bump(s, b);
}

/* ---- exports ---- */

static void read_export(sqlite3_stmt *st, rd_export *e)
{
    memset(e, 0, sizeof(*e));
    e->id = sqlite3_column_int64(st, 0);
    e->asset_id = sqlite3_column_int64(st, 1);
    e->job_id = sqlite3_column_int64(st, 2);
    e->start_ms = sqlite3_column_int64(st, 3);
    e->end_ms = sqlite3_column_int64(st, 4);
    e->created_ms = sqlite3_column_int64(st, 5);
    e->updated_ms = sqlite3_column_int64(st, 6);
    e->height = sqlite3_column_int(st, 7);
    copy_text(e->public_id, sizeof(e->public_id), st, 8);
    copy_text(e->org, sizeof(e->org), st, 9);
    copy_text(e->lang, sizeof(e->lang), st, 10);
    copy_text(e->format, sizeof(e->format), st, 11);
    copy_text(e->asset_public, sizeof(e->asset_public), st, 12);
    copy_text(e->master_key, sizeof(e->master_key), st, 13);
    const unsigned char *js = sqlite3_column_text(st, 14);
    e->job_state = js ? job_state_parse((const char *)js, strlen((const char *)js)) : 0;
    e->job_progress = sqlite3_column_int(st, 15);
    e->job_attempts = sqlite3_column_int(st, 16);
    copy_text(e->job_error, sizeof(e->job_error), st, 17);
}

/* Statement `q` (Q_EXP_INSERT, Q_EXP_BY_KEY) with the request's fields bound; NULL when it
 * cannot be prepared. */
static sqlite3_stmt *export_stmt(sq *s, int q, const rd_export *e)
{
    sqlite3_stmt *st = stmt(s, q);
    if (st != NULL) {
        sqlite3_bind_text(st, 1, e->public_id, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(st, 2, e->org, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int64(st, 3, e->asset_id);
        sqlite3_bind_int64(st, 4, e->start_ms);
        sqlite3_bind_int64(st, 5, e->end_ms);
        sqlite3_bind_int(st, 6, e->height);
        sqlite3_bind_text(st, 7, e->lang, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(st, 8, e->format, -1, SQLITE_TRANSIENT);
    }
    return st;
}

/* Export `id` with its asset and job into *e: 0 or -ENOENT. */
static int export_by_id(sq *s, int64_t id, rd_export *e)
{
    sqlite3_stmt *st = stmt(s, Q_EXP_GET_ID);
    if (st != NULL)
        sqlite3_bind_int64(st, 1, id);
    int r = first_row(st);
    if (r == 0)
        read_export(st, e);
    return r;
}

static int op_export_create(sq *s, struct rd_msg_store *b)
{
    /* jobs[0] shares the union with exports[0]: its max_attempts is read before any answer is
     * written (it lies over exports[0].updated_ms, which is not an input). */
    int32_t max_attempts = b->jobs[0].max_attempts;
    rd_export *e = &b->exports[0];
    if (e->asset_id <= 0 || e->public_id[0] == '\0' || e->org[0] == '\0' || e->format[0] == '\0' ||
        e->start_ms < 0 || e->end_ms <= e->start_ms || e->height < 0)
        return -EINVAL;
    int64_t now = now_ms();
    sqlite3_stmt *st = stmt(s, Q_ASSET_OF_ORG);
    if (st != NULL) {
        sqlite3_bind_int64(st, 1, e->asset_id);
        sqlite3_bind_text(st, 2, e->org, -1, SQLITE_TRANSIENT);
    }
    int r = first_row(st);
    if (r < 0)
        return r;
    sqlite3_reset(st);
    st = export_stmt(s, Q_EXP_INSERT, e);
    if (st == NULL)
        return -EIO;
    sqlite3_bind_int64(st, 9, now);
    r = step_done(st);
    if (r < 0)
        return r;
    int created = sqlite3_changes(s->db) == 1;
    st = export_stmt(s, Q_EXP_BY_KEY, e);
    r = first_row(st);
    if (r < 0)
        return r;
    rd_job j = {.asset_id = sqlite3_column_int64(st, 0), .max_attempts = max_attempts};
    sqlite3_reset(st);
    snprintf(j.kind, sizeof(j.kind), "export");
    r = job_create_one(s, &j, now);
    if (r < 0)
        return r;
    r = export_by_id(s, j.asset_id, e);
    if (r < 0)
        return r;
    e->created = created;
    b->n = 1;
    return 0;
}

static int op_export_get(sq *s, struct rd_msg_store *b)
{
    rd_export *e = &b->exports[0];
    int r;
    if (e->public_id[0] == '\0') {
        if (e->id <= 0)
            return -EINVAL;
        r = export_by_id(s, e->id, e);
    } else {
        sqlite3_stmt *st = stmt(s, Q_EXP_GET);
        if (st != NULL) {
            sqlite3_bind_text(st, 1, e->public_id, -1, SQLITE_TRANSIENT);
            sqlite3_bind_text(st, 2, e->org, -1, SQLITE_TRANSIENT);
        }
        r = first_row(st);
        if (r == 0)
            read_export(st, e);
    }
    if (r == 0)
        b->n = 1;
    return r;
}

/* ---- clips ---- */

static int op_clip_create(sq *s, struct rd_msg_store *b)
{
    /* jobs[0] shares the union with assets[0]: its max_attempts is read before any answer is
     * written (it lies over assets[0].job_state, which is not an input). */
    int32_t max_attempts = b->jobs[0].max_attempts;
    const rd_asset *a = &b->assets[0];
    if (a->public_id[0] == '\0' || a->org[0] == '\0' || a->source_id <= 0 ||
        a->source_start_ms < 0 || a->source_end_ms <= a->source_start_ms)
        return -EINVAL;
    int64_t now = now_ms();
    sqlite3_stmt *st = stmt(s, Q_ASSET_OF_ORG);
    if (st != NULL) {
        sqlite3_bind_int64(st, 1, a->source_id);
        sqlite3_bind_text(st, 2, a->org, -1, SQLITE_TRANSIENT);
    }
    int r = first_row(st);
    if (r < 0)
        return r;
    sqlite3_reset(st);
    st = stmt(s, Q_CLIP_INSERT);
    if (st == NULL)
        return -EIO;
    sqlite3_bind_text(st, 1, a->public_id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 2, a->org, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 3, a->filename, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 4, a->content_type, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 5, a->master_key, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 6, a->source_id);
    sqlite3_bind_int64(st, 7, a->source_start_ms);
    sqlite3_bind_int64(st, 8, a->source_end_ms);
    sqlite3_bind_int64(st, 9, now);
    r = first_row(st);
    if (r < 0)
        return r == -ENOENT ? -EIO : r;
    rd_job j = {.asset_id = sqlite3_column_int64(st, 0), .max_attempts = max_attempts};
    sqlite3_reset(st);
    snprintf(j.kind, sizeof(j.kind), "transcode");
    r = job_create_one(s, &j, now);
    if (r < 0)
        return r;
    st = stmt(s, Q_CLIP_JOB);
    if (st == NULL)
        return -EIO;
    sqlite3_bind_int64(st, 1, j.asset_id);
    sqlite3_bind_int64(st, 2, j.id);
    r = step_done(st);
    if (r < 0)
        return r;
    b->assets[0].id = j.asset_id;
    return op_asset_get(s, b);
}

static int is_write(int op)
{
    return op != STORE_ASSET_GET && op != STORE_ASSET_LIST && op != STORE_ASSET_FIND &&
           op != STORE_RENDITION_LIST && op != STORE_JOB_GET && op != STORE_JOB_LIST &&
           op != STORE_JOB_COUNTS && op != STORE_OUTBOX_TAKE && op != STORE_WEBHOOK_GET &&
           op != STORE_WEBHOOK_EVENT && op != STORE_WEBHOOK_LIST && op != STORE_ASSET_DELETED &&
           op != STORE_CAPTION_LIST && op != STORE_EXPORT_GET;
}

static int execute(sq *s, struct rd_msg_store *b)
{
    if (b->n > RD_STORE_BATCH)
        return -EINVAL;
    switch (b->op) {
    case STORE_ASSET_CREATE:
        return op_asset_create(s, b);
    case STORE_ASSET_GET:
        return op_asset_get(s, b);
    case STORE_ASSET_LIST:
        return op_asset_list(s, b);
    case STORE_RENDITION_PUT:
        return op_rendition_put(s, b);
    case STORE_RENDITION_LIST:
        return op_rendition_list(s, b);
    case STORE_JOB_CREATE:
        return op_job_create(s, b);
    case STORE_JOB_GET:
        return op_job_get(s, b);
    case STORE_JOB_LIST:
        return op_job_list(s, b);
    case STORE_JOB_CLAIM:
        return op_job_claim(s, b);
    case STORE_JOB_HEARTBEAT:
    case STORE_JOB_COMPLETE:
    case STORE_JOB_FAIL:
    case STORE_JOB_RELEASE:
        return op_job_fenced(s, b);
    case STORE_JOB_CANCEL:
        return op_job_cancel(s, b);
    case STORE_JOB_COUNTS:
        return op_job_counts(s, b);
    case STORE_JOB_SWEEP:
        return op_job_sweep(s, b);
    case STORE_OUTBOX_TAKE:
        b->n = 0; /* no outbox: the embedded queue is in-process */
        return 0;
    case STORE_JOB_DUE:
        return op_job_due(s, b);
    case STORE_ASSET_FIND:
        return op_asset_find(s, b);
    case STORE_ASSET_UPDATE:
        return op_asset_update(s, b);
    case STORE_ORG_ACTIVE_JOBS:
        return op_org_active(s, b);
    case STORE_ASSET_EXPIRE:
        return op_asset_expire(s, b);
    case STORE_WEBHOOK_PUT:
    case STORE_WEBHOOK_GET:
    case STORE_WEBHOOK_DELETE:
    case STORE_WEBHOOK_ROTATE:
        return op_webhook(s, b);
    case STORE_WEBHOOK_EVENT:
        return op_webhook_event(s, b);
    case STORE_WEBHOOK_ATTEMPT:
        return op_webhook_attempt(s, b);
    case STORE_WEBHOOK_LIST:
        return op_webhook_list(s, b);
    case STORE_ASSET_DELETE:
        return op_asset_delete(s, b);
    case STORE_ASSET_PURGE_DUE:
        return op_asset_purge_due(s, b);
    case STORE_ASSET_PURGED:
        return op_asset_purged(s, b);
    case STORE_ASSET_DELETED:
        return op_asset_deleted(s, b);
    case STORE_CAPTION_PUT:
        return op_caption_put(s, b);
    case STORE_CAPTION_LIST:
        return op_caption_list(s, b);
    case STORE_CAPTION_DELETE:
        return op_caption_delete(s, b);
    case STORE_EXPORT_CREATE:
        return op_export_create(s, b);
    case STORE_EXPORT_GET:
        return op_export_get(s, b);
    case STORE_CLIP_CREATE:
        return op_clip_create(s, b);
    default:
        return -EINVAL;
    }
}

static int sq_init(rd_actor *self, void *arg)
{
    sq *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return -ENOMEM;
    s->path = arg;
    char err[256];
    int r = sq_open(s->path, &s->db, err, sizeof(err));
    if (r < 0) {
        log_error("store_open_failed", KV_STR("backend", "sqlite"), KV_STR("detail", err));
        free(s);
        return r;
    }
    self->state = s;
    return 0;
}

static void sq_fini(rd_actor *self)
{
    sq *s = self->state;
    if (s == NULL)
        return;
    for (int i = 0; i < Q_COUNT; i++)
        sqlite3_finalize(s->stmt[i]);
    sqlite3_close(s->db);
    free(s);
}

static int sq_handle(rd_actor *self, rd_msg *m)
{
    sq *s = self->state;
    if (m->type != MSG_STORE)
        return RD_DONE;
    struct rd_msg_store *b = msg_body(m, store);
    int write = is_write(b->op);
    int r = write ? run(s, Q_BEGIN) : 0;
    if (r == 0) {
        r = execute(s, b);
        /* A statement left on a row (RETURNING, one-row reads) would hold the transaction. */
        for (int i = Q_ASSET_INSERT; i < Q_COUNT; i++)
            if (s->stmt[i] != NULL)
                sqlite3_reset(s->stmt[i]);
        if (write)
            r = r == 0 ? run(s, Q_COMMIT) : (run(s, Q_ROLLBACK), r);
    }
    /* Answers, not failures: a caption put's -ENOSPC says the asset has all its tracks. */
    int answer = r == -ENOENT || r == -EALREADY || r == -EINVAL ||
                 (r == -ENOSPC && b->op == STORE_CAPTION_PUT);
    if (r < 0 && !answer)
        log_warn("store_failed", KV_STR("backend", "sqlite"), KV_INT("op", b->op), KV_ERRNO(r),
                 KV_STR("detail", sqlite3_errmsg(s->db)));
    b->status = r;
    if (m->from == NULL || actor_reply(m, m) != 0)
        return RD_DONE;
    return RD_KEPT;
}

static const rd_actor_def sq_def = {.name = "store-sqlite",
                                    .init = sq_init,
                                    .handle = sq_handle,
                                    .fini = sq_fini,
                                    .mailbox_bound = 1024};

int store_sqlite_spawn(const char *path, rd_actor **out)
{
    return actor_spawn_thread(&sq_def, (void *)path, -1, out);
}
