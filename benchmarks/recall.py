"""Face detection recall and precision by face size: ``python -m benchmarks.recall [--quick]``.

For each detector mode, recall per face-height bucket (< 24, 24-40, 40-80,
80-160, >= 160 px) and precision, on

* **real group photos** that installed packages ship, with face boxes checked
  by eye once (``benchmarks/groundtruth/faces.json``), each at its own size and
  also shrunk onto the middle of a 1280x720 grey frame so that its median face
  is ~60 px, then ~30 px tall, as the same people would look farther away;
* **synthetic scenes** of real face crops at 1280x720 (``testkit.synth``:
  ``scale``, ``crowd`` of 8, ``pan_group``), every frame.

Modes: ``auto`` as a stream (the pipeline's default: each frame is given the
previous frame's faces as hints; a photo is shown for 12 frames and every
frame counts), ``auto still`` (what ``analyze_image`` does: every tile at
once), and the plain BlazeFace models: ``short``, ``full`` (one pass),
``full tiles=auto`` (the old "far / groups"); ``--modes`` also takes the other back ends
(:data:`CANDIDATES`: ``hybrid``, ``yunet``, ``auto+yunet``, ``auto+short``, ``centerface``,
``yunet+centerface``, each as a
stream or with `` still``).  A detection matches a face at
IoU >= 0.4; detections on ``ignore`` regions (a portrait on a wall) count as
neither.  Results: ``benchmarks/results/recall.json`` and tables on stdout.
"""
from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import cv2
import numpy as np

from tracker.base import DetectionConfig
from tracker.factory import make_detector
from tracker.geometry import iou

GT_FILE = Path(__file__).resolve().parent / "groundtruth" / "faces.json"
RESULTS = Path(__file__).resolve().parent / "results"
BUCKETS = ((0, 24), (24, 40), (40, 80), (80, 160), (160, 1e9))
MODES = {
    "auto": (dict(detector="auto"), "stream"),
    "auto still": (dict(detector="auto"), "still"),
    "blazeface still": (dict(detector="blazeface"), "still"),  # the default's stream detector on stills too
    "short": (dict(detector="short", tiles=0), "still"),
    "full": (dict(detector="full", tiles=0), "still"),
    "full tiles=auto": (dict(detector="full", tiles="auto"), "still"),
}
#: The other back ends of ``detection.detector`` (issue 24), run with ``--modes``; not in the default run.
CANDIDATES = {f"{d}{' still' if how == 'still' else ''}": (dict(detector=d), how)
              for d in ("hybrid", "yunet", "auto+yunet", "auto+short", "centerface", "yunet+centerface")
              for how in ("stream", "still")}
#: the fused candidate with the face size floor chosen on half A of the hard set (benchmarks/hardfaces.py)
CANDIDATES["yunet+centerface min_face=16 still"] = (dict(detector="yunet+centerface", min_face=16), "still")
ALL_MODES = {**MODES, **CANDIDATES}
STREAM_FRAMES = 12


def bucket_name(lo, hi) -> str:
    return f"<{hi:.0f}" if lo == 0 else f">={lo:.0f}" if hi > 1e8 else f"{lo:.0f}-{hi:.0f}"


def match(gt, dets, ignore=(), thr: float = 0.4):
    """(matched flags per GT box, number of false positives): greedy by IoU."""
    pairs = sorted(((iou(g, d), i, j) for i, g in enumerate(gt) for j, d in enumerate(dets)), reverse=True)
    hit, used = [False] * len(gt), set()
    for v, i, j in pairs:
        if v < thr:
            break
        if not hit[i] and j not in used:
            hit[i] = True
            used.add(j)
    fp = sum(1 for j, d in enumerate(dets) if j not in used and not any(iou(d, z) > 0.3 for z in ignore))
    return hit, fp


class Tally:
    def __init__(self):
        self.hits = {b: [0, 0] for b in BUCKETS}
        self.fp = self.tp = 0
        self.ms: list[float] = []

    def add(self, gt, dets, ignore=(), ms=None):
        hit, fp = match(gt, dets, ignore)
        for g, h in zip(gt, hit):
            gh = g[3] - g[1]
            for b in BUCKETS:
                if b[0] <= gh < b[1]:
                    self.hits[b][0] += h
                    self.hits[b][1] += 1
        self.tp += sum(hit)
        self.fp += fp
        if ms is not None:
            self.ms.append(ms)

    def result(self) -> dict:
        rec = {bucket_name(*b): (round(h / n, 3) if n else None, n) for b, (h, n) in self.hits.items()}
        big = [(h, n) for b, (h, n) in self.hits.items() if b[0] >= 40]
        return {"recall_by_height": {k: v[0] for k, v in rec.items()}, "faces_by_height": {k: v[1] for k, v in rec.items()},
                "recall_40plus": round(sum(h for h, _ in big) / max(sum(n for _, n in big), 1), 3),
                "precision": round(self.tp / max(self.tp + self.fp, 1), 3), "false_positives": self.fp,
                "ms_median": round(float(np.median(self.ms)), 2) if self.ms else None}


