/* SigV4 for S3. Everything is written through a bounded writer into caller buffers or stack
 * scratch; a signature is two SHA-256 passes over a few hundred bytes plus one HMAC with the
 * cached key, so presigning costs microseconds. */
#include "proto/sigv4.h"
#include "proto/wbuf.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static int unreserved(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_' || c == '~';
}

static void w_enc(rd_wbuf *w, const char *s, size_t n, int keep_slash)
{
    static const char hex[] = "0123456789ABCDEF";
    if (w->err)
        return;
    if (3 * n >= w->cap - w->len) { /* might not fit: go byte by byte, stopping at the edge */
        for (size_t i = 0; i < n && !w->err; i++) {
            unsigned char c = (unsigned char)s[i];
            if (unreserved(c) || (keep_slash && c == '/')) {
                wbuf_chr(w, (char)c);
            } else {
                char e[3] = {'%', hex[c >> 4], hex[c & 15]};
                wbuf_put(w, e, 3);
            }
        }
        return;
    }
    char *o = w->p + w->len; /* the hot path: room for the worst case is checked once */
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (unreserved(c) || (keep_slash && c == '/')) {
            *o++ = (char)c;
        } else {
            o[0] = '%';
            o[1] = hex[c >> 4];
            o[2] = hex[c & 15];
            o += 3;
        }
    }
    w->len = (size_t)(o - w->p);
}

int sigv4_uri_encode(char *dst, size_t cap, const char *src, size_t len, int keep_slash)
{
    rd_wbuf w = wbuf_init(dst, cap);
    w_enc(&w, src, len, keep_slash);
    return wbuf_end(&w);
}

void sigv4_key_cache_clear(sigv4_key_cache *cache)
{
    if (cache == NULL)
        return;
    explicit_bzero(cache, sizeof(*cache)); /* a memset the compiler may not drop */
}

/* Days since 1970-01-01 of a proleptic Gregorian date (Hinnant's days_from_civil). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

int sigv4_format_date(int64_t t, char out[SIGV4_DATE_LEN + 1])
{
    if (t < 0 || t > 253402300799) /* 9999-12-31T23:59:59Z */
        return -ERANGE;
    int64_t z = t / 86400 + 719468, secs = t % 86400;
    int64_t era = z / 146097;
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    unsigned d = doy - (153 * mp + 2) / 5 + 1;
    unsigned m = mp < 10 ? mp + 3 : mp - 9;
    int64_t y = (int64_t)yoe + era * 400 + (m <= 2);
    unsigned field[6] = {(unsigned)y / 100,       (unsigned)y % 100,         m, d,
                         (unsigned)(secs / 3600), (unsigned)(secs / 60 % 60)};
    char *o = out;
    for (int i = 0; i < 6; i++) {
        if (i == 4)
            *o++ = 'T';
        *o++ = (char)('0' + field[i] / 10);
        *o++ = (char)('0' + field[i] % 10);
    }
    *o++ = (char)('0' + secs % 60 / 10);
    *o++ = (char)('0' + secs % 10);
    *o++ = 'Z';
    *o = '\0';
    return 0;
}

static int digits(const char *s, size_t n, unsigned *v)
{
    unsigned x = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -EINVAL;
        x = x * 10 + (unsigned)(s[i] - '0');
    }
    *v = x;
    return 0;
}

int sigv4_parse_date(const char *s, size_t len, int64_t *t)
{
    static const unsigned char mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    unsigned y, mo, d, h, mi, se;
    if (len != SIGV4_DATE_LEN || s[8] != 'T' || s[15] != 'Z' || digits(s, 4, &y) ||
        digits(s + 4, 2, &mo) || digits(s + 6, 2, &d) || digits(s + 9, 2, &h) ||
        digits(s + 11, 2, &mi) || digits(s + 13, 2, &se))
        return -EINVAL;
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (y < 1970 || mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] ||
        (mo == 2 && d == 29 && !leap) || h > 23 || mi > 59 || se > 59)
        return -EINVAL;
    *t = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + se;
    return 0;
}

/* ---- canonical request ---------------------------------------------------------------- */

typedef struct span {
    const char *p;
    size_t n;
} span;

static int span_cmp(span a, span b)
{
    int c = memcmp(a.p, b.p, a.n < b.n ? a.n : b.n);
    return c ? c : (a.n > b.n) - (a.n < b.n);
}

