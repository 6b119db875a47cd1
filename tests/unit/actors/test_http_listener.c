/* The listener end to end on one loop, through the route API: path parameters reach the
 * target, a streamed reply (head, then parts) leaves chunked and in order, a streamed reply
 * with a known length leaves as is (and one that falls short of it ends the connection), a target
 * that never answers gets the client a 504; file parts (spliced from a file) send the whole
 * file, a range, nothing for HEAD, and close their file when the client leaves mid-way. */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "actors/http_listener.h"
#include "src/rt/loop.h"
#include "src/rt/metrics.h"
#include "src/rt/runtime.h"
#include "tests/unit/test.h"

static int route_echo, route_stream, route_sized, route_silent, route_acked, route_short,
    route_upload;

/* The streamed-body route: bytes and pieces received, a checksum, acks sent one message late
 * (so the listener's window, not the target, is what holds the client back). */
static struct {
    rd_msg *request;
    uint64_t bytes, sum;
    int pieces, oversized; /* oversized: a piece above RD_HTTP_BODY_CHUNK */
    rd_msg *held;
} upload;
static int route_file;

/* The file that file parts come from: FILE_LEN bytes, byte i = file_byte(i). */
#define FILE_LEN (3 * 1024 * 1024 + 123) /* several pipe-fulls, not a multiple of a page */
#define HUGE_LEN                                                                                   \
    (64 << 20) /* more than socket buffers hold: a client that stops reading blocks it */
#define BIG_BUF (300 * 1000)
static char file_path[64], huge_path[64];
static int base_pipes;             /* pipes open before any file part (stdout may be one) */
static int file_acks, file_failed; /* acks of file parts: sent, client gone first */

static unsigned char file_byte(uint64_t i)
{
    return (unsigned char)(i * 7 + i / 4096);
}

/* The acked stream: one part in flight at a time, the next sent when the last is acked. */
static struct {
    rd_actor *listener;
    uint64_t stream;
    int sent, acks, failed;
} acked;

static void send_numbered_part(rd_actor *self)
{
    rd_buf *b = buf_new(8);
    b->len = (size_t)snprintf(b->data, 8, "part%d;", acked.sent);
    acked.sent++;
    http_send_part(acked.listener, acked.stream, b, acked.sent == 4, self);
}

/* Answers by route: echo the params, stream three parts chunked, stream two parts with a
 * known length, or never answer. */
static int upload_piece(rd_msg *m)
{
    const struct rd_msg_http_body *b = msg_body(m, http_body);
    if (upload.request == NULL)
        return RD_DONE;
    if (b->failed) {
        http_reply_error(upload.request, 400, "incomplete", "The body did not complete.");
        msg_free(upload.request);
        msg_free(upload.held);
        upload.request = NULL;
        upload.held = NULL;
        return RD_DONE;
    }
    upload.pieces++;
    upload.bytes += b->data->len;
    for (size_t i = 0; i < b->data->len; i++)
        upload.sum += (unsigned char)b->data->data[i];
    if (b->data->len > RD_HTTP_BODY_CHUNK)
        upload.oversized = 1;
    if (upload.held != NULL) {
        const struct rd_msg_http_body *h = msg_body(upload.held, http_body);
        http_body_ack(upload.request->from, h->stream, h->data->len);
        msg_free(upload.held);
        upload.held = NULL;
    }
    if (b->last) {
        http_body_ack(upload.request->from, b->stream, b->data->len);
        char body[64];
        int n = snprintf(body, sizeof(body), "%llu %llu %d", (unsigned long long)upload.bytes,
                         (unsigned long long)upload.sum, upload.pieces);
        http_reply(upload.request, 200, "text/plain", body, (size_t)n);
        msg_free(upload.request);
        upload.request = NULL;
        return RD_DONE;
    }
    upload.held = m;
    return RD_KEPT;
}

/* Routes told apart by their first segment (past its first 7 bytes too), one whose first
 * segment is a parameter, and the root: the target answers with the index in `named`. */
static const char *const named[] = {"/longfirst-1/n", "/longfirst-2/n", "/{p}/pfirst", "/"};
static int route_named[4];

