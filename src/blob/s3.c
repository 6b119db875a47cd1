/* The S3 client. See s3.h for what it owns and promises.
 *
 * One operation is an s3_req: it takes a pooled connection (or connects a new one), signs and
 * sends the request through an httpc_exchange, and looks at the response: done, retried after
 * a jittered delay, or failed with one sentence. Each attempt has a timer; when it fires the
 * socket operation in flight is cancelled and the attempt counts as timed out. */
#include "src/blob/s3.h"

#include <assert.h>
#include <errno.h>
#include <netdb.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "proto/hmac.h"
#include "proto/md5.h"
#include "src/rt/msg.h"
#include "proto/s3_wire.h"
#include "proto/sigv4.h"
#include "src/net/http_client.h"
#include "src/rt/actor.h"
#include "src/rt/alloc.h"
#include "src/rt/log.h"
#include "src/rt/metrics.h"

#define S3_MAX_ADDRS     8
#define S3_POOL_HOSTS    16
#define S3_HEAD_BUF      8192  /* the request head */
#define S3_BODY_KEEP     16384 /* bytes of a non-streamed response body kept (XML) */
#define EMPTY_MD5_BASE64 "1B2M2Y8AsgTpgAmY7PhCfg==" /* Content-MD5 of no bytes */

typedef struct pool_host {
    char host[512];
    conn *idle[S3_POOL_IDLE];
    uint64_t since[S3_POOL_IDLE]; /* monotonic ns it became idle */
    int n;
} pool_host;

struct s3_client {
    rd_loop *loop;
    rd_actor *actor;
    int tls;             /* https */
    char host[256];      /* endpoint host[:port] as sent in Host (default port dropped) */
    char sni[256];       /* endpoint host name alone */
    char base_path[256]; /* the endpoint's path, without a trailing '/'; often "" */
    struct sockaddr_storage addrs[S3_MAX_ADDRS];
    socklen_t addrlens[S3_MAX_ADDRS];
    int naddrs;
    unsigned next_addr; /* round-robin on connect failures */
    char region[64];
    char access_key_id[128];
    char secret[SIGV4_MAX_SECRET + 1];
    int virtual_hosted;
    const tls_anchors *anchors;
    uint32_t timeout_ms;
    int max_attempts;
    int64_t skew_s;       /* server clock minus ours, learnt from RequestTimeTooSkewed */
    uint64_t rnd;         /* xorshift state for backoff jitter */
    sigv4_key_cache keys; /* loop thread only */
    pool_host pool[S3_POOL_HOSTS];
    int npool;
    struct s3_req *active;  /* operations started and not yet done */
    int stopping;           /* the loop is stopping: no new operation, no retry */
    int hooked;             /* stop_hook is registered */
    rd_stop_hook stop_hook; /* fails what is in flight when the loop stops */
    /* Metrics, looked up once per operation kind. */
    rd_series *m_ok[S3_NMETHODS], *m_failed[S3_NMETHODS];
    rd_series *m_retries[S3_NMETHODS], *m_seconds[S3_NMETHODS];
};

typedef struct s3_req {
    s3_client *cl;
    s3_op *op;
    conn *c;
    int fresh;                  /* c was connected for this attempt */
    int stale_retried;          /* the one uncounted retry after a dead kept-alive conn is spent */
    struct s3_req *prev, *next; /* in the client's active list */
    uint64_t started_ns;        /* when s3_start took the operation */
    int timed_out;
    int streaming;      /* this response's body goes to on_chunk */
    int body_cut;       /* the response body did not fit in `body` */
    int chunk_err;      /* what on_chunk returned to stop the GET */
    uint64_t delivered; /* GET bytes given to on_chunk over all attempts */
    rd_timer attempt_timer;
    rd_timer backoff_timer;
    char host[512];
    char payload_hash[HMAC_SHA256_HEX + 1];
    char content_md5[MD5_BASE64_LEN + 1]; /* of a bucket configuration body */
    char *xml;                            /* MPU_COMPLETE's request body */
    size_t xml_len;
    int64_t server_date; /* Date of the last response, 0 if none */
    char body[S3_BODY_KEEP];
    size_t body_len;
    char head[S3_HEAD_BUF];
    httpc_exchange x;
} s3_req;

static void attempt(s3_req *r);

static const char *const method_names[] = {
    [S3_PUT] = "PutObject",
    [S3_GET] = "GetObject",
    [S3_HEAD] = "HeadObject",
    [S3_DELETE] = "DeleteObject",
    [S3_COPY] = "CopyObject",
    [S3_MPU_CREATE] = "CreateMultipartUpload",
    [S3_MPU_PART] = "UploadPart",
    [S3_MPU_COMPLETE] = "CompleteMultipartUpload",
    [S3_MPU_ABORT] = "AbortMultipartUpload",
    [S3_MPU_PART_COPY] = "UploadPartCopy",
    [S3_PUT_RETENTION] = "PutObjectRetention",
    [S3_HEAD_BUCKET] = "HeadBucket",
    [S3_CREATE_BUCKET] = "CreateBucket",
    [S3_PUT_BUCKET_CORS] = "PutBucketCors",
    [S3_GET_BUCKET_CORS] = "GetBucketCors",
    [S3_PUT_BUCKET_LIFECYCLE] = "PutBucketLifecycleConfiguration",
    [S3_GET_BUCKET_LIFECYCLE] = "GetBucketLifecycleConfiguration",
    [S3_PUT_OBJECT_LOCK] = "PutObjectLockConfiguration",
    [S3_GET_OBJECT_LOCK] = "GetObjectLockConfiguration",
    [S3_LIST_OBJECTS] = "ListObjectsV2",
};

static int bucket_op(s3_method m)
{
    return m >= S3_HEAD_BUCKET;
}

/* The subresource of a bucket configuration operation ("cors"), or NULL. */
static const char *subresource(s3_method m)
{
    switch (m) {
    case S3_PUT_BUCKET_CORS:
    case S3_GET_BUCKET_CORS:
        return "cors";
    case S3_PUT_BUCKET_LIFECYCLE:
    case S3_GET_BUCKET_LIFECYCLE:
        return "lifecycle";
    case S3_PUT_OBJECT_LOCK:
    case S3_GET_OBJECT_LOCK:
        return "object-lock";
    case S3_PUT_RETENTION:
        return "retention";
    default:
        return NULL;
    }
}

