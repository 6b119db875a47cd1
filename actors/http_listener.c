/* The HTTP/1.1 listener: one per loop, each with its own SO_REUSEPORT socket.
 *
 * owns:  its listening socket and multishot accept; its connections (a fixed table sized by
 *        the connection cap, each with an input buffer, two output buffers, a timer, a ring
 *        of pipelined requests awaiting replies, and a pipe while it sends a file part); its
 *        provided-buffer ring for multishot recv; the descriptors of the file parts it holds;
 *        a pool of empty pipes; a timer that re-arms accept after running out of descriptors;
 *        with HTTPS, each connection's TLS engine and its record send (the credentials and
 *        session cache belong to the shared tls_server). With every loop's listener it shares
 *        the per-address connection counts (atomic counters in the route table) and the
 *        routes' gates (run here, on the head, before a body is read).
 * takes: MSG_HTTP_PART (later parts of streamed responses: bytes, or a file range spliced to
 *        the socket); MSG_HTTP_BODY_ACK (a target has used part of a streamed request body);
 *        replies (MSG_HTTP_RESPONSE) to the MSG_HTTP_REQUESTs it sent.
 * sends: MSG_HTTP_REQUEST, as actor_request, to the target actor of the matched route, then
 *        MSG_HTTP_BODY for routes that stream bodies; MSG_HTTP_PART_ACK to producers of streamed
 *        parts that ask for one. Counts (src/rt/metrics.h):
 *          reeld_http_requests_total{route,code}, reeld_http_request_duration_seconds{route},
 *          reeld_http_open_connections, reeld_http_rejected_connections_total,
 *          reeld_http_connection_buffers (blocks held by open connections),
 *          and with HTTPS reeld_tls_handshakes_total{outcome}.
 * never: blocks (every socket operation goes through the loop's ring, except setsockopt,
 *        shutdown, close, pipe2 and fcntl, which do not block, and a MSG_DONTWAIT send of a
 *        close_notify); copies a file part's bytes over plain HTTP (nor a large buffer
 *        part's: it is sent from its rd_buf; over HTTPS both pass through the engine); grows
 *        a buffer past its bound (a client that sends faster than it reads is paused, then
 *        cut off); answers out of order; reads a body its route's gate refused; lets a body
 *        trickle below REELD_HTTP_BODY_MIN_RATE; retries a failing accept at once.
 *
 * A connection's life: accept → recv (multishot, provided buffers; bytes are copied into the
 * connection's input buffer and the ring buffer goes straight back) → parse heads as they
 * complete → dispatch each request to its route's actor → responses are written into the
 * output buffer in request order as replies arrive → one send per connection per loop turn,
 * made at the turn's end (loop_at_turn_end), so a head and the parts sent with it leave
 * together (the other output buffer fills while a send is in flight; a file part or a large
 * buffer part waits for the output before it, is spliced or sent on its own, and what came
 * after it is written then) → idle → ...
 * Errors that end the connection are answered, then the write side is shut and the
 * connection lingers until the peer closes (or LINGER_MS), so the error is not lost to a
 * reset. One timer per connection is re-armed lazily: it fires, looks at the state, and
 * either acts (408, idle close) or sleeps until the next deadline. */
#include "actors/http_listener.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <poll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "proto/fnv.h"
#include "proto/wbuf.h"
#include "proto/cors.h"
#include "src/net/tls_server.h"
#include "src/rt/alloc.h"
#include "src/rt/log.h"
#include "src/rt/metrics.h"

#define HEAD_MAX           (16 * 1024) /* request line + headers; larger: 431 */
#define PIPELINE           16          /* requests of one connection awaiting replies */
#define REQUEST_INLINE_MAX 1280        /* a request's bytes up to this travel inside its message */
#define BR_GROUP           0x4854      /* first provided-buffer group id ("HT"); one per listener */
#define BR_ENTRIES         512         /* buffers in the ring (power of two) */
#define BR_SIZE            4096        /* bytes per buffer */
#define IN_BASE            4096        /* first input buffer */
#define OUT_BASE           4096        /* first output buffer */
#define HEAD_ROOM          1024        /* a response head is written in place if it fits */
_Static_assert(IN_BASE == OUT_BASE, "idle connections' spare buffers serve both");
#define BUF_KEEP       (64 * 1024) /* buffers larger than this shrink back when idle */
#define BACKLOG_PAUSE  (64 * 1024) /* unparsed input while stalled: stop reading */
#define OUT_STALL      (1 << 20)   /* pending output: stop parsing until it drains */
#define LINGER_MS      2000        /* after a closing response: wait this long for the peer's FIN */
#define REJECT_RESERVE 64          /* extra slots used only to answer 503 past the cap */
#define PIPE_SIZE      (256 * 1024) /* a splice pipe: file bytes per round trip */
#define PIPE_POOL      64           /* empty pipes a listener keeps for the next file parts */
#define HOLD_MIN       (64 * 1024)  /* buffer parts this large are sent from where they are */
#define TLS_IN_MAX     (64 * 1024)  /* ciphertext the engine has not taken yet; more: cut off */
#define TLS_FBUF       (64 * 1024)  /* HTTPS: a file part's bytes read per round */
#define SERVER_NAME    "reeld"

/* ---- routes ---- */

#define MAX_SEGS 16

typedef struct route {
    char *pattern;
    int nseg;
    struct {
        const char *p;
        uint16_t len;
        uint8_t param; /* {name} */
        uint8_t rest;  /* {name...} */
    } seg[MAX_SEGS];
    unsigned methods;
    rd_actor **targets;
    int ntargets;
    size_t body_limit;
    uint32_t timeout_ms;
    rd_http_gate gate; /* NULL: every body is read */
    void *gate_ctx;
} route;

/* Connections per client address, counted by every loop's listener in one table of buckets
 * (an address hashes to one; two addresses that share a bucket share its bound, which errs on
 * the side of refusing). IPv6 clients are counted per /64, the block one client controls. */
#define CLIENT_BUCKETS 16384

/* The routes and what the listeners of every loop share: made once per server. */
struct rd_http_routes {
    route r[RD_HTTP_MAX_ROUTES];
    /* seg_tag of each route's first segment when it is a literal, else 0: apart from the
     * routes, so skipping one reads 8 bytes of a packed array rather than a line of its own. */
    uint64_t first[RD_HTTP_MAX_ROUTES];
    int n;
    size_t max_body;                /* largest body limit of any route: bounds input buffers */
    _Atomic uint32_t *client_conns; /* [CLIENT_BUCKETS] */
};

int http_routes_create(rd_http_routes **out)
{
    rd_http_routes *r = rd_calloc(1, sizeof(*r), "a route table");
    r->client_conns = rd_calloc(CLIENT_BUCKETS, sizeof(*r->client_conns), "a route table");
    *out = r;
    return 0;
}

int http_routes_gate(rd_http_routes *routes, int id, rd_http_gate gate, void *ctx)
{
    if (routes == NULL || id < 0 || id >= routes->n)
        return -EINVAL;
    routes->r[id].gate = gate;
    routes->r[id].gate_ctx = ctx;
    return 0;
}

void http_routes_destroy(rd_http_routes *routes)
{
    if (routes == NULL)
        return;
    for (int i = 0; i < routes->n; i++) {
        free(routes->r[i].pattern);
        free(routes->r[i].targets);
    }
    free((void *)routes->client_conns);
    free(routes);
}

/* 1 when some path matches both a's segments from i and b's from j (a {param} matches one
 * non-empty segment, a {rest...} one or more). */
static int segs_overlap(const route *a, int i, const route *b, int j)
{
    if (i == a->nseg || j == b->nseg)
        return i == a->nseg && j == b->nseg;
    const typeof(a->seg[0]) *x = &a->seg[i], *y = &b->seg[j];
    if (x->rest || y->rest) {
        const route *o = x->rest ? b : a;
        int k = x->rest ? j : i;
        /* The rest takes anything non-empty: only a lone empty last segment escapes it. */
        return !(k == o->nseg - 1 && !o->seg[k].param && o->seg[k].len == 0);
    }
    if (x->param && y->param)
        return segs_overlap(a, i + 1, b, j + 1);
    if (x->param || y->param)
        return (x->param ? y->len : x->len) > 0 && segs_overlap(a, i + 1, b, j + 1);
    return x->len == y->len && memcmp(x->p, y->p, x->len) == 0 && segs_overlap(a, i + 1, b, j + 1);
}

static const char *owner_name(const route *rt)
{
    return rt->targets[0] && rt->targets[0]->def ? rt->targets[0]->def->name : "?";
}

/* A path segment in 8 bytes (its length and its first 7 bytes; never 0): a route whose first
 * segment is a literal is skipped on an integer compare when a path's first segment differs,
 * so a request does not run the matcher over every route before its own. */
static uint64_t seg_tag(const char *p, size_t len)
{
    /* Byte by byte, as a little-endian load of them would read: copied into a zeroed word
     * instead, the word's load waited for the copy's stores (once per request). */
    size_t n = len < 7 ? len : 7;
    uint64_t t = 0;
    for (size_t i = 0; i < n; i++)
        t |= (uint64_t)(unsigned char)p[i] << (8 * i);
    return t << 8 | ((len & 0x7f) | 0x80);
}

int http_routes_add(rd_http_routes *routes, const char *pattern, unsigned methods,
                    rd_actor *const *targets, int ntargets, size_t body_limit, uint32_t timeout_ms)
{
    if (pattern == NULL || pattern[0] != '/' || ntargets < 1 || targets == NULL || methods == 0)
        return -EINVAL;
    if (routes->n == RD_HTTP_MAX_ROUTES)
        return -ENOSPC;
    route *rt = &routes->r[routes->n];
    memset(rt, 0, sizeof(*rt));
    rt->pattern = strdup(pattern);
    rt->targets = calloc((size_t)ntargets, sizeof(*rt->targets));
    if (rt->pattern == NULL || rt->targets == NULL) {
        free(rt->pattern);
        free(rt->targets);
        return -ENOMEM;
    }
    const char *p = rt->pattern + 1;
    for (;;) {
        const char *e = strchr(p, '/');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (rt->nseg == MAX_SEGS || (rt->nseg > 0 && rt->seg[rt->nseg - 1].rest)) {
            free(rt->pattern);
            free(rt->targets);
            return -EINVAL;
        }
        int param = len >= 2 && p[0] == '{' && p[len - 1] == '}';
        int rest = param && len >= 5 && memcmp(p + len - 4, "...}", 4) == 0;
        rt->seg[rt->nseg].p = p;
        rt->seg[rt->nseg].len = (uint16_t)len;
        rt->seg[rt->nseg].param = (uint8_t)param;
        rt->seg[rt->nseg].rest = (uint8_t)rest;
        rt->nseg++;
        if (e == NULL)
            break;
        p = e + 1;
    }
    memcpy(rt->targets, targets, sizeof(*targets) * (size_t)ntargets);
    rt->ntargets = ntargets;
    routes->first[routes->n] = rt->seg[0].param ? 0 : seg_tag(rt->seg[0].p, rt->seg[0].len);
    rt->methods = methods | ((methods & RD_HTTP_GET) ? RD_HTTP_HEAD : 0);
    /* A route has one owner: a pattern that can match a path another route matches, for a
     * method both take, is refused, so which actor answers never depends on the order of
     * registration. */
    for (int i = 0; i < routes->n; i++) {
        const route *o = &routes->r[i];
        if ((o->methods & rt->methods & ~(unsigned)RD_HTTP_STREAM_BODY) == 0 ||
            !segs_overlap(o, 0, rt, 0))
            continue;
        log_error("route_conflict", KV_STR("route", pattern), KV_STR("owner", owner_name(rt)),
                  KV_STR("overlaps", o->pattern), KV_STR("owned_by", owner_name(o)));
        free(rt->pattern);
        free(rt->targets);
        return -EEXIST;
    }
    rt->body_limit = body_limit;
    rt->timeout_ms = timeout_ms ? timeout_ms : RD_HTTP_DEFAULT_TIMEOUT_MS;
    if (body_limit > routes->max_body && !(methods & RD_HTTP_STREAM_BODY))
        routes->max_body = body_limit;
    return routes->n++;
}

/* Matches `path` against the route; fills params (offsets relative to path). */
static int route_match(const route *rt, http1_str path, uint32_t *poff, uint32_t *plen,
                       uint32_t *np)
{
    size_t i = 0;
    *np = 0;
    for (int s = 0; s < rt->nseg; s++) {
        if (i >= path.len || path.p[i] != '/')
            return 0;
        i++;
        size_t start = i;
        if (rt->seg[s].rest) {
            if (i == path.len)
                return 0;
            i = path.len;
        } else {
            const char *e = memchr(path.p + i, '/', path.len - i);
            i = e ? (size_t)(e - path.p) : path.len;
        }
        size_t len = i - start;
        if (rt->seg[s].param) {
            if (len == 0)
                return 0;
            if (*np < RD_HTTP_MAX_PARAMS) {
                poff[*np] = (uint32_t)start;
                plen[*np] = (uint32_t)len;
                (*np)++;
            }
        } else if (len != rt->seg[s].len || memcmp(path.p + start, rt->seg[s].p, len) != 0) {
            return 0;
        }
    }
    return i == path.len;
}

static unsigned method_bit(http1_str m)
{
    static const struct {
        const char *name;
        unsigned bit;
    } methods[] = {{"GET", RD_HTTP_GET},        {"HEAD", RD_HTTP_HEAD},
                   {"POST", RD_HTTP_POST},      {"PUT", RD_HTTP_PUT},
                   {"DELETE", RD_HTTP_DELETE},  {"PATCH", RD_HTTP_PATCH},
                   {"OPTIONS", RD_HTTP_OPTIONS}};
    for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++)
        if (m.len == strlen(methods[i].name) && memcmp(m.p, methods[i].name, m.len) == 0)
            return methods[i].bit;
    return 0;
}

static void allow_header(unsigned methods, char *out, size_t cap)
{
    static const char *const names[] = {"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"};
    size_t n = (size_t)snprintf(out, cap, "Allow: ");
    int first = 1;
    for (int i = 0; i < 7 && n < cap; i++) {
        if (methods & (1u << i)) {
            n += (size_t)snprintf(out + n, cap - n, "%s%s", first ? "" : ", ", names[i]);
            first = 0;
        }
    }
    if (n < cap)
        snprintf(out + n, cap - n, "\r\n");
}

/* ---- connections ---- */

typedef struct listener listener;

enum { SLOT_FREE, SLOT_WAIT, SLOT_READY, SLOT_STREAM };

typedef struct slot {
    uint16_t seq;
    uint8_t state;
    uint8_t head_only;  /* HEAD: the body is not sent */
    uint8_t keep_alive; /* the client allows another request after this one */
    uint8_t chunked;    /* streamed with Transfer-Encoding: chunked */
    uint8_t http10;     /* the request was HTTP/1.0: no chunked coding */
    int16_t route;      /* -1: none matched (metrics label "unmatched") */
    uint16_t status;
    uint64_t start_ns;
    int64_t body_len;      /* streamed with a Content-Length: the bytes it announced */
    uint64_t body_sent;    /* streamed: body bytes written so far */
    rd_msg *reply;         /* MSG_HTTP_RESPONSE, once READY */
    rd_msg *parts, **tail; /* MSG_HTTP_PART queued in order, linked through node.next */
    rd_actor *watch;       /* endless stream (SSE): the producer of its last part, told if the
                            * client goes while it has nothing in flight */
    uint64_t watch_stream;
} slot;

