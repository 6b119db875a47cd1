/* The OpenAPI 3.1 document of reeld's HTTP API (GET /api/docs).
 *
 * owns:  one constant string; nothing else. */
#ifndef REELD_PROTO_OPENAPI_H
#define REELD_PROTO_OPENAPI_H

#include <stddef.h>

extern const char openapi_json[];     /* the document, JSON, NUL-terminated */
extern const size_t openapi_json_len; /* its length without the NUL */

#endif
