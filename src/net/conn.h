/* An outgoing TCP connection on a loop, plain or TLS, moved by io_uring: connect, send all of a
 * buffer, receive what arrives. One operation at a time; every result comes back through a
 * callback on the loop thread.
 *
 * owns:  its socket and, for TLS, its tls_client (record buffers included); the one socket
 *        operation in flight (an rd_op embedded in the conn).
 * never: blocks (socket(2) and setsockopt(2) aside, which do not wait); runs two operations at
 *        once; frees itself (conn_destroy is the owner's call, never while an operation runs).
 *
 * With TLS the BearSSL engine is pumped here: records the engine wants to send go out with
 * IORING_OP_SEND straight from its buffer, received bytes land with IORING_OP_RECV straight in
 * its record buffer; the handshake happens inside the first send or receive. All functions are
 * for the loop thread of the conn. */
#ifndef REELD_NET_CONN_H
#define REELD_NET_CONN_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "src/net/tls.h"
#include "src/rt/loop.h"

typedef struct conn conn;

/* res: connect/send: 0 or -errno. recv: bytes received (> 0, at conn_data), 0 when the peer
 * closed, or -errno. TLS failures are -EKEYREJECTED (certificate) or -EPROTO; the engine's
 * code is in conn_tls_error(). An operation cancelled by conn_cancel ends with -ECANCELED. */
typedef void (*conn_cb)(conn *c, int res, void *ctx);

/* Creates an unconnected conn on `loop` to `addr`. With `anchors` non-NULL it speaks TLS to
 * `server_name` (SNI and the certificate's name); with NULL, plain TCP. 0 or -errno. */
int conn_create(conn **out, rd_loop *loop, const struct sockaddr *addr, socklen_t addrlen,
                const tls_anchors *anchors, const char *server_name);
/* Closes the socket and frees the conn. No operation may be in flight. NULL is a no-op. */
void conn_destroy(conn *c);

/* Connects the socket (TCP only; TLS shakes hands on the first send or receive). */
void conn_connect(conn *c, conn_cb cb, void *ctx);
/* Sends all of buf[0..len) (borrowed until cb runs); cb gets 0 once everything is out. */
void conn_send(conn *c, const void *buf, size_t len, conn_cb cb, void *ctx);
/* Receives the next bytes; cb gets their count and conn_data() points at them, writable and
 * valid until the next operation on `c`. */
void conn_recv(conn *c, conn_cb cb, void *ctx);
uint8_t *conn_data(conn *c);

/* Cancels the operation in flight, if any (a timeout); its callback reports -ECANCELED unless
 * it completed first. The conn must not be reused afterwards. */
void conn_cancel(conn *c);

/* 1 while an operation is in flight. */
int conn_busy(const conn *c);
/* The BearSSL error that ended TLS, or 0. */
int conn_tls_error(conn *c);

#endif
