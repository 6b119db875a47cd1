"""CORS where browsers need it, from a page on another origin: the embedded object store's
presigned PUT and GET (/blob/) and the edge (/hls/), preflights included, against the real
binary. Disallowed origins get no CORS lines (the browser then refuses the response)."""
import os
import urllib.parse

import pytest

from test_abuse import ACME, KEYS, api, new_upload
from test_api import put_url
import http.client

PAGE = "https://app.example"


def request(url, method, headers=None, body=None):
    u = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
    conn.request(method, u.path + ("?" + u.query if u.query else ""), body=body,
                 headers=headers or {})
    resp = conn.getresponse()
    data = resp.read()
    conn.close()
    return resp.status, {k.lower(): v for k, v in resp.getheaders()}, data


@pytest.fixture
def reeld(reeld_factory):
    return reeld_factory(env={"REELD_API_KEYS": KEYS, "ALLOWED_ORIGINS": PAGE})


def test_blob_preflight_put_and_get_from_an_allowed_origin(reeld):
    data = os.urandom(5000)
    aid, url = new_upload(reeld, len(data), ACME)
    st, h, _ = request(url, "OPTIONS", {"Origin": PAGE, "Access-Control-Request-Method": "PUT",
                                        "Access-Control-Request-Headers": "content-type"})
    assert st == 204 and h["access-control-allow-origin"] == PAGE, h
    assert "PUT" in h["access-control-allow-methods"]
    assert "content-type" in h["access-control-allow-headers"].lower()
    assert h["vary"] == "Origin"
    st, h, _ = request(url, "PUT", {"Origin": PAGE, "Content-Type": "video/mp4"}, data)
    assert st == 200 and h["access-control-allow-origin"] == PAGE
    assert "ETag" in h["access-control-expose-headers"] and h["etag"]
    # A signed GET of the object, ranged, as a player's fetch would ask for it.
    st, _, _ = request(url, "OPTIONS", {"Origin": PAGE, "Access-Control-Request-Method": "GET",
                                        "Access-Control-Request-Headers": "range"})
    assert st == 204
    # Refusals carry the lines too, so the page's script can read S3's error.
    st, h, body = request(url.replace("X-Amz-Signature=", "X-Amz-Signature=0"), "PUT",
                          {"Origin": PAGE, "Content-Type": "video/mp4"}, data)
    assert st in (400, 403) and h["access-control-allow-origin"] == PAGE, body


def test_blob_refuses_cors_to_other_origins(reeld):
    aid, url = new_upload(reeld, 10, ACME)
    for origin in ("https://evil.example", "https://app.example.evil"):
        st, h, _ = request(url, "OPTIONS", {"Origin": origin,
                                            "Access-Control-Request-Method": "PUT"})
        assert st == 204 and "access-control-allow-origin" not in h
        st, h, _ = request(url, "PUT", {"Origin": origin, "Content-Type": "video/mp4"},
                           b"0123456789")
        assert st == 200 and "access-control-allow-origin" not in h
    # Methods and headers outside the list are not allowed.
    st, h, _ = request(url, "OPTIONS", {"Origin": PAGE, "Access-Control-Request-Method": "DELETE"})
    assert "access-control-allow-origin" not in h
    st, h, _ = request(url, "OPTIONS", {"Origin": PAGE, "Access-Control-Request-Method": "PUT",
                                        "Access-Control-Request-Headers": "x-secret"})
    assert "access-control-allow-origin" not in h


# ---- the edge ----

def edge_env(**extra):
    from test_edge import KEY as EDGE_KEY
    return {"REELD_API_KEYS": KEYS, "EDGE_SIGNING_KEY": EDGE_KEY, **extra}


def test_edge_answers_players_on_any_origin_by_default(reeld_factory):
    from test_edge import link, put
    r = reeld_factory(env=edge_env())
    put(r, "a1", "master.m3u8", b"#EXTM3U\n")
    seg = os.urandom(10000)
    put(r, "a1", "480p/seg_00000.ts", seg)
    base = f"http://{r.addr}"
    # A player that sends Range is preflighted; the preflight needs no signature.
    st, h, _ = request(base + link("a1", "480p/seg_00000.ts"), "OPTIONS",
                       {"Origin": PAGE, "Access-Control-Request-Method": "GET",
                        "Access-Control-Request-Headers": "range"})
    assert st == 204 and h["access-control-allow-origin"] == "*", h
    assert "range" in h["access-control-allow-headers"] and "GET" in h["access-control-allow-methods"]
    for path, extra in (("master.m3u8", {}), ("480p/seg_00000.ts", {}),
                        ("480p/seg_00000.ts", {"Range": "bytes=100-199"})):
        for _ in range(2):  # a miss, then a hit (spliced from the cache)
            st, h, body = request(base + link("a1", path), "GET", {"Origin": PAGE, **extra})
            assert st in (200, 206) and h["access-control-allow-origin"] == "*", (path, h)
            for name in ("Content-Range", "Accept-Ranges", "ETag", "Content-Length"):
                assert name in h["access-control-expose-headers"]
    assert st == 206 and body == seg[100:200]
    # Errors carry the lines too: a player reads their status (403, 410, 404).
    bad = link("a1", "master.m3u8").replace("/a1/", "/a2/")
    st, h, _ = request(base + bad, "GET", {"Origin": PAGE})
    assert st == 403 and h["access-control-allow-origin"] == "*"
    st, h, _ = request(base + link("a1", "480p/missing.ts"), "GET", {"Origin": PAGE})
    assert st == 404 and h["access-control-allow-origin"] == "*"


def test_edge_origins_can_be_narrowed(reeld_factory):
    from test_edge import link, put
    r = reeld_factory(env=edge_env(PLAYBACK_ALLOWED_ORIGINS=PAGE))
    put(r, "a1", "master.m3u8", b"#EXTM3U\n")
    url = f"http://{r.addr}" + link("a1", "master.m3u8")
    st, h, _ = request(url, "GET", {"Origin": PAGE})
    assert st == 200 and h["access-control-allow-origin"] == PAGE and h["vary"] == "Origin"
    st, h, _ = request(url, "GET", {"Origin": "https://other.example"})
    assert st == 200 and "access-control-allow-origin" not in h
    st, h, _ = request(url, "OPTIONS", {"Origin": "https://other.example",
                                        "Access-Control-Request-Method": "GET"})
    assert "access-control-allow-origin" not in h


def test_a_bad_origin_list_stops_start(tmp_path):
    import subprocess
    from conftest import free_port, reeld_bin
    env = dict(os.environ, REELD_DATA_DIR=str(tmp_path), REELD_LISTEN=f"127.0.0.1:{free_port()}",
               PLAYBACK_ALLOWED_ORIGINS="https://a b")
    out = subprocess.run([reeld_bin(), "serve"], capture_output=True, text=True, timeout=20,
                         env=env)
    assert out.returncode != 0 and "PLAYBACK_ALLOWED_ORIGINS" in out.stderr, out.stderr
