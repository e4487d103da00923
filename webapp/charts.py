"""What the pages show of results: the tracks table, the timeline charts and the live stats line
(pandas frames for ``gr.DataFrame`` / ``gr.LinePlot``, Markdown for ``gr.Markdown``)."""
from __future__ import annotations

import pandas as pd

from export.plot import timeline_frame
from pipeline import FrameResult

COLUMNS = ["time_s", "series", "prob", "track", "emotion"]
TRACK_COLUMNS = ["track", "emotion", "prob"]


def empty_timeline() -> pd.DataFrame:
    return pd.DataFrame({"time_s": pd.Series(dtype=float), "series": pd.Series(dtype=str),
                         "prob": pd.Series(dtype=float), "track": pd.Series(dtype=str),
                         "emotion": pd.Series(dtype=str)})


def readable_chart(long: pd.DataFrame | None, min_peak: float = 0.2, bin_s: float = 0.25) -> pd.DataFrame:
    """A long chart frame (time_s, track, emotion, prob, as :func:`export.plot.timeline_frame` gives)
    made readable and small for a LinePlot coloured by ``series``.

    Each track shows only the emotions that reach ``min_peak`` somewhere,
    averaged into ``bin_s`` bins.  Columns: time_s, series, prob, track, emotion.
    """
    if long is None or long.empty:
        return empty_timeline()
    long = long[["time_s", "track", "emotion", "prob"]].copy()
    long["track"] = long["track"].astype(str).str.lstrip("#")
    long["time_s"] = (long["time_s"].astype(float) / bin_s).round() * bin_s
    long = long.groupby(["track", "emotion", "time_s"], as_index=False)["prob"].mean()
    peak = long.groupby(["track", "emotion"])["prob"].transform("max")
    long = long[peak >= min_peak]
    long["series"] = "#" + long["track"] + " " + long["emotion"]
    long["prob"] = long["prob"].round(3)
    return long.sort_values(["series", "time_s"])[COLUMNS].reset_index(drop=True)


def timeline_plot_frame(df: pd.DataFrame | None, classes, min_peak: float = 0.2,
                        bin_s: float = 0.25) -> pd.DataFrame:
    """:func:`readable_chart` of a wide timeline (time_s, track_id, label, p_<class>...)."""
    if df is None or len(df) == 0:
        return empty_timeline()
    return readable_chart(timeline_frame(df, classes), min_peak, bin_s)


def video_plot_frame(chart: pd.DataFrame | None, duration_s: float | None) -> pd.DataFrame | None:
    """The Video tab's chart from a video's long chart frame (None when there is nothing to draw)."""
    plot = readable_chart(chart, bin_s=max(0.25, (duration_s or 0) / 200))
    return plot if len(plot) else None


def tracks_frame(result: FrameResult | None, classes) -> pd.DataFrame:
    """One row per face of ``result``: track, shown emotion, its probability, then every class's
    smoothed probability (columns named by the class)."""
    classes = list(result.classes) if result is not None else list(classes)
    rows = [] if result is None else [
        [f"#{f.track_id}", f.label, f"{f.label_prob:.0%}"] + [round(f.smoothed.get(c, 0.0), 3) for c in classes]
        for f in result]
    return pd.DataFrame(rows, columns=TRACK_COLUMNS + classes)


def stats_markdown(info: dict) -> str:
    """The live stats line under the video, from :meth:`webapp.session.LiveSession.info`."""
    state = "live" if info["active"] else "ended"
    return (f"**{info['fps']:.1f} fps** processed · **{info['latency_ms']:.0f} ms** per frame on the server · "
            f"{info['faces']} face(s) · {info['frames']} frames · model `{info['model']}` · "
            f"preset `{info['preset']}` · detector `{info['detector']}` · stream {state}")
