/* The job routes over real HTTP, wired as `reeld serve` wires them (cmd/jobs.c: the SQLite store
 * in a temporary REELD_DATA_DIR, the dispatcher, one jobs-api actor per loop, a listener): a job
 * by id, pages of jobs with a cursor, a limit and a state filter, cancel (once; a finished job
 * is a 409), ids that name no job (404), malformed queries (400 with a code and a message), no
 * request body accepted, loopback clients only (403 for others), and 503 with Retry-After when
 * the store is gone. */
#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "actors/http_listener.h"
#include "actors/jobs_api.h"
#include "cmd/jobs.h"
#include "src/rt/config.h"
#include "src/rt/log.h"
#include "src/rt/metrics.h"
#include "src/rt/runtime.h"
#include "src/store/client.h"
#include "src/store/store.h"
#include "tests/unit/fixture_net.h"
#include "tests/unit/test.h"

static rd_runtime rt;
static rd_jobs jobs;
static rd_store_client *client;
static int port;
static int64_t job_ids[3]; /* made by main: queued "noop" jobs, ascending */

/* ---- a small HTTP client ---- */

typedef struct http_resp {
    int status;
    char head[4096];
    char body[16384];
    size_t len;
} http_resp;

static long long header_num(const char *head, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = strstr(head, "\r\n"); p != NULL; p = strstr(p + 2, "\r\n"))
        if (strncasecmp(p + 2, name, n) == 0 && p[2 + n] == ':')
            return atoll(p + 3 + n);
    return -1;
}

/* Sends `req` from a connection to `ip` and reads one response (head, then its Content-Length
 * bytes of body). 0, or -1 when no whole response came. */
static int roundtrip_from(const char *ip, const char *req, http_resp *r)
{
    memset(r, 0, sizeof(*r));
    r->status = -1;
    static char buf[sizeof(r->head) + sizeof(r->body)];
    size_t n = 0, head_len = 0;
    long long want = -1;
    int fd = dial_ip(ip, port);
    if (fd < 0)
        return -1;
    size_t len = strlen(req);
    for (size_t off = 0; off < len;) {
        ssize_t w = write(fd, req + off, len - off);
        if (w <= 0)
            break;
        off += (size_t)w;
    }
    for (;;) {
        buf[n] = 0;
        if (head_len == 0) {
            char *end = strstr(buf, "\r\n\r\n");
            if (end != NULL) {
                head_len = (size_t)(end + 4 - buf);
                snprintf(r->head, sizeof(r->head), "%.*s", (int)head_len, buf);
                want = header_num(r->head, "Content-Length");
            }
        }
        if (head_len > 0 && want >= 0 && n >= head_len + (size_t)want)
            break;
        if (n == sizeof(buf) - 1)
            break;
        ssize_t got = read(fd, buf + n, sizeof(buf) - 1 - n);
        if (got <= 0)
            break;
        n += (size_t)got;
    }
    close(fd);
    if (head_len == 0)
        return -1;
    sscanf(r->head, "HTTP/1.%*d %d", &r->status);
    r->len = n - head_len;
    snprintf(r->body, sizeof(r->body), "%.*s", (int)r->len, buf + head_len);
    return want >= 0 && r->len == (size_t)want ? 0 : -1;
}

static int roundtrip(const char *req, http_resp *r)
{
    return roundtrip_from("127.0.0.1", req, r);
}

/* `method` `path` with no body from loopback; returns the status (-1: no response). */
static int call(const char *method, const char *path, http_resp *r)
{
    char req[512];
    snprintf(req, sizeof(req), "%s %s HTTP/1.1\r\nHost: t\r\n\r\n", method, path);
    return roundtrip(req, r) == 0 ? r->status : -1;
}

/* The job's "state" as GET /api/jobs/{id} says it (static; "" when not found). */
static const char *state_of(int64_t id)
{
    static char state[32];
    char path[64];
    http_resp r;
    snprintf(path, sizeof(path), "/api/jobs/%lld", (long long)id);
    state[0] = '\0';
    const char *p;
    if (call("GET", path, &r) == 200 && (p = strstr(r.body, "\"state\":\"")) != NULL)
        sscanf(p + 9, "%31[^\"]", state);
    return state;
}

/* ---- the cases ---- */

