"""The live tab's server side: one :class:`LiveSession` per WebRTC connection.

fastrtc calls :meth:`LiveHandler.__call__` for every video frame of every
connection (in its asyncio loop, one frame at a time per connection) with the
frame and the current values of the page's controls.  The connection id comes
from ``fastrtc.get_current_context().webrtc_id``; the :class:`SessionRegistry`
maps it to a session that owns its own :class:`pipeline.Pipeline` (tracker,
IDs, smoothing) and its own timeline recorder, so two users never share state.

A session is released when fastrtc cleans the connection up (see
:func:`hook_cleanup`) or, as a safety net, when no frame arrived for
``idle_s`` seconds.  Its timeline files stay downloadable for ``keep_s``.

Hub models are loaded in a background thread (:class:`ModelLoader`): a
download must never stall the stream loop, which all connections share.
"""
from __future__ import annotations

import logging
import re
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import cv2
import numpy as np

from classifier import DEFAULT_MODEL, load_classifier
from pipeline import FrameResult, Pipeline, PipelineConfig
from pipeline.annotate import draw

log = logging.getLogger(__name__)

from export import live as _export_live
from export import timeline as _export_timeline


# -- controls ------------------------------------------------------------
@dataclass(frozen=True)
class LiveSettings:
    """The live tab's controls, as the handler receives them."""

    model: str = DEFAULT_MODEL
    detector: str = PipelineConfig.detector
    half_life_s: float = PipelineConfig.half_life_s
    min_face: int = PipelineConfig.min_face
    min_score: float = PipelineConfig.min_score

    @classmethod
    def from_inputs(cls, model=None, detector=None, half_life_s=None, min_face=None, min_score=None) -> "LiveSettings":
        d = cls()
        det = detector if detector in ("short", "full") else d.detector

        def num(v, default, lo, hi, kind=float):
            try:
                return kind(min(max(float(v), lo), hi))
            except (TypeError, ValueError):
                return default

        return cls(
            model=str(model) if model else d.model,
            detector=det,
            half_life_s=num(half_life_s, d.half_life_s, 0.0, 10.0),
            min_face=num(min_face, d.min_face, 4, 2000, int),
            min_score=num(min_score, d.min_score, 0.05, 0.99),
        )


class ModelLoader:
    """Loads classifiers off the stream loop and remembers failures for a while.

    ``status(name)`` returns ``("ready", None)``, ``("loading", None)`` or
    ``("failed", warning)``.  A successful load lands in the classifier cache,
    so a pipeline switching to it afterwards costs nothing.
    """

    def __init__(self, retry_after_s: float = 300.0, loader: Callable = load_classifier):
        self.retry_after_s = retry_after_s
        self._load = loader
        self._lock = threading.Lock()
        self._state: dict[str, tuple[str, str | None, float]] = {DEFAULT_MODEL: ("ready", None, 0.0)}

    def status(self, name: str) -> tuple[str, str | None]:
        with self._lock:
            st = self._state.get(name)
            if st is not None and not (st[0] == "failed" and time.monotonic() - st[2] > self.retry_after_s):
                return st[0], st[1]
            self._state[name] = ("loading", None, time.monotonic())
        threading.Thread(target=self._run, args=(name,), daemon=True, name=f"load-{name}").start()
        return "loading", None

    def _run(self, name: str) -> None:
        try:
            _, warn = self._load(name)
            st = ("failed", warn, time.monotonic()) if warn else ("ready", None, time.monotonic())
        except Exception as exc:  # unknown spec, broken file
            st = ("failed", f"model {name!r} could not be loaded: {exc}", time.monotonic())
        with self._lock:
            self._state[name] = st

    def wait(self, name: str, timeout: float = 30.0) -> tuple[str, str | None]:
        """Block until ``name`` is no longer loading (tests, image/video endpoints)."""
        t_end = time.monotonic() + timeout
        st = self.status(name)
        while st[0] == "loading" and time.monotonic() < t_end:
            time.sleep(0.05)
            st = self.status(name)
        return st


# -- one connection --------------------------------------------------------
@dataclass
class LiveStats:
    frames: int = 0  # frames processed
    repeats: int = 0  # identical frames answered from cache (fastrtc re-sends the latest when behind)
    errors: int = 0
    fps: float = 0.0  # processed frames per second over the last ~2 s
    latency_ms: float = 0.0  # server processing time per frame (decode excluded), smoothed
    faces: int = 0
    started: float = field(default_factory=time.time)

    def to_dict(self) -> dict:
        return {"frames": self.frames, "repeats": self.repeats, "errors": self.errors, "fps": round(self.fps, 2),
                "latency_ms": round(self.latency_ms, 1), "faces": self.faces,
                "seconds": round(time.time() - self.started, 1)}


