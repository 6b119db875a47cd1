/* Configuration: the defaults of an empty environment, each kind of value the settings table
 * parses (sizes with K/M/G/T, integer durations in a range, 0/1 and on/off switches, enums,
 * host:port, URLs by scheme, GPU index lists, org:key lists, secrets), the one-line refusal of a
 * bad value naming its variable (and never a secret), flags with and without '=', a flag
 * overriding its variable, the checks across settings, --help listing every setting with its
 * flag and default, and the log line that says only whether a secret is set. */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "src/rt/config.h"
#include "tests/unit/test.h"

static rd_config cfg;
static char err[512];

/* Every setting's variable (and the one alias), as config.h lists them. */
static const char *const names[] = {
    "REELD_LISTEN",
    "REELD_TLS_CERT",
    "REELD_TLS_KEY",
    "REELD_HTTP_REDIRECT_LISTEN",
    "REELD_CORES",
    "REELD_ROLES",
    "REELD_CPU_ENCODERS",
    "REELD_DATA_DIR",
    "REELD_LOG",
    "REELD_DRAIN_SEC",
    "REELD_HTTP_HEADER_TIMEOUT_MS",
    "REELD_HTTP_IDLE_TIMEOUT_MS",
    "REELD_HTTP_MAX_CONNS",
    "REELD_HTTP_MAX_CONNS_PER_CLIENT",
    "REELD_HTTP_BODY_MIN_RATE",
    "REELD_UPLOAD_SLOTS_PER_ORG",
    "REELD_UPLOAD_SLOTS_PER_CLIENT",
    "REELD_SSE_MAX_PER_ORG",
    "POSTGRES_URL",
    "REDIS_URL",
    "REELD_PG_POOL",
    "REELD_NODE_NAME",
    "REELD_JOB_LEASE_MS",
    "REELD_JOB_RETRY_BASE_MS",
    "REELD_JOB_RETRY_MAX_MS",
    "REELD_JOB_POLL_MS",
    "S3_ENDPOINT",
    "S3_REGION",
    "S3_ACCESS_KEY_ID",
    "S3_SECRET_ACCESS_KEY",
    "S3_BUCKET_STAGING",
    "S3_BUCKET_MASTERS",
    "S3_BUCKET_PREVIEWS",
    "OBJECT_LOCK_DEFAULT_DAYS",
    "OBJECT_LOCK_MODE",
    "REELD_PUBLIC_URL",
    "REELD_MAX_UPLOAD_BYTES",
    "REELD_MULTIPART_THRESHOLD",
    "REELD_PART_SIZE",
    "REELD_COPY_PART_SIZE",
    "REELD_PRESIGN_EXPIRES",
    "UPLOAD_CONCURRENCY",
    "EDGE_PUBLIC_BASE",
    "EDGE_SIGNING_KEY",
    "EDGE_SIGNING_KEY_PREVIOUS",
    "EDGE_KEY_GRACE_SEC",
    "EDGE_LINK_TTL_SEC",
    "ALLOWED_ORIGINS",
    "PLAYBACK_ALLOWED_ORIGINS",
    "REELD_CONSOLE",
    "REELD_MAX_JOBS_PER_ORG",
    "REELD_UPLOAD_EXPIRE_SEC",
    "RATE_LIMIT_MAX",
    "RATE_LIMIT_WINDOW",
    "RL_PRESIGN_MAX",
    "RL_PRESIGN_WINDOW",
    "RL_PROMOTE_MAX",
    "RL_PROMOTE_WINDOW",
    "RL_AUTH_FAIL_MAX",
    "RL_AUTH_FAIL_WINDOW",
    "FETCH_TIMEOUT_MS",
    "PREVIEW_PRESET",
    "HLS_SEGMENT_SEC",
    "HLS_SEGMENT_FORMAT",
    "ENCODER",
    "GPU_DEVICES",
    "NVENC_SESSIONS_PER_GPU",
    "REELD_MAX_DURATION_SEC",
    "REELD_MAX_FRAME_PIXELS",
    "STORYBOARD_INTERVAL_SEC",
    "MP4_DOWNLOAD",
    "CACHE_DIR",
    "CACHE_MAX_BYTES",
    "WEBHOOK_ALLOW_PRIVATE",
    "WEBHOOK_SECRET_GRACE_SEC",
    "WEBHOOK_TIMEOUT_MS",
    "WEBHOOK_MAX_ATTEMPTS",
    "WEBHOOK_RETRY_BASE_MS",
    "WEBHOOK_RETRY_MAX_MS",
    "WEBHOOK_WORKERS",
    "REELD_API_KEYS",
    "JWT_SECRET",
};
#define NNAMES (sizeof(names) / sizeof(names[0]))

#define KEY16  "0123456789abcdef"
#define KEY32  KEY16 KEY16

