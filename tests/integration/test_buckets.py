"""`reeld buckets init` against a moto server that checks every SigV4 signature (the `moto`
fixture of test_s3_client.py): the three buckets created and configured, a second run that
changes nothing, a masters bucket that cannot get Object Lock, S3 out of reach, a browser's
CORS preflight answered by the staging bucket; and, with a peer that checks what moto does not,
the Content-MD5 S3 requires on configuration PUTs."""
import base64
import hashlib
import http.server
import os
import socketserver
import subprocess
import sys
import threading
import urllib.error
import urllib.parse
import urllib.request
import uuid

import pytest

from conftest import free_port, reeld_bin
from test_s3_client import moto, wait_port  # noqa: F401  (moto: the fixture)

ORIGINS = "https://app.example, http://localhost:3000"


@pytest.fixture(scope="module")
def moto_open():
    """A moto server without IAM: the strict one answers 500 to an unsigned OPTIONS, and a
    browser's preflight is never signed."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_port(port, proc)
        yield {"endpoint": f"http://127.0.0.1:{port}", "id": "AKIDREELDTEST", "secret": "secret"}
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def names():
    tag = uuid.uuid4().hex[:8]
    return {"S3_BUCKET_STAGING": f"st-{tag}", "S3_BUCKET_MASTERS": f"ma-{tag}",
            "S3_BUCKET_PREVIEWS": f"pr-{tag}"}


def run(m, *args, region="us-east-1", **env):
    e = {k: v for k, v in os.environ.items()
         if not k.startswith(("S3_", "OBJECT_LOCK_", "ALLOWED_ORIGINS"))}
    if m is not None:
        e.update(S3_ENDPOINT=m["endpoint"], S3_ACCESS_KEY_ID=m["id"],
                 S3_SECRET_ACCESS_KEY=m["secret"])
    e.update(S3_REGION=region, REELD_LOG="warn")
    e.update(env)
    return subprocess.run([reeld_bin(), "buckets", *args], env=e, capture_output=True,
                          text=True, timeout=60)


def lines(r):
    return dict(line.split(" bucket ", 1) for line in r.stdout.splitlines())


def test_fresh_run_creates_and_configures_then_changes_nothing(moto):
    b = names()
    env = dict(b, ALLOWED_ORIGINS=ORIGINS, OBJECT_LOCK_DEFAULT_DAYS="30",
               OBJECT_LOCK_MODE="governance")
    r = run(moto, "init", **env)
    assert r.returncode == 0, r.stderr
    out = lines(r)
    assert out["staging"] == f"'{b['S3_BUCKET_STAGING']}': created, cors set, lifecycle set"
    assert out["masters"] == (f"'{b['S3_BUCKET_MASTERS']}': created with Object Lock, "
                              "object lock set (GOVERNANCE, 30 days)")
    assert out["previews"] == f"'{b['S3_BUCKET_PREVIEWS']}': created"

    s3 = moto["s3"]
    lock = s3.get_object_lock_configuration(Bucket=b["S3_BUCKET_MASTERS"])
    lock = lock["ObjectLockConfiguration"]
    assert lock["ObjectLockEnabled"] == "Enabled"
    assert lock["Rule"]["DefaultRetention"]["Mode"] == "GOVERNANCE"
    assert lock["Rule"]["DefaultRetention"]["Days"] == 30
    [rule] = s3.get_bucket_cors(Bucket=b["S3_BUCKET_STAGING"])["CORSRules"]
    assert rule["AllowedOrigins"] == ["https://app.example", "http://localhost:3000"]
    assert sorted(rule["AllowedMethods"]) == ["GET", "HEAD", "PUT"]
    assert [h.lower() for h in rule["AllowedHeaders"]] == ["content-type"]
    assert rule["ExposeHeaders"] == ["ETag"]
    assert rule["MaxAgeSeconds"] == 600
    [lc] = s3.get_bucket_lifecycle_configuration(Bucket=b["S3_BUCKET_STAGING"])["Rules"]
    assert lc["Status"] == "Enabled"
    assert lc["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 1}
    assert lc["Expiration"] == {"Days": 7}
    assert lc.get("Filter", {}).get("Prefix", "") == ""
    for k in ("S3_BUCKET_PREVIEWS",):
        with pytest.raises(s3.exceptions.ClientError):
            s3.get_bucket_cors(Bucket=b[k])

    # The same rule with its origins in another order: the same configuration, so a second
    # run must leave it as it is (a rewrite would restore reeld's order).
    s3.put_bucket_cors(Bucket=b["S3_BUCKET_STAGING"], CORSConfiguration={"CORSRules": [
        dict(rule, AllowedOrigins=["http://localhost:3000", "https://app.example"])]})
    r = run(moto, "init", **env)
    assert r.returncode == 0, r.stderr
    out = lines(r)
    for role in ("staging", "masters", "previews"):
        assert out[role].endswith(": unchanged"), r.stdout
    [rule] = s3.get_bucket_cors(Bucket=b["S3_BUCKET_STAGING"])["CORSRules"]
    assert rule["AllowedOrigins"] == ["http://localhost:3000", "https://app.example"]

    # What changed is written again, and only that.
    env.update(ALLOWED_ORIGINS="https://other.example", OBJECT_LOCK_DEFAULT_DAYS="31")
    r = run(moto, "init", "--staging-expire-days", "0", **env)
    assert r.returncode == 0, r.stderr
    out = lines(r)
    assert out["staging"].endswith(": cors set, lifecycle set")
    assert out["masters"].endswith(": object lock set (GOVERNANCE, 31 days)")
    assert out["previews"].endswith(": unchanged")
    [rule] = s3.get_bucket_cors(Bucket=b["S3_BUCKET_STAGING"])["CORSRules"]
    assert rule["AllowedOrigins"] == ["https://other.example"]
    [lc] = s3.get_bucket_lifecycle_configuration(Bucket=b["S3_BUCKET_STAGING"])["Rules"]
    assert "Expiration" not in lc and lc["AbortIncompleteMultipartUpload"]
    lock = s3.get_object_lock_configuration(Bucket=b["S3_BUCKET_MASTERS"])
    assert lock["ObjectLockConfiguration"]["Rule"]["DefaultRetention"]["Days"] == 31


def test_without_origins_or_retention(moto):
    b = names()
    r = run(moto, "init", **b)
    assert r.returncode == 0, r.stderr
    out = lines(r)
    assert out["staging"].endswith(": created, lifecycle set (no CORS: ALLOWED_ORIGINS is empty)")
    assert out["masters"].endswith(
        ": created with Object Lock (no default retention: OBJECT_LOCK_DEFAULT_DAYS is 0)")
    s3 = moto["s3"]
    with pytest.raises(s3.exceptions.ClientError):
        s3.get_bucket_cors(Bucket=b["S3_BUCKET_STAGING"])
    # Created with Object Lock all the same, so a retention can be set later.
    lock = s3.get_object_lock_configuration(Bucket=b["S3_BUCKET_MASTERS"])
    assert lock["ObjectLockConfiguration"]["ObjectLockEnabled"] == "Enabled"


def test_existing_masters_without_object_lock(moto):
    b = names()
    moto["s3"].create_bucket(Bucket=b["S3_BUCKET_MASTERS"])
    r = run(moto, "init", OBJECT_LOCK_DEFAULT_DAYS="7", **b)
    assert r.returncode == 1
    [line] = r.stderr.strip().splitlines()
    assert line == (f"reeld buckets init: bucket '{b['S3_BUCKET_MASTERS']}' (S3_BUCKET_MASTERS) "
                    "exists without Object Lock, which S3 cannot turn on for an existing bucket: "
                    "set S3_BUCKET_MASTERS to a new bucket name (this command creates it with "
                    "Object Lock) or OBJECT_LOCK_DEFAULT_DAYS=0")
    assert "masters" not in lines(r)
    # Without a retention to set, the bucket is fine as it is.
    r = run(moto, "init", **b)
    assert r.returncode == 0, r.stderr
    assert lines(r)["masters"].endswith(
        ": unchanged (no default retention: OBJECT_LOCK_DEFAULT_DAYS is 0)")


def test_other_region_sends_a_location(moto):
    b = names()
    r = run(moto, "init", region="eu-west-1", **b)
    assert r.returncode == 0, r.stderr
    for k in b.values():
        assert moto["s3"].get_bucket_location(Bucket=k)["LocationConstraint"] == "eu-west-1"


def test_s3_errors_are_one_sentence(moto):
    r = run(dict(moto, secret="not-the-secret"), "init", **names())
    assert r.returncode == 1
    assert r.stdout == ""
    [line] = r.stderr.strip().splitlines()
    assert line.startswith("reeld buckets init: S3 HeadBucket st-") and "403" in line, line

    r = run(dict(moto, endpoint=f"http://127.0.0.1:{free_port()}"), "init", **names())
    assert r.returncode == 1
    [line] = r.stderr.strip().splitlines()
    assert line.startswith("reeld buckets init: S3 HeadBucket st-")
    assert line.endswith("failed: no response (Connection refused)."), line


def test_embedded_mode_and_usage(tmp_path):
    r = run(None, "init", REELD_DATA_DIR=str(tmp_path))
    assert r.returncode == 0, r.stderr
    assert r.stdout == (f"S3_ENDPOINT is not set: the embedded object store keeps files in "
                        f"{tmp_path} and needs no buckets\n")
    for args in ((), ("frobnicate",), ("init", "extra"),
                 ("init", "--staging-expire-days", "soon"), ("init", "--staging-expire-days")):
        r = run(None, *args)
        assert r.returncode == 2, args
        assert r.stderr.startswith("reeld buckets: ") and "usage:" in r.stderr
    r = subprocess.run([reeld_bin(), "--help"], capture_output=True, text=True, timeout=30)
    assert "reeld buckets init" in r.stdout


def test_browser_preflight_to_staging(moto_open):
    b = names()
    r = run(moto_open, "init", ALLOWED_ORIGINS=ORIGINS, **b)
    assert r.returncode == 0, r.stderr

    def preflight(origin):
        req = urllib.request.Request(
            f"{moto_open['endpoint']}/{b['S3_BUCKET_STAGING']}/upload-1", method="OPTIONS",
            headers={"Origin": origin, "Access-Control-Request-Method": "PUT",
                     "Access-Control-Request-Headers": "content-type"})
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                return resp.status, resp.headers
        except urllib.error.HTTPError as e:
            return e.code, e.headers

    status, headers = preflight("https://app.example")
    if status == 200 and headers.get("Access-Control-Allow-Origin") is None:
        pytest.skip("this moto answers preflights without CORS headers")
    assert status == 200
    assert headers["Access-Control-Allow-Origin"] == "https://app.example"
    assert "PUT" in headers["Access-Control-Allow-Methods"]
    # Another origin is refused (moto echoes it in its 403's headers all the same).
    status, _ = preflight("https://evil.example")
    assert status == 403


class DigestCheckingPeer:
    """An S3 peer with what moto does not check: like AWS, it refuses a bucket configuration
    PUT without a Content-MD5 that matches the body (400 InvalidDigest). Its buckets exist;
    they have no CORS or lifecycle yet and Object Lock without a retention. Keeps each
    configuration PUT as (subresource, Content-MD5, body)."""

    def __init__(self):
        self.puts = []
        peer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def answer(self, status, body=b""):
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            def error(self, status, code):
                self.answer(status, f"<Error><Code>{code}</Code><Message>{code}.</Message>"
                                    "</Error>".encode())

            def do_HEAD(self):
                self.answer(200)

            def do_GET(self):
                sub = urllib.parse.urlsplit(self.path).query.split("=")[0]
                if sub == "object-lock":
                    self.answer(200, b"<ObjectLockConfiguration><ObjectLockEnabled>Enabled"
                                     b"</ObjectLockEnabled></ObjectLockConfiguration>")
                else:
                    self.error(404, "NoSuchCORSConfiguration" if sub == "cors"
                               else "NoSuchLifecycleConfiguration")

            def do_PUT(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                sub = urllib.parse.urlsplit(self.path).query.split("=")[0]
                md5 = self.headers.get("Content-MD5")
                if md5 is None:
                    return self.error(400, "MissingContentMD5")
                if md5 != base64.b64encode(hashlib.md5(body).digest()).decode():
                    return self.error(400, "InvalidDigest")
                peer.puts.append((sub, md5, body))
                self.answer(200)

        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def test_configuration_puts_carry_content_md5():
    peer = DigestCheckingPeer()
    try:
        m = {"endpoint": f"http://127.0.0.1:{peer.port}", "id": "AKID", "secret": "secret"}
        r = run(m, "init", ALLOWED_ORIGINS="https://app.example", OBJECT_LOCK_DEFAULT_DAYS="3",
                **names())
        assert r.returncode == 0, r.stderr
        assert [p[0] for p in peer.puts] == ["cors", "lifecycle", "object-lock"]
        assert b"<AllowedOrigin>https://app.example</AllowedOrigin>" in peer.puts[0][2]
        assert b"<Days>3</Days>" in peer.puts[2][2]
    finally:
        peer.close()
