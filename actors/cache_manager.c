/* The cache-manager: the edge's actor, one per loop.
 *
 * owns:  one shard of the cache: the index (src/edge/cache_index.h) of the objects whose key
 *        hashes to it, their files under CACHE_DIR, the origin fetches (flights) of those
 *        objects, and the streamed responses (jobs) it is producing.
 * owns (fs origin): an inotify instance, and the playlists read on this loop whose files it
 *        watches, kept in memory while unchanged (see "playlists kept while unchanged").
 * owns (also): a bounded set of deleted assets whose links it refuses (404), a cache of what
 *        the store says: entries expire when the links they refuse would have.
 * owns (per edge, shared by its shards): the edge (rd_edge, made by cache_start, freed by
 *        cache_free): settings, signing keys, CORS policy, the blob store of the previews bucket
 *        (src/blob/aio.h) and its origins, metric series and the shards;
 *        read-only once the loops serve. Each shard points to its edge, and everything reaches it
 *        through the shard, flight or job at hand: the file keeps no mutable state of its own,
 *        so edges started side by side in one process share nothing.
 * takes: MSG_HTTP_REQUEST for /hls/… (from its loop's listener, or forwarded by another
 *        cache-manager: a miss of an object this shard owns);
 *        MSG_CACHE_TOUCH (hits served elsewhere);
 *        MSG_EDGE_DELETED (deletions shard 0 learnt from the store).
 * sends (also): shard 0, every second: MSG_STORE STORE_ASSET_DELETED to the dispatcher (the
 *        deletions since its last look; at start, those of the last EDGE_LINK_TTL_SEC), and
 *        MSG_EDGE_DELETED with what it learnt to the other shards.
 * sends: MSG_HTTP_RESPONSE (actor_reply) and MSG_HTTP_PART to the request's listener (a hit's
 *        body is one file part: the listener splices the cached file to the socket);
 *        MSG_HTTP_REQUEST (forwarded) and MSG_CACHE_TOUCH to the owning cache-manager.
 * never: signs a link (only the API does, for an asset of the caller's org: actors/api.c);
 *        blocks its loop: every open, read, write, rename and eviction goes through io_uring
 *        (the direct calls are metadata of files it holds open: fstat, futimens, close, and
 *        the unlink of a temporary file it gives up on; its inotify instance's non-blocking
 *        reads and watch removals); fetches an object twice at once (a playlist on the fs
 *        origin: once per loop); puts a playlist or a failed fetch on disk; answers a playlist
 *        request from a read its watch has since heard change.
 *
 * Sharding: object {asset}/{path} has key K = SHA-256 prefix, file CACHE_DIR/xx/K (xx: its
 * first byte in hex), owner shard K % loops. A request is served where it lands: the loop
 * opens the file; if it is there, that is a hit (served here; the owner hears of it in a
 * batched MSG_CACHE_TOUCH so its LRU stays right). If not, the request is forwarded to the
 * owner, which joins it to the object's flight or starts one: one origin GET per object,
 * whatever the number of clients or loops asking. Playlists go to the owner on an S3 origin;
 * on the fs origin the loop where one lands reads and keeps it itself (fresh because the loop
 * reads its watch's events after the request came, before it answers). The files themselves are the
 * shared index for hits: they appear by rename once complete, and an eviction's unlink does not
 * disturb a reader that has the file open.
 *
 * Flow control: a hit holds no memory here (its bytes go from the page cache to the socket
 * in the kernel). A miss streams to its listener without acknowledgements (an ack names only
 * its stream, and streams of two listeners may collide): such a client can hold at most one
 * object in memory. */
#include "actors/cache_manager.h"

#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "proto/fnv.h"
#include "proto/wbuf.h"
#include "proto/cors.h"
#include "proto/disposition.h"
#include "proto/edge_token.h"
#include "proto/hls.h"
#include "proto/hmac.h"
#include "proto/http_cond.h"
#include "proto/jwt.h"
#include "proto/thumb.h"
#include "src/rt/alloc.h"
#include "src/edge/cache_index.h"
#include "src/edge/edgekey.h"
#include "src/edge/origin.h"
#include "src/edge/origin_thumb.h"
#include "src/edge/watch_refs.h"
#include "src/rt/log.h"
#include "src/rt/metrics.h"
#include "src/store/store.h"

#define TOUCH_BATCH    256  /* keys per MSG_CACHE_TOUCH */
#define TOUCH_DELAY_MS 50   /* a batch leaves at most this long after its first hit */
#define MAX_WAITERS    4096 /* clients waiting on one flight; more get 503 */
#define MAX_SHARDS     1024
#define DIR_MAX        400 /* bytes of CACHE_DIR, so file names fit FILE_MAX */
#define FILE_MAX       512
#define DENY_MAX       8192 /* deleted assets one shard refuses at once; more: the oldest go */
#define DENY_POLL_MS   1000 /* how often shard 0 asks the store for deletions */
#define DENY_OVERLAP   2000 /* each look goes back this far (ms): commits land late */
#define STORE_WAIT_MS  5000
#define KEPT_MAX       1024       /* playlists one shard keeps while unchanged ... */
#define KEPT_BYTES     (4u << 20) /* ... and their bytes, all together ... */
#define KEPT_ONE_MAX   (1u << 20) /* ... and one's; larger ones are read for each turn */
#define KEPT_BUCKETS   256        /* the kept ones by key: chains */

static const char CC_SEGMENT[] = "public, max-age=31536000, immutable"; /* 200, 206, 304 */
static const char CC_PLAYLIST[] = "no-cache";
static const char CC_ERROR[] = "no-store"; /* 4xx, 5xx: no cache keeps one for the object */

typedef struct shard shard;
typedef struct flight flight;
typedef struct job job;

/* One response being produced: a hit read from a cached file, or a waiter on a flight. */
struct job {
    shard *sh;
    rd_msg *req;
    rd_actor *listener;
    uint64_t stream;
    cache_key key;
    uint8_t playlist, head_only, replied;
    uint8_t kept_hit;     /* a playlist answered from a read that ended before it came */
    const char *ctype;    /* the path's Content-Type, looked up while the path is at hand */
    uint64_t cursor, end; /* bytes [cursor, end) still to send */
    int fd;               /* hit: the open cached file, until the listener takes it */
    rd_op op;             /* hit: the open in flight */
    job *fnext;           /* waiter: next on the flight; a spare: the next spare */
    /* The names last (job_new zeroes what is above and empties these). */
    char asset[EDGE_ASSET_MAX + 1];
    char path[EDGE_PATH_MAX + 1];
    char file[FILE_MAX]; /* the cached file; read by the kernel at submit */
    char disp[640];      /* download.mp4?download=1: the Content-Disposition value; else empty */
};

/* One origin GET of one object, with everything it has delivered so far. */
struct flight {
    shard *sh;
    flight *next;     /* the shard's open flights (joinable) */
    flight *ended;    /* a playlist's that ended this turn: the shard's list (playlist_ended) */
    uint64_t done_ns; /* a playlist's: the turn clock when the loop saw its read end */
    cache_key key;
    char asset[EDGE_ASSET_MAX + 1];
    char path[EDGE_PATH_MAX + 1];
    uint8_t playlist, joinable, have_head, origin_done, store;
    uint8_t changed; /* a playlist's: its watch has seen the file change since it was opened */
    uint8_t kept;    /* a playlist's: in the shard's kept ones (not in `flights`) */
    int wd;          /* a playlist's: the watch on its file in the shard's inotify instance; 0 */
    flight *hnext;   /* kept: the next in its key's chain */
    flight *kprev, *knext; /* kept: the shard's kept ones, oldest first */
    int err;               /* the origin's failure, once done */
    origin *src;           /* the edge's origin, or its thumbs for a thumbnail */
    origin_get *get;
    blob_sink sink;
    rd_timer timeout;
    uint64_t start_ns;
    uint64_t size, have;
    int64_t mtime;
    rd_buf **chunks;
    uint64_t *chunk_off;
    uint32_t nchunks, cap;
    job *waiters;
    uint32_t nwaiters;
    /* the temporary file */
    int fd;
    rd_op op;            /* the open, write or rename in flight */
    uint8_t disk_busy;   /* op in flight */
    uint8_t disk_failed; /* give up on storing it */
    uint8_t opened, renamed;
    uint32_t wchunk; /* next chunk to write */
    uint64_t written, wpos;
    char tmp[FILE_MAX], file[FILE_MAX];
};

/* A deleted asset whose links are refused until `until_ms` (empty: name[0] == 0). */
typedef struct deny_entry {
    int64_t until_ms;
    char name[EDGE_ASSET_MAX + 1];
} deny_entry;

/* A name and its key, in the shard's direct-mapped memo of keys (key_of). */
#define KEY_MEMO_SLOTS 64
#define KEY_MEMO_NAME  96 /* longer names ("asset/path") are hashed each time */
typedef struct key_memo {
    uint16_t len; /* 0: empty */
    char name[KEY_MEMO_NAME];
    cache_key key;
} key_memo;

