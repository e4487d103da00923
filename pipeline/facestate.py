"""Per-face states over time: eye openness, blinks, PERCLOS, yawns, looking away, drowsy, attentive.

One :class:`FaceState` per track, fed the frame's measures
(:func:`tracker.facegeom.measures`) with the frame time.  Everything is in
seconds, so the results hold at any frame rate; a frame without measures
(no landmarks: a small face, a predicted row, a frame skipped by
``landmarks.interval_s``) changes nothing but the clock.

Two eye signals.  By default (``eye_signal="blendshapes"``) the eyes are read from the blendshape
model's ``eyeBlinkLeft``/``eyeBlinkRight`` (:mod:`tracker.facemesh`), which tells a smile's squint
from a closing lid where the eye aspect ratio cannot (on the real videos of
``benchmarks/groundtruth/blinks.json`` eyeBlink stays at 0.05-0.15 through a broad smile and reaches
0.35-0.6 in a blink; the ratio falls by a quarter in the smile):

* **Eye openness** ``eye_open_r``/``eye_open_l`` = 1 at eyeBlink <= :data:`BS_OPEN`, 0 at
  >= :data:`BS_SHUT`, linear between (no personal baseline is needed: the model's open level is
  0.02-0.2 on every real face measured).
* **Blinks**: eyeBlink (mean of both eyes) rising :data:`BS_BLINK_RISE` above its lowest value over
  the previous second (from open eyes, that value <= :data:`BS_OPEN_MAX`) and falling back half way
  within :data:`BLINK_MAX_S`.
* **Eyes closed** (PERCLOS, long closures): openness <= 0.2, but never while the face smiles
  (``smile`` >= :data:`SMILE_GATE` at some measure in the last :data:`SMILE_HOLD_S`): laughing
  narrows the eyes (eyeBlink reads 0.5-0.9 on real laughing faces), and a laughing face is not drowsy.

With ``eye_signal="ratio"`` (the earlier measure, for comparison and for landmarks without
blendshapes):

* **Eye openness** (``eye_open_r``/``eye_open_l``, 0 closed .. 1 this person's
  open eyes): EAR over the person's own open-eye baseline, the 90th percentile
  of their frontal EAR over the last :data:`BASELINE_WINDOW_S` seconds; for the
  first :data:`BASELINE_MIN_S` seconds, while it is learned, an average open eye
  (:data:`POPULATION_OPEN_EAR`).  It assumes the eyes are open most of the
  time.  The face-mesh model never closes an eye completely: fully shut lids give about
  :data:`CLOSED_RATIO` of the open EAR (measured on the blinks of the real
  videos in ``benchmarks/groundtruth/blinks.json``), so that ratio maps to 0.
* **Blinks**: a dip of the mean EAR below :data:`BLINK_DROP` of its highest
  value over the previous second (from open eyes, EAR >= :data:`MIN_OPEN_EAR`)
  that wins back half the drop (:data:`BLINK_RECOVER`) within
  :data:`BLINK_MAX_S`; its duration is the time spent below half the dip's
  depth (one frame interval at least).  Relative to the recent level, so a smile (a slow,
  lasting squint) is not a blink, and a blink into a smile still counts.
  Tuned on the real videos of ``benchmarks/groundtruth/blinks.json``.  ``blinks`` counts them, ``blink_rate`` is
  per minute over the last 60 s, ``blink_s`` the duration of the last one.
* **PERCLOS**: share of the measured time in the last 60 s with the eyes at
  least 80 % closed (openness <= 0.2); NaN until 10 s were measured.
* **Yawns**: the jaw wide open, ``jawOpen`` >= :data:`YAWN_JAW_OPEN` and then above
  :data:`YAWN_JAW_CLOSE`, for at least :data:`YAWN_JAW_MIN_S`.  A laugh opens the lips but not the jaw
  that far (``jawOpen`` at most 0.42 on the real laughing faces), and a yawn stretches the mouth's corners
  (``mouthSmile`` 0.15-0.88 through the real yawn of :mod:`testkit.yawn`), so there is no smile gate.
  ``yawn_signal="lips"`` keeps the earlier measure for comparison: the lip gap over the mouth's width
  above :data:`YAWN_OPEN` for 1.5 s, not while smiling; it misses that yawn (the smile gate, and its
  lips are that wide open for about 1.3 s).
* **Looking away**: |yaw| or |pitch| beyond the configured limits for
  ``away_s``; back after 0.5 s within them.
* **Drowsy**: on when PERCLOS reaches ``drowsy_perclos``, an eye closure lasts
  1 s, or 3 yawns fall within 5 minutes, once the face has been measured for
  ``PERCLOS_MIN_S`` (10 s: before that its open-eye baseline is not its own);
  off when none of these held for 10 s.
* **Attentive**: facing the camera (not looking away), eyes not closed for
  longer than a blink, and not drowsy.

State changes are reported as events ``(track_id, state, "start"|"end", time_s)``.
"""
from __future__ import annotations