typedef struct outbuf {
    char *p;
    uint32_t len, cap;
} outbuf;

typedef struct conn conn;
struct conn {
    listener *l;
    int fd;
    uint32_t idx, gen;
    rd_op recv_op, send_op; /* send_op: an output buffer, or pipe -> socket while splicing */
    rd_op splice_op;        /* file -> pipe */
    rd_timer timer;
    uint8_t in_use, recv_armed, sending, closing, lingering, peer_eof, close_after, paused;
    uint8_t served, in_process, reject, stop_budget;
    uint8_t no_more;  /* a request said "close": nothing after it is parsed */
    uint8_t send_due; /* on the listener's due list: kick_send waits for the turn's end */
    conn *due_next;
    char *in;
    uint32_t in_off, in_len, in_cap;
    uint32_t scan; /* bytes after in_off already searched for a line end */
    struct {
        uint8_t active; /* head parsed, body still arriving */
        uint8_t chunked;
        uint8_t expect; /* client waits for 100 Continue */
        uint32_t head_len;
        uint64_t need;     /* Content-Length (streamed: what is still to be forwarded) */
        uint8_t streaming; /* RD_HTTP_STREAM_BODY: forwarded as MSG_HTTP_BODY, not buffered */
        rd_actor *target;  /* streaming: who gets the body */
        uint64_t token;    /* streaming: the request's stream */
        uint64_t inflight; /* streaming: bytes sent and not acknowledged */
        uint32_t src;      /* chunked: raw bytes read (relative to the body start) */
        uint32_t dst;      /* chunked: decoded bytes */
        http1_chunked ch;
        size_t limit;
    } cur;
    slot *slots; /* PIPELINE of them from the first request; NULL while idle (conn_trim) */
    uint16_t seq_head, seq_next; /* oldest unanswered, next to assign */
    outbuf out[2];
    uint8_t fill; /* index of the output buffer being filled; the other may be in flight */
    uint32_t sent;
    uint64_t queued_total, sent_total; /* output bytes ever buffered / handed to the kernel */
    struct {
        rd_msg *part; /* a part sent on its own once what preceded it has left: a file
                       * part, or a large buffer (not copied into out[]); NULL */
        uint8_t is_file;
        uint64_t off, left; /* next byte to splice into the pipe (or send), bytes not yet */
        uint32_t in_pipe;   /* bytes in the pipe, not yet in the socket */
        uint8_t ops;        /* splices (or the poll) in flight */
        uint8_t full;       /* the socket had no room: wait for POLLOUT, then splice again */
        uint8_t polling;    /* send_op is that poll */
        int err;            /* the first failure of this part's splices */
        char tail[8];       /* chunk end (and last chunk) to write once the bytes have left */
        uint8_t tail_len;
    } held;
    int pipe[2];       /* the splice pipe, while a file part is being sent; else -1 */
    uint32_t pipe_cap; /* its size */
    struct conn_ack {
        rd_actor *to;
        uint64_t stream, mark, bytes; /* ack once sent_total reaches mark */
    } * acks;                         /* PIPELINE of them once a part wants one; NULL while idle */
    uint8_t ack_head, ack_len;
    char peer[48];          /* the client's address, for MSG_HTTP_REQUEST */
    int32_t client;         /* its bucket in routes->client_conns, or -1 when not counted */
    uint64_t win_start_ns;  /* a body's current rate window began */
    uint64_t win_bytes;     /* bytes received in it */
    uint64_t head_start_ns; /* first byte of the request being read */
    uint64_t last_ns;       /* last activity */
    conn *next_free;
    /* HTTPS (tls_on): the engine (kept for the slot's next connection), ciphertext it has not
     * taken yet, the record send in flight, and the plaintext write it is encrypting: an
     * output buffer or a held part's bytes, completed through send_op.done as a plain send
     * would be, once every record holding it has left. A file part is read into fbuf first
     * (no splice: the bytes must pass through the engine). */
    tls_conn *tls;
    rd_op tls_op;
    uint8_t tls_on, tls_ready, tls_sending, tls_pumping, tls_again, tls_app_active, tls_seen;
    char *tls_in;
    uint32_t tls_in_len;
    const char *tls_app;
    uint32_t tls_app_len, tls_app_done;
    char *tls_fbuf;
    uint64_t accept_ns;
};

#define NSTATUS 24
static const uint16_t status_codes[NSTATUS] = {200, 201, 202, 204, 206, 301, 302, 304,
                                               400, 401, 403, 404, 405, 408, 409, 413,
                                               416, 422, 429, 431, 500, 502, 503, 504};

/* What idle connections gave back, kept for the next request of any connection of this loop:
 * a connection that goes idle between two requests (every keep-alive request) costs a pop and
 * a push, not malloc and free, and the memory stays bounded by SPARES, not by connections. */
#define SPARES 256
typedef struct spares {
    void *p[SPARES];
    int n;
} spares;

static void *spare_take(spares *s)
{
    return s->n ? s->p[--s->n] : NULL;
}

static void spare_give(spares *s, void *p)
{
    if (s->n < SPARES)
        s->p[s->n++] = p;
    else
        free(p);
}

struct listener {
    rd_actor *self;
    rd_loop *loop;
    uint32_t loop_idx; /* loop_index(loop): in every token made and looked up */
    spares bufs;       /* IN_BASE (= OUT_BASE) byte buffers */
    spares slots;      /* slot[PIPELINE] arrays, every slot free */
    int nloops;
    int fd;
    rd_op accept_op;
    uint8_t accept_armed, stopping;
    rd_timer accept_timer;                     /* out of descriptors: accept again when it fires */
    uint64_t accept_fail_log_ns, accept_fails; /* failures since the last log line */
    const rd_http_routes *routes;
    rd_http_config cfg;
    struct io_uring_buf_ring *br;
    char *br_mem;
    uint16_t bgid; /* the ring's group id: unique, as two listeners may share a loop */
    conn *conns;
    uint32_t nconns, live, live_reject;
    conn *free_list, *free_reject;
    size_t in_max;
    struct {
        int fd[2];
        uint32_t cap;
    } pipes[PIPE_POOL]; /* empty pipes, so a pipe is made once, not per file part */
    uint32_t npipes;
    char date[30];
    time_t date_t;
    rd_stop_hook stop_hook;
    rd_turn_hook sends;     /* runs the sends of the conns on due (kick_send) */
    rd_turn_hook held_hook; /* publishes held_delta to held_bufs (publish_held) */
    int64_t held_delta;
    rd_msg *spent; /* replies written to their connections, freed after the sends */
    conn *due;
    rd_actor_def def; /* its own: the mailbox bound follows the connection cap */
    rd_metric *m_requests, *m_duration;
    rd_series *open_conns, *rejected;
    rd_series *held_bufs; /* reeld_http_connection_buffers */
    rd_series *tls_ok, *tls_failed;
    rd_series *req_series[RD_HTTP_MAX_ROUTES + 1][NSTATUS];
    rd_series *dur_series[RD_HTTP_MAX_ROUTES + 1];
};

static void conn_abort(conn *c);
static void conn_process(conn *c);
static void conn_flush(conn *c);
static void arm_recv(conn *c);

/* More input is wanted: another request may follow, or the current request's body is still
 * arriving. A request that says "close" (or HTTP/1.0) ends the connection after it, but its
 * body is read to the end first: its target is waiting for it. */
static inline int wants_input(const conn *c)
{
    return !c->no_more || c->cur.active;
}

static inline uint16_t pending(const conn *c)
{
    return (uint16_t)(c->seq_next - c->seq_head);
}

static uint64_t ms_ns(uint32_t ms)
{
    return (uint64_t)ms * 1000000ull;
}

static const char *date_now(listener *l)
{
    time_t t = time(NULL);
    if (t != l->date_t) {
        l->date_t = t;
        http1_date(t, l->date);
    }
    return l->date;
}

/* A request's stream id, unique in the process: targets key their per-request state by it
 * alone (the blob server's uploads, the edge's fills), and one target serves the listeners of
 * every loop, so the loop is part of it. Bits: loop (12) | connection (20) | generation (16) |
 * pipeline sequence (16). The connection table of one loop is at most 2^20 (REELD_HTTP_MAX_CONNS
 * is at most 10^6) and loops at most 1024 (REELD_CORES). */
#define TOKEN_LOOP_SHIFT 52
#define TOKEN_IDX_SHIFT  32
#define TOKEN_IDX_MASK   0xfffffu
#define TOKEN_GEN_MASK   0xffffu

static uint64_t make_token(const conn *c, uint16_t seq)
{
    return ((uint64_t)c->l->loop_idx << TOKEN_LOOP_SHIFT) |
           ((uint64_t)(c->idx & TOKEN_IDX_MASK) << TOKEN_IDX_SHIFT) |
           ((uint64_t)(c->gen & TOKEN_GEN_MASK) << 16) | seq;
}

static conn *token_conn(listener *l, uint64_t token, slot **s)
{
    uint32_t loop = (uint32_t)(token >> TOKEN_LOOP_SHIFT);
    uint32_t idx = (uint32_t)(token >> TOKEN_IDX_SHIFT) & TOKEN_IDX_MASK;
    uint32_t gen = (uint32_t)(token >> 16) & TOKEN_GEN_MASK;
    uint16_t seq = (uint16_t)token;
    if (loop != l->loop_idx || idx >= l->nconns)
        return NULL;
    conn *c = &l->conns[idx];
    if (!c->in_use || (c->gen & TOKEN_GEN_MASK) != gen)
        return NULL;
    if (c->slots == NULL)
        return NULL; /* idle: nothing is owed */
    *s = &c->slots[seq % PIPELINE];
    if ((*s)->state == SLOT_FREE || (*s)->seq != seq)
        return NULL;
    return c;
}

/* ---- metrics ---- */

static void count_response(listener *l, const slot *s)
{
    int r = s->route + 1;
    int si = 0;
    while (si < NSTATUS && status_codes[si] != s->status)
        si++;
    const char *rname = s->route >= 0 ? l->routes->r[s->route].pattern : "unmatched";
    rd_series *ser = si < NSTATUS ? l->req_series[r][si] : NULL;
    if (ser == NULL) {
        char code[8];
        snprintf(code, sizeof(code), "%u", s->status);
        const char *v[] = {rname, code};
        ser = metrics_series(l->m_requests, v);
        if (si < NSTATUS)
            l->req_series[r][si] = ser;
    }
    metrics_add(ser, 1);
    if (l->dur_series[r] == NULL) {
        const char *v[] = {rname};
        l->dur_series[r] = metrics_series(l->m_duration, v);
    }
    metrics_observe(l->dur_series[r], (double)(rd_turn_ns() - s->start_ns) / 1e9);
}

/* A connection took (+1) or gave back (-1) one of its blocks: the input buffer, an output
 * buffer, the request slots. */
/* The gauge moves once a turn by the turn's sum: a request takes and returns an input and an
 * output block, four updates a request otherwise (a call and a thread-local lookup each). */
static void publish_held(rd_turn_hook *hook)
{
    listener *l = (listener *)(void *)((char *)hook - offsetof(listener, held_hook));
    if (l->held_delta != 0)
        metrics_gauge_add(l->held_bufs, l->held_delta);
    l->held_delta = 0;
}

static void bufs_held(conn *c, int d)
{
    listener *l = c->l; /* on its loop: http_listener_free takes buffers without this */
    l->held_delta += d;
    loop_at_turn_end(l->loop, &l->held_hook);
}

/* ---- output ---- */

/* Room for n more bytes at the end of the output (taken or grown): where they go. */
static char *out_room(conn *c, size_t n)
{
    outbuf *o = &c->out[c->fill];
    if (o->cap - o->len < n) {
        size_t cap = o->cap ? o->cap : OUT_BASE;
        while (cap - o->len < n)
            cap *= 2;
        if (o->cap == 0)
            bufs_held(c, 1);
        char *np = o->cap == 0 && cap == OUT_BASE ? spare_take(&c->l->bufs) : NULL;
        if (np == NULL)
            np = rd_realloc(o->p, cap, "growing an HTTP output buffer");
        o->p = np;
        o->cap = (uint32_t)cap;
    }
    return o->p + o->len;
}

/* Adds n bytes written at out_room's pointer. */
static void out_commit(conn *c, size_t n)
{
    c->out[c->fill].len += (uint32_t)n;
    c->queued_total += n;
}

static void out_put(conn *c, const void *p, size_t n)
{
    memcpy(out_room(c, n), p, n);
    out_commit(c, n);
}

static void send_ack(rd_actor *to, uint64_t stream, uint64_t bytes, int failed)
{
    rd_msg *m = msg_new(MSG_HTTP_PART_ACK);
    struct rd_msg_http_part_ack *a = msg_body(m, http_part_ack);
    a->stream = stream;
    a->bytes = bytes;
    a->failed = (uint8_t)failed;
    if (actor_send(to, m) < 0)
        msg_free(m); /* the producer is gone or full: it has stopped listening */
}

/* Frees a part that will never be sent, telling its producer to stop. */
static void drop_part(rd_msg *m)
{
    struct rd_msg_http_part *p = msg_body(m, http_part);
    if (p->ack_to != NULL)
        send_ack(p->ack_to, p->stream, p->file ? p->file_len : p->body ? p->body->len : 0, 1);
    msg_free(m); /* closes a file part's descriptor */
}

/* Acknowledges the parts whose bytes have all been handed to the kernel (or, `failed`, all of
 * them: the connection is ending). */
static void acks_release(conn *c, int failed)
{
    while (c->ack_len) {
        int i = c->ack_head;
        if (!failed && c->acks[i].mark > c->sent_total)
            return;
        send_ack(c->acks[i].to, c->acks[i].stream, c->acks[i].bytes, failed);
        c->ack_head = (uint8_t)((c->ack_head + 1) % PIPELINE);
        c->ack_len--;
    }
}

static void on_send(rd_op *op, int res, uint32_t flags);
static void splice_start(conn *c);
static void tls_write_start(conn *c, const char *p, uint32_t n);
static void tls_close_notify(conn *c);

/* A held part follows the output buffer (a response head, usually): MSG_MORE lets the head
 * leave in the same segment as the first body bytes despite TCP_NODELAY. */
static int send_flags(const conn *c)
{
    return MSG_NOSIGNAL | (c->held.part != NULL ? MSG_MORE : 0);
}

/* Starts sending what is queued: the output buffer being filled, else the held part that
 * follows what has already left. */
static void send_now(conn *c)
{
    if (c->sending || c->closing)
        return;
    if (c->out[c->fill].len == 0) {
        if (c->held.part != NULL)
            splice_start(c);
        return;
    }
    outbuf *o = &c->out[c->fill];
    c->fill ^= 1;
    c->sending = 1;
    c->sent = 0;
    if (c->tls_on) {
        tls_write_start(c, o->p, o->len);
        return;
    }
    struct io_uring_sqe *sqe = loop_sqe(c->l->loop, &c->send_op);
    io_uring_prep_send(sqe, c->fd, o->p, o->len, send_flags(c));
}

/* Sends what the connection is owed once this loop turn is over: a reply's head and the
 * parts that follow it in the same turn (one message each) leave in one send, not one send for
 * the head and another, after it, for the rest. Until then the output counts as being sent
 * (sending_or_due). */
