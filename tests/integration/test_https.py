"""HTTPS on the listener (REELD_TLS_CERT/REELD_TLS_KEY) with the clients users have: curl,
Python's ssl/urllib/http.client and requests against a throwaway CA; openssl s_client and
hand-made ClientHellos for what must be refused (SSLv3, TLS 1.0/1.1, CBC, RC4); no SNI; ALPN;
session resumption; a truncated handshake, garbage after a ClientHello, plain HTTP to the
HTTPS port; many handshakes at once; large bodies both ways; cache hits (file parts) through
the engine; the certificate reloaded on SIGHUP while a connection stays open; the
HTTP → HTTPS redirect listener; and the start-up refusals of bad certificate settings."""
import hashlib
import hmac
import http.client
import json
import os
import re
import signal
import socket
import ssl
import struct
import subprocess
import threading
import time
import urllib.parse
import urllib.request

import pytest

from conftest import free_port, reeld_bin
from tlsca import TestCA

EDGE_KEY = "edge-test-key-0123456789"


@pytest.fixture(scope="module")
def ca(tmp_path_factory):
    return TestCA(tmp_path_factory.mktemp("ca"))


@pytest.fixture
def tls(ca, reeld_factory):
    """Starts reeld with HTTPS from the test CA; returns (reeld, ssl context that trusts it)."""
    def start(kind="ec", **env):
        chain, key = ca.issue(f"srv-{kind}-{free_port()}", kind=kind)
        e = {"REELD_TLS_CERT": chain, "REELD_TLS_KEY": key, "REELD_CORES": "2"}
        e.update(env)
        r = reeld_factory(env=e)
        r.chain, r.key, r.ca = chain, key, ca.cert
        ctx = ssl.create_default_context(cafile=ca.cert)
        return r, ctx
    return start


def https(r, ctx, method, path, body=None, headers=None, host="localhost"):
    c = http.client.HTTPSConnection(host, r.port, context=ctx, timeout=20)
    try:
        c.request(method, path, body=body, headers=headers or {})
        resp = c.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        c.close()


def metric(r, ctx, name):
    _, _, body = https(r, ctx, "GET", "/metrics")
    m = re.search(rf"^{re.escape(name)} (\S+)$", body.decode(), re.M)
    return float(m.group(1)) if m else None


def s_client(port, *args, data=b""):
    """openssl s_client's output (stdout + stderr) for one connection to 127.0.0.1:port."""
    p = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{port}", *args],
                       input=data, capture_output=True, timeout=20)
    return (p.stdout + p.stderr).decode(errors="replace")


def client_hello(version, suites, sni=None):
    """A ClientHello record offering `version` (0x0300 SSLv3 ... 0x0303 TLS 1.2) and `suites`,
    with the extensions a TLS 1.2 ECDHE hello needs (groups, point formats, signatures)."""
    ext = b""
    groups = struct.pack(">HHH", 4, 0x0017, 0x0018)  # P-256, P-384
    ext += struct.pack(">HH", 0x000a, len(groups)) + groups
    ext += struct.pack(">HHBB", 0x000b, 2, 1, 0)  # uncompressed points
    sigs = struct.pack(">HHHH", 6, 0x0403, 0x0804, 0x0401)
    ext += struct.pack(">HH", 0x000d, len(sigs)) + sigs
    if sni:
        name = sni.encode()
        entry = struct.pack(">BH", 0, len(name)) + name
        lst = struct.pack(">H", len(entry)) + entry
        ext += struct.pack(">HH", 0x0000, len(lst)) + lst
    body = struct.pack(">H", version) + os.urandom(32) + b"\x00"
    body += struct.pack(">H", 2 * len(suites)) + b"".join(struct.pack(">H", s) for s in suites)
    body += b"\x01\x00" + struct.pack(">H", len(ext)) + ext
    hs = b"\x01" + struct.pack(">I", len(body))[1:] + body
    return b"\x16" + struct.pack(">HH", min(version, 0x0301), len(hs)) + hs


