"""The jobs and assets routes over HTTP against `reeld serve`: lookups, pages with opaque
cursors, cancel, the errors (404, 409, 400) and 503 + Retry-After while PostgreSQL is down;
/api/health carries the queue counts."""
import json
import subprocess
import time
import urllib.error
import urllib.request

from test_jobs import add_job, wait_for


def call(r, method, path, body=None):
    """One request through urllib (it sends Connection: close); `body` goes as JSON."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(f"http://{r.addr}{path}", data=data, method=method,
                                 headers={"Content-Type": "application/json"} if data else {})
    try:
        with urllib.request.urlopen(req, timeout=15) as resp:
            return resp.status, dict(resp.headers), json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), json.loads(e.read() or b"null")


def test_job_routes_lookups_pages_cancel_and_errors(reeld_factory, tmp_path):
    env = {"REELD_DATA_DIR": str(tmp_path)}
    r = reeld_factory(env=env, args=("--cores", "1"))
    ids = [add_job(env, 10 + i)["id"] for i in range(5)]

    st, _, job = call(r, "GET", f"/api/jobs/{ids[0]}")
    assert st == 200 and job["state"] == "queued" and job["id"] == str(ids[0])
    assert call(r, "GET", "/api/jobs/987654")[0] == 404
    assert call(r, "GET", "/api/jobs/abc")[0] == 404

    seen, cursor, pages = [], None, 0
    while True:
        path = "/api/jobs?state=queued&limit=2" + (f"&cursor={cursor}" if cursor else "")
        st, _, page = call(r, "GET", path)
        assert st == 200, page
        seen += [int(j["id"]) for j in page["jobs"]]
        cursor = page["next_cursor"]
        pages += 1
        if cursor is None:
            break
    assert seen == ids and pages == 3

    st, _, err = call(r, "GET", "/api/jobs?cursor=not-a-cursor!")
    assert st == 400 and err["error"]["code"] == "bad_cursor"
    assert call(r, "GET", "/api/jobs?state=nope")[0] == 400
    st, _, assets = call(r, "GET", "/api/assets")
    assert st == 200 and assets == {"assets": [], "next_cursor": None}
    assert call(r, "GET", f"/api/assets?cursor={cursor or 'x'}")[0] == 400
    assert call(r, "GET", "/api/assets/1")[0] == 404

    st, _, body = call(r, "DELETE", f"/api/jobs/{ids[1]}")
    assert st == 200 and body["state"] == "cancelled" and body["was"] == "queued"
    st, _, err = call(r, "DELETE", f"/api/jobs/{ids[1]}")
    assert st == 409 and err["error"]["code"] == "job_finished"
    assert call(r, "DELETE", "/api/jobs/987654")[0] == 404

    def health_counts():
        q = call(r, "GET", "/api/health")[2]["queue"]
        return q if q.get("failed") == 1 else None
    q = wait_for(health_counts, 10, "the health counts to catch up")
    assert q["waiting"] == 4 and q["active"] == 0 and q["dead"] == 0


def test_store_down_is_503_with_retry_after(reeld_factory, postgres):
    env = {"POSTGRES_URL": postgres.new_database()}
    r = reeld_factory(env=env, args=("--cores", "1"))
    job = add_job(env, 1)
    assert call(r, "GET", f"/api/jobs/{job['id']}")[0] == 200
    postgres.stop()
    try:
        time.sleep(0.3)
        st, headers, err = call(r, "GET", f"/api/jobs/{job['id']}")
        assert st == 503, err
        assert headers.get("Retry-After") == "1"
        assert err["error"]["code"] == "store_unavailable"
        # The reads the event loops answer themselves (the listing, a status poll) too.
        for path in ("/api/assets", "/api/assets/a000000000000000000000000"):
            st, headers, err = call(r, "GET", path)
            assert st == 503 and headers.get("Retry-After") == "1", (path, st, err)
            assert err["error"]["code"] == "store_unavailable"
        # So do an upload's creation, a promote, a completion, an export, a clip and an
        # export's cancel (their first store statements).
        for path, body in (("/api/uploads", {"filename": "a.mp4", "content_type": "video/mp4",
                                             "size": 10}),
                           ("/api/assets/a000000000000000000000000/promote", {}),
                           ("/api/assets/a000000000000000000000000/exports", {"start": 0, "end": 1}),
                           ("/api/assets/a000000000000000000000000/clips", {"start": 0, "end": 1}),
                           ("/api/uploads/a000000000000000000000000/complete", {"parts": []}),
                           ("/api/exports/e000000000000000000000000/cancel", {})):
            st, headers, err = call(r, "POST", path, body)
            assert st == 503 and headers.get("Retry-After") == "1", (path, st, err)
            assert err["error"]["code"] == "store_unavailable"
        for method, path in (("DELETE", "/api/assets/a000000000000000000000000"),
                             ("DELETE", "/api/assets/a000000000000000000000000/captions/en")):
            st, headers, err = call(r, method, path)
            assert st == 503 and headers.get("Retry-After") == "1", (method, path, st, err)
        # A caption track's PUT: its cues are checked first, then the asset's row is asked for.
        req = urllib.request.Request(
            f"http://{r.addr}/api/assets/a000000000000000000000000/captions/en", method="PUT",
            data=b"WEBVTT\n\n00:01.000 --> 00:02.000\nhi\n", headers={"Content-Type": "text/vtt"})
        try:
            urllib.request.urlopen(req, timeout=15)
            st, headers = 200, {}
        except urllib.error.HTTPError as e:
            st, headers = e.code, dict(e.headers)
        assert st == 503 and headers.get("Retry-After") == "1", (st, headers)
    finally:
        postgres.start()
    wait_for(lambda: call(r, "GET", f"/api/jobs/{job['id']}")[0] == 200, 15,
             "the store to reconnect")


def test_metrics_export_job_counts_and_the_stream_for_an_autoscaler(reeld_factory, postgres,
                                                                      redis):
    redis.cli("FLUSHALL")
    env = {"POSTGRES_URL": postgres.new_database(), "REDIS_URL": redis.url}
    r = reeld_factory(env=env, args=("--cores", "1", "--roles", "api,edge"))
    add_job(env, 77, kind="transcode")  # no worker role here: it waits in the stream

    def scrape():
        with urllib.request.urlopen(f"http://{r.addr}/metrics", timeout=15) as resp:
            return resp.read().decode()

    wait_for(lambda: 'reeld_jobs{state="waiting"} 1' in scrape()
             and "reeld_queue_stream_entries 1" in scrape(), 10, "queue gauges in /metrics")
    text = scrape()
    assert "reeld_queue_stream_pending 0" in text
    # The queue is counted every second, the finished jobs at the first count and every 2 s or
    # more: the counts in between keep them (a count of the queue alone says -1 for them).
    for _ in range(8):
        time.sleep(0.5)
        text = scrape()
        assert 'reeld_jobs{state="completed"} 0' in text, text
        assert 'reeld_jobs{state="dead"} 0' in text, text
        assert 'reeld_jobs{state="waiting"} 1' in text, text
    check = subprocess.run(["promtool", "check", "metrics"], input=text.encode(),
                           capture_output=True)
    assert check.returncode == 0, check.stdout.decode() + check.stderr.decode()
