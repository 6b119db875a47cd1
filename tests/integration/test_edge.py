"""The edge over loopback: signed /hls links (tampering, expiry, key rotation, the embedded key),
path traversal, Range, 304s, single-flight under 100 concurrent clients, LRU eviction, a
restart that keeps the cache, origin failures that cache nothing, and playlists that are never
stale: kept in memory only while their file's watch has heard nothing. The origin is the fs one:
files under DATA_DIR/blobs/previews/{asset}/hls/."""
import hashlib
import hmac
import http.client
import json
import os
import re
import socket
import stat
import threading
import time
import urllib.parse

import pytest

KEY = "edge-test-key-0123456789"
OLD_KEY = "edge-old-key-0123456789"


def sign(asset, exp, key=KEY):
    msg = f"reeld-edge-v1\n{exp}\n{asset}".encode()
    return hmac.new(key.encode(), msg, hashlib.sha256).hexdigest()


def link(asset, path, exp=None, key=KEY):
    exp = exp if exp is not None else int(time.time()) + 3600
    return f"/hls/{exp}/{sign(asset, exp, key)}/{asset}/{path}"


def put(r, asset, path, data):
    p = os.path.join(r.data_dir, "blobs", "previews", asset, "hls", path)
    os.makedirs(os.path.dirname(p), exist_ok=True)
    with open(p, "wb") as f:
        f.write(data)
    return p


def promoted_asset(r):
    """An asset uploaded and promoted through the API (open embedded mode): the API answers
    /api/assets/{id}/playback for assets of the caller's org that have been promoted."""
    c = http.client.HTTPConnection("127.0.0.1", r.port, timeout=10)
    body = json.dumps({"filename": "a.mp4", "content_type": "video/mp4", "size": 4})
    c.request("POST", "/api/uploads", body=body, headers={"Content-Type": "application/json"})
    up = json.loads(c.getresponse().read())
    u = urllib.parse.urlsplit(up["upload"]["url"])
    c.request("PUT", f"{u.path}?{u.query}", body=b"mp4!", headers={"Content-Type": "video/mp4"})
    resp = c.getresponse()
    resp.read()
    assert resp.status == 200
    c.request("POST", f"/api/assets/{up['asset_id']}/promote")
    resp = c.getresponse()
    resp.read()
    assert resp.status == 202
    c.close()
    return up["asset_id"]


def get(r, target, headers=None, method="GET"):
    """One request with the target sent exactly as given (http.client does not normalise)."""
    c = http.client.HTTPConnection("127.0.0.1", r.port, timeout=10)
    try:
        c.request(method, target, headers=headers or {})
        resp = c.getresponse()
        body = resp.read()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, body
    finally:
        c.close()


def metric(r, name):
    _, _, body = get(r, "/metrics")
    m = re.search(rf"^{re.escape(name)} (\S+)$", body.decode(), re.M)
    return float(m.group(1)) if m else None


def fetches(r, result="ok"):
    return metric(r, f'reeld_edge_origin_fetches_total{{result="{result}"}}')


def inotify_watches(r):
    """The watches reeld's inotify instances hold (each is an "inotify wd:" line of fdinfo)."""
    n = 0
    fds = f"/proc/{r.proc.pid}/fd"
    for fd in os.listdir(fds):
        try:
            if os.readlink(f"{fds}/{fd}") != "anon_inode:inotify":
                continue
            with open(f"/proc/{r.proc.pid}/fdinfo/{fd}") as f:
                n += sum(line.startswith("inotify wd:") for line in f)
        except FileNotFoundError:
            continue  # closed meanwhile
    return n


def wait_cached(r, n):
    """Waits until n objects are in the cache: a response can end just before its file is
    renamed into place."""
    deadline = time.time() + 5
    while metric(r, "reeld_edge_cache_objects") != n and time.time() < deadline:
        time.sleep(0.02)
    assert metric(r, "reeld_edge_cache_objects") == n


def cache_files(r):
    root = os.path.join(r.data_dir, "cache")
    return [os.path.join(d, f) for d, _, fs in os.walk(root) for f in fs
            if not d.endswith("tmp")]


@pytest.fixture
def edge(reeld_factory):
    def start(**env):
        e = {"EDGE_SIGNING_KEY": KEY, "REELD_DRAIN_SEC": "2"}
        e.update(env)
        return reeld_factory(env=e)
    return start


SEG = os.urandom(300 * 1024)


