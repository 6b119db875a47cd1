/* The S3 credentials of embedded mode: when reeld answers presigned PUTs and GETs itself and no
 * S3_ACCESS_KEY_ID / S3_SECRET_ACCESS_KEY are configured, URLs are signed and checked with a key
 * pair derived from a random seed kept in the data directory.
 *
 * owns:  the file DATA_DIR/sigv4.seed: 64 hex digits (32 random bytes) and a newline, mode 0600,
 *        created on first use (written to a temporary file, then linked into place, so two
 *        processes starting together agree on one seed). Delete it to rotate the keys: every
 *        URL signed before then stops verifying.
 * never: logs or prints the seed or the secret; accepts a seed file others can read.
 *
 * The pair is stable for as long as the seed file lives: access key id "REELD" + 15 uppercase
 * hex digits, secret 40 lowercase hex digits, both HMAC-SHA256 of the seed with fixed labels. */
#ifndef REELD_BLOB_LOCALKEY_H
#define REELD_BLOB_LOCALKEY_H

#include <stddef.h>

#define LOCALKEY_FILE "sigv4.seed"

typedef struct localkey {
    char access_key_id[21];     /* "REELD0123456789ABCDE" */
    char secret_access_key[41]; /* 40 hex digits */
} localkey;

/* Reads DATA_DIR/sigv4.seed, creating the directory (0700) and the file (0600) when missing,
 * and derives the pair into `out`. Returns 0, or -errno with one sentence in `err`: the file
 * is unreadable, malformed, or readable by group or others. */
int localkey_load(const char *data_dir, localkey *out, char *err, size_t errlen);

/* Zeroes `k`. NULL is a no-op. */
void localkey_clear(localkey *k);

#endif