static long online_cores(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? n : 1;
}

/* An environment with none of the settings, whatever the caller's shell had. */
static void clean_env(void)
{
    for (size_t i = 0; i < NNAMES; i++)
        unsetenv(names[i]);
    unsetenv("VALKEY_URL");
}

/* config_load from `argv` (argv[0] included; NULL-terminated) and the environment as it is. */
static int load_argv(char **argv)
{
    int argc = 0;
    while (argv[argc] != NULL)
        argc++;
    err[0] = '\0';
    return config_load(&cfg, argc, argv, err, sizeof(err));
}

static int load(void)
{
    char *argv[] = {"reeld", NULL};
    return load_argv(argv);
}

/* config_load with only `name`=`value` set. */
static int load_one(const char *name, const char *value)
{
    clean_env();
    setenv(name, value, 1);
    int r = load();
    unsetenv(name);
    return r;
}

/* `name`=`value` is refused with exactly `want` as its line. */
#define CHECK_REFUSED(name, value, want)                                                           \
    do {                                                                                           \
        CHECK_EQ_INT(load_one((name), (value)), -EINVAL);                                          \
        CHECK_EQ_STR(err, (want));                                                                 \
    } while (0)

TEST(defaults_of_an_empty_environment)
{
    clean_env();
    CHECK_EQ_INT(load(), 0);
    CHECK_EQ_STR(err, "");
    CHECK_EQ_STR(cfg.listen, "127.0.0.1:8080");
    CHECK_EQ_INT(cfg.cores, online_cores());
    CHECK_EQ_STR(cfg.roles, "api,edge,worker");
    CHECK_EQ_INT(cfg.cpu_encoders, 1);
    CHECK_EQ_STR(cfg.data_dir, "./reeld-data");
    CHECK_EQ_STR(cfg.log_level, "info");
    CHECK_EQ_INT(cfg.drain_sec, 10);
    CHECK_EQ_INT(cfg.http_header_timeout_ms, 10000);
    CHECK_EQ_INT(cfg.http_idle_timeout_ms, 60000);
    CHECK_EQ_INT(cfg.http_max_conns, 10000);
    CHECK_EQ_INT(cfg.http_max_conns_per_client, 512);
    CHECK_EQ_INT(cfg.http_body_min_rate, 1024);
    CHECK_EQ_INT(cfg.pg_pool, 4);
    CHECK_EQ_INT(cfg.job_lease_ms, 30000);
    CHECK_EQ_INT(cfg.job_retry_base_ms, 2000);
    CHECK_EQ_INT(cfg.job_retry_max_ms, 600000);
    CHECK_EQ_INT(cfg.job_poll_ms, 250);
    CHECK_EQ_STR(cfg.s3_region, "us-east-1");
    CHECK_EQ_STR(cfg.s3_bucket_staging, "staging");
    CHECK_EQ_STR(cfg.s3_bucket_masters, "masters");
    CHECK_EQ_STR(cfg.s3_bucket_previews, "previews");
    CHECK_EQ_STR(cfg.object_lock_mode, "compliance");
    CHECK_EQ_INT(cfg.max_upload_bytes, 5ll << 30);
    CHECK_EQ_INT(cfg.multipart_threshold, 64ll << 20);
    CHECK_EQ_INT(cfg.part_size, 16ll << 20);
    CHECK_EQ_INT(cfg.copy_part_size, 5ll << 30);
    CHECK_EQ_INT(cfg.cache_max_bytes, 10ll << 30);
    CHECK_EQ_INT(cfg.presign_expires, 3600);
    CHECK_EQ_INT(cfg.edge_link_ttl_sec, 21600);
    CHECK_EQ_STR(cfg.console, "auto");
    CHECK_EQ_STR(cfg.preview_preset, "auto");
    CHECK_EQ_INT(cfg.hls_segment_sec, 4);
    CHECK_EQ_STR(cfg.hls_segment_format, "ts");
    CHECK_EQ_STR(cfg.encoder, "auto");
    CHECK_EQ_STR(cfg.gpu_devices, "");
    CHECK_EQ_STR(cfg.mp4_download, "off");
    CHECK_EQ_STR(cfg.cache_dir, "");
    CHECK_EQ_INT(cfg.storyboard_interval_sec, 0);
    CHECK_EQ_INT(cfg.webhook_allow_private, 0);
    CHECK_EQ_INT(cfg.webhook_workers, 4);
    CHECK_EQ_STR(cfg.playback_allowed_origins, "*");
    /* Settings without a default stay unset. */
    CHECK(cfg.tls_cert == NULL && cfg.tls_key == NULL && cfg.http_redirect_listen == NULL);
    CHECK(cfg.postgres_url == NULL && cfg.redis_url == NULL && cfg.node_name == NULL);
    CHECK(cfg.s3_endpoint == NULL && cfg.s3_secret_access_key == NULL);
    CHECK(cfg.public_url == NULL && cfg.edge_public_base == NULL && cfg.edge_signing_key == NULL);
    CHECK(cfg.api_keys == NULL && cfg.jwt_secret == NULL);

    char url[128];
    config_listen_url(&cfg, url, sizeof(url));
    CHECK_EQ_STR(url, "http://127.0.0.1:8080");
}

