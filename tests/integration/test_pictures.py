"""Pictures and downloads from the one decode: the storyboard (sprite JPEGs and the WebVTT that
places them), the posters (JPEG, and WebP where FFmpeg has libwebp), and the fast-start MP4
download remuxed from the top rung. Inputs are made with ffmpeg's lavfi sources; outputs are
checked with ffprobe, ffmpeg and a few lines of Python that read the VTT and the MP4's boxes."""
import json
import os
import re
import subprocess

import pytest

from conftest import reeld_bin

SECS = 12


def ffmpeg(*args):
    subprocess.run(["ffmpeg", "-v", "error", "-y", *args], check=True)


def probe(path, *args):
    out = subprocess.run(["ffprobe", "-v", "error", "-of", "json", *args, path],
                         check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def clip(path, size, secs, rate=25):
    ffmpeg("-f", "lavfi", "-i", f"testsrc2=size={size}:rate={rate}:duration={secs}",
           "-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=44100:duration={secs}",
           "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac",
           "-shortest", str(path))
    return str(path)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    d = tmp_path_factory.mktemp("pictures")
    return {"clip": clip(d / "clip.mp4", "854x480", SECS),
            "long": clip(d / "long.mp4", "192x108", 105, rate=5)}


def transcode(inp, out, *flags, env=None):
    e = dict(os.environ, **(env or {}))
    r = subprocess.run([reeld_bin(), "transcode", inp, str(out), *flags], capture_output=True,
                       text=True, env=e, timeout=180)
    assert r.returncode == 0, r.stderr[-3000:]
    return r


def vtt_time(s):
    m = re.fullmatch(r"(\d\d):([0-5]\d):([0-5]\d)\.(\d\d\d)", s)
    assert m, s
    h, mi, se, ms = (int(x) for x in m.groups())
    return h * 3600 + mi * 60 + se + ms / 1000


def parse_vtt(text):
    """The cues of a storyboard VTT as (start, end, sprite, x, y, w, h); anything that is not
    the format video.js/Vidstack/Plyr/JW Player read fails."""
    assert text.startswith("WEBVTT\n"), text[:40]
    blocks = text[len("WEBVTT\n"):].strip("\n").split("\n\n")
    cues = []
    for b in blocks:
        lines = b.split("\n")
        assert len(lines) == 2, b
        m = re.fullmatch(r"(\S+) --> (\S+)", lines[0])
        assert m, lines[0]
        u = re.fullmatch(r"(sprite_\d+\.jpg)#xywh=(\d+),(\d+),(\d+),(\d+)", lines[1])
        assert u, lines[1]
        cues.append((vtt_time(m.group(1)), vtt_time(m.group(2)), u.group(1),
                     *(int(u.group(i)) for i in range(2, 6))))
    return cues


def check_storyboard(out, duration, interval):
    cues = parse_vtt(open(os.path.join(out, "storyboard.vtt")).read())
    assert cues[0][0] == 0
    for a, b in zip(cues, cues[1:]):
        assert a[1] == b[0], (a, b)  # no gap, no overlap
    for c in cues:
        assert c[1] > c[0], c
    assert abs(cues[-1][1] - duration) < 0.2, (cues[-1], duration)
    assert len(cues) == -(-int(round(duration)) // interval), len(cues)
    sizes = {}
    for _, _, sprite, x, y, w, h in cues:
        if sprite not in sizes:
            st = probe(os.path.join(out, sprite), "-show_streams")["streams"][0]
            assert st["codec_name"] == "mjpeg"
            sizes[sprite] = (st["width"], st["height"])
        sw, sh = sizes[sprite]
        assert 0 <= x and 0 <= y and x + w <= sw and y + h <= sh, (sprite, x, y, w, h, sw, sh)
    return cues, sizes


def gray(path, at=None):
    """A small gray picture of `path` (at `at` seconds) as bytes, for likeness."""
    seek = ["-ss", str(at)] if at is not None else []
    return subprocess.run(["ffmpeg", "-v", "error", *seek, "-i", path, "-frames:v", "1",
                           "-vf", "scale=64:36,format=gray", "-f", "rawvideo", "-"],
                          check=True, capture_output=True).stdout


def distance(a, b):
    assert len(a) == len(b) > 0
    return sum(abs(x - y) for x, y in zip(a, b)) / len(a)


def psnr(picture, source, at, size, crop=None):
    """PSNR (dB, luma and chroma averaged) of `picture` (cropped to `crop` "w:h:x:y") against
    `source`'s frame at `at` seconds scaled to `size` "w:h", both as 4:2:0."""
    first = f"crop={crop}," if crop else ""
    out = subprocess.run(["ffmpeg", "-v", "info", "-nostats", "-i", picture, "-ss", str(at), "-i",
                          source, "-frames:v", "1", "-lavfi",
                          f"[0:v]{first}scale={size},format=yuv420p[a];"
                          f"[1:v]scale={size},format=yuv420p[b];[a][b]psnr", "-f", "null", "-"],
                         check=True, capture_output=True, text=True).stderr
    m = re.search(r"PSNR .* average:([0-9.]+|inf)", out)
    assert m, out[-2000:]
    return float(m.group(1))


def has_libwebp():
    out = subprocess.run(["ffmpeg", "-hide_banner", "-encoders"], capture_output=True,
                         text=True).stdout
    return re.search(r"^\s*V\S*\s+libwebp\s", out, re.M) is not None


def boxes(path):
    data = open(path, "rb").read()
    out, off = [], 0
    while off + 8 <= len(data):
        size = int.from_bytes(data[off:off + 4], "big")
        kind = data[off + 4:off + 8].decode("latin-1")
        if size == 1:
            size = int.from_bytes(data[off + 8:off + 16], "big")
        assert size >= 8, out
        out.append(kind)
        off += size
    assert off == len(data), out
    return out


def frame_hashes(path, *pre):
    out = subprocess.run(["ffmpeg", "-v", "error", *pre, "-i", path, "-map", "0:v:0",
                          "-f", "framemd5", "-"], check=True, capture_output=True,
                         text=True).stdout
    return [line.rsplit(",", 1)[1].strip() for line in out.splitlines()
            if line and not line.startswith("#")]


def test_storyboard_from_the_one_decode(inputs, tmp_path):
    out = tmp_path / "out"
    transcode(inputs["clip"], out, "--preset", "480p")
    cues, sizes = check_storyboard(str(out), SECS, 1)
    assert sizes == {"sprite_0.jpg": (1600, 180)}  # 12 tiles of 160x90: one row and a bit
    assert cues[11][3:5] == (160, 90)  # the twelfth tile: second column, second row
    # The tiles are the video's pictures: tile 7 looks like the source at 7 s.
    sprite = str(out / "sprite_0.jpg")
    tile = subprocess.run(["ffmpeg", "-v", "error", "-i", sprite, "-vf",
                           "crop=160:90:1120:0,scale=64:36,format=gray", "-f", "rawvideo", "-"],
                          check=True, capture_output=True).stdout
    near = distance(tile, gray(inputs["clip"], 7.0))
    far = distance(tile, gray(inputs["clip"], 2.0))
    assert near < far, (near, far)
    # And close to it: PSNR against ffmpeg's own frame at 7 s, scaled to the tile's size.
    db = psnr(sprite, inputs["clip"], 7.0, "160:90", crop="160:90:1120:0")
    assert db > 22, db
    assert psnr(sprite, inputs["clip"], 2.0, "160:90", crop="160:90:1120:0") < db


def test_storyboard_interval_setting(inputs, tmp_path):
    out = tmp_path / "out"
    transcode(inputs["clip"], out, env={"STORYBOARD_INTERVAL_SEC": "5"})
    cues, _ = check_storyboard(str(out), SECS, 5)
    assert [c[0] for c in cues] == [0, 5, 10]


def test_storyboard_spans_sprites(inputs, tmp_path):
    """105 s: 105 tiles, 100 in a full 10x10 sprite and 5 in a second, one short row."""
    out = tmp_path / "out"
    transcode(inputs["long"], out)
    cues, sizes = check_storyboard(str(out), 105, 1)
    assert sizes["sprite_0.jpg"] == (1600, 900)
    assert sizes["sprite_1.jpg"] == (800, 90)
    assert cues[100][2:5] == ("sprite_1.jpg", 0, 0)


def test_poster_time_and_webp(inputs, tmp_path):
    default, chosen = tmp_path / "a", tmp_path / "b"
    transcode(inputs["clip"], default)
    transcode(inputs["clip"], chosen, "--poster-time", "8.5")
    jpg = str(chosen / "poster.jpg")
    assert distance(gray(jpg), gray(inputs["clip"], 8.5)) < distance(gray(jpg),
                                                                      gray(inputs["clip"], 1.0))
    d = str(default / "poster.jpg")
    assert distance(gray(d), gray(inputs["clip"], 1.0)) < distance(gray(d),
                                                                   gray(inputs["clip"], 8.5))
    webp = chosen / "poster.webp"
    if not has_libwebp():
        assert not webp.exists()
        pytest.skip("this FFmpeg has no libwebp: no poster.webp (checked)")
    st = probe(str(webp), "-show_streams")["streams"][0]
    assert st["codec_name"] == "webp"
    assert (st["width"], st["height"]) == (854, 480)
    assert distance(gray(str(webp)), gray(jpg)) < 8


@pytest.mark.parametrize("how", ["flag", "setting"])
def test_mp4_download_is_the_top_rung_remuxed(inputs, tmp_path, how):
    out = tmp_path / "out"
    if how == "flag":
        transcode(inputs["clip"], out, "--preset", "480p", "--mp4")
    else:
        transcode(inputs["clip"], out, "--preset", "480p", env={"MP4_DOWNLOAD": "on"})
    mp4 = str(out / "download.mp4")
    kinds = boxes(mp4)
    assert kinds[0] == "ftyp" and kinds.index("moov") < kinds.index("mdat"), kinds  # fast start
    info = probe(mp4, "-show_streams", "-show_format", "-count_packets")
    v = [s for s in info["streams"] if s["codec_type"] == "video"]
    a = [s for s in info["streams"] if s["codec_type"] == "audio"]
    assert len(v) == 1 and len(a) == 1
    assert v[0]["codec_name"] == "h264" and a[0]["codec_name"] == "aac"
    assert (v[0]["width"], v[0]["height"]) == (854, 480)  # the top rung of the 480p ladder
    assert abs(float(info["format"]["duration"]) - SECS) < 0.3, info["format"]["duration"]
    rung = str(out / "480p" / "index.m3u8")
    assert int(v[0]["nb_read_packets"]) == SECS * 25
    # The same pictures, bit for bit once decoded: packets copied, not encoded again.
    hashes = frame_hashes(mp4)
    assert len(hashes) == SECS * 25
    assert hashes == frame_hashes(rung)


def test_no_download_unless_asked(inputs, tmp_path):
    out = tmp_path / "out"
    transcode(inputs["clip"], out, env={"MP4_DOWNLOAD": "off"})
    assert not (out / "download.mp4").exists()
    assert (out / "storyboard.vtt").exists()


def test_audio_only_has_no_pictures(tmp_path):
    src = tmp_path / "a.m4a"
    ffmpeg("-f", "lavfi", "-i", "sine=frequency=440:duration=3", "-c:a", "aac", str(src))
    out = tmp_path / "out"
    transcode(str(src), out, "--mp4")
    names = set(os.listdir(out))
    assert "master.m3u8" in names
    assert not names & {"storyboard.vtt", "sprite_0.jpg", "poster.jpg", "download.mp4"}, names


def test_publication_puts_pictures_before_the_master(inputs, tmp_path):
    """Through the uploader into the fs backend: every picture and the download land before
    the master starts; the posters after it."""
    data = tmp_path / "data"
    e = dict(os.environ, REELD_LOG="debug", REELD_DATA_DIR=str(data), S3_ENDPOINT="",
             MP4_DOWNLOAD="on", S3_BUCKET_PREVIEWS="previews")
    r = subprocess.run([reeld_bin(), "transcode", inputs["clip"], "--upload", "--asset", "pics",
                        "--segment", "2"], env=e, capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, r.stderr[-3000:]
    started, stored = {}, {}
    for i, line in enumerate(r.stderr.splitlines()):
        if line.startswith("{"):
            ev = json.loads(line)
            if ev["event"] in ("upload_put", "upload_stored"):
                name = ev.get("name") or ev["key"].split("/hls/", 1)[1]
                (started if ev["event"] == "upload_put" else stored)[name] = i
    for name in ("storyboard.vtt", "sprite_0.jpg", "download.mp4"):
        assert stored[name] < started["master.m3u8"], name
    for name in ("poster.jpg", "poster.webp") if has_libwebp() else ("poster.jpg",):
        assert started[name] > stored["master.m3u8"], name
    root = data / "blobs" / "previews" / "pics" / "hls"
    assert boxes(str(root / "download.mp4"))[:2] == ["ftyp", "moov"]
    meta = data / "blobs.meta" / "previews" / "pics" / "hls"
    assert "text/vtt" in (meta / "storyboard.vtt").read_text()
    assert "video/mp4" in (meta / "download.mp4").read_text()


# ---- through `reeld serve`: the API's links and the edge ----

def http(url, headers=None, method="GET", data=None):
    import urllib.error
    import urllib.request
    req = urllib.request.Request(url, headers=headers or {}, method=method, data=data)
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    except urllib.error.HTTPError as e:
        return e.code, {k.lower(): v for k, v in e.headers.items()}, e.read()


def test_served_pictures_and_download(reeld_factory, inputs, tmp_path):
    import sys
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "tools"))
    import demo
    named = tmp_path / 'Été "2026"; x.mov.mp4'
    with open(inputs["clip"], "rb") as src, open(named, "wb") as dst:
        dst.write(src.read())
    r = reeld_factory(env={"MP4_DOWNLOAD": "on", "EDGE_SIGNING_KEY": "pictures-edge-key-0123456789abcdef"})
    c = demo.Client(f"http://{r.addr}")
    asset = c.upload(str(named))
    before = c.asset(asset)
    assert before["outputs"] == []
    c.promote(asset)
    c.wait_ready(asset, timeout=300)
    got = c.asset(asset)
    want = {"master.m3u8", "poster.jpg", "storyboard.vtt", "download.mp4"}
    if has_libwebp():
        want.add("poster.webp")
    assert set(got["outputs"]) == want, got
    pb = c.playback(asset)
    base = pb["url"].rsplit("/", 1)[0]
    for key, name in (("poster_url", "poster.jpg"), ("storyboard_vtt_url", "storyboard.vtt"),
                      ("mp4_url", "download.mp4")):
        assert pb[key] == f"{base}/{name}", (key, pb[key])
    assert (pb["poster_webp_url"] is not None) == has_libwebp()

    st, h, body = http(pb["poster_url"])
    assert st == 200 and h["content-type"] == "image/jpeg" and body[:2] == b"\xff\xd8"
    st, h, body = http(pb["storyboard_vtt_url"])
    assert st == 200 and h["content-type"] == "text/vtt"
    cues = parse_vtt(body.decode())
    assert abs(cues[-1][1] - SECS) < 0.2
    for sprite in sorted({cue[2] for cue in cues}):
        st, h, data = http(f"{base}/{sprite}")
        assert st == 200 and h["content-type"] == "image/jpeg", sprite
    if has_libwebp():
        st, h, _ = http(pb["poster_webp_url"])
        assert st == 200 and h["content-type"] == "image/webp"

    # The MP4 plays from the edge: its type, ranges, no attachment unless asked.
    st, h, whole = http(pb["mp4_url"])
    assert st == 200 and h["content-type"] == "video/mp4" and "content-disposition" not in h
    assert boxes_of(whole)[:2] == ["ftyp", "moov"]
    st, h, part = http(pb["mp4_url"], {"Range": "bytes=100-199"})
    assert st == 206 and part == whole[100:200]
    assert h["content-range"] == f"bytes 100-199/{len(whole)}"
    info = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of",
                           "csv=p=0", pb["mp4_url"]], capture_output=True, text=True, timeout=60)
    assert abs(float(info.stdout) - SECS) < 0.3, info

    # ?download=1 with the name the API signed: the uploaded name, made safe, as .mp4.
    dl = pb["mp4_download_url"]
    assert dl.startswith(pb["mp4_url"] + "?download=1&name=")
    st, h, body = http(dl)
    assert st == 200 and body == whole
    assert h["content-disposition"] == (
        "attachment; filename=\"_t_ _2026__ x.mov.mp4\"; "
        "filename*=UTF-8''%C3%89t%C3%A9%20%222026%22%3B%20x.mov.mp4"), h["content-disposition"]
    # A name nobody signed is never shown: the asset id stands in.
    forged = re.sub(r"name=[^&]+", "name=ZXZpbC5leGU", dl)
    st, h, _ = http(forged)
    assert st == 200
    assert h["content-disposition"] == (f"attachment; filename=\"{asset}.mp4\"; "
                                        f"filename*=UTF-8''{asset}.mp4")
    st, h, _ = http(pb["mp4_url"] + "?download=1")
    assert h["content-disposition"].startswith(f"attachment; filename=\"{asset}.mp4\"")
    # The path's token still decides access, whatever the query says.
    tampered = dl.replace(f"/{asset}/", f"/{asset}x/")
    assert http(tampered)[0] == 403


