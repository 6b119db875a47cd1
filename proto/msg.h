/* The message catalogue: every message that crosses an actor boundary, in one list.
 *
 * A message is a header (rd_msg) followed by one payload struct named in RD_MESSAGES. Payloads
 * are plain data: numbers, fixed arrays, and rd_buf references for anything big (a reference is
 * moved with the message, never copied). Add a message by adding its payload struct and one
 * line to RD_MESSAGES; msg_new() (src/rt/msg.h) then knows its size and name. This file
 * includes nothing of the runtime: it is the catalogue, not the envelope. */
#ifndef REELD_PROTO_MSG_H
#define REELD_PROTO_MSG_H

#include <stddef.h>
#include <stdint.h>

#include "proto/jobs.h"

struct rd_actor;
struct s3_op;
typedef struct rd_buf rd_buf; /* src/rt/buf.h: payloads hold references, never look inside */

/* Runtime messages. */
struct rd_msg_ping {
    uint64_t seq;      /* sender's sequence number */
    uint64_t sent_ns;  /* monotonic clock at send, for latency measurements */
    uint32_t producer; /* which producer sent it (tests check per-producer order) */
};
struct rd_msg_stop {
    uint32_t reason; /* 0: shutdown */
};

/* HTTP: a parsed request handed by the listener to a route's target actor (as a request:
 * actor_request, so the reply finds its way back), the reply that becomes the response, and
 * the later parts of a streamed response (plain sends to the listener, the request's `from`).
 * Readers and builders are in actors/http_listener.h. */
typedef struct rd_http_field {
    uint32_t name_off, name_len; /* offsets into the request's raw->data */
    uint32_t value_off, value_len;
} rd_http_field;

#define RD_HTTP_MAX_PARAMS 4

struct rd_msg_http_request {
    rd_buf *raw;        /* head, decoded body, then the field array; the message's reference */
    uint8_t raw_inline; /* raw lies in the message's own tail (msg_new_tail): freed with it */
    uint64_t stream;    /* names this response for MSG_HTTP_PART */
    uint64_t recv_ns;   /* monotonic time the head was complete */
    uint32_t route;     /* id returned by http_routes_add */
    uint32_t method;    /* one RD_HTTP_* bit */
    uint32_t path_off, path_len;     /* path without the query */
    uint32_t query_off, query_len;   /* after '?'; len 0 when none */
    uint32_t fields_off, num_fields; /* rd_http_field[num_fields] at raw->data + fields_off */
    uint32_t body_off, body_len;
    uint32_t param_off[RD_HTTP_MAX_PARAMS], param_len[RD_HTTP_MAX_PARAMS]; /* {name} matches */
    uint32_t num_params;
    uint8_t minor;           /* HTTP/1.<minor> */
    uint8_t body_stream;     /* 1: the body follows as MSG_HTTP_BODY (RD_HTTP_STREAM_BODY routes) */
    uint8_t body_refused;    /* 1: the route's gate refused the head, so its body was not read
                              * (body_len 0): the target answers (401/403) without it */
    uint64_t content_length; /* with body_stream: the body's length */
    char peer[48];           /* the client's address as text ("127.0.0.1", "::1"); "" unknown */
};

#define RD_HTTP_SMALL_BODY 256

struct rd_msg_http_response {
    uint16_t status;
    uint8_t more;           /* 1: MSG_HTTP_PART messages follow; the last has last = 1 */
    int64_t content_length; /* whole body length; -1 with `more`: sent chunked */
    rd_buf *body;           /* the body (the message's reference), or NULL: small[] */
    uint32_t small_len;
    /* The arrays last: the listener's http_reply* zero what is above and empty these. */
    char content_type[64];          /* empty: no Content-Type */
    char headers[1024];             /* extra header lines, each ending in CRLF (CORS lines and a
                                     * download's Content-Disposition fit) */
    char small[RD_HTTP_SMALL_BODY]; /* a short body, copied in */
};

/* A part's body is either bytes in memory (`body`) or, with `file` set, a range of an open
 * file that the listener splices to the socket without copying it (http_send_file_part). The
 * message owns `fd` then: msg_free closes it, so a part dropped anywhere leaks no descriptor. */
struct rd_msg_http_part {
    uint64_t stream;         /* the request's stream */
    rd_buf *body;            /* the message's reference; NULL for an empty last part */
    struct rd_actor *ack_to; /* NULL, or who gets MSG_HTTP_PART_ACK once this part has left */
    uint8_t last;            /* ends the response */
    uint8_t file;            /* 1: the body is [file_off, file_off + file_len) of fd */
    int32_t fd;              /* with `file`: the message's descriptor, closed by msg_free */
    uint64_t file_off, file_len;
};