struct shard {
    rd_edge *e;       /* the edge it is a shard of */
    deny_entry *deny; /* DENY_MAX, open addressing */
    rd_timer poll_timer;
    int polling;
    int64_t del_last_ms; /* the newest deletion seen (the store's clock); 0: none yet */
    int64_t cur_ms, cur_id;
    int rounds;
    rd_actor *self;
    rd_loop *loop;
    int idx;
    cache_index ix;
    flight *flights;
    rd_buf *touch[MAX_SHARDS]; /* keys hit here, by owning shard */
    rd_timer touch_timer;
    uint64_t tmp_seq;
    edge_token_cache tokens;       /* links this shard verified lately */
    key_memo keys[KEY_MEMO_SLOTS]; /* object keys this shard computed lately (key_of) */
    flight *ended;                 /* playlist reads that ended this turn, still joinable */
    rd_turn_hook ended_hook;       /* armed while `ended` is not empty: unlists them */
    /* Playlists kept while unchanged (fs origin): the shard's inotify instance watches each
     * one's file from before its first byte was read, and a request is answered from what
     * was read once the instance holds no event for it that was queued before the request
     * came (watch_drain). */
    int ino_fd;                     /* -1: none (s3 origin, or no inotify here) */
    uint64_t drained_ns;            /* the clock just before the last drain began */
    flight *kept_tab[KEPT_BUCKETS]; /* by key */
    flight *kept_old, *kept_new;    /* oldest first */
    watch_refs wds;                 /* the reads (open or kept) through each watch */
    uint32_t nkept;
    uint64_t kept_bytes;
    job *spare; /* finished jobs kept for the next requests */
    int nspare;
    int64_t date_of; /* the mtime last_modified spells, once it is not empty */
    char last_modified[30];
};

/* One edge: the settings and metrics its shards share, written before the loops serve and
 * read-only after, and the shards. Each shard reaches it through sh->e. */
struct rd_edge {
    int nshards;
    shard *shards;
    char dir[DIR_MAX];
    uint64_t shard_bytes;
    uint32_t fetch_timeout_ms;
    edge_keyring keys;
    blob_aio *blobs; /* the previews bucket: fs or s3 (src/blob/aio.h) */
    origin *origin;
    origin *thumbs;  /* made, not fetched: thumbnail.jpg?time=&width= (over origin) */
    rd_actor *store; /* the dispatcher: store requests go through it */
    int64_t link_ttl_ms;
    cors_policy cors; /* PLAYBACK_ALLOWED_ORIGINS: pages whose MSE players may fetch objects */
    rd_series *hits, *misses, *bytes_served, *evictions, *coalesced, *cache_bytes, *cache_objects;
    rd_series *playlist_kept_hits;
    rd_series *fetch_ok, *fetch_missing, *fetch_failed, *fetch_seconds;
    rd_series *token_bad, *token_expired, *deleted_refused;
};

/* ---- names ---- */

/* "asset/path": what an object's key is the SHA-256 of. Its length. */
static size_t key_name(char name[EDGE_ASSET_MAX + EDGE_PATH_MAX + 2], const char *asset,
                       const char *path)
{
    /* By hand: snprintf here was a per cent of a playlist's CPU. */
    size_t al = strnlen(asset, EDGE_ASSET_MAX), pl = strnlen(path, EDGE_PATH_MAX);
    memcpy(name, asset, al);
    name[al] = '/';
    memcpy(name + al + 1, path, pl);
    return al + 1 + pl;
}

static cache_key key_hash(const char *name, size_t len)
{
    uint8_t d[HMAC_SHA256_LEN];
    hmac_sha256_digest(name, len, d);
    cache_key k = {0, 0};
    for (int i = 0; i < 8; i++) {
        k.hi = k.hi << 8 | d[i];
        k.lo = k.lo << 8 | d[8 + i];
    }
    return k;
}

/* An object's key, from the shard's memo when it computed this name's lately (players ask for
 * the same playlists and segments again and again; the SHA-256 was a per cent and a half of a
 * playlist's CPU). The memo holds exact names, so it answers what key_hash would. The name is
 * hashed and compared from its two parts where they lie: joined into a buffer first, the
 * hash's word loads waited for that copy's stores. */
static cache_key key_of(shard *sh, const char *asset, const char *path)
{
    size_t al = strnlen(asset, EDGE_ASSET_MAX), pl = strnlen(path, EDGE_PATH_MAX);
    size_t len = al + 1 + pl;
    char name[EDGE_ASSET_MAX + EDGE_PATH_MAX + 2];
    if (len > KEY_MEMO_NAME) {
        key_name(name, asset, path);
        return key_hash(name, len);
    }
    key_memo *m = &sh->keys[mulhash64(mulhash64(0, asset, al), path, pl) % KEY_MEMO_SLOTS];
    if (m->len != len || memcmp(m->name, asset, al) != 0 || m->name[al] != '/' ||
        memcmp(m->name + al + 1, path, pl) != 0) {
        key_name(name, asset, path);
        m->key = key_hash(name, len);
        m->len = (uint16_t)len;
        memcpy(m->name, name, len);
    }
    return m->key;
}

static int owner_of(const rd_edge *e, cache_key k)
{
    return (int)(k.hi % (uint64_t)e->nshards);
}

static void file_of(const rd_edge *e, cache_key k, char *out, size_t cap)
{
    snprintf(out, cap, "%s/%02x/%016llx%016llx", e->dir, (unsigned)(k.hi >> 56),
             (unsigned long long)k.hi, (unsigned long long)k.lo);
}

/* One table for the uploader and the edge: what is stored is served as it was stored. */
static const char *content_type(const char *path)
{
    return hls_content_type(path);
}

/* ---- jobs ---- */

/* download.mp4?download=1: an attachment named like the uploaded file when the link carries
 * that name signed by the API (&name=base64url&nsig=hex, proto/edge_token.h), else after the
 * asset id. The path's token has already been checked; without the flag, nothing. */
static void set_disposition(job *j, const struct rd_msg_http_request *q, http1_str exp)
{
    http1_str qs = http_request_query(q);
    if (!disposition_query_flag(qs.p, qs.len, "download"))
        return;
    const char *name = j->asset, *b64, *sig;
    size_t nlen = strlen(j->asset), blen, slen;
    char decoded[EDGE_NAME_MAX];
    if (disposition_query_param(qs.p, qs.len, "name", &b64, &blen) &&
        disposition_query_param(qs.p, qs.len, "nsig", &sig, &slen) &&
        edge_name_verify(&j->sh->e->keys, exp.p, exp.len, j->asset, strlen(j->asset), b64, blen,
                         sig, slen, (int64_t)time(NULL))) {
        int n = jwt_b64url_decode(decoded, sizeof(decoded), b64, blen);
        if (n > 0) {
            name = decoded;
            nlen = (size_t)n;
        }
    }
    if (disposition_attachment(j->disp, sizeof(j->disp), name, nlen, ".mp4") < 0)
        j->disp[0] = '\0';
}

/* Kept per shard: a request neither allocates nor zeroes 1.6 KB. A playlist read ends with all
 * its waiters at once (tens to hundreds at 256 connections), so the spares cover that many:
 * with 64 most of a batch went back to malloc (up to ~400 KB a shard held after a burst). None
 * under AddressSanitizer, which would not see a stale job used again. */
#if defined(__SANITIZE_ADDRESS__)
#define SPARE_JOBS 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SPARE_JOBS 0
#endif
#endif
#ifndef SPARE_JOBS
#define SPARE_JOBS 256
#endif

static job *job_new(shard *sh)
{
    job *j = sh->spare;
    if (j != NULL) {
        sh->spare = j->fnext;
        sh->nspare--;
    } else {
        j = rd_malloc(sizeof(*j), "serving the edge");
    }
    memset(j, 0, offsetof(job, asset));
    j->asset[0] = j->path[0] = j->file[0] = j->disp[0] = '\0';
    j->sh = sh;
    j->fd = -1;
    return j;
}

static void job_free(job *j)
{
    if (j->fd >= 0)
        close(j->fd);
    msg_free(j->req);
    shard *sh = j->sh;
    if (sh->nspare < SPARE_JOBS) {
        j->fnext = sh->spare;
        sh->spare = j;
        sh->nspare++;
    } else {
        free(j);
    }
}

/* ---- responses ---- */

/* "\"<8 hex of the key>-<size hex>-<mtime hex>\"" (written by hand: one per response). */
static void etag_put(rd_wbuf *w, const job *j, uint64_t size, int64_t mtime)
{
    wbuf_chr(w, '"');
    wbuf_hex(w, j->key.hi >> 32, 8);
    wbuf_chr(w, '-');
    wbuf_hex(w, size, 1);
    wbuf_chr(w, '-');
    wbuf_hex(w, (uint64_t)mtime, 1);
    wbuf_chr(w, '"');
}

/* What an MSE player's script reads besides the safelisted headers: the range answer and the
 * validators. A player fetches playlists and segments itself (XHR/fetch), so every response
 * needs the CORS lines, errors included (the player reads their status). */
#define CORS_EXPOSE "Content-Length, Content-Range, Accept-Ranges, ETag"
static const char *const cors_request_headers[] = {"range", "if-none-match", "if-modified-since",
                                                   NULL};

/* Ends a reply's header lines written in place: terminated (should one not have fitted, after
 * the last whole line), then the CORS lines for the request's Origin. */
static void finish_headers(const job *j, struct rd_msg_http_response *r, rd_wbuf *w)
{
    if (wbuf_end(w) < 0) {
        size_t k = w->len;
        while (k >= 2 && !(r->headers[k - 2] == '\r' && r->headers[k - 1] == '\n'))
            k--;
        w->len = k >= 2 ? k : 0;
        r->headers[w->len] = '\0';
    }
    http_cors_lines(j->req, &j->sh->e->cors, CORS_EXPOSE, r->headers + w->len,
                    sizeof(r->headers) - w->len);
}

/* Sends a reply built in place; the job has replied (even when the listener is gone). */
static int reply_msg(job *j, rd_msg *m)
{
    int r = actor_reply(j->req, m);
    if (r < 0)
        msg_free(m); /* the listener is gone: nobody to answer */
    j->replied = 1;
    return r;
}

/* A response without a streamed body (416, errors: all with our headers). */
static void reply_plain(job *j, int status, const char *ctype, const char *headers,
                        const char *body)
{
    rd_msg *m = http_response_new(status, ctype);
    struct rd_msg_http_response *r = msg_body(m, http_response);
    rd_wbuf w = wbuf_init(r->headers, sizeof(r->headers));
    wbuf_str(&w, headers);
    finish_headers(j, r, &w);
    if (body) {
        r->small_len = (uint32_t)strlen(body);
        memcpy(r->small, body, r->small_len);
    }
    reply_msg(j, m);
}

