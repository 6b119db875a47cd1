/* Prometheus text format writer; see prom.h. */
#include "proto/prom.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void prom_init(prom_writer *w, char *buf, size_t cap)
{
    *w = wbuf_init(buf, cap);
}

/* HELP text escapes only \ and newline; label values also escape ". */
static void put_escaped(prom_writer *w, const char *s, int quote)
{
    for (; *s; s++) {
        if (*s == '\\')
            wbuf_put(w, "\\\\", 2);
        else if (*s == '\n')
            wbuf_put(w, "\\n", 2);
        else if (quote && *s == '"')
            wbuf_put(w, "\\\"", 2);
        else
            wbuf_put(w, s, 1);
    }
}

void prom_family(prom_writer *w, const char *name, const char *type, const char *help)
{
    wbuf_str(w, "# HELP ");
    wbuf_str(w, name);
    wbuf_put(w, " ", 1);
    put_escaped(w, help, 0);
    wbuf_str(w, "\n# TYPE ");
    wbuf_str(w, name);
    wbuf_put(w, " ", 1);
    wbuf_str(w, type);
    wbuf_put(w, "\n", 1);
}

static void put_series(prom_writer *w, const char *name, const char *suffix,
                       const char *const *lnames, const char *const *lvalues, int n, const char *le)
{
    wbuf_str(w, name);
    wbuf_str(w, suffix);
    if (n > 0 || le != NULL) {
        wbuf_put(w, "{", 1);
        for (int i = 0; i < n; i++) {
            if (i > 0)
                wbuf_put(w, ",", 1);
            wbuf_str(w, lnames[i]);
            wbuf_str(w, "=\"");
            put_escaped(w, lvalues[i], 1);
            wbuf_put(w, "\"", 1);
        }
        if (le != NULL) {
            if (n > 0)
                wbuf_put(w, ",", 1);
            wbuf_str(w, "le=\"");
            wbuf_str(w, le);
            wbuf_put(w, "\"", 1);
        }
        wbuf_put(w, "}", 1);
    }
    wbuf_put(w, " ", 1);
}

/* Integers without an exponent; anything else in the shortest form that reads back the same
 * ("0.005", not "0.0050000000000000001"). */
static void format_double(double v, char out[32])
{
    if (isnan(v)) {
        snprintf(out, 32, "NaN");
    } else if (isinf(v)) {
        snprintf(out, 32, v > 0 ? "+Inf" : "-Inf");
    } else if (v == floor(v) && fabs(v) < 9007199254740992.0) {
        snprintf(out, 32, "%.0f", v);
    } else {
        for (int prec = 1; prec <= 17; prec++) {
            snprintf(out, 32, "%.*g", prec, v);
            if (strtod(out, NULL) == v)
                return;
        }
    }
}

void prom_format_le(double le, char out[32])
{
    format_double(le, out);
}

void prom_sample(prom_writer *w, const char *name, const char *suffix, const char *const *lnames,
                 const char *const *lvalues, int n, const char *le, double value)
{
    char v[32];
    format_double(value, v);
    put_series(w, name, suffix, lnames, lvalues, n, le);
    wbuf_str(w, v);
    wbuf_put(w, "\n", 1);
}

void prom_sample_u64(prom_writer *w, const char *name, const char *suffix,
                     const char *const *lnames, const char *const *lvalues, int n, const char *le,
                     uint64_t value)
{
    char v[24];
    snprintf(v, sizeof(v), "%llu", (unsigned long long)value);
    put_series(w, name, suffix, lnames, lvalues, n, le);
    wbuf_str(w, v);
    wbuf_put(w, "\n", 1);
}