TEST(sizes_take_a_binary_suffix)
{
    static const struct {
        const char *text;
        int64_t bytes;
    } ok[] = {
        {"1", 1},
        {"123456", 123456},
        {"10k", 10ll << 10},
        {"10K", 10ll << 10},
        {"512M", 512ll << 20},
        {"512m", 512ll << 20},
        {"5G", 5ll << 30},
        {"2T", 2ll << 40},
        {"8388607T", 8388607ll << 40}, /* the largest count of T that fits 63 bits */
        {"9223372036854775807", INT64_MAX},
    };
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        CHECK_EQ_INT(load_one("REELD_MAX_UPLOAD_BYTES", ok[i].text), 0);
        CHECK_EQ_INT(cfg.max_upload_bytes, ok[i].bytes);
    }
    static const char *const bad[] = {"",  "G",  "5X",  "5GB", "1.5G",     "-1",
                                      "0", "0K", "5 G", "G5",  "8388608T", "9223372036854775808"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char want[256];
        snprintf(want, sizeof(want),
                 "REELD_MAX_UPLOAD_BYTES: must be a size from 1 to 9223372036854775807 bytes such "
                 "as 512M or 10G (got '%s')",
                 bad[i]);
        CHECK_REFUSED("REELD_MAX_UPLOAD_BYTES", bad[i], want);
    }
    /* A size with bounds of its own: a part is 5M to 5G. */
    CHECK_EQ_INT(load_one("REELD_PART_SIZE", "5M"), 0);
    CHECK_EQ_INT(cfg.part_size, 5ll << 20);
    CHECK_EQ_INT(load_one("REELD_PART_SIZE", "5G"), 0);
    CHECK_EQ_INT(cfg.part_size, 5ll << 30);
    CHECK_REFUSED("REELD_PART_SIZE", "5242879",
                  "REELD_PART_SIZE: must be a size from 5242880 to 5368709120 bytes such as 512M "
                  "or 10G (got '5242879')");
    CHECK_REFUSED("REELD_PART_SIZE", "6G",
                  "REELD_PART_SIZE: must be a size from 5242880 to 5368709120 bytes such as 512M "
                  "or 10G (got '6G')");
    CHECK_EQ_INT(load_one("CACHE_MAX_BYTES", "1M"), 0);
    CHECK_EQ_INT(cfg.cache_max_bytes, 1ll << 20);
    CHECK_EQ_INT(load_one("CACHE_MAX_BYTES", "1023K"), -EINVAL);
}

TEST(durations_and_counts_are_integers_in_range)
{
    CHECK_EQ_INT(load_one("REELD_JOB_LEASE_MS", "50"), 0);
    CHECK_EQ_INT(cfg.job_lease_ms, 50);
    CHECK_EQ_INT(load_one("REELD_JOB_LEASE_MS", "86400000"), 0);
    CHECK_EQ_INT(cfg.job_lease_ms, 86400000);
    CHECK_REFUSED("REELD_JOB_LEASE_MS", "49",
                  "REELD_JOB_LEASE_MS: must be an integer from 50 to 86400000 (got '49')");
    CHECK_REFUSED("REELD_JOB_LEASE_MS", "86400001",
                  "REELD_JOB_LEASE_MS: must be an integer from 50 to 86400000 (got '86400001')");
    /* No units: a duration is a number in the unit its name says. */
    CHECK_REFUSED("REELD_JOB_LEASE_MS", "30s",
                  "REELD_JOB_LEASE_MS: must be an integer from 50 to 86400000 (got '30s')");
    CHECK_REFUSED("REELD_DRAIN_SEC", "",
                  "REELD_DRAIN_SEC: must be an integer from 0 to 3600 (got '')");
    CHECK_REFUSED("REELD_DRAIN_SEC", "1e3",
                  "REELD_DRAIN_SEC: must be an integer from 0 to 3600 (got '1e3')");
    CHECK_REFUSED("REELD_DRAIN_SEC", "99999999999999999999",
                  "REELD_DRAIN_SEC: must be an integer from 0 to 3600 (got "
                  "'99999999999999999999')");
    CHECK_EQ_INT(load_one("REELD_DRAIN_SEC", "0"), 0);
    CHECK_EQ_INT(cfg.drain_sec, 0);
    /* Negative bounds: -1 turns storyboards off, -2 is nothing. */
    CHECK_EQ_INT(load_one("STORYBOARD_INTERVAL_SEC", "-1"), 0);
    CHECK_EQ_INT(cfg.storyboard_interval_sec, -1);
    CHECK_EQ_INT(load_one("STORYBOARD_INTERVAL_SEC", "-2"), -EINVAL);
    CHECK_EQ_INT(load_one("REELD_MAX_FRAME_PIXELS", "2147483647"), 0);
    CHECK_EQ_INT(cfg.max_frame_pixels, 2147483647);
    CHECK_EQ_INT(load_one("REELD_MAX_FRAME_PIXELS", "2147483648"), -EINVAL);
    CHECK_EQ_INT(load_one("WEBHOOK_SECRET_GRACE_SEC", "2678400"), 0); /* 31 days */
    CHECK_EQ_INT(cfg.webhook_secret_grace_sec, 2678400);
    CHECK_EQ_INT(load_one("WEBHOOK_SECRET_GRACE_SEC", "2678401"), -EINVAL);
}

