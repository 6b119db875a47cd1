/* The Redis Streams queue against a real redis-server (started here on a free loopback port in a
 * temporary directory, without persistence; the cases skip when there is none): REDIS_URL
 * parsing; publish, a read by the consumer group, ack; one stream per kind, entries published
 * before the group existed read too, COUNT kept; XAUTOCLAIM of entries idle past the lease by
 * another consumer; a stream Redis lost (FLUSHALL, between reads or under a blocking one) made
 * again with the reset event; the server going away (the waiting read told, calls refused) and
 * coming back (reconnect, groups made again, reset). The queue's calls run on its loop, through
 * a small actor; its events are recorded under a mutex and awaited with a deadline. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <hiredis/hiredis.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <time.h>
#include <unistd.h>

#include "src/queue/redis.h"
#include "src/rt/actor.h"
#include "src/rt/log.h"
#include "src/rt/runtime.h"
#include "tests/unit/fixture_net.h"
#include "tests/unit/test.h"

/* ---- the server ---- */

static char redis_bin[256];
static char redis_dir[64];
static int redis_port;
static pid_t redis_pid;

static int find_redis(void)
{
    const char *path = getenv("PATH");
    char dirs[1024];
    snprintf(dirs, sizeof(dirs), "%s:/usr/bin:/usr/local/bin:/usr/sbin", path ? path : "");
    char *save = NULL;
    for (char *d = strtok_r(dirs, ":", &save); d != NULL; d = strtok_r(NULL, ":", &save)) {
        snprintf(redis_bin, sizeof(redis_bin), "%s/redis-server", d);
        if (access(redis_bin, X_OK) == 0)
            return 1;
    }
    redis_bin[0] = '\0';
    return 0;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

/* A plain connection to the server, for looking at what the queue did (NULL when down). */
static redisContext *raw_connect(void)
{
    struct timeval tv = {.tv_sec = 1};
    redisContext *c = redisConnectWithTimeout("127.0.0.1", redis_port, tv);
    if (c != NULL && c->err) {
        redisFree(c);
        return NULL;
    }
    if (c != NULL)
        redisSetTimeout(c, tv);
    return c;
}

/* Starts redis-server on redis_port and waits until it answers PING. 0 or -1. */
static int start_redis(void)
{
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL); /* never outlives the test */
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        int fd = open("/dev/null", O_RDWR);
        dup2(fd, 0);
        dup2(fd, 1);
        dup2(fd, 2);
        char port[16];
        snprintf(port, sizeof(port), "%d", redis_port);
        execl(redis_bin, "redis-server", "--port", port, "--bind", "127.0.0.1", "--save", "",
              "--appendonly", "no", "--dir", redis_dir, "--daemonize", "no", (char *)NULL);
        _exit(127);
    }
    redis_pid = pid;
    for (int i = 0; i < 300; i++) {
        redisContext *c = raw_connect();
        if (c != NULL) {
            redisReply *r = redisCommand(c, "PING");
            int ok = r != NULL && r->type == REDIS_REPLY_STATUS;
            freeReplyObject(r);
            redisFree(c);
            if (ok)
                return 0;
        }
        int status;
        if (waitpid(pid, &status, WNOHANG) == pid) {
            redis_pid = 0;
            return -1;
        }
        sleep_ms(10);
    }
    return -1;
}

static void stop_redis(void)
{
    if (redis_pid > 0) {
        kill(redis_pid, SIGKILL);
        waitpid(redis_pid, NULL, 0);
        redis_pid = 0;
    }
}

/* One command on a fresh plain connection; the reply (free it) or NULL. */
static redisReply *raw(const char *fmt, const char *a, const char *b)
{
    redisContext *c = raw_connect();
    if (c == NULL)
        return NULL;
    redisReply *r = redisCommand(c, fmt, a, b);
    redisFree(c);
    return r;
}

static long long raw_int(const char *fmt, const char *a, const char *b)
{
    redisReply *r = raw(fmt, a, b);
    long long v = r != NULL && r->type == REDIS_REPLY_INTEGER ? r->integer : -1;
    freeReplyObject(r);
    return v;
}

/* Entries of `stream` read by the group and not acknowledged (XPENDING's count). */
static long long pending_of(const char *stream)
{
    redisReply *r = raw("XPENDING %s workers", stream, NULL);
    long long v = r != NULL && r->type == REDIS_REPLY_ARRAY && r->elements > 0 &&
                          r->element[0]->type == REDIS_REPLY_INTEGER
                      ? r->element[0]->integer
                      : -1;
    freeReplyObject(r);
    return v;
}

