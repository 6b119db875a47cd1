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
from test_api import call, put_url

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

    def __init__(self, answers=()):
        self.answers = list(answers)
        self.got = []
        self.cond = threading.Condition()
        outer = self

        class H(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
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

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
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
        assert hook["events"] == ["asset.uploaded", "asset.ready", "asset.failed"]
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


def test_500_is_retried_and_400_is_dead(reeld_factory):
    rx = Receiver(answers=[500])
    dead = Receiver(answers=[400] * 10)
    try:
        r = reeld_factory(env=FAST)
        assert set_hook(r, rx.url, ["asset.uploaded"])[0] == 201
        assert set_hook(r, dead.url, ["asset.uploaded"], who=BETA)[0] == 201
        promote_random(r)
        promote_random(r, who=BETA)
        got = rx.wait(2)
        assert [s for _, _, s in got] == [500, 200]
        first, second = (json.loads(b) for _, b, _ in got)
        assert first["id"] == second["id"]  # the same event, again
        time.sleep(1.5)  # several retry delays (200-400 ms): no third POST
        assert len(rx.got) == 2
        assert len(dead.got) == 1 and dead.got[0][2] == 400  # 400: not retried
        ds = deliveries(r)
        assert [(d["attempt"], d["status_code"], d["state"]) for d in ds] == [
            (2, 200, "delivered"), (1, 500, "retrying")], ds
        ds = deliveries(r, BETA)
        assert [(d["attempt"], d["status_code"], d["state"], d["next_retry_at"]) for d in ds] == [
            (1, 400, "dead", None)], ds
        assert "400" in ds[0]["error"]
    finally:
        rx.close()
        dead.close()


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


def read_events(r, aid, who=ACME, timeout=60):
    """GET /api/assets/{id}/events to its end: [(event, data)] and the response headers."""
    import http.client
    conn = http.client.HTTPConnection("127.0.0.1", r.port, timeout=timeout)
    conn.request("GET", f"/api/assets/{aid}/events", headers=who)
    resp = conn.getresponse()
    headers = {k.lower(): v for k, v in resp.getheaders()}
    if resp.status != 200:
        return resp.status, headers, []
    events, name, data = [], None, []
    for raw in resp:  # lines, as they arrive; ends with the stream
        line = raw.decode().rstrip("\n")
        if line == "":
            if data:
                events.append((name, "\n".join(data)))
            name, data = None, []
        elif line.startswith("event: "):
            name = line[7:]
        elif line.startswith("data: "):
            data.append(line[6:])
    conn.close()
    return resp.status, headers, events


def test_live_progress_streams_until_the_asset_is_done(reeld_factory, tmp_path):
    import subprocess
    path = str(tmp_path / "p.mp4")
    subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
                    "testsrc2=size=320x180:rate=15", "-t", "4", "-c:v", "libx264", "-preset",
                    "ultrafast", "-pix_fmt", "yuv420p", path], check=True)
    data = open(path, "rb").read()
    r = reeld_factory(env=FAST)
    st, _, up = call(r, "POST", "/api/uploads",
                     {"filename": "p.mp4", "content_type": "video/mp4", "size": len(data)}, ACME)
    assert st == 201 and put_url(up["upload"]["url"], data)[0] == 200
    aid = up["asset_id"]
    assert read_events(r, aid, who=BETA)[0] == 404  # another org's asset is none
    assert call(r, "POST", f"/api/assets/{aid}/promote", headers=ACME)[0] == 202
    st, headers, events = read_events(r, aid)
    assert st == 200 and headers["content-type"] == "text/event-stream", headers
    assets = [json.loads(d) for n, d in events if n == "asset"]
    assert assets and assets[-1]["state"] == "ready", events
    assert all(a["asset_id"] == aid for a in assets)
    assert len({json.dumps(a, sort_keys=True) for a in assets}) == len(assets)  # changes only
    # A finished asset: one event, then the end.
    st, _, events = read_events(r, aid, timeout=10)
    assert st == 200 and [json.loads(d)["state"] for n, d in events if n == "asset"] == ["ready"]
    # Random bytes: the stream ends with the failure and its error.
    bad = promote_random(r)
    st, _, events = read_events(r, bad)
    last = json.loads([d for n, d in events if n == "asset"][-1])
    assert last["state"] == "failed" and last["error"], last
