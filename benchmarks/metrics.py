"""Metric code shared by the benchmarks (tested on hand-made cases in tests/test_eval.py).

* :func:`mot_metrics` - MOTA, IDF1, ID switches, fragmentations with
  ``motmetrics`` (IoU matching, max distance 0.5 = IoU >= 0.5).
* :func:`flicker_rate`, :func:`label_lag` - label stability of a per-frame
  label stream against a known true label stream.
* :func:`classification_report` - accuracy, macro-F1, confusion matrix.
"""
from __future__ import annotations

import numpy as np


# --------------------------------------------------------------------------- tracking
def mot_metrics(gt_frames, hyp_frames, max_iou_distance: float = 0.5) -> dict:
    """CLEAR-MOT and ID metrics for one sequence.

    ``gt_frames`` / ``hyp_frames``: one list per frame of ``(id, x1, y1, x2, y2)``.
    Returns a dict with mota, idf1, id_switches, fragmentations, precision,
    recall, num_gt, num_hyp_ids, num_gt_ids, motp (mean IoU distance).
    """
    import motmetrics as mm

    acc = mm.MOTAccumulator(auto_id=True)
    for gt, hyp in zip(gt_frames, hyp_frames):
        g_ids = [g[0] for g in gt]
        h_ids = [h[0] for h in hyp]
        g = np.array([[g[1], g[2], g[3] - g[1], g[4] - g[2]] for g in gt], float).reshape(-1, 4)
        h = np.array([[h[1], h[2], h[3] - h[1], h[4] - h[2]] for h in hyp], float).reshape(-1, 4)
        d = iou_distance(g, h, max_iou_distance)
        acc.update(g_ids, h_ids, d)
    mh = mm.metrics.create()
    names = ["mota", "idf1", "num_switches", "num_fragmentations", "precision", "recall",
             "num_objects", "num_unique_objects", "motp", "num_false_positives", "num_misses"]
    s = mh.compute(acc, metrics=names, name="seq")
    r = {k: float(s[k].iloc[0]) for k in names}
    n_hyp_ids = len({h[0] for fr in hyp_frames for h in fr})
    return {
        "mota": r["mota"], "idf1": r["idf1"], "id_switches": int(r["num_switches"]),
        "fragmentations": int(r["num_fragmentations"]), "precision": r["precision"], "recall": r["recall"],
        "num_gt": int(r["num_objects"]), "num_gt_ids": int(r["num_unique_objects"]), "num_hyp_ids": n_hyp_ids,
        "false_positives": int(r["num_false_positives"]), "misses": int(r["num_misses"]),
        "motp_iou": 1.0 - r["motp"] if r["motp"] == r["motp"] else float("nan"),
    }


def iou_distance(a: np.ndarray, b: np.ndarray, max_d: float = 0.5) -> np.ndarray:
    """1 - IoU between (x, y, w, h) boxes, NaN (no match allowed) above ``max_d``.

    Same as ``motmetrics.distances.iou_matrix``, which fails on NumPy 2 (np.asfarray).
    """
    a, b = np.asarray(a, float).reshape(-1, 4), np.asarray(b, float).reshape(-1, 4)
    if len(a) == 0 or len(b) == 0:
        return np.empty((len(a), len(b)))
    ax2, ay2 = a[:, 0] + a[:, 2], a[:, 1] + a[:, 3]
    bx2, by2 = b[:, 0] + b[:, 2], b[:, 1] + b[:, 3]
    iw = np.clip(np.minimum(ax2[:, None], bx2[None]) - np.maximum(a[:, None, 0], b[None, :, 0]), 0, None)
    ih = np.clip(np.minimum(ay2[:, None], by2[None]) - np.maximum(a[:, None, 1], b[None, :, 1]), 0, None)
    inter = iw * ih
    union = (a[:, 2] * a[:, 3])[:, None] + (b[:, 2] * b[:, 3])[None] - inter
    d = 1.0 - inter / np.maximum(union, 1e-12)
    d[d > max_d] = np.nan
    return d


def nan_to_none(x):
    if isinstance(x, float) and x != x:
        return None
    return x


# --------------------------------------------------------------------------- smoothing
def _segments(truth) -> list[tuple[int, int]]:
    """[start, end) index ranges where the true label is constant."""
    truth = list(truth)
    out, s = [], 0
    for i in range(1, len(truth) + 1):
        if i == len(truth) or truth[i] != truth[s]:
            out.append((s, i))
            s = i
    return out


