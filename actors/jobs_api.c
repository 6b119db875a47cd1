/* The job routes. Contract in jobs_api.h.
 *
 * owns:  the HTTP requests being answered (each kept until its store answer comes).
 * takes: MSG_HTTP_REQUEST.
 * sends: MSG_STORE to the store, MSG_JOB_CANCEL to the dispatcher, replies to the listener.
 * never: blocks. */
#include "actors/jobs_api.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "src/rt/alloc.h"
#include "src/store/store.h"

#define API_TIMEOUT_MS 10000

int jobs_api_routes(rd_http_routes *routes, rd_actor *const *actors, int n)
{
    int r = http_routes_add(routes, "/api/jobs/{id}", RD_HTTP_GET | RD_HTTP_DELETE, actors, n, 0,
                            API_TIMEOUT_MS + 1000);
    if (r < 0)
        return r;
    r = http_routes_add(routes, "/api/jobs", RD_HTTP_GET, actors, n, 0, API_TIMEOUT_MS + 1000);
    return r < 0 ? r : 0;
}

/* A decimal id of 1 to 18 digits; 0 when the text is anything else. */
static int64_t parse_id(http1_str s)
{
    if (s.len == 0 || s.len > 18)
        return 0;
    int64_t v = 0;
    for (size_t i = 0; i < s.len; i++) {
        if (s.p[i] < '0' || s.p[i] > '9')
            return 0;
        v = v * 10 + (s.p[i] - '0');
    }
    return v;
}

static void reply_error(const rd_msg *req, int status, const char *code, const char *message)
{
    http_reply_error(req, status, code, message);
}

/* 503 with Retry-After: the store is unreachable or busy; the client should come back. */
static void reply_unavailable(const rd_msg *req, int err)
{
    char body[RD_HTTP_SMALL_BODY];
    int n = http1_write_error_json(body, sizeof(body), "store_unavailable", store_strerror(err));
    rd_msg *m = msg_new(MSG_HTTP_RESPONSE);
    struct rd_msg_http_response *r = msg_body(m, http_response);
    r->status = 503;
    snprintf(r->content_type, sizeof(r->content_type), "application/json");
    snprintf(r->headers, sizeof(r->headers), "Retry-After: 1\r\n");
    r->small_len = n > 0 ? (uint32_t)n : 0;
    memcpy(r->small, body, r->small_len);
    if (actor_reply(req, m) < 0)
        msg_free(m);
}

static void reply_store_error(const rd_msg *req, int err, const char *what)
{
    if (err == -ENOENT) {
        char msg[64];
        snprintf(msg, sizeof(msg), "No such %s.", what);
        reply_error(req, 404, "not_found", msg);
    } else if (store_retryable(err)) {
        reply_unavailable(req, err);
    } else {
        reply_error(req, 500, "store_failed", store_strerror(err));
    }
}

/* A page of jobs: {"jobs":[…],"next_cursor":"…"|null}. */
static void reply_page(const rd_msg *req, const struct rd_msg_store *b)
{
    size_t cap = 1024 + (size_t)b->n * 2048;
    char *body = rd_calloc(1, cap, "a page of results");
    size_t len = page_json(body, cap, b, 'j');
    http_reply(req, 200, "application/json", body, len);
    free(body);
}

static int store_answered(rd_actor *self, rd_msg *reply, int err, void *ctx)
{
    (void)self;
    rd_msg *req = ctx;
    int st = err < 0 ? err : msg_body(reply, store)->status;
    if (st < 0) {
        reply_store_error(req, st, "job");
    } else {
        const struct rd_msg_store *b = msg_body(reply, store);
        char body[2048];
        int n;
        switch (b->op) {
        case STORE_JOB_GET:
            n = job_json(body, sizeof(body), &b->jobs[0]);
            http_reply(req, 200, "application/json", body, n > 0 ? (size_t)n : 0);
            break;
        default:
            reply_page(req, b);
            break;
        }
    }
    if (reply != NULL)
        msg_free(reply);
    msg_free(req);
    return 0;
}

