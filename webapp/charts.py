"""Data for the pages' tables and line charts (pandas frames for gr.DataFrame / gr.LinePlot)."""
from __future__ import annotations

import pandas as pd

from export.plot import timeline_frame

COLUMNS = ["time_s", "series", "prob", "track", "emotion"]


def empty_timeline() -> pd.DataFrame:
    return pd.DataFrame({"time_s": pd.Series(dtype=float), "series": pd.Series(dtype=str),
                         "prob": pd.Series(dtype=float), "track": pd.Series(dtype=str),
                         "emotion": pd.Series(dtype=str)})


def _long(df: pd.DataFrame, classes: list[str]) -> pd.DataFrame:
    return timeline_frame(df, classes)[["time_s", "track", "emotion", "prob"]].copy()


def timeline_plot_frame(df: pd.DataFrame | None, classes: list[str], min_peak: float = 0.2,
                        bin_s: float = 0.25) -> pd.DataFrame:
    """Long frame (time_s, series, prob, track, emotion) for a LinePlot coloured by ``series``.

    ``df`` is a wide timeline (time_s, track_id, label, p_<class>...).  To keep
    the chart readable and small, each track shows only the emotions that
    reach ``min_peak`` somewhere in the window, averaged into ``bin_s`` bins.
    """
    if df is None or len(df) == 0:
        return empty_timeline()
    long = _long(df, classes)
    if long.empty:
        return empty_timeline()
    long["track"] = long["track"].astype(str).str.lstrip("#")
    long["time_s"] = (long["time_s"].astype(float) / bin_s).round() * bin_s
    long = long.groupby(["track", "emotion", "time_s"], as_index=False)["prob"].mean()
    peak = long.groupby(["track", "emotion"])["prob"].transform("max")
    long = long[peak >= min_peak]
    long["series"] = "#" + long["track"] + " " + long["emotion"]
    long["prob"] = long["prob"].round(3)
    return long.sort_values(["series", "time_s"])[COLUMNS].reset_index(drop=True)


def tracks_frame(header: list[str], rows: list[list]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=header)
