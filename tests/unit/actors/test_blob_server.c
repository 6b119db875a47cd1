/* The embedded object store's HTTP face (actors/blob_server.c) through real HTTP on loopback,
 * wired as `reeld serve` wires it in embedded mode: the fs blob store in a temporary
 * REELD_DATA_DIR, the blob server on its own thread, one listener; the URLs are signed here with
 * src/urlsign.h from the same settings (so with the same embedded key pair).
 *
 * A presigned PUT stores the body (a presigned GET returns the same bytes and ETag, a ranged GET
 * the range with 206, an unsatisfiable range is 416); HEAD answers the length without a body; an
 * expired, not yet valid or tampered signature, a URL used with another method or on another
 * key is refused with S3's XML error (403); a key that is not a safe path is refused (400)
 * without touching the file system; a body longer or shorter than the signed length is refused
 * (403), one above REELD_MAX_UPLOAD_BYTES too (413), a chunked one asks for a length (411); and
 * nothing is left behind (no object, no temp file) after a refused PUT or one whose client
 * closes mid-body. */
#include <arpa/inet.h>
#include <bearssl.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "actors/blob_server.h"
#include "actors/http_listener.h"
#include "src/blob/fs.h"
#include "src/rt/actor.h"
#include "src/rt/config.h"
#include "src/rt/log.h"
#include "src/rt/metrics.h"
#include "src/rt/runtime.h"
#include "src/urlsign.h"
#include "tests/unit/fixture_net.h"
#include "tests/unit/test.h"

#define BUCKET     "staging"
#define OBJ_LEN    (200 * 1000 + 7) /* several 64 KiB GET parts, several body pieces */
#define MAX_UPLOAD (1 << 20)        /* REELD_MAX_UPLOAD_BYTES here */

static rd_runtime rt;
static rd_config cfg;
static urlsign signer;
static char data_dir[64];
static char host[64]; /* 127.0.0.1:port: what the URLs are signed for */
static int port;
static unsigned char obj[OBJ_LEN];

/* ---- files ---- */

/* Entries of DATA_DIR/`sub` (not . and ..); 0 when it does not exist. */
static int entries(const char *sub)
{
    char path[256];
    snprintf(path, sizeof(path), "%s/%s", data_dir, sub);
    DIR *d = opendir(path);
    int n = 0;
    for (struct dirent *de; d != NULL && (de = readdir(d)) != NULL;)
        n += strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0;
    if (d != NULL)
        closedir(d);
    return n;
}

/* Temp files of uploads in progress (DATA_DIR/blobs.tmp). */
static int temp_files(void)
{
    return entries("blobs.tmp");
}

/* Waits up to 2 s for temp_files() to be `want`; returns the last count. */
static int wait_temp_files(int want)
{
    int n = temp_files();
    for (int i = 0; i < 200 && n != want; i++) {
        usleep(10000);
        n = temp_files();
    }
    return n;
}

/* 1 when DATA_DIR/`rel` exists. */
static int exists(const char *rel)
{
    char path[512];
    struct stat st;
    snprintf(path, sizeof(path), "%s/%s", data_dir, rel);
    return lstat(path, &st) == 0;
}

/* ---- HTTP ---- */

/* `method` `target` with Host: the signed host, extra header lines `headers` (each ending in
 * CRLF; may be NULL), Content-Length `clen` when >= 0, then `blen` bytes of `body`. Returns
 * the status, or -1 when no response came. */
static int exchange(const char *method, const char *target, const char *headers, long long clen,
                    const void *body, size_t blen, response *out)
{
    memset(out, 0, sizeof(*out));
    out->status = -1;
    char req[8192], len[48] = "";
    if (clen >= 0)
        snprintf(len, sizeof(len), "Content-Length: %lld\r\n", clen);
    int n =
        snprintf(req, sizeof(req), "%s %s HTTP/1.1\r\nHost: %s\r\n%s%sConnection: close\r\n\r\n",
                 method, target, host, headers ? headers : "", len);
    int fd = dial_ip(NULL, port);
    if (fd < 0)
        return -1;
    if (send_all(fd, req, (size_t)n) == 0 && blen > 0)
        send_all(fd, body, blen); /* a refusal may come (and the connection end) before it all */
    int r = response_read(fd, out);
    close(fd);
    return r == 0 ? out->status : -1;
}

static int has_header(const response *r, const char *line)
{
    return strcasestr(r->head, line) != NULL;
}

