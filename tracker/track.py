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
  the closest match under ``reid_distance`` hands its ID over.  A face that
  surely is a hidden one (and looks like no other confirmed face more) gets
  its ID back at first sight, not ``n_init`` frames later;
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
from deep_sort_realtime.deep_sort.track import TrackState
from deep_sort_realtime.deepsort_tracker import DeepSort

from common.checks import choice, number, validate, whole

from .embed import EMBEDDERS


class _FastGatingKalman(KalmanFilter):
    """DeepSORT's Kalman filter with a NumPy gating distance.

    The original solves a 4x4 triangular system per track with
    ``scipy.linalg.solve_triangular``, whose call overhead (about 0.35 ms,
    far more when another process loads the CPU) dominated tracking with
    several faces.  Same squared Mahalanobis distance, computed in NumPy.
    """

    #: A detection more than this many face heights from where the track is expected cannot be it,
    #: whatever the (after missed frames, wide) Kalman uncertainty says.
    max_jump = 1.0

    def gating_distance(self, mean, covariance, measurements, only_position=False):
        mean, covariance = self.project(mean, covariance)
        meas = np.asarray(measurements, float)
        jump = np.hypot(meas[:, 0] - mean[0], meas[:, 1] - mean[1]) / max(float(mean[3]), 1.0)
        if only_position:
            mean, covariance = mean[:2], covariance[:2, :2]
            meas = meas[:, :2]
        d = meas - mean
        dist = np.einsum("ij,ij->i", d, np.linalg.solve(covariance, d.T).T)
        return np.where(jump > self.max_jump, 1e6, dist)  # 1e6: beyond any chi-square gate


#: A hidden face is looked for within this many face widths per second of hiding (up to reid_radius).
REID_SPEED = 5.0


@dataclass(frozen=True)
class TrackerConfig:
    """Tracking settings; every value is checked when the config is made.

    Defaults chosen with benchmarks/tracking.py (CLEAR-MOT/IDF1 on synthetic real-face sequences).
    """

    max_hidden_s: float = 3.0  # keep a lost track this long (seconds)
    n_init: int = 2  # detections needed before a track is confirmed
    max_cosine_distance: float = 0.3  # appearance gate
    max_iou_distance: float = 0.9  # IoU gate (1 - IoU) for the fallback matching
    reid_distance: float = 0.5  # cosine distance to give a hidden face its old ID back (0 = off)
    reid_radius: float = 3.0  # ... if it reappears within this many face widths of where it was expected
    hold_s: float = 0.5  # a confirmed face not detected is reported at its predicted box this long (seconds)
    nn_budget: int = 30  # appearance samples kept per track
    embedder: str = "colorhist"  # appearance embedding (tracker.embed.EMBEDDERS)

    def __post_init__(self):
        validate(self, "tracking", {
            "max_hidden_s": number(0.0, 60.0),
            "n_init": whole(1, 30),
            "max_cosine_distance": number(0.0, 2.0),
            "max_iou_distance": number(0.0, 1.0),
            "reid_distance": number(0.0, 2.0),
            "reid_radius": number(0.0, 100.0),
            "nn_budget": whole(1, 1000),
            "hold_s": number(0.0, 10.0),
            "embedder": choice(*EMBEDDERS),
        })


@dataclass
class TrackUpdate:
    """What one :meth:`FaceTracker.update` says about the frame's detections."""

    ids: np.ndarray  # (N,) int64, one per detection: its track's ID, or 0 if it has no confirmed track
    ended: tuple[int, ...] = field(default_factory=tuple)  # IDs of tracks that ended in this frame
    # confirmed tracks not detected in this frame but seen less than ``hold_s`` ago: ID and predicted box
    predicted_ids: np.ndarray = field(default_factory=lambda: np.zeros((0,), np.int64))
    predicted_boxes: np.ndarray = field(default_factory=lambda: np.zeros((0, 4), np.float32))
    # IDs whose track took up a detection after a gap without a confident appearance match:
    # whatever was learnt about that face (smoothing) should start afresh
    restarted: tuple[int, ...] = field(default_factory=tuple)


