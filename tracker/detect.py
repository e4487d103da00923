"""Face detection with MediaPipe's BlazeFace models.

The models run through LiteRT in the calling thread, decoded as MediaPipe does
(:mod:`tracker.blazeface`: same boxes to a pixel, ~15% less CPU, no hand-off to
MediaPipe's graph threads); a model of another layout, or
``EMOTION_DETECTOR_ENGINE=mediapipe``, goes through MediaPipe's Tasks ``FaceDetector``.

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
import contextlib
import os
import sys
import threading
import weakref
from dataclasses import dataclass, replace
from pathlib import Path

os.environ.setdefault("GLOG_minloglevel", "2")  # MediaPipe/LiteRT are chatty on stderr
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import cv2  # noqa: E402
import numpy as np  # noqa: E402

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


@dataclass(frozen=True)
class DetectionConfig:
    """Face detection settings (validated by ``pipeline.config``)."""

    # "auto": faces at every distance (tracker.autodetect); experts: "short" (faces near a webcam),
    # "full" (farther faces) or a BlazeFace .tflite path, with ``tiles``.
    detector: str = "auto"
    tiles: int | str = "auto"  # short/full only: 0 off, N for an N x N grid, "auto": tiles for frames >= auto_tile_px
    min_score: float = 0.5  # detection threshold (0-1)
    min_face: int = 20  # faces smaller than this many pixels are dropped
    max_side: int = 1920  # the whole-frame pass sees the frame downscaled to this long side (pixels)
    auto_tile_px: int = 1000  # tiles="auto" tiles frames whose long side is at least this (pixels)
    # streams (pipeline.Pipeline): the detector runs on every N-th frame; the frames in between keep the
    # last detected boxes and track IDs, and their faces are classified (and measured) on their own pixels.
    # 1: every frame (files, images); the Live tab uses LIVE_DETECT_EVERY (2: measured, README "Live capacity").
    detect_every: int = 1


@dataclass(frozen=True)
class Detections:
    boxes: np.ndarray  # (N, 4) float32 x1, y1, x2, y2 in frame pixels
    scores: np.ndarray  # (N,) float32
    keypoints: np.ndarray  # (N, 6, 2) float32 pixels: r-eye, l-eye, nose, mouth, r-ear, l-ear

    def __len__(self) -> int:
        return int(self.boxes.shape[0])

    @staticmethod
    def empty() -> "Detections":
        return Detections(np.zeros((0, 4), np.float32), np.zeros((0,), np.float32), np.zeros((0, 6, 2), np.float32))


def _inter(a: np.ndarray, b: np.ndarray) -> float:
    return max(min(a[2], b[2]) - max(a[0], b[0]), 0) * max(min(a[3], b[3]) - max(a[1], b[1]), 0)


def nms(boxes: np.ndarray, scores: np.ndarray, iou_thr: float = 0.3, contain_thr: float = 0.7) -> np.ndarray:
    """Greedy NMS by score, then drop boxes lying mostly inside a larger kept
    box (a tile can cut a face in half: the half-face box lies inside the
    whole one, whatever their scores).  Returns kept indices, by score."""
    areas = np.maximum(boxes[:, 2] - boxes[:, 0], 0) * np.maximum(boxes[:, 3] - boxes[:, 1], 0)
    keep: list[int] = []
    for i in np.argsort(-scores, kind="stable"):
        if all(_inter(boxes[i], boxes[k]) / (areas[i] + areas[k] - _inter(boxes[i], boxes[k]) + 1e-9) <= iou_thr
               for k in keep):
            keep.append(int(i))
    big_first = sorted(keep, key=lambda k: -areas[k])
    final: list[int] = []
    for i in big_first:
        if all(_inter(boxes[i], boxes[k]) / (areas[i] + 1e-9) <= contain_thr for k in final):
            final.append(i)
    return np.asarray([k for k in keep if k in final], dtype=np.int64)


_LIVE: "weakref.WeakSet[FaceDetector]" = weakref.WeakSet()
_QUIET_LOCK = threading.Lock()


@contextlib.contextmanager
def quiet_native_logs():
    """Silence what native libraries write to stderr (file descriptor 2) inside the block, unless
    ``EMOTION_VERBOSE=1``.  MediaPipe/LiteRT print dozens of INFO/WARNING lines on every model load
    that no setting turns off; Python's own messages written meanwhile from other threads are lost
    too, so keep the block short (a model load)."""
    if os.environ.get("EMOTION_VERBOSE", "").strip() in ("1", "true", "yes"):
        yield
        return
    with _QUIET_LOCK:
        sys.stderr.flush()
        saved = os.dup(2)
        try:
            with open(os.devnull, "w") as null:
                os.dup2(null.fileno(), 2)
                try:
                    yield
                finally:
                    os.dup2(saved, 2)
        finally:
            os.close(saved)


def _no_finaliser(self) -> None:
    """Replaces mediapipe's FaceDetector finaliser.  mediapipe 1.2.2 closes a collected detector
    through its dispatcher's thread pool, which the collector may have shut down first: the process
    then waits for ever.  A detector that was never closed leaks its native part instead; every
    detector here is closed explicitly (``close()``, context managers, and at exit)."""


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

    def __init__(self, config: DetectionConfig | str | None = None, **overrides):
        from mediapipe.tasks.python import BaseOptions, vision

        if isinstance(config, (str, os.PathLike)):
            config = DetectionConfig(detector=str(config))
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
        #: MediaPipe's Tasks FaceDetector (another model's layout, or ``EMOTION_DETECTOR_ENGINE=mediapipe``)
        self.engine = "mediapipe"
        if os.environ.get("EMOTION_DETECTOR_ENGINE", "litert").strip().lower() != "mediapipe":
            from .blazeface import BlazeFace

            try:
                with quiet_native_logs():
                    self._bf = BlazeFace(path, threads=int(os.environ.get("EMOTION_LITERT_THREADS", "2")),
                                         min_suppression=0.3)
                self.engine = "litert"
            except ValueError:
                pass  # a model of another layout: MediaPipe's graph decodes it
        if self._bf is not None:
            with quiet_native_logs():
                self._run(np.zeros((64, 64, 3), np.uint8))  # the first call's cost, now
            _LIVE.add(self)
            return
        opts = vision.FaceDetectorOptions(
            base_options=BaseOptions(model_asset_path=str(path)),
            running_mode=vision.RunningMode.IMAGE,
            min_detection_confidence=self._model_min_score(),
            min_suppression_threshold=0.3,
        )
        vision.FaceDetector.__del__ = _no_finaliser
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
        boxes = np.stack([f[0] for f in found]).astype(np.float32)
        boxes[:, [0, 2]] = np.clip(boxes[:, [0, 2]], 0, w)
        boxes[:, [1, 3]] = np.clip(boxes[:, [1, 3]], 0, h)
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

        ``hints`` and ``scan_all`` are for the ``"auto"`` detector's interface; ignored here.
        """
        h, w = rgb.shape[:2]
        found = self.run_window(rgb)
        for x0, y0, x1, y1 in grid_windows(h, w, self._grid(h, w)):
            found += self.run_window(rgb, x0, y0, x1, y1)
        return self.merge(found, h, w)


