/* The metrics actor: GET /metrics, /api/health, /api/ping over the runtime's registry.
 *
 * owns:  nothing (the registry is src/rt/metrics.c).
 * takes: MSG_HTTP_REQUEST for its three routes.
 * sends: MSG_HTTP_RESPONSE replies to the listener that asked.
 * never: blocks its loop (a scrape reads /proc/self/statm, which does not block). */
#include "actors/metrics.h"

#include <stdio.h>
#include <string.h>

#include "actors/job_dispatcher.h"
#include "proto/prom.h"
#include "src/rt/buf.h"
#include "src/rt/metrics.h"

#define PING_BODY_LIMIT (64 * 1024)

int metrics_routes(rd_http_routes *routes, rd_actor *const *actors, int n)
{
    int r = http_routes_add(routes, "/metrics", RD_HTTP_GET, actors, n, 0, 0);
    if (r < 0)
        return r;
    r = http_routes_add(routes, "/api/health", RD_HTTP_GET, actors, n, 0, 0);
    if (r < 0)
        return r;
    /* POST takes a body (up to PING_BODY_LIMIT) and says how long it was: a cheap check of
     * the upload path for load balancers and tests. */
    r = http_routes_add(routes, "/api/ping", RD_HTTP_GET | RD_HTTP_POST, actors, n, PING_BODY_LIMIT,
                        0);
    return r < 0 ? r : 0;
}

static int serve_metrics(const rd_msg *m)
{
    for (size_t cap = 64 * 1024; cap <= 64 * 1024 * 1024; cap *= 4) {
        rd_buf *b = buf_new(cap);
        prom_writer w;
        prom_init(&w, b->data, b->cap);
        if (!metrics_write(&w)) {
            b->len = w.len;
            return http_reply_buf(m, 200, PROM_CONTENT_TYPE, b);
        }
        buf_unref(b);
    }
    return http_reply_error(m, 500, "metrics_too_large", "The metrics did not fit; see the logs.");
}

static int serve_health(const rd_msg *m)
{
    char body[512], queue[256] = "{}";
    /* queue: job counts by state, as the job dispatcher last read them (the queue about a second
     * old, the finished jobs 2 s or more: see COUNT_ALL_SHARE). */
    rd_queue_counts c;
    if (dispatcher_queue_counts(&c) == 0)
        queue_counts_json(queue, sizeof(queue), &c);
    int n = snprintf(body, sizeof(body),
                     "{\"ok\":true,\"uptime_s\":%llu,\"memory\":{\"rss_bytes\":%llu},"
                     "\"queue\":%s}",
                     (unsigned long long)metrics_uptime_s(),
                     (unsigned long long)metrics_rss_bytes(), queue);
    return http_reply(m, 200, "application/json", body, (size_t)n);
}

static int metrics_handle(rd_actor *self, rd_msg *m)
{
    (void)self;
    if (m->type != MSG_HTTP_REQUEST)
        return RD_DONE;
    int r;
    const struct rd_msg_http_request *q = msg_body(m, http_request);
    /* Which route, by its path: its three are all this actor gets (no ids kept in a static,
     * so any number of these actors, or one alone in a test, work the same). */
    http1_str path = http_request_path(q);
#define IS(lit) (path.len == sizeof(lit) - 1 && memcmp(path.p, lit, sizeof(lit) - 1) == 0)
    int ping = IS("/api/ping"), health = IS("/api/health"), metrics = IS("/metrics");
#undef IS
    if (ping && q->method == RD_HTTP_POST) {
        char body[64];
        int n = snprintf(body, sizeof(body), "{\"ok\":true,\"body_bytes\":%u}", q->body_len);
        r = http_reply(m, 200, "application/json", body, (size_t)n);
    } else if (ping)
        r = http_reply(m, 200, "application/json", "{\"ok\":true}", 11);
    else if (health)
        r = serve_health(m);
    else if (metrics)
        r = serve_metrics(m);
    else
        r = http_reply_error(m, 404, "not_found", "No such route.");
    /* A listener that is gone or full is not our failure: the reply is dropped. */
    (void)r;
    return RD_DONE;
}

const rd_actor_def metrics_actor_def = {
    .name = "metrics",
    .handle = metrics_handle,
};
