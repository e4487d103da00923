"""The timeline chart as inline SVG: one line per person in the person's track colour.

Why not ``gr.LinePlot``: gradio 5.50's native plot puts the legend under the
plot (``orient: "bottom"``) inside a fixed height, so with more than a few
series it is cut off, it joins a line across a track's absence, and it gives
no place to name the emotion a line stands for.  An SVG string is cheap to
build, scales to any width (phones included), and shows exactly this:

* a legend of track IDs in their colours, at the top, wrapping onto more rows
  as needed (the SVG grows; nothing is clipped);
* a gap wherever a track was not seen (no line across it);
* what is plotted is chosen by ``what``: ``"top"`` (each person's top emotion
  and its probability, the emotion's name written where it changes), a class
  name (that emotion's probability for everyone), or a face-state series of
  ``export.plot.MEASURE_SERIES`` (``EYES``: eye openness, 1 = the person's open
  eyes; ``"smile"``, ``"brow raise"``, ``"frown"``: a facial action's score 0-1),
  when face states are on.

Input: the long chart frame of :func:`export.plot.timeline_frame` (columns
``time_s, track, emotion, prob``).
"""
from __future__ import annotations

from html import escape

import numpy as np
import pandas as pd

from export.plot import MEASURE_SERIES
from pipeline.annotate import track_hex

TOP = "top"
W, PLOT_H = 480, 200
#: The width drawn for phones (see :func:`responsive_svg`): the same 12 px text stays ~12 px on a 360 px screen.
NARROW = 320
LEFT, RIGHT, BOTTOM = 38, 10, 26
LEG_ROW, LEG_ITEM = 20, 46


def _series(long: pd.DataFrame, what: str, bin_s: float) -> pd.DataFrame:
    """Columns time_s, track (int), prob, emotion: one row per track and time bin."""
    d = long[["time_s", "track", "emotion", "prob"]].copy()
    d["track"] = d["track"].astype(str).str.lstrip("#").astype(int)
    d["time_s"] = (d["time_s"].astype(float) / bin_s).round() * bin_s
    d = d.groupby(["track", "time_s", "emotion"], as_index=False)["prob"].mean()
    if what == TOP:
        d = d[~d["emotion"].isin(list(MEASURE_SERIES))]
        d = d.loc[d.groupby(["track", "time_s"])["prob"].idxmax()]
    else:
        d = d[d["emotion"] == what]
        if what in MEASURE_SERIES:  # eye openness (1 = this person's open eyes) or an action's score, 0-1
            d = d.assign(prob=d["prob"].clip(0.0, 1.0))
    return d.sort_values(["track", "time_s"]).reset_index(drop=True)


def timeline_svg(long: pd.DataFrame | None, what: str = TOP, window_s: float | None = 30.0,
                 bin_s: float = 0.25, width: int = W, empty: str = "No faces yet.") -> str:
    """The chart as an HTML snippet (``<svg class="timeline">``) for ``gr.HTML``."""
    return _charts(long, what, window_s, bin_s, [(width, "")], empty)


def responsive_svg(long: pd.DataFrame | None, what: str = TOP, window_s: float | None = 30.0,
                   bin_s: float = 0.25, empty: str = "No faces yet.") -> str:
    """The chart drawn twice from one series, 480 and 320 units wide, for the page's CSS to show one
    (``tl-wide`` above 600 px of screen, ``tl-narrow`` below): an SVG scales its text with its width, and
    the wide one on a phone had 7 px labels."""
    return _charts(long, what, window_s, bin_s, [(W, "tl-wide"), (NARROW, "tl-narrow")], empty)


def _charts(long, what: str, window_s, bin_s: float, widths: list[tuple[int, str]], empty: str) -> str:
    if long is None or not len(long):
        return f'<div class="tl-empty">{escape(empty)}</div>'
    d = _series(long, what, bin_s)
    if not len(d):
        return f'<div class="tl-empty">{escape(empty)}</div>'
    t1 = float(d["time_s"].max())
    t0 = float(d["time_s"].min()) if window_s is None else max(0.0, t1 - window_s)
    if window_s is not None:
        d = d[d["time_s"] >= t0]
        t1 = max(t1, t0 + window_s)
    t1 = max(t1, t0 + 1.0)
    return "".join(_draw(d, what, t0, t1, bin_s, width, css_class) for width, css_class in widths)


