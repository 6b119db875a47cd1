/* TLS for reeld's outgoing connections, over BearSSL: the trust anchors (the system CA bundle,
 * parsed once at start) and a client context whose engine the connection pumps.
 *
 * owns:  tls_anchors owns the anchors it parsed (names and keys, on the heap) until
 *        tls_anchors_free. A tls_client holds the BearSSL client and X.509 contexts and the
 *        record buffer (about 33 KiB); the caller allocates it and keeps it as long as the
 *        connection; it borrows the anchors, which must outlive it.
 * never: does I/O (src/net/conn.c moves the records), allocates after tls_anchors_load, logs
 *        key material.
 *
 * Certificates are checked by BearSSL's "minimal" X.509 engine: chain to an anchor, names,
 * validity dates against the current time, key usage. The server name goes out as SNI and is
 * matched against the certificate. */
#ifndef REELD_NET_TLS_H
#define REELD_NET_TLS_H

#include <stddef.h>

#include <bearssl.h>

#define TLS_SYSTEM_CA_FILE "/etc/ssl/certs/ca-certificates.crt"

typedef struct tls_anchors {
    br_x509_trust_anchor *ta; /* n anchors; names and keys point into `blob` allocations */
    size_t n;
} tls_anchors;

/* Parses every CERTIFICATE in the PEM file at `path` into anchors. Blocking file I/O: call at
 * start, never on a loop thread. Returns 0, -ENOENT/-EACCES as open(2), or -EINVAL when the
 * file holds no usable certificate (one sentence then in `err`). Certificates BearSSL cannot
 * decode (unsupported key types) are skipped. */
int tls_anchors_load(tls_anchors *a, const char *path, char *err, size_t errlen);

/* Calls fn(ctx, name, der, len) for each object of the PEM file at `path` ("CERTIFICATE",
 * "PRIVATE KEY", ...), in order; `der` is valid during the call only. Blocking file I/O: at
 * start or reload, never on a loop thread. Returns 0, -errno as open(2)/read(2), -EINVAL when
 * the file is not PEM past some point (objects before it were given), or what fn returned when
 * it returned non-zero (which stops the walk). Buffers that held the file are wiped. */
typedef int (*tls_pem_fn)(void *ctx, const char *name, const unsigned char *der, size_t len);
int tls_pem_each(const char *path, tls_pem_fn fn, void *ctx);

/* Frees what tls_anchors_load allocated and zeroes `a`. NULL is a no-op. */
void tls_anchors_free(tls_anchors *a);

typedef struct tls_client {
    br_ssl_client_context cc;
    br_x509_minimal_context xc;
    unsigned char iobuf[BR_SSL_BUFSIZE_BIDI];
} tls_client;

/* Prepares `t` for a new handshake with `server_name` (SNI and the name checked in the
 * certificate), trusting `a`. Returns 0 or -EINVAL (BearSSL refused the reset). */
int tls_client_start(tls_client *t, const tls_anchors *a, const char *server_name);

/* The engine to pump: br_ssl_engine_current_state(), sendrec/recvrec, sendapp/recvapp. */
static inline br_ssl_engine_context *tls_engine(tls_client *t)
{
    return &t->cc.eng;
}

/* A BearSSL error code (br_ssl_engine_last_error) as a negative errno: certificate problems
 * are -EKEYREJECTED, anything else in the protocol -EPROTO, 0 stays 0. */
int tls_errno(int br_err);

/* One sentence for a BearSSL error code ("the server's certificate is not trusted", ...). */
const char *tls_strerror(int br_err);

#endif
