/* Structured logging: one JSON object per event, one line, one write(2) to stderr.
 *
 *   log_info("listening", KV_STR("addr", addr), KV_INT("loops", n));
 *   → {"ts":"2026-11-22T11:00:00.123Z","level":"info","event":"listening","addr":"…","loops":2}
 *
 * The level comes from REELD_LOG (debug|info|warn|error; default info). Events below it cost
 * one comparison. Lines longer than 4 KiB are cut (values are truncated, never the JSON).
 * never: logs a secret; callers pass only what may be read by whoever reads the logs. */
#ifndef REELD_RT_LOG_H
#define REELD_RT_LOG_H

#include <stdint.h>

typedef enum rd_log_level { RD_LOG_DEBUG, RD_LOG_INFO, RD_LOG_WARN, RD_LOG_ERROR } rd_log_level;

typedef struct rd_kv {
    const char *key; /* NULL marks the unused first slot of the macros below */
    enum { RD_KV_STR, RD_KV_INT, RD_KV_DBL, RD_KV_ERRNO } kind;
    union {
        const char *s;
        int64_t i;
        double d;
    };
} rd_kv;

#define KV_STR(k, v) ((rd_kv){.key = (k), .kind = RD_KV_STR, .s = (v)})
#define KV_INT(k, v) ((rd_kv){.key = (k), .kind = RD_KV_INT, .i = (int64_t)(v)})
#define KV_DBL(k, v) ((rd_kv){.key = (k), .kind = RD_KV_DBL, .d = (double)(v)})
/* A negative errno, written as "error":"<strerror>" */
#define KV_ERRNO(v) ((rd_kv){.key = "error", .kind = RD_KV_ERRNO, .i = (int64_t)(v)})

extern rd_log_level log_threshold;

/* Sets the threshold from a name; returns 0 or -EINVAL for an unknown name. */
int log_set_level(const char *name);

void log_emit(rd_log_level level, const char *event, const rd_kv *kv, int n);

/* Formats the line into buf (for tests); returns its length without the newline. */
int log_format(char *buf, int cap, rd_log_level level, const char *event, const rd_kv *kv, int n);

#define RD_LOG_(lvl, ev, ...)                                                                      \
    do {                                                                                           \
        if ((lvl) >= log_threshold) {                                                              \
            const rd_kv kv_[] = {{.key = 0}, ##__VA_ARGS__};                                       \
            log_emit((lvl), (ev), kv_ + 1, (int)(sizeof(kv_) / sizeof(kv_[0])) - 1);               \
        }                                                                                          \
    } while (0)

#define log_debug(ev, ...) RD_LOG_(RD_LOG_DEBUG, ev, ##__VA_ARGS__)
#define log_info(ev, ...)  RD_LOG_(RD_LOG_INFO, ev, ##__VA_ARGS__)
#define log_warn(ev, ...)  RD_LOG_(RD_LOG_WARN, ev, ##__VA_ARGS__)
#define log_error(ev, ...) RD_LOG_(RD_LOG_ERROR, ev, ##__VA_ARGS__)

#endif
