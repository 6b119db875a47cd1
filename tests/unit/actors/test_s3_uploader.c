/* s3-uploader with the fs backend: a job whose objects arrive in a scrambled order lands whole
 * and reports once; a job that cannot be published whole (a playlist naming a segment that
 * never came, a failed transcode, an unregistered asset id) reports the failure and leaves no
 * master and none of its segments behind. The S3 path is covered by
 * tests/integration/test_upload.py. */
#include "actors/s3_uploader.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "src/rt/metrics.h"
#include "tests/unit/test.h"

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static struct rd_msg_upload_done done[8];
static int ndone, ntranscode_done;

static int notify_handle(rd_actor *self, rd_msg *m)
{
    (void)self;
    pthread_mutex_lock(&mu);
    if (m->type == MSG_UPLOAD_DONE && ndone < 8)
        done[ndone++] = *msg_body(m, upload_done);
    else if (m->type == MSG_TRANSCODE_DONE)
        ntranscode_done++;
    pthread_mutex_unlock(&mu);
    return RD_DONE;
}

static const rd_actor_def notify_def = {.name = "notify", .handle = notify_handle};

static char data_dir[64];
static rd_actor *notify, *uploader;

static const struct rd_msg_upload_done *wait_done(uint64_t job)
{
    for (int i = 0; i < 3000; i++) {
        pthread_mutex_lock(&mu);
        for (int k = 0; k < ndone; k++)
            if (done[k].job == job) {
                pthread_mutex_unlock(&mu);
                return &done[k];
            }
        pthread_mutex_unlock(&mu);
        struct timespec ts = {0, 10000000L};
        nanosleep(&ts, NULL);
    }
    return NULL;
}

static void send_msg(rd_msg *m)
{
    CHECK_EQ_INT(actor_send(uploader, m), 0);
}

static void register_job(uint64_t job, const char *asset)
{
    rd_msg *m = msg_new(MSG_UPLOAD_JOB);
    msg_body(m, upload_job)->job = job;
    snprintf(msg_body(m, upload_job)->asset, sizeof(msg_body(m, upload_job)->asset), "%s", asset);
    msg_body(m, upload_job)->notify = notify;
    send_msg(m);
}

static void object(uint64_t job, const char *name, const char *body)
{
    rd_msg *m = msg_new(MSG_HLS_OBJECT);
    struct rd_msg_hls_object *o = msg_body(m, hls_object);
    o->job = job;
    snprintf(o->name, sizeof(o->name), "%s", name);
    o->len = strlen(body);
    o->data = malloc(o->len + 1);
    memcpy(o->data, body, o->len + 1);
    send_msg(m);
}

static void transcode_done(uint64_t job, int status)
{
    rd_msg *m = msg_new(MSG_TRANSCODE_DONE);
    msg_body(m, transcode_done)->job = job;
    msg_body(m, transcode_done)->status = status;
    snprintf(msg_body(m, transcode_done)->error, sizeof(msg_body(m, transcode_done)->error), "%s",
             status < 0 ? "the input has no video stream" : "");
    send_msg(m);
}

static int exists(const char *asset, const char *name)
{
    char path[512];
    struct stat st;
    snprintf(path, sizeof(path), "%s/blobs/previews/%s/hls/%s", data_dir, asset, name);
    return stat(path, &st) == 0;
}

static const char VARIANT[] = "#EXTM3U\n#EXTINF:1.0,\nseg_00000.ts\n#EXTINF:1.0,\nseg_00001.ts\n"
                              "#EXT-X-ENDLIST\n";
static const char MASTER[] = "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\n180p/index.m3u8\n";

