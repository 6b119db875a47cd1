"""reeld's S3 client (src/blob/s3.c) driven through the hidden `reeld s3` command against a moto
server on loopback that checks every SigV4 signature, and against tiny peers that fail on
purpose (503s, connection resets) to count the client's retries."""
import hashlib
import os
import socket
import shutil
import socketserver
import ssl
import subprocess
import sys
import threading
import time
import http.server

import boto3
import pytest
from botocore.config import Config

from conftest import free_port, reeld_bin

REGION = "us-east-1"


def wait_port(port, proc, timeout=20.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("moto server exited")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("moto server did not listen")


@pytest.fixture(scope="module")
def moto():
    """A moto server whose first three calls (IAM user, access key, allow-all policy) go
    unsigned; every request after them has its signature checked."""
    port = free_port()
    env = dict(os.environ, INITIAL_NO_AUTH_ACTION_COUNT="3", MOTO_PORT=str(port))
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-p", str(port)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_port(port, proc)
        endpoint = f"http://127.0.0.1:{port}"
        iam = boto3.client("iam", endpoint_url=endpoint, region_name=REGION,
                           aws_access_key_id="bootstrap", aws_secret_access_key="bootstrap")
        iam.create_user(UserName="reeld")
        key = iam.create_access_key(UserName="reeld")["AccessKey"]
        iam.put_user_policy(UserName="reeld", PolicyName="all", PolicyDocument=(
            '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*",'
            '"Resource":"*"}]}'))
        s3 = boto3.client("s3", endpoint_url=endpoint, region_name=REGION,
                          aws_access_key_id=key["AccessKeyId"],
                          aws_secret_access_key=key["SecretAccessKey"],
                          config=Config(s3={"addressing_style": "path"}))
        s3.create_bucket(Bucket="staging")
        s3.create_bucket(Bucket="masters")
        yield {"endpoint": endpoint, "id": key["AccessKeyId"], "secret": key["SecretAccessKey"],
               "s3": s3}
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def run_s3(endpoint, key_id, secret, *args, timeout=60):
    env = dict(os.environ, S3_ENDPOINT=endpoint, S3_REGION=REGION, S3_ACCESS_KEY_ID=key_id,
               S3_SECRET_ACCESS_KEY=secret, REELD_LOG="warn")
    return subprocess.run([reeld_bin(), "s3", *args], env=env, capture_output=True, text=True,
                          timeout=timeout)


def reeld_s3(m, *args):
    return run_s3(m["endpoint"], m["id"], m["secret"], *args)


def fields(out):
    return dict(kv.split("=", 1) for kv in out.split())


def test_put_get_head_delete_round_trip(moto, tmp_path):
    body = os.urandom(300_000)
    src = tmp_path / "in.bin"
    src.write_bytes(body)
    r = reeld_s3(moto, "put", "staging", "a/video one.mp4", str(src), "--content-type", "video/mp4")
    assert r.returncode == 0, r.stderr
    assert fields(r.stdout)["etag"] == '"%s"' % hashlib.md5(body).hexdigest()
    obj = moto["s3"].get_object(Bucket="staging", Key="a/video one.mp4")
    assert obj["Body"].read() == body
    assert obj["ContentType"] == "video/mp4"

    r = reeld_s3(moto, "put", "staging", "mem", str(src), "--memory")
    assert r.returncode == 0, r.stderr
    assert moto["s3"].get_object(Bucket="staging", Key="mem")["Body"].read() == body

    r = reeld_s3(moto, "head", "staging", "a/video one.mp4")
    assert r.returncode == 0, r.stderr
    f = fields(r.stdout)
    assert f["size"] == str(len(body)) and f["content_type"] == "video/mp4"

    out = tmp_path / "out.bin"
    r = reeld_s3(moto, "get", "staging", "a/video one.mp4", str(out))
    assert r.returncode == 0, r.stderr
    assert out.read_bytes() == body

    r = reeld_s3(moto, "delete", "staging", "a/video one.mp4")
    assert r.returncode == 0, r.stderr
    with pytest.raises(moto["s3"].exceptions.ClientError):
        moto["s3"].head_object(Bucket="staging", Key="a/video one.mp4")


def test_ranged_get(moto, tmp_path):
    body = bytes(range(256)) * 1000
    moto["s3"].put_object(Bucket="staging", Key="ranged", Body=body)
    out = tmp_path / "part"
    r = reeld_s3(moto, "get", "staging", "ranged", str(out), "--range", "1000-1999")
    assert r.returncode == 0, r.stderr
    assert out.read_bytes() == body[1000:2000]
    # a range running past the end gives what there is
    r = reeld_s3(moto, "get", "staging", "ranged", str(out), "--range", "255990-300000")
    assert r.returncode == 0, r.stderr
    assert out.read_bytes() == body[255990:]


def test_copy_to_masters(moto):
    moto["s3"].put_object(Bucket="staging", Key="upload/1", Body=b"master bytes")
    r = reeld_s3(moto, "copy", "staging", "upload/1", "masters", "asset/1")
    assert r.returncode == 0, r.stderr
    got = moto["s3"].get_object(Bucket="masters", Key="asset/1")["Body"].read()
    assert got == b"master bytes"


def test_copy_with_object_lock(moto):
    moto["s3"].create_bucket(Bucket="locked", ObjectLockEnabledForBucket=True)
    moto["s3"].put_object(Bucket="staging", Key="upload/2", Body=b"locked master")
    r = reeld_s3(moto, "copy", "staging", "upload/2", "locked", "asset/2", "--lock-days", "3")
    assert r.returncode == 0, r.stderr
    head = moto["s3"].head_object(Bucket="locked", Key="asset/2")
    assert head["ObjectLockMode"] == "COMPLIANCE"
    left = head["ObjectLockRetainUntilDate"].timestamp() - time.time()
    assert 2.9 * 86400 < left < 3.1 * 86400


def test_multipart_over_5_mib(moto, tmp_path):
    body = os.urandom(11 * 1024 * 1024 + 12345)
    src = tmp_path / "big.bin"
    src.write_bytes(body)
    r = reeld_s3(moto, "multipart", "staging", "big", str(src))
    assert r.returncode == 0, r.stderr
    f = fields(r.stdout)
    assert f["etag"].endswith('-3"') and f["size"] == str(len(body))  # three parts
    assert moto["s3"].get_object(Bucket="staging", Key="big")["Body"].read() == body


def test_wrong_secret_is_a_clear_signature_error(moto, tmp_path):
    src = tmp_path / "x"
    src.write_bytes(b"x")
    r = run_s3(moto["endpoint"], moto["id"], "not-the-secret", "put", "staging", "x", str(src))
    assert r.returncode == 1
    line = r.stderr.strip()
    assert "SignatureDoesNotMatch" in line and "403" in line, line
    assert len(line.splitlines()) == 1


def test_virtual_hosted_style(moto, tmp_path):
    src = tmp_path / "v"
    src.write_bytes(b"virtual")
    endpoint = moto["endpoint"].replace("127.0.0.1", "localhost")
    r = run_s3(endpoint, moto["id"], moto["secret"], "put", "staging", "vh/1", str(src),
               "--virtual-hosted")
    assert r.returncode == 0, r.stderr
    assert moto["s3"].get_object(Bucket="staging", Key="vh/1")["Body"].read() == b"virtual"


def test_missing_key_is_a_clear_404(moto, tmp_path):
    r = reeld_s3(moto, "get", "staging", "no/such/key", str(tmp_path / "o"), "--range", "0-9")
    assert r.returncode == 1
    assert "404 NoSuchKey" in r.stderr, r.stderr
    r = reeld_s3(moto, "head", "staging", "no/such/key")
    assert r.returncode == 1
    assert r.stderr.strip() == "reeld s3: S3 HeadObject staging/no/such/key failed: 404 Not Found."


class FlakyPeer:
    """An HTTP peer that fails the first `fail` requests (503 SlowDown, a connection reset, or
    RequestTimeTooSkewed with its own clock an hour ahead), then answers 200; counts requests
    and connections, and keeps each request's X-Amz-Date. With `drop`, it closes every
    connection after answering without saying so, as a server whose keep-alive timer ran out."""

    def __init__(self, fail, mode, drop=False, tls=None):
        self.fail, self.mode, self.hits, self.conns, self.dates = fail, mode, 0, 0, []
        self.ranges = []
        peer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def setup(self):
                super().setup()
                peer.conns += 1

            def date_time_string(self, timestamp=None):
                ahead = 3600 if peer.mode == "skew" else 0
                return super().date_time_string(time.time() + ahead)

            def do_GET(self):
                peer.hits += 1
                peer.dates.append(self.headers.get("X-Amz-Date"))
                peer.ranges.append(self.headers.get("Range"))
                body = b"0123456789"
                if peer.mode == "cut" and len(peer.ranges) == 1:
                    # the whole length announced, four bytes sent, then the connection drops
                    self.send_response(200)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body[:4])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                rng = self.headers.get("Range")
                if rng:
                    first, last = rng.split("=")[1].split("-")
                    part = body[int(first):int(last) + 1]
                    self.send_response(206)
                    self.send_header("Content-Range",
                                     f"bytes {first}-{int(first) + len(part) - 1}/{len(body)}")
                    body = part
                else:
                    self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                self.close_connection = drop

            def do_HEAD(self):
                peer.hits += 1
                self.send_response(200)
                self.send_header("Content-Length", "10")
                self.send_header("ETag", '"e"')
                self.end_headers()
                self.close_connection = drop

            def do_PUT(self):
                n = int(self.headers.get("Content-Length", "0"))
                self.rfile.read(n)
                peer.hits += 1
                peer.dates.append(self.headers.get("X-Amz-Date"))
                if peer.hits <= peer.fail:
                    if peer.mode == "skew":
                        body = (b"<Error><Code>RequestTimeTooSkewed</Code><Message>The "
                                b"difference between the request time and the current time is "
                                b"too large.</Message></Error>")
                        self.send_response(403)
                        self.send_header("Content-Length", str(len(body)))
                        self.end_headers()
                        self.wfile.write(body)
                        return
                    if peer.mode == "reset":
                        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                                   b"\x01\x00\x00\x00\x00\x00\x00\x00")
                        self.connection.close()
                        self.close_connection = True
                        return
                    body = (b"<?xml version='1.0'?><Error><Code>SlowDown</Code>"
                            b"<Message>Please reduce your request rate.</Message></Error>")
                    self.send_response(503)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                    return
                self.send_response(200)
                self.send_header("ETag", '"ok"')
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        if tls is not None:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(*tls)
            self.server.socket = ctx.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.mark.parametrize("mode", ["503", "reset"])