import math
from collections import deque

import numpy as np

BASELINE_WINDOW_S = 60.0
BASELINE_MIN_S = 2.0
POPULATION_OPEN_EAR = 0.30  # an average open eye (neutral open eyes measured 0.25-0.42); stills use it too
CLOSED_RATIO = 0.35  # EAR of shut eyes / open EAR with the 478-point model (0.22-0.51 measured; 0.55 with the 468)
CLOSED80 = 0.2  # openness at or below: "at least 80 % closed" (PERCLOS P80)
BLINK_DROP, BLINK_RECOVER, BLINK_MAX_S = 0.85, 0.5, 0.6
MIN_OPEN_EAR = 0.22  # a blink starts from open eyes
LONG_CLOSURE_S = 1.0
PERCLOS_WINDOW_S, PERCLOS_MIN_S = 60.0, 10.0
YAWN_OPEN, YAWN_CLOSE, YAWN_MIN_S = 0.65, 0.45, 1.5  # the lip rule (yawn_signal="lips", the earlier measure)
#: the jawOpen rule (the default): jawOpen at or above YAWN_JAW_OPEN, then above YAWN_JAW_CLOSE, for YAWN_JAW_MIN_S.
#: On a real yawn (testkit.yawn) jawOpen holds 0.89-0.97 while the mouth is wide open and is 0.7 or more for
#: about 1.2 s; laughing and smiling faces reach at most 0.42, CK+'s surprised mouths 0.41-0.82
#: (python -m benchmarks.face_states, "yawns").
YAWN_JAW_OPEN, YAWN_JAW_CLOSE, YAWN_JAW_MIN_S = 0.7, 0.4, 1.0
FRONTAL_DEG = 20.0  # baseline samples only from faces within this yaw/pitch
MAX_DT = 0.5  # a gap between measures longer than this counts as this much
STATES = ("eyes_closed", "yawning", "looking_away", "drowsy", "attentive")
# the blendshape eye signal (eyeBlink*), measured on the real videos of benchmarks/groundtruth/blinks.json
BS_OPEN, BS_SHUT = 0.10, 0.55  # eyeBlink of open eyes (0.02-0.2 measured) and of shut lids (0.5-0.7)
BS_BLINK_RISE, BS_OPEN_MAX = 0.15, 0.35  # a blink: eyeBlink up by this from a level at most this
SMILE_GATE, SMILE_HOLD_S = 0.25, 1.0  # mean mouthSmile at or above within the last second: smiling (the eyes
#                                       are not "closed", the mouth is not yawning); a laughing face's score
#                                       jitters between 0.3 and 0.95 from frame to frame (measured)


def blendshape_openness(blink: np.ndarray) -> np.ndarray:
    """Eye openness 0-1 from eyeBlink scores (see the module doc)."""
    return np.clip((BS_SHUT - np.asarray(blink, np.float32)) / (BS_SHUT - BS_OPEN), 0, 1).astype(np.float32)