/* The consumer that holds entry `id` of `stream` ("" when none does). */
static void holder_of(const char *stream, const char *id, char *out, size_t cap)
{
    redisReply *r = raw("XPENDING %s workers - + 100", stream, NULL);
    out[0] = '\0';
    for (size_t i = 0; r != NULL && r->type == REDIS_REPLY_ARRAY && i < r->elements; i++) {
        const redisReply *e = r->element[i];
        if (e->type == REDIS_REPLY_ARRAY && e->elements >= 2 && !strcmp(e->element[0]->str, id))
            snprintf(out, cap, "%s", e->element[1]->str);
    }
    freeReplyObject(r);
}

/* ---- the queue's side: its calls on its loop, its events recorded ---- */

#define MAX_CALLS 64

typedef struct got {
    char kind[RD_JOB_KIND_MAX];
    rd_stream_entry e[8];
    int n, err;
} got;

/* One queue and what it told its owner. */
typedef struct tq {
    rd_redisq *q;
    const char *consumer;
    int resets;
    got calls[MAX_CALLS];
    int ncalls;
} tq;

static rd_runtime rt;
static rd_actor *driver;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static tq node_a = {.consumer = "node-a"}, node_b = {.consumer = "node-b"};

static void on_entries(void *ctx, const char *kind, const rd_stream_entry *e, int n, int err)
{
    tq *t = ctx;
    pthread_mutex_lock(&mu);
    if (t->ncalls < MAX_CALLS) {
        got *g = &t->calls[t->ncalls++];
        snprintf(g->kind, sizeof(g->kind), "%s", kind);
        g->n = n;
        g->err = err;
        for (int i = 0; i < n && i < 8; i++)
            g->e[i] = e[i];
    }
    pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&mu);
}

static void on_reset(void *ctx)
{
    tq *t = ctx;
    pthread_mutex_lock(&mu);
    t->resets++;
    pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&mu);
}

/* What the driver actor runs next, and its result. */
static struct {
    long (*fn)(void *arg);
    void *arg;
    long result;
    int done;
} op;

static int driver_handle(rd_actor *self, rd_msg *m)
{
    (void)self;
    if (m->type != MSG_PING)
        return RD_DONE;
    pthread_mutex_lock(&mu);
    long (*fn)(void *) = op.fn;
    void *arg = op.arg;
    pthread_mutex_unlock(&mu);
    long r = fn(arg); /* without the mutex: the queue's events take it */
    pthread_mutex_lock(&mu);
    op.result = r;
    op.done = 1;
    pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&mu);
    return RD_DONE;
}

static const rd_actor_def driver_def = {.name = "redis-test-driver", .handle = driver_handle};

/* Runs fn(arg) on the loop and returns its result. */
static long on_loop(long (*fn)(void *), void *arg)
{
    pthread_mutex_lock(&mu);
    op.fn = fn;
    op.arg = arg;
    op.done = 0;
    pthread_mutex_unlock(&mu);
    if (actor_send(driver, msg_new(MSG_PING)) < 0)
        return -9999;
    pthread_mutex_lock(&mu);
    while (!op.done)
        pthread_cond_wait(&cv, &mu);
    long r = op.result;
    pthread_mutex_unlock(&mu);
    return r;
}

/* Waits until *counter (read under the mutex) reaches `n`; 1, or 0 at the deadline. */
static int wait_count(const int *counter, int n, int ms)
{
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += ms / 1000;
    dl.tv_nsec += (long)(ms % 1000) * 1000000;
    if (dl.tv_nsec >= 1000000000) {
        dl.tv_sec++;
        dl.tv_nsec -= 1000000000;
    }
    pthread_mutex_lock(&mu);
    int rc = 0;
    while (*counter < n && rc == 0)
        rc = pthread_cond_timedwait(&cv, &mu, &dl);
    int ok = *counter >= n;
    pthread_mutex_unlock(&mu);
    return ok;
}

static int count_of(const int *counter)
{
    pthread_mutex_lock(&mu);
    int n = *counter;
    pthread_mutex_unlock(&mu);
    return n;
}

