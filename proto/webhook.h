/* Webhooks on the wire: the endpoint URL a platform registers, the addresses a delivery may go
 * to, the Reeld-Signature header and the event's JSON body. Pure: no I/O, no allocation.
 *
 * Signature (the Stripe/Mux scheme): Reeld-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of
 * "<t>.<raw body>" under the secret>, and during a rotation's grace a second v1= under the
 * previous secret. Receivers check any v1 and refuse a t older than five minutes. */
#ifndef REELD_PROTO_WEBHOOK_H
#define REELD_PROTO_WEBHOOK_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define WEBHOOK_URL_MAX    2048 /* bytes of a registered URL */
#define WEBHOOK_HOST_MAX   256  /* host with the NUL, brackets of an IPv6 literal removed */
#define WEBHOOK_SECRET_MAX 72   /* "whsec_" + 64 hex digits, NUL */
#define WEBHOOK_EVENTS_MAX 96   /* the subscribed types, comma-separated, NUL */
#define WEBHOOK_EVENT_ID   32   /* "evt_" + 24 hex digits, NUL */
#define WEBHOOK_SIG_MAX    180  /* the header's value with two signatures, NUL */
#define WEBHOOK_TYPE_MAX   24

/* The event types, as a bit set (webhook_event_bit) and by name. */
enum {
    WEBHOOK_EV_UPLOADED = 1 << 0,      /* asset.uploaded: the promote was accepted */
    WEBHOOK_EV_READY = 1 << 1,         /* asset.ready: every rendition is published */
    WEBHOOK_EV_FAILED = 1 << 2,        /* asset.failed: the transcode failed for good */
    WEBHOOK_EV_DELETED = 1 << 3,       /* asset.deleted: DELETE /api/assets/{id} */
    WEBHOOK_EV_EXPORT_READY = 1 << 4,  /* export.ready: the export's MP4 is stored */
    WEBHOOK_EV_EXPORT_FAILED = 1 << 5, /* export.failed: the export failed for good */
    WEBHOOK_EV_ALL = 63,
};

/* The bit of a type name ("asset.ready"), 0 when unknown. */
int webhook_event_bit(const char *name, size_t len);
/* The canonical comma-separated list of the bits ("asset.uploaded,asset.ready"); the length. */
int webhook_events_format(int bits, char out[WEBHOOK_EVENTS_MAX]);
/* The bits of a comma-separated list as stored; unknown names are skipped. */
int webhook_events_parse(const char *list);

typedef struct webhook_url {
    int tls;                     /* https */
    uint16_t port;               /* explicit or 80/443 */
    int literal;                 /* 4 or 6: the host is an IP address literal; 0: a name */
    char host[WEBHOOK_HOST_MAX]; /* lower-cased; an IPv6 literal without brackets */
    const char *target;          /* path and query in the caller's string ("/" when empty) */
    size_t target_len;
} webhook_url;

/* Parses an endpoint URL: http:// or https://, a host (a DNS name of letters, digits, '-', '.',
 * '_', or an IPv4 literal, or a bracketed IPv6 literal), an optional port (1-65535), then a
 * path and query of printable ASCII without spaces; no userinfo, no fragment, at most
 * WEBHOOK_URL_MAX bytes. 0, or -EINVAL with a sentence in *why. */
int webhook_url_parse(const char *s, size_t len, webhook_url *out, const char **why);

/* 1 when an address is not for public delivery: loopback, unspecified and 0.0.0.0/8, RFC 1918,
 * CGNAT 100.64/10, link-local 169.254/16 and fe80::/10, ULA fc00::/7, multicast, broadcast,
 * documentation and benchmark ranges, 192.0.0.0/24, 240/4, IPv4-mapped and -compatible forms of
 * those, NAT64 (64:ff9b::/96) of those. */
int webhook_ipv4_private(const uint8_t a[4]);
int webhook_ipv6_private(const uint8_t a[16]);
int webhook_sockaddr_private(const struct sockaddr *sa);

/* The status code at the start of a receiver's answer ("HTTP/1.1 204 No Content\r\n..."): 100
 * to 999 once the status line is whole, 0 while it is not (and no longer than 1024 bytes), or
 * -EPROTO when it is no HTTP/1.x status line. */
int webhook_status_line(const char *b, size_t n);

/* 1 when the URL's host is known to be private without resolving it: an IP literal that is, or
 * "localhost" and names under .localhost, .local, .internal. Names are checked again, by their
 * addresses, at delivery. */
int webhook_host_private(const webhook_url *u);

/* The Reeld-Signature value for `body` at time `t` under `secret` and, when `previous` is not
 * NULL or "", a second v1 under it. The length, or -ENOSPC. */
int webhook_signature(char *out, size_t cap, int64_t t, const char *body, size_t len,
                      const char *secret, const char *previous);

typedef struct webhook_rendition {
    const char *name;
    int width, height, bitrate_kbps;
} webhook_rendition;

/* An export event's range and caption track (export.ready, export.failed). */
typedef struct webhook_export {
    const char *id;           /* the export's public id */
    int64_t start_ms, end_ms; /* the range of the source */
    const char *captions;     /* the caption track burned in; NULL or "" for none */
    const char *download_url; /* export.ready: a signed download link (may be NULL) */
} webhook_export;

typedef struct webhook_event {
    const char *id;       /* "evt_…" */
    const char *type;     /* "asset.ready" */
    const char *asset_id; /* the public id */
    const char *org;
    int64_t created_ms;
    const char *error;    /* asset.failed, export.failed: the error sentence; else NULL */
    const char *playback; /* asset.ready: a playback link (may be NULL) */
    double duration_sec;  /* asset.ready: <= 0 when unknown */
    const webhook_rendition *renditions;
    int nrenditions;
    const webhook_export *export; /* export events: the export; else NULL */
} webhook_event;

/* {"id","type","created" (unix seconds),"created_at" (ISO 8601),"org","data":{"asset_id",
 * ["export_id","start","end" (seconds),"captions" (lang or null)], ["error"],
 * ["renditions":[{name,width,height,bitrate_kbps}]], ["duration"], ["playback"],
 * ["download_url"]}}. The length, or -ENOSPC. */
int webhook_event_json(char *buf, size_t cap, const webhook_event *e);

#endif
