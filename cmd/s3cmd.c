/* `reeld s3`: a small operator and test tool over reeld's own S3 client (src/blob/s3.h), not
 * listed in --help. It runs one loop, creates the client the server would create from the same
 * S3_* settings, and drives it from the main thread through the blocking calls, as an encoder
 * thread does.
 *
 *   reeld s3 put BUCKET KEY FILE [--memory] [--content-type T]
 *   reeld s3 get BUCKET KEY FILE [--range START-END]      (FILE '-' is stdout)
 *   reeld s3 head|delete BUCKET KEY
 *   reeld s3 copy SRC_BUCKET SRC_KEY BUCKET KEY [--lock-days N]
 *   reeld s3 multipart BUCKET KEY FILE [--part-size BYTES]
 * and, for any of them: --ca-file PEM, --virtual-hosted, --attempts N, --timeout-ms N, and
 * --metrics (the client's reeld_s3_* metrics on stderr at the end, Prometheus text).
 *
 * Prints one line of results (etag=…, size=…) and exits 0; on failure prints the client's
 * one-sentence message and exits 1; 2 for a usage error. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "src/blob/blob.h"
#include "src/blob/s3.h"
#include "cmd/cmd.h"
#include "src/net/tls.h"
#include "src/rt/actor.h"
#include "src/rt/log.h"
#include "src/rt/metrics.h"
#include "src/rt/runtime.h"

#define S3CMD_READ_CHUNK (8u << 20) /* bytes per ranged GET when downloading */
#define S3CMD_MIN_PART   (5u << 20) /* S3's smallest part but the last */

typedef struct s3cmd_args {
    const char *verb;
    const char *pos[4];
    int npos;
    const char *ca_file, *content_type, *range;
    int memory, virtual_hosted, attempts, lock_days, metrics;
    long timeout_ms;
    uint64_t part_size;
} s3cmd_args;

static int usage(const char *why)
{
    fprintf(stderr,
            "reeld s3: %s\nusage: reeld s3 put|get|head|delete|copy|multipart BUCKET KEY [...]\n",
            why);
    return 2;
}

static int parse(int argc, char **argv, s3cmd_args *a, char **rest, int *nrest)
{
    memset(a, 0, sizeof(*a));
    a->part_size = S3CMD_MIN_PART;
    *nrest = 0;
    rest[(*nrest)++] = argv[0];
    for (int i = 1; i < argc; i++) {
        const char *s = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(s, "--memory")) {
            a->memory = 1;
        } else if (!strcmp(s, "--virtual-hosted")) {
            a->virtual_hosted = 1;
        } else if (!strcmp(s, "--metrics")) {
            a->metrics = 1;
        } else if (!strcmp(s, "--ca-file") || !strcmp(s, "--content-type") ||
                   !strcmp(s, "--range") || !strcmp(s, "--attempts") ||
                   !strcmp(s, "--timeout-ms") || !strcmp(s, "--lock-days") ||
                   !strcmp(s, "--part-size")) {
            if (v == NULL)
                return usage("an option needs a value");
            i++;
            if (!strcmp(s, "--ca-file"))
                a->ca_file = v;
            else if (!strcmp(s, "--content-type"))
                a->content_type = v;
            else if (!strcmp(s, "--range"))
                a->range = v;
            else if (!strcmp(s, "--attempts"))
                a->attempts = atoi(v);
            else if (!strcmp(s, "--timeout-ms"))
                a->timeout_ms = atol(v);
            else if (!strcmp(s, "--lock-days"))
                a->lock_days = atoi(v);
            else
                a->part_size = strtoull(v, NULL, 10);
        } else if (!strncmp(s, "--", 2)) {
            rest[(*nrest)++] = argv[i]; /* a configuration flag */
        } else if (a->verb == NULL) {
            a->verb = s;
        } else if (a->npos < 4) {
            a->pos[a->npos++] = s;
        } else {
            return usage("too many arguments");
        }
    }
    if (a->verb == NULL)
        return usage("which operation?");
    int want = !strcmp(a->verb, "head") || !strcmp(a->verb, "delete") ? 2
               : !strcmp(a->verb, "copy")                             ? 4
               : !strcmp(a->verb, "put") || !strcmp(a->verb, "get") || !strcmp(a->verb, "multipart")
                   ? 3
                   : -1;
    if (want < 0)
        return usage("unknown operation");
    if (a->npos != want)
        return usage("wrong number of arguments");
    if (a->part_size < S3CMD_MIN_PART)
        return usage("--part-size must be at least 5242880");
    return 0;
}

