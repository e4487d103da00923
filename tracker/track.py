"""Face tracking with DeepSORT (``deep-sort-realtime``), one tracker per stream.

Adds to DeepSORT what a face stream needs:

* **small stable IDs**: DeepSORT numbers every tentative track; we hand out
  our own IDs 1, 2, 3 ... only when a track is confirmed, so a one-frame false
  detection never burns an ID;
* **time-based memory**: ``max_hidden_s`` (seconds) is turned into DeepSORT's
  per-track ``max_age`` (frames) from the measured frame interval, so a face
  hidden for a second keeps its ID at 5 fps and at 30 fps alike;
* **bounded memory**: ``nn_budget`` caps the appearance gallery per track and
  ID maps are pruned when DeepSORT deletes a track, so a long session does not
  grow.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from deep_sort_realtime.deep_sort.kalman_filter import KalmanFilter
from deep_sort_realtime.deepsort_tracker import DeepSort

from pipeline.results import FrameResult

from .embed import embed


class _FastGatingKalman(KalmanFilter):
    """DeepSORT's Kalman filter with a NumPy gating distance.

    The original solves a 4x4 triangular system per track with
    ``scipy.linalg.solve_triangular``, whose call overhead (about 0.35 ms,
    far more when another process loads the CPU) dominated tracking with
    several faces.  Same squared Mahalanobis distance, computed in NumPy.
    """

    def gating_distance(self, mean, covariance, measurements, only_position=False):
        mean, covariance = self.project(mean, covariance)
        if only_position:
            mean, covariance = mean[:2], covariance[:2, :2]
            measurements = measurements[:, :2]
        d = np.asarray(measurements, float) - mean
        return np.einsum("ij,ij->i", d, np.linalg.solve(covariance, d.T).T)


@dataclass
class TrackerConfig:
    # Defaults chosen with benchmarks/tracking.py (motmetrics on synthetic real-face sequences).
    max_hidden_s: float = 3.0  # keep a lost track this long (seconds)
    n_init: int = 2  # detections needed before a track is confirmed
    max_cosine_distance: float = 0.3  # appearance gate
    max_iou_distance: float = 0.9  # IoU gate (1 - IoU) for the fallback matching
    nn_budget: int = 30  # appearance samples kept per track
    embedder: str = "colorhist"


class FaceTracker:
    def __init__(self, config: TrackerConfig | None = None):
        self.config = config or TrackerConfig()
        self.reset()

    def _make(self) -> DeepSort:
        c = self.config
        ds = DeepSort(
            max_age=30,
            n_init=c.n_init,
            max_cosine_distance=c.max_cosine_distance,
            max_iou_distance=c.max_iou_distance,
            nn_budget=c.nn_budget,
            embedder=None,
        )
        ds.tracker.kf = _FastGatingKalman()
        return ds

    @property
    def active_ids(self) -> list[int]:
        return sorted(self._ids.values())

    def _max_age_frames(self) -> int:
        return max(1, int(np.ceil(self.config.max_hidden_s / max(self._dt, 1e-3))))

    def update(self, rgb: np.ndarray, frame: FrameResult) -> FrameResult:
        """Assign track IDs; returns the faces of confirmed, currently seen tracks.

        ``frame`` carries this frame's detections (boxes, scores, keypoints).
        The result keeps only faces matched to a confirmed track, with
        ``track_ids`` filled and ``ended_tracks`` listing IDs that ended now.
        """
        t = frame.timestamp
        if self._last_t is not None and t > self._last_t:
            # a smoothed frame interval, robust to a single late frame
            self._dt = 0.8 * self._dt + 0.2 * min(t - self._last_t, 2.0)
        self._last_t = t
        max_age = self._max_age_frames()
        for tr in self._ds.tracker.tracks:
            tr._max_age = max_age

        boxes = frame.boxes
        raw = [
            ([float(b[0]), float(b[1]), float(b[2] - b[0]), float(b[3] - b[1])], float(s), "face")
            for b, s in zip(boxes, frame.scores)
        ]
        feats = embed(rgb, boxes, self.config.embedder) if len(boxes) else []
        tracks = self._ds.update_tracks(raw, embeds=feats, others=list(range(len(boxes))))

        ended = []
        for dead in self._ds.tracker.del_tracks_ids:
            if dead in self._ids:
                ended.append(self._ids.pop(dead))

        keep, ids = [], []
        for tr in tracks:
            if not tr.is_confirmed():
                continue
            if tr.track_id not in self._ids:
                self._ids[tr.track_id] = self._next_id
                self._next_id += 1
            if tr.time_since_update == 0 and tr.others is not None:
                keep.append(int(tr.others))
                ids.append(self._ids[tr.track_id])
        out = frame.subset(keep)
        out.track_ids = np.asarray(ids, dtype=np.int64)
        out.ended_tracks = tuple(sorted(ended))
        return out

    def reset(self) -> None:
        """Forget every track (IDs start again from 1)."""
        self._ds = self._make()
        self._ids: dict[str, int] = {}  # DeepSORT id -> our id (confirmed tracks only)
        self._next_id = 1
        self._last_t: float | None = None
        self._dt = 1 / 30
