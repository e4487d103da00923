"""Environment variables read by the app (documented in docs/space.md), and the choices its menus offer."""
from __future__ import annotations

import functools
import os
import tempfile
from pathlib import Path

from classifier import DEFAULT_MODEL, ModelSpec, builtin_specs
from pipeline.config import PRESETS


def _float(name: str, default: float | None) -> float | None:
    v = os.environ.get(name, "").strip()
    if not v:
        return default
    if v.lower() in ("none", "off", "inf"):
        return None
    return float(v)


def _int(name: str, default: int) -> int:
    v = os.environ.get(name, "").strip()
    return int(v) if v else default


def _opt_int(name: str) -> int | None:
    v = os.environ.get(name, "").strip()
    return int(float(v)) if v and v.lower() not in ("none", "off", "inf") else None


@functools.lru_cache(maxsize=1)
def offered_models() -> dict[str, tuple[ModelSpec, str]]:
    """The models a client may choose, by id: (spec, what the pipeline is given).

    The built-in specs, the spec files in the folder ``EMOTION_MODELS_DIR`` and ``EMOTION_MODEL``
    when it is a spec path, all chosen by the operator.  Clients name an id, never a path.
    """
    out = {sid: (spec, sid) for sid, spec in builtin_specs().items()}
    folder = os.environ.get("EMOTION_MODELS_DIR", "").strip()
    paths = sorted(Path(folder).glob("*.json")) if folder else []
    own = os.environ.get("EMOTION_MODEL", "").strip()
    if own.endswith(".json"):
        paths.append(Path(own))
    for p in paths:
        spec = ModelSpec.from_json(p)
        out.setdefault(spec.id, (spec, str(p)))
    return out


def model_choices() -> list[tuple[str, str]]:
    """(label, spec id) pairs for the model dropdowns: embedded first, then Hub models."""
    out = []
    for sid, (spec, _) in offered_models().items():
        where = "embedded" if spec.source != "hub" else f"Hub: {spec.repo_id}"
        out.append((f"{sid} ({where}, {len(spec.labels)} classes)", sid))
    out.sort(key=lambda c: (c[1] != DEFAULT_MODEL, c[1]))
    return out


def preset_choices() -> list[tuple[str, str]]:
    """(title, name) pairs for the preset menus, from :data:`pipeline.config.PRESETS`."""
    return [(p.title, p.name) for p in PRESETS.values()]


def _default_model() -> str:
    own = os.environ.get("EMOTION_MODEL", "").strip()
    return ModelSpec.from_json(own).id if own.endswith(".json") else (own or DEFAULT_MODEL)


#: Model selected when a page opens (a spec id; EMOTION_MODEL may also be a spec .json path).
DEFAULT_UI_MODEL = _default_model()
#: Simultaneous live streams (WebRTC connections) analysed.  4: the most that still get >= 15 fps each on
#: 2 vCPU (``python -m benchmarks.live_load --peer-video pre``, README "Live capacity": 4 streams 16-18 fps
#: at the 5th percentile, 19-21 median, p95 latency 159-175 ms); the server's total (~81 analysed frames/s)
#: stops growing at 3-4 streams and is only divided beyond: 6 streams ~14 fps, 8 ~10.
LIVE_MAX_STREAMS = _int("LIVE_MAX_STREAMS", 4)
#: Live streams run the face detector on every N-th frame (``detection.detect_every``); the frames in
#: between keep the last boxes and track IDs and are classified on their own pixels.  2: measured to lift
#: 4 streams from 10 to ~15 fps each at the 5th percentile on 2 vCPU, for a mean IDF1 of 0.971 against
#: 0.974 (``benchmarks.detect_every``; README, "Live capacity"); 1: every frame.
LIVE_DETECT_EVERY = min(10, max(1, _int("LIVE_DETECT_EVERY", 2)))
#: Threads that analyse live frames, shared by all streams (0: in fastrtc's event loop, as fastrtc does it).
LIVE_WORKERS = _int("LIVE_WORKERS", os.cpu_count() or 2)
#: Seconds after which a live stream is closed by the server (None: no limit).
LIVE_TIME_LIMIT_S = _float("LIVE_TIME_LIMIT", None)
#: A connection's state is dropped if no frame arrived for this long (missed disconnects).
LIVE_IDLE_S = _float("LIVE_IDLE_S", 30.0)
#: While a user waits for a live slot, a running stream with no frame for this long is released (a closed tab).
LIVE_SILENT_S = _float("LIVE_SILENT_S", 5.0)
#: Timeline files of ended streams stay downloadable this long.
LIVE_KEEP_S = _float("LIVE_KEEP_S", 1800.0)
#: Where live timelines are written.
LIVE_DIR = Path(os.environ.get("LIVE_DIR", "") or Path(tempfile.gettempdir()) / "emotion-live")
#: Where processed uploads are written.
OUTPUT_DIR = Path(os.environ.get("OUTPUT_DIR", "") or Path(tempfile.gettempdir()) / "emotion-out")
#: Uploaded videos are processed up to this many seconds (None: whole video).
VIDEO_MAX_SECONDS = _float("VIDEO_MAX_SECONDS", 600.0)
#: Uploaded videos are analysed up to this many decoded frames; a header claiming more is refused,
#: a stream holding more is stopped there and the part done is returned with a warning
#: (None: VIDEO_MAX_SECONDS x 60, i.e. 36000 frames by default).
VIDEO_MAX_FRAMES = _opt_int("VIDEO_MAX_FRAMES")
#: Wall-clock seconds one uploaded video may take; then it is stopped and the part done is returned
#: with a warning (None: no limit).
VIDEO_MAX_PROCESS_S = _float("VIDEO_MAX_PROCESS_S", 300.0)
#: Upload size limit passed to Gradio.
MAX_UPLOAD_MB = _int("MAX_UPLOAD_MB", 200)
#: Images with more pixels than this are refused from their header, before decoding.
IMAGE_MAX_PIXELS = _int("IMAGE_MAX_PIXELS", 50_000_000)
#: Videos whose frames have more pixels than this are refused from their header (default: 4096x2160);
#: a stream that grows past it later is stopped there (the part before is kept).
VIDEO_MAX_PIXELS = _int("VIDEO_MAX_PIXELS", 4096 * 2160)
#: Requests waiting in the Gradio queue (all events together); one more gets "queue is full".
QUEUE_MAX_SIZE = _int("QUEUE_MAX_SIZE", 16)
#: Connections accepted beyond LIVE_MAX_STREAMS only to tell their users the server is busy
#: (a notice drawn on their own video, no analysis); beyond that fastrtc refuses the connection.
LIVE_BUSY_SLOTS = _int("LIVE_BUSY_SLOTS", 2)
#: Results of uploaded videos (OUTPUT_DIR) and Gradio's file cache (uploads, returned files) are
#: deleted after this many seconds.
OUTPUT_KEEP_S = _float("OUTPUT_KEEP_S", 3600.0) or 3600.0


