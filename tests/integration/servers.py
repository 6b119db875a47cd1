"""Real PostgreSQL and Redis servers for the integration tests, on loopback, in temporary
directories, on free ports; stopped afterwards.

    def test_x(postgres, redis):
        url = postgres.new_database()   # a fresh, empty database: postgres://...
        postgres.restart()              # stop (fast) and start again on the same port
        redis.restart(flush=True)       # a new, empty Redis on the same port

PostgreSQL runs as the unprivileged `postgres` user when the tests run as root (Debian's
package creates it), else as the current user. Both are tuned for tests (no fsync)."""
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time

import pytest

PG_BIN = "/usr/lib/postgresql/15/bin"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_pg_user(cmd):
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *cmd]
    return cmd


class Postgres:
    def __init__(self, fsync=False):
        self.dir = tempfile.mkdtemp(prefix="reeld-pg-")
        os.chmod(self.dir, 0o755)
        self.data = os.path.join(self.dir, "data")
        self.port = free_port()
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres", "postgres")
        subprocess.run(_as_pg_user([f"{PG_BIN}/initdb", "-D", self.data, "-A", "trust",
                                    "-U", "reeld", "--no-sync", "-E", "UTF8"]),
                       check=True, capture_output=True)
        opts = [f"-c port={self.port}", "-c listen_addresses=127.0.0.1",
                f"-c unix_socket_directories={self.dir}", "-c max_connections=100",
                "-c shared_buffers=128MB"]
        if not fsync:
            opts += ["-c fsync=off", "-c synchronous_commit=off", "-c full_page_writes=off"]
        self.opts = " ".join(opts)
        self.start()
        self.ndb = 0

    def start(self):
        subprocess.run(_as_pg_user([f"{PG_BIN}/pg_ctl", "-D", self.data, "-o", self.opts,
                                    "-l", os.path.join(self.dir, "log"), "-w", "-t", "30",
                                    "start"]), check=True, capture_output=True)

    def stop(self, mode="fast"):
        subprocess.run(_as_pg_user([f"{PG_BIN}/pg_ctl", "-D", self.data, "-m", mode, "-w",
                                    "stop"]), capture_output=True)

    def restart(self, down_sec=0.0):
        self.stop()
        time.sleep(down_sec)
        self.start()

    def url(self, db="postgres"):
        return f"postgres://reeld@127.0.0.1:{self.port}/{db}"

    def psql(self, sql, db="postgres"):
        r = subprocess.run(["psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d",
                            self.url(db), "-c", sql], capture_output=True, text=True, timeout=30)
        if r.returncode != 0:
            raise RuntimeError(f"psql failed: {r.stderr}")
        return r.stdout.strip()

    def new_database(self):
        self.ndb += 1
        name = f"t{self.ndb}_{os.getpid()}"
        self.psql(f"CREATE DATABASE {name}")
        return self.url(name)

    def close(self):
        self.stop("immediate")
        shutil.rmtree(self.dir, ignore_errors=True)


class Redis:
    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="reeld-redis-")
        self.port = free_port()
        self.proc = None
        self.start()

    def start(self):
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", self.dir, "--logfile", ""],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 10
        while time.time() < deadline:
            if self.cli("PING") == "PONG":
                return
            time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def restart(self, flush=True, down_sec=0.0):
        """Stops Redis and starts an empty one (nothing is saved: the stream is lost)."""
        assert flush, "this Redis keeps nothing across a restart"
        self.stop()
        time.sleep(down_sec)
        self.start()

    def cli(self, *args):
        r = subprocess.run(["redis-cli", "-p", str(self.port), *args], capture_output=True,
                           text=True, timeout=10)
        return r.stdout.strip()

    @property
    def url(self):
        return f"redis://127.0.0.1:{self.port}"

    def close(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres():
    pg = Postgres()
    yield pg
    pg.close()


@pytest.fixture(scope="session")
def redis():
    r = Redis()
    yield r
    r.close()


class Forwarder:
    """A TCP forwarder to `upstream` on loopback. Between reeld and its S3 server it is the
    storage misbehaving: cut() resets every connection through it and refuses new ones until
    mend() (S3 going away); while `delay` is set, every answer is held that long (a slow S3)."""

    def __init__(self, upstream_port):
        import socket
        self.upstream, self.cut_now, self.conns, self.delay = upstream_port, False, [], 0.0
        self.lock = threading.Lock()
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self.accept, daemon=True).start()

    def accept(self):
        import socket
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            if self.cut_now:
                c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\1\0\0\0\0\0\0\0")
                c.close()
                continue
            u = socket.create_connection(("127.0.0.1", self.upstream))
            with self.lock:
                self.conns += [c, u]
            for a, b, answers in ((c, u, False), (u, c, True)):
                threading.Thread(target=self.pump, args=(a, b, answers), daemon=True).start()

    def pump(self, a, b, answers):
        try:
            while True:
                d = a.recv(65536)
                if not d:
                    break
                if answers and self.delay:
                    time.sleep(self.delay)
                b.sendall(d)
        except OSError:
            pass
        for s in (a, b):
            try:
                s.shutdown(2)
            except OSError:
                pass

    def cut(self):
        self.cut_now = True
        with self.lock:
            for s in self.conns:
                try:
                    s.shutdown(2)
                except OSError:
                    pass
            self.conns = []

    def mend(self):
        self.cut_now = False

    def close(self):
        self.cut()
        self.sock.close()
