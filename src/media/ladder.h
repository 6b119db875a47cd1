/* The HLS ladder: which renditions a source gets, at what size and bitrate.
 *
 * owns:  nothing; pure arithmetic over the caller's arrays.
 *
 * A preset names the top rung: 1080p = 1080/720/480/360, 720p = 720/480/360, 480p = 480/360.
 * The rung's height is the short side of the displayed picture, so a portrait phone video gets
 * 1080x1920 for "1080p". Rungs above the source are dropped (never upscale); a source smaller
 * than the lowest rung gets one rung at its own size. Every dimension is even. */
#ifndef REELD_MEDIA_LADDER_H
#define REELD_MEDIA_LADDER_H

#define LADDER_MAX_RUNGS 4
#define LADDER_MAX_SIDE  8192 /* larger sources are refused: no ladder needs them */

typedef struct ladder_rung {
    char name[8];     /* "720p": the rendition's directory */
    int width;        /* displayed (rotation applied), even */
    int height;       /* even */
    int video_kbps;   /* target average bitrate */
    int maxrate_kbps; /* VBV ceiling */
} ladder_rung;

/* Resolves "auto" to the preset for the encoder: "1080p" on NVENC, "480p" on CPU. Any other
 * name is returned unchanged. */
const char *ladder_preset(const char *preset, int nvenc);

/* The most rungs `preset` ("auto" resolved) can give: 4, 3 or 2; 0 for an unknown name. */
int ladder_max_rungs(const char *preset);

/* Fills `out` (LADDER_MAX_RUNGS entries) for a source displayed at `width` x `height` (pixels
 * of square aspect, rotation applied). Returns the number of rungs (>= 1), or -EINVAL for an
 * unknown preset or a size outside 2..LADDER_MAX_SIDE. */
int ladder_build(const char *preset, int width, int height, ladder_rung *out);

#endif
