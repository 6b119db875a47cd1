"""What a careless or hostile client can do to the listener and the embedded object store, each
case reproduced against the real binary: bodies of two loops mixed under one stream id, PUTs
with Connection: close or HTTP/1.0 (Python's urllib), bodies larger than announced, one org or
one address taking every upload slot or connection, bodies that trickle, credentials refused
before a body is read, and a process out of file descriptors."""
import json
import os
import re
import resource
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest

from conftest import Reeld, reeld_bin
from test_http import Reader

KEYS = "acme:acme-key-0123456789abcdef,beta:beta-key-0123456789abcdef"
ACME = {"Authorization": "Bearer acme-key-0123456789abcdef"}
BETA = {"Authorization": "Bearer beta-key-0123456789abcdef"}


def connect(r, source="127.0.0.1", timeout=10.0):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.bind((source, 0))
    s.connect(("127.0.0.1", r.port))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def api(r, method, path, body=None, headers=None):
    req = urllib.request.Request(f"http://{r.addr}{path}", method=method,
                                 data=json.dumps(body).encode() if body is not None else None,
                                 headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


def new_upload(r, size, headers=None):
    st, body = api(r, "POST", "/api/uploads",
                   {"filename": "clip.mp4", "content_type": "video/mp4", "size": size}, headers)
    assert st == 201, body
    return body["asset_id"], body["upload"]["url"]


def put_head(url, length, http10=False, extra=""):
    u = urllib.parse.urlsplit(url)
    version = "HTTP/1.0" if http10 else "HTTP/1.1"
    return (f"PUT {u.path}?{u.query} {version}\r\nHost: {u.netloc}\r\n"
            f"Content-Type: video/mp4\r\nContent-Length: {length}\r\n{extra}\r\n").encode()


def staged(r, aid):
    path = os.path.join(r.data_dir, "blobs", "staging", aid)
    if not os.path.exists(path):
        return None
    with open(path, "rb") as f:
        return f.read()


@pytest.fixture
def reeld_keys(reeld_factory):
    def start(**env):
        return reeld_factory(env={"REELD_API_KEYS": KEYS, **env})
    return start


# ---- stream ids are unique in the process, not per loop ----

def test_puts_first_on_two_loops_keep_their_own_bytes(reeld_keys):
    """Each loop's first connections used to get the same stream ids: the blob server, which
    serves every loop, wrote one client's bytes into another's object and left the other
    hanging. Eight PUTs at once on a fresh two-loop process land on both loops."""
    r = reeld_keys(REELD_CORES="2")
    n, size = 8, 200_000
    uploads = [new_upload(r, size, ACME) for _ in range(n)]
    datas = [bytes([i + 1]) * size for i in range(n)]
    socks = []
    for (aid, url), data in zip(uploads, datas):
        s = connect(r)
        s.sendall(put_head(url, size) + data[: size // 2])
        socks.append(s)
    time.sleep(0.3)
    for s, data in zip(reversed(socks), reversed(datas)):
        s.sendall(data[size // 2:])
    for s in socks:
        status, _, body = Reader(s).response()
        assert status == 200, body
        s.close()
    for (aid, _), data in zip(uploads, datas):
        assert staged(r, aid) == data, aid


# ---- a streamed body is read to its end whatever the connection's persistence ----

@pytest.mark.parametrize("http10", [False, True], ids=["connection-close", "http1.0"])
def test_put_that_closes_after_it_is_read_and_answered(reeld_keys, http10):
    r = reeld_keys()
    data = os.urandom(100_000)
    aid, url = new_upload(r, len(data), ACME)
    s = connect(r)
    t = time.time()
    s.sendall(put_head(url, len(data), http10, "" if http10 else "Connection: close\r\n"))
    s.sendall(data)
    rd = Reader(s)
    status, h, _ = rd.response()
    assert status == 200 and time.time() - t < 5
    assert rd.closed()
    assert staged(r, aid) == data


def test_urllib_put_to_a_presigned_url(reeld_keys):
    """urllib sends Connection: close: the first client most Python scripts use."""
    r = reeld_keys()
    data = os.urandom(70_000)
    aid, url = new_upload(r, len(data), ACME)
    req = urllib.request.Request(url, data=data, method="PUT",
                                 headers={"Content-Type": "video/mp4"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        assert resp.status == 200
    assert staged(r, aid) == data
    st, body = api(r, "POST", f"/api/assets/{aid}/promote", None, ACME)
    assert st == 202, body


# ---- the announced size is what the URL takes ----

def test_a_body_larger_than_announced_is_refused_and_not_stored(reeld_keys):
    r = reeld_keys()
    aid, url = new_upload(r, 1, ACME)
    assert "content-length" in urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)[
        "X-Amz-SignedHeaders"][0]
    big = os.urandom(64 * 1024)
    req = urllib.request.Request(url, data=big, method="PUT", headers={"Content-Type": "video/mp4"})
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(req, timeout=10)
    assert e.value.code == 403 and b"SignatureDoesNotMatch" in e.value.read()
    assert staged(r, aid) is None
    req = urllib.request.Request(url, data=b"x", method="PUT", headers={"Content-Type": "video/mp4"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        assert resp.status == 200
    assert staged(r, aid) == b"x"


# ---- upload slots per org and per address ----

def test_one_org_cannot_take_every_upload_slot(reeld_keys):
    r = reeld_keys(REELD_UPLOAD_SLOTS_PER_ORG="2", REELD_UPLOAD_SLOTS_PER_CLIENT="3")
    size = 50_000
    held = []

    def start_put(headers, source="127.0.0.1"):
        aid, url = new_upload(r, size, headers)
        s = connect(r, source)
        s.sendall(put_head(url, size) + b"a" * 1000)
        time.sleep(0.3)  # the blob server has taken (or refused) the slot
        return aid, s

    for _ in range(2):
        held.append(start_put(ACME))
    aid, s = start_put(ACME)
    status, _, body = Reader(s).response()
    assert status == 503 and b"SlowDown" in body and b"this org" in body, body
    s.close()
    # Another org still uploads, here from the same address (its third slot)...
    held.append(start_put(BETA))
    # ...until the address has its share; another address is not held back by it.
    aid, s = start_put(BETA)
    status, _, body = Reader(s).response()
    assert status == 503 and b"this address" in body, body
    s.close()
    aid, s = start_put(BETA, source="127.0.0.2")
    s.sendall(b"a" * (size - 1000))
    assert Reader(s).response()[0] == 200
    assert staged(r, aid) == b"a" * size
    for aid, s in held:
        s.sendall(b"a" * (size - 1000))
        assert Reader(s).response()[0] == 200
        assert staged(r, aid) == b"a" * size


# ---- connections per address ----

def test_one_address_cannot_take_every_connection(reeld_keys):
    r = reeld_keys(REELD_HTTP_MAX_CONNS_PER_CLIENT="4", REELD_CORES="2")
    # The start-up probe's connection counts until its close is read: let it go first.
    time.sleep(0.5)
    held = [connect(r) for _ in range(4)]
    for s in held:
        s.sendall(b"GET /api/ping HTTP/1.1\r\nHost: t\r\n\r\n")
        assert Reader(s).response()[0] == 200
    s = connect(r)
    s.sendall(b"GET /api/ping HTTP/1.1\r\nHost: t\r\n\r\n")
    rd = Reader(s)
    status, _, body = rd.response()
    assert status == 503 and b"from your address" in body, body
    assert rd.closed()
    other = connect(r, "127.0.0.2")
    other.sendall(b"GET /api/ping HTTP/1.1\r\nHost: t\r\n\r\n")
    assert Reader(other).response()[0] == 200
    held.pop().close()
    time.sleep(0.3)
    s = connect(r)
    s.sendall(b"GET /api/ping HTTP/1.1\r\nHost: t\r\n\r\n")
    assert Reader(s).response()[0] == 200
    for s in held + [other, s]:
        s.close()


# ---- bodies that trickle ----

def test_trickled_bodies_are_cut_off(reeld_keys):
    """A byte now and then used to reset the body's idle deadline forever. Below the minimum
    rate over a 10 s window the request ends: a buffered API body with 408, a streamed PUT with
    the blob server's refusal; nothing is stored."""
    r = reeld_keys(REELD_HTTP_BODY_MIN_RATE="1000")
    aid, url = new_upload(r, 100_000, ACME)
    put = connect(r, timeout=30)
    put.sendall(put_head(url, 100_000))
    post = connect(r, timeout=30)
    post.sendall(b"POST /api/uploads HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
                 b"Authorization: " + ACME["Authorization"].encode() +
                 b"\r\nContent-Length: 500\r\n\r\n")
    fast = connect(r, timeout=30)
    fast.sendall(put_head(new_upload(r, 30_000, ACME)[1], 30_000))
    results = {}

    def trickle(name, s, step, total, every):
        sent, t0 = 0, time.time()
        try:
            while sent < total and time.time() - t0 < 25:
                s.sendall(b"a" * step)
                sent += step
                time.sleep(every)
        except OSError:
            pass
        results[name] = (time.time() - t0, Reader(s).response())

    threads = [threading.Thread(target=trickle, args=("put", put, 10, 100_000, 1.0)),
               threading.Thread(target=trickle, args=("post", post, 1, 500, 1.0)),
               # 1.5 KB/s stays above the minimum for 20 s, and completes
               threading.Thread(target=trickle, args=("fast", fast, 1500, 30_000, 1.0))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(40)
    took, (status, _, body) = results["post"]
    assert status == 408 and b"REELD_HTTP_BODY_MIN_RATE" in body and took < 20, (took, body)
    took, (status, _, body) = results["put"]
    assert status in (400, 408) and took < 20, (took, status, body)
    assert staged(r, aid) is None
    took, (status, _, body) = results["fast"]
    assert status == 200, body
    assert "http_body_too_slow" in r.logs()


# ---- credentials are checked before a body is read ----

def test_a_body_with_bad_credentials_is_not_read(reeld_keys):
    r = reeld_keys()
    for auth in (b"", b"Authorization: Bearer wrong-key-0123456789abcdef\r\n"):
        s = connect(r, timeout=5)
        s.sendall(b"POST /api/uploads HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
                  + auth + b"Content-Length: 60000\r\n\r\n{")
        rd = Reader(s)
        status, h, body = rd.response()  # without the other 59,999 bytes
        assert status == 401 and "bearer" in h["www-authenticate"].lower(), body
        assert h.get("connection") == "close" and rd.closed()
    # A good key still gets its body read and answered.
    st, body = api(r, "POST", "/api/uploads",
                   {"filename": "a.mp4", "content_type": "video/mp4", "size": 10}, ACME)
    assert st == 201, body


# ---- out of file descriptors ----

def test_out_of_descriptors_backs_off_and_recovers(tmp_path):
    """With a descriptor limit below the connections asked for, accept fails with EMFILE; it
    used to retry at once, forever, logging each failure (millions of lines, a busy core)."""
    env = dict(os.environ, REELD_LISTEN="127.0.0.1:0", REELD_DATA_DIR=str(tmp_path),
               REELD_LOG="info", REELD_CORES="1", REELD_ROLES="edge")
    r = Reeld.__new__(Reeld)
    from conftest import free_port
    r.port = free_port()
    r.addr = f"127.0.0.1:{r.port}"
    env["REELD_LISTEN"] = r.addr
    log = open(tmp_path / "reeld.log", "wb")
    limit = 96

    def low_limit():
        resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))

    proc = subprocess.Popen([reeld_bin(), "serve"], env=env, stdout=log, stderr=log,
                            stdin=subprocess.DEVNULL, preexec_fn=low_limit)
    try:
        deadline = time.time() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", r.port), timeout=0.2).close()
                break
            except OSError:
                assert time.time() < deadline and proc.poll() is None
                time.sleep(0.05)
        cpu0 = _cpu_seconds(proc.pid)
        conns = []
        for _ in range(limit + 40):
            try:
                conns.append(socket.create_connection(("127.0.0.1", r.port), timeout=2))
            except OSError:
                break
        time.sleep(3)
        cpu = _cpu_seconds(proc.pid) - cpu0
        for c in conns:
            c.close()
        time.sleep(0.5)
        s = socket.create_connection(("127.0.0.1", r.port), timeout=5)
        s.sendall(b"GET /api/ping HTTP/1.1\r\nHost: t\r\n\r\n")
        assert Reader(s).response()[0] == 200
        s.close()
    finally:
        proc.terminate()
        proc.wait(15)
        log.close()
    text = (tmp_path / "reeld.log").read_text()
    fails = [json.loads(line) for line in text.splitlines()
             if line.startswith("{") and '"http_accept_failed"' in line]
    assert 1 <= len(fails) <= 10, len(fails)
    assert '"fd_limit_low"' in text
    assert sum(f.get("failures", 1) for f in fails) >= 1
    assert cpu < 1.5, f"{cpu:.2f} s of CPU in 3 s while out of descriptors"


def _cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# ---- jobs in flight per org ----

def test_one_org_cannot_queue_every_job(reeld_factory):
    """No worker here (api,edge): promoted jobs stay queued, so they count as in flight."""
    r = reeld_factory(env={"REELD_API_KEYS": KEYS, "REELD_MAX_JOBS_PER_ORG": "1"},
                      args=("--roles", "api,edge"))

    def uploaded(headers):
        data = os.urandom(2000)
        aid, url = new_upload(r, len(data), headers)
        req = urllib.request.Request(url, data=data, method="PUT",
                                     headers={"Content-Type": "video/mp4"})
        urllib.request.urlopen(req, timeout=10).close()
        return aid

    first = uploaded(ACME)
    st, job = api(r, "POST", f"/api/assets/{first}/promote", None, ACME)
    assert st == 202, job
    second = uploaded(ACME)
    st, err = api(r, "POST", f"/api/assets/{second}/promote", None, ACME)
    assert st == 429 and err["error"]["code"] == "too_many_jobs", err
    assert "REELD_MAX_JOBS_PER_ORG" in err["error"]["message"]
    # Nothing was copied for the refused one; the promoted one is still idempotent; another
    # org is not held back.
    assert not os.path.exists(os.path.join(r.data_dir, "blobs", "masters", second))
    st, again = api(r, "POST", f"/api/assets/{first}/promote", None, ACME)
    assert st == 202 and again["job_id"] == job["job_id"]
    st, other = api(r, "POST", f"/api/assets/{uploaded(BETA)}/promote", None, BETA)
    assert st == 202, other


# ---- answers that must not be cached or misread ----

def test_listener_errors_are_not_cacheable(reeld_keys):
    r = reeld_keys()
    for raw, code in ((b"GET /nowhere HTTP/1.1\r\nHost: t\r\n\r\n", 404),
                      (b"DELETE /api/ping HTTP/1.1\r\nHost: t\r\n\r\n", 405)):
        s = connect(r)
        s.sendall(raw)
        status, h, _ = Reader(s).response()
        s.close()
        assert status == code and h["cache-control"] == "no-store", (code, h)


def test_a_key_that_clashes_with_another_is_409_not_500(reeld_keys):
    """Embedded storage is a file tree: "a/b" cannot sit beside an object "a"."""
    r = reeld_keys()

    def presigned(key):
        env = dict(os.environ, REELD_DATA_DIR=r.data_dir, REELD_LISTEN=r.addr)
        out = subprocess.run([reeld_bin(), "presign", "--method", "PUT", "--bucket", "staging",
                              "--key", key], env=env, capture_output=True, text=True, timeout=20)
        assert out.returncode == 0, out.stderr
        return out.stdout.strip()

    def put(url):
        req = urllib.request.Request(url, data=b"12345", method="PUT",
                                     headers={"Content-Type": "video/mp4"})
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                return resp.status, b""
        except urllib.error.HTTPError as e:
            return e.code, e.read()

    assert put(presigned("clash"))[0] == 200
    status, body = put(presigned("clash/inner"))
    assert status == 409 and b"KeyConflict" in body, (status, body)


# ---- uploads that are never promoted ----

def test_unpromoted_uploads_expire_and_staging_is_cleaned(reeld_keys):
    r = reeld_keys(REELD_UPLOAD_EXPIRE_SEC="1")
    data = os.urandom(3000)
    old, url = new_upload(r, len(data), ACME)
    req = urllib.request.Request(url, data=data, method="PUT",
                                 headers={"Content-Type": "video/mp4"})
    urllib.request.urlopen(req, timeout=10).close()
    assert staged(r, old) == data
    kept, kurl = new_upload(r, len(data), ACME)
    req = urllib.request.Request(kurl, data=data, method="PUT",
                                 headers={"Content-Type": "video/mp4"})
    urllib.request.urlopen(req, timeout=10).close()
    st, job = api(r, "POST", f"/api/assets/{kept}/promote", None, ACME)
    assert st == 202, job
    deadline = time.time() + 15
    while time.time() < deadline:
        st, asset = api(r, "GET", f"/api/assets/{old}", None, ACME)
        if asset.get("state") == "expired":
            break
        time.sleep(0.2)
    assert asset["state"] == "expired", asset
    assert staged(r, old) is None
    st, err = api(r, "POST", f"/api/assets/{old}/promote", None, ACME)
    assert st == 410 and err["error"]["code"] == "upload_expired", err
    # The promoted one is not touched.
    st, asset = api(r, "GET", f"/api/assets/{kept}", None, ACME)
    assert asset["state"] != "expired", asset
    metrics = urllib.request.urlopen(f"http://{r.addr}/metrics", timeout=5).read().decode()
    assert re.search(r"^reeld_uploads_expired_total [1-9]", metrics, re.M), metrics[-2000:]
