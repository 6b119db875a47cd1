/* FFmpeg's log, brought into reeld's: its errors become JSON lines ("ffmpeg" events), the
 * rest (libx264's statistics, muxer chatter) is dropped unless REELD_LOG=debug.
 *
 * owns:  nothing; sets FFmpeg's process-wide log callback. */
#ifndef REELD_MEDIA_AVLOG_H
#define REELD_MEDIA_AVLOG_H

#include <stddef.h>

/* Installs the callback. Any thread, idempotent; call before the first FFmpeg use. */
void avlog_install(void);

/* Until avlog_capture_end, the last error FFmpeg logs on this thread is also copied into `buf`
 * (`len` bytes, emptied now), even while FFmpeg's log is silenced (the GPU probe): so a failure
 * such as an NVENC open can carry FFmpeg's own words ("OpenEncodeSessionEx failed: out of
 * memory") instead of a bare "Invalid argument". Needs avlog_install. */
void avlog_capture_begin(char *buf, size_t len);
void avlog_capture_end(void);

#endif