/* A bucket PUT whose body is a configuration document (sent with Content-MD5). */
static int config_put(s3_method m)
{
    return m == S3_PUT_BUCKET_CORS || m == S3_PUT_BUCKET_LIFECYCLE || m == S3_PUT_OBJECT_LOCK ||
           m == S3_PUT_RETENTION;
}

static int config_get(s3_method m)
{
    return m == S3_GET_BUCKET_CORS || m == S3_GET_BUCKET_LIFECYCLE || m == S3_GET_OBJECT_LOCK ||
           m == S3_LIST_OBJECTS;
}

static const char *key_of(const s3_op *op)
{
    return op->key ? op->key : "";
}

const char *s3_method_name(s3_method m)
{
    return (unsigned)m < sizeof(method_names) / sizeof(method_names[0]) ? method_names[m] : "?";
}

static const char *http_method(s3_method m)
{
    switch (m) {
    case S3_PUT:
    case S3_COPY:
    case S3_MPU_PART:
    case S3_MPU_PART_COPY:
    case S3_CREATE_BUCKET:
    case S3_PUT_BUCKET_CORS:
    case S3_PUT_BUCKET_LIFECYCLE:
    case S3_PUT_OBJECT_LOCK:
    case S3_PUT_RETENTION:
        return "PUT";
    case S3_GET:
    case S3_GET_BUCKET_CORS:
    case S3_GET_BUCKET_LIFECYCLE:
    case S3_GET_OBJECT_LOCK:
    case S3_LIST_OBJECTS:
        return "GET";
    case S3_HEAD:
    case S3_HEAD_BUCKET:
        return "HEAD";
    case S3_DELETE:
    case S3_MPU_ABORT:
        return "DELETE";
    case S3_MPU_CREATE:
    case S3_MPU_COMPLETE:
        return "POST";
    }
    return "GET";
}

static uint32_t next_random(s3_client *c)
{
    uint64_t x = c->rnd;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    c->rnd = x;
    return (uint32_t)(x >> 32);
}

/* ---- the client ---- */

static int actor_handle(rd_actor *self, rd_msg *m)
{
    s3_client *c = self->state;
    if (m->type == MSG_S3_CALL) {
        s3_op *op = msg_body(m, s3_call)->op;
        if (s3_start(c, op) < 0)
            op->done(op);
    }
    return RD_DONE;
}

static void client_stopping(rd_stop_hook *hook, rd_loop *loop);

static int actor_init(rd_actor *self, void *arg)
{
    s3_client *c = arg;
    self->state = c;
    if (!c->hooked) {
        c->hooked = 1;
        c->stop_hook.fn = client_stopping;
        loop_on_stop(c->loop, &c->stop_hook);
    }
    return 0;
}

static const rd_actor_def s3_actor_def = {
    .name = "s3",
    .init = actor_init,
    .handle = actor_handle,
};

/* The series of operation `m`. Object operations get theirs when the client is made, so that
 * a scrape shows them at zero; bucket operations (an operator's command) on first use. */
static void method_metrics(s3_client *c, int m)
{
    if (c->m_ok[m] != NULL)
        return;
    rd_metric *req = metrics_family("reeld_s3_requests_total",
                                    "S3 operations finished, by operation and outcome", RD_COUNTER,
                                    "op,outcome", NULL, 0);
    rd_metric *retries = metrics_family("reeld_s3_retries_total",
                                        "S3 attempts retried (5xx, SlowDown, resets, timeouts)",
                                        RD_COUNTER, "op", NULL, 0);
    rd_metric *secs =
        metrics_family("reeld_s3_request_seconds", "S3 operation time, retries included",
                       RD_HISTOGRAM, "op", NULL, 0);
    const char *ok[] = {method_names[m], "ok"}, *failed[] = {method_names[m], "error"};
    const char *op[] = {method_names[m]};
    c->m_ok[m] = metrics_series(req, ok);
    c->m_failed[m] = metrics_series(req, failed);
    c->m_retries[m] = metrics_series(retries, op);
    c->m_seconds[m] = metrics_series(secs, op);
}

static void init_metrics(s3_client *c)
{
    for (int m = 0; m <= S3_MPU_ABORT; m++)
        method_metrics(c, m);
}

/* Splits "scheme://host[:port][/path]" into the client's fields. */
static int parse_endpoint(s3_client *c, const char *ep, char *port, size_t portcap)
{
    const char *hp;
    if (strncmp(ep, "https://", 8) == 0) {
        c->tls = 1;
        hp = ep + 8;
    } else if (strncmp(ep, "http://", 7) == 0) {
        hp = ep + 7;
    } else {
        return -EINVAL;
    }
    size_t hl = strcspn(hp, "/?#");
    if (hl == 0 || hl >= sizeof(c->host) || memchr(hp, '@', hl) || hp[hl] == '?' || hp[hl] == '#')
        return -EINVAL;
    memcpy(c->host, hp, hl);
    c->host[hl] = '\0';
    const char *path = hp + hl;
    size_t pl = strlen(path);
    while (pl > 0 && path[pl - 1] == '/')
        pl--;
    if (pl >= sizeof(c->base_path))
        return -EINVAL;
    memcpy(c->base_path, path, pl);
    c->base_path[pl] = '\0';

    /* host[:port], IPv6 literals in brackets */
    const char *name = c->host, *colon;
    size_t nl;
    if (c->host[0] == '[') {
        const char *rb = strchr(c->host, ']');
        if (rb == NULL)
            return -EINVAL;
        name = c->host + 1;
        nl = (size_t)(rb - name);
        colon = rb[1] == ':' ? rb + 1 : NULL;
    } else {
        colon = strrchr(c->host, ':');
        nl = colon ? (size_t)(colon - c->host) : strlen(c->host);
    }
    if (nl == 0 || nl >= sizeof(c->sni))
        return -EINVAL;
    memcpy(c->sni, name, nl);
    c->sni[nl] = '\0';
    const char *dflt = c->tls ? "443" : "80";
    if (colon != NULL && colon[1] != '\0') {
        snprintf(port, portcap, "%s", colon + 1);
        if (strcmp(port, dflt) == 0)
            *(char *)colon = '\0'; /* Host is sent without the scheme's default port */
    } else {
        snprintf(port, portcap, "%s", dflt);
    }
    return 0;
}

