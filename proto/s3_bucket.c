/* Bucket configuration documents and their canonical form. See s3_bucket.h. */
#include "proto/s3_bucket.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "proto/s3_wire.h"
#include "proto/wbuf.h"

#define S3_XMLNS "http://s3.amazonaws.com/doc/2006-03-01/"

/* ---- building ---- */

/* s[0..len) as element text; a control character makes the document invalid. */
static void xw_text(rd_wbuf *w, const char *s, size_t len)
{
    for (size_t i = 0; i < len && !w->err; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == 0x7f)
            w->err = -EINVAL;
        else if (c == '&')
            wbuf_printf(w, "&amp;");
        else if (c == '<')
            wbuf_printf(w, "&lt;");
        else if (c == '>')
            wbuf_printf(w, "&gt;");
        else
            wbuf_printf(w, "%c", c);
    }
}

/* The document's length, or its error with the buffer emptied. */
static int xw_end(rd_wbuf *w)
{
    int r = wbuf_end(w);
    if (r < 0 && w->cap > 0)
        w->p[0] = '\0';
    return r;
}

static int word_ok(const char *s, const char *extra)
{
    if (s == NULL || *s == '\0')
        return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              strchr(extra, *s) != NULL))
            return 0;
    return 1;
}

int s3bucket_cors_xml(char *out, size_t cap, const char *origins, int max_age)
{
    rd_wbuf w = wbuf_init(out, cap);
    int n = 0;
    wbuf_printf(&w, "<CORSConfiguration xmlns=\"" S3_XMLNS "\"><CORSRule>");
    for (const char *p = origins ? origins : ""; *p;) {
        size_t len = strcspn(p, ",");
        const char *b = p, *e = p + len;
        while (b < e && (*b == ' ' || *b == '\t'))
            b++;
        while (e > b && (e[-1] == ' ' || e[-1] == '\t'))
            e--;
        if (e > b) {
            wbuf_printf(&w, "<AllowedOrigin>");
            xw_text(&w, b, (size_t)(e - b));
            wbuf_printf(&w, "</AllowedOrigin>");
            n++;
        }
        p += len + (p[len] == ',');
    }
    if (n == 0 || max_age < 0)
        w.err = -EINVAL;
    wbuf_printf(&w,
                "<AllowedMethod>PUT</AllowedMethod><AllowedMethod>GET</AllowedMethod>"
                "<AllowedMethod>HEAD</AllowedMethod><AllowedHeader>content-type</AllowedHeader>"
                "<ExposeHeader>ETag</ExposeHeader><MaxAgeSeconds>%d</MaxAgeSeconds>"
                "</CORSRule></CORSConfiguration>",
                max_age);
    return xw_end(&w);
}

int s3bucket_lifecycle_xml(char *out, size_t cap, const char *id, int abort_days, int expire_days)
{
    rd_wbuf w = wbuf_init(out, cap);
    if (abort_days < 1 || expire_days < 0 || !word_ok(id, "-_.") || strlen(id) > 255)
        w.err = -EINVAL;
    wbuf_printf(&w,
                "<LifecycleConfiguration xmlns=\"" S3_XMLNS "\"><Rule><ID>%s</ID>"
                "<Filter><Prefix></Prefix></Filter><Status>Enabled</Status>",
                id ? id : "");
    if (expire_days > 0)
        wbuf_printf(&w, "<Expiration><Days>%d</Days></Expiration>", expire_days);
    wbuf_printf(&w,
                "<AbortIncompleteMultipartUpload><DaysAfterInitiation>%d</DaysAfterInitiation>"
                "</AbortIncompleteMultipartUpload></Rule></LifecycleConfiguration>",
                abort_days);
    return xw_end(&w);
}

int s3bucket_object_lock_xml(char *out, size_t cap, const char *mode, int days)
{
    rd_wbuf w = wbuf_init(out, cap);
    const char *m = mode == NULL                          ? NULL
                    : strcasecmp(mode, "COMPLIANCE") == 0 ? "COMPLIANCE"
                    : strcasecmp(mode, "GOVERNANCE") == 0 ? "GOVERNANCE"
                                                          : NULL;
    if (m == NULL || days < 1)
        w.err = -EINVAL;
    wbuf_printf(
        &w,
        "<ObjectLockConfiguration xmlns=\"" S3_XMLNS "\">"
        "<ObjectLockEnabled>Enabled</ObjectLockEnabled><Rule><DefaultRetention>"
        "<Mode>%s</Mode><Days>%d</Days></DefaultRetention></Rule></ObjectLockConfiguration>",
        m ? m : "", days);
    return xw_end(&w);
}

int s3bucket_create_xml(char *out, size_t cap, const char *region)
{
    rd_wbuf w = wbuf_init(out, cap);
    if (!word_ok(region, "-") || strlen(region) > 63)
        w.err = -EINVAL;
    else if (strcmp(region, "us-east-1") != 0)
        wbuf_printf(&w,
                    "<CreateBucketConfiguration xmlns=\"" S3_XMLNS "\"><LocationConstraint>%s"
                    "</LocationConstraint></CreateBucketConfiguration>",
                    region);
    else if (cap > 0)
        out[0] = '\0';
    return xw_end(&w);
}