/* Header names lowercased into `scratch`, sorted (stably: repeated names keep their order). */
typedef struct header_order {
    span name[SIGV4_MAX_HEADERS];
    const char *value[SIGV4_MAX_HEADERS];
    size_t n;
    char scratch[1024];
} header_order;

static int order_headers(header_order *o, const sigv4_pair *h, size_t n)
{
    if (n > SIGV4_MAX_HEADERS)
        return -E2BIG;
    size_t used = 0;
    o->n = 0;
    for (size_t i = 0; i < n; i++) {
        if (h[i].name == NULL || h[i].value == NULL || h[i].name[0] == '\0')
            return -EINVAL;
        size_t len = strlen(h[i].name);
        if (len > sizeof(o->scratch) - used)
            return -ENOSPC;
        char *dst = o->scratch + used;
        for (size_t k = 0; k < len; k++) {
            char c = h[i].name[k];
            dst[k] = (c >= 'A' && c <= 'Z') ? (char)(c + 32) : c;
        }
        used += len;
        span s = {dst, len};
        size_t j = o->n;
        while (j > 0 && span_cmp(o->name[j - 1], s) > 0) {
            o->name[j] = o->name[j - 1];
            o->value[j] = o->value[j - 1];
            j--;
        }
        o->name[j] = s;
        o->value[j] = h[i].value;
        o->n++;
    }
    return 0;
}

static int same_as_previous(const header_order *o, size_t i)
{
    return i > 0 && span_cmp(o->name[i - 1], o->name[i]) == 0;
}

static void w_signed_headers(rd_wbuf *w, const header_order *o)
{
    for (size_t i = 0; i < o->n; i++) {
        if (same_as_previous(o, i))
            continue;
        if (i > 0)
            wbuf_chr(w, ';');
        wbuf_put(w, o->name[i].p, o->name[i].n);
    }
}

int sigv4_signed_headers(char *out, size_t cap, const sigv4_pair *headers, size_t n)
{
    header_order o;
    int r = order_headers(&o, headers, n);
    if (r < 0)
        return r;
    rd_wbuf w = wbuf_init(out, cap);
    w_signed_headers(&w, &o);
    return wbuf_end(&w);
}

/* A header value trimmed, with each inner run of spaces or tabs written as one space. */
static void w_header_value(rd_wbuf *w, const char *v)
{
    int pending_space = 0, started = 0;
    for (; *v; v++) {
        if (*v == ' ' || *v == '\t') {
            pending_space = started;
            continue;
        }
        if (pending_space)
            wbuf_chr(w, ' ');
        pending_space = 0;
        started = 1;
        wbuf_chr(w, *v);
    }
}

/* Query parameters encoded into `scratch` and sorted by name, then value. */
typedef struct query_order {
    span name[SIGV4_MAX_PARAMS], value[SIGV4_MAX_PARAMS];
    size_t n;
    char scratch[SIGV4_MAX_CANON];
} query_order;

static int order_query(query_order *o, const sigv4_pair *q, size_t n)
{
    if (n > SIGV4_MAX_PARAMS)
        return -E2BIG;
    rd_wbuf w = wbuf_init(o->scratch, sizeof(o->scratch));
    o->n = 0;
    for (size_t i = 0; i < n; i++) {
        if (q[i].name == NULL || q[i].value == NULL)
            return -EINVAL;
        size_t at = w.len;
        w_enc(&w, q[i].name, strlen(q[i].name), 0);
        span nm = {o->scratch + at, w.len - at};
        at = w.len;
        w_enc(&w, q[i].value, strlen(q[i].value), 0);
        span val = {o->scratch + at, w.len - at};
        if (w.err)
            return w.err;
        size_t j = o->n;
        while (j > 0) {
            int c = span_cmp(o->name[j - 1], nm);
            if (c < 0 || (c == 0 && span_cmp(o->value[j - 1], val) <= 0))
                break;
            o->name[j] = o->name[j - 1];
            o->value[j] = o->value[j - 1];
            j--;
        }
        o->name[j] = nm;
        o->value[j] = val;
        o->n++;
    }
    return 0;
}

