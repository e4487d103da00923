"""One live connection: :class:`LiveSession` owns its pipeline, timeline recorder and stats.

The Live tab's controls arrive with every frame as a :class:`LiveControls`: a
preset name plus the sliders' values, applied as field changes on top of the
preset (``pipeline.config.preset(name, **changes)``), so the stream runs
exactly the preset the user chose with the values the page shows.
"""
from __future__ import annotations

import logging
import re
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from classifier import builtin_specs
from export.files import OutputFiles
from export.live import LiveRecorder
from export.timeline import timeline_meta
from pipeline import (
    DEFAULT_PRESET,
    PRESETS,
    FrameResult,
    Pipeline,
    PipelineConfig,
    preset,
)
from pipeline.annotate import draw

from ..models import ModelLoader


log = logging.getLogger(__name__)


def status_text(info: dict) -> str:
    """The one status line, the same on the video and on the page: fps, latency, faces."""
    n = info["faces"]
    return f"{info['fps']:.0f} fps  {info['latency_ms']:.0f} ms  {n} face{'' if n == 1 else 's'}"


#: A stream whose last frame is older than this is shown as stopped (fastrtc sends ~30 frames/s while live).
STOPPED_AFTER_S = 0.6

#: The Live tab's sliders: config field -> (lowest, highest, type).  Their initial values
#: come from the chosen preset; values from the page are clamped to these ranges.
SLIDER_RANGES = {"half_life_s": (0.0, 3.0, float), "min_face": (8, 200, int), "min_score": (0.1, 0.95, float)}


@dataclass(frozen=True)
class LiveControls:
    """The Live tab's controls: model, preset name, and slider values (None: the preset's value)."""

    model: str | None = None
    preset: str | None = None
    half_life_s: float | None = None
    min_face: int | None = None
    min_score: float | None = None
    #: When the page last changed a control (ms, the page's clock): fastrtc forwards each change as its own
    #: request, run concurrently, so an older set of values can arrive after a newer one; the session keeps
    #: the newest (:meth:`newer_than`).
    seq: float | None = None
    #: The face-state stage (eyes, blinks, head pose, drowsy/attentive); None: the preset's value.
    face_states: bool | None = None

    @classmethod
    def from_inputs(cls, model=None, preset_name=None, half_life_s=None, min_face=None,
                    min_score=None, seq=None, face_states=None, *, offered: dict | None = None) -> LiveControls:
        """From the page's values, in the order the handler receives them; bad values are clamped or dropped.

        ``offered``: the models a client may name (``Settings.offered_models()``; default: the built-in ones)."""
        def num(name, v):
            lo, hi, kind = SLIDER_RANGES[name]
            try:
                return kind(min(max(float(v), lo), hi))
            except (TypeError, ValueError):
                return None  # the preset's value

        if offered is None:
            offered = {sid: (spec, sid) for sid, spec in builtin_specs().items()}  # by id, never by path
        return cls(model=offered[model][1] if isinstance(model, str) and model in offered else None,
                   preset=preset_name if preset_name in PRESETS else None,
                   half_life_s=num("half_life_s", half_life_s), min_face=num("min_face", min_face),
                   min_score=num("min_score", min_score), seq=_seq(seq),
                   face_states=face_states if isinstance(face_states, bool) else None)

    def stale_against(self, current: LiveControls) -> bool:
        """Whether these controls are older than ``current`` (both stamped by the page)."""
        return self.seq is not None and current.seq is not None and self.seq < current.seq

    def changes(self) -> dict:
        """The field changes these controls make to their preset."""
        out = {k: getattr(self, k) for k in SLIDER_RANGES if getattr(self, k) is not None}
        if self.face_states is not None:
            out["face_states"] = self.face_states
        if self.model:
            out["model"] = self.model
        return out

    def config(self, detect_every: int = 1, **more) -> PipelineConfig:
        """The preset with these controls' changes, detecting faces every ``detect_every``-th frame
        (the server's ``live_detect_every``)."""
        return preset(self.preset, **{"detect_every": detect_every, **self.changes(), **more})


