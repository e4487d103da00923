"""Face tracking with DeepSORT (``deep-sort-realtime``), one tracker per stream.

Adds to DeepSORT what a face stream needs:

* **small stable IDs**: DeepSORT numbers every tentative track; we hand out
  our own IDs 1, 2, 3 ... only when a track is confirmed, so a one-frame false
  detection never burns an ID;
* **re-identification of hidden faces**: DeepSORT's Kalman prediction drifts
  while a face is hidden, so after a second or two the reappearing face fails
  the motion gate and starts a new track.  When a new track is confirmed we
  compare its appearance with the confirmed tracks that are currently missing
  (not seen for less than ``max_hidden_s``) near where they were last seen;
  the closest match under ``reid_distance`` hands its ID over;
* **time-based memory**: ``max_hidden_s`` (seconds) is turned into DeepSORT's
  per-track ``max_age`` (frames) from the measured frame interval, so a face
  hidden for a second keeps its ID at 5 fps and at 30 fps alike;
* **bounded memory**: ``nn_budget`` caps the appearance gallery per track and
  ID maps are pruned when DeepSORT deletes a track, so a long session does not
  grow.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from deep_sort_realtime.deep_sort.kalman_filter import KalmanFilter
from deep_sort_realtime.deepsort_tracker import DeepSort


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


@dataclass(frozen=True)
class TrackerConfig:
    """Tracking settings (validated by ``pipeline.config``).

    Defaults chosen with benchmarks/tracking.py (CLEAR-MOT/IDF1 on synthetic real-face sequences).
    """

    max_hidden_s: float = 3.0  # keep a lost track this long (seconds)
    n_init: int = 2  # detections needed before a track is confirmed
    max_cosine_distance: float = 0.3  # appearance gate
    max_iou_distance: float = 0.9  # IoU gate (1 - IoU) for the fallback matching
    reid_distance: float = 0.4  # cosine distance to give a hidden face its old ID back (0 = off)
    reid_radius: float = 3.0  # ... if it reappears within this many face widths of where it was lost
    nn_budget: int = 30  # appearance samples kept per track
    embedder: str = "colorhist"  # appearance embedding (tracker.embed.EMBEDDERS)


@dataclass
class TrackUpdate:
    """What one :meth:`FaceTracker.update` says about the frame's detections."""

    ids: np.ndarray  # (N,) int64, one per detection: its track's ID, or 0 if it has no confirmed track
    ended: tuple[int, ...] = field(default_factory=tuple)  # IDs of tracks that ended in this frame


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

    def update(self, boxes: np.ndarray, scores: np.ndarray, embeddings: np.ndarray, t: float) -> TrackUpdate:
        """Match this frame's detections to tracks.

        ``boxes`` (N, 4) x1, y1, x2, y2 pixels, ``scores`` (N,), ``embeddings``
        (N, D) appearance vectors (:func:`tracker.embed.embed`), ``t`` the
        frame's time in seconds.  Call it for every frame, even with no
        detections, so hidden tracks age.  Returns the track ID of each
        detection (0 while it has no confirmed track) and the IDs that ended.
        """
        if self._last_t is not None and t > self._last_t:
            # a smoothed frame interval, robust to a single late frame
            self._dt = 0.8 * self._dt + 0.2 * min(t - self._last_t, 2.0)
        self._last_t = t
        max_age = self._max_age_frames()
        for tr in self._ds.tracker.tracks:
            tr._max_age = max_age

        raw = [
            ([float(b[0]), float(b[1]), float(b[2] - b[0]), float(b[3] - b[1])], float(s), "face")
            for b, s in zip(boxes, scores)
        ]
        feats = list(embeddings) if len(boxes) else []
        tracks = self._ds.update_tracks(raw, embeds=feats, others=list(range(len(boxes))))

        ended = []
        for dead in self._ds.tracker.del_tracks_ids:
            if dead in self._ids:
                gone = self._ids.pop(dead)
                self._last_box.pop(gone, None)
                ended.append(gone)

        ids = np.zeros(len(boxes), np.int64)
        for tr in list(tracks):
            if not tr.is_confirmed():
                continue
            if tr.track_id not in self._ids:
                box = boxes[int(tr.others)] if tr.others is not None else None
                old = self._reidentify(tr, box)
                if old is None:
                    old = self._next_id
                    self._next_id += 1
                self._ids[tr.track_id] = old
            if tr.time_since_update == 0 and tr.others is not None:
                ids[int(tr.others)] = self._ids[tr.track_id]
                self._last_box[self._ids[tr.track_id]] = np.asarray(boxes[int(tr.others)], np.float32).copy()
        return TrackUpdate(ids, tuple(sorted(ended)))

    def _reidentify(self, new, box) -> int | None:
        """The ID of a hidden confirmed track that ``new`` looks like, or None."""
        c = self.config
        if c.reid_distance <= 0 or box is None or not new.features or c.embedder == "none":
            return None
        feat = np.asarray(new.features[-1], np.float32)
        feat = feat / max(float(np.linalg.norm(feat)), 1e-9)
        samples = self._ds.tracker.metric.samples
        cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
        best, best_d = None, c.reid_distance
        for old in self._ds.tracker.tracks:
            if old is new or not old.is_confirmed() or old.time_since_update == 0 or old.track_id not in self._ids:
                continue
            last = self._last_box.get(self._ids[old.track_id])
            if last is None:
                continue
            w = max(last[2] - last[0], box[2] - box[0], 1.0)
            if np.hypot(cx - (last[0] + last[2]) / 2, cy - (last[1] + last[3]) / 2) > c.reid_radius * w:
                continue
            gallery = samples.get(old.track_id)
            if not gallery:
                continue
            g = np.asarray(gallery, np.float32)
            g = g / np.maximum(np.linalg.norm(g, axis=1, keepdims=True), 1e-9)
            d = float(1.0 - (g @ feat).max())
            if d < best_d:
                best, best_d = old, d
        if best is None:
            return None
        # hand the old ID over and retire the old DeepSORT track for good
        self._ds.tracker.tracks.remove(best)
        return self._ids.pop(best.track_id)

    def reset(self) -> None:
        """Forget every track (IDs start again from 1)."""
        self._ds = self._make()
        self._ids: dict[str, int] = {}  # DeepSORT id -> our id (confirmed tracks only)
        self._last_box: dict[int, np.ndarray] = {}  # our id -> box where it was last seen
        self._next_id = 1
        self._last_t: float | None = None
        self._dt = 1 / 30
