/* proto/blob_meta: the fs backends' metadata file written and read back; a torn file (no line
 * break), a missing or empty type, a NUL inside a line, and outputs cut to their buffers. */
#include "proto/blob_meta.h"

#include <errno.h>
#include <string.h>

#include "tests/unit/test.h"

static const uint8_t md5[16] = {0xd4, 0x1d, 0x8c, 0xd9, 0x8f, 0x00, 0xb2, 0x04,
                                0xe9, 0x80, 0x09, 0x98, 0xec, 0xf8, 0x42, 0x7e};

TEST(round_trip)
{
    char text[BLOB_META_MAX], etag[80], type[128];
    int n = blob_meta_format(text, sizeof(text), md5, "video/mp4");
    CHECK_EQ_STR(text, "\"d41d8cd98f00b204e9800998ecf8427e\"\nvideo/mp4\n");
    CHECK_EQ_INT(n, (int)strlen(text));
    blob_meta_parse(text, (size_t)n, etag, sizeof(etag), type, sizeof(type));
    CHECK_EQ_STR(etag, "\"d41d8cd98f00b204e9800998ecf8427e\"");
    CHECK_EQ_STR(type, "video/mp4");
    CHECK_EQ_INT(blob_meta_format(text, 20, md5, "video/mp4"), -ENOSPC);
}

TEST(damaged_files)
{
    char etag[80], type[128];
    blob_meta_parse("\"abc", 4, etag, sizeof(etag), type, sizeof(type)); /* torn */
    CHECK_EQ_STR(etag, "");
    CHECK_EQ_STR(type, BLOB_META_DEFAULT_TYPE);
    blob_meta_parse("\"abc\"\n", 6, etag, sizeof(etag), type, sizeof(type)); /* no type */
    CHECK_EQ_STR(etag, "\"abc\"");
    CHECK_EQ_STR(type, BLOB_META_DEFAULT_TYPE);
    blob_meta_parse("\"abc\"\n\n", 7, etag, sizeof(etag), type, sizeof(type)); /* empty type */
    CHECK_EQ_STR(type, BLOB_META_DEFAULT_TYPE);
    blob_meta_parse("\"abc\"\ntext/pl", 14, etag, sizeof(etag), type, sizeof(type)); /* cut */
    CHECK_EQ_STR(type, BLOB_META_DEFAULT_TYPE);
    blob_meta_parse("\"a\0c\"\ntext/\0x\n", 14, etag, sizeof(etag), type, sizeof(type));
    CHECK_EQ_STR(etag, "\"a");
    CHECK_EQ_STR(type, "text/");
    blob_meta_parse("", 0, etag, sizeof(etag), type, sizeof(type));
    CHECK_EQ_STR(etag, "");
}

TEST(cut_to_the_buffers)
{
    char etag[6], type[6];
    blob_meta_parse("\"abcdefgh\"\nvideo/mp4\n", 21, etag, sizeof(etag), type, sizeof(type));
    CHECK_EQ_STR(etag, "\"abcd");
    CHECK_EQ_STR(type, "video");
}

int main(void)
{
    RUN(round_trip);
    RUN(damaged_files);
    RUN(cut_to_the_buffers);
    return test_summary();
}
