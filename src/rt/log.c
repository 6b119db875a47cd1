/* JSON-lines logger. Each line is built in a stack buffer and leaves in one write(2), so lines
 * from different threads never interleave. */
#include "src/rt/log.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define LOG_LINE_MAX 4096

rd_log_level log_threshold = RD_LOG_INFO;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

int log_set_level(const char *name)
{
    for (int i = 0; i < 4; i++) {
        if (strcmp(name, level_names[i]) == 0) {
            log_threshold = (rd_log_level)i;
            return 0;
        }
    }
    return -EINVAL;
}

typedef struct out {
    char *buf;
    int cap; /* room for the text, keeping 2 bytes for "}\n" */
    int len;
} out;

static void put(out *o, const char *s, int n)
{
    if (n > o->cap - o->len)
        n = o->cap - o->len;
    memcpy(o->buf + o->len, s, (size_t)n);
    o->len += n;
}

static void puts_raw(out *o, const char *s)
{
    put(o, s, (int)strlen(s));
}

/* A JSON string; control characters escaped; stops early rather than cut an escape. */
static void put_str(out *o, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    put(o, "\"", 1);
    for (; s != NULL && *s; s++) {
        unsigned char c = (unsigned char)*s;
        char esc[6];
        int n;
        if (c == '"' || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)c;
            n = 2;
        } else if (c == '\n') {
            memcpy(esc, "\\n", 2);
            n = 2;
        } else if (c < 0x20) {
            memcpy(esc, "\\u00", 4);
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 15];
            n = 6;
        } else {
            esc[0] = (char)c;
            n = 1;
        }
        if (o->len + n + 1 > o->cap)
            break;
        put(o, esc, n);
    }
    if (o->len + 1 > o->cap)
        o->len = o->cap - 1;
    put(o, "\"", 1);
}

int log_format(char *buf, int cap, rd_log_level level, const char *event, const rd_kv *kv, int n)
{
    out o = {.buf = buf, .cap = cap - 2, .len = 0};
    struct timeval tv;
    gettimeofday(&tv, NULL);
    struct tm tm;
    gmtime_r(&tv.tv_sec, &tm);
    char ts[64];
    snprintf(ts, sizeof(ts), "{\"ts\":\"%04d-%02d-%02dT%02d:%02d:%02d.%03dZ\",\"level\":\"",
             tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
             (int)(tv.tv_usec / 1000));
    puts_raw(&o, ts);
    puts_raw(&o, level_names[level]);
    puts_raw(&o, "\",\"event\":");
    put_str(&o, event);
    for (int i = 0; i < n; i++) {
        char num[64];
        puts_raw(&o, ",");
        put_str(&o, kv[i].key);
        puts_raw(&o, ":");
        switch (kv[i].kind) {
        case RD_KV_STR:
            if (kv[i].s == NULL)
                puts_raw(&o, "null");
            else
                put_str(&o, kv[i].s);
            break;
        case RD_KV_INT:
            snprintf(num, sizeof(num), "%lld", (long long)kv[i].i);
            puts_raw(&o, num);
            break;
        case RD_KV_DBL:
            snprintf(num, sizeof(num), "%.6g", kv[i].d);
            puts_raw(&o, num);
            break;
        case RD_KV_ERRNO: {
            char eb[128];
            int e = (int)(kv[i].i < 0 ? -kv[i].i : kv[i].i);
            put_str(&o, strerror_r(e, eb, sizeof(eb)));
            break;
        }
        }
    }
    /* cap - 2 was kept for these two */
    buf[o.len++] = '}';
    buf[o.len] = '\n';
    return o.len;
}

void log_emit(rd_log_level level, const char *event, const rd_kv *kv, int n)
{
    char buf[LOG_LINE_MAX];
    int len = log_format(buf, sizeof(buf), level, event, kv, n);
    ssize_t w = write(STDERR_FILENO, buf, (size_t)len + 1);
    (void)w; /* nowhere left to report a failing stderr */
}
