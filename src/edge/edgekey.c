/* Embedded-mode edge key; see edgekey.h for the file's contract. */
#include "src/edge/edgekey.h"

#include <string.h>
#include <time.h>

#include "src/rt/keyfile.h"

_Static_assert(EDGEKEY_LEN == KEYFILE_LEN, "the edge key is a key file's length");

int edgekey_load(const char *data_dir, uint8_t key[EDGEKEY_LEN], char *err, size_t errlen)
{
    return keyfile_load(data_dir, EDGEKEY_FILE, "edge key", key, err, errlen);
}

int edgekey_keyring(const rd_config *cfg, edge_keyring *kr, char *err, size_t errlen)
{
    uint8_t gen[EDGEKEY_LEN];
    const void *key = cfg->edge_signing_key;
    size_t keylen = key ? strlen(cfg->edge_signing_key) : 0;
    if (key == NULL) {
        int r = edgekey_load(cfg->data_dir, gen, err, errlen);
        if (r < 0)
            return r;
        key = gen;
        keylen = sizeof(gen);
    }
    const char *prev = cfg->edge_signing_key_previous;
    edge_keyring_init(kr, key, keylen, prev, prev ? strlen(prev) : 0,
                      (int64_t)time(NULL) + cfg->edge_key_grace_sec);
    memset(gen, 0, sizeof(gen));
    return 0;
}
