/* The S3 client: object operations on any S3-compatible service (AWS, Wasabi, Spaces, MinIO),
 * and the few bucket operations `reeld buckets init` needs, signed with SigV4, over HTTPS
 * (BearSSL) or plain HTTP, on one loop.
 *
 * owns:  per client: the endpoint's resolved addresses, a keep-alive pool of idle connections
 *        per host (at most S3_POOL_IDLE each, closed after S3_POOL_IDLE_SEC unused), the
 *        signing-key cache, the clock-skew correction, and one small actor ("s3") on its loop
 *        that runs the requests of other threads (s3_call). Per operation in flight: its
 *        connection, buffers (about 45 KiB) and timers, freed before `done` runs.
 * takes: MSG_S3_CALL (s3_call's requests, from threads that are not its loop).
 * sends: nothing; results come back through the operation's callbacks. Counts, by operation,
 *        reeld_s3_requests_total{op,outcome}, reeld_s3_retries_total{op} and
 *        reeld_s3_request_seconds{op} (src/rt/metrics.h).
 * never: blocks its loop (DNS is resolved in s3_client_create, before the loop uses the client;
 *        file bodies are read through io_uring); logs a secret or a signature; retries a request
 *        that failed for a reason retrying cannot fix (403, 404, 400 other than RequestTimeout).
 *
 * Stopping: when the loop begins to stop, operations waiting to retry end with -ECANCELED,
 * those on the wire are cancelled, and new ones end at once with -ECANCELED.
 *
 * Threads: s3_client_create/destroy run on a thread that is not a loop (start-up, shutdown).
 * s3_start and every callback run on the client's loop thread: actors of that loop use it
 * directly, one client per loop. s3_call and s3_get_range are for every other thread (thread
 * actors such as encoders, commands): they block until the operation is done.
 *
 * DNS is resolved once, at creation: the endpoint is one name known at start, resolving it on
 * a loop thread would block the loop, and a helper thread per lookup is not worth its cost
 * while S3 endpoints keep their addresses for hours. Every address returned is used, in turn,
 * when a connection attempt fails. A name that changes its addresses needs a restart.
 *
 * Virtual-hosted style sends Host (and SNI) bucket.endpoint-host but connects to the endpoint
 * host's addresses, which AWS, Spaces and Wasabi serve from the same front ends.
 *
 * Retries: up to S3WIRE_MAX_ATTEMPTS attempts on connection errors, timeouts, 5xx, 429,
 * SlowDown, RequestTimeout (proto/s3_wire.h), with full-jitter exponential backoff. A request
 * that reused a kept-alive connection the server had closed is retried at once, uncounted.
 * RequestTimeTooSkewed sets the skew from the response's Date header and retries at once. A GET
 * that fails after part of the body reached on_chunk resumes with a Range from where it stopped,
 * so the caller never sees a byte twice. */
#ifndef REELD_BLOB_S3_H
#define REELD_BLOB_S3_H

#include <stddef.h>
#include <stdint.h>

#include "src/net/tls.h"
#include "src/rt/loop.h"

#define S3_POOL_IDLE       8     /* idle connections kept per host */
#define S3_POOL_IDLE_SEC   20    /* an idle connection older than this is closed, not reused */
#define S3_DEFAULT_TIMEOUT 30000 /* ms an attempt may take, connect to last byte */
#define S3_MAX_KEY         1024  /* bytes of an object key */

typedef struct s3_client s3_client;

typedef struct s3_config {
    const char *endpoint; /* "https://s3.us-east-1.amazonaws.com", "http://127.0.0.1:9000/base" */
    const char *region;   /* "us-east-1" */
    const char *access_key_id;
    const char *secret_access_key;
    int virtual_hosted;         /* 1: bucket.host/key; 0: host/bucket/key (path style) */
    const tls_anchors *anchors; /* trusted CAs for https endpoints; borrowed, outlives the client */
    uint32_t timeout_ms;        /* per attempt; 0: S3_DEFAULT_TIMEOUT */
    int max_attempts;           /* 0: S3WIRE_MAX_ATTEMPTS */
} s3_config;

/* Creates a client for `loop`: parses the endpoint, resolves its host (blocking: not on a loop
 * thread), spawns the client's actor. Strings in `cfg` are copied. Returns 0, or -EINVAL
 * (a bad endpoint, https without anchors) / -EHOSTUNREACH (the name does not resolve) with one
 * sentence in `err`. */
