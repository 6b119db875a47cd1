"""The product end to end, as a client meets it, in both modes:

- embedded: one `reeld serve` with every role on the embedded default (SQLite, local blobs,
  in-process queue, libx264);
- fleet: PostgreSQL + Redis + an S3 server (moto), two processes: `--roles api,edge` and
  `--roles worker`.

Each walks tools/demo.py's client through every step (presigned upload, promote, progress,
playback link, master + variant + segment through the edge) and plays the stream back through
the edge with ffprobe. The fault test kills the worker with SIGKILL mid-encode and checks that a
worker started afterwards finishes the job, while a viewer polling the master playlist never
gets one before every rendition is whole."""
import json
import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from servers import Forwarder
from conftest import Reeld
from test_api import moto  # noqa: F401 (the S3 server, a fixture)

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "tools"))
import demo  # noqa: E402

EDGE_KEY = "e2e-edge-signing-key-0123456789abcdef"


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    """6 s of 640x360 with sound: quick to encode under the sanitizers."""
    return demo.make_sample(str(tmp_path_factory.mktemp("e2e") / "short.mp4"), secs=6,
                            size="640x360")


@pytest.fixture(scope="module")
def long_sample(tmp_path_factory):
    """20 s of 720p: long enough to be killed in the middle of."""
    return demo.make_sample(str(tmp_path_factory.mktemp("e2e") / "long.mp4"), secs=20)


