"""Run a video through the pipeline: :func:`run_video` feeds every decoded frame to a set of
:class:`FrameSink` objects (every ``frame_step``-th through the pipeline first).

The reading side (container, limits, audio) is :mod:`pipeline.video`; the sinks that
write timelines, summaries, charts and MP4 are in :mod:`export`.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable, Protocol

import numpy as np

from .results import FrameResult


class FrameSink(Protocol):
    """Where :func:`run_video` puts frames: one :meth:`write` per decoded frame, then :meth:`close`.

    ``result`` is the latest analysis (None before the first one);
    ``analysed`` is True when it was made from this very frame.  Sinks that
    only record analyses ignore the other frames.  :meth:`close` finishes the
    output and returns it (files, data); :meth:`abort` drops it after a failure.
    """

    def write(self, frame_index: int, t: float, rgb: np.ndarray, result: FrameResult | None,
              analysed: bool) -> None: ...

    def close(self) -> Any: ...

    def abort(self) -> None: ...


@dataclass
class RunStats:
    frames_read: int = 0
    frames_processed: int = 0
    last: FrameResult | None = None  # the last analysis


def run_video(reader, pipeline, sinks, frame_step: int = 1,
              progress: Callable[[int, int], None] | None = None) -> RunStats:
    """Feed every frame of ``reader`` to every sink, every ``frame_step``-th through ``pipeline`` first.

    ``reader`` yields ``(frame_index, t, rgb)`` (a :class:`VideoReader`);
    ``pipeline`` has ``process(rgb, t) -> FrameResult``.  ``progress(done,
    total)`` is called at most every 0.1 s and once at the end (``total`` is
    the reader's ``total_frames``, at least ``done``).  The caller closes the
    sinks (what they write may depend on how the run went); on any error every
    sink is aborted and the error is raised.
    """
    frame_step = int(frame_step)
    if frame_step < 1:
        raise ValueError("frame_step must be >= 1")
    stats = RunStats()
    total = int(getattr(reader, "total_frames", 0) or 0)
    reported = 0.0
    try:
        for i, t, rgb in reader:
            analysed = i % frame_step == 0
            if analysed:
                stats.last = pipeline.process(rgb, t)
                stats.frames_processed += 1
            for sink in sinks:
                sink.write(i, t, rgb, stats.last, analysed)
            stats.frames_read += 1
            if progress is not None and time.perf_counter() - reported >= 0.1:
                reported = time.perf_counter()
                progress(stats.frames_read, max(total, stats.frames_read))
    except BaseException:
        for sink in sinks:
            try:
                sink.abort()
            except Exception:
                pass
        raise
    if progress is not None:
        progress(stats.frames_read, stats.frames_read)
    return stats
