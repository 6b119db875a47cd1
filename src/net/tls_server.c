/* The listener's TLS: credentials, the shared session cache, per-connection engines. See
 * tls_server.h. */
#include "src/net/tls_server.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "src/net/tls.h"
#include "src/rt/alloc.h"

#define SESSION_CACHE_BYTES (1 << 20) /* about 100 bytes a session: ~10,000 sessions */
#define MAX_CHAIN           8

struct tls_creds {
    _Atomic int refs;
    br_x509_certificate chain[MAX_CHAIN];
    size_t n;
    int key_type;                 /* BR_KEYTYPE_RSA or BR_KEYTYPE_EC */
    br_skey_decoder_context skey; /* holds the key itself */
    int64_t not_after;
};

/* BearSSL's LRU cache behind a mutex: every loop's connections share it. The vtable pointer
 * comes first, as BearSSL calls it through a pointer to that field. */
typedef struct locked_cache {
    const br_ssl_session_cache_class *vtable;
    pthread_mutex_t mu;
    br_ssl_session_cache_lru lru;
    unsigned char *store;
} locked_cache;

struct tls_server {
    locked_cache cache;
    pthread_mutex_t mu; /* guards cur */
    tls_creds *cur;
    char *cert_path, *key_path;
};

static void cache_save(const br_ssl_session_cache_class **ctx, br_ssl_server_context *sc,
                       const br_ssl_session_parameters *params)
{
    locked_cache *c = (locked_cache *)(void *)ctx;
    pthread_mutex_lock(&c->mu);
    c->lru.vtable->save(&c->lru.vtable, sc, params);
    pthread_mutex_unlock(&c->mu);
}

static int cache_load(const br_ssl_session_cache_class **ctx, br_ssl_server_context *sc,
                      br_ssl_session_parameters *params)
{
    locked_cache *c = (locked_cache *)(void *)ctx;
    pthread_mutex_lock(&c->mu);
    int r = c->lru.vtable->load(&c->lru.vtable, sc, params);
    pthread_mutex_unlock(&c->mu);
    return r;
}

static const br_ssl_session_cache_class locked_cache_class = {sizeof(locked_cache), cache_save,
                                                              cache_load};

/* ---- credentials ---- */

static void creds_free(tls_creds *c)
{
    if (c == NULL)
        return;
    for (size_t i = 0; i < c->n; i++)
        free(c->chain[i].data);
    explicit_bzero(&c->skey, sizeof(c->skey));
    free(c);
}

static void creds_put(tls_creds *c)
{
    if (c != NULL && atomic_fetch_sub_explicit(&c->refs, 1, memory_order_acq_rel) == 1)
        creds_free(c);
}

typedef struct load_ctx {
    tls_creds *c;
    int keys, too_many;
} load_ctx;

static int cert_object(void *ctx, const char *name, const unsigned char *der, size_t len)
{
    load_ctx *x = ctx;
    if (strcmp(name, "CERTIFICATE") != 0 && strcmp(name, "X509 CERTIFICATE") != 0)
        return 0;
    if (x->c->n == MAX_CHAIN) {
        x->too_many = 1;
        return 0;
    }
    unsigned char *d = rd_calloc(1, len ? len : 1, "a certificate");
    memcpy(d, der, len);
    x->c->chain[x->c->n].data = d;
    x->c->chain[x->c->n].data_len = len;
    x->c->n++;
    return 0;
}

static int key_object(void *ctx, const char *name, const unsigned char *der, size_t len)
{
    load_ctx *x = ctx;
    if (strstr(name, "PRIVATE KEY") == NULL || x->keys++ > 0)
        return 0; /* "EC PARAMETERS" before an EC key, and anything after the first key */
    br_skey_decoder_init(&x->c->skey);
    br_skey_decoder_push(&x->c->skey, der, len);
    return 0;
}

