/* The job API's wire shapes: state names, JSON of jobs and counts (escaping), and the opaque
 * cursor (round trip, and every malformed or foreign cursor refused). */
#include <errno.h>
#include <stdint.h>

#include "proto/jobs.h"
#include "tests/unit/test.h"

TEST(state_names_round_trip)
{
    for (int s = JOB_QUEUED; s < JOB_STATE_COUNT; s++) {
        const char *n = job_state_name(s);
        CHECK_EQ_INT(job_state_parse(n, strlen(n)), s);
    }
    CHECK_EQ_INT(job_state_parse("queue", 5), JOB_STATE_NONE);
    CHECK_EQ_INT(job_state_parse("queuedx", 7), JOB_STATE_NONE);
    CHECK_EQ_STR(job_state_name(0), "");
    CHECK_EQ_STR(job_state_name(99), "");
}

TEST(job_json_escapes_and_says_everything)
{
    rd_job j = {.id = 9007199254740993LL,
                .asset_id = 7,
                .state = JOB_DEAD,
                .attempts = 3,
                .max_attempts = 3,
                .progress = 1000};
    snprintf(j.kind, sizeof(j.kind), "transcode");
    snprintf(j.error, sizeof(j.error), "bad \"input\"\n\\x");
    char buf[1024];
    int n = job_json(buf, sizeof(buf), &j);
    CHECK(n > 0);
    CHECK(strstr(buf, "\"id\":\"9007199254740993\"") != NULL);
    CHECK(strstr(buf, "\"state\":\"dead\"") != NULL);
    CHECK(strstr(buf, "\"progress\":100.0,") != NULL); /* per cent, one decimal */
    CHECK(strstr(buf, "\"error\":\"bad \\\"input\\\"\\u000a\\\\x\"") != NULL);
    CHECK_EQ_INT(job_json(buf, 40, &j), -ENOSPC);

    rd_queue_counts c = {.waiting = 1,
                         .active = 2,
                         .completed = 3,
                         .failed = 4,
                         .dead = 5,
                         .stream_length = -1,
                         .stream_pending = -1};
    queue_counts_json(buf, sizeof(buf), &c);
    CHECK_EQ_STR(buf, "{\"waiting\":1,\"active\":2,\"completed\":3,\"failed\":4,\"dead\":5}");
    c.stream_length = 10;
    c.stream_pending = 2;
    queue_counts_json(buf, sizeof(buf), &c);
    CHECK(strstr(buf, "\"stream_length\":10,\"stream_pending\":2}") != NULL);
}

TEST(progress_is_per_cent_with_one_decimal_in_jobs_and_assets)
{
    rd_job j = {.id = 1, .asset_id = 2, .state = JOB_RUNNING, .progress = 425};
    char buf[2048];
    CHECK(job_json(buf, sizeof(buf), &j) > 0);
    CHECK(strstr(buf, "\"progress\":42.5,") != NULL);
    j.progress = 7;
    job_json(buf, sizeof(buf), &j);
    CHECK(strstr(buf, "\"progress\":0.7,") != NULL);

    rd_asset a = {
        .id = 77, .size_bytes = 5, .created_ms = 1700000000000LL, .updated_ms = 1700000001000LL};
    snprintf(a.public_id, sizeof(a.public_id), "a0123456789abcdef01234567");
    snprintf(a.org, sizeof(a.org), "acme");
    snprintf(a.state, sizeof(a.state), "uploading");
    snprintf(a.filename, sizeof(a.filename), "x.mp4");
    CHECK(asset_json(buf, sizeof(buf), &a) > 0);
    CHECK(strstr(buf, "\"asset_id\":\"a0123456789abcdef01234567\"") != NULL);
    CHECK(strstr(buf, "\"77\"") == NULL); /* the store's key is never shown */
    CHECK(strstr(buf, "progress") == NULL);
    CHECK(strstr(buf, "\"created_at\":\"2023-11-14T22:13:20Z\"") != NULL);
    a.job_id = 9;
    a.job_state = JOB_RUNNING;
    a.job_progress = 999;
    a.job_attempts = 1;
    snprintf(a.state, sizeof(a.state), "processing");
    asset_json(buf, sizeof(buf), &a);
    CHECK(strstr(buf, "\"progress\":99.9,\"attempts\":1") != NULL);
    CHECK(strstr(buf, "\"job_id\":\"9\"") != NULL);
    a.job_state = JOB_SUCCEEDED;
    asset_json(buf, sizeof(buf), &a);
    CHECK(strstr(buf, "\"progress\":100.0") != NULL);
}

TEST(cursor_round_trips_and_refuses_the_malformed)
{
    int64_t ids[] = {0, 1, 42, 999, 123456789012345LL, INT64_MAX};
    for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
        char c[RD_CURSOR_MAX];
        int n = job_cursor_encode(c, 'j', ids[i]);
        CHECK(n > 0 && n < RD_CURSOR_MAX);
        int64_t back = -1;
        CHECK_EQ_INT(job_cursor_decode(c, (size_t)n, 'j', &back), 0);
        CHECK_EQ_INT(back, ids[i]);
        CHECK_EQ_INT(job_cursor_decode(c, (size_t)n, 'a', &back), -EINVAL);
    }
    int64_t id;
    CHECK_EQ_INT(job_cursor_decode("", 0, 'j', &id), 0);
    CHECK_EQ_INT(id, 0);
    const char *bad[] = {"x",    "!!!!", "YTQy", "MTIz", "ag", "ajk5OTk5OTk5OTk5OTk5OTk5OTk5OQ",
                         "ajAx", "aj-x", "aj=="};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        CHECK_EQ_INT(job_cursor_decode(bad[i], strlen(bad[i]), 'j', &id), -EINVAL);
}

int main(void)
{
    RUN(state_names_round_trip);
    RUN(job_json_escapes_and_says_everything);
    RUN(progress_is_per_cent_with_one_decimal_in_jobs_and_assets);
    RUN(cursor_round_trips_and_refuses_the_malformed);
    return test_summary();
}
