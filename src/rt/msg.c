/* The message envelope: allocation and release. See msg.h. */
#include "src/rt/msg.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

/* Payloads that reference memory of their own: freed with the message unless taken. */
static void hls_object_dispose(rd_msg *m)
{
    free(msg_body(m, hls_object)->data);
}

static void http_request_dispose(rd_msg *m)
{
    buf_unref(msg_body(m, http_request)->raw);
}

static void http_response_dispose(rd_msg *m)
{
    buf_unref(msg_body(m, http_response)->body);
}

static void http_body_dispose(rd_msg *m)
{
    buf_unref(msg_body(m, http_body)->data);
}

static void http_part_dispose(rd_msg *m)
{
    struct rd_msg_http_part *p = msg_body(m, http_part);
    buf_unref(p->body);
    if (p->file && p->fd >= 0)
        close(p->fd); /* not I/O: the descriptor the part owns */
}

static void cache_touch_dispose(rd_msg *m)
{
    buf_unref(msg_body(m, cache_touch)->keys);
}

static void (*const dispose[MSG_COUNT])(rd_msg *m) = {
    [MSG_CACHE_TOUCH] = cache_touch_dispose, /* keys of edge cache hits */
    [MSG_HLS_OBJECT] = hls_object_dispose,       [MSG_HTTP_REQUEST] = http_request_dispose,
    [MSG_HTTP_RESPONSE] = http_response_dispose, [MSG_HTTP_PART] = http_part_dispose,
    [MSG_HTTP_BODY] = http_body_dispose,
};

rd_msg *msg_new(rd_msg_type type)
{
    return msg_new_sized(type, msg_payload_size(type));
}

rd_msg *msg_new_sized(rd_msg_type type, size_t payload)
{
    assert(type >= MSG_COUNT || payload <= msg_payload_size(type));
    rd_msg *m = calloc(1, sizeof(rd_msg) + payload);
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
    if (m->type < MSG_COUNT && dispose[m->type] != NULL)
        dispose[m->type](m);
    free(m);
}
