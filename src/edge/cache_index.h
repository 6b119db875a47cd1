/* The edge cache's index: which objects one shard holds on disk, their sizes, and the order in
 * which they were last used (LRU), within a byte budget.
 *
 * owns:  its entries and hash table (allocated here; out of memory aborts, runtime rule).
 * never: touches the disk: the caller unlinks what cache_index_pop_lru hands back.
 *
 * One index per cache shard, used by one thread (the shard's loop, or the starting thread while
 * the index is rebuilt from disk). A key is the first 16 bytes of SHA-256("{asset}/{path}"). */
#ifndef REELD_EDGE_CACHE_INDEX_H
#define REELD_EDGE_CACHE_INDEX_H

#include <stdint.h>

typedef struct cache_key {
    uint64_t hi, lo;
} cache_key;

typedef struct cache_entry cache_entry;
struct cache_entry {
    cache_key key;
    uint64_t size;      /* bytes on disk */
    uint64_t tag;       /* the caller's (the edge: its asset's hash; 0 when unknown) */
    cache_entry *hnext; /* hash chain */
    cache_entry *newer; /* LRU list: towards the most recently used */
    cache_entry *older; /* LRU list: towards the least recently used */
};

typedef struct cache_index {
    cache_entry **buckets;
    uint32_t mask;      /* buckets - 1 (a power of two minus one) */
    uint32_t count;     /* entries */
    uint64_t bytes;     /* sum of their sizes */
    uint64_t max_bytes; /* the budget */
    cache_entry lru;    /* sentinel: lru.older is the most recent, lru.newer the least */
} cache_index;

/* An empty index with a budget of `max_bytes`. */
void cache_index_init(cache_index *ix, uint64_t max_bytes);
/* Frees every entry. */
void cache_index_fini(cache_index *ix);

/* The entry of `key`, or NULL. */
cache_entry *cache_index_find(cache_index *ix, cache_key key);
/* Marks `e` as the most recently used. */
void cache_index_touch(cache_index *ix, cache_entry *e);
/* Adds `key` as the most recently used and returns its entry; an existing entry is updated and
 * touched. */
cache_entry *cache_index_insert(cache_index *ix, cache_key key, uint64_t size);
/* Removes `key` if present; 1 when it was. */
int cache_index_remove(cache_index *ix, cache_key key);
/* While ix->bytes > ix->max_bytes: removes the least recently used entry, writes its key and
 * size, and returns 1. Returns 0 once the index is within its budget. */
int cache_index_pop_lru(cache_index *ix, cache_key *key, uint64_t *size);

#endif