class LiveSession:
    """Everything one connection owns: its pipeline, recorder, stats and last result."""

    def __init__(self, session_id: str, loader: ModelLoader, live_dir: Path | None, recorder_meta: dict | None = None):
        self.id = session_id
        self.loader = loader
        self.live_dir = live_dir
        self.meta = dict(recorder_meta or {})
        self.lock = threading.RLock()
        self.pipeline = Pipeline(PipelineConfig())
        self.settings: LiveSettings | None = None
        self.model_notice: str | None = None  # fallback warning / loading notice for the page
        self.stats = LiveStats()
        self.last_result: FrameResult | None = None
        self.version = 0  # bumps on every processed frame (the page skips unchanged ticks)
        self.t0 = self.last_seen = time.monotonic()
        self.closed = False
        self._times: deque[float] = deque(maxlen=60)
        self._prev_key: np.ndarray | None = None
        self._prev_out: np.ndarray | None = None
        self._rec_classes: tuple[str, ...] = ()
        self.recorders: list = []  # one per class set (a model switch can change the classes)
        self.snapshots: list[dict] = []  # files of finished recorder parts
        self._new_recorder()

    # recorder ---------------------------------------------------------
    def _new_recorder(self) -> None:
        if self.live_dir is None:
            return
        part = len(self.recorders) + 1
        base = re.sub(r"[^A-Za-z0-9_-]", "_", self.id)[:100] or "live"
        sid = f"{base}-{int(time.time())}" + ("" if part == 1 else f"-part{part}")
        # model (id, source, repo, revision), the full settings and smoothing go into the JSON header
        meta = {**self.meta, **_export_timeline.timeline_meta(self.pipeline, source="webcam")}
        self._rec_classes = tuple(self.pipeline.classes)
        try:
            self.recorders.append(_export_live.LiveRecorder(self.live_dir, sid, list(self.pipeline.classes), meta))
        except Exception as exc:  # recording is a convenience: never break the stream for it
            log.warning("live recorder unavailable: %s", exc)

    @property
    def recorder(self):
        return self.recorders[-1] if self.recorders else None

    # settings ---------------------------------------------------------
    def apply(self, settings: LiveSettings) -> None:
        """Bring the pipeline in line with the controls (cheap when nothing changed)."""
        want_model = settings.model
        state, warn = self.loader.status(want_model)
        if state == "ready":
            model, self.model_notice = want_model, None
        elif state == "loading":
            model, self.model_notice = self.pipeline.config.model, f"loading model {want_model!r}…"
        else:
            model, self.model_notice = DEFAULT_MODEL, warn
        # "far / groups" also tiles frames of 1000 px and more (tracker.detect tiles="auto"): without it a
        # crowd of small faces in an HD frame is missed (4 of 40 in 1280x720); 640x480 frames are not tiled.
        changes = {"model": model, "detector": settings.detector, "half_life_s": settings.half_life_s,
                   "min_face": settings.min_face, "min_score": settings.min_score,
                   "tiles": "auto" if settings.detector == "full" else 0}
        cfg = self.pipeline.config
        diff = {k: v for k, v in changes.items() if getattr(cfg, k) != v}
        if diff:
            self.pipeline.update_config(**diff)
        self.settings = settings

    # frames ------------------------------------------------------------
    def step(self, frame_bgr: np.ndarray, settings: LiveSettings) -> np.ndarray:
        """Process one BGR frame, return the annotated BGR frame."""
        with self.lock:
            if self.closed:
                return frame_bgr
            now = time.monotonic()
            self.last_seen = now
            # With skip_frames fastrtc answers a backlog with the latest frame again:
            # answer a repeat from cache instead of analysing it twice.
            key = frame_bgr[::16, ::16]
            if (self._prev_out is not None and self._prev_key is not None and key.shape == self._prev_key.shape
                    and np.array_equal(key, self._prev_key)):
                self.stats.repeats += 1
                return self._prev_out
            t0 = time.perf_counter()
            if settings != self.settings or self.model_notice:
                self.apply(settings)
            rgb = cv2.cvtColor(frame_bgr, cv2.COLOR_BGR2RGB)
            res = self.pipeline.process(rgb, now - self.t0)  # seconds since the stream started
            if self.recorders and tuple(res.classes) != self._rec_classes:
                self._rotate_recorder()  # a model switch changed the class set: start a new file
            if self.recorder is not None:
                try:
                    self.recorder.add(res)
                except Exception as exc:
                    log.warning("live recorder failed: %s", exc)
            # stats: fps over a sliding window, latency smoothed
            self._times.append(now)
            while len(self._times) > 2 and now - self._times[0] > 2.0:
                self._times.popleft()
            st = self.stats
            if len(self._times) >= 2 and self._times[-1] > self._times[0]:
                st.fps = (len(self._times) - 1) / (self._times[-1] - self._times[0])
            st.frames += 1
            st.faces = len(res)
            status = f"{st.fps:4.1f} fps  {st.latency_ms:3.0f} ms  {len(res)} face{'s' if len(res) != 1 else ''}"
            out = cv2.cvtColor(draw(rgb, res, bars=True, copy=False, status=status), cv2.COLOR_RGB2BGR)
            dt = (time.perf_counter() - t0) * 1000
            st.latency_ms = dt if st.frames == 1 else 0.8 * st.latency_ms + 0.2 * dt
            self.last_result = res
            self.version += 1
            self._prev_key, self._prev_out = key.copy(), out
            return out

    def recorder_classes(self) -> list[str]:
        return list(self._rec_classes)

    def _rotate_recorder(self) -> None:
        if self.recorder is None:
            self._new_recorder()
            return
        try:
            self.snapshots.append(self.recorder.close())
        except Exception as exc:
            log.warning("closing live recorder part failed: %s", exc)
        self._new_recorder()

    # views for the page (called from worker threads) -------------------
    def tracks_rows(self) -> tuple[list[str], list[list]]:
        with self.lock:
            res = self.last_result
            classes = list(res.classes) if res is not None else list(self.pipeline.classes)
            header = ["track", "emotion", "prob"] + classes
            if res is None:
                return header, []
            rows = [[f"#{f.track_id}", f.label, f"{f.label_prob:.0%}"] + [round(f.smoothed.get(c, 0.0), 3) for c in classes]
                    for f in res]
            return header, rows

    def recent(self, seconds: float = 30.0):
        with self.lock:
            rec = self.recorder
            if rec is None:
                return None, list(self.pipeline.classes)
            try:
                return rec.recent(seconds=seconds), self.recorder_classes()
            except Exception as exc:
                log.warning("recent timeline failed: %s", exc)
                return None, list(self.pipeline.classes)

    def snapshot_files(self) -> list[str]:
        """Timeline files recorded so far (all parts): CSV, JSON and summary."""
        with self.lock:
            snaps = list(self.snapshots)
            if self.recorder is not None and not self.closed:
                snaps.append(self.recorder.snapshot())
            return _files_of(snaps)

    def info(self) -> dict:
        with self.lock:
            d = {"connection": self.id, "model": self.pipeline.model_id, "detector": self.pipeline.config.detector,
                 **self.stats.to_dict(), "active": not self.closed}
            if self.model_notice:
                d["notice"] = self.model_notice
            return d

    def close(self) -> list[str]:
        """Release the pipeline; finish the recorder; return the final timeline files."""
        with self.lock:
            if self.closed:
                return _files_of(self.snapshots)
            self.closed = True
            for rec in self.recorders[-1:]:
                try:
                    self.snapshots.append(rec.close())  # final timeline CSV/JSON + summary JSON/CSV
                except Exception as exc:
                    log.warning("finishing the live recording failed: %s", exc)
            self.recorders = []
            try:
                self.pipeline.close()
            finally:
                self.pipeline = _ClosedPipeline(self.pipeline)
                self.last_result = self.last_result  # kept for the final table
                self._prev_key = self._prev_out = None
            return _files_of(self.snapshots)


