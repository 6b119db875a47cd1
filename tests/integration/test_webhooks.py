"""Webhooks against the real binary and a real receiver (Python's http.server on 127.0.0.1, so
WEBHOOK_ALLOW_PRIVATE=1): an embedded-mode upload of random bytes is promoted (asset.uploaded)
and fails to transcode (asset.failed, with the error), each POST signed as the README says and
checked here the same way; 500 then 200 is retried, 400 is not (dead); private URLs are refused
without the setting; a rotated secret signs next to the new one; another org sees nothing; the
deliveries listing shows every attempt; and an event written before kill -9 is delivered after
the restart."""
import hashlib
import hmac
import http.server
import json
import os
import threading
import time

from conftest import Reeld
from test_api import call, moto, put_url  # noqa: F401 (moto: the S3 server, a fixture)

KEYS = "acme:acme-key-0123456789abcdef,beta:beta-key-0123456789abcdef"
ACME = {"Authorization": "Bearer acme-key-0123456789abcdef"}
BETA = {"Authorization": "Bearer beta-key-0123456789abcdef"}
FAST = {"REELD_API_KEYS": KEYS, "WEBHOOK_ALLOW_PRIVATE": "1", "WEBHOOK_RETRY_BASE_MS": "200",
        "WEBHOOK_RETRY_MAX_MS": "400", "REELD_JOB_POLL_MS": "50", "REELD_CPU_ENCODERS": "1"}


def verify(secret, header, body, tolerance=300):
    """The README's receiver check: any v1 under `secret` over "<t>.<body>", t recent."""
    items = [p.split("=", 1) for p in header.split(",")]
    t = int(next(v for k, v in items if k == "t"))
    if abs(time.time() - t) > tolerance:
        return False
    expected = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return any(hmac.compare_digest(expected, v) for k, v in items if k == "v1")


class Receiver:
    """A webhook endpoint: answers each POST with the next of `answers` (then 200) and keeps
    (headers, raw body, status) of every request."""

    def __init__(self, answers=(), port=0, hold=None):
        """`hold`: an Event the first request waits on before it is answered."""
        self.answers = list(answers)
        self.hold = hold
        self.got = []
        self.cond = threading.Condition()
        outer = self

        class H(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                if outer.hold is not None:
                    with outer.cond:
                        outer.got.append(({k.lower(): v for k, v in self.headers.items()}, body,
                                          "held"))
                        outer.cond.notify_all()
                    hold, outer.hold = outer.hold, None
                    hold.wait(60)
                    return  # no answer: the connection closes
                with outer.cond:
                    status = outer.answers.pop(0) if outer.answers else 200
                    outer.got.append(({k.lower(): v for k, v in self.headers.items()}, body,
                                      status))
                    outer.cond.notify_all()
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *a):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", port), H)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/reeld?src=test"

    def wait(self, n, timeout=30):
        with self.cond:
            assert self.cond.wait_for(lambda: len(self.got) >= n, timeout), self.got
            return list(self.got)

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def set_hook(r, url, events=None, who=ACME):
    body = {"url": url}
    if events is not None:
        body["events"] = events
    return call(r, "PUT", "/api/webhook", body, who)


def promote_random(r, who=ACME):
    """Uploads random bytes (no video in them: the transcode fails for good) and promotes."""
    data = os.urandom(4096)
    st, _, up = call(r, "POST", "/api/uploads",
                     {"filename": "noise.mp4", "content_type": "video/mp4", "size": len(data)}, who)
    assert st == 201, up
    assert put_url(up["upload"]["url"], data)[0] == 200
    st, _, job = call(r, "POST", f"/api/assets/{up['asset_id']}/promote", headers=who)
    assert st == 202, job
    return up["asset_id"]


def deliveries(r, who=ACME):
    st, _, page = call(r, "GET", "/api/webhook/deliveries", headers=who)
    assert st == 200, page
    return page["deliveries"]


