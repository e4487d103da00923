"""Video files: the frame reader (and the source's audio), beside ``analyze_image``.

    from pipeline import Pipeline
    from pipeline.video import VideoReader
    from pipeline.videorun import run_video

    with VideoReader("clip.mp4", max_seconds=600) as reader, Pipeline("steady") as p:
        stats = run_video(reader, p, sinks, frame_step=2)   # sinks: see FrameSink
    # then close the sinks (export/ has the file sinks; export.video.process_video does all this)

* :class:`VideoReader` (PyAV) opens a file, checks it (:class:`VideoError`, a
  ``ValueError`` whose message is for the user) and yields
  ``(frame_index, timestamp_s, rgb)`` for every decoded frame.  Timestamps come
  from each frame's pts (variable frame rate safe), in seconds from the start
  of the file.  Limits are checked twice.  From the header, before any frame
  is decoded: a video longer than ``max_seconds``, larger than ``max_pixels``
  per frame or with more than ``max_frames`` frames is refused
  (:class:`VideoError`).  While decoding, because a header can lie (a stream
  may change resolution mid-file; a header may lack or understate the
  duration, or claim 10000 frames/s): every frame is counted against
  ``max_frames`` (default ``max_seconds`` x :data:`MAX_FPS`), its time
  against ``max_seconds``, its size against ``max_pixels`` (the decoder
  itself refuses to allocate a larger picture) and the time spent so far
  against ``max_process_s`` (a wall-clock budget that includes the work of
  whoever consumes the frames).  A limit hit while decoding stops the reader
  and keeps what came before: :attr:`VideoReader.stopped` says why, and the
  results cover the part read.  Corrupt packets are skipped and decoding
  resumes; a file that breaks off keeps what was decoded.
  :attr:`VideoReader.warnings` says what happened.
* :meth:`VideoReader.audio` gives the source's audio as an :class:`AudioTrack`
  (a second opening of the file), read in step with the video by whoever
  writes an output video.
* The frame loop, :func:`pipeline.videorun.run_video`, and the sink protocol
  :class:`pipeline.videorun.FrameSink` are in :mod:`pipeline.videorun`.
"""
from __future__ import annotations

import math
import time
from collections.abc import Iterator
from pathlib import Path

import av
import numpy as np

from .messages import message

#: The highest frame rate assumed when the frame cap is derived from a duration limit
#: (``max_frames = max_seconds * MAX_FPS``): real cameras record at most this many frames per
#: second of playback; a header claiming more cannot make a short clip hold more frames.
MAX_FPS = 60
#: A file may hold at most this many frames per second of the duration its header claims (plus
#: :data:`PLAUSIBLE_SLACK` frames): 240 fps slow motion passes, a "1.2 s" clip holding 12,000
#: frames (a header claiming 10,000 fps) is stopped after about 350 and keeps that part.
MAX_PLAUSIBLE_FPS, PLAUSIBLE_SLACK = 240, 60


class VideoError(ValueError):
    """The input cannot be processed; the message is meant for the user."""


def short_error(e: Exception) -> str:
    """A one-line reason from a PyAV/OS error (long FFmpeg messages keep their last part)."""
    s = getattr(e, "strerror", None) or str(e)
    return s.split(":")[-1].strip() if ":" in s and len(s) > 80 else s


def _stream_duration(container, stream) -> float | None:
    if stream.duration is not None and stream.time_base is not None:
        d = float(stream.duration * stream.time_base)
        if d > 0:
            return d
    if container.duration:
        return container.duration / av.time_base
    return None


def _start_s(stream) -> float:
    if stream is None or stream.start_time is None or not stream.time_base:
        return 0.0
    return float(stream.start_time * stream.time_base)


#: Demuxers that FFmpeg uses for a still image or a text file; such a file is "not a video".
_IMAGE_DEMUXERS = ("image2",)


