/* The publication order of an HLS ladder (see hls_publish.h). Plans are small (a few hundred
 * objects for an hour of a three-rung ladder), so every question is a linear scan. */
#include "src/media/hls_publish.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "src/rt/alloc.h"

typedef enum obj_state { OBJ_WAITING, OBJ_STARTED, OBJ_LANDED } obj_state;

typedef struct hlspub_obj {
    char name[HLSPUB_MAX_NAME];
    hlspub_kind kind;
    obj_state state;
    char (*deps)[HLSPUB_MAX_NAME]; /* playlists: the objects they name, full names */
    int ndeps;
} hlspub_obj;

struct hlspub {
    hlspub_obj *objs;
    int n, cap;
    int finished;
};

/* realloc that aborts on out-of-memory, like rd_calloc. */
static void *grow(void *old, size_t size)
{
    void *p = rd_realloc(old, size, "hls publication plan");
    return p;
}

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

hlspub_kind hlspub_kind_of(const char *name)
{
    if (strcmp(name, "master.m3u8") == 0)
        return HLSPUB_MASTER;
    if (ends_with(name, ".m3u8"))
        return HLSPUB_VARIANT;
    /* Only the poster waits for the master; the storyboard's sprites and VTT, and the MP4
     * download, are things the master's readiness promises, so they go before it. */
    if (strcmp(name, "poster.jpg") == 0 || strcmp(name, "poster.webp") == 0)
        return HLSPUB_POSTER;
    return HLSPUB_SEGMENT;
}

static int valid_name(const char *name, size_t len)
{
    return len > 0 && len < HLSPUB_MAX_NAME && name[0] != '/' &&
           memmem(name, len, "..", 2) == NULL && memmem(name, len, "://", 3) == NULL &&
           memchr(name, '\0', len) == NULL;
}

hlspub *hlspub_new(void)
{
    return rd_calloc(1, sizeof(hlspub), "hls publication plan");
}

void hlspub_free(hlspub *p)
{
    if (p == NULL)
        return;
    for (int i = 0; i < p->n; i++)
        free(p->objs[i].deps);
    free(p->objs);
    free(p);
}

/* Appends `uri` (relative to the playlist `dir`, dirlen bytes with its '/') to o's deps. */
static int add_dep(hlspub_obj *o, const char *dir, size_t dirlen, const char *uri, size_t len)
{
    if (dirlen + len >= HLSPUB_MAX_NAME || !valid_name(uri, len))
        return -EINVAL;
    o->deps = grow(o->deps, (size_t)(o->ndeps + 1) * sizeof(*o->deps));
    memcpy(o->deps[o->ndeps], dir, dirlen);
    memcpy(o->deps[o->ndeps] + dirlen, uri, len);
    o->deps[o->ndeps][dirlen + len] = '\0';
    o->ndeps++;
    return 0;
}

/* The URIs a playlist names: every line that is not a tag or blank, and EXT-X-MAP's URI. */
static int parse_deps(hlspub_obj *o, const uint8_t *data, size_t len)
{
    const char *slash = strrchr(o->name, '/');
    size_t dirlen = slash ? (size_t)(slash - o->name) + 1 : 0;
    const char *s = (const char *)data, *end = s + len;
    while (s < end) {
        const char *nl = memchr(s, '\n', (size_t)(end - s));
        const char *e = nl ? nl : end;
        size_t n = (size_t)(e - s);
        if (n > 0 && s[n - 1] == '\r')
            n--;
        int r = 0;
        if (n > 0 && s[0] != '#') {
            r = add_dep(o, o->name, dirlen, s, n);
        } else if (n > 15 && strncmp(s, "#EXT-X-MAP:", 11) == 0) {
            const char *u = memmem(s, n, "URI=\"", 5);
            const char *q = u ? memchr(u + 5, '"', (size_t)(s + n - (u + 5))) : NULL;
            if (q == NULL)
                return -EINVAL;
            r = add_dep(o, o->name, dirlen, u + 5, (size_t)(q - (u + 5)));
        }
        if (r < 0)
            return r;
        s = e + 1;
    }
    return 0;
}

