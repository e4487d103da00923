"""Recording a live (WebRTC) session: files written as you go, bounded memory.

``LiveRecorder(root_dir, session_id, classes, meta)``:

* :meth:`~LiveRecorder.add` streams every frame's rows to
  ``root_dir/session_id/<session_id>_timeline.csv/.json`` (a
  :class:`~export.timeline.TimelineWriter`) and updates an incremental
  :class:`~export.summary.SummaryBuilder` (memory: per track and per 1 s bin).
* In memory it keeps only a rolling buffer of the last ``buffer_s`` seconds of
  rows (at most ``max_buffer_rows``) for the live chart, :meth:`recent`, and
  the current state of each visible track, :meth:`tracks`.
* :meth:`snapshot` writes a complete, consistent copy of everything recorded so
  far (``<session_id>_snapshot_timeline.csv/.json`` and
  ``<session_id>_snapshot_summary.json``) while recording continues, and
  returns them as :class:`~export.files.OutputFiles` (``.paths()`` lists them).
* :meth:`close` finalizes the timeline files and writes the summary
  (``<session_id>_summary.json/.csv``); it returns them as
  :class:`~export.files.OutputFiles`.  The folder stays until
  :func:`cleanup_old` removes it.

All methods are thread-safe (frames arrive on one thread, the UI asks for
snapshots and charts on others).
"""
from __future__ import annotations

import os
import re
import shutil
import threading
import time
import weakref
from collections import deque
from dataclasses import replace
from pathlib import Path

import numpy as np

from pipeline.results import prob_columns

from .files import OutputFiles
from .plot import MEASURE_COLUMNS
from .summary import SummaryBuilder, write_summary, write_summary_csv
from .timeline import TimelineWriter, result_rows

_SESSION_RE = re.compile(r"^[A-Za-z0-9_-]{1,128}$")
_ACTIVE: weakref.WeakSet[LiveRecorder] = weakref.WeakSet()


def check_session_id(session_id) -> str:
    """``session_id`` if it is 1-128 of ``[A-Za-z0-9_-]``, else ValueError (no paths, no dots)."""
    if not isinstance(session_id, str) or not _SESSION_RE.match(session_id):
        raise ValueError(f"invalid session id {session_id!r}: use 1-128 letters, digits, '_' or '-'")
    return session_id


