"""Summaries of a timeline: per face track and for the whole group over time.

Definitions (all times in seconds, on the timeline's clock):

* **frame interval** ``step``: the median interval between consecutive
  processed frames (given by the caller, e.g. ``frame_step / fps``, or
  estimated from the data).
* Every row of a track *stands for* the time until the track's next row, but
  at most ``max_gap_s`` (default ``max(3 * step, 0.5)``); a longer gap means the
  face was not seen, and the row then stands for one ``step``.  The last row of a
  track stands for one ``step``.  So a face seen in N consecutive frames of a
  30 fps video is visible N/30 s, and processing every 2nd frame gives the same
  answer: the sum is robust to frame skipping and to variable frame rates.
* ``visible_s``: the sum of those row durations.  ``label_share``: the fraction
  of ``visible_s`` spent under each (smoothed, hysteresis) label.
  ``dominant``: the label with the largest share (ties: the higher mean
  probability).  ``mean_probs``: the mean smoothed probability over the track's rows.
* Session ``label_share``: the same over all faces' visible time (face-seconds);
  session ``mean_probs``: the mean over all rows.
* ``bins`` (the group's mood over time): for each ``bin_s`` interval with at
  least one face, the mean over the faces present of each face's mean smoothed
  probabilities in the interval (every face counts once, however many frames
  it was seen in), the number of faces and the dominant class.

:class:`SummaryBuilder` computes all of this incrementally with memory that
depends on the number of tracks and bins, not on the number of rows;
:func:`summarize` runs it over a DataFrame from :func:`export.timeline.read_timeline`.
"""
from __future__ import annotations

import json
import math
from array import array
from collections import deque
from pathlib import Path

import numpy as np

from pipeline.results import FACE_COLUMNS, prob_columns

from .files import AtomicFiles

SUMMARY_SCHEMA = "emotion-summary"
SUMMARY_VERSION = "1.2"  # 1.1: "face_states" per track and for the session; 1.2: "actions" per track

#: The facial actions summarised per track (mean and peak over the measured rows): the three action
#: columns of the timeline, and every blendshape (``bs_<name>``) when the timeline has them.
ACTIONS = ("smile", "brow_raise", "frown")


def _r(v, d=4):
    return None if v is None or not math.isfinite(v) else round(float(v), d)


#: The per-track face-state summary: time in each state, counts, PERCLOS (see SCHEMA.md).
_STATE_T = ("attentive", "looking_away", "drowsy", "eyes_closed")


