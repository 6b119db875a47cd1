/* The webhook worker. Contract in webhook_worker.h.
 *
 * owns:  a store client per worker, the job being delivered.
 * takes: JOB_ASSIGN.
 * sends: JOB_PULL, JOB_DONE, STORE (through the store client).
 * never: blocks a loop (a thread actor). */
#include "actors/webhook_worker.h"

#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "actors/job_dispatcher.h"
#include "proto/edge_token.h"
#include "proto/webhook.h"
#include "src/edge/edgekey.h"
#include "src/net/tls.h"
#include "src/rt/alloc.h"
#include "src/rt/log.h"
#include "src/rt/loop.h"
#include "src/rt/metrics.h"
#include "src/store/client.h"
#include "src/store/store.h"

#define STORE_WAIT_MS 5000
#define WH_MAX        64
#define BODY_MAX      8192
#define HEAD_MAX      (WEBHOOK_URL_MAX + WEBHOOK_SIG_MAX + 512)

struct webhook_workers {
    rd_config cfg;
    tls_anchors anchors;
    int have_anchors;
    edge_keyring edge;
    char edge_base[512];
    rd_dispatcher_config backoff; /* only the retry delays are used */
    rd_actor *dispatcher, *store;
    rd_loop *loop;
    rd_actor *actors[WH_MAX];
    int n;
    /* reeld_webhook_deliveries_total{outcome}: delivered, retrying, dead. */
    rd_series *outcomes[3];
    rd_series *latency; /* reeld_webhook_delivery_seconds: attempts that got an answer */
};

typedef struct wworker {
    webhook_workers *ww;
    rd_store_client *store;
    rd_actor *self;
} wworker;

