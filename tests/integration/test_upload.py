"""The s3-uploader (actors/s3_uploader.c) driven by `reeld transcode INPUT --upload --asset ID`:
a short generated input is encoded by the encoder actor, which feeds the uploader, against a
moto server that checks every SigV4 signature; against a tiny S3 stand-in that refuses one
segment with 403; and into the fs backend. The order of PUTs is read from the uploader's debug
log lines ("upload_put" when a PUT starts, "upload_stored" when it has landed)."""
import http.server
import json
import os
import re
import shutil
import socketserver
import subprocess
import threading

import pytest

from conftest import reeld_bin
from test_s3_client import REGION, moto  # noqa: F401 (the fixture)

IMMUTABLE = "public, max-age=31536000, immutable"
TYPES = {".ts": "video/mp2t", ".m4s": "video/mp4", ".mp4": "video/mp4",
         ".m3u8": "application/vnd.apple.mpegurl", ".jpg": "image/jpeg", ".webp": "image/webp",
         ".vtt": "text/vtt"}

pytestmark = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs ffmpeg")


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    """4 s of 320x180 test pattern with a tone."""
    path = tmp_path_factory.mktemp("clip") / "in.mp4"
    subprocess.run(["ffmpeg", "-loglevel", "error", "-f", "lavfi", "-i",
                    "testsrc2=size=320x180:rate=25", "-f", "lavfi", "-i", "sine=frequency=440",
                    "-t", "4", "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac",
                    "-shortest", str(path)], check=True)
    return str(path)


def upload(clip, asset, env, *args, timeout=120):
    e = dict(os.environ, REELD_LOG="debug", S3_BUCKET_PREVIEWS="previews", S3_REGION=REGION)
    e.update(env)
    return subprocess.run([reeld_bin(), "transcode", clip, "--upload", "--asset", asset,
                           "--preset", "480p", "--segment", "1", *args], env=e,
                          capture_output=True, text=True, timeout=timeout)


def events(stderr):
    out = []
    for line in stderr.splitlines():
        if line.startswith("{"):
            ev = json.loads(line)
            if ev["event"] in ("upload_put", "upload_stored"):
                name = ev.get("name") or ev["key"].split("/hls/", 1)[1]
                out.append((ev["event"], name))
    return out


def names_in(playlist, base=""):
    """URIs a playlist names (segments, EXT-X-MAP, variants), relative to the ladder root."""
    found = []
    for line in playlist.splitlines():
        if line.startswith("#EXT-X-MAP:"):
            found.append(base + line.split('URI="', 1)[1].split('"', 1)[0])
        elif line and not line.startswith("#"):
            found.append(base + line)
    return found


POSTERS = ("poster.jpg", "poster.webp")


def check_order(evs, ladder):
    """Every variant started after its segments landed, the master after everything else but
    the posters landed (the storyboard's VTT and sprites included), the posters after the
    master landed."""
    stored = {n: i for i, (e, n) in enumerate(evs) if e == "upload_stored"}
    started = {n: i for i, (e, n) in enumerate(evs) if e == "upload_put"}
    assert set(stored) == set(ladder), (sorted(stored), sorted(ladder))
    assert "storyboard.vtt" in ladder and "sprite_0.jpg" in ladder, sorted(ladder)
    for name, body in ladder.items():
        if name.endswith(".m3u8") and name != "master.m3u8":
            base = name.rsplit("/", 1)[0] + "/"
            for seg in names_in(body, base):
                assert stored[seg] < started[name], (seg, name)
    for name in ladder:
        if name != "master.m3u8" and name not in POSTERS:
            assert stored[name] < started["master.m3u8"], name
    posters = [started[p] for p in POSTERS if p in started]
    assert stored["master.m3u8"] < min(posters)
    assert max(posters) == max(started.values())


@pytest.mark.parametrize("fmt", ["ts", "fmp4"])
def test_ladder_lands_in_s3_master_last(moto, clip, fmt):  # noqa: F811
    s3 = moto["s3"]
    try:
        s3.create_bucket(Bucket="previews")
    except s3.exceptions.BucketAlreadyOwnedByYou:
        pass
    asset = f"clip-{fmt}"
    r = upload(clip, asset, {"S3_ENDPOINT": moto["endpoint"], "S3_ACCESS_KEY_ID": moto["id"],
                             "S3_SECRET_ACCESS_KEY": moto["secret"],
                             "UPLOAD_CONCURRENCY": "3"}, "--format", fmt)
    assert r.returncode == 0, r.stderr[-3000:]
    assert f"previews/{asset}/hls/master.m3u8" in r.stdout

    # ListObjects would not pass moto's signature check with a prefix: walk the playlists
    ladder = {}

    def fetch(name):
        got = s3.get_object(Bucket="previews", Key=f"{asset}/hls/{name}")
        ext = os.path.splitext(name)[1]
        assert got["ContentType"] == TYPES[ext], name
        assert got["CacheControl"] == ("no-cache" if ext == ".m3u8" else IMMUTABLE), name
        body = got["Body"].read()
        ladder[name] = body.decode() if ext == ".m3u8" else body

    fetch("master.m3u8")
    fetch("poster.jpg")
    fetch("storyboard.vtt")
    for sprite in sorted(set(re.findall(r"sprite_\d+\.jpg", ladder["storyboard.vtt"].decode()))):
        fetch(sprite)
    try:
        fetch("poster.webp")  # where this FFmpeg has libwebp
    except s3.exceptions.NoSuchKey:
        pass
    for v in names_in(ladder["master.m3u8"]):
        fetch(v)
        for seg in names_in(ladder[v], v.rsplit("/", 1)[0] + "/"):
            fetch(seg)
    if fmt == "fmp4":
        assert any(n.endswith("/init.mp4") for n in ladder)
    check_order(events(r.stderr), ladder)


