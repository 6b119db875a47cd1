/* Prometheus text writer: a known-answer exposition, escaping, number formats, overflow. */
#include <math.h>

#include "proto/prom.h"
#include "tests/unit/test.h"

TEST(known_answer)
{
    char buf[1024];
    prom_writer w;
    prom_init(&w, buf, sizeof(buf));
    static const char *const ln[] = {"route", "code"};
    const char *lv[] = {"/a\"b\\c\nd", "200"};
    prom_family(&w, "reeld_x_total", "counter", "Help with \\ and\nnewline.");
    prom_sample_u64(&w, "reeld_x_total", "", ln, lv, 2, NULL, 18446744073709551615ull);
    prom_family(&w, "reeld_h_seconds", "histogram", "H.");
    char le[32];
    prom_format_le(0.005, le);
    prom_sample_u64(&w, "reeld_h_seconds", "_bucket", ln, lv, 1, le, 3);
    prom_sample_u64(&w, "reeld_h_seconds", "_bucket", NULL, NULL, 0, "+Inf", 4);
    prom_sample(&w, "reeld_h_seconds", "_sum", NULL, NULL, 0, NULL, 0.25);
    prom_sample(&w, "reeld_g", "", NULL, NULL, 0, NULL, 3);
    prom_sample(&w, "reeld_g", "", NULL, NULL, 0, NULL, INFINITY);
    CHECK_EQ_INT(w.err, 0);
    buf[w.len] = 0;
    CHECK_EQ_STR(buf, "# HELP reeld_x_total Help with \\\\ and\\nnewline.\n"
                      "# TYPE reeld_x_total counter\n"
                      "reeld_x_total{route=\"/a\\\"b\\\\c\\nd\",code=\"200\"} "
                      "18446744073709551615\n"
                      "# HELP reeld_h_seconds H.\n"
                      "# TYPE reeld_h_seconds histogram\n"
                      "reeld_h_seconds_bucket{route=\"/a\\\"b\\\\c\\nd\",le=\"0.005\"} 3\n"
                      "reeld_h_seconds_bucket{le=\"+Inf\"} 4\n"
                      "reeld_h_seconds_sum 0.25\n"
                      "reeld_g 3\n"
                      "reeld_g +Inf\n");
}

TEST(overflow_sets_enospc)
{
    char buf[16];
    prom_writer w;
    prom_init(&w, buf, sizeof(buf));
    prom_family(&w, "reeld_long_name_total", "counter", "x");
    CHECK_EQ_INT(w.err, -ENOSPC);
    CHECK(w.len <= sizeof(buf));
}

TEST(le_format)
{
    char le[32];
    prom_format_le(0.1, le);
    CHECK_EQ_STR(le, "0.1");
    prom_format_le(2.5, le);
    CHECK_EQ_STR(le, "2.5");
    prom_format_le(10, le);
    CHECK_EQ_STR(le, "10");
    prom_format_le(0.0005, le);
    CHECK_EQ_STR(le, "0.0005");
    char buf[64];
    prom_writer w;
    prom_init(&w, buf, sizeof(buf));
    prom_sample(&w, "x", "", NULL, NULL, 0, NULL, 0.082519716);
    buf[w.len] = 0;
    CHECK_EQ_STR(buf, "x 0.082519716\n");
}

int main(void)
{
    RUN(known_answer);
    RUN(overflow_sets_enospc);
    RUN(le_format);
    return test_summary();
}
