/* Jobs, assets and renditions as they cross actor boundaries: the rows the store keeps, the
 * store's request/answer payload, and the messages between the job dispatcher and its workers.
 * Plain data only; included by proto/msg.h. */
#ifndef REELD_PROTO_JOBS_H
#define REELD_PROTO_JOBS_H

#include <stddef.h>
#include <stdint.h>

/* Job and asset states, as stored (job_state_name gives the text form). */
typedef enum rd_job_state {
    JOB_STATE_NONE = 0,
    JOB_QUEUED,    /* waiting for run_after_ms, then for a worker */
    JOB_RUNNING,   /* leased by lease_owner until lease_expires_ms */
    JOB_SUCCEEDED, /* done */
    JOB_FAILED,    /* failed with an error not worth retrying */
    JOB_CANCELLED, /* cancelled by a user */
    JOB_DEAD,      /* failed max_attempts times; `error` is the last error */
    JOB_STATE_COUNT
} rd_job_state;

#define RD_JOB_KIND_MAX    24  /* "transcode", "noop", ... with the NUL */
#define RD_LEASE_OWNER_MAX 64  /* node/worker name with the NUL */
#define RD_JOB_ERROR_MAX   160 /* last error, cut */
#define RD_STORE_TEXT_MAX  128 /* asset text fields */
#define RD_STORE_BATCH     32  /* rows one request carries */
#define RD_COUNT_ACTIVE    1   /* STORE_JOB_COUNTS: the queue only (see there) */

typedef struct rd_job {
    int64_t id;
    int64_t asset_id;
    char kind[RD_JOB_KIND_MAX];
    int32_t state;        /* rd_job_state */
    int32_t priority;     /* higher first */
    int32_t attempts;     /* attempts started; the current one while running (fencing) */
    int32_t max_attempts; /* after this many failed attempts: dead */
    int32_t progress;     /* per mille */
    int32_t created;      /* job create: 1 when this call inserted it, 0 when it existed */
    int64_t retry_ms;     /* job fail: delay before the next attempt; < 0: do not retry */
    int64_t run_after_ms;
    int64_t lease_expires_ms; /* 0 when not leased */
    int64_t created_ms, updated_ms;
    char lease_owner[RD_LEASE_OWNER_MAX];
    char error[RD_JOB_ERROR_MAX];
    /* What the promote body asked of a transcode, fixed at create: also download.mp4, and the
     * poster's time (poster_ms, when has_poster). */
    int32_t mp4;
    int32_t has_poster;
    int64_t poster_ms;
} rd_job;

#define RD_ASSET_ID_MAX  32  /* public asset id with the NUL ("a" + 24 hex digits) */
#define RD_UPLOAD_ID_MAX 256 /* S3 multipart upload id with the NUL */
#define RD_FILENAME_MAX  256 /* asset file name with the NUL */

/* An asset: one row from POST /api/uploads on. Clients know it by `public_id` (random, never
 * guessable) and only within its org; `id` is the store's own key (jobs and renditions point
 * at it) and is never shown. */
typedef struct rd_asset {
    int64_t id;
    int64_t size_bytes; /* announced at upload */
    int64_t created_ms, updated_ms;
    int64_t part_size; /* multipart upload: bytes per part; 0 for a single PUT */
    int64_t job_id;    /* the transcode job, once promoted (0: not yet) */
    int32_t nparts;    /* multipart upload: parts (0 for a single PUT) */
    /* Read from the job on find and list (not stored with the asset): its state, progress
     * (per mille), attempts and last error; job_state JOB_STATE_NONE before promotion. */
    int32_t job_state, job_progress, job_attempts;
    char public_id[RD_ASSET_ID_MAX];
    char org[64];
    /* Stored: uploading, uploaded (multipart completed), processing (promoted). Read back
     * (find, list) it follows the job: processing while it is queued or running, then ready
     * or failed. */
    char state[24];
    char filename[RD_FILENAME_MAX];
    char content_type[RD_STORE_TEXT_MAX];
    char staging_key[RD_STORE_TEXT_MAX];
    char master_key[RD_STORE_TEXT_MAX];
    char upload_id[RD_UPLOAD_ID_MAX]; /* multipart upload id ("" for a single PUT) */
    char job_error[RD_JOB_ERROR_MAX];
    /* Deletion (DELETE /api/assets/{id}): when it was deleted (0: it was not), when its
     * stored objects are to be deleted next (0: all gone, or not deleted), and until when
     * Object Lock retention keeps its master (0: none known). */
    int64_t deleted_ms, purge_after_ms, master_until_ms;
    /* A clip (POST /api/assets/{id}/clips): the asset it was cut from (its store key; 0 for an
     * upload) and the range, stored. Read back with it: the source's public id and master key
     * (the clip's transcode job cuts its own master from that one first). */
    int64_t source_id, source_start_ms, source_end_ms;
    char source_public[RD_ASSET_ID_MAX];
    char source_master[RD_STORE_TEXT_MAX];
} rd_asset;

