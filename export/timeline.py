"""The emotion timeline: one row per face track per frame, as CSV and as JSON.

:class:`TimelineWriter` streams: every :meth:`~TimelineWriter.write` appends
the frame's rows to both files and nothing is kept in memory, so a two-hour
session costs the same memory as a two-second one.  Both files are written
under temporary names (``.<name>.<random>.part`` in the same folder, an
:class:`~export.files.AtomicFiles` set) and only renamed to their final names
by :meth:`~TimelineWriter.close` - or, when the writer is given a shared
``atomic`` set, by that set's commit together with the other outputs of the
run; an error (or :meth:`~TimelineWriter.abort`) deletes them, so a final name
never holds a half-written file.

Columns (see ``export/SCHEMA.md``)::

    time_s, frame, track_id, x1, y1, x2, y2, score, label, label_prob,
    p_<class> ... (smoothed probabilities), raw_<class> ... (raw probabilities), predicted,
    eye_open_r, eye_open_l, mouth_open, yaw, pitch, roll, blinks, blink_rate, blink_s,
    perclos, yawns, eyes_closed, yawning, looking_away, drowsy, attentive (face states),
    gaze_yaw, gaze_pitch, looking_at_camera, smile, brow_raise, frown (gaze and actions),
    [bs_browDownLeft ... bs_noseSneerRight: every blendshape score, with ``blendshapes=True``]

The JSON file is ``{"schema": "emotion-timeline", "schema_version": "1.4", ...,
"columns": [...], "rows": [[...], ...], "frames_processed": N, "state_events": [...], ...}``:
the header is written first, rows are streamed as arrays in ``columns`` order, and a small
footer (with the face states' start/end events) closes the document.
"""
from __future__ import annotations

import json
import math
import re
import shutil
import threading
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from pipeline.results import FACE_COLUMNS, prob_columns

from . import APP_VERSION
from .files import AtomicFiles, OutputFiles

SCHEMA_NAME = "emotion-timeline"
#: 1.1: ``settings`` is the nested ``PipelineConfig.to_dict()`` (one object per section);
#: ``smoothing`` is always ``{"half_life_s", "margin"}`` copied from ``settings["smoothing"]``.
#: 1.2: a ``predicted`` column.  1.3: the face-state columns (:data:`pipeline.results.FACE_COLUMNS`) after
#: ``predicted`` and ``state_events`` in the footer.  1.4: gaze and action columns after ``attentive``
#: (``gaze_yaw`` ... ``frown``), and, with ``blendshapes=True``, a ``bs_<name>`` column per blendshape.
#: 1.5: ``model`` also names the model's ``version``, ``test_accuracy`` and ``test_set``
#: (:meth:`classifier.spec.ModelSpec.card`).
SCHEMA_VERSION = "1.5"
#: The header's ``model`` object.
MODEL_KEYS = ("id", "source", "repo_id", "revision", "version", "test_accuracy", "test_set")

BASE_COLUMNS = ["time_s", "frame", "track_id", "x1", "y1", "x2", "y2", "score", "label", "label_prob"]
INT_COLUMNS = ("frame", "track_id", "predicted")
STR_COLUMNS = ("label",)

# decimals per column kind: timestamps to the microsecond, pixels to 0.1, probabilities to 1e-4
_DEC_TIME, _DEC_BOX, _DEC_PROB = 6, 1, 4
#: face-state columns written as whole numbers (counts and 0/1 states); angles to 0.1 degree, the rest to 1e-4
_FACE_INT = {"blinks", "yawns", "eyes_closed", "yawning", "looking_away", "drowsy", "attentive", "looking_at_camera"}
_FACE_DEC = {c: (1 if c in ("yaw", "pitch", "roll", "gaze_yaw", "gaze_pitch") else _DEC_PROB) for c in FACE_COLUMNS}
_DEC_BS = 3  # blendshape scores to 1e-3 (MediaPipe's own agree with ours to a few 1e-3)


def blendshape_columns() -> list[str]:
    """``bs_<name>`` for each of MediaPipe's blendshapes (ARKit names) but ``_neutral``, which it documents
    as meaningless: 51 columns, in the model's order."""
    from tracker.facemesh import BLENDSHAPES

    return [f"bs_{n}" for n in BLENDSHAPES if not n.startswith("_")]

_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


def safe_stem(stem: str) -> str:
    """A file-name-safe version of ``stem`` (letters, digits, ``._-``; no leading dot)."""
    s = _SAFE.sub("_", str(stem)).lstrip(".")
    return s[:120] or "output"


