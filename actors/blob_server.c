/* Presigned PUT/GET/HEAD of the embedded object store, on a thread of its own.
 *
 * owns:  the uploads in progress (a writer and its temp file each, keyed by the request's
 *        stream, which is unique in the process; each counted against its org's and its
 *        client address's share of the slots), the downloads in progress (an open file
 *        each), a SigV4 key cache and the credentials it verifies with (src/urlsign.h). The
 *        blobfs store is borrowed.
 * takes: MSG_HTTP_REQUEST (route /blob/{bucket}/{key...}); MSG_HTTP_BODY (a PUT's body);
 *        MSG_HTTP_PART_ACK (a GET's part has left).
 * sends: replies (MSG_HTTP_RESPONSE) to the listener; MSG_HTTP_BODY_ACK and MSG_HTTP_PART to
 *        the listener of the request.
 * never: runs on a loop (every call here blocks in the file system); writes a byte before the
 *        signature, the names and the size have been checked; keeps a failed upload's temp
 *        file; logs a signature or a secret. */
#include "actors/blob_server.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "proto/cors.h"
#include "proto/http_cond.h"
#include "src/rt/log.h"
#include "src/rt/metrics.h"
#include "src/urlsign.h"

#define MAX_UPLOADS                                                                                \
    256 /* at once; more: 503 SlowDown (and at most cfg's share per org and                        \
         * per client address, so one tenant cannot take them all) */
#define ORG_PARAM     "reeld-org" /* the signed query parameter that names the uploader's org */
#define MAX_DOWNLOADS 256
#define GET_PARTS     4 /* 64 KiB parts in flight per download */
#define GET_CHUNK     (64 * 1024)

typedef struct upload {
    int used;
    uint64_t stream;
    rd_msg *request; /* kept for the reply */
    rd_actor *listener;
    blobfs_writer w;
    uint64_t expect, got;
    char org[72];  /* ORG_PARAM as in the URL (still percent-encoded); "" when absent */
    char peer[48]; /* the client's address */
} upload;

typedef struct download {
    int used;
    uint64_t stream;
    rd_actor *listener;
    int fd;
    uint64_t off, end; /* next byte to read, one past the last to send */
    int inflight;
} download;

typedef struct blob_server {
    rd_actor *self;
    blobfs *fs;
    urlsign sign;
    uint64_t max_upload;
    int slots_per_org, slots_per_client;
    cors_policy cors; /* ALLOWED_ORIGINS: browsers on these origins PUT and GET here */
    int route;
    upload up[MAX_UPLOADS];
    download down[MAX_DOWNLOADS];
    rd_series *m_denied, *m_bad, *m_put_bytes, *m_get_bytes;
} blob_server;

/* ---- replies ---- */

/* What a browser's script may read of a response besides the safelisted headers: the ETag
 * (multipart clients send it back) and the range headers of a ranged GET. */
#define CORS_EXPOSE "ETag, Content-Range, Accept-Ranges, Content-Length"
static const char *const cors_request_headers[] = {"content-type", "range", NULL};
#define CORS_METHODS "GET, HEAD, PUT"

/* Replies with `headers` (may be NULL) and the request's CORS lines after them. */
static int reply_with(const blob_server *bs, const rd_msg *req, int status, const char *type,
                      const char *body, size_t len, const char *headers)
{
    char all[512];
    int n = snprintf(all, sizeof(all), "%s", headers ? headers : "");
    http_cors_lines(req, &bs->cors, CORS_EXPOSE, all + n, sizeof(all) - (size_t)n);
    return http_reply_headers(req, status, type, body, len, all);
}

static int xml_error(const blob_server *bs, const rd_msg *req, int status, const char *code,
                     const char *message)
{
    char body[512];
    int n = snprintf(body, sizeof(body),
                     "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>%s</Code>"
                     "<Message>%s</Message></Error>",
                     code, message);
    return reply_with(bs, req, status, "application/xml", body, (size_t)n, NULL);
}