/* The value of header `name` into out ("" when absent). */
static void header_value(const response *r, const char *name, char *out, size_t cap)
{
    size_t n = strlen(name);
    out[0] = '\0';
    for (const char *p = strstr(r->head, "\r\n"); p != NULL; p = strstr(p + 2, "\r\n"))
        if (strncasecmp(p + 2, name, n) == 0 && p[2 + n] == ':') {
            const char *v = p + 3 + n;
            while (*v == ' ')
                v++;
            snprintf(out, cap, "%.*s", (int)strcspn(v, "\r"), v);
            return;
        }
}

/* An S3 XML error document with `code`, served as application/xml. */
static int is_s3_error(const response *r, const char *code)
{
    char want[128];
    snprintf(want, sizeof(want), "<Error><Code>%s</Code><Message>", code);
    return r->body != NULL &&
           strncmp(r->body, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n", 39) == 0 &&
           strstr(r->body, want) != NULL && strstr(r->body, "</Message></Error>") != NULL &&
           has_header(r, "\r\nContent-Type: application/xml\r\n");
}

/* The target (path and query) of a URL signed for `method` on BUCKET/`key`, valid for
 * `expires` seconds from now + `skew`; `length` >= 0 signs the Content-Length. */
static void sign_at(const char *method, const char *key, int64_t skew, int64_t expires,
                    int64_t length, char *out, size_t cap)
{
    char url[4096];
    int n = urlsign_url(&signer, method, BUCKET, key, NULL, 0, (int64_t)time(NULL) + skew, expires,
                        length, url, sizeof(url));
    CHECK(n > 0);
    const char *origin = strstr(url, "://");
    const char *path = origin ? strchr(origin + 3, '/') : NULL;
    CHECK(path != NULL && strncmp(path, "/blob/" BUCKET "/", 14) == 0);
    snprintf(out, cap, "%s", path ? path : "/");
}

static void sign(const char *method, const char *key, int64_t length, char *out, size_t cap)
{
    sign_at(method, key, 0, 600, length, out, cap);
}

/* PUTs `len` bytes of `data` to BUCKET/key through a URL signed for exactly that length;
 * returns the status. */
static int put_object(const char *key, const void *data, size_t len, response *r)
{
    char target[4096];
    sign("PUT", key, (int64_t)len, target, sizeof(target));
    return exchange("PUT", target, "Content-Type: video/mp4\r\n", (long long)len, data, len, r);
}

/* ---- the cases ---- */

TEST(presigned_put_then_get_returns_the_same_bytes)
{
    response r;
    char target[4096], etag[40], got[128];
    md5_etag(obj, OBJ_LEN, etag);
    CHECK_EQ_INT(put_object("videos/one.mp4", obj, OBJ_LEN, &r), 200);
    header_value(&r, "ETag", got, sizeof(got));
    CHECK_EQ_STR(got, etag);
    response_free(&r);
    CHECK(exists("blobs/" BUCKET "/videos/one.mp4"));
    CHECK_EQ_INT(temp_files(), 0);

    sign("GET", "videos/one.mp4", -1, target, sizeof(target));
    CHECK_EQ_INT(exchange("GET", target, NULL, -1, NULL, 0, &r), 200);
    CHECK_EQ_INT(r.len, OBJ_LEN);
    CHECK(r.len == OBJ_LEN && memcmp(r.body, obj, OBJ_LEN) == 0);
    header_value(&r, "ETag", got, sizeof(got));
    CHECK_EQ_STR(got, etag);
    header_value(&r, "Content-Type", got, sizeof(got));
    CHECK_EQ_STR(got, "video/mp4");
    header_value(&r, "Content-Length", got, sizeof(got));
    CHECK_EQ_INT(atoll(got), OBJ_LEN);
    CHECK(has_header(&r, "\r\nAccept-Ranges: bytes\r\n"));
    response_free(&r);

    /* A PUT again replaces the object whole. */
    static const char small[] = "a shorter second version";
    CHECK_EQ_INT(put_object("videos/one.mp4", small, sizeof(small) - 1, &r), 200);
    response_free(&r);
    CHECK_EQ_INT(exchange("GET", target, NULL, -1, NULL, 0, &r), 200);
    CHECK_EQ_INT(r.len, sizeof(small) - 1);
    CHECK_EQ_STR(r.body, small);
    response_free(&r);
    CHECK_EQ_INT(put_object("videos/one.mp4", obj, OBJ_LEN, &r), 200);
    response_free(&r);
}

TEST(ranged_get_is_206_with_the_range)
{
    response r;
    char target[4096], got[128], want[128];
    sign("GET", "videos/one.mp4", -1, target, sizeof(target));
    static const struct {
        const char *range;
        size_t start, end; /* [start, end) */
    } cases[] = {
        {"bytes=1000-1999", 1000, 2000},
        {"bytes=65530-131080", 65530, 131081}, /* across GET parts */
        {"bytes=-10", OBJ_LEN - 10, OBJ_LEN},
        {"bytes=199000-", 199000, OBJ_LEN},
        {"bytes=199990-999999", 199990, OBJ_LEN}, /* the end is clamped */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char hdr[64];
        snprintf(hdr, sizeof(hdr), "Range: %s\r\n", cases[i].range);
        CHECK_EQ_INT(exchange("GET", target, hdr, -1, NULL, 0, &r), 206);
        size_t n = cases[i].end - cases[i].start;
        CHECK_EQ_INT(r.len, n);
        CHECK(r.len == n && memcmp(r.body, obj + cases[i].start, n) == 0);
        snprintf(want, sizeof(want), "bytes %zu-%zu/%d", cases[i].start, cases[i].end - 1, OBJ_LEN);
        header_value(&r, "Content-Range", got, sizeof(got));
        CHECK_EQ_STR(got, want);
        response_free(&r);
    }
    /* Past the end: 416; not a byte range: the whole object. */
    CHECK_EQ_INT(exchange("GET", target, "Range: bytes=300000-\r\n", -1, NULL, 0, &r), 416);
    CHECK(is_s3_error(&r, "InvalidRange"));
    response_free(&r);
    CHECK_EQ_INT(exchange("GET", target, "Range: items=0-1\r\n", -1, NULL, 0, &r), 200);
    CHECK_EQ_INT(r.len, OBJ_LEN);
    response_free(&r);
    /* Positions are digits only (RFC 9110): a sign or a second dash makes the header invalid,
     * and an invalid Range is ignored. */
    static const char *const bad[] = {"bytes=10--1", "bytes=-+5", "bytes=+3-4", "bytes=1-0"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char h[64];
        snprintf(h, sizeof(h), "Range: %s\r\n", bad[i]);
        CHECK_EQ_INT(exchange("GET", target, h, -1, NULL, 0, &r), 200);
        CHECK_EQ_INT(r.len, OBJ_LEN);
        response_free(&r);
    }
}

TEST(head_answers_the_length_without_a_body)
{
    response r;
    char target[4096], got[128], etag[40];
    md5_etag(obj, OBJ_LEN, etag);
    sign("HEAD", "videos/one.mp4", -1, target, sizeof(target));
    CHECK_EQ_INT(exchange("HEAD", target, NULL, -1, NULL, 0, &r), 200);
    CHECK_EQ_INT(r.len, 0);
    header_value(&r, "Content-Length", got, sizeof(got));
    CHECK_EQ_INT(atoll(got), OBJ_LEN);
    header_value(&r, "ETag", got, sizeof(got));
    CHECK_EQ_STR(got, etag);
    header_value(&r, "Content-Type", got, sizeof(got));
    CHECK_EQ_STR(got, "video/mp4");
    response_free(&r);
    /* A missing key: 404 NoSuchKey (HEAD and GET). */
    sign("HEAD", "videos/none.mp4", -1, target, sizeof(target));
    CHECK_EQ_INT(exchange("HEAD", target, NULL, -1, NULL, 0, &r), 404);
    CHECK_EQ_INT(r.len, 0);
    response_free(&r);
    sign("GET", "videos/none.mp4", -1, target, sizeof(target));
    CHECK_EQ_INT(exchange("GET", target, NULL, -1, NULL, 0, &r), 404);
    CHECK(is_s3_error(&r, "NoSuchKey"));
    response_free(&r);
}

/* `target` with the last hex digit of its X-Amz-Signature changed. */
static void tamper_signature(char *target)
{
    char *sig = strstr(target, "X-Amz-Signature=");
    CHECK(sig != NULL);
    if (sig == NULL)
        return;
    char *last = sig + strcspn(sig, "&") - 1;
    *last = *last == '0' ? '1' : '0';
}

TEST(bad_signatures_are_403_with_an_s3_error)
{
    response r;
    char target[4096], tampered[4200];
    /* Expired an hour ago. */
    sign_at("GET", "videos/one.mp4", -7200, 3600, -1, target, sizeof(target));
    CHECK_EQ_INT(exchange("GET", target, NULL, -1, NULL, 0, &r), 403);
    CHECK(is_s3_error(&r, "AccessDenied"));
    CHECK(strstr(r.body, "Request has expired") != NULL);
    response_free(&r);
    /* Signed for an hour from now: not valid yet. */
    sign_at("GET", "videos/one.mp4", 3600, 600, -1, target, sizeof(target));
    CHECK_EQ_INT(exchange("GET", target, NULL, -1, NULL, 0, &r), 403);
    CHECK(is_s3_error(&r, "AccessDenied"));
    response_free(&r);
    /* One digit of the signature changed. */
    sign("GET", "videos/one.mp4", -1, target, sizeof(target));
    snprintf(tampered, sizeof(tampered), "%s", target);
    tamper_signature(tampered);
    CHECK_EQ_INT(exchange("GET", tampered, NULL, -1, NULL, 0, &r), 403);
    CHECK(is_s3_error(&r, "SignatureDoesNotMatch"));
    CHECK(r.body != NULL && memmem(r.body, r.len, obj, 16) == NULL);
    response_free(&r);
    /* A parameter added to the query. */
    snprintf(tampered, sizeof(tampered), "%s&reeld-org=other", target);
    CHECK_EQ_INT(exchange("GET", tampered, NULL, -1, NULL, 0, &r), 403);
    CHECK(is_s3_error(&r, "SignatureDoesNotMatch"));
    response_free(&r);
    /* The same query on another key. */
    const char *q = strchr(target, '?');
    snprintf(tampered, sizeof(tampered), "/blob/" BUCKET "/videos/two.mp4%s", q ? q : "");
    CHECK_EQ_INT(exchange("GET", tampered, NULL, -1, NULL, 0, &r), 403);
    CHECK(is_s3_error(&r, "SignatureDoesNotMatch"));
    response_free(&r);
    /* A GET URL used for HEAD, and for DELETE (every method is routed here: 403, not 405). */
    CHECK_EQ_INT(exchange("HEAD", target, NULL, -1, NULL, 0, &r), 403);
    response_free(&r);
    CHECK_EQ_INT(exchange("DELETE", target, NULL, -1, NULL, 0, &r), 403);
    CHECK(is_s3_error(&r, "SignatureDoesNotMatch"));
    response_free(&r);
    /* No signature at all. */
    CHECK_EQ_INT(exchange("GET", "/blob/" BUCKET "/videos/one.mp4", NULL, -1, NULL, 0, &r), 400);
    CHECK(is_s3_error(&r, "InvalidRequest"));
    response_free(&r);
    /* The object is still there, whole. */
    CHECK_EQ_INT(exchange("GET", target, NULL, -1, NULL, 0, &r), 200);
    CHECK(r.len == OBJ_LEN && memcmp(r.body, obj, OBJ_LEN) == 0);
    response_free(&r);
}

TEST(a_tampered_put_stores_nothing)
{
    response r;
    char target[4096];
    sign("PUT", "videos/tampered.mp4", 4096, target, sizeof(target));
    tamper_signature(target);
    CHECK_EQ_INT(exchange("PUT", target, "Content-Type: video/mp4\r\n", 4096, obj, 4096, &r), 403);
    CHECK(is_s3_error(&r, "SignatureDoesNotMatch"));
    response_free(&r);
    /* Signed for another key. */
    sign("PUT", "videos/other.mp4", 4096, target, sizeof(target));
    char moved[4200];
    snprintf(moved, sizeof(moved), "/blob/" BUCKET "/videos/tampered.mp4%s", strchr(target, '?'));
    CHECK_EQ_INT(exchange("PUT", moved, "Content-Type: video/mp4\r\n", 4096, obj, 4096, &r), 403);
    response_free(&r);
    CHECK(!exists("blobs/" BUCKET "/videos/tampered.mp4"));
    CHECK(!exists("blobs/" BUCKET "/videos/other.mp4"));
    CHECK_EQ_INT(wait_temp_files(0), 0);
}

TEST(keys_that_are_not_safe_paths_are_400)
{
    /* Each signed as it is sent, so the name is the only thing wrong. */
    static const char *const keys[] = {
        "../escape",   "a/../../escape", "a/./b", "a//b",   "a/b/",
        "a/%2e%2e/..", "%2e%2e/escape",  ".",     "a/../b",
    };
    response r;
    char target[4096];
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        sign("PUT", keys[i], 5, target, sizeof(target));
        int st = exchange("PUT", target, NULL, 5, "hello", 5, &r);
        if (st != 400)
            printf("  key '%s': %d %s\n", keys[i], st, r.body ? r.body : "");
        CHECK_EQ_INT(st, 400);
        CHECK(is_s3_error(&r, "InvalidRequest"));
        response_free(&r);
        sign("GET", keys[i], -1, target, sizeof(target));
        CHECK_EQ_INT(exchange("GET", target, NULL, -1, NULL, 0, &r), 400);
        CHECK(is_s3_error(&r, "InvalidRequest"));
        response_free(&r);
    }
    /* Dots sent percent-encoded, with a signature made for them as they decode. */
    sign("PUT", "../escape", 5, target, sizeof(target));
    char encoded[4200];
    snprintf(encoded, sizeof(encoded), "/blob/" BUCKET "/%%2E%%2E/escape%s", strchr(target, '?'));
    CHECK_EQ_INT(exchange("PUT", encoded, NULL, 5, "hello", 5, &r), 400);
    CHECK(is_s3_error(&r, "InvalidRequest"));
    response_free(&r);
    /* A bucket that is not one. */
    char url[4096];
    CHECK(urlsign_url(&signer, "PUT", "..", "escape", NULL, 0, (int64_t)time(NULL), 600, 5, url,
                      sizeof(url)) > 0);
    const char *path = strstr(url, "/blob/");
    CHECK_EQ_INT(exchange("PUT", path ? path : "/", NULL, 5, "hello", 5, &r), 400);
    response_free(&r);
    /* Nothing was written anywhere. */
    CHECK(!exists("escape"));
    CHECK(!exists("blobs/escape"));
    CHECK(!exists("blobs/" BUCKET "/escape"));
    CHECK(!exists("blobs/" BUCKET "/b"));
    CHECK(!exists("blobs/" BUCKET "/a"));
    CHECK_EQ_INT(entries("blobs"), 1); /* BUCKET only */
    CHECK_EQ_INT(wait_temp_files(0), 0);
}