def ffprobe(url):
    out = subprocess.run(["ffprobe", "-v", "error", "-show_entries",
                          "stream=codec_type,codec_name,width,height:format=duration",
                          "-of", "json", url], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def check_playback(result, secs):
    """The stream a player gets through the edge: H.264 video and AAC audio of the whole
    length, in every rendition the master names."""
    info = ffprobe(result["url"])
    kinds = {(s["codec_type"], s["codec_name"]) for s in info["streams"]}
    assert ("video", "h264") in kinds and ("audio", "aac") in kinds, info
    assert abs(float(info["format"]["duration"]) - secs) < 1.0, info["format"]
    heights = sorted({s["height"] for s in info["streams"] if s["codec_type"] == "video"})
    assert len(heights) == len(result["variants"]) >= 1, (heights, result["variants"])


def metric(r, name):
    _, _, body = demo._request(f"http://{r.addr}/metrics")
    for line in body.decode().splitlines():
        if not line.startswith("#") and line.rsplit(" ", 1)[0] == name:
            return float(line.rsplit(" ", 1)[1])
    return None


class Viewer(threading.Thread):
    """Polls the master playlist through the edge the whole time; every time it is there,
    fetches every variant playlist it names and every segment they name. Records any moment a
    master led to something missing or unfinished."""

    def __init__(self, url):
        super().__init__(daemon=True)
        self.url, self.stop_at, self.violations = url, None, []
        self.misses = self.hits = 0
        self.done = threading.Event()

    def run(self):
        base = self.url.rsplit("/", 1)[0]
        while not self.done.is_set():
            st, _, body = demo._request(self.url)
            if st == 404:
                self.misses += 1
            elif st != 200:
                self.violations.append(f"master answered {st}")
            else:
                self.hits += 1
                for v in demo.uris(body):
                    vst, _, vbody = demo._request(f"{base}/{v}")
                    if vst != 200 or b"#EXT-X-ENDLIST" not in vbody:
                        self.violations.append(f"{v}: {vst}, finished={b'#EXT-X-ENDLIST' in vbody}")
                        continue
                    vdir = f"{base}/{v}".rsplit("/", 1)[0]
                    for seg in demo.uris(vbody):
                        sst, _, _ = demo._request(f"{vdir}/{seg}")
                        if sst != 200:
                            self.violations.append(f"{v} {seg}: {sst}")
            time.sleep(0.05)


# ---- embedded ----

def test_embedded_end_to_end(reeld_factory, sample, tmp_path):
    r = reeld_factory()
    result = demo.run(f"http://{r.addr}", sample, out=None, workdir=str(tmp_path))
    # Every step answered as documented.
    assert result["final"]["state"] == "ready" and result["final"]["progress"] == 100
    assert result["progress"][-1] == ("ready", 100)
    assert all(state == "processing" for state, _ in result["progress"][:-1])
    assert result["url"].startswith(f"http://{r.addr}/hls/") and result["segment_bytes"] > 1000
    check_playback(result, 6)
    # The master went to masters, the ladder to previews, under the asset's id.
    blobs = os.path.join(r.data_dir, "blobs")
    assert os.path.getsize(os.path.join(blobs, "masters", result["asset"])) == os.path.getsize(sample)
    assert os.path.exists(os.path.join(blobs, "previews", result["asset"], "hls", "master.m3u8"))
    assert metric(r, 'reeld_job_outcomes_total{outcome="succeeded"}') == 1
    assert metric(r, 'reeld_upload_jobs_total{outcome="ok"}') == 1
    logs = r.logs()
    assert '"event":"transcode_published"' in logs and '"roles":"api,edge,worker"' in logs


def test_roles_are_checked(tmp_path):
    out = subprocess.run([os.environ.get("REELD_BIN", "zig-out/bin/reeld"), "serve", "--roles",
                          "api,gpu"], capture_output=True, text=True, timeout=30,
                         env=dict(os.environ, REELD_DATA_DIR=str(tmp_path)))
    assert out.returncode == 2 and "unknown role 'gpu'" in out.stderr, out.stderr


# ---- fleet ----

@pytest.fixture(scope="module")
def s3(moto):
    """moto without IAM checks (presigned query-string requests need that; see test_api.py)."""
    return {"endpoint": moto["endpoint"], "client": moto["s3"], "id": moto["id"],
            "secret": moto["secret"]}


class Fleet:
    """One api+edge process and worker processes sharing PostgreSQL, Redis and S3."""

    def __init__(self, postgres, redis, s3, tag, **extra):
        redis.cli("FLUSHALL")
        self.s3 = s3["client"]
        self.buckets = {k: f"{tag}-{k}" for k in ("staging", "masters", "previews")}
        for b in self.buckets.values():
            self.s3.create_bucket(Bucket=b)
        self.env = {"POSTGRES_URL": postgres.new_database(), "REDIS_URL": redis.url,
                    "S3_ENDPOINT": s3["endpoint"], "S3_REGION": "us-east-1",
                    "S3_ACCESS_KEY_ID": s3["id"], "S3_SECRET_ACCESS_KEY": s3["secret"],
                    "S3_BUCKET_STAGING": self.buckets["staging"],
                    "S3_BUCKET_MASTERS": self.buckets["masters"],
                    "S3_BUCKET_PREVIEWS": self.buckets["previews"],
                    "EDGE_SIGNING_KEY": EDGE_KEY, "REELD_CORES": "2"}
        self.env.update(extra)
        self.procs = []
        self.front = self.start("api,edge")

    def start(self, roles, name=None):
        env = dict(self.env)
        if name:
            env["REELD_NODE_NAME"] = name
        r = Reeld(env=env, args=("--roles", roles))
        self.procs.append(r)
        return r

    def previews(self, asset):
        got = self.s3.list_objects_v2(Bucket=self.buckets["previews"], Prefix=f"{asset}/hls/")
        return {o["Key"][len(asset) + 5:] for o in got.get("Contents", [])}

    def close(self):
        codes = []
        for r in self.procs:
            if r.proc.poll() is None or r.proc.returncode != -signal.SIGKILL:
                codes.append((r.stop(), r))
            else:
                r.log.close()
        for rc, r in codes:
            assert rc == 0, f"reeld exited with {rc}:\n{r.logs()[-3000:]}"


def test_fleet_end_to_end(postgres, redis, s3, sample, tmp_path):
    f = Fleet(postgres, redis, s3, "e2e1")
    try:
        worker = f.start("worker")
        result = demo.run(f"http://{f.front.addr}", sample, out=None, workdir=str(tmp_path))
        assert result["final"]["state"] == "ready"
        check_playback(result, 6)
        # The roles did what they say: the worker encoded, the front did not.
        assert '"event":"transcode_published"' in worker.logs()
        assert '"event":"transcode_started"' not in f.front.logs()
        assert '"event":"worker_started"' not in f.front.logs()
        # The ladder is in the previews bucket, master and poster included, and the master is
        # in masters under the asset's id.
        objs = f.previews(result["asset"])
        assert "master.m3u8" in objs and any(o.endswith(".ts") for o in objs), objs
        head = f.s3.head_object(Bucket=f.buckets["masters"], Key=result["asset"])
        assert head["ContentLength"] == os.path.getsize(sample)
        assert metric(worker, 'reeld_upload_jobs_total{outcome="ok"}') == 1
        # The worker acknowledged the job's stream entry (its dispatcher reads the stream).
        deadline = time.time() + 10
        while metric(worker, "reeld_queue_stream_pending") != 0 and time.time() < deadline:
            time.sleep(0.2)
        assert metric(worker, "reeld_queue_stream_pending") == 0
    finally:
        f.close()


def test_two_api_nodes_and_a_worker_share_every_asset(postgres, redis, s3, sample):
    """The load-balancer walk: create on node 1, PUT to S3, promote on node 2, poll both until
    ready, take the playback link from node 2 and fetch its playlists and a segment through node
    1's edge. Any node answers any asset."""
    import urllib.parse
    from test_api import call, put_url
    f = Fleet(postgres, redis, s3, "e2e3")
    try:
        one = f.front
        two = f.start("api,edge")
        f.start("worker")
        with open(sample, "rb") as fh:
            data = fh.read()
        st, _, up = call(one, "POST", "/api/uploads",
                         {"filename": "walk.mp4", "content_type": "video/mp4", "size": len(data)})
        assert st == 201, up
        aid = up["asset_id"]
        assert put_url(up["upload"]["url"], data)[0] == 200
        st, _, job = call(two, "POST", f"/api/assets/{aid}/promote")
        assert st == 202, job
        deadline, states = time.time() + 120, {}
        while time.time() < deadline:
            states = {n: call(r, "GET", f"/api/assets/{aid}")[2]["state"]
                      for n, r in (("one", one), ("two", two))}
            if states == {"one": "ready", "two": "ready"}:
                break
            assert "failed" not in states.values(), states
            time.sleep(0.5)
        assert states == {"one": "ready", "two": "ready"}, states
        st, _, pb = call(two, "GET", f"/api/assets/{aid}/playback")
        assert st == 200 and pb["ready"] is True, pb
        u = urllib.parse.urlsplit(pb["url"])
        base = f"http://{one.addr}{u.path.rsplit('/', 1)[0]}/"  # node 1's edge, node 2's link
        st, _, master = call(one, "GET", u.path)
        assert st == 200 and b"#EXTM3U" in master, master
        variant = next(l for l in master.decode().splitlines() if l and not l.startswith("#"))
        st, _, playlist = call(one, "GET", urllib.parse.urlsplit(base + variant).path)
        assert st == 200, playlist
        seg = next(l for l in playlist.decode().splitlines() if l and not l.startswith("#"))
        seg_path = urllib.parse.urlsplit(base + variant.rsplit("/", 1)[0] + "/" + seg).path
        st, hdrs, body = call(one, "GET", seg_path)
        assert st == 200 and len(body) > 1000, (st, seg_path)
    finally:
        f.close()


def test_fleet_worker_killed_mid_encode(postgres, redis, s3, long_sample):
    # A short lease, so the dead worker's job is taken over within seconds.
    f = Fleet(postgres, redis, s3, "e2e2", REELD_JOB_LEASE_MS="3000")
    viewer = None
    try:
        first = f.start("worker", name="worker-1")
        c = demo.Client(f"http://{f.front.addr}")
        asset = c.upload(long_sample)
        c.promote(asset)
        viewer = Viewer(c.playback(asset)["url"])
        viewer.start()
        deadline = time.time() + 120
        while True:
            a = c.asset(asset)
            if a["state"] == "processing" and a["progress"] >= 5:
                break
            assert a["state"] == "processing" and time.time() < deadline, a
            time.sleep(0.1)
        first.proc.send_signal(signal.SIGKILL)
        first.proc.wait(timeout=10)
        assert a["progress"] < 100
        # Some of the ladder may have landed; never the master playlist.
        assert "master.m3u8" not in f.previews(asset)
        second = f.start("worker", name="worker-2")
        final = c.wait_ready(asset, timeout=300)
        assert final["attempts"] == 2, final
        assert '"event":"transcode_published"' in second.logs()
        result = {"url": c.playback(asset)["url"],
                  "variants": demo.uris(demo.fetch(c.playback(asset)["url"]))}
        check_playback(result, 20)
        time.sleep(0.5)  # a few more rounds of the viewer on the finished ladder
    finally:
        if viewer is not None:
            viewer.done.set()
            viewer.join(timeout=30)
        f.close()
    assert viewer.violations == [], viewer.violations[:5]
    assert viewer.misses > 0 and viewer.hits > 0, (viewer.misses, viewer.hits)


# ---- storage and database failing mid-job ----

def wait_processing(c, asset, at_least=5, timeout=120):
    deadline = time.time() + timeout
    while True:
        a = c.asset(asset)
        if a["state"] == "processing" and a.get("progress", 0) >= at_least:
            return a
        assert a["state"] == "processing" and time.time() < deadline, a
        time.sleep(0.1)


def test_s3_gone_mid_job_is_retried_and_nothing_is_lost(reeld_factory, s3, long_sample):
    for b in ("e2e3-staging", "e2e3-masters", "e2e3-previews"):
        s3["client"].create_bucket(Bucket=b)
    proxy = Forwarder(int(s3["endpoint"].rsplit(":", 1)[1]))
    try:
        # The retry comes 5–10 s after the failure: after S3 is back.
        r = reeld_factory(env={"S3_ENDPOINT": f"http://127.0.0.1:{proxy.port}",
                               "S3_REGION": "us-east-1", "S3_ACCESS_KEY_ID": s3["id"],
                               "S3_SECRET_ACCESS_KEY": s3["secret"],
                               "S3_BUCKET_STAGING": "e2e3-staging",
                               "S3_BUCKET_MASTERS": "e2e3-masters",
                               "S3_BUCKET_PREVIEWS": "e2e3-previews",
                               "REELD_JOB_RETRY_BASE_MS": "10000"})
        c = demo.Client(f"http://{r.addr}")
        asset = c.upload(long_sample)
        c.promote(asset)
        wait_processing(c, asset)
        proxy.cut()
        # The attempt fails on S3 (its reads or its uploads), with S3 named in the error.
        deadline = time.time() + 60
        a = c.asset(asset)
        while not a.get("error") and time.time() < deadline:
            time.sleep(0.1)
            a = c.asset(asset)
        assert a["state"] == "processing" and a["attempts"] == 1, a
        time.sleep(1)
        proxy.mend()
        listed = s3["client"].list_objects_v2(Bucket="e2e3-previews", Prefix=f"{asset}/hls/")
        assert f"{asset}/hls/master.m3u8" not in {o["Key"] for o in listed.get("Contents", [])}
        final = c.wait_ready(asset, timeout=300)
        assert final["attempts"] == 2, final
        pb = c.playback(asset)
        check_playback({"url": pb["url"], "variants": demo.uris(demo.fetch(pb["url"]))}, 20)
        assert '"event":"transcode_job_failed"' in r.logs() and '"retryable":1' in r.logs()
    finally:
        proxy.close()


def test_database_restart_mid_job_loses_nothing(postgres, redis, s3, long_sample):
    f = Fleet(postgres, redis, s3, "e2e4")
    try:
        f.start("worker")
        c = demo.Client(f"http://{f.front.addr}")
        asset = c.upload(long_sample)
        c.promote(asset)
        wait_processing(c, asset)
        postgres.restart(down_sec=3)
        final = c.wait_ready(asset, timeout=300)
        assert final["attempts"] == 1, final  # the lease held: the encode went on
        pb = c.playback(asset)
        check_playback({"url": pb["url"], "variants": demo.uris(demo.fetch(pb["url"]))}, 20)
    finally:
        f.close()


def test_graceful_stop_mid_job_hands_it_back(reeld_factory, long_sample):
    r = reeld_factory()
    c = demo.Client(f"http://{r.addr}")
    asset = c.upload(long_sample)
    job = c.promote(asset)["job_id"]
    wait_processing(c, asset)
    assert r.stop() == 0  # SIGTERM mid-encode: a clean exit
    logs = r.logs()
    # The worker left the job to the dispatcher, which released it (the SQLite store applies
    # the release before it stops; its answer may come after the loops have, unlogged).
    assert '"event":"transcode_job_left"' in logs and '"transcode_job_failed"' not in logs
    assert not os.path.exists(os.path.join(r.data_dir, "blobs", "previews", asset, "hls",
                                           "master.m3u8"))
    # The same data directory, started again: the job was handed back, its attempt uncounted.
    r2 = reeld_factory(data_dir=r.data_dir)
    # The API's upload sessions live in memory (README), so follow the job, not the asset.
    deadline = time.time() + 300
    while True:
        j = json.loads(demo._request(f"http://{r2.addr}/api/jobs/{job}")[2])
        if j["state"] == "succeeded":
            break
        assert j["state"] in ("queued", "running") and time.time() < deadline, j
        time.sleep(0.2)
    assert j["attempts"] == 1 and not j.get("error"), j  # released, not failed: uncounted
    assert os.path.exists(os.path.join(r2.data_dir, "blobs", "previews", asset, "hls",
                                       "master.m3u8"))
