"""Assets are store rows, not memory of one API thread: every asset route answers for assets
made before a restart (SQLite and PostgreSQL, single PUT and S3 multipart), two `--roles api,edge`
nodes on one PostgreSQL and one S3 share them (create on one, promote on the other, poll both),
and the tenant listing and lookups keep orgs apart (another org's id is a 404, as an unknown
one). No worker runs here: a promoted asset stays `processing`, which is all these need."""
import os

from conftest import Reeld
from test_api import call, moto, put_parts, put_url, s3_env  # noqa: F401 (moto: a fixture)

KEYS = "acme:acme-key-0123456789abcdef,beta:beta-key-0123456789abcdef"
ACME = {"Authorization": "Bearer acme-key-0123456789abcdef"}
BETA = {"Authorization": "Bearer beta-key-0123456789abcdef"}
EDGE_KEY = "edge-key-for-durable-assets-0123456789"


def upload(r, size, who=ACME, name="clip.mp4"):
    st, _, body = call(r, "POST", "/api/uploads",
                       {"filename": name, "content_type": "video/mp4", "size": size}, who)
    assert st == 201, body
    return body


def get(r, aid, who=ACME, suffix=""):
    return call(r, "GET", f"/api/assets/{aid}{suffix}", headers=who)


def promote(r, aid, who=ACME):
    return call(r, "POST", f"/api/assets/{aid}/promote", headers=who)


def restart(r, env, roles="api,edge"):
    """Stops `r` (SIGTERM, exit 0) and starts the same node again on its data directory."""
    assert r.stop() == 0, r.logs()[-3000:]
    return Reeld(env=env, args=("--roles", roles), data_dir=r.data_dir)


def every_route_answers_after_restart(after, single, promoted):
    """`single`: uploaded, not promoted, before the restart; `promoted`: promoted before."""
    st, _, a = get(after, single["asset_id"])
    assert st == 200 and a["state"] == "uploading" and a["asset_id"] == single["asset_id"], a
    assert a["org"] == "acme" and a["size"] == 5 and "job_id" not in a
    st, _, err = get(after, single["asset_id"], suffix="/playback")
    assert st == 409 and err["error"]["code"] == "not_ready"
    st, _, job = promote(after, single["asset_id"])
    assert st == 202, job
    st, _, a = get(after, single["asset_id"])
    assert st == 200 and a["state"] == "processing" and a["job_id"] == job["job_id"], a
    assert a["progress"] == 0 and a["attempts"] == 0

    st, _, a = get(after, promoted["asset_id"])
    assert st == 200 and a["state"] == "processing" and a["job_id"] == promoted["job_id"], a
    st, _, again = promote(after, promoted["asset_id"])
    assert st == 202 and again["job_id"] == promoted["job_id"]  # the same job, still
    st, _, pb = get(after, promoted["asset_id"], suffix="/playback")
    assert st == 200 and pb["state"] == "processing" and pb["ready"] is False
    assert f"/{promoted['asset_id']}/master.m3u8" in pb["url"]
    st, _, page = call(after, "GET", "/api/assets", headers=ACME)
    assert st == 200, page
    ids = [x["asset_id"] for x in page["assets"]]
    assert ids.index(promoted["asset_id"]) < ids.index(single["asset_id"])  # newest first


def made_before_restart(r):
    single = upload(r, 5)
    assert put_url(single["upload"]["url"], b"12345")[0] == 200
    other = upload(r, 5)
    assert put_url(other["upload"]["url"], b"abcde")[0] == 200
    st, _, job = promote(r, other["asset_id"])
    assert st == 202, job
    return single, dict(other, job_id=job["job_id"])


def test_restart_embedded_sqlite(tmp_path):
    env = {"REELD_API_KEYS": KEYS}
    r = Reeld(env=env, args=("--roles", "api,edge"), data_dir=str(tmp_path))
    try:
        single, promoted = made_before_restart(r)
        r = restart(r, env)
        every_route_answers_after_restart(r, single, promoted)
        # The other org still sees none of it, after the restart as before.
        assert get(r, single["asset_id"], who=BETA)[0] == 404
    finally:
        assert r.stop() == 0, r.logs()[-3000:]