class LiveRecorder:
    def __init__(self, root_dir, session_id: str, classes, meta: dict | None = None,
                 buffer_s: float = 120.0, max_buffer_rows: int = 20000, track_timeout_s: float = 2.0):
        self.session_id = check_session_id(session_id)
        self.root_dir = Path(root_dir)
        self.dir = self.root_dir / self.session_id
        self.dir.mkdir(parents=True, exist_ok=True)
        self.classes = tuple(classes)
        self.buffer_s = float(buffer_s)
        self.track_timeout_s = float(track_timeout_s)
        self._lock = threading.RLock()
        self._writer = TimelineWriter(self.dir, self.session_id, self.classes, meta)
        self._summary = SummaryBuilder(self.classes)
        self._buf: deque = deque(maxlen=int(max_buffer_rows))  # (time_s, track_id, label, probs tuple)
        self._tracks: dict[int, dict] = {}
        self.frames = 0
        self.last_time_s: float | None = None  # time of the last frame added (with or without faces)
        self.closed = False
        self.final: OutputFiles | None = None
        _ACTIVE.add(self)

    @property
    def paths(self) -> OutputFiles:
        """The final timeline names (they exist after :meth:`close`)."""
        return self._writer.paths

    # -- recording -----------------------------------------------------------
    def add(self, result) -> None:
        """Record one :class:`pipeline.FrameResult` (rows go to disk at once)."""
        rows = result_rows(result)
        t = float(result.timestamp)
        with self._lock:
            if self.closed:
                raise ValueError("the recorder is closed")
            self._writer.add_events(getattr(result, "state_events", ()))
            self._writer.write_rows(rows, time_s=t)
            self.last_time_s = t
            self._summary.add_result(result)
            self.frames += 1
            C = len(self.classes)
            m = result.measures
            face = [m[c] if c in m else np.full(len(rows), np.nan) for c in MEASURE_COLUMNS]
            for k, r in enumerate(rows):
                probs = tuple(r[10:10 + C])
                self._buf.append((r[0], r[2], r[8], probs + tuple(float(v[k]) for v in face)))
                self._tracks[r[2]] = {"track_id": r[2], "time_s": r[0], "label": r[8], "label_prob": r[9],
                                      "box": r[3:7], "probs": dict(zip(self.classes, probs))}
            for tid in getattr(result, "ended_tracks", ()) or ():
                self._tracks.pop(int(tid), None)
            for tid in [k for k, v in self._tracks.items() if t - v["time_s"] > self.track_timeout_s]:
                del self._tracks[tid]
            while self._buf and t - self._buf[0][0] > self.buffer_s:
                self._buf.popleft()

    def recent(self, seconds: float = 30.0):
        """Rows of the last ``seconds`` before the latest frame (at most ``buffer_s``):
        time_s, track_id, label, p_<class>..., and the face-state columns the charts plot
        (:data:`export.plot.MEASURE_COLUMNS`: eye_open_r, eye_open_l, smile, brow_raise, frown; NaN: not measured).
        Empty when no face was seen in that window."""
        import pandas as pd

        with self._lock:
            rows = list(self._buf)
            t_end = self.last_time_s
        cols = ["time_s", "track_id", "label"] + prob_columns(self.classes) + list(MEASURE_COLUMNS)
        if rows:
            rows = [r for r in rows if r[0] >= t_end - seconds - 1e-9]
        df = pd.DataFrame([(t, tid, lab, *p) for t, tid, lab, p in rows], columns=cols)
        return df.astype({"time_s": "float64", "track_id": "int64", "label": str,
                          **{c: "float64" for c in cols[3:]}})

    def tracks(self) -> list[dict]:
        """The current state of each visible track (last label, probabilities, box)."""
        with self._lock:
            return [dict(v) for _, v in sorted(self._tracks.items())]

    def summary(self) -> dict:
        with self._lock:
            s = self._summary.result()
        s["session_id"] = self.session_id
        return s

    # -- files -----------------------------------------------------------------
    def snapshot(self) -> OutputFiles:
        """A complete copy of everything so far: timeline CSV/JSON and summary JSON.

        Recording goes on; each call replaces the previous snapshot files
        (atomically).  After :meth:`close` it returns the final files.
        """
        with self._lock:
            if self.closed and self.final is not None:
                return replace(self.final, summary_csv=None)
            stem = f"{self.session_id}_snapshot"
            files = self._writer.checkpoint(self.dir / f"{stem}_timeline.csv", self.dir / f"{stem}_timeline.json")
            s = self.summary()
            s["snapshot"] = True
            return replace(files, summary_json=write_summary(s, self.dir / f"{stem}_summary.json"))

    def close(self) -> OutputFiles:
        """Finalize: the timeline CSV/JSON and summary JSON/CSV under their final names."""
        with self._lock:
            if self.closed:
                return self.final or OutputFiles()
            files = self._writer.close()
            s = self.summary()
            files = replace(files, summary_json=write_summary(s, self.dir / f"{self.session_id}_summary.json"),
                            summary_csv=write_summary_csv(s, self.dir / f"{self.session_id}_summary.csv"))
            for p in self.dir.glob(f"{self.session_id}_snapshot_*"):
                p.unlink(missing_ok=True)
            self.closed = True
            self.final = files
            self._buf.clear()
            return files

    def abort(self) -> None:
        """Stop without keeping anything (removes the session folder)."""
        with self._lock:
            self._writer.abort()
            self.closed = True
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _newest_mtime(folder: Path) -> float:
    m = folder.stat().st_mtime
    for p in folder.iterdir():
        try:
            m = max(m, p.stat().st_mtime)
        except OSError:
            pass
    return m


def cleanup_old(root_dir, max_age_s: float) -> list[Path]:
    """Delete session folders in ``root_dir`` untouched for more than ``max_age_s``; returns them.

    Only folders whose names are valid session ids are considered, and sessions
    still being recorded in this process are never removed.
    """
    root = Path(root_dir)
    if not root.is_dir():
        return []
    now = time.time()
    active = {os.path.realpath(r.dir) for r in list(_ACTIVE) if not r.closed}
    removed = []
    for d in sorted(root.iterdir()):
        if not d.is_dir() or d.is_symlink() or not _SESSION_RE.match(d.name):
            continue
        if os.path.realpath(d) in active:
            continue
        try:
            if now - _newest_mtime(d) > max_age_s:
                shutil.rmtree(d)
                removed.append(d)
        except OSError:
            continue
    return removed
