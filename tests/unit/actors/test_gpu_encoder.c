/* gpu-encoder actors: jobs through the mailbox, outputs in publish order, one failing job
 * leaving the other encoders (and itself) working, -EBUSY while busy, cancel by message.
 * Inputs are made with the ffmpeg CLI; the test skips when it is missing. */
#include "actors/gpu_encoder.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tests/unit/test.h"

#define MAX_SEEN 256

typedef struct seen {
    pthread_mutex_t mu;
    char names[MAX_SEEN][64];
    uint64_t object_job[MAX_SEEN];
    int nobjects;
    struct rd_msg_transcode_done done[16];
    int ndone;
} seen;

static seen got = {.mu = PTHREAD_MUTEX_INITIALIZER};

static int collector_handle(rd_actor *self, rd_msg *m)
{
    (void)self;
    pthread_mutex_lock(&got.mu);
    if (m->type == MSG_HLS_OBJECT && got.nobjects < MAX_SEEN) {
        struct rd_msg_hls_object *o = msg_body(m, hls_object);
        snprintf(got.names[got.nobjects], sizeof(got.names[0]), "%s", o->name);
        got.object_job[got.nobjects++] = o->job;
    } else if (m->type == MSG_TRANSCODE_DONE && got.ndone < 16) {
        got.done[got.ndone++] = *msg_body(m, transcode_done);
    }
    pthread_mutex_unlock(&got.mu);
    return RD_DONE; /* msg_free releases the segment bytes */
}

static const rd_actor_def collector_def = {.name = "collector", .handle = collector_handle};

static char dir[64], good[128], bad[128];
static rd_actor *collector;
static encoder_pool pool;

static void send_job_as(int encoder, uint64_t job, const char *input, const char *format)
{
    rd_msg *m = msg_new(MSG_TRANSCODE);
    struct rd_msg_transcode *t = msg_body(m, transcode);
    t->job = job;
    t->sink = collector;
    snprintf(t->input, sizeof(t->input), "%s", input);
    snprintf(t->preset, sizeof(t->preset), "480p");
    t->segment_sec = 1;
    snprintf(t->format, sizeof(t->format), "%s", format);
    CHECK_EQ_INT(actor_send(pool.actors[encoder], m), 0);
}

static void send_job(int encoder, uint64_t job, const char *input)
{
    send_job_as(encoder, job, input, "");
}

/* The end of `job`, waiting up to 60 s; NULL on timeout. */
static const struct rd_msg_transcode_done *wait_done(uint64_t job)
{
    for (int i = 0; i < 6000; i++) {
        pthread_mutex_lock(&got.mu);
        for (int k = 0; k < got.ndone; k++) {
            if (got.done[k].job == job) {
                pthread_mutex_unlock(&got.mu);
                return &got.done[k];
            }
        }
        pthread_mutex_unlock(&got.mu);
        struct timespec ts = {0, 10000000L};
        nanosleep(&ts, NULL);
    }
    return NULL;
}

TEST(failing_job_leaves_other_encoders_working)
{
    send_job(0, 1, bad);
    send_job(1, 2, good);
    const struct rd_msg_transcode_done *b = wait_done(1), *g = wait_done(2);
    CHECK(b != NULL && g != NULL);
    if (b == NULL || g == NULL)
        return;
    CHECK(b->status < 0);
    CHECK(strstr(b->error, "not audio or video") != NULL);
    CHECK_EQ_INT(g->status, 0);
    CHECK_EQ_INT(g->rungs, 1);
    CHECK(g->segments >= 2);
    CHECK(g->peak_rss_kb > 0);

    /* publish order for job 2: every segment, then playlists, then master, then poster */
    pthread_mutex_lock(&got.mu);
    int last_seg = -1, first_playlist = -1, master = -1, poster = -1;
    for (int i = 0; i < got.nobjects; i++) {
        if (got.object_job[i] != 2)
            continue;
        const char *n = got.names[i];
        if (strstr(n, "/seg_") != NULL)
            last_seg = i;
        else if (strstr(n, "/index.m3u8") != NULL && first_playlist < 0)
            first_playlist = i;
        else if (!strcmp(n, "master.m3u8"))
            master = i;
        else if (!strcmp(n, "poster.jpg"))
            poster = i;
    }
    pthread_mutex_unlock(&got.mu);
    CHECK(last_seg >= 0 && last_seg < first_playlist);
    CHECK(first_playlist < master && master < poster);

    /* the encoder whose job failed takes the next one */
    send_job(0, 3, good);
    const struct rd_msg_transcode_done *again = wait_done(3);
    CHECK(again != NULL && again->status == 0);
}