def test_restart_postgres_s3_multipart_completes_on_the_new_process(postgres, moto):
    env = s3_env(moto, POSTGRES_URL=postgres.new_database(), REELD_API_KEYS=KEYS,
                 REELD_MULTIPART_THRESHOLD="5M", REELD_PART_SIZE="5M", EDGE_SIGNING_KEY=EDGE_KEY)
    r = Reeld(env=env, args=("--roles", "api,edge"))
    try:
        single, promoted = made_before_restart(r)
        data = os.urandom(6 << 20)
        up = upload(r, len(data), name="big.mp4")
        aid = up["asset_id"]
        parts = put_parts(up["upload"], data)
        r = restart(r, env)
        every_route_answers_after_restart(r, single, promoted)
        assert promote(r, aid)[2]["error"]["code"] == "upload_incomplete"
        st, _, done = call(r, "POST", f"/api/uploads/{aid}/complete", {"parts": parts}, ACME)
        assert st == 200 and done["completed"], done
        assert get(r, aid)[2]["state"] == "uploaded"
        # Completing again (a retry whose answer was lost) is still a success.
        assert call(r, "POST", f"/api/uploads/{aid}/complete", {"parts": parts}, ACME)[0] == 200
        st, _, job = promote(r, aid)
        assert st == 202, job
        assert moto["s3"].head_object(Bucket="masters", Key=aid)["ContentLength"] == len(data)
        assert call(r, "POST", f"/api/uploads/{aid}/complete", {"parts": parts}, BETA)[0] == 404
    finally:
        assert r.stop() == 0, r.logs()[-3000:]


def test_two_api_nodes_on_one_postgres(postgres, moto):
    env = s3_env(moto, POSTGRES_URL=postgres.new_database(), REELD_API_KEYS=KEYS,
                 EDGE_SIGNING_KEY=EDGE_KEY)
    one = Reeld(env=env, args=("--roles", "api,edge"))
    two = Reeld(env=env, args=("--roles", "api,edge"))
    try:
        up = upload(one, 7)
        aid = up["asset_id"]
        assert put_url(up["upload"]["url"], b"1234567")[0] == 200
        st, _, a = get(two, aid)
        assert st == 200 and a["state"] == "uploading", a
        st, _, job = promote(two, aid)
        assert st == 202, job
        for node in (one, two):
            st, _, a = get(node, aid)
            assert st == 200 and a["state"] == "processing" and a["job_id"] == job["job_id"], a
        assert promote(one, aid)[2]["job_id"] == job["job_id"]  # idempotent across nodes
        st, _, pb = get(two, aid, suffix="/playback")
        assert st == 200 and pb["ready"] is False and f"/{aid}/master.m3u8" in pb["url"]
        st, _, page = call(one, "GET", "/api/assets", headers=ACME)
        assert st == 200 and [x["asset_id"] for x in page["assets"]] == [aid], page
        assert get(two, aid, who=BETA)[0] == 404
        assert promote(two, aid, who=BETA)[0] == 404
    finally:
        for node in (one, two):
            assert node.stop() == 0, node.logs()[-3000:]