class FaceState:
    """The time-based state of one face (see the module doc)."""

    def __init__(self, cfg, eye_signal: str = "blendshapes", yawn_signal: str = "jaw"):
        self.cfg = cfg
        self.eye_signal = eye_signal
        self.yawn_signal = yawn_signal
        self.base = deque()  # (t, ear_r, ear_l) frontal samples, decimated to 10 a second
        self.base_r = self.base_l = POPULATION_OPEN_EAR
        self._learned = False
        self._base_next = 0.0
        self.ref = deque()  # (t, ear) the last second, for blinks
        self.last_t: float | None = None
        self.blinks = 0
        self.blink_times = deque()
        self.blink_s = math.nan
        self._dip_t: float | None = None  # a blink in progress: when the dip began
        self.perclos_buf = deque()  # (t, dt, closed)
        self.closed_since: float | None = None
        self.long_closure_t = -math.inf
        self.yawns = 0
        self.yawn_times = deque()
        self._mouth_since: float | None = None
        self._away_since: float | None = None
        self._back_since: float | None = None
        self.flags = dict.fromkeys(STATES, False)
        self._drowsy_clear_since: float | None = None
        self.measured = False
        self._smile_t = -math.inf  # when the face last smiled

    # -- helpers --------------------------------------------------------
    def _learn(self, t, ear_r, ear_l, yaw, pitch):
        if abs(yaw) <= FRONTAL_DEG and abs(pitch) <= FRONTAL_DEG and t >= self._base_next:
            self.base.append((t, ear_r, ear_l))
            self._base_next = t + 0.1
            while self.base and self.base[0][0] < t - BASELINE_WINDOW_S:
                self.base.popleft()
            ready = self.base and self.base[-1][0] - self.base[0][0] >= BASELINE_MIN_S
            if ready and (len(self.base) % 5 == 0 or not self._learned):  # twice a second
                arr = np.array([(r, l) for _, r, l in self.base], np.float64)
                self.base_r, self.base_l = np.nanpercentile(arr, 90, axis=0)
                self._learned = True

    def _openness(self, ear, base):
        if not (math.isfinite(ear) and math.isfinite(base) and base > 0):
            return math.nan
        return min(max((ear / base - CLOSED_RATIO) / (1 - CLOSED_RATIO), 0.0), 1.2)

    def _blink(self, t, ear):
        ref_vals = [e for tt, e in self.ref if tt >= t - 1.0]
        self.ref.append((t, ear))
        while self.ref and self.ref[0][0] < t - 1.0:
            self.ref.popleft()
        if self._dip_t is None:
            if not ref_vals:
                return
            level = max(ref_vals)
            if ear < BLINK_DROP * level and level >= MIN_OPEN_EAR:
                self._dip_t, self._dip_level, self._dip = t, level, [(t, ear)]
            return
        self._dip.append((t, ear))
        low = min(e for _, e in self._dip)
        if ear >= low + BLINK_RECOVER * (self._dip_level - low):
            self._dip_t = None
            # the duration at half depth: from the first sample below it to the first one back above it
            half = (low + self._dip_level) / 2
            below = [tt for tt, e in self._dip if e <= half]
            after = [tt for tt, e in self._dip if e > half and tt > below[0]]
            dur = (after[0] if after else t) - below[0]
            if t - self._dip[0][0] <= BLINK_MAX_S:
                self.blinks += 1
                self.blink_s = dur
                self.blink_times.append(t)
        elif t - self._dip_t > BLINK_MAX_S:
            self._dip_t = None  # a long closure or a change of expression, not a blink
            self.ref.clear()

    def _blink_bs(self, t, c):
        """The blink detector on eyeBlink (``c``: closure, up is closing)."""
        ref_vals = [e for tt, e in self.ref if tt >= t - 1.0]
        self.ref.append((t, c))
        while self.ref and self.ref[0][0] < t - 1.0:
            self.ref.popleft()
        if self._dip_t is None:
            if not ref_vals:
                return
            level = min(ref_vals)
            if c > level + BS_BLINK_RISE and level <= BS_OPEN_MAX:
                self._dip_t, self._dip_level, self._dip = t, level, [(t, c)]
            return
        self._dip.append((t, c))
        peak = max(e for _, e in self._dip)
        if c <= peak - BLINK_RECOVER * (peak - self._dip_level):
            self._dip_t = None
            half = (peak + self._dip_level) / 2
            above = [tt for tt, e in self._dip if e >= half]
            after = [tt for tt, e in self._dip if e < half and tt > above[0]]
            dur = (after[0] if after else t) - above[0]
            if t - self._dip[0][0] <= BLINK_MAX_S:
                self.blinks += 1
                self.blink_s = dur
                self.blink_times.append(t)
            self.ref.clear()  # the next blink rises from here: a slow reopening is not a second one
            self.ref.append((t, c))
        elif t - self._dip_t > BLINK_MAX_S:
            self._dip_t = None
            self.ref.clear()

    # -- one frame --------------------------------------------------------
    def update(self, t: float, m: dict | None) -> dict:
        """Feed one frame's measures (None: none this frame); returns this face's columns."""
        cfg = self.cfg
        dt = 0.0 if self.last_t is None else min(max(t - self.last_t, 0.0), MAX_DT)
        out = {"eye_open_r": math.nan, "eye_open_l": math.nan}
        if m is not None and math.isfinite(m["yaw"]):
            self.measured = True
            self.last_t = t
            ear_r, ear_l, yaw, pitch = m["ear_r"], m["ear_l"], m["yaw"], m["pitch"]
            smile = m.get("smile", math.nan)
            if math.isfinite(smile) and smile >= SMILE_GATE:
                self._smile_t = t
            smiling = t - self._smile_t <= SMILE_HOLD_S
            b_r, b_l = m.get("blink_r", math.nan), m.get("blink_l", math.nan)
            if self.eye_signal == "blendshapes" and math.isfinite(b_r) and math.isfinite(b_l):
                eyes = math.isfinite(ear_r) and math.isfinite(ear_l)  # NaN in profile: the lids are edge-on
                if eyes:
                    self._blink_bs(t, (b_r + b_l) / 2)
                    o_r, o_l = (min(max((BS_SHUT - b) / (BS_SHUT - BS_OPEN), 0.0), 1.0) for b in (b_r, b_l))
                else:
                    o_r = o_l = math.nan
            else:  # the earlier measure, as it was: it knows no smile
                smiling = False
                eyes = math.isfinite(ear_r) and math.isfinite(ear_l)
                if eyes:
                    self._learn(t, ear_r, ear_l, yaw, pitch)
                    self._blink(t, (ear_r + ear_l) / 2)
                o_r, o_l = self._openness(ear_r, self.base_r), self._openness(ear_l, self.base_l)
            out["eye_open_r"], out["eye_open_l"] = o_r, o_l
            both = [v for v in (o_r, o_l) if math.isfinite(v)]
            o = sum(both) / len(both) if both else math.nan
            if math.isfinite(o):
                closed = o <= CLOSED80 or (self.flags["eyes_closed"] and o <= CLOSED80 + 0.1)  # hysteresis
                closed = closed and not smiling
                self.perclos_buf.append((t, dt, closed))
                if closed:
                    self.closed_since = t if self.closed_since is None else self.closed_since
                    if t - self.closed_since >= LONG_CLOSURE_S:
                        self.long_closure_t = t
                else:
                    self.closed_since = None
                self.flags["eyes_closed"] = closed
            # yawns: jawOpen (the default), or the lip gap (the earlier measure)
            jaw = m.get("jaw_open", math.nan)
            if self.yawn_signal == "jaw" and math.isfinite(jaw):
                mo, gate, (open_, close, min_s) = jaw, False, (YAWN_JAW_OPEN, YAWN_JAW_CLOSE, YAWN_JAW_MIN_S)
            else:
                mo, gate, (open_, close, min_s) = m["mouth_open"], smiling, (YAWN_OPEN, YAWN_CLOSE, YAWN_MIN_S)
            if math.isfinite(mo):
                if not gate and (mo >= open_ or (self._mouth_since is not None and mo > close)):
                    self._mouth_since = t if self._mouth_since is None else self._mouth_since
                    if not self.flags["yawning"] and t - self._mouth_since >= min_s:
                        self.flags["yawning"] = True
                        self.yawns += 1
                        self.yawn_times.append(t)
                else:
                    self._mouth_since = None
                    self.flags["yawning"] = False
            # looking away, with hysteresis in time
            away = abs(yaw) > cfg.away_yaw_deg or abs(pitch) > cfg.away_pitch_deg
            if away:
                self._back_since = None
                self._away_since = t if self._away_since is None else self._away_since
                if t - self._away_since >= cfg.away_s:
                    self.flags["looking_away"] = True
            else:
                self._away_since = None
                self._back_since = t if self._back_since is None else self._back_since
                if t - self._back_since >= 0.5:
                    self.flags["looking_away"] = False
        while self.perclos_buf and self.perclos_buf[0][0] < t - PERCLOS_WINDOW_S:
            self.perclos_buf.popleft()
        for dq, span in ((self.blink_times, 60.0), (self.yawn_times, 300.0)):
            while dq and dq[0] < t - span:
                dq.popleft()
        total = sum(d for _, d, _ in self.perclos_buf)
        perclos = sum(d for _, d, c in self.perclos_buf if c) / total if total >= PERCLOS_MIN_S else math.nan
        if self.measured:
            # no verdict before PERCLOS_MIN_S of measures: the open-eye baseline is not this person's yet
            # (a smile's narrowed eyes or a cry's shut ones in the first seconds are not drowsiness)
            reason = total >= PERCLOS_MIN_S and ((math.isfinite(perclos) and perclos >= cfg.drowsy_perclos)
                                                 or t - self.long_closure_t < 0.1 or len(self.yawn_times) >= 3)
            if reason:
                self.flags["drowsy"] = True
                self._drowsy_clear_since = None
            elif self.flags["drowsy"]:
                self._drowsy_clear_since = t if self._drowsy_clear_since is None else self._drowsy_clear_since
                if t - self._drowsy_clear_since >= 10.0:
                    self.flags["drowsy"] = False
            long_closed = self.closed_since is not None and t - self.closed_since >= LONG_CLOSURE_S
            self.flags["attentive"] = not (self.flags["looking_away"] or self.flags["drowsy"] or long_closed)
        out.update(
            blinks=float(self.blinks) if self.measured else math.nan,
            blink_rate=len(self.blink_times) * 60.0 / total if total >= PERCLOS_MIN_S else math.nan,
            blink_s=self.blink_s,
            perclos=perclos,
            yawns=float(self.yawns) if self.measured else math.nan,
        )
        for s in STATES:
            out[s] = float(self.flags[s]) if self.measured else math.nan
        return out


