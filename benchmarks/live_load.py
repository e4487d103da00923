"""Live capacity over real WebRTC: N simultaneous browserless peers against ``python app.py``.

    python -m benchmarks.live_load                       # levels 1,2,3,4,6,8,12, 15 s each
    python -m benchmarks.live_load --levels 4 --seconds 300 --out benchmarks/results/live_soak.json
    python -m benchmarks.live_load --levels 3,4 --repeat 4 --seconds 30 --peer-video pre   # runs pooled

Each peer (:class:`testkit.rtc_peer.LivePeer`, aiortc) sends a 640x480, 30 fps video of real face crops
(``testkit.synth`` ``crowd``, 5 faces, a different seed per peer) with a bar code (peer id, frame
counter) in a strip at the bottom, through fastrtc's own signalling, and reads the processed video
back.  Per level: frames sent and returned, processed fps per stream (per-second counts of new
annotated frames, all streams pooled: 5th percentile and median), end-to-end latency of each returned
frame (sent -> back, p50/p95), dropped frames, frames that came back broken (unreadable marker),
another stream's frames (mix-ups, must be 0), streams refused or shown "busy", and the server's CPU
(process and children; its busiest threads by name) and RSS.  The peers run in this process on the
same machine: their CPU (VP8 encode and decode for every stream) is reported too, it competes with
the server's.  ``LIVE_MAX_STREAMS`` is raised to the highest level unless ``--max-streams`` is given.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"


def _pct(v, q):
    return round(float(np.percentile(v, q)), 1) if len(v) else None


class ServerProbe:
    """CPU and RSS of the server process and its children; CPU time of its threads by name."""

    def __init__(self, pid: int):
        import psutil

        self.proc = psutil.Process(pid)

    def procs(self):
        try:
            return [self.proc, *self.proc.children(recursive=True)]
        except Exception:
            return [self.proc]

    def cpu(self) -> float:
        return sum(sum(p.cpu_times()[:2]) for p in self.procs())

    def rss_mb(self) -> float:
        return sum(p.memory_info().rss for p in self.procs()) / 2**20

    def threads(self) -> dict:
        out = {}
        for t in self.proc.threads():
            try:
                name = Path(f"/proc/{self.proc.pid}/task/{t.id}/comm").read_text().strip()
            except OSError:
                name = "?"
            out[t.id] = (name, t.user_time + t.system_time)
        return out


def _thread_usage(before: dict, after: dict, wall: float) -> list:
    by_name: dict[str, list] = {}
    for tid, (name, t1) in after.items():
        t0 = before.get(tid, (name, 0.0))[1]
        by_name.setdefault(name, []).append(100 * (t1 - t0) / wall)
    rows = [{"name": n, "threads": len(v), "cpu_pct": round(sum(v), 1), "busiest_pct": round(max(v), 1)}
            for n, v in by_name.items()]
    return sorted(rows, key=lambda r: -r["cpu_pct"])[:6]


def level_stats(peers, t0: float, t1: float) -> dict:
    """Figures of one level from the peers' records, counting frames sent in [t0, t1)."""
    fps_samples, lat, per_stream = [], [], []
    sent = returned = annotated = busy_frames = broken = foreign = repeats = 0
    for p in peers:
        st = p.stats
        s = [c for c, t in st.sent_t.items() if t0 <= t < t1]
        back = [r for r in st.returned if t0 <= st.sent_t[r.counter] < t1]
        ok = [r for r in back if r.annotated]
        sent += len(s)
        returned += len(back)
        annotated += len(ok)
        busy_frames += sum(r.busy for r in back)
        broken += st.unreadable
        foreign += len(st.foreign)
        repeats += st.repeats
        lat += [r.latency_ms for r in ok]
        arrivals = np.array([r.t for r in ok])
        secs = int(t1 - t0)
        counts = [int(((arrivals >= t0 + k) & (arrivals < t0 + k + 1)).sum()) for k in range(secs)]
        if not st.refused and not (back and sum(r.busy for r in back) > len(back) / 2):
            fps_samples += counts  # streams being analysed (busy or refused ones are counted apart)
        per_stream.append({"peer": p.peer, "sent": len(s), "returned": len(back), "annotated": len(ok),
                           "fps": round(len(ok) / max(t1 - t0, 1e-9), 1), "refused": st.refused or None,
                           "busy": sum(r.busy for r in back)})
    return {"sent": sent, "returned": returned, "annotated": annotated, "dropped": sent - returned,
            "broken": broken, "foreign": foreign, "repeats": repeats, "busy_frames": busy_frames,
            "fps_p5": _pct(fps_samples, 5), "fps_median": _pct(fps_samples, 50),
            "latency_p50_ms": _pct(lat, 50), "latency_p95_ms": _pct(lat, 95),
            "_fps_samples": fps_samples, "_latencies": lat,  # raw, for pooling runs (not written out)
            "streams_refused": sum(1 for s in per_stream if s["refused"]),
            "streams_busy": sum(1 for s in per_stream if s["returned"] and s["busy"] > s["returned"] / 2),
            "per_stream": per_stream}