TEST(a_body_of_another_length_than_signed_is_refused)
{
    response r;
    char target[4096];
    sign("PUT", "videos/len.mp4", 1000, target, sizeof(target));
    /* One byte more than signed. */
    CHECK_EQ_INT(exchange("PUT", target, "Content-Type: video/mp4\r\n", 1001, obj, 1001, &r), 403);
    CHECK(is_s3_error(&r, "SignatureDoesNotMatch"));
    response_free(&r);
    /* Many more. */
    CHECK_EQ_INT(exchange("PUT", target, "Content-Type: video/mp4\r\n", 100000, obj, 100000, &r),
                 403);
    CHECK(is_s3_error(&r, "SignatureDoesNotMatch"));
    response_free(&r);
    /* One less. */
    CHECK_EQ_INT(exchange("PUT", target, "Content-Type: video/mp4\r\n", 999, obj, 999, &r), 403);
    response_free(&r);
    /* Chunked, so of no announced length: the listener asks for one. */
    static const char chunk[] = "3e8\r\n"; /* 1000 */
    CHECK_EQ_INT(exchange("PUT", target,
                          "Content-Type: video/mp4\r\nTransfer-Encoding: chunked\r\n", -1, chunk,
                          sizeof(chunk) - 1, &r),
                 411);
    response_free(&r);
    CHECK(!exists("blobs/" BUCKET "/videos/len.mp4"));
    CHECK_EQ_INT(wait_temp_files(0), 0);
    /* Above REELD_MAX_UPLOAD_BYTES, even signed for it: 413 before any byte is read. */
    sign("PUT", "videos/big.mp4", MAX_UPLOAD + 1, target, sizeof(target));
    CHECK_EQ_INT(
        exchange("PUT", target, "Content-Type: video/mp4\r\n", MAX_UPLOAD + 1, NULL, 0, &r), 413);
    response_free(&r);
    CHECK(!exists("blobs/" BUCKET "/videos/big.mp4"));
    /* The exact length is taken. */
    CHECK_EQ_INT(exchange("PUT", target, "Content-Type: video/mp4\r\n", 1000, obj, 1000, &r), 403);
    response_free(&r);
    sign("PUT", "videos/len.mp4", 1000, target, sizeof(target));
    CHECK_EQ_INT(exchange("PUT", target, "Content-Type: video/mp4\r\n", 1000, obj, 1000, &r), 200);
    response_free(&r);
    CHECK(exists("blobs/" BUCKET "/videos/len.mp4"));
}

