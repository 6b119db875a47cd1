"""`reeld presign` against botocore's generate_presigned_url: same inputs, same clock, same URL.

botocore builds a presigned S3 URL in botocore.auth.S3SigV4QueryAuth: the key is encoded with
'/' and '~' kept (every other byte outside A-Za-z0-9-._ as %XX), the query is the operation's
own parameters (none for get_object/put_object) then X-Amz-Algorithm, X-Amz-Credential,
X-Amz-Date, X-Amz-Expires, X-Amz-SignedHeaders in that order and X-Amz-Signature last, and the
clock is read through botocore.auth.get_current_datetime, which is what is fixed here.
"""

import datetime
import functools
import os
import stat
import subprocess
from unittest import mock

import boto3
import pytest
from botocore.config import Config

REELD = os.environ.get("REELD_BIN", "zig-out/bin/reeld")
ACCESS_KEY = "AKIAIOSFODNN7EXAMPLE"
SECRET_KEY = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"

KEYS = [
    "test.txt",
    "my video.mp4",
    "a+b=c&d.mp4",
    "price$100 (final).mov",
    "~user/notes~1.txt",
    "deep/path/to/some/segment_00001.ts",
    "leading//double/slash/",
    "/starts-with-slash",
    "unicode/vidéo-日本語-🎬.mp4",
    "percent%20literal%2F.bin",
    "every!*'();:@&=+$,?#[]-char",
    "tabs\tand\nnewlines",
    "x" * 900,
]
METHODS = [("GET", "get_object"), ("PUT", "put_object")]
EXPIRES = [1, 900, 3600, 86400, 604800]
CLOCKS = ["20130524T000000Z", "20261122T235959Z", "20240229T120000Z"]
ENDPOINTS = [
    ("http://127.0.0.1:9000", "us-east-1"),
    ("https://s3.eu-central-1.amazonaws.com", "eu-central-1"),
    ("http://minio.internal:80", "auto"),
]


def reeld(*args, env=None, check=True):
    full = {k: v for k, v in os.environ.items() if not k.startswith(("S3_", "REELD_"))}
    full.update(env or {})
    proc = subprocess.run([REELD, "presign", *args], env=full, capture_output=True, text=True,
                          timeout=30)
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


@functools.lru_cache(maxsize=None)
def s3_client(endpoint, region):
    session = boto3.session.Session(aws_access_key_id=ACCESS_KEY,
                                    aws_secret_access_key=SECRET_KEY, region_name=region)
    return session.client("s3", endpoint_url=endpoint,
                          config=Config(signature_version="s3v4",
                                        s3={"addressing_style": "path"}))


def botocore_url(endpoint, region, operation, bucket, key, expires, at):
    client = s3_client(endpoint, region)
    when = datetime.datetime.strptime(at, "%Y%m%dT%H%M%SZ")
    with mock.patch("botocore.auth.get_current_datetime", return_value=when):
        return client.generate_presigned_url(operation, Params={"Bucket": bucket, "Key": key},
                                             ExpiresIn=expires)


def s3_env(endpoint, region):
    return {"S3_ENDPOINT": endpoint, "S3_REGION": region, "S3_ACCESS_KEY_ID": ACCESS_KEY,
            "S3_SECRET_ACCESS_KEY": SECRET_KEY}


@pytest.mark.parametrize("key", KEYS, ids=lambda k: repr(k[:24]))
@pytest.mark.parametrize("method,operation", METHODS)
def test_matches_botocore_for_keys(key, method, operation):
    endpoint, region = ENDPOINTS[0]
    at = CLOCKS[1]
    want = botocore_url(endpoint, region, operation, "staging", key, 3600, at)
    got = reeld("--method", method, "--bucket", "staging", "--key", key, "--expires", "3600",
                "--at", at, env=s3_env(endpoint, region)).stdout
    assert got == want + "\n"


