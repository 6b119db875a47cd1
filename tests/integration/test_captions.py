"""Captions on the stream: PUT /api/assets/{id}/captions/{lang} (SRT or WebVTT) on a ready
asset, its WebVTT segments and playlist through the edge, the master republished with an
EXT-X-MEDIA SUBTITLES group that every variant names (ffprobe reads it), listing, replacing,
deleting, tracks put and deleted at once, a restart that keeps the tracks, and the refusals:
malformed cues (with their line), bad language tags, bad content types, another org's asset, an
asset not ready yet; S3 gone while a track is stored (502, no track), then stored."""
import json
import re
import subprocess
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

from conftest import Reeld
from test_api import call, moto, put_url, s3_env  # noqa: F401 (moto: the S3 server, a fixture)

KEYS = "acme:key-acme-1-0123456789,beta:key-beta-1-0123456789"
ACME = {"Authorization": "Bearer key-acme-1-0123456789"}
BETA = {"Authorization": "Bearer key-beta-1-0123456789"}
SECS = 9

SRT = ("\ufeff1\r\n00:00:00,500 --> 00:00:01,500\r\nHello <i>there</i>\r\n\r\n"
       "2\r\n00:00:01,800 --> 00:00:02,600\r\nAcross the boundary\r\n\r\n"
       "3\r\n00:00:05,000 --> 00:00:06,000\r\nNão é só ASCII — 字幕\r\n").encode()
VTT = (b"WEBVTT\n\nNOTE styled\n\n00:01.000 --> 00:03.000 line:0 align:start\n"
       b"<b>Bonjour</b>\n\n00:07.000 --> 00:08.500\nAu revoir\n")


def fetch(url):
    try:
        with urllib.request.urlopen(url, timeout=20) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def put_caption(r, aid, lang, body, ctype, query="", headers=ACME):
    h = dict(headers)
    h["Content-Type"] = ctype
    return call(r, "PUT", f"/api/assets/{aid}/captions/{lang}{query}", body, h)


def upload(r, data, promote=True):
    st, _, up = call(r, "POST", "/api/uploads",
                     {"filename": "c.mp4", "content_type": "video/mp4", "size": len(data)}, ACME)
    assert st == 201 and put_url(up["upload"]["url"], data)[0] == 200
    if promote:
        assert call(r, "POST", f"/api/assets/{up['asset_id']}/promote", headers=ACME)[0] == 202
    return up["asset_id"]


