/* The edge's signing key in embedded mode: when EDGE_SIGNING_KEY is not configured, reeld signs
 * and checks playback links with a random key kept in the data directory, so links it handed
 * out keep working after a restart.
 *
 * owns:  the file DATA_DIR/edge.key: 64 hex digits (32 random bytes) and a newline, mode 0600,
 *        created on first use (written to a temporary file, then linked into place, so two
 *        processes starting together agree on one key). Delete it to revoke every link signed
 *        with it. A fleet sets EDGE_SIGNING_KEY instead: each machine would make its own.
 * never: logs or prints the key; accepts a key file others can read. */
#ifndef REELD_EDGE_EDGEKEY_H
#define REELD_EDGE_EDGEKEY_H

#include <stddef.h>
#include <stdint.h>

#include "proto/edge_token.h"
#include "src/rt/config.h"

#define EDGEKEY_FILE "edge.key"
#define EDGEKEY_LEN  32

/* Reads DATA_DIR/edge.key into `key`, creating the directory (0700) and the file (0600) when
 * missing. 0, or -errno with one sentence in `err` (unreadable, malformed, readable by group or
 * others). */
int edgekey_load(const char *data_dir, uint8_t key[EDGEKEY_LEN], char *err, size_t errlen);

/* The edge's keyring from the settings: EDGE_SIGNING_KEY, or the generated DATA_DIR key, plus
 * EDGE_SIGNING_KEY_PREVIOUS for EDGE_KEY_GRACE_SEC from now. Everything that signs or checks
 * playback links (the edge, the API) builds it here, so they always agree. 0 or -errno. */
int edgekey_keyring(const rd_config *cfg, edge_keyring *kr, char *err, size_t errlen);

#endif
