/* `reeld transcode INPUT OUTDIR`: one job through the same encoder actor the server runs, with
 * a directory writer as its sink. Progress goes to stderr (a bar on a terminal, plain lines
 * otherwise); the outcome is one line; SIGINT or SIGTERM cancels the job.
 *
 * `reeld transcode INPUT --upload --asset ID`: the same job with the server's s3-uploader as its
 * sink, publishing to S3_BUCKET_PREVIEWS under ID/hls/ (S3_ENDPOINT set) or to the fs backend
 * under REELD_DATA_DIR (unset). When INPUT is a directory holding a ladder made earlier, its
 * files are published as they are, without encoding (to measure or repeat an upload). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "actors/gpu_encoder.h"
#include "actors/hls_dir_writer.h"
#include "actors/s3_uploader.h"
#include "src/blob/backend.h"
#include "cmd/cli.h"
#include "cmd/cmd.h"
#include "src/net/tls.h"
#include "src/rt/log.h"
#include "src/rt/metrics.h"
#include "src/rt/runtime.h"

typedef struct cli {
    int tty;
    int bar_shown;
    _Atomic int done;
    struct rd_msg_transcode_done result;
    char write_error[320];
    struct rd_msg_upload_done upload; /* --upload: the uploader's report */
} cli;

static void on_progress(void *ctx, const struct rd_msg_transcode_progress *p)
{
    cli *c = ctx;
    cli_progress(c->tty, &c->bar_shown, p->percent, p->fps, p->speed, p->frames);
}

static void on_done(void *ctx, const struct rd_msg_transcode_done *d, const char *write_error)
{
    cli *c = ctx;
    c->result = *d;
    if (write_error != NULL)
        snprintf(c->write_error, sizeof(c->write_error), "%s", write_error);
    atomic_store(&c->done, 1);
}

/* --upload: the job's notify actor, a thread actor handing the messages to the callbacks. */
static int notify_handle(rd_actor *self, rd_msg *m)
{
    cli *c = self->state;
    if (m->type == MSG_TRANSCODE_PROGRESS) {
        on_progress(c, msg_body(m, transcode_progress));
    } else if (m->type == MSG_TRANSCODE_DONE) {
        c->result = *msg_body(m, transcode_done);
    } else if (m->type == MSG_UPLOAD_DONE) {
        c->upload = *msg_body(m, upload_done);
        atomic_store(&c->done, 1);
    }
    return RD_DONE;
}

static const rd_actor_def notify_def = {
    .name = "transcode_cli",
    .handle = notify_handle,
    .mailbox_bound = 64,
};

/* --poster-time SECONDS and --mp4: what a promote body may ask for, per job;
 * --cascade: each rung scaled from the next larger one (src/media/transcode.h). */
static double poster_time = -1;
static int want_mp4, cascade;

static void set_picture_options(struct rd_msg_transcode *t)
{
    t->has_poster_time = poster_time >= 0;
    t->poster_time = poster_time >= 0 ? poster_time : 0;
    t->mp4 = (uint8_t)want_mp4;
    t->cascade = (uint8_t)cascade;
}

static int usage_error(const char *fmt, const char *v)
{
    fprintf(stderr, "reeld transcode: ");
    fprintf(stderr, fmt, v);
    fprintf(stderr, "\nUsage: reeld transcode INPUT OUTDIR [--preset auto|1080p|720p|480p] "
                    "[--encoder auto|nvenc|x264] [--segment SECONDS] [--format ts|fmp4]\n"
                    "       [--poster-time SECONDS] [--mp4] [--cascade]\n"
                    "       reeld transcode INPUT --upload --asset ID [OPTIONS]\n");
    return 2;
}

static int one_of(const char *v, const char *const *set)
{
    for (; *set != NULL; set++)
        if (!strcmp(v, *set))
            return 1;
    return 0;
}

/* Sends `m` to `to`, waiting while its mailbox is full. 0 or -EPIPE (`m` freed). */
static int send_waiting(rd_actor *to, rd_msg *m)
{
    int r;
    while ((r = actor_send(to, m)) == -EAGAIN) {
        struct timespec ts = {0, 2000000L};
        nanosleep(&ts, NULL);
    }
    if (r < 0)
        msg_free(m);
    return r;
}