TEST(a_job_by_id)
{
    http_resp r;
    char path[64], want[96];
    snprintf(path, sizeof(path), "/api/jobs/%lld", (long long)job_ids[1]);
    CHECK_EQ_INT(call("GET", path, &r), 200);
    CHECK(strstr(r.head, "\r\nContent-Type: application/json\r\n") != NULL);
    snprintf(want, sizeof(want), "{\"id\":\"%lld\",\"asset_id\":\"102\",\"kind\":\"noop\",",
             (long long)job_ids[1]);
    CHECK(strncmp(r.body, want, strlen(want)) == 0);
    CHECK(strstr(r.body, "\"state\":\"queued\"") != NULL);
    CHECK(strstr(r.body, "\"max_attempts\":3") != NULL);
    CHECK(r.len > 0 && r.body[r.len - 1] == '}');
    /* HEAD is routed like GET. */
    snprintf(want, sizeof(want), "HEAD %s HTTP/1.1\r\nHost: t\r\n\r\n", path);
    int fd = dial_ip("127.0.0.1", port);
    CHECK(fd >= 0);
    if (fd >= 0) {
        char head[2048] = "";
        CHECK(write(fd, want, strlen(want)) == (ssize_t)strlen(want));
        ssize_t n = read(fd, head, sizeof(head) - 1);
        head[n > 0 ? n : 0] = '\0';
        CHECK(strncmp(head, "HTTP/1.1 200 ", 13) == 0);
        close(fd);
    }
}

TEST(ids_that_name_no_job_are_404)
{
    static const char *const paths[] = {
        "/api/jobs/999999", "/api/jobs/0",   "/api/jobs/abc",
        "/api/jobs/-1",     "/api/jobs/1.0", "/api/jobs/1234567890123456789", /* 19 digits */
        "/api/jobs/%31",    "/api/jobs/1x",  "/api/jobs/0x1",
    };
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        http_resp r;
        CHECK_EQ_INT(call("GET", paths[i], &r), 404);
        CHECK_EQ_STR(r.body, "{\"error\":{\"code\":\"not_found\",\"message\":\"No such job.\"}}");
        CHECK_EQ_INT(call("DELETE", paths[i], &r), 404);
        CHECK_EQ_STR(r.body, "{\"error\":{\"code\":\"not_found\",\"message\":\"No such job.\"}}");
    }
}

/* The ids of a page's jobs in order and its next cursor ("" for null). Returns how many. */
static int page(const char *query, int64_t *ids, int cap, char *cursor, size_t ccap)
{
    char path[256];
    http_resp r;
    snprintf(path, sizeof(path), "/api/jobs%s", query);
    cursor[0] = '\0';
    if (call("GET", path, &r) != 200) {
        printf("  GET %s: %d %s\n", path, r.status, r.body);
        return -1;
    }
    int n = 0;
    CHECK(strncmp(r.body, "{\"jobs\":[", 9) == 0);
    for (const char *p = r.body; (p = strstr(p, "{\"id\":\"")) != NULL && n < cap; p++)
        ids[n++] = atoll(p + 7);
    const char *c = strstr(r.body, "],\"next_cursor\":");
    CHECK(c != NULL);
    if (c != NULL && c[16] == '"')
        snprintf(cursor, ccap, "%.*s", (int)strcspn(c + 17, "\""), c + 17);
    else
        CHECK(c != NULL && strcmp(c + 16, "null}") == 0);
    return n;
}

TEST(pages_of_jobs_by_id)
{
    int64_t ids[40];
    char cursor[64], query[128];
    CHECK_EQ_INT(page("", ids, 40, cursor, sizeof(cursor)), 3);
    CHECK_EQ_INT(ids[0], job_ids[0]);
    CHECK_EQ_INT(ids[1], job_ids[1]);
    CHECK_EQ_INT(ids[2], job_ids[2]);
    CHECK_EQ_STR(cursor, "");

    CHECK_EQ_INT(page("?limit=2", ids, 40, cursor, sizeof(cursor)), 2);
    CHECK_EQ_INT(ids[0], job_ids[0]);
    CHECK_EQ_INT(ids[1], job_ids[1]);
    CHECK(cursor[0] != '\0');
    snprintf(query, sizeof(query), "?limit=2&cursor=%s", cursor);
    CHECK_EQ_INT(page(query, ids, 40, cursor, sizeof(cursor)), 1);
    CHECK_EQ_INT(ids[0], job_ids[2]);
    CHECK_EQ_STR(cursor, "");

    CHECK_EQ_INT(page("?state=queued&limit=32", ids, 40, cursor, sizeof(cursor)), 3);
    CHECK_EQ_INT(page("?state=running", ids, 40, cursor, sizeof(cursor)), 0);
    CHECK_EQ_INT(page("?state=", ids, 40, cursor, sizeof(cursor)), 3); /* empty: any */
    http_resp r;
    CHECK_EQ_INT(call("GET", "/api/jobs?state=succeeded", &r), 200);
    CHECK_EQ_STR(r.body, "{\"jobs\":[],\"next_cursor\":null}");
}