static int fail(const s3_op *op)
{
    fprintf(stderr, "reeld s3: %s\n", op->message[0] ? op->message : strerror(-op->res));
    return 1;
}

static int open_body(const char *path, int *fd, uint64_t *size)
{
    *fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (*fd < 0 || fstat(*fd, &st) < 0) {
        fprintf(stderr, "reeld s3: cannot read %s (%s)\n", path, strerror(errno));
        if (*fd >= 0)
            close(*fd);
        return -1;
    }
    *size = (uint64_t)st.st_size;
    return 0;
}

static int do_put(s3_client *c, const s3cmd_args *a)
{
    int fd;
    uint64_t size;
    if (open_body(a->pos[2], &fd, &size) < 0)
        return 1;
    s3_op op = {
        .method = S3_PUT, .bucket = a->pos[0], .key = a->pos[1], .content_type = a->content_type};
    char *mem = NULL;
    if (a->memory) {
        mem = malloc(size ? size : 1);
        if (mem == NULL || pread(fd, mem, size, 0) != (ssize_t)size) {
            fprintf(stderr, "reeld s3: cannot read %s\n", a->pos[2]);
            free(mem);
            close(fd);
            return 1;
        }
        op.body = mem;
        op.body_len = size;
    } else {
        op.from_file = 1;
        op.body_fd = fd;
        op.file_len = size;
    }
    int r = s3_call(c, &op);
    free(mem);
    close(fd);
    if (r < 0)
        return fail(&op);
    printf("etag=%s attempts=%d\n", op.etag, op.attempts);
    return 0;
}

static int do_head(s3_client *c, const s3cmd_args *a, s3_op *op)
{
    *op = (s3_op){.method = S3_HEAD, .bucket = a->pos[0], .key = a->pos[1]};
    return s3_call(c, op);
}

static int do_get(s3_client *c, const s3cmd_args *a)
{
    uint64_t from = 0, to = 0;
    s3_op op;
    if (a->range != NULL) {
        char *end;
        from = strtoull(a->range, &end, 10);
        if (*end != '-' || (to = strtoull(end + 1, NULL, 10)) < from)
            return usage("--range must be START-END (inclusive)");
        to++;
    } else {
        if (do_head(c, a, &op) < 0)
            return fail(&op);
        to = (uint64_t)op.object_size;
    }
    FILE *out = strcmp(a->pos[2], "-") ? fopen(a->pos[2], "wb") : stdout;
    if (out == NULL) {
        fprintf(stderr, "reeld s3: cannot write %s (%s)\n", a->pos[2], strerror(errno));
        return 1;
    }
    char *buf = malloc(S3CMD_READ_CHUNK);
    char msg[512];
    int status = 0;
    uint64_t total = 0;
    while (buf != NULL && from < to) {
        size_t want = to - from < S3CMD_READ_CHUNK ? (size_t)(to - from) : S3CMD_READ_CHUNK;
        size_t got;
        int r = s3_get_range(c, a->pos[0], a->pos[1], from, buf, want, &got, msg, sizeof(msg));
        if (r < 0) {
            fprintf(stderr, "reeld s3: %s\n", msg);
            status = 1;
            break;
        }
        fwrite(buf, 1, got, out);
        total += got;
        from += got;
        if (got < want)
            break; /* the object ends before the range */
    }
    free(buf);
    if (out != stdout)
        fclose(out);
    if (status == 0)
        fprintf(stderr, "bytes=%llu\n", (unsigned long long)total);
    return status;
}

/* Through the blob interface (src/blob/blob.h), which owns reeld's multipart logic. */
/* The multipart verb's store, over the command's client: closed once the loop has stopped
 * (after_run). */
static blob_aio *mp_store;

static int do_multipart(s3_client *c, const s3cmd_args *a)
{
    blob_store *b = NULL;
    blob_info info;
    char msg[512] = "";
    int r = blob_aio_open_s3_client(c, s3_client_loop(c), &mp_store);
    if (r < 0) {
        fprintf(stderr, "reeld s3: cannot start the store (%s)\n", strerror(-r));
        return 1;
    }
    blob_aio_set_parts(mp_store, 0, a->part_size);
    b = blob_open(mp_store);
    r = blob_put_file(b, a->pos[0], a->pos[1], a->pos[2], a->content_type, &info, msg, sizeof(msg));
    blob_close(b);
    if (r < 0) {
        fprintf(stderr, "reeld s3: %s\n", msg);
        return 1;
    }
    printf("etag=%s size=%lld\n", info.etag, (long long)info.size);
    return 0;
}

