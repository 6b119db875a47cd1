/* Sizes and names of the catalogue's messages, generated from RD_MESSAGES. */
#include "proto/msg.h"

#include <stdio.h>
#include <stdlib.h>

static const size_t payload_size[MSG_COUNT] = {
#define RD_MSG_SIZE(name, tag) [MSG_##name] = sizeof(struct rd_msg_##tag),
    RD_MESSAGES(RD_MSG_SIZE)
#undef RD_MSG_SIZE
};

static const char *const names[MSG_COUNT] = {[MSG_NONE] = "none",
#define RD_MSG_NAME(name, tag) [MSG_##name] = #name,
                                             RD_MESSAGES(RD_MSG_NAME)
#undef RD_MSG_NAME
};

rd_msg *msg_new(rd_msg_type type)
{
    size_t n = sizeof(rd_msg) + (type < MSG_COUNT ? payload_size[type] : 0);
    rd_msg *m = calloc(1, n);
    if (m == NULL) {
        fputs("reeld: out of memory allocating a message\n", stderr);
        abort();
    }
    m->type = (uint16_t)type;
    return m;
}

void msg_free(rd_msg *m)
{
    if (m == NULL)
        return;
    switch (m->type) {
    case MSG_HTTP_REQUEST:
        buf_unref(msg_body(m, http_request)->raw);
        break;
    case MSG_HTTP_RESPONSE:
        buf_unref(msg_body(m, http_response)->body);
        break;
    case MSG_HTTP_PART:
        buf_unref(msg_body(m, http_part)->body);
        break;
    default:
        break;
    }
    free(m);
}

const char *msg_name(rd_msg_type type)
{
    return type < MSG_COUNT ? names[type] : "unknown";
}

size_t msg_payload_size(rd_msg_type type)
{
    return type < MSG_COUNT ? payload_size[type] : 0;
}