def _draw(d: pd.DataFrame, what: str, t0: float, t1: float, bin_s: float, width: int, css_class: str) -> str:
    """One ``<svg>`` of the series ``d`` over [t0, t1], ``width`` units wide."""
    tracks = sorted(d["track"].unique())
    per_row = max(1, (width - 8) // LEG_ITEM)
    leg_h = LEG_ROW * ((len(tracks) + per_row - 1) // per_row) + 6
    top, h = leg_h + 6, leg_h + 6 + PLOT_H + BOTTOM
    x = lambda t: LEFT + (t - t0) / (t1 - t0) * (width - LEFT - RIGHT)  # noqa: E731
    y = lambda p: top + (1.0 - p) * PLOT_H  # noqa: E731
    title = "top emotion of each person" if what == TOP else f"{what} of each person"
    out = [f'<svg class="timeline{" " + css_class if css_class else ""}" viewBox="0 0 {width} {h}" width="100%" role="img" '
           f'aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg" '
           'style="font: 12px sans-serif; max-width: 100%;">']
    out.append('<g class="legend">')
    for k, tid in enumerate(tracks):
        lx, ly = 4 + (k % per_row) * LEG_ITEM, 4 + (k // per_row) * LEG_ROW
        out.append(f'<rect x="{lx}" y="{ly + 3}" width="12" height="12" rx="2" fill="{track_hex(tid)}"/>'
                   f'<text x="{lx + 16}" y="{ly + 13}" fill="currentColor">#{tid}</text>')
    out.append('</g><g class="axes" stroke="#8888" stroke-width="1">')
    for p in (0.0, 0.5, 1.0):
        out.append(f'<line x1="{LEFT}" x2="{width - RIGHT}" y1="{y(p):.1f}" y2="{y(p):.1f}"/>')
    out.append('</g><g fill="currentColor" font-size="11">')
    for p in (0.0, 0.5, 1.0):
        out.append(f'<text x="{LEFT - 4}" y="{y(p) + 4:.1f}" text-anchor="end">{p:.0%}</text>')
    step = _tick_step(t1 - t0)
    for t in np.arange(np.ceil(t0 / step) * step, t1 + 1e-6, step):
        out.append(f'<text x="{x(t):.1f}" y="{top + PLOT_H + 16}" text-anchor="middle">{t:.0f} s</text>')
    out.append('</g>')
    gap = max(4 * bin_s, 0.75)
    texts: list[tuple] = []  # boxes of the emotion names written so far
    for tid, g in d.groupby("track", sort=True):
        col = track_hex(int(tid))
        ts, ps, em = g["time_s"].to_numpy(), g["prob"].to_numpy(), g["emotion"].to_numpy()
        breaks = np.flatnonzero(np.diff(ts) > gap) + 1
        for seg in np.split(np.arange(len(ts)), breaks):
            pts = " ".join(f"{x(ts[i]):.1f},{y(ps[i]):.1f}" for i in seg)
            if len(seg) == 1:
                out.append(f'<circle cx="{x(ts[seg[0]]):.1f}" cy="{y(ps[seg[0]]):.1f}" r="2" fill="{col}"/>')
            else:
                out.append(f'<polyline points="{pts}" fill="none" stroke="{col}" stroke-width="2" '
                           'stroke-linejoin="round"/>')
        if what == TOP:  # name the emotion where a line starts or changes, where the name has room
            last_e = None
            for i in range(len(ts)):
                if em[i] == last_e:
                    continue
                last_e = em[i]
                name = str(em[i])
                tx, ty = x(ts[i]) + 2, max(y(ps[i]) - 4, top + 9)
                box = (tx, ty - 9, tx + 5.6 * len(name), ty + 2)
                if box[2] > width or any(_hits(box, b) for b in texts):
                    continue
                texts.append(box)
                out.append(f'<text x="{tx:.1f}" y="{ty:.1f}" font-size="10" fill="{col}" '
                           f'paint-order="stroke" stroke="var(--background-fill-primary, #fff)" stroke-width="3">'
                           f'{escape(name)}</text>')
    out.append('</svg>')
    return "".join(out)


def _hits(a, b) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def _tick_step(span: float) -> float:
    for step in (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 1800, 3600):
        if span / step <= 7:
            return float(step)
    return 7200.0
