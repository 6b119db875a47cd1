/* s3-uploader against a slow S3 peer (a local HTTP server that holds each answer): while a PUT
 * is in flight the uploader's thread sleeps until something happens, instead of looking at its
 * mailbox on a period (counted as the thread's voluntary context switches); a message that
 * comes meanwhile is taken at once while a slot is free, and left in the mailbox once
 * `concurrency` objects wait for a slot (the encoders' back-pressure); the job then lands whole.
 * The real S3 servers are in tests/integration/test_upload.py. */
#include "actors/s3_uploader.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "src/rt/metrics.h"
#include "tests/unit/fixture_net.h"
#include "tests/unit/test.h"

#define MS 1000000ull

static atomic_int hold_ms;  /* how long the peer holds each answer */
static atomic_int requests; /* requests the peer has read whole */

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

#define PEER_BUF 65536 /* a request, headers and body: this test's are small */

/* One connection: reads requests (headers, then Content-Length bytes), answers each 200. */
static void *peer_conn(void *arg)
{
    int fd = (int)(intptr_t)arg;
    char *b = malloc(PEER_BUF);
    size_t have = 0, head, len;
    while ((len = request_read(fd, b, PEER_BUF, &have, &head)) > 0) {
        atomic_fetch_add(&requests, 1);
        sleep_ms(atomic_load(&hold_ms));
        static const char ok[] = "HTTP/1.1 200 OK\r\nETag: \"e\"\r\nContent-Length: 0\r\n\r\n";
        if (write(fd, ok, sizeof(ok) - 1) != (ssize_t)sizeof(ok) - 1)
            break;
        request_done(b, &have, len);
    }
    free(b);
    close(fd);
    return NULL;
}

static int listen_fd;

static void *peer(void *arg)
{
    (void)arg;
    accept_each(listen_fd, peer_conn);
    return NULL;
}

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static struct rd_msg_upload_done done;
static int ndone;

static int notify_handle(rd_actor *self, rd_msg *m)
{
    (void)self;
    pthread_mutex_lock(&mu);
    if (m->type == MSG_UPLOAD_DONE) {
        done = *msg_body(m, upload_done);
        ndone++;
    }
    pthread_mutex_unlock(&mu);
    return RD_DONE;
}

static const rd_actor_def notify_def = {.name = "notify", .handle = notify_handle};

static rd_actor *notify, *uploader;

static void object(uint64_t job, const char *name, const char *body)
{
    rd_msg *m = msg_new(MSG_HLS_OBJECT);
    struct rd_msg_hls_object *o = msg_body(m, hls_object);
    o->job = job;
    snprintf(o->name, sizeof(o->name), "%s", name);
    o->len = strlen(body);
    o->data = malloc(o->len + 1);
    memcpy(o->data, body, o->len + 1);
    CHECK_EQ_INT(actor_send(uploader, m), 0);
}

/* The voluntary context switches of the thread named `comm`, or -1. */
static long switches_of(const char *comm)
{
    DIR *d = opendir("/proc/self/task");
    long found = -1;
    struct dirent *e;
    while (d != NULL && (e = readdir(d)) != NULL && found < 0) {
        char path[300], name[64] = "";
        snprintf(path, sizeof(path), "/proc/self/task/%s/comm", e->d_name);
        FILE *f = fopen(path, "r");
        if (f == NULL)
            continue;
        if (fgets(name, sizeof(name), f) != NULL)
            name[strcspn(name, "\n")] = 0;
        fclose(f);
        if (strcmp(name, comm) != 0)
            continue;
        snprintf(path, sizeof(path), "/proc/self/task/%s/status", e->d_name);
        f = fopen(path, "r");
        char line[256];
        while (f != NULL && fgets(line, sizeof(line), f) != NULL)
            if (sscanf(line, "voluntary_ctxt_switches: %ld", &found) == 1)
                break;
        if (f != NULL)
            fclose(f);
    }
    if (d != NULL)
        closedir(d);
    return found;
}

static const char VARIANT[] = "#EXTM3U\n#EXTINF:1.0,\nseg_00000.ts\n#EXTINF:1.0,\nseg_00001.ts\n"
                              "#EXT-X-ENDLIST\n";
static const char MASTER[] = "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\n180p/index.m3u8\n";

static blob_aio *client;

