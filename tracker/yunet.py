"""Face detection with OpenCV's YuNet (``cv2.FaceDetectorYN``): the ``"yunet"`` detector.

YuNet (libfacedetection, Shiqi Yu; the OpenCV Zoo's ``face_detection_yunet_2023mar.onnx``, 232,589
bytes, see ``tracker/models/README.md``) is a small anchor-free CNN trained on WIDER FACE.  It runs
inside our OpenCV build, at any input size, and finds what BlazeFace misses most: faces cut by the
frame's edge, turned heads, faces in shadow or partly covered (``benchmarks/hardfaces.py``).  It costs
more per pixel than BlazeFace (about 8-16 ms for 640x480 here), so the frame is scaled so that its long
side is ``input_px`` before the pass.

Its boxes run from the hairline to the chin and are narrower than BlazeFace's square boxes;
``blazeface_boxes=True`` (the default) re-shapes them into BlazeFace's shape (fitted on real photos
where both find the same faces), so that trackers, crops and benchmarks see one kind of box whichever
detector found a face.  Keypoints: the eyes and nose as YuNet gives them, the mouth the middle of its
two mouth corners, the ears unknown (NaN).
"""
from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from .base import DetectionConfig, Detections
from .geometry import clip_boxes
from .modelfile import check_model

MODEL = Path(__file__).resolve().parent / "models" / "face_detection_yunet_2023mar.onnx"
MODEL_SHA256 = "8f2383e4dd3cfbb4553ea8718107fc0423210dc964f9f4280604804ed2552fa4"
MODEL_BYTES = 232_589

def to_blazeface_box(b: np.ndarray) -> np.ndarray:
    """YuNet boxes (N, 4: x1, y1, x2, y2, hairline to chin) -> BlazeFace-shaped square boxes.

    Fitted on the real photos of ``benchmarks/groundtruth/faces.json`` where both detectors found the
    same face: the side is 1.08 times YuNet's width (27 faces, median),
    the centre at 0.58 of its height."""
    b = np.asarray(b, np.float32).reshape(-1, 4)
    w, h = b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]
    cx = (b[:, 0] + b[:, 2]) / 2
    cy = b[:, 1] + BOX_FIT[1] * h
    side = BOX_FIT[0] * np.maximum(w, 0.75 * h)
    return np.stack([cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2], 1).astype(np.float32)


#: (side / YuNet width, box centre as a share of YuNet's height from its top); see to_blazeface_box.
BOX_FIT = (1.08, 0.58)


@dataclass
class _Pass:
    boxes: np.ndarray
    scores: np.ndarray
    keypoints: np.ndarray


class YuNetDetector:
    """OpenCV's YuNet on RGB uint8 frames; answers ``detect(rgb, hints=None, scan_all=False)``.

    ``input_px``: the frame is scaled so that its long side is this many pixels (never enlarged);
    ``scan_all`` (stills) uses ``still_px`` instead.  Thresholds come from :class:`DetectionConfig`
    (``min_score``, ``min_face``).
    """

    def __init__(self, config: DetectionConfig | None = None, input_px: int = 640, still_px: int = 1280,
                 score: float | None = None, blazeface_boxes: bool = True, model: str | Path | None = None, *,
                 threads: int = 2, engine: str = "litert"):
        """``model``: another YuNet ONNX file (None: the shipped :data:`MODEL`, checked against its pin).
        ``threads``/``engine`` are the factory's common arguments: YuNet runs in OpenCV's DNN module
        (its threads are OpenCV's, set process-wide), whatever they say."""
        self.config = config or DetectionConfig(detector="yunet")
        self.min_score = float(self.config.min_score if score is None else score)
        self.min_face = int(self.config.min_face)
        self.input_px, self.still_px = int(input_px), int(still_px)
        self.blazeface_boxes = bool(blazeface_boxes)
        path = check_model(MODEL, MODEL_SHA256, MODEL_BYTES) if model is None else Path(model)
        # the model's own threshold a bit below ours; NMS 0.3; up to 5000 candidates
        self._det = cv2.FaceDetectorYN.create(str(path), "", (320, 320), max(0.05, self.min_score * 0.8), 0.3, 5000)
        self._lock = threading.Lock()
        self._size = (320, 320)
        self.passes = 0

    def close(self) -> None:
        with self._lock:
            self._det = None

    def run(self, rgb: np.ndarray, long_px: int | None = None, x0: int = 0, y0: int = 0) -> _Pass:
        """One pass over ``rgb`` scaled to ``long_px`` (not enlarged); boxes in ``rgb`` pixels + (x0, y0)."""
        h, w = rgb.shape[:2]
        long_px = long_px or self.input_px
        s = min(1.0, long_px / max(h, w))
        iw, ih = max(1, round(w * s)), max(1, round(h * s))
        img = rgb if s == 1.0 else cv2.resize(rgb, (iw, ih), interpolation=cv2.INTER_AREA)
        bgr = cv2.cvtColor(img, cv2.COLOR_RGB2BGR)
        with self._lock:
            if self._det is None:
                raise RuntimeError("YuNet detector is closed")
            if (iw, ih) != self._size:
                self._det.setInputSize((iw, ih))
                self._size = (iw, ih)
            _, out = self._det.detect(bgr)
        self.passes += 1
        if out is None or not len(out):
            return _Pass(np.zeros((0, 4), np.float32), np.zeros((0,), np.float32), np.zeros((0, 6, 2), np.float32))
        out = out.astype(np.float32)
        boxes = np.stack([out[:, 0], out[:, 1], out[:, 0] + out[:, 2], out[:, 1] + out[:, 3]], 1) / s
        kp = np.full((len(out), 6, 2), np.nan, np.float32)
        pts = out[:, 4:14].reshape(-1, 5, 2) / s  # right eye, left eye, nose, right/left mouth corner
        kp[:, 0], kp[:, 1], kp[:, 2] = pts[:, 0], pts[:, 1], pts[:, 2]
        kp[:, 3] = (pts[:, 3] + pts[:, 4]) / 2
        boxes += (x0, y0, x0, y0)
        kp += (x0, y0)
        return _Pass(boxes.astype(np.float32), out[:, 14].copy(), kp)

    def detect(self, rgb: np.ndarray, hints: np.ndarray | None = None, scan_all: bool = False) -> Detections:
        """Faces in an RGB uint8 frame.  ``hints`` are not needed (one pass sees the whole frame)."""
        self.passes = 0
        p = self.run(rgb, self.still_px if scan_all else self.input_px)
        return self.finish(p, rgb.shape[:2])

    def finish(self, p: _Pass, hw: tuple[int, int]) -> Detections:
        """Threshold, reshape to BlazeFace boxes, clip to the frame, drop faces under ``min_face``."""
        h, w = hw
        keep = p.scores >= self.min_score
        boxes, scores, kps = p.boxes[keep], p.scores[keep], p.keypoints[keep]
        if self.blazeface_boxes and len(boxes):
            boxes = to_blazeface_box(boxes)
        boxes = clip_boxes(boxes, w, h)
        bw, bh = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
        ok = (bw >= max(self.min_face, 2)) & (bh >= max(self.min_face, 2))
        boxes, scores, kps = boxes[ok], scores[ok], kps[ok]
        order = np.argsort(boxes[:, 0], kind="stable")
        return Detections(boxes[order].astype(np.float32), scores[order].astype(np.float32),
                          kps[order].astype(np.float32))
