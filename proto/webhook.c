/* Webhooks on the wire. See webhook.h. */
#include "proto/webhook.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "proto/hmac.h"
#include "proto/json.h"

static const char *const names[] = {"asset.uploaded", "asset.ready",  "asset.failed",
                                    "asset.deleted",  "export.ready", "export.failed"};
#define NNAMES ((int)(sizeof(names) / sizeof(names[0])))

int webhook_event_bit(const char *name, size_t len)
{
    for (int i = 0; i < NNAMES; i++)
        if (strlen(names[i]) == len && memcmp(names[i], name, len) == 0)
            return 1 << i;
    return 0;
}

int webhook_events_format(int bits, char out[WEBHOOK_EVENTS_MAX])
{
    size_t n = 0;
    out[0] = '\0';
    for (int i = 0; i < NNAMES; i++)
        if (bits & (1 << i))
            n += (size_t)snprintf(out + n, WEBHOOK_EVENTS_MAX - n, "%s%s", n ? "," : "", names[i]);
    return (int)n;
}

int webhook_events_parse(const char *list)
{
    int bits = 0;
    const char *p = list;
    while (*p) {
        const char *c = strchr(p, ',');
        size_t len = c ? (size_t)(c - p) : strlen(p);
        bits |= webhook_event_bit(p, len);
        p += len + (c != NULL);
    }
    return bits;
}

/* ---- signatures ---- */

int webhook_signature(char *out, size_t cap, int64_t t, const char *body, size_t len,
                      const char *secret, const char *previous)
{
    char ts[24];
    int tl = snprintf(ts, sizeof(ts), "%lld.", (long long)t);
    int n = snprintf(out, cap, "t=%lld", (long long)t);
    if (n < 0 || (size_t)n >= cap)
        return -ENOSPC;
    const char *keys[2] = {secret, previous};
    for (int k = 0; k < 2; k++) {
        if (keys[k] == NULL || keys[k][0] == '\0')
            continue;
        br_hmac_key_context kc;
        br_hmac_context c;
        uint8_t mac[HMAC_SHA256_LEN];
        br_hmac_key_init(&kc, &br_sha256_vtable, keys[k], strlen(keys[k]));
        br_hmac_init(&c, &kc, 0);
        br_hmac_update(&c, ts, (size_t)tl);
        br_hmac_update(&c, body, len);
        br_hmac_out(&c, mac);
        if ((size_t)n + 4 + HMAC_SHA256_HEX >= cap)
            return -ENOSPC;
        memcpy(out + n, ",v1=", 4);
        hmac_hex(out + n + 4, mac, sizeof(mac));
        n += 4 + HMAC_SHA256_HEX;
        out[n] = '\0';
    }
    return n;
}

/* ---- events ---- */

int webhook_event_json(char *buf, size_t cap, const webhook_event *e)
{
    json_writer w;
    json_writer_init(&w, buf, cap);
    int64_t secs = e->created_ms / 1000;
    char iso[32];
    struct tm tm;
    time_t tt = (time_t)secs;
    gmtime_r(&tt, &tm);
    strftime(iso, sizeof(iso), "%Y-%m-%dT%H:%M:%SZ", &tm);
    json_object_begin(&w);
    json_key(&w, "id");
    json_str(&w, e->id);
    json_key(&w, "type");
    json_str(&w, e->type);
    json_key(&w, "created");
    json_int64(&w, secs);
    json_key(&w, "created_at");
    json_str(&w, iso);
    json_key(&w, "org");
    json_str(&w, e->org);
    json_key(&w, "data");
    json_object_begin(&w);
    json_key(&w, "asset_id");
    json_str(&w, e->asset_id);
    const webhook_export *x = e->export;
    if (x != NULL) {
        char sec[32];
        json_key(&w, "export_id");
        json_str(&w, x->id);
        json_key(&w, "start");
        int sn = snprintf(sec, sizeof(sec), "%.3f", (double)x->start_ms / 1000.0);
        json_raw(&w, sec, (size_t)sn);
        json_key(&w, "end");
        sn = snprintf(sec, sizeof(sec), "%.3f", (double)x->end_ms / 1000.0);
        json_raw(&w, sec, (size_t)sn);
        json_key(&w, "captions");
        if (x->captions != NULL && x->captions[0] != '\0')
            json_str(&w, x->captions);
        else
            json_raw(&w, "null", 4);
    }
    if (e->error != NULL) {
        json_key(&w, "error");
        json_str(&w, e->error);
    }
    if (e->nrenditions > 0) {
        json_key(&w, "renditions");
        json_array_begin(&w);
        for (int i = 0; i < e->nrenditions; i++) {
            const webhook_rendition *r = &e->renditions[i];
            json_object_begin(&w);
            json_key(&w, "name");
            json_str(&w, r->name);
            json_key(&w, "width");
            json_int64(&w, r->width);
            json_key(&w, "height");
            json_int64(&w, r->height);
            json_key(&w, "bitrate_kbps");
            json_int64(&w, r->bitrate_kbps);
            json_object_end(&w);
        }
        json_array_end(&w);
    }
    if (e->duration_sec > 0) {
        char d[32];
        int dn = snprintf(d, sizeof(d), "%.3f", e->duration_sec);
        json_key(&w, "duration");
        json_raw(&w, d, (size_t)dn);
    }
    if (e->playback != NULL) {
        json_key(&w, "playback");
        json_str(&w, e->playback);
    }
    if (x != NULL && x->download_url != NULL) {
        json_key(&w, "download_url");
        json_str(&w, x->download_url);
    }
    json_object_end(&w);
    json_object_end(&w);
    int n = json_writer_finish(&w);
    return n < 0 ? -ENOSPC : n;
}
