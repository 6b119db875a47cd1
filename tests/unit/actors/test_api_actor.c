/* The asset API (actors/api.c) through real HTTP on loopback, wired as `reeld serve` wires it in
 * embedded mode (cmd/serve.c): the job system on the SQLite store in a temporary
 * REELD_DATA_DIR, the fs blob backend (no S3_ENDPOINT) with the /blob/ server that answers the
 * upload URLs, REELD_API_KEYS for two orgs, two loops with a listener each.
 *
 * POST /api/uploads creates an asset (201, a presigned upload URL) that GET /api/assets/{id}
 * returns; requests without a key, or with a wrong one, are 401; another org's key finds no
 * such asset (404, the same answer as for an unknown id); a body that is not a JSON object is
 * 400 naming the problem; a path's other methods are 405; promote before the upload was PUT is
 * 409 not_uploaded, after it 202 with a job (the same job again); DELETE is 204 (again 204),
 * then the asset is 404 and its objects are gone. A second API, started beside the first with
 * its own route table and listeners over the same store, answers for the same assets. */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "actors/api.h"
#include "actors/blob_server.h"
#include "actors/http_listener.h"
#include "cmd/jobs.h"
#include "proto/json.h"
#include "src/blob/fs.h"
#include "src/rt/actor.h"
#include "src/rt/config.h"
#include "src/rt/log.h"
#include "src/rt/metrics.h"
#include "src/rt/runtime.h"
#include "tests/unit/fixture_net.h"
#include "tests/unit/test.h"

#define NLOOPS    2
#define KEY_ORG1  "org1-key-0123456789abcdef"
#define KEY_ORG2  "org2-key-fedcba9876543210"
#define AUTH1     "Authorization: Bearer " KEY_ORG1 "\r\n"
#define AUTH2     "Authorization: Bearer " KEY_ORG2 "\r\n"
#define JSON      "Content-Type: application/json\r\n"
#define NOT_FOUND "{\"error\":{\"code\":\"not_found\",\"message\":\"No such asset.\"}}"

/* One API under test: its settings, route table, listeners and port. */
typedef struct api_under_test {
    rd_config cfg;
    char listen[32];
    rd_http_routes *routes;
    rd_actor *listeners[NLOOPS];
    rd_api *api;
    int port;
} api_under_test;

static rd_runtime rt;
static rd_jobs jobs;
static char data_dir[64];
static api_under_test A, B;
static blob_aio *blobs;
static blob_server *blob; /* on A's routes, as in `reeld serve` */

/* ---- files ---- */

/* 1 when object bucket/key exists in the fs blob store. */
static int object_exists(const char *bucket, const char *key)
{
    char path[512];
    struct stat st;
    snprintf(path, sizeof(path), "%s/blobs/%s/%s", data_dir, bucket, key);
    return stat(path, &st) == 0;
}

/* ---- HTTP ---- */

typedef struct api_response {
    int status;
    char head[4096];
    char body[16384];
    size_t len;
} api_response;

/* `method` `target` to API `x` with extra header lines `headers` (each ending in CRLF; may be
 * NULL) and `body` (NULL: none), Connection: close, read to the end. The status, or -1 when no
 * response came. */
