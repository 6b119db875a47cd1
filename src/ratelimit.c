/* Token buckets in an open-addressed table: tokens are kept in thousandths so a refill of less
 * than one token per second is not lost to rounding. */
#include "src/ratelimit.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

typedef struct bucket {
    uint64_t hash; /* 0: empty */
    int cls;
    char client[RATELIMIT_KEY];
    int64_t milli;   /* tokens x 1000 */
    int64_t last_ms; /* last refill */
} bucket;

struct ratelimit {
    bucket b[RATELIMIT_SLOTS];
};

int ratelimit_create(ratelimit **out)
{
    *out = calloc(1, sizeof(**out));
    return *out ? 0 : -ENOMEM;
}

void ratelimit_destroy(ratelimit *rl)
{
    free(rl);
}

static uint64_t fnv1a(int cls, const char *s)
{
    uint64_t h = 1469598103934665603ull ^ (uint64_t)(unsigned)cls;
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ull;
    }
    return h ? h : 1;
}

int ratelimit_take(ratelimit *rl, int cls, const char *client, int max, int window_s,
                   int64_t now_ms)
{
    char key[RATELIMIT_KEY];
    size_t n = strlen(client);
    if (n >= sizeof(key))
        n = sizeof(key) - 1;
    memcpy(key, client, n);
    key[n] = '\0';
    uint64_t h = fnv1a(cls, key);
    bucket *slot = NULL, *stalest = NULL;
    for (int i = 0; i < RATELIMIT_PROBE && slot == NULL; i++) {
        bucket *b = &rl->b[(h + (uint64_t)i) & (RATELIMIT_SLOTS - 1)];
        if (b->hash == h && b->cls == cls && strcmp(b->client, key) == 0)
            slot = b;
        else if (b->hash == 0 || stalest == NULL ||
                 (stalest->hash != 0 && b->last_ms < stalest->last_ms))
            stalest = b;
    }
    int64_t cap = (int64_t)max * 1000;
    if (slot == NULL) {
        slot = stalest;
        slot->hash = h;
        slot->cls = cls;
        memcpy(slot->client, key, n + 1);
        slot->milli = cap;
        slot->last_ms = now_ms;
    }
    /* Refill: max tokens per window, i.e. max * 1000 milli-tokens per window_s * 1000 ms. */
    int64_t elapsed = now_ms - slot->last_ms;
    if (elapsed > 0) {
        int64_t gain = elapsed * (int64_t)max / window_s;
        slot->milli = slot->milli + gain > cap ? cap : slot->milli + gain;
        slot->last_ms = now_ms;
    }
    if (slot->milli >= 1000) {
        slot->milli -= 1000;
        return 0;
    }
    /* Time until 1000 milli-tokens: (1000 - milli) / (max / window_s) ms. */
    int64_t wait_ms = ((1000 - slot->milli) * window_s + max - 1) / max;
    int64_t s = (wait_ms + 999) / 1000;
    return s < 1 ? 1 : (int)s;
}