/* 1 when the leaf certificate's public key is the private key's. */
static int key_matches(tls_creds *c, char *err, size_t errlen)
{
    br_x509_decoder_context dc;
    br_x509_decoder_init(&dc, NULL, NULL);
    br_x509_decoder_push(&dc, c->chain[0].data, c->chain[0].data_len);
    const br_x509_pkey *pk = br_x509_decoder_get_pkey(&dc);
    if (pk == NULL) {
        snprintf(err, errlen, "the first certificate cannot be decoded");
        return 0;
    }
    /* Days since 0000-01-01 (proleptic Gregorian); 719528 of them before 1970-01-01. */
    c->not_after = ((int64_t)dc.notafter_days - 719528) * 86400 + dc.notafter_seconds;
    if (pk->key_type != c->key_type) {
        snprintf(err, errlen, "the key is %s but the certificate's is %s",
                 c->key_type == BR_KEYTYPE_RSA ? "RSA" : "EC",
                 pk->key_type == BR_KEYTYPE_RSA ? "RSA" : "EC");
        return 0;
    }
    int same;
    if (c->key_type == BR_KEYTYPE_RSA) {
        const br_rsa_private_key *sk = br_skey_decoder_get_rsa(&c->skey);
        unsigned char n[512];
        size_t nl = br_rsa_compute_modulus_get_default()(NULL, sk);
        const unsigned char *cn = pk->key.rsa.n;
        size_t cl = pk->key.rsa.nlen;
        while (cl > 0 && *cn == 0) {
            cn++;
            cl--;
        }
        same = nl > 0 && nl <= sizeof(n) && br_rsa_compute_modulus_get_default()(n, sk) == nl &&
               nl == cl && memcmp(n, cn, nl) == 0;
    } else {
        const br_ec_private_key *sk = br_skey_decoder_get_ec(&c->skey);
        unsigned char q[BR_EC_KBUF_PUB_MAX_SIZE];
        br_ec_public_key pub;
        size_t ql = br_ec_compute_pub(br_ec_get_default(), &pub, q, sk);
        same = ql > 0 && pub.curve == pk->key.ec.curve && ql == pk->key.ec.qlen &&
               memcmp(q, pk->key.ec.q, ql) == 0;
    }
    if (!same)
        snprintf(err, errlen, "the private key is not the key of the first certificate");
    return same;
}

static int creds_load(tls_creds **out, const char *cert, const char *key, char *err, size_t errlen)
{
    tls_creds *c = rd_calloc(1, sizeof(*c), "TLS credentials");
    load_ctx x = {c, 0, 0};
    int r = tls_pem_each(cert, cert_object, &x);
    if (r < 0 && !(r == -EINVAL && c->n > 0)) {
        snprintf(err, errlen, "cannot read the certificate %s (%s)", cert,
                 r == -EINVAL ? "not PEM" : strerror(-r));
        goto fail;
    }
    if (c->n == 0) {
        snprintf(err, errlen, "%s holds no CERTIFICATE", cert);
        r = -EINVAL;
        goto fail;
    }
    if (x.too_many) {
        snprintf(err, errlen, "%s holds more than %d certificates", cert, MAX_CHAIN);
        r = -EINVAL;
        goto fail;
    }
    r = tls_pem_each(key, key_object, &x);
    if (r < 0 && !(r == -EINVAL && x.keys > 0)) {
        snprintf(err, errlen, "cannot read the key %s (%s)", key,
                 r == -EINVAL ? "not PEM" : strerror(-r));
        goto fail;
    }
    c->key_type = x.keys ? br_skey_decoder_key_type(&c->skey) : 0;
    if (c->key_type != BR_KEYTYPE_RSA && c->key_type != BR_KEYTYPE_EC) {
        snprintf(err, errlen,
                 "%s holds no private key reeld can use (RSA, or EC on P-256, P-384 or P-521, "
                 "in PEM)",
                 key);
        r = -EINVAL;
        goto fail;
    }
    if (!key_matches(c, err, errlen)) {
        r = -EINVAL;
        goto fail;
    }
    atomic_init(&c->refs, 1);
    *out = c;
    return 0;
fail:
    creds_free(c);
    return r;
}

