"""Face detection with MediaPipe's BlazeFace models.

The models run through LiteRT in the calling thread, decoded as MediaPipe does
(:mod:`tracker.blazeface`: same boxes to a pixel, ~15% less CPU, no hand-off to
MediaPipe's graph threads); a model of another layout, or ``engine="mediapipe"``,
goes through MediaPipe's Tasks ``FaceDetector``.

Two BlazeFace models ship in ``tracker/models`` (Apache-2.0, from the
mediapipe 0.10.21 wheel, see ``tracker/models/README.md``):

* ``short``: ``face_detection_short_range.tflite``, faces within ~2 m of a
  webcam; about 1 ms per 640x480 frame here.
* ``full``: ``face_detection_full_range_sparse.tflite``, people farther away
  and group photos; about 2-6 ms per frame.

Small faces in big frames (classrooms, group photos) are lost when the whole
frame is squeezed into the model's 128/192 px input, so ``tiles=N`` also runs
the model on an N x N grid of overlapping tiles and merges everything with
non-maximum suppression.  ``tiles="auto"`` tiles frames whose long side is at
least ``auto_tile_px``, with a grid that grows with the frame (2x2 to 4x4).
"""
from __future__ import annotations

import atexit
import threading
import weakref
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np

from common.native import quiet_native_logs

from .base import DetectionConfig, Detections
from .geometry import clip_boxes, grid_windows, nms

MODEL_DIR = Path(__file__).resolve().parent / "models"
MODELS = {
    "short": MODEL_DIR / "face_detection_short_range.tflite",
    "full": MODEL_DIR / "face_detection_full_range_sparse.tflite",
}
#: The official place to get other MediaPipe face detector models (needs a network).
OFFICIAL_MODEL_URL = (
    "https://storage.googleapis.com/mediapipe-models/face_detector/"
    "blaze_face_short_range/float16/latest/blaze_face_short_range.tflite"
)
#: "litert": the model runs here (tracker.blazeface); "mediapipe": MediaPipe's Tasks FaceDetector.
ENGINES = ("litert", "mediapipe")

_LIVE: "weakref.WeakSet[FaceDetector]" = weakref.WeakSet()


@atexit.register
def _close_all() -> None:
    # MediaPipe's own finaliser fails at interpreter exit; close detectors first.
    for d in list(_LIVE):
        d.close()


