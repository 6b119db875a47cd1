/* The upload → promote API: a front per loop (a loop actor) answers every route, each
 * request an asynchronous chain of store requests and object storage requests on the front's
 * loop, and the first loop's front runs the sweeps on a timer. No thread (actors/api.h).
 *
 * owns:  the fronts' shared state: the rate-limit buckets, the parsed API keys (as SHA-256
 *        digests), the URL signer, the blob backend (and in S3 mode its clients and TLS
 *        anchors: object storage is reached only through src/blob/aio.h, and its blocking
 *        face blob.h for the start's Object Lock check, never by S3 calls of its own), the
 *        cache of what done jobs published, the sweep's timer.
 *        No asset: the store is the truth. Every route reads the asset's row (by its public id
 *        and the caller's org) and writes what changed before it answers, so a restart, or
 *        another node on the same store, sees the same asset.
 * takes: MSG_HTTP_REQUEST for the routes in api.h.
 * sends: MSG_HTTP_RESPONSE replies to the listener that asked. MSG_STORE (actor_request) to
 *        the store: STORE_ASSET_FIND, _LIST, _CREATE, _UPDATE, _DELETE, _PURGED, _PURGE_DUE,
 *        _EXPIRE, STORE_ORG_ACTIVE_JOBS, STORE_JOB_CREATE, STORE_EXPORT_GET, _CREATE,
 *        STORE_CLIP_CREATE, STORE_CAPTION_LIST, _PUT, _DELETE, STORE_WEBHOOK_LIST, _GET,
 *        _PUT, _DELETE and _ROTATE; MSG_JOB_CANCEL (an export's) to the dispatcher;
 *        MSG_SSE_OPEN to the progress streams. Object storage requests to the blob store on
 *        the front's own loop: the HEADs of a ready asset's outputs, a new upload's multipart
 *        start (and its abort, when the row fails) and completion, a promote's HEAD and copy
 *        to masters, the GETs of a source's playlists (exports, clips, captions), a caption
 *        track's PUTs and the master's GET and PUT, a deleted asset's or track's LIST and
 *        deletes, an expired upload's abort and delete.
 * never: blocks a loop (a front only sends and answers); answers a request before
 * auth and the rate limits have passed (OPTIONS preflights and /api/docs aside); tells one org that
 * another org's asset exists (404, as for a missing one); shows the store's own numeric asset ids;
 * compares a key or a signature with memcmp; logs a token, a key or a signed URL's signature.
 *
 * Clients: the rate-limit client of an authenticated request is its org (all its keys and
 * tokens share the buckets); in the open embedded mode it is the client's IP address. Failed
 * authentication (401) is counted per client IP address (RL_AUTH_FAIL_*): once an address has
 * spent its failures, its requests get 429 before their credentials are even checked, so
 * guessing keys stops there and a right guess is not told apart by a 200. */
#include "actors/api.h"

#include <errno.h>
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>

#include "actors/progress_stream.h"
#include "proto/captions.h"
#include "proto/cors.h"
#include "proto/edge_token.h"
#include "proto/hls.h"
#include "proto/thumb.h"
#include "proto/hmac.h"
#include "proto/json.h"
#include "proto/jwt.h"
#include "proto/webhook.h"
#include "src/blob/backend.h"
#include "src/edge/edgekey.h"
#include "src/net/tls.h"
#include "src/ratelimit.h"
#include "src/store/store.h"
#include "src/rt/alloc.h"
#include "src/rt/assets.h"
#include "src/rt/log.h"
#include "src/rt/metrics.h"
#include "src/urlsign.h"

#define API_MAX_KEYS   64
#define API_BODY_LIMIT (64 * 1024) /* JSON request bodies (a 10000-part completion fits) */
#define API_MAX_PARTS  10000       /* S3's limit */
#define JWT_LEEWAY_S   30
#define ORG_MAX        64
#define STORE_WAIT_MS  5000 /* a store call's deadline */
#define JOB_ATTEMPTS   3

enum { RL_ALL, RL_PRESIGN, RL_PROMOTE, RL_AUTH_FAIL };
enum {
    R_UPLOADS,
    R_COMPLETE,
    R_PROMOTE,
    R_ASSET,
    R_PLAYBACK,
    R_LIST,
    R_DOCS,
    R_WEBHOOK,
    R_WH_ROTATE,
    R_WH_DELIVERIES,
    R_EVENTS,
    R_CAPTION,       /* PUT, DELETE /api/assets/{id}/captions/{lang} */
    R_CAPTIONS,      /* GET /api/assets/{id}/captions */
    R_EXPORTS,       /* POST /api/assets/{id}/exports */
    R_EXPORT,        /* GET /api/exports/{id} */
    R_EXPORT_CANCEL, /* POST /api/exports/{id}/cancel */
    R_CLIPS,         /* POST /api/assets/{id}/clips */
    R_COUNT
};

/* What a succeeded job published, by job id: (job id << 8) | 0x80 | bit i for outputs[i]; 0 is
 * empty. One word per entry, so the fronts of every loop share it without a lock. */
#define OUTPUTS_CACHE 1024

typedef struct sweeper sweeper;

typedef struct api_key {
    char org[ORG_MAX];
    uint8_t digest[HMAC_SHA256_LEN]; /* SHA-256 of the key: compared in constant time */
} api_key;

typedef struct api {
    rd_config cfg;
    urlsign sign;
    blob_backend backend;
    ratelimit *rl;
    rd_actor *sse;       /* the progress streams (GET /api/assets/{id}/events) */
    edge_keyring edge;   /* signs playback links the edge (actors/cache_manager.c) checks */
    char edge_base[512]; /* EDGE_PUBLIC_BASE, or http://REELD_LISTEN; no '/' at the end */
    api_key keys[API_MAX_KEYS];
    int nkeys;
    int open_mode;    /* no keys, no JWT secret: loopback clients only, org "local" */
    cors_policy cors; /* ALLOWED_ORIGINS */
    _Atomic uint64_t outputs_cache[OUTPUTS_CACHE]; /* a done job's outputs */
    rd_actor *store_actor; /* the store itself: the front's reads skip the dispatcher's hop */
    rd_actor *dispatcher;  /* the fronts' job cancels */
    rd_series *m_expired;
    rd_series *m_deleted;
    sweeper *sweep;  /* the fronts': expired uploads and deleted assets' objects */
    _Atomic int ops; /* front_ops in flight, every loop's (op_full) */
    uint32_t sweep_ms;
    int route[R_COUNT];
    rd_metric *m_refused;
} api;

/* The whole API: the fronts' state and the fronts. */
struct rd_api {
    api *reads;        /* the fronts' state */
    rd_actor **fronts; /* one per loop */
    int nfronts;
};

/* ---- replies ---- */

/* Replies with a JSON body (copied) and extra header lines (CORS, Retry-After, ...). */
static void reply(const rd_msg *m, int status, const char *body, size_t len, const char *headers)
{
    http_reply_headers(m, status, len || status != 204 ? "application/json" : NULL, body, len,
                       headers);
}

static void reply_error(const rd_msg *m, int status, const char *code, const char *message,
                        const char *headers)
{
    char body[512];
    int n = http1_write_error_json(body, sizeof(body), code, message);
    reply(m, status, body, n > 0 ? (size_t)n : 0, headers);
}

static void refused(api *a, int status, const char *cls)
{
    char code[8];
    snprintf(code, sizeof(code), "%d", status);
    const char *v[] = {code, cls};
    metrics_add(metrics_series(a->m_refused, v), 1);
}

