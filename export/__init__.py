"""Export of analysis results: timelines (CSV/JSON), summaries, annotated videos, plots.

* :mod:`export.timeline` - :class:`TimelineWriter` (streaming CSV + JSON) and :func:`read_timeline`.
* :mod:`export.summary` - :func:`summarize` per track and for the group over time.
* :mod:`export.video` - :func:`process_video`: a video file in, annotated MP4 + timeline + summary out.
* :mod:`export.live` - :class:`LiveRecorder` for a live session (bounded memory, snapshots).
* :mod:`export.plot` - data for ``gr.LinePlot`` and a matplotlib PNG.

``python -m export VIDEO|FOLDER --out DIR`` is the command line.  See ``export/README.md``
and ``export/SCHEMA.md``.

Names are imported lazily, so ``import export`` stays cheap (no model, no PyAV).
"""
from __future__ import annotations

import importlib

APP_VERSION = "0.1.0"

_LAZY = {
    "TimelineWriter": "timeline", "read_timeline": "timeline", "timeline_meta": "timeline",
    "SCHEMA_NAME": "timeline", "SCHEMA_VERSION": "timeline",
    "summarize": "summary", "write_summary": "summary", "write_summary_csv": "summary",
    "SummaryBuilder": "summary",
    "process_video": "video", "VideoResult": "video", "VideoError": "video", "h264_available": "video",
    "LiveRecorder": "live", "cleanup_old": "live",
    "timeline_frame": "plot", "plot_timeline": "plot",
}

__all__ = ["APP_VERSION", *sorted(_LAZY)]  # noqa: PLE0604 (names, resolved lazily)


def __getattr__(name):
    mod = _LAZY.get(name)
    if mod is None:
        raise AttributeError(f"module 'export' has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{mod}"), name)
