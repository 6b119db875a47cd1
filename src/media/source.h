/* Sources: where a job's input bytes come from, behind one small interface, so the demuxer
 * reads a local file or an object of a blob store (S3 by ranged GETs, or the fs backend)
 * through the same AVIOContext.
 *
 * owns:  whatever the backend needs (a file descriptor, a read-ahead window); freed by
 *        source_close.
 * never: reads the whole input into memory; the demuxer pulls what it needs, a window at a
 *        time. */
#ifndef REELD_MEDIA_SOURCE_H
#define REELD_MEDIA_SOURCE_H

#include <stddef.h>
#include <stdint.h>

typedef struct media_source media_source;

struct media_source {
    /* Reads up to `len` bytes at the current position: the count, 0 at the end, or -errno. */
    int (*read)(media_source *s, uint8_t *buf, int len);
    /* Moves to `offset` from SEEK_SET, SEEK_CUR or SEEK_END: the new position, or -errno. */
    int64_t (*seek)(media_source *s, int64_t offset, int whence);
    void (*close)(media_source *s);
    int64_t size; /* bytes, or -1 when unknown */
    /* The first read that failed, kept: a demuxer may take a failed read for the end of the
     * input, so whoever runs the job checks this before calling a short output whole. 0 when
     * every read succeeded; `why` then is empty. */
    int error;
    char why[256];
};

/* Opens a local file as a source. 0 or -errno; *out is the caller's, for source_close. */
int source_open_file(const char *path, media_source **out);

struct blob_store;

#define SOURCE_BLOB_WINDOW (4u << 20) /* bytes one ranged GET asks for */

/* Opens `key` of `bucket` in a blob store as a source: a HEAD for the size now, then one
 * ranged GET per SOURCE_BLOB_WINDOW the demuxer reaches (a seek inside the window costs
 * nothing). Blocking: for an encoder's thread, never a loop. 0 or -errno (-ENOENT: no such
 * object) with one sentence in `err`; *out is the caller's, for source_close. */
int source_open_blob(struct blob_store *b, const char *bucket, const char *key, media_source **out,
                     char *err, size_t errlen);

/* Closes a source; NULL is a no-op. */
void source_close(media_source *s);

#endif
