/* The one-job commands' shared command-line pieces (cmd/cli.h). */
#include "cmd/cli.h"

#include <stdio.h>
#include <string.h>

int cli_flag(int argc, char **argv, int *i, const char *const *names, int n, const char **val)
{
    const char *a = argv[*i];
    for (int k = 0; k < n; k++) {
        size_t len = strlen(names[k]);
        if (!strncmp(a, names[k], len) && (a[len] == '=' || a[len] == '\0')) {
            *val = a[len] == '=' ? a + len + 1 : (*i + 1 < argc ? argv[++*i] : NULL);
            return k;
        }
    }
    return -1;
}

int cli_setting(int argc, char **argv, int *i, char **rest, int *nrest)
{
    const char *a = argv[*i];
    if (a[0] != '-' || a[1] != '-')
        return 0;
    rest[(*nrest)++] = argv[*i];
    if (strchr(a, '=') == NULL && *i + 1 < argc)
        rest[(*nrest)++] = argv[++*i];
    return 1;
}

void cli_progress(int tty, int *bar_shown, double percent, double fps, double speed, int64_t frames)
{
    if (tty) {
        char bar[31];
        int fill = (int)(percent * 30 / 100);
        for (int k = 0; k < 30; k++)
            bar[k] = k < fill ? '#' : '-';
        bar[30] = '\0';
        fprintf(stderr, "\r[%s] %5.1f%%  %6.1f fps  %5.2fx ", bar, percent, fps, speed);
        *bar_shown = 1;
    } else {
        fprintf(stderr, "progress %.1f%% fps=%.1f speed=%.2fx frames=%lld\n", percent, fps, speed,
                (long long)frames);
    }
}