static int target_handle(rd_actor *self, rd_msg *m)
{
    if (m->type == MSG_HTTP_BODY)
        return upload_piece(m);
    if (m->type == MSG_HTTP_PART_ACK) {
        const struct rd_msg_http_part_ack *a = msg_body(m, http_part_ack);
        if (a->bytes > 1000) { /* a file part's */
            file_acks += !a->failed;
            file_failed += a->failed;
        }
        if (a->stream == acked.stream) {
            acked.acks++;
            acked.failed += a->failed;
            if (!a->failed && acked.sent < 4)
                send_numbered_part(self);
        }
        return RD_DONE;
    }
    const struct rd_msg_http_request *q = msg_body(m, http_request);
    for (int i = 0; i < 4; i++) {
        if ((int)q->route == route_named[i]) {
            char body[16];
            int n = snprintf(body, sizeof(body), "named=%d", i);
            http_reply(m, 200, "text/plain", body, (size_t)n);
            return RD_DONE;
        }
    }
    if ((int)q->route == route_upload) {
        if (!q->body_stream || q->content_length == 0) {
            http_reply_error(m, 400, "no_body", "Expected a streamed body.");
            return RD_DONE;
        }
        memset(&upload, 0, sizeof(upload));
        upload.request = m;
        return RD_KEPT;
    }
    if ((int)q->route == route_file) {
        /* /t/file/whole, /t/file/range (bytes 1000..5999 as a 206), /t/file/chunked (length
         * unknown), /t/file/past (announces and asks for more than the file has), /t/file/huge
         * (HUGE_LEN bytes of a sparse file). */
        http1_str mode = http_request_param(q, 0);
        if (mode.len == 6 && memcmp(mode.p, "bigbuf", 6) == 0) {
            /* A large buffer part between two small ones: sent from its rd_buf, in order. */
            http_reply_stream(m, 200, "video/mp2t", 5 + BIG_BUF + 5, NULL);
            const char *ends[] = {"hello", "world"};
            for (int i = 0; i < 3; i++) {
                rd_buf *b = buf_new(i == 1 ? BIG_BUF : 5);
                if (i == 1) {
                    for (size_t k = 0; k < BIG_BUF; k++)
                        b->data[k] = (char)file_byte(k);
                    b->len = BIG_BUF;
                } else {
                    memcpy(b->data, ends[i / 2], 5);
                    b->len = 5;
                }
                http_send_part(m->from, q->stream, b, i == 2, NULL);
            }
            return RD_DONE;
        }
        int huge = mode.len == 4 && memcmp(mode.p, "huge", 4) == 0;
        int fd = open(huge ? huge_path : file_path, O_RDONLY | O_CLOEXEC);
        uint64_t off = 0, len = huge ? HUGE_LEN : FILE_LEN;
        int64_t clen = (int64_t)len;
        int status = 200;
        if (mode.len == 5 && memcmp(mode.p, "range", 5) == 0) {
            off = 1000, len = 5000, clen = 5000, status = 206;
        } else if (mode.len == 7 && memcmp(mode.p, "chunked", 7) == 0) {
            clen = -1;
        } else if (mode.len == 4 && memcmp(mode.p, "past", 4) == 0) {
            len = FILE_LEN + 100, clen = FILE_LEN + 100;
        }
        http_reply_stream(m, status, "video/mp2t", clen, NULL);
        http_send_file_part(m->from, q->stream, fd, off, len, clen >= 0, self);
        if (clen < 0)
            http_send_part(m->from, q->stream, NULL, 1, NULL);
        return RD_DONE;
    }
    if ((int)q->route == route_acked) {
        acked.listener = m->from;
        acked.stream = q->stream;
        acked.sent = acked.acks = acked.failed = 0;
        http_reply_stream(m, 200, "text/plain", -1, NULL);
        send_numbered_part(self);
        return RD_DONE;
    }
    if ((int)q->route == route_short) {
        /* Announces 10 bytes, sends 5 and ends: a producer whose source failed mid-body. */
        http_reply_stream(m, 200, "text/plain", 10, NULL);
        rd_buf *b = buf_new(5);
        memcpy(b->data, "hello", 5);
        b->len = 5;
        http_send_part(m->from, q->stream, b, 0, NULL);
        http_send_part(m->from, q->stream, NULL, 1, NULL);
        return RD_DONE;
    }
    if ((int)q->route == route_echo) {
        char body[128];
        http1_str a = http_request_param(q, 0), b = http_request_param(q, 1);
        http1_str ua = http_request_header(q, "x-test");
        int n = snprintf(body, sizeof(body), "%.*s|%.*s|%.*s", (int)a.len, a.p, (int)b.len, b.p,
                         (int)ua.len, ua.p ? ua.p : "");
        http_reply(m, 200, "text/plain", body, (size_t)n);
    } else if ((int)q->route == route_stream || (int)q->route == route_sized) {
        int sized = (int)q->route == route_sized;
        http_reply_stream(m, 200, "text/plain", sized ? 10 : -1, "X-Stream: 1\r\n");
        const char *parts[] = {"hello", "world", NULL};
        for (int i = 0; parts[i]; i++) {
            rd_buf *b = buf_new(5);
            memcpy(b->data, parts[i], 5);
            b->len = 5;
            http_send_part(m->from, q->stream, b, sized && parts[i + 1] == NULL, NULL);
        }
        if (!sized)
            http_send_part(m->from, q->stream, NULL, 1, NULL);
    }
    return RD_DONE;
}