#: The columns :meth:`FaceStates.update` fills, in order (all float, NaN: no value).
COLUMNS = ("eye_open_r", "eye_open_l", "blinks", "blink_rate", "blink_s", "perclos", "yawns") + STATES


class FaceStates:
    """:class:`FaceState` of every track of one stream, and the events when a state starts or ends."""

    def __init__(self, cfg, eye_signal: str = "blendshapes", yawn_signal: str = "jaw"):
        self.cfg = cfg
        self.eye_signal = eye_signal
        self.yawn_signal = yawn_signal
        self.faces: dict[int, FaceState] = {}

    def update(self, t: float, track_ids, meas: dict[str, np.ndarray], has: np.ndarray
               ) -> tuple[dict[str, np.ndarray], list[tuple]]:
        """Columns for the faces ``track_ids`` at time ``t`` (``has[i]``: face i was measured)."""
        n = len(track_ids)
        cols = {c: np.full(n, np.nan, np.float32) for c in COLUMNS}
        events = []
        for i, tid in enumerate(int(v) for v in track_ids):
            st = self.faces.get(tid)
            if st is None:
                st = self.faces[tid] = FaceState(self.cfg, self.eye_signal, self.yawn_signal)
            before = dict(st.flags)
            row = st.update(t, {k: float(v[i]) for k, v in meas.items()} if has[i] else None)
            for c in COLUMNS:
                cols[c][i] = row[c]
            events += [(tid, s, "start" if st.flags[s] else "end", float(t))
                       for s in STATES if st.flags[s] != before[s]]
        return cols, events

    def drop(self, track_ids, t: float) -> list[tuple]:
        """Forget these tracks; their open states end at ``t``."""
        events = []
        for tid in track_ids:
            st = self.faces.pop(int(tid), None)
            if st is not None:
                events += [(int(tid), s, "end", float(t)) for s in STATES if st.flags[s]]
        return events

    def end_all(self, t: float) -> list[tuple]:
        """Every open state ends at ``t`` (the stage is switched off); counts and baselines are kept."""
        events = []
        for tid, st in self.faces.items():
            for s in STATES:
                if st.flags[s]:
                    st.flags[s] = False
                    events.append((tid, s, "end", float(t)))
            st._away_since = st._back_since = st.closed_since = st._mouth_since = st._dip_t = None
            st.last_t = None
        return events

    def reset(self) -> None:
        self.faces.clear()
