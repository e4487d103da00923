"""Long-session soak: ``python -m benchmarks.soak [--minutes 10] [--fps 15]``.

Feeds a Pipeline and a LiveRecorder (the live tab's stack) with N minutes of
stream time (compressed: frames go as fast as the CPU allows) in which people
keep entering and leaving (testkit/synth.py ``enter_leave`` cycles), so new
track IDs keep coming.  Every 30 s of stream time it records RSS and the size
of every per-track structure (tracker ID map, DeepSORT tracks and appearance
gallery, smoother state, the recorder's in-memory buffer).  Memory must stay
flat and the structures bounded by the number of faces in view, not by the
number of IDs ever given.  Results: ``benchmarks/results/soak.json``.
"""
from __future__ import annotations

import argparse
import gc
import json
import tempfile
import time
from pathlib import Path

import psutil

from testkit.synth import make_sequence
from pipeline import Pipeline


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser()
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--fps", type=float, default=15.0)
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "soak.json"))
    args = ap.parse_args(argv)
    from export.live import LiveRecorder

    cycle = make_sequence("enter_leave", fps=args.fps, seconds=20.0, seed=5)
    frames = list(cycle.frames)  # one 20 s cycle, replayed with increasing timestamps
    n_total = int(args.minutes * 60 * args.fps)
    proc = psutil.Process()
    samples = []
    t_wall = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp, Pipeline() as p:
        rec = LiveRecorder(tmp, "soak", p.classes, {"model": p.model_id})
        max_id = 0
        for i in range(n_total):
            t = i / args.fps
            r = p.process(frames[i % len(frames)], t)
            rec.add(r)
            if len(r):
                max_id = max(max_id, int(r.track_ids.max()))
            if i % int(30 * args.fps) == 0 or i == n_total - 1:
                gc.collect()
                ds = p.tracker._ds.tracker
                samples.append({
                    "stream_s": round(t, 1),
                    "rss_mb": round(proc.memory_info().rss / 2**20, 1),
                    "ids_given": max_id,
                    "id_map": len(p.tracker._ids),
                    "deepsort_tracks": len(ds.tracks),
                    "gallery_samples": int(sum(len(v) for v in ds.metric.samples.values())),
                    "smoother_tracks": len(p.smoother),
                    "recent_rows": len(rec.recent(seconds=30)),
                    "timeline_mb": round(sum(f.stat().st_size for f in Path(tmp).rglob("*") if f.is_file()) / 2**20, 2),
                })
                print(samples[-1], flush=True)
        rec.close()
    wall = time.perf_counter() - t_wall
    rss = [s["rss_mb"] for s in samples]
    half = len(rss) // 2
    res = {
        "command": f"python -m benchmarks.soak --minutes {args.minutes:g} --fps {args.fps:g}",
        "frames": n_total,
        "wall_s": round(wall, 1),
        "samples": samples,
        "rss_first_mb": rss[0],
        "rss_after_warmup_mb": rss[min(2, len(rss) - 1)],
        "rss_last_mb": rss[-1],
        "rss_growth_second_half_mb": round(rss[-1] - rss[half], 1),
        "max_structures": {k: max(s[k] for s in samples) for k in
                           ("id_map", "deepsort_tracks", "gallery_samples", "smoother_tracks", "recent_rows")},
        "ids_given": samples[-1]["ids_given"],
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(res, indent=2))
    print(json.dumps({k: v for k, v in res.items() if k != "samples"}, indent=2))
    return res


if __name__ == "__main__":
    main()