/* The i-th recorded read of `t` (a copy, once it has come; else zeroed with err 1). */
static got call_of(tq *t, int i, int ms)
{
    got g = {.err = 1};
    if (!wait_count(&t->ncalls, i + 1, ms)) {
        printf("  no read answer #%d for %s within %d ms\n", i, t->consumer, ms);
        return g;
    }
    pthread_mutex_lock(&mu);
    g = t->calls[i];
    pthread_mutex_unlock(&mu);
    return g;
}

/* The calls, as run on the loop. */
static rd_redis_addr addr;

typedef struct args {
    tq *t;
    int64_t id;
    const char *kind;
    const char *const *kinds;
    int nkinds, count, block_ms;
    int64_t min_idle_ms;
    const char *entry;
    int64_t length, pending;
} args;

static long do_create(void *p)
{
    args *a = p;
    rd_redisq_events ev = {.ctx = a->t, .entries = on_entries, .reset = on_reset};
    return redisq_create(loop_current(), &addr, a->t->consumer, &ev, &a->t->q);
}

static long do_destroy(void *p)
{
    args *a = p;
    redisq_destroy(a->t->q);
    a->t->q = NULL;
    return 0;
}

static long do_ready(void *p)
{
    return redisq_ready(((args *)p)->t->q);
}

static long do_publish(void *p)
{
    args *a = p;
    return redisq_publish(a->t->q, a->id, a->kind);
}

static long do_read(void *p)
{
    args *a = p;
    return redisq_read(a->t->q, a->kinds, a->nkinds, a->count, a->block_ms);
}

static long do_reading(void *p)
{
    return redisq_reading(((args *)p)->t->q);
}

static long do_reclaim(void *p)
{
    args *a = p;
    return redisq_reclaim(a->t->q, a->kind, a->count, a->min_idle_ms);
}

/* Two reclaims in one turn of the loop: the second's result (the first's answer cannot have
 * come in between). */
static long do_reclaim_twice(void *p)
{
    args *a = p;
    long first = redisq_reclaim(a->t->q, a->kind, a->count, a->min_idle_ms);
    long second = redisq_reclaim(a->t->q, a->kind, a->count, a->min_idle_ms);
    return first < 0 ? first : second;
}

static long do_ack(void *p)
{
    args *a = p;
    return redisq_ack(a->t->q, a->kind, a->entry);
}

static long do_refresh(void *p)
{
    args *a = p;
    redisq_refresh_stats(a->t->q, a->kind);
    return 0;
}

static long do_stats(void *p)
{
    args *a = p;
    redisq_stats(a->t->q, &a->length, &a->pending);
    return 0;
}

static int create(tq *t)
{
    args a = {.t = t};
    return (int)on_loop(do_create, &a);
}

static void destroy(tq *t)
{
    args a = {.t = t};
    on_loop(do_destroy, &a);
}

/* Polls redisq_ready for up to `ms`. */
static int ready_within(tq *t, int ms)
{
    args a = {.t = t};
    for (int i = 0; i < ms / 10; i++) {
        if (on_loop(do_ready, &a))
            return 1;
        sleep_ms(10);
    }
    return (int)on_loop(do_ready, &a);
}

static int publish(tq *t, int64_t id, const char *kind)
{
    args a = {.t = t, .id = id, .kind = kind};
    return (int)on_loop(do_publish, &a);
}

static int read_kinds(tq *t, const char *const *kinds, int nkinds, int count, int block_ms)
{
    args a = {.t = t, .kinds = kinds, .nkinds = nkinds, .count = count, .block_ms = block_ms};
    return (int)on_loop(do_read, &a);
}

static int read_one(tq *t, const char *kind, int count, int block_ms)
{
    const char *kinds[] = {kind};
    return read_kinds(t, kinds, 1, count, block_ms);
}

static int reclaim(tq *t, const char *kind, int count, int64_t min_idle_ms)
{
    args a = {.t = t, .kind = kind, .count = count, .min_idle_ms = min_idle_ms};
    return (int)on_loop(do_reclaim, &a);
}

static int ack(tq *t, const char *kind, const char *entry)
{
    args a = {.t = t, .kind = kind, .entry = entry};
    return (int)on_loop(do_ack, &a);
}

/* Polls `stream`'s pending count until it is `want` (or 1 s passes); returns the last seen. */
static long long pending_becomes(const char *stream, long long want)
{
    long long v = -2;
    for (int i = 0; i < 100 && (v = pending_of(stream)) != want; i++)
        sleep_ms(10);
    return v;
}

static long long xlen_becomes(const char *stream, long long want)
{
    long long v = -2;
    for (int i = 0; i < 100 && (v = raw_int("XLEN %s", stream, NULL)) != want; i++)
        sleep_ms(10);
    return v;
}

