/* Redis Streams through hiredis's asynchronous API on an io_uring loop. See redis.h.
 *
 * hiredis says through four hooks when it wants to read or write; each connection keeps one
 * one-shot poll per direction on its socket and calls redisAsyncHandleRead/Write when the poll
 * fires. hiredis frees its context on a disconnect; our per-connection struct outlives it until
 * its polls have ended (a cancel is submitted), so a late completion never touches freed
 * memory, and a reconnect always gets a fresh struct. */
#include "src/queue/redis.h"

#include <errno.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "src/rt/alloc.h"
#include "src/rt/log.h"

#define GROUP         "workers"
#define STREAM_PREFIX "reeld:jobs:"
#define MAX_KINDS     8
#define BACKOFF_MIN   100
#define BACKOFF_MAX   2000

typedef struct rconn rconn;

struct rd_redisq {
    rd_loop *loop;
    rd_redis_addr addr;
    char consumer[RD_LEASE_OWNER_MAX];
    rd_redisq_events ev;
    rconn *cmd;     /* commands: XADD, XACK, XGROUP, XAUTOCLAIM, stats */
    rconn *rdc;     /* blocking reads */
    int reading;    /* a read (or the group creation before it) is in flight */
    int reclaiming; /* an XAUTOCLAIM (on the command connection) is in flight */
    char kinds[MAX_KINDS][RD_JOB_KIND_MAX];
    int ensured[MAX_KINDS]; /* the group is known to exist on this connection */
    int nkinds;
    rd_timer retry;
    uint32_t backoff_ms;
    int64_t length, pending;
};

struct rconn {
    rd_op rd, wr;          /* one poll each */
    redisAsyncContext *ac; /* NULL once hiredis has freed it */
    rd_redisq *q;          /* NULL once dropped: the last poll completion frees this */
    int fd;
    int rpoll, wpoll; /* polls in flight */
    int want_r, want_w;
    int up; /* connected */
};

static void conn_dead(rconn *c, const char *why);

/* ---- the event hooks ---- */

static void poll_rd_done(rd_op *op, int res, uint32_t flags);
static void poll_wr_done(rd_op *op, int res, uint32_t flags);

static void maybe_free(rconn *c)
{
    if (c->q == NULL && c->ac == NULL && !c->rpoll && !c->wpoll)
        free(c);
}

static void arm_rd(rconn *c, rd_loop *loop)
{
    if (c->rpoll || c->ac == NULL)
        return;
    struct io_uring_sqe *sqe = loop_sqe(loop, &c->rd);
    io_uring_prep_poll_add(sqe, c->fd, POLLIN);
    c->rpoll = 1;
}

static void arm_wr(rconn *c, rd_loop *loop)
{
    if (c->wpoll || c->ac == NULL)
        return;
    struct io_uring_sqe *sqe = loop_sqe(loop, &c->wr);
    io_uring_prep_poll_add(sqe, c->fd, POLLOUT);
    c->wpoll = 1;
}

static void ev_add_read(void *p)
{
    rconn *c = p;
    c->want_r = 1;
    if (c->q != NULL)
        arm_rd(c, c->q->loop);
}

static void ev_del_read(void *p)
{
    ((rconn *)p)->want_r = 0;
}

static void ev_add_write(void *p)
{
    rconn *c = p;
    c->want_w = 1;
    if (c->q != NULL)
        arm_wr(c, c->q->loop);
}

static void ev_del_write(void *p)
{
    ((rconn *)p)->want_w = 0;
}

/* hiredis is freeing the context: cancel our polls; the completions free the struct. */
static void ev_cleanup(void *p)
{
    rconn *c = p;
    c->ac = NULL;
    c->want_r = c->want_w = 0;
    rd_loop *loop = loop_current();
    if (loop == NULL)
        return;
    if (c->rpoll)
        io_uring_prep_poll_remove(loop_sqe(loop, NULL), (uint64_t)(uintptr_t)&c->rd);
    if (c->wpoll)
        io_uring_prep_poll_remove(loop_sqe(loop, NULL), (uint64_t)(uintptr_t)&c->wr);
}

static void poll_rd_done(rd_op *op, int res, uint32_t flags)
{
    (void)flags;
    rconn *c = (rconn *)(void *)((char *)op - offsetof(rconn, rd));
    c->rpoll = 0;
    if (c->ac == NULL || c->q == NULL || res == -ECANCELED) {
        maybe_free(c);
        return;
    }
    rd_loop *loop = c->q->loop;
    if (c->want_r)
        redisAsyncHandleRead(c->ac); /* may free the context (ev_cleanup) */
    if (c->ac != NULL && c->want_r)
        arm_rd(c, loop);
    maybe_free(c);
}