def test_retries_until_the_peer_recovers(mode, tmp_path):
    peer = FlakyPeer(2, mode)
    try:
        src = tmp_path / "x"
        src.write_bytes(b"retry me")
        r = run_s3(f"http://127.0.0.1:{peer.port}", "AKID", "secret", "put", "b", "k", str(src),
                   "--metrics")
        assert r.returncode == 0, r.stderr
        assert peer.hits == 3
        assert fields(r.stdout)["attempts"] == "3"
        assert 'reeld_s3_retries_total{op="PutObject"} 2' in r.stderr, r.stderr
        assert 'reeld_s3_requests_total{op="PutObject",outcome="ok"} 1' in r.stderr
    finally:
        peer.close()


def test_gives_up_after_the_last_attempt(tmp_path):
    peer = FlakyPeer(100, "503")
    try:
        src = tmp_path / "x"
        src.write_bytes(b"x")
        r = run_s3(f"http://127.0.0.1:{peer.port}", "AKID", "secret", "put", "b", "k", str(src),
                   "--attempts", "3")
        assert r.returncode == 1
        assert peer.hits == 3
        assert "503 SlowDown: Please reduce your request rate." in r.stderr, r.stderr
    finally:
        peer.close()


def test_connection_refused_is_reported(tmp_path):
    src = tmp_path / "x"
    src.write_bytes(b"x")
    r = run_s3(f"http://127.0.0.1:{free_port()}", "AKID", "secret", "put", "b", "k", str(src),
               "--attempts", "2")
    assert r.returncode == 1
    assert "no response (Connection refused)" in r.stderr, r.stderr


