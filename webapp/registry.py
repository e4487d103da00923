"""All live connections: :class:`SessionRegistry` maps a WebRTC connection id to its
:class:`~webapp.session.LiveSession`, keeps ended sessions for downloads, limits how many
streams are analysed at once, and reaps idle sessions and old files.

The reaper is a thread started by :meth:`SessionRegistry.start_reaper` (when the server
starts, see :mod:`webapp.services`), never at import.
"""
from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

from export.live import cleanup_old

from .models import ModelLoader
from .session import LiveControls, LiveSession

log = logging.getLogger(__name__)


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
        self._reaper: threading.Thread | None = None
        if self.live_dir:
            self.live_dir.mkdir(parents=True, exist_ok=True)

    def _new(self, session_id: str, controls: LiveControls | None) -> LiveSession:
        return LiveSession(session_id, self.loader, self.live_dir, {"source": "live"}, controls)

    def get(self, session_id: str) -> LiveSession | None:
        with self._lock:
            s = self.active.get(session_id)
            if s is None and session_id in self.ended:
                s = self.ended[session_id][1]
            return s

    def get_or_create(self, session_id: str, controls: LiveControls | None = None) -> LiveSession:
        """The connection's session, a new one (no limit) if it has none."""
        with self._lock:
            s = self.active.get(session_id)
            if s is not None:
                return s
        s = self._new(session_id, controls)
        with self._lock:
            other = self.active.setdefault(session_id, s)
            if other is s:
                self.opened += 1
        if other is not s:  # lost a race: keep the first
            s.close()
        return other

    def admit(self, session_id: str, controls: LiveControls | None = None) -> LiveSession | None:
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
        s = self._new(session_id, controls)
        with self._lock:
            other = self.active.get(session_id)
            if other is None and not self._full_locked(session_id):  # else another took the last slot
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
        if self.live_dir is not None:
            try:
                cleanup_old(self.live_dir, self.keep_s)
            except Exception as exc:
                log.warning("cleanup of old live files failed: %s", exc)

    def start_reaper(self, every_s: float = 10.0) -> threading.Thread:
        """Start the reaper thread (once; later calls return the running thread)."""
        with self._lock:
            if self._reaper is not None:
                return self._reaper

            def loop():
                while True:
                    time.sleep(every_s)
                    try:
                        self.reap()
                    except Exception:  # pragma: no cover - never let the reaper die
                        log.exception("live reaper")

            self._reaper = threading.Thread(target=loop, daemon=True, name="live-reaper")
            self._reaper.start()
            return self._reaper

    def __len__(self) -> int:
        with self._lock:
            return len(self.active)
