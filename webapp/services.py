"""The server-side objects the pages share, and the background work of a running server.

:class:`Services` builds the model loader, the live session registry and the
fastrtc frame handler; making one starts no thread and loads no model.
:meth:`Services.start_background` starts the two housekeeping threads (the
live reaper and the output janitor) when the server starts.
"""
from __future__ import annotations

import logging
import os
import threading
import time
from pathlib import Path

from . import settings as S
from .diskguard import GUARD
from .media import cleanup_outputs
from .models import ModelLoader
from .registry import SessionRegistry
from .stream import LiveHandler

log = logging.getLogger(__name__)


class Services:
    """Model loader, live sessions and the live frame handler of one app (no thread, no model)."""

    def __init__(self, live_dir: Path | None = None, output_dir: Path | None = None):
        self.output_dir = Path(output_dir or S.OUTPUT_DIR)
        self.loader = ModelLoader()
        self.registry = SessionRegistry(self.loader, Path(live_dir or S.LIVE_DIR), idle_s=S.LIVE_IDLE_S,
                                        silent_s=S.LIVE_SILENT_S,
                                        keep_s=S.LIVE_KEEP_S, max_active=S.LIVE_MAX_STREAMS)
        self.handler = LiveHandler(self.registry)
        self._janitor: threading.Thread | None = None
        self._sweeper: threading.Thread | None = None
        self._lock = threading.Lock()

    def start_background(self) -> list[threading.Thread]:
        """Start the live reaper, the output janitor and the disk guard's sweeper (idempotent)."""
        limit_malloc_arenas()
        with self._lock:
            if self._janitor is None:
                self.output_dir.mkdir(parents=True, exist_ok=True)
                every_s = min(300.0, S.OUTPUT_KEEP_S / 2)
                self._janitor = threading.Thread(target=self._janitor_loop, args=(every_s,), daemon=True,
                                                 name="output-janitor")
                self._janitor.start()
                from gradio.utils import get_upload_folder

                GUARD.watch(get_upload_folder(), self.output_dir, self.registry.live_dir)
                GUARD.free_path = self.output_dir
                self._sweeper = threading.Thread(target=self._sweeper_loop, daemon=True, name="disk-guard")
                self._sweeper.start()
        return [self.registry.start_reaper(), self._janitor, self._sweeper]

    def _sweeper_loop(self) -> None:
        """Unclaimed uploads out after UPLOAD_UNCLAIMED_S, the oldest files out over DISK_QUOTA_MB,
        and the heap's free pages back to the system (:func:`trim_malloc`)."""
        while True:
            try:
                GUARD.sweep()
            except Exception:  # pragma: no cover - never let the sweeper die
                log.exception("disk guard sweep")
            trim_malloc()
            time.sleep(S.DISK_SWEEP_S)

    def _janitor_loop(self, every_s: float) -> None:
        """Delete processed-upload folders older than OUTPUT_KEEP_S, even when no video is processed."""
        while True:
            try:
                cleanup_outputs(self.output_dir, S.OUTPUT_KEEP_S)
            except Exception:  # pragma: no cover - never let the janitor die
                log.exception("output cleanup")
            time.sleep(every_s)


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
    README "Reliability").  An explicit ``MALLOC_ARENA_MAX`` in the environment is left to glibc.
    """
    if os.environ.get("MALLOC_ARENA_MAX"):
        return False
    libc = _glibc()
    return bool(libc.mallopt(-8, int(default))) if libc is not None else False  # M_ARENA_MAX
