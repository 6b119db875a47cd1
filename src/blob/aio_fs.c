/* The fs backend of the asynchronous blob interface: every file-system call through the
 * asking loop's io_uring. See aio.h.
 *
 * GET, HEAD:  openat2 beneath DATA_DIR/blobs (RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS), fstat
 *             (the inode is in memory once opened), reads of up to CHUNK bytes; HEAD also
 *             reads the object's metadata line pair from DATA_DIR/blobs.meta. A watched GET
 *             (blob_aio_get_watched) adds its inotify watch between the open and the first
 *             read, through /proc/self/fd/N: the open file itself, no path of the store looked
 *             up again (a direct call, like fstat: no disk is read).
 * PUT:        temp file in DATA_DIR/blobs.tmp, write, fsync; the same for the metadata; then
 *             each is renamed into the directory its name is in, opened first beneath its tree
 *             (openat2 O_PATH, no symlink: a directory symlink planted in the tree is refused,
 *             never written through). When that directory is missing, the key's directories
 *             are made and opened one at a time, each beneath the last. Metadata first, as
 *             a PUT below. The MD5 was taken on the asking thread.
 * PUT_FD, COPY: a PUT whose bytes are read as it goes, a chunk at a time, from the caller's
 *             file (PUT_FD) or from the source object opened beneath the tree (COPY, which
 *             also reads the source's metadata for its content type and ETag); the MD5 is
 *             taken on the loop, a chunk at a time, as the bytes pass, except for a COPY
 *             whose source has its ETag (the same bytes: the same MD5).
 * DELETE:     the same directory opened, then unlinkat of the name; then the metadata's
 *             (DELETE_KEPT alike: the fs backend keeps no retention).
 * LIST:       the one request io_uring cannot serve (it has no directory read): the walk of
 *             the directories on the way to the prefix and under it runs on a thread of the
 *             request's own (detached, with its own descriptor of the tree), which gathers the
 *             keys and then writes an eventfd whose read the loop has in flight; the keys reach
 *             the sink from that completion, on the loop. The loop never waits on the walk.
 * A failed PUT unlinks its temp files (one unlink on an error path, not a read or a wait). */
#include <bearssl.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/statfs.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "proto/blob_meta.h"
#include "proto/hmac.h"
#include "proto/wbuf.h"
#include "src/blob/aio_impl.h"
#include "src/blob/fs.h"
#include "src/rt/alloc.h"

#define CHUNK (256 * 1024)

typedef struct fs_store {
    blob_aio base;
    int objects_fd, meta_fd, tmp_fd;
} fs_store;

typedef enum step {
    S_OPEN,      /* GET, HEAD: the object */
    S_READ,      /* GET */
    S_META_OPEN, /* HEAD */
    S_META_READ,
    S_TMP_OPEN, /* PUT: the object's temp file */
    S_WRITE,
    S_FSYNC,
    S_MTMP_OPEN, /* PUT: the metadata's temp file */
    S_MWRITE,
    S_MFSYNC,
    S_PARENT,     /* PUT, DELETE: the directory the object's name is in, opened beneath the
                     tree without a symlink (a directory symlink planted in the tree is refused,
                     not written through), then the step `then` */
    S_WALK_MKDIR, /* PUT, when that directory is missing: each directory of the key in turn,
                     made, then opened beneath the one before */
    S_WALK_OPEN,
    S_MRENAME, /* PUT: the metadata into place, then the object */
    S_RENAME,
    S_UNLINK, /* DELETE: the object, then its metadata */
    S_MUNLINK,
    S_SRC_OPEN, /* COPY: the source object, then its metadata */
    S_SRC_META_OPEN,
    S_SRC_META_READ,
    S_FILL,   /* PUT_FD, COPY: the next chunk from the source, then S_WRITE */
    S_LISTED, /* LIST: the walk's thread wrote the eventfd */
} step;

#define LIST_CHUNK (64 * 1024) /* keys gathered per chunk handed to the sink */

