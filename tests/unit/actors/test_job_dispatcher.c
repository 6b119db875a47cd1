/* The dispatcher's retry backoff: exponential from the base, capped, jittered into [d/2, d].
 * (The dispatcher's behaviour against real stores is tests/integration/test_jobs.py.) */
#include <stdint.h>

#include "actors/job_dispatcher.h"
#include "tests/unit/test.h"

TEST(backoff_doubles_caps_and_jitters)
{
    rd_dispatcher_config dc = {.retry_base_ms = 1000, .retry_max_ms = 60000};
    CHECK_EQ_INT(dispatcher_backoff_ms(&dc, 1, 0), 500);
    CHECK_EQ_INT(dispatcher_backoff_ms(&dc, 1, UINT32_MAX), 1000);
    CHECK_EQ_INT(dispatcher_backoff_ms(&dc, 2, UINT32_MAX), 2000);
    CHECK_EQ_INT(dispatcher_backoff_ms(&dc, 5, UINT32_MAX), 16000);
    CHECK_EQ_INT(dispatcher_backoff_ms(&dc, 7, UINT32_MAX), 60000); /* 64 s, capped */
    CHECK_EQ_INT(dispatcher_backoff_ms(&dc, 1000, UINT32_MAX), 60000);
    for (uint32_t r = 0; r < 1000; r++) {
        int64_t d = dispatcher_backoff_ms(&dc, 3, r * 4294967u);
        CHECK(d >= 2000 && d <= 4000);
    }
}

int main(void)
{
    RUN(backoff_doubles_caps_and_jitters);
    return test_summary();
}