class _ClosedPipeline:
    """What stays of a released pipeline: its config and class names (for the page)."""

    def __init__(self, p: Pipeline):
        self.config = p.config
        self.classes = p.classes
        self.model_id = p.model_id


def _files_of(snaps: list[dict]) -> list[str]:
    out = []
    for s in snaps:
        if not isinstance(s, dict):
            continue
        for k in ("csv", "json", "summary", "summary_csv"):
            v = s.get(k)
            if v and Path(v).is_file():
                out.append(str(v))
    return out


# -- all connections ---------------------------------------------------------
class SessionRegistry:
    """Live sessions by WebRTC connection id, plus recently ended ones (for downloads)."""

    def __init__(self, loader: ModelLoader | None = None, live_dir: Path | None = None, idle_s: float = 30.0,
                 keep_s: float = 1800.0, max_active: int | None = None):
        self.loader = loader or ModelLoader()
        self.max_active = max_active  # analysed streams at once (None: no limit); see admit()
        self.waiting: dict[str, float] = {}  # connections turned away as busy -> last frame (monotonic)
        self.refused = 0  # connections that were told "server busy" at least once
        self.live_dir = Path(live_dir) if live_dir else None
        self.idle_s = idle_s
        self.keep_s = keep_s
        self._lock = threading.Lock()
        self.active: dict[str, LiveSession] = {}
        self.ended: dict[str, tuple[float, LiveSession]] = {}
        self.opened = 0
        self.released = 0
        if self.live_dir:
            self.live_dir.mkdir(parents=True, exist_ok=True)

    def get(self, session_id: str) -> LiveSession | None:
        with self._lock:
            s = self.active.get(session_id)
            if s is None and session_id in self.ended:
                s = self.ended[session_id][1]
            return s

    def get_or_create(self, session_id: str) -> LiveSession:
        with self._lock:
            s = self.active.get(session_id)
            if s is not None:
                return s
        s = LiveSession(session_id, self.loader, self.live_dir, {"source": "live"})
        with self._lock:
            other = self.active.setdefault(session_id, s)
            if other is s:
                self.opened += 1
        if other is not s:  # lost a race: keep the first
            s.close()
        return other

    def admit(self, session_id: str) -> LiveSession | None:
        """The connection's session, a new one if there is room, or None when ``max_active`` streams run.

        A connection turned away is remembered in :attr:`waiting`; it is admitted on a later frame
        as soon as a stream ends (so the user's stream starts by itself).
        """
        with self._lock:
            s = self.active.get(session_id)
            if s is not None:
                return s
            if self._full_locked(session_id):
                return None
        s = LiveSession(session_id, self.loader, self.live_dir, {"source": "live"})
        with self._lock:
            other = self.active.get(session_id)
            if other is None:
                if self._full_locked(session_id):  # another connection took the last slot meanwhile
                    other = None
                else:
                    self.active[session_id] = other = s
                    self.waiting.pop(session_id, None)
                    self.opened += 1
        if other is not s:
            s.close()
        return other

    def _full_locked(self, session_id: str) -> bool:
        if self.max_active is None or len(self.active) < self.max_active:
            return False
        if session_id not in self.waiting:
            self.refused += 1
        self.waiting[session_id] = time.monotonic()
        return True

    def is_waiting(self, session_id: str | None) -> bool:
        with self._lock:
            return bool(session_id) and session_id in self.waiting

    def busy_message(self) -> str:
        with self._lock:
            n = len(self.active)
        return (f"Server busy: {n} live stream{'s' if n != 1 else ''} already running (the limit is "
                f"{self.max_active}). Try again later - your stream starts by itself when one ends.")

    def release(self, session_id: str) -> bool:
        """End a connection's session (idempotent). Its files stay for ``keep_s``."""
        with self._lock:
            self.waiting.pop(session_id, None)
            s = self.active.pop(session_id, None)
        if s is None:
            return False
        try:
            s.close()
        finally:
            with self._lock:
                self.ended[session_id] = (time.monotonic(), s)
                self.released += 1
        return True

    def reap(self) -> None:
        """Release idle sessions and forget ended ones older than ``keep_s`` (and their files)."""
        now = time.monotonic()
        with self._lock:
            idle = [k for k, s in self.active.items() if now - s.last_seen > self.idle_s]
            for k in [k for k, t in self.waiting.items() if now - t > self.idle_s]:
                del self.waiting[k]
        for k in idle:
            log.info("releasing idle live session %s", k)
            self.release(k)
        with self._lock:
            for k in [k for k, (t, _) in self.ended.items() if now - t > self.keep_s]:
                del self.ended[k]
        if _export_live is not None and self.live_dir is not None:
            try:
                _export_live.cleanup_old(self.live_dir, self.keep_s)
            except Exception as exc:
                log.warning("cleanup of old live files failed: %s", exc)

    def start_reaper(self, every_s: float = 10.0) -> threading.Thread:
        def loop():
            while True:
                time.sleep(every_s)
                try:
                    self.reap()
                except Exception:  # pragma: no cover - never let the reaper die
                    log.exception("live reaper")

        t = threading.Thread(target=loop, daemon=True, name="live-reaper")
        t.start()
        return t

    def __len__(self) -> int:
        with self._lock:
            return len(self.active)


