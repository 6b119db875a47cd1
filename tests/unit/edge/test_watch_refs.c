/* An edge shard's holds per inotify watch: counts, the last release, and the table against a
 * plain array through random holds and releases (growth, probing runs that wrap, removal by
 * backward shift in the middle of runs). */
#include "src/edge/watch_refs.h"
#include "tests/unit/test.h"

#include <stdlib.h>

TEST(holds_and_last_release)
{
    watch_refs w = {0};
    CHECK_EQ_INT(watch_refs_count(&w, 7), 0);
    watch_refs_hold(&w, 7);
    watch_refs_hold(&w, 7);
    watch_refs_hold(&w, 8);
    CHECK_EQ_INT(watch_refs_count(&w, 7), 2);
    CHECK_EQ_INT(watch_refs_count(&w, 8), 1);
    CHECK_EQ_INT(watch_refs_release(&w, 7), 0);
    CHECK_EQ_INT(watch_refs_release(&w, 7), 1);
    CHECK_EQ_INT(watch_refs_count(&w, 7), 0);
    CHECK_EQ_INT(watch_refs_count(&w, 8), 1);
    CHECK_EQ_INT(w.len, 1);
    CHECK_EQ_INT(watch_refs_release(&w, 8), 1);
    CHECK_EQ_INT(w.len, 0);
    watch_refs_fini(&w);
}

/* Descriptors as the kernel hands them out (in sequence, freed in any order) and scattered
 * ones, against counts in an array: every count checked after every step. */
TEST(same_counts_as_an_array)
{
    enum { MAXWD = 3000, STEPS = 200000 };
    static uint32_t want[MAXWD + 1];
    watch_refs w = {0};
    unsigned seed = 12345;
    long mismatches = 0, last_releases = 0;
    uint32_t live = 0;
    for (int step = 0; step < STEPS; step++) {
        seed = seed * 1103515245u + 12345u;
        unsigned r = seed >> 8;
        /* Mostly a window that moves, as the kernel's descriptors do; some anywhere. */
        int base = 1 + (step / 100) % (MAXWD - 300);
        int wd = r % 8 == 0 ? 1 + (int)(r / 8 % MAXWD) : base + (int)(r / 8 % 256);
        if (r % 3 != 0 || want[wd] == 0) {
            watch_refs_hold(&w, wd);
            live += want[wd]++ == 0;
        } else {
            int last = watch_refs_release(&w, wd);
            want[wd]--;
            live -= want[wd] == 0;
            last_releases += last;
            if (last != (want[wd] == 0))
                mismatches++;
        }
        if (w.len != live || w.len * 2 > w.cap) /* at most half full: probes end */
            mismatches++;
        if (step % 997 == 0)
            for (int i = 1; i <= MAXWD; i++)
                if (watch_refs_count(&w, i) != want[i])
                    mismatches++;
    }
    for (int i = 1; i <= MAXWD; i++) /* let everything go: the table ends empty */
        while (want[i] > 0)
            mismatches += watch_refs_release(&w, i) != (--want[i] == 0);
    CHECK_EQ_INT(mismatches, 0);
    CHECK(last_releases > 1000);
    CHECK(w.cap >= 512); /* it grew */
    CHECK_EQ_INT(w.len, 0);
    for (uint32_t i = 0; i < w.cap; i++)
        CHECK_EQ_INT(w.slot[i].wd, 0);
    watch_refs_fini(&w);
}

/* watch_refs.c's first slot for `wd` in a table of 64 (Fibonacci hashing, the top bits). */
static uint32_t home64(int wd)
{
    return (uint32_t)(((uint64_t)(uint32_t)wd * 0x9e3779b97f4a7c15ull) >> 32) & 63;
}

/* Runs that cross the table's end: descriptors whose first slot is one of the last three of
 * 64 fill those and go on at slot 0; holds and releases in random order keep every count, and
 * the table never more than half full. */
TEST(runs_that_wrap)
{
    enum { N = 24, STEPS = 20000 };
    int wds[N], n = 0;
    for (int wd = 1; n < N; wd++)
        if (home64(wd) >= 61)
            wds[n++] = wd;
    watch_refs w = {0};
    uint32_t want[N] = {0};
    unsigned seed = 99;
    long mismatches = 0, wrapped = 0;
    for (int step = 0; step < STEPS; step++) {
        seed = seed * 1103515245u + 12345u;
        int k = (int)((seed >> 8) % N);
        if ((seed >> 20) % 2 || want[k] == 0) {
            watch_refs_hold(&w, wds[k]);
            want[k]++;
        } else {
            mismatches += watch_refs_release(&w, wds[k]) != (--want[k] == 0);
        }
        if (w.cap != 64 || w.len * 2 > w.cap)
            mismatches++;
        for (int i = 0; i < N; i++)
            mismatches += watch_refs_count(&w, wds[i]) != want[i];
        for (uint32_t i = 0; i < 8 && w.cap == 64; i++) /* one sits past the end, at i */
            wrapped += w.slot[i].wd != 0 && home64(w.slot[i].wd) >= 61;
    }
    CHECK_EQ_INT(mismatches, 0);
    CHECK(wrapped > STEPS); /* the runs crossed the end, most of the time */
    watch_refs_fini(&w);
}

int main(void)
{
    RUN(holds_and_last_release);
    RUN(same_counts_as_an_array);
    RUN(runs_that_wrap);
    return test_summary();
}