static int call(const api_under_test *x, const char *method, const char *target,
                const char *headers, const char *body, api_response *out)
{
    memset(out, 0, sizeof(*out));
    out->status = -1;
    static char buf[sizeof(out->head) + sizeof(out->body)];
    char req[16384], len[48] = "";
    if (body != NULL)
        snprintf(len, sizeof(len), "Content-Length: %zu\r\n", strlen(body));
    int n = snprintf(req, sizeof(req),
                     "%s %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n%s%sConnection: close\r\n\r\n%s",
                     method, target, x->port, headers ? headers : "", len, body ? body : "");
    int fd = dial_ip(NULL, x->port);
    if (fd < 0)
        return -1;
    send_all(fd, req, (size_t)n);
    size_t got = 0;
    for (;;) {
        ssize_t r = read(fd, buf + got, sizeof(buf) - 1 - got);
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    close(fd);
    buf[got] = '\0';
    char *end = strstr(buf, "\r\n\r\n");
    if (end == NULL || sscanf(buf, "HTTP/1.1 %d ", &out->status) != 1)
        return -1;
    snprintf(out->head, sizeof(out->head), "%.*s", (int)(end + 2 - buf), buf);
    out->len = got - (size_t)(end + 4 - buf);
    snprintf(out->body, sizeof(out->body), "%s", end + 4);
    return out->status;
}

static int has_header(const api_response *r, const char *line)
{
    return strcasestr(r->head, line) != NULL;
}

/* The string at `k1` (or `k1`.`k2`) of a JSON object body into out; its length, or -1. */
static int json_at(const char *body, const char *k1, const char *k2, char *out, size_t cap)
{
    json_tok t[256];
    out[0] = '\0';
    if (json_parse(body, strlen(body), t, 256) < 0)
        return -1;
    int i = json_get(body, t, 0, k1);
    if (i >= 0 && k2 != NULL)
        i = json_get(body, t, i, k2);
    return i < 0 ? -1 : json_string(body, &t[i], out, cap);
}

/* The error code of a JSON error body ("" when it is not one). */
static const char *error_code(const api_response *r)
{
    static char code[64];
    if (json_at(r->body, "error", "code", code, sizeof(code)) < 0)
        code[0] = '\0';
    return code;
}

/* POSTs an upload of `size` bytes as `auth` to API `x`; the new asset's id into `id` and the
 * upload URL's path and query into `put` (when non-NULL). The status. */
static int create_upload(const api_under_test *x, const char *auth, long long size, char *id,
                         char *put, size_t putcap)
{
    char body[160];
    api_response r;
    snprintf(body, sizeof(body),
             "{\"filename\":\"clip.mp4\",\"content_type\":\"video/mp4\","
             "\"size\":%lld}",
             size);
    id[0] = '\0';
    int st = call(x, "POST", "/api/uploads", auth, body, &r);
    if (st != 201) {
        printf("  POST /api/uploads: %d %s\n", st, r.body);
        return st;
    }
    json_at(r.body, "asset_id", NULL, id, RD_ASSET_ID_MAX);
    if (put != NULL) {
        char url[4096], origin[96];
        json_at(r.body, "upload", "url", url, sizeof(url));
        snprintf(origin, sizeof(origin), "http://127.0.0.1:%d/blob/staging/%s?", x->port, id);
        CHECK(strncmp(url, origin, strlen(origin)) == 0);
        const char *target = strstr(url, "/blob/");
        snprintf(put, putcap, "%s", target ? target : "/");
    }
    return st;
}

/* ---- the cases ---- */

TEST(an_upload_creates_an_asset_that_get_returns)
{
    api_response r;
    char id[RD_ASSET_ID_MAX], v[4096], path[96];
    CHECK_EQ_INT(call(&A, "POST", "/api/uploads", AUTH1 JSON,
                      "{\"filename\":\"holiday.mp4\",\"content_type\":\"video/mp4\",\"size\":1234}",
                      &r),
                 201);
    CHECK(has_header(&r, "\r\nContent-Type: application/json\r\n"));
    CHECK_EQ_INT(json_at(r.body, "asset_id", NULL, id, sizeof(id)), 25);
    CHECK(id[0] == 'a' && strspn(id + 1, "0123456789abcdef") == 24);
    CHECK(json_at(r.body, "upload", "method", v, sizeof(v)) > 0 && strcmp(v, "PUT") == 0);
    CHECK(json_at(r.body, "upload", "url", v, sizeof(v)) > 0);
    char want[128];
    snprintf(want, sizeof(want), "http://127.0.0.1:%d/blob/staging/%s?", A.port, id);
    CHECK(strncmp(v, want, strlen(want)) == 0);
    CHECK(strstr(v, "X-Amz-Signature=") != NULL);
    CHECK(strstr(v, "X-Amz-SignedHeaders=content-length%3Bhost") != NULL);
    CHECK(strstr(v, "reeld-org=org1") != NULL);
    CHECK(json_at(r.body, "upload", "expires_at", v, sizeof(v)) == 20);
    CHECK(strstr(r.body, "\"headers\":{\"Content-Type\":\"video/mp4\"}") != NULL);

    snprintf(path, sizeof(path), "/api/assets/%s", id);
    CHECK_EQ_INT(call(&A, "GET", path, AUTH1, NULL, &r), 200);
    CHECK(has_header(&r, "\r\nContent-Type: application/json\r\n"));
    snprintf(want, sizeof(want), "{\"asset_id\":\"%s\",\"org\":\"org1\",\"state\":\"uploading\",",
             id);
    CHECK(strncmp(r.body, want, strlen(want)) == 0);
    CHECK(strstr(r.body, "\"filename\":\"holiday.mp4\"") != NULL);
    CHECK(strstr(r.body, "\"content_type\":\"video/mp4\"") != NULL);
    CHECK(strstr(r.body, "\"size\":1234") != NULL);
    CHECK(strstr(r.body, "\"outputs\":[]}") != NULL);
    CHECK(strstr(r.body, "job_id") == NULL);
    /* HEAD is GET without the body. */
    CHECK_EQ_INT(call(&A, "HEAD", path, AUTH1, NULL, &r), 200);
    CHECK_EQ_INT(r.len, 0);
}

TEST(auth_is_required_and_orgs_see_only_their_assets)
{
    api_response r;
    char id[RD_ASSET_ID_MAX], path[96], other[128];
    CHECK_EQ_INT(create_upload(&A, AUTH1 JSON, 1000, id, NULL, 0), 201);
    snprintf(path, sizeof(path), "/api/assets/%s", id);
    /* No key, a wrong one, another scheme: 401 with a challenge. */
    static const char *const bad[] = {NULL, "Authorization: Bearer not-a-key-of-anyone-here\r\n",
                                      "Authorization: Basic b3JnMTpvcmcx\r\n",
                                      "Authorization: Bearer " KEY_ORG1 "x\r\n"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        CHECK_EQ_INT(call(&A, "GET", path, bad[i], NULL, &r), 401);
        CHECK(has_header(&r, "\r\nWWW-Authenticate: Bearer realm=\"reeld\"\r\n"));
        CHECK_EQ_STR(error_code(&r), "unauthorized");
        CHECK(strstr(r.body, id) == NULL);
    }
    /* A write with a body, refused from its head. */
    CHECK_EQ_INT(call(&A, "POST", "/api/uploads", JSON,
                      "{\"filename\":\"x.mp4\",\"content_type\":\"video/mp4\",\"size\":1}", &r),
                 401);
    CHECK_EQ_STR(error_code(&r), "unauthorized");
    CHECK_EQ_INT(call(&A, "DELETE", path, NULL, NULL, &r), 401);

    /* Org 2 is told nothing of org 1's asset: the answer for an id that names none. */
    CHECK_EQ_INT(call(&A, "GET", path, AUTH2, NULL, &r), 404);
    CHECK_EQ_STR(r.body, NOT_FOUND);
    snprintf(other, sizeof(other), "%s/playback", path);
    CHECK_EQ_INT(call(&A, "GET", other, AUTH2, NULL, &r), 404);
    CHECK_EQ_STR(r.body, NOT_FOUND);
    snprintf(other, sizeof(other), "%s/promote", path);
    CHECK_EQ_INT(call(&A, "POST", other, AUTH2, NULL, &r), 404);
    CHECK_EQ_STR(r.body, NOT_FOUND);
    CHECK_EQ_INT(call(&A, "DELETE", path, AUTH2, NULL, &r), 404);
    CHECK_EQ_STR(r.body, NOT_FOUND);
    CHECK_EQ_INT(call(&A, "GET", "/api/assets", AUTH2, NULL, &r), 200);
    CHECK(strstr(r.body, id) == NULL);
    /* ... and org 1 still has it, untouched. */
    CHECK_EQ_INT(call(&A, "GET", path, AUTH1, NULL, &r), 200);
    CHECK(strstr(r.body, "\"state\":\"uploading\"") != NULL);
    CHECK_EQ_INT(call(&A, "GET", "/api/assets", AUTH1, NULL, &r), 200);
    CHECK(strstr(r.body, id) != NULL);
}

TEST(bodies_that_are_not_a_json_object_are_400_naming_the_problem)
{
    static const char *const not_object[] = {
        "{\"filename\":", "not json", "[1,2,3]", "\"video.mp4\"", "{\"filename\":\"a\",}", "",
    };
    api_response r;
    for (size_t i = 0; i < sizeof(not_object) / sizeof(not_object[0]); i++) {
        CHECK_EQ_INT(call(&A, "POST", "/api/uploads", AUTH1 JSON, not_object[i], &r), 400);
        CHECK(has_header(&r, "\r\nContent-Type: application/json\r\n"));
        CHECK_EQ_STR(r.body, "{\"error\":{\"code\":\"invalid_json\",\"message\":\"The body is not "
                             "a JSON object.\"}}");
    }
    CHECK_EQ_INT(call(&A, "POST", "/api/uploads", AUTH1 JSON, "{\"filename\":\"a.mp4\"}", &r), 400);
    CHECK_EQ_STR(r.body, "{\"error\":{\"code\":\"missing_field\",\"message\":\"filename, "
                         "content_type and size are required.\"}}");
    CHECK_EQ_INT(call(&A, "POST", "/api/uploads", AUTH1 JSON,
                      "{\"filename\":\"a.mp4\",\"content_type\":\"video/mp4\",\"size\":-5}", &r),
                 400);
    CHECK_EQ_STR(error_code(&r), "invalid_field");
    CHECK(strstr(r.body, "size must be a positive integer") != NULL);
    CHECK_EQ_INT(call(&A, "POST", "/api/uploads", AUTH1 JSON,
                      "{\"filename\":\"\",\"content_type\":\"video/mp4\",\"size\":5}", &r),
                 400);
    CHECK_EQ_STR(error_code(&r), "invalid_field");
    CHECK(strstr(r.body, "filename must be") != NULL);
    CHECK_EQ_INT(call(&A, "POST", "/api/uploads", AUTH1 JSON,
                      "{\"filename\":\"a.txt\",\"content_type\":\"text/plain\",\"size\":5}", &r),
                 415);
    CHECK_EQ_STR(error_code(&r), "unsupported_media_type");
    /* JSON sent as something else. */
    CHECK_EQ_INT(call(&A, "POST", "/api/uploads", AUTH1 "Content-Type: text/plain\r\n",
                      "{\"filename\":\"a.mp4\",\"content_type\":\"video/mp4\",\"size\":5}", &r),
                 415);
    CHECK_EQ_STR(error_code(&r), "unsupported_media_type");
}

TEST(unknown_assets_are_404)
{
    static const char *const ids[] = {"a000000000000000000000000", "nope", "a-b_c",
                                      "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "a.b"};
    api_response r;
    for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
        char path[128];
        snprintf(path, sizeof(path), "/api/assets/%s", ids[i]);
        CHECK_EQ_INT(call(&A, "GET", path, AUTH1, NULL, &r), 404);
        CHECK_EQ_STR(r.body, NOT_FOUND);
        CHECK_EQ_INT(call(&A, "DELETE", path, AUTH1, NULL, &r), 404);
        CHECK_EQ_STR(r.body, NOT_FOUND);
        snprintf(path, sizeof(path), "/api/assets/%s/promote", ids[i]);
        CHECK_EQ_INT(call(&A, "POST", path, AUTH1, NULL, &r), 404);
        CHECK_EQ_STR(r.body, NOT_FOUND);
    }
    CHECK_EQ_INT(call(&A, "GET", "/api/nothing-here", AUTH1, NULL, &r), 404);
}

TEST(other_methods_are_405)
{
    static const struct {
        const char *method, *path, *allow;
    } cases[] = {
        {"GET", "/api/uploads", "POST, OPTIONS"},
        {"PUT", "/api/uploads", "POST, OPTIONS"},
        {"PUT", "/api/assets/a000000000000000000000000", "GET, HEAD, DELETE, OPTIONS"},
        {"POST", "/api/assets/a000000000000000000000000", "GET, HEAD, DELETE, OPTIONS"},
        {"GET", "/api/assets/a000000000000000000000000/promote", "POST, OPTIONS"},
        {"DELETE", "/api/assets", "GET, HEAD, OPTIONS"},
    };
    api_response r;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char allow[96];
        CHECK_EQ_INT(call(&A, cases[i].method, cases[i].path, AUTH1, NULL, &r), 405);
        snprintf(allow, sizeof(allow), "\r\nAllow: %s\r\n", cases[i].allow);
        if (!has_header(&r, allow))
            printf("  %s %s:\n%s\n", cases[i].method, cases[i].path, r.head);
        CHECK(has_header(&r, allow));
        CHECK_EQ_STR(error_code(&r), "method_not_allowed");
    }
}

