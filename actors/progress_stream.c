/* The progress stream. Contract in progress_stream.h. */
#include "actors/progress_stream.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "actors/http_listener.h"
#include "proto/fnv.h"
#include "src/rt/alloc.h"
#include "src/rt/log.h"
#include "src/store/store.h"

#define STORE_WAIT_MS  5000
#define KEEPALIVE_MS   15000
#define ASSET_JSON_MAX 2048

typedef struct sse_stream {
    int used;
    int busy; /* a store request in flight */
    uint32_t gen;
    rd_actor *listener;
    uint64_t stream;
    int64_t last_sent_ms;
    uint32_t last_hash; /* of the asset's JSON last sent (0: none yet) */
    int64_t floor_id;   /* events with a smaller id are not sent (they were seen) */
    char public_id[RD_ASSET_ID_MAX];
    char org[64];
} sse_stream;

typedef struct sse {
    rd_actor *self;
    rd_actor *dispatcher;
    int poll_ms;
    rd_timer tick;
    sse_stream s[PROGRESS_STREAMS_MAX];
} sse;

typedef struct sse_arg {
    rd_actor *dispatcher;
    int poll_ms;
} sse_arg;

static uint32_t fnv(const char *p, size_t n)
{
    uint32_t h = fnv1a32(FNV32_BASIS, p, n);
    return h ? h : 1; /* 0 means "nothing sent yet" */
}

/* ---- places: counted here, taken by the API threads ---- */

#define ORG_BUCKETS 1024 /* orgs hash into these; two orgs in one bucket share its bound */

static _Atomic int places_total;
static _Atomic int places_org[ORG_BUCKETS];

static _Atomic int *org_bucket(const char *org)
{
    return &places_org[fnv(org, strlen(org)) % ORG_BUCKETS];
}

int progress_stream_admit(const char *org, int per_org)
{
    if (atomic_fetch_add(&places_total, 1) >= PROGRESS_STREAMS_MAX) {
        atomic_fetch_sub(&places_total, 1);
        return -EBUSY;
    }
    _Atomic int *b = org_bucket(org);
    if (atomic_fetch_add(b, 1) >= per_org) {
        atomic_fetch_sub(b, 1);
        atomic_fetch_sub(&places_total, 1);
        return -EUSERS;
    }
    return 0;
}

void progress_stream_release(const char *org)
{
    atomic_fetch_sub(org_bucket(org), 1);
    atomic_fetch_sub(&places_total, 1);
}

int progress_asset_final(const rd_asset *a)
{
    return a->job_state == JOB_SUCCEEDED || strcmp(a->state, "failed") == 0 ||
           strcmp(a->state, "expired") == 0;
}

int64_t progress_event_id(const rd_asset *a)
{
    int64_t permille = a->job_progress < 0 ? 0 : a->job_progress > 1000 ? 1000 : a->job_progress;
    if (progress_asset_final(a))
        permille = 1000;
    return (int64_t)(a->job_attempts < 0 ? 0 : a->job_attempts) * 1001 + permille;
}

static int64_t now_ms(void)
{
    return (int64_t)(rd_now_ns() / 1000000);
}

/* Frees the slot and gives its place back. */
static void stream_end(sse_stream *s)
{
    if (!s->used)
        return;
    s->used = 0;
    progress_stream_release(s->org);
}

/* Sends `text` on the stream; `last` ends it (and frees the slot). */
static void send_text(sse *e, sse_stream *s, const char *text, size_t len, int last)
{
    rd_buf *b = NULL;
    if (len > 0) {
        b = buf_new(len);
        memcpy(b->data, text, len);
        b->len = len;
    }
    if (http_send_part(s->listener, s->stream, b, last, last ? NULL : e->self) < 0)
        last = 1; /* the listener is gone */
    s->last_sent_ms = now_ms();
    if (last)
        stream_end(s);
}

static int asset_answered(rd_actor *self, rd_msg *reply, int err, void *ctx)
{
    sse *e = self->state;
    uintptr_t c = (uintptr_t)ctx;
    sse_stream *s = &e->s[c % PROGRESS_STREAMS_MAX];
    int st = err < 0 ? err : msg_body(reply, store)->status;
    if (s->used && s->gen == (uint32_t)(c / PROGRESS_STREAMS_MAX)) {
        s->busy = 0;
        if (st == -ENOENT) {
            static const char gone[] = "event: error\ndata: {\"code\":\"not_found\"}\n\n";
            send_text(e, s, gone, sizeof(gone) - 1, 1);
        } else if (st == 0) {
            const rd_asset *a = &msg_body(reply, store)->assets[0];
            int final = progress_asset_final(a);
            int64_t id = progress_event_id(a);
            char text[ASSET_JSON_MAX + 96];
            int n = snprintf(text, sizeof(text), "event: %s\nid: %lld\ndata: ",
                             !final                          ? "progress"
                             : a->job_state == JOB_SUCCEEDED ? "ready"
                                                             : "failed",
                             (long long)id);
            int j = asset_json(text + n, sizeof(text) - (size_t)n - 4, a);
            if (j > 0) {
                uint32_t h = fnv(text + n, (size_t)j);
                n += j;
                memcpy(text + n, "\n\n", 3);
                n += 2;
                /* A change, and nothing the client saw before it reconnected; the end is
                 * always sent (the API answered 204 if the client had seen it). */
                if (final || (h != s->last_hash && id >= s->floor_id)) {
                    s->last_hash = h;
                    s->floor_id = id;
                    send_text(e, s, text, (size_t)n, 0);
                }
            }
            if (final && s->used)
                send_text(e, s, NULL, 0, 1); /* ready or failed: the stream ends */
        }
        /* A store that fails is asked again at the next tick. */
    }
    msg_free(reply);
    return RD_DONE;
}

