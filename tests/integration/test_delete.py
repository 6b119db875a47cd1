"""DELETE /api/assets/{id} against the real binary: in embedded mode a ready asset's playback
links stop at once (the edge's cache of it is dropped), its id answers 404 everywhere, its
files are gone, a second DELETE answers 204 again, another org gets 404, and the webhook gets a
signed asset.deleted; on a PostgreSQL + Redis + S3 fleet the other edge node refuses the
links within about two seconds (it learns deletions from the store); on S3 with Object Lock
the master stays and the reply says until when; a queued job is cancelled."""
import http.client
import json
import os
import re
import time
import urllib.parse

from conftest import Reeld
from test_api import call, moto, put_url, s3_env  # noqa: F401 (moto: the S3 server, a fixture)
from test_webhooks import (ACME, BETA, FAST, Receiver, clip, fleet_env, set_hook, upload_clip,
                           verify)


def get(port, path):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", path)
    resp = conn.getresponse()
    body = resp.read()
    conn.close()
    return resp.status, body


def wait_ready(r, aid, who=ACME, timeout=120):
    deadline = time.time() + timeout
    while time.time() < deadline:
        st, _, a = call(r, "GET", f"/api/assets/{aid}", headers=who)
        assert st == 200, a
        if a["state"] in ("ready", "failed"):
            assert a["state"] == "ready", a
            return a
        time.sleep(0.3)
    raise AssertionError(f"{aid} not ready in {timeout} s")


def links(r, aid, who=ACME):
    """The master playlist's path and one segment's path (edge links, signed)."""
    st, _, pb = call(r, "GET", f"/api/assets/{aid}/playback", headers=who)
    assert st == 200, pb
    master = urllib.parse.urlsplit(pb["url"]).path
    st, body = get(r.port, master)
    assert st == 200 and body.startswith(b"#EXTM3U"), (st, body)
    variant = next(l for l in body.decode().splitlines() if l and not l.startswith("#"))
    base = master.rsplit("/", 1)[0]
    st, body = get(r.port, f"{base}/{variant}")
    assert st == 200, (st, body)
    seg = next(l for l in body.decode().splitlines() if l and not l.startswith("#"))
    return master, f"{base}/{variant.rsplit('/', 1)[0]}/{seg}" if "/" in variant else f"{base}/{seg}"


def cached_files(r):
    root = os.path.join(r.data_dir, "cache")
    return [f for d in os.listdir(root) if re.fullmatch(r"[0-9a-f]{2}", d)
            for f in os.listdir(os.path.join(root, d))]


def wait_cached(r, want_some, timeout=15):
    """The cache's files once they are there (or gone): a file is renamed into place just after
    its response ends, and unlinked on the loop's ring just after a deletion is heard of."""
    deadline = time.time() + timeout
    while bool(cached_files(r)) != want_some and time.time() < deadline:
        time.sleep(0.1)
    return cached_files(r)


def wait_status(port, path, want, timeout):
    deadline = time.time() + timeout
    while True:
        st, _ = get(port, path)
        if st == want or time.time() > deadline:
            return st
        time.sleep(0.1)