static void poll_wr_done(rd_op *op, int res, uint32_t flags)
{
    (void)flags;
    rconn *c = (rconn *)(void *)((char *)op - offsetof(rconn, wr));
    c->wpoll = 0;
    if (c->ac == NULL || c->q == NULL || res == -ECANCELED) {
        maybe_free(c);
        return;
    }
    rd_loop *loop = c->q->loop;
    if (c->want_w)
        redisAsyncHandleWrite(c->ac);
    if (c->ac != NULL && c->want_w)
        arm_wr(c, loop);
    maybe_free(c);
}

/* ---- connections ---- */

static void connect_all(rd_redisq *q);

static void retry_due(rd_timer *t)
{
    rd_redisq *q = (rd_redisq *)(void *)((char *)t - offsetof(rd_redisq, retry));
    connect_all(q);
}

static void schedule_retry(rd_redisq *q)
{
    if (loop_timer_armed(&q->retry))
        return;
    loop_timer_start(q->loop, &q->retry, (uint64_t)q->backoff_ms * 1000000ull, 0);
    q->backoff_ms = q->backoff_ms * 2 > BACKOFF_MAX ? BACKOFF_MAX : q->backoff_ms * 2;
}

static void on_connect(const redisAsyncContext *ac, int status)
{
    rconn *c = ac->data;
    if (c->q == NULL)
        return;
    if (status != REDIS_OK) {
        conn_dead(c, ac->errstr);
        return;
    }
    c->up = 1;
    c->q->backoff_ms = BACKOFF_MIN;
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
    rconn *c = ac->data;
    (void)status;
    if (c->q != NULL)
        conn_dead(c, ac->errstr[0] ? ac->errstr : "connection closed");
}

/* The connection is gone (or going): forget it, tell a waiting reader, reconnect later. */
static void conn_dead(rconn *c, const char *why)
{
    rd_redisq *q = c->q;
    if (q == NULL)
        return;
    /* Logged when a working connection breaks; failed reconnects only at debug level. */
    if (c->up)
        log_warn("queue_connection_lost", KV_STR("backend", "redis"),
                 KV_STR("conn", c == q->cmd ? "commands" : "reads"), KV_STR("detail", why),
                 KV_INT("retry_in_ms", q->backoff_ms));
    else
        log_debug("queue_connect_failed", KV_STR("backend", "redis"), KV_STR("detail", why),
                  KV_INT("retry_in_ms", q->backoff_ms));
    c->q = NULL;
    if (q->cmd == c) {
        q->cmd = NULL;
        for (int i = 0; i < q->nkinds; i++)
            q->ensured[i] = 0;
    }
    if (q->rdc == c)
        q->rdc = NULL;
    schedule_retry(q);
    if (q->cmd == NULL)
        q->reclaiming = 0; /* its callback only frees its context */
    if (q->reading) {
        q->reading = 0;
        q->ev.entries(q->ev.ctx, "", NULL, 0, -ENOTCONN);
    }
}

static rconn *conn_open(rd_redisq *q)
{
    redisAsyncContext *ac = redisAsyncConnect(q->addr.host, q->addr.port);
    if (ac == NULL)
        return NULL;
    if (ac->err) {
        log_warn("queue_connect_failed", KV_STR("backend", "redis"), KV_STR("detail", ac->errstr));
        redisAsyncFree(ac);
        return NULL;
    }
    rconn *c = rd_calloc(1, sizeof(*c), "a redis connection");
    c->q = q;
    c->ac = ac;
    c->fd = ac->c.fd;
    c->rd.done = poll_rd_done;
    c->wr.done = poll_wr_done;
    ac->data = c;
    ac->ev.data = c;
    ac->ev.addRead = ev_add_read;
    ac->ev.delRead = ev_del_read;
    ac->ev.addWrite = ev_add_write;
    ac->ev.delWrite = ev_del_write;
    ac->ev.cleanup = ev_cleanup;
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    if (q->addr.password[0])
        redisAsyncCommand(ac, NULL, NULL, "AUTH %s", q->addr.password);
    if (q->addr.db)
        redisAsyncCommand(ac, NULL, NULL, "SELECT %d", q->addr.db);
    return c;
}

static void ensure_group(rd_redisq *q, int k);