static void reply_error(job *j, int status, const char *code, const char *message)
{
    char body[RD_HTTP_SMALL_BODY];
    int n = http1_write_error_json(body, sizeof(body) - 1, code, message);
    body[n > 0 ? n : 0] = '\0'; /* the writer does not terminate it; reply_plain takes strlen */
    char headers[40];
    snprintf(headers, sizeof(headers), "Cache-Control: %s\r\n", CC_ERROR);
    reply_plain(j, status, "application/json", headers, body);
}

/* The largest body sent inside its response when a flight already holds it all: one message,
 * so the listener writes head and body with one send (a head and a part that arrive apart go
 * as two, and on loopback a send costs more than everything else a request does). */
#define INLINE_MAX (256u * 1024u)

/* Bytes [from, from + len) of a flight that has them all, as one buffer: the chunk itself
 * when it is exactly those bytes (a whole playlist read in one piece: no copy). */
static rd_buf *gather(const flight *f, uint64_t from, uint64_t len)
{
    for (uint32_t i = 0; i < f->nchunks; i++)
        if (f->chunk_off[i] == from && f->chunks[i]->len == len)
            return buf_ref(f->chunks[i]);
    rd_buf *b = buf_new((size_t)len);
    for (uint32_t i = 0; i < f->nchunks && b->len < len; i++) {
        const rd_buf *c = f->chunks[i];
        uint64_t at = from + b->len, off = f->chunk_off[i];
        if (at < off || at >= off + c->len)
            continue;
        uint64_t n = off + c->len - at < len - b->len ? off + c->len - at : len - b->len;
        memcpy(b->data + b->len, c->data + (at - off), (size_t)n);
        b->len += (size_t)n;
    }
    return b;
}

/* Decides the response to `j` for an object of `size` bytes modified at `mtime`, and sends
 * its head (with the body when `f`, the flight, already holds all of it and it is small).
 * Returns 1 when body bytes [j->cursor, j->end) are to follow, 0 when the response is
 * complete. */
static int respond(job *j, uint64_t size, int64_t mtime, int hit, const flight *f)
{
    const struct rd_msg_http_request *q = msg_body(j->req, http_request);
    shard *sh = j->sh;
    if (sh->date_of != mtime || sh->last_modified[0] == '\0') { /* a playlist's is the same */
        http1_date((time_t)mtime, sh->last_modified);
        sh->date_of = mtime;
    }
    /* The header lines by hand, not snprintf (on the playlist path the format machinery was a
     * tenth of the CPU), straight into the reply: built aside, the ETag's bytes were read back
     * (strlen, then the copy into the message) while their stores were still on their way,
     * and every read waited for them. They fit: 1024 bytes hold the longest disposition (640)
     * and the rest. */
    rd_msg *m = http_response_new(200, NULL);
    struct rd_msg_http_response *r = msg_body(m, http_response);
    rd_wbuf w = wbuf_init(r->headers, sizeof(r->headers));
    wbuf_str(&w, "Cache-Control: ");
    if (j->playlist)
        wbuf_put(&w, CC_PLAYLIST, sizeof(CC_PLAYLIST) - 1);
    else
        wbuf_put(&w, CC_SEGMENT, sizeof(CC_SEGMENT) - 1);
    wbuf_str(&w, "\r\nETag: ");
    size_t etag_at = w.len;
    etag_put(&w, j, size, mtime);
    size_t etag_len = w.len - etag_at;
    wbuf_str(&w, "\r\nLast-Modified: ");
    wbuf_put(&w, sh->last_modified, HTTP1_DATE_LEN);
    wbuf_str(&w, hit ? "\r\nX-Cache: HIT\r\n" : "\r\nX-Cache: MISS\r\n");
    if (j->disp[0] != '\0') {
        wbuf_str(&w, "Content-Disposition: ");
        wbuf_str(&w, j->disp);
        wbuf_str(&w, "\r\n");
    }
    http1_str inm = http_request_header(q, "If-None-Match");
    http1_str ims = http_request_header(q, "If-Modified-Since");
    if (inm.p != NULL || ims.p != NULL) {
        char etag[64] = "";
        if (!w.err && etag_len < sizeof(etag))
            memcpy(etag, r->headers + etag_at, etag_len);
        if (httpcond_not_modified(inm.p, inm.len, ims.p, ims.len, etag, (time_t)mtime)) {
            r->status = 304;
            finish_headers(j, r, &w);
            reply_msg(j, m);
            return 0;
        }
    }
    http1_str range = http_request_header(q, "Range");
    uint64_t first = 0, last = size ? size - 1 : 0;
    int rc = httpcond_range(range.p, range.len, size, &first, &last);
    if (rc == HTTPCOND_UNSATISFIABLE) {
        /* An error: none of the object's cache headers (immutable would pin it in caches). */
        msg_free(m);
        char headers[160];
        snprintf(headers, sizeof(headers),
                 "Cache-Control: %s\r\nContent-Range: bytes */%llu\r\nX-Cache: %s\r\n", CC_ERROR,
                 (unsigned long long)size, hit ? "HIT" : "MISS");
        reply_plain(j, 416, "application/json", headers,
                    "{\"error\":{\"code\":\"range_not_satisfiable\","
                    "\"message\":\"The range starts past the end of the object.\"}}");
        return 0;
    }
    wbuf_str(&w, "Accept-Ranges: bytes\r\n");
    if (rc == HTTPCOND_PARTIAL) {
        wbuf_str(&w, "Content-Range: bytes ");
        wbuf_uint(&w, first);
        wbuf_chr(&w, '-');
        wbuf_uint(&w, last);
        wbuf_chr(&w, '/');
        wbuf_uint(&w, size);
        wbuf_str(&w, "\r\n");
    }
    finish_headers(j, r, &w);
    r->status = rc == HTTPCOND_PARTIAL ? 206 : 200;
    wbuf_copy(r->content_type, sizeof(r->content_type), j->ctype);
    j->cursor = first;
    j->end = size ? last + 1 : 0;
    if (f != NULL && !j->head_only && f->have >= j->end && j->end - j->cursor <= INLINE_MAX) {
        uint64_t len = j->end - j->cursor;
        metrics_add(j->sh->e->bytes_served, len);
        r->body = len ? gather(f, j->cursor, len) : NULL;
        reply_msg(j, m);
        j->cursor = j->end;
        return 0;
    }
    r->more = 1;
    r->content_length = (int64_t)(j->end - j->cursor);
    if (reply_msg(j, m) < 0)
        return 0;
    if (j->head_only || j->cursor == j->end) {
        http_send_part(j->listener, j->stream, NULL, 1, NULL);
        return 0;
    }
    return 1;
}

/* Sends one part; `body`'s reference moves. */
static void send_part(job *j, rd_buf *body, int last)
{
    metrics_add(j->sh->e->bytes_served, body ? body->len : 0);
    http_send_part(j->listener, j->stream, body, last, NULL);
}

/* ---- hits ---- */

static void touch_flush(shard *sh)
{
    for (int i = 0; i < sh->e->nshards; i++) {
        rd_buf *b = sh->touch[i];
        if (b == NULL)
            continue;
        sh->touch[i] = NULL;
        rd_msg *m = msg_new(MSG_CACHE_TOUCH);
        msg_body(m, cache_touch)->keys = b;
        msg_body(m, cache_touch)->n = (uint32_t)(b->len / sizeof(cache_key));
        if (actor_send(sh->e->shards[i].self, m) < 0)
            msg_free(m); /* the owner is busy: its LRU order is only approximate */
    }
}

static void on_touch_timer(rd_timer *t)
{
    shard *sh = (shard *)(void *)((char *)t - offsetof(shard, touch_timer));
    touch_flush(sh);
}

/* Records a hit on `key` for its owner's LRU. */
static void touch(shard *sh, cache_key key)
{
    int o = owner_of(sh->e, key);
    if (o == sh->idx) {
        cache_entry *e = cache_index_find(&sh->ix, key);
        if (e != NULL)
            cache_index_touch(&sh->ix, e);
        return;
    }
    rd_buf *b = sh->touch[o];
    if (b == NULL)
        b = sh->touch[o] = buf_new(TOUCH_BATCH * sizeof(cache_key));
    memcpy(b->data + b->len, &key, sizeof(key));
    b->len += sizeof(key);
    if (b->len == b->cap)
        touch_flush(sh);
    else if (!loop_timer_armed(&sh->touch_timer))
        loop_timer_start(sh->loop, &sh->touch_timer, TOUCH_DELAY_MS * 1000000ull, 0);
}

static void owner_miss(shard *sh, job *j);

static void on_hit_open(rd_op *op, int res, uint32_t flags)
{
    (void)flags;
    job *j = (job *)(void *)((char *)op - offsetof(job, op));
    shard *sh = j->sh;
    rd_edge *e = sh->e;
    if (res < 0) {
        int o = owner_of(e, j->key);
        if (o == sh->idx) {
            owner_miss(sh, j);
            return;
        }
        /* Not cached: the owner fetches it (or is already fetching it). */
        if (actor_send(e->shards[o].self, j->req) == 0) {
            j->req = NULL;
        } else {
            reply_error(j, 503, "busy", "The edge is busy; try again shortly.");
        }
        job_free(j);
        return;
    }
    j->fd = res;
    struct stat st;
    if (fstat(j->fd, &st) < 0) {
        reply_error(j, 500, "internal", "The cached object could not be read.");
        job_free(j);
        return;
    }
    metrics_add(e->hits, 1);
    touch(sh, j->key);
    if (!respond(j, (uint64_t)st.st_size, (int64_t)st.st_mtime, 1, NULL)) {
        job_free(j);
        return;
    }
    /* The listener splices the range from the file to the socket: the bytes are never read
     * here, and the descriptor is the listener's from now on. */
    metrics_add(e->bytes_served, j->end - j->cursor);
    http_send_file_part(j->listener, j->stream, j->fd, j->cursor, j->end - j->cursor, 1, NULL);
    j->fd = -1;
    job_free(j);
}

