/* Configuration: every setting reeld reads, from the environment and from command-line flags,
 * validated once at start.
 *
 * owns:  nothing it allocates: string values point into the environment, argv or static
 *        defaults, all of which outlive the process's work.
 * never: lets a bad value through to be discovered later; prints a secret (config_log shows
 *        only whether one is set).
 *
 * Names are the ones the platforms reeld replaces already use (POSTGRES_URL, S3_*, ...). A flag
 * overrides its variable. A bad value gives one line: "REELD_CORES: must be an integer from 1
 * to 2 (got 'x')". */
#ifndef REELD_RT_CONFIG_H
#define REELD_RT_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef struct rd_config {
    const char *listen;               /* REELD_LISTEN host:port */
    const char *tls_cert;             /* REELD_TLS_CERT: PEM chain; set: the listener is HTTPS */
    const char *tls_key;              /* REELD_TLS_KEY: its private key */
    const char *http_redirect_listen; /* REELD_HTTP_REDIRECT_LISTEN: plain HTTP, 308 to https */
    int cores;                        /* REELD_CORES: loops to run */
    const char *roles;                /* REELD_ROLES / --roles: api,edge,worker (serve checks it) */
    int cpu_encoders;                 /* REELD_CPU_ENCODERS: libx264 jobs at once without NVENC */
    const char *data_dir;             /* REELD_DATA_DIR */
    const char *log_level;            /* REELD_LOG */
    int drain_sec;                    /* REELD_DRAIN_SEC: graceful stop deadline */
    int http_header_timeout_ms;    /* REELD_HTTP_HEADER_TIMEOUT_MS: request head deadline (408) */
    int http_idle_timeout_ms;      /* REELD_HTTP_IDLE_TIMEOUT_MS: idle keep-alive, then close */
    int http_max_conns;            /* REELD_HTTP_MAX_CONNS: open connections, all loops (503) */
    int http_max_conns_per_client; /* REELD_HTTP_MAX_CONNS_PER_CLIENT: per address, all loops */
    int http_body_min_rate;        /* REELD_HTTP_BODY_MIN_RATE: bytes/s a body keeps up (408) */
    int upload_slots_per_org;      /* REELD_UPLOAD_SLOTS_PER_ORG: embedded PUTs at once per org */
    int sse_max_per_org;           /* REELD_SSE_MAX_PER_ORG: live progress streams per org */
    int upload_slots_per_client;   /* REELD_UPLOAD_SLOTS_PER_CLIENT: the same per address */

    const char *postgres_url; /* POSTGRES_URL: fleet store; unset = SQLite in data_dir */
    const char *redis_url;    /* REDIS_URL or VALKEY_URL: fleet queue */
    int pg_pool;              /* REELD_PG_POOL: PostgreSQL connections per node */
    const char *node_name;    /* REELD_NODE_NAME: lease owner and stream consumer */
    int job_lease_ms;         /* REELD_JOB_LEASE_MS */
    int job_retry_base_ms;    /* REELD_JOB_RETRY_BASE_MS */
    int job_retry_max_ms;     /* REELD_JOB_RETRY_MAX_MS */
    int job_poll_ms;          /* REELD_JOB_POLL_MS */

    const char *s3_endpoint; /* unset = the fs blob backend in data_dir */
    const char *s3_region;
    const char *s3_access_key_id;
    const char *s3_secret_access_key;
    const char *s3_bucket_staging;
    const char *s3_bucket_masters;
    const char *s3_bucket_previews;
    int object_lock_default_days;
    const char *object_lock_mode; /* OBJECT_LOCK_MODE: governance|compliance */

    const char *public_url;      /* REELD_PUBLIC_URL: base URL clients reach this listener at */
    int64_t max_upload_bytes;    /* REELD_MAX_UPLOAD_BYTES: largest upload accepted (413) */
    int64_t multipart_threshold; /* REELD_MULTIPART_THRESHOLD: S3 uploads above go in parts */
    int64_t part_size;           /* REELD_PART_SIZE: multipart part size */
    int64_t copy_part_size;      /* REELD_COPY_PART_SIZE: larger copies go as UploadPartCopy */
    int presign_expires;         /* REELD_PRESIGN_EXPIRES: seconds an upload URL stays valid */
    int upload_concurrency;      /* UPLOAD_CONCURRENCY: HLS PUTs in flight per uploader */

    const char *edge_public_base;
    const char *edge_signing_key;
    const char *edge_signing_key_previous; /* accepted until start + edge_key_grace_sec */
    int edge_key_grace_sec;
    int edge_link_ttl_sec; /* playback link lifetime */
    const char *allowed_origins;
    const char *playback_allowed_origins; /* PLAYBACK_ALLOWED_ORIGINS: CORS of the edge */
    const char *console;                  /* REELD_CONSOLE: auto|on|off, the page at GET / */
    int max_jobs_per_org;                 /* REELD_MAX_JOBS_PER_ORG: queued + running (0: none) */
    int api_inflight_max;  /* REELD_API_INFLIGHT_MAX: the API's write chains in flight per node */
    int upload_expire_sec; /* REELD_UPLOAD_EXPIRE_SEC: unpromoted uploads go */
    int rate_limit_max, rate_limit_window;
    int rl_presign_max, rl_presign_window;
    int rl_promote_max, rl_promote_window;
    int rl_auth_fail_max, rl_auth_fail_window; /* failed authentications per client address */
    int fetch_timeout_ms;

    const char *preview_preset; /* auto|1080p|720p|480p */
    int hls_segment_sec;
    const char *hls_segment_format; /* ts|fmp4 */
    const char *encoder;            /* auto|nvenc|x264 */
    const char *gpu_devices;        /* comma-separated GPU indexes; empty = all found */
    int nvenc_sessions_per_gpu;
    int max_duration_sec;        /* REELD_MAX_DURATION_SEC: longer masters fail (transcode bombs) */
    int max_frame_pixels;        /* REELD_MAX_FRAME_PIXELS: bigger pictures fail */
    int storyboard_interval_sec; /* STORYBOARD_INTERVAL_SEC: 0 = from the duration */
    const char *mp4_download;    /* MP4_DOWNLOAD: on|off, download.mp4 for every job */

    const char *cache_dir; /* empty = data_dir/cache */
    int64_t cache_max_bytes;

    int webhook_allow_private;    /* WEBHOOK_ALLOW_PRIVATE: deliver to private addresses */
    int webhook_secret_grace_sec; /* WEBHOOK_SECRET_GRACE_SEC: a rotated secret still signs */
    int webhook_timeout_ms;       /* WEBHOOK_TIMEOUT_MS: one delivery's deadline */
    int webhook_max_attempts;     /* WEBHOOK_MAX_ATTEMPTS: then the delivery is dead */
    int webhook_retry_base_ms;    /* WEBHOOK_RETRY_BASE_MS: first retry delay, doubling */
    int webhook_retry_max_ms;     /* WEBHOOK_RETRY_MAX_MS: longest retry delay */
    int webhook_workers;          /* WEBHOOK_WORKERS: deliveries at once per node */

    const char *api_keys; /* org:key,... */
    const char *jwt_secret;
} rd_config;

/* The listener's own base URL: "https://REELD_LISTEN" with TLS, else "http://REELD_LISTEN". */
void config_listen_url(const rd_config *cfg, char *out, size_t cap);

/* Fills `cfg` from defaults, then the environment, then `argv` (flags such as --listen ADDR or
 * --listen=ADDR; argv[0] is not read). Returns 0, or -EINVAL with one line in `err`. */
int config_load(rd_config *cfg, int argc, char **argv, char *err, size_t errlen);

/* Writes the table of settings (name, flag, default, description) for --help. */
void config_usage(FILE *out);

/* Logs the effective settings in one line (secrets only as "set"). */
void config_log(const rd_config *cfg);

#endif
