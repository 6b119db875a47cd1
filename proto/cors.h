/* CORS (the Fetch standard's cross-origin checks) as one policy every route owner uses: the
 * API, the embedded object store (/blob/) and the edge (/hls/). Pure functions over bytes:
 * no I/O, no allocation.
 *
 * A policy is a list of allowed origins ("https://app.example", or "*" for any). For a
 * request with an allowed Origin the owner adds cors_response_lines() to its reply; a
 * preflight (OPTIONS with Access-Control-Request-Method) is answered with cors_preflight(),
 * which allows only the owner's methods and request headers. A disallowed origin gets no CORS
 * lines at all, so the browser refuses the response. */
#ifndef REELD_PROTO_CORS_H
#define REELD_PROTO_CORS_H

#include <stddef.h>

#define CORS_MAX_ORIGINS 16
#define CORS_ORIGIN_LEN  81 /* bytes of an allowed origin, NUL included */

typedef struct cors_policy {
    char origins[CORS_MAX_ORIGINS][CORS_ORIGIN_LEN];
    int n;
    int any; /* "*" is in the list */
} cors_policy;

/* Parses a comma-separated list (spaces around entries ignored; empty: no origin allowed).
 * 0, or -EINVAL with one sentence naming `setting` in err. */
int cors_parse(cors_policy *p, const char *list, const char *setting, char *err, size_t errlen);

/* 1 when `origin` (len bytes, not NUL-terminated) may read responses. */
int cors_allowed(const cors_policy *p, const char *origin, size_t len);

/* The lines a response to an allowed origin carries: Access-Control-Allow-Origin (the origin
 * itself, or "*" when any origin is allowed), Vary: Origin when it names the origin, and
 * Access-Control-Expose-Headers: `expose` when not NULL. Each line ends in CRLF. Returns the
 * length written, 0 when `origin` is absent (NULL) or not allowed, or -ENOSPC. */
int cors_response_lines(const cors_policy *p, const char *origin, size_t len, const char *expose,
                        char *out, size_t cap);

/* 1 when every name in an Access-Control-Request-Headers value (comma-separated, any case) is
 * in `allowed` (lower-case names, NULL-terminated). An empty value is allowed. */
int cors_headers_allowed(const char *value, size_t len, const char *const *allowed);

/* Answers a preflight: when the origin is allowed, `method` (Access-Control-Request-Method)
 * is one of the words of `methods` ("GET, HEAD, PUT") and every requested header is in
 * `allowed_headers`, writes the allow lines (origin, Vary, Allow-Methods: methods,
 * Allow-Headers: the allowed names, Max-Age) and returns their length; else 0 (the reply then
 * carries no CORS lines and the browser stops). -ENOSPC when out is too small. */
int cors_preflight(const cors_policy *p, const char *origin, size_t origin_len, const char *method,
                   size_t method_len, const char *req_headers, size_t req_headers_len,
                   const char *methods, const char *const *allowed_headers, char *out, size_t cap);

#endif
