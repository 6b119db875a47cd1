/* The edge (cache-manager) end to end, through real HTTP on loopback: two loops, the fs origin
 * over a temporary DATA_DIR holding one small HLS asset, and two edges started side by side in
 * the one process, each with its own signing key, CACHE_DIR, route table and listeners.
 *
 * A signed playlist is served (200, its bytes, never stored); a segment is a miss, then stored,
 * then a hit with the same bytes; a forged or expired link is refused (403, 410), a cached
 * object included; an object the origin lacks is 404 and not stored. The second edge shares
 * nothing with the first: its own key (the first's links are forged there), its own cache (the
 * first's hit is its miss, and what it stores the first does not have). */
#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "actors/cache_manager.h"
#include "actors/http_listener.h"
#include "proto/edge_token.h"
#include "src/rt/actor.h"
#include "src/rt/metrics.h"
#include "src/rt/runtime.h"
#include "tests/unit/fixture_net.h"
#include "tests/unit/test.h"

#define NLOOPS   2
#define ASSET    "asset_1"
#define SEG_LEN  (200 * 1000 + 17) /* several origin reads, not a multiple of a page */
#define SEG1_LEN 4096

static const char PLAYLIST[] = "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:4\n"
                               "#EXTINF:4.0,\nseg0.ts\n#EXTINF:4.0,\nseg1.ts\n#EXT-X-ENDLIST\n";

/* One edge under test: its key, cache, routes, listeners and port. */
typedef struct edge_under_test {
    const char *key;
    char cache_dir[300];
    edge_keyring kr;
    rd_http_routes *routes;
    rd_actor *listeners[NLOOPS];
    rd_edge *edge;
    int port;
} edge_under_test;

static rd_runtime rt;
static char data_dir[64];
static edge_under_test A = {.key = "test-edge-key-of-edge-a-0123456789abcdef"};
static edge_under_test B = {.key = "test-edge-key-of-edge-b-fedcba9876543210"};

static unsigned char seg_byte(uint64_t i)
{
    return (unsigned char)(i * 13 + i / 1000);
}

/* ---- files ---- */

static int write_file(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (f == NULL)
        return -1;
    size_t n = fwrite(data, 1, len, f);
    return fclose(f) == 0 && n == len ? 0 : -1;
}

/* Objects stored in a cache directory: regular files in its 256 subdirectories (not tmp/). */
static int cached_objects(const edge_under_test *e)
{
    int n = 0;
    for (int x = 0; x < 256; x++) {
        char path[400];
        snprintf(path, sizeof(path), "%s/%02x", e->cache_dir, x);
        DIR *d = opendir(path);
        for (struct dirent *de; d != NULL && (de = readdir(d)) != NULL;)
            if (de->d_name[0] != '.')
                n++;
        if (d != NULL)
            closedir(d);
    }
    return n;
}

/* A store completes after the response (write, then rename): waits up to 2 s for `want`. */
static int wait_objects(const edge_under_test *e, int want)
{
    int n = cached_objects(e);
    for (int i = 0; i < 200 && n != want; i++) {
        usleep(10000);
        n = cached_objects(e);
    }
    return n;
}

/* ---- HTTP ---- */

/* GET `target` from the edge with Connection: close, read to the end. 0, or -1 (no answer). */
static int get(const edge_under_test *e, const char *target, response *out)
{
    memset(out, 0, sizeof(*out));
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)e->port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    struct timeval tv = {.tv_sec = 5};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
        close(fd);
        return -1;
    }
    char req[1024];
    int n = snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: edge\r\nConnection: close\r\n\r\n",
                     target);
    if (write(fd, req, (size_t)n) != n) {
        close(fd);
        return -1;
    }
    int r = response_read(fd, out);
    close(fd);
    return r;
}

static int has_header(const response *r, const char *line)
{
    return strstr(r->head, line) != NULL;
}

/* The target of a link to `path` signed by `signer`'s key, valid until now + `ttl` seconds. */
static void link_to(const edge_under_test *signer, const char *path, int64_t ttl, char *out,
                    size_t cap)
{
    int64_t exp = (int64_t)time(NULL) + ttl;
    char sig[EDGE_TOKEN_SIG_LEN + 1];
    if (edge_token_sign(&signer->kr, exp, ASSET, strlen(ASSET), sig) < 0)
        sig[0] = '\0';
    snprintf(out, cap, "/hls/%lld/%s/%s/%s", (long long)exp, sig, ASSET, path);
}

static int segment_matches(const response *r)
{
    if (r->len != SEG_LEN)
        return 0;
    for (size_t i = 0; i < SEG_LEN; i++)
        if ((unsigned char)r->body[i] != seg_byte(i))
            return 0;
    return 1;
}

/* ---- tests ---- */