TEST(switches_are_zero_one_or_on_off)
{
    CHECK_EQ_INT(load_one("WEBHOOK_ALLOW_PRIVATE", "1"), 0);
    CHECK_EQ_INT(cfg.webhook_allow_private, 1);
    CHECK_EQ_INT(load_one("WEBHOOK_ALLOW_PRIVATE", "0"), 0);
    CHECK_EQ_INT(cfg.webhook_allow_private, 0);
    CHECK_REFUSED("WEBHOOK_ALLOW_PRIVATE", "true",
                  "WEBHOOK_ALLOW_PRIVATE: must be an integer from 0 to 1 (got 'true')");
    CHECK_REFUSED("WEBHOOK_ALLOW_PRIVATE", "2",
                  "WEBHOOK_ALLOW_PRIVATE: must be an integer from 0 to 1 (got '2')");
    CHECK_EQ_INT(load_one("MP4_DOWNLOAD", "on"), 0);
    CHECK_EQ_STR(cfg.mp4_download, "on");
    CHECK_REFUSED("MP4_DOWNLOAD", "yes", "MP4_DOWNLOAD: must be one of on|off (got 'yes')");
}

TEST(enums_take_one_of_their_words_exactly)
{
    static const char *const levels[] = {"debug", "info", "warn", "error"};
    for (size_t i = 0; i < 4; i++) {
        CHECK_EQ_INT(load_one("REELD_LOG", levels[i]), 0);
        CHECK_EQ_STR(cfg.log_level, levels[i]);
    }
    CHECK_REFUSED("REELD_LOG", "verbose",
                  "REELD_LOG: must be one of debug|info|warn|error (got 'verbose')");
    CHECK_REFUSED("REELD_LOG", "DEBUG",
                  "REELD_LOG: must be one of debug|info|warn|error (got 'DEBUG')");
    /* Neither a prefix nor a longer word of a choice. */
    CHECK_EQ_INT(load_one("REELD_LOG", "inf"), -EINVAL);
    CHECK_EQ_INT(load_one("REELD_LOG", "infos"), -EINVAL);
    CHECK_EQ_INT(load_one("REELD_LOG", ""), -EINVAL);
    CHECK_EQ_INT(load_one("HLS_SEGMENT_FORMAT", "fmp4"), 0);
    CHECK_EQ_STR(cfg.hls_segment_format, "fmp4");
    CHECK_EQ_INT(load_one("OBJECT_LOCK_MODE", "governance"), 0);
    CHECK_EQ_STR(cfg.object_lock_mode, "governance");
    CHECK_REFUSED("ENCODER", "nvenc|x264",
                  "ENCODER: must be one of auto|nvenc|x264 (got 'nvenc|x264')");
    CHECK_EQ_INT(load_one("PREVIEW_PRESET", "480p"), 0);
    CHECK_EQ_STR(cfg.preview_preset, "480p");
}