async def run_level(url: str, n: int, frames_sets: list, probe: ServerProbe, warmup: float, seconds: float,
                    sample_every: float, log=print, pre_encoded: bool = False) -> dict:
    import httpx
    import psutil

    from testkit.rtc_peer import LivePeer

    me = psutil.Process()
    async with httpx.AsyncClient(timeout=60) as client:
        config = (await client.get(f"{url}config")).json()
        peers = [LivePeer(url, k + 1, frames_sets[k % len(frames_sets)], pre_encoded=pre_encoded) for k in range(n)]
        t_conn = time.time()
        ok = await asyncio.gather(*(p.connect(client, config) for p in peers), return_exceptions=True)
        errors = [repr(e) for e in ok if isinstance(e, Exception)]
        connect_s = time.time() - t_conn
        await asyncio.sleep(warmup)
        t0, c0, m0, th0 = time.time(), probe.cpu(), sum(me.cpu_times()[:2]), probe.threads()
        rss = [(0.0, round(probe.rss_mb(), 1))]
        while time.time() - t0 < seconds:
            await asyncio.sleep(min(sample_every, seconds - (time.time() - t0)))
            rss.append((round(time.time() - t0, 1), round(probe.rss_mb(), 1)))
        t1 = time.time()
        wall = t1 - t0
        cpu = 100 * (probe.cpu() - c0) / wall
        threads = _thread_usage(th0, probe.threads(), wall)
        client_cpu = 100 * (sum(me.cpu_times()[:2]) - m0) / wall
        await asyncio.sleep(1.5)  # frames sent before t1 still on their way back
        out = {"streams": n, "seconds": round(wall, 1), **level_stats(peers, t0, t1 - 0.5),
               "cpu_pct": round(cpu, 1), "rss_mb": rss[-1][1], "rss_samples": rss, "server_threads": threads,
               "client_cpu_pct": round(client_cpu, 1), "connect_s": round(connect_s, 1), "errors": errors}
        await asyncio.gather(*(p.close() for p in peers), return_exceptions=True)
    busiest = ", ".join(f"{t['name']} {t['busiest_pct']}%" for t in threads[:3])
    log(f"{n:>3} streams: fps p5 {out['fps_p5']} median {out['fps_median']}, latency p50 {out['latency_p50_ms']} "
        f"p95 {out['latency_p95_ms']} ms, sent {out['sent']} returned {out['returned']} dropped {out['dropped']} "
        f"broken {out['broken']} mix-ups {out['foreign']} refused {out['streams_refused']} busy {out['streams_busy']}; "
        f"server CPU {out['cpu_pct']}% RSS {out['rss_mb']} MB (busiest: "
        f"{busiest}); peers' CPU {out['client_cpu_pct']}%")
    return out


_SUMMED = ("sent", "returned", "annotated", "dropped", "broken", "foreign", "repeats", "busy_frames",
           "streams_refused", "streams_busy")


