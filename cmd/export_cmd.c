/* `reeld export INPUT OUTPUT.mp4 --start SEC --end SEC`: one export job (src/media/export.h)
 * on this thread, from a local file to a local MP4. Progress goes to stderr (a bar on a
 * terminal, plain lines otherwise); the outcome is one JSON line on stdout; SIGINT or SIGTERM
 * cancels the job (and removes the partial file). */
#include <errno.h>
#include <malloc.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "cmd/cli.h"
#include "cmd/cmd.h"
#include "proto/json.h"
#include "src/media/avlog.h"
#include "src/media/export.h"
#include "src/media/hwprobe.h"
#include "src/rt/log.h"

static volatile sig_atomic_t stop_asked;

static void on_signal(int sig)
{
    (void)sig;
    stop_asked = 1;
}

static int is_cancelled(void *ctx)
{
    (void)ctx;
    return stop_asked;
}

typedef struct cli {
    int tty, bar_shown;
} cli;

static void on_progress(void *ctx, const transcode_progress *p)
{
    cli *c = ctx;
    cli_progress(c->tty, &c->bar_shown, p->percent, p->fps, p->speed, p->frames);
}

static int usage_error(const char *fmt, const char *v)
{
    fprintf(stderr, "reeld export: ");
    fprintf(stderr, fmt, v);
    fprintf(stderr, "\nUsage: reeld export INPUT OUTPUT.mp4 --start SEC --end SEC [--height H] "
                    "[--captions FILE.vtt] [--encoder auto|nvenc|x264]\n");
    return 2;
}

/* Seconds (0 or more, with a fraction) as whole milliseconds; -1 when not such a number. */
static int64_t parse_ms(const char *v)
{
    char *end;
    double s = strtod(v, &end);
    if (*v == '\0' || *end != '\0' || !(s >= 0 && s <= 1e9))
        return -1;
    return (int64_t)llround(s * 1000);
}

static void json_double(json_writer *w, const char *key, double v, int decimals)
{
    char num[48];
    int n = snprintf(num, sizeof(num), "%.*f", decimals, v);
    json_key(w, key);
    json_raw(w, num, (size_t)n);
}

static void print_result(const char *out, const export_result *res)
{
    char line[1024];
    json_writer w;
    json_writer_init(&w, line, sizeof(line));
    json_object_begin(&w);
    json_key(&w, "output");
    json_str(&w, out);
    json_key(&w, "width");
    json_int64(&w, res->width);
    json_key(&w, "height");
    json_int64(&w, res->height);
    json_key(&w, "frames");
    json_int64(&w, res->frames);
    json_key(&w, "bytes");
    json_int64(&w, res->bytes);
    json_double(&w, "media_sec", res->media_sec, 3);
    json_double(&w, "wall_sec", res->wall_sec, 3);
    json_double(&w, "speed", res->wall_sec > 0 ? res->media_sec / res->wall_sec : 0, 2);
    json_key(&w, "peak_rss_kb");
    json_int64(&w, res->peak_rss_kb);
    json_key(&w, "encoder");
    json_str(&w, res->encoder);
    json_object_end(&w);
    if (json_writer_finish(&w) > 0)
        printf("%s\n", line);
}

