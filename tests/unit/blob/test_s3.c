/* src/blob/s3: what can be checked without a server. Endpoints refused at creation with one
 * sentence; a blocking call on another thread while the loop stops, with the operation waiting
 * between retries (nothing listens on the port), ends with -ECANCELED instead of leaving its
 * caller waiting on a loop that no longer turns; a call after the stop fails at once. The
 * round trips against real peers are in tests/integration/test_s3_client.py. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>

#include "src/blob/s3.h"
#include "src/rt/actor.h"
#include "tests/unit/test.h"

TEST(bad_endpoints)
{
    rd_loop *loop;
    CHECK_EQ_INT(loop_create(&loop, 0, -1), 0);
    s3_client *c = NULL;
    char err[256];
    s3_config cfg = {.endpoint = "ftp://x",
                     .region = "us-east-1",
                     .access_key_id = "a",
                     .secret_access_key = "b"};
    CHECK_EQ_INT(s3_client_create(&c, loop, &cfg, err, sizeof(err)), -EINVAL);
    CHECK_EQ_STR(err, "S3_ENDPOINT: must be http(s)://host[:port][/path] (got 'ftp://x')");
    cfg.endpoint = "https://127.0.0.1:9000";
    CHECK_EQ_INT(s3_client_create(&c, loop, &cfg, err, sizeof(err)), -EINVAL);
    CHECK_EQ_STR(err, "S3_ENDPOINT is https but no CA certificates were loaded");
    cfg.endpoint = "http://user@127.0.0.1:9000";
    CHECK_EQ_INT(s3_client_create(&c, loop, &cfg, err, sizeof(err)), -EINVAL);
    cfg.endpoint = "http://127.0.0.1:9000";
    cfg.secret_access_key = NULL;
    CHECK_EQ_INT(s3_client_create(&c, loop, &cfg, err, sizeof(err)), -EINVAL);
    CHECK_EQ_STR(err, "set S3_ACCESS_KEY_ID, S3_SECRET_ACCESS_KEY and S3_REGION");
    CHECK(c == NULL);
    loop_destroy(loop);
}

static int closed_port(void)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    int s = socket(AF_INET, SOCK_STREAM, 0);
    bind(s, (struct sockaddr *)&a, sizeof(a));
    getsockname(s, (struct sockaddr *)&a, &len);
    close(s);
    return ntohs(a.sin_port);
}

typedef struct caller {
    s3_client *c;
    s3_op op;
    int res;
} caller;

static void *call(void *arg)
{
    caller *k = arg;
    k->op = (s3_op){.method = S3_HEAD, .bucket = "b", .key = "k"};
    k->res = s3_call(k->c, &k->op);
    return NULL;
}

TEST(stopping_loop_releases_blocked_callers)
{
    rd_loop *loop;
    CHECK_EQ_INT(loop_create(&loop, 0, -1), 0);
    CHECK_EQ_INT(loop_start(loop), 0);
    char endpoint[64], err[256];
    snprintf(endpoint, sizeof(endpoint), "http://127.0.0.1:%d", closed_port());
    s3_config cfg = {.endpoint = endpoint,
                     .region = "us-east-1",
                     .access_key_id = "a",
                     .secret_access_key = "b",
                     .max_attempts = 50};
    s3_client *c = NULL;
    CHECK_EQ_INT(s3_client_create(&c, loop, &cfg, err, sizeof(err)), 0);
    if (c == NULL)
        return;
    caller k = {.c = c, .res = 1};
    pthread_t th;
    pthread_create(&th, NULL, call, &k);
    usleep(300 * 1000); /* refused, retried, refused...: it waits between attempts now */
    uint64_t t0 = rd_now_ns();
    loop_stop(loop, rd_now_ns() + 2000000000ull);
    pthread_join(th, NULL);
    CHECK(rd_now_ns() - t0 < 1000000000ull);
    CHECK_EQ_INT(k.res, -ECANCELED);
    CHECK(k.op.attempts >= 2);
    loop_join(loop);

    caller late = {.c = c, .res = 1};
    call(&late);
    CHECK_EQ_INT(late.res, -ECANCELED);
    CHECK_EQ_STR(late.op.message, "S3 HeadObject: reeld is stopping.");
    s3_client_destroy(c);
    actor_free_all();
    loop_destroy(loop);
}

int main(void)
{
    RUN(bad_endpoints);
    RUN(stopping_loop_releases_blocked_callers);
    return test_summary();
}
