"""Exports: POST /api/assets/{id}/exports cuts a range of a ready asset's master, burns a caption
track into the picture and stores one MP4, as a durable job on the transcode worker's encoders.
Checked with ffprobe and ffmpeg: the duration (one frame), the first frame against the source's
frame at `start` (PSNR), the caption's region changed and the rest not; the signed download
(an attachment through the edge); idempotent requests; cancel; the refusals; and, in a fleet on
PostgreSQL, Redis and S3, a worker killed mid-export whose job another worker finishes.
Clips: POST /api/assets/{id}/clips makes a new asset from a range, with its own master and
ladder, which plays through the edge and outlives its parent's deletion."""
import json
import math
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request

from test_api import call, moto, put_url, s3_env  # noqa: F401 (moto: the S3 server, a fixture)
from test_e2e import Fleet, s3  # noqa: F401 (s3: its buckets' client, a fixture)
from test_webhooks import Receiver, set_hook, verify

KEYS = "acme:key-acme-1-0123456789,beta:key-beta-1-0123456789"
ACME = {"Authorization": "Bearer key-acme-1-0123456789"}
BETA = {"Authorization": "Bearer key-beta-1-0123456789"}
W, H, FPS, SECS = 320, 240, 25, 60
VTT = (b"WEBVTT\n\n00:00:14.000 --> 00:00:16.000\nHELLO WORLD CAPTION\n\n"
       b"00:00:30.000 --> 00:00:31.000\nlater\n")


def make_source(path, secs=SECS):
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i",
                    f"testsrc2=size={W}x{H}:rate={FPS}:duration={secs}", "-f", "lavfi", "-i",
                    f"sine=frequency=440:duration={secs}", "-c:v", "libx264", "-preset",
                    "ultrafast", "-g", "50", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest",
                    path], check=True)
    return open(path, "rb").read()


def upload_ready(r, data, headers=ACME, timeout=240):
    st, _, up = call(r, "POST", "/api/uploads",
                     {"filename": "match.mp4", "content_type": "video/mp4", "size": len(data)},
                     headers)
    assert st == 201 and put_url(up["upload"]["url"], data)[0] == 200
    aid = up["asset_id"]
    assert call(r, "POST", f"/api/assets/{aid}/promote", headers=headers)[0] == 202
    deadline = time.time() + timeout
    while (a := call(r, "GET", f"/api/assets/{aid}", headers=headers)[2])["state"] != "ready":
        assert a["state"] == "processing" and time.time() < deadline, a
        time.sleep(0.3)
    return aid


def wait_export(r, eid, states=("ready",), timeout=240, headers=ACME):
    deadline = time.time() + timeout
    while True:
        st, _, e = call(r, "GET", f"/api/exports/{eid}", headers=headers)
        assert st == 200, e
        if e["state"] in states:
            return e
        assert e["state"] in ("queued", "processing") and time.time() < deadline, e
        time.sleep(0.2)


def fetch(url):
    try:
        with urllib.request.urlopen(url, timeout=30) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def probe(path):
    out = subprocess.run(["ffprobe", "-v", "error", "-count_frames", "-show_streams",
                          "-show_format", "-of", "json", path],
                         check=True, capture_output=True).stdout
    return json.loads(out)


def gray(path, seek=None, frame=0):
    """One frame as 8-bit luma: `frame` of the file, or the frame at `seek` seconds."""
    args = ["ffmpeg", "-v", "error"]
    if seek is not None:
        args += ["-ss", str(seek)]
    args += ["-i", path, "-vf", (f"select=eq(n\\,{frame})," if seek is None else "") +
             f"scale={W}:{H}",
             "-frames:v", "1", "-f", "rawvideo", "-pix_fmt", "gray", "-"]
    out = subprocess.run(args, check=True, capture_output=True).stdout
    assert len(out) == W * H, len(out)
    return out


def psnr(a, b, rows=None):
    r0, r1 = rows or (0, H)
    n, se = 0, 0
    for y in range(r0, r1):
        row_a, row_b = a[y * W:(y + 1) * W], b[y * W:(y + 1) * W]
        se += sum((x - z) * (x - z) for x, z in zip(row_a, row_b))
        n += W
    return 99.0 if se == 0 else 10 * math.log10(255 * 255 * n / se)


