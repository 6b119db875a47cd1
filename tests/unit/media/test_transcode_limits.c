/* Transcode bombs: a master longer than REELD_MAX_DURATION_SEC or with pictures bigger than
 * REELD_MAX_FRAME_PIXELS fails at once with -E2BIG (permanent) and a sentence naming the
 * setting; a master whose length no header tells (a stream read without seeking) is stopped
 * once its decoded timestamps pass the limit. Inputs are made with the ffmpeg CLI; the test
 * skips when it is missing. */
#include "src/media/transcode.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "actors/transcode_worker.h"
#include "tests/unit/media/fixture.h"
#include "tests/unit/test.h"

static char dir[64], mp4[96], ts[96];
static int objects;

static int sink_object(void *ctx, const char *name, uint8_t *data, size_t len)
{
    (void)ctx;
    (void)name;
    (void)len;
    free(data);
    objects++;
    return 0;
}

static int run_job(media_source *src, int max_sec, int64_t max_px, transcode_result *res, char *err,
                   size_t errlen)
{
    transcode_opts o = {.preset = "480p",
                        .segment_sec = 1,
                        .encoder = MEDIA_ENC_X264,
                        .x264_preset = "ultrafast",
                        .x264_threads = 1,
                        .max_duration_sec = max_sec,
                        .max_frame_pixels = max_px};
    transcode_sink sink = {sink_object, NULL, NULL, NULL};
    objects = 0;
    return transcode_run(src, &o, &sink, res, err, errlen);
}

static int run_file(const char *path, int max_sec, int64_t max_px, transcode_result *res, char *err,
                    size_t errlen)
{
    media_source *src = NULL;
    int r = source_open_file(path, &src);
    if (r < 0)
        return r;
    r = run_job(src, max_sec, max_px, res, err, errlen);
    source_close(src);
    return r;
}

TEST(within_the_limits_the_job_runs)
{
    transcode_result res;
    char err[256];
    int r = run_file(mp4, 4, 160 * 120, &res, err, sizeof(err));
    CHECK_EQ_INT(r, 0);
    if (r < 0)
        printf("  err: %s\n", err);
    CHECK(objects > 0);
}

TEST(a_master_longer_than_the_limit_fails_at_once)
{
    transcode_result res;
    char err[256];
    int r = run_file(mp4, 1, 0, &res, err, sizeof(err));
    CHECK_EQ_INT(r, -E2BIG);
    CHECK(strstr(err, "REELD_MAX_DURATION_SEC") != NULL);
    CHECK(strstr(err, "lasts 3 s") != NULL);
    CHECK_EQ_INT(res.frames, 0); /* refused before decoding */
    CHECK_EQ_INT(objects, 0);
    CHECK_EQ_INT(transcode_worker_retryable(r), 0);
    printf("  err: %s\n", err);
}

TEST(bigger_pictures_than_the_limit_fail_at_once)
{
    transcode_result res;
    char err[256];
    int r = run_file(mp4, 0, 160 * 120 - 1, &res, err, sizeof(err));
    CHECK_EQ_INT(r, -E2BIG);
    CHECK(strstr(err, "REELD_MAX_FRAME_PIXELS") != NULL);
    CHECK(strstr(err, "160x120") != NULL);
    CHECK_EQ_INT(res.frames, 0);
    CHECK_EQ_INT(transcode_worker_retryable(r), 0);
    printf("  err: %s\n", err);
}

/* A file source that cannot seek and does not know its size: the demuxer learns no duration
 * from the header, as with a header that lies, and only the timestamps tell. */
typedef struct pipe_source {
    media_source base;
    media_source *file;
} pipe_source;

static int pipe_read(media_source *s, uint8_t *buf, int len)
{
    return ((pipe_source *)(void *)s)->file->read(((pipe_source *)(void *)s)->file, buf, len);
}

static int64_t pipe_seek(media_source *s, int64_t offset, int whence)
{
    (void)s;
    (void)offset;
    (void)whence;
    return -ESPIPE;
}

TEST(decoding_stops_when_the_timestamps_pass_the_limit)
{
    pipe_source p = {.base = {.read = pipe_read, .seek = pipe_seek, .size = -1}};
    CHECK_EQ_INT(source_open_file(ts, &p.file), 0);
    if (p.file == NULL)
        return;
    transcode_result res;
    char err[256];
    int r = run_job(&p.base, 1, 0, &res, err, sizeof(err));
    source_close(p.file);
    CHECK_EQ_INT(r, -E2BIG);
    CHECK(strstr(err, "runs past 1 s") != NULL);
    CHECK(strstr(err, "REELD_MAX_DURATION_SEC") != NULL);
    /* Stopped near 1 s of its 3 s at 25 fps, not at the end. */
    CHECK(res.frames > 0 && res.frames <= 30);
    printf("  err: %s (after %lld frames)\n", err, (long long)res.frames);
}

int main(void)
{
    int r = fixture_begin("transcode_limits", dir, sizeof(dir));
    if (r != 0)
        return r > 0 ? 0 : 1;
    snprintf(mp4, sizeof(mp4), "%s/in.mp4", dir);
    snprintf(ts, sizeof(ts), "%s/in.ts", dir);
    if (fixture_sh("ffmpeg -v error -y -f lavfi -i testsrc2=size=160x120:rate=25:duration=3 -f "
                   "lavfi -i sine=duration=3 -c:v libx264 -preset ultrafast -pix_fmt yuv420p -c:a "
                   "aac %s && ffmpeg -v error -y -i %s -c copy -f mpegts %s",
                   mp4, mp4, ts) < 0)
        return 1;
    RUN(within_the_limits_the_job_runs);
    RUN(a_master_longer_than_the_limit_fails_at_once);
    RUN(bigger_pictures_than_the_limit_fail_at_once);
    RUN(decoding_stops_when_the_timestamps_pass_the_limit);
    fixture_end(dir);
    return test_summary();
}
