"""A slow camera pan across a real photo, as frames: what a phone filming a group gives."""
from __future__ import annotations

import cv2
import numpy as np


def pan(img: np.ndarray, seconds: float = 12.0, fps: float = 10.0, size=(640, 480), share: float = 0.75):
    """Frames of a ``size`` window (``share`` of the photo's width, the frame's aspect ratio) moving from
    the photo's left edge to its right and back, over ``seconds``.  Yields (frame RGB, time s)."""
    h, w = img.shape[:2]
    W, H = size
    cw = min(w * share, h * W / H)
    ch = cw * H / W
    n = max(int(round(seconds * fps)), 2)
    for k in range(n):
        u = 1 - abs(2 * k / (n - 1) - 1)  # 0 -> 1 -> 0
        x0, y0 = u * (w - cw), (h - ch) / 2
        m = np.array([[W / cw, 0, -x0 * W / cw], [0, H / ch, -y0 * H / ch]])
        yield cv2.warpAffine(img, m, (W, H), flags=cv2.INTER_AREA if cw > W else cv2.INTER_LINEAR,
                             borderMode=cv2.BORDER_REPLICATE), k / fps
