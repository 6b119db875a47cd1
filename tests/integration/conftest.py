"""Shared helpers for the integration tests: the reeld binary under test, free loopback ports,
and a running `reeld serve` that is stopped (SIGTERM, exit 0 checked) after each test."""
import os
import signal
import socket
import subprocess
import tempfile
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def reeld_bin():
    return os.environ.get("REELD_BIN", os.path.join(ROOT, "zig-out", "bin", "reeld"))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Reeld:
    """A `reeld serve` process on a free loopback port with its own data directory."""

    def __init__(self, env=None, args=(), data_dir=None):
        self.port = free_port()
        self.addr = f"127.0.0.1:{self.port}"
        self.data_dir = data_dir or tempfile.mkdtemp(prefix="reeld-test-")
        self.log_path = os.path.join(self.data_dir, "reeld.log")
        e = dict(os.environ)
        e.update({"REELD_LISTEN": self.addr, "REELD_DATA_DIR": self.data_dir, "REELD_LOG": "debug"})
        e.update(env or {})
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([reeld_bin(), "serve", *args], env=e,
                                     stdout=self.log, stderr=self.log, stdin=subprocess.DEVNULL)
        self.wait_listening()

    def wait_listening(self, timeout=10.0):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"reeld exited with {self.proc.returncode}:\n{self.logs()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"reeld did not listen on {self.addr}:\n{self.logs()}")

    def logs(self):
        if not self.log.closed:
            self.log.flush()
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")

    def stop(self, timeout=15.0):
        """SIGTERM, then the exit status (0 expected from a graceful stop)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        return self.proc.returncode


@pytest.fixture
def reeld_factory():
    started = []

    def start(**kw):
        r = Reeld(**kw)
        started.append(r)
        return r

    yield start
    for r in started:
        rc = r.stop()
        assert rc == 0, f"reeld exited with {rc}:\n{r.logs()[-4000:]}"


# Real PostgreSQL and Redis, one of each per test session, for any test that names them.
from servers import postgres, redis  # noqa: E402,F401
