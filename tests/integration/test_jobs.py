"""Durable jobs end to end, with the real binary and real servers: a worker killed while it
holds a job, PostgreSQL restarted mid-run, Redis restarted and emptied mid-run, retries until
dead, and cancel of a running job. Workers are `reeld worker` processes running "noop" jobs."""
import json
import os
import signal
import subprocess
import tempfile
import time

import pytest

from conftest import reeld_bin


_started = []


@pytest.fixture(autouse=True)
def _kill_leftover_workers():
    yield
    while _started:
        w = _started.pop()
        if w.proc.poll() is None:
            w.proc.kill()
            w.proc.wait()


class Worker:
    """A `reeld worker` process; stop() checks the graceful exit (0: no leak, no crash)."""

    def __init__(self, env, name):
        _started.append(self)
        self.name = name
        self.dir = tempfile.mkdtemp(prefix="reeld-worker-")
        self.log_path = os.path.join(self.dir, "log")
        e = dict(os.environ, REELD_NODE_NAME=name, REELD_LOG="debug", REELD_DRAIN_SEC="2")
        e.update(env)
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([reeld_bin(), "worker", "--cores", "1"], env=e,
                                     stdout=self.log, stderr=self.log, stdin=subprocess.DEVNULL)

    def events(self, name=None):
        if not self.log.closed:
            self.log.flush()
        out = []
        with open(self.log_path, "rb") as f:
            for line in f:
                try:
                    ev = json.loads(line)
                except ValueError:
                    continue
                if name is None or ev.get("event") == name:
                    out.append(ev)
        return out

    def logs(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        self.log.close()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        assert self.proc.returncode == 0, f"{self.name} exited {self.proc.returncode}:\n" + \
            self.logs()[-6000:]


def job_cli(env, *args):
    e = dict(os.environ)
    e.update(env)
    return subprocess.run([reeld_bin(), "job", *args], env=e, capture_output=True, text=True,
                          timeout=60)


def add_job(env, asset, kind="noop", max_attempts=5):
    r = job_cli(env, "add", str(asset), kind, "0", str(max_attempts))
    assert r.returncode == 0, r.stderr
    job = json.loads(r.stdout)
    job["id"] = int(job["id"])  # the API writes ids as strings (64-bit safe in JavaScript)
    return job


def get_job(env, job_id):
    r = job_cli(env, "get", str(job_id))
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def wait_for(pred, timeout, what):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def pg_jobs(pg, url):
    db = url.rsplit("/", 1)[1]
    rows = pg.psql("SELECT id, state, attempts, lease_owner FROM jobs ORDER BY id", db=db)
    out = []
    for line in rows.splitlines():
        i, state, attempts, owner = line.split("|")
        out.append({"id": int(i), "state": state, "attempts": int(attempts), "owner": owner})
    return out


def test_killed_worker_job_is_finished_by_another_after_the_lease(postgres, redis):
    redis.cli("FLUSHALL")
    env = {"POSTGRES_URL": postgres.new_database(), "REDIS_URL": redis.url,
           "REELD_JOB_LEASE_MS": "1500", "REELD_NOOP_SLOTS": "1"}
    a = Worker(dict(env, REELD_NOOP_WORK_MS="60000"), "node-a")
    job = add_job(env, 1)
    wait_for(lambda: get_job(env, job["id"])["state"] == "running", 20, "node-a to start")
    held = get_job(env, job["id"])
    assert held["lease_owner"] == "node-a" and held["attempts"] == 1

    # A second node with free workers must not take a job whose lease is alive.
    b = Worker(dict(env, REELD_NOOP_WORK_MS="100"), "node-b")
    wait_for(lambda: b.events("dispatcher_started"), 20, "node-b to start")
    time.sleep(1.0)
    assert get_job(env, job["id"])["lease_owner"] == "node-a"

    a.kill9()
    done = wait_for(lambda: (j := get_job(env, job["id"]))["state"] == "succeeded" and j,
                    30, "node-b to finish the job")
    assert done["lease_owner"] == "node-b"
    assert done["attempts"] == 2
    wait_for(lambda: [e for e in b.events("job_succeeded") if e["job"] == job["id"]],
                         5, "node-b to log the success")
    time.sleep(0.3)
    assert len([e for e in b.events("job_succeeded") if e["job"] == job["id"]]) == 1
    assert not [e for e in a.events("job_succeeded") if e["job"] == job["id"]]
    b.stop()


@pytest.mark.parametrize("queue", ["embedded", "redis"])
def test_postgres_restart_mid_run_loses_nothing(postgres, redis, queue):
    env = {"POSTGRES_URL": postgres.new_database(), "REELD_NOOP_SLOTS": "2",
           "REELD_JOB_POLL_MS": "50"}
    if queue == "redis":
        redis.cli("FLUSHALL")
        env["REDIS_URL"] = redis.url
    w = Worker(dict(env, REELD_NOOP_WORK_MS="150"), "node-pg")
    ids = [add_job(env, 100 + i)["id"] for i in range(16)]
    wait_for(lambda: w.events("job_succeeded"), 20, "a first job to finish")

    postgres.stop()
    try:
        r = job_cli(env, "add", "999", "noop")
        assert r.returncode == 75, (r.returncode, r.stderr)  # retryable: the API says 503
        assert "unreachable" in r.stderr or "connect" in r.stderr, r.stderr
        time.sleep(1.0)
    finally:
        postgres.start()
    url = env["POSTGRES_URL"]
    wait_for(lambda: all(j["state"] == "succeeded" for j in pg_jobs(postgres, url)), 40,
             "every job to succeed after the restart")
    jobs = pg_jobs(postgres, url)
    assert sorted(j["id"] for j in jobs) == sorted(ids)
    assert all(j["attempts"] == 1 for j in jobs), jobs
    assert w.events("store_connection_lost")
    w.stop()


def test_redis_restart_and_flush_republishes_from_postgres(postgres, redis):
    redis.cli("FLUSHALL")
    env = {"POSTGRES_URL": postgres.new_database(), "REDIS_URL": redis.url,
           "REELD_NOOP_SLOTS": "2"}
    # Jobs slow enough that most are still waiting in the stream when Redis loses it, however
    # loaded the machine is (at 150 ms a job, a slow restart let them all finish first).
    w = Worker(dict(env, REELD_NOOP_WORK_MS="600"), "node-r")
    wait_for(lambda: w.events("dispatcher_started"), 20, "the worker to start")
    ids = [add_job(env, 200 + i)["id"] for i in range(16)]
    wait_for(lambda: w.events("job_succeeded"), 20, "a first job to finish")

    redis.restart(flush=True)
    more = [add_job(env, 300 + i)["id"] for i in range(4)]
    url = env["POSTGRES_URL"]
    wait_for(lambda: all(j["state"] == "succeeded" for j in pg_jobs(postgres, url)), 40,
             "every job to succeed after Redis lost the stream")
    jobs = pg_jobs(postgres, url)
    assert sorted(j["id"] for j in jobs) == sorted(ids + more)
    assert all(j["attempts"] == 1 for j in jobs), jobs  # none ran twice
    assert w.events("queue_republished")
    started = [e["job"] for e in w.events("job_started")]
    assert len(started) == len(set(started)), started
    w.stop()


def test_retries_with_backoff_then_dead_with_the_last_error(tmp_path):
    env = {"REELD_DATA_DIR": str(tmp_path), "REELD_NOOP_FAIL_ATTEMPTS": "99",
           "REELD_JOB_RETRY_BASE_MS": "50", "REELD_JOB_POLL_MS": "20"}
    job = add_job(env, 7, max_attempts=3)
    w = Worker(env, "node-retry")
    dead = wait_for(lambda: (j := get_job(env, job["id"]))["state"] == "dead" and j, 20,
                    "the job to die")
    assert dead["attempts"] == 3
    assert "attempt 3 fails" in dead["error"]
    w.stop()
    assert job_cli(env, "cancel", str(job["id"])).returncode == 4  # finished: conflict


def test_cancel_stops_a_running_job_within_a_second(tmp_path):
    env = {"REELD_DATA_DIR": str(tmp_path), "REELD_JOB_LEASE_MS": "3000"}
    w = Worker(dict(env, REELD_NOOP_WORK_MS="30000"), "node-cancel")
    job = add_job(env, 8)
    wait_for(lambda: get_job(env, job["id"])["state"] == "running", 20, "the job to start")
    assert job_cli(env, "cancel", str(job["id"])).returncode == 0
    t0 = time.time()
    wait_for(lambda: w.events("worker_stopping"), 5, "the worker to stop")
    assert time.time() - t0 < 1.5  # heartbeat each second, then the worker stops at once
    assert get_job(env, job["id"])["state"] == "cancelled"
    assert job_cli(env, "cancel", "424242").returncode == 3  # unknown: not found
    w.stop()


def test_graceful_stop_hands_running_jobs_back(postgres):
    env = {"POSTGRES_URL": postgres.new_database(), "REELD_NOOP_SLOTS": "1"}
    a = Worker(dict(env, REELD_NOOP_WORK_MS="60000"), "node-stopping")
    job = add_job(env, 1)
    wait_for(lambda: get_job(env, job["id"])["state"] == "running", 20, "the job to start")
    t0 = time.time()
    a.stop()
    assert time.time() - t0 < 5
    back = get_job(env, job["id"])
    assert back["state"] == "queued" and back["attempts"] == 0, back
    assert a.events("job_released")
    b = Worker(dict(env, REELD_NOOP_WORK_MS="50"), "node-next")
    done = wait_for(lambda: (j := get_job(env, job["id"]))["state"] == "succeeded" and j, 20,
                    "another node to run it")
    assert done["attempts"] == 1 and done["lease_owner"] == "node-next"
    b.stop()


def test_rediss_is_refused_with_one_clear_line(tmp_path):
    env = dict(os.environ, REELD_DATA_DIR=str(tmp_path), POSTGRES_URL="postgres://x@127.0.0.1/x",
               REDIS_URL="rediss://cache.example:6380")
    for cmd in ("serve", "worker"):
        r = subprocess.run([reeld_bin(), cmd], env=env, capture_output=True, text=True,
                           timeout=30)
        assert r.returncode == 2, r.stderr
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and "REDIS_URL" in lines[0] and "TLS" in lines[0], r.stderr


def test_a_silent_worker_loses_its_lease_to_a_live_one(postgres):
    env = {"POSTGRES_URL": postgres.new_database(), "REELD_NOOP_SLOTS": "1",
           "REELD_JOB_LEASE_MS": "1200"}
    stuck = Worker(dict(env, REELD_NOOP_WORK_MS="60000", REELD_NOOP_SILENT="1"), "node-stuck")
    job = add_job(env, 1)
    wait_for(lambda: get_job(env, job["id"])["state"] == "running", 20, "the job to start")
    # Once the stuck node's lease runs out, both nodes race to claim the job on their polls; the
    # live one looks five times as often, so the stuck one rarely wins that race, and may win
    # it only a time or two (stalling again) before the live one gets the job.
    live = Worker(dict(env, REELD_NOOP_WORK_MS="100", REELD_JOB_POLL_MS="50"), "node-live")
    done = wait_for(lambda: (j := get_job(env, job["id"]))["state"] == "succeeded" and j, 20,
                    "the live node to take the job over")
    assert done["lease_owner"] == "node-live" and done["attempts"] in (2, 3, 4)
    assert stuck.events("job_stalled") and stuck.events("worker_stopping")
    stuck.stop()
    live.stop()


def test_a_dead_nodes_pending_entry_is_reclaimed_while_the_live_node_blocks(postgres, redis):
    """A node killed between reading a stream entry and acknowledging it leaves the entry
    pending under its name. A live node spends nearly all its time inside its blocking
    XREADGROUP; its sweep still XAUTOCLAIMs the entry once it is idle for the lease, claims
    the job in the store and acknowledges it, so nothing stays pending for good."""
    redis.cli("FLUSHALL")
    env = {"POSTGRES_URL": postgres.new_database(), "REDIS_URL": redis.url,
           "REELD_JOB_LEASE_MS": "1000", "REELD_NOOP_SLOTS": "1", "REELD_NOOP_WORK_MS": "1"}
    stream = "reeld:jobs:noop"
    job = add_job(env, 1)
    redis.cli("XGROUP", "CREATE", stream, "workers", "0", "MKSTREAM")
    redis.cli("XADD", stream, "*", "job", str(job["id"]))
    redis.cli("XREADGROUP", "GROUP", "workers", "dead-node", "COUNT", "1", "STREAMS", stream, ">")

    def pending():
        return int(redis.cli("XPENDING", stream, "workers").splitlines()[0])
    assert pending() == 1

    b = Worker(env, "node-b")
    wait_for(lambda: get_job(env, job["id"])["state"] == "succeeded", 20, "node-b to run the job")
    wait_for(lambda: pending() == 0, 15, "the dead node's entry to be reclaimed and acknowledged")
    assert redis.cli("XINFO", "CONSUMERS", stream, "workers").count("dead-node") == 1
    b.stop()
