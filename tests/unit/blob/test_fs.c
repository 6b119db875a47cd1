/* src/blob/fs: key and bucket validation (traversal in every spelling), atomic puts, ranges,
 * copy, delete, list, symlinks refused, and the presigned check the /blob/ routes will call;
 * src/blob/blob.h over it. */
#include <errno.h>
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

static blobfs *open_store(void)
{
    snprintf(dir, sizeof(dir), "/tmp/reeld-blobfs-XXXXXX");
    if (mkdtemp(dir) == NULL)
        return NULL;
    blobfs *fs;
    char err[256];
    return blobfs_open(&fs, dir, err, sizeof(err)) == 0 ? fs : NULL;
}

static void remove_store(blobfs *fs)
{
    blobfs_close(fs);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    CHECK_EQ_INT(system(cmd), 0);
}

static int count_tmp(void)
{
    char cmd[160];
    snprintf(cmd, sizeof(cmd), "test -z \"$(ls -A %s/blobs.tmp)\"", dir);
    return system(cmd) == 0 ? 0 : 1;
}

static int count_keys(void *ctx, const char *key, int64_t size)
{
    (void)key;
    *(int64_t *)ctx += size;
    return 0;
}

TEST(round_trip)
{
    blobfs *fs = open_store();
    CHECK(fs != NULL);
    if (fs == NULL)
        return;
    blob_info info;
    CHECK_EQ_INT(blobfs_put(fs, "staging", "a/b/c.mp4", "hello world", 11, "video/mp4", &info), 0);
    CHECK_EQ_STR(info.etag, "\"5eb63bbbe01eeed093cb22bb8f5acdc3\""); /* md5("hello world") */
    memset(&info, 0, sizeof(info));
    CHECK_EQ_INT(blobfs_head(fs, "staging", "a/b/c.mp4", &info), 0);
    CHECK_EQ_INT(info.size, 11);
    CHECK_EQ_STR(info.content_type, "video/mp4");
    CHECK_EQ_STR(info.etag, "\"5eb63bbbe01eeed093cb22bb8f5acdc3\"");

    /* The reader the blob server streams a GET from. */
    char buf[16];
    int fd = blobfs_open_read(fs, "staging", "a/b/c.mp4", &info);
    CHECK(fd >= 0);
    if (fd >= 0) {
        CHECK_EQ_INT(pread(fd, buf, sizeof(buf), 6), 5);
        CHECK(memcmp(buf, "world", 5) == 0);
        close(fd);
    }
    CHECK_EQ_INT(info.size, 11);
    CHECK_EQ_STR(info.content_type, "video/mp4");

    int64_t total = 0;
    CHECK_EQ_INT(blobfs_put(fs, "staging", "a/d", "xy", 2, NULL, NULL), 0);
    CHECK_EQ_INT(blobfs_list(fs, "staging", "a/", count_keys, &total), 0);
    CHECK_EQ_INT(total, 13);
    /* A prefix is a string prefix, as S3's: "a" takes "ab/..." too, "a/" does not; the walk
     * skips the directories that cannot lead to it. */
    CHECK_EQ_INT(blobfs_put(fs, "staging", "ab/e", "12345", 5, NULL, NULL), 0);
    CHECK_EQ_INT(blobfs_put(fs, "staging", "b/f", "1234567", 7, NULL, NULL), 0);
    total = 0;
    CHECK_EQ_INT(blobfs_list(fs, "staging", "a/", count_keys, &total), 0);
    CHECK_EQ_INT(total, 13);
    total = 0;
    CHECK_EQ_INT(blobfs_list(fs, "staging", "a", count_keys, &total), 0);
    CHECK_EQ_INT(total, 18);
    total = 0;
    CHECK_EQ_INT(blobfs_list(fs, "staging", "a/b/", count_keys, &total), 0);
    CHECK_EQ_INT(total, 11);
    total = 0;
    CHECK_EQ_INT(blobfs_list(fs, "staging", "", count_keys, &total), 0);
    CHECK_EQ_INT(total, 25);

    /* overwrite is atomic and leaves no temp file */
    CHECK_EQ_INT(blobfs_put(fs, "staging", "a/d", "xyz", 3, NULL, &info), 0);
    CHECK_EQ_STR(info.content_type, "application/octet-stream");
    CHECK_EQ_INT(count_tmp(), 0);
    CHECK_EQ_INT(blobfs_head(fs, "staging", "a/b/nope.mp4", &info), -ENOENT);
    CHECK_EQ_INT(blobfs_head(fs, "nobucket", "x", &info), -ENOENT);
    remove_store(fs);
}

/* The longest keys: 1024 bytes in segments of NAME_MAX store and read back; one segment
 * longer than that is refused up front (-EINVAL), not at the rename. */
