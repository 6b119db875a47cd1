/* FFmpeg's log, brought into reeld's: its errors become JSON lines ("ffmpeg" events), the
 * rest (libx264's statistics, muxer chatter) is dropped unless REELD_LOG=debug.
 *
 * owns:  nothing; sets FFmpeg's process-wide log callback. */
#ifndef REELD_MEDIA_AVLOG_H
#define REELD_MEDIA_AVLOG_H

/* Installs the callback. Any thread, idempotent; call before the first FFmpeg use. */
void avlog_install(void);

#endif
