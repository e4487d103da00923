"""The ``predicted`` rows: faces the detector missed for a moment, kept at their track's predicted box.

A confirmed face that is not detected in a frame (blur, a turned head, a
detector miss) is reported until it is found again or ``tracking.hold_s``
runs out: at the box the tracker predicts, flagged ``predicted``, with NaN
``raw`` probabilities (nothing was measured) and its smoothed probabilities
and label held as they were, not updated.
"""
from __future__ import annotations

import numpy as np

from classifier.smoothing import ProbabilitySmoother

from .results import FrameResult


def add_predicted(res: FrameResult, ids: np.ndarray, boxes: np.ndarray, smoother: ProbabilitySmoother) -> FrameResult:
    """``res`` (measured faces, classified and smoothed) with the predicted faces appended."""
    w, h = res.width, res.height
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4).copy()
    boxes[:, [0, 2]] = np.clip(boxes[:, [0, 2]], 0, w)
    boxes[:, [1, 3]] = np.clip(boxes[:, [1, 3]], 0, h)
    inside = (boxes[:, 2] - boxes[:, 0] >= 2) & (boxes[:, 3] - boxes[:, 1] >= 2)  # gone out of the frame: drop
    ids, boxes = np.asarray(ids, np.int64)[inside], boxes[inside]
    C = len(res.classes)
    sm, labels = smoother.hold(ids, C)
    known = labels >= 0  # a face never classified has nothing to hold
    ids, boxes, sm, labels = ids[known], boxes[known], sm[known], labels[known]
    n, m = len(res), len(ids)
    if m == 0:
        res.predicted = np.zeros(n, bool)
        return res
    res.boxes = np.concatenate([res.boxes, boxes])
    res.scores = np.concatenate([res.scores, np.zeros(m, np.float32)])
    res.keypoints = np.concatenate([res.keypoints, np.full((m,) + res.keypoints.shape[1:], np.nan, np.float32)])
    res.track_ids = np.concatenate([res.track_ids, ids])
    res.raw = np.concatenate([res.raw, np.full((m, C), np.nan, np.float32)])
    res.smoothed = np.concatenate([res.smoothed, sm])
    res.labels = np.concatenate([res.labels, labels])
    res.predicted = np.r_[np.zeros(n, bool), np.ones(m, bool)]
    return res
