/* Files embedded in the binary at build time: everything under assets/ in the repository
 * (build.zig generates their definition). Read-only; the bytes are NUL-terminated (the NUL is
 * not counted in len).
 *
 * owns:  nothing at run time: the table is constant data.
 * never: changes; is read from disk at run time. */
#ifndef REELD_RT_ASSETS_H
#define REELD_RT_ASSETS_H

#include <stddef.h>
#include <string.h>

typedef struct rd_embedded {
    const char *path; /* under assets/: "console/index.html" */
    const char *data;
    size_t len;
} rd_embedded;

extern const rd_embedded rd_embedded_files[];
extern const int rd_nembedded;

/* The asset at `path` (len bytes, not NUL-terminated), or NULL. */
static inline const rd_embedded *rd_embedded_find(const char *path, size_t len)
{
    for (int i = 0; i < rd_nembedded; i++)
        if (strlen(rd_embedded_files[i].path) == len &&
            memcmp(rd_embedded_files[i].path, path, len) == 0)
            return &rd_embedded_files[i];
    return NULL;
}

#endif