/* Flow control of streamed responses: the part's bytes are in the kernel's socket buffer
 * (failed = 0), or the client is gone and nothing more will be sent (failed = 1). */
struct rd_msg_http_part_ack {
    uint64_t stream;
    uint64_t bytes; /* body bytes of the part acknowledged */
    uint8_t failed;
};

/* A piece of a streamed request body (routes with RD_HTTP_STREAM_BODY), sent by the listener to
 * the route's target after the MSG_HTTP_REQUEST, in order; the target answers each with
 * MSG_HTTP_BODY_ACK to the listener once it has used the bytes (flow control). */
struct rd_msg_http_body {
    uint64_t stream; /* the request's stream */
    rd_buf *data;    /* the message's reference; NULL when failed */
    uint8_t last;    /* the body is complete */
    uint8_t failed;  /* the client is gone or stalled: the body will not complete */
};
struct rd_msg_http_body_ack {
    uint64_t stream;
    uint64_t bytes; /* body bytes used */
};

/* Edge cache: hits a loop served from a shard it does not own, so the owner can keep its LRU
 * order (sent in batches to the owning cache-manager). */
struct rd_msg_cache_touch {
    rd_buf *keys; /* cache_key[n] (src/edge/cache_index.h); the message's reference */
    uint32_t n;
};

/* Edge: assets the store says were deleted (the asset names of their links), from the
 * cache-manager that asked the store to the others. */
struct rd_msg_edge_deleted {
    uint32_t n;
    int64_t until_ms[RD_STORE_BATCH]; /* refuse its links until then (they expire by then) */
    char assets[RD_STORE_BATCH][RD_STORE_TEXT_MAX];
};

/* Media jobs (actors/gpu_encoder.c). A job's outputs, progress and end go to its `sink`. */
struct rd_msg_transcode {
    uint64_t job;
    struct rd_actor *sink; /* gets HLS_OBJECT, TRANSCODE_PROGRESS and one TRANSCODE_DONE */
    char input[1024];      /* local path of the master, or its key in `bucket` */
    char bucket[64];       /* non-empty: `input` is a key of this bucket of the encoder's blob
                            * store (read by ranged GETs) */
    char preset[8];        /* auto|1080p|720p|480p; empty: the encoder's default */
    int32_t segment_sec;   /* 0: the encoder's default */
    char format[8];        /* ts|fmp4; empty: the encoder's default */
    uint8_t mp4;           /* also download.mp4 (else the encoder's MP4_DOWNLOAD decides) */
    uint8_t has_poster_time;
    uint8_t cascade;    /* CPU: each rung scaled from the next larger one (transcode_opts) */
    double poster_time; /* seconds into the video, when has_poster_time */
    /* An export (src/media/export.h) instead of a ladder: the range of the master, the output
     * height (0: the source's), the WebVTT to burn in (a key of `out_bucket`; "": none), and
     * where the MP4 goes. The encoder stores it itself (no HLS_OBJECT) and its TRANSCODE_DONE
     * goes to `sink`. */
    uint8_t export_mp4;
    uint8_t master_quality; /* export: a clip's master, kept for later ladders (near lossless) */
    int32_t height;
    int64_t start_ms, end_ms;
    char captions_key[256];
    char out_bucket[64];
    char out_key[256];
    /* Set for a master (a clip's): the MP4 is stored in `via_bucket` under out_key first, then
     * copied into out_bucket with Object Lock retention (lock_days > 0, in lock_mode), as
     * promotion copies uploads: S3 wants a checksum of every write that sets a retention,
     * which a copy carries and a streamed PUT does not. The staged copy is deleted after. */
    char via_bucket[64];
    int32_t lock_days;
    char lock_mode[16]; /* "GOVERNANCE" or "COMPLIANCE" */
};
struct rd_msg_transcode_cancel {
    uint64_t job; /* stops the job within a second; its TRANSCODE_DONE says -ECANCELED */
};
struct rd_msg_hls_object {
    uint64_t job;
    char name[64]; /* "720p/seg_00003.ts" (or "720p/init.mp4" and "720p/seg_00003.m4s"),
                    * "720p/index.m3u8", "master.m3u8", "poster.jpg": hls_content_type gives the
                    * Content-Type */
    uint8_t *data; /* malloc'd bytes that move with the message: a receiver that keeps them sets
                    * data to NULL; msg_free frees whatever is still attached */
    size_t len;
};
struct rd_msg_transcode_progress {
    uint64_t job;
    double percent, fps, speed, media_sec;
    int64_t frames;
};
struct rd_msg_transcode_done {
    uint64_t job;
    int32_t status;  /* 0, -ECANCELED, -EBUSY (the encoder was busy) or another -errno */
    char error[256]; /* one sentence for the user when status < 0 */
    char encoder[8]; /* nvenc|x264 */
    char preset[8];  /* the ladder used */
    int32_t rungs;
    int64_t frames, segments;
    double media_sec, wall_sec;
    int64_t peak_rss_kb;
    int32_t nladder; /* video renditions, as published */
    struct {
        char name[8];
        int32_t width, height, kbps;
    } ladder[4];
};

