/* Downloads on the edge: the query flag that asks for one, and the Content-Disposition value
 * that names the file (RFC 6266: a quoted ASCII filename for old clients, filename* in UTF-8,
 * RFC 8187, for the others).
 *
 * owns:  nothing; no I/O, no allocation.
 * never: lets a byte of the name end the header line or the quoted string: CR, LF, '"' and
 *        '\' never reach the quoted form, and filename* holds only attr-chars and %XX. */
#ifndef REELD_PROTO_DISPOSITION_H
#define REELD_PROTO_DISPOSITION_H

#include <stddef.h>

#define DISPOSITION_STEM_MAX 120 /* bytes of the name kept before the extension */

/* 1 when the query string `q` (the bytes after '?', not decoded) holds `name` with the value
 * "1" or "true" ("download=1"), else 0. */
int disposition_query_flag(const char *q, size_t len, const char *name);

/* The raw value of `name` in the query string `q` (not decoded): 1 with *val and *vlen set, or
 * 0 when absent (or given without '='). The first occurrence wins. */
int disposition_query_param(const char *q, size_t len, const char *name, const char **val,
                            size_t *vlen);

/* Writes `attachment; filename="..."; filename*=UTF-8''...` for a file called like `orig` (the
 * name it was uploaded with, any bytes: a path's directories and its extension are dropped)
 * with the extension `ext` (".mp4"). In the quoted form every character that is not printable
 * ASCII, and '"', '\', '%', ';', is one '_'; filename* keeps the name's UTF-8 (an invalid sequence
 * becomes '_'). An empty name (or one of only an extension) is "download". Returns the length
 * (a NUL follows) or -ENOSPC. */
int disposition_attachment(char *out, size_t cap, const char *orig, size_t len, const char *ext);

#endif