def pooled(runs: list[dict]) -> dict:
    """One level measured ``len(runs)`` times: the per-second fps and latency samples of all runs together
    (p5, median, p50, p95), counts summed, CPU averaged, the last RSS; each run's own figures under ``runs``.
    One run of 15-30 s moves by +-2 fps at p5 from run to run on this machine (other tenants, timing)."""
    fps = [v for r in runs for v in r["_fps_samples"]]
    lat = [v for r in runs for v in r["_latencies"]]
    out = {"streams": runs[0]["streams"], "repeat": len(runs), "seconds": round(sum(r["seconds"] for r in runs), 1),
           "fps_p5": _pct(fps, 5), "fps_median": _pct(fps, 50),
           "latency_p50_ms": _pct(lat, 50), "latency_p95_ms": _pct(lat, 95),
           **{k: sum(r[k] for r in runs) for k in _SUMMED},
           "cpu_pct": round(float(np.mean([r["cpu_pct"] for r in runs])), 1), "rss_mb": runs[-1]["rss_mb"],
           "client_cpu_pct": round(float(np.mean([r["client_cpu_pct"] for r in runs])), 1),
           "errors": [e for r in runs for e in r["errors"]]}
    out["runs"] = [public(r) for r in runs]
    return out


def public(level: dict) -> dict:
    """A level's figures without the raw samples."""
    return {k: v for k, v in level.items() if not k.startswith("_")}


