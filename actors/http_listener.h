/* The HTTP/1.1 listener (one per loop) and its router: how a request reaches an actor and how
 * the actor's reply becomes the response.
 *
 * Routes are registered before the listeners start, by path pattern, methods, target actor(s),
 * body limit and reply timeout. The listener parses a request, copies its head and body into
 * one rd_buf, and sends MSG_HTTP_REQUEST to the route's target with actor_request. The target
 * answers with actor_reply(MSG_HTTP_RESPONSE) (the helpers below build one); a response with
 * `more` set is streamed: MSG_HTTP_PART messages follow, sent to the request's `from` (the
 * listener) with the request's `stream`, the last one with `last` = 1; a part's body is bytes
 * (an rd_buf) or a range of an open file, spliced to the socket (http_send_file_part).
 * Responses leave in the order the requests came (pipelining). HEAD is routed like GET; the
 * listener drops the body.
 *
 * A target that does not answer within the route's timeout gets the client a 504; one whose
 * mailbox is full a 503 with Retry-After. Streamed parts can be acknowledged once sent (flow
 * control, see http_send_part). */
#ifndef REELD_ACTORS_HTTP_LISTENER_H
#define REELD_ACTORS_HTTP_LISTENER_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "proto/http1.h"
#include "src/rt/msg.h"
#include "src/rt/actor.h"
#include "src/rt/loop.h"

/* Methods, as bits of a route's mask. */
enum {
    RD_HTTP_GET = 1 << 0,
    RD_HTTP_HEAD = 1 << 1,
    RD_HTTP_POST = 1 << 2,
    RD_HTTP_PUT = 1 << 3,
    RD_HTTP_DELETE = 1 << 4,
    RD_HTTP_PATCH = 1 << 5,
    RD_HTTP_OPTIONS = 1 << 6,
    /* Not a method: the route's request bodies are streamed, not buffered. The target gets
     * MSG_HTTP_REQUEST as soon as the head is in (body_stream = 1, content_length set), then
     * the body as MSG_HTTP_BODY messages in order, the last with `last` (or one with `failed`
     * when the client goes away or stalls past REELD_HTTP_IDLE_TIMEOUT_MS). The target answers
     * each with http_body_ack once it has used the bytes; the listener keeps at most
     * RD_HTTP_BODY_WINDOW bytes unacknowledged per request, and stops reading the socket
     * meanwhile. Such a body needs a Content-Length (chunked: 411); body_limit bounds it (413)
     * but not memory. A reply sent before the last part ends the connection after the
     * response (the rest of the body is not read). */
    RD_HTTP_STREAM_BODY = 1 << 8,
};

#define RD_HTTP_BODY_CHUNK         (64 * 1024) /* bytes per MSG_HTTP_BODY (the last may be fewer) */
#define RD_HTTP_BODY_WINDOW        (4 * RD_HTTP_BODY_CHUNK)

#define RD_HTTP_MAX_ROUTES         64
#define RD_HTTP_DEFAULT_BODY_LIMIT (1 << 20)
#define RD_HTTP_DEFAULT_TIMEOUT_MS 30000

typedef struct rd_http_routes rd_http_routes;

/* An empty route table; always 0 (out of memory aborts with one line, the runtime's rule). */
int http_routes_create(rd_http_routes **out);
/* Frees a table no listener uses any more. NULL is a no-op. */
void http_routes_destroy(rd_http_routes *routes);

/* Adds a route and returns its id (>= 0; MSG_HTTP_REQUEST carries it), or -EINVAL for a bad
 * pattern, -ENOSPC past RD_HTTP_MAX_ROUTES, or -EEXIST (logged as route_conflict, naming
 * both patterns and their actors) when a path and method it takes are another route's: a
 * route has exactly one owner. Before http_listener_start only.
 *
 *   pattern:    "/api/assets/{id}/promote": literal segments, "{name}" matches one non-empty
 *               segment, a last "{name...}" matches the rest of the path (at least one byte);
 *               matches arrive as params in order.
 *   methods:    RD_HTTP_* bits; GET implies HEAD.
 *   targets:    the actor that handles it, or one per loop: the listener of loop i sends to
 *               targets[i % ntargets] (keeps cheap routes on their own core). Copied.
 *   body_limit: largest request body accepted (larger: 413); 0 refuses any body.
 *   timeout_ms: how long the listener waits for the reply (0: RD_HTTP_DEFAULT_TIMEOUT_MS). */
