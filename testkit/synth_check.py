"""How well the real detector sees the synthetic scenes: ``python -m testkit.synth_check``.

Recall, precision and mean IoU per scenario of :mod:`testkit.synth`, and a contact sheet PNG per
scenario in ``.cache/synth/``.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from tracker.geometry import iou

from .faces import REPO, _detector, face_sources
from .synth import SCENARIOS, Sequence, make_sequence


def detection_recall(seq: Sequence, detector, iou_thr: float = 0.5) -> dict:
    """Greedy IoU matching of detections to GT per frame: recall, precision, mean IoU."""
    tp = fn = fp = 0
    ious = []
    for fr, gt in zip(seq.frames, seq.gt):
        boxes = detector.detect(fr).boxes.tolist()
        used = set()
        for g in gt:
            best, bj = 0.0, -1
            for j, b in enumerate(boxes):
                if j not in used:
                    v = iou(g[1:], b)
                    if v > best:
                        best, bj = v, j
            if best >= iou_thr:
                tp += 1
                used.add(bj)
                ious.append(best)
            else:
                fn += 1
        fp += len(boxes) - len(used)
    return {"gt": tp + fn, "tp": tp, "fn": fn, "fp": fp,
            "recall": tp / max(tp + fn, 1), "precision": tp / max(tp + fp, 1),
            "mean_iou": float(np.mean(ious)) if ious else 0.0}


def contact_sheet(seq: Sequence, path, n: int = 6) -> Path:
    """A PNG with ``n`` frames of ``seq`` and their GT boxes drawn."""
    import cv2

    idx = np.linspace(0, len(seq) - 1, n).round().astype(int)
    tiles = []
    for i in idx:
        fr = seq.frame(int(i)).copy()
        for oid, x1, y1, x2, y2 in seq.gt[i]:
            cv2.rectangle(fr, (int(x1), int(y1)), (int(x2), int(y2)), (0, 255, 0), 2)
            cv2.putText(fr, str(oid), (int(x1) + 3, int(y1) + 18), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 255, 0), 2)
        tiles.append(cv2.resize(fr, (320, 240), interpolation=cv2.INTER_AREA))
    rows = [np.concatenate(tiles[k:k + 3], axis=1) for k in range(0, len(tiles), 3)]
    sheet = np.concatenate(rows, axis=0)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))
    return path


def main(argv=None) -> int:
    import argparse
    import json

    ap = argparse.ArgumentParser(description="Check synthetic sequences against the real detector.")
    ap.add_argument("--fps", type=float, nargs="+", default=[15])
    ap.add_argument("--detector", default="short")
    ap.add_argument("--sheets", default=str(REPO / ".cache" / "synth"))
    ap.add_argument("--json", default=None, help="write the recall table here")
    a = ap.parse_args(argv)
    det = _detector(a.detector)
    det.min_face = 20
    rows = []
    print(f"face sources: {len(face_sources())} ({', '.join(s.name for s in face_sources())})")
    cases = [(s, {}) for s in SCENARIOS if s not in ("crowd", "occlude")]
    cases += [("occlude", {"hide_s": h}) for h in (0.5, 1.0, 2.0)]
    cases += [("crowd", {"n": n}) for n in (1, 3, 5, 8)]
    print("| scenario | fps | GT faces | recall | precision | mean IoU |\n|---|---|---|---|---|---|")
    for fps in a.fps:
        for sc, p in cases:
            seq = make_sequence(sc, fps=fps, **p)
            r = detection_recall(seq, det)
            name = sc + "".join(f" {k}={v}" for k, v in p.items())
            rows.append({"scenario": name, "fps": fps, **r})
            print(f"| {name} | {fps:g} | {r['gt']} | {r['recall']:.3f} | {r['precision']:.3f} | {r['mean_iou']:.3f} |")
            if fps == a.fps[0]:
                contact_sheet(seq, Path(a.sheets) / f"{name.replace(' ', '_').replace('=', '')}.png")
    tot = {k: sum(r[k] for r in rows) for k in ("gt", "tp", "fp")}
    print(f"\nall: recall {tot['tp'] / tot['gt']:.3f}, precision {tot['tp'] / max(tot['tp'] + tot['fp'], 1):.3f} "
          f"({tot['gt']} GT faces, detector {a.detector!r}); contact sheets in {a.sheets}")
    if a.json:
        Path(a.json).parent.mkdir(parents=True, exist_ok=True)
        Path(a.json).write_text(json.dumps({"detector": a.detector, "rows": rows}, indent=1))
    det.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