def plot(levels: list, path: Path, compare: list | None = None,
         compare_label: str = "handler in fastrtc's loop") -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = [lv["streams"] for lv in levels]
    fig, ax = plt.subplots(figsize=(6, 3.4), dpi=80)
    ax.plot(n, [lv["fps_median"] or 0 for lv in levels], "o-", label="fps per stream, median")
    ax.plot(n, [lv["fps_p5"] or 0 for lv in levels], "s--", label="fps per stream, 5th pct")
    if compare:
        ax.plot([lv["streams"] for lv in compare], [lv["fps_median"] or 0 for lv in compare], "x:", color="grey",
                label=f"fps median, {compare_label}")
    ax.axhline(15, color="grey", lw=0.8, ls=":")
    ax.set_xlabel("simultaneous live streams (640x480, 30 fps, 5 faces)")
    ax.set_ylabel("processed fps")
    ax.set_xticks(n)
    ax2 = ax.twinx()
    ax2.plot(n, [lv["latency_p95_ms"] or 0 for lv in levels], "^-", color="tab:red", label="latency p95 (ms)")
    ax2.set_ylabel("latency p95 (ms)", color="tab:red")
    h1, l1 = ax.get_legend_handles_labels()
    h2, l2 = ax2.get_legend_handles_labels()
    ax.legend(h1 + h2, l1 + l2, fontsize=7, loc="upper right")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--levels", default="1,2,3,4,6,8,12", help="numbers of simultaneous streams, comma separated")
    ap.add_argument("--seconds", type=float, default=15.0, help="measured seconds per level")
    ap.add_argument("--warmup", type=float, default=4.0)
    ap.add_argument("--faces", type=int, default=5)
    ap.add_argument("--max-streams", type=int, default=None, help="LIVE_MAX_STREAMS (default: the highest level)")
    ap.add_argument("--workers", default=None, help="LIVE_WORKERS for the server (default: the app's default)")
    ap.add_argument("--nice", type=int, default=0,
                    help="lower the peers' CPU priority by this much (the server keeps its own), as when the "
                         "users' browsers run on their own machines")
    ap.add_argument("--detect-every", default=None, help="LIVE_DETECT_EVERY for the server (default: the app's)")
    ap.add_argument("--peer-video", choices=("live", "pre"), default="live",
                    help="live: each peer encodes its frames as it sends them (as a browser does, on these same "
                         "cores); pre: encoded once before the level, sent as is (the peers then cost ~nothing: "
                         "closer to a Space, whose users' browsers run on their own machines)")
    ap.add_argument("--repeat", type=int, default=1,
                    help="measure each level this many times (new peers each time) and pool the samples")
    ap.add_argument("--sample-every", type=float, default=5.0, help="seconds between server RSS samples")
    ap.add_argument("--out", default=str(RESULTS / "live_load.json"))
    ap.add_argument("--plot", default=None, help="PNG path (default: next to --out)")
    ap.add_argument("--compare", default=None, help="another results JSON to draw in the plot (e.g. LIVE_WORKERS=0)")
    ap.add_argument("--compare-label", default="handler in fastrtc's loop", help="its legend")
    ap.add_argument("--replot", action="store_true", help="only draw the plot of the existing --out JSON")
    args = ap.parse_args(argv)
    if args.replot:
        levels = json.loads(Path(args.out).read_text())["levels"]
        compare = json.loads(Path(args.compare).read_text())["levels"] if args.compare else None
        plot(levels, Path(args.plot) if args.plot else Path(args.out).with_suffix(".png"), compare, args.compare_label)
        return {"levels": levels}
    levels = [int(x) for x in args.levels.split(",") if x.strip()]

    from testkit.rtc_peer import scene_frames
    from testkit.server import ONE_ADDRESS_MANY_CLIENTS, start_app

    frames_sets = [scene_frames("crowd", 90, seed=s, n=args.faces) for s in range(4)]
    env = {"LIVE_MAX_STREAMS": str(args.max_streams or max(levels)), "LOG_LEVEL": "WARNING",
           **ONE_ADDRESS_MANY_CLIENTS}  # every peer comes from 127.0.0.1
    if args.workers is not None:
        env["LIVE_WORKERS"] = str(args.workers)
    if args.detect_every is not None:
        env["LIVE_DETECT_EVERY"] = str(args.detect_every)
    results = []
    with tempfile.TemporaryDirectory() as tmp, start_app(Path(tmp), env) as (url, proc):
        probe = ServerProbe(proc.pid)
        if args.nice:
            os.nice(args.nice)  # after the server started: it keeps the normal priority
        rss_start = round(probe.rss_mb(), 1)
        for n in levels:
            runs = []
            for _ in range(max(1, args.repeat)):
                runs.append(asyncio.run(run_level(url, n, frames_sets, probe, args.warmup, args.seconds,
                                                  args.sample_every, pre_encoded=args.peer_video == "pre")))
                # the server releases the sessions (a connection closed uncleanly holds its slot until someone
                # waits and it has been silent for LIVE_SILENT_S, 5 s: the next run must not start against it)
                time.sleep(2.0 if args.repeat <= 1 else 6.0)
            results.append(pooled(runs) if len(runs) > 1 else public(runs[0]))
            if len(runs) > 1:
                lv = results[-1]
                print(f"{n:>3} streams, {len(runs)} runs pooled: fps p5 {lv['fps_p5']} median {lv['fps_median']}, "
                      f"latency p50 {lv['latency_p50_ms']} p95 {lv['latency_p95_ms']} ms; per run p5 "
                      f"{[r['fps_p5'] for r in lv['runs']]}, broken {lv['broken']}, mix-ups {lv['foreign']}")
    out = {"command": "python -m benchmarks.live_load " + " ".join(argv if argv is not None else os.sys.argv[1:]),
           "video": f"testkit.synth crowd, {args.faces} real face crops on a real photo, 640x480 (scene 640x440 + "
                    "a 40 px marker strip), 30 fps, a different seed per peer (4 seeds)",
           "machine": f"{os.cpu_count()} CPUs; the peers run on the same machine",
           "peers_nice": args.nice, "peer_video": args.peer_video, "repeat": args.repeat, "max_streams": args.max_streams or max(levels),
           "workers": args.workers or "app default", "detect_every": args.detect_every or "app default",
           "rss_start_mb": rss_start, "levels": results}
    path = Path(args.out)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=1))
    if len(results) > 1:
        compare = json.loads(Path(args.compare).read_text())["levels"] if args.compare else None
        plot(results, Path(args.plot) if args.plot else path.with_suffix(".png"), compare, args.compare_label)
    goal = next((lv for lv in results if lv["streams"] == 8), None)
    if goal:
        print(f"goal 8 streams >= 15 fps (p5) and p95 <= 150 ms: fps p5 {goal['fps_p5']}, "
              f"p95 {goal['latency_p95_ms']} ms")
    print(f"wrote {path}")
    return out


if __name__ == "__main__":
    main()