int sigv4_canonical_request(char *out, size_t cap, const sigv4_request *req)
{
    if (req->method == NULL || req->path == NULL || req->path[0] != '/' ||
        req->payload_hash == NULL || (req->nquery > 0 && req->query == NULL) ||
        (req->nheaders > 0 && req->headers == NULL))
        return -EINVAL;
    header_order ho;
    query_order qo;
    int r = order_headers(&ho, req->headers, req->nheaders);
    if (r == 0)
        r = order_query(&qo, req->query, req->nquery);
    if (r < 0)
        return r;

    rd_wbuf w = wbuf_init(out, cap);
    wbuf_str(&w, req->method);
    wbuf_chr(&w, '\n');
    w_enc(&w, req->path, strlen(req->path), 1);
    wbuf_chr(&w, '\n');
    for (size_t i = 0; i < qo.n; i++) {
        if (i > 0)
            wbuf_chr(&w, '&');
        wbuf_put(&w, qo.name[i].p, qo.name[i].n);
        wbuf_chr(&w, '=');
        wbuf_put(&w, qo.value[i].p, qo.value[i].n);
    }
    wbuf_chr(&w, '\n');
    for (size_t i = 0; i < ho.n; i++) {
        if (same_as_previous(&ho, i)) {
            wbuf_chr(&w, ',');
        } else {
            if (i > 0)
                wbuf_chr(&w, '\n');
            wbuf_put(&w, ho.name[i].p, ho.name[i].n);
            wbuf_chr(&w, ':');
        }
        w_header_value(&w, ho.value[i]);
    }
    wbuf_str(&w, ho.n > 0 ? "\n\n" : "\n");
    w_signed_headers(&w, &ho);
    wbuf_chr(&w, '\n');
    wbuf_str(&w, req->payload_hash);
    return wbuf_end(&w);
}

int sigv4_scope(char *out, size_t cap, const char *amz_date, const sigv4_credentials *cred)
{
    if (amz_date == NULL || strnlen(amz_date, 8) < 8 || cred->region == NULL ||
        cred->service == NULL)
        return -EINVAL;
    rd_wbuf w = wbuf_init(out, cap);
    wbuf_put(&w, amz_date, 8);
    wbuf_chr(&w, '/');
    wbuf_str(&w, cred->region);
    wbuf_chr(&w, '/');
    wbuf_str(&w, cred->service);
    wbuf_str(&w, "/aws4_request");
    return wbuf_end(&w);
}

int sigv4_string_to_sign(char *out, size_t cap, const char *amz_date, const char *scope,
                         const char *canonical, size_t canonical_len)
{
    uint8_t digest[HMAC_SHA256_LEN];
    char hex[HMAC_SHA256_HEX + 1];
    hmac_sha256_digest(canonical, canonical_len, digest);
    hmac_hex(hex, digest, sizeof(digest));
    rd_wbuf w = wbuf_init(out, cap);
    wbuf_str(&w, SIGV4_ALGORITHM "\n");
    wbuf_str(&w, amz_date);
    wbuf_chr(&w, '\n');
    wbuf_str(&w, scope);
    wbuf_chr(&w, '\n');
    wbuf_put(&w, hex, HMAC_SHA256_HEX);
    return wbuf_end(&w);
}

int sigv4_signing_key(sigv4_key_cache *cache, const sigv4_credentials *cred, const char *amz_date,
                      const hmac_key **key)
{
    char scope[SIGV4_MAX_SCOPE];
    if (cred->secret_access_key == NULL ||
        strnlen(cred->secret_access_key, SIGV4_MAX_SECRET + 1) > SIGV4_MAX_SECRET)
        return -EINVAL;
    int n = sigv4_scope(scope, sizeof(scope), amz_date, cred);
    if (n < 0)
        return -EINVAL;
    if (!cache->valid || strcmp(cache->scope, scope) != 0 ||
        strcmp(cache->secret, cred->secret_access_key) != 0) {
        /* kDate = HMAC("AWS4" + secret, date), then region, service, "aws4_request" */
        uint8_t k[HMAC_SHA256_LEN];
        char seed[4 + SIGV4_MAX_SECRET];
        size_t slen = strlen(cred->secret_access_key);
        memcpy(seed, "AWS4", 4);
        memcpy(seed + 4, cred->secret_access_key, slen);
        hmac_sha256(seed, 4 + slen, amz_date, 8, k);
        hmac_sha256(k, sizeof(k), cred->region, strlen(cred->region), k);
        hmac_sha256(k, sizeof(k), cred->service, strlen(cred->service), k);
        hmac_sha256(k, sizeof(k), "aws4_request", 12, k);
        hmac_key_init(&cache->key, k, sizeof(k));
        memcpy(cache->scope, scope, (size_t)n + 1);
        memcpy(cache->secret, cred->secret_access_key, slen + 1);
        cache->valid = 1;
        memset(seed, 0, sizeof(seed));
        memset(k, 0, sizeof(k));
    }
    *key = &cache->key;
    return 0;
}