def test_uploaded_and_failed_are_signed_and_listed(reeld_factory):
    rx = Receiver()
    try:
        r = reeld_factory(env=FAST)
        st, _, hook = set_hook(r, rx.url)
        assert st == 201, hook
        secret = hook["secret"]
        assert secret.startswith("whsec_") and len(secret) == 6 + 64
        assert hook["url"] == rx.url
        assert hook["events"] == [  # no events asked: every type
            "asset.uploaded", "asset.ready", "asset.failed", "asset.deleted", "export.ready",
            "export.failed"]
        st, _, got = call(r, "GET", "/api/webhook", headers=ACME)
        assert st == 200 and got["url"] == rx.url and "secret" not in got, got

        aid = promote_random(r)
        got = rx.wait(2, timeout=60)
        assert len(got) == 2, got
        events = []
        for headers, body, status in got:
            assert status == 200
            assert headers["content-type"] == "application/json"
            assert verify(secret, headers["reeld-signature"], body), headers
            assert not verify("whsec_wrong", headers["reeld-signature"], body)
            # One byte changed in the body: the signature no longer holds.
            assert not verify(secret, headers["reeld-signature"], body.replace(b"asset", b"assEt"))
            events.append(json.loads(body))
        assert [e["type"] for e in events] == ["asset.uploaded", "asset.failed"]  # in order
        for e in events:
            assert e["id"].startswith("evt_") and len(e["id"]) == 28, e
            assert e["org"] == "acme" and e["data"]["asset_id"] == aid, e
            assert abs(e["created"] - time.time()) < 120 and e["created_at"].endswith("Z")
        assert events[0]["id"] != events[1]["id"]
        assert events[1]["data"]["error"], events[1]  # the error sentence
        assert got[1][0]["reeld-event-id"] == events[1]["id"]
        st, _, asset = call(r, "GET", f"/api/assets/{aid}", headers=ACME)
        assert asset["state"] == "failed" and asset["error"] == events[1]["data"]["error"]

        time.sleep(0.5)  # the attempts are recorded just before each job ends
        ds = deliveries(r)
        assert [(d["type"], d["state"], d["status_code"], d["attempt"]) for d in ds] == [
            ("asset.failed", "delivered", 200, 1), ("asset.uploaded", "delivered", 200, 1)], ds
        assert all(d["latency_ms"] >= 0 and d["next_retry_at"] is None for d in ds)
        assert {d["event_id"] for d in ds} == {e["id"] for e in events}
    finally:
        rx.close()


def metric(r, name):
    import urllib.request
    with urllib.request.urlopen(f"http://{r.addr}/metrics", timeout=5) as resp:
        text = resp.read().decode()
    return {line.split(" ")[0]: float(line.split(" ")[1]) for line in text.splitlines()
            if line.startswith(name)}


def test_500_three_times_then_200_and_410_is_dead(reeld_factory):
    rx = Receiver(answers=[500, 500, 500])
    gone = Receiver(answers=[410] * 10)
    try:
        r = reeld_factory(env=FAST)
        assert set_hook(r, rx.url, ["asset.uploaded"])[0] == 201
        assert set_hook(r, gone.url, ["asset.uploaded"], who=BETA)[0] == 201
        promote_random(r)
        promote_random(r, who=BETA)
        got = rx.wait(4)
        assert [s for _, _, s in got] == [500, 500, 500, 200]
        assert len({json.loads(b)["id"] for _, b, _ in got}) == 1  # one event, four times
        time.sleep(1.5)  # several retry delays (200-400 ms): no fifth POST
        assert len(rx.got) == 4
        assert len(gone.got) == 1 and gone.got[0][2] == 410  # 410: not retried
        ds = deliveries(r)
        assert [(d["attempt"], d["status_code"], d["state"]) for d in ds] == [
            (4, 200, "delivered"), (3, 500, "retrying"), (2, 500, "retrying"),
            (1, 500, "retrying")], ds
        ds = deliveries(r, BETA)
        assert [(d["attempt"], d["status_code"], d["state"], d["next_retry_at"]) for d in ds] == [
            (1, 410, "dead", None)], ds
        assert "410" in ds[0]["error"]
        m = metric(r, "reeld_webhook_")
        assert m['reeld_webhook_deliveries_total{outcome="delivered"}'] == 1, m
        assert m['reeld_webhook_deliveries_total{outcome="retrying"}'] == 3, m
        assert m['reeld_webhook_deliveries_total{outcome="dead"}'] == 1, m
        assert m["reeld_webhook_delivery_seconds_count"] == 5, m
        deadline = time.time() + 5  # the store's figures are counted once a second
        while m["reeld_webhook_oldest_undelivered_seconds"] != 0 and time.time() < deadline:
            time.sleep(0.2)
            m = metric(r, "reeld_webhook_")
        assert m["reeld_webhook_oldest_undelivered_seconds"] == 0, m  # nothing waits now
    finally:
        rx.close()
        gone.close()