int s3_client_create(s3_client **out, rd_loop *loop, const s3_config *cfg, char *err,
                     size_t errlen);
/* The loop the client runs on. */
rd_loop *s3_client_loop(const s3_client *c);
/* Closes pooled connections and frees the client, once its loop has stopped. NULL is a no-op.
 * Its actor stays registered until actor_free_all. */
void s3_client_destroy(s3_client *c);

typedef enum s3_method {
    S3_PUT,           /* PutObject: body from memory or a file */
    S3_GET,           /* GetObject, whole or a range, streamed to on_chunk */
    S3_HEAD,          /* HeadObject: size, ETag, Content-Type */
    S3_DELETE,        /* DeleteObject (204 also when the key did not exist) */
    S3_COPY,          /* CopyObject from copy_bucket/copy_key, with Object Lock when lock_days */
    S3_MPU_CREATE,    /* CreateMultipartUpload: upload_id comes back */
    S3_MPU_PART,      /* UploadPart part_number of upload_id: etag comes back */
    S3_MPU_COMPLETE,  /* CompleteMultipartUpload of upload_id from parts[] */
    S3_MPU_ABORT,     /* AbortMultipartUpload */
    S3_MPU_PART_COPY, /* UploadPartCopy: part_number of upload_id from copy_bucket/copy_key,
                         bytes range_start .. range_start + range_len - 1; etag comes back */
    S3_PUT_RETENTION, /* PutObjectRetention: body is the <Retention> document */
    /* Bucket operations: no key; a configuration goes as `body` (XML, sent with Content-MD5)
     * and comes back into `resp`. */
    S3_HEAD_BUCKET,          /* HeadBucket: 0 when it exists and may be used, -ENOENT when not */
    S3_CREATE_BUCKET,        /* CreateBucket: body is a CreateBucketConfiguration or empty */
    S3_PUT_BUCKET_CORS,      /* PutBucketCors */
    S3_GET_BUCKET_CORS,      /* GetBucketCors (-ENOENT, code NoSuchCORSConfiguration: none) */
    S3_PUT_BUCKET_LIFECYCLE, /* PutBucketLifecycleConfiguration */
    S3_GET_BUCKET_LIFECYCLE, /* GetBucketLifecycleConfiguration */
    S3_PUT_OBJECT_LOCK,      /* PutObjectLockConfiguration */
    S3_GET_OBJECT_LOCK,      /* GetObjectLockConfiguration (-ENOENT: Object Lock is off) */
    S3_LIST_OBJECTS,         /* ListObjectsV2 of `prefix`, from `continuation` (NULL: the
                                start), at most max_keys (0: 1000): the document into `resp` */
} s3_method;

#define S3_NMETHODS (S3_LIST_OBJECTS + 1)

typedef struct s3_part {
    int number;    /* 1..10000 */
    char etag[80]; /* as UploadPart returned it, quotes included */
} s3_part;