TEST(lists_addresses_and_urls)
{
    CHECK_EQ_INT(load_one("GPU_DEVICES", "0,1,12"), 0);
    CHECK_EQ_STR(cfg.gpu_devices, "0,1,12");
    CHECK_EQ_INT(load_one("GPU_DEVICES", "3"), 0);
    CHECK_EQ_STR(cfg.gpu_devices, "3");
    CHECK_EQ_INT(load_one("GPU_DEVICES", ""), 0);
    CHECK_EQ_STR(cfg.gpu_devices, "");
    static const char *const bad_lists[] = {",1", "1,", "1,,2", "a", "1 2", "-1", "0;1"};
    for (size_t i = 0; i < sizeof(bad_lists) / sizeof(bad_lists[0]); i++) {
        char want[128];
        snprintf(want, sizeof(want),
                 "GPU_DEVICES: must be comma-separated GPU indexes such as 0,1 (got '%s')",
                 bad_lists[i]);
        CHECK_REFUSED("GPU_DEVICES", bad_lists[i], want);
    }

    static const char *const good_addrs[] = {"0.0.0.0:9000", "[::1]:8080", "localhost:1",
                                             "example.com:65535"};
    for (size_t i = 0; i < sizeof(good_addrs) / sizeof(good_addrs[0]); i++) {
        CHECK_EQ_INT(load_one("REELD_LISTEN", good_addrs[i]), 0);
        CHECK_EQ_STR(cfg.listen, good_addrs[i]);
    }
    static const char *const bad_addrs[] = {"localhost", ":80",       "host:0", "host:65536",
                                            "host:http", "[::1:8080", "host:",  ""};
    for (size_t i = 0; i < sizeof(bad_addrs) / sizeof(bad_addrs[0]); i++) {
        char want[160];
        snprintf(want, sizeof(want),
                 "REELD_LISTEN: must be host:port with a port from 1 to 65535 (got '%s')",
                 bad_addrs[i]);
        CHECK_REFUSED("REELD_LISTEN", bad_addrs[i], want);
    }

    CHECK_EQ_INT(load_one("POSTGRES_URL", "postgres://u@db/reeld"), 0);
    CHECK_EQ_STR(cfg.postgres_url, "postgres://u@db/reeld");
    CHECK_EQ_INT(load_one("POSTGRES_URL", "postgresql://db"), 0);
    CHECK_REFUSED("POSTGRES_URL", "mysql://db",
                  "POSTGRES_URL: must be a URL starting with postgres://|postgresql:// (got "
                  "'mysql://db')");
    /* A scheme alone is no URL. */
    CHECK_EQ_INT(load_one("POSTGRES_URL", "postgres://"), -EINVAL);
    CHECK_EQ_INT(load_one("REELD_PUBLIC_URL", "https://media.example.com"), 0);
    CHECK_EQ_STR(cfg.public_url, "https://media.example.com");
    CHECK_EQ_INT(load_one("REELD_PUBLIC_URL", "ftp://x"), -EINVAL);
    /* An empty optional setting is unset rather than refused. */
    CHECK_EQ_INT(load_one("POSTGRES_URL", ""), 0);
    CHECK(cfg.postgres_url == NULL);
    CHECK_EQ_INT(load_one("REELD_CORES", ""), 0);
    CHECK_EQ_INT(cfg.cores, online_cores());
    /* Any text for a plain string; serve checks the roles. */
    CHECK_EQ_INT(load_one("REELD_ROLES", "edge"), 0);
    CHECK_EQ_STR(cfg.roles, "edge");
}

TEST(keys_and_secrets_are_refused_without_showing_them)
{
    CHECK_EQ_INT(load_one("REELD_API_KEYS", "acme:" KEY16 ",beta:" KEY32), 0);
    CHECK_EQ_STR(cfg.api_keys, "acme:" KEY16 ",beta:" KEY32);
    CHECK_REFUSED("REELD_API_KEYS", "acme:" KEY16 ",beta:tooshort-secret",
                  "REELD_API_KEYS: every key must be at least 16 bytes long (org 'beta' has a "
                  "shorter one)");
    CHECK(strstr(err, "tooshort") == NULL);
    static const char *const malformed[] = {
        "nocolon",         ":" KEY16,     "acme:", "ac me:" KEY16, "acme:" KEY16 ",,beta:" KEY16,
        "acme:" KEY16 ",", ",acme:" KEY16};
    for (size_t i = 0; i < sizeof(malformed) / sizeof(malformed[0]); i++) {
        CHECK_REFUSED("REELD_API_KEYS", malformed[i],
                      "REELD_API_KEYS: must be comma-separated org:key pairs");
        CHECK(strstr(err, KEY16) == NULL);
    }

    CHECK_EQ_INT(load_one("JWT_SECRET", KEY32), 0);
    CHECK_EQ_STR(cfg.jwt_secret, KEY32);
    CHECK_REFUSED("JWT_SECRET", "short-jwt-secret", "JWT_SECRET: must be at least 32 bytes long");
    CHECK_REFUSED("EDGE_SIGNING_KEY", "abc", "EDGE_SIGNING_KEY: must be at least 16 bytes long");
    CHECK_EQ_INT(load_one("EDGE_SIGNING_KEY", KEY16), 0);
    CHECK_EQ_STR(cfg.edge_signing_key, KEY16);
}