class _Track:
    __slots__ = ("first", "frames", "label_t", "last", "last_label", "sum_p", "visible",
                 "state_t", "measured_t", "last_states", "blinks", "yawns", "perclos_sum", "perclos_n",
                 "act_sum", "act_n", "act_peak", "cam_n", "cam_on")

    def __init__(self, t, C):
        self.first = self.last = t
        self.frames = 0
        self.sum_p = np.zeros(C, np.float64)
        self.label_t = np.zeros(C, np.float64)
        self.visible = 0.0
        self.last_label = -1
        self.state_t = dict.fromkeys(_STATE_T, 0.0)
        self.measured_t = 0.0  # visible time with face states
        self.last_states: dict | None = None
        self.blinks = self.yawns = None
        self.perclos_sum, self.perclos_n = 0.0, 0
        self.act_sum: dict[str, float] = {}
        self.act_n: dict[str, int] = {}
        self.act_peak: dict[str, float] = {}
        self.cam_n = self.cam_on = 0  # measured rows, and those looking at the camera

    def add_actions(self, row: dict | None) -> None:
        """Mean and peak of each action over the rows where it was measured."""
        if not row:
            return
        for k, v in row.items():
            if (k in ACTIONS or k.startswith("bs_")) and math.isfinite(v):
                self.act_sum[k] = self.act_sum.get(k, 0.0) + v
                self.act_n[k] = self.act_n.get(k, 0) + 1
                self.act_peak[k] = max(self.act_peak.get(k, -math.inf), v)
        cam = row.get("looking_at_camera", math.nan)
        if math.isfinite(cam):
            self.cam_n += 1
            self.cam_on += int(cam == 1)

    def actions_dict(self) -> dict | None:
        """``{action: {"mean", "peak"}}`` (None: never measured) and the share of rows looking at the camera."""
        if not self.act_n:
            return None
        order = [k for k in ACTIONS if k in self.act_n] + sorted(k for k in self.act_n if k not in ACTIONS)
        out = {k: {"mean": _r(self.act_sum[k] / self.act_n[k]), "peak": _r(self.act_peak[k])} for k in order}
        out["looking_at_camera_share"] = _r(self.cam_on / self.cam_n) if self.cam_n else None
        return out

    def add_states(self, dur: float, row: dict | None) -> None:
        """The previous row's states last ``dur``; ``row`` (this row's face columns) takes over."""
        if self.last_states is not None:
            self.measured_t += dur
            for k in _STATE_T:
                if self.last_states.get(k) == 1:
                    self.state_t[k] += dur
        if row is None or not np.isfinite(row.get("attentive", np.nan)):
            self.last_states = None
            return
        self.last_states = row
        for k in ("blinks", "yawns"):
            if np.isfinite(row.get(k, np.nan)):
                setattr(self, k, max(getattr(self, k) or 0, int(row[k])))
        if np.isfinite(row.get("perclos", np.nan)):
            self.perclos_sum += float(row["perclos"])
            self.perclos_n += 1

    def states_dict(self, step: float) -> dict | None:
        if self.blinks is None and self.measured_t == 0:
            return None
        m = self.measured_t + (step if self.last_states is not None else 0.0)
        t = dict(self.state_t)
        if self.last_states is not None:
            for k in _STATE_T:
                if self.last_states.get(k) == 1:
                    t[k] += step
        return {"measured_s": _r(m, 4), "blinks": self.blinks,
                "blink_rate_per_min": _r(self.blinks * 60.0 / m, 2) if m >= 10 and self.blinks is not None else None,
                "perclos_mean": _r(self.perclos_sum / self.perclos_n) if self.perclos_n else None,
                "yawns": self.yawns, "drowsy_s": _r(t["drowsy"], 4), "eyes_closed_s": _r(t["eyes_closed"], 4),
                "attentive_share": _r(t["attentive"] / m) if m > 0 else None,
                "looking_away_share": _r(t["looking_away"] / m) if m > 0 else None}


