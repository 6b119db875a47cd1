/* TLS for reeld's listener, over BearSSL's server engine: the certificate and key (reloadable),
 * the session cache every loop shares, and one engine per connection that the listener pumps
 * with io_uring (actors/http_listener.c moves the records; this file never touches a socket).
 *
 * owns:  tls_server owns the current credentials (the chain and the key, refcounted: a
 *        connection keeps the ones it started with until it ends, so a reload never pulls them
 *        from under a handshake), the shared session cache (an LRU behind a mutex, so a client
 *        that resumes on another loop's socket still resumes), and the paths it reloads from.
 *        A tls_conn owns one engine and its record buffer (about 34 KiB) while it is started.
 * never: does network I/O, blocks a loop (file reads happen in tls_server_create and
 *        tls_server_reload, called from the main thread), logs or keeps key material outside
 *        the credentials (PEM buffers are wiped).
 *
 * Policy: TLS 1.2 only (BearSSL has no 1.3), ECDHE key exchange with AEAD suites only
 * (AES-GCM, then ChaCha20-Poly1305), the server's order enforced; ALPN "http/1.1" (a client
 * that offers only h2 still connects, with no protocol chosen); one certificate, sent whatever
 * SNI says (clients that connect by IP address send none). RSA and EC (P-256/P-384/P-521) keys
 * in PKCS#1, SEC 1 or PKCS#8 PEM. */
#ifndef REELD_NET_TLS_SERVER_H
#define REELD_NET_TLS_SERVER_H

#include <stddef.h>
#include <stdint.h>

#include <bearssl.h>

typedef struct tls_server tls_server;
typedef struct tls_creds tls_creds;

/* Reads the PEM certificate chain (leaf first) at `cert` and the private key at `key`, checks
 * that they match, and makes the shared state. Returns 0, or -errno with one sentence in
 * `err` (the file that could not be read, no certificate, no or an unsupported key, a key
 * that is not the certificate's). */
int tls_server_create(tls_server **out, const char *cert, const char *key, char *err,
                      size_t errlen);

/* Reads the same two paths again; on success new connections use the new credentials and the
 * old ones are freed when their last connection ends. On failure nothing changes. Same
 * returns as tls_server_create. */
int tls_server_reload(tls_server *s, char *err, size_t errlen);

/* The leaf certificate's notAfter (seconds since the epoch) of the current credentials. */
int64_t tls_server_not_after(tls_server *s);

/* Frees the server once no tls_conn uses it. NULL is a no-op. */
void tls_server_free(tls_server *s);

typedef struct tls_conn {
    br_ssl_server_context sc;
    tls_creds *creds; /* held while started */
    unsigned char iobuf[BR_SSL_BUFSIZE_BIDI];
} tls_conn;

/* Prepares `t` for a new handshake with the current credentials. 0, or -EINVAL (BearSSL
 * refused the reset). */
int tls_conn_start(tls_conn *t, tls_server *s);

/* Lets go of the credentials. Safe on a conn never started or already ended. */
void tls_conn_end(tls_conn *t);

static inline br_ssl_engine_context *tls_conn_engine(tls_conn *t)
{
    return &t->sc.eng;
}

/* Copies ciphertext into the engine as far as it takes it, and none while it has a record to
 * send (the caller sends that first, then pushes the rest); returns the bytes taken. */
size_t tls_conn_push(tls_conn *t, const void *p, size_t n);

/* Copies plaintext into the engine as far as it takes it and, when `flush`, closes the
 * record so it can leave now; returns the bytes taken. */
size_t tls_conn_write(tls_conn *t, const void *p, size_t n, int flush);

/* 1 once the handshake has completed (application data may flow). */
int tls_conn_ready(tls_conn *t);

/* One sentence for why the engine closed (BearSSL's last error), for logs. */
const char *tls_conn_strerror(int br_err);

#endif
