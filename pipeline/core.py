"""The per-stream pipeline: detect -> track -> classify -> smooth.

One :class:`Pipeline` per stream (browser connection, video file).  Tracking
and smoothing state live in the pipeline and nowhere else, so two pipelines
never share IDs or history.  Model weights are shared (read-only) through the
classifier cache.
"""
from __future__ import annotations

import threading
import time
from dataclasses import asdict, dataclass, replace

import numpy as np

from classifier.hub import load_classifier
from classifier.smoothing import ProbabilitySmoother
from tracker.detect import FaceDetector
from tracker.track import FaceTracker, TrackerConfig

from .frames import to_rgb_uint8
from .results import FrameResult


@dataclass(frozen=True)
class PipelineConfig:
    model: str = "fer-mini-xception"  # spec id or spec .json path
    detector: str = "short"  # "short" (webcam) or "full" (farther faces, groups)
    tiles: int | str = 0  # 0 off, N for an N x N grid, "auto" for big frames
    min_score: float = 0.5  # detection threshold
    min_face: int = 20  # smallest face side in pixels
    # Defaults chosen from benchmarks/smoothing.py and benchmarks/tracking.py (see README).
    half_life_s: float = 0.1  # probability smoothing half-life in seconds (0 = off)
    margin: float = 0.2  # label hysteresis: a new label must lead the shown one by this
    max_hidden_s: float = 3.0  # keep a hidden face's ID this long (seconds)
    n_init: int = 2  # frames before a new face gets an ID
    max_iou_distance: float = 0.9  # DeepSORT IoU gate (1 - IoU) for the fallback matching
    reid_distance: float = 0.4  # appearance distance to give a hidden face its old ID back (0 = off)
    embedder: str = "colorhist"  # appearance embedding for DeepSORT
    max_faces: int = 64  # classify at most this many faces per frame (largest first)

    def to_dict(self) -> dict:
        return asdict(self)


def _cap_faces(res: FrameResult, max_faces: int) -> tuple[FrameResult, str | None]:
    """Keep the ``max_faces`` largest faces (in frame order); say so if any were dropped."""
    if len(res) <= max_faces:
        return res, None
    area = (res.boxes[:, 2] - res.boxes[:, 0]) * (res.boxes[:, 3] - res.boxes[:, 1])
    kept = res.subset(np.sort(np.argsort(-area)[:max_faces]))
    return kept, f"more than {max_faces} faces; the largest {max_faces} are analysed"


