/* Webhook endpoint URLs and the addresses a delivery may go to. See webhook.h. Kept apart
 * from the signatures and events so the fuzz target builds it alone. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <strings.h>

#include "proto/webhook.h"

/* ---- URLs ---- */

static int fail(const char **why, const char *w)
{
    if (why)
        *why = w;
    return -EINVAL;
}

int webhook_url_parse(const char *s, size_t len, webhook_url *out, const char **why)
{
    memset(out, 0, sizeof(*out));
    if (len == 0)
        return fail(why, "url is empty.");
    if (len > WEBHOOK_URL_MAX)
        return fail(why, "url is longer than 2048 bytes.");
    size_t i;
    if (len >= 8 && strncasecmp(s, "https://", 8) == 0) {
        out->tls = 1;
        out->port = 443;
        i = 8;
    } else if (len >= 7 && strncasecmp(s, "http://", 7) == 0) {
        out->port = 80;
        i = 7;
    } else {
        return fail(why, "url must start with https:// or http://.");
    }
    size_t hs = i, he;
    size_t hn = 0;
    if (i < len && s[i] == '[') {
        i++;
        while (i < len && s[i] != ']') {
            char c = s[i];
            if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') ||
                  c == ':' || c == '.'))
                return fail(why, "url has a malformed IPv6 address.");
            i++;
        }
        if (i == len || i - hs - 1 == 0 || i - hs - 1 >= INET6_ADDRSTRLEN)
            return fail(why, "url has a malformed IPv6 address.");
        hn = i - hs - 1;
        memcpy(out->host, s + hs + 1, hn);
        out->host[hn] = '\0';
        struct in6_addr a6;
        if (inet_pton(AF_INET6, out->host, &a6) != 1)
            return fail(why, "url has a malformed IPv6 address.");
        out->literal = 6;
        i++; /* ']' */
        he = i;
    } else {
        while (i < len && s[i] != ':' && s[i] != '/' && s[i] != '?' && s[i] != '#') {
            char c = s[i];
            if (c == '@')
                return fail(why, "url must not carry a user name or password.");
            if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '-' || c == '.' || c == '_'))
                return fail(why, "url's host has a character a host name cannot have.");
            i++;
        }
        he = i;
        hn = he - hs;
        if (hn == 0)
            return fail(why, "url has no host.");
        if (hn >= WEBHOOK_HOST_MAX)
            return fail(why, "url's host is too long.");
        for (size_t k = 0; k < hn; k++) {
            char c = s[hs + k];
            out->host[k] = c >= 'A' && c <= 'Z' ? (char)(c + 32) : c;
        }
        out->host[hn] = '\0';
        while (hn > 1 && out->host[hn - 1] == '.')
            out->host[--hn] = '\0'; /* "example.com." is example.com */
        if (out->host[0] == '.' || strstr(out->host, "..") != NULL)
            return fail(why, "url's host is malformed.");
        /* Whatever the resolver would take as an IPv4 address (127.1, 0x7f000001,
         * 2130706433, ...) is one. */
        struct in_addr a4;
        if (inet_aton(out->host, &a4) == 1)
            out->literal = 4;
    }
    (void)he;
    if (i < len && s[i] == ':') {
        i++;
        uint32_t port = 0;
        size_t ps = i;
        while (i < len && s[i] >= '0' && s[i] <= '9' && port <= 65535) {
            port = port * 10 + (uint32_t)(s[i] - '0');
            i++;
        }
        if (i == ps || port == 0 || port > 65535 || (i < len && s[i] != '/' && s[i] != '?'))
            return fail(why, "url's port must be a number from 1 to 65535.");
        out->port = (uint16_t)port;
    }
    if (i < len && s[i] != '/' && s[i] != '?')
        return fail(why, "url is malformed after the host.");
    for (size_t k = i; k < len; k++) {
        unsigned char c = (unsigned char)s[k];
        if (c <= 0x20 || c >= 0x7f)
            return fail(why, "url's path must be printable ASCII without spaces (percent-encode).");
        if (c == '#')
            return fail(why, "url must not have a fragment.");
    }
    out->target = i < len ? s + i : "/";
    out->target_len = i < len ? len - i : 1;
    return 0;
}

/* ---- private addresses ---- */