static int run(s3_client *c, const s3cmd_args *a)
{
    s3_op op;
    if (!strcmp(a->verb, "put"))
        return do_put(c, a);
    if (!strcmp(a->verb, "get"))
        return do_get(c, a);
    if (!strcmp(a->verb, "multipart"))
        return do_multipart(c, a);
    if (!strcmp(a->verb, "head")) {
        if (do_head(c, a, &op) < 0)
            return fail(&op);
        printf("size=%lld etag=%s content_type=%s\n", (long long)op.object_size, op.etag,
               op.content_type_out);
        return 0;
    }
    if (!strcmp(a->verb, "delete"))
        op = (s3_op){.method = S3_DELETE, .bucket = a->pos[0], .key = a->pos[1]};
    else
        op = (s3_op){.method = S3_COPY,
                     .bucket = a->pos[2],
                     .key = a->pos[3],
                     .copy_bucket = a->pos[0],
                     .copy_key = a->pos[1],
                     .lock_days = a->lock_days};
    if (s3_call(c, &op) < 0)
        return fail(&op);
    printf("status=%d etag=%s\n", op.status, op.etag);
    return 0;
}

static int run_args(s3_client *c, void *arg)
{
    return run(c, arg);
}

static int print_s3_metrics;

static void after_run(void)
{
    blob_aio_close(mp_store);
    mp_store = NULL;
    if (!print_s3_metrics)
        return;
    static char text[1 << 16];
    prom_writer w;
    prom_init(&w, text, sizeof(text));
    metrics_write(&w);
    text[w.len < sizeof(text) ? w.len : sizeof(text) - 1] = '\0';
    for (char *line = strtok(text, "\n"); line != NULL; line = strtok(NULL, "\n"))
        if (strncmp(line, "reeld_s3_", 9) == 0)
            fprintf(stderr, "%s\n", line);
}

int cmd_s3(int argc, char **argv)
{
    s3cmd_args a;
    char **rest = calloc((size_t)argc + 1, sizeof(char *));
    int nrest = 0;
    if (rest == NULL)
        return 1;
    int status = parse(argc, argv, &a, rest, &nrest);
    rd_config cfg;
    char err[512];
    if (status == 0 && config_load(&cfg, nrest, rest, err, sizeof(err)) < 0) {
        fprintf(stderr, "reeld s3: %s\n", err);
        status = 2;
    }
    free(rest);
    if (status != 0)
        return status;
    log_set_level(cfg.log_level);
    if (cfg.s3_endpoint == NULL) {
        fprintf(stderr, "reeld s3: set S3_ENDPOINT (and the S3_* keys) to reach object storage\n");
        return 2;
    }
    s3_config sc = {.virtual_hosted = a.virtual_hosted,
                    .timeout_ms = a.timeout_ms > 0 ? (uint32_t)a.timeout_ms : 0,
                    .max_attempts = a.attempts};
    print_s3_metrics = a.metrics;
    return s3cmd_with_client("reeld s3", &cfg, a.ca_file, &sc, run_args, &a, after_run);
}

int s3cmd_with_client(const char *who, const rd_config *cfg, const char *ca_file, s3_config *sc,
                      int (*fn)(s3_client *c, void *arg), void *arg, void (*after)(void))
{
    char err[512];
    tls_anchors anchors = {0};
    int tls = strncmp(cfg->s3_endpoint, "https://", 8) == 0;
    if (tls &&
        tls_anchors_load(&anchors, ca_file ? ca_file : TLS_SYSTEM_CA_FILE, err, sizeof(err)) < 0) {
        fprintf(stderr, "%s: %s\n", who, err);
        return 1;
    }
    rd_runtime rt;
    int r = rt_start(&rt, 1);
    if (r < 0) {
        fprintf(stderr, "%s: cannot start a loop (%s)\n", who, strerror(-r));
        tls_anchors_free(&anchors);
        return 1;
    }
    sc->endpoint = cfg->s3_endpoint;
    sc->region = cfg->s3_region;
    sc->access_key_id = cfg->s3_access_key_id;
    sc->secret_access_key = cfg->s3_secret_access_key;
    sc->anchors = tls ? &anchors : NULL;
    s3_client *c = NULL;
    int status;
    if (s3_client_create(&c, rt.loops[0], sc, err, sizeof(err)) < 0) {
        fprintf(stderr, "%s: %s\n", who, err);
        status = 1;
    } else {
        status = fn(c, arg);
    }
    rt_stop(&rt, 2000000000ull);
    if (after != NULL)
        after();
    s3_client_destroy(c);
    actor_free_all();
    metrics_free_all();
    tls_anchors_free(&anchors);
    return status;
}