TEST(sleeps_while_a_put_flies_and_holds_back_past_concurrency)
{
    rd_msg *r = msg_new(MSG_UPLOAD_JOB);
    msg_body(r, upload_job)->job = 1;
    snprintf(msg_body(r, upload_job)->asset, sizeof(msg_body(r, upload_job)->asset), "a-1");
    msg_body(r, upload_job)->notify = notify;
    CHECK_EQ_INT(actor_send(uploader, r), 0);

    atomic_store(&hold_ms, 1500);
    object(1, "180p/seg_00000.ts", "ts0"); /* its PUT is held: 1 in flight, the slot taken */
    for (int i = 0; i < 2000 && atomic_load(&requests) < 1; i++)
        sleep_ms(1);
    CHECK_EQ_INT(atomic_load(&requests), 1);
    /* Idle with a PUT in flight: the thread sleeps (it used to wake every 2 ms: ~150 here). */
    long before = switches_of("reeld-s3_upload");
    CHECK(before >= 0);
    sleep_ms(300);
    long idle = switches_of("reeld-s3_upload") - before;
    printf("  voluntary context switches in 300 ms with a PUT in flight: %ld\n", idle);
    CHECK(idle < 10);
    /* A message that comes now is taken at once (a slot will be free: fewer than
     * `concurrency` objects wait)... */
    object(1, "180p/seg_00001.ts", "ts1");
    for (int i = 0; i < 1000 && mailbox_depth(&uploader->mbox) > 0; i++)
        sleep_ms(1);
    CHECK_EQ_INT(mailbox_depth(&uploader->mbox), 0);
    /* ...but with `concurrency` (1) objects waiting for the slot, new mail stays queued. */
    object(1, "180p/index.m3u8", VARIANT);
    sleep_ms(100);
    CHECK_EQ_INT(mailbox_depth(&uploader->mbox), 1);
    CHECK_EQ_INT(atomic_load(&requests), 1);

    atomic_store(&hold_ms, 0);
    object(1, "master.m3u8", MASTER);
    rd_msg *m = msg_new(MSG_TRANSCODE_DONE);
    msg_body(m, transcode_done)->job = 1;
    CHECK_EQ_INT(actor_send(uploader, m), 0);
    int n = 0;
    for (int i = 0; i < 5000 && n == 0; i++) {
        sleep_ms(1);
        pthread_mutex_lock(&mu);
        n = ndone;
        pthread_mutex_unlock(&mu);
    }
    CHECK_EQ_INT(n, 1);
    CHECK_EQ_INT(done.status, 0);
    CHECK_EQ_INT(done.objects, 4);
    CHECK_EQ_INT(atomic_load(&requests), 4);
}

int main(void)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (bind(listen_fd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(listen_fd, 16) < 0 ||
        getsockname(listen_fd, (struct sockaddr *)&a, &len) < 0)
        return 1;
    pthread_t pt;
    pthread_create(&pt, NULL, peer, NULL);
    pthread_detach(pt);

    rd_loop *loop;
    if (loop_create(&loop, 0, -1) < 0 || loop_start(loop) < 0)
        return 1;
    char endpoint[64], err[256];
    snprintf(endpoint, sizeof(endpoint), "http://127.0.0.1:%d", ntohs(a.sin_port));
    s3_config cfg = {.endpoint = endpoint,
                     .region = "us-east-1",
                     .access_key_id = "a",
                     .secret_access_key = "b"};
    if (blob_aio_open_s3(&cfg, &loop, 1, &client, err, sizeof(err)) < 0) {
        printf("%s\n", err);
        return 1;
    }
    uploader_arg arg = {.store = client, .bucket = "previews", .concurrency = 1};
    if (actor_spawn_thread(&notify_def, NULL, -1, &notify) < 0 ||
        uploader_spawn(&arg, &uploader) < 0)
        return 1;
    RUN(sleeps_while_a_put_flies_and_holds_back_past_concurrency);
    actor_stop(uploader);
    actor_join(uploader);
    actor_stop(notify);
    actor_join(notify);
    loop_stop(loop, rd_now_ns() + 1000 * MS);
    loop_join(loop);
    blob_aio_close(client);
    actor_free_all();
    loop_destroy(loop);
    metrics_free_all();
    shutdown(listen_fd, SHUT_RDWR);
    close(listen_fd);
    return test_summary();
}