@pytest.mark.parametrize("expires", EXPIRES)
@pytest.mark.parametrize("at", CLOCKS)
@pytest.mark.parametrize("endpoint,region", ENDPOINTS)
def test_matches_botocore_for_clocks_expiries_endpoints(expires, at, endpoint, region):
    key = "uploads/2024/asset 42/master+v1.mp4"
    for method, operation in METHODS:
        want = botocore_url(endpoint, region, operation, "masters", key, expires, at)
        got = reeld(f"--method={method}", "--bucket=masters", f"--key={key}",
                    f"--expires={expires}", f"--at={at}", env=s3_env(endpoint, region)).stdout
        assert got == want + "\n"


def test_default_expiry_is_botocores():
    endpoint, region = ENDPOINTS[0]
    want = botocore_url(endpoint, region, "get_object", "b", "k", 3600, CLOCKS[0])
    got = reeld("--method", "GET", "--bucket", "b", "--key", "k", "--at", CLOCKS[0],
                env=s3_env(endpoint, region)).stdout
    assert got == want + "\n"


def test_embedded_mode_signs_for_own_listener(tmp_path):
    env = {"REELD_DATA_DIR": str(tmp_path / "data"), "REELD_LISTEN": "127.0.0.1:8088"}
    args = ("--method", "PUT", "--bucket", "staging", "--key", "in/a b.mp4", "--at", CLOCKS[0])
    first = reeld(*args, env=env).stdout
    assert first.startswith("http://127.0.0.1:8088/blob/staging/in/a%20b.mp4?X-Amz-Algorithm=")
    assert "X-Amz-Credential=REELD" in first
    seed = tmp_path / "data" / "sigv4.seed"
    assert stat.S_IMODE(seed.stat().st_mode) == 0o600
    assert reeld(*args, env=env).stdout == first  # stable across runs

    seed.chmod(0o644)
    bad = reeld(*args, env=env, check=False)
    assert bad.returncode == 1 and "chmod 600" in bad.stderr
    assert bad.stderr.count("\n") == 1


def test_embedded_mode_uses_configured_keys(tmp_path):
    env = {"REELD_DATA_DIR": str(tmp_path / "data"), "S3_ACCESS_KEY_ID": ACCESS_KEY,
           "S3_SECRET_ACCESS_KEY": SECRET_KEY}
    got = reeld("--method", "GET", "--bucket", "b", "--key", "k", "--at", CLOCKS[0],
                env=env).stdout
    # Same signature botocore computes for host 127.0.0.1:8080 and path /blob/b/k.
    want = botocore_url("http://127.0.0.1:8080/blob", "us-east-1", "get_object", "b", "k", 3600,
                        CLOCKS[0])
    assert got == want + "\n"
    assert not (tmp_path / "data" / "sigv4.seed").exists()


@pytest.mark.parametrize("args,message", [
    ([], "--method is required"),
    (["--method", "POST", "--bucket", "b", "--key", "k"], "--method must be GET or PUT"),
    (["--method", "GET", "--key", "k"], "--bucket is required"),
    (["--method", "GET", "--bucket", "b"], "--key is required"),
    (["--method", "GET", "--bucket", "b/c", "--key", "k"], "--bucket must be"),
    (["--method", "GET", "--bucket", "b", "--key", "k", "--expires", "604801"],
     "--expires must be seconds from 1 to 604800"),
    (["--method", "GET", "--bucket", "b", "--key", "k", "--expires", "x"], "--expires must be"),
    (["--method", "GET", "--bucket", "b", "--key", "k", "--at", "2013-05-24"], "--at must be"),
    (["--method", "GET", "--bucket", "b", "--key", "k", "--at"], "--at needs a value"),
    (["--method", "GET", "--bucket", "b", "--key", "k", "--colour", "red"], "unknown option"),
])
def test_bad_flags_give_one_line(args, message, tmp_path):
    proc = reeld(*args, env={"REELD_DATA_DIR": str(tmp_path)}, check=False)
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert message in proc.stderr
    assert proc.stderr.startswith("reeld presign: ") and proc.stderr.count("\n") == 1