/* A sigv4/blobfs_presigned_check result as S3 would say it. */
static int refuse(blob_server *bs, const rd_msg *req, int err)
{
    if (err == -EINVAL) {
        metrics_add(bs->m_bad, 1);
        return xml_error(bs, req, 400, "InvalidRequest",
                         "The URL is not /blob/{bucket}/{key} with a valid bucket, key and "
                         "presigned query.");
    }
    metrics_add(bs->m_denied, 1);
    switch (err) {
    case -EKEYEXPIRED:
        return xml_error(bs, req, 403, "AccessDenied", "Request has expired");
    case -EACCES:
        return xml_error(bs, req, 403, "SignatureDoesNotMatch",
                         "The request signature we calculated does not match the signature you "
                         "provided (method, path, host or query changed).");
    case -EAGAIN:
        return xml_error(bs, req, 403, "AccessDenied", "Request is not valid yet (X-Amz-Date).");
    case -EKEYREJECTED:
        return xml_error(bs, req, 403, "InvalidAccessKeyId",
                         "The access key, region or service in the credential is not ours.");
    default:
        return xml_error(bs, req, 403, "AccessDenied", sigv4_strerror(err));
    }
}

/* ---- verification ---- */

static int verify(blob_server *bs, const rd_msg *m, char *bucket, char *key)
{
    const rd_http_request *q = msg_body(m, http_request);
    static const char *const names[] = {"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH"};
    static const unsigned bits[] = {RD_HTTP_GET, RD_HTTP_HEAD,   RD_HTTP_POST,
                                    RD_HTTP_PUT, RD_HTTP_DELETE, RD_HTTP_PATCH};
    const char *method = "OPTIONS";
    for (size_t i = 0; i < 6; i++)
        if (q->method == bits[i])
            method = names[i];
    /* The headers as NUL-terminated pairs, for the ones the URL signed. */
    static __thread char scratch[HTTP1_MAX_HEADERS * 2 + 16384];
    sigv4_pair pairs[HTTP1_MAX_HEADERS];
    size_t np = 0, used = 0;
    const rd_http_field *f = (const rd_http_field *)(const void *)(q->raw->data + q->fields_off);
    http1_str host = http_request_header(q, "host");
    for (uint32_t i = 0; i < q->num_fields && np < HTTP1_MAX_HEADERS; i++) {
        size_t need = f[i].name_len + f[i].value_len + 2;
        if (used + need > sizeof(scratch))
            return -E2BIG;
        char *n = scratch + used;
        memcpy(n, q->raw->data + f[i].name_off, f[i].name_len);
        n[f[i].name_len] = '\0';
        char *v = n + f[i].name_len + 1;
        memcpy(v, q->raw->data + f[i].value_off, f[i].value_len);
        v[f[i].value_len] = '\0';
        used += need;
        pairs[np++] = (sigv4_pair){n, v};
    }
    http1_str path = http_request_path(q), query = http_request_query(q);
    sigv4_incoming in = {method,    strlen(method), path.p,   path.len, query.p,
                         query.len, host.p,         host.len, pairs,    np};
    if (host.p == NULL)
        return -EINVAL;
    return blobfs_presigned_check(&bs->sign.cache, &bs->sign.cred, (int64_t)time(NULL), &in, bucket,
                                  key);
}

/* ---- PUT ---- */

static upload *find_upload(blob_server *bs, uint64_t stream)
{
    for (int i = 0; i < MAX_UPLOADS; i++)
        if (bs->up[i].used && bs->up[i].stream == stream)
            return &bs->up[i];
    return NULL;
}

static void upload_end(upload *u)
{
    blobfs_write_abort(&u->w);
    msg_free(u->request);
    memset(u, 0, sizeof(*u));
    u->w.fd = -1;
}

