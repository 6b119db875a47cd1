"""The HTTP/1.1 listener over raw sockets: keep-alive, pipelining, HEAD, 100-continue, chunked
bodies, every limit and error, timeouts (shortened through REELD_HTTP_*_MS), half-closed
connections, the connection cap, graceful stop, and /metrics checked by promtool."""
import json
import os
import re
import signal
import socket
import subprocess
import time

import pytest


def connect(r, timeout=5.0):
    s = socket.create_connection(("127.0.0.1", r.port), timeout=timeout)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


class Reader:
    """Reads HTTP/1.1 responses off a socket, keeping what follows for the next one."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = b""

    def _fill(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            raise EOFError("connection closed")
        self.buf += chunk

    def response(self, head_only=False):
        while b"\r\n\r\n" not in self.buf:
            self._fill()
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ")[1])
        headers = {}
        for line in lines[1:]:
            k, v = line.split(":", 1)
            headers[k.strip().lower()] = v.strip()
        body = b""
        if head_only or status in (100, 204, 304):
            return status, headers, body
        if headers.get("transfer-encoding") == "chunked":
            while True:
                while b"\r\n" not in self.buf:
                    self._fill()
                size_line, self.buf = self.buf.split(b"\r\n", 1)
                size = int(size_line, 16)
                while len(self.buf) < size + 2:
                    self._fill()
                body += self.buf[:size]
                self.buf = self.buf[size + 2:]
                if size == 0:
                    break
        else:
            n = int(headers.get("content-length", "0"))
            while len(self.buf) < n:
                self._fill()
            body, self.buf = self.buf[:n], self.buf[n:]
        return status, headers, body

    def closed(self, timeout=3.0):
        """True when the peer closes (EOF or reset) within `timeout` with nothing more sent."""
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(65536)
        except ConnectionResetError:
            return True
        except socket.timeout:
            return False
        return data == b""


def get(path, extra=""):
    return f"GET {path} HTTP/1.1\r\nHost: t\r\n{extra}\r\n".encode()


def error_code(body):
    return json.loads(body)["error"]["code"]


@pytest.fixture
def reeld(reeld_factory):
    return reeld_factory()


def test_ping_has_date_server_and_json(reeld):
    s = connect(reeld)
    s.sendall(get("/api/ping"))
    status, h, body = Reader(s).response()
    assert status == 200
    assert json.loads(body) == {"ok": True}
    assert h["content-type"] == "application/json"
    assert h["server"] == "reeld"
    assert h["date"].endswith(" GMT") and len(h["date"]) == 29
    assert h["content-length"] == str(len(body))


def test_keep_alive_reuses_the_connection(reeld):
    s = connect(reeld)
    rd = Reader(s)
    for _ in range(5):
        s.sendall(get("/api/ping"))
        status, h, body = rd.response()
        assert status == 200 and "connection" not in h
    s.sendall(get("/api/health"))
    status, _, body = rd.response()
    assert status == 200 and json.loads(body)["ok"] is True


def test_pipelined_requests_answered_in_order(reeld):
    s = connect(reeld)
    reqs = get("/api/ping") + get("/nope") + get("/api/health") + \
        b"POST /api/ping HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nabc" + get("/api/ping")
    s.sendall(reqs)
    rd = Reader(s)
    got = [rd.response() for _ in range(5)]
    assert [g[0] for g in got] == [200, 404, 200, 200, 200]
    assert json.loads(got[2][2])["uptime_s"] >= 0
    assert json.loads(got[3][2]) == {"ok": True, "body_bytes": 3}


def test_many_pipelined_requests_in_one_write(reeld):
    s = connect(reeld)
    n = 100
    s.sendall(get("/api/ping") * n)
    rd = Reader(s)
    for _ in range(n):
        assert rd.response()[0] == 200


def test_pipelined_request_split_across_writes(reeld):
    s = connect(reeld)
    data = get("/api/ping") * 3
    for i in range(0, len(data), 7):
        s.sendall(data[i:i + 7])
        time.sleep(0.002)
    rd = Reader(s)
    assert [rd.response()[0] for _ in range(3)] == [200, 200, 200]


def test_head_has_length_but_no_body(reeld):
    s = connect(reeld)
    rd = Reader(s)
    s.sendall(b"HEAD /api/ping HTTP/1.1\r\nHost: t\r\n\r\n" + get("/api/ping"))
    status, h, body = rd.response(head_only=True)
    assert status == 200 and h["content-length"] == "11" and body == b""
    status, _, body = rd.response()  # the next response starts right after the head
    assert status == 200 and body == b'{"ok":true}'


def test_head_of_an_unknown_route_has_no_body(reeld):
    s = connect(reeld)
    rd = Reader(s)
    s.sendall(b"HEAD /nope HTTP/1.1\r\nHost: t\r\n\r\n" + get("/api/ping"))
    status, h, _ = rd.response(head_only=True)
    assert status == 404 and int(h["content-length"]) > 0
    status, _, body = rd.response()
    assert status == 200 and body == b'{"ok":true}'


def test_connection_close_is_honoured(reeld):
    s = connect(reeld)
    s.sendall(get("/api/ping", "Connection: close\r\n") + get("/api/ping"))
    rd = Reader(s)
    status, h, _ = rd.response()
    assert status == 200 and h["connection"] == "close"
    assert rd.buf == b"" and rd.closed()


def test_http10_closes_by_default(reeld):
    s = connect(reeld)
    s.sendall(b"GET /api/ping HTTP/1.0\r\n\r\n")
    rd = Reader(s)
    status, h, _ = rd.response()
    assert status == 200 and h["connection"] == "close" and rd.closed()


def test_unknown_route_is_404_json_and_keeps_the_connection(reeld):
    s = connect(reeld)
    rd = Reader(s)
    s.sendall(get("/api/nothing-here"))
    status, h, body = rd.response()
    assert status == 404 and h["content-type"] == "application/json"
    assert error_code(body) == "not_found" and json.loads(body)["error"]["message"]
    s.sendall(get("/api/ping"))
    assert rd.response()[0] == 200


def test_wrong_method_is_405_with_allow(reeld):
    s = connect(reeld)
    s.sendall(b"DELETE /metrics HTTP/1.1\r\nHost: t\r\n\r\n")
    status, h, body = Reader(s).response()
    assert status == 405 and h["allow"] == "GET, HEAD"
    assert error_code(body) == "method_not_allowed"


@pytest.mark.parametrize("raw", [
    b"GET / HTTP/1.1\nHost: t\n\n",
    b"GET  /api/ping HTTP/1.1\r\nHost: t\r\n\r\n",
    b"GET /api/ping HTTP/1.1\r\nHost : t\r\n\r\n",
    b"GET /api/ping HTTP/1.1\r\nHost: t\r\n folded\r\n\r\n",
    b"GET /api/ping HTTP/3.0\r\nHost: t\r\n\r\n",
    b"GET /api/ping HTTP/1.1\r\n\r\n",  # no Host
    b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n",  # TLS on a plain port
])
def test_bad_syntax_is_400_and_close(reeld, raw):
    s = connect(reeld)
    s.sendall(raw)
    rd = Reader(s)
    status, h, body = rd.response()
    assert status == 400 and h["connection"] == "close" and error_code(body) == "bad_request"
    assert rd.closed()


@pytest.mark.parametrize("raw", [
    # CL.TE / TE.CL
    b"POST /api/ping HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\n"
    b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /api/ping HTTP/1.1\r\nHost: t\r\n\r\n",
    b"POST /api/ping HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n"
    b"Content-Length: 3\r\n\r\n0\r\n\r\n",
    # two differing lengths
    b"POST /api/ping HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
    # an obfuscated transfer coding
    b"POST /api/ping HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n",
    # a bad chunk size
    b"POST /api/ping HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n4x\r\nabcd\r\n0\r\n\r\n",
    b"POST /api/ping HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n-1\r\n\r\n",
    b"POST /api/ping HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
    b"ffffffffffffffffff\r\n",
])
def test_request_smuggling_is_400_and_close(reeld, raw):
    s = connect(reeld)
    s.sendall(raw)
    rd = Reader(s)
    status, h, body = rd.response()
    assert status == 400 and h["connection"] == "close"
    assert rd.closed(), "nothing may follow: a smuggled request must not be answered"


def test_chunked_body_then_pipelined_request(reeld):
    s = connect(reeld)
    s.sendall(b"POST /api/ping HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
              b"4\r\nWiki\r\n5;ext=1\r\npedia\r\n0\r\nTrailer: x\r\n\r\n" + get("/api/ping"))
    rd = Reader(s)
    status, _, body = rd.response()
    assert status == 200 and json.loads(body)["body_bytes"] == 9
    assert rd.response()[0] == 200


def test_tiny_chunks_cost_the_decoded_size_not_the_raw_one(reeld):
    s = connect(reeld)
    body = b"1\r\nx\r\n" * 60000  # 360 KB on the wire, 60000 bytes decoded (limit 64 KiB)
    s.sendall(b"POST /api/ping HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n" +
              body + b"0\r\n\r\n")
    status, _, resp = Reader(s).response()
    assert status == 200 and json.loads(resp)["body_bytes"] == 60000


def test_client_that_writes_without_reading_is_paused_not_dropped(reeld):
    import threading
    s = connect(reeld, timeout=20)
    n = 30000
    req = get("/api/ping")
    sender = threading.Thread(target=lambda: s.sendall(req * n))
    sender.start()
    time.sleep(1.0)  # the server's output and then its input back up meanwhile
    rd = Reader(s)
    for _ in range(n):
        assert rd.response()[0] == 200
    sender.join()
    assert "http_recv_paused" in reeld.logs()


def test_content_length_body_in_pieces(reeld):
    s = connect(reeld)
    s.sendall(b"POST /api/ping HTTP/1.1\r\nHost: t\r\nContent-Length: 10000\r\n\r\n")
    for _ in range(10):
        s.sendall(b"x" * 1000)
        time.sleep(0.01)
    status, _, body = Reader(s).response()
    assert status == 200 and json.loads(body)["body_bytes"] == 10000


def test_body_over_the_route_limit_is_413(reeld):
    s = connect(reeld)
    s.sendall(b"POST /api/ping HTTP/1.1\r\nHost: t\r\nContent-Length: 1000000\r\n\r\n")
    rd = Reader(s)
    status, h, body = rd.response()
    assert status == 413 and error_code(body) == "body_too_large"
    assert h["connection"] == "close"


def test_chunked_body_over_the_limit_is_413(reeld):
    s = connect(reeld)
    s.sendall(b"POST /api/ping HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n")
    rd = Reader(s)
    try:
        for _ in range(20):
            s.sendall(b"2000\r\n" + b"y" * 0x2000 + b"\r\n")
    except (BrokenPipeError, ConnectionResetError):
        pass
    status, _, body = rd.response()
    assert status == 413


def test_expect_100_continue(reeld):
    s = connect(reeld)
    s.sendall(b"POST /api/ping HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n"
              b"Expect: 100-continue\r\n\r\n")
    rd = Reader(s)
    status, _, _ = rd.response()
    assert status == 100
    s.sendall(b"hello")
    status, _, body = rd.response()
    assert status == 200 and json.loads(body)["body_bytes"] == 5


def test_expect_100_continue_with_the_body_already_sent_gets_no_100(reeld):
    s = connect(reeld)
    s.sendall(b"POST /api/ping HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n"
              b"Expect: 100-continue\r\n\r\nhello" + get("/api/ping"))
    rd = Reader(s)
    status, _, body = rd.response()
    assert status == 200 and json.loads(body)["body_bytes"] == 5
    assert rd.response()[0] == 200


def test_expect_100_continue_over_limit_gets_413_not_100(reeld):
    s = connect(reeld)
    s.sendall(b"POST /api/ping HTTP/1.1\r\nHost: t\r\nContent-Length: 10000000\r\n"
              b"Expect: 100-continue\r\n\r\n")
    status, _, _ = Reader(s).response()
    assert status == 413


def test_headers_over_16k_are_431(reeld):
    s = connect(reeld)
    s.sendall(b"GET /api/ping HTTP/1.1\r\nHost: t\r\nX-Big: " + b"a" * 17000 + b"\r\n\r\n")
    rd = Reader(s)
    status, h, body = rd.response()
    assert status == 431 and error_code(body) == "headers_too_large"
    assert h["connection"] == "close"


def test_headers_over_16k_without_end_are_431(reeld):
    s = connect(reeld)
    s.sendall(b"GET /api/ping HTTP/1.1\r\nHost: t\r\nX-Big: " + b"a" * 17000)
    status, _, _ = Reader(s).response()
    assert status == 431


def test_more_than_100_headers_are_431(reeld):
    s = connect(reeld)
    hdrs = "".join(f"X-{i}: v\r\n" for i in range(101))
    s.sendall(f"GET /api/ping HTTP/1.1\r\nHost: t\r\n{hdrs}\r\n".encode())
    status, _, body = Reader(s).response()
    assert status == 431
    s = connect(reeld)
    hdrs = "".join(f"X-{i}: v\r\n" for i in range(99))  # with Host: exactly 100
    s.sendall(f"GET /api/ping HTTP/1.1\r\nHost: t\r\n{hdrs}\r\n".encode())
    assert Reader(s).response()[0] == 200


def test_slowloris_gets_408(reeld_factory):
    r = reeld_factory(env={"REELD_HTTP_HEADER_TIMEOUT_MS": "2000"})
    s = connect(r)
    start = time.time()
    rd = Reader(s)
    req = get("/api/ping")
    status = None
    for i in range(len(req)):
        try:
            s.sendall(req[i:i + 1])
        except (BrokenPipeError, ConnectionResetError):
            break
        s.settimeout(1.0)  # one byte a second, while watching for the answer
        try:
            rd._fill()
            status, h, body = rd.response()
            break
        except socket.timeout:
            continue
    assert status == 408 and error_code(body) == "timeout"
    assert 1.5 <= time.time() - start < 4.0
    assert rd.closed()


def test_silent_new_connection_is_closed_after_the_header_timeout(reeld_factory):
    r = reeld_factory(env={"REELD_HTTP_HEADER_TIMEOUT_MS": "500"})
    s = connect(r)
    start = time.time()
    assert Reader(s).closed(timeout=3.0)
    assert 0.4 <= time.time() - start < 2.0


def test_idle_keep_alive_is_closed(reeld_factory):
    r = reeld_factory(env={"REELD_HTTP_IDLE_TIMEOUT_MS": "1000"})
    s = connect(r)
    rd = Reader(s)
    s.sendall(get("/api/ping"))
    assert rd.response()[0] == 200
    start = time.time()
    assert rd.closed(timeout=4.0)
    assert 0.8 <= time.time() - start < 3.0


def connection_buffers(r):
    m = re.search(r"^reeld_http_connection_buffers (\d+)$", scrape(r), re.M)
    assert m, "reeld_http_connection_buffers is exported"
    return int(m.group(1))


def test_idle_keep_alive_connections_give_their_buffers_back(reeld):
    """Viewers hold keep-alive connections for the length of a video: one that has answered and
    waits holds no buffer (the gauge counts the input, output and request-slot blocks of
    open connections), and asks again as before."""
    held = []
    for _ in range(40):
        s = connect(reeld)
        s.sendall(get("/api/ping"))
        assert Reader(s).response()[0] == 200
        held.append(s)
    # The scrape's own connection holds what it is being answered with (at most 3 blocks).
    deadline = time.time() + 10
    n = connection_buffers(reeld)
    while n > 3 and time.time() < deadline:
        time.sleep(0.25)
        n = connection_buffers(reeld)
    assert n <= 3, f"{n} blocks still held by 40 idle connections"
    for s in held:
        s.sendall(get("/api/ping"))
        assert Reader(s).response()[0] == 200
        s.close()


def test_half_closed_client_still_gets_its_answers(reeld):
    s = connect(reeld)
    s.sendall(get("/api/ping") + get("/api/health"))
    s.shutdown(socket.SHUT_WR)
    rd = Reader(s)
    assert rd.response()[0] == 200
    assert rd.response()[0] == 200
    assert rd.closed()


def test_half_closed_mid_request_is_closed(reeld):
    s = connect(reeld)
    s.sendall(b"GET /api/ping HTTP/1.1\r\nHost")
    s.shutdown(socket.SHUT_WR)
    assert Reader(s).closed()


def test_connection_cap_answers_503(reeld_factory):
    r = reeld_factory(env={"REELD_HTTP_MAX_CONNS": "4", "REELD_CORES": "1"})
    held = []
    for _ in range(4):
        s = connect(r)
        s.sendall(get("/api/ping"))
        assert Reader(s).response()[0] == 200
        held.append(s)
    s = connect(r)
    s.sendall(get("/api/ping"))
    rd = Reader(s)
    status, h, body = rd.response()
    assert status == 503 and error_code(body) == "too_many_connections"
    assert h["retry-after"] == "1" and rd.closed()
    held.pop().close()
    time.sleep(0.2)
    s = connect(r)
    s.sendall(get("/api/ping"))
    assert Reader(s).response()[0] == 200
    s.close()
    held.pop().close()
    time.sleep(0.2)
    metrics = scrape(r)
    assert "reeld_http_rejected_connections_total 1" in metrics


def scrape(r):
    s = connect(r)
    s.sendall(get("/metrics"))
    status, h, body = Reader(s).response()
    assert status == 200
    assert h["content-type"].startswith("text/plain; version=0.0.4")
    return body.decode()


def test_metrics_pass_promtool_and_cover_the_basics(reeld):
    s = connect(reeld)
    rd = Reader(s)
    for path in ("/api/ping", "/api/health", "/nope"):
        s.sendall(get(path))
        rd.response()
    text = scrape(reeld)
    check = subprocess.run(["promtool", "check", "metrics"], input=text.encode(),
                           capture_output=True)
    assert check.returncode == 0, check.stdout.decode() + check.stderr.decode()
    for want in (
        'reeld_http_requests_total{route="/api/ping",code="200"} 1',
        'reeld_http_requests_total{route="unmatched",code="404"} 1',
        'reeld_http_request_duration_seconds_bucket{route="/api/ping",le="+Inf"} 1',
        "reeld_http_open_connections ",
        'reeld_actor_mailbox_depth{actor="http_listener"}',
        'reeld_actor_restarts_total{actor="metrics"} 0',
        'reeld_loop_busy_seconds_total{loop="0"}',
        "reeld_process_resident_memory_bytes ",
        "reeld_uptime_seconds ",
        'reeld_build_info{version="',
    ):
        assert want in text, want


def test_health_shape(reeld):
    s = connect(reeld)
    s.sendall(get("/api/health"))
    status, _, body = Reader(s).response()
    doc = json.loads(body)
    assert status == 200 and doc["ok"] is True
    assert isinstance(doc["uptime_s"], int)
    assert doc["memory"]["rss_bytes"] > 0
    assert isinstance(doc["queue"], dict)


def test_graceful_stop_finishes_the_request_in_flight(reeld_factory):
    r = reeld_factory()
    idle = connect(r)
    idle_rd = Reader(idle)
    idle.sendall(get("/api/ping"))
    assert idle_rd.response()[0] == 200
    busy = connect(r)
    busy.sendall(b"POST /api/ping HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\nhello")
    time.sleep(0.2)
    r.proc.send_signal(signal.SIGTERM)
    assert idle_rd.closed(), "an idle connection is closed at once"
    deadline = time.time() + 5  # every loop closes its listening socket (slower under load)
    with pytest.raises(OSError):  # no longer accepting
        while time.time() < deadline:
            socket.create_connection(("127.0.0.1", r.port), timeout=1.0).close()
            time.sleep(0.05)
    assert r.proc.poll() is None, "it waits for the request in flight"
    busy.sendall(b"world")
    status, h, body = Reader(busy).response()
    assert status == 200 and json.loads(body)["body_bytes"] == 10
    assert h["connection"] == "close"
    busy.close()
    assert r.proc.wait(timeout=10) == 0


def test_bad_listener_setting_stops_with_one_line():
    from conftest import reeld_bin
    env = dict(os.environ, REELD_HTTP_MAX_CONNS="lots", REELD_LISTEN="127.0.0.1:1")
    p = subprocess.run([reeld_bin(), "serve"], env=env, capture_output=True, timeout=10)
    assert p.returncode == 2
    lines = p.stderr.decode().strip().splitlines()
    assert lines == ["reeld: REELD_HTTP_MAX_CONNS: must be an integer from 1 to 1000000 (got 'lots')"]


def test_unbindable_address_stops_with_exit_1():
    from conftest import reeld_bin
    env = dict(os.environ, REELD_LISTEN="192.0.2.1:8080", REELD_LOG="error")  # not ours
    p = subprocess.run([reeld_bin(), "serve"], env=env, capture_output=True, timeout=10)
    assert p.returncode == 1 and b"HTTP listener" in p.stderr
    # Everything else had started: it is all stopped and freed (the sanitizer build says so).
    assert b"LeakSanitizer" not in p.stderr, p.stderr.decode()[-2000:]


def test_unreachable_store_stops_with_exit_1_and_one_line(tmp_path):
    from conftest import reeld_bin
    from servers import free_port
    env = dict(os.environ, POSTGRES_URL="postgres://reeld@127.0.0.1:1/x", REELD_LOG="error",
               REELD_LISTEN=f"127.0.0.1:{free_port()}", REELD_DATA_DIR=str(tmp_path))
    p = subprocess.run([reeld_bin(), "serve"], env=env, capture_output=True, timeout=30)
    err = p.stderr.decode()
    assert p.returncode == 1, err
    assert "reeld: job system: POSTGRES_URL: cannot connect" in err
    assert "LeakSanitizer" not in err, err[-2000:]
