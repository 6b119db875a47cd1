/* src/net/http_client over a plain conn: a local peer thread answers with bodies framed every
 * way (chunked, cut into odd pieces; Content-Length with a head and body larger than the head
 * buffer in one write; until close), two requests share one kept-alive connection, and a peer
 * that hangs up early is an error, not a short body. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "src/net/conn.h"
#include "src/net/http_client.h"
#include "tests/unit/test.h"

#define MS 1000000ull

/* What the peer sends for each request on its one connection, cut at `cuts` (0-terminated
 * offsets), then closes after the last one. */
typedef struct script {
    const char *resp[3];
    size_t len[3];
    size_t cuts[8];
    int n;
} script;

static int lfd, port;
static script *play;

static void *peer(void *arg)
{
    (void)arg;
    int c = accept(lfd, NULL, NULL);
    for (int i = 0; i < play->n; i++) {
        char buf[4096];
        size_t got = 0;
        while (got < 4 || memmem(buf, got, "\r\n\r\n", 4) == NULL) {
            ssize_t n = read(c, buf + got, sizeof(buf) - got);
            if (n <= 0)
                goto out;
            got += (size_t)n;
        }
        size_t off = 0;
        for (int k = 0; play->cuts[k] && play->cuts[k] < play->len[i] && i == 0; k++) {
            if (write(c, play->resp[i] + off, play->cuts[k] - off) < 0)
                goto out;
            off = play->cuts[k];
            usleep(2000);
        }
        if (write(c, play->resp[i] + off, play->len[i] - off) < 0)
            goto out;
    }
out:
    close(c);
    return NULL;
}

typedef struct client {
    rd_loop *loop;
    rd_timer start;
    conn *c;
    httpc_exchange x;
    int requests, done_count;
    int res[3], status[3], reusable[3];
    char body[3][40000];
    size_t body_len[3];
} client;

static client *cl;
static const char request[] = "GET /x HTTP/1.1\r\nHost: t\r\n\r\n";

static int on_body(httpc_exchange *x, uint8_t *data, size_t len)
{
    (void)x;
    int i = cl->done_count;
    memcpy(cl->body[i] + cl->body_len[i], data, len);
    cl->body_len[i] += len;
    return 0;
}

static void exchange_done(httpc_exchange *x, int res);

static void send_next(void)
{
    memset(&cl->x, 0, sizeof(cl->x));
    cl->x.head = request;
    cl->x.head_len = sizeof(request) - 1;
    cl->x.on_body = on_body;
    cl->x.done = exchange_done;
    httpc_start(&cl->x, cl->c);
}

static void exchange_done(httpc_exchange *x, int res)
{
    int i = cl->done_count++;
    cl->res[i] = res;
    cl->status[i] = x->resp.status;
    cl->reusable[i] = x->reusable;
    if (res == 0 && x->reusable && cl->done_count < cl->requests) {
        send_next();
        return;
    }
    conn_destroy(cl->c);
    loop_stop(cl->loop, rd_now_ns() + 1000 * MS);
}

static void connected(conn *c, int res, void *ctx)
{
    (void)c;
    (void)ctx;
    if (res < 0) {
        cl->res[0] = res;
        loop_stop(cl->loop, rd_now_ns() + 1000 * MS);
        return;
    }
    send_next();
}

static void begin(rd_timer *t)
{
    (void)t;
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    conn_create(&cl->c, cl->loop, (struct sockaddr *)&a, sizeof(a), NULL, NULL);
    conn_connect(cl->c, connected, NULL);
}

static void run(script *s, client *c, int requests)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    lfd = socket(AF_INET, SOCK_STREAM, 0);
    bind(lfd, (struct sockaddr *)&a, sizeof(a));
    listen(lfd, 4);
    getsockname(lfd, (struct sockaddr *)&a, &len);
    port = ntohs(a.sin_port);
    play = s;
    pthread_t th;
    pthread_create(&th, NULL, peer, NULL);
    memset(c, 0, sizeof(*c));
    c->requests = requests;
    cl = c;
    loop_create(&c->loop, 0, -1);
    c->start.fire = begin;
    loop_timer_start(c->loop, &c->start, 0, 0);
    loop_run(c->loop);
    loop_destroy(c->loop);
    pthread_join(th, NULL);
    close(lfd);
}

static client c;

TEST(chunked_in_odd_pieces)
{
    static const char r[] = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                            "4\r\nWiki\r\n5;x=y\r\npedia\r\n0\r\nTrailer: 1\r\n\r\n";
    script s = {{r}, {sizeof(r) - 1}, {3, 20, 47, 50, 55, 60, 0}, 1};
    run(&s, &c, 1);
    CHECK_EQ_INT(c.res[0], 0);
    CHECK_EQ_INT(c.status[0], 200);
    CHECK_EQ_INT(c.body_len[0], 9);
    CHECK(memcmp(c.body[0], "Wikipedia", 9) == 0);
    CHECK_EQ_INT(c.reusable[0], 1);
}

TEST(keep_alive_then_a_body_bigger_than_the_head_buffer)
{
    static char big[64 + 30000];
    int h = snprintf(big, sizeof(big), "HTTP/1.1 200 OK\r\nContent-Length: 30000\r\n\r\n");
    memset(big + h, 'b', 30000);
    static const char first[] = "HTTP/1.1 404 Not Found\r\nContent-Length: 5\r\n\r\nnope!";
    script s = {{first, big}, {sizeof(first) - 1, (size_t)h + 30000}, {0}, 2};
    run(&s, &c, 2);
    CHECK_EQ_INT(c.done_count, 2);
    CHECK_EQ_INT(c.res[0], 0);
    CHECK_EQ_INT(c.status[0], 404);
    CHECK_EQ_INT(c.body_len[0], 5);
    CHECK_EQ_INT(c.reusable[0], 1);
    CHECK_EQ_INT(c.res[1], 0);
    CHECK_EQ_INT(c.status[1], 200);
    CHECK_EQ_INT(c.body_len[1], 30000);
    CHECK(c.body[1][0] == 'b' && c.body[1][29999] == 'b');
}

TEST(body_until_close)
{
    static const char r[] = "HTTP/1.0 200 OK\r\n\r\nall of it";
    script s = {{r}, {sizeof(r) - 1}, {0}, 1};
    run(&s, &c, 1);
    CHECK_EQ_INT(c.res[0], 0);
    CHECK_EQ_INT(c.body_len[0], 9);
    CHECK_EQ_INT(c.reusable[0], 0);
}

TEST(truncated_body_is_an_error)
{
    static const char r[] = "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort";
    script s = {{r}, {sizeof(r) - 1}, {0}, 1};
    run(&s, &c, 1);
    CHECK_EQ_INT(c.res[0], -EPROTO);
    CHECK_EQ_INT(c.reusable[0], 0);
}

TEST(garbage_is_an_error)
{
    static const char r[] = "SSH-2.0-OpenSSH_9.2\r\n\r\n";
    script s = {{r}, {sizeof(r) - 1}, {0}, 1};
    run(&s, &c, 1);
    CHECK_EQ_INT(c.res[0], -EPROTO);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    RUN(chunked_in_odd_pieces);
    RUN(keep_alive_then_a_body_bigger_than_the_head_buffer);
    RUN(body_until_close);
    RUN(truncated_body_is_an_error);
    RUN(garbage_is_an_error);
    return test_summary();
}
