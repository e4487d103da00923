"""Command line: analyse video files into annotated MP4s, timelines and summaries.

    python -m export VIDEO_OR_FOLDER [...] --out DIR [--preset NAME] [--frame-step N]
                     [--detector NAME] [--model ID] [--no-face-states] [--landmark-interval S]
                     [--blendshapes]
                     [--png] [--max-seconds S] [--quiet] [--jobs N] [--pool process|thread]
                     [--engine local|ray] [--address ADDR]

The settings are a preset of :mod:`pipeline.config` (default: its default
preset); ``--detector`` and ``--model`` are expert overrides on top of it.
Face states (eyes, blinks, PERCLOS, yawns, head pose, drowsy, attentive) are
on by default; ``--no-face-states`` gives emotions only.

A folder means every video file in it (by extension, sorted, not recursive).
A file that cannot be processed gets a one-line error on stderr and the
others go on; the exit code is 1 if any file failed.  A bad option (an unknown
preset, model or detector, an output folder that cannot be written) is a usage
error (exit code 2) before any work.  The sentences are those of the app
(:mod:`pipeline.messages`).

Progress: a bar on a terminal; otherwise (a log, a pipe) a plain line per 10%.
Run it from the clone's folder, or from anywhere with ``PYTHONPATH=/path/to/clone``.

``--jobs N`` (default: the number of cores) analyses N videos at once, each
in its own worker process with its share of the model threads; each file's
lines are printed when it is done, one status line shows the running ones.
The outputs are those of ``--jobs 1``.  ``--engine ray`` runs one task per
video on a Ray cluster and brings the files back here (see export/README.md).
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from pipeline.config import DEFAULT_PRESET, PRESETS, ConfigError, preset
from pipeline.messages import message
from tracker.base import DETECTORS

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
    """Progress of one file on stderr: a tqdm bar on a terminal (when tqdm is installed), else a plain
    line at every 10% (nothing per frame in a log).  The speed is given once, in the file's summary
    line, not here."""

    STEP = 10  # percent between two plain lines

    def __init__(self, name: str, quiet: bool = False, stream=None):
        self.name, self.quiet, self.bar = name, quiet, None
        self.stream = stream or sys.stderr
        self._next = self.STEP
        self._tqdm = None
        if not quiet and hasattr(self.stream, "isatty") and self.stream.isatty():
            try:
                from tqdm import tqdm

                self._tqdm = tqdm
            except ImportError:
                pass

    def __call__(self, done: int, total: int) -> None:
        if self.quiet:
            return
        if self._tqdm is not None:
            if self.bar is None:
                self.bar = self._tqdm(total=total or None, desc=self.name, unit="frame", file=self.stream,
                                      leave=False, dynamic_ncols=True,
                                      bar_format="{desc}: {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} frames "
                                                 "[{elapsed}<{remaining}]")
            if total and self.bar.total != total:
                self.bar.total = total
            self.bar.update(done - self.bar.n)
            return
        if not total:
            return
        pct = 100 * done / total
        if pct >= self._next or done == total:
            while self._next <= pct:
                self._next += self.STEP
            print(f"{self.name}: {min(pct, 100):.0f}% ({done}/{total} frames)", file=self.stream, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


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


def _strip_title(title: str) -> str:
    """A preset's title without its leading display name ("Standard: every face..." -> "every face...")."""
    return title.split(": ", 1)[1] if ": " in title else title


def _check_model(name: str) -> str | None:
    """None if ``name`` is a built-in model id or a spec .json file, else the app's sentence."""
    from classifier.spec import builtin_specs, get_spec

    try:
        get_spec(name)
        return None
    except (KeyError, ValueError, OSError):
        return message("unknown_model", name=name, choices=sorted(builtin_specs())) + " (or a spec .json path)"


def _make_out(out: Path) -> str | None:
    """Create the output folder ``out``; None if it is a writable folder, else why not."""
    try:
        out.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        return f"--out {out}: a file of that name exists; give a folder"
    except OSError as e:
        return f"--out {out}: cannot create the folder ({e.strerror or e})"
    if not os.access(out, os.W_OK | os.X_OK):
        return f"--out {out}: no permission to write in that folder"
    return None