/* A caption track of an asset (PUT /api/assets/{id}/captions/{lang}). The cues themselves are
 * objects in the previews bucket; the store holds which tracks there are, so any node lists
 * them and republishes the master playlist from the same truth. */
#define RD_CAPTION_LANG_MAX 36
#define RD_CAPTIONS_MAX     16 /* tracks per asset */
typedef struct rd_caption {
    char lang[RD_CAPTION_LANG_MAX]; /* BCP 47 tag, as checked by captions_lang_ok */
    char name[64];                  /* shown in players' menus */
    int32_t is_default;             /* 1: players select it without asking */
    int64_t created_ms, updated_ms;
} rd_caption;

/* An export (POST /api/assets/{id}/exports): a range of an asset's master, optionally scaled and
 * with one caption track burned into the picture, encoded to one MP4 in the previews bucket.
 * Its job is of kind "export" and points at the export's row: job.asset_id = export.id. */
#define RD_EXPORT_ID_MAX 32 /* public export id with the NUL ("e" + 24 hex digits) */
/* Keys in the previews bucket, from the source's master key: the export's MP4 (with its public
 * id), and a caption track's whole WebVTT (with its lang), which an export burns in. */
#define RD_EXPORT_PATH_FMT       "exports/%s.mp4" /* under the ladder: the edge's path */
#define RD_EXPORT_KEY_FMT        "%s/hls/" RD_EXPORT_PATH_FMT
#define RD_CAPTION_TRACK_KEY_FMT "%s/hls/captions/%s/track.vtt"
typedef struct rd_export {
    int64_t id;       /* the store's key (its job's asset_id); never shown */
    int64_t asset_id; /* the source asset's key */
    int64_t job_id;   /* its job */
    int64_t start_ms, end_ms;
    int64_t created_ms, updated_ms;
    int32_t height;  /* output picture height; 0: the source's */
    int32_t created; /* create: 1 when this call inserted it, 0 when an identical one existed */
    char public_id[RD_EXPORT_ID_MAX];
    char org[64];
    char lang[RD_CAPTION_LANG_MAX]; /* the caption track burned in; "" for none */
    char format[8];                 /* "mp4" */
    /* Read with the row (find, get), not stored with it: the source asset's public id and
     * master key, and the job's state, progress (per mille), attempts and last error. */
    char asset_public[RD_ASSET_ID_MAX];
    char master_key[RD_STORE_TEXT_MAX];
    int32_t job_state, job_progress, job_attempts;
    char job_error[RD_JOB_ERROR_MAX];
} rd_export;

typedef struct rd_rendition {
    int64_t id, asset_id;
    int64_t duration_ms; /* put: the asset's duration, stored with the asset when > 0 */
    int32_t width, height, bitrate_kbps;
    char name[24]; /* "720p" */
    char playlist_key[RD_STORE_TEXT_MAX];
} rd_rendition;

/* An org's webhook endpoint (one per org). */
typedef struct rd_webhook {
    char org[64];
    char url[2049];
    char events[96];           /* subscribed types, comma-separated ("asset.ready,...") */
    char secret[72];           /* signs every delivery */
    char previous[72];         /* the secret before the last rotation ("" when none) */
    int64_t previous_until_ms; /* `previous` signs too until then */
    int64_t created_ms, updated_ms;
    int32_t created; /* put: 1 when this call created it */
} rd_webhook;

