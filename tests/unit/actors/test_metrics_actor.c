/* The metrics actor over real HTTP, on one loop behind a listener: GET /metrics answers the
 * registry in the Prometheus text format (HELP and TYPE lines, escaped label values, histogram
 * buckets, sum and count, the runtime's own figures, a collector's series while it is added and
 * not after it is removed), whatever its size; /api/health and /api/ping answer JSON; a wrong
 * method is a 405, an unknown path a 404, and a path routed to the actor that is none of its
 * own gets the actor's 404. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "actors/http_listener.h"
#include "actors/metrics.h"
#include "src/rt/metrics.h"
#include "src/rt/runtime.h"
#include "tests/unit/fixture_net.h"
#include "tests/unit/test.h"

static rd_runtime rt;
static int port;
static rd_actor *listener, *metrics_actor;
static int have_loop;

/* ---- a small HTTP client ---- */

typedef struct http_resp {
    int status;
    char head[4096];
    char *body; /* malloc'd, NUL-terminated */
    size_t len;
} http_resp;

/* The value of header `name` in `head` as a number, or -1 when absent. */
static long long header_num(const char *head, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = strstr(head, "\r\n"); p != NULL; p = strstr(p + 2, "\r\n"))
        if (strncasecmp(p + 2, name, n) == 0 && p[2 + n] == ':')
            return atoll(p + 3 + n);
    return -1;
}

/* Sends `req` (`len` bytes) on a new connection and reads one response: its head, then its
 * Content-Length bytes of body (none for `head_only`), or up to the close when it has no length.
 * 0, or -1 when no whole response came. */
static int roundtrip(const char *req, size_t len, int head_only, http_resp *r)
{
    memset(r, 0, sizeof(*r));
    r->status = -1;
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap + 1);
    int fd = dial_ip(NULL, port);
    if (fd < 0 || buf == NULL) {
        free(buf);
        r->body = strdup("");
        return -1;
    }
    for (size_t off = 0; off < len;) {
        ssize_t w = write(fd, req + off, len - off);
        if (w <= 0)
            break;
        off += (size_t)w;
    }
    long long want = -1;
    size_t head_len = 0;
    for (;;) {
        buf[n] = 0;
        if (head_len == 0) {
            char *end = strstr(buf, "\r\n\r\n");
            if (end != NULL) {
                head_len = (size_t)(end + 4 - buf);
                snprintf(r->head, sizeof(r->head), "%.*s", (int)head_len, buf);
                want = head_only ? 0 : header_num(r->head, "Content-Length");
            }
        }
        if (head_len > 0 && want >= 0 && n >= head_len + (size_t)want)
            break;
        if (n == cap) {
            cap *= 2;
            char *bigger = realloc(buf, cap + 1);
            if (bigger == NULL)
                break;
            buf = bigger;
        }
        ssize_t got = read(fd, buf + n, cap - n);
        if (got <= 0)
            break;
        n += (size_t)got;
    }
    close(fd);
    buf[n] = 0;
    if (head_len == 0) {
        r->body = buf;
        return -1;
    }
    sscanf(r->head, "HTTP/1.%*d %d", &r->status);
    r->len = n - head_len;
    memmove(buf, buf + head_len, r->len + 1);
    r->body = buf;
    return want < 0 || r->len == (size_t)want ? 0 : -1;
}

static int get(const char *path, http_resp *r)
{
    char req[512];
    int n = snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: t\r\n\r\n", path);
    return roundtrip(req, (size_t)n, 0, r);
}

static int occurrences(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = strstr(hay, needle); p != NULL; p = strstr(p + 1, needle))
        n++;
    return n;
}

/* ---- the cases ---- */