def test_receiver_down_for_30_s_gets_every_event_in_order(reeld_factory):
    """Nothing listens on the endpoint's port for 30 s: every attempt is refused and retried;
    once a receiver is up, each event arrives, and each asset's events in order."""
    from conftest import free_port
    port = free_port()
    url = f"http://127.0.0.1:{port}/hooks"
    r = reeld_factory(env=dict(FAST, WEBHOOK_RETRY_BASE_MS="500", WEBHOOK_RETRY_MAX_MS="2000",
                               WEBHOOK_MAX_ATTEMPTS="100"))
    assert set_hook(r, url)[0] == 201
    aids = [promote_random(r) for _ in range(3)]
    # Each asset's asset.uploaded waits on its retries, so its asset.failed is not sent yet.
    deadline = time.time() + 30
    while time.time() < deadline:
        time.sleep(1)
    ds = deliveries(r)
    assert ds and all(d["status_code"] is None and d["state"] == "retrying" for d in ds), ds
    assert all("cannot connect" in d["error"] for d in ds), ds[0]
    assert {d["type"] for d in ds} == {"asset.uploaded"}, ds  # the later events wait
    assert metric(r, "reeld_webhook_oldest")["reeld_webhook_oldest_undelivered_seconds"] >= 20
    rx = Receiver(port=port)
    try:
        rx.wait(6, timeout=30)
        time.sleep(1)
        events = [json.loads(b) for _, b, _ in rx.got]
        assert sorted(e["data"]["asset_id"] for e in events) == sorted(aids * 2), events
        assert len({e["id"] for e in events}) == 6  # once each (retries were all refused)
        for aid in aids:
            assert [e["type"] for e in events if e["data"]["asset_id"] == aid] == [
                "asset.uploaded", "asset.failed"], events
    finally:
        rx.close()


def test_private_and_malformed_urls_are_refused(reeld_factory):
    r = reeld_factory(env={"REELD_API_KEYS": KEYS})
    for url in ("http://127.0.0.1:9/x", "http://localhost/x", "http://10.1.2.3/",
                "http://192.168.0.1/", "http://100.64.0.1/", "http://169.254.169.254/latest",
                "http://[::1]/", "http://[fe80::1]/", "http://[fd00::1]/", "http://0.0.0.0/",
                "http://2130706433/", "http://[::ffff:127.0.0.1]/"):
        st, _, err = set_hook(r, url)
        assert st == 400 and err["error"]["code"] == "private_url", (url, err)
    for url in ("ftp://example.com/", "https://user:pw@example.com/", "https://",
                "https://example.com/#x", "https://example.com/" + "a" * 2048):
        st, _, err = set_hook(r, url)
        assert st == 400 and err["error"]["code"] == "invalid_url", (url, err)
    st, _, err = set_hook(r, "https://example.com/hook", ["asset.exploded"])
    assert st == 400 and err["error"]["code"] == "invalid_event", err
    assert call(r, "GET", "/api/webhook", headers=ACME)[0] == 404  # nothing was stored
    st, _, hook = set_hook(r, "https://example.com/hook", ["asset.ready"])
    assert st == 201 and hook["events"] == ["asset.ready"], hook
    # A second PUT changes the endpoint and keeps the secret (not shown again).
    st, _, again = set_hook(r, "https://example.org/other")
    assert st == 200 and "secret" not in again and again["url"] == "https://example.org/other"


