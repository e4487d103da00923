"""MediaPipe's BlazeFace models run directly through LiteRT, decoded as MediaPipe's face detector does.

MediaPipe's Tasks ``FaceDetector`` runs the model inside a calculator graph: every call hands the
frame to the graph's threads and waits for the result, and its Python wrapper builds objects for
every detection.  This module runs the same ``.tflite`` file with ``ai-edge-litert``'s interpreter
in the calling thread and re-does MediaPipe's steps with numpy:

1. the frame scaled into the model's square input keeping its aspect ratio, centred, the border
   zero (``ImageToTensorCalculator``: ``keep_aspect_ratio``, ``BORDER_ZERO``), values in [-1, 1];
2. SSD anchors (``SsdAnchorsCalculator``: fixed size, offset 0.5; the short-range model's 4 layers
   with strides 8, 16, 16, 16 and 2 anchors a cell on the first, 6 on the merged others: 896; the
   full-range model's single layer of stride 4: 48 x 48 = 2304);
3. boxes and 6 keypoints decoded against the anchors with the model's input size as scale, score =
   sigmoid of the logit clipped to +-100 (``TensorsToDetectionsCalculator``);
4. weighted non-maximum suppression, IoU > ``min_suppression`` (``NonMaxSuppressionCalculator``,
   ``WEIGHTED``): each group of overlapping boxes becomes their score-weighted mean, with the
   group's best score;
5. back to frame pixels (``DetectionProjectionCalculator``).

Same boxes as MediaPipe's to a pixel, scores to ~0.01 (its resampling differs slightly), measured
on real photos (``tests/test_detect.py``); about 15% less CPU per pass and no thread hand-offs
(live: ~10% more frames at 4 streams, README "Live capacity").  Only the two model files of
``tracker/models`` are known here; another model goes through MediaPipe (``tracker.detect``).
"""
from __future__ import annotations

import threading
from pathlib import Path

import cv2
import numpy as np

from .geometry import weighted_nms

#: (input size, [(stride, anchors per cell), ...]) of the known models, by their output box count.
LAYOUTS = {
    896: (128, [(8, 2), (16, 6)]),  # face_detection_short_range.tflite
    2304: (192, [(4, 1)]),  # face_detection_full_range_sparse.tflite
}


def anchors(size: int, layers: list[tuple[int, int]]) -> np.ndarray:
    """(N, 2) anchor centres in [0, 1], in the model's output order (layer, row, column, anchor)."""
    out = []
    for stride, per_cell in layers:
        g = int(np.ceil(size / stride))
        ys, xs = np.mgrid[0:g, 0:g]
        centres = np.stack([(xs.ravel() + 0.5) / g, (ys.ravel() + 0.5) / g], 1)
        out.append(np.repeat(centres, per_cell, axis=0))
    return np.concatenate(out).astype(np.float32)


class BlazeFace:
    """One BlazeFace model on RGB uint8 images: :meth:`run` -> [(box xyxy, score, (6, 2) keypoints)], frame pixels.

    Thread-safe (one call at a time).  Raises ``ValueError`` for a model whose outputs are not one of
    :data:`LAYOUTS` (the caller then uses MediaPipe).
    """

    def __init__(self, path: str | Path, threads: int = 2, min_suppression: float = 0.3):
        from ai_edge_litert.interpreter import Interpreter

        self._it = Interpreter(model_path=str(path), num_threads=int(threads))
        self._it.allocate_tensors()
        inp = self._it.get_input_details()[0]
        outs = self._it.get_output_details()
        by_width = {int(o["shape"][-1]): o for o in outs}
        if len(outs) != 2 or 16 not in by_width or 1 not in by_width:
            raise ValueError(f"{Path(path).name}: not a BlazeFace model (outputs {[list(o['shape']) for o in outs]})")
        n = int(by_width[16]["shape"][1])
        if n not in LAYOUTS or tuple(inp["shape"][1:3]) != (LAYOUTS[n][0],) * 2:
            raise ValueError(f"{Path(path).name}: unknown BlazeFace layout ({n} boxes, input {list(inp['shape'])})")
        self.size, layers = LAYOUTS[n]
        self._anchors = anchors(self.size, layers)
        self._in, self._box, self._score = inp["index"], by_width[16]["index"], by_width[1]["index"]
        self.min_suppression = float(min_suppression)
        self._lock = threading.Lock()

    def run(self, rgb: np.ndarray, min_score: float) -> list[tuple[np.ndarray, float, np.ndarray]]:
        h, w = rgb.shape[:2]
        s = self.size
        k = s / max(h, w)
        ox, oy = (s - w * k) / 2, (s - h * k) / 2
        m = np.array([[k, 0, ox], [0, k, oy]], np.float32)
        x = cv2.warpAffine(np.ascontiguousarray(rgb), m, (s, s), flags=cv2.INTER_LINEAR,
                           borderMode=cv2.BORDER_CONSTANT).astype(np.float32)
        x = x * np.float32(2 / 255) - np.float32(1)
        with self._lock:
            self._it.set_tensor(self._in, x[None])
            self._it.invoke()
            raw = self._it.get_tensor(self._box)[0].copy()
            logit = self._it.get_tensor(self._score)[0, :, 0].copy()
        p = min(max(float(min_score), 1e-6), 1 - 1e-6)
        keep = np.flatnonzero(logit >= np.log(p / (1 - p)))  # sigmoid(logit) >= min_score
        if not len(keep):
            return []
        scores = 1.0 / (1.0 + np.exp(-np.clip(logit[keep], -100, 100)))
        r, a = raw[keep] / s, self._anchors[keep]
        cx, cy = r[:, 0] + a[:, 0], r[:, 1] + a[:, 1]
        boxes = np.stack([cx - r[:, 2] / 2, cy - r[:, 3] / 2, cx + r[:, 2] / 2, cy + r[:, 3] / 2], 1)
        kps = r[:, 4:16].reshape(-1, 6, 2) + a[:, None, :]
        boxes, scores, kps = weighted_nms(boxes, scores, kps, self.min_suppression)
        # model input [0, 1] -> frame pixels
        boxes = (boxes * s - (ox, oy, ox, oy)) / k
        kps = (kps * s - (ox, oy)) / k
        return [(boxes[i], float(scores[i]), kps[i]) for i in range(len(scores))]
