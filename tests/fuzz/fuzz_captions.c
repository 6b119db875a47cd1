/* libFuzzer target for the captions reader, writer and segmenter (proto/captions.c): the input
 * is read as a captions file with each format hint, and as a language tag.
 *
 * Checks: nothing reads or writes out of bounds; a refusal names a line of the input and says
 * so in its message; an accepted track keeps its promises (sorted, end after start, text
 * non-empty without blank lines or "-->", within the limits); written back as WebVTT it reads
 * back to the same cues; each HLS segment is WebVTT that reads back to exactly the cues that
 * overlap it, in order; the playlist fits CAPTIONS_PLAYLIST_CAP and lists every segment; an
 * accepted language tag holds only letters, digits and '-'. */
#include <assert.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/captions.c"

static void same_cue(const captions_cue *a, const captions_cue *b)
{
    assert(a->start_ms == b->start_ms && a->end_ms == b->end_ms);
    assert(strcmp(a->text, b->text) == 0 && strcmp(a->settings, b->settings) == 0);
}

static void check_track(const captions_track *t)
{
    assert(t->n <= CAPTIONS_MAX_CUES);
    for (size_t i = 0; i < t->n; i++) {
        const captions_cue *c = &t->cues[i];
        size_t tl = strlen(c->text);
        assert(c->start_ms >= 0 && c->end_ms > c->start_ms && c->end_ms <= CAPTIONS_MAX_MS);
        assert(i == 0 || t->cues[i - 1].start_ms <= c->start_ms);
        assert(tl > 0 && tl <= CAPTIONS_MAX_TEXT && c->text[0] != '\n' && c->text[tl - 1] != '\n');
        assert(strstr(c->text, "\n\n") == NULL && strstr(c->text, "-->") == NULL);
        assert(strpbrk(c->settings, "\r\n") == NULL);
    }
}

typedef struct seg_ctx {
    const captions_track *t;
    int64_t seg;
    int calls;
} seg_ctx;

static int on_segment(void *ctx, int index, const char *vtt, size_t len)
{
    seg_ctx *s = ctx;
    assert(index == s->calls++ && strlen(vtt) == len);
    int64_t a = index * s->seg, b = a + s->seg;
    captions_track u;
    captions_error e;
    int rc = captions_parse(vtt, len, CAPTIONS_VTT, &u, &e);
    assert(rc == 0);
    size_t k = 0;
    for (size_t i = 0; i < s->t->n; i++) {
        const captions_cue *c = &s->t->cues[i];
        if (c->start_ms < b && c->end_ms > a) {
            assert(k < u.n);
            same_cue(&u.cues[k++], c);
        }
    }
    assert(k == u.n);
    captions_free(&u);
    return 0;
}

static void round_trip(const captions_track *t, const uint8_t *data, size_t size)
{
    char *vtt = NULL;
    size_t len = 0;
    captions_track u;
    captions_error e;
    assert(captions_write_vtt(t, &vtt, &len) == 0 && strlen(vtt) == len);
    assert(captions_parse(vtt, len, CAPTIONS_VTT, &u, &e) == 0);
    assert(u.n == t->n);
    for (size_t i = 0; i < t->n; i++)
        same_cue(&u.cues[i], &t->cues[i]);
    captions_free(&u);
    free(vtt);

    /* Segments that cover every cue, from one to about 65 of them. */
    int64_t last = 0;
    for (size_t i = 0; i < t->n; i++)
        if (t->cues[i].end_ms > last)
            last = t->cues[i].end_ms;
    int64_t dur = last > 0 ? last : 1000, seg = 1 + dur / (1 + data[0] % 64);
    seg_ctx s = {t, seg, 0};
    int64_t nseg = captions_segments(seg, dur);
    assert(nseg >= 1 && nseg <= 66);
    int64_t mpegts = data[size - 1] & 1 ? -1 : 900000;
    assert(captions_segment(t, seg, dur, mpegts, on_segment, &s) == 0 && s.calls == nseg);
    size_t cap = CAPTIONS_PLAYLIST_CAP(nseg);
    char *pl = malloc(cap);
    int n = captions_playlist(pl, cap, seg, dur);
    assert(n > 0 && (size_t)n == strlen(pl));
    int extinf = 0;
    for (const char *p = pl; (p = strstr(p, "#EXTINF:")) != NULL; p++)
        extinf++;
    assert(extinf == nseg);
    free(pl);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    /* A copy of its own size, so that reading one byte past the input is caught. */
    char *src = malloc(size);
    memcpy(src, data, size);
    for (int hint = CAPTIONS_AUTO; hint <= CAPTIONS_SRT; hint++) {
        captions_track t;
        captions_error e;
        int rc = captions_parse(src, size, hint, &t, &e);
        if (rc == 0) {
            check_track(&t);
            round_trip(&t, data, size);
            captions_free(&t);
        } else {
            assert(rc == -EINVAL || rc == -E2BIG);
            assert(t.cues == NULL && t.mem == NULL && t.n == 0);
            assert(e.line >= 1 && (size_t)e.line <= size + 1);
            assert(strncmp(e.message, "line ", 5) == 0);
        }
    }
    if (captions_lang_ok(src, size)) {
        assert(size >= 2 && size <= CAPTIONS_LANG_MAX);
        for (size_t i = 0; i < size; i++)
            assert(alnum(src[i]) || src[i] == '-');
    }
    free(src);
    return 0;
}
