/* Presigned URLs for clients; the endpoint parsing mirrors `reeld presign` (cmd/presign.c). */
#include "src/urlsign.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

/* base = endpoint minus trailing '/', plus `suffix`; host = its host[:port], default port off. */
static int set_base(urlsign *u, const char *endpoint, const char *suffix)
{
    const char *hostpart = strstr(endpoint, "://");
    if (hostpart == NULL)
        return -EINVAL;
    hostpart += 3;
    size_t hlen = strcspn(hostpart, "/?#");
    if (hlen == 0 || memchr(hostpart, '@', hlen) != NULL || hostpart[hlen] == '?' ||
        hostpart[hlen] == '#' || hlen >= sizeof(u->host))
        return -EINVAL;
    size_t blen = strlen(endpoint);
    while (blen > 0 && endpoint[blen - 1] == '/')
        blen--;
    int n = snprintf(u->base, sizeof(u->base), "%.*s%s", (int)blen, endpoint, suffix);
    if (n < 0 || (size_t)n >= sizeof(u->base))
        return -EINVAL;
    memcpy(u->host, hostpart, hlen);
    u->host[hlen] = '\0';
    const char *dflt = strncmp(endpoint, "https://", 8) == 0 ? ":443" : ":80";
    size_t dl = strlen(dflt);
    if (hlen > dl && strcmp(u->host + hlen - dl, dflt) == 0)
        u->host[hlen - dl] = '\0';
    return 0;
}

int urlsign_init(urlsign *u, const rd_config *cfg, char *err, size_t errlen)
{
    memset(u, 0, sizeof(*u));
    u->cred.region = cfg->s3_region;
    u->cred.service = "s3";
    u->cred.access_key_id = cfg->s3_access_key_id;
    u->cred.secret_access_key = cfg->s3_secret_access_key;
    if (cfg->s3_endpoint != NULL) {
        if (set_base(u, cfg->s3_endpoint, "") < 0) {
            snprintf(err, errlen, "S3_ENDPOINT: must be scheme://host[:port][/path] (got '%s')",
                     cfg->s3_endpoint);
            return -EINVAL;
        }
        if (u->cred.access_key_id == NULL || u->cred.secret_access_key == NULL) {
            snprintf(err, errlen, "S3_ENDPOINT needs S3_ACCESS_KEY_ID and S3_SECRET_ACCESS_KEY");
            return -EINVAL;
        }
        return 0;
    }
    char listen_url[300];
    config_listen_url(cfg, listen_url, sizeof(listen_url));
    const char *pub = cfg->public_url ? cfg->public_url : listen_url;
    if (set_base(u, pub, "/blob") < 0) {
        snprintf(err, errlen, "REELD_PUBLIC_URL: must be scheme://host[:port][/path] (got '%s')",
                 pub);
        return -EINVAL;
    }
    if (u->cred.access_key_id != NULL && u->cred.secret_access_key != NULL)
        return 0;
    if (u->cred.access_key_id != NULL || u->cred.secret_access_key != NULL) {
        snprintf(err, errlen, "set both S3_ACCESS_KEY_ID and S3_SECRET_ACCESS_KEY, or neither");
        return -EINVAL;
    }
    int r = localkey_load(cfg->data_dir, &u->local, err, errlen);
    if (r < 0)
        return r;
    u->cred.access_key_id = u->local.access_key_id;
    u->cred.secret_access_key = u->local.secret_access_key;
    return 0;
}

void urlsign_clear(urlsign *u)
{
    if (u == NULL)
        return;
    localkey_clear(&u->local);
    sigv4_key_cache_clear(&u->cache);
    memset(&u->cred, 0, sizeof(u->cred));
}

int urlsign_url(urlsign *u, const char *method, const char *bucket, const char *key,
                const sigv4_pair *query, size_t nquery, int64_t now, int64_t expires,
                int64_t length, char *out, size_t cap)
{
    return urlsign_url_keyed(u, &u->cache, method, bucket, key, query, nquery, now, expires, length,
                             out, cap);
}

int urlsign_url_keyed(const urlsign *u, sigv4_key_cache *cache, const char *method,
                      const char *bucket, const char *key, const sigv4_pair *query, size_t nquery,
                      int64_t now, int64_t expires, int64_t length, char *out, size_t cap)
{
    const char *base_path = strchr(strstr(u->base, "://") + 3, '/');
    char path[2 * BLOBFS_MAX_KEY + 256];
    int n = snprintf(path, sizeof(path), "%s/%s/%s", base_path ? base_path : "", bucket, key);
    if (n < 0 || (size_t)n >= sizeof(path))
        return -ENAMETOOLONG;
    size_t origin = base_path ? (size_t)(base_path - u->base) : strlen(u->base);
    if (origin >= cap)
        return -ENOSPC;
    memcpy(out, u->base, origin);
    char len[24];
    snprintf(len, sizeof(len), "%lld", (long long)length);
    sigv4_pair headers[2] = {{"host", u->host}, {"content-length", len}};
    sigv4_request req = {method, path, query, nquery, headers, length >= 0 ? 2 : 1, NULL};
    int r = sigv4_presign(cache, &u->cred, now, expires, &req, out + origin, cap - origin);
    return r < 0 ? r : (int)origin + r;
}