TEST(promote_before_the_upload_is_409_then_202_with_one_job)
{
    api_response r;
    char id[RD_ASSET_ID_MAX], put[4096], path[96], promote[128], job[32] = "", again[32] = "";
    static char video[3001];
    memset(video, 'v', sizeof(video) - 1);
    CHECK_EQ_INT(create_upload(&A, AUTH1 JSON, (long long)strlen(video), id, put, sizeof(put)),
                 201);
    snprintf(path, sizeof(path), "/api/assets/%s", id);
    snprintf(promote, sizeof(promote), "/api/assets/%s/promote", id);
    CHECK_EQ_INT(call(&A, "POST", promote, AUTH1, NULL, &r), 409);
    CHECK_EQ_STR(error_code(&r), "not_uploaded");
    CHECK(strstr(r.body, "Nothing has been uploaded for this asset yet") != NULL);
    CHECK_EQ_INT(call(&A, "GET", path, AUTH1, NULL, &r), 200);
    CHECK(strstr(r.body, "\"state\":\"uploading\"") != NULL);
    CHECK(!object_exists("masters", id));

    /* The upload, to the URL as given (the embedded /blob/ server). */
    CHECK_EQ_INT(call(&A, "PUT", put, "Content-Type: video/mp4\r\n", video, &r), 200);
    CHECK(object_exists("staging", id));

    CHECK_EQ_INT(call(&A, "POST", promote, AUTH1, NULL, &r), 202);
    CHECK(json_at(r.body, "job_id", NULL, job, sizeof(job)) > 0 && atoll(job) > 0);
    CHECK(json_at(r.body, "asset_id", NULL, again, sizeof(again)) > 0 && strcmp(again, id) == 0);
    CHECK(object_exists("masters", id));
    /* Again (here, and on the other API): the same job. */
    CHECK_EQ_INT(call(&A, "POST", promote, AUTH1, NULL, &r), 202);
    CHECK(json_at(r.body, "job_id", NULL, again, sizeof(again)) > 0 && strcmp(again, job) == 0);
    CHECK_EQ_INT(call(&B, "POST", promote, AUTH1, NULL, &r), 202);
    CHECK(json_at(r.body, "job_id", NULL, again, sizeof(again)) > 0 && strcmp(again, job) == 0);
    CHECK_EQ_INT(call(&A, "GET", path, AUTH1, NULL, &r), 200);
    CHECK(strstr(r.body, "\"state\":\"processing\"") != NULL);
    CHECK(json_at(r.body, "job_id", NULL, again, sizeof(again)) > 0 && strcmp(again, job) == 0);

    /* Deleting it: 204, its job cancelled, its objects gone. */
    CHECK_EQ_INT(call(&A, "DELETE", path, AUTH1, NULL, &r), 204);
    CHECK_EQ_INT(r.len, 0);
    CHECK(!object_exists("staging", id));
    CHECK(!object_exists("masters", id));
    CHECK_EQ_INT(call(&A, "GET", path, AUTH1, NULL, &r), 404);
    CHECK_EQ_INT(call(&A, "POST", promote, AUTH1, NULL, &r), 404);
}