def _seq(v) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if np.isfinite(f) else None


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
    """Everything one connection owns: its pipeline, recorder, stats and last result.

    ``config``, ``classes`` and ``model_id`` are what the page shows; they stay
    (plain attributes) after :meth:`close` releases the pipeline.
    """

    def __init__(self, session_id: str, loader: ModelLoader, live_dir: Path | None,
                 recorder_meta: dict | None = None, controls: LiveControls | None = None, detect_every: int = 2):
        self.id = session_id
        self.detect_every = int(detect_every)  # the server's live_detect_every
        self.loader = loader
        self.live_dir = live_dir
        self.meta = dict(recorder_meta or {})
        self.lock = threading.RLock()
        self.controls = controls or LiveControls()
        want = self.controls.config().classification.model
        model, self.model_notice = loader.usable(want, preset(self.controls.preset).classification.model)
        self.pipeline: Pipeline | None = Pipeline(self.controls.config(self.detect_every, model=model),
                                                        models=loader.cache, meshes=loader.meshes)
        self._keep_view()
        self.stats = LiveStats()
        self.last_result: FrameResult | None = None
        self.version = 0  # bumps on every processed frame (the page skips unchanged ticks)
        self.t0 = self.last_seen = time.monotonic()
        self.closed = False
        self._times: deque[float] = deque(maxlen=60)
        self._prev_key: np.ndarray | None = None
        self._prev_out: np.ndarray | None = None
        self.recorders: list[LiveRecorder] = []  # one per class set (a model switch can change the classes)
        self.finished: list[OutputFiles] = []  # files of finished recorder parts
        self._new_recorder()

    def _keep_view(self) -> None:
        p = self.pipeline
        self.config, self.classes, self.model_id = p.config, tuple(p.classes), p.model_id

    # recorder ---------------------------------------------------------
    def _new_recorder(self) -> None:
        if self.live_dir is None:
            return
        part = len(self.recorders) + len(self.finished) + 1
        base = re.sub(r"[^A-Za-z0-9_-]", "_", self.id)[:100] or "live"
        sid = f"{base}-{int(time.time())}" + ("" if part == 1 else f"-part{part}")
        # model (id, source, repo, revision) and the full config go into the JSON header
        meta = {**self.meta, **timeline_meta(self.pipeline, source="webcam")}
        try:
            self.recorders.append(LiveRecorder(self.live_dir, sid, list(self.pipeline.classes), meta))
        except Exception as exc:  # recording is a convenience: never break the stream for it
            log.warning("live recorder unavailable: %s", exc)

    @property
    def recorder(self) -> LiveRecorder | None:
        return self.recorders[-1] if self.recorders else None

    def _rotate_recorder(self) -> None:
        rec = self.recorder
        if rec is not None:
            self.recorders.pop()
            try:
                self.finished.append(rec.close())
            except Exception as exc:
                log.warning("closing live recorder part failed: %s", exc)
        self._new_recorder()

    # settings ---------------------------------------------------------
    def apply(self, controls: LiveControls) -> None:
        """Bring the pipeline in line with the controls (cheap when nothing changed)."""
        want = controls.config().classification.model
        model, self.model_notice = self.loader.usable(want, self.pipeline.config.classification.model)
        cfg = controls.config(self.detect_every, model=model)
        if cfg != self.pipeline.config:
            self.pipeline.update_config(cfg)
        self.controls = controls

    # frames ------------------------------------------------------------
    def step(self, frame_bgr: np.ndarray, controls: LiveControls) -> np.ndarray:
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
            if controls.stale_against(self.controls):
                controls = self.controls  # an older change arrived after a newer one: keep the newer
            if controls != self.controls or self.model_notice:
                self.apply(controls)
            rgb = cv2.cvtColor(frame_bgr, cv2.COLOR_BGR2RGB)
            res = self.pipeline.process(rgb, now - self.t0)  # seconds since the stream started
            self._keep_view()
            rec = self.recorder
            if rec is not None and tuple(res.classes) != rec.classes:
                self._rotate_recorder()  # a model switch changed the class set: start a new file
                rec = self.recorder
            if rec is not None:
                try:
                    rec.add(res)
                except Exception as exc:
                    log.warning("live recorder failed: %s", exc)
            out = self._annotate(rgb, res, now, t0)
            self.last_result = res
            self.version += 1
            self._prev_key, self._prev_out = key.copy(), out
            return out

    def last_output(self) -> np.ndarray | None:
        """The last annotated frame returned (None before the first or once closed)."""
        with self.lock:
            return None if self.closed else self._prev_out

    def _annotate(self, rgb: np.ndarray, res: FrameResult, now: float, t0: float) -> np.ndarray:
        self._times.append(now)  # fps over a sliding window of ~2 s, latency smoothed
        while len(self._times) > 2 and now - self._times[0] > 2.0:
            self._times.popleft()
        st = self.stats
        if len(self._times) >= 2 and self._times[-1] > self._times[0]:
            st.fps = (len(self._times) - 1) / (self._times[-1] - self._times[0])
        st.frames += 1
        st.faces = len(res)
        status = status_text({"fps": st.fps, "latency_ms": st.latency_ms, "faces": len(res)})
        out = cv2.cvtColor(draw(rgb, res, bars=True, copy=False, status=status), cv2.COLOR_RGB2BGR)
        dt = (time.perf_counter() - t0) * 1000
        st.latency_ms = dt if st.frames == 1 else 0.8 * st.latency_ms + 0.2 * dt
        return out

    # what the page reads (from worker threads) -----------------------------
    def recent(self, seconds: float = 30.0):
        """(wide timeline rows of the last ``seconds``, their classes), or (None, classes)."""
        with self.lock:
            rec = self.recorder
            if rec is None:
                return None, list(self.classes)
            try:
                return rec.recent(seconds=seconds), list(rec.classes)
            except Exception as exc:
                log.warning("recent timeline failed: %s", exc)
                return None, list(self.classes)

    def snapshot_files(self) -> list[str]:
        """Timeline files recorded so far (all parts): CSV, JSON and summary."""
        with self.lock:
            parts = list(self.finished)
            if self.recorder is not None and not self.closed:
                parts.append(self.recorder.snapshot())
            return _paths(parts)

    def state(self) -> str:
        """"live" while frames arrive, "stopped" within :data:`STOPPED_AFTER_S` of the last one or once closed."""
        if self.closed or time.monotonic() - self.last_seen > STOPPED_AFTER_S:
            return "stopped"
        return "live"

    def info(self) -> dict:
        with self.lock:
            d = {"connection": self.id, "model": self.model_id, "detector": self.config.detection.detector,
                 "preset": self.controls.preset or DEFAULT_PRESET, **self.stats.to_dict(), "active": not self.closed,
                 "state": self.state()}
            if self.model_notice:
                d["notice"] = self.model_notice
            return d

    def close(self) -> list[str]:
        """Release the pipeline; finish the recorder; return the final timeline files."""
        with self.lock:
            if self.closed:
                return _paths(self.finished)
            self.closed = True
            for rec in self.recorders[-1:]:
                try:
                    self.finished.append(rec.close())  # final timeline CSV/JSON + summary JSON/CSV
                except Exception as exc:
                    log.warning("finishing the live recording failed: %s", exc)
            self.recorders = []
            try:
                self.pipeline.close()
            finally:
                self.pipeline = None  # config, classes, model_id and last_result stay for the page
                self._prev_key = self._prev_out = None
            return _paths(self.finished)


def _paths(parts: list[OutputFiles]) -> list[str]:
    """The existing files of recorder snapshots and finished parts."""
    return [str(p) for files in parts for p in files.paths()]
