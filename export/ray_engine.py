"""``python -m export ... --engine ray [--address ADDR]``: one Ray task per video.

Per video, not per chunk: track IDs, smoothing and face states are per stream, and the
outputs of a chunked run could only approach those of the local run (IDs carried across a cut by
re-identification, summaries merged); one task per video gives the same files byte for byte,
and a batch of many videos fills a cluster anyway.  A single long video runs on one worker.

No shared file system is assumed: the driver sends each video's bytes (through Ray's object
store), the task analyses them in a temporary folder of its worker and returns every output
file's bytes, and the driver writes them to ``--out`` (all of a video's files renamed in
together, as locally).  The code travels too: the job's ``runtime_env`` ``working_dir`` is this
repository (without .git, .venv, .cache); the workers need only the Python packages
(requirements.txt, and requirements-ray.txt with the same Ray version as here).
"""
from __future__ import annotations

import tempfile
from dataclasses import replace
from pathlib import Path

from .batch import Options, Outcome, run_one
from .files import AtomicFiles

REPO = Path(__file__).resolve().parents[1]
#: Not shipped to the cluster with the code (on top of what .gitignore leaves out).
EXCLUDES = [".git", ".venv", ".cache", "tests", "benchmarks/results", "docs", "**/__pycache__"]


class RayUnavailable(RuntimeError):
    """Ray is not installed (or the cluster cannot be reached)."""


def _import_ray():
    try:
        import ray
    except ImportError as e:
        raise RayUnavailable(
            f"--engine ray needs the Ray package, which is not installed ({e}); install it with "
            f"`pip install -r requirements-ray.txt`, or leave out --engine ray to run on this machine"
        ) from None
    return ray


def _task(index: int, name: str, data, config, opts: Options, shown_dir: str, threads: int) -> Outcome:
    """On a worker: the video's bytes -> a temporary folder -> run_one -> the output files' bytes."""
    opts = replace(opts, threads=threads)
    with tempfile.TemporaryDirectory(prefix="emotion-ray-") as tmp:
        src = Path(tmp) / "in" / name  # the same name: the timeline's "source" and the stems match
        src.parent.mkdir()
        src.write_bytes(data)
        out = Path(tmp) / "out"
        o = run_one(src, out, config, opts, index=index, shown_dir=shown_dir)
        if o.ok:
            o.files = {p.name: p.read_bytes() for p in sorted(out.iterdir()) if p.is_file()}
    return o


def _save(o: Outcome, out: Path) -> Outcome:
    """Write a task's files into the driver's ``out`` (all renamed in together)."""
    if not o.ok:
        return o
    try:
        out.mkdir(parents=True, exist_ok=True)
        with AtomicFiles() as atomic:
            for name, data in (o.files or {}).items():
                atomic.temp(out / name).write_bytes(data)
    except OSError as e:
        return Outcome(o.index, o.name, False, error=f"error: {o.name}: could not write the outputs: {e}")
    o.files = None
    return o


def run_ray(files: list[Path], out: Path, config, opts: Options, jobs: int, address: str | None,
            on_done, progress=None) -> list[Outcome]:
    """Run ``files`` as Ray tasks (1 CPU each); ``address`` None starts a local Ray with ``jobs`` CPUs."""
    ray = _import_ray()
    runtime_env = {"working_dir": str(REPO), "excludes": EXCLUDES}
    kw = dict(runtime_env=runtime_env, log_to_driver=False, include_dashboard=False,
              configure_logging=False)
    if address:
        kw["address"] = address
    else:
        kw["num_cpus"] = jobs
    started = not ray.is_initialized()
    if started:
        try:
            ray.init(**kw)
        except (ConnectionError, ValueError, RuntimeError) as e:
            raise RayUnavailable(f"could not connect to the Ray cluster {address or '(local)'}: {e}") from None
    try:
        task = ray.remote(num_cpus=1, max_retries=1)(_task)
        out = Path(out)
        # Tasks of one CPU each; a worker machine with C cores runs C at once, so each gets one
        # model thread (the local pool's rule: cores // jobs).
        in_flight, results, order = {}, [], sorted(range(len(files)), key=lambda i: -files[i].stat().st_size
                                                   if files[i].is_file() else 0)
        window = max(2, 2 * int(ray.cluster_resources().get("CPU", jobs)))  # bounded driver memory
        todo = list(order)

        def submit(i: int) -> None:
            f = files[i]
            try:
                data = f.read_bytes()
            except OSError as e:
                o = Outcome(i, f.name, False, error=f"error: {f.name}: {type(e).__name__}: {e}")
                results.append(o)
                on_done(o)
                return
            ref = task.remote(i, f.name, data, config, opts, str(out), 1)
            in_flight[ref] = i
            if progress is not None:
                progress.update(i, f.name, 0, 0)

        while todo or in_flight:
            while todo and len(in_flight) < window:
                submit(todo.pop(0))
            if not in_flight:
                continue
            ready, _ = ray.wait(list(in_flight), num_returns=1)
            for ref in ready:
                i = in_flight.pop(ref)
                try:
                    o = _save(ray.get(ref), out)
                except Exception as e:  # the task itself failed (worker died, cannot import, ...)
                    o = Outcome(i, files[i].name, False, error=f"error: {files[i].name}: Ray task failed: "
                                f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}")
                if progress is not None:
                    progress.finish(i)
                results.append(o)
                on_done(o)
        return results
    finally:
        if started:
            ray.shutdown()