def test_missing_bucket_fails_with_the_s3_message(moto, clip):  # noqa: F811
    r = upload(clip, "nobucket", {"S3_ENDPOINT": moto["endpoint"], "S3_ACCESS_KEY_ID": moto["id"],
                                  "S3_SECRET_ACCESS_KEY": moto["secret"],
                                  "S3_BUCKET_PREVIEWS": "no-such-previews"})
    assert r.returncode == 1
    line = r.stderr.strip().splitlines()[-1]
    assert line.startswith("reeld: upload failed: ") and "NoSuchBucket" in line, line
    assert ("upload_put", "master.m3u8") not in events(r.stderr)


class RefusingS3:
    """A tiny S3 stand-in: stores PUTs in memory, refuses with 403 AccessDenied any key that
    contains `refuse`, answers DELETE; records every request in order."""

    def __init__(self, refuse):
        self.objects, self.log = {}, []
        peer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def answer(self, status, body=b""):
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                if status == 200:
                    self.send_header("ETag", '"e"')
                self.end_headers()
                self.wfile.write(body)

            def do_PUT(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                peer.log.append(("PUT", self.path))
                if refuse in self.path:
                    self.answer(403, b"<?xml version='1.0'?><Error><Code>AccessDenied</Code>"
                                     b"<Message>Access Denied</Message></Error>")
                    return
                peer.objects[self.path] = body
                self.answer(200)

            def do_DELETE(self):
                peer.log.append(("DELETE", self.path))
                peer.objects.pop(self.path, None)
                self.answer(204)

        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def test_a_refused_segment_fails_the_job_and_leaves_no_master(clip):
    peer = RefusingS3("seg_00002")
    try:
        r = upload(clip, "refused", {"S3_ENDPOINT": f"http://127.0.0.1:{peer.port}",
                                     "S3_ACCESS_KEY_ID": "k", "S3_SECRET_ACCESS_KEY": "s"})
    finally:
        peer.close()
    assert r.returncode == 1, r.stderr[-2000:]
    line = r.stderr.strip().splitlines()[-1]
    assert line.startswith("reeld: upload failed: "), line
    assert "403" in line and "AccessDenied" in line and "seg_00002" in line, line
    puts = [p for m, p in peer.log if m == "PUT"]
    assert not any(p.endswith("/master.m3u8") for p in puts), puts
    # Sprites may go before the master like segments; the posters never go before it.
    assert not any(p.endswith(".m3u8") or "/poster." in p for p in puts), puts
    assert peer.objects == {}, sorted(peer.objects)  # what landed was deleted again
    assert any(m == "DELETE" for m, _ in peer.log)


def test_fs_backend_same_order(clip, tmp_path):
    data = tmp_path / "data"
    r = upload(clip, "local1", {"REELD_DATA_DIR": str(data), "S3_ENDPOINT": ""})
    assert r.returncode == 0, r.stderr[-3000:]
    root = data / "blobs" / "previews" / "local1" / "hls"
    ladder = {}
    for dirpath, _, files in os.walk(root):
        for f in files:
            name = os.path.relpath(os.path.join(dirpath, f), root)
            body = open(os.path.join(dirpath, f), "rb").read()
            ladder[name] = body.decode() if name.endswith(".m3u8") else body
    assert "master.m3u8" in ladder and "poster.jpg" in ladder
    meta = data / "blobs.meta" / "previews" / "local1" / "hls" / "master.m3u8"
    assert "application/vnd.apple.mpegurl" in meta.read_text()
    check_order(events(r.stderr), ladder)


def test_a_refused_segment_stops_the_encoding(tmp_path):
    """The uploader cancels the job at its encoder once the upload cannot succeed."""
    long_clip = tmp_path / "long.mp4"
    subprocess.run(["ffmpeg", "-loglevel", "error", "-f", "lavfi", "-i",
                    "testsrc2=size=320x180:rate=25", "-t", "60", "-c:v", "libx264", "-preset",
                    "ultrafast", str(long_clip)], check=True)
    peer = RefusingS3("seg_00001")
    try:
        r = upload(str(long_clip), "stopped", {"S3_ENDPOINT": f"http://127.0.0.1:{peer.port}",
                                               "S3_ACCESS_KEY_ID": "k",
                                               "S3_SECRET_ACCESS_KEY": "s"})
    finally:
        peer.close()
    assert r.returncode == 1
    assert "403 AccessDenied" in r.stderr.strip().splitlines()[-1]
    ends = [json.loads(line) for line in r.stderr.splitlines()
            if line.startswith("{") and '"transcode_' in line]
    assert any(e["event"] == "transcode_failed" and e["reason"] == "cancelled" for e in ends), ends
    assert peer.objects == {}