static void iso_time(int64_t t, char out[32])
{
    struct tm tm;
    time_t tt = (time_t)t;
    gmtime_r(&tt, &tm);
    strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* ---- CORS ---- */

/* Header names a browser may send to the API: only these are allowed in a preflight. */
static const char *const cors_request_headers[] = {"authorization",   "content-type",     "accept",
                                                   "accept-language", "content-language", NULL};

/* ---- auth ---- */

typedef struct principal {
    char org[ORG_MAX];
    char client[80]; /* the rate-limit key */
} principal;

/* 1 for a loopback address as text (127.0.0.0/8, ::1, ::ffff:127.x). */
static int peer_is_loopback(const char *peer)
{
    if (strncmp(peer, "::ffff:", 7) == 0)
        peer += 7;
    return strncmp(peer, "127.", 4) == 0 || strcmp(peer, "::1") == 0;
}

/* From the Authorization header's value `h` (p == NULL when absent) and the client's address:
 * 0 with `p` filled, or the status (401/403) with code and message set. Reads only what is
 * fixed at start (keys, secret, mode), so the listeners' gate calls it on every loop too. */
static int authenticate(const api *a, http1_str h, const char *peer, principal *p,
                        const char **code, const char **message)
{
    memset(p, 0, sizeof(*p));
    if (a->open_mode) {
        if (!peer_is_loopback(peer)) {
            *code = "forbidden";
            *message = "Without REELD_API_KEYS or JWT_SECRET the API answers loopback clients "
                       "only.";
            return 403;
        }
        snprintf(p->org, sizeof(p->org), "local");
        snprintf(p->client, sizeof(p->client), "ip:%s", peer);
        return 0;
    }
    *code = "unauthorized";
    if (h.p == NULL || h.len < 8 || strncasecmp(h.p, "Bearer ", 7) != 0) {
        *message = "Send Authorization: Bearer <API key or JWT>.";
        return 401;
    }
    const char *tok = h.p + 7;
    size_t len = h.len - 7;
    while (len && *tok == ' ') {
        tok++;
        len--;
    }
    int dots = 0;
    for (size_t i = 0; i < len; i++)
        dots += tok[i] == '.';
    if (dots == 2 && a->cfg.jwt_secret != NULL) {
        jwt_claims c;
        int r = jwt_verify_hs256(tok, len, a->cfg.jwt_secret, strlen(a->cfg.jwt_secret),
                                 (int64_t)time(NULL), JWT_LEEWAY_S, &c);
        if (r < 0) {
            *message = jwt_strerror(r);
            return 401;
        }
        if (c.org[0] == '\0' || strlen(c.org) >= ORG_MAX) {
            *code = "forbidden";
            *message = "The token has no usable org claim.";
            return 403;
        }
        snprintf(p->org, sizeof(p->org), "%.63s", c.org);
        snprintf(p->client, sizeof(p->client), "org:%.63s", c.org);
        return 0;
    }
    /* Every key is compared, whatever matched, so the time says nothing about which. */
    uint8_t d[HMAC_SHA256_LEN];
    hmac_sha256_digest(tok, len, d);
    int found = -1;
    for (int i = 0; i < a->nkeys; i++)
        if (hmac_equal(d, a->keys[i].digest, sizeof(d)) && found < 0)
            found = i;
    if (found < 0) {
        *message = "The bearer token is not a valid API key or JWT.";
        return 401;
    }
    snprintf(p->org, sizeof(p->org), "%s", a->keys[found].org);
    snprintf(p->client, sizeof(p->client), "org:%s", a->keys[found].org);
    return 0;
}

/* The routes' gate (http_listener.h): a request with a body and no valid credentials is refused
 * from its head, so the listener never reads or buffers the body. api_handle answers it (and
 * counts the refusal) as any refused request. Runs on the loops: it reads only the keys, the
 * JWT secret and the mode, which do not change until api_destroy. */
static int api_gate(void *ctx, const http1_request *req, const char *peer)
{
    const api *a = ctx;
    if (req->method.len == 7 && memcmp(req->method.p, "OPTIONS", 7) == 0)
        return 0; /* a preflight is answered without credentials */
    const http1_header *auth = http1_find_header(req, "authorization");
    http1_str h = auth ? auth->value : (http1_str){NULL, 0};
    principal p;
    const char *code, *message;
    return authenticate(a, h, peer, &p, &code, &message);
}

/* ---- assets ---- */

/* A new public id: "a" and 24 hex digits of 96 random bits. 0 or -errno. */
static int new_public_id(char out[RD_ASSET_ID_MAX])
{
    uint8_t rnd[12];
    if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
        return -EIO;
    out[0] = 'a';
    hmac_hex(out + 1, rnd, sizeof(rnd));
    return 0;
}

/* A path id that can name an asset: 1 to 31 of [A-Za-z0-9_-] (what the store's ids are made
 * of). Anything else is no asset, without asking the store. */
static int public_id_ok(http1_str id)
{
    if (id.len == 0 || id.len >= RD_ASSET_ID_MAX)
        return 0;
    for (size_t i = 0; i < id.len; i++) {
        char c = id.p[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

/* The org whose assets a read (GET an asset, its playback link, the listing) may see: the
 * caller's. In the open embedded mode (no keys, no JWT secret: loopback clients only, the
 * operators' mode) reads see every org, as the operators' cross-org listing always did; writes
 * (complete, promote) stay with org "local" there too. */
static const char *read_org(const api *a, const principal *p)
{
    return a->open_mode ? "" : p->org;
}

/* ---- request bodies ---- */

/* Parses the JSON object body of `q` into toks; on failure replies and returns -1. */
static int json_body(const rd_msg *m, const char *cors, json_tok *toks, size_t ntoks)
{
    const rd_http_request *q = msg_body(m, http_request);
    http1_str ct = http_request_header(q, "content-type");
    if (ct.p == NULL || ct.len < 16 || strncasecmp(ct.p, "application/json", 16) != 0 ||
        (ct.len > 16 && ct.p[16] != ';' && ct.p[16] != ' ')) {
        reply_error(m, 415, "unsupported_media_type", "Send the body as application/json.", cors);
        return -1;
    }
    http1_str b = http_request_body(q);
    int n = json_parse(b.p, b.len, toks, ntoks);
    if (n < 0 || toks[0].type != JSON_OBJECT) {
        reply_error(m, 400, "invalid_json",
                    n == -ENOSPC ? "The JSON body has too many values."
                                 : "The body is not a JSON object.",
                    cors);
        return -1;
    }
    return n;
}

/* Printable ASCII only (0x20..0x7e): text that goes into HTTP header lines. */
static int header_text(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e)
            return 0;
    return 1;
}

/* The bytes of the UTF-8 sequence starting at s[0..n), or 0 when it is not strict UTF-8
 * (overlong, a surrogate, above U+10FFFF, truncated) or a C0/C1 control or DEL. */
static size_t utf8_char(const unsigned char *s, size_t n)
{
    unsigned c = s[0];
    if (c < 0x80)
        return c >= 0x20 && c != 0x7f;
    size_t len = c >= 0xc2 && c <= 0xdf   ? 2
                 : c >= 0xe0 && c <= 0xef ? 3
                 : c >= 0xf0 && c <= 0xf4 ? 4
                                          : 0;
    if (len == 0 || len > n)
        return 0;
    for (size_t i = 1; i < len; i++)
        if ((s[i] & 0xc0) != 0x80)
            return 0;
    if ((c == 0xe0 && s[1] < 0xa0) || (c == 0xed && s[1] > 0x9f) || (c == 0xf0 && s[1] < 0x90) ||
        (c == 0xf4 && s[1] > 0x8f))
        return 0; /* overlong, a surrogate, above U+10FFFF */
    if (c == 0xc2 && s[1] < 0xa0)
        return 0; /* U+0080..U+009F: C1 controls */
    return len;
}

/* 1 when s[0..n) is strict UTF-8 without control characters. */
static int clean_utf8(const char *s, size_t n)
{
    for (size_t i = 0; i < n;) {
        size_t k = utf8_char((const unsigned char *)s + i, n - i);
        if (k == 0)
            return 0;
        i += k;
    }
    return 1;
}

/* The longest prefix of s (NUL-terminated) of at most `max` bytes that ends on a character
 * boundary, copied to out (max + 1 bytes). For valid UTF-8 only. */
static void utf8_prefix(char *out, const char *s, size_t max)
{
    size_t n = strlen(s);
    if (n > max) {
        n = max;
        while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80)
            n--; /* s[n] continues a sequence: cut before the sequence */
    }
    memcpy(out, s, n);
    out[n] = '\0';
}

/* A video/<subtype> MIME type without parameters oddities: letters, digits, . + - only. */
static int video_type(const char *t)
{
    if (strncasecmp(t, "video/", 6) != 0 || t[6] == '\0')
        return 0;
    for (const char *p = t + 6; *p && *p != ';'; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '.' || *p == '+' || *p == '-'))
            return 0;
    return 1;
}

/* ---- the store ---- */

static void store_failed(const rd_msg *m, int r, const char *cors)
{
    char hdr[400];
    snprintf(hdr, sizeof(hdr), "%sRetry-After: 1\r\n", cors);
    /* -ECANCELED, -EPIPE: the front stopped (a drain) before the store answered. */
    if (store_retryable(r) || r == -ETIMEDOUT || r == -ECANCELED || r == -EPIPE)
        reply_error(m, 503, "store_unavailable", "The job store is busy or unreachable; retry.",
                    hdr);
    else
        reply_error(m, 500, "internal", "The job store refused the request; see the logs.", cors);
}

/* A store answer `ans` (or the request's error `err`: -ETIMEDOUT, -ECANCELED, -EAGAIN): the
 * store's status (0 or -errno), with its body in *b when it is 0 (b may be NULL). */
static int store_answer(const rd_msg *ans, int err, const struct rd_msg_store **b)
{
    int r = err < 0 ? err : msg_body(ans, store)->status;
    if (b != NULL)
        *b = r == 0 ? msg_body(ans, store) : NULL;
    return r;
}

/* A front's store answer `ans` (or the request's error `err`: -ETIMEDOUT, -ECANCELED) for
 * request `m`: the store's status, with the request's CORS lines in `cors`. */
static int front_status(const api *a, const rd_msg *m, const rd_msg *ans, int err, char cors[300])
{
    http_cors_lines(m, &a->cors, "Retry-After", cors, 300);
    return store_answer(ans, err, NULL);
}

/* The store request for the asset the path's id names, of `org` ("": any org), or NULL once
 * answered (404 `missing` for a malformed id). */
static rd_msg *asset_find_request(const rd_msg *m, const char *org, const char *missing,
                                  const char *cors)
{
    http1_str id = http_request_param(msg_body(m, http_request), 0);
    if (!public_id_ok(id)) {
        reply_error(m, 404, "not_found", missing, cors);
        return NULL;
    }
    rd_msg *req = store_request_find();
    rd_asset *q = &msg_body(req, store)->assets[0];
    memcpy(q->public_id, id.p, id.len); /* length checked: the request is zeroed */
    snprintf(q->org, sizeof(q->org), "%s", org);
    return req;
}

/* The store request that moves asset `x` to `state` ("uploaded", or "processing" with
 * `job_id`). */
static rd_msg *asset_set_request(const rd_asset *x, const char *state, int64_t job_id)
{
    rd_msg *req = store_request(STORE_ASSET_UPDATE);
    rd_asset *q = &msg_body(req, store)->assets[0];
    snprintf(q->public_id, sizeof(q->public_id), "%s", x->public_id);
    snprintf(q->org, sizeof(q->org), "%s", x->org);
    snprintf(q->state, sizeof(q->state), "%s", state);
    q->job_id = job_id;
    return req;
}

/* ---- requests a front answers in several asynchronous steps ----
 *
 * An upload's creation and completion, the promote and an export's cancel each go store request
 * → object storage or the dispatcher → store request on the front's loop, never waiting. Each
 * op's struct begins with a front_op: the request, its CORS lines, the store step in flight
 * and the sink of the object storage request in flight (the sink first, so a sink's callback finds
 * its op). */
typedef struct front_op {
    blob_sink sink;
    rd_actor *self; /* the front */
    api *a;
    rd_msg *m; /* the request, the op's until it is answered */
    int step;  /* what the store's next answer is for */
    char cors[300];
} front_op;

/* A zeroed op of `size` bytes (its struct, front_op first) for request `m` on front `self`. */
static void *op_new(size_t size, rd_actor *self, rd_msg *m, const char *cors)
{
    front_op *o = rd_calloc(1, size, "a request's steps");
    o->self = self;
    o->a = self->state;
    atomic_fetch_add_explicit(&o->a->ops, 1, memory_order_relaxed);
    o->m = m;
    snprintf(o->cors, sizeof(o->cors), "%s", cors);
    return o;
}

/* Frees the op (whose request has been answered) and its request. */
static void op_end(front_op *o)
{
    atomic_fetch_sub_explicit(&o->a->ops, 1, memory_order_relaxed);
    msg_free(o->m);
    free(o);
}

/* 1 (answered 503 busy) when the node already has REELD_API_INFLIGHT_MAX ops (the writes'
 * chains) in flight: what each holds (a caption track's body and segments, a copy's state,
 * its object storage requests) is bounded per node, as the per-client rate limits bound it per
 * client. Soft by the ops the other loops start at the same moment. */
static int op_full(api *a, const rd_msg *m, const char *cors)
{
    if (atomic_load_explicit(&a->ops, memory_order_relaxed) < a->cfg.api_inflight_max)
        return 0;
    char hdr[400];
    snprintf(hdr, sizeof(hdr), "%sRetry-After: 1\r\n", cors);
    refused(a, 503, "busy");
    reply_error(m, 503, "busy",
                "This node has as many API writes in flight as it takes "
                "(REELD_API_INFLIGHT_MAX); retry.",
                hdr);
    return 1;
}

/* Sends the op's next request to `to` (the store, or the dispatcher for a job's cancel), whose
 * answer `cb` gets with the op (`step` says what it is for). When it cannot be sent (a front
 * that has stopped, a full mailbox) `cb` gets -EAGAIN at once, as it gets a timeout: each
 * callback's error path answers (503) and cleans up what its op started. */
static void op_ask_to(front_op *o, rd_actor *to, rd_msg *req, int step, rd_reply_fn cb)
{
    o->step = step;
    if (!atomic_load(&o->self->stopped) &&
        actor_request(o->self, to, req, STORE_WAIT_MS, cb, o) == 0)
        return;
    msg_free(req);
    cb(o->self, NULL, -EAGAIN, o);
}

/* op_ask_to the store. */
static void op_ask(front_op *o, rd_msg *req, int step, rd_reply_fn cb)
{
    op_ask_to(o, o->a->store_actor, req, step, cb);
}

/* 1 (answered 503, the op ended) when the front has stopped: a callback of object storage
 * starts no more work (a copy of gigabytes) that nobody will wait for. */
static int op_stopped(front_op *o)
{
    if (!atomic_load(&o->self->stopped))
        return 0;
    store_failed(o->m, -EPIPE, o->cors);
    op_end(o);
    return 1;
}

/* ---- small object requests the fronts' chains are made of ----
 *
 * Each a request of the fronts' blob store on the calling front's loop, in the previews
 * bucket, with a sink of its own, so a chain strings them together by their callbacks. */

typedef void (*fetched_fn)(void *ctx, int err, const char *why, const char *text, size_t len);

/* A small object read whole: a playlist, the master. */
typedef struct fetch {
    blob_sink sink;
    char *text; /* NUL-terminated */
    size_t len, max;
    int over; /* longer than max */
    fetched_fn done;
    void *ctx;
} fetch;

static void fetch_data(blob_sink *s, rd_buf *chunk)
{
    fetch *f = (fetch *)s;
    if (!f->over && chunk->len <= f->max - f->len) {
        f->text = rd_realloc(f->text, f->len + chunk->len + 1, "an object read");
        memcpy(f->text + f->len, chunk->data, chunk->len);
        f->len += chunk->len;
        f->text[f->len] = '\0';
    } else {
        f->over = 1;
    }
    buf_unref(chunk);
}

static void fetch_done(blob_sink *s, int err, const char *why)
{
    fetch *f = (fetch *)s;
    if (err == 0 && f->over) {
        err = -EFBIG;
        why = "the object is larger than expected";
    }
    f->done(f->ctx, err, why != NULL ? why : "", f->text != NULL ? f->text : "", f->len);
    free(f->text);
    free(f);
}

/* Reads previews object `key` (at most `max` bytes; more is -EFBIG) for `done`. */
static void fetch_start(api *a, const char *key, size_t max, fetched_fn done, void *ctx)
{
    fetch *f = rd_calloc(1, sizeof(*f), "an object read");
    f->sink = (blob_sink){.data = fetch_data, .done = fetch_done};
    f->max = max;
    f->done = done;
    f->ctx = ctx;
    int r = blob_aio_get(a->backend.aio, loop_current(), a->cfg.s3_bucket_previews, key, 0, 0,
                         &f->sink, NULL);
    if (r < 0)
        fetch_done(&f->sink, r, "the GET could not start");
}

typedef void (*stored_fn)(void *ctx, int err, const char *why);

typedef struct store_put {
    blob_sink sink;
    stored_fn done;
    void *ctx;
} store_put;

static void store_put_done(blob_sink *s, int err, const char *why)
{
    store_put *p = (store_put *)s;
    p->done(p->ctx, err, why != NULL ? why : "");
    free(p);
}

/* Stores body[0..len) (borrowed until `done`) as previews object `key`. */
static void put_start(api *a, const char *key, const void *body, size_t len, const char *type,
                      stored_fn done, void *ctx)
{
    store_put *p = rd_calloc(1, sizeof(*p), "an object write");
    p->sink.done = store_put_done;
    p->done = done;
    p->ctx = ctx;
    int r = blob_aio_put(a->backend.aio, loop_current(), a->cfg.s3_bucket_previews, key, body, len,
                         type, NULL, &p->sink, NULL);
    if (r < 0)
        store_put_done(&p->sink, r, "the PUT could not start");
}

/* The published ladder's length and segment kind, from its top rung's playlist: the master,
 * then that playlist. `done` gets 0, -ENOENT (no ladder, or none that says its length), or
 * object storage's failure with its sentence; and the master's text when it was read (else
 * NULL), valid during the call, for a caller that rewrites it. */
#define PLAYLIST_MAX (4u << 20) /* a top rung's playlist: ~30 bytes a segment */

typedef void (*ladder_fn)(void *ctx, int err, const char *why, int64_t duration_ms, int fmp4,
                          const char *master, size_t master_len);

typedef struct ladder {
    api *a;
    char master_key[RD_STORE_TEXT_MAX];
    char *master; /* its text, once read */
    size_t master_len;
    ladder_fn done;
    void *ctx;
} ladder;

static void ladder_end(ladder *l, int err, const char *why, int64_t duration_ms, int fmp4)
{
    if (err == -EFBIG)
        err = -ENOENT; /* a playlist past any ladder's size says no length */
    l->done(l->ctx, err, why, duration_ms, fmp4, l->master, l->master_len);
    free(l->master);
    free(l);
}

static void ladder_media(void *ctx, int err, const char *why, const char *text, size_t len)
{
    int64_t duration = 0;
    int fmp4 = 0;
    if (err == 0 && thumb_media_length(text, len, &duration, &fmp4) < 0)
        err = -ENOENT;
    ladder_end(ctx, err, why, duration, fmp4);
}

static void ladder_master(void *ctx, int err, const char *why, const char *text, size_t len)
{
    ladder *l = ctx;
    char top[256], key[700];
    int top_w = 0;
    if (err == 0 && thumb_top_variant(text, len, top, sizeof(top), &top_w) < 0)
        err = -ENOENT;
    if (err < 0) {
        ladder_end(l, err, why, 0, 0);
        return;
    }
    l->master = rd_malloc(len + 1, "a master playlist");
    memcpy(l->master, text, len + 1);
    l->master_len = len;
    snprintf(key, sizeof(key), "%s/hls/%s", l->master_key, top);
    fetch_start(l->a, key, PLAYLIST_MAX, ladder_media, l);
}

static void ladder_start(api *a, const rd_asset *x, ladder_fn done, void *ctx)
{
    ladder *l = rd_calloc(1, sizeof(*l), "a ladder's length");
    l->a = a;
    snprintf(l->master_key, sizeof(l->master_key), "%s", x->master_key);
    l->done = done;
    l->ctx = ctx;
    char key[700];
    snprintf(key, sizeof(key), "%s/hls/master.m3u8", x->master_key);
    fetch_start(a, key, PLAYLIST_MAX, ladder_master, l);
}

/* ---- POST /api/uploads ----
 *
 * Answered on the front, never on a thread: the body checked, then (S3, above the multipart
 * threshold) the multipart upload started through the asynchronous blob store on the front's
 * loop, then the row written with one asynchronous store request, then the signed URLs. The
 * multipart upload comes first so the row is written once, whole: a client can complete it on
 * any node. */

typedef struct upload_op {
    front_op op; /* its sink: the multipart start's, then the abort's after a failed row */
    char org[ORG_MAX];
    char id[RD_ASSET_ID_MAX];
    char filename[RD_FILENAME_MAX];
    char type[RD_STORE_TEXT_MAX];
    char upload_id[RD_UPLOAD_ID_MAX];
    int64_t size, part, now;
    int nparts, multipart;
} upload_op;

/* The checked request of POST /api/uploads, or NULL once answered (400, 413, 415, 500). */
static upload_op *upload_parse(rd_actor *self, rd_msg *m, const principal *p, const char *cors)
{
    api *a = self->state;
    json_tok t[64];
    if (json_body(m, cors, t, 64) < 0)
        return NULL;
    const char *s = http_request_body(msg_body(m, http_request)).p;
    int fi = json_get(s, t, 0, "filename"), ci = json_get(s, t, 0, "content_type"),
        si = json_get(s, t, 0, "size");
    if (fi < 0 || ci < 0 || si < 0) {
        reply_error(m, 400, "missing_field", "filename, content_type and size are required.", cors);
        return NULL;
    }
    upload_op *u = op_new(sizeof(*u), self, m, cors);
    /* An embedded NUL (\u0000) would cut the C string short: the length must match. */
    int fl = json_string(s, &t[fi], u->filename, sizeof(u->filename));
    /* It goes into header lines (the upload's Content-Type, S3's): printable ASCII only,
     * parameters after ';' included. */
    int tl = json_string(s, &t[ci], u->type, sizeof(u->type));
    if (fl <= 0 || strlen(u->filename) != (size_t)fl || !clean_utf8(u->filename, (size_t)fl)) {
        reply_error(m, 400, "invalid_field",
                    "filename must be UTF-8 text of 1 to 255 bytes without control characters.",
                    cors);
    } else if (tl == -EINVAL ||
               (tl > 0 && (strlen(u->type) != (size_t)tl || !header_text(u->type, (size_t)tl)))) {
        reply_error(m, 400, "invalid_field",
                    "content_type must be printable ASCII, without control characters.", cors);
    } else if (tl <= 0 || !video_type(u->type)) {
        reply_error(m, 415, "unsupported_media_type",
                    "content_type must be a video type such as video/mp4.", cors);
    } else if (json_int(s, &t[si], &u->size) < 0 || u->size < 1) {
        reply_error(m, 400, "invalid_field", "size must be a positive integer (bytes).", cors);
    } else if (u->size > a->cfg.max_upload_bytes) {
        reply_error(m, 413, "too_large", "size is above REELD_MAX_UPLOAD_BYTES.", cors);
    } else if (new_public_id(u->id) < 0) {
        reply_error(m, 500, "internal", "No random bytes for an asset id; see the logs.", cors);
    } else {
        snprintf(u->org, sizeof(u->org), "%s", p->org);
        u->now = (int64_t)time(NULL);
        u->multipart = blob_aio_has_uploads(a->backend.aio) && u->size > a->cfg.multipart_threshold;
        u->part = a->cfg.part_size;
        u->nparts = 1;
        if (u->multipart) {
            if ((u->size + u->part - 1) / u->part > API_MAX_PARTS)
                u->part = ((u->size + API_MAX_PARTS - 1) / API_MAX_PARTS + (1 << 20) - 1) &
                          ~((1 << 20) - 1);
            u->nparts = (int)((u->size + u->part - 1) / u->part);
        }
        return u;
    }
    free(u);
    return NULL;
}

/* The 201 of a created upload: its URL (one PUT), or its parts' URLs and the completion's. */
static void upload_answer(upload_op *u)
{
    api *a = u->op.a;
    int64_t exp = a->cfg.presign_expires;
    char expires[32];
    iso_time(u->now + exp, expires);
    size_t cap = 4096 + (size_t)u->nparts * 2048;
    char *body = rd_malloc(cap, "answering an upload");
    char *url = rd_malloc(4096, "answering an upload");
    /* The fronts of every loop share one signer; a signing-key cache is not to be shared
     * between threads (proto/sigv4.h), so each loop's thread keeps its own (the day's key is
     * derived once a day per loop, not per answer: four HMACs, 4 µs of a 40 µs request). The
     * cache checks the secret and scope it was made for. */
    static _Thread_local sigv4_key_cache loop_keys;
    json_writer w;
    json_writer_init(&w, body, cap);
    json_object_begin(&w);
    json_key(&w, "asset_id");
    json_str(&w, u->id);
    json_key(&w, "upload");
    json_object_begin(&w);
    json_key(&w, "method");
    json_str(&w, "PUT");
    int r = 0;
    if (!u->multipart) {
        /* The URL takes exactly the announced size. Embedded, it names the org too (signed,
         * so the blob server can bound each org's uploads in progress); S3 gets no parameter
         * of ours. */
        sigv4_pair org = {"reeld-org", u->org};
        r = urlsign_url_keyed(&a->sign, &loop_keys, "PUT", a->cfg.s3_bucket_staging, u->id, &org,
                              blob_aio_has_uploads(a->backend.aio) ? 0 : 1, u->now, exp, u->size,
                              url, 4096);
        json_key(&w, "url");
        json_str(&w, r > 0 ? url : "");
    } else {
        json_key(&w, "upload_id");
        json_str(&w, u->upload_id);
        json_key(&w, "part_size");
        json_int64(&w, u->part);
        json_key(&w, "parts");
        json_array_begin(&w);
        for (int n = 1; n <= u->nparts && r >= 0; n++) {
            char num[16];
            snprintf(num, sizeof(num), "%d", n);
            sigv4_pair qp[2] = {{"partNumber", num}, {"uploadId", u->upload_id}};
            int64_t len = n < u->nparts ? u->part : u->size - (int64_t)(u->nparts - 1) * u->part;
            r = urlsign_url_keyed(&a->sign, &loop_keys, "PUT", a->cfg.s3_bucket_staging, u->id, qp,
                                  2, u->now, exp, len, url, 4096);
            json_object_begin(&w);
            json_key(&w, "n");
            json_int64(&w, n);
            json_key(&w, "url");
            json_str(&w, r > 0 ? url : "");
            json_object_end(&w);
        }
        json_array_end(&w);
        json_key(&w, "complete_url");
        char path[96];
        snprintf(path, sizeof(path), "/api/uploads/%s/complete", u->id);
        json_str(&w, path);
    }
    json_key(&w, "headers");
    json_object_begin(&w);
    json_key(&w, "Content-Type");
    json_str(&w, u->type);
    json_object_end(&w);
    json_key(&w, "expires_at");
    json_str(&w, expires);
    json_object_end(&w);
    json_object_end(&w);
    int len = json_writer_finish(&w);
    if (r < 0 || len < 0) {
        log_error("api_presign_failed", KV_STR("asset", u->id), KV_ERRNO(r < 0 ? r : len));
        reply_error(u->op.m, 500, "internal", "The upload URL could not be signed; see the logs.",
                    u->op.cors);
    } else {
        reply(u->op.m, 201, body, (size_t)len, u->op.cors);
        log_info("upload_created", KV_STR("asset", u->id), KV_STR("org", u->org),
                 KV_INT("size", u->size), KV_INT("parts", u->multipart ? u->nparts : 0));
    }
    free(body);
    free(url);
}

/* The abort of a multipart upload whose row failed (best effort: nobody was told of it). */
static void upload_aborted(blob_sink *s, int err, const char *why)
{
    upload_op *u = (upload_op *)s;
    if (err < 0)
        log_warn("api_multipart_abort_failed", KV_STR("asset", u->id), KV_ERRNO(err),
                 KV_STR("s3", why));
    op_end(&u->op);
}

/* The store's answer to the upload's row: the 201, or the store's error (and the multipart
 * upload, if any, aborted). */
static int upload_stored(rd_actor *self, rd_msg *ans, int err, void *ctx)
{
    (void)self;
    upload_op *u = ctx;
    int r = store_answer(ans, err, NULL);
    msg_free(ans);
    if (r == 0) {
        upload_answer(u);
        op_end(&u->op);
        return 0;
    }
    log_error("api_asset_create_failed", KV_STR("asset", u->id), KV_ERRNO(r));
    store_failed(u->op.m, r, u->op.cors);
    if (!u->multipart) {
        op_end(&u->op);
        return 0;
    }
    u->op.sink = (blob_sink){.done = upload_aborted};
    if ((r = blob_aio_upload_abort(u->op.a->backend.aio, loop_current(),
                                   u->op.a->cfg.s3_bucket_staging, u->id, u->upload_id, &u->op.sink,
                                   NULL)) < 0)
        upload_aborted(&u->op.sink, r, "the abort could not start");
    return 0;
}

/* Writes the upload's row (one asynchronous store request from the front). */
static void upload_row(upload_op *u)
{
    rd_msg *req = store_request(STORE_ASSET_CREATE);
    rd_asset *row = &msg_body(req, store)->assets[0];
    snprintf(row->public_id, sizeof(row->public_id), "%s", u->id);
    snprintf(row->org, sizeof(row->org), "%s", u->org);
    snprintf(row->state, sizeof(row->state), "uploading");
    utf8_prefix(row->filename, u->filename, sizeof(row->filename) - 1);
    snprintf(row->content_type, sizeof(row->content_type), "%s", u->type);
    row->size_bytes = u->size;
    /* The public id names the object in both buckets, and the ladder's prefix in previews
     * (what playback links point at). */
    snprintf(row->staging_key, sizeof(row->staging_key), "%s", u->id);
    snprintf(row->master_key, sizeof(row->master_key), "%s", u->id);
    if (u->multipart) {
        snprintf(row->upload_id, sizeof(row->upload_id), "%s", u->upload_id);
        row->part_size = u->part;
        row->nparts = u->nparts;
    }
    op_ask(&u->op, req, 0, upload_stored);
}

static void upload_started_head(blob_sink *s, const blob_meta *meta)
{
    upload_op *u = (upload_op *)s;
    snprintf(u->upload_id, sizeof(u->upload_id), "%s", meta->upload_id);
}

/* The multipart upload's start is back: the row next, or 502. */
static void upload_started(blob_sink *s, int err, const char *why)
{
    upload_op *u = (upload_op *)s;
    if (err == 0 && u->upload_id[0] == '\0')
        err = -EIO;
    if (err < 0) {
        log_error("api_multipart_create_failed", KV_STR("asset", u->id), KV_ERRNO(err),
                  KV_STR("s3", why != NULL ? why : ""));
        reply_error(u->op.m, 502, "storage_failed",
                    "Object storage refused to start the upload; try again.", u->op.cors);
        op_end(&u->op);
        return;
    }
    upload_row(u);
}

/* POST /api/uploads on front `self`: RD_KEPT (the request is the upload's until answered) or
 * RD_DONE once answered. */
static int upload_begin(rd_actor *self, rd_msg *m, const principal *p, const char *cors)
{
    int r;
    upload_op *u = upload_parse(self, m, p, cors);
    if (u == NULL)
        return RD_DONE;
    if (!u->multipart) {
        upload_row(u);
        return RD_KEPT;
    }
    u->op.sink = (blob_sink){.head = upload_started_head, .done = upload_started};
    if ((r = blob_aio_upload_start(u->op.a->backend.aio, loop_current(),
                                   u->op.a->cfg.s3_bucket_staging, u->id, u->type, &u->op.sink,
                                   NULL)) < 0)
        upload_started(&u->op.sink, r, "the upload could not start");
    return RD_KEPT;
}

/* 1 (answered 410) when the upload expired unpromoted: its staging object is gone. */
static int upload_expired(const rd_msg *m, const rd_asset *x, const char *cors)
{
    if (strcmp(x->state, "expired") != 0)
        return 0;
    reply_error(m, 410, "upload_expired",
                "This upload was not promoted within REELD_UPLOAD_EXPIRE_SEC and was removed; "
                "create a new upload.",
                cors);
    return 1;
}

/* ---- POST /api/uploads/{id}/complete, on the front ----
 *
 * The asset's row (store), the multipart upload's completion from the client's parts (blob
 * store), then the row's move to "uploaded" (store), each asynchronous on the front's loop. */

enum { CO_FIND, CO_SET };

typedef struct complete_op {
    front_op op; /* its sink: the completion's, then a HEAD's */
    rd_asset x;
    s3_part *parts; /* x.nparts of them, borrowed by the completion until it is done */
    blob_meta staged;
    int err; /* the completion's */
    char why[256];
} complete_op;

static void complete_end(complete_op *o)
{
    free(o->parts);
    op_end(&o->op);
}

static int complete_stored(rd_actor *self, rd_msg *ans, int err, void *ctx);

static void complete_ok(complete_op *o)
{
    char ok[128];
    int n = snprintf(ok, sizeof(ok), "{\"asset_id\":\"%s\",\"completed\":true}", o->x.public_id);
    reply(o->op.m, 200, ok, (size_t)n, o->op.cors);
    complete_end(o);
}

/* The completion's outcome `r` is known: the row moves to "uploaded", or the answer says why
 * not (400 for parts S3 refused, 502 when it failed). */
static void complete_decided(complete_op *o, int r)
{
    if (r < 0) {
        log_warn("api_multipart_complete_failed", KV_STR("asset", o->x.public_id), KV_ERRNO(r),
                 KV_STR("s3", o->why));
        if (r == -EINVAL || r == -ENOENT)
            reply_error(o->op.m, 400, "invalid_parts",
                        o->why[0] ? o->why : "Object storage refused the parts.", o->op.cors);
        else
            reply_error(o->op.m, 502, "storage_failed", "Object storage failed; try again.",
                        o->op.cors);
        complete_end(o);
        return;
    }
    op_ask(&o->op, asset_set_request(&o->x, "uploaded", 0), CO_SET, complete_stored);
}

static void complete_head(blob_sink *s, const blob_meta *meta)
{
    ((complete_op *)s)->staged = *meta;
}

/* No such upload any more: completed by an earlier call whose answer (or store write) was
 * lost, when the object of the announced size is there. */
static void complete_headed(blob_sink *s, int err, const char *why)
{
    (void)why;
    complete_op *o = (complete_op *)s;
    complete_decided(o, err == 0 && (int64_t)o->staged.size == o->x.size_bytes ? 0 : o->err);
}

static void complete_done(blob_sink *s, int err, const char *why)
{
    complete_op *o = (complete_op *)s;
    o->err = err;
    snprintf(o->why, sizeof(o->why), "%s", why != NULL ? why : "");
    if (err != -ENOENT) {
        complete_decided(o, err);
        return;
    }
    if (op_stopped(&o->op))
        return;
    o->op.sink = (blob_sink){.head = complete_head, .done = complete_headed};
    if (blob_aio_head(o->op.a->backend.aio, loop_current(), o->op.a->cfg.s3_bucket_staging,
                      o->x.staging_key, &o->op.sink, NULL) < 0)
        complete_decided(o, err);
}

/* The client's parts from the body, all x.nparts of them in order: 0, or -1 once answered. */
static int complete_parts(complete_op *o)
{
    const rd_msg *m = o->op.m;
    const char *cors = o->op.cors;
    int nparts = o->x.nparts, r = -1;
    size_t ntoks = 8 + (size_t)nparts * 5;
    json_tok *t = rd_malloc(ntoks * sizeof(*t), "completing an upload");
    o->parts = rd_calloc((size_t)nparts, sizeof(*o->parts), "completing an upload");
    const char *s = http_request_body(msg_body(m, http_request)).p;
    if (json_body(m, cors, t, ntoks) < 0)
        goto out;
    int arr = json_get(s, t, 0, "parts");
    if (arr < 0 || t[arr].type != JSON_ARRAY || t[arr].size != (uint32_t)nparts) {
        char msg[128];
        snprintf(msg, sizeof(msg), "parts must list all %d parts as {n, etag}.", nparts);
        reply_error(m, 400, "invalid_field", msg, cors);
        goto out;
    }
    for (int i = 0; i < nparts; i++) {
        int it = json_item(t, arr, (uint32_t)i);
        int ni = json_get(s, t, it, "n"), ei = json_get(s, t, it, "etag");
        int64_t num;
        if (ni < 0 || ei < 0 || json_int(s, &t[ni], &num) < 0 || num != i + 1 ||
            json_string(s, &t[ei], o->parts[i].etag, sizeof(o->parts[i].etag)) <= 0) {
            reply_error(m, 400, "invalid_field",
                        "Each part needs n (1, 2, ... in order) and the etag its PUT returned.",
                        cors);
            goto out;
        }
        o->parts[i].number = i + 1;
    }
    r = 0;
out:
    free(t);
    return r;
}

/* The store's answer to the completion's request of step o->op.step. */
static int complete_stored(rd_actor *self, rd_msg *ans, int err, void *ctx)
{
    (void)self;
    complete_op *o = ctx;
    int r = store_answer(ans, err, NULL);
    if (o->op.step == CO_FIND && r == -ENOENT) {
        reply_error(o->op.m, 404, "not_found", "No such upload.", o->op.cors);
    } else if (o->op.step == CO_SET && (r == 0 || r == -ENOENT)) {
        complete_ok(o); /* -ENOENT: promoted meanwhile, which needed it complete */
        msg_free(ans);
        return 0;
    } else if (r < 0) {
        if (o->op.step == CO_FIND)
            log_error("api_asset_find_failed", KV_ERRNO(r));
        else
            log_error("api_asset_update_failed", KV_STR("asset", o->x.public_id), KV_ERRNO(r));
        store_failed(o->op.m, r, o->op.cors);
    } else { /* CO_FIND */
        o->x = msg_body(ans, store)->assets[0];
        msg_free(ans);
        api *a = o->op.a;
        if (upload_expired(o->op.m, &o->x, o->op.cors)) {
            complete_end(o);
        } else if (o->x.nparts < 1 || o->x.upload_id[0] == '\0') {
            reply_error(o->op.m, 409, "not_multipart",
                        "This upload is a single PUT: nothing to complete; promote it directly.",
                        o->op.cors);
            complete_end(o);
        } else if (strcmp(o->x.state, "uploading") != 0) {
            complete_ok(o); /* completed (or promoted) already: here or elsewhere */
        } else if (complete_parts(o) < 0) {
            complete_end(o);
        } else {
            o->op.sink = (blob_sink){.done = complete_done};
            if ((r = blob_aio_upload_complete(
                     a->backend.aio, loop_current(), a->cfg.s3_bucket_staging, o->x.staging_key,
                     o->x.upload_id, o->parts, (size_t)o->x.nparts, &o->op.sink, NULL)) < 0)
                complete_done(&o->op.sink, r, "the completion could not start");
        }
        return 0;
    }
    msg_free(ans);
    complete_end(o);
    return 0;
}

/* POST /api/uploads/{id}/complete on front `self`: RD_KEPT, or RD_DONE once answered (404). */
static int complete_begin(rd_actor *self, rd_msg *m, const principal *p, const char *cors)
{
    rd_msg *req = asset_find_request(m, p->org, "No such upload.", cors);
    if (req == NULL)
        return RD_DONE;
    complete_op *o = op_new(sizeof(*o), self, m, cors);
    op_ask(&o->op, req, CO_FIND, complete_stored);
    return RD_KEPT;
}

/* ---- POST /api/assets/{id}/promote ---- */

/* The promote body, optional: {"mp4": true|false, "poster_time": seconds}. Returns 0 with the
 * options set, or -1 having answered 400/415. */
static int promote_options(const rd_msg *m, const char *cors, rd_job *j)
{
    http1_str b = http_request_body(msg_body(m, http_request));
    size_t i = 0;
    while (i < b.len && (b.p[i] == ' ' || b.p[i] == '\t' || b.p[i] == '\r' || b.p[i] == '\n'))
        i++;
    if (i == b.len)
        return 0; /* no body: the defaults */
    json_tok t[16];
    if (json_body(m, cors, t, 16) < 0)
        return -1;
    const char *s = b.p;
    int mi = json_get(s, t, 0, "mp4"), pi = json_get(s, t, 0, "poster_time");
    if (mi >= 0) {
        if (t[mi].type != JSON_TRUE && t[mi].type != JSON_FALSE) {
            reply_error(m, 400, "invalid_field", "mp4 must be true or false.", cors);
            return -1;
        }
        j->mp4 = t[mi].type == JSON_TRUE;
    }
    if (pi >= 0) {
        char num[40];
        char *end = NULL;
        double v = -1;
        if (t[pi].type == JSON_NUMBER && t[pi].len < sizeof(num)) {
            memcpy(num, s + t[pi].start, t[pi].len);
            num[t[pi].len] = '\0';
            v = strtod(num, &end);
        }
        if (end == NULL || *end != '\0' || !(v >= 0 && v <= 1e7)) {
            reply_error(m, 400, "invalid_field",
                        "poster_time must be a number of seconds from 0 to 10000000.", cors);
            return -1;
        }
        j->has_poster = 1;
        j->poster_ms = (int64_t)llround(v * 1000);
    }
    return 0;
}

/* ---- POST /api/assets/{id}/promote, on the front ----
 *
 * Every step is asynchronous on the front's loop, so a promote waiting minutes on a copy of a
 * large master holds no thread: the asset's row (store), the staging object's HEAD (blob
 * store), the org's jobs in flight (store, when bounded), the copy to masters with its
 * retention (blob store: CopyObject, or UploadPartCopy parts above REELD_COPY_PART_SIZE), the
 * job, then the row's move to "processing" (store). A step's failure answers and ends it. */

enum { PR_FIND, PR_COUNT, PR_JOB, PR_SET };

typedef struct promote_op {
    front_op op; /* its sink: the HEAD's, then the copy's */
    rd_asset x;
    rd_job opts;
    blob_meta staged; /* the staging object, as its HEAD found it */
} promote_op;

static void promote_end(promote_op *o)
{
    op_end(&o->op);
}

static void promote_accepted(promote_op *o)
{
    char body[160];
    int n = snprintf(body, sizeof(body), "{\"job_id\":\"%lld\",\"asset_id\":\"%s\"}",
                     (long long)o->x.job_id, o->x.public_id);
    reply(o->op.m, 202, body, (size_t)n, o->op.cors);
    promote_end(o);
}

static int promote_stored(rd_actor *self, rd_msg *ans, int err, void *ctx);

static void promote_ask(promote_op *o, rd_msg *req, int step)
{
    op_ask(&o->op, req, step, promote_stored);
}

static void promote_copied(blob_sink *s, int err, const char *why)
{
    promote_op *o = (promote_op *)s;
    if (err < 0) {
        log_error("api_promote_copy_failed", KV_STR("asset", o->x.public_id), KV_ERRNO(err),
                  KV_STR("why", why != NULL ? why : ""));
        /* A refusal (4xx: a bucket's settings changed, say) is not cured by trying again: the
         * client is told the storage's own sentence. */
        char msg[320];
        if (err == -EINVAL || err == -EACCES || err == -ENOENT)
            snprintf(msg, sizeof(msg), "Object storage refused the copy to masters: %.250s",
                     why != NULL && why[0] ? why : "no reason given");
        else
            snprintf(msg, sizeof(msg), "Copying to masters failed; try again.");
        reply_error(o->op.m, 502, "storage_failed", msg, o->op.cors);
        promote_end(o);
        return;
    }
    /* One job per asset and kind, by the store's own rule: promoting twice, on two nodes at
     * once, or again after a failure here, finds the same job; the asset row then names it. */
    rd_msg *req = store_request(STORE_JOB_CREATE);
    struct rd_msg_store *st = msg_body(req, store);
    st->n = 1;
    st->jobs[0].asset_id = o->x.id;
    snprintf(st->jobs[0].kind, sizeof(st->jobs[0].kind), "transcode");
    st->jobs[0].max_attempts = JOB_ATTEMPTS;
    st->jobs[0].mp4 = o->opts.mp4;
    st->jobs[0].has_poster = o->opts.has_poster;
    st->jobs[0].poster_ms = o->opts.poster_ms;
    promote_ask(o, req, PR_JOB);
}

/* The copy to masters, once the staged object passed its checks. */
static void promote_copy(promote_op *o)
{
    api *a = o->op.a;
    int r;
    if (op_stopped(&o->op))
        return;
    if (!video_type(o->staged.content_type)) {
        reply_error(o->op.m, 415, "unsupported_media_type",
                    "The uploaded object's Content-Type is not a video type; upload it again "
                    "with the upload's headers.",
                    o->op.cors);
        promote_end(o);
        return;
    }
    /* With the retention masters keep (S3 mode), in UploadPartCopy parts above
     * REELD_COPY_PART_SIZE (5 GiB at most: S3's CopyObject limit). */
    o->op.sink = (blob_sink){.done = promote_copied};
    if ((r = blob_aio_copy(a->backend.aio, loop_current(), a->cfg.s3_bucket_staging,
                           o->x.staging_key, (int64_t)o->staged.size, a->cfg.s3_bucket_masters,
                           o->x.master_key, a->cfg.object_lock_default_days,
                           strcmp(a->cfg.object_lock_mode, "governance") == 0 ? "GOVERNANCE"
                                                                              : "COMPLIANCE",
                           &o->op.sink, NULL)) < 0)
        promote_copied(&o->op.sink, r, "the copy could not start");
}

static void promote_head(blob_sink *s, const blob_meta *meta)
{
    ((promote_op *)s)->staged = *meta;
}

/* The staging object's HEAD is back: uploaded, whole; then the org's bound, then the copy. */
static void promote_headed(blob_sink *s, int err, const char *why)
{
    promote_op *o = (promote_op *)s;
    char msg[256];
    if (err == -ENOENT) {
        reply_error(o->op.m, 409, "not_uploaded",
                    "Nothing has been uploaded for this asset yet: PUT the file to its upload "
                    "URL, then promote.",
                    o->op.cors);
    } else if (err < 0) {
        log_error("api_promote_head_failed", KV_STR("asset", o->x.public_id), KV_ERRNO(err),
                  KV_STR("why", why != NULL ? why : ""));
        reply_error(o->op.m, 502, "storage_failed", "Object storage failed; try again.",
                    o->op.cors);
    } else if ((int64_t)o->staged.size != o->x.size_bytes) {
        snprintf(msg, sizeof(msg),
                 "The uploaded object has %lld bytes, not the %lld announced; upload it again.",
                 (long long)o->staged.size, (long long)o->x.size_bytes);
        reply_error(o->op.m, 409, "size_mismatch", msg, o->op.cors);
    } else if (o->op.a->cfg.max_jobs_per_org > 0) {
        /* A bound on one org's jobs in flight, so one tenant cannot queue enough to hold every
         * encoder for hours; checked before the copy, so a refused promote costs no storage.
         * Two promotes at once may both pass: the bound is soft by that much. */
        rd_msg *req = store_request(STORE_ORG_ACTIVE_JOBS);
        snprintf(msg_body(req, store)->assets[0].org, sizeof(msg_body(req, store)->assets[0].org),
                 "%s", o->x.org);
        promote_ask(o, req, PR_COUNT);
        return;
    } else {
        promote_copy(o);
        return;
    }
    promote_end(o);
}

/* The store's answer to the promote's request of step o->op.step. */
static int promote_stored(rd_actor *self, rd_msg *ans, int err, void *ctx)
{
    (void)self;
    promote_op *o = ctx;
    const struct rd_msg_store *b;
    int r = store_answer(ans, err, &b);
    char msg[256];
    if (o->op.step == PR_FIND && r == -ENOENT) {
        reply_error(o->op.m, 404, "not_found", "No such asset.", o->op.cors);
    } else if (r < 0) {
        if (o->op.step == PR_FIND)
            log_error("api_asset_find_failed", KV_ERRNO(r));
        else
            log_error(o->op.step == PR_SET     ? "api_asset_update_failed"
                      : o->op.step == PR_COUNT ? "api_org_jobs_count_failed"
                                               : "api_job_create_failed",
                      KV_STR("asset", o->x.public_id), KV_ERRNO(r));
        store_failed(o->op.m, r, o->op.cors);
    } else if (o->op.step == PR_FIND) {
        o->x = b->assets[0];
        msg_free(ans);
        if (upload_expired(o->op.m, &o->x, o->op.cors)) {
            promote_end(o);
        } else if (o->x.job_id != 0) { /* promoted already: the same job */
            promote_accepted(o);
        } else if (o->x.nparts > 0 && strcmp(o->x.state, "uploading") == 0) {
            reply_error(o->op.m, 409, "upload_incomplete",
                        "Complete the multipart upload (POST /api/uploads/{id}/complete) before "
                        "promoting.",
                        o->op.cors);
            promote_end(o);
        } else {
            o->op.sink = (blob_sink){.head = promote_head, .done = promote_headed};
            if ((r = blob_aio_head(o->op.a->backend.aio, loop_current(),
                                   o->op.a->cfg.s3_bucket_staging, o->x.staging_key, &o->op.sink,
                                   NULL)) < 0)
                promote_headed(&o->op.sink, r, "the HEAD could not start");
        }
        return 0;
    } else if (o->op.step == PR_COUNT) {
        int64_t active = b->counts.active;
        msg_free(ans);
        if (active < o->op.a->cfg.max_jobs_per_org) {
            promote_copy(o);
            return 0;
        }
        char hdr[400];
        snprintf(hdr, sizeof(hdr), "%sRetry-After: 30\r\n", o->op.cors);
        snprintf(msg, sizeof(msg),
                 "This org has %lld jobs queued or running, the most REELD_MAX_JOBS_PER_ORG "
                 "allows; promote again when one has finished.",
                 (long long)active);
        reply_error(o->op.m, 429, "too_many_jobs", msg, hdr);
        promote_end(o);
        return 0;
    } else if (o->op.step == PR_JOB) {
        o->x.job_id = b->jobs[0].id;
        msg_free(ans);
        promote_ask(o, asset_set_request(&o->x, "processing", o->x.job_id), PR_SET);
        return 0;
    } else { /* PR_SET */
        log_info("asset_promoted", KV_STR("asset", o->x.public_id), KV_STR("org", o->x.org),
                 KV_INT("job", o->x.job_id),
                 KV_INT("lock_days", o->op.a->cfg.object_lock_default_days));
        msg_free(ans);
        promote_accepted(o);
        return 0;
    }
    msg_free(ans);
    promote_end(o);
    return 0;
}

/* POST /api/assets/{id}/promote on front `self`: RD_KEPT (the request is the promote's until
 * answered) or RD_DONE once answered (400 options, 404 id). */
static int promote_begin(rd_actor *self, rd_msg *m, const principal *p, const char *cors)
{
    rd_job opts = {0};
    if (promote_options(m, cors, &opts) < 0)
        return RD_DONE;
    rd_msg *req = asset_find_request(m, p->org, "No such asset.", cors);
    if (req == NULL)
        return RD_DONE;
    promote_op *o = op_new(sizeof(*o), self, m, cors);
    o->opts = opts;
    promote_ask(o, req, PR_FIND);
    return RD_KEPT;
}

/* ---- exports: POST /api/assets/{id}/exports, GET /api/exports/{id}, .../cancel ----
 *
 * An export is a row and a job of kind "export" (STORE_EXPORT_CREATE writes both at once):
 * any node answers for it, and the transcode worker's encoders run it like a ladder. The
 * request is idempotent: the same range, height, track and format of the same asset is the
 * same export (the store's unique index), so a retried POST finds the first one. */

/* A number of seconds in 0..1e7 from token `i`, as milliseconds: 0, or -1 when it is not. */
static int seconds_field(const char *s, const json_tok *t, int i, int64_t *ms)
{
    char num[40], *end = NULL;
    double v = -1;
    if (t[i].type == JSON_NUMBER && t[i].len < sizeof(num)) {
        memcpy(num, s + t[i].start, t[i].len);
        num[t[i].len] = '\0';
        v = strtod(num, &end);
    }
    if (end == NULL || *end != '\0' || !(v >= 0 && v <= 1e7))
        return -1;
    *ms = (int64_t)llround(v * 1000);
    return 0;
}

/* The body's "start" and "end" (seconds, end after start) in ms: 0, or -1 once answered. */
static int body_range(const rd_msg *m, const char *s, const json_tok *t, int64_t *start,
                      int64_t *end, const char *cors)
{
    int si = json_get(s, t, 0, "start"), ei = json_get(s, t, 0, "end");
    if (si < 0 || ei < 0 || seconds_field(s, t, si, start) < 0 ||
        seconds_field(s, t, ei, end) < 0 || *end <= *start) {
        reply_error(m, 400, "invalid_range",
                    "start and end are seconds from 0 to 10000000, with end after start.", cors);
        return -1;
    }
    return 0;
}

static const char *export_state(int job_state)
{
    switch (job_state) {
    case JOB_QUEUED:
        return "queued";
    case JOB_RUNNING:
        return "processing";
    case JOB_SUCCEEDED:
        return "ready";
    case JOB_CANCELLED:
        return "cancelled";
    default:
        return "failed";
    }
}

static void edge_url(api *a, json_writer *w, const char *master_key, int64_t exp, const char *path,
                     int present, const char *download_name);

/* The export as the API shows it; download_url (signed, an attachment) once it is ready. */
static int export_json(api *a, char *buf, size_t cap, const rd_export *e)
{
    json_writer w;
    json_writer_init(&w, buf, cap);
    json_object_begin(&w);
    json_key(&w, "id");
    json_str(&w, e->public_id);
    json_key(&w, "export_id");
    json_str(&w, e->public_id);
    json_key(&w, "asset_id");
    json_str(&w, e->asset_public);
    char num[32];
    snprintf(num, sizeof(num), "%lld", (long long)e->job_id);
    json_key(&w, "job_id");
    json_str(&w, num);
    json_key(&w, "state");
    json_str(&w, export_state(e->job_state));
    json_key(&w, "progress");
    json_int64(&w, e->job_state == JOB_SUCCEEDED ? 100 : e->job_progress / 10);
    json_key(&w, "start");
    snprintf(num, sizeof(num), "%.3f", (double)e->start_ms / 1000.0);
    json_raw(&w, num, strlen(num));
    json_key(&w, "end");
    snprintf(num, sizeof(num), "%.3f", (double)e->end_ms / 1000.0);
    json_raw(&w, num, strlen(num));
    json_key(&w, "captions");
    if (e->lang[0])
        json_str(&w, e->lang);
    else
        json_raw(&w, "null", 4);
    json_key(&w, "height");
    if (e->height > 0)
        json_int64(&w, e->height);
    else
        json_raw(&w, "null", 4);
    json_key(&w, "format");
    json_str(&w, e->format);
    json_key(&w, "error");
    if (e->job_error[0] && e->job_state != JOB_SUCCEEDED)
        json_str(&w, e->job_error);
    else
        json_raw(&w, "null", 4);
    char created[32];
    iso_time(e->created_ms / 1000, created);
    json_key(&w, "created_at");
    json_str(&w, created);
    json_key(&w, "download_url");
    char path[64], name[2 * RD_EXPORT_ID_MAX];
    int64_t exp = (int64_t)time(NULL) + a->cfg.edge_link_ttl_sec;
    /* The attachment is named after the export: the asset's file name is not in the row. */
    snprintf(name, sizeof(name), "%s-%s", e->asset_public, e->public_id);
    snprintf(path, sizeof(path), RD_EXPORT_PATH_FMT, e->public_id);
    edge_url(a, &w, e->master_key, exp, path, e->job_state == JOB_SUCCEEDED, name);
    json_object_end(&w);
    return json_writer_finish(&w);
}

static void reply_export(api *a, const rd_msg *m, int status, const rd_export *e, const char *cors)
{
    char body[4096];
    int n = export_json(a, body, sizeof(body), e);
    if (n < 0)
        reply_error(m, 500, "internal", "The export does not fit an answer.", cors);
    else
        reply(m, status, body, (size_t)n, cors);
}

/* The store request for the export the path's id names, of `org`, or NULL once answered (404
 * for a malformed id). */
static rd_msg *export_request(const rd_msg *m, const char *org, const char *cors)
{
    http1_str id = http_request_param(msg_body(m, http_request), 0);
    if (!public_id_ok(id) || id.len >= RD_EXPORT_ID_MAX) {
        reply_error(m, 404, "not_found", "No such export.", cors);
        return NULL;
    }
    rd_msg *req = store_request(STORE_EXPORT_GET);
    rd_export *q = &msg_body(req, store)->exports[0];
    memcpy(q->public_id, id.p, id.len); /* length checked: the request is zeroed */
    snprintf(q->org, sizeof(q->org), "%s", org);
    return req;
}

/* The store's answer `r` (0 or -errno) with `ans` to an export's read: 0 with `out` filled, or
 * -1 once answered (404 for an unknown id or another org's, 503/500 when the store fails). */
static int export_found(const rd_msg *m, int r, rd_msg *ans, rd_export *out, const char *cors)
{
    if (r == -ENOENT)
        reply_error(m, 404, "not_found", "No such export.", cors);
    else if (r < 0)
        store_failed(m, r, cors);
    else
        *out = msg_body(ans, store)->exports[0];
    return r < 0 ? -1 : 0;
}

/* GET /api/exports/{id}, on a front: the store's answer to its read (the call does not
 * block). */
static int export_answer(rd_actor *self, rd_msg *ans, int err, void *ctx)
{
    api *a = self->state;
    rd_msg *m = ctx;
    char cors[300];
    rd_export e;
    if (export_found(m, front_status(a, m, ans, err, cors), ans, &e, cors) == 0)
        reply_export(a, m, 200, &e, cors);
    msg_free(ans);
    msg_free(m);
    return 0;
}

/* ---- POST /api/assets/{id}/exports and .../clips, on the front ----
 *
 * Both cut a range of a ready asset, and both are asynchronous chains on the front's loop:
 * the source's row (store), its master playlist then its top rung's playlist (blob store: the
 * video's length, so a range past the end is refused and an end past it is brought back to
 * it, which makes the same cut the same export), an export's caption track (store, when it
 * names one), then the create (store: the row and its job at once). A ladder without those
 * playlists leaves the length unknown (the encoder then stops at the video's end); object
 * storage failing is 502, so a range is never taken unchecked because S3 was away. */

enum { RG_FIND, RG_CAPTIONS, RG_CREATE };

typedef struct range_op {
    front_op op;
    int clip;    /* POST .../clips; else .../exports */
    rd_asset x;  /* the source */
    rd_export e; /* an export's fields; a clip's range is in e.start_ms, e.end_ms too */
    char title[200];
} range_op;

static void range_end(range_op *o)
{
    op_end(&o->op);
}

static int range_stored(rd_actor *self, rd_msg *ans, int err, void *ctx);

/* The create, once the range and the captions passed. */
static void range_create(range_op *o)
{
    rd_msg *req;
    if (o->clip) {
        req = store_request(STORE_CLIP_CREATE);
        rd_asset *c = &msg_body(req, store)->assets[0];
        if (new_public_id(c->public_id) < 0)
            goto no_id;
        c->source_start_ms = o->e.start_ms;
        c->source_end_ms = o->e.end_ms;
        snprintf(c->org, sizeof(c->org), "%s", o->x.org);
        snprintf(c->master_key, sizeof(c->master_key), "%s", c->public_id);
        snprintf(c->content_type, sizeof(c->content_type), "video/mp4");
        if (o->title[0])
            snprintf(c->filename, sizeof(c->filename), "%s.mp4", o->title);
        else
            snprintf(c->filename, sizeof(c->filename), "%s", o->x.filename);
        c->source_id = o->x.id;
    } else {
        req = store_request(STORE_EXPORT_CREATE);
        rd_export *e = &msg_body(req, store)->exports[0];
        *e = o->e;
        e->asset_id = o->x.id;
        snprintf(e->org, sizeof(e->org), "%s", o->x.org);
        if (new_public_id(e->public_id) < 0)
            goto no_id;
        e->public_id[0] = 'e';
    }
    /* After the row: it lies over a field the store does not read (the asset's job_progress,
     * the export's updated_ms). */
    msg_body(req, store)->jobs[0].max_attempts = JOB_ATTEMPTS;
    msg_body(req, store)->n = 1;
    op_ask(&o->op, req, RG_CREATE, range_stored);
    return;
no_id:
    msg_free(req);
    reply_error(o->op.m, 500, "internal", "No randomness for an id.", o->op.cors);
    range_end(o);
}

/* The ladder's length is known: the range checked against it (a ladder without one leaves
 * it unknown; object storage failing is 502, not a range taken unchecked). */
static void range_checked(void *ctx, int err, const char *why, int64_t duration, int fmp4,
                          const char *master, size_t master_len)
{
    (void)fmp4;
    (void)master;
    (void)master_len;
    range_op *o = ctx;
    if (err < 0 && err != -ENOENT) {
        log_error("api_playlist_read_failed", KV_STR("asset", o->x.public_id), KV_ERRNO(err),
                  KV_STR("why", why));
        reply_error(o->op.m, 502, "storage_failed", "Object storage failed; try again.",
                    o->op.cors);
        range_end(o);
        return;
    }
    if (op_stopped(&o->op))
        return;
    if (duration > 0 && o->e.start_ms >= duration) {
        reply_error(o->op.m, 400, "invalid_range", "start is past the end of the video.",
                    o->op.cors);
        range_end(o);
        return;
    }
    if (duration > 0 && o->e.end_ms > duration)
        o->e.end_ms = duration;
    if (!o->clip && o->e.lang[0]) {
        rd_msg *req = store_request(STORE_CAPTION_LIST);
        msg_body(req, store)->asset_id = o->x.id;
        op_ask(&o->op, req, RG_CAPTIONS, range_stored);
        return;
    }
    range_create(o);
}

/* The store's answer to the range's step o->op.step. */
static int range_stored(rd_actor *self, rd_msg *ans, int err, void *ctx)
{
    (void)self;
    range_op *o = ctx;
    const struct rd_msg_store *b;
    int r = store_answer(ans, err, &b);
    if (r == -ENOENT) { /* the source, or (at the create) the source gone meanwhile */
        reply_error(o->op.m, 404, "not_found", "No such asset.", o->op.cors);
    } else if (r < 0) {
        log_error(o->op.step == RG_FIND       ? "api_asset_find_failed"
                  : o->op.step == RG_CAPTIONS ? "api_caption_list_failed"
                                              : "api_create_failed",
                  KV_STR("asset", o->x.public_id), KV_STR("op", o->clip ? "clip" : "export"),
                  KV_ERRNO(r));
        store_failed(o->op.m, r, o->op.cors);
    } else if (o->op.step == RG_FIND) {
        o->x = b->assets[0];
        msg_free(ans);
        if (o->x.job_state != JOB_SUCCEEDED) {
            reply_error(o->op.m, 409, "not_ready", "Exports and clips are cut from a ready asset.",
                        o->op.cors);
            range_end(o);
        } else {
            ladder_start(o->op.a, &o->x, range_checked, o);
        }
        return 0;
    } else if (o->op.step == RG_CAPTIONS) {
        int found = 0;
        for (uint32_t i = 0; i < b->n && i < RD_STORE_BATCH; i++)
            found |= strcmp(b->captions[i].lang, o->e.lang) == 0;
        if (found) {
            msg_free(ans);
            range_create(o);
            return 0;
        }
        reply_error(o->op.m, 400, "unknown_captions",
                    "The asset has no caption track in that language: PUT it first.", o->op.cors);
    } else if (o->clip) { /* RG_CREATE */
        const rd_asset *got = &b->assets[0];
        log_info("clip_created", KV_STR("asset", got->public_id), KV_STR("source", o->x.public_id),
                 KV_INT("job", got->job_id), KV_INT("start_ms", got->source_start_ms),
                 KV_INT("end_ms", got->source_end_ms));
        char body[4096];
        int n = asset_json(body, sizeof(body), got);
        if (n < 0)
            reply_error(o->op.m, 500, "internal", "The clip does not fit an answer.", o->op.cors);
        else
            reply(o->op.m, 201, body, (size_t)n, o->op.cors);
    } else {
        const rd_export *got = &b->exports[0];
        if (got->created)
            log_info("export_created", KV_STR("asset", o->x.public_id),
                     KV_STR("export", got->public_id), KV_INT("job", got->job_id),
                     KV_INT("start_ms", got->start_ms), KV_INT("end_ms", got->end_ms),
                     KV_STR("captions", got->lang));
        reply_export(o->op.a, o->op.m, 202, got, o->op.cors);
    }
    msg_free(ans);
    range_end(o);
    return 0;
}

/* Starts the range op of request `m` on front `self`: an export's fields (`e`), or a clip's
 * (`title` not NULL; its range in e->start_ms, e->end_ms). RD_KEPT, or RD_DONE once answered
 * (404 for a malformed id). */
static int range_begin(rd_actor *self, rd_msg *m, const principal *p, const char *cors,
                       const rd_export *e, const char *title)
{
    rd_msg *req = asset_find_request(m, p->org, "No such asset.", cors);
    if (req == NULL)
        return RD_DONE;
    range_op *o = op_new(sizeof(*o), self, m, cors);
    o->e = *e;
    if ((o->clip = title != NULL))
        snprintf(o->title, sizeof(o->title), "%s", title);
    op_ask(&o->op, req, RG_FIND, range_stored);
    return RD_KEPT;
}

/* POST /api/assets/{id}/exports on front `self`: RD_KEPT, or RD_DONE once answered (400,
 * 404, 415). */
static int export_begin(rd_actor *self, rd_msg *m, const principal *p, const char *cors)
{
    json_tok t[24];
    if (json_body(m, cors, t, 24) < 0)
        return RD_DONE;
    const char *s = http_request_body(msg_body(m, http_request)).p;
    rd_export e;
    memset(&e, 0, sizeof(e));
    snprintf(e.format, sizeof(e.format), "mp4");
    int ci = json_get(s, t, 0, "captions"), hi = json_get(s, t, 0, "height"),
        fi = json_get(s, t, 0, "format");
    if (body_range(m, s, t, &e.start_ms, &e.end_ms, cors) < 0)
        return RD_DONE;
    if (fi >= 0) {
        char f[8];
        if (t[fi].type != JSON_STRING || json_string(s, &t[fi], f, sizeof(f)) < 0 ||
            strcmp(f, "mp4") != 0) {
            reply_error(m, 400, "invalid_field", "format must be \"mp4\".", cors);
            return RD_DONE;
        }
    }
    if (hi >= 0 && t[hi].type != JSON_NULL) {
        int64_t h = 0;
        if (t[hi].type != JSON_NUMBER || json_int(s, &t[hi], &h) < 0 || h < 144 || h > 4320 ||
            h % 2 != 0) {
            reply_error(m, 400, "invalid_field",
                        "height must be an even number of pixels from 144 to 4320.", cors);
            return RD_DONE;
        }
        e.height = (int32_t)h;
    }
    if (ci >= 0 && t[ci].type != JSON_NULL) {
        if (t[ci].type != JSON_STRING || json_string(s, &t[ci], e.lang, sizeof(e.lang)) < 0 ||
            !captions_lang_ok(e.lang, strlen(e.lang))) {
            reply_error(m, 400, "bad_lang",
                        "captions must name a caption track of the asset by its language (en, "
                        "pt-BR, ...).",
                        cors);
            return RD_DONE;
        }
    }
    return range_begin(self, m, p, cors, &e, NULL);
}

/* POST /api/exports/{id}/cancel, on the front: the export's row (store), its job cancelled
 * through the dispatcher (which stops it at once when it runs on this node; elsewhere that
 * node's next heartbeat finds it cancelled), then the row again for the answer. */

enum { EC_FIND, EC_AGAIN };

typedef struct cancel_op {
    front_op op;
    rd_export e;
} cancel_op;

static int cancel_stored(rd_actor *self, rd_msg *ans, int err, void *ctx);

/* The dispatcher's answer to the job's cancel. */
static int cancel_answered(rd_actor *self, rd_msg *reply, int err, void *ctx)
{
    (void)self;
    cancel_op *o = ctx;
    int r = err < 0 ? err : msg_body(reply, job_cancel)->status;
    msg_free(reply);
    if (r == -EALREADY) {
        reply_error(o->op.m, 409, "already_finished", "The export has already finished.",
                    o->op.cors);
    } else if (r < 0) {
        store_failed(o->op.m, r, o->op.cors);
    } else {
        log_info("export_cancelled", KV_STR("export", o->e.public_id), KV_INT("job", o->e.job_id));
        rd_msg *req = export_request(o->op.m, o->e.org, o->op.cors);
        if (req != NULL) {
            op_ask(&o->op, req, EC_AGAIN, cancel_stored);
            return 0;
        }
    }
    op_end(&o->op);
    return 0;
}

/* The store's answer to the export's read (EC_FIND, then EC_AGAIN for the answer). */
static int cancel_stored(rd_actor *self, rd_msg *ans, int err, void *ctx)
{
    (void)self;
    cancel_op *o = ctx;
    int r = store_answer(ans, err, NULL);
    if (export_found(o->op.m, r, ans, &o->e, o->op.cors) == 0) {
        if (o->op.step == EC_AGAIN) {
            reply_export(o->op.a, o->op.m, 200, &o->e, o->op.cors);
        } else {
            rd_msg *c = msg_new(MSG_JOB_CANCEL);
            msg_body(c, job_cancel)->id = o->e.job_id;
            msg_free(ans);
            op_ask_to(&o->op, o->op.a->dispatcher, c, EC_FIND, cancel_answered);
            return 0;
        }
    }
    msg_free(ans);
    op_end(&o->op);
    return 0;
}

/* POST /api/exports/{id}/cancel on front `self`: RD_KEPT, or RD_DONE once answered (404). */
static int cancel_begin(rd_actor *self, rd_msg *m, const principal *p, const char *cors)
{
    rd_msg *req = export_request(m, p->org, cors);
    if (req == NULL)
        return RD_DONE;
    cancel_op *o = op_new(sizeof(*o), self, m, cors);
    op_ask(&o->op, req, EC_FIND, cancel_stored);
    return RD_KEPT;
}

/* ---- POST /api/assets/{id}/clips ----
 *
 * A clip is a new asset cut from a ready one: its own id, master, ladder, poster and outputs,
 * and a `source` naming the parent and the range. STORE_CLIP_CREATE writes the asset and its
 * transcode job at once; that job cuts the clip's master from the parent's first (in the
 * masters bucket, under the clip's key, so Object Lock keeps it like any master and deleting
 * the parent leaves the clip whole), then makes its ladder. */
static int clip_begin(rd_actor *self, rd_msg *m, const principal *p, const char *cors)
{
    json_tok t[16];
    if (json_body(m, cors, t, 16) < 0)
        return RD_DONE;
    const char *s = http_request_body(msg_body(m, http_request)).p;
    rd_export range;
    memset(&range, 0, sizeof(range));
    int ti = json_get(s, t, 0, "title");
    if (body_range(m, s, t, &range.start_ms, &range.end_ms, cors) < 0)
        return RD_DONE;
    char title[200] = "";
    if (ti >= 0 && t[ti].type != JSON_NULL) {
        int n = t[ti].type == JSON_STRING ? json_string(s, &t[ti], title, sizeof(title) - 4) : -1;
        int ok = n > 0;
        for (int i = 0; ok && i < n; i++)
            ok = (unsigned char)title[i] >= 0x20 && title[i] != 0x7f;
        if (!ok) {
            reply_error(m, 400, "invalid_field", "title must be 1 to 195 bytes of text.", cors);
            return RD_DONE;
        }
    }
    return range_begin(self, m, p, cors, &range, title);
}

/* ---- GET /api/assets/{id}, /playback and the listing ---- */

/* What a ready asset's job may have published beside its ladder (src/media/transcode.h): the
 * master always, the rest when the job made them (an audio-only input has no pictures, a job
 * without MP4_DOWNLOAD no download). */
static const char *const outputs[] = {"master.m3u8", "poster.jpg", "poster.webp", "storyboard.vtt",
                                      "download.mp4"};
#define NOUTPUTS (sizeof(outputs) / sizeof(outputs[0]))

/* Which outputs asset `x` has, when that is known without object storage: none before its job
 * has succeeded, or what the cache kept for the job. 1 with `have` filled, 0 when only HEADs
 * can tell (look_start). */
static int outputs_known(api *a, const rd_asset *x, int have[NOUTPUTS])
{
    for (size_t i = 0; i < NOUTPUTS; i++)
        have[i] = 0;
    if (x->job_state != JOB_SUCCEEDED)
        return 1;
    uint64_t e = atomic_load_explicit(&a->outputs_cache[(uint64_t)x->job_id % OUTPUTS_CACHE],
                                      memory_order_relaxed);
    if (e == 0 || (e >> 8) != (uint64_t)x->job_id)
        return 0;
    for (size_t i = 0; i < NOUTPUTS; i++)
        have[i] = (int)((e >> i) & 1);
    return 1;
}

/* Keeps what a succeeded job published (it never changes): a status poll of a ready asset
 * costs no HEAD after the first. Only an answer every HEAD gave (found or 404) is kept. */
static void outputs_keep(api *a, const rd_asset *x, const int have[NOUTPUTS])
{
    uint64_t bits = 0x80;
    for (size_t i = 0; i < NOUTPUTS; i++)
        bits |= (uint64_t)(have[i] != 0) << i;
    atomic_store_explicit(&a->outputs_cache[(uint64_t)x->job_id % OUTPUTS_CACHE],
                          ((uint64_t)x->job_id << 8) | bits, memory_order_relaxed);
}

/* GET /api/assets/{id}'s answer for asset `x`, whose outputs are `have`. */
static void asset_answer(const rd_msg *m, const rd_asset *x, const int have[NOUTPUTS],
                         const char *cors)
{
    char body[2560];
    int n = asset_json(body, sizeof(body) - 256, x);
    if (n > 0 && body[n - 1] == '}') {
        /* ,"outputs":[...] before the closing brace: what a ready asset has published. */
        n--;
        n += snprintf(body + n, sizeof(body) - (size_t)n, ",\"outputs\":[");
        int first = 1;
        for (size_t i = 0; i < NOUTPUTS; i++)
            if (have[i]) {
                n += snprintf(body + n, sizeof(body) - (size_t)n, "%s\"%s\"", first ? "" : ",",
                              outputs[i]);
                first = 0;
            }
        n += snprintf(body + n, sizeof(body) - (size_t)n, "]}");
    }
    if (n < 0 || (size_t)n >= sizeof(body))
        reply_error(m, 500, "internal", "The asset does not fit an answer.", cors);
    else
        reply(m, 200, body, (size_t)n, cors);
}

/* A signed edge URL of `path` under the asset, or JSON null when the asset lacks it (or it
 * cannot be signed). With a `download_name` (a download link), ?download=1 and that name,
 * signed for the edge so it can name the attachment without the store. */
static void edge_url(api *a, json_writer *w, const char *master_key, int64_t exp, const char *path,
                     int present, const char *download_name)
{
    char url[1600];
    if (present && edge_url_sign(&a->edge, a->edge_base, exp, master_key, path,
                                 download_name != NULL, download_name, url, sizeof(url)) > 0)
        json_str(w, url);
    else
        json_raw(w, "null", 4);
}

/* GET /api/assets/{id}/playback's answer for asset `x`, whose outputs are `have`. */
static void playback_answer(api *a, const rd_msg *m, const rd_asset *x, const int have[NOUTPUTS],
                            const char *cors)
{
    if (x->job_id == 0) {
        reply_error(m, 409, "not_ready", "Promote the asset first; playback follows its job.",
                    cors);
        return;
    }
    /* The link is good from promotion on; its master playlist appears (the edge answers 404
     * until then) only once every rung is published, which `ready` says. A link to the edge,
     * signed with the key it checks (proto/edge_token.h). */
    char expires[32], body[4096], url[800];
    int64_t exp = (int64_t)time(NULL) + a->cfg.edge_link_ttl_sec;
    int r = edge_url_sign(&a->edge, a->edge_base, exp, x->master_key, "master.m3u8", 0, NULL, url,
                          sizeof(url));
    iso_time(exp, expires);
    json_writer w;
    json_writer_init(&w, body, sizeof(body));
    json_object_begin(&w);
    json_key(&w, "url");
    json_str(&w, url);
    json_key(&w, "expires_at");
    json_str(&w, expires);
    json_key(&w, "state");
    json_str(&w, x->state);
    json_key(&w, "ready");
    json_bool(&w, x->job_state == JOB_SUCCEEDED);
    /* The pictures and the download, once the job has published them (null until then, or
     * when the job made none), signed like the master's link. */
    json_key(&w, "poster_url");
    edge_url(a, &w, x->master_key, exp, "poster.jpg", have[1], NULL);
    json_key(&w, "poster_webp_url");
    edge_url(a, &w, x->master_key, exp, "poster.webp", have[2], NULL);
    json_key(&w, "storyboard_vtt_url");
    edge_url(a, &w, x->master_key, exp, "storyboard.vtt", have[3], NULL);
    json_key(&w, "mp4_url");
    edge_url(a, &w, x->master_key, exp, "download.mp4", have[4], NULL);
    json_key(&w, "mp4_download_url");
    edge_url(a, &w, x->master_key, exp, "download.mp4", have[4], x->filename);
    json_object_end(&w);
    int n = json_writer_finish(&w);
    if (r < 0 || n < 0)
        reply_error(m, 500, "internal", "The playback URL could not be signed.", cors);
    else
        reply(m, 200, body, (size_t)n, cors);
}

/* GET /api/assets?cursor=&limit=&state=: the caller's assets, newest first, in pages under an
 * opaque cursor. One route, one owner: for an authenticated caller its org's assets; in the
 * open embedded mode (loopback clients only: the operators) every org's, the view the
 * operators' listing gave before (read_org). */
/* The store request of a listing, or NULL once answered (400 for a bad parameter). */
static rd_msg *list_request(api *a, const rd_msg *m, const principal *p, const char *cors)
{
    http1_str query = http_request_query(msg_body(m, http_request));
    http1_str cursor = http1_query_param(query, "cursor");
    http1_str limit = http1_query_param(query, "limit");
    http1_str state = http1_query_param(query, "state");
    int64_t after = 0;
    if (job_cursor_decode(cursor.p ? cursor.p : "", cursor.len, 'a', &after) < 0) {
        reply_error(m, 400, "bad_cursor", "The cursor is malformed; use next_cursor as given.",
                    cors);
        return NULL;
    }
    int64_t lim = RD_STORE_BATCH;
    if (limit.p != NULL) {
        lim = 0;
        for (size_t i = 0; i < limit.len && lim <= RD_STORE_BATCH; i++)
            lim = limit.p[i] >= '0' && limit.p[i] <= '9' ? lim * 10 + (limit.p[i] - '0') : -1;
        if (limit.len == 0 || lim < 1 || lim > RD_STORE_BATCH) {
            reply_error(m, 400, "bad_limit", "limit must be an integer from 1 to 32.", cors);
            return NULL;
        }
    }
    static const char *const states[] = {"uploading", "uploaded", "processing",
                                         "ready",     "failed",   "expired"};
    int known = state.p == NULL || state.len == 0;
    for (size_t i = 0; !known && i < sizeof(states) / sizeof(states[0]); i++)
        known = strlen(states[i]) == state.len && memcmp(states[i], state.p, state.len) == 0;
    if (!known) {
        reply_error(m, 400, "bad_state",
                    "state must be uploading, uploaded, processing, ready or failed.", cors);
        return NULL;
    }
    rd_msg *req = store_request(STORE_ASSET_LIST);
    struct rd_msg_store *b = msg_body(req, store);
    b->cursor = after;
    b->limit = (uint32_t)lim;
    snprintf(b->assets[0].org, sizeof(b->assets[0].org), "%s", read_org(a, p));
    if (state.p != NULL)
        memcpy(b->assets[0].state, state.p, state.len); /* a known name: it fits */
    return req;
}

/* The store's answer `ans` to listing request `ctx` (a front's: the call does not block). */
static int list_answer(rd_actor *self, rd_msg *ans, int err, void *ctx)
{
    api *a = self->state;
    rd_msg *m = ctx;
    char cors[300];
    int st = front_status(a, m, ans, err, cors);
    if (st < 0) {
        log_error("api_asset_list_failed", KV_ERRNO(st));
        store_failed(m, st, cors);
    } else {
        const struct rd_msg_store *b = msg_body(ans, store);
        size_t cap = 256 + (size_t)b->n * 2048;
        char *body = rd_malloc(cap, "answering a listing");
        size_t len = page_json(body, cap, b, 'a');
        reply(m, 200, body, len, cors);
        free(body);
    }
    msg_free(ans);
    msg_free(m);
    return 0;
}

/* ---- webhooks: PUT/GET/DELETE /api/webhook, rotate-secret, deliveries ---- */

/* A new signing secret: "whsec_" and 64 hex digits of 256 random bits. 0 or -errno. */
static int new_webhook_secret(char out[WEBHOOK_SECRET_MAX])
{
    uint8_t rnd[32];
    if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
        return -EIO;
    memcpy(out, "whsec_", 6);
    hmac_hex(out + 6, rnd, sizeof(rnd));
    memset(rnd, 0, sizeof(rnd));
    return 0;
}

/* The endpoint as clients see it; the secret only when `secret` (creation, rotation). */
static void reply_webhook(const rd_msg *m, int status, const rd_webhook *w, int secret,
                          const char *cors)
{
    char body[4096], t[32];
    json_writer j;
    json_writer_init(&j, body, sizeof(body));
    json_object_begin(&j);
    json_key(&j, "url");
    json_str(&j, w->url);
    json_key(&j, "events");
    json_array_begin(&j);
    for (const char *p = w->events; *p;) {
        const char *c = strchr(p, ',');
        size_t len = c ? (size_t)(c - p) : strlen(p);
        json_strn(&j, p, len);
        p += len + (c != NULL);
    }
    json_array_end(&j);
    if (secret) {
        json_key(&j, "secret");
        json_str(&j, w->secret);
    }
    if (w->previous[0] != '\0' && w->previous_until_ms > (int64_t)time(NULL) * 1000) {
        iso_time(w->previous_until_ms / 1000, t);
        json_key(&j, "previous_secret_expires_at");
        json_str(&j, t);
    }
    iso_time(w->created_ms / 1000, t);
    json_key(&j, "created_at");
    json_str(&j, t);
    iso_time(w->updated_ms / 1000, t);
    json_key(&j, "updated_at");
    json_str(&j, t);
    json_object_end(&j);
    int n = json_writer_finish(&j);
    if (n < 0)
        reply_error(m, 500, "internal", "The webhook does not fit an answer.", cors);
    else
        reply(m, status, body, (size_t)n, cors);
}

/* The store request of PUT /api/webhook, or NULL once answered (400 for a bad body, 500 when no
 * random bytes are to be had for its secret). */
static rd_msg *put_webhook_request(api *a, const rd_msg *m, const principal *p, const char *cors)
{
    json_tok t[64];
    if (json_body(m, cors, t, 64) < 0)
        return NULL;
    const char *s = http_request_body(msg_body(m, http_request)).p;
    int ui = json_get(s, t, 0, "url"), ei = json_get(s, t, 0, "events");
    char url[WEBHOOK_URL_MAX + 1];
    int ul = ui < 0 ? -EINVAL : json_string(s, &t[ui], url, sizeof(url));
    if (ul == -ENOSPC) {
        reply_error(m, 400, "invalid_url", "url is longer than 2048 bytes.", cors);
        return NULL;
    }
    if (ul <= 0 || strlen(url) != (size_t)ul) {
        reply_error(m, 400, "invalid_field",
                    "url is required: an https:// or http:// URL of at most 2048 bytes.", cors);
        return NULL;
    }
    webhook_url u;
    const char *why = NULL;
    if (webhook_url_parse(url, (size_t)ul, &u, &why) < 0) {
        reply_error(m, 400, "invalid_url", why, cors);
        return NULL;
    }
    if (!a->cfg.webhook_allow_private && webhook_host_private(&u)) {
        reply_error(m, 400, "private_url",
                    "url names a loopback, private or link-local host; webhooks go to public "
                    "endpoints (WEBHOOK_ALLOW_PRIVATE=1 allows others).",
                    cors);
        return NULL;
    }
    int bits = WEBHOOK_EV_ALL;
    if (ei >= 0) {
        if (t[ei].type != JSON_ARRAY) {
            reply_error(m, 400, "invalid_field", "events must be an array of event types.", cors);
            return NULL;
        }
        bits = 0;
        for (uint32_t i = 0;; i++) {
            int k = json_item(t, ei, i);
            if (k < 0)
                break;
            char name[WEBHOOK_TYPE_MAX];
            int nl = json_string(s, &t[k], name, sizeof(name));
            int bit = nl > 0 ? webhook_event_bit(name, (size_t)nl) : 0;
            if (bit == 0) {
                reply_error(m, 400, "invalid_event",
                            "events may hold asset.uploaded, asset.ready, asset.failed, "
                            "asset.deleted, export.ready and export.failed.",
                            cors);
                return NULL;
            }
            bits |= bit;
        }
        if (bits == 0) {
            reply_error(m, 400, "invalid_field", "events must name at least one event type.", cors);
            return NULL;
        }
    }
    rd_msg *req = store_request(STORE_WEBHOOK_PUT);
    rd_webhook *w = &msg_body(req, store)->webhook;
    snprintf(w->org, sizeof(w->org), "%s", p->org);
    memcpy(w->url, url, (size_t)ul + 1);
    webhook_events_format(bits, w->events);
    if (new_webhook_secret(w->secret) < 0) {
        msg_free(req);
        reply_error(m, 500, "internal", "No random bytes for a secret; see the logs.", cors);
        return NULL;
    }
    return req;
}

/* The store op of a request to /api/webhook (GET, PUT, DELETE) or its rotate-secret. */
static int webhook_op(const api *a, const rd_msg *m)
{
    const rd_http_request *q = msg_body(m, http_request);
    return (int)q->route == a->route[R_WH_ROTATE] ? STORE_WEBHOOK_ROTATE
           : q->method == RD_HTTP_DELETE          ? STORE_WEBHOOK_DELETE
           : q->method == RD_HTTP_PUT             ? STORE_WEBHOOK_PUT
                                                  : STORE_WEBHOOK_GET;
}

/* The store request of a request to /api/webhook or its rotate-secret (`op`), or NULL once
 * answered (400 for a bad PUT body, 500: no random bytes for a new secret). */
static rd_msg *webhook_request(api *a, const rd_msg *m, const principal *p, int op,
                               const char *cors)
{
    if (op == STORE_WEBHOOK_PUT)
        return put_webhook_request(a, m, p, cors);
    rd_msg *req = store_request((rd_store_op)op);
    struct rd_msg_store *b = msg_body(req, store);
    snprintf(b->webhook.org, sizeof(b->webhook.org), "%s", p->org);
    if (op == STORE_WEBHOOK_ROTATE) {
        b->lease_ms = (int64_t)a->cfg.webhook_secret_grace_sec * 1000;
        if (new_webhook_secret(b->webhook.secret) < 0) {
            msg_free(req);
            reply_error(m, 500, "internal", "No random bytes for a secret; see the logs.", cors);
            return NULL;
        }
    }
    return req;
}

/* The store's answer to request `ctx`'s webhook_request, on a front (one store statement: no
 * object storage, so no thread). Its op is the request's (webhook_op). */
static int webhook_answer(rd_actor *self, rd_msg *ans, int err, void *ctx)
{
    api *a = self->state;
    rd_msg *m = ctx;
    char cors[300];
    int r = front_status(a, m, ans, err, cors);
    int op = webhook_op(a, m);
    rd_webhook *w = ans != NULL ? &msg_body(ans, store)->webhook : NULL;
    if (r == -ENOENT) {
        reply_error(m, 404, "not_found", "This org has no webhook; PUT /api/webhook first.", cors);
    } else if (r < 0) {
        log_error("api_webhook_failed", KV_STR("org", w ? w->org : ""), KV_INT("op", op),
                  KV_ERRNO(r));
        store_failed(m, r, cors);
    } else if (op == STORE_WEBHOOK_PUT) {
        log_info("webhook_set", KV_STR("org", w->org), KV_STR("events", w->events),
                 KV_INT("created", w->created));
        /* The secret is shown once, when the endpoint is created; later PUTs keep it (rotate
         * it with POST /api/webhook/rotate-secret). */
        reply_webhook(m, w->created ? 201 : 200, w, w->created, cors);
    } else if (op == STORE_WEBHOOK_DELETE) {
        log_info("webhook_deleted", KV_STR("org", w->org));
        reply(m, 204, "", 0, cors);
    } else {
        if (op == STORE_WEBHOOK_ROTATE)
            log_info("webhook_secret_rotated", KV_STR("org", w->org),
                     KV_INT("grace_sec", a->cfg.webhook_secret_grace_sec));
        reply_webhook(m, 200, w, op == STORE_WEBHOOK_ROTATE, cors);
    }
    if (w != NULL)
        memset(w, 0, sizeof(*w)); /* the secrets */
    msg_free(ans);
    msg_free(m);
    return 0;
}

/* The store request of GET /api/webhook/deliveries, or NULL once answered (400). */
static rd_msg *deliveries_request(const rd_msg *m, const principal *p, const char *cors)
{
    http1_str query = http_request_query(msg_body(m, http_request));
    http1_str cursor = http1_query_param(query, "cursor");
    int64_t after = 0;
    if (job_cursor_decode(cursor.p ? cursor.p : "", cursor.len, 'w', &after) < 0) {
        reply_error(m, 400, "bad_cursor", "The cursor is malformed; use next_cursor as given.",
                    cors);
        return NULL;
    }
    rd_msg *req = store_request(STORE_WEBHOOK_LIST);
    struct rd_msg_store *b = msg_body(req, store);
    b->cursor = after;
    b->limit = RD_STORE_BATCH;
    snprintf(b->webhook.org, sizeof(b->webhook.org), "%s", p->org);
    return req;
}

/* The store's answer `ans` to request `ctx`'s deliveries (a front's: the call does not
 * block). */
static int deliveries_answer(rd_actor *self, rd_msg *ans, int err, void *ctx)
{
    api *a = self->state;
    rd_msg *m = ctx;
    char cors[300];
    int r = front_status(a, m, ans, err, cors);
    if (r < 0) {
        log_error("api_webhook_list_failed", KV_ERRNO(r));
        store_failed(m, r, cors);
        msg_free(ans);
        msg_free(m);
        return 0;
    }
    const struct rd_msg_store *b = msg_body(ans, store);
    size_t cap = 512 + (size_t)b->n * 1024;
    char *body = rd_malloc(cap, "answering a listing");
    json_writer j;
    json_writer_init(&j, body, cap);
    json_object_begin(&j);
    json_key(&j, "deliveries");
    json_array_begin(&j);
    char t[32];
    for (uint32_t i = 0; i < b->n; i++) {
        const rd_webhook_delivery *d = &b->deliveries[i];
        json_object_begin(&j);
        json_key(&j, "event_id");
        json_str(&j, d->event_id);
        json_key(&j, "type");
        json_str(&j, d->type);
        json_key(&j, "asset_id");
        json_str(&j, d->asset_public);
        json_key(&j, "attempt");
        json_int64(&j, d->attempt);
        json_key(&j, "status_code");
        if (d->status_code > 0)
            json_int64(&j, d->status_code);
        else
            json_raw(&j, "null", 4);
        json_key(&j, "latency_ms");
        json_int64(&j, d->latency_ms);
        json_key(&j, "state");
        json_str(&j, d->state);
        json_key(&j, "error");
        json_str(&j, d->error);
        json_key(&j, "next_retry_at");
        if (d->next_retry_ms > 0) {
            iso_time(d->next_retry_ms / 1000, t);
            json_str(&j, t);
        } else {
            json_raw(&j, "null", 4);
        }
        iso_time(d->created_ms / 1000, t);
        json_key(&j, "attempted_at");
        json_str(&j, t);
        json_object_end(&j);
    }
    json_array_end(&j);
    json_key(&j, "next_cursor");
    if (b->cursor != 0) {
        char next[RD_CURSOR_MAX];
        job_cursor_encode(next, 'w', b->cursor);
        json_str(&j, next);
    } else {
        json_raw(&j, "null", 4);
    }
    json_object_end(&j);
    int n = json_writer_finish(&j);
    msg_free(ans);
    if (n < 0)
        reply_error(m, 500, "internal", "The listing does not fit an answer.", cors);
    else
        reply(m, 200, body, (size_t)n, cors);
    free(body);
    msg_free(m);
    return 0;
}

/* ---- GET /api/assets/{id}/events: live progress ---- */

/* GET /api/assets/{id}/events for asset `x`, found in the caller's org (a front's, once the
 * store has answered: nothing here blocks). */
static void events_open(api *a, const rd_msg *m, const rd_asset *x, const char *cors)
{
    /* Last-Event-ID: what an EventSource saw before it reconnected (a number, else ignored). */
    int64_t last = -1;
    http1_str le = http_request_header(msg_body(m, http_request), "last-event-id");
    if (le.len > 0 && le.len < 19) {
        int64_t v = 0;
        size_t i = 0;
        while (i < le.len && le.p[i] >= '0' && le.p[i] <= '9')
            v = v * 10 + (le.p[i++] - '0');
        if (i == le.len)
            last = v;
    }
    char hdr[512];
    if (progress_asset_final(x) && last >= progress_event_id(x)) {
        /* The client saw the end: 204 tells EventSource not to reconnect again. */
        snprintf(hdr, sizeof(hdr), "%sCache-Control: no-store\r\n", cors);
        reply(m, 204, NULL, 0, hdr);
        return;
    }
    const char *org = a->open_mode ? "" : x->org; /* read_org: the asset is the caller's */
    int admitted = progress_stream_admit(org, a->cfg.sse_max_per_org);
    if (admitted < 0) {
        snprintf(hdr, sizeof(hdr), "%sRetry-After: 5\r\n", cors);
        reply_error(m, 429, "too_many_streams",
                    admitted == -EUSERS
                        ? "Too many live progress streams are open for this org on this node "
                          "(REELD_SSE_MAX_PER_ORG); close one or poll GET /api/assets/{id}."
                        : "Too many live progress streams are open on this node; try again "
                          "shortly or poll GET /api/assets/{id}.",
                    hdr);
        return;
    }
    snprintf(hdr, sizeof(hdr), "%sCache-Control: no-store\r\nX-Accel-Buffering: no\r\n", cors);
    if (http_reply_stream(m, 200, "text/event-stream", -1, hdr) < 0) {
        progress_stream_release(org);
        return; /* the listener is gone */
    }
    rd_msg *o = msg_new(MSG_SSE_OPEN);
    struct rd_msg_sse_open *so = msg_body(o, sse_open);
    so->listener = m->from;
    so->stream = msg_body(m, http_request)->stream;
    snprintf(so->public_id, sizeof(so->public_id), "%s", x->public_id);
    snprintf(so->org, sizeof(so->org), "%s", org);
    so->last_event_id = last;
    uint64_t stream = so->stream;
    if (actor_send(a->sse, o) < 0) {
        msg_free(o);
        progress_stream_release(org);
        http_send_part(m->from, stream, NULL, 1, NULL);
    }
}

/* ---- DELETE /api/assets/{id} and the sweeps, on the fronts ----
 *
 * An asset's objects go in one asynchronous chain on a front's loop (purge_start): its
 * previews (every key under its prefix, listed, then deleted WIPE_WINDOW at a time), its
 * multipart upload and staging object, and its master unless Object Lock retention still holds
 * it; then the store records the outcome. Every object is tried whatever failed before. The
 * DELETE route starts one for the asset it deleted; the sweep (a timer on the first loop's
 * front) starts them for what is still to go, and removes what expired uploads left in
 * staging. Nothing of it holds a thread. */

#define WIPE_WINDOW 8 /* deletes in flight per prefix */

/* Deletes every object of the previews bucket under a prefix: the list, then the deletes. */
typedef struct wipe {
    blob_sink sink; /* the list's */
    api *a;
    char asset[RD_ASSET_ID_MAX]; /* for the log */
    char *keys;                  /* listed, a NUL after each */
    size_t len, at;              /* bytes of keys; where the next to delete starts */
    int inflight, listing;
    int fail; /* the last failure (-errno), 0 */
    void (*done)(void *ctx, int fail);
    void *ctx;
} wipe;

typedef struct wipe_del {
    blob_sink sink;
    wipe *w;
    const char *key; /* in w->keys */
} wipe_del;

static void wipe_more(wipe *w);

static void wipe_deleted(blob_sink *s, int err, const char *why)
{
    wipe_del *d = (wipe_del *)s;
    wipe *w = d->w;
    if (err < 0 && err != -ENOENT) {
        log_warn("asset_purge_failed", KV_STR("asset", w->asset), KV_STR("key", d->key),
                 KV_ERRNO(err), KV_STR("why", why != NULL ? why : ""));
        w->fail = err;
    }
    free(d);
    w->inflight--;
    wipe_more(w);
}

/* Starts deletes up to the window; the end once none is left. A delete that ends at once (it
 * could not start, or the loop is stopping) comes back here before this call has finished:
 * the call holds one count of `inflight` while it starts them, so only the outermost call
 * ends the wipe. */
static void wipe_more(wipe *w)
{
    w->inflight++;
    while (!w->listing && w->inflight <= WIPE_WINDOW && w->at < w->len) {
        wipe_del *d = rd_calloc(1, sizeof(*d), "a delete");
        d->sink.done = wipe_deleted;
        d->w = w;
        d->key = w->keys + w->at;
        w->at += strlen(d->key) + 1;
        w->inflight++;
        int r = blob_aio_delete(w->a->backend.aio, loop_current(), w->a->cfg.s3_bucket_previews,
                                d->key, &d->sink, NULL);
        if (r == -EINVAL) { /* a key reeld never makes ("a/", "a//b"): left, said once */
            log_warn("asset_purge_key_refused", KV_STR("asset", w->asset), KV_STR("key", d->key));
            wipe_deleted(&d->sink, 0, NULL);
        } else if (r < 0) {
            wipe_deleted(&d->sink, r, "the DELETE could not start");
        }
    }
    if (--w->inflight > 0 || w->listing || w->at < w->len)
        return;
    void (*done)(void *, int) = w->done;
    void *ctx = w->ctx;
    int fail = w->fail;
    free(w->keys);
    free(w);
    done(ctx, fail);
}

static void wipe_keys(blob_sink *s, rd_buf *chunk)
{
    wipe *w = (wipe *)s;
    w->keys = rd_realloc(w->keys, w->len + chunk->len, "an asset's keys");
    memcpy(w->keys + w->len, chunk->data, chunk->len);
    w->len += chunk->len;
    buf_unref(chunk);
}

static void wipe_listed(blob_sink *s, int err, const char *why)
{
    wipe *w = (wipe *)s;
    if (err < 0 && err != -ENOENT) {
        log_warn("asset_purge_list_failed", KV_STR("asset", w->asset), KV_ERRNO(err),
                 KV_STR("why", why != NULL ? why : ""));
        w->fail = err;
    }
    w->listing = 0;
    wipe_more(w);
}

/* Deletes the previews under `prefix` of asset `asset` on this front's loop; `done` gets the
 * last failure (0 when every object went). */
static void wipe_start(api *a, const char *prefix, const char *asset,
                       void (*done)(void *ctx, int fail), void *ctx)
{
    wipe *w = rd_calloc(1, sizeof(*w), "a prefix's deletion");
    w->sink = (blob_sink){.data = wipe_keys, .done = wipe_listed};
    w->a = a;
    snprintf(w->asset, sizeof(w->asset), "%s", asset);
    w->done = done;
    w->ctx = ctx;
    w->listing = 1;
    int r = blob_aio_list(a->backend.aio, loop_current(), a->cfg.s3_bucket_previews, prefix,
                          &w->sink, NULL);
    if (r < 0)
        wipe_listed(&w->sink, r, "the LIST could not start");
}

enum { PG_PREVIEWS, PG_ABORT, PG_STAGING, PG_MASTER, PG_RECORD };

typedef struct purge_op purge_op;
struct purge_op {
    blob_sink sink; /* the single requests' */
    rd_actor *self; /* the front */
    api *a;
    rd_asset x;
    int64_t retry_ms; /* > 0: the store tries again then (a job that may still write) */
    int step;
    int fail;      /* the last failure (-errno), 0 */
    int64_t until; /* the master is retained until then (Unix seconds), 0 */
    void (*done)(purge_op *p, int all_gone);
    void *ctx;
};

static void purge_step(purge_op *p);

static void purge_head(blob_sink *s, const blob_meta *m)
{
    ((purge_op *)s)->until = m->retained_until;
}

/* One object request of the chain is back (the abort's failure is not one: gone already or
 * not, the staging object's delete follows). */
static void purge_blob_done(blob_sink *s, int err, const char *why)
{
    purge_op *p = (purge_op *)s;
    if (err < 0 && err != -ENOENT && p->step != PG_ABORT) {
        log_warn("asset_purge_failed", KV_STR("asset", p->x.public_id),
                 KV_STR("bucket", p->step == PG_STAGING ? "staging" : "masters"), KV_ERRNO(err),
                 KV_STR("why", why != NULL ? why : ""));
        p->fail = err;
    }
    p->step++;
    purge_step(p);
}

static void purge_previews_done(void *ctx, int fail)
{
    purge_op *p = ctx;
    if (fail < 0)
        p->fail = fail;
    p->step = PG_ABORT;
    purge_step(p);
}

/* The store's answer to the outcome's record. */
static int purge_recorded(rd_actor *self, rd_msg *ans, int err, void *ctx)
{
    (void)self;
    purge_op *p = ctx;
    int r = store_answer(ans, err, NULL);
    msg_free(ans);
    if (r < 0 && r != -ENOENT)
        log_warn("asset_purge_record_failed", KV_STR("asset", p->x.public_id), KV_ERRNO(r));
    p->x.master_until_ms = p->until * 1000;
    int all_gone = p->fail == 0 && p->retry_ms == 0 && r == 0;
    if (all_gone)
        log_info("asset_purged", KV_STR("asset", p->x.public_id), KV_INT("master_until", p->until));
    p->done(p, all_gone);
    free(p);
    return 0;
}

/* The outcome to the store: done, the master kept until its retention ends, or again later. */
static void purge_record(purge_op *p)
{
    int64_t now = (int64_t)time(NULL);
    rd_msg *req = store_request(STORE_ASSET_PURGED);
    struct rd_msg_store *b = msg_body(req, store);
    b->assets[0].id = p->x.id;
    b->assets[0].master_until_ms = p->until * 1000;
    b->lease_ms = p->fail < 0       ? 30000
                  : p->retry_ms > 0 ? p->retry_ms
                  : p->until > now  ? (p->until - now + 1) * 1000
                                    : 0;
    if (atomic_load(&p->self->stopped) ||
        actor_request(p->self, p->a->store_actor, req, STORE_WAIT_MS, purge_recorded, p) < 0) {
        msg_free(req);
        purge_recorded(p->self, NULL, -EAGAIN, p);
    }
}

/* Starts the chain's step p->step, or the first after it that the asset has something for. */
static void purge_step(purge_op *p)
{
    api *a = p->a;
    const rd_asset *x = &p->x;
    blob_aio *s = a->backend.aio;
    rd_loop *l = loop_current();
    if (atomic_load(&p->self->stopped) && p->step < PG_RECORD) {
        p->fail = -ECANCELED; /* a stopping front starts no more work; a sweep takes it up */
        p->step = PG_RECORD;
    }
    p->sink = (blob_sink){.done = purge_blob_done};
    int r;
    for (;; p->step++) {
        if (p->step == PG_PREVIEWS && x->master_key[0]) {
            char prefix[RD_STORE_TEXT_MAX + 2];
            snprintf(prefix, sizeof(prefix), "%s/", x->master_key);
            wipe_start(a, prefix, x->public_id, purge_previews_done, p);
            return;
        }
        if (p->step == PG_ABORT && x->upload_id[0] && blob_aio_has_uploads(s)) {
            r = blob_aio_upload_abort(s, l, a->cfg.s3_bucket_staging, x->staging_key, x->upload_id,
                                      &p->sink, NULL);
            break;
        }
        if (p->step == PG_STAGING && x->staging_key[0]) {
            r = blob_aio_delete(s, l, a->cfg.s3_bucket_staging, x->staging_key, &p->sink, NULL);
            break;
        }
        if (p->step == PG_MASTER && x->master_key[0] && x->job_id != 0) {
            /* Promoted: a master, which Object Lock may still hold. */
            p->sink.head = purge_head;
            r = blob_aio_delete_unless_retained(s, l, a->cfg.s3_bucket_masters, x->master_key,
                                                &p->sink, NULL);
            break;
        }
        if (p->step >= PG_RECORD) {
            purge_record(p);
            return;
        }
    }
    if (r < 0)
        purge_blob_done(&p->sink, r, "the request could not start");
}

/* Purges asset `x` (deleted in the store) on front `self`'s loop; `done` gets the op (its x
 * with master_until_ms set) and 1 when everything but a retained master is gone and nothing is
 * left to do soon, 0 when the rest is the sweep's. `retry_ms` > 0: the store tries again then
 * whatever happens (a job that was running may still write). */
static void purge_start(rd_actor *self, const rd_asset *x, int64_t retry_ms,
                        void (*done)(purge_op *p, int all_gone), void *ctx)
{
    purge_op *p = rd_calloc(1, sizeof(*p), "an asset's purge");
    p->self = self;
    p->a = self->state;
    p->x = *x;
    p->retry_ms = retry_ms;
    p->done = done;
    p->ctx = ctx;
    p->step = PG_PREVIEWS;
    purge_step(p);
}

/* DELETE /api/assets/{id}: the store's delete, then the purge, then the answer. */
static void delete_answer(front_op *o, const rd_asset *x, int done)
{
    int64_t now_ms = (int64_t)time(NULL) * 1000;
    if (done && x->master_until_ms <= now_ms) {
        reply(o->m, 204, "", 0, o->cors);
        op_end(o);
        return;
    }
    char body[256], until[32];
    json_writer w;
    json_writer_init(&w, body, sizeof(body));
    json_object_begin(&w);
    json_key(&w, "asset_id");
    json_str(&w, x->public_id);
    json_key(&w, "state");
    json_str(&w, "deleted");
    json_key(&w, "master_retained_until");
    if (x->master_until_ms > now_ms) {
        iso_time(x->master_until_ms / 1000, until);
        json_str(&w, until);
    } else {
        json_raw(&w, "null", 4);
    }
    json_object_end(&w);
    int n = json_writer_finish(&w);
    reply(o->m, 202, body, n > 0 ? (size_t)n : 0, o->cors);
    op_end(o);
}

static void delete_purged(purge_op *p, int all_gone)
{
    delete_answer(p->ctx, &p->x, all_gone);
}

static int delete_stored(rd_actor *self, rd_msg *ans, int err, void *ctx)
{
    front_op *o = ctx;
    int r = store_answer(ans, err, NULL);
    if (r == -ENOENT) {
        reply_error(o->m, 404, "not_found", "No such asset.", o->cors);
    } else if (r < 0) {
        log_error("api_asset_delete_failed", KV_ERRNO(r));
        store_failed(o->m, r, o->cors);
    } else {
        rd_asset x = msg_body(ans, store)->assets[0];
        int newly = msg_body(ans, store)->state == 1;
        msg_free(ans);
        if (newly) {
            metrics_add(o->a->m_deleted, 1);
            log_info("asset_deleted", KV_STR("asset", x.public_id), KV_STR("org", x.org),
                     KV_INT("job", x.job_id), KV_STR("job_was", job_state_name(x.job_state)));
        }
        /* The store says it is deleted: every node and edge acts on that. Its objects go
         * now; a job that was running may still write for a moment, so its prefix is swept
         * once more after the worker has heard of the cancel (heartbeats, about a second). */
        if (x.purge_after_ms == 0)
            delete_answer(o, &x, 1);
        else
            purge_start(self, &x, newly && x.job_state == JOB_RUNNING ? 15000 : 0, delete_purged,
                        o);
        return 0;
    }
    msg_free(ans);
    op_end(o);
    return 0;
}

/* DELETE /api/assets/{id} on front `self`: RD_KEPT, or RD_DONE once answered (404). */
static int delete_begin(rd_actor *self, rd_msg *m, const principal *p, const char *cors)
{
    http1_str id = http_request_param(msg_body(m, http_request), 0);
    if (!public_id_ok(id)) {
        reply_error(m, 404, "not_found", "No such asset.", cors);
        return RD_DONE;
    }
    rd_msg *req = store_request(STORE_ASSET_DELETE);
    rd_asset *q = &msg_body(req, store)->assets[0];
    memcpy(q->public_id, id.p, id.len); /* length checked: the request is zeroed */
    snprintf(q->org, sizeof(q->org), "%s", p->org);
    front_op *o = op_new(sizeof(*o), self, m, cors);
    op_ask(o, req, 0, delete_stored);
    return RD_KEPT;
}

/* The sweep, on the first loop's front every tick: uploads never promoted expire
 * (REELD_UPLOAD_EXPIRE_SEC: the store marks them "expired", and what they left in staging, the
 * object or the multipart upload, is deleted), then deleted assets whose objects are still to
 * go (a failure, a running job's late writes, a master under retention until its date) are
 * purged. Any node may run it; the store hands each row to one of them. One sweep at a time:
 * a tick that finds one running passes. */
typedef struct sweeper {
    rd_timer t; /* first: the timer's callback finds the sweeper */
    api *a;
    rd_loop *loop;  /* where it sweeps: the first loop */
    rd_actor *self; /* the front of that loop, once its init ran */
    int busy, round, pending;
    int full; /* the last batch of expired uploads was full: another may follow */
} sweeper;

typedef struct sweep_del {
    blob_sink sink;
    sweeper *sw;
    char asset[RD_ASSET_ID_MAX];
    int last; /* the staging object's delete (the abort before it logs nothing) */
} sweep_del;

static void sweep_expire(sweeper *sw);
static void sweep_purge(sweeper *sw);

static void sweep_expired_step(sweeper *sw)
{
    if (--sw->pending > 0)
        return;
    if (sw->full && sw->round < 8) /* at most 8 batches a tick */
        sweep_expire(sw);
    else
        sweep_purge(sw);
}

static void sweep_deleted(blob_sink *s, int err, const char *why)
{
    sweep_del *d = (sweep_del *)s;
    if (d->last && err < 0 && err != -ENOENT)
        log_warn("upload_expired_delete_failed", KV_STR("asset", d->asset), KV_ERRNO(err),
                 KV_STR("why", why != NULL ? why : ""));
    sweeper *sw = d->sw;
    free(d);
    sweep_expired_step(sw);
}

/* Starts one request of an expired upload's clean-up (its sink counted in sw->pending). */
static void sweep_one(sweeper *sw, const rd_asset *x, int last)
{
    api *a = sw->a;
    sweep_del *d = rd_calloc(1, sizeof(*d), "an expired upload's clean-up");
    d->sink.done = sweep_deleted;
    d->sw = sw;
    d->last = last;
    snprintf(d->asset, sizeof(d->asset), "%s", x->public_id);
    sw->pending++;
    int r = last ? blob_aio_delete(a->backend.aio, loop_current(), a->cfg.s3_bucket_staging,
                                   x->staging_key, &d->sink, NULL)
                 : blob_aio_upload_abort(a->backend.aio, loop_current(), a->cfg.s3_bucket_staging,
                                         x->staging_key, x->upload_id, &d->sink, NULL);
    if (r < 0)
        sweep_deleted(&d->sink, r, "the request could not start");
}

static int sweep_expire_answered(rd_actor *self, rd_msg *ans, int err, void *ctx)
{
    (void)self;
    sweeper *sw = ctx;
    int r = store_answer(ans, err, NULL);
    if (r < 0) {
        log_warn("upload_sweep_failed", KV_ERRNO(r));
        msg_free(ans);
        sweep_purge(sw);
        return 0;
    }
    const struct rd_msg_store *b = msg_body(ans, store);
    uint32_t n = b->n;
    sw->full = n == RD_STORE_BATCH;
    sw->pending = 1; /* the sweep's own, while it starts them */
    for (uint32_t i = 0; i < n; i++) {
        const rd_asset *x = &b->assets[i];
        if (x->upload_id[0] && blob_aio_has_uploads(sw->a->backend.aio))
            sweep_one(sw, x, 0); /* gone already: the same */
        sweep_one(sw, x, 1);
        log_info("upload_expired", KV_STR("asset", x->public_id), KV_STR("org", x->org));
    }
    metrics_add(sw->a->m_expired, n);
    msg_free(ans);
    sweep_expired_step(sw);
    return 0;
}

/* Sends the sweep's store request `req`, whose answer `cb` gets; a request that cannot go is
 * answered -EAGAIN at once. */
static void sweep_ask(sweeper *sw, rd_msg *req, rd_reply_fn cb)
{
    if (!atomic_load(&sw->self->stopped) &&
        actor_request(sw->self, sw->a->store_actor, req, STORE_WAIT_MS, cb, sw) == 0)
        return;
    msg_free(req);
    cb(sw->self, NULL, -EAGAIN, sw);
}

static void sweep_expire(sweeper *sw)
{
    if (sw->a->cfg.upload_expire_sec <= 0 || loop_stopping(sw->self->loop)) {
        sweep_purge(sw);
        return;
    }
    sw->round++;
    rd_msg *req = store_request(STORE_ASSET_EXPIRE);
    msg_body(req, store)->cursor =
        (int64_t)time(NULL) * 1000 - (int64_t)sw->a->cfg.upload_expire_sec * 1000;
    msg_body(req, store)->limit = RD_STORE_BATCH;
    sweep_ask(sw, req, sweep_expire_answered);
}

static void sweep_purged(purge_op *p, int all_gone)
{
    (void)all_gone;
    sweeper *sw = p->ctx;
    if (--sw->pending == 0)
        sw->busy = 0;
}

static int sweep_purge_answered(rd_actor *self, rd_msg *ans, int err, void *ctx)
{
    sweeper *sw = ctx;
    int r = store_answer(ans, err, NULL);
    if (r < 0) {
        log_warn("asset_purge_sweep_failed", KV_ERRNO(r));
        msg_free(ans);
        sw->busy = 0;
        return 0;
    }
    const struct rd_msg_store *b = msg_body(ans, store);
    sw->pending = 1; /* the sweep's own, while it starts them */
    for (uint32_t i = 0; i < b->n; i++) {
        sw->pending++;
        purge_start(self, &b->assets[i], 0, sweep_purged, sw);
    }
    msg_free(ans);
    if (--sw->pending == 0)
        sw->busy = 0;
    return 0;
}

static void sweep_purge(sweeper *sw)
{
    if (loop_stopping(sw->self->loop)) { /* the next node's sweep, or this one's next start */
        sw->busy = 0;
        return;
    }
    rd_msg *req = store_request(STORE_ASSET_PURGE_DUE);
    msg_body(req, store)->limit = 8;
    msg_body(req, store)->lease_ms = 60000;
    sweep_ask(sw, req, sweep_purge_answered);
}

static void sweep_tick(rd_timer *t)
{
    sweeper *sw = (sweeper *)t;
    /* Not while the loop drains: an upload marked expired then would keep its staging object
     * (its delete is refused once the loop stops), and nothing would look at it again. */
    if (sw->busy || atomic_load(&sw->self->stopped) || loop_stopping(sw->self->loop))
        return;
    sw->busy = 1;
    sw->round = 0;
    sweep_expire(sw);
}

/* The {lang} of the path, checked: 0, or -1 once answered 400. */
static int caption_lang(const rd_msg *m, char lang[RD_CAPTION_LANG_MAX], const char *cors)
{
    http1_str l = http_request_param(msg_body(m, http_request), 1);
    if (!captions_lang_ok(l.p, l.len) || l.len >= RD_CAPTION_LANG_MAX) {
        reply_error(m, 400, "bad_lang",
                    "The language must be a BCP 47 tag such as en, pt-BR or zh-Hant.", cors);
        return -1;
    }
    memcpy(lang, l.p, l.len);
    lang[l.len] = '\0';
    return 0;
}

static void caption_json(json_writer *w, const rd_caption *c)
{
    json_object_begin(w);
    json_key(w, "lang");
    json_str(w, c->lang);
    json_key(w, "name");
    json_str(w, c->name);
    json_key(w, "default");
    json_bool(w, c->is_default != 0);
    json_object_end(w);
}

/* ---- captions, on the fronts ----
 *
 * A track's cues are objects under the ladder: {hls}/captions/{lang}/index.m3u8 and its WebVTT
 * segments in {hls}/captions/{lang}/{version token}/, with the whole track beside them
 * (track.vtt, what an export burns in). Which tracks there are is the store's
 * (STORE_CAPTION_*), and the master playlist is republished from it after every change: each
 * request reads the store's list and its version, writes the master, and writes it again while
 * the version it wrote is not the store's, so whatever request finishes last, the master ends
 * up naming every track the store has.
 *
 * PUT and DELETE are asynchronous chains on the front's loop: the asset's row (store); for a
 * PUT the ladder's length (its playlists), then the track's objects (CAPTION_WINDOW PUTs in
 * flight) and its playlist last (blob store), then the track's row (store); for a DELETE the
 * track's row (store); then the master's republishing (store list, master GET and PUT, again
 * while the version moved); for a DELETE last, the track's objects (LIST and deletes). */

/* The first PTS of reeld's MPEG-TS segments: FFmpeg's mpegts muxer starts at 1.4 s (90 kHz). */
#define CAPTIONS_MPEGTS_OFFSET 126000
#define CAPTION_WINDOW         8     /* a track's objects in flight */
#define MASTER_MAX             16384 /* a master playlist, read to be rewritten */

enum { CA_FIND, CA_PUT, CA_DELETE, CA_LIST };

typedef struct cap_obj {
    char key[700];
    char *body; /* owned */
    size_t len;
    const char *type;
} cap_obj;

typedef struct caption_op {
    front_op op;
    rd_asset x;
    int del; /* DELETE; else PUT */
    char lang[RD_CAPTION_LANG_MAX];
    char name[64];
    int is_default;
    captions_track t; /* PUT: the parsed track */
    int64_t duration_ms;
    cap_obj *objs; /* PUT: the track's objects, its playlist last */
    size_t nobjs, next;
    int inflight;
    int fail;
    char why[256];
    rd_caption stored; /* PUT: the row as the store wrote it */
    int created;
    rd_caption caps[RD_CAPTIONS_MAX]; /* republishing: the store's list ... */
    int ncaps;
    int64_t version, written; /* ... its version, and the one last written */
    int round;
    char *master_in; /* the master as read: its ladder lines are the same every round (only the
                      * subtitle lines change, and those come from the store's list) */
    size_t master_in_len;
    char *master; /* the master being written */
} caption_op;

static void caption_end(caption_op *o)
{
    captions_free(&o->t);
    for (size_t i = 0; i < o->nobjs; i++)
        free(o->objs[i].body);
    free(o->objs);
    free(o->master_in);
    free(o->master);
    op_end(&o->op);
}

static int caption_stored(rd_actor *self, rd_msg *ans, int err, void *ctx);
static void caption_objects_gone(void *ctx, int fail);

/* 1 (answered 503, the op ended with all it holds) when the front has stopped. */
static int caption_stopped(caption_op *o)
{
    if (!atomic_load(&o->op.self->stopped))
        return 0;
    store_failed(o->op.m, -EPIPE, o->op.cors);
    caption_end(o);
    return 1;
}

/* The republishing failed or ended: the answer. */
static void caption_published(caption_op *o, int err)
{
    if (err < 0) {
        log_warn("captions_publish_failed", KV_STR("asset", o->x.public_id), KV_ERRNO(err),
                 KV_STR("detail", o->why));
        reply_error(o->op.m, 502, "storage_failed",
                    o->del ? "The track is gone but the master playlist could not be "
                             "republished; send the DELETE again."
                           : "The track is saved but the master playlist could not be "
                             "republished; send it again.",
                    o->op.cors);
        caption_end(o);
        return;
    }
    if (o->del) { /* the master no longer names it: its objects can go, then the answer */
        char prefix[700];
        snprintf(prefix, sizeof(prefix), "%s/hls/captions/%s/", o->x.master_key, o->lang);
        wipe_start(o->op.a, prefix, o->x.public_id, caption_objects_gone, o);
        return;
    }
    log_info("captions_put", KV_STR("asset", o->x.public_id), KV_STR("lang", o->lang),
             KV_INT("cues", (int64_t)o->t.n), KV_INT("duration_ms", o->duration_ms));
    char out[512];
    json_writer jw;
    json_writer_init(&jw, out, sizeof(out));
    caption_json(&jw, &o->stored);
    int n = json_writer_finish(&jw);
    reply(o->op.m, o->created ? 201 : 200, out, n > 0 ? (size_t)n : 0, o->op.cors);
    caption_end(o);
}

/* The next round of the republishing: the store's list and version. */
static void caption_publish(caption_op *o)
{
    if (o->round++ == 8) {
        snprintf(o->why, sizeof(o->why), "the tracks kept changing");
        caption_published(o, -EAGAIN);
        return;
    }
    rd_msg *req = store_request(STORE_CAPTION_LIST);
    msg_body(req, store)->asset_id = o->x.id;
    op_ask(&o->op, req, CA_LIST, caption_stored);
}

static void caption_master_put(void *ctx, int err, const char *why)
{
    caption_op *o = ctx;
    free(o->master);
    o->master = NULL;
    if (err < 0) {
        snprintf(o->why, sizeof(o->why), "%s", why);
        caption_published(o, err);
        return;
    }
    o->written = o->version;
    if (!caption_stopped(o))
        caption_publish(o);
}

/* The master is back: rewritten with the store's tracks, and stored. */
static void caption_master(void *ctx, int err, const char *why, const char *text, size_t len)
{
    caption_op *o = ctx;
    hls_subtitle subs[RD_CAPTIONS_MAX];
    char uris[RD_CAPTIONS_MAX][RD_CAPTION_LANG_MAX + 32];
    for (int i = 0; i < o->ncaps; i++) {
        snprintf(uris[i], sizeof(uris[i]), "captions/%s/index.m3u8", o->caps[i].lang);
        subs[i] = (hls_subtitle){o->caps[i].lang, o->caps[i].name, uris[i], o->caps[i].is_default};
    }
    size_t cap = MASTER_MAX + 4096;
    o->master = rd_malloc(cap, "a master playlist");
    int w = err < 0 ? err : hls_master_subtitles(text, len, subs, o->ncaps, o->master, cap);
    if (w < 0) {
        snprintf(o->why, sizeof(o->why), "%s", err < 0 ? why : "the master could not be rewritten");
        caption_published(o, w);
        return;
    }
    char key[600];
    snprintf(key, sizeof(key), "%s/hls/master.m3u8", o->x.master_key);
    put_start(o->op.a, key, o->master, (size_t)w, "application/vnd.apple.mpegurl",
              caption_master_put, o);
}

/* A DELETE's track objects are gone (each failure logged: what is left is unreachable, and
 * goes with the asset): the answer. */
static void caption_objects_gone(void *ctx, int fail)
{
    (void)fail;
    caption_op *o = ctx;
    log_info("captions_deleted", KV_STR("asset", o->x.public_id), KV_STR("lang", o->lang));
    reply(o->op.m, 204, "", 0, o->op.cors);
    caption_end(o);
}

/* The track's playlist is stored (the last of its objects): the track's row next. */
static void caption_row(caption_op *o)
{
    rd_msg *req = store_request(STORE_CAPTION_PUT);
    struct rd_msg_store *b = msg_body(req, store);
    b->asset_id = o->x.id;
    snprintf(b->captions[0].lang, sizeof(b->captions[0].lang), "%s", o->lang);
    snprintf(b->captions[0].name, sizeof(b->captions[0].name), "%s", o->name);
    b->captions[0].is_default = o->is_default;
    b->n = 1;
    op_ask(&o->op, req, CA_PUT, caption_stored);
}

static void caption_objects_more(caption_op *o);

static void caption_object_put(void *ctx, int err, const char *why)
{
    caption_op *o = ctx;
    o->inflight--;
    if (err < 0) {
        o->fail = err;
        snprintf(o->why, sizeof(o->why), "%s", why);
    }
    caption_objects_more(o);
}

/* Starts the track's objects up to the window, its playlist only once the others are stored
 * (it names them); then the row. */
static void caption_objects_more(caption_op *o)
{
    api *a = o->op.a;
    /* As wipe_more: this call holds one count while it starts PUTs, one of which may end at
     * once and come back here; only the outermost call goes on. */
    o->inflight++;
    while (o->fail == 0 && o->inflight <= CAPTION_WINDOW && o->next < o->nobjs &&
           (o->next + 1 < o->nobjs || o->inflight == 1) && !atomic_load(&o->op.self->stopped)) {
        cap_obj *c = &o->objs[o->next++];
        o->inflight++;
        put_start(a, c->key, c->body, c->len, c->type, caption_object_put, o);
    }
    if (--o->inflight > 0 ||
        (o->fail == 0 && o->next < o->nobjs && !atomic_load(&o->op.self->stopped)))
        return;
    if (o->fail < 0) {
        log_error("captions_store_failed", KV_STR("asset", o->x.public_id), KV_STR("lang", o->lang),
                  KV_ERRNO(o->fail), KV_STR("detail", o->why));
        reply_error(o->op.m, 502, "storage_failed",
                    "The captions could not be written to storage; retry.", o->op.cors);
        caption_end(o);
        return;
    }
    if (!caption_stopped(o))
        caption_row(o);
}

static cap_obj *caption_obj(caption_op *o, const char *type)
{
    o->objs = rd_realloc(o->objs, (o->nobjs + 1) * sizeof(*o->objs), "a track's objects");
    cap_obj *c = &o->objs[o->nobjs++];
    memset(c, 0, sizeof(*c));
    c->type = type;
    return c;
}

typedef struct seg_ctx {
    caption_op *o;
    char token[9];
} seg_ctx;

static int caption_segment(void *ctx, int index, const char *vtt, size_t len)
{
    seg_ctx *s = ctx;
    cap_obj *c = caption_obj(s->o, "text/vtt");
    snprintf(c->key, sizeof(c->key), "%s/hls/captions/%s/%s/" CAPTIONS_SEGMENT_NAME,
             s->o->x.master_key, s->o->lang, s->token, index);
    c->body = rd_malloc(len + 1, "a caption segment");
    memcpy(c->body, vtt, len);
    c->len = len;
    return 0;
}

/* The track's objects, made in memory: the whole track, its segments (under a new token:
 * segments are cached as immutable, so a replaced track gets new names; what an earlier
 * version left goes with the asset), and the playlist that points into them, last. 0 or
 * -errno. */
static int caption_objects(caption_op *o, int fmp4)
{
    seg_ctx s = {.o = o};
    uint8_t rnd[4];
    if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
        return -EIO;
    hmac_hex(s.token, rnd, sizeof(rnd));
    cap_obj *c = caption_obj(o, "text/vtt");
    snprintf(c->key, sizeof(c->key), RD_CAPTION_TRACK_KEY_FMT, o->x.master_key, o->lang);
    int r = captions_write_vtt(&o->t, &c->body, &c->len);
    int64_t seg_ms = (int64_t)o->op.a->cfg.hls_segment_sec * 1000;
    if (r >= 0)
        r = captions_segment(&o->t, seg_ms, o->duration_ms, fmp4 ? -1 : CAPTIONS_MPEGTS_OFFSET,
                             caption_segment, &s);
    if (r < 0)
        return r;
    int64_t nseg = captions_segments(seg_ms, o->duration_ms);
    size_t cap = CAPTIONS_PLAYLIST_CAP(nseg);
    char *pl = rd_malloc(cap, "a caption playlist");
    int pn = captions_playlist(pl, cap, seg_ms, o->duration_ms);
    if (pn < 0) {
        free(pl);
        return pn;
    }
    c = caption_obj(o, "application/vnd.apple.mpegurl");
    snprintf(c->key, sizeof(c->key), "%s/hls/captions/%s/index.m3u8", o->x.master_key, o->lang);
    c->body = rd_malloc((size_t)pn + (size_t)nseg * sizeof(s.token) + 16, "a caption playlist");
    for (int i = 0; i < pn;) { /* each segment's URI, into its version's directory */
        const char *eol = memchr(pl + i, '\n', (size_t)(pn - i));
        size_t ll = eol ? (size_t)(eol - (pl + i)) + 1 : (size_t)(pn - i);
        if (pl[i] != '#' && pl[i] != '\n')
            c->len += (size_t)sprintf(c->body + c->len, "%s/", s.token);
        memcpy(c->body + c->len, pl + i, ll);
        c->len += ll;
        i += (int)ll;
    }
    free(pl);
    return 0;
}

/* The ladder's length is known: the track's objects made, then stored. */
/* Keeps the master's text for the republishing rounds. */
static void caption_keep_master(caption_op *o, const char *text, size_t len)
{
    if (o->master_in != NULL || len > MASTER_MAX)
        return;
    o->master_in = rd_malloc(len + 1, "a master playlist");
    memcpy(o->master_in, text, len);
    o->master_in[len] = '\0';
    o->master_in_len = len;
}

/* A DELETE's first round reads the master (a PUT's came with the ladder's length). */
static void caption_master_read(void *ctx, int err, const char *why, const char *text, size_t len)
{
    if (err == 0)
        caption_keep_master(ctx, text, len);
    caption_master(ctx, err, why, text, len);
}

static void caption_ladder(void *ctx, int err, const char *why, int64_t duration_ms, int fmp4,
                           const char *master, size_t master_len)
{
    caption_op *o = ctx;
    o->duration_ms = duration_ms;
    if (master != NULL)
        caption_keep_master(o, master, master_len);
    if (err == 0)
        err = caption_objects(o, fmp4);
    if (err < 0) {
        o->fail = err;
        snprintf(o->why, sizeof(o->why), "%s", why != NULL && why[0] ? why : strerror(-err));
    } /* a failure starts nothing: the end at once */
    caption_objects_more(o);
}

/* The store's answer to step o->op.step. */
static int caption_stored(rd_actor *self, rd_msg *ans, int err, void *ctx)
{
    (void)self;
    caption_op *o = ctx;
    const struct rd_msg_store *b;
    int r = store_answer(ans, err, &b);
    if (o->op.step == CA_FIND && r == -ENOENT) {
        reply_error(o->op.m, 404, "not_found", "No such asset.", o->op.cors);
    } else if (o->op.step == CA_DELETE && r == -ENOENT) {
        reply_error(o->op.m, 404, "not_found", "The asset has no track in that language.",
                    o->op.cors);
    } else if (o->op.step == CA_PUT && r == -ENOSPC) {
        reply_error(o->op.m, 409, "too_many_tracks", "An asset has at most 16 caption tracks.",
                    o->op.cors);
    } else if (r < 0 && o->op.step == CA_LIST) {
        msg_free(ans);
        snprintf(o->why, sizeof(o->why), "the store failed");
        caption_published(o, r);
        return 0;
    } else if (r < 0) {
        if (o->op.step == CA_FIND)
            log_error("api_asset_find_failed", KV_ERRNO(r));
        store_failed(o->op.m, r, o->op.cors);
    } else if (o->op.step == CA_FIND) {
        o->x = b->assets[0];
        msg_free(ans);
        if (o->x.job_state != JOB_SUCCEEDED) {
            reply_error(o->op.m, 409, "not_ready",
                        "Captions go on a published ladder: wait until the asset is ready.",
                        o->op.cors);
            caption_end(o);
        } else if (o->del) {
            rd_msg *req = store_request(STORE_CAPTION_DELETE);
            struct rd_msg_store *q = msg_body(req, store);
            q->asset_id = o->x.id;
            snprintf(q->captions[0].lang, sizeof(q->captions[0].lang), "%s", o->lang);
            q->n = 1;
            op_ask(&o->op, req, CA_DELETE, caption_stored);
        } else {
            ladder_start(o->op.a, &o->x, caption_ladder, o);
        }
        return 0;
    } else if (o->op.step == CA_LIST) {
        o->version = b->cursor;
        o->ncaps = (int)(b->n < RD_CAPTIONS_MAX ? b->n : RD_CAPTIONS_MAX);
        memcpy(o->caps, b->captions, (size_t)o->ncaps * sizeof(o->caps[0]));
        msg_free(ans);
        if (o->version == o->written) {
            caption_published(o, 0);
            return 0;
        }
        if (o->master_in != NULL) {
            caption_master(o, 0, "", o->master_in, o->master_in_len);
            return 0;
        }
        char key[600];
        snprintf(key, sizeof(key), "%s/hls/master.m3u8", o->x.master_key);
        fetch_start(o->op.a, key, MASTER_MAX, caption_master_read, o);
        return 0;
    } else { /* CA_PUT, CA_DELETE: the row is written; the master next */
        if (o->op.step == CA_PUT) {
            o->stored = b->captions[0];
            o->created = b->state == 1;
        }
        msg_free(ans);
        o->written = -1;
        caption_publish(o);
        return 0;
    }
    msg_free(ans);
    caption_end(o);
    return 0;
}

/* PUT and DELETE /api/assets/{id}/captions/{lang} on front `self`: RD_KEPT, or RD_DONE once
 * answered (400, 404, 413, 415). */
static int caption_begin(rd_actor *self, rd_msg *m, const principal *p, const char *cors)
{
    const rd_http_request *q = msg_body(m, http_request);
    char lang[RD_CAPTION_LANG_MAX], name[64] = "";
    if (caption_lang(m, lang, cors) < 0)
        return RD_DONE;
    int del = q->method == RD_HTTP_DELETE, is_default = 0;
    captions_track t = {0};
    if (!del) {
        http1_str query = http_request_query(q);
        http1_str qn = http1_query_param(query, "name"), qd = http1_query_param(query, "default");
        int nl = qn.p ? http1_pct_decode(name, sizeof(name), qn.p, qn.len) : -ENOENT;
        if (nl == -ENOENT)
            nl = snprintf(name, sizeof(name), "%s", lang);
        int ok = nl > 0;
        for (int i = 0; ok && i < nl; i++)
            ok = (unsigned char)name[i] >= 0x20 && name[i] != '"' && name[i] != 0x7f;
        if (!ok) {
            reply_error(m, 400, "bad_name",
                        "name must be 1 to 63 bytes of text without quotes (percent-encoded).",
                        cors);
            return RD_DONE;
        }
        is_default = qd.p != NULL && (qd.len == 0 || (qd.len == 1 && qd.p[0] == '1') ||
                                      (qd.len == 4 && strncmp(qd.p, "true", 4) == 0));
        http1_str ct = http_request_header(q, "content-type");
        int hint = CAPTIONS_AUTO;
        if (ct.p != NULL && ct.len >= 8 && strncasecmp(ct.p, "text/vtt", 8) == 0)
            hint = CAPTIONS_VTT;
        else if (ct.p != NULL && ct.len >= 20 && strncasecmp(ct.p, "application/x-subrip", 20) == 0)
            hint = CAPTIONS_SRT;
        else if (ct.p != NULL && !(ct.len >= 10 && strncasecmp(ct.p, "text/plain", 10) == 0) &&
                 !(ct.len >= 24 && strncasecmp(ct.p, "application/octet-stream", 24) == 0)) {
            reply_error(m, 415, "unsupported_media_type",
                        "Send WebVTT (text/vtt) or SRT (application/x-subrip).", cors);
            return RD_DONE;
        }
        http1_str body = http_request_body(q);
        captions_error ce;
        int r = captions_parse(body.p, body.len, hint, &t, &ce);
        if (r < 0) {
            char buf[256];
            json_writer w;
            json_writer_init(&w, buf, sizeof(buf));
            json_object_begin(&w);
            json_key(&w, "error");
            json_object_begin(&w);
            json_key(&w, "code");
            json_str(&w, r == -E2BIG ? "captions_too_large" : "bad_captions");
            json_key(&w, "message");
            json_str(&w, ce.message);
            json_key(&w, "line");
            json_int64(&w, ce.line);
            json_object_end(&w);
            json_object_end(&w);
            int n = json_writer_finish(&w);
            reply(m, r == -E2BIG ? 413 : 400, buf, n > 0 ? (size_t)n : 0, cors);
            return RD_DONE;
        }
    }
    rd_msg *req = asset_find_request(m, p->org, "No such asset.", cors);
    if (req == NULL) {
        captions_free(&t);
        return RD_DONE;
    }
    caption_op *o = op_new(sizeof(*o), self, m, cors);
    o->del = del;
    o->t = t;
    o->is_default = is_default;
    snprintf(o->lang, sizeof(o->lang), "%s", lang);
    snprintf(o->name, sizeof(o->name), "%s", name);
    op_ask(&o->op, req, CA_FIND, caption_stored);
    return RD_KEPT;
}

/* GET /api/assets/{id}/captions, on a front: the store's answer to the caption listing of the
 * asset it found first (front_found). */
static int captions_answer(rd_actor *self, rd_msg *ans, int err, void *ctx)
{
    api *a = self->state;
    rd_msg *m = ctx;
    char cors[300];
    int r = front_status(a, m, ans, err, cors);
    if (r < 0) {
        store_failed(m, r, cors);
        msg_free(ans);
        msg_free(m);
        return 0;
    }
    const struct rd_msg_store *b = msg_body(ans, store);
    char out[RD_CAPTIONS_MAX * 160 + 64];
    json_writer w;
    json_writer_init(&w, out, sizeof(out));
    json_object_begin(&w);
    json_key(&w, "captions");
    json_array_begin(&w);
    for (uint32_t i = 0; i < b->n && i < RD_CAPTIONS_MAX; i++)
        caption_json(&w, &b->captions[i]);
    json_array_end(&w);
    json_object_end(&w);
    msg_free(ans);
    int n = json_writer_finish(&w);
    reply(m, 200, out, n > 0 ? (size_t)n : 0, cors);
    msg_free(m);
    return 0;
}

/* ---- the actor ---- */

static const char *route_methods(int r)
{
    if (r == R_WEBHOOK)
        return "GET, PUT, DELETE";
    if (r == R_WH_DELIVERIES)
        return "GET, HEAD";
    if (r == R_EVENTS)
        return "GET";
    if (r == R_ASSET)
        return "GET, HEAD, DELETE";
    if (r == R_CAPTION)
        return "PUT, DELETE";
    return r == R_PLAYBACK || r == R_LIST || r == R_DOCS || r == R_CAPTIONS || r == R_EXPORT
               ? "GET, HEAD"
               : "POST";
}

/* GET /api/docs: assets/openapi.json, embedded at build time (no auth; rate-limited by address). */
static void get_docs(api *a, const rd_msg *m, const char *cors)
{
    const rd_http_request *q = msg_body(m, http_request);
    char client[80], hdr[512];
    snprintf(client, sizeof(client), "ip:%s", q->peer);
    int wait = ratelimit_take(a->rl, RL_ALL, client, a->cfg.rate_limit_max,
                              a->cfg.rate_limit_window, (int64_t)(rd_now_ns() / 1000000));
    if (wait > 0) {
        refused(a, 429, "all");
        snprintf(hdr, sizeof(hdr), "%sRetry-After: %d\r\n", cors, wait);
        reply_error(m, 429, "rate_limited", "Too many requests; retry after Retry-After.", hdr);
        return;
    }
    const rd_embedded *doc = rd_embedded_find("openapi.json", 12);
    if (doc == NULL)
        reply_error(m, 404, "not_found", "This build has no API document.", cors);
    else
        reply(m, 200, doc->data, doc->len, cors);
}

/* Route index of request `m`, or R_COUNT (answered 404). */
static int route_of(const api *a, const rd_msg *m)
{
    const rd_http_request *q = msg_body(m, http_request);
    int r = 0;
    while (r < R_COUNT && a->route[r] != (int)q->route)
        r++;
    if (r == R_COUNT)
        reply_error(m, 404, "not_found", "No route matches this path.", NULL);
    return r;
}

static int admit(api *a, const rd_msg *m, int r, const char *cors, principal *p);

/* What every request goes through first, on its front: its route (404 when none), a
 * preflight's answer, the CORS lines, the API document, then admit. 1 once answered; 0 with
 * `*route`, `cors` and `p` set. */
static int prologue(api *a, const rd_msg *m, int *route, char cors[300], principal *p)
{
    int r = *route = route_of(a, m);
    if (r == R_COUNT)
        return 1;
    if (msg_body(m, http_request)->method == RD_HTTP_OPTIONS) {
        http_reply_preflight(m, &a->cors, route_methods(r), cors_request_headers);
        return 1;
    }
    http_cors_lines(m, &a->cors, "Retry-After", cors, 300);
    if (r == R_DOCS) {
        get_docs(a, m, cors);
        return 1;
    }
    return admit(a, m, r, cors, p) < 0;
}

/* Authentication and the rate limits of request `m` on route `r`: 0 with `p` filled, or -1 once
 * answered (401, 403 or 429). */
static int admit(api *a, const rd_msg *m, int r, const char *cors, principal *p)
{
    const rd_http_request *q = msg_body(m, http_request);
    int64_t now_ms = (int64_t)(rd_now_ns() / 1000000);
    char hdr[512];
    /* An address that has failed authentication too often is refused whatever it sends now. */
    char addr[80];
    snprintf(addr, sizeof(addr), "ip:%s", q->peer);
    int wait = ratelimit_peek(a->rl, RL_AUTH_FAIL, addr, a->cfg.rl_auth_fail_max,
                              a->cfg.rl_auth_fail_window, now_ms);
    if (wait > 0) {
        refused(a, 429, "auth");
        snprintf(hdr, sizeof(hdr), "%sRetry-After: %d\r\n", cors, wait);
        reply_error(m, 429, "rate_limited",
                    "Too many failed authentications from this address; retry after Retry-After.",
                    hdr);
        return -1;
    }
    const char *code = NULL, *message = NULL;
    int st = authenticate(a, http_request_header(q, "authorization"), q->peer, p, &code, &message);
    if (st == 0 && q->body_refused) {
        /* The gate refused these credentials a moment ago (a token that just became valid):
         * the body was not read, so there is nothing to act on. */
        st = 401;
        code = "unauthorized";
        message = "The credentials were refused before the body was read; send the request "
                  "again.";
    }
    if (st != 0) {
        if (st == 401) /* a wrong or missing credential: spends one of the address's */
            ratelimit_take(a->rl, RL_AUTH_FAIL, addr, a->cfg.rl_auth_fail_max,
                           a->cfg.rl_auth_fail_window, now_ms);
        refused(a, st, "auth");
        snprintf(hdr, sizeof(hdr), "%s%s", cors,
                 st == 401 ? "WWW-Authenticate: Bearer realm=\"reeld\"\r\n" : "");
        reply_error(m, st, code, message, hdr);
        return -1;
    }
    wait = ratelimit_take(a->rl, RL_ALL, p->client, a->cfg.rate_limit_max, a->cfg.rate_limit_window,
                          now_ms);
    const char *cls = "all";
    if (wait == 0 && r == R_UPLOADS) {
        cls = "presign";
        wait = ratelimit_take(a->rl, RL_PRESIGN, p->client, a->cfg.rl_presign_max,
                              a->cfg.rl_presign_window, now_ms);
    } else if (wait == 0 && r == R_PROMOTE) {
        cls = "promote";
        wait = ratelimit_take(a->rl, RL_PROMOTE, p->client, a->cfg.rl_promote_max,
                              a->cfg.rl_promote_window, now_ms);
    }
    if (wait > 0) {
        refused(a, 429, cls);
        snprintf(hdr, sizeof(hdr), "%sRetry-After: %d\r\n", cors, wait);
        reply_error(m, 429, "rate_limited", "Too many requests; retry after Retry-After.", hdr);
        return -1;
    }
    return 0;
}

/* ---- the front ----
 *
 * A loop actor on every loop owns every route. It admits each request (auth, rate limits: its
 * buckets are the API's only ones) and answers every read itself: the status poll, the
 * playback link, the asset listing, the webhook deliveries, an export's status with one
 * asynchronous store read each; the progress stream and the captions' listing after the
 * asset's (front_found); the first look at a ready asset's outputs with HEADs through the
 * asynchronous blob store (look_start). No read waits on a thread. Nor do the webhook's
 * requests (GET, PUT, DELETE, rotate-secret), one store statement each (webhook_answer), nor
 * the writes that are chains of asynchronous steps: an upload's creation and completion, the
 * promote, a new export or clip, an export's cancel, an asset's deletion (upload_begin,
 * complete_begin, promote_begin, export_begin, clip_begin, cancel_begin, delete_begin), nor a
 * caption track's PUT or DELETE (caption_begin). Nothing in the API holds a thread. */

/* A ready asset whose outputs are not known yet: a HEAD of each in the previews bucket, all
 * at once through the asynchronous store, answered when the last is back. The HEADs run on
 * the front's own loop (the readers' store has a client on each), so its completions, the
 * answer, and a stop that drains the loop's operations all happen there; the front goes on at
 * once. */
typedef struct look look;
typedef struct look_head {
    blob_sink sink;
    look *lk;
    int i;
} look_head;

struct look {
    api *a;
    rd_msg *m; /* the request */
    rd_asset x;
    look_head heads[NOUTPUTS];
    int have[NOUTPUTS];
    _Atomic int left;   /* HEADs not back, and one for the front while it starts them */
    _Atomic int unsure; /* a HEAD failed (not a 404): the answer is not kept */
    char cors[300];
};

static void look_end(look *lk)
{
    if (--lk->left > 0)
        return;
    if (!lk->unsure)
        outputs_keep(lk->a, &lk->x, lk->have);
    if ((int)msg_body(lk->m, http_request)->route == lk->a->route[R_ASSET])
        asset_answer(lk->m, &lk->x, lk->have, lk->cors);
    else
        playback_answer(lk->a, lk->m, &lk->x, lk->have, lk->cors);
    msg_free(lk->m);
    free(lk);
}

static void look_done(blob_sink *s, int err, const char *why)
{
    (void)why;
    look_head *h = (look_head *)(void *)s;
    h->lk->have[h->i] = err == 0;
    if (err < 0 && err != -ENOENT)
        h->lk->unsure = 1;
    look_end(h->lk);
}

static void look_start(api *a, rd_msg *m, const rd_asset *x, const char *cors)
{
    look *lk = rd_calloc(1, sizeof(*lk), "a look at an asset's outputs");
    lk->a = a;
    lk->m = m;
    lk->x = *x;
    snprintf(lk->cors, sizeof(lk->cors), "%s", cors);
    lk->left = (int)NOUTPUTS + 1;
    for (size_t i = 0; i < NOUTPUTS; i++) {
        look_head *h = &lk->heads[i];
        h->sink.done = look_done;
        h->lk = lk;
        h->i = (int)i;
        char key[512];
        snprintf(key, sizeof(key), "%s/hls/%s", x->master_key, outputs[i]);
        if (blob_aio_head(a->backend.aio, loop_current(), a->cfg.s3_bucket_previews, key, &h->sink,
                          NULL) < 0)
            look_done(&h->sink, -EAGAIN, NULL); /* not started: as a failed HEAD */
    }
    look_end(lk); /* the front's own count */
}

/* Sends store request `req` for request `m`, whose answer `done` gives: RD_KEPT, or RD_DONE
 * once answered (503: the store's mailbox is full). */
static int front_ask(rd_actor *self, rd_msg *req, rd_reply_fn done, rd_msg *m, const char *cors)
{
    api *a = self->state;
    if (actor_request(self, a->store_actor, req, STORE_WAIT_MS, done, m) == 0)
        return RD_KEPT;
    msg_free(req);
    store_failed(m, -EAGAIN, cors);
    return RD_DONE;
}

/* The store's answer to the front's asset read for request `ctx` (the status poll, the
 * playback link, the progress stream, the captions' listing). */
static int front_found(rd_actor *self, rd_msg *ans, int err, void *ctx)
{
    api *a = self->state;
    rd_msg *m = ctx;
    char cors[300];
    int st = front_status(a, m, ans, err, cors);
    int route = (int)msg_body(m, http_request)->route, have[NOUTPUTS];
    const rd_asset *x = st < 0 ? NULL : &msg_body(ans, store)->assets[0];
    if (st == -ENOENT) {
        reply_error(m, 404, "not_found", "No such asset.", cors);
    } else if (st < 0) {
        log_error("api_asset_find_failed", KV_ERRNO(st));
        store_failed(m, st, cors);
    } else if (route == a->route[R_EVENTS]) {
        events_open(a, m, x, cors);
    } else if (route == a->route[R_CAPTIONS]) {
        rd_msg *req = store_request(STORE_CAPTION_LIST);
        msg_body(req, store)->asset_id = x->id;
        msg_free(ans);
        if (front_ask(self, req, captions_answer, m, cors) == RD_DONE)
            msg_free(m);
        return 0; /* else captions_answer answers, and frees m */
    } else if (!outputs_known(a, x, have)) {
        look_start(a, m, x, cors); /* it answers, and frees m */
        msg_free(ans);
        return 0;
    } else if (route == a->route[R_ASSET]) {
        asset_answer(m, x, have, cors);
    } else {
        playback_answer(a, m, x, have, cors);
    }
    msg_free(ans);
    msg_free(m);
    return 0;
}

static int front_handle(rd_actor *self, rd_msg *m)
{
    api *a = self->state;
    int r;
    char cors[300];
    principal p;
    if (m->type != MSG_HTTP_REQUEST || prologue(a, m, &r, cors, &p) != 0)
        return RD_DONE;
    const rd_http_request *q = msg_body(m, http_request);
    int write = r == R_UPLOADS || r == R_COMPLETE || r == R_PROMOTE || r == R_EXPORTS ||
                r == R_CLIPS || r == R_EXPORT_CANCEL || r == R_CAPTION ||
                (r == R_ASSET && q->method == RD_HTTP_DELETE);
    if (write && op_full(a, m, cors))
        return RD_DONE;
    if (r == R_UPLOADS)
        return upload_begin(self, m, &p, cors);
    if (r == R_PROMOTE)
        return promote_begin(self, m, &p, cors);
    if (r == R_COMPLETE)
        return complete_begin(self, m, &p, cors);
    if (r == R_EXPORT_CANCEL)
        return cancel_begin(self, m, &p, cors);
    if (r == R_EXPORTS)
        return export_begin(self, m, &p, cors);
    if (r == R_CLIPS)
        return clip_begin(self, m, &p, cors);
    if (r == R_ASSET && q->method == RD_HTTP_DELETE)
        return delete_begin(self, m, &p, cors);
    if (r == R_CAPTION)
        return caption_begin(self, m, &p, cors);
    if (r == R_WH_ROTATE || r == R_WEBHOOK) {
        rd_msg *req = webhook_request(a, m, &p, webhook_op(a, m), cors);
        return req == NULL ? RD_DONE : front_ask(self, req, webhook_answer, m, cors);
    }
    if (r == R_LIST || r == R_WH_DELIVERIES || r == R_EXPORT) {
        rd_msg *req = r == R_LIST     ? list_request(a, m, &p, cors)
                      : r == R_EXPORT ? export_request(m, read_org(a, &p), cors)
                                      : deliveries_request(m, &p, cors);
        rd_reply_fn done = r == R_LIST     ? list_answer
                           : r == R_EXPORT ? export_answer
                                           : deliveries_answer;
        return req == NULL ? RD_DONE : front_ask(self, req, done, m, cors);
    }
    if (r != R_ASSET && r != R_PLAYBACK && r != R_EVENTS && r != R_CAPTIONS) {
        log_error("api_unrouted", KV_INT("route", (int64_t)r));
        reply_error(m, 500, "internal", "No handler for this route.", cors);
        return RD_DONE;
    }
    rd_msg *req = asset_find_request(m, read_org(a, &p), "No such asset.", cors);
    return req == NULL ? RD_DONE : front_ask(self, req, front_found, m, cors);
}

/* The front of the sweeping loop arms the sweep's timer (on its own thread, as timers are). */
static int front_init(rd_actor *self, void *arg)
{
    api *a = arg;
    self->state = a;
    if (a->sweep != NULL && self->loop == a->sweep->loop) {
        a->sweep->self = self; /* after a restart, what the old one started still ends, and
                                * clears `busy` */
        loop_timer_start(self->loop, &a->sweep->t, (uint64_t)a->sweep_ms * 1000000,
                         (uint64_t)a->sweep_ms * 1000000);
    }
    return 0;
}

static void front_fini(rd_actor *self)
{
    api *a = self->state;
    if (a != NULL && a->sweep != NULL && self->loop == a->sweep->loop)
        loop_timer_cancel(self->loop, &a->sweep->t);
}

static const rd_actor_def front_def = {
    .name = "api-reads", .init = front_init, .fini = front_fini, .handle = front_handle};

/* The S3 client is destroyed once its loop has stopped, as s3.h asks. */
static void api_destroy(api *a)
{
    /* The key digests are zeroed only now: the listeners' gate reads them until the loops
     * have stopped. */
    memset(a->keys, 0, sizeof(a->keys));
    /* The readers' front (a loop actor) uses the buckets and the edge key until the loops
     * have stopped. */
    ratelimit_destroy(a->rl);
    urlsign_clear(&a->sign);
    edge_keyring_clear(&a->edge);
    progress_stream_free(a->sse);
    free(a->sweep);
    blob_backend_close(&a->backend);
    free(a);
}

/* "org:key,org2:key2" (validated by config) into digests. */
static int parse_keys(api *a, const char *list, char *err, size_t errlen)
{
    const char *p = list;
    while (p && *p) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        const char *colon = memchr(p, ':', len);
        if (colon == NULL || colon == p || (size_t)(colon - p) >= ORG_MAX ||
            a->nkeys == API_MAX_KEYS) {
            snprintf(err, errlen, "REELD_API_KEYS: at most %d org:key pairs, org under %d bytes",
                     API_MAX_KEYS, ORG_MAX);
            return -EINVAL;
        }
        api_key *k = &a->keys[a->nkeys++];
        memcpy(k->org, p, (size_t)(colon - p));
        hmac_sha256_digest(colon + 1, len - (size_t)(colon - p) - 1, k->digest);
        p = comma ? comma + 1 : NULL;
    }
    return 0;
}

