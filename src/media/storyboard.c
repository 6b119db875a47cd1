/* The storyboard's numbers and its WebVTT file (storyboard.h). */
#include "src/media/storyboard.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>

int storyboard_interval(double duration, int setting)
{
    if (setting > 0)
        return setting;
    if (!(duration > 0) || duration > 1e9)
        return 1;
    int n = (int)ceil(duration / STORYBOARD_MAX_TILES);
    return n < 1 ? 1 : n;
}

int storyboard_tile_size(int w, int h, int *tw, int *th)
{
    if (w < 2 || h < 2)
        return -EINVAL;
    int W = w < STORYBOARD_TILE_W ? w & ~1 : STORYBOARD_TILE_W;
    long H = ((long)W * h + w / 2) / w; /* rounded */
    H &= ~1L;
    if (H < 2)
        H = 2;
    if (H > 4 * STORYBOARD_TILE_W)
        H = 4 * STORYBOARD_TILE_W; /* a sliver of a video still gets a tile a player can show */
    *tw = W;
    *th = (int)H;
    return 0;
}

void storyboard_place(int i, int tw, int th, int *sprite, int *x, int *y)
{
    int k = i % STORYBOARD_PER_SPRITE;
    *sprite = i / STORYBOARD_PER_SPRITE;
    *x = k % STORYBOARD_COLS * tw;
    *y = k / STORYBOARD_COLS * th;
}

void storyboard_sprite_size(int s, int n, int tw, int th, int *w, int *h)
{
    int in = n - s * STORYBOARD_PER_SPRITE;
    if (in > STORYBOARD_PER_SPRITE)
        in = STORYBOARD_PER_SPRITE;
    if (in < 1)
        in = 1;
    int cols = in < STORYBOARD_COLS ? in : STORYBOARD_COLS;
    int rows = (in + STORYBOARD_COLS - 1) / STORYBOARD_COLS;
    *w = cols * tw;
    *h = rows * th;
}

static void put_time(char out[40], int64_t ms)
{
    if (ms < 0)
        ms = 0;
    int64_t s = ms / 1000;
    snprintf(out, 40, "%02lld:%02lld:%02lld.%03lld", (long long)(s / 3600),
             (long long)(s / 60 % 60), (long long)(s % 60), (long long)(ms % 1000));
}

int storyboard_vtt(char *buf, size_t cap, const int64_t *start_ms, int n, int64_t end_ms, int tw,
                   int th)
{
    if (n < 1 || tw < 1 || th < 1 || start_ms[0] < 0)
        return -EINVAL;
    for (int i = 0; i < n; i++)
        if ((i > 0 && start_ms[i] <= start_ms[i - 1]) || start_ms[i] >= end_ms)
            return -EINVAL;
    size_t len = 0;
    int w = snprintf(buf, cap, "WEBVTT\n");
    if (w < 0 || (size_t)w >= cap)
        return -ENOSPC;
    len = (size_t)w;
    for (int i = 0; i < n; i++) {
        char a[40], b[40];
        put_time(a, i == 0 ? 0 : start_ms[i]);
        put_time(b, i + 1 < n ? start_ms[i + 1] : end_ms);
        int s, x, y;
        storyboard_place(i, tw, th, &s, &x, &y);
        w = snprintf(buf + len, cap - len, "\n%s --> %s\nsprite_%d.jpg#xywh=%d,%d,%d,%d\n", a, b, s,
                     x, y, tw, th);
        if (w < 0 || (size_t)w >= cap - len)
            return -ENOSPC;
        len += (size_t)w;
    }
    return (int)len;
}
