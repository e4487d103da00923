"""The per-stream pipeline: detect -> track -> classify -> smooth -> landmarks and face states.

One :class:`Pipeline` per stream (browser connection, video file).  Tracking
and smoothing state live in the pipeline and nowhere else, so two pipelines
never share IDs or history.  Model weights are shared (read-only) through the
classifier cache.
"""
from __future__ import annotations

import threading
import time
from dataclasses import replace

import numpy as np

from classifier.hub import load_classifier
from classifier.onnx_model import eye_angles
from classifier.smoothing import ProbabilitySmoother
from tracker.detect import FaceDetector, make_detector
from tracker.embed import embed
from tracker.track import FaceTracker

from .config import PipelineConfig, preset
from .frames import to_rgb_uint8
from .landmarks import LandmarkStage, still_face_columns
from .predicted import add_predicted
from .results import FrameResult

#: Tracking settings a running tracker takes over without starting afresh.
_LIVE_TRACKING = ("max_hidden_s", "reid_distance", "reid_radius", "hold_s")


def _cap_faces(res: FrameResult, max_faces: int) -> tuple[FrameResult, str | None]:
    """Keep the ``max_faces`` largest faces (in frame order); say so if any were dropped."""
    if len(res) <= max_faces:
        return res, None
    area = (res.boxes[:, 2] - res.boxes[:, 0]) * (res.boxes[:, 3] - res.boxes[:, 1])
    kept = res.subset(np.sort(np.argsort(-area)[:max_faces]))
    return kept, f"more than {max_faces} faces; the largest {max_faces} are analysed"


def _config(config: PipelineConfig | str | None, overrides: dict) -> PipelineConfig:
    base = preset(config) if config is None or isinstance(config, str) else config
    return base.replace(**overrides)