TEST(flags_override_their_variables)
{
    clean_env();
    setenv("REELD_LISTEN", "127.0.0.1:1111", 1);
    setenv("REELD_LOG", "warn", 1);
    setenv("REELD_DATA_DIR", "/env/dir", 1);
    setenv("REELD_ROLES", "worker", 1);
    char *argv[] = {"--ignored-argv0",
                    "--listen",
                    "127.0.0.1:2222",
                    "--log=debug",
                    "--roles=api,edge",
                    "--cores",
                    "1",
                    NULL};
    CHECK_EQ_INT(load_argv(argv), 0);
    CHECK_EQ_STR(err, "");
    CHECK_EQ_STR(cfg.listen, "127.0.0.1:2222");
    CHECK_EQ_STR(cfg.log_level, "debug");
    CHECK_EQ_STR(cfg.roles, "api,edge");
    CHECK_EQ_INT(cfg.cores, 1);
    CHECK_EQ_STR(cfg.data_dir, "/env/dir"); /* no flag given: the variable stays */

    /* The last of a repeated flag wins; an empty '=' value is still a value. */
    char *twice[] = {"reeld", "--data-dir", "/a", "--data-dir=/b", NULL};
    CHECK_EQ_INT(load_argv(twice), 0);
    CHECK_EQ_STR(cfg.data_dir, "/b");

    /* A flag's bad value is refused under its variable's name, even when the variable is good. */
    char *bad[] = {"reeld", "--listen=nowhere", NULL};
    CHECK_EQ_INT(load_argv(bad), -EINVAL);
    CHECK_EQ_STR(err,
                 "REELD_LISTEN: must be host:port with a port from 1 to 65535 (got 'nowhere')");
    char *zero[] = {"reeld", "--cores=0", NULL};
    CHECK_EQ_INT(load_argv(zero), -EINVAL);
    CHECK_EQ_STR(err, "REELD_CORES: must be an integer from 1 to 1024 (got '0')");

    char *unknown[] = {"reeld", "--listen=127.0.0.1:1", "--verbose", NULL};
    CHECK_EQ_INT(load_argv(unknown), -EINVAL);
    CHECK_EQ_STR(err, "unknown option '--verbose' (see reeld --help)");
    char *prefix[] = {"reeld", "--listener=127.0.0.1:1", NULL};
    CHECK_EQ_INT(load_argv(prefix), -EINVAL);
    CHECK_EQ_STR(err, "unknown option '--listener=127.0.0.1:1' (see reeld --help)");
    char *positional[] = {"reeld", "extra", NULL};
    CHECK_EQ_INT(load_argv(positional), -EINVAL);
    CHECK_EQ_STR(err, "unknown option 'extra' (see reeld --help)");
    char *missing[] = {"reeld", "--data-dir", NULL};
    CHECK_EQ_INT(load_argv(missing), -EINVAL);
    CHECK_EQ_STR(err, "--data-dir needs a value");
    /* Settings without a flag are not flags. */
    char *noflag[] = {"reeld", "--jwt-secret=" KEY32, NULL};
    CHECK_EQ_INT(load_argv(noflag), -EINVAL);
    clean_env();
}

TEST(a_bad_variable_is_refused_before_flags_are_read)
{
    clean_env();
    setenv("REELD_LISTEN", "bad", 1);
    char *argv[] = {"reeld", "--listen", "127.0.0.1:2222", NULL};
    CHECK_EQ_INT(load_argv(argv), -EINVAL);
    CHECK_EQ_STR(err, "REELD_LISTEN: must be host:port with a port from 1 to 65535 (got 'bad')");
    clean_env();
}

