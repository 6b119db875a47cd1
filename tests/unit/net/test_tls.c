/* src/net: TLS through BearSSL pumped over io_uring, against a real peer: `openssl s_server`
 * with a throwaway self-signed certificate, trusted as a custom anchor. A GET must come back
 * whole; a certificate from another key, and a name the certificate does not carry, must be
 * refused with BearSSL's reason. Skipped when the openssl tool is missing. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "src/net/conn.h"
#include "src/net/http_client.h"
#include "src/net/tls.h"
#include "tests/unit/test.h"

#define MS 1000000ull

static char dir[64];
static int port;
static pid_t server;

static int sh(const char *fmt, const char *a, const char *b)
{
    char cmd[1024];
    snprintf(cmd, sizeof(cmd), fmt, a, b);
    return system(cmd);
}

static int make_cert(const char *name, const char *cn)
{
    char subj[128];
    snprintf(subj, sizeof(subj), "-subj /CN=%s -addext subjectAltName=DNS:%s", cn, cn);
    char paths[256];
    snprintf(paths, sizeof(paths), "-keyout %s/%s.key -out %s/%s.pem", dir, name, dir, name);
    return sh("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 "
              "%s %s >/dev/null 2>&1",
              subj, paths);
}

static int start_server(void)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    bind(s, (struct sockaddr *)&a, sizeof(a));
    getsockname(s, (struct sockaddr *)&a, &len);
    port = ntohs(a.sin_port);
    close(s);
    char portstr[16], cert[128], key[128];
    snprintf(portstr, sizeof(portstr), "%d", port);
    snprintf(cert, sizeof(cert), "%s/server.pem", dir);
    snprintf(key, sizeof(key), "%s/server.key", dir);
    server = fork();
    if (server == 0) {
        int devnull = open("/dev/null", O_RDWR);
        dup2(devnull, 0);
        dup2(devnull, 1);
        dup2(devnull, 2);
        execlp("openssl", "openssl", "s_server", "-accept", portstr, "-cert", cert, "-key", key,
               "-www", "-quiet", (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 100; i++) {
        int c = socket(AF_INET, SOCK_STREAM, 0);
        a.sin_port = htons((uint16_t)port);
        int r = connect(c, (struct sockaddr *)&a, sizeof(a));
        close(c);
        if (r == 0)
            return 0;
        usleep(50000);
    }
    return -1;
}

/* One GET / over TLS on a loop run by this thread. */
typedef struct probe {
    rd_loop *loop;
    rd_timer start;
    tls_anchors *anchors;
    const char *name;
    conn *c;
    httpc_exchange x;
    int res;       /* the exchange's (or connect's) result */
    int tls_error; /* BearSSL's code */
    int status;
    size_t body;
    int saw_marker;
} probe;

static probe *cur;

static int on_body(httpc_exchange *x, uint8_t *data, size_t len)
{
    (void)x;
    cur->body += len;
    if (memmem(data, len, "s_server", 8) != NULL)
        cur->saw_marker = 1;
    return 0;
}

static void done(httpc_exchange *x, int res)
{
    cur->res = res;
    cur->status = x->resp.status;
    cur->tls_error = conn_tls_error(cur->c);
    conn_destroy(cur->c);
    loop_stop(cur->loop, rd_now_ns() + 1000 * MS);
}

static void connected(conn *c, int res, void *ctx)
{
    (void)ctx;
    if (res < 0) {
        cur->res = res;
        conn_destroy(c);
        loop_stop(cur->loop, rd_now_ns() + 1000 * MS);
        return;
    }
    static const char req[] = "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n";
    cur->x.head = req;
    cur->x.head_len = sizeof(req) - 1;
    cur->x.on_body = on_body;
    cur->x.done = done;
    httpc_start(&cur->x, c);
}

static void begin(rd_timer *t)
{
    (void)t;
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int r =
        conn_create(&cur->c, cur->loop, (struct sockaddr *)&a, sizeof(a), cur->anchors, cur->name);
    if (r < 0) {
        cur->res = r;
        loop_stop(cur->loop, rd_now_ns() + 1000 * MS);
        return;
    }
    conn_connect(cur->c, connected, NULL);
}

static void run_probe(probe *p, const char *anchor_file, const char *name)
{
    char path[128], err[256];
    tls_anchors anchors;
    snprintf(path, sizeof(path), "%s/%s", dir, anchor_file);
    memset(p, 0, sizeof(*p));
    p->res = 1;
    if (tls_anchors_load(&anchors, path, err, sizeof(err)) < 0) {
        printf("  %s\n", err);
        return;
    }
    p->anchors = &anchors;
    p->name = name;
    cur = p;
    loop_create(&p->loop, 0, -1);
    p->start.fire = begin;
    loop_timer_start(p->loop, &p->start, 0, 0);
    loop_run(p->loop);
    loop_destroy(p->loop);
    tls_anchors_free(&anchors);
}

static int ready;

TEST(setup)
{
    if (system("openssl version >/dev/null 2>&1") != 0)
        SKIP("the openssl tool is not installed");
    snprintf(dir, sizeof(dir), "/tmp/reeld-tls-XXXXXX");
    CHECK(mkdtemp(dir) != NULL);
    CHECK_EQ_INT(make_cert("server", "localhost"), 0);
    CHECK_EQ_INT(make_cert("other", "localhost"), 0);
    CHECK_EQ_INT(start_server(), 0);
    ready = !test_cur_failed;
}

TEST(get_over_tls_with_a_custom_anchor)
{
    if (!ready)
        SKIP("no TLS peer");
    probe p;
    run_probe(&p, "server.pem", "localhost");
    CHECK_EQ_INT(p.res, 0);
    CHECK_EQ_INT(p.status, 200);
    CHECK(p.body > 100);
    CHECK(p.saw_marker);
}

TEST(untrusted_certificate_is_refused)
{
    if (!ready)
        SKIP("no TLS peer");
    probe p;
    run_probe(&p, "other.pem", "localhost");
    CHECK_EQ_INT(p.res, -EKEYREJECTED);
    CHECK_EQ_INT(p.tls_error, BR_ERR_X509_NOT_TRUSTED);
}

TEST(wrong_server_name_is_refused)
{
    if (!ready)
        SKIP("no TLS peer");
    probe p;
    run_probe(&p, "server.pem", "s3.example.com");
    CHECK_EQ_INT(p.res, -EKEYREJECTED);
    CHECK_EQ_INT(p.tls_error, BR_ERR_X509_BAD_SERVER_NAME);
}

TEST(system_bundle_loads)
{
    tls_anchors a;
    char err[256];
    if (access(TLS_SYSTEM_CA_FILE, R_OK) != 0)
        SKIP("no system CA bundle");
    CHECK_EQ_INT(tls_anchors_load(&a, TLS_SYSTEM_CA_FILE, err, sizeof(err)), 0);
    CHECK(a.n > 50);
    tls_anchors_free(&a);
    CHECK_EQ_INT(tls_anchors_load(&a, "/nonexistent/ca.pem", err, sizeof(err)), -ENOENT);
    CHECK(strstr(err, "cannot read the CA bundle") != NULL);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    RUN(setup);
    RUN(get_over_tls_with_a_custom_anchor);
    RUN(untrusted_certificate_is_refused);
    RUN(wrong_server_name_is_refused);
    RUN(system_bundle_loads);
    if (server > 0) {
        kill(server, SIGTERM);
        waitpid(server, NULL, 0);
    }
    if (dir[0])
        sh("rm -rf %s%s", dir, "");
    return test_summary();
}