class Pipeline:
    """detect -> track -> classify -> smooth, one per stream.

    ``Pipeline()`` uses the default preset; ``Pipeline("steady")``,
    ``Pipeline(config)`` or ``Pipeline(half_life_s=0.3)`` choose others
    (see :mod:`pipeline.config`).
    """

    def __init__(self, config: PipelineConfig | str | None = None, **overrides):
        self.config = _config(config, overrides)
        self._lock = threading.Lock()
        self._pending: PipelineConfig | None = None
        self.warnings: list[str] = []
        self.frame_index = 0
        self._last_t: float | None = None
        self._hints: np.ndarray | None = None  # last frame's face boxes, for the "auto" detector (None: scan all)
        self._size: tuple[int, int] | None = None  # (width, height) of the last frame
        self._t0 = time.monotonic()
        self._restarted = False
        self._carry: tuple | None = None  # the last detected frame's faces and tracks (detection.detect_every)
        self._since_detect = 0  # frames since the detector last ran
        self._build(self.config, None)

    # -- configuration -------------------------------------------------
    def _build(self, new: PipelineConfig, old: PipelineConfig | None) -> None:
        if old is None or replace(new.detection, detect_every=1) != replace(old.detection, detect_every=1):
            det = make_detector(new.detection)
            if old is not None:
                self.detector.close()
            self.detector = det
            self._hints = None
        if old is None or new.classification.model != old.classification.model:
            clf, warn = load_classifier(new.classification.model)
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
                self._restarted = True  # the face states end at the next frame (ids start afresh)
        else:
            self.tracker.config = new.tracking
        if old is None:
            self.landmarks = LandmarkStage(new.landmarks)
        else:
            self.landmarks.set_config(new.landmarks)
        if old is None:
            self.smoother = ProbabilitySmoother(new.smoothing.half_life_s, new.smoothing.margin)
        else:
            self.smoother.half_life_s = new.smoothing.half_life_s
            self.smoother.margin = new.smoothing.margin
        self._carry = None  # the next frame is detected afresh
        self.config = new

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
        res = FrameResult(index=self.frame_index, timestamp=t, width=w, height=h,
                          classes=self.classes, model_id=self.model_id)
        self.frame_index += 1
        timings = res.timings_ms

        t0 = time.perf_counter()
        new_size = self._size is not None and self._size != (w, h)  # another camera or resolution
        every = self.config.detection.detect_every
        if every > 1 and self._carry is not None and not new_size and self._since_detect < every - 1:
            # detection and tracking carried over from the last detected frame (the boxes and IDs);
            # classification, smoothing and landmarks below measure this frame's own pixels
            self._since_detect += 1
            res.boxes, res.scores, res.keypoints, res.track_ids, res.warnings, predicted_ids, predicted_boxes = \
                self._carry
            restarted: tuple = ()
            timings["detect"] = timings["track"] = 0.0
            t2 = time.perf_counter()
        else:
            hints = None if new_size else self._hints
            det = self.detector.detect(rgb, hints=hints, scan_all=hints is None)
            res.boxes, res.scores, res.keypoints = det.boxes, det.scores, det.keypoints
            res, capped = _cap_faces(res, self.config.classification.max_faces)
            if capped:
                res.warnings = (capped,)
            self._hints = res.boxes  # every face found, tracked yet or not: the next frame looks for them again
            t1 = time.perf_counter()
            timings["detect"] = (t1 - t0) * 1000

            if new_size:  # the tracks move with the picture
                self.tracker.rescale(w / self._size[0], h / self._size[1])
            self._size = (w, h)
            emb = embed(rgb, res.boxes, self.config.tracking.embedder)
            upd = self.tracker.update(res.boxes, res.scores, emb, t)
            seen = upd.ids > 0  # faces without a confirmed track (yet) are not reported
            res = res.subset(np.flatnonzero(seen))
            res.track_ids, res.ended_tracks = upd.ids[seen], upd.ended
            restarted, predicted_ids, predicted_boxes = upd.restarted, upd.predicted_ids, upd.predicted_boxes
            self._hints = np.concatenate([self._hints, predicted_boxes])  # look where missed faces should be
            # carried over only while every face found has its ID: a new face is confirmed by the next
            # detections (n_init), as fast as when every frame is detected
            self._carry = ((res.boxes, res.scores, res.keypoints, res.track_ids, res.warnings,
                            predicted_ids, predicted_boxes) if bool(np.all(seen)) else None)
            self._since_detect = 0
            t2 = time.perf_counter()
            timings["track"] = (t2 - t1) * 1000

        angles = eye_angles(res.keypoints) if self.config.classification.align else None
        res.raw = self.classifier.predict(rgb, res.boxes, angles)
        t3 = time.perf_counter()
        timings["classify"] = (t3 - t2) * 1000

        self.smoother.drop(res.ended_tracks + restarted)  # a re-assigned face starts afresh
        res.smoothed, res.labels = self.smoother.update_many(res.track_ids, res.raw, t)
        res = add_predicted(res, predicted_ids, predicted_boxes, self.smoother)
        t4 = time.perf_counter()
        timings["smooth"] = (t4 - t3) * 1000

        gone = res.ended_tracks + restarted
        if self._restarted:  # a new tracker: every earlier face's states end
            gone, self._restarted = tuple(self.landmarks.states.faces), False
        res = self.landmarks(res, rgb, gone)
        t5 = time.perf_counter()
        timings["landmarks"] = (t5 - t4) * 1000
        timings["total"] = (t5 - t_start) * 1000
        return res

    def reset(self) -> None:
        """Forget all tracks and history (IDs restart at 1)."""
        self.tracker.reset()
        self.smoother.reset()
        self.landmarks.reset()
        self.frame_index = 0
        self._last_t = None
        self._hints = None
        self._size = None
        self._carry = None

    def close(self) -> None:
        self.detector.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def analyze_image(frame, config: PipelineConfig | str | None = None,
                  detector: FaceDetector | None = None) -> FrameResult:
    """Analyse one still image: every face, numbered 1..N left to right, no tracking or smoothing.

    With ``landmarks.face_states`` (the default) each face also gets eye openness (against an average
    open eye: a photo has no personal baseline), mouth opening and head pose in ``result.measures``.

    ``config`` is a config or a preset name (None: the default preset).
    ``detector`` may be a ready :class:`FaceDetector` built from
    ``config.detection`` (pooled by the app to save its ~200 ms start-up).
    """
    cfg = _config(config, {})
    t_start = time.perf_counter()
    rgb = to_rgb_uint8(frame)
    own = detector is None
    det_model = detector or make_detector(cfg.detection)
    try:
        clf, warn = load_classifier(cfg.classification.model)
        h, w = rgb.shape[:2]
        res = FrameResult(index=0, timestamp=0.0, width=w, height=h, classes=clf.classes, model_id=clf.spec.id)
        t0 = time.perf_counter()
        d = det_model.detect(rgb, scan_all=True)
        res.boxes, res.scores, res.keypoints = d.boxes, d.scores, d.keypoints
        res, capped = _cap_faces(res, cfg.classification.max_faces)
        warnings = [w for w in (warn, capped) if w]
        t1 = time.perf_counter()
        res.track_ids = np.arange(1, len(res) + 1, dtype=np.int64)
        res.raw = clf.predict(rgb, res.boxes, eye_angles(res.keypoints) if cfg.classification.align else None)
        res.smoothed = res.raw.copy()
        res.labels = np.argmax(res.raw, axis=1) if len(res) else np.zeros((0,), np.int64)
        t2 = time.perf_counter()
        res = still_face_columns(res, rgb, cfg.landmarks)
        t3 = time.perf_counter()
        res.timings_ms.update(detect=(t1 - t0) * 1000, classify=(t2 - t1) * 1000, landmarks=(t3 - t2) * 1000,
                              total=(t3 - t_start) * 1000)
        res.warnings = tuple(warnings)
        return res
    finally:
        if own:
            det_model.close()