typedef struct fs_req {
    blob_req r;
    rd_op op;
    step step, then; /* S_PARENT: the step that uses the directory */
    uint8_t inflight, has_tmp, has_mtmp;
    uint8_t streaming; /* PUT_FD, COPY: the bytes come from src_fd */
    uint8_t src_pipe;  /* PUT_FD from a pipe: read as the bytes come, at no offset */
    int fd;
    int src_fd;        /* PUT_FD: the caller's (borrowed); COPY: the source object's */
    uint8_t *sbuf;     /* streaming: one chunk of the source ... */
    size_t slen, soff; /* ... its length, and how much of it is written */
    br_md5_context md5;
    int root_fd;    /* S_PARENT: the tree it is looked for in (objects or metadata) */
    int pfd;        /* the directory the name is in, once opened */
    size_t walk_at; /* S_WALK_*: where the next directory of rel starts */
    size_t base;    /* where the object's own name starts in rel */
    uint64_t size, pos, end;
    int64_t mtime;
    uint64_t ino; /* GET, HEAD: the object's file */
    rd_buf *chunk;
    size_t meta_len;
    struct open_how how;
    char rel[64 + S3_MAX_KEY + 2]; /* bucket/key */
    char dir[64 + S3_MAX_KEY + 2]; /* S_PARENT: rel's directories; S_WALK_*: one of them */
    char tmp[48], mtmp[48];
    char meta[BLOB_META_MAX];
    /* LIST: written by the walk's thread until it writes the eventfd, then the loop's. */
    struct list_wake *wake;
    int tree_fd;    /* the thread's own descriptor of the objects' tree */
    uint64_t ticks; /* the eventfd's count, read by the loop */
    rd_buf **keys;  /* the chunks of keys, NUL after each */
    size_t nkeys;
    int walked; /* the walk's result: 0 or -errno */
    _Atomic int walk_over;
} fs_req;

static atomic_uint_fast64_t tmp_seq;

static fs_store *store_of(fs_req *q)
{
    return (fs_store *)(void *)q->r.store;
}

static void submit_how(fs_req *q, int dirfd, const char *path, uint64_t flags)
{
    q->how = (struct open_how){.flags = flags | O_CLOEXEC | O_NOFOLLOW,
                               .resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS};
    io_uring_prep_openat2(loop_sqe(q->r.loop, &q->op), dirfd, path, &q->how);
    q->inflight = 1;
}

