/* Sources: where a job's input bytes come from, behind one small interface, so the demuxer
 * reads a local file now and an S3 object by ranged GETs later through the same AVIOContext.
 *
 * owns:  whatever the backend needs (a file descriptor here); freed by source_close.
 * never: reads the whole input into memory; the demuxer pulls what it needs. */
#ifndef REELD_MEDIA_SOURCE_H
#define REELD_MEDIA_SOURCE_H

#include <stdint.h>

typedef struct media_source media_source;

struct media_source {
    /* Reads up to `len` bytes at the current position: the count, 0 at the end, or -errno. */
    int (*read)(media_source *s, uint8_t *buf, int len);
    /* Moves to `offset` from SEEK_SET, SEEK_CUR or SEEK_END: the new position, or -errno. */
    int64_t (*seek)(media_source *s, int64_t offset, int whence);
    void (*close)(media_source *s);
    int64_t size; /* bytes, or -1 when unknown */
};

/* Opens a local file as a source. 0 or -errno; *out is the caller's, for source_close. */
int source_open_file(const char *path, media_source **out);

/* Closes a source; NULL is a no-op. */
void source_close(media_source *s);

#endif