def test_embedded_delete_stops_links_removes_files_and_tells_the_webhook(reeld_factory, tmp_path):
    data = clip(tmp_path, seconds=2)
    rx = Receiver()
    try:
        r = reeld_factory(env=FAST)
        st, _, hook = set_hook(r, rx.url, ["asset.deleted"])
        assert st == 201, hook
        aid = upload_clip(r, data)
        assert call(r, "POST", f"/api/assets/{aid}/promote", headers=ACME)[0] == 202
        wait_ready(r, aid)
        master, seg = links(r, aid)
        assert get(r.port, seg)[0] == 200  # now cached
        assert wait_cached(r, True), "the segment should be in the edge cache"

        assert call(r, "DELETE", f"/api/assets/{aid}", headers=BETA)[0] == 404  # not beta's
        st, _, body = call(r, "DELETE", f"/api/assets/{aid}", headers=ACME)
        assert st == 204, body
        assert wait_status(r.port, seg, 404, 15) == 404
        assert get(r.port, master)[0] == 404
        assert wait_cached(r, False) == []  # the edge dropped its copy
        for path in ("", "/playback", "/events"):
            assert call(r, "GET", f"/api/assets/{aid}{path}", headers=ACME)[0] == 404, path
        assert call(r, "POST", f"/api/assets/{aid}/promote", headers=ACME)[0] == 404
        st, _, page = call(r, "GET", "/api/assets", headers=ACME)
        assert st == 200 and aid not in [a["asset_id"] for a in page["assets"]], page
        left = [os.path.join(d, f) for d, _, fs in os.walk(os.path.join(r.data_dir, "blobs"))
                for f in fs if aid in os.path.join(d, f)]
        assert left == [], left

        # Idempotent: once more, the same answer; an id that never was: 404.
        assert call(r, "DELETE", f"/api/assets/{aid}", headers=ACME)[0] == 204
        assert call(r, "DELETE", "/api/assets/a0123456789abcdef01234567", headers=ACME)[0] == 404
        st, h, _ = call(r, "OPTIONS", f"/api/assets/{aid}")
        assert "DELETE" in h.get("access-control-allow-methods", "DELETE"), h

        headers, body, _ = rx.wait(1, timeout=30)[0]
        assert verify(hook["secret"], headers["reeld-signature"], body)
        e = json.loads(body)
        assert e["type"] == "asset.deleted" and e["data"]["asset_id"] == aid, e
        assert e["org"] == "acme" and e["id"].startswith("evt_") and e["created_at"], e
        time.sleep(0.5)
        assert len(rx.got) == 1, rx.got  # one event, however many DELETEs
        metrics = get(r.port, "/metrics")[1].decode()
        assert re.search(r"^reeld_assets_deleted_total 1$", metrics, re.M), metrics
    finally:
        rx.close()


def test_fleet_delete_reaches_the_other_edge(postgres, redis, moto, tmp_path):
    data = clip(tmp_path, seconds=2)
    env = fleet_env(postgres, redis, moto, "edge-key-for-delete-0123456789abcdef")
    one = Reeld(env=env, args=("--roles", "api,edge"))
    two = Reeld(env=env, args=("--roles", "api,edge"))
    worker = Reeld(env=env, args=("--roles", "worker"))
    try:
        aid = upload_clip(one, data)
        assert call(one, "POST", f"/api/assets/{aid}/promote", headers=ACME)[0] == 202
        wait_ready(one, aid)
        master, seg = links(one, aid)
        for node in (one, two):
            assert get(node.port, master)[0] == 200
            assert get(node.port, seg)[0] == 200
            assert get(node.port, seg)[0] == 200  # a hit
        st, _, body = call(one, "DELETE", f"/api/assets/{aid}", headers=ACME)
        assert st == 204, body
        # Every edge, the deleting node's own included, hears of it from the store (each asks
        # every second, on its own clock): no timing is asserted here, only that it happens; a
        # loaded machine may take a few seconds.
        assert wait_status(two.port, seg, 404, 15) == 404, two.logs()[-3000:]
        assert get(two.port, master)[0] == 404
        assert wait_status(one.port, seg, 404, 15) == 404, one.logs()[-3000:]
        assert call(two, "GET", f"/api/assets/{aid}", headers=ACME)[0] == 404
        assert call(two, "DELETE", f"/api/assets/{aid}", headers=ACME)[0] == 204
        listed = moto["s3"].list_objects_v2(Bucket="previews", Prefix=f"{aid}/")
        assert listed.get("KeyCount", 0) == 0, listed
        for bucket in ("staging", "masters"):
            listed = moto["s3"].list_objects_v2(Bucket=bucket, Prefix=aid)
            assert listed.get("KeyCount", 0) == 0, (bucket, listed)
        # A node that starts now learns the deletion from the store too.
        three = Reeld(env=env, args=("--roles", "edge"))
        try:
            assert wait_status(three.port, seg, 404, 15) == 404
        finally:
            assert three.stop() == 0
    finally:
        for node in (one, two, worker):
            assert node.stop() == 0, node.logs()[-3000:]


