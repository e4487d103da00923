"""Analyse a video file: annotated MP4 + timeline CSV/JSON + summary JSON/CSV.

* Decoding with PyAV; each frame's presentation time (pts, in seconds from
  the start of the stream) is the pipeline timestamp, so variable frame rate
  videos are timed right.
* One :class:`pipeline.Pipeline` per file (tracks and smoothing per file).
* ``frame_step=N`` analyses every Nth frame; the output video still has every
  frame, with the latest result drawn on the frames in between.
* Output video: H.264 (``libx264``, yuv420p, ``+faststart``) when PyAV's FFmpeg
  has it, else MPEG-4 Part 2 (``mpeg4``) with a warning in the result.  The
  source audio is copied when it is AAC or MP3, else re-encoded to AAC.
* Streaming: one decoded frame at a time, rows go straight to disk, the
  summary is accumulated incrementally - memory does not grow with length.
* Every output is written under a temporary name in ``out_dir`` and renamed at
  the end; on any error all of them are deleted (:class:`VideoError` for bad
  input).  A file that breaks off mid-way (truncated, corrupt) keeps what was
  decoded and reports it in ``VideoResult.warnings``.
"""
from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from .summary import SummaryBuilder, write_summary, write_summary_csv
from .timeline import TimelineWriter, safe_stem, temp_path, timeline_meta

log = logging.getLogger(__name__)

COPY_AUDIO = {"aac", "mp3", "mp3float"}  # codecs browsers play inside MP4: copied as they are


class VideoError(ValueError):
    """The input cannot be processed; the message is meant for the user."""


def h264_available() -> bool:
    return "libx264" in av.codecs_available


@dataclass
class VideoResult:
    annotated_mp4: Path
    timeline_csv: Path
    timeline_json: Path
    summary_json: Path
    summary_csv: Path
    frames_read: int
    frames_processed: int
    fps: float | None
    duration_s: float | None
    summary: dict
    video_codec: str = ""
    audio: str = "none"  # "copied (aac)", "re-encoded (pcm_s16le -> aac)", "none", "dropped: ..."
    warnings: list[str] = field(default_factory=list)
    elapsed_s: float = 0.0

    @property
    def paths(self) -> dict:
        return {"video": self.annotated_mp4, "csv": self.timeline_csv, "json": self.timeline_json,
                "summary": self.summary_json, "summary_csv": self.summary_csv}


def _stream_duration(container, stream) -> float | None:
    if stream.duration is not None and stream.time_base is not None:
        d = float(stream.duration * stream.time_base)
        if d > 0:
            return d
    if container.duration:
        return container.duration / av.time_base
    return None


def _open_input(src: Path):
    if not src.exists():
        raise VideoError(f"{src.name}: file not found")
    if src.is_dir():
        raise VideoError(f"{src.name}: is a folder, not a video file")
    if src.stat().st_size == 0:
        raise VideoError(f"{src.name}: the file is empty")
    try:
        container = av.open(str(src), mode="r", metadata_errors="ignore")
    except (av.FFmpegError, OSError, UnicodeDecodeError) as e:
        raise VideoError(f"{src.name}: not a readable video file ({_short(e)})") from None
    if not container.streams.video:
        container.close()
        raise VideoError(f"{src.name}: the file has no video stream")
    return container


def _short(e: Exception) -> str:
    s = getattr(e, "strerror", None) or str(e)
    return s.split(":")[-1].strip() if ":" in s and len(s) > 80 else s


