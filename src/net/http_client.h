/* One HTTP/1.1 request and its response over a conn: the head and body go out (the body from
 * memory or read from a file through the loop), the response head is parsed, and the body is
 * handed to the caller piece by piece as it arrives, whatever its framing.
 *
 * owns:  while running, the exchange's receive state and, for a file body, a 64 KiB read
 *        buffer; the request head and body are borrowed until `done`.
 * never: owns the conn (the caller pools it: `reusable` says whether it may carry another
 *        request); copies body bytes except out of a file; retries (that is the caller's policy).
 *
 * For the loop thread of the conn. The caller allocates the exchange (it is about 20 KiB) and
 * keeps it until `done` has run. */
#ifndef REELD_NET_HTTP_CLIENT_H
#define REELD_NET_HTTP_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include "proto/http1.h"
#include "proto/http1_response.h"
#include "src/net/conn.h"

#define HTTPC_HEAD_MAX   16384 /* bytes of a response head the client accepts */
#define HTTPC_FILE_CHUNK 65536 /* bytes read from a body file per send */

typedef struct httpc_exchange httpc_exchange;
struct httpc_exchange {
    /* The request: set by the caller. */
    const char *head; /* request line and headers, ending with the blank line */
    size_t head_len;
    const uint8_t *body; /* body from memory (body_len bytes), unless from_file */
    size_t body_len;
    int from_file; /* 1: the body is file_len bytes of body_fd from file_off */
    int body_fd;
    int64_t file_off;
    uint64_t file_len;
    int head_request; /* the method is HEAD: no body follows the response head */
    /* Callbacks on the loop thread. on_head and on_body return 0 to go on or -errno to end the
     * exchange with that error; `done` runs exactly once, with 0 when a whole response arrived
     * or -errno. `resp` stays valid until then. */
    int (*on_head)(httpc_exchange *x, const http1_response *resp);
    int (*on_body)(httpc_exchange *x, uint8_t *data, size_t len);
    void (*done)(httpc_exchange *x, int res);

    /* Results, read in `done`. */
    int reusable;     /* the conn may carry another request */
    int got_response; /* some response bytes arrived (a reset before them is safe to retry) */
    http1_response resp;

    /* Private. */
    conn *c;
    rd_op read_op;
    int phase;
    int cancel_err;
    http1_body kind;
    uint64_t body_left;
    http1_chunked chunked;
    uint64_t file_sent;
    uint8_t *filebuf;
    size_t headlen;
    uint8_t *pend; /* received bytes not yet used (head buffer full) */
    size_t pend_len;
    http1_header headers[HTTP1_MAX_HEADERS];
    char headbuf[HTTPC_HEAD_MAX];
};

/* Runs the exchange on `c`, which must be connected and idle. */
void httpc_start(httpc_exchange *x, conn *c);

/* Ends a running exchange early with `err` (a timeout: -ETIMEDOUT): the operation in flight is
 * cancelled and `done` follows with `err`. The conn is not reusable afterwards. */
void httpc_cancel(httpc_exchange *x, int err);

#endif
