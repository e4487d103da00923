"""The per-frame stages of a stream, each of one shape: ``stage(result, rgb) -> result``.

:class:`pipeline.Pipeline` runs ``detect -> track -> classify -> smooth -> landmarks``
(:mod:`pipeline.landmarks` holds the last), timing each and checking the result's columns
after each.  A stage keeps its per-stream state (hints, tracks, smoothing) and nothing else;
its ``name`` is the key of its time in ``FrameResult.timings_ms``.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Callable, Protocol

import numpy as np

from classifier.onnx_model import EmotionClassifier, eye_angles
from classifier.smoothing import ProbabilitySmoother
from tracker.base import Detector
from tracker.embed import embed
from tracker.geometry import clip_boxes
from tracker.track import FaceTracker

from .results import FrameResult


class Stage(Protocol):
    name: str

    def __call__(self, res: FrameResult, rgb: np.ndarray) -> FrameResult: ...


def cap_faces(res: FrameResult, max_faces: int) -> FrameResult:
    """Keep the ``max_faces`` largest faces (in frame order), with a warning if any were dropped."""
    if len(res) <= max_faces:
        return res
    area = (res.boxes[:, 2] - res.boxes[:, 0]) * (res.boxes[:, 3] - res.boxes[:, 1])
    kept = res.subset(np.sort(np.argsort(-area)[:max_faces]))
    return replace(kept, warnings=kept.warnings + (f"more than {max_faces} faces; the largest {max_faces} "
                                                   f"are analysed",))


class DetectStage:
    """Faces of the frame (the detector's boxes, scores and keypoints), at most ``max_faces`` of them.

    A frame the pipeline does not detect (``res.detected`` False) passes unchanged: the track stage
    carries the last detected faces over.  The detector is told where to look again (``hints``): the
    faces found in the last detected frame, and where the tracker expects the ones it missed.
    """

    name = "detect"

    def __init__(self, detector: Detector, max_faces: int):
        self.detector, self.max_faces = detector, int(max_faces)
        self.hints: np.ndarray | None = None  # None: scan the whole frame (a new stream or picture size)

    def follow(self, boxes: np.ndarray) -> None:
        """Also look for these faces in the next frame (the tracker's predictions for missed faces)."""
        if self.hints is not None:
            self.hints = np.concatenate([self.hints, np.asarray(boxes, np.float32).reshape(-1, 4)])

    def reset(self) -> None:
        self.hints = None

    def __call__(self, res: FrameResult, rgb: np.ndarray) -> FrameResult:
        if not res.detected:
            return res
        det = self.detector.detect(rgb, hints=self.hints, scan_all=self.hints is None)
        res = cap_faces(res.with_faces(det.boxes, det.scores, det.keypoints), self.max_faces)
        self.hints = res.boxes  # every face found, tracked yet or not: the next frame looks for them again
        return res


class TrackStage:
    """Stable IDs: keeps the faces of confirmed tracks, appends the confirmed faces the detector missed.

    The missed faces come at the box their track predicts, ``predicted`` True, while the track was seen
    less than ``tracking.hold_s`` ago (inside the frame).  On a frame the detector skipped, the last
    detected frame's faces, IDs and predicted faces are carried over (:attr:`carry`).
    """

    name = "track"

    def __init__(self, tracker: FaceTracker, embedder: str, follow: Callable[[np.ndarray], None]):
        self.tracker, self.embedder, self.follow = tracker, embedder, follow
        self.size: tuple[int, int] | None = None
        #: The last detected frame's faces (a FrameResult of this stage's output), carried over while every
        #: face found had its ID; None: the next frame must be detected.
        self.carry: FrameResult | None = None

    def reset(self) -> None:
        self.size, self.carry = None, None

    def __call__(self, res: FrameResult, rgb: np.ndarray) -> FrameResult:
        if not res.detected:
            c = self.carry
            return replace(res, boxes=c.boxes, scores=c.scores, keypoints=c.keypoints, track_ids=c.track_ids,
                           predicted=c.predicted, warnings=c.warnings)
        w, h = res.width, res.height
        if self.size is not None and self.size != (w, h):  # the tracks move with the picture
            self.tracker.rescale(w / self.size[0], h / self.size[1])
        self.size = (w, h)
        upd = self.tracker.update(res.boxes, res.scores, embed(rgb, res.boxes, self.embedder), res.timestamp)
        seen = upd.ids > 0  # faces without a confirmed track (yet) are not reported
        out = res.subset(np.flatnonzero(seen))
        self.follow(upd.predicted_boxes)  # look where missed faces should be
        boxes = clip_boxes(upd.predicted_boxes, w, h)
        inside = (boxes[:, 2] - boxes[:, 0] >= 2) & (boxes[:, 3] - boxes[:, 1] >= 2)  # gone out of the frame: drop
        m = int(inside.sum())
        out = replace(out,
                      boxes=np.concatenate([out.boxes, boxes[inside]]),
                      scores=np.concatenate([out.scores, np.zeros(m, np.float32)]),
                      keypoints=np.concatenate([out.keypoints, np.full((m, 6, 2), np.nan, np.float32)]),
                      track_ids=np.concatenate([upd.ids[seen], np.asarray(upd.predicted_ids, np.int64)[inside]]),
                      predicted=np.r_[np.zeros(len(out), bool), np.ones(m, bool)],
                      ended_tracks=tuple(upd.ended), restarted_tracks=tuple(upd.restarted))
        # carried over only while every face found has its ID: a new face is confirmed by the next
        # detections (n_init), as fast as when every frame is detected
        self.carry = out if bool(np.all(seen)) else None
        return out


class ClassifyStage:
    """Class probabilities of every measured face, in one batched model call (NaN rows: predicted faces)."""

    name = "classify"

    def __init__(self, classifier: EmotionClassifier, align: bool):
        self.classifier, self.align = classifier, bool(align)

    def __call__(self, res: FrameResult, rgb: np.ndarray) -> FrameResult:
        seen = ~res.predicted
        raw = np.full((len(res), len(res.classes)), np.nan, np.float32)
        boxes = res.boxes[seen]
        angles = eye_angles(res.keypoints[seen]) if self.align else None
        raw[seen] = self.classifier.predict(rgb, boxes, angles)
        return replace(res, raw=raw)


class SmoothStage:
    """Per-track, time-based smoothing of the probabilities, and the label shown.

    A predicted face's smoothed probabilities and label are held as they were; a predicted face never
    classified has nothing to hold and is left out.
    """

    name = "smooth"

    def __init__(self, smoother: ProbabilitySmoother):
        self.smoother = smoother

    def __call__(self, res: FrameResult, rgb: np.ndarray) -> FrameResult:
        self.smoother.drop(res.ended_tracks + res.restarted_tracks)  # a re-assigned face starts afresh
        seen = ~res.predicted
        C = len(res.classes)
        sm = np.full((len(res), C), np.nan, np.float32)
        labels = np.full(len(res), -1, np.int64)
        sm[seen], labels[seen] = self.smoother.update_many(res.track_ids[seen], res.raw[seen], res.timestamp)
        sm[~seen], labels[~seen] = self.smoother.hold(res.track_ids[~seen], C)
        res = replace(res, smoothed=sm, labels=labels)
        keep = labels >= 0
        return res if keep.all() else res.subset(np.flatnonzero(keep))