static void hit_open(shard *sh, job *j)
{
    file_of(sh->e, j->key, j->file, sizeof(j->file));
    j->op.done = on_hit_open;
    struct io_uring_sqe *sqe = loop_sqe(sh->loop, &j->op);
    io_uring_prep_openat(sqe, AT_FDCWD, j->file, O_RDONLY | O_CLOEXEC, 0);
}

static void flight_free(flight *f)
{
    assert(f->waiters == NULL && !f->disk_busy && f->get == NULL && !f->kept);
    /* Two reads of one file share its watch: the last of them removes it. */
    if (f->wd > 0 && watch_refs_release(&f->sh->wds, f->wd) && f->sh->ino_fd >= 0)
        inotify_rm_watch(f->sh->ino_fd, f->wd); /* nothing left to hear */
    loop_timer_cancel(f->sh->loop, &f->timeout);
    for (uint32_t i = 0; i < f->nchunks; i++)
        buf_unref(f->chunks[i]);
    free(f->chunks);
    free(f->chunk_off);
    if (f->fd >= 0)
        close(f->fd);
    free(f);
}

static void flight_unlist(flight *f)
{
    if (!f->joinable)
        return;
    f->joinable = 0;
    flight **pp = &f->sh->flights;
    while (*pp != f)
        pp = &(*pp)->next;
    *pp = f->next;
}

static void flight_maybe_free(flight *f)
{
    if (f->waiters == NULL && !f->disk_busy && f->get == NULL && !f->joinable && !f->kept)
        flight_free(f);
}

static void waiter_remove(flight *f, job *j)
{
    job **pp = &f->waiters;
    while (*pp != j)
        pp = &(*pp)->fnext;
    *pp = j->fnext;
    f->nwaiters--;
    job_free(j);
}

/* A slice of the flight's bytes [from, from + len) that lies within one chunk. */
static rd_buf *slice(flight *f, uint64_t from, uint64_t max)
{
    uint32_t lo = 0, hi = f->nchunks;
    while (hi - lo > 1) {
        uint32_t mid = (lo + hi) / 2;
        if (f->chunk_off[mid] <= from)
            lo = mid;
        else
            hi = mid;
    }
    rd_buf *c = f->chunks[lo];
    uint64_t in = from - f->chunk_off[lo];
    uint64_t n = c->len - in < max ? c->len - in : max;
    if (in == 0 && n == c->len)
        return buf_ref(c);
    rd_buf *b = buf_new((size_t)n);
    memcpy(b->data, c->data + in, (size_t)n);
    b->len = (size_t)n;
    return b;
}

/* Sends a replied waiter everything the flight has for it; 1 when it is finished. */
static int waiter_pump(flight *f, job *j)
{
    while (j->cursor < j->end && j->cursor < f->have) {
        uint64_t avail = (f->have < j->end ? f->have : j->end) - j->cursor;
        rd_buf *b = slice(f, j->cursor, avail);
        j->cursor += b->len;
        send_part(j, b, j->cursor == j->end);
    }
    return j->cursor == j->end;
}

/* ---- playlists kept while unchanged ----
 *
 * On the fs origin a playlist's read watches its file (inotify, added after the open and
 * before the first read). A read that has ended answers later requests for as long as the
 * watch has heard nothing, instead of a read each turn: on a busy edge those reads were most
 * of the distance to a server that answers from memory. The rule that makes it exact: a
 * write to the file raises its event before the writer's call returns, so before anything the
 * writer (or anyone it told) sends next can reach this loop; the shard reads its instance dry
 * (watch_drain) once after each turn in which such requests came, before answering them, and
 * an event lets the read go. Requests from another loop's listener do not take this path
 * (their stamp is that loop's, taken where its ring may not have delivered them yet): playlists
 * on the fs origin are read where they land.
 * The drain is a system call on the instance, one a turn, not a poll through the ring: a request's
 * bytes can ride a completion the kernel queued before the writer's event (a connection's
 * receive already under way), and a capped run of completions can leave the event's for the
 * next wait, so the ring's order says nothing about the two; the instance's queue does. */

static flight **kept_slot(shard *sh, cache_key k)
{
    return &sh->kept_tab[k.lo & (KEPT_BUCKETS - 1)];
}

static flight *kept_find(shard *sh, cache_key k)
{
    for (flight *f = *kept_slot(sh, k); f != NULL; f = f->hnext)
        if (f->key.hi == k.hi && f->key.lo == k.lo)
            return f;
    return NULL;
}

/* A kept playlist let go: its file changed, a newer read of it came, or room was needed. */
static void kept_drop(flight *f)
{
    shard *sh = f->sh;
    flight **pp = kept_slot(sh, f->key);
    while (*pp != f)
        pp = &(*pp)->hnext;
    *pp = f->hnext;
    if (f->kprev != NULL)
        f->kprev->knext = f->knext;
    else
        sh->kept_old = f->knext;
    if (f->knext != NULL)
        f->knext->kprev = f->kprev;
    else
        sh->kept_new = f->kprev;
    sh->nkept--;
    sh->kept_bytes -= f->have;
    f->kept = 0;
    flight_free(f);
}

/* A finished read of a watched, unchanged playlist kept (the shard's newest), in place of an
 * older read of it, within KEPT_MAX and KEPT_BYTES (the oldest go). */
static void kept_add(flight *f)
{
    shard *sh = f->sh;
    flight *old = kept_find(sh, f->key);
    flight **slot = kept_slot(sh, f->key);
    f->hnext = *slot;
    *slot = f;
    f->kprev = sh->kept_new;
    f->knext = NULL;
    if (sh->kept_new != NULL)
        sh->kept_new->knext = f;
    else
        sh->kept_old = f;
    sh->kept_new = f;
    sh->nkept++;
    sh->kept_bytes += f->have;
    f->kept = 1;
    if (old != NULL)
        kept_drop(old); /* after f is in: their file's watch stays while f uses it */
    while (sh->kept_old != f && (sh->nkept > KEPT_MAX || sh->kept_bytes > KEPT_BYTES))
        kept_drop(sh->kept_old);
}

/* Watch `wd` heard its file change (wd < 0: the instance lost events, so any may have): reads
 * under way through it will not be kept, kept ones go. */
static void watch_saw(shard *sh, int wd)
{
    for (flight *f = sh->flights; f != NULL; f = f->next)
        if (f->wd > 0 && (wd < 0 || f->wd == wd))
            f->changed = 1;
    for (flight *f = sh->kept_old, *next; f != NULL; f = next) {
        next = f->knext;
        if (wd < 0 || f->wd == wd)
            kept_drop(f);
    }
}

/* Every event the shard's instance holds, read now (non-blocking: it ends at EAGAIN). The
 * clock is taken before the first look: a request that came before it is answered after every
 * event queued before it came was seen. The look is FIONREAD: the bytes queued, under the
 * instance's lock alone; an empty read(2) takes and drops the instance's wait queue besides
 * (two interrupt-masking locks), and nearly every look finds nothing. */
static void watch_drain(shard *sh)
{
    sh->drained_ns = rd_now_ns();
    int queued = 0;
    if (ioctl(sh->ino_fd, FIONREAD, &queued) == 0 && queued == 0)
        return;
    union {
        struct inotify_event ev;
        char b[4096];
    } u;
    for (;;) {
        ssize_t n = read(sh->ino_fd, u.b, sizeof(u.b));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            return;
        if (n <= 0) {
            /* Not an instance any more: nothing is kept from now on. */
            log_warn("edge_watch_failed", KV_INT("shard", sh->idx),
                     KV_ERRNO(n < 0 ? -errno : -EIO));
            watch_saw(sh, -1);
            close(sh->ino_fd);
            sh->ino_fd = -1;
            return;
        }
        for (size_t at = 0; at + sizeof(struct inotify_event) <= (size_t)n;) {
            struct inotify_event ev;
            memcpy(&ev, u.b + at, sizeof(ev));
            watch_saw(sh, ev.mask & IN_Q_OVERFLOW ? -1 : ev.wd);
            at += sizeof(ev) + ev.len;
        }
    }
}

/* The watch's events read, unless a look began after the request that came at `came`: at most
 * once a turn for this loop's requests. May free kept reads. */
static void look_after(shard *sh, uint64_t came)
{
    if (sh->drained_ns <= came)
        watch_drain(sh);
}

/* Whether playlist read `f` (under way or ended), whose file was opened before the request
 * that came at `came`, still answers it: the file watched from before its first byte was read
 * and unchanged as of a look begun after the request came (frees kept reads, never f: open). */
static int unchanged_since(shard *sh, flight *f, uint64_t came)
{
    if (f->wd <= 0 || f->changed || f->err != 0 || sh->ino_fd < 0)
        return 0;
    look_after(sh, came);
    return !f->changed;
}

/* Gives a waiter its response head, and what the flight has so far. */
static int waiter_start(flight *f, job *j)
{
    if (!respond(j, f->size, f->mtime, f->kept || j->kept_hit, f))
        return 1;
    return waiter_pump(f, j);
}

static void flight_fail_waiters(flight *f)
{
    while (f->waiters) {
        job *j = f->waiters;
        if (!j->replied) {
            if (f->err == -ENOENT)
                reply_error(j, 404, "not_found", "No such object.");
            else if (f->err == -ETIMEDOUT)
                reply_error(j, 504, "origin_timeout", "The origin did not answer in time.");
            else
                reply_error(j, 502, "origin_failed", "The origin failed; try again.");
        } else {
            /* Head already sent: the body ends short of its Content-Length, and the listener
             * closes the connection after it, so the client sees the failure. */
            send_part(j, NULL, 1);
        }
        waiter_remove(f, j);
    }
}

