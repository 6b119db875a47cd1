/* The store's contract, one suite run against every backend: sqlite always (a fresh file), and
 * postgres when REELD_TEST_POSTGRES_URL names an empty database (tests/integration/
 * test_store_postgres.py starts a server and runs this program with it set). One suite in C
 * rather than two: the cases are written once, against the message interface the dispatcher
 * uses, so the backends cannot drift apart. */
#include <errno.h>
#include <libpq-fe.h>
#include <semaphore.h>
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "src/rt/actor.h"
#include "src/rt/log.h"
#include "src/rt/loop.h"
#include "src/store/client.h"
#include "src/store/store.h"
#include "tests/unit/test.h"

static rd_store_client *client;
static const char *backend;
static const char *pg_url; /* the postgres run's database */
static rd_loop *store_loop;
static rd_actor *store_actor;

static rd_msg *call(rd_msg *req, int *status)
{
    rd_msg *ans = NULL;
    *status = store_client_call(client, req, 5000, &ans);
    return ans;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

/* Creates one job and returns it (by value); asset ids are unique per case. */
static rd_job create_job(int64_t asset, const char *kind, int priority, int max_attempts)
{
    rd_msg *m = store_request(STORE_JOB_CREATE);
    struct rd_msg_store *b = msg_body(m, store);
    b->n = 1;
    b->jobs[0].asset_id = asset;
    snprintf(b->jobs[0].kind, sizeof(b->jobs[0].kind), "%s", kind);
    b->jobs[0].priority = priority;
    b->jobs[0].max_attempts = max_attempts;
    int st;
    rd_msg *a = call(m, &st);
    rd_job j = {0};
    CHECK_EQ_INT(st, 0);
    if (a != NULL) {
        j = msg_body(a, store)->jobs[0];
        msg_free(a);
    }
    return j;
}

/* Claims up to `limit` due jobs (or `id` only when non-zero) for `owner`; returns how many. */
static int claim(const char *owner, int64_t lease_ms, uint32_t limit, int64_t id, rd_job *out)
{
    rd_msg *m = store_request(STORE_JOB_CLAIM);
    struct rd_msg_store *b = msg_body(m, store);
    snprintf(b->owner, sizeof(b->owner), "%s", owner);
    b->lease_ms = lease_ms;
    b->limit = limit;
    if (id != 0) {
        b->n = 1;
        b->jobs[0].id = id;
    }
    int st;
    rd_msg *a = call(m, &st);
    CHECK_EQ_INT(st, 0);
    int n = 0;
    if (a != NULL) {
        n = (int)msg_body(a, store)->n;
        if (out != NULL)
            memcpy(out, msg_body(a, store)->jobs, sizeof(rd_job) * (size_t)n);
        msg_free(a);
    }
    return n;
}

/* A fenced update (heartbeat, complete, fail) of one job; returns the state answered. */
static int fenced(rd_store_op op, const char *owner, const rd_job *j, int64_t retry_ms,
                  const char *error)
{
    rd_msg *m = store_request(op);
    struct rd_msg_store *b = msg_body(m, store);
    snprintf(b->owner, sizeof(b->owner), "%s", owner);
    b->lease_ms = 30000;
    b->n = 1;
    b->jobs[0].id = j->id;
    b->jobs[0].attempts = j->attempts;
    b->jobs[0].progress = 500;
    b->jobs[0].retry_ms = retry_ms;
    snprintf(b->jobs[0].error, sizeof(b->jobs[0].error), "%s", error ? error : "");
    int st;
    rd_msg *a = call(m, &st);
    CHECK_EQ_INT(st, 0);
    int state = -1;
    if (a != NULL) {
        state = msg_body(a, store)->jobs[0].state;
        msg_free(a);
    }
    return state;
}

static rd_job get_job(int64_t id, int *status)
{
    rd_msg *m = store_request(STORE_JOB_GET);
    msg_body(m, store)->jobs[0].id = id;
    rd_msg *a = call(m, status);
    rd_job j = {0};
    if (a != NULL) {
        j = msg_body(a, store)->jobs[0];
        msg_free(a);
    }
    return j;
}

static int cancel(int64_t id)
{
    rd_msg *m = store_request(STORE_JOB_CANCEL);
    msg_body(m, store)->jobs[0].id = id;
    int st;
    rd_msg *a = call(m, &st);
    msg_free(a);
    return st;
}

static rd_queue_counts counts(void)
{
    int st;
    rd_msg *a = call(store_request(STORE_JOB_COUNTS), &st);
    CHECK_EQ_INT(st, 0);
    rd_queue_counts c = {0};
    if (a != NULL) {
        c = msg_body(a, store)->counts;
        msg_free(a);
    }
    return c;
}

/* Finishes every due job so a case starts with nothing claimable. */
static void drain(void)
{
    rd_job js[RD_STORE_BATCH];
    int n;
    while ((n = claim("drain", 60000, RD_STORE_BATCH, 0, js)) > 0)
        for (int i = 0; i < n; i++)
            fenced(STORE_JOB_COMPLETE, "drain", &js[i], 0, NULL);
}

/* Creates an asset of `org` named `public_id`; returns the status, the row in *out. */
static int create_asset(const char *public_id, const char *org, int64_t size, rd_asset *out)
{
    rd_msg *m = store_request(STORE_ASSET_CREATE);
    rd_asset *a = &msg_body(m, store)->assets[0];
    snprintf(a->public_id, sizeof(a->public_id), "%s", public_id);
    snprintf(a->org, sizeof(a->org), "%s", org);
    snprintf(a->filename, sizeof(a->filename), "clip \"%s\".mp4", public_id);
    snprintf(a->content_type, sizeof(a->content_type), "video/mp4");
    snprintf(a->staging_key, sizeof(a->staging_key), "%s", public_id);
    snprintf(a->master_key, sizeof(a->master_key), "%s", public_id);
    a->size_bytes = size;
    int st;
    rd_msg *ans = call(m, &st);
    if (ans != NULL && out != NULL)
        *out = msg_body(ans, store)->assets[0];
    msg_free(ans);
    return st;
}

/* The asset `public_id` as `org` ("": any) sees it; the status. */
static int find_asset(const char *public_id, const char *org, rd_asset *out)
{
    rd_msg *m = store_request(STORE_ASSET_FIND);
    snprintf(msg_body(m, store)->assets[0].public_id, RD_ASSET_ID_MAX, "%s", public_id);
    snprintf(msg_body(m, store)->assets[0].org, 64, "%s", org);
    int st;
    rd_msg *ans = call(m, &st);
    if (out != NULL)
        memset(out, 0, sizeof(*out));
    if (ans != NULL && out != NULL && st == 0)
        *out = msg_body(ans, store)->assets[0];
    msg_free(ans);
    return st;
}

static int update_asset(const char *public_id, const char *org, const char *state, int64_t job)
{
    rd_msg *m = store_request(STORE_ASSET_UPDATE);
    rd_asset *a = &msg_body(m, store)->assets[0];
    snprintf(a->public_id, sizeof(a->public_id), "%s", public_id);
    snprintf(a->org, sizeof(a->org), "%s", org);
    snprintf(a->state, sizeof(a->state), "%s", state);
    a->job_id = job;
    int st;
    msg_free(call(m, &st));
    return st;
}

/* One page of `org`'s assets ("": every org) in `state` ("": any) after `cursor`: the count,
 * the rows in out[], the next cursor in *next. */
static int list_assets(const char *org, const char *state, int64_t cursor, uint32_t limit,
                       rd_asset *out, int64_t *next)
{
    rd_msg *m = store_request(STORE_ASSET_LIST);
    struct rd_msg_store *b = msg_body(m, store);
    b->cursor = cursor;
    b->limit = limit;
    snprintf(b->assets[0].org, sizeof(b->assets[0].org), "%s", org);
    snprintf(b->assets[0].state, sizeof(b->assets[0].state), "%s", state);
    int st;
    rd_msg *ans = call(m, &st);
    CHECK_EQ_INT(st, 0);
    int n = 0;
    *next = 0;
    if (ans != NULL) {
        n = (int)msg_body(ans, store)->n;
        memcpy(out, msg_body(ans, store)->assets, sizeof(rd_asset) * (size_t)n);
        *next = msg_body(ans, store)->cursor;
        msg_free(ans);
    }
    return n;
}

TEST(assets_create_get_and_page_newest_first)
{
    rd_asset first = {0}, got;
    for (int i = 0; i < 5; i++) {
        char id[32];
        snprintf(id, sizeof(id), "apage%d", i);
        CHECK_EQ_INT(create_asset(id, "pager", 1000 + i, &got), 0);
        CHECK(got.id > 0);
        CHECK_EQ_STR(got.public_id, id);
        CHECK_EQ_STR(got.state, "uploading");
        CHECK(got.created_ms > 1700000000000LL);
        if (i == 0)
            first = got;
    }
    /* By the store's key (workers), with the same row. */
    rd_msg *m = store_request(STORE_ASSET_GET);
    msg_body(m, store)->assets[0].id = first.id;
    int st;
    rd_msg *ans = call(m, &st);
    CHECK_EQ_INT(st, 0);
    if (ans != NULL) {
        CHECK_EQ_STR(msg_body(ans, store)->assets[0].filename, "clip \"apage0\".mp4");
        CHECK_EQ_STR(msg_body(ans, store)->assets[0].public_id, "apage0");
        CHECK_EQ_INT(msg_body(ans, store)->assets[0].size_bytes, 1000);
        msg_free(ans);
    }
    m = store_request(STORE_ASSET_GET);
    msg_body(m, store)->assets[0].id = 987654321;
    msg_free(call(m, &st));
    CHECK_EQ_INT(st, -ENOENT);

    /* Pages of 2 walk all five, newest first, then end with cursor 0. */
    int64_t cursor = 0, last = INT64_MAX;
    int seen = 0, pages = 0;
    rd_asset rows[RD_STORE_BATCH];
    do {
        int n = list_assets("pager", "", cursor, 2, rows, &cursor);
        for (int i = 0; i < n; i++) {
            CHECK(rows[i].id < last);
            CHECK_EQ_STR(rows[i].org, "pager");
            last = rows[i].id;
        }
        if (seen == 0 && n > 0)
            CHECK_EQ_STR(rows[0].public_id, "apage4");
        seen += n;
        pages++;
    } while (cursor != 0 && pages < 10);
    CHECK_EQ_INT(seen, 5);
    CHECK_EQ_INT(pages, 3);

    m = store_request(STORE_RENDITION_PUT);
    rd_rendition *r = &msg_body(m, store)->renditions[0];
    r->asset_id = first.id;
    snprintf(r->name, sizeof(r->name), "720p");
    r->width = 1280;
    r->height = 720;
    r->bitrate_kbps = 3000;
    snprintf(r->playlist_key, sizeof(r->playlist_key), "a/720p.m3u8");
    msg_free(call(m, &st));
    CHECK_EQ_INT(st, 0);
    m = store_request(STORE_RENDITION_LIST);
    msg_body(m, store)->asset_id = first.id;
    ans = call(m, &st);
    CHECK_EQ_INT(st, 0);
    if (ans != NULL) {
        CHECK_EQ_INT(msg_body(ans, store)->n, 1);
        CHECK_EQ_STR(msg_body(ans, store)->renditions[0].name, "720p");
        msg_free(ans);
    }
}

TEST(asset_find_is_by_public_id_and_org)
{
    rd_asset a, b;
    CHECK_EQ_INT(create_asset("afind1", "acme", 5, &a), 0);
    CHECK_EQ_INT(create_asset("afind2", "beta", 6, &b), 0);
    CHECK_EQ_INT(create_asset("afind1", "beta", 7, NULL), -EINVAL); /* public ids are unique */
    CHECK_EQ_INT(create_asset("", "acme", 7, NULL), -EINVAL);
    rd_asset got;
    CHECK_EQ_INT(find_asset("afind1", "acme", &got), 0);
    CHECK_EQ_INT(got.id, a.id);
    CHECK_EQ_INT(got.size_bytes, 5);
    CHECK_EQ_STR(got.state, "uploading");
    CHECK_EQ_INT(got.job_id, 0);
    CHECK_EQ_INT(got.job_state, JOB_STATE_NONE);
    CHECK_EQ_INT(find_asset("afind1", "beta", NULL), -ENOENT); /* another org's: none */
    CHECK_EQ_INT(find_asset("afind2", "acme", NULL), -ENOENT);
    CHECK_EQ_INT(find_asset("afind-missing", "acme", NULL), -ENOENT);
    CHECK_EQ_INT(find_asset("afind2", "", &got), 0); /* operators: any org */
    CHECK_EQ_STR(got.org, "beta");
}

/* Many asset reads sent at once, as the API's fronts send status polls: the postgres store
 * answers those that queue together in one statement (find_batch), each with its own row, its
 * own org's view and its own -ENOENT. Half are sized for one row (store_request_find). */
#define BURST 48
typedef struct burst {
    sem_t done;
    int left;
    int status[BURST];
    char got[BURST][RD_ASSET_ID_MAX];
    char org[BURST][64];
} burst;

static int burst_answer(rd_actor *self, rd_msg *reply, int err, void *ctx)
{
    burst *b = self->state;
    int i = (int)(intptr_t)ctx;
    b->status[i] = err < 0 ? err : msg_body(reply, store)->status;
    if (b->status[i] == 0) {
        snprintf(b->got[i], sizeof(b->got[i]), "%s", msg_body(reply, store)->assets[0].public_id);
        snprintf(b->org[i], sizeof(b->org[i]), "%s", msg_body(reply, store)->assets[0].org);
    }
    msg_free(reply);
    if (--b->left == 0)
        sem_post(&b->done);
    return 0;
}

static const char *burst_id(int i)
{
    static const char *const ids[] = {"aburst0", "aburst1", "aburst2", "aburst-other",
                                      "aburst-none"};
    return ids[i % 5];
}

static const char *burst_org(int i)
{
    return i % 7 == 0 ? "" : "acme"; /* every seventh: the operators' view */
}

static int burst_handle(rd_actor *self, rd_msg *m)
{
    burst *b = self->state;
    msg_free(m);
    b->left = BURST;
    for (int i = 0; i < BURST; i++) {
        rd_msg *q = i % 2 ? store_request_find() : store_request(STORE_ASSET_FIND);
        rd_asset *a = &msg_body(q, store)->assets[0];
        snprintf(a->public_id, sizeof(a->public_id), "%s", burst_id(i));
        snprintf(a->org, sizeof(a->org), "%s", burst_org(i));
        if (actor_request(self, store_actor, q, 5000, burst_answer, (void *)(intptr_t)i) < 0) {
            msg_free(q);
            b->status[i] = -EAGAIN;
            if (--b->left == 0)
                sem_post(&b->done);
        }
    }
    return RD_KEPT;
}

TEST(asset_finds_sent_together_get_their_own_answers)
{
    for (int i = 0; i < 3; i++) {
        CHECK_EQ_INT(create_asset(burst_id(i), "acme", i, NULL), 0);
    }
    CHECK_EQ_INT(create_asset("aburst-other", "beta", 1, NULL), 0);
    static const rd_actor_def def = {.name = "burst", .handle = burst_handle};
    burst *b = calloc(1, sizeof(*b));
    sem_init(&b->done, 0, 0);
    rd_actor *a;
    CHECK_EQ_INT(actor_spawn(store_loop, &def, b, &a), 0);
    CHECK_EQ_INT(actor_send(a, msg_new(MSG_STORE)), 0);
    while (sem_wait(&b->done) < 0)
        ;
    for (int i = 0; i < BURST; i++) {
        const char *id = burst_id(i);
        int other = strcmp(id, "aburst-other") == 0, none = strcmp(id, "aburst-none") == 0;
        int want = none || (other && burst_org(i)[0] != '\0') ? -ENOENT : 0;
        CHECK_EQ_INT(b->status[i], want);
        if (want == 0) {
            CHECK_EQ_STR(b->got[i], id);
            CHECK_EQ_STR(b->org[i], other ? "beta" : "acme");
        }
    }
    actor_stop(a);
    sleep_ms(20); /* the stop is handled on the loop before the state goes */
    sem_destroy(&b->done);
    free(b);
}

TEST(asset_state_follows_upload_promotion_and_the_job)
{
    rd_asset a;
    CHECK_EQ_INT(create_asset("amove1", "acme", 5, &a), 0);
    CHECK_EQ_INT(update_asset("amove1", "acme", "ready", 0), -EINVAL); /* not the store's to set */
    CHECK_EQ_INT(update_asset("amove1", "acme", "processing", 0), -EINVAL); /* needs a job */
    CHECK_EQ_INT(update_asset("amove1", "beta", "uploaded", 0), -ENOENT);
    CHECK_EQ_INT(update_asset("amove1", "acme", "uploaded", 0), 0);
    rd_asset got;
    CHECK_EQ_INT(find_asset("amove1", "acme", &got), 0);
    CHECK_EQ_STR(got.state, "uploaded");

    drain();
    rd_job j = create_job(a.id, "transcode", 0, 3), run;
    CHECK_EQ_INT(update_asset("amove1", "acme", "processing", j.id), 0);
    CHECK_EQ_INT(update_asset("amove1", "acme", "processing", j.id), 0);  /* again: the same */
    CHECK_EQ_INT(update_asset("amove1", "acme", "uploaded", 0), -ENOENT); /* no way back */
    CHECK_EQ_INT(find_asset("amove1", "acme", &got), 0);
    CHECK_EQ_STR(got.state, "processing");
    CHECK_EQ_INT(got.job_id, j.id);
    CHECK_EQ_INT(got.job_state, JOB_QUEUED);

    CHECK_EQ_INT(claim("w-asset", 30000, 1, j.id, &run), 1);
    CHECK_EQ_INT(fenced(STORE_JOB_HEARTBEAT, "w-asset", &run, 0, NULL), JOB_RUNNING);
    CHECK_EQ_INT(find_asset("amove1", "acme", &got), 0);
    CHECK_EQ_STR(got.state, "processing");
    CHECK_EQ_INT(got.job_progress, 500);
    CHECK_EQ_INT(got.job_attempts, 1);
    CHECK_EQ_INT(fenced(STORE_JOB_COMPLETE, "w-asset", &run, 0, NULL), JOB_SUCCEEDED);
    CHECK_EQ_INT(find_asset("amove1", "acme", &got), 0);
    CHECK_EQ_STR(got.state, "ready");
    CHECK_EQ_INT(got.job_state, JOB_SUCCEEDED);

    rd_asset b;
    CHECK_EQ_INT(create_asset("amove2", "acme", 5, &b), 0);
    rd_job k = create_job(b.id, "transcode", 0, 3);
    CHECK_EQ_INT(update_asset("amove2", "acme", "processing", k.id), 0);
    CHECK_EQ_INT(claim("w-asset", 30000, 1, k.id, &run), 1);
    CHECK_EQ_INT(fenced(STORE_JOB_FAIL, "w-asset", &run, -1, "not a video"), JOB_FAILED);
    CHECK_EQ_INT(find_asset("amove2", "acme", &got), 0);
    CHECK_EQ_STR(got.state, "failed");
    CHECK_EQ_STR(got.job_error, "not a video");

    /* The listing filters on the state as read back, per org. */
    rd_asset rows[RD_STORE_BATCH];
    int64_t next;
    int n = list_assets("acme", "ready", 0, 32, rows, &next);
    CHECK_EQ_INT(n, 1);
    if (n == 1)
        CHECK_EQ_STR(rows[0].public_id, "amove1");
    CHECK_EQ_INT(list_assets("acme", "failed", 0, 32, rows, &next), 1);
    CHECK_EQ_INT(list_assets("beta", "ready", 0, 32, rows, &next), 0);
    CHECK(list_assets("", "", 0, 32, rows, &next) >= 5);
}

/* A database as reeld left it before assets were upload sessions (schema 1): an asset never
 * promoted, and one whose transcode job succeeded. Filled before the upgrade. */
static const char legacy_sql[] =
    "INSERT INTO assets (org, filename, content_type, size_bytes, state, staging_key,"
    " master_key, created_ms, updated_ms) VALUES"
    " ('legacy', 'old1.mp4', 'video/mp4', 41, 'uploading', 'aold1', 'aold1', 1, 1),"
    " ('legacy', 'old2.mp4', 'video/mp4', 42, 'uploading', 'aold2', 'aold2', 1, 1);"
    "INSERT INTO jobs (asset_id, kind, state, run_after_ms, created_ms, updated_ms)"
    " SELECT id, 'transcode', 'succeeded', 1, 1, 1 FROM assets WHERE staging_key = 'aold2';";

static int legacy_seeded;

/* A database as schema 6 left it: an asset with a caption track and a transcode job that
 * succeeded. Filled before the upgrade to exports (schema 7). */
static const char schema6_sql[] =
    "INSERT INTO assets (public_id, org, filename, content_type, size_bytes, state, staging_key,"
    " master_key, created_ms, updated_ms, captions_version) VALUES"
    " ('acap6', 'six', 'six.mp4', 'video/mp4', 66, 'processing', 'acap6', 'masters/acap6', 1, 1,"
    " 1);"
    "INSERT INTO jobs (asset_id, kind, state, run_after_ms, created_ms, updated_ms)"
    " SELECT id, 'transcode', 'succeeded', 1, 1, 1 FROM assets WHERE public_id = 'acap6';"
    "UPDATE assets SET job_id = (SELECT j.id FROM jobs j WHERE j.asset_id = assets.id"
    " AND j.kind = 'transcode') WHERE public_id = 'acap6';"
    "INSERT INTO captions (asset_id, lang, name, is_default, created_ms, updated_ms)"
    " SELECT id, 'en', 'English', 1 = 1, 1, 1 FROM assets WHERE public_id = 'acap6';";

static int schema6_seeded;

/* A database as schema 7 left it: an asset, its org's endpoint (taking the four asset events,
 * which "all" was then) and the asset's asset.uploaded event, before export events (schema 8
 * rebuilt the events' uniqueness). */
static const char schema7_sql[] =
    "INSERT INTO assets (public_id, org, filename, content_type, size_bytes, state, staging_key,"
    " master_key, created_ms, updated_ms) VALUES"
    " ('aev7', 'seven', 'seven.mp4', 'video/mp4', 77, 'uploaded', 'aev7', 'aev7', 1, 1);"
    "INSERT INTO webhooks (org, url, events, secret, created_ms, updated_ms) VALUES ('seven',"
    " 'https://seven.example/h', 'asset.uploaded,asset.ready,asset.failed,asset.deleted',"
    " 'whsec_7', 1, 1);"
    "INSERT INTO webhook_events (id, event_id, org, asset_id, type, error, created_ms)"
    " SELECT 900007, 'evt_seven', 'seven', id, 'asset.uploaded', '', 1 FROM assets"
    " WHERE public_id = 'aev7';";

static int schema7_seeded;

/* A database as schema 8 left it: a transcoded asset, before clips (schema 9) gave assets a
 * source. */
static const char schema8_sql[] =
    "INSERT INTO assets (public_id, org, filename, content_type, size_bytes, state, staging_key,"
    " master_key, created_ms, updated_ms) VALUES"
    " ('aold8', 'eight', 'eight.mp4', 'video/mp4', 88, 'processing', 'aold8', 'masters/aold8',"
    " 1, 1);"
    "INSERT INTO jobs (asset_id, kind, state, run_after_ms, created_ms, updated_ms)"
    " SELECT id, 'transcode', 'succeeded', 1, 1, 1 FROM assets WHERE public_id = 'aold8';"
    "UPDATE assets SET job_id = (SELECT j.id FROM jobs j WHERE j.asset_id = assets.id"
    " AND j.kind = 'transcode') WHERE public_id = 'aold8';";

static int schema8_seeded;

static int64_t org_active(const char *org)
{
    rd_msg *m = store_request(STORE_ORG_ACTIVE_JOBS);
    snprintf(msg_body(m, store)->assets[0].org, sizeof(msg_body(m, store)->assets[0].org), "%s",
             org);
    int st;
    rd_msg *a = call(m, &st);
    CHECK_EQ_INT(st, 0);
    int64_t n = a ? msg_body(a, store)->counts.active : -1;
    msg_free(a);
    return n;
}

TEST(active_jobs_are_counted_per_org)
{
    drain();
    rd_asset a1, a2, b1;
    CHECK_EQ_INT(create_asset("actv-a1", "actv-acme", 5, &a1), 0);
    CHECK_EQ_INT(create_asset("actv-a2", "actv-acme", 5, &a2), 0);
    CHECK_EQ_INT(create_asset("actv-b1", "actv-beta", 5, &b1), 0);
    CHECK_EQ_INT(org_active("actv-acme"), 0);
    rd_job j1 = create_job(a1.id, "transcode", 0, 3);
    create_job(a2.id, "transcode", 0, 3);
    create_job(b1.id, "transcode", 0, 3);
    CHECK_EQ_INT(org_active("actv-acme"), 2);
    CHECK_EQ_INT(org_active("actv-beta"), 1);
    rd_job run;
    CHECK_EQ_INT(claim("w", 60000, 1, j1.id, &run), 1); /* running still counts */
    CHECK_EQ_INT(org_active("actv-acme"), 2);
    CHECK_EQ_INT(fenced(STORE_JOB_COMPLETE, "w", &run, 0, NULL), JOB_SUCCEEDED);
    CHECK_EQ_INT(org_active("actv-acme"), 1); /* finished: no longer */
    CHECK_EQ_INT(org_active("nobody"), 0);
    drain();
}

static int expire(int64_t before_ms, rd_asset *out, int cap)
{
    rd_msg *m = store_request(STORE_ASSET_EXPIRE);
    msg_body(m, store)->cursor = before_ms;
    msg_body(m, store)->limit = RD_STORE_BATCH;
    int st;
    rd_msg *a = call(m, &st);
    CHECK_EQ_INT(st, 0);
    int n = a ? (int)msg_body(a, store)->n : 0;
    for (int i = 0; i < n && i < cap; i++)
        out[i] = msg_body(a, store)->assets[i];
    msg_free(a);
    return n;
}

TEST(unpromoted_uploads_expire_once)
{
    drain();
    rd_asset up, done, promoted, got[RD_STORE_BATCH];
    CHECK_EQ_INT(create_asset("exp-up", "exp", 5, &up), 0);
    CHECK_EQ_INT(create_asset("exp-done", "exp", 5, &done), 0);
    CHECK_EQ_INT(update_asset("exp-done", "exp", "uploaded", 0), 0);
    CHECK_EQ_INT(create_asset("exp-job", "exp", 5, &promoted), 0);
    rd_job j = create_job(promoted.id, "transcode", 0, 3);
    CHECK_EQ_INT(update_asset("exp-job", "exp", "processing", j.id), 0);
    CHECK_EQ_INT(expire(1, got, RD_STORE_BATCH), 0); /* nothing that old */
    int64_t later = up.created_ms + 3600 * 1000;
    int n = expire(later, got, RD_STORE_BATCH);
    int seen = 0;
    for (int i = 0; i < n; i++) {
        seen +=
            strcmp(got[i].public_id, "exp-up") == 0 || strcmp(got[i].public_id, "exp-done") == 0;
        CHECK(strcmp(got[i].public_id, "exp-job") != 0);
    }
    CHECK_EQ_INT(seen, 2);
    rd_asset x;
    CHECK_EQ_INT(find_asset("exp-up", "exp", &x), 0);
    CHECK_EQ_STR(x.state, "expired");
    CHECK_EQ_INT(find_asset("exp-job", "exp", &x), 0);
    CHECK(strcmp(x.state, "expired") != 0);
    CHECK_EQ_INT(expire(later, got, RD_STORE_BATCH), 0);                   /* once */
    CHECK_EQ_INT(update_asset("exp-done", "exp", "uploaded", 0), -ENOENT); /* for good */
    drain();
}

/* STORE_ASSET_DELETE of `public_id` as `org`: the status, the row, whether this call deleted it. */
static int delete_asset(const char *public_id, const char *org, rd_asset *out, int *newly)
{
    rd_msg *m = store_request(STORE_ASSET_DELETE);
    rd_asset *a = &msg_body(m, store)->assets[0];
    snprintf(a->public_id, sizeof(a->public_id), "%s", public_id);
    snprintf(a->org, sizeof(a->org), "%s", org);
    int st;
    rd_msg *ans = call(m, &st);
    if (ans != NULL && st == 0) {
        if (out != NULL)
            *out = msg_body(ans, store)->assets[0];
        if (newly != NULL)
            *newly = msg_body(ans, store)->state == 1;
    }
    msg_free(ans);
    return st;
}

/* A page of assets of one of the deletion ops (_PURGE_DUE, _DELETED); the count. */
static int deletions(rd_store_op op, int64_t cursor, int64_t after_id, int64_t lease_ms,
                     rd_asset *out)
{
    rd_msg *m = store_request(op);
    struct rd_msg_store *b = msg_body(m, store);
    b->cursor = cursor;
    b->asset_id = after_id;
    b->lease_ms = lease_ms;
    b->limit = RD_STORE_BATCH;
    int st;
    rd_msg *ans = call(m, &st);
    CHECK_EQ_INT(st, 0);
    int n = 0;
    if (ans != NULL && st == 0) {
        n = (int)msg_body(ans, store)->n;
        memcpy(out, msg_body(ans, store)->assets, sizeof(rd_asset) * (size_t)n);
    }
    msg_free(ans);
    return n;
}

static int has(const rd_asset *a, int n, const char *public_id)
{
    for (int i = 0; i < n; i++)
        if (strcmp(a[i].public_id, public_id) == 0)
            return 1;
    return 0;
}

TEST(deleted_assets_vanish_cancel_their_job_and_reach_the_edges)
{
    drain();
    rd_asset a, b, x, got[RD_STORE_BATCH];
    int newly = -1;
    CHECK_EQ_INT(create_asset("del-1", "delorg", 5, &a), 0);
    rd_job j = create_job(a.id, "transcode", 0, 3);
    CHECK_EQ_INT(update_asset("del-1", "delorg", "processing", j.id), 0);
    CHECK_EQ_INT(create_asset("del-2", "delorg", 5, &b), 0);
    CHECK_EQ_INT(delete_asset("del-1", "otherorg", NULL, NULL), -ENOENT); /* not theirs */
    CHECK_EQ_INT(delete_asset("del-none", "delorg", NULL, NULL), -ENOENT);
    CHECK_EQ_INT(delete_asset("del-1", "delorg", &x, &newly), 0);
    CHECK_EQ_INT(newly, 1);
    CHECK(x.deleted_ms > 0);
    CHECK_EQ_INT(x.job_state, JOB_QUEUED);                        /* what the job was */
    CHECK_EQ_INT(delete_asset("del-1", "delorg", &x, &newly), 0); /* again: the same, once */
    CHECK_EQ_INT(newly, 0);
    /* Gone for every reader; its job cancelled; the other asset untouched. */
    CHECK_EQ_INT(find_asset("del-1", "delorg", &x), -ENOENT);
    CHECK_EQ_INT(update_asset("del-1", "delorg", "uploaded", 0), -ENOENT);
    int st;
    CHECK_EQ_INT(get_job(j.id, &st).state, JOB_CANCELLED);
    CHECK_EQ_INT(find_asset("del-2", "delorg", &x), 0);
    int64_t next;
    int n = list_assets("delorg", "", 0, 10, got, &next);
    CHECK(!has(got, n, "del-1") && has(got, n, "del-2"));
    /* Its objects: handed out to one node at a time, then done. */
    n = deletions(STORE_ASSET_PURGE_DUE, 0, 0, 60000, got);
    CHECK(has(got, n, "del-1") && !has(got, n, "del-2"));
    n = deletions(STORE_ASSET_PURGE_DUE, 0, 0, 60000, got);
    CHECK(!has(got, n, "del-1")); /* leased to the first asker */
    rd_msg *m = store_request(STORE_ASSET_PURGED);
    msg_body(m, store)->assets[0].id = a.id;
    msg_body(m, store)->lease_ms = 0;
    msg_free(call(m, &st));
    CHECK_EQ_INT(st, 0);
    /* The edges: deletions of the last while, then only those after a point. */
    n = deletions(STORE_ASSET_DELETED, 0, 0, 60000, got);
    CHECK(has(got, n, "del-1") && !has(got, n, "del-2"));
    rd_asset last = got[n - 1];
    CHECK_EQ_INT(deletions(STORE_ASSET_DELETED, last.deleted_ms, last.id, 0, got), 0);
    CHECK_EQ_INT(delete_asset("del-2", "delorg", NULL, &newly), 0);
    n = deletions(STORE_ASSET_DELETED, last.deleted_ms, last.id, 0, got);
    CHECK(n == 1 && has(got, n, "del-2"));
}

/* STORE_CAPTION_PUT of `asset`'s track `lang`: the status, the track as stored, whether this
 * call created it, the captions version after. */
static int caption_put(int64_t asset, const char *lang, const char *name, int is_default,
                       rd_caption *out, int *created, int64_t *version)
{
    rd_msg *m = store_request(STORE_CAPTION_PUT);
    struct rd_msg_store *b = msg_body(m, store);
    b->asset_id = asset;
    snprintf(b->captions[0].lang, sizeof(b->captions[0].lang), "%s", lang);
    snprintf(b->captions[0].name, sizeof(b->captions[0].name), "%s", name);
    b->captions[0].is_default = is_default;
    int st;
    rd_msg *ans = call(m, &st);
    if (ans != NULL && st == 0) {
        b = msg_body(ans, store);
        CHECK_EQ_INT(b->n, 1);
        *out = b->captions[0];
        *created = b->state;
        *version = b->cursor;
    }
    msg_free(ans);
    return st;
}

/* STORE_CAPTION_LIST of `asset`: the status, the tracks in out[0..*n), the version. */
static int caption_list(int64_t asset, rd_caption *out, int *n, int64_t *version)
{
    rd_msg *m = store_request(STORE_CAPTION_LIST);
    msg_body(m, store)->asset_id = asset;
    int st;
    rd_msg *ans = call(m, &st);
    *n = -1;
    if (ans != NULL && st == 0) {
        struct rd_msg_store *b = msg_body(ans, store);
        *n = (int)b->n;
        memcpy(out, b->captions, sizeof(rd_caption) * b->n);
        *version = b->cursor;
    }
    msg_free(ans);
    return st;
}

/* STORE_CAPTION_DELETE of `asset`'s track `lang`: the status, the version after. */
static int caption_delete(int64_t asset, const char *lang, int64_t *version)
{
    rd_msg *m = store_request(STORE_CAPTION_DELETE);
    msg_body(m, store)->asset_id = asset;
    snprintf(msg_body(m, store)->captions[0].lang, RD_CAPTION_LANG_MAX, "%s", lang);
    int st;
    rd_msg *ans = call(m, &st);
    if (ans != NULL && st == 0)
        *version = msg_body(ans, store)->cursor;
    msg_free(ans);
    return st;
}

TEST(caption_tracks_by_lang_with_a_version)
{
    rd_asset a, gone;
    rd_caption c, first, got[RD_STORE_BATCH];
    int created = -1, n = -1;
    int64_t v = -1;
    CHECK_EQ_INT(create_asset("cap-1", "caporg", 5, &a), 0);
    CHECK_EQ_INT(caption_list(a.id, got, &n, &v), 0);
    CHECK(n == 0 && v == 0); /* no tracks yet, version 0 */
    CHECK_EQ_INT(caption_put(a.id, "fr",
                             "Fran\xc3\xa7"
                             "ais",
                             1, &first, &created, &v),
                 0);
    CHECK(created == 1 && v == 1);
    CHECK_EQ_STR(first.lang, "fr");
    CHECK_EQ_STR(first.name, "Fran\xc3\xa7"
                             "ais");
    CHECK_EQ_INT(first.is_default, 1);
    CHECK(first.created_ms > 0 && first.updated_ms == first.created_ms);
    sleep_ms(5);
    /* Replaced: the same track, its creation kept. */
    CHECK_EQ_INT(caption_put(a.id, "fr", "French", 1, &c, &created, &v), 0);
    CHECK(created == 0 && v == 2);
    CHECK_EQ_STR(c.name, "French");
    CHECK_EQ_INT(c.created_ms, first.created_ms);
    CHECK(c.updated_ms > first.updated_ms);
    /* The default moves to the last track put as default. */
    CHECK_EQ_INT(caption_put(a.id, "en", "English", 1, &c, &created, &v), 0);
    CHECK(created == 1 && v == 3);
    CHECK_EQ_INT(caption_put(a.id, "de", "Deutsch", 0, &c, &created, &v), 0);
    CHECK(created == 1 && v == 4 && c.is_default == 0);
    CHECK_EQ_INT(caption_list(a.id, got, &n, &v), 0);
    CHECK_EQ_INT(n, 3);
    CHECK_EQ_INT(v, 4);
    if (n == 3) {
        CHECK_EQ_STR(got[0].lang, "de");
        CHECK_EQ_STR(got[1].lang, "en");
        CHECK_EQ_STR(got[2].lang, "fr");
        CHECK_EQ_STR(got[1].name, "English");
        CHECK_EQ_STR(got[2].name, "French");
        CHECK(got[0].is_default == 0 && got[1].is_default == 1 && got[2].is_default == 0);
        CHECK_EQ_INT(got[2].created_ms, first.created_ms);
        CHECK(got[0].created_ms > 0 && got[0].updated_ms == got[0].created_ms);
    }
    /* Up to RD_CAPTIONS_MAX tracks: a new one more is refused, a replacement still goes. */
    char lang[RD_CAPTION_LANG_MAX];
    for (int i = 3; i < RD_CAPTIONS_MAX; i++) {
        snprintf(lang, sizeof(lang), "x-%02d", i);
        CHECK_EQ_INT(caption_put(a.id, lang, lang, 0, &c, &created, &v), 0);
    }
    CHECK_EQ_INT(v, RD_CAPTIONS_MAX + 1);
    CHECK_EQ_INT(caption_put(a.id, "zu", "isiZulu", 0, &c, &created, &v), -ENOSPC);
    CHECK_EQ_INT(caption_list(a.id, got, &n, &v), 0);
    CHECK(n == RD_CAPTIONS_MAX && v == RD_CAPTIONS_MAX + 1); /* nothing changed */
    CHECK_EQ_INT(caption_put(a.id, "fr", "French", 0, &c, &created, &v), 0);
    CHECK(created == 0 && v == RD_CAPTIONS_MAX + 2 && c.is_default == 0);
    /* Delete: the version moves on; a second time there is nothing to delete. */
    CHECK_EQ_INT(caption_delete(a.id, "x-03", &v), 0);
    CHECK_EQ_INT(v, RD_CAPTIONS_MAX + 3);
    CHECK_EQ_INT(caption_delete(a.id, "x-03", &v), -ENOENT);
    CHECK_EQ_INT(caption_list(a.id, got, &n, &v), 0);
    CHECK(n == RD_CAPTIONS_MAX - 1 && v == RD_CAPTIONS_MAX + 3);
    CHECK_EQ_INT(caption_put(a.id, "zu", "isiZulu", 0, &c, &created, &v), 0); /* room again */
    CHECK(created == 1 && v == RD_CAPTIONS_MAX + 4);
    /* Unknown and deleted assets have no tracks to list or put. */
    CHECK_EQ_INT(caption_list(a.id + 1000000, got, &n, &v), -ENOENT);
    CHECK_EQ_INT(caption_put(a.id + 1000000, "en", "English", 0, &c, &created, &v), -ENOENT);
    CHECK_EQ_INT(create_asset("cap-gone", "caporg", 5, &gone), 0);
    CHECK_EQ_INT(delete_asset("cap-gone", "caporg", NULL, NULL), 0);
    CHECK_EQ_INT(caption_put(gone.id, "en", "English", 0, &c, &created, &v), -ENOENT);
    CHECK_EQ_INT(caption_list(gone.id, got, &n, &v), -ENOENT);
}

/* STORE_EXPORT_CREATE of asset `asset`'s range as `org`, new exports named `public_id` (an MP4
 * of height `height` with captions `lang`), its job with `max_attempts`: the status, the export
 * as answered. */
static int export_create(int64_t asset, const char *org, const char *public_id, int64_t start_ms,
                         int64_t end_ms, int height, const char *lang, int max_attempts,
                         rd_export *out)
{
    rd_msg *m = store_request(STORE_EXPORT_CREATE);
    struct rd_msg_store *b = msg_body(m, store);
    rd_export *e = &b->exports[0];
    e->asset_id = asset;
    snprintf(e->org, sizeof(e->org), "%s", org);
    snprintf(e->public_id, sizeof(e->public_id), "%s", public_id);
    e->start_ms = start_ms;
    e->end_ms = end_ms;
    e->height = height;
    snprintf(e->lang, sizeof(e->lang), "%s", lang);
    snprintf(e->format, sizeof(e->format), "mp4");
    /* Last: jobs[0] shares the union with exports[0] (max_attempts lies over updated_ms). */
    b->jobs[0].max_attempts = max_attempts;
    int st;
    rd_msg *ans = call(m, &st);
    if (out != NULL)
        memset(out, 0, sizeof(*out));
    if (ans != NULL && st == 0 && out != NULL) {
        CHECK_EQ_INT(msg_body(ans, store)->n, 1);
        *out = msg_body(ans, store)->exports[0];
    }
    msg_free(ans);
    return st;
}

/* STORE_EXPORT_GET by `public_id` within `org`, or by `id` when public_id is "": the status. */
static int export_get(const char *public_id, const char *org, int64_t id, rd_export *out)
{
    rd_msg *m = store_request(STORE_EXPORT_GET);
    rd_export *e = &msg_body(m, store)->exports[0];
    snprintf(e->public_id, sizeof(e->public_id), "%s", public_id);
    snprintf(e->org, sizeof(e->org), "%s", org);
    e->id = id;
    int st;
    rd_msg *ans = call(m, &st);
    if (out != NULL)
        memset(out, 0, sizeof(*out));
    if (ans != NULL && st == 0 && out != NULL)
        *out = msg_body(ans, store)->exports[0];
    msg_free(ans);
    return st;
}

static int claim_hooks(const char *kind, uint32_t limit, rd_job *out);
static int webhook_op(rd_store_op op, const char *org, const char *url, const char *secret,
                      rd_webhook *out);

TEST(exports_are_created_once_per_request_with_their_job)
{
    drain();
    /* The org's endpoint takes the asset events only: exports write none. */
    CHECK_EQ_INT(webhook_op(STORE_WEBHOOK_PUT, "exporg", "https://x.example/h", "whsec_x", NULL),
                 0);
    rd_asset a;
    CHECK_EQ_INT(create_asset("exp-src", "exporg", 5, &a), 0);
    CHECK_EQ_INT(org_active("exporg"), 0);
    rd_export e, again, other, got;
    CHECK_EQ_INT(export_create(a.id, "exporg", "e-one", 1000, 5000, 720, "", 4, &e), 0);
    CHECK_EQ_INT(e.created, 1);
    CHECK(e.id > 0 && e.job_id > 0);
    CHECK_EQ_INT(e.asset_id, a.id);
    CHECK_EQ_STR(e.public_id, "e-one");
    CHECK_EQ_STR(e.org, "exporg");
    CHECK_EQ_STR(e.format, "mp4");
    CHECK_EQ_STR(e.lang, "");
    CHECK(e.start_ms == 1000 && e.end_ms == 5000 && e.height == 720);
    CHECK_EQ_STR(e.asset_public, "exp-src");
    CHECK_EQ_STR(e.master_key, "exp-src");
    CHECK_EQ_INT(e.job_state, JOB_QUEUED);
    CHECK(e.job_progress == 0 && e.job_attempts == 0);
    CHECK(e.created_ms > 1700000000000LL && e.updated_ms == e.created_ms);
    /* Its job points at the export's row, not at the asset. */
    int st;
    rd_job j = get_job(e.job_id, &st);
    CHECK_EQ_INT(st, 0);
    CHECK_EQ_STR(j.kind, "export");
    CHECK_EQ_INT(j.asset_id, e.id);
    CHECK_EQ_INT(j.state, JOB_QUEUED);
    CHECK_EQ_INT(j.max_attempts, 4);
    CHECK_EQ_INT(j.priority, 0);
    CHECK_EQ_INT(org_active("exporg"), 1); /* counted for the export's org */

    /* The identical request again: the same export and job, whatever public id it brought. */
    CHECK_EQ_INT(export_create(a.id, "exporg", "e-two", 1000, 5000, 720, "", 4, &again), 0);
    CHECK_EQ_INT(again.created, 0);
    CHECK_EQ_INT(again.id, e.id);
    CHECK_EQ_STR(again.public_id, "e-one");
    CHECK_EQ_INT(again.job_id, e.job_id);
    CHECK_EQ_INT(again.created_ms, e.created_ms);
    CHECK_EQ_INT(export_get("e-two", "", 0, NULL), -ENOENT); /* never stored */
    /* Another range: another export and job (max_attempts 0: the default). */
    CHECK_EQ_INT(export_create(a.id, "exporg", "e-three", 1000, 6000, 720, "", 0, &other), 0);
    CHECK_EQ_INT(other.created, 1);
    CHECK(other.id != e.id && other.job_id != e.job_id);
    CHECK_EQ_INT(get_job(other.job_id, &st).max_attempts, 5);
    CHECK_EQ_INT(org_active("exporg"), 2);
    CHECK_EQ_INT(org_active("nobody"), 0);

    /* Get: by public id within the org (or any), never another org's; by the store's key. */
    CHECK_EQ_INT(export_get("e-one", "exporg", 0, &got), 0);
    CHECK_EQ_INT(got.id, e.id);
    CHECK_EQ_INT(got.job_id, e.job_id);
    CHECK_EQ_STR(got.asset_public, "exp-src");
    CHECK_EQ_STR(got.master_key, "exp-src");
    CHECK_EQ_INT(got.job_state, JOB_QUEUED);
    CHECK_EQ_INT(export_get("e-one", "", 0, &got), 0);
    CHECK_EQ_INT(got.id, e.id);
    CHECK_EQ_INT(export_get("e-one", "otherorg", 0, NULL), -ENOENT);
    CHECK_EQ_INT(export_get("e-none", "exporg", 0, NULL), -ENOENT);
    CHECK_EQ_INT(export_get("", "", other.id, &got), 0);
    CHECK_EQ_STR(got.public_id, "e-three");
    CHECK(got.end_ms == 6000 && got.job_id == other.job_id);
    CHECK_EQ_INT(export_get("", "", other.id + 1000000, NULL), -ENOENT);

    /* The job's progress and outcome read back with the export; no webhook event. */
    rd_job run;
    CHECK_EQ_INT(claim("w-exp", 30000, 1, e.job_id, &run), 1);
    CHECK_EQ_INT(fenced(STORE_JOB_HEARTBEAT, "w-exp", &run, 0, NULL), JOB_RUNNING);
    CHECK_EQ_INT(export_get("e-one", "exporg", 0, &got), 0);
    CHECK(got.job_state == JOB_RUNNING && got.job_progress == 500 && got.job_attempts == 1);
    CHECK_EQ_INT(fenced(STORE_JOB_FAIL, "w-exp", &run, -1, "the range is past the end"),
                 JOB_FAILED);
    CHECK_EQ_INT(export_get("", "", e.id, &got), 0);
    CHECK_EQ_INT(got.job_state, JOB_FAILED);
    CHECK_EQ_STR(got.job_error, "the range is past the end");
    CHECK_EQ_INT(org_active("exporg"), 1);
    CHECK_EQ_INT(claim_hooks("webhook", 8, NULL), 0);

    /* Refused: an unknown asset, another org's, a range that is none. */
    CHECK_EQ_INT(export_create(a.id + 1000000, "exporg", "e-x", 0, 1000, 0, "", 0, NULL), -ENOENT);
    CHECK_EQ_INT(export_create(a.id, "otherorg", "e-x", 0, 1000, 0, "", 0, NULL), -ENOENT);
    CHECK_EQ_INT(export_create(a.id, "exporg", "e-x", 1000, 1000, 0, "", 0, NULL), -EINVAL);
    CHECK_EQ_INT(export_create(a.id, "exporg", "", 0, 1000, 0, "", 0, NULL), -EINVAL);
    CHECK_EQ_INT(export_get("", "", 0, NULL), -EINVAL);
    /* A public id is one export's: another request may not take it. */
    CHECK_EQ_INT(export_create(a.id, "exporg", "e-one", 0, 1000, 0, "", 0, NULL), -EINVAL);

    /* Deleting the asset cancels its exports' unfinished jobs; a deleted asset takes none. */
    rd_export q, r, kept;
    rd_asset b;
    CHECK_EQ_INT(create_asset("exp-keep", "exporg", 5, &b), 0);
    CHECK_EQ_INT(export_create(b.id, "exporg", "e-kept", 0, 1000, 0, "", 3, &kept), 0);
    CHECK_EQ_INT(export_create(a.id, "exporg", "e-queued", 0, 2000, 0, "en", 3, &q), 0);
    CHECK_EQ_INT(export_create(a.id, "exporg", "e-running", 0, 3000, 0, "", 3, &r), 0);
    CHECK_EQ_INT(claim("w-exp", 30000, 1, r.job_id, &run), 1);
    CHECK_EQ_INT(delete_asset("exp-src", "exporg", NULL, NULL), 0);
    CHECK_EQ_INT(get_job(q.job_id, &st).state, JOB_CANCELLED);
    CHECK_EQ_INT(get_job(r.job_id, &st).state, JOB_CANCELLED);
    CHECK_EQ_INT(get_job(other.job_id, &st).state, JOB_CANCELLED);
    CHECK_EQ_INT(get_job(e.job_id, &st).state, JOB_FAILED); /* finished: as it was */
    CHECK_EQ_INT(get_job(kept.job_id, &st).state, JOB_QUEUED);
    CHECK_EQ_INT(fenced(STORE_JOB_HEARTBEAT, "w-exp", &run, 0, NULL), JOB_CANCELLED);
    CHECK_EQ_INT(export_create(a.id, "exporg", "e-late", 0, 4000, 0, "", 3, NULL), -ENOENT);
    CHECK_EQ_INT(org_active("exporg"), 1);
    CHECK_EQ_INT(webhook_op(STORE_WEBHOOK_DELETE, "exporg", NULL, NULL, NULL), 0);
    drain();
}

TEST(migration_from_schema_6_keeps_captions_and_takes_exports)
{
    CHECK(schema6_seeded); /* a schema-6 database with rows was upgraded */
    if (!schema6_seeded)
        return;
    rd_asset got;
    CHECK_EQ_INT(find_asset("acap6", "six", &got), 0);
    CHECK_EQ_STR(got.state, "ready");
    CHECK_EQ_INT(got.size_bytes, 66);
    CHECK_EQ_INT(got.job_state, JOB_SUCCEEDED);
    rd_caption c[RD_STORE_BATCH];
    int n = -1;
    int64_t v = -1;
    CHECK_EQ_INT(caption_list(got.id, c, &n, &v), 0);
    CHECK(n == 1 && v == 1);
    if (n == 1) {
        CHECK_EQ_STR(c[0].lang, "en");
        CHECK_EQ_INT(c[0].is_default, 1);
    }
    rd_export e;
    CHECK_EQ_INT(export_create(got.id, "six", "e-six", 0, 1000, 0, "en", 3, &e), 0);
    CHECK_EQ_INT(e.created, 1);
    CHECK_EQ_STR(e.master_key, "masters/acap6");
    CHECK_EQ_STR(e.lang, "en");
    CHECK_EQ_INT(org_active("six"), 1);
    drain();
}

static int webhook_event(int64_t row, rd_webhook_delivery *ev, rd_webhook *hook);

TEST(migration_to_schema_8_keeps_webhook_events)
{
    CHECK(schema7_seeded); /* a schema-7 database with an event was upgraded */
    if (!schema7_seeded)
        return;
    drain();
    rd_webhook_delivery ev;
    rd_webhook hook;
    CHECK_EQ_INT(webhook_event(900007, &ev, &hook), 0);
    CHECK_EQ_STR(ev.event_id, "evt_seven");
    CHECK_EQ_STR(ev.type, "asset.uploaded");
    CHECK_EQ_STR(ev.asset_public, "aev7");
    CHECK_EQ_INT(ev.export_id, 0);
    CHECK_EQ_STR(ev.export_public, "");
    CHECK_EQ_STR(hook.url, "https://seven.example/h");
    /* Still one asset.uploaded per asset: the promote's event is the one that was there. */
    rd_asset a;
    CHECK_EQ_INT(find_asset("aev7", "seven", &a), 0);
    rd_job t = create_job(a.id, "transcode", 0, 1);
    CHECK(t.created == 1);
    CHECK_EQ_INT(claim_hooks("webhook", 8, NULL), 0);
    /* The endpoint took "all" when that was four types: its exports write no events. */
    rd_export e;
    rd_job run;
    CHECK_EQ_INT(export_create(a.id, "seven", "e-seven", 0, 1000, 0, "", 1, &e), 0);
    CHECK_EQ_INT(claim("w-seven", 30000, 1, e.job_id, &run), 1);
    CHECK_EQ_INT(fenced(STORE_JOB_COMPLETE, "w-seven", &run, 0, NULL), JOB_SUCCEEDED);
    CHECK_EQ_INT(claim_hooks("webhook", 8, NULL), 0);
    drain();
}

TEST(migration_from_schema_1_keeps_old_assets)
{
    CHECK(legacy_seeded); /* a schema-1 database with rows was upgraded */
    if (!legacy_seeded)
        return;
    rd_asset got;
    CHECK_EQ_INT(find_asset("aold1", "legacy", &got), 0);
    CHECK_EQ_STR(got.state, "uploading");
    CHECK_EQ_INT(got.size_bytes, 41);
    CHECK_EQ_INT(got.job_id, 0);
    CHECK_EQ_INT(find_asset("aold2", "legacy", &got), 0);
    CHECK_EQ_STR(got.state, "ready");
    CHECK(got.job_id > 0);
    CHECK_EQ_INT(got.job_state, JOB_SUCCEEDED);
    CHECK_EQ_INT(find_asset("aold2", "acme", NULL), -ENOENT);
    /* New assets after the old ones: ids go on from where schema 1 left them. */
    rd_asset fresh;
    CHECK_EQ_INT(create_asset("anew-after-upgrade", "legacy", 1, &fresh), 0);
    CHECK(fresh.id > got.id);
}

TEST(job_create_is_idempotent_per_asset_and_kind)
{
    rd_job a = create_job(100, "transcode", 0, 3);
    rd_job b = create_job(100, "transcode", 5, 9);
    rd_job c = create_job(100, "poster", 0, 3);
    CHECK(a.id > 0);
    CHECK_EQ_INT(a.created, 1);
    CHECK_EQ_INT(b.id, a.id);
    CHECK_EQ_INT(b.created, 0);
    CHECK_EQ_INT(b.max_attempts, 3); /* the first creation's settings stand */
    CHECK(c.id != a.id);
    CHECK_EQ_INT(a.state, JOB_QUEUED);
    CHECK_EQ_INT(a.attempts, 0);

    /* A batch: each answer sits where it was asked, new or not. */
    rd_msg *m = store_request(STORE_JOB_CREATE);
    struct rd_msg_store *q = msg_body(m, store);
    q->n = 3;
    q->jobs[0].asset_id = 101;
    snprintf(q->jobs[0].kind, sizeof(q->jobs[0].kind), "transcode");
    q->jobs[1].asset_id = 100;
    snprintf(q->jobs[1].kind, sizeof(q->jobs[1].kind), "transcode");
    q->jobs[2].asset_id = 102;
    snprintf(q->jobs[2].kind, sizeof(q->jobs[2].kind), "transcode");
    int st;
    rd_msg *ans = call(m, &st);
    CHECK_EQ_INT(st, 0);
    if (ans != NULL) {
        q = msg_body(ans, store);
        CHECK_EQ_INT(q->jobs[0].asset_id, 101);
        CHECK_EQ_INT(q->jobs[0].created, 1);
        CHECK_EQ_INT(q->jobs[1].id, a.id);
        CHECK_EQ_INT(q->jobs[1].created, 0);
        CHECK_EQ_INT(q->jobs[2].asset_id, 102);
        msg_free(ans);
    }
    m = store_request(STORE_JOB_CREATE);
    msg_body(m, store)->n = 1; /* no kind */
    msg_body(m, store)->jobs[0].asset_id = 1;
    msg_free(call(m, &st));
    CHECK_EQ_INT(st, -EINVAL);
    drain();
}

TEST(claim_by_priority_leases_and_counts_attempts)
{
    rd_job low = create_job(200, "noop", 0, 3);
    rd_job high = create_job(201, "noop", 10, 3);
    rd_job got[RD_STORE_BATCH];
    CHECK_EQ_INT(claim("w1", 30000, 1, 0, got), 1);
    CHECK_EQ_INT(got[0].id, high.id);
    CHECK_EQ_INT(got[0].state, JOB_RUNNING);
    CHECK_EQ_INT(got[0].attempts, 1);
    CHECK_EQ_STR(got[0].lease_owner, "w1");
    CHECK(got[0].lease_expires_ms > got[0].updated_ms);
    /* The leased job is not claimable; the other one is. */
    CHECK_EQ_INT(claim("w2", 30000, 1, high.id, NULL), 0);
    CHECK_EQ_INT(claim("w2", 30000, 5, 0, got), 1);
    CHECK_EQ_INT(got[0].id, low.id);
    CHECK_EQ_INT(claim("w3", 30000, 5, 0, NULL), 0);
    rd_job h = get_job(high.id, &(int){0});
    CHECK_EQ_INT(fenced(STORE_JOB_COMPLETE, "w1", &h, 0, NULL), JOB_SUCCEEDED);
    CHECK_EQ_INT(fenced(STORE_JOB_COMPLETE, "w2", &got[0], 0, NULL), JOB_SUCCEEDED);
}

static int claim_kind(const char *kind, rd_job *out)
{
    rd_msg *m = store_request(STORE_JOB_CLAIM);
    struct rd_msg_store *b = msg_body(m, store);
    snprintf(b->owner, sizeof(b->owner), "w-kind");
    snprintf(b->kind, sizeof(b->kind), "%s", kind);
    b->lease_ms = 30000;
    b->limit = 4;
    int st;
    rd_msg *a = call(m, &st);
    CHECK_EQ_INT(st, 0);
    int n = a ? (int)msg_body(a, store)->n : 0;
    if (a != NULL && n > 0 && out != NULL)
        *out = msg_body(a, store)->jobs[0];
    msg_free(a);
    return n;
}

TEST(claim_only_the_kinds_asked_for)
{
    drain();
    rd_job t = create_job(250, "thumbnail", 0, 3), got;
    CHECK_EQ_INT(claim_kind("noop", NULL), 0);
    CHECK_EQ_INT(claim_kind("thumbnail", &got), 1);
    CHECK_EQ_INT(got.id, t.id);
    CHECK_EQ_INT(fenced(STORE_JOB_COMPLETE, "w-kind", &got, 0, NULL), JOB_SUCCEEDED);
}

/* The promote body's options ride on the job from create to claim, in a batch too; a job
 * created without them has none (no download, no poster time: not a poster at 0 s). */
TEST(job_options_come_back_with_the_claim)
{
    drain();
    rd_msg *m = store_request(STORE_JOB_CREATE);
    struct rd_msg_store *q = msg_body(m, store);
    q->n = 2;
    q->jobs[0].asset_id = 260;
    snprintf(q->jobs[0].kind, sizeof(q->jobs[0].kind), "pictures");
    q->jobs[0].mp4 = 1;
    q->jobs[0].has_poster = 1;
    q->jobs[0].poster_ms = 8500;
    q->jobs[1].asset_id = 261;
    snprintf(q->jobs[1].kind, sizeof(q->jobs[1].kind), "pictures");
    int st;
    rd_msg *ans = call(m, &st);
    CHECK_EQ_INT(st, 0);
    int64_t asked = 0;
    if (ans != NULL) {
        q = msg_body(ans, store);
        CHECK_EQ_INT(q->jobs[0].mp4, 1);
        CHECK_EQ_INT(q->jobs[0].has_poster, 1);
        CHECK_EQ_INT(q->jobs[0].poster_ms, 8500);
        CHECK_EQ_INT(q->jobs[1].mp4, 0);
        CHECK_EQ_INT(q->jobs[1].has_poster, 0);
        asked = q->jobs[0].id;
        msg_free(ans);
    }
    rd_job got[RD_STORE_BATCH];
    CHECK_EQ_INT(claim("w-opts", 30000, 1, asked, got), 1);
    CHECK_EQ_INT(got[0].mp4, 1);
    CHECK_EQ_INT(got[0].has_poster, 1);
    CHECK_EQ_INT(got[0].poster_ms, 8500);
    rd_job g = get_job(asked, &(int){0});
    CHECK_EQ_INT(g.poster_ms, 8500);
    CHECK_EQ_INT(fenced(STORE_JOB_COMPLETE, "w-opts", &got[0], 0, NULL), JOB_SUCCEEDED);
    CHECK_EQ_INT(claim_kind("pictures", got), 1);
    CHECK_EQ_INT(got[0].mp4, 0);
    CHECK_EQ_INT(got[0].has_poster, 0);
    CHECK_EQ_INT(fenced(STORE_JOB_COMPLETE, "w-kind", &got[0], 0, NULL), JOB_SUCCEEDED);
}

TEST(fencing_by_owner_and_attempt)
{
    rd_job j = create_job(300, "noop", 0, 3);
    rd_job got;
    CHECK_EQ_INT(claim("w1", 30000, 1, j.id, &got), 1);
    rd_job wrong_attempt = got;
    wrong_attempt.attempts = 7;
    CHECK_EQ_INT(fenced(STORE_JOB_HEARTBEAT, "w1", &wrong_attempt, 0, NULL), JOB_STATE_NONE);
    CHECK_EQ_INT(fenced(STORE_JOB_COMPLETE, "intruder", &got, 0, NULL), JOB_STATE_NONE);
    CHECK_EQ_INT(fenced(STORE_JOB_HEARTBEAT, "w1", &got, 0, NULL), JOB_RUNNING);
    int st;
    CHECK_EQ_INT(get_job(j.id, &st).progress, 500);
    CHECK_EQ_INT(fenced(STORE_JOB_COMPLETE, "w1", &got, 0, NULL), JOB_SUCCEEDED);
    /* Completing twice is answered with the state, not applied again. */
    CHECK_EQ_INT(fenced(STORE_JOB_COMPLETE, "w1", &got, 0, NULL), JOB_SUCCEEDED);
    rd_job done = get_job(j.id, &st);
    CHECK_EQ_INT(done.state, JOB_SUCCEEDED);
    CHECK_EQ_INT(done.attempts, 1);
    CHECK_EQ_INT(done.progress, 1000);
}

TEST(release_hands_the_job_back_without_counting_the_attempt)
{
    rd_job j = create_job(450, "noop", 0, 3), got;
    CHECK_EQ_INT(claim("stopping-node", 30000, 1, j.id, &got), 1);
    CHECK_EQ_INT(fenced(STORE_JOB_RELEASE, "other", &got, 0, NULL), JOB_STATE_NONE);
    CHECK_EQ_INT(fenced(STORE_JOB_RELEASE, "stopping-node", &got, 0, NULL), JOB_QUEUED);
    int st;
    rd_job back = get_job(j.id, &st);
    CHECK_EQ_INT(back.state, JOB_QUEUED);
    CHECK_EQ_INT(back.attempts, 0);
    CHECK_EQ_INT(claim("next-node", 30000, 1, j.id, &got), 1);
    CHECK_EQ_INT(got.attempts, 1);
    CHECK_EQ_INT(fenced(STORE_JOB_COMPLETE, "next-node", &got, 0, NULL), JOB_SUCCEEDED);
}

TEST(expired_lease_is_taken_over_and_the_old_owner_fenced_out)
{
    rd_job j = create_job(400, "noop", 0, 3);
    rd_job first, second;
    CHECK_EQ_INT(claim("dead-worker", 50, 1, j.id, &first), 1);
    CHECK_EQ_INT(claim("w2", 30000, 1, j.id, NULL), 0); /* still leased */
    sleep_ms(120);
    CHECK_EQ_INT(claim("w2", 30000, 1, 0, &second), 1);
    CHECK_EQ_INT(second.id, j.id);
    CHECK_EQ_INT(second.attempts, 2);
    CHECK_EQ_INT(fenced(STORE_JOB_COMPLETE, "dead-worker", &first, 0, NULL), JOB_STATE_NONE);
    CHECK_EQ_INT(fenced(STORE_JOB_COMPLETE, "w2", &second, 0, NULL), JOB_SUCCEEDED);
    int st;
    rd_job done = get_job(j.id, &st);
    CHECK_EQ_INT(done.state, JOB_SUCCEEDED);
    CHECK_EQ_INT(done.attempts, 2);
}

TEST(failures_retry_after_the_delay_then_die_with_the_last_error)
{
    rd_job j = create_job(500, "noop", 0, 2);
    rd_job got;
    CHECK_EQ_INT(claim("w1", 30000, 1, j.id, &got), 1);
    CHECK_EQ_INT(fenced(STORE_JOB_FAIL, "w1", &got, 150, "disk full"), JOB_QUEUED);
    CHECK_EQ_INT(claim("w1", 30000, 1, j.id, NULL), 0); /* not before run_after */
    sleep_ms(200);
    CHECK_EQ_INT(claim("w1", 30000, 1, j.id, &got), 1);
    CHECK_EQ_INT(got.attempts, 2);
    CHECK_EQ_INT(fenced(STORE_JOB_FAIL, "w1", &got, 0, "decoder \"crashed\""), JOB_DEAD);
    int st;
    rd_job dead = get_job(j.id, &st);
    CHECK_EQ_INT(dead.state, JOB_DEAD);
    CHECK_EQ_STR(dead.error, "decoder \"crashed\"");
    CHECK_EQ_INT(claim("w1", 30000, 1, j.id, NULL), 0);

    rd_job k = create_job(501, "noop", 0, 5);
    CHECK_EQ_INT(claim("w1", 30000, 1, k.id, &got), 1);
    CHECK_EQ_INT(fenced(STORE_JOB_FAIL, "w1", &got, -1, "not a video"), JOB_FAILED);
}

TEST(cancel_queued_running_finished_and_unknown)
{
    rd_job q = create_job(600, "noop", 0, 3);
    CHECK_EQ_INT(cancel(q.id), 0);
    CHECK_EQ_INT(cancel(q.id), -EALREADY);
    CHECK_EQ_INT(cancel(99999999), -ENOENT);
    rd_job r = create_job(601, "noop", 0, 3), got;
    CHECK_EQ_INT(claim("w1", 30000, 1, r.id, &got), 1);
    CHECK_EQ_INT(cancel(r.id), 0);
    /* The worker's next heartbeat learns why it must stop; its completion does not apply. */
    CHECK_EQ_INT(fenced(STORE_JOB_HEARTBEAT, "w1", &got, 0, NULL), JOB_CANCELLED);
    CHECK_EQ_INT(fenced(STORE_JOB_COMPLETE, "w1", &got, 0, NULL), JOB_CANCELLED);
    int st;
    CHECK_EQ_INT(get_job(r.id, &st).state, JOB_CANCELLED);
    get_job(424242424, &st);
    CHECK_EQ_INT(st, -ENOENT);
}

TEST(list_by_state_with_cursor)
{
    for (int i = 0; i < 5; i++)
        create_job(700 + i, "listed", 0, 3);
    int64_t cursor = 0;
    int seen = 0, pages = 0;
    do {
        rd_msg *m = store_request(STORE_JOB_LIST);
        msg_body(m, store)->state = JOB_QUEUED;
        msg_body(m, store)->cursor = cursor;
        msg_body(m, store)->limit = 2;
        int st;
        rd_msg *ans = call(m, &st);
        CHECK_EQ_INT(st, 0);
        if (ans == NULL)
            return;
        for (uint32_t i = 0; i < msg_body(ans, store)->n; i++) {
            CHECK_EQ_INT(msg_body(ans, store)->jobs[i].state, JOB_QUEUED);
            CHECK(msg_body(ans, store)->jobs[i].id > cursor);
            seen++;
        }
        cursor = msg_body(ans, store)->cursor;
        msg_free(ans);
        pages++;
    } while (cursor != 0 && pages < 10);
    CHECK_EQ_INT(seen, 5);
    CHECK_EQ_INT(pages, 3);
    drain();
}

/* The planner's row count for the jobs table (pg_class.reltuples; -1 before any ANALYZE), and
 * how many ANALYZE statements (not autovacuum's) have run on it. */
static double planned_jobs(long *analyzed)
{
    PGconn *c = PQconnectdb(pg_url);
    PGresult *r = PQexec(c, "SELECT reltuples, (SELECT analyze_count FROM pg_stat_user_tables"
                            " WHERE relid = 'jobs'::regclass) FROM pg_class"
                            " WHERE oid = 'jobs'::regclass");
    int ok = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1;
    double v = ok ? atof(PQgetvalue(r, 0, 0)) : -2;
    if (analyzed != NULL)
        *analyzed = ok ? atol(PQgetvalue(r, 0, 1)) : -1;
    PQclear(r);
    PQfinish(c);
    return v;
}

/* A jobs table that grows from empty faster than autoanalyze looks (once a minute) gets its
 * statistics from the store, so the plans prepared while it was empty are made again. */
TEST(jobs_table_grown_past_its_statistics_is_analyzed)
{
    if (pg_url == NULL) {
        SKIP("postgres only: SQLite keeps no plan made for an emptier table");
        return;
    }
    long analyzed_before = 0, analyzed = 0;
    double before = planned_jobs(&analyzed_before);
    CHECK(before < 1000); /* autoanalyze has not looked yet (naptime: a minute) */
    for (int k = 0; k < 80; k++) {
        rd_msg *m = store_request(STORE_JOB_CREATE);
        struct rd_msg_store *b = msg_body(m, store);
        for (b->n = 0; b->n < RD_STORE_BATCH; b->n++) {
            b->jobs[b->n].asset_id = 900000 + k * RD_STORE_BATCH + (int64_t)b->n;
            snprintf(b->jobs[b->n].kind, sizeof(b->jobs[b->n].kind), "noop");
            b->jobs[b->n].max_attempts = 1;
        }
        int st;
        rd_msg *a = call(m, &st);
        CHECK_EQ_INT(st, 0);
        msg_free(a);
    }
    counts(); /* what the dispatcher asks: 2,560 rows' pages and none planned */
    double after = before;
    for (int i = 0; i < 100 && after < 2560; i++) {
        sleep_ms(50);
        after = planned_jobs(&analyzed);
    }
    CHECK(after >= 2560);
    CHECK(analyzed > analyzed_before); /* the store's ANALYZE, not autovacuum's */
}

/* Runs `sql` on its own connection; 1 when it succeeded. */
static int pg_exec(const char *sql)
{
    PGconn *c = PQconnectdb(pg_url);
    PGresult *r = PQexec(c, sql);
    int ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    if (!ok)
        printf("  %s: %s", sql, PQerrorMessage(c));
    PQclear(r);
    PQfinish(c);
    return ok;
}

/* A WARNING the server sends with a result (here a trigger's) is a line of reeld's JSON log,
 * not libpq's raw "WARNING:  ..." text on stderr between the log's lines. */
TEST(server_warnings_are_log_lines)
{
    if (pg_url == NULL) {
        SKIP("postgres only: SQLite has no server to warn");
        return;
    }
    CHECK(pg_exec("CREATE FUNCTION reeld_test_warn() RETURNS trigger LANGUAGE plpgsql AS"
                  " $$BEGIN RAISE WARNING 'reeld test warning'; RETURN NEW; END$$"));
    CHECK(pg_exec("CREATE TRIGGER reeld_test_warn BEFORE INSERT ON jobs"
                  " FOR EACH ROW EXECUTE FUNCTION reeld_test_warn()"));
    char path[] = "/tmp/reeld-test-stderr-XXXXXX";
    int fd = mkstemp(path), saved = dup(2);
    CHECK(fd >= 0 && saved >= 0);
    log_set_level("warn");
    fflush(stderr);
    dup2(fd, 2);
    create_job(700, "noop", 0, 1);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    log_set_level("error");
    char text[4096] = "";
    ssize_t n = pread(fd, text, sizeof(text) - 1, 0);
    text[n > 0 ? n : 0] = '\0';
    close(fd);
    unlink(path);
    CHECK(strstr(text, "\"event\":\"postgres_notice\"") != NULL);
    CHECK(strstr(text, "reeld test warning") != NULL);
    for (char *line = strtok(text, "\n"); line != NULL; line = strtok(NULL, "\n"))
        CHECK(line[0] == '{'); /* every line is the log's */
    CHECK(pg_exec("DROP TRIGGER reeld_test_warn ON jobs; DROP FUNCTION reeld_test_warn()"));
}

TEST(counts_sweep_and_due)
{
    drain();
    rd_queue_counts before = counts();
    rd_job a = create_job(800, "noop", 0, 1), got;
    create_job(801, "noop", 0, 3);
    rd_queue_counts mid = counts();
    CHECK_EQ_INT(mid.waiting, before.waiting + 2);
    /* The queue alone (what a node asks every second): the same queue, the finished not
     * counted. */
    rd_msg *q = store_request(STORE_JOB_COUNTS);
    msg_body(q, store)->state = RD_COUNT_ACTIVE;
    int qs;
    rd_msg *qa = call(q, &qs);
    CHECK_EQ_INT(qs, 0);
    if (qa != NULL) {
        const rd_queue_counts *c = &msg_body(qa, store)->counts;
        CHECK_EQ_INT(c->waiting, mid.waiting);
        CHECK_EQ_INT(c->active, mid.active);
        CHECK_EQ_INT(c->oldest_queued_ms >= 0, 1);
        CHECK_EQ_INT(c->completed, -1);
        CHECK_EQ_INT(c->failed, -1);
        CHECK_EQ_INT(c->dead, -1);
        msg_free(qa);
    }

    /* Due: both once, then not again within the age. */
    rd_msg *m = store_request(STORE_JOB_DUE);
    msg_body(m, store)->lease_ms = 0;
    int st;
    rd_msg *ans = call(m, &st);
    CHECK_EQ_INT(st, 0);
    if (ans != NULL) {
        CHECK_EQ_INT(msg_body(ans, store)->n, 2);
        msg_free(ans);
    }
    m = store_request(STORE_JOB_DUE);
    msg_body(m, store)->lease_ms = 60000;
    ans = call(m, &st);
    if (ans != NULL) {
        CHECK_EQ_INT(msg_body(ans, store)->n, 0);
        msg_free(ans);
    }

    /* A worker that vanished on the last attempt: the sweep buries the job. */
    CHECK_EQ_INT(claim("gone", 30, 1, a.id, &got), 1);
    sleep_ms(80);
    ans = call(store_request(STORE_JOB_SWEEP), &st);
    CHECK_EQ_INT(st, 0);
    if (ans != NULL) {
        CHECK_EQ_INT(msg_body(ans, store)->n, 1);
        msg_free(ans);
    }
    rd_job dead = get_job(a.id, &st);
    CHECK_EQ_INT(dead.state, JOB_DEAD);
    CHECK(strstr(dead.error, "lease expired") != NULL);
    rd_queue_counts after = counts();
    CHECK_EQ_INT(after.dead, before.dead + 1);
    CHECK_EQ_INT(after.waiting, before.waiting + 1);
    drain();
    CHECK_EQ_INT(counts().completed, after.completed + 1);
}

/* ---- webhooks ---- */

static int claim_hooks(const char *kind, uint32_t limit, rd_job *out)
{
    rd_msg *m = store_request(STORE_JOB_CLAIM);
    struct rd_msg_store *b = msg_body(m, store);
    snprintf(b->owner, sizeof(b->owner), "hooks");
    snprintf(b->kind, sizeof(b->kind), "%s", kind);
    b->lease_ms = 30000;
    b->limit = limit;
    int st;
    rd_msg *a = call(m, &st);
    CHECK_EQ_INT(st, 0);
    int n = 0;
    if (a != NULL) {
        n = (int)msg_body(a, store)->n;
        if (out != NULL)
            memcpy(out, msg_body(a, store)->jobs, sizeof(rd_job) * (size_t)n);
        msg_free(a);
    }
    return n;
}

static int webhook_op(rd_store_op op, const char *org, const char *url, const char *secret,
                      rd_webhook *out)
{
    rd_msg *m = store_request(op);
    struct rd_msg_store *b = msg_body(m, store);
    snprintf(b->webhook.org, sizeof(b->webhook.org), "%s", org);
    snprintf(b->webhook.url, sizeof(b->webhook.url), "%s", url ? url : "");
    snprintf(b->webhook.events, sizeof(b->webhook.events),
             "asset.uploaded,asset.ready,asset.failed");
    snprintf(b->webhook.secret, sizeof(b->webhook.secret), "%s", secret ? secret : "");
    b->lease_ms = 60000;
    int st;
    rd_msg *a = call(m, &st);
    if (a != NULL && out != NULL)
        *out = msg_body(a, store)->webhook;
    msg_free(a);
    return st;
}

static int webhook_event(int64_t row, rd_webhook_delivery *ev, rd_webhook *hook)
{
    rd_msg *m = store_request(STORE_WEBHOOK_EVENT);
    msg_body(m, store)->deliveries[0].event_row = row;
    int st;
    rd_msg *a = call(m, &st);
    if (a != NULL) {
        *ev = msg_body(a, store)->deliveries[0];
        if (hook != NULL)
            *hook = msg_body(a, store)->webhook;
    }
    msg_free(a);
    return st;
}

TEST(webhook_events_are_written_with_their_cause)
{
    drain();
    rd_webhook w, again;
    CHECK_EQ_INT(webhook_op(STORE_WEBHOOK_GET, "hooked", NULL, NULL, &w), -ENOENT);
    CHECK_EQ_INT(webhook_op(STORE_WEBHOOK_PUT, "hooked", "https://a.example/h", "whsec_1", &w), 0);
    CHECK_EQ_INT(w.created, 1);
    CHECK_EQ_STR(w.secret, "whsec_1");
    CHECK_EQ_INT(webhook_op(STORE_WEBHOOK_PUT, "hooked", "https://b.example/h", "whsec_2", &again),
                 0);
    CHECK_EQ_INT(again.created, 0);
    CHECK_EQ_STR(again.secret, "whsec_1"); /* a change keeps the secret */
    CHECK_EQ_STR(again.url, "https://b.example/h");
    CHECK_EQ_INT(webhook_op(STORE_WEBHOOK_ROTATE, "hooked", NULL, "whsec_3", &w), 0);
    CHECK_EQ_STR(w.secret, "whsec_3");
    CHECK_EQ_STR(w.previous, "whsec_1");
    CHECK(w.previous_until_ms > w.updated_ms);
    CHECK_EQ_INT(webhook_op(STORE_WEBHOOK_ROTATE, "nobody", NULL, "whsec_4", NULL), -ENOENT);

    rd_asset a1, a2, a3;
    CHECK_EQ_INT(create_asset("awh1", "hooked", 5, &a1), 0);
    CHECK_EQ_INT(create_asset("awh2", "hooked", 5, &a2), 0);
    CHECK_EQ_INT(create_asset("awh3", "unhooked", 5, &a3), 0);

    /* Promote: the transcode job and the asset.uploaded event, with its delivery job. */
    rd_job t1 = create_job(a1.id, "transcode", 0, 1), t3 = create_job(a3.id, "transcode", 0, 1);
    create_job(a1.id, "transcode", 0, 1); /* again: the same job, no second event */
    rd_job hooks[8], got;
    CHECK_EQ_INT(claim_hooks("webhook", 8, hooks), 1);
    rd_webhook_delivery ev;
    rd_webhook hook;
    CHECK_EQ_INT(webhook_event(hooks[0].asset_id, &ev, &hook), 0);
    CHECK_EQ_STR(ev.type, "asset.uploaded");
    CHECK_EQ_STR(ev.asset_public, "awh1");
    CHECK_EQ_STR(ev.org, "hooked");
    CHECK_EQ_INT((int)strlen(ev.event_id), 28);
    CHECK(strncmp(ev.event_id, "evt_", 4) == 0);
    CHECK_EQ_STR(hook.url, "https://b.example/h");
    CHECK_EQ_STR(hook.secret, "whsec_3");
    CHECK_EQ_STR(hook.previous, "whsec_1");
    CHECK_EQ_INT(hooks[0].max_attempts, store_webhook_max_attempts);

    /* Success: asset.ready, whose delivery waits for the asset's earlier one. */
    CHECK_EQ_INT(claim("tw", 30000, 1, t1.id, &got), 1);
    CHECK_EQ_INT(fenced(STORE_JOB_COMPLETE, "tw", &got, 0, NULL), JOB_SUCCEEDED);
    CHECK_EQ_INT(claim_hooks("webhook", 8, NULL), 0); /* the uploaded one still runs */
    CHECK_EQ_INT(fenced(STORE_JOB_COMPLETE, "hooks", &hooks[0], 0, NULL), JOB_SUCCEEDED);
    CHECK_EQ_INT(claim_hooks("webhook", 8, hooks), 1);
    CHECK_EQ_INT(webhook_event(hooks[0].asset_id, &ev, NULL), 0);
    CHECK_EQ_STR(ev.type, "asset.ready");
    CHECK_EQ_STR(ev.error, "");

    /* The attempt is recorded and listed for its org only. */
    rd_msg *m = store_request(STORE_WEBHOOK_ATTEMPT);
    rd_webhook_delivery *d = &msg_body(m, store)->deliveries[0];
    d->event_row = ev.event_row;
    d->attempt = 1;
    d->status_code = 503;
    d->latency_ms = 12;
    snprintf(d->state, sizeof(d->state), "retrying");
    int st;
    msg_free(call(m, &st));
    CHECK_EQ_INT(st, 0);
    m = store_request(STORE_WEBHOOK_LIST);
    snprintf(msg_body(m, store)->webhook.org, 64, "hooked");
    rd_msg *ans = call(m, &st);
    CHECK_EQ_INT(st, 0);
    if (ans != NULL) {
        struct rd_msg_store *b = msg_body(ans, store);
        CHECK_EQ_INT(b->n, 1);
        CHECK_EQ_STR(b->deliveries[0].event_id, ev.event_id);
        CHECK_EQ_STR(b->deliveries[0].type, "asset.ready");
        CHECK_EQ_STR(b->deliveries[0].asset_public, "awh1");
        CHECK_EQ_INT(b->deliveries[0].status_code, 503);
        CHECK_EQ_STR(b->deliveries[0].state, "retrying");
        msg_free(ans);
    }
    m = store_request(STORE_WEBHOOK_LIST);
    snprintf(msg_body(m, store)->webhook.org, 64, "unhooked");
    ans = call(m, &st);
    CHECK(ans != NULL && msg_body(ans, store)->n == 0);
    msg_free(ans);
    CHECK_EQ_INT(fenced(STORE_JOB_COMPLETE, "hooks", &hooks[0], 0, NULL), JOB_SUCCEEDED);

    /* A final failure: asset.failed with the error. A retry to come is no event. */
    rd_job t2 = create_job(a2.id, "transcode", 0, 2);
    CHECK_EQ_INT(claim_hooks("webhook", 8, hooks), 1); /* awh2's uploaded */
    CHECK_EQ_INT(fenced(STORE_JOB_COMPLETE, "hooks", &hooks[0], 0, NULL), JOB_SUCCEEDED);
    CHECK_EQ_INT(claim("tw", 30000, 1, t2.id, &got), 1);
    CHECK_EQ_INT(fenced(STORE_JOB_FAIL, "tw", &got, 0, "S3 was away"), JOB_QUEUED);
    CHECK_EQ_INT(claim_hooks("webhook", 8, NULL), 0);
    CHECK_EQ_INT(claim("tw", 30000, 1, t2.id, &got), 1);
    CHECK_EQ_INT(fenced(STORE_JOB_FAIL, "tw", &got, -1, "the master cannot be decoded"),
                 JOB_FAILED);
    CHECK_EQ_INT(claim_hooks("webhook", 8, hooks), 1);
    CHECK_EQ_INT(webhook_event(hooks[0].asset_id, &ev, NULL), 0);
    CHECK_EQ_STR(ev.type, "asset.failed");
    CHECK_EQ_STR(ev.error, "the master cannot be decoded");
    CHECK_EQ_STR(ev.asset_public, "awh2");

    /* No endpoint, no event (awh3's org); a deleted endpoint: the event says so. */
    CHECK(t3.id > 0);
    CHECK_EQ_INT(webhook_op(STORE_WEBHOOK_DELETE, "hooked", NULL, NULL, NULL), 0);
    CHECK_EQ_INT(webhook_op(STORE_WEBHOOK_DELETE, "hooked", NULL, NULL, NULL), -ENOENT);
    CHECK_EQ_INT(webhook_event(hooks[0].asset_id, &ev, &hook), 0);
    CHECK_EQ_STR(hook.url, "");
    CHECK_EQ_INT(webhook_event(987654321, &ev, NULL), -ENOENT);
    drain();
}

/* Sets `org`'s endpoint to take `events` (a stored list). */
static int webhook_put(const char *org, const char *events)
{
    rd_msg *m = store_request(STORE_WEBHOOK_PUT);
    rd_webhook *w = &msg_body(m, store)->webhook;
    snprintf(w->org, sizeof(w->org), "%s", org);
    snprintf(w->url, sizeof(w->url), "https://%s.example/h", org);
    snprintf(w->events, sizeof(w->events), "%s", events);
    snprintf(w->secret, sizeof(w->secret), "whsec_%s", org);
    int st;
    msg_free(call(m, &st));
    return st;
}

/* Claims the one webhook job due now, checks its event is `type` of export `e` (of asset
 * `src`) with `error`, and finishes the delivery (so the asset's next event may go). */
static void expect_export_event(const char *type, const rd_export *e, const char *src,
                                const char *error)
{
    rd_job hooks[8];
    int n = claim_hooks("webhook", 8, hooks);
    CHECK_EQ_INT(n, 1);
    if (n != 1)
        return;
    rd_webhook_delivery ev;
    CHECK_EQ_INT(webhook_event(hooks[0].asset_id, &ev, NULL), 0);
    CHECK_EQ_STR(ev.type, type);
    CHECK_EQ_STR(ev.org, e->org);
    CHECK_EQ_INT(ev.asset_id, e->asset_id);
    CHECK_EQ_STR(ev.asset_public, src);
    CHECK_EQ_INT(ev.export_id, e->id);
    CHECK_EQ_STR(ev.export_public, e->public_id);
    CHECK_EQ_INT(ev.export_start_ms, e->start_ms);
    CHECK_EQ_INT(ev.export_end_ms, e->end_ms);
    CHECK_EQ_STR(ev.export_lang, e->lang);
    CHECK_EQ_STR(ev.master_key, e->master_key);
    CHECK_EQ_STR(ev.error, error);
    CHECK(strncmp(ev.event_id, "evt_", 4) == 0);
    CHECK_EQ_INT(hooks[0].max_attempts, store_webhook_max_attempts);
    CHECK_EQ_INT(fenced(STORE_JOB_COMPLETE, "hooks", &hooks[0], 0, NULL), JOB_SUCCEEDED);
}

TEST(export_events_are_written_with_the_export_outcome)
{
    drain();
    CHECK_EQ_INT(webhook_put("xhook", "asset.ready,export.ready,export.failed"), 0);
    rd_asset a;
    CHECK_EQ_INT(create_asset("xh-src", "xhook", 5, &a), 0);
    rd_export ok, ok2, retried, bad, gone, quiet;
    CHECK_EQ_INT(export_create(a.id, "xhook", "xh-ok", 1000, 5000, 0, "", 3, &ok), 0);
    CHECK_EQ_INT(export_create(a.id, "xhook", "xh-ok2", 0, 2500, 480, "en", 3, &ok2), 0);
    CHECK_EQ_INT(export_create(a.id, "xhook", "xh-retried", 0, 3000, 0, "fr", 2, &retried), 0);
    CHECK_EQ_INT(export_create(a.id, "xhook", "xh-bad", 0, 4000, 0, "", 3, &bad), 0);
    CHECK_EQ_INT(export_create(a.id, "xhook", "xh-gone", 0, 6000, 0, "", 3, &gone), 0);
    CHECK_EQ_INT(claim_hooks("webhook", 8, NULL), 0); /* creating one is no event */

    /* Success: one export.ready naming the export; a second export of the same asset has its
     * own (one event per export and type, not per asset). */
    rd_job run;
    CHECK_EQ_INT(claim("w-x", 30000, 1, ok.job_id, &run), 1);
    CHECK_EQ_INT(fenced(STORE_JOB_COMPLETE, "w-x", &run, 0, NULL), JOB_SUCCEEDED);
    expect_export_event("export.ready", &ok, "xh-src", "");
    CHECK_EQ_INT(claim_hooks("webhook", 8, NULL), 0);
    CHECK_EQ_INT(claim("w-x", 30000, 1, ok2.job_id, &run), 1);
    CHECK_EQ_INT(fenced(STORE_JOB_COMPLETE, "w-x", &run, 0, NULL), JOB_SUCCEEDED);
    expect_export_event("export.ready", &ok2, "xh-src", "");

    /* A failure with a retry to come is none; the last attempt's is export.failed with the
     * error (dead), as is a failure for good. */
    CHECK_EQ_INT(claim("w-x", 30000, 1, retried.job_id, &run), 1);
    CHECK_EQ_INT(fenced(STORE_JOB_FAIL, "w-x", &run, 0, "S3 was away"), JOB_QUEUED);
    CHECK_EQ_INT(claim_hooks("webhook", 8, NULL), 0);
    CHECK_EQ_INT(claim("w-x", 30000, 1, retried.job_id, &run), 1);
    CHECK_EQ_INT(fenced(STORE_JOB_FAIL, "w-x", &run, 0, "S3 was away again"), JOB_DEAD);
    expect_export_event("export.failed", &retried, "xh-src", "S3 was away again");
    CHECK_EQ_INT(claim("w-x", 30000, 1, bad.job_id, &run), 1);
    CHECK_EQ_INT(fenced(STORE_JOB_FAIL, "w-x", &run, -1, "the range is past the end"), JOB_FAILED);
    expect_export_event("export.failed", &bad, "xh-src", "the range is past the end");

    /* Cancelled, queued or running: no event, nor from the worker's late answer. */
    CHECK_EQ_INT(claim("w-x", 30000, 1, gone.job_id, &run), 1);
    CHECK_EQ_INT(cancel(gone.job_id), 0);
    CHECK_EQ_INT(fenced(STORE_JOB_COMPLETE, "w-x", &run, 0, NULL), JOB_CANCELLED);
    CHECK_EQ_INT(export_create(a.id, "xhook", "xh-queued", 0, 7000, 0, "", 3, &quiet), 0);
    CHECK_EQ_INT(cancel(quiet.job_id), 0);
    CHECK_EQ_INT(claim_hooks("webhook", 8, NULL), 0);

    /* An endpoint that takes export.failed only: a ready export is none. */
    CHECK_EQ_INT(webhook_put("xhook", "export.failed"), 0);
    CHECK_EQ_INT(export_create(a.id, "xhook", "xh-unsent", 0, 8000, 0, "", 3, &quiet), 0);
    CHECK_EQ_INT(claim("w-x", 30000, 1, quiet.job_id, &run), 1);
    CHECK_EQ_INT(fenced(STORE_JOB_COMPLETE, "w-x", &run, 0, NULL), JOB_SUCCEEDED);
    CHECK_EQ_INT(claim_hooks("webhook", 8, NULL), 0);
    CHECK_EQ_INT(webhook_op(STORE_WEBHOOK_DELETE, "xhook", NULL, NULL, NULL), 0);
    drain();
}

/* ---- clips ---- */

/* STORE_CLIP_CREATE of asset `source`'s range as `org`, the clip named `public_id` (its master
 * "clips/<public_id>"), its job with `max_attempts`: the status, the clip as answered. */
static int clip_create(int64_t source, const char *org, const char *public_id, int64_t start_ms,
                       int64_t end_ms, int max_attempts, rd_asset *out)
{
    rd_msg *m = store_request(STORE_CLIP_CREATE);
    struct rd_msg_store *b = msg_body(m, store);
    rd_asset *a = &b->assets[0];
    snprintf(a->public_id, sizeof(a->public_id), "%s", public_id);
    snprintf(a->org, sizeof(a->org), "%s", org);
    snprintf(a->filename, sizeof(a->filename), "%s.mp4", public_id);
    snprintf(a->content_type, sizeof(a->content_type), "video/mp4");
    snprintf(a->master_key, sizeof(a->master_key), "clips/%s", public_id);
    a->source_id = source;
    a->source_start_ms = start_ms;
    a->source_end_ms = end_ms;
    /* Last: jobs[0] shares the union with assets[0] (max_attempts lies over job_state). */
    b->jobs[0].max_attempts = max_attempts;
    b->n = 1;
    int st;
    rd_msg *ans = call(m, &st);
    if (out != NULL)
        memset(out, 0, sizeof(*out));
    if (ans != NULL && st == 0 && out != NULL) {
        CHECK_EQ_INT(msg_body(ans, store)->n, 1);
        *out = msg_body(ans, store)->assets[0];
    }
    msg_free(ans);
    return st;
}

/* Checks that `got` is clip `c` as stored, cut from `src` over [start_ms, end_ms). */
static void expect_clip(const rd_asset *got, const rd_asset *c, const rd_asset *src,
                        int64_t start_ms, int64_t end_ms)
{
    CHECK_EQ_INT(got->id, c->id);
    CHECK_EQ_STR(got->public_id, c->public_id);
    CHECK_EQ_INT(got->job_id, c->job_id);
    CHECK_EQ_INT(got->source_id, src->id);
    CHECK_EQ_INT(got->source_start_ms, start_ms);
    CHECK_EQ_INT(got->source_end_ms, end_ms);
    CHECK_EQ_STR(got->source_public, src->public_id);
    CHECK_EQ_STR(got->source_master, src->master_key);
}

TEST(clips_are_assets_cut_from_another_with_their_job)
{
    drain();
    /* A ready source; the org's endpoint comes after, so its own events are not in the way. */
    rd_asset src, c, c2, got, rows[RD_STORE_BATCH];
    CHECK_EQ_INT(create_asset("clip-src", "cliporg", 5, &src), 0);
    rd_job t = create_job(src.id, "transcode", 0, 3), run;
    CHECK_EQ_INT(update_asset("clip-src", "cliporg", "processing", t.id), 0);
    CHECK_EQ_INT(claim("w-clip", 30000, 1, t.id, &run), 1);
    CHECK_EQ_INT(fenced(STORE_JOB_COMPLETE, "w-clip", &run, 0, NULL), JOB_SUCCEEDED);
    CHECK_EQ_INT(webhook_put("cliporg", "asset.uploaded,asset.ready,asset.failed"), 0);

    CHECK_EQ_INT(clip_create(src.id, "cliporg", "clip-1", 1500, 4000, 4, &c), 0);
    CHECK(c.id > 0 && c.id != src.id && c.job_id > 0);
    CHECK_EQ_STR(c.public_id, "clip-1");
    CHECK_EQ_STR(c.org, "cliporg");
    CHECK_EQ_STR(c.state, "processing");
    CHECK_EQ_STR(c.filename, "clip-1.mp4");
    CHECK_EQ_STR(c.content_type, "video/mp4");
    CHECK_EQ_STR(c.master_key, "clips/clip-1");
    CHECK_EQ_STR(c.staging_key, "");
    CHECK_EQ_INT(c.size_bytes, 0);
    CHECK_EQ_INT(c.job_state, JOB_QUEUED);
    CHECK(c.job_progress == 0 && c.job_attempts == 0 && c.deleted_ms == 0);
    CHECK(c.created_ms > 1700000000000LL);
    expect_clip(&c, &c, &src, 1500, 4000);
    /* Its job: a transcode of the clip, with the attempts asked for. */
    int st;
    rd_job j = get_job(c.job_id, &st);
    CHECK_EQ_INT(st, 0);
    CHECK_EQ_STR(j.kind, "transcode");
    CHECK_EQ_INT(j.asset_id, c.id);
    CHECK_EQ_INT(j.state, JOB_QUEUED);
    CHECK_EQ_INT(j.max_attempts, 4);
    CHECK_EQ_INT(org_active("cliporg"), 1);
    /* A clip is not an upload: no asset.uploaded. */
    CHECK_EQ_INT(claim_hooks("webhook", 8, NULL), 0);

    /* Read back: by public id (within the org, or any), by key, and listed; the source is not
     * a clip. */
    CHECK_EQ_INT(find_asset("clip-1", "cliporg", &got), 0);
    expect_clip(&got, &c, &src, 1500, 4000);
    CHECK_EQ_STR(got.state, "processing");
    CHECK_EQ_INT(got.job_state, JOB_QUEUED);
    CHECK_EQ_STR(got.master_key, "clips/clip-1");
    CHECK_EQ_INT(find_asset("clip-1", "", &got), 0);
    expect_clip(&got, &c, &src, 1500, 4000);
    CHECK_EQ_INT(find_asset("clip-1", "otherorg", NULL), -ENOENT);
    rd_msg *m = store_request(STORE_ASSET_GET);
    msg_body(m, store)->assets[0].id = c.id;
    rd_msg *ans = call(m, &st);
    CHECK_EQ_INT(st, 0);
    if (ans != NULL && st == 0)
        expect_clip(&msg_body(ans, store)->assets[0], &c, &src, 1500, 4000);
    msg_free(ans);
    CHECK_EQ_INT(find_asset("clip-src", "cliporg", &got), 0);
    CHECK_EQ_STR(got.state, "ready");
    CHECK(got.source_id == 0 && got.source_start_ms == 0 && got.source_end_ms == 0);
    CHECK_EQ_STR(got.source_public, "");
    CHECK_EQ_STR(got.source_master, "");
    int64_t next;
    int n = list_assets("cliporg", "", 0, 32, rows, &next);
    CHECK_EQ_INT(n, 2);
    if (n == 2) {
        expect_clip(&rows[0], &c, &src, 1500, 4000); /* newest first */
        CHECK_EQ_STR(rows[0].state, "processing");
        CHECK_EQ_STR(rows[1].public_id, "clip-src");
        CHECK_EQ_INT(rows[1].source_id, 0);
        CHECK_EQ_STR(rows[1].source_public, "");
    }
    n = list_assets("cliporg", "processing", 0, 32, rows, &next);
    CHECK_EQ_INT(n, 1);
    if (n == 1)
        expect_clip(&rows[0], &c, &src, 1500, 4000);

    /* Another range (max_attempts 0: the default). */
    CHECK_EQ_INT(clip_create(src.id, "cliporg", "clip-2", 0, 1000, 0, &c2), 0);
    CHECK(c2.id != c.id && c2.job_id != c.job_id);
    expect_clip(&c2, &c2, &src, 0, 1000);
    CHECK_EQ_INT(get_job(c2.job_id, &st).max_attempts, 5);

    /* Refused, and nothing written: another org's source, an unknown one, a range that is
     * none, a public id that is taken. */
    CHECK_EQ_INT(clip_create(src.id, "otherorg", "clip-x", 0, 1000, 0, NULL), -ENOENT);
    CHECK_EQ_INT(clip_create(src.id + 1000000, "cliporg", "clip-x", 0, 1000, 0, NULL), -ENOENT);
    CHECK_EQ_INT(clip_create(src.id, "cliporg", "clip-x", 1000, 1000, 0, NULL), -EINVAL);
    CHECK_EQ_INT(clip_create(src.id, "cliporg", "clip-x", -1, 1000, 0, NULL), -EINVAL);
    CHECK_EQ_INT(clip_create(0, "cliporg", "clip-x", 0, 1000, 0, NULL), -EINVAL);
    CHECK_EQ_INT(clip_create(src.id, "cliporg", "", 0, 1000, 0, NULL), -EINVAL);
    CHECK_EQ_INT(clip_create(src.id, "cliporg", "clip-1", 0, 2000, 0, NULL), -EINVAL);
    CHECK_EQ_INT(find_asset("clip-x", "", NULL), -ENOENT);
    CHECK_EQ_INT(org_active("cliporg"), 2);

    /* Deleting the source leaves its clips and their jobs as they were; they still name it.
     * A deleted source takes no more clips. */
    int newly = 0;
    rd_asset gone;
    CHECK_EQ_INT(delete_asset("clip-src", "cliporg", &gone, &newly), 0);
    CHECK_EQ_INT(newly, 1);
    CHECK_EQ_INT(find_asset("clip-1", "cliporg", &got), 0);
    expect_clip(&got, &c, &src, 1500, 4000);
    CHECK_EQ_STR(got.state, "processing");
    CHECK_EQ_INT(got.deleted_ms, 0);
    CHECK_EQ_INT(get_job(c.job_id, &st).state, JOB_QUEUED);
    CHECK_EQ_INT(get_job(c2.job_id, &st).state, JOB_QUEUED);
    CHECK_EQ_INT(clip_create(src.id, "cliporg", "clip-late", 0, 1000, 0, NULL), -ENOENT);
    n = list_assets("cliporg", "", 0, 32, rows, &next);
    CHECK(n == 2 && has(rows, n, "clip-1") && has(rows, n, "clip-2") && !has(rows, n, "clip-src"));
    /* A deleted clip as the deletion and the edges read it: still with its source. */
    CHECK_EQ_INT(delete_asset("clip-2", "cliporg", &got, &newly), 0);
    expect_clip(&got, &c2, &src, 0, 1000);
    CHECK_EQ_INT(get_job(c2.job_id, &st).state, JOB_CANCELLED); /* its own job stops */
    n = deletions(STORE_ASSET_DELETED, gone.deleted_ms - 1, 0, 0, rows);
    for (int i = 0; i < n; i++)
        if (strcmp(rows[i].public_id, "clip-2") == 0)
            expect_clip(&rows[i], &c2, &src, 0, 1000);
    CHECK(has(rows, n, "clip-2") && has(rows, n, "clip-src"));

    /* The clip's transcode ends as any asset's: ready, with asset.ready. */
    CHECK_EQ_INT(claim("w-clip", 30000, 1, c.job_id, &run), 1);
    CHECK_EQ_INT(fenced(STORE_JOB_COMPLETE, "w-clip", &run, 0, NULL), JOB_SUCCEEDED);
    rd_job hooks[8];
    n = claim_hooks("webhook", 8, hooks);
    CHECK_EQ_INT(n, 1);
    if (n == 1) {
        rd_webhook_delivery ev;
        CHECK_EQ_INT(webhook_event(hooks[0].asset_id, &ev, NULL), 0);
        CHECK_EQ_STR(ev.type, "asset.ready");
        CHECK_EQ_STR(ev.asset_public, "clip-1");
        CHECK_EQ_INT(ev.asset_id, c.id);
        CHECK_EQ_INT(fenced(STORE_JOB_COMPLETE, "hooks", &hooks[0], 0, NULL), JOB_SUCCEEDED);
    }
    CHECK_EQ_INT(find_asset("clip-1", "cliporg", &got), 0);
    CHECK_EQ_STR(got.state, "ready");
    expect_clip(&got, &c, &src, 1500, 4000);
    CHECK_EQ_INT(webhook_op(STORE_WEBHOOK_DELETE, "cliporg", NULL, NULL, NULL), 0);
    drain();
}

TEST(migration_to_schema_9_keeps_assets_as_uploads)
{
    CHECK(schema8_seeded); /* a schema-8 database with an asset was upgraded */
    if (!schema8_seeded)
        return;
    drain();
    rd_asset got, c;
    CHECK_EQ_INT(find_asset("aold8", "eight", &got), 0);
    CHECK_EQ_STR(got.state, "ready");
    CHECK_EQ_INT(got.size_bytes, 88);
    CHECK(got.source_id == 0 && got.source_start_ms == 0 && got.source_end_ms == 0);
    CHECK_EQ_STR(got.source_public, "");
    CHECK_EQ_STR(got.source_master, "");
    CHECK_EQ_INT(clip_create(got.id, "eight", "clip-8", 0, 500, 1, &c), 0);
    expect_clip(&c, &c, &got, 0, 500);
    CHECK_EQ_STR(c.source_master, "masters/aold8");
    drain();
}

static void suite(const char *name)
{
    backend = name;
    printf("# backend %s\n", name);
    RUN(migration_from_schema_1_keeps_old_assets);
    RUN(assets_create_get_and_page_newest_first);
    RUN(asset_find_is_by_public_id_and_org);
    RUN(asset_finds_sent_together_get_their_own_answers);
    RUN(asset_state_follows_upload_promotion_and_the_job);
    RUN(active_jobs_are_counted_per_org);
    RUN(unpromoted_uploads_expire_once);
    RUN(job_create_is_idempotent_per_asset_and_kind);
    RUN(claim_by_priority_leases_and_counts_attempts);
    RUN(claim_only_the_kinds_asked_for);
    RUN(job_options_come_back_with_the_claim);
    RUN(fencing_by_owner_and_attempt);
    RUN(release_hands_the_job_back_without_counting_the_attempt);
    RUN(expired_lease_is_taken_over_and_the_old_owner_fenced_out);
    RUN(failures_retry_after_the_delay_then_die_with_the_last_error);
    RUN(cancel_queued_running_finished_and_unknown);
    RUN(list_by_state_with_cursor);
    RUN(counts_sweep_and_due);
    RUN(webhook_events_are_written_with_their_cause);
    RUN(deleted_assets_vanish_cancel_their_job_and_reach_the_edges);
    RUN(caption_tracks_by_lang_with_a_version);
    RUN(exports_are_created_once_per_request_with_their_job);
    RUN(migration_from_schema_6_keeps_captions_and_takes_exports);
    RUN(export_events_are_written_with_the_export_outcome);
    RUN(migration_to_schema_8_keeps_webhook_events);
    RUN(clips_are_assets_cut_from_another_with_their_job);
    RUN(migration_to_schema_9_keeps_assets_as_uploads);
    RUN(jobs_table_grown_past_its_statistics_is_analyzed);
    RUN(server_warnings_are_log_lines);
}

/* Runs `sql` on the database as it is (an older schema). 0 or -1. */
static int seed(const rd_config *cfg, const char *sql)
{
    if (cfg->postgres_url != NULL) {
        PGconn *c = PQconnectdb(cfg->postgres_url);
        PGresult *r = PQexec(c, sql);
        int ok = PQresultStatus(r) == PGRES_COMMAND_OK;
        if (!ok)
            printf("# seeding postgres: %s", PQerrorMessage(c));
        PQclear(r);
        PQfinish(c);
        return ok ? 0 : -1;
    }
    char path[256];
    snprintf(path, sizeof(path), "%s/reeld.db", cfg->data_dir);
    sqlite3 *db;
    int rc = sqlite3_open(path, &db);
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
    if (rc != SQLITE_OK)
        printf("# seeding sqlite: %s\n", sqlite3_errmsg(db));
    sqlite3_close(db);
    return rc == SQLITE_OK ? 0 : -1;
}

static int with_store(rd_config *cfg, const char *name)
{
    char err[512];
    /* First as older reelds left it, with rows (schema 1, then 6, 7 and 8), then upgraded. */
    int r = store_migrate_to(cfg, 1, err, sizeof(err));
    legacy_seeded = r == 0 && seed(cfg, legacy_sql) == 0;
    if (r == 0)
        r = store_migrate_to(cfg, 6, err, sizeof(err));
    schema6_seeded = r == 0 && seed(cfg, schema6_sql) == 0;
    if (r == 0)
        r = store_migrate_to(cfg, 7, err, sizeof(err));
    schema7_seeded = r == 0 && seed(cfg, schema7_sql) == 0;
    if (r == 0)
        r = store_migrate_to(cfg, 8, err, sizeof(err));
    schema8_seeded = r == 0 && seed(cfg, schema8_sql) == 0;
    if (r == 0)
        r = store_migrate(cfg, err, sizeof(err));
    if (r == 0)
        r = store_migrate(cfg, err, sizeof(err)); /* twice: the second is a no-op */
    if (r < 0) {
        printf("not ok migrate_%s: %s\n", name, err);
        test_failed++;
        return r;
    }
    rd_loop *loop;
    loop_create(&loop, 0, -1);
    loop_start(loop);
    rd_actor *store;
    store_spawn(cfg, loop, &store);
    store_client_create(loop, store, &client);
    store_loop = loop;
    store_actor = store;
    suite(name);
    store_client_destroy(client);
    loop_stop(loop, rd_now_ns() + 2000000000ull);
    loop_join(loop);
    store_free(store);
    loop_destroy(loop);
    return 0;
}

int main(void)
{
    char dir[] = "/tmp/reeld-store-test-XXXXXX";
    if (mkdtemp(dir) == NULL)
        return 1;
    rd_config cfg = {.data_dir = dir};
    with_store(&cfg, "sqlite");
    char path[128];
    snprintf(path, sizeof(path), "%s/reeld.db", dir);
    unlink(path);
    snprintf(path, sizeof(path), "%s/reeld.db-wal", dir);
    unlink(path);
    snprintf(path, sizeof(path), "%s/reeld.db-shm", dir);
    unlink(path);
    rmdir(dir);

    const char *pg = getenv("REELD_TEST_POSTGRES_URL");
    if (pg != NULL && pg[0] != '\0') {
        rd_config pcfg = {.postgres_url = pg, .pg_pool = 4};
        pg_url = pg;
        with_store(&pcfg, "postgres");
    } else {
        printf("skip postgres: REELD_TEST_POSTGRES_URL is not set (the integration suite sets"
               " it)\n");
    }
    actor_free_all();
    return test_summary();
}