TEST(delete_is_204_then_the_asset_is_gone)
{
    api_response r;
    char id[RD_ASSET_ID_MAX], path[96];
    CHECK_EQ_INT(create_upload(&A, AUTH1 JSON, 500, id, NULL, 0), 201);
    snprintf(path, sizeof(path), "/api/assets/%s", id);
    CHECK_EQ_INT(call(&A, "DELETE", path, AUTH1, NULL, &r), 204);
    CHECK_EQ_INT(r.len, 0);
    CHECK_EQ_INT(call(&A, "GET", path, AUTH1, NULL, &r), 404);
    CHECK_EQ_STR(r.body, NOT_FOUND);
    CHECK_EQ_INT(call(&A, "GET", "/api/assets", AUTH1, NULL, &r), 200);
    CHECK(strstr(r.body, id) == NULL);
    /* Idempotent: deleted already is deleted. */
    CHECK_EQ_INT(call(&A, "DELETE", path, AUTH1, NULL, &r), 204);
    CHECK_EQ_INT(call(&A, "GET", path, AUTH1, NULL, &r), 404);
}

TEST(two_apis_answer_for_the_same_assets)
{
    api_response ra, rb;
    char id[RD_ASSET_ID_MAX], id2[RD_ASSET_ID_MAX], path[96], put[4096];
    CHECK_EQ_INT(create_upload(&A, AUTH1 JSON, 777, id, NULL, 0), 201);
    snprintf(path, sizeof(path), "/api/assets/%s", id);
    CHECK_EQ_INT(call(&A, "GET", path, AUTH1, NULL, &ra), 200);
    CHECK_EQ_INT(call(&B, "GET", path, AUTH1, NULL, &rb), 200);
    CHECK_EQ_STR(rb.body, ra.body);
    CHECK_EQ_INT(call(&B, "GET", path, AUTH2, NULL, &rb), 404);
    CHECK_EQ_INT(call(&B, "GET", path, NULL, NULL, &rb), 401);

    /* One made on B is A's too; B's upload URL names B. */
    CHECK_EQ_INT(create_upload(&B, AUTH1 JSON, 888, id2, put, sizeof(put)), 201);
    snprintf(path, sizeof(path), "/api/assets/%s", id2);
    CHECK_EQ_INT(call(&A, "GET", path, AUTH1, NULL, &ra), 200);
    CHECK(strstr(ra.body, "\"size\":888") != NULL);
    CHECK_EQ_INT(call(&B, "GET", path, AUTH1, NULL, &rb), 200);
    CHECK_EQ_STR(rb.body, ra.body);
    CHECK_EQ_INT(call(&A, "GET", "/api/assets", AUTH1, NULL, &ra), 200);
    CHECK(strstr(ra.body, id) != NULL && strstr(ra.body, id2) != NULL);

    /* Deleted on B: gone on A. */
    CHECK_EQ_INT(call(&B, "DELETE", path, AUTH1, NULL, &rb), 204);
    CHECK_EQ_INT(call(&A, "GET", path, AUTH1, NULL, &ra), 404);
    CHECK_EQ_INT(call(&A, "DELETE", path, AUTH1, NULL, &ra), 204);
    snprintf(path, sizeof(path), "/api/assets/%s", id);
    CHECK_EQ_INT(call(&A, "DELETE", path, AUTH1, NULL, &ra), 204);
    CHECK_EQ_INT(call(&B, "GET", path, AUTH1, NULL, &rb), 404);
}