typedef struct s3_op s3_op;
struct s3_op {
    /* The request: set by the caller; strings and buffers are borrowed until `done`. */
    s3_method method;
    const char *bucket;
    const char *key;
    const void *body; /* PUT, MPU_PART: body_len bytes from memory, unless from_file; the
                         bucket PUTs and CREATE_BUCKET: the XML document */
    size_t body_len;
    int from_file; /* 1: the body is file_len bytes of body_fd from file_off */
    int body_fd;
    int64_t file_off;
    uint64_t file_len;
    const char
        *content_type; /* PUT, MPU_CREATE, COPY (then the metadata is replaced); may be NULL */
    const char *cache_control; /* PUT, MPU_CREATE: the object's Cache-Control; may be NULL */
    uint64_t range_start;      /* GET, MPU_PART_COPY: first byte */
    uint64_t range_len;        /* GET: 0 for the whole object from range_start; MPU_PART_COPY */
    const char *copy_bucket;   /* COPY: the source */
    const char *copy_key;
    int lock_days;            /* COPY, MPU_CREATE: > 0 sets retention until now + lock_days */
    const char *lock_mode;    /* with lock_days: "GOVERNANCE" or NULL for "COMPLIANCE" */
    const char *upload_id;    /* MPU_PART, MPU_PART_COPY, MPU_COMPLETE, MPU_ABORT */
    const char *version_id;   /* DELETE: that version of the object (NULL: the current one) */
    const char *prefix;       /* LIST_OBJECTS: keys starting with it (NULL: all) */
    const char *continuation; /* LIST_OBJECTS: NextContinuationToken of the page before */
    int max_keys;             /* LIST_OBJECTS */
    int part_number;          /* MPU_PART, MPU_PART_COPY */
    const s3_part *parts;     /* MPU_COMPLETE: nparts parts in ascending order */
    size_t nparts;
    int bucket_lock; /* CREATE_BUCKET: with Object Lock enabled (and so versioning) */
    char *resp;      /* GET_BUCKET_*, GET_OBJECT_LOCK: the response document, NUL-terminated */
    size_t resp_cap; /* bytes at resp; a larger document fails the operation with -EMSGSIZE */
    /* GET body pieces of a 2xx response, in order, each once. Return 0 to go on, -errno to
     * stop (the operation then ends with that error). The bytes are valid during the call. */
    int (*on_chunk)(s3_op *op, const uint8_t *data, size_t len);
    void (*done)(s3_op *op); /* exactly once, on the loop thread; the op is the caller's again */
    void *ctx;               /* the caller's */

    /* The result, set before `done`. */
    int res;                    /* 0, or -ENOENT (404), -EACCES (403), -EINVAL (other 4xx),
                                   -ERANGE (416), -EIO (5xx after the last retry), -errno of the
                                   connection, or what on_chunk returned */
    int status;                 /* HTTP status of the last attempt; 0 when none arrived */
    int attempts;               /* attempts made */
    int64_t content_length;     /* of the response body (HEAD: the object's size); -1 if unknown */
    int64_t object_size;        /* GET/HEAD: the whole object's size (Content-Range or -Length) */
    char etag[80];              /* PUT, HEAD, GET, COPY, MPU_PART, MPU_COMPLETE */
    char content_type_out[128]; /* HEAD, GET */
    char upload_id_out[256];    /* MPU_CREATE */
    char version_id_out[128];   /* HEAD: x-amz-version-id ("" in an unversioned bucket) */
    char lock_until_out[40];    /* HEAD: x-amz-object-lock-retain-until-date ("" when none) */
    size_t resp_len;            /* GET_BUCKET_*, GET_OBJECT_LOCK: bytes of the document */
    char code[64];              /* S3 error code ("NoSuchKey"), "" when none */
    char message[512];          /* on failure: one sentence for a user */

    /* Private. */
    struct s3_req *req;
    void *waiter;
};

/* Starts `op` on the client's loop thread. The op belongs to the client until `done`. Returns
 * 0, or -EINVAL for a request that cannot be sent (missing bucket, or key of an object
 * operation, a key over S3_MAX_KEY, a content type with control characters, a bucket PUT
 * without a body or GET without `resp`): then `done` is not called. */
int s3_start(s3_client *c, s3_op *op);

/* A thread that is not an event loop: runs `op` on the client's loop and waits for it.
 * op->done is not used; on_chunk runs on the loop thread while the caller waits. Returns
 * op->res, or -EAGAIN / -EPIPE when the client's actor refused the request (mailbox full,
 * stopped), -EDEADLK on any loop's thread (a loop never waits). */
int s3_call(s3_client *c, s3_op *op);

/* A thread that is not an event loop: reads up to `len` bytes of bucket/key from `offset` into
 * `buf`; *got is how many arrived (fewer at the end of the object). Returns 0, -ERANGE when
 * `offset` is at or past the end, or -errno as s3_call; `message` (may be NULL) gets the
 * sentence of a failure. For readers such as an FFmpeg AVIOContext on an encoder thread. */
int s3_get_range(s3_client *c, const char *bucket, const char *key, uint64_t offset, void *buf,
                 size_t len, size_t *got, char *message, size_t msglen);

/* Now by the server's clock: ours plus the skew learnt from a RequestTimeTooSkewed (0 until
 * one came). For dates the server compares with its own (Object Lock retention). */
int64_t s3_client_now(const s3_client *c);

/* The name of `m` as S3 documents it ("PutObject"). */
const char *s3_method_name(s3_method m);

#endif