def test_s3_retained_master_stays_and_the_reply_says_until_when(reeld_factory, moto):
    try:
        moto["s3"].create_bucket(Bucket="previews")
    except moto["s3"].exceptions.BucketAlreadyOwnedByYou:
        pass
    env = s3_env(moto, S3_BUCKET_MASTERS="masters-locked", OBJECT_LOCK_DEFAULT_DAYS="1",
                 REELD_API_KEYS=FAST["REELD_API_KEYS"])
    r = Reeld(env=env, args=("--roles", "api,edge"))
    try:
        payload = os.urandom(5000)
        aid = upload_clip(r, payload)
        assert call(r, "POST", f"/api/assets/{aid}/promote", headers=ACME)[0] == 202
        # What a transcode would have published: more than one listing page of them.
        for i in range(45):
            moto["s3"].put_object(Bucket="previews", Key=f"{aid}/hls/720p/seg_{i:05d}.m4s",
                                  Body=b"x")
        moto["s3"].put_object(Bucket="previews", Key=f"{aid}x/kept", Body=b"x")  # not its prefix
        st, _, body = call(r, "DELETE", f"/api/assets/{aid}", headers=ACME)
        assert st == 202, body
        until = time.mktime(time.strptime(body["master_retained_until"],
                                           "%Y-%m-%dT%H:%M:%SZ")) - time.timezone
        assert abs(until - (time.time() + 86400)) < 120, body
        assert body["asset_id"] == aid and body["state"] == "deleted", body
        head = moto["s3"].head_object(Bucket="masters-locked", Key=aid)
        assert head["ContentLength"] == len(payload)
        listed = moto["s3"].list_objects_v2(Bucket="previews", Prefix=f"{aid}/")
        assert listed.get("KeyCount", 0) == 0, listed
        assert moto["s3"].list_objects_v2(Bucket="previews", Prefix=f"{aid}x/")["KeyCount"] == 1
        assert moto["s3"].list_objects_v2(Bucket="staging", Prefix=aid).get("KeyCount", 0) == 0
        st, _, again = call(r, "DELETE", f"/api/assets/{aid}", headers=ACME)
        assert st == 202 and again["master_retained_until"] == body["master_retained_until"]
        assert call(r, "GET", f"/api/assets/{aid}", headers=ACME)[0] == 404
    finally:
        assert r.stop() == 0, r.logs()[-3000:]


def test_delete_cancels_a_queued_job(reeld_factory):
    r = Reeld(args=("--roles", "api,edge"))  # no worker: the job stays queued
    try:
        data = os.urandom(2048)
        st, _, up = call(r, "POST", "/api/uploads",
                         {"filename": "q.mp4", "content_type": "video/mp4", "size": len(data)})
        assert st == 201 and put_url(up["upload"]["url"], data)[0] == 200
        st, _, job = call(r, "POST", f"/api/assets/{up['asset_id']}/promote")
        assert st == 202, job
        st, _, j = call(r, "GET", f"/api/jobs/{job['job_id']}")
        assert st == 200 and j["state"] == "queued", j
        assert call(r, "DELETE", f"/api/assets/{up['asset_id']}")[0] == 204
        st, _, j = call(r, "GET", f"/api/jobs/{job['job_id']}")
        assert st == 200 and j["state"] == "cancelled", j
        assert call(r, "GET", f"/api/assets/{up['asset_id']}")[0] == 404
    finally:
        assert r.stop() == 0, r.logs()[-3000:]