/* ---- the cases ---- */

TEST(urls_are_parsed_and_resolved)
{
    rd_redis_addr a;
    char err[256];
    CHECK_EQ_INT(redisq_parse_url("redis://127.0.0.1:6380/2", &a, err, sizeof(err)), 0);
    CHECK_EQ_STR(a.host, "127.0.0.1");
    CHECK_EQ_INT(a.port, 6380);
    CHECK_EQ_INT(a.db, 2);
    CHECK_EQ_STR(a.password, "");
    CHECK_EQ_INT(redisq_parse_url("redis://:s3cret@localhost", &a, err, sizeof(err)), 0);
    CHECK_EQ_STR(a.host, "127.0.0.1");
    CHECK_EQ_INT(a.port, 6379);
    CHECK_EQ_INT(a.db, 0);
    CHECK_EQ_STR(a.password, "s3cret");
    CHECK_EQ_INT(redisq_parse_url("redis://user:p@ss@127.0.0.1:7000/", &a, err, sizeof(err)), 0);
    CHECK_EQ_STR(a.password, "p@ss");
    CHECK_EQ_INT(a.port, 7000);
    CHECK_EQ_INT(a.db, 0);

    CHECK_EQ_INT(redisq_parse_url("rediss://127.0.0.1:6379", &a, err, sizeof(err)),
                 -EPROTONOSUPPORT);
    CHECK(strstr(err, "REDIS_URL: rediss:// (TLS) is not supported") == err);
    CHECK_EQ_INT(redisq_parse_url("http://127.0.0.1", &a, err, sizeof(err)), -EINVAL);
    CHECK_EQ_STR(err, "REDIS_URL: must start with redis:// (got 'http://127.0.0.1')");
    static const char *const bad_port[] = {"redis://127.0.0.1:0", "redis://127.0.0.1:65536",
                                           "redis://127.0.0.1:x", "redis://127.0.0.1:"};
    for (size_t i = 0; i < sizeof(bad_port) / sizeof(bad_port[0]); i++) {
        CHECK_EQ_INT(redisq_parse_url(bad_port[i], &a, err, sizeof(err)), -EINVAL);
        CHECK(strstr(err, "REDIS_URL: bad port in '") == err);
    }
    CHECK_EQ_INT(redisq_parse_url("redis://", &a, err, sizeof(err)), -EINVAL);
    CHECK_EQ_STR(err, "REDIS_URL: no host in 'redis://'");
    CHECK_EQ_INT(redisq_parse_url("redis://:pw@:6379", &a, err, sizeof(err)), -EINVAL);
    CHECK(strstr(err, "REDIS_URL: no host in") == err);
}

static int have_server;
static const char *no_server = "redis-server not installed";

TEST(publish_read_ack)
{
    if (!have_server)
        SKIP(no_server);
    CHECK_EQ_INT(create(&node_a), 0);
    CHECK(ready_within(&node_a, 3000));
    CHECK_EQ_INT(count_of(&node_a.resets), 0);
    args st = {.t = &node_a};
    on_loop(do_stats, &st);
    CHECK_EQ_INT(st.length, -1); /* not known yet */
    CHECK_EQ_INT(st.pending, -1);

    CHECK_EQ_INT(read_one(&node_a, "jobs-a", 10, 2000), 0);
    CHECK_EQ_INT(read_one(&node_a, "jobs-a", 10, 2000), -EBUSY); /* one read at a time */
    CHECK(on_loop(do_reading, &st) == 1);
    /* The group did not exist: made, from the stream's start, and the owner told. */
    CHECK(wait_count(&node_a.resets, 1, 2000));
    CHECK_EQ_INT(publish(&node_a, 42, "jobs-a"), 0);
    got g = call_of(&node_a, 0, 3000);
    CHECK_EQ_INT(g.err, 0);
    CHECK_EQ_STR(g.kind, "jobs-a");
    CHECK_EQ_INT(g.n, 1);
    CHECK_EQ_INT(g.e[0].job_id, 42);
    CHECK_EQ_STR(g.e[0].kind, "jobs-a");
    unsigned long long ms = 0, seq = 0;
    CHECK_EQ_INT(sscanf(g.e[0].id, "%llu-%llu", &ms, &seq), 2);
    CHECK(on_loop(do_reading, &st) == 0);

    /* Read, not acknowledged: pending with this consumer until the ack. */
    CHECK_EQ_INT(pending_of("reeld:jobs:jobs-a"), 1);
    char holder[64];
    holder_of("reeld:jobs:jobs-a", g.e[0].id, holder, sizeof(holder));
    CHECK_EQ_STR(holder, "node-a");
    CHECK_EQ_INT(ack(&node_a, "jobs-a", g.e[0].id), 0);
    CHECK_EQ_INT(pending_becomes("reeld:jobs:jobs-a", 0), 0);
    CHECK_EQ_INT(raw_int("XLEN %s", "reeld:jobs:jobs-a", NULL), 1);

    /* Nothing new: the read times out empty, for its kind. */
    CHECK_EQ_INT(read_one(&node_a, "jobs-a", 10, 100), 0);
    g = call_of(&node_a, 1, 2000);
    CHECK_EQ_INT(g.err, 0);
    CHECK_EQ_INT(g.n, 0);
    CHECK_EQ_STR(g.kind, "jobs-a");
    CHECK_EQ_INT(count_of(&node_a.resets), 1); /* the group existed this time */

    /* The gauges' figures. */
    st.kind = "jobs-a";
    on_loop(do_refresh, &st);
    for (int i = 0; i < 100 && (st.length < 0 || st.pending < 0); i++) {
        sleep_ms(10);
        on_loop(do_stats, &st);
    }
    CHECK_EQ_INT(st.length, 1);
    CHECK_EQ_INT(st.pending, 0);
    const char *none[] = {NULL};
    CHECK_EQ_INT(read_kinds(&node_a, none, 0, 1, 100), -EINVAL);
}

