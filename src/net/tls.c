/* Trust anchors from a PEM bundle, and BearSSL client contexts. See tls.h.
 *
 * Anchors are built as BearSSL's own tools do: each CERTIFICATE object is decoded with
 * br_x509_decoder, its subject name and public key copied out; a certificate marked CA becomes
 * a CA anchor, any other a direct-trust anchor (its key is trusted for itself only). */
#include "src/net/tls.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "src/rt/alloc.h"

typedef struct growbuf {
    unsigned char *p;
    size_t len, cap;
} growbuf;

static void grow_append(void *ctx, const void *data, size_t len)
{
    growbuf *g = ctx;
    if (g->len + len > g->cap) {
        size_t cap = g->cap ? g->cap : 1024;
        while (cap < g->len + len)
            cap *= 2;
        unsigned char *p = rd_realloc(g->p, cap, "reading trust anchors");
        g->p = p;
        g->cap = cap;
    }
    memcpy(g->p + g->len, data, len);
    g->len += len;
}

static unsigned char *dup_bytes(const unsigned char *p, size_t n)
{
    unsigned char *d = rd_calloc(1, n ? n : 1, "a trust anchor");
    if (n)
        memcpy(d, p, n);
    return d;
}

/* Adds the anchor of one DER certificate; -1 when BearSSL cannot decode it. */
static int add_anchor(tls_anchors *a, size_t *cap, const unsigned char *der, size_t len)
{
    growbuf dn = {0};
    br_x509_decoder_context dc;
    br_x509_decoder_init(&dc, grow_append, &dn);
    br_x509_decoder_push(&dc, der, len);
    const br_x509_pkey *pk = br_x509_decoder_get_pkey(&dc);
    if (pk == NULL || (pk->key_type != BR_KEYTYPE_RSA && pk->key_type != BR_KEYTYPE_EC)) {
        free(dn.p);
        return -1;
    }
    if (a->n == *cap) {
        *cap = *cap ? *cap * 2 : 64;
        br_x509_trust_anchor *ta = rd_realloc(a->ta, *cap * sizeof(*ta), "reading trust anchors");
        a->ta = ta;
    }
    br_x509_trust_anchor *t = &a->ta[a->n++];
    memset(t, 0, sizeof(*t));
    t->dn.data = dn.p ? dn.p : dup_bytes(NULL, 0);
    t->dn.len = dn.len;
    t->flags = br_x509_decoder_isCA(&dc) ? BR_X509_TA_CA : 0;
    t->pkey.key_type = pk->key_type;
    if (pk->key_type == BR_KEYTYPE_RSA) {
        t->pkey.key.rsa.n = dup_bytes(pk->key.rsa.n, pk->key.rsa.nlen);
        t->pkey.key.rsa.nlen = pk->key.rsa.nlen;
        t->pkey.key.rsa.e = dup_bytes(pk->key.rsa.e, pk->key.rsa.elen);
        t->pkey.key.rsa.elen = pk->key.rsa.elen;
    } else {
        t->pkey.key.ec.curve = pk->key.ec.curve;
        t->pkey.key.ec.q = dup_bytes(pk->key.ec.q, pk->key.ec.qlen);
        t->pkey.key.ec.qlen = pk->key.ec.qlen;
    }
    return 0;
}

static int read_file(const char *path, growbuf *out)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    unsigned char buf[16384];
    for (;;) {
        ssize_t n = read(fd, buf, sizeof(buf));
        if (n < 0) {
            if (errno == EINTR)
                continue;
            int e = -errno;
            close(fd);
            return e;
        }
        if (n == 0)
            break;
        grow_append(out, buf, (size_t)n);
    }
    close(fd);
    grow_append(out, "\n", 1); /* the PEM decoder wants a newline after the last line */
    return 0;
}

