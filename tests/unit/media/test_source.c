/* The file source: reads, seeks from each origin, end of file, and refusals. The blob source
 * over the fs backend: reads across read-ahead windows, seeks back and to the end, a missing
 * object, and an object that shrinks under it (its error is kept, not taken for the end). */
#include "src/media/source.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "src/blob/blob.h"

#include "tests/unit/fixture_blob.h"
#include "tests/unit/test.h"

static char path[64];

TEST(reads_and_seeks)
{
    media_source *s = NULL;
    CHECK_EQ_INT(source_open_file(path, &s), 0);
    if (s == NULL)
        return;
    CHECK_EQ_INT(s->size, 10);
    uint8_t buf[16];
    CHECK_EQ_INT(s->read(s, buf, 4), 4);
    CHECK_EQ_MEM(buf, "0123", 4);
    CHECK_EQ_INT(s->seek(s, 2, SEEK_CUR), 6);
    CHECK_EQ_INT(s->read(s, buf, 16), 4);
    CHECK_EQ_MEM(buf, "6789", 4);
    CHECK_EQ_INT(s->read(s, buf, 16), 0);
    CHECK_EQ_INT(s->seek(s, -3, SEEK_END), 7);
    CHECK_EQ_INT(s->read(s, buf, 1), 1);
    CHECK_EQ_INT(buf[0], '7');
    CHECK_EQ_INT(s->seek(s, 1, SEEK_SET), 1);
    CHECK_EQ_INT(s->seek(s, -5, SEEK_SET), -EINVAL);
    source_close(s);
    source_close(NULL);
}

TEST(refuses_missing_files_and_directories)
{
    media_source *s = NULL;
    CHECK_EQ_INT(source_open_file("/nonexistent/reeld", &s), -ENOENT);
    CHECK_EQ_INT(source_open_file("/tmp", &s), -EISDIR);
}

/* 10 MiB + 123 bytes: three windows, the last short. */
#define BIG ((size_t)(10u << 20) + 123)

static uint8_t pattern(size_t i)
{
    return (uint8_t)(i * 2654435761u >> 13);
}

TEST(blob_reads_across_windows_and_seeks)
{
    char dir[] = "/tmp/reeld-test-blobsrc-XXXXXX", err[256] = "";
    CHECK(mkdtemp(dir) != NULL);
    blob_fixture f;
    if (blob_fixture_open(&f, dir, err, sizeof(err)) != 0) {
        CHECK(!"a blob store");
        return;
    }
    blob_store *b = f.b;
    uint8_t *data = malloc(BIG), *got = malloc(BIG);
    for (size_t i = 0; i < BIG; i++)
        data[i] = pattern(i);
    CHECK_EQ_INT(blob_put(b, "masters", "a1", data, BIG, "video/mp4", NULL, err, sizeof(err)), 0);

    media_source *s = NULL;
    CHECK_EQ_INT(source_open_blob(b, "masters", "a1", &s, err, sizeof(err)), 0);
    if (s != NULL) {
        CHECK_EQ_INT(s->size, (int64_t)BIG);
        size_t at = 0;
        int n;
        while ((n = s->read(s, got + at, 32768)) > 0)
            at += (size_t)n;
        CHECK_EQ_INT(n, 0);
        CHECK_EQ_INT(at, BIG);
        CHECK(memcmp(got, data, BIG) == 0);
        /* back into the first window, then to the end */
        CHECK_EQ_INT(s->seek(s, 100, SEEK_SET), 100);
        uint8_t one[8];
        CHECK_EQ_INT(s->read(s, one, 8), 8);
        CHECK_EQ_MEM(one, data + 100, 8);
        CHECK_EQ_INT(s->seek(s, -5, SEEK_END), (int64_t)BIG - 5);
        CHECK_EQ_INT(s->read(s, one, 8), 5);
        CHECK_EQ_MEM(one, data + BIG - 5, 5);
        CHECK_EQ_INT(s->error, 0);
        source_close(s);
    }
    /* The object shrinks after the HEAD: the read past its new end is an error, kept. */
    s = NULL;
    CHECK_EQ_INT(source_open_blob(b, "masters", "a1", &s, err, sizeof(err)), 0);
    CHECK_EQ_INT(blob_put(b, "masters", "a1", data, 1000, "video/mp4", NULL, err, sizeof(err)), 0);
    if (s != NULL) {
        CHECK_EQ_INT(s->seek(s, 5u << 20, SEEK_SET), 5 << 20);
        CHECK(s->read(s, got, 100) < 0);
        CHECK(s->error < 0 && s->why[0] != '\0');
        CHECK(s->read(s, got, 100) < 0); /* and stays */
        source_close(s);
    }
    s = NULL;
    CHECK_EQ_INT(source_open_blob(b, "masters", "nope", &s, err, sizeof(err)), -ENOENT);
    CHECK(strstr(err, "masters/nope does not exist") != NULL);
    free(data);
    free(got);
    blob_fixture_close(&f);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    CHECK_EQ_INT(system(cmd), 0);
}

int main(void)
{
    snprintf(path, sizeof(path), "/tmp/reeld-test-source-XXXXXX");
    int fd = mkstemp(path);
    if (fd < 0 || write(fd, "0123456789", 10) != 10)
        return 1;
    close(fd);
    RUN(reads_and_seeks);
    RUN(refuses_missing_files_and_directories);
    RUN(blob_reads_across_windows_and_seeks);
    unlink(path);
    return test_summary();
}
