"""Analyse a video file: annotated MP4 + timeline CSV/JSON + summary JSON/CSV + chart data.

:func:`process_video` is a composition: a :class:`pipeline.video.VideoReader`,
one :class:`pipeline.Pipeline` per file (tracks and smoothing per file), the
sinks of :mod:`export.sinks` and :mod:`export.mp4`, and
:func:`pipeline.videorun.run_video`, all outputs in one
:class:`~export.files.AtomicFiles` set.

* Timestamps are each frame's presentation time, so variable frame rate
  videos are timed right; ``frame_step=N`` analyses every Nth frame and the
  output video still has every frame, with the latest result drawn.
* Streaming: one decoded frame at a time; rows go straight to disk, the
  summary and the chart data are bounded - memory does not grow with length.
* All-or-nothing: every output is written under a temporary name in
  ``out_dir`` and renamed at the end; on any error all of them are deleted
  (:class:`VideoError` for bad input).  A file that breaks off mid-way
  (truncated, corrupt) keeps what was decoded and reports it in
  ``VideoResult.warnings``.
* Limits: refused up front (:class:`VideoError`, nothing written) when the
  header says the video is too long, too large or has too many frames;
  stopped and kept when a limit is hit while decoding (the frame cap, the
  wall-clock budget ``max_process_s``, a later frame too large or too late):
  the outputs cover the part processed and ``VideoResult.warnings`` says how
  much that was (``VideoResult.stopped`` the reason).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from pipeline import Pipeline
from pipeline.config import PipelineConfig, preset
from pipeline.video import VideoError, VideoReader
from pipeline.videorun import run_video

from .files import AtomicFiles, OutputFiles
from .mp4 import AnnotatedVideoSink, h264_available
from .sinks import ChartSink, SummarySink, TimelineSink
from .timeline import safe_stem, timeline_meta

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["VideoError", "VideoResult", "h264_available", "process_video"]


@dataclass
class VideoResult:
    """What :func:`process_video` made: the files, the numbers, the summary and the chart data."""

    files: OutputFiles
    frames_read: int
    frames_processed: int
    fps: float | None
    duration_s: float | None
    summary: dict
    #: Chart data, long format (``time_s, track, emotion, prob, series``, as
    #: :func:`export.plot.timeline_frame` gives), at most ~5000 points.
    chart: pd.DataFrame | None = None
    video_codec: str = ""
    audio: str = "none"  # "copied (aac)", "re-encoded (pcm_s16le -> aac)", "none", "dropped: ..."
    warnings: list[str] = field(default_factory=list)
    elapsed_s: float = 0.0
    #: Why the analysis stopped before the end of the video (a limit hit while decoding), else None.
    stopped: str | None = None

    @property
    def annotated_mp4(self) -> Path:
        return self.files.annotated_mp4

    @property
    def timeline_csv(self) -> Path:
        return self.files.timeline_csv

    @property
    def timeline_json(self) -> Path:
        return self.files.timeline_json

    @property
    def summary_json(self) -> Path:
        return self.files.summary_json

    @property
    def summary_csv(self) -> Path:
        return self.files.summary_csv


def _config(config) -> PipelineConfig:
    return config if isinstance(config, PipelineConfig) else preset(config)


def process_video(src_path, out_dir, config=None, frame_step: int = 1, progress=None,
                  max_seconds: float | None = None, max_pixels: int | None = None,
                  stem: str | None = None, max_frames: int | None = None,
                  max_process_s: float | None = None, threads: int = 2, models=None,
                  blendshapes: bool = False, meshes=None) -> VideoResult:
    """Analyse ``src_path`` and write the results to ``out_dir``.

    ``config``: a :class:`pipeline.PipelineConfig`, a preset name, or None (the
    default preset).  ``progress(done_frames, total_frames)`` is called now and
    then (``total`` is the container's frame count or an estimate).
    ``max_seconds`` / ``max_pixels`` / ``max_frames`` (default ``max_seconds``
    x :data:`pipeline.video.MAX_FPS`) are checked from the header before the
    pipeline starts, and again on every decoded frame, with the wall-clock
    budget ``max_process_s`` (seconds from the start of this call); a limit hit
    while decoding stops the analysis and keeps the part done (see the module
    doc).  Output names:
    ``<stem>_annotated.mp4``, ``<stem>_timeline.csv/.json``,
    ``<stem>_summary.json/.csv``; ``stem`` defaults to the source file name
    without extension.  ``threads``: each model's threads (2: one per core); ``models``: the
    :class:`~classifier.hub.ClassifierCache` to load the classifier from (None: the process's default),
    ``meshes`` the :class:`~tracker.facemesh.FaceMeshCache` for the face mesh (likewise).
    ``blendshapes``: the timeline also gets every blendshape score (51 ``bs_*`` columns; by default
    only the smile, brow-raise and frown summaries of them).

    Raises :class:`VideoError` for an empty, unreadable or frameless file or a
    file over the limits; then nothing is left in ``out_dir``.
    """
    t_start = time.perf_counter()
    frame_step = int(frame_step)
    if frame_step < 1:
        raise ValueError("frame_step must be >= 1")
    cfg = _config(config)
    src, out_dir = Path(src_path), Path(out_dir)
    stem = safe_stem(stem or src.stem)
    with VideoReader(src, max_seconds=max_seconds, max_pixels=max_pixels, max_frames=max_frames,
                     max_process_s=max_process_s) as reader:
        out_dir.mkdir(parents=True, exist_ok=True)
        with AtomicFiles() as atomic, Pipeline(cfg, threads=threads, models=models, meshes=meshes) as pipe:
            result = _run(reader, pipe, atomic, out_dir, stem, frame_step, progress, blendshapes)
    result.elapsed_s = time.perf_counter() - t_start
    return result


def _run(reader: VideoReader, pipe: Pipeline, atomic: AtomicFiles, out_dir: Path, stem: str,
         frame_step: int, progress, blendshapes: bool = False) -> VideoResult:
    """The sinks, the frame loop and the closing; the caller commits ``atomic``."""
    fps = reader.fps
    meta = timeline_meta(pipe, fps=fps, source=reader.name, frame_step=frame_step,
                         width=reader.width, height=reader.height)
    mp4_path = out_dir / f"{stem}_annotated.mp4"
    video = AnnotatedVideoSink(atomic.temp(mp4_path), (reader.width, reader.height), reader.rate,
                               reader.time_base, codec="libx264" if h264_available() else "mpeg4",
                               audio=reader.audio())
    sinks = [video]
    try:
        timeline = TimelineSink(out_dir, stem, pipe.classes, meta, atomic=atomic, blendshapes=blendshapes)
        sinks.append(timeline)
        summary = SummarySink(out_dir / f"{stem}_summary.json", out_dir / f"{stem}_summary.csv",
                              pipe.classes, step_s=(frame_step / fps) if fps else None, atomic=atomic)
        chart = ChartSink(pipe.classes)
        sinks += [summary, chart]
        stats = run_video(reader, pipe, sinks, frame_step=frame_step, progress=progress)
        # stopped by a limit: the audio ends with the last frame (not the rest of the file)
        mp4 = video.close(audio_until=(reader.last_t + (1 / fps if fps else 0)) if reader.stopped else None)
        warnings = reader.warnings + mp4.warnings
        summary.info.update(source=reader.name, model=meta.get("model"), frames_read=stats.frames_read,
                            frames_processed=stats.frames_processed, frame_step=frame_step,
                            warnings=list(warnings))
        sfiles = summary.close()
        files = replace(timeline.close(), summary_json=sfiles.summary_json, summary_csv=sfiles.summary_csv,
                        annotated_mp4=mp4_path)
    except BaseException:
        for s in sinks:
            s.abort()
        raise
    last_t = summary.builder.last_t
    duration = reader.duration_s or ((last_t + (1 / fps if fps else 0)) if last_t is not None else None)
    return VideoResult(files=files, frames_read=stats.frames_read, frames_processed=stats.frames_processed,
                       fps=fps, duration_s=duration, summary=summary.summary, chart=chart.close(),
                       video_codec=mp4.video_codec, audio=mp4.audio, warnings=warnings,
                       stopped=reader.stopped)
