/* Embedded-mode key pair from a seed file; see localkey.h for the file's contract. */
#include "src/blob/localkey.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "proto/hmac.h"

#define SEED_LEN 32

static int fail(char *err, size_t errlen, int r, const char *fmt, const char *path)
{
    snprintf(err, errlen, fmt, path, strerror(-r));
    return r;
}

/* Writes a new seed to a temporary file and links it to `path`; EEXIST means another process
 * won the race, and its seed is the one to read. */
static int create_seed(const char *path, char *err, size_t errlen)
{
    uint8_t seed[SEED_LEN];
    char hex[2 * SEED_LEN + 2], tmp[4096];
    if (getrandom(seed, sizeof(seed), 0) != (ssize_t)sizeof(seed))
        return fail(err, errlen, -EIO, "%s: cannot get random bytes for a new seed (%s)", path);
    hmac_hex(hex, seed, sizeof(seed));
    memset(seed, 0, sizeof(seed));
    hex[2 * SEED_LEN] = '\n';
    if (snprintf(tmp, sizeof(tmp), "%s.%ld.tmp", path, (long)getpid()) >= (int)sizeof(tmp))
        return fail(err, errlen, -ENAMETOOLONG, "%s: path too long (%s)", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        return fail(err, errlen, -errno, "%s: cannot create the key seed (%s)", tmp);
    ssize_t w = write(fd, hex, 2 * SEED_LEN + 1);
    int r = (w == 2 * SEED_LEN + 1 && fsync(fd) == 0) ? 0 : -(errno ? errno : EIO);
    close(fd);
    memset(hex, 0, sizeof(hex));
    if (r == 0 && link(tmp, path) < 0 && errno != EEXIST)
        r = -errno;
    unlink(tmp);
    return r < 0 ? fail(err, errlen, r, "%s: cannot write the key seed (%s)", path) : 0;
}

static int read_seed(const char *path, uint8_t seed[SEED_LEN], char *err, size_t errlen)
{
    char text[2 * SEED_LEN + 2];
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT)
        return -ENOENT; /* the caller creates it */
    if (fd < 0)
        return fail(err, errlen, -errno, "%s: cannot open the key seed (%s)", path);
    struct stat st;
    if (fstat(fd, &st) < 0 || (st.st_mode & 077) != 0) {
        close(fd);
        snprintf(err, errlen, "%s: readable by group or others; run chmod 600 on it", path);
        return -EPERM;
    }
    ssize_t n = read(fd, text, sizeof(text));
    int r = n < 0 ? -errno : 0;
    close(fd);
    if (r < 0)
        return fail(err, errlen, r, "%s: cannot read the key seed (%s)", path);
    if (n == 2 * SEED_LEN + 1 && text[2 * SEED_LEN] == '\n')
        n--;
    if (n != 2 * SEED_LEN || hmac_unhex(seed, SEED_LEN, text, 2 * SEED_LEN) < 0) {
        memset(text, 0, sizeof(text));
        snprintf(err, errlen, "%s: not a key seed (64 hex digits); delete it to make a new one",
                 path);
        return -EINVAL;
    }
    memset(text, 0, sizeof(text));
    return 0;
}

int localkey_load(const char *data_dir, localkey *out, char *err, size_t errlen)
{
    char path[4096];
    uint8_t seed[SEED_LEN], mac[HMAC_SHA256_LEN];
    if (snprintf(path, sizeof(path), "%s/%s", data_dir, LOCALKEY_FILE) >= (int)sizeof(path))
        return fail(err, errlen, -ENAMETOOLONG, "%s: path too long (%s)", data_dir);
    if (mkdir(data_dir, 0700) < 0 && errno != EEXIST)
        return fail(err, errlen, -errno, "%s: cannot create the data directory (%s)", data_dir);

    int r = read_seed(path, seed, err, errlen);
    if (r == -ENOENT) {
        r = create_seed(path, err, errlen);
        if (r == 0)
            r = read_seed(path, seed, err, errlen);
        if (r == -ENOENT)
            r = fail(err, errlen, r, "%s: the key seed vanished while being read (%s)", path);
    }
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