TEST(a_put_cut_off_mid_body_leaves_nothing)
{
    char target[4096], req[8192];
    sign("PUT", "videos/cut.mp4", OBJ_LEN, target, sizeof(target));
    int n = snprintf(req, sizeof(req),
                     "PUT %s HTTP/1.1\r\nHost: %s\r\nContent-Type: video/mp4\r\n"
                     "Content-Length: %d\r\n\r\n",
                     target, host, OBJ_LEN);
    int fd = dial_ip(NULL, port);
    CHECK(fd >= 0);
    if (fd < 0)
        return;
    CHECK_EQ_INT(send_all(fd, req, (size_t)n), 0);
    CHECK_EQ_INT(send_all(fd, obj, OBJ_LEN / 2), 0);
    /* The upload is under way: its temp file exists. */
    CHECK_EQ_INT(wait_temp_files(1), 1);
    close(fd);
    /* The client is gone: the temp file goes, no object appears. */
    CHECK_EQ_INT(wait_temp_files(0), 0);
    CHECK(!exists("blobs/" BUCKET "/videos/cut.mp4"));
    CHECK(!exists("blobs.meta/" BUCKET "/videos/cut.mp4"));

    /* Cut off after the head alone. */
    fd = dial_ip(NULL, port);
    CHECK(fd >= 0);
    if (fd < 0)
        return;
    CHECK_EQ_INT(send_all(fd, req, (size_t)n), 0);
    CHECK_EQ_INT(wait_temp_files(1), 1);
    close(fd);
    CHECK_EQ_INT(wait_temp_files(0), 0);
    CHECK(!exists("blobs/" BUCKET "/videos/cut.mp4"));

    /* The same URL still works whole afterwards (the slot was given back). */
    response r;
    CHECK_EQ_INT(exchange("PUT", target, "Content-Type: video/mp4\r\n", OBJ_LEN, obj, OBJ_LEN, &r),
                 200);
    response_free(&r);
    CHECK(exists("blobs/" BUCKET "/videos/cut.mp4"));
    CHECK_EQ_INT(temp_files(), 0);
}

