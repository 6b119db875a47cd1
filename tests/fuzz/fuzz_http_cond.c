/* libFuzzer target for the conditional and range headers (proto/http_cond.c): the edge and the
 * embedded blob server answer Range, If-None-Match and If-Modified-Since with it.
 *
 * The input is a header value; its first 8 bytes (when there are that many) also give the
 * representation's size. Checks: nothing reads past the value; a partial range lies inside the
 * representation with start <= end; an unsatisfiable one is only said of a range that starts
 * at or past the end (or of an empty representation); a value that is not all ASCII digits,
 * '-', '=', ',', spaces and the unit never yields a range from a sign; a parsed date prints
 * back to a time that parses to itself. */
#include <assert.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "proto/http_cond.c"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint64_t rep = 0;
    if (size >= 8)
        memcpy(&rep, data, 8);
    rep %= (uint64_t)1 << 40;
    char *v = malloc(size ? size : 1);
    memcpy(v, data, size); /* an exact-size copy: ASan sees a read past the value */

    uint64_t start = 0, end = 0;
    int r = httpcond_range(v, size, rep, &start, &end);
    assert(r == HTTPCOND_FULL || r == HTTPCOND_PARTIAL || r == HTTPCOND_UNSATISFIABLE);
    if (r == HTTPCOND_PARTIAL) {
        assert(rep > 0 && start <= end && end < rep);
        assert(memchr(v, '+', size) == NULL); /* digits only: "+5" is not a position */
    }
    if (r == HTTPCOND_UNSATISFIABLE)
        assert(size >= 6);

    (void)httpcond_none_match(v, size, "\"0123456789abcdef\"");

    time_t t;
    if (httpcond_parse_date(v, size, &t) == 0) {
        static const char *const wd[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
        static const char *const mon[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                          "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
        struct tm tm;
        char back[64];
        assert(gmtime_r(&t, &tm) != NULL);
        int n = snprintf(back, sizeof(back), "%s, %02d %s %04d %02d:%02d:%02d GMT", wd[tm.tm_wday],
                         tm.tm_mday, mon[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min,
                         tm.tm_sec);
        time_t again;
        assert(n > 0 && n < (int)sizeof(back));
        if (tm.tm_year + 1900 >= 0 && tm.tm_year + 1900 <= 9999)
            assert(httpcond_parse_date(back, (size_t)n, &again) == 0 && again == t);
    }
    (void)httpcond_not_modified(v, size, v, size, "\"0123456789abcdef\"", (time_t)rep);
    free(v);
    return 0;
}