def chart_classes() -> list[str]:
    """Every class any offered model has, in first-seen order (the chart's "one emotion" choices)."""
    out: list[str] = []
    for spec, _ in offered_models().values():
        out += [c for c in spec.labels if c not in out]
    return out
#: Slow clients (see webapp/httpguard.py): a request's line and headers must arrive within
#: HTTP_HEADER_TIMEOUT_S; a request body must arrive at HTTP_BODY_MIN_BPS bytes/s or faster on
#: average, after a grace of HTTP_BODY_GRACE_S. Otherwise the connection is closed (408).
HTTP_HEADER_TIMEOUT_S = _float("HTTP_HEADER_TIMEOUT_S", 10.0) or 10.0
HTTP_BODY_GRACE_S = _float("HTTP_BODY_GRACE_S", 10.0) or 10.0
HTTP_BODY_MIN_BPS = _float("HTTP_BODY_MIN_BPS", 1024.0) or 1024.0
#: Uploads that no analysis opens within this many seconds are deleted (None/"off": only Gradio's hourly cache sweep).
UPLOAD_UNCLAIMED_S = _float("UPLOAD_UNCLAIMED_S", 300.0)
#: The upload/output caches, processed videos and live timelines together stay under this many MB (oldest out first).
DISK_QUOTA_MB = _float("DISK_QUOTA_MB", 4096.0)
#: New uploads are refused ("server is busy") while the disk has less than this many MB free.
MIN_FREE_MB = _float("MIN_FREE_MB", 512.0) or 0.0
#: How often the disk guard sweeps (seconds).
DISK_SWEEP_S = _float("DISK_SWEEP_S", 30.0) or 30.0
#: Queued requests one client address may send at once (a burst), and how many more per second.
QUEUE_BURST_PER_CLIENT = _float("QUEUE_BURST_PER_CLIENT", 6.0) or 6.0
QUEUE_RATE_PER_CLIENT = _float("QUEUE_RATE_PER_CLIENT", 2.0) or 2.0
#: Videos one client (address, and Gradio session) may have queued or running at once; another one is
#: refused at join time ("you already have a video being analysed"). 0: no limit.
VIDEOS_PER_CLIENT = _int("VIDEOS_PER_CLIENT", 1)
#: Image analyses (the Image tab and /analyze_image together) and video analyses run at once; they have
#: separate slots, so a short image never waits behind a long video (measured: benchmarks/concurrency.py).
IMAGE_CONCURRENCY = _int("IMAGE_CONCURRENCY", 2)
VIDEO_CONCURRENCY = _int("VIDEO_CONCURRENCY", 2)
#: Upload bytes one client address may send at once (MB), and how many more per second; beyond that its
#: uploads get 429 before their body is read (one client cannot fill the upload cache and push others' files out).
UPLOAD_BURST_MB_PER_CLIENT = _float("UPLOAD_BURST_MB_PER_CLIENT", 400.0) or 400.0
UPLOAD_MB_PER_S_PER_CLIENT = _float("UPLOAD_MB_PER_S_PER_CLIENT", 0.5) or 0.5
