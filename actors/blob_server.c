/* Presigned PUT/GET/HEAD of the embedded object store, on an event loop: every file-system
 * call through the asynchronous blob store (src/blob/aio.h, fs backend) on this loop's
 * io_uring.
 *
 * owns:  the uploads in progress (each a pipe whose read end the blob store's PUT reads as the
 *        body's bytes are written into it; keyed by the request's stream, which is unique in
 *        the process; each counted against its org's and its client address's share of the
 *        slots), the downloads in progress (the part being read), a SigV4 key cache and the
 *        credentials it verifies with (src/urlsign.h). The blob store is borrowed.
 * takes: MSG_HTTP_REQUEST (route /blob/{bucket}/{key...}); MSG_HTTP_BODY (a PUT's body);
 *        MSG_HTTP_PART_ACK (a GET's part has left).
 * sends: replies (MSG_HTTP_RESPONSE) to the listener; MSG_HTTP_BODY_ACK and MSG_HTTP_PART to
 *        the listener of the request. To the blob store on its loop: a PUT from the upload's
 *        pipe (the temp file, its MD5, fsync and rename are the store's), a HEAD and ranged
 *        GETs for a download.
 * never: blocks its loop (the body goes into the pipe with io_uring writes; a body byte is
 *        acknowledged to the listener once the pipe took it, so a slow disk slows the client,
 *        not the loop); writes a byte before the signature, the names and the size have been
 *        checked; keeps a failed upload's temp file (the store stores nothing short of the
 *        length); logs a signature or a secret. */
#include "actors/blob_server.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "proto/cors.h"
#include "proto/http_cond.h"
#include "src/rt/alloc.h"
#include "src/rt/log.h"
#include "src/rt/metrics.h"
#include "src/urlsign.h"

#define MAX_UPLOADS                                                                                \
    256 /* at once; more: 503 SlowDown (and at most cfg's share per org and                        \
         * per client address, so one tenant cannot take them all) */
#define ORG_PARAM     "reeld-org" /* the signed query parameter that names the uploader's org */
#define MAX_DOWNLOADS 256
/* One ranged GET of the blob store: its chunks (256 KiB) go on as parts as they come. A range
 * starts while fewer than GET_PARTS parts are unacknowledged, so a slow client holds at most
 * GET_PARTS - 1 + 2 parts (768 KiB). */
#define GET_RANGE (512 * 1024)
#define GET_PARTS 2
/* An upload's pipe: what the store reads at once. Linux gives each user 64 MiB of pipes
 * (pipe-user-pages-soft): 256 uploads of 256 KiB fit; past it a pipe keeps its default size,
 * which only costs more reads. */
#define PIPE_SIZE (256 * 1024)
#define BODY_QUEUE                                                                                 \
    16 /* body chunks waiting for the pipe (the listener sends at most                             \
        * RD_HTTP_BODY_WINDOW unacknowledged: 4 chunks) */

typedef struct blob_server blob_server;

typedef struct upload {
    blob_sink sink; /* the blob store's PUT from the pipe */
    rd_op wop;      /* the pipe write in flight */
    blob_server *bs;
    int used;
    uint64_t stream;
    rd_msg *request; /* kept for the reply */
    rd_actor *listener;
    int rd, wr; /* the pipe: the store reads rd; the body is written into wr */
    int putting, writing, replied;
    rd_buf *queue[BODY_QUEUE]; /* body chunks not yet written (references held) */
    int qhead, qlen;
    size_t qoff; /* bytes of queue[qhead] written */
    uint64_t expect, got;
    blob_meta meta;
    char bucket[64];
    char org[72];  /* ORG_PARAM as in the URL (still percent-encoded); "" when absent */
    char peer[48]; /* the client's address */
} upload;

typedef struct download {
    blob_sink sink; /* the HEAD's, then each part's GET */
    blob_server *bs;
    int used;
    uint64_t stream;
    rd_msg *request; /* until the head of the answer has gone */
    rd_actor *listener;
    blob_req *get;      /* the range being read, or NULL */
    int changed;        /* a range's object is not the one the answer began with */
    uint64_t off, end;  /* next byte to send, one past the last */
    uint64_t range_end; /* one past the last byte of the range being read */
    uint64_t start;     /* the answer's first byte */
    blob_meta meta;     /* the HEAD's */
    int inflight;       /* parts sent, not acknowledged */
    char bucket[64];
    char key[BLOBFS_MAX_KEY + 1];
} download;

