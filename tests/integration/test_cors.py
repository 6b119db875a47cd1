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