static void kick_send(conn *c)
{
    if (c->sending || c->closing || c->send_due || (c->out[c->fill].len == 0 && !c->held.part))
        return;
    listener *l = c->l;
    c->send_due = 1;
    c->due_next = l->due;
    l->due = c;
    loop_at_turn_end(l->loop, &l->sends);
}

static void free_spent(listener *l)
{
    while (l->spent != NULL) {
        rd_msg *m = l->spent;
        l->spent = (rd_msg *)(void *)atomic_load_explicit(&m->node.next, memory_order_relaxed);
        msg_free(m);
    }
}

static void sends_due(rd_turn_hook *hook)
{
    listener *l = (listener *)(void *)((char *)hook - offsetof(listener, sends));
    conn *c = l->due;
    l->due = NULL;
    while (c != NULL) {
        conn *next = c->due_next;
        c->send_due = 0;
        if (c->closing)
            conn_abort(c); /* it waited for its place here to be released (conn_abort) */
        else
            send_now(c);
        c = next;
    }
    free_spent(l);
}

static inline int sending_or_due(const conn *c)
{
    return c->sending || c->send_due;
}

/* Makes the connection's timer fire no later than `due` (monotonic ns). */
static void timer_by(conn *c, uint64_t due);

/* A request body must keep up REELD_HTTP_BODY_MIN_RATE bytes/s, judged over windows of at least
 * BODY_WINDOW_MS (bytes received / time since the window began), so a client cannot hold a
 * connection with a byte now and then (each byte used to reset the idle deadline). Time the
 * listener itself held the body back (its target had not used what it had, or reading was
 * paused) is not the client's: the window starts again then. */
#define BODY_WINDOW_MS 10000

static void body_window_start(conn *c)
{
    c->win_start_ns = rd_turn_ns();
    c->win_bytes = 0;
    if (c->l->cfg.body_min_rate)
        timer_by(c, c->win_start_ns + ms_ns(BODY_WINDOW_MS));
}

/* The listener, not the client, is why the body is not moving. */
static int body_held(const conn *c)
{
    return c->paused ||
           (c->cur.streaming && c->cur.inflight + RD_HTTP_BODY_CHUNK > RD_HTTP_BODY_WINDOW);
}

static void timer_by(conn *c, uint64_t due)
{
    if (loop_timer_armed(&c->timer) && c->timer.deadline_ns <= due)
        return;
    uint64_t now = rd_now_ns();
    loop_timer_start(c->l->loop, &c->timer, due > now ? due - now : 0, 0);
}

static void shrink(conn *c, outbuf *o)
{
    if (o->cap > BUF_KEEP) {
        bufs_held(c, -1);
        free(o->p);
        o->p = NULL;
        o->cap = 0;
    }
}

/* True when the connection owes nothing more and should close. */
static int conn_finished(const conn *c)
{
    if (pending(c) || c->sending || c->out[c->fill].len || c->held.part)
        return 0;
    if (c->close_after)
        return 1;
    if (c->l->stopping && c->stop_budget == 0 && !c->cur.active)
        return 1;
    /* Half-closed: the peer will send nothing more; what it sent has been answered. */
    return c->peer_eof;
}

/* 1 when the response being sent is a stream of no announced length (Server-Sent Events):
 * a peer that half-closes is gone, as every HTTP client that closes its side is. */
static int endless_stream(const conn *c)
{
    if (c->slots == NULL)
        return 0;
    const slot *s = &c->slots[c->seq_head % PIPELINE];
    return s->state == SLOT_STREAM && s->seq == c->seq_head && s->chunked && s->body_len < 0;
}

static void start_linger(conn *c)
{
    if (c->lingering || c->closing)
        return;
    if (c->peer_eof || !c->recv_armed) {
        conn_abort(c);
        return;
    }
    c->lingering = 1;
    tls_close_notify(c);
    shutdown(c->fd, SHUT_WR);
    loop_timer_start(c->l->loop, &c->timer, ms_ns(LINGER_MS), 0);
}

static void output_left(conn *c);

static void on_send(rd_op *op, int res, uint32_t flags)
{
    (void)flags;
    conn *c = (conn *)(void *)((char *)op - offsetof(conn, send_op));
    outbuf *o = &c->out[c->fill ^ 1];
    if (res < 0 || c->closing) {
        c->sending = 0;
        o->len = 0;
        conn_abort(c);
        return;
    }
    c->sent += (uint32_t)res;
    c->sent_total += (uint64_t)res;
    acks_release(c, 0);
    if (c->sent < o->len) {
        struct io_uring_sqe *sqe = loop_sqe(c->l->loop, &c->send_op);
        io_uring_prep_send(sqe, c->fd, o->p + c->sent, o->len - c->sent, send_flags(c));
        return;
    }
    c->sending = 0;
    o->len = 0;
    shrink(c, o);
    output_left(c);
}

/* Reading paused on a backlog (unparsed input, or ciphertext the TLS engine has not taken
 * yet): read again once it has shrunk. */
static void resume_recv(conn *c)
{
    if (c->paused && !c->recv_armed && !c->closing && !c->peer_eof &&
        c->in_len - c->in_off <= BACKLOG_PAUSE && c->tls_in_len <= TLS_IN_MAX / 2) {
        if (c->cur.active)
            body_window_start(c); /* the pause was ours */
        c->paused = 0;
        arm_recv(c);
    }
}

/* An idle keep-alive connection (nothing owed, nothing buffered) holds no buffer and no
 * request state: viewers keep connections open for the length of a video, so what one costs
 * while it waits is what a node's memory is sized by. The next request allocates again:
 * from the listener's spare lists, so the give-back and take-again per request are a few list
 * operations (deferring the trim by a second measured no cheaper: bench/RESULTS.md). */
static void conn_trim(conn *c)
{
    if (c->sending || c->held.part != NULL || c->ack_len)
        return;
    if (pending(c))
        return;
    if (c->slots != NULL) {
        /* Nothing owed means every slot is free (finish_slot frees a slot's messages as it
         * moves seq_head past it): no need to read the 2.5 KB of slots to know it. */
#ifndef NDEBUG
        for (int i = 0; i < PIPELINE; i++)
            assert(c->slots[i].state == SLOT_FREE && !c->slots[i].reply && !c->slots[i].parts);
#endif
        spare_give(&c->l->slots, c->slots);
        c->slots = NULL;
        bufs_held(c, -1);
    }
    free(c->acks);
    c->acks = NULL;
    c->ack_head = 0;
    if (c->in != NULL)
        bufs_held(c, -1);
    if (c->in != NULL && c->in_cap == IN_BASE)
        spare_give(&c->l->bufs, c->in);
    else
        free(c->in);
    c->in = NULL;
    c->in_cap = c->in_len = c->in_off = c->scan = 0;
    for (int i = 0; i < 2; i++)
        if (c->out[i].len == 0) {
            if (c->out[i].p != NULL)
                bufs_held(c, -1);
            if (c->out[i].p != NULL && c->out[i].cap == OUT_BASE)
                spare_give(&c->l->bufs, c->out[i].p);
            else
                free(c->out[i].p);
            c->out[i].p = NULL;
            c->out[i].cap = 0;
        }
}

/* What was in flight has all left: send what is queued behind it, or resume reading. */
static void output_left(conn *c)
{
    c->last_ns = rd_turn_ns();
    if (c->out[c->fill].len || c->held.part) {
        kick_send(c);
        return;
    }
    /* Output drained: parsing may have stalled on it, and reading on that. */
    if (c->in_len > c->in_off && !c->in_process)
        conn_process(c);
    if (conn_finished(c)) {
        start_linger(c);
        return;
    }
    resume_recv(c);
    if (!pending(c) && c->in_len == c->in_off && !c->cur.active) {
        conn_trim(c);
        timer_by(c, c->last_ns + ms_ns(c->l->cfg.idle_timeout_ms));
    }
}

/* ---- HTTPS: the engine between the socket and the rest ----
 *
 * Ciphertext from recv goes into tls_in and on into the engine; plaintext out of the engine
 * goes into the input buffer as a plain recv's bytes would. A write (kick_send's output
 * buffer, a held part's bytes) is copied into the engine, and completes through send_op.done
 * with its whole length once the records that hold it have been handed to the kernel, so
 * on_send and on_splice_out need not know about TLS. One record send is in flight at a time
 * (tls_op); the pump is not re-entered (a call while it runs asks it to go round again). */

static int in_append(conn *c, const char *p, uint32_t n);
static slot *respond_error(conn *c, int route_id, int status, const char *code, const char *message,
                           const char *headers, int close);
static void on_tls_sent(rd_op *op, int res, uint32_t flags);

/* Ends the write in progress: `res` is its length, or a negative errno when it will never
 * leave. The callback may end (and free) the connection: call last. */
static void tls_app_finish(conn *c, int res)
{
    c->tls_app_active = 0;
    c->send_op.done(&c->send_op, res, 0);
}

/* Moves what can move: ciphertext in, plaintext out (to the input buffer, when the connection
 * still reads), the pending write in, records out. `process`: parse what arrived (the recv
 * path parses itself). May end the connection. */
static void tls_pump(conn *c, int process)
{
    if (c->tls_pumping) {
        c->tls_again = 1;
        return;
    }
    c->tls_pumping = 1;
    br_ssl_engine_context *eng = tls_conn_engine(c->tls);
    int got = 0, overflow = 0, app_done = 0;
    unsigned st;
    do {
        c->tls_again = 0;
        for (;;) {
            st = br_ssl_engine_current_state(eng);
            if (st & BR_SSL_CLOSED)
                break;
            if (c->tls_in_len && (st & (BR_SSL_RECVREC | BR_SSL_SENDREC)) == BR_SSL_RECVREC) {
                size_t k = tls_conn_push(c->tls, c->tls_in, c->tls_in_len);
                memmove(c->tls_in, c->tls_in + k, c->tls_in_len - k);
                c->tls_in_len -= (uint32_t)k;
                continue;
            }
            if (st & BR_SSL_RECVAPP) {
                size_t len;
                unsigned char *buf = br_ssl_engine_recvapp_buf(eng, &len);
                if (!c->closing && !c->lingering && wants_input(c) && !overflow) {
                    if (in_append(c, (const char *)buf, (uint32_t)len) < 0)
                        overflow = 1;
                    else
                        got = 1;
                }
                br_ssl_engine_recvapp_ack(eng, len);
                continue;
            }
            if (c->tls_app_active && c->tls_app_done < c->tls_app_len && (st & BR_SSL_SENDAPP)) {
                c->tls_app_done += (uint32_t)tls_conn_write(c->tls, c->tls_app + c->tls_app_done,
                                                            c->tls_app_len - c->tls_app_done, 1);
                continue;
            }
            break;
        }
        if (!c->tls_ready && (st & (BR_SSL_SENDAPP | BR_SSL_RECVAPP))) {
            c->tls_ready = 1;
            metrics_add(c->l->tls_ok, 1);
        }
        if (!c->tls_sending && !c->closing && (st & BR_SSL_SENDREC)) {
            size_t len;
            unsigned char *buf = br_ssl_engine_sendrec_buf(eng, &len);
            struct io_uring_sqe *sqe = loop_sqe(c->l->loop, &c->tls_op);
            io_uring_prep_send(sqe, c->fd, buf, len, MSG_NOSIGNAL);
            c->tls_sending = 1;
        }
        app_done = c->tls_app_active && c->tls_app_done == c->tls_app_len && !c->tls_sending &&
                   !(st & BR_SSL_SENDREC);
    } while (c->tls_again);
    c->tls_pumping = 0;
    if (overflow) {
        conn_abort(c); /* it sent far more than it reads: cut off */
        return;
    }
    if ((st & BR_SSL_CLOSED) && !c->tls_sending) {
        /* The alert (if any) has left. A clean close (close_notify) is the client leaving. */
        int e = br_ssl_engine_last_error(eng);
        if (e != BR_ERR_OK && !c->tls_ready) {
            metrics_add(c->l->tls_failed, 1);
            log_debug("tls_handshake_failed", KV_STR("peer", c->peer),
                      KV_STR("reason", tls_conn_strerror(e)), KV_INT("br_err", e));
        } else if (e != BR_ERR_OK) {
            log_debug("tls_failed", KV_STR("peer", c->peer), KV_STR("reason", tls_conn_strerror(e)),
                      KV_INT("br_err", e));
        }
        if (c->tls_app_active)
            tls_app_finish(c, -EPIPE); /* ends in conn_abort */
        else
            conn_abort(c);
        return;
    }
    if (got && process && !c->in_process)
        conn_process(c);
    if (app_done && !c->closing)
        tls_app_finish(c, (int)c->tls_app_len);
}

/* Starts encrypting and sending p[0..n) (n > 0), completed through send_op.done. */
static void tls_write_start(conn *c, const char *p, uint32_t n)
{
    c->tls_app = p;
    c->tls_app_len = n;
    c->tls_app_done = 0;
    c->tls_app_active = 1;
    tls_pump(c, 1);
}

static void on_tls_sent(rd_op *op, int res, uint32_t flags)
{
    (void)flags;
    conn *c = (conn *)(void *)((char *)op - offsetof(conn, tls_op));
    c->tls_sending = 0;
    if (res <= 0 || c->closing) {
        if (c->tls_app_active)
            tls_app_finish(c, res < 0 ? res : -EPIPE); /* ends in conn_abort */
        else
            conn_abort(c);
        return;
    }
    br_ssl_engine_sendrec_ack(tls_conn_engine(c->tls), (size_t)res);
    c->last_ns = rd_turn_ns();
    tls_pump(c, 1); /* may end the connection: then closing is set, and nothing more happens */
    if (c->in_use && !c->closing && !c->tls_app_active)
        resume_recv(c); /* a handshake record left: ciphertext held behind it went in */
}

/* 1 when the first bytes of a connection are a plain HTTP request line, not a ClientHello. */
static int looks_like_http(const char *p, uint32_t n)
{
    static const char *const methods[] = {"GET ",    "HEAD ",    "POST ", "PUT ",
                                          "DELETE ", "OPTIONS ", "PATCH "};
    for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++) {
        size_t l = strlen(methods[i]);
        if (n >= l && memcmp(p, methods[i], l) == 0)
            return 1;
    }
    return 0;
}

/* Bytes from the socket of an HTTPS connection. 0, or -ENOBUFS when the engine is that far
 * behind (the caller cuts the connection off). */
static int tls_take(conn *c, const char *p, uint32_t n)
{
    if (c->closing || c->lingering)
        return 0;
    if (!c->tls_seen) {
        c->tls_seen = 1;
        if (looks_like_http(p, n)) {
            /* Plain HTTP to the HTTPS port: say so in plain HTTP, as nginx does, and end. */
            c->tls_on = 0;
            tls_conn_end(c->tls);
            metrics_add(c->l->tls_failed, 1);
            respond_error(c, -1, 400, "https_required",
                          "This port speaks HTTPS: use an https:// URL.", NULL, 1);
            conn_flush(c);
            return 0;
        }
    }
    if ((uint32_t)TLS_IN_MAX - c->tls_in_len < n)
        return -ENOBUFS;
    if (c->tls_in == NULL)
        c->tls_in = rd_calloc(1, TLS_IN_MAX, "TLS input");
    memcpy(c->tls_in + c->tls_in_len, p, n);
    c->tls_in_len += n;
    tls_pump(c, 0);
    return 0;
}

