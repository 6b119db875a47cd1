/* src/blob/fs: key and bucket validation (traversal in every spelling); blobfs_make_layout's layout
 * (its three directories made, one that is a file refused with its sentence); the walk the
 * asynchronous LIST runs on a thread of its own (blobfs_list_at over the tree the asynchronous
 * store wrote, with files planted in the layout where the store could not make them): a prefix
 * as S3's, directories that are not keys, sizes as they are now, a missing bucket (-ENOENT) or
 * a refused one (-EINVAL), fn's result ending it, the longest keys and names too long to be
 * keys, symlinks neither followed nor listed; the presigned check the /blob/ routes call;
 * src/blob/blob.h over the fs backend (tests/unit/fixture_blob.h), which writes the objects
 * here. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "src/blob/blob.h"
#include "src/blob/fs.h"
#include "tests/unit/fixture_blob.h"
#include "tests/unit/test.h"

static int valid(const char *k)
{
    return blobfs_valid_key(k, strlen(k));
}

TEST(keys)
{
    CHECK(valid("a"));
    CHECK(valid("uploads/2026/11/video one.mp4"));
    CHECK(valid("a..b/c.d/..e"));
    CHECK(valid("100%"));
    CHECK(!valid(""));
    CHECK(!valid("/etc/passwd"));
    CHECK(!valid(".."));
    CHECK(!valid("../x"));
    CHECK(!valid("a/../../x"));
    CHECK(!valid("a/.."));
    CHECK(!valid("./a"));
    CHECK(!valid("a/./b"));
    CHECK(!valid("a//b"));
    CHECK(!valid("a/"));
    CHECK(!valid("%2e%2e/x"));
    CHECK(!valid("a/%2E%2e/b"));
    CHECK(!valid("%2fetc%2fpasswd"));
    CHECK(!valid("a%00b"));
    CHECK(!blobfs_valid_key("a\0b", 3));
    char big[BLOBFS_MAX_KEY + 2];
    memset(big, 'k', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    CHECK(!valid(big));
    /* A segment is a file name: NAME_MAX bytes at most (else the put failed at rename, 500). */
    big[BLOBFS_MAX_KEY] = '\0';
    CHECK(!valid(big));
    big[BLOBFS_MAX_SEGMENT] = '\0';
    CHECK(valid(big));
    big[BLOBFS_MAX_SEGMENT] = 'k';
    big[BLOBFS_MAX_SEGMENT + 1] = '\0';
    CHECK(!valid(big));
    /* 1024 bytes in segments of 255 or less is fine. */
    memset(big, 'k', BLOBFS_MAX_KEY);
    big[BLOBFS_MAX_KEY] = '\0';
    for (int i = 200; i < BLOBFS_MAX_KEY; i += 201)
        big[i] = '/';
    CHECK(valid(big));
}

TEST(buckets)
{
    CHECK(blobfs_valid_bucket("staging"));
    CHECK(blobfs_valid_bucket("my.bucket-1"));
    CHECK(!blobfs_valid_bucket("ab"));
    CHECK(!blobfs_valid_bucket(".."));
    CHECK(!blobfs_valid_bucket("a..b"));
    CHECK(!blobfs_valid_bucket("-abc"));
    CHECK(!blobfs_valid_bucket("Upper"));
    CHECK(!blobfs_valid_bucket("a/b"));
}

static char dir[64];

TEST(open_makes_the_layout)
{
    snprintf(dir, sizeof(dir), "/tmp/reeld-blobfs-XXXXXX");
    NEED(mkdtemp(dir) != NULL);
    char data[128], path[192], err[256] = "";
    struct stat st;
    /* A DATA_DIR that does not exist yet: made, with the three directories in it. */
    snprintf(data, sizeof(data), "%s/data", dir);
    CHECK_EQ_INT(blobfs_make_layout(data, err, sizeof(err)), 0);
    static const char *const dirs[] = {"blobs", "blobs.meta", "blobs.tmp"};
    for (size_t i = 0; i < 3; i++) {
        snprintf(path, sizeof(path), "%s/%s", data, dirs[i]);
        CHECK(stat(path, &st) == 0 && S_ISDIR(st.st_mode) && (st.st_mode & 077) == 0);
    }
    /* Again over what is there: nothing to make, still 0. */
    CHECK_EQ_INT(blobfs_make_layout(data, err, sizeof(err)), 0);
    /* One of them a file: refused with a sentence, not left for a later open to trip on. */
    snprintf(data, sizeof(data), "%s/other", dir);
    CHECK_EQ_INT(mkdir(data, 0700), 0);
    snprintf(path, sizeof(path), "%s/blobs.tmp", data);
    int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    CHECK(fd >= 0);
    if (fd >= 0)
        close(fd);
    CHECK_EQ_INT(blobfs_make_layout(data, err, sizeof(err)), -ENOTDIR);
    CHECK(strstr(err, "REELD_DATA_DIR: cannot use ") == err);
    CHECK(strstr(err, "/blobs.tmp for objects") != NULL); /* names the one it cannot use */
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    CHECK_EQ_INT(system(cmd), 0);
}

