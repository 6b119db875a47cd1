/* The message envelope: allocation and release. See msg.h. */
#include "src/rt/msg.h"

#include <assert.h>
#include <stdio.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "src/rt/alloc.h"
#include "src/rt/loop.h"

/* Payloads that reference memory of their own: freed with the message unless taken. */
static void hls_object_dispose(rd_msg *m)
{
    free(msg_body(m, hls_object)->data);
}

static void http_request_dispose(rd_msg *m)
{
    struct rd_msg_http_request *q = msg_body(m, http_request);
    if (!q->raw_inline)
        buf_unref(q->raw);
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

#if defined(__SANITIZE_ADDRESS__)
#define POOLED 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define POOLED 0
#endif
#endif
#ifndef POOLED
#define POOLED 1
#endif

#define POOL_CLASSES 6         /* 64 B, 128 B, ... 2 KiB */
#define POOL_KEEP    (1 << 20) /* bytes kept free per class and pool; more goes to free() */
#define POOL_CHAIN   32        /* freed messages sent home in one exchange */
#define POOL_MAX     255       /* pools (loop threads) in a process */

typedef struct pool_chain {
    rd_msg *first, *last;
    uint32_t n;
} pool_chain;

typedef struct msg_pool {
    _Atomic(rd_msg *) returned; /* freed on other threads: a stack, pushed in chains */
    char pad[64 - sizeof(_Atomic(rd_msg *))];
    rd_msg *free[POOL_CLASSES]; /* this thread's own, ready to reuse */
    uint32_t nfree[POOL_CLASSES];
    pool_chain out[POOL_MAX]; /* freed here, going home: by home id - 1 */
    uint8_t owed[POOL_MAX];   /* which out[] hold messages */
    int nowed;
    uint16_t id;
} msg_pool;

/* Never freed: a message may come home after its loop has stopped, and what they hold stays
 * reachable (no leak is reported at exit). */
static msg_pool *pools[POOL_MAX];
static _Atomic int npools;
static __thread msg_pool *here;

static size_t class_size(int c)
{
    return (size_t)64 << c;
}

static int class_of(size_t n)
{
    for (int c = 0; c < POOL_CLASSES; c++)
        if (n <= class_size(c))
            return c;
    return -1;
}

static rd_msg *next_of(rd_msg *m)
{
    return (rd_msg *)(void *)atomic_load_explicit(&m->node.next, memory_order_relaxed);
}

static void set_next(rd_msg *m, rd_msg *next)
{
    atomic_store_explicit(&m->node.next, next ? &next->node : NULL, memory_order_relaxed);
}

/* This thread's pool, made on its first message (NULL once POOL_MAX threads have one: then
 * malloc's). */
static msg_pool *pool_here(void)
{
    if (here != NULL || !POOLED)
        return here;
    int id = atomic_fetch_add_explicit(&npools, 1, memory_order_relaxed);
    if (id >= POOL_MAX)
        return NULL;
    msg_pool *p = calloc(1, sizeof(*p));
    if (p == NULL)
        return NULL;
    p->id = (uint16_t)(id + 1);
    pools[id] = p;
    here = p;
    return p;
}

/* Onto this pool's own list, or to free() past POOL_KEEP. */
static void keep(msg_pool *p, rd_msg *m)
{
    int c = m->cls;
    if ((size_t)p->nfree[c] * class_size(c) >= POOL_KEEP) {
        free(m);
        return;
    }
    set_next(m, p->free[c]);
    p->free[c] = m;
    p->nfree[c]++;
}

/* Takes back what other threads returned. */
static void drain(msg_pool *p)
{
    rd_msg *m = atomic_exchange_explicit(&p->returned, NULL, memory_order_acquire);
    while (m != NULL) {
        rd_msg *next = next_of(m);
        keep(p, m);
        m = next;
    }
}

/* Pushes the chain first..last onto pool `to`'s returned stack. */
static void send_home(msg_pool *to, rd_msg *first, rd_msg *last)
{
    rd_msg *old = atomic_load_explicit(&to->returned, memory_order_relaxed);
    do
        set_next(last, old);
    while (!atomic_compare_exchange_weak_explicit(&to->returned, &old, first, memory_order_release,
                                                  memory_order_relaxed));
}

static void flush_chain(msg_pool *p, int h)
{
    pool_chain *o = &p->out[h];
    if (o->n > 0)
        send_home(pools[h], o->first, o->last);
    o->first = o->last = NULL;
    o->n = 0;
}

void msg_pool_flush(void)
{
    msg_pool *p = here;
    if (p == NULL || p->nowed == 0)
        return;
    for (int i = 0; i < p->nowed; i++)
        flush_chain(p, p->owed[i]);
    p->nowed = 0;
}

rd_msg *msg_new(rd_msg_type type)
{
    return msg_new_sized(type, msg_payload_size(type));
}

/* A block of class `c` from this thread's pool (NULL: none here), else malloc's; the first
 * `zero` bytes zeroed. */
static rd_msg *msg_alloc(rd_msg_type type, size_t n, size_t zero)
{
    int c = class_of(n);
    msg_pool *p = c >= 0 ? pool_here() : NULL;
    rd_msg *m = NULL;
    if (p != NULL) {
        if (p->free[c] == NULL)
            drain(p);
        m = p->free[c];
        if (m != NULL) {
            p->free[c] = next_of(m);
            p->nfree[c]--;
        } else {
            m = rd_malloc(class_size(c), "a message");
        }
        memset(m, 0, zero);
    } else {
        m = rd_malloc(n, "a message");
        memset(m, 0, zero);
    }
    m->type = (uint16_t)type;
    if (p != NULL) {
        m->home = p->id;
        m->cls = (uint8_t)c;
    }
    return m;
}

rd_msg *msg_new_sized(rd_msg_type type, size_t payload)
{
    assert(type >= MSG_COUNT || payload <= msg_payload_size(type));
    size_t n = sizeof(rd_msg) + payload;
    return msg_alloc(type, n, n);
}

rd_msg *msg_new_tail(rd_msg_type type, size_t tail, void **tail_out)
{
    size_t head = (sizeof(rd_msg) + msg_payload_size(type) + 15) & ~(size_t)15;
    rd_msg *m = msg_alloc(type, head + tail, head);
    *tail_out = (char *)m + head;
    return m;
}

rd_msg *msg_new_head(rd_msg_type type, size_t zero)
{
    assert(type < MSG_COUNT && zero <= msg_payload_size(type));
    return msg_alloc(type, sizeof(rd_msg) + msg_payload_size(type), sizeof(rd_msg) + zero);
}

void msg_free(rd_msg *m)
{
    if (m == NULL)
        return;
    if (m->type < MSG_COUNT && dispose[m->type] != NULL)
        dispose[m->type](m);
    if (m->home == 0) {
        free(m);
        return;
    }
    msg_pool *p = here;
    if (p != NULL && p->id == m->home) {
        keep(p, m);
        return;
    }
    int h = m->home - 1;
    if (p == NULL || loop_current() == NULL) {
        send_home(pools[h], m, m); /* a thread without a batch end to flush at */
        return;
    }
    pool_chain *o = &p->out[h];
    set_next(m, NULL);
    if (o->n == 0) {
        o->first = m;
        p->owed[p->nowed++] = (uint8_t)h;
    } else {
        set_next(o->last, m);
    }
    o->last = m;
    if (++o->n == POOL_CHAIN) {
        flush_chain(p, h);
        for (int i = 0; i < p->nowed; i++)
            if (p->owed[i] == h) {
                p->owed[i] = p->owed[--p->nowed];
                break;
            }
    }
}