def grid_windows(h: int, w: int, nx: int, ny: int | None = None, overlap: float = 1.25) -> list[tuple]:
    """An ``nx`` x ``ny`` grid of windows (x0, y0, x1, y1) that overlap by ``overlap`` (none if nx < 2)."""
    ny = nx if ny is None else ny
    if max(nx, ny) < 2:
        return []
    th, tw = min(h, int(np.ceil(h / ny * overlap))), min(w, int(np.ceil(w / nx * overlap)))
    out = []
    for gy in range(ny):
        for gx in range(nx):
            y0 = max(min(int(gy * h / ny - (th - h / ny) / 2), h - th), 0)
            x0 = max(min(int(gx * w / nx - (tw - w / nx) / 2), w - tw), 0)
            out.append((x0, y0, x0 + tw, y0 + th))
    return out


def make_detector(config: DetectionConfig | None = None):
    """The detector ``config`` asks for: an :class:`~tracker.autodetect.AutoDetector` for ``"auto"``,
    else a :class:`FaceDetector`.  Both answer ``detect(rgb, hints=None, scan_all=False)``."""
    config = config or DetectionConfig()
    from .candidates import DETECTORS  # YuNet, CenterFace and the combinations

    if config.detector in DETECTORS:
        return DETECTORS[config.detector](config)
    if config.detector == "auto":
        from .autodetect import AutoDetector

        return AutoDetector(config)
    return FaceDetector(config)