static int put_done(blob_server *bs, upload *u)
{
    blob_info info;
    int r = blobfs_write_commit(&u->w, &info);
    if (r == -ENOTDIR || r == -EISDIR) {
        /* "a/b" where "a" is an object, or the other way round: the name is the client's
         * (S3 itself would take both; a file system cannot). */
        xml_error(bs, u->request, 409, "KeyConflict",
                  "The key clashes with an existing key that is a prefix of it (or has it as "
                  "one); choose another key.");
    } else if (r < 0) {
        log_error("blob_put_failed", KV_STR("bucket", u->w.bucket), KV_ERRNO(r));
        xml_error(bs, u->request, 500, "InternalError", "The object could not be stored.");
    } else {
        char hdr[128];
        snprintf(hdr, sizeof(hdr), "ETag: %s\r\n", info.etag);
        reply_with(bs, u->request, 200, NULL, "", 0, hdr);
        metrics_add(bs->m_put_bytes, u->got);
    }
    upload_end(u);
    return 0;
}

/* A free upload slot, or NULL with the reason (503 SlowDown) already answered. */
static upload *slot_for(blob_server *bs, const rd_msg *m, const char *org, const char *peer)
{
    upload *u = NULL;
    int same_org = 0, same_client = 0;
    for (int i = 0; i < MAX_UPLOADS; i++) {
        const upload *x = &bs->up[i];
        if (!x->used) {
            if (u == NULL)
                u = &bs->up[i];
            continue;
        }
        same_org += strcmp(x->org, org) == 0;
        same_client += strcmp(x->peer, peer) == 0;
    }
    const char *why = NULL;
    if (u == NULL)
        why = "Too many uploads at once; try again shortly.";
    else if (same_org >= bs->slots_per_org)
        why = "Too many uploads in progress for this org (REELD_UPLOAD_SLOTS_PER_ORG); try again "
              "when one has finished.";
    else if (same_client >= bs->slots_per_client)
        why = "Too many uploads in progress from this address (REELD_UPLOAD_SLOTS_PER_CLIENT); "
              "try again when one has finished.";
    if (why == NULL)
        return u;
    log_info("blob_put_busy", KV_STR("org", org), KV_STR("peer", peer),
             KV_INT("org_uploads", same_org), KV_INT("client_uploads", same_client));
    xml_error(bs, m, 503, "SlowDown", why);
    return NULL;
}

static void put_begin(blob_server *bs, rd_msg *m, const char *bucket, const char *key)
{
    const rd_http_request *q = msg_body(m, http_request);
    http1_str ct = http_request_header(q, "content-type");
    char type[128] = "";
    if (ct.p != NULL) {
        if (ct.len >= sizeof(type)) {
            xml_error(bs, m, 400, "InvalidArgument", "The Content-Type is longer than 127 bytes.");
            msg_free(m);
            return;
        }
        memcpy(type, ct.p, ct.len);
        type[ct.len] = '\0';
    }
    if (q->body_stream && q->content_length > bs->max_upload) {
        xml_error(bs, m, 413, "EntityTooLarge",
                  "The upload is larger than REELD_MAX_UPLOAD_BYTES.");
        msg_free(m);
        return;
    }
    char org[sizeof(((upload *)0)->org)];
    /* Signed with the URL, so it is what the API wrote; kept as sent (still encoded). */
    http1_str ov = http1_query_param(http_request_query(q), ORG_PARAM);
    snprintf(org, sizeof(org), "%.*s", ov.len < sizeof(org) ? (int)ov.len : 0, ov.p ? ov.p : "");
    upload *u = slot_for(bs, m, org, q->peer);
    if (u == NULL) {
        msg_free(m);
        return;
    }
    int r = blobfs_write_begin(bs->fs, bucket, key, type[0] ? type : NULL, &u->w);
    if (r < 0) {
        if (r == -EINVAL)
            xml_error(bs, m, 400, "InvalidArgument", "The bucket, key or Content-Type is refused.");
        else
            xml_error(bs, m, 500, "InternalError", "The object could not be created.");
        msg_free(m);
        u->w.fd = -1;
        return;
    }
    u->used = 1;
    memcpy(u->org, org, sizeof(u->org));
    snprintf(u->peer, sizeof(u->peer), "%s", q->peer);
    u->stream = q->stream;
    u->request = m;
    u->listener = m->from;
    u->expect = q->body_stream ? q->content_length : 0;
    u->got = 0;
    if (!q->body_stream)
        put_done(bs, u); /* an empty object */
}