static void connect_all(rd_redisq *q)
{
    if (q->cmd == NULL) {
        q->cmd = conn_open(q);
        /* A new connection may face a new (empty) Redis: check every known group. */
        for (int i = 0; q->cmd != NULL && i < q->nkinds; i++)
            ensure_group(q, i);
        if (q->cmd != NULL && q->nkinds == 0)
            redisAsyncCommand(q->cmd->ac, NULL, NULL, "PING");
    }
    if (q->rdc == NULL)
        q->rdc = conn_open(q);
    if (q->cmd == NULL || q->rdc == NULL)
        schedule_retry(q);
}

/* ---- commands ---- */

static int kind_index(rd_redisq *q, const char *kind)
{
    for (int i = 0; i < q->nkinds; i++)
        if (strcmp(q->kinds[i], kind) == 0)
            return i;
    if (q->nkinds == MAX_KINDS)
        return -1;
    snprintf(q->kinds[q->nkinds], RD_JOB_KIND_MAX, "%s", kind);
    q->ensured[q->nkinds] = 0;
    return q->nkinds++;
}

/* Reads XREADGROUP / XAUTOCLAIM entries [id, [field, value, ...]] into `out`. An entry that
 * names no job (written by something else, or its fields trimmed away) is acknowledged here:
 * left pending, every reclaim would take it again, and the pending gauge would count it
 * forever. */
static int parse_entries(rd_redisq *q, const redisReply *arr, const char *kind,
                         rd_stream_entry *out, int cap)
{
    int n = 0;
    if (arr == NULL || arr->type != REDIS_REPLY_ARRAY)
        return 0;
    for (size_t i = 0; i < arr->elements && n < cap; i++) {
        const redisReply *e = arr->element[i];
        if (e->type != REDIS_REPLY_ARRAY || e->elements < 2 ||
            e->element[0]->type != REDIS_REPLY_STRING)
            continue;
        rd_stream_entry *s = &out[n];
        memset(s, 0, sizeof(*s));
        snprintf(s->id, sizeof(s->id), "%s", e->element[0]->str);
        snprintf(s->kind, sizeof(s->kind), "%s", kind);
        const redisReply *f = e->element[1];
        for (size_t k = 0; f->type == REDIS_REPLY_ARRAY && k + 1 < f->elements; k += 2)
            if (f->element[k]->type == REDIS_REPLY_STRING && !strcmp(f->element[k]->str, "job") &&
                f->element[k + 1]->type == REDIS_REPLY_STRING)
                s->job_id = strtoll(f->element[k + 1]->str, NULL, 10);
        if (s->job_id > 0) {
            n++;
            continue;
        }
        log_warn("queue_entry_unreadable", KV_STR("stream", kind), KV_STR("entry", s->id));
        redisq_ack(q, kind, s->id);
    }
    return n;
}

typedef struct read_ctx {
    rd_redisq *q;
    int k;         /* the kind being ensured, or reclaimed */
    unsigned mask; /* a read: the kinds whose streams it reads (bit k: q->kinds[k]) */
    int count;
    int block_ms;
    int reclaim;
    int64_t min_idle_ms;
} read_ctx;

static void start_read(rd_redisq *q, read_ctx *rc);

static void group_created(redisAsyncContext *ac, void *r, void *priv)
{
    (void)ac;
    read_ctx *rc = priv;
    rd_redisq *q = rc->q;
    redisReply *reply = r;
    if (reply == NULL) {
        free(rc); /* the connection went: conn_dead has told a waiting reader */
        return;
    }
    {
        int created = reply->type == REDIS_REPLY_STATUS;
        if (created || (reply->type == REDIS_REPLY_ERROR && strstr(reply->str, "BUSYGROUP"))) {
            q->ensured[rc->k] = 1;
            if (created) {
                log_info("queue_group_created", KV_STR("stream", q->kinds[rc->k]));
                q->ev.reset(q->ev.ctx);
            }
        } else if (reply->type == REDIS_REPLY_ERROR) {
            log_warn("queue_group_failed", KV_STR("detail", reply->str));
        }
    }
    if (rc->count > 0) {
        if (q->ensured[rc->k] && q->rdc != NULL) {
            start_read(q, rc); /* which ensures the read's next kind, if one is not yet */
            return;
        }
        *(rc->reclaim ? &q->reclaiming : &q->reading) = 0;
        q->ev.entries(q->ev.ctx, q->kinds[rc->k], NULL, 0, -ENOTCONN);
    }
    free(rc);
}