TEST(one_stream_per_kind)
{
    if (!have_server)
        SKIP(no_server);
    int base = count_of(&node_a.ncalls), resets = count_of(&node_a.resets);
    /* Published before any node reads these kinds: the groups start at the streams' start. */
    CHECK_EQ_INT(publish(&node_a, 7, "alpha"), 0);
    CHECK_EQ_INT(publish(&node_a, 8, "beta"), 0);
    CHECK_EQ_INT(publish(&node_a, 9, "alpha"), 0);
    CHECK_EQ_INT(xlen_becomes("reeld:jobs:alpha", 2), 2);
    CHECK_EQ_INT(xlen_becomes("reeld:jobs:beta", 1), 1);
    CHECK_EQ_INT(raw_int("XLEN %s", "reeld:jobs:jobs-a", NULL), 1);

    /* One read of both kinds; each kind's entries come on their own. */
    const char *kinds[] = {"alpha", "beta"};
    CHECK_EQ_INT(read_kinds(&node_a, kinds, 2, 10, 1000), 0);
    got g1 = call_of(&node_a, base, 2000), g2 = call_of(&node_a, base + 1, 2000);
    if (strcmp(g1.kind, "beta") == 0) {
        got t = g1;
        g1 = g2;
        g2 = t;
    }
    CHECK_EQ_STR(g1.kind, "alpha");
    CHECK_EQ_INT(g1.err, 0);
    CHECK_EQ_INT(g1.n, 2);
    CHECK_EQ_INT(g1.e[0].job_id, 7);
    CHECK_EQ_INT(g1.e[1].job_id, 9);
    CHECK_EQ_STR(g1.e[1].kind, "alpha");
    CHECK_EQ_STR(g2.kind, "beta");
    CHECK_EQ_INT(g2.n, 1);
    CHECK_EQ_INT(g2.e[0].job_id, 8);
    CHECK_EQ_INT(count_of(&node_a.resets), resets + 2); /* a group for each */
    CHECK_EQ_INT(pending_of("reeld:jobs:alpha"), 2);
    CHECK_EQ_INT(pending_of("reeld:jobs:beta"), 1);
    CHECK_EQ_INT(pending_of("reeld:jobs:jobs-a"), 0);

    /* COUNT is kept: three new, two read. */
    for (int i = 0; i < 3; i++)
        publish(&node_a, 10 + i, "alpha");
    CHECK_EQ_INT(xlen_becomes("reeld:jobs:alpha", 5), 5);
    CHECK_EQ_INT(read_one(&node_a, "alpha", 2, 1000), 0);
    got g3 = call_of(&node_a, base + 2, 2000);
    CHECK_EQ_INT(g3.n, 2);
    CHECK_EQ_INT(g3.e[0].job_id, 10);
    CHECK_EQ_INT(g3.e[1].job_id, 11);

    /* A queue with a database number writes there; eight kinds at most per queue. */
    char url[64], err[256];
    snprintf(url, sizeof(url), "redis://127.0.0.1:%d/3", redis_port);
    rd_redis_addr keep = addr;
    CHECK_EQ_INT(redisq_parse_url(url, &addr, err, sizeof(err)), 0);
    tq node_c = {.consumer = "node-c"};
    CHECK_EQ_INT(create(&node_c), 0);
    addr = keep;
    CHECK(ready_within(&node_c, 3000));
    CHECK_EQ_INT(publish(&node_c, 5, "in-db3"), 0);
    redisContext *c = raw_connect();
    long long len = -1;
    for (int i = 0; c != NULL && i < 100 && len != 1; i++) {
        freeReplyObject(redisCommand(c, "SELECT 3"));
        redisReply *r = redisCommand(c, "XLEN reeld:jobs:in-db3");
        len = r != NULL && r->type == REDIS_REPLY_INTEGER ? r->integer : -1;
        freeReplyObject(r);
        sleep_ms(10);
    }
    if (c != NULL)
        redisFree(c);
    CHECK_EQ_INT(len, 1);
    CHECK_EQ_INT(raw_int("EXISTS %s", "reeld:jobs:in-db3", NULL), 0); /* not in db 0 */
    const char *eight[] = {"k1", "k2", "k3", "k4", "k5", "k6", "k7", "k8"};
    CHECK_EQ_INT(reclaim(&node_c, "in-db3", 1, 1000000), 0); /* one kind known */
    CHECK(wait_count(&node_c.ncalls, 1, 2000));
    CHECK_EQ_INT(read_kinds(&node_c, eight, 8, 1, 100), -ENOSPC); /* the ninth did not fit */
    destroy(&node_c);
}

