/* `reeld presign`: prints one presigned URL for a PUT or GET of an object, signed the way the
 * configured object storage checks it.
 *
 * With S3_ENDPOINT the URL is path-style on that endpoint (ENDPOINT/BUCKET/KEY), signed with
 * S3_ACCESS_KEY_ID / S3_SECRET_ACCESS_KEY for S3_REGION, byte for byte what botocore's
 * generate_presigned_url gives for the same inputs. Without it (embedded mode) the URL points
 * at reeld's own listener, REELD_PUBLIC_URL (or http://REELD_LISTEN) + /blob/BUCKET/KEY, signed
 * with the configured keys or, when none are set, with the local key pair of
 * src/blob/localkey.h. The URL is the one the API hands clients (src/urlsign.h).
 *
 * `--bench N` (not in --help) signs N URLs in a loop and prints the rate, for bench/presign. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cmd/cmd.h"
#include "src/urlsign.h"

#define MAX_KEY 1024 /* S3's limit on an object key, in bytes */

typedef struct presign_args {
    const char *method, *bucket, *key;
    int64_t expires, at;
    long bench; /* 0: print one URL */
} presign_args;

static int usage_error(const char *fmt, const char *what)
{
    fprintf(stderr, "reeld presign: ");
    fprintf(stderr, fmt, what);
    fputc('\n', stderr);
    return 2;
}

/* The full URL for one object into `out`. Returns its length or -errno. */
static int presign_url(urlsign *u, const presign_args *a, int64_t now, char *out, size_t cap)
{
    return urlsign_url(u, a->method, a->bucket, a->key, NULL, 0, now, a->expires, -1, out, cap);
}

static int valid_bucket(const char *b)
{
    size_t n = strlen(b);
    if (n == 0 || n > 255)
        return 0;
    for (const char *p = b; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '.' || *p == '-' || *p == '_'))
            return 0;
    return 1;
}

/* Takes --method/--bucket/--key/--expires/--at/--bench out of argv (both "--f V" and "--f=V");
 * what is left is kept in `rest` for config_load. Returns 0 or an exit status. */
static int parse_args(int argc, char **argv, presign_args *a, char **rest, int *nrest)
{
    static const char *const names[] = {"--method",  "--bucket", "--key",
                                        "--expires", "--at",     "--bench"};
    const char *val[6] = {0};
    *nrest = 0;
    rest[(*nrest)++] = argv[0];
    for (int i = 1; i < argc; i++) {
        int k = -1;
        const char *v = NULL;
        for (int j = 0; j < 6 && k < 0; j++) {
            size_t n = strlen(names[j]);
            if (strncmp(argv[i], names[j], n) != 0)
                continue;
            if (argv[i][n] == '=') {
                k = j;
                v = argv[i] + n + 1;
            } else if (argv[i][n] == '\0') {
                if (i + 1 >= argc)
                    return usage_error("%s needs a value", names[j]);
                k = j;
                v = argv[++i];
            }
        }
        if (k < 0) {
            rest[(*nrest)++] = argv[i];
            continue;
        }
        if (val[k] != NULL)
            return usage_error("%s given twice", names[k]);
        val[k] = v;
    }

    a->method = val[0];
    a->bucket = val[1];
    a->key = val[2];
    if (a->method == NULL)
        return usage_error("%s is required (GET or PUT)", "--method");
    if (strcmp(a->method, "GET") != 0 && strcmp(a->method, "PUT") != 0)
        return usage_error("--method must be GET or PUT (got '%s')", a->method);
    if (a->bucket == NULL)
        return usage_error("%s is required", "--bucket");
    if (!valid_bucket(a->bucket))
        return usage_error("--bucket must be 1 to 255 of A-Z a-z 0-9 . - _ (got '%s')", a->bucket);
    if (a->key == NULL || a->key[0] == '\0')
        return usage_error("%s is required and must not be empty", "--key");
    if (strlen(a->key) > MAX_KEY)
        return usage_error("--key is longer than %s bytes", "1024");

    a->expires = 3600;
    if (val[3] != NULL) {
        char *end;
        errno = 0;
        long long e = strtoll(val[3], &end, 10);
        if (errno || end == val[3] || *end || e < 1 || e > SIGV4_MAX_EXPIRES)
            return usage_error("--expires must be seconds from 1 to 604800 (got '%s')", val[3]);
        a->expires = e;
    }
    a->at = (int64_t)time(NULL);
    if (val[4] != NULL && sigv4_parse_date(val[4], strlen(val[4]), &a->at) < 0)
        return usage_error("--at must be a UTC time such as 20130524T000000Z (got '%s')", val[4]);
    a->bench = 0;
    if (val[5] != NULL) {
        char *end;
        errno = 0;
        a->bench = strtol(val[5], &end, 10);
        if (errno || end == val[5] || *end || a->bench < 1)
            return usage_error("--bench must be a positive count (got '%s')", val[5]);
    }
    return 0;
}

static double now_sec(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Signs `a->bench` URLs (a new key each time, as a server does) and prints the rate. */
static int bench(urlsign *u, const presign_args *a)
{
    char url[4 * MAX_KEY], key[MAX_KEY + 32];
    presign_args each = *a;
    each.key = key;
    unsigned long sink = 0;
    double start = now_sec();
    for (long i = 0; i < a->bench; i++) {
        snprintf(key, sizeof(key), "%s-%ld", a->key, i);
        int n = presign_url(u, &each, a->at, url, sizeof(url));
        if (n < 0) {
            fprintf(stderr, "reeld presign: %s\n", strerror(-n));
            return 1;
        }
        sink += (unsigned char)url[n - 1];
    }
    double secs = now_sec() - start;
    printf("presigns=%ld seconds=%.6f per_second=%.0f check=%lu\n", a->bench, secs,
           (double)a->bench / secs, sink);
    return 0;
}

int cmd_presign(int argc, char **argv)
{
    presign_args a;
    char **rest = calloc((size_t)argc + 1, sizeof(char *));
    int nrest;
    if (rest == NULL) {
        fprintf(stderr, "reeld presign: out of memory\n");
        return 1;
    }
    int status = parse_args(argc, argv, &a, rest, &nrest);
    rd_config cfg;
    char err[512] = "";
    if (status == 0 && config_load(&cfg, nrest, rest, err, sizeof(err)) < 0) {
        fprintf(stderr, "reeld presign: %s\n", err);
        status = 2;
    }
    free(rest);
    if (status != 0)
        return status;

    urlsign u;
    if (urlsign_init(&u, &cfg, err, sizeof(err)) < 0) {
        fprintf(stderr, "reeld presign: %s\n", err);
        return 1;
    }
    char url[4 * MAX_KEY];
    int r;
    if (a.bench > 0) {
        status = bench(&u, &a);
    } else if ((r = presign_url(&u, &a, a.at, url, sizeof(url))) < 0) {
        fprintf(stderr, "reeld presign: cannot sign the URL (%s)\n", strerror(-r));
        status = 1;
    } else {
        printf("%s\n", url);
    }
    urlsign_clear(&u);
    return status;
}
