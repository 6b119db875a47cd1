/* What the transcode worker retries: the moment's failures (storage, network, the database),
 * never the input's (a master that cannot be decoded, or is missing). */
#include "actors/transcode_worker.h"

#include <errno.h>

#include "tests/unit/test.h"

TEST(input_failures_are_final)
{
    CHECK_EQ_INT(transcode_worker_retryable(-EINVAL), 0);
    CHECK_EQ_INT(transcode_worker_retryable(-ENOENT), 0);
    CHECK_EQ_INT(transcode_worker_retryable(-ENOTSUP), 0);
    CHECK_EQ_INT(transcode_worker_retryable(-E2BIG), 0);
    CHECK_EQ_INT(transcode_worker_retryable(-0x41444E49), 0); /* AVERROR_INVALIDDATA */
    CHECK_EQ_INT(transcode_worker_retryable(-ECANCELED), 0);
    CHECK_EQ_INT(transcode_worker_retryable(0), 0);
}

TEST(moment_failures_are_retried)
{
    CHECK_EQ_INT(transcode_worker_retryable(-EIO), 1);
    CHECK_EQ_INT(transcode_worker_retryable(-ECONNRESET), 1);
    CHECK_EQ_INT(transcode_worker_retryable(-ETIMEDOUT), 1);
    CHECK_EQ_INT(transcode_worker_retryable(-ENOTCONN), 1);
    CHECK_EQ_INT(transcode_worker_retryable(-EAGAIN), 1);
    CHECK_EQ_INT(transcode_worker_retryable(-ENOMEM), 1);
}

int main(void)
{
    RUN(input_failures_are_final);
    RUN(moment_failures_are_retried);
    return test_summary();
}