int s3_client_create(s3_client **out, rd_loop *loop, const s3_config *cfg, char *err, size_t errlen)
{
    assert(loop_current() == NULL);
    s3_client *c = rd_calloc(1, sizeof(*c), "the S3 client");
    char port[16];
    if (cfg->endpoint == NULL || parse_endpoint(c, cfg->endpoint, port, sizeof(port)) < 0) {
        snprintf(err, errlen, "S3_ENDPOINT: must be http(s)://host[:port][/path] (got '%s')",
                 cfg->endpoint ? cfg->endpoint : "");
        free(c);
        return -EINVAL;
    }
    if (c->tls && cfg->anchors == NULL) {
        snprintf(err, errlen, "S3_ENDPOINT is https but no CA certificates were loaded");
        free(c);
        return -EINVAL;
    }
    if (cfg->access_key_id == NULL || cfg->secret_access_key == NULL ||
        strlen(cfg->access_key_id) >= sizeof(c->access_key_id) ||
        strlen(cfg->secret_access_key) >= sizeof(c->secret) || cfg->region == NULL ||
        strlen(cfg->region) >= sizeof(c->region)) {
        snprintf(err, errlen, "set S3_ACCESS_KEY_ID, S3_SECRET_ACCESS_KEY and S3_REGION");
        free(c);
        return -EINVAL;
    }
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_family = AF_UNSPEC}, *ai;
    int g = getaddrinfo(c->sni, port, &hints, &ai);
    if (g != 0) {
        snprintf(err, errlen, "S3_ENDPOINT: cannot resolve %s (%s)", c->sni, gai_strerror(g));
        free(c);
        return -EHOSTUNREACH;
    }
    for (struct addrinfo *a = ai; a != NULL && c->naddrs < S3_MAX_ADDRS; a = a->ai_next) {
        if (a->ai_addrlen > sizeof(c->addrs[0]))
            continue;
        memcpy(&c->addrs[c->naddrs], a->ai_addr, a->ai_addrlen);
        c->addrlens[c->naddrs++] = a->ai_addrlen;
    }
    freeaddrinfo(ai);
    if (c->naddrs == 0) {
        snprintf(err, errlen, "S3_ENDPOINT: %s has no usable address", c->sni);
        free(c);
        return -EHOSTUNREACH;
    }
    c->loop = loop;
    snprintf(c->region, sizeof(c->region), "%s", cfg->region);
    snprintf(c->access_key_id, sizeof(c->access_key_id), "%s", cfg->access_key_id);
    snprintf(c->secret, sizeof(c->secret), "%s", cfg->secret_access_key);
    c->virtual_hosted = cfg->virtual_hosted;
    c->anchors = cfg->anchors;
    c->timeout_ms = cfg->timeout_ms ? cfg->timeout_ms : S3_DEFAULT_TIMEOUT;
    c->max_attempts = cfg->max_attempts > 0 ? cfg->max_attempts : S3WIRE_MAX_ATTEMPTS;
    c->rnd = (uint64_t)rd_now_ns() ^ ((uint64_t)getpid() << 32) ^ (uintptr_t)c;
    if (c->rnd == 0)
        c->rnd = 1;
    init_metrics(c);
    int r = actor_spawn(loop, &s3_actor_def, c, &c->actor);
    if (r < 0) {
        snprintf(err, errlen, "cannot start the S3 client (%s)", strerror(-r));
        free(c);
        return r;
    }
    *out = c;
    return 0;
}

void s3_client_destroy(s3_client *c)
{
    if (c == NULL)
        return;
    for (int i = 0; i < c->npool; i++)
        for (int j = 0; j < c->pool[i].n; j++)
            conn_destroy(c->pool[i].idle[j]);
    sigv4_key_cache_clear(&c->keys);
    memset(c->secret, 0, sizeof(c->secret));
    free(c);
}

/* ---- the pool ---- */

static pool_host *pool_find(s3_client *c, const char *host, int create)
{
    for (int i = 0; i < c->npool; i++)
        if (strcmp(c->pool[i].host, host) == 0)
            return &c->pool[i];
    if (!create || c->npool == S3_POOL_HOSTS)
        return NULL;
    pool_host *p = &c->pool[c->npool++];
    snprintf(p->host, sizeof(p->host), "%s", host);
    p->n = 0;
    return p;
}

/* The most recently idled connection to `host` that is young enough, or NULL. */
static conn *pool_take(s3_client *c, const char *host)
{
    pool_host *p = pool_find(c, host, 0);
    if (p == NULL)
        return NULL;
    uint64_t now = rd_now_ns();
    while (p->n > 0) {
        conn *cn = p->idle[--p->n];
        if (now - p->since[p->n] < (uint64_t)S3_POOL_IDLE_SEC * 1000000000ull)
            return cn;
        conn_destroy(cn);
    }
    return NULL;
}

static void pool_put(s3_client *c, const char *host, conn *cn)
{
    pool_host *p = pool_find(c, host, 1);
    if (p == NULL || p->n == S3_POOL_IDLE) {
        conn_destroy(cn);
        return;
    }
    p->since[p->n] = rd_now_ns();
    p->idle[p->n++] = cn;
}

/* ---- building a request ---- */

