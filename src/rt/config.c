/* The settings table and its validation. One row per setting: adding a setting is one field in
 * rd_config and one row here. */
#include "src/rt/config.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "src/rt/log.h"

typedef enum kind {
    K_STR,    /* any text */
    K_SECRET, /* text never printed; `min` = minimum length when set */
    K_INT,    /* integer in [min, max] */
    K_BYTES,  /* integer with an optional K/M/G/T suffix (powers of 1024) */
    K_ENUM,   /* one of the '|'-separated words in `choices` */
    K_ADDR,   /* host:port or [v6]:port */
    K_URL,    /* starts with one of the '|'-separated prefixes in `choices` */
    K_KEYS,   /* comma-separated org:key pairs; `min` = minimum length of each key */
    K_LIST,   /* comma-separated integers (GPU indexes) */
} kind;

typedef struct setting {
    const char *env;
    const char *alias; /* a second variable name, or NULL */
    const char *flag;  /* --flag, or NULL */
    kind kind;
    size_t off;
    const char *def; /* default as text; NULL = unset */
    int64_t min, max;
    const char *choices;
    const char *help;
} setting;

#define OFF(f) offsetof(rd_config, f)

static const setting settings[] = {
    {"REELD_LISTEN", NULL, "--listen", K_ADDR, OFF(listen), "127.0.0.1:8080", 0, 0, NULL,
     "address the HTTP listener binds (one SO_REUSEPORT socket per loop)"},
    {"REELD_TLS_CERT", NULL, NULL, K_STR, OFF(tls_cert), NULL, 0, 0, NULL,
     "PEM certificate chain (leaf first): with REELD_TLS_KEY the listener speaks HTTPS only; "
     "SIGHUP reloads both"},
    {"REELD_TLS_KEY", NULL, NULL, K_STR, OFF(tls_key), NULL, 0, 0, NULL,
     "PEM private key of REELD_TLS_CERT (RSA or EC)"},
    {"REELD_HTTP_REDIRECT_LISTEN", NULL, NULL, K_ADDR, OFF(http_redirect_listen), NULL, 0, 0, NULL,
     "with TLS: a plain-HTTP address that answers every request with 308 to https://"},
    {"REELD_CORES", NULL, "--cores", K_INT, OFF(cores), NULL, 1, 1024, NULL,
     "event loops to run, one per core (default: every online core)"},
    {"REELD_ROLES", NULL, "--roles", K_STR, OFF(roles), "api,edge,worker", 0, 0, NULL,
     "what `serve` runs, comma-separated: api, edge, worker"},
    {"REELD_CPU_ENCODERS", NULL, NULL, K_INT, OFF(cpu_encoders), "1", 1, 64, NULL,
     "worker without NVENC: libx264 jobs at once (each uses every core)"},
    {"REELD_DATA_DIR", NULL, "--data-dir", K_STR, OFF(data_dir), "./reeld-data", 0, 0, NULL,
     "embedded mode: blobs, SQLite database, cache"},
    {"REELD_LOG", NULL, "--log", K_ENUM, OFF(log_level), "info", 0, 0, "debug|info|warn|error",
     "lowest level logged (JSON lines on stderr)"},
    {"REELD_DRAIN_SEC", NULL, NULL, K_INT, OFF(drain_sec), "10", 0, 3600, NULL,
     "on SIGINT/SIGTERM, seconds to let in-flight work finish"},
    {"REELD_HTTP_HEADER_TIMEOUT_MS", NULL, NULL, K_INT, OFF(http_header_timeout_ms), "10000", 10,
     3600000, NULL, "HTTP: a request head must arrive within this (else 408)"},
    {"REELD_HTTP_IDLE_TIMEOUT_MS", NULL, NULL, K_INT, OFF(http_idle_timeout_ms), "60000", 10,
     86400000, NULL, "HTTP: idle keep-alive connections close after this"},
    {"REELD_HTTP_MAX_CONNS", NULL, NULL, K_INT, OFF(http_max_conns), "10000", 1, 1000000, NULL,
     "HTTP: open connections, all loops together (beyond: 503)"},
    {"REELD_HTTP_MAX_CONNS_PER_CLIENT", NULL, NULL, K_INT, OFF(http_max_conns_per_client), "512", 0,
     1000000, NULL, "HTTP: open connections from one client address, all loops (0: no bound)"},
    {"REELD_HTTP_BODY_MIN_RATE", NULL, NULL, K_INT, OFF(http_body_min_rate), "1024", 0, 1 << 30,
     NULL, "HTTP: bytes per second a request body must average over each 10 s (else 408; 0: off)"},
    {"REELD_UPLOAD_SLOTS_PER_ORG", NULL, NULL, K_INT, OFF(upload_slots_per_org), "64", 1, 256, NULL,
     "embedded /blob/: PUTs in progress at once for one org (beyond: 503 SlowDown)"},
    {"REELD_UPLOAD_SLOTS_PER_CLIENT", NULL, NULL, K_INT, OFF(upload_slots_per_client), "64", 1, 256,
     NULL, "embedded /blob/: PUTs in progress at once from one client address"},
    {"REELD_SSE_MAX_PER_ORG", NULL, NULL, K_INT, OFF(sse_max_per_org), "32", 1, 256, NULL,
     "GET /api/assets/{id}/events: live streams open at once for one org, per node (beyond: 429)"},
    {"POSTGRES_URL", NULL, NULL, K_URL, OFF(postgres_url), NULL, 0, 0, "postgres://|postgresql://",
     "fleet store (unset: SQLite in the data directory)"},
    {"REDIS_URL", "VALKEY_URL", NULL, K_URL, OFF(redis_url), NULL, 0, 0, "redis://|rediss://",
     "fleet queue on Redis Streams (unset: in-process queue)"},
    {"REELD_PG_POOL", NULL, NULL, K_INT, OFF(pg_pool), "4", 1, 64, NULL,
     "PostgreSQL connections per node"},
    {"REELD_NODE_NAME", NULL, NULL, K_STR, OFF(node_name), NULL, 0, 0, NULL,
     "this node's name as lease owner and stream consumer (default: hostname:pid)"},
    {"REELD_JOB_LEASE_MS", NULL, NULL, K_INT, OFF(job_lease_ms), "30000", 50, 86400000, NULL,
     "a claimed job's lease, renewed while the work reports progress"},
    {"REELD_JOB_RETRY_BASE_MS", NULL, NULL, K_INT, OFF(job_retry_base_ms), "2000", 1, 86400000,
     NULL, "first retry delay of a failed job (doubling, jittered)"},
    {"REELD_JOB_RETRY_MAX_MS", NULL, NULL, K_INT, OFF(job_retry_max_ms), "600000", 1, 86400000,
     NULL, "longest retry delay"},
    {"REELD_JOB_POLL_MS", NULL, NULL, K_INT, OFF(job_poll_ms), "250", 5, 60000, NULL,
     "how often the dispatcher looks for due jobs without a wake-up"},
    {"S3_ENDPOINT", NULL, NULL, K_URL, OFF(s3_endpoint), NULL, 0, 0, "http://|https://",
     "S3-compatible object storage (unset: files in the data directory)"},
    {"S3_REGION", NULL, NULL, K_STR, OFF(s3_region), "us-east-1", 0, 0, NULL, "S3 region"},
    {"S3_ACCESS_KEY_ID", NULL, NULL, K_STR, OFF(s3_access_key_id), NULL, 0, 0, NULL,
     "S3 access key id"},
    {"S3_SECRET_ACCESS_KEY", NULL, NULL, K_SECRET, OFF(s3_secret_access_key), NULL, 1, 0, NULL,
     "S3 secret key"},
    {"S3_BUCKET_STAGING", NULL, NULL, K_STR, OFF(s3_bucket_staging), "staging", 0, 0, NULL,
     "bucket clients upload into"},
    {"S3_BUCKET_MASTERS", NULL, NULL, K_STR, OFF(s3_bucket_masters), "masters", 0, 0, NULL,
     "bucket of promoted, immutable masters"},
    {"S3_BUCKET_PREVIEWS", NULL, NULL, K_STR, OFF(s3_bucket_previews), "previews", 0, 0, NULL,
     "bucket of HLS renditions"},
    {"OBJECT_LOCK_DEFAULT_DAYS", NULL, NULL, K_INT, OFF(object_lock_default_days), "0", 0, 36500,
     NULL, "Object Lock retention of masters in days (0: none)"},
    {"OBJECT_LOCK_MODE", NULL, NULL, K_ENUM, OFF(object_lock_mode), "compliance", 0, 0,
     "governance|compliance", "Object Lock mode of masters' retention"},
    {"REELD_PUBLIC_URL", NULL, NULL, K_URL, OFF(public_url), NULL, 0, 0, "http://|https://",
     "base URL clients reach this listener at (default: http(s)://REELD_LISTEN)"},
    {"REELD_MAX_UPLOAD_BYTES", NULL, NULL, K_BYTES, OFF(max_upload_bytes), "5G", 1, INT64_MAX, NULL,
     "largest upload accepted (suffixes K, M, G, T)"},
    {"REELD_MULTIPART_THRESHOLD", NULL, NULL, K_BYTES, OFF(multipart_threshold), "64M", 5 << 20,
     INT64_MAX, NULL, "S3 mode: uploads larger than this go in parts"},
    {"REELD_PART_SIZE", NULL, NULL, K_BYTES, OFF(part_size), "16M", 5 << 20, 5ll << 30, NULL,
     "S3 mode: size of each upload part (5M to 5G)"},
    {"REELD_COPY_PART_SIZE", NULL, NULL, K_BYTES, OFF(copy_part_size), "5G", 5 << 20, 5ll << 30,
     NULL, "S3 mode: server-side copies (promote, clips) larger than this go in parts of it"},
    {"REELD_PRESIGN_EXPIRES", NULL, NULL, K_INT, OFF(presign_expires), "3600", 1, 604800, NULL,
     "seconds an upload or download URL stays valid"},
    {"UPLOAD_CONCURRENCY", NULL, NULL, K_INT, OFF(upload_concurrency), "8", 1, 256, NULL,
     "HLS upload: PUTs to S3_BUCKET_PREVIEWS in flight at once, per uploader"},
    {"EDGE_PUBLIC_BASE", NULL, NULL, K_URL, OFF(edge_public_base), NULL, 0, 0, "http://|https://",
     "base URL of playback links (default: this listener)"},
    {"EDGE_SIGNING_KEY", NULL, NULL, K_SECRET, OFF(edge_signing_key), NULL, 16, 0, NULL,
     "HMAC key of playback tokens, at least 16 bytes (unset: a random key in the data directory)"},
    {"EDGE_SIGNING_KEY_PREVIOUS", NULL, NULL, K_SECRET, OFF(edge_signing_key_previous), NULL, 16, 0,
     NULL, "key rotation: the former EDGE_SIGNING_KEY, still accepted during the grace window"},
    {"EDGE_KEY_GRACE_SEC", NULL, NULL, K_INT, OFF(edge_key_grace_sec), "86400", 0, 31 * 86400, NULL,
     "seconds after start that links signed with EDGE_SIGNING_KEY_PREVIOUS still play"},
    {"EDGE_LINK_TTL_SEC", NULL, NULL, K_INT, OFF(edge_link_ttl_sec), "21600", 60, 31 * 86400, NULL,
     "lifetime of a playback link from GET /api/assets/{id}/playback"},
    {"ALLOWED_ORIGINS", NULL, NULL, K_STR, OFF(allowed_origins), "", 0, 0, NULL,
     "CORS allowlist of the API and /blob/ uploads, comma-separated origins (* for any)"},
    {"REELD_MAX_JOBS_PER_ORG", NULL, NULL, K_INT, OFF(max_jobs_per_org), "100", 0, 1000000, NULL,
     "jobs queued or running at once for one org; a promote past it gets 429 (0: no bound)"},
    {"REELD_API_INFLIGHT_MAX", NULL, NULL, K_INT, OFF(api_inflight_max), "1024", 1, 1000000, NULL,
     "API writes (uploads, promotes, exports, clips, captions, deletes) one node holds in flight; "
     "past it 503 busy"},
    {"REELD_UPLOAD_EXPIRE_SEC", NULL, NULL, K_INT, OFF(upload_expire_sec), "86400", 0,
     INT32_MAX / 1000, NULL,
     "uploads not promoted this long after they were made are deleted from staging (0: never)"},
    {"REELD_CONSOLE", NULL, NULL, K_ENUM, OFF(console), "auto", 0, 0, "auto|on|off",
     "web console at GET / on API nodes (auto: on in embedded mode, off with S3_ENDPOINT)"},
    {"PLAYBACK_ALLOWED_ORIGINS", NULL, NULL, K_STR, OFF(playback_allowed_origins), "*", 0, 0, NULL,
     "CORS allowlist of the edge (/hls/): pages whose players may fetch (links are signed)"},
    {"RATE_LIMIT_MAX", NULL, NULL, K_INT, OFF(rate_limit_max), "600", 1, 1000000, NULL,
     "API requests per client per window"},
    {"RATE_LIMIT_WINDOW", NULL, NULL, K_INT, OFF(rate_limit_window), "60", 1, 86400, NULL,
     "API rate-limit window in seconds"},
    {"RL_PRESIGN_MAX", NULL, NULL, K_INT, OFF(rl_presign_max), "60", 1, 1000000, NULL,
     "upload presigns per client per window"},
    {"RL_PRESIGN_WINDOW", NULL, NULL, K_INT, OFF(rl_presign_window), "60", 1, 86400, NULL,
     "presign window in seconds"},
    {"RL_PROMOTE_MAX", NULL, NULL, K_INT, OFF(rl_promote_max), "30", 1, 1000000, NULL,
     "promotions per client per window"},
    {"RL_PROMOTE_WINDOW", NULL, NULL, K_INT, OFF(rl_promote_window), "60", 1, 86400, NULL,
     "promote window in seconds"},
    {"RL_AUTH_FAIL_MAX", NULL, NULL, K_INT, OFF(rl_auth_fail_max), "20", 1, 1000000, NULL,
     "failed authentications (401) per client address per window; then 429"},
    {"RL_AUTH_FAIL_WINDOW", NULL, NULL, K_INT, OFF(rl_auth_fail_window), "60", 1, 86400, NULL,
     "failed-authentication window in seconds"},
    {"FETCH_TIMEOUT_MS", NULL, NULL, K_INT, OFF(fetch_timeout_ms), "10000", 1, 600000, NULL,
     "edge: origin fetch timeout"},
    {"PREVIEW_PRESET", NULL, NULL, K_ENUM, OFF(preview_preset), "auto", 0, 0,
     "auto|1080p|720p|480p", "HLS ladder (auto: 1080p on NVENC, 480p on CPU)"},
    {"HLS_SEGMENT_SEC", NULL, NULL, K_INT, OFF(hls_segment_sec), "4", 1, 30, NULL,
     "HLS segment duration in seconds"},
    {"HLS_SEGMENT_FORMAT", NULL, NULL, K_ENUM, OFF(hls_segment_format), "ts", 0, 0, "ts|fmp4",
     "HLS segments: MPEG-TS, or fragmented MP4 behind an init segment (EXT-X-MAP)"},
    {"ENCODER", NULL, NULL, K_ENUM, OFF(encoder), "auto", 0, 0, "auto|nvenc|x264",
     "video encoder (auto: NVENC when a GPU has it, else libx264)"},
    {"GPU_DEVICES", NULL, NULL, K_LIST, OFF(gpu_devices), "", 0, 0, NULL,
     "GPU indexes to use, comma-separated (empty: all)"},
    {"NVENC_SESSIONS_PER_GPU", NULL, NULL, K_INT, OFF(nvenc_sessions_per_gpu), "8", 1, 256, NULL,
     "most NVENC sessions opened per GPU"},
    {"REELD_MAX_DURATION_SEC", NULL, NULL, K_INT, OFF(max_duration_sec), "21600", 1, 2000000000,
     NULL, "transcode: a longer master (by its header or its timestamps) fails"},
    {"REELD_MAX_FRAME_PIXELS", NULL, NULL, K_INT, OFF(max_frame_pixels), "35389440", 1, INT_MAX,
     NULL, "transcode: a master with bigger pictures fails (default 8192x4320)"},
    {"STORYBOARD_INTERVAL_SEC", NULL, NULL, K_INT, OFF(storyboard_interval_sec), "0", -1, 3600,
     NULL,
     "transcode: seconds between storyboard tiles (0: from the duration, at most ~200; -1: none)"},
    {"MP4_DOWNLOAD", NULL, NULL, K_ENUM, OFF(mp4_download), "off", 0, 0, "on|off",
     "transcode: also download.mp4 (top rung remuxed, moov first) for every job"},
    {"CACHE_DIR", NULL, NULL, K_STR, OFF(cache_dir), "", 0, 0, NULL,
     "edge disk cache (empty: DATA_DIR/cache)"},
    {"CACHE_MAX_BYTES", NULL, NULL, K_BYTES, OFF(cache_max_bytes), "10G", 1 << 20, INT64_MAX, NULL,
     "edge cache size bound (suffixes K, M, G, T)"},
    {"WEBHOOK_ALLOW_PRIVATE", NULL, NULL, K_INT, OFF(webhook_allow_private), "0", 0, 1, NULL,
     "webhooks: 1 allows endpoints on loopback, private and link-local addresses"},
    {"WEBHOOK_SECRET_GRACE_SEC", NULL, NULL, K_INT, OFF(webhook_secret_grace_sec), "86400", 0,
     31 * 86400, NULL, "webhooks: seconds the secret before a rotation still signs (a second v1)"},
    {"WEBHOOK_TIMEOUT_MS", NULL, NULL, K_INT, OFF(webhook_timeout_ms), "10000", 100, 600000, NULL,
     "webhooks: one delivery's deadline (connect, send, answer)"},
    {"WEBHOOK_MAX_ATTEMPTS", NULL, NULL, K_INT, OFF(webhook_max_attempts), "60", 1, 1000, NULL,
     "webhooks: attempts of one event before it is dead (60: retries span more than 24 h)"},
    {"WEBHOOK_RETRY_BASE_MS", NULL, NULL, K_INT, OFF(webhook_retry_base_ms), "30000", 1, 86400000,
     NULL, "webhooks: first retry delay (doubling, jittered)"},
    {"WEBHOOK_RETRY_MAX_MS", NULL, NULL, K_INT, OFF(webhook_retry_max_ms), "3600000", 1, 86400000,
     NULL, "webhooks: longest retry delay"},
    {"WEBHOOK_WORKERS", NULL, NULL, K_INT, OFF(webhook_workers), "4", 0, 64, NULL,
     "webhooks: deliveries in flight at once on this node (0: this node delivers none)"},
    {"REELD_API_KEYS", NULL, NULL, K_KEYS, OFF(api_keys), NULL, 16, 0, NULL,
     "static API keys, comma-separated org:key pairs, each key at least 16 bytes"},
    {"JWT_SECRET", NULL, NULL, K_SECRET, OFF(jwt_secret), NULL, 32, 0, NULL,
     "HS256 secret for bearer JWTs, at least 32 bytes"},
};

