/* proto/webhook: endpoint URLs, private addresses, the Reeld-Signature header (checked against
 * values computed with Python's hmac module) and the event JSON. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>

#include "proto/json.h"
#include "proto/webhook.h"
#include "tests/unit/test.h"

static int parse(const char *s, webhook_url *u)
{
    const char *why = NULL;
    int r = webhook_url_parse(s, strlen(s), u, &why);
    if (r < 0)
        CHECK(why != NULL);
    return r;
}

TEST(url_ok)
{
    webhook_url u;
    CHECK_EQ_INT(parse("https://Hooks.Example.com/reeld?x=1", &u), 0);
    CHECK_EQ_INT(u.tls, 1);
    CHECK_EQ_INT(u.port, 443);
    CHECK_EQ_STR(u.host, "hooks.example.com");
    CHECK_EQ_INT((int)u.target_len, 10);
    CHECK(memcmp(u.target, "/reeld?x=1", 10) == 0);
    CHECK_EQ_INT(u.literal, 0);
    CHECK_EQ_INT(webhook_host_private(&u), 0);

    CHECK_EQ_INT(parse("http://example.com:8080", &u), 0);
    CHECK_EQ_INT(u.tls, 0);
    CHECK_EQ_INT(u.port, 8080);
    CHECK_EQ_INT((int)u.target_len, 1);
    CHECK(u.target[0] == '/');

    CHECK_EQ_INT(parse("http://[2606:4700::1111]:81/x", &u), 0);
    CHECK_EQ_INT(u.literal, 6);
    CHECK_EQ_STR(u.host, "2606:4700::1111");
    CHECK_EQ_INT(webhook_host_private(&u), 0);
}

TEST(url_refused)
{
    webhook_url u;
    static const char *const bad[] = {
        "",
        "ftp://example.com/",
        "https://",
        "https:///path",
        "https://user:pw@example.com/",
        "https://exa mple.com/",
        "https://example.com:0/",
        "https://example.com:65536/",
        "https://example.com:80x/",
        "https://example.com/a b",
        "https://example.com/#frag",
        "https://[::1/",
        "https://[zz::1]/",
        "https://[fe80::1%eth0]/",
        "https://exa..mple.com/",
        "javascript:alert(1)",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int r = parse(bad[i], &u);
        if (r != -EINVAL)
            printf("  accepted: %s\n", bad[i]);
        CHECK_EQ_INT(r, -EINVAL);
    }
    char longurl[WEBHOOK_URL_MAX + 2];
    memset(longurl, 'a', sizeof(longurl));
    memcpy(longurl, "https://e.com/", 14);
    CHECK_EQ_INT(webhook_url_parse(longurl, WEBHOOK_URL_MAX, &u, NULL), 0);
    CHECK_EQ_INT(webhook_url_parse(longurl, WEBHOOK_URL_MAX + 1, &u, NULL), -EINVAL);
}

TEST(private_hosts)
{
    static const char *const priv[] = {
        "http://127.0.0.1/",
        "http://127.1/",
        "http://2130706433/",
        "http://0x7f000001/",
        "http://10.1.2.3/",
        "http://172.16.0.1/",
        "http://172.31.255.255/",
        "http://192.168.1.1/",
        "http://100.64.0.1/",
        "http://100.127.255.255/",
        "http://169.254.169.254/",
        "http://0.0.0.0/",
        "http://0.1.2.3/",
        "http://255.255.255.255/",
        "http://224.0.0.1/",
        "http://[::1]/",
        "http://[::]/",
        "http://[fe80::1]/",
        "http://[fc00::1]/",
        "http://[fd12:3456::1]/",
        "http://[::ffff:127.0.0.1]/",
        "http://[::ffff:10.0.0.1]/",
        "http://[64:ff9b::a00:1]/",
        "http://localhost/",
        "http://api.localhost/",
        "http://printer.local/",
        "http://metadata.google.internal/",
        "http://intranet/",
    };
    webhook_url u;
    for (size_t i = 0; i < sizeof(priv) / sizeof(priv[0]); i++) {
        CHECK_EQ_INT(parse(priv[i], &u), 0);
        if (!webhook_host_private(&u))
            printf("  public: %s\n", priv[i]);
        CHECK(webhook_host_private(&u));
    }
    static const char *const pub[] = {"http://8.8.8.8/", "http://172.32.0.1/",
                                      "http://100.128.0.1/", "http://[2001:4860::8888]/",
                                      "http://[::ffff:8.8.8.8]/"};
    for (size_t i = 0; i < sizeof(pub) / sizeof(pub[0]); i++) {
        CHECK_EQ_INT(parse(pub[i], &u), 0);
        CHECK(!webhook_host_private(&u));
    }
    struct sockaddr_in sin = {.sin_family = AF_INET};
    inet_pton(AF_INET, "192.168.0.10", &sin.sin_addr);
    CHECK(webhook_sockaddr_private((struct sockaddr *)&sin));
    inet_pton(AF_INET, "93.184.216.34", &sin.sin_addr);
    CHECK(!webhook_sockaddr_private((struct sockaddr *)&sin));
    struct sockaddr_in6 sin6 = {.sin6_family = AF_INET6};
    inet_pton(AF_INET6, "fe80::abcd", &sin6.sin6_addr);
    CHECK(webhook_sockaddr_private((struct sockaddr *)&sin6));
}

TEST(signature)
{
    char out[WEBHOOK_SIG_MAX];
    const char *body = "{\"a\":1}";
    int n = webhook_signature(out, sizeof(out), 1700000000, body, strlen(body), "whsec_test", NULL);
    CHECK_EQ_INT(n, (int)strlen(out));
    CHECK_EQ_STR(
        out, "t=1700000000,v1=38877139021993b830af32feea6e18a8da83eb2f6e49ee50bd9e4cf4ca4d3789");
    n = webhook_signature(out, sizeof(out), 1700000000, body, strlen(body), "whsec_test",
                          "whsec_old");
    CHECK_EQ_STR(out,
                 "t=1700000000,v1=38877139021993b830af32feea6e18a8da83eb2f6e49ee50bd9e4cf4ca4d3789"
                 ",v1=b9d801502bb535e960ee9aeee7a294b082bda5089d79c7db610b85116ce6faa6");
    CHECK(n < WEBHOOK_SIG_MAX);
    CHECK_EQ_INT(webhook_signature(out, 40, 1700000000, body, 7, "whsec_test", NULL), -ENOSPC);
}

TEST(events)
{
    char list[WEBHOOK_EVENTS_MAX];
    CHECK_EQ_INT(webhook_event_bit("asset.ready", 11), WEBHOOK_EV_READY);
    CHECK_EQ_INT(webhook_event_bit("asset.readyx", 12), 0);
    int n = webhook_events_format(WEBHOOK_EV_ALL, list);
    CHECK_EQ_STR(list, "asset.uploaded,asset.ready,asset.failed,asset.deleted,export.ready,"
                       "export.failed");
    CHECK(n < WEBHOOK_EVENTS_MAX && (size_t)n == strlen(list)); /* every type fits the column */
    CHECK_EQ_INT(webhook_event_bit("asset.deleted", 13), WEBHOOK_EV_DELETED);
    CHECK_EQ_INT(webhook_event_bit("export.ready", 12), WEBHOOK_EV_EXPORT_READY);
    CHECK_EQ_INT(webhook_event_bit("export.failed", 13), WEBHOOK_EV_EXPORT_FAILED);
    CHECK_EQ_INT(webhook_event_bit("export.ready", 11), 0);
    CHECK_EQ_INT(webhook_events_parse(list), WEBHOOK_EV_ALL);
    CHECK_EQ_INT(webhook_events_parse("asset.failed"), WEBHOOK_EV_FAILED);
    CHECK_EQ_INT(webhook_events_parse("asset.ready,export.failed,nope"),
                 WEBHOOK_EV_READY | WEBHOOK_EV_EXPORT_FAILED);
    CHECK_EQ_INT(webhook_events_parse(""), 0);
    /* A list stored before the export events (an endpoint that took "all" then) keeps meaning
     * the asset events only. */
    CHECK_EQ_INT(webhook_events_parse("asset.uploaded,asset.ready,asset.failed,asset.deleted"),
                 WEBHOOK_EV_UPLOADED | WEBHOOK_EV_READY | WEBHOOK_EV_FAILED | WEBHOOK_EV_DELETED);
    for (int i = 0; i < 31; i++)
        CHECK(((1 << i) & WEBHOOK_EV_ALL) ? webhook_events_format(1 << i, list) > 0
                                          : webhook_events_format(1 << i, list) == 0);
}