/* Hands every file under dir/sub (a ladder made earlier) to the uploader as job 1's objects. */
static int feed_dir(rd_actor *uploader, const char *dir, const char *sub, int64_t *count)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s%s%s", dir, sub[0] ? "/" : "", sub);
    DIR *d = opendir(path);
    if (d == NULL)
        return -errno;
    struct dirent *e;
    int r = 0;
    while (r == 0 && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.' || strstr(e->d_name, ".tmp") != NULL)
            continue;
        char name[320], file[4500];
        snprintf(name, sizeof(name), "%s%s%s", sub, sub[0] ? "/" : "", e->d_name);
        snprintf(file, sizeof(file), "%s/%s", dir, name);
        struct stat st;
        if (stat(file, &st) < 0) {
            r = -errno;
        } else if (S_ISDIR(st.st_mode)) {
            r = feed_dir(uploader, dir, name, count);
        } else if (strlen(name) >= sizeof(((struct rd_msg_hls_object *)0)->name)) {
            r = -ENAMETOOLONG;
        } else {
            uint8_t *data = malloc(st.st_size > 0 ? (size_t)st.st_size : 1);
            int fd = open(file, O_RDONLY | O_CLOEXEC);
            ssize_t got = fd >= 0 && data != NULL ? read(fd, data, (size_t)st.st_size) : -1;
            if (fd >= 0)
                close(fd);
            if (got != (ssize_t)st.st_size) {
                free(data);
                r = got < 0 ? -errno : -EIO;
                break;
            }
            rd_msg *m = msg_new(MSG_HLS_OBJECT);
            struct rd_msg_hls_object *o = msg_body(m, hls_object);
            o->job = 1;
            memcpy(o->name, name, strlen(name) + 1); /* length checked above */
            o->data = data;
            o->len = (size_t)st.st_size;
            r = send_waiting(uploader, m);
            (*count)++;
        }
    }
    closedir(d);
    return r;
}

/* Waits for job 1 to end; SIGINT or SIGTERM cancels it at the pool's encoder (once). Returns 1
 * when a cancel was sent. */
static int wait_cancelling(cli *c, const encoder_pool *pool)
{
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    int cancel_sent = 0;
    while (!atomic_load(&c->done)) {
        struct timespec tick = {0, 100000000L};
        int sig = sigtimedwait(&sigs, NULL, &tick);
        if ((sig == SIGINT || sig == SIGTERM) && !cancel_sent && pool->n > 0) {
            rd_msg *cm = msg_new(MSG_TRANSCODE_CANCEL);
            msg_body(cm, transcode_cancel)->job = 1;
            if (actor_send(pool->actors[0], cm) < 0)
                msg_free(cm);
            cancel_sent = 1;
        }
    }
    return cancel_sent;
}

static int run_upload(const rd_config *cfg, const char *input, const char *asset)
{
    char err[512];
    int status = 1, r;
    rd_runtime rt = {0};
    blob_backend bk = {0};
    rd_actor *notify = NULL, *up = NULL;
    encoder_pool pool = {0};
    cli c = {.tty = isatty(STDERR_FILENO)};
    struct stat st;
    int from_dir = stat(input, &st) == 0 && S_ISDIR(st.st_mode);

    if ((r = rt_start(&rt, 1)) < 0) {
        fprintf(stderr, "reeld: upload failed: cannot start a loop (%s)\n", strerror(-r));
        return 1;
    }
    if (blob_backend_open(&bk, cfg, rt.loops, 1, err, sizeof(err)) < 0) {
        fprintf(stderr, "reeld: upload failed: %s\n", err);
        goto out;
    }
    uploader_arg ua = {bk.aio, cfg->s3_bucket_previews, cfg->upload_concurrency};
    if ((r = actor_spawn_thread(&notify_def, &c, -1, &notify)) < 0 ||
        (r = uploader_spawn(&ua, &up)) < 0) {
        fprintf(stderr, "reeld: upload failed: cannot start the uploader: %s\n", strerror(-r));
        goto out;
    }
    if (!from_dir && (r = encoder_pool_start(cfg, 1, 1, NULL, &pool, err, sizeof(err))) < 0) {
        fprintf(stderr, "reeld: transcode failed: %s\n", err);
        goto out;
    }
    rd_msg *m = msg_new(MSG_UPLOAD_JOB);
    msg_body(m, upload_job)->job = 1;
    snprintf(msg_body(m, upload_job)->asset, sizeof(msg_body(m, upload_job)->asset), "%s", asset);
    msg_body(m, upload_job)->notify = notify;
    msg_body(m, upload_job)->encoder = pool.n > 0 ? pool.actors[0] : NULL;
    send_waiting(up, m);

    if (from_dir) {
        int64_t count = 0;
        r = feed_dir(up, input, "", &count);
        m = msg_new(MSG_TRANSCODE_DONE);
        struct rd_msg_transcode_done *d = msg_body(m, transcode_done);
        d->job = 1;
        d->status = r;
        if (r < 0)
            snprintf(d->error, sizeof(d->error), "reading the ladder in %.200s failed: %s", input,
                     strerror(-r));
        send_waiting(up, m);
    } else {
        m = msg_new(MSG_TRANSCODE);
        struct rd_msg_transcode *t = msg_body(m, transcode);
        t->job = 1;
        t->sink = up;
        snprintf(t->input, sizeof(t->input), "%s", input);
        snprintf(t->preset, sizeof(t->preset), "%s", cfg->preview_preset);
        t->segment_sec = cfg->hls_segment_sec;
        snprintf(t->format, sizeof(t->format), "%s", cfg->hls_segment_format);
        set_picture_options(t);
        send_waiting(pool.actors[0], m);
    }
    int cancel_sent = wait_cancelling(&c, &pool);
    if (c.bar_shown)
        fputc('\n', stderr);
    const struct rd_msg_upload_done *u = &c.upload;
    if (cancel_sent) {
        fprintf(stderr, "reeld: transcode cancelled\n");
        status = 130;
    } else if (c.result.status < 0 && c.result.status != -ECANCELED) {
        fprintf(stderr, "reeld: transcode failed: %s\n", c.result.error);
    } else if (u->status < 0) {
        fprintf(stderr, "reeld: upload failed: %s\n", u->error);
    } else {
        printf("%s/%s/hls/master.m3u8: %lld objects, %.1f MB in %.2f s (%.1f MB/s)\n",
               bk.s3 != NULL ? cfg->s3_bucket_previews : "blobs", asset, (long long)u->objects,
               (double)u->bytes / 1e6, u->wall_sec,
               u->wall_sec > 0 ? (double)u->bytes / 1e6 / u->wall_sec : 0);
        status = 0;
    }
out:
    if (pool.n > 0)
        encoder_pool_stop(&pool);
    if (up != NULL) {
        actor_stop(up);
        actor_join(up);
    }
    if (notify != NULL) {
        actor_stop(notify);
        actor_join(notify);
    }
    if (rt.loops != NULL)
        rt_stop(&rt, 2000000000ull);
    blob_backend_close(&bk);
    actor_free_all();
    metrics_free_all();
    return status;
}

