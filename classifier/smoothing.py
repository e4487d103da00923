"""Per-track temporal smoothing of class probabilities, driven by timestamps.

* **EMA with a half-life in seconds**: each new frame moves the smoothed
  vector towards the raw one by ``alpha = 1 - 0.5 ** (dt / half_life)``.  Since
  ``alpha`` depends on the time step, not on the frame count, the result is the
  same at 5 fps and at 30 fps (a 0.5 s half-life means: after half a second
  the old estimate weighs half).  ``half_life_s = 0`` turns smoothing off.
* **Hysteresis on the label**: the shown label only changes when another class
  beats it by ``margin`` (in probability), so two close classes don't make the
  label flicker.
* State is per track and is dropped with :meth:`drop` when the track ends.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from common.checks import number, validate


@dataclass(frozen=True)
class SmoothingConfig:
    """Smoothing settings, checked when made; times in seconds.

    Defaults chosen with benchmarks/smoothing.py (flicker against lag on real model outputs).
    """

    half_life_s: float = 0.1  # EMA half-life in seconds; 0 turns smoothing off
    margin: float = 0.2  # a new label must lead the shown one by this much probability

    def __post_init__(self):
        validate(self, "smoothing", {"half_life_s": number(0.0, 60.0), "margin": number(0.0, 1.0)})


@dataclass
class _State:
    probs: np.ndarray
    label: int
    t: float


class ProbabilitySmoother:
    def __init__(self, half_life_s: float = SmoothingConfig.half_life_s, margin: float = SmoothingConfig.margin):
        if half_life_s < 0 or margin < 0:
            raise ValueError("half_life_s and margin must be >= 0")
        self.half_life_s = float(half_life_s)
        self.margin = float(margin)
        self._state: dict[int, _State] = {}

    def __len__(self) -> int:
        return len(self._state)

    @property
    def track_ids(self) -> list[int]:
        return list(self._state)

    def alpha(self, dt: float) -> float:
        if self.half_life_s <= 0:
            return 1.0
        if dt <= 0:
            return 0.0
        return float(1.0 - 0.5 ** (dt / self.half_life_s))

    def update(self, track_id: int, probs: np.ndarray, t: float) -> tuple[np.ndarray, int]:
        """Feed one raw probability vector; returns (smoothed, label index)."""
        probs = np.asarray(probs, np.float32)
        st = self._state.get(track_id)
        if st is None or st.probs.shape != probs.shape:
            st = _State(probs.copy(), int(np.argmax(probs)), t)
            self._state[track_id] = st
            return st.probs.copy(), st.label
        a = self.alpha(t - st.t)
        st.probs = (1 - a) * st.probs + a * probs
        st.probs /= max(float(st.probs.sum()), 1e-9)
        st.t = max(t, st.t)
        best = int(np.argmax(st.probs))
        if best != st.label and st.probs[best] - st.probs[st.label] > self.margin:
            st.label = best
        return st.probs.copy(), st.label

    def update_many(self, track_ids, raw: np.ndarray, t: float) -> tuple[np.ndarray, np.ndarray]:
        """Smooth every row of ``raw`` (one per track); returns (smoothed, labels)."""
        sm = np.empty_like(np.asarray(raw, np.float32))
        labels = np.empty(len(sm), np.int64)
        for i, tid in enumerate(track_ids):
            sm[i], labels[i] = self.update(int(tid), raw[i], t)
        return sm, labels

    def hold(self, track_ids, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
        """The current (smoothed, labels) of ``track_ids`` without a new measurement (NaN/-1 if unknown)."""
        sm = np.full((len(track_ids), n_classes), np.nan, np.float32)
        labels = np.full(len(track_ids), -1, np.int64)
        for i, tid in enumerate(track_ids):
            st = self._state.get(int(tid))
            if st is not None and st.probs.shape == (n_classes,):
                sm[i], labels[i] = st.probs, st.label
        return sm, labels

    def drop(self, track_ids) -> None:
        for tid in track_ids:
            self._state.pop(int(tid), None)

    def reset(self) -> None:
        self._state.clear()