/* A webhook event to deliver (STORE_WEBHOOK_EVENT), or one delivery attempt (recorded by
 * STORE_WEBHOOK_ATTEMPT, listed by STORE_WEBHOOK_LIST). The event's delivery is a job of kind
 * "webhook" whose asset_id is the event's row (`event_row`). An export's event (export.ready,
 * export.failed) is of the export's source asset and names the export too. */
typedef struct rd_webhook_delivery {
    int64_t id;            /* the attempt's row (list cursor) */
    int64_t event_row;     /* the event's row */
    int64_t asset_id;      /* the store's key of the asset */
    int64_t created_ms;    /* the event's creation (event), the attempt's (list) */
    int64_t next_retry_ms; /* list: when the next attempt is due (0: none) */
    int64_t duration_ms;   /* event: the asset's duration once transcoded (0: unknown) */
    int32_t status_code;   /* the receiver's answer (0: none: timeout, connection error) */
    int32_t latency_ms;
    int32_t attempt;
    char event_id[32];
    char type[24];
    char org[64];
    char asset_public[RD_ASSET_ID_MAX];
    char state[16];               /* attempt: delivered, retrying, dead */
    char error[RD_JOB_ERROR_MAX]; /* event: asset.failed's (export.failed's) error; attempt:
                                     what went wrong */
    /* event, export.*: the export (export_id 0 and the rest empty for an asset's event), and
     * the source's master key, which signs the download link */
    int64_t export_id;
    int64_t export_start_ms, export_end_ms;
    char export_public[RD_EXPORT_ID_MAX];
    char export_lang[RD_CAPTION_LANG_MAX]; /* the caption track burned in; "" for none */
    char master_key[RD_STORE_TEXT_MAX];
} rd_webhook_delivery;

/* Queue counts for /api/health and metrics. */
typedef struct rd_queue_counts {
    int64_t waiting;   /* queued */
    int64_t active;    /* running */
    int64_t completed; /* succeeded */
    int64_t failed;    /* failed or cancelled */
    int64_t dead;
    int64_t stream_length;     /* fleet: entries in the job streams (-1: no stream) */
    int64_t stream_pending;    /* fleet: entries read and not yet acknowledged (-1: no stream) */
    int64_t oldest_queued_ms;  /* how long the oldest due queued job has waited (0: none) */
    int64_t oldest_webhook_ms; /* age of the oldest webhook event not yet delivered or dead */
} rd_queue_counts;

