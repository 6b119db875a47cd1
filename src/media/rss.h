/* A media job's peak resident memory, as its result reports it.
 *
 * owns:  nothing; reads and resets the kernel's per-process mark. */
#ifndef REELD_MEDIA_RSS_H
#define REELD_MEDIA_RSS_H

#include <stdint.h>

/* Resets the kernel's peak-RSS mark so rss_peak_kb at the job's end is the job's peak (Linux:
 * writing 5 to clear_refs). Best effort: without it the figure is the process's peak so far. */
void rss_reset_peak(void);

/* The process's peak resident memory in KiB since the last reset (VmHWM; getrusage's
 * ru_maxrss where /proc is missing). */
int64_t rss_peak_kb(void);

#endif
