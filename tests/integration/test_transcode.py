"""`reeld transcode` end to end: inputs generated with ffmpeg's lavfi sources, outputs checked
with ffprobe. Every check compares against what the input implies, so a wrong ladder, a
misplaced keyframe or a broken playlist fails a test."""
import json
import os
import re
import signal
import subprocess
import time

import pytest

REELD = os.environ.get("REELD_BIN", "zig-out/bin/reeld")


def ffmpeg(*args):
    subprocess.run(["ffmpeg", "-v", "error", "-y", *args], check=True)


def probe(path, *args):
    out = subprocess.run(["ffprobe", "-v", "error", "-of", "json", *args, path],
                         check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def av(size, secs, rate=30, audio=True, extra=()):
    src = ["-f", "lavfi", "-i", f"testsrc2=size={size}:rate={rate}:duration={secs}"]
    if audio:
        src += ["-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=44100:duration={secs}"]
    return src + ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
                  *(["-c:a", "aac"] if audio else []), *extra]


@pytest.fixture(scope="session")
def inputs(tmp_path_factory):
    d = tmp_path_factory.mktemp("inputs")
    p = {k: str(d / v) for k, v in {
        "ladder": "ladder.mp4", "odd": "odd.mp4", "rotated": "rotated.mp4", "vfr": "vfr.mkv",
        "audio": "audio.m4a", "video": "video.mp4", "qhd": "qhd.mp4", "long": "long.mp4",
        "empty": "empty.mp4", "text": "notes.txt", "truncated": "truncated.mp4", "truncated_faststart": "truncated_fs.mp4",
        "corrupt": "corrupt.mp4", "codec": "codec.avi", "huge": "huge.y4m"}.items()}
    ffmpeg(*av("854x480", 6), p["ladder"])
    ffmpeg(*av("321x241", 3), p["odd"])
    ffmpeg(*av("320x240", 3), p["rotated"] + ".plain.mp4")
    ffmpeg("-i", p["rotated"] + ".plain.mp4", "-c", "copy", "-metadata:s:v", "rotate=90",
           p["rotated"])
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=320x240:rate=30:duration=5",
           "-vf", "select='not(eq(mod(n\\,7)\\,3))*not(eq(mod(n\\,11)\\,5))'", "-vsync", "vfr",
           "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", p["vfr"])
    ffmpeg("-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100:duration=5",
           "-c:a", "aac", p["audio"])
    ffmpeg(*av("426x240", 3, audio=False), p["video"])
    ffmpeg(*av("960x540", 3), p["qhd"])
    ffmpeg(*av("1280x720", 20), p["long"])
    open(p["empty"], "wb").close()
    with open(p["text"], "w") as f:
        f.write("Meeting notes\n" * 400)
    data = open(p["ladder"], "rb").read()
    open(p["truncated"], "wb").write(data[: len(data) // 2])
    ffmpeg("-i", p["ladder"], "-c", "copy", "-movflags", "+faststart", p["ladder"] + ".fs.mp4")
    fs = open(p["ladder"] + ".fs.mp4", "rb").read()
    open(p["truncated_faststart"], "wb").write(fs[: len(fs) // 2])
    junk = bytes((i * 131 + 7) & 0xFF for i in range(len(data)))
    open(p["corrupt"], "wb").write(junk[:4096] + data[4096:])
    ffmpeg(*av("320x240", 1, audio=False)[:4], "-c:v", "mpeg4", "-vtag", "FMP4", p["codec"])
    avi = open(p["codec"], "rb").read()
    assert avi.count(b"FMP4") >= 1
    open(p["codec"], "wb").write(avi.replace(b"FMP4", b"QQQQ").replace(b"fmp4", b"qqqq"))
    with open(p["huge"], "wb") as f:
        f.write(b"YUV4MPEG2 W10000 H10000 F25:1 Ip A1:1 C420jpeg\nFRAME\n" + b"\x80" * 4096)
    return p


def transcode(inp, out, *flags, env=None):
    e = dict(os.environ, **(env or {}))
    return subprocess.run([REELD, "transcode", inp, str(out), *flags], capture_output=True,
                          text=True, env=e, timeout=120)


def playlist(path):
    text = open(path).read()
    assert text.startswith("#EXTM3U\n"), path
    assert text.rstrip().endswith("#EXT-X-ENDLIST"), path
    target = int(re.search(r"#EXT-X-TARGETDURATION:(\d+)", text).group(1))
    segs = [(float(d), uri) for d, uri in re.findall(r"#EXTINF:([\d.]+),\n(\S+)", text)]
    assert segs, path
    return target, segs


def playlist_format(path):
    """"ts" or "fmp4" (then with its EXT-X-MAP, the version RFC 8216 asks for and .m4s names)."""
    text = open(path).read()
    maps = re.findall(r'#EXT-X-MAP:URI="([^"]+)"', text)
    version = int(re.search(r"#EXT-X-VERSION:(\d+)", text).group(1))
    names = [uri for _, uri in playlist(path)[1]]
    if not maps:
        assert version == 3 and all(n.endswith(".ts") for n in names), path
        return "ts", None
    assert maps == ["init.mp4"] and version >= 6, (path, maps, version)
    assert all(n.endswith(".m4s") for n in names), names
    return "fmp4", maps[0]


def box_types(data):
    """The top-level ISO BMFF boxes of `data`, in order."""
    types, off = [], 0
    while off + 8 <= len(data):
        size = int.from_bytes(data[off:off + 4], "big")
        types.append(data[off + 4:off + 8].decode("latin-1"))
        assert size >= 8, types
        off += size
    assert off == len(data), types
    return types


def master(out):
    text = open(os.path.join(out, "master.m3u8")).read()
    assert text.startswith("#EXTM3U\n")
    variants = []
    for attrs, uri in re.findall(r"#EXT-X-STREAM-INF:(.*)\n(\S+)", text):
        a = dict(re.findall(r'([A-Z-]+)=("[^"]*"|[^,]*)', attrs))
        variants.append(({k: v.strip('"') for k, v in a.items()}, uri))
    assert variants
    return variants


def first_packets(seg, stream):
    pk = probe(seg, "-select_streams", stream, "-show_entries", "packet=pts_time,flags",
               "-read_intervals", "%+#3")["packets"]
    return pk


def check_ladder(out, src_secs, seg_sec, fps, want_sizes, audio=True, video=True, fmt="ts"):
    """Everything the issue asks of an output, for every rung."""
    frame = 1.0 / fps if video else 1024 / 48000
    variants = master(out)
    sizes = []
    starts_by_rung = []
    for attrs, uri in variants:
        for key in ("BANDWIDTH", "AVERAGE-BANDWIDTH", "CODECS"):
            assert key in attrs, (uri, attrs)
        assert int(attrs["BANDWIDTH"]) >= int(attrs["AVERAGE-BANDWIDTH"]) > 0
        codecs = attrs["CODECS"].split(",")
        assert any(c.startswith("avc1.") for c in codecs) == video, codecs
        assert ("mp4a.40.2" in codecs) == audio, codecs
        target, segs = playlist(os.path.join(out, uri))
        total = sum(d for d, _ in segs)
        assert abs(total - src_secs) <= 2 * frame + 0.05, (uri, total, src_secs)
        for i, (d, _) in enumerate(segs):
            assert target >= d, (uri, target, d)
            assert d <= seg_sec + frame + 1e-3, (uri, i, d)
            if i < len(segs) - 1:
                assert abs(d - seg_sec) <= frame + 1e-3, (uri, i, d)
        rung_dir = os.path.dirname(os.path.join(out, uri))
        got, init = playlist_format(os.path.join(out, uri))
        assert got == fmt, (uri, got)
        if init:
            init = open(os.path.join(rung_dir, init), "rb").read()
            assert box_types(init) == ["ftyp", "moov"], box_types(init)
        starts = []
        for k, (_, name) in enumerate(segs):
            seg = os.path.join(rung_dir, name)
            if init:
                # A media segment is one fragment; a reader takes it behind the init segment.
                body = open(seg, "rb").read()
                assert box_types(body) == ["moof", "mdat"], (seg, box_types(body))
                seg = f"{out}.probe-{os.path.basename(rung_dir)}-{k}.mp4"
                open(seg, "wb").write(init + body)
            streams = probe(seg, "-show_streams")["streams"]
            kinds = sorted(s["codec_type"] for s in streams)
            assert kinds == sorted((["audio"] if audio else []) + (["video"] if video else [])), kinds
            if video:
                v = [s for s in streams if s["codec_type"] == "video"][0]
                assert v["codec_name"] == "h264"
                res = f'{v["width"]}x{v["height"]}'
                assert attrs["RESOLUTION"] == res, (uri, attrs["RESOLUTION"], res)
                pk = first_packets(seg, "v:0")
                assert pk[0]["flags"].startswith("K"), (seg, pk[0])
                starts.append(round(float(pk[0]["pts_time"]), 3))
        if video:
            assert float(attrs["FRAME-RATE"]) > 0
            sizes.append(attrs["RESOLUTION"])
            # segment starts follow the playlist's durations
            acc = starts[0]
            for s, (d, _) in zip(starts, segs):
                assert abs(s - acc) <= frame + 1e-3, (uri, starts, segs)
                acc += d
            starts_by_rung.append(starts)
        dec = subprocess.run(["ffmpeg", "-v", "error", "-i", os.path.join(out, uri),
                              "-f", "null", "-"], capture_output=True, text=True)
        assert dec.returncode == 0 and dec.stderr.strip() == "", (uri, dec.stderr)
    assert sizes == want_sizes
    for s in starts_by_rung[1:]:
        assert s == starts_by_rung[0], starts_by_rung
    return variants


@pytest.mark.parametrize("fmt", ["ts", "fmp4"])
def test_ladder_aligned_across_rungs(inputs, tmp_path, fmt):
    r = transcode(inputs["ladder"], tmp_path / "out", "--preset", "480p", "--format", fmt)
    assert r.returncode == 0, r.stderr
    check_ladder(str(tmp_path / "out"), 6.0, 4, 30, ["854x480", "640x360"], fmt=fmt)
    jpeg = open(tmp_path / "out" / "poster.jpg", "rb").read()
    assert jpeg[:3] == b"\xff\xd8\xff"
    poster = probe(str(tmp_path / "out" / "poster.jpg"), "-show_streams")["streams"][0]
    assert (poster["width"], poster["height"]) == (854, 480)
    assert "peak RSS" in r.stdout


def test_segment_length_flag(inputs, tmp_path):
    r = transcode(inputs["ladder"], tmp_path / "out", "--preset", "480p", "--segment", "2")
    assert r.returncode == 0, r.stderr
    check_ladder(str(tmp_path / "out"), 6.0, 2, 30, ["854x480", "640x360"])
    _, segs = playlist(tmp_path / "out" / "360p" / "index.m3u8")
    assert len(segs) == 3


def test_segment_length_from_environment(inputs, tmp_path):
    r = transcode(inputs["odd"], tmp_path / "out", env={"HLS_SEGMENT_SEC": "1"})
    assert r.returncode == 0, r.stderr
    _, segs = playlist(tmp_path / "out" / "240p" / "index.m3u8")
    assert len(segs) == 3


def test_never_upscales(inputs, tmp_path):
    r = transcode(inputs["qhd"], tmp_path / "out", "--preset", "720p")
    assert r.returncode == 0, r.stderr
    check_ladder(str(tmp_path / "out"), 3.0, 4, 30, ["854x480", "640x360"])


def test_cpu_auto_preset_is_480p(inputs, tmp_path):
    r = transcode(inputs["qhd"], tmp_path / "out")
    assert r.returncode == 0, r.stderr
    assert [a["RESOLUTION"] for a, _ in master(str(tmp_path / "out"))] == ["854x480", "640x360"]
    line = [json.loads(l) for l in r.stderr.splitlines() if '"encoder_selected"' in l]
    assert len(line) == 1 and line[0]["encoder"] == "x264", r.stderr


def test_odd_size_gets_even_dimensions(inputs, tmp_path):
    r = transcode(inputs["odd"], tmp_path / "out")
    assert r.returncode == 0, r.stderr
    check_ladder(str(tmp_path / "out"), 3.0, 4, 30, ["320x240"])


def test_rotation_is_applied(inputs, tmp_path):
    r = transcode(inputs["rotated"], tmp_path / "out")
    assert r.returncode == 0, r.stderr
    check_ladder(str(tmp_path / "out"), 3.0, 4, 30, ["240x320"])
    # The picture is turned the way a player would turn it: compare with ffmpeg's autorotate.
    ours = tmp_path / "ours.yuv"
    ref = tmp_path / "ref.yuv"
    ffmpeg("-i", str(tmp_path / "out" / "240p" / "index.m3u8"), "-frames:v", "1",
           "-f", "rawvideo", "-pix_fmt", "gray", str(ours))
    ffmpeg("-i", inputs["rotated"], "-frames:v", "1", "-f", "rawvideo", "-pix_fmt", "gray",
           str(ref))
    a, b = open(ours, "rb").read(), open(ref, "rb").read()
    assert len(a) == len(b) == 240 * 320
    mad = sum(abs(x - y) for x, y in zip(a, b)) / len(a)
    assert mad < 12, mad



def first_gray(path, w, h, tmp_path, name):
    out = tmp_path / f"{name}.gray"
    ffmpeg("-i", str(path), "-frames:v", "1", "-f", "rawvideo", "-pix_fmt", "gray", str(out))
    data = open(out, "rb").read()
    assert len(data) == w * h, (name, len(data))
    return data


@pytest.mark.parametrize("name", ["ladder", "rotated_ladder"])
def test_cascade_rungs_match_scaling_from_the_source(inputs, tmp_path, name):
    """With --cascade each rung is scaled from the next larger one; the pictures must be those
    of scaling from the decoded picture, the right way up, on every rung."""
    src = inputs["ladder"]
    sizes = [("480p", 854, 480), ("360p", 640, 360)]
    if name == "rotated_ladder":
        src = str(tmp_path / "rotated_ladder.mp4")
        ffmpeg("-i", inputs["ladder"], "-c", "copy", "-metadata:s:v", "rotate=90", src)
        sizes = [("480p", 480, 854), ("360p", 360, 640)]
    for mode, flags in (("cascade", ["--cascade"]), ("direct", [])):
        r = transcode(src, tmp_path / mode, "--preset", "480p", *flags)
        assert r.returncode == 0, r.stderr
        check_ladder(str(tmp_path / mode), 6.0, 4, 30, [f"{w}x{h}" for _, w, h in sizes])
    for rung, w, h in sizes:
        a = first_gray(tmp_path / "cascade" / rung / "index.m3u8", w, h, tmp_path, f"c{rung}")
        b = first_gray(tmp_path / "direct" / rung / "index.m3u8", w, h, tmp_path, f"d{rung}")
        mad = sum(abs(x - y) for x, y in zip(a, b)) / len(a)
        assert mad < 3, (rung, mad)  # a picture turned twice, or not at all, is far above

def test_variable_frame_rate(inputs, tmp_path):
    r = transcode(inputs["vfr"], tmp_path / "out")
    assert r.returncode == 0, r.stderr
    variants = master(str(tmp_path / "out"))
    _, segs = playlist(tmp_path / "out" / "240p" / "index.m3u8")
    assert abs(sum(d for d, _ in segs) - 5.0) < 0.15
    check_ladder(str(tmp_path / "out"), sum(d for d, _ in segs), 4, 30, ["320x240"],
                 audio=False)
    assert variants


@pytest.mark.parametrize("fmt", ["ts", "fmp4"])
def test_audio_only(inputs, tmp_path, fmt):
    r = transcode(inputs["audio"], tmp_path / "out", "--format", fmt)
    assert r.returncode == 0, r.stderr
    variants = check_ladder(str(tmp_path / "out"), 5.0, 4, 30, [], video=False, fmt=fmt)
    assert [u for _, u in variants] == ["audio/index.m3u8"]
    assert "RESOLUTION" not in variants[0][0]
    assert not os.path.exists(tmp_path / "out" / "poster.jpg")


@pytest.mark.parametrize("fmt", ["ts", "fmp4"])
def test_video_only(inputs, tmp_path, fmt):
    r = transcode(inputs["video"], tmp_path / "out", "--format", fmt)
    assert r.returncode == 0, r.stderr
    check_ladder(str(tmp_path / "out"), 3.0, 4, 30, ["426x240"], audio=False, fmt=fmt)


def test_fmp4_from_environment_on_the_ts_timeline(inputs, tmp_path):
    """HLS_SEGMENT_FORMAT=fmp4 gives the same cuts, codecs and A/V timing as MPEG-TS: each
    stream starts where it starts in the TS ladder (AAC priming and B-frame delay kept)."""
    r = transcode(inputs["ladder"], tmp_path / "mp4", "--segment", "2",
                  env={"HLS_SEGMENT_FORMAT": "fmp4"})
    assert r.returncode == 0, r.stderr
    check_ladder(str(tmp_path / "mp4"), 6.0, 2, 30, ["854x480", "640x360"], fmt="fmp4")
    r = transcode(inputs["ladder"], tmp_path / "ts", "--segment", "2")
    assert r.returncode == 0, r.stderr
    strip = lambda v: [(dict(a, **{"BANDWIDTH": 0, "AVERAGE-BANDWIDTH": 0}), u) for a, u in v]
    assert strip(master(str(tmp_path / "mp4"))) == strip(master(str(tmp_path / "ts")))
    for rung in ("480p", "360p"):
        _, a = playlist(tmp_path / "mp4" / rung / "index.m3u8")
        _, b = playlist(tmp_path / "ts" / rung / "index.m3u8")
        assert [d for d, _ in a] == [d for d, _ in b]
        starts = [{s["codec_type"]: s["start_time"] for s in
                   probe(str(tmp_path / f / rung / "index.m3u8"), "-show_streams")["streams"]}
                  for f in ("mp4", "ts")]
        assert starts[0] == starts[1], starts


@pytest.mark.parametrize("name,words", [
    ("empty", "empty"),
    ("text", "not audio or video"),
    ("truncated", "truncated"),
    ("truncated_faststart", "it is truncated"),
    ("corrupt", "corrupt"),
    ("codec", "codec is not supported"),
    ("huge", "10000x10000"),
])
def test_bad_input_fails_with_one_clear_line(inputs, tmp_path, name, words):
    r = transcode(inputs[name], tmp_path / "out")
    assert r.returncode == 1, (r.returncode, r.stderr)
    plain = [l for l in r.stderr.splitlines() if not l.startswith(("{", "progress "))]
    assert len(plain) == 1, r.stderr
    assert plain[0].startswith("reeld: transcode failed: ") and words in plain[0], plain[0]
    failed = [json.loads(l) for l in r.stderr.splitlines() if '"transcode_failed"' in l]
    assert len(failed) == 1
    assert not os.path.exists(tmp_path / "out" / "master.m3u8")


def test_missing_input_and_bad_flags(inputs, tmp_path):
    r = transcode(str(tmp_path / "nope.mp4"), tmp_path / "out")
    assert r.returncode == 1 and "cannot read" in r.stderr
    r = transcode(inputs["odd"], tmp_path / "out", "--preset", "4k")
    assert r.returncode == 2 and "--preset must be" in r.stderr
    r = transcode(inputs["odd"], tmp_path / "out", "--segment", "0")
    assert r.returncode == 2 and "--segment" in r.stderr
    r = transcode(inputs["odd"], tmp_path / "out", "--format", "mp4")
    assert r.returncode == 2 and "--format must be ts or fmp4" in r.stderr
    r = transcode(inputs["odd"], tmp_path / "out", env={"HLS_SEGMENT_FORMAT": "cmaf"})
    assert r.returncode == 2 and "HLS_SEGMENT_FORMAT" in r.stderr


def test_nvenc_demanded_without_gpu_is_a_clear_error(inputs, tmp_path):
    if os.path.exists("/dev/nvidia0"):
        pytest.skip("this machine has an NVIDIA GPU")
    r = transcode(inputs["odd"], tmp_path / "out", "--encoder", "nvenc")
    assert r.returncode == 1
    assert "reeld: transcode failed: ENCODER=nvenc but no GPU opened an NVENC session" in r.stderr


def test_cancel_stops_within_a_second(inputs, tmp_path):
    p = subprocess.Popen([REELD, "transcode", inputs["long"], str(tmp_path / "out"),
                          "--preset", "720p"], stderr=subprocess.PIPE, text=True)
    line = p.stderr.readline()
    while line and not line.startswith("progress"):
        line = line and p.stderr.readline()
    assert line.startswith("progress"), "no progress line before the end"
    t0 = time.monotonic()
    p.send_signal(signal.SIGINT)
    rest = p.stderr.read()
    code = p.wait(timeout=10)
    assert time.monotonic() - t0 < 1.0
    assert code == 130, rest
    assert "reeld: transcode cancelled" in rest
    assert not os.path.exists(tmp_path / "out" / "master.m3u8")


def test_progress_lines_are_throttled(inputs, tmp_path):
    t0 = time.monotonic()
    r = transcode(inputs["ladder"], tmp_path / "out", "--preset", "480p")
    elapsed = time.monotonic() - t0
    assert r.returncode == 0
    lines = [l for l in r.stderr.splitlines() if l.startswith("progress ")]
    assert 1 <= len(lines) <= int(elapsed) + 2, (len(lines), elapsed)
    assert all(re.match(r"progress [\d.]+% fps=[\d.]+ speed=[\d.]+x frames=\d+$", l) for l in lines)
