"""Does an aligned crop (eyes level) help the emotion model?  ``python -m benchmarks.alignment``.

For every labelled real photo obtainable offline (``emopy`` CK+ peaks,
``emopy-neutral``, ``feat-ph``; see ``testkit/labelled.py``), turned by
0, +-15 and +-30 degrees: the largest face is detected and classified twice,
from the plain crop (what the pipeline does) and from an aligned crop (the
image turned about the face centre so that the face-mesh eye corners 33/263
are level, then the same box; or level by the detector's two eye keypoints).
Accuracy per angle and crop.  Results:
``benchmarks/results/alignment.json``.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2
import numpy as np

from classifier.hub import load_classifier
from testkit.labelled import named
from tracker.detect import FaceDetector
from tracker.facegeom import EYE_OUTER
from tracker.facemesh import DEFAULT_MESHES

SETS = ("emopy", "emopy-neutral", "feat-ph")
ANGLES = (-30, -15, 0, 15, 30)


def _largest(dets, rgb):
    for d in dets:
        r = d.detect(rgb)
        if len(r):
            a = (r.boxes[:, 2] - r.boxes[:, 0]) * (r.boxes[:, 3] - r.boxes[:, 1])
            i = int(np.argmax(a))
            return r.boxes[i:i + 1], r.keypoints[i:i + 1]
    return None, None


def aligned_predict(clf, rgb, box, kps, by="landmarks") -> np.ndarray | None:
    if by == "landmarks":
        lms, _, _ = DEFAULT_MESHES.get().run(rgb, box, kps)
        if not np.isfinite(lms[0, 0, 0]):
            return None
        (rx, ry), (lx, ly) = lms[0, EYE_OUTER[0], :2], lms[0, EYE_OUTER[1], :2]
    else:  # the detector's two eye keypoints
        (rx, ry), (lx, ly) = kps[0, 0], kps[0, 1]
    angle = float(np.degrees(np.arctan2(ly - ry, lx - rx)))
    cx, cy = (box[0, 0] + box[0, 2]) / 2, (box[0, 1] + box[0, 3]) / 2
    m = cv2.getRotationMatrix2D((float(cx), float(cy)), angle, 1.0)
    turned = cv2.warpAffine(rgb, m, (rgb.shape[1], rgb.shape[0]), flags=cv2.INTER_LINEAR,
                            borderMode=cv2.BORDER_REPLICATE)
    return clf.predict(turned, box)[0]


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "alignment.json"))
    args = ap.parse_args(argv)
    clf, _ = load_classifier("fer-mini-xception")
    dets = [FaceDetector("short", tiles=0), FaceDetector("full", tiles=0)]
    items = [it for s in SETS for it in named(s)]
    counts = {a: {"plain": 0, "aligned": 0, "aligned_kp": 0, "n": 0, "no_face": 0} for a in ANGLES}
    for it in items:
        img = it.image()
        h, w = img.shape[:2]
        for a in ANGLES:
            rgb = img if a == 0 else cv2.warpAffine(img, cv2.getRotationMatrix2D((w / 2, h / 2), a, 1.0), (w, h),
                                                    borderMode=cv2.BORDER_REPLICATE)
            box, kps = _largest(dets, rgb)
            if box is None:
                counts[a]["no_face"] += 1
                continue
            al = aligned_predict(clf, rgb, box, kps)
            plain = clf.predict(rgb, box)[0]
            kp = aligned_predict(clf, rgb, box, kps, by="keypoints")
            if al is None:
                al = plain
            c = counts[a]
            c["n"] += 1
            c["plain"] += clf.classes[int(np.argmax(plain))] == it.label
            c["aligned"] += clf.classes[int(np.argmax(al))] == it.label
            c["aligned_kp"] += clf.classes[int(np.argmax(kp))] == it.label
    for d in dets:
        d.close()
    rows = [{"angle": a, "faces": c["n"], "no_face": c["no_face"],
             "plain_accuracy": round(c["plain"] / max(c["n"], 1), 4),
             "aligned_accuracy": round(c["aligned"] / max(c["n"], 1), 4),
             "aligned_by_detector_keypoints_accuracy": round(c["aligned_kp"] / max(c["n"], 1), 4)}
            for a, c in counts.items()]
    res = {"command": "python -m benchmarks.alignment", "model": clf.spec.id, "sets": list(SETS),
           "images": len(items), "by_angle": rows}
    Path(args.out).write_text(json.dumps(res, indent=2))
    print(f"{len(items)} labelled real photos ({', '.join(SETS)}), model {clf.spec.id}")
    print("| turned by | faces | plain crop | aligned (face mesh) | aligned (detector eye keypoints) |\n|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['angle']} deg | {r['faces']} | {r['plain_accuracy']:.3f} | {r['aligned_accuracy']:.3f} "
              f"| {r['aligned_by_detector_keypoints_accuracy']:.3f} |")
    return res


if __name__ == "__main__":
    main()
