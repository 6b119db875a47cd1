#!/usr/bin/env python3
"""A client of reeld's API doing what a video platform's front end does, step by step:

    upload request → PUT to the presigned URL (or its parts) → promote → progress until ready
    → playback URL → master playlist and a segment through the signed edge link

and printing the playback URL, the time each step took, and how to watch it. Standard library
only. `tools/quickstart` runs it against the embedded default; point it at any reeld with
`--api URL` (and `--key` when REELD_API_KEYS or JWT_SECRET is set).

    tools/demo.py --api http://127.0.0.1:8080 [VIDEO]

Without VIDEO a 10-second 720p sample with sound is made with ffmpeg first. The integration
tests import this module, so what the quickstart shows is what they check."""
import argparse
import http.client
import json
import os
import subprocess
import sys
import time
import urllib.parse


class Failed(Exception):
    """A step went wrong; the message says which and what reeld answered."""


def make_sample(path, secs=10, size="1280x720"):
    """A test pattern with a tone, H.264 + AAC in MP4, made with the ffmpeg CLI."""
    subprocess.run(["ffmpeg", "-loglevel", "error", "-y",
                    "-f", "lavfi", "-i", f"testsrc2=size={size}:rate=30",
                    "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
                    "-t", str(secs), "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p",
                    "-c:a", "aac", "-shortest", path], check=True)
    return path


def _request(url, method="GET", body=None, headers=None, timeout=30):
    """One HTTP request to an absolute URL sent exactly as given: (status, headers, bytes)."""
    u = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(u.hostname, u.port or 80, timeout=timeout)
    try:
        target = u.path + ("?" + u.query if u.query else "")
        conn.putrequest(method, target, skip_accept_encoding=True)
        for k, v in (headers or {}).items():
            conn.putheader(k, v)
        if body is not None:
            conn.putheader("Content-Length", str(len(body)))
        conn.endheaders()
        if body:
            conn.send(body)
        resp = conn.getresponse()
        data = resp.read()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, data
    finally:
        conn.close()


class Client:
    def __init__(self, api, key=None):
        self.api = api.rstrip("/")
        self.key = key

    def call(self, method, path, doc=None, expect=(200,)):
        headers = {}
        if self.key:
            headers["Authorization"] = f"Bearer {self.key}"
        body = None
        if doc is not None:
            body = json.dumps(doc).encode()
            headers["Content-Type"] = "application/json"
        for _ in range(20):
            status, h, data = _request(self.api + path, method, body, headers)
            if status not in (429, 503) or "retry-after" not in h:
                break
            time.sleep(min(float(h["retry-after"]), 5.0))  # rate-limited or busy: as told
        try:
            parsed = json.loads(data) if data else None
        except ValueError:
            parsed = data
        if status not in expect:
            raise Failed(f"{method} {path} answered {status}: {parsed}")
        return parsed

    def upload(self, path, content_type="video/mp4"):
        """POST /api/uploads, then the bytes to the presigned URL(s) exactly as a browser
        would: the API never sees them. Returns the asset id."""
        size = os.path.getsize(path)
        up = self.call("POST", "/api/uploads", {"filename": os.path.basename(path),
                                                "content_type": content_type, "size": size},
                       expect=(201,))
        target = up["upload"]
        headers = dict(target.get("headers", {}))
        with open(path, "rb") as f:
            if "parts" not in target:
                status, _, data = _request(target["url"], "PUT", f.read(), headers, timeout=300)
                if status != 200:
                    raise Failed(f"PUT to the upload URL answered {status}: {data[:300]!r}")
            else:
                done = []
                for part in target["parts"]:
                    chunk = f.read(target["part_size"])
                    status, h, data = _request(part["url"], "PUT", chunk, {}, timeout=300)
                    if status != 200:
                        raise Failed(f"PUT of part {part['n']} answered {status}: {data[:300]!r}")
                    done.append({"n": part["n"], "etag": h.get("etag", "")})
                self.call("POST", target["complete_url"], {"parts": done})
        return up["asset_id"]

    def promote(self, asset):
        return self.call("POST", f"/api/assets/{asset}/promote", expect=(202,))

    def asset(self, asset):
        return self.call("GET", f"/api/assets/{asset}")

    def wait_ready(self, asset, timeout=600, on_progress=None):
        """Polls the asset until it is ready; raises Failed when its job failed."""
        deadline = time.time() + timeout
        while True:
            a = self.asset(asset)
            if on_progress:
                on_progress(a)
            if a["state"] == "ready":
                return a
            if a["state"] == "failed":
                raise Failed(f"the transcode failed: {a.get('error', '?')}")
            if time.time() > deadline:
                raise Failed(f"not ready after {timeout} s: {a}")
            time.sleep(0.25)

    def playback(self, asset):
        return self.call("GET", f"/api/assets/{asset}/playback")


