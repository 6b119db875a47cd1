/* What the media tests that make their inputs with the ffmpeg CLI share: the skip when it is
 * missing, a temporary directory for the inputs and outputs, the commands that make them.
 *
 * owns:  nothing past the directory it makes (fixture_end removes it).
 * never: decides what an input looks like (each test writes its own ffmpeg command) or
 *        checks a result. Header only, like test.h: each test program is one file. */
#ifndef REELD_TEST_MEDIA_FIXTURE_H
#define REELD_TEST_MEDIA_FIXTURE_H

#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>

#include "src/media/avlog.h"

/* The start of such a program: without the ffmpeg CLI, prints that `name` is skipped and
 * returns 1 (main then returns 0). Else makes /tmp/reeld-test-NAME-XXXXXX into `dir`, keeps
 * FFmpeg's log (libx264's statistics) out of the test's output, and returns 0; -1 when the
 * directory cannot be made. */
static inline int fixture_begin(const char *name, char *dir, size_t len)
{
    if (system("command -v ffmpeg >/dev/null 2>&1") != 0) {
        printf("skip %s: no ffmpeg CLI to make inputs\n0 passed, 0 failed, 1 skipped\n", name);
        return 1;
    }
    snprintf(dir, len, "/tmp/reeld-test-%s-XXXXXX", name);
    if (mkdtemp(dir) == NULL)
        return -1;
    avlog_install();
    return 0;
}

/* Runs a shell command written as printf would (ffmpeg making an input): 0, or -1 when it
 * failed or did not fit. */
static inline int fixture_sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static inline int fixture_sh(const char *fmt, ...)
{
    char cmd[2048];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof(cmd))
        return -1;
    return system(cmd) == 0 ? 0 : -1;
}

/* The end: removes `dir` and what is in it. */
static inline void fixture_end(const char *dir)
{
    if (fixture_sh("rm -rf %s", dir) < 0)
        printf("could not remove %s\n", dir);
}

#endif