def test_tokens_tampering_and_expiry(edge):
    r = edge()
    put(r, "a1", "v0/s0.ts", SEG)
    good = link("a1", "v0/s0.ts")
    assert get(r, good)[0] == 200
    exp = int(time.time()) + 3600
    sig = sign("a1", exp)
    flipped = sig[:5] + ("0" if sig[5] != "0" else "1") + sig[6:]
    assert get(r, f"/hls/{exp}/{flipped}/a1/v0/s0.ts")[0] == 403
    assert get(r, f"/hls/{exp + 1}/{sig}/a1/v0/s0.ts")[0] == 403   # longer life
    assert get(r, f"/hls/{exp}/{sig}/a2/v0/s0.ts")[0] == 403       # another asset
    assert get(r, f"/hls/{exp}/{sig[:32]}/a1/v0/s0.ts")[0] == 403  # truncated
    assert get(r, f"/hls/0{exp}/{sig}/a1/v0/s0.ts")[0] == 403      # respelt expiry
    assert get(r, link("a1", "v0/s0.ts", key="another-key-0123456"))[0] == 403
    past = int(time.time()) - 5
    status, _, body = get(r, link("a1", "v0/s0.ts", exp=past))
    assert status == 410 and json.loads(body)["error"]["code"] == "link_expired"
    assert metric(r, 'reeld_edge_token_rejected_total{reason="expired"}') == 1
    assert metric(r, 'reeld_edge_token_rejected_total{reason="bad"}') == 6


def test_key_rotation(edge):
    r = edge(EDGE_SIGNING_KEY_PREVIOUS=OLD_KEY, EDGE_KEY_GRACE_SEC="3600")
    put(r, "a1", "v0/s0.ts", SEG)
    assert get(r, link("a1", "v0/s0.ts", key=OLD_KEY))[0] == 200
    assert get(r, link("a1", "v0/s0.ts"))[0] == 200
    r2 = edge(EDGE_SIGNING_KEY_PREVIOUS=OLD_KEY, EDGE_KEY_GRACE_SEC="0")  # window over
    put(r2, "a1", "v0/s0.ts", SEG)
    assert get(r2, link("a1", "v0/s0.ts", key=OLD_KEY))[0] == 403
    assert get(r2, link("a1", "v0/s0.ts"))[0] == 200


def test_embedded_key_survives_restart(reeld_factory):
    r = reeld_factory(env={"REELD_CORES": "1"})
    keyfile = os.path.join(r.data_dir, "edge.key")
    assert stat.S_IMODE(os.stat(keyfile).st_mode) == 0o600
    aid = promoted_asset(r)
    put(r, aid, "master.m3u8", b"#EXTM3U\n")
    status, _, body = get(r, f"/api/assets/{aid}/playback")
    assert status == 200
    doc = json.loads(body)
    url = doc["url"]
    assert url.startswith(f"http://{r.addr}/hls/") and url.endswith(f"/{aid}/master.m3u8")
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", doc["expires_at"])
    target = url[len(f"http://{r.addr}"):]
    assert get(r, target)[0] == 200
    assert r.stop() == 0
    r2 = reeld_factory(env={"REELD_CORES": "1"}, data_dir=r.data_dir)
    assert get(r2, target)[0] == 200
    assert get(r2, "/api/assets/a..b/playback")[0] == 404  # not an asset of the caller's


def test_playback_public_base(edge):
    r = edge(EDGE_PUBLIC_BASE="https://cdn.example.com/")
    aid = promoted_asset(r)
    doc = json.loads(get(r, f"/api/assets/{aid}/playback")[2])
    m = re.fullmatch(rf"https://cdn\.example\.com/hls/(\d+)/([0-9a-f]{{64}})/{aid}/master\.m3u8",
                     doc["url"])
    assert m and m.group(2) == sign(aid, int(m.group(1)))


def test_edge_only_node_signs_nothing(reeld_factory):
    """Only the API signs playback links (auth, org, promoted asset): a node that runs the edge
    alone has no playback route at all, so no id gets a link from it."""
    r = reeld_factory(env={"EDGE_SIGNING_KEY": KEY, "REELD_DRAIN_SEC": "2"},
                      args=["--roles", "edge"])
    put(r, "x", "master.m3u8", b"#EXTM3U\n")
    for aid in ("x", "a1", "anything"):
        status, _, body = get(r, f"/api/assets/{aid}/playback")
        assert status == 404, (aid, status, body)
        assert b"/hls/" not in body
    assert get(r, link("x", "master.m3u8"))[0] == 200  # the edge itself still serves


