/* The ladder: presets, never upscaling, portrait sources, odd and tiny sizes. */
#include "src/media/ladder.h"

#include <errno.h>

#include "tests/unit/test.h"

TEST(auto_preset_follows_the_encoder)
{
    CHECK_EQ_STR(ladder_preset("auto", 1), "1080p");
    CHECK_EQ_STR(ladder_preset("auto", 0), "480p");
    CHECK_EQ_STR(ladder_preset("720p", 0), "720p");
    CHECK_EQ_INT(ladder_max_rungs("1080p"), 4);
    CHECK_EQ_INT(ladder_max_rungs("480p"), 2);
    CHECK_EQ_INT(ladder_max_rungs("4k"), 0);
}

TEST(full_ladder_from_1080p)
{
    ladder_rung r[LADDER_MAX_RUNGS];
    CHECK_EQ_INT(ladder_build("1080p", 1920, 1080, r), 4);
    CHECK_EQ_STR(r[0].name, "1080p");
    CHECK_EQ_INT(r[0].width, 1920);
    CHECK_EQ_INT(r[1].width, 1280);
    CHECK_EQ_INT(r[1].height, 720);
    CHECK_EQ_INT(r[2].width, 854);
    CHECK_EQ_INT(r[2].height, 480);
    CHECK_EQ_INT(r[3].width, 640);
    CHECK_EQ_STR(r[3].name, "360p");
    CHECK(r[0].video_kbps > r[1].video_kbps && r[1].video_kbps > r[3].video_kbps);
}

TEST(never_upscales)
{
    ladder_rung r[LADDER_MAX_RUNGS];
    CHECK_EQ_INT(ladder_build("1080p", 1280, 720, r), 3);
    CHECK_EQ_STR(r[0].name, "720p");
    CHECK_EQ_INT(ladder_build("480p", 640, 360, r), 1);
    CHECK_EQ_STR(r[0].name, "360p");
}

TEST(portrait_uses_the_short_side)
{
    ladder_rung r[LADDER_MAX_RUNGS];
    CHECK_EQ_INT(ladder_build("720p", 1080, 1920, r), 3);
    CHECK_EQ_INT(r[0].width, 720);
    CHECK_EQ_INT(r[0].height, 1280);
    CHECK_EQ_STR(r[0].name, "720p");
}

TEST(small_and_odd_sources_get_one_even_rung)
{
    ladder_rung r[LADDER_MAX_RUNGS];
    CHECK_EQ_INT(ladder_build("480p", 321, 241, r), 1);
    CHECK_EQ_INT(r[0].width, 320);
    CHECK_EQ_INT(r[0].height, 240);
    CHECK_EQ_STR(r[0].name, "240p");
    CHECK(r[0].video_kbps >= 100);
    CHECK_EQ_INT(ladder_build("480p", 853, 481, r), 2);
    CHECK_EQ_INT(r[0].width % 2, 0);
    CHECK_EQ_INT(ladder_build("480p", 854, 480, r), 2);
    CHECK_EQ_INT(r[1].width, 640); /* 640.5 rounds to the nearest even width */
}

TEST(refuses_bad_presets_and_sizes)
{
    ladder_rung r[LADDER_MAX_RUNGS];
    CHECK_EQ_INT(ladder_build("4k", 1920, 1080, r), -EINVAL);
    CHECK_EQ_INT(ladder_build("480p", 20000, 20000, r), -EINVAL);
    CHECK_EQ_INT(ladder_build("480p", 0, 480, r), -EINVAL);
}

int main(void)
{
    RUN(auto_preset_follows_the_encoder);
    RUN(full_ladder_from_1080p);
    RUN(never_upscales);
    RUN(portrait_uses_the_short_side);
    RUN(small_and_odd_sources_get_one_even_rung);
    RUN(refuses_bad_presets_and_sizes);
    return test_summary();
}
