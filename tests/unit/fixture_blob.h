/* The blocking blob store (src/blob/blob.h) over the fs backend, as a unit test that is not an
 * actor needs one: its own started loop as the store's home, the asynchronous store on it, the
 * blocking face over that. Static functions in a header (like test.h). */
#ifndef REELD_TEST_FIXTURE_BLOB_H
#define REELD_TEST_FIXTURE_BLOB_H

#include <stdio.h>
#include <string.h>

#include "src/blob/blob.h"
#include "src/rt/actor.h"
#include "src/rt/loop.h"

typedef struct blob_fixture {
    rd_loop *loop;
    blob_aio *aio;
    blob_store *b;
} blob_fixture;

/* Closes what blob_fixture_open made; the test's other actors go with actor_free_all. */
static void blob_fixture_close(blob_fixture *f)
{
    blob_close(f->b);
    if (f->loop != NULL) {
        loop_stop(f->loop, rd_now_ns() + 1000000000ull);
        loop_join(f->loop);
    }
    blob_aio_close(f->aio);
    actor_free_all();
    loop_destroy(f->loop);
    memset(f, 0, sizeof(*f));
}

/* 0 with f->b ready, or -errno with one sentence in err, printed (and nothing left open). */
static int blob_fixture_open(blob_fixture *f, const char *data_dir, char *err, size_t errlen)
{
    memset(f, 0, sizeof(*f));
    int r = loop_create(&f->loop, 0, -1);
    if (r == 0 && (r = loop_start(f->loop)) < 0) {
        loop_destroy(f->loop);
        f->loop = NULL;
    }
    if (r == 0)
        r = blob_aio_open_fs(data_dir, f->loop, &f->aio, err, errlen);
    if (r == 0)
        f->b = blob_open(f->aio);
    if (r < 0) {
        printf("  blob_fixture_open: %d %s\n", r, err);
        blob_fixture_close(f);
    }
    return r;
}

#endif
