/* `reeld transcode INPUT OUTDIR`: one job through the same encoder actor the server runs, with
 * a directory writer as its sink. Progress goes to stderr (a bar on a terminal, plain lines
 * otherwise); the outcome is one line; SIGINT or SIGTERM cancels the job. */
#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "actors/gpu_encoder.h"
#include "actors/hls_dir_writer.h"
#include "src/cmd.h"
#include "src/rt/log.h"
#include "src/rt/runtime.h"

typedef struct cli {
    int tty;
    int bar_shown;
    _Atomic int done;
    struct rd_msg_transcode_done result;
    char write_error[320];
} cli;

static void on_progress(void *ctx, const struct rd_msg_transcode_progress *p)
{
    cli *c = ctx;
    if (c->tty) {
        char bar[31];
        int fill = (int)(p->percent * 30 / 100);
        for (int i = 0; i < 30; i++)
            bar[i] = i < fill ? '#' : '-';
        bar[30] = '\0';
        fprintf(stderr, "\r[%s] %5.1f%%  %6.1f fps  %5.2fx ", bar, p->percent, p->fps, p->speed);
        c->bar_shown = 1;
    } else {
        fprintf(stderr, "progress %.1f%% fps=%.1f speed=%.2fx frames=%lld\n", p->percent, p->fps,
                p->speed, (long long)p->frames);
    }
}

static void on_done(void *ctx, const struct rd_msg_transcode_done *d, const char *write_error)
{
    cli *c = ctx;
    c->result = *d;
    if (write_error != NULL)
        snprintf(c->write_error, sizeof(c->write_error), "%s", write_error);
    atomic_store(&c->done, 1);
}

static int usage_error(const char *fmt, const char *v)
{
    fprintf(stderr, "reeld transcode: ");
    fprintf(stderr, fmt, v);
    fprintf(stderr, "\nUsage: reeld transcode INPUT OUTDIR [--preset auto|1080p|720p|480p] "
                    "[--encoder auto|nvenc|x264] [--segment SECONDS] [--format ts|fmp4]\n");
    return 2;
}

static int one_of(const char *v, const char *const *set)
{
    for (; *set != NULL; set++)
        if (!strcmp(v, *set))
            return 1;
    return 0;
}