/* ---- The walk (blobfs_list_at) over a store's tree --------------------------------------- */

static blob_fixture fx;
static int objects_fd = -1; /* DATA_DIR/blobs, opened as the asynchronous store opens it */

/* A temporary DATA_DIR with the fs store on it (the blocking face over the asynchronous store)
 * and its objects' tree; NULL when there is none. */
static blob_store *open_store(void)
{
    snprintf(dir, sizeof(dir), "/tmp/reeld-blobfs-XXXXXX");
    if (mkdtemp(dir) == NULL)
        return NULL;
    char err[256] = "", path[128];
    if (blob_fixture_open(&fx, dir, err, sizeof(err)) != 0)
        return NULL;
    snprintf(path, sizeof(path), "%s/blobs", dir);
    objects_fd = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
    return objects_fd >= 0 ? fx.b : NULL;
}

static void remove_store(void)
{
    if (objects_fd >= 0)
        close(objects_fd);
    objects_fd = -1;
    blob_fixture_close(&fx);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    CHECK_EQ_INT(system(cmd), 0);
}

/* Stores `text` as staging/key through the asynchronous store. */
static int put(const char *key, const char *text)
{
    char msg[256];
    return blob_put(fx.b, "staging", key, text, strlen(text), NULL, NULL, msg, sizeof(msg));
}

static int count_tmp(void)
{
    char cmd[160];
    snprintf(cmd, sizeof(cmd), "test -z \"$(ls -A %s/blobs.tmp)\"", dir);
    return system(cmd) == 0 ? 0 : 1;
}

#define MAX_LISTED 16

typedef struct listing {
    int n;                                      /* keys given */
    int stop_at;                                /* fn returns 7 at the stop_at-th key; 0: never */
    char line[MAX_LISTED][BLOBFS_MAX_KEY + 32]; /* "key size\n" */
} listing;

static listing listed;

static int take(void *ctx, const char *key, int64_t size)
{
    listing *l = ctx;
    if (l->n < MAX_LISTED)
        snprintf(l->line[l->n], sizeof(l->line[0]), "%s %lld\n", key, (long long)size);
    l->n++;
    return l->stop_at > 0 && l->n >= l->stop_at ? 7 : 0;
}

static int line_cmp(const void *a, const void *b)
{
    return strcmp(a, b);
}

/* blobfs_list_at(bucket, prefix) over the store's tree: its result, and in out what it gave,
 * "key size" a line, sorted (the walk's order is the directories'). */
static int list(const char *bucket, const char *prefix, char *out, size_t cap)
{
    memset(&listed, 0, sizeof(listed));
    int r = blobfs_list_at(objects_fd, bucket, prefix, take, &listed);
    int n = listed.n < MAX_LISTED ? listed.n : MAX_LISTED;
    qsort(listed.line, (size_t)n, sizeof(listed.line[0]), line_cmp);
    size_t o = 0;
    out[0] = '\0';
    for (int i = 0; i < n && o < cap; i++)
        o += (size_t)snprintf(out + o, cap - o, "%s", listed.line[i]);
    if (listed.n > n && o < cap)
        snprintf(out + o, cap - o, "and %d more\n", listed.n - n);
    return r;
}