/* The connection is done with: a close_notify, if it can leave now without waiting. */
static void tls_close_notify(conn *c)
{
    if (!c->tls_on || !c->tls_ready || c->tls_sending)
        return;
    br_ssl_engine_context *eng = tls_conn_engine(c->tls);
    br_ssl_engine_close(eng);
    if (br_ssl_engine_current_state(eng) & BR_SSL_SENDREC) {
        size_t len;
        unsigned char *buf = br_ssl_engine_sendrec_buf(eng, &len);
        ssize_t k = send(c->fd, buf, len, MSG_DONTWAIT | MSG_NOSIGNAL);
        (void)k; /* a full socket: the client does without it */
    }
}

/* ---- held parts: a file part (file -> pipe -> socket, no copy in user space), or a large
 * buffer sent straight from its rd_buf ----
 *
 * One round moves up to the pipe's size: a splice file -> pipe linked to a splice pipe ->
 * socket of the same length. A short first splice cancels the second (the kernel fails the
 * link); whatever is then in the pipe goes on its own, and a short send repeats it. Only
 * one round is in flight, and the pipe is empty between rounds. io_uring runs splices in its
 * worker threads: the socket side is non-blocking (-EAGAIN, then a POLLOUT poll and again),
 * so a client that stops reading holds no worker. */

static void on_splice_in(rd_op *op, int res, uint32_t flags);
static void on_splice_out(rd_op *op, int res, uint32_t flags);

/* A pipe for the connection's file part: an empty one of the listener's, or a new one. The
 * pool bounds the pipes to the file parts in flight, not the connections (the user's pipe
 * budget, fs/pipe-user-pages-soft, is shared by all). 0 or -errno. */
static int pipe_open(conn *c)
{
    listener *l = c->l;
    if (c->pipe[0] >= 0)
        return 0;
    if (l->npipes) {
        l->npipes--;
        c->pipe[0] = l->pipes[l->npipes].fd[0];
        c->pipe[1] = l->pipes[l->npipes].fd[1];
        c->pipe_cap = l->pipes[l->npipes].cap;
        return 0;
    }
    if (pipe2(c->pipe, O_CLOEXEC) < 0) {
        c->pipe[0] = c->pipe[1] = -1;
        return -errno;
    }
    /* Smaller when the user's pipe budget (fs/pipe-user-pages-soft) is spent: still works. */
    fcntl(c->pipe[1], F_SETPIPE_SZ, PIPE_SIZE);
    int sz = fcntl(c->pipe[1], F_GETPIPE_SZ);
    c->pipe_cap = sz > 0 ? (uint32_t)sz : 4096;
    return 0;
}

static void pipe_close(conn *c)
{
    if (c->pipe[0] < 0)
        return;
    close(c->pipe[0]);
    close(c->pipe[1]);
    c->pipe[0] = c->pipe[1] = -1;
}

/* Gives back the connection's pipe, which must be empty (its part has all left). */
static void pipe_put(conn *c)
{
    listener *l = c->l;
    if (c->pipe[0] < 0)
        return;
    if (l->npipes == PIPE_POOL) {
        pipe_close(c);
        return;
    }
    l->pipes[l->npipes].fd[0] = c->pipe[0];
    l->pipes[l->npipes].fd[1] = c->pipe[1];
    l->pipes[l->npipes].cap = c->pipe_cap;
    l->npipes++;
    c->pipe[0] = c->pipe[1] = -1;
}

/* HTTPS: a buffer part goes through the engine from where it is; a file part is read into
 * fbuf (one round), then written through the engine (the next). */
static void tls_held_round(conn *c)
{
    const struct rd_msg_http_part *p = msg_body(c->held.part, http_part);
    c->held.ops = 1;
    if (!c->held.is_file) {
        tls_write_start(c, p->body->data + c->held.off, (uint32_t)c->held.left);
        return;
    }
    if (c->held.in_pipe) {
        tls_write_start(c, c->tls_fbuf, c->held.in_pipe);
        return;
    }
    uint32_t n = c->held.left < TLS_FBUF ? (uint32_t)c->held.left : TLS_FBUF;
    struct io_uring_sqe *sqe = loop_sqe(c->l->loop, &c->splice_op);
    io_uring_prep_read(sqe, p->fd, c->tls_fbuf, n, c->held.off);
}

static void splice_round(conn *c)
{
    rd_loop *loop = c->l->loop;
    struct io_uring_sqe *sqe;
    if (c->tls_on) {
        tls_held_round(c);
        return;
    }
    if (c->held.full) {
        c->held.full = 0;
        c->held.polling = 1;
        sqe = loop_sqe(loop, &c->send_op);
        io_uring_prep_poll_add(sqe, c->fd, POLLOUT);
        c->held.ops = 1;
        return;
    }
    if (c->held.in_pipe) {
        sqe = loop_sqe(loop, &c->send_op);
        io_uring_prep_splice(sqe, c->pipe[0], -1, c->fd, -1, c->held.in_pipe, SPLICE_F_NONBLOCK);
        c->held.ops = 1;
        return;
    }
    const struct rd_msg_http_part *p = msg_body(c->held.part, http_part);
    if (!c->held.is_file) {
        sqe = loop_sqe(loop, &c->send_op);
        io_uring_prep_send(sqe, c->fd, p->body->data + c->held.off, (size_t)c->held.left,
                           MSG_NOSIGNAL);
        c->held.ops = 1;
        return;
    }
    uint32_t n = c->held.left < c->pipe_cap ? (uint32_t)c->held.left : c->pipe_cap;
    /* A link must not straddle a submit: make room for both SQEs first. */
    if (io_uring_sq_space_left(loop_ring(loop)) < 2)
        io_uring_submit(loop_ring(loop));
    sqe = loop_sqe(loop, &c->splice_op);
    io_uring_prep_splice(sqe, p->fd, (int64_t)c->held.off, c->pipe[1], -1, n, 0);
    sqe->flags |= IOSQE_IO_LINK;
    sqe = loop_sqe(loop, &c->send_op);
    io_uring_prep_splice(sqe, c->pipe[0], -1, c->fd, -1, n, SPLICE_F_NONBLOCK);
    c->held.ops = 2;
}

/* The output buffers have drained and a held part is next. */
static void splice_start(conn *c)
{
    assert(!c->sending && c->held.part != NULL);
    int r = c->held.is_file && !c->tls_on ? pipe_open(c) : 0;
    if (c->held.is_file && c->tls_on && c->tls_fbuf == NULL)
        c->tls_fbuf = rd_calloc(1, TLS_FBUF, "an HTTPS file buffer");
    if (r < 0) {
        log_warn("http_pipe_failed", KV_ERRNO(r));
        conn_abort(c);
        return;
    }
    c->sending = 1;
    c->send_op.done = on_splice_out;
    splice_round(c);
}

/* Both splices of a round have completed: the next round, the end of the part, or the end of
 * the connection. */
static void splice_step(conn *c)
{
    if (c->held.ops)
        return;
    if (c->held.err || c->closing) {
        /* The head promised bytes that will not come: only closing tells the client. */
        if (c->held.err && c->held.err != -EPIPE && c->held.err != -ECONNRESET)
            log_warn("http_splice_failed", KV_ERRNO(c->held.err));
        c->sending = 0;
        c->send_op.done = on_send;
        conn_abort(c);
        return;
    }
    if (c->held.full || c->held.in_pipe || c->held.left) {
        splice_round(c);
        return;
    }
    assert(c->held.in_pipe == 0);
    pipe_put(c);
    msg_free(c->held.part); /* closes a file part's file */
    c->held.part = NULL;
    c->sending = 0;
    c->send_op.done = on_send;
    if (c->held.tail_len)
        out_put(c, c->held.tail, c->held.tail_len);
    c->held.tail_len = 0;
    conn_flush(c); /* what queued up behind the part */
    if (c->closing || c->sending)
        return;
    output_left(c);
}

static void on_splice_in(rd_op *op, int res, uint32_t flags)
{
    (void)flags;
    conn *c = (conn *)(void *)((char *)op - offsetof(conn, splice_op));
    c->held.ops--;
    if (res > 0) {
        c->held.in_pipe += (uint32_t)res;
        c->held.off += (uint64_t)res;
        c->held.left -= (uint64_t)res;
    } else if (res != -EAGAIN && c->held.err == 0) {
        c->held.err = res < 0 ? res : -ENODATA; /* 0: the file ends before the range */
    }
    splice_step(c);
}

static void on_splice_out(rd_op *op, int res, uint32_t flags)
{
    (void)flags;
    conn *c = (conn *)(void *)((char *)op - offsetof(conn, send_op));
    c->held.ops--;
    if (c->held.polling) {
        c->held.polling = 0;
        if (res < 0 && c->held.err == 0)
            c->held.err = res;
    } else if (res == -EAGAIN) {
        c->held.full = 1;
    } else if (res > 0 && !c->held.is_file) {
        c->held.off += (uint64_t)res;
        c->held.left -= (uint64_t)res;
        c->sent_total += (uint64_t)res;
        acks_release(c, 0);
    } else if (res > 0) {
        c->held.in_pipe -= (uint32_t)res;
        c->sent_total += (uint64_t)res;
        acks_release(c, 0);
    } else if (res == 0 && c->held.err == 0) {
        c->held.err = -EPIPE;
    } else if (res < 0 && res != -ECANCELED && c->held.err == 0) {
        c->held.err = res; /* -ECANCELED: the splice before it came up short */
    }
    splice_step(c);
}

/* Writes the response head (and body, when it came whole) of the slot at the pipeline's head. */
static void emit_reply(conn *c, slot *s)
{
    listener *l = c->l;
    struct rd_msg_http_response *r = msg_body(s->reply, http_response);
    s->status = r->status;
    int keep = s->keep_alive && !c->close_after && !l->stopping;
    int64_t clen;
    const char *body = NULL;
    size_t blen = 0;
    if (r->more) {
        clen = r->content_length;
    } else {
        body = r->body ? r->body->data : r->small;
        blen = r->body ? r->body->len : r->small_len;
        clen = (int64_t)blen;
    }
    int no_body = r->status == 204 || r->status == 304 || (r->status >= 100 && r->status < 200);
    if (no_body)
        clen = 0;
    if (clen < 0 && s->http10) {
        clen = HTTP1_UNTIL_CLOSE; /* HTTP/1.0 has no chunks: the close ends the body */
        keep = 0;
    }
    s->chunked = clen == -1;
    s->body_len = clen;
    if (!keep)
        c->close_after = 1;
    /* The head is written in place; one that does not fit in HEAD_ROOM (long extra lines, or
     * a buffer nearly full with earlier answers) goes through a larger buffer, and oversized
     * extra lines are dropped rather than the response. */
    const char *ctype = r->content_type[0] ? r->content_type : NULL;
    const char *extra = r->headers[0] ? r->headers : NULL;
    const outbuf *o = &c->out[c->fill];
    int n = -1; /* in place only where that takes no buffer larger than one would anyway */
    if (o->cap == 0 || o->cap - o->len >= HEAD_ROOM)
        n = http1_write_head(out_room(c, HEAD_ROOM), HEAD_ROOM, r->status, date_now(l), SERVER_NAME,
                             ctype, clen, keep, extra);
    if (n >= 0) {
        out_commit(c, (size_t)n);
    } else {
        char head[2048];
        n = http1_write_head(head, sizeof(head), r->status, date_now(l), SERVER_NAME, ctype, clen,
                             keep, extra);
        if (n < 0)
            n = http1_write_head(head, sizeof(head), r->status, date_now(l), SERVER_NAME, NULL,
                                 clen, keep, NULL);
        out_put(c, head, (size_t)n);
    }
    if (!s->head_only && !no_body && blen)
        out_put(c, body, blen);
}

static void finish_slot(conn *c, slot *s)
{
    count_response(c->l, s);
    /* Freed with the turn's sends, not here: right after its body was copied out, the
     * reference count's locked decrement waited for those stores to reach the cache (a tenth
     * of the listener's time on a cached playlist); a batch of them later does not. */
    listener *l = c->l;
    if (s->reply != NULL) {
        if (l->spent == NULL)
            loop_at_turn_end(l->loop, &l->sends);
        atomic_store_explicit(&s->reply->node.next, l->spent ? &l->spent->node : NULL,
                              memory_order_relaxed);
        l->spent = s->reply;
        s->reply = NULL;
    }
    while (s->parts) {
        rd_msg *m = s->parts;
        s->parts = (rd_msg *)(void *)atomic_load_explicit(&m->node.next, memory_order_relaxed);
        msg_free(m);
    }
    s->state = SLOT_FREE;
    c->seq_head++;
    c->served = 1;
    if (!s->keep_alive)
        c->close_after = 1;
}

/* Writes the queued parts of a streaming slot; returns 1 when the last one was written. */
static int emit_parts(conn *c, slot *s)
{
    while (s->parts && c->held.part == NULL) {
        rd_msg *m = s->parts;
        s->parts = (rd_msg *)(void *)atomic_load_explicit(&m->node.next, memory_order_relaxed);
        if (s->parts == NULL)
            s->tail = &s->parts;
        struct rd_msg_http_part *p = msg_body(m, http_part);
        int last = p->last;
        uint64_t len = p->file ? p->file_len : p->body ? p->body->len : 0;
        int written = !s->head_only && len;
        int kept = 0; /* held: waits for the output before it to leave, then goes alone */
        if (written) {
            if (s->chunked) {
                char sz[24];
                int k = snprintf(sz, sizeof(sz), "%llx\r\n", (unsigned long long)len);
                out_put(c, sz, (size_t)k);
            }
            if (p->file || len >= HOLD_MIN) {
                c->held.part = m;
                c->held.is_file = p->file;
                c->held.off = p->file ? p->file_off : 0;
                c->held.left = len;
                c->held.in_pipe = 0;
                c->held.err = 0;
                c->held.full = c->held.polling = 0;
                c->held.tail_len = 0;
                c->queued_total += len;
                kept = 1;
            } else {
                out_put(c, p->body->data, p->body->len);
            }
            s->body_sent += len;
            if (s->chunked && kept) {
                memcpy(c->held.tail, "\r\n", 2);
                c->held.tail_len = 2;
            } else if (s->chunked) {
                out_put(c, "\r\n", 2);
            }
        }
        /* A body that ends short of (or past) its Content-Length would leave the client
         * reading the next response as the rest of this one: close after it instead, so the
         * client sees the truncation. */
        if (last && !s->head_only && s->body_len >= 0 && s->body_sent != (uint64_t)s->body_len)
            c->close_after = 1;
        if (last && s->chunked && !s->head_only && kept) {
            memcpy(c->held.tail + c->held.tail_len, "0\r\n\r\n", 5);
            c->held.tail_len += 5;
        } else if (last && s->chunked && !s->head_only) {
            out_put(c, "0\r\n\r\n", 5);
        }
        s->watch = last || s->body_len >= 0 ? NULL : p->ack_to; /* endless streams only */
        s->watch_stream = p->stream;
        if (p->ack_to != NULL) {
            uint64_t bytes = len;
            if (c->ack_len == PIPELINE) {
                send_ack(p->ack_to, p->stream, bytes, 0); /* more in flight than we track */
            } else {
                if (c->acks == NULL)
                    c->acks = rd_calloc(PIPELINE, sizeof(*c->acks), "a connection's acks");
                int i = (c->ack_head + c->ack_len++) % PIPELINE;
                c->acks[i].to = p->ack_to;
                c->acks[i].stream = p->stream;
                c->acks[i].mark = c->queued_total;
                c->acks[i].bytes = bytes;
            }
            p->ack_to = NULL; /* acknowledged through acks[] from now on */
        }
        if (!kept)
            msg_free(m);
        if (last)
            return 1;
    }
    return 0;
}