#: Detection score above which a face of a stream's first frame gets its ID at once (no n_init wait);
#: a barely visible face (a partly hidden one scores 0.6-0.75) waits as everywhere else, so a
#: one-frame glimpse never leaves an ID behind for re-identification to hand to someone else.
FIRST_FRAME_SURE = 0.8


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
        first = self._last_t is None
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
        missed = {tr.track_id: tr.time_since_update for tr in self._ds.tracker.tracks if tr.is_confirmed()}
        tracks = self._ds.update_tracks(raw, embeds=feats, others=list(range(len(boxes))))
        if first:  # a stream's first frame: its sure faces are shown at once (a video's poster frame has boxes)
            gallery = self._ds.tracker.metric.samples
            for tr in tracks:
                sure = tr.others is not None and float(scores[int(tr.others)]) >= FIRST_FRAME_SURE
                if tr.is_tentative() and tr.features and sure:
                    tr.state = TrackState.Confirmed
                    gallery[tr.track_id] = list(tr.features)  # what DeepSORT stores for a confirmed track
                    tr.features = [tr.features[-1]]

        ended, restarted = [], []
        for dead in self._ds.tracker.del_tracks_ids:
            if dead in self._ids:
                gone = self._ids.pop(dead)
                self._last_box.pop(gone, None)
                self._last_seen.pop(gone, None)
                ended.append(gone)

        ids = np.zeros(len(boxes), np.int64)
        for tr in list(tracks):
            if tr.is_tentative() and tr.hits == 1 and tr.others is not None:
                # a face seen for the first time that is surely a hidden face come back: its ID now,
                # not after n_init frames
                old, sure = self._reidentify(tr, boxes[int(tr.others)], t, sure_only=True)
                if old is not None:
                    tr.state = TrackState.Confirmed
                    # DeepSORT's appearance matching asks every confirmed track for its gallery
                    self._ds.tracker.metric.samples[tr.track_id] = list(tr.features)
                    self._ids[tr.track_id] = old
            if not tr.is_confirmed():
                continue
            if tr.track_id not in self._ids:
                box = boxes[int(tr.others)] if tr.others is not None else None
                old, sure = self._reidentify(tr, box, t)
                if old is None:
                    old = self._next_id
                    self._next_id += 1
                elif not sure:
                    restarted.append(old)  # probably the same person: same ID, but what was learnt starts afresh
                self._ids[tr.track_id] = old
            our = self._ids[tr.track_id]
            if tr.time_since_update == 0 and tr.others is not None:
                k = int(tr.others)
                ids[k] = our
                self._last_box[our] = np.asarray(boxes[k], np.float32).copy()
                self._last_seen[our] = t
                if missed.get(tr.track_id, 0) > 1 and not self._looks_like(tr, feats[k]):
                    restarted.append(our)
        p_ids, p_boxes = self._predicted(t)
        return TrackUpdate(ids, tuple(sorted(ended)), p_ids, p_boxes, tuple(restarted))

    def _looks_like(self, tr, feat) -> bool:
        """Whether ``feat`` is within ``reid_distance`` of the track's earlier appearance."""
        c = self.config
        gallery = self._ds.tracker.metric.samples.get(tr.track_id) or []
        if c.embedder == "none" or len(gallery) < 2:
            return True
        g = np.asarray(gallery[:-1], np.float32)  # the samples before this frame's
        g /= np.maximum(np.linalg.norm(g, axis=1, keepdims=True), 1e-9)
        f = np.asarray(feat, np.float32) / max(float(np.linalg.norm(feat)), 1e-9)
        return float(1.0 - (g @ f).max()) < max(c.reid_distance, c.max_cosine_distance)

    def _predicted(self, t: float) -> tuple[np.ndarray, np.ndarray]:
        """Confirmed tracks missed in this frame but seen within ``hold_s``: (ids, predicted boxes)."""
        ids, boxes = [], []
        for tr in self._ds.tracker.tracks:
            our = self._ids.get(tr.track_id)
            if our is None or not tr.is_confirmed() or tr.time_since_update == 0:
                continue
            if t - self._last_seen.get(our, -1e9) <= self.config.hold_s:
                ids.append(our)
                boxes.append(np.asarray(tr.to_tlbr(), np.float32))
        return (np.asarray(ids, np.int64), np.asarray(boxes, np.float32).reshape(-1, 4))

    def _reidentify(self, new, box, now: float, sure_only: bool = False) -> tuple[int | None, bool]:
        """(ID, sure) of the hidden confirmed track that ``new`` is, or (None, False).

        Candidates are hidden tracks where the face can be by now (size and
        distance for the time hidden).  The closest in appearance under
        ``reid_distance`` is sure; a face that has just come out from behind
        something shows only part of itself, so the one candidate within
        1.5 x ``reid_distance`` is taken too, but not sure.  ``sure_only`` (a
        face seen for the first time): only a sure match that looks like no
        other confirmed face more.
        """
        c = self.config
        if c.reid_distance <= 0 or box is None or not new.features or c.embedder == "none":
            return None, False
        feat = np.asarray(new.features[-1], np.float32)
        feat = feat / max(float(np.linalg.norm(feat)), 1e-9)
        cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
        cands: list[tuple[float, object]] = []
        for old in self._ds.tracker.tracks:
            if old is new or not old.is_confirmed() or old.time_since_update == 0 or old.track_id not in self._ids:
                continue
            last = self._last_box.get(self._ids[old.track_id])
            if last is None:
                continue
            w = max(last[2] - last[0], box[2] - box[0], 1.0)
            ratio = (box[2] - box[0]) / max(last[2] - last[0], 1.0)
            if not 0.5 <= ratio <= 2.0:  # a face does not change size that much while hidden (half of it may show)
                continue
            near = min(np.hypot(cx - (b[0] + b[2]) / 2, cy - (b[1] + b[3]) / 2) for b in (last, old.to_tlbr()))
            hidden_s = max(now - self._last_seen.get(self._ids[old.track_id], now), 0.0)
            reach = min(c.reid_radius, 0.5 + REID_SPEED * hidden_s)  # how far (face widths) it can have gone
            if near > reach * w:  # farther from where it was lost (and from where it was heading)
                continue
            d = self._gallery_distance(old.track_id, feat)
            if d < 1.5 * c.reid_distance:
                cands.append((d, old))
        if not cands:
            return None, False
        d, best = min(cands, key=lambda x: x[0])
        sure = d < c.reid_distance
        if not sure and (len(cands) > 1 or sure_only):
            return None, False
        if sure_only and any(self._gallery_distance(o.track_id, feat) <= d for o in self._ds.tracker.tracks
                             if o is not best and o is not new and o.is_confirmed()):
            return None, False  # at first sight, only a face that looks like nobody else
        # hand the old ID over and retire the old DeepSORT track for good
        self._ds.tracker.tracks.remove(best)
        return self._ids.pop(best.track_id), sure

    def _gallery_distance(self, track_id, feat: np.ndarray) -> float:
        """Cosine distance from the unit vector ``feat`` to the closest sample of a track's gallery."""
        gallery = self._ds.tracker.metric.samples.get(track_id)
        if not gallery:
            return float("inf")
        g = np.asarray(gallery, np.float32)
        g = g / np.maximum(np.linalg.norm(g, axis=1, keepdims=True), 1e-9)
        return float(1.0 - (g @ feat).max())

    def rescale(self, sx: float, sy: float) -> None:
        """The frames are now scaled by (sx, sy) (a WebRTC resolution change): move every track
        with them, so faces keep their IDs."""
        S = np.diag([sx, sy, sx / sy, sy] * 2)  # (cx, cy, aspect, h) and their velocities
        for tr in self._ds.tracker.tracks:
            tr.mean = S @ tr.mean
            tr.covariance = S @ tr.covariance @ S.T
        for k, b in self._last_box.items():
            self._last_box[k] = b * np.array([sx, sy, sx, sy], np.float32)

    def reset(self) -> None:
        """Forget every track (IDs start again from 1)."""
        self._ds = self._make()
        self._ids: dict[str, int] = {}  # DeepSORT id -> our id (confirmed tracks only)
        self._last_box: dict[int, np.ndarray] = {}  # our id -> box where it was last seen
        self._last_seen: dict[int, float] = {}  # our id -> time it was last detected (seconds)
        self._next_id = 1
        self._last_t: float | None = None
        self._dt = 1 / 30
