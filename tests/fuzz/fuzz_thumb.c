/* libFuzzer target for the thumbnail parameters and playlist lookups (proto/thumb.c): the
 * input is a query string, then after the first NUL a playlist (asked both as a master and as
 * a media playlist), then the time in its last 4 bytes.
 *
 * Checks: nothing reads past its slice; accepted parameters are in range and on the step; a
 * canonical name parses back to the same values; a URI found is NUL-terminated, non-empty, fits
 * its buffer and is a slice of one line of the playlist; the segment's start is not after the
 * time asked unless it is the last segment. */
#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/http1.c"
#include "proto/thumb.c"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t ql = strnlen((const char *)data, size);
    char *q = malloc(ql ? ql : 1);
    memcpy(q, data, ql);
    int64_t t = -1;
    int w = -1;
    const char *why = NULL;
    if (thumb_params(q, ql, &t, &w, &why) == 0) {
        assert(t >= 0 && t <= THUMB_MAX_TIME_MS + THUMB_STEP_MS && t % THUMB_STEP_MS == 0);
        assert(w >= THUMB_MIN_WIDTH && w <= THUMB_MAX_WIDTH);
        char path[THUMB_PATH_MAX];
        int n = thumb_path(path, sizeof(path), t, w);
        int64_t t2 = -1;
        int w2 = -1;
        assert(n > 0 && (size_t)n == strlen(path));
        assert(thumb_path_parse(path, &t2, &w2) == (t <= THUMB_MAX_TIME_MS));
        assert(t > THUMB_MAX_TIME_MS || (t2 == t && w2 == w));
    } else {
        assert(why != NULL && why[0] != '\0');
    }
    free(q);

    size_t pl = ql < size ? size - ql - 1 : 0;
    const uint8_t *p0 = data + (ql < size ? ql + 1 : size);
    int64_t at = 0;
    if (pl >= 4) {
        uint32_t raw;
        memcpy(&raw, p0 + pl - 4, 4);
        at = raw;
        pl -= 4;
    }
    char *text = malloc(pl ? pl : 1);
    memcpy(text, p0, pl);
    char uri[64], map[64];
    int width = -1;
    if (thumb_top_variant(text, pl, uri, sizeof(uri), &width) == 0) {
        size_t ul = strlen(uri);
        assert(ul > 0 && ul < sizeof(uri) && uri[0] != '#' && memchr(uri, '\n', ul) == NULL);
        assert(width >= 0);
    }
    int64_t start = -1;
    if (thumb_segment_at(text, pl, at, uri, sizeof(uri), &start, map, sizeof(map)) == 0) {
        size_t ul = strlen(uri);
        assert(ul > 0 && ul < sizeof(uri) && memchr(uri, '\n', ul) == NULL);
        assert(start >= 0 && strlen(map) < sizeof(map));
    }
    free(text);
    return 0;
}