/* Signature (64 hex and a NUL) of a canonical request; `scope` is written as a by-product. */
static int sign_canonical(sigv4_key_cache *cache, const sigv4_credentials *cred,
                          const char *amz_date, const char *canonical, size_t len,
                          char scope[SIGV4_MAX_SCOPE], char sig[HMAC_SHA256_HEX + 1])
{
    const hmac_key *key;
    int r = sigv4_signing_key(cache, cred, amz_date, &key);
    if (r < 0)
        return r;
    r = sigv4_scope(scope, SIGV4_MAX_SCOPE, amz_date, cred);
    if (r < 0)
        return r;
    char sts[SIGV4_MAX_SCOPE + 128];
    int n = sigv4_string_to_sign(sts, sizeof(sts), amz_date, scope, canonical, len);
    if (n < 0)
        return n;
    uint8_t mac[HMAC_SHA256_LEN];
    hmac_key_sign(key, sts, (size_t)n, mac);
    hmac_hex(sig, mac, sizeof(mac));
    return 0;
}

int sigv4_authorization(sigv4_key_cache *cache, const sigv4_credentials *cred, const char *amz_date,
                        const sigv4_request *req, char *out, size_t cap)
{
    char canonical[SIGV4_MAX_CANON], scope[SIGV4_MAX_SCOPE], sig[HMAC_SHA256_HEX + 1];
    char signed_headers[1024];
    if (cred->access_key_id == NULL)
        return -EINVAL;
    int n = sigv4_canonical_request(canonical, sizeof(canonical), req);
    if (n < 0)
        return n;
    int r = sign_canonical(cache, cred, amz_date, canonical, (size_t)n, scope, sig);
    if (r < 0)
        return r;
    r = sigv4_signed_headers(signed_headers, sizeof(signed_headers), req->headers, req->nheaders);
    if (r < 0)
        return r;
    rd_wbuf w = wbuf_init(out, cap);
    wbuf_str(&w, SIGV4_ALGORITHM " Credential=");
    wbuf_str(&w, cred->access_key_id);
    wbuf_chr(&w, '/');
    wbuf_str(&w, scope);
    wbuf_str(&w, ", SignedHeaders=");
    wbuf_str(&w, signed_headers);
    wbuf_str(&w, ", Signature=");
    wbuf_str(&w, sig);
    return wbuf_end(&w);
}

int sigv4_sign_headers(sigv4_key_cache *cache, const sigv4_credentials *cred, int64_t now,
                       const char *host, const sigv4_request *req, const sigv4_pair *extra,
                       size_t nextra, sigv4_signed *out)
{
    sigv4_pair headers[SIGV4_MAX_HEADERS];
    if (host == NULL || (nextra > 0 && extra == NULL))
        return -EINVAL;
    if (nextra > SIGV4_MAX_HEADERS - 3)
        return -E2BIG;
    int r = sigv4_format_date(now, out->amz_date);
    if (r < 0)
        return r;
    const char *payload = req->payload_hash ? req->payload_hash : SIGV4_UNSIGNED_PAYLOAD;
    if (strlen(payload) >= sizeof(out->content_sha256))
        return -EINVAL;
    memcpy(out->content_sha256, payload, strlen(payload) + 1);
    headers[0] = (sigv4_pair){"host", host};
    headers[1] = (sigv4_pair){"x-amz-content-sha256", out->content_sha256};
    headers[2] = (sigv4_pair){"x-amz-date", out->amz_date};
    for (size_t i = 0; i < nextra; i++)
        headers[3 + i] = extra[i];
    sigv4_request full = *req;
    full.headers = headers;
    full.nheaders = 3 + nextra;
    full.payload_hash = payload;
    r = sigv4_authorization(cache, cred, out->amz_date, &full, out->authorization,
                            sizeof(out->authorization));
    return r < 0 ? r : 0;
}

static const char *const presign_params[] = {"X-Amz-Algorithm",     "X-Amz-Credential",
                                             "X-Amz-Date",          "X-Amz-Expires",
                                             "X-Amz-SignedHeaders", "X-Amz-Signature"};