static void put_body(blob_server *bs, rd_msg *m)
{
    struct rd_msg_http_body *b = msg_body(m, http_body);
    upload *u = find_upload(bs, b->stream);
    if (u == NULL)
        return; /* already answered */
    if (b->failed) {
        log_info("blob_put_incomplete", KV_STR("bucket", u->w.bucket),
                 KV_INT("got", (int64_t)u->got), KV_INT("expected", (int64_t)u->expect));
        xml_error(bs, u->request, 400, "IncompleteBody",
                  "The body ended before its Content-Length; nothing was stored.");
        upload_end(u);
        return;
    }
    size_t len = b->data ? b->data->len : 0;
    int r = len ? blobfs_write(&u->w, b->data->data, len) : 0;
    if (r < 0) {
        log_error("blob_put_failed", KV_STR("bucket", u->w.bucket), KV_ERRNO(r));
        xml_error(bs, u->request, r == -ENOSPC ? 507 : 500, "InternalError",
                  "The object could not be written.");
        upload_end(u);
        return;
    }
    u->got += len;
    http_body_ack(u->listener, u->stream, len);
    if (b->last)
        put_done(bs, u);
}

/* ---- GET / HEAD ---- */

static download *find_download(blob_server *bs, uint64_t stream)
{
    for (int i = 0; i < MAX_DOWNLOADS; i++)
        if (bs->down[i].used && bs->down[i].stream == stream)
            return &bs->down[i];
    return NULL;
}

static void download_end(download *d)
{
    if (d->fd >= 0)
        close(d->fd);
    memset(d, 0, sizeof(*d));
    d->fd = -1;
}

/* Sends parts while fewer than GET_PARTS are in flight; ends the download after the last. */
static void get_pump(blob_server *bs, download *d)
{
    while (d->inflight < GET_PARTS && d->used) {
        uint64_t left = d->end - d->off;
        size_t k = left < GET_CHUNK ? (size_t)left : GET_CHUNK;
        rd_buf *b = buf_new(k ? k : 1);
        ssize_t got = k ? pread(d->fd, b->data, k, (off_t)d->off) : 0;
        if (got < 0 || (size_t)got != k) {
            /* The file shrank or failed under us: the client sees a short body. */
            buf_unref(b);
            http_send_part(d->listener, d->stream, NULL, 1, NULL);
            download_end(d);
            return;
        }
        b->len = k;
        d->off += k;
        int last = d->off == d->end;
        if (http_send_part(d->listener, d->stream, b, last, last ? NULL : bs->self) < 0 || last) {
            metrics_add(bs->m_get_bytes, d->off);
            download_end(d);
            return;
        }
        d->inflight++;
    }
}

/* The Range header against `size` (proto/http_cond.h, the edge's parser too): 1 and
 * [*start, *end) when satisfiable, 0 for no usable Range (serve it whole), -1 when
 * unsatisfiable (416). */
static int parse_range(http1_str h, uint64_t size, uint64_t *start, uint64_t *end)
{
    uint64_t last = 0;
    int r = httpcond_range(h.p, h.len, size, start, &last);
    if (r == HTTPCOND_PARTIAL)
        *end = last + 1;
    return r;
}