TEST(busy_encoder_refuses_and_cancel_stops)
{
    send_job(1, 4, good);
    send_job(1, 5, good);
    rd_msg *c = msg_new(MSG_TRANSCODE_CANCEL);
    msg_body(c, transcode_cancel)->job = 4;
    CHECK_EQ_INT(actor_send(pool.actors[1], c), 0);
    const struct rd_msg_transcode_done *busy = wait_done(5), *cancelled = wait_done(4);
    CHECK(busy != NULL && busy->status == -EBUSY);
    CHECK(cancelled != NULL && cancelled->status == -ECANCELED);
}

TEST(fmp4_job_sends_the_init_segment_first)
{
    send_job_as(0, 6, good, "fmp4");
    const struct rd_msg_transcode_done *d = wait_done(6);
    CHECK(d != NULL && d->status == 0);
    pthread_mutex_lock(&got.mu);
    int init = -1, first_seg = -1, segs = 0, ts = 0, playlist = -1;
    for (int i = 0; i < got.nobjects; i++) {
        if (got.object_job[i] != 6)
            continue;
        const char *n = got.names[i];
        if (!strcmp(n, "240p/init.mp4") && init < 0)
            init = i;
        else if (strstr(n, "/seg_") != NULL && strstr(n, ".m4s") != NULL && segs++ == 0)
            first_seg = i;
        else if (strstr(n, ".ts") != NULL)
            ts++;
        else if (!strcmp(n, "240p/index.m3u8"))
            playlist = i;
    }
    pthread_mutex_unlock(&got.mu);
    CHECK(init >= 0 && init < first_seg && first_seg < playlist);
    CHECK(segs >= 2 && d != NULL && segs == d->segments);
    CHECK_EQ_INT(ts, 0);
}

int main(void)
{
    if (system("command -v ffmpeg >/dev/null 2>&1") != 0) {
        printf("skip gpu_encoder: no ffmpeg CLI to make inputs\n0 passed, 0 failed, 1 skipped\n");
        return 0;
    }
    snprintf(dir, sizeof(dir), "/tmp/reeld-test-encoder-XXXXXX");
    if (mkdtemp(dir) == NULL)
        return 1;
    snprintf(good, sizeof(good), "%s/good.mp4", dir);
    snprintf(bad, sizeof(bad), "%s/bad.mp4", dir);
    char cmd[512];
    snprintf(cmd, sizeof(cmd),
             "ffmpeg -v error -y -f lavfi -i testsrc2=size=320x240:rate=30:duration=3 -f lavfi "
             "-i sine=duration=3 -c:v libx264 -preset ultrafast -pix_fmt yuv420p -c:a aac %s "
             "&& echo 'not a video' > %s",
             good, bad);
    if (system(cmd) != 0)
        return 1;

    setenv("ENCODER", "x264", 1);
    rd_config cfg;
    char err[256];
    char *argv0[] = {"test", NULL};
    if (config_load(&cfg, 1, argv0, err, sizeof(err)) < 0 ||
        actor_spawn_thread(&collector_def, NULL, -1, &collector) < 0 ||
        encoder_pool_start(&cfg, 2, 2, NULL, &pool, err, sizeof(err)) < 0) {
        printf("setup failed: %s\n", err);
        return 1;
    }
    RUN(failing_job_leaves_other_encoders_working);
    RUN(busy_encoder_refuses_and_cancel_stops);
    RUN(fmp4_job_sends_the_init_segment_first);
    encoder_pool_stop(&pool);
    actor_stop(collector);
    actor_join(collector);
    actor_free_all();
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    if (system(cmd) != 0)
        printf("could not remove %s\n", dir);
    return test_summary();
}
