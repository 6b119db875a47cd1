/* The message envelope: the header every message crossing an actor boundary carries, its
 * allocation and its release. The catalogue of types and payloads is proto/msg.h.
 *
 * owns:  each message from msg_new until it is sent (then the receiver's) or msg_free'd; a
 *        pool per loop thread of freed messages by size class.
 *
 * A message comes from its maker thread's pool and goes back to it when freed: on the same
 * thread straight onto a free list; on a loop into a chain for its home, pushed with one
 * exchange per 32 or at the end of the batch (as cross-loop sends leave in the outbox's
 * chains); on any other thread with one exchange. The home takes what came back when its own
 * list runs dry. So the actor path costs no malloc/free across threads, whose arena lock was
 * most of a message's cost. Messages larger than 2 KiB (a store batch) are malloc's, and so is
 * everything once 255 threads have a pool. Under AddressSanitizer there is no pool, so a
 * message used after its free is still caught.
 * never: copies a payload's references (rd_buf, a descriptor): msg_free releases what the
 *        payload still holds, so a dropped message leaks nothing. */
#ifndef REELD_RT_MSG_H
#define REELD_RT_MSG_H

#include <stddef.h>
#include <stdint.h>

#include "proto/msg.h"
#include "src/rt/buf.h"
#include "src/rt/mpsc.h"

enum {
    RD_MSG_REPLY = 1 << 0,  /* answers the request whose corr it carries */
    RD_MSG_SYSTEM = 1 << 1, /* runtime control (stop): bypasses the mailbox bound */
};

typedef struct rd_msg {
    rd_mpsc_node node;                 /* mailbox link, owned by the mailbox while queued */
    uint16_t type;                     /* rd_msg_type */
    uint16_t flags;                    /* RD_MSG_* */
    uint32_t corr;                     /* request/reply correlation id; 0 for a plain send */
    struct rd_actor *from;             /* where a reply goes; NULL when none is wanted */
    uint16_t home;                     /* the pool it returns to (1-based); 0: malloc's */
    uint8_t cls;                       /* its size class in that pool */
    _Alignas(16) unsigned char body[]; /* the payload struct */
} rd_msg;

/* A new zeroed message of `type`; aborts on out-of-memory (runtime rule). Free with msg_free
 * unless it is sent: after a successful send it belongs to the receiver. msg_free also drops
 * what the payload still holds (rd_buf references, an HLS_OBJECT's bytes, a file part's
 * descriptor), so a dropped message leaks nothing. */
rd_msg *msg_new(rd_msg_type type);
/* A message of `type` whose payload is only its first `payload` bytes (at most the type's
 * size): for a type whose tail is an array the sender knows the receiver will not touch. */
rd_msg *msg_new_sized(rd_msg_type type, size_t payload);
/* A message of `type` with `tail` more bytes after its (zeroed) payload, 16-byte aligned and
 * not zeroed, at *tail_out: for a payload that points into its own message (a request's bytes
 * travel with it, one allocation from the pool instead of two). The tail is freed with the
 * message. */
rd_msg *msg_new_tail(rd_msg_type type, size_t tail, void **tail_out);
/* A message of `type` whose payload's first `zero` bytes are zeroed and the rest left as the
 * pool gave it: for a type whose last fields are arrays the sender fills (a response's header
 * lines and short body: 1.3 KB a response, zeroed and so pulled into the cache for nothing). */
rd_msg *msg_new_head(rd_msg_type type, size_t zero);
void msg_free(rd_msg *m);

/* Loops only, after each batch (loop.c): sends the messages this loop freed for other loops'
 * pools home, each pool's in one chain. */
void msg_pool_flush(void);

/* Typed access to the payload: msg_body(m, ping) is a struct rd_msg_ping *. */
#define msg_body(m, tag) ((struct rd_msg_##tag *)(void *)(m)->body)

#endif