/* ---- the canonical form ---- */

#define CANON_PATH  512
#define CANON_TEXT  2048
#define CANON_NAMES 32 /* distinct names among the root's children */

typedef struct canon {
    char lines[S3BUCKET_MAX_DOC]; /* NUL-terminated leaf lines, unsorted */
    size_t used;
    const char *leaf[S3BUCKET_MAX_LEAVES];
    int nleaves;
    char path[CANON_PATH]; /* "Root/Child[1]/Leaf" of the open elements */
    size_t plen[S3BUCKET_MAX_DEPTH + 1];
    const char *name[S3BUCKET_MAX_DEPTH]; /* the open elements' raw names, for end tags */
    size_t nlen[S3BUCKET_MAX_DEPTH];
    int has_child[S3BUCKET_MAX_DEPTH];
    int depth;
    int roots;
    char text[CANON_TEXT]; /* decoded text of the innermost open element */
    size_t tlen;
    char child_name[CANON_NAMES][64]; /* the root's children seen, by name, and how many */
    int child_count[CANON_NAMES];
    int nchild;
} canon;

static int is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static const char *find_str(const char *p, const char *end, const char *s)
{
    size_t n = strlen(s);
    for (; p + n <= end; p++)
        if (*p == s[0] && memcmp(p, s, n) == 0)
            return p;
    return NULL;
}

static int add_text(canon *c, const char *p, size_t len, int raw)
{
    if (c->depth == 0) {
        for (size_t i = 0; i < len; i++)
            if (!is_space(p[i]))
                return -EINVAL; /* text outside the root element */
        return 0;
    }
    if (c->has_child[c->depth - 1])
        return 0; /* mixed content: only leaves' text counts */
    size_t room = sizeof(c->text) - c->tlen;
    int k;
    if (raw) {
        if (len >= room)
            return -E2BIG;
        for (size_t i = 0; i < len; i++) {
            unsigned char ch = (unsigned char)p[i];
            c->text[c->tlen + i] = ch < 0x20 || ch == 0x7f ? ' ' : (char)ch;
        }
        k = (int)len;
    } else {
        k = s3wire_xml_decode(p, len, c->text + c->tlen, room);
        if ((size_t)k + 1 >= room)
            return -E2BIG; /* it may have been cut */
    }
    c->tlen += (size_t)k;
    c->text[c->tlen] = '\0';
    return 0;
}

static int open_element(canon *c, const char *name, size_t nlen)
{
    if (c->depth == 0 && c->roots++ > 0)
        return -EINVAL; /* a second root */
    if (c->depth == S3BUCKET_MAX_DEPTH)
        return -E2BIG;
    if (c->depth > 0)
        c->has_child[c->depth - 1] = 1;
    for (size_t i = 0; i < nlen; i++) {
        unsigned char ch = (unsigned char)name[i];
        if (ch <= 0x20 || ch == 0x7f || strchr("=&\"'<>[]", ch) != NULL)
            return -EINVAL; /* not a name S3 would use, and it would break the lines */
    }
    const char *colon = memchr(name, ':', nlen);
    const char *local = colon ? colon + 1 : name;
    size_t llen = nlen - (size_t)(local - name);
    if (llen == 0)
        return -EINVAL;
    char seg[96] = "";
    if (c->depth == 1) {
        /* A child of the root: numbered among its siblings of the same name. */
        if (llen >= sizeof(c->child_name[0]))
            return -E2BIG;
        int i = 0;
        while (i < c->nchild &&
               !(strlen(c->child_name[i]) == llen && memcmp(c->child_name[i], local, llen) == 0))
            i++;
        if (i == c->nchild) {
            if (c->nchild == CANON_NAMES)
                return -E2BIG;
            memcpy(c->child_name[i], local, llen);
            c->child_name[i][llen] = '\0';
            c->child_count[i] = 0;
            c->nchild++;
        }
        snprintf(seg, sizeof(seg), "[%d]", ++c->child_count[i]);
    }
    size_t at = c->plen[c->depth];
    size_t need = (c->depth ? 1 : 0) + llen + strlen(seg);
    if (at + need + 1 > sizeof(c->path))
        return -E2BIG;
    if (c->depth)
        c->path[at++] = '/';
    memcpy(c->path + at, local, llen);
    at += llen;
    memcpy(c->path + at, seg, strlen(seg));
    at += strlen(seg);
    c->path[at] = '\0';
    c->name[c->depth] = name;
    c->nlen[c->depth] = nlen;
    c->has_child[c->depth] = 0;
    c->depth++;
    c->plen[c->depth] = at;
    c->tlen = 0;
    c->text[0] = '\0';
    return 0;
}