static const rd_actor_def target_def = {.name = "test_target", .handle = target_handle};

static int port_of(int fd)
{
    struct sockaddr_in a;
    socklen_t len = sizeof(a);
    getsockname(fd, (struct sockaddr *)&a, &len);
    return ntohs(a.sin_port);
}

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    bind(fd, (struct sockaddr *)&a, sizeof(a));
    int p = port_of(fd);
    close(fd);
    return p;
}

static int dial(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    struct timeval tv = {.tv_sec = 5};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    for (int i = 0; i < 100; i++) {
        if (connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0)
            return fd;
        usleep(10000);
    }
    close(fd);
    return -1;
}

/* Sends `req` and reads until `until` appears in the answer (or EOF / timeout). */
static char *exchange(int port, const char *req, const char *until)
{
    static char buf[8192];
    int fd = dial(port);
    if (fd < 0)
        return strcpy(buf, "(no connection)");
    ssize_t w = write(fd, req, strlen(req));
    (void)w;
    size_t n = 0;
    buf[0] = 0;
    while (n < sizeof(buf) - 1 && strstr(buf, until) == NULL) {
        ssize_t r = read(fd, buf + n, sizeof(buf) - 1 - n);
        if (r <= 0)
            break;
        n += (size_t)r;
        buf[n] = 0;
    }
    close(fd);
    return buf;
}

/* Sends `req` and reads the answer until the connection closes, `want` bytes of body have come
 * after the first head, or `until` appears. Returns a malloc'd buffer (NUL-terminated; the
 * body may hold NULs) and its length. */
static char *fetch(int port_, const char *req, size_t want, const char *until, size_t *out_len)
{
    size_t cap = FILE_LEN + 8192, n = 0;
    char *buf = malloc(cap + 1);
    int fd = dial(port_);
    if (fd < 0 || buf == NULL) {
        *out_len = 0;
        return buf;
    }
    ssize_t w = write(fd, req, strlen(req));
    (void)w;
    for (;;) {
        buf[n] = 0;
        const char *body = strstr(buf, "\r\n\r\n");
        if (body != NULL && n - (size_t)(body + 4 - buf) >= want)
            break;
        if (until != NULL && memmem(buf, n, until, strlen(until)) != NULL)
            break;
        ssize_t r = read(fd, buf + n, cap - n);
        if (r <= 0)
            break;
        n += (size_t)r;
    }
    close(fd);
    buf[n] = 0;
    *out_len = n;
    return buf;
}

static int body_matches(const char *body, uint64_t off, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)body[i] != file_byte(off + i))
            return 0;
    return 1;
}

/* Open descriptors whose target starts with `prefix` (a path, "pipe:"). */
static int count_fds(const char *prefix)
{
    int n = 0;
    DIR *d = opendir("/proc/self/fd");
    if (d == NULL)
        return -1;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        char link[300], target[256];
        snprintf(link, sizeof(link), "/proc/self/fd/%s", e->d_name);
        ssize_t len = readlink(link, target, sizeof(target) - 1);
        if (len <= 0)
            continue;
        target[len] = 0;
        n += strncmp(target, prefix, strlen(prefix)) == 0;
    }
    closedir(d);
    return n;
}

/* The same once the listener has released what it was closing (it does so a moment after the
 * client's close). */
static int open_fds(const char *prefix)
{
    int n = count_fds(prefix);
    for (int i = 0; i < 20; i++) {
        usleep(10000);
        int m = count_fds(prefix);
        if (m == n && i >= 4)
            break;
        n = m;
    }
    return n;
}

static rd_runtime rt;
static int port;
static rd_actor *listener;

TEST(loopback_peers_are_told_apart)
{
    struct rd_msg_http_request q;
    static const char *const local[] = {"127.0.0.1", "127.8.9.10", "::1", "::ffff:127.0.0.1"};
    static const char *const remote[] = {"10.0.0.1",        "192.168.1.2", "::2",
                                         "::ffff:10.0.0.1", "1.127.0.0",   ""};
    for (size_t i = 0; i < sizeof(local) / sizeof(local[0]); i++) {
        snprintf(q.peer, sizeof(q.peer), "%s", local[i]);
        CHECK(http_request_from_loopback(&q));
    }
    for (size_t i = 0; i < sizeof(remote) / sizeof(remote[0]); i++) {
        snprintf(q.peer, sizeof(q.peer), "%s", remote[i]);
        CHECK(!http_request_from_loopback(&q));
    }
}

TEST(params_and_headers_reach_the_target)
{
    char *r = exchange(
        port, "GET /t/echo/abc/rest/of/it?q=1 HTTP/1.1\r\nHost: x\r\nX-Test: yes\r\n\r\n", "yes");
    CHECK(strstr(r, "HTTP/1.1 200 OK\r\n") == r);
    CHECK(strstr(r, "\r\n\r\nabc|rest/of/it|yes") != NULL);
}

