/* Loops of a process: creation pinned to the allowed CPUs, and a stop that drains. */
#include "src/rt/runtime.h"

#include <errno.h>
#include <sched.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>

#include "src/rt/actor.h"
#include "src/rt/log.h"

int rt_start(rd_runtime *rt, int cores)
{
    cpu_set_t allowed;
    int cpus[1024];
    int ncpus = 0;
    if (sched_getaffinity(0, sizeof(allowed), &allowed) == 0) {
        for (int c = 0; c < CPU_SETSIZE && ncpus < 1024; c++)
            if (CPU_ISSET(c, &allowed))
                cpus[ncpus++] = c;
    }
    rt->loops = calloc((size_t)cores, sizeof(*rt->loops));
    if (rt->loops == NULL)
        return -ENOMEM;
    rt->nloops = 0;
    for (int i = 0; i < cores; i++) {
        int cpu = ncpus > 0 ? cpus[i % ncpus] : -1;
        int r = loop_create(&rt->loops[i], i, cpu);
        if (r == 0) {
            r = loop_start(rt->loops[i]);
            if (r < 0)
                loop_destroy(rt->loops[i]);
        }
        if (r < 0) {
            rt_stop(rt, 0);
            return r;
        }
        rt->nloops++;
    }
    return 0;
}

void rt_stop(rd_runtime *rt, uint64_t drain_ns)
{
    rt_halt(rt, drain_ns);
    rt_free(rt);
}

void rt_halt(rd_runtime *rt, uint64_t drain_ns)
{
    uint64_t deadline = rd_now_ns() + drain_ns;
    for (int i = 0; i < rt->nloops; i++)
        loop_stop(rt->loops[i], deadline);
    for (int i = 0; i < rt->nloops; i++)
        loop_join(rt->loops[i]);
}

void rt_free(rd_runtime *rt)
{
    for (int i = 0; i < rt->nloops; i++)
        loop_destroy(rt->loops[i]);
    free(rt->loops);
    rt->loops = NULL;
    rt->nloops = 0;
}

static void signal_set(sigset_t *set)
{
    sigemptyset(set);
    sigaddset(set, SIGINT);
    sigaddset(set, SIGTERM);
    sigaddset(set, SIGHUP);
}

void rt_block_signals(void)
{
    sigset_t set;
    signal_set(&set);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN); /* a peer that hangs up is an error code, not a death */
}

int rt_wait_signal(void (*on_hup)(void *ctx), void *ctx)
{
    sigset_t set;
    signal_set(&set);
    for (;;) {
        int sig = 0;
        sigwait(&set, &sig);
        if (sig != SIGHUP)
            return sig;
        if (on_hup != NULL)
            on_hup(ctx);
        else
            log_info("sighup", KV_STR("action", "none: nothing to reload"));
    }
}
