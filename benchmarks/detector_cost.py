"""Detection cost per frame of each back end: ``python -m benchmarks.detector_cost``.

The live goal of issue 24 is about the detector's share of a frame: 640x480 with 5 real faces and
1280x720 with 10 (``benchmarks.pipeline.grid_frames``: real face crops on a real background, jittered
a few pixels per frame), each frame given the previous frame's faces as hints as the pipeline does;
and the time of a still (``scan_all``, what ``analyze_image`` does) at 1280x720 with 10 faces.

The machine is shared: each case is run ``--repeats`` times and the smallest median is kept (the
1-minute load average is recorded beside it): ``ms`` is the smallest of the repeats' medians
(stream) or the smallest of the repeats (still).  Results: ``benchmarks/results/detector_cost.json``.
"""
from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

from tracker.base import DetectionConfig
from tracker.factory import make_detector

from .pipeline import grid_frames

RESULTS = Path(__file__).resolve().parent / "results"
DETECTORS = ("auto", "blazeface", "hybrid", "yunet", "yunet320", "auto+yunet", "auto+short", "centerface")
CASES = ((640, 480, 5), (1280, 720, 10))


def stream_ms(detector: str, frames: list) -> tuple[float, float]:
    """(median ms per frame after the first, faces found per frame) for one run of a fresh detector."""
    det = make_detector(DetectionConfig(detector=detector))
    try:
        ms, found, hints = [], [], None
        for f in frames:
            t0 = time.perf_counter()
            d = det.detect(f, hints=hints, scan_all=hints is None)
            ms.append((time.perf_counter() - t0) * 1000)
            hints = d.boxes
            found.append(len(d.boxes))
        return float(np.median(ms[1:])), float(np.mean(found[1:]))
    finally:
        det.close()


def still_ms(detector: str, frame: np.ndarray, n: int = 3) -> tuple[float, int]:
    det = make_detector(DetectionConfig(detector=detector))
    try:
        det.detect(frame, scan_all=True)  # warm-up
        ms, found = [], 0
        for _ in range(n):
            t0 = time.perf_counter()
            found = len(det.detect(frame, scan_all=True).boxes)
            ms.append((time.perf_counter() - t0) * 1000)
        return min(ms), found
    finally:
        det.close()


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--detectors", default=",".join(DETECTORS))
    ap.add_argument("--frames", type=int, default=30, help="frames per stream run")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", default=str(RESULTS / "detector_cost.json"))
    a = ap.parse_args(argv)
    rows = []
    for w, h, n in CASES:
        frames = grid_frames(n, a.frames, seed=n, size=(w, h))
        for d in a.detectors.split(","):
            runs = [stream_ms(d, frames) for _ in range(a.repeats)]
            best = min(r[0] for r in runs)
            load = round(os.getloadavg()[0], 2)
            rows.append({"detector": d, "size": [w, h], "faces": n, "as": "stream", "ms": round(best, 2),
                         "ms_medians": [round(r[0], 2) for r in runs], "faces_found": round(runs[0][1], 2),
                         "load_avg_1min": load})
            print(d, f"{w}x{h}", n, "stream", rows[-1]["ms_medians"], runs[0][1], f"load {load}", flush=True)
            if (w, h) == (1280, 720):
                ms, found = still_ms(d, frames[0], a.repeats)
                load = round(os.getloadavg()[0], 2)
                rows.append({"detector": d, "size": [w, h], "faces": n, "as": "still", "ms": round(ms, 2),
                             "faces_found": found, "load_avg_1min": load})
                print(d, f"{w}x{h}", n, "still", round(ms, 1), found, f"load {load}", flush=True)
    res = {"command": "python -m benchmarks.detector_cost" + (f" --detectors {a.detectors}" if a.detectors != ",".join(DETECTORS) else ""),
           "frames": a.frames, "repeats": a.repeats, "cpus": os.cpu_count(), "rows": rows}
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(res, indent=1))
    print(f"\nresults: {a.out}")
    return res


if __name__ == "__main__":
    main()