def test_clock_skew_is_corrected_from_the_date_header(tmp_path):
    peer = FlakyPeer(1, "skew")
    try:
        src = tmp_path / "x"
        src.write_bytes(b"x")
        r = run_s3(f"http://127.0.0.1:{peer.port}", "AKID", "secret", "put", "b", "k", str(src))
        assert r.returncode == 0, r.stderr
        assert peer.hits == 2
        first, second = (time.mktime(time.strptime(d, "%Y%m%dT%H%M%SZ")) for d in peer.dates)
        assert 3500 < second - first < 3700
    finally:
        peer.close()


def test_keep_alive_reuses_one_connection(tmp_path):
    peer = FlakyPeer(0, "503")
    try:
        out = tmp_path / "o"
        r = run_s3(f"http://127.0.0.1:{peer.port}", "AKID", "secret", "get", "b", "k", str(out))
        assert r.returncode == 0, r.stderr
        assert out.read_bytes() == b"0123456789"
        assert peer.hits == 2 and peer.conns == 1  # HEAD, then GET on the same connection
    finally:
        peer.close()


def test_a_connection_closed_while_idle_is_replaced_without_counting(tmp_path):
    peer = FlakyPeer(0, "503", drop=True)
    try:
        out = tmp_path / "o"
        r = run_s3(f"http://127.0.0.1:{peer.port}", "AKID", "secret", "get", "b", "k", str(out),
                   "--attempts", "1")
        assert r.returncode == 0, r.stderr
        assert out.read_bytes() == b"0123456789"
        assert peer.hits == 2 and peer.conns == 2
    finally:
        peer.close()