def run_frames(mode: str, frames, gts, ignores=None) -> list:
    """Detections per frame for a mode (a fresh detector per sequence)."""
    cfg, how = ALL_MODES[mode]
    det = make_detector(DetectionConfig(**cfg))
    out, hints = [], None
    try:
        for k, fr in enumerate(frames):
            t0 = time.perf_counter()
            if how == "stream":
                d = det.detect(fr, hints=hints, scan_all=hints is None)
                hints = d.boxes
            else:
                d = det.detect(fr, scan_all=True)
            out.append((d.boxes, (time.perf_counter() - t0) * 1000))
    finally:
        det.close()
    return out


def photo_cases(quick: bool):
    """(name, rgb, gt boxes, ignore boxes) for every photo at its size and shrunk into 1280x720."""
    from testkit import assets

    doc = json.loads(GT_FILE.read_text())
    for p in doc["photos"]:
        if quick and p["name"] not in ("multi_face", "t1"):
            continue
        folder = getattr(assets, p["fetch"].rsplit(".", 1)[1])()
        rgb = assets.read_rgb(folder / p["file"])
        gt = np.array([f["box"] for f in p["faces"]], np.float32)
        ign = np.array([z["box"] if isinstance(z, dict) else z for z in p.get("ignore", [])], np.float32).reshape(-1, 4)
        yield p["name"], rgb, gt, ign
        med = float(np.median(gt[:, 3] - gt[:, 1]))
        h, w = rgb.shape[:2]
        for target in (60, 30):  # the same people farther away: median face ~60 px, then ~30 px
            s = min(target / med, 1280 / w, 720 / h)
            if s >= 0.95:
                continue
            sw, sh = int(w * s), int(h * s)
            canvas = np.full((720, 1280, 3), 120, np.uint8)
            x0, y0 = (1280 - sw) // 2, (720 - sh) // 2
            canvas[y0:y0 + sh, x0:x0 + sw] = cv2.resize(rgb, (sw, sh), interpolation=cv2.INTER_AREA)
            off = np.array([x0, y0, x0, y0], np.float32)
            yield f"{p['name']} x{s:.2f} in 1280x720", canvas, gt * s + off, ign * s + off


def synth_cases(quick: bool):
    from testkit.synth import make_sequence

    specs = [("scale", {}), ("crowd", {"n": 8}), ("pan_group", {"seconds": 6.0})]
    for sc, p in specs[:2] if quick else specs:
        seq = make_sequence(sc, fps=15, seconds=p.pop("seconds", 4.0), size=(1280, 720), seed=0, **p)
        frames = list(seq.frames)
        gts = [np.array([g[1:] for g in fr], np.float32).reshape(-1, 4) for fr in seq.gt]
        yield f"synth {sc}" + (f" {p['n']}" if "n" in p else "") + " 1280x720", frames, gts


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="two photos, two scenes")
    ap.add_argument("--modes", default=",".join(MODES))
    ap.add_argument("--out", default=str(RESULTS / "recall.json"))
    a = ap.parse_args(argv)
    modes = a.modes.split(",")
    load0 = round(os.getloadavg()[0], 2)
    rows, totals = [], {m: {"photos": Tally(), "synth": Tally()} for m in modes}
    for name, rgb, gt, ign in photo_cases(a.quick):
        for m in modes:
            n = STREAM_FRAMES if ALL_MODES[m][1] == "stream" else 1
            t = Tally()
            for boxes, ms in run_frames(m, [rgb] * n, None):
                t.add(gt, boxes, ign, ms)
                totals[m]["photos"].add(gt, boxes, ign, ms)
            rows.append({"case": name, "kind": "photo", "mode": m, **t.result()})
    for name, frames, gts in synth_cases(a.quick):
        for m in modes:
            t = Tally()
            for (boxes, ms), gt in zip(run_frames(m, frames, gts), gts):
                t.add(gt, boxes, (), ms)
                totals[m]["synth"].add(gt, boxes, (), ms)
            rows.append({"case": name, "kind": "synth", "mode": m, **t.result()})
    summary = [{"mode": m, "set": k, **v.result()} for m in modes for k, v in totals[m].items()]
    names = [bucket_name(*b) for b in BUCKETS]
    print("| mode | set | " + " | ".join(f"recall {n} px" for n in names) + " | recall >=40 px | precision | ms/frame |")
    print("|---|---|" + "---|" * (len(names) + 3))
    for r in summary:
        cells = [("-" if r["recall_by_height"][n] is None else f"{r['recall_by_height'][n]:.2f} ({r['faces_by_height'][n]})")
                 for n in names]
        print(f"| {r['mode']} | {r['set']} | " + " | ".join(cells)
              + f" | **{r['recall_40plus']:.3f}** | {r['precision']:.3f} | {r['ms_median']} |")
    res = {"command": "python -m benchmarks.recall" + (" --quick" if a.quick else "")
           + (f" --modes {a.modes}" if a.modes != ",".join(MODES) else "")
           + (f" --out {a.out}" if Path(a.out) != RESULTS / "recall.json" else ""), "iou": 0.4,
           "load_avg_1min": [load0, round(os.getloadavg()[0], 2)],
           "buckets_px": [bucket_name(*b) for b in BUCKETS], "summary": summary, "cases": rows}
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(res, indent=1))
    print(f"\nresults: {a.out}")
    return res


if __name__ == "__main__":
    main()