TEST(walk_prefixes)
{
    NEED(open_store() != NULL);
    char got[8192];
    CHECK_EQ_INT(put("a/b/c.mp4", "hello world"), 0);
    CHECK_EQ_INT(put("a/d", "xy"), 0);
    CHECK_EQ_INT(put("ab/e", "12345"), 0);
    CHECK_EQ_INT(put("b/f", "1234567"), 0);
    CHECK_EQ_INT(list("staging", "a/", got, sizeof(got)), 0);
    CHECK_EQ_STR(got, "a/b/c.mp4 11\na/d 2\n");
    /* A prefix is a string prefix, as S3's: "a" takes "ab/..." too, "a/" does not; the walk
     * skips the directories that cannot lead to it. */
    CHECK_EQ_INT(list("staging", "a", got, sizeof(got)), 0);
    CHECK_EQ_STR(got, "a/b/c.mp4 11\na/d 2\nab/e 5\n");
    CHECK_EQ_INT(list("staging", "a/b/", got, sizeof(got)), 0);
    CHECK_EQ_STR(got, "a/b/c.mp4 11\n");
    CHECK_EQ_INT(list("staging", "a/b/c", got, sizeof(got)), 0);
    CHECK_EQ_STR(got, "a/b/c.mp4 11\n");
    CHECK_EQ_INT(list("staging", "a/b/c.mp4", got, sizeof(got)), 0);
    CHECK_EQ_STR(got, "a/b/c.mp4 11\n");
    CHECK_EQ_INT(list("staging", "", got, sizeof(got)), 0);
    CHECK_EQ_STR(got, "a/b/c.mp4 11\na/d 2\nab/e 5\nb/f 7\n");
    CHECK_EQ_INT(list("staging", NULL, got, sizeof(got)), 0);
    CHECK_EQ_STR(got, "a/b/c.mp4 11\na/d 2\nab/e 5\nb/f 7\n");
    /* A directory is not a key, nor is a prefix under which nothing is. */
    CHECK_EQ_INT(list("staging", "a/b", got, sizeof(got)), 0);
    CHECK_EQ_STR(got, "a/b/c.mp4 11\n");
    CHECK_EQ_INT(list("staging", "zzz/", got, sizeof(got)), 0);
    CHECK_EQ_STR(got, "");
    CHECK_EQ_INT(listed.n, 0);

    /* An overwrite lists once, at its new size; a deleted key not at all (its directory, left
     * or not, is no key); no temp file is left to be listed or found. */
    CHECK_EQ_INT(put("a/d", "xyz"), 0);
    char msg[256];
    CHECK_EQ_INT(blob_delete(fx.b, "staging", "b/f", msg, sizeof(msg)), 0);
    CHECK_EQ_INT(list("staging", "", got, sizeof(got)), 0);
    CHECK_EQ_STR(got, "a/b/c.mp4 11\na/d 3\nab/e 5\n");
    CHECK_EQ_INT(count_tmp(), 0);

    /* fn ends the walk: its result is the walk's. */
    memset(&listed, 0, sizeof(listed));
    listed.stop_at = 1;
    CHECK_EQ_INT(blobfs_list_at(objects_fd, "staging", "", take, &listed), 7);
    CHECK_EQ_INT(listed.n, 1);

    /* A bucket never written has no directory: -ENOENT (the LIST says no key); a bucket name
     * refused is refused before any path is built. */
    CHECK_EQ_INT(list("nobucket", "", got, sizeof(got)), -ENOENT);
    CHECK_EQ_STR(got, "");
    static const char *const bad[] = {"..", "ab", "Upper", "a/b", "-abc", "a..b", ""};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        CHECK_EQ_INT(list(bad[i], "", got, sizeof(got)), -EINVAL);
        CHECK_EQ_STR(got, "");
    }
    remove_store();
}

/* The longest keys: 1024 bytes in segments of NAME_MAX store and read back; one segment longer
 * than that is refused up front (-EINVAL), not at the rename. The walk gives a 1023-byte key,
 * and never a name too long to be a key (planted in the layout: the store makes none). */
TEST(walk_longest_keys)
{
    NEED(open_store() != NULL);
    char msg[256], got[8192], want[BLOBFS_MAX_KEY + 32];
    char key[BLOBFS_MAX_KEY + 1];
    memset(key, 'k', BLOBFS_MAX_KEY);
    key[BLOBFS_MAX_KEY] = '\0';
    /* Segments of 255, 255, 255, 254 and 1 bytes. */
    key[255] = key[511] = key[767] = key[1022] = '/';
    CHECK_EQ_INT(put(key, "x"), 0);
    blob_info info;
    CHECK_EQ_INT(blob_head(fx.b, "staging", key, &info, msg, sizeof(msg)), 0);
    CHECK_EQ_INT(info.size, 1);
    CHECK_EQ_INT(list("staging", "k", got, sizeof(got)), 0); /* and listed: the longest key */
    snprintf(want, sizeof(want), "%s 1\n", key);
    CHECK_EQ_STR(got, want);
    memset(key, 'k', BLOBFS_MAX_KEY);
    CHECK_EQ_INT(put(key, "x"), -EINVAL);
    CHECK_EQ_INT(count_tmp(), 0);

    /* 1023 bytes: segments of 255, 255, 255 and 255. */
    memset(key, 'm', BLOBFS_MAX_KEY);
    key[255] = key[511] = key[767] = '/';
    key[1023] = '\0';
    CHECK_EQ_INT(put(key, "yz"), 0);
    CHECK_EQ_INT(list("staging", "m", got, sizeof(got)), 0);
    snprintf(want, sizeof(want), "%s 2\n", key);
    CHECK_EQ_STR(got, want);

    /* 1025 bytes: directories of 255 bytes four deep and a file "x" in them. */
    char path[1400];
    int n = snprintf(path, sizeof(path), "%s/blobs/staging", dir);
    for (int d = 0; d < 4; d++) {
        path[n++] = '/';
        memset(path + n, 'n', 255);
        n += 255;
        path[n] = '\0';
        CHECK_EQ_INT(mkdir(path, 0700), 0);
    }
    snprintf(path + n, sizeof(path) - (size_t)n, "/x");
    int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    CHECK(fd >= 0);
    if (fd >= 0)
        close(fd);
    CHECK_EQ_INT(list("staging", "n", got, sizeof(got)), 0);
    CHECK_EQ_STR(got, "");
    remove_store();
}