#define NSETTINGS (sizeof(settings) / sizeof(settings[0]))

/* `name`: the variable the value came from (a setting's alias names itself). */
static int bad(char *err, size_t errlen, const char *name, const char *fmt, ...)
{
    char what[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    snprintf(err, errlen, "%s: %s", name, what);
    return -EINVAL;
}

static int parse_int(const char *v, int64_t *out)
{
    char *end;
    errno = 0;
    long long n = strtoll(v, &end, 10);
    if (errno != 0 || end == v || *end != '\0')
        return -EINVAL;
    *out = n;
    return 0;
}

static int one_of(const char *v, const char *choices, int prefix)
{
    const char *p = choices;
    while (*p) {
        const char *e = strchr(p, '|');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        if (prefix ? strncmp(v, p, n) == 0 && v[n] != '\0' : strlen(v) == n && !strncmp(v, p, n))
            return 1;
        p += n + (e != NULL);
    }
    return 0;
}

static int valid_addr(const char *v)
{
    const char *colon = strrchr(v, ':');
    if (colon == NULL || colon == v)
        return 0;
    if (v[0] == '[' && colon[-1] != ']')
        return 0;
    int64_t port;
    return parse_int(colon + 1, &port) == 0 && port >= 1 && port <= 65535;
}

/* org:key[,org:key...]; both parts non-empty, no spaces. 1 when valid; 0 when malformed; -1
 * when a key is shorter than `min` bytes (its org in `org`: the line names it, never the key). */
static int valid_keys(const char *v, int64_t min, char *org, size_t orgcap)
{
    const char *p = v;
    while (*p) {
        const char *comma = strchr(p, ',');
        size_t n = comma ? (size_t)(comma - p) : strlen(p);
        const char *colon = memchr(p, ':', n);
        if (colon == NULL || colon == p || colon == p + n - 1 || memchr(p, ' ', n) ||
            (comma != NULL && comma[1] == '\0')) /* a trailing comma, as a doubled one */
            return 0;
        if ((int64_t)(p + n - colon - 1) < min) {
            snprintf(org, orgcap, "%.*s", (int)(colon - p), p);
            return -1;
        }
        p += n + (comma != NULL);
    }
    return *v != '\0';
}

static int valid_list(const char *v)
{
    for (const char *p = v; *p; p++)
        if (!(*p >= '0' && *p <= '9') && !(*p == ',' && p != v && p[1] != '\0' && p[1] != ','))
            return 0;
    return 1;
}

static int apply(rd_config *cfg, const setting *s, const char *name, const char *v, char *err,
                 size_t errlen)
{
    char *field = (char *)cfg + s->off;
    int64_t n;
    switch (s->kind) {
    case K_STR:
        break;
    case K_SECRET:
        if (s->min > 0 && (int64_t)strlen(v) < s->min)
            return bad(err, errlen, name, "must be at least %lld bytes long", (long long)s->min);
        break;
    case K_INT:
        if (parse_int(v, &n) < 0 || n < s->min || n > s->max)
            return bad(err, errlen, name, "must be an integer from %lld to %lld (got '%s')",
                       (long long)s->min, (long long)s->max, v);
        *(int *)(void *)field = (int)n;
        return 0;
    case K_BYTES: {
        char *end;
        errno = 0;
        long long b = strtoll(v, &end, 10);
        int shift = 0;
        if (*end == 'K' || *end == 'k')
            shift = 10;
        else if (*end == 'M' || *end == 'm')
            shift = 20;
        else if (*end == 'G' || *end == 'g')
            shift = 30;
        else if (*end == 'T' || *end == 't')
            shift = 40;
        if (shift)
            end++;
        if (errno || end == v || *end != '\0' || b < 0 || (shift && b > (INT64_MAX >> shift)) ||
            ((int64_t)b << shift) < s->min || ((int64_t)b << shift) > s->max)
            return bad(err, errlen, name,
                       "must be a size from %lld to %lld bytes such as 512M or 10G (got '%s')",
                       (long long)s->min, (long long)s->max, v);
        *(int64_t *)(void *)field = (int64_t)b << shift;
        return 0;
    }
    case K_ENUM:
        if (!one_of(v, s->choices, 0))
            return bad(err, errlen, name, "must be one of %s (got '%s')", s->choices, v);
        break;
    case K_ADDR:
        if (!valid_addr(v))
            return bad(err, errlen, name,
                       "must be host:port with a port from 1 to 65535 (got '%s')", v);
        break;
    case K_URL:
        if (!one_of(v, s->choices, 1))
            return bad(err, errlen, name, "must be a URL starting with %s (got '%s')", s->choices,
                       v);
        break;
    case K_KEYS: {
        char org[64];
        int ok = valid_keys(v, s->min, org, sizeof(org));
        if (ok == 0)
            return bad(err, errlen, name, "must be comma-separated org:key pairs");
        if (ok < 0)
            return bad(err, errlen, name,
                       "every key must be at least %lld bytes long (org '%s' has a shorter one)",
                       (long long)s->min, org);
        break;
    }
    case K_LIST:
        if (!valid_list(v))
            return bad(err, errlen, name,
                       "must be comma-separated GPU indexes such as 0,1 (got '%s')", v);
        break;
    }
    *(const char **)(void *)field = v;
    return 0;
}

int config_load(rd_config *cfg, int argc, char **argv, char *err, size_t errlen)
{
    memset(cfg, 0, sizeof(*cfg));
    for (size_t i = 0; i < NSETTINGS; i++) {
        const setting *s = &settings[i];
        if (s->def != NULL && apply(cfg, s, s->env, s->def, err, errlen) < 0)
            return -EINVAL; /* a default that does not validate is a bug caught by the tests */
    }
    long online = sysconf(_SC_NPROCESSORS_ONLN);
    cfg->cores = online > 0 ? (int)online : 1;

    for (size_t i = 0; i < NSETTINGS; i++) {
        const setting *s = &settings[i];
        const char *v = getenv(s->env);
        const char *va = s->alias ? getenv(s->alias) : NULL;
        if (v != NULL && va != NULL && strcmp(v, va) != 0) {
            snprintf(err, errlen, "%s and %s are both set and differ: set one", s->env, s->alias);
            return -EINVAL;
        }
        const char *name = v != NULL ? s->env : s->alias;
        if (v == NULL)
            v = va;
        if (v != NULL && *v == '\0' && s->def == NULL)
            continue; /* an empty optional setting is unset */
        if (v != NULL && apply(cfg, s, name, v, err, errlen) < 0)
            return -EINVAL;
    }

    for (int a = 1; a < argc; a++) {
        const char *arg = argv[a];
        const setting *s = NULL;
        const char *v = NULL;
        for (size_t i = 0; i < NSETTINGS && s == NULL; i++) {
            const char *f = settings[i].flag;
            size_t n = f ? strlen(f) : 0;
            if (f == NULL || strncmp(arg, f, n) != 0)
                continue;
            if (arg[n] == '=') {
                s = &settings[i];
                v = arg + n + 1;
            } else if (arg[n] == '\0') {
                s = &settings[i];
                if (a + 1 >= argc) {
                    snprintf(err, errlen, "%s needs a value", f);
                    return -EINVAL;
                }
                v = argv[++a];
            }
        }
        if (s == NULL) {
            snprintf(err, errlen, "unknown option '%s' (see reeld --help)", arg);
            return -EINVAL;
        }
        if (apply(cfg, s, s->env, v, err, errlen) < 0)
            return -EINVAL;
    }
    if (cfg->cores > online && online > 0) {
        snprintf(err, errlen, "REELD_CORES: must be at most %ld, the cores online (got %d)", online,
                 cfg->cores);
        return -EINVAL;
    }
    if (cfg->s3_endpoint != NULL &&
        (cfg->s3_access_key_id == NULL || cfg->s3_secret_access_key == NULL)) {
        snprintf(err, errlen,
                 "S3_ENDPOINT is set: S3_ACCESS_KEY_ID and S3_SECRET_ACCESS_KEY must be set too");
        return -EINVAL;
    }
    if (cfg->edge_signing_key_previous != NULL && cfg->edge_signing_key == NULL) {
        snprintf(err, errlen, "EDGE_SIGNING_KEY_PREVIOUS is set: EDGE_SIGNING_KEY must be set too");
        return -EINVAL;
    }
    if ((cfg->tls_cert == NULL) != (cfg->tls_key == NULL)) {
        snprintf(err, errlen, "REELD_TLS_CERT and REELD_TLS_KEY go together: set both or neither");
        return -EINVAL;
    }
    if (cfg->http_redirect_listen != NULL && cfg->tls_cert == NULL) {
        snprintf(err, errlen,
                 "REELD_HTTP_REDIRECT_LISTEN redirects to HTTPS: set REELD_TLS_CERT and "
                 "REELD_TLS_KEY too");
        return -EINVAL;
    }
    if (cfg->redis_url != NULL && cfg->postgres_url == NULL) {
        snprintf(err, errlen, "%s is set: the fleet queue needs POSTGRES_URL as its store",
                 getenv("REDIS_URL") == NULL && getenv("VALKEY_URL") != NULL ? "VALKEY_URL"
                                                                             : "REDIS_URL");
        return -EINVAL;
    }
    return 0;
}

void config_usage(FILE *out)
{
    fprintf(out, "Settings (environment; a flag overrides its variable):\n");
    for (size_t i = 0; i < NSETTINGS; i++) {
        const setting *s = &settings[i];
        char name[64];
        snprintf(name, sizeof(name), "%s%s%s", s->env, s->flag ? ", " : "", s->flag ? s->flag : "");
        const char *def = s->def && *s->def ? s->def : "-";
        if (s->kind == K_INT && s->def == NULL)
            def = "(all cores)";
        fprintf(out, "  %-34s %-16s %s\n", name, def, s->help);
    }
}

void config_log(const rd_config *cfg)
{
    log_info("config", KV_STR("listen", cfg->listen), KV_INT("cores", cfg->cores),
             KV_STR("data_dir", cfg->data_dir),
             KV_STR("store", cfg->postgres_url ? "postgres" : "sqlite"),
             KV_STR("queue", cfg->redis_url ? "redis" : "local"),
             KV_STR("blob", cfg->s3_endpoint ? "s3" : "fs"), KV_STR("encoder", cfg->encoder),
             KV_STR("preset", cfg->preview_preset), KV_INT("segment_sec", cfg->hls_segment_sec),
             KV_STR("edge_signing_key", cfg->edge_signing_key ? "set" : "unset"),
             KV_STR("edge_signing_key_previous", cfg->edge_signing_key_previous ? "set" : "unset"),
             KV_STR("jwt_secret", cfg->jwt_secret ? "set" : "unset"),
             KV_STR("api_keys", cfg->api_keys ? "set" : "unset"));
}

void config_listen_url(const rd_config *cfg, char *out, size_t cap)
{
    snprintf(out, cap, "%s://%s", cfg->tls_cert ? "https" : "http", cfg->listen);
}
