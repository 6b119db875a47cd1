/* The storyboard's interval, tile geometry and WebVTT text, known answers. */
#include "src/media/storyboard.h"

#include <errno.h>

#include "tests/unit/test.h"

TEST(interval_keeps_to_200_tiles_and_at_least_a_second)
{
    CHECK_EQ_INT(storyboard_interval(10, 0), 1);
    CHECK_EQ_INT(storyboard_interval(200, 0), 1);
    CHECK_EQ_INT(storyboard_interval(201, 0), 2);
    CHECK_EQ_INT(storyboard_interval(3600, 0), 18);
    CHECK_EQ_INT(storyboard_interval(0, 0), 1);  /* unknown length */
    CHECK_EQ_INT(storyboard_interval(-5, 0), 1); /* nonsense length */
    CHECK_EQ_INT(storyboard_interval(3600, 5), 5);
}

TEST(tile_keeps_the_aspect_with_even_sides)
{
    int w = 0, h = 0;
    CHECK_EQ_INT(storyboard_tile_size(1920, 1080, &w, &h), 0);
    CHECK_EQ_INT(w, 160);
    CHECK_EQ_INT(h, 90);
    CHECK_EQ_INT(storyboard_tile_size(1080, 1920, &w, &h), 0); /* portrait */
    CHECK_EQ_INT(w, 160);
    CHECK_EQ_INT(h, 284);
    CHECK_EQ_INT(storyboard_tile_size(640, 360, &w, &h), 0);
    CHECK_EQ_INT(h, 90);
    CHECK_EQ_INT(storyboard_tile_size(854, 480, &w, &h), 0);
    CHECK_EQ_INT(h % 2, 0);
    CHECK_EQ_INT(storyboard_tile_size(100, 60, &w, &h), 0); /* smaller than a tile: its own */
    CHECK_EQ_INT(w, 100);
    CHECK_EQ_INT(h, 60);
    CHECK_EQ_INT(storyboard_tile_size(8192, 2, &w, &h), 0);
    CHECK_EQ_INT(h, 2);
    CHECK_EQ_INT(storyboard_tile_size(2, 8192, &w, &h), 0);
    CHECK_EQ_INT(w, 2);
    CHECK_EQ_INT(h, 640);
    CHECK_EQ_INT(storyboard_tile_size(1, 100, &w, &h), -EINVAL);
}

TEST(places_and_sprite_sizes)
{
    int s, x, y, w, h;
    storyboard_place(0, 160, 90, &s, &x, &y);
    CHECK(s == 0 && x == 0 && y == 0);
    storyboard_place(13, 160, 90, &s, &x, &y);
    CHECK(s == 0 && x == 480 && y == 90);
    storyboard_place(99, 160, 90, &s, &x, &y);
    CHECK(s == 0 && x == 1440 && y == 810);
    storyboard_place(100, 160, 90, &s, &x, &y);
    CHECK(s == 1 && x == 0 && y == 0);
    storyboard_sprite_size(0, 3, 160, 90, &w, &h); /* three tiles: one short row */
    CHECK(w == 480 && h == 90);
    storyboard_sprite_size(0, 25, 160, 90, &w, &h);
    CHECK(w == 1600 && h == 270);
    storyboard_sprite_size(0, 250, 160, 90, &w, &h);
    CHECK(w == 1600 && h == 900);
    storyboard_sprite_size(2, 250, 160, 90, &w, &h); /* the last of three: 50 tiles */
    CHECK(w == 1600 && h == 450);
}

TEST(vtt_cues_cover_the_video_without_gaps)
{
    const int64_t starts[] = {40, 1000, 2000};
    char buf[512];
    int n = storyboard_vtt(buf, sizeof(buf), starts, 3, 2540, 160, 90);
    CHECK_EQ_STR(buf, "WEBVTT\n"
                      "\n00:00:00.000 --> 00:00:01.000\nsprite_0.jpg#xywh=0,0,160,90\n"
                      "\n00:00:01.000 --> 00:00:02.000\nsprite_0.jpg#xywh=160,0,160,90\n"
                      "\n00:00:02.000 --> 00:00:02.540\nsprite_0.jpg#xywh=320,0,160,90\n");
    CHECK_EQ_INT(n, (long long)strlen(buf));
}

TEST(vtt_hours_and_second_sprite)
{
    int64_t starts[101];
    for (int i = 0; i < 101; i++)
        starts[i] = (int64_t)i * 36000;
    static char buf[16384];
    int n = storyboard_vtt(buf, sizeof(buf), starts, 101, 3661001, 160, 90);
    CHECK(n > 0);
    CHECK(strstr(buf, "\n00:59:24.000 --> 01:00:00.000\nsprite_0.jpg#xywh=1440,810,160,90\n") !=
          NULL);
    CHECK(strstr(buf, "\n01:00:00.000 --> 01:01:01.001\nsprite_1.jpg#xywh=0,0,160,90\n") != NULL);
}

TEST(vtt_refuses_bad_input_and_small_buffers)
{
    const int64_t starts[] = {0, 1000};
    const int64_t back[] = {0, 1000, 1000};
    char buf[64];
    CHECK_EQ_INT(storyboard_vtt(buf, sizeof(buf), starts, 0, 2000, 160, 90), -EINVAL);
    CHECK_EQ_INT(storyboard_vtt(buf, sizeof(buf), back, 3, 2000, 160, 90), -EINVAL);
    CHECK_EQ_INT(storyboard_vtt(buf, sizeof(buf), starts, 2, 1000, 160, 90), -EINVAL);
    CHECK_EQ_INT(storyboard_vtt(buf, sizeof(buf), starts, 2, 2000, 160, 90), -ENOSPC);
    CHECK_EQ_INT(storyboard_vtt(buf, 3, starts, 1, 2000, 160, 90), -ENOSPC);
}

int main(void)
{
    RUN(interval_keeps_to_200_tiles_and_at_least_a_second);
    RUN(tile_keeps_the_aspect_with_even_sides);
    RUN(places_and_sprite_sizes);
    RUN(vtt_cues_cover_the_video_without_gaps);
    RUN(vtt_hours_and_second_sprite);
    RUN(vtt_refuses_bad_input_and_small_buffers);
    return test_summary();
}