struct blob_server {
    rd_actor *self;
    blob_aio *store;
    urlsign sign;
    uint64_t max_upload;
    int slots_per_org, slots_per_client;
    cors_policy cors; /* ALLOWED_ORIGINS: browsers on these origins PUT and GET here */
    int route;
    upload up[MAX_UPLOADS];
    download down[MAX_DOWNLOADS];
    rd_series *m_denied, *m_bad, *m_put_bytes, *m_get_bytes;
};

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

static void close_wr(upload *u)
{
    if (u->wr >= 0)
        close(u->wr);
    u->wr = -1;
}

/* The slot goes back once the store's PUT and the pipe's write are both over. */
static void upload_maybe_free(upload *u)
{
    if (u->putting || u->writing)
        return;
    close_wr(u);
    if (u->rd >= 0)
        close(u->rd);
    for (int i = 0; i < u->qlen; i++)
        buf_unref(u->queue[(u->qhead + i) % BODY_QUEUE]);
    msg_free(u->request);
    memset(u, 0, sizeof(*u));
    u->rd = u->wr = -1;
}

/* Ends the upload early: answered (once), the pipe's writing end closed so the store's PUT
 * sees the body end short and stores nothing. */
static void upload_fail(upload *u, int status, const char *code, const char *message)
{
    if (!u->replied)
        xml_error(u->bs, u->request, status, code, message);
    u->replied = 1;
    /* The chunk of a write in flight stays referenced until it ends (the kernel still copies
     * from it); the rest go now. */
    int keep = u->writing && u->qlen > 0;
    for (int i = keep; i < u->qlen; i++)
        buf_unref(u->queue[(u->qhead + i) % BODY_QUEUE]);
    u->qlen = keep;
    if (!u->writing)
        close_wr(u);
    upload_maybe_free(u);
}

static void write_next(upload *u);

static void pipe_written(rd_op *op, int res, uint32_t flags)
{
    (void)flags;
    upload *u = (upload *)(void *)((char *)op - offsetof(upload, wop));
    u->writing = 0;
    if (u->replied) { /* failed meanwhile: what was queued is dropped, this chunk too */
        if (u->qlen > 0)
            buf_unref(u->queue[u->qhead]);
        u->qlen = 0;
        close_wr(u);
        upload_maybe_free(u);
        return;
    }
    if (res <= 0) { /* the store stopped reading: its PUT's end says why */
        log_error("blob_put_failed", KV_STR("bucket", u->bucket), KV_ERRNO(res < 0 ? res : -EIO));
        upload_fail(u, 500, "InternalError", "The object could not be written.");
        return;
    }
    rd_buf *b = u->queue[u->qhead];
    u->qoff += (size_t)res;
    if (u->qoff == b->len) { /* the chunk is in the pipe: the listener may send more */
        http_body_ack(u->listener, u->stream, b->len);
        buf_unref(b);
        u->qhead = (u->qhead + 1) % BODY_QUEUE;
        u->qlen--;
        u->qoff = 0;
    }
    write_next(u);
}

/* The next queued chunk into the pipe (one write at a time: the bytes keep their order). Once
 * every byte of the body is in, the writing end closes. */
static void write_next(upload *u)
{
    if (u->writing)
        return;
    if (u->qlen == 0) {
        if (u->got == u->expect)
            close_wr(u);
        return;
    }
    rd_buf *b = u->queue[u->qhead];
    u->wop.done = pipe_written;
    io_uring_prep_write(loop_sqe(u->bs->self->loop, &u->wop), u->wr, b->data + u->qoff,
                        (unsigned)(b->len - u->qoff), (uint64_t)-1);
    u->writing = 1;
}

static void put_head(blob_sink *s, const blob_meta *m)
{
    ((upload *)(void *)s)->meta = *m;
}

