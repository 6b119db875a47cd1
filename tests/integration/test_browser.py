"""The flow reeld exists for, in a real browser on another origin: headless Chromium loads the
platform's page (served here from a second port, so every call to reeld is cross-origin), which
asks the API for an upload, PUTs the file to the presigned URL, promotes it, follows its
progress, adds a caption track (a WebVTT PUT), and plays the ladder with video.js's MSE engine
(http-streaming), which fetches the playlists and segments itself. It passes when the player's
clock runs past 4 s with no media error and the caption's cue, fetched from the master's
SUBTITLES rendition, shows on the player's English text track. It runs over HTTP and over
HTTPS (reeld with REELD_TLS_CERT/KEY, the page served over TLS too, both certificates from a
throwaway CA). A screenshot of the page, the caption showing, is left in zig-out/browser/
for a person to look at."""
import functools
import http.server
import importlib.util
import os
import re
import shutil
import ssl
import subprocess
import threading
import time
import urllib.error

import pytest

from conftest import ROOT, free_port
from test_abuse import KEYS
from tlsca import TestCA

KEY = KEYS.split(",")[0].split(":", 1)[1]

CHROMIUM = shutil.which("chromium")
DRIVER = shutil.which("chromedriver")
try:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
except ImportError:  # pragma: no cover - the bootstrap installs it
    webdriver = None
VIDEOJS = importlib.util.find_spec("js.videojs")

pytestmark = pytest.mark.skipif(
    not (CHROMIUM and DRIVER and webdriver and VIDEOJS and shutil.which("ffmpeg")),
    reason="needs chromium, chromium-driver, selenium, js.videojs and ffmpeg")

PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>reeld from another origin</title>
<link href="/video-js.css" rel="stylesheet"><script src="/video.js"></script></head>
<body><h3 id="status">starting</h3>
<video id="v" class="video-js" width="640" height="360" muted playsinline crossorigin="anonymous"></video>
<script>
const CAPTION = 'WEBVTT\\n\\n00:00:00.500 --> 00:00:09.000\\nCaptioned by reeld\\n';
window.flow = {steps: [], error: null, done: false};
const say = (s) => { window.flow.steps.push(s); document.getElementById('status').textContent = s; };
async function call(path, opts) {
  const r = await fetch(API + path, opts);
  const body = await r.json();
  if (!r.ok) throw new Error(path + ': ' + r.status + ' ' + JSON.stringify(body));
  return body;
}
async function run() {
  const auth = {'Authorization': 'Bearer ' + KEY};
  const file = await (await fetch('/clip.mp4')).blob();
  const up = await call('/api/uploads', {method: 'POST',
      headers: {...auth, 'Content-Type': 'application/json'},
      body: JSON.stringify({filename: 'clip.mp4', content_type: 'video/mp4', size: file.size})});
  say('upload created');
  window.flow.upload_url = up.upload.url;
  const put = await fetch(up.upload.url, {method: 'PUT', body: file,
      headers: {'Content-Type': up.upload.headers['Content-Type']}});
  if (!put.ok) throw new Error('PUT: ' + put.status + ' ' + await put.text());
  window.flow.etag = put.headers.get('ETag');
  say('uploaded');
  await call('/api/assets/' + up.asset_id + '/promote', {method: 'POST', headers: auth});
  for (let i = 0; ; i++) {
    const a = await call('/api/assets/' + up.asset_id, {headers: auth});
    window.flow.progress = a.progress;
    if (a.state === 'ready') break;
    if (a.state === 'failed' || i > 1200) throw new Error('transcode: ' + JSON.stringify(a));
    say(a.state + ' ' + (a.progress || 0) + '%');
    await new Promise((ok) => setTimeout(ok, 100));
  }
  // A caption track, added cross-origin from this page (a preflighted PUT) before the player
  // loads the master, which then names it in an EXT-X-MEDIA SUBTITLES group.
  window.flow.caption = await call(
      '/api/assets/' + up.asset_id + '/captions/en?name=English&default=1',
      {method: 'PUT', headers: {...auth, 'Content-Type': 'text/vtt'}, body: CAPTION});
  say('captioned');
  const pb = await call('/api/assets/' + up.asset_id + '/playback', {headers: auth});
  window.flow.playback_url = pb.url;
  say('playing ' + pb.url);
  // MSE, never the browser's own HLS: the engine fetches every playlist and segment itself,
  // cross-origin (video.js 7 calls it `hls`, later versions `vhs`).
  const player = videojs('v', {muted: true, html5: {hls: {overrideNative: true},
      vhs: {overrideNative: true}, nativeAudioTracks: false, nativeVideoTracks: false}});
  window.player = player;
  player.on('error', () => { window.flow.error = JSON.stringify(player.error()); });
  player.src({src: pb.url, type: 'application/x-mpegURL'});
  await player.play();
  window.flow.done = true;
  // VHS makes a text track of the SUBTITLES rendition (label: its NAME) once it has read the
  // master; it fetches the WebVTT segments only for a track that is showing.
  for (let i = 0; ; i++) {
    const subs = Array.from(player.textTracks()).find((t) => t.language === 'en');
    if (subs) { subs.mode = 'showing'; window.flow.subs = subs.label; break; }
    if (i > 400) throw new Error('no text track for the SUBTITLES rendition');
    await new Promise((ok) => setTimeout(ok, 50));
  }
  // Seek-bar previews: the storyboard as the thumbnails track players read (cross-origin,
  // so the edge's CORS matters), one of its sprites, and a thumbnail made on demand.
  const image = (src) => new Promise((ok, no) => {
    const i = new Image();
    i.onload = () => ok([i.naturalWidth, i.naturalHeight]);
    i.onerror = () => no(new Error('image ' + src));
    i.src = src;
  });
  const tt = player.addRemoteTextTrack({kind: 'metadata', label: 'thumbnails',
                                        src: pb.storyboard_vtt_url}, false);
  tt.track.mode = 'hidden';
  tt.addEventListener('error', () => { window.flow.thumbs_error = 'the track failed to load'; });
  tt.addEventListener('load', async () => {
    const cues = Array.from(tt.track.cues || []);
    window.flow.thumbs = cues.map((c) => [c.startTime, c.endTime, c.text]);
    try {
      window.flow.sprite = await image(new URL(cues[0].text.split('#')[0], pb.storyboard_vtt_url));
      window.flow.thumbnail = await image(pb.url.replace(/master[.]m3u8$/, 'thumbnail.jpg?time=3&width=200'));
    } catch (e) { window.flow.thumbs_error = String(e); }
  });
}
run().catch((e) => { window.flow.error = String(e); say('error: ' + e); });
</script></body></html>
"""


CUE = "Captioned by reeld"  # the text of the one cue in the page's CAPTION

# The page's English text track, its cues as [start, end, text] and the texts showing now.
SUBS = ("const t = Array.from(window.player.textTracks()).find((t) => t.language === 'en');"
        " return t ? {label: t.label, kind: t.kind, mode: t.mode,"
        " cues: Array.from(t.cues || []).map((c) => [c.startTime, c.endTime, c.text]),"
        " active: Array.from(t.activeCues || []).map((c) => c.text),"
        " t: window.player.currentTime(), seeked: !!window.flow.seeked} : null")


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    path = tmp_path_factory.mktemp("browser") / "clip.mp4"
    subprocess.run(["ffmpeg", "-loglevel", "error", "-f", "lavfi", "-i",
                    "testsrc2=size=640x360:rate=25", "-f", "lavfi", "-i", "sine=frequency=440",
                    "-t", "10", "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
                    "-c:a", "aac", "-shortest", str(path)], check=True)
    return path


class Site:
    """The platform's front end on its own origin (a port of its own): the page, video.js and
    the clip. `api` is reeld's base URL, which the page calls cross-origin. With `tls` (a chain
    PEM and its key) the page is served over HTTPS."""

    def __init__(self, root, port, api, tls=None):
        res = os.path.join(VIDEOJS.submodule_search_locations[0], "resources")
        for name in ("video.js", "video-js.css"):
            shutil.copy(os.path.join(res, name), root / name)
        (root / "index.html").write_text(
            PAGE.replace("API + path", f"'{api}' + path").replace("'Bearer ' + KEY",
                                                                  f"'Bearer {KEY}'"))
        self.origin = f"{'https' if tls else 'http'}://127.0.0.1:{port}"
        handler = functools.partial(_Quiet, directory=str(root))
        self.httpd = (_TLSServer if tls else http.server.ThreadingHTTPServer)(
            ("127.0.0.1", port), handler)
        if tls:
            self.httpd.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self.httpd.ctx.load_cert_chain(*tls)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


class _TLSServer(http.server.ThreadingHTTPServer):
    """Handshakes in each connection's own thread, not in accept: a socket Chromium opens
    ahead of time and leaves silent must not hold up the others."""

    def finish_request(self, request, client_address):
        request.settimeout(30)
        try:
            conn = self.ctx.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError):
            return
        try:
            super().finish_request(conn, client_address)
        finally:
            conn.close()


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def browser(trust_spki=()):
    """Headless Chromium. `trust_spki`: base64 SHA-256 SPKI hashes of the test certificates to
    accept, and only those: headless Chromium honours --ignore-certificate-errors-spki-list (a
    page whose certificate is not on it still fails with a certificate error), so neither
    --ignore-certificate-errors nor acceptInsecureCerts is needed."""
    o = webdriver.ChromeOptions()
    for a in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
              "--autoplay-policy=no-user-gesture-required", "--window-size=800,600"):
        o.add_argument(a)
    if trust_spki:
        o.add_argument("--ignore-certificate-errors-spki-list=" + ",".join(trust_spki))
    o.set_capability("goog:loggingPrefs", {"browser": "ALL"})  # console, for the asserts
    o.binary_location = CHROMIUM
    return webdriver.Chrome(service=Service(DRIVER), options=o)


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_upload_and_play_with_an_mse_player_from_another_origin(reeld_factory, clip, tmp_path,
                                                                scheme):
    site_dir = tmp_path / "site"
    site_dir.mkdir()
    shutil.copy(clip, site_dir / "clip.mp4")
    port = free_port()
    env = {"REELD_API_KEYS": KEYS, "ALLOWED_ORIGINS": f"{scheme}://127.0.0.1:{port}",
           "HLS_SEGMENT_SEC": "2", "PREVIEW_PRESET": "480p"}
    site_tls, spki = None, ()
    if scheme == "https":
        ca = TestCA(tmp_path / "ca")
        reeld_chain, reeld_key = ca.issue("reeld")
        site_tls = ca.issue("site")
        env.update({"REELD_TLS_CERT": reeld_chain, "REELD_TLS_KEY": reeld_key})
        spki = (TestCA.spki_sha256_b64(reeld_chain), TestCA.spki_sha256_b64(site_tls[0]))
    r = reeld_factory(env=env)
    api = f"{scheme}://{r.addr}"
    site = Site(site_dir, port, api, tls=site_tls)
    d = browser(trust_spki=spki)
    try:
        d.get(site.origin + "/index.html")
        deadline = time.time() + 240
        state = {}
        while time.time() < deadline:
            state = d.execute_script(
                "return {flow: window.flow, t: window.player ? window.player.currentTime() : 0,"
                " vhs: !!(window.player && (window.player.tech({IWillNotUseThisInPlugins: true}).hls"
                " || window.player.tech({IWillNotUseThisInPlugins: true}).vhs))}")
            if state["flow"]["error"] or state["t"] > 4:
                break
            time.sleep(0.25)
        os.makedirs(os.path.join(ROOT, "zig-out", "browser"), exist_ok=True)
        d.save_screenshot(os.path.join(ROOT, "zig-out", "browser", f"mse_playback_{scheme}.png"))
        flow = state["flow"]
        assert flow["error"] is None, (flow, r.logs()[-3000:])
        # reeld's own URLs follow its scheme: the presigned PUT and the playback link.
        assert flow["upload_url"].startswith(api + "/"), flow
        assert flow["playback_url"].startswith(api + "/"), flow
        assert flow["etag"], flow  # ETag is exposed to the page's script
        assert state["vhs"], "video.js played natively, not through MSE"
        assert state["t"] > 4, state
        while time.time() < deadline and not state["flow"].get("thumbnail") and \
                not state["flow"].get("thumbs_error"):
            time.sleep(0.25)
            state = d.execute_script("return {flow: window.flow}")
        flow = state["flow"]
        assert flow.get("thumbs_error") is None, flow
        cues = flow["thumbs"]
        assert len(cues) == 10 and cues[0][0] == 0 and abs(cues[-1][1] - 10) < 0.2, cues
        assert all(re.fullmatch(r"sprite_0\.jpg#xywh=\d+,\d+,\d+,\d+", c[2]) for c in cues)
        assert flow["sprite"][0] > 0 and flow["sprite"][1] > 0, flow
        assert flow["thumbnail"] == [200, 112], flow
        # The caption track the page added: VHS read it from the master's SUBTITLES group (a
        # text track labelled with its NAME), and, the track showing, fetched its WebVTT
        # segments cross-origin and parsed the cue. The cue spans 0.5-9 s, so it is loaded
        # wherever the playhead is; once it is, the player is put inside it to be seen.
        assert flow["caption"] == {"lang": "en", "name": "English", "default": True}, flow
        assert flow["subs"] == "English", flow
        subs = None
        while time.time() < deadline:
            subs = d.execute_script(SUBS)
            if subs and CUE in subs["active"]:
                break
            if subs and [c for c in subs["cues"] if c[2] == CUE] and not subs["seeked"]:
                d.execute_script("window.player.pause(); window.player.currentTime(4);"
                                 " window.flow.seeked = true;")
            time.sleep(0.25)
        logs = [e["message"] for e in d.get_log("browser")]
        assert subs and subs["label"] == "English" and subs["kind"] == "subtitles" \
            and subs["mode"] == "showing", (subs, logs)
        cue = [c for c in subs["cues"] if c[2] == CUE]
        assert cue, (subs, logs)
        # Where X-TIMESTAMP-MAP (MPEGTS:126000, the video's first PTS) puts it: 0.5-9 s of the
        # clip. VHS 1.x maps by the first segment's DTS, which B-frames put 2 frames (0.08 s)
        # before that PTS, so its cues land 0.08 s late; hence the tolerance.
        assert abs(cue[0][0] - 0.5) < 0.25 and abs(cue[0][1] - 9.0) < 0.25, (subs, logs)
        assert set(subs["active"]) == {CUE}, (subs, logs)
        d.save_screenshot(os.path.join(ROOT, "zig-out", "browser", f"mse_playback_{scheme}.png"))
    finally:
        d.quit()
        site.close()


def test_console_uploads_and_plays(reeld_factory, clip):
    """The embedded console (GET /): key, file, upload with progress, transcode, play, list."""
    r = reeld_factory(env={"REELD_API_KEYS": KEYS, "HLS_SEGMENT_SEC": "2",
                           "PREVIEW_PRESET": "480p"})
    d = browser()
    try:
        d.get(f"http://{r.addr}/")
        assert d.title == "reeld console"
        d.find_element("id", "key").send_keys(KEY)
        d.find_element("css selector", "#key-form button").click()
        d.find_element("id", "file").send_keys(str(clip))
        d.find_element("id", "go").click()
        deadline = time.time() + 240
        state = {}
        while time.time() < deadline:
            state = d.execute_script(
                "return {status: document.getElementById('status').textContent,"
                " up: document.getElementById('up-bar').value,"
                " job: document.getElementById('job-bar').value,"
                " via: document.getElementById('job-text').dataset.via,"
                " link: document.getElementById('link').value,"
                " t: document.getElementById('video').currentTime,"
                " rows: document.querySelectorAll('#rows tr').length}")
            if state["status"].startswith("failed") or state["t"] > 2:
                break
            time.sleep(0.25)
        os.makedirs(os.path.join(ROOT, "zig-out", "browser"), exist_ok=True)
        d.save_screenshot(os.path.join(ROOT, "zig-out", "browser", "console.png"))
        assert state["t"] > 2, (state, r.logs()[-2000:])
        assert state["up"] == 100 and state["job"] == 100
        assert state["via"] == "events", state  # live progress, not polling
        assert f"http://{r.addr}/hls/" in state["link"]
        # The page's own files; nothing outside assets/console/.
        import urllib.request
        with urllib.request.urlopen(f"http://{r.addr}/console/app.js", timeout=5) as resp:
            assert resp.headers["Content-Type"].startswith("text/javascript")
            assert "Content-Security-Policy" in resp.headers
        for bad in ("/console/..%2fconsole%2findex.html", "/console/.hidden", "/console/none.js"):
            try:
                urllib.request.urlopen(f"http://{r.addr}{bad}", timeout=5)
                raise AssertionError(bad)
            except urllib.error.HTTPError as e:
                assert e.code == 404, bad
    finally:
        d.quit()