class SummaryBuilder:
    """Accumulates the summary frame by frame (bounded memory)."""

    def __init__(self, classes, bin_s: float = 1.0, step_s: float | None = None, max_gap_s: float | None = None):
        self.classes = tuple(classes)
        self.C = len(self.classes)
        if bin_s <= 0:
            raise ValueError("bin_s must be > 0")
        self.bin_s = float(bin_s)
        self.step_s = step_s
        self.max_gap_s = max_gap_s
        self.tracks: dict[int, _Track] = {}
        self._intervals: deque = deque(maxlen=501)
        self._step_cache: float | None = None
        self._step_at = 0
        self.first_t: float | None = None
        self.last_t: float | None = None
        self.frames = 0
        self.rows = 0
        self._sum_p = np.zeros(self.C, np.float64)
        # closed bins, packed (about 40 bytes per bin): index, faces, C means each
        self._bin_ids = array("q")
        self._bin_faces = array("i")
        self._bin_means = array("f")
        self._bin_idx: int | None = None
        self._bin_acc: dict[int, list] = {}

    # -- timing ------------------------------------------------------------
    def step(self) -> float:
        if self.step_s:
            return float(self.step_s)
        n = len(self._intervals)
        if not n:
            return 0.0
        # the median of the last <=501 intervals, refreshed every 25 frames once warmed up
        if self._step_cache is None or n < 50 or self.frames - self._step_at >= 25:
            self._step_cache = float(np.median(self._intervals))
            self._step_at = self.frames
        return self._step_cache

    def gap_limit(self) -> float:
        if self.max_gap_s is not None:
            return float(self.max_gap_s)
        return max(3 * self.step(), 0.5)

    # -- input ---------------------------------------------------------------
    def add_frame(self, time_s: float, track_ids=(), labels=(), probs=None, states=None) -> None:
        """One processed frame: its faces' track IDs, label indices and (N, C) smoothed probabilities.

        Call it for frames without faces too (they count towards the frame
        interval and the session length).  Times must not decrease.  ``states``: the
        rows' face-state columns (``{column: (N,) array}``, see ``pipeline.results.FACE_COLUMNS``).
        """
        t = float(time_s)
        if self.last_t is not None:
            if t < self.last_t:
                raise ValueError("frame times must not decrease")
            if t > self.last_t:
                self._intervals.append(t - self.last_t)
        else:
            self.first_t = t
        self.last_t = t
        self.frames += 1
        n = len(track_ids)
        if n == 0:
            return
        probs = np.asarray(probs, np.float64).reshape(n, self.C)
        b = int(math.floor(t / self.bin_s + 1e-9))
        if self._bin_idx is not None and b != self._bin_idx:
            self._close_bin()
        self._bin_idx = b
        step = self.step()
        gap = float(self.max_gap_s) if self.max_gap_s is not None else max(3 * step, 0.5)
        for i, (tid, li, p) in enumerate(zip(track_ids, labels, probs)):
            tid, li = int(tid), int(li)
            tr = self.tracks.get(tid)
            dur = 0.0
            if tr is None:
                tr = self.tracks[tid] = _Track(t, self.C)
            else:
                dt = t - tr.last
                dur = dt if dt <= gap else step
                tr.visible += dur
                if tr.last_label >= 0:
                    tr.label_t[tr.last_label] += dur
            row = {k: float(v[i]) for k, v in states.items()} if states else None
            tr.add_states(dur, row)
            tr.add_actions(row)
            tr.last = t
            tr.last_label = li
            tr.frames += 1
            p = np.where(np.isfinite(p), p, 0.0)
            tr.sum_p += p
            self._sum_p += p
            self.rows += 1
            acc = self._bin_acc.get(tid)
            if acc is None:
                self._bin_acc[tid] = [p.copy(), 1]
            else:
                acc[0] += p
                acc[1] += 1

    def add_result(self, result) -> None:
        """One :class:`pipeline.FrameResult`."""
        n = len(result)
        if n == 0 or result.smoothed is None:
            self.add_frame(result.timestamp)
            return
        labels = result.labels if result.labels is not None else np.argmax(result.smoothed, axis=1)
        seen = ~result.predicted  # measured rows only
        states = {k: v[seen] for k, v in (getattr(result, "measures", None) or {}).items()}
        bs = getattr(result, "blendshapes", None)
        if states and bs is not None and len(bs) == n:
            from tracker.facemesh import BLENDSHAPES

            states.update({f"bs_{name}": bs[seen, j] for j, name in enumerate(BLENDSHAPES) if not name.startswith("_")})
        self.add_frame(result.timestamp, result.track_ids[seen], labels[seen], result.smoothed[seen], states)

    @staticmethod
    def _bin_means_of(acc) -> np.ndarray:
        return np.mean([s / n for s, n in acc.values()], axis=0)

    def _bin_dict(self, b, faces, means) -> dict:
        return {"start_s": _r(b * self.bin_s, 4), "end_s": _r((b + 1) * self.bin_s, 4), "faces": int(faces),
                "mean_probs": {c: _r(v) for c, v in zip(self.classes, means)},
                "dominant": self.classes[int(np.argmax(means))]}

    def _close_bin(self) -> None:
        if self._bin_acc:
            self._bin_ids.append(self._bin_idx)
            self._bin_faces.append(len(self._bin_acc))
            self._bin_means.extend(self._bin_means_of(self._bin_acc).astype(np.float32).tolist())
        self._bin_acc = {}

    # -- output --------------------------------------------------------------
    def _track_dict(self, tid: int, step: float) -> tuple[dict, np.ndarray]:
        """One track's summary, and the time it spent under each label."""
        tr, classes = self.tracks[tid], self.classes
        label_t = tr.label_t.copy()
        if tr.last_label >= 0:
            label_t[tr.last_label] += step
        visible = tr.visible + step
        mean_p = tr.sum_p / max(tr.frames, 1)
        share = label_t / visible if visible > 0 else np.zeros(self.C)
        dom = max(range(self.C), key=lambda i: (round(share[i], 9), mean_p[i]))
        return {
            "track_id": tid,
            "first_seen_s": _r(tr.first, 4),
            "last_seen_s": _r(tr.last, 4),
            "visible_s": _r(visible, 4),
            "frames": tr.frames,
            "dominant": classes[dom],
            "mean_probs": {c: _r(v) for c, v in zip(classes, mean_p)},
            "label_share": {c: _r(v) for c, v in zip(classes, share)},
            "face_states": tr.states_dict(step),
            "actions": tr.actions_dict(),
        }, label_t

    def result(self) -> dict:
        """The summary so far (does not change the builder; more frames may follow)."""
        self._step_cache = None  # exact median now
        step = self.step()
        classes = self.classes
        tracks = []
        total_label_t = np.zeros(self.C)
        for tid in sorted(self.tracks):
            track, label_t = self._track_dict(tid, step)
            tracks.append(track)
            total_label_t += label_t
        face_s = float(total_label_t.sum())
        means = np.frombuffer(self._bin_means, np.float32).reshape(-1, self.C).astype(np.float64)
        bins = [self._bin_dict(b, f, m) for b, f, m in zip(self._bin_ids, self._bin_faces, means)]
        if self._bin_acc:
            bins.append(self._bin_dict(self._bin_idx, len(self._bin_acc), self._bin_means_of(self._bin_acc)))
        if self.rows:
            mean_all = self._sum_p / self.rows
            share_all = total_label_t / face_s if face_s > 0 else np.zeros(self.C)
            sess_dom = classes[max(range(self.C), key=lambda i: (round(share_all[i], 9), mean_all[i]))]
            mean_d = {c: _r(v) for c, v in zip(classes, mean_all)}
            share_d = {c: _r(v) for c, v in zip(classes, share_all)}
        else:
            mean_d = {c: None for c in classes}
            share_d = {c: 0.0 for c in classes}
            sess_dom = None
        return {
            "schema": SUMMARY_SCHEMA,
            "schema_version": SUMMARY_VERSION,
            "classes": list(classes),
            "bin_s": self.bin_s,
            "session": {
                "start_s": _r(self.first_t, 4),
                "end_s": _r(self.last_t, 4),
                "duration_s": _r((self.last_t - self.first_t) + step, 4) if self.frames else 0.0,
                "frames": self.frames,
                "frame_interval_s": _r(step, 6),
                "max_gap_s": _r(self.gap_limit(), 6),
                "tracks": len(tracks),
                "face_seconds": _r(face_s, 4),
                "dominant": sess_dom,
                "mean_probs": mean_d,
                "label_share": share_d,
                "face_states": _session_states(tracks),
            },
            "tracks": tracks,
            "bins": bins,
        }