TEST(no_io_uring)
{
    SKIP("no io_uring here: the runtime did not start");
}

/* ---- setup ---- */

/* Starts API `x` from `base` on its own port, route table and listeners; `with_blob` adds the
 * /blob/ server to its routes. 0, or -1 having said why. */
static int start_api(api_under_test *x, const rd_config *base, int with_blob)
{
    char err[512];
    x->port = free_port();
    snprintf(x->listen, sizeof(x->listen), "127.0.0.1:%d", x->port);
    x->cfg = *base;
    x->cfg.listen = x->listen; /* the upload URLs name it */
    if (http_routes_create(&x->routes) < 0)
        return -1;
    int r = 0;
    if (with_blob) {
        r = blob_aio_open_fs(x->cfg.data_dir, rt.loops[0], &blobs, err, sizeof(err));
        if (r == 0)
            r = blob_server_start(blobs, rt.loops[0], &x->cfg, x->routes, &blob, err, sizeof(err));
    }
    if (r == 0)
        r = api_start(&x->cfg, rt.loops, rt.nloops, jobs.dispatcher, jobs.store, x->routes, &x->api,
                      err, sizeof(err));
    if (r < 0) {
        printf("  start: %s\n", err);
        return -1;
    }
    rd_http_config hc = {.header_timeout_ms = 2000, .idle_timeout_ms = 2000, .max_conns = 64};
    for (int i = 0; i < rt.nloops; i++)
        if ((r = http_listener_start(rt.loops[i], rt.nloops, x->listen, &hc, x->routes,
                                     &x->listeners[i])) < 0) {
            printf("  listener on %s: %s\n", x->listen, strerror(-r));
            return -1;
        }
    return 0;
}

