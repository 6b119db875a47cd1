/* `reeld serve`: the loops, the actors on them, and a graceful stop on SIGINT/SIGTERM. */
#include <stdio.h>
#include <stdlib.h>

#include "src/cmd.h"
#include "src/jobs.h"
#include "src/rt/actor.h"
#include "src/rt/log.h"
#include "src/rt/runtime.h"

int cmd_serve(int argc, char **argv)
{
    rd_config cfg;
    char err[512];
    if (config_load(&cfg, argc, argv, err, sizeof(err)) < 0) {
        fprintf(stderr, "reeld: %s\n", err);
        return 2;
    }
    rd_jobs jobs;
    if (jobs_config(&jobs, &cfg, err, sizeof(err)) < 0) {
        fprintf(stderr, "reeld: %s\n", err);
        return 2;
    }
    log_set_level(cfg.log_level);
    rt_block_signals();

    rd_runtime rt;
    int r = rt_start(&rt, cfg.cores);
    if (r < 0) {
        log_error("start_failed", KV_STR("what", "event loops"), KV_ERRNO(r));
        return 1;
    }
    config_log(&cfg);
    const char *noop = getenv("REELD_NOOP_SLOTS");
    r = jobs_start(&jobs, &cfg, &rt, noop ? atoi(noop) : 0, err, sizeof(err));
    if (r < 0) {
        log_error("start_failed", KV_STR("what", "job system"), KV_STR("detail", err));
        rt_stop(&rt, 0);
        jobs_free(&jobs);
        actor_free_all();
        return 1;
    }
    log_info("started", KV_INT("loops", rt.nloops),
             KV_STR("wake", loop_uses_msg_ring(rt.loops[0]) ? "msg_ring" : "eventfd"));

    int sig = rt_wait_signal();
    log_info("stopping", KV_INT("signal", sig), KV_INT("drain_sec", cfg.drain_sec));
    rt_stop(&rt, (uint64_t)cfg.drain_sec * 1000000000ull);
    jobs_free(&jobs);
    actor_free_all();
    log_info("stopped");
    return 0;
}
