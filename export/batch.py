"""Many videos at once: one file's work as a picklable task, and a bounded pool of workers.

* :func:`run_one` analyses one file and returns an :class:`Outcome` (the lines the command line
  prints, or its one-line error); it never raises for a bad file.
* :func:`run_pool` runs files on ``jobs`` workers (processes, or threads) and hands each
  :class:`Outcome` to a callback as it finishes; the outputs are those of a one-by-one run.
* :class:`BatchProgress` - one status line for all running files (stderr, on a terminal).

Threads per worker: the models run their own threads (onnxruntime's intra-op pool, LiteRT's
interpreter threads; both 2 by default, one per core).  With N workers each gets
``max(1, cores // N)`` of them (``Options.threads``, passed to each model's constructor), so N
workers do not oversubscribe the cores.  The H.264 encoder keeps its own
(automatic) thread count: a different count would give different MP4 bytes.
"""
from __future__ import annotations

import multiprocessing as mp
import os
import sys
import threading
import time
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, ThreadPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable



def cpu_count() -> int:
    """Cores this process may use (its CPU affinity), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def threads_per_job(jobs: int, cores: int | None = None) -> int:
    return max(1, (cores or cpu_count()) // max(1, jobs))


@dataclass(frozen=True)
class Options:
    """The per-file settings of the command line besides the pipeline config (picklable)."""

    frame_step: int = 1
    png: bool = False
    max_seconds: float | None = None
    threads: int = 2  # each model's threads in the worker (run_pool gives each worker its share of the cores)
    blendshapes: bool = False  # every blendshape score in the timeline


@dataclass
class Outcome:
    """One file's result: ``report`` (stdout lines) when ``ok``, else ``error`` (one stderr line)."""

    index: int
    name: str
    ok: bool
    report: str = ""
    error: str = ""
    frames: int = 0
    elapsed_s: float = 0.0
    #: Written files (name -> bytes), filled only when the outputs travel back to a driver (Ray).
    files: dict | None = None


def run_one(src, out, config, opts: Options, index: int = 0, progress=None, process=None,
            shown_dir=None) -> Outcome:
    """Analyse ``src`` into ``out``; never raises for a bad file (the error is in the Outcome).

    ``process`` replaces :func:`export.video.process_video` (the command line passes its own
    name so it can be swapped); ``shown_dir`` is the folder the report names (default ``out``).
    """
    from .plot import plot_timeline
    from .timeline import read_timeline
    from .video import VideoError, process_video

    process = process or process_video
    f, out = Path(src), Path(out)
    t0 = time.perf_counter()
    try:
        r = process(f, out, config=config, frame_step=opts.frame_step, progress=progress,
                    max_seconds=opts.max_seconds, threads=opts.threads,
                    **({"blendshapes": True} if opts.blendshapes else {}))
        written = r.files
        if opts.png:
            png = out / f"{r.timeline_csv.name[:-len('_timeline.csv')]}_timeline.png"
            plot_timeline(read_timeline(r.timeline_csv), r.summary["classes"], png, title=f.name)
            written = replace(written, chart_png=png)
    except VideoError as e:
        return Outcome(index, f.name, False, error=f"error: {e}", elapsed_s=time.perf_counter() - t0)
    except Exception as e:  # one bad file must not stop the batch
        return Outcome(index, f.name, False, error=f"error: {f.name}: {type(e).__name__}: {e}",
                       elapsed_s=time.perf_counter() - t0)
    fps = r.frames_read / r.elapsed_s if r.elapsed_s else 0
    lines = [f"{f.name}: {r.frames_read} frames ({r.frames_processed} analysed), "
             f"{r.summary['session']['tracks']} face tracks, {fps:.0f} frames/s, video {r.video_codec}, "
             f"audio {r.audio}"]
    fs = r.summary["session"].get("face_states")
    if fs:
        lines.append(f"  face states: {fs['blinks']} blinks, {fs['yawns']} yawns, drowsy {fs['drowsy_s']:.1f} s, "
                     f"attentive {100 * (fs['attentive_share'] or 0):.0f}% and looking away "
                     f"{100 * (fs['looking_away_share'] or 0):.0f}% of {fs['measured_s']:.1f} face-seconds")
    lines += [f"  warning: {w}" for w in r.warnings]
    shown = Path(shown_dir) if shown_dir is not None else out
    lines += [f"  {shown / p.name}" for p in written.paths()]
    return Outcome(index, f.name, True, report="\n".join(lines), frames=r.frames_read,
                   elapsed_s=time.perf_counter() - t0)


def cost(path: Path) -> float:
    """A guess of a file's work (frames x pixels from its header; its size if unreadable), to start
    the longest first so the last worker is not left alone with a long video."""
    try:
        import av

        with av.open(str(path)) as c:
            s = c.streams.video[0]
            frames = s.frames or (float(c.duration or 0) / 1e6) * float(s.average_rate or 30)
            return float(frames) * s.codec_context.width * s.codec_context.height
    except Exception:
        try:
            return float(path.stat().st_size)
        except OSError:
            return 0.0


