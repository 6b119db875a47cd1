/* Ladder arithmetic. Bitrates follow the usual H.264 web ladders (roughly 0.08 bits per pixel
 * at 30 fps); a rung at the source's own size gets a bitrate in proportion to its pixels. */
#include "src/media/ladder.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static const struct {
    int short_side;
    int kbps;
} rungs[] = {{1080, 5000}, {720, 2800}, {480, 1400}, {360, 800}};

#define NRUNGS (int)(sizeof(rungs) / sizeof(rungs[0]))

const char *ladder_preset(const char *preset, int nvenc)
{
    if (preset == NULL || !strcmp(preset, "auto"))
        return nvenc ? "1080p" : "480p";
    return preset;
}

/* The even number nearest to num / den (a computed side). */
static int even_nearest(long num, long den)
{
    long v = (num + den) / (2 * den) * 2;
    return v < 2 ? 2 : (int)v;
}

/* Even value at most `v` (the source's own side: never upscale, not even by a pixel). */
static int even_down(long v)
{
    v &= ~1L;
    return v < 2 ? 2 : (int)v;
}

static void fill(ladder_rung *r, int width, int height, int kbps)
{
    int s = width < height ? width : height;
    snprintf(r->name, sizeof(r->name), "%up", (unsigned)s % 10000u);
    r->width = width;
    r->height = height;
    r->video_kbps = kbps;
    r->maxrate_kbps = kbps * 3 / 2;
}

int ladder_max_rungs(const char *preset)
{
    if (!strcmp(preset, "1080p"))
        return NRUNGS;
    if (!strcmp(preset, "720p"))
        return NRUNGS - 1;
    if (!strcmp(preset, "480p"))
        return NRUNGS - 2;
    return 0;
}

int ladder_build(const char *preset, int width, int height, ladder_rung *out)
{
    int top;
    if (!strcmp(preset, "1080p"))
        top = 0;
    else if (!strcmp(preset, "720p"))
        top = 1;
    else if (!strcmp(preset, "480p"))
        top = 2;
    else
        return -EINVAL;
    if (width < 2 || height < 2 || width > LADDER_MAX_SIDE || height > LADDER_MAX_SIDE)
        return -EINVAL;
    int portrait = height > width;
    long src_short = portrait ? width : height, src_long = portrait ? height : width;
    int n = 0;
    for (int i = top; i < NRUNGS; i++) {
        long s = rungs[i].short_side;
        if (s > src_short)
            continue;
        int l = even_nearest(src_long * s, src_short);
        fill(&out[n++], portrait ? (int)s : l, portrait ? l : (int)s, rungs[i].kbps);
    }
    if (n == 0) {
        const long pixels_360 = 640L * 360;
        int w = even_down(width), h = even_down(height);
        long kbps = rungs[NRUNGS - 1].kbps * ((long)w * h) / pixels_360;
        fill(&out[n++], w, h, kbps < 100 ? 100 : (int)kbps);
    }
    return n;
}
