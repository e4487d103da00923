"""Sinks for :func:`pipeline.videorun.run_video`: timeline files, summary files, chart data.

Each sink has one verb for input and one for the end (the
:class:`pipeline.videorun.FrameSink` protocol):

* ``write(frame_index, t, rgb, result, analysed)`` for every decoded frame
  (these sinks only look at analysed frames);
* ``close()`` returns what was made (:class:`~export.files.OutputFiles`, or the
  chart DataFrame); ``abort()`` drops it after a failure.

Files go to temporary names in a shared :class:`~export.files.AtomicFiles`
set when one is given, so a run's outputs appear together or not at all.
The annotated video sink is :class:`export.mp4.AnnotatedVideoSink`.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from pipeline.results import prob_columns

from .files import AtomicFiles, OutputFiles
from .plot import MEASURE_COLUMNS, timeline_frame
from .summary import SummaryBuilder, write_summary, write_summary_csv
from .timeline import TimelineWriter


class TimelineSink:
    """The timeline CSV + JSON (a :class:`~export.timeline.TimelineWriter`): one row per face per analysed frame."""

    def __init__(self, out_dir, stem: str, classes, meta: dict | None = None, atomic: AtomicFiles | None = None,
                 blendshapes: bool = False):
        self.writer = TimelineWriter(out_dir, stem, classes, meta, atomic=atomic, blendshapes=blendshapes)

    def write(self, frame_index, t, rgb, result, analysed) -> None:
        if analysed:
            self.writer.write(result, frame=frame_index)

    def close(self) -> OutputFiles:
        return self.writer.close()

    def abort(self) -> None:
        self.writer.abort()


class SummarySink:
    """The summary JSON + CSV (a :class:`~export.summary.SummaryBuilder`, bounded memory).

    :attr:`info` holds extra top-level keys for the summary (source, warnings,
    ...), to fill in before :meth:`close`; after it, :attr:`summary` is the dict written.
    """

    def __init__(self, json_path, csv_path, classes, step_s: float | None = None,
                 atomic: AtomicFiles | None = None):
        self.builder = SummaryBuilder(classes, step_s=step_s)
        self.json_path, self.csv_path = Path(json_path), Path(csv_path)
        self.atomic = atomic
        self.info: dict = {}
        self.summary: dict | None = None

    def write(self, frame_index, t, rgb, result, analysed) -> None:
        if analysed:
            self.builder.add_result(result)

    def close(self) -> OutputFiles:
        s = self.builder.result()
        s.update(self.info)
        if self.atomic is None:
            write_summary(s, self.json_path)
            write_summary_csv(s, self.csv_path)
        else:
            write_summary(s, self.atomic.temp(self.json_path))
            write_summary_csv(s, self.atomic.temp(self.csv_path))
        self.summary = s
        return OutputFiles(summary_json=self.json_path, summary_csv=self.csv_path)

    def abort(self) -> None:
        pass  # nothing is written before close()


class ChartSink:
    """Chart data: the long-format DataFrame of :func:`export.plot.timeline_frame`, at most ``max_points`` points.

    Memory is bounded however long the video: analysed frames are kept every
    ``stride``-th, and when more than twice the rows a chart needs are kept,
    every other kept frame is dropped and the stride doubles.  :meth:`close`
    thins evenly to ``max_points`` (rows x classes).
    """

    def __init__(self, classes, max_points: int = 5000):
        self.classes = tuple(classes)
        self.max_points = int(max_points)
        self._cap = 2 * max(1, self.max_points // max(1, len(self.classes)))  # rows kept at most (about)
        self._frames: list[tuple[int, float, np.ndarray, np.ndarray]] = []  # (k, t, track ids, smoothed probs)
        self._rows = 0
        self._stride = 1
        self._seen = 0

    def write(self, frame_index, t, rgb, result, analysed) -> None:
        if not analysed:
            return
        k, self._seen = self._seen, self._seen + 1
        if k % self._stride or not len(result) or result.smoothed is None:
            return
        # rounded as in the timeline files, so the chart shows what they hold
        m = result.measures
        face = np.column_stack([np.asarray(m[c], np.float64) if c in m else np.full(len(result), np.nan)
                                for c in MEASURE_COLUMNS])
        self._frames.append((k, round(float(result.timestamp), 6), result.track_ids.copy(),
                             np.column_stack([np.round(result.smoothed.astype(np.float64), 4), np.round(face, 4)])))
        self._rows += len(result)
        while self._rows > self._cap and len(self._frames) > 1:
            self._stride *= 2
            self._frames = [f for f in self._frames if f[0] % self._stride == 0]
            self._rows = sum(len(f[2]) for f in self._frames)

    def close(self):
        import pandas as pd

        cols = ["time_s", "track_id", *prob_columns(self.classes), *MEASURE_COLUMNS]
        if self._frames:
            times = np.concatenate([np.full(len(ids), t) for _, t, ids, _ in self._frames])
            ids = np.concatenate([ids for _, _, ids, _ in self._frames]).astype(np.int64)
            probs = np.concatenate([p for _, _, _, p in self._frames])
            df = pd.DataFrame(np.column_stack([times, ids, probs]), columns=cols).astype({"track_id": "int64"})
        else:
            df = pd.DataFrame(columns=cols)
        return timeline_frame(df, self.classes, max_points=self.max_points)

    def abort(self) -> None:
        self._frames = []