static void submit_tmp(fs_req *q, char *name, size_t cap)
{
    snprintf(name, cap, "aio-%ld-%llu", (long)getpid(),
             (unsigned long long)atomic_fetch_add(&tmp_seq, 1));
    io_uring_prep_openat(loop_sqe(q->r.loop, &q->op), store_of(q)->tmp_fd, name,
                         O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    q->inflight = 1;
}

static void submit_read(fs_req *q)
{
    uint64_t left = q->end - q->pos;
    if (q->chunk == NULL)
        q->chunk = buf_new(left < CHUNK ? (size_t)left : CHUNK);
    rd_buf *b = q->chunk;
    io_uring_prep_read(loop_sqe(q->r.loop, &q->op), q->fd, b->data + b->len,
                       (unsigned)(b->cap - b->len), q->pos);
    q->inflight = 1;
}

/* Whether the kernel makes every change to the files under directory `fd` itself, so inotify
 * hears each: not on a network or FUSE file system, where another machine or a user-space server
 * changes files without an event here. */
static int changes_are_local(int fd)
{
    struct statfs sf;
    if (fstatfs(fd, &sf) < 0)
        return 0;
    switch ((uint32_t)sf.f_type) {
    case 0x6969:     /* NFS */
    case 0x517B:     /* SMB */
    case 0xFF534D42: /* CIFS */
    case 0xFE534D42: /* SMB2 */
    case 0x65735546: /* FUSE */
    case 0x00C36400: /* Ceph */
    case 0x01021997: /* 9p */
    case 0x5346414F: /* AFS */
    case 0x6B414653: /* kAFS */
    case 0x01161970: /* GFS2 */
    case 0x7461636F: /* OCFS2 */
    case 0x0BD00BD0: /* Lustre */
    case 0x47504653: /* GPFS */
        return 0;
    default:
        return 1;
    }
}

/* The open object watched in the asker's inotify instance: what the watch sees is the file
 * this request reads, whatever its name becomes. The watch descriptor, or 0 when none could be
 * added (no /proc, the instance's limit). */
static int watch_file(int inotify_fd, int fd)
{
    char p[32];
    rd_wbuf w = wbuf_init(p, sizeof(p));
    wbuf_str(&w, "/proc/self/fd/");
    wbuf_uint(&w, (uint64_t)fd);
    wbuf_end(&w);
    int wd = inotify_add_watch(
        inotify_fd, p, IN_MODIFY | IN_ATTRIB | IN_CLOSE_WRITE | IN_MOVE_SELF | IN_DELETE_SELF);
    return wd > 0 ? wd : 0;
}

static void release(fs_req *q)
{
    if (q->fd >= 0)
        close(q->fd);
    q->fd = -1;
    if (q->pfd >= 0)
        close(q->pfd);
    q->pfd = -1;
    buf_unref(q->chunk);
    q->chunk = NULL;
    if (q->r.kind == BLOB_OP_COPY && q->src_fd >= 0)
        close(q->src_fd);
    q->src_fd = -1;
    free(q->sbuf);
    q->sbuf = NULL;
    fs_store *s = store_of(q);
    if (q->has_tmp)
        unlinkat(s->tmp_fd, q->tmp, 0);
    if (q->has_mtmp)
        unlinkat(s->tmp_fd, q->mtmp, 0);
    q->has_tmp = q->has_mtmp = 0;
}

static void fail(fs_req *q, int err)
{
    release(q);
    char why[320];
    const char *what;
    switch (q->r.kind) {
    case BLOB_OP_PUT:
    case BLOB_OP_PUT_FD:
        what = "storing";
        break;
    case BLOB_OP_COPY:
        what = "copying to";
        break;
    case BLOB_OP_DELETE:
    case BLOB_OP_DELETE_KEPT:
        what = "deleting";
        break;
    default:
        what = "reading";
    }
    if (err == -ENOENT && q->r.kind == BLOB_OP_COPY && q->step == S_SRC_OPEN)
        snprintf(why, sizeof(why), "%.63s/%.200s: no such object to copy.", q->r.src_bucket,
                 q->r.src_key);
    else if (err == -ENOENT)
        snprintf(why, sizeof(why), "%.63s/%.200s: no such object.", q->r.bucket, q->r.key);
    else
        snprintf(why, sizeof(why), "%s %.63s/%.200s failed: %s.", what, q->r.bucket, q->r.key,
                 strerror(-err));
    blob_req_end(&q->r, err, why);
}

static void succeed(fs_req *q)
{
    release(q);
    blob_req_end(&q->r, 0, NULL);
}

/* The request was cancelled: it ends unseen. */
static void drop(fs_req *q)
{
    release(q);
    blob_req_free(&q->r);
}

static void head_done(fs_req *q, size_t meta_len)
{
    blob_meta m = {.size = q->size, .mtime = q->mtime, .file_id = q->ino};
    blob_meta_parse(q->meta, meta_len, m.etag, sizeof(m.etag), m.content_type,
                    sizeof(m.content_type));
    if (blob_req_head(&q->r, &m))
        succeed(q);
    else
        drop(q);
}

/* Opens the directory rel's name is in, beneath `root_fd`, then goes on at `then`. */
static void find_parent(fs_req *q, int root_fd, step then)
{
    if (q->pfd >= 0)
        close(q->pfd);
    q->pfd = -1;
    q->root_fd = root_fd;
    q->then = then;
    q->step = S_PARENT;
    memcpy(q->dir, q->rel, q->base - 1);
    q->dir[q->base - 1] = '\0';
    submit_how(q, root_fd, q->dir, O_PATH | O_DIRECTORY);
}

/* Submits the operation of the current step, which works in the opened directory q->pfd. */
static void submit_step(fs_req *q)
{
    fs_store *s = store_of(q);
    const char *name = q->rel + q->base;
    if (q->step == S_MRENAME)
        io_uring_prep_renameat(loop_sqe(q->r.loop, &q->op), s->tmp_fd, q->mtmp, q->pfd, name, 0);
    else if (q->step == S_RENAME)
        io_uring_prep_renameat(loop_sqe(q->r.loop, &q->op), s->tmp_fd, q->tmp, q->pfd, name, 0);
    else
        io_uring_prep_unlinkat(loop_sqe(q->r.loop, &q->op), q->pfd, name, 0);
    q->inflight = 1;
}

/* The next directory of the walk (made, then opened beneath the one before), or the step that
 * waited for the whole path once it is open. */
static void walk_next(fs_req *q)
{
    if (q->walk_at >= q->base) {
        q->step = q->then;
        submit_step(q);
        return;
    }
    const char *seg = q->rel + q->walk_at;
    size_t n = (size_t)(strchr(seg, '/') - seg);
    memcpy(q->dir, seg, n);
    q->dir[n] = '\0';
    q->walk_at += n + 1;
    q->step = S_WALK_MKDIR;
    io_uring_prep_mkdirat(loop_sqe(q->r.loop, &q->op), q->pfd >= 0 ? q->pfd : q->root_fd, q->dir,
                          0700);
    q->inflight = 1;
}

static void put_landed(fs_req *q)
{
    blob_meta m = {.size = q->r.body_len, .mtime = (int64_t)time(NULL)};
    char hex[33];
    hmac_hex(hex, q->r.md5, sizeof(q->r.md5));
    snprintf(m.etag, sizeof(m.etag), "\"%s\"", hex);
    snprintf(m.content_type, sizeof(m.content_type), "%s", q->r.content_type);
    blob_req_head(&q->r, &m);
    succeed(q); /* unseen when cancelled */
}

/* Streaming: the next chunk of the source, or the temp file's fsync once it is all written. */
static void fill_next(fs_req *q)
{
    if (q->pos >= q->r.body_len) {
        br_md5_out(&q->md5, q->r.md5);
        q->step = S_FSYNC;
        io_uring_prep_fsync(loop_sqe(q->r.loop, &q->op), q->fd, 0);
    } else {
        uint64_t left = q->r.body_len - q->pos;
        if (q->sbuf == NULL)
            q->sbuf = rd_malloc(CHUNK, "a copy's chunk");
        q->step = S_FILL;
        io_uring_prep_read(loop_sqe(q->r.loop, &q->op), q->src_fd, q->sbuf,
                           left < CHUNK ? (unsigned)left : CHUNK,
                           q->src_pipe ? (uint64_t)-1 : q->pos);
    }
    q->inflight = 1;
}

/* Streaming: the rest of the chunk in hand into the temp file. */
static void write_chunk(fs_req *q)
{
    q->step = S_WRITE;
    io_uring_prep_write(loop_sqe(q->r.loop, &q->op), q->fd, q->sbuf + q->soff,
                        (unsigned)(q->slen - q->soff), q->pos + q->soff);
    q->inflight = 1;
}

/* The next write of the temp file, or its fsync once everything is written. */
static void write_next(fs_req *q)
{
    const uint8_t *data = q->step == S_WRITE ? q->r.body : (const uint8_t *)q->meta;
    uint64_t len = q->step == S_WRITE ? q->r.body_len : q->meta_len;
    if (q->pos < len) {
        uint64_t left = len - q->pos;
        io_uring_prep_write(loop_sqe(q->r.loop, &q->op), q->fd, data + q->pos,
                            left > (1u << 30) ? (1u << 30) : (unsigned)left, q->pos);
    } else {
        q->step = q->step == S_WRITE ? S_FSYNC : S_MFSYNC;
        io_uring_prep_fsync(loop_sqe(q->r.loop, &q->op), q->fd, 0);
    }
    q->inflight = 1;
}

/* ---- LIST: the walk on its own thread ---- */

/* The eventfd that hands a walk back to its loop, shared by the two until both are done with
 * it: the loop once its read completed, the thread once its write returned. The last one
 * closes it, so the close follows the write for the tools too (they see no io_uring read). */
typedef struct list_wake {
    int efd;
    _Atomic int refs;
} list_wake;

static void wake_drop(list_wake *w)
{
    if (w != NULL && atomic_fetch_sub_explicit(&w->refs, 1, memory_order_acq_rel) == 1) {
        close(w->efd);
        free(w);
    }
}

static int list_key(void *ctx, const char *key, int64_t size)
{
    (void)size;
    fs_req *q = ctx;
    size_t kl = strlen(key) + 1;
    rd_buf *b = q->nkeys > 0 ? q->keys[q->nkeys - 1] : NULL;
    if (b == NULL || b->cap - b->len < kl) {
        q->keys = rd_realloc(q->keys, (q->nkeys + 1) * sizeof(*q->keys), "a list of keys");
        b = q->keys[q->nkeys++] = buf_new(kl > LIST_CHUNK ? kl : LIST_CHUNK);
    }
    memcpy(b->data + b->len, key, kl);
    b->len += kl;
    return 0;
}

static void *list_walk(void *arg)
{
    fs_req *q = arg;
    list_wake *w = q->wake; /* after the release below the request is the loop's alone */
    q->walked = blobfs_list_at(q->tree_fd, q->r.bucket, q->r.key, list_key, q);
    close(q->tree_fd);
    q->tree_fd = -1;
    /* The loop reads the keys after its read of the eventfd completes: io_uring is not a
     * synchronisation the tools see, so the handover is an explicit release too. */
    atomic_store_explicit(&q->walk_over, 1, memory_order_release);
    uint64_t one = 1;
    if (write(w->efd, &one, sizeof(one)) != (ssize_t)sizeof(one))
        abort(); /* an eventfd of count 0 always takes 1 */
    wake_drop(w);
    return NULL;
}

/* The eventfd's read in flight on the loop, then the thread that walks. 0 or -errno (nothing
 * started). */
static int list_start(fs_req *q)
{
    int efd = eventfd(0, EFD_CLOEXEC);
    if (efd < 0)
        return -errno;
    q->wake = rd_malloc(sizeof(*q->wake), "a list's wake");
    q->wake->efd = efd;
    atomic_init(&q->wake->refs, 2);
    q->tree_fd = fcntl(store_of(q)->objects_fd, F_DUPFD_CLOEXEC, 0);
    pthread_attr_t at;
    pthread_t t;
    int e = q->tree_fd < 0 ? errno : pthread_attr_init(&at);
    if (e == 0) {
        pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
        pthread_attr_setstacksize(&at, 256 * 1024);
        e = pthread_create(&t, &at, list_walk, q);
        pthread_attr_destroy(&at);
    }
    if (e != 0) {
        if (q->tree_fd >= 0)
            close(q->tree_fd);
        close(efd);
        free(q->wake);
        q->wake = NULL;
        return -e;
    }
    q->step = S_LISTED;
    io_uring_prep_read(loop_sqe(q->r.loop, &q->op), efd, &q->ticks, sizeof(q->ticks), 0);
    q->inflight = 1;
    return 0;
}

/* The walk is over: its keys to the sink, then the end. */
static void list_done(fs_req *q)
{
    int err = atomic_load_explicit(&q->walk_over, memory_order_acquire) ? q->walked : -EIO;
    wake_drop(q->wake);
    q->wake = NULL;
    size_t i = 0;
    for (; err == 0 && i < q->nkeys; i++)
        if (!blob_req_data(&q->r, q->keys[i])) {
            i++;
            break;
        }
    for (; i < q->nkeys; i++)
        buf_unref(q->keys[i]);
    free(q->keys);
    q->keys = NULL;
    q->nkeys = 0;
    if (err == -ENOENT)
        err = 0; /* a bucket's folder is made with its first object: none, no key */
    if (err < 0)
        fail(q, err);
    else
        succeed(q);
}

static void on_io(rd_op *op, int res, uint32_t flags)
{
    (void)flags;
    fs_req *q = (fs_req *)(void *)((char *)op - offsetof(fs_req, op));
    fs_store *s = store_of(q);
    q->inflight = 0;
    int reading = q->r.kind == BLOB_OP_GET || q->r.kind == BLOB_OP_HEAD;
    if (q->r.cancelled && reading) {
        if (q->step == S_OPEN && res >= 0)
            q->fd = res;
        drop(q);
        return;
    }
    switch (q->step) {
    case S_OPEN: {
        if (res < 0) {
            /* A file where a directory of the key should be, or a directory where the object
             * should be: no such object. A symlink (ELOOP: never followed) is a store that
             * something else has changed: a failure to report, not a missing object. */
            fail(q, res == -ENOTDIR || res == -EISDIR ? -ENOENT : res);
            return;
        }
        q->fd = res;
        /* A watched GET's watch before fstat: the link count then says whether the file still
         * had a name once watched (renamed over or removed in between: an event nobody heard). */
        int wd =
            q->r.kind == BLOB_OP_GET && q->r.watch_fd > 0 ? watch_file(q->r.watch_fd, q->fd) : 0;
        struct stat st;
        int stated = fstat(q->fd, &st) == 0;
        if (!stated || !S_ISREG(st.st_mode)) {
            if (wd > 0 && stated) /* no reader holds a watch on what is not a regular file */
                inotify_rm_watch(q->r.watch_fd, wd);
            fail(q, -ENOENT);
            return;
        }
        if (st.st_nlink == 0)
            wd = 0; /* left in place: another read of this file may hold the same watch */
        q->size = (uint64_t)st.st_size;
        q->mtime = (int64_t)st.st_mtime;
        q->ino = (uint64_t)st.st_ino;
        if (q->r.kind == BLOB_OP_HEAD) {
            close(q->fd);
            q->fd = -1;
            q->step = S_META_OPEN;
            submit_how(q, s->meta_fd, q->rel, O_RDONLY);
            return;
        }
        if (q->size > 0 && q->r.off >= q->size) {
            fail(q, -ERANGE);
            return;
        }
        q->pos = q->r.off < q->size ? q->r.off : q->size;
        q->end = q->r.len > 0 && q->r.len < q->size - q->pos ? q->pos + q->r.len : q->size;
        blob_meta m = {.size = q->size, .mtime = q->mtime, .file_id = q->ino, .watch = wd};
        if (!blob_req_head(&q->r, &m)) {
            drop(q);
            return;
        }
        if (q->pos == q->end) {
            succeed(q);
            return;
        }
        q->step = S_READ;
        submit_read(q);
        return;
    }
    case S_READ: {
        if (res <= 0) {
            fail(q, res < 0 ? res : -EIO); /* shorter than its size: it changed under us */
            return;
        }
        rd_buf *b = q->chunk;
        b->len += (size_t)res;
        q->pos += (uint64_t)res;
        if (b->len < b->cap) {
            submit_read(q); /* a short read: the rest of this chunk first */
            return;
        }
        q->chunk = NULL;
        if (!blob_req_data(&q->r, b)) {
            drop(q);
            return;
        }
        if (q->pos == q->end)
            succeed(q);
        else
            submit_read(q);
        return;
    }
    case S_META_OPEN:
        if (res < 0) {
            head_done(q, 0); /* no metadata: the defaults */
            return;
        }
        q->fd = res;
        q->step = S_META_READ;
        io_uring_prep_read(loop_sqe(q->r.loop, &q->op), q->fd, q->meta, sizeof(q->meta), 0);
        q->inflight = 1;
        return;
    case S_META_READ:
        head_done(q, res > 0 ? (size_t)res : 0);
        return;
    case S_SRC_OPEN: {
        if (res < 0) {
            fail(q, res == -ENOTDIR || res == -EISDIR ? -ENOENT : res);
            return;
        }
        q->src_fd = res;
        struct stat st;
        if (fstat(q->src_fd, &st) < 0 || !S_ISREG(st.st_mode)) {
            fail(q, -ENOENT);
            return;
        }
        q->r.body_len = (size_t)st.st_size;
        q->step = S_SRC_META_OPEN;
        submit_how(q, s->meta_fd, q->dir, O_RDONLY);
        return;
    }
    case S_SRC_META_OPEN:
    case S_SRC_META_READ: {
        if (q->step == S_SRC_META_OPEN && res >= 0) {
            q->fd = res;
            q->step = S_SRC_META_READ;
            io_uring_prep_read(loop_sqe(q->r.loop, &q->op), q->fd, q->meta, sizeof(q->meta), 0);
            q->inflight = 1;
            return;
        }
        /* The source's type, as its HEAD would say (no metadata: the default). */
        size_t n = q->step == S_SRC_META_READ && res > 0 ? (size_t)res : 0;
        char etag[80];
        if (q->fd >= 0)
            close(q->fd);
        q->fd = -1;
        blob_meta_parse(q->meta, n, etag, sizeof(etag), q->r.content_type,
                        sizeof(q->r.content_type));
        /* The copy's ETag is the MD5 of the bytes it copies, taken as they pass: not the
         * source's ETag, which a PUT landing between the open of the source and the read of
         * its metadata (a PUT renames the metadata first) would make another object's. */
        q->step = S_TMP_OPEN;
        submit_tmp(q, q->tmp, sizeof(q->tmp));
        return;
    }
    case S_TMP_OPEN:
    case S_MTMP_OPEN:
        if (res < 0) {
            fail(q, res);
            return;
        }
        q->fd = res;
        q->pos = 0;
        if (q->step == S_TMP_OPEN) {
            q->has_tmp = 1;
            q->step = S_WRITE;
        } else {
            q->has_mtmp = 1;
            q->step = S_MWRITE;
        }
        if (q->step == S_WRITE && q->streaming) {
            br_md5_init(&q->md5);
            fill_next(q);
        } else {
            write_next(q);
        }
        return;
    case S_FILL:
        if (res <= 0) {
            fail(q, res < 0 ? res : -EIO); /* shorter than its size: it changed under us */
            return;
        }
        br_md5_update(&q->md5, q->sbuf, (size_t)res);
        q->slen = (size_t)res;
        q->soff = 0;
        write_chunk(q);
        return;
    case S_WRITE:
    case S_MWRITE:
        if (res < 0) {
            fail(q, res);
            return;
        }
        if (q->step == S_WRITE && q->streaming) {
            q->soff += (size_t)res;
            if (q->soff < q->slen) {
                write_chunk(q);
            } else {
                q->pos += q->slen;
                fill_next(q);
            }
            return;
        }
        q->pos += (uint64_t)res;
        write_next(q);
        return;
    case S_FSYNC:
    case S_MFSYNC:
        if (res < 0) {
            fail(q, res);
            return;
        }
        close(q->fd);
        q->fd = -1;
        if (q->step == S_FSYNC) {
            int ml = blob_meta_format(q->meta, sizeof(q->meta), q->r.md5, q->r.content_type);
            if (ml < 0) {
                fail(q, ml);
                return;
            }
            q->meta_len = (size_t)ml;
            q->step = S_MTMP_OPEN;
            submit_tmp(q, q->mtmp, sizeof(q->mtmp));
        } else {
            /* Metadata first: a crash between the two renames leaves the old object
             * with the new metadata, which the next put repairs. */
            find_parent(q, s->meta_fd, S_MRENAME);
        }
        return;
    case S_PARENT:
        if (res >= 0) {
            q->pfd = res;
            q->step = q->then;
            submit_step(q);
            return;
        }
        if (res == -ENOENT && q->r.kind != BLOB_OP_DELETE && q->r.kind != BLOB_OP_DELETE_KEPT) {
            q->walk_at = 0; /* make what is missing, one directory at a time */
            walk_next(q);
            return;
        }
        if ((res == -ENOENT || res == -ENOTDIR) &&
            (q->r.kind == BLOB_OP_DELETE || q->r.kind == BLOB_OP_DELETE_KEPT)) {
            if (q->then == S_UNLINK)
                find_parent(q, s->meta_fd, S_MUNLINK); /* no object: perhaps metadata */
            else
                succeed(q);
            return;
        }
        fail(q, res);
        return;
    case S_WALK_MKDIR:
        if (res < 0 && res != -EEXIST) {
            fail(q, res);
            return;
        }
        q->step = S_WALK_OPEN;
        submit_how(q, q->pfd >= 0 ? q->pfd : q->root_fd, q->dir, O_PATH | O_DIRECTORY);
        return;
    case S_WALK_OPEN:
        if (res < 0) {
            fail(q, res);
            return;
        }
        if (q->pfd >= 0)
            close(q->pfd);
        q->pfd = res;
        walk_next(q);
        return;
    case S_MRENAME:
    case S_RENAME:
        if (res < 0) {
            fail(q, res);
            return;
        }
        if (q->step == S_MRENAME) {
            q->has_mtmp = 0;
            find_parent(q, s->objects_fd, S_RENAME);
            return;
        }
        q->has_tmp = 0;
        put_landed(q);
        return;
    case S_UNLINK:
        if (res < 0 && res != -ENOENT && res != -ENOTDIR) {
            fail(q, res);
            return;
        }
        find_parent(q, s->meta_fd, S_MUNLINK);
        return;
    case S_MUNLINK:
        succeed(q); /* metadata without its object is harmless: no error */
        return;
    case S_LISTED:
        if (res < 0 && !atomic_load_explicit(&q->walk_over, memory_order_acquire)) {
            /* The read ended without the thread (a loop cut short at its stop deadline): the
             * thread still holds the request, which is left to it unfreed. */
            return;
        }
        list_done(q);
        return;
    }
}

static int fs_start(blob_req *r)
{
    fs_req *q = (fs_req *)(void *)r;
    fs_store *s = store_of(q);
    q->fd = q->pfd = q->src_fd = -1;
    q->op.done = on_io;
    if (snprintf(q->rel, sizeof(q->rel), "%s/%s", r->bucket, r->key) >= (int)sizeof(q->rel))
        return -ENAMETOOLONG;
    q->base = (size_t)(strrchr(q->rel, '/') - q->rel) + 1;
    switch (r->kind) {
    case BLOB_OP_GET:
    case BLOB_OP_HEAD:
        q->step = S_OPEN;
        submit_how(q, s->objects_fd, q->rel, O_RDONLY);
        return 0;
    case BLOB_OP_PUT:
        q->step = S_TMP_OPEN;
        submit_tmp(q, q->tmp, sizeof(q->tmp));
        return 0;
    case BLOB_OP_PUT_FD:
        q->streaming = 1;
        q->src_fd = r->fd;
        struct stat st;
        q->src_pipe = fstat(r->fd, &st) == 0 && S_ISFIFO(st.st_mode);
        q->step = S_TMP_OPEN;
        submit_tmp(q, q->tmp, sizeof(q->tmp));
        return 0;
    case BLOB_OP_COPY:
        q->streaming = 1;
        if (snprintf(q->dir, sizeof(q->dir), "%s/%s", r->src_bucket, r->src_key) >=
            (int)sizeof(q->dir))
            return -ENAMETOOLONG;
        q->step = S_SRC_OPEN;
        submit_how(q, s->objects_fd, q->dir, O_RDONLY);
        return 0;
    case BLOB_OP_DELETE:
    case BLOB_OP_DELETE_KEPT:
        find_parent(q, s->objects_fd, S_UNLINK);
        return 0;
    case BLOB_OP_LIST:
        return list_start(q);
    case BLOB_OP_UPLOAD_START:
    case BLOB_OP_UPLOAD_COMPLETE:
    case BLOB_OP_UPLOAD_ABORT:
        break; /* the front refuses them: the fs backend has no uploads */
    }
    return -ENOTSUP;
}

static void fs_cancel(blob_req *r)
{
    fs_req *q = (fs_req *)(void *)r;
    /* Only a read in flight is cancelled (a stuck open ends now); a PUT or DELETE runs to its
     * end unseen. Between completions (cancel called from a callback) nothing is in flight:
     * the handler that called back sees the flag and frees the request. */
    if (q->inflight && (r->kind == BLOB_OP_GET || r->kind == BLOB_OP_HEAD))
        io_uring_prep_cancel(loop_sqe(r->loop, NULL), &q->op, 0);
}

static s3_client *fs_client(const blob_aio *s, const rd_loop *loop)
{
    (void)s;
    (void)loop;
    return NULL;
}

static void fs_close(blob_aio *b)
{
    fs_store *s = (fs_store *)(void *)b;
    if (s->objects_fd >= 0)
        close(s->objects_fd);
    if (s->meta_fd >= 0)
        close(s->meta_fd);
    if (s->tmp_fd >= 0)
        close(s->tmp_fd);
    free(s);
}

static const blob_aio_ops fs_ops = {
    .name = "fs",
    .req_size = sizeof(fs_req),
    .wants_md5 = 1,
    .start = fs_start,
    .cancel = fs_cancel,
    .client = fs_client,
    .close = fs_close,
};

int blob_aio_open_fs(const char *data_dir, rd_loop *home, blob_aio **out, char *err, size_t errlen)
{
    int r = blobfs_make_layout(data_dir, err, errlen); /* and says why it cannot */
    if (r < 0)
        return r;
    fs_store *s = rd_calloc(1, sizeof(*s), "blob store");
    s->objects_fd = s->meta_fd = s->tmp_fd = -1;
    static const char *const dirs[] = {"blobs", "blobs.meta", "blobs.tmp"};
    int *fds[] = {&s->objects_fd, &s->meta_fd, &s->tmp_fd};
    for (int i = 0; i < 3; i++) {
        char path[PATH_MAX];
        snprintf(path, sizeof(path), "%s/%s", data_dir, dirs[i]);
        *fds[i] = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (*fds[i] < 0) {
            r = -errno;
            snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
            fs_close(&s->base);
            return r;
        }
    }
    r = blob_aio_init(&s->base, &fs_ops, home);
    if (r < 0) {
        snprintf(err, errlen, "cannot start the blob store's actor: %s", strerror(-r));
        fs_close(&s->base);
        return r;
    }
    s->base.watches = changes_are_local(s->objects_fd);
    *out = &s->base;
    return 0;
}
