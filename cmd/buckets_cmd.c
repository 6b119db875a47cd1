/* `reeld buckets init`: creates and configures the three S3 buckets reeld uses, so that an
 * operator needs no other tool. Like `reeld s3` (cmd/s3cmd.c) it runs one loop with the S3
 * client the server would make from the same S3_* settings (path style, the system CAs), and
 * drives it from the main thread with the blocking s3_call.
 *
 *   staging  (S3_BUCKET_STAGING)   CORS for browser PUTs from ALLOWED_ORIGINS; a lifecycle
 *                                  rule: incomplete multipart uploads aborted after 1 day,
 *                                  objects expired after --staging-expire-days (default 7)
 *   masters  (S3_BUCKET_MASTERS)   created with Object Lock; with OBJECT_LOCK_DEFAULT_DAYS > 0
 *                                  a default retention of that many days in OBJECT_LOCK_MODE
 *   previews (S3_BUCKET_PREVIEWS)  created, nothing else: players reach renditions through
 *                                  the edge (/hls/), never the bucket
 *
 * Idempotent: each configuration is read back first (GetBucketCors, ...) and written only when
 * its canonical form (proto/s3_bucket.h) differs from what it should be (Object Lock's default
 * retention: when its mode or days differ), so a second run
 * changes nothing and says "unchanged". One line per bucket on stdout; exit 0, 1 with the S3
 * error's sentence on stderr, 2 for a usage error. Without S3_ENDPOINT there is nothing to do:
 * the embedded object store keeps files in the data directory. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "proto/s3_bucket.h"
#include "proto/s3_wire.h"
#include "src/blob/s3.h"
#include "cmd/cmd.h"
#include "src/net/tls.h"
#include "src/rt/actor.h"
#include "src/rt/log.h"
#include "src/rt/runtime.h"

#define BUCKETS_ABORT_DAYS     1 /* incomplete multipart uploads in staging */
#define BUCKETS_EXPIRE_DAYS    7 /* default of --staging-expire-days */
#define BUCKETS_CORS_MAX_AGE   600
#define BUCKETS_LIFECYCLE_RULE "reeld-staging"

/* What one run should leave in place, built before any request. */
typedef struct plan {
    const rd_config *cfg;
    char create[512]; /* CreateBucket's body ("" in us-east-1) */
    int create_len;
    char cors[S3BUCKET_MAX_DOC]; /* "" when ALLOWED_ORIGINS is empty */
    char lifecycle[1024];
    char lock[1024]; /* "" when OBJECT_LOCK_DEFAULT_DAYS is 0 */
    int expire_days;
} plan;

/* The line printed for one bucket: what was done, comma-separated. */
typedef struct report {
    char done[256];
    char note[256];
} report;

static void did(report *r, const char *what)
{
    size_t n = strlen(r->done);
    snprintf(r->done + n, sizeof(r->done) - n, "%s%s", n ? ", " : "", what);
}

static int usage(const char *why)
{
    fprintf(stderr,
            "reeld buckets: %s\nusage: reeld buckets init [--staging-expire-days N] "
            "[configuration flags]\n",
            why);
    return 2;
}

static int fail(const s3_op *op)
{
    fprintf(stderr, "reeld buckets init: %s\n", op->message[0] ? op->message : strerror(-op->res));
    return -1;
}

/* HeadBucket, then CreateBucket when it is missing. 1: created, 0: it was there, -1: failed. */
static int ensure(s3_client *c, const plan *p, const char *bucket, int lock)
{
    s3_op op = {.method = S3_HEAD_BUCKET, .bucket = bucket};
    int r = s3_call(c, &op);
    if (r == 0)
        return 0;
    if (r != -ENOENT)
        return fail(&op);
    op = (s3_op){.method = S3_CREATE_BUCKET,
                 .bucket = bucket,
                 .body = p->create,
                 .body_len = (size_t)p->create_len,
                 .bucket_lock = lock};
    r = s3_call(c, &op);
    if (r == 0)
        return 1;
    if (strcmp(op.code, "BucketAlreadyOwnedByYou") == 0)
        return 0; /* made by someone else between our HEAD and PUT, or us-east-1's old answer */
    return fail(&op);
}

/* Reads the configuration `get` of `bucket` into `cur` (cap bytes). 1: there is one, 0: none,
 * -1: failed. */
static int read_config(s3_client *c, const char *bucket, s3_method get, char *cur, size_t cap)
{
    s3_op op = {.method = get, .bucket = bucket, .resp = cur, .resp_cap = cap};
    int r = s3_call(c, &op);
    if (r == 0)
        return 1;
    if (r == -ENOENT && strcmp(op.code, "NoSuchBucket") != 0)
        return 0; /* NoSuchCORSConfiguration, NoSuchLifecycleConfiguration, ... */
    return fail(&op);
}

