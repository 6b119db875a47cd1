/* Embedded-mode edge key; see edgekey.h for the file's contract. */
#include "src/edge/edgekey.h"

#include "src/rt/keyfile.h"

_Static_assert(EDGEKEY_LEN == KEYFILE_LEN, "the edge key is a key file's length");

int edgekey_load(const char *data_dir, uint8_t key[EDGEKEY_LEN], char *err, size_t errlen)
{
    return keyfile_load(data_dir, EDGEKEY_FILE, "edge key", key, err, errlen);
}