def test_s3_gone_mid_delete_is_202_and_the_sweep_or_a_later_delete_finishes_it(reeld_factory,
                                                                              moto):
    """The purge runs through the asynchronous blob store on the front: with S3 unreachable the
    assets are deleted all the same (the store is the truth: 404 at once), the answers are 202
    (their objects still to go) and the failure is logged. Once S3 is back, a second DELETE of
    one finishes it at once (past one listing page), and the other is finished by the sweep (the
    first loop's front, on its timer) when the store hands it out: 30 s after the failure, or
    sooner when a tick took it while the DELETE's own purge was still failing (its requests'
    retries then reach S3 once it is back)."""
    from servers import Forwarder
    try:
        moto["s3"].create_bucket(Bucket="previews")
    except moto["s3"].exceptions.BucketAlreadyOwnedByYou:
        pass
    gate = Forwarder(int(moto["endpoint"].rsplit(":", 1)[1]))
    env = s3_env(moto, S3_ENDPOINT=f"http://127.0.0.1:{gate.port}",
                 REELD_API_KEYS=FAST["REELD_API_KEYS"])
    r = reeld_factory(env=env, args=("--roles", "api,edge"))
    ids = []
    for _ in range(2):
        aid = upload_clip(r, os.urandom(5000))
        assert call(r, "POST", f"/api/assets/{aid}/promote", headers=ACME)[0] == 202
        for i in range(45):
            moto["s3"].put_object(Bucket="previews", Key=f"{aid}/hls/720p/seg_{i:05d}.m4s",
                                  Body=b"x")
        ids.append(aid)
    again, swept = ids

    def keys(aid):
        return moto["s3"].list_objects_v2(Bucket="previews", Prefix=f"{aid}/").get("KeyCount", 0)

    gate.cut()
    try:
        for aid in ids:
            st, _, body = call(r, "DELETE", f"/api/assets/{aid}", headers=ACME)
            assert st == 202 and body == {"asset_id": aid, "state": "deleted",
                                          "master_retained_until": None}, (st, body)
            assert call(r, "GET", f"/api/assets/{aid}", headers=ACME)[0] == 404
        assert "asset_purge_list_failed" in r.logs()
        # Read past the cut gate, while nothing of reeld's can reach S3: once it is mended, a
        # purge's retries or a sweep's tick may delete some at any moment.
        assert keys(again) == 45 and keys(swept) == 45
    finally:
        gate.mend()
    st, _, body = call(r, "DELETE", f"/api/assets/{again}", headers=ACME)
    assert st == 204, (st, body)
    assert keys(again) == 0
    for bucket in ("masters", "staging"):
        assert moto["s3"].list_objects_v2(Bucket=bucket, Prefix=again).get("KeyCount", 0) == 0
    deadline = time.time() + 60  # the failure's 30 s, the sweep's 5 s tick, a loaded machine
    purged = f'"event":"asset_purged","asset":"{swept}"'
    # The objects go first, the store's record of it (and its log line) a moment after.
    while (keys(swept) or purged not in r.logs()) and time.time() < deadline:
        time.sleep(0.5)
    assert keys(swept) == 0, r.logs()[-3000:]
    assert purged in r.logs()


def test_s3_keys_reeld_cannot_name_are_left_and_the_rest_goes(reeld_factory, moto):
    """A prefix can hold keys another tool made that reeld's names refuse (a folder marker
    "x/", "a//b"): their deletes cannot start, which used to end the prefix's deletion twice
    (the process aborted). They are left, logged; every other object goes, and the DELETE is
    204."""
    try:
        moto["s3"].create_bucket(Bucket="previews")
    except moto["s3"].exceptions.BucketAlreadyOwnedByYou:
        pass
    r = reeld_factory(env=s3_env(moto, REELD_API_KEYS=FAST["REELD_API_KEYS"]),
                      args=("--roles", "api,edge"))
    for only_refused in (True, False):
        aid = upload_clip(r, os.urandom(3000))
        odd = [f"{aid}/hls/", f"{aid}/hls//x.ts"]
        for k in odd + ([] if only_refused else [f"{aid}/hls/{i}.ts" for i in range(12)]):
            moto["s3"].put_object(Bucket="previews", Key=k, Body=b"x")
        st, _, body = call(r, "DELETE", f"/api/assets/{aid}", headers=ACME)
        assert st == 204, (st, body)
        left = [o["Key"] for o in moto["s3"].list_objects_v2(
            Bucket="previews", Prefix=f"{aid}/").get("Contents", [])]
        assert sorted(left) == sorted(odd), left
    assert r.logs().count('"event":"asset_purge_key_refused"') == 4, r.logs()[-3000:]
