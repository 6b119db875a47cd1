"""Thumbnails at any time, made on demand by the edge from the top rung's segment that holds
the time (never the master) and cached like a segment: the signed link authorizes them; two
requests at once render once; the second is a cache hit; a time past the end gives the last
frame; bad parameters are 400; an asset with no ladder yet is 404."""
import concurrent.futures
import os
import re
import subprocess
import time
import urllib.error
import urllib.request

from test_api import call, put_url
from test_pictures import distance, gray

KEYS = "acme:acme-key-0123456789abcdef"
ACME = {"Authorization": "Bearer acme-key-0123456789abcdef"}
SECS = 6


def fetch(url):
    try:
        with urllib.request.urlopen(url, timeout=30) as resp:
            return resp.status, {k.lower(): v for k, v in resp.headers.items()}, resp.read()
    except urllib.error.HTTPError as e:
        return e.code, {k.lower(): v for k, v in e.headers.items()}, e.read()


def metric(r, name):
    _, _, body = fetch(f"http://{r.addr}/metrics")
    m = re.search(rf"^{re.escape(name)} (\S+)$", body.decode(), re.M)
    return float(m.group(1)) if m else 0.0


def size_of(jpeg, path):
    with open(path, "wb") as f:
        f.write(jpeg)
    out = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
                          "stream=width,height", "-of", "csv=p=0", path],
                         check=True, capture_output=True, text=True).stdout.strip()
    return tuple(int(x) for x in out.split(","))


def test_thumbnails_at_any_time(reeld_factory, tmp_path):
    src = str(tmp_path / "clip.mp4")
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i",
                    f"testsrc2=size=640x360:rate=25:duration={SECS}", "-c:v", "libx264",
                    "-preset", "ultrafast", "-pix_fmt", "yuv420p", src], check=True)
    data = open(src, "rb").read()
    r = reeld_factory(env={"REELD_API_KEYS": KEYS, "HLS_SEGMENT_SEC": "2",
                           "REELD_CPU_ENCODERS": "1"})
    st, _, up = call(r, "POST", "/api/uploads",
                     {"filename": "c.mp4", "content_type": "video/mp4", "size": len(data)}, ACME)
    assert st == 201 and put_url(up["upload"]["url"], data)[0] == 200
    aid = up["asset_id"]
    st, _, pb = call(r, "POST", f"/api/assets/{aid}/promote", headers=ACME)
    assert st == 202
    st, _, pb = call(r, "GET", f"/api/assets/{aid}/playback", headers=ACME)
    base = pb["url"].rsplit("/", 1)[0]
    # Not ready yet (or just now): either no ladder (404) or a picture; never a 5xx.
    st, _, _ = fetch(f"{base}/thumbnail.jpg?time=1")
    assert st in (200, 404), st
    deadline = time.time() + 180
    while call(r, "GET", f"/api/assets/{aid}", headers=ACME)[2]["state"] != "ready":
        assert time.time() < deadline
        time.sleep(0.3)

    # Two at once: one render, both get the same picture; then a cache hit.
    url = f"{base}/thumbnail.jpg?time=3.2&width=320"
    fetched = metric(r, 'reeld_edge_origin_fetches_total{result="ok"}')
    with concurrent.futures.ThreadPoolExecutor(2) as ex:
        got = list(ex.map(fetch, [url, url]))
    assert [g[0] for g in got] == [200, 200], got
    assert got[0][2] == got[1][2] and got[0][2][:2] == b"\xff\xd8"
    assert got[0][1]["content-type"] == "image/jpeg"
    assert "immutable" in got[0][1]["cache-control"]
    assert metric(r, 'reeld_edge_origin_fetches_total{result="ok"}') == fetched + 1
    hits = metric(r, "reeld_edge_cache_hits_total")
    time.sleep(0.3)  # the picture's file is renamed into place just after the response
    st, _, again = fetch(url)
    assert st == 200 and again == got[0][2]
    assert metric(r, "reeld_edge_cache_hits_total") == hits + 1
    assert size_of(again, str(tmp_path / "a.jpg")) == (320, 180)

    # The picture is the frame at that time: nearer the source at 3.2 s than at 1 s or 5 s.
    pic = gray(str(tmp_path / "a.jpg"))
    assert distance(pic, gray(src, 3.2)) < min(distance(pic, gray(src, 1.0)),
                                              distance(pic, gray(src, 5.0)))
    # Past the end: the last frame (and the rung's width at most: 640 here, asked 1920).
    st, _, last = fetch(f"{base}/thumbnail.jpg?time=99&width=1920")
    assert st == 200 and size_of(last, str(tmp_path / "b.jpg")) == (640, 360)
    pic = gray(str(tmp_path / "b.jpg"))
    assert distance(pic, gray(src, SECS - 0.04)) < distance(pic, gray(src, 3.0))
    # Bad parameters.
    for q in ("time=1&width=10000", "time=1&width=8", "time=abc", "width=320", "time=-1",
              "time=1.2345", "time=1e3"):
        st, h, body = fetch(f"{base}/thumbnail.jpg?{q}")
        assert st == 400 and b"bad_thumbnail" in body and h["cache-control"] == "no-store", q
    # The link authorizes it: another signature is refused.
    bad = re.sub(r"/hls/(\d+)/([0-9a-f]+)/", lambda m: f"/hls/{m.group(1)}/{'0' * len(m.group(2))}/",
                 url)
    assert fetch(bad)[0] == 403
    assert "thumbnail_failed" not in r.logs()