def first_record(port, data, timeout=10):
    """Sends `data` raw and returns the first record's content type (22 handshake, 21 alert),
    or None when the server closed without a record."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        head = b""
        while len(head) < 5:
            chunk = s.recv(5 - len(head))
            if not chunk:
                return None
            head += chunk
        return head[0]


AEAD = [0xc02b, 0xc02f, 0xcca9, 0xcca8]  # ECDHE-{ECDSA,RSA}-AES128-GCM, ChaCha20 (both)
CBC = [0xc009, 0xc013, 0xc023, 0xc027, 0x002f, 0x0035]
RC4 = [0xc007, 0xc011, 0x0005, 0x0004]


@pytest.mark.parametrize("kind", ["ec", "rsa"])
def test_curl_python_and_requests_over_https(tls, kind):
    r, ctx = tls(kind)
    out = subprocess.run(["curl", "-sS", "--cacert", r.ca, "-o", "/dev/null", "-w", "%{http_code} %{http_version} %{scheme}",
                          f"https://localhost:{r.port}/api/health"],
                         capture_output=True, text=True, timeout=20)
    assert out.stdout == "200 1.1 HTTPS", (out.stdout, out.stderr)
    # urllib sends Connection: close; the answer must still arrive whole.
    with urllib.request.urlopen(f"https://127.0.0.1:{r.port}/api/health", context=ctx,
                                timeout=10) as resp:
        assert resp.status == 200 and json.loads(resp.read())["ok"] is True
    # Keep-alive: several requests on one connection, and one pipelined pair.
    c = http.client.HTTPSConnection("localhost", r.port, context=ctx, timeout=10)
    for _ in range(5):
        c.request("GET", "/api/health")
        resp = c.getresponse()
        assert resp.status == 200 and resp.read()
    c.close()
    with ctx.wrap_socket(socket.create_connection(("127.0.0.1", r.port)),
                         server_hostname="localhost") as s:
        s.sendall(b"GET /api/health HTTP/1.1\r\nHost: x\r\n\r\n" * 2)
        data = b""
        while data.count(b"HTTP/1.1 200") < 2:
            chunk = s.recv(65536)
            assert chunk, data
            data += chunk
    import requests
    resp = requests.get(f"https://localhost:{r.port}/api/health",
                        verify=r.ca, timeout=10)
    assert resp.status_code == 200
    # HTTP/1.0 over TLS: answered, then closed.
    with ctx.wrap_socket(socket.create_connection(("127.0.0.1", r.port)),
                         server_hostname="localhost") as s:
        s.sendall(b"GET /api/health HTTP/1.0\r\n\r\n")
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        assert data.startswith(b"HTTP/1.1 200") and b'"ok":true' in data


def test_protocol_and_suite_refusals(tls):
    r, ctx = tls("ec")
    port = r.port
    # Hand-made hellos: what the server must refuse whatever a client library allows.
    assert first_record(port, client_hello(0x0303, AEAD, sni="localhost")) == 22  # the control
    for version in (0x0300, 0x0301, 0x0302):  # SSLv3, TLS 1.0, TLS 1.1
        assert first_record(port, client_hello(version, AEAD + CBC)) in (21, None), hex(version)
    assert first_record(port, client_hello(0x0303, CBC)) in (21, None)  # CBC only
    assert first_record(port, client_hello(0x0303, RC4)) in (21, None)  # RC4 only
    # openssl s_client, allowed to offer old versions (seclevel 0).
    for flag in ("-tls1", "-tls1_1"):
        out = s_client(port, flag, "-cipher", "DEFAULT@SECLEVEL=0")
        assert "Cipher is (NONE)" in out, out
    out = s_client(port, "-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-SHA256:ECDHE-ECDSA-AES128-SHA")
    assert "Cipher is (NONE)" in out and "handshake failure" in out, out
    # What is accepted: TLS 1.2, an AEAD suite, the server's order, ALPN http/1.1.
    out = s_client(port, "-servername", "localhost", "-alpn", "h2,http/1.1")
    assert "Protocol  : TLSv1.2" in out and "ECDHE-ECDSA-AES128-GCM-SHA256" in out, out
    assert "ALPN protocol: http/1.1" in out, out
    out = s_client(port, "-tls1_2", "-cipher", "ECDHE-ECDSA-CHACHA20-POLY1305")
    assert "ECDHE-ECDSA-CHACHA20-POLY1305" in out, out
    # No SNI (a client that connects by IP address): the one certificate is sent anyway.
    out = s_client(port, "-noservername")
    assert "CN = localhost" in out and "ECDHE-ECDSA-AES128-GCM-SHA256" in out, out
    # h2 only: no protocol chosen, the connection still works as HTTP/1.1.
    only_h2 = ssl.create_default_context(cafile=r.ca)
    only_h2.set_alpn_protocols(["h2"])
    with only_h2.wrap_socket(socket.create_connection(("127.0.0.1", port)),
                             server_hostname="localhost") as s:
        assert s.selected_alpn_protocol() is None
    failed = metric(r, ctx, 'reeld_tls_handshakes_total{outcome="failed"}')
    assert failed >= 7, failed
    assert "tls_handshake_failed" in r.logs()


def test_session_resumption_across_connections(tls):
    r, ctx = tls("ec")
    reused = 0
    session = None
    for _ in range(6):  # two loops: resumption must work whichever one accepts
        with ctx.wrap_socket(socket.create_connection(("127.0.0.1", r.port)),
                             server_hostname="localhost", session=session) as s:
            s.sendall(b"GET /api/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            while s.recv(65536):
                pass
            reused += s.session_reused
            session = s.session
    assert reused == 5, reused


def test_broken_handshakes_leave_the_server_serving(tls):
    r, ctx = tls("ec", REELD_HTTP_HEADER_TIMEOUT_MS="1500")
    hello = client_hello(0x0303, AEAD, sni="localhost")
    # Half a ClientHello, then nothing: cut off at the head deadline.
    s = socket.create_connection(("127.0.0.1", r.port), timeout=10)
    s.sendall(hello[: len(hello) // 2])
    t0 = time.time()
    assert s.recv(100) == b""
    assert 1.0 < time.time() - t0 < 8
    s.close()
    # Half a hello, then the client hangs up.
    s = socket.create_connection(("127.0.0.1", r.port))
    s.sendall(hello[:20])
    s.close()
    # A whole hello followed by garbage where its next records should be: an alert or a close.
    with socket.create_connection(("127.0.0.1", r.port), timeout=10) as s:
        s.sendall(hello + os.urandom(3000))
        data = b""
        while True:
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            data += chunk
        # Its ServerHello, an alert, or nothing (the engine read the garbage before the
        # ServerHello could leave, and failed): never a hang, never application data.
        assert data[:1] in (b"", b"\x15", b"\x16"), data[:16]
    # Garbage instead of a hello; a byte at a time; a huge record length.
    for junk in (os.urandom(600), b"\x16\x03\x03\xff\xff" + os.urandom(100), b"\x00" * 64):
        assert first_record(r.port, junk) in (21, None)
    # Plain HTTP to the HTTPS port gets a plain answer that says so.
    c = http.client.HTTPConnection("127.0.0.1", r.port, timeout=10)
    c.request("GET", "/api/health")
    resp = c.getresponse()
    assert resp.status == 400 and b"https_required" in resp.read()
    c.close()
    assert https(r, ctx, "GET", "/api/health")[0] == 200


def test_many_handshakes_at_once(tls):
    r, ctx = tls("ec")
    n = 200
    results = []
    gate = threading.Barrier(n)

    def one():
        try:
            gate.wait(timeout=30)
            results.append(https(r, ctx, "GET", "/api/health")[0])
        except Exception as e:  # noqa: BLE001
            results.append(repr(e))

    threads = [threading.Thread(target=one) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert results.count(200) == n, [x for x in results if x != 200][:5]
    assert metric(r, ctx, 'reeld_tls_handshakes_total{outcome="ok"}') >= n


def test_large_bodies_both_ways_and_cache_hits(tls):
    r, ctx = tls("ec", EDGE_SIGNING_KEY=EDGE_KEY)
    env = dict(os.environ, REELD_DATA_DIR=r.data_dir, REELD_LISTEN=r.addr,
               REELD_TLS_CERT=r.chain, REELD_TLS_KEY=r.key)

    def presign(method, key):
        out = subprocess.run([reeld_bin(), "presign", "--method", method, "--bucket", "staging",
                              "--key", key], env=env, capture_output=True, text=True,
                             timeout=10, check=True)
        return out.stdout.strip()

    put = presign("PUT", "big.mp4")
    assert put.startswith(f"https://{r.addr}/blob/"), put
    data = os.urandom(9 << 20) + b"tail"
    u = urllib.parse.urlsplit(put)
    st, hdrs, _ = https(r, ctx, "PUT", f"{u.path}?{u.query}", body=data,
                        headers={"Content-Type": "video/mp4"}, host="127.0.0.1")
    assert st == 200, st
    g = urllib.parse.urlsplit(presign("GET", "big.mp4"))
    st, _, body = https(r, ctx, "GET", f"{g.path}?{g.query}", host="127.0.0.1")
    assert st == 200 and hashlib.sha256(body).digest() == hashlib.sha256(data).digest()
    # The edge: the second GET is a cache hit, sent as a file part (read, then encrypted).
    seg = os.urandom(3 << 20)
    p = os.path.join(r.data_dir, "blobs", "previews", "a1", "hls", "v0", "s0.ts")
    os.makedirs(os.path.dirname(p), exist_ok=True)
    with open(p, "wb") as f:
        f.write(seg)
    exp = int(time.time()) + 3600
    sig = hmac.new(EDGE_KEY.encode(), f"reeld-edge-v1\n{exp}\na1".encode(),
                   hashlib.sha256).hexdigest()
    target = f"/hls/{exp}/{sig}/a1/v0/s0.ts"
    c = http.client.HTTPSConnection("localhost", r.port, context=ctx, timeout=20)
    for _ in range(3):  # miss, then hits, on one connection
        c.request("GET", target)
        resp = c.getresponse()
        assert resp.status == 200 and resp.read() == seg
    c.request("GET", target, headers={"Range": "bytes=1000000-1999999"})
    resp = c.getresponse()
    assert resp.status == 206 and resp.read() == seg[1000000:2000000]
    c.close()
    # A client that stops reading a hit does not hold the server: others are served.
    s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", r.port)),
                        server_hostname="localhost")
    s.sendall(f"GET {target} HTTP/1.1\r\nHost: x\r\n\r\n".encode() * 8)
    time.sleep(0.5)
    assert https(r, ctx, "GET", "/api/health")[0] == 200
    s.close()


def test_sighup_reloads_the_certificate_and_keeps_connections(tls, ca):
    r, ctx = tls("ec")

    def serial():
        with ctx.wrap_socket(socket.create_connection(("127.0.0.1", r.port)),
                             server_hostname="localhost") as s:
            der = s.getpeercert(binary_form=True)
        out = subprocess.run(["openssl", "x509", "-inform", "DER", "-noout", "-serial"],
                             input=der, capture_output=True, check=True).stdout
        return out.strip()

    notafter = metric(r, ctx, "reeld_tls_certificate_expiry_timestamp_seconds")
    assert 86400 < notafter - time.time() <= 2 * 86400 + 60  # the test CA issues for 2 days
    before = serial()
    keep = http.client.HTTPSConnection("localhost", r.port, context=ctx, timeout=10)
    keep.request("GET", "/api/health")
    assert keep.getresponse().read()
    chain, key = ca.issue("renewed", days=30)
    os.replace(chain, r.chain)
    os.replace(key, r.key)
    r.proc.send_signal(signal.SIGHUP)
    deadline = time.time() + 10
    while "tls_reloaded" not in r.logs() and time.time() < deadline:
        time.sleep(0.05)
    assert "tls_reloaded" in r.logs()
    after = serial()
    assert after != before
    # The metric an expiry alert reads follows the reload.
    assert metric(r, ctx, "reeld_tls_certificate_expiry_timestamp_seconds") > notafter + 20 * 86400
    keep.request("GET", "/api/health")  # the open connection was not dropped
    resp = keep.getresponse()
    assert resp.status == 200 and resp.read()
    # A renewal that went wrong: the old certificate stays, the process stays up.
    with open(r.chain, "w") as f:
        f.write("not a certificate\n")
    r.proc.send_signal(signal.SIGHUP)
    deadline = time.time() + 10
    while "tls_reload_failed" not in r.logs() and time.time() < deadline:
        time.sleep(0.05)
    assert "tls_reload_failed" in r.logs()
    assert serial() == after
    keep.request("GET", "/api/health")
    assert keep.getresponse().status == 200
    keep.close()


def test_redirect_listener(tls):
    rport = free_port()
    r, ctx = tls("ec", REELD_HTTP_REDIRECT_LISTEN=f"127.0.0.1:{rport}")
    deadline = time.time() + 10
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", rport), timeout=1).close()
            break
        except OSError:
            time.sleep(0.05)
    c = http.client.HTTPConnection("127.0.0.1", rport, timeout=10)
    c.request("GET", "/api/assets?limit=2", headers={"Host": f"example.com:{rport}"})
    resp = c.getresponse()
    resp.read()
    assert resp.status == 308
    assert resp.getheader("Location") == f"https://example.com:{r.port}/api/assets?limit=2"
    c.request("HEAD", "/x", headers={"Host": "[::1]:80"})
    resp = c.getresponse()
    resp.read()
    assert resp.status == 308 and resp.getheader("Location") == f"https://[::1]:{r.port}/x"
    # A body is not read: the answer, then the connection ends.
    c.request("POST", "/api/uploads", body=b"{}", headers={"Host": "h"})
    resp = c.getresponse()
    resp.read()
    assert resp.status == 308 and resp.getheader("Connection") == "close"
    c.close()
    # Nothing is served over plain HTTP: not even /metrics.
    c = http.client.HTTPConnection("127.0.0.1", rport, timeout=10)
    c.request("GET", "/metrics", headers={"Host": "h"})
    assert c.getresponse().status == 308
    c.close()
    # HTTP/1.0 without Host: nothing to redirect to.
    with socket.create_connection(("127.0.0.1", rport), timeout=10) as s:
        s.sendall(b"GET / HTTP/1.0\r\n\r\n")
        assert s.recv(100).startswith(b"HTTP/1.1 400")
    # curl follows it to the HTTPS listener.
    out = subprocess.run(["curl", "-sS", "-L", "--cacert", r.ca, "-o", "/dev/null",
                          "-w", "%{http_code} %{url_effective}",
                          f"http://localhost:{rport}/api/health"],
                         capture_output=True, text=True, timeout=20)
    assert out.stdout == f"200 https://localhost:{r.port}/api/health", out


def test_bad_certificate_settings_refuse_to_start(ca, tmp_path):
    chain, key = ca.issue("a")
    _, other_key = ca.issue("b")
    rsa_chain, rsa_key = ca.issue("c", kind="rsa")
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n")
    cases = [
        ({"REELD_TLS_CERT": chain}, "REELD_TLS_CERT and REELD_TLS_KEY go together"),
        ({"REELD_TLS_CERT": chain, "REELD_TLS_KEY": other_key}, "not the key of the first"),
        ({"REELD_TLS_CERT": chain, "REELD_TLS_KEY": rsa_key}, "the key is RSA but"),
        ({"REELD_TLS_CERT": str(tmp_path / "none.pem"), "REELD_TLS_KEY": key},
         "No such file or directory"),
        ({"REELD_TLS_CERT": str(garbage), "REELD_TLS_KEY": key}, "not PEM"),
        ({"REELD_TLS_CERT": chain, "REELD_TLS_KEY": chain}, "holds no private key"),
        ({"REELD_HTTP_REDIRECT_LISTEN": "127.0.0.1:1"}, "set REELD_TLS_CERT and REELD_TLS_KEY"),
    ]
    for env, message in cases:
        e = dict(os.environ, REELD_LISTEN=f"127.0.0.1:{free_port()}",
                 REELD_DATA_DIR=str(tmp_path / "d"), **env)
        for k in ("REELD_TLS_CERT", "REELD_TLS_KEY"):
            if k not in env:
                e.pop(k, None)
        p = subprocess.run([reeld_bin(), "serve"], env=e, capture_output=True, text=True,
                           timeout=30)
        assert p.returncode == 2 and message in p.stderr, (env, p.returncode, p.stderr[-500:])
    assert rsa_chain  # the RSA pair itself is good: test_curl_python_and_requests covers it
