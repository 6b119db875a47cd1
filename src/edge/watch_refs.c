/* Holds per inotify watch of one edge shard; see watch_refs.h. */
#include "src/edge/watch_refs.h"

#include <assert.h>
#include <stdlib.h>

#include "src/rt/alloc.h"

/* Where `wd` belongs first: Fibonacci hashing (the kernel hands descriptors out in sequence). */
static uint32_t home(const watch_refs *w, int wd)
{
    return (uint32_t)(((uint64_t)(uint32_t)wd * 0x9e3779b97f4a7c15ull) >> 32) & (w->cap - 1);
}

/* The slot holding `wd`, or the empty one where it would go. */
static uint32_t find(const watch_refs *w, int wd)
{
    uint32_t i = home(w, wd);
    while (w->slot[i].wd != 0 && w->slot[i].wd != wd)
        i = (i + 1) & (w->cap - 1);
    return i;
}

static void grow(watch_refs *w)
{
    watch_refs bigger = {.cap = w->cap ? w->cap * 2 : 64};
    bigger.slot = rd_calloc(bigger.cap, sizeof(*bigger.slot), "an edge shard's watch table");
    for (uint32_t i = 0; i < w->cap; i++)
        if (w->slot[i].wd != 0)
            bigger.slot[find(&bigger, w->slot[i].wd)] = w->slot[i];
    bigger.len = w->len;
    free(w->slot);
    *w = bigger;
}

void watch_refs_hold(watch_refs *w, int wd)
{
    assert(wd > 0);
    if ((w->len + 1) * 2 > w->cap)
        grow(w);
    uint32_t i = find(w, wd);
    if (w->slot[i].wd == 0) {
        w->slot[i].wd = wd;
        w->len++;
    }
    w->slot[i].n++;
}

int watch_refs_release(watch_refs *w, int wd)
{
    assert(wd > 0 && w->cap > 0);
    uint32_t i = find(w, wd), mask = w->cap - 1;
    assert(w->slot[i].wd == wd && w->slot[i].n > 0);
    if (--w->slot[i].n > 0)
        return 0;
    /* Backward shift: each later entry of the run moves into the hole unless its home lies
     * cyclically after the hole (then probing from its home still reaches it). */
    for (uint32_t j = (i + 1) & mask; w->slot[j].wd != 0; j = (j + 1) & mask) {
        uint32_t h = home(w, w->slot[j].wd);
        if (((j - h) & mask) >= ((j - i) & mask)) {
            w->slot[i] = w->slot[j];
            i = j;
        }
    }
    w->slot[i].wd = 0;
    w->slot[i].n = 0;
    w->len--;
    return 1;
}

uint32_t watch_refs_count(const watch_refs *w, int wd)
{
    if (w->cap == 0 || wd <= 0)
        return 0;
    const struct watch_ref *s = &w->slot[find(w, wd)];
    return s->wd == wd ? s->n : 0;
}

void watch_refs_fini(watch_refs *w)
{
    free(w->slot);
    *w = (watch_refs){0};
}