/* Entries that name no job (another program's, or a mistyped XADD) are acknowledged as they are
 * read: pending, they would be reclaimed every lease and counted by the gauge forever. A read
 * that found only such entries is answered as an empty one, so its owner reads again. */
TEST(unreadable_entries_are_acknowledged)
{
    if (!have_server)
        SKIP(no_server);
    int base = count_of(&node_a.ncalls);
    freeReplyObject(raw("XADD %s * %s x", "reeld:jobs:odd", "nojob"));
    freeReplyObject(raw("XADD %s * job %s", "reeld:jobs:odd", "not-a-number"));
    CHECK_EQ_INT(xlen_becomes("reeld:jobs:odd", 2), 2);
    CHECK_EQ_INT(read_one(&node_a, "odd", 10, 1000), 0);
    got g = call_of(&node_a, base, 3000);
    CHECK_EQ_INT(g.err, 0);
    CHECK_EQ_INT(g.n, 0);
    CHECK_EQ_STR(g.kind, "odd");
    CHECK_EQ_INT(pending_becomes("reeld:jobs:odd", 0), 0);
    /* A good entry after them is read as usual. */
    CHECK_EQ_INT(publish(&node_a, 77, "odd"), 0);
    CHECK_EQ_INT(read_one(&node_a, "odd", 10, 1000), 0);
    g = call_of(&node_a, base + 1, 3000);
    CHECK_EQ_INT(g.n, 1);
    CHECK_EQ_INT(g.e[0].job_id, 77);
}

TEST(entries_idle_past_the_lease_are_reclaimed)
{
    if (!have_server)
        SKIP(no_server);
    CHECK_EQ_INT(create(&node_b), 0);
    CHECK(ready_within(&node_b, 3000));
    /* node-a reads job 77 and goes silent. */
    int base_a = count_of(&node_a.ncalls);
    CHECK_EQ_INT(publish(&node_a, 77, "lease"), 0);
    CHECK_EQ_INT(read_one(&node_a, "lease", 10, 1000), 0);
    got ga = call_of(&node_a, base_a, 2000);
    CHECK_EQ_INT(ga.n, 1);
    CHECK_EQ_INT(ga.e[0].job_id, 77);

    /* Not idle long enough yet: nothing for node-b. */
    args twice = {.t = &node_b, .kind = "lease", .count = 10, .min_idle_ms = 300};
    CHECK_EQ_INT(on_loop(do_reclaim_twice, &twice), -EBUSY); /* one at a time */
    got g = call_of(&node_b, 0, 2000);
    CHECK_EQ_INT(g.err, 0);
    CHECK_EQ_INT(g.n, 0);
    CHECK_EQ_STR(g.kind, "lease");
    char holder[64];
    holder_of("reeld:jobs:lease", ga.e[0].id, holder, sizeof(holder));
    CHECK_EQ_STR(holder, "node-a");

    sleep_ms(350);
    CHECK_EQ_INT(reclaim(&node_b, "lease", 10, 300), 0);
    g = call_of(&node_b, 1, 2000);
    CHECK_EQ_INT(g.err, 0);
    CHECK_EQ_INT(g.n, 1);
    CHECK_EQ_INT(g.e[0].job_id, 77);
    CHECK_EQ_STR(g.e[0].id, ga.e[0].id);
    CHECK_EQ_STR(g.e[0].kind, "lease");
    holder_of("reeld:jobs:lease", ga.e[0].id, holder, sizeof(holder));
    CHECK_EQ_STR(holder, "node-b");
    CHECK_EQ_INT(ack(&node_b, "lease", g.e[0].id), 0);
    CHECK_EQ_INT(pending_becomes("reeld:jobs:lease", 0), 0);
}