# -- the fastrtc handler --------------------------------------------------------
class LiveHandler:
    """``fn(frame_bgr, model, detector, half_life_s, min_face, min_score) -> frame_bgr`` for fastrtc."""

    def __init__(self, registry: SessionRegistry, session_id: Callable[[], str] | None = None,
                 warn: Callable[[str], None] | None = None):
        self.registry = registry
        self._session_id = session_id or _fastrtc_connection_id
        self._warn = warn or _fastrtc_warning
        self._warned: deque[str] = deque(maxlen=256)  # connections already told "busy" (toast once)
        self.calls = 0

    def __call__(self, frame, *controls):
        self.calls += 1
        if frame is None:
            return frame
        try:
            settings = LiveSettings.from_inputs(*controls)
            sid = self._session_id()
            sess = self.registry.admit(sid)
            if sess is None:
                return self._busy(frame, sid)
            return sess.step(frame, settings)
        except Exception as exc:  # never kill the stream: show the problem on the frame
            log.exception("live frame failed")
            try:
                out = np.ascontiguousarray(frame).copy()
                cv2.putText(out, f"error: {str(exc)[:60]}", (8, 24), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 0, 255), 2)
                return out
            except Exception:
                return frame


    def _busy(self, frame: np.ndarray, sid: str) -> np.ndarray:
        """The user's own frame, dimmed, with the "server busy" message (no analysis: costs ~1 ms)."""
        msg = self.registry.busy_message()
        if sid not in self._warned:
            self._warned.append(sid)
            try:
                self._warn(msg)
            except Exception:  # pragma: no cover - the frame still carries the message
                pass
        return busy_frame(frame, msg)