def test_export_cut_burn_download(reeld_factory, tmp_path):
    src = str(tmp_path / "match.mp4")
    data = make_source(src)
    env = {"REELD_API_KEYS": KEYS, "STORYBOARD_INTERVAL_SEC": "-1", "REELD_CPU_ENCODERS": "1"}
    r = reeld_factory(env=env)
    aid = upload_ready(r, data)
    st, _, body = call(r, "PUT", f"/api/assets/{aid}/captions/en", VTT,
                       dict(ACME, **{"Content-Type": "text/vtt"}))
    assert st == 201, body

    st, _, burned = call(r, "POST", f"/api/assets/{aid}/exports",
                         {"start": 10, "end": 20, "captions": "en", "format": "mp4"}, ACME)
    assert st == 202, burned
    assert burned["export_id"].startswith("e") and burned["job_id"], burned
    assert burned["state"] in ("queued", "processing") and burned["download_url"] is None
    # The same request is the same export: a retried POST starts nothing new.
    st, _, again = call(r, "POST", f"/api/assets/{aid}/exports",
                        {"start": 10.0, "end": 20, "captions": "en"}, ACME)
    assert st == 202 and (again["export_id"], again["job_id"]) == \
        (burned["export_id"], burned["job_id"]), again
    st, _, plain = call(r, "POST", f"/api/assets/{aid}/exports", {"start": 10, "end": 20}, ACME)
    assert st == 202 and plain["export_id"] != burned["export_id"], plain
    assert plain["captions"] is None

    burned = wait_export(r, burned["export_id"])
    plain = wait_export(r, plain["export_id"])
    assert burned["progress"] == 100 and burned["error"] is None
    files = {}
    for name, e in (("burned", burned), ("plain", plain)):
        st, hdrs, mp4 = fetch(e["download_url"])
        assert st == 200, (st, mp4[:200])
        assert hdrs.get("Content-Type") == "video/mp4", hdrs
        assert hdrs.get("Content-Disposition", "").startswith("attachment"), hdrs
        path = str(tmp_path / f"{name}.mp4")
        open(path, "wb").write(mp4)
        files[name] = path
        # The moov first: a player starts before the whole file is there.
        assert mp4.find(b"moov") < mp4.find(b"mdat"), name
        info = probe(path)
        v = [s for s in info["streams"] if s["codec_type"] == "video"][0]
        a = [s for s in info["streams"] if s["codec_type"] == "audio"]
        assert v["codec_name"] == "h264" and (v["width"], v["height"]) == (W, H), v
        assert a and a[0]["codec_name"] == "aac", info["streams"]
        assert abs(float(v["duration"]) - 10.0) <= 1.0 / FPS + 1e-6, v["duration"]
        assert abs(int(v["nb_read_frames"]) - 10 * FPS) <= 1, v["nb_read_frames"]
        assert abs(float(a[0]["duration"]) - 10.0) < 0.1, a[0]["duration"]

    # Frame-accurate: the first frame is the source's frame at 10 s (not the keyframe's, nor
    # the next one: testsrc2 moves every frame, so a frame off is far below the floor).
    first, at10 = gray(files["plain"]), gray(src, seek=10)
    assert psnr(first, at10) > 30, psnr(first, at10)
    assert psnr(first, gray(src, seek=10 + 1.0 / FPS)) < psnr(first, at10) - 3

    # 5 s in (the source's 15 s) the cue is on: the bottom of the picture changed, the top not.
    fr = 5 * FPS
    with_cue, without = gray(files["burned"], frame=fr), gray(files["plain"], frame=fr)
    assert psnr(with_cue, without, (0, H // 2)) > 35, psnr(with_cue, without, (0, H // 2))
    bottom = psnr(with_cue, without, (H * 4 // 5, H))
    assert bottom < 25, bottom
    # 1 s in (11 s) no cue: the two match everywhere.
    assert psnr(gray(files["burned"], frame=FPS), gray(files["plain"], frame=FPS)) > 35

    # The export's own state and its org's walls.
    st, _, got = call(r, "GET", f"/api/exports/{burned['export_id']}", headers=BETA)
    assert st == 404, got
    st, _, got = call(r, "POST", f"/api/assets/{aid}/exports", {"start": 1, "end": 2}, BETA)
    assert st == 404, got
    assert '"event":"export_done"' in r.logs()

    # The store is the truth: after a restart the same exports answer the same, and asking
    # again still finds the first one.
    assert r.stop() == 0
    r2 = reeld_factory(env=env, data_dir=r.data_dir)
    st, _, got = call(r2, "GET", f"/api/exports/{burned['export_id']}", headers=ACME)
    assert st == 200 and got["state"] == "ready" and got["captions"] == "en", got
    st, _, again = call(r2, "POST", f"/api/assets/{aid}/exports",
                        {"start": 10, "end": 20, "captions": "en"}, ACME)
    assert st == 202 and again["export_id"] == burned["export_id"], again
    assert fetch(got["download_url"])[0] == 200


def test_export_ready_webhook(reeld_factory, tmp_path):
    """An org whose endpoint takes export.ready gets one signed delivery when its export is
    done, naming the export, its range and a download link that fetches the MP4; the asset's
    own events, not subscribed, are not sent."""
    src = str(tmp_path / "h.mp4")
    data = make_source(src, secs=8)
    env = {"REELD_API_KEYS": KEYS, "STORYBOARD_INTERVAL_SEC": "-1", "REELD_CPU_ENCODERS": "1",
           "WEBHOOK_ALLOW_PRIVATE": "1", "REELD_JOB_POLL_MS": "50"}
    rx = Receiver()
    try:
        r = reeld_factory(env=env)
        st, _, hook = set_hook(r, rx.url, ["export.ready"], who=ACME)
        assert st == 201 and hook["events"] == ["export.ready"], hook
        st, _, every = set_hook(r, rx.url, who=BETA)  # no events: every type, exports' too
        assert st == 201 and "export.ready" in every["events"], every
        assert "export.failed" in every["events"], every
        aid = upload_ready(r, data)
        st, _, e = call(r, "POST", f"/api/assets/{aid}/exports", {"start": 2, "end": 4.5}, ACME)
        assert st == 202, e
        done = wait_export(r, e["export_id"])

        got = rx.wait(1, timeout=60)
        time.sleep(1.0)  # nothing else follows: the asset's events are not subscribed
        assert len(rx.got) == 1, rx.got
        headers, body, status = got[0]
        assert status == 200
        assert verify(hook["secret"], headers["reeld-signature"], body), headers
        assert headers["reeld-event-type"] == "export.ready"
        ev = json.loads(body)
        assert ev["type"] == "export.ready" and ev["org"] == "acme", ev
        assert headers["reeld-event-id"] == ev["id"] and ev["id"].startswith("evt_"), ev
        d = ev["data"]
        assert d["asset_id"] == aid and d["export_id"] == done["export_id"], d
        assert (d["start"], d["end"], d["captions"]) == (2.0, 4.5, None), d
        assert "error" not in d, d
        st, hdrs, mp4 = fetch(d["download_url"])
        assert st == 200 and hdrs.get("Content-Type") == "video/mp4", (st, hdrs, mp4[:200])
        assert hdrs.get("Content-Disposition", "").startswith("attachment"), hdrs
        assert mp4 == fetch(done["download_url"])[2]

        time.sleep(0.5)  # the attempt is recorded just before the job ends
        st, _, page = call(r, "GET", "/api/webhook/deliveries", headers=ACME)
        assert st == 200, page
        assert [(x["type"], x["state"], x["event_id"]) for x in page["deliveries"]] == [
            ("export.ready", "delivered", ev["id"])], page
    finally:
        rx.close()


def test_export_refusals_and_cancel(reeld_factory, tmp_path):
    src = str(tmp_path / "s.mp4")
    data = make_source(src, secs=30)
    env = {"REELD_API_KEYS": KEYS, "STORYBOARD_INTERVAL_SEC": "-1", "REELD_CPU_ENCODERS": "1"}
    r = reeld_factory(env=env)
    st, _, up = call(r, "POST", "/api/uploads",
                     {"filename": "w.mp4", "content_type": "video/mp4", "size": 10}, ACME)
    st, _, body = call(r, "POST", f"/api/assets/{up['asset_id']}/exports",
                       {"start": 1, "end": 2}, ACME)
    assert st == 409 and body["error"]["code"] == "not_ready", body
    aid = upload_ready(r, data)
    bad = [({"start": 5, "end": 5}, 400, "invalid_range"),
           ({"start": 6, "end": 5}, 400, "invalid_range"),
           ({"start": -1, "end": 5}, 400, "invalid_range"),
           ({"start": "1", "end": 5}, 400, "invalid_range"),
           ({"end": 5}, 400, "invalid_range"),
           ({"start": 31, "end": 40}, 400, "invalid_range"),
           ({"start": 1, "end": 5, "height": 145}, 400, "invalid_field"),
           ({"start": 1, "end": 5, "height": 100}, 400, "invalid_field"),
           ({"start": 1, "end": 5, "format": "webm"}, 400, "invalid_field"),
           ({"start": 1, "end": 5, "captions": "en"}, 400, "unknown_captions"),
           ({"start": 1, "end": 5, "captions": "../x"}, 400, "bad_lang")]
    for req, code, err in bad:
        st, _, body = call(r, "POST", f"/api/assets/{aid}/exports", req, ACME)
        assert st == code and body["error"]["code"] == err, (req, st, body)
    st, _, body = call(r, "POST", f"/api/assets/{aid}/exports", b"{not json",
                       dict(ACME, **{"Content-Type": "application/json"}))
    assert st == 400 and body["error"]["code"] == "invalid_json", body
    st, _, body = call(r, "GET", "/api/exports/e000000000000000000000000", headers=ACME)
    assert st == 404, body

    # An end past the video's is its end, and the same export as asking for exactly that.
    st, _, tail = call(r, "POST", f"/api/assets/{aid}/exports", {"start": 28, "end": 99}, ACME)
    assert st == 202 and tail["end"] == 30.0, tail
    tail = wait_export(r, tail["export_id"])

    # Cancel: a long export (the whole video, scaled) is stopped mid-way.
    st, _, long = call(r, "POST", f"/api/assets/{aid}/exports",
                       {"start": 0, "end": 30, "height": 160}, ACME)
    assert st == 202, long
    deadline = time.time() + 60
    while (e := call(r, "GET", f"/api/exports/{long['export_id']}", headers=ACME)[2])[
            "state"] != "processing":
        assert e["state"] == "queued" and time.time() < deadline, e
        time.sleep(0.05)
    t0 = time.time()
    st, _, e = call(r, "POST", f"/api/exports/{long['export_id']}/cancel", headers=ACME)
    assert st == 200 and e["state"] == "cancelled", e
    job = long["job_id"]
    stopped = f'"event":"transcode_job_failed","job":{job}'
    # No timing is asserted (a loaded machine decides); the encoder stops between packets, and
    # the export is stopped mid-way: it never finishes.
    while stopped not in r.logs():
        assert time.time() - t0 < 30, "the encoder did not stop"
        time.sleep(0.05)
    assert '"reason":"cancelled"' in [ln for ln in r.logs().splitlines() if stopped in ln][0]
    print(f"cancel to the encoder's stop: {time.time() - t0:.3f} s")
    assert f'"event":"export_done","job":{job}' not in r.logs()
    st, _, e = call(r, "POST", f"/api/exports/{long['export_id']}/cancel", headers=ACME)
    assert st == 409 and e["error"]["code"] == "already_finished", e
    # Its file went nowhere, and the encoder takes the next export.
    assert not [f for f in os.listdir(os.path.join(r.data_dir, "tmp")) if "export" in f]
    st, _, nxt = call(r, "POST", f"/api/assets/{aid}/exports", {"start": 2, "end": 3}, ACME)
    assert wait_export(r, nxt["export_id"])["state"] == "ready"


def test_s3_gone_while_an_export_or_a_clip_reads_the_ladder_is_502(reeld_factory, moto, tmp_path):
    """An export and a clip read the source's playlists (the video's length) through the
    asynchronous blob store on the front before they are taken: S3 unreachable there is 502
    storage_failed and nothing is written (an export taken with its range unchecked would make
    another export of the same cut); once S3 is back the same requests are taken, the end
    brought back to the video's."""
    from servers import Forwarder
    moto["s3"].create_bucket(Bucket="previews")
    gate = Forwarder(int(moto["endpoint"].rsplit(":", 1)[1]))
    env = s3_env(moto, S3_ENDPOINT=f"http://127.0.0.1:{gate.port}", REELD_API_KEYS=KEYS,
                 STORYBOARD_INTERVAL_SEC="-1", REELD_CPU_ENCODERS="1")
    r = reeld_factory(env=env)
    aid = upload_ready(r, make_source(str(tmp_path / "s.mp4"), secs=6))
    gate.cut()
    try:
        for kind in ("exports", "clips"):
            st, _, err = call(r, "POST", f"/api/assets/{aid}/{kind}", {"start": 1, "end": 60},
                              ACME)
            assert st == 502 and err["error"]["code"] == "storage_failed", (kind, st, err)
        assert "api_playlist_read_failed" in r.logs()
    finally:
        gate.mend()
    listing = call(r, "GET", "/api/assets", headers=ACME)[2]["assets"]
    assert [a["asset_id"] for a in listing] == [aid], listing  # no clip was written
    st, _, e = call(r, "POST", f"/api/assets/{aid}/exports", {"start": 1, "end": 60}, ACME)
    assert st == 202 and e["end"] == 6.0, (st, e)
    st, _, c = call(r, "POST", f"/api/assets/{aid}/clips", {"start": 1, "end": 60}, ACME)
    assert st == 201 and c["source"]["end"] == 6.0, (st, c)


def test_fleet_worker_killed_mid_export(postgres, redis, s3, tmp_path):
    src = str(tmp_path / "f.mp4")
    data = make_source(src, secs=40)
    f = Fleet(postgres, redis, s3, "exp1", REELD_JOB_LEASE_MS="3000", REELD_API_KEYS=KEYS,
              STORYBOARD_INTERVAL_SEC="-1")
    try:
        first = f.start("worker", name="worker-1")
        aid = upload_ready(f.front, data)
        st, _, e = call(f.front, "POST", f"/api/assets/{aid}/exports", {"start": 0, "end": 40},
                        ACME)
        assert st == 202, e
        # Killed as soon as the export has started: waiting for its progress (written at most
        # once a second) let a fast machine finish the whole export first, and then the second
        # worker had nothing left to do.
        deadline = time.time() + 120
        while '"event":"export_started"' not in first.logs():
            got = call(f.front, "GET", f"/api/exports/{e['export_id']}", headers=ACME)[2]
            assert got["state"] in ("queued", "processing") and time.time() < deadline, got
            time.sleep(0.02)
        first.proc.send_signal(signal.SIGKILL)
        first.proc.wait()
        got = call(f.front, "GET", f"/api/exports/{e['export_id']}", headers=ACME)[2]
        assert got["state"] in ("queued", "processing"), got  # killed mid-way, not after
        second = f.start("worker", name="worker-2")
        got = wait_export(f.front, e["export_id"], timeout=180)
        assert '"event":"export_done"' in second.logs()
        st, _, mp4 = fetch(got["download_url"])
        assert st == 200
        path = str(tmp_path / "out.mp4")
        open(path, "wb").write(mp4)
        v = [s for s in probe(path)["streams"] if s["codec_type"] == "video"][0]
        assert abs(float(v["duration"]) - 40.0) <= 1.0 / FPS + 1e-6, v["duration"]
        st, _, job = call(f.front, "GET", f"/api/exports/{e['export_id']}", headers=ACME)
        assert job["state"] == "ready"
        # A clip on S3: its master goes through staging into masters by a copy with retention,
        # as a promoted upload's does, and nothing is left in staging.
        st, _, clip = call(f.front, "POST", f"/api/assets/{aid}/clips", {"start": 5, "end": 9},
                           ACME)
        assert st == 201, clip
        deadline = time.time() + 180
        while (c := call(f.front, "GET", f"/api/assets/{clip['asset_id']}",
                         headers=ACME)[2])["state"] != "ready":
            assert c["state"] == "processing" and time.time() < deadline, c
            time.sleep(0.3)
        head = f.s3.head_object(Bucket=f.buckets["masters"], Key=clip["asset_id"])
        assert head["ContentLength"] > 1000 and head["ContentType"] == "video/mp4", head
        staged = f.s3.list_objects_v2(Bucket=f.buckets["staging"], Prefix=clip["asset_id"])
        assert staged.get("KeyCount", 0) == 0, staged
    finally:
        f.close()


def test_clip_is_an_asset_of_its_own(reeld_factory, tmp_path):
    src = str(tmp_path / "match.mp4")
    data = make_source(src)
    env = {"REELD_API_KEYS": KEYS, "STORYBOARD_INTERVAL_SEC": "-1", "HLS_SEGMENT_SEC": "2"}
    r = reeld_factory(env=env)
    parent = upload_ready(r, data)
    st, _, body = call(r, "POST", f"/api/assets/{parent}/clips", {"start": 20, "end": 20}, ACME)
    assert st == 400 and body["error"]["code"] == "invalid_range", body
    st, _, body = call(r, "POST", f"/api/assets/{parent}/clips", {"start": 20, "end": 35,
                                                                  "title": 7}, ACME)
    assert st == 400 and body["error"]["code"] == "invalid_field", body
    st, _, body = call(r, "POST", f"/api/assets/{parent}/clips", {"start": 20, "end": 35}, BETA)
    assert st == 404, body
    st, _, clip = call(r, "POST", f"/api/assets/{parent}/clips",
                       {"start": 20, "end": 35, "title": "Goal, 2nd half"}, ACME)
    assert st == 201, clip
    cid = clip["asset_id"]
    assert cid != parent and cid.startswith("a") and clip["state"] == "processing", clip
    assert clip["source"] == {"asset_id": parent, "start": 20.0, "end": 35.0}, clip
    assert clip["filename"] == "Goal, 2nd half.mp4" and clip["job_id"], clip
    deadline = time.time() + 240
    while (a := call(r, "GET", f"/api/assets/{cid}", headers=ACME)[2])["state"] != "ready":
        assert a["state"] == "processing" and time.time() < deadline, a
        time.sleep(0.3)
    assert a["source"]["asset_id"] == parent and "poster.jpg" in a["outputs"], a
    assert '"event":"clip_master_cut"' in r.logs()

    def variant(aid):
        st, _, pb = call(r, "GET", f"/api/assets/{aid}/playback", headers=ACME)
        assert st == 200 and pb["ready"], pb
        st, _, master = fetch(pb["url"])
        assert st == 200, master
        uri = [ln for ln in master.decode().splitlines() if ln and not ln.startswith("#")][0]
        return pb["url"].rsplit("/", 1)[0] + "/" + uri

    # The clip's ladder: 15 s to the frame, starting at the parent's frame at 20 s.
    url = variant(cid)
    info = probe(url)
    v = [x for x in info["streams"] if x["codec_type"] == "video"][0]
    assert abs(int(v["nb_read_frames"]) - 15 * FPS) <= 1, v["nb_read_frames"]
    first = gray(url)
    assert psnr(first, gray(src, seek=20)) > 30, psnr(first, gray(src, seek=20))
    assert psnr(first, gray(src, seek=20 + 1.0 / FPS)) < psnr(first, gray(src, seek=20)) - 3

    # Deleting the parent leaves the clip: its master and ladder are its own.
    assert call(r, "DELETE", f"/api/assets/{parent}", headers=ACME)[0] == 204
    assert call(r, "GET", f"/api/assets/{parent}", headers=ACME)[0] == 404
    st, _, a = call(r, "GET", f"/api/assets/{cid}", headers=ACME)
    assert st == 200 and a["state"] == "ready" and a["source"]["asset_id"] == parent, a
    time.sleep(2.5)  # the edges learn of deletions every second: the parent's is known now
    url = variant(cid)
    st, _, playlist = fetch(url)
    assert st == 200, playlist
    seg = [ln for ln in playlist.decode().splitlines() if ln and not ln.startswith("#")][0]
    st, _, body = fetch(url.rsplit("/", 1)[0] + "/" + seg)
    assert st == 200 and len(body) > 1000
