/* The sources: a local file (pread at a position the source keeps), and an object of a blob
 * store read a window at a time by ranged GETs. */
#include "src/media/source.h"

#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "src/blob/blob.h"

typedef struct file_source {
    media_source base;
    int fd;
    int64_t pos;
} file_source;

static int file_read(media_source *s, uint8_t *buf, int len)
{
    file_source *f = (file_source *)s;
    ssize_t n;
    do
        n = pread(f->fd, buf, (size_t)len, f->pos);
    while (n < 0 && errno == EINTR);
    if (n < 0)
        return -errno;
    f->pos += n;
    return (int)n;
}

/* Both backends keep a position and seek the same way. */
static int64_t seek_to(media_source *s, int64_t *pos, int64_t offset, int whence)
{
    if (whence != SEEK_SET && whence != SEEK_CUR && whence != SEEK_END)
        return -EINVAL;
    if (whence == SEEK_END && s->size < 0)
        return -ENOSYS;
    int64_t base = whence == SEEK_SET ? 0 : whence == SEEK_CUR ? *pos : s->size;
    if (base + offset < 0)
        return -EINVAL;
    *pos = base + offset;
    return *pos;
}

static int64_t file_seek(media_source *s, int64_t offset, int whence)
{
    return seek_to(s, &((file_source *)s)->pos, offset, whence);
}

static void file_close(media_source *s)
{
    file_source *f = (file_source *)s;
    close(f->fd);
    free(f);
}

int source_open_file(const char *path, media_source **out)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    struct stat st;
    if (fstat(fd, &st) < 0) {
        int e = -errno;
        close(fd);
        return e;
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return S_ISDIR(st.st_mode) ? -EISDIR : -EINVAL;
    }
    file_source *f = calloc(1, sizeof(*f));
    if (f == NULL) {
        close(fd);
        return -ENOMEM;
    }
    f->base.read = file_read;
    f->base.seek = file_seek;
    f->base.close = file_close;
    f->base.size = st.st_size;
    f->fd = fd;
    *out = &f->base;
    return 0;
}

/* ---- an object of a blob store ---- */

typedef struct blob_source {
    media_source base;
    blob_store *blob;
    int64_t pos;
    int64_t win_off; /* the window holds [win_off, win_off + win_len) of the object */
    size_t win_len;
    char bucket[64];
    char key[1024];
    uint8_t win[SOURCE_BLOB_WINDOW];
} blob_source;

static int blob_source_read(media_source *s, uint8_t *buf, int len)
{
    blob_source *b = (blob_source *)s;
    if (s->error < 0)
        return s->error;
    if (b->pos >= s->size || len <= 0)
        return 0;
    if (b->pos < b->win_off || b->pos >= b->win_off + (int64_t)b->win_len) {
        size_t got = 0;
        int r = blob_get_range(b->blob, b->bucket, b->key, (uint64_t)b->pos, b->win, sizeof(b->win),
                               &got, s->why, sizeof(s->why));
        /* pos < size here: no bytes, or "past the end", means the object is shorter than its
         * HEAD said (it changed under us), never the end of the input. */
        if (r == -ERANGE || (r == 0 && got == 0)) {
            r = -EIO;
            snprintf(s->why, sizeof(s->why), "the master %.63s/%.120s changed while being read",
                     b->bucket, b->key);
        }
        if (r < 0) {
            if (s->why[0] == '\0')
                snprintf(s->why, sizeof(s->why), "reading %.63s/%.120s at byte %lld failed: %s",
                         b->bucket, b->key, (long long)b->pos, strerror(-r));
            s->error = r;
            return r;
        }
        b->win_off = b->pos;
        b->win_len = got;
    }
    size_t at = (size_t)(b->pos - b->win_off), n = b->win_len - at;
    if (n > (size_t)len)
        n = (size_t)len;
    memcpy(buf, b->win + at, n);
    b->pos += (int64_t)n;
    return (int)n;
}

static int64_t blob_source_seek(media_source *s, int64_t offset, int whence)
{
    return seek_to(s, &((blob_source *)s)->pos, offset, whence);
}

static void blob_source_close(media_source *s)
{
    free(s);
}

int source_open_blob(blob_store *store, const char *bucket, const char *key, media_source **out,
                     char *err, size_t errlen)
{
    if (strlen(bucket) >= sizeof(((blob_source *)0)->bucket) ||
        strlen(key) >= sizeof(((blob_source *)0)->key)) {
        snprintf(err, errlen, "the master's bucket or key is too long");
        return -ENAMETOOLONG;
    }
    blob_info info;
    char why[256] = "";
    int r = blob_head(store, bucket, key, &info, why, sizeof(why));
    if (r < 0) {
        if (r == -ENOENT)
            snprintf(err, errlen, "the master %s/%s does not exist", bucket, key);
        else
            snprintf(err, errlen, "cannot read the master %s/%s: %s", bucket, key,
                     why[0] ? why : strerror(-r));
        return r;
    }
    blob_source *b = malloc(sizeof(*b));
    if (b == NULL) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    memset(b, 0, offsetof(blob_source, win));
    b->base.read = blob_source_read;
    b->base.seek = blob_source_seek;
    b->base.close = blob_source_close;
    b->base.size = info.size;
    b->blob = store;
    b->win_off = -1;
    snprintf(b->bucket, sizeof(b->bucket), "%s", bucket);
    snprintf(b->key, sizeof(b->key), "%s", key);
    *out = &b->base;
    return 0;
}

void source_close(media_source *s)
{
    if (s != NULL)
        s->close(s);
}
