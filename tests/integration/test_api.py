"""The upload → promote API over HTTP against the real binary: embedded mode (reeld answers the
presigned PUT/GET itself) and S3 mode (moto checks every signature), auth (API keys, HS256
JWTs), CORS, rate limits, the presigned /blob/ endpoint's refusals, and schemathesis against
the OpenAPI document. Each refusal is checked to have written nothing."""
import base64
import hashlib
import hmac
import http.client
import json
import os
import re
import subprocess
import sys
import time
import urllib.parse

import boto3
import pytest
from botocore.config import Config

from conftest import free_port, reeld_bin
from test_s3_client import wait_port

SECRET = "jwt-secret-for-tests-0123456789abcdef"
KEYS = "acme:key-acme-1-0123456789,beta:key-beta-1-0123456789"


def call(r, method, path, body=None, headers=None):
    """One request to reeld `r`; returns (status, headers, parsed JSON or raw bytes)."""
    conn = http.client.HTTPConnection("127.0.0.1", r.port, timeout=10)
    h = dict(headers or {})
    if isinstance(body, (dict, list)):
        body = json.dumps(body).encode()
        h.setdefault("Content-Type", "application/json")
    conn.request(method, path, body=body, headers=h)
    resp = conn.getresponse()
    data = resp.read()
    conn.close()
    try:
        data = json.loads(data) if data else None
    except ValueError:
        pass
    return resp.status, {k.lower(): v for k, v in resp.getheaders()}, data


def put_url(url, data, content_type="video/mp4", method="PUT"):
    """PUT (or another method) to a presigned URL exactly as given (no path normalization)."""
    u = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=20)
    path = u.path + ("?" + u.query if u.query else "")
    conn.putrequest(method, path, skip_accept_encoding=True)
    if data is not None:
        conn.putheader("Content-Length", str(len(data)))
        conn.putheader("Content-Type", content_type)
    conn.endheaders()
    if data:
        conn.send(data)
    resp = conn.getresponse()
    body = resp.read()
    conn.close()
    return resp.status, {k.lower(): v for k, v in resp.getheaders()}, body