def test_path_traversal(edge):
    r = edge()
    put(r, "a1", "v0/s0.ts", SEG)
    secret = os.path.join(r.data_dir, "blobs", "previews", "secret.ts")
    with open(secret, "wb") as f:
        f.write(b"secret")
    exp = int(time.time()) + 3600
    for asset, path in [("a1", "../secret.ts"), ("a1", "v0/../../secret.ts"),
                        ("a1", "%2e%2e/secret.ts"), ("a1", "v0/%2e%2e/%2e%2e/secret.ts"),
                        ("a1", "..%2fsecret.ts"), ("a1", "./v0/s0.ts"), ("a1", "v0//s0.ts"),
                        ("..", "secret.ts"), ("%2e%2e", "secret.ts"), ("a1%2f..", "x.ts"),
                        ("a1", "v0/s0.ts%00"), ("a1", ".hidden")]:
        status, _, body = get(r, f"/hls/{exp}/{sign('a1', exp)}/{asset}/{path}")
        assert status in (400, 404), (asset, path, status)
        assert b"secret" != body
    assert fetches(r) == 0 and fetches(r, "not_found") == 0


def test_range_and_head(edge):
    r = edge()
    data = bytes(range(256)) * 4096  # 1 MiB
    put(r, "a1", "v0/s0.ts", data)
    url = link("a1", "v0/s0.ts")
    for first in ("MISS", "HIT"):
        status, h, body = get(r, url, {"Range": "bytes=0-99"})
        assert status == 206 and body == data[:100] and h["x-cache"] == first
        assert h["content-range"] == f"bytes 0-99/{len(data)}"
        wait_cached(r, 1)
    status, h, body = get(r, url, {"Range": "bytes=-10"})                # suffix
    assert status == 206 and body == data[-10:]
    assert h["content-range"] == f"bytes {len(data) - 10}-{len(data) - 1}/{len(data)}"
    status, h, body = get(r, url, {"Range": "bytes=1000000-"})           # open-ended
    assert status == 206 and body == data[1000000:]
    status, h, body = get(r, url, {"Range": "bytes=1048000-99999999"})   # end past the end
    assert status == 206 and body == data[1048000:]
    status, h, body = get(r, url, {"Range": f"bytes={len(data)}-"})      # starts past the end
    assert status == 416 and h["content-range"] == f"bytes */{len(data)}"
    status, h, body = get(r, url, {"Range": "bytes=0-9,20-29"})          # several: all of it
    assert status == 200 and body == data
    status, h, body = get(r, url, {"Range": "bytes=9-0"})                # malformed: ignored
    assert status == 200 and body == data
    status, h, body = get(r, url, method="HEAD")
    assert status == 200 and body == b"" and h["content-length"] == str(len(data))
    assert h["content-type"] == "video/mp2t"
    assert h["cache-control"] == "public, max-age=31536000, immutable"


def test_errors_are_never_cached(edge):
    """Only a segment's 200/206/304 is immutable: a 416 (and every other error the edge gives)
    says no-store, so no shared cache keeps it in place of the object."""
    r = edge()
    data = os.urandom(1000)
    put(r, "a1", "v0/s0.ts", data)
    url = link("a1", "v0/s0.ts")
    for _ in ("MISS", "HIT"):
        status, h, _ = get(r, url, {"Range": "bytes=5000-"})
        assert status == 416 and h["content-range"] == "bytes */1000"
        assert h["cache-control"] == "no-store", h
        assert "etag" not in h and "last-modified" not in h
        assert get(r, url)[0] == 200
        wait_cached(r, 1)
    exp = int(time.time()) + 3600
    for target, want in [(link("a1", "v0/missing.ts"), 404),
                         (link("a1", "v0/s0.ts", exp=int(time.time()) - 5), 410),
                         (f"/hls/{exp}/{'0' * 64}/a1/v0/s0.ts", 403),
                         (f"/hls/{exp}/{sign('a1', exp)}/a1/.hidden", 400)]:
        status, h, _ = get(r, target)
        assert status == want and h.get("cache-control") == "no-store", (target, status, h)
    status, h, _ = get(r, url, {"If-None-Match": get(r, url)[1]["etag"]})
    assert status == 304 and h["cache-control"] == "public, max-age=31536000, immutable"


