/* The file source: reads, seeks from each origin, end of file, and refusals. */
#include "src/media/source.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

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

int main(void)
{
    snprintf(path, sizeof(path), "/tmp/reeld-test-source-XXXXXX");
    int fd = mkstemp(path);
    if (fd < 0 || write(fd, "0123456789", 10) != 10)
        return 1;
    close(fd);
    RUN(reads_and_seeks);
    RUN(refuses_missing_files_and_directories);
    unlink(path);
    return test_summary();
}