def fetch(url):
    """GET through the edge; raises Failed unless 200. Returns the bytes."""
    status, _, data = _request(url, timeout=60)
    if status != 200:
        raise Failed(f"GET {url} answered {status}: {data[:200]!r}")
    return data


def uris(playlist):
    return [ln for ln in playlist.decode().splitlines() if ln and not ln.startswith("#")]


def run(api, video=None, key=None, out=sys.stdout, workdir="."):
    """The whole walk; returns a dict of what it saw (urls, timings, the asset's last state)."""
    say = (lambda *a: print(*a, file=out, flush=True)) if out else (lambda *a: None)
    c = Client(api, key)
    t = {}
    t0 = time.time()
    if video is None:
        video = make_sample(os.path.join(workdir, "reeld-sample.mp4"))
        t["sample_s"] = time.time() - t0
        say(f"made a sample: {video} ({os.path.getsize(video) / 1e6:.1f} MB, 10 s of 720p)")
    t1 = time.time()
    asset = c.upload(video)
    t["upload_s"] = time.time() - t1
    say(f"uploaded {os.path.getsize(video) / 1e6:.1f} MB through the presigned URL "
        f"as asset {asset} in {t['upload_s']:.2f} s")
    t2 = time.time()
    job = c.promote(asset)
    t["promote_s"] = time.time() - t2
    say(f"promoted: job {job['job_id']}")
    seen = []

    def progress(a):
        p = a.get("progress", 0)
        if not seen or seen[-1] != (a["state"], p):
            seen.append((a["state"], p))
            say(f"  {a['state']:<10} {p:5.1f}%")
    t3 = time.time()
    final = c.wait_ready(asset, on_progress=progress)
    t["transcode_s"] = time.time() - t3
    pb = c.playback(asset)
    url = pb["url"]
    t4 = time.time()
    master = fetch(url)
    variants = uris(master)
    if not variants:
        raise Failed(f"the master playlist names no variant:\n{master.decode()}")
    base = url.rsplit("/", 1)[0]
    variant_url = f"{base}/{variants[0]}"
    segs = uris(fetch(variant_url))
    if not segs:
        raise Failed(f"{variants[0]} names no segment")
    seg_url = variant_url.rsplit("/", 1)[0] + "/" + segs[0]
    seg = fetch(seg_url)
    t["edge_s"] = time.time() - t4
    t["total_s"] = time.time() - t0
    say(f"ready: {len(variants)} renditions; fetched the master, {variants[0]} and its first "
        f"segment ({len(seg) / 1e3:.0f} kB) through the signed edge link in {t['edge_s']:.3f} s")
    say("")
    say(f"playback URL (valid until {pb['expires_at']}):")
    say(f"  {url}")
    say("timings: " + ", ".join(f"{k[:-2]} {v:.2f} s" for k, v in t.items()))
    say(f"watch it:  ffplay '{url}'")
    return {"asset": asset, "job": job["job_id"], "url": url, "variants": variants,
            "segment_url": seg_url, "segment_bytes": len(seg), "timings": t,
            "progress": seen, "final": final}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("video", nargs="?", help="a video file (default: a generated sample)")
    ap.add_argument("--api", default=os.environ.get("REELD_API", "http://127.0.0.1:8080"))
    ap.add_argument("--key", default=os.environ.get("REELD_API_KEY"),
                    help="bearer API key or JWT (when the API asks for one)")
    ap.add_argument("--workdir", default=".", help="where the sample is made")
    a = ap.parse_args()
    try:
        run(a.api, a.video, a.key, workdir=a.workdir)
    except (Failed, OSError, subprocess.CalledProcessError) as e:
        print(f"demo: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