#define NPRESIGN_PARAMS (sizeof(presign_params) / sizeof(presign_params[0]))

int sigv4_presign(sigv4_key_cache *cache, const sigv4_credentials *cred, int64_t now,
                  int64_t expires, const sigv4_request *req, char *out, size_t cap)
{
    if (expires < 1 || expires > SIGV4_MAX_EXPIRES || cred->access_key_id == NULL ||
        req->path == NULL || (req->nquery > 0 && req->query == NULL))
        return -EINVAL;
    if (req->nquery > SIGV4_MAX_PARAMS - 5)
        return -E2BIG;
    for (size_t i = 0; i < req->nquery; i++)
        for (size_t k = 0; k < NPRESIGN_PARAMS; k++)
            if (req->query[i].name && strcmp(req->query[i].name, presign_params[k]) == 0)
                return -EINVAL;

    char amz_date[SIGV4_DATE_LEN + 1], scope[SIGV4_MAX_SCOPE], signed_headers[1024];
    char credential[SIGV4_MAX_SCOPE + 128], expires_text[24];
    int r = sigv4_format_date(now, amz_date);
    if (r < 0)
        return r;
    r = sigv4_scope(scope, sizeof(scope), amz_date, cred);
    if (r < 0)
        return r;
    r = sigv4_signed_headers(signed_headers, sizeof(signed_headers), req->headers, req->nheaders);
    if (r < 0)
        return r;
    rd_wbuf wc = wbuf_init(credential, sizeof(credential));
    wbuf_str(&wc, cred->access_key_id);
    wbuf_chr(&wc, '/');
    wbuf_str(&wc, scope);
    if (wbuf_end(&wc) < 0)
        return -EINVAL;
    char *e = expires_text + sizeof(expires_text) - 1;
    *e = '\0';
    for (int64_t x = expires; x > 0; x /= 10)
        *--e = (char)('0' + x % 10);

    sigv4_pair params[SIGV4_MAX_PARAMS];
    size_t n = req->nquery;
    if (n > 0)
        memcpy(params, req->query, n * sizeof(params[0]));
    params[n++] = (sigv4_pair){"X-Amz-Algorithm", SIGV4_ALGORITHM};
    params[n++] = (sigv4_pair){"X-Amz-Credential", credential};
    params[n++] = (sigv4_pair){"X-Amz-Date", amz_date};
    params[n++] = (sigv4_pair){"X-Amz-Expires", e};
    params[n++] = (sigv4_pair){"X-Amz-SignedHeaders", signed_headers};

    sigv4_request full = *req;
    full.query = params;
    full.nquery = n;
    if (full.payload_hash == NULL)
        full.payload_hash = SIGV4_UNSIGNED_PAYLOAD;
    char canonical[SIGV4_MAX_CANON], sig[HMAC_SHA256_HEX + 1];
    int len = sigv4_canonical_request(canonical, sizeof(canonical), &full);
    if (len < 0)
        return len;
    r = sign_canonical(cache, cred, amz_date, canonical, (size_t)len, scope, sig);
    if (r < 0)
        return r;

    rd_wbuf w = wbuf_init(out, cap);
    if (req->nquery == 0) {
        /* Only the X-Amz-* parameters, whose sorted order is botocore's order too: the URL's
         * path and query are the canonical request's second and third lines. */
        const char *path = strchr(canonical, '\n') + 1;
        const char *query = strchr(path, '\n') + 1;
        wbuf_put(&w, path, (size_t)(query - 1 - path));
        wbuf_chr(&w, '?');
        wbuf_put(&w, query, (size_t)(strchr(query, '\n') - query));
        wbuf_str(&w, "&X-Amz-Signature=");
        wbuf_str(&w, sig);
        return wbuf_end(&w);
    }
    w_enc(&w, req->path, strlen(req->path), 1);
    for (size_t i = 0; i < n; i++) {
        wbuf_chr(&w, i == 0 ? '?' : '&');
        w_enc(&w, params[i].name, strlen(params[i].name), 0);
        wbuf_chr(&w, '=');
        w_enc(&w, params[i].value, strlen(params[i].value), 0);
    }
    wbuf_str(&w, "&X-Amz-Signature=");
    wbuf_str(&w, sig);
    return wbuf_end(&w);
}