def main(argv=None) -> int:
    default_detector = preset(DEFAULT_PRESET).detection.detector
    ap = argparse.ArgumentParser(prog="python -m export", description=__doc__.split("\n\n")[0])
    ap.add_argument("inputs", nargs="+", help="video files and/or folders of videos")
    ap.add_argument("--out", required=True, help="output folder (created if needed)")
    ap.add_argument("--preset", default=DEFAULT_PRESET, metavar="NAME",
                    help=f"settings preset (default: {DEFAULT_PRESET}): "
                         + "; ".join(f"{p.name}: {_strip_title(p.title)}" for p in PRESETS.values()))
    ap.add_argument("--frame-step", type=int, default=1, help="analyse every Nth frame (default: 1, every frame)")
    ap.add_argument("--detector", default=None, metavar="NAME",
                    help=f"face detector (default: the preset's, {default_detector}): auto finds near and far "
                         "faces; short and full are the plain BlazeFace models; also "
                         + ", ".join(d for d in DETECTORS if d not in ("auto", "short", "full")))
    ap.add_argument("--model", default=None, metavar="ID",
                    help=f"emotion model: a built-in id or a spec .json path (default: the preset's, "
                         f"{preset(DEFAULT_PRESET).classification.model})")
    ap.add_argument("--no-face-states", action="store_true",
                    help="emotions only: no landmarks, eye/head measures or face states")
    ap.add_argument("--landmark-interval", type=float, default=None, metavar="S",
                    help="measure each face at most every S seconds (default: 0, every analysed frame)")
    ap.add_argument("--blendshapes", action="store_true",
                    help="write every blendshape score (51 bs_* columns, ARKit names) in the timeline")
    ap.add_argument("--png", action="store_true", help="also write a PNG chart of the timeline per video")
    ap.add_argument("--max-seconds", type=float, default=None, help="refuse videos longer than this (default: no limit)")
    ap.add_argument("--quiet", action="store_true", help="no progress output")
    ap.add_argument("--jobs", "-j", type=int, default=cpu_count(), metavar="N",
                    help=f"videos analysed at once (default: the number of cores, here {cpu_count()}); "
                         "the outputs are the same as with --jobs 1")
    ap.add_argument("--pool", choices=["process", "thread"], default="process",
                    help="what runs the jobs on this machine (default: process, measured faster)")
    ap.add_argument("--engine", choices=["local", "ray"], default="local",
                    help="local (this machine, the default) or ray: one task per video on a Ray cluster "
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
    if args.model is not None:
        why = _check_model(args.model)
        if why:
            ap.error(why)

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
    made = not out.exists()
    why = _make_out(out)
    if why:
        ap.error(why)
    if args.blendshapes and args.no_face_states:
        ap.error("--blendshapes needs the face states (drop --no-face-states)")
    opts = Options(frame_step=args.frame_step, png=args.png, max_seconds=args.max_seconds,
                   blendshapes=args.blendshapes)
    try:
        results = _run(files, out, config, opts, args)
    except RayUnavailableExit as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    finally:
        if made and out.is_dir() and not any(out.iterdir()):
            out.rmdir()  # nothing was written: leave no empty folder behind
    failed = sum(not o.ok for o in results)
    if failed:
        print(f"{failed} of {len(files)} files failed", file=sys.stderr)
    return 1 if failed else 0


class RayUnavailableExit(Exception):
    """Ray was asked for and cannot be used (exit code 2)."""


def _run(files, out: Path, config, opts: Options, args) -> list[Outcome]:
    if args.engine == "ray":
        from .ray_engine import RayUnavailable, run_ray

        progress = BatchProgress(len(files), quiet=args.quiet)
        try:
            return run_ray(files, out, config, opts, jobs=args.jobs, address=args.address,
                           on_done=lambda o: _print(o, progress), progress=progress)
        except RayUnavailable as e:
            raise RayUnavailableExit(str(e)) from None
        finally:
            progress.clear()
    if min(args.jobs, len(files)) == 1:
        return _sequential(files, out, config, opts, args.quiet)
    progress = BatchProgress(len(files), quiet=args.quiet)
    try:
        return run_pool(files, out, config, opts, args.jobs, on_done=lambda o: _print(o, progress),
                        pool=args.pool, progress=progress)
    finally:
        progress.clear()


if __name__ == "__main__":
    sys.exit(main())
