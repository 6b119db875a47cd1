"""The command line: help, version, configuration errors, and a graceful stop."""
import os
import signal
import subprocess

from conftest import free_port, reeld_bin


def run(*args, env=None):
    e = dict(os.environ)
    e.update(env or {})
    return subprocess.run([reeld_bin(), *args], env=e, capture_output=True, text=True, timeout=30)


def test_help_lists_commands_and_settings():
    r = run("--help")
    assert r.returncode == 0
    assert "reeld serve" in r.stdout
    for name in ("REELD_LISTEN", "REELD_CORES", "POSTGRES_URL", "S3_ENDPOINT", "ENCODER"):
        assert name in r.stdout


def test_version():
    r = run("version")
    assert r.returncode == 0
    assert r.stdout.startswith("reeld ")


def test_no_command_is_usage_error():
    r = run()
    assert r.returncode == 2
    assert "Usage" in r.stderr


def test_unknown_command():
    r = run("frobnicate")
    assert r.returncode == 2
    assert "unknown command 'frobnicate'" in r.stderr


def one_line_error(env=None, args=()):
    r = run("serve", *args, env=env)
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    return lines[0]


def test_bad_settings_stop_with_one_line_naming_the_variable():
    assert "REELD_CORES" in one_line_error({"REELD_CORES": "zero"})
    assert "REELD_CORES" in one_line_error({"REELD_CORES": "0"})
    assert "REELD_LISTEN" in one_line_error({"REELD_LISTEN": "localhost"})
    assert "REELD_LISTEN" in one_line_error({"REELD_LISTEN": "127.0.0.1:99999"})
    assert "ENCODER" in one_line_error({"ENCODER": "quicksync"})
    assert "POSTGRES_URL" in one_line_error({"POSTGRES_URL": "mysql://x"})
    assert "HLS_SEGMENT_SEC" in one_line_error({"HLS_SEGMENT_SEC": "4s"})
    assert "CACHE_MAX_BYTES" in one_line_error({"CACHE_MAX_BYTES": "lots"})
    assert "JWT_SECRET" in one_line_error({"JWT_SECRET": "short"})
    assert "REELD_API_KEYS" in one_line_error({"REELD_API_KEYS": "nocolon"})
    assert "S3_ENDPOINT" in one_line_error({"S3_ENDPOINT": "http://127.0.0.1:9000"})
    assert "differ" in one_line_error({"REDIS_URL": "redis://a", "VALKEY_URL": "redis://b"})
    assert "unknown option" in one_line_error(args=("--frob",))
    assert "--listen needs a value" in one_line_error(args=("--listen",))


def test_short_api_key_stops_start(tmp_path):
    """A guessable key is refused at start, in one line that names the variable and the org but
    never prints a key."""
    for keys in ("acme:short-key", "acme:0123456789abcdef,beta:fifteen-bytes!",
                 "acme:0123456789abcde"):
        line = one_line_error({"REELD_API_KEYS": keys, "REELD_DATA_DIR": str(tmp_path)})
        assert line.startswith("reeld: REELD_API_KEYS: ") and "at least 16 bytes" in line, line
        assert "short-key" not in line and "fifteen" not in line and "abcde" not in line, line
    # 16 bytes is enough: start, then stop.
    env = dict(os.environ, REELD_DATA_DIR=str(tmp_path), REELD_LISTEN=f"127.0.0.1:{free_port()}",
               REELD_API_KEYS="acme:0123456789abcdef,beta:fedcba9876543210")
    p = subprocess.Popen([reeld_bin(), "serve", "--cores", "1", "--roles", "api"], env=env,
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        for line in p.stderr:
            if '"event":"started"' in line:
                break
        assert p.poll() is None
    finally:
        p.send_signal(signal.SIGTERM)
        p.wait(timeout=30)
    assert p.returncode == 0


def test_sqlite_database_is_private(tmp_path, reeld_factory):
    """reeld.db (every org's assets and jobs) and its -wal and -shm are 0600 like the key files,
    whatever the umask; one left readable by an older reeld is tightened at start."""
    import stat

    def mode(p):
        return stat.S_IMODE(os.stat(p).st_mode)

    env = dict(os.environ, REELD_DATA_DIR=str(tmp_path))
    old = os.umask(0o022)
    try:
        r = subprocess.run([reeld_bin(), "migrate"], env=env, capture_output=True, text=True,
                           timeout=30)
        assert r.returncode == 0, r.stderr
        db = tmp_path / "reeld.db"
        assert mode(db) == 0o600
        os.chmod(db, 0o644)
        srv = reeld_factory(env={"REELD_CORES": "1"}, data_dir=str(tmp_path))
        assert mode(db) == 0o600
        # WAL mode: the -wal and -shm files exist while the store is open.
        for suffix in ("-wal", "-shm"):
            p = tmp_path / ("reeld.db" + suffix)
            assert p.exists() and mode(p) == 0o600, (suffix, oct(mode(p)))
        assert srv.stop() == 0
    finally:
        os.umask(old)


def test_sigterm_stops_gracefully_with_exit_0(tmp_path):
    env = dict(os.environ, REELD_DATA_DIR=str(tmp_path), REELD_LISTEN=f"127.0.0.1:{free_port()}")
    p = subprocess.Popen([reeld_bin(), "serve", "--cores", "1"], env=env,
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    seen = []
    for line in p.stderr:
        seen.append(line)
        if '"event":"started"' in line:
            break
    p.send_signal(signal.SIGTERM)
    _, err = p.communicate(timeout=15)
    err = "".join(seen) + err
    assert p.returncode == 0, err
    assert '"event":"stopping"' in err
    assert '"event":"stopped"' in err