int main(void)
{
    snprintf(data_dir, sizeof(data_dir), "/tmp/reeld-test-api-XXXXXX");
    if (mkdtemp(data_dir) == NULL) {
        printf("not ok setup: mkdtemp\n0 passed, 1 failed\n");
        return 1;
    }
    setenv("REELD_DATA_DIR", data_dir, 1);
    setenv("REELD_API_KEYS", "org1:" KEY_ORG1 ",org2:" KEY_ORG2, 1);
    setenv("RL_AUTH_FAIL_MAX", "1000", 1);
    setenv("REELD_LOG", "error", 1);
    static const char *const unset[] = {
        "S3_ENDPOINT",      "S3_ACCESS_KEY_ID", "S3_SECRET_ACCESS_KEY", "JWT_SECRET",
        "POSTGRES_URL",     "REDIS_URL",        "VALKEY_URL",           "REELD_CORES",
        "REELD_PUBLIC_URL", "EDGE_PUBLIC_BASE", "EDGE_SIGNING_KEY",     "ALLOWED_ORIGINS",
        "REELD_TLS_CERT",   "REELD_TLS_KEY",    "REELD_LISTEN"};
    for (size_t i = 0; i < sizeof(unset) / sizeof(unset[0]); i++)
        unsetenv(unset[i]);
    char *argv[] = {"test_api_actor", NULL};
    rd_config cfg;
    char err[512];
    if (config_load(&cfg, 1, argv, err, sizeof(err)) < 0 ||
        jobs_config(&jobs, &cfg, err, sizeof(err)) < 0) {
        printf("not ok setup: %s\n0 passed, 1 failed\n", err);
        rm_rf(data_dir);
        return 1;
    }
    log_set_level(cfg.log_level);
    rt_block_signals();
    if (rt_start(&rt, NLOOPS) < 0) {
        RUN(no_io_uring);
        rm_rf(data_dir);
        return test_summary();
    }
    metrics_init(rt.loops, rt.nloops);
    int ok = jobs_start(&jobs, &cfg, &rt, 0, err, sizeof(err)) == 0;
    if (!ok)
        printf("  job system: %s\n", err);
    ok = ok && start_api(&A, &cfg, 1) == 0 && start_api(&B, &cfg, 0) == 0;
    if (ok) {
        RUN(an_upload_creates_an_asset_that_get_returns);
        RUN(auth_is_required_and_orgs_see_only_their_assets);
        RUN(bodies_that_are_not_a_json_object_are_400_naming_the_problem);
        RUN(unknown_assets_are_404);
        RUN(other_methods_are_405);
        RUN(promote_before_the_upload_is_409_then_202_with_one_job);
        RUN(delete_is_204_then_the_asset_is_gone);
        RUN(two_apis_answer_for_the_same_assets);
    } else {
        test_failed++;
        printf("not ok setup\n");
    }
    /* As `reeld serve` stops. */
    rt_halt(&rt, 1000000000ull);
    jobs_halt(&jobs);
    rt_free(&rt);
    api_free(A.api);
    api_free(B.api);
    blob_server_free(blob);
    blob_aio_close(blobs);
    jobs_free(&jobs);
    for (int i = 0; i < NLOOPS; i++) {
        http_listener_free(A.listeners[i]);
        http_listener_free(B.listeners[i]);
    }
    actor_free_all();
    metrics_free_all();
    http_routes_destroy(A.routes);
    http_routes_destroy(B.routes);
    rm_rf(data_dir);
    return test_summary();
}