TEST(a_put_over_an_object_cut_off_keeps_the_old_one)
{
    char target[4096], req[8192];
    sign("PUT", "videos/one.mp4", 50000, target, sizeof(target));
    int n = snprintf(req, sizeof(req),
                     "PUT %s HTTP/1.1\r\nHost: %s\r\nContent-Type: video/mp4\r\n"
                     "Content-Length: 50000\r\n\r\n",
                     target, host);
    int fd = dial_ip(NULL, port);
    CHECK(fd >= 0);
    if (fd < 0)
        return;
    static unsigned char other[20000];
    memset(other, 'x', sizeof(other));
    CHECK_EQ_INT(send_all(fd, req, (size_t)n), 0);
    CHECK_EQ_INT(send_all(fd, other, sizeof(other)), 0);
    CHECK_EQ_INT(wait_temp_files(1), 1);
    close(fd);
    CHECK_EQ_INT(wait_temp_files(0), 0);
    response r;
    sign("GET", "videos/one.mp4", -1, target, sizeof(target));
    CHECK_EQ_INT(exchange("GET", target, NULL, -1, NULL, 0, &r), 200);
    CHECK(r.len == OBJ_LEN && memcmp(r.body, obj, OBJ_LEN) == 0);
    response_free(&r);
}

TEST(a_key_that_clashes_with_a_prefix_is_409_and_leaves_nothing)
{
    response r;
    /* "videos" holds objects, and "videos/one.mp4" is one. */
    CHECK_EQ_INT(put_object("videos", "x", 1, &r), 409);
    CHECK(is_s3_error(&r, "KeyConflict"));
    response_free(&r);
    CHECK_EQ_INT(put_object("videos/one.mp4/inner", "x", 1, &r), 409);
    CHECK(is_s3_error(&r, "KeyConflict"));
    response_free(&r);
    CHECK_EQ_INT(wait_temp_files(0), 0);
    char target[4096];
    sign("GET", "videos/one.mp4", -1, target, sizeof(target));
    CHECK_EQ_INT(exchange("GET", target, NULL, -1, NULL, 0, &r), 200);
    CHECK(r.len == OBJ_LEN && memcmp(r.body, obj, OBJ_LEN) == 0);
    response_free(&r);
}

