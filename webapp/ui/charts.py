"""What the pages show of results: the tracks table, the timeline charts, the stats line and the
one-line summaries (HTML for ``gr.HTML``, Markdown for ``gr.Markdown``, pandas for data).

Every person's colour is :func:`pipeline.annotate.track_hex` of their ID: the box on the
video, the swatch in the table and the line in the chart are the same colour.
"""
from __future__ import annotations

from html import escape

import numpy as np
import pandas as pd

from export.plot import EYES, MEASURE_SERIES, timeline_frame
from pipeline import FrameResult
from pipeline.annotate import state_lines, state_tags, strongest_actions, track_hex

from .svgchart import TOP, responsive_svg

TRACK_COLUMNS = ["track", "emotion", "prob", "held", "predicted", "runner_up", "runner_up_prob", "state", "details"]

#: Styles of the table and chart (added to the page's CSS by webapp.ui.page).
CSS = """
.tracks { width: 100%; table-layout: fixed; border-collapse: collapse; font-size: 14px; }
.tracks th { text-align: left; font-weight: 600; padding: 4px 6px; border-bottom: 1px solid var(--border-color-primary); }
.tracks td { padding: 4px 6px; border-bottom: 1px solid var(--border-color-primary); white-space: nowrap;
             overflow: hidden; text-overflow: ellipsis; vertical-align: middle; }
.tracks col.c-id { width: 19%; } .tracks col.c-top { width: 46%; } .tracks col.c-next { width: 35%; }
.tracks.states col.c-id { width: 17%; } .tracks.states col.c-top { width: 39%; }
.tracks.states col.c-next { width: 24%; } .tracks.states col.c-state { width: 20%; }
.tracks .warn { color: #c2410c; font-weight: 600; }
.tracks .sw { display: inline-block; width: 12px; height: 12px; border-radius: 3px; margin-right: 6px;
              vertical-align: -1px; }
.tracks .bar { display: block; height: 5px; border-radius: 3px; background: var(--border-color-primary);
               margin-top: 3px; }
.tracks .bar > span { display: block; height: 100%; border-radius: 3px; }
.tracks .tag { font-size: 11px; color: var(--body-text-color-subdued); margin-left: 4px; }
.tracks tr.unseen td { opacity: 0.55; }
.tracks-empty, .tl-empty { color: var(--body-text-color-subdued); padding: 8px 2px; }
svg.timeline { display: block; color: var(--body-text-color); }
svg.timeline.tl-narrow { display: none; }
@media (max-width: 600px) { svg.timeline.tl-wide { display: none; } svg.timeline.tl-narrow { display: block; } }
@media (max-width: 480px) { .tracks { font-size: 13px; } .tracks td, .tracks th { padding: 4px 3px; }
  .tracks.states col.c-next, .tracks.states .next { display: none; }
  .tracks.states col.c-id { width: 20%; } .tracks.states col.c-top { width: 50%; } .tracks.states col.c-state { width: 30%; } }
"""


def tracks_frame(result: FrameResult | None, classes=()) -> pd.DataFrame:
    """One row per face of ``result``, by track ID: the shown emotion and its probability, whether the
    smoother holds it while another class leads (``held``), whether the face was only predicted in this
    frame, and the runner-up class with its probability.  (The full vector: downloads and the API.)"""
    rows = []
    if result is not None and len(result):
        sm = result.smoothed if result.smoothed is not None else result.raw
        cls = list(result.classes)
        for i in np.argsort(result.track_ids, kind="stable"):
            f = result.face(int(i))
            p = np.asarray(sm[int(i)], np.float64)
            order = [int(j) for j in np.argsort(-p) if cls[int(j)] != f.label]
            nxt = order[0] if order else None
            m = {k: float(v[int(i)]) for k, v in result.measures.items()}
            if result.blendshapes is not None and np.isfinite(result.blendshapes[int(i), 0]):
                m["_actions"] = strongest_actions(result.blendshapes[int(i)])  # the tooltip names them
            tags = state_tags(m)
            state = tags[0] if tags else ("attentive" if m.get("attentive", 0) >= 0.5 else "")
            rows.append([f.track_id, f.label, round(f.label_prob, 3),
                         bool(cls[int(np.argmax(p))] != f.label) and not f.predicted, f.predicted,
                         cls[nxt] if nxt is not None else "", round(float(p[nxt]), 3) if nxt is not None else 0.0,
                         state, " · ".join(state_lines(m))])
    return pd.DataFrame(rows, columns=TRACK_COLUMNS)


def tracks_html(result: FrameResult | None, empty: str = "No faces in view.") -> str:
    """The tracks table as HTML: a colour swatch and ID, the shown emotion with a probability bar
    (marked *held* or *not seen* when so), and the runner-up.  Fits any width: no sideways scrolling."""
    df = tracks_frame(result)
    if not len(df):
        return f'<div class="tracks-empty">{escape(empty)}</div>'
    states = bool(result.measures)  # the face-state stage is on: a state column (details in its tooltip)
    out = [f'<table class="tracks{" states" if states else ""}"><colgroup><col class="c-id"><col class="c-top">'
           '<col class="c-next">' + ('<col class="c-state">' if states else "") + '</colgroup>'
           '<thead><tr><th>person</th><th>emotion</th><th class="next">runner-up</th>' + ("<th>state</th>" if states else "")
           + '</tr></thead><tbody>']
    for r in df.itertuples(index=False):
        col = track_hex(r.track)
        tag = ('<span class="tag">not seen</span>' if r.predicted
               else '<span class="tag" title="kept while another emotion leads by a small margin">held</span>'
               if r.held else "")
        out.append(
            f'<tr class="{"unseen" if r.predicted else ""}"><td><span class="sw" style="background:{col}"></span>'
            f'#{r.track}</td><td title="{escape(r.emotion)} {r.prob:.0%}">{escape(r.emotion)} {r.prob:.0%}{tag}'
            f'<span class="bar"><span style="width:{r.prob * 100:.0f}%;background:{col}"></span></span></td>'
            f'<td class="next">{escape(r.runner_up)} {r.runner_up_prob:.0%}</td>'
            + (f'<td title="{escape(r.details)}" class="{"warn" if r.state not in ("", "attentive") else ""}">'
               f'{escape(r.state) or "-"}</td>' if states else "") + '</tr>')
    out.append("</tbody></table>")
    return "".join(out)


