/* Secrets kept in the data directory; see keyfile.h for the file's contract. */
#include "src/rt/keyfile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "proto/hmac.h"

static int fail(char *err, size_t errlen, int r, const char *fmt, const char *path)
{
    snprintf(err, errlen, fmt, path, strerror(-r));
    return r;
}

/* "PATH: cannot open the edge key (No such file or directory)" */
static int fail2(char *err, size_t errlen, int r, const char *verb, const char *what,
                 const char *path)
{
    snprintf(err, errlen, "%s: %s %s (%s)", path, verb, what, strerror(-r));
    return r;
}

/* A new key in a temporary file, linked to `path`; EEXIST means another process won. */
static int create_key(const char *path, const char *what, char *err, size_t errlen)
{
    uint8_t key[KEYFILE_LEN];
    char hex[2 * KEYFILE_LEN + 2], tmp[4096];
    if (getrandom(key, sizeof(key), 0) != (ssize_t)sizeof(key))
        return fail(err, errlen, -EIO, "%s: cannot get random bytes for a new key (%s)", path);
    hmac_hex(hex, key, sizeof(key));
    memset(key, 0, sizeof(key));
    hex[2 * KEYFILE_LEN] = '\n';
    if (snprintf(tmp, sizeof(tmp), "%s.%ld.tmp", path, (long)getpid()) >= (int)sizeof(tmp))
        return fail(err, errlen, -ENAMETOOLONG, "%s: path too long (%s)", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        return fail2(err, errlen, -errno, "cannot create the", what, tmp);
    ssize_t w = write(fd, hex, 2 * KEYFILE_LEN + 1);
    int r = (w == 2 * KEYFILE_LEN + 1 && fsync(fd) == 0) ? 0 : -(errno ? errno : EIO);
    close(fd);
    memset(hex, 0, sizeof(hex));
    if (r == 0 && link(tmp, path) < 0 && errno != EEXIST)
        r = -errno;
    unlink(tmp);
    return r < 0 ? fail2(err, errlen, r, "cannot write the", what, path) : 0;
}

static int read_key(const char *path, const char *what, uint8_t key[KEYFILE_LEN], char *err,
                    size_t errlen)
{
    char text[2 * KEYFILE_LEN + 2];
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT)
        return -ENOENT;
    if (fd < 0)
        return fail2(err, errlen, -errno, "cannot open the", what, path);
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
        return fail2(err, errlen, r, "cannot read the", what, path);
    if (n == 2 * KEYFILE_LEN + 1 && text[2 * KEYFILE_LEN] == '\n')
        n--;
    r = n == 2 * KEYFILE_LEN ? hmac_unhex(key, KEYFILE_LEN, text, 2 * KEYFILE_LEN) : -EINVAL;
    memset(text, 0, sizeof(text));
    if (r < 0) {
        snprintf(err, errlen, "%s: not a %s (64 hex digits); delete it to make a new one", path,
                 what);
        return -EINVAL;
    }
    return 0;
}

int keyfile_load(const char *data_dir, const char *name, const char *what, uint8_t key[KEYFILE_LEN],
                 char *err, size_t errlen)
{
    char path[4096];
    if (snprintf(path, sizeof(path), "%s/%s", data_dir, name) >= (int)sizeof(path))
        return fail(err, errlen, -ENAMETOOLONG, "%s: path too long (%s)", data_dir);
    if (mkdir(data_dir, 0700) < 0 && errno != EEXIST)
        return fail(err, errlen, -errno, "%s: cannot create the data directory (%s)", data_dir);
    int r = read_key(path, what, key, err, errlen);
    if (r == -ENOENT) {
        r = create_key(path, what, err, errlen);
        if (r == 0)
            r = read_key(path, what, key, err, errlen);
        if (r == -ENOENT)
            r = fail2(err, errlen, r, "lost the", what, path);
    }
    return r;
}
