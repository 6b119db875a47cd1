/* JSON for the API's request and response bodies: a reader that tokenizes into the caller's
 * array (jsmn's idea) and a writer that fills the caller's buffer.
 *
 * owns:  nothing. The reader keeps offsets into the caller's text; the writer writes into the
 *        caller's buffer. No allocation, no I/O.
 * never: reads past `len`, recurses deeper than JSON_MAX_DEPTH, or accepts what RFC 8259 does
 *        not (trailing commas, comments, single quotes, control characters in strings, leading
 *        zeros, lone surrogates in \u escapes).
 *
 * Why not jansson or cJSON: build.zig links a fixed list of pkg-config libraries that this code
 * may not change, and proto/ must not allocate behind its caller (both libraries build a tree
 * of malloc'd nodes per parse). API bodies are a handful of fields, so a flat token array on
 * the stack is enough; the reader is fuzzed (tests/fuzz/fuzz_json.c). */
#ifndef REELD_PROTO_JSON_H
#define REELD_PROTO_JSON_H

#include <stddef.h>
#include <stdint.h>

#define JSON_MAX_DEPTH 32

typedef enum json_type {
    JSON_NULL,
    JSON_FALSE,
    JSON_TRUE,
    JSON_NUMBER,
    JSON_STRING, /* start/len cover the text between the quotes, escapes not yet decoded */
    JSON_ARRAY,
    JSON_OBJECT, /* children alternate: key (a string), value */
} json_type;

typedef struct json_tok {
    uint8_t type;   /* json_type */
    uint32_t start; /* offset of the value's text */
    uint32_t len;
    uint32_t size; /* arrays: items; objects: members (key/value pairs) */
    uint32_t end;  /* index of the first token after this value and everything inside it */
} json_tok;

/* Tokenizes one JSON value (with optional surrounding whitespace) of s[0..len) into
 * toks[0..ntoks); toks[0] is the root. Returns the number of tokens, -EINVAL when the text is
 * not JSON, -ENOSPC when it needs more than ntoks tokens, -E2BIG when it nests deeper than
 * JSON_MAX_DEPTH or is longer than 4 GiB. */
int json_parse(const char *s, size_t len, json_tok *toks, size_t ntoks);

/* The token index of member `key` of the object at index `obj` (the first one, when the key is
 * repeated), or -1 when absent or `obj` is not an object. Keys are compared after decoding. */
int json_get(const char *s, const json_tok *toks, int obj, const char *key);

/* The token index of item `i` of the array at `arr`, or -1. */
int json_item(const json_tok *toks, int arr, uint32_t i);

/* Decodes the string at `t` into out (cap bytes, NUL-terminated). Returns its length,
 * -EINVAL when the token is not a string or decodes to a NUL byte, -ENOSPC when it does not
 * fit. */
int json_string(const char *s, const json_tok *t, char *out, size_t cap);

/* The integer at `t`: a number without fraction or exponent within int64. 0, or -EINVAL. */
int json_int(const char *s, const json_tok *t, int64_t *out);

/* A writer into buf[0..cap): values are separated by commas as needed. Once the buffer is too
 * small, `full` is set and what follows is dropped; the text is NUL-terminated while it fits. */
typedef struct json_writer {
    char *buf;
    size_t cap, len;
    int full;
    int depth;
    uint8_t fresh[JSON_MAX_DEPTH]; /* 1: nothing written yet at this depth */
    uint8_t after_key;             /* the next value follows a key: no comma */
} json_writer;

void json_writer_init(json_writer *w, char *buf, size_t cap);
void json_object_begin(json_writer *w);
void json_object_end(json_writer *w);
void json_array_begin(json_writer *w);
void json_array_end(json_writer *w);
void json_key(json_writer *w, const char *key);
void json_str(json_writer *w, const char *v);
void json_strn(json_writer *w, const char *v, size_t n);
void json_int64(json_writer *w, int64_t v);
void json_bool(json_writer *w, int v);
/* Writes `raw` as is (a value already in JSON). */
void json_raw(json_writer *w, const char *raw, size_t n);
/* The length written, or -ENOSPC when the buffer was too small. */
int json_writer_finish(const json_writer *w);

#endif