def test_concurrent_polls_on_postgres_each_get_their_own_asset(postgres):
    """Status polls from many clients at once reach PostgreSQL together (the API's readers send
    them without waiting, the store reads those that queue in one statement): each still gets
    its own asset, another org's id stays a 404 and an unknown one too, over keep-alive
    connections from 16 threads."""
    import concurrent.futures
    import http.client
    import json
    env = {"POSTGRES_URL": postgres.new_database(), "REELD_API_KEYS": KEYS,
           "RATE_LIMIT_MAX": "1000000", "RATE_LIMIT_WINDOW": "1"}
    r = Reeld(env=env, args=("--roles", "api,edge"))
    try:
        mine = [upload(r, 10 + i)["asset_id"] for i in range(12)]
        theirs = [upload(r, 50 + i, who=BETA)["asset_id"] for i in range(4)]

        def poller(t):
            conn = http.client.HTTPConnection("127.0.0.1", r.port, timeout=20)
            wrong = []
            for k in range(60):
                i = (t * 7 + k) % 18
                aid = mine[i] if i < 12 else theirs[i - 12] if i < 16 else "a" + "0" * 24
                conn.request("GET", f"/api/assets/{aid}", headers=ACME)
                resp = conn.getresponse()
                body = json.loads(resp.read())
                if i < 12:
                    if resp.status != 200 or body["asset_id"] != aid or body["size"] != 10 + i:
                        wrong.append((aid, resp.status, body))
                elif resp.status != 404:
                    wrong.append((aid, resp.status, body))
            conn.close()
            return wrong

        with concurrent.futures.ThreadPoolExecutor(16) as pool:
            wrong = [w for ws in pool.map(poller, range(16)) for w in ws]
        assert wrong == [], wrong[:5]
    finally:
        assert r.stop() == 0, r.logs()[-3000:]


def test_listing_lookups_and_bad_input(reeld_factory):
    r = reeld_factory(env={"REELD_API_KEYS": KEYS}, args=("--roles", "api,edge"))
    mine = [upload(r, 5, name=f"acme-{i}.mp4")["asset_id"] for i in range(5)]
    theirs = upload(r, 5, who=BETA)["asset_id"]

    # Newest first, in pages under an opaque cursor, the caller's org only.
    seen, cursor, pages = [], None, 0
    while True:
        path = "/api/assets?limit=2" + (f"&cursor={cursor}" if cursor else "")
        st, _, page = call(r, "GET", path, headers=ACME)
        assert st == 200, page
        assert all(x["org"] == "acme" for x in page["assets"])
        seen += [x["asset_id"] for x in page["assets"]]
        cursor, pages = page["next_cursor"], pages + 1
        if cursor is None:
            break
    assert seen == mine[::-1] and pages == 3
    st, _, page = call(r, "GET", "/api/assets", headers=BETA)
    assert st == 200 and [x["asset_id"] for x in page["assets"]] == [theirs]
    assert page["assets"][0]["filename"] == "clip.mp4" and page["assets"][0]["size"] == 5
    st, _, page = call(r, "GET", "/api/assets?state=uploading&limit=32", headers=ACME)
    assert st == 200 and len(page["assets"]) == 5
    st, _, page = call(r, "GET", "/api/assets?state=ready", headers=ACME)
    assert st == 200 and page["assets"] == []

    # Bad input.
    for q, code in (("cursor=not-a-cursor!", "bad_cursor"), ("cursor=ajE", "bad_cursor"),
                    ("limit=0", "bad_limit"), ("limit=33", "bad_limit"),
                    ("limit=abc", "bad_limit"), ("limit=", "bad_limit"),
                    ("state=done", "bad_state")):
        st, _, err = call(r, "GET", f"/api/assets?{q}", headers=ACME)
        assert st == 400 and err["error"]["code"] == code, (q, st, err)
    assert call(r, "GET", "/api/assets")[0] == 401
    for aid in ("a000000000000000000000000", "a" * 40, "1", "a-b_C", theirs):
        assert get(r, aid)[0] == 404, aid
        assert get(r, aid, suffix="/playback")[0] == 404, aid
        assert promote(r, aid)[0] == 404, aid
        st, _, _ = call(r, "POST", f"/api/uploads/{aid}/complete", {"parts": []}, ACME)
        assert st == 404, aid
    # The owner still sees its asset; nothing above changed it.
    st, _, a = get(r, theirs, who=BETA)
    assert st == 200 and a["state"] == "uploading"
