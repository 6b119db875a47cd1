/* WebVTT and SRT reading, WebVTT writing, HLS subtitle segments. Contract in captions.h.
 *
 * The reader is one pass over the lines with a small state machine: which kind of block the
 * current line belongs to. Both formats are blocks separated by blank lines; they differ in
 * the header (WebVTT's), the millisecond separator (SRT's ','), what an identifier may be
 * (SRT: a number) and the extras each carries (WebVTT: NOTE/STYLE/REGION blocks and cue
 * settings; SRT: ASS tags and coordinates). */
#include "proto/captions.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/wbuf.h"

/* Where the reader stands: between blocks, in WebVTT's header, in a block it skips (NOTE,
 * STYLE, REGION), after a cue's identifier, in a cue's text. */
enum { BETWEEN, HEADER, SKIP, ID, TEXT };

typedef struct parser {
    const char *src;
    size_t len, pos;
    int line;    /* the line last read, 1-based */
    int vtt;     /* else SRT */
    int guessed; /* SRT only because it is not WebVTT: the first block tells whether it is */
    int state, blocks, id_line;
    captions_track *t;
    size_t used, cap; /* of t->mem */
    captions_cue cue; /* the cue being read; its text starts at mem + text_at */
    size_t cue_at, text_at;
    captions_error *err;
} parser;

static int fail(parser *p, int rc, int line, const char *why)
{
    if (p->err != NULL) {
        p->err->line = line;
        if (line > 0)
            snprintf(p->err->message, sizeof(p->err->message), "line %d: %s", line, why);
        else
            snprintf(p->err->message, sizeof(p->err->message), "%s", why);
    }
    return rc;
}

static int is_ws(char c)
{
    return c == ' ' || c == '\t';
}

static size_t skip_ws(const char *s, size_t n, size_t i)
{
    while (i < n && is_ws(s[i]))
        i++;
    return i;
}

/* 1 when s[0..n) holds nothing but spaces, tabs and line breaks. */
static int blank(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!is_ws(s[i]) && s[i] != '\r' && s[i] != '\n')
            return 0;
    return 1;
}

static int has_arrow(const char *s, size_t n)
{
    for (size_t i = 0; i + 3 <= n; i++)
        if (s[i] == '-' && s[i + 1] == '-' && s[i + 2] == '>')
            return 1;
    return 0;
}

/* `word` alone or followed by a space or tab: how NOTE, STYLE and REGION blocks begin. */
static int keyword(const char *s, size_t n, const char *word)
{
    size_t k = strlen(word);
    return n >= k && memcmp(s, word, k) == 0 && (n == k || is_ws(s[k]));
}