int webhook_ipv4_private(const uint8_t a[4])
{
    uint32_t v = (uint32_t)a[0] << 24 | (uint32_t)a[1] << 16 | (uint32_t)a[2] << 8 | a[3];
    static const struct {
        uint32_t net;
        int bits;
    } nets[] = {
        {0x00000000, 8},  /* 0.0.0.0/8: this network */
        {0x0a000000, 8},  /* 10/8 */
        {0x64400000, 10}, /* 100.64/10: CGNAT */
        {0x7f000000, 8},  /* loopback */
        {0xa9fe0000, 16}, /* link-local */
        {0xac100000, 12}, /* 172.16/12 */
        {0xc0000000, 24}, /* 192.0.0/24: IETF protocol assignments */
        {0xc0000200, 24}, /* TEST-NET-1 */
        {0xc0586300, 24}, /* 192.88.99/24: 6to4 relay anycast */
        {0xc0a80000, 16}, /* 192.168/16 */
        {0xc6120000, 15}, /* 198.18/15: benchmarking */
        {0xc6336400, 24}, /* TEST-NET-2 */
        {0xcb007100, 24}, /* TEST-NET-3 */
        {0xe0000000, 4},  /* multicast */
        {0xf0000000, 4},  /* 240/4 reserved, broadcast */
    };
    for (size_t i = 0; i < sizeof(nets) / sizeof(nets[0]); i++) {
        uint32_t mask = nets[i].bits == 0 ? 0 : 0xffffffffu << (32 - nets[i].bits);
        if ((v & mask) == nets[i].net)
            return 1;
    }
    return 0;
}

int webhook_ipv6_private(const uint8_t a[16])
{
    static const uint8_t zero[16] = {0};
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    static const uint8_t nat64[12] = {0, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0};
    if (memcmp(a, mapped, 12) == 0 || memcmp(a, nat64, 12) == 0)
        return webhook_ipv4_private(a + 12);
    if (memcmp(a, zero, 12) == 0)
        return 1; /* ::, ::1 and the deprecated IPv4-compatible forms */
    if ((a[0] & 0xfe) == 0xfc)
        return 1; /* fc00::/7 ULA */
    if (a[0] == 0xfe && (a[1] & 0xc0) == 0x80)
        return 1; /* fe80::/10 link-local */
    if (a[0] == 0xfe && (a[1] & 0xc0) == 0xc0)
        return 1; /* fec0::/10 site-local (deprecated) */
    if (a[0] == 0xff)
        return 1; /* multicast */
    if (a[0] == 0x20 && a[1] == 0x01 && a[2] == 0x0d && a[3] == 0xb8)
        return 1; /* 2001:db8::/32 documentation */
    if (a[0] == 0x20 && a[1] == 0x02)
        return webhook_ipv4_private(a + 2); /* 6to4 of a private IPv4 address */
    if (a[0] == 0x01 && a[1] == 0x00 && memcmp(a + 2, zero, 6) == 0)
        return 1; /* 100::/64 discard */
    return 0;
}

int webhook_sockaddr_private(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET)
        return webhook_ipv4_private((const uint8_t *)&((const struct sockaddr_in *)sa)->sin_addr);
    if (sa->sa_family == AF_INET6)
        return webhook_ipv6_private((const uint8_t *)&((const struct sockaddr_in6 *)sa)->sin6_addr);
    return 1;
}

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

int webhook_host_private(const webhook_url *u)
{
    if (u->literal == 4) {
        struct in_addr a4;
        if (inet_aton(u->host, &a4) != 1)
            return 1;
        return webhook_ipv4_private((const uint8_t *)&a4);
    }
    if (u->literal == 6) {
        struct in6_addr a6;
        if (inet_pton(AF_INET6, u->host, &a6) != 1)
            return 1;
        return webhook_ipv6_private((const uint8_t *)&a6);
    }
    return strcmp(u->host, "localhost") == 0 || ends_with(u->host, ".localhost") ||
           ends_with(u->host, ".local") || ends_with(u->host, ".internal") ||
           strchr(u->host, '.') == NULL; /* a bare name resolves by the local search list */
}

/* ---- the receiver's answer ---- */

int webhook_status_line(const char *b, size_t n)
{
    const char *nl = memchr(b, '\n', n);
    if (nl == NULL)
        return n > 1024 ? -EPROTO : 0;
    if (nl - b < 12 || memcmp(b, "HTTP/1.", 7) != 0 || b[7] < '0' || b[7] > '9' || b[8] != ' ')
        return -EPROTO;
    int code = 0;
    for (int i = 9; i < 12; i++) {
        if (b[i] < '0' || b[i] > '9')
            return -EPROTO;
        code = code * 10 + (b[i] - '0');
    }
    if (nl - b > 12 && b[12] != ' ' && b[12] != '\r')
        return -EPROTO; /* "HTTP/1.1 2000" */
    return code >= 100 ? code : -EPROTO;
}