/* ---- the server ---- */

int tls_server_create(tls_server **out, const char *cert, const char *key, char *err, size_t errlen)
{
    *out = NULL;
    tls_creds *c;
    int r = creds_load(&c, cert, key, err, errlen);
    if (r < 0)
        return r;
    tls_server *s = rd_calloc(1, sizeof(*s), "the TLS server");
    s->cur = c;
    s->cert_path = rd_strdup(cert, "the certificate's path");
    s->key_path = rd_strdup(key, "the key's path");
    s->cache.store = rd_calloc(1, SESSION_CACHE_BYTES, "the TLS session cache");
    br_ssl_session_cache_lru_init(&s->cache.lru, s->cache.store, SESSION_CACHE_BYTES);
    s->cache.vtable = &locked_cache_class;
    pthread_mutex_init(&s->cache.mu, NULL);
    pthread_mutex_init(&s->mu, NULL);
    *out = s;
    return 0;
}

int tls_server_reload(tls_server *s, char *err, size_t errlen)
{
    tls_creds *c;
    int r = creds_load(&c, s->cert_path, s->key_path, err, errlen);
    if (r < 0)
        return r;
    pthread_mutex_lock(&s->mu);
    tls_creds *old = s->cur;
    s->cur = c;
    pthread_mutex_unlock(&s->mu);
    creds_put(old);
    return 0;
}

int64_t tls_server_not_after(tls_server *s)
{
    pthread_mutex_lock(&s->mu);
    int64_t t = s->cur->not_after;
    pthread_mutex_unlock(&s->mu);
    return t;
}