/* With OBJECT_LOCK_DEFAULT_DAYS > 0 every promote copies with retention, which a masters bucket
 * without Object Lock refuses: say so once, at start, instead of as a 502 on every promote.
 * Storage that cannot be reached now is not a reason to stay down: a warning, and promotes
 * report what they meet. */
static int check_masters_lock(api *a, char *err, size_t errlen)
{
    if (a->cfg.object_lock_default_days <= 0)
        return 0;
    char why[256] = "";
    int r = blob_lock_enabled(a->backend.blob, a->cfg.s3_bucket_masters, why, sizeof(why));
    if (r == -ENOTSUP)
        return 0; /* the fs backend keeps no retention */
    if (r == 0) {
        snprintf(err, errlen,
                 "S3_BUCKET_MASTERS '%s' has no Object Lock, and OBJECT_LOCK_DEFAULT_DAYS is %d: "
                 "create the buckets with `reeld buckets init` (a new masters bucket) or set "
                 "OBJECT_LOCK_DEFAULT_DAYS=0",
                 a->cfg.s3_bucket_masters, a->cfg.object_lock_default_days);
        return -EINVAL;
    }
    if (r < 0)
        log_warn("masters_lock_unchecked", KV_STR("bucket", a->cfg.s3_bucket_masters), KV_ERRNO(r),
                 KV_STR("why", why));
    return 0;
}