typedef enum rd_store_op {
    /* in: assets[0] (id ignored; public_id required and unique); out: assets[0] */
    STORE_ASSET_CREATE = 1,
    /* in: assets[0].id (the store's key: workers); out: assets[0], or -ENOENT */
    STORE_ASSET_GET,
    /* in: cursor (0: from the newest), limit, assets[0].org ("": every org), assets[0].state
     * ("": any; else the state as read back); out: assets[0..n) newest first, with their
     * jobs, and cursor (0: last page) */
    STORE_ASSET_LIST,
    /* in: renditions[0] (upsert by asset and name) */
    STORE_RENDITION_PUT,
    /* in: asset_id; out: renditions[0..n) */
    STORE_RENDITION_LIST,
    /* in: jobs[0..n) asset_id, kind, priority, max_attempts; out: the jobs, `created` set
     * where this call inserted (one job per asset and kind; fleet mode also writes an outbox
     * row in the same transaction) */
    STORE_JOB_CREATE,
    /* in: jobs[0].id; out: jobs[0], or -ENOENT */
    STORE_JOB_GET,
    /* in: state (0: any), cursor, limit; out: jobs[0..n) by id, cursor */
    STORE_JOB_LIST,
    /* in: owner, lease_ms, limit, and either n = 0 (the next due jobs by priority) or
     * jobs[0..n).id (those jobs only); out: jobs[0..n) now running for `owner`, attempts
     * counted. Claims a job that is queued and due, or running with its lease expired and
     * attempts left. */
    STORE_JOB_CLAIM,
    /* in: owner, lease_ms, jobs[0..n) id, attempts, progress; out: jobs[i].state JOB_RUNNING
     * where the lease was renewed, else the job's state now (another owner or attempt:
     * JOB_STATE_NONE) */
    STORE_JOB_HEARTBEAT,
    /* in: owner, jobs[0..n) id, attempts; out: state JOB_SUCCEEDED where applied, else as
     * heartbeat */
    STORE_JOB_COMPLETE,
    /* in: owner, jobs[0..n) id, attempts, error, retry_ms; out: the new state (queued to
     * retry, failed, or dead), else as heartbeat */
    STORE_JOB_FAIL,
    /* in: owner, jobs[0..n) id, attempts; out: JOB_QUEUED where applied (due now, the attempt
     * not counted: the node is stopping, the job did not fail), else as heartbeat */
    STORE_JOB_RELEASE,
    /* in: jobs[0].id; out: jobs[0] as it was before; -ENOENT, or -EALREADY when it had
     * finished */
    STORE_JOB_CANCEL,
    /* in: state = RD_COUNT_ACTIVE: only the queued and running jobs are counted (what a node
     * looks at every second: read through the queue's partial index, so it costs what is in
     * the queue, not every job ever run), and completed, failed and dead come back -1; 0:
     * every state. out: counts */
    STORE_JOB_COUNTS,
    /* out: n = running jobs whose lease expired after their last attempt, now dead */
    STORE_JOB_SWEEP,
    /* fleet: out: jobs[0..n) id and kind of outbox rows, deleted */
    STORE_OUTBOX_TAKE,
    /* in: limit, lease_ms (as "not published for"); out: jobs[0..n) id, kind due to run
     * (queued and due, or running with an expired lease) and not published in the last
     * lease_ms; marks them published now */
    STORE_JOB_DUE,
    /* in: assets[0].public_id and org ("": any org, for operators); out: assets[0] with its
     * job's state, progress, attempts and error; -ENOENT when there is none (another org's
     * asset is none) */
    STORE_ASSET_FIND,
    /* in: assets[0].public_id, org, state ("uploaded" or "processing") and, for
     * "processing", job_id; out: assets[0] as stored now. Once an asset has a job only
     * "processing" applies again (with the same job: one per asset and kind), so a late
     * "uploaded" cannot move it back: -ENOENT then, as for an unknown asset. */
    STORE_ASSET_UPDATE,
    /* in: assets[0].org; out: counts.active = that org's jobs queued or running (the limit
     * on jobs in flight per org is checked against it) */
    STORE_ORG_ACTIVE_JOBS,
    /* in: cursor = a time (ms): uploads created before it and never promoted (no job) are
     * marked "expired", at most `limit`; out: assets[0..n) so marked (their staging keys and
     * multipart upload ids are the caller's to delete). An expired asset never changes
     * again (STORE_ASSET_UPDATE refuses it as unknown). */
    STORE_ASSET_EXPIRE,
    /* in: webhook (org, url, events, secret: used only when it is created); out: webhook as
     * stored, `created` set when this call created it */
    STORE_WEBHOOK_PUT,
    /* in: webhook.org; out: webhook, or -ENOENT */
    STORE_WEBHOOK_GET,
    /* in: webhook.org; out: -ENOENT when there was none */
    STORE_WEBHOOK_DELETE,
    /* in: webhook.org, webhook.secret (the new one), lease_ms (the old one's grace); out:
     * webhook, or -ENOENT */
    STORE_WEBHOOK_ROTATE,
    /* in: deliveries[0].event_row; out: deliveries[0] (the event) and webhook (its org's
     * endpoint now; url "" when it was deleted), or -ENOENT */
    STORE_WEBHOOK_EVENT,
    /* in: deliveries[0] event_row, attempt, status_code, latency_ms, state, error */
    STORE_WEBHOOK_ATTEMPT,
    /* in: webhook.org, cursor (0: from the newest), limit; out: deliveries[0..n) newest
     * first, cursor (0: last page) */
    STORE_WEBHOOK_LIST,
    /* in: assets[0].public_id and org; marks the asset deleted (its objects due for deletion
     * now), cancels its job when queued or running and writes asset.deleted, in one
     * transaction; out: assets[0] as stored (job_state: the job's state before), state = 1
     * when this call deleted it (0: it was already). -ENOENT for an unknown id or another
     * org's asset. A deleted asset is none to STORE_ASSET_FIND, _LIST and _UPDATE. */
    STORE_ASSET_DELETE,
    /* in: limit, lease_ms; out: assets[0..n) deleted and due for their objects' deletion,
     * handed out for lease_ms (their purge_after_ms moved that far): one node at a time. */
    STORE_ASSET_PURGE_DUE,
    /* in: assets[0].id, master_until_ms, and lease_ms: 0 when every object is gone (or only
     * the master is left, kept until master_until_ms), else the delay before trying again. */
    STORE_ASSET_PURGED,
    /* in: cursor (a deleted_ms) and asset_id (an id): deletions after that point, by
     * (deleted_ms, id); cursor 0: those of the last lease_ms; limit. out: assets[0..n) */
    STORE_ASSET_DELETED,
    /* in: asset_id, captions[0] (lang, name, is_default); inserts or replaces that track
     * (is_default = 1 clears it on the asset's other tracks) and adds one to the asset's
     * captions version, in one transaction; out: captions[0] as stored, n = 1, state = 1
     * when this call created it (0: replaced), cursor = the captions version after.
     * -ENOSPC for a new lang when the asset has RD_CAPTIONS_MAX tracks; -ENOENT for an
     * unknown or deleted asset. */
    STORE_CAPTION_PUT,
    /* in: asset_id; out: captions[0..n) by lang, cursor = the asset's captions version (0
     * before any PUT). -ENOENT for an unknown or deleted asset. */
    STORE_CAPTION_LIST,
    /* in: asset_id, captions[0].lang; deletes that track and adds one to the captions
     * version; out: cursor = the version after. -ENOENT when there is no such track. */
    STORE_CAPTION_DELETE,
    /* in: exports[0] (asset_id, org, public_id: used only when it is created, start_ms,
     * end_ms, height, lang, format) and jobs[0].max_attempts; inserts the export unless the
     * same asset has one with the same start_ms, end_ms, height, lang and format, and its job
     * (kind "export", asset_id = the export's id; fleet mode: with its outbox row) in the same
     * transaction; out: exports[0] as stored, with job_id and `created` (1: inserted by this
     * call, 0: the identical one that was there). -ENOENT for an unknown or deleted asset. */
    STORE_EXPORT_CREATE,
    /* in: exports[0].public_id and org (the API; another org's export is none), or, with an
     * empty public_id, exports[0].id (workers); out: exports[0] with asset_public,
     * master_key and its job's state, progress, attempts and error; -ENOENT when there is
     * none. */
    STORE_EXPORT_GET,
    /* in: assets[0] (public_id, org, filename, content_type, master_key, source_id,
     * source_start_ms, source_end_ms) and jobs[0].max_attempts (read before anything is
     * written: it shares the union with assets[0]); in one transaction: the new asset (state
     * "processing") and its job of kind "transcode", which it names (job_id), unless the source
     * is unknown, deleted or of another org (-ENOENT); out: assets[0] as STORE_ASSET_GET reads
     * it (source_public and source_master filled), with its job. */
    STORE_CLIP_CREATE,
    STORE_OP_COUNT
} rd_store_op;