TEST(event_json)
{
    webhook_rendition r[2] = {{"720p", 1280, 720, 3000}, {"480p", 854, 480, 1200}};
    webhook_event e = {.id = "evt_0123",
                       .type = "asset.ready",
                       .asset_id = "a00ff",
                       .org = "acme \"co\"",
                       .created_ms = 1700000000123,
                       .playback = "https://edge/hls/a00ff/master.m3u8",
                       .duration_sec = 12.5,
                       .renditions = r,
                       .nrenditions = 2};
    char buf[1024];
    int n = webhook_event_json(buf, sizeof(buf), &e);
    CHECK(n > 0);
    CHECK_EQ_STR(buf, "{\"id\":\"evt_0123\",\"type\":\"asset.ready\",\"created\":1700000000,"
                      "\"created_at\":\"2023-11-14T22:13:20Z\",\"org\":\"acme \\\"co\\\"\","
                      "\"data\":{\"asset_id\":\"a00ff\",\"renditions\":[{\"name\":\"720p\","
                      "\"width\":1280,\"height\":720,\"bitrate_kbps\":3000},{\"name\":\"480p\","
                      "\"width\":854,\"height\":480,\"bitrate_kbps\":1200}],\"duration\":12.500,"
                      "\"playback\":\"https://edge/hls/a00ff/master.m3u8\"}}");
    json_tok t[64];
    CHECK(json_parse(buf, (size_t)n, t, 64) > 0);

    webhook_event f = {.id = "evt_1",
                       .type = "asset.failed",
                       .asset_id = "a1",
                       .org = "o",
                       .created_ms = 0,
                       .error = "the master cannot be decoded\n"};
    n = webhook_event_json(buf, sizeof(buf), &f);
    CHECK_EQ_STR(buf, "{\"id\":\"evt_1\",\"type\":\"asset.failed\",\"created\":0,\"created_at\":"
                      "\"1970-01-01T00:00:00Z\",\"org\":\"o\",\"data\":{\"asset_id\":\"a1\","
                      "\"error\":\"the master cannot be decoded\\u000a\"}}");
    CHECK_EQ_INT(webhook_event_json(buf, 20, &f), -ENOSPC);

    /* An export's events name the export, its range and its caption track (null for none). */
    webhook_export x = {.id = "e42",
                        .start_ms = 10000,
                        .end_ms = 20500,
                        .captions = "en",
                        .download_url = "https://edge/hls/1/s/a1/exports/e42.mp4?download=1"};
    webhook_event g = {.id = "evt_2",
                       .type = "export.ready",
                       .asset_id = "a1",
                       .org = "o",
                       .created_ms = 0,
                       .export = &x};
    n = webhook_event_json(buf, sizeof(buf), &g);
    CHECK_EQ_STR(buf, "{\"id\":\"evt_2\",\"type\":\"export.ready\",\"created\":0,\"created_at\":"
                      "\"1970-01-01T00:00:00Z\",\"org\":\"o\",\"data\":{\"asset_id\":\"a1\","
                      "\"export_id\":\"e42\",\"start\":10.000,\"end\":20.500,\"captions\":\"en\","
                      "\"download_url\":\"https://edge/hls/1/s/a1/exports/e42.mp4?download=1\"}}");
    CHECK(json_parse(buf, (size_t)n, t, 64) > 0);
    x = (webhook_export){.id = "e43", .start_ms = 0, .end_ms = 1000, .captions = ""};
    g.type = "export.failed";
    g.error = "the range is past the end";
    n = webhook_event_json(buf, sizeof(buf), &g);
    CHECK_EQ_STR(buf, "{\"id\":\"evt_2\",\"type\":\"export.failed\",\"created\":0,"
                      "\"created_at\":\"1970-01-01T00:00:00Z\",\"org\":\"o\",\"data\":{"
                      "\"asset_id\":\"a1\",\"export_id\":\"e43\",\"start\":0.000,\"end\":1.000,"
                      "\"captions\":null,\"error\":\"the range is past the end\"}}");
    CHECK(json_parse(buf, (size_t)n, t, 64) > 0);
}

