/* The embedded blob backend's shared part. See fs.h.
 *
 * The walk opens the bucket with openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS) from the objects
 * directory and each directory under it with O_NOFOLLOW, and takes only regular files: a symlink
 * planted inside the tree is neither followed nor listed. */
#include "src/blob/fs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "proto/http1.h"

#define ROOT_MAX 2048 /* a directory's path (mkdir_p copies it into PATH_MAX bytes) */

int blobfs_valid_bucket(const char *b)
{
    size_t n = strlen(b);
    if (n < 3 || n > BLOBFS_MAX_BUCKET || strstr(b, "..") != NULL)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = b[i];
        int alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
        if (!alnum && !((c == '.' || c == '-') && i > 0 && i < n - 1))
            return 0;
    }
    return 1;
}

static int hexval(char c)
{
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

static int valid_segments(const char *k, size_t len)
{
    if (len == 0 || len > BLOBFS_MAX_KEY || memchr(k, '\0', len) != NULL || k[0] == '/' ||
        k[len - 1] == '/')
        return 0;
    size_t b = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i < len && k[i] != '/')
            continue;
        size_t sl = i - b;
        if (sl == 0 || (sl == 1 && k[b] == '.') || (sl == 2 && k[b] == '.' && k[b + 1] == '.'))
            return 0;
        if (sl > BLOBFS_MAX_SEGMENT) /* no file can have that name: refused here, not at rename */
            return 0;
        b = i + 1;
    }
    return 1;
}

int blobfs_valid_key(const char *key, size_t len)
{
    if (!valid_segments(key, len))
        return 0;
    if (memchr(key, '%', len) == NULL)
        return 1;
    char dec[BLOBFS_MAX_KEY];
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        int h, l;
        if (key[i] == '%' && i + 2 < len && (h = hexval(key[i + 1])) >= 0 &&
            (l = hexval(key[i + 2])) >= 0) {
            dec[n++] = (char)(h * 16 + l);
            i += 2;
        } else {
            dec[n++] = key[i];
        }
    }
    return valid_segments(dec, n);
}

static int mkdir_p(const char *path)
{
    char p[PATH_MAX];
    snprintf(p, sizeof(p), "%s", path);
    for (char *s = p + 1; *s; s++) {
        if (*s != '/')
            continue;
        *s = '\0';
        if (mkdir(p, 0700) < 0 && errno != EEXIST)
            return -errno;
        *s = '/';
    }
    if (mkdir(p, 0700) < 0 && errno != EEXIST)
        return -errno;
    return 0;
}

/* 0 when `path` opens as a directory, else -errno (-ENOTDIR for a file of that name). */
static int is_dir(const char *path)
{
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    close(fd);
    return 0;
}

int blobfs_make_layout(const char *data_dir, char *err, size_t errlen)
{
    static const char *const names[] = {"blobs", "blobs.meta", "blobs.tmp"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        char path[ROOT_MAX];
        int n = snprintf(path, sizeof(path), "%s/%s", data_dir, names[i]);
        int r = n < 0 || (size_t)n >= sizeof(path) ? -ENAMETOOLONG : mkdir_p(path);
        if (r == 0)
            r = is_dir(path); /* a file of that name is not a directory to use */
        if (r < 0) {
            snprintf(err, errlen, "REELD_DATA_DIR: cannot use %s/%s for objects (%s)", data_dir,
                     names[i], strerror(-r));
            return r;
        }
    }
    return 0;
}

static int open_beneath(int dirfd, const char *rel, int flags)
{
    struct open_how how = {.flags = (uint64_t)(flags | O_CLOEXEC | O_NOFOLLOW),
                           .resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS};
    long fd = syscall(SYS_openat2, dirfd, rel, &how, sizeof(how));
    return fd < 0 ? -errno : (int)fd;
}

static int walk(int dir, char *key, size_t klen, const char *prefix,
                int (*fn)(void *ctx, const char *key, int64_t size), void *ctx)
{
    DIR *d = fdopendir(dir);
    if (d == NULL) {
        close(dir);
        return -errno;
    }
    int r = 0;
    struct dirent *e;
    while (r == 0 && (e = readdir(d)) != NULL) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        size_t nl = strlen(e->d_name);
        if (klen + nl > BLOBFS_MAX_KEY) /* no key is this long */
            continue;
        memcpy(key + klen, e->d_name, nl + 1);
        struct stat st;
        if (fstatat(dir, e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
            continue;
        if (S_ISDIR(st.st_mode)) {
            if (klen + nl + 2 > BLOBFS_MAX_KEY) /* no key fits under it: "dir/" and a byte */
                continue;
            /* Only directories on the way to the prefix, or under it: listing one asset's
             * objects opens its directory, not the whole bucket. */
            key[klen + nl] = '/';
            key[klen + nl + 1] = '\0';
            size_t kl = klen + nl + 1, pl = strlen(prefix);
            if (strncmp(key, prefix, kl < pl ? kl : pl) != 0)
                continue;
            int sub = openat(dir, e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (sub < 0)
                continue;
            r = walk(sub, key, klen + nl + 1, prefix, fn, ctx);
        } else if (S_ISREG(st.st_mode) && strncmp(key, prefix, strlen(prefix)) == 0) {
            r = fn(ctx, key, st.st_size);
        }
    }
    closedir(d);
    return r;
}

int blobfs_list_at(int objects_fd, const char *bucket, const char *prefix,
                   int (*fn)(void *ctx, const char *key, int64_t size), void *ctx)
{
    if (!blobfs_valid_bucket(bucket))
        return -EINVAL;
    int d = open_beneath(objects_fd, bucket, O_RDONLY | O_DIRECTORY);
    if (d < 0)
        return d;
    char key[BLOBFS_MAX_KEY + 2] = "";
    return walk(d, key, 0, prefix ? prefix : "", fn, ctx);
}

int blobfs_presigned_check(sigv4_key_cache *cache, const sigv4_credentials *cred, int64_t now,
                           const sigv4_incoming *in, char *bucket, char *key)
{
    static const char prefix[] = "/blob/";
    size_t pl = sizeof(prefix) - 1;
    if (in->path_len <= pl || memcmp(in->path, prefix, pl) != 0)
        return -EINVAL;
    const char *b = in->path + pl;
    const char *slash = memchr(b, '/', in->path_len - pl);
    if (slash == NULL)
        return -EINVAL;
    const char *k = slash + 1;
    size_t klen = in->path_len - (size_t)(k - in->path);
    int bn = http1_pct_decode(bucket, BLOBFS_MAX_BUCKET + 1, b, (size_t)(slash - b));
    int kn = http1_pct_decode(key, BLOBFS_MAX_KEY + 1, k, klen);
    if (bn < 0 || kn < 0 || !blobfs_valid_bucket(bucket) || !blobfs_valid_key(key, (size_t)kn))
        return -EINVAL;
    return sigv4_verify(cache, cred, now, in);
}
