"""Tests for pipeline/video.py (the reader and the frame loop) and export/files.AtomicFiles.

The videos are made here with PyAV, so each test knows exactly what the file
holds (a resolution switch, a header without a duration, a rotation matrix).
"""
from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest

from export.files import AtomicFiles
from export.video import VideoError as ExportVideoError
from export.video import process_video
from pipeline.results import FrameResult
from pipeline.video import VideoError, VideoReader
from pipeline.videorun import run_video


def _write(path, size, n, rate=10, fmt=None, start=0, options=None, rotation=None, value=None):
    """An H.264 video of ``n`` frames of ``size`` (w, h); frame i is grey level i*10 (or ``value``)."""
    w, h = size
    with av.open(str(path), "w", format=fmt, options=options or {}) as c:
        s = c.add_stream("libx264", rate=rate)
        s.width, s.height, s.pix_fmt = w, h, "yuv420p"
        if rotation is not None:
            s.set_display_rotation(rotation)
        for i in range(n):
            img = np.full((h, w, 3), (i * 10) % 250 if value is None else value, np.uint8)
            if value is not None:
                img[:, : w // 4] = 255  # a white band on the left
            f = av.VideoFrame.from_ndarray(img, format="rgb24")
            f.pts = start + i
            c.mux(s.encode(f))
        c.mux(s.encode(None))
    return Path(path)


def _switching_ts(tmp_path) -> Path:
    """An MPEG-TS whose H.264 stream switches from 160x120 to 320x240 after 10 frames (two segments
    with the same stream id, concatenated as a broadcast would); the header shows only the first size."""
    a = _write(tmp_path / "a.ts", (160, 120), 10, fmt="mpegts")
    b = _write(tmp_path / "b.ts", (320, 240), 10, fmt="mpegts", start=12)
    dst = tmp_path / "switch.ts"
    dst.write_bytes(a.read_bytes() + b.read_bytes())
    return dst


# -- the reader ------------------------------------------------------------------
def test_reader_refuses_a_frame_over_max_pixels_mid_file(tmp_path):
    src = _switching_ts(tmp_path)
    with av.open(str(src)) as c:  # what the header says: the first, small size
        assert (c.streams.video[0].width, c.streams.video[0].height) == (160, 120)
    with VideoReader(src) as r:  # no limit: both sizes come through, as decoded
        sizes = [rgb.shape[:2] for _, _, rgb in r]
    assert sizes == [(120, 160)] * 10 + [(240, 320)] * 10
    # a limit the header passes: the decoder refuses the first big picture (it never allocates one)
    # and decoding stops there; the small frames decoded before are kept (a threaded decoder may
    # lose the last few it still held)
    with VideoReader(src, max_pixels=160 * 120 * 2) as r:
        got = [(i, rgb.shape[:2]) for i, _, rgb in r]
    n = len(got)
    assert 5 <= n <= 10 and got == [(i, (120, 160)) for i in range(n)]
    assert r.stopped == (f"the stream changes to 320x240 (76,800 pixels per frame) after frame {n - 1}; "
                         "the limit is 38,400 pixels")
    assert r.warnings == [f"analysis stopped after {n} frames ({(n - 1) / 10:.1f} s of the video's 2.0 s): " + r.stopped
                          + "; the results cover that part"]
    with pytest.raises(VideoError, match=r"the video is 160x120 .*the limit is 19,199 pixels"):  # header
        VideoReader(src, max_pixels=160 * 120 - 1)


def test_process_video_with_a_resolution_switch(tmp_path):
    src = _switching_ts(tmp_path)
    out = tmp_path / "out"
    part = process_video(src, out / "part", config="steady", max_pixels=50_000)  # stops, keeps the small part
    assert 5 <= part.frames_read <= 10 and any("changes to 320x240" in w for w in part.warnings)
    assert part.summary_json.exists() and part.timeline_csv.exists()
    with av.open(str(part.annotated_mp4)) as c:
        assert sum(1 for _ in c.decode(video=0)) == part.frames_read
    r = process_video(src, out, config="steady")  # within limits: the big frames are scaled down
    with av.open(str(r.annotated_mp4)) as c:
        frames = [(f.width, f.height) for f in c.decode(video=0)]
    assert frames == [(160, 120)] * 20 and r.frames_read == 20


def test_reader_duration_limit_while_decoding(tmp_path):
    # Matroska written "live" has no duration in its header: only decoding can tell the length
    src = _write(tmp_path / "live.mkv", (64, 48), 50, rate=10, fmt="matroska", options={"live": "1"})
    with VideoReader(src) as r:
        assert r.duration_s is None and r.total_frames == 0
        assert len(list(r)) == 50
    with VideoReader(src, max_seconds=2) as r:  # the header cannot refuse it...
        seen = [t for _, t, _ in r]
    assert len(seen) == 21 and seen[-1] == pytest.approx(2.0)  # ...the 22nd frame (t = 2.1 s) stops it
    assert r.stopped == "the video is longer than the limit of 2 s (frame 21 is at 2.1 s)"


def test_reader_header_facts_and_pts_times(tmp_path):
    src = _write(tmp_path / "v.mp4", (64, 48), 20, rate=25)
    with VideoReader(src) as r:
        assert (r.width, r.height, r.rotation) == (64, 48, 0)
        assert r.fps == pytest.approx(25) and r.total_frames == 20 and r.duration_s == pytest.approx(0.8)
        assert not r.has_audio and r.audio() is None
        frames = list(r)
    assert [i for i, _, _ in frames] == list(range(20))
    np.testing.assert_allclose([t for _, t, _ in frames], np.arange(20) / 25, atol=1e-6)
    assert all(rgb.dtype == np.uint8 and rgb.shape == (48, 64, 3) for _, _, rgb in frames)
    assert r.warnings == []
    with pytest.raises(ValueError, match="only once"):
        list(r)


@pytest.mark.parametrize("degrees, band", [(90, "bottom"), (-90, "top"), (180, "right")])
def test_reader_rotates_by_the_display_matrix(tmp_path, degrees, band):
    """Frames come out upright: rotated counter-clockwise by PyAV's VideoFrame.rotation (the display
    matrix, FFmpeg's convention).  A white band on the stored frame's left ends up at ``band``."""
    src = _write(tmp_path / "rot.mp4", (64, 32), 3, rotation=degrees, value=0)
    with VideoReader(src) as r:
        assert r.rotation % 360 == degrees % 360  # 180 reads back as -180
        rgb = next(iter(r))[2]
    grey = rgb[..., 0].astype(int)
    expect_hw = (32, 64) if degrees == 180 else (64, 32)
    assert rgb.shape[:2] == expect_hw and (r.height, r.width) == expect_hw
    h, w = grey.shape
    part = {"bottom": grey[-h // 8:], "top": grey[: h // 8], "right": grey[:, -w // 8:]}[band]
    rest = {"bottom": grey[: h // 2], "top": grey[h // 2:], "right": grey[:, : w // 2]}[band]
    assert part.mean() > 200 and rest.mean() < 50


def test_reader_errors_are_for_the_user(tmp_path):
    (tmp_path / "empty.mp4").write_bytes(b"")
    (tmp_path / "text.mp4").write_text("no video here\n" * 20)
    for name, why in [("empty.mp4", "the file is empty"), ("text.mp4", "not a readable video file"),
                      ("missing.mp4", "file not found"), (".", "is a folder")]:
        with pytest.raises(VideoError, match=why):
            VideoReader(tmp_path / name)
    assert issubclass(VideoError, ValueError) and ExportVideoError is VideoError


# -- the frame loop ------------------------------------------------------------------
class FakeReader:
    total_frames = 10

    def __init__(self, n=10):
        self.n = n

    def __iter__(self):
        for i in range(self.n):
            yield i, i / 10, np.full((4, 4, 3), i, np.uint8)


class FakePipeline:
    def __init__(self):
        self.calls = []

    def process(self, rgb, t):
        self.calls.append((int(rgb[0, 0, 0]), t))
        return FrameResult(index=len(self.calls) - 1, timestamp=t, width=4, height=4)


class RecordingSink:
    def __init__(self, fail_at=None):
        self.writes, self.closed, self.aborted, self.fail_at = [], False, False, fail_at

    def write(self, frame_index, t, rgb, result, analysed):
        if frame_index == self.fail_at:
            raise RuntimeError("sink failed")
        self.writes.append((frame_index, t, int(rgb[0, 0, 0]), None if result is None else result.index, analysed))

    def close(self):
        self.closed = True

    def abort(self):
        self.aborted = True


def test_run_video_writes_every_frame_and_analyses_every_step():
    pipe, sinks, progress = FakePipeline(), [RecordingSink(), RecordingSink()], []
    stats = run_video(FakeReader(10), pipe, sinks, frame_step=3, progress=lambda d, t: progress.append((d, t)))
    assert pipe.calls == [(0, 0.0), (3, 0.3), (6, 0.6), (9, 0.9)]  # frames 0, 3, 6, 9 analysed
    assert (stats.frames_read, stats.frames_processed, stats.last.index) == (10, 4, 3)
    expect = [(i, i / 10, i, i // 3, i % 3 == 0) for i in range(10)]  # every frame, with the latest result
    assert sinks[0].writes == sinks[1].writes == expect
    assert not any(s.closed or s.aborted for s in sinks)  # closing is the caller's
    assert progress[0] == (1, 10) and progress[-1] == (10, 10)
    with pytest.raises(ValueError):
        run_video(FakeReader(1), pipe, [], frame_step=0)


def test_run_video_aborts_every_sink_on_failure():
    sinks = [RecordingSink(), RecordingSink(fail_at=4), RecordingSink()]
    with pytest.raises(RuntimeError, match="sink failed"):
        run_video(FakeReader(10), FakePipeline(), sinks)
    assert all(s.aborted and not s.closed for s in sinks)
    assert len(sinks[0].writes) == 5 and len(sinks[2].writes) == 4


# -- all or nothing ------------------------------------------------------------------
def test_atomic_files_all_or_nothing(tmp_path):
    with AtomicFiles() as files:
        a, b = files.temp(tmp_path / "a.txt"), files.temp(tmp_path / "b.txt")
        a.write_text("A")
        b.write_text("B")
        assert sorted(p.name for p in tmp_path.iterdir()) == sorted([a.name, b.name])  # hidden temporary names
        assert a.name.startswith(".a.txt.") and a.name.endswith(".part")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt", "b.txt"]
    assert (tmp_path / "a.txt").read_text() == "A"

    d = tmp_path / "fail"
    d.mkdir()
    with pytest.raises(RuntimeError), AtomicFiles() as files:  # an error inside: nothing is left
        files.temp(d / "a.txt").write_text("A")
        raise RuntimeError("boom")
    assert list(d.iterdir()) == []

    (d / "c").mkdir()  # a final name that cannot be replaced: the commit fails half-way...
    (d / "c" / "x").write_text("keeps the folder non-empty")
    with pytest.raises(OSError), AtomicFiles() as files:
        files.temp(d / "a.txt").write_text("A")
        files.temp(d / "c").write_text("C")
        files.temp(d / "z.txt").write_text("Z")
    assert sorted(p.name for p in d.iterdir()) == ["c"]  # ...and the file already moved is gone too

    with pytest.raises(FileNotFoundError), AtomicFiles() as files:  # a registered file never written
        files.temp(d / "a.txt").write_text("A")
        files.temp(d / "never.txt")
    assert sorted(p.name for p in d.iterdir()) == ["c"]


# -- chart data ------------------------------------------------------------------------
def test_chart_sink_stays_bounded_over_a_long_video():
    from export.sinks import ChartSink

    classes = ("neutral", "happiness", "sadness")
    sink = ChartSink(classes, max_points=3000)
    rng = np.random.default_rng(0)
    kept = []
    for i in range(20_000):  # ~11 minutes at 30 fps, two faces
        r = FrameResult(index=i, timestamp=i / 30, width=64, height=64, classes=classes,
                        boxes=np.zeros((2, 4), np.float32), scores=np.ones(2, np.float32),
                        keypoints=np.zeros((2, 6, 2), np.float32), track_ids=np.array([1, 2]),
                        predicted=np.zeros(2, bool), smoothed=rng.dirichlet(np.ones(3), 2).astype(np.float32))
        sink.write(i, i / 30, None, r, analysed=True)
        sink.write(i, i / 30 + 0.01, None, r, analysed=False)  # repeats of the same result are ignored
        kept.append(sink._rows)
    assert max(kept) <= 2 * (3000 // 3) + 2  # memory: never more than twice the rows a chart needs
    chart = sink.close()
    assert list(chart.columns) == ["time_s", "track", "emotion", "prob", "series"]
    assert 2000 < len(chart) <= 3000 and set(chart["track"]) == {"#1", "#2"}
    assert chart["time_s"].min() == 0 and chart["time_s"].max() > 19_000 / 30  # the whole video is covered
    assert len(ChartSink(classes).close()) == 0