TEST(scrambled_job_lands_whole)
{
    register_job(1, "a-1");
    object(1, "master.m3u8", MASTER);
    object(1, "poster.jpg", "jpeg");
    object(1, "180p/index.m3u8", VARIANT);
    object(1, "180p/seg_00001.ts", "ts1");
    object(1, "180p/seg_00000.ts", "ts0");
    transcode_done(1, 0);
    const struct rd_msg_upload_done *d = wait_done(1);
    CHECK(d != NULL);
    if (d == NULL)
        return;
    CHECK_EQ_INT(d->status, 0);
    CHECK_EQ_INT(d->objects, 5);
    CHECK_EQ_STR(d->asset, "a-1");
    CHECK(exists("a-1", "master.m3u8") && exists("a-1", "poster.jpg"));
    CHECK(exists("a-1", "180p/index.m3u8") && exists("a-1", "180p/seg_00000.ts"));
}

TEST(missing_segment_fails_and_cleans_up)
{
    register_job(2, "a-2");
    object(2, "180p/seg_00000.ts", "ts0");
    object(2, "180p/index.m3u8", VARIANT);
    object(2, "master.m3u8", MASTER);
    transcode_done(2, 0);
    const struct rd_msg_upload_done *d = wait_done(2);
    CHECK(d != NULL);
    if (d == NULL)
        return;
    CHECK_EQ_INT(d->status, -ENOENT);
    CHECK_EQ_STR(d->error, "180p/index.m3u8 names 180p/seg_00001.ts, which the job never produced");
    CHECK(!exists("a-2", "master.m3u8"));
    CHECK(!exists("a-2", "180p/seg_00000.ts"));
}

TEST(failed_transcode_reports_its_error)
{
    register_job(3, "a-3");
    object(3, "180p/seg_00000.ts", "ts0");
    transcode_done(3, -EINVAL);
    const struct rd_msg_upload_done *d = wait_done(3);
    CHECK(d != NULL);
    if (d == NULL)
        return;
    CHECK_EQ_INT(d->status, -EINVAL);
    CHECK_EQ_STR(d->error, "the input has no video stream");
    CHECK(!exists("a-3", "180p/seg_00000.ts"));
}

TEST(bad_asset_is_refused)
{
    register_job(4, "../etc");
    object(4, "180p/seg_00000.ts", "ts0");
    transcode_done(4, 0);
    const struct rd_msg_upload_done *d = wait_done(4);
    CHECK(d != NULL);
    if (d == NULL)
        return;
    CHECK_EQ_INT(d->status, -EINVAL);
    CHECK_EQ_INT(d->objects, 0);
}

int main(void)
{
    snprintf(data_dir, sizeof(data_dir), "/tmp/reeld-test-uploader-XXXXXX");
    if (mkdtemp(data_dir) == NULL)
        return 1;
    char err[256];
    rd_loop *loop;
    blob_aio *fs;
    if (loop_create(&loop, 0, -1) < 0 || loop_start(loop) < 0)
        return 1;
    if (blob_aio_open_fs(data_dir, loop, &fs, err, sizeof(err)) < 0) {
        printf("%s\n", err);
        return 1;
    }
    uploader_arg arg = {.store = fs, .bucket = "previews", .concurrency = 4};
    if (actor_spawn_thread(&notify_def, NULL, -1, &notify) < 0 ||
        uploader_spawn(&arg, &uploader) < 0)
        return 1;
    RUN(scrambled_job_lands_whole);
    RUN(missing_segment_fails_and_cleans_up);
    RUN(failed_transcode_reports_its_error);
    RUN(bad_asset_is_refused);
    pthread_mutex_lock(&mu);
    CHECK_EQ_INT(ntranscode_done, 4);
    pthread_mutex_unlock(&mu);
    actor_stop(uploader);
    actor_join(uploader);
    actor_stop(notify);
    actor_join(notify);
    loop_stop(loop, rd_now_ns() + 1000000000ull);
    loop_join(loop);
    blob_aio_close(fs);
    actor_free_all();
    loop_destroy(loop);
    metrics_free_all();
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", data_dir);
    if (system(cmd) != 0)
        printf("could not remove %s\n", data_dir);
    return test_summary();
}