static void conn_flush(conn *c)
{
    while (pending(c) && c->held.part == NULL) {
        slot *s = &c->slots[c->seq_head % PIPELINE];
        if (s->state == SLOT_WAIT)
            break;
        if (s->state == SLOT_READY) {
            emit_reply(c, s);
            if (!msg_body(s->reply, http_response)->more) {
                finish_slot(c, s);
                continue;
            }
            s->state = SLOT_STREAM;
        }
        if (!emit_parts(c, s))
            break;
        finish_slot(c, s);
    }
    acks_release(c, 0);
    kick_send(c);
}

/* A response made here (errors, 100-continue aside): queued as a READY slot. */
static rd_msg *local_response(int status, const char *code, const char *message,
                              const char *headers)
{
    rd_msg *m = msg_new(MSG_HTTP_RESPONSE);
    struct rd_msg_http_response *r = msg_body(m, http_response);
    r->status = (uint16_t)status;
    snprintf(r->content_type, sizeof(r->content_type), "application/json");
    /* The listener's own answers are errors (404, 405, 408, 413, 431, 503, ...): no cache
     * keeps one in place of what the path serves. */
    snprintf(r->headers, sizeof(r->headers), "Cache-Control: no-store\r\n%s",
             headers ? headers : "");
    int n = http1_write_error_json(r->small, sizeof(r->small), code, message);
    r->small_len = n > 0 ? (uint32_t)n : 0;
    return m;
}

static slot *slot_new(conn *c, int route_id, int head_only, int keep_alive)
{
    assert(pending(c) < PIPELINE);
    if (c->slots == NULL) {
        bufs_held(c, 1);
        if ((c->slots = spare_take(&c->l->slots)) == NULL)
            c->slots = rd_calloc(PIPELINE, sizeof(slot), "a connection's requests");
    }
    uint16_t seq = c->seq_next++;
    slot *s = &c->slots[seq % PIPELINE];
    memset(s, 0, sizeof(*s));
    s->seq = seq;
    s->state = SLOT_WAIT;
    s->route = (int16_t)route_id;
    s->head_only = (uint8_t)head_only;
    s->keep_alive = (uint8_t)keep_alive;
    s->start_ns = rd_turn_ns();
    s->tail = &s->parts;
    return s;
}

/* Answers with an error. `close`: the connection ends after it (no more requests parsed). */
static slot *respond_error(conn *c, int route_id, int status, const char *code, const char *message,
                           const char *headers, int close)
{
    if (pending(c) == PIPELINE) {
        conn_abort(c);
        return NULL;
    }
    slot *s = slot_new(c, route_id, 0, !close);
    s->reply = local_response(status, code, message, headers);
    s->state = SLOT_READY;
    if (close)
        c->no_more = 1;
    return s;
}

/* ---- requests ---- */

static int reply_cb(rd_actor *self, rd_msg *reply, int err, void *ctx)
{
    listener *l = self->state;
    slot *s;
    conn *c = token_conn(l, (uint64_t)(uintptr_t)ctx, &s);
    if (c == NULL || s->state != SLOT_WAIT) {
        msg_free(reply);
        return 0;
    }
    if (err < 0 || reply == NULL) {
        int timeout = err == -ETIMEDOUT;
        log_warn(timeout ? "http_reply_timeout" : "http_reply_cancelled",
                 KV_STR("route", l->routes->r[s->route].pattern),
                 KV_INT("request", (int64_t)(uintptr_t)ctx));
        s->reply = local_response(timeout ? 504 : 503, timeout ? "timeout" : "unavailable",
                                  timeout ? "The request took too long; try again."
                                          : "The service is shutting down; try again.",
                                  timeout ? NULL : "Retry-After: 1\r\n");
    } else if (reply->type != MSG_HTTP_RESPONSE) {
        log_error("http_bad_reply", KV_STR("type", msg_name((rd_msg_type)reply->type)));
        msg_free(reply);
        s->reply =
            local_response(500, "internal", "The server failed to answer; see its logs.", NULL);
    } else {
        s->reply = reply;
    }
    s->state = SLOT_READY;
    if (c->cur.active && c->cur.streaming && c->cur.token == (uint64_t)(uintptr_t)ctx) {
        /* Answered before its body was all in: the rest is not read (the client may have held
         * it back waiting for 100 Continue), so the connection ends after this response. */
        c->cur.active = 0;
        c->cur.streaming = 0;
        c->in_off = c->in_len;
        c->no_more = 1;
        c->close_after = 1;
    }
    conn_flush(c);
    if (conn_finished(c))
        start_linger(c);
    else if (c->in_len > c->in_off && !c->in_process)
        conn_process(c);
    return 0;
}

/* Builds MSG_HTTP_REQUEST from the head at in + in_off and the body at `body`, and sends it. */
static int dispatch(conn *c, const http1_request *req, int route_id, const uint32_t *poff,
                    const uint32_t *plen, uint32_t np, const char *body, size_t body_len,
                    int keep_alive, int64_t stream_len, int body_refused)
{
    listener *l = c->l;
    const route *rt = &l->routes->r[route_id];
    const char *base = c->in + c->in_off;
    size_t head_len = c->cur.head_len;
    size_t fields_off = (head_len + body_len + 7) & ~(size_t)7;
    size_t size = fields_off + req->num_headers * sizeof(rd_http_field);
    /* A request that fits a pooled message travels in it: no allocation of its own, and no
     * reference count to drop (a locked operation) when it is freed. */
    rd_msg *m;
    rd_buf *raw;
    int inline_raw = sizeof(rd_buf) + size <= REQUEST_INLINE_MAX;
    if (inline_raw) {
        void *tail;
        m = msg_new_tail(MSG_HTTP_REQUEST, sizeof(rd_buf) + size, &tail);
        raw = buf_init(tail, size);
    } else {
        m = msg_new(MSG_HTTP_REQUEST);
        raw = buf_new(size);
    }
    memcpy(raw->data, base, head_len);
    if (body_len)
        memcpy(raw->data + head_len, body, body_len);
    rd_http_field *f = (rd_http_field *)(void *)(raw->data + fields_off);
    for (size_t i = 0; i < req->num_headers; i++) {
        f[i].name_off = (uint32_t)(req->headers[i].name.p - base);
        f[i].name_len = (uint32_t)req->headers[i].name.len;
        f[i].value_off = (uint32_t)(req->headers[i].value.p - base);
        f[i].value_len = (uint32_t)req->headers[i].value.len;
    }
    raw->len = size;

    struct rd_msg_http_request *q = msg_body(m, http_request);
    q->raw = raw;
    q->raw_inline = (uint8_t)inline_raw;
    q->route = (uint32_t)route_id;
    q->method = method_bit(req->method);
    q->minor = (uint8_t)req->minor;
    q->path_off = (uint32_t)(req->path.p - base);
    q->path_len = (uint32_t)req->path.len;
    q->query_off = (uint32_t)(req->query.p - base);
    q->query_len = (uint32_t)req->query.len;
    q->fields_off = (uint32_t)fields_off;
    q->num_fields = (uint32_t)req->num_headers;
    q->body_off = (uint32_t)head_len;
    q->body_len = (uint32_t)body_len;
    for (uint32_t i = 0; i < np; i++) {
        q->param_off[i] = q->path_off + poff[i];
        q->param_len[i] = plen[i];
    }
    q->num_params = np;
    q->recv_ns = rd_turn_ns();
    memcpy(q->peer, c->peer, sizeof(q->peer));
    if (stream_len > 0) {
        q->body_stream = 1;
        q->content_length = (uint64_t)stream_len;
    }
    q->body_refused = (uint8_t)body_refused;

    slot *s = slot_new(c, route_id, q->method == RD_HTTP_HEAD, keep_alive);
    s->http10 = req->minor == 0;
    if (!keep_alive)
        c->no_more = 1;
    uint64_t token = make_token(c, s->seq);
    q->stream = token;
    rd_actor *to = rt->targets[l->loop_idx % (uint32_t)rt->ntargets];
    int r = actor_request(l->self, to, m, rt->timeout_ms, reply_cb, (void *)(uintptr_t)token);
    if (r < 0) {
        log_warn("http_target_busy", KV_STR("route", rt->pattern),
                 KV_INT("request", (int64_t)token), KV_ERRNO(r));
        msg_free(m);
        s->reply = local_response(503, "busy", "The server is busy; try again shortly.",
                                  "Retry-After: 1\r\n");
        s->state = SLOT_READY;
        return r;
    }
    c->cur.target = to;
    c->cur.token = token;
    return 0;
}

/* Finds the route of a parsed request: its id, or -404 / -405 (with `allow` filled). */
static int find_route(const listener *l, const http1_request *req, uint32_t *poff, uint32_t *plen,
                      uint32_t *np, unsigned *allow)
{
    unsigned bit = method_bit(req->method);
    *allow = 0;
    uint64_t first = 0;
    if (req->path.len > 0 && req->path.p[0] == '/') {
        const char *p = req->path.p + 1;
        const char *e = memchr(p, '/', req->path.len - 1);
        first = seg_tag(p, e ? (size_t)(e - p) : req->path.len - 1);
    }
    /* The count and the tags in locals: route_match's stores through uint32_t pointers may
     * alias an int, and the scan kept its state in memory, a store and a load per route. */
    const uint64_t *tags = l->routes->first;
    const int n = l->routes->n;
    for (int i = 0; i < n; i++) {
        uint64_t f = tags[i];
        if (f != 0 && f != first)
            continue;
        const route *rt = &l->routes->r[i];
        if (!route_match(rt, req->path, poff, plen, np))
            continue;
        if (rt->methods & bit)
            return i;
        *allow |= rt->methods;
    }
    return *allow ? -405 : -404;
}

/* Worth running the parser: the head may be complete ("\r\n\r\n" arrived), or a line ended
 * (a bad one is refused at once), or this is the first data (garbage such as TLS is refused
 * before a timeout). Each byte is searched once. */
static int head_worth_parsing(conn *c)
{
    const char *p = c->in + c->in_off;
    uint32_t avail = c->in_len - c->in_off;
    uint32_t from = c->scan;
    int first = c->scan == 0;
    c->scan = avail;
    return first || memchr(p + from, '\n', avail - from) != NULL;
}

/* The current request's body is in: parse the head again (it is in place) and dispatch. */
static void complete_request(conn *c, const char *body, size_t body_len, uint32_t consumed)
{
    http1_header hdrs[HTTP1_MAX_HEADERS];
    http1_request req;
    http1_framing fr;
    uint32_t poff[RD_HTTP_MAX_PARAMS], plen[RD_HTTP_MAX_PARAMS], np;
    unsigned allow;
    http1_parse_request(c->in + c->in_off, c->cur.head_len, &req, hdrs, HTTP1_MAX_HEADERS);
    http1_framing_of(&req, &fr);
    int id = find_route(c->l, &req, poff, plen, &np, &allow);
    dispatch(c, &req, id, poff, plen, np, body, body_len, fr.keep_alive, -1, 0);
    c->cur.active = 0;
    c->in_off += consumed;
    c->scan = 0;
}

/* Advances the body of the current request with what has arrived. Returns 1 when the request
 * was dispatched (or failed), 0 when more input is needed. */
/* Tells the target of a streamed body that it will not complete. */
static void stream_fail(conn *c)
{
    if (!c->cur.active || !c->cur.streaming)
        return;
    rd_msg *m = msg_new(MSG_HTTP_BODY);
    struct rd_msg_http_body *b = msg_body(m, http_body);
    b->stream = c->cur.token;
    b->failed = 1;
    if (actor_send(c->cur.target, m) < 0)
        msg_free(m); /* the target is gone or full: its request times out instead */
    c->cur.active = 0;
    c->cur.streaming = 0;
}

/* Forwards what has arrived of a streamed body, in RD_HTTP_BODY_CHUNK pieces (the last may be
 * shorter), while the window allows. Returns 1 when the body is complete, 0 when it waits. */
static int stream_progress(conn *c)
{
    for (;;) {
        uint32_t avail = c->in_len - c->in_off;
        uint64_t k = c->cur.need < RD_HTTP_BODY_CHUNK ? c->cur.need : RD_HTTP_BODY_CHUNK;
        if (avail < k || c->cur.inflight + k > RD_HTTP_BODY_WINDOW)
            return 0;
        rd_msg *m = msg_new(MSG_HTTP_BODY);
        struct rd_msg_http_body *b = msg_body(m, http_body);
        b->stream = c->cur.token;
        b->data = buf_new((size_t)k);
        memcpy(b->data->data, c->in + c->in_off, (size_t)k);
        b->data->len = (size_t)k;
        b->last = k == c->cur.need;
        int r = actor_send(c->cur.target, m);
        if (r < 0) {
            log_warn("http_body_refused", KV_INT("request", (int64_t)c->cur.token), KV_ERRNO(r));
            msg_free(m);
            c->cur.active = 0;
            c->cur.streaming = 0;
            conn_abort(c);
            return 1;
        }
        c->in_off += (uint32_t)k;
        c->cur.need -= k;
        c->cur.inflight += k;
        if (c->cur.need == 0) {
            c->cur.active = 0;
            c->cur.streaming = 0;
            c->scan = 0;
            return 1;
        }
    }
}

static int body_progress(conn *c)
{
    if (c->cur.streaming)
        return stream_progress(c);
    char *body = c->in + c->in_off + c->cur.head_len;
    uint32_t avail = c->in_len - c->in_off - c->cur.head_len;
    if (!c->cur.chunked) {
        if (avail < c->cur.need)
            return 0;
        complete_request(c, body, (size_t)c->cur.need, c->cur.head_len + (uint32_t)c->cur.need);
        return 1;
    }
    size_t consumed, produced;
    int r = http1_chunked_decode(&c->cur.ch, body + c->cur.src, avail - c->cur.src, &consumed,
                                 body + c->cur.dst, &produced);
    if (r == HTTP1_BAD) {
        respond_error(c, -1, 400, "bad_request", "The chunked body is malformed.", NULL, 1);
        c->cur.active = 0;
        return 1;
    }
    c->cur.src += (uint32_t)consumed;
    c->cur.dst += (uint32_t)produced;
    /* Close the gap the chunk framing left, so the buffer holds the decoded body, not the
     * raw one (tiny chunks would otherwise cost several times the body limit). */
    if (c->cur.src > c->cur.dst) {
        uint32_t tail = avail - c->cur.src;
        memmove(body + c->cur.dst, body + c->cur.src, tail);
        c->in_len -= c->cur.src - c->cur.dst;
        c->cur.src = c->cur.dst;
    }
    if (c->cur.dst > c->cur.limit) {
        respond_error(c, -1, 413, "body_too_large", "The request body is larger than allowed.",
                      NULL, 1);
        c->cur.active = 0;
        return 1;
    }
    if (r == 0)
        return 0;
    complete_request(c, body, c->cur.dst, c->cur.head_len + c->cur.src);
    return 1;
}