def test_rotation_signs_with_both_and_other_orgs_see_nothing(reeld_factory):
    rx = Receiver()
    try:
        r = reeld_factory(env=FAST)
        st, _, hook = set_hook(r, rx.url, ["asset.uploaded"])
        assert st == 201
        old = hook["secret"]
        # Another org can neither see, nor change, nor delete, nor rotate it.
        assert call(r, "GET", "/api/webhook", headers=BETA)[0] == 404
        assert call(r, "DELETE", "/api/webhook", headers=BETA)[0] == 404
        assert call(r, "POST", "/api/webhook/rotate-secret", headers=BETA)[0] == 404
        assert deliveries(r, BETA) == []
        st, _, rot = call(r, "POST", "/api/webhook/rotate-secret", headers=ACME)
        assert st == 200, rot
        new = rot["secret"]
        assert new != old and new.startswith("whsec_") and "previous_secret_expires_at" in rot
        assert call(r, "GET", "/api/webhook", headers=ACME)[2]["url"] == rx.url

        promote_random(r)
        headers, body, _ = rx.wait(1)[0]
        sig = headers["reeld-signature"]
        assert sig.count("v1=") == 2, sig
        assert verify(new, sig, body) and verify(old, sig, body)

        assert call(r, "DELETE", "/api/webhook", headers=ACME)[0] == 204
        assert call(r, "GET", "/api/webhook", headers=ACME)[0] == 404
        assert call(r, "POST", "/api/webhook/rotate-secret", headers=ACME)[0] == 404
    finally:
        rx.close()


def test_event_written_before_kill_9_is_delivered_after_restart(tmp_path):
    rx = Receiver()
    env = dict(FAST, WEBHOOK_WORKERS="0")  # this node delivers nothing
    r = Reeld(env=env, data_dir=str(tmp_path))
    try:
        assert set_hook(r, rx.url, ["asset.uploaded"])[0] == 201
        aid = promote_random(r)
        time.sleep(0.5)
        assert rx.got == []
        r.proc.kill()  # SIGKILL: no drain, nothing flushed but what the store committed
        r.proc.wait()
        r.log.close()
        r = Reeld(env=FAST, data_dir=str(tmp_path))
        headers, body, _ = rx.wait(1)[0]
        e = json.loads(body)
        assert e["type"] == "asset.uploaded" and e["data"]["asset_id"] == aid, e
        assert r.stop() == 0, r.logs()[-3000:]
    finally:
        if r.proc.poll() is None:
            r.stop()
        rx.close()


def test_kill_9_of_the_delivering_node_another_node_delivers(postgres, redis):
    """Node A is in the middle of a delivery (the receiver holds the request) when it is killed
    with SIGKILL; node B, on the same PostgreSQL and Redis, delivers the event once A's lease
    has run out."""
    hold = threading.Event()
    rx = Receiver(hold=hold)
    env = dict(FAST, POSTGRES_URL=postgres.new_database(), REDIS_URL=redis.url,
               REELD_JOB_LEASE_MS="10000", WEBHOOK_TIMEOUT_MS="8000")
    a = Reeld(env=env)
    b = None
    try:
        assert set_hook(a, rx.url, ["asset.uploaded"])[0] == 201
        aid = promote_random(a)
        first = rx.wait(1)[0]
        assert first[2] == "held"  # A's attempt is in flight
        b = Reeld(env=env)
        a.proc.kill()
        a.proc.wait()
        hold.set()
        got = rx.wait(2, timeout=60)
        e0, e1 = json.loads(got[0][1]), json.loads(got[1][1])
        assert e0["id"] == e1["id"] and e1["data"]["asset_id"] == aid, (e0, e1)
        assert got[1][2] == 200
        time.sleep(0.5)
        ds = [d for d in deliveries(b) if d["state"] == "delivered"]
        assert len(ds) == 1 and ds[0]["event_id"] == e0["id"] and ds[0]["attempt"] >= 2, ds
        assert f'"event":"webhook_delivered","event":"{e0["id"]}"' in b.logs() or (
            "webhook_delivered" in b.logs() and e0["id"] in b.logs())  # B sent it
        assert b.stop() == 0, b.logs()[-3000:]
    finally:
        hold.set()
        for node in (a, b):
            if node is not None and node.proc.poll() is None:
                node.stop()
        a.log.close()
        rx.close()