def boxes_of(data):
    out, off = [], 0
    while off + 8 <= len(data):
        size = int.from_bytes(data[off:off + 4], "big")
        out.append(data[off + 4:off + 8].decode("latin-1"))
        if size < 8:
            break
        off += size
    return out


def test_promote_body_asks_for_the_download_and_the_poster_time(reeld_factory, inputs):
    """Without MP4_DOWNLOAD, {"mp4": true} gives this asset its download; poster_time picks
    the poster's picture. Another asset promoted without a body gets neither."""
    import sys
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "tools"))
    import demo
    r = reeld_factory()
    c = demo.Client(f"http://{r.addr}")
    plain, asked = c.upload(inputs["clip"]), c.upload(inputs["clip"])
    for bad in ({"mp4": "yes"}, {"poster_time": -1}, {"poster_time": "8"}, [1]):
        st, _, body = http(f"http://{r.addr}/api/assets/{asked}/promote",
                           {"Content-Type": "application/json"}, method="POST",
                           data=json.dumps(bad).encode())
        assert st == 400, (bad, st, body)
    c.promote(plain)
    c.call("POST", f"/api/assets/{asked}/promote", {"mp4": True, "poster_time": 8.5},
           expect=(202,))
    for a in (plain, asked):
        c.wait_ready(a, timeout=300)
    assert "download.mp4" not in c.asset(plain)["outputs"]
    assert c.playback(plain)["mp4_url"] is None
    assert "download.mp4" in c.asset(asked)["outputs"]
    pb = c.playback(asked)
    st, h, mp4 = http(pb["mp4_url"])
    assert st == 200 and h["content-type"] == "video/mp4" and boxes_of(mp4)[:2] == ["ftyp", "moov"]
    posters = {}
    for a in (plain, asked):
        st, _, jpg = http(c.playback(a)["poster_url"])
        assert st == 200
        path = os.path.join(r.data_dir, f"poster-{a}.jpg")
        open(path, "wb").write(jpg)
        posters[a] = gray(path)
    at_8, at_1 = gray(inputs["clip"], 8.5), gray(inputs["clip"], 1.0)
    assert distance(posters[asked], at_8) < distance(posters[asked], at_1)
    assert distance(posters[plain], at_1) < distance(posters[plain], at_8)