/* ---- verification --------------------------------------------------------------------- */

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c |= 0x20;
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Percent-decodes s[0..n) into `w` with a NUL after it; sets *out to the decoded string. A bad
 * escape or a decoded NUL is -EINVAL. */
static int w_decode(rd_wbuf *w, const char *s, size_t n, const char **out)
{
    size_t at = w->len;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '%') {
            if (i + 2 >= n)
                return -EINVAL;
            int hi = hexval(s[i + 1]);
            int lo = hexval(s[i + 2]);
            if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
                return -EINVAL;
            c = (char)(hi << 4 | lo);
            i += 2;
        } else if (c == '\0') {
            return -EINVAL;
        }
        wbuf_chr(w, c);
    }
    wbuf_chr(w, '\0');
    if (w->err)
        return w->err;
    *out = w->p + at;
    return 0;
}

/* Copies p[0..n) and a NUL into `w`; sets *out to the copy. */
static int w_copy(rd_wbuf *w, const char *p, size_t n, const char **out)
{
    size_t at = w->len;
    wbuf_put(w, p, n);
    wbuf_chr(w, '\0');
    if (w->err)
        return w->err;
    *out = w->p + at;
    return 0;
}

static int span_is(const char *p, size_t n, const char *s)
{
    return strlen(s) == n && memcmp(p, s, n) == 0;
}

static int streq_nocase(const char *a, const char *b)
{
    for (; *a && *b; a++, b++) {
        char x = (*a >= 'A' && *a <= 'Z') ? (char)(*a + 32) : *a;
        char y = (*b >= 'A' && *b <= 'Z') ? (char)(*b + 32) : *b;
        if (x != y)
            return 0;
    }
    return *a == *b;
}