TEST(streamed_reply_is_chunked_in_order)
{
    char *r = exchange(port, "GET /t/stream HTTP/1.1\r\nHost: x\r\n\r\n", "0\r\n\r\n");
    CHECK(strstr(r, "Transfer-Encoding: chunked\r\n") != NULL);
    CHECK(strstr(r, "X-Stream: 1\r\n") != NULL);
    CHECK(strstr(r, "\r\n\r\n5\r\nhello\r\n5\r\nworld\r\n0\r\n\r\n") != NULL);
}

TEST(streamed_reply_to_http10_ends_with_the_connection)
{
    char *r = exchange(port, "GET /t/stream HTTP/1.0\r\n\r\n", "(never)");
    CHECK(strstr(r, "Transfer-Encoding") == NULL);
    CHECK(strstr(r, "Content-Length") == NULL);
    CHECK(strstr(r, "Connection: close\r\n") != NULL);
    const char *body = strstr(r, "\r\n\r\n");
    CHECK(body != NULL && strcmp(body, "\r\n\r\nhelloworld") == 0);
}

TEST(streamed_reply_with_length_is_sent_as_is)
{
    char *r = exchange(port, "GET /t/sized HTTP/1.1\r\nHost: x\r\n\r\n", "helloworld");
    CHECK(strstr(r, "Content-Length: 10\r\n") != NULL);
    CHECK(strstr(r, "\r\n\r\nhelloworld") != NULL);
}

TEST(short_sized_stream_closes_the_connection)
{
    struct timeval t0, t1;
    gettimeofday(&t0, NULL);
    char *r = exchange(port, "GET /t/short HTTP/1.1\r\nHost: x\r\n\r\n", "(never)");
    gettimeofday(&t1, NULL);
    CHECK(strstr(r, "Content-Length: 10\r\n") != NULL);
    const char *body = strstr(r, "\r\n\r\n");
    CHECK(body != NULL && strcmp(body, "\r\n\r\nhello") == 0);
    /* Closed right after the short body, not at the 2 s idle timeout. */
    CHECK((t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_usec - t0.tv_usec) / 1000 < 1000);
}

/* Operations the loop queued for `n` requests, one after another on one keep-alive
 * connection, each answered once `until` has arrived. */
static uint64_t ops_for(const char *req, const char *until, int n)
{
    int fd = dial(port);
    if (fd < 0)
        return UINT64_MAX;
    rd_loop_stats a, b;
    loop_stats(rt.loops[0], &a);
    for (int i = 0; i < n; i++) {
        if (write(fd, req, strlen(req)) != (ssize_t)strlen(req))
            break;
        char buf[1024];
        size_t got = 0;
        buf[0] = 0;
        while (got < sizeof(buf) - 1 && strstr(buf, until) == NULL) {
            ssize_t r = read(fd, buf + got, sizeof(buf) - 1 - got);
            if (r <= 0)
                break;
            got += (size_t)r;
            buf[got] = 0;
        }
    }
    loop_stats(rt.loops[0], &b);
    close(fd);
    return b.sqes - a.sqes;
}

/* A reply's head and the parts its target sent with it reach the listener in one turn: they
 * leave in one send, as a reply in one message does (the head used to leave alone, the parts
 * after it: two sends). */
TEST(head_and_parts_of_one_turn_leave_in_one_send)
{
    enum { N = 32 };
    uint64_t plain = ops_for("GET /t/echo/a/b HTTP/1.1\r\nHost: x\r\n\r\n", "a|b|", N);
    uint64_t streamed = ops_for("GET /t/sized HTTP/1.1\r\nHost: x\r\n\r\n", "helloworld", N);
    CHECK(plain < UINT64_MAX && streamed < UINT64_MAX);
    CHECK(plain >= N); /* a send each, at least */
    CHECK(streamed < plain + N / 4);
}

TEST(pipelined_stream_and_plain_replies_keep_order)
{
    char *r = exchange(port,
                       "GET /t/stream HTTP/1.1\r\nHost: x\r\n\r\n"
                       "GET /t/echo/z/y HTTP/1.1\r\nHost: x\r\n\r\n"
                       "GET /t/sized HTTP/1.1\r\nHost: x\r\n\r\n",
                       "helloworld");
    char *a = strstr(r, "0\r\n\r\n"), *b = strstr(r, "z|y|"), *c = strstr(r, "helloworld");
    CHECK(a != NULL && b != NULL && c != NULL && a < b && b < c);
}

TEST(acked_parts_flow_one_at_a_time)
{
    char *r = exchange(port, "GET /t/acked HTTP/1.1\r\nHost: x\r\n\r\n", "0\r\n\r\n");
    CHECK(strstr(r, "6\r\npart0;\r\n6\r\npart1;\r\n6\r\npart2;\r\n6\r\npart3;\r\n0\r\n\r\n") !=
          NULL);
    usleep(100000); /* the last ack follows the last send */
    CHECK_EQ_INT(acked.acks, 4);
    CHECK_EQ_INT(acked.failed, 0);
}

