"""Mixed load with one hostile client: ``python -m benchmarks.hostile_load --phase both --seconds 600``.

Starts ``python app.py`` with its default limits (only ``TRUST_PROXY=1``: see below) and runs the
honest load of :mod:`benchmarks.load` (N clients calling ``/analyze_image`` with real photos and now
and then ``/analyze_video``, every answer checked against its request, a think time between
requests), once without (``--phase baseline``) and once with (``--phase hostile``) one hostile
client looping over:

* ``flood``: 24 simultaneous ``/analyze_image`` calls;
* ``long_video``, in a thread of its own, one attempt a second: the issue's header-lying video (12000
  face frames at 10000 frames/s: "1.2 s"), then at once a second video while the first is in flight;
* ``bad_input``: a text file named .jpg, a JPEG cut in half, a 7000x7000 header without data,
  random bytes named .mp4;
* ``spec_path``: ``model="/etc/passwd"`` and ``model=<the server path of an uploaded spec .json>``;
* ``junk_upload``: 10 MB uploads of fresh random bytes that no analysis ever opens;
* ``slow_upload``: an upload body at 1 byte every 2 s (one at a time, in its own thread).

Addresses: every client sends its own ``X-Forwarded-For`` and the server trusts it
(``TRUST_PROXY=1``), which is what a Hugging Face Space's proxy does (the app takes the last entry,
the one the proxy adds).  So the per-address limits (:mod:`webapp.guards.fairness`) see the hostile client
(10.66.6.6) apart from the honest ones (10.0.0.1...), as they would on a Space.  (Binding each
client to its own 127.0.0.x would do the same for raw sockets, but gradio_client offers no way to
choose the source address.)

Every ~10 s: the server's RSS (process and children) and the disk used by the upload cache
(``GRADIO_TEMP_DIR``) and the outputs (``OUTPUT_DIR``).  Results (both phases in one file, each
phase run on its own so that one exclusive CPU slot is at most ~11 minutes):
``benchmarks/results/hostile_load.json`` and a markdown table on stdout.  Only 127.0.0.1 is
targeted.
"""
from __future__ import annotations

import argparse
import collections
import concurrent.futures as cf
import contextlib
import json
import os
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

from benchmarks.load import REPO, run as run_load
from testkit.server import start_app

HOSTILE = "10.66.6.6"
OUT = REPO / "benchmarks" / "results" / "hostile_load.json"


def _du_mb(folder: Path) -> float:
    total = 0
    for root, _dirs, files in os.walk(folder):
        for f in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(root, f)).st_size
    return total / 2**20