TEST(malformed_queries_are_400_with_a_reason)
{
    static const struct {
        const char *query, *body;
    } bad[] = {
        {"?limit=0",
         "{\"error\":{\"code\":\"bad_limit\",\"message\":\"limit must be from 1 to 32.\"}}"},
        {"?limit=33",
         "{\"error\":{\"code\":\"bad_limit\",\"message\":\"limit must be from 1 to 32.\"}}"},
        {"?limit=ten",
         "{\"error\":{\"code\":\"bad_limit\",\"message\":\"limit must be from 1 to 32.\"}}"},
        {"?limit=",
         "{\"error\":{\"code\":\"bad_limit\",\"message\":\"limit must be from 1 to 32.\"}}"},
        {"?state=done", "{\"error\":{\"code\":\"bad_state\",\"message\":\"state must be queued, "
                        "running, succeeded, failed, cancelled or dead.\"}}"},
        {"?state=QUEUED", "{\"error\":{\"code\":\"bad_state\",\"message\":\"state must be queued, "
                          "running, succeeded, failed, cancelled or dead.\"}}"},
        {"?cursor=***", "{\"error\":{\"code\":\"bad_cursor\",\"message\":\"The cursor is "
                        "malformed; use next_cursor as given.\"}}"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char path[128];
        http_resp r;
        snprintf(path, sizeof(path), "/api/jobs%s", bad[i].query);
        CHECK_EQ_INT(call("GET", path, &r), 400);
        CHECK(strstr(r.head, "\r\nContent-Type: application/json") != NULL);
        CHECK_EQ_STR(r.body, bad[i].body);
    }
    /* A cursor of another listing (assets) is not a jobs cursor. */
    char cursor[64], path[128];
    job_cursor_encode(cursor, 'a', job_ids[0]);
    snprintf(path, sizeof(path), "/api/jobs?cursor=%s", cursor);
    http_resp r;
    CHECK_EQ_INT(call("GET", path, &r), 400);
    CHECK(strstr(r.body, "\"code\":\"bad_cursor\"") != NULL);
}

TEST(cancel_once_then_409)
{
    char path[64], want[128];
    http_resp r;
    snprintf(path, sizeof(path), "/api/jobs/%lld", (long long)job_ids[2]);
    CHECK_EQ_INT(call("DELETE", path, &r), 200);
    snprintf(want, sizeof(want), "{\"id\":\"%lld\",\"state\":\"cancelled\",\"was\":\"queued\"}",
             (long long)job_ids[2]);
    CHECK_EQ_STR(r.body, want);
    CHECK_EQ_STR(state_of(job_ids[2]), "cancelled");
    CHECK_EQ_INT(call("DELETE", path, &r), 409);
    CHECK_EQ_STR(r.body, "{\"error\":{\"code\":\"job_finished\",\"message\":\"The job has already "
                         "finished; nothing to cancel.\"}}");
    int64_t ids[40];
    char cursor[64];
    CHECK_EQ_INT(page("?state=cancelled", ids, 40, cursor, sizeof(cursor)), 1);
    CHECK_EQ_INT(ids[0], job_ids[2]);
    CHECK_EQ_INT(page("?state=queued", ids, 40, cursor, sizeof(cursor)), 2);
}

TEST(other_methods_are_405)
{
    http_resp r;
    CHECK_EQ_INT(roundtrip("POST /api/jobs HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n", &r),
                 0);
    CHECK_EQ_INT(r.status, 405);
    CHECK(strstr(r.head, "\r\nAllow: GET, HEAD\r\n") != NULL);
    CHECK_EQ_INT(call("DELETE", "/api/jobs", &r), 405);
    CHECK_EQ_INT(roundtrip("PUT /api/jobs/1 HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n", &r),
                 0);
    CHECK_EQ_INT(r.status, 405);
    CHECK(strstr(r.head, "\r\nAllow: GET, HEAD, DELETE\r\n") != NULL);
    CHECK_EQ_INT(call("GET", "/api/jobs/1/extra", &r), 404);
}

TEST(no_request_body_is_taken)
{
    /* The routes read nothing from a body: JSON sent anyway is refused before the actor, and
     * the job it named is untouched. */
    char req[256];
    http_resp r;
    snprintf(req, sizeof(req),
             "DELETE /api/jobs/%lld HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
             "Content-Length: 9\r\n\r\n{\"bad\":,}",
             (long long)job_ids[1]);
    CHECK_EQ_INT(roundtrip(req, &r), 0);
    CHECK_EQ_INT(r.status, 413);
    CHECK(strstr(r.body, "\"code\":\"body_too_large\"") != NULL);
    CHECK_EQ_STR(state_of(job_ids[1]), "queued");
}

/* A non-loopback IPv4 address of this host into `out`, or 0 when it has none. */
static int outside_address(char *out, size_t cap)
{
    struct ifaddrs *ifs, *i;
    int found = 0;
    if (getifaddrs(&ifs) != 0)
        return 0;
    for (i = ifs; i != NULL && !found; i = i->ifa_next) {
        if (i->ifa_addr == NULL || i->ifa_addr->sa_family != AF_INET ||
            (i->ifa_flags & IFF_LOOPBACK) || !(i->ifa_flags & IFF_UP))
            continue;
        const struct sockaddr_in *a = (const struct sockaddr_in *)(const void *)i->ifa_addr;
        found = inet_ntop(AF_INET, &a->sin_addr, out, (socklen_t)cap) != NULL &&
                strncmp(out, "127.", 4) != 0;
    }
    freeifaddrs(ifs);
    return found;
}

TEST(only_loopback_clients_are_answered)
{
    char ip[INET_ADDRSTRLEN];
    if (!outside_address(ip, sizeof(ip)))
        SKIP("this host has no non-loopback IPv4 address to connect from");
    static const char *const forbidden =
        "{\"error\":{\"code\":\"forbidden\",\"message\":\"Job routes answer loopback clients "
        "only; use the asset routes with a bearer token.\"}}";
    char req[256];
    http_resp r;
    CHECK_EQ_INT(roundtrip_from(ip, "GET /api/jobs HTTP/1.1\r\nHost: t\r\n\r\n", &r), 0);
    CHECK_EQ_INT(r.status, 403);
    CHECK_EQ_STR(r.body, forbidden);
    snprintf(req, sizeof(req), "GET /api/jobs/%lld HTTP/1.1\r\nHost: t\r\n\r\n",
             (long long)job_ids[0]);
    CHECK_EQ_INT(roundtrip_from(ip, req, &r), 0);
    CHECK_EQ_INT(r.status, 403);
    CHECK_EQ_STR(r.body, forbidden);
    /* Headers that claim another client change nothing. */
    snprintf(req, sizeof(req),
             "DELETE /api/jobs/%lld HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Forwarded-For: 127.0.0.1\r\n"
             "X-Real-IP: 127.0.0.1\r\n\r\n",
             (long long)job_ids[0]);
    CHECK_EQ_INT(roundtrip_from(ip, req, &r), 0);
    CHECK_EQ_INT(r.status, 403);
    CHECK_EQ_STR(state_of(job_ids[0]), "queued");
}

TEST(a_store_that_is_gone_is_503_with_retry_after)
{
    /* Stopped as jobs_halt would; the API actors still hold it, so their requests fail. */
    rd_actor *store = jobs.store;
    actor_stop(store);
    actor_join(store);
    jobs.store = NULL; /* stopped and joined here: jobs_halt and jobs_free skip it */
    static const char *const unavailable =
        "{\"error\":{\"code\":\"store_unavailable\",\"message\":";
    char path[64];
    http_resp r;
    snprintf(path, sizeof(path), "/api/jobs/%lld", (long long)job_ids[0]);
    CHECK_EQ_INT(call("GET", path, &r), 503);
    CHECK(strstr(r.head, "\r\nRetry-After: 1\r\n") != NULL);
    CHECK(strncmp(r.body, unavailable, strlen(unavailable)) == 0);
    CHECK_EQ_INT(call("GET", "/api/jobs?state=queued", &r), 503);
    CHECK(strstr(r.head, "\r\nRetry-After: 1\r\n") != NULL);
    /* A cancel goes through the dispatcher, which cannot reach the store either. */
    CHECK_EQ_INT(call("DELETE", path, &r), 503);
    CHECK(strstr(r.head, "\r\nRetry-After: 1\r\n") != NULL);
    CHECK(strncmp(r.body, unavailable, strlen(unavailable)) == 0);
    /* Checks that need no store still answer. */
    CHECK_EQ_INT(call("GET", "/api/jobs?limit=0", &r), 400);
    CHECK_EQ_INT(call("GET", "/api/jobs/abc", &r), 404);
}

TEST(no_io_uring)
{
    SKIP("no io_uring here: the runtime did not start");
}

static int64_t create_job(int64_t asset)
{
    rd_msg *m = store_request(STORE_JOB_CREATE);
    struct rd_msg_store *b = msg_body(m, store);
    b->n = 1;
    b->jobs[0].asset_id = asset;
    snprintf(b->jobs[0].kind, sizeof(b->jobs[0].kind), "noop");
    b->jobs[0].max_attempts = 3;
    rd_msg *a = NULL;
    int st = store_client_call(client, m, 5000, &a);
    CHECK_EQ_INT(st, 0);
    int64_t id = a != NULL ? msg_body(a, store)->jobs[0].id : 0;
    msg_free(a);
    return id;
}

static void remove_dir(const char *dir)
{
    static const char *const files[] = {"reeld.db", "reeld.db-wal", "reeld.db-shm"};
    char path[256];
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        snprintf(path, sizeof(path), "%s/%s", dir, files[i]);
        unlink(path);
    }
    rmdir(dir);
}