/* The edge's keyring (src/edge/edgekey.h: the same the edge checks with) and link base. */
static int load_edge_key(api *a, const rd_config *cfg, char *err, size_t errlen)
{
    int r = edgekey_keyring(cfg, &a->edge, err, errlen);
    if (r < 0)
        return r;
    const char *base = cfg->edge_public_base;
    if (base != NULL)
        snprintf(a->edge_base, sizeof(a->edge_base), "%s", base);
    else
        config_listen_url(cfg, a->edge_base, sizeof(a->edge_base));
    size_t bl = strlen(a->edge_base);
    while (bl > 0 && a->edge_base[bl - 1] == '/')
        a->edge_base[--bl] = '\0';
    for (size_t i = 0; i < bl; i++) {
        unsigned char c = (unsigned char)a->edge_base[i];
        if (c <= ' ' || c == '"' || c == '\\' || c >= 0x7f) {
            /* It goes into links as is. */
            snprintf(err, errlen,
                     "EDGE_PUBLIC_BASE: must be a plain URL without spaces, quotes "
                     "or backslashes");
            return -EINVAL;
        }
    }
    return 0;
}

/* The fronts' state: its blob store has a client on each of `loops` (the first is its home),
 * its progress streams live on loops[0]. It checks the masters bucket at start. */