def columns_for(classes, blendshapes: bool = False) -> list[str]:
    """The timeline's columns; ``blendshapes``: with every blendshape score (:func:`blendshape_columns`)."""
    classes = list(classes)
    cols = BASE_COLUMNS + prob_columns(classes) + prob_columns(classes, "raw") + ["predicted"] + list(FACE_COLUMNS)
    return cols + (blendshape_columns() if blendshapes else [])


def _face_cell(c: str, v) -> int | float | None:
    v = float(v)
    if not math.isfinite(v):
        return None
    return int(round(v)) if c in _FACE_INT else round(v, _FACE_DEC[c])


def timeline_meta(pipeline=None, fps: float | None = None, source: str | None = None, **extra) -> dict:
    """The ``meta`` dict for :class:`TimelineWriter` from a :class:`pipeline.Pipeline`.

    Fills ``model`` (id, source, repo_id, revision, version, test_accuracy, test_set), ``settings`` (the pipeline
    config as a nested dict, ``pipeline.config.to_dict()``: one dict per section,
    detection / tracking / classification / smoothing), ``fps`` and ``source``
    (e.g. the input file name).  The header's ``smoothing`` is taken from
    ``settings["smoothing"]``.
    """
    meta: dict = {"fps": fps}
    if pipeline is not None:
        spec = pipeline.classifier.spec
        meta["model"] = {"id": spec.id, "source": spec.source, "repo_id": spec.repo_id or None,
                         "revision": spec.revision or None, "version": spec.version or None,
                         "test_accuracy": pipeline.classifier.card["test_accuracy"],
                         "test_set": pipeline.classifier.card["test_set"]}
        meta["settings"] = pipeline.config.to_dict()
    if source is not None:
        meta["source"] = source
    meta.update(extra)
    return meta


def _num(v, dec):
    """A finite float rounded to ``dec`` decimals, or None."""
    v = float(v)
    return round(v, dec) if math.isfinite(v) else None


def _csv_cell(v) -> str:
    if v is None:
        return ""
    if isinstance(v, str):
        if any(ch in v for ch in ',"\n\r'):
            return '"' + v.replace('"', '""') + '"'
        return v
    return repr(v)  # ints as ints, floats in Python's shortest round-trip form


def result_rows(result, frame: int | None = None, blendshapes: bool = False) -> list[list]:
    """The timeline rows of one :class:`pipeline.FrameResult` (values already rounded); ``blendshapes``:
    with the :func:`blendshape_columns` (empty where the face was not measured)."""
    n = len(result)
    if n == 0:
        return []
    classes = list(result.classes)
    C = len(classes)
    raw = result.raw if result.raw is not None else np.full((n, C), np.nan, np.float32)
    sm = result.smoothed if result.smoothed is not None else raw
    if result.labels is not None:
        labels = [int(v) for v in result.labels]
    else:
        labels = [int(np.argmax(sm[i])) if C else -1 for i in range(n)]
    tids, held = result.track_ids, result.predicted
    t = _num(result.timestamp, _DEC_TIME)
    fr = int(result.index if frame is None else frame)
    face = getattr(result, "measures", None) or {}
    face = [face.get(c) for c in FACE_COLUMNS]
    bs = getattr(result, "blendshapes", None) if blendshapes else None
    n_bs = len(blendshape_columns()) if blendshapes else 0
    rows = []
    for i in range(n):
        li = labels[i]
        box = result.boxes[i]
        row = [t, fr, int(tids[i]),
               _num(box[0], _DEC_BOX), _num(box[1], _DEC_BOX), _num(box[2], _DEC_BOX), _num(box[3], _DEC_BOX),
               _num(result.scores[i], _DEC_PROB),
               classes[li] if 0 <= li < C else "",
               _num(sm[i][li], _DEC_PROB) if 0 <= li < C else None]
        row += [_num(p, _DEC_PROB) for p in sm[i]]
        row += [_num(p, _DEC_PROB) for p in raw[i]]
        row.append(int(held[i]))
        row += [None if col is None else _face_cell(c, col[i]) for c, col in zip(FACE_COLUMNS, face)]
        if blendshapes:
            row += ([_num(v, _DEC_BS) for v in bs[i, 1:]] if bs is not None and len(bs) > i else [None] * n_bs)
        rows.append(row)
    return rows


