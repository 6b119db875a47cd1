/* A unit-test harness small enough to read in one go.
 *
 *   TEST(name) { CHECK(x == 1); CHECK_EQ_INT(a, b); CHECK_EQ_STR(s, "x"); }
 *   int main(void) { RUN(name); return test_summary(); }
 *
 * Each test prints "ok NAME" or "not ok NAME" with the failing checks (file:line and the
 * values), and the program ends with "N passed, M failed" and exits 1 if any failed. The suite
 * runner (tools/test) adds these lines up. A test may return early with SKIP("why"): it is
 * reported as "skip NAME: why" and counts as neither. */
#ifndef REELD_TEST_H
#define REELD_TEST_H

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

static int test_passed, test_failed, test_skipped;
static int test_cur_failed;
static const char *test_skip_reason;

#define TEST(name) static void test_##name(void)

#define RUN(name)                                                                                  \
    do {                                                                                           \
        test_cur_failed = 0;                                                                       \
        test_skip_reason = NULL;                                                                   \
        test_##name();                                                                             \
        if (test_skip_reason) {                                                                    \
            test_skipped++;                                                                        \
            printf("skip %s: %s\n", #name, test_skip_reason);                                      \
        } else if (test_cur_failed) {                                                              \
            test_failed++;                                                                         \
            printf("not ok %s\n", #name);                                                          \
        } else {                                                                                   \
            test_passed++;                                                                         \
            printf("ok %s\n", #name);                                                              \
        }                                                                                          \
        fflush(stdout);                                                                            \
    } while (0)

#define SKIP(why)                                                                                  \
    do {                                                                                           \
        test_skip_reason = (why);                                                                  \
        return;                                                                                    \
    } while (0)

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            test_cur_failed = 1;                                                                   \
            printf("  %s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, #cond);                      \
        }                                                                                          \
    } while (0)

/* A test that cannot go on without `x` fails (rather than crashing on a NULL). */
#define NEED(x)                                                                                    \
    do {                                                                                           \
        if (!(x)) {                                                                                \
            CHECK(x);                                                                              \
            return;                                                                                \
        }                                                                                          \
    } while (0)

#define CHECK_EQ_INT(a, b)                                                                         \
    do {                                                                                           \
        long long a_ = (long long)(a), b_ = (long long)(b);                                        \
        if (a_ != b_) {                                                                            \
            test_cur_failed = 1;                                                                   \
            printf("  %s:%d: %s == %s failed: %lld != %lld\n", __FILE__, __LINE__, #a, #b, a_,     \
                   b_);                                                                            \
        }                                                                                          \
    } while (0)

#define CHECK_EQ_STR(a, b)                                                                         \
    do {                                                                                           \
        const char *a_ = (a), *b_ = (b);                                                           \
        if (a_ == NULL || b_ == NULL || strcmp(a_, b_) != 0) {                                     \
            test_cur_failed = 1;                                                                   \
            printf("  %s:%d: %s == %s failed:\n    got  \"%s\"\n    want \"%s\"\n", __FILE__,      \
                   __LINE__, #a, #b, a_ ? a_ : "(null)", b_ ? b_ : "(null)");                      \
        }                                                                                          \
    } while (0)

/* Hex dump of two buffers on mismatch (known-answer vectors). */
#define CHECK_EQ_MEM(a, b, n)                                                                      \
    do {                                                                                           \
        const unsigned char *a_ = (const void *)(a), *b_ = (const void *)(b);                      \
        size_t n_ = (n);                                                                           \
        if (memcmp(a_, b_, n_) != 0) {                                                             \
            test_cur_failed = 1;                                                                   \
            printf("  %s:%d: %s == %s failed (%zu bytes)\n    got  ", __FILE__, __LINE__, #a, #b,  \
                   n_);                                                                            \
            for (size_t i_ = 0; i_ < n_; i_++)                                                     \
                printf("%02x", a_[i_]);                                                            \
            printf("\n    want ");                                                                 \
            for (size_t i_ = 0; i_ < n_; i_++)                                                     \
                printf("%02x", b_[i_]);                                                            \
            printf("\n");                                                                          \
        }                                                                                          \
    } while (0)

static inline int test_summary(void)
{
    printf("%d passed, %d failed", test_passed, test_failed);
    if (test_skipped)
        printf(", %d skipped", test_skipped);
    printf("\n");
    return test_failed ? 1 : 0;
}

#endif