TEST(families_render_as_prometheus_text)
{
    rd_metric *c = metrics_family("t_http_requests_total", "Requests answered.", RD_COUNTER,
                                  "route,code", NULL, 0);
    /* Quote, backslash and newline in a label value are escaped. */
    const char *tricky[] = {"/a\"b\\c\nd", "200"};
    metrics_add(metrics_series(c, tricky), 2);
    metrics_add(metrics_series(c, tricky), 1);
    const char *plain[] = {"/b", "404"};
    metrics_add(metrics_series(c, plain), 7);
    rd_series *g =
        metrics_series(metrics_family("t_queue_depth", "Depth.", RD_GAUGE, NULL, NULL, 0), NULL);
    metrics_gauge_add(g, 5);
    metrics_gauge_add(g, -2);
    static const double bounds[] = {0.1, 1};
    const char *op[] = {"get"};
    rd_series *h = metrics_series(
        metrics_family("t_op_seconds", "Time per op.", RD_HISTOGRAM, "op", bounds, 2), op);
    metrics_observe(h, 0.05);
    metrics_observe(h, 0.5);
    metrics_observe(h, 5);
    metrics_family("t_never_total", "No series yet.", RD_COUNTER, NULL, NULL, 0);

    http_resp r;
    CHECK_EQ_INT(get("/metrics", &r), 0);
    CHECK_EQ_INT(r.status, 200);
    CHECK(strstr(r.head, "\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n") != NULL);
    const char *t = r.body;
    CHECK(strstr(t, "# HELP t_http_requests_total Requests answered.\n"
                    "# TYPE t_http_requests_total counter\n"
                    "t_http_requests_total{route=\"/a\\\"b\\\\c\\nd\",code=\"200\"} 3\n"
                    "t_http_requests_total{route=\"/b\",code=\"404\"} 7\n") != NULL);
    CHECK(strstr(t, "# HELP t_queue_depth Depth.\n# TYPE t_queue_depth gauge\nt_queue_depth 3\n") !=
          NULL);
    CHECK(strstr(t, "# HELP t_op_seconds Time per op.\n# TYPE t_op_seconds histogram\n"
                    "t_op_seconds_bucket{op=\"get\",le=\"0.1\"} 1\n"
                    "t_op_seconds_bucket{op=\"get\",le=\"1\"} 2\n"
                    "t_op_seconds_bucket{op=\"get\",le=\"+Inf\"} 3\n"
                    "t_op_seconds_sum{op=\"get\"} 5.55\n"
                    "t_op_seconds_count{op=\"get\"} 3\n") != NULL);
    CHECK(strstr(t, "t_never_total") == NULL);
    /* Each family once, every line ended. */
    CHECK_EQ_INT(occurrences(t, "# TYPE t_http_requests_total "), 1);
    CHECK(r.len > 0 && t[r.len - 1] == '\n');
    /* The runtime's own figures follow: the build, the loop, the actors (this one included). */
    CHECK(strstr(t, "# TYPE reeld_build_info gauge\nreeld_build_info{version=\"") != NULL);
    CHECK(strstr(t, "reeld_loop_iterations_total{loop=\"0\"} ") != NULL);
    CHECK(strstr(t, "reeld_actor_messages_total{actor=\"metrics\"} ") != NULL);
    CHECK(strstr(t, "\nreeld_process_resident_memory_bytes ") != NULL);
    free(r.body);

    /* Counts move between scrapes; a query string does not change the route. */
    metrics_add(metrics_series(c, plain), 1);
    CHECK_EQ_INT(get("/metrics?debug=1", &r), 0);
    CHECK_EQ_INT(r.status, 200);
    CHECK(strstr(r.body, "t_http_requests_total{route=\"/b\",code=\"404\"} 8\n") != NULL);
    free(r.body);
}

static int collected_value = 11;

static void collect(prom_writer *w, void *ctx)
{
    static const char *const names[] = {"pool"};
    const char *values[] = {"a\"1"};
    prom_family(w, "t_collected_items", "gauge", "Items a module keeps itself.");
    prom_sample(w, "t_collected_items", "", names, values, 1, NULL, *(int *)ctx);
}