void tls_server_free(tls_server *s)
{
    if (s == NULL)
        return;
    creds_put(s->cur);
    free(s->cert_path);
    free(s->key_path);
    free(s->cache.store);
    pthread_mutex_destroy(&s->cache.mu);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

/* ---- connections ---- */

/* ECDHE with AEAD only, in the server's order: AES-GCM (hardware AES where the CPU has it),
 * then ChaCha20-Poly1305. No CBC (Lucky 13), no RC4, no static RSA (no forward secrecy). */
static const uint16_t suites_ec[] = {
    BR_TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
    BR_TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
    BR_TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
};
static const uint16_t suites_rsa[] = {
    BR_TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
    BR_TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
    BR_TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
};
static const char *alpn[] = {"http/1.1"};

int tls_conn_start(tls_conn *t, tls_server *s)
{
    pthread_mutex_lock(&s->mu);
    tls_creds *c = s->cur;
    atomic_fetch_add_explicit(&c->refs, 1, memory_order_relaxed);
    pthread_mutex_unlock(&s->mu);
    t->creds = c;
    br_ssl_engine_context *eng = &t->sc.eng;
    if (c->key_type == BR_KEYTYPE_RSA) {
        br_ssl_server_init_full_rsa(&t->sc, c->chain, c->n, br_skey_decoder_get_rsa(&c->skey));
        br_ssl_engine_set_suites(eng, suites_rsa, sizeof(suites_rsa) / sizeof(suites_rsa[0]));
    } else {
        br_ssl_server_init_full_ec(&t->sc, c->chain, c->n, BR_KEYTYPE_EC,
                                   br_skey_decoder_get_ec(&c->skey));
        br_ssl_engine_set_suites(eng, suites_ec, sizeof(suites_ec) / sizeof(suites_ec[0]));
    }
    br_ssl_engine_set_versions(eng, BR_TLS12, BR_TLS12);
    br_ssl_engine_set_protocol_names(eng, alpn, 1);
    /* Client-initiated renegotiation costs the server a handshake per request: refused. */
    br_ssl_engine_add_flags(eng, BR_OPT_ENFORCE_SERVER_PREFERENCES | BR_OPT_NO_RENEGOTIATION);
    br_ssl_engine_set_buffer(eng, t->iobuf, sizeof(t->iobuf), 1);
    br_ssl_server_set_cache(&t->sc, &s->cache.vtable);
    if (!br_ssl_server_reset(&t->sc)) {
        tls_conn_end(t);
        return -EINVAL;
    }
    return 0;
}

void tls_conn_end(tls_conn *t)
{
    creds_put(t->creds);
    t->creds = NULL;
}

/* Copies p[0..n) into the engine through one of its buffers (records in, or application data
 * out) while its state, masked, is `want`. */
static size_t copy_in(br_ssl_engine_context *eng, unsigned mask, unsigned want,
                      unsigned char *(*buf_of)(const br_ssl_engine_context *, size_t *),
                      void (*ack)(br_ssl_engine_context *, size_t), const void *p, size_t n)
{
    size_t done = 0;
    while (done < n && (br_ssl_engine_current_state(eng) & mask) == want) {
        size_t len;
        unsigned char *buf = buf_of(eng, &len);
        size_t k = n - done < len ? n - done : len;
        memcpy(buf, (const unsigned char *)p + done, k);
        ack(eng, k);
        done += k;
    }
    return done;
}

size_t tls_conn_push(tls_conn *t, const void *p, size_t n)
{
    /* Never while a record waits to leave: BearSSL wants its output sent first. A client's
     * Finished and first request often come together (False Start); fed at once, the
     * request would reach the engine before the server's Finished was out, and fail it. */
    return copy_in(&t->sc.eng, BR_SSL_RECVREC | BR_SSL_SENDREC, BR_SSL_RECVREC,
                   br_ssl_engine_recvrec_buf, br_ssl_engine_recvrec_ack, p, n);
}

size_t tls_conn_write(tls_conn *t, const void *p, size_t n, int flush)
{
    size_t done = copy_in(&t->sc.eng, BR_SSL_SENDAPP, BR_SSL_SENDAPP, br_ssl_engine_sendapp_buf,
                          br_ssl_engine_sendapp_ack, p, n);
    if (flush && done == n && n > 0)
        br_ssl_engine_flush(&t->sc.eng, 0);
    return done;
}

int tls_conn_ready(tls_conn *t)
{
    /* BearSSL sets this once the handshake is done (and keeps it while data may flow). */
    return t->sc.eng.application_data == 1;
}

const char *tls_conn_strerror(int br_err)
{
    switch (br_err) {
    case BR_ERR_OK:
        return "closed";
    case BR_ERR_UNSUPPORTED_VERSION:
    case BR_ERR_BAD_VERSION:
        return "the client offers no TLS version the server accepts (TLS 1.2 only)";
    case BR_ERR_BAD_CIPHER_SUITE:
        return "the client offers no cipher suite the server accepts (ECDHE with AES-GCM or "
               "ChaCha20-Poly1305)";
    case BR_ERR_BAD_MAC:
        return "a record failed its integrity check";
    case BR_ERR_IO:
        return "the connection failed";
    case BR_ERR_UNKNOWN_TYPE:
    case BR_ERR_BAD_LENGTH:
    case BR_ERR_TOO_LARGE:
        return "the client did not speak TLS";
    default:
        if (br_err >= BR_ERR_RECV_FATAL_ALERT && br_err < BR_ERR_SEND_FATAL_ALERT)
            return "the client ended the handshake with an alert";
        if (br_err == BR_ERR_SEND_FATAL_ALERT + 70)
            return "the client offers no TLS version the server accepts (TLS 1.2 only)";
        if (br_err == BR_ERR_SEND_FATAL_ALERT + 40)
            return "the client offers no cipher suite the server accepts (ECDHE with AES-GCM or "
                   "ChaCha20-Poly1305)";
        if (br_err >= BR_ERR_SEND_FATAL_ALERT)
            return "the server ended the handshake with an alert";
        return "the TLS handshake failed";
    }
}
