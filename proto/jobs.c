/* Names of job states, as the store keeps them and the API shows them. */
#include "proto/jobs.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "proto/json.h"

static const char *const state_names[JOB_STATE_COUNT] = {
    [JOB_STATE_NONE] = "",         [JOB_QUEUED] = "queued", [JOB_RUNNING] = "running",
    [JOB_SUCCEEDED] = "succeeded", [JOB_FAILED] = "failed", [JOB_CANCELLED] = "cancelled",
    [JOB_DEAD] = "dead",
};

const char *job_state_name(int state)
{
    return state > 0 && state < JOB_STATE_COUNT ? state_names[state] : "";
}

int job_state_parse(const char *name, size_t len)
{
    for (int i = 1; i < JOB_STATE_COUNT; i++)
        if (strlen(state_names[i]) == len && memcmp(state_names[i], name, len) == 0)
            return i;
    return JOB_STATE_NONE;
}

/* "progress": P with P per cent to one decimal, from per mille (1000 → 100.0). */
static void put_progress(json_writer *w, int64_t permille)
{
    if (permille < 0)
        permille = 0;
    if (permille > 1000)
        permille = 1000;
    char v[24];
    int n =
        snprintf(v, sizeof(v), "%lld.%lld", (long long)(permille / 10), (long long)(permille % 10));
    json_key(w, "progress");
    json_raw(w, v, (size_t)n);
}

/* "name": "2024-01-02T03:04:05Z" from Unix milliseconds. */
static void put_time(json_writer *w, const char *name, int64_t ms)
{
    struct tm tm;
    time_t t = (time_t)(ms / 1000);
    char iso[32];
    gmtime_r(&t, &tm);
    strftime(iso, sizeof(iso), "%Y-%m-%dT%H:%M:%SZ", &tm);
    json_key(w, name);
    json_str(w, iso);
}

/* "name": seconds with milliseconds (12.345), from milliseconds. */
static void put_seconds(json_writer *w, const char *name, int64_t ms)
{
    char v[32];
    int n = snprintf(v, sizeof(v), "%lld.%03lld", (long long)(ms / 1000), (long long)(ms % 1000));
    json_key(w, name);
    json_raw(w, v, (size_t)n);
}

/* "name": "123": ids travel as strings (JavaScript's numbers stop at 2^53). */
static void put_id(json_writer *w, const char *name, int64_t id)
{
    char v[24];
    snprintf(v, sizeof(v), "%lld", (long long)id);
    json_key(w, name);
    json_str(w, v);
}

static void put_int(json_writer *w, const char *name, int64_t v)
{
    json_key(w, name);
    json_int64(w, v);
}

static void job_write(json_writer *w, const rd_job *j)
{
    json_object_begin(w);
    put_id(w, "id", j->id);
    put_id(w, "asset_id", j->asset_id);
    json_key(w, "kind");
    json_str(w, j->kind);
    json_key(w, "state");
    json_str(w, job_state_name(j->state));
    put_int(w, "priority", j->priority);
    put_int(w, "attempts", j->attempts);
    put_int(w, "max_attempts", j->max_attempts);
    put_progress(w, j->state == JOB_SUCCEEDED ? 1000 : j->progress);
    put_int(w, "run_after_ms", j->run_after_ms);
    json_key(w, "lease_owner");
    json_str(w, j->lease_owner);
    put_int(w, "lease_expires_ms", j->lease_expires_ms);
    json_key(w, "error");
    json_str(w, j->error);
    put_int(w, "created_ms", j->created_ms);
    put_int(w, "updated_ms", j->updated_ms);
    json_object_end(w);
}

static void asset_write(json_writer *w, const rd_asset *a)
{
    json_object_begin(w);
    json_key(w, "asset_id");
    json_str(w, a->public_id);
    json_key(w, "org");
    json_str(w, a->org);
    json_key(w, "state");
    json_str(w, a->state);
    if (a->job_id != 0) {
        put_progress(w, a->job_state == JOB_SUCCEEDED ? 1000 : a->job_progress);
        put_int(w, "attempts", a->job_attempts);
        if (a->job_error[0] && a->job_state != JOB_SUCCEEDED) {
            json_key(w, "error");
            json_str(w, a->job_error);
        }
    }
    json_key(w, "filename");
    json_str(w, a->filename);
    json_key(w, "content_type");
    json_str(w, a->content_type);
    put_int(w, "size", a->size_bytes);
    put_time(w, "created_at", a->created_ms);
    put_time(w, "updated_at", a->updated_ms);
    if (a->job_id != 0)
        put_id(w, "job_id", a->job_id);
    if (a->source_id != 0) { /* a clip: what it was cut from */
        json_key(w, "source");
        json_object_begin(w);
        json_key(w, "asset_id");
        json_str(w, a->source_public);
        put_seconds(w, "start", a->source_start_ms);
        put_seconds(w, "end", a->source_end_ms);
        json_object_end(w);
    }
    json_object_end(w);
}