typedef struct unlink_op {
    rd_op op; /* first: the completion frees the block */
    char path[FILE_MAX];
} unlink_op;

static void unlink_done(rd_op *op, int res, uint32_t flags)
{
    (void)flags;
    if (res < 0 && res != -ENOENT)
        log_warn("edge_evict_failed", KV_STR("file", ((unlink_op *)(void *)op)->path),
                 KV_ERRNO(res));
    free(op);
}

static void evict(shard *sh)
{
    cache_key k;
    uint64_t size;
    while (cache_index_pop_lru(&sh->ix, &k, &size)) {
        /* A fire-and-forget unlink through the ring; its path lives until the completion. */
        unlink_op *u = rd_malloc(sizeof(*u), "evicting from the edge cache");
        file_of(sh->e, k, u->path, sizeof(u->path));
        u->op.done = unlink_done;
        struct io_uring_sqe *sqe = loop_sqe(sh->loop, &u->op);
        io_uring_prep_unlinkat(sqe, AT_FDCWD, u->path, 0);
        metrics_add(sh->e->evictions, 1);
        metrics_gauge_add(sh->e->cache_bytes, -(int64_t)size);
        metrics_gauge_add(sh->e->cache_objects, -1);
    }
}

/* ---- deleted assets ---- */

static uint64_t asset_tag(const char *asset)
{
    uint64_t h = fnv1a64(FNV64_BASIS, asset, strlen(asset));
    return h ? h : 1;
}

/* The slot of `asset` in the deny set, or -1. Expired entries still hold their slot (probes
 * pass them) until an insertion reuses it. */
static int deny_find(const shard *sh, const char *asset)
{
    uint32_t i = (uint32_t)asset_tag(asset) % DENY_MAX;
    for (int n = 0; n < DENY_MAX; n++, i = (i + 1) % DENY_MAX) {
        const deny_entry *e = &sh->deny[i];
        if (e->name[0] == '\0')
            return -1;
        if (strcmp(e->name, asset) == 0)
            return (int)i;
    }
    return -1;
}

static int deny_has(const shard *sh, const char *asset)
{
    int i = sh->deny ? deny_find(sh, asset) : -1;
    return i >= 0 && sh->deny[i].until_ms > rd_wall_ms();
}

/* Adds `asset` until `until_ms`; 1 when it was not refused yet. A full probe sequence takes
 * the first expired slot, else the home slot (an older deletion is forgotten: the bound). */
static int deny_add(shard *sh, const char *asset, int64_t until_ms)
{
    int i = deny_find(sh, asset);
    if (i >= 0) {
        int fresh = sh->deny[i].until_ms <= rd_wall_ms();
        if (until_ms > sh->deny[i].until_ms)
            sh->deny[i].until_ms = until_ms;
        return fresh;
    }
    uint32_t home = (uint32_t)asset_tag(asset) % DENY_MAX, j = home;
    int64_t now = rd_wall_ms();
    for (int n = 0; n < DENY_MAX; n++, j = (j + 1) % DENY_MAX)
        if (sh->deny[j].name[0] == '\0' || sh->deny[j].until_ms <= now)
            break;
    if (sh->deny[j].name[0] != '\0' && sh->deny[j].until_ms > now)
        j = home;
    snprintf(sh->deny[j].name, sizeof(sh->deny[j].name), "%s", asset);
    sh->deny[j].until_ms = until_ms;
    return 1;
}

/* Drops this shard's cached objects of the asset tagged `tag` (index and files). */
static void drop_asset(shard *sh, uint64_t tag)
{
    cache_key keys[256];
    uint64_t sizes[256];
    for (;;) {
        int n = 0;
        for (cache_entry *e = sh->ix.lru.newer; e != &sh->ix.lru && n < 256; e = e->newer)
            if (e->tag == tag) {
                keys[n] = e->key;
                sizes[n++] = e->size;
            }
        for (int i = 0; i < n; i++) {
            cache_index_remove(&sh->ix, keys[i]);
            unlink_op *u = rd_malloc(sizeof(*u), "dropping from the edge cache");
            file_of(sh->e, keys[i], u->path, sizeof(u->path));
            u->op.done = unlink_done;
            struct io_uring_sqe *sqe = loop_sqe(sh->loop, &u->op);
            io_uring_prep_unlinkat(sqe, AT_FDCWD, u->path, 0);
            metrics_gauge_add(sh->e->cache_bytes, -(int64_t)sizes[i]);
            metrics_gauge_add(sh->e->cache_objects, -1);
        }
        if (n < 256)
            return;
    }
}

static void learn_deleted(shard *sh, const char *asset, int64_t until_ms)
{
    if (!edge_asset_valid(asset, strlen(asset)) || until_ms <= rd_wall_ms())
        return;
    if (deny_add(sh, asset, until_ms)) {
        drop_asset(sh, asset_tag(asset));
        if (sh->idx == 0)
            log_info("edge_asset_deleted", KV_STR("asset", asset));
    }
}

static void poll_deleted(shard *sh);

/* Shard 0: the store's answer; what it says goes to every shard. */
static int deleted_answered(rd_actor *self, rd_msg *reply, int err, void *ctx)
{
    (void)ctx;
    shard *sh = self->state;
    rd_edge *e = sh->e;
    int st = err < 0 ? err : reply != NULL ? msg_body(reply, store)->status : -EIO;
    int more = 0;
    if (st == 0) {
        const struct rd_msg_store *b = msg_body(reply, store);
        rd_msg *out[MAX_SHARDS] = {0};
        for (int s = 1; s < e->nshards && b->n > 0; s++) {
            out[s] = msg_new(MSG_EDGE_DELETED);
            msg_body(out[s], edge_deleted)->n = 0;
        }
        for (uint32_t i = 0; i < b->n && i < RD_STORE_BATCH; i++) {
            const rd_asset *x = &b->assets[i];
            int64_t until = x->deleted_ms + e->link_ttl_ms + 60000;
            learn_deleted(sh, x->master_key, until);
            for (int s = 1; s < e->nshards; s++) {
                struct rd_msg_edge_deleted *d = msg_body(out[s], edge_deleted);
                snprintf(d->assets[d->n], sizeof(d->assets[d->n]), "%s", x->master_key);
                d->until_ms[d->n++] = until;
            }
            if (x->deleted_ms > sh->del_last_ms)
                sh->del_last_ms = x->deleted_ms;
            sh->cur_ms = x->deleted_ms;
            sh->cur_id = x->id;
        }
        for (int s = 1; s < e->nshards; s++)
            if (out[s] != NULL && actor_send(e->shards[s].self, out[s]) < 0) {
                msg_free(out[s]); /* its mailbox is full: the next look repeats these */
                sh->del_last_ms = 0;
            }
        more = b->n == RD_STORE_BATCH && ++sh->rounds < 8;
    }
    msg_free(reply);
    sh->polling = 0;
    if (more)
        poll_deleted(sh);
    return RD_DONE;
}

/* Asks for the deletions after the cursor: the first page of a look starts DENY_OVERLAP before
 * the newest deletion seen (at start: the last link lifetime). */
static void poll_deleted(shard *sh)
{
    if (sh->polling || sh->e->store == NULL)
        return;
    rd_msg *q = store_request(STORE_ASSET_DELETED);
    struct rd_msg_store *b = msg_body(q, store);
    b->limit = RD_STORE_BATCH;
    b->lease_ms = sh->e->link_ttl_ms;
    b->cursor = sh->cur_ms;
    b->asset_id = sh->cur_id;
    sh->polling = 1;
    if (actor_request(sh->self, sh->e->store, q, STORE_WAIT_MS, deleted_answered, NULL) < 0) {
        msg_free(q);
        sh->polling = 0;
    }
}

static void on_poll_timer(rd_timer *t)
{
    shard *sh = (shard *)(void *)((char *)t - offsetof(shard, poll_timer));
    if (sh->polling || loop_stopping(sh->loop)) /* the store's loop may be gone first */
        return;
    sh->rounds = 0;
    sh->cur_ms = sh->del_last_ms > DENY_OVERLAP ? sh->del_last_ms - DENY_OVERLAP : 0;
    sh->cur_id = 0;
    poll_deleted(sh);
}

static void disk_next(flight *f);

static void disk_abandon(flight *f)
{
    f->disk_failed = 1;
    if (f->fd >= 0) {
        close(f->fd);
        f->fd = -1;
        unlink(f->tmp); /* a file in our own directory we just made: no remote wait */
    }
}

static void on_disk(rd_op *op, int res, uint32_t flags)
{
    (void)flags;
    flight *f = (flight *)(void *)((char *)op - offsetof(flight, op));
    shard *sh = f->sh;
    f->disk_busy = 0;
    if (f->renamed) {
        /* The rename finished. */
        if (res < 0) {
            log_warn("edge_store_failed", KV_STR("file", f->file), KV_ERRNO(res));
            unlink(f->tmp);
        } else {
            cache_index_insert(&sh->ix, f->key, f->size)->tag = asset_tag(f->asset);
            metrics_gauge_add(sh->e->cache_bytes, (int64_t)f->size);
            metrics_gauge_add(sh->e->cache_objects, 1);
            if (deny_has(sh, f->asset)) /* deleted while it was fetched */
                drop_asset(sh, asset_tag(f->asset));
            evict(sh);
        }
        flight_unlist(f);
        flight_maybe_free(f);
        return;
    }
    if (!f->opened) {
        if (res < 0) {
            log_warn("edge_store_failed", KV_STR("file", f->tmp), KV_ERRNO(res));
            f->disk_failed = 1;
        } else {
            f->fd = res;
            f->opened = 1;
            if (f->disk_failed)
                disk_abandon(f); /* the fetch failed while the file was being made */
        }
    } else if (res <= 0) {
        log_warn("edge_store_failed", KV_STR("file", f->tmp), KV_ERRNO(res < 0 ? res : -EIO));
        disk_abandon(f);
    } else {
        f->written += (uint64_t)res;
        f->wpos += (uint64_t)res;
        if (f->wpos == f->chunks[f->wchunk]->len) {
            f->wchunk++;
            f->wpos = 0;
        }
    }
    if (f->disk_failed && f->origin_done) {
        flight_unlist(f);
        flight_maybe_free(f);
        return;
    }
    disk_next(f);
}