def b64(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def jwt(claims, alg="HS256", secret=SECRET):
    head = b64(json.dumps({"alg": alg, "typ": "JWT"}).encode())
    body = b64(json.dumps(claims).encode())
    if alg == "none":
        return f"{head}.{body}."
    sig = hmac.new(secret.encode(), f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{b64(sig)}"


def blob_files(r):
    """Every file under the data directory's object store (objects, metadata, temp files)."""
    out = []
    for sub in ("blobs", "blobs.tmp"):
        for root, _, files in os.walk(os.path.join(r.data_dir, sub)):
            out += [os.path.join(root, f) for f in files]
    return sorted(out)


def new_upload(r, size, headers=None, content_type="video/mp4"):
    st, _, body = call(r, "POST", "/api/uploads",
                       {"filename": "clip.mp4", "content_type": content_type, "size": size},
                       headers)
    assert st == 201, body
    return body


def put_parts(upload, data):
    """PUTs `data` to a multipart upload's part URLs (upload: the answer's "upload"); returns
    the parts as POST .../complete takes them: [{"n", "etag"}, ...]."""
    parts, size = [], upload["part_size"]
    for p in upload["parts"]:
        st, hdrs, body = put_url(p["url"], data[(p["n"] - 1) * size:p["n"] * size])
        assert st == 200, body
        parts.append({"n": p["n"], "etag": hdrs["etag"]})
    return parts


# ---- embedded mode ----

def test_upload_put_promote_twice_playback(reeld_factory):
    r = reeld_factory()
    data = os.urandom(300_000)
    up = new_upload(r, len(data))
    aid = up["asset_id"]
    assert up["upload"]["method"] == "PUT" and up["upload"]["headers"]["Content-Type"] == "video/mp4"
    st, _, err = call(r, "POST", f"/api/assets/{aid}/promote")
    assert st == 409 and err["error"]["code"] == "not_uploaded", err
    st, hdrs, _ = put_url(up["upload"]["url"], data)
    assert st == 200 and hdrs["etag"] == '"%s"' % hashlib.md5(data).hexdigest()
    st, _, first = call(r, "POST", f"/api/assets/{aid}/promote")
    assert st == 202 and first["job_id"]
    st, _, again = call(r, "POST", f"/api/assets/{aid}/promote")
    assert st == 202 and again["job_id"] == first["job_id"]
    st, _, job = call(r, "GET", f"/api/jobs/{first['job_id']}")
    assert st == 200 and job["kind"] == "transcode", job
    with open(os.path.join(r.data_dir, "blobs", "masters", aid), "rb") as f:
        assert f.read() == data
    st, _, asset = call(r, "GET", f"/api/assets/{aid}")
    assert st == 200 and asset["state"] in ("processing", "failed") and asset["size"] == len(data)
    # Random bytes are no video: the worker fails the job once, for good, and says why.
    deadline = time.time() + 30
    while asset["state"] != "failed" and time.time() < deadline:
        time.sleep(0.1)
        st, _, asset = call(r, "GET", f"/api/assets/{aid}")
    assert asset["state"] == "failed" and asset["attempts"] == 1, asset
    assert "corrupt" in asset["error"] or "not audio or video" in asset["error"], asset
    st, _, pb = call(r, "GET", f"/api/assets/{aid}/playback")
    assert st == 200 and pb["ready"] is False and pb["state"] == "failed", pb
    assert re.fullmatch(rf"http://{r.addr}/hls/\d+/[0-9a-f]{{64}}/{aid}/master\.m3u8", pb["url"])
    assert "api_open_to_loopback" in r.logs()


def test_promote_checks_size_and_type(reeld_factory):
    r = reeld_factory()
    up = new_upload(r, 10)
    # The URL signs the announced size: another size is refused before anything is stored.
    st, _, body = put_url(up["upload"]["url"], b"12345")
    assert st == 403 and b"SignatureDoesNotMatch" in body
    st, _, err = call(r, "POST", f"/api/assets/{up['asset_id']}/promote")
    assert st == 409 and err["error"]["code"] == "not_uploaded"
    up = new_upload(r, 5)
    assert put_url(up["upload"]["url"], b"12345", content_type="text/plain")[0] == 200
    st, _, err = call(r, "POST", f"/api/assets/{up['asset_id']}/promote")
    assert st == 415
    assert not os.path.exists(os.path.join(r.data_dir, "blobs", "masters"))


def test_upload_request_refusals(reeld_factory):
    r = reeld_factory(env={"REELD_MAX_UPLOAD_BYTES": "1M"})
    cases = [
        ({"content_type": "video/mp4", "size": 5}, 400, "missing_field"),
        ({"filename": "a.mp4", "size": 5}, 400, "missing_field"),
        ({"filename": "a.mp4", "content_type": "video/mp4"}, 400, "missing_field"),
        ({"filename": "a.txt", "content_type": "text/plain", "size": 5}, 415, None),
        ({"filename": "a.mp4", "content_type": "video/mp4", "size": -1}, 400, "invalid_field"),
        ({"filename": "a.mp4", "content_type": "video/mp4", "size": "5"}, 400, "invalid_field"),
        ({"filename": "", "content_type": "video/mp4", "size": 5}, 400, "invalid_field"),
        ({"filename": "a.mp4", "content_type": "video/mp4", "size": 2 << 20}, 413, "too_large"),
        ([1, 2], 400, "invalid_json"),
    ]
    for body, status, code in cases:
        st, _, err = call(r, "POST", "/api/uploads", body)
        assert st == status, (body, err)
        if code:
            assert err["error"]["code"] == code, (body, err)
    st, _, _ = call(r, "POST", "/api/uploads", b"{not json", {"Content-Type": "application/json"})
    assert st == 400
    st, _, _ = call(r, "POST", "/api/uploads", b'{"filename":"a"}', {"Content-Type": "text/plain"})
    assert st == 415
    st, _, _ = call(r, "POST", "/api/assets/a000000000000000000000000/promote")
    assert st == 404
    st, _, err = call(r, "POST", "/api/uploads/a000000000000000000000000/complete",
                      {"parts": []})
    assert st == 404
    up = new_upload(r, 5)
    st, _, err = call(r, "POST", f"/api/uploads/{up['asset_id']}/complete", {"parts": []})
    assert st == 409 and err["error"]["code"] == "not_multipart"
    assert blob_files(r) == []


def test_upload_text_fields_are_clean(reeld_factory):
    """content_type goes into HTTP headers (the upload's, S3's) and filename into JSON and the
    store: a control character anywhere in the one, or bytes that are not UTF-8 (or C1
    controls) in the other, are refused with 400 before anything is stored."""
    r = reeld_factory()
    raw = b'{"filename":"%s","content_type":"%s","size":5}'
    for filename, ctype in [
        (b"a.mp4", b"video/mp4;\\r\\nX-Injected: 1"),
        (b"a.mp4", b"video/mp4; codecs=avc1\\r\\n"),
        (b"a.mp4", b"video/mp4\\n"),
        (b"a.mp4", b"video/mp4;\\tx"),
        (b"a.mp4", b"video/mp4;\\u0000"),
        (b"a.mp4", b"video/mp4; x=\xc3\xa9"),
        (b"a\xff.mp4", b"video/mp4"),                 # not UTF-8
        (b"a\xc0\xaf.mp4", b"video/mp4"),             # overlong '/'
        (b"a\xed\xa0\x80.mp4", b"video/mp4"),         # a surrogate, raw
        (b"a\\udc00.mp4", b"video/mp4"),              # a lone surrogate, escaped (bad JSON)
        (b"a\xe2\x82.mp4", b"video/mp4"),             # truncated sequence
        (b"a\xf4\x90\x80\x80.mp4", b"video/mp4"),     # above U+10FFFF
        (b"a\\u0085.mp4", b"video/mp4"),              # C1 control
    ]:
        st, _, err = call(r, "POST", "/api/uploads", raw % (filename, ctype),
                          {"Content-Type": "application/json"})
        code = "invalid_json" if b"\\udc00" in filename else "invalid_field"
        assert st == 400 and err["error"]["code"] == code, (filename, ctype, st, err)
    assert blob_files(r) == []
    # Clean text still works, UTF-8 included, and comes back as sent; the store keeps a prefix
    # that ends on a character boundary.
    # The store is what GET answers from, and it keeps every byte the API accepts (255).
    for name in ("vid\u00e9o \u2713 \U0001f3ac.mp4", "\u00e9" * 125 + ".mp4"):
        body = {"filename": name, "content_type": "video/mp4; codecs=\"avc1.64001f\"", "size": 5}
        st, _, up = call(r, "POST", "/api/uploads", body)
        assert st == 201, up
        st, _, asset = call(r, "GET", f"/api/assets/{up['asset_id']}")
        assert asset["filename"] == name and asset["content_type"] == body["content_type"]
    st, _, err = call(r, "POST", "/api/uploads",
                      {"filename": "\u00e9" * 128, "content_type": "video/mp4", "size": 5})
    assert st == 400 and "255 bytes" in err["error"]["message"], err
    import sqlite3
    db = sqlite3.connect(os.path.join(r.data_dir, "reeld.db"))
    stored = [row[0] for row in db.execute("SELECT filename FROM assets ORDER BY id")]
    db.close()
    assert stored == ["vid\u00e9o \u2713 \U0001f3ac.mp4", "\u00e9" * 125 + ".mp4"], stored


def test_blob_refusals_write_nothing(reeld_factory):
    r = reeld_factory(env={"REELD_MAX_UPLOAD_BYTES": "64K"})
    env = dict(os.environ, REELD_DATA_DIR=r.data_dir, REELD_LISTEN=r.addr)

    def presign(method, key, *extra):
        out = subprocess.run([reeld_bin(), "presign", "--method", method, "--bucket", "staging",
                              "--key", key, *extra], env=env, capture_output=True, text=True,
                             timeout=10, check=True)
        return out.stdout.strip()

    expired = presign("PUT", "x.mp4", "--expires", "1", "--at", "20200101T000000Z")
    st, _, body = put_url(expired, b"data")
    assert st == 403 and b"<Code>AccessDenied</Code>" in body and b"Request has expired" in body
    good = presign("PUT", "x.mp4")
    tampered = good[:-1] + ("0" if good[-1] != "0" else "1")
    st, _, body = put_url(tampered, b"data")
    assert st == 403 and b"SignatureDoesNotMatch" in body
    get_url = presign("GET", "x.mp4")
    assert put_url(get_url, b"data")[0] == 403  # a GET URL used to PUT
    assert put_url(good, None, method="DELETE")[0] == 403
    u = urllib.parse.urlsplit(good)
    for path in ("/blob/staging/../x.mp4", "/blob/staging/%2e%2e/x.mp4", "/blob/staging/a/%2E%2E/b",
                 "/blob/staging/..%2fx"):
        st, _, body = put_url(f"http://{u.netloc}{path}?{u.query}", b"data")
        assert st == 400, path
    st, _, _ = put_url(good, b"x" * (65 * 1024))
    assert st == 413
    # The longest key S3 takes (1024 bytes) in one segment names no file: 400, not 500.
    st, _, body = put_url(presign("PUT", "k" * 1024), b"data")
    assert st == 400 and b"<Code>Invalid" in body, (st, body)
    assert put_url(presign("PUT", "k" * 256), b"data")[0] == 400
    assert blob_files(r) == []
    st, hdrs, _ = put_url(good, b"x" * 1000)
    assert st == 200 and hdrs["etag"]


def test_botocore_presigned_urls_work_in_embedded_mode(reeld_factory):
    """With S3 keys configured and no endpoint, reeld checks botocore's own presigned URLs."""
    kid, secret = "AKIDEXAMPLE0000000000", "example-secret-key-0123456789"
    r = reeld_factory(env={"S3_ACCESS_KEY_ID": kid, "S3_SECRET_ACCESS_KEY": secret})
    s3 = boto3.client("s3", endpoint_url=f"http://{r.addr}/blob", region_name="us-east-1",
                      aws_access_key_id=kid, aws_secret_access_key=secret,
                      config=Config(signature_version="s3v4", s3={"addressing_style": "path"}))
    data = os.urandom(200_000)
    url = s3.generate_presigned_url("put_object", Params={"Bucket": "staging", "Key": "v/1.mp4"},
                                    ExpiresIn=60)
    assert put_url(url, data)[0] == 200
    url = s3.generate_presigned_url("get_object", Params={"Bucket": "staging", "Key": "v/1.mp4"},
                                    ExpiresIn=60)
    st, _, body = put_url(url, None, method="GET")
    assert st == 200 and body == data


# ---- auth ----

def test_auth_keys_and_jwts(reeld_factory):
    r = reeld_factory(env={"REELD_API_KEYS": KEYS, "JWT_SECRET": SECRET})
    body = {"filename": "a.mp4", "content_type": "video/mp4", "size": 5}
    now = int(time.time())
    refusals = [
        ({}, 401),
        ({"Authorization": "Bearer nope"}, 401),
        ({"Authorization": "Basic a2V5LWFjbWUtMQ=="}, 401),
        ({"Authorization": "Bearer " + jwt({"org": "acme", "exp": now - 120})}, 401),
        ({"Authorization": "Bearer " + jwt({"org": "acme", "exp": now + 600}, alg="none")}, 401),
        ({"Authorization": "Bearer " + jwt({"org": "acme", "exp": now + 600}, secret="x" * 40)},
         401),
        ({"Authorization": "Bearer " + jwt({"org": "acme", "exp": now + 600, "nbf": now + 600})},
         401),
        ({"Authorization": "Bearer " + jwt({"exp": now + 600})}, 403),
        # Times at the ends of int64 (the leeway would overflow): refused, and reeld lives on.
        ({"Authorization": "Bearer " + jwt({"org": "acme", "exp": 2**63 - 1})}, 401),
        ({"Authorization": "Bearer " + jwt({"org": "acme", "exp": now + 600, "nbf": -2**63})},
         401),
    ]
    for headers, status in refusals:
        st, hdrs, err = call(r, "POST", "/api/uploads", body, headers)
        assert st == status, (headers, err)
        assert err["error"]["code"] in ("unauthorized", "forbidden")
        if status == 401:
            assert hdrs["www-authenticate"].startswith("Bearer")
    up = new_upload(r, 5, {"Authorization": "Bearer key-acme-1-0123456789"})
    aid = up["asset_id"]
    token = jwt({"org": "acme", "sub": "u1", "exp": now + 600})
    st, _, asset = call(r, "GET", f"/api/assets/{aid}", headers={"Authorization": "Bearer " + token})
    assert st == 200 and asset["asset_id"] == aid
    for other in ("Bearer key-beta-1-0123456789", "Bearer " + jwt({"org": "beta", "exp": now + 600})):
        for method, path in (("GET", f"/api/assets/{aid}"), ("POST", f"/api/assets/{aid}/promote"),
                             ("GET", f"/api/assets/{aid}/playback")):
            st, _, _ = call(r, method, path, headers={"Authorization": other})
            assert st == 404, (other, path)
    st, _, metrics = call(r, "GET", "/metrics")
    assert b'reeld_api_refused_total{code="401",class="auth"} 9' in metrics
    assert b'reeld_api_refused_total{code="403",class="auth"} 1' in metrics
    assert SECRET not in r.logs() and "key-acme-1-0123456789" not in r.logs()


# ---- CORS and rate limits ----

def test_cors_preflight(reeld_factory):
    r = reeld_factory(env={"ALLOWED_ORIGINS": "https://app.example, http://localhost:3000"})
    pre = {"Origin": "https://app.example", "Access-Control-Request-Method": "POST",
           "Access-Control-Request-Headers": "authorization, content-type"}
    st, hdrs, _ = call(r, "OPTIONS", "/api/uploads", headers=pre)
    assert st == 204
    assert hdrs["access-control-allow-origin"] == "https://app.example"
    assert "POST" in hdrs["access-control-allow-methods"]
    assert "authorization" in hdrs["access-control-allow-headers"].lower()
    assert "origin" in hdrs["vary"].lower()
    for bad in ({**pre, "Origin": "https://evil.example"},
                {**pre, "Access-Control-Request-Method": "DELETE"},
                {**pre, "Access-Control-Request-Headers": "x-secret"}):
        st, hdrs, _ = call(r, "OPTIONS", "/api/uploads", headers=bad)
        assert st == 204 and "access-control-allow-origin" not in hdrs, bad
    up = call(r, "POST", "/api/uploads", {"filename": "a.mp4", "content_type": "video/mp4",
                                          "size": 1}, {"Origin": "http://localhost:3000"})
    assert up[0] == 201 and up[1]["access-control-allow-origin"] == "http://localhost:3000"
    st, hdrs, _ = call(r, "GET", "/api/docs", headers={"Origin": "https://evil.example"})
    assert st == 200 and "access-control-allow-origin" not in hdrs


def test_rate_limits(reeld_factory):
    r = reeld_factory(env={"RL_PRESIGN_MAX": "2", "RL_PRESIGN_WINDOW": "60",
                           "RL_PROMOTE_MAX": "1", "RATE_LIMIT_MAX": "1000"})
    body = {"filename": "a.mp4", "content_type": "video/mp4", "size": 1}
    assert call(r, "POST", "/api/uploads", body)[0] == 201
    up = call(r, "POST", "/api/uploads", body)[2]
    st, hdrs, err = call(r, "POST", "/api/uploads", body)
    assert st == 429 and err["error"]["code"] == "rate_limited"
    assert 1 <= int(hdrs["retry-after"]) <= 30
    aid = up["asset_id"]
    assert call(r, "POST", f"/api/assets/{aid}/promote")[0] == 409
    st, hdrs, _ = call(r, "POST", f"/api/assets/{aid}/promote")
    assert st == 429 and int(hdrs["retry-after"]) >= 1
    assert call(r, "GET", f"/api/assets/{aid}")[0] == 200  # other routes: the general bucket
    metrics = call(r, "GET", "/metrics")[2]
    assert b'reeld_api_refused_total{code="429",class="presign"} 1' in metrics
    assert b'reeld_api_refused_total{code="429",class="promote"} 1' in metrics


def pipelined(r, requests):
    """Sends every raw request on one connection at once; returns [(status, headers, body)]."""
    import socket
    with socket.create_connection(("127.0.0.1", r.port), timeout=20) as s:
        s.sendall(b"".join(requests))
        data, out = b"", []
        while len(out) < len(requests):
            head_end = data.find(b"\r\n\r\n")
            if head_end >= 0:
                head = data[:head_end].decode()
                hdrs = {l.split(":", 1)[0].lower(): l.split(":", 1)[1].strip()
                        for l in head.split("\r\n")[1:]}
                end = head_end + 4 + int(hdrs.get("content-length", "0"))
                if len(data) >= end:
                    out.append((int(head.split()[1]), hdrs, data[head_end + 4:end]))
                    data = data[end:]
                    continue
            chunk = s.recv(65536)
            assert chunk, f"connection closed after {len(out)} responses"
            data += chunk
    return out


def test_failed_auth_is_rate_limited_per_client(reeld_factory):
    """Wrong keys pipelined on one connection: the first RL_AUTH_FAIL_MAX get 401, then 429 with
    Retry-After, and while the address is refused even the right key gets 429 (so guessing
    cannot go on and learn the answer from a 200)."""
    r = reeld_factory(env={"REELD_API_KEYS": KEYS, "RATE_LIMIT_MAX": "100000"})
    req = ("GET /api/assets/a0 HTTP/1.1\r\nHost: x\r\n"
           "Authorization: Bearer wrong-key-{:06d}\r\n\r\n")
    got = pipelined(r, [req.format(i).encode() for i in range(200)])
    statuses = [st for st, _, _ in got]
    assert statuses[:20] == [401] * 20, statuses[:25]
    assert statuses[20:] == [429] * 180, statuses[18:30]
    _, hdrs, body = got[-1]
    assert 1 <= int(hdrs["retry-after"]) <= 60
    assert json.loads(body)["error"]["code"] == "rate_limited"
    st, hdrs, _ = call(r, "GET", "/api/assets/a0",
                       headers={"Authorization": "Bearer key-acme-1-0123456789"})
    assert st == 429 and int(hdrs["retry-after"]) >= 1
    metrics = call(r, "GET", "/metrics")[2]
    assert b'reeld_api_refused_total{code="401",class="auth"} 20' in metrics
    assert b'reeld_api_refused_total{code="429",class="auth"} 181' in metrics


def test_failed_auth_limit_is_a_setting(reeld_factory):
    r = reeld_factory(env={"REELD_API_KEYS": KEYS, "RL_AUTH_FAIL_MAX": "3",
                           "RL_AUTH_FAIL_WINDOW": "3"})
    good = {"Authorization": "Bearer key-acme-1-0123456789"}
    for _ in range(5):  # successes spend nothing of the failure budget
        assert call(r, "GET", "/api/assets/a0", headers=good)[0] == 404
    bad = {"Authorization": "Bearer nope-nope-nope-nope"}
    assert [call(r, "GET", "/api/assets/a0", headers=bad)[0] for _ in range(4)] == \
        [401, 401, 401, 429]
    time.sleep(1.2)  # 3 per 3 s: one failure back each second
    assert call(r, "GET", "/api/assets/a0", headers=good)[0] == 404


# ---- S3 mode ----

@pytest.fixture(scope="module")
def moto():
    """A moto server without IAM checks: with INITIAL_NO_AUTH_ACTION_COUNT (as in
    test_s3_client.py) moto 5.2.1 answers 500 to every presigned query-string request, its own
    botocore URLs included, so the clients' PUTs here go to a moto that takes any signature.
    reeld's own SigV4 signing is checked against the strict moto in test_s3_client.py."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_port(port, proc)
        endpoint = f"http://127.0.0.1:{port}"
        s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                          aws_access_key_id="AKIDREELDTEST", aws_secret_access_key="secret",
                          config=Config(s3={"addressing_style": "path"}))
        s3.create_bucket(Bucket="staging")
        s3.create_bucket(Bucket="masters")
        s3.create_bucket(Bucket="masters-locked", ObjectLockEnabledForBucket=True)
        yield {"endpoint": endpoint, "id": "AKIDREELDTEST", "secret": "secret", "s3": s3}
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def s3_env(m, **extra):
    env = {"S3_ENDPOINT": m["endpoint"], "S3_ACCESS_KEY_ID": m["id"],
           "S3_SECRET_ACCESS_KEY": m["secret"], "S3_REGION": "us-east-1"}
    env.update(extra)
    return env


def test_s3_single_put_and_promote(reeld_factory, moto):
    r = reeld_factory(env=s3_env(moto))
    data = os.urandom(100_000)
    up = new_upload(r, len(data))
    assert up["upload"]["url"].startswith(moto["endpoint"] + "/staging/")
    aid = up["asset_id"]
    assert call(r, "POST", f"/api/assets/{aid}/promote")[0] == 409
    st, _, body = put_url(up["upload"]["url"], data)
    assert st == 200, body
    st, _, first = call(r, "POST", f"/api/assets/{aid}/promote")
    assert st == 202, first
    assert call(r, "POST", f"/api/assets/{aid}/promote")[2]["job_id"] == first["job_id"]
    assert moto["s3"].get_object(Bucket="masters", Key=aid)["Body"].read() == data


def test_s3_promote_sets_object_lock(reeld_factory, moto):
    r = reeld_factory(env=s3_env(moto, S3_BUCKET_MASTERS="masters-locked",
                                 OBJECT_LOCK_DEFAULT_DAYS="2", OBJECT_LOCK_MODE="governance"))
    up = new_upload(r, 4)
    assert put_url(up["upload"]["url"], b"lock")[0] == 200
    assert call(r, "POST", f"/api/assets/{up['asset_id']}/promote")[0] == 202
    head = moto["s3"].head_object(Bucket="masters-locked", Key=up["asset_id"])
    assert head["ObjectLockMode"] == "GOVERNANCE"
    left = head["ObjectLockRetainUntilDate"].timestamp() - time.time()
    assert 86400 < left <= 2 * 86400 + 60


def test_a_master_larger_than_one_copy_goes_in_part_copies_with_its_lock(reeld_factory, moto):
    """S3's CopyObject stops at 5 GiB: a larger upload is promoted by UploadPartCopy ranges of
    REELD_COPY_PART_SIZE (here 5M, so a 12 MiB master is three parts), with the retention set on
    the multipart upload, and no upload is left open."""
    r = reeld_factory(env=s3_env(moto, S3_BUCKET_MASTERS="masters-locked",
                                 OBJECT_LOCK_DEFAULT_DAYS="2", OBJECT_LOCK_MODE="governance",
                                 REELD_COPY_PART_SIZE="5M", REELD_MULTIPART_THRESHOLD="64M"))
    data = os.urandom(12 << 20)
    up = new_upload(r, len(data))
    assert put_url(up["upload"]["url"], data)[0] == 200
    aid = up["asset_id"]
    st, _, job = call(r, "POST", f"/api/assets/{aid}/promote")
    assert st == 202, job
    s3 = moto["s3"]
    head = s3.head_object(Bucket="masters-locked", Key=aid)
    assert head["ContentLength"] == len(data)
    assert head["ETag"].strip('"').endswith("-3"), head["ETag"]  # made of three parts
    assert head["ObjectLockMode"] == "GOVERNANCE"
    left = head["ObjectLockRetainUntilDate"].timestamp() - time.time()
    assert 2 * 86400 - 600 < left <= 2 * 86400 + 60, left
    assert s3.get_object(Bucket="masters-locked", Key=aid)["Body"].read() == data
    assert s3.list_multipart_uploads(Bucket="masters-locked").get("Uploads", []) == []


def test_masters_without_object_lock_stop_start_with_one_line(moto, tmp_path):
    """With retention asked for, a masters bucket without Object Lock used to fail every promote
    with a 502 that said to try again."""
    env = dict(os.environ, REELD_DATA_DIR=str(tmp_path), REELD_LISTEN=f"127.0.0.1:{free_port()}",
               **s3_env(moto, S3_BUCKET_MASTERS="masters", OBJECT_LOCK_DEFAULT_DAYS="2"))
    out = subprocess.run([reeld_bin(), "serve", "--roles", "api"], env=env, capture_output=True,
                         text=True, timeout=30)
    assert out.returncode != 0
    line = [l for l in out.stderr.splitlines() if l.startswith("reeld:")]
    assert line and "has no Object Lock" in line[0] and "buckets init" in line[0], out.stderr


def test_s3_multipart_complete_and_promote(reeld_factory, moto):
    r = reeld_factory(env=s3_env(moto, REELD_MULTIPART_THRESHOLD="5M", REELD_PART_SIZE="5M"))
    data = os.urandom(6 << 20)
    up = new_upload(r, len(data))
    aid, u = up["asset_id"], up["upload"]
    assert u["part_size"] == 5 << 20 and [p["n"] for p in u["parts"]] == [1, 2]
    st, _, err = call(r, "POST", f"/api/assets/{aid}/promote")
    assert st == 409 and err["error"]["code"] == "upload_incomplete"
    parts = put_parts(u, data)
    st, _, err = call(r, "POST", f"/api/uploads/{aid}/complete", {"parts": parts[:1]})
    assert st == 400
    st, _, done = call(r, "POST", f"/api/uploads/{aid}/complete", {"parts": parts})
    assert st == 200 and done["completed"], done
    st, _, job = call(r, "POST", f"/api/assets/{aid}/promote")
    assert st == 202, job
    assert moto["s3"].head_object(Bucket="masters", Key=aid)["ContentLength"] == len(data)



def test_s3_multipart_upload_left_unfinished_is_aborted_when_it_expires(reeld_factory, moto):
    """An upload never completed expires with its multipart upload aborted in the bucket (its
    parts are storage someone pays for), and a second asset's upload is left alone."""
    r = reeld_factory(env=s3_env(moto, REELD_MULTIPART_THRESHOLD="5M", REELD_PART_SIZE="5M",
                                 REELD_UPLOAD_EXPIRE_SEC="2"))
    s3 = moto["s3"]
    gone = new_upload(r, 6 << 20)
    p1 = gone["upload"]["parts"][0]
    st, _, body = put_url(p1["url"], os.urandom(5 << 20))
    assert st == 200, body

    def open_uploads():
        return {u["Key"] for u in s3.list_multipart_uploads(Bucket="staging").get("Uploads", [])}

    assert gone["asset_id"] in open_uploads()
    deadline = time.time() + 20
    while time.time() < deadline and gone["asset_id"] in open_uploads():
        time.sleep(0.3)
    assert gone["asset_id"] not in open_uploads()
    st, _, asset = call(r, "GET", f"/api/assets/{gone['asset_id']}")
    assert st == 200 and asset["state"] == "expired", asset
    fresh = new_upload(r, 6 << 20)
    assert fresh["asset_id"] in open_uploads()

def test_s3_gone_when_a_multipart_upload_starts_is_502_and_writes_nothing(reeld_factory, moto):
    """The front starts the multipart upload through the asynchronous blob store before the
    row: with S3 unreachable the answer is 502 storage_failed, no asset is written, and once
    S3 is back the next upload is made whole."""
    from servers import Forwarder
    gate = Forwarder(int(moto["endpoint"].rsplit(":", 1)[1]))
    r = reeld_factory(env=s3_env(moto, S3_ENDPOINT=f"http://127.0.0.1:{gate.port}",
                                 REELD_MULTIPART_THRESHOLD="5M", REELD_PART_SIZE="5M"))
    gate.cut()
    try:
        st, _, err = call(r, "POST", "/api/uploads",
                          {"filename": "a.mp4", "content_type": "video/mp4", "size": 6 << 20})
        assert st == 502 and err["error"]["code"] == "storage_failed", (st, err)
        st, _, listing = call(r, "GET", "/api/assets")
        assert st == 200 and listing["assets"] == [], listing
    finally:
        gate.mend()
    up = new_upload(r, 6 << 20)
    assert up["upload"]["upload_id"] and len(up["upload"]["parts"]) == 2
    assert up["asset_id"] in {u["Key"] for u in moto["s3"].list_multipart_uploads(
        Bucket="staging").get("Uploads", [])}


def test_s3_gone_when_a_multipart_upload_completes_is_502_then_it_completes(reeld_factory, moto):
    """The completion runs through the asynchronous blob store on the front: S3 unreachable is
    502 storage_failed and the upload stays open; the same call once S3 is back completes it,
    and a third call (a client retrying) is answered from the row, still 200."""
    from servers import Forwarder
    gate = Forwarder(int(moto["endpoint"].rsplit(":", 1)[1]))
    r = reeld_factory(env=s3_env(moto, S3_ENDPOINT=f"http://127.0.0.1:{gate.port}",
                                 REELD_MULTIPART_THRESHOLD="5M", REELD_PART_SIZE="5M"))
    data = os.urandom(6 << 20)
    up = new_upload(r, len(data))
    aid = up["asset_id"]
    parts = put_parts(up["upload"], data)
    gate.cut()
    try:
        st, _, err = call(r, "POST", f"/api/uploads/{aid}/complete", {"parts": parts})
        assert st == 502 and err["error"]["code"] == "storage_failed", (st, err)
    finally:
        gate.mend()
    assert aid in {x["Key"] for x in moto["s3"].list_multipart_uploads(
        Bucket="staging").get("Uploads", [])}
    for _ in range(2):
        st, _, done = call(r, "POST", f"/api/uploads/{aid}/complete", {"parts": parts})
        assert st == 200 and done == {"asset_id": aid, "completed": True}, (st, done)
    assert moto["s3"].head_object(Bucket="staging", Key=aid)["ContentLength"] == len(data)
    st, _, job = call(r, "POST", f"/api/assets/{aid}/promote")
    assert st == 202, job


def test_writes_in_flight_past_the_nodes_bound_are_503_busy(reeld_factory, moto):
    """REELD_API_INFLIGHT_MAX bounds the write chains a node holds at once (nothing else did
    once they left the writers' bounded mailboxes): with a bound of 1 and S3 answering slowly,
    an upload sent while a promote waits on S3 is 503 busy with Retry-After; once the promote
    has answered the upload goes."""
    import threading
    from servers import Forwarder
    gate = Forwarder(int(moto["endpoint"].rsplit(":", 1)[1]))
    r = reeld_factory(env=s3_env(moto, S3_ENDPOINT=f"http://127.0.0.1:{gate.port}",
                                 REELD_API_INFLIGHT_MAX="1"))
    up = new_upload(r, 4)
    assert put_url(up["upload"]["url"], b"slow")[0] == 200
    gate.delay = 1.5
    got = {}
    t = threading.Thread(target=lambda: got.update(
        promote=call(r, "POST", f"/api/assets/{up['asset_id']}/promote")))
    t.start()
    try:
        time.sleep(0.5)  # the promote waits on its HEAD, held 1.5 s
        st, headers, err = call(r, "POST", "/api/uploads",
                                {"filename": "b.mp4", "content_type": "video/mp4", "size": 4})
        assert st == 503 and err["error"]["code"] == "busy", (st, err)
        assert headers.get("retry-after") == "1", headers
        assert call(r, "GET", f"/api/assets/{up['asset_id']}")[0] == 200  # reads are not held
    finally:
        t.join(30)
        gate.delay = 0
    assert got["promote"][0] == 202, got
    assert new_upload(r, 4)["asset_id"]
    st, _, metrics = call(r, "GET", "/metrics")
    assert b'reeld_api_refused_total{code="503",class="busy"} 1' in metrics, "counted"


def test_a_completion_whose_answer_was_lost_is_completed_again(reeld_factory, moto):
    """A multipart upload completed in the bucket while the row still says uploading (an
    earlier completion whose store write or answer was lost; here boto3 completes it): the
    completion answers 200 and the row moves on, so the promote goes. (moto, like S3 for a
    while after, completes a completed upload again; a store that answers NoSuchUpload instead
    is met by a HEAD of the object, which this server cannot show.) A wrong ETag on a live
    upload is 400 invalid_parts and leaves it uploading."""
    r = reeld_factory(env=s3_env(moto, REELD_MULTIPART_THRESHOLD="5M", REELD_PART_SIZE="5M"))
    s3 = moto["s3"]
    data = os.urandom(6 << 20)
    ups = [new_upload(r, len(data)) for _ in range(2)]
    done = [put_parts(up["upload"], data) for up in ups]
    lost, bad = ups
    s3.complete_multipart_upload(
        Bucket="staging", Key=lost["asset_id"], UploadId=lost["upload"]["upload_id"],
        MultipartUpload={"Parts": [{"PartNumber": p["n"], "ETag": p["etag"]} for p in done[0]]})
    st, _, ok = call(r, "POST", f"/api/uploads/{lost['asset_id']}/complete", {"parts": done[0]})
    assert st == 200 and ok["completed"], (st, ok)
    assert call(r, "POST", f"/api/assets/{lost['asset_id']}/promote")[0] == 202
    wrong = [dict(done[1][0], etag='"0123456789abcdef0123456789abcdef"'), done[1][1]]
    st, _, err = call(r, "POST", f"/api/uploads/{bad['asset_id']}/complete", {"parts": wrong})
    assert st == 400 and err["error"]["code"] == "invalid_parts", (st, err)
    st, _, asset = call(r, "GET", f"/api/assets/{bad['asset_id']}")
    assert asset["state"] == "uploading", asset


def test_promote_when_object_storage_fails_answers_502_and_promotes_nothing(reeld_factory, moto):
    """The promote's HEAD and copy run through the asynchronous blob store on the front: S3
    unreachable at the HEAD is 502 storage_failed; a copy the storage refuses (the masters
    bucket is missing) is 502 with the storage's own sentence; neither writes a job, and once
    storage is right the same asset promotes."""
    from servers import Forwarder
    gate = Forwarder(int(moto["endpoint"].rsplit(":", 1)[1]))
    r = reeld_factory(env=s3_env(moto, S3_ENDPOINT=f"http://127.0.0.1:{gate.port}",
                                 S3_BUCKET_MASTERS="masters-not-yet"))
    data = os.urandom(2000)
    up = new_upload(r, len(data))
    assert put_url(up["upload"]["url"], data)[0] == 200
    aid = up["asset_id"]
    gate.cut()
    try:
        st, _, err = call(r, "POST", f"/api/assets/{aid}/promote")
        assert st == 502 and err["error"]["code"] == "storage_failed", (st, err)
        assert "try again" in err["error"]["message"]
    finally:
        gate.mend()
    st, _, err = call(r, "POST", f"/api/assets/{aid}/promote")
    assert st == 502 and err["error"]["code"] == "storage_failed", (st, err)
    assert "refused the copy to masters" in err["error"]["message"], err
    st, _, asset = call(r, "GET", f"/api/assets/{aid}")
    assert st == 200 and asset["state"] == "uploading" and asset.get("job_id") in (None, ""), asset
    moto["s3"].create_bucket(Bucket="masters-not-yet")
    st, _, job = call(r, "POST", f"/api/assets/{aid}/promote")
    assert st == 202 and job["asset_id"] == aid, job
    assert moto["s3"].head_object(Bucket="masters-not-yet", Key=aid)["ContentLength"] == len(data)
    st, _, again = call(r, "POST", f"/api/assets/{aid}/promote")  # the same job, not a second
    assert st == 202 and again["job_id"] == job["job_id"], again


def test_store_down_when_a_multipart_upload_is_created_aborts_it(reeld_factory, moto, postgres):
    """The multipart upload is started before the row: when the row cannot be written (the
    store is down) the answer is 503 with Retry-After, and the upload nobody was told of is
    aborted, not left holding parts in the bucket."""
    r = reeld_factory(env=s3_env(moto, POSTGRES_URL=postgres.new_database(),
                                 REELD_MULTIPART_THRESHOLD="5M", REELD_PART_SIZE="5M"),
                      args=("--cores", "1"))
    s3 = moto["s3"]

    def open_uploads():
        return {(u["Key"], u["UploadId"])
                for u in s3.list_multipart_uploads(Bucket="staging").get("Uploads", [])}

    kept = new_upload(r, 6 << 20)["asset_id"]
    before = open_uploads()
    assert kept in {k for k, _ in before}
    postgres.stop()
    try:
        time.sleep(0.3)
        st, headers, err = call(r, "POST", "/api/uploads",
                                {"filename": "a.mp4", "content_type": "video/mp4",
                                 "size": 6 << 20})
        assert st == 503 and headers.get("retry-after") == "1", (st, err)
        assert err["error"]["code"] == "store_unavailable"
        deadline = time.time() + 10
        while time.time() < deadline and open_uploads() != before:
            time.sleep(0.2)
        assert open_uploads() == before  # the new one aborted, the first left alone
    finally:
        postgres.start()


# ---- the OpenAPI document ----

def test_openapi_document_and_schemathesis(reeld_factory, tmp_path):
    r = reeld_factory()
    st, hdrs, doc = call(r, "GET", "/api/docs")
    assert st == 200 and doc["openapi"].startswith("3.1")
    assert set(doc["paths"]) >= {"/api/uploads", "/api/uploads/{id}/complete",
                                 "/api/assets/{id}/promote", "/api/assets/{id}/playback"}
    pytest.importorskip("schemathesis")
    proc = subprocess.run(
        [sys.executable, "-m", "schemathesis.cli", "run", f"http://{r.addr}/api/docs",
         "--checks", "not_a_server_error", "--hypothesis-max-examples", "8",
         "--hypothesis-derandomize", "--experimental", "openapi-3.1", "--show-trace"],
        capture_output=True, text=True, timeout=90, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]


def test_a_slow_promote_does_not_hold_up_status_polls(reeld_factory, moto):
    """A promote waiting seconds on object storage (HEAD, CopyObject) used to hold every other
    API request of the node behind it. It now waits on the front's loop without blocking it:
    status polls, playback links, the listing and new uploads (one PUT: they ask S3 nothing)
    are answered meanwhile."""
    import threading
    from servers import Forwarder
    slow = Forwarder(int(moto["endpoint"].rsplit(":", 1)[1]))
    r = reeld_factory(env=s3_env(moto, S3_ENDPOINT=f"http://127.0.0.1:{slow.port}"))
    data = os.urandom(1000)
    up = new_upload(r, len(data))
    assert put_url(up["upload"]["url"], data)[0] == 200
    aid = up["asset_id"]
    slow.delay = 2.0
    done = {}

    def promote():
        t = time.time()
        done["status"] = call(r, "POST", f"/api/assets/{aid}/promote")[0]
        done["secs"] = time.time() - t

    th = threading.Thread(target=promote)
    th.start()
    time.sleep(0.3)  # the promote is waiting on its HEAD now
    took = []
    for path in [f"/api/assets/{aid}", f"/api/assets/{aid}/playback", "/api/assets",
                 "/api/health"] * 3:
        t = time.time()
        st, _, body = call(r, "GET", path)
        took.append(time.time() - t)
        assert st == (409 if path.endswith("/playback") else 200), (path, body)  # not yet promoted
    for _ in range(3):
        t = time.time()
        new_upload(r, 10)  # a write, answered on the loops
        took.append(time.time() - t)
    assert "status" not in done, "the promote finished before the reads were tried"
    th.join(30)
    slow.delay = 0.0
    assert done["status"] == 202 and done["secs"] >= 2, done
    # Generous: a read held behind the promote waits two seconds or more.
    assert max(took) < 1.0, took