def _hostile_inputs(folder: Path) -> dict[str, tuple[str, bytes]]:
    """name -> (file name, bytes) of the hostile client's files."""
    from testkit.assets import feat_data
    from testkit.hostile_image import jpeg_declaring
    from testkit.hostile_video import fast_clip

    photo = (feat_data() / "single_face.jpg").read_bytes()
    long_video = fast_clip(folder / "lying.mp4", 12000, "mp4", rate=10000).read_bytes()
    spec = json.dumps({"id": "evil", "source": "file", "path": "/etc/passwd", "labels": ["a", "b"],
                       "input": {"size": [48, 48]}}).encode()
    rng = __import__("random").Random(6)
    return {
        "photo": ("p.jpg", photo),
        "long_video": ("lying.mp4", long_video),
        "short_video": ("clip.mp4", (feat_data() / "single_face.mp4").read_bytes()),
        "text_as_jpg": ("notes.jpg", b"this is not an image\n" * 50),
        "cut_jpeg": ("cut.jpg", photo[: len(photo) // 2]),
        "header_only_7000": ("big.jpg", jpeg_declaring(photo, 7000, 7000, keep_scan=0)),
        "random_mp4": ("broken.mp4", bytes(rng.getrandbits(8) for _ in range(200_000))),
        "spec": ("evil.json", spec),
    }


class Hostile:
    """The hostile client's loop; ``outcomes[kind][outcome]`` counts what the server answered."""

    def __init__(self, url: str, files: dict, t_end: float):
        self.url, self.files, self.t_end = url, files, t_end
        self.h = {"X-Forwarded-For": HOSTILE}
        self.c = httpx.Client(base_url=url, timeout=180, headers=self.h)
        self.outcomes: dict = collections.defaultdict(collections.Counter)
        self.samples: dict = collections.defaultdict(list)  # kind -> seconds per request
        self._slow: threading.Thread | None = None

    def _note(self, kind: str, outcome: str, dt: float | None = None) -> None:
        self.outcomes[kind][outcome] += 1
        if dt is not None:
            self.samples[kind].append(round(dt, 3))

    def _upload(self, name: str) -> dict | None:
        fname, data = self.files[name]
        r = self.c.post("gradio_api/upload", files=[("files", (fname, data, "application/octet-stream"))])
        if r.status_code != 200:
            self._note("upload_refused", f"http_{r.status_code}")
            raise RuntimeError("upload refused")
        return {"path": r.json()[0], "meta": {"_type": "gradio.FileData"}}

    def _call(self, api: str, data: list, wait: bool = True) -> tuple[str, str]:
        r = self.c.post(f"gradio_api/call/{api}", json={"data": data})
        if r.status_code == 429:
            return ("refused_video_in_flight" if "video being analysed" in r.text else "refused_rate"), ""
        if r.status_code != 200:
            return f"http_{r.status_code}", r.text[:200]
        if not wait:
            return "queued", ""
        from testkit.server import call_result

        kind, body = call_result(self.c, api, r.json()["event_id"])
        return kind, body[:300]

    def flood(self) -> None:
        f = self._upload("photo")
        with cf.ThreadPoolExecutor(24) as ex:
            res = list(ex.map(lambda _: self._call("analyze_image", [f, "fer-mini-xception", "standard"],
                                                   wait=False), range(24)))
        for kind, _ in res:
            self._note("flood", kind)

    def long_video(self) -> None:
        f, g = self._upload("long_video"), self._upload("short_video")
        t0 = time.perf_counter()
        r = self.c.post("gradio_api/call/analyze_video", json={"data": [f, 1, "fer-mini-xception", "standard", False]})
        if r.status_code == 429:
            self._note("long_video", "refused_rate")
            return
        time.sleep(0.2)
        second = self._call("analyze_video", [g, 1, "fer-mini-xception", "standard", False], wait=False)
        self._note("second_video_while_first_in_flight", second[0])
        from testkit.server import call_result

        kind, body = call_result(self.c, "analyze_video", r.json()["event_id"])
        stopped = "holds more than" in body or "limit" in body
        self._note("long_video", f"{kind}{'_stopped_at_cap' if stopped else ''}", time.perf_counter() - t0)

    def bad_inputs(self) -> None:
        for name in ("text_as_jpg", "cut_jpeg", "header_only_7000"):
            t0 = time.perf_counter()
            kind, body = self._call("analyze_image", [self._upload(name), "fer-mini-xception", "standard"])
            # the call API sends an error's text only with show_error; the tests check the messages
            self._note(f"bad_{name}", kind, time.perf_counter() - t0)
        t0 = time.perf_counter()
        kind, body = self._call("analyze_video", [self._upload("random_mp4"), 1, "fer-mini-xception", "standard", False])
        self._note("bad_random_mp4", kind, time.perf_counter() - t0)

    def spec_path(self) -> None:
        spec = self._upload("spec")
        for label, model in (("etc_passwd", "/etc/passwd"), ("uploaded_spec", spec["path"] if spec else "x.json")):
            t0 = time.perf_counter()
            kind, body = self._call("analyze_image", [self._upload("photo"), model, "standard"])
            # Gradio's call API carries a gr.Error's text only with show_error; "error" is the refusal
            self._note(f"spec_{label}", kind, time.perf_counter() - t0)

    def junk(self) -> None:
        t0 = time.perf_counter()
        # fresh bytes every time: Gradio stores uploads by content hash, so a repeated file costs no disk
        r = self.c.post("gradio_api/upload", files=[("files", ("junk.bin", os.urandom(10 * 2**20)))])
        if r.status_code == 429:
            time.sleep(1.0)  # the hostile client does not stop; it only does not spin
        self._note("junk_upload_10mb", f"http_{r.status_code}", time.perf_counter() - t0)

    def slow_upload(self) -> None:
        if self._slow is not None and self._slow.is_alive():
            return

        def go():
            u = httpx.URL(self.url)
            s = socket.create_connection((u.host, u.port))
            t0 = time.monotonic()
            try:
                s.sendall((f"POST /gradio_api/upload HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: {HOSTILE}\r\n"
                           "Content-Type: multipart/form-data; boundary=b\r\nContent-Length: 100000\r\n\r\n").encode())
                s.settimeout(2.0)
                while time.monotonic() - t0 < 120:
                    try:
                        if not s.recv(4096):
                            break
                    except socket.timeout:
                        s.sendall(b"a")
                    except OSError:
                        break
                self._note("slow_upload", "closed_by_server" if time.monotonic() - t0 < 120 else "still_open",
                           time.monotonic() - t0)
            except OSError:
                self._note("slow_upload", "closed_by_server", time.monotonic() - t0)
            finally:
                s.close()

        self._slow = threading.Thread(target=go, daemon=True)
        self._slow.start()

    def video_hog(self) -> None:
        """In its own thread: always trying to have a long video in flight (the issue's slot-holding attack)."""
        while time.time() < self.t_end:
            try:
                self.long_video()
            except Exception as exc:
                self._note("long_video", f"client_exception:{type(exc).__name__}")
            time.sleep(1.0)

    def loop(self) -> None:
        steps = [self.slow_upload, self.flood, self.bad_inputs, self.spec_path, self.junk]
        hog = threading.Thread(target=self.video_hog, daemon=True)
        hog.start()
        k = 0
        while time.time() < self.t_end:
            step = steps[k % len(steps)]
            k += 1
            try:
                step()
            except Exception as exc:  # the hostile client's own failures are counted, never fatal
                self._note(step.__name__, f"client_exception:{type(exc).__name__}")
        hog.join(180)
        if self._slow is not None:
            self._slow.join(130)


def flatness(samples: list[dict], key: str, warmup_s: float = 60.0) -> dict:
    """After warm-up: the first and last minute's means, their change in %, and the slope per minute."""
    pts = [(s["t_s"], s[key]) for s in samples if s["t_s"] >= warmup_s and s.get(key) is not None]
    if len(pts) < 4:
        return {}
    t_last = pts[-1][0]
    first = [v for t, v in pts if t < warmup_s + 60]
    last = [v for t, v in pts if t >= t_last - 60]
    n = len(pts)
    mt, mv = sum(t for t, _ in pts) / n, sum(v for _, v in pts) / n
    slope = sum((t - mt) * (v - mv) for t, v in pts) / max(1e-9, sum((t - mt) ** 2 for t, _ in pts))
    f, la = sum(first) / len(first), sum(last) / len(last)
    return {"first_minute_after_warmup": round(f, 1), "last_minute": round(la, 1),
            "change_pct": round(100 * (la - f) / f, 1) if f else None, "slope_per_min": round(slope * 60, 2),
            "min": round(min(v for _, v in pts), 1), "max": round(max(v for _, v in pts), 1)}


def run_phase(phase: str, seconds: float, clients: int, think_s: float, env_extra: dict | None = None,
              warmup_s: float = 60.0) -> dict:
    with tempfile.TemporaryDirectory(prefix="hostile-load-") as tmp_s:
        tmp = Path(tmp_s)
        (tmp / "gradio").mkdir()
        files = _hostile_inputs(tmp) if phase == "hostile" else None
        env = {"TRUST_PROXY": "1", "GRADIO_TEMP_DIR": str(tmp / "gradio"), **(env_extra or {})}
        with start_app(tmp / "srv", env) as (url, proc):
            def disk():
                return {"uploads_mb": round(_du_mb(tmp / "gradio"), 1), "outputs_mb": round(_du_mb(tmp / "srv" / "out"), 1)}

            hostile = None
            if files is not None:
                hostile = Hostile(url, files, time.time() + seconds)
                ht = threading.Thread(target=hostile.loop, daemon=True)
                ht.start()
            res = run_load(url, clients, seconds, max_requests=100_000, video_every=8, server_pid=proc.pid,
                           headers_of=lambda i: {"X-Forwarded-For": f"10.0.0.{i + 1}"}, think_s=think_s,
                           sample_s=10.0, sampler=disk, check_cases=True)
            if hostile is not None:
                ht.join(300)
                res["hostile"] = {"address": HOSTILE, "outcomes": {k: dict(v) for k, v in hostile.outcomes.items()},
                                  "seconds_per_request": {k: {"n": len(v), "median": sorted(v)[len(v) // 2],
                                                              "max": max(v)} for k, v in hostile.samples.items()}}
            log = (tmp / "srv" / "server.log").read_text(errors="replace")
            res["server_log_tracebacks"] = log.count("Traceback")
    res["phase"] = phase
    res["think_s"] = think_s
    res["warmup_s"] = warmup_s
    return figure(res)


def figure(res: dict) -> dict:
    """The flatness figures of a phase's samples (RSS, uploads, outputs, and the two together)."""
    for s in res["rss"]:
        if s.get("uploads_mb") is not None and s.get("outputs_mb") is not None:
            s["disk_mb"] = round(s["uploads_mb"] + s["outputs_mb"], 1)
        else:
            s.pop("disk_mb", None)  # the final RSS sample has no disk figures
    w = res.get("warmup_s", 60.0)
    res["flat"] = {k: flatness(res["rss"], k, w) for k in ("rss_mb", "uploads_mb", "outputs_mb", "disk_mb")}
    return res


def summary(results: dict) -> str:
    lines = ["| endpoint | baseline p50 / p95 s | with hostile p50 / p95 s | p95 ratio | requests (base / hostile) | "
             "honest errors (base / hostile) |", "|---|---|---|---|---|---|"]
    b, h = results.get("baseline"), results.get("hostile")
    for ep in ("analyze_image", "analyze_video"):
        def fig(r):
            d = r["endpoints"][ep] if r else None
            return (d["p50_s"], d.get("p95_s"), d["requests"], d["errors"]) if d else (None, None, None, None)
        fb, fh = fig(b), fig(h)
        ratio = round(fh[1] / fb[1], 2) if fb[1] and fh[1] else None
        lines.append(f"| /{ep} | {fb[0]} / {fb[1]} | {fh[0]} / {fh[1]} | {ratio} | {fb[2]} / {fh[2]} | {fb[3]} / {fh[3]} |")
    for name, r in (("baseline", b), ("hostile", h)):
        if r:
            lines.append(f"\n{name}: RSS {r['flat']['rss_mb']}, uploads {r['flat']['uploads_mb']}, outputs "
                         f"{r['flat']['outputs_mb']}; mix-ups {len(r['mixups'])}, wrong counts {len(r['wrong_count'])}")
    if h and "hostile" in h:
        lines.append("\nhostile outcomes: " + json.dumps(h["hostile"]["outcomes"]))
    return "\n".join(lines)


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--phase", choices=("baseline", "hostile", "both"), default="both")
    ap.add_argument("--seconds", type=float, default=600.0)
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--think", type=float, default=0.5, help="seconds an honest client waits between requests")
    ap.add_argument("--disk-quota-mb", type=float, default=None,
                    help="the server's DISK_QUOTA_MB (default: the app's, 4096): a small one shows the plateau")
    ap.add_argument("--warmup", type=float, default=60.0, help="seconds left out of the flatness figures")
    ap.add_argument("--out", default=str(OUT))
    ap.add_argument("--refigure", action="store_true", help="recompute the flatness figures of --out's samples only")
    args = ap.parse_args(argv)
    if args.refigure:
        results = json.loads(Path(args.out).read_text())
        for phase in ("baseline", "hostile"):
            if phase in results:
                figure(results[phase])
        Path(args.out).write_text(json.dumps(results, indent=1) + "\n")
        print(summary(results))
        return results
    if args.seconds > 660:
        raise SystemExit("--seconds is capped at 660")
    out = Path(args.out)
    results = json.loads(out.read_text()) if out.exists() else {}
    for phase in (("baseline", "hostile") if args.phase == "both" else (args.phase,)):
        env = {"DISK_QUOTA_MB": str(args.disk_quota_mb)} if args.disk_quota_mb else None
        res = run_phase(phase, args.seconds, args.clients, args.think, env, warmup_s=args.warmup)
        res["command"] = "python -m benchmarks.hostile_load " + " ".join(argv if argv is not None else sys.argv[1:])
        res["disk_quota_mb"] = args.disk_quota_mb or 4096.0
        results[phase] = res
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(results, indent=1) + "\n")
    print(summary(results))
    print(f"\nresults: {out}")
    return results


if __name__ == "__main__":
    main()
