"""Command line: analyse video files into annotated MP4s, timelines and summaries.

    python -m export VIDEO_OR_FOLDER [...] --out DIR [--preset NAME] [--frame-step N]
                     [--detector short|full] [--model ID] [--no-face-states] [--landmark-interval S]
                     [--blendshapes]
                     [--png] [--max-seconds S] [--quiet] [--jobs N] [--pool process|thread]
                     [--engine local|ray] [--address ADDR]

The settings are a preset of :mod:`pipeline.config` (default: its default
preset); ``--detector`` and ``--model`` are expert overrides on top of it.
Face states (eyes, blinks, PERCLOS, yawns, head pose, drowsy, attentive) are
on by default; ``--no-face-states`` gives emotions only.

A folder means every video file in it (by extension, sorted, not recursive).
A file that cannot be processed gets a one-line error on stderr and the
others go on; the exit code is 1 if any file failed.

``--jobs N`` (default: the number of cores) analyses N videos at once, each
in its own worker process with its share of the model threads; each file's
lines are printed when it is done, one status line shows the running ones.
The outputs are those of ``--jobs 1``.  ``--engine ray`` runs one task per
video on a Ray cluster and brings the files back here (see export/README.md).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from pipeline.config import DEFAULT_PRESET, PRESETS, ConfigError, preset

from .batch import BatchProgress, Options, Outcome, cpu_count, run_one, run_pool
from .video import process_video

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


def _print(o: Outcome, progress: BatchProgress | None = None) -> None:
    """A finished file's lines (stdout) or its one-line error (stderr), in one piece."""
    if progress is not None:
        progress.clear()
    if o.ok:
        print(o.report, flush=True)
    else:
        print(o.error, file=sys.stderr, flush=True)


def _sequential(files, out: Path, config, opts: Options, quiet: bool) -> list[Outcome]:
    results = []
    for i, f in enumerate(files):
        bar = _Progress(f.name, quiet=quiet)
        try:  # process_video looked up here at call time, so it can be swapped
            o = run_one(f, out, config, opts, index=i, progress=bar, process=process_video)
        finally:
            bar.close()
        _print(o)
        results.append(o)
    return results


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
    ap.add_argument("--blendshapes", action="store_true",
                    help="write every blendshape score (51 bs_* columns, ARKit names) in the timeline")
    ap.add_argument("--png", action="store_true", help="also write a PNG chart of the timeline per video")
    ap.add_argument("--max-seconds", type=float, default=None, help="refuse videos longer than this")
    ap.add_argument("--quiet", action="store_true", help="no progress bar")
    ap.add_argument("--jobs", "-j", type=int, default=cpu_count(), metavar="N",
                    help=f"videos analysed at once (default: the number of cores, here {cpu_count()}); "
                         "the outputs are the same as with --jobs 1")
    ap.add_argument("--pool", choices=["process", "thread"], default="process",
                    help="what runs the jobs on this machine (default process: measured faster)")
    ap.add_argument("--engine", choices=["local", "ray"], default="local",
                    help="local (this machine) or ray: one task per video on a Ray cluster "
                         "(pip install -r requirements-ray.txt)")
    ap.add_argument("--address", default=None, metavar="ADDR",
                    help="with --engine ray: the cluster (auto, ray://HOST:10001, HOST:6379); "
                         "default: start a local Ray instance with --jobs CPUs")
    args = ap.parse_args(argv)
    if args.frame_step < 1:
        ap.error("--frame-step must be >= 1")
    if args.jobs < 1:
        ap.error("--jobs must be >= 1")
    if args.address and args.engine != "ray":
        ap.error("--address needs --engine ray")

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
    if args.blendshapes and args.no_face_states:
        ap.error("--blendshapes needs the face states (drop --no-face-states)")
    opts = Options(frame_step=args.frame_step, png=args.png, max_seconds=args.max_seconds,
                   blendshapes=args.blendshapes)
    if args.engine == "ray":
        from .ray_engine import RayUnavailable, run_ray

        progress = BatchProgress(len(files), quiet=args.quiet)
        try:
            results = run_ray(files, out, config, opts, jobs=args.jobs, address=args.address,
                              on_done=lambda o: _print(o, progress), progress=progress)
        except RayUnavailable as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        finally:
            progress.clear()
    elif min(args.jobs, len(files)) == 1:
        results = _sequential(files, out, config, opts, args.quiet)
    else:
        progress = BatchProgress(len(files), quiet=args.quiet)
        try:
            results = run_pool(files, out, config, opts, args.jobs, on_done=lambda o: _print(o, progress),
                               pool=args.pool, progress=progress)
        finally:
            progress.clear()
    failed = sum(not o.ok for o in results)
    if failed:
        print(f"{failed} of {len(files)} files failed", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
