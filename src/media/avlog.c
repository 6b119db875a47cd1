/* FFmpeg log lines arrive in pieces with a trailing newline; av_log_format_line2 assembles one
 * message per call, which is all FFmpeg's own callers ever pass. */
#include "src/media/avlog.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <libavutil/log.h>

#include "src/rt/log.h"

static __thread char *capture_buf;
static __thread size_t capture_len;

static void avlog_callback(void *avcl, int level, const char *fmt, va_list vl)
{
    int debug = log_threshold <= RD_LOG_DEBUG;
    if (capture_buf != NULL && level <= AV_LOG_ERROR) {
        va_list copy;
        va_copy(copy, vl);
        int print_prefix = 0; /* the message alone: the caller says which codec */
        char line[512];
        av_log_format_line2(avcl, level, fmt, copy, line, sizeof(line), &print_prefix);
        va_end(copy);
        size_t n = strlen(line);
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r' || line[n - 1] == ' '))
            line[--n] = '\0';
        if (n > 0)
            snprintf(capture_buf, capture_len, "%s", line);
    }
    if (level > av_log_get_level())
        return; /* a caller silenced FFmpeg (the GPU probe) */
    if (level > AV_LOG_ERROR && !(debug && level <= AV_LOG_INFO))
        return;
    char line[1024];
    int print_prefix = 1;
    av_log_format_line2(avcl, level, fmt, vl, line, sizeof(line), &print_prefix);
    size_t n = strlen(line);
    while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        line[--n] = '\0';
    if (n == 0)
        return;
    if (level <= AV_LOG_ERROR)
        log_warn("ffmpeg", KV_STR("msg", line));
    else
        log_debug("ffmpeg", KV_STR("msg", line));
}

void avlog_install(void)
{
    av_log_set_callback(avlog_callback);
}

void avlog_capture_begin(char *buf, size_t len)
{
    if (len > 0)
        buf[0] = '\0';
    capture_buf = len > 0 ? buf : NULL;
    capture_len = len;
}

void avlog_capture_end(void)
{
    capture_buf = NULL;
    capture_len = 0;
}