TEST(a_lost_stream_is_made_again_and_reset_said)
{
    if (!have_server)
        SKIP(no_server);
    redisReply *r = raw("FLUSHALL", NULL, NULL);
    CHECK(r != NULL && r->type == REDIS_REPLY_STATUS);
    freeReplyObject(r);
    int base = count_of(&node_a.ncalls), resets = count_of(&node_a.resets);
    /* The next read finds no group: it fails, and the one after makes the group again. */
    CHECK_EQ_INT(read_one(&node_a, "jobs-a", 10, 100), 0);
    got g = call_of(&node_a, base, 2000);
    CHECK_EQ_INT(g.err, -EAGAIN);
    CHECK_EQ_INT(g.n, 0);
    CHECK_EQ_INT(read_one(&node_a, "jobs-a", 10, 1000), 0);
    CHECK(wait_count(&node_a.resets, resets + 1, 2000));
    CHECK_EQ_INT(publish(&node_a, 43, "jobs-a"), 0);
    g = call_of(&node_a, base + 1, 2000);
    CHECK_EQ_INT(g.err, 0);
    CHECK_EQ_INT(g.n, 1);
    CHECK_EQ_INT(g.e[0].job_id, 43);
    CHECK_EQ_INT(ack(&node_a, "jobs-a", g.e[0].id), 0);

    /* The same for a reclaim. */
    int base_b = count_of(&node_b.ncalls), resets_b = count_of(&node_b.resets);
    CHECK_EQ_INT(reclaim(&node_b, "lease", 10, 0), 0);
    g = call_of(&node_b, base_b, 2000);
    CHECK_EQ_INT(g.err, -EAGAIN);
    CHECK_EQ_INT(reclaim(&node_b, "lease", 10, 0), 0);
    g = call_of(&node_b, base_b + 1, 2000);
    CHECK_EQ_INT(g.err, 0);
    CHECK_EQ_INT(g.n, 0);
    CHECK_EQ_INT(count_of(&node_b.resets), resets_b + 1);
    CHECK_EQ_INT(raw_int("EXISTS %s", "reeld:jobs:lease", NULL), 1);
}

TEST(a_stream_lost_under_a_blocking_read_is_made_again)
{
    if (!have_server)
        SKIP(no_server);
    int base = count_of(&node_a.ncalls), resets = count_of(&node_a.resets);
    CHECK_EQ_INT(read_one(&node_a, "jobs-a", 10, 3000), 0);
    sleep_ms(50); /* the read is blocking in the server */
    redisReply *r = raw("FLUSHALL", NULL, NULL);
    freeReplyObject(r);
    /* The blocked read ends at once with an error, not at its 3 s. */
    got g = call_of(&node_a, base, 1000);
    CHECK_EQ_INT(g.err, -EAGAIN);
    CHECK_EQ_INT(g.n, 0);
    /* Within the next two reads the group is made again and the owner told. */
    int reads = 0;
    while (reads < 2 && count_of(&node_a.resets) == resets) {
        CHECK_EQ_INT(read_one(&node_a, "jobs-a", 10, 100), 0);
        call_of(&node_a, base + 1 + reads, 2000);
        reads++;
    }
    CHECK_EQ_INT(count_of(&node_a.resets), resets + 1);
    int next = count_of(&node_a.ncalls);
    CHECK_EQ_INT(read_one(&node_a, "jobs-a", 10, 1000), 0);
    CHECK_EQ_INT(publish(&node_a, 45, "jobs-a"), 0);
    g = call_of(&node_a, next, 2000);
    CHECK_EQ_INT(g.err, 0);
    CHECK_EQ_INT(g.n, 1);
    CHECK_EQ_INT(g.e[0].job_id, 45);
}