class Pipeline:
    def __init__(self, config: PipelineConfig | None = None, **overrides):
        self.config = replace(config or PipelineConfig(), **overrides)
        self._lock = threading.Lock()
        self._pending: dict = {}
        self.warnings: list[str] = []
        self.frame_index = 0
        self._last_t: float | None = None
        self._t0 = time.monotonic()
        self._build(self.config, None)

    # -- configuration -------------------------------------------------
    def _build(self, new: PipelineConfig, old: PipelineConfig | None) -> None:
        if old is None or (new.detector, new.min_score, new.min_face, new.tiles) != (
            old.detector, old.min_score, old.min_face, old.tiles
        ):
            det = FaceDetector(new.detector, min_score=new.min_score, min_face=new.min_face, tiles=new.tiles)
            if old is not None:
                self.detector.close()
            self.detector = det
        if old is None or new.model != old.model:
            clf, warn = load_classifier(new.model)
            if warn:
                self.warnings.append(warn)
            old_classes = getattr(self, "classifier", None) and self.classifier.classes
            self.classifier = clf
            if old is not None and old_classes != clf.classes:
                self.smoother.reset()
        tc = TrackerConfig(max_hidden_s=new.max_hidden_s, n_init=new.n_init, embedder=new.embedder,
                           max_iou_distance=new.max_iou_distance, reid_distance=new.reid_distance)
        if old is None or (new.n_init, new.embedder, new.max_iou_distance) != (
            old.n_init, old.embedder, old.max_iou_distance
        ):
            self.tracker = FaceTracker(tc)  # a different tracker setup starts fresh
            if old is not None:
                self.smoother.reset()
        else:
            self.tracker.config.max_hidden_s = new.max_hidden_s
            self.tracker.config.reid_distance = new.reid_distance
        if old is None:
            self.smoother = ProbabilitySmoother(new.half_life_s, new.margin)
        else:
            self.smoother.half_life_s = new.half_life_s
            self.smoother.margin = new.margin
        self.config = new

    def update_config(self, **changes) -> None:
        """Change settings without losing the stream; applied before the next frame."""
        unknown = set(changes) - set(PipelineConfig.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown pipeline settings: {sorted(unknown)}")
        with self._lock:
            self._pending.update(changes)

    def _apply_pending(self) -> None:
        with self._lock:
            changes, self._pending = self._pending, {}
        if changes:
            new = replace(self.config, **changes)
            if new != self.config:
                self._build(new, self.config)

    @property
    def classes(self) -> tuple[str, ...]:
        return self.classifier.classes

    @property
    def model_id(self) -> str:
        return self.classifier.spec.id

    # -- processing ----------------------------------------------------
    def process(self, frame, timestamp_s: float | None = None) -> FrameResult:
        """Run one frame (RGB; grey/RGBA/16-bit are converted) taken at ``timestamp_s``.

        Timestamps are seconds on any clock that increases; None uses the
        wall clock.  Raises :class:`pipeline.frames.InvalidFrame` for input
        that is not an image; the pipeline stays usable.
        """
        t_start = time.perf_counter()
        rgb = to_rgb_uint8(frame)
        self._apply_pending()
        t = time.monotonic() - self._t0 if timestamp_s is None else float(timestamp_s)
        if self._last_t is not None and t <= self._last_t:
            t = self._last_t + 1e-3  # keep time increasing (repeated or reordered stamps)
        self._last_t = t
        h, w = rgb.shape[:2]
        res = FrameResult(index=self.frame_index, timestamp=t, width=w, height=h,
                          classes=self.classes, model_id=self.model_id)
        self.frame_index += 1
        timings = res.timings_ms

        t0 = time.perf_counter()
        det = self.detector.detect(rgb)
        res.boxes, res.scores, res.keypoints = det.boxes, det.scores, det.keypoints
        res, capped = _cap_faces(res, self.config.max_faces)
        if capped:
            res.warnings = (capped,)
        t1 = time.perf_counter()
        timings["detect"] = (t1 - t0) * 1000

        res = self.tracker.update(rgb, res)
        t2 = time.perf_counter()
        timings["track"] = (t2 - t1) * 1000

        res.raw = self.classifier.predict(rgb, res.boxes)
        t3 = time.perf_counter()
        timings["classify"] = (t3 - t2) * 1000

        self.smoother.drop(res.ended_tracks)
        res.smoothed, res.labels = self.smoother.update_many(res.track_ids, res.raw, t)
        t4 = time.perf_counter()
        timings["smooth"] = (t4 - t3) * 1000
        timings["total"] = (t4 - t_start) * 1000
        return res

    def reset(self) -> None:
        """Forget all tracks and history (IDs restart at 1)."""
        self.tracker.reset()
        self.smoother.reset()
        self.frame_index = 0
        self._last_t = None

    def close(self) -> None:
        self.detector.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def analyze_image(frame, config: PipelineConfig | None = None, detector: FaceDetector | None = None) -> FrameResult:
    """Analyse one still image: every face, numbered 1..N left to right, no tracking or smoothing.

    Defaults suit photos: the full-range detector with automatic tiling, so
    small faces in group photos are found.
    """
    cfg = config or PipelineConfig(detector="full", tiles="auto")
    t_start = time.perf_counter()
    rgb = to_rgb_uint8(frame)
    own = detector is None
    det_model = detector or FaceDetector(cfg.detector, min_score=cfg.min_score, min_face=cfg.min_face, tiles=cfg.tiles)
    try:
        clf, warn = load_classifier(cfg.model)
        h, w = rgb.shape[:2]
        res = FrameResult(index=0, timestamp=0.0, width=w, height=h, classes=clf.classes, model_id=clf.spec.id)
        t0 = time.perf_counter()
        d = det_model.detect(rgb)
        res.boxes, res.scores, res.keypoints = d.boxes, d.scores, d.keypoints
        res, capped = _cap_faces(res, cfg.max_faces)
        warnings = [w for w in (warn, capped) if w]
        t1 = time.perf_counter()
        res.track_ids = np.arange(1, len(res) + 1, dtype=np.int64)
        res.raw = clf.predict(rgb, res.boxes)
        res.smoothed = res.raw.copy()
        res.labels = np.argmax(res.raw, axis=1) if len(res) else np.zeros((0,), np.int64)
        t2 = time.perf_counter()
        res.timings_ms.update(detect=(t1 - t0) * 1000, classify=(t2 - t1) * 1000, total=(t2 - t_start) * 1000)
        res.warnings = tuple(warnings)
        return res
    finally:
        if own:
            det_model.close()