/* XGROUP CREATE from `0`, so entries published before the group existed are read too; when the
 * context describes a read (count > 0), the read follows. */
static void ensure_group_ctx(rd_redisq *q, read_ctx *rc)
{
    redisAsyncCommand(q->cmd->ac, group_created, rc,
                      "XGROUP CREATE " STREAM_PREFIX "%s %s 0 MKSTREAM", q->kinds[rc->k], GROUP);
}

static void ensure_group(rd_redisq *q, int k)
{
    read_ctx *rc = rd_calloc(1, sizeof(*rc), "a redis request");
    rc->q = q;
    rc->k = k;
    ensure_group_ctx(q, rc);
}

static void read_done(redisAsyncContext *ac, void *r, void *priv)
{
    (void)ac;
    read_ctx *rc = priv;
    rd_redisq *q = rc->q;
    redisReply *reply = r;
    int k = rc->k;
    if (q == NULL || reply == NULL) {
        /* the connection went: conn_dead has told the owner */
        free(rc);
        return;
    }
    *(rc->reclaim ? &q->reclaiming : &q->reading) = 0;
    rd_stream_entry entries[RD_STORE_BATCH];
    int n = 0, err = 0;
    unsigned mask = rc->mask;
    int reclaim = rc->reclaim;
    free(rc);
    if (reply->type == REDIS_REPLY_ERROR) {
        if (strstr(reply->str, "NOGROUP")) {
            /* Redis lost a stream: the next read recreates the groups (BUSYGROUP if kept) */
            for (int i = 0; i < q->nkinds; i++)
                if (reclaim ? i == k : (mask >> i) & 1u)
                    q->ensured[i] = 0;
        } else {
            log_warn("queue_read_failed", KV_STR("detail", reply->str));
        }
        err = -EAGAIN;
    } else if (reclaim) {
        /* XAUTOCLAIM: [next-id, [entries...], ...] */
        if (reply->type == REDIS_REPLY_ARRAY && reply->elements >= 2)
            n = parse_entries(q, reply->element[1], q->kinds[k], entries, RD_STORE_BATCH);
    } else if (reply->type == REDIS_REPLY_ARRAY && reply->elements > 0) {
        /* XREADGROUP: [[stream, [entries...]], ...], one per stream that had entries: each
         * kind's entries go to the owner on their own. When none were readable the owner is
         * told as for an empty read (it reads again then). */
        int told = 0;
        for (size_t i = 0; i < reply->elements; i++) {
            const redisReply *st = reply->element[i];
            if (st->type != REDIS_REPLY_ARRAY || st->elements != 2 ||
                st->element[0]->type != REDIS_REPLY_STRING ||
                strncmp(st->element[0]->str, STREAM_PREFIX, sizeof(STREAM_PREFIX) - 1) != 0)
                continue;
            const char *kind = st->element[0]->str + sizeof(STREAM_PREFIX) - 1;
            int m = parse_entries(q, st->element[1], kind, entries, RD_STORE_BATCH);
            if (m > 0)
                q->ev.entries(q->ev.ctx, kind, entries, m, 0);
            told |= m > 0;
        }
        if (told)
            return;
    }
    if (!reclaim) /* a read that timed out empty, or failed: for the first of its kinds */
        for (k = 0; k < q->nkinds && !((mask >> k) & 1u); k++)
            ;
    q->ev.entries(q->ev.ctx, k < q->nkinds ? q->kinds[k] : "", entries, n, err);
}

