"""Command line: analyse video files into annotated MP4s, timelines and summaries.

    python -m export VIDEO_OR_FOLDER [...] --out DIR [--preset NAME] [--frame-step N]
                     [--detector short|full] [--model ID] [--no-face-states] [--landmark-interval S]
                     [--png] [--max-seconds S] [--quiet]

The settings are a preset of :mod:`pipeline.config` (default: its default
preset); ``--detector`` and ``--model`` are expert overrides on top of it.
Face states (eyes, blinks, PERCLOS, yawns, head pose, drowsy, attentive) are
on by default; ``--no-face-states`` gives emotions only.

A folder means every video file in it (by extension, sorted, not recursive).
A file that cannot be processed gets a one-line error on stderr and the
others go on; the exit code is 1 if any file failed.
"""
from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path

from pipeline.config import DEFAULT_PRESET, PRESETS, ConfigError, preset

from .plot import plot_timeline
from .timeline import read_timeline
from .video import VideoError, process_video

VIDEO_EXTS = {".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm", ".mpg", ".mpeg", ".wmv", ".flv",
              ".3gp", ".ts", ".mts", ".m2ts", ".ogv"}


def collect(inputs) -> list[Path]:
    files = []
    for s in inputs:
        p = Path(s)
        if p.is_dir():
            files += sorted(q for q in p.iterdir() if q.is_file() and q.suffix.lower() in VIDEO_EXTS)
        else:
            files.append(p)  # named explicitly: try it whatever the extension
    return files


class _Progress:
    """tqdm when installed, else a simple line on stderr."""

    def __init__(self, name: str, quiet: bool = False):
        self.name, self.quiet, self.bar, self._last = name, quiet, None, 0.0
        try:
            from tqdm import tqdm

            self._tqdm = tqdm
        except ImportError:
            self._tqdm = None

    def __call__(self, done: int, total: int) -> None:
        if self.quiet:
            return
        if self._tqdm is not None:
            if self.bar is None:
                self.bar = self._tqdm(total=total or None, desc=self.name, unit="frame", file=sys.stderr,
                                      leave=False, dynamic_ncols=True)
            if total and self.bar.total != total:
                self.bar.total = total
            self.bar.update(done - self.bar.n)
        else:
            now = time.monotonic()
            if now - self._last > 0.5 or done == total:
                self._last = now
                pct = f"{100 * done / total:5.1f}%" if total else ""
                print(f"\r{self.name}: {done}/{total or '?'} frames {pct}", end="", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        elif self._tqdm is None and not self.quiet:
            print(file=sys.stderr)


def _one(f: Path, out: Path, config, args) -> bool:
    """Process one file and print what was done; False (and a line on stderr) if it failed."""
    bar = _Progress(f.name, quiet=args.quiet)
    try:
        r = process_video(f, out, config=config, frame_step=args.frame_step, progress=bar,
                          max_seconds=args.max_seconds)
    except VideoError as e:
        print(f"error: {e}", file=sys.stderr)
        return False
    except Exception as e:  # one bad file must not stop the batch
        print(f"error: {f.name}: {type(e).__name__}: {e}", file=sys.stderr)
        return False
    finally:
        bar.close()
    written = r.files
    if args.png:
        png = out / f"{r.timeline_csv.name[:-len('_timeline.csv')]}_timeline.png"
        plot_timeline(read_timeline(r.timeline_csv), r.summary["classes"], png, title=f.name)
        written = replace(written, chart_png=png)
    fps = r.frames_read / r.elapsed_s if r.elapsed_s else 0
    print(f"{f.name}: {r.frames_read} frames ({r.frames_processed} analysed), "
          f"{r.summary['session']['tracks']} face tracks, {fps:.0f} frames/s, video {r.video_codec}, "
          f"audio {r.audio}")
    fs = r.summary["session"].get("face_states")
    if fs:
        print(f"  face states: {fs['blinks']} blinks, {fs['yawns']} yawns, drowsy {fs['drowsy_s']:.1f} s, "
              f"attentive {100 * (fs['attentive_share'] or 0):.0f}% and looking away "
              f"{100 * (fs['looking_away_share'] or 0):.0f}% of {fs['measured_s']:.1f} face-seconds")
    for w in r.warnings:
        print(f"  warning: {w}")
    for p in written.paths():
        print(f"  {p}")
    return True


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m export", description=__doc__.split("\n\n")[0])
    ap.add_argument("inputs", nargs="+", help="video files and/or folders of videos")
    ap.add_argument("--out", required=True, help="output folder (created if needed)")
    ap.add_argument("--preset", choices=list(PRESETS), default=DEFAULT_PRESET,
                    help=f"settings preset (default {DEFAULT_PRESET}): "
                         + "; ".join(f"{p.name}: {p.title}" for p in PRESETS.values()))
    ap.add_argument("--frame-step", type=int, default=1, help="analyse every Nth frame (default 1 = all)")
    ap.add_argument("--detector", choices=["short", "full"], default=None,
                    help="face detector range (overrides the preset)")
    ap.add_argument("--model", default=None, help="emotion model spec id or spec .json path (overrides the preset)")
    ap.add_argument("--no-face-states", action="store_true",
                    help="emotions only: no landmarks, eye/head measures or face states")
    ap.add_argument("--landmark-interval", type=float, default=None, metavar="S",
                    help="measure each face at most every S seconds (default 0: every analysed frame)")
    ap.add_argument("--png", action="store_true", help="also write a PNG chart of the timeline per video")
    ap.add_argument("--max-seconds", type=float, default=None, help="refuse videos longer than this")
    ap.add_argument("--quiet", action="store_true", help="no progress bar")
    args = ap.parse_args(argv)
    if args.frame_step < 1:
        ap.error("--frame-step must be >= 1")

    overrides = {k: v for k, v in (("model", args.model), ("detector", args.detector),
                                   ("landmark_interval_s", args.landmark_interval)) if v is not None}
    if args.no_face_states:
        overrides["face_states"] = False
    try:
        config = preset(args.preset, **overrides)
    except ConfigError as e:
        ap.error(str(e))
    files = collect(args.inputs)
    if not files:
        print("error: no video files found", file=sys.stderr)
        return 1
    out = Path(args.out)
    failed = sum(not _one(f, out, config, args) for f in files)
    if failed:
        print(f"{failed} of {len(files)} files failed", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
