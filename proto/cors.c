/* CORS policy checks and header lines. Contract in cors.h. */
#include "proto/cors.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

int cors_parse(cors_policy *p, const char *list, const char *setting, char *err, size_t errlen)
{
    memset(p, 0, sizeof(*p));
    const char *s = list;
    while (s != NULL && *s) {
        while (*s == ' ')
            s++;
        const char *comma = strchr(s, ',');
        size_t len = comma ? (size_t)(comma - s) : strlen(s);
        while (len && s[len - 1] == ' ')
            len--;
        if (len) {
            if (p->n == CORS_MAX_ORIGINS || len >= CORS_ORIGIN_LEN) {
                snprintf(err, errlen, "%s: at most %d origins of %d bytes or less", setting,
                         CORS_MAX_ORIGINS, CORS_ORIGIN_LEN - 1);
                return -EINVAL;
            }
            for (size_t i = 0; i < len; i++) {
                unsigned char c = (unsigned char)s[i];
                if (c <= ' ' || c >= 0x7f || c == ',') {
                    snprintf(err, errlen, "%s: an origin is scheme://host[:port] or *", setting);
                    return -EINVAL;
                }
            }
            memcpy(p->origins[p->n], s, len);
            p->origins[p->n][len] = '\0';
            p->any |= len == 1 && s[0] == '*';
            p->n++;
        }
        s = comma ? comma + 1 : NULL;
    }
    return 0;
}

int cors_allowed(const cors_policy *p, const char *origin, size_t len)
{
    if (origin == NULL || len == 0 || len >= CORS_ORIGIN_LEN)
        return 0;
    if (p->any)
        return 1;
    for (int i = 0; i < p->n; i++)
        if (strlen(p->origins[i]) == len && memcmp(p->origins[i], origin, len) == 0)
            return 1;
    return 0;
}

int cors_response_lines(const cors_policy *p, const char *origin, size_t len, const char *expose,
                        char *out, size_t cap)
{
    if (cap)
        out[0] = '\0';
    if (!cors_allowed(p, origin, len))
        return 0;
    int n;
    /* "*" answers every origin the same, so caches need no Vary; a named origin varies. */
    if (p->any)
        n = snprintf(out, cap, "Access-Control-Allow-Origin: *\r\n%s%s%s",
                     expose ? "Access-Control-Expose-Headers: " : "", expose ? expose : "",
                     expose ? "\r\n" : "");
    else
        n = snprintf(out, cap, "Access-Control-Allow-Origin: %.*s\r\nVary: Origin\r\n%s%s%s",
                     (int)len, origin, expose ? "Access-Control-Expose-Headers: " : "",
                     expose ? expose : "", expose ? "\r\n" : "");
    if (n < 0 || (size_t)n >= cap) {
        if (cap)
            out[0] = '\0';
        return -ENOSPC;
    }
    return n;
}

int cors_headers_allowed(const char *value, size_t len, const char *const *allowed)
{
    size_t i = 0;
    while (i < len) {
        while (i < len && (value[i] == ' ' || value[i] == ',' || value[i] == '\t'))
            i++;
        size_t s = i;
        while (i < len && value[i] != ',' && value[i] != ' ' && value[i] != '\t')
            i++;
        if (i == s)
            break;
        int found = 0;
        for (size_t k = 0; allowed[k] != NULL && !found; k++)
            found = strlen(allowed[k]) == i - s && strncasecmp(allowed[k], value + s, i - s) == 0;
        if (!found)
            return 0;
    }
    return 1;
}

/* 1 when `word` is one of the comma-separated words of `list`. */
static int in_list(const char *list, const char *word, size_t len)
{
    const char *s = list;
    while (*s) {
        while (*s == ' ' || *s == ',')
            s++;
        size_t n = strcspn(s, ", ");
        if (n == len && n && memcmp(s, word, n) == 0)
            return 1;
        s += n;
    }
    return 0;
}

int cors_preflight(const cors_policy *p, const char *origin, size_t origin_len, const char *method,
                   size_t method_len, const char *req_headers, size_t req_headers_len,
                   const char *methods, const char *const *allowed_headers, char *out, size_t cap)
{
    if (cap)
        out[0] = '\0';
    if (!cors_allowed(p, origin, origin_len) || method == NULL ||
        !in_list(methods, method, method_len) ||
        (req_headers != NULL &&
         !cors_headers_allowed(req_headers, req_headers_len, allowed_headers)))
        return 0;
    int n = cors_response_lines(p, origin, origin_len, NULL, out, cap);
    if (n < 0)
        return n;
    size_t used = (size_t)n;
    int k = snprintf(out + used, cap - used, "Access-Control-Allow-Methods: %s\r\n", methods);
    if (k < 0 || (size_t)k >= cap - used)
        goto full;
    used += (size_t)k;
    if (allowed_headers[0] != NULL) {
        k = snprintf(out + used, cap - used, "Access-Control-Allow-Headers: ");
        if (k < 0 || (size_t)k >= cap - used)
            goto full;
        used += (size_t)k;
        for (size_t i = 0; allowed_headers[i] != NULL; i++) {
            k = snprintf(out + used, cap - used, "%s%s", i ? ", " : "", allowed_headers[i]);
            if (k < 0 || (size_t)k >= cap - used)
                goto full;
            used += (size_t)k;
        }
        k = snprintf(out + used, cap - used, "\r\n");
        if (k < 0 || (size_t)k >= cap - used)
            goto full;
        used += (size_t)k;
    }
    k = snprintf(out + used, cap - used, "Access-Control-Max-Age: 600\r\n");
    if (k < 0 || (size_t)k >= cap - used)
        goto full;
    return (int)(used + (size_t)k);
full:
    out[0] = '\0';
    return -ENOSPC;
}