static void start_read(rd_redisq *q, read_ctx *rc)
{
    int count = rc->count > RD_STORE_BATCH ? RD_STORE_BATCH : rc->count;
    if (rc->reclaim) {
        redisAsyncCommand(q->cmd->ac, read_done, rc,
                          "XAUTOCLAIM " STREAM_PREFIX "%s %s %s %lld 0-0 COUNT %d", q->kinds[rc->k],
                          GROUP, q->consumer, (long long)rc->min_idle_ms, count);
        return;
    }
    /* Every stream read needs its group: create the missing ones first, one at a time (each
     * answer comes back here). */
    for (int k = 0; k < q->nkinds; k++) {
        if (((rc->mask >> k) & 1u) && !q->ensured[k]) {
            rc->k = k;
            ensure_group_ctx(q, rc);
            return;
        }
    }
    /* XREADGROUP GROUP g c COUNT n BLOCK ms STREAMS s1 s2 ... > > ...: one blocking read of
     * every kind this node has room for, so a job of one kind never waits out a read that
     * blocks on another's stream. */
    const char *argv[9 + 2 * MAX_KINDS];
    size_t lens[9 + 2 * MAX_KINDS];
    char cnt[16], blk[16], names[MAX_KINDS][sizeof(STREAM_PREFIX) + RD_JOB_KIND_MAX];
    snprintf(cnt, sizeof(cnt), "%d", count);
    snprintf(blk, sizeof(blk), "%d", rc->block_ms);
    int argc = 0;
    const char *head[] = {"XREADGROUP", "GROUP", GROUP, q->consumer, "COUNT",
                          cnt,          "BLOCK", blk,   "STREAMS"};
    for (size_t i = 0; i < sizeof(head) / sizeof(head[0]); i++)
        argv[argc++] = head[i];
    int ns = 0;
    for (int k = 0; k < q->nkinds; k++) {
        if ((rc->mask >> k) & 1u) {
            snprintf(names[ns], sizeof(names[ns]), STREAM_PREFIX "%s", q->kinds[k]);
            argv[argc++] = names[ns++];
        }
    }
    for (int i = 0; i < ns; i++)
        argv[argc++] = ">";
    for (int i = 0; i < argc; i++)
        lens[i] = strlen(argv[i]);
    redisAsyncCommandArgv(q->rdc->ac, read_done, rc, argc, argv, lens);
}

int redisq_read(rd_redisq *q, const char *const *kinds, int nkinds, int count, int block_ms)
{
    if (q->reading)
        return -EBUSY;
    if (q->cmd == NULL || q->rdc == NULL || !q->cmd->up || !q->rdc->up)
        return -ENOTCONN;
    unsigned mask = 0;
    for (int i = 0; i < nkinds; i++) {
        int k = kind_index(q, kinds[i]);
        if (k < 0)
            return -ENOSPC;
        mask |= 1u << k;
    }
    if (mask == 0)
        return -EINVAL;
    read_ctx *rc = rd_calloc(1, sizeof(*rc), "a redis read");
    rc->q = q;
    rc->mask = mask;
    rc->count = count < 1 ? 1 : count;
    rc->block_ms = block_ms;
    q->reading = 1;
    start_read(q, rc);
    return 0;
}

int redisq_reclaim(rd_redisq *q, const char *kind, int count, int64_t min_idle_ms)
{
    /* A read and a reclaim go on different connections (the blocking XREADGROUP holds its
     * own), so each waits only for one of its kind: a node that is always inside its blocking
     * read still reclaims a dead node's entries on its sweep. */
    if (q->reclaiming)
        return -EBUSY;
    if (q->cmd == NULL || q->rdc == NULL || !q->cmd->up || !q->rdc->up)
        return -ENOTCONN;
    int k = kind_index(q, kind);
    if (k < 0)
        return -ENOSPC;
    read_ctx *rc = rd_calloc(1, sizeof(*rc), "a redis reclaim");
    rc->q = q;
    rc->k = k;
    rc->count = count < 1 ? 1 : count;
    rc->reclaim = 1;
    rc->min_idle_ms = min_idle_ms;
    q->reclaiming = 1;
    if (!q->ensured[k])
        ensure_group_ctx(q, rc);
    else
        start_read(q, rc);
    return 0;
}

int redisq_reading(const rd_redisq *q)
{
    return q->reading;
}

int redisq_ready(const rd_redisq *q)
{
    return q->cmd != NULL && q->cmd->up && q->rdc != NULL && q->rdc->up;
}

int redisq_publish(rd_redisq *q, int64_t id, const char *kind)
{
    if (q->cmd == NULL)
        return -ENOTCONN;
    redisAsyncCommand(q->cmd->ac, NULL, NULL,
                      "XADD " STREAM_PREFIX "%s MAXLEN ~ 1000000 * job %lld", kind, (long long)id);
    return 0;
}

int redisq_ack(rd_redisq *q, const char *kind, const char *entry_id)
{
    if (q->cmd == NULL)
        return -ENOTCONN;
    redisAsyncCommand(q->cmd->ac, NULL, NULL, "XACK " STREAM_PREFIX "%s %s %s", kind, GROUP,
                      entry_id);
    return 0;
}

