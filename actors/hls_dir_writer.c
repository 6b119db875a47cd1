/* hls-dir-writer: a directory as the destination of an HLS ladder.
 *
 * owns:  the output directory's contents it writes; the first write error of the job.
 * takes: HLS_OBJECT (writes OUTDIR/name through a temporary file and a rename, so a reader
 *        never sees half a segment), TRANSCODE_PROGRESS and TRANSCODE_DONE (handed to its
 *        owner's callbacks).
 * sends: nothing.
 * never: writes outside OUTDIR (names with ".." or a leading '/' are refused); runs on a loop
 *        (its writes block: it is a thread actor). */
#include "actors/hls_dir_writer.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "src/rt/log.h"

typedef struct hlsdir {
    const hlsdir_arg *arg;
    char error[320]; /* first failed write */
} hlsdir;

static int mkdirs(char *path)
{
    for (char *p = path + 1; *p != '\0'; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        int r = mkdir(path, 0755);
        *p = '/';
        if (r < 0 && errno != EEXIST)
            return -errno;
    }
    if (mkdir(path, 0755) < 0 && errno != EEXIST)
        return -errno;
    return 0;
}

static int write_all(int fd, const uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return -errno;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static int put_file(const char *outdir, const char *name, const uint8_t *data, size_t len)
{
    if (name[0] == '/' || strstr(name, "..") != NULL)
        return -EINVAL;
    char path[4096], tmp[4200];
    if ((size_t)snprintf(path, sizeof(path), "%s/%s", outdir, name) >= sizeof(path))
        return -ENAMETOOLONG;
    char *slash = strrchr(path, '/');
    *slash = '\0';
    int r = mkdirs(path);
    *slash = '/';
    if (r < 0)
        return r;
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return -errno;
    r = write_all(fd, data, len);
    if (close(fd) < 0 && r == 0)
        r = -errno;
    if (r == 0 && rename(tmp, path) < 0)
        r = -errno;
    if (r < 0)
        unlink(tmp);
    return r;
}

static int hlsdir_init(rd_actor *self, void *arg)
{
    hlsdir *w = calloc(1, sizeof(*w));
    if (w == NULL)
        return -ENOMEM;
    w->arg = arg;
    self->state = w;
    return 0;
}

static int hlsdir_handle(rd_actor *self, rd_msg *m)
{
    hlsdir *w = self->state;
    const hlsdir_arg *a = w->arg;
    switch (m->type) {
    case MSG_HLS_OBJECT: {
        struct rd_msg_hls_object *o = msg_body(m, hls_object);
        if (w->error[0] != '\0')
            return RD_DONE; /* the job already failed here: msg_free drops the bytes */
        int r = put_file(a->outdir, o->name, o->data, o->len);
        if (r < 0) {
            snprintf(w->error, sizeof(w->error), "writing %s/%s failed: %s", a->outdir, o->name,
                     strerror(-r));
            log_error("hls_write_failed", KV_INT("job", o->job), KV_STR("name", o->name),
                      KV_ERRNO(r));
        }
        return RD_DONE;
    }
    case MSG_TRANSCODE_PROGRESS:
        if (a->on_progress != NULL)
            a->on_progress(a->ctx, msg_body(m, transcode_progress));
        return RD_DONE;
    case MSG_TRANSCODE_DONE:
        if (a->on_done != NULL)
            a->on_done(a->ctx, msg_body(m, transcode_done), w->error[0] ? w->error : NULL);
        w->error[0] = '\0';
        return RD_DONE;
    default:
        return RD_DONE;
    }
}

static void hlsdir_fini(rd_actor *self)
{
    free(self->state);
}

static const rd_actor_def hlsdir_def = {
    .name = "hls_dir_writer",
    .init = hlsdir_init,
    .handle = hlsdir_handle,
    .fini = hlsdir_fini,
    .mailbox_bound = 64, /* a few segments of slack; then the encoder waits */
};

int hlsdir_spawn(const hlsdir_arg *arg, rd_actor **out)
{
    return actor_spawn_thread(&hlsdir_def, (void *)arg, -1, out);
}