static void get_begin(blob_server *bs, const rd_msg *m, const char *bucket, const char *key)
{
    const rd_http_request *q = msg_body(m, http_request);
    blob_info info;
    int fd = blobfs_open_read(bs->fs, bucket, key, &info);
    if (fd < 0) {
        if (fd == -ENOENT || fd == -ENOTDIR || fd == -EISDIR)
            xml_error(bs, m, 404, "NoSuchKey", "The specified key does not exist.");
        else
            xml_error(bs, m, 500, "InternalError", "The object could not be read.");
        return;
    }
    uint64_t size = (uint64_t)info.size, start = 0, end = size;
    int ranged = parse_range(http_request_header(q, "range"), size, &start, &end);
    if (ranged < 0) {
        close(fd);
        xml_error(bs, m, 416, "InvalidRange", "The requested range is not satisfiable.");
        return;
    }
    char hdr[512];
    int n = snprintf(hdr, sizeof(hdr), "ETag: %s\r\nAccept-Ranges: bytes\r\n", info.etag);
    if (ranged > 0)
        n += snprintf(hdr + n, sizeof(hdr) - (size_t)n, "Content-Range: bytes %llu-%llu/%llu\r\n",
                      (unsigned long long)start, (unsigned long long)end - 1,
                      (unsigned long long)size);
    http_cors_lines(m, &bs->cors, CORS_EXPOSE, hdr + n, sizeof(hdr) - (size_t)n);
    rd_actor *listener = m->from;
    uint64_t stream = q->stream;
    download *d = NULL;
    for (int i = 0; q->method != RD_HTTP_HEAD && d == NULL && i < MAX_DOWNLOADS; i++)
        if (!bs->down[i].used)
            d = &bs->down[i];
    if (q->method != RD_HTTP_HEAD && d == NULL) {
        close(fd);
        xml_error(bs, m, 503, "SlowDown", "Too many downloads at once; try again shortly.");
        return;
    }
    if (http_reply_stream(m, ranged > 0 ? 206 : 200, info.content_type, (int64_t)(end - start),
                          hdr) < 0 ||
        q->method == RD_HTTP_HEAD || end == start) {
        close(fd);
        http_send_part(listener, stream, NULL, 1, NULL);
        return;
    }
    d->used = 1;
    d->stream = stream;
    d->listener = listener;
    d->fd = fd;
    d->off = start;
    d->end = end;
    d->inflight = 0;
    get_pump(bs, d);
}

static void part_acked(blob_server *bs, const struct rd_msg_http_part_ack *a)
{
    download *d = find_download(bs, a->stream);
    if (d == NULL)
        return;
    if (a->failed) {
        download_end(d);
        return;
    }
    d->inflight--;
    get_pump(bs, d);
}

/* ---- the actor ---- */

static int blob_handle(rd_actor *self, rd_msg *m)
{
    blob_server *bs = self->state;
    if (m->type == MSG_HTTP_BODY) {
        put_body(bs, m);
        return RD_DONE;
    }
    if (m->type == MSG_HTTP_PART_ACK) {
        part_acked(bs, msg_body(m, http_part_ack));
        return RD_DONE;
    }
    if (m->type != MSG_HTTP_REQUEST)
        return RD_DONE;
    const rd_http_request *q = msg_body(m, http_request);
    if (q->method == RD_HTTP_OPTIONS) {
        /* Allowed origins may PUT (with Content-Type) and GET (with Range). Not signed
         * (browsers send no credentials in one), and it grants nothing: the request after it
         * still needs its signature. */
        http_reply_preflight(m, &bs->cors, CORS_METHODS, cors_request_headers);
        return RD_DONE;
    }
    char bucket[BLOBFS_MAX_BUCKET + 1], key[BLOBFS_MAX_KEY + 1];
    int r = verify(bs, m, bucket, key);
    if (r < 0) {
        refuse(bs, m, r);
        return RD_DONE;
    }
    if (q->method == RD_HTTP_PUT) {
        put_begin(bs, m, bucket, key);
        return RD_KEPT; /* kept by the upload, or freed */
    }
    if (q->method == RD_HTTP_GET || q->method == RD_HTTP_HEAD) {
        get_begin(bs, m, bucket, key);
        return RD_DONE;
    }
    metrics_add(bs->m_denied, 1);
    xml_error(bs, m, 403, "AccessDenied", "Only GET, HEAD and PUT are served here.");
    return RD_DONE;
}