def test_captions_on_the_stream(reeld_factory, tmp_path):
    src = str(tmp_path / "clip.mp4")
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i",
                    f"testsrc2=size=320x180:rate=25:duration={SECS}", "-c:v", "libx264",
                    "-preset", "ultrafast", "-pix_fmt", "yuv420p", src], check=True)
    data = open(src, "rb").read()
    env = {"REELD_API_KEYS": KEYS, "HLS_SEGMENT_SEC": "2", "STORYBOARD_INTERVAL_SEC": "-1"}
    r = reeld_factory(env=env)
    waiting = upload(r, data, promote=False)
    aid = upload(r, data)
    # Not ready: no ladder to add captions to.
    st, _, body = put_caption(r, waiting, "en", SRT, "application/x-subrip")
    assert st == 409 and body["error"]["code"] == "not_ready", body
    deadline = time.time() + 180
    while call(r, "GET", f"/api/assets/{aid}", headers=ACME)[2]["state"] != "ready":
        assert time.time() < deadline
        time.sleep(0.3)

    st, _, body = put_caption(r, aid, "en", SRT, "application/x-subrip", "?name=English&default=1")
    assert st == 201, body
    assert body == {"lang": "en", "name": "English", "default": True}
    st, _, body = put_caption(r, aid, "fr", VTT, "text/vtt; charset=utf-8",
                              "?name=Fran%C3%A7ais")
    assert st == 201 and body["name"] == "Français", body
    st, _, body = put_caption(r, aid, "en", SRT, "text/plain", "?name=English&default=1")
    assert st == 200, body  # replaced
    st, _, body = call(r, "GET", f"/api/assets/{aid}/captions", headers=ACME)
    assert st == 200 and [(c["lang"], c["default"]) for c in body["captions"]] == \
        [("en", True), ("fr", False)], body

    st, _, pb = call(r, "GET", f"/api/assets/{aid}/playback", headers=ACME)
    master_url = pb["url"]
    base = master_url.rsplit("/", 1)[0]
    st, master = fetch(master_url)
    master = master.decode()
    assert st == 200
    assert ('#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID="subs",NAME="English",LANGUAGE="en",'
            'DEFAULT=YES,AUTOSELECT=YES,URI="captions/en/index.m3u8"') in master, master
    assert 'NAME="Français",LANGUAGE="fr",DEFAULT=NO' in master, master
    infs = [l for l in master.splitlines() if l.startswith("#EXT-X-STREAM-INF:")]
    assert infs and all(l.endswith(',SUBTITLES="subs"') for l in infs), master

    st, pl = fetch(f"{base}/captions/en/index.m3u8")
    pl = pl.decode()
    assert st == 200 and "#EXT-X-ENDLIST" in pl, pl
    segs = re.findall(r"^([0-9a-f]{8}/seg_\d{5}\.vtt)$", pl, re.M)
    durs = [float(x) for x in re.findall(r"^#EXTINF:([\d.]+),", pl, re.M)]
    assert len(segs) == 5 and abs(sum(durs) - SECS) < 0.2, pl
    texts = [fetch(f"{base}/captions/en/{s}")[1].decode() for s in segs]
    for t in texts:
        assert t.startswith("WEBVTT\nX-TIMESTAMP-MAP=MPEGTS:126000,LOCAL:00:00:00.000\n"), t
    assert "Across the boundary" in texts[0] and "Across the boundary" in texts[1]
    assert "Hello" in texts[0] and "Hello" not in texts[1]
    assert "Não é só ASCII — 字幕" in texts[2]
    # Replaced, the track's segments get new names: a cache that holds the old ones (they are
    # immutable) never serves them for the new track.
    changed = SRT.replace(b"Hello", b"Howdy")
    assert put_caption(r, aid, "en", changed, "application/x-subrip",
                       "?name=English&default=1")[0] == 200
    pl2 = fetch(f"{base}/captions/en/index.m3u8")[1].decode()
    segs2 = re.findall(r"^([0-9a-f]{8}/seg_\d{5}\.vtt)$", pl2, re.M)
    assert len(segs2) == 5 and not set(segs2) & set(segs), (segs, segs2)
    assert "Howdy" in fetch(f"{base}/captions/en/{segs2[0]}")[1].decode()
    assert "Hello" in fetch(f"{base}/captions/en/{segs[0]}")[1].decode()  # still cached: fine
    # ffprobe reads the subtitle rendition as WebVTT, and the master still probes. (FFmpeg 5.1's
    # HLS demuxer finds the SUBTITLES rendition in the master but does not open it: it says so.)
    def probe(url, level="error"):
        out = subprocess.run(["ffprobe", "-v", level, "-show_entries",
                              "stream=codec_type,codec_name", "-of", "json", url],
                             capture_output=True, text=True, timeout=60)
        return json.loads(out.stdout).get("streams", []), out.stderr

    streams, err = probe(f"{base}/captions/en/index.m3u8")
    assert {"codec_type": "subtitle", "codec_name": "webvtt"} in streams, (streams, err)
    streams, err = probe(master_url, "warning")
    assert {"codec_type": "video", "codec_name": "h264"} in streams, (streams, err)
    assert "subtitle(uri: captions/en/index.m3u8)" in err, err

    # Refusals, each changing nothing.
    bad = b"1\r\n00:00:01,000 --> 00:00:00,500\r\nbackwards\r\n"
    st, _, body = put_caption(r, aid, "de", bad, "application/x-subrip")
    assert st == 400 and body["error"]["code"] == "bad_captions" and body["error"]["line"] == 2, body
    assert "line 2" in body["error"]["message"]
    for lang in ("english!", "e_n", "x" * 40):
        st, _, body = put_caption(r, aid, lang, SRT, "application/x-subrip")
        assert st in (400, 404) and st != 200, (lang, st, body)
    st, _, body = put_caption(r, aid, "de", SRT, "image/png")
    assert st == 415, body
    st, _, body = put_caption(r, aid, "de", SRT, "application/x-subrip", headers=BETA)
    assert st == 404, body  # another org's asset
    st, _, body = put_caption(r, aid, "de", SRT, "application/x-subrip", '?name=a%22b')
    assert st == 400 and body["error"]["code"] == "bad_name", body
    assert [c["lang"] for c in call(r, "GET", f"/api/assets/{aid}/captions",
                                    headers=ACME)[2]["captions"]] == ["en", "fr"]

    # Delete one: the master stops naming it.
    assert call(r, "DELETE", f"/api/assets/{aid}/captions/fr", headers=ACME)[0] == 204
    assert call(r, "DELETE", f"/api/assets/{aid}/captions/fr", headers=ACME)[0] == 404
    master = fetch(master_url)[1].decode()
    assert "Français" not in master and 'LANGUAGE="en"' in master
    assert fetch(f"{base}/captions/fr/index.m3u8")[0] == 404  # its objects are gone too
    assert fetch(f"{base}/captions/en/index.m3u8")[0] == 200
    assert master.count('SUBTITLES="subs"') == len(infs)

    # Four tracks at once, then their deletes at once (the fronts of every loop, each request
    # republishing the master): it ends naming exactly the store's tracks, whichever wrote last.
    langs = ["de", "es", "it", "pt"]
    with ThreadPoolExecutor(4) as ex:
        got = list(ex.map(lambda l: put_caption(r, aid, l, SRT, "application/x-subrip")[0],
                          langs))
        assert got == [201] * 4, got
        master = fetch(master_url)[1].decode()
        assert all(f'LANGUAGE="{l}"' in master for l in langs + ["en"]), master
        got = list(ex.map(lambda l: call(r, "DELETE", f"/api/assets/{aid}/captions/{l}",
                                         headers=ACME)[0], langs))
        assert got == [204] * 4, got
    master = fetch(master_url)[1].decode()
    assert not any(f'LANGUAGE="{l}"' in master for l in langs) and 'LANGUAGE="en"' in master

    # The store is the truth: a restart lists the same.
    data_dir = r.data_dir
    assert r.stop() == 0
    r2 = Reeld(env=env, data_dir=data_dir)
    try:
        st, _, body = call(r2, "GET", f"/api/assets/{aid}/captions", headers=ACME)
        assert st == 200 and [c["lang"] for c in body["captions"]] == ["en"], body
    finally:
        assert r2.stop() == 0


