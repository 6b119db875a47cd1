/* The encoder decision over simulated GPUs: a GPU without NVENC leaves the others theirs, CUDA
 * without NVENC anywhere is hybrid, ENCODER=x264 and ENCODER=nvenc are obeyed, and a machine
 * without CUDA is x264 with the reason. The device pointers are tokens: decide only copies. */
#include "src/media/hwprobe.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/unit/test.h"

static int tokens[HWPROBE_MAX_GPUS];

static hwprobe_dev gpu(int index, int cuda, int sessions, const char *why)
{
    hwprobe_dev d = {.index = index, .cuda = cuda, .sessions = sessions};
    d.device = cuda ? &tokens[index] : NULL;
    snprintf(d.why, sizeof(d.why), "%s", why ? why : "");
    return d;
}

TEST(a_gpu_without_nvenc_first_leaves_the_others_theirs)
{
    /* An H100 at index 0 (CUDA, no NVENC), two L4s after it. */
    hwprobe_dev d[3] = {gpu(0, 1, 0, "GPU 0 has no usable NVENC (Function not implemented)"),
                        gpu(1, 1, 8, NULL), gpu(2, 1, 8, NULL)};
    hwprobe_result r;
    CHECK_EQ_INT(hwprobe_decide("auto", d, 3, 2, &r), 0);
    CHECK_EQ_INT(r.encoder, MEDIA_ENC_NVENC);
    CHECK_EQ_INT(r.ngpus, 2);
    CHECK_EQ_INT(r.gpus[0].index, 1);
    CHECK_EQ_INT(r.gpus[1].index, 2);
    CHECK(r.gpus[0].device == &tokens[1]);
    CHECK_EQ_INT(r.sessions, 16);
    CHECK(strstr(r.reason, "2 GPU(s), 16 NVENC session(s)") != NULL);
    CHECK(strstr(r.reason, "GPU 0 has no usable NVENC") != NULL);
}

TEST(a_missing_gpu_in_the_middle_ends_nothing)
{
    hwprobe_dev d[3] = {gpu(0, 1, 3, NULL), gpu(1, 0, 0, "no CUDA device 1"), gpu(2, 1, 2, NULL)};
    hwprobe_result r;
    CHECK_EQ_INT(hwprobe_decide("nvenc", d, 3, 1, &r), 0);
    CHECK_EQ_INT(r.encoder, MEDIA_ENC_NVENC);
    CHECK_EQ_INT(r.ngpus, 2);
    CHECK_EQ_INT(r.sessions, 5);
}

TEST(consumer_cards_share_one_cap)
{
    /* Two GeForce cards with a system-wide cap of 8, probed with GPU 0's sessions still open:
     * GPU 1 opens none, and the total is the cap, not twice it. */
    hwprobe_dev d[2] = {gpu(0, 1, 8, NULL), gpu(1, 1, 0, "GPU 1 has no usable NVENC")};
    hwprobe_result r;
    CHECK_EQ_INT(hwprobe_decide("auto", d, 2, 1, &r), 0);
    CHECK_EQ_INT(r.encoder, MEDIA_ENC_NVENC);
    CHECK_EQ_INT(r.sessions, 8);
    CHECK_EQ_INT(r.ngpus, 1);
}

TEST(cuda_without_nvenc_is_hybrid)
{
    /* Two H200s: NVDEC and CUDA, no NVENC. */
    hwprobe_dev d[2] = {gpu(0, 1, 0, "GPU 0 has no usable NVENC (Function not implemented)"),
                        gpu(1, 1, 0, "GPU 1 has no usable NVENC (Function not implemented)")};
    hwprobe_result r;
    CHECK_EQ_INT(hwprobe_decide("auto", d, 2, 3, &r), 0);
    CHECK_EQ_INT(r.encoder, MEDIA_ENC_HYBRID);
    CHECK_EQ_INT(r.ngpus, 2);
    CHECK(r.gpus[1].device == &tokens[1]);
    CHECK_EQ_INT(r.gpus[0].sessions, 0);
    CHECK_EQ_INT(r.sessions, 3); /* libx264 encoders: the CPU slots */
    CHECK(strstr(r.reason, "CUDA but no NVENC") != NULL);
    CHECK(strstr(r.reason, "Function not implemented") != NULL);
}

TEST(encoder_setting_is_obeyed)
{
    hwprobe_dev d[1] = {gpu(0, 1, 0, "GPU 0 has no usable NVENC")};
    hwprobe_result r;
    CHECK_EQ_INT(hwprobe_decide("nvenc", d, 1, 2, &r), -ENODEV);
    CHECK_EQ_INT(r.encoder, MEDIA_ENC_X264);
    CHECK_EQ_INT(r.ngpus, 0);
    CHECK(strstr(r.reason, "no usable NVENC") != NULL);
    hwprobe_dev n[1] = {gpu(0, 1, 4, NULL)};
    CHECK_EQ_INT(hwprobe_decide("x264", n, 1, 2, &r), 0);
    CHECK_EQ_INT(r.encoder, MEDIA_ENC_X264);
    CHECK_EQ_INT(r.ngpus, 0);
    CHECK_EQ_INT(r.sessions, 2);
    CHECK_EQ_STR(r.reason, "ENCODER=x264");
}

TEST(no_cuda_is_x264_with_the_reason)
{
    hwprobe_dev d[1] = {gpu(0, 0, 0, "no CUDA device 0: no NVIDIA driver, GPU or CUDA")};
    hwprobe_result r;
    CHECK_EQ_INT(hwprobe_decide("auto", d, 1, 0, &r), 0);
    CHECK_EQ_INT(r.encoder, MEDIA_ENC_X264);
    CHECK_EQ_INT(r.sessions, 1);
    CHECK(strstr(r.reason, "no CUDA device 0") != NULL);
    CHECK_EQ_INT(hwprobe_decide(NULL, NULL, 0, 4, &r), 0);
    CHECK_EQ_INT(r.encoder, MEDIA_ENC_X264);
    CHECK_EQ_INT(r.sessions, 4);
    CHECK_EQ_STR(r.reason, "no CUDA device");
}

/* On this machine (no GPU, or one): the real probe answers, and never fails for auto. */
TEST(the_real_probe_answers)
{
    hwprobe_result r;
    int preset = getenv("CUDA_DEVICE_ORDER") != NULL;
    CHECK_EQ_INT(hwprobe_run("auto", "", 1, 1, &r), 0);
    CHECK(r.reason[0] != '\0');
    if (!preset) /* GPU_DEVICES numbers GPUs as nvidia-smi does */
        CHECK_EQ_STR(getenv("CUDA_DEVICE_ORDER"), "PCI_BUS_ID");
    hwprobe_free(&r);
}

int main(void)
{
    RUN(a_gpu_without_nvenc_first_leaves_the_others_theirs);
    RUN(a_missing_gpu_in_the_middle_ends_nothing);
    RUN(consumer_cards_share_one_cap);
    RUN(cuda_without_nvenc_is_hybrid);
    RUN(encoder_setting_is_obeyed);
    RUN(no_cuda_is_x264_with_the_reason);
    RUN(the_real_probe_answers);
    return test_summary();
}