static void send_continue(conn *c)
{
    static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
    out_put(c, cont, sizeof(cont) - 1);
    c->cur.expect = 0;
}

/* Parses what it can: heads, bodies, pipelined requests, until input runs out, the pipeline
 * is full, the output backs up, or the connection is ending. */
/* 308 to the same host (its Host header without the port), the HTTPS port and the same
 * target. 308, not 301: a POST stays a POST. */
static slot *respond_redirect(conn *c, const http1_request *req, int close)
{
    const http1_header *h = http1_find_header(req, "host");
    http1_str host = h ? h->value : (http1_str){"", 0};
    size_t hl = host.len;
    if (hl > 0 && host.p[0] == '[') {
        const char *rb = memchr(host.p, ']', hl);
        hl = rb ? (size_t)(rb - host.p) + 1 : 0;
    } else {
        const char *colon = memchr(host.p, ':', hl);
        if (colon != NULL)
            hl = (size_t)(colon - host.p);
    }
    int ok = hl > 0 && hl <= 255;
    for (size_t i = 0; i < hl && ok; i++) {
        char ch = host.p[i];
        ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
             ch == '.' || ch == '-' || ch == '[' || ch == ']' || ch == ':';
    }
    char hdr[1000];
    char port[8] = "";
    if (c->l->cfg.redirect_port != 443)
        snprintf(port, sizeof(port), ":%u", c->l->cfg.redirect_port);
    if (!ok)
        return respond_error(c, -1, 400, "bad_host",
                             "The request needs a Host header naming this server to be "
                             "redirected to HTTPS.",
                             NULL, 1);
    int n = snprintf(hdr, sizeof(hdr), "Location: https://%.*s%s%.*s\r\n", (int)hl, host.p, port,
                     (int)req->target.len, req->target.p);
    if (n < 0 || (size_t)n >= sizeof(hdr))
        return respond_error(c, -1, 400, "url_too_long",
                             "The URL is too long to redirect; use https:// directly.", NULL, 1);
    return respond_error(c, -1, 308, "https_required", "This server speaks HTTPS.", hdr, close);
}

static void parse_loop(conn *c)
{
    listener *l = c->l;
    while (!c->close_after && wants_input(c) && !c->closing && !c->lingering &&
           pending(c) < PIPELINE && c->out[c->fill].len < OUT_STALL) {
        if (l->stopping && c->stop_budget == 0 && !c->cur.active)
            break;
        if (c->cur.active) {
            if (body_progress(c))
                continue;
            /* Only now, in order after earlier answers, and only if the body is not here. */
            if (c->cur.expect && pending(c) == 0)
                send_continue(c);
            break;
        }
        uint32_t avail = c->in_len - c->in_off;
        if (avail == 0)
            break;
        http1_header hdrs[HTTP1_MAX_HEADERS];
        http1_request req;
        int n = HTTP1_PARTIAL;
        if (head_worth_parsing(c))
            n = http1_parse_request(c->in + c->in_off, avail, &req, hdrs, HTTP1_MAX_HEADERS);
        if (n == HTTP1_PARTIAL) {
            if (avail > HEAD_MAX)
                respond_error(c, -1, 431, "headers_too_large",
                              "The request line and headers exceed 16 KiB.", NULL, 1);
            break;
        }
        if (l->stopping && c->stop_budget)
            c->stop_budget--;
        if (n == HTTP1_TOO_MANY_HEADERS || n > HEAD_MAX) {
            respond_error(c, -1, 431, "headers_too_large",
                          n > HEAD_MAX ? "The request line and headers exceed 16 KiB."
                                       : "The request has more than 100 headers.",
                          NULL, 1);
            break;
        }
        http1_framing fr;
        if (n < 0 || http1_framing_of(&req, &fr) < 0) {
            respond_error(c, -1, 400, "bad_request",
                          n < 0 ? "The request is not valid HTTP/1.1."
                                : "The request's length is ambiguous or malformed.",
                          NULL, 1);
            break;
        }
        int has_body = fr.chunked || fr.content_length > 0;
        if (l->cfg.redirect_port) {
            /* A redirect listener: the body (if any) is not read, as for an unrouted path. */
            slot *s = respond_redirect(c, &req, has_body || !fr.keep_alive);
            if (s != NULL)
                s->head_only = method_bit(req.method) == RD_HTTP_HEAD;
            if (has_body)
                break;
            c->in_off += (uint32_t)n;
            c->scan = 0;
            continue;
        }
        uint32_t poff[RD_HTTP_MAX_PARAMS], plen[RD_HTTP_MAX_PARAMS], np;
        unsigned allow;
        int id = find_route(l, &req, poff, plen, &np, &allow);
        if (id < 0) {
            /* The body of an unrouted request is not read: the connection ends after it. */
            char hdr[96];
            if (id == -405)
                allow_header(allow, hdr, sizeof(hdr));
            slot *s = respond_error(
                c, -1, id == -405 ? 405 : 404, id == -405 ? "method_not_allowed" : "not_found",
                id == -405 ? "This path does not take that method." : "No route matches this path.",
                id == -405 ? hdr : NULL, has_body || !fr.keep_alive);
            if (s != NULL)
                s->head_only = method_bit(req.method) == RD_HTTP_HEAD;
            if (!has_body)
                c->in_off += (uint32_t)n;
            c->scan = 0;
            continue;
        }
        size_t limit = l->routes->r[id].body_limit;
        if (fr.content_length > (int64_t)limit) {
            respond_error(c, id, 413, "body_too_large", "The request body is larger than allowed.",
                          NULL, 1);
            break;
        }
        memset(&c->cur, 0, sizeof(c->cur));
        c->cur.head_len = (uint32_t)n;
        c->cur.limit = limit;
        const route *rt = &l->routes->r[id];
        if (has_body && rt->gate != NULL && rt->gate(rt->gate_ctx, &req, c->peer) != 0) {
            /* Refused from its head (no or bad credentials): the body is not read, so an
             * unauthenticated client cannot make us hold or buffer one. Its target answers
             * (and counts the refusal); the connection ends after that answer. */
            dispatch(c, &req, id, poff, plen, np, NULL, 0, 0, -1, 1);
            c->in_off = c->in_len;
            c->scan = 0;
            break;
        }
        if (!has_body) {
            dispatch(c, &req, id, poff, plen, np, NULL, 0, fr.keep_alive, -1, 0);
            c->in_off += (uint32_t)n;
            c->scan = 0;
            continue;
        }
        if (l->routes->r[id].methods & RD_HTTP_STREAM_BODY) {
            if (fr.chunked) {
                respond_error(c, id, 411, "length_required",
                              "Send this body with a Content-Length.", NULL, 1);
                break;
            }
            /* The head goes now; the body follows in MSG_HTTP_BODY pieces. */
            if (dispatch(c, &req, id, poff, plen, np, NULL, 0, fr.keep_alive, fr.content_length,
                         0) < 0) {
                c->no_more = 1; /* the body is not read: the connection ends after the 503 */
                break;
            }
            c->in_off += (uint32_t)n;
            c->scan = 0;
            c->cur.active = 1;
            c->cur.streaming = 1;
            c->cur.head_len = 0;
            c->cur.need = (uint64_t)fr.content_length;
            if (fr.expect_continue && req.minor >= 1 && pending(c) == 1)
                send_continue(c);
            c->last_ns = rd_turn_ns();
            body_window_start(c);
            continue;
        }
        c->cur.active = 1;
        c->cur.chunked = (uint8_t)fr.chunked;
        c->cur.need = fr.chunked ? 0 : (uint64_t)fr.content_length;
        c->cur.expect = (uint8_t)(fr.expect_continue && req.minor >= 1);
        c->last_ns = rd_turn_ns();
        body_window_start(c);
    }
    if (c->in_off == c->in_len) {
        c->in_off = c->in_len = 0;
        c->scan = 0;
    }
}

static void conn_process(conn *c)
{
    c->in_process = 1;
    for (int round = 0; round < 4; round++) {
        uint16_t before = c->seq_head;
        parse_loop(c);
        conn_flush(c);
        /* Local answers free slots at once; parse again if that unblocked the pipeline. */
        if (c->seq_head == before || c->in_len == c->in_off)
            break;
    }
    c->in_process = 0;
    /* A partial head starts the header clock. */
    if (!c->cur.active && c->in_len > c->in_off && !c->lingering && !c->closing && !c->no_more) {
        timer_by(c, c->head_start_ns + ms_ns(c->l->cfg.header_timeout_ms));
    }
    if (conn_finished(c))
        start_linger(c);
}

/* ---- input ---- */

static int in_append(conn *c, const char *p, uint32_t n)
{
    if (c->in_off == c->in_len && !c->cur.active) {
        c->in_off = c->in_len = 0;
        c->scan = 0;
        c->head_start_ns = rd_turn_ns();
    }
    if (c->in_cap - c->in_len < n && c->in_off > 0) {
        memmove(c->in, c->in + c->in_off, c->in_len - c->in_off);
        c->in_len -= c->in_off;
        c->in_off = 0;
    }
    if (c->in_cap - c->in_len < n) {
        size_t need = (size_t)c->in_len + n;
        if (need > c->l->in_max)
            return -ENOBUFS;
        size_t cap = c->in_cap ? c->in_cap : IN_BASE;
        while (cap < need)
            cap *= 2;
        /* in_cap 0: no buffer (conn_trim gave it back) */
        if (c->in_cap == 0)
            bufs_held(c, 1);
        char *np = c->in_cap == 0 && cap == IN_BASE ? spare_take(&c->l->bufs) : NULL;
        if (np == NULL)
            np = rd_realloc(c->in, cap, "growing an HTTP input buffer");
        c->in = np;
        c->in_cap = (uint32_t)cap;
    }
    memcpy(c->in + c->in_len, p, n);
    c->in_len += n;
    return 0;
}

static void on_recv(rd_op *op, int res, uint32_t flags);

static void arm_recv(conn *c)
{
    struct io_uring_sqe *sqe = loop_sqe(c->l->loop, &c->recv_op);
    io_uring_prep_recv_multishot(sqe, c->fd, NULL, 0, 0);
    sqe->flags |= IOSQE_BUFFER_SELECT;
    sqe->buf_group = c->l->bgid;
    c->recv_armed = 1;
}

static void cancel_recv(conn *c)
{
    struct io_uring_sqe *sqe = loop_sqe(c->l->loop, NULL);
    io_uring_prep_cancel(sqe, &c->recv_op, 0);
}

static void recycle(listener *l, int bid)
{
    io_uring_buf_ring_add(l->br, l->br_mem + (size_t)bid * BR_SIZE, BR_SIZE, (unsigned short)bid,
                          io_uring_buf_ring_mask(BR_ENTRIES), 0);
    io_uring_buf_ring_advance(l->br, 1);
}

static void on_recv(rd_op *op, int res, uint32_t flags)
{
    conn *c = (conn *)(void *)((char *)op - offsetof(conn, recv_op));
    listener *l = c->l;
    if (!(flags & IORING_CQE_F_MORE))
        c->recv_armed = 0;
    if (res > 0 && (flags & IORING_CQE_F_BUFFER)) {
        int bid = (int)(flags >> IORING_CQE_BUFFER_SHIFT);
        int r = 0;
        if (c->tls_on)
            r = tls_take(c, l->br_mem + (size_t)bid * BR_SIZE, (uint32_t)res);
        else if (!c->closing && !c->lingering && wants_input(c))
            r = in_append(c, l->br_mem + (size_t)bid * BR_SIZE, (uint32_t)res);
        recycle(l, bid);
        if (r < 0) {
            conn_abort(c); /* it sent far more than it reads: cut off */
            return;
        }
        c->last_ns = rd_turn_ns();
        c->win_bytes += (uint64_t)res;
        if (!c->closing && !c->lingering)
            conn_process(c);
    } else if (res == 0) {
        c->peer_eof = 1;
        c->recv_armed = 0;
        if (c->lingering ||
            (!c->cur.active && c->in_len == c->in_off && !pending(c) && !sending_or_due(c))) {
            conn_abort(c);
            return;
        }
        if (endless_stream(c)) {
            conn_abort(c); /* nobody reads an endless stream after hanging up */
            return;
        }
        if (c->cur.active || c->in_len > c->in_off) {
            /* The request it was sending will never complete. */
            stream_fail(c);
            c->close_after = 1;
            if (conn_finished(c)) {
                conn_abort(c);
                return;
            }
        }
    } else if (res < 0 && res != -ENOBUFS && res != -ECANCELED) {
        c->recv_armed = 0;
        conn_abort(c);
        return;
    }
    if (c->closing) {
        conn_abort(c);
        return;
    }
    if (c->peer_eof)
        return;
    /* Stalled with a backlog (the pipeline or the output is full): stop reading until the
     * output drains (on_send re-arms), so a client that does not read cannot grow us. */
    int stalled = (c->in_len - c->in_off > BACKLOG_PAUSE && (!c->cur.active || c->cur.streaming)) ||
                  c->tls_in_len > TLS_IN_MAX / 2;
    if (c->recv_armed) {
        if (stalled && !c->paused) {
            c->paused = 1;
            cancel_recv(c);
            log_debug("http_recv_paused", KV_INT("loop", loop_index(l->loop)),
                      KV_INT("backlog", c->in_len - c->in_off));
        }
        return;
    }
    if (stalled && !c->lingering) {
        c->paused = 1;
        return;
    }
    c->paused = 0;
    arm_recv(c);
}

/* ---- connection life ---- */

static void conn_release(conn *c)
{
    listener *l = c->l;
    loop_timer_cancel(l->loop, &c->timer);
    close(c->fd);
    if (c->tls_on)
        tls_conn_end(c->tls);
    c->tls_on = 0;
    c->tls_in_len = 0;
    /* A stream whose producer has nothing queued or unacknowledged would otherwise learn that
     * its client is gone only when it next sends (an SSE stream: at its next keep-alive). */
    for (int i = 0; c->slots != NULL && i < PIPELINE; i++) {
        slot *s = &c->slots[i];
        int told = s->state != SLOT_STREAM || s->watch == NULL || s->parts != NULL;
        for (int k = 0; k < c->ack_len && !told; k++) {
            int j = (c->ack_head + k) % PIPELINE;
            told = c->acks[j].to == s->watch && c->acks[j].stream == s->watch_stream;
        }
        if (!told)
            send_ack(s->watch, s->watch_stream, 0, 1);
    }
    acks_release(c, 1);
    stream_fail(c);
    msg_free(c->held.part); /* closes its file */
    c->held.part = NULL;
    pipe_close(c);
    for (int i = 0; c->slots != NULL && i < PIPELINE; i++) {
        slot *s = &c->slots[i];
        msg_free(s->reply);
        while (s->parts) {
            rd_msg *m = s->parts;
            s->parts = (rd_msg *)(void *)atomic_load_explicit(&m->node.next, memory_order_relaxed);
            drop_part(m);
        }
        memset(s, 0, sizeof(*s));
    }
    c->seq_head = c->seq_next; /* nothing is owed any more */
    /* A closed connection's entry keeps nothing either (conn_trim). */
    c->out[0].len = c->out[1].len = 0;
    c->in_len = c->in_off = 0;
    c->ack_len = 0;
    conn_trim(c);
    c->in_use = 0;
    c->gen++;
    if (c->client >= 0)
        atomic_fetch_sub_explicit(&l->routes->client_conns[c->client], 1, memory_order_relaxed);
    c->client = -1;
    if (c->reject) {
        l->live_reject--;
        c->next_free = l->free_reject;
        l->free_reject = c;
    } else {
        l->live--;
        metrics_gauge_add(l->open_conns, -1);
        c->next_free = l->free_list;
        l->free_list = c;
    }
}