def _open_container(src: Path):
    if not src.exists():
        raise VideoError(message("not_found", name=src.name))
    if src.is_dir():
        raise VideoError(message("folder", name=src.name))
    if src.stat().st_size == 0:
        raise VideoError(message("empty", name=src.name))
    try:
        container = av.open(str(src), mode="r", metadata_errors="ignore")
    except (av.FFmpegError, OSError, UnicodeDecodeError) as e:
        raise VideoError(message("not_video", name=src.name, why=short_error(e))) from None
    fmt = container.format.name or ""
    if fmt == "tty":  # FFmpeg shows a .txt/.nfo/.asc file as ANSI art
        container.close()
        raise VideoError(message("text_not_video", name=src.name))
    if fmt in _IMAGE_DEMUXERS or (fmt.endswith("_pipe") and fmt != "gif_pipe"):
        kind = (container.streams.video[0].codec_context.name if container.streams.video else fmt).upper()
        container.close()
        raise VideoError(message("image_not_video", name=src.name, kind={"MJPEG": "JPEG"}.get(kind, kind)))
    if not container.streams.video:
        container.close()
        raise VideoError(message("no_video_stream", name=src.name))
    return container


class AudioTrack:
    """The source's first audio stream, from a second opening of the file.

    :meth:`packets_until` gives the demuxed packets up to a time on the
    reader's clock (seconds from :attr:`start_s`), so a writer can interleave
    them with the video frames as those arrive.  Unreadable packets end the
    track (:attr:`errors` counts them).
    """

    def __init__(self, path: Path, start_s: float):
        self._container = av.open(str(path), mode="r", metadata_errors="ignore")
        self.stream = self._container.streams.audio[0]
        self.codec = self.stream.codec_context.name
        self.sample_rate = int(self.stream.codec_context.sample_rate or 48000)
        self.start_s = start_s
        self.errors = 0
        self._packets = self._container.demux(self.stream)
        self._next = None
        self._done = False

    def packets_until(self, t: float | None = None) -> Iterator[av.Packet]:
        """Packets whose time (from :attr:`start_s`) is at most ``t`` seconds; None: all the rest."""
        while not self._done:
            if self._next is None:
                try:
                    self._next = next(self._packets)
                except StopIteration:
                    self._done = True
                    return
                except (av.FFmpegError, EOFError):
                    self.errors += 1
                    self._done = True
                    return
            pkt = self._next
            if t is not None and pkt.pts is not None and pkt.time_base is not None \
                    and float(pkt.pts * pkt.time_base) - self.start_s > t:
                return
            self._next = None
            yield pkt

    def close(self) -> None:
        self._done = True
        self._container.close()