/* Starts a PUT of OBJ_LEN bytes to `key` and sends `sent` of them; the connection, or -1. */
static int put_started(const char *key, size_t sent)
{
    char target[4096], req[8192];
    sign("PUT", key, OBJ_LEN, target, sizeof(target));
    int n = snprintf(req, sizeof(req),
                     "PUT %s HTTP/1.1\r\nHost: %s\r\nContent-Type: video/mp4\r\n"
                     "Content-Length: %d\r\nConnection: close\r\n\r\n",
                     target, host, OBJ_LEN);
    int fd = dial_ip(NULL, port);
    if (fd >= 0 && (send_all(fd, req, (size_t)n) < 0 || send_all(fd, obj, sent) < 0)) {
        close(fd);
        fd = -1;
    }
    return fd;
}

TEST(uploads_in_progress_per_client_are_bounded_and_given_back)
{
    /* REELD_UPLOAD_SLOTS_PER_CLIENT is 2 here. */
    int a = put_started("videos/slot-a.mp4", 1000);
    int b = put_started("videos/slot-b.mp4", 1000);
    CHECK(a >= 0 && b >= 0);
    CHECK_EQ_INT(wait_temp_files(2), 2);
    response r;
    CHECK_EQ_INT(put_object("videos/slot-c.mp4", obj, 1000, &r), 503);
    CHECK(is_s3_error(&r, "SlowDown"));
    response_free(&r);
    CHECK_EQ_INT(temp_files(), 2);
    /* One client goes away: its slot and temp file go, and another upload gets the slot. */
    close(a);
    CHECK_EQ_INT(wait_temp_files(1), 1);
    CHECK_EQ_INT(put_object("videos/slot-c.mp4", obj, 1000, &r), 200);
    response_free(&r);
    /* The other upload finishes as started. */
    CHECK_EQ_INT(send_all(b, obj + 1000, OBJ_LEN - 1000), 0);
    CHECK_EQ_INT(response_read(b, &r), 0);
    close(b);
    CHECK_EQ_INT(r.status, 200);
    response_free(&r);
    char target[4096];
    sign("GET", "videos/slot-b.mp4", -1, target, sizeof(target));
    CHECK_EQ_INT(exchange("GET", target, NULL, -1, NULL, 0, &r), 200);
    CHECK(r.len == OBJ_LEN && memcmp(r.body, obj, OBJ_LEN) == 0);
    response_free(&r);
    CHECK(!exists("blobs/" BUCKET "/videos/slot-a.mp4"));
    CHECK_EQ_INT(temp_files(), 0);
}

