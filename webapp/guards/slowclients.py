"""Slow clients are closed: uvicorn's HTTP/1.1 protocol with deadlines on a request's headers and body.

uvicorn times out only idle keep-alive connections; a client that sends its
headers a line every few seconds, or its body a byte every few seconds, keeps
a connection (and, for a body, a request task) open for as long as it likes.
:class:`GuardedH11Protocol` is uvicorn's own h11 protocol with a watchdog that
runs once a second per connection:

* headers: the request line and headers must be complete within
  ``http_header_timeout_s`` of the connection opening (or of the previous
  response ending, on a kept-alive connection);
* body: after ``http_body_grace_s``, the body must have arrived at
  ``http_body_min_bps`` or faster on average. Time while the server itself
  stopped reading (the app is not consuming the body) does not count.

A connection that misses a deadline gets ``408 Request Timeout`` (if no
response has started) and is closed; the app sees a disconnect.
:func:`install` makes uvicorn use it for ``http="auto"`` and ``"h11"``, which is
what ``gr.Blocks.launch`` asks for (it does not pass protocol options through).
"""
from __future__ import annotations

import logging

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from ..settings import Settings

log = logging.getLogger(__name__)

_TICK_S = 1.0
_408 = (b"HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain; charset=utf-8\r\n"
        b"connection: close\r\ncontent-length: 16\r\n\r\nRequest timeout\n")


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol plus header and body deadlines (see the module docstring)."""

    header_timeout_s = Settings.http_header_timeout_s
    body_grace_s = Settings.http_body_grace_s
    body_min_bps = Settings.http_body_min_bps

    def connection_made(self, transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._bytes_in = 0
        self._phase = None  # the client's h11 state last seen by the watchdog
        self._phase_t = self._phase_bytes = 0.0
        self._paused_s = 0.0
        self._watch = self.loop.call_later(_TICK_S, self._tick)
        self._enter(h11.IDLE)

    def data_received(self, data: bytes) -> None:
        self._bytes_in += len(data)
        super().data_received(data)

    def connection_lost(self, exc) -> None:
        watch = getattr(self, "_watch", None)
        if watch is not None:
            watch.cancel()
        super().connection_lost(exc)

    def _enter(self, phase) -> None:
        self._phase, self._phase_t, self._phase_bytes, self._paused_s = phase, self.loop.time(), self._bytes_in, 0.0

    def _tick(self) -> None:
        self._watch = None
        if self.transport.is_closing() or self.transport.get_protocol() is not self:  # closed or now a websocket
            return
        state = self.conn.their_state
        if state is not self._phase:
            self._enter(state)
        elapsed = self.loop.time() - self._phase_t
        if state is h11.IDLE and self.timeout_keep_alive_task is None and elapsed > self.header_timeout_s:
            return self._expire(f"headers not complete after {elapsed:.0f} s")
        if state is h11.SEND_BODY:
            if self.flow.read_paused:  # the app is not reading: not the client's fault
                self._paused_s += _TICK_S
            active = elapsed - self._paused_s
            got = self._bytes_in - self._phase_bytes
            if active > self.body_grace_s and got < self.body_min_bps * active:
                return self._expire(f"request body at {got / active:.0f} B/s after {active:.0f} s "
                                    f"(minimum {self.body_min_bps:.0f} B/s)")
        self._watch = self.loop.call_later(_TICK_S, self._tick)

    def _expire(self, why: str) -> None:
        client = f"{self.client[0]}:{self.client[1]}" if self.client else "client"
        log.warning("closing slow connection from %s: %s", client, why)
        if self.cycle is None or not self.cycle.response_started:
            self.transport.write(_408)
        if self.cycle is not None:
            self.cycle.keep_alive = False
        self.transport.close()


def install(settings: Settings) -> str:
    """Make uvicorn use a :class:`GuardedH11Protocol` with ``settings``' deadlines for ``http="auto"`` and
    ``"h11"`` (a subclass per set of deadlines, so two servers in one process keep theirs); its import path."""
    from common.compat import uvicorn_http_protocol

    values = (settings.http_header_timeout_s, settings.http_body_grace_s, settings.http_body_min_bps)
    name = "GuardedH11Protocol_" + "_".join(f"{v:g}".replace(".", "p") for v in values)
    if name not in globals():
        globals()[name] = type(name, (GuardedH11Protocol,), dict(zip(
            ("header_timeout_s", "body_grace_s", "body_min_bps"), values)))
    target = f"{__name__}:{name}"
    uvicorn_http_protocol(target)
    return target