class TimelineWriter:
    """Streams timeline rows to ``<stem>_timeline.csv`` and ``<stem>_timeline.json`` in ``out_dir``.

    ``meta`` (see :func:`timeline_meta`) may hold ``model`` (dict or id string),
    ``fps``, ``settings`` (the nested pipeline config dict), ``source`` and
    anything else (kept under ``"meta"``).  ``atomic``: an
    :class:`~export.files.AtomicFiles` set shared with other outputs; then
    :meth:`close` finishes the files and the set's commit gives them their
    final names (all outputs of a run appear together or not at all).
    Thread-safe: :meth:`write` and :meth:`checkpoint` may be called from
    different threads.
    """

    def __init__(self, out_dir, stem: str, classes, meta: dict | None = None, atomic: AtomicFiles | None = None,
                 blendshapes: bool = False):
        self.out_dir = Path(out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.stem = safe_stem(stem)
        self.classes = tuple(classes)
        if not self.classes:
            raise ValueError("classes must not be empty")
        self.blendshapes = bool(blendshapes)  # every blendshape score as a column (51 more)
        self.columns = columns_for(self.classes, self.blendshapes)
        self.meta = dict(meta or {})
        #: The final names (they exist once the files are committed).
        self.paths = OutputFiles(timeline_csv=self.out_dir / f"{self.stem}_timeline.csv",
                                 timeline_json=self.out_dir / f"{self.stem}_timeline.json")
        self._own_files = atomic is None  # then close() commits; else the owner of ``atomic`` does
        self._files = AtomicFiles() if atomic is None else atomic
        self._tmp = (self._files.temp(self.paths.timeline_csv), self._files.temp(self.paths.timeline_json))
        self._lock = threading.Lock()
        self.rows_written = 0
        self.frames_written = 0
        self.first_time_s: float | None = None
        self.last_time_s: float | None = None
        self.closed = False
        self.state_events: list[list] = []  # [time_s, track_id, state, "start" | "end"], for the footer
        self._csv = self._json = None
        try:
            self._csv = open(self._tmp[0], "w", encoding="utf-8", newline="")
            self._json = open(self._tmp[1], "w", encoding="utf-8")
            self._csv.write(",".join(self.columns) + "\n")
            self._json.write(self._header_text())
        except BaseException:
            self.abort()
            raise

    # -- header / footer ------------------------------------------------
    def header(self) -> dict:
        m = dict(self.meta)
        model = m.pop("model", None)
        if isinstance(model, str) or model is None:
            model = {"id": model, "source": None, "repo_id": None, "revision": None}
        model = {k: model.get(k) for k in MODEL_KEYS}
        settings = m.pop("settings", None) or {}
        smoothing = m.pop("smoothing", None) or settings.get("smoothing") or {}
        fps = m.pop("fps", None)
        source = m.pop("source", None)
        return {
            "schema": SCHEMA_NAME,
            "schema_version": SCHEMA_VERSION,
            "app_version": APP_VERSION,
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "source": source,
            "model": model,
            "classes": list(self.classes),
            "fps": None if fps is None else float(fps),
            "smoothing": {k: smoothing.get(k) for k in ("half_life_s", "margin")},
            "settings": settings,
            "meta": m,
            "columns": self.columns,
        }

    def _header_text(self) -> str:
        head = json.dumps(self.header(), ensure_ascii=False, default=str)
        return head[:-1] + ',\n"rows": [\n'  # drop the closing brace: rows follow

    def _footer_text(self) -> str:
        foot = {"frames_processed": self.frames_written, "rows_count": self.rows_written,
                "first_time_s": self.first_time_s, "last_time_s": self.last_time_s,
                "state_events": self.state_events, "complete": True}
        return "\n],\n" + json.dumps(foot)[1:] + "\n"  # closes rows, adds the footer keys and the object

    # -- writing ---------------------------------------------------------
    def write(self, result, frame: int | None = None) -> int:
        """Append the rows of one :class:`pipeline.FrameResult`; returns the number of rows.

        ``frame`` is the source frame number (default ``result.index``).  Frames
        without faces write no rows but count in ``frames_processed``.
        """
        if tuple(result.classes) and tuple(result.classes) != self.classes:
            raise ValueError(f"result classes {result.classes} differ from the timeline's {self.classes}")
        self.add_events(getattr(result, "state_events", ()))
        return self.write_rows(result_rows(result, frame, self.blendshapes), time_s=float(result.timestamp))

    def add_events(self, events) -> None:
        """Record face-state events ``(track_id, state, "start" | "end", time_s)`` for the JSON footer."""
        with self._lock:
            self.state_events += [[round(float(t), _DEC_TIME), int(tid), str(s), str(k)] for tid, s, k, t in events]

    def write_rows(self, rows: list[list], time_s: float | None = None) -> int:
        """Append ready rows (lists in ``columns`` order) as one frame."""
        with self._lock:
            if self.closed or self._csv is None:
                raise ValueError("timeline writer is closed")
            if rows:
                self._csv.write("".join(",".join(_csv_cell(v) for v in r) + "\n" for r in rows))
                pre = ",\n" if self.rows_written else ""
                self._json.write(pre + ",\n".join(json.dumps(r, ensure_ascii=False) for r in rows))
            self.rows_written += len(rows)
            self.frames_written += 1
            if time_s is None and rows:
                time_s = rows[0][0]
            if time_s is not None:
                if self.first_time_s is None:
                    self.first_time_s = round(float(time_s), _DEC_TIME)
                self.last_time_s = round(float(time_s), _DEC_TIME)
            return len(rows)

    def flush(self) -> None:
        with self._lock:
            if self._csv is not None:
                self._csv.flush()
                self._json.flush()

    def checkpoint(self, csv_path, json_path) -> OutputFiles:
        """Write a complete, valid copy of everything written so far to the given paths.

        Writing continues afterwards.  The copies are written all-or-nothing
        (temporary names, then renamed), so a destination is never half-written.
        """
        with AtomicFiles() as files, self._lock:
            tc, tj = files.temp(csv_path), files.temp(json_path)
            if self.closed:
                src = self.paths if self._files.committed else OutputFiles(*self._tmp)
                shutil.copyfile(src.timeline_csv, tc)
                shutil.copyfile(src.timeline_json, tj)
            else:
                self._csv.flush()
                self._json.flush()
                shutil.copyfile(self._tmp[0], tc)
                shutil.copyfile(self._tmp[1], tj)
                with open(tj, "a", encoding="utf-8") as f:
                    f.write(self._footer_text())
        return OutputFiles(timeline_csv=Path(csv_path), timeline_json=Path(json_path))

    def close(self) -> OutputFiles:
        """Finish both files; returns :attr:`paths`.

        With its own file set the files get their final names now; with a
        shared ``atomic`` set, when that set is committed.
        """
        with self._lock:
            if self.closed:
                return self.paths
            try:
                self._json.write(self._footer_text())
                self._csv.close()
                self._json.close()
                if self._own_files:
                    self._files.commit()
            except BaseException:
                self._abort_locked()
                raise
            self.closed = True
            return self.paths

    def abort(self) -> None:
        """Stop and delete the temporary files (final names are never touched)."""
        with self._lock:
            self._abort_locked()

    def _abort_locked(self) -> None:
        for f in (self._csv, self._json):
            if f is not None and not f.closed:
                try:
                    f.close()
                except OSError:
                    pass
        for p in self._tmp:
            p.unlink(missing_ok=True)
        self.closed = True

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self.close()
        else:
            self.abort()

    def __del__(self):  # an abandoned writer leaves no temp files behind
        try:
            if not self.closed:
                self._abort_locked()
        except Exception:
            pass


def read_timeline(path):
    """A timeline file (``.csv`` or ``.json``) as a :class:`pandas.DataFrame` with proper dtypes.

    For JSON, the header (everything but the rows) is in ``df.attrs["meta"]``.
    """
    import pandas as pd

    path = Path(path)
    if path.suffix.lower() == ".json":
        with open(path, encoding="utf-8") as f:
            doc = json.load(f)
        if doc.get("schema") != SCHEMA_NAME:
            raise ValueError(f"{path.name}: not an {SCHEMA_NAME} file")
        major = str(doc.get("schema_version", "")).split(".")[0]
        if major != SCHEMA_VERSION.split(".")[0]:
            raise ValueError(f"{path.name}: schema version {doc.get('schema_version')} is not supported")
        cols = doc["columns"]
        df = pd.DataFrame(doc.pop("rows"), columns=cols)
        df.attrs["meta"] = doc
    else:
        df = pd.read_csv(path, dtype={"label": str}, keep_default_na=False, na_values=[""])
        df["label"] = df["label"].fillna("")
    for c in df.columns:
        if c in INT_COLUMNS:
            df[c] = df[c].astype("int64")
        elif c in STR_COLUMNS:
            df[c] = df[c].astype(str)
        else:
            df[c] = df[c].astype("float64")
    return df
