/* The embedded blob backend. See fs.h.
 *
 * Reads open objects with openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS) from the objects
 * directory, so even a symlink planted inside the tree cannot lead out of it; key validation
 * has already refused every name that could. */
#include "src/blob/fs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "proto/blob_meta.h"
#include "proto/http1.h"
#include "proto/hmac.h"
#include "src/rt/alloc.h"

#define DEFAULT_TYPE BLOB_META_DEFAULT_TYPE
#define ROOT_MAX     2048 /* a root path; with a bucket and key it stays under PATH_MAX */

struct blobfs {
    char objects[ROOT_MAX]; /* DATA_DIR/blobs */
    char meta[ROOT_MAX];    /* DATA_DIR/blobs.meta */
    char tmp[ROOT_MAX];     /* DATA_DIR/blobs.tmp */
    int objects_fd;
    int meta_fd;
};

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

int blobfs_open(blobfs **out, const char *data_dir, char *err, size_t errlen)
{
    blobfs *fs = rd_calloc(1, sizeof(*fs), "the blob store");
    int n1 = snprintf(fs->objects, sizeof(fs->objects), "%s/blobs", data_dir);
    int n2 = snprintf(fs->meta, sizeof(fs->meta), "%s/blobs.meta", data_dir);
    int n3 = snprintf(fs->tmp, sizeof(fs->tmp), "%s/blobs.tmp", data_dir);
    int r = 0;
    if (n1 < 0 || n2 < 0 || n3 < 0 || (size_t)n3 >= sizeof(fs->tmp))
        r = -ENAMETOOLONG;
    if (r == 0)
        r = mkdir_p(fs->objects);
    if (r == 0)
        r = mkdir_p(fs->meta);
    if (r == 0)
        r = mkdir_p(fs->tmp);
    if (r == 0) {
        fs->objects_fd = open(fs->objects, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        fs->meta_fd = open(fs->meta, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fs->objects_fd < 0 || fs->meta_fd < 0)
            r = -errno;
    }
    if (r < 0) {
        snprintf(err, errlen, "REELD_DATA_DIR: cannot use %s/blobs for objects (%s)", data_dir,
                 strerror(-r));
        if (fs->objects_fd > 0)
            close(fs->objects_fd);
        if (fs->meta_fd > 0)
            close(fs->meta_fd);
        free(fs);
        return r;
    }
    *out = fs;
    return 0;
}

void blobfs_close(blobfs *fs)
{
    if (fs == NULL)
        return;
    close(fs->objects_fd);
    close(fs->meta_fd);
    free(fs);
}

/* "bucket/key" into rel; -EINVAL when either is refused. */
static int relpath(char *rel, size_t cap, const char *bucket, const char *key)
{
    if (!blobfs_valid_bucket(bucket) || !blobfs_valid_key(key, strlen(key)))
        return -EINVAL;
    int n = snprintf(rel, cap, "%s/%s", bucket, key);
    return n < 0 || (size_t)n >= cap ? -ENAMETOOLONG : 0;
}

static int open_beneath(int dirfd, const char *rel, int flags)
{
    struct open_how how = {.flags = (uint64_t)(flags | O_CLOEXEC | O_NOFOLLOW),
                           .resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS};
    long fd = syscall(SYS_openat2, dirfd, rel, &how, sizeof(how));
    return fd < 0 ? -errno : (int)fd;
}

/* The directory rel's last name is in, opened beneath `root` without following a symlink (a
 * directory symlink planted inside the tree is refused, not written through); with `make`, the
 * missing directories are made on the way, each opened beneath the one before. Returns the
 * descriptor (the caller's to close) and points *name at the last name in rel, or -errno. */
static int parent_beneath(int root, const char *rel, int make, const char **name)
{
    const char *slash = strrchr(rel, '/'); /* rel is bucket/key: there is one */
    char dir[BLOBFS_MAX_BUCKET + BLOBFS_MAX_KEY + 2];
    size_t n = (size_t)(slash - rel);
    memcpy(dir, rel, n);
    dir[n] = '\0';
    *name = slash + 1;
    int fd = open_beneath(root, dir, O_PATH | O_DIRECTORY);
    if (fd != -ENOENT || !make)
        return fd;
    int cur = -1;
    for (char *seg = dir;;) {
        char *end = strchr(seg, '/');
        if (end != NULL)
            *end = '\0';
        int at = cur >= 0 ? cur : root;
        int next = mkdirat(at, seg, 0700) < 0 && errno != EEXIST
                       ? -errno
                       : open_beneath(at, seg, O_PATH | O_DIRECTORY);
        if (cur >= 0)
            close(cur);
        cur = next;
        if (cur < 0 || end == NULL)
            return cur;
        seg = end + 1;
    }
}

/* Renames the file `tmp` to rel beneath `root`, making its directories. */
static int rename_beneath(const char *tmp, int root, const char *rel)
{
    const char *name;
    int dir = parent_beneath(root, rel, 1, &name);
    if (dir < 0)
        return dir;
    int r = renameat(AT_FDCWD, tmp, dir, name) < 0 ? -errno : 0;
    close(dir);
    return r;
}

static int write_all(int fd, const void *data, size_t len)
{
    const char *p = data;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

int blobfs_write_begin(blobfs *fs, const char *bucket, const char *key, const char *content_type,
                       blobfs_writer *w)
{
    memset(w, 0, sizeof(*w));
    w->fd = -1;
    char rel[BLOBFS_MAX_BUCKET + BLOBFS_MAX_KEY + 2];
    int r = relpath(rel, sizeof(rel), bucket, key);
    if (r < 0)
        return r;
    const char *ct = content_type && *content_type ? content_type : DEFAULT_TYPE;
    if (strlen(ct) >= sizeof(w->content_type) || strpbrk(ct, "\r\n") != NULL)
        return -EINVAL;
    w->fs = fs;
    snprintf(w->bucket, sizeof(w->bucket), "%s", bucket);
    snprintf(w->key, sizeof(w->key), "%s", key);
    snprintf(w->content_type, sizeof(w->content_type), "%s", ct);
    snprintf(w->tmp, sizeof(w->tmp), "%s/obj-XXXXXX", fs->tmp);
    w->fd = mkostemp(w->tmp, O_CLOEXEC);
    if (w->fd < 0)
        return -errno;
    br_md5_init(&w->md5);
    return 0;
}

int blobfs_write(blobfs_writer *w, const void *data, size_t len)
{
    if (w->fd < 0)
        return -EBADF;
    int r = write_all(w->fd, data, len);
    if (r == 0) {
        br_md5_update(&w->md5, data, len);
        w->len += len;
    }
    return r;
}

void blobfs_write_abort(blobfs_writer *w)
{
    if (w->fd < 0)
        return;
    close(w->fd);
    unlink(w->tmp);
    w->fd = -1;
}

/* Writes `text` to rel beneath `root` atomically (temp + rename). */
static int replace_file(blobfs *fs, int root, const char *rel, const char *text, size_t len)
{
    char tmp[PATH_MAX];
    snprintf(tmp, sizeof(tmp), "%s/meta-XXXXXX", fs->tmp);
    int fd = mkostemp(tmp, O_CLOEXEC);
    if (fd < 0)
        return -errno;
    int r = write_all(fd, text, len);
    if (r == 0 && fsync(fd) < 0)
        r = -errno;
    close(fd);
    if (r == 0)
        r = rename_beneath(tmp, root, rel);
    if (r < 0)
        unlink(tmp);
    return r;
}

int blobfs_write_commit(blobfs_writer *w, blob_info *info)
{
    if (w->fd < 0)
        return -EBADF;
    blobfs *fs = w->fs;
    char rel[BLOBFS_MAX_BUCKET + BLOBFS_MAX_KEY + 2];
    snprintf(rel, sizeof(rel), "%s/%s", w->bucket, w->key);
    uint8_t md5[16];
    br_md5_out(&w->md5, md5);
    char hex[33], meta[BLOB_META_MAX];
    hmac_hex(hex, md5, sizeof(md5));
    int ml = blob_meta_format(meta, sizeof(meta), md5, w->content_type);
    int r = ml < 0 ? ml : fsync(w->fd) < 0 ? -errno : 0;
    /* Metadata first: a crash between the two leaves the old object with new metadata, which
     * the next put of the same key repairs; the other order could show new bytes with an old
     * ETag. */
    if (r == 0)
        r = replace_file(fs, fs->meta_fd, rel, meta, (size_t)ml);
    if (r == 0)
        r = rename_beneath(w->tmp, fs->objects_fd, rel);
    close(w->fd);
    w->fd = -1;
    if (r < 0) {
        unlink(w->tmp);
        return r;
    }
    if (info != NULL) {
        info->size = (int64_t)w->len;
        snprintf(info->etag, sizeof(info->etag), "\"%s\"", hex);
        snprintf(info->content_type, sizeof(info->content_type), "%s", w->content_type);
    }
    return 0;
}

int blobfs_put(blobfs *fs, const char *bucket, const char *key, const void *data, size_t len,
               const char *content_type, blob_info *info)
{
    blobfs_writer w;
    int r = blobfs_write_begin(fs, bucket, key, content_type, &w);
    if (r == 0)
        r = blobfs_write(&w, data, len);
    if (r == 0)
        return blobfs_write_commit(&w, info);
    blobfs_write_abort(&w);
    return r;
}

static void read_meta(blobfs *fs, const char *rel, blob_info *info)
{
    char buf[BLOB_META_MAX];
    ssize_t n = 0;
    int fd = open_beneath(fs->meta_fd, rel, O_RDONLY);
    if (fd >= 0) {
        n = read(fd, buf, sizeof(buf));
        close(fd);
    }
    blob_meta_parse(buf, n > 0 ? (size_t)n : 0, info->etag, sizeof(info->etag), info->content_type,
                    sizeof(info->content_type));
}

int blobfs_open_read(blobfs *fs, const char *bucket, const char *key, blob_info *info)
{
    char rel[BLOBFS_MAX_BUCKET + BLOBFS_MAX_KEY + 2];
    int r = relpath(rel, sizeof(rel), bucket, key);
    if (r < 0)
        return r;
    int fd = open_beneath(fs->objects_fd, rel, O_RDONLY);
    if (fd < 0)
        return fd == -ENOTDIR || fd == -ELOOP || fd == -EXDEV ? -ENOENT : fd;
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return -ENOENT;
    }
    if (info != NULL) {
        info->size = st.st_size;
        read_meta(fs, rel, info);
    }
    return fd;
}

int blobfs_head(blobfs *fs, const char *bucket, const char *key, blob_info *info)
{
    int fd = blobfs_open_read(fs, bucket, key, info);
    if (fd < 0)
        return fd;
    close(fd);
    return 0;
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
        if (klen + nl + 2 > BLOBFS_MAX_KEY + 1)
            continue;
        memcpy(key + klen, e->d_name, nl + 1);
        struct stat st;
        if (fstatat(dir, e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
            continue;
        if (S_ISDIR(st.st_mode)) {
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

int blobfs_list(blobfs *fs, const char *bucket, const char *prefix,
                int (*fn)(void *ctx, const char *key, int64_t size), void *ctx)
{
    return blobfs_list_at(fs->objects_fd, bucket, prefix, fn, ctx);
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