static int api_new(const rd_config *cfg, rd_loop *const *loops, int nloops, rd_actor *dispatcher,
                   rd_actor *store, api **out, char *err, size_t errlen)
{
    err[0] = '\0';
    *out = NULL;
    api *a = rd_calloc(1, sizeof(*a), "the API");
    a->cfg = *cfg;
    a->store_actor = store;
    a->dispatcher = dispatcher;
    int r = ratelimit_create(&a->rl);
    if (r == 0)
        r = parse_keys(a, cfg->api_keys, err, errlen);
    if (r == 0)
        r = cors_parse(&a->cors, cfg->allowed_origins, "ALLOWED_ORIGINS", err, errlen);
    if (r == 0) /* an upload's URLs (the edge links take the edge key, below) */
        r = urlsign_init(&a->sign, cfg, err, errlen);
    if (r == 0)
        r = blob_backend_open(&a->backend, cfg, loops, nloops, err, errlen);
    if (r == 0)
        r = check_masters_lock(a, err, errlen);
    if (r == 0)
        r = load_edge_key(a, cfg, err, errlen);
    if (r == 0)
        r = progress_stream_spawn(loops[0], dispatcher, 500, &a->sse);
    if (r < 0) {
        if (err[0] == '\0')
            snprintf(err, errlen, "the API could not start (%s)", strerror(-r));
        api_destroy(a);
        return r;
    }
    a->open_mode = cfg->api_keys == NULL && cfg->jwt_secret == NULL;
    if (a->open_mode)
        log_warn("api_open_to_loopback",
                 KV_STR("why", "neither REELD_API_KEYS nor JWT_SECRET is set: the API answers "
                               "loopback clients only, as org \"local\""));
    rd_metric *del =
        metrics_family("reeld_assets_deleted_total", "Assets deleted (DELETE /api/assets/{id}).",
                       RD_COUNTER, NULL, NULL, 0);
    a->m_deleted = metrics_series(del, NULL);
    rd_metric *ex = metrics_family("reeld_uploads_expired_total",
                                   "Uploads never promoted within REELD_UPLOAD_EXPIRE_SEC, "
                                   "removed from staging.",
                                   RD_COUNTER, NULL, NULL, 0);
    a->m_expired = metrics_series(ex, NULL);
    /* Deleted assets' objects are looked for every 5 s; expired uploads every quarter of the
     * expiry (at most 5 s, at least 100 ms): an upload goes soon after its time, and an idle
     * node does not spin. */
    a->sweep = rd_calloc(1, sizeof(*a->sweep), "the API's sweep");
    a->sweep->t.fire = sweep_tick;
    a->sweep->a = a;
    a->sweep_ms = 5000;
    int64_t ms = (int64_t)cfg->upload_expire_sec * 250;
    if (cfg->upload_expire_sec > 0 && ms < a->sweep_ms)
        a->sweep_ms = (uint32_t)(ms < 100 ? 100 : ms);
    a->m_refused = metrics_family("reeld_api_refused_total",
                                  "API requests refused: 401/403 (auth) and 429 (rate limits).",
                                  RD_COUNTER, "code,class", NULL, 0);
    for (int i = 0; i < R_COUNT; i++)
        a->route[i] = -1;
    *out = a;
    return 0;
}

