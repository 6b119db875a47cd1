/* A JSON tokenizer and writer for API bodies: recursive descent bounded by JSON_MAX_DEPTH into
 * the caller's token array; writer with comma bookkeeping per depth. */
#include "proto/json.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

typedef struct parser {
    const char *s;
    size_t len, pos;
    json_tok *toks;
    size_t ntoks, n;
} parser;

static void skip_ws(parser *p)
{
    while (p->pos < p->len && (p->s[p->pos] == ' ' || p->s[p->pos] == '\t' ||
                               p->s[p->pos] == '\n' || p->s[p->pos] == '\r'))
        p->pos++;
}

static int new_tok(parser *p, json_type type, size_t start)
{
    if (p->n == p->ntoks)
        return -ENOSPC;
    json_tok *t = &p->toks[p->n];
    t->type = (uint8_t)type;
    t->start = (uint32_t)start;
    t->len = 0;
    t->size = 0;
    t->end = 0;
    return (int)p->n++;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static int hex4(const char *s, unsigned *out)
{
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        int h = hexval(s[i]);
        if (h < 0)
            return -EINVAL;
        v = v << 4 | (unsigned)h;
    }
    *out = v;
    return 0;
}

/* Validates a string's body from p->pos (just after the quote); leaves pos after the closing
 * quote. Escapes are checked here so json_string cannot fail on a token that parsed. */
static int scan_string(parser *p, size_t *body_len)
{
    size_t start = p->pos;
    while (p->pos < p->len) {
        unsigned char c = (unsigned char)p->s[p->pos];
        if (c == '"') {
            *body_len = p->pos - start;
            p->pos++;
            return 0;
        }
        if (c < 0x20)
            return -EINVAL;
        if (c != '\\') {
            p->pos++;
            continue;
        }
        if (p->pos + 1 >= p->len)
            return -EINVAL;
        char e = p->s[p->pos + 1];
        if (strchr("\"\\/bfnrt", e) != NULL && e != '\0') {
            p->pos += 2;
            continue;
        }
        if (e != 'u' || p->pos + 6 > p->len)
            return -EINVAL;
        unsigned u;
        if (hex4(p->s + p->pos + 2, &u) < 0)
            return -EINVAL;
        p->pos += 6;
        if (u >= 0xDC00 && u <= 0xDFFF)
            return -EINVAL; /* a low surrogate alone */
        if (u >= 0xD800 && u <= 0xDBFF) {
            unsigned lo;
            if (p->pos + 6 > p->len || p->s[p->pos] != '\\' || p->s[p->pos + 1] != 'u' ||
                hex4(p->s + p->pos + 2, &lo) < 0 || lo < 0xDC00 || lo > 0xDFFF)
                return -EINVAL;
            p->pos += 6;
        }
    }
    return -EINVAL;
}

static int scan_number(parser *p)
{
    size_t i = p->pos;
    if (i < p->len && p->s[i] == '-')
        i++;
    if (i >= p->len)
        return -EINVAL;
    if (p->s[i] == '0') {
        i++;
    } else if (p->s[i] >= '1' && p->s[i] <= '9') {
        while (i < p->len && p->s[i] >= '0' && p->s[i] <= '9')
            i++;
    } else {
        return -EINVAL;
    }
    if (i < p->len && p->s[i] == '.') {
        i++;
        size_t d = i;
        while (i < p->len && p->s[i] >= '0' && p->s[i] <= '9')
            i++;
        if (i == d)
            return -EINVAL;
    }
    if (i < p->len && (p->s[i] == 'e' || p->s[i] == 'E')) {
        i++;
        if (i < p->len && (p->s[i] == '+' || p->s[i] == '-'))
            i++;
        size_t d = i;
        while (i < p->len && p->s[i] >= '0' && p->s[i] <= '9')
            i++;
        if (i == d)
            return -EINVAL;
    }
    p->pos = i;
    return 0;
}