/* Ends the connection now: cancels its reads, and frees it once no operation is in flight. */
static void conn_abort(conn *c)
{
    if (!c->in_use)
        return;
    if (!c->closing) {
        c->closing = 1;
        loop_timer_cancel(c->l->loop, &c->timer);
        if (c->recv_armed)
            cancel_recv(c);
        /* A splice to a client that stopped reading blocks in the kernel's worker: shutting
         * the socket ends it now. */
        if ((c->sending && c->held.part != NULL) || c->tls_sending)
            shutdown(c->fd, SHUT_RDWR);
    }
    if (c->tls_app_active && !c->tls_sending) {
        /* A write waiting on the engine (the handshake never finished) will not leave. */
        tls_app_finish(c, -ECANCELED); /* ends in conn_abort again */
        return;
    }
    /* Not while on the due list either: the entry is released from there (sends_due), so a
     * connection reused in the same turn cannot be linked twice. */
    if (!c->recv_armed && !c->sending && !c->tls_sending && !c->send_due)
        conn_release(c);
}

static void conn_timer(rd_timer *t)
{
    conn *c = (conn *)(void *)((char *)t - offsetof(conn, timer));
    listener *l = c->l;
    uint64_t now = rd_now_ns(), due;
    int answer = 0; /* 408 before closing */
    int slow = 0;   /* the body fell below its minimum rate */
    if (c->lingering || c->closing) {
        conn_abort(c);
        return;
    }
    if (c->tls_on && !c->tls_ready) {
        /* The handshake has the head's deadline, counted from the accept: a client cannot
         * hold the connection with a byte now and then. */
        due = c->accept_ns + ms_ns(l->cfg.header_timeout_ms);
        if (now < due)
            loop_timer_start(l->loop, t, due - now, 0);
        else
            conn_abort(c);
        return;
    }
    if (c->cur.active) {
        due = c->last_ns + ms_ns(l->cfg.idle_timeout_ms);
        answer = 1;
        if (l->cfg.body_min_rate) {
            uint64_t elapsed = now - c->win_start_ns;
            if (elapsed >= ms_ns(BODY_WINDOW_MS)) {
                if (body_held(c) ||
                    c->win_bytes * 1000000000ull >= (uint64_t)l->cfg.body_min_rate * elapsed) {
                    c->win_start_ns = now;
                    c->win_bytes = 0;
                } else {
                    slow = 1;
                    due = now;
                    log_info("http_body_too_slow", KV_INT("loop", loop_index(l->loop)),
                             KV_STR("peer", c->peer), KV_INT("bytes", (int64_t)c->win_bytes),
                             KV_INT("ms", (int64_t)(elapsed / 1000000)));
                }
            }
            uint64_t wdue = c->win_start_ns + ms_ns(BODY_WINDOW_MS);
            if (wdue < due)
                due = wdue;
        }
    } else if (c->no_more) {
        due = now + ms_ns(l->cfg.idle_timeout_ms); /* answering its last request */
        if (!pending(c) && !sending_or_due(c))
            due = c->last_ns + ms_ns(l->cfg.idle_timeout_ms);
    } else if (c->in_len > c->in_off) {
        due = c->head_start_ns + ms_ns(l->cfg.header_timeout_ms);
        answer = 1;
    } else if (pending(c) || sending_or_due(c)) {
        loop_timer_start(l->loop, t, ms_ns(l->cfg.idle_timeout_ms), 0);
        return;
    } else if (!c->served) {
        due = c->last_ns + ms_ns(l->cfg.header_timeout_ms);
    } else {
        due = c->last_ns + ms_ns(l->cfg.idle_timeout_ms);
    }
    if (now < due) {
        loop_timer_start(l->loop, t, due - now, 0);
        return;
    }
    if (!answer || c->close_after) {
        conn_abort(c);
        return;
    }
    if (c->cur.streaming) {
        /* Its target answers once told; nothing more is read. */
        stream_fail(c);
        c->in_off = c->in_len;
        c->no_more = 1;
        c->close_after = 1;
        conn_flush(c);
        if (conn_finished(c))
            start_linger(c);
        return;
    }
    c->cur.active = 0;
    c->in_off = c->in_len; /* what was read of the request is dropped */
    respond_error(c, -1, 408, "timeout",
                  slow ? "The request body arrived slower than the server's minimum rate "
                         "(REELD_HTTP_BODY_MIN_RATE)."
                       : "The request did not arrive in time.",
                  NULL, 1);
    if (!c->closing) {
        conn_flush(c);
        if (conn_finished(c))
            start_linger(c);
    }
}

static void on_accept(rd_op *op, int res, uint32_t flags);

static void arm_accept(listener *l)
{
    struct io_uring_sqe *sqe = loop_sqe(l->loop, &l->accept_op);
    io_uring_prep_multishot_accept(sqe, l->fd, NULL, NULL, SOCK_CLOEXEC);
    l->accept_armed = 1;
}

/* The bucket of a client address in routes->client_conns (FNV-1a over the IPv4 address or the
 * IPv6 /64), or -1 for an address of another family. */