/* The store's PUT is over: stored (the answer carries its ETag), or why not. */
static void put_stored(blob_sink *s, int err, const char *why)
{
    upload *u = (upload *)(void *)s;
    u->putting = 0;
    /* Nobody reads the pipe any more: a write waiting for room ends now (-EPIPE: SIGPIPE is
     * ignored) instead of holding the slot for good. */
    if (u->rd >= 0)
        close(u->rd);
    u->rd = -1;
    if (u->replied) {
        /* answered already (the body failed): the store stored nothing */
    } else if (err == -ENOTDIR || err == -EISDIR || err == -EEXIST) {
        /* "a/b" where "a" is an object, or the other way round: the name is the client's
         * (S3 itself would take both; a file system cannot). */
        upload_fail(u, 409, "KeyConflict",
                    "The key clashes with an existing key that is a prefix of it (or has it as "
                    "one); choose another key.");
        return;
    } else if (err < 0) {
        log_error("blob_put_failed", KV_STR("bucket", u->bucket), KV_ERRNO(err),
                  KV_STR("why", why != NULL ? why : ""));
        upload_fail(u, err == -ENOSPC ? 507 : 500, "InternalError",
                    "The object could not be stored.");
        return;
    } else {
        char hdr[128];
        snprintf(hdr, sizeof(hdr), "ETag: %s\r\n", u->meta.etag);
        reply_with(u->bs, u->request, 200, NULL, "", 0, hdr);
        metrics_add(u->bs->m_put_bytes, u->got);
        u->replied = 1;
    }
    upload_maybe_free(u);
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

/* RD_KEPT when the upload keeps `m`, RD_DONE once answered. */
static int put_begin(blob_server *bs, rd_msg *m, const char *bucket, const char *key)
{
    const rd_http_request *q = msg_body(m, http_request);
    http1_str ct = http_request_header(q, "content-type");
    char type[128] = "";
    if (ct.p != NULL) {
        if (ct.len >= sizeof(type)) {
            xml_error(bs, m, 400, "InvalidArgument", "The Content-Type is longer than 127 bytes.");
            return RD_DONE;
        }
        memcpy(type, ct.p, ct.len);
        type[ct.len] = '\0';
    }
    if (q->body_stream && q->content_length > bs->max_upload) {
        xml_error(bs, m, 413, "EntityTooLarge",
                  "The upload is larger than REELD_MAX_UPLOAD_BYTES.");
        return RD_DONE;
    }
    char org[sizeof(((upload *)0)->org)];
    /* Signed with the URL, so it is what the API wrote; kept as sent (still encoded). */
    http1_str ov = http1_query_param(http_request_query(q), ORG_PARAM);
    snprintf(org, sizeof(org), "%.*s", ov.len < sizeof(org) ? (int)ov.len : 0, ov.p ? ov.p : "");
    upload *u = slot_for(bs, m, org, q->peer);
    if (u == NULL)
        return RD_DONE;
    int p[2] = {-1, -1};
    if (q->body_stream && pipe2(p, O_CLOEXEC) < 0) {
        log_error("blob_put_failed", KV_STR("bucket", bucket), KV_ERRNO(-errno));
        xml_error(bs, m, 503, "SlowDown", "No descriptor for the upload; try again shortly.");
        return RD_DONE;
    }
    if (p[1] >= 0)
        (void)fcntl(p[1], F_SETPIPE_SZ, PIPE_SIZE); /* refused: 64 KiB, more reads */
    u->bs = bs;
    u->rd = p[0];
    u->wr = p[1];
    u->sink = (blob_sink){.head = put_head, .done = put_stored};
    u->expect = q->body_stream ? q->content_length : 0;
    int r = q->body_stream ? blob_aio_put_fd(bs->store, bs->self->loop, bucket, key, u->rd,
                                             u->expect, type[0] ? type : NULL, &u->sink, NULL)
                           : blob_aio_put(bs->store, bs->self->loop, bucket, key, "", 0,
                                          type[0] ? type : NULL, NULL, &u->sink, NULL);
    if (r < 0) {
        if (r == -EINVAL)
            xml_error(bs, m, 400, "InvalidArgument", "The bucket, key or Content-Type is refused.");
        else
            xml_error(bs, m, 500, "InternalError", "The object could not be created.");
        if (p[0] >= 0) {
            close(p[0]);
            close(p[1]);
        }
        memset(u, 0, sizeof(*u));
        u->rd = u->wr = -1;
        return RD_DONE;
    }
    u->used = 1;
    u->putting = 1;
    memcpy(u->org, org, sizeof(u->org));
    snprintf(u->peer, sizeof(u->peer), "%s", q->peer);
    snprintf(u->bucket, sizeof(u->bucket), "%s", bucket);
    u->stream = q->stream;
    u->request = m;
    u->listener = m->from;
    return RD_KEPT;
}

static void put_body(blob_server *bs, rd_msg *m)
{
    struct rd_msg_http_body *b = msg_body(m, http_body);
    upload *u = find_upload(bs, b->stream);
    if (u == NULL || u->replied)
        return; /* already answered */
    if (b->failed) {
        log_info("blob_put_incomplete", KV_STR("bucket", u->bucket), KV_INT("got", (int64_t)u->got),
                 KV_INT("expected", (int64_t)u->expect));
        upload_fail(u, 400, "IncompleteBody",
                    "The body ended before its Content-Length; nothing was stored.");
        return;
    }
    size_t len = b->data ? b->data->len : 0;
    if (len > 0) {
        if (u->qlen == BODY_QUEUE) { /* the listener sent past its window */
            upload_fail(u, 500, "InternalError", "The body came faster than it was taken.");
            return;
        }
        u->queue[(u->qhead + u->qlen++) % BODY_QUEUE] = buf_ref(b->data);
        u->got += len;
    }
    write_next(u);
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
    if (d->get != NULL)
        blob_aio_cancel(d->get); /* no callback follows */
    msg_free(d->request);
    memset(d, 0, sizeof(*d));
}

static void get_pump(download *d);

static void part_head(blob_sink *s, const blob_meta *m)
{
    download *d = (download *)(void *)s;
    /* Not the version the answer began with (its HEAD): another file, size or time. */
    d->changed |=
        m->size != d->meta.size || m->mtime != d->meta.mtime || m->file_id != d->meta.file_id;
}

/* Ends the body short (the object changed or failed under us: the client sees fewer bytes than
 * announced) and the download. */
static void get_cut(download *d)
{
    http_send_part(d->listener, d->stream, NULL, 1, NULL);
    download_end(d);
}

/* A chunk of the range: sent on as a part (no copy), the last one ending the body. */
static void part_data(blob_sink *s, rd_buf *chunk)
{
    download *d = (download *)(void *)s;
    if (d->changed || chunk->len > d->range_end - d->off) {
        buf_unref(chunk);
        get_cut(d); /* cancels the range: no callback follows */
        return;
    }
    d->off += chunk->len;
    int last = d->off == d->end;
    if (http_send_part(d->listener, d->stream, chunk, last, last ? NULL : d->bs->self) < 0) {
        get_cut(d);
        return;
    }
    if (last) {
        metrics_add(d->bs->m_get_bytes, d->end - d->start);
        download_end(d); /* cancels the range's end: nothing is left of it */
        return;
    }
    d->inflight++;
}

/* A range is read: the next, or (it failed, came short) the body ends short. */
static void part_read(blob_sink *s, int err, const char *why)
{
    (void)why;
    download *d = (download *)(void *)s;
    d->get = NULL;
    if (err < 0 || d->off != d->range_end) {
        get_cut(d);
        return;
    }
    get_pump(d);
}

/* The next range's read while fewer than GET_PARTS parts are unacknowledged (one read at a
 * time: the parts keep their order). */
static void get_pump(download *d)
{
    if (d->get != NULL || d->inflight >= GET_PARTS || d->off >= d->end)
        return;
    uint64_t k = d->end - d->off < GET_RANGE ? d->end - d->off : GET_RANGE;
    d->range_end = d->off + k;
    d->sink = (blob_sink){.head = part_head, .data = part_data, .done = part_read};
    int r = blob_aio_get(d->bs->store, d->bs->self->loop, d->bucket, d->key, d->off, k, &d->sink,
                         &d->get);
    if (r < 0) {
        d->get = NULL;
        get_cut(d);
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

static void get_head(blob_sink *s, const blob_meta *m)
{
    ((download *)(void *)s)->meta = *m;
}

/* The object's HEAD is back: the answer's head, then its parts. */
static void get_headed(blob_sink *s, int err, const char *why)
{
    (void)why;
    download *d = (download *)(void *)s;
    blob_server *bs = d->bs;
    const rd_msg *m = d->request;
    const rd_http_request *q = msg_body(m, http_request);
    d->get = NULL;
    if (err < 0) {
        if (err == -ENOENT || err == -ENOTDIR || err == -EISDIR)
            xml_error(bs, m, 404, "NoSuchKey", "The specified key does not exist.");
        else
            xml_error(bs, m, 500, "InternalError", "The object could not be read.");
        download_end(d);
        return;
    }
    uint64_t size = d->meta.size, start = 0, end = size;
    int ranged = parse_range(http_request_header(q, "range"), size, &start, &end);
    if (ranged < 0) {
        xml_error(bs, m, 416, "InvalidRange", "The requested range is not satisfiable.");
        download_end(d);
        return;
    }
    char hdr[512];
    int n = snprintf(hdr, sizeof(hdr), "ETag: %s\r\nAccept-Ranges: bytes\r\n", d->meta.etag);
    if (ranged > 0)
        n += snprintf(hdr + n, sizeof(hdr) - (size_t)n, "Content-Range: bytes %llu-%llu/%llu\r\n",
                      (unsigned long long)start, (unsigned long long)end - 1,
                      (unsigned long long)size);
    http_cors_lines(m, &bs->cors, CORS_EXPOSE, hdr + n, sizeof(hdr) - (size_t)n);
    const char *type = d->meta.content_type[0] ? d->meta.content_type : "application/octet-stream";
    if (http_reply_stream(m, ranged > 0 ? 206 : 200, type, (int64_t)(end - start), hdr) < 0 ||
        q->method == RD_HTTP_HEAD || end == start) {
        http_send_part(d->listener, d->stream, NULL, 1, NULL);
        download_end(d);
        return;
    }
    msg_free(d->request); /* the answer's head has gone */
    d->request = NULL;
    d->start = start;
    d->off = start;
    d->end = end;
    get_pump(d);
}

/* RD_KEPT when the download keeps `m` (until its HEAD is back), RD_DONE once answered. */
static int get_begin(blob_server *bs, rd_msg *m, const char *bucket, const char *key)
{
    const rd_http_request *q = msg_body(m, http_request);
    download *d = NULL;
    for (int i = 0; d == NULL && i < MAX_DOWNLOADS; i++)
        if (!bs->down[i].used)
            d = &bs->down[i];
    if (d == NULL) {
        xml_error(bs, m, 503, "SlowDown", "Too many downloads at once; try again shortly.");
        return RD_DONE;
    }
    d->used = 1;
    d->bs = bs;
    d->stream = q->stream;
    d->listener = m->from;
    d->request = m;
    snprintf(d->bucket, sizeof(d->bucket), "%s", bucket);
    snprintf(d->key, sizeof(d->key), "%s", key);
    d->sink = (blob_sink){.head = get_head, .done = get_headed};
    int r = blob_aio_head(bs->store, bs->self->loop, bucket, key, &d->sink, &d->get);
    if (r < 0) {
        d->get = NULL;
        get_headed(&d->sink, r == -EINVAL ? -ENOENT : r, "the HEAD could not start");
    }
    return RD_KEPT;
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
    get_pump(d);
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
    if (q->method == RD_HTTP_PUT)
        return put_begin(bs, m, bucket, key);
    if (q->method == RD_HTTP_GET || q->method == RD_HTTP_HEAD)
        return get_begin(bs, m, bucket, key);
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

static const rd_actor_def blob_server_def = {
    .name = "blob_server",
    .init = blob_init,
    .handle = blob_handle,
    .mailbox_bound = 65536, /* MAX_UPLOADS streams of RD_HTTP_BODY_WINDOW / CHUNK parts, etc. */
};

void blob_server_free(blob_server *bs)
{
    if (bs == NULL)
        return;
    for (int i = 0; i < MAX_UPLOADS; i++) {
        upload *u = &bs->up[i];
        if (!u->used)
            continue;
        u->putting = u->writing = 0; /* the loop has stopped: nothing will come back */
        upload_maybe_free(u);
    }
    for (int i = 0; i < MAX_DOWNLOADS; i++) {
        msg_free(bs->down[i].request);
    }
    urlsign_clear(&bs->sign);
    free(bs);
}

int blob_server_start(blob_aio *store, rd_loop *loop, const rd_config *cfg, rd_http_routes *routes,
                      blob_server **out, char *err, size_t errlen)
{
    *out = NULL;
    blob_server *bs = rd_calloc(1, sizeof(*bs), "the blob server");
    int r = urlsign_init(&bs->sign, cfg, err, errlen);
    if (r < 0) {
        free(bs);
        return r;
    }
    bs->store = store;
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
        bs->up[i].rd = bs->up[i].wr = -1;
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
    rd_actor *actor;
    r = actor_spawn(loop, &blob_server_def, bs, &actor);
    if (r < 0) {
        snprintf(err, errlen, "cannot start the blob server (%s)", strerror(-r));
        urlsign_clear(&bs->sign);
        free(bs);
        return r;
    }
    *out = bs;
    /* Every method is routed here: a URL used with another method than signed gets S3's 403,
     * not a 405 that would say which methods exist. */
    r = http_routes_add(routes, "/blob/{bucket}/{key...}",
                        RD_HTTP_GET | RD_HTTP_PUT | RD_HTTP_POST | RD_HTTP_DELETE | RD_HTTP_PATCH |
                            RD_HTTP_OPTIONS | RD_HTTP_STREAM_BODY,
                        &actor, 1, (size_t)cfg->max_upload_bytes, 24u * 3600 * 1000);
    if (r < 0) {
        snprintf(err, errlen, "cannot add the /blob/ route (%s)", strerror(-r));
        return r;
    }
    bs->route = r;
    return 0;
}
