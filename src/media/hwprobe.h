/* The encoder decision: which GPUs can run NVENC, how many sessions each; else GPUs that
 * decode and scale for libx264 (hybrid: CUDA without NVENC, as on H100 and H200); else libx264.
 *
 * owns:  one CUDA device context per usable GPU (hwprobe_free releases them).
 * never: fails when CUDA is absent: no driver, no libcuda, no GPU or a GPU without NVENC all
 *        mean "x264" or "hybrid", said in `reason`; stops at a GPU that fails: every GPU is
 *        probed, and one without NVENC leaves the others theirs.
 *
 * The probe counts the GPUs (libcuda's cuDeviceGetCount, in PCI bus order: it sets
 * CUDA_DEVICE_ORDER=PCI_BUS_ID unless set, so GPU_DEVICES numbers GPUs as nvidia-smi does),
 * creates a CUDA device context on each (FFmpeg loads libcuda at run time, so a machine without
 * it only sees the creation fail), then opens h264_nvenc sessions on it, up to the configured
 * count, to learn how many the GPU and its driver really allow. Every GPU's sessions stay open
 * until the last GPU is probed: consumer cards cap sessions for the whole system, not per
 * card, and counting card by card would promise that cap once per card. */
#ifndef REELD_MEDIA_HWPROBE_H
#define REELD_MEDIA_HWPROBE_H

#define HWPROBE_MAX_GPUS 16

typedef enum media_encoder {
    MEDIA_ENC_X264 = 0,   /* software decode, swscale, libx264 */
    MEDIA_ENC_NVENC = 1,  /* NVDEC, scale_cuda, h264_nvenc */
    MEDIA_ENC_HYBRID = 2, /* NVDEC, scale_cuda, download, libx264: a GPU without NVENC */
} media_encoder;

typedef struct hwprobe_gpu {
    int index;    /* CUDA device index */
    int sessions; /* NVENC sessions that opened at once (0 on hybrid) */
    void *device; /* AVBufferRef * of the CUDA device context */
} hwprobe_gpu;

/* What the probe learnt of one GPU: the input of hwprobe_decide. */
typedef struct hwprobe_dev {
    int index;     /* CUDA device index */
    int cuda;      /* a CUDA device context was created */
    int sessions;  /* NVENC sessions that opened, the GPUs probed before still holding theirs */
    void *device;  /* AVBufferRef * of the context, or NULL; hwprobe_decide only copies it */
    char why[256]; /* when !cuda or no sessions: why, with FFmpeg's own message */
} hwprobe_dev;

typedef struct hwprobe_result {
    media_encoder encoder; /* the decision */
    int ngpus;
    hwprobe_gpu gpus[HWPROBE_MAX_GPUS];
    int sessions;     /* NVENC sessions over all GPUs, or CPU slots for x264 and hybrid */
    char reason[384]; /* why: "2 GPUs, 16 NVENC sessions" or "no CUDA device (...)" */
} hwprobe_result;

/* The decision over the probed GPUs `devs` (n of them), without touching a device. `want` is
 * ENCODER: "x264" takes libx264 whatever the GPUs; otherwise the GPUs with NVENC sessions make
 * it NVENC (the others are left out, said in `reason`); with none, "auto" takes hybrid on the
 * GPUs whose CUDA works, else x264. `cpu_slots` is the libx264 encoders of x264 and hybrid.
 * Fills `res` (device pointers copied from `devs`); returns 0, or -ENODEV when `want` is "nvenc"
 * and no GPU has NVENC (`res` then says x264, and why). */
int hwprobe_decide(const char *want, const hwprobe_dev *devs, int n, int cpu_slots,
                   hwprobe_result *res);

/* Probes and decides. `want` is ENCODER (auto|nvenc|x264), `gpu_devices` GPU_DEVICES (comma-
 * separated indexes, empty: every GPU the driver counts), `sessions_per_gpu` the most NVENC
 * sessions to try per GPU, `cpu_slots` the libx264 encoders to run when there is no NVENC.
 * Returns 0, or -ENODEV when `want` is "nvenc" and none opened (`res->reason` says why). Logs
 * the decision as one line ("encoder_selected") naming the path and why. */
int hwprobe_run(const char *want, const char *gpu_devices, int sessions_per_gpu, int cpu_slots,
                hwprobe_result *res);

/* Releases the device contexts; the result then says x264 with no GPUs. */
void hwprobe_free(hwprobe_result *res);

#endif