/* A symlink planted inside the tree is neither followed out of it nor listed: not a file's, not
 * a directory's, not a bucket's. The store's own reads and writes through such links are
 * test_aio's (fs_symlinks_not_followed, fs_symlinked_dir_not_written_through). */
TEST(walk_skips_symlinks)
{
    NEED(open_store() != NULL);
    char got[8192], link[160], out[160], victim[200];
    CHECK_EQ_INT(put("real", "x"), 0);
    snprintf(out, sizeof(out), "%s/outside", dir);
    CHECK_EQ_INT(mkdir(out, 0700), 0);
    snprintf(victim, sizeof(victim), "%s/victim", out);
    FILE *f = fopen(victim, "w");
    CHECK(f != NULL);
    if (f != NULL) {
        fputs("outside", f);
        fclose(f);
    }
    snprintf(link, sizeof(link), "%s/blobs/staging/passwd", dir);
    CHECK_EQ_INT(symlink("/etc/passwd", link), 0);
    snprintf(link, sizeof(link), "%s/blobs/staging/victim", dir);
    CHECK_EQ_INT(symlink(victim, link), 0);
    snprintf(link, sizeof(link), "%s/blobs/staging/etc", dir);
    CHECK_EQ_INT(symlink("/etc", link), 0);
    snprintf(link, sizeof(link), "%s/blobs/staging/out", dir);
    CHECK_EQ_INT(symlink(out, link), 0);
    CHECK_EQ_INT(list("staging", "", got, sizeof(got)), 0);
    CHECK_EQ_STR(got, "real 1\n");
    CHECK_EQ_INT(list("staging", "out/", got, sizeof(got)), 0);
    CHECK_EQ_STR(got, "");
    CHECK_EQ_INT(list("staging", "etc/", got, sizeof(got)), 0);
    CHECK_EQ_STR(got, "");
    /* A prefix is compared, never made a path: "../" leads nowhere. */
    CHECK_EQ_INT(list("staging", "../", got, sizeof(got)), 0);
    CHECK_EQ_STR(got, "");
    /* A bucket that is a link to a directory outside: refused, nothing listed. */
    snprintf(link, sizeof(link), "%s/blobs/linked", dir);
    CHECK_EQ_INT(symlink(out, link), 0);
    CHECK(list("linked", "", got, sizeof(got)) < 0);
    CHECK_EQ_STR(got, "");
    remove_store();
}

static const sigv4_credentials cred = {"AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
                                       "us-east-1", "s3"};

/* Presigns `path` for GET at `now` and checks it back as the HTTP route would. */
static int check_url(const char *sign_path, const char *recv_path, int64_t now, char *bucket,
                     char *key)
{
    sigv4_key_cache cache = {0};
    sigv4_pair host = {"host", "127.0.0.1:8080"};
    sigv4_request req = {"GET", sign_path, NULL, 0, &host, 1, NULL};
    char url[4096];
    int n = sigv4_presign(&cache, &cred, now, 600, &req, url, sizeof(url));
    if (n < 0)
        return n;
    const char *q = strchr(url, '?');
    sigv4_incoming in = {.method = "GET",
                         .method_len = 3,
                         .path = recv_path ? recv_path : url,
                         .path_len = recv_path ? strlen(recv_path) : (size_t)(q - url),
                         .query = q + 1,
                         .query_len = strlen(q + 1),
                         .host = "127.0.0.1:8080",
                         .host_len = 14};
    int r = blobfs_presigned_check(&cache, &cred, now + 5, &in, bucket, key);
    sigv4_key_cache_clear(&cache);
    return r;
}

