"""Draw a :class:`FrameResult` onto its frame: what the live view, the image
tab and the annotated video all show.

Per face: a box in a colour stable per track ID, ``#ID label NN%`` above it,
and a compact bar chart of the full (smoothed) distribution beside it.
"""
from __future__ import annotations

import colorsys

import cv2
import numpy as np

from .results import FrameResult

SHORT = {"neutral": "neu", "happiness": "hap", "surprise": "sur", "sadness": "sad",
         "anger": "ang", "disgust": "dis", "fear": "fea", "contempt": "con"}


def track_color(track_id: int) -> tuple[int, int, int]:
    """A bright RGB colour, the same for the same ID in every frame and stream."""
    h = (int(track_id) * 0.61803398875) % 1.0
    r, g, b = colorsys.hsv_to_rgb(h, 0.75, 1.0)
    return int(r * 255), int(g * 255), int(b * 255)


def _text(img, txt, org, scale, color, thick):
    cv2.putText(img, txt, org, cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), thick + 2, cv2.LINE_AA)
    cv2.putText(img, txt, org, cv2.FONT_HERSHEY_SIMPLEX, scale, color, thick, cv2.LINE_AA)


def draw(frame_rgb: np.ndarray, result: FrameResult, bars: bool = True, copy: bool = True,
         status: str | None = None) -> np.ndarray:
    """Return the frame with the result drawn on it (RGB uint8)."""
    img = frame_rgb.copy() if copy else frame_rgb
    h, w = img.shape[:2]
    base = max(min(h, w) / 720.0, 0.35)
    scale = 0.55 * base
    thick = max(1, int(round(1.5 * base)))
    for f in result:
        x1, y1, x2, y2 = [int(round(v)) for v in f.box]
        col = track_color(f.track_id)
        if f.predicted:  # not detected in this frame: dimmed, thin box, no chart
            col = tuple(c // 2 for c in col)
        cv2.rectangle(img, (x1, y1), (x2, y2), col, 1 if f.predicted else max(2, thick + 1))
        label = f"#{f.track_id} {f.label} {f.label_prob * 100:.0f}%"
        (tw, th), _ = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, scale, thick)
        ty = y1 - 6 if y1 - th - 8 > 0 else y2 + th + 6
        cv2.rectangle(img, (x1, ty - th - 4), (x1 + tw + 6, ty + 4), (0, 0, 0), -1)
        _text(img, label, (x1 + 3, ty), scale, col, thick)
        if bars and f.smoothed and not f.predicted:
            _bars(img, f.smoothed, f.label, (x1, y1, x2, y2), col, base)
    if status:
        _text(img, status, (8, int(22 * base) + 8), scale, (255, 255, 255), thick)
    return img


def _bars(img, probs: dict, label: str, box, col, base: float) -> None:
    """A column per class under the face box, as wide as the box."""
    h, w = img.shape[:2]
    x1, y1, x2, y2 = box
    n = len(probs)
    bw = max(x2 - x1, n * 10)
    colw = bw / n
    ch = max(14, int(round(0.35 * (y2 - y1))))
    txt_h = max(8, int(round(10 * base)))
    top = y2 + 3
    if top + ch + txt_h > h:
        top = max(0, y1 - ch - txt_h - int(28 * base))
    x0 = min(max(0, x1), max(0, w - bw))
    if top + ch + txt_h > h or x0 + bw > w:
        return  # frame too small for the chart
    roi = img[top:top + ch + txt_h, x0:x0 + bw]
    roi[:] = (roi.astype(np.uint16) * 2 // 5).astype(np.uint8)  # darken behind the chart
    fs = max(0.25, 0.3 * base)
    for i, (name, p) in enumerate(probs.items()):
        cx1 = int(round(x0 + i * colw + 1))
        cx2 = int(round(x0 + (i + 1) * colw - 2))
        c = col if name == label else (210, 210, 210)
        bh = int(round((ch - 2) * float(p)))
        if bh > 0:
            cv2.rectangle(img, (cx1, top + ch - bh), (cx2, top + ch - 1), c, -1)
        if colw >= 12:
            cv2.putText(img, SHORT.get(name, name[:3])[:2], (cx1, top + ch + txt_h - 1), cv2.FONT_HERSHEY_SIMPLEX,
                        fs, (235, 235, 235), 1, cv2.LINE_AA)
