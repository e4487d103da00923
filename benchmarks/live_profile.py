"""Where live capacity goes: ``python -m benchmarks.live_profile [--levels 2,4] [--nice 15]``.

For each level: the peers of :mod:`benchmarks.live_load` stream to ``python app.py`` while
`py-spy <https://github.com/benfred/py-spy>`_ (``pip install py-spy``; a profiler, not a
dependency of the app) samples the server, once for the thread holding the GIL (``--gil``) and
once for every running thread (idle ones left out; time in native code counts for the Python frame
that called it).  Per level:

* ``gil_busy_pct``: share of samples in which some thread held the GIL (100% = the GIL is the limit);
* ``gil_by_part`` (and ``running_by_part``, all running threads): what the GIL holder was doing: the analysis (detection, tracking, classification,
  face states), drawing, the timeline recorder, aiortc's WebRTC transport (RTP, SRTP, ICE, congestion
  control), the frame hand-off (fastrtc, the worker pool, PyAV), the asyncio loop, HTTP;
* ``server_cpu_ms_per_frame``: the server's CPU time per returned (analysed) frame, and
  ``pipeline_ms_per_frame``: the same frame analysed and drawn in one thread with no WebRTC
  (``LiveSession.step`` on the benchmark's own frames): the difference is the WebRTC side (decoding
  every frame that arrives, encoding every answer, transport);
* ``analysis_only``: analysed frames/s in total with 1 or 2 threads and 1, 2 or 4 sessions, in this
  process with no WebRTC: what the analysis alone could serve on this machine;
* ``cpu_pct`` (server) and ``client_cpu_pct`` (the peers, on the same 2 cores).

Results: ``benchmarks/results/live_profile.json``.
"""
from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from benchmarks.live_load import RESULTS, ServerProbe, run_level

PARTS = [  # (part, pattern on a frame "function (path:line)"), the first that matches any frame of the stack wins
    # MediaPipe runs each detector's calls on a thread of its own (its SerialDispatcher): analysis too
    ("analysis", re.compile(r"\((pipeline/(core|landmarks|facestate|results|predicted)|tracker/|classifier/|"
                            r"mediapipe/|onnxruntime/|ai_edge_litert/)")),
    ("drawing", re.compile(r"\(pipeline/(annotate|layout)|_annotate \(webapp/live/session")),
    ("timeline recorder", re.compile(r"\(export/")),
    ("WebRTC transport (aiortc)", re.compile(r"\((aiortc|aioice|pylibsrtp|pyee)/")),
    ("frame hand-off (fastrtc, pool, PyAV)", re.compile(r"\((fastrtc|av)/|webapp/live/(pool|handler|session|rtc)|common/compat")),
    # requests being served (the event loop thread's stack always starts in uvicorn: that alone is not HTTP)
    ("HTTP (gradio, starlette)", re.compile(r"\((gradio/(routes|route_utils|queueing|blocks|processing_utils)|"
                                            r"starlette|h11|httptools|uvicorn/protocols)[/.]")),
    ("asyncio loop", re.compile(r"\((asyncio|uvicorn)/")),
    ("thread pools", re.compile(r"\((concurrent|threading|queue)\.py|\(concurrent/")),
]


def parts_of(raw: str) -> tuple[int, dict]:
    """(samples, {part: % of samples}) from py-spy's ``--format raw`` output (collapsed stacks)."""
    counts: collections.Counter = collections.Counter()
    for line in raw.splitlines():
        if not line.strip():
            continue
        stack, _, n = line.rpartition(" ")
        name = next((part for part, rx in PARTS if rx.search(stack)), "other")
        counts[name] += int(n)
    total = sum(counts.values())
    return total, {k: round(100 * v / total, 1) for k, v in counts.most_common()} if total else {}


def pipeline_ms_per_frame(frames, n: int = 180) -> float:
    """One session's ``step`` per frame (analysis and drawing, no WebRTC), in this process, one thread."""
    from webapp.models import ModelLoader
    from webapp.live.session import LiveControls, LiveSession

    s, ctl = LiveSession("profile", ModelLoader(), None), LiveControls()
    for f in frames[:20]:
        s.step(f, ctl)
    t0 = time.process_time()
    for k in range(n):
        f = frames[k % len(frames)].copy()
        f[0, k % 7] ^= 1  # never answered from the repeat cache
        s.step(f, ctl)
    s.close()
    return round((time.process_time() - t0) / n * 1000, 2)


def analysis_only(frames_sets, threads: int, streams: int, seconds: float = 8.0) -> dict:
    """Analysed frames/s with ``threads`` threads taking ``streams`` sessions' frames in turn, in this process,
    with no WebRTC at all: what the analysis alone could serve on this machine."""
    import threading

    from webapp.models import ModelLoader
    from webapp.live.session import LiveControls, LiveSession

    loader, ctl = ModelLoader(), LiveControls()
    sessions = [LiveSession(f"s{k}", loader, None) for k in range(streams)]
    for k, s in enumerate(sessions):
        for f in frames_sets[k % len(frames_sets)][:10]:
            s.step(f, ctl)
    lock, state = threading.Lock(), {"next": 0, "done": 0}
    stop = time.time() + seconds

    def work():
        i = 0
        while time.time() < stop:
            with lock:
                k = state["next"] % streams
                state["next"] += 1
            f = frames_sets[k % len(frames_sets)][i % 90].copy()
            f[0, i % 7] ^= 1
            i += 1
            with sessions[k].lock:  # a stream's frames one at a time, as in the server
                sessions[k].step(f, ctl)
            with lock:
                state["done"] += 1

    t0, c0 = time.time(), time.process_time()
    ths = [threading.Thread(target=work) for _ in range(threads)]
    for t in ths:
        t.start()
    for t in ths:
        t.join()
    wall, cpu = time.time() - t0, time.process_time() - c0
    for s in sessions:
        s.close()
    return {"threads": threads, "streams": streams, "fps_total": round(state["done"] / wall, 1),
            "cpu_pct": round(100 * cpu / wall), "cpu_ms_per_frame": round(1000 * cpu / max(1, state["done"]), 1)}


