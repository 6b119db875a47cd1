/* The storyboard of a video: small pictures taken every few seconds of the one decode, packed
 * into sprite JPEGs, and the WebVTT file that tells a player which part of which sprite shows
 * which time ("thumbnails" in video.js, Vidstack, Plyr and JW Player):
 *
 *   WEBVTT
 *
 *   00:00:00.000 --> 00:00:02.000
 *   sprite_0.jpg#xywh=0,0,160,90
 *
 * owns:  nothing; pure arithmetic and text over the caller's arrays.
 * never: decodes, scales or encodes (src/media/transcode.c does, with these numbers). */
#ifndef REELD_MEDIA_STORYBOARD_H
#define REELD_MEDIA_STORYBOARD_H

#include <stddef.h>
#include <stdint.h>

#define STORYBOARD_MAX_TILES  200 /* the most tiles an automatic interval aims for */
#define STORYBOARD_TILE_W     160 /* a tile's width in pixels (its height keeps the aspect) */
#define STORYBOARD_COLS       10  /* tiles across a sprite */
#define STORYBOARD_ROWS       10  /* tiles down a sprite */
#define STORYBOARD_PER_SPRITE (STORYBOARD_COLS * STORYBOARD_ROWS)

/* Seconds between tiles: `setting` when it is above 0 (STORYBOARD_INTERVAL_SEC), else the
 * smallest whole number of seconds that keeps a video of `duration` seconds (0 or less:
 * unknown) to STORYBOARD_MAX_TILES tiles, at least 1. */
int storyboard_interval(double duration, int setting);

/* A tile's size for a picture displayed at `w` x `h`: STORYBOARD_TILE_W wide (or `w` when
 * smaller), the height keeping the aspect, both even and at least 2. -EINVAL for a size
 * below 2x2. */
int storyboard_tile_size(int w, int h, int *tw, int *th);

/* Where tile `i` lies: its sprite's number and its top-left corner in that sprite. */
void storyboard_place(int i, int tw, int th, int *sprite, int *x, int *y);

/* The size of sprite `s` of a storyboard of `n` tiles: full rows of STORYBOARD_COLS tiles,
 * only as many rows (and, for a sprite of fewer tiles than a row, columns) as it holds. */
void storyboard_sprite_size(int s, int n, int tw, int th, int *w, int *h);

/* Writes the WebVTT file of `n` tiles: tile i's cue runs from start_ms[i] to start_ms[i + 1]
 * (the last to end_ms), so the cues cover the video without gaps. The first cue starts at 0
 * whatever start_ms[0] says. start_ms must increase and stay below end_ms. Sprites are named
 * "sprite_<s>.jpg", relative to the VTT file. Returns the length written (a NUL follows), or
 * -ENOSPC when `cap` is too small, -EINVAL for n < 1, unordered times or a bad tile size. */
int storyboard_vtt(char *buf, size_t cap, const int64_t *start_ms, int n, int64_t end_ms, int tw,
                   int th);

#endif