# -- the workers' side (processes) -------------------------------------------------
_QUEUE = None


def _init_process(queue) -> None:
    global _QUEUE
    _QUEUE = queue


class _Reporter:
    """A worker's progress callback: (index, done, total) to the parent, at most 4 times a second."""

    def __init__(self, index: int, send: Callable):
        self.index, self.send, self._last = index, send, 0.0

    def __call__(self, done: int, total: int) -> None:
        now = time.monotonic()
        if now - self._last >= 0.25 or done == total:
            self._last = now
            try:
                self.send((self.index, done, total))
            except Exception:
                pass  # progress is a nicety: never fail a file for it


def _process_task(index: int, src: str, out: str, config, opts: Options) -> Outcome:
    send = _QUEUE.put if _QUEUE is not None else (lambda item: None)
    send((index, 0, 0))
    return run_one(src, out, config, opts, index=index, progress=_Reporter(index, send))


# -- the pool ------------------------------------------------------------------------
def run_pool(files: list[Path], out: Path, config, opts: Options, jobs: int, on_done: Callable[[Outcome], None],
             pool: str = "process", progress: BatchProgress | None = None) -> list[Outcome]:
    """Run ``files`` on ``jobs`` workers; ``on_done(outcome)`` is called in this thread as each ends."""
    jobs = max(1, min(jobs, len(files)))
    opts = replace(opts, threads=threads_per_job(jobs))
    order = sorted(range(len(files)), key=lambda i: -cost(files[i]))  # longest first
    results: list[Outcome] = []
    if pool == "thread":
        lock = threading.Lock()
        updates: list = []

        def send(item) -> None:
            with lock:
                updates.append(item)

        def task(i: int) -> Outcome:
            send((i, 0, 0))
            return run_one(files[i], out, config, opts, index=i, progress=_Reporter(i, send))

        def drain():
            with lock:
                items, updates[:] = list(updates), []
            return items

        with ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="export") as ex:
            futures = {ex.submit(task, i): i for i in order}
            _collect(futures, files, drain, on_done, progress, results)
        return results
    ctx = mp.get_context("spawn")  # no fork of a process that may hold native threads or locks
    queue = ctx.Queue()

    def drain():
        items = []
        try:
            while True:
                items.append(queue.get_nowait())
        except Exception:
            return items

    with ProcessPoolExecutor(max_workers=jobs, mp_context=ctx, initializer=_init_process,
                             initargs=(queue,)) as ex:
        futures = {ex.submit(_process_task, i, str(files[i]), str(out), config, opts): i for i in order}
        _collect(futures, files, drain, on_done, progress, results)
    queue.close()
    return results


def _collect(futures: dict[Future, int], files, drain, on_done, progress, results) -> None:
    pending = set(futures)
    while pending:
        done, pending = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
        if progress is not None:
            for i, n, total in drain():
                progress.update(i, files[i].name, n, total)
        for fut in sorted(done, key=lambda f: futures[f]):
            i = futures[fut]
            try:
                o = fut.result()
            except BrokenProcessPool as e:
                o = Outcome(i, files[i].name, False, error=f"error: {files[i].name}: the worker process died ({e})")
            except Exception as e:
                o = Outcome(i, files[i].name, False, error=f"error: {files[i].name}: {type(e).__name__}: {e}")
            if progress is not None:
                progress.finish(i)
            results.append(o)
            on_done(o)


class BatchProgress:
    """One status line on stderr for all running files: ``3/5 done | a.mp4 45% | b.mov 12%``.

    Only on a terminal and not ``quiet``; :meth:`clear` before printing anything else.
    """

    def __init__(self, total_files: int, quiet: bool = False, stream=None):
        self.stream = stream or sys.stderr
        self.on = not quiet and hasattr(self.stream, "isatty") and self.stream.isatty()
        self.total, self.finished, self.running = total_files, 0, {}
        self._last, self._width = 0.0, 0

    def update(self, index: int, name: str, done: int, total: int) -> None:
        self.running[index] = (name, done, total)
        self._draw()

    def finish(self, index: int) -> None:
        self.running.pop(index, None)
        self.finished += 1

    def _draw(self, force: bool = False) -> None:
        now = time.monotonic()
        if not self.on or (not force and now - self._last < 0.2):
            return
        self._last = now
        parts = [f"{self.finished}/{self.total} done"]
        for _, (name, done, total) in sorted(self.running.items()):
            parts.append(f"{name} {100 * done / total:.0f}%" if total else f"{name} {done} frames" if done else name)
        try:
            cols = os.get_terminal_size(self.stream.fileno()).columns
        except (OSError, ValueError, AttributeError):
            cols = 100
        line = " | ".join(parts)[: max(20, cols - 1)]
        self.stream.write("\r" + line.ljust(self._width))
        self.stream.flush()
        self._width = len(line)

    def clear(self) -> None:
        if self.on and self._width:
            self.stream.write("\r" + " " * self._width + "\r")
            self.stream.flush()
            self._width = 0