TEST(collector_series_come_and_go)
{
    http_resp r;
    CHECK_EQ_INT(get("/metrics", &r), 0);
    CHECK(strstr(r.body, "t_collected_items") == NULL);
    free(r.body);

    metrics_collector_add(collect, &collected_value);
    CHECK_EQ_INT(get("/metrics", &r), 0);
    CHECK(strstr(r.body, "# HELP t_collected_items Items a module keeps itself.\n"
                         "# TYPE t_collected_items gauge\n"
                         "t_collected_items{pool=\"a\\\"1\"} 11\n") != NULL);
    free(r.body);

    /* Read at each scrape; added twice, written once, until removed as often. */
    collected_value = 12;
    metrics_collector_add(collect, &collected_value);
    CHECK_EQ_INT(get("/metrics", &r), 0);
    CHECK_EQ_INT(occurrences(r.body, "# TYPE t_collected_items gauge"), 1);
    CHECK(strstr(r.body, "t_collected_items{pool=\"a\\\"1\"} 12\n") != NULL);
    free(r.body);
    metrics_collector_remove(collect, &collected_value);
    CHECK_EQ_INT(get("/metrics", &r), 0);
    CHECK_EQ_INT(occurrences(r.body, "# TYPE t_collected_items gauge"), 1);
    free(r.body);
    metrics_collector_remove(collect, &collected_value);
    CHECK_EQ_INT(get("/metrics", &r), 0);
    CHECK_EQ_INT(r.status, 200);
    CHECK(strstr(r.body, "t_collected_items") == NULL);
    free(r.body);
}

TEST(a_scrape_larger_than_the_first_buffer_is_whole)
{
    /* About 450 KB of samples: more than the first 64 KiB and the next 256 KiB. */
    rd_metric *m = metrics_family("t_big_total", "Many series.", RD_COUNTER, "id", NULL, 0);
    char id[128];
    for (int i = 0; i < 6000; i++) {
        snprintf(id, sizeof(id), "series-%05d-padding-padding-padding-padding-padding", i);
        const char *v[] = {id};
        metrics_add(metrics_series(m, v), (uint64_t)i);
    }
    http_resp r;
    CHECK_EQ_INT(get("/metrics", &r), 0);
    CHECK_EQ_INT(r.status, 200);
    CHECK(r.len > 256 * 1024);
    CHECK(strstr(r.body, "t_big_total{id=\"series-00000-padding-padding-padding-padding-"
                         "padding\"} 0\n") != NULL);
    CHECK(strstr(r.body, "t_big_total{id=\"series-05999-padding-padding-padding-padding-"
                         "padding\"} 5999\n") != NULL);
    CHECK_EQ_INT(occurrences(r.body, "\nt_big_total{"), 6000);
    /* The families before and the runtime's figures after it are all there. */
    CHECK(strstr(r.body, "# TYPE t_queue_depth gauge\n") != NULL);
    CHECK(strstr(r.body, "# TYPE reeld_actor_messages_total counter\n") != NULL);
    free(r.body);
}

TEST(health_and_ping_answer_json)
{
    http_resp r;
    CHECK_EQ_INT(get("/api/health", &r), 0);
    CHECK_EQ_INT(r.status, 200);
    CHECK(strstr(r.head, "\r\nContent-Type: application/json\r\n") != NULL);
    unsigned long long uptime = 0, rss = 0;
    char queue[64] = "";
    int n = sscanf(r.body,
                   "{\"ok\":true,\"uptime_s\":%llu,\"memory\":{\"rss_bytes\":%llu},"
                   "\"queue\":%63[^}]}}",
                   &uptime, &rss, queue);
    CHECK_EQ_INT(n, 3);
    CHECK(rss > 0);
    CHECK_EQ_STR(queue, "{"); /* no dispatcher here: no counts */
    CHECK(strcmp(r.body + r.len - 11, "\"queue\":{}}") == 0);
    free(r.body);

    CHECK_EQ_INT(get("/api/ping", &r), 0);
    CHECK_EQ_INT(r.status, 200);
    CHECK_EQ_STR(r.body, "{\"ok\":true}");
    free(r.body);

    const char *post = "POST /api/ping HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello";
    CHECK_EQ_INT(roundtrip(post, strlen(post), 0, &r), 0);
    CHECK_EQ_INT(r.status, 200);
    CHECK_EQ_STR(r.body, "{\"ok\":true,\"body_bytes\":5}");
    free(r.body);

    /* A body past the route's 64 KiB is refused before it reaches the actor. */
    const char *big = "POST /api/ping HTTP/1.1\r\nHost: t\r\nContent-Length: 65537\r\n\r\n";
    CHECK_EQ_INT(roundtrip(big, strlen(big), 0, &r), 0);
    CHECK_EQ_INT(r.status, 413);
    free(r.body);

    /* HEAD is routed as GET: the head of a scrape, no body. */
    const char *head = "HEAD /metrics HTTP/1.1\r\nHost: t\r\n\r\n";
    CHECK_EQ_INT(roundtrip(head, strlen(head), 1, &r), 0);
    CHECK_EQ_INT(r.status, 200);
    CHECK(strstr(r.head, "text/plain; version=0.0.4") != NULL);
    CHECK_EQ_INT(r.len, 0);
    free(r.body);
}