int cmd_export(int argc, char **argv)
{
    const char *input = NULL, *output = NULL, *captions = NULL, *encoder = NULL;
    int64_t start_ms = -1, end_ms = -1;
    int height = 0;
    char **rest = calloc((size_t)argc + 1, sizeof(*rest));
    if (rest == NULL)
        return 1;
    int nrest = 0;
    rest[nrest++] = argv[0];
    static const char *const names[] = {"--start", "--end", "--height", "--captions", "--encoder"};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *val = NULL;
        int which = cli_flag(argc, argv, &i, names, 5, &val);
        int bad = 0;
        if (which >= 0 && val == NULL) {
            free(rest);
            return usage_error("%s needs a value", names[which]);
        }
        if (which == 0) {
            bad = (start_ms = parse_ms(val)) < 0;
        } else if (which == 1) {
            bad = (end_ms = parse_ms(val)) < 0;
        } else if (which == 2) {
            char *end;
            long h = strtol(val, &end, 10);
            bad = *val == '\0' || *end != '\0' || h < 2 || h > 8192 || h % 2 != 0;
            height = (int)h;
        } else if (which == 3) {
            captions = val;
        } else if (which == 4) {
            encoder = val;
            bad = strcmp(val, "auto") && strcmp(val, "nvenc") && strcmp(val, "x264");
        } else if (cli_setting(argc, argv, &i, rest, &nrest)) {
            continue; /* a setting's flag (--log ...), with its value: config_load's */
        } else if (input == NULL) {
            input = a;
        } else if (output == NULL) {
            output = a;
        } else {
            free(rest);
            return usage_error("unexpected argument '%s'", a);
        }
        if (bad) {
            free(rest);
            return usage_error(which == 2   ? "--height must be an even number of pixels (got '%s')"
                               : which == 4 ? "--encoder must be auto, nvenc or x264 (got '%s')"
                                            : "--start and --end are seconds, 0 or more (got '%s')",
                               val);
        }
    }
    if (input == NULL || output == NULL || start_ms < 0 || end_ms < 0) {
        free(rest);
        return usage_error("%s", "INPUT, OUTPUT, --start and --end are required");
    }
    if (end_ms <= start_ms) {
        free(rest);
        return usage_error("%s", "--end must come after --start");
    }

    rd_config cfg;
    char err[512];
    int r = config_load(&cfg, nrest, rest, err, sizeof(err));
    free(rest);
    if (r < 0) {
        fprintf(stderr, "reeld: %s\n", err);
        return 2;
    }
    log_set_level(cfg.log_level);
    avlog_install();
    if (encoder != NULL)
        cfg.encoder = encoder;

    export_opts o = {
        .start_ms = start_ms,
        .end_ms = end_ms,
        .height = height,
        .captions_vtt = captions,
        .encoder = MEDIA_ENC_X264,
        .max_frame_pixels = cfg.max_frame_pixels,
    };
    hwprobe_result probe = {0};
    if (strcmp(cfg.encoder, "x264") != 0) {
        /* One NVENC session is all an export needs. */
        if (hwprobe_run(cfg.encoder, cfg.gpu_devices, 1, 1, &probe) < 0) {
            fprintf(stderr, "reeld: export failed: --encoder nvenc but no GPU opened NVENC (%s)\n",
                    probe.reason);
            return 1;
        }
        if (probe.encoder == MEDIA_ENC_NVENC && probe.ngpus > 0) {
            o.encoder = MEDIA_ENC_NVENC;
            o.cuda_device = probe.gpus[0].device;
        }
    }
    if (o.encoder == MEDIA_ENC_X264) {
        /* As the CPU encoder pools do (actors/gpu_encoder.c): libx264's huge-page advice on its
         * picture buffers faults in memory past their ends, and a fixed mmap threshold gives
         * big freed blocks back. */
        prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0);
        mallopt(M_MMAP_THRESHOLD, 128 << 10);
    }

    media_source *src = NULL;
    if ((r = source_open_file(input, &src)) < 0) {
        fprintf(stderr, "reeld: export failed: cannot open %s: %s\n", input, strerror(-r));
        hwprobe_free(&probe);
        return 1;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    cli c = {.tty = isatty(STDERR_FILENO)};
    export_sink sink = {on_progress, is_cancelled, &c};
    export_result res;
    r = export_run(src, &o, output, &sink, &res, err, sizeof(err));
    source_close(src);
    hwprobe_free(&probe);
    if (c.bar_shown)
        fputc('\n', stderr);
    if (r == -ECANCELED) {
        fprintf(stderr, "reeld: export cancelled\n");
        return 130;
    }
    if (r < 0) {
        fprintf(stderr, "reeld: export failed: %s\n", err);
        return 1;
    }
    print_result(output, &res);
    return 0;
}
