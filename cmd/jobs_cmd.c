/* The job commands: `reeld migrate`, `reeld worker` (the worker role alone: store, dispatcher
 * and noop workers, no HTTP), and `reeld job ...`, an operator's window on the store. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/cmd.h"
#include "cmd/jobs.h"
#include "src/rt/actor.h"
#include "src/rt/log.h"
#include "src/rt/runtime.h"
#include "src/store/client.h"
#include "src/store/store.h"

int cmd_migrate(int argc, char **argv)
{
    rd_config cfg;
    char err[512];
    if (config_load(&cfg, argc, argv, err, sizeof(err)) < 0) {
        fprintf(stderr, "reeld: %s\n", err);
        return 2;
    }
    log_set_level(cfg.log_level);
    if (store_migrate(&cfg, err, sizeof(err)) < 0) {
        fprintf(stderr, "reeld: %s\n", err);
        return 1;
    }
    printf("reeld: the %s schema is up to date\n", cfg.postgres_url ? "postgres" : "sqlite");
    return 0;
}

int cmd_worker(int argc, char **argv)
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
    const char *v = getenv("REELD_NOOP_SLOTS");
    int slots = v ? atoi(v) : 4;
    log_set_level(cfg.log_level);
    rt_block_signals();
    rd_runtime rt;
    int r = rt_start(&rt, cfg.cores);
    if (r < 0) {
        log_error("start_failed", KV_STR("what", "event loops"), KV_ERRNO(r));
        return 1;
    }
    r = jobs_start(&jobs, &cfg, &rt, slots, err, sizeof(err));
    if (r < 0) {
        fprintf(stderr, "reeld: %s\n", err);
        rt_stop(&rt, 0);
        jobs_free(&jobs);
        actor_free_all();
        return 1;
    }
    log_info("started", KV_STR("role", "worker"), KV_INT("loops", rt.nloops),
             KV_INT("noop_slots", slots));
    int sig = rt_wait_signal(NULL, NULL);
    log_info("stopping", KV_INT("signal", sig), KV_INT("drain_sec", cfg.drain_sec));
    rt_halt(&rt, (uint64_t)cfg.drain_sec * 1000000000ull);
    jobs_halt(&jobs);
    rt_free(&rt);
    jobs_free(&jobs);
    actor_free_all();
    log_info("stopped");
    return 0;
}

static int job_usage(void)
{
    fputs("usage: reeld job add ASSET KIND [PRIORITY [MAX_ATTEMPTS]]\n"
          "       reeld job get ID | cancel ID | list [STATE] | counts\n",
          stderr);
    return 2;
}

/* Exit statuses of `reeld job`: 0 done, 1 failed, 3 not found, 4 already finished, 75 the
 * store is unreachable or busy (retry later; EX_TEMPFAIL). */
static int exit_for(int status)
{
    if (status == 0)
        return 0;
    if (status == -ENOENT)
        return 3;
    if (status == -EALREADY)
        return 4;
    if (store_retryable(status))
        return 75;
    return 1;
}

static int job_request(const char *what, int argc, char **argv, rd_msg **req)
{
    if (!strcmp(what, "add") && argc >= 2) {
        *req = store_request(STORE_JOB_CREATE);
        struct rd_msg_store *b = msg_body(*req, store);
        b->n = 1;
        b->jobs[0].asset_id = strtoll(argv[0], NULL, 10);
        snprintf(b->jobs[0].kind, RD_JOB_KIND_MAX, "%s", argv[1]);
        b->jobs[0].priority = argc > 2 ? atoi(argv[2]) : 0;
        b->jobs[0].max_attempts = argc > 3 ? atoi(argv[3]) : 5;
    } else if ((!strcmp(what, "get") || !strcmp(what, "cancel")) && argc >= 1) {
        *req = store_request(!strcmp(what, "get") ? STORE_JOB_GET : STORE_JOB_CANCEL);
        msg_body(*req, store)->jobs[0].id = strtoll(argv[0], NULL, 10);
    } else if (!strcmp(what, "list")) {
        *req = store_request(STORE_JOB_LIST);
        if (argc >= 1) {
            int st = job_state_parse(argv[0], strlen(argv[0]));
            if (st == JOB_STATE_NONE) {
                fprintf(stderr, "reeld: unknown job state '%s'\n", argv[0]);
                return -EINVAL;
            }
            msg_body(*req, store)->state = st;
        }
    } else if (!strcmp(what, "counts")) {
        *req = store_request(STORE_JOB_COUNTS);
    } else {
        return -EINVAL;
    }
    return 0;
}

static void print_answer(const struct rd_msg_store *b)
{
    char buf[2048];
    if (b->op == STORE_JOB_COUNTS) {
        rd_queue_counts c = b->counts;
        c.stream_length = c.stream_pending = -1;
        if (queue_counts_json(buf, sizeof(buf), &c) > 0)
            puts(buf);
        return;
    }
    for (uint32_t i = 0; i < b->n; i++)
        if (job_json(buf, sizeof(buf), &b->jobs[i]) > 0)
            puts(buf);
}

int cmd_job(int argc, char **argv)
{
    if (argc < 2)
        return job_usage();
    rd_config cfg;
    char err[512];
    if (config_load(&cfg, 1, argv, err, sizeof(err)) < 0) {
        fprintf(stderr, "reeld: %s\n", err);
        return 2;
    }
    log_set_level(getenv("REELD_LOG") ? cfg.log_level : "warn");
    rd_msg *req = NULL;
    if (job_request(argv[1], argc - 2, argv + 2, &req) < 0)
        return req ? (msg_free(req), 2) : job_usage();
    if (store_migrate(&cfg, err, sizeof(err)) < 0) {
        msg_free(req);
        fprintf(stderr, "reeld: %s\n", err);
        return 75;
    }
    rt_block_signals();
    rd_runtime rt;
    int r = rt_start(&rt, 1);
    if (r < 0) {
        msg_free(req);
        fprintf(stderr, "reeld: cannot start an event loop: %s\n", strerror(-r));
        return 1;
    }
    rd_actor *store;
    rd_store_client *client;
    store_spawn(&cfg, rt.loops[0], &store);
    store_client_create(rt.loops[0], store, &client);
    rd_msg *ans = NULL;
    int st = store_client_call(client, req, 10000, &ans);
    if (ans != NULL)
        print_answer(msg_body(ans, store));
    if (st < 0)
        fprintf(stderr, "reeld: %s\n", store_strerror(st));
    msg_free(ans);
    store_client_destroy(client);
    rt_stop(&rt, 2000000000ull);
    store_free(store);
    actor_free_all();
    return exit_for(st);
}