/* The routes, all the fronts'. */
static const struct {
    int id;
    const char *pattern;
    unsigned methods;
} route_table[] = {
    {R_UPLOADS, "/api/uploads", RD_HTTP_POST},
    {R_COMPLETE, "/api/uploads/{id}/complete", RD_HTTP_POST},
    {R_PROMOTE, "/api/assets/{id}/promote", RD_HTTP_POST},
    {R_PLAYBACK, "/api/assets/{id}/playback", RD_HTTP_GET},
    {R_ASSET, "/api/assets/{id}", RD_HTTP_GET | RD_HTTP_DELETE},
    {R_LIST, "/api/assets", RD_HTTP_GET},
    {R_DOCS, "/api/docs", RD_HTTP_GET},
    {R_WEBHOOK, "/api/webhook", RD_HTTP_GET | RD_HTTP_PUT | RD_HTTP_DELETE},
    {R_WH_ROTATE, "/api/webhook/rotate-secret", RD_HTTP_POST},
    {R_WH_DELIVERIES, "/api/webhook/deliveries", RD_HTTP_GET},
    {R_EVENTS, "/api/assets/{id}/events", RD_HTTP_GET},
    {R_CAPTION, "/api/assets/{id}/captions/{lang}", RD_HTTP_PUT | RD_HTTP_DELETE},
    {R_CAPTIONS, "/api/assets/{id}/captions", RD_HTTP_GET},
    {R_EXPORTS, "/api/assets/{id}/exports", RD_HTTP_POST},
    {R_EXPORT, "/api/exports/{id}", RD_HTTP_GET},
    {R_EXPORT_CANCEL, "/api/exports/{id}/cancel", RD_HTTP_POST},
    {R_CLIPS, "/api/assets/{id}/clips", RD_HTTP_POST},
};

