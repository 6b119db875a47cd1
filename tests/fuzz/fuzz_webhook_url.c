/* libFuzzer target for the webhook URL checker and the receiver's status line
 * (proto/webhook_url.c): the input is tried as both.
 *
 * Checks: nothing reads past the input; an accepted URL has a host that is a NUL-terminated
 * string of its own buffer, a port, and a request target inside the input (or "/") that starts
 * with '/' or '?' and holds only printable ASCII; the private-host check answers for it. */
#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/webhook_url.c"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *buf = malloc(size ? size : 1);
    memcpy(buf, data, size);
    webhook_url u;
    const char *why = NULL;
    int r = webhook_url_parse(buf, size, &u, &why);
    if (r == 0) {
        assert(size <= WEBHOOK_URL_MAX);
        assert(strlen(u.host) > 0 && strlen(u.host) < WEBHOOK_HOST_MAX);
        assert(u.port > 0);
        assert(u.target_len > 0);
        assert(u.target[0] == '/' || u.target[0] == '?');
        /* The target is the input's tail, or the constant "/" when the input has none. */
        int inside = u.target >= buf && u.target < buf + size;
        assert(inside ? u.target + u.target_len == buf + size : u.target_len == 1);
        for (size_t i = 0; i < u.target_len; i++)
            assert(u.target[i] > 0x20 && u.target[i] < 0x7f);
        int p = webhook_host_private(&u);
        assert(p == 0 || p == 1);
    } else {
        assert(r == -EINVAL && why != NULL);
    }
    /* The same bytes as a receiver's answer. */
    int code = webhook_status_line(buf, size);
    assert(code == 0 || code == -EPROTO || (code >= 100 && code <= 999));
    if (code == 0)
        assert(memchr(buf, '\n', size) == NULL && size <= 1024);
    free(buf);
    return 0;
}
