/* The local-file source: pread at a position the source keeps, like a ranged GET would. */
#include "src/media/source.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

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

static int64_t file_seek(media_source *s, int64_t offset, int whence)
{
    file_source *f = (file_source *)s;
    int64_t base = whence == SEEK_SET ? 0 : whence == SEEK_CUR ? f->pos : s->size;
    if (whence != SEEK_SET && whence != SEEK_CUR && whence != SEEK_END)
        return -EINVAL;
    if (base + offset < 0)
        return -EINVAL;
    f->pos = base + offset;
    return f->pos;
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

void source_close(media_source *s)
{
    if (s != NULL)
        s->close(s);
}