/* Moves the temporary file along: write what has arrived, then rename it into place. */
static void disk_next(flight *f)
{
    if (f->disk_busy || f->disk_failed || !f->store)
        return;
    if (f->wchunk < f->nchunks) {
        rd_buf *c = f->chunks[f->wchunk];
        f->disk_busy = 1;
        struct io_uring_sqe *sqe = loop_sqe(f->sh->loop, &f->op);
        io_uring_prep_write(sqe, f->fd, c->data + f->wpos, (unsigned)(c->len - f->wpos),
                            f->written);
        return;
    }
    if (!f->origin_done || f->err < 0 || f->written != f->size)
        return;
    /* Complete. Its mtime is the origin's, so hits answer with the same validators; its atime
     * is now, the order in which a restart rebuilds the LRU. */
    struct timespec ts[2] = {{.tv_nsec = UTIME_NOW}, {.tv_sec = f->mtime}};
    futimens(f->fd, ts);
    close(f->fd);
    f->fd = -1;
    f->renamed = 1;
    f->disk_busy = 1;
    struct io_uring_sqe *sqe = loop_sqe(f->sh->loop, &f->op);
    io_uring_prep_renameat(sqe, AT_FDCWD, f->tmp, AT_FDCWD, f->file, 0);
}

static void start_waiters(flight *f);