def test_range_on_a_miss(edge):
    r = edge()
    data = os.urandom(700 * 1024)
    put(r, "a1", "v0/s1.ts", data)
    status, h, body = get(r, link("a1", "v0/s1.ts"), {"Range": "bytes=300000-400000"})
    assert status == 206 and h["x-cache"] == "MISS" and body == data[300000:400001]
    wait_cached(r, 1)  # the whole object is stored though the client asked for part of it
    status, h, body = get(r, link("a1", "v0/s1.ts"))
    assert status == 200 and h["x-cache"] == "HIT" and body == data
    assert fetches(r) == 1


def test_not_modified(edge):
    r = edge()
    put(r, "a1", "v0/s0.ts", SEG)
    url = link("a1", "v0/s0.ts")
    status, h, _ = get(r, url)
    etag, lm = h["etag"], h["last-modified"]
    for hit in range(2):
        status, h2, body = get(r, url, {"If-None-Match": etag})
        assert status == 304 and body == b"" and h2["etag"] == etag
        assert get(r, url, {"If-None-Match": f'"other", W/{etag}'})[0] == 304
        assert get(r, url, {"If-Modified-Since": lm})[0] == 304
    assert get(r, url, {"If-None-Match": '"other"'})[0] == 200
    assert get(r, url, {"If-Modified-Since": "Thu, 01 Jan 1970 00:00:00 GMT"})[0] == 200
    # If-None-Match decides when both are sent.
    assert get(r, url, {"If-None-Match": '"other"', "If-Modified-Since": lm})[0] == 200


def test_content_types(edge):
    r = edge()
    for path, ctype in [("v0/s.ts", "video/mp2t"), ("v0/s.m4s", "video/mp4"),
                        ("v0/init.mp4", "video/mp4"), ("poster.jpg", "image/jpeg"),
                        ("v0/index.m3u8", "application/vnd.apple.mpegurl")]:
        put(r, "a1", path, b"x" * 10)
        status, h, _ = get(r, link("a1", path))
        assert status == 200 and h["content-type"] == ctype, path


