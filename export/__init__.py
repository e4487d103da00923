"""Export of analysis results: timelines (CSV/JSON), summaries, annotated videos, chart data.

    from export import process_video, LiveRecorder

    r = process_video("clip.mp4", "out/", config="steady", frame_step=2)   # VideoResult
    r.files.paths()            # the files written (OutputFiles)
    r.summary, r.chart         # summary dict, chart DataFrame for gr.LinePlot

* :mod:`export.timeline` - :class:`TimelineWriter` (streaming CSV + JSON), :func:`read_timeline`.
* :mod:`export.summary` - :class:`SummaryBuilder`, :func:`summarize` per track and for the group over time.
* :mod:`export.video` - :func:`process_video`: a video file in, every output out.
* :mod:`export.sinks`, :mod:`export.mp4` - the sinks ``process_video`` feeds through
  :func:`pipeline.videorun.run_video`: timeline, summary, chart data, annotated MP4.
* :mod:`export.live` - :class:`LiveRecorder` for a live session (bounded memory, snapshots).
* :mod:`export.files` - :class:`OutputFiles` (what was written) and :class:`AtomicFiles` (all or nothing).
* :mod:`export.plot` - chart data for ``gr.LinePlot`` and a matplotlib PNG.
* :mod:`export.batch` - many videos at once (a pool of worker processes or threads);
  :mod:`export.ray_engine` - one Ray task per video (Ray is optional).

``python -m export VIDEO|FOLDER --out DIR`` is the command line.  See
``export/README.md`` and ``export/SCHEMA.md``.  Importing this package loads
no model (it imports PyAV and the pipeline's code, not its weights).
"""
from __future__ import annotations

APP_VERSION = "0.1.0"  # before the imports: export.timeline reads it

from .files import AtomicFiles, OutputFiles
from .live import LiveRecorder, cleanup_old
from .plot import plot_timeline, timeline_frame
from .summary import SummaryBuilder, summarize, write_summary, write_summary_csv
from .timeline import (
    SCHEMA_NAME,
    SCHEMA_VERSION,
    TimelineWriter,
    read_timeline,
    timeline_meta,
)
from .video import VideoError, VideoResult, h264_available, process_video

__all__ = [
    "APP_VERSION", "SCHEMA_NAME", "SCHEMA_VERSION", "AtomicFiles", "LiveRecorder", "OutputFiles",
    "SummaryBuilder", "TimelineWriter", "VideoError", "VideoResult", "cleanup_old", "h264_available",
    "plot_timeline", "process_video", "read_timeline", "summarize", "timeline_frame", "timeline_meta",
    "write_summary", "write_summary_csv",
]
