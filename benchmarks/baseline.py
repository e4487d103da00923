"""Speed and detection recall: our pipeline vs the classic Haar cascade + per-face CNN.

    python -m benchmarks.baseline            # writes benchmarks/results/baseline.json

The same frames (synthetic sequences of REAL face crops on real backgrounds,
``testkit/synth.py``, 30 frames each: 640x480 with 1, 5 and 10 faces, and
5 faces at 320x240, 1280x720 and 1920x1080) go through

* ours: ``pipeline.Pipeline`` (detect + track + classify in one batch +
  smooth), short-range and full-range detector;
* the classic approach: OpenCV 4 Haar cascade (``haarcascade_frontalface_default.xml``
  from the fer wheel; scaleFactor 1.1, minNeighbors 5, minSize 30) + the same
  ONNX model run one face at a time, no tracking.  OpenCV 5 (this project's)
  has no CascadeClassifier, so it runs in its own venv under
  ``.cache/baseline-venv`` (made here with ``pip install "opencv-python-headless<5"
  onnxruntime numpy``) as a subprocess on the same saved frames.

Recall uses a box-convention-free match (the detection's centre inside the GT
face box and its width 0.5-2x the GT width), so Haar's larger/smaller boxes are
not penalised.  Timings are wall-clock per frame on a shared 2-core machine.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from testkit import synth
from .metrics import md_table

REPO = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"
CACHE = REPO / ".cache" / "baseline"
VENV = REPO / ".cache" / "baseline-venv"
CONDITIONS = [  # (faces, (w, h))
    (1, (640, 480)), (5, (640, 480)), (10, (640, 480)),
    (5, (320, 240)), (5, (1280, 720)), (5, (1920, 1080)),
]


def ensure_venv(log=print) -> Path:
    py = VENV / "bin" / "python"
    ok = py.exists() and subprocess.run([str(py), "-c", "import cv2, onnxruntime, numpy; cv2.CascadeClassifier"],
                                        capture_output=True).returncode == 0
    if not ok:
        log(f"making {VENV} (opencv-python-headless<5, onnxruntime, numpy) ...")
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(VENV)], check=True)
        subprocess.run([str(py), "-m", "pip", "install", "--quiet", "opencv-python-headless<5", "onnxruntime", "numpy"],
                       check=True)
    return py


def found(gt_box, det_boxes) -> int | None:
    """Index of a detection matching a GT face (centre inside, width 0.5-2x), else None."""
    x1, y1, x2, y2 = gt_box
    gw = x2 - x1
    for j, b in enumerate(det_boxes):
        cx, cy, w = (b[0] + b[2]) / 2, (b[1] + b[3]) / 2, b[2] - b[0]
        if x1 <= cx <= x2 and y1 <= cy <= y2 and 0.5 * gw <= w <= 2 * gw:
            return j
    return None


def recall(gts, dets) -> dict:
    tp = fn = fp = 0
    for gt, ds in zip(gts, dets):
        ds = list(ds)
        for g in gt:
            j = found(g[1:], ds)
            if j is None:
                fn += 1
            else:
                tp += 1
                ds.pop(j)
        fp += len(ds)
    return {"recall": tp / max(tp + fn, 1), "false_pos_per_frame": fp / max(len(gts), 1), "gt_faces": tp + fn}


def stats(ms) -> dict:
    ms = np.asarray(ms, float)
    return {"median_ms": float(np.median(ms)), "p95_ms": float(np.percentile(ms, 95)), "frames": int(len(ms))}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--frames", type=int, default=30)
    ap.add_argument("--out", default=str(RESULTS / "baseline.json"))
    a = ap.parse_args(argv)
    t0 = time.time()
    import pipeline
    from pipeline import Pipeline

    from testkit.assets import fer_data

    cascade = fer_data() / "haarcascade_frontalface_default.xml"
    model = REPO / "classifier" / "models" / "fer_mini_xception.onnx"
    py = ensure_venv()
    CACHE.mkdir(parents=True, exist_ok=True)
    rows = []
    for n, size in CONDITIONS:
        seq = synth.make_sequence("crowd", fps=15, seconds=(a.frames + 3) / 15, size=size, seed=7, n=n)
        frames = np.stack(list(seq.frames))
        gts = seq.gt
        npz = CACHE / f"frames_{n}_{size[0]}x{size[1]}.npz"
        np.savez(npz, frames=frames)
        res = {"faces": n, "size": f"{size[0]}x{size[1]}", "gt_faces_per_frame": float(np.mean([len(g) for g in gts]))}
        for det in ("short", "full"):
            pl = Pipeline(detector=det, tiles=0)
            times = []
            for i, (fr, t) in enumerate(zip(frames, seq.timestamps)):
                s = time.perf_counter()
                pl.process(fr, t)
                if i >= 3:  # warm-up
                    times.append((time.perf_counter() - s) * 1000)
            dets = [pl.detector.detect(fr).boxes.tolist() for fr in frames[3:]]
            pl.detector.close()
            res[f"ours_{det}"] = {**stats(times), **recall(gts[3:], dets)}
        out = CACHE / f"haar_{n}_{size[0]}x{size[1]}.json"
        subprocess.run([str(py), str(Path(__file__).with_name("haar_baseline.py")), str(npz), str(cascade), str(model),
                        str(out)], check=True, env={**os.environ, "PYTHONPATH": ""})
        h = json.loads(out.read_text())
        res["haar"] = {**stats(h["times_ms"][3:]), **recall(gts[3:], h["boxes"][3:]),
                       "detect_median_ms": float(np.median(h["detect_ms"][3:])),
                       "classify_median_ms": float(np.median(h["classify_ms"][3:])), "opencv": h["opencv"]}
        for det in ("short", "full"):
            res[f"speedup_{det}"] = res["haar"]["median_ms"] / res[f"ours_{det}"]["median_ms"]
        rows.append(res)
        print(f"  {n} faces {size[0]}x{size[1]}: ours short {res['ours_short']['median_ms']:.1f} ms, "
              f"full {res['ours_full']['median_ms']:.1f} ms, haar {res['haar']['median_ms']:.1f} ms")
        npz.unlink()  # generated data is not kept

    flat = []
    for r in rows:
        flat.append({"cond": f"{r['faces']} @ {r['size']}",
                     "s_med": r["ours_short"]["median_ms"], "s_p95": r["ours_short"]["p95_ms"], "s_rec": r["ours_short"]["recall"],
                     "f_med": r["ours_full"]["median_ms"], "f_p95": r["ours_full"]["p95_ms"], "f_rec": r["ours_full"]["recall"],
                     "h_med": r["haar"]["median_ms"], "h_p95": r["haar"]["p95_ms"], "h_rec": r["haar"]["recall"],
                     "h_fp": r["haar"]["false_pos_per_frame"],
                     "x_s": r["speedup_short"], "x_f": r["speedup_full"]})
    cols = [("cond", "faces @ size"), ("s_med", "ours short med ms"), ("s_p95", "p95"), ("s_rec", "recall"),
            ("f_med", "ours full med ms"), ("f_p95", "p95"), ("f_rec", "recall"),
            ("h_med", "Haar+CNN med ms"), ("h_p95", "p95"), ("h_rec", "recall"), ("h_fp", "Haar false pos/frame"),
            ("x_s", "speed-up short"), ("x_f", "speed-up full")]
    print(f"\n### Speed vs Haar cascade + per-face CNN ({a.frames} frames per row, 2 shared cores; "
          f"OpenCV {rows[0]['haar']['opencv']} for Haar)\n")
    print(md_table(flat, cols))
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps({"command": "python -m benchmarks.baseline", "rows": rows,
                                       "seconds": time.time() - t0, "cpu_count": os.cpu_count(),
                                       "load_avg_1_5_15_at_end": os.getloadavg()}, indent=1))
    print(f"\nload average at the end (1/5/15 min): {os.getloadavg()} on {os.cpu_count()} cores - timings are noisy")
    print(f"wrote {a.out} ({time.time() - t0:.0f} s)")
    del pipeline
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