def process_video(src_path, out_dir, config=None, frame_step: int = 1, progress=None,
                  max_seconds: float | None = None, max_pixels: int | None = None,
                  stem: str | None = None) -> VideoResult:
    """Analyse ``src_path`` and write the results to ``out_dir``.

    ``config``: a :class:`pipeline.PipelineConfig` (None = defaults).
    ``progress(done_frames, total_frames)`` is called now and then (``total``
    is the container's frame count or an estimate, 0 if unknown).
    ``max_seconds`` / ``max_pixels`` are checked from the header before any
    frame is decoded.  Output names: ``<stem>_annotated.mp4``,
    ``<stem>_timeline.csv/.json``, ``<stem>_summary.json/.csv``; ``stem``
    defaults to the source file name without extension.

    Raises :class:`VideoError` for an empty, unreadable or frameless file or a
    file over the limits; then nothing is left in ``out_dir``.
    """
    from pipeline import Pipeline  # heavy (models): imported when needed
    from pipeline.annotate import draw

    t_start = time.perf_counter()
    src = Path(src_path)
    frame_step = int(frame_step)
    if frame_step < 1:
        raise ValueError("frame_step must be >= 1")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = safe_stem(stem or src.stem)
    final = {
        "video": out_dir / f"{stem}_annotated.mp4",
        "summary": out_dir / f"{stem}_summary.json",
        "summary_csv": out_dir / f"{stem}_summary.csv",
    }
    tmp = {k: temp_path(p) for k, p in final.items()}
    warnings: list[str] = []

    container = _open_input(src)
    out = writer = pipe = None
    ok = timeline_done = False
    moved: list[str] = []
    try:
        vin = container.streams.video[0]
        cc = vin.codec_context
        width, height = int(cc.width or 0), int(cc.height or 0)
        duration = _stream_duration(container, vin)
        rate = vin.average_rate or vin.guessed_rate or vin.base_rate
        fps = float(rate) if rate else None
        # -- limits, from the header only ------------------------------
        if max_seconds is not None and duration is not None and duration > max_seconds:
            raise VideoError(f"{src.name}: the video is {duration:.1f} s long; the limit is {max_seconds:g} s")
        if max_pixels is not None and width * height > max_pixels:
            raise VideoError(f"{src.name}: the video is {width}x{height} ({width * height:,} pixels per frame); "
                             f"the limit is {max_pixels:,} pixels")
        if width <= 0 or height <= 0:
            raise VideoError(f"{src.name}: the video stream has no picture size (broken header)")
        if width < 16 or height < 16:
            raise VideoError(f"{src.name}: the video is only {width}x{height} pixels")
        total = int(vin.frames or 0)
        if not total and duration and fps:
            total = int(round(duration * fps))

        ain = container.streams.audio[0] if container.streams.audio else None
        vin.thread_type = "AUTO"
        pipe = Pipeline(config)
        meta = timeline_meta(pipe, fps=fps, source=src.name, frame_step=frame_step,
                             width=width, height=height)
        writer = TimelineWriter(out_dir, stem, pipe.classes, meta)
        builder = SummaryBuilder(pipe.classes, step_s=(frame_step / fps) if fps else None)

        # -- output container ------------------------------------------
        out = av.open(str(tmp["video"]), mode="w", format="mp4",
                      options={"movflags": "+faststart"})
        ow, oh = width - width % 2, height - height % 2  # yuv420p needs even sizes
        if h264_available():
            vcodec = "libx264"
            vout = out.add_stream("libx264", rate=rate or Fraction(30))
            vout.options = {"preset": "veryfast", "crf": "23"}
        else:
            vcodec = "mpeg4"
            vout = out.add_stream("mpeg4", rate=rate or Fraction(30))
            vout.bit_rate = max(1_000_000, int(ow * oh * (fps or 30) * 0.15))
            warnings.append("H.264 (libx264) is not available in this FFmpeg build; "
                            "the annotated video is MPEG-4 Part 2, which some browsers do not play")
        vout.width, vout.height, vout.pix_fmt = ow, oh, "yuv420p"
        tb = vin.time_base or Fraction(1, 90000)
        if vcodec == "mpeg4" and tb.denominator > 65535:  # MPEG-4 Part 2 allows at most 16-bit time bases
            tb = Fraction(1, 60000)
        vout.time_base = tb
        vout.codec_context.time_base = vout.time_base

        aout, audio_mode, resampler = None, "none", None
        if ain is not None:
            aname = ain.codec_context.name
            try:
                if aname in COPY_AUDIO:
                    aout = out.add_stream_from_template(ain)
                    audio_mode = f"copied ({aname.replace('float', '')})"
                else:
                    aout = out.add_stream("aac", rate=ain.codec_context.sample_rate or 48000)
                    resampler = av.AudioResampler(format="fltp", layout="stereo",
                                                  rate=ain.codec_context.sample_rate or 48000)
                    audio_mode = f"re-encoded ({aname} -> aac)"
            except (av.FFmpegError, ValueError) as e:
                aout = None
                audio_mode = f"dropped: {_short(e)}"
                warnings.append(f"the audio track could not be kept ({_short(e)})")

        # timestamps start at 0 in the output
        def start_of(s):
            return float(s.start_time * s.time_base) if s.start_time is not None and s.time_base else 0.0

        t0 = min([start_of(vin)] + ([start_of(ain)] if ain is not None else []))

        frames_read = frames_processed = 0
        last = None
        last_pts = -1
        last_progress = 0.0
        streams = [vin] + ([ain] if aout is not None else [])

        def emit_video(frame):
            nonlocal frames_read, frames_processed, last, last_pts, last_progress
            i = frames_read
            ts = frame.time
            ts = max((ts - t0) if ts is not None else (i / fps if fps else i / 30.0), 0.0)
            if max_seconds is not None and duration is None and ts > max_seconds:
                # the header had no duration: enforce the limit while decoding
                raise VideoError(f"{src.name}: the video is longer than the limit of {max_seconds:g} s")
            rgb = frame.to_ndarray(format="rgb24")
            if i % frame_step == 0:
                last = pipe.process(rgb, ts)
                writer.write(last, frame=i)
                builder.add_result(last)
                frames_processed += 1
            img = draw(rgb, last) if last is not None and len(last) else rgb
            if img.shape[0] != oh or img.shape[1] != ow:
                img = np.ascontiguousarray(img[:oh, :ow])
            vf = av.VideoFrame.from_ndarray(img, format="rgb24")
            pts = int(round(ts / float(vout.time_base)))
            if pts <= last_pts:
                pts = last_pts + 1
            last_pts = pts
            vf.pts, vf.time_base = pts, vout.time_base
            for pkt in vout.encode(vf):
                out.mux(pkt)
            frames_read += 1
            if progress is not None:
                now = time.perf_counter()
                if now - last_progress >= 0.1:
                    last_progress = now
                    progress(frames_read, max(total, frames_read))

        def emit_audio_packet(packet):
            nonlocal audio_skipped
            if resampler is None:  # copy
                if packet.dts is None or packet.pts is None:
                    return
                off = int(round(t0 / float(packet.time_base)))
                packet.pts -= off
                packet.dts -= off
                packet.stream = aout
                try:
                    out.mux(packet)
                except av.FFmpegError:  # e.g. a timestamp the muxer refuses: skip that packet
                    audio_skipped += 1
            else:
                try:
                    afs = packet.decode()
                except (av.FFmpegError, EOFError):
                    audio_skipped += 1
                    return
                for af in afs:
                    af.pts = None
                    for rf in resampler.resample(af):
                        for p in aout.encode(rf):
                            out.mux(p)

        audio_skipped = 0
        stop_error = None
        bad_packets = 0
        demux = container.demux(*streams)
        while True:
            try:
                packet = next(demux)
            except StopIteration:
                break
            except (av.FFmpegError, EOFError) as e:  # the container cannot be read further
                stop_error = e
                break
            if packet.stream.type == "video":
                try:
                    frames = packet.decode()
                except (av.FFmpegError, EOFError):  # a corrupt packet: skip it, decoding resumes
                    bad_packets += 1          # at the next intact keyframe
                    continue
                for frame in frames:
                    emit_video(frame)
            elif packet.size or resampler is not None:
                emit_audio_packet(packet)
        if frames_read == 0:
            why = f" ({_short(stop_error)})" if stop_error else ""
            raise VideoError(f"{src.name}: no video frame could be decoded - the file is empty, "
                             f"truncated or corrupt{why}")
        if bad_packets:
            warnings.append(f"{bad_packets} corrupt video packets were skipped")
        if stop_error is not None:
            warnings.append(f"decoding stopped after {frames_read} frames ({_short(stop_error)}); "
                            "the results cover the part that could be read")
        elif total and vin.frames and frames_read < total - max(5, 0.03 * total):  # header counts can be off a bit
            warnings.append(f"only {frames_read} of {total} frames could be decoded "
                            "(the file seems truncated or corrupt); the results cover that part")

        if audio_skipped:
            warnings.append(f"{audio_skipped} audio packets could not be used (corrupt or bad timestamps)")
        for pkt in vout.encode(None):
            out.mux(pkt)
        if aout is not None and resampler is not None:
            for rf in resampler.resample(None):
                for p in aout.encode(rf):
                    out.mux(p)
            for p in aout.encode(None):
                out.mux(p)
        out.close()
        out = None
        container.close()

        paths = writer.close()
        timeline_done = True
        summary = builder.result()
        summary["source"] = src.name
        summary["frames_read"] = frames_read
        summary["frames_processed"] = frames_processed
        summary["frame_step"] = frame_step
        summary["warnings"] = list(warnings)
        write_summary(summary, tmp["summary"])
        write_summary_csv(summary, tmp["summary_csv"])
        for k in ("video", "summary", "summary_csv"):
            os.replace(tmp[k], final[k])
            moved.append(k)
        ok = True
        last_t = builder.last_t
        dur = duration if duration else ((last_t + (1 / fps if fps else 0)) if last_t is not None else None)
        if progress is not None:
            progress(frames_read, frames_read)
        return VideoResult(
            annotated_mp4=final["video"], timeline_csv=paths["csv"], timeline_json=paths["json"],
            summary_json=final["summary"], summary_csv=final["summary_csv"],
            frames_read=frames_read, frames_processed=frames_processed, fps=fps, duration_s=dur,
            summary=summary, video_codec=vcodec, audio=audio_mode, warnings=warnings,
            elapsed_s=time.perf_counter() - t_start)
    finally:
        if out is not None:
            try:
                out.close()
            except Exception:
                pass
        try:
            container.close()
        except Exception:
            pass
        if pipe is not None:
            pipe.close()
        if not ok:
            if writer is not None:
                if writer.closed and timeline_done:  # failed after the timeline got its final names
                    for p in writer.paths.values():
                        p.unlink(missing_ok=True)
                writer.abort()
            for p in tmp.values():
                p.unlink(missing_ok=True)
            for k in moved:  # outputs renamed before the failure
                final[k].unlink(missing_ok=True)