TEST(redis_going_away_is_told_and_survived)
{
    if (!have_server)
        SKIP(no_server);
    int base = count_of(&node_a.ncalls), resets = count_of(&node_a.resets);
    CHECK_EQ_INT(read_one(&node_a, "jobs-a", 10, 5000), 0);
    sleep_ms(50); /* the read is blocking in the server */
    stop_redis();
    /* The waiting read is told at once, not at its 5 s. */
    got g = call_of(&node_a, base, 1000);
    CHECK_EQ_INT(g.err, -ENOTCONN);
    CHECK_EQ_INT(g.n, 0);
    args a = {.t = &node_a};
    CHECK_EQ_INT(on_loop(do_ready, &a), 0);
    CHECK_EQ_INT(on_loop(do_reading, &a), 0);
    CHECK_EQ_INT(read_one(&node_a, "jobs-a", 10, 100), -ENOTCONN);
    CHECK_EQ_INT(reclaim(&node_a, "jobs-a", 10, 0), -ENOTCONN);
    args b = {.t = &node_b};
    long b_ready = 1;
    for (int i = 0; i < 100 && (b_ready = on_loop(do_ready, &b)) != 0; i++)
        sleep_ms(10);
    CHECK_EQ_INT(b_ready, 0); /* the other queue saw it too */

    /* Back (empty, as after a restart without persistence): both reconnect, the groups they
     * knew are made again and their owners told to publish again. */
    sleep_ms(150);
    CHECK_EQ_INT(start_redis(), 0);
    CHECK(ready_within(&node_a, 4000));
    CHECK(ready_within(&node_b, 4000));
    CHECK(wait_count(&node_a.resets, resets + 1, 3000));
    CHECK_EQ_INT(raw_int("EXISTS %s", "reeld:jobs:jobs-a", NULL), 1);
    CHECK_EQ_INT(read_one(&node_a, "jobs-a", 10, 1000), 0);
    CHECK_EQ_INT(publish(&node_a, 44, "jobs-a"), 0);
    g = call_of(&node_a, base + 1, 2000);
    CHECK_EQ_INT(g.err, 0);
    CHECK_EQ_INT(g.n, 1);
    CHECK_EQ_INT(g.e[0].job_id, 44);
}

static void remove_dir(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    while (d != NULL && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char path[512];
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        unlink(path);
    }
    if (d != NULL)
        closedir(d);
    rmdir(dir);
}

int main(void)
{
    RUN(urls_are_parsed_and_resolved);
    if (getenv("REELD_LOG") == NULL)
        log_set_level("error"); /* the lost-connection warnings are expected here */
    rt_block_signals();
    snprintf(redis_dir, sizeof(redis_dir), "/tmp/reeld-redis-test-XXXXXX");
    int started = 0;
    if (find_redis() && mkdtemp(redis_dir) != NULL) {
        redis_port = free_port();
        if (start_redis() == 0)
            started = 1;
        else
            no_server = "redis-server did not start";
    }
    if (started && rt_start(&rt, 1) < 0)
        no_server = "no io_uring here: the runtime did not start";
    else if (started) {
        have_server = 1;
        actor_spawn(rt.loops[0], &driver_def, NULL, &driver);
        char url[64], err[256];
        snprintf(url, sizeof(url), "redis://127.0.0.1:%d", redis_port);
        CHECK_EQ_INT(redisq_parse_url(url, &addr, err, sizeof(err)), 0);
    }
    RUN(publish_read_ack);
    RUN(one_stream_per_kind);
    RUN(unreadable_entries_are_acknowledged);
    RUN(entries_idle_past_the_lease_are_reclaimed);
    RUN(a_lost_stream_is_made_again_and_reset_said);
    RUN(a_stream_lost_under_a_blocking_read_is_made_again);
    RUN(redis_going_away_is_told_and_survived);
    if (have_server) {
        destroy(&node_a);
        destroy(&node_b);
        rt_stop(&rt, 1000000000ull);
        actor_free_all();
    }
    stop_redis();
    if (redis_dir[strlen(redis_dir) - 1] != 'X')
        remove_dir(redis_dir);
    return test_summary();
}