def test_s3_gone_while_a_track_is_stored_is_502_then_it_is_stored(reeld_factory, moto, tmp_path):
    """A track's objects go up through the asynchronous blob store on the front before its row
    is written: S3 unreachable is 502 storage_failed and the asset has no track; once S3 is back
    the same PUT stores it and the master names it."""
    from servers import Forwarder
    try:
        moto["s3"].create_bucket(Bucket="previews")
    except moto["s3"].exceptions.BucketAlreadyOwnedByYou:
        pass
    src = str(tmp_path / "clip.mp4")
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i",
                    f"testsrc2=size=320x180:rate=25:duration={SECS}", "-c:v", "libx264",
                    "-preset", "ultrafast", "-pix_fmt", "yuv420p", src], check=True)
    gate = Forwarder(int(moto["endpoint"].rsplit(":", 1)[1]))
    env = s3_env(moto, S3_ENDPOINT=f"http://127.0.0.1:{gate.port}", REELD_API_KEYS=KEYS,
                 HLS_SEGMENT_SEC="2", STORYBOARD_INTERVAL_SEC="-1")
    r = reeld_factory(env=env)
    aid = upload(r, open(src, "rb").read())
    deadline = time.time() + 180
    while call(r, "GET", f"/api/assets/{aid}", headers=ACME)[2]["state"] != "ready":
        assert time.time() < deadline
        time.sleep(0.3)
    gate.cut()
    try:
        st, _, body = put_caption(r, aid, "en", SRT, "application/x-subrip")
        assert st == 502 and body["error"]["code"] == "storage_failed", (st, body)
        st, _, body = call(r, "GET", f"/api/assets/{aid}/captions", headers=ACME)
        assert st == 200 and body["captions"] == [], body
    finally:
        gate.mend()
    st, _, body = put_caption(r, aid, "en", SRT, "application/x-subrip")
    assert st == 201, (st, body)
    master = moto["s3"].get_object(Bucket="previews", Key=f"{aid}/hls/master.m3u8")["Body"].read()
    assert b'LANGUAGE="en"' in master and b'URI="captions/en/index.m3u8"' in master, master
    keys = [o["Key"] for o in moto["s3"].list_objects_v2(
        Bucket="previews", Prefix=f"{aid}/hls/captions/en/")["Contents"]]
    assert f"{aid}/hls/captions/en/index.m3u8" in keys and len(keys) == 1 + 1 + 5, keys
