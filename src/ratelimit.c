/* Token buckets in an open-addressed table: tokens are kept in thousandths so a refill of less
 * than one token per second is not lost to rounding. */
#include "src/ratelimit.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "proto/fnv.h"

typedef struct bucket {
    uint64_t hash; /* 0: empty */
    int cls;
    char client[RATELIMIT_KEY];
    int64_t milli;   /* tokens x 1000 */
    int64_t last_ms; /* last refill */
} bucket;

struct ratelimit {
    pthread_mutex_t lock; /* the readers' fronts (one per loop) share one table */
    bucket b[RATELIMIT_SLOTS];
};

int ratelimit_create(ratelimit **out)
{
    *out = calloc(1, sizeof(**out));
    if (*out == NULL)
        return -ENOMEM;
    pthread_mutex_init(&(*out)->lock, NULL);
    return 0;
}

void ratelimit_destroy(ratelimit *rl)
{
    if (rl != NULL)
        pthread_mutex_destroy(&rl->lock);
    free(rl);
}

static uint64_t fnv1a(int cls, const char *s)
{
    uint64_t h = fnv1a64(FNV64_BASIS ^ (uint64_t)(unsigned)cls, s, strlen(s));
    return h ? h : 1;
}

static void clip_key(const char *client, char key[RATELIMIT_KEY])
{
    size_t n = strlen(client);
    if (n >= RATELIMIT_KEY)
        n = RATELIMIT_KEY - 1;
    memcpy(key, client, n);
    key[n] = '\0';
}

/* The bucket of (cls, key), or NULL; `stalest` (when not NULL) gets the slot to reuse for it. */
static bucket *find(ratelimit *rl, int cls, const char *key, uint64_t h, bucket **stalest)
{
    bucket *old = NULL;
    for (int i = 0; i < RATELIMIT_PROBE; i++) {
        bucket *b = &rl->b[(h + (uint64_t)i) & (RATELIMIT_SLOTS - 1)];
        if (b->hash == h && b->cls == cls && strcmp(b->client, key) == 0)
            return b;
        if (b->hash == 0 || old == NULL || (old->hash != 0 && b->last_ms < old->last_ms))
            old = b;
    }
    if (stalest != NULL)
        *stalest = old;
    return NULL;
}

/* The milli-tokens of `b` at now_ms: max tokens per window, i.e. max * 1000 milli-tokens per
 * window_s * 1000 ms, never above max. */
static int64_t refilled(const bucket *b, int max, int window_s, int64_t now_ms)
{
    int64_t cap = (int64_t)max * 1000, elapsed = now_ms - b->last_ms;
    if (elapsed <= 0)
        return b->milli;
    int64_t gain = elapsed * (int64_t)max / window_s;
    return b->milli + gain > cap ? cap : b->milli + gain;
}

/* Seconds until `milli` reaches one token: (1000 - milli) / (max / window_s) ms, at least 1. */
static int wait_s(int64_t milli, int max, int window_s)
{
    int64_t wait_ms = ((1000 - milli) * window_s + max - 1) / max;
    int64_t s = (wait_ms + 999) / 1000;
    return s < 1 ? 1 : (int)s;
}

static int take(ratelimit *rl, int cls, const char *key, uint64_t h, int max, int window_s,
                int64_t now_ms);

int ratelimit_take(ratelimit *rl, int cls, const char *client, int max, int window_s,
                   int64_t now_ms)
{
    char key[RATELIMIT_KEY];
    clip_key(client, key);
    uint64_t h = fnv1a(cls, key);
    pthread_mutex_lock(&rl->lock);
    int r = take(rl, cls, key, h, max, window_s, now_ms);
    pthread_mutex_unlock(&rl->lock);
    return r;
}

static int take(ratelimit *rl, int cls, const char *key, uint64_t h, int max, int window_s,
                int64_t now_ms)
{
    bucket *stalest = NULL, *slot = find(rl, cls, key, h, &stalest);
    if (slot == NULL) {
        slot = stalest;
        slot->hash = h;
        slot->cls = cls;
        memcpy(slot->client, key, strlen(key) + 1);
        slot->milli = (int64_t)max * 1000;
        slot->last_ms = now_ms;
    }
    if (now_ms > slot->last_ms) {
        slot->milli = refilled(slot, max, window_s, now_ms);
        slot->last_ms = now_ms;
    }
    if (slot->milli >= 1000) {
        slot->milli -= 1000;
        return 0;
    }
    return wait_s(slot->milli, max, window_s);
}

int ratelimit_peek(ratelimit *rl, int cls, const char *client, int max, int window_s,
                   int64_t now_ms)
{
    char key[RATELIMIT_KEY];
    clip_key(client, key);
    pthread_mutex_lock(&rl->lock);
    const bucket *b = find(rl, cls, key, fnv1a(cls, key), NULL);
    int64_t milli = b == NULL ? 1000 : refilled(b, max, window_s, now_ms);
    pthread_mutex_unlock(&rl->lock);
    /* No bucket: never taken from (or evicted), so full. */
    return milli >= 1000 ? 0 : wait_s(milli, max, window_s);
}
