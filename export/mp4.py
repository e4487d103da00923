"""The annotated MP4: every source frame with the latest analysis drawn, and the source audio.

* Video: H.264 (``libx264``, ``preset=veryfast``, ``crf=23``, yuv420p,
  ``+faststart``) when PyAV's FFmpeg has it, else MPEG-4 Part 2 (``mpeg4``,
  whose time base must fit in 16 bits) with a warning.  Frame times are the
  source times, so variable-frame-rate video stays in sync.  Odd frame sizes
  lose their last row/column (yuv420p); a frame of another size (a stream that
  changes resolution) is scaled to the first frame's size.
* Audio (an :class:`pipeline.video.AudioTrack`): AAC and MP3 are copied, other
  codecs re-encoded to AAC.  Packets are muxed as the video reaches their
  time, so audio and video stay interleaved.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from pipeline.annotate import draw
from pipeline.video import short_error

COPY_AUDIO = {"aac", "mp3", "mp3float"}  # codecs browsers play inside MP4: copied as they are


def h264_available() -> bool:
    return "libx264" in av.codecs_available


@dataclass
class Mp4Info:
    """What :meth:`AnnotatedVideoSink.close` made."""

    path: Path
    video_codec: str
    audio: str  # "copied (aac)", "re-encoded (pcm_s16le -> aac)", "none", "dropped: ..."
    warnings: list[str] = field(default_factory=list)


class _Audio:
    """The audio part of the output: copy or re-encode the packets of an AudioTrack."""

    def __init__(self, out, track):
        self.out, self.track, self.skipped = out, track, 0
        self.resampler = None
        name = track.codec
        if name in COPY_AUDIO:
            self.stream = out.add_stream_from_template(track.stream)
            self.mode = f"copied ({name.replace('float', '')})"
        else:
            self.stream = out.add_stream("aac", rate=track.sample_rate)
            self.resampler = av.AudioResampler(format="fltp", layout="stereo", rate=track.sample_rate)
            self.mode = f"re-encoded ({name} -> aac)"
        self._offset = {}

    def mux_until(self, t: float | None) -> None:
        for packet in self.track.packets_until(t):
            if self.resampler is None:
                self._copy(packet)
            else:
                self._encode(packet)

    def _copy(self, packet) -> None:
        if packet.dts is None or packet.pts is None or not packet.size:
            return
        tb = packet.time_base
        off = self._offset.get(tb)
        if off is None:
            off = self._offset[tb] = int(round(self.track.start_s / float(tb)))
        packet.pts -= off
        packet.dts -= off
        packet.stream = self.stream
        try:
            self.out.mux(packet)
        except av.FFmpegError:  # e.g. a timestamp the muxer refuses: skip that packet
            self.skipped += 1

    def _encode(self, packet) -> None:
        try:
            frames = packet.decode()
        except (av.FFmpegError, EOFError):
            self.skipped += 1
            return
        for af in frames:
            af.pts = None
            for rf in self.resampler.resample(af):
                self.out.mux(self.stream.encode(rf))

    def finish(self, until: float | None = None) -> None:
        self.mux_until(until)
        if self.resampler is not None:
            for rf in self.resampler.resample(None):
                self.out.mux(self.stream.encode(rf))
            self.out.mux(self.stream.encode(None))
        self.skipped += self.track.errors


class AnnotatedVideoSink:
    """Writes ``path`` (MP4); a :class:`pipeline.videorun.FrameSink`.

    ``size`` is the (width, height) of the frames to come, ``rate`` the source
    frame rate (a Fraction, for the encoder), ``time_base`` the source video's.
    ``codec`` is ``"libx264"`` or ``"mpeg4"``.  ``audio`` is an
    :class:`~pipeline.video.AudioTrack` or None; the sink closes it.
    """

    def __init__(self, path, size: tuple[int, int], rate=None, time_base=None, codec: str = "libx264",
                 audio=None):
        self.path = Path(path)
        self.codec = codec
        self.warnings: list[str] = []
        self._track = audio
        self._out = av.open(str(self.path), mode="w", format="mp4", options={"movflags": "+faststart"})
        try:
            self._vout = self._video_stream(size, rate, time_base)
            self._audio = self._audio_part(audio)
        except BaseException:
            self.abort()
            raise
        self._last_pts = -1

    def _video_stream(self, size, rate, time_base):
        w, h = size
        self._ow, self._oh = w - w % 2, h - h % 2  # yuv420p needs even sizes
        vout = self._out.add_stream(self.codec, rate=rate or Fraction(30))
        if self.codec == "libx264":
            vout.options = {"preset": "veryfast", "crf": "23"}
        else:
            vout.bit_rate = max(1_000_000, int(self._ow * self._oh * float(rate or 30) * 0.15))
            self.warnings.append("H.264 (libx264) is not available in this FFmpeg build; "
                                 "the annotated video is MPEG-4 Part 2, which some browsers do not play")
        vout.width, vout.height, vout.pix_fmt = self._ow, self._oh, "yuv420p"
        tb = time_base or Fraction(1, 90000)
        if self.codec == "mpeg4" and tb.denominator > 65535:  # MPEG-4 Part 2 allows at most 16-bit time bases
            tb = Fraction(1, 60000)
        vout.time_base = tb
        vout.codec_context.time_base = tb
        return vout

    def _audio_part(self, track):
        if track is None:
            self.audio_mode = "none"
            return None
        try:
            part = _Audio(self._out, track)
        except (av.FFmpegError, ValueError) as e:
            self.audio_mode = f"dropped: {short_error(e)}"
            self.warnings.append(f"the audio track could not be kept ({short_error(e)})")
            return None
        self.audio_mode = part.mode
        return part

    def write(self, frame_index, t, rgb, result, analysed) -> None:
        if self._audio is not None:
            self._audio.mux_until(t)
        img = draw(rgb, result) if result is not None and len(result) else rgb
        h, w = img.shape[:2]
        if (h - h % 2, w - w % 2) != (h, w):
            img = np.ascontiguousarray(img[:h - h % 2, :w - w % 2])
        vf = av.VideoFrame.from_ndarray(img, format="rgb24")
        if img.shape[:2] != (self._oh, self._ow):  # the stream changed resolution
            vf = vf.reformat(width=self._ow, height=self._oh)
        tb = self._vout.time_base
        pts = max(int(round(t / float(tb))), self._last_pts + 1)
        self._last_pts = pts
        vf.pts, vf.time_base = pts, tb
        self._out.mux(self._vout.encode(vf))

    def close(self, audio_until: float | None = None) -> Mp4Info:
        """Finish the file; the source's audio is kept to its end, or to ``audio_until`` seconds
        (a video whose analysis was stopped early)."""
        self._out.mux(self._vout.encode(None))
        if self._audio is not None:
            self._audio.finish(audio_until)
            if self._audio.skipped:
                self.warnings.append(f"{self._audio.skipped} audio packets could not be used "
                                     "(corrupt or bad timestamps)")
        self._out.close()
        self._close_track()
        return Mp4Info(self.path, self.codec, self.audio_mode, list(self.warnings))

    def abort(self) -> None:
        try:
            self._out.close()
        except Exception:
            pass
        self._close_track()
        self.path.unlink(missing_ok=True)

    def _close_track(self) -> None:
        track, self._track = self._track, None
        if track is not None:
            track.close()
