"""The edge in front of an S3 origin (a moto server on loopback that checks every signature):
one GetObject per cold segment however many clients ask at once, playlists fetched every time,
a missing object is a 404 that caches nothing."""
import os
import socket
import threading

from test_edge import burst, fetches, get, link, metric, wait_cached, KEY
from test_s3_client import moto  # noqa: F401 (the fixture)


def gets(r):
    _, _, body = get(r, "/metrics")
    total = 0.0
    for line in body.decode().splitlines():
        if line.startswith("reeld_s3_requests_total{") and 'op="GetObject"' in line:
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_s3_origin_single_flight(moto, reeld_factory):  # noqa: F811
    s3 = moto["s3"]
    s3.create_bucket(Bucket="previews")
    data = os.urandom(4 << 20)
    s3.put_object(Bucket="previews", Key="a1/hls/v0/s0.ts", Body=data)
    s3.put_object(Bucket="previews", Key="a1/hls/master.m3u8", Body=b"#EXTM3U\n")
    r = reeld_factory(env={"S3_ENDPOINT": moto["endpoint"], "S3_REGION": "us-east-1",
                           "S3_ACCESS_KEY_ID": moto["id"], "S3_SECRET_ACCESS_KEY": moto["secret"],
                           "EDGE_SIGNING_KEY": KEY, "REELD_DRAIN_SEC": "2"})
    target = link("a1", "v0/s0.ts")
    results = burst(r, target)
    assert all(st == b"200" and body == data for st, body in results)
    assert fetches(r) == 1 and gets(r) == 1
    wait_cached(r, 1)
    status, h, body = get(r, target, {"Range": "bytes=-100"})
    assert status == 206 and h["x-cache"] == "HIT" and body == data[-100:]

    for _ in range(2):
        status, h, body = get(r, link("a1", "master.m3u8"))
        assert status == 200 and body == b"#EXTM3U\n" and h["x-cache"] == "MISS"
    assert gets(r) == 3

    assert get(r, link("a1", "v0/missing.ts"))[0] == 404
    assert fetches(r, "not_found") == 1
    assert metric(r, "reeld_edge_cache_objects") == 1


def test_s3_origin_silent_or_down(reeld_factory):
    """An origin that accepts and never answers ends at FETCH_TIMEOUT_MS (504); one that refuses
    connections fails (502, or 504 if its retries outlast the timeout); nothing is cached."""
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(64)
    down = socket.socket()
    down.bind(("127.0.0.1", 0))  # bound, never listening: connections are refused
    env = {"S3_REGION": "us-east-1", "S3_ACCESS_KEY_ID": "AKIDEXAMPLE",
           "S3_SECRET_ACCESS_KEY": "secret", "EDGE_SIGNING_KEY": KEY, "FETCH_TIMEOUT_MS": "500",
           "REELD_DRAIN_SEC": "2"}
    try:
        r = reeld_factory(env=dict(env, S3_ENDPOINT=f"http://127.0.0.1:{silent.getsockname()[1]}"))
        status, _, body = get(r, link("a1", "v0/s0.ts"))
        assert status == 504 and b"origin_timeout" in body
        r2 = reeld_factory(env=dict(env, S3_ENDPOINT=f"http://127.0.0.1:{down.getsockname()[1]}"))
        assert get(r2, link("a1", "v0/s0.ts"))[0] in (502, 504)
        for x in (r, r2):
            assert metric(x, "reeld_edge_cache_objects") == 0
            assert fetches(x, "error") == 1
    finally:
        silent.close()
        down.close()


def test_s3_origin_failing_mid_body(reeld_factory):
    """The origin sends the head and part of the body, then fails every retry: the client got a
    200 head already, so its body ends short and the connection closes; nothing is cached."""
    import http.server
    import socketserver

    size, sent = 1 << 20, 100 * 1024

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self):
            if self.headers.get("Range"):
                self.send_response(500)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("Content-Length", str(size))
            self.end_headers()
            self.wfile.write(b"x" * sent)
            self.wfile.flush()
            self.close_connection = True

        def log_message(self, *args):
            pass

    srv = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
    srv.daemon_threads = True
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        r = reeld_factory(env={"S3_ENDPOINT": f"http://127.0.0.1:{srv.server_address[1]}",
                               "S3_REGION": "us-east-1", "S3_ACCESS_KEY_ID": "AKIDEXAMPLE",
                               "S3_SECRET_ACCESS_KEY": "secret", "EDGE_SIGNING_KEY": KEY,
                               "FETCH_TIMEOUT_MS": "3000", "REELD_DRAIN_SEC": "2"})
        s = socket.create_connection(("127.0.0.1", r.port), timeout=10)
        s.sendall(f"GET {link('a1', 'v0/s0.ts')} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        buf = b""
        while True:
            chunk = s.recv(1 << 16)
            if not chunk:
                break  # the connection closed: the truncation is visible
            buf += chunk
        s.close()
        head, _, body = buf.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200") and f"Content-Length: {size}".encode() in head
        assert len(body) < size  # (the origin gathers 256 KiB before handing bytes on)
        assert metric(r, "reeld_edge_cache_objects") == 0
        assert fetches(r, "error") == 1
    finally:
        srv.shutdown()
        srv.server_close()