int job_json(char *buf, size_t cap, const rd_job *j)
{
    json_writer w;
    json_writer_init(&w, buf, cap);
    job_write(&w, j);
    return json_writer_finish(&w);
}

int asset_json(char *buf, size_t cap, const rd_asset *a)
{
    json_writer w;
    json_writer_init(&w, buf, cap);
    asset_write(&w, a);
    return json_writer_finish(&w);
}

int queue_counts_json(char *buf, size_t cap, const rd_queue_counts *c)
{
    json_writer w;
    json_writer_init(&w, buf, cap);
    json_object_begin(&w);
    put_int(&w, "waiting", c->waiting);
    put_int(&w, "active", c->active);
    put_int(&w, "completed", c->completed);
    put_int(&w, "failed", c->failed);
    put_int(&w, "dead", c->dead);
    if (c->stream_length >= 0) {
        put_int(&w, "stream_length", c->stream_length);
        put_int(&w, "stream_pending", c->stream_pending);
    }
    json_object_end(&w);
    return json_writer_finish(&w);
}

static const char b64url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

int job_cursor_encode(char *out, char list, int64_t last_id)
{
    char raw[24];
    int n = snprintf(raw, sizeof(raw), "%c%lld", list, (long long)last_id);
    int len = 0;
    for (int i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)(unsigned char)raw[i] << 16;
        if (i + 1 < n)
            v |= (uint32_t)(unsigned char)raw[i + 1] << 8;
        if (i + 2 < n)
            v |= (uint32_t)(unsigned char)raw[i + 2];
        int chars = i + 2 < n ? 4 : i + 1 < n ? 3 : 2;
        for (int k = 0; k < chars; k++)
            out[len++] = b64url[(v >> (18 - 6 * k)) & 63];
    }
    out[len] = '\0';
    return len;
}

static int b64_value(char c)
{
    const char *p = c ? strchr(b64url, c) : NULL;
    return p ? (int)(p - b64url) : -1;
}

int job_cursor_decode(const char *in, size_t len, char list, int64_t *last_id)
{
    *last_id = 0;
    if (len == 0)
        return 0;
    if (len > RD_CURSOR_MAX || len % 4 == 1)
        return -EINVAL;
    char raw[RD_CURSOR_MAX];
    size_t n = 0;
    for (size_t i = 0; i < len; i += 4) {
        uint32_t v = 0;
        size_t chars = len - i < 4 ? len - i : 4;
        for (size_t k = 0; k < 4; k++) {
            int d = k < chars ? b64_value(in[i + k]) : 0;
            if (d < 0)
                return -EINVAL;
            v = v << 6 | (uint32_t)d;
        }
        for (size_t k = 0; k + 1 < chars; k++)
            raw[n++] = (char)(v >> (16 - 8 * k));
    }
    if (n < 2 || raw[0] != list)
        return -EINVAL;
    int64_t id = 0;
    for (size_t i = 1; i < n; i++) {
        if (raw[i] < '0' || raw[i] > '9' || id > (INT64_MAX - (raw[i] - '0')) / 10)
            return -EINVAL;
        id = id * 10 + (raw[i] - '0');
    }
    if (raw[1] == '0' && n > 2)
        return -EINVAL; /* one spelling per cursor */
    *last_id = id;
    return 0;
}

void queue_counts_add(rd_queue_counts *c, int state, int64_t n)
{
    switch (state) {
    case JOB_QUEUED:
        c->waiting += n;
        break;
    case JOB_RUNNING:
        c->active += n;
        break;
    case JOB_SUCCEEDED:
        c->completed += n;
        break;
    case JOB_FAILED:
    case JOB_CANCELLED:
        c->failed += n;
        break;
    case JOB_DEAD:
        c->dead += n;
        break;
    }
}

size_t page_json(char *buf, size_t cap, const struct rd_msg_store *b, char list)
{
    json_writer w;
    json_writer_init(&w, buf, cap);
    json_object_begin(&w);
    json_key(&w, list == 'a' ? "assets" : "jobs");
    json_array_begin(&w);
    for (uint32_t i = 0; i < b->n; i++) {
        if (list == 'a')
            asset_write(&w, &b->assets[i]);
        else
            job_write(&w, &b->jobs[i]);
    }
    json_array_end(&w);
    json_key(&w, "next_cursor");
    if (b->cursor != 0) {
        char next[RD_CURSOR_MAX];
        job_cursor_encode(next, list, b->cursor);
        json_str(&w, next);
    } else {
        json_raw(&w, "null", 4);
    }
    json_object_end(&w);
    int n = json_writer_finish(&w);
    return n < 0 ? 0 : (size_t)n;
}