/* 1 when documents a and b say the same thing. */
static int same(const char *a, const char *b)
{
    static char ca[S3BUCKET_MAX_DOC], cb[S3BUCKET_MAX_DOC];
    int na = s3bucket_canon(a, strlen(a), ca, sizeof(ca));
    int nb = s3bucket_canon(b, strlen(b), cb, sizeof(cb));
    return na >= 0 && nb >= 0 && strcmp(ca, cb) == 0;
}

/* Writes `doc` with `put` unless the bucket has the same already (read with `get`). 1: written,
 * 0: unchanged, -1: failed. */
static int apply(s3_client *c, const char *bucket, s3_method get, s3_method put, const char *doc)
{
    static char cur[S3BUCKET_MAX_DOC];
    int have = read_config(c, bucket, get, cur, sizeof(cur));
    if (have < 0)
        return -1;
    if (have && same(cur, doc))
        return 0;
    s3_op op = {.method = put, .bucket = bucket, .body = doc, .body_len = strlen(doc)};
    if (s3_call(c, &op) < 0)
        return fail(&op);
    return 1;
}

static int init_staging(s3_client *c, const plan *p, report *rep)
{
    const char *b = p->cfg->s3_bucket_staging;
    int r = ensure(c, p, b, 0);
    if (r < 0)
        return -1;
    if (r > 0)
        did(rep, "created");
    if (p->cors[0] == '\0') {
        snprintf(rep->note, sizeof(rep->note), "no CORS: ALLOWED_ORIGINS is empty");
    } else {
        r = apply(c, b, S3_GET_BUCKET_CORS, S3_PUT_BUCKET_CORS, p->cors);
        if (r < 0)
            return -1;
        if (r > 0)
            did(rep, "cors set");
    }
    r = apply(c, b, S3_GET_BUCKET_LIFECYCLE, S3_PUT_BUCKET_LIFECYCLE, p->lifecycle);
    if (r < 0)
        return -1;
    if (r > 0)
        did(rep, "lifecycle set");
    return 0;
}

/* 1 when the Object Lock configuration `cur` has the default retention of `cfg`. Compared by
 * field, not by canonical form: servers add what was not sent (moto a <Years>0</Years>). */
static int lock_same(const char *cur, const rd_config *cfg)
{
    char mode[32], days[16], years[16];
    size_t n = strlen(cur);
    if (s3wire_xml_text(cur, n, "Mode", mode, sizeof(mode)) < 0 ||
        s3wire_xml_text(cur, n, "Days", days, sizeof(days)) < 0)
        return 0;
    if (s3wire_xml_text(cur, n, "Years", years, sizeof(years)) < 0)
        years[0] = '\0';
    return strcasecmp(mode, cfg->object_lock_mode) == 0 &&
           strtol(days, NULL, 10) == cfg->object_lock_default_days &&
           (years[0] == '\0' || strtol(years, NULL, 10) == 0);
}

static int init_masters(s3_client *c, const plan *p, report *rep)
{
    const rd_config *cfg = p->cfg;
    const char *b = cfg->s3_bucket_masters;
    int r = ensure(c, p, b, 1);
    if (r < 0)
        return -1;
    if (r > 0)
        did(rep, "created with Object Lock");
    if (p->lock[0] == '\0') {
        snprintf(rep->note, sizeof(rep->note),
                 "no default retention: OBJECT_LOCK_DEFAULT_DAYS is 0");
        return 0;
    }
    static char cur[S3BUCKET_MAX_DOC];
    char enabled[32] = "";
    int have = read_config(c, b, S3_GET_OBJECT_LOCK, cur, sizeof(cur));
    if (have < 0)
        return -1;
    if (have)
        s3wire_xml_text(cur, strlen(cur), "ObjectLockEnabled", enabled, sizeof(enabled));
    if (strcmp(enabled, "Enabled") != 0) {
        fprintf(stderr,
                "reeld buckets init: bucket '%s' (S3_BUCKET_MASTERS) exists without Object Lock, "
                "which S3 cannot turn on for an existing bucket: set S3_BUCKET_MASTERS to a new "
                "bucket name (this command creates it with Object Lock) or "
                "OBJECT_LOCK_DEFAULT_DAYS=0\n",
                b);
        return -1;
    }
    if (lock_same(cur, cfg))
        return 0;
    s3_op op = {
        .method = S3_PUT_OBJECT_LOCK, .bucket = b, .body = p->lock, .body_len = strlen(p->lock)};
    if (s3_call(c, &op) < 0)
        return fail(&op);
    char what[96];
    snprintf(what, sizeof(what), "object lock set (%s, %d days)",
             strcmp(cfg->object_lock_mode, "governance") == 0 ? "GOVERNANCE" : "COMPLIANCE",
             cfg->object_lock_default_days);
    did(rep, what);
    return 0;
}

static int init_previews(s3_client *c, const plan *p, report *rep)
{
    int r = ensure(c, p, p->cfg->s3_bucket_previews, 0);
    if (r < 0)
        return -1;
    if (r > 0)
        did(rep, "created");
    return 0;
}