def live_chart_html(df: pd.DataFrame | None, classes, what: str = TOP) -> str:
    """The Live tab's chart of the last 30 s from a wide timeline (time_s, track_id, label, p_<class>...)."""
    long = timeline_frame(df, classes) if df is not None and len(df) else None
    return responsive_svg(long, what, window_s=30.0, empty="The chart starts with the first face.")


def video_chart_html(chart: pd.DataFrame | None, duration_s: float | None, what: str = TOP) -> str:
    """The Video tab's chart of a whole video from its long chart frame (None: no video analysed yet)."""
    return responsive_svg(chart, what, window_s=None, bin_s=max(0.25, (duration_s or 0) / 200),
                          empty="No face was found in this video." if chart is not None
                          else "Each person's chart appears here once a video is analysed.")


def chart_choices(classes) -> list[tuple[str, str]]:
    """The chart's "what to plot" options: each person's top emotion, one emotion for everyone, or one
    face state or facial action for everyone (eye openness, smile, brow raise, frown)."""
    return ([("Top emotion of each person", TOP)] + [(f"{c} of each person", c) for c in classes]
            + [("Eye openness of each person (face states)", EYES)]
            + [(f"{a.capitalize()} of each person (facial action)", a) for a in MEASURE_SERIES if a != EYES])


def stats_markdown(info: dict) -> str:
    """The live stats line under the video, from :meth:`webapp.live.session.LiveSession.info`."""
    state = info.get("state") or ("live" if info["active"] else "stopped")
    icon = "●" if state == "live" else "■"
    return (f"{icon} **stream {state}** · **{info['fps']:.0f} fps** · **{info['latency_ms']:.0f} ms** per frame "
            f"on the server · {info['faces']} face{'' if info['faces'] == 1 else 's'} · {info['frames']} frames · "
            f"model `{info['model']}` · preset `{info['preset']}`")


def image_summary(result: dict) -> str:
    """One human line for the Image tab from ``FrameResult.to_dict()``: who shows what."""
    faces = result.get("faces") or []
    if not faces:
        return "No face found. Faces from about 24 px tall are found; try a sharper or larger photo."
    parts = []
    for f in faces:
        notes = face_notes(f.get("measures") or {})
        parts.append(f"**#{f['track_id']}** {f['label']} {f['label_prob']:.0%}" + (f" ({', '.join(notes)})" if notes else ""))
    return f"{len(faces)} face{'' if len(faces) == 1 else 's'}: " + " · ".join(parts)


#: An action is named in a one-line summary at this score or above (0-1; smiles of real smiling faces
#: score 0.6-0.95, neutral faces under 0.1).
NOTE_SCORE = 0.5


def face_notes(m: dict) -> list[str]:
    """A photo's face in words from its ``measures`` (``FaceView.to_dict()``): the facial actions at
    :data:`NOTE_SCORE` or above, shut eyes, and whether the person looks at the camera."""
    def v(k):
        x = m.get(k)
        return x if isinstance(x, (int, float)) and np.isfinite(x) else None

    out = [word for k, word in (("smile", "smiling"), ("brow_raise", "brows raised"), ("frown", "frowning"))
           if (v(k) or 0.0) >= NOTE_SCORE]
    eyes = [x for x in (v("eye_open_r"), v("eye_open_l")) if x is not None]
    if eyes and max(eyes) <= 0.2:
        out.append("eyes shut")
    cam = v("looking_at_camera")
    if cam is not None:
        out.append("looking at the camera" if cam >= 0.5 else "looking elsewhere")
    return out


def video_summary(summary: dict | None, frames_done: int, frames_read: int, duration_s: float, fps: float) -> str:
    """One human line for the Video tab: how many people, and each one's dominant emotion."""
    tracks = (summary or {}).get("tracks") or []
    head = (f"{frames_done} of {frames_read} frames analysed ({duration_s:.1f} s at {fps:.1f} fps). ")
    if not tracks:
        return head + "No face was found."
    parts = []
    for t in tracks[:12]:
        dom = t.get("dominant") or ""
        share = (t.get("label_share") or {}).get(dom)
        seen = t.get("visible_s")
        detail = []
        if isinstance(share, (int, float)):
            detail.append(f"{share:.0%} of the time")
        if isinstance(seen, (int, float)):
            detail.append(f"seen {seen:.1f} s")
        parts.append(f"**#{t.get('track_id')}** {dom}" + (f" ({', '.join(detail)})" if detail else ""))
    more = f" · and {len(tracks) - 12} more" if len(tracks) > 12 else ""
    return head + f"{len(tracks)} {'person' if len(tracks) == 1 else 'people'}: " + " · ".join(parts) + more
