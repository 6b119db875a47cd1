/* GPU probing. Every failure here is an answer, not an error: it lands in `reason`. FFmpeg's
 * own log is silenced around the probe, since "cannot load libcuda.so.1" is the expected answer
 * on a CPU machine and must not look like a fault; its last error is still captured (avlog)
 * into the GPU's `why`. */
#include "src/media/hwprobe.h"

#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libavcodec/avcodec.h>
#include <libavutil/hwcontext.h>

#include "src/media/avlog.h"
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

/* The GPUs the driver counts (cuInit, cuDeviceGetCount through libcuda, loaded here as FFmpeg
 * does), or -1 with why not. */
static int cuda_device_count(char *why, size_t whylen)
{
    void *lib = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
    if (lib == NULL) {
        snprintf(why, whylen, "no CUDA driver (%s)", dlerror());
        return -1;
    }
    int (*cu_init)(unsigned) = (int (*)(unsigned))dlsym(lib, "cuInit");
    int (*cu_count)(int *) = (int (*)(int *))dlsym(lib, "cuDeviceGetCount");
    int n = 0, r = -1;
    if (cu_init == NULL || cu_count == NULL)
        snprintf(why, whylen, "libcuda.so.1 lacks cuInit or cuDeviceGetCount");
    else if ((r = cu_init(0)) != 0)
        snprintf(why, whylen, "no CUDA device: cuInit failed (CUresult %d)", r);
    else if ((r = cu_count(&n)) != 0)
        snprintf(why, whylen, "no CUDA device: cuDeviceGetCount failed (CUresult %d)", r);
    else if (n == 0)
        snprintf(why, whylen, "no CUDA device: the driver counts no GPU");
    /* Left loaded: FFmpeg loads the same library for the device contexts. */
    return r == 0 ? n : -1;
}

/* Creates the GPU's CUDA context and opens NVENC sessions on it, up to `max`, appending them
 * to `held` (the caller closes them once every GPU is probed). */
static void probe_gpu(int index, int max, hwprobe_dev *d, AVCodecContext **held, int *nheld)
{
    char name[16], ffmsg[96];
    snprintf(name, sizeof(name), "%d", index);
    memset(d, 0, sizeof(*d));
    d->index = index;
    AVBufferRef *dev = NULL;
    avlog_capture_begin(ffmsg, sizeof(ffmsg));
    int r = av_hwdevice_ctx_create(&dev, AV_HWDEVICE_TYPE_CUDA, name, NULL, 0);
    if (r < 0) {
        snprintf(d->why, sizeof(d->why),
                 "no CUDA device %d: no NVIDIA driver, GPU or CUDA (%s%s%s)", index, av_err2str(r),
                 ffmsg[0] ? ": " : "", ffmsg);
        avlog_capture_end();
        return;
    }
    d->cuda = 1;
    d->device = dev;
    while (d->sessions < max && (r = open_session(dev, &held[*nheld])) == 0) {
        (*nheld)++;
        d->sessions++;
    }
    if (d->sessions == 0)
        snprintf(d->why, sizeof(d->why), "GPU %d has no usable NVENC (%s%s%s)", index,
                 av_err2str(r), ffmsg[0] ? ": " : "", ffmsg);
    avlog_capture_end();
}

static int listed(const hwprobe_result *res, const void *device)
{
    for (int i = 0; i < res->ngpus; i++)
        if (res->gpus[i].device == device)
            return 1;
    return 0;
}

static void append(char *buf, size_t len, const char *fmt, const char *s)
{
    size_t used = strlen(buf);
    if (used < len)
        snprintf(buf + used, len - used, fmt, s);
}