def test_postgres_fleet_delivers_through_the_outbox(postgres, redis):
    """The same on PostgreSQL with the Redis queue: the event's job reaches the workers through
    the outbox written with it; a 503 is retried; the listing and rotation work there too."""
    rx = Receiver(answers=[503])
    env = dict(FAST, POSTGRES_URL=postgres.new_database(), REDIS_URL=redis.url)
    r = Reeld(env=env)
    try:
        st, _, hook = set_hook(r, rx.url)
        assert st == 201, hook
        assert set_hook(r, rx.url)[0] == 200  # the second PUT updates
        st, _, rot = call(r, "POST", "/api/webhook/rotate-secret", headers=ACME)
        assert st == 200 and rot["secret"] != hook["secret"]
        aid = promote_random(r)
        got = rx.wait(3, timeout=60)
        assert [s for _, _, s in got] == [503, 200, 200], got
        events = [json.loads(b) for _, b, _ in got]
        assert [e["type"] for e in events] == ["asset.uploaded"] * 2 + ["asset.failed"]
        assert all(e["data"]["asset_id"] == aid for e in events)
        for headers, body, _ in got:
            assert verify(rot["secret"], headers["reeld-signature"], body)
            assert verify(hook["secret"], headers["reeld-signature"], body)
        time.sleep(0.5)
        ds = deliveries(r)
        assert [(d["type"], d["attempt"], d["status_code"], d["state"]) for d in ds] == [
            ("asset.failed", 1, 200, "delivered"), ("asset.uploaded", 2, 200, "delivered"),
            ("asset.uploaded", 1, 503, "retrying")], ds
        assert deliveries(r, BETA) == []
        assert r.stop() == 0, r.logs()[-3000:]
    finally:
        if r.proc.poll() is None:
            r.stop()
        rx.close()


def test_ready_carries_renditions_and_a_playable_link(reeld_factory, tmp_path):
    """A real (tiny) video: asset.ready lists the renditions and a signed link that plays."""
    import subprocess
    import urllib.request
    path = str(tmp_path / "tiny.mp4")
    subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
                    "testsrc2=size=320x180:rate=15", "-t", "2", "-c:v", "libx264", "-preset",
                    "ultrafast", "-pix_fmt", "yuv420p", path], check=True)
    data = open(path, "rb").read()
    rx = Receiver()
    try:
        r = reeld_factory(env=FAST)
        st, _, hook = set_hook(r, rx.url, ["asset.ready", "asset.failed"])
        assert st == 201
        st, _, up = call(r, "POST", "/api/uploads",
                         {"filename": "tiny.mp4", "content_type": "video/mp4", "size": len(data)},
                         ACME)
        assert st == 201 and put_url(up["upload"]["url"], data)[0] == 200
        assert call(r, "POST", f"/api/assets/{up['asset_id']}/promote", headers=ACME)[0] == 202
        headers, body, _ = rx.wait(1, timeout=120)[0]
        assert verify(hook["secret"], headers["reeld-signature"], body)
        e = json.loads(body)
        assert e["type"] == "asset.ready" and e["data"]["asset_id"] == up["asset_id"], e
        rs = e["data"]["renditions"]
        assert rs and all(x["width"] > 0 and x["height"] > 0 and x["name"] for x in rs), rs
        assert 1.5 < e["data"]["duration"] < 2.5, e  # a 2 s clip
        with urllib.request.urlopen(e["data"]["playback"], timeout=10) as resp:
            assert resp.status == 200 and resp.read().startswith(b"#EXTM3U")
    finally:
        rx.close()


def test_https_endpoint_with_an_untrusted_certificate_gets_nothing(reeld_factory, tmp_path):
    """HTTPS goes through BearSSL with the system's CAs: a self-signed receiver is refused by
    the certificate check (retried: the certificate may be fixed), and gets no request."""
    import ssl
    import subprocess
    key, cert = str(tmp_path / "k.pem"), str(tmp_path / "c.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key,
                    "-out", cert, "-days", "1", "-subj", "/CN=localhost", "-addext",
                    "subjectAltName=DNS:localhost"], check=True, capture_output=True)
    rx = Receiver()
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    rx.server.socket = ctx.wrap_socket(rx.server.socket, server_side=True)
    port = rx.server.server_address[1]
    try:
        r = reeld_factory(env=dict(FAST, WEBHOOK_RETRY_BASE_MS="60000",
                                   WEBHOOK_RETRY_MAX_MS="120000"))
        assert set_hook(r, f"https://localhost:{port}/h", ["asset.uploaded"])[0] == 201
        promote_random(r)
        deadline = time.time() + 30
        ds = []
        while time.time() < deadline and not ds:
            time.sleep(0.3)
            ds = deliveries(r)
        assert len(ds) == 1, ds
        d = ds[0]
        assert d["status_code"] is None and d["state"] == "retrying", d
        assert "TLS" in d["error"] and "certificate" in d["error"], d
        assert d["next_retry_at"] is not None
        assert rx.got == []
    finally:
        rx.close()