int webhook_retryable(int status)
{
    if (status >= 200 && status < 300)
        return 0;
    if (status == 408 || status == 429)
        return 1;
    return status < 400 || status >= 500;
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- blocking socket I/O under a deadline ---- */

typedef struct io {
    int fd;
    int64_t deadline; /* mono_ms */
    int err;          /* the first error: -ETIMEDOUT, -ECONNRESET, ... */
} io;

static int io_wait(io *x, short ev)
{
    for (;;) {
        int64_t left = x->deadline - mono_ms();
        if (left <= 0)
            return x->err = -ETIMEDOUT;
        struct pollfd p = {.fd = x->fd, .events = ev};
        int n = poll(&p, 1, (int)left);
        if (n > 0)
            return 0;
        if (n == 0)
            return x->err = -ETIMEDOUT;
        if (errno != EINTR)
            return x->err = -errno;
    }
}

static int io_read(void *ctx, unsigned char *buf, size_t len)
{
    io *x = ctx;
    for (;;) {
        ssize_t n = recv(x->fd, buf, len, 0);
        if (n > 0)
            return (int)n;
        if (n == 0) {
            x->err = -ECONNRESET;
            return -1;
        }
        if (errno != EAGAIN && errno != EINTR) {
            x->err = -errno;
            return -1;
        }
        if (io_wait(x, POLLIN) < 0)
            return -1;
    }
}

static int io_write(void *ctx, const unsigned char *buf, size_t len)
{
    io *x = ctx;
    for (;;) {
        ssize_t n = send(x->fd, buf, len, MSG_NOSIGNAL);
        if (n >= 0)
            return (int)n;
        if (errno != EAGAIN && errno != EINTR) {
            x->err = -errno;
            return -1;
        }
        if (io_wait(x, POLLOUT) < 0)
            return -1;
    }
}

static int io_connect(io *x, const struct sockaddr *sa, socklen_t len)
{
    x->fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (x->fd < 0)
        return x->err = -errno;
    if (connect(x->fd, sa, len) == 0)
        return 0;
    if (errno != EINPROGRESS)
        return x->err = -errno;
    if (io_wait(x, POLLOUT) < 0)
        return x->err;
    int so = 0;
    socklen_t sl = sizeof(so);
    if (getsockopt(x->fd, SOL_SOCKET, SO_ERROR, &so, &sl) < 0)
        so = errno;
    return so ? (x->err = -so) : 0;
}

/* ---- one attempt ---- */

typedef struct attempt {
    int status_code; /* 0: no answer */
    int retryable;
    int latency_ms;
    char error[RD_JOB_ERROR_MAX];
} attempt;

/* POSTs head+body to one address; fills `a` (status, or the error). */
static void post_to(webhook_workers *ww, const webhook_url *u, const struct addrinfo *ai,
                    const char *head, size_t hlen, const char *body, size_t blen, int64_t deadline,
                    attempt *a)
{
    io x = {.fd = -1, .deadline = deadline};
    int64_t t0 = mono_ms();
    tls_client *t = NULL;
    char resp[2048];
    size_t got = 0;
    int code = 0;
    if (io_connect(&x, ai->ai_addr, ai->ai_addrlen) < 0) {
        snprintf(a->error, sizeof(a->error), "cannot connect to %.60s port %u: %.60s", u->host,
                 u->port, strerror(-x.err));
        goto out;
    }
    if (u->tls) {
        if (!ww->have_anchors) {
            snprintf(a->error, sizeof(a->error), "https: no CA bundle at %s", TLS_SYSTEM_CA_FILE);
            goto out;
        }
        t = rd_calloc(1, sizeof(*t), "a webhook TLS client");
        br_sslio_context ioc;
        if (tls_client_start(t, &ww->anchors, u->host) < 0) {
            snprintf(a->error, sizeof(a->error), "TLS could not start");
            goto out;
        }
        br_sslio_init(&ioc, tls_engine(t), io_read, &x, io_write, &x);
        if (br_sslio_write_all(&ioc, head, hlen) < 0 || br_sslio_write_all(&ioc, body, blen) < 0 ||
            br_sslio_flush(&ioc) < 0)
            goto io_failed_tls;
        while (code == 0 && got < sizeof(resp)) {
            int n = br_sslio_read(&ioc, resp + got, sizeof(resp) - got);
            if (n < 0)
                goto io_failed_tls;
            got += (size_t)n;
            code = webhook_status_line(resp, got);
        }
        goto answered;
    io_failed_tls : {
        int te = br_ssl_engine_last_error(tls_engine(t));
        if (te != 0 && x.err == 0)
            snprintf(a->error, sizeof(a->error), "TLS with %.60s failed: %.60s", u->host,
                     tls_strerror(te));
        else
            snprintf(a->error, sizeof(a->error), "%.60s: %.80s", u->host,
                     x.err == -ETIMEDOUT ? "no answer within the timeout"
                                         : strerror(-(x.err ? x.err : EPROTO)));
        goto out;
    }
    }
    if (io_write(&x, (const unsigned char *)head, hlen) < 0)
        goto io_failed;
    for (size_t off = 0; off < blen;) {
        int n = io_write(&x, (const unsigned char *)body + off, blen - off);
        if (n < 0)
            goto io_failed;
        off += (size_t)n;
    }
    while (code == 0 && got < sizeof(resp)) {
        int n = io_read(&x, (unsigned char *)resp + got, sizeof(resp) - got);
        if (n < 0)
            goto io_failed;
        got += (size_t)n;
        code = webhook_status_line(resp, got);
    }
answered:
    if (code <= 0) {
        snprintf(a->error, sizeof(a->error), "%.60s answered something that is not HTTP/1.x",
                 u->host);
        goto out;
    }
    a->status_code = code;
    goto out;
io_failed:
    snprintf(a->error, sizeof(a->error), "%.60s: %.80s", u->host,
             x.err == -ETIMEDOUT ? "no answer within the timeout" : strerror(-x.err));
out:
    a->latency_ms = (int)(mono_ms() - t0);
    if (x.fd >= 0)
        close(x.fd);
    free(t);
}

/* Builds and sends event `ev` to `hook`; fills `a`. */
static void attempt_delivery(wworker *w, const rd_webhook_delivery *ev, const rd_webhook *hook,
                             attempt *a)
{
    webhook_workers *ww = w->ww;
    int64_t deadline = mono_ms() + ww->cfg.webhook_timeout_ms;
    a->retryable = 1;
    webhook_url u;
    const char *why = NULL;
    if (webhook_url_parse(hook->url, strlen(hook->url), &u, &why) < 0) {
        a->retryable = 0;
        snprintf(a->error, sizeof(a->error), "the endpoint URL is refused: %.100s", why);
        return;
    }
    if (!ww->cfg.webhook_allow_private && webhook_host_private(&u)) {
        a->retryable = 0;
        snprintf(a->error, sizeof(a->error),
                 "the endpoint's host is private (WEBHOOK_ALLOW_PRIVATE is not set)");
        return;
    }

    /* The body. */
    webhook_rendition rs[RD_STORE_BATCH];
    int nrs = 0;
    rd_msg *rans = NULL;
    char playback[1024] = "";
    int ready = strcmp(ev->type, "asset.ready") == 0;
    if (ready) {
        rd_msg *req = store_request(STORE_RENDITION_LIST);
        msg_body(req, store)->asset_id = ev->asset_id;
        if (store_client_call(w->store, req, STORE_WAIT_MS, &rans) == 0 && rans != NULL) {
            const struct rd_msg_store *b = msg_body(rans, store);
            for (uint32_t i = 0; i < b->n && i < RD_STORE_BATCH; i++)
                rs[nrs++] =
                    (webhook_rendition){b->renditions[i].name, b->renditions[i].width,
                                        b->renditions[i].height, b->renditions[i].bitrate_kbps};
        }
        int64_t exp = rd_wall_ms() / 1000 + ww->cfg.edge_link_ttl_sec;
        if (edge_url_sign(&ww->edge, ww->edge_base, exp, ev->asset_public, "master.m3u8", 0, NULL,
                          playback, sizeof(playback)) < 0)
            playback[0] = '\0';
    }
    /* An export's event names the export; once it is ready, with a signed download link as
     * GET /api/exports/{id} gives (an attachment named after the export, through the edge). */
    webhook_export x = {0};
    char download[1600] = "";
    int is_export = ev->export_public[0] != '\0';
    if (is_export) {
        x = (webhook_export){.id = ev->export_public,
                             .start_ms = ev->export_start_ms,
                             .end_ms = ev->export_end_ms,
                             .captions = ev->export_lang};
        if (strcmp(ev->type, "export.ready") == 0 && ev->master_key[0] != '\0') {
            int64_t exp = rd_wall_ms() / 1000 + ww->cfg.edge_link_ttl_sec;
            char path[64], fname[RD_ASSET_ID_MAX + RD_EXPORT_ID_MAX + 2];
            snprintf(path, sizeof(path), RD_EXPORT_PATH_FMT, ev->export_public);
            snprintf(fname, sizeof(fname), "%s-%s", ev->asset_public, ev->export_public);
            if (edge_url_sign(&ww->edge, ww->edge_base, exp, ev->master_key, path, 1, fname,
                              download, sizeof(download)) > 0)
                x.download_url = download;
        }
    }
    int failed = strcmp(ev->type, "asset.failed") == 0 || strcmp(ev->type, "export.failed") == 0;
    webhook_event e = {.id = ev->event_id,
                       .type = ev->type,
                       .asset_id = ev->asset_public,
                       .org = ev->org,
                       .created_ms = ev->created_ms,
                       .error = failed ? ev->error : NULL,
                       .playback = playback[0] ? playback : NULL,
                       .duration_sec = ready ? (double)ev->duration_ms / 1000.0 : 0,
                       .renditions = rs,
                       .nrenditions = nrs,
                       .export = is_export ? &x : NULL};
    char *body = rd_calloc(1, BODY_MAX, "a webhook body");
    char *head = rd_calloc(1, HEAD_MAX, "a webhook request head");
    int blen = webhook_event_json(body, BODY_MAX, &e);
    msg_free(rans);
    int64_t now_ms = rd_wall_ms();
    char sig[WEBHOOK_SIG_MAX];
    int sl = blen < 0 ? -ENOSPC
                      : webhook_signature(sig, sizeof(sig), now_ms / 1000, body, (size_t)blen,
                                          hook->secret,
                                          hook->previous_until_ms > now_ms ? hook->previous : NULL);
    char hostport[WEBHOOK_HOST_MAX + 16];
    int v6 = u.literal == 6;
    if ((u.tls && u.port == 443) || (!u.tls && u.port == 80))
        snprintf(hostport, sizeof(hostport), "%s%s%s", v6 ? "[" : "", u.host, v6 ? "]" : "");
    else
        snprintf(hostport, sizeof(hostport), "%s%s%s:%u", v6 ? "[" : "", u.host, v6 ? "]" : "",
                 u.port);
    int hlen = snprintf(head, HEAD_MAX,
                        "POST %.*s HTTP/1.1\r\nHost: %s\r\nUser-Agent: reeld-webhooks\r\n"
                        "Content-Type: application/json\r\nContent-Length: %d\r\n"
                        "Reeld-Signature: %s\r\nReeld-Event-Id: %s\r\nReeld-Event-Type: %s\r\n"
                        "Connection: close\r\n\r\n",
                        (int)u.target_len, u.target, hostport, blen, sl > 0 ? sig : "",
                        ev->event_id, ev->type);
    if (blen < 0 || sl < 0 || hlen < 0 || hlen >= HEAD_MAX) {
        a->retryable = 0;
        snprintf(a->error, sizeof(a->error), "the event does not fit a request");
        goto out;
    }

    /* Every address the name has now: none may be private (DNS rebinding). */
    char port[8];
    snprintf(port, sizeof(port), "%u", u.port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_NUMERICSERV | AI_ADDRCONFIG},
                    *res = NULL;
    int g = getaddrinfo(u.host, port, &hints, &res);
    if (g != 0) {
        snprintf(a->error, sizeof(a->error), "cannot resolve %.60s: %.80s", u.host,
                 gai_strerror(g));
        goto out;
    }
    int refused = 0;
    for (struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next)
        refused |= !ww->cfg.webhook_allow_private && webhook_sockaddr_private(ai->ai_addr);
    if (refused) {
        a->retryable = 0;
        snprintf(a->error, sizeof(a->error),
                 "%.60s resolves to a private address (WEBHOOK_ALLOW_PRIVATE is not set)", u.host);
    } else {
        for (struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next) {
            a->error[0] = '\0';
            post_to(ww, &u, ai, head, (size_t)hlen, body, (size_t)blen, deadline, a);
            if (a->status_code != 0 || mono_ms() >= deadline)
                break;
        }
        if (a->status_code != 0) {
            a->retryable = webhook_retryable(a->status_code);
            if (a->status_code < 200 || a->status_code >= 300)
                snprintf(a->error, sizeof(a->error), "the endpoint answered %d", a->status_code);
        }
    }
    freeaddrinfo(res);
out:
    free(body);
    free(head);
}

static void done(wworker *w, const rd_job *job, int ok, int retryable, const char *error)
{
    rd_msg *m = msg_new(MSG_JOB_DONE);
    struct rd_msg_job_done *d = msg_body(m, job_done);
    d->id = job->id;
    d->attempt = job->attempts;
    d->status = ok ? 0 : -EIO;
    d->retryable = !ok && retryable;
    if (d->retryable) {
        uint32_t rnd = 0;
        if (getrandom(&rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
            rnd = (uint32_t)mono_ms();
        d->retry_after_ms = dispatcher_backoff_ms(&w->ww->backoff, job->attempts, rnd);
    }
    snprintf(d->error, sizeof(d->error), "%s", ok ? "" : error);
    job_worker_send(w->self, w->ww->dispatcher, m);
}

static void deliver(wworker *w, const rd_job *job)
{
    rd_msg *req = store_request(STORE_WEBHOOK_EVENT), *ans = NULL;
    msg_body(req, store)->deliveries[0].event_row = job->asset_id;
    int r = store_client_call(w->store, req, STORE_WAIT_MS, &ans);
    if (r < 0 || ans == NULL) {
        msg_free(ans);
        done(w, job, 0, r != -ENOENT,
             r == -ENOENT ? "the event is not in the store" : "the store did not answer");
        return;
    }
    struct rd_msg_store *b = msg_body(ans, store);
    rd_webhook_delivery ev = b->deliveries[0];
    rd_webhook hook = b->webhook;
    msg_free(ans);
    if (hook.url[0] == '\0') {
        done(w, job, 0, 0, "the org's webhook was deleted");
        return;
    }
    if (!(webhook_events_parse(hook.events) & webhook_event_bit(ev.type, strlen(ev.type)))) {
        done(w, job, 0, 0, "the org's webhook no longer takes this event type");
        return;
    }
    attempt a = {0};
    attempt_delivery(w, &ev, &hook, &a);
    int ok = a.status_code >= 200 && a.status_code < 300;
    int retry = !ok && a.retryable && job->attempts < job->max_attempts;

    /* The attempt, for GET /api/webhook/deliveries; then the outcome. */
    req = store_request(STORE_WEBHOOK_ATTEMPT);
    rd_webhook_delivery *d = &msg_body(req, store)->deliveries[0];
    d->event_row = ev.event_row;
    d->attempt = job->attempts;
    d->status_code = a.status_code;
    d->latency_ms = a.latency_ms;
    snprintf(d->state, sizeof(d->state), "%s", ok ? "delivered" : retry ? "retrying" : "dead");
    snprintf(d->error, sizeof(d->error), "%s", a.error);
    r = store_client_call(w->store, req, STORE_WAIT_MS, NULL);
    metrics_add(w->ww->outcomes[ok ? 0 : retry ? 1 : 2], 1);
    if (a.status_code != 0)
        metrics_observe(w->ww->latency, (double)a.latency_ms / 1000.0);
    if (r < 0)
        log_warn("webhook_attempt_not_recorded", KV_STR("event", ev.event_id), KV_ERRNO(r));
    if (ok)
        log_info("webhook_delivered", KV_STR("event", ev.event_id), KV_STR("type", ev.type),
                 KV_STR("org", ev.org), KV_INT("status", a.status_code),
                 KV_INT("attempt", job->attempts), KV_INT("latency_ms", a.latency_ms));
    else
        log_warn("webhook_failed", KV_STR("event", ev.event_id), KV_STR("type", ev.type),
                 KV_STR("org", ev.org), KV_INT("status", a.status_code),
                 KV_INT("attempt", job->attempts), KV_STR("reason", a.error),
                 KV_INT("retry", retry));
    done(w, job, ok, a.retryable, a.error);
}

/* ---- the actor ---- */

static int ww_init(rd_actor *self, void *arg)
{
    webhook_workers *ww = arg;
    wworker *w = rd_calloc(1, sizeof(*w), "a webhook worker");
    w->ww = ww;
    w->self = self;
    int r = store_client_create(ww->loop, ww->store, &w->store);
    if (r < 0) {
        free(w);
        return r;
    }
    self->state = w;
    job_worker_pull(self, ww->dispatcher, "webhook", 1);
    return 0;
}

static void ww_fini(rd_actor *self)
{
    wworker *w = self->state;
    if (w == NULL)
        return;
    store_client_destroy(w->store);
    free(w);
    self->state = NULL;
}

static int ww_handle(rd_actor *self, rd_msg *m)
{
    wworker *w = self->state;
    if (m->type == MSG_JOB_ASSIGN) {
        deliver(w, &msg_body(m, job_assign)->job);
        job_worker_pull(self, w->ww->dispatcher, "webhook", 1);
    }
    return RD_DONE;
}

static const rd_actor_def ww_def = {
    .name = "webhook-worker",
    .init = ww_init,
    .handle = ww_handle,
    .fini = ww_fini,
};

int webhook_workers_start(const rd_config *cfg, rd_runtime *rt, rd_actor *dispatcher,
                          rd_actor *store, webhook_workers **out, char *err, size_t errlen)
{
    *out = NULL;
    if (cfg->webhook_workers <= 0)
        return 0;
    webhook_workers *ww = rd_calloc(1, sizeof(*ww), "the webhook workers");
    ww->cfg = *cfg;
    ww->dispatcher = dispatcher;
    ww->store = store;
    ww->loop = rt->loops[0];
    ww->backoff.retry_base_ms = cfg->webhook_retry_base_ms;
    ww->backoff.retry_max_ms = cfg->webhook_retry_max_ms;
    char why[256];
    ww->have_anchors = tls_anchors_load(&ww->anchors, TLS_SYSTEM_CA_FILE, why, sizeof(why)) == 0;
    if (!ww->have_anchors)
        log_warn("webhook_no_ca_bundle", KV_STR("path", TLS_SYSTEM_CA_FILE),
                 KV_STR("why", "https:// webhook deliveries will fail"));
    int r = edgekey_keyring(cfg, &ww->edge, err, errlen);
    if (r < 0) {
        webhook_workers_free(ww);
        return r;
    }
    if (cfg->edge_public_base != NULL)
        snprintf(ww->edge_base, sizeof(ww->edge_base), "%s", cfg->edge_public_base);
    else
        config_listen_url(cfg, ww->edge_base, sizeof(ww->edge_base));
    size_t bl = strlen(ww->edge_base);
    while (bl > 0 && ww->edge_base[bl - 1] == '/')
        ww->edge_base[--bl] = '\0';
    rd_metric *outcomes =
        metrics_family("reeld_webhook_deliveries_total",
                       "Webhook delivery attempts by outcome (delivered, retrying, dead).",
                       RD_COUNTER, "outcome", NULL, 0);
    static const char *const names[] = {"delivered", "retrying", "dead"};
    for (int i = 0; i < 3; i++)
        ww->outcomes[i] = metrics_series(outcomes, &names[i]);
    static const double secs[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
    ww->latency = metrics_series(
        metrics_family("reeld_webhook_delivery_seconds",
                       "Time from connecting to a webhook endpoint to its status line.",
                       RD_HISTOGRAM, NULL, secs, (int)(sizeof(secs) / sizeof(secs[0]))),
        NULL);
    *out = ww;
    for (int i = 0; i < cfg->webhook_workers && i < WH_MAX; i++) {
        r = actor_spawn_thread(&ww_def, ww, -1, &ww->actors[i]);
        if (r < 0) {
            snprintf(err, errlen, "cannot start a webhook worker (%s)", strerror(-r));
            return r;
        }
        ww->n++;
    }
    return 0;
}

void webhook_workers_stop(webhook_workers *ww)
{
    if (ww == NULL)
        return;
    for (int i = 0; i < ww->n; i++)
        actor_stop(ww->actors[i]);
    for (int i = 0; i < ww->n; i++)
        actor_join(ww->actors[i]);
}

void webhook_workers_free(webhook_workers *ww)
{
    if (ww == NULL)
        return;
    tls_anchors_free(&ww->anchors);
    edge_keyring_clear(&ww->edge);
    free(ww);
}
