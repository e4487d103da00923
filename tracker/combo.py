"""Detectors made of two: a primary detector and a second opinion that adds the faces it missed.

* :class:`SecondOpinion` runs ``primary`` on every frame and ``second`` on every ``every``-th frame
  (and on every still); a face of the second that overlaps none of the primary's is added.  The
  primary keeps its boxes, keypoints and scores wherever both found a face, so a stream's boxes stay
  of one kind.  ``"auto+yunet"`` is BlazeFace's automatic detector with YuNet as the second opinion
  (``benchmarks/hardfaces.py`` measures it beside the others).
* :class:`PaddedShort` is BlazeFace's short-range model over the whole frame, padded with grey on
  every side first, so a large face cut by the frame's edge is seen with room around it;
  ``"auto+short"`` adds it to the automatic detector.
* :class:`Fused` runs every one of its detectors on every frame and keeps the union of their faces,
  one box per face (NMS by score); ``"yunet+centerface"`` is YuNet and CenterFace, each with a score
  floor that keeps its false detections rare.
"""
from __future__ import annotations

from dataclasses import replace

import cv2
import numpy as np

from .base import DetectionConfig, Detections
from .detect import FaceDetector
from .geometry import PAD_GREY, areas, intersection_matrix, iou_matrix, nms


def _overlaps(b: np.ndarray, others: np.ndarray, iou_thr: float = 0.3, contain_thr: float = 0.6) -> bool:
    """True when ``b`` overlaps a box of ``others`` (IoU, or one lying mostly inside the other)."""
    if not len(others):
        return False
    inter = intersection_matrix(b, others)[0]
    smaller = np.maximum(np.minimum(areas(b[None])[0], areas(others)), 1e-9)
    return bool(np.any(iou_matrix(b, others)[0] > iou_thr) or np.any(inter / smaller > contain_thr))


def add_missing(first: Detections, second: Detections) -> Detections:
    """``first`` plus the faces of ``second`` that overlap none of ``first``'s (nor each other), by x."""
    extra = []
    kept = first.boxes
    for i in np.argsort(-second.scores, kind="stable"):
        if not _overlaps(second.boxes[i], kept):
            extra.append(int(i))
            kept = np.concatenate([kept, second.boxes[i:i + 1]])
    if not extra:
        return first
    boxes = np.concatenate([first.boxes, second.boxes[extra]])
    scores = np.concatenate([first.scores, second.scores[extra]])
    kps = np.concatenate([first.keypoints, second.keypoints[extra]])
    order = np.argsort(boxes[:, 0], kind="stable")
    return Detections(boxes[order].astype(np.float32), scores[order].astype(np.float32),
                      kps[order].astype(np.float32))


class SecondOpinion:
    """``primary`` on every frame, ``second`` on every ``every``-th frame and every still."""

    def __init__(self, primary, second, every: int = 1):
        self.primary, self.second, self.every = primary, second, max(1, int(every))
        self._n = 0
        self.config = getattr(primary, "config", None)

    @property
    def passes(self) -> int:
        return getattr(self.primary, "passes", 0) + getattr(self.second, "passes", 0)

    def close(self) -> None:
        self.primary.close()
        self.second.close()

    def detect(self, rgb: np.ndarray, hints: np.ndarray | None = None, scan_all: bool = False) -> Detections:
        first = self.primary.detect(rgb, hints=hints, scan_all=scan_all)
        run = scan_all or self._n % self.every == 0
        self._n += 1
        if hasattr(self.second, "passes"):
            self.second.passes = 0
        if not run:
            return first
        return add_missing(first, self.second.detect(rgb, scan_all=scan_all))


class PaddedShort:
    """BlazeFace short range over the whole frame padded with grey by ``pad`` of its long side."""

    def __init__(self, config: DetectionConfig | None = None, pad: float = 0.25, *, threads: int = 2,
                 engine: str = "litert"):
        self.config = config or DetectionConfig()
        self.det = FaceDetector(replace(self.config, detector="short", tiles=0), threads=threads, engine=engine)
        self.pad = float(pad)
        self.passes = 0

    def close(self) -> None:
        self.det.close()

    def detect(self, rgb: np.ndarray, hints=None, scan_all: bool = False) -> Detections:
        h, w = rgb.shape[:2]
        p = int(round(self.pad * max(h, w)))
        padded = cv2.copyMakeBorder(rgb, p, p, p, p, cv2.BORDER_CONSTANT, value=(PAD_GREY,) * 3)
        found = self.det.run_window(padded)
        self.passes = 1
        out = [(b - (p, p, p, p), s, k - (p, p)) for b, s, k in found]
        return self.det.merge(out, h, w)


class Fused:
    """Every detector of ``parts`` on every frame; the union of their faces, overlaps merged by NMS.

    Each part thresholds its own scores (they are not on one scale); where two find the same face
    (IoU above ``iou``, or one box mostly inside the other) the higher-scoring box is kept.
    """

    def __init__(self, *parts, iou: float = 0.3):
        self.parts, self.iou = parts, float(iou)
        self.config = getattr(parts[0], "config", None)
        self.passes = 0

    def close(self) -> None:
        for p in self.parts:
            p.close()

    def detect(self, rgb: np.ndarray, hints: np.ndarray | None = None, scan_all: bool = False) -> Detections:
        found = [p.detect(rgb, hints=hints, scan_all=scan_all) for p in self.parts]
        self.passes = sum(getattr(p, "passes", 1) for p in self.parts)
        boxes = np.concatenate([d.boxes for d in found]).astype(np.float32)
        scores = np.concatenate([d.scores for d in found]).astype(np.float32)
        kps = np.concatenate([d.keypoints for d in found]).astype(np.float32)
        if not len(boxes):
            return found[0]
        keep = np.asarray(nms(boxes, scores, iou_thr=self.iou), np.int64)
        keep = keep[np.argsort(boxes[keep, 0], kind="stable")]
        return Detections(boxes[keep], scores[keep], kps[keep])
