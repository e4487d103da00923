"""The one typed result that flows through the pipeline, one per frame.

Column-oriented, in the style of ``supervision.Detections``: every stage reads
the arrays the previous stage filled and fills its own, so there is no dict
passing and no per-face objects on the hot path.  ``len(result)`` is the number
of faces; ``result[i]`` or iteration gives light per-face views.

Every per-face column has one row per face, checked when a result is built
and after every stage (:meth:`FrameResult.check`); ``track_ids`` and
``predicted`` are always there.  Stage by stage (:mod:`pipeline.stages`,
:mod:`pipeline.landmarks`; :class:`pipeline.Pipeline` runs them in this order):

* detection fills ``boxes`` (x1, y1, x2, y2 pixels), ``scores``, ``keypoints``
  (``track_ids`` 0: no ID yet);
* tracking keeps the faces that belong to a confirmed track, in the same order,
  fills ``track_ids`` (small integers from 1, per stream), and appends the
  confirmed faces the detector missed in this frame, for a moment
  (``tracking.hold_s``), at the box their track predicts, with ``predicted`` True;
* classification fills ``raw`` (N, C): this frame's class probabilities (NaN
  rows for predicted faces: nothing was measured);
* smoothing fills ``smoothed`` (N, C) and ``labels`` (index into ``classes``),
  holding a predicted face's as they were;
* the landmark stage (:mod:`pipeline.landmarks`, ``landmarks.enabled``) fills
  ``landmarks`` (N, 478, 3: the face mesh and the irises), ``blendshapes`` (N, 52: the scores of
  :data:`tracker.facemesh.BLENDSHAPES`, ARKit's names) and ``measures``: the per-face measure and state
  columns of :data:`FACE_COLUMNS` (each (N,) float32, NaN: no value - the stage is off,
  the face is too small or not measured in this frame) and ``state_events``.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Iterator

import numpy as np

_EMPTY_F = np.zeros((0,), np.float32)


#: Per-face measure and state columns, (N,) float32 each, NaN for "no value" (see ``export/SCHEMA.md``):
#: eye openness per eye (0 shut .. 1 this person's open eyes; ``_r``/``_l``: the person's right/left eye),
#: mouth opening, head pose (degrees), blink count / rate per minute / last blink's duration (s),
#: PERCLOS (0-1), yawn count, and the states as 0/1; then gaze relative to the head (degrees) and looking
#: at the camera (0/1), and three actions from the blendshapes (0-1): smile, brow raise, frown.
FACE_COLUMNS = ("eye_open_r", "eye_open_l", "mouth_open", "yaw", "pitch", "roll",
                "blinks", "blink_rate", "blink_s", "perclos", "yawns",
                "eyes_closed", "yawning", "looking_away", "drowsy", "attentive",
                "gaze_yaw", "gaze_pitch", "looking_at_camera", "smile", "brow_raise", "frown")


def face_columns_empty(n: int) -> dict[str, np.ndarray]:
    return {c: np.full(n, np.nan, np.float32) for c in FACE_COLUMNS}


def prob_columns(classes, kind: str = "p") -> list[str]:
    """Column names of a probability vector in tables: ``p_<class>`` (smoothed) or ``raw_<class>``."""
    return [f"{kind}_{c}" for c in classes]


@dataclass
class FaceView:
    """One face of a :class:`FrameResult` (a read-only view for convenience)."""

    track_id: int
    box: tuple[float, float, float, float]
    score: float
    raw: dict[str, float]
    smoothed: dict[str, float]
    label: str
    label_prob: float
    predicted: bool = False  # not detected in this frame: the box is the track's prediction
    measures: dict[str, float | None] = field(default_factory=dict)  # FACE_COLUMNS values (None: no value)
    blendshapes: dict[str, float] = field(default_factory=dict)  # ARKit name -> score 0-1 ({}: not measured)
    iris: tuple | None = None  # ((x, y) the person's right iris centre, (x, y) left), frame pixels

    def to_dict(self) -> dict:
        return {
            "track_id": self.track_id,
            "predicted": self.predicted,
            "box": [round(float(v), 1) for v in self.box],
            "score": round(float(self.score), 4),
            "label": self.label,
            "label_prob": round(float(self.label_prob), 4),
            "probs": {k: round(v, 4) for k, v in self.smoothed.items()},
            "raw_probs": {k: (round(v, 4) if np.isfinite(v) else None) for k, v in self.raw.items()},
            **({"measures": self.measures} if self.measures else {}),
            **({"blendshapes": self.blendshapes} if self.blendshapes else {}),
            **({"iris": [[round(float(v), 1) for v in c] for c in self.iris]} if self.iris else {}),
        }


@dataclass
class FrameResult:
    """Everything the pipeline knows about one frame."""

    index: int
    timestamp: float
    width: int
    height: int
    classes: tuple[str, ...] = ()
    boxes: np.ndarray = field(default_factory=lambda: np.zeros((0, 4), np.float32))
    scores: np.ndarray = field(default_factory=lambda: _EMPTY_F.copy())
    keypoints: np.ndarray = field(default_factory=lambda: np.zeros((0, 6, 2), np.float32))
    track_ids: np.ndarray = field(default_factory=lambda: np.zeros((0,), np.int64))
    predicted: np.ndarray = field(default_factory=lambda: np.zeros((0,), bool))
    raw: np.ndarray | None = None
    smoothed: np.ndarray | None = None
    labels: np.ndarray | None = None
    timings_ms: dict[str, float] = field(default_factory=dict)
    model_id: str = ""
    model_card: dict | None = None  # classifier.spec.ModelSpec.card(): id, version, test accuracy
    ended_tracks: tuple[int, ...] = ()
    warnings: tuple[str, ...] = ()
    landmarks: np.ndarray | None = None  # (N, 478, 3) frame pixels (z: depth), NaN rows: none; None: stage off
    blendshapes: np.ndarray | None = None  # (N, 52) scores of tracker.facemesh.BLENDSHAPES, NaN rows: none
    measures: dict[str, np.ndarray] = field(default_factory=dict)  # FACE_COLUMNS -> (N,) float32; {}: stage off
    #: (track_id, state, "start" | "end", time_s) for every state that began or ended in this frame.
    state_events: tuple[tuple, ...] = ()
    #: Track IDs whose face was handed to a track again after a gap without a sure appearance match:
    #: what was learnt about them (smoothing, face states) starts afresh.
    restarted_tracks: tuple[int, ...] = ()
    #: The tracker started afresh before this frame (another tracking setup): every earlier ID ended.
    tracks_reset: bool = False
    #: The detector ran on this frame (False: the last detected frame's boxes and IDs were carried over,
    #: ``detection.detect_every``).
    detected: bool = True

    def __post_init__(self):
        self.check()

    def check(self, stage: str = "") -> "FrameResult":
        """Raise ``ValueError`` unless every per-face column has one row per face (``len(boxes)``).

        Run when a result is built, and by :class:`pipeline.Pipeline` after every stage (``stage``
        names the one that broke the rule)."""
        n = len(self.boxes)
        C = len(self.classes)
        want = {"boxes": (self.boxes, (n, 4)), "scores": (self.scores, (n,)),
                "keypoints": (self.keypoints, (n, 6, 2)), "track_ids": (self.track_ids, (n,)),
                "predicted": (self.predicted, (n,))}
        if self.raw is not None:
            want["raw"] = (self.raw, (n, C))
        if self.smoothed is not None:
            want["smoothed"] = (self.smoothed, (n, C))
        if self.labels is not None:
            want["labels"] = (self.labels, (n,))
        bad = [f"{k} {tuple(np.shape(a))} (wanted {shape})" for k, (a, shape) in want.items() if np.shape(a) != shape]
        if self.landmarks is not None and len(self.landmarks) != n:
            bad.append(f"landmarks {self.landmarks.shape} (wanted {n} rows)")
        if self.blendshapes is not None and np.shape(self.blendshapes) != (n, 52):
            bad.append(f"blendshapes {np.shape(self.blendshapes)} (wanted ({n}, 52))")
        bad += [f"measures[{k!r}] {np.shape(v)} (wanted ({n},))" for k, v in self.measures.items() if np.shape(v) != (n,)]
        if bad:
            where = f" after the {stage} stage" if stage else ""
            raise ValueError(f"FrameResult{where}: every per-face column needs one row per face ({n}): " + "; ".join(bad))
        return self

    def with_faces(self, boxes: np.ndarray, scores: np.ndarray, keypoints: np.ndarray) -> "FrameResult":
        """This frame with a new set of faces (a detector's): no IDs yet (0), none predicted, nothing measured."""
        n = len(boxes)
        return replace(self, boxes=np.asarray(boxes, np.float32).reshape(n, 4),
                       scores=np.asarray(scores, np.float32).reshape(n),
                       keypoints=np.asarray(keypoints, np.float32).reshape(n, 6, 2),
                       track_ids=np.zeros(n, np.int64), predicted=np.zeros(n, bool), raw=None, smoothed=None,
                       labels=None, landmarks=None, blendshapes=None, measures={})

    def __len__(self) -> int:
        return int(self.boxes.shape[0])

    def subset(self, idx: np.ndarray | list[int]) -> "FrameResult":
        """The same frame with only the faces at ``idx`` (in that order)."""
        idx = np.asarray(idx, dtype=np.int64)

        def take(a):
            return None if a is None else a[idx]

        return replace(
            self,
            boxes=self.boxes[idx],
            scores=self.scores[idx],
            keypoints=self.keypoints[idx],
            predicted=self.predicted[idx],
            track_ids=self.track_ids[idx],
            raw=take(self.raw),
            smoothed=take(self.smoothed),
            labels=take(self.labels),
            landmarks=take(self.landmarks),
            blendshapes=take(self.blendshapes),
            measures={k: v[idx] for k, v in self.measures.items()},
        )

    def face(self, i: int) -> FaceView:
        classes = self.classes
        raw = self.raw[i] if self.raw is not None else np.zeros(len(classes), np.float32)
        sm = self.smoothed[i] if self.smoothed is not None else raw
        if self.labels is not None:
            li = int(self.labels[i])
        else:
            li = int(np.argmax(sm)) if len(classes) else -1
        return FaceView(
            track_id=int(self.track_ids[i]),
            box=tuple(float(v) for v in self.boxes[i]),
            score=float(self.scores[i]),
            raw={c: float(p) for c, p in zip(classes, raw)},
            smoothed={c: float(p) for c, p in zip(classes, sm)},
            label=classes[li] if li >= 0 else "",
            label_prob=float(sm[li]) if li >= 0 else 0.0,
            predicted=bool(self.predicted[i]),
            measures={k: (round(float(v[i]), 4) if np.isfinite(v[i]) else None) for k, v in self.measures.items()},
            blendshapes=self._blendshapes(i),
            iris=self._iris(i),
        )

    def _blendshapes(self, i: int) -> dict[str, float]:
        from tracker.facemesh import BLENDSHAPES

        b = self.blendshapes
        if b is None or len(b) <= i or not np.isfinite(b[i, 0]):
            return {}
        return {n: round(float(v), 4) for n, v in zip(BLENDSHAPES, b[i]) if not n.startswith("_")}

    def _iris(self, i: int):
        lm = self.landmarks
        if lm is None or len(lm) <= i or lm.shape[1] < 478 or not np.isfinite(lm[i, 468, 0]):
            return None
        return tuple(tuple(float(v) for v in lm[i, k, :2]) for k in (468, 473))

    def __getitem__(self, i: int) -> FaceView:
        if not -len(self) <= i < len(self):
            raise IndexError(i)
        return self.face(i % len(self))

    def __iter__(self) -> Iterator[FaceView]:
        for i in range(len(self)):
            yield self.face(i)

    def to_dict(self) -> dict:
        """A JSON-ready description of the frame (what the API returns)."""
        return {
            "frame_index": self.index,
            "timestamp_s": round(float(self.timestamp), 4),
            "width": self.width,
            "height": self.height,
            "model": self.model_id,
            **({"model_card": dict(self.model_card)} if self.model_card else {}),
            "classes": list(self.classes),
            "faces": [f.to_dict() for f in self],
            "timings_ms": {k: round(v, 3) for k, v in self.timings_ms.items()},
            "warnings": list(self.warnings),
            **({"state_events": [{"track_id": e[0], "state": e[1], "event": e[2], "time_s": round(e[3], 4)}
                                 for e in self.state_events]} if self.state_events else {}),
        }
