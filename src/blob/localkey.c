/* Embedded-mode key pair from a seed file; see localkey.h for the file's contract. */
#include "src/blob/localkey.h"

#include <string.h>

#include "proto/hmac.h"
#include "src/rt/keyfile.h"

int localkey_load(const char *data_dir, localkey *out, char *err, size_t errlen)
{
    uint8_t seed[KEYFILE_LEN], mac[HMAC_SHA256_LEN];
    int r = keyfile_load(data_dir, LOCALKEY_FILE, "key seed", seed, err, errlen);
    if (r < 0)
        return r;

    static const char upper[] = "0123456789ABCDEF";
    hmac_sha256(seed, sizeof(seed), "reeld sigv4 access key id", 25, mac);
    memcpy(out->access_key_id, "REELD", 5);
    for (int i = 0; i < 15; i++)
        out->access_key_id[5 + i] = upper[(mac[i / 2] >> (i % 2 ? 0 : 4)) & 15];
    out->access_key_id[20] = '\0';
    hmac_sha256(seed, sizeof(seed), "reeld sigv4 secret access key", 29, mac);
    hmac_hex(out->secret_access_key, mac, 20);
    memset(seed, 0, sizeof(seed));
    memset(mac, 0, sizeof(mac));
    return 0;
}

void localkey_clear(localkey *k)
{
    if (k == NULL)
        return;
    volatile char *p = (volatile char *)k;
    for (size_t i = 0; i < sizeof(*k); i++)
        p[i] = 0;
}
