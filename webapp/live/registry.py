"""All live connections: :class:`SessionRegistry` maps a WebRTC connection id to its
:class:`~webapp.live.session.LiveSession`, keeps ended sessions for downloads, limits how many
streams are analysed at once, and reaps idle sessions and old files.

It is the one place that knows whether the server is busy: :meth:`SessionRegistry.status` says
for a connection whether it runs, waits (and its place in line) or is unknown, with the words a
user is shown; the frame handler, the page's table and the page's toasts all read it.

:meth:`SessionRegistry.reap` is run by the server's retention sweeper (:mod:`webapp.guards.retention`).
"""
from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

from export.live import cleanup_old

from ..models import ModelLoader
from .session import LiveControls, LiveSession

log = logging.getLogger(__name__)


class SessionRegistry:
    """Live sessions by WebRTC connection id, plus recently ended ones (for downloads)."""

    def __init__(self, loader: ModelLoader | None = None, live_dir: Path | None = None, idle_s: float = 30.0,
                 keep_s: float = 1800.0, max_active: int | None = None, gone_s: float = 3.0, silent_s: float = 5.0,
                 session_options: dict | None = None):
        self.loader = loader or ModelLoader()
        #: What every new session is given besides its id (the offered models, the live detection cadence).
        self.session_options = dict(session_options or {})
        self.max_active = max_active  # analysed streams at once (None: no limit); see admit()
        #: while someone waits for a slot, a running stream with no frame for this long is released (its
        #: connection is gone without a clean close, e.g. a closed tab, which fastrtc notices only ~30 s later)
        self.silent_s = silent_s
        self.waiting: dict[str, float] = {}  # connections turned away as busy -> last frame (monotonic), in line order
        self.gone_s = gone_s  # a waiting connection with no frame for this long has left the line
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

    def _new(self, session_id: str, controls: LiveControls | None) -> LiveSession:
        return LiveSession(session_id, self.loader, self.live_dir, {"source": "live"}, controls,
                           **self.session_options)

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
        """The connection's session, a new one if there is room, or None when ``max_active`` streams run or the
        connection's stream has ended (:meth:`has_ended`: a frame still in flight when it was released must not
        open a second recording under the same id, which would hide the first from the page's download).

        A connection turned away is remembered in :attr:`waiting`, in the order it first came
        (its place in line, :meth:`position`); when streams end, the first in line are admitted on
        their next frame (so the user's stream starts by itself), never one that came later.  While
        all slots are taken, a running stream that sent no frame for ``silent_s`` is released (its
        timeline kept, as for any ended stream): a departed user does not hold a slot for the reaper's
        ``idle_s``.
        """
        with self._lock:
            s = self.active.get(session_id)
            if s is not None:
                return s
            if session_id in self.ended:  # a late frame of an ended stream: no second recording under its id
                return None
            silent = self._silent_locked()
        for k in silent:
            log.info("releasing live session %s: no frame for %.0f s and a stream is waiting", k, self.silent_s)
            self.release(k)
        with self._lock:
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

    def _silent_locked(self) -> list[str]:
        """Running streams with no frame for ``silent_s``, when every slot is taken (else none)."""
        if self.max_active is None or len(self.active) < self.max_active or self.silent_s is None:
            return []
        now = time.monotonic()
        return [k for k, s in self.active.items() if now - s.last_seen > self.silent_s]

    def _full_locked(self, session_id: str) -> bool:
        if self.max_active is None:
            return False
        now = time.monotonic()
        for k in [k for k, t in self.waiting.items() if now - t > self.gone_s and k != session_id]:
            del self.waiting[k]  # no frame for a while: that user left the line
        room = self.max_active - len(self.active)
        line = list(self.waiting)
        place = line.index(session_id) if session_id in self.waiting else len(line)
        if place < room:  # everyone before it in line has been admitted or left
            return False
        if session_id not in self.waiting:
            self.refused += 1
        self.waiting[session_id] = now  # keeps its place (dicts keep the first insertion's order)
        return True

    def has_ended(self, session_id: str | None) -> bool:
        """Whether the connection's stream has ended (its recording closed, kept for downloads)."""
        with self._lock:
            return bool(session_id) and session_id in self.ended and session_id not in self.active

    def is_waiting(self, session_id: str | None) -> bool:
        with self._lock:
            return bool(session_id) and session_id in self.waiting

    def position(self, session_id: str | None) -> int | None:
        """A waiting connection's place in line (1: next to start), None if it is not waiting."""
        with self._lock:
            line = list(self.waiting)
            return line.index(session_id) + 1 if session_id in self.waiting else None

    def status(self, session_id: str | None) -> dict:
        """Where a connection stands: ``{"state": "running" | "waiting" | "ended" | "none", "busy": bool,
        "place": int | None, "message": str}`` (``message``: what a waiting user is told, else "")."""
        with self._lock:
            running = bool(session_id) and session_id in self.active
            ended = bool(session_id) and session_id in self.ended
        place = self.position(session_id)
        if place is not None and not running:
            return {"state": "waiting", "busy": True, "place": place, "message": self.busy_message(session_id)}
        state = "running" if running else "ended" if ended else "none"
        return {"state": state, "busy": False, "place": None, "message": ""}

    def busy_message(self, session_id: str | None = None) -> str:
        """What a user turned away is told: the streams running, their place in line, what happens next."""
        with self._lock:
            n = len(self.active)
        place = self.position(session_id)
        head = ("Server busy: all {n} live streams are in use." if n > 1 else
                "Server busy: the only live stream slot is taken." if n == 1 else "Server busy: no live stream can run now.")
        head = head.format(n=n)
        if place is None:
            return f"{head} Please try again later."
        if place == 1:
            where = "You are next in line."
        else:
            where = f"You are number {place} in line ({place - 1} ahead of you)."
        return f"{head} {where} Your stream starts by itself when one ends, or try again later."

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

    def reap(self) -> int:
        """Release idle sessions and forget ended ones older than ``keep_s`` (and their files); how many were
        released."""
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
        return len(idle)

    def __len__(self) -> int:
        with self._lock:
            return len(self.active)