TEST(client_gone_mid_stream_fails_the_ack)
{
    int fd = dial(port);
    const char *req = "GET /t/acked HTTP/1.1\r\nHost: x\r\n\r\n";
    ssize_t w = write(fd, req, strlen(req));
    (void)w;
    char b[16];
    ssize_t n = read(fd, b, sizeof(b)); /* the head has come: the stream is under way */
    (void)n;
    struct linger lg = {.l_onoff = 1, .l_linger = 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    close(fd); /* a reset: nothing more can be sent */
    for (int i = 0; i < 100 && acked.failed == 0 && acked.sent < 4; i++)
        usleep(10000);
    usleep(50000);
    CHECK(acked.failed >= 1 || acked.sent == 4); /* told to stop, or it had all gone already */
    /* Each part is acknowledged once; an endless stream whose client goes between parts gets
     * one more failed ack (bytes 0), so that a producer with nothing in flight hears of it. */
    CHECK(acked.acks <= acked.sent + 1);
    CHECK(acked.failed <= 2);
}

TEST(file_part_sends_the_whole_file)
{
    file_acks = 0;
    size_t n;
    char *r = fetch(port, "GET /t/file/whole HTTP/1.1\r\nHost: x\r\n\r\n", FILE_LEN, NULL, &n);
    CHECK(strstr(r, "HTTP/1.1 200 OK\r\n") == r);
    char clen[64];
    snprintf(clen, sizeof(clen), "Content-Length: %d\r\n", FILE_LEN);
    CHECK(strstr(r, clen) != NULL);
    const char *body = strstr(r, "\r\n\r\n") + 4;
    CHECK_EQ_INT((long)(n - (size_t)(body - r)), FILE_LEN);
    CHECK(body_matches(body, 0, FILE_LEN));
    free(r);
    usleep(50000);
    CHECK_EQ_INT(file_acks, 1); /* acknowledged once all of it had left */
    CHECK_EQ_INT(open_fds(file_path), 0);
    /* At most the one pipe, back in the listener's pool. */
    CHECK(open_fds("pipe:") <= base_pipes + 2);
}

TEST(file_part_sends_a_range)
{
    size_t n;
    char *r = fetch(port, "GET /t/file/range HTTP/1.1\r\nHost: x\r\n\r\n", 5000, NULL, &n);
    CHECK(strstr(r, "HTTP/1.1 206 ") == r);
    CHECK(strstr(r, "Content-Length: 5000\r\n") != NULL);
    const char *body = strstr(r, "\r\n\r\n") + 4;
    CHECK_EQ_INT((long)(n - (size_t)(body - r)), 5000);
    CHECK(body_matches(body, 1000, 5000));
    free(r);
}

TEST(file_part_in_a_chunked_stream)
{
    size_t n;
    char *r =
        fetch(port, "GET /t/file/chunked HTTP/1.1\r\nHost: x\r\n\r\n", FILE_LEN + 20, NULL, &n);
    char size_line[32];
    snprintf(size_line, sizeof(size_line), "\r\n\r\n%x\r\n", FILE_LEN);
    char *body = strstr(r, size_line);
    CHECK(body != NULL);
    if (body != NULL) {
        body += strlen(size_line);
        CHECK(body_matches(body, 0, FILE_LEN));
        CHECK(memcmp(body + FILE_LEN, "\r\n0\r\n\r\n", 7) == 0);
    }
    free(r);
}

TEST(file_part_then_pipelined_request_keeps_order)
{
    size_t n;
    char *r = fetch(port,
                    "GET /t/file/range HTTP/1.1\r\nHost: x\r\n\r\n"
                    "GET /t/echo/z/y HTTP/1.1\r\nHost: x\r\n\r\n",
                    (size_t)-1, "z|y|", &n);
    const char *body = strstr(r, "\r\n\r\n");
    CHECK(body != NULL && body_matches(body + 4, 1000, 5000));
    CHECK(body != NULL && strstr(body + 4 + 5000, "HTTP/1.1 200 OK\r\n") == body + 4 + 5000);
    CHECK(memmem(r, n, "z|y|", 4) != NULL);
    free(r);
}

TEST(large_buffer_part_keeps_its_place)
{
    size_t n;
    char *r = fetch(port, "GET /t/file/bigbuf HTTP/1.1\r\nHost: x\r\n\r\n", BIG_BUF + 10, NULL, &n);
    const char *body = strstr(r, "\r\n\r\n") + 4;
    CHECK_EQ_INT((long)(n - (size_t)(body - r)), BIG_BUF + 10);
    CHECK(memcmp(body, "hello", 5) == 0);
    CHECK(body_matches(body + 5, 0, BIG_BUF));
    CHECK(memcmp(body + 5 + BIG_BUF, "world", 5) == 0);
    free(r);
}

TEST(file_part_to_head_sends_no_body)
{
    char *r = exchange(port, "HEAD /t/file/whole HTTP/1.1\r\nHost: x\r\n\r\n", "\r\n\r\n");
    char clen[64];
    snprintf(clen, sizeof(clen), "Content-Length: %d\r\n", FILE_LEN);
    CHECK(strstr(r, clen) != NULL);
    const char *body = strstr(r, "\r\n\r\n");
    CHECK(body != NULL && body[4] == 0);
    CHECK_EQ_INT(open_fds(file_path), 0); /* the part's file is closed without being sent */
}

TEST(file_part_past_the_end_closes_the_connection)
{
    size_t n;
    char *r = fetch(port, "GET /t/file/past HTTP/1.1\r\nHost: x\r\n\r\n", (size_t)-1, NULL, &n);
    const char *body = strstr(r, "\r\n\r\n") + 4;
    CHECK_EQ_INT((long)(n - (size_t)(body - r)), FILE_LEN); /* all there is, then the close */
    free(r);
    CHECK_EQ_INT(open_fds(file_path), 0);
    CHECK(open_fds("pipe:") <= base_pipes + 2);
}

TEST(client_gone_mid_splice_closes_the_file)
{
    int pipes = open_fds("pipe:");
    file_failed = 0;
    int fd = dial(port);
    int small = 4096;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
    const char *req = "GET /t/file/huge HTTP/1.1\r\nHost: x\r\n\r\n";
    ssize_t w = write(fd, req, strlen(req));
    (void)w;
    char b[256];
    ssize_t n = read(fd, b, sizeof(b)); /* the head has come; the rest fills the socket */
    (void)n;
    usleep(100000); /* the splice now waits for room in the socket */
    struct linger lg = {.l_onoff = 1, .l_linger = 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    close(fd);
    CHECK_EQ_INT(open_fds(huge_path), 0); /* the part's file is closed */
    CHECK(open_fds("pipe:") <= pipes);    /* its pipe (not empty) too, not pooled */
    CHECK_EQ_INT(file_failed, 1);         /* it was cut off mid-way, not sent whole */
}

TEST(silent_target_gives_504)
{
    char *r = exchange(port, "GET /t/silent HTTP/1.1\r\nHost: x\r\n\r\n", "}}");
    CHECK(strstr(r, "HTTP/1.1 504 ") == r);
    CHECK(strstr(r, "\"code\":\"timeout\"") != NULL);
}

/* Each path reaches the one route that matches it, whatever the routes before it share with
 * it: the same first 10 bytes, a parameter first, nothing but the slash. */
TEST(paths_find_their_route)
{
    static const struct {
        const char *path;
        const char *want;
    } cases[] = {{"/longfirst-1/n", "named=0"},
                 {"/longfirst-2/n", "named=1"},
                 {"/longfirst-2/pfirst", "named=2"},
                 {"/t/pfirst", "named=2"},
                 {"/", "named=3"},
                 {"/longfirst-3/n", " 404 "},
                 {"/longfirst-1", " 404 "},
                 {"/longfirst-1/n/x", " 404 "},
                 {"/longfirst-/n", " 404 "},
                 {"/t/echo/a/b", "a|b|"}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char req[128];
        snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                 cases[i].path);
        char *r = exchange(port, req, "(read to the close)");
        if (strstr(r, cases[i].want) == NULL)
            printf("  %s: %.60s\n", cases[i].path, r);
        CHECK(strstr(r, cases[i].want) != NULL);
    }
    /* A method the matching route does not take: 405 with what it takes, not a 404. */
    char *r = exchange(port,
                       "POST /longfirst-2/n HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n"
                       "Connection: close\r\n\r\n",
                       "(read to the close)");
    CHECK(strstr(r, " 405 ") != NULL && strstr(r, "Allow: GET, HEAD") != NULL);
}

TEST(route_api_refuses_bad_patterns)
{
    rd_http_routes *routes;
    CHECK_EQ_INT(http_routes_create(&routes), 0);
    rd_actor *a = listener;
    CHECK_EQ_INT(http_routes_add(routes, "no-slash", RD_HTTP_GET, &a, 1, 0, 0), -EINVAL);
    CHECK_EQ_INT(http_routes_add(routes, "/a/{rest...}/b", RD_HTTP_GET, &a, 1, 0, 0), -EINVAL);
    CHECK_EQ_INT(http_routes_add(routes, "/a", 0, &a, 1, 0, 0), -EINVAL);
    CHECK_EQ_INT(http_routes_add(routes, "/a", RD_HTTP_GET, &a, 1, 0, 0), 0);
    CHECK_EQ_INT(http_routes_add(routes, "/b/{id}", RD_HTTP_GET, &a, 1, 0, 0), 1);
    http_routes_destroy(routes);
}

/* A route has one owner: anything that can match a path and method another route takes is
 * refused, whatever the order; disjoint patterns or methods are not. */
TEST(route_api_refuses_overlaps)
{
    rd_http_routes *routes;
    CHECK_EQ_INT(http_routes_create(&routes), 0);
    rd_actor *a = listener;
    CHECK(http_routes_add(routes, "/api/assets/{id}", RD_HTTP_GET, &a, 1, 0, 0) >= 0);
    CHECK(http_routes_add(routes, "/api/assets/{id}/promote", RD_HTTP_POST, &a, 1, 0, 0) >= 0);
    CHECK(http_routes_add(routes, "/api/assets", RD_HTTP_GET, &a, 1, 0, 0) >= 0);
    CHECK(http_routes_add(routes, "/api/assets/{id}", RD_HTTP_DELETE, &a, 1, 0, 0) >= 0);
    CHECK(http_routes_add(routes, "/", RD_HTTP_GET, &a, 1, 0, 0) >= 0);
    CHECK(http_routes_add(routes, "/files/{f}", RD_HTTP_GET, &a, 1, 0, 0) >= 0);
    CHECK_EQ_INT(http_routes_add(routes, "/api/assets/{x}", RD_HTTP_GET, &a, 1, 0, 0), -EEXIST);
    CHECK_EQ_INT(http_routes_add(routes, "/api/assets/abc", RD_HTTP_HEAD, &a, 1, 0, 0), -EEXIST);
    CHECK_EQ_INT(http_routes_add(routes, "/api/{what}/x/promote", RD_HTTP_POST, &a, 1, 0, 0),
                 -EEXIST);
    CHECK_EQ_INT(http_routes_add(routes, "/api/{rest...}", RD_HTTP_GET, &a, 1, 0, 0), -EEXIST);
    CHECK_EQ_INT(http_routes_add(routes, "/files/{rest...}", RD_HTTP_GET, &a, 1, 0, 0), -EEXIST);
    CHECK(http_routes_add(routes, "/api/{rest...}", RD_HTTP_PUT, &a, 1, 0, 0) >= 0);
    CHECK(http_routes_add(routes, "/other/{rest...}", RD_HTTP_GET, &a, 1, 0, 0) >= 0);
    CHECK(http_routes_add(routes, "/api/assets/{id}/promote/now", RD_HTTP_POST, &a, 1, 0, 0) >= 0);
    http_routes_destroy(routes);
}

/* 3 MiB through a target that acks late: it arrives whole, in order, in pieces no larger than
 * RD_HTTP_BODY_CHUNK, and the reply follows the last one. */
TEST(streamed_request_body_arrives_whole)
{
    size_t len = 3 << 20;
    char *req = malloc(len + 256);
    int h =
        snprintf(req, 256, "PUT /t/upload HTTP/1.1\r\nHost: x\r\nContent-Length: %zu\r\n\r\n", len);
    uint64_t sum = 0;
    for (size_t i = 0; i < len; i++) {
        req[h + i] = (char)(i * 7 + 3);
        sum += (unsigned char)req[h + i];
    }
    int fd = dial(port);
    CHECK(fd >= 0);
    size_t off = 0, total = (size_t)h + len;
    while (off < total) {
        ssize_t w = write(fd, req + off, total - off);
        if (w <= 0)
            break;
        off += (size_t)w;
    }
    char buf[1024];
    size_t n = 0;
    buf[0] = 0;
    while (n < sizeof(buf) - 1 && strstr(buf, "\r\n\r\n") == NULL) {
        ssize_t r = read(fd, buf + n, sizeof(buf) - 1 - n);
        if (r <= 0)
            break;
        n += (size_t)r;
        buf[n] = 0;
    }
    usleep(50000);
    ssize_t r = read(fd, buf + n, sizeof(buf) - 1 - n);
    if (r > 0)
        buf[n + (size_t)r] = 0;
    close(fd);
    char want[64];
    snprintf(want, sizeof(want), "%zu %llu ", len, (unsigned long long)sum);
    CHECK(strstr(buf, "HTTP/1.1 200 OK\r\n") == buf);
    CHECK(strstr(buf, want) != NULL);
    CHECK(upload.oversized == 0);
    CHECK(upload.pieces >= (int)(len / RD_HTTP_BODY_CHUNK));
    free(req);
}

TEST(streamed_request_body_refusals)
{
    char *r = exchange(port,
                       "PUT /t/upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                       "5\r\nhello\r\n0\r\n\r\n",
                       "}}");
    CHECK(strstr(r, "HTTP/1.1 411 ") == r);
    r = exchange(port, "PUT /t/upload HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999\r\n\r\n",
                 "}}");
    CHECK(strstr(r, "HTTP/1.1 413 ") == r);
    /* The client goes away half-way: the target hears of it and nothing is left waiting. */
    int fd = dial(port);
    const char *head = "PUT /t/upload HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n";
    ssize_t w = write(fd, head, strlen(head));
    static char part[70000];
    w = write(fd, part, sizeof(part));
    (void)w;
    usleep(50000);
    close(fd);
    for (int i = 0; i < 100 && upload.request != NULL; i++)
        usleep(10000);
    CHECK(upload.request == NULL);
}

int main(void)
{
    rt_block_signals();
    if (rt_start(&rt, 1) < 0) {
        printf("skip: no io_uring here\n0 passed, 0 failed\n");
        return 0;
    }
    metrics_init(rt.loops, 1);
    rd_actor *target;
    actor_spawn(rt.loops[0], &target_def, NULL, &target);
    rd_http_routes *routes;
    http_routes_create(&routes);
    route_echo = http_routes_add(routes, "/t/echo/{a}/{b...}", RD_HTTP_GET, &target, 1, 0, 0);
    route_stream = http_routes_add(routes, "/t/stream", RD_HTTP_GET, &target, 1, 0, 0);
    route_sized = http_routes_add(routes, "/t/sized", RD_HTTP_GET, &target, 1, 0, 0);
    route_silent = http_routes_add(routes, "/t/silent", RD_HTTP_GET, &target, 1, 0, 200);
    route_acked = http_routes_add(routes, "/t/acked", RD_HTTP_GET, &target, 1, 0, 0);
    route_short = http_routes_add(routes, "/t/short", RD_HTTP_GET, &target, 1, 0, 0);
    route_upload = http_routes_add(routes, "/t/upload", RD_HTTP_PUT | RD_HTTP_STREAM_BODY, &target,
                                   1, 8 << 20, 0);
    route_file = http_routes_add(routes, "/t/file/{mode}", RD_HTTP_GET, &target, 1, 0, 0);
    for (int i = 0; i < 4; i++)
        route_named[i] = http_routes_add(routes, named[i], RD_HTTP_GET, &target, 1, 0, 0);
    snprintf(file_path, sizeof(file_path), "/tmp/reeld-test-file-part-%d", (int)getpid());
    FILE *f = fopen(file_path, "wb");
    for (uint64_t i = 0; f != NULL && i < FILE_LEN; i++)
        fputc(file_byte(i), f);
    if (f != NULL)
        fclose(f);
    snprintf(huge_path, sizeof(huge_path), "/tmp/reeld-test-file-part-%d-huge", (int)getpid());
    int hfd = open(huge_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (hfd >= 0) {
        if (ftruncate(hfd, HUGE_LEN) < 0)
            perror("ftruncate");
        close(hfd);
    }
    rd_http_config cfg = {.header_timeout_ms = 2000, .idle_timeout_ms = 2000, .max_conns = 64};
    char addr[32];
    port = free_port();
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
    int r = http_listener_start(rt.loops[0], 1, addr, &cfg, routes, &listener);
    CHECK_EQ_INT(r, 0);

    base_pipes = count_fds("pipe:");
    RUN(loopback_peers_are_told_apart);
    RUN(params_and_headers_reach_the_target);
    RUN(streamed_reply_is_chunked_in_order);
    RUN(streamed_reply_to_http10_ends_with_the_connection);
    RUN(streamed_reply_with_length_is_sent_as_is);
    RUN(short_sized_stream_closes_the_connection);
    RUN(head_and_parts_of_one_turn_leave_in_one_send);
    RUN(pipelined_stream_and_plain_replies_keep_order);
    RUN(acked_parts_flow_one_at_a_time);
    RUN(client_gone_mid_stream_fails_the_ack);
    RUN(file_part_sends_the_whole_file);
    RUN(file_part_sends_a_range);
    RUN(file_part_in_a_chunked_stream);
    RUN(file_part_then_pipelined_request_keeps_order);
    RUN(large_buffer_part_keeps_its_place);
    RUN(file_part_to_head_sends_no_body);
    RUN(file_part_past_the_end_closes_the_connection);
    RUN(client_gone_mid_splice_closes_the_file);
    RUN(silent_target_gives_504);
    RUN(paths_find_their_route);
    RUN(route_api_refuses_bad_patterns);
    RUN(route_api_refuses_overlaps);
    RUN(streamed_request_body_arrives_whole);
    RUN(streamed_request_body_refusals);

    rt_stop(&rt, 1000000000ull);
    http_listener_free(listener);
    actor_free_all();
    metrics_free_all();
    http_routes_destroy(routes);
    unlink(file_path);
    unlink(huge_path);
    return test_summary();
}