/* Appends fmt to r->head at *n; -ENOSPC when it does not fit. */
static int head_add(s3_req *r, size_t *n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int head_add(s3_req *r, size_t *n, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(r->head + *n, sizeof(r->head) - *n, fmt, ap);
    va_end(ap);
    if (k < 0 || (size_t)k >= sizeof(r->head) - *n)
        return -ENOSPC;
    *n += (size_t)k;
    return 0;
}

static int valid_header_value(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return 0;
    return 1;
}

/* The request line, signed headers and framing headers of the current attempt into r->head. */
static int build_request(s3_req *r)
{
    s3_client *c = r->cl;
    s3_op *op = r->op;
    char path[2 * S3_MAX_KEY + 512];
    int pn =
        bucket_op(op->method)
            ? (c->virtual_hosted ? snprintf(path, sizeof(path), "%s/", c->base_path)
                                 : snprintf(path, sizeof(path), "%s/%s", c->base_path, op->bucket))
        : c->virtual_hosted
            ? snprintf(path, sizeof(path), "%s/%s", c->base_path, op->key)
            : snprintf(path, sizeof(path), "%s/%s/%s", c->base_path, op->bucket, op->key);
    if (pn < 0 || (size_t)pn >= sizeof(path))
        return -ENAMETOOLONG;

    sigv4_pair query[4];
    size_t nq = 0;
    char partno[16], maxkeys[16];
    switch (op->method) {
    case S3_DELETE:
        if (op->version_id != NULL)
            query[nq++] = (sigv4_pair){"versionId", op->version_id};
        break;
    case S3_LIST_OBJECTS:
        query[nq++] = (sigv4_pair){"list-type", "2"};
        snprintf(maxkeys, sizeof(maxkeys), "%d", op->max_keys > 0 ? op->max_keys : 1000);
        query[nq++] = (sigv4_pair){"max-keys", maxkeys};
        if (op->prefix != NULL)
            query[nq++] = (sigv4_pair){"prefix", op->prefix};
        if (op->continuation != NULL)
            query[nq++] = (sigv4_pair){"continuation-token", op->continuation};
        break;
    case S3_MPU_CREATE:
        query[nq++] = (sigv4_pair){"uploads", ""};
        break;
    case S3_MPU_PART:
    case S3_MPU_PART_COPY:
        snprintf(partno, sizeof(partno), "%d", op->part_number);
        query[nq++] = (sigv4_pair){"partNumber", partno};
        query[nq++] = (sigv4_pair){"uploadId", op->upload_id};
        break;
    case S3_MPU_COMPLETE:
    case S3_MPU_ABORT:
        query[nq++] = (sigv4_pair){"uploadId", op->upload_id};
        break;
    default:
        if (subresource(op->method) != NULL)
            query[nq++] = (sigv4_pair){subresource(op->method), ""};
        break;
    }

    /* Extra signed headers: every x-amz-* one S3 must see signed. */
    sigv4_pair extra[5];
    size_t ne = 0;
    char copy_src[3 * (S3_MAX_KEY + 256)], until[32], copy_range[64];
    if (op->method == S3_COPY || op->method == S3_MPU_PART_COPY) {
        char src[S3_MAX_KEY + 256];
        int sn = snprintf(src, sizeof(src), "/%s/%s", op->copy_bucket, op->copy_key);
        if (sn < 0 || (size_t)sn >= sizeof(src) ||
            sigv4_uri_encode(copy_src, sizeof(copy_src), src, (size_t)sn, 1) < 0)
            return -ENAMETOOLONG;
        extra[ne++] = (sigv4_pair){"x-amz-copy-source", copy_src};
        if (op->method == S3_MPU_PART_COPY) {
            snprintf(copy_range, sizeof(copy_range), "bytes=%llu-%llu",
                     (unsigned long long)op->range_start,
                     (unsigned long long)(op->range_start + op->range_len - 1));
            extra[ne++] = (sigv4_pair){"x-amz-copy-source-range", copy_range};
        } else if (op->content_type != NULL) {
            extra[ne++] = (sigv4_pair){"x-amz-metadata-directive", "REPLACE"};
        }
    }
    if ((op->method == S3_COPY || op->method == S3_MPU_CREATE) && op->lock_days > 0) {
        int64_t t = (int64_t)time(NULL) + c->skew_s + (int64_t)op->lock_days * 86400;
        if (s3wire_iso8601(t, until, sizeof(until)) < 0)
            return -ERANGE;
        extra[ne++] =
            (sigv4_pair){"x-amz-object-lock-mode", op->lock_mode ? op->lock_mode : "COMPLIANCE"};
        extra[ne++] = (sigv4_pair){"x-amz-object-lock-retain-until-date", until};
    }
    if (op->method == S3_CREATE_BUCKET && op->bucket_lock)
        extra[ne++] = (sigv4_pair){"x-amz-bucket-object-lock-enabled", "true"};

    /* Range: a resumed GET asks for what it has not delivered yet. */
    char range[64] = "";
    if (op->method == S3_GET && (op->range_start > 0 || op->range_len > 0 || r->delivered > 0)) {
        uint64_t from = op->range_start + r->delivered;
        if (op->range_len > 0)
            snprintf(range, sizeof(range), "bytes=%llu-%llu", (unsigned long long)from,
                     (unsigned long long)(op->range_start + op->range_len - 1));
        else
            snprintf(range, sizeof(range), "bytes=%llu-", (unsigned long long)from);
    }

    const char *payload = NULL;
    uint64_t content_length = 0;
    int has_body = 0;
    if (op->method == S3_PUT || op->method == S3_MPU_PART) {
        has_body = 1;
        content_length = op->from_file ? op->file_len : op->body_len;
        payload = op->from_file ? SIGV4_UNSIGNED_PAYLOAD : r->payload_hash;
    } else if (op->method == S3_MPU_COMPLETE) {
        has_body = 1;
        content_length = r->xml_len;
        payload = r->payload_hash;
    } else if (op->method == S3_CREATE_BUCKET || config_put(op->method)) {
        has_body = 1;
        content_length = op->body_len;
        payload = r->payload_hash;
    } else if (op->method == S3_MPU_CREATE || op->method == S3_COPY ||
               op->method == S3_MPU_PART_COPY) {
        has_body = 1; /* a POST or PUT without a body still says Content-Length: 0 */
        payload = SIGV4_EMPTY_SHA256;
    } else {
        payload = SIGV4_EMPTY_SHA256;
    }

    sigv4_credentials cred = {c->access_key_id, c->secret, c->region, "s3"};
    sigv4_request sreq = {http_method(op->method), path, nq ? query : NULL, nq, NULL, 0, payload};
    sigv4_signed sig;
    int s = sigv4_sign_headers(&c->keys, &cred, (int64_t)time(NULL) + c->skew_s, r->host, &sreq,
                               ne ? extra : NULL, ne, &sig);
    if (s < 0)
        return s;

    char epath[3 * sizeof(path)];
    if (sigv4_uri_encode(epath, sizeof(epath), path, (size_t)pn, 1) < 0)
        return -ENAMETOOLONG;
    size_t n = 0;
    int e = head_add(r, &n, "%s %s", sreq.method, epath);
    for (size_t i = 0; i < nq && e == 0; i++) {
        char ev[1024];
        if (sigv4_uri_encode(ev, sizeof(ev), query[i].value, strlen(query[i].value), 0) < 0)
            return -ENAMETOOLONG;
        e = head_add(r, &n, "%c%s=%s", i ? '&' : '?', query[i].name, ev);
    }
    if (e == 0)
        e = head_add(r, &n,
                     " HTTP/1.1\r\nHost: %s\r\nUser-Agent: reeld\r\nX-Amz-Date: %s\r\n"
                     "X-Amz-Content-Sha256: %s\r\nAuthorization: %s\r\n",
                     r->host, sig.amz_date, sig.content_sha256, sig.authorization);
    for (size_t i = 0; i < ne && e == 0; i++)
        e = head_add(r, &n, "%s: %s\r\n", extra[i].name, extra[i].value);
    if (e == 0 && range[0])
        e = head_add(r, &n, "Range: %s\r\n", range);
    if (e == 0 && op->content_type != NULL &&
        (op->method == S3_PUT || op->method == S3_MPU_CREATE || op->method == S3_COPY))
        e = head_add(r, &n, "Content-Type: %s\r\n", op->content_type);
    if (e == 0 && op->cache_control != NULL &&
        (op->method == S3_PUT || op->method == S3_MPU_CREATE))
        e = head_add(r, &n, "Cache-Control: %s\r\n", op->cache_control);
    if (e == 0 && (((op->method == S3_COPY || op->method == S3_MPU_CREATE) && op->lock_days > 0) ||
                   op->method == S3_MPU_PART_COPY))
        /* S3 wants a checksum on any write that sets a retention (a part of an upload that has
         * one included); the body is empty. */
        e = head_add(r, &n, "Content-MD5: %s\r\n", EMPTY_MD5_BASE64);
    if (e == 0 && config_put(op->method))
        e = head_add(r, &n, "Content-MD5: %s\r\n", r->content_md5);
    if (e == 0 && has_body)
        e = head_add(r, &n, "Content-Length: %llu\r\n", (unsigned long long)content_length);
    if (e == 0)
        e = head_add(r, &n, "\r\n");
    if (e < 0)
        return e;

    httpc_exchange *x = &r->x;
    x->head = r->head;
    x->head_len = n;
    x->head_request = op->method == S3_HEAD || op->method == S3_HEAD_BUCKET;
    x->from_file = 0;
    x->body = NULL;
    x->body_len = 0;
    if (op->method == S3_PUT || op->method == S3_MPU_PART) {
        x->from_file = op->from_file;
        x->body_fd = op->body_fd;
        x->file_off = op->file_off;
        x->file_len = op->file_len;
        x->body = op->body;
        x->body_len = op->body_len;
    } else if (op->method == S3_MPU_COMPLETE) {
        x->body = (const uint8_t *)r->xml;
        x->body_len = r->xml_len;
    } else if (op->method == S3_CREATE_BUCKET || config_put(op->method)) {
        x->body = op->body;
        x->body_len = op->body_len;
    }
    return 0;
}

/* ---- responses ---- */

static void copy_header(const http1_response *resp, const char *name, char *out, size_t cap)
{
    size_t len;
    const char *v = http1_response_header(resp, name, &len);
    if (v == NULL)
        return;
    if (len >= cap)
        len = cap - 1;
    memcpy(out, v, len);
    out[len] = '\0';
}

static int on_head(httpc_exchange *x, const http1_response *resp)
{
    s3_req *r = (s3_req *)(void *)((char *)x - offsetof(s3_req, x));
    s3_op *op = r->op;
    op->status = resp->status;
    op->content_length = resp->content_length;
    r->body_len = 0;
    r->body_cut = 0;
    r->server_date = 0;
    size_t len;
    const char *v = http1_response_header(resp, "date", &len);
    if (v != NULL)
        s3wire_parse_http_date(v, len, &r->server_date);
    if (resp->status / 100 != 2)
        return 0;
    copy_header(resp, "etag", op->etag, sizeof(op->etag));
    copy_header(resp, "content-type", op->content_type_out, sizeof(op->content_type_out));
    if (op->method == S3_HEAD) {
        copy_header(resp, "x-amz-version-id", op->version_id_out, sizeof(op->version_id_out));
        copy_header(resp, "x-amz-object-lock-retain-until-date", op->lock_until_out,
                    sizeof(op->lock_until_out));
    }
    if (op->method == S3_HEAD || op->method == S3_GET) {
        op->object_size = resp->content_length;
        v = http1_response_header(resp, "content-range", &len);
        if (v != NULL) {
            const char *slash = memchr(v, '/', len);
            if (slash != NULL && slash + 1 < v + len && slash[1] != '*')
                op->object_size = strtoll(slash + 1, NULL, 10);
        }
    }
    r->streaming = op->method == S3_GET && op->on_chunk != NULL;
    return 0;
}

static int on_body(httpc_exchange *x, uint8_t *data, size_t len)
{
    s3_req *r = (s3_req *)(void *)((char *)x - offsetof(s3_req, x));
    if (r->streaming) {
        int e = r->op->on_chunk(r->op, data, len);
        r->delivered += len;
        if (e < 0)
            r->chunk_err = e;
        return e < 0 ? e : 0;
    }
    size_t room = sizeof(r->body) - 1 - r->body_len;
    size_t take = len < room ? len : room;
    if (take < len)
        r->body_cut = 1;
    memcpy(r->body + r->body_len, data, take);
    r->body_len += take;
    r->body[r->body_len] = '\0';
    return 0;
}

static int status_errno(int status)
{
    if (status == 404)
        return -ENOENT;
    if (status == 403)
        return -EACCES;
    if (status == 416)
        return -ERANGE;
    if (status >= 500)
        return -EIO;
    return -EINVAL;
}

static void complete(s3_req *r, int res, const s3wire_error *e)
{
    s3_client *c = r->cl;
    s3_op *op = r->op;
    loop_timer_cancel(c->loop, &r->attempt_timer);
    loop_timer_cancel(c->loop, &r->backoff_timer);
    op->res = res;
    metrics_add(res < 0 ? c->m_failed[op->method] : c->m_ok[op->method], 1);
    metrics_observe(c->m_seconds[op->method], (double)(rd_now_ns() - r->started_ns) / 1e9);
    if (res < 0) {
        int status = op->status / 100 == 2 && e == NULL ? 0 : op->status;
        char what[2 * S3_MAX_KEY];
        snprintf(what, sizeof(what), "%s", key_of(op));
        if (op->message[0] == '\0')
            s3wire_describe(op->message, sizeof(op->message), s3_method_name(op->method),
                            op->bucket ? op->bucket : "", what, status, e, res);
        log_debug("s3_failed", KV_STR("op", s3_method_name(op->method)),
                  KV_INT("status", op->status), KV_INT("attempts", op->attempts), KV_ERRNO(res));
    }
    if (r->prev != NULL)
        r->prev->next = r->next;
    else
        c->active = r->next;
    if (r->next != NULL)
        r->next->prev = r->prev;
    free(r->xml);
    op->req = NULL;
    free(r);
    op->done(op);
}

static void backoff_fire(rd_timer *t)
{
    s3_req *r = (s3_req *)(void *)((char *)t - offsetof(s3_req, backoff_timer));
    attempt(r);
}

/* Another attempt, after a jittered delay unless `now`; or the end when attempts are spent. */
static void retry(s3_req *r, int now, int res, const s3wire_error *e)
{
    s3_op *op = r->op;
    if (op->attempts >= r->cl->max_attempts || r->cl->stopping) {
        complete(r, res, e);
        return;
    }
    uint32_t ms = now ? 0 : s3wire_backoff_ms(op->attempts, next_random(r->cl));
    metrics_add(r->cl->m_retries[op->method], 1);
    log_debug("s3_retry", KV_STR("op", s3_method_name(op->method)), KV_INT("status", op->status),
              KV_INT("attempt", op->attempts), KV_INT("delay_ms", ms));
    r->backoff_timer.fire = backoff_fire;
    loop_timer_start(r->cl->loop, &r->backoff_timer, (uint64_t)ms * 1000000ull, 0);
}

static void exchange_done(httpc_exchange *x, int res)
{
    s3_req *r = (s3_req *)(void *)((char *)x - offsetof(s3_req, x));
    s3_client *c = r->cl;
    s3_op *op = r->op;
    loop_timer_cancel(c->loop, &r->attempt_timer);
    int tls_err = conn_tls_error(r->c);
    if (res == 0 && x->reusable)
        pool_put(c, r->host, r->c);
    else
        conn_destroy(r->c);
    r->c = NULL;
    if (r->timed_out && res < 0)
        res = -ETIMEDOUT;
    if (res < 0 && tls_err != 0)
        snprintf(op->message, sizeof(op->message),
                 "S3 %s %.64s/%.200s failed: TLS with %.100s failed: %s (BearSSL error %d).",
                 s3_method_name(op->method), op->bucket, key_of(op), r->host, tls_strerror(tls_err),
                 tls_err);

    if (res < 0) {
        if (r->chunk_err) {
            complete(r, r->chunk_err, NULL);
            return;
        }
        op->status = 0;
        if (!r->fresh && !x->got_response && !r->stale_retried && !r->timed_out) {
            /* A kept-alive connection the server had already closed: not a real failure. */
            r->stale_retried = 1;
            op->attempts--;
            retry(r, 1, res, NULL);
            return;
        }
        if (s3wire_retryable(0, NULL, res) || res == -EPROTO)
            retry(r, 0, res, NULL);
        else
            complete(r, res, NULL);
        return;
    }

    /* A 2xx body is only searched for an <Error> where S3 puts late failures: CopyObject and
     * CompleteMultipartUpload. An object's own bytes are never taken for one. */
    s3wire_error e;
    int look = op->status / 100 != 2 || op->method == S3_COPY || op->method == S3_MPU_COMPLETE ||
               op->method == S3_MPU_PART_COPY;
    int has_error = look && s3wire_parse_error(r->body, r->body_len, &e) == 0;
    if (op->status / 100 == 2 && !has_error) {
        if (op->method == S3_MPU_CREATE &&
            s3wire_xml_text(r->body, r->body_len, "UploadId", op->upload_id_out,
                            sizeof(op->upload_id_out)) <= 0) {
            snprintf(op->message, sizeof(op->message),
                     "S3 CreateMultipartUpload %s/%s failed: the response has no UploadId.",
                     op->bucket, op->key);
            complete(r, -EPROTO, NULL);
            return;
        }
        if ((op->method == S3_COPY || op->method == S3_MPU_COMPLETE ||
             op->method == S3_MPU_PART_COPY) &&
            op->etag[0] == '\0')
            s3wire_xml_text(r->body, r->body_len, "ETag", op->etag, sizeof(op->etag));
        if (config_get(op->method)) {
            if (r->body_cut || r->body_len >= op->resp_cap) {
                snprintf(op->message, sizeof(op->message),
                         "S3 %s %s failed: the configuration is larger than %zu bytes.",
                         s3_method_name(op->method), op->bucket,
                         r->body_cut ? sizeof(r->body) - 1 : op->resp_cap - 1);
                complete(r, -EMSGSIZE, NULL);
                return;
            }
            memcpy(op->resp, r->body, r->body_len);
            op->resp[r->body_len] = '\0';
            op->resp_len = r->body_len;
        }
        complete(r, 0, NULL);
        return;
    }
    snprintf(op->code, sizeof(op->code), "%s", has_error ? e.code : "");
    if (has_error && strcmp(e.code, "RequestTimeTooSkewed") == 0 && r->server_date > 0) {
        c->skew_s = r->server_date - (int64_t)time(NULL);
        log_warn("s3_clock_skew", KV_INT("skew_s", c->skew_s));
        retry(r, 1, status_errno(op->status), &e);
        return;
    }
    int err = op->status / 100 == 2 ? -EIO : status_errno(op->status);
    if (s3wire_retryable(op->status / 100 == 2 ? 500 : op->status, has_error ? e.code : NULL, 0))
        retry(r, 0, err, has_error ? &e : NULL);
    else
        complete(r, err, has_error ? &e : NULL);
}

static void attempt_timeout(rd_timer *t)
{
    s3_req *r = (s3_req *)(void *)((char *)t - offsetof(s3_req, attempt_timer));
    r->timed_out = 1;
    if (r->c != NULL && r->x.c == r->c)
        httpc_cancel(&r->x, -ETIMEDOUT);
    else if (r->c != NULL)
        conn_cancel(r->c); /* still connecting */
}

static void send_request(s3_req *r)
{
    int e = build_request(r);
    if (e < 0) {
        conn_destroy(r->c);
        r->c = NULL;
        snprintf(r->op->message, sizeof(r->op->message),
                 "S3 %s %s/%s failed: the request cannot be built (%s).",
                 s3_method_name(r->op->method), r->op->bucket, key_of(r->op), strerror(-e));
        complete(r, e, NULL);
        return;
    }
    r->x.on_head = on_head;
    r->x.on_body = on_body;
    r->x.done = exchange_done;
    r->streaming = 0;
    httpc_start(&r->x, r->c);
}

static void connected(conn *cn, int res, void *ctx)
{
    s3_req *r = ctx;
    (void)cn;
    if (res < 0) {
        loop_timer_cancel(r->cl->loop, &r->attempt_timer);
        conn_destroy(r->c);
        r->c = NULL;
        r->cl->next_addr++;
        if (r->timed_out)
            res = -ETIMEDOUT;
        r->op->status = 0;
        if (s3wire_retryable(0, NULL, res))
            retry(r, 0, res, NULL);
        else
            complete(r, res, NULL);
        return;
    }
    send_request(r);
}

static void attempt(s3_req *r)
{
    s3_client *c = r->cl;
    r->op->attempts++;
    r->op->message[0] = '\0';
    r->timed_out = 0;
    r->x.c = NULL;
    r->attempt_timer.fire = attempt_timeout;
    loop_timer_start(c->loop, &r->attempt_timer, (uint64_t)c->timeout_ms * 1000000ull, 0);
    r->c = pool_take(c, r->host);
    if (r->c != NULL) {
        r->fresh = 0;
        send_request(r);
        return;
    }
    r->fresh = 1;
    unsigned i = c->next_addr % (unsigned)c->naddrs;
    char sni[512];
    if (c->virtual_hosted)
        snprintf(sni, sizeof(sni), "%s.%s", r->op->bucket, c->sni);
    else
        snprintf(sni, sizeof(sni), "%s", c->sni);
    int e = conn_create(&r->c, c->loop, (struct sockaddr *)&c->addrs[i], c->addrlens[i],
                        c->tls ? c->anchors : NULL, sni);
    if (e < 0) {
        r->c = NULL;
        r->op->status = 0;
        complete(r, e, NULL);
        return;
    }
    conn_connect(r->c, connected, r);
}

/* The loop is stopping: operations waiting to retry end now, those on the wire are cancelled
 * (their completions end them), and nothing new starts, so no thread waits in s3_call for a
 * loop that no longer turns. */
static void client_stopping(rd_stop_hook *hook, rd_loop *loop)
{
    (void)loop;
    s3_client *c = (s3_client *)(void *)((char *)hook - offsetof(s3_client, stop_hook));
    c->stopping = 1;
    s3_req *next;
    for (s3_req *r = c->active; r != NULL; r = next) {
        next = r->next;
        if (loop_timer_armed(&r->backoff_timer)) {
            complete(r, -ECANCELED, NULL);
        } else if (r->c != NULL) {
            if (r->x.c == r->c)
                httpc_cancel(&r->x, -ECANCELED);
            else
                conn_cancel(r->c);
        }
    }
}

/* ---- the API ---- */

static int valid_request(const s3_op *op)
{
    if ((unsigned)op->method >= S3_NMETHODS)
        return 0;
    if (bucket_op(op->method)) {
        if (op->bucket == NULL || op->bucket[0] == '\0' || strchr(op->bucket, '/') != NULL ||
            (op->key != NULL && op->key[0] != '\0'))
            return 0;
        if (config_put(op->method))
            return op->body != NULL && op->body_len > 0;
        if (op->method == S3_CREATE_BUCKET)
            return op->body != NULL || op->body_len == 0;
        if (config_get(op->method))
            return op->resp != NULL && op->resp_cap > 0;
        return 1;
    }
    if (op->bucket == NULL || op->bucket[0] == '\0' || op->key == NULL || op->key[0] == '\0' ||
        strlen(op->key) > S3_MAX_KEY || strchr(op->bucket, '/') != NULL ||
        (op->content_type != NULL && !valid_header_value(op->content_type)) ||
        (op->cache_control != NULL && !valid_header_value(op->cache_control)))
        return 0;
    switch (op->method) {
    case S3_MPU_PART_COPY:
        if (op->part_number < 1 || op->part_number > 10000 || op->range_len == 0 ||
            op->upload_id == NULL || op->upload_id[0] == '\0' || strlen(op->upload_id) >= 1000)
            return 0;
        /* fall through */
    case S3_COPY:
        return op->copy_bucket != NULL && op->copy_key != NULL && op->copy_key[0] != '\0' &&
               strlen(op->copy_key) <= S3_MAX_KEY;
    case S3_MPU_PART:
        if (op->part_number < 1 || op->part_number > 10000)
            return 0;
        /* fall through */
    case S3_MPU_COMPLETE:
    case S3_MPU_ABORT:
        return op->upload_id != NULL && op->upload_id[0] != '\0' && strlen(op->upload_id) < 1000 &&
               (op->method != S3_MPU_COMPLETE || op->nparts > 0);
    case S3_PUT:
        return op->from_file || op->body != NULL || op->body_len == 0;
    case S3_PUT_RETENTION:
        return op->body != NULL && op->body_len > 0;
    default:
        return 1;
    }
}

/* CompleteMultipartUpload's body. */
static void build_complete_xml(s3_req *r)
{
    s3_op *op = r->op;
    size_t cap = 96 + op->nparts * (64 + sizeof(op->parts[0].etag) * 6);
    r->xml = rd_calloc(1, cap, "a multipart completion");
    size_t n = (size_t)snprintf(r->xml, cap, "<CompleteMultipartUpload>");
    for (size_t i = 0; i < op->nparts; i++) {
        n += (size_t)snprintf(r->xml + n, cap - n, "<Part><PartNumber>%d</PartNumber><ETag>",
                              op->parts[i].number);
        for (const char *p = op->parts[i].etag; *p; p++) {
            const char *ent = *p == '&' ? "&amp;" : *p == '<' ? "&lt;" : *p == '>' ? "&gt;" : NULL;
            if (ent)
                n += (size_t)snprintf(r->xml + n, cap - n, "%s", ent);
            else
                r->xml[n++] = *p;
        }
        n += (size_t)snprintf(r->xml + n, cap - n, "</ETag></Part>");
    }
    n += (size_t)snprintf(r->xml + n, cap - n, "</CompleteMultipartUpload>");
    r->xml_len = n;
}

static void hash_hex(const void *data, size_t len, char out[HMAC_SHA256_HEX + 1])
{
    uint8_t d[HMAC_SHA256_LEN];
    hmac_sha256_digest(data, len, d);
    hmac_hex(out, d, sizeof(d));
}

rd_loop *s3_client_loop(const s3_client *c)
{
    return c->loop;
}

int s3_start(s3_client *c, s3_op *op)
{
    assert(loop_current() == c->loop && op->done != NULL);
    op->res = 0;
    op->status = 0;
    op->attempts = 0;
    op->content_length = -1;
    op->object_size = -1;
    op->resp_len = 0;
    op->etag[0] = op->content_type_out[0] = op->upload_id_out[0] = '\0';
    op->version_id_out[0] = op->lock_until_out[0] = '\0';
    op->code[0] = op->message[0] = '\0';
    if (!valid_request(op)) {
        snprintf(op->message, sizeof(op->message),
                 "S3 %s: the request is incomplete or invalid (bucket, key, upload id, part "
                 "number or content type).",
                 s3_method_name(op->method));
        op->res = -EINVAL;
        return -EINVAL;
    }
    if (c->stopping) {
        snprintf(op->message, sizeof(op->message), "S3 %s %s/%s: reeld is stopping.",
                 s3_method_name(op->method), op->bucket, key_of(op));
        op->res = -ECANCELED;
        op->done(op);
        return 0;
    }
    method_metrics(c, op->method);
    s3_req *r = rd_calloc(1, sizeof(*r), "an S3 request");
    r->next = c->active;
    if (c->active != NULL)
        c->active->prev = r;
    c->active = r;
    r->cl = c;
    r->op = op;
    r->started_ns = rd_now_ns();
    op->req = r;
    if (c->virtual_hosted)
        snprintf(r->host, sizeof(r->host), "%s.%s", op->bucket, c->host);
    else
        snprintf(r->host, sizeof(r->host), "%s", c->host);
    if ((op->method == S3_PUT || op->method == S3_MPU_PART) && !op->from_file)
        hash_hex(op->body, op->body_len, r->payload_hash);
    if (op->method == S3_CREATE_BUCKET || config_put(op->method))
        hash_hex(op->body ? op->body : "", op->body_len, r->payload_hash);
    if (config_put(op->method))
        md5_base64(op->body, op->body_len, r->content_md5);
    if (op->method == S3_MPU_COMPLETE) {
        build_complete_xml(r);
        hash_hex(r->xml, r->xml_len, r->payload_hash);
    }
    attempt(r);
    return 0;
}

/* ---- blocking calls for other threads ---- */

typedef struct s3_waiter {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int done;
} s3_waiter;

static void waiter_done(s3_op *op)
{
    s3_waiter *w = op->waiter;
    pthread_mutex_lock(&w->mu);
    w->done = 1;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

int64_t s3_client_now(const s3_client *c)
{
    return (int64_t)time(NULL) + c->skew_s;
}

int s3_call(s3_client *c, s3_op *op)
{
    if (loop_current() != NULL) { /* it would hold back its own loop: refused, not waited */
        snprintf(op->message, sizeof(op->message),
                 "S3 %s: asked on an event loop, which never "
                 "waits.",
                 s3_method_name(op->method));
        op->res = -EDEADLK;
        return op->res;
    }
    if (loop_stopping(c->loop)) {
        snprintf(op->message, sizeof(op->message), "S3 %s: reeld is stopping.",
                 s3_method_name(op->method));
        op->res = -ECANCELED;
        return op->res;
    }
    s3_waiter w = {.done = 0};
    pthread_mutex_init(&w.mu, NULL);
    pthread_cond_init(&w.cv, NULL);
    op->done = waiter_done;
    op->waiter = &w;
    rd_msg *m = msg_new(MSG_S3_CALL);
    msg_body(m, s3_call)->op = op;
    int r = actor_send(c->actor, m);
    if (r < 0) {
        msg_free(m);
        snprintf(op->message, sizeof(op->message), "S3 %s: the client is %s.",
                 s3_method_name(op->method), r == -EAGAIN ? "overloaded, try again" : "stopped");
        op->res = r;
    } else {
        pthread_mutex_lock(&w.mu);
        while (!w.done)
            pthread_cond_wait(&w.cv, &w.mu);
        pthread_mutex_unlock(&w.mu);
    }
    pthread_mutex_destroy(&w.mu);
    pthread_cond_destroy(&w.cv);
    return op->res;
}

typedef struct range_sink {
    uint8_t *buf;
    size_t cap, got;
} range_sink;

static int range_chunk(s3_op *op, const uint8_t *data, size_t len)
{
    range_sink *s = op->ctx;
    size_t take = len < s->cap - s->got ? len : s->cap - s->got;
    memcpy(s->buf + s->got, data, take);
    s->got += take;
    return 0;
}

int s3_get_range(s3_client *c, const char *bucket, const char *key, uint64_t offset, void *buf,
                 size_t len, size_t *got, char *message, size_t msglen)
{
    range_sink s = {buf, len, 0};
    s3_op op = {.method = S3_GET,
                .bucket = bucket,
                .key = key,
                .range_start = offset,
                .range_len = len,
                .on_chunk = range_chunk,
                .ctx = &s};
    *got = 0;
    if (len == 0)
        return 0;
    int r = s3_call(c, &op);
    *got = s.got;
    if (r < 0 && message != NULL)
        snprintf(message, msglen, "%s", op.message);
    return r;
}
