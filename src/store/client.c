/* The store client's bridge: a loop actor that turns a plain send from another thread into an
 * actor_request, and a semaphore that carries the answer back. */
#include "src/store/client.h"

#include <errno.h>
#include <semaphore.h>
#include <stdlib.h>

#include "src/rt/alloc.h"

struct rd_store_client {
    rd_actor *bridge;
    rd_actor *store;
    sem_t done;
    uint32_t timeout_ms;
    rd_msg *answer;
    int err;
};

static int answered(rd_actor *self, rd_msg *reply, int err, void *ctx)
{
    (void)self;
    rd_store_client *c = ctx;
    c->answer = reply;
    c->err = err < 0                         ? err
             : reply->type == MSG_JOB_CANCEL ? msg_body(reply, job_cancel)->status
                                             : msg_body(reply, store)->status;
    sem_post(&c->done);
    return RD_KEPT;
}

static int bridge_handle(rd_actor *self, rd_msg *m)
{
    rd_store_client *c = self->arg;
    m->flags = 0;
    int r = actor_request(self, c->store, m, c->timeout_ms, answered, c);
    if (r < 0) {
        c->answer = NULL;
        c->err = r;
        sem_post(&c->done);
        return RD_DONE;
    }
    return RD_KEPT;
}

static const rd_actor_def bridge_def = {.name = "store-client", .handle = bridge_handle};

int store_client_create(rd_loop *loop, rd_actor *store, rd_store_client **out)
{
    rd_store_client *c = rd_calloc(1, sizeof(*c), "a store client");
    c->store = store;
    sem_init(&c->done, 0, 0);
    int r = actor_spawn(loop, &bridge_def, c, &c->bridge);
    if (r < 0) {
        sem_destroy(&c->done);
        free(c);
        return r;
    }
    *out = c;
    return 0;
}

int store_client_call(rd_store_client *c, rd_msg *req, uint32_t timeout_ms, rd_msg **answer)
{
    c->timeout_ms = timeout_ms;
    int r = actor_send(c->bridge, req);
    if (r < 0) {
        msg_free(req);
        return r;
    }
    while (sem_wait(&c->done) < 0 && errno == EINTR)
        ;
    if (answer != NULL)
        *answer = c->answer;
    else if (c->answer != NULL)
        msg_free(c->answer);
    return c->err;
}

void store_client_destroy(rd_store_client *c)
{
    if (c == NULL)
        return;
    actor_stop(c->bridge);
    sem_destroy(&c->done);
    free(c);
}
