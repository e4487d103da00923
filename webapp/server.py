"""The application object: one :class:`Server` owns everything a running app has.

``Server(settings)`` builds, from one :class:`~webapp.settings.Settings` value and nothing else, the
model loader, the live session registry, the live frame handler and its worker pool, the fairness
buckets, the disk guard, the image/video analysis service (with its detector pool) and the one
retention sweeper.  Making one starts no thread and loads no model; :meth:`Server.start` starts the
background work, :meth:`Server.launch` serves the page::

    server = Server()                      # Settings.from_env(): the environment, read once
    demo = server.build_demo()             # the gr.Blocks (what `gradio app.py` reloads)
    server.launch()                        # start() + Gradio's server with this server's limits

Two servers in one process share no state (tests build their own with their own settings); the
only process-wide things are the changes to third-party internals in :mod:`common.compat`.
"""
from __future__ import annotations

import logging
import threading
from pathlib import Path

from classifier.hub import ClassifierCache

from .guards.disk import DiskGuard
from .guards.fairness import Fairness
from .guards.retention import Retention
from .live.gate import LiveGate
from .live.handler import LiveHandler
from .live.pool import LivePool
from .live.throttle import Throttle
from .live.registry import SessionRegistry
from .media import Media
from .models import ModelLoader
from .settings import Settings

log = logging.getLogger(__name__)


class Server:
    """One app: its settings and every object that holds state (see the module doc)."""

    def __init__(self, settings: Settings | None = None, *, live_dir: Path | None = None,
                 output_dir: Path | None = None):
        s = settings or Settings.from_env()
        if live_dir is not None or output_dir is not None:
            s = s.replace(live_dir=Path(live_dir or s.live_dir), output_dir=Path(output_dir or s.output_dir))
        self.settings = s
        self.output_dir = Path(s.output_dir)
        self.loader = ModelLoader(cache=ClassifierCache(s.emotion_model_cache, s.emotion_hub_timeout))
        self.registry = SessionRegistry(self.loader, Path(s.live_dir), idle_s=s.live_idle_s, silent_s=s.live_silent_s,
                                        keep_s=s.live_keep_s, max_active=s.live_max_streams,
                                        session_options={"detect_every": s.live_detect_every})
        self.fairness = Fairness(s)
        self.disk = DiskGuard.from_settings(s)
        self.media = Media(s, self.disk, self.output_dir, models=self.loader.cache, meshes=self.loader.meshes)
        self._pool: LivePool | None = None
        #: Live offers by client address, half-open and silent connections closed (webapp.live.gate).
        self.gate = LiveGate.from_settings(s)
        self.handler = LiveHandler(self.registry, offered=self.media.offered, gate=self.gate,
                                   max_pixels=s.live_max_pixels, refuse_pixels=s.live_refuse_pixels,
                                   throttle=Throttle(s.live_throttle_factor))
        self.retention = Retention(s, self.registry, self.disk, self.output_dir, cache_dir=_gradio_cache_dir,
                                   trim=trim_malloc)
        self.demo = None
        self._started = False
        self._lock = threading.Lock()

    # -- the live worker pool (threads start with the first stream's frame) ------------------------
    @property
    def pool(self) -> LivePool:
        with self._lock:
            if self._pool is None:
                self._pool = LivePool(self.settings.live_workers)
                self.handler.pool = self._pool
            return self._pool

    # -- the page ------------------------------------------------------------------------------------
    def build_demo(self):
        """This server's ``gr.Blocks`` (built once); starts nothing."""
        from .ui.page import build_page

        if self.demo is None:
            self.pool  # noqa: B018 - the handler runs on this server's workers
            self.demo = build_page(self)
        return self.demo

    # -- running --------------------------------------------------------------------------------------
    def start(self) -> list[threading.Thread]:
        """Start the background work (idempotent): the retention sweeper, watching the upload cache, the
        outputs and the live timelines; glibc's malloc arenas capped first."""
        with self._lock:
            if not self._started:
                self._started = True
                if not self.settings.malloc_arena_max_set:
                    limit_malloc_arenas()
                self.output_dir.mkdir(parents=True, exist_ok=True)
                cache = _gradio_cache_dir()
                self.disk.watch(*(d for d in (cache, self.output_dir, self.registry.live_dir) if d is not None))
                self.disk.free_path = self.output_dir
        return [self.retention.start()]

    def launch(self, **kwargs):
        """Serve the page: :meth:`start`, then Gradio's server with this server's queue, upload limit, folders
        and guards (slow clients cut off, no ``file=<URL>`` redirect, no traceback to clients, fairness)."""
        from starlette.middleware import Middleware

        from common.compat import check_versions

        from .guards import slowclients
        from .guards.asgi import GuardMiddleware

        check_versions()  # the patches were written for exact versions: refuse others, clearly
        demo = self.build_demo()
        self.start()
        slowclients.install(self.settings)
        s = self.settings
        app_kwargs = dict(kwargs.pop("app_kwargs", None) or {})
        app_kwargs["middleware"] = [*app_kwargs.get("middleware", ()), Middleware(GuardMiddleware, server=self)]
        return demo.queue(default_concurrency_limit=2, max_size=s.queue_max_size).launch(
            max_file_size=f"{s.max_upload_mb}mb",
            allowed_paths=[str(self.registry.live_dir), str(self.output_dir)],
            app_kwargs=app_kwargs,
            **kwargs,
        )

    def close(self) -> None:
        """Stop the sweeper and the worker threads, free the pooled detectors (for tests and embedders)."""
        self.retention.stop()
        self.media.close()
        if self._pool is not None:
            self._pool.close()
        if self.demo is not None:
            try:
                self.demo.close()
            except Exception:  # pragma: no cover
                pass


def _gradio_cache_dir() -> Path | None:
    """Gradio's upload and returned-file cache (GRADIO_TEMP_DIR), read by Gradio itself."""
    try:
        from gradio.utils import get_upload_folder

        return Path(get_upload_folder())
    except Exception:  # pragma: no cover
        return None


def _glibc():
    """glibc, for its malloc controls; None elsewhere (macOS, musl): nothing to do there."""
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        return libc if hasattr(libc, "malloc_trim") and hasattr(libc, "mallopt") else None
    except OSError:
        return None


def trim_malloc() -> bool:
    """Hand free heap pages back to the system (glibc ``malloc_trim(0)``; a no-op elsewhere).

    Freed frame and image buffers stay in malloc's arenas: RSS rose for the first ~3 minutes of a
    mixed load before it levelled off.  Trimming every DISK_SWEEP_S (30 s) costs a few ms.
    """
    libc = _glibc()
    return bool(libc.malloc_trim(0)) if libc is not None else False


def limit_malloc_arenas(default: int = 2) -> bool:
    """Cap glibc's malloc arenas (``MALLOC_ARENA_MAX``, default 2) before the server's threads start.

    glibc gives each thread that allocates its own arena (up to 8 per core); the server's many
    request threads each keep freed image buffers in theirs, and RSS crept up under load
    (29 MB/min over a 10-minute mixed load; 9.8 MB/min in a 4-minute run with 2 arenas, see
    docs/reliability.md).  The server does not call it when the user set ``MALLOC_ARENA_MAX``
    (``Settings.malloc_arena_max_set``): that choice is left to glibc.
    """
    libc = _glibc()
    return bool(libc.mallopt(-8, int(default))) if libc is not None else False  # M_ARENA_MAX