struct rd_msg_store {
    uint16_t op;      /* rd_store_op */
    int32_t status;   /* answer: 0 or -errno */
    uint32_t n;       /* rows used in the array below (in and out) */
    uint32_t limit;   /* list, claim, take: most rows wanted (<= RD_STORE_BATCH) */
    int32_t state;    /* list filter */
    int64_t lease_ms; /* claim, heartbeat; job due: republish age */
    int64_t cursor;   /* list: rows after this id (0: from the start); answer: next cursor */
    int64_t asset_id; /* rendition list */
    char owner[RD_LEASE_OWNER_MAX];
    char kind[RD_JOB_KIND_MAX]; /* claim of the next due jobs: only this kind ("": any) */
    rd_queue_counts counts;
    union {
        rd_job jobs[RD_STORE_BATCH];
        rd_asset assets[RD_STORE_BATCH];
        rd_rendition renditions[RD_STORE_BATCH];
        rd_caption captions[RD_STORE_BATCH];
        rd_export exports[RD_STORE_BATCH];
        struct {
            rd_webhook webhook;
            rd_webhook_delivery deliveries[RD_STORE_BATCH];
        };
    };
};

/* ---- dispatcher and workers (pull: a worker asks, the dispatcher never hands out more) ---- */

/* worker -> dispatcher: "I can take `slots` more jobs of `kind`". */
struct rd_msg_job_pull {
    uint32_t slots;
    char kind[RD_JOB_KIND_MAX];
};

