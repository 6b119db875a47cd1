/* The AAC encoder of a job: decoded samples in, AAC packets out. Samples are resampled to
 * 48 kHz stereo float, wait in a FIFO until they make a whole AAC frame (1024 samples), and
 * each packet the encoder gives is handed to the job's callback.
 *
 * owns:  the encoder, the resampler, the FIFO, the resampled samples' buffer and the packet
 *        the encoder fills; all freed by aac_close.
 * takes: the decoder's context (only read, at aac_open), the samples (copied), a callback.
 * never: decides which samples are kept (the caller cuts them and places the first one in
 *        `next`), flushes the resampler on its own (aac_write with no samples does), muxes,
 *        queues or rescales a packet (the callback does, in the encoder's time base), or
 *        counts anything beyond `next`.
 *
 * Errors are -errno with one sentence for the user written into `err` when it is still empty
 * ("AAC encoding failed: ..."); the callback's own errors pass through as they are. Every
 * function runs on the job's thread. */
#ifndef REELD_MEDIA_AAC_H
#define REELD_MEDIA_AAC_H

#include <stddef.h>
#include <stdint.h>

#include <libavcodec/avcodec.h>
#include <libavutil/audio_fifo.h>
#include <libswresample/swresample.h>

#define AAC_RATE 48000 /* samples a second of the output, and its time base's denominator */
#define AAC_KBPS 128

/* One packet from the encoder, stamped in its time base (1/AAC_RATE). The callee may take
 * the reference (av_packet_move_ref, or a muxer that takes it); what it leaves is unreferenced
 * after. Returns 0, or -errno to stop the job. */
typedef int (*aac_packet_fn)(void *ctx, AVPacket *pkt);

typedef struct aac_encoder {
    AVCodecContext *enc; /* NULL until aac_open: a job without audio has none */
    SwrContext *swr;
    AVAudioFifo *fifo;
    uint8_t **buf; /* resampled samples */
    int buf_samples;
    AVPacket *pkt;
    /* pts of the next AAC frame, in samples: set by the caller before the first samples
     * (INT64_MIN after aac_open), advanced by every frame sent */
    int64_t next;
    aac_packet_fn packet;
    void *ctx;
    char *err;
    size_t errlen;
} aac_encoder;

/* Opens the encoder for samples as `dec` decodes them, `global_header` set for a muxer that
 * wants the AudioSpecificConfig in its header (MP4) rather than in the stream (MPEG-TS).
 * Packets go to packet(ctx, ...). On failure `a` holds what was made: aac_close frees it. */
int aac_open(aac_encoder *a, const AVCodecContext *dec, int global_header, aac_packet_fn packet,
             void *ctx, char *err, size_t errlen);

/* Resamples `n` samples (`in`: a pointer a plane, in the decoder's format and layout) into
 * the FIFO and encodes the whole frames it holds. `in` NULL: what the resampler still holds
 * (its delay), at the end. */
int aac_write(aac_encoder *a, const uint8_t **in, int n);

/* The end: encodes the FIFO's short remainder, then drains the encoder. */
int aac_finish(aac_encoder *a);

/* Frees what aac_open made; a zeroed encoder is fine. */
void aac_close(aac_encoder *a);

#endif
