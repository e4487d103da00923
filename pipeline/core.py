"""The per-stream pipeline: detect -> track -> classify -> smooth -> landmarks and face states.

One :class:`Pipeline` per stream (browser connection, video file).  Tracking
and smoothing state live in the pipeline and nowhere else, so two pipelines
never share IDs or history.  Model weights are shared (read-only) through the
classifier cache and the face-mesh cache.
"""
from __future__ import annotations

import threading
import time
from dataclasses import replace

import numpy as np

from classifier.hub import DEFAULT_CACHE, ClassifierCache
from classifier.onnx_model import eye_angles
from classifier.smoothing import ProbabilitySmoother
from tracker.base import Detector
from tracker.facemesh import DEFAULT_MESHES, FaceMeshCache
from tracker.factory import make_detector
from tracker.track import FaceTracker

from .config import PipelineConfig, preset
from .frames import to_rgb_uint8
from .landmarks import LandmarkStage, still_face_columns
from .results import FrameResult
from .stages import ClassifyStage, DetectStage, SmoothStage, Stage, TrackStage, cap_faces

#: Tracking settings a running tracker takes over without starting afresh.
_LIVE_TRACKING = ("max_hidden_s", "reid_distance", "reid_radius", "hold_s")


def _config(config: PipelineConfig | str | None, overrides: dict) -> PipelineConfig:
    base = preset(config) if config is None or isinstance(config, str) else config
    return base.replace(**overrides)


