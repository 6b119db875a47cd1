/* `reeld serve [--roles api,edge,worker]`: the loops, the actors of each role on them, and a
 * graceful stop on SIGINT/SIGTERM.
 *
 * Every process serves /metrics and /api/health and runs the job system (store and
 * dispatcher). The roles add:
 *   api     the upload → promote → playback API, the jobs and assets routes, and in embedded
 *           mode the /blob/ routes that answer presigned URLs;
 *   edge    /hls/: signed links checked, segments from the disk cache or the origin;
 *   worker  gpu-encoders, the s3-uploader and the transcode-worker that pulls jobs for them.
 * All three by default: one process is the whole product. */
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "actors/api.h"
#include "actors/blob_server.h"
#include "actors/cache_manager.h"
#include "actors/webhook_worker.h"
#include "actors/console.h"
#include "actors/http_listener.h"
#include "actors/metrics.h"
#include "cmd/cmd.h"
#include "cmd/jobs.h"
#include "src/net/tls_server.h"
#include "src/rt/alloc.h"
#include "src/rt/actor.h"
#include "src/rt/log.h"
#include "src/rt/metrics.h"
#include "src/rt/runtime.h"
#include "cmd/worker_role.h"

/* SIGHUP with HTTPS: the certificate and key are read again (a renewal). New connections use
 * them; open ones keep theirs until they end. A failed read keeps the old ones. */
static void reload_tls(void *ctx)
{
    tls_server *tls = ctx;
    char err[300];
    if (tls_server_reload(tls, err, sizeof(err)) < 0) {
        log_error("tls_reload_failed", KV_STR("reason", err));
        return;
    }
    log_info("tls_reloaded", KV_INT("not_after", tls_server_not_after(tls)));
}

/* The certificate's end, so an alert can fire before a failed renewal becomes an outage. */
static void tls_collect(prom_writer *w, void *ctx)
{
    prom_family(w, "reeld_tls_certificate_expiry_timestamp_seconds", "gauge",
                "notAfter of the listener's certificate (Unix time): the one new connections get.");
    prom_sample(w, "reeld_tls_certificate_expiry_timestamp_seconds", "", NULL, NULL, 0, NULL,
                (double)tls_server_not_after(ctx));
}

/* The HTTPS port, for the redirect listener's Location: the port of REELD_PUBLIC_URL when it
 * is https, else REELD_LISTEN's. */
static uint16_t https_port(const rd_config *cfg)
{
    const char *pub = cfg->public_url;
    if (pub != NULL && strncmp(pub, "https://", 8) == 0) {
        const char *h = pub + 8, *end = h + strcspn(h, "/");
        const char *colon = NULL;
        for (const char *p = h; p < end; p++)
            if (*p == ':')
                colon = p;
        if (colon == NULL || (h[0] == '[' && memchr(colon, ']', (size_t)(end - colon)) != NULL))
            return 443;
        return (uint16_t)atoi(colon + 1);
    }
    const char *colon = strrchr(cfg->listen, ':');
    return colon ? (uint16_t)atoi(colon + 1) : 443;
}

/* Each connection is a descriptor, and so is each open file, cache entry and upstream socket:
 * the soft limit (often 1024) goes up to the hard one, and a hard limit below the connection
 * cap is said once, at start, instead of as accept failures under load. */
static void raise_fd_limit(uint32_t max_conns)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return;
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
        getrlimit(RLIMIT_NOFILE, &rl);
    }
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < (rlim_t)max_conns + 256)
        log_warn("fd_limit_low", KV_INT("limit", (int64_t)rl.rlim_cur),
                 KV_INT("max_conns", max_conns),
                 KV_STR("hint", "raise the hard limit (ulimit -Hn, LimitNOFILE=) above "
                                "REELD_HTTP_MAX_CONNS, or lower REELD_HTTP_MAX_CONNS"));
}

typedef struct roles {
    int api, edge, worker;
} roles;

/* REELD_ROLES / --roles: comma-separated names, at least one. 0, or -EINVAL with one line. */
static int parse_roles(const char *v, roles *r, char *err, size_t errlen)
{
    memset(r, 0, sizeof(*r));
    const char *p = v;
    while (*p != '\0') {
        size_t n = strcspn(p, ",");
        if (n == 3 && !strncmp(p, "api", 3))
            r->api = 1;
        else if (n == 4 && !strncmp(p, "edge", 4))
            r->edge = 1;
        else if (n == 6 && !strncmp(p, "worker", 6))
            r->worker = 1;
        else {
            snprintf(err, errlen,
                     "REELD_ROLES: unknown role '%.*s' in '%s' (use api, edge, worker)", (int)n, p,
                     v);
            return -EINVAL;
        }
        p += n;
        if (*p == ',')
            p++;
    }
    if (!r->api && !r->edge && !r->worker) {
        snprintf(err, errlen, "REELD_ROLES: name at least one of api, edge, worker");
        return -EINVAL;
    }
    return 0;
}