int api_start(const rd_config *cfg, rd_loop *const *loops, int nloops, rd_actor *dispatcher,
              rd_actor *store, rd_http_routes *routes, rd_api **out, char *err, size_t errlen)
{
    rd_api *x = rd_calloc(1, sizeof(*x), "the API");
    *out = x;
    /* The fronts' state (its progress streams, its blob store's home) lives on the second loop
     * (the first one with a single loop); its blob store reaches every loop, the fronts' own. */
    rd_loop **order = rd_calloc((size_t)nloops, sizeof(*order), "the API's loops");
    int home = nloops > 1 ? 1 : 0;
    order[0] = loops[home];
    for (int i = 0, k = 1; i < nloops; i++)
        if (i != home)
            order[k++] = loops[i];
    int r = api_new(cfg, order, nloops, dispatcher, store, &x->reads, err, errlen);
    free(order);
    if (r < 0)
        return r;
    api *a = x->reads;
    a->sweep->loop = loops[0];
    x->fronts = rd_calloc((size_t)nloops, sizeof(*x->fronts), "the API's fronts");
    for (int i = 0; i < nloops; i++) {
        if ((r = actor_spawn(loops[i], &front_def, a, &x->fronts[i])) < 0) {
            snprintf(err, errlen, "cannot start the API's fronts (%s)", strerror(-r));
            return r;
        }
        x->nfronts++;
    }
    for (size_t i = 0; i < sizeof(route_table) / sizeof(route_table[0]); i++) {
        int rid = route_table[i].id;
        int id = http_routes_add(routes, route_table[i].pattern,
                                 route_table[i].methods | RD_HTTP_OPTIONS, x->fronts, x->nfronts,
                                 rid == R_DOCS      ? 0
                                 : rid == R_CAPTION ? CAPTIONS_MAX_BYTES
                                                    : API_BODY_LIMIT,
                                 0);
        if (id < 0) {
            snprintf(err, errlen, "cannot add the route %s (%s)", route_table[i].pattern,
                     strerror(-id));
            return id;
        }
        a->route[rid] = id;
        if (rid != R_DOCS)
            http_routes_gate(routes, id, api_gate, a);
    }
    return 0;
}

blob_aio *api_blob_store(const rd_api *x)
{
    return x->reads->backend.aio;
}

void api_free(rd_api *x)
{
    if (x == NULL)
        return;
    if (x->reads != NULL)
        api_destroy(x->reads);
    free(x->fronts);
    free(x);
}