/* HLS upload (actors/s3_uploader.c). Whoever starts a job registers it with the uploader before
 * sending the TRANSCODE that names the uploader as its sink. */
struct rd_msg_upload_job {
    uint64_t job;
    char asset[64];           /* objects go to S3_BUCKET_PREVIEWS under {asset}/hls/ */
    struct rd_actor *notify;  /* gets the job's TRANSCODE_PROGRESS and TRANSCODE_DONE (passed on),
                               * then one UPLOAD_DONE; NULL: nobody */
    struct rd_actor *encoder; /* NULL, or the encoder running the job: it gets TRANSCODE_CANCEL
                               * when the upload fails first, so a doomed job stops encoding */
};
struct rd_msg_upload_done {
    uint64_t job;
    int32_t status;  /* 0: every object landed, master last; else -errno, the master absent */
    char error[512]; /* one sentence when status < 0 (the S3 message when S3 refused) */
    char asset[64];
    int64_t objects; /* objects stored */
    int64_t bytes;   /* bytes stored */
    double wall_sec; /* registration to the last object landed */
};

/* Blob storage. */
struct rd_msg_s3_call {
    struct s3_op *op; /* borrowed until op->done (src/blob/s3.h: s3_call waits for it) */
};

/* Any thread -> a blob store's actor on its home loop (src/blob/aio.h): start this request. */
struct rd_msg_blob_call {
    struct blob_req *req; /* the store's from now on */
};

/* Edge (src/edge/origin_thumb.c) -> its render thread: decode this segment's frame. */
struct rd_msg_thumb_render {
    struct thumb_get *get; /* borrowed until the render writes its wake byte */
};

/* X(NAME, payload struct tag): MSG_NAME is the type, struct rd_msg_<tag> the payload. */
/* API -> progress-stream: follow this asset on a response already started (text/event-stream)
 * for `stream` of `listener`. */
struct rd_msg_sse_open {
    struct rd_actor *listener;
    uint64_t stream;
    char public_id[RD_ASSET_ID_MAX];
    char org[64];          /* "": any org (the open embedded mode) */
    int64_t last_event_id; /* from Last-Event-ID; -1: none */
};

#define RD_MESSAGES(X)                                                                             \
    X(PING, ping)                                                                                  \
    X(PONG, ping)                                                                                  \
    X(STOP, stop)                                                                                  \
    X(HTTP_REQUEST, http_request)                                                                  \
    X(HTTP_RESPONSE, http_response)                                                                \
    X(HTTP_PART, http_part)                                                                        \
    X(HTTP_PART_ACK, http_part_ack)                                                                \
    X(HTTP_BODY, http_body)                                                                        \
    X(HTTP_BODY_ACK, http_body_ack)                                                                \
    X(TRANSCODE, transcode)                                                                        \
    X(TRANSCODE_CANCEL, transcode_cancel)                                                          \
    X(HLS_OBJECT, hls_object)                                                                      \
    X(TRANSCODE_PROGRESS, transcode_progress)                                                      \
    X(TRANSCODE_DONE, transcode_done)                                                              \
    X(CACHE_TOUCH, cache_touch)                                                                    \
    X(EDGE_DELETED, edge_deleted)                                                                  \
    X(S3_CALL, s3_call)                                                                            \
    X(BLOB_CALL, blob_call)                                                                        \
    X(STORE, store)                                                                                \
    X(JOB_PULL, job_pull)                                                                          \
    X(JOB_ASSIGN, job_assign)                                                                      \
    X(JOB_PROGRESS, job_progress)                                                                  \
    X(JOB_DONE, job_done)                                                                          \
    X(JOB_CANCEL, job_cancel)                                                                      \
    X(UPLOAD_JOB, upload_job)                                                                      \
    X(UPLOAD_DONE, upload_done)                                                                    \
    X(SSE_OPEN, sse_open)                                                                          \
    X(THUMB_RENDER, thumb_render)

typedef enum rd_msg_type {
    MSG_NONE = 0,
#define RD_MSG_ENUM(name, tag) MSG_##name,
    RD_MESSAGES(RD_MSG_ENUM)
#undef RD_MSG_ENUM
        MSG_COUNT
} rd_msg_type;

/* The message's name ("HTTP_REQUEST") and its payload's size. The envelope (the header, the
 * allocation, what a dropped message releases) is the runtime's: src/rt/msg.h. */
const char *msg_name(rd_msg_type type);
size_t msg_payload_size(rd_msg_type type);

#endif
