/* The web console's actor. Contract in console.h. */
#include "actors/console.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "src/rt/alloc.h"
#include "src/rt/assets.h"

struct console {
    rd_actor_def def;
    int route_index, route_file;
};

static const char *type_of(const char *path)
{
    static const struct {
        const char *ext, *type;
    } types[] = {{".html", "text/html; charset=utf-8"},
                 {".js", "text/javascript; charset=utf-8"},
                 {".css", "text/css; charset=utf-8"},
                 {".svg", "image/svg+xml"}};
    const char *dot = strrchr(path, '.');
    for (size_t i = 0; dot != NULL && i < sizeof(types) / sizeof(types[0]); i++)
        if (strcmp(dot, types[i].ext) == 0)
            return types[i].type;
    return "application/octet-stream";
}

/* The page talks to this origin's API and plays from any edge the API's links name. */
#define HEADERS                                                                                    \
    "Cache-Control: no-cache\r\nX-Content-Type-Options: nosniff\r\n"                               \
    "Referrer-Policy: no-referrer\r\nContent-Security-Policy: default-src 'self'; "                \
    "connect-src *; media-src * blob:; img-src * data: blob:; frame-ancestors 'none'\r\n"

static void serve(const rd_msg *m, const rd_embedded *a)
{
    if (a == NULL)
        http_reply(m, 404, "text/plain", "Not found.\n", 11);
    else
        http_reply_headers(m, 200, type_of(a->path), a->data, a->len, HEADERS);
}

static int console_handle(rd_actor *self, rd_msg *m)
{
    const console *c = self->state;
    if (m->type != MSG_HTTP_REQUEST)
        return RD_DONE;
    const rd_http_request *q = msg_body(m, http_request);
    if ((int)q->route == c->route_index) {
        serve(m, rd_embedded_find("console/index.html", 18));
        return RD_DONE;
    }
    /* /console/{file}: one name of assets/console/, nothing outside it. */
    http1_str f = http_request_param(q, 0);
    char path[128];
    const rd_embedded *a = NULL;
    if (f.len > 0 && f.len < 100 && memchr(f.p, '/', f.len) == NULL && f.p[0] != '.') {
        int n = snprintf(path, sizeof(path), "console/%.*s", (int)f.len, f.p);
        a = rd_embedded_find(path, (size_t)n);
    }
    serve(m, a);
    return RD_DONE;
}

int console_start(rd_loop *const *loops, int nloops, rd_http_routes *routes, console **out,
                  char *err, size_t errlen)
{
    console *c = rd_calloc(1, sizeof(*c), "starting the console");
    rd_actor **actors = rd_calloc((size_t)nloops, sizeof(*actors), "starting the console");
    c->def = (rd_actor_def){.name = "console", .handle = console_handle};
    int r = 0;
    for (int i = 0; i < nloops && r == 0; i++)
        r = actor_spawn(loops[i], &c->def, c, &actors[i]);
    if (r == 0)
        r = c->route_index = http_routes_add(routes, "/", RD_HTTP_GET, actors, nloops, 0, 0);
    if (r >= 0)
        r = c->route_file =
            http_routes_add(routes, "/console/{file}", RD_HTTP_GET, actors, nloops, 0, 0);
    free(actors);
    *out = c;
    if (r < 0) {
        snprintf(err, errlen, "cannot start the console (%s)", strerror(-r));
        return r;
    }
    return 0;
}

void console_free(console *c)
{
    free(c);
}