class Pipeline:
    """detect -> track -> classify -> smooth -> landmarks, one per stream.

    ``Pipeline()`` uses the default preset; ``Pipeline("steady")``,
    ``Pipeline(config)`` or ``Pipeline(half_life_s=0.3)`` choose others
    (see :mod:`pipeline.config`).  ``threads``: each model's threads (2: one per
    core; the batch command line gives each worker its share).  ``models``: the
    :class:`~classifier.hub.ClassifierCache` the classifier comes from (a server's own; None:
    the process's default); ``meshes``: the :class:`~tracker.facemesh.FaceMeshCache` the landmark
    stage's model comes from (likewise).
    """

    def __init__(self, config: PipelineConfig | str | None = None, *, threads: int = 2,
                 models: ClassifierCache | None = None, meshes: FaceMeshCache | None = None, **overrides):
        self.config = _config(config, overrides)
        self.threads = int(threads)
        self.models = models if models is not None else DEFAULT_CACHE
        self.meshes = meshes if meshes is not None else DEFAULT_MESHES
        self._lock = threading.Lock()
        self._pending: PipelineConfig | None = None
        self.warnings: list[str] = []
        self.frame_index = 0
        self._last_t: float | None = None
        self._size: tuple[int, int] | None = None  # (width, height) of the last frame
        self._t0 = time.monotonic()
        self._tracks_reset = False
        self._since_detect = 0  # frames since the detector last ran
        self._build(self.config, None)

    # -- configuration -------------------------------------------------
    def _build(self, new: PipelineConfig, old: PipelineConfig | None) -> None:
        if old is None or replace(new.detection, detect_every=1) != replace(old.detection, detect_every=1):
            det = make_detector(new.detection, threads=self.threads)
            if old is not None:
                self.detector.close()
            self.detector = det
        if old is None or new.classification.model != old.classification.model:
            clf, warn = self.models.load(new.classification.model, threads=self.threads)
            if warn:
                self.warnings.append(warn)
            old_classes = getattr(self, "classifier", None) and self.classifier.classes
            self.classifier = clf
            if old is not None and old_classes != clf.classes:
                self.smoother.reset()
        fixed = {k: v for k, v in new.to_dict()["tracking"].items() if k not in _LIVE_TRACKING}
        if old is None or fixed != {k: v for k, v in old.to_dict()["tracking"].items() if k not in _LIVE_TRACKING}:
            self.tracker = FaceTracker(new.tracking)  # a different tracker setup starts fresh
            if old is not None:
                self.smoother.reset()
                self._tracks_reset = True  # the face states end at the next frame (ids start afresh)
        else:
            self.tracker.config = new.tracking
        if old is None:
            self.landmarks = LandmarkStage(new.landmarks, threads=self.threads, meshes=self.meshes)
        else:
            self.landmarks.set_config(new.landmarks)
        if old is None:
            self.smoother = ProbabilitySmoother(new.smoothing.half_life_s, new.smoothing.margin)
        else:
            self.smoother.half_life_s = new.smoothing.half_life_s
            self.smoother.margin = new.smoothing.margin
        self.config = new
        detect = DetectStage(self.detector, new.classification.max_faces)
        old_detect = getattr(self, "stages", None) and self.stages[0]
        if old_detect is not None and old_detect.detector is self.detector:
            detect.hints = old_detect.hints  # the same detector keeps looking where the faces were
        track = TrackStage(self.tracker, new.tracking.embedder, follow=detect.follow)
        if old is not None and track.tracker is self.stages[1].tracker:
            track.size = self.stages[1].size
        #: The stages, in order; each ``stage(result, rgb) -> result`` (:mod:`pipeline.stages`).
        self.stages: tuple[Stage, ...] = (detect, track, ClassifyStage(self.classifier, new.classification.align),
                                          SmoothStage(self.smoother), self.landmarks)

    def update_config(self, config: PipelineConfig | str | None = None, **changes) -> None:
        """Change settings without losing the stream; applied before the next frame.

        ``config`` (a config or preset name) replaces the whole configuration;
        ``changes`` change fields by name.  Raises ``ConfigError`` at once for a bad value.
        """
        with self._lock:
            base = self._pending or self.config
            if config is not None:
                base = preset(config) if isinstance(config, str) else config
            self._pending = base.replace(**changes)

    def _apply_pending(self) -> None:
        with self._lock:
            new, self._pending = self._pending, None
        if new is not None and new != self.config:
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
        detect, track = self.stages[0], self.stages[1]
        new_size = self._size is not None and self._size != (w, h)  # another camera or resolution
        self._size = (w, h)
        if new_size:
            detect.reset()  # scan the whole new picture
        every = self.config.detection.detect_every
        # detection and tracking carried over from the last detected frame (the boxes and IDs) on the
        # frames between two detections; the later stages measure each frame's own pixels
        detected = not (every > 1 and track.carry is not None and not new_size and self._since_detect < every - 1)
        self._since_detect = 0 if detected else self._since_detect + 1
        res = FrameResult(index=self.frame_index, timestamp=t, width=w, height=h, classes=self.classes,
                          model_id=self.model_id, model_card=self.classifier.card, detected=detected, tracks_reset=self._tracks_reset)
        self._tracks_reset = False
        self.frame_index += 1
        timings = {}
        for stage in self.stages:
            t0 = time.perf_counter()
            res = stage(res, rgb).check(stage.name)
            timings[stage.name] = (time.perf_counter() - t0) * 1000
        if not detected:
            timings["detect"] = timings["track"] = 0.0
        timings["total"] = (time.perf_counter() - t_start) * 1000
        res.timings_ms = timings
        return res

    def reset(self) -> None:
        """Forget all tracks and history (IDs restart at 1)."""
        self.tracker.reset()
        self.smoother.reset()
        self.landmarks.reset()
        for stage in self.stages[:2]:
            stage.reset()
        self.frame_index = 0
        self._last_t = None
        self._size = None

    def close(self) -> None:
        self.detector.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def analyze_image(frame, config: PipelineConfig | str | None = None,
                  detector: Detector | None = None, *, threads: int = 2,
                  models: ClassifierCache | None = None, meshes: FaceMeshCache | None = None) -> FrameResult:
    """Analyse one still image: every face, numbered 1..N left to right, no tracking or smoothing.

    With ``landmarks.face_states`` (the default) each face also gets eye openness (against an average
    open eye: a photo has no personal baseline), mouth opening and head pose in ``result.measures``.

    ``config`` is a config or a preset name (None: the default preset).
    ``detector`` may be a ready :class:`~tracker.base.Detector` built from
    ``config.detection`` (pooled by the app to save its ~200 ms start-up); ``models`` the
    :class:`~classifier.hub.ClassifierCache` to load the classifier from (None: the process's default),
    ``meshes`` the :class:`~tracker.facemesh.FaceMeshCache` for the face mesh (likewise).
    """
    cfg = _config(config, {})
    t_start = time.perf_counter()
    rgb = to_rgb_uint8(frame)
    own = detector is None
    det_model = detector or make_detector(cfg.detection, threads=threads)
    try:
        clf, warn = (DEFAULT_CACHE if models is None else models).load(cfg.classification.model, threads=threads)
        h, w = rgb.shape[:2]
        res = FrameResult(index=0, timestamp=0.0, width=w, height=h, classes=clf.classes, model_id=clf.spec.id,
                          model_card=clf.card, warnings=(warn,) if warn else ())
        t0 = time.perf_counter()
        d = det_model.detect(rgb, scan_all=True)
        res = cap_faces(res.with_faces(d.boxes, d.scores, d.keypoints), cfg.classification.max_faces)
        t1 = time.perf_counter()
        raw = clf.predict(rgb, res.boxes, eye_angles(res.keypoints) if cfg.classification.align else None)
        res = replace(res, track_ids=np.arange(1, len(res) + 1, dtype=np.int64), raw=raw, smoothed=raw.copy(),
                      labels=np.argmax(raw, axis=1) if len(res) else np.zeros((0,), np.int64))
        t2 = time.perf_counter()
        res = still_face_columns(res, rgb, cfg.landmarks, threads=threads, meshes=meshes).check("landmarks")
        t3 = time.perf_counter()
        res.timings_ms.update(detect=(t1 - t0) * 1000, classify=(t2 - t1) * 1000, landmarks=(t3 - t2) * 1000,
                              total=(t3 - t_start) * 1000)
        return res
    finally:
        if own:
            det_model.close()