def flicker_rate(labels, truth, timestamps, settle_s: float = 0.0) -> float:
    """Label changes per second while the truth is steady.

    Within each constant-truth segment, changes of the output label between
    consecutive frames are counted, except the one expected change: the first
    change *to* the new true label after a true change (that is lag, not
    flicker).  ``settle_s`` also ignores everything in the first seconds of a
    segment.  Returns changes / seconds of steady truth.
    """
    labels, truth, ts = list(labels), list(truth), np.asarray(timestamps, float)
    changes, seconds = 0, 0.0
    for s, e in _segments(truth):
        t0 = ts[s] + (settle_s if s > 0 else 0.0)
        idx = [i for i in range(s, e) if ts[i] >= t0]
        if len(idx) < 2:
            continue
        caught = labels[idx[0]] == truth[s] or s == 0
        for a, b in zip(idx[:-1], idx[1:]):
            if labels[a] != labels[b]:
                if not caught and labels[b] == truth[s]:
                    caught = True  # the expected catch-up change
                    continue
                changes += 1
        seconds += ts[idx[-1]] - ts[idx[0]]
    return changes / seconds if seconds > 0 else 0.0


def label_lag(labels, truth, timestamps, hold_s: float = 0.0) -> list[float | None]:
    """Seconds from each true change until the label first equals the new truth
    (and, with ``hold_s``, stays so that long); None if it never does in the segment."""
    labels, truth, ts = list(labels), list(truth), np.asarray(timestamps, float)
    lags: list[float | None] = []
    for s, e in _segments(truth)[1:]:
        lag = None
        for i in range(s, e):
            if labels[i] != truth[s]:
                continue
            j = i
            while j + 1 < e and labels[j + 1] == truth[s] and ts[j + 1] - ts[i] < hold_s:
                j += 1
            held = ts[j] - ts[i] >= hold_s or j + 1 == e or hold_s <= 0
            if held or (j + 1 < e and labels[j + 1] == truth[s]):
                lag = float(ts[i] - ts[s])
                break
        lags.append(lag)
    return lags


# --------------------------------------------------------------------------- accuracy
def classification_report(y_true, y_pred, classes) -> dict:
    """Accuracy, macro-F1 (over classes present in y_true) and confusion matrix.

    ``classes``: the label order of the confusion matrix (rows truth, cols prediction).
    Predictions outside ``classes`` count as wrong and appear in an ``other`` column.
    """
    classes = list(classes)
    idx = {c: i for i, c in enumerate(classes)}
    k = len(classes)
    cm = np.zeros((k, k + 1), np.int64)
    for t, p in zip(y_true, y_pred):
        cm[idx[t], idx.get(p, k)] += 1
    n = int(cm.sum())
    correct = int(np.trace(cm[:, :k]))
    f1s, per = [], {}
    for i, c in enumerate(classes):
        support = int(cm[i].sum())
        tp = int(cm[i, i])
        pred = int(cm[:, i].sum())
        prec = tp / pred if pred else 0.0
        rec = tp / support if support else 0.0
        f1 = 2 * prec * rec / (prec + rec) if prec + rec > 0 else 0.0
        per[c] = {"support": support, "precision": prec, "recall": rec, "f1": f1}
        if support:
            f1s.append(f1)
    return {
        "n": n, "accuracy": correct / n if n else 0.0,
        "macro_f1": float(np.mean(f1s)) if f1s else 0.0,
        "classes": classes, "confusion": cm[:, :k].tolist(),
        "other_predictions": cm[:, k].tolist(), "per_class": per,
    }


def md_table(rows: list[dict], cols: list[tuple[str, str]]) -> str:
    """A markdown table; ``cols`` = [(key, header)], floats with 3 decimals."""
    def fmt(v):
        if v is None:
            return "-"
        if isinstance(v, float):
            return f"{v:.3f}"
        return str(v)

    out = ["| " + " | ".join(h for _, h in cols) + " |", "|" + "---|" * len(cols)]
    for r in rows:
        out.append("| " + " | ".join(fmt(r.get(k)) for k, _ in cols) + " |")
    return "\n".join(out)