/* dispatcher -> worker: run this job (one per slot asked for). */
struct rd_msg_job_assign {
    rd_job job;
};

/* worker -> dispatcher: how far along (written at most once a second per job). */
struct rd_msg_job_progress {
    int64_t id;
    int32_t attempt;
    int32_t progress; /* per mille */
};

/* worker -> dispatcher: the attempt ended. status 0: succeeded; -ECANCELED: stopped because it
 * was told to; other -errno: failed, retried when `retryable` and attempts are left. */
struct rd_msg_job_done {
    int64_t id;
    int32_t attempt;
    int32_t status;
    int32_t retryable;
    int64_t retry_after_ms; /* > 0: the worker's own delay before the next attempt */
    char error[RD_JOB_ERROR_MAX];
};

/* dispatcher -> worker: stop this job within a second (cancelled, or its lease is lost), then
 * answer with MSG_JOB_DONE status -ECANCELED. Also API -> dispatcher as a request to cancel
 * (the answer is the same message with `status`: 0, -ENOENT or -EALREADY). */
struct rd_msg_job_cancel {
    int64_t id;
    int32_t status;
    int32_t prior_state;
};

/* Text form ("queued", ...); "" for JOB_STATE_NONE. */
const char *job_state_name(int state);
/* Parses a state name; JOB_STATE_NONE when unknown. */
int job_state_parse(const char *name, size_t len);

/* Adds `n` jobs in `state` to the counts' bucket for it (failed and cancelled count together,
 * as the API reports them). */
void queue_counts_add(rd_queue_counts *c, int state, int64_t n);

/* The API's JSON shapes, written into the caller's buffer (NUL-terminated). Return the length,
 * or -ENOSPC when `cap` is too small. */
int job_json(char *buf, size_t cap, const rd_job *j);
/* An asset as clients see it: {asset_id (the public id), org, state, progress, attempts,
 * error, filename, content_type, size, created_at, updated_at, job_id}; progress, attempts
 * and job_id once promoted, error when the job has one and did not succeed. Progress (here and
 * in job_json) is per cent with one decimal (42.5), from the per mille the store keeps. */
int asset_json(char *buf, size_t cap, const rd_asset *a);
/* {"waiting":…,"active":…,"completed":…,"failed":…,"dead":…[,"stream_length":…,
 * "stream_pending":…]} */
int queue_counts_json(char *buf, size_t cap, const rd_queue_counts *c);
/* A page of a listing answer: {"jobs":[…],"next_cursor":"…"|null} for list 'j' (b->jobs),
 * {"assets":[…],…} for 'a' (b->assets), with b->cursor as the next page's cursor. The
 * buffer needs 256 + 2048 bytes per row. Returns the length (0 when it did not fit). */
size_t page_json(char *buf, size_t cap, const struct rd_msg_store *b, char list);

/* Opaque page cursors of the list routes (`?cursor=`): the last id of a page, with a letter
 * naming the list it belongs to ('j' jobs, 'a' assets), in URL-safe base64 without padding.
 * Clients must not build them; a cursor for the wrong list is as bad as a malformed one.
 * job_cursor_encode writes at most RD_CURSOR_MAX bytes with the NUL and returns the length. */
#define RD_CURSOR_MAX 32
int job_cursor_encode(char *out, char list, int64_t last_id);
/* 0 and the id, or -EINVAL for anything malformed or of another list (the API says 400). An
 * empty cursor is the first page (id 0). */
int job_cursor_decode(const char *in, size_t len, char list, int64_t *last_id);

#endif