static int cancel_answered(rd_actor *self, rd_msg *reply, int err, void *ctx)
{
    (void)self;
    rd_msg *req = ctx;
    int st = err < 0 ? err : msg_body(reply, job_cancel)->status;
    if (st == 0) {
        char body[128];
        int n =
            snprintf(body, sizeof(body), "{\"id\":\"%lld\",\"state\":\"cancelled\",\"was\":\"%s\"}",
                     (long long)msg_body(reply, job_cancel)->id,
                     job_state_name(msg_body(reply, job_cancel)->prior_state));
        http_reply(req, 200, "application/json", body, (size_t)n);
    } else if (st == -EALREADY) {
        reply_error(req, 409, "job_finished", "The job has already finished; nothing to cancel.");
    } else {
        reply_store_error(req, st, "job");
    }
    if (reply != NULL)
        msg_free(reply);
    msg_free(req);
    return 0;
}

/* Sends `m` to `to` on behalf of HTTP request `req`, which waits (kept) for the answer. */
static int ask(rd_actor *self, rd_actor *to, rd_msg *m, rd_reply_fn cb, rd_msg *req)
{
    int r = actor_request(self, to, m, API_TIMEOUT_MS, cb, req);
    if (r < 0) {
        msg_free(m);
        reply_unavailable(req, -EAGAIN);
        return RD_DONE;
    }
    return RD_KEPT;
}

static int api_handle(rd_actor *self, rd_msg *m)
{
    const rd_jobs_api *api = self->arg;
    if (m->type != MSG_HTTP_REQUEST)
        return RD_DONE;
    const struct rd_msg_http_request *q = msg_body(m, http_request);
    /* These routes cross orgs (jobs carry no org yet): operators' routes, for loopback clients
     * only, whatever auth the client API (actors/api.c) is configured with. */
    if (!http_request_from_loopback(q)) {
        reply_error(m, 403, "forbidden",
                    "Job routes answer loopback clients only; use the asset routes with a "
                    "bearer token.");
        return RD_DONE;
    }
    /* Its two routes told apart by their shape (one has the {id}): no ids kept in a static. */
    if (q->num_params == 1) {
        int64_t id = parse_id(http_request_param(q, 0));
        if (id == 0) {
            reply_error(m, 404, "not_found", "No such job.");
            return RD_DONE;
        }
        if (q->method == RD_HTTP_DELETE) {
            rd_msg *c = msg_new(MSG_JOB_CANCEL);
            msg_body(c, job_cancel)->id = id;
            return ask(self, api->dispatcher, c, cancel_answered, m);
        }
        rd_msg *s = store_request(STORE_JOB_GET);
        msg_body(s, store)->jobs[0].id = id;
        return ask(self, api->store, s, store_answered, m);
    }
    if (q->num_params == 0) {
        http1_str query = http_request_query(q);
        http1_str cursor = http1_query_param(query, "cursor");
        int64_t after = 0;
        if (job_cursor_decode(cursor.p ? cursor.p : "", cursor.len, 'j', &after) < 0) {
            reply_error(m, 400, "bad_cursor", "The cursor is malformed; use next_cursor as given.");
            return RD_DONE;
        }
        rd_msg *s = store_request(STORE_JOB_LIST);
        struct rd_msg_store *b = msg_body(s, store);
        b->cursor = after;
        http1_str limit = http1_query_param(query, "limit");
        int64_t lim = limit.p ? parse_id(limit) : RD_STORE_BATCH;
        if (lim < 1 || lim > RD_STORE_BATCH) {
            msg_free(s);
            reply_error(m, 400, "bad_limit", "limit must be from 1 to 32.");
            return RD_DONE;
        }
        b->limit = (uint32_t)lim;
        http1_str state = http1_query_param(query, "state");
        if (state.p != NULL && state.len > 0) {
            b->state = job_state_parse(state.p, state.len);
            if (b->state == JOB_STATE_NONE) {
                msg_free(s);
                reply_error(m, 400, "bad_state",
                            "state must be queued, running, succeeded, failed, cancelled or dead.");
                return RD_DONE;
            }
        }
        return ask(self, api->store, s, store_answered, m);
    }
    reply_error(m, 404, "not_found", "No such route.");
    return RD_DONE;
}

const rd_actor_def jobs_api_actor_def = {.name = "jobs-api", .handle = api_handle};