/* The store's PUT failing mid-body (here the file-size limit: its temp file's write gets
 * EFBIG) while the body is still coming, with the pipe full: the upload answers 500 and gives
 * its slot back (a write waiting for room in the pipe used to wait for good, holding the slot).
 * Twice, then a third upload from the same client (2 slots) still goes. */
TEST(a_store_that_fails_mid_body_answers_and_gives_the_slot_back)
{
    static unsigned char big[MAX_UPLOAD - 1];
    for (size_t i = 0; i < sizeof(big); i++)
        big[i] = (unsigned char)(i * 7);
    struct rlimit was;
    if (getrlimit(RLIMIT_FSIZE, &was) != 0) {
        CHECK(!"getrlimit");
        return;
    }
    struct rlimit small = {.rlim_cur = 64 * 1024, .rlim_max = was.rlim_max};
    if (setrlimit(RLIMIT_FSIZE, &small) != 0) {
        CHECK(!"setrlimit");
        return;
    }
    response r;
    for (int i = 0; i < 2; i++) {
        char key[64];
        snprintf(key, sizeof(key), "videos/toolarge-%d.mp4", i);
        int st = put_object(key, big, sizeof(big), &r);
        CHECK_EQ_INT(st, 500);
        CHECK(is_s3_error(&r, "InternalError"));
        response_free(&r);
    }
    setrlimit(RLIMIT_FSIZE, &was);
    CHECK_EQ_INT(put_object("videos/after.mp4", obj, 1000, &r), 200);
    response_free(&r);
    CHECK(!exists("blobs/" BUCKET "/videos/toolarge-0.mp4"));
    CHECK_EQ_INT(wait_temp_files(0), 0);
}

TEST(no_io_uring)
{
    SKIP("no io_uring here: the runtime did not start");
}

/* ---- setup ---- */

