"""Who may open a live connection, and how long a connection may hold a place without streaming.

fastrtc accepts any offer while fewer than its ``concurrency_limit`` peer connections are open, counts
an accepted offer that never connects for 30 s, and one that connects but stops sending media for
ever.  One address could therefore hold every place with offers it never completes.  :class:`LiveGate`
(one per :class:`~webapp.server.Server`) adds, by client address (the fairness module's, behind the
Space's proxy its ``X-Forwarded-For``):

* **offers** (:meth:`LiveGate.offer`, called by :class:`webapp.guards.asgi.GuardMiddleware` before
  fastrtc sees an offer): at most ``streams_per_client`` connections of an address streaming at once
  (a connection streams while its frames arrive: one within :data:`STREAMING_WITHIN_S`), and at most
  ``pending_per_client`` accepted offers that have not yet sent a first frame.  Others get fastrtc's own
  ``concurrency_limit_reached`` refusal (the page shows "Too many concurrent connections. Please try again later!"),
  with the server's sentence in ``meta.message``;
* **half-open connections** (:meth:`LiveGate.sweep`, every :data:`SWEEP_S` on the server's event loop):
  an accepted offer that has not connected and sent a first frame within ``connect_s`` is closed and its
  place freed (:meth:`LiveGate.seen`: the pooled track reports each frame as it arrives, before the page's
  controls do); a connection with no frame for ``idle_s`` too, and, when fastrtc is full and an offer
  arrives, one with no frame for ``silent_s`` (as :class:`~webapp.live.registry.SessionRegistry` releases
  a silent stream when someone waits);
* **a second stream of one address** that got through as two pending offers: its first frame is
  answered by closing it with the busy sentence (:meth:`LiveGate.frame`);
* **an address's stopped streams**: an admitted offer closes the connections of its address that sent frames
  but none for :data:`STREAMING_WITHIN_S` (a frozen camera, a tab left open, or a peer trickling a frame now
  and then to hold places without counting as streaming); the address's new connection takes their place.

Connections that did not come through the middleware (the handler used on its own, in tests) are not
limited.
"""
from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import Counter
from dataclasses import dataclass

log = logging.getLogger(__name__)

#: A connection counts as streaming while its last frame is at most this old (frames arrive ~30 a second;
#: a closed tab whose connection fastrtc has not noticed yet stops counting after this).
STREAMING_WITHIN_S = 2.0
#: How often half-open and silent connections are looked for.
SWEEP_S = 0.5
#: A connection closed with a notice for its user stays open this long, so the notice reaches the page.
TELL_S = 1.0


@dataclass
class _Conn:
    address: str
    offered: float
    first_frame: float | None = None
    last_frame: float | None = None
    closing: bool = False
    checked: bool = False  # the one-stream-per-address check of its first analysed frame was made
    refusal: str | None = None  # why it is being closed (told on each frame until it is)


