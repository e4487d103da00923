"""Timeline charts: long-format data for ``gr.LinePlot`` and a matplotlib PNG.

Class colours are fixed (:data:`CLASS_COLORS`), so "happiness" has the same
colour in every chart, app tab and PNG.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from pipeline.results import prob_columns

from .files import AtomicFiles

CLASS_COLORS = {
    "neutral": "#8c8c8c", "happiness": "#f2b701", "surprise": "#e68310", "sadness": "#3969ac",
    "anger": "#cf1c90", "disgust": "#11a579", "fear": "#7f3c8d", "contempt": "#80ba5a",
}
_EXTRA = ["#e73f74", "#008695", "#4b4b8f", "#a5aa99"]


def class_colors(classes) -> dict[str, str]:
    out, k = {}, 0
    for c in classes:
        if c in CLASS_COLORS:
            out[c] = CLASS_COLORS[c]
        else:
            out[c] = _EXTRA[k % len(_EXTRA)]
            k += 1
    return out


#: The pseudo-class of the long chart frame that carries eye openness (face states), not an emotion.
EYES = "eye openness"
#: The face-state series the charts can plot besides the emotions: pseudo-class -> the timeline columns
#: whose mean it is (0-1 each): eye openness, and the three facial actions of the blendshapes.
MEASURE_SERIES = {EYES: ("eye_open_r", "eye_open_l"), "smile": ("smile",), "brow raise": ("brow_raise",),
                  "frown": ("frown",)}
#: Every column :data:`MEASURE_SERIES` reads, in a fixed order (the chart sinks keep these).
MEASURE_COLUMNS = tuple(dict.fromkeys(c for cols in MEASURE_SERIES.values() for c in cols))


def timeline_frame(df, classes, max_points: int | None = 5000):
    """Long format for the charts: columns ``time_s, track, emotion, prob, series``.

    ``track`` is ``"#<id>"``; ``series`` is ``"#<id> <emotion>"`` (one line per
    track and class).  For each entry of :data:`MEASURE_SERIES` whose columns ``df``
    has (eye openness from ``eye_open_r``/``eye_open_l``, ``smile``, ``brow_raise``,
    ``frown``), the mean of its columns comes as one more series per track, under
    its name (:data:`EYES`, ``"smile"`` ...; rows without a measure are left out).
    ``max_points`` (output points) thins the input rows evenly so a long session
    still draws fast (None: all rows).
    """
    import pandas as pd

    classes = list(classes)
    cols = ["time_s", "track", "emotion", "prob", "series"]
    if df is None or not len(df):
        return pd.DataFrame({c: pd.Series(dtype="float64" if c in ("time_s", "prob") else "object") for c in cols})
    pcols = prob_columns(classes)
    # a measure counts only where it has values (the chart sinks keep every measure column, NaN when unmeasured)
    series = {k: v for k, v in MEASURE_SERIES.items()
              if all(c in df.columns for c in v)
              and np.isfinite(df[list(v)].apply(pd.to_numeric, errors="coerce").to_numpy(float)).any()}
    mcols = list(dict.fromkeys(c for v in series.values() for c in v))
    d = df[["time_s", "track_id", *pcols, *mcols]]
    if max_points:
        per_row = len(classes) + len(series)
        limit = max(1, max_points // per_row)
        if len(d) > limit:
            d = d.iloc[np.unique(np.linspace(0, len(d) - 1, limit).round().astype(int))]
    long = d.melt(id_vars=["time_s", "track_id"], value_vars=pcols, var_name="emotion", value_name="prob")
    long["emotion"] = long["emotion"].map(dict(zip(pcols, classes)))
    parts = [long]
    for name, sc in series.items():
        e = d[list(sc)].apply(pd.to_numeric, errors="coerce").to_numpy(float)
        n = np.isfinite(e).sum(axis=1)
        ok = n > 0
        if ok.any():
            v = np.nansum(np.where(np.isfinite(e), e, 0.0), axis=1)[ok] / n[ok]
            parts.append(pd.DataFrame({"time_s": d["time_s"].to_numpy()[ok], "track_id": d["track_id"].to_numpy()[ok],
                                       "emotion": name, "prob": np.round(v, 4)}))
    long = pd.concat(parts, ignore_index=True) if len(parts) > 1 else long
    long["track"] = "#" + long["track_id"].astype(int).astype(str)
    long["series"] = long["track"] + " " + long["emotion"]
    long = long.sort_values(["track_id", "emotion", "time_s"], kind="stable")
    return long[cols].reset_index(drop=True)


def _spans(t: np.ndarray, on: np.ndarray) -> list[tuple[float, float]]:
    """(start, end) times of the runs where ``on`` is 1."""
    on = np.nan_to_num(on, nan=0.0) > 0.5
    edges = np.flatnonzero(np.diff(np.r_[0, on.astype(int), 0]))
    return [(t[a], t[min(b, len(t) - 1)]) for a, b in zip(edges[::2], edges[1::2])]


def _face_states(ax, g, t: np.ndarray, gaps: np.ndarray) -> None:
    """Eye openness (dashed), blinks (ticks at the top), drowsy (red) and looking-away (grey) spans."""
    if "eye_open_r" not in g or not np.isfinite(g[["eye_open_r", "eye_open_l"]].to_numpy(float)).any():
        return
    e = g[["eye_open_r", "eye_open_l"]].to_numpy(float)
    n = np.isfinite(e).sum(axis=1)
    eo = np.where(n > 0, np.nansum(e, axis=1) / np.maximum(n, 1), np.nan)
    ax.plot(np.insert(t, gaps, np.nan), np.insert(np.clip(eo, 0, 1), gaps, np.nan), color="black", lw=0.8,
            ls="--", label="eye openness")
    for col, color, alpha in (("drowsy", "#d62728", 0.18), ("looking_away", "#7f7f7f", 0.22)):
        if col in g:
            for a, b in _spans(t, g[col].to_numpy(float)):
                ax.axvspan(a, b, color=color, alpha=alpha, lw=0)
    if "blinks" in g:
        b = g["blinks"].to_numpy(float)
        new = np.flatnonzero(np.diff(np.nan_to_num(b, nan=-1)) > 0) + 1
        ax.plot(t[new], np.full(len(new), 0.98), "|", color="black", ms=8)


def plot_timeline(df, classes, path_png, title: str | None = None, max_tracks: int = 12) -> Path:
    """A PNG with one subplot per track (the ``max_tracks`` longest-seen), probability per class over time.

    With face states (timeline 1.3): each track's eye openness (dashed), its blinks (ticks at the
    top) and its drowsy (red) and looking-away (grey) spans.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure  # no pyplot: no global state, thread-safe

    classes = list(classes)
    colors = class_colors(classes)
    path_png = Path(path_png)
    tracks = []
    if df is not None and len(df):
        counts = df.groupby("track_id").size().sort_values(ascending=False)
        tracks = sorted(int(t) for t in counts.index[:max_tracks])
    n = max(1, len(tracks))
    fig = Figure(figsize=(10, 1.0 + 2.2 * n), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(n, 1, sharex=True, squeeze=False)[:, 0]
    if not tracks:
        axes[0].text(0.5, 0.5, "no faces", ha="center", va="center", transform=axes[0].transAxes)
        axes[0].set_yticks([])
    for ax, tid in zip(axes, tracks):
        g = df[df["track_id"] == tid].sort_values("time_s")
        t = g["time_s"].to_numpy()
        # break lines where the face was not seen (gap > 1 s)
        gaps = np.flatnonzero(np.diff(t) > 1.0) + 1
        for c, col in zip(classes, prob_columns(classes)):
            y = g[col].to_numpy(dtype=float)
            ts, ys = np.insert(t, gaps, np.nan), np.insert(y, gaps, np.nan)
            ax.plot(ts, ys, color=colors[c], lw=1.4, label=c)
        _face_states(ax, g, t, gaps)
        ax.set_ylim(-0.02, 1.02)
        ax.set_ylabel(f"face #{tid}")
        ax.grid(alpha=0.3)
    axes[-1].set_xlabel("time (s)")
    if tracks:
        axes[0].legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=min(len(classes), 8),
                       frameon=False, fontsize=9)
    if title:
        fig.suptitle(title, fontsize=10)
    path_png.parent.mkdir(parents=True, exist_ok=True)
    with AtomicFiles() as files:
        fig.savefig(files.temp(path_png), format="png")
    return path_png