TEST(settings_that_go_together)
{
    long online = online_cores();
    char n[32], want[160];
    snprintf(n, sizeof(n), "%ld", online);
    CHECK_EQ_INT(load_one("REELD_CORES", n), 0);
    CHECK_EQ_INT(cfg.cores, online);
    if (online < 1024) {
        snprintf(n, sizeof(n), "%ld", online + 1);
        snprintf(want, sizeof(want), "REELD_CORES: must be at most %ld, the cores online (got %ld)",
                 online, online + 1);
        CHECK_REFUSED("REELD_CORES", n, want);
    }

    clean_env();
    setenv("S3_ENDPOINT", "http://minio:9000", 1);
    setenv("S3_ACCESS_KEY_ID", "id", 1);
    CHECK_EQ_INT(load(), -EINVAL);
    CHECK_EQ_STR(err,
                 "S3_ENDPOINT is set: S3_ACCESS_KEY_ID and S3_SECRET_ACCESS_KEY must be set too");
    setenv("S3_SECRET_ACCESS_KEY", "very-secret", 1);
    CHECK_EQ_INT(load(), 0);
    CHECK_EQ_STR(cfg.s3_endpoint, "http://minio:9000");
    CHECK_EQ_STR(cfg.s3_secret_access_key, "very-secret");

    clean_env();
    setenv("EDGE_SIGNING_KEY_PREVIOUS", KEY16, 1);
    CHECK_EQ_INT(load(), -EINVAL);
    CHECK_EQ_STR(err, "EDGE_SIGNING_KEY_PREVIOUS is set: EDGE_SIGNING_KEY must be set too");
    setenv("EDGE_SIGNING_KEY", KEY16 "x", 1);
    CHECK_EQ_INT(load(), 0);

    clean_env();
    setenv("REELD_TLS_CERT", "/etc/cert.pem", 1);
    CHECK_EQ_INT(load(), -EINVAL);
    CHECK_EQ_STR(err, "REELD_TLS_CERT and REELD_TLS_KEY go together: set both or neither");
    setenv("REELD_TLS_KEY", "/etc/key.pem", 1);
    CHECK_EQ_INT(load(), 0);
    char url[128];
    config_listen_url(&cfg, url, sizeof(url));
    CHECK_EQ_STR(url, "https://127.0.0.1:8080");
    setenv("REELD_HTTP_REDIRECT_LISTEN", "0.0.0.0:80", 1);
    CHECK_EQ_INT(load(), 0);
    CHECK_EQ_STR(cfg.http_redirect_listen, "0.0.0.0:80");
    unsetenv("REELD_TLS_CERT");
    unsetenv("REELD_TLS_KEY");
    CHECK_EQ_INT(load(), -EINVAL);
    CHECK_EQ_STR(err, "REELD_HTTP_REDIRECT_LISTEN redirects to HTTPS: set REELD_TLS_CERT and "
                      "REELD_TLS_KEY too");

    clean_env();
    setenv("REDIS_URL", "redis://queue:6379", 1);
    CHECK_EQ_INT(load(), -EINVAL);
    CHECK_EQ_STR(err, "REDIS_URL is set: the fleet queue needs POSTGRES_URL as its store");
    setenv("POSTGRES_URL", "postgres://db/reeld", 1);
    CHECK_EQ_INT(load(), 0);
    CHECK_EQ_STR(cfg.redis_url, "redis://queue:6379");
    CHECK_EQ_INT(load_one("REDIS_URL", "rediss://queue"), -EINVAL); /* still no POSTGRES_URL */
    clean_env();
}

TEST(valkey_url_is_an_alias_of_redis_url)
{
    clean_env();
    setenv("POSTGRES_URL", "postgres://db/reeld", 1);
    setenv("VALKEY_URL", "redis://valkey:6379", 1);
    CHECK_EQ_INT(load(), 0);
    CHECK_EQ_STR(cfg.redis_url, "redis://valkey:6379");
    setenv("REDIS_URL", "redis://valkey:6379", 1);
    CHECK_EQ_INT(load(), 0); /* both, the same: fine */
    setenv("REDIS_URL", "redis://other:6379", 1);
    CHECK_EQ_INT(load(), -EINVAL);
    CHECK_EQ_STR(err, "REDIS_URL and VALKEY_URL are both set and differ: set one");
    unsetenv("REDIS_URL");
    setenv("VALKEY_URL", "http://valkey", 1);
    CHECK_EQ_INT(load(), -EINVAL);
    /* Refusals name the variable that was set. */
    CHECK_EQ_STR(
        err, "VALKEY_URL: must be a URL starting with redis://|rediss:// (got 'http://valkey')");
    unsetenv("POSTGRES_URL");
    setenv("VALKEY_URL", "redis://valkey:6379", 1);
    CHECK_EQ_INT(load(), -EINVAL);
    CHECK_EQ_STR(err, "VALKEY_URL is set: the fleet queue needs POSTGRES_URL as its store");
    clean_env();
}

/* 1 when a line of `usage` starts with "  " `name` `rest`. */
static int usage_has(const char *usage, const char *name, const char *rest)
{
    char line[128];
    snprintf(line, sizeof(line), "\n  %s%s", name, rest);
    return strstr(usage, line) != NULL;
}

/* The line of `usage` that starts with "  " `name` " " (static; "" when there is none). */
static const char *usage_line(const char *usage, const char *name)
{
    static char line[512];
    char start[128];
    snprintf(start, sizeof(start), "\n  %s ", name);
    const char *p = strstr(usage, start);
    line[0] = '\0';
    if (p != NULL)
        snprintf(line, sizeof(line), "%.*s", (int)strcspn(p + 1, "\n"), p + 1);
    return line;
}

