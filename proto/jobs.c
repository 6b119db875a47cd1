/* Names of job states, as the store keeps them and the API shows them. */
#include "proto/jobs.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

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

/* Appends `s` as a JSON string (quoted, escaped). */
static void put_str(char *buf, size_t cap, size_t *len, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    char tmp[8];
    if (*len < cap)
        buf[(*len)++] = '"';
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        const char *e = NULL;
        size_t n = 1;
        if (c == '"' || c == '\\') {
            tmp[0] = '\\';
            tmp[1] = (char)c;
            e = tmp;
            n = 2;
        } else if (c < 0x20) {
            memcpy(tmp, "\\u00", 4);
            tmp[4] = hex[c >> 4];
            tmp[5] = hex[c & 15];
            e = tmp;
            n = 6;
        }
        for (size_t i = 0; i < n; i++)
            if (*len < cap)
                buf[(*len)++] = e ? e[i] : (char)c;
    }
    if (*len < cap)
        buf[(*len)++] = '"';
}

static void put_raw(char *buf, size_t cap, size_t *len, const char *fmt, long long v)
{
    int n = snprintf(buf + (*len < cap ? *len : cap), *len < cap ? cap - *len : 0, fmt, v);
    *len += (size_t)n;
}

static void put_lit(char *buf, size_t cap, size_t *len, const char *s)
{
    for (; *s; s++)
        if (*len < cap)
            buf[(*len)++] = *s;
}

/* ,"progress":P with P per cent to one decimal, from per mille (1000 → 100.0). */
static void put_progress(char *buf, size_t cap, size_t *len, int64_t permille)
{
    if (permille < 0)
        permille = 0;
    if (permille > 1000)
        permille = 1000;
    put_raw(buf, cap, len, ",\"progress\":%lld", (long long)(permille / 10));
    put_raw(buf, cap, len, ".%lld", (long long)(permille % 10));
}

/* ,"name":"2024-01-02T03:04:05Z" from Unix milliseconds. */
static void put_time(char *buf, size_t cap, size_t *len, const char *name, int64_t ms)
{
    struct tm tm;
    time_t t = (time_t)(ms / 1000);
    char iso[32];
    gmtime_r(&t, &tm);
    strftime(iso, sizeof(iso), "%Y-%m-%dT%H:%M:%SZ", &tm);
    put_lit(buf, cap, len, ",\"");
    put_lit(buf, cap, len, name);
    put_lit(buf, cap, len, "\":\"");
    put_lit(buf, cap, len, iso);
    put_lit(buf, cap, len, "\"");
}

static int finish_json(char *buf, size_t cap, size_t len)
{
    if (len + 1 >= cap)
        return -ENOSPC;
    buf[len] = '\0';
    return (int)len;
}

int job_json(char *buf, size_t cap, const rd_job *j)
{
    size_t len = 0;
    put_raw(buf, cap, &len, "{\"id\":\"%lld\",\"asset_id\":", (long long)j->id);
    put_raw(buf, cap, &len, "\"%lld\",\"kind\":", (long long)j->asset_id);
    put_str(buf, cap, &len, j->kind);
    put_lit(buf, cap, &len, ",\"state\":");
    put_str(buf, cap, &len, job_state_name(j->state));
    put_raw(buf, cap, &len, ",\"priority\":%lld", j->priority);
    put_raw(buf, cap, &len, ",\"attempts\":%lld", j->attempts);
    put_raw(buf, cap, &len, ",\"max_attempts\":%lld", j->max_attempts);
    put_progress(buf, cap, &len, j->state == JOB_SUCCEEDED ? 1000 : j->progress);
    put_raw(buf, cap, &len, ",\"run_after_ms\":%lld", (long long)j->run_after_ms);
    put_lit(buf, cap, &len, ",\"lease_owner\":");
    put_str(buf, cap, &len, j->lease_owner);
    put_raw(buf, cap, &len, ",\"lease_expires_ms\":%lld", (long long)j->lease_expires_ms);
    put_lit(buf, cap, &len, ",\"error\":");
    put_str(buf, cap, &len, j->error);
    put_raw(buf, cap, &len, ",\"created_ms\":%lld", (long long)j->created_ms);
    put_raw(buf, cap, &len, ",\"updated_ms\":%lld}", (long long)j->updated_ms);
    return finish_json(buf, cap, len);
}

