/* The encoder decision: which GPUs can run NVENC, how many sessions each, or libx264.
 *
 * owns:  one CUDA device context per usable GPU (hwprobe_free releases them).
 * never: fails when CUDA is absent: no driver, no libcuda, no GPU or a GPU without NVENC all
 *        mean "x264", said in `reason`.
 *
 * The probe creates a CUDA device context (FFmpeg loads libcuda at run time, so a machine
 * without it only sees the creation fail), then opens h264_nvenc sessions on it, up to the
 * configured count, to learn how many the GPU and its driver really allow. */
#ifndef REELD_MEDIA_HWPROBE_H
#define REELD_MEDIA_HWPROBE_H

#define HWPROBE_MAX_GPUS 16

typedef enum media_encoder { MEDIA_ENC_X264 = 0, MEDIA_ENC_NVENC = 1 } media_encoder;

typedef struct hwprobe_gpu {
    int index;    /* CUDA device index */
    int sessions; /* NVENC sessions that opened at once */
    void *device; /* AVBufferRef * of the CUDA device context */
} hwprobe_gpu;

typedef struct hwprobe_result {
    media_encoder encoder; /* the decision */
    int ngpus;
    hwprobe_gpu gpus[HWPROBE_MAX_GPUS];
    int sessions;     /* NVENC sessions over all GPUs, or CPU slots for x264 */
    char reason[160]; /* why: "2 GPUs, 16 NVENC sessions" or "no CUDA device (...)" */
} hwprobe_result;

/* Probes and decides. `want` is ENCODER (auto|nvenc|x264), `gpu_devices` GPU_DEVICES (comma-
 * separated indexes, empty: 0, 1, ... until one is missing), `sessions_per_gpu` the most NVENC
 * sessions to try per GPU, `cpu_slots` the x264 encoders to run when there is no NVENC. Returns
 * 0, or -ENODEV when `want` is "nvenc" and none opened (`res->reason` says why). Logs the
 * decision as one line ("encoder_selected"). */
int hwprobe_run(const char *want, const char *gpu_devices, int sessions_per_gpu, int cpu_slots,
                hwprobe_result *res);

/* Releases the device contexts; the result then says x264 with no GPUs. */
void hwprobe_free(hwprobe_result *res);

#endif