class VideoReader:
    """Decoded frames of a video file, checked against limits (see the module doc).

    After construction (which decodes the first frame) it knows :attr:`fps`,
    :attr:`rate` (a Fraction, for encoders), :attr:`time_base` (the source
    video's), :attr:`width` x :attr:`height` (as displayed, i.e. after rotation),
    :attr:`duration_s` (header; None if unknown), :attr:`total_frames` (header
    count or an estimate, 0 if unknown), :attr:`rotation` (degrees
    counter-clockwise from the display matrix, as PyAV's
    ``VideoFrame.rotation``; frames are rotated upright before they are
    yielded; flips are ignored) and :attr:`start_s` (the source time that
    becomes 0: the earliest start of the video and audio streams, so audio
    stays in sync).  Iterate it once.
    """

    def __init__(self, path, max_seconds: float | None = None, max_pixels: int | None = None,
                 max_frames: int | None = None, max_process_s: float | None = None):
        self.path = Path(path)
        self.name = self.path.name
        self.max_seconds, self.max_pixels = max_seconds, max_pixels
        if max_frames is None and max_seconds is not None:
            max_frames = max(1, int(max_seconds * MAX_FPS))
        self.max_frames, self.max_process_s = max_frames, max_process_s
        self._t0 = time.monotonic()
        #: Why decoding stopped before the end (a limit hit while decoding), else None.
        self.stopped: str | None = None
        self.warnings: list[str] = []
        self.frames_read = 0
        self.bad_packets = 0
        self._stop_error: Exception | None = None
        #: Time (s) of the last frame yielded.
        self.last_t = 0.0
        self._container = _open_container(self.path)
        try:
            self._read_header()
            self._frames = self._decode()
            self._first = next(self._frames, None)
            if self._first is None:
                why = f" ({short_error(self._stop_error)})" if self._stop_error else ""
                raise VideoError(f"{self.name}: no video frame could be decoded - the file is empty, "
                                 f"truncated or corrupt{why}")
        except BaseException:
            self.close()
            raise
        self.height, self.width = self._first[2].shape[:2]

    # -- header ------------------------------------------------------------
    def _read_header(self) -> None:
        c = self._container
        vin = self._vin = c.streams.video[0]
        w, h = int(vin.codec_context.width or 0), int(vin.codec_context.height or 0)
        self.duration_s = _stream_duration(c, vin)
        self.rate = vin.average_rate or vin.guessed_rate or vin.base_rate or None
        self.fps = float(self.rate) if self.rate else None
        self.time_base = vin.time_base
        if self.max_seconds is not None and self.duration_s is not None and self.duration_s > self.max_seconds:
            raise VideoError(f"{self.name}: the video is {self.duration_s:.1f} s long; "
                             f"the limit is {self.max_seconds:g} s")
        self._check_size(w, h, None)
        self._header_frames = int(vin.frames or 0)
        if self.max_frames is not None and self._header_frames > self.max_frames:
            raise VideoError(f"{self.name}: the video has {self._header_frames:,} frames; "
                             f"the limit is {self.max_frames:,} frames")
        self.total_frames = self._header_frames
        if not self.total_frames and self.duration_s and self.fps:
            self.total_frames = int(round(self.duration_s * self.fps))
        if self.max_frames is not None:
            self.total_frames = min(self.total_frames, self.max_frames)
        self._plausible = (int(math.ceil(self.duration_s * MAX_PLAUSIBLE_FPS)) + PLAUSIBLE_SLACK
                           if self.duration_s else None)
        if self._plausible is not None:
            self.total_frames = min(self.total_frames, self._plausible)
        ain = c.streams.audio[0] if c.streams.audio else None
        self.has_audio = ain is not None
        self.start_s = min(_start_s(vin), _start_s(ain)) if ain is not None else _start_s(vin)
        self.rotation = 0
        if self.max_pixels is not None:  # the decoder refuses to allocate a larger picture
            vin.codec_context.options = {**vin.codec_context.options, "max_pixels": str(int(self.max_pixels))}
        vin.thread_type = "AUTO"

    def _check_size(self, w: int, h: int, index: int | None) -> None:
        where = "the video" if index is None else f"frame {index}"
        if self.max_pixels is not None and w * h > self.max_pixels:
            raise VideoError(f"{self.name}: {where} is {w}x{h} ({w * h:,} pixels per frame); "
                             f"the limit is {self.max_pixels:,} pixels")
        if w <= 0 or h <= 0:
            raise VideoError(f"{self.name}: the video stream has no picture size (broken header)")
        if w < 16 or h < 16:
            raise VideoError(f"{self.name}: {where} is only {w}x{h} pixels")

    def _stop(self, why: str) -> None:
        """Stop decoding because of a limit; what was read so far is kept."""
        n, t = self.frames_read, self.last_t
        done = f"{n:,} frames ({t:.1f} s of " + (f"the video's {self.duration_s:.1f} s)" if self.duration_s else "video)")
        self.stopped = why
        self.warnings.append(f"analysis stopped after {done}: {why}; the results cover that part")

    def _limit_hit(self, frame: av.VideoFrame) -> str | None:
        """Why ``frame`` (not the first) must not be used, or None."""
        n = self.frames_read
        if self.max_frames is not None and n >= self.max_frames:
            return f"the limit is {self.max_frames:,} frames"
        if self._plausible is not None and n >= self._plausible:
            return (f"the header says the video lasts {self.duration_s:.2f} s, but it holds more than "
                    f"{MAX_PLAUSIBLE_FPS} frames per second of it")
        if self.max_process_s is not None and time.monotonic() - self._t0 > self.max_process_s:
            return f"the processing time limit of {self.max_process_s:g} s was reached"
        w, h = frame.width, frame.height
        if self.max_pixels is not None and w * h > self.max_pixels:
            return f"frame {n} is {w}x{h} ({w * h:,} pixels per frame); the limit is {self.max_pixels:,} pixels"
        if w < 16 or h < 16:
            return f"frame {n} is only {w}x{h} pixels"
        t = self._time(frame, n)
        if self.max_seconds is not None and t > self.max_seconds:
            return f"the video is longer than the limit of {self.max_seconds:g} s (frame {n} is at {t:.1f} s)"
        return None

    def _time(self, frame: av.VideoFrame, i: int) -> float:
        t = frame.time
        return max((t - self.start_s) if t is not None else i / (self.fps or 30.0), 0.0)

    # -- frames --------------------------------------------------------------
    def _decode(self) -> Iterator[tuple[int, float, np.ndarray]]:
        demux = self._container.demux(self._vin)
        while self.stopped is None:
            try:
                packet = next(demux)
            except StopIteration:
                break
            except (av.FFmpegError, EOFError) as e:  # the container cannot be read further
                self._stop_error = e
                break
            try:
                frames = packet.decode()
            except (av.FFmpegError, EOFError):
                why = self._oversized_in_decoder()
                if why is None:          # a corrupt packet: skip it, decoding resumes
                    self.bad_packets += 1  # at the next intact keyframe
                    continue
                yield from self._emit(self._flushed())  # frames decoded before the big one
                if self.stopped is None:
                    self._stop(why)
                break
            yield from self._emit(frames)
        self._finish()

    def _emit(self, frames) -> Iterator[tuple[int, float, np.ndarray]]:
        for frame in frames:
            if self.frames_read and (why := self._limit_hit(frame)) is not None:
                self._stop(why)
                return
            yield self._convert(frame)

    def _oversized_in_decoder(self) -> str | None:
        """After a decode error: the reason if the decoder refused a picture over ``max_pixels``."""
        cc = self._vin.codec_context
        w, h = int(cc.width or 0), int(cc.height or 0)
        if self.max_pixels is None or w * h <= self.max_pixels:
            return None
        if not self.frames_read:
            raise VideoError(f"{self.name}: the video is {w}x{h} ({w * h:,} pixels per frame); "
                             f"the limit is {self.max_pixels:,} pixels")
        # frames still in the decoder's (threaded) pipeline are lost with the error: say "after"
        return (f"the stream changes to {w}x{h} ({w * h:,} pixels per frame) after frame {self.frames_read - 1}; "
                f"the limit is {self.max_pixels:,} pixels")

    def _flushed(self) -> list:
        try:
            return [f for f in self._vin.decode(None)
                    if self.max_pixels is None or f.width * f.height <= self.max_pixels]
        except (av.FFmpegError, EOFError):
            return []

    def _convert(self, frame: av.VideoFrame) -> tuple[int, float, np.ndarray]:
        i = self.frames_read
        self._check_size(frame.width, frame.height, i)  # checked before any pixel is converted
        t = self._time(frame, i)
        if i == 0 and self.max_seconds is not None and t > self.max_seconds:
            raise VideoError(f"{self.name}: the video is longer than the limit of {self.max_seconds:g} s "
                             f"(frame {i} is at {t:.1f} s)")
        rgb = frame.to_ndarray(format="rgb24")
        k = round(frame.rotation / 90) % 4
        if k:
            rgb = np.ascontiguousarray(np.rot90(rgb, k))
        if i == 0:
            self.rotation = int(frame.rotation)
        self.frames_read += 1
        self.last_t = t
        return i, t, rgb

    def _finish(self) -> None:
        n = self.frames_read
        if self.bad_packets:
            self.warnings.append(f"{self.bad_packets} corrupt video packets were skipped")
        if self._stop_error is not None:
            self.warnings.append(f"decoding stopped after {n} frames ({short_error(self._stop_error)}); "
                                 "the results cover the part that could be read")
        elif self.stopped is None and self._header_frames and n < self._header_frames - max(5, 0.03 * self._header_frames):
            self.warnings.append(f"only {n} of {self._header_frames} frames could be decoded "
                                 "(the file seems truncated or corrupt); the results cover that part")

    def __iter__(self) -> Iterator[tuple[int, float, np.ndarray]]:
        if self._first is None:
            raise ValueError("a VideoReader can be iterated only once")
        first, self._first = self._first, None
        yield first
        yield from self._frames

    def audio(self) -> AudioTrack | None:
        """The source's first audio stream (None if it has none or it cannot be opened; then a warning)."""
        if not self.has_audio:
            return None
        try:
            return AudioTrack(self.path, self.start_s)
        except (av.FFmpegError, OSError, IndexError) as e:
            self.warnings.append(f"the audio track could not be read ({short_error(e)})")
            return None

    def close(self) -> None:
        try:
            self._container.close()
        except Exception:
            pass

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