class LiveGate:
    """Per-address admission of live offers and expiry of connections that do not stream (module doc)."""

    def __init__(self, streams_per_client: int = 1, pending_per_client: int = 2, connect_s: float | None = 5.0,
                 silent_s: float | None = 5.0, idle_s: float | None = 30.0, clock=time.monotonic):
        self.streams_per_client = int(streams_per_client)
        self.pending_per_client = int(pending_per_client)
        self.connect_s, self.silent_s, self.idle_s = connect_s, silent_s, idle_s
        self.clock = clock
        self.conns: dict[str, _Conn] = {}
        self.refused: Counter = Counter()  # reason -> offers refused
        self.expired = 0  # half-open connections closed
        self.closed_silent = 0  # streaming connections closed for silence
        self.replaced = 0  # stopped streams closed because their address offered a new one
        self.webrtc = None  # the WebRTC component (attach)
        self.loop: asyncio.AbstractEventLoop | None = None
        self._timer = None
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, s) -> LiveGate:
        return cls(s.live_streams_per_client, s.live_pending_per_client, s.live_connect_s, s.live_silent_s,
                   s.live_idle_s)

    def attach(self, webrtc) -> None:
        """The WebRTC component whose connections this gate closes."""
        self.webrtc = webrtc

    # -- offers ----------------------------------------------------------------------------------------
    def busy_message(self, reason: str) -> str:
        if reason == "streams":
            n = self.streams_per_client
            head = ("Server busy: a live stream from your address is already running."
                    if n == 1 else f"Server busy: {n} live streams from your address are already running.")
            return f"{head} Stop it first, or try again later."
        return "Server busy: your address has live connections still starting. Please try again later."

    def check(self, address: str, webrtc_id: str | None = None) -> str | None:
        """Why an offer from ``address`` is refused now ("streams" or "pending"), None if it may go on."""
        now = self.clock()
        with self._lock:
            mine = [c for k, c in self.conns.items() if c.address == address and k != webrtc_id and not c.closing]
        streaming = sum(1 for c in mine if c.first_frame is not None and now - c.last_frame <= STREAMING_WITHIN_S)
        pending = sum(1 for c in mine if c.first_frame is None)
        if self.streams_per_client > 0 and streaming >= self.streams_per_client:
            return "streams"
        if self.pending_per_client > 0 and pending >= self.pending_per_client:
            return "pending"
        return None

    def offer(self, address: str, webrtc_id: str) -> str | None:
        """Admit an offer (kept as pending until its first frame), or the sentence it is refused with."""
        reason = self.check(address, webrtc_id)
        if reason is not None:
            self.refused[reason] += 1
            log.info("live offer from %s refused: %s", address, reason)
            return self.busy_message(reason)
        now = self.clock()
        with self._lock:
            if webrtc_id not in self.conns:
                self.conns[webrtc_id] = _Conn(address, now)
            stale = [k for k, c in self.conns.items() if c.address == address and k != webrtc_id and not c.closing
                     and c.first_frame is not None and now - c.last_frame > STREAMING_WITHIN_S
                     ] if self.streams_per_client > 0 else []
        for k in stale:  # the address's stopped streams give their places to its new one
            self.replaced += 1
            log.info("closing live connection %s: its address (%s) offers a new one and it sends no frames", k, address)
            self.close(k)
        self._start_sweeping()
        return None

    async def admit(self, address: str, webrtc_id: str) -> str | None:
        """:meth:`offer`, after waiting (at most :data:`STREAMING_WITHIN_S`) for the address's streaming connection
        to go, if that alone refuses the offer: a user who presses Stop then Start at once is let in although
        the server has not yet seen the stopped connection close (a busy server takes a moment), since a
        connection stops counting as streaming that long after its last frame anyway."""
        deadline = self.clock() + STREAMING_WITHIN_S
        while self.check(address, webrtc_id) == "streams" and self.clock() < deadline:
            await asyncio.sleep(0.2)
        return self.offer(address, webrtc_id)

    def settle(self, webrtc_id: str) -> None:
        """After fastrtc answered an admitted offer: forget it if fastrtc did not open a connection."""
        from common.compat import fastrtc_open_connections

        if self.webrtc is not None and webrtc_id not in fastrtc_open_connections(self.webrtc):
            self.forget(webrtc_id)

    def forget(self, webrtc_id: str) -> None:
        """The connection is gone (fastrtc's clean-up, or refused by fastrtc)."""
        with self._lock:
            self.conns.pop(webrtc_id, None)

    # -- frames ------------------------------------------------------------------------------------------
    def seen(self, webrtc_id: str) -> None:
        """A frame of the connection arrived (before the page's controls too): it is no longer half-open."""
        now = self.clock()
        with self._lock:
            c = self.conns.get(webrtc_id)
            if c is not None:
                if c.first_frame is None:
                    c.first_frame = now
                c.last_frame = now

    def frame(self, webrtc_id: str) -> str | None:
        """Called for every frame the handler analyses; on the first, the sentence to close the connection with
        if its address already streams ``streams_per_client`` others (two pending offers that both started),
        else None."""
        now = self.clock()
        with self._lock:
            c = self.conns.get(webrtc_id)
            if c is None:
                return None
            if c.refusal is not None:
                return c.refusal
            first = not c.checked
            c.checked = True
            if c.first_frame is None:
                c.first_frame = now
            c.last_frame = now
            others = [o for k, o in self.conns.items() if k != webrtc_id and o.address == c.address
                      and o.first_frame is not None and not o.closing and now - o.last_frame <= STREAMING_WITHIN_S]
        if first and self.streams_per_client > 0:
            if len(others) >= self.streams_per_client:
                self.refused["streams"] += 1
                with self._lock:
                    c.refusal = self.busy_message("streams")
                self.close(webrtc_id, after_s=TELL_S)  # the user's notice goes out first
                return c.refusal
        return None

    # -- expiry -------------------------------------------------------------------------------------------
    def due(self, now: float | None = None, silent_s: float | None = None) -> list[tuple[str, str]]:
        """(connection id, why) of the connections to close now: half-open past ``connect_s``, silent past
        ``idle_s`` (or ``silent_s`` when given)."""
        now = self.clock() if now is None else now
        out = []
        with self._lock:
            for k, c in self.conns.items():
                if c.closing:
                    continue
                if c.first_frame is None:
                    if self.connect_s is not None and now - c.offered > self.connect_s:
                        out.append((k, "half-open"))
                else:
                    limit = silent_s if silent_s is not None else self.idle_s
                    if limit is not None and now - c.last_frame > limit:
                        out.append((k, "silent"))
        return out

    def sweep(self, silent_s: float | None = None) -> int:
        """Close what :meth:`due` names; how many."""
        due = self.due(silent_s=silent_s)
        for k, why in due:
            if why == "half-open":
                self.expired += 1
                log.info("closing live connection %s: no first frame within %.1f s", k, self.connect_s)
            else:
                self.closed_silent += 1
                log.info("closing live connection %s: no frame for a while", k)
            self.close(k)
        return len(due)

    async def make_room(self) -> int:
        """An offer arrives while fastrtc has no free place: close the connections silent for ``silent_s``
        (awaited, so that fastrtc sees the freed places); how many."""
        from common.compat import fastrtc_close_connection, fastrtc_open_connections

        w = self.webrtc
        if w is None or self.silent_s is None:
            return 0
        if len(fastrtc_open_connections(w)) < int(getattr(w, "concurrency_limit", None) or 1 << 30):
            return 0
        due = [k for k, why in self.due(silent_s=self.silent_s) if why == "silent"]
        for k in due:
            self.closed_silent += 1
            log.info("closing live connection %s: no frame for %.0f s and an offer waits", k, self.silent_s)
            with self._lock:
                if k in self.conns:
                    self.conns[k].closing = True
        await asyncio.gather(*(fastrtc_close_connection(w, k) for k in due), return_exceptions=True)
        for k in due:
            self.forget(k)
        return len(due)

    def close(self, webrtc_id: str, after_s: float = 0.0) -> None:
        """Close a connection on the server's event loop (from any thread), ``after_s`` from now."""
        with self._lock:
            c = self.conns.get(webrtc_id)
            if c is not None:
                c.closing = True
        if self.webrtc is None or self.loop is None:
            return
        from common.compat import fastrtc_close_connection

        def run():
            task = asyncio.ensure_future(fastrtc_close_connection(self.webrtc, webrtc_id))
            task.add_done_callback(lambda t: self.forget(webrtc_id))

        self.loop.call_soon_threadsafe(self.loop.call_later, after_s, run)

    def _start_sweeping(self) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        self.loop = loop
        if self._timer is None:
            self._timer = loop.call_later(SWEEP_S, self._tick)

    def _tick(self) -> None:
        try:
            self.sweep()
        except Exception:  # pragma: no cover - the sweep must go on
            log.exception("live gate sweep failed")
        with self._lock:
            idle = not self.conns
        self._timer = None if idle else self.loop.call_later(SWEEP_S, self._tick)

    def status(self) -> dict:
        now = self.clock()
        with self._lock:
            conns = list(self.conns.values())
        return {"pending": sum(c.first_frame is None for c in conns),
                "streaming": sum(c.first_frame is not None and now - c.last_frame <= STREAMING_WITHIN_S for c in conns),
                "refused": dict(self.refused), "expired": self.expired, "closed_silent": self.closed_silent,
                "replaced": self.replaced}