static int parse_value(parser *p, int depth)
{
    skip_ws(p);
    if (p->pos >= p->len)
        return -EINVAL;
    size_t start = p->pos;
    char c = p->s[p->pos];
    int t, r;
    if (c == '{' || c == '[') {
        if (depth >= JSON_MAX_DEPTH)
            return -E2BIG;
        int obj = c == '{';
        char close = obj ? '}' : ']';
        t = new_tok(p, obj ? JSON_OBJECT : JSON_ARRAY, start);
        if (t < 0)
            return t;
        p->pos++;
        skip_ws(p);
        if (p->pos < p->len && p->s[p->pos] == close) {
            p->pos++;
        } else {
            for (;;) {
                if (obj) {
                    skip_ws(p);
                    if (p->pos >= p->len || p->s[p->pos] != '"')
                        return -EINVAL;
                    if ((r = parse_value(p, depth + 1)) < 0)
                        return r;
                    skip_ws(p);
                    if (p->pos >= p->len || p->s[p->pos] != ':')
                        return -EINVAL;
                    p->pos++;
                }
                if ((r = parse_value(p, depth + 1)) < 0)
                    return r;
                p->toks[t].size++;
                skip_ws(p);
                if (p->pos >= p->len)
                    return -EINVAL;
                if (p->s[p->pos] == ',') {
                    p->pos++;
                    continue;
                }
                if (p->s[p->pos] != close)
                    return -EINVAL;
                p->pos++;
                break;
            }
        }
        p->toks[t].len = (uint32_t)(p->pos - start);
        p->toks[t].end = (uint32_t)p->n;
        return 0;
    }
    if (c == '"') {
        t = new_tok(p, JSON_STRING, start + 1);
        if (t < 0)
            return t;
        p->pos++;
        size_t blen;
        if ((r = scan_string(p, &blen)) < 0)
            return r;
        p->toks[t].len = (uint32_t)blen;
        p->toks[t].end = (uint32_t)p->n;
        return 0;
    }
    static const struct {
        const char *word;
        json_type type;
    } words[] = {{"null", JSON_NULL}, {"false", JSON_FALSE}, {"true", JSON_TRUE}};
    for (size_t i = 0; i < 3; i++) {
        size_t wl = strlen(words[i].word);
        if (p->len - p->pos >= wl && memcmp(p->s + p->pos, words[i].word, wl) == 0) {
            t = new_tok(p, words[i].type, start);
            if (t < 0)
                return t;
            p->pos += wl;
            p->toks[t].len = (uint32_t)wl;
            p->toks[t].end = (uint32_t)p->n;
            return 0;
        }
    }
    if ((r = scan_number(p)) < 0)
        return r;
    t = new_tok(p, JSON_NUMBER, start);
    if (t < 0)
        return t;
    p->toks[t].len = (uint32_t)(p->pos - start);
    p->toks[t].end = (uint32_t)p->n;
    return 0;
}

int json_parse(const char *s, size_t len, json_tok *toks, size_t ntoks)
{
    if (len > UINT32_MAX)
        return -E2BIG;
    parser p = {s, len, 0, toks, ntoks, 0};
    int r = parse_value(&p, 0);
    if (r < 0)
        return r;
    skip_ws(&p);
    if (p.pos != len)
        return -EINVAL;
    return (int)p.n;
}