int tls_pem_each(const char *path, tls_pem_fn fn, void *ctx)
{
    growbuf file = {0};
    int r = read_file(path, &file);
    if (r < 0) {
        free(file.p);
        return r;
    }
    br_pem_decoder_context pc;
    br_pem_decoder_init(&pc);
    growbuf der = {0};
    char name[128] = "";
    int in_obj = 0, err = 0;
    const unsigned char *p = file.p;
    size_t left = file.len;
    while (left > 0 && err == 0) {
        size_t used = br_pem_decoder_push(&pc, p, left);
        p += used;
        left -= used;
        switch (br_pem_decoder_event(&pc)) {
        case BR_PEM_BEGIN_OBJ:
            snprintf(name, sizeof(name), "%s", br_pem_decoder_name(&pc));
            der.len = 0;
            in_obj = 1;
            br_pem_decoder_setdest(&pc, grow_append, &der);
            break;
        case BR_PEM_END_OBJ:
            if (in_obj)
                err = fn(ctx, name, der.p, der.len);
            in_obj = 0;
            break;
        case BR_PEM_ERROR:
            err = -EINVAL;
            break;
        default:
            break;
        }
    }
    /* What the buffers held may be a private key: wiped before they are freed. */
    if (der.p != NULL)
        explicit_bzero(der.p, der.cap);
    free(der.p);
    if (file.p != NULL)
        explicit_bzero(file.p, file.cap);
    free(file.p);
    return err;
}

typedef struct anchors_ctx {
    tls_anchors *a;
    size_t cap;
} anchors_ctx;

static int anchor_object(void *ctx, const char *name, const unsigned char *der, size_t len)
{
    anchors_ctx *x = ctx;
    if (strcmp(name, "CERTIFICATE") == 0 || strcmp(name, "X509 CERTIFICATE") == 0)
        add_anchor(x->a, &x->cap, der, len); /* undecodable ones are skipped */
    return 0;
}

int tls_anchors_load(tls_anchors *a, const char *path, char *err, size_t errlen)
{
    memset(a, 0, sizeof(*a));
    anchors_ctx x = {a, 0};
    int r = tls_pem_each(path, anchor_object, &x);
    if (r < 0 && r != -EINVAL) {
        snprintf(err, errlen, "cannot read the CA bundle %s (%s)", path, strerror(-r));
        tls_anchors_free(a);
        return r;
    }
    if (a->n == 0) {
        snprintf(err, errlen, "the CA bundle %s holds no certificate reeld can use", path);
        tls_anchors_free(a);
        return -EINVAL;
    }
    return 0;
}

void tls_anchors_free(tls_anchors *a)
{
    if (a == NULL)
        return;
    for (size_t i = 0; i < a->n; i++) {
        br_x509_trust_anchor *t = &a->ta[i];
        free(t->dn.data);
        if (t->pkey.key_type == BR_KEYTYPE_RSA) {
            free(t->pkey.key.rsa.n);
            free(t->pkey.key.rsa.e);
        } else {
            free(t->pkey.key.ec.q);
        }
    }
    free(a->ta);
    memset(a, 0, sizeof(*a));
}

int tls_client_start(tls_client *t, const tls_anchors *a, const char *server_name)
{
    br_ssl_client_init_full(&t->cc, &t->xc, a->ta, a->n);
    br_ssl_engine_set_buffer(&t->cc.eng, t->iobuf, sizeof(t->iobuf), 1);
    if (!br_ssl_client_reset(&t->cc, server_name, 0))
        return -EINVAL;
    return 0;
}

int tls_errno(int br_err)
{
    if (br_err == BR_ERR_OK)
        return 0;
    if (br_err >= BR_ERR_X509_OK && br_err < BR_ERR_X509_OK + 64)
        return -EKEYREJECTED;
    if (br_err == BR_ERR_IO)
        return -ECONNRESET;
    return -EPROTO;
}

const char *tls_strerror(int br_err)
{
    switch (br_err) {
    case BR_ERR_OK:
        return "no error";
    case BR_ERR_X509_NOT_TRUSTED:
        return "the server's certificate does not chain to a trusted CA";
    case BR_ERR_X509_BAD_SERVER_NAME:
        return "the server's certificate does not name the host connected to";
    case BR_ERR_X509_EXPIRED:
        return "the server's certificate has expired or is not valid yet";
    case BR_ERR_BAD_VERSION:
    case BR_ERR_BAD_CIPHER_SUITE:
        return "the server offers no TLS version or cipher suite reeld accepts";
    default:
        if (br_err >= BR_ERR_X509_OK && br_err < BR_ERR_X509_OK + 64)
            return "the server's certificate was refused";
        return br_err >= BR_ERR_RECV_FATAL_ALERT ? "the server ended TLS with an alert"
                                                 : "TLS failed";
    }
}
