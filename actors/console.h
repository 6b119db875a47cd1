/* The web console: a small page, embedded in the binary (assets/console/), that uses only the
 * public API — upload a file through its presigned URL, follow the job, play the result, list
 * the org's assets.
 *
 * owns:  its two routes (GET / and GET /console/{file...}); nothing else (the files are the
 *        binary's constant data, src/rt/assets.h).
 * takes: MSG_HTTP_REQUEST for those routes (from its loop's listener).
 * sends: MSG_HTTP_RESPONSE replies.
 * never: holds a credential (the page keeps the API key in the browser and sends it to the
 *        API itself); reads the disk. */
#ifndef REELD_ACTORS_CONSOLE_H
#define REELD_ACTORS_CONSOLE_H

#include "actors/http_listener.h"
#include "src/rt/actor.h"

typedef struct console console;

/* Spawns one console actor per loop and adds its routes. 0 with *out set, or -errno with one
 * sentence in err. */
int console_start(rd_loop *const *loops, int nloops, rd_http_routes *routes, console **out,
                  char *err, size_t errlen);
/* Frees what console_start made, once the loops and their actors are gone. NULL: no-op. */
void console_free(console *c);

#endif