int cmd_serve(int argc, char **argv)
{
    rd_config cfg;
    char err[512];
    if (config_load(&cfg, argc, argv, err, sizeof(err)) < 0) {
        fprintf(stderr, "reeld: %s\n", err);
        return 2;
    }
    roles role;
    rd_jobs jobs;
    if (parse_roles(cfg.roles, &role, err, sizeof(err)) < 0 ||
        jobs_config(&jobs, &cfg, err, sizeof(err)) < 0) {
        fprintf(stderr, "reeld: %s\n", err);
        return 2;
    }
    rd_http_config http_cfg = {.header_timeout_ms = (uint32_t)cfg.http_header_timeout_ms,
                               .idle_timeout_ms = (uint32_t)cfg.http_idle_timeout_ms,
                               .max_conns = (uint32_t)cfg.http_max_conns,
                               .max_conns_per_client = (uint32_t)cfg.http_max_conns_per_client,
                               .body_min_rate = (uint32_t)cfg.http_body_min_rate};
    log_set_level(cfg.log_level);
    tls_server *tls = NULL;
    if (cfg.tls_cert != NULL &&
        tls_server_create(&tls, cfg.tls_cert, cfg.tls_key, err, sizeof(err)) < 0) {
        fprintf(stderr, "reeld: REELD_TLS_CERT/REELD_TLS_KEY: %s\n", err);
        return 2;
    }
    http_cfg.tls = tls;
    rt_block_signals();
    /* Segments travel as rd_bufs of up to a few MiB. Past glibc's default threshold each one
     * would be an mmap, page faults on first touch, and a munmap: the edge measured 30% fewer
     * requests per second that way. Keep such blocks in the heap, and let it hold on to freed
     * memory up to a bound. */
    mallopt(M_MMAP_THRESHOLD, 8 << 20);
    mallopt(M_TRIM_THRESHOLD, 64 << 20);

    raise_fd_limit(http_cfg.max_conns);

    rd_runtime rt;
    int r = rt_start(&rt, cfg.cores);
    if (r < 0) {
        log_error("start_failed", KV_STR("what", "event loops"), KV_ERRNO(r));
        tls_server_free(tls);
        return 1;
    }
    /* What start-up makes, in order. A failure on the way goes to the same stop as a signal
     * does (each part's stop and free take one never started), so nothing is left behind. */
    int status = 1, collecting = 0;
    worker_role worker = {0};
    webhook_workers *hooks = NULL;
    rd_actor **metrics = rd_calloc((size_t)rt.nloops, sizeof(*metrics), "starting");
    rd_actor **listeners = rd_calloc((size_t)rt.nloops, sizeof(*listeners), "starting");
    rd_actor **redirects = rd_calloc((size_t)rt.nloops, sizeof(*redirects), "starting");
    rd_http_routes *routes = NULL, *no_routes = NULL;
    blob_server *blob = NULL;
    rd_api *api = NULL;
    rd_edge *edge = NULL;
    console *con = NULL;
    const char *failed = NULL; /* what did not start */

    config_log(&cfg);
    /* Before any actor runs: families made on a loop thread size their cells by the loops. */
    metrics_init(rt.loops, rt.nloops);
    const char *noop = getenv("REELD_NOOP_SLOTS");
    if (jobs_start(&jobs, &cfg, &rt, noop ? atoi(noop) : 0, err, sizeof(err)) < 0) {
        failed = "job system";
        goto stop;
    }
    log_info("started", KV_INT("loops", rt.nloops),
             KV_STR("wake", loop_uses_msg_ring(rt.loops[0]) ? "msg_ring" : "eventfd"),
             KV_STR("roles", cfg.roles));
    if (role.worker &&
        worker_role_start(&worker, &cfg, &rt, jobs.dispatcher, jobs.store, err, sizeof(err)) < 0) {
        failed = "worker";
        goto stop;
    }
    /* Webhook deliveries: every node with the job system takes part. */
    if (webhook_workers_start(&cfg, &rt, jobs.dispatcher, jobs.store, &hooks, err, sizeof(err)) <
        0) {
        failed = "webhook workers";
        goto stop;
    }

    /* The metrics actors, then the routes' actors, then the routes, then one listener per
     * loop: the route table is read-only once they run. */
    http_routes_create(&routes);
    http_routes_create(&no_routes);
    for (int i = 0; i < rt.nloops; i++)
        actor_spawn(rt.loops[i], &metrics_actor_def, NULL, &metrics[i]);
    if ((r = metrics_routes(routes, metrics, rt.nloops)) < 0) {
        snprintf(err, sizeof(err), "%s", strerror(-r));
        failed = "metrics";
        goto stop;
    }
    if (role.api && api_start(&cfg, rt.loops, rt.nloops, jobs.dispatcher, jobs.store, routes, &api,
                              err, sizeof(err)) < 0) {
        failed = "API";
        goto stop;
    }
    /* Embedded mode: reeld answers the presigned URLs it hands out, through the API's own fs
     * blob store (one store per process over the data directory). */
    if (role.api && cfg.s3_endpoint == NULL &&
        blob_server_start(api_blob_store(api), rt.loops[0], &cfg, routes, &blob, err, sizeof(err)) <
            0) {
        failed = "blob server";
        goto stop;
    }
    /* After the API: its /api/assets/{id} and /playback (auth, org) answer before the job
     * system's and the edge's. */
    if (role.api && (r = jobs_routes(&jobs, &rt, routes)) < 0) {
        snprintf(err, sizeof(err), "%s", strerror(-r));
        failed = "job routes";
        goto stop;
    }
    if (role.edge && cache_start(&cfg, rt.loops, rt.nloops, jobs.dispatcher, routes, &edge, err,
                                 sizeof(err)) < 0) {
        failed = "edge";
        goto stop;
    }
    /* The web console: on by default where the embedded default runs (no S3_ENDPOINT). */
    int want_console = strcmp(cfg.console, "on") == 0 ||
                       (strcmp(cfg.console, "auto") == 0 && cfg.s3_endpoint == NULL);
    if (role.api && want_console &&
        console_start(rt.loops, rt.nloops, routes, &con, err, sizeof(err)) < 0) {
        failed = "console";
        goto stop;
    }
    r = 0;
    for (int i = 0; i < rt.nloops && r == 0; i++)
        r = http_listener_start(rt.loops[i], rt.nloops, cfg.listen, &http_cfg, routes,
                                &listeners[i]);
    if (r < 0) {
        snprintf(err, sizeof(err), "%s: %s", cfg.listen, strerror(-r));
        failed = "HTTP listener";
        goto stop;
    }
    /* HTTP to HTTPS: its own listeners, with a route table of nothing (they only redirect). */
    if (cfg.http_redirect_listen != NULL) {
        rd_http_config redir_cfg = http_cfg;
        redir_cfg.tls = NULL;
        redir_cfg.redirect_port = https_port(&cfg);
        for (int i = 0; i < rt.nloops && r == 0; i++)
            r = http_listener_start(rt.loops[i], rt.nloops, cfg.http_redirect_listen, &redir_cfg,
                                    no_routes, &redirects[i]);
        if (r < 0) {
            snprintf(err, sizeof(err), "%s: %s", cfg.http_redirect_listen, strerror(-r));
            failed = "HTTP redirect listener";
            goto stop;
        }
    }
    log_info("listening", KV_STR("addr", cfg.listen), KV_STR("scheme", tls ? "https" : "http"),
             KV_INT("loops", rt.nloops), KV_INT("max_conns", http_cfg.max_conns));
    if (tls != NULL) {
        metrics_collector_add(tls_collect, tls);
        collecting = 1;
        log_info("tls", KV_INT("not_after", tls_server_not_after(tls)),
                 KV_STR("redirect_from",
                        cfg.http_redirect_listen ? cfg.http_redirect_listen : "(none)"));
    }

    int sig = rt_wait_signal(tls ? reload_tls : NULL, tls);
    log_info("stopping", KV_INT("signal", sig), KV_INT("drain_sec", cfg.drain_sec));
    status = 0;
stop:
    if (failed != NULL) {
        log_error("start_failed", KV_STR("what", failed), KV_STR("reason", err));
        fprintf(stderr, "reeld: %s: %s\n", failed, err);
    }
    int nloops = rt.nloops;
    worker_role_stop(&worker);
    webhook_workers_stop(hooks);
    rt_halt(&rt, status == 0 ? (uint64_t)cfg.drain_sec * 1000000000ull : 0);
    jobs_halt(&jobs);
    rt_free(&rt);
    blob_server_free(blob);
    api_free(api); /* and the blob store the blob server borrowed */
    worker_role_free(&worker);
    webhook_workers_free(hooks);
    jobs_free(&jobs);
    for (int i = 0; i < nloops; i++) {
        http_listener_free(listeners[i]);
        http_listener_free(redirects[i]);
    }
    cache_free(edge);
    actor_free_all();
    console_free(con);
    if (collecting)
        metrics_collector_remove(tls_collect, tls);
    metrics_free_all();
    http_routes_destroy(routes);
    http_routes_destroy(no_routes);
    tls_server_free(tls);
    free(metrics);
    free(listeners);
    free(redirects);
    log_info(status == 0 ? "stopped" : "stopped_after_failed_start");
    return status;
}