TEST(signed_playlist_is_served_and_not_stored)
{
    char target[512];
    link_to(&A, "index.m3u8", 3600, target, sizeof(target));
    response r;
    CHECK_EQ_INT(get(&A, target, &r), 0);
    CHECK_EQ_INT(r.status, 200);
    CHECK(has_header(&r, "Cache-Control: no-cache\r\n"));
    CHECK_EQ_INT(r.len, strlen(PLAYLIST));
    CHECK(r.body != NULL && strcmp(r.body, PLAYLIST) == 0);
    response_free(&r);
    usleep(50000);
    CHECK_EQ_INT(cached_objects(&A), 0); /* fetched every time, never on disk */
}

TEST(segment_is_a_miss_then_a_hit)
{
    char target[512];
    link_to(&A, "seg0.ts", 3600, target, sizeof(target));
    response r;
    CHECK_EQ_INT(get(&A, target, &r), 0);
    CHECK_EQ_INT(r.status, 200);
    CHECK(has_header(&r, "X-Cache: MISS\r\n"));
    CHECK(segment_matches(&r));
    response_free(&r);
    CHECK_EQ_INT(wait_objects(&A, 1), 1); /* stored once complete */

    CHECK_EQ_INT(get(&A, target, &r), 0);
    CHECK_EQ_INT(r.status, 200);
    CHECK(has_header(&r, "X-Cache: HIT\r\n"));
    CHECK(segment_matches(&r));
    response_free(&r);
    CHECK_EQ_INT(cached_objects(&A), 1);
}

TEST(forged_and_expired_links_are_refused)
{
    char target[512];
    response r;
    /* A forged signature, on an object that is cached: the token is checked first. */
    link_to(&A, "seg0.ts", 3600, target, sizeof(target));
    char *sig = strstr(target, "/hls/");
    sig = strchr(sig + 5, '/') + 1;
    sig[0] = sig[0] == '0' ? '1' : '0';
    CHECK_EQ_INT(get(&A, target, &r), 0);
    CHECK_EQ_INT(r.status, 403);
    CHECK(strstr(r.body, "\"bad_signature\"") != NULL);
    CHECK(!has_header(&r, "X-Cache:"));
    response_free(&r);

    /* A good signature whose expiry has passed. */
    link_to(&A, "seg0.ts", -10, target, sizeof(target));
    CHECK_EQ_INT(get(&A, target, &r), 0);
    CHECK_EQ_INT(r.status, 410);
    CHECK(strstr(r.body, "\"link_expired\"") != NULL);
    response_free(&r);

    /* No signature at all. */
    CHECK_EQ_INT(get(&A, "/hls/99999999999/nope/" ASSET "/seg0.ts", &r), 0);
    CHECK_EQ_INT(r.status, 403);
    response_free(&r);
}

TEST(unknown_object_is_404_and_not_stored)
{
    char target[512];
    link_to(&A, "seg9.ts", 3600, target, sizeof(target));
    response r;
    CHECK_EQ_INT(get(&A, target, &r), 0);
    CHECK_EQ_INT(r.status, 404);
    CHECK(strstr(r.body, "\"not_found\"") != NULL);
    CHECK(has_header(&r, "Cache-Control: no-store\r\n"));
    response_free(&r);
    usleep(50000);
    CHECK_EQ_INT(cached_objects(&A), 1); /* still only seg0.ts */
}

TEST(two_edges_share_nothing)
{
    char target[512];
    response r;
    /* B's key is its own: a link A signed is forged at B. */
    link_to(&A, "seg0.ts", 3600, target, sizeof(target));
    CHECK_EQ_INT(get(&B, target, &r), 0);
    CHECK_EQ_INT(r.status, 403);
    response_free(&r);

    /* A's hit is B's miss: B has its own cache, empty until it stores the segment itself. */
    CHECK_EQ_INT(cached_objects(&B), 0);
    link_to(&B, "seg0.ts", 3600, target, sizeof(target));
    CHECK_EQ_INT(get(&B, target, &r), 0);
    CHECK_EQ_INT(r.status, 200);
    CHECK(has_header(&r, "X-Cache: MISS\r\n"));
    CHECK(segment_matches(&r));
    response_free(&r);
    CHECK_EQ_INT(wait_objects(&B, 1), 1);
    CHECK_EQ_INT(get(&B, target, &r), 0);
    CHECK(has_header(&r, "X-Cache: HIT\r\n"));
    response_free(&r);

    /* What B stores, A does not have. */
    link_to(&B, "seg1.ts", 3600, target, sizeof(target));
    CHECK_EQ_INT(get(&B, target, &r), 0);
    CHECK_EQ_INT(r.status, 200);
    CHECK_EQ_INT(r.len, SEG1_LEN);
    response_free(&r);
    CHECK_EQ_INT(wait_objects(&B, 2), 2);
    CHECK_EQ_INT(cached_objects(&A), 1);
    link_to(&A, "seg1.ts", 3600, target, sizeof(target));
    CHECK_EQ_INT(get(&A, target, &r), 0);
    CHECK_EQ_INT(r.status, 200);
    CHECK(has_header(&r, "X-Cache: MISS\r\n"));
    response_free(&r);
    CHECK_EQ_INT(wait_objects(&A, 2), 2);
}

