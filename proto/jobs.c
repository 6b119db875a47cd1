/* Names of job states, as the store keeps them and the API shows them. */
#include "proto/jobs.h"

#include <string.h>

static const char *const state_names[JOB_STATE_COUNT] = {
    [JOB_STATE_NONE] = "",          [JOB_QUEUED] = "queued", [JOB_RUNNING] = "running",
    [JOB_SUCCEEDED] = "succeeded", [JOB_FAILED] = "failed", [JOB_CANCELLED] = "cancelled",
    [JOB_DEAD] = "dead",
};

const char *job_state_name(int state)
{
    return state > 0 && state < JOB_STATE_COUNT ? state_names[state] : "";
}

int job_state_parse(const char *name, size_t len)
{
    for (int i = 1; i < JOB_STATE_COUNT; i++)
        if (strlen(state_names[i]) == len && memcmp(state_names[i], name, len) == 0)
            return i;
    return JOB_STATE_NONE;
}