static int make_plan(plan *p, const rd_config *cfg, int expire_days)
{
    memset(p, 0, sizeof(*p));
    p->cfg = cfg;
    p->expire_days = expire_days;
    p->create_len = s3bucket_create_xml(p->create, sizeof(p->create), cfg->s3_region);
    if (p->create_len < 0)
        return usage("S3_REGION is not a region name");
    const char *o = cfg->allowed_origins ? cfg->allowed_origins : "";
    if (strspn(o, " ,\t") < strlen(o) &&
        s3bucket_cors_xml(p->cors, sizeof(p->cors), o, BUCKETS_CORS_MAX_AGE) < 0)
        return usage("ALLOWED_ORIGINS holds a control character or is too long");
    if (s3bucket_lifecycle_xml(p->lifecycle, sizeof(p->lifecycle), BUCKETS_LIFECYCLE_RULE,
                               BUCKETS_ABORT_DAYS, expire_days) < 0)
        return usage("--staging-expire-days: not a number of days");
    if (cfg->object_lock_default_days > 0 &&
        s3bucket_object_lock_xml(p->lock, sizeof(p->lock), cfg->object_lock_mode,
                                 cfg->object_lock_default_days) < 0)
        return usage("OBJECT_LOCK_MODE must be governance or compliance");
    const char *st = cfg->s3_bucket_staging, *ma = cfg->s3_bucket_masters,
               *pr = cfg->s3_bucket_previews;
    if (!st || !ma || !pr || !*st || !*ma || !*pr)
        return usage("S3_BUCKET_STAGING, S3_BUCKET_MASTERS and S3_BUCKET_PREVIEWS must be set");
    if (!strcmp(st, ma) || !strcmp(st, pr) || !strcmp(ma, pr))
        return usage("S3_BUCKET_STAGING, S3_BUCKET_MASTERS and S3_BUCKET_PREVIEWS must name three "
                     "different buckets");
    return 0;
}

static int run(s3_client *c, const plan *p)
{
    static const char *const roles[] = {"staging", "masters", "previews"};
    int (*const steps[])(s3_client *, const plan *, report *) = {init_staging, init_masters,
                                                                 init_previews};
    const char *names[] = {p->cfg->s3_bucket_staging, p->cfg->s3_bucket_masters,
                           p->cfg->s3_bucket_previews};
    for (int i = 0; i < 3; i++) {
        report rep = {"", ""};
        if (steps[i](c, p, &rep) < 0)
            return 1;
        printf("%s bucket '%s': %s%s%s%s\n", roles[i], names[i],
               rep.done[0] ? rep.done : "unchanged", rep.note[0] ? " (" : "", rep.note,
               rep.note[0] ? ")" : "");
        fflush(stdout);
    }
    return 0;
}

static int run_plan(s3_client *c, void *arg)
{
    return run(c, arg);
}

int cmd_buckets(int argc, char **argv)
{
    char **rest = calloc((size_t)argc + 1, sizeof(char *));
    if (rest == NULL)
        return 1;
    int nrest = 0, expire_days = BUCKETS_EXPIRE_DAYS, status = 0;
    const char *verb = NULL;
    rest[nrest++] = argv[0];
    for (int i = 1; i < argc && status == 0; i++) {
        if (!strcmp(argv[i], "--staging-expire-days")) {
            char *end = NULL;
            long v = i + 1 < argc ? strtol(argv[i + 1], &end, 10) : -1;
            if (end == NULL || end == argv[i + 1] || *end != '\0' || v < 0 || v > 36500)
                status = usage("--staging-expire-days takes a number of days (0: never)");
            expire_days = (int)v;
            i++;
        } else if (!strncmp(argv[i], "--", 2)) {
            rest[nrest++] = argv[i]; /* a configuration flag, --name=value */
        } else if (verb == NULL) {
            verb = argv[i];
        } else {
            status = usage("too many arguments");
        }
    }
    if (status == 0 && (verb == NULL || strcmp(verb, "init") != 0))
        status = usage(verb ? "unknown operation (only init)" : "which operation? (init)");
    rd_config cfg;
    char err[512];
    if (status == 0 && config_load(&cfg, nrest, rest, err, sizeof(err)) < 0) {
        fprintf(stderr, "reeld buckets: %s\n", err);
        status = 2;
    }
    free(rest);
    if (status != 0)
        return status;
    log_set_level(cfg.log_level);
    if (cfg.s3_endpoint == NULL) {
        printf("S3_ENDPOINT is not set: the embedded object store keeps files in %s and needs no "
               "buckets\n",
               cfg.data_dir);
        return 0;
    }
    static plan p;
    if ((status = make_plan(&p, &cfg, expire_days)) != 0)
        return status;

    s3_config sc = {0};
    return s3cmd_with_client("reeld buckets init", &cfg, NULL, &sc, run_plan, &p, NULL);
}