static void on_head(blob_sink *s, const blob_meta *m)
{
    flight *f = (flight *)(void *)((char *)s - offsetof(flight, sink));
    uint64_t size = m->size;
    int64_t mtime = m->mtime;
    shard *sh = f->sh;
    f->have_head = 1;
    f->size = size;
    f->mtime = mtime;
    assert(f->wd == 0); /* one head a read */
    f->wd = m->watch;
    if (f->wd > 0)
        watch_refs_hold(&sh->wds, f->wd);
    f->store = !f->playlist && size <= sh->e->shard_bytes;
    if (f->store) {
        snprintf(f->tmp, sizeof(f->tmp), "%s/tmp/%d.%d.%llu", sh->e->dir, (int)getpid(), sh->idx,
                 (unsigned long long)sh->tmp_seq++);
        file_of(sh->e, f->key, f->file, sizeof(f->file));
        f->disk_busy = 1;
        f->op.done = on_disk;
        struct io_uring_sqe *sqe = loop_sqe(sh->loop, &f->op);
        io_uring_prep_openat(sqe, AT_FDCWD, f->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    }
    if (f->playlist)
        return; /* small: its waiters get it whole, in one response each, once it is all in */
    start_waiters(f);
}

/* Answers every waiter that can be answered now; the finished ones leave the flight. */
static void start_waiters(flight *f)
{
    job **pp = &f->waiters;
    while (*pp) {
        job *j = *pp;
        if (waiter_start(f, j)) {
            *pp = j->fnext;
            f->nwaiters--;
            job_free(j);
        } else {
            pp = &j->fnext;
        }
    }
}

static void on_data(blob_sink *s, rd_buf *chunk)
{
    flight *f = (flight *)(void *)((char *)s - offsetof(flight, sink));
    if (f->nchunks == f->cap) {
        f->cap = f->cap ? f->cap * 2 : 8;
        f->chunks = rd_realloc(f->chunks, f->cap * sizeof(*f->chunks), "an edge fetch");
        f->chunk_off = rd_realloc(f->chunk_off, f->cap * sizeof(*f->chunk_off), "in an edge fetch");
    }
    f->chunks[f->nchunks] = chunk;
    f->chunk_off[f->nchunks] = f->have;
    f->nchunks++;
    f->have += chunk->len;
    job **pp = f->playlist ? NULL : &f->waiters; /* a playlist's waiters start at done */
    while (pp != NULL && *pp) {
        job *j = *pp;
        if (waiter_pump(f, j)) {
            *pp = j->fnext;
            f->nwaiters--;
            job_free(j);
        } else {
            pp = &j->fnext;
        }
    }
    disk_next(f);
}

/* The end of the loop turn in which playlist reads ended: the next request reads afresh. */
static void playlist_reads_over(rd_turn_hook *h)
{
    shard *sh = (shard *)(void *)((char *)h - offsetof(shard, ended_hook));
    while (sh->ended != NULL) {
        flight *f = sh->ended;
        sh->ended = f->ended;
        flight_unlist(f);
        if (f->wd > 0 && !f->changed && f->err == 0 && f->waiters == NULL &&
            f->have <= KEPT_ONE_MAX && sh->ino_fd >= 0)
            kept_add(f);
        else
            flight_maybe_free(f);
    }
}

/* A playlist read has ended: until the end of this loop turn it still serves the requests that
 * had arrived by the time the loop saw it end (their listener's turn clock, recv_ns, no later
 * than done_ns: those reaped with its completion), as it served those that came while it was
 * read. Playlists are "no-cache": owner_miss passes a finished read by for a request that
 * arrived after that (a player's next poll, a client's read after it rewrote the file), which
 * starts a read or joins one under way, as any request may. */
static void playlist_ended(flight *f)
{
    shard *sh = f->sh;
    if (!f->joinable)
        return;
    if (sh->ended == NULL)
        loop_at_turn_end(sh->loop, &sh->ended_hook);
    f->ended = sh->ended;
    sh->ended = f;
}

static void on_done(blob_sink *s, int err, const char *why)
{
    (void)why; /* the error number says what the edge answers */
    flight *f = (flight *)(void *)((char *)s - offsetof(flight, sink));
    rd_edge *e = f->sh->e;
    if (err == 0 && f->have != f->size)
        err = -EIO; /* the object changed while it was read: its size is not what it said */
    f->get = NULL;
    f->origin_done = 1;
    f->done_ns = rd_turn_ns();
    f->err = err;
    loop_timer_cancel(f->sh->loop, &f->timeout);
    metrics_observe(e->fetch_seconds, (double)(rd_now_ns() - f->start_ns) / 1e9);
    if (err == 0) {
        metrics_add(e->fetch_ok, 1);
        if (f->playlist) {
            start_waiters(f); /* they waited for all of it */
            playlist_ended(f);
        } else if (!f->store || f->disk_failed) {
            flight_unlist(f); /* not storable: the next request fetches afresh */
        }
        /* Every waiter has been sent everything: waiter_pump finished them. */
        disk_next(f);
        flight_maybe_free(f);
        return;
    }
    metrics_add(err == -ENOENT ? e->fetch_missing : e->fetch_failed, 1);
    if (err != -ENOENT)
        log_warn("edge_origin_failed", KV_STR("asset", f->asset), KV_STR("path", f->path),
                 KV_ERRNO(err));
    flight_unlist(f);
    flight_fail_waiters(f);
    if (f->opened)
        disk_abandon(f);
    f->disk_failed = 1;
    flight_maybe_free(f);
}

static void on_timeout(rd_timer *t)
{
    flight *f = (flight *)(void *)((char *)t - offsetof(flight, timeout));
    if (f->get == NULL)
        return;
    origin_get_cancel(f->src, f->get);
    on_done(&f->sink, -ETIMEDOUT, "");
}

static void flight_join(flight *f, job *j)
{
    if (f->nwaiters >= MAX_WAITERS) {
        reply_error(j, 503, "busy", "Too many clients wait for this object; try again.");
        job_free(j);
        return;
    }
    if (f->have_head && (!f->playlist || f->origin_done) && waiter_start(f, j)) {
        job_free(j);
        return;
    }
    j->fnext = f->waiters;
    f->waiters = j;
    f->nwaiters++;
}

static void flight_start(shard *sh, job *j)
{
    flight *f = rd_calloc(1, sizeof(*f), "starting an edge fetch");
    f->sh = sh;
    f->key = j->key;
    memcpy(f->asset, j->asset, strlen(j->asset) + 1); /* a reused job's tail is old bytes */
    memcpy(f->path, j->path, strlen(j->path) + 1);
    f->playlist = j->playlist;
    f->fd = -1;
    f->sink = (blob_sink){.head = on_head, .data = on_data, .done = on_done};
    f->timeout.fire = on_timeout;
    f->start_ns = rd_now_ns();
    int64_t tms;
    int tw;
    f->src = thumb_path_parse(f->path, &tms, &tw) ? sh->e->thumbs : sh->e->origin;
    int r = origin_get_start(f->src, sh->loop, f->asset, f->path, f->playlist ? sh->ino_fd : -1,
                             &f->sink, &f->get);
    if (r < 0) {
        metrics_add(sh->e->fetch_failed, 1);
        reply_error(j, 502, "origin_failed", "The origin failed; try again.");
        job_free(j);
        free(f);
        return;
    }
    f->joinable = 1;
    f->next = sh->flights;
    sh->flights = f;
    loop_timer_start(sh->loop, &f->timeout, (uint64_t)sh->e->fetch_timeout_ms * 1000000ull, 0);
    flight_join(f, j);
}

/* A request for an object this shard owns, not found on disk (or a playlist). */
static void owner_miss(shard *sh, job *j)
{
    uint64_t came = msg_body(j->req, http_request)->recv_ns;
    /* A playlist asked on this loop, of a shard that watches: a read that ended may answer. */
    int local =
        j->playlist && sh->ino_fd >= 0 && j->listener != NULL && j->listener->loop == sh->loop;
    if (local && sh->nkept > 0) {
        flight *k = kept_find(sh, j->key);
        if (k != NULL) {
            look_after(sh, came);
            k = kept_find(sh, j->key); /* gone if its file changed */
        }
        if (k != NULL) {
            metrics_add(sh->e->playlist_kept_hits, 1);
            j->kept_hit = 1;
            flight_join(k, j);
            return;
        }
    }
    for (flight *f = sh->flights; f != NULL; f = f->next) {
        if (f->key.hi == j->key.hi && f->key.lo == j->key.lo) {
            if (local) {
                /* A read that opened the file after this request came has all it must; one
                 * opened before answers only from a watch that has heard nothing since. */
                if (f->start_ns <= came && !unchanged_since(sh, f, came))
                    continue;
                if (f->origin_done && f->start_ns <= came) {
                    metrics_add(sh->e->playlist_kept_hits, 1);
                    j->kept_hit = 1;
                } else {
                    metrics_add(sh->e->coalesced, 1);
                }
            } else if (f->playlist && f->origin_done && came > f->done_ns) {
                continue; /* its read ended before this request came: read afresh */
            } else {
                metrics_add(sh->e->coalesced, 1);
            }
            if (!j->playlist)
                metrics_add(sh->e->misses, 1);
            flight_join(f, j);
            return;
        }
    }
    /* A file the index still lists but the disk lost is forgotten now. */
    if (cache_index_remove(&sh->ix, j->key))
        log_warn("edge_cache_lost", KV_STR("asset", j->asset), KV_STR("path", j->path));
    if (!j->playlist)
        metrics_add(sh->e->misses, 1);
    flight_start(sh, j);
}

/* ---- requests ---- */

static int copy_param(const rd_http_request *q, uint32_t i, char *out, size_t cap)
{
    http1_str s = http_request_param(q, i);
    if (s.len >= cap)
        return -1;
    memcpy(out, s.p, s.len);
    out[s.len] = '\0';
    return (int)s.len;
}

static void serve_hls(shard *sh, rd_msg *m)
{
    rd_edge *e = sh->e;
    const rd_http_request *q = msg_body(m, http_request);
    job *j = job_new(sh);
    j->req = m;
    j->listener = m->from;
    j->stream = q->stream;
    j->head_only = q->method == RD_HTTP_HEAD;
    if (q->method == RD_HTTP_OPTIONS) {
        /* A preflight (a player that sends Range): it grants nothing, the GET after it still
         * needs its signature. */
        http_reply_preflight(m, &e->cors, "GET, HEAD", cors_request_headers);
        job_free(j);
        return;
    }
    int al = copy_param(q, 2, j->asset, sizeof(j->asset));
    int pl = copy_param(q, 3, j->path, sizeof(j->path));
    if (al < 0 || pl < 0 || !edge_asset_valid(j->asset, (size_t)al) ||
        !edge_path_valid(j->path, (size_t)pl)) {
        reply_error(j, 400, "bad_path", "The asset or path is not a valid name.");
        job_free(j);
        return;
    }
    http1_str exp = http_request_param(q, 0), sig = http_request_param(q, 1);
    int v = edge_token_verify_cached(&e->keys, &sh->tokens, exp.p, exp.len, sig.p, sig.len,
                                     j->asset, (size_t)al, (int64_t)time(NULL));
    if (v == -EKEYEXPIRED) {
        metrics_add(e->token_expired, 1);
        reply_error(j, 410, "link_expired", "This playback link has expired; ask for a new one.");
        job_free(j);
        return;
    }
    if (v < 0) {
        metrics_add(e->token_bad, 1);
        reply_error(j, 403, "bad_signature", "This playback link is not valid.");
        job_free(j);
        return;
    }
    if (deny_has(sh, j->asset)) {
        /* Deleted: the store said so (shard 0 asks it every second). */
        metrics_add(e->deleted_refused, 1);
        reply_error(j, 404, "asset_deleted", "This asset was deleted.");
        job_free(j);
        return;
    }
    if (strcmp(j->path, "download.mp4") == 0 || strncmp(j->path, "exports/", 8) == 0)
        set_disposition(j, q, exp);
    if (strcmp(j->path, "thumbnail.jpg") == 0) {
        /* A picture at any time: cached under its canonical name, made on a miss. */
        http1_str query = http_request_query(q);
        int64_t tms;
        int tw;
        const char *why = NULL;
        if (thumb_params(query.p, query.len, &tms, &tw, &why) < 0) {
            reply_error(j, 400, "bad_thumbnail", why);
            job_free(j);
            return;
        }
        pl = thumb_path(j->path, sizeof(j->path), tms, tw);
    }
    j->key = key_of(sh, j->asset, j->path);
    size_t plen = (size_t)pl;
    j->playlist = plen > 5 && strcmp(j->path + plen - 5, ".m3u8") == 0;
    j->ctype = content_type(j->path);
    if (!j->playlist) {
        hit_open(sh, j);
        return;
    }
    int o = owner_of(e, j->key);
    if (o == sh->idx || sh->ino_fd >= 0) { /* a watching shard reads playlists itself */
        owner_miss(sh, j);
    } else if (actor_send(e->shards[o].self, m) == 0) {
        j->req = NULL;
        job_free(j);
    } else {
        reply_error(j, 503, "busy", "The edge is busy; try again shortly.");
        job_free(j);
    }
}

static void on_touch(shard *sh, const struct rd_msg_cache_touch *t)
{
    const cache_key *k = (const cache_key *)(const void *)t->keys->data;
    for (uint32_t i = 0; i < t->n; i++) {
        cache_entry *e = cache_index_find(&sh->ix, k[i]);
        if (e != NULL)
            cache_index_touch(&sh->ix, e);
    }
}

static int cache_init(rd_actor *self, void *arg)
{
    shard *sh = arg;
    sh->self = self;
    sh->loop = self->loop;
    sh->touch_timer.fire = on_touch_timer;
    sh->ended_hook.fn = playlist_reads_over;
    sh->poll_timer.fire = on_poll_timer;
    self->state = sh;
    if (sh->ino_fd < 0 && sh->e->origin->watches) {
        sh->ino_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
        if (sh->ino_fd == 0) { /* stdin was closed: 0 means "no instance" to the blob store */
            sh->ino_fd = fcntl(0, F_DUPFD_CLOEXEC, 1);
            close(0);
        }
        if (sh->ino_fd < 0)
            log_info("edge_playlists_unwatched", KV_INT("shard", sh->idx), KV_ERRNO(-errno));
    }
    if (sh->idx == 0 && sh->e->store != NULL) {
        loop_timer_start(sh->loop, &sh->poll_timer, 1000000ull,
                         (uint64_t)DENY_POLL_MS * 1000000ull);
    }
    return 0;
}

static void cache_fini(rd_actor *self)
{
    shard *sh = self->state;
    if (sh != NULL && sh->idx == 0 && sh->e->store != NULL)
        loop_timer_cancel(self->loop, &sh->poll_timer);
}

static int cache_handle(rd_actor *self, rd_msg *m)
{
    shard *sh = self->state;
    switch (m->type) {
    case MSG_HTTP_REQUEST:
        serve_hls(sh, m);
        return RD_KEPT;
    case MSG_CACHE_TOUCH:
        on_touch(sh, msg_body(m, cache_touch));
        return RD_DONE;
    case MSG_EDGE_DELETED: {
        const struct rd_msg_edge_deleted *d = msg_body(m, edge_deleted);
        for (uint32_t i = 0; i < d->n && i < RD_STORE_BATCH; i++)
            learn_deleted(sh, d->assets[i], d->until_ms[i]);
        return RD_DONE;
    }
    default:
        return RD_DONE;
    }
}

/* ---- start: keys, origin, the index from disk ---- */

typedef struct found {
    cache_key key;
    uint64_t size;
    struct timespec stored; /* atime: set when the file was stored (relatime keeps it close) */
} found;

static int by_age(const void *a, const void *b)
{
    const found *x = a, *y = b;
    if (x->stored.tv_sec != y->stored.tv_sec)
        return x->stored.tv_sec < y->stored.tv_sec ? -1 : 1;
    if (x->stored.tv_nsec != y->stored.tv_nsec)
        return x->stored.tv_nsec < y->stored.tv_nsec ? -1 : 1;
    return 0;
}

static int parse_name(const char *name, cache_key *k)
{
    uint8_t b[16];
    if (strlen(name) != 32 || hmac_unhex(b, sizeof(b), name, 32) < 0)
        return -EINVAL;
    k->hi = k->lo = 0;
    for (int i = 0; i < 8; i++) {
        k->hi = k->hi << 8 | b[i];
        k->lo = k->lo << 8 | b[8 + i];
    }
    return 0;
}

/* Makes CACHE_DIR and its subdirectories, empties tmp/, and lists what is cached. */
static int scan(const rd_edge *e, found **out, size_t *count, char *err, size_t errlen)
{
    char path[FILE_MAX];
    size_t n = 0, cap = 0;
    found *list = NULL;
    if (mkdir(e->dir, 0700) < 0 && errno != EEXIST) {
        int r = -errno;
        snprintf(err, errlen, "CACHE_DIR: cannot create %s (%s)", e->dir, strerror(errno));
        return r;
    }
    snprintf(path, sizeof(path), "%s/tmp", e->dir);
    mkdir(path, 0700);
    DIR *d = opendir(path);
    for (struct dirent *de; d != NULL && (de = readdir(d)) != NULL;)
        if (de->d_name[0] != '.')
            unlinkat(dirfd(d), de->d_name, 0); /* fetches a stop cut short */
    if (d != NULL)
        closedir(d);
    for (int x = 0; x < 256; x++) {
        snprintf(path, sizeof(path), "%s/%02x", e->dir, x);
        if (mkdir(path, 0700) < 0 && errno != EEXIST) {
            int r = -errno;
            snprintf(err, errlen, "CACHE_DIR: cannot create %s (%s)", path, strerror(errno));
            free(list);
            return r;
        }
        d = opendir(path);
        for (struct dirent *de; d != NULL && (de = readdir(d)) != NULL;) {
            cache_key k;
            struct stat st;
            if (parse_name(de->d_name, &k) < 0 ||
                fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode))
                continue;
            if (n == cap) {
                cap = cap ? cap * 2 : 256;
                list = rd_realloc(list, cap * sizeof(*list), "reading the edge cache");
            }
            list[n++] = (found){k, (uint64_t)st.st_size, st.st_atim};
        }
        if (d != NULL)
            closedir(d);
    }
    *out = list;
    *count = n;
    return 0;
}