/* ---- setup ---- */

static int make_asset(void)
{
    char path[256];
    const char *dirs[] = {"blobs", "blobs/previews", "blobs/previews/" ASSET,
                          "blobs/previews/" ASSET "/hls"};
    for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
        snprintf(path, sizeof(path), "%s/%s", data_dir, dirs[i]);
        if (mkdir(path, 0700) < 0)
            return -1;
    }
    static unsigned char seg[SEG_LEN];
    for (size_t i = 0; i < SEG_LEN; i++)
        seg[i] = seg_byte(i);
    snprintf(path, sizeof(path), "%s/blobs/previews/%s/hls/index.m3u8", data_dir, ASSET);
    if (write_file(path, PLAYLIST, strlen(PLAYLIST)) < 0)
        return -1;
    snprintf(path, sizeof(path), "%s/blobs/previews/%s/hls/seg0.ts", data_dir, ASSET);
    if (write_file(path, seg, SEG_LEN) < 0)
        return -1;
    snprintf(path, sizeof(path), "%s/blobs/previews/%s/hls/seg1.ts", data_dir, ASSET);
    return write_file(path, seg, SEG1_LEN);
}

/* Starts edge `e` on the runtime: its config (the shared DATA_DIR as origin, its own key and
 * CACHE_DIR), its route table and one listener per loop on a port of its own. */
static int start_edge(edge_under_test *e, const char *name)
{
    snprintf(e->cache_dir, sizeof(e->cache_dir), "%s/cache-%s", data_dir, name);
    edge_keyring_init(&e->kr, e->key, strlen(e->key), NULL, 0, 0);
    rd_config cfg = {0};
    cfg.data_dir = data_dir;
    cfg.cache_dir = e->cache_dir;
    cfg.cache_max_bytes = 64 << 20;
    cfg.s3_bucket_previews = "previews";
    cfg.edge_signing_key = e->key;
    cfg.edge_link_ttl_sec = 3600;
    cfg.fetch_timeout_ms = 5000;
    cfg.playback_allowed_origins = "";
    char err[256];
    if (http_routes_create(&e->routes) < 0)
        return -1;
    int r = cache_start(&cfg, rt.loops, rt.nloops, NULL, e->routes, &e->edge, err, sizeof(err));
    if (r < 0) {
        printf("  cache_start (%s): %s\n", name, err);
        return r;
    }
    rd_http_config hc = {.header_timeout_ms = 2000, .idle_timeout_ms = 2000, .max_conns = 64};
    char addr[32];
    e->port = free_port();
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", e->port);
    for (int i = 0; i < rt.nloops && r == 0; i++)
        r = http_listener_start(rt.loops[i], rt.nloops, addr, &hc, e->routes, &e->listeners[i]);
    if (r < 0)
        printf("  listener (%s): %s\n", name, strerror(-r));
    return r;
}

static void free_edge(edge_under_test *e)
{
    for (int i = 0; i < NLOOPS; i++)
        http_listener_free(e->listeners[i]);
    cache_free(e->edge);
    http_routes_destroy(e->routes);
    edge_keyring_clear(&e->kr);
}

int main(void)
{
    rt_block_signals();
    snprintf(data_dir, sizeof(data_dir), "/tmp/reeld-test-edge-XXXXXX");
    if (mkdtemp(data_dir) == NULL || make_asset() < 0) {
        printf("not ok setup: cannot make %s\n0 passed, 1 failed\n", data_dir);
        return 1;
    }
    if (rt_start(&rt, NLOOPS) < 0) {
        rm_rf(data_dir);
        printf("skip: no io_uring here\n0 passed, 0 failed\n");
        return 0;
    }
    metrics_init(rt.loops, rt.nloops);
    int ok = start_edge(&A, "a") == 0 && start_edge(&B, "b") == 0;
    if (ok) {
        RUN(signed_playlist_is_served_and_not_stored);
        RUN(segment_is_a_miss_then_a_hit);
        RUN(forged_and_expired_links_are_refused);
        RUN(unknown_object_is_404_and_not_stored);
        RUN(two_edges_share_nothing);
    } else {
        test_failed++;
        printf("not ok start\n");
    }
    rt_stop(&rt, 1000000000ull);
    free_edge(&A);
    free_edge(&B);
    actor_free_all();
    metrics_free_all();
    rm_rf(data_dir);
    return test_summary();
}