def burst(r, target, n=100, timeout=30):
    """n clients ask for `target` at once (every request is out before any answer is read);
    returns [(status, body)] in client order."""
    req = f"GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode()
    socks = [socket.create_connection(("127.0.0.1", r.port), timeout=timeout) for _ in range(n)]
    results = [None] * len(socks)

    def read(i, s):
        buf = b""
        while True:
            chunk = s.recv(1 << 20)
            if not chunk:
                break
            buf += chunk
        s.close()
        head, _, body = buf.partition(b"\r\n\r\n")
        results[i] = (head.split(b" ")[1], body)

    for s in socks:
        s.sendall(req)
    threads = [threading.Thread(target=read, args=(i, s)) for i, s in enumerate(socks)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def test_single_flight_100_clients(edge):
    r = edge()
    data = os.urandom(8 << 20)
    put(r, "a1", "v0/big.ts", data)
    results = burst(r, link("a1", "v0/big.ts"))
    assert all(st == b"200" and body == data for st, body in results)
    assert fetches(r) == 1
    hits = metric(r, "reeld_edge_cache_hits_total")
    misses = metric(r, "reeld_edge_cache_misses_total")
    assert hits + misses == 100
    assert metric(r, "reeld_edge_coalesced_waiters_total") == misses - 1


def test_lru_eviction(edge):
    r = edge(REELD_CORES="1", CACHE_MAX_BYTES="1M")
    segs = {f"s{i}.ts": os.urandom(300 * 1024) for i in range(1, 5)}
    for name, data in segs.items():
        put(r, "a1", name, data)

    def fetch(name):
        status, h, body = get(r, link("a1", name))
        assert status == 200 and body == segs[name]
        if h["x-cache"] == "MISS":
            deadline = time.time() + 5
            while not os.path.exists(stored(name)) and time.time() < deadline:
                time.sleep(0.02)
        return h["x-cache"]

    def stored(name):
        key = hashlib.sha256(f"a1/{name}".encode()).hexdigest()[:32]
        return os.path.join(r.data_dir, "cache", key[:2], key)

    assert [fetch(n) for n in ("s1.ts", "s2.ts", "s3.ts")] == ["MISS"] * 3
    assert fetch("s1.ts") == "HIT"   # s2 is now the least recently used
    assert fetch("s4.ts") == "MISS"  # 1200 KiB > 1 MiB: s2 goes
    deadline = time.time() + 5  # the eviction follows the rename, its unlink the eviction
    while (metric(r, "reeld_edge_cache_evictions_total") != 1 or os.path.exists(stored("s2.ts"))) \
            and time.time() < deadline:
        time.sleep(0.02)
    assert metric(r, "reeld_edge_cache_evictions_total") == 1
    assert not os.path.exists(stored("s2.ts"))
    assert [fetch(n) for n in ("s1.ts", "s3.ts", "s4.ts")] == ["HIT"] * 3
    assert fetch("s2.ts") == "MISS"
    assert metric(r, "reeld_edge_cache_bytes") <= 1 << 20
    deadline = time.time() + 5  # the eviction's unlink follows the rename
    while len(cache_files(r)) != 3 and time.time() < deadline:
        time.sleep(0.02)
    assert len(cache_files(r)) == 3


def test_lru_order_across_loops(edge):
    """Hits served on a loop that does not own the object still count for its LRU order (they
    reach the owner in batches within 50 ms). One keep-alive connection stays on one loop; the
    objects of both shards go through it, so one shard's hits all come from the other loop."""
    if os.cpu_count() < 2:
        pytest.skip("needs 2 cores")
    r = edge(REELD_CORES="2", CACHE_MAX_BYTES="2M")  # 1 MiB per loop's shard

    def owner(name):
        return int(hashlib.sha256(f"a1/{name}".encode()).hexdigest()[:16], 16) % 2

    groups = [[n for n in (f"s{i}.ts" for i in range(200)) if owner(n) == o][:4] for o in (0, 1)]
    for g in groups:
        for name in g:
            put(r, "a1", name, os.urandom(300 * 1024))
    conn = http.client.HTTPConnection("127.0.0.1", r.port, timeout=10)

    def fetch(name):
        conn.request("GET", link("a1", name))
        resp = conn.getresponse()
        resp.read()
        assert resp.status == 200
        return resp.getheader("X-Cache")

    for n, name in enumerate([g[i] for i in range(3) for g in groups], 1):
        assert fetch(name) == "MISS"
        wait_cached(r, n)
    for _ in range(5):
        assert fetch(groups[0][0]) == "HIT" and fetch(groups[1][0]) == "HIT"
    time.sleep(0.2)
    for n, g in enumerate(groups, 1):
        assert fetch(g[3]) == "MISS"  # evicts g[1], not the g[0] just used
        deadline = time.time() + 5
        while metric(r, "reeld_edge_cache_evictions_total") != n and time.time() < deadline:
            time.sleep(0.02)
    assert [fetch(g[0]) for g in groups] == ["HIT", "HIT"]
    assert [fetch(g[1]) for g in groups] == ["MISS", "MISS"]
    conn.close()


def test_restart_keeps_cache(edge):
    r = edge()
    p = put(r, "a1", "v0/s0.ts", SEG)
    url = link("a1", "v0/s0.ts")
    assert get(r, url)[1]["x-cache"] == "MISS"
    assert r.stop() == 0
    os.unlink(p)  # the origin no longer has it: only the cache can answer
    r2 = edge(REELD_DATA_DIR=r.data_dir)
    r2.data_dir = r.data_dir
    status, h, body = get(r2, url)
    assert status == 200 and h["x-cache"] == "HIT" and body == SEG
    assert metric(r2, "reeld_edge_cache_objects") == 1
    assert fetches(r2) == 0


def test_origin_missing_and_failing(edge):
    r = edge(FETCH_TIMEOUT_MS="1000")
    url = link("a1", "v0/s0.ts")
    assert get(r, url)[0] == 404
    assert fetches(r, "not_found") == 1
    # A symlink loop: the origin fails (ELOOP) rather than lacking the object.
    loop = os.path.join(r.data_dir, "blobs", "previews", "a1", "hls", "v0", "s1.ts")
    os.makedirs(os.path.dirname(loop), exist_ok=True)
    os.symlink(loop, loop)
    status, _, body = get(r, link("a1", "v0/s1.ts"))
    assert status == 502 and json.loads(body)["error"]["code"] == "origin_failed"
    # A FIFO: io_uring opens it without waiting when the path is in the dentry cache (then it
    # is not a regular file: 404), else in a worker that waits for a writer, until
    # FETCH_TIMEOUT_MS ends the fetch (504).
    fifo = os.path.join(r.data_dir, "blobs", "previews", "a1", "hls", "v0", "s2.ts")
    os.mkfifo(fifo)
    t0 = time.time()
    status = get(r, link("a1", "v0/s2.ts"))[0]
    assert status in (404, 504) and time.time() - t0 < 5
    assert fetches(r, "error") + fetches(r, "not_found") == 3
    assert cache_files(r) == []
    # Nothing was poisoned: once the origin has the objects, they are served.
    os.unlink(loop)
    os.unlink(fifo)
    for name in ("s0.ts", "s1.ts", "s2.ts"):
        put(r, "a1", f"v0/{name}", SEG)
        status, h, body = get(r, link("a1", f"v0/{name}"))
        assert status == 200 and h["x-cache"] == "MISS" and body == SEG
    wait_cached(r, 3)
    assert len(cache_files(r)) == 3


def test_playlist_path_not_a_file(edge):
    """A device node or a directory where a playlist should be: 404, and no watch left on it
    (nobody reads through a watch on what is not a regular file)."""
    r = edge(REELD_CORES="1")
    hls = os.path.join(r.data_dir, "blobs", "previews", "a6", "hls")
    os.makedirs(os.path.join(hls, "v1", "index.m3u8"))
    assert get(r, link("a6", "v1/index.m3u8"))[0] == 404
    os.makedirs(os.path.join(hls, "v0"))
    try:
        os.mknod(os.path.join(hls, "v0", "index.m3u8"), stat.S_IFCHR | 0o600, os.makedev(1, 3))
    except PermissionError:
        pytest.skip("no CAP_MKNOD here: a device node cannot be made")
    assert get(r, link("a6", "v0/index.m3u8"))[0] == 404
    assert inotify_watches(r) == 0


def test_playlists_never_stale(edge):
    """Playlists are `no-cache` for clients, and the edge answers each request with the file as
    it is when the request comes. A read that ended earlier answers (X-Cache: HIT, no origin
    read) only while the watch on its file has heard nothing; each kind of change is seen by the
    very next request: a write in place of the same size, an append, a truncation, a rename over
    it, its removal, a new file. Nothing goes to the disk cache."""
    r = edge(REELD_CORES="1")
    p = put(r, "a1", "v0/index.m3u8", b"#EXTM3U\n#one\n")
    url = link("a1", "v0/index.m3u8")
    status, h, body = get(r, url)
    assert status == 200 and body == b"#EXTM3U\n#one\n" and h["x-cache"] == "MISS"
    for _ in range(3):
        status, h, body = get(r, url)
        assert status == 200 and body == b"#EXTM3U\n#one\n"
        assert h["cache-control"] == "no-cache" and h["x-cache"] == "HIT"
        assert h["content-type"] == "application/vnd.apple.mpegurl"
    assert fetches(r) == 1 and metric(r, "reeld_edge_playlist_kept_hits_total") == 3

    def now(expect):
        status, h, body = get(r, url)
        assert (status, body) == (200, expect) and h["x-cache"] == "MISS", (status, body, h)

    write_in_place(p, b"#EXTM3U\n#two\n")  # same size, same second
    now(b"#EXTM3U\n#two\n")
    with open(p, "ab") as f:
        f.write(b"#more\n")
    now(b"#EXTM3U\n#two\n#more\n")
    os.truncate(p, 8)
    now(b"#EXTM3U\n")
    rename_over(p, b"#EXTM3U\n#renamed\n")
    now(b"#EXTM3U\n#renamed\n")
    os.remove(p)
    assert get(r, url)[0] == 404
    put(r, "a1", "v0/index.m3u8", b"#EXTM3U\n#back\n")
    now(b"#EXTM3U\n#back\n")
    assert get(r, url)[1]["x-cache"] == "HIT"
    assert fetches(r) == 6 and fetches(r, "not_found") == 1
    assert cache_files(r) == []
    assert metric(r, "reeld_edge_cache_misses_total") == 0


def keep_asking(r, url, stop, answers, timeout=10):
    """A client on one kept-alive connection asking for `url` until `stop` is set; each
    (status, body) goes to `answers`. Started, and returned."""
    def run():
        c = http.client.HTTPConnection("127.0.0.1", r.port, timeout=timeout)
        while not stop.is_set():
            c.request("GET", url)
            resp = c.getresponse()
            answers.append((resp.status, resp.read()))
        c.close()
    t = threading.Thread(target=run)
    t.start()
    return t


def rename_over(p, data):
    with open(p + ".new", "wb") as f:
        f.write(data)
    os.replace(p + ".new", p)


def write_in_place(p, data):
    with open(p, "r+b") as f:
        f.write(data)


def test_playlist_change_then_get_at_once(edge):
    """Read-your-writes without a pause, every loop: 300 changes (in place at one size, and
    renames over the file, alternately), each followed at once by a GET on a new connection
    (any loop's listener) or on one kept-alive connection, while a second client keeps the
    playlist hot. Each answer is the version just written."""
    r = edge()
    name = "v0/index.m3u8"
    p = put(r, "a2", name, b"#EXTM3U\n#v00000\n")
    url = link("a2", name)
    stop = threading.Event()
    seen = []
    t = keep_asking(r, url, stop, seen)
    keep = http.client.HTTPConnection("127.0.0.1", r.port, timeout=10)
    try:
        for i in range(1, 301):
            data = b"#EXTM3U\n#v%05d\n" % i
            (write_in_place if i % 2 else rename_over)(p, data)
            if i % 3:
                status, _, body = get(r, url)
            else:
                keep.request("GET", url)
                resp = keep.getresponse()
                status, body = resp.status, resp.read()
            assert (status, body) == (200, data), i
    finally:
        stop.set()
        t.join()
        keep.close()
    assert seen and all(st == 200 and b.startswith(b"#EXTM3U\n#v") for st, b in seen)
    assert metric(r, "reeld_edge_playlist_kept_hits_total") > 0


def changes_under_reads(r, asset, body_len, write, after=0):
    """Four clients keep reads of one playlist (`body_len` bytes and a version line) under way on
    one loop while it changes 40 times through `write(path, data)`, each change followed at once
    by a GET that must bring it; then `after` more changes, with no reads under way, each seen
    by the next GET. Every client's answer must be a whole version."""
    name = "v0/index.m3u8"
    line = b"#EXTINF:4.000,\nseg%06d.ts\n"
    body = b"".join(line % i for i in range(body_len // len(line % 0) + 1))[:body_len]

    def version(i):
        return b"#EXTM3U\n#v%05d\n" % i + body  # same size each time

    p = put(r, asset, name, version(0))
    url = link(asset, name)
    stop = threading.Event()
    seen = []
    threads = [keep_asking(r, url, stop, seen, timeout=20) for _ in range(4)]
    try:
        time.sleep(0.2)
        for i in range(1, 41):
            write(p, version(i))
            status, _, data = get(r, url)
            assert status == 200 and data[:16] == version(i)[:16], (i, data[:16])
    finally:
        stop.set()
        for t in threads:
            t.join()
    for i in range(41, 41 + after):
        write(p, version(i))
        assert get(r, url)[2][:16] == version(i)[:16], i
    bad = [(st, b[:20]) for st, b in seen if st != 200 or not b.startswith(b"#EXTM3U\n#v")]
    assert seen and not bad, bad[:3]
    return url


def test_playlist_change_during_a_read(edge):
    """A request that comes after a change never joins a read that opened the file before it:
    reads of a 2 MiB playlist (too large to keep, so read for each turn, over several) under way
    while the file is renamed over (changes_under_reads)."""
    r = edge(REELD_CORES="1")
    changes_under_reads(r, "a4", 2 * 1024 * 1024 - 24, rename_over)


def test_playlist_rewritten_in_place_during_reads(edge):
    """Reads of one file share its watch: reads of a 0.9 MiB playlist (kept once read, and read
    over several turns) under way while it is rewritten in place (changes_under_reads). Reads
    that began before a change end beside reads that began after it, through the one watch;
    whichever is kept still hears the next change, also once the reads are over, and then one
    watch is left, held by the kept read. (A watch removed while a read still used it would
    serve nothing stale, its IN_IGNORED reads as a change; one never removed stays counted.)"""
    r = edge(REELD_CORES="1")
    url = changes_under_reads(r, "a5", 900 * 1024, write_in_place, after=3)
    assert get(r, url)[1]["x-cache"] == "HIT"
    assert inotify_watches(r) == 1


def test_playlists_kept_within_bounds(edge):
    """Kept playlists hold at most 4 MiB a shard: the oldest go (read again when asked), the
    newest stay; one over 1 MiB is never kept."""
    r = edge(REELD_CORES="1")
    line = b"#EXTINF:4.000,\nseg%06d.ts\n"
    big = b"#EXTM3U\n" + b"".join(line % i for i in range(30000))  # ~0.8 MiB
    assert 768 * 1024 < len(big) < 1024 * 1024
    for n in range(6):
        put(r, "a3", f"v{n}/index.m3u8", big)
    put(r, "a3", "huge/index.m3u8", big + big)
    for n in range(6):
        assert get(r, link("a3", f"v{n}/index.m3u8"))[2] == big
    assert fetches(r) == 6
    assert get(r, link("a3", "v5/index.m3u8"))[1]["x-cache"] == "HIT"  # the newest: kept
    assert fetches(r) == 6
    assert get(r, link("a3", "v0/index.m3u8"))[1]["x-cache"] == "MISS"  # the oldest: gone
    assert fetches(r) == 7
    for _ in range(2):
        status, h, body = get(r, link("a3", "huge/index.m3u8"))
        assert status == 200 and body == big + big and h["x-cache"] == "MISS"
    assert fetches(r) == 9
    # Each watch goes with the last read through it: four kept (v3, v4, v5, v0: 0.84 MB each),
    # none for the huge one nor for those let go. A kept one still hears its file change.
    assert inotify_watches(r) == 4
    changed = big.replace(b"seg000000", b"seg999999")
    for n in (0, 5):
        put(r, "a3", f"v{n}/index.m3u8", changed)
        assert get(r, link("a3", f"v{n}/index.m3u8"))[2] == changed
    assert inotify_watches(r) == 4


def test_playlist_burst_each_whole(edge):
    """Playlists are answered once all of them is in (head and body in one response): 100
    clients at once each get the exact bytes, a small one and one larger than a response
    carries whole (then streamed after the fetch); a range of a playlist is cut from what the
    fetch brought; HEAD has no body."""
    r = edge(REELD_CORES="1")
    small = b"#EXTM3U\n" + b"".join(b"#EXTINF:4.000,\nseg%05d.ts\n" for i in range(4000))
    large = small * 4  # over 256 KiB, several of the origin's chunks
    put(r, "a1", "v0/index.m3u8", small)
    put(r, "a1", "v1/index.m3u8", large)
    for name, data in (("v0/index.m3u8", small), ("v1/index.m3u8", large)):
        results = burst(r, link("a1", name))
        assert all(st == b"200" and body == data for st, body in results), name
    status, h, body = get(r, link("a1", "v0/index.m3u8"), {"Range": "bytes=100000-100099"})
    assert status == 206 and body == small[100000:100100]
    assert h["content-range"] == f"bytes 100000-100099/{len(small)}"
    status, h, body = get(r, link("a1", "v1/index.m3u8"), method="HEAD")
    assert status == 200 and body == b"" and h["content-length"] == str(len(large))


def test_restart_rebuilds_lru_order(edge):
    r = edge(REELD_CORES="1", CACHE_MAX_BYTES="1M")
    segs = {f"s{i}.ts": os.urandom(300 * 1024) for i in range(1, 5)}
    for name, data in segs.items():
        put(r, "a1", name, data)
    for n, name in enumerate(("s1.ts", "s2.ts", "s3.ts"), 1):
        assert get(r, link("a1", name))[0] == 200
        wait_cached(r, n)
        time.sleep(0.05)  # the kernel stamps atime from a coarse clock: keep the three apart
    assert r.stop() == 0
    r2 = edge(REELD_CORES="1", CACHE_MAX_BYTES="1M", REELD_DATA_DIR=r.data_dir)
    r2.data_dir = r.data_dir
    assert metric(r2, "reeld_edge_cache_objects") == 3
    assert get(r2, link("a1", "s4.ts"))[1]["x-cache"] == "MISS"  # evicts s1, stored first
    deadline = time.time() + 5  # s4 is stored (and s1 evicted) just after its response
    while metric(r2, "reeld_edge_cache_evictions_total") != 1 and time.time() < deadline:
        time.sleep(0.02)
    wait_cached(r2, 3)
    assert [get(r2, link("a1", n))[1]["x-cache"] for n in ("s2.ts", "s3.ts", "s4.ts")] == \
        ["HIT"] * 3
    assert get(r2, link("a1", "s1.ts"))[1]["x-cache"] == "MISS"


def test_bad_public_base_stops_start(tmp_path):
    import subprocess
    from conftest import free_port, reeld_bin
    env = dict(os.environ, REELD_DATA_DIR=str(tmp_path), REELD_LISTEN=f"127.0.0.1:{free_port()}",
               EDGE_PUBLIC_BASE='https://cdn.example.com/"x')
    p = subprocess.run([reeld_bin(), "serve"], env=env, capture_output=True, text=True, timeout=20)
    assert p.returncode == 1 and "EDGE_PUBLIC_BASE" in p.stderr
