/* GPU probing. Every failure here is an answer, not an error: it lands in `reason`. FFmpeg's
 * own log is silenced around the probe, since "cannot load libcuda.so.1" is the expected answer
 * on a CPU machine and must not look like a fault. */
#include "src/media/hwprobe.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libavcodec/avcodec.h>
#include <libavutil/hwcontext.h>

#include "src/rt/log.h"

/* Opens one small h264_nvenc session on `device`; the context is the caller's to free. */
static int open_session(AVBufferRef *device, AVCodecContext **out)
{
    const AVCodec *codec = avcodec_find_encoder_by_name("h264_nvenc");
    if (codec == NULL)
        return -ENOSYS;
    AVCodecContext *c = avcodec_alloc_context3(codec);
    if (c == NULL)
        return -ENOMEM;
    c->width = 256;
    c->height = 256;
    c->pix_fmt = AV_PIX_FMT_YUV420P;
    c->time_base = (AVRational){1, 30};
    c->hw_device_ctx = av_buffer_ref(device);
    int r = avcodec_open2(c, codec, NULL);
    if (r < 0) {
        avcodec_free_context(&c);
        return r;
    }
    *out = c;
    return 0;
}

static int probe_gpu(int index, int max_sessions, hwprobe_gpu *g, char *why, size_t whylen)
{
    char name[16];
    snprintf(name, sizeof(name), "%d", index);
    AVBufferRef *dev = NULL;
    int r = av_hwdevice_ctx_create(&dev, AV_HWDEVICE_TYPE_CUDA, name, NULL, 0);
    if (r < 0) {
        snprintf(why, whylen, "no CUDA device %d: no NVIDIA driver, GPU or CUDA library (%s)",
                 index, av_err2str(r));
        return r;
    }
    AVCodecContext **open = calloc((size_t)max_sessions, sizeof(*open));
    if (open == NULL) {
        av_buffer_unref(&dev);
        return -ENOMEM;
    }
    int n = 0;
    while (n < max_sessions && (r = open_session(dev, &open[n])) == 0)
        n++;
    for (int i = 0; i < n; i++)
        avcodec_free_context(&open[i]);
    free(open);
    if (n == 0) {
        snprintf(why, whylen, "GPU %d has no usable NVENC (%s)", index, av_err2str(r));
        av_buffer_unref(&dev);
        return r < 0 ? r : -ENODEV;
    }
    g->index = index;
    g->sessions = n;
    g->device = dev;
    return 0;
}

int hwprobe_run(const char *want, const char *gpu_devices, int sessions_per_gpu, int cpu_slots,
                hwprobe_result *res)
{
    memset(res, 0, sizeof(*res));
    res->encoder = MEDIA_ENC_X264;
    int x264_only = want != NULL && !strcmp(want, "x264");
    char why[128] = "ENCODER=x264";
    if (!x264_only) {
        av_log_set_level(AV_LOG_QUIET);
        const char *p = gpu_devices != NULL ? gpu_devices : "";
        for (int i = 0; res->ngpus < HWPROBE_MAX_GPUS; i++) {
            int index = i;
            if (*p != '\0') {
                char *end;
                index = (int)strtol(p, &end, 10);
                p = *end == ',' ? end + 1 : end;
            } else if (gpu_devices != NULL && *gpu_devices != '\0') {
                break;
            }
            hwprobe_gpu *g = &res->gpus[res->ngpus];
            if (probe_gpu(index, sessions_per_gpu, g, why, sizeof(why)) == 0) {
                res->ngpus++;
                res->sessions += g->sessions;
            } else if (gpu_devices == NULL || *gpu_devices == '\0') {
                break; /* devices are numbered from 0: the first missing one ends the list */
            }
        }
        av_log_set_level(AV_LOG_INFO);
    }
    if (res->ngpus > 0) {
        res->encoder = MEDIA_ENC_NVENC;
        snprintf(res->reason, sizeof(res->reason), "%d GPU(s), %d NVENC session(s)", res->ngpus,
                 res->sessions);
    } else {
        res->sessions = cpu_slots > 0 ? cpu_slots : 1;
        snprintf(res->reason, sizeof(res->reason), "%s", why);
    }
    int refused = want != NULL && !strcmp(want, "nvenc") && res->encoder != MEDIA_ENC_NVENC;
    if (refused) {
        log_error("encoder_selected", KV_STR("encoder", "none"), KV_STR("wanted", want),
                  KV_STR("reason", res->reason));
        return -ENODEV;
    }
    log_info("encoder_selected",
             KV_STR("encoder", res->encoder == MEDIA_ENC_NVENC ? "nvenc" : "x264"),
             KV_STR("wanted", want ? want : "auto"), KV_INT("gpus", res->ngpus),
             KV_INT("sessions", res->sessions), KV_STR("reason", res->reason));
    return 0;
}

void hwprobe_free(hwprobe_result *res)
{
    for (int i = 0; i < res->ngpus; i++) {
        AVBufferRef *dev = res->gpus[i].device;
        av_buffer_unref(&dev);
        res->gpus[i].device = NULL;
    }
    res->ngpus = 0;
    res->encoder = MEDIA_ENC_X264;
}