def read_events(r, aid, who=ACME, timeout=60, last_id=None, stop_after=None):
    """GET /api/assets/{id}/events to its end (or `stop_after` events): [(event, id, data)]."""
    import http.client
    conn = http.client.HTTPConnection("127.0.0.1", r.port, timeout=timeout)
    headers = dict(who)
    if last_id is not None:
        headers["Last-Event-ID"] = str(last_id)
    conn.request("GET", f"/api/assets/{aid}/events", headers=headers)
    resp = conn.getresponse()
    got = {k.lower(): v for k, v in resp.getheaders()}
    if resp.status != 200:
        body = resp.read()
        conn.close()
        return resp.status, got, json.loads(body) if body else None
    events, name, eid, data = [], None, None, []
    while stop_after is None or len(events) < stop_after:
        raw = resp.readline()
        if not raw:
            break  # the end of the stream
        line = raw.decode().rstrip("\n")
        if line == "":
            if data:
                events.append((name, int(eid), json.loads("\n".join(data))))
            name, eid, data = None, None, []
        elif line.startswith("event: "):
            name = line[7:]
        elif line.startswith("id: "):
            eid = line[4:]
        elif line.startswith("data: "):
            data.append(line[6:])
    conn.close()
    return resp.status, got, events


def clip(tmp_path, seconds=4, name="p.mp4"):
    import subprocess
    path = str(tmp_path / name)
    subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
                    "testsrc2=size=320x180:rate=15", "-t", str(seconds), "-c:v", "libx264",
                    "-preset", "ultrafast", "-pix_fmt", "yuv420p", path], check=True)
    return open(path, "rb").read()


def upload_clip(r, data, who=ACME):
    st, _, up = call(r, "POST", "/api/uploads",
                     {"filename": "p.mp4", "content_type": "video/mp4", "size": len(data)}, who)
    assert st == 201 and put_url(up["upload"]["url"], data)[0] == 200
    return up["asset_id"]


def check_stream(events, final):
    """progress events (changes only, ids never falling), then exactly one `final` event."""
    names = [n for n, _, _ in events]
    assert names and names[-1] == final and set(names[:-1]) <= {"progress"}, names
    ids = [i for _, i, _ in events]
    assert ids == sorted(ids), ids
    progress = [json.dumps(d, sort_keys=True) for n, _, d in events if n == "progress"]
    assert len(set(progress)) == len(progress)  # a change each time


def test_live_progress_streams_until_the_asset_is_done(reeld_factory, tmp_path):
    data = clip(tmp_path)
    r = reeld_factory(env=FAST)
    aid = upload_clip(r, data)
    assert read_events(r, aid, who=BETA)[0] == 404  # another org's asset is none
    assert call(r, "POST", f"/api/assets/{aid}/promote", headers=ACME)[0] == 202
    st, headers, events = read_events(r, aid)
    assert st == 200 and headers["content-type"] == "text/event-stream", headers
    assert headers["cache-control"] == "no-store"
    check_stream(events, "ready")
    assert all(d["asset_id"] == aid for _, _, d in events)
    _, ready_id, ready = events[-1]
    assert ready["state"] == "ready" and ready["progress"] == 100
    # A finished asset: its end at once. Seen already (Last-Event-ID): 204, so an EventSource
    # stops reconnecting.
    st, _, again = read_events(r, aid, timeout=10)
    assert st == 200 and [(n, i) for n, i, _ in again] == [("ready", ready_id)], again
    st, headers, _ = read_events(r, aid, timeout=10, last_id=ready_id)
    assert st == 204, st
    st, _, again = read_events(r, aid, timeout=10, last_id=ready_id - 1)
    assert st == 200 and [n for n, _, _ in again] == ["ready"], again
    st, _, again = read_events(r, aid, timeout=10, last_id="garbage")
    assert st == 200 and [n for n, _, _ in again] == ["ready"], again  # ignored
    # Random bytes: the stream ends with the failure and its error.
    bad = promote_random(r)
    st, _, events = read_events(r, bad)
    check_stream(events, "failed")
    assert events[-1][2]["state"] == "failed" and events[-1][2]["error"], events