int main(void)
{
    snprintf(data_dir, sizeof(data_dir), "/tmp/reeld-test-blob-server-XXXXXX");
    if (mkdtemp(data_dir) == NULL) {
        printf("not ok setup: mkdtemp\n0 passed, 1 failed\n");
        return 1;
    }
    for (size_t i = 0; i < OBJ_LEN; i++)
        obj[i] = (unsigned char)(i * 31 + i / 977);
    port = free_port();
    snprintf(host, sizeof(host), "127.0.0.1:%d", port);
    char max[32];
    snprintf(max, sizeof(max), "%d", MAX_UPLOAD);
    setenv("REELD_DATA_DIR", data_dir, 1);
    setenv("REELD_LISTEN", host, 1);
    setenv("REELD_MAX_UPLOAD_BYTES", max, 1);
    setenv("REELD_UPLOAD_SLOTS_PER_CLIENT", "2", 1);
    setenv("REELD_UPLOAD_SLOTS_PER_ORG", "64", 1);
    setenv("REELD_LOG", "error", 1);
    static const char *const unset[] = {
        "S3_ENDPOINT",     "S3_ACCESS_KEY_ID", "S3_SECRET_ACCESS_KEY", "REELD_PUBLIC_URL",
        "ALLOWED_ORIGINS", "REELD_CORES",      "REELD_TLS_CERT",       "REELD_TLS_KEY"};
    for (size_t i = 0; i < sizeof(unset) / sizeof(unset[0]); i++)
        unsetenv(unset[i]);
    char *argv[] = {"test_blob_server", NULL};
    char err[512];
    if (config_load(&cfg, 1, argv, err, sizeof(err)) < 0) {
        printf("not ok setup: %s\n0 passed, 1 failed\n", err);
        rm_rf(data_dir);
        return 1;
    }
    log_set_level(cfg.log_level);
    rt_block_signals();
    signal(SIGXFSZ, SIG_IGN); /* a write past RLIMIT_FSIZE is EFBIG, not the end of the test */
    if (rt_start(&rt, 1) < 0) {
        RUN(no_io_uring);
        rm_rf(data_dir);
        return test_summary();
    }
    metrics_init(rt.loops, rt.nloops);
    blob_aio *store = NULL;
    blob_server *blob = NULL;
    rd_actor *listener = NULL;
    rd_http_routes *routes = NULL;
    http_routes_create(&routes);
    int r = blob_aio_open_fs(cfg.data_dir, rt.loops[0], &store, err, sizeof(err));
    if (r == 0)
        r = blob_server_start(store, rt.loops[0], &cfg, routes, &blob, err, sizeof(err));
    /* After the server: it made the embedded key pair in DATA_DIR; the same pair signs here. */
    if (r == 0)
        r = urlsign_init(&signer, &cfg, err, sizeof(err));
    rd_http_config hc = {.header_timeout_ms = 2000, .idle_timeout_ms = 2000, .max_conns = 64};
    if (r == 0 && (r = http_listener_start(rt.loops[0], 1, host, &hc, routes, &listener)) < 0)
        snprintf(err, sizeof(err), "listener on %s: %s", host, strerror(-r));
    if (r == 0) {
        RUN(presigned_put_then_get_returns_the_same_bytes);
        RUN(ranged_get_is_206_with_the_range);
        RUN(head_answers_the_length_without_a_body);
        RUN(bad_signatures_are_403_with_an_s3_error);
        RUN(a_tampered_put_stores_nothing);
        RUN(keys_that_are_not_safe_paths_are_400);
        RUN(a_body_of_another_length_than_signed_is_refused);
        RUN(a_put_cut_off_mid_body_leaves_nothing);
        RUN(a_put_over_an_object_cut_off_keeps_the_old_one);
        RUN(a_key_that_clashes_with_a_prefix_is_409_and_leaves_nothing);
        RUN(uploads_in_progress_per_client_are_bounded_and_given_back);
        RUN(a_store_that_fails_mid_body_answers_and_gives_the_slot_back);
    } else {
        test_failed++;
        printf("not ok setup: %s\n", err);
    }
    rt_halt(&rt, 1000000000ull);
    rt_free(&rt);
    blob_server_free(blob);
    blob_aio_close(store);
    http_listener_free(listener);
    actor_free_all();
    metrics_free_all();
    http_routes_destroy(routes);
    urlsign_clear(&signer);
    rm_rf(data_dir);
    return test_summary();
}
