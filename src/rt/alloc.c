#include "src/rt/alloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void out_of_memory(const char *what, size_t size)
{
    fprintf(stderr, "reeld: out of memory (%zu bytes): %s\n", size, what);
    abort();
}

void *rd_malloc(size_t size, const char *what)
{
    void *p = malloc(size);
    if (p == NULL && size > 0)
        out_of_memory(what, size);
    return p;
}

void *rd_realloc(void *old, size_t size, const char *what)
{
    void *p = realloc(old, size);
    if (p == NULL && size > 0)
        out_of_memory(what, size);
    return p;
}

void *rd_calloc(size_t n, size_t size, const char *what)
{
    void *p = calloc(n, size);
    if (p == NULL)
        out_of_memory(what, n * size);
    return p;
}

void *rd_aligned(size_t align, size_t size, const char *what)
{
    size_t rounded = (size + align - 1) & ~(align - 1);
    void *p = aligned_alloc(align, rounded);
    if (p == NULL)
        out_of_memory(what, rounded);
    return p;
}

void *rd_calloc_aligned(size_t size, const char *what)
{
    void *p = rd_aligned(64, size, what);
    memset(p, 0, (size + 63) & ~(size_t)63);
    return p;
}

char *rd_strdup(const char *s, const char *what)
{
    size_t n = strlen(s) + 1;
    return memcpy(rd_malloc(n, what), s, n);
}
