/* Sizes and names of the catalogue's messages, generated from RD_MESSAGES. */
#include "proto/msg.h"

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

const char *msg_name(rd_msg_type type)
{
    return type < MSG_COUNT ? names[type] : "unknown";
}

size_t msg_payload_size(rd_msg_type type)
{
    return type < MSG_COUNT ? payload_size[type] : 0;
}