int hwprobe_decide(const char *want, const hwprobe_dev *devs, int n, int cpu_slots,
                   hwprobe_result *res)
{
    memset(res, 0, sizeof(*res));
    int slots = cpu_slots > 0 ? cpu_slots : 1;
    int x264_only = want != NULL && !strcmp(want, "x264");
    int want_nvenc = want != NULL && !strcmp(want, "nvenc");
    int nvenc = 0, cuda = 0;
    const char *first_why = NULL;
    for (int i = 0; i < n && !x264_only; i++) {
        nvenc += devs[i].cuda && devs[i].sessions > 0;
        cuda += devs[i].cuda;
        if (first_why == NULL && devs[i].why[0] != '\0')
            first_why = devs[i].why;
    }
    media_encoder enc = x264_only                 ? MEDIA_ENC_X264
                        : nvenc > 0               ? MEDIA_ENC_NVENC
                        : cuda > 0 && !want_nvenc ? MEDIA_ENC_HYBRID
                                                  : MEDIA_ENC_X264;
    res->encoder = enc;
    for (int i = 0; i < n && enc != MEDIA_ENC_X264 && res->ngpus < HWPROBE_MAX_GPUS; i++) {
        if (!devs[i].cuda || (enc == MEDIA_ENC_NVENC && devs[i].sessions == 0))
            continue;
        hwprobe_gpu *g = &res->gpus[res->ngpus++];
        g->index = devs[i].index;
        g->sessions = enc == MEDIA_ENC_NVENC ? devs[i].sessions : 0;
        g->device = devs[i].device;
        res->sessions += g->sessions;
    }
    if (enc == MEDIA_ENC_NVENC) {
        snprintf(res->reason, sizeof(res->reason), "%d GPU(s), %d NVENC session(s)", res->ngpus,
                 res->sessions);
        for (int i = 0; i < n; i++)
            if (!(devs[i].cuda && devs[i].sessions > 0))
                append(res->reason, sizeof(res->reason), "; left out: %s", devs[i].why);
    } else if (enc == MEDIA_ENC_HYBRID) {
        res->sessions = slots;
        snprintf(res->reason, sizeof(res->reason),
                 "%d GPU(s) with CUDA but no NVENC: NVDEC and scale_cuda, then libx264 (%s)",
                 res->ngpus, first_why ? first_why : "no NVENC");
    } else {
        res->sessions = slots;
        snprintf(res->reason, sizeof(res->reason), "%s",
                 x264_only   ? "ENCODER=x264"
                 : first_why ? first_why
                             : "no CUDA device");
    }
    return want_nvenc && enc != MEDIA_ENC_NVENC ? -ENODEV : 0;
}

/* CUDA numbers GPUs fastest first unless told otherwise; nvidia-smi (and so whoever writes
 * GPU_DEVICES) numbers them by PCI bus. Set before the first CUDA call of the process. */
static void pci_bus_order(void)
{
    if (getenv("CUDA_DEVICE_ORDER") == NULL)
        setenv("CUDA_DEVICE_ORDER", "PCI_BUS_ID", 0);
}

int hwprobe_run(const char *want, const char *gpu_devices, int sessions_per_gpu, int cpu_slots,
                hwprobe_result *res)
{
    hwprobe_dev devs[HWPROBE_MAX_GPUS] = {0};
    int n = 0;
    char why[160] = "";
    if (want == NULL || strcmp(want, "x264") != 0) {
        pci_bus_order();
        int max = sessions_per_gpu > 0 ? sessions_per_gpu : 1;
        AVCodecContext **held = calloc((size_t)HWPROBE_MAX_GPUS * (size_t)max, sizeof(*held));
        int nheld = 0;
        if (held == NULL)
            return -ENOMEM;
        int level = av_log_get_level();
        av_log_set_level(AV_LOG_QUIET);
        if (gpu_devices != NULL && *gpu_devices != '\0') {
            for (const char *p = gpu_devices; *p != '\0' && n < HWPROBE_MAX_GPUS;) {
                char *end;
                int index = (int)strtol(p, &end, 10);
                p = *end == ',' ? end + 1 : end;
                probe_gpu(index, max, &devs[n++], held, &nheld);
            }
        } else {
            int count = cuda_device_count(why, sizeof(why));
            for (int i = 0; i < count && n < HWPROBE_MAX_GPUS; i++)
                probe_gpu(i, max, &devs[n++], held, &nheld);
        }
        for (int i = 0; i < nheld; i++)
            avcodec_free_context(&held[i]);
        free(held);
        av_log_set_level(level);
    }
    int r = hwprobe_decide(want, devs, n, cpu_slots, res);
    if (n == 0 && why[0] != '\0' && res->encoder == MEDIA_ENC_X264 &&
        (want == NULL || strcmp(want, "x264") != 0))
        snprintf(res->reason, sizeof(res->reason), "%s", why);
    for (int i = 0; i < n; i++) {
        if (devs[i].device != NULL && !listed(res, devs[i].device)) {
            AVBufferRef *dev = devs[i].device;
            av_buffer_unref(&dev);
        }
    }
    if (r < 0) {
        log_error("encoder_selected", KV_STR("encoder", "none"), KV_STR("wanted", want),
                  KV_STR("reason", res->reason));
        for (int i = 0; i < res->ngpus; i++) {
            AVBufferRef *dev = res->gpus[i].device;
            av_buffer_unref(&dev);
        }
        res->ngpus = 0;
        res->encoder = MEDIA_ENC_X264;
        return r;
    }
    const char *name = res->encoder == MEDIA_ENC_NVENC    ? "nvenc"
                       : res->encoder == MEDIA_ENC_HYBRID ? "hybrid"
                                                          : "x264";
    log_info("encoder_selected", KV_STR("encoder", name), KV_STR("wanted", want ? want : "auto"),
             KV_INT("gpus", res->ngpus), KV_INT("sessions", res->sessions),
             KV_STR("reason", res->reason));
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