int cmd_transcode(int argc, char **argv)
{
    static const char *const presets[] = {"auto", "1080p", "720p", "480p", NULL};
    static const char *const encoders[] = {"auto", "nvenc", "x264", NULL};
    static const char *const formats[] = {"ts", "fmp4", NULL};
    const char *input = NULL, *outdir = NULL, *preset = NULL, *encoder = NULL, *format = NULL;
    const char *asset = NULL;
    int segment = 0, upload = 0;
    char **rest = calloc((size_t)argc + 1, sizeof(*rest));
    if (rest == NULL)
        return 1;
    int nrest = 0;
    rest[nrest++] = argv[0];
    for (int i = 1; i < argc; i++) {
        static const char *const names[] = {"--preset", "--encoder", "--segment",
                                            "--format", "--asset",   "--poster-time"};
        const char *a = argv[i];
        const char *val = NULL;
        if (!strcmp(a, "--upload")) {
            upload = 1;
            continue;
        }
        if (!strcmp(a, "--mp4")) {
            want_mp4 = 1;
            continue;
        }
        if (!strcmp(a, "--cascade")) {
            cascade = 1;
            continue;
        }
        int which = cli_flag(argc, argv, &i, names, 6, &val);
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
        } else if (which == 4) {
            asset = val;
        } else if (which == 5) {
            char *end;
            double t = strtod(val, &end);
            if (*val == '\0' || *end != '\0' || !(t >= 0 && t <= 1e7)) {
                free(rest);
                return usage_error("--poster-time must be seconds, 0 or more (got '%s')", val);
            }
            poster_time = t;
        } else if (cli_setting(argc, argv, &i, rest, &nrest)) {
            continue; /* a setting's flag (--log ...), with its value: config_load's */
        } else if (input == NULL) {
            input = a;
        } else if (outdir == NULL) {
            outdir = a;
        } else {
            free(rest);
            return usage_error("unexpected argument '%s'", a);
        }
    }
    if (upload && (outdir != NULL || asset == NULL)) {
        free(rest);
        return usage_error("%s", "--upload takes INPUT and --asset ID, and no OUTDIR");
    }
    if (!upload && asset != NULL) {
        free(rest);
        return usage_error("%s", "--asset goes with --upload");
    }
    if (input == NULL || (outdir == NULL && !upload)) {
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
    if (upload)
        return run_upload(&cfg, input, asset);

    cli c = {.tty = isatty(STDERR_FILENO)};
    hlsdir_arg warg = {outdir, on_progress, on_done, &c};
    rd_actor *writer;
    if ((r = hlsdir_spawn(&warg, &writer)) < 0) {
        fprintf(stderr, "reeld: transcode failed: cannot start the writer: %s\n", strerror(-r));
        return 1;
    }
    encoder_pool pool;
    if ((r = encoder_pool_start(&cfg, 1, 1, NULL, &pool, err, sizeof(err))) < 0) {
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
    set_picture_options(t);
    if (actor_send(pool.actors[0], m) < 0) {
        msg_free(m);
        atomic_store(&c.done, 1);
        c.result.status = -EPIPE;
        snprintf(c.result.error, sizeof(c.result.error), "the encoder did not start");
    }

    wait_cancelling(&c, &pool); /* a cancelled job ends -ECANCELED: said below */
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