int asset_json(char *buf, size_t cap, const rd_asset *a)
{
    size_t len = 0;
    put_lit(buf, cap, &len, "{\"asset_id\":");
    put_str(buf, cap, &len, a->public_id);
    put_lit(buf, cap, &len, ",\"org\":");
    put_str(buf, cap, &len, a->org);
    put_lit(buf, cap, &len, ",\"state\":");
    put_str(buf, cap, &len, a->state);
    if (a->job_id != 0) {
        put_progress(buf, cap, &len, a->job_state == JOB_SUCCEEDED ? 1000 : a->job_progress);
        put_raw(buf, cap, &len, ",\"attempts\":%lld", a->job_attempts);
        if (a->job_error[0] && a->job_state != JOB_SUCCEEDED) {
            put_lit(buf, cap, &len, ",\"error\":");
            put_str(buf, cap, &len, a->job_error);
        }
    }
    put_lit(buf, cap, &len, ",\"filename\":");
    put_str(buf, cap, &len, a->filename);
    put_lit(buf, cap, &len, ",\"content_type\":");
    put_str(buf, cap, &len, a->content_type);
    put_raw(buf, cap, &len, ",\"size\":%lld", (long long)a->size_bytes);
    put_time(buf, cap, &len, "created_at", a->created_ms);
    put_time(buf, cap, &len, "updated_at", a->updated_ms);
    if (a->job_id != 0)
        put_raw(buf, cap, &len, ",\"job_id\":\"%lld\"", (long long)a->job_id);
    if (a->source_id != 0) { /* a clip: what it was cut from */
        put_lit(buf, cap, &len, ",\"source\":{\"asset_id\":");
        put_str(buf, cap, &len, a->source_public);
        put_raw(buf, cap, &len, ",\"start\":%lld", (long long)(a->source_start_ms / 1000));
        put_raw(buf, cap, &len, ".%03lld", (long long)(a->source_start_ms % 1000));
        put_raw(buf, cap, &len, ",\"end\":%lld", (long long)(a->source_end_ms / 1000));
        put_raw(buf, cap, &len, ".%03lld}", (long long)(a->source_end_ms % 1000));
    }
    put_lit(buf, cap, &len, "}");
    return finish_json(buf, cap, len);
}

int queue_counts_json(char *buf, size_t cap, const rd_queue_counts *c)
{
    size_t len = 0;
    put_raw(buf, cap, &len, "{\"waiting\":%lld", (long long)c->waiting);
    put_raw(buf, cap, &len, ",\"active\":%lld", (long long)c->active);
    put_raw(buf, cap, &len, ",\"completed\":%lld", (long long)c->completed);
    put_raw(buf, cap, &len, ",\"failed\":%lld", (long long)c->failed);
    put_raw(buf, cap, &len, ",\"dead\":%lld", (long long)c->dead);
    if (c->stream_length >= 0) {
        put_raw(buf, cap, &len, ",\"stream_length\":%lld", (long long)c->stream_length);
        put_raw(buf, cap, &len, ",\"stream_pending\":%lld", (long long)c->stream_pending);
    }
    put_lit(buf, cap, &len, "}");
    return finish_json(buf, cap, len);
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
    size_t len = (size_t)snprintf(buf, cap, "{\"%s\":[", list == 'a' ? "assets" : "jobs");
    for (uint32_t i = 0; i < b->n && len + 1 < cap; i++) {
        if (i)
            buf[len++] = ',';
        int n = list == 'a' ? asset_json(buf + len, cap - len, &b->assets[i])
                            : job_json(buf + len, cap - len, &b->jobs[i]);
        if (n > 0)
            len += (size_t)n;
    }
    char next[RD_CURSOR_MAX];
    if (b->cursor != 0 && len < cap) {
        job_cursor_encode(next, list, b->cursor);
        len += (size_t)snprintf(buf + len, cap - len, "],\"next_cursor\":\"%s\"}", next);
    } else if (len < cap) {
        len += (size_t)snprintf(buf + len, cap - len, "],\"next_cursor\":null}");
    }
    return len < cap ? len : cap - 1;
}