TEST(help_lists_every_setting_with_its_flag_and_default)
{
    char *usage = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&usage, &len);
    if (f == NULL)
        SKIP("open_memstream failed");
    config_usage(f);
    fclose(f);
    const char *head = "Settings (environment; a flag overrides its variable):\n";
    CHECK(strncmp(usage, head, strlen(head)) == 0);
    for (size_t i = 0; i < NNAMES; i++) {
        /* Each name opens a line, once, followed by its flag or by the column's padding. */
        if (!usage_has(usage, names[i], " ") && !usage_has(usage, names[i], ", --")) {
            printf("  not in --help: %s\n", names[i]);
            test_cur_failed = 1;
        }
    }
    CHECK(usage_has(usage, "REELD_LISTEN", ", --listen "));
    CHECK(usage_has(usage, "REELD_CORES", ", --cores "));
    CHECK(usage_has(usage, "REELD_ROLES", ", --roles "));
    CHECK(usage_has(usage, "REELD_DATA_DIR", ", --data-dir "));
    CHECK(usage_has(usage, "REELD_LOG", ", --log "));
    /* Defaults as text; "-" when there is none; the cores' default said in words. */
    CHECK(strstr(usage, "\n  REELD_LISTEN, --listen") != NULL &&
          strstr(strstr(usage, "\n  REELD_LISTEN, --listen"), " 127.0.0.1:8080 ") != NULL);
    CHECK(strstr(usage_line(usage, "REELD_MAX_UPLOAD_BYTES"), " 5G ") != NULL);
    CHECK(strstr(usage_line(usage, "CACHE_MAX_BYTES"), " 10G ") != NULL);
    CHECK(strstr(usage_line(usage, "JWT_SECRET"), " - ") != NULL);
    CHECK(strstr(usage_line(usage, "JWT_SECRET"), "at least 32 bytes") != NULL);
    CHECK(strstr(usage, "(all cores)") != NULL);
    /* One line per setting, each with a description after its default. */
    int lines = 0;
    for (const char *p = usage; (p = strchr(p, '\n')) != NULL; p++)
        lines++;
    CHECK(lines >= (int)NNAMES + 1);
    /* The settings can be loaded one by one from what --help shows: the name column is each
     * variable's real name (a bad value of it is refused under that name). */
    CHECK_REFUSED("REELD_HTTP_MAX_CONNS", "x",
                  "REELD_HTTP_MAX_CONNS: must be an integer from 1 to 1000000 (got 'x')");
    free(usage);
}

/* Runs config_log with stderr going to a file; returns what it wrote (static). */
static const char *logged(void)
{
    static char out[8192];
    char path[] = "/tmp/reeld-test-config-XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0)
        return "";
    fflush(stderr);
    int saved = dup(2);
    dup2(fd, 2);
    config_log(&cfg);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    ssize_t n = pread(fd, out, sizeof(out) - 1, 0);
    out[n > 0 ? n : 0] = '\0';
    close(fd);
    unlink(path);
    return out;
}

TEST(the_log_line_says_whether_secrets_are_set_never_what_they_are)
{
    clean_env();
    setenv("JWT_SECRET", "jwt-" KEY32, 1);
    setenv("EDGE_SIGNING_KEY", "edge-" KEY16, 1);
    setenv("REELD_API_KEYS", "acme:apikey-" KEY16, 1);
    setenv("S3_ENDPOINT", "http://minio:9000", 1);
    setenv("S3_ACCESS_KEY_ID", "id", 1);
    setenv("S3_SECRET_ACCESS_KEY", "s3-secret-value", 1);
    CHECK_EQ_INT(load(), 0);
    const char *line = logged();
    CHECK(strstr(line, "\"event\":\"config\"") != NULL);
    CHECK(strstr(line, "\"jwt_secret\":\"set\"") != NULL);
    CHECK(strstr(line, "\"edge_signing_key\":\"set\"") != NULL);
    CHECK(strstr(line, "\"api_keys\":\"set\"") != NULL);
    CHECK(strstr(line, "\"blob\":\"s3\"") != NULL);
    CHECK(strstr(line, KEY16) == NULL);
    CHECK(strstr(line, "s3-secret-value") == NULL);
    clean_env();
    CHECK_EQ_INT(load(), 0);
    line = logged();
    CHECK(strstr(line, "\"jwt_secret\":\"unset\"") != NULL);
    CHECK(strstr(line, "\"store\":\"sqlite\"") != NULL);
    CHECK(strstr(line, "\"queue\":\"local\"") != NULL);
}

int main(void)
{
    RUN(defaults_of_an_empty_environment);
    RUN(sizes_take_a_binary_suffix);
    RUN(durations_and_counts_are_integers_in_range);
    RUN(switches_are_zero_one_or_on_off);
    RUN(enums_take_one_of_their_words_exactly);
    RUN(lists_addresses_and_urls);
    RUN(keys_and_secrets_are_refused_without_showing_them);
    RUN(flags_override_their_variables);
    RUN(a_bad_variable_is_refused_before_flags_are_read);
    RUN(settings_that_go_together);
    RUN(valkey_url_is_an_alias_of_redis_url);
    RUN(help_lists_every_setting_with_its_flag_and_default);
    RUN(the_log_line_says_whether_secrets_are_set_never_what_they_are);
    clean_env();
    return test_summary();
}