def _session_states(tracks: list[dict]) -> dict | None:
    """The group's face states: totals over tracks, shares over all measured face time."""
    st = [t["face_states"] for t in tracks if t.get("face_states")]
    m = sum(x["measured_s"] for x in st)
    if not st or m <= 0:
        return None
    share = lambda k: _r(sum((x[k] or 0) * x["measured_s"] for x in st) / m)  # noqa: E731
    return {"measured_s": _r(m, 4), "blinks": sum(x["blinks"] or 0 for x in st),
            "yawns": sum(x["yawns"] or 0 for x in st), "drowsy_s": _r(sum(x["drowsy_s"] for x in st), 4),
            "attentive_share": share("attentive_share"), "looking_away_share": share("looking_away_share")}


def summarize(df, classes, bin_s: float = 1.0, step_s: float | None = None,
              max_gap_s: float | None = None) -> dict:
    """The summary of a timeline DataFrame (columns ``time_s, track_id, label, p_<class>``).

    ``step_s`` (the frame interval) defaults to the median interval between the
    distinct row times.  Only rows are seen, so frames without any face do not
    count towards the session length here (the streaming summaries of
    :func:`export.video.process_video` and :class:`export.live.LiveRecorder` see them).
    """
    classes = tuple(classes)
    pcols = prob_columns(classes)
    missing = [c for c in ["time_s", "track_id", *pcols] if c not in df.columns]
    if missing:
        raise ValueError(f"timeline lacks columns {missing}")
    if "predicted" in df.columns:  # measured rows only (schema 1.2)
        df = df[df["predicted"] == 0]
    d = df.sort_values(["time_s", "track_id"], kind="stable")
    times = d["time_s"].to_numpy(np.float64)
    if step_s is None:
        u = np.unique(times)
        diffs = np.diff(u)
        step_s = float(np.median(diffs)) if len(diffs) else None
    b = SummaryBuilder(classes, bin_s=bin_s, step_s=step_s, max_gap_s=max_gap_s)
    if not len(d):
        return b.result()
    tids = d["track_id"].to_numpy(np.int64)
    probs = d[pcols].to_numpy(np.float64)
    idx = {c: i for i, c in enumerate(classes)}
    if "label" in d.columns:
        labels = np.array([idx.get(str(l), -1) for l in d["label"]], np.int64)
        bad = labels < 0
        if bad.any():
            labels[bad] = np.argmax(probs[bad], axis=1)
    else:
        labels = np.argmax(probs, axis=1)
    starts = np.flatnonzero(np.r_[True, times[1:] != times[:-1]])
    ends = np.r_[starts[1:], len(times)]
    scols = [c for c in FACE_COLUMNS if c in d.columns] + [c for c in d.columns if str(c).startswith("bs_")]
    svals = d[scols].to_numpy(np.float64) if scols else None
    for s, e in zip(starts, ends):
        st = {c: svals[s:e, j] for j, c in enumerate(scols)} if scols else None
        b.add_frame(times[s], tids[s:e], labels[s:e], probs[s:e], st)
    return b.result()


