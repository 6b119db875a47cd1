/* The Prometheus text exposition format, version 0.0.4, written into a caller's buffer.
 *
 *   # HELP reeld_http_requests_total HTTP requests answered.
 *   # TYPE reeld_http_requests_total counter
 *   reeld_http_requests_total{route="/api/health",code="200"} 3
 *
 * No I/O, no allocation. A writer that runs out of room sets `full` and writes nothing more;
 * the caller retries with a bigger buffer. Label values are escaped (\\, \", \n); names are the
 * caller's and must already be valid metric and label names. */
#ifndef REELD_PROTO_PROM_H
#define REELD_PROTO_PROM_H

#include <stddef.h>
#include <stdint.h>

#include "proto/wbuf.h"

#define PROM_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* The caller's buffer; err is -ENOSPC once something did not fit (proto/wbuf.h). */
typedef rd_wbuf prom_writer;

void prom_init(prom_writer *w, char *buf, size_t cap);

/* The # HELP and # TYPE lines of a family. `type`: counter, gauge or histogram. */
void prom_family(prom_writer *w, const char *name, const char *type, const char *help);

/* One sample: name + suffix ("" or "_bucket", "_sum", "_count"), the `n` labels, an optional
 * extra label `le` (histogram buckets; NULL for none), and the value. Integral values are
 * written without an exponent; +Inf/NaN as Prometheus spells them. */
void prom_sample(prom_writer *w, const char *name, const char *suffix, const char *const *lnames,
                 const char *const *lvalues, int n, const char *le, double value);

/* The same for a 64-bit integer value, written exactly. */
void prom_sample_u64(prom_writer *w, const char *name, const char *suffix,
                     const char *const *lnames, const char *const *lvalues, int n, const char *le,
                     uint64_t value);

/* A bucket bound as Prometheus writes it ("0.005", "+Inf") into out[32]. */
void prom_format_le(double le, char out[32]);

#endif