int sigv4_verify(sigv4_key_cache *cache, const sigv4_credentials *cred, int64_t now,
                 const sigv4_incoming *in)
{
    enum { ALG, CRED, DATE, EXPIRES, SIGNED, SIG };
    const char *auth[NPRESIGN_PARAMS] = {0};
    sigv4_pair params[SIGV4_MAX_PARAMS], headers[SIGV4_MAX_HEADERS];
    size_t nparams = 0, nheaders = 0;
    char scratch[SIGV4_MAX_CANON];
    rd_wbuf w = wbuf_init(scratch, sizeof(scratch));
    const char *method = NULL, *path = NULL;
    int r;

    if (in->method == NULL || in->path == NULL || in->host == NULL ||
        (in->query == NULL && in->query_len > 0) || (in->headers == NULL && in->nheaders > 0) ||
        cred->access_key_id == NULL || cred->region == NULL || cred->service == NULL)
        return -EINVAL;
    if ((r = w_copy(&w, in->method, in->method_len, &method)) < 0 ||
        (r = w_decode(&w, in->path, in->path_len, &path)) < 0)
        return r;
    if (path[0] != '/')
        return -EINVAL;

    const char *q = in->query, *end = in->query ? in->query + in->query_len : NULL;
    while (q != NULL && q < end) {
        const char *amp = memchr(q, '&', (size_t)(end - q));
        const char *stop = amp ? amp : end;
        if (stop > q) {
            const char *eq = memchr(q, '=', (size_t)(stop - q));
            const char *name = NULL, *value = NULL;
            if ((r = w_decode(&w, q, (size_t)((eq ? eq : stop) - q), &name)) < 0)
                return r;
            if ((r = w_decode(&w, eq ? eq + 1 : stop, eq ? (size_t)(stop - eq - 1) : 0, &value)) <
                0)
                return r;
            int known = 0;
            for (size_t k = 0; k < NPRESIGN_PARAMS; k++) {
                if (strcmp(name, presign_params[k]) == 0) {
                    if (auth[k] != NULL)
                        return -EINVAL;
                    auth[k] = value;
                    known = 1;
                }
            }
            if (!known) {
                if (nparams == SIGV4_MAX_PARAMS)
                    return -E2BIG;
                params[nparams++] = (sigv4_pair){name, value};
            }
        }
        q = amp ? amp + 1 : end;
    }
    for (size_t k = 0; k < NPRESIGN_PARAMS; k++)
        if (auth[k] == NULL)
            return -EINVAL;
    if (strcmp(auth[ALG], SIGV4_ALGORITHM) != 0)
        return -EINVAL;

    int64_t t;
    unsigned expires;
    size_t elen = strlen(auth[EXPIRES]);
    if (sigv4_parse_date(auth[DATE], strlen(auth[DATE]), &t) < 0 || elen == 0 || elen > 6 ||
        digits(auth[EXPIRES], elen, &expires) < 0 || expires < 1 || expires > SIGV4_MAX_EXPIRES)
        return -EINVAL;

    /* Credential: AKID/YYYYMMDD/region/service/aws4_request */
    const char *part[5], *c = auth[CRED];
    size_t plen[5], np = 0;
    for (;;) {
        const char *slash = strchr(c, '/');
        if (np == 5)
            return -EINVAL;
        part[np] = c;
        plen[np++] = slash ? (size_t)(slash - c) : strlen(c);
        if (slash == NULL)
            break;
        c = slash + 1;
    }
    if (np != 5 || plen[1] != 8 || memcmp(part[1], auth[DATE], 8) != 0 ||
        !span_is(part[4], plen[4], "aws4_request"))
        return -EINVAL;
    if (!span_is(part[0], plen[0], cred->access_key_id) ||
        !span_is(part[2], plen[2], cred->region) || !span_is(part[3], plen[3], cred->service))
        return -EKEYREJECTED;

    if (t > now + SIGV4_MAX_SKEW)
        return -EAGAIN;
    if (now > t + (int64_t)expires)
        return -EKEYEXPIRED;

    /* Signed headers: host from the request, the others looked up among the received ones. */
    int have_host = 0;
    for (c = auth[SIGNED]; *c;) {
        const char *semi = strchr(c, ';');
        size_t n = semi ? (size_t)(semi - c) : strlen(c);
        const char *name = NULL, *host = NULL;
        if (n == 0)
            return -EINVAL;
        if ((r = w_copy(&w, c, n, &name)) < 0)
            return r;
        if (strcmp(name, "host") == 0) {
            if ((r = w_copy(&w, in->host, in->host_len, &host)) < 0)
                return r;
            if (nheaders == SIGV4_MAX_HEADERS)
                return -E2BIG;
            headers[nheaders++] = (sigv4_pair){name, host};
            have_host = 1;
        } else {
            int found = 0;
            for (size_t i = 0; i < in->nheaders; i++) {
                if (!streq_nocase(in->headers[i].name, name))
                    continue;
                if (nheaders == SIGV4_MAX_HEADERS)
                    return -E2BIG;
                headers[nheaders++] = (sigv4_pair){name, in->headers[i].value};
                found = 1;
            }
            if (!found)
                return -EINVAL;
        }
        c += n + (semi != NULL);
    }
    if (!have_host)
        return -EINVAL;

    sigv4_request req = {method, path, params, nparams, headers, nheaders, SIGV4_UNSIGNED_PAYLOAD};
    /* The canonical query includes every parameter but the signature. */
    if (nparams + NPRESIGN_PARAMS - 1 > SIGV4_MAX_PARAMS)
        return -E2BIG;
    for (size_t k = 0; k < SIG; k++)
        params[nparams + k] = (sigv4_pair){presign_params[k], auth[k]};
    req.nquery = nparams + SIG;

    char canonical[SIGV4_MAX_CANON], scope[SIGV4_MAX_SCOPE], sig[HMAC_SHA256_HEX + 1];
    int len = sigv4_canonical_request(canonical, sizeof(canonical), &req);
    if (len < 0)
        return len;
    if ((r = sign_canonical(cache, cred, auth[DATE], canonical, (size_t)len, scope, sig)) < 0)
        return r;
    if (strlen(auth[SIG]) != HMAC_SHA256_HEX)
        return -EACCES;
    return hmac_equal(sig, auth[SIG], HMAC_SHA256_HEX) ? 0 : -EACCES;
}

const char *sigv4_strerror(int err)
{
    switch (err) {
    case 0:
        return "signature valid";
    case -EINVAL:
        return "malformed presigned request: check the X-Amz-* query parameters";
    case -EKEYREJECTED:
        return "the credential is not one this server accepts (access key, region or service)";
    case -EAGAIN:
        return "the request is dated in the future: check the client's clock";
    case -EKEYEXPIRED:
        return "the presigned URL has expired: ask for a new one";
    case -EACCES:
        return "the signature does not match: the URL was altered or signed with another key";
    case -E2BIG:
    case -ENOSPC:
        return "the request is too large to verify";
    default:
        return "signature verification failed";
    }
}