TEST(status_line)
{
#define SL(s) webhook_status_line(s, sizeof(s) - 1)
    CHECK_EQ_INT(SL("HTTP/1.1 204 No Content\r\n"), 204);
    CHECK_EQ_INT(SL("HTTP/1.0 500\r\n"), 500);
    CHECK_EQ_INT(SL("HTTP/1.1 200\n"), 200);
    CHECK_EQ_INT(SL("HTTP/1.1 20"), 0); /* not whole yet */
    CHECK_EQ_INT(SL(""), 0);
    CHECK_EQ_INT(SL("HTTP/2 200 OK\r\n"), -EPROTO);
    CHECK_EQ_INT(SL("HTTP/1.1 2000 OK\r\n"), -EPROTO);
    CHECK_EQ_INT(SL("HTTP/1.1 099 OK\r\n"), -EPROTO);
    CHECK_EQ_INT(SL("HTTP/1.1 2x0 OK\r\n"), -EPROTO);
    CHECK_EQ_INT(SL("SSH-2.0-OpenSSH\r\n"), -EPROTO);
    char big[1100];
    memset(big, 'a', sizeof(big));
    CHECK_EQ_INT(webhook_status_line(big, sizeof(big)), -EPROTO);
#undef SL
}

int main(void)
{
    RUN(url_ok);
    RUN(url_refused);
    RUN(private_hosts);
    RUN(signature);
    RUN(events);
    RUN(event_json);
    RUN(status_line);
    return test_summary();
}