TEST(presigned_check)
{
    char bucket[BLOBFS_MAX_BUCKET + 1], key[BLOBFS_MAX_KEY + 1];
    int64_t now = 1795000000;
    CHECK_EQ_INT(check_url("/blob/staging/up/my video.mp4", NULL, now, bucket, key), 0);
    CHECK_EQ_STR(bucket, "staging");
    CHECK_EQ_STR(key, "up/my video.mp4");
    /* a path other than the one signed */
    CHECK_EQ_INT(check_url("/blob/staging/a", "/blob/staging/b", now, bucket, key), -EACCES);
    /* traversal, encoded or not, never reaches the signature check */
    CHECK_EQ_INT(check_url("/blob/staging/../x", NULL, now, bucket, key), -EINVAL);
    CHECK_EQ_INT(check_url("/blob/staging/a", "/blob/staging/%2e%2e/x", now, bucket, key), -EINVAL);
    CHECK_EQ_INT(check_url("/blob/staging/a", "/blob/staging/%252e%252e/x", now, bucket, key),
                 -EINVAL);
    CHECK_EQ_INT(check_url("/blob/staging/a", "/blob/staging/a%00b", now, bucket, key), -EINVAL);
    CHECK_EQ_INT(check_url("/blob/staging/a", "/blob/staging", now, bucket, key), -EINVAL);
    CHECK_EQ_INT(check_url("/blob/staging/a", "/other/staging/a", now, bucket, key), -EINVAL);
    CHECK_EQ_INT(check_url("/blob/staging/a", "/blob/%2e%2e/a", now, bucket, key), -EINVAL);
}

TEST(blob_interface_over_fs)
{
    snprintf(dir, sizeof(dir), "/tmp/reeld-blob-XXXXXX");
    CHECK(mkdtemp(dir) != NULL);
    blob_fixture f;
    char err[256] = "", msg[256];
    if (blob_fixture_open(&f, dir, err, sizeof(err)) != 0) {
        CHECK(!"a blob store");
        return;
    }
    blob_store *b = f.b;
    CHECK_EQ_STR(blob_kind(b), "fs");
    blob_info info;
    CHECK_EQ_INT(blob_put(b, "staging", "k", "abc", 3, "text/plain", &info, msg, sizeof(msg)), 0);
    CHECK_EQ_INT(
        blob_copy(b, "staging", "k", -1, "masters", "k", 30, NULL, &info, msg, sizeof(msg)), 0);
    CHECK_EQ_INT(blob_head(b, "masters", "k", &info, msg, sizeof(msg)), 0);
    CHECK_EQ_INT(info.size, 3);
    CHECK_EQ_INT(blob_head(b, "masters", "nope", &info, msg, sizeof(msg)), -ENOENT);
    CHECK_EQ_STR(msg, "masters/nope: no such object.");
    CHECK_EQ_INT(blob_put(b, "staging", "../x", "a", 1, NULL, NULL, msg, sizeof(msg)), -EINVAL);
    CHECK_EQ_STR(msg, "PUT staging/../x: the bucket or key was refused.");
    /* No client multipart uploads, no retention: said, not faked. */
    CHECK_EQ_INT(blob_has_uploads(b), 0);
    char id[64];
    CHECK_EQ_INT(blob_upload_start(b, "staging", "k", NULL, id, sizeof(id), msg, sizeof(msg)),
                 -ENOTSUP);
    CHECK_EQ_STR(msg, "multipart upload staging/k: the store has no such operation.");
    CHECK_EQ_INT(blob_upload_complete(b, "staging", "k", "u", NULL, 0, msg, sizeof(msg)), -ENOTSUP);
    CHECK_EQ_INT(blob_upload_abort(b, "staging", "k", "u", msg, sizeof(msg)), 0);
    CHECK_EQ_INT(blob_lock_enabled(b, "masters", msg, sizeof(msg)), -ENOTSUP);
    int64_t until = -1;
    CHECK_EQ_INT(blob_delete_unless_retained(b, "masters", "k", &until, msg, sizeof(msg)), 0);
    CHECK_EQ_INT(until, 0);
    CHECK_EQ_INT(blob_head(b, "masters", "k", &info, msg, sizeof(msg)), -ENOENT);
    blob_fixture_close(&f);
    blob_close(NULL);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    CHECK_EQ_INT(system(cmd), 0);
}

int main(void)
{
    RUN(keys);
    RUN(buckets);
    RUN(open_makes_the_layout);
    RUN(walk_prefixes);
    RUN(walk_longest_keys);
    RUN(walk_skips_symlinks);
    RUN(presigned_check);
    RUN(blob_interface_over_fs);
    return test_summary();
}
