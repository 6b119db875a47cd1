/* Wiring of the job system. See jobs.h. */
#include "cmd/jobs.h"

#include <stdlib.h>
#include <string.h>

#include "src/rt/alloc.h"

#include "src/store/store.h"

int jobs_config(rd_jobs *j, const rd_config *cfg, char *err, size_t errlen)
{
    memset(j, 0, sizeof(*j));
    return dispatcher_config_load(&j->dc, cfg, err, errlen);
}

int jobs_start(rd_jobs *j, const rd_config *cfg, rd_runtime *rt, int noop_slots, char *err,
               size_t errlen)
{
    int r = store_migrate(cfg, err, errlen);
    if (r < 0)
        return r;
    r = store_spawn(cfg, rt->loops[0], &j->store);
    if (r < 0)
        return r;
    r = dispatcher_spawn(rt->loops[rt->nloops - 1], j->store, &j->dc, &j->dispatcher);
    if (r < 0)
        return r;
    /* Noop workers: up to 16 slots each, spread over the loops. */
    for (int left = noop_slots; left > 0 && j->nworkers < 64;) {
        int slots = left > 16 ? 16 : left;
        rd_loop *loop = rt->loops[j->nworkers % rt->nloops];
        r = noop_worker_spawn(loop, j->dispatcher, slots, &j->workers[j->nworkers]);
        if (r < 0)
            return r;
        j->nworkers++;
        left -= slots;
    }
    return 0;
}

int jobs_routes(rd_jobs *j, rd_runtime *rt, rd_http_routes *routes)
{
    j->api.store = j->store;
    j->api.dispatcher = j->dispatcher;
    j->api_actors = rd_calloc((size_t)rt->nloops, sizeof(*j->api_actors), "the API actors");
    for (int i = 0; i < rt->nloops; i++) {
        int r = actor_spawn(rt->loops[i], &jobs_api_actor_def, &j->api, &j->api_actors[i]);
        if (r < 0)
            return r;
    }
    return jobs_api_routes(routes, j->api_actors, rt->nloops);
}

void jobs_halt(rd_jobs *j)
{
    store_free(j->store);
    j->store = NULL;
}

void jobs_free(rd_jobs *j)
{
    free(j->api_actors);
    for (int i = 0; i < j->nworkers; i++)
        noop_worker_free(j->workers[i]);
    dispatcher_free(j->dispatcher);
    store_free(j->store);
    memset(j, 0, sizeof(*j));
}