def fleet_env(postgres, redis, moto, edge_key):
    """A fleet's settings on the suite's PostgreSQL, Redis and S3 (with a previews bucket),
    webhooks and retries as FAST."""
    from test_api import s3_env
    try:
        moto["s3"].create_bucket(Bucket="previews")
    except moto["s3"].exceptions.BucketAlreadyOwnedByYou:
        pass
    return s3_env(moto, POSTGRES_URL=postgres.new_database(), REDIS_URL=redis.url,
                  EDGE_SIGNING_KEY=edge_key, **FAST)


def test_live_progress_through_a_node_that_runs_no_job(postgres, redis, moto, tmp_path):
    """An API node and a worker node on one PostgreSQL, Redis and S3: the API node's stream
    shows the worker's progress; a reconnect with Last-Event-ID gets nothing it saw."""
    data = clip(tmp_path, seconds=8)
    env = fleet_env(postgres, redis, moto, "edge-key-for-live-progress-0123456789")
    api = Reeld(env=env, args=("--roles", "api,edge"))
    worker = Reeld(env=env, args=("--roles", "worker"))
    try:
        aid = upload_clip(api, data)
        assert call(api, "POST", f"/api/assets/{aid}/promote", headers=ACME)[0] == 202
        st, _, first = read_events(api, aid, stop_after=2)
        assert st == 200 and first, first
        seen = first[-1][1]
        st, _, rest = read_events(api, aid, last_id=seen)
        if st == 204:  # the job was done within the first two events
            assert first[-1][0] == "ready", first
        else:
            check_stream(rest, "ready")
            assert all(i > seen for _, i, _ in rest), (seen, rest)  # no old progress again
        st, _, a = call(api, "GET", f"/api/assets/{aid}", headers=ACME)
        assert a["state"] == "ready", a
        assert "transcode_published" in worker.logs() and "transcode_published" not in api.logs()
    finally:
        for node in (api, worker):
            assert node.stop() == 0, node.logs()[-3000:]


def test_live_progress_streams_are_bounded_per_org(reeld_factory):
    """REELD_SSE_MAX_PER_ORG streams for one org at once: one more is a 429; another org is
    not affected; a closed stream gives its place back at once."""
    import http.client
    r = reeld_factory(env=dict(FAST, REELD_SSE_MAX_PER_ORG="2"), args=("--roles", "api,edge"))
    aid = promote_random(r)  # no worker on this node: it stays processing
    other = promote_random(r, who=BETA)

    def open_stream(asset, who=ACME):
        conn = http.client.HTTPConnection("127.0.0.1", r.port, timeout=10)
        conn.request("GET", f"/api/assets/{asset}/events", headers=who)
        resp = conn.getresponse()
        if resp.status == 200:
            assert resp.readline().startswith(b"retry:")
        return conn, resp

    opened = [open_stream(aid), open_stream(aid)]
    assert all(resp.status == 200 for _, resp in opened)
    conn, resp = open_stream(aid)
    assert resp.status == 429 and resp.getheader("Retry-After") == "5"
    assert json.loads(resp.read())["error"]["code"] == "too_many_streams"
    conn.close()
    beta_conn, beta = open_stream(other, BETA)
    assert beta.status == 200
    opened[0][0].close()
    deadline = time.time() + 10
    while True:  # the listener tells the stream at once: no wait for a keep-alive (15 s)
        conn, resp = open_stream(aid)
        if resp.status == 200 or time.time() > deadline:
            break
        conn.close()
        time.sleep(0.1)
    assert resp.status == 200
    for c in (conn, beta_conn, opened[1][0]):
        c.close()