TEST(wrong_methods_and_unknown_paths)
{
    static const char *const wrong[] = {
        "POST /metrics HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n",
        "DELETE /metrics HTTP/1.1\r\nHost: t\r\n\r\n",
        "PUT /api/health HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n",
        "DELETE /api/ping HTTP/1.1\r\nHost: t\r\n\r\n",
    };
    http_resp r;
    for (size_t i = 0; i < sizeof(wrong) / sizeof(wrong[0]); i++) {
        CHECK_EQ_INT(roundtrip(wrong[i], strlen(wrong[i]), 0, &r), 0);
        CHECK_EQ_INT(r.status, 405);
        CHECK(strstr(r.head, "\r\nAllow: GET, HEAD") != NULL);
        CHECK(strstr(r.body, "\"code\":\"method_not_allowed\"") != NULL);
        free(r.body);
    }
    CHECK_EQ_INT(get("/metrics/extra", &r), 0);
    CHECK_EQ_INT(r.status, 404);
    free(r.body);
    CHECK_EQ_INT(get("/metric", &r), 0);
    CHECK_EQ_INT(r.status, 404);
    free(r.body);
}

TEST(a_path_routed_to_the_actor_that_is_not_its_own_is_a_404)
{
    /* Not an HTTP request: dropped, and the actor goes on. */
    CHECK_EQ_INT(actor_send(metrics_actor, msg_new(MSG_PING)), 0);
    http_resp r;
    CHECK_EQ_INT(get("/t/other", &r), 0);
    CHECK_EQ_INT(r.status, 404);
    CHECK_EQ_STR(r.body, "{\"error\":{\"code\":\"not_found\",\"message\":\"No such route.\"}}");
    free(r.body);
    CHECK_EQ_INT(get("/metrics", &r), 0);
    CHECK_EQ_INT(r.status, 200);
    free(r.body);
}

TEST(no_io_uring)
{
    if (!have_loop)
        SKIP("no io_uring here: the runtime did not start");
}

int main(void)
{
    rt_block_signals();
    if (rt_start(&rt, 1) < 0) {
        RUN(no_io_uring);
        return test_summary();
    }
    have_loop = 1;
    metrics_init(rt.loops, 1);
    actor_spawn(rt.loops[0], &metrics_actor_def, NULL, &metrics_actor);
    rd_http_routes *routes;
    http_routes_create(&routes);
    int r = metrics_routes(routes, &metrics_actor, 1);
    CHECK_EQ_INT(r, 0);
    CHECK(http_routes_add(routes, "/t/other", RD_HTTP_GET, &metrics_actor, 1, 0, 0) >= 0);
    rd_http_config cfg = {.header_timeout_ms = 2000, .idle_timeout_ms = 2000, .max_conns = 64};
    char addr[32];
    port = free_port();
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
    r = http_listener_start(rt.loops[0], 1, addr, &cfg, routes, &listener);
    CHECK_EQ_INT(r, 0);

    RUN(families_render_as_prometheus_text);
    RUN(collector_series_come_and_go);
    RUN(a_scrape_larger_than_the_first_buffer_is_whole);
    RUN(health_and_ping_answer_json);
    RUN(wrong_methods_and_unknown_paths);
    RUN(a_path_routed_to_the_actor_that_is_not_its_own_is_a_404);

    rt_stop(&rt, 1000000000ull);
    http_listener_free(listener);
    actor_free_all();
    metrics_free_all();
    http_routes_destroy(routes);
    return test_summary();
}