def _atomic_write_text(path: Path, text: str) -> Path:
    path = Path(path)
    with AtomicFiles() as files:
        with open(files.temp(path), "w", encoding="utf-8", newline="") as f:
            f.write(text)
    return path


def write_summary(summary: dict, path_json) -> Path:
    """Write the summary as JSON (atomically: temporary name, then rename)."""
    return _atomic_write_text(Path(path_json), json.dumps(summary, indent=1, ensure_ascii=False) + "\n")


def summary_csv_columns(classes) -> list[str]:
    return (["track_id", "first_seen_s", "last_seen_s", "visible_s", "frames", "dominant"]
            + prob_columns(classes, "mean_p") + prob_columns(classes, "share") + list(STATE_CSV) + list(ACTION_CSV))


#: Face-state columns of the summary CSV (empty when the track had no face states).
STATE_CSV = ("blinks", "blink_rate_per_min", "perclos_mean", "yawns", "drowsy_s", "attentive_share",
             "looking_away_share")
#: Action columns of the summary CSV (1.2): mean and peak of each of :data:`ACTIONS`, and the share of
#: measured rows looking at the camera.
ACTION_CSV = tuple(f"{s}_{a}" for a in ACTIONS for s in ("mean", "peak")) + ("looking_at_camera_share",)


def write_summary_csv(summary: dict, path_csv) -> Path:
    """One row per track: times, frames, dominant label, mean probabilities and label shares."""
    classes = summary["classes"]
    lines = [",".join(summary_csv_columns(classes))]
    for t in summary["tracks"]:
        vals = [t["track_id"], t["first_seen_s"], t["last_seen_s"], t["visible_s"], t["frames"], t["dominant"]]
        vals += [t["mean_probs"][c] for c in classes] + [t["label_share"][c] for c in classes]
        fs = t.get("face_states") or {}
        vals += [fs.get(k) for k in STATE_CSV]
        ac = t.get("actions") or {}
        vals += [(ac.get(a) or {}).get(s) for a in ACTIONS for s in ("mean", "peak")]
        vals.append(ac.get("looking_at_camera_share"))
        lines.append(",".join("" if v is None else str(v) for v in vals))
    return _atomic_write_text(Path(path_csv), "\n".join(lines) + "\n")