static void poll_one(sse *e, sse_stream *s)
{
    if (!s->used || s->busy)
        return;
    rd_msg *q = store_request(STORE_ASSET_FIND);
    rd_asset *a = &msg_body(q, store)->assets[0];
    snprintf(a->public_id, sizeof(a->public_id), "%s", s->public_id);
    snprintf(a->org, sizeof(a->org), "%s", s->org);
    uintptr_t ctx = (uintptr_t)(s - e->s) + (uintptr_t)s->gen * PROGRESS_STREAMS_MAX;
    s->busy = 1;
    if (actor_request(e->self, e->dispatcher, q, STORE_WAIT_MS, asset_answered, (void *)ctx) < 0) {
        msg_free(q);
        s->busy = 0;
    }
}

static void tick(rd_timer *t)
{
    sse *e = (sse *)((char *)t - offsetof(sse, tick));
    int64_t now = now_ms();
    for (int i = 0; i < PROGRESS_STREAMS_MAX; i++) {
        sse_stream *s = &e->s[i];
        if (!s->used)
            continue;
        if (now - s->last_sent_ms >= KEEPALIVE_MS)
            send_text(e, s, ": keep-alive\n\n", 14, 0);
        poll_one(e, s);
    }
}

static void on_open(sse *e, const struct rd_msg_sse_open *o)
{
    sse_stream *s = NULL;
    for (int i = 0; i < PROGRESS_STREAMS_MAX && s == NULL; i++)
        if (!e->s[i].used)
            s = &e->s[i];
    if (s == NULL) { /* cannot happen: the API took a place (at most PROGRESS_STREAMS_MAX) */
        static const char full[] = "event: error\ndata: {\"code\":\"too_many_streams\"}\n\n";
        sse_stream tmp = {.used = 1, .listener = o->listener, .stream = o->stream};
        snprintf(tmp.org, sizeof(tmp.org), "%s", o->org);
        send_text(e, &tmp, full, sizeof(full) - 1, 1);
        return;
    }
    uint32_t gen = s->gen + 1;
    memset(s, 0, sizeof(*s));
    s->gen = gen;
    s->used = 1;
    s->listener = o->listener;
    s->stream = o->stream;
    s->last_sent_ms = now_ms();
    s->floor_id = o->last_event_id + 1; /* -1 (none): everything */
    snprintf(s->public_id, sizeof(s->public_id), "%s", o->public_id);
    snprintf(s->org, sizeof(s->org), "%s", o->org);
    /* The retry hint for EventSource, then the asset as it is now. */
    send_text(e, s, "retry: 2000\n\n", 13, 0);
    poll_one(e, s);
}

static int sse_handle(rd_actor *self, rd_msg *m)
{
    sse *e = self->state;
    if (m->type == MSG_SSE_OPEN) {
        on_open(e, msg_body(m, sse_open));
    } else if (m->type == MSG_HTTP_PART_ACK && msg_body(m, http_part_ack)->failed) {
        for (int i = 0; i < PROGRESS_STREAMS_MAX; i++)
            if (e->s[i].used && e->s[i].stream == msg_body(m, http_part_ack)->stream)
                stream_end(&e->s[i]); /* the client is gone */
    }
    return RD_DONE;
}

static int sse_init(rd_actor *self, void *arg)
{
    const sse_arg *a = arg;
    sse *e = rd_calloc(1, sizeof(*e), "the progress streams");
    e->self = self;
    e->dispatcher = a->dispatcher;
    e->poll_ms = a->poll_ms;
    e->tick.fire = tick;
    self->state = e;
    loop_timer_start(self->loop, &e->tick, (uint64_t)e->poll_ms * 1000000ull,
                     (uint64_t)e->poll_ms * 1000000ull);
    return 0;
}

static void sse_fini(rd_actor *self)
{
    sse *e = self->state;
    if (e == NULL)
        return;
    loop_timer_cancel(self->loop, &e->tick);
    free(e);
    self->state = NULL;
}

static const rd_actor_def sse_def = {
    .name = "progress-stream",
    .init = sse_init,
    .handle = sse_handle,
    .fini = sse_fini,
};

int progress_stream_spawn(rd_loop *loop, rd_actor *dispatcher, int poll_ms, rd_actor **out)
{
    static sse_arg arg; /* one per process: outlives the actor */
    arg.dispatcher = dispatcher;
    arg.poll_ms = poll_ms > 0 ? poll_ms : 500;
    return actor_spawn(loop, &sse_def, &arg, out);
}

void progress_stream_free(rd_actor *a)
{
    if (a == NULL)
        return;
    free(a->state);
    a->state = NULL;
}
