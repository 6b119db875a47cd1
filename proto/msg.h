/* The message catalogue: every message that crosses an actor boundary, in one list.
 *
 * A message is a header (rd_msg) followed by one payload struct named in RD_MESSAGES. Payloads
 * are plain data: numbers, fixed arrays, and rd_buf references for anything big (a reference is
 * moved with the message, never copied). Add a message by adding its payload struct and one
 * line to RD_MESSAGES; msg_new() then knows its size and name. */
#ifndef REELD_PROTO_MSG_H
#define REELD_PROTO_MSG_H

#include <stddef.h>
#include <stdint.h>

#include "proto/jobs.h"
#include "src/rt/mpsc.h"

struct rd_actor;

/* Runtime messages. */
struct rd_msg_ping {
    uint64_t seq;      /* sender's sequence number */
    uint64_t sent_ns;  /* monotonic clock at send, for latency measurements */
    uint32_t producer; /* which producer sent it (tests check per-producer order) */
};
struct rd_msg_stop {
    uint32_t reason; /* 0: shutdown */
};

/* X(NAME, payload struct tag): MSG_NAME is the type, struct rd_msg_<tag> the payload. */
#define RD_MESSAGES(X)                                                                             \
    X(PING, ping)                                                                                  \
    X(PONG, ping)                                                                                  \
    X(STOP, stop)                                                                                  \
    X(STORE, store)                                                                                \
    X(JOB_PULL, job_pull)                                                                          \
    X(JOB_ASSIGN, job_assign)                                                                      \
    X(JOB_PROGRESS, job_progress)                                                                  \
    X(JOB_DONE, job_done)                                                                          \
    X(JOB_CANCEL, job_cancel)

typedef enum rd_msg_type {
    MSG_NONE = 0,
#define RD_MSG_ENUM(name, tag) MSG_##name,
    RD_MESSAGES(RD_MSG_ENUM)
#undef RD_MSG_ENUM
        MSG_COUNT
} rd_msg_type;

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
    _Alignas(16) unsigned char body[]; /* the payload struct */
} rd_msg;

/* A new zeroed message of `type`; aborts on out-of-memory (runtime rule). Free with msg_free
 * unless it is sent: after a successful send it belongs to the receiver. */
rd_msg *msg_new(rd_msg_type type);
void msg_free(rd_msg *m);
const char *msg_name(rd_msg_type type);
size_t msg_payload_size(rd_msg_type type);

/* Typed access to the payload: msg_body(m, ping) is a struct rd_msg_ping *. */
#define msg_body(m, tag) ((struct rd_msg_##tag *)(void *)(m)->body)

#endif