/* Decodes a string token's body into out; with out == NULL only measures. */
static int decode(const char *s, const json_tok *t, char *out, size_t cap)
{
    const char *p = s + t->start, *e = p + t->len;
    size_t n = 0;
    while (p < e) {
        unsigned cp;
        if (*p != '\\') {
            if (*p == '\0')
                return -EINVAL;
            if (out) {
                if (n + 1 >= cap)
                    return -ENOSPC;
                out[n] = *p;
            }
            n++;
            p++;
            continue;
        }
        char c = p[1];
        p += 2;
        switch (c) {
        case 'b':
            cp = '\b';
            break;
        case 'f':
            cp = '\f';
            break;
        case 'n':
            cp = '\n';
            break;
        case 'r':
            cp = '\r';
            break;
        case 't':
            cp = '\t';
            break;
        case 'u': {
            hex4(p, &cp);
            p += 4;
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                unsigned lo;
                hex4(p + 2, &lo);
                p += 6;
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            }
            break;
        }
        default:
            cp = (unsigned char)c;
            break;
        }
        if (cp == 0)
            return -EINVAL;
        char enc[4];
        size_t k;
        if (cp < 0x80) {
            enc[0] = (char)cp;
            k = 1;
        } else if (cp < 0x800) {
            enc[0] = (char)(0xC0 | cp >> 6);
            enc[1] = (char)(0x80 | (cp & 0x3F));
            k = 2;
        } else if (cp < 0x10000) {
            enc[0] = (char)(0xE0 | cp >> 12);
            enc[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
            enc[2] = (char)(0x80 | (cp & 0x3F));
            k = 3;
        } else {
            enc[0] = (char)(0xF0 | cp >> 18);
            enc[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
            enc[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
            enc[3] = (char)(0x80 | (cp & 0x3F));
            k = 4;
        }
        if (out) {
            if (n + k >= cap)
                return -ENOSPC;
            memcpy(out + n, enc, k);
        }
        n += k;
    }
    if (out) {
        if (n >= cap)
            return -ENOSPC;
        out[n] = '\0';
    }
    return (int)n;
}

int json_string(const char *s, const json_tok *t, char *out, size_t cap)
{
    if (t->type != JSON_STRING || cap == 0)
        return -EINVAL;
    return decode(s, t, out, cap);
}

int json_get(const char *s, const json_tok *toks, int obj, const char *key)
{
    if (obj < 0 || toks[obj].type != JSON_OBJECT)
        return -1;
    size_t klen = strlen(key);
    uint32_t i = (uint32_t)obj + 1;
    for (uint32_t m = 0; m < toks[obj].size; m++) {
        const json_tok *k = &toks[i];
        char buf[128];
        int n = klen < sizeof(buf) ? decode(s, k, buf, sizeof(buf)) : -ENOSPC;
        if (n >= 0 && (size_t)n == klen && memcmp(buf, key, klen) == 0)
            return (int)i + 1;
        i = toks[i + 1].end;
    }
    return -1;
}

int json_item(const json_tok *toks, int arr, uint32_t i)
{
    if (arr < 0 || toks[arr].type != JSON_ARRAY || i >= toks[arr].size)
        return -1;
    uint32_t k = (uint32_t)arr + 1;
    while (i--)
        k = toks[k].end;
    return (int)k;
}

int json_int(const char *s, const json_tok *t, int64_t *out)
{
    if (t->type != JSON_NUMBER)
        return -EINVAL;
    const char *p = s + t->start;
    size_t n = t->len, i = 0;
    int neg = p[0] == '-';
    if (neg)
        i++;
    uint64_t v = 0, lim = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    for (; i < n; i++) {
        if (p[i] < '0' || p[i] > '9')
            return -EINVAL; /* a fraction or an exponent */
        unsigned d = (unsigned)(p[i] - '0');
        if (v > (lim - d) / 10)
            return -EINVAL;
        v = v * 10 + d;
    }
    *out = neg ? (int64_t)(0 - v) : (int64_t)v;
    return 0;
}

/* ---- writer ---- */

static void put(json_writer *w, const char *p, size_t n)
{
    if (w->full)
        return;
    if (w->cap - w->len <= n) {
        w->full = 1;
        return;
    }
    memcpy(w->buf + w->len, p, n);
    w->len += n;
    w->buf[w->len] = '\0';
}

void json_writer_init(json_writer *w, char *buf, size_t cap)
{
    memset(w, 0, sizeof(*w));
    w->buf = buf;
    w->cap = cap;
    w->fresh[0] = 1;
    if (cap)
        buf[0] = '\0';
    else
        w->full = 1;
}

/* Before a value: a comma unless it is the first at its depth or follows a key. */
static void sep(json_writer *w)
{
    if (w->after_key) {
        w->after_key = 0;
        return;
    }
    if (!w->fresh[w->depth])
        put(w, ",", 1);
    w->fresh[w->depth] = 0;
}

static void nest_open(json_writer *w, char c)
{
    sep(w);
    put(w, &c, 1);
    if (w->depth + 1 < JSON_MAX_DEPTH)
        w->depth++;
    else
        w->full = 1;
    w->fresh[w->depth] = 1;
}

static void nest_close(json_writer *w, char c)
{
    if (w->depth > 0)
        w->depth--;
    put(w, &c, 1);
}

void json_object_begin(json_writer *w)
{
    nest_open(w, '{');
}
void json_object_end(json_writer *w)
{
    nest_close(w, '}');
}
void json_array_begin(json_writer *w)
{
    nest_open(w, '[');
}
void json_array_end(json_writer *w)
{
    nest_close(w, ']');
}

static void quoted(json_writer *w, const char *v, size_t n)
{
    put(w, "\"", 1);
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)v[i];
        if (c >= 0x20 && c != '"' && c != '\\' && c != 0x7f)
            continue;
        put(w, v + run, i - run);
        run = i + 1;
        char esc[8];
        if (c == '"' || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)c;
            put(w, esc, 2);
        } else {
            snprintf(esc, sizeof(esc), "\\u%04x", c);
            put(w, esc, 6);
        }
    }
    put(w, v + run, n - run);
    put(w, "\"", 1);
}

void json_key(json_writer *w, const char *key)
{
    sep(w);
    quoted(w, key, strlen(key));
    put(w, ":", 1);
    w->after_key = 1;
}

void json_strn(json_writer *w, const char *v, size_t n)
{
    sep(w);
    quoted(w, v, n);
}

void json_str(json_writer *w, const char *v)
{
    json_strn(w, v, strlen(v));
}

void json_int64(json_writer *w, int64_t v)
{
    char num[24];
    int n = snprintf(num, sizeof(num), "%lld", (long long)v);
    sep(w);
    put(w, num, (size_t)n);
}

void json_bool(json_writer *w, int v)
{
    sep(w);
    put(w, v ? "true" : "false", v ? 4 : 5);
}

void json_raw(json_writer *w, const char *raw, size_t n)
{
    sep(w);
    put(w, raw, n);
}

int json_writer_finish(const json_writer *w)
{
    return w->full ? -ENOSPC : (int)w->len;
}
