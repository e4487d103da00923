"""Accuracy, macro-F1 and confusion matrix of emotion models on labelled images.

    python -m benchmarks.accuracy --data PATH [--data PATH ...] [--model ID ...]
    python -m benchmarks.accuracy            # every labelled set obtainable offline
    python -m benchmarks.accuracy --data fer2013-private [--data fer2013-public]   # the canonical FER2013 test

``--data``: a FER2013-style CSV (``emotion,pixels,Usage``: whole 48x48 face
crops, classified as they are), a folder per class (photos: the largest face
is detected first; images with no face are counted and left out), or a named
set: ``emopy`` (CK+ peaks), ``emopy-neutral``, ``emopy-csv``, ``feat-ph``
(see ``testkit/labelled.py``; fetched from PyPI wheels at run time and
never committed), ``fer2013-private`` / ``fer2013-public`` (FER2013's
PrivateTest / PublicTest, 3,589 each, ``testkit/fer2013.py``; skipped with the
reason where the data is not on the machine).  FER2013 images are whole 48x48
faces, resized to the model's input as they are (no margin, the app's
bilinear resize): the usual protocol.  ``--model``: spec ids or spec .json
paths (default: every built-in spec); a model that cannot be loaded (e.g. a
Hub model without network) is reported as unavailable, not replaced.
``--limit N``: N evenly spaced images of each set (quick runs, tests).

Classes a model does not have (e.g. contempt for a 7-class model) are scored
as errors.  Results: ``benchmarks/results/accuracy.json``, or
``accuracy_fer2013.json`` when every set is a FER2013 one.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from testkit.labelled import FER_SETS, NAMED, LargestFace, load_dataset
from .metrics import classification_report

RESULTS = Path(__file__).resolve().parent / "results"


def load_model(name: str):
    """The classifier for a spec id/path, or (None, reason). No silent fallback."""
    from classifier.hub import load_classifier

    try:
        clf, warn = load_classifier(name)
    except Exception as exc:  # noqa: BLE001
        return None, f"{type(exc).__name__}: {exc}"
    want = Path(name).stem if name.endswith(".json") else name
    if warn and clf.spec.id != want:
        return None, f"not available here ({warn})"
    return clf, None


def evaluate(items, clf, detector) -> dict:
    y_true, y_pred, no_face = [], [], []
    for it in items:
        im = it.image()
        if it.is_crop:
            probs = _predict_crop(clf, im)
        else:
            box = detector(im)
            if box is None:
                no_face.append(it.name)
                continue
            probs = clf.predict(im, box[None])[0]
        y_true.append(it.label)
        y_pred.append(clf.classes[int(np.argmax(probs))])
    classes = [c for c in clf.classes] + sorted({t for t in y_true} - set(clf.classes))
    rep = classification_report(y_true, y_pred, classes)
    rep.update({"images": len(items), "no_face": len(no_face), "no_face_names": no_face[:20],
                "true_classes": sorted(set(y_true))})
    return rep


def _predict_crop(clf, im: np.ndarray) -> np.ndarray:
    """Classify an image that IS the face (FER2013): the whole image, no added margin."""
    import copy
    from dataclasses import replace

    c = copy.copy(clf)
    c.spec = replace(clf.spec, crop_margin=0.0, crop_margin_px=0.0)
    h, w = im.shape[:2]
    return c.predict(im, np.array([[0, 0, w, h]], np.float32))[0]


def confusion_md(rep: dict) -> str:
    cls = [c for c, row in zip(rep["classes"], rep["confusion"])]
    rows_used = [i for i, c in enumerate(cls) if sum(rep["confusion"][i]) > 0]
    cols_used = [j for j in range(len(cls)) if any(rep["confusion"][i][j] for i in range(len(cls)))]
    cols_used = sorted(set(cols_used) | set(rows_used))
    out = ["| truth \\ predicted | " + " | ".join(cls[j] for j in cols_used) + " |", "|---|" + "---|" * len(cols_used)]
    for i in rows_used:
        out.append(f"| {cls[i]} | " + " | ".join(str(rep["confusion"][i][j]) for j in cols_used) + " |")
    return "\n".join(out)


def recall_md(rows) -> str:
    """One row per (model, data): recall of each true class present."""
    from classifier.labels import CANONICAL

    present = [c for c in CANONICAL if any(rep["per_class"].get(c, {}).get("support") for _, _, rep in rows)]
    out = ["| model | data | " + " | ".join(present) + " |", "|---|---|" + "---|" * len(present)]
    for m, d, rep in rows:
        cells = []
        for c in present:
            pc = rep["per_class"].get(c)
            cells.append(f"{pc['recall']:.3f}" if pc and pc["support"] else "-")
        out.append(f"| {m} | {d} | " + " | ".join(cells) + " |")
    return "\n".join(out)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", action="append", default=None,
                    help=f"CSV, folder per class or a named set {NAMED} (repeatable; default: all named sets)")
    ap.add_argument("--model", action="append", default=None, help="spec id or .json (repeatable)")
    ap.add_argument("--out", default=None, help="results JSON (default: results/accuracy.json, or "
                    "results/accuracy_fer2013.json when every set is a FER2013 one)")
    ap.add_argument("--limit", type=int, default=0, help="score N evenly spaced images of each set")
    a = ap.parse_args(argv)
    datas = a.data or list(NAMED)
    if a.out is None:
        a.out = str(RESULTS / ("accuracy_fer2013.json" if all(d in FER_SETS for d in datas) else "accuracy.json"))
    from classifier.spec import builtin_specs

    models = a.model or list(builtin_specs())
    t0 = time.time()
    det = LargestFace() if any(d not in FER_SETS for d in datas) else None
    results, rows = [], []
    loaded = {}
    for m in models:
        clf, why = load_model(m)
        loaded[m] = clf
        if clf is None:
            print(f"model {m}: unavailable - {why}")
            results.append({"model": m, "available": False, "reason": why})
    for d in datas:
        if d in FER_SETS:
            from testkit.fer2013 import available

            why = available()
            if why:
                print(f"data {d}: unavailable - {why}")
                results.append({"data": d, "available": False, "reason": why})
                continue
        items = load_dataset(d)
        if a.limit and a.limit < len(items):
            items = [items[i] for i in np.linspace(0, len(items) - 1, a.limit).round().astype(int)]
        for m, clf in loaded.items():
            if clf is None:
                continue
            rep = evaluate(items, clf, det)
            results.append({"model": m, "available": True, "data": d, **rep})
            rows.append((m, d, rep))
    if det is not None:
        det.close()
    print("\n### Accuracy on labelled sets (tiny sets: read as sanity checks, not as model quality)\n")
    print("| model | data | images | no face | scored | classes | accuracy | macro-F1 |\n|---|---|---|---|---|---|---|---|")
    for m, d, rep in rows:
        print(f"| {m} | {d} | {rep['images']} | {rep['no_face']} | {rep['n']} | {', '.join(rep['true_classes'])} | "
              f"{rep['accuracy']:.3f} | {rep['macro_f1']:.3f} |")
    print("\nRecall per class (rows: model on data):\n")
    print(recall_md(rows))
    for m, d, rep in rows:
        print(f"\nConfusion, {m} on {d} (rows truth, columns prediction):\n")
        print(confusion_md(rep))
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    cmd = "python -m benchmarks.accuracy" + "".join(f" --data {d}" for d in (a.data or [])) + \
        "".join(f" --model {m}" for m in (a.model or [])) + (f" --limit {a.limit}" if a.limit else "")
    Path(a.out).write_text(json.dumps({"command": cmd, "results": results, "seconds": time.time() - t0}, indent=1))
    print(f"\nwrote {a.out} ({time.time() - t0:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