static void stat_done(redisAsyncContext *ac, void *r, void *priv)
{
    rconn *c = ac->data;
    redisReply *reply = r;
    if (c == NULL || c->q == NULL || reply == NULL)
        return;
    if (priv == (void *)1 && reply->type == REDIS_REPLY_INTEGER)
        c->q->length = reply->integer;
    if (priv == (void *)2 && reply->type == REDIS_REPLY_ARRAY && reply->elements > 0 &&
        reply->element[0]->type == REDIS_REPLY_INTEGER)
        c->q->pending = reply->element[0]->integer;
    /* No group yet (no worker has read this stream): nothing is pending. */
    if (priv == (void *)2 && reply->type == REDIS_REPLY_ERROR &&
        strncmp(reply->str, "NOGROUP", 7) == 0)
        c->q->pending = 0;
}

void redisq_refresh_stats(rd_redisq *q, const char *kind)
{
    if (q->cmd == NULL || !q->cmd->up)
        return;
    redisAsyncCommand(q->cmd->ac, stat_done, (void *)1, "XLEN " STREAM_PREFIX "%s", kind);
    redisAsyncCommand(q->cmd->ac, stat_done, (void *)2, "XPENDING " STREAM_PREFIX "%s %s", kind,
                      GROUP);
}

void redisq_stats(const rd_redisq *q, int64_t *length, int64_t *pending)
{
    *length = q->length;
    *pending = q->pending;
}

/* ---- setup ---- */

int redisq_parse_url(const char *url, rd_redis_addr *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    if (strncmp(url, "rediss://", 9) == 0) {
        snprintf(err, errlen,
                 "REDIS_URL: rediss:// (TLS) is not supported; use redis:// on a private"
                 " network, or a local TLS tunnel (stunnel, spiped) to the server");
        return -EPROTONOSUPPORT;
    }
    if (strncmp(url, "redis://", 8) != 0) {
        snprintf(err, errlen, "REDIS_URL: must start with redis:// (got '%s')", url);
        return -EINVAL;
    }
    const char *p = url + 8;
    const char *at = strrchr(p, '@');
    if (at != NULL) {
        const char *colon = memchr(p, ':', (size_t)(at - p));
        const char *pw = colon ? colon + 1 : p;
        snprintf(out->password, sizeof(out->password), "%.*s", (int)(at - pw), pw);
        p = at + 1;
    }
    char host[256];
    size_t hl = strcspn(p, ":/");
    if (hl == 0 || hl >= sizeof(host)) {
        snprintf(err, errlen, "REDIS_URL: no host in '%s'", url);
        return -EINVAL;
    }
    memcpy(host, p, hl);
    host[hl] = '\0';
    p += hl;
    out->port = 6379;
    if (*p == ':') {
        char *end;
        long port = strtol(p + 1, &end, 10);
        if (end == p + 1 || port < 1 || port > 65535) {
            snprintf(err, errlen, "REDIS_URL: bad port in '%s'", url);
            return -EINVAL;
        }
        out->port = (int)port;
        p = end;
    }
    if (*p == '/' && p[1] != '\0')
        out->db = atoi(p + 1);
    struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM}, *ai;
    int r = getaddrinfo(host, NULL, &hints, &ai);
    if (r != 0) {
        snprintf(err, errlen, "REDIS_URL: cannot resolve '%s': %s", host, gai_strerror(r));
        return -EHOSTUNREACH;
    }
    getnameinfo(ai->ai_addr, ai->ai_addrlen, out->host, sizeof(out->host), NULL, 0, NI_NUMERICHOST);
    freeaddrinfo(ai);
    return 0;
}

int redisq_create(rd_loop *loop, const rd_redis_addr *addr, const char *consumer,
                  const rd_redisq_events *ev, rd_redisq **out)
{
    rd_redisq *q = rd_calloc(1, sizeof(*q), "the redis queue");
    q->loop = loop;
    q->addr = *addr;
    q->ev = *ev;
    q->backoff_ms = BACKOFF_MIN;
    q->length = q->pending = -1;
    q->retry.fire = retry_due;
    snprintf(q->consumer, sizeof(q->consumer), "%s", consumer);
    connect_all(q);
    *out = q;
    return 0;
}

static void drop(rconn *c)
{
    if (c == NULL)
        return;
    c->q = NULL;
    if (c->ac != NULL)
        redisAsyncFree(c->ac); /* calls back the pending replies with NULL, then ev_cleanup */
    maybe_free(c);
}

void redisq_destroy(rd_redisq *q)
{
    if (q == NULL)
        return;
    loop_timer_cancel(q->loop, &q->retry);
    rconn *cmd = q->cmd, *rdc = q->rdc;
    q->cmd = q->rdc = NULL;
    q->reading = q->reclaiming = 0;
    drop(cmd);
    drop(rdc);
    free(q);
}