def spy(py_spy: str, pid: int, seconds: float, gil: bool, out: Path, rate: int) -> subprocess.Popen:
    cmd = [py_spy, "record", "--pid", str(pid), "--duration", str(int(seconds)), "--rate", str(rate),
           "--format", "raw", "--output", str(out), "--nonblocking"] + (["--gil"] if gil else [])
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--levels", default="2,4")
    ap.add_argument("--seconds", type=float, default=24.0, help="measured seconds per level (two profiles of half)")
    ap.add_argument("--warmup", type=float, default=4.0)
    ap.add_argument("--rate", type=int, default=100, help="py-spy samples per second")
    ap.add_argument("--nice", type=int, default=15, help="niceness of the peers (0: same priority as the server)")
    ap.add_argument("--peer-video", choices=("live", "pre"), default="live",
                    help="as benchmarks.live_load: peers encode as they send, or send a loop encoded once")
    ap.add_argument("--out", default=str(RESULTS / "live_profile.json"))
    args = ap.parse_args(argv)
    py_spy = shutil.which("py-spy") or shutil.which("py-spy", path=os.path.dirname(sys.executable))
    if not py_spy:
        raise SystemExit("py-spy is not installed: pip install py-spy (a profiler; the app does not need it)")
    from testkit.rtc_peer import scene_frames
    from testkit.server import start_app

    frames_sets = [scene_frames("crowd", 90, seed=s, n=5) for s in range(4)]
    step_ms = pipeline_ms_per_frame(frames_sets[0])
    print(f"analysis and drawing in one thread, no WebRTC: {step_ms} ms CPU a frame")
    alone = [analysis_only(frames_sets, t, n) for t, n in ((1, 1), (2, 2), (2, 4))]
    for a in alone:
        print(f"analysis only, {a['threads']} thread(s), {a['streams']} stream(s): {a['fps_total']} frames/s in total, "
              f"CPU {a['cpu_pct']}%")
    levels = [int(x) for x in args.levels.split(",") if x.strip()]
    results = []
    with tempfile.TemporaryDirectory() as tmp_s, start_app(Path(tmp_s) / "srv", {
            "LIVE_MAX_STREAMS": str(max(levels)), "LOG_LEVEL": "WARNING"}) as (url, proc):
        tmp = Path(tmp_s)
        probe = ServerProbe(proc.pid)
        if args.nice:
            os.nice(args.nice)
        for n in levels:
            half = args.seconds / 2
            spies: dict = {}

            def run_spies(n=n, half=half, spies=spies):
                time.sleep(args.warmup + 1.0)
                for gil in (True, False):
                    out = tmp / f"spy-{n}-{'gil' if gil else 'all'}.txt"
                    p = spy(py_spy, proc.pid, half - 0.5, gil, out, args.rate)
                    p.wait(half + 30)
                    spies[gil] = (out, p.returncode, p.stderr.read()[-300:] if p.stderr else "")

            th = threading.Thread(target=run_spies, daemon=True)
            th.start()
            level = asyncio.run(run_level(url, n, frames_sets, probe, args.warmup, args.seconds, 5.0,
                                          pre_encoded=args.peer_video == "pre"))
            th.join(60)
            frames = max(1, level["returned"])
            row = {k: level[k] for k in ("streams", "fps_p5", "fps_median", "latency_p95_ms", "returned", "cpu_pct",
                                         "client_cpu_pct", "server_threads")}
            row["server_cpu_ms_per_frame"] = round(level["cpu_pct"] / 100 * level["seconds"] / frames * 1000, 1)
            for gil, key in ((True, "gil"), (False, "running")):
                out, rc, err = spies.get(gil, (None, None, "py-spy did not run"))
                if out is None or not out.exists():
                    row[f"{key}_error"] = f"py-spy exit {rc}: {err}"
                    continue
                total, parts = parts_of(out.read_text())
                row[f"{key}_samples"] = total
                row[f"{key}_by_part"] = parts
                if gil:
                    row["gil_busy_pct"] = round(100 * total / (args.rate * int(half - 0.5)), 1)
            results.append(row)
            print(json.dumps({k: v for k, v in row.items() if k != "server_threads"}))
            time.sleep(2.0)
    res = {"command": "python -m benchmarks.live_profile " + " ".join(argv if argv is not None else sys.argv[1:]),
           "machine": f"{os.cpu_count()} CPUs; the peers run on the same machine (niceness {args.nice})",
           "peer_video": args.peer_video,
           "pipeline_ms_per_frame": step_ms, "analysis_only": alone, "levels": results}
    path = Path(args.out)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(res, indent=1) + "\n")
    print(f"wrote {path}")
    return res


if __name__ == "__main__":
    main()