TEST(longest_keys)
{
    blobfs *fs = open_store();
    CHECK(fs != NULL);
    if (fs == NULL)
        return;
    char key[BLOBFS_MAX_KEY + 1];
    memset(key, 'k', BLOBFS_MAX_KEY);
    key[BLOBFS_MAX_KEY] = '\0';
    /* Segments of 255, 255, 255, 254 and 1 bytes. */
    key[255] = key[511] = key[767] = key[1022] = '/';
    blob_info info;
    CHECK_EQ_INT(blobfs_put(fs, "staging", key, "x", 1, NULL, &info), 0);
    CHECK_EQ_INT(blobfs_head(fs, "staging", key, &info), 0);
    CHECK_EQ_INT(info.size, 1);
    memset(key, 'k', BLOBFS_MAX_KEY);
    blobfs_writer w;
    CHECK_EQ_INT(blobfs_write_begin(fs, "staging", key, NULL, &w), -EINVAL);
    CHECK_EQ_INT(blobfs_put(fs, "staging", key, "x", 1, NULL, &info), -EINVAL);
    CHECK_EQ_INT(count_tmp(), 0);
    remove_store(fs);
}

TEST(writer_abort_leaves_nothing)
{
    blobfs *fs = open_store();
    if (fs == NULL)
        SKIP("no temp dir");
    blobfs_writer w;
    CHECK_EQ_INT(blobfs_write_begin(fs, "staging", "partial", "video/mp4", &w), 0);
    CHECK_EQ_INT(blobfs_write(&w, "abc", 3), 0);
    blobfs_write_abort(&w);
    blobfs_write_abort(&w); /* twice is a no-op */
    blob_info info;
    CHECK_EQ_INT(blobfs_head(fs, "staging", "partial", &info), -ENOENT);
    CHECK_EQ_INT(count_tmp(), 0);
    CHECK_EQ_INT(blobfs_write_begin(fs, "staging", "x", "bad\r\ntype", &w), -EINVAL);
    remove_store(fs);
}

TEST(traversal_refused_everywhere)
{
    blobfs *fs = open_store();
    if (fs == NULL)
        SKIP("no temp dir");
    blob_info info;
    CHECK_EQ_INT(blobfs_put(fs, "staging", "../escape", "x", 1, NULL, NULL), -EINVAL);
    CHECK_EQ_INT(blobfs_put(fs, "..", "escape", "x", 1, NULL, NULL), -EINVAL);
    CHECK_EQ_INT(blobfs_head(fs, "staging", "/etc/passwd", &info), -EINVAL);
    CHECK_EQ_INT(blobfs_open_read(fs, "staging", "a/../../x", &info), -EINVAL);
    int64_t total = 0;
    CHECK_EQ_INT(blobfs_list(fs, "..", "", count_keys, &total), -EINVAL);

    /* a symlink planted inside the tree is not followed out of it */
    char link[160];
    CHECK_EQ_INT(blobfs_put(fs, "staging", "real", "x", 1, NULL, NULL), 0);
    snprintf(link, sizeof(link), "%s/blobs/staging/passwd", dir);
    CHECK_EQ_INT(symlink("/etc/passwd", link), 0);
    CHECK_EQ_INT(blobfs_head(fs, "staging", "passwd", &info), -ENOENT);
    snprintf(link, sizeof(link), "%s/blobs/staging/etc", dir);
    CHECK_EQ_INT(symlink("/etc", link), 0);
    CHECK_EQ_INT(blobfs_open_read(fs, "staging", "etc/passwd", &info), -ENOENT);

    /* nor written or deleted through: a directory symlink to a place outside the tree */
    char out[160], outfile[200];
    struct stat st;
    snprintf(out, sizeof(out), "%s/outside", dir);
    CHECK_EQ_INT(mkdir(out, 0700), 0);
    snprintf(outfile, sizeof(outfile), "%s/victim", out);
    FILE *f = fopen(outfile, "w");
    CHECK(f != NULL);
    if (f != NULL)
        fclose(f);
    snprintf(link, sizeof(link), "%s/blobs/staging/out", dir);
    CHECK_EQ_INT(symlink(out, link), 0);
    CHECK(blobfs_put(fs, "staging", "out/planted", "x", 1, NULL, NULL) < 0);
    snprintf(outfile, sizeof(outfile), "%s/planted", out);
    CHECK(stat(outfile, &st) < 0);
    /* nor listed through */
    total = 0;
    CHECK_EQ_INT(blobfs_list(fs, "staging", "out/", count_keys, &total), 0);
    CHECK_EQ_INT(total, 0);
    remove_store(fs);
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
    RUN(round_trip);
    RUN(longest_keys);
    RUN(writer_abort_leaves_nothing);
    RUN(traversal_refused_everywhere);
    RUN(presigned_check);
    RUN(blob_interface_over_fs);
    return test_summary();
}
