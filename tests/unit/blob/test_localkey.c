/* src/blob/localkey: the embedded key pair is created once, stable, and guarded. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "src/blob/localkey.h"
#include "tests/unit/test.h"

static char dir[64];

static void fresh_dir(void)
{
    snprintf(dir, sizeof(dir), "/tmp/reeld-localkey-XXXXXX");
    CHECK(mkdtemp(dir) != NULL);
}

static void remove_dir(void)
{
    char path[128];
    snprintf(path, sizeof(path), "%s/data/%s", dir, LOCALKEY_FILE);
    unlink(path);
    snprintf(path, sizeof(path), "%s/data", dir);
    rmdir(path);
    rmdir(dir);
}

TEST(created_once_and_stable)
{
    char data[128], seed[160], err[256] = "";
    localkey a, b;
    fresh_dir();
    snprintf(data, sizeof(data), "%s/data", dir);
    snprintf(seed, sizeof(seed), "%s/%s", data, LOCALKEY_FILE);
    CHECK_EQ_INT(localkey_load(data, &a, err, sizeof(err)), 0);
    CHECK_EQ_INT(strlen(a.access_key_id), 20);
    CHECK(strncmp(a.access_key_id, "REELD", 5) == 0);
    CHECK_EQ_INT(strlen(a.secret_access_key), 40);
    struct stat st;
    CHECK_EQ_INT(stat(seed, &st), 0);
    CHECK_EQ_INT(st.st_mode & 0777, 0600);
    CHECK_EQ_INT(st.st_size, 65);
    CHECK_EQ_INT(localkey_load(data, &b, err, sizeof(err)), 0);
    CHECK_EQ_STR(a.access_key_id, b.access_key_id);
    CHECK_EQ_STR(a.secret_access_key, b.secret_access_key);
    localkey_clear(&a);
    CHECK_EQ_INT(a.access_key_id[0], 0);
    localkey_clear(NULL);
    remove_dir();
}

TEST(refuses_open_or_corrupt_seed)
{
    char data[128], seed[160], err[256] = "";
    localkey k;
    fresh_dir();
    snprintf(data, sizeof(data), "%s/data", dir);
    snprintf(seed, sizeof(seed), "%s/%s", data, LOCALKEY_FILE);
    CHECK_EQ_INT(localkey_load(data, &k, err, sizeof(err)), 0);
    CHECK_EQ_INT(chmod(seed, 0644), 0);
    CHECK_EQ_INT(localkey_load(data, &k, err, sizeof(err)), -EPERM);
    CHECK(strstr(err, "chmod 600") != NULL);
    CHECK_EQ_INT(chmod(seed, 0600), 0);
    int fd = open(seed, O_WRONLY | O_TRUNC);
    CHECK(fd >= 0);
    CHECK_EQ_INT(write(fd, "not hex\n", 8), 8);
    close(fd);
    CHECK_EQ_INT(localkey_load(data, &k, err, sizeof(err)), -EINVAL);
    CHECK(strstr(err, "not a key seed") != NULL);
    remove_dir();
}

int main(void)
{
    RUN(created_once_and_stable);
    RUN(refuses_open_or_corrupt_seed);
    return test_summary();
}