static int close_element(canon *c)
{
    int d = c->depth - 1;
    if (!c->has_child[d]) {
        const char *t = c->text, *e = c->text + c->tlen;
        while (t < e && is_space(*t))
            t++;
        while (e > t && is_space(e[-1]))
            e--;
        if (e > t) {
            size_t need = c->plen[c->depth] + 1 + (size_t)(e - t) + 1;
            if (c->nleaves == S3BUCKET_MAX_LEAVES || c->used + need > sizeof(c->lines))
                return -E2BIG;
            char *l = c->lines + c->used;
            memcpy(l, c->path, c->plen[c->depth]);
            l[c->plen[c->depth]] = '=';
            memcpy(l + c->plen[c->depth] + 1, t, (size_t)(e - t));
            l[need - 1] = '\0';
            c->leaf[c->nleaves++] = l;
            c->used += need;
        }
    }
    c->depth--;
    c->path[c->plen[c->depth]] = '\0';
    c->tlen = 0; /* a parent's text around its children does not count */
    return 0;
}

static int cmp_lines(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int canon_parse(canon *c, const char *xml, size_t len)
{
    const char *p = xml, *end = xml + len;
    while (p < end) {
        if (*p != '<') {
            const char *lt = memchr(p, '<', (size_t)(end - p));
            const char *stop = lt ? lt : end;
            int e = add_text(c, p, (size_t)(stop - p), 0);
            if (e < 0)
                return e;
            p = stop;
            continue;
        }
        const char *q;
        if ((size_t)(end - p) >= 2 && p[1] == '?') {
            if ((q = find_str(p + 2, end, "?>")) == NULL)
                return -EINVAL;
            p = q + 2;
        } else if ((size_t)(end - p) >= 4 && memcmp(p, "<!--", 4) == 0) {
            if ((q = find_str(p + 4, end, "-->")) == NULL)
                return -EINVAL;
            p = q + 3;
        } else if ((size_t)(end - p) >= 9 && memcmp(p, "<![CDATA[", 9) == 0) {
            if ((q = find_str(p + 9, end, "]]>")) == NULL)
                return -EINVAL;
            int e = c->depth ? add_text(c, p + 9, (size_t)(q - p - 9), 1) : -EINVAL;
            if (e < 0)
                return e;
            p = q + 3;
        } else if ((size_t)(end - p) >= 2 && p[1] == '!') {
            if (c->depth > 0 || (q = memchr(p, '>', (size_t)(end - p))) == NULL)
                return -EINVAL;
            p = q + 1; /* <!DOCTYPE ...> */
        } else if ((size_t)(end - p) >= 2 && p[1] == '/') {
            const char *n = p + 2;
            if ((q = memchr(n, '>', (size_t)(end - n))) == NULL || c->depth == 0)
                return -EINVAL;
            const char *ne = q;
            while (ne > n && is_space(ne[-1]))
                ne--;
            int d = c->depth - 1;
            if ((size_t)(ne - n) != c->nlen[d] || memcmp(n, c->name[d], c->nlen[d]) != 0)
                return -EINVAL;
            int e = close_element(c);
            if (e < 0)
                return e;
            p = q + 1;
        } else {
            /* A start tag: its name, then attributes (quoted values may hold '>'). */
            const char *n = p + 1, *ne = n;
            while (ne < end && !is_space(*ne) && *ne != '/' && *ne != '>' && *ne != '<')
                ne++;
            if (ne == n)
                return -EINVAL;
            char quote = 0;
            for (q = ne; q < end && (quote || *q != '>'); q++) {
                if (quote && *q == quote)
                    quote = 0;
                else if (!quote && (*q == '"' || *q == '\''))
                    quote = *q;
                else if (!quote && *q == '<')
                    return -EINVAL;
            }
            if (q == end)
                return -EINVAL;
            int e = open_element(c, n, (size_t)(ne - n));
            if (e == 0 && q[-1] == '/')
                e = close_element(c); /* <Empty/> */
            if (e < 0)
                return e;
            p = q + 1;
        }
    }
    return c->depth == 0 && c->roots == 1 ? 0 : -EINVAL;
}

int s3bucket_canon(const char *xml, size_t len, char *out, size_t cap)
{
    canon c; /* about 30 KiB of stack */
    c.used = 0;
    c.nleaves = 0;
    c.depth = 0;
    c.roots = 0;
    c.nchild = 0;
    c.tlen = 0;
    c.plen[0] = 0;
    c.path[0] = '\0';
    if (cap == 0)
        return -E2BIG;
    out[0] = '\0';
    int e = canon_parse(&c, xml, len);
    if (e < 0)
        return e;
    qsort(c.leaf, (size_t)c.nleaves, sizeof(c.leaf[0]), cmp_lines);
    size_t n = 0;
    for (int i = 0; i < c.nleaves; i++) {
        size_t l = strlen(c.leaf[i]);
        if (n + l + 2 > cap) {
            out[0] = '\0';
            return -E2BIG;
        }
        memcpy(out + n, c.leaf[i], l);
        out[n + l] = '\n';
        n += l + 1;
    }
    out[n] = '\0';
    return (int)n;
}