int main(void)
{
    char dir[] = "/tmp/reeld-jobs-api-test-XXXXXX";
    if (mkdtemp(dir) == NULL)
        return 1;
    setenv("REELD_DATA_DIR", dir, 1);
    setenv("REELD_LOG", "error", 1); /* the store stopped on purpose is a warning */
    unsetenv("POSTGRES_URL");
    unsetenv("REDIS_URL");
    unsetenv("VALKEY_URL");
    unsetenv("REELD_CORES");
    char *argv[] = {"test_jobs_api", NULL};
    rd_config cfg;
    char err[512];
    if (config_load(&cfg, 1, argv, err, sizeof(err)) < 0 ||
        jobs_config(&jobs, &cfg, err, sizeof(err)) < 0) {
        printf("not ok setup: %s\n", err);
        remove_dir(dir);
        return 1;
    }
    log_set_level(cfg.log_level);
    rt_block_signals();
    if (rt_start(&rt, 1) < 0) {
        RUN(no_io_uring);
        remove_dir(dir);
        return test_summary();
    }
    metrics_init(rt.loops, rt.nloops);
    if (jobs_start(&jobs, &cfg, &rt, 0, err, sizeof(err)) < 0) {
        printf("not ok setup: %s\n", err);
        rt_stop(&rt, 0);
        remove_dir(dir);
        return 1;
    }
    store_client_create(rt.loops[0], jobs.store, &client);
    for (int i = 0; i < 3; i++)
        job_ids[i] = create_job(101 + i);
    CHECK(job_ids[0] > 0 && job_ids[0] < job_ids[1] && job_ids[1] < job_ids[2]);

    rd_http_routes *routes;
    http_routes_create(&routes);
    CHECK_EQ_INT(jobs_routes(&jobs, &rt, routes), 0);
    rd_http_config hc = {.header_timeout_ms = 2000, .idle_timeout_ms = 2000, .max_conns = 64};
    char addr[32];
    port = free_port();
    snprintf(addr, sizeof(addr), "0.0.0.0:%d", port);
    rd_actor *listener = NULL;
    CHECK_EQ_INT(http_listener_start(rt.loops[0], 1, addr, &hc, routes, &listener), 0);

    RUN(a_job_by_id);
    RUN(ids_that_name_no_job_are_404);
    RUN(pages_of_jobs_by_id);
    RUN(malformed_queries_are_400_with_a_reason);
    RUN(cancel_once_then_409);
    RUN(other_methods_are_405);
    RUN(no_request_body_is_taken);
    RUN(only_loopback_clients_are_answered);
    RUN(a_store_that_is_gone_is_503_with_retry_after);

    store_client_destroy(client);
    rt_halt(&rt, 1000000000ull);
    jobs_halt(&jobs);
    rt_free(&rt);
    jobs_free(&jobs);
    http_listener_free(listener);
    actor_free_all();
    metrics_free_all();
    http_routes_destroy(routes);
    remove_dir(dir);
    return test_summary();
}