int hlspub_add(hlspub *p, const char *name, const uint8_t *data, size_t len)
{
    if (p->finished)
        return -EALREADY;
    if (!valid_name(name, strlen(name)))
        return -EINVAL;
    for (int i = 0; i < p->n; i++)
        if (strcmp(p->objs[i].name, name) == 0)
            return -EEXIST;
    if (p->n == p->cap) {
        p->cap = p->cap ? p->cap * 2 : 32;
        p->objs = grow(p->objs, (size_t)p->cap * sizeof(*p->objs));
    }
    hlspub_obj *o = &p->objs[p->n];
    memset(o, 0, sizeof(*o));
    snprintf(o->name, sizeof(o->name), "%s", name);
    o->kind = hlspub_kind_of(name);
    if (o->kind == HLSPUB_VARIANT || o->kind == HLSPUB_MASTER) {
        int r = parse_deps(o, data, len);
        if (r < 0) {
            free(o->deps);
            return r;
        }
    }
    return p->n++;
}

static int find(const hlspub *p, const char *name)
{
    for (int i = 0; i < p->n; i++)
        if (strcmp(p->objs[i].name, name) == 0)
            return i;
    return -1;
}

int hlspub_finish(hlspub *p, char *err, size_t errlen)
{
    for (int i = 0; i < p->n; i++) {
        const hlspub_obj *o = &p->objs[i];
        for (int d = 0; d < o->ndeps; d++)
            if (find(p, o->deps[d]) < 0) {
                snprintf(err, errlen, "%s names %s, which the job never produced", o->name,
                         o->deps[d]);
                return -ENOENT;
            }
    }
    p->finished = 1;
    return 0;
}

static int deps_landed(const hlspub *p, const hlspub_obj *o)
{
    for (int d = 0; d < o->ndeps; d++) {
        int j = find(p, o->deps[d]);
        if (j < 0 || p->objs[j].state != OBJ_LANDED)
            return 0;
    }
    return 1;
}

/* Every object of the kinds below the master has landed. */
static int all_but_top_landed(const hlspub *p)
{
    for (int i = 0; i < p->n; i++) {
        hlspub_kind k = p->objs[i].kind;
        if (k != HLSPUB_MASTER && k != HLSPUB_POSTER && p->objs[i].state != OBJ_LANDED)
            return 0;
    }
    return 1;
}

static int may_start(const hlspub *p, const hlspub_obj *o)
{
    switch (o->kind) {
    case HLSPUB_SEGMENT:
        return 1;
    case HLSPUB_VARIANT:
        return deps_landed(p, o);
    case HLSPUB_MASTER:
        return p->finished && all_but_top_landed(p) && deps_landed(p, o);
    case HLSPUB_POSTER: {
        if (!p->finished || !all_but_top_landed(p))
            return 0;
        for (int i = 0; i < p->n; i++)
            if (p->objs[i].kind == HLSPUB_MASTER && p->objs[i].state != OBJ_LANDED)
                return 0;
        return 1;
    }
    }
    return 0;
}

int hlspub_next(hlspub *p)
{
    for (int i = 0; i < p->n; i++) {
        hlspub_obj *o = &p->objs[i];
        if (o->state == OBJ_WAITING && may_start(p, o)) {
            o->state = OBJ_STARTED;
            return i;
        }
    }
    return -EAGAIN;
}

void hlspub_landed(hlspub *p, int i)
{
    p->objs[i].state = OBJ_LANDED;
}

int hlspub_complete(const hlspub *p)
{
    if (!p->finished)
        return 0;
    for (int i = 0; i < p->n; i++)
        if (p->objs[i].state != OBJ_LANDED)
            return 0;
    return 1;
}

int hlspub_count(const hlspub *p)
{
    return p->n;
}

const char *hlspub_name(const hlspub *p, int i)
{
    return p->objs[i].name;
}

hlspub_kind hlspub_kind_at(const hlspub *p, int i)
{
    return p->objs[i].kind;
}

int hlspub_has_landed(const hlspub *p, int i)
{
    return p->objs[i].state == OBJ_LANDED;
}