int http_routes_add(rd_http_routes *routes, const char *pattern, unsigned methods,
                    rd_actor *const *targets, int ntargets, size_t body_limit, uint32_t timeout_ms);

/* A route's gate: called on the listener's loop with a request's head (and the client's
 * address as text) before its body is read. 0 lets the body in; anything else means the head
 * is refused (no or bad credentials): the body is not read, the target still gets the request
 * with body_refused = 1 and no body, answers it (so refusals are counted and rate-limited in
 * one place), and the connection ends after the answer. A gate runs on every loop at once: it
 * reads only what does not change after start, and never blocks. */
typedef int (*rd_http_gate)(void *ctx, const http1_request *req, const char *peer);

/* Sets the gate of route `id` (from http_routes_add). 0, or -EINVAL for an unknown id. */
int http_routes_gate(rd_http_routes *routes, int id, rd_http_gate gate, void *ctx);

/* Listener settings (from rd_config: REELD_HTTP_*). */
typedef struct rd_http_config {
    uint32_t header_timeout_ms;    /* REELD_HTTP_HEADER_TIMEOUT_MS: head must arrive (408) */
    uint32_t idle_timeout_ms;      /* REELD_HTTP_IDLE_TIMEOUT_MS: keep-alive idle, then close */
    uint32_t max_conns;            /* REELD_HTTP_MAX_CONNS: open connections, all loops (503) */
    uint32_t max_conns_per_client; /* REELD_HTTP_MAX_CONNS_PER_CLIENT: per address (503); 0: none */
    uint32_t body_min_rate;        /* REELD_HTTP_BODY_MIN_RATE: bytes/s per 10 s window; 0: off */
    /* HTTPS: every connection speaks TLS through this (REELD_TLS_CERT/KEY); NULL: plain HTTP.
     * Shared by every loop's listener; it must outlive them. */
    struct tls_server *tls;
    /* Non-zero: a redirect listener (REELD_HTTP_REDIRECT_LISTEN). It routes nothing: every
     * request gets 308 to https://<its Host, without port>[:redirect_port]<target>. */
    uint16_t redirect_port;
} rd_http_config;

/* Opens the listening socket of one loop on `addr` (host:port, SO_REUSEPORT so every loop
 * has its own) and spawns the listener actor on `loop`, which accepts and serves with
 * `routes` (shared, read-only from now on). Call once per loop from the starting thread.
 * 0 or -errno (the socket could not be bound: the address is in use, ...). */
int http_listener_start(rd_loop *loop, int nloops, const char *addr, const rd_http_config *cfg,
                        const rd_http_routes *routes, rd_actor **out);

/* Frees what the listener `a` holds (connections, buffers, socket) once its loop has stopped
 * and before actor_free_all. NULL is a no-op. */
void http_listener_free(rd_actor *a);

/* ---- for route targets: reading a MSG_HTTP_REQUEST ---- */

typedef struct rd_msg_http_request rd_http_request;

static inline http1_str http_request_path(const rd_http_request *r)
{
    return (http1_str){r->raw->data + r->path_off, r->path_len};
}
static inline http1_str http_request_query(const rd_http_request *r)
{
    return (http1_str){r->raw->data + r->query_off, r->query_len};
}
static inline http1_str http_request_body(const rd_http_request *r)
{
    return (http1_str){r->raw->data + r->body_off, r->body_len};
}
/* The i-th {name} match of the route's pattern; empty past num_params. */
http1_str http_request_param(const rd_http_request *r, uint32_t i);
/* 1 when the request came from a loopback address (127.0.0.0/8, ::1, ::ffff:127.x). */
int http_request_from_loopback(const struct rd_msg_http_request *q);

/* The first header named `name` (case-insensitive); p == NULL when absent. */
http1_str http_request_header(const rd_http_request *r, const char *name);

/* ---- for route targets: answering ---- */

/* Replies to `request` (a MSG_HTTP_REQUEST) with a complete response; the body is copied.
 * `content_type` may be NULL. 0 or -errno as actor_reply (the reply is freed on failure). */
int http_reply(const rd_msg *request, int status, const char *content_type, const void *body,
               size_t len);
