"""What detecting faces on every other frame (the Live tab's ``LIVE_DETECT_EVERY=2``) costs in tracking
and labels, and saves in CPU: ``python -m benchmarks.detect_every [--quick]``.

The whole :class:`pipeline.Pipeline` (default preset) runs on ``benchmarks.tracking``'s synthetic
sequences (real face crops, exact ground truth: crossings, occlusions, faces entering and leaving, jitter,
scale, crowds, a pan) at 15 and 30 fps, with ``detect_every`` 1 and 2.  Per run: MOT metrics of the
faces it reports (measured faces; ``with_predicted`` adds the held ones, as the Live view shows them),
and CPU ms per frame.  Labels: each face of the ``detect_every=2`` run is matched (IoU >= 0.5) to the
every-frame run's face in the same frame; the share whose shown label is the same.
Writes ``benchmarks/results/detect_every.json``.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from testkit import synth
from testkit.synth_check import iou

from .metrics import mot_metrics
from .tracking import RESULTS, cases


def _run(seq, every: int) -> tuple[list, list, list, float]:
    from pipeline import Pipeline, preset

    measured, shown, labels = [], [], []
    with Pipeline(preset(None, detect_every=every)) as p:
        c0 = time.process_time()
        for fr, t in zip(seq.frames, seq.timestamps):
            r = p.process(fr, t)
            rows = [(int(tid), *map(float, b)) for tid, b in zip(r.track_ids, r.boxes)]
            pred = r.predicted
            measured.append([row for row, pr in zip(rows, pred) if not pr])
            shown.append(rows)
            labels.append([(row[1:], int(lab)) for row, lab in zip(rows, r.labels)])
        cpu_ms = (time.process_time() - c0) / max(1, len(seq.timestamps)) * 1000
    return measured, shown, labels, cpu_ms


def label_agreement(ref: list, other: list) -> tuple[int, int]:
    """(faces of ``other`` matched to a face of ``ref`` in the same frame, of them with the same label)."""
    matched = same = 0
    for fr_ref, fr_o in zip(ref, other):
        for box, lab in fr_o:
            best = max(fr_ref, key=lambda x: iou(box, x[0]), default=None)
            if best is not None and iou(box, best[0]) >= 0.5:
                matched += 1
                same += int(best[1] == lab)
    return matched, same


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="four cases, one seed")
    ap.add_argument("--fps", type=float, nargs="+", default=[15, 30])
    ap.add_argument("--out", default=str(RESULTS / "detect_every.json"))
    args = ap.parse_args(argv)
    seeds = [0] if args.quick else [0, 1]
    rows = []
    for label, params in cases(args.quick):
        params = dict(params)
        scenario = params.pop("scenario")
        for fps in args.fps:
            for seed in seeds:
                seq = synth.make_sequence(scenario, fps=fps, seed=seed, **params)
                runs = {k: _run(seq, k) for k in (1, 2)}
                matched, same = label_agreement(runs[1][2], runs[2][2])
                for k, (measured, shown, _, cpu_ms) in runs.items():
                    m = mot_metrics(seq.gt, measured)
                    ms = mot_metrics(seq.gt, shown)
                    rows.append({"case": label, "fps": fps, "seed": seed, "detect_every": k, "frames": len(seq.gt),
                                 "cpu_ms_per_frame": round(cpu_ms, 2),
                                 **{x: m[x] for x in ("idf1", "mota", "id_switches", "recall", "precision")},
                                 "with_predicted": {x: ms[x] for x in ("idf1", "recall", "precision", "id_switches")},
                                 **({"labels_matched": matched, "labels_same": same} if k == 2 else {})})
                a, b = rows[-2], rows[-1]
                print(f"{label:>14} {fps:>4g} fps seed {seed}: IDF1 {a['idf1']:.3f} -> {b['idf1']:.3f}, "
                      f"ID switches {a['id_switches']} -> {b['id_switches']}, recall {a['recall']:.3f} -> "
                      f"{b['recall']:.3f}, CPU {a['cpu_ms_per_frame']} -> {b['cpu_ms_per_frame']} ms/frame, "
                      f"same label {same}/{matched}", flush=True)
    summary = {}
    for k in (1, 2):
        rs = [r for r in rows if r["detect_every"] == k]
        summary[f"detect_every_{k}"] = {
            "mean_idf1": round(float(np.mean([r["idf1"] for r in rs])), 4),
            "min_idf1": round(float(np.min([r["idf1"] for r in rs])), 4),
            "mean_idf1_with_predicted": round(float(np.mean([r["with_predicted"]["idf1"] for r in rs])), 4),
            "id_switches": int(sum(r["id_switches"] for r in rs)),
            "mean_recall": round(float(np.mean([r["recall"] for r in rs])), 4),
            "mean_precision": round(float(np.mean([r["precision"] for r in rs])), 4),
            "cpu_ms_per_frame": round(float(np.mean([r["cpu_ms_per_frame"] for r in rs])), 2),
        }
    two = [r for r in rows if r["detect_every"] == 2]
    summary["labels_same_share"] = round(sum(r["labels_same"] for r in two) / max(1, sum(r["labels_matched"] for r in two)), 4)
    out = {"command": "python -m benchmarks.detect_every " + " ".join(argv if argv is not None else __import__("sys").argv[1:]),
           "fps": args.fps, "seeds": seeds, "summary": summary, "rows": rows}
    path = Path(args.out)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=1) + "\n")
    print(json.dumps(summary, indent=1))
    print(f"wrote {path}")
    return out


if __name__ == "__main__":
    main()
