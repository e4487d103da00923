"""Recall and precision on hard real faces, per failure mode: ``python -m benchmarks.hardfaces``.

The set (``testkit/hardfaces.py``, ``benchmarks/groundtruth/hardfaces.json``): real WIDER FACE
validation photos at 640 px wide, and frames cut out of them so that faces are cut by the frame's
edge, as a webcam cuts people who lean in from the side.  Every face is tagged with its failure modes:
``edge`` (cut by the frame's edge), ``glasses``, ``shadow`` (WIDER's extreme illumination),
``darker_skin`` (perceived Fitzpatrick type V-VI), ``turned`` (WIDER's atypical pose: head turned 45
degrees or more), ``occluded`` (partly covered), ``blur`` (WIDER's heavy blur), ``tiny`` (< 24 px).

Each detector (``--modes``, names of ``detection.detector``) is run as a still (``scan_all``, what
``analyze_image`` does) and as a stream (the frame shown for ``--frames`` frames, each given the
previous frame's faces as hints, as the pipeline does; every frame counts).  A detection matches a
face at IoU >= ``--iou`` (0.4, as ``benchmarks/recall.py``; WIDER's boxes are tight, hairline to chin);
detections on faces below the set's size floor or on faces less than 40% in the frame count as
neither hits nor false positives.  Results: ``benchmarks/results/hardfaces.json``.

A mode may change settings of ``detection`` after a colon, ``yunet:min_score=0.6,min_face=16``.  Every
result is also given for the set's two halves apart (``halves``: ``A`` the even-numbered photos of
``hardfaces.json`` with the frames cut out of them, ``B`` the odd ones), so that a threshold chosen on
one half can be reported on the other.
"""
from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

from common.checks import ConfigError
from tracker.base import DetectionConfig
from tracker.factory import make_detector
from .recall import match

RESULTS = Path(__file__).resolve().parent / "results"
MODES = ("auto", "blazeface", "hybrid", "yunet", "yunet320", "auto+yunet", "auto+short", "centerface")


class TagTally:
    def __init__(self):
        self.hits: dict[str, list[int]] = {}
        self.tp = self.fp = 0
        self.ms: list[float] = []

    def add(self, gt, tags, dets, ignore, ms):
        hit, fp = match(gt, dets, ignore, self.iou)
        for h, t in zip(hit, tags):
            for k in ["all", *t]:
                self.hits.setdefault(k, [0, 0])
                self.hits[k][0] += int(h)
                self.hits[k][1] += 1
        self.tp += sum(hit)
        self.fp += fp
        self.ms.append(ms)

    def result(self) -> dict:
        return {"recall": {k: round(h / n, 3) for k, (h, n) in sorted(self.hits.items())},
                "faces": {k: n for k, (h, n) in sorted(self.hits.items())},
                "precision": round(self.tp / max(self.tp + self.fp, 1), 3), "false_positives": self.fp,
                "ms_median": round(float(np.median(self.ms)), 2) if self.ms else None}


def mode_config(mode: str) -> DetectionConfig:
    """``"name"`` or ``"name:field=value,..."`` -> the detection settings it names."""
    name, _, rest = mode.partition(":")
    kw = {}
    for item in filter(None, rest.split(",")):
        k, eq, v = item.partition("=")
        if not eq or k not in DetectionConfig.__dataclass_fields__:
            raise ConfigError(f"mode {mode!r}: {item!r} is not field=value of detection")
        kw[k] = type(getattr(DetectionConfig(), k))(v)
    return DetectionConfig(detector=name, **kw)


def half_of(doc: dict) -> dict[str, str]:
    """Case name -> ``"A"`` (even-numbered photo of the set, or a frame cut out of one) or ``"B"``."""
    out = {}
    for i, p in enumerate(doc["photos"]):
        out[p["name"]] = "AB"[i % 2]
    for fr in doc.get("frames", []):
        out[fr["name"]] = out[fr["from"]]
    return out


