#include "src/media/rss.h"

#include <stdio.h>
#include <sys/resource.h>

int64_t rss_peak_kb(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[128];
    int64_t kb = -1;
    while (f != NULL && fgets(line, sizeof(line), f) != NULL)
        if (sscanf(line, "VmHWM: %lld", (long long *)&kb) == 1)
            break;
    if (f != NULL)
        fclose(f);
    if (kb < 0) {
        struct rusage ru;
        getrusage(RUSAGE_SELF, &ru);
        kb = ru.ru_maxrss;
    }
    return kb;
}

void rss_reset_peak(void)
{
    FILE *f = fopen("/proc/self/clear_refs", "w");
    if (f != NULL) {
        fputs("5", f);
        fclose(f);
    }
}