static void make_metrics(rd_edge *e)
{
#define SERIES(var, name, help, kind)                                                              \
    e->var = metrics_series(metrics_family(name, help, kind, NULL, NULL, 0), NULL)
    SERIES(hits, "reeld_edge_cache_hits_total", "Edge requests served from the disk cache.",
           RD_COUNTER);
    SERIES(misses, "reeld_edge_cache_misses_total",
           "Edge requests for segments not in the disk cache.", RD_COUNTER);
    SERIES(bytes_served, "reeld_edge_bytes_served_total", "Body bytes the edge sent.", RD_COUNTER);
    SERIES(evictions, "reeld_edge_cache_evictions_total",
           "Objects removed from the disk cache to stay within CACHE_MAX_BYTES.", RD_COUNTER);
    SERIES(coalesced, "reeld_edge_coalesced_waiters_total",
           "Requests that joined an origin fetch under way (a playlist's: or one whose end the "
           "loop saw as they arrived).",
           RD_COUNTER);
    SERIES(playlist_kept_hits, "reeld_edge_playlist_kept_hits_total",
           "Playlist requests answered from a read that ended before they came, its file "
           "watched and unchanged since (fs origin).",
           RD_COUNTER);
    SERIES(cache_bytes, "reeld_edge_cache_bytes", "Bytes in the disk cache.", RD_GAUGE);
    SERIES(cache_objects, "reeld_edge_cache_objects", "Objects in the disk cache.", RD_GAUGE);
    SERIES(fetch_seconds, "reeld_edge_origin_fetch_seconds",
           "Time an origin GET took, start to end.", RD_HISTOGRAM);
#undef SERIES
    rd_metric *fetches = metrics_family("reeld_edge_origin_fetches_total", "Origin GETs by result.",
                                        RD_COUNTER, "result", NULL, 0);
    e->fetch_ok = metrics_series(fetches, (const char *const[]){"ok"});
    e->fetch_missing = metrics_series(fetches, (const char *const[]){"not_found"});
    e->fetch_failed = metrics_series(fetches, (const char *const[]){"error"});
    rd_metric *rejected =
        metrics_family("reeld_edge_token_rejected_total", "Playback links refused, by reason.",
                       RD_COUNTER, "reason", NULL, 0);
    e->token_bad = metrics_series(rejected, (const char *const[]){"bad"});
    e->token_expired = metrics_series(rejected, (const char *const[]){"expired"});
    e->deleted_refused = metrics_series(rejected, (const char *const[]){"deleted"});
}

static int load_keys(rd_edge *e, const rd_config *cfg, char *err, size_t errlen)
{
    int r = edgekey_keyring(cfg, &e->keys, err, errlen);
    if (r == 0 && cfg->edge_signing_key == NULL && cfg->s3_endpoint != NULL)
        log_warn("edge_key_local",
                 KV_STR("hint", "EDGE_SIGNING_KEY is unset: links signed here play only on "
                                "machines sharing this data directory"));
    return r;
}

static const rd_actor_def cache_def = {
    .name = "cache_manager", .init = cache_init, .handle = cache_handle, .fini = cache_fini};

int cache_start(const rd_config *cfg, rd_loop *const *loops, int nloops, rd_actor *store,
                rd_http_routes *routes, rd_edge **out, char *err, size_t errlen)
{
    assert(nloops >= 1 && nloops <= MAX_SHARDS);
    rd_edge *e = rd_calloc(1, sizeof(*e), "starting the edge");
    *out = e;
    e->store = store;
    e->link_ttl_ms = (int64_t)cfg->edge_link_ttl_sec * 1000;
    int r = load_keys(e, cfg, err, errlen);
    if (r < 0)
        return r;
    r = cors_parse(&e->cors, cfg->playback_allowed_origins, "PLAYBACK_ALLOWED_ORIGINS", err,
                   errlen);
    if (r < 0)
        return r;
    if ((cfg->cache_dir[0]
             ? snprintf(e->dir, sizeof(e->dir), "%s", cfg->cache_dir)
             : snprintf(e->dir, sizeof(e->dir), "%s/cache", cfg->data_dir)) >= DIR_MAX) {
        snprintf(err, errlen, "CACHE_DIR: path longer than %d bytes", DIR_MAX);
        return -ENAMETOOLONG;
    }
    e->fetch_timeout_ms = (uint32_t)cfg->fetch_timeout_ms;
    e->nshards = nloops;
    e->shard_bytes = (uint64_t)cfg->cache_max_bytes / (uint64_t)nloops;
    r = blob_aio_open(cfg, loops, nloops, e->fetch_timeout_ms, &e->blobs, err, errlen);
    if (r < 0)
        return r;
    r = origin_blob_create(e->blobs, cfg->s3_bucket_previews, &e->origin);
    if (r < 0) {
        snprintf(err, errlen, "edge: cannot set up the origin (%s)", strerror(-r));
        return r;
    }
    r = origin_thumb_create(e->origin, &e->thumbs);
    if (r < 0) {
        snprintf(err, errlen, "edge: cannot start the thumbnail renderer (%s)", strerror(-r));
        return r;
    }
    make_metrics(e);

    found *list = NULL;
    size_t count = 0;
    r = scan(e, &list, &count, err, errlen);
    if (r < 0)
        return r;
    e->shards = rd_calloc((size_t)nloops, sizeof(*e->shards), "starting the edge");
    for (int i = 0; i < nloops; i++) {
        e->shards[i].e = e;
        e->shards[i].idx = i;
        e->shards[i].ino_fd = -1;
        e->shards[i].deny = rd_calloc(DENY_MAX, sizeof(deny_entry), "starting the edge");
        cache_index_init(&e->shards[i].ix, e->shard_bytes);
    }
    /* Oldest first, so the most recently stored end up most recently used. */
    if (count > 0)
        qsort(list, count, sizeof(*list), by_age);
    uint64_t evicted = 0;
    for (size_t i = 0; i < count; i++) {
        cache_index_insert(&e->shards[owner_of(e, list[i].key)].ix, list[i].key, list[i].size);
        metrics_gauge_add(e->cache_bytes, (int64_t)list[i].size);
        metrics_gauge_add(e->cache_objects, 1);
    }
    free(list);
    for (int i = 0; i < nloops; i++) {
        cache_key k;
        uint64_t size;
        while (cache_index_pop_lru(&e->shards[i].ix, &k, &size)) {
            char path[FILE_MAX];
            file_of(e, k, path, sizeof(path));
            unlink(path);
            evicted++;
            metrics_add(e->evictions, 1);
            metrics_gauge_add(e->cache_bytes, -(int64_t)size);
            metrics_gauge_add(e->cache_objects, -1);
        }
    }
    log_info("edge_cache", KV_STR("dir", e->dir), KV_INT("objects", (int64_t)count - evicted),
             KV_INT("evicted", evicted), KV_INT("max_bytes", cfg->cache_max_bytes),
             KV_STR("origin", blob_aio_kind(e->blobs)));

    rd_actor **actors = rd_calloc((size_t)nloops, sizeof(*actors), "starting the edge");
    for (int i = 0; i < nloops && r == 0; i++) {
        r = actor_spawn(loops[i], &cache_def, &e->shards[i], &actors[i]);
        e->shards[i].self = actors[i];
    }
    if (r == 0) {
        r = http_routes_add(routes, "/hls/{exp}/{sig}/{asset}/{path...}",
                            RD_HTTP_GET | RD_HTTP_OPTIONS, actors, nloops, 0,
                            e->fetch_timeout_ms + 2000);
    }
    free(actors);
    if (r < 0) {
        snprintf(err, errlen, "edge: cannot start (%s)", strerror(-r));
        return r;
    }
    return 0;
}

void cache_free(rd_edge *e)
{
    if (e == NULL)
        return;
    for (int i = 0; e->shards != NULL && i < e->nshards; i++) {
        shard *sh = &e->shards[i];
        while (sh->kept_old != NULL)
            kept_drop(sh->kept_old);
        while (sh->flights != NULL) {
            flight *f = sh->flights;
            flight_unlist(f);
            while (f->waiters) {
                job *j = f->waiters;
                f->waiters = j->fnext;
                job_free(j);
            }
            f->disk_busy = 0;
            f->get = NULL;
            f->timeout.slot = 0; /* its loop is gone: nothing to disarm */
            flight_free(f);
        }
        for (int s = 0; s < e->nshards; s++)
            buf_unref(sh->touch[s]);
        while (sh->spare != NULL) {
            job *j = sh->spare;
            sh->spare = j->fnext;
            free(j);
        }
        cache_index_fini(&sh->ix);
        watch_refs_fini(&sh->wds);
        if (sh->ino_fd >= 0)
            close(sh->ino_fd);
        free(sh->deny);
    }
    free(e->shards);
    origin_destroy(e->thumbs);
    origin_destroy(e->origin);
    blob_aio_close(e->blobs);
    edge_keyring_clear(&e->keys);
    free(e);
}