/* Well-formed UTF-8: no overlong form, no surrogate, nothing above U+10FFFF. */
static int utf8_ok(const unsigned char *s, size_t n)
{
    for (size_t i = 0; i < n;) {
        unsigned c = s[i], cp, min;
        size_t k;
        if (c < 0x80) {
            i++;
            continue;
        }
        if ((c & 0xE0) == 0xC0)
            k = 1, cp = c & 0x1F, min = 0x80;
        else if ((c & 0xF0) == 0xE0)
            k = 2, cp = c & 0x0F, min = 0x800;
        else if ((c & 0xF8) == 0xF0)
            k = 3, cp = c & 0x07, min = 0x10000;
        else
            return 0;
        if (n - i <= k)
            return 0;
        for (size_t j = 1; j <= k; j++) {
            if ((s[i + j] & 0xC0) != 0x80)
                return 0;
            cp = cp << 6 | (s[i + j] & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return 0;
        i += k + 1;
    }
    return 1;
}

/* Copies into the track's block. Its size (see captions_parse) makes running out impossible;
 * the check turns a mistake in that bound into an error instead of an overflow. */
static int store(parser *p, const char *s, size_t n)
{
    if (n > p->cap - p->used)
        return fail(p, -ENOMEM, p->line, "out of memory");
    memcpy(p->t->mem + p->used, s, n);
    p->used += n;
    return 0;
}

/* Up to `max` decimal digits at s[*i..]: how many, their value in *v. */
static int digits(const char *s, size_t n, size_t *i, int max, int64_t *v)
{
    int d = 0;
    *v = 0;
    while (*i < n && d < max && s[*i] >= '0' && s[*i] <= '9') {
        *v = *v * 10 + (s[(*i)++] - '0');
        d++;
    }
    return d;
}

/* "[h:]mm:ss.ttt" at s[*i..], hours of 1 to 5 digits (SRT: ',' before the milliseconds, '.'
 * tolerated). 0, -EINVAL when malformed, -ERANGE for minutes or seconds of 60 or more. */
static int timestamp(const char *s, size_t n, size_t *i, int vtt, int64_t *ms)
{
    int64_t h = 0, m, sec, frac;
    int first = digits(s, n, i, 5, &m);
    if (first == 0 || *i >= n || s[(*i)++] != ':' || digits(s, n, i, 2, &sec) != 2)
        return -EINVAL;
    if (*i < n && s[*i] == ':') {
        (*i)++;
        h = m;
        m = sec;
        if (digits(s, n, i, 2, &sec) != 2)
            return -EINVAL;
    } else if (first != 2) {
        return -EINVAL; /* minutes without hours are two digits */
    }
    if (*i >= n || (s[*i] != '.' && (vtt || s[*i] != ',')))
        return -EINVAL;
    (*i)++;
    if (digits(s, n, i, 3, &frac) != 3 || (*i < n && s[*i] >= '0' && s[*i] <= '9'))
        return -EINVAL;
    if (m >= 60 || sec >= 60)
        return -ERANGE;
    *ms = ((h * 60 + m) * 60 + sec) * 1000 + frac;
    return 0;
}

/* "start --> end[ settings]": starts a cue. SRT's coordinates ("X1:40 X2:600 ...") after the
 * end are dropped, WebVTT's settings kept as they are. */
static int timing(parser *p, const char *s, size_t n)
{
    size_t i = skip_ws(s, n, 0);
    int64_t start = 0, end = 0;
    int rc = timestamp(s, n, &i, p->vtt, &start);
    if (rc == 0) {
        i = skip_ws(s, n, i);
        if (n - i >= 3 && memcmp(s + i, "-->", 3) == 0) {
            i = skip_ws(s, n, i + 3);
            rc = timestamp(s, n, &i, p->vtt, &end);
        } else {
            rc = -EINVAL;
        }
    }
    if (rc == 0 && ((i < n && !is_ws(s[i])) || has_arrow(s + i, n - i)))
        rc = -EINVAL;
    if (rc == -ERANGE)
        return fail(p, -EINVAL, p->line, "minutes and seconds must be below 60");
    if (rc < 0)
        return fail(p, -EINVAL, p->line,
                    p->vtt ? "malformed timestamp (expected hh:mm:ss.ttt --> hh:mm:ss.ttt)"
                           : "malformed timestamp (expected hh:mm:ss,ttt --> hh:mm:ss,ttt)");
    if (end <= start)
        return fail(p, -EINVAL, p->line, "the end time is not after the start time");
    if (p->t->n == CAPTIONS_MAX_CUES)
        return fail(p, -E2BIG, p->line, "the file holds more than 100000 cues");
    p->cue = (captions_cue){start, end, "", ""};
    p->cue_at = p->used;
    i = skip_ws(s, n, i);
    if (p->vtt && i < n) {
        p->cue.settings = p->t->mem + p->used;
        if ((rc = store(p, s + i, n - i)) < 0 || (rc = store(p, "", 1)) < 0)
            return rc;
    }
    p->text_at = p->used;
    p->state = TEXT;
    return 0;
}

/* Copies an SRT text line without its ASS override tags ("{\an8}", "{\i1}"), which WebVTT
 * would show as text; a top position (\an7, \an8, \an9) becomes the setting "line:0". A '{'
 * without a '}' after it on the line is text. */
static int copy_srt(parser *p, const char *s, size_t n)
{
    size_t run = 0;
    for (size_t i = 0; i + 1 < n; i++) {
        if (s[i] != '{' || s[i + 1] != '\\')
            continue;
        const char *close = memchr(s + i, '}', n - i);
        if (close == NULL)
            break; /* nor after any later '{': searching again from each would be quadratic */
        size_t e = (size_t)(close - s);
        for (size_t k = i; k + 4 <= e; k++)
            if (memcmp(s + k, "\\an", 3) == 0 && s[k + 3] >= '7' && s[k + 3] <= '9')
                p->cue.settings = "line:0";
        int rc = store(p, s + run, i - run);
        if (rc < 0)
            return rc;
        i = e;
        run = e + 1;
    }
    return store(p, s + run, n - run);
}

/* A line of a cue's text, joined to the previous ones by "\n". A line that dropping SRT's tags
 * leaves blank is dropped: the text written back must not hold a blank line. */
static int add_text(parser *p, const char *s, size_t n)
{
    static const char arrow[] = "cue text may not hold \"-->\" (is the blank line before a cue "
                                "missing?)";
    if (has_arrow(s, n))
        return fail(p, -EINVAL, p->line, arrow);
    size_t at = p->used;
    int rc = at > p->text_at ? store(p, "\n", 1) : 0;
    size_t line = p->used;
    if (rc == 0)
        rc = p->vtt ? store(p, s, n) : copy_srt(p, s, n);
    if (rc < 0)
        return rc;
    while (p->used > line && is_ws(p->t->mem[p->used - 1]))
        p->used--;
    if (p->used == line) {
        p->used = at;
        return 0;
    }
    if (has_arrow(p->t->mem + line, p->used - line)) /* "--{\i1}>" without its tag */
        return fail(p, -EINVAL, p->line, arrow);
    if (p->used - p->text_at > CAPTIONS_MAX_TEXT)
        return fail(p, -E2BIG, p->line, "a cue's text is longer than 4096 bytes");
    return 0;
}

/* A blank line or the end of the input: the cue read so far joins the track. */
static int end_block(parser *p)
{
    int was = p->state;
    p->state = BETWEEN;
    if (was == ID)
        return fail(p, -EINVAL, p->id_line, "the cue identifier is not followed by a timing line");
    if (was != TEXT)
        return 0;
    if (p->used == p->text_at) {
        p->used = p->cue_at; /* no text: nothing to show */
        return 0;
    }
    int rc = store(p, "", 1);
    if (rc < 0)
        return rc;
    p->cue.text = p->t->mem + p->text_at;
    p->t->cues[p->t->n++] = p->cue;
    return 0;
}

/* The first line of a block: a NOTE/STYLE/REGION keyword, a timing line or an identifier. */
static int block(parser *p, const char *s, size_t n)
{
    int first = p->blocks++ == 0;
    if (p->vtt && (keyword(s, n, "NOTE") || keyword(s, n, "STYLE") || keyword(s, n, "REGION"))) {
        p->state = SKIP;
        return 0;
    }
    if (has_arrow(s, n))
        return timing(p, s, n);
    if (!p->vtt) {
        size_t i = skip_ws(s, n, 0), d = i;
        while (d < n && s[d] >= '0' && s[d] <= '9')
            d++;
        if (d == i || d < n)
            return fail(p, -EINVAL, p->line,
                        first && p->guessed
                            ? "the file is neither WebVTT (no WEBVTT header) nor SRT"
                            : "expected a cue number or a timing line");
    }
    p->id_line = p->line;
    p->state = ID;
    return 0;
}

static int on_line(parser *p, const char *s, size_t n, size_t raw)
{
    if (memchr(s, '\0', raw) != NULL)
        return fail(p, -EINVAL, p->line, "the file holds a NUL byte");
    if (!utf8_ok((const unsigned char *)s, n))
        return fail(p, -EINVAL, p->line, "the text is not valid UTF-8");
    if (n == 0)
        return end_block(p);
    switch (p->state) {
    case HEADER: /* WebVTT lets the first cue follow the header without a blank line */
        return p->line > 1 && has_arrow(s, n) ? timing(p, s, n) : 0;
    case SKIP:
        return 0;
    case BETWEEN:
        return block(p, s, n);
    case ID:
        return has_arrow(s, n) ? timing(p, s, n) : end_block(p);
    default:
        return add_text(p, s, n);
    }
}

/* The next line: its bytes up to the break (LF, CRLF or a lone CR) in *raw, without trailing
 * spaces and tabs in *n. 0 at the end of the input. */
static int next_line(parser *p, const char **s, size_t *n, size_t *raw)
{
    if (p->pos >= p->len)
        return 0;
    const char *b = p->src + p->pos, *end = p->src + p->len, *e = b;
    while (e < end && *e != '\n' && *e != '\r')
        e++;
    p->pos = (size_t)(e - p->src);
    if (e < end)
        p->pos += e + 1 < end && e[0] == '\r' && e[1] == '\n' ? 2 : 1;
    *s = b;
    *raw = *n = (size_t)(e - b);
    while (*n > 0 && is_ws(b[*n - 1]))
        (*n)--;
    p->line++;
    return 1;
}

/* The line of the input that byte `at` is on (at < len). */
static int line_of(const char *src, size_t at)
{
    int line = 1;
    for (size_t i = 0; i < at; i++)
        line += src[i] == '\n' || (src[i] == '\r' && src[i + 1] != '\n');
    return line;
}

static int is_webvtt(const char *s, size_t n)
{
    return n >= 6 && memcmp(s, "WEBVTT", 6) == 0 &&
           (n == 6 || is_ws(s[6]) || s[6] == '\n' || s[6] == '\r');
}

/* Sorts by start; the text's address breaks ties, since the cues' text lies in the track's
 * block in input order: qsort is not stable, this order is. */
static int by_start(const void *a, const void *b)
{
    const captions_cue *x = a, *y = b;
    if (x->start_ms != y->start_ms)
        return x->start_ms < y->start_ms ? -1 : 1;
    return x->text < y->text ? -1 : x->text > y->text;
}

static int parse(parser *p, int hint)
{
    captions_track *t = p->t;
    if (hint < CAPTIONS_AUTO || hint > CAPTIONS_SRT)
        return fail(p, -EINVAL, 0, "unknown captions format");
    if (p->len > CAPTIONS_MAX_BYTES)
        return fail(p, -E2BIG, line_of(p->src, CAPTIONS_MAX_BYTES), "the file is over 8 MiB");
    if (p->len >= 3 && memcmp(p->src, "\xEF\xBB\xBF", 3) == 0)
        p->pos = 3;
    p->vtt = is_webvtt(p->src + p->pos, p->len - p->pos);
    if (!p->vtt && hint == CAPTIONS_VTT)
        return fail(p, -EINVAL, 1, "the file does not start with WEBVTT");
    p->guessed = hint == CAPTIONS_AUTO;
    p->state = p->vtt ? HEADER : BETWEEN;
    /* Every cue has a line with "-->" and at least 21 bytes that hold neither its text nor its
     * settings (the two timestamps and the arrow), which pays for the two NULs: the text and
     * settings of all cues together fit in the input's size; there is a cue per "-->" at most. */
    size_t arrows = 0;
    for (size_t i = 0; i + 3 <= p->len; i++)
        arrows += memcmp(p->src + i, "-->", 3) == 0;
    size_t ncap = arrows < CAPTIONS_MAX_CUES ? arrows : CAPTIONS_MAX_CUES;
    p->cap = p->len + 1;
    t->cues = malloc(sizeof(*t->cues) * (ncap ? ncap : 1));
    t->mem = malloc(p->cap);
    if (t->cues == NULL || t->mem == NULL)
        return fail(p, -ENOMEM, 0, "out of memory");
    const char *s;
    size_t n, raw;
    int rc = 0;
    while (rc == 0 && next_line(p, &s, &n, &raw))
        rc = on_line(p, s, n, raw);
    if (rc == 0)
        rc = end_block(p);
    if (rc == 0 && !p->vtt && p->blocks == 0)
        return fail(p, -EINVAL, 1, "the file is empty");
    for (size_t i = 1; rc == 0 && i < t->n; i++) {
        if (t->cues[i].start_ms < t->cues[i - 1].start_ms) {
            qsort(t->cues, t->n, sizeof(*t->cues), by_start);
            break;
        }
    }
    return rc;
}

int captions_parse(const char *src, size_t len, int format_hint, captions_track *out,
                   captions_error *err)
{
    parser p = {.src = src, .len = len, .t = out, .err = err};
    memset(out, 0, sizeof(*out));
    if (err != NULL) {
        err->line = 0;
        err->message[0] = '\0';
    }
    int rc = parse(&p, format_hint);
    if (rc < 0)
        captions_free(out);
    return rc;
}

void captions_free(captions_track *t)
{
    free(t->cues);
    free(t->mem);
    memset(t, 0, sizeof(*t));
}

/* Writing. Each document is written twice: once with p NULL to learn its size, then into a
 * buffer of that size. */
typedef struct sink {
    char *p;
    size_t n;
} sink;

static void put(sink *o, const char *s, size_t n)
{
    if (o->p != NULL)
        memcpy(o->p + o->n, s, n);
    o->n += n;
}

static void put_time(sink *o, int64_t ms)
{
    char b[32];
    int n = snprintf(b, sizeof(b), "%02lld:%02d:%02d.%03d", (long long)(ms / 3600000),
                     (int)(ms / 60000 % 60), (int)(ms / 1000 % 60), (int)(ms % 1000));
    put(o, b, (size_t)n);
}

/* Writes the lines of s joined by `sep`, without the blank ones and with "-->" as "--&gt;". */
static void put_lines(sink *o, const char *s, char sep)
{
    int first = 1;
    while (*s != '\0') {
        size_t n = strcspn(s, "\r\n");
        if (!blank(s, n)) {
            if (!first)
                put(o, &sep, 1);
            first = 0;
            for (size_t i = 0; i < n; i++) {
                if (i + 3 <= n && memcmp(s + i, "-->", 3) == 0) {
                    put(o, "--&gt;", 6);
                    i += 2;
                } else {
                    put(o, s + i, 1);
                }
            }
        }
        s += n + (s[n] != '\0');
    }
}

static void put_cue(sink *o, const captions_cue *c)
{
    if (c->text == NULL || blank(c->text, strlen(c->text)) || c->start_ms < 0 ||
        c->end_ms <= c->start_ms || c->end_ms > CAPTIONS_MAX_MS)
        return;
    put_time(o, c->start_ms);
    put(o, " --> ", 5);
    put_time(o, c->end_ms);
    if (c->settings != NULL && !blank(c->settings, strlen(c->settings))) {
        put(o, " ", 1);
        put_lines(o, c->settings, ' ');
    }
    put(o, "\n", 1);
    put_lines(o, c->text, '\n');
    put(o, "\n\n", 2);
}

/* A WebVTT document of the cues at idx[0..n) (all cues from the first n when idx is NULL). */
static size_t document(char *buf, const captions_track *t, const uint32_t *idx, size_t n,
                       int64_t mpegts)
{
    sink o = {buf, 0};
    put(&o, "WEBVTT\n", 7);
    if (mpegts >= 0) {
        char h[80];
        int k = snprintf(h, sizeof(h), "X-TIMESTAMP-MAP=MPEGTS:%lld,LOCAL:00:00:00.000\n",
                         (long long)mpegts);
        put(&o, h, (size_t)k);
    }
    put(&o, "\n", 1);
    for (size_t i = 0; i < n; i++)
        put_cue(&o, &t->cues[idx != NULL ? idx[i] : i]);
    if (buf != NULL)
        buf[o.n] = '\0';
    return o.n;
}

int captions_write_vtt(const captions_track *t, char **out, size_t *len)
{
    size_t n = document(NULL, t, NULL, t->n, -1);
    char *b = malloc(n + 1);
    if (b == NULL)
        return -ENOMEM;
    *len = document(b, t, NULL, t->n, -1);
    *out = b;
    return 0;
}

int64_t captions_segments(int64_t segment_ms, int64_t duration_ms)
{
    if (segment_ms <= 0 || duration_ms <= 0 || segment_ms > CAPTIONS_MAX_MS ||
        duration_ms > CAPTIONS_MAX_MS)
        return -EINVAL;
    int64_t n = duration_ms / segment_ms + (duration_ms % segment_ms != 0);
    return n > CAPTIONS_MAX_SEGMENTS ? -E2BIG : n;
}

int captions_segment(const captions_track *t, int64_t segment_ms, int64_t duration_ms,
                     int64_t mpegts_offset_90k, captions_segment_fn fn, void *ctx)
{
    int64_t nseg = captions_segments(segment_ms, duration_ms);
    if (nseg < 0)
        return (int)nseg;
    for (size_t i = 1; i < t->n; i++)
        if (t->cues[i].start_ms < t->cues[i - 1].start_ms)
            return -EINVAL;
    /* The cues that overlap the current segment, in start order. Segments go forward, so a cue
     * joins once (when the segment's end passes its start) and leaves once (when the segment's
     * start passes its end): the work is the size of what is written, even when one long cue
     * spans every segment. */
    uint32_t *live = malloc(sizeof(*live) * (t->n ? t->n : 1));
    char *buf = NULL;
    size_t cap = 0, nlive = 0, next = 0;
    int rc = live == NULL ? -ENOMEM : 0;
    for (int64_t i = 0; i < nseg && rc == 0; i++) {
        int64_t a = i * segment_ms, b = a + segment_ms;
        size_t keep = 0;
        for (size_t j = 0; j < nlive; j++)
            if (t->cues[live[j]].end_ms > a)
                live[keep++] = live[j];
        nlive = keep;
        for (; next < t->n && t->cues[next].start_ms < b; next++)
            if (t->cues[next].end_ms > a)
                live[nlive++] = (uint32_t)next;
        size_t need = document(NULL, t, live, nlive, mpegts_offset_90k) + 1;
        if (need > cap) {
            char *nb = realloc(buf, need);
            if (nb == NULL) {
                rc = -ENOMEM;
                break;
            }
            buf = nb;
            cap = need;
        }
        size_t len = document(buf, t, live, nlive, mpegts_offset_90k);
        rc = fn(ctx, (int)i, buf, len);
    }
    free(live);
    free(buf);
    return rc;
}

int captions_playlist(char *buf, size_t cap, int64_t segment_ms, int64_t duration_ms)
{
    int64_t n = captions_segments(segment_ms, duration_ms);
    if (n < 0)
        return (int)n;
    rd_wbuf w = wbuf_init(buf, cap);
    wbuf_str(&w, "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:");
    wbuf_uint(&w, (uint64_t)(segment_ms + 999) / 1000);
    wbuf_str(&w, "\n#EXT-X-PLAYLIST-TYPE:VOD\n#EXT-X-MEDIA-SEQUENCE:0\n");
    for (int64_t i = 0; i < n; i++) {
        int64_t d = duration_ms - i * segment_ms;
        if (d > segment_ms)
            d = segment_ms;
        char line[96];
        int k = snprintf(line, sizeof(line), "#EXTINF:%lld.%03d,\n" CAPTIONS_SEGMENT_NAME "\n",
                         (long long)(d / 1000), (int)(d % 1000), (int)i);
        wbuf_put(&w, line, (size_t)k);
    }
    wbuf_str(&w, "#EXT-X-ENDLIST\n");
    return wbuf_end(&w);
}

static int alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

int captions_lang_ok(const char *s, size_t len)
{
    if (len < 2 || len > CAPTIONS_LANG_MAX)
        return 0;
    size_t i = 0;
    while (i < len && s[i] >= 'a' && s[i] <= 'z')
        i++;
    if (i < 2 || i > 3)
        return 0;
    while (i < len) {
        if (s[i++] != '-')
            return 0;
        size_t start = i;
        while (i < len && alnum(s[i]))
            i++;
        if (i == start || i - start > 8)
            return 0;
    }
    return 1;
}