class FaceDetector:
    """MediaPipe's BlazeFace face detection on RGB uint8 frames (run by :mod:`tracker.blazeface`, or by
    MediaPipe's own FaceDetector for a model of another layout).

    ``FaceDetector()`` uses :class:`DetectionConfig`'s defaults;
    ``FaceDetector("short", tiles=2)`` or ``FaceDetector(DetectionConfig(...))``
    choose others.
    """

    def __init__(self, config: DetectionConfig | str | None = None, *, threads: int = 2, engine: str = "litert",
                 **overrides):
        """``threads``: the model's interpreter threads (one per core by default; the batch command line
        gives each worker its share).  ``engine``: ``"litert"`` (the model run here) or ``"mediapipe"``
        (MediaPipe's Tasks FaceDetector, the reference the LiteRT decoding is tested against)."""
        if isinstance(config, (str, Path)):
            config = DetectionConfig(detector=str(config))
        if engine not in ENGINES:
            raise ValueError(f"engine must be one of {ENGINES}; got {engine!r}")
        self.config = c = replace(config or DetectionConfig(detector="full"), **overrides)
        path = Path(MODELS.get(str(c.detector), c.detector))
        if not path.is_file():
            raise FileNotFoundError(
                f"face detector model {path} not found; use 'short', 'full' or a .tflite path "
                f"(official models: {OFFICIAL_MODEL_URL})"
            )
        self.model = str(c.detector)
        self.min_score = float(c.min_score)
        self.min_face = int(c.min_face)
        self.tiles = c.tiles
        self.max_side = int(c.max_side)
        self.auto_tile_px = int(c.auto_tile_px)
        self._lock = threading.Lock()
        self._det = self._bf = None
        #: "litert": the model run here (:mod:`tracker.blazeface`, MediaPipe's decoding re-done); "mediapipe":
        #: MediaPipe's Tasks FaceDetector (asked for, or a model of another layout)
        self.engine = "mediapipe"
        if engine == "litert":
            from .blazeface import BlazeFace

            try:
                with quiet_native_logs():
                    self._bf = BlazeFace(path, threads=int(threads), min_suppression=0.3)
                self.engine = "litert"
            except ValueError:
                pass  # a model of another layout: MediaPipe's graph decodes it
        if self._bf is not None:
            with quiet_native_logs():
                self._run(np.zeros((64, 64, 3), np.uint8))  # the first call's cost, now
            _LIVE.add(self)
            return
        from mediapipe.tasks.python import BaseOptions, vision

        from common.compat import mediapipe_detector_without_finaliser

        mediapipe_detector_without_finaliser()
        opts = vision.FaceDetectorOptions(
            base_options=BaseOptions(model_asset_path=str(path)),
            running_mode=vision.RunningMode.IMAGE,
            min_detection_confidence=self._model_min_score(),
            min_suppression_threshold=0.3,
        )
        with quiet_native_logs():  # LiteRT prints ~55 lines on every load and first call
            self._det = vision.FaceDetector.create_from_options(opts)
            self._run(np.zeros((64, 64, 3), np.uint8))  # the first call's notices, and its cost, now
        _LIVE.add(self)

    def _model_min_score(self) -> float:
        """Our own threshold is applied after merging tiles; ask the model for a bit more."""
        return max(0.05, min(self.min_score, 0.99) * 0.8)

    def close(self) -> None:
        lock = getattr(self, "_lock", None)
        if lock is None:
            return
        with lock:
            det, self._det = self._det, None
            self._bf = None
        if det is not None:
            with quiet_native_logs():
                det.close()


    def _run(self, rgb: np.ndarray, ox: float = 0.0, oy: float = 0.0, scale: float = 1.0):
        bf = self._bf
        if bf is not None:
            out = []
            offset = np.array([ox, oy, ox, oy], np.float32)
            for box, score, kp in bf.run(rgb, self._model_min_score()):
                # whole pixels, as MediaPipe reports them: the corner truncated, then width and height
                x1, y1 = np.trunc(box[0]), np.trunc(box[1])
                x2, y2 = x1 + np.trunc(box[2] - box[0]), y1 + np.trunc(box[3] - box[1])
                out.append((np.array([x1, y1, x2, y2], np.float32) * scale + offset, score,
                            (kp * scale + (ox, oy)).astype(np.float32)))
            return out
        import mediapipe as mp

        h, w = rgb.shape[:2]
        img = mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(rgb))
        with self._lock:
            if self._det is None:
                raise RuntimeError("face detector is closed")
            res = self._det.detect(img)
        out = []
        for d in res.detections:
            bb = d.bounding_box
            x1, y1 = bb.origin_x, bb.origin_y
            box = np.array([x1, y1, x1 + bb.width, y1 + bb.height], np.float32) * scale
            box += (ox, oy, ox, oy)
            kp = np.zeros((6, 2), np.float32)
            for j, p in enumerate(d.keypoints[:6]):
                kp[j] = (p.x * w * scale + ox, p.y * h * scale + oy)
            out.append((box, float(d.categories[0].score), kp))
        return out

    def _grid(self, h: int, w: int) -> int:
        if self.tiles == "auto":
            side = max(h, w)
            # about one tile per 800 px of the long side, 2x2 to 4x4
            return 0 if side < self.auto_tile_px else int(min(4, max(2, np.ceil(side / 800))))
        return int(self.tiles or 0)

    def run_window(self, rgb: np.ndarray, x0: int = 0, y0: int = 0, x1: int | None = None,
                   y1: int | None = None) -> list:
        """Raw detections (box, score, keypoints) in the window [x0:x1, y0:y1], in frame pixels.

        The window is downscaled to ``max_side`` first when larger.
        """
        win = rgb[y0:y1, x0:x1]
        scale = 1.0
        if max(win.shape[:2]) > self.max_side:
            scale = max(win.shape[:2]) / self.max_side
            win = cv2.resize(win, (max(1, round(win.shape[1] / scale)), max(1, round(win.shape[0] / scale))),
                             interpolation=cv2.INTER_AREA)
        return self._run(win, ox=x0, oy=y0, scale=scale)

    def merge(self, found: list, h: int, w: int) -> Detections:
        """Raw detections of one frame's passes -> thresholded, clipped, size-filtered, NMS-merged."""
        found = [f for f in found if f[1] >= self.min_score]
        if not found:
            return Detections.empty()
        boxes = clip_boxes(np.stack([f[0] for f in found]), w, h)
        scores = np.array([f[1] for f in found], np.float32)
        kps = np.stack([f[2] for f in found]).astype(np.float32)
        bw, bh = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
        ok = (bw >= max(self.min_face, 2)) & (bh >= max(self.min_face, 2))
        boxes, scores, kps = boxes[ok], scores[ok], kps[ok]
        if len(boxes) > 1:
            keep = nms(boxes, scores)
            boxes, scores, kps = boxes[keep], scores[keep], kps[keep]
        # Stable order: left to right, so image-mode face numbers read naturally.
        order = np.argsort(boxes[:, 0], kind="stable")
        return Detections(boxes[order], scores[order], kps[order])

    def detect(self, rgb: np.ndarray, hints: np.ndarray | None = None, scan_all: bool = False) -> Detections:
        """Detect faces in an RGB uint8 frame (use ``pipeline.frames.to_rgb_uint8`` first).

        One stateless pass over the frame (and its tiles): the :class:`~tracker.base.Detector`
        protocol's advice (``hints``, ``scan_all``) has nothing to change here.
        """
        h, w = rgb.shape[:2]
        found = self.run_window(rgb)
        for x0, y0, x1, y1 in grid_windows(h, w, self._grid(h, w)):
            found += self.run_window(rgb, x0, y0, x1, y1)
        return self.merge(found, h, w)