int cmd_transcode(int argc, char **argv)
{
    static const char *const presets[] = {"auto", "1080p", "720p", "480p", NULL};
    static const char *const encoders[] = {"auto", "nvenc", "x264", NULL};
    static const char *const formats[] = {"ts", "fmp4", NULL};
    const char *input = NULL, *outdir = NULL, *preset = NULL, *encoder = NULL, *format = NULL;
    int segment = 0;
    char **rest = calloc((size_t)argc + 1, sizeof(*rest));
    if (rest == NULL)
        return 1;
    int nrest = 0;
    rest[nrest++] = argv[0];
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *names[] = {"--preset", "--encoder", "--segment", "--format"};
        const char *val = NULL;
        int which = -1;
        for (int k = 0; k < 4 && which < 0; k++) {
            size_t n = strlen(names[k]);
            if (!strncmp(a, names[k], n) && (a[n] == '=' || a[n] == '\0')) {
                which = k;
                val = a[n] == '=' ? a + n + 1 : (i + 1 < argc ? argv[++i] : NULL);
            }
        }
        if (which >= 0 && val == NULL) {
            free(rest);
            return usage_error("%s needs a value", names[which]);
        }
        if (which == 0)
            preset = val;
        else if (which == 1)
            encoder = val;
        else if (which == 2) {
            char *end;
            long s = strtol(val, &end, 10);
            if (*val == '\0' || *end != '\0' || s < 1 || s > 30) {
                free(rest);
                return usage_error("--segment must be whole seconds from 1 to 30 (got '%s')", val);
            }
            segment = (int)s;
        } else if (which == 3) {
            format = val;
        } else if (a[0] == '-' && a[1] == '-') {
            rest[nrest++] = argv[i]; /* a setting's flag (--log ...), with its value */
            if (strchr(a, '=') == NULL && i + 1 < argc)
                rest[nrest++] = argv[++i];
        } else if (input == NULL) {
            input = a;
        } else if (outdir == NULL) {
            outdir = a;
        } else {
            free(rest);
            return usage_error("unexpected argument '%s'", a);
        }
    }
    if (input == NULL || outdir == NULL) {
        free(rest);
        return usage_error("%s", "INPUT and OUTDIR are required");
    }
    if (preset != NULL && !one_of(preset, presets)) {
        free(rest);
        return usage_error("--preset must be auto, 1080p, 720p or 480p (got '%s')", preset);
    }
    if (encoder != NULL && !one_of(encoder, encoders)) {
        free(rest);
        return usage_error("--encoder must be auto, nvenc or x264 (got '%s')", encoder);
    }
    if (format != NULL && !one_of(format, formats)) {
        free(rest);
        return usage_error("--format must be ts or fmp4 (got '%s')", format);
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
    if (preset != NULL)
        cfg.preview_preset = preset;
    if (encoder != NULL)
        cfg.encoder = encoder;
    if (segment > 0)
        cfg.hls_segment_sec = segment;
    if (format != NULL)
        cfg.hls_segment_format = format;
    if (access(input, R_OK) < 0) {
        fprintf(stderr, "reeld: transcode failed: cannot read %s: %s\n", input, strerror(errno));
        return 1;
    }
    rt_block_signals();

    cli c = {.tty = isatty(STDERR_FILENO)};
    hlsdir_arg warg = {outdir, on_progress, on_done, &c};
    rd_actor *writer;
    if ((r = hlsdir_spawn(&warg, &writer)) < 0) {
        fprintf(stderr, "reeld: transcode failed: cannot start the writer: %s\n", strerror(-r));
        return 1;
    }
    encoder_pool pool;
    if ((r = encoder_pool_start(&cfg, 1, 1, &pool, err, sizeof(err))) < 0) {
        fprintf(stderr, "reeld: transcode failed: %s\n", err);
        actor_stop(writer);
        actor_join(writer);
        actor_free_all();
        return 1;
    }

    rd_msg *m = msg_new(MSG_TRANSCODE);
    struct rd_msg_transcode *t = msg_body(m, transcode);
    t->job = 1;
    t->sink = writer;
    snprintf(t->input, sizeof(t->input), "%s", input);
    snprintf(t->preset, sizeof(t->preset), "%s", cfg.preview_preset);
    t->segment_sec = cfg.hls_segment_sec;
    snprintf(t->format, sizeof(t->format), "%s", cfg.hls_segment_format);
    if (actor_send(pool.actors[0], m) < 0) {
        msg_free(m);
        atomic_store(&c.done, 1);
        c.result.status = -EPIPE;
        snprintf(c.result.error, sizeof(c.result.error), "the encoder did not start");
    }

    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    int cancel_sent = 0;
    while (!atomic_load(&c.done)) {
        struct timespec tick = {0, 100000000L};
        int sig = sigtimedwait(&sigs, NULL, &tick);
        if ((sig == SIGINT || sig == SIGTERM) && !cancel_sent) {
            rd_msg *cm = msg_new(MSG_TRANSCODE_CANCEL);
            msg_body(cm, transcode_cancel)->job = 1;
            if (actor_send(pool.actors[0], cm) < 0)
                msg_free(cm);
            cancel_sent = 1;
        }
    }
    encoder_pool_stop(&pool);
    actor_stop(writer);
    actor_join(writer);
    actor_free_all();

    if (c.bar_shown && c.result.status == 0)
        fprintf(stderr, "\r[##############################] 100.0%%\n");
    else if (c.bar_shown)
        fputc('\n', stderr);
    const struct rd_msg_transcode_done *d = &c.result;
    if (d->status == -ECANCELED) {
        fprintf(stderr, "reeld: transcode cancelled\n");
        return 130;
    }
    if (d->status < 0 || c.write_error[0] != '\0') {
        fprintf(stderr, "reeld: transcode failed: %s\n", d->status < 0 ? d->error : c.write_error);
        return 1;
    }
    printf("%s: %d rendition(s) of the %s ladder, %lld segments, %.1f s of media in %.1f s "
           "(%.2fx, %.1f fps, %s), peak RSS %lld MB\n",
           outdir, d->rungs, d->preset, (long long)d->segments, d->media_sec, d->wall_sec,
           d->wall_sec > 0 ? d->media_sec / d->wall_sec : 0,
           d->wall_sec > 0 ? (double)d->frames / d->wall_sec : 0, d->encoder,
           (long long)(d->peak_rss_kb / 1024));
    return 0;
}