/* The same with extra header lines (each ending in CRLF; NULL: none; they must fit
 * rd_msg_http_response.headers). */
int http_reply_headers(const rd_msg *request, int status, const char *content_type,
                       const void *body, size_t len, const char *headers);
/* The same with a body the caller built: the reference `body` moves into the reply (NULL: an
 * empty body). http_reply_buf_headers adds extra header lines as http_reply_headers. */
int http_reply_buf(const rd_msg *request, int status, const char *content_type, rd_buf *body);
int http_reply_buf_headers(const rd_msg *request, int status, const char *content_type,
                           rd_buf *body, const char *headers);
/* A reply built in place, for a route owner that writes its header lines straight into
 * rd_msg_http_response.headers instead of building them aside to be copied: the fields zeroed,
 * content_type, headers and small empty. Send it with actor_reply (msg_free it if that
 * fails). */
rd_msg *http_response_new(int status, const char *content_type);
/* An error in the house shape {"error":{"code":…,"message":…}}. */
int http_reply_error(const rd_msg *request, int status, const char *code, const char *message);

/* CORS for route owners (proto/cors.h). http_cors_lines: the lines for the request's Origin
 * under `policy` into out ("" when there is none or it is refused), exposing `expose` (NULL:
 * nothing beyond the safelisted headers). http_reply_preflight: answers an OPTIONS preflight
 * with 204 and, when the origin, method and headers are allowed, the allow lines (else none,
 * and the browser stops). */
struct cors_policy;
void http_cors_lines(const rd_msg *request, const struct cors_policy *policy, const char *expose,
                     char *out, size_t cap);
int http_reply_preflight(const rd_msg *request, const struct cors_policy *policy,
                         const char *methods, const char *const *allowed_headers);

/* Starts a streamed response: status, type, total length (-1: unknown, sent chunked), extra
 * header lines (each ending in CRLF; may be NULL). The body follows with http_send_part. */
int http_reply_stream(const rd_msg *request, int status, const char *content_type,
                      int64_t content_length, const char *headers);
/* Sends one part of a streamed response to `listener` (the request's `from`) for `stream` (the
 * request's); keep both when the request is freed. The reference `body` moves into the message
 * (NULL for an empty last part). 0 or -errno as actor_send; on failure the reference is
 * dropped. A body of 64 KiB or more is sent from the buffer itself (not copied into the
 * connection's output), so the reference is held until its bytes are in the socket buffer.
 *
 * Flow control: with `ack_to` set (the producer itself, usually), MSG_HTTP_PART_ACK comes back
 * once the part's bytes are in the kernel's socket buffer, or with `failed` = 1 when the client
 * is gone and the rest of the response should not be made. A producer that keeps a few parts
 * unacknowledged at a time (say 2 to 4 of 64 KiB) holds a slow client to that much memory.
 * A response of unknown length (content_length -1, an event stream) whose client hangs up
 * (or half-closes) is ended at once, and the `ack_to` of its last part gets one more
 * MSG_HTTP_PART_ACK with `failed` = 1 (bytes 0) even when all its parts were acknowledged,
 * so a stream that sends rarely still learns that its client is gone. A part that was on its
 * way meanwhile is acknowledged as failed too: stop at the first failed ack, ignore the rest. */
int http_send_part(rd_actor *listener, uint64_t stream, rd_buf *body, int last, rd_actor *ack_to);
/* The same with a body that is `len` bytes of the open file `fd` from `off`: the listener
 * splices them file -> pipe -> socket (IORING_OP_SPLICE), so they are never copied in user
 * space. `fd` moves into the message whatever the result: the listener closes it once the
 * bytes have left or the client is gone (on failure here it is closed at once). The file
 * must hold the range: a file that ends early ends the connection, as a short body does. A
 * HEAD response sends nothing of it. `len` > 0; use http_send_part(NULL) for an empty part.
 * The ack, when asked for, comes once all `len` bytes are in the socket buffer. */
int http_send_file_part(rd_actor *listener, uint64_t stream, int fd, uint64_t off, uint64_t len,
                        int last, rd_actor *ack_to);

/* Acknowledges `bytes` of a streamed request body (a MSG_HTTP_BODY's data length) to `listener`
 * (the request's `from`) for `stream`. 0 or -errno as actor_send. */
int http_body_ack(rd_actor *listener, uint64_t stream, uint64_t bytes);

#endif
