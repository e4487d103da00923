"""Speed of the pipeline: ``python -m benchmarks.pipeline [--seconds 4] [--out FILE]``.

Prints per-stage and total milliseconds per frame (median and p95) at 640x480
with 1, 5 and 10 real faces (and 1280x720 with 10) for the default ``auto``
detector and the plain ``short`` and ``full`` BlazeFace models, in two layouts: ``grid`` (exactly that many real
face crops on a real background, jittered a few pixels per frame) and
``crowd`` (testkit/synth.py crowds moving in and out of view; fewer are in
view at once), pre-rendered so drawing them is not timed, the
classification cost per face against batch size, the cost of drawing the overlay
(``pipeline.annotate.draw`` with the status line, not part of ``total``), and peak memory (RSS).
Results go to ``benchmarks/results/pipeline.json``.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import time
from pathlib import Path

import numpy as np

from testkit.synth import make_sequence
from pipeline import Pipeline
from pipeline.annotate import draw

STAGES = ("detect", "track", "classify", "smooth", "landmarks", "total")


def stats(values) -> dict:
    a = np.asarray(values, float)
    return {"median": round(float(np.median(a)), 3), "p95": round(float(np.percentile(a, 95)), 3)}


def grid_frames(n_faces: int, n_frames: int, seed: int = 0, size=(640, 480)):
    """Exactly ``n_faces`` real face crops in a grid on a real background at
    ``size``, shifted by a few pixels every frame (hand-held jitter)."""
    import cv2

    from testkit.synth import backgrounds, face_sources

    W, H = size
    src = face_sources()
    bg = cv2.resize(backgrounds()[0], (W + 16, H + 16))
    cols = int(np.ceil(np.sqrt(n_faces * W / H)))  # fill the frame
    rows = -(-n_faces // cols)
    cw, ch = W // cols, H // rows
    side = int(min(cw, ch) * 0.85)
    canvas = bg.copy()
    for k in range(n_faces):
        r, c = divmod(k, cols)
        s = src[k % len(src)]
        crop = cv2.resize(s.rgb, (side, side))
        a = cv2.resize(s.alpha, (side, side))[..., None]
        y, x = 8 + r * ch + (ch - side) // 2, 8 + c * cw + (cw - side) // 2
        roi = canvas[y:y + side, x:x + side].astype(np.float32)
        canvas[y:y + side, x:x + side] = (a * crop + (1 - a) * roi).astype(np.uint8)
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n_frames):
        dx, dy = rng.integers(0, 16, 2)
        out.append(np.ascontiguousarray(canvas[dy:dy + H, dx:dx + W]))
    return out


def bench_pipeline(n_faces: int, seconds: float, detector: str, layout: str = "crowd", size=(640, 480)) -> dict:
    if layout == "grid":
        frames = grid_frames(n_faces, int(seconds * 30), seed=n_faces, size=size)
        seq = type("Seq", (), {"timestamps": [i / 30 for i in range(len(frames))],
                               "gt": [[None] * n_faces for _ in frames]})()
    else:
        seq = make_sequence("crowd", fps=30, seconds=seconds, size=size, seed=n_faces, n=n_faces)
        frames = list(seq.frames)
    with Pipeline(detector=detector, tiles=0) as p:
        for f, t in zip(frames[:5], seq.timestamps[:5]):  # warm-up (sessions, caches)
            p.process(f, t)
        p.reset()
        timings = {s: [] for s in STAGES}
        drawing = []  # the overlay (pipeline.annotate.draw) of the live view, on a copy of the frame
        faces = []
        wall = []
        for f, t in zip(frames, seq.timestamps):
            t0 = time.perf_counter()
            r = p.process(f, t)
            wall.append((time.perf_counter() - t0) * 1000)
            t1 = time.perf_counter()
            draw(f, r, status=f"30 fps  9 ms  {len(r)} faces")
            drawing.append((time.perf_counter() - t1) * 1000)
            faces.append(len(r))
            for s in STAGES:
                timings[s].append(r.timings_ms[s])
    gt_faces = float(np.mean([len(g) for g in seq.gt]))
    return {
        "faces_requested": n_faces,
        "faces_in_gt": round(gt_faces, 2),
        "faces_tracked": round(float(np.mean(faces[10:])), 2),
        "frames": len(frames),
        "detector": detector,
        "layout": layout,
        "size": list(size),
        **{s: stats(v) for s, v in timings.items()},
        "wall": stats(wall),
        "draw": stats(drawing),
    }


def bench_batch(reps: int = 200) -> list[dict]:
    from classifier import load_classifier
    from tracker.detect import FaceDetector

    seq = make_sequence("crowd", fps=30, seconds=0.2, n=8, seed=8)
    frame = seq.frames[0]
    boxes = FaceDetector("full").detect(frame).boxes
    clf, _ = load_classifier()
    out = []
    for n in (1, 2, 4, 8, 16, 32):
        b = np.resize(boxes, (n, 4)) if len(boxes) else np.tile([[100, 100, 200, 200]], (n, 1)).astype(np.float32)
        clf.predict(frame, b)
        ts = []
        for _ in range(reps):
            t0 = time.perf_counter()
            clf.predict(frame, b)
            ts.append((time.perf_counter() - t0) * 1000)
        med = float(np.median(ts))
        out.append({"batch": n, "ms_median": round(med, 3), "ms_per_face": round(med / n, 4)})
    return out


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=4.0, help="seconds of 30 fps video per case")
    ap.add_argument("--faces", default="1,5,10")
    ap.add_argument("--detectors", default="auto,short,full")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "pipeline.json"))
    args = ap.parse_args(argv)
    import onnxruntime

    load0 = round(os.getloadavg()[0], 2)
    cases = []
    for layout in ("grid", "crowd"):
        for det in args.detectors.split(","):
            for n in [int(x) for x in args.faces.split(",")]:
                cases.append(bench_pipeline(n, args.seconds, det, layout))
            if layout == "grid":  # HD: the goal for the default detector is 25 ms with 10 faces
                cases.append(bench_pipeline(10, args.seconds, det, layout, size=(1280, 720)))
    batch = bench_batch()
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    res = {
        "command": "python -m benchmarks.pipeline",
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
                    "onnxruntime": onnxruntime.__version__,
                    "load_avg_1m": [load0, round(os.getloadavg()[0], 2)]},
        "frame_size": [640, 480],
        "cases": cases,
        "classification_batch": batch,
        "peak_rss_mb": round(peak_mb, 1),
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(res, indent=2))

    print("| layout | size | detector | faces (in view / tracked) | detect | track | classify | smooth | landmarks "
          "| total median | total p95 | drawing |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for c in cases:
        print(f"| {c['layout']} | {c['size'][0]}x{c['size'][1]} | {c['detector']} | {c['faces_in_gt']:.0f} / {c['faces_tracked']:.1f} | {c['detect']['median']:.2f} "
              f"| {c['track']['median']:.2f} | {c['classify']['median']:.2f} | {c['smooth']['median']:.2f} | {c['landmarks']['median']:.2f} "
              f"| **{c['total']['median']:.2f}** | {c['total']['p95']:.2f} | {c['draw']['median']:.2f} |")
    print("\n| batch | classify ms | ms per face |\n|---|---|---|")
    for b in batch:
        print(f"| {b['batch']} | {b['ms_median']:.2f} | {b['ms_per_face']:.3f} |")
    print(f"\npeak RSS: {peak_mb:.0f} MB; results: {args.out}")
    return res


if __name__ == "__main__":
    main()