static int32_t client_bucket(const struct sockaddr_storage *sa)
{
    const uint8_t *p;
    size_t n;
    if (sa->ss_family == AF_INET) {
        p = (const uint8_t *)&((const struct sockaddr_in *)(const void *)sa)->sin_addr;
        n = 4;
    } else if (sa->ss_family == AF_INET6) {
        p = ((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr.s6_addr;
        static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
        n = 8;
        if (memcmp(p, mapped, sizeof(mapped)) == 0) {
            p += 12;
            n = 4;
        }
    } else {
        return -1;
    }
    return (int32_t)(fnv1a32(FNV32_BASIS, p, n) % CLIENT_BUCKETS);
}

static void conn_open(listener *l, int fd)
{
    struct sockaddr_storage sa;
    socklen_t salen = sizeof(sa);
    if (getpeername(fd, (struct sockaddr *)&sa, &salen) != 0)
        sa.ss_family = AF_UNSPEC;
    /* One address may hold at most max_conns_per_client of the connections, so slow clients
     * behind one address cannot take every slot. */
    int32_t client = client_bucket(&sa);
    int over_client = 0;
    if (client >= 0 && l->cfg.max_conns_per_client > 0 &&
        atomic_fetch_add_explicit(&l->routes->client_conns[client], 1, memory_order_relaxed) >=
            l->cfg.max_conns_per_client) {
        atomic_fetch_sub_explicit(&l->routes->client_conns[client], 1, memory_order_relaxed);
        over_client = 1;
    }
    if (l->cfg.max_conns_per_client == 0 || over_client)
        client = -1;
    int reject = 0;
    conn *c = over_client ? NULL : l->free_list;
    if (c != NULL) {
        l->free_list = c->next_free;
        l->live++;
        metrics_gauge_add(l->open_conns, 1);
    } else {
        /* Past the cap: a reserve slot answers 503 and closes, so the client learns why. */
        c = l->free_reject;
        if (c == NULL) {
            close(fd);
            metrics_add(l->rejected, 1);
            if (client >= 0)
                atomic_fetch_sub_explicit(&l->routes->client_conns[client], 1,
                                          memory_order_relaxed);
            return;
        }
        l->free_reject = c->next_free;
        l->live_reject++;
        reject = 1;
        metrics_add(l->rejected, 1);
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    char peer[48] = "";
    if (sa.ss_family != AF_UNSPEC)
        getnameinfo((struct sockaddr *)&sa, salen, peer, sizeof(peer), NULL, 0, NI_NUMERICHOST);
    uint32_t idx = c->idx, gen = c->gen;
    char *in = c->in;
    uint32_t in_cap = c->in_cap;
    outbuf o0 = c->out[0], o1 = c->out[1];
    slot *slots = c->slots; /* what conn_trim could not free at the close (a send in flight) */
    struct conn_ack *acks = c->acks;
    tls_conn *tls = c->tls;
    char *tls_in = c->tls_in, *tls_fbuf = c->tls_fbuf;
    memset(c, 0, sizeof(*c));
    c->tls = tls;
    c->tls_in = tls_in;
    c->tls_fbuf = tls_fbuf;
    c->l = l;
    c->fd = fd;
    c->idx = idx;
    c->gen = gen;
    c->in = in;
    c->in_cap = in_cap;
    c->out[0] = o0;
    c->out[1] = o1;
    c->slots = slots;
    c->acks = acks;
    c->in_use = 1;
    memcpy(c->peer, peer, sizeof(peer));
    c->reject = (uint8_t)reject;
    c->client = client;
    c->recv_op.done = on_recv;
    c->send_op.done = on_send;
    c->splice_op.done = on_splice_in;
    c->pipe[0] = c->pipe[1] = -1;
    c->timer.fire = conn_timer;
    c->last_ns = c->accept_ns = rd_turn_ns();
    c->tls_op.done = on_tls_sent;
    if (l->cfg.tls != NULL && !reject) {
        if (c->tls == NULL)
            c->tls = rd_calloc(1, sizeof(*c->tls), "a TLS engine");
        if (tls_conn_start(c->tls, l->cfg.tls) == 0) {
            c->tls_on = 1;
        } else {
            log_warn("tls_start_failed", KV_STR("peer", c->peer));
            c->closing = 1; /* released below, before any operation is in flight */
        }
    }
    if (c->closing || (reject && l->cfg.tls != NULL)) {
        /* HTTPS past the cap: a handshake only to say 503 would cost what the cap saves. */
        c->closing = 1;
        conn_abort(c);
        return;
    }
    loop_timer_start(l->loop, &c->timer, ms_ns(l->cfg.header_timeout_ms), 0);
    arm_recv(c);
    if (reject) {
        respond_error(c, -1, 503, "too_many_connections",
                      over_client ? "Too many open connections from your address; close some "
                                    "or try again shortly."
                                  : "The server has too many open connections; try again shortly.",
                      "Retry-After: 1\r\n", 1);
        conn_flush(c);
    }
}

/* Out of descriptors (or kernel memory), accepting again at once fails again at once: a busy
 * loop and a flood of log lines. Wait this long instead (as nginx does), with the pending
 * connections left in the backlog. */
#define ACCEPT_RETRY_MS 100
#define ACCEPT_LOG_MS   1000 /* at most one log line per this, with the count since the last */

static void accept_retry(rd_timer *t)
{
    listener *l = (listener *)(void *)((char *)t - offsetof(listener, accept_timer));
    if (!l->stopping && !l->accept_armed && l->fd >= 0)
        arm_accept(l);
}

static void accept_failed(listener *l, int res)
{
    l->accept_fails++;
    uint64_t now = rd_now_ns();
    if (l->accept_fail_log_ns == 0 || now - l->accept_fail_log_ns >= ms_ns(ACCEPT_LOG_MS)) {
        log_warn("http_accept_failed", KV_INT("loop", loop_index(l->loop)), KV_ERRNO(res),
                 KV_INT("failures", (int64_t)l->accept_fails));
        l->accept_fail_log_ns = now;
        l->accept_fails = 0;
    }
    if (res != -EMFILE && res != -ENFILE && res != -ENOBUFS && res != -ENOMEM)
        return;
    if (l->accept_armed) {
        struct io_uring_sqe *sqe = loop_sqe(l->loop, NULL);
        io_uring_prep_cancel(sqe, &l->accept_op, 0);
    }
    if (!loop_timer_armed(&l->accept_timer))
        loop_timer_start(l->loop, &l->accept_timer, ms_ns(ACCEPT_RETRY_MS), 0);
}

static void on_accept(rd_op *op, int res, uint32_t flags)
{
    listener *l = (listener *)(void *)((char *)op - offsetof(listener, accept_op));
    if (!(flags & IORING_CQE_F_MORE))
        l->accept_armed = 0;
    if (res >= 0) {
        if (l->stopping)
            close(res);
        else
            conn_open(l, res);
    } else if (res != -ECANCELED) {
        accept_failed(l, res);
    }
    if (l->accept_armed || loop_timer_armed(&l->accept_timer))
        return;
    if (l->stopping) {
        if (l->fd >= 0) {
            close(l->fd);
            l->fd = -1;
        }
        return;
    }
    arm_accept(l);
}

/* Graceful stop: no new connections; idle ones close now; busy ones finish the request they
 * are on (the one being read included) and then close. */
static void on_stop(rd_stop_hook *hook, rd_loop *loop)
{
    listener *l = (listener *)(void *)((char *)hook - offsetof(listener, stop_hook));
    l->stopping = 1;
    loop_timer_cancel(loop, &l->accept_timer);
    if (l->accept_armed) {
        struct io_uring_sqe *sqe = loop_sqe(loop, NULL);
        io_uring_prep_cancel(sqe, &l->accept_op, 0);
    } else if (l->fd >= 0) {
        close(l->fd);
        l->fd = -1;
    }
    for (uint32_t i = 0; i < l->nconns; i++) {
        conn *c = &l->conns[i];
        if (!c->in_use || c->closing || c->lingering)
            continue;
        int reading = c->cur.active || c->in_len > c->in_off;
        c->stop_budget = (uint8_t)reading;
        if (conn_finished(c) || (!reading && !pending(c) && !sending_or_due(c)))
            conn_abort(c);
    }
}

/* ---- the actor ---- */

static int listener_init(rd_actor *self, void *arg)
{
    listener *l = arg;
    l->self = self;
    l->loop = self->loop;
    l->loop_idx = (uint32_t)loop_index(self->loop);
    l->sends.fn = sends_due;
    l->held_hook.fn = publish_held;
    self->state = l;
    if (l->conns != NULL)
        return 0; /* a restart: the connections and the ring are still ours */
    uint32_t per_loop = (l->cfg.max_conns + (uint32_t)l->nloops - 1) / (uint32_t)l->nloops;
    l->nconns = per_loop + REJECT_RESERVE;
    if (l->nconns > TOKEN_IDX_MASK + 1 || loop_index(l->loop) >= 4096) {
        log_error("http_too_many_conns", KV_INT("per_loop", l->nconns));
        return -EINVAL;
    }
    l->conns = rd_calloc(l->nconns, sizeof(conn), "the HTTP listener's connections");
    size_t ring_bytes = BR_ENTRIES * sizeof(struct io_uring_buf);
    void *ring = rd_aligned(4096, ring_bytes, "the HTTP listener's buffer ring");
    void *mem = rd_aligned(4096, (size_t)BR_ENTRIES * BR_SIZE, "the HTTP listener's buffers");
    memset(ring, 0, ring_bytes);
    l->br = ring;
    l->br_mem = mem;
    static _Atomic uint16_t next_group;
    l->bgid = (uint16_t)(BR_GROUP + atomic_fetch_add(&next_group, 1));
    struct io_uring_buf_reg reg = {
        .ring_addr = (unsigned long)ring, .ring_entries = BR_ENTRIES, .bgid = l->bgid};
    int r = io_uring_register_buf_ring(loop_ring(l->loop), &reg, 0);
    if (r < 0) {
        log_error("http_buf_ring", KV_INT("loop", loop_index(l->loop)), KV_ERRNO(r));
        return r;
    }
    io_uring_buf_ring_init(l->br);
    for (int i = 0; i < BR_ENTRIES; i++)
        io_uring_buf_ring_add(l->br, l->br_mem + (size_t)i * BR_SIZE, BR_SIZE, (unsigned short)i,
                              io_uring_buf_ring_mask(BR_ENTRIES), i);
    io_uring_buf_ring_advance(l->br, BR_ENTRIES);
    for (uint32_t i = 0; i < l->nconns; i++) {
        conn *c = &l->conns[i];
        c->idx = i;
        c->l = l;
        if (i < per_loop) {
            c->next_free = l->free_list;
            l->free_list = c;
        } else {
            c->next_free = l->free_reject;
            l->free_reject = c;
        }
    }
    /* Lowest indexes first: reused slots keep their buffers warm. */
    conn *rev = NULL;
    while (l->free_list) {
        conn *c = l->free_list;
        l->free_list = c->next_free;
        c->next_free = rev;
        rev = c;
    }
    l->free_list = rev;
    l->in_max = HEAD_MAX + l->routes->max_body + 256 * 1024;
    l->accept_op.done = on_accept;
    l->accept_timer.fire = accept_retry;
    l->stop_hook.fn = on_stop;
    loop_on_stop(l->loop, &l->stop_hook);
    arm_accept(l);
    return 0;
}

/* A target used part of a streamed body: forward more, and read again if reading paused. */
static void body_acked(listener *l, const struct rd_msg_http_body_ack *a)
{
    slot *s;
    conn *c = token_conn(l, a->stream, &s);
    if (c == NULL || !c->cur.active || !c->cur.streaming || c->cur.token != a->stream)
        return;
    if (body_held(c))
        body_window_start(c);
    c->cur.inflight = a->bytes > c->cur.inflight ? 0 : c->cur.inflight - a->bytes;
    c->last_ns = rd_turn_ns();
    if (!c->in_process)
        conn_process(c);
    if (c->paused && !c->recv_armed && !c->closing && !c->lingering && !c->peer_eof &&
        c->in_len - c->in_off <= BACKLOG_PAUSE) {
        c->paused = 0;
        arm_recv(c);
    }
}

static int listener_handle(rd_actor *self, rd_msg *m)
{
    listener *l = self->state;
    if (m->type == MSG_HTTP_BODY_ACK) {
        body_acked(l, msg_body(m, http_body_ack));
        return RD_DONE;
    }
    if (m->type != MSG_HTTP_PART)
        return RD_DONE;
    slot *s;
    conn *c = token_conn(l, msg_body(m, http_part)->stream, &s);
    if (c == NULL) {
        drop_part(m); /* the client is gone: the producer is told to stop */
        return RD_KEPT;
    }
    atomic_store_explicit(&m->node.next, NULL, memory_order_relaxed);
    *s->tail = m;
    s->tail = (rd_msg **)(void *)&m->node.next;
    conn_flush(c);
    if (conn_finished(c))
        start_linger(c);
    return RD_KEPT;
}

/* The mailbox bound covers every reply that can be owed at once (each connection slot, its
 * whole pipeline), so a target's reply is never refused; streamed parts get the slack. */
static void listener_def_init(listener *l)
{
    uint32_t per_loop = (l->cfg.max_conns + (uint32_t)l->nloops - 1) / (uint32_t)l->nloops;
    uint64_t bound = (uint64_t)(per_loop + REJECT_RESERVE) * PIPELINE + 4096;
    l->def = (rd_actor_def){
        .name = "http_listener",
        .init = listener_init,
        .handle = listener_handle,
        .mailbox_bound = bound > INT32_MAX ? INT32_MAX : (int32_t)bound,
    };
}

static int open_socket(const char *addr, int *out)
{
    char host[256];
    const char *colon = strrchr(addr, ':');
    if (colon == NULL || (size_t)(colon - addr) >= sizeof(host))
        return -EINVAL;
    size_t hl = (size_t)(colon - addr);
    const char *h = addr;
    if (hl >= 2 && addr[0] == '[' && addr[hl - 1] == ']') {
        h++;
        hl -= 2;
    }
    memcpy(host, h, hl);
    host[hl] = 0;
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *res = NULL;
    if (getaddrinfo(hl ? host : NULL, colon + 1, &hints, &res) != 0 || res == NULL)
        return -EINVAL;
    int fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int err = 0;
    if (fd < 0) {
        err = -errno;
    } else {
        int one = 1;
        if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
            setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0 ||
            bind(fd, res->ai_addr, res->ai_addrlen) < 0 || listen(fd, 4096) < 0) {
            err = -errno;
            close(fd);
        }
    }
    freeaddrinfo(res);
    if (err == 0)
        *out = fd;
    return err;
}

int http_listener_start(rd_loop *loop, int nloops, const char *addr, const rd_http_config *cfg,
                        const rd_http_routes *routes, rd_actor **out)
{
    int fd;
    int r = open_socket(addr, &fd);
    if (r < 0)
        return r;
    listener *l = calloc(1, sizeof(*l));
    if (l == NULL) {
        close(fd);
        return -ENOMEM;
    }
    l->fd = fd;
    l->nloops = nloops;
    l->cfg = *cfg;
    l->routes = routes;
    l->m_requests = metrics_family("reeld_http_requests_total", "HTTP requests answered.",
                                   RD_COUNTER, "route,code", NULL, 0);
    l->m_duration = metrics_family("reeld_http_request_duration_seconds",
                                   "Time from a complete request head to its response.",
                                   RD_HISTOGRAM, "route", NULL, 0);
    rd_metric *open = metrics_family("reeld_http_open_connections", "Open HTTP connections.",
                                     RD_GAUGE, NULL, NULL, 0);
    l->open_conns = metrics_series(open, NULL);
    rd_metric *held = metrics_family(
        "reeld_http_connection_buffers",
        "Buffers (input, output, request slots) held by open HTTP connections: those with a "
        "request in flight or an answer being sent; an idle connection holds none.",
        RD_GAUGE, NULL, NULL, 0);
    l->held_bufs = metrics_series(held, NULL);
    rd_metric *rej = metrics_family("reeld_http_rejected_connections_total",
                                    "Connections refused with 503 past REELD_HTTP_MAX_CONNS.",
                                    RD_COUNTER, NULL, NULL, 0);
    l->rejected = metrics_series(rej, NULL);
    if (cfg->tls != NULL) {
        rd_metric *hs = metrics_family("reeld_tls_handshakes_total",
                                       "TLS handshakes on the listener, by outcome (failed: no "
                                       "common version or suite, not TLS, or cut short).",
                                       RD_COUNTER, "outcome", NULL, 0);
        const char *ok[] = {"ok"}, *failed[] = {"failed"};
        l->tls_ok = metrics_series(hs, ok);
        l->tls_failed = metrics_series(hs, failed);
    }
    listener_def_init(l);
    return actor_spawn(loop, &l->def, l, out);
}

void http_listener_free(rd_actor *a)
{
    if (a == NULL)
        return;
    listener *l = a->state ? a->state : a->arg;
    if (l == NULL)
        return;
    if (l->held_delta != 0) /* a last turn's, should its hooks not have run */
        metrics_gauge_add(l->held_bufs, l->held_delta);
    l->held_delta = 0;
    for (uint32_t i = 0; l->conns != NULL && i < l->nconns; i++) {
        conn *c = &l->conns[i];
        if (c->in_use) {
            close(c->fd);
            msg_free(c->held.part);
            pipe_close(c);
            for (int k = 0; c->slots != NULL && k < PIPELINE; k++) {
                msg_free(c->slots[k].reply);
                while (c->slots[k].parts) {
                    rd_msg *m = c->slots[k].parts;
                    c->slots[k].parts =
                        (rd_msg *)(void *)atomic_load_explicit(&m->node.next, memory_order_relaxed);
                    msg_free(m);
                }
            }
        }
        if (c->in_use && c->tls_on)
            tls_conn_end(c->tls);
        free(c->tls);
        free(c->tls_in);
        free(c->tls_fbuf);
        free(c->in);
        free(c->out[0].p);
        free(c->out[1].p);
        free(c->slots);
        free(c->acks);
    }
    if (l->fd >= 0)
        close(l->fd);
    for (uint32_t i = 0; i < l->npipes; i++) {
        close(l->pipes[i].fd[0]);
        close(l->pipes[i].fd[1]);
    }
    free(l->conns);
    free_spent(l);
    while (l->bufs.n)
        free(spare_take(&l->bufs));
    while (l->slots.n)
        free(spare_take(&l->slots));
    free(l->br);
    free(l->br_mem);
    free(l);
    a->state = NULL;
    a->arg = NULL;
}

/* ---- helpers for route targets ---- */

http1_str http_request_param(const rd_http_request *r, uint32_t i)
{
    if (i >= r->num_params)
        return (http1_str){r->raw->data, 0};
    return (http1_str){r->raw->data + r->param_off[i], r->param_len[i]};
}

http1_str http_request_header(const rd_http_request *r, const char *name)
{
    const rd_http_field *f = (const rd_http_field *)(const void *)(r->raw->data + r->fields_off);
    size_t n = strlen(name);
    for (uint32_t i = 0; i < r->num_fields; i++)
        if (f[i].name_len == n && strncasecmp(r->raw->data + f[i].name_off, name, n) == 0)
            return (http1_str){r->raw->data + f[i].value_off, f[i].value_len};
    return (http1_str){NULL, 0};
}

/* The fields zeroed, the arrays only emptied: a short reply touches the lines it writes. */
rd_msg *http_response_new(int status, const char *content_type)
{
    rd_msg *m =
        msg_new_head(MSG_HTTP_RESPONSE, offsetof(struct rd_msg_http_response, content_type));
    struct rd_msg_http_response *r = msg_body(m, http_response);
    r->status = (uint16_t)status;
    r->content_type[0] = r->headers[0] = r->small[0] = '\0';
    if (content_type)
        wbuf_copy(r->content_type, sizeof(r->content_type), content_type);
    return m;
}

static int send_reply(const rd_msg *request, rd_msg *reply)
{
    int r = actor_reply(request, reply);
    if (r < 0)
        msg_free(reply);
    return r;
}

int http_reply(const rd_msg *request, int status, const char *content_type, const void *body,
               size_t len)
{
    return http_reply_headers(request, status, content_type, body, len, NULL);
}

int http_reply_headers(const rd_msg *request, int status, const char *content_type,
                       const void *body, size_t len, const char *headers)
{
    rd_msg *m = http_response_new(status, content_type);
    struct rd_msg_http_response *r = msg_body(m, http_response);
    if (headers != NULL)
        snprintf(r->headers, sizeof(r->headers), "%s", headers);
    if (len <= RD_HTTP_SMALL_BODY) {
        if (len)
            memcpy(r->small, body, len);
        r->small_len = (uint32_t)len;
    } else {
        r->body = buf_new(len);
        memcpy(r->body->data, body, len);
        r->body->len = len;
    }
    return send_reply(request, m);
}

int http_reply_buf(const rd_msg *request, int status, const char *content_type, rd_buf *body)
{
    return http_reply_buf_headers(request, status, content_type, body, NULL);
}

int http_reply_buf_headers(const rd_msg *request, int status, const char *content_type,
                           rd_buf *body, const char *headers)
{
    rd_msg *m = http_response_new(status, content_type);
    struct rd_msg_http_response *r = msg_body(m, http_response);
    r->body = body;
    if (headers != NULL)
        wbuf_copy(r->headers, sizeof(r->headers), headers);
    return send_reply(request, m);
}

void http_cors_lines(const rd_msg *request, const struct cors_policy *policy, const char *expose,
                     char *out, size_t cap)
{
    http1_str o = http_request_header(msg_body(request, http_request), "origin");
    if (cors_response_lines(policy, o.p, o.len, expose, out, cap) < 0 && cap)
        out[0] = '\0';
}

int http_reply_preflight(const rd_msg *request, const struct cors_policy *policy,
                         const char *methods, const char *const *allowed_headers)
{
    const rd_http_request *q = msg_body(request, http_request);
    http1_str o = http_request_header(q, "origin");
    http1_str want = http_request_header(q, "access-control-request-method");
    http1_str hdrs = http_request_header(q, "access-control-request-headers");
    char out[512];
    if (cors_preflight(policy, o.p, o.len, want.p, want.len, hdrs.p, hdrs.len, methods,
                       allowed_headers, out, sizeof(out)) <= 0)
        out[0] = '\0';
    return http_reply_headers(request, 204, NULL, "", 0, out[0] ? out : NULL);
}

int http_reply_error(const rd_msg *request, int status, const char *code, const char *message)
{
    char body[RD_HTTP_SMALL_BODY];
    int n = http1_write_error_json(body, sizeof(body), code, message);
    return http_reply(request, status, "application/json", body, n > 0 ? (size_t)n : 0);
}

int http_reply_stream(const rd_msg *request, int status, const char *content_type,
                      int64_t content_length, const char *headers)
{
    rd_msg *m = http_response_new(status, content_type);
    struct rd_msg_http_response *r = msg_body(m, http_response);
    r->more = 1;
    r->content_length = content_length;
    if (headers)
        wbuf_copy(r->headers, sizeof(r->headers), headers);
    return send_reply(request, m);
}

int http_body_ack(rd_actor *listener_actor, uint64_t stream, uint64_t bytes)
{
    rd_msg *m = msg_new(MSG_HTTP_BODY_ACK);
    struct rd_msg_http_body_ack *a = msg_body(m, http_body_ack);
    a->stream = stream;
    a->bytes = bytes;
    int r = actor_send(listener_actor, m);
    if (r < 0)
        msg_free(m);
    return r;
}

int http_send_part(rd_actor *listener_actor, uint64_t stream, rd_buf *body, int last,
                   rd_actor *ack_to)
{
    rd_msg *m = msg_new(MSG_HTTP_PART);
    struct rd_msg_http_part *p = msg_body(m, http_part);
    p->stream = stream;
    p->body = body;
    p->last = (uint8_t)last;
    p->ack_to = ack_to;
    int r = actor_send(listener_actor, m);
    if (r < 0)
        msg_free(m);
    return r;
}

int http_send_file_part(rd_actor *listener_actor, uint64_t stream, int fd, uint64_t off,
                        uint64_t len, int last, rd_actor *ack_to)
{
    assert(fd >= 0 && len > 0);
    rd_msg *m = msg_new(MSG_HTTP_PART);
    struct rd_msg_http_part *p = msg_body(m, http_part);
    p->stream = stream;
    p->file = 1;
    p->fd = fd;
    p->file_off = off;
    p->file_len = len;
    p->last = (uint8_t)last;
    p->ack_to = ack_to;
    int r = actor_send(listener_actor, m);
    if (r < 0)
        msg_free(m); /* closes fd */
    return r;
}

int http_request_from_loopback(const struct rd_msg_http_request *q)
{
    const char *peer = q->peer;
    if (strncmp(peer, "::ffff:", 7) == 0)
        peer += 7;
    return strncmp(peer, "127.", 4) == 0 || strcmp(peer, "::1") == 0;
}