def busy_frame(frame: np.ndarray, message: str) -> np.ndarray:
    out = (np.ascontiguousarray(frame) // 3).astype(np.uint8)
    h, w = out.shape[:2]
    scale = max(0.4, min(1.0, w / 900))
    words, lines, cur = message.split(), [], ""
    for word in words:  # wrap to the frame width
        trial = f"{cur} {word}".strip()
        if cv2.getTextSize(trial, cv2.FONT_HERSHEY_SIMPLEX, scale, 2)[0][0] > w - 20 and cur:
            lines.append(cur)
            cur = word
        else:
            cur = trial
    lines.append(cur)
    y = max(30, h // 2 - 15 * len(lines))
    for line in lines:
        cv2.putText(out, line, (10, y), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 2, cv2.LINE_AA)
        y += int(36 * scale) + 6
    return out


def _fastrtc_warning(message: str) -> None:
    """A warning toast in the user's page (fastrtc sends it over the connection's data channel)."""
    from fastrtc.utils import Warning as rtc_warning

    rtc_warning(message)


def _fastrtc_connection_id() -> str:
    from fastrtc import get_current_context

    return get_current_context().webrtc_id


def stable_handler(fn: Callable, skip_frames: bool = True, fps: int = 30):
    """A ``fastrtc.VideoStreamHandler`` that fastrtc cannot re-wrap.

    fastrtc 0.0.34 wraps ``handler.callable`` in an error decorator on *every*
    new connection (``webrtc_connection_mixin.handle_offer``), so the call
    stack grows by one frame per connection ever made and a long-running
    server ends in RecursionError.  Our handler already catches its errors, so
    later assignments to ``callable`` are ignored.
    """
    from fastrtc import VideoStreamHandler

    class _Stable(VideoStreamHandler):
        def __setattr__(self, name, value):
            if name == "callable" and "callable" in self.__dict__:
                return
            super().__setattr__(name, value)

    return _Stable(fn, fps=fps, skip_frames=skip_frames)


def hook_cleanup(webrtc, registry: SessionRegistry) -> None:
    """Release a connection's session when fastrtc cleans the connection up."""
    original = webrtc.clean_up

    def clean_up(webrtc_id: str):
        try:
            return original(webrtc_id)
        finally:
            try:
                registry.release(webrtc_id)
            except Exception:  # pragma: no cover
                log.exception("releasing live session %s", webrtc_id)

    webrtc.clean_up = clean_up