def test_a_silent_peer_times_out(tmp_path):
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(8)
    try:
        src = tmp_path / "x"
        src.write_bytes(b"x")
        t0 = time.time()
        r = run_s3(f"http://127.0.0.1:{lsock.getsockname()[1]}", "AKID", "secret", "put", "b",
                   "k", str(src), "--timeout-ms", "300", "--attempts", "2")
        assert r.returncode == 1
        assert "no response (Connection timed out)" in r.stderr, r.stderr
        assert time.time() - t0 < 5
    finally:
        lsock.close()


@pytest.mark.skipif(shutil.which("openssl") is None, reason="the openssl tool is not installed")
def test_https_with_a_custom_ca_and_keep_alive(tmp_path):
    cert, key = str(tmp_path / "c.pem"), str(tmp_path / "k.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2", "-subj",
                    "/CN=localhost", "-addext", "subjectAltName=DNS:localhost", "-keyout", key,
                    "-out", cert], check=True, capture_output=True)
    peer = FlakyPeer(0, "503", tls=(cert, key))
    try:
        out = tmp_path / "o"
        endpoint = f"https://localhost:{peer.port}"
        r = run_s3(endpoint, "AKID", "secret", "get", "b", "k", str(out), "--ca-file", cert)
        assert r.returncode == 0, r.stderr
        assert out.read_bytes() == b"0123456789"
        assert peer.hits == 2 and peer.conns == 1
        # the system CAs do not vouch for a throwaway certificate
        r = run_s3(endpoint, "AKID", "secret", "head", "b", "k", "--attempts", "1")
        assert r.returncode == 1
        assert "certificate" in r.stderr, r.stderr
    finally:
        peer.close()


def test_a_get_cut_short_resumes_where_it_stopped(tmp_path):
    peer = FlakyPeer(0, "cut")  # the first GET is cut after 4 bytes
    try:
        out = tmp_path / "o"
        r = run_s3(f"http://127.0.0.1:{peer.port}", "AKID", "secret", "get", "b", "k", str(out))
        assert r.returncode == 0, r.stderr
        assert out.read_bytes() == b"0123456789"  # every byte once
        assert peer.ranges == ["bytes=0-9", "bytes=4-9"]
    finally:
        peer.close()
