/* How many readers hold each inotify watch of one edge shard: the playlist reads under way and
 * kept that read through it (two reads of one file share its watch, as do hard links to one
 * file). The last release says the watch may go. (Removing one that another read still uses
 * would serve nothing stale, its IN_IGNORED reads as a change, but would read the file again.)
 *
 * owns:  its table (allocated here; out of memory aborts, runtime rule).
 * never: calls inotify itself: the shard adds watches (through the blob store) and removes
 *        the one whose last hold watch_refs_release reports.
 *
 * Before this a shard walked every read under way and every kept playlist (up to 1,024) on each
 * free to learn whether a watch was still in use: an eviction per new playlist on a full shard,
 * and a lost-events drop of them all quadratic. Open addressing with linear probing, removal by
 * backward shift (no tombstones), grown at half full; one thread (the shard's loop). */
#ifndef REELD_EDGE_WATCH_REFS_H
#define REELD_EDGE_WATCH_REFS_H

#include <stdint.h>

typedef struct watch_refs {
    struct watch_ref {
        int32_t wd; /* 0: empty (inotify's descriptors start at 1) */
        uint32_t n; /* holds */
    } * slot;
    uint32_t cap; /* slots: 0, or a power of two */
    uint32_t len; /* watches held */
} watch_refs;

/* One more hold of watch `wd` (> 0). */
void watch_refs_hold(watch_refs *w, int wd);
/* One hold of `wd` let go (it must be held): 1 when it was the last, 0 otherwise. */
int watch_refs_release(watch_refs *w, int wd);
/* The holds of `wd`; 0 when none. */
uint32_t watch_refs_count(const watch_refs *w, int wd);
/* Frees the table; `w` is empty and usable after. */
void watch_refs_fini(watch_refs *w);

#endif
