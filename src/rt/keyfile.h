/* A 32-byte secret kept in a file of the data directory, made on first use: the embedded
 * mode's SigV4 key seed and edge signing key, so what reeld signed keeps verifying after a
 * restart with nothing configured.
 *
 * owns:  the file DATA_DIR/NAME: 64 hex digits and a newline, mode 0600, written to a temporary
 *        file and linked into place (two processes starting together agree on one secret).
 * never: logs or prints the secret; reads a file that group or others may read. */
#ifndef REELD_RT_KEYFILE_H
#define REELD_RT_KEYFILE_H

#include <stddef.h>
#include <stdint.h>

#define KEYFILE_LEN 32

/* Reads DATA_DIR/NAME into `key`, creating the directory (0700) and the file when missing.
 * `what` names the secret in errors ("key seed"). 0, or -errno with one sentence in `err`
 * (unreadable, malformed, readable by group or others). */
int keyfile_load(const char *data_dir, const char *name, const char *what, uint8_t key[KEYFILE_LEN],
                 char *err, size_t errlen);

#endif
