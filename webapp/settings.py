"""The server's settings: one :class:`Settings` value, read from the environment once.

``Settings.from_env()`` is the only place the app reads its environment variables (documented
in ``docs/space.md``); everything else receives the value, through :class:`webapp.server.Server`.
Tests and embedders build their own: ``Settings(live_max_streams=2)`` or
``Settings.from_env({"LIVE_MAX_STREAMS": "2"})``.  The model and preset menus are derived from it.
"""
from __future__ import annotations

import dataclasses
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

from classifier import DEFAULT_MODEL, ModelSpec, builtin_specs
from pipeline.config import PRESETS

_TMP = Path(tempfile.gettempdir())
#: Variables the WebRTC set-up reads for TURN (webapp.live.rtc): passed on as they are.
RTC_ENV = ("TURN_URLS", "TURN_USERNAME", "TURN_CREDENTIAL", "TURN_TTL", "TURN_SERVER_TTL", "TURN_PROVIDER", "CLOUDFLARE_TURN_KEY_ID",
           "CLOUDFLARE_TURN_KEY_API_TOKEN", "HF_TOKEN")


@dataclass(frozen=True)
class Settings:
    """Every setting of a server; field ``x_y`` is the environment variable ``X_Y`` (see ``docs/space.md``)."""

    #: Simultaneous live streams (WebRTC connections) analysed.  4: the most that still get >= 15 fps each on
    #: 2 vCPU (``python -m benchmarks.live_load --peer-video pre``, docs/live-capacity.md).
    live_max_streams: int = 4
    #: Live streams run the face detector on every N-th frame (``detection.detect_every``); the frames in
    #: between keep the last boxes and track IDs and are classified on their own pixels (docs/live-capacity.md).
    live_detect_every: int = 2
    #: Threads that analyse live frames, shared by all streams (0: in fastrtc's event loop).
    live_workers: int = field(default_factory=lambda: os.cpu_count() or 2)
    #: Seconds after which a live stream is closed by the server (None: no limit).
    live_time_limit_s: float | None = None
    #: A connection's state is dropped if no frame arrived for this long (missed disconnects).
    live_idle_s: float = 30.0
    #: While a user waits for a live slot, a running stream with no frame for this long is released.
    live_silent_s: float = 5.0
    #: Timeline files of ended streams stay downloadable this long.
    live_keep_s: float = 1800.0
    #: Where live timelines are written.
    live_dir: Path = _TMP / "emotion-live"
    #: Connections accepted beyond live_max_streams only to tell their users the server is busy.
    live_busy_slots: int = 2
    #: Live streams one client address may run at once (0: no limit); more offers are refused as "busy".
    live_streams_per_client: int = 1
    #: Live offers one client address may have accepted but not yet streaming (ICE and a first frame) at once.
    live_pending_per_client: int = 2
    #: An accepted live offer that has not connected and sent a first frame within this many seconds is closed.
    live_connect_s: float | None = 5.0
    #: Live frames with more pixels than this are downscaled on arrival, before analysis and the answer
    #: (LIVE_MAX_PIXELS: a number or ``WxH``; default 1280x720; 0: no bound).
    live_max_pixels: int = 1280 * 720
    #: A live connection whose frames have more pixels than this is closed, with a notice (default 1920x1080;
    #: 0: none): decoding one 3840x2160 VP8 stream at 30 fps takes most of a core before any downscale.
    live_refuse_pixels: int = 1920 * 1080
    #: While the live workers are busy (two or more streams, whose frames kept them >= 80% occupied over the
    #: last 2 s), a stream that used more than its share of them (workers / streams running) and whose frames
    #: cost more than this many times the median other stream's has its next frames answered with its last
    #: annotated frame, unanalysed, until it is back under its share: an expensive stream (big frames, many
    #: faces) gets a lower frame rate, the others keep theirs (webapp.live.throttle; 0: never).
    live_throttle_factor: float = 2.0
    #: Where processed uploads are written.
    output_dir: Path = _TMP / "emotion-out"
    #: Results of uploaded videos and Gradio's file cache are deleted after this many seconds.
    output_keep_s: float = 3600.0
    #: Uploaded videos are processed up to this many seconds (None: whole video).
    video_max_seconds: float | None = 600.0
    #: Uploaded videos are analysed up to this many decoded frames (None: video_max_seconds x 60).
    video_max_frames: int | None = None
    #: Wall-clock seconds one uploaded video may take (None: no limit).
    video_max_process_s: float | None = 300.0
    #: Videos whose frames have more pixels than this are refused from their header (4096x2160).
    video_max_pixels: int = 4096 * 2160
    #: Images with more pixels than this are refused from their header, before decoding.
    image_max_pixels: int = 50_000_000
    #: Upload size limit passed to Gradio (MB).
    max_upload_mb: int = 200
    #: Requests waiting in the Gradio queue (all events together).
    queue_max_size: int = 16
    #: Queued requests one client address may send at once (a burst), and how many more per second.
    queue_burst_per_client: float = 6.0
    queue_rate_per_client: float = 2.0
    #: Videos one client may have queued or running at once (0: no limit).
    videos_per_client: int = 1
    #: Image and video analyses run at once (separate slots).
    image_concurrency: int = 2
    video_concurrency: int = 2
    #: Loaded emotion models kept in memory (least recently used are dropped).
    emotion_model_cache: int = 4
    #: Seconds to wait for the Hugging Face Hub before a model download gives up.
    emotion_hub_timeout: float = 10.0
    #: Upload bytes one client address may send at once (MB), and how many more per second.
    upload_burst_mb_per_client: float = 400.0
    upload_mb_per_s_per_client: float = 0.5
    #: Slow clients: headers within this many seconds; bodies at this rate after this grace.
    http_header_timeout_s: float = 10.0
    http_body_grace_s: float = 10.0
    http_body_min_bps: float = 1024.0
    #: Uploads that no analysis opens within this many seconds are deleted (None: only the quota and age).
    upload_unclaimed_s: float | None = 300.0
    #: The upload/output caches, processed videos and live timelines together stay under this many MB.
    disk_quota_mb: float | None = 4096.0
    #: New uploads are refused ("server is busy") while the disk has less than this many MB free.
    min_free_mb: float = 512.0
    #: How often the retention sweeper runs (seconds).
    disk_sweep_s: float = 30.0
    #: The model a page opens with (a spec id, or a spec .json path the operator chose).
    emotion_model: str = ""
    #: A folder of spec .json files the operator offers besides the built-in ones.
    emotion_models_dir: str = ""
    #: Trust the proxy's X-Forwarded-For (TRUST_PROXY=1, or on a Hugging Face Space, where SPACE_ID is set).
    trust_proxy: bool = False
    #: The user set MALLOC_ARENA_MAX themselves (then glibc's choice is left alone).
    malloc_arena_max_set: bool = False
    #: The TURN variables (RTC_ENV) as found, for the WebRTC set-up.
    rtc_env: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "Settings":
        """The settings the environment ``env`` (default ``os.environ``) gives; unset variables keep defaults."""
        env = os.environ if env is None else env
        d = cls()

        def raw(name):
            return str(env.get(name, "")).strip()

        def num(name, default, kind=float, optional=False, nonzero=False):
            v = raw(name)
            if not v:
                return default
            if optional and v.lower() in ("none", "off", "inf"):
                return None
            try:
                out = kind(float(v)) if kind is int else kind(v)
            except ValueError:
                raise ValueError(f"{name} must be a number, not {v!r}") from None
            return (out or default) if nonzero else out

        changes = {}
        for f in dataclasses.fields(cls):
            name, default = f.name.upper(), getattr(d, f.name)
            if f.name in ("live_dir", "output_dir"):
                changes[f.name] = Path(raw(name)) if raw(name) else default
            elif f.name in ("emotion_model", "emotion_models_dir"):
                changes[f.name] = raw(name)
            elif f.name in ("live_time_limit_s",):
                changes[f.name] = num("LIVE_TIME_LIMIT", default, optional=True)
            elif f.name in ("video_max_frames",):
                changes[f.name] = num(name, default, int, optional=True)
            elif f.name in ("live_idle_s", "live_silent_s", "live_keep_s", "live_connect_s", "video_max_seconds",
                            "video_max_process_s", "upload_unclaimed_s", "disk_quota_mb"):
                changes[f.name] = num(name, default, optional=True)
            elif f.name in ("output_keep_s", "http_header_timeout_s", "http_body_grace_s", "http_body_min_bps",
                            "disk_sweep_s", "queue_burst_per_client", "queue_rate_per_client",
                            "upload_burst_mb_per_client", "upload_mb_per_s_per_client", "emotion_hub_timeout"):
                changes[f.name] = num(name, default, optional=True, nonzero=True) or default
            elif f.name in ("live_max_pixels", "live_refuse_pixels"):
                v = raw(name).lower()
                if "x" in v:
                    try:
                        w, h = (int(p) for p in v.split("x"))
                    except ValueError:
                        raise ValueError(f"{name} must be a number or WxH, not {v!r}") from None
                    changes[f.name] = w * h
                else:
                    changes[f.name] = num(name, default, int)
            elif f.name == "live_throttle_factor":
                changes[f.name] = max(0.0, num(name, default))
            elif f.name == "min_free_mb":
                changes[f.name] = num(name, default, optional=True, nonzero=True) or 0.0
            elif f.name == "trust_proxy":
                changes[f.name] = raw("TRUST_PROXY") == "1" or bool(raw("SPACE_ID"))
            elif f.name == "malloc_arena_max_set":
                changes[f.name] = bool(raw("MALLOC_ARENA_MAX"))
            elif f.name == "rtc_env":
                changes[f.name] = {k: env[k] for k in RTC_ENV if env.get(k)}
            elif isinstance(default, int) and not isinstance(default, bool):
                changes[f.name] = num(name, default, int)
        changes["live_detect_every"] = min(10, max(1, changes["live_detect_every"]))
        return dataclasses.replace(d, **changes)

    def replace(self, **changes) -> "Settings":
        return dataclasses.replace(self, **changes)

    # -- menus derived from the settings ----------------------------------------------------------
    def offered_models(self) -> dict[str, tuple[ModelSpec, str]]:
        """The models a client may choose, by id: (spec, what the pipeline is given).

        The built-in specs, the spec files in ``emotion_models_dir`` and ``emotion_model`` when it is a
        spec path, all chosen by the operator.  Clients name an id, never a path.
        """
        out = {sid: (spec, sid) for sid, spec in builtin_specs().items()}
        paths = sorted(Path(self.emotion_models_dir).glob("*.json")) if self.emotion_models_dir else []
        if self.emotion_model.endswith(".json"):
            paths.append(Path(self.emotion_model))
        for p in paths:
            spec = ModelSpec.from_json(p)
            out.setdefault(spec.id, (spec, str(p)))
        return out

    def model_choices(self) -> list[tuple[str, str]]:
        """(label, spec id) pairs for the model dropdowns, the default first (the label is the id; the menu's
        ``info`` line, :meth:`model_about`, says the version, test accuracy and where the file comes from)."""
        out = [(sid, sid) for sid in self.offered_models()]  # the line under the menu says the rest
        out.sort(key=lambda c: (c[1] != DEFAULT_MODEL, c[1]))
        return out

    def model_about(self, sid: str) -> str:
        """The menus' line on an offered model (``ModelSpec.about``); "" for an id not offered."""
        found = self.offered_models().get(sid)
        return found[0].about() if found else ""

    @property
    def default_ui_model(self) -> str:
        """The model selected when a page opens (a spec id)."""
        own = self.emotion_model
        return ModelSpec.from_json(own).id if own.endswith(".json") else (own or DEFAULT_MODEL)

    def chart_classes(self) -> list[str]:
        """Every class any offered model has, in first-seen order (the chart's "one emotion" choices)."""
        out: list[str] = []
        for spec, _ in self.offered_models().values():
            out += [c for c in spec.labels if c not in out]
        return out


def preset_choices() -> list[tuple[str, str]]:
    """(title, name) pairs for the preset menus, from :data:`pipeline.config.PRESETS`."""
    return [(p.title, p.name) for p in PRESETS.values()]