def run(mode: str, cases, how: str, frames: int, iou: float, halves: dict | None = None) -> tuple[dict, list]:
    t = TagTally()
    t.iou = iou
    parts = {h: TagTally() for h in "AB"}
    for p in parts.values():
        p.iou = iou
    misses = []
    cfg = mode_config(mode)
    for c in cases:
        det = make_detector(cfg)
        try:
            hints = None
            for k in range(frames if how == "stream" else 1):
                t0 = time.perf_counter()
                d = det.detect(c.rgb, hints=hints, scan_all=(how == "still" or hints is None))
                ms = (time.perf_counter() - t0) * 1000
                hints = d.boxes
                t.add(c.boxes, c.tags, d.boxes, c.ignore, ms)
                if halves:
                    parts[halves[c.name]].add(c.boxes, c.tags, d.boxes, c.ignore, ms)
                if k == 0:
                    hit, _ = match(c.boxes, d.boxes, c.ignore, iou)
                    misses += [(c.name, i) for i, h in enumerate(hit) if not h]
        finally:
            det.close()
    out = t.result()
    if halves:
        out["halves"] = {h: {k: p.result()[k] for k in ("recall", "precision", "false_positives")}
                         for h, p in parts.items()}
    return out, misses


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--modes", default=",".join(MODES))
    ap.add_argument("--frames", type=int, default=4, help="stream frames per photo")
    ap.add_argument("--iou", type=float, default=0.4)
    ap.add_argument("--as", dest="how", default="still,stream", help="still, stream or both (the default)")
    ap.add_argument("--out", default=str(RESULTS / "hardfaces.json"))
    a = ap.parse_args(argv)
    from testkit.hardfaces import GT_FILE, TAGS, cases as load

    cases = load()
    halves = half_of(json.loads(GT_FILE.read_text()))
    load0 = round(os.getloadavg()[0], 2)
    n_faces = sum(len(c.boxes) for c in cases)
    summary, misses = [], {}
    for m in a.modes.split(","):
        for how in a.how.split(","):
            r, miss = run(m, cases, how, a.frames, a.iou, halves)
            summary.append({"mode": m, "as": how, **r})
            misses[f"{m} {how}"] = miss
            print(m, how, r["recall"].get("all"), r["recall"].get("edge"), r["precision"], r["ms_median"],
                  {h: (v["recall"]["all"], v["recall"]["edge"], v["precision"]) for h, v in r["halves"].items()},
                  flush=True)
    cols = ["all", *TAGS]
    print(f"\n{len(cases)} cases, {n_faces} faces")
    print("| detector | as | " + " | ".join(f"recall {c}" for c in cols) + " | precision | ms (median) |")
    print("|---|---|" + "---|" * (len(cols) + 2))
    for r in summary:
        cells = [f"{r['recall'][c]:.2f}" if c in r["recall"] else "-" for c in cols]
        print(f"| {r['mode']} | {r['as']} | " + " | ".join(cells) + f" | {r['precision']:.3f} | {r['ms_median']} |")
    faces = summary[0]["faces"] if summary else {}
    res = {"command": "python -m benchmarks.hardfaces" + (f" --modes '{a.modes}'" if a.modes != ",".join(MODES) else "")
           + (f" --as {a.how}" if a.how != "still,stream" else "")
           + (f" --out {a.out}" if Path(a.out) != RESULTS / "hardfaces.json" else ""),
           "iou": a.iou, "stream_frames": a.frames,
           "load_avg_1min": [load0, round(os.getloadavg()[0], 2)], "cases": len(cases), "faces": faces,
           "halves": "A: the even-numbered photos of benchmarks/groundtruth/hardfaces.json and their cut frames, "
                     "B: the odd ones",
           "summary": summary, "misses_first_frame": misses}
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(res, indent=1))
    print(f"\nresults: {a.out}")
    return res


if __name__ == "__main__":
    main()