static int blob_init(rd_actor *self, void *arg)
{
    blob_server *bs = arg;
    bs->self = self;
    self->state = bs;
    return 0;
}

static void blob_fini(rd_actor *self)
{
    blob_server *bs = self->state;
    if (bs == NULL)
        return;
    for (int i = 0; i < MAX_UPLOADS; i++)
        if (bs->up[i].used)
            upload_end(&bs->up[i]);
    for (int i = 0; i < MAX_DOWNLOADS; i++)
        if (bs->down[i].used)
            download_end(&bs->down[i]);
    urlsign_clear(&bs->sign);
    free(bs);
    self->state = NULL;
    self->arg = NULL;
}

static const rd_actor_def blob_server_def = {
    .name = "blob_server",
    .init = blob_init,
    .handle = blob_handle,
    .fini = blob_fini,
    .mailbox_bound = 65536, /* MAX_UPLOADS streams of RD_HTTP_BODY_WINDOW / CHUNK parts, etc. */
};

int blob_server_start(blobfs *fs, const rd_config *cfg, rd_http_routes *routes, rd_actor **out,
                      char *err, size_t errlen)
{
    blob_server *bs = calloc(1, sizeof(*bs));
    if (bs == NULL)
        return -ENOMEM;
    int r = urlsign_init(&bs->sign, cfg, err, errlen);
    if (r < 0) {
        free(bs);
        return r;
    }
    bs->fs = fs;
    bs->max_upload = (uint64_t)cfg->max_upload_bytes;
    bs->slots_per_org = cfg->upload_slots_per_org;
    r = cors_parse(&bs->cors, cfg->allowed_origins, "ALLOWED_ORIGINS", err, errlen);
    if (r < 0) {
        urlsign_clear(&bs->sign);
        free(bs);
        return r;
    }
    bs->slots_per_client = cfg->upload_slots_per_client;
    for (int i = 0; i < MAX_UPLOADS; i++)
        bs->up[i].w.fd = -1;
    for (int i = 0; i < MAX_DOWNLOADS; i++)
        bs->down[i].fd = -1;
    rd_metric *req =
        metrics_family("reeld_blob_refused_total", "Presigned /blob/ requests refused, by reason.",
                       RD_COUNTER, "reason", NULL, 0);
    const char *denied[] = {"signature"}, *bad[] = {"malformed"};
    bs->m_denied = metrics_series(req, denied);
    bs->m_bad = metrics_series(req, bad);
    rd_metric *bytes = metrics_family("reeld_blob_bytes_total",
                                      "Bytes stored by presigned PUTs and served by GETs.",
                                      RD_COUNTER, "direction", NULL, 0);
    const char *in[] = {"put"}, *outd[] = {"get"};
    bs->m_put_bytes = metrics_series(bytes, in);
    bs->m_get_bytes = metrics_series(bytes, outd);
    r = actor_spawn_thread(&blob_server_def, bs, -1, out);
    if (r < 0) {
        snprintf(err, errlen, "cannot start the blob server thread (%s)", strerror(-r));
        urlsign_clear(&bs->sign);
        free(bs);
        return r;
    }
    /* Every method is routed here: a URL used with another method than signed gets S3's 403,
     * not a 405 that would say which methods exist. */
    r = http_routes_add(routes, "/blob/{bucket}/{key...}",
                        RD_HTTP_GET | RD_HTTP_PUT | RD_HTTP_POST | RD_HTTP_DELETE | RD_HTTP_PATCH |
                            RD_HTTP_OPTIONS | RD_HTTP_STREAM_BODY,
                        out, 1, (size_t)cfg->max_upload_bytes, 24u * 3600 * 1000);
    if (r < 0) {
        snprintf(err, errlen, "cannot add the /blob/ route (%s)", strerror(-r));
        return r;
    }
    bs->route = r;
    return 0;
}
