/* libFuzzer target for the listener's TLS record path (src/net/tls_server.c over BearSSL's
 * server engine): the input is what a client sends, cut into pieces as recv would hand them
 * (each piece's length is its first byte), pushed into a fresh engine the way the listener's
 * pump does: ciphertext in as far as the engine takes it, plaintext out, records "sent" (taken
 * from the engine whole), a response written once application data may flow.
 *
 * Checks: nothing reads or writes out of bounds (ASan); the engine never asks for more room
 * than its buffer; a closed engine stays closed; an engine that gives application data has
 * finished its handshake. The credentials are a throwaway self-signed P-256 pair, below. */
#include <assert.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "src/net/tls.c"
#include "src/net/tls_server.c"
#include "src/rt/alloc.c"

static const char CERT_PEM[] = "-----BEGIN CERTIFICATE-----\n"
                               "MIIBdjCCARugAwIBAgIUMNLjNVeEJ3exdBgbY92jfCd7yzEwCgYIKoZIzj0EAwIw\n"
                               "DzENMAsGA1UEAwwEZnV6ejAgFw0yNjEyMDMwNzExMjlaGA8yMTI2MTEwOTA3MTEy\n"
                               "OVowDzENMAsGA1UEAwwEZnV6ejBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABGFE\n"
                               "aNc2dgWTUhFSbNwZ+sBRSKh2rXZyLiuowW2cY1Fh/isv4+dApM4r5eL2ma93MagX\n"
                               "UBtdrC6xHjRg81mZ5BCjUzBRMB0GA1UdDgQWBBR1wMKg9wJ3WJnNj8Gm4Xoxp8iY\n"
                               "0TAfBgNVHSMEGDAWgBR1wMKg9wJ3WJnNj8Gm4Xoxp8iY0TAPBgNVHRMBAf8EBTAD\n"
                               "AQH/MAoGCCqGSM49BAMCA0kAMEYCIQCRWVQ4cu7ug83PsKUDate1NODYiCB81Ssf\n"
                               "/nvJeDN2QAIhAOyRunhzJhgj5OD3aq8zZUw+dZ54O/LZHiLcp+4h9eKT\n"
                               "-----END CERTIFICATE-----\n";

static const char KEY_PEM[] = "-----BEGIN PRIVATE KEY-----\n"
                              "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgjXQ/8agimDYGiURy\n"
                              "+TwH59bQpktviQ7Te/4ftkPA2GehRANCAARhRGjXNnYFk1IRUmzcGfrAUUiodq12\n"
                              "ci4rqMFtnGNRYf4rL+PnQKTOK+Xi9pmvdzGoF1AbXawusR40YPNZmeQQ\n"
                              "-----END PRIVATE KEY-----\n";

static tls_server *server;

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert(f != NULL);
    fputs(text, f);
    fclose(f);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    char cert[64], key[64], err[256];
    snprintf(cert, sizeof(cert), "/tmp/reeld-fuzz-tls-%d.crt", (int)getpid());
    snprintf(key, sizeof(key), "/tmp/reeld-fuzz-tls-%d.key", (int)getpid());
    write_file(cert, CERT_PEM);
    write_file(key, KEY_PEM);
    int r = tls_server_create(&server, cert, key, err, sizeof(err));
    unlink(cert);
    unlink(key);
    if (r < 0) {
        fprintf(stderr, "fuzz_tls_server: %s\n", err);
        abort();
    }
    return 0;
}

static tls_conn conn;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char response[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
    if (tls_conn_start(&conn, server) < 0)
        abort();
    br_ssl_engine_context *eng = tls_conn_engine(&conn);
    size_t off = 0, written = 0;
    int closed = 0;
    while (off < size) {
        size_t n = data[off++] + 1u;
        if (n > size - off)
            n = size - off;
        size_t pos = 0;
        for (int guard = 0; guard < 64; guard++) {
            pos += tls_conn_push(&conn, data + off + pos, n - pos);
            unsigned st = br_ssl_engine_current_state(eng);
            assert(!closed || (st & BR_SSL_CLOSED));
            if (st & BR_SSL_CLOSED) {
                closed = 1;
                break;
            }
            int moved = 0;
            if (st & BR_SSL_SENDREC) {
                size_t len;
                br_ssl_engine_sendrec_buf(eng, &len);
                assert(len > 0 && len <= sizeof(conn.iobuf));
                br_ssl_engine_sendrec_ack(eng, len);
                moved = 1;
            }
            if (st & BR_SSL_RECVAPP) {
                assert(tls_conn_ready(&conn));
                size_t len;
                br_ssl_engine_recvapp_buf(eng, &len);
                br_ssl_engine_recvapp_ack(eng, len);
                moved = 1;
            }
            if ((st & BR_SSL_SENDAPP) && written < sizeof(response) - 1) {
                written +=
                    tls_conn_write(&conn, response + written, sizeof(response) - 1 - written, 1);
                moved = 1;
            }
            if (!moved && pos == n)
                break;
        }
        off += n;
        if (closed)
            break;
    }
    tls_conn_end(&conn);
    return 0;
}
