"""fastrtc glue for the Live tab: the frame handler, the "server busy" frame, the handler object
fastrtc runs (:func:`stable_handler`) and the clean-up hook (:func:`hook_cleanup`); the changes to
fastrtc's internals these need are in :mod:`common.compat`.

fastrtc calls :class:`LiveHandler` for every video frame of every connection (in its
asyncio loop, one frame at a time per connection) with the frame and the current values
of the page's controls.  The connection id comes from
``fastrtc.get_current_context().webrtc_id``; the :class:`~webapp.live.registry.SessionRegistry`
maps it to the connection's own session, so two users never share state.
"""
from __future__ import annotations

import logging
import time
from collections import deque
from typing import Callable

import cv2
import numpy as np

from .registry import SessionRegistry
from .session import LiveControls

log = logging.getLogger(__name__)


#: What a throttled stream's user is told, once (webapp.live.throttle).
THROTTLED = ("This server is busy and your video costs it more than its share: fewer of your frames are analysed "
             "(a lower frame rate). A lower camera resolution helps.")


class _Skip:
    """What the handler returns for a frame it does not answer (a throttled stream's, on the worker pool)."""

    def __repr__(self):
        return "SKIP"


SKIP = _Skip()


class LiveHandler:
    """``fn(frame_bgr, model, preset, half_life_s, min_face, min_score) -> frame_bgr`` for fastrtc."""

    def __init__(self, registry: SessionRegistry, session_id: Callable[[], str] | None = None,
                 warn: Callable[[str], None] | None = None, offered: dict | None = None, pool=None,
                 gate=None, max_pixels: int | None = None, refuse_pixels: int | None = None, throttle=None):
        self.registry = registry
        #: The server's fair shares of the live workers (webapp.live.throttle.Throttle; None: no throttling).
        self.throttle = throttle
        #: The server's live gate (webapp.live.gate.LiveGate): told of every frame; may close the connection.
        self.gate = gate
        #: Frames with more pixels are downscaled on arrival (before analysis and the answer); None: no bound.
        self.max_pixels = max_pixels
        #: Frames with more pixels close their connection (through the gate), with a notice; None: never.
        self.refuse_pixels = refuse_pixels
        self.offered = offered  # the models a client may name (Settings.offered_models()); None: built-in
        #: The server's live worker pool (webapp.live.pool.LivePool; None: frames run in fastrtc's loop).
        self.pool = pool
        self._session_id = session_id or _fastrtc_connection_id
        self._warn = warn or (lambda message: _fastrtc_warning(message, pool))
        self._warned: deque[str] = deque(maxlen=256)  # connections already told "busy" (toast once)
        self._told_size: deque[str] = deque(maxlen=256)  # connections already told their frames are downscaled
        self._told_throttled: deque[str] = deque(maxlen=256)  # connections already told they are throttled
        self.calls = 0

    def __call__(self, frame, *controls):
        self.calls += 1
        if frame is None:
            return frame
        t0 = time.perf_counter()
        try:
            ctl = LiveControls.from_inputs(*controls, offered=self.offered)
            sid = self._session_id()
            h, w = frame.shape[:2]
            if self.refuse_pixels and h * w > self.refuse_pixels:
                return self._refuse_size(frame, sid, w, h)
            frame = self._bounded(frame, sid)
            if self.gate is not None:
                refusal = self.gate.frame(sid)
                if refusal is not None:  # a second stream of one address: closed by the gate
                    return self._tell(frame, sid, refusal)
            t_admit = time.perf_counter()
            sess = self.registry.admit(sid, ctl)
            t_admit = time.perf_counter() - t_admit  # a new session's pipeline is built here: not the stream's cost
            if sess is None:
                if self.registry.has_ended(sid):  # a late frame of a released stream: nothing to analyse
                    return frame
                return self._busy(frame, sid)
            if self.throttle is not None and self.throttle.over_share(sid, self._workers()):
                out = sess.last_output()
                if out is not None:  # no analysis: this stream's frame rate drops
                    self._tell_throttled(sid)
                    # on the pool the frame is not answered at all (nor encoded); else the last annotated one again
                    return SKIP if self.pool is not None and self.pool.workers else out
            out = sess.step(frame, ctl)
            if self.throttle is not None:
                self.throttle.spent(sid, time.perf_counter() - t0 - t_admit)
            return out
        except Exception as exc:  # never kill the stream: show the problem on the frame
            log.exception("live frame failed")
            try:
                out = np.ascontiguousarray(frame).copy()
                cv2.putText(out, f"error: {str(exc)[:60]}", (8, 24), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 0, 255), 2)
                return out
            except Exception:
                return frame

    def _bounded(self, frame: np.ndarray, sid: str) -> np.ndarray:
        """``frame`` downscaled (keeping its shape) to at most ``max_pixels``; the user told once."""
        h, w = frame.shape[:2]
        nw, nh = bounded_size(w, h, self.max_pixels)
        if (nw, nh) == (w, h):
            return frame
        if sid not in self._told_size:
            self._told_size.append(sid)
            log.info("live connection %s sends %dx%d frames: analysed at %dx%d", sid, w, h, nw, nh)
            try:
                self._warn(f"Your camera sends {w}x{h}; analysed at {nw}x{nh}.")
            except Exception:  # pragma: no cover - a toast only
                pass
        return cv2.resize(frame, (nw, nh), interpolation=cv2.INTER_AREA)

    def _workers(self) -> int:
        pool = self.pool
        return pool.workers if pool is not None and pool.workers else 1

    def _tell_throttled(self, sid: str) -> None:
        if sid in self._told_throttled:
            return
        self._told_throttled.append(sid)
        log.info("live connection %s throttled: its frames cost more than its share of the busy workers", sid)
        try:
            self._warn(THROTTLED)
        except Exception:  # pragma: no cover - a toast only
            pass

    def _refuse_size(self, frame: np.ndarray, sid: str, w: int, h: int) -> np.ndarray:
        """Close a connection whose frames are too big to decode (the gate closes it), telling the user why."""
        mw, mh = bounded_size(w, h, self.refuse_pixels)
        if self.gate is not None and sid not in self._warned:
            from .gate import TELL_S

            log.info("closing live connection %s: it sends %dx%d frames", sid, w, h)
            self.gate.close(sid, after_s=TELL_S)  # the notice goes out first
        small = cv2.resize(frame, bounded_size(w, h, self.max_pixels or self.refuse_pixels), interpolation=cv2.INTER_AREA)
        return self._tell(small, sid, f"Your camera sends {w}x{h}: this server takes at most about {mw}x{mh}. "
                                      "Please choose a lower camera resolution.")

    def _busy(self, frame: np.ndarray, sid: str) -> np.ndarray:
        """The user's own frame, dimmed, with the "server busy" notice and their place in line (~1 ms)."""
        msg = self.registry.status(sid)["message"] or self.registry.busy_message(sid)
        return self._tell(frame, sid, msg)

    def _tell(self, frame: np.ndarray, sid: str, msg: str) -> np.ndarray:
        """``frame`` dimmed with ``msg`` on it; ``msg`` also as a toast, once per connection."""
        if sid not in self._warned:
            self._warned.append(sid)
            try:
                self._warn(msg)
            except Exception:  # pragma: no cover - the frame still carries the message
                pass
        return busy_frame(frame, msg)


def bounded_size(w: int, h: int, max_pixels: int | None) -> tuple[int, int]:
    """(width, height) of a ``w`` x ``h`` frame scaled down, keeping its shape, to at most ``max_pixels``
    (even sides, as the answer's VP8 wants); ``(w, h)`` when it fits or there is no bound."""
    if not max_pixels or w * h <= max_pixels:
        return w, h
    f = (max_pixels / (w * h)) ** 0.5
    return max(2, int(w * f + 1e-6) // 2 * 2), max(2, int(h * f + 1e-6) // 2 * 2)


def _wrap(text: str, width: int, scale: float, thick: int) -> list[str]:
    lines, cur = [], ""
    for word in text.split():
        trial = f"{cur} {word}".strip()
        if cv2.getTextSize(trial, cv2.FONT_HERSHEY_SIMPLEX, scale, thick)[0][0] > width and cur:
            lines.append(cur)
            cur = word
        else:
            cur = trial
    return lines + [cur] if cur else lines


def busy_frame(frame: np.ndarray, message: str) -> np.ndarray:
    """``frame`` dimmed, with ``message`` on a dark panel in the middle, one sentence a paragraph: the
    first as the headline, the second (the place in line) next in size (sized to the frame's width, so it
    stays readable on a phone)."""
    out = (np.ascontiguousarray(frame) // 3).astype(np.uint8)
    h, w = out.shape[:2]
    sentences = [p if p.endswith(".") else p + "." for p in message.split(". ") if p.strip()]
    u = max(0.35, min(1.6, w / 640))
    styles = [(0.95 * u, 2, (80, 200, 255)), (0.85 * u, 2, (255, 255, 255)), (0.72 * u, 1, (235, 235, 235))]
    rows = []
    for i, text in enumerate(sentences):
        sc, th, col = styles[min(i, len(styles) - 1)]
        rows += [(line, sc, th, col, j == 0 and i > 0) for j, line in enumerate(_wrap(text, w - 70 * u, sc, th))]
    step = [int(cv2.getTextSize("Ay", cv2.FONT_HERSHEY_SIMPLEX, sc, th)[0][1] * 1.8) + (int(10 * u) if gap else 0)
            for _, sc, th, _, gap in rows]
    total = sum(step) + int(22 * u)
    y0 = max(0, (h - total) // 2)
    panel = out[y0:min(h, y0 + total), int(16 * u):w - int(16 * u)]
    panel[:] = (panel * 0.3).astype(np.uint8)
    y = y0 + int(6 * u)
    for (line, sc, th, col, _), dy in zip(rows, step):
        tw = cv2.getTextSize(line, cv2.FONT_HERSHEY_SIMPLEX, sc, th)[0][0]
        y += dy
        cv2.putText(out, line, ((w - tw) // 2, y), cv2.FONT_HERSHEY_SIMPLEX, sc, col, th, cv2.LINE_AA)
    return out


def _fastrtc_warning(message: str, pool=None) -> None:
    """A warning toast in the user's page (fastrtc sends it over the connection's data channel).

    On a worker thread (:mod:`webapp.live.pool`) the message is handed to the connection's event loop:
    fastrtc's own ``Warning`` would send it from a throwaway loop in this thread."""
    import json

    from fastrtc.utils import Warning as rtc_warning
    from fastrtc.utils import current_channel

    loop, channel = (pool.connection_loop() if pool is not None else None), current_channel.get()
    if loop is not None and channel is not None:
        loop.call_soon_threadsafe(channel.send, json.dumps({"type": "warning", "message": message}))
    else:
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

    The frames run on ``fn.pool`` (the server's :class:`~webapp.live.pool.LivePool`), off fastrtc's
    event loop, when ``fn`` has one.
    """
    from common.compat import aiortc_vp8_only, aiortc_vp8_size_guard, fastrtc_stable_handler_class

    aiortc_vp8_only()  # no H.264 decoder for a peer to feed a huge picture size
    aiortc_vp8_size_guard()  # a key frame announcing 16383x16383 never reaches the decoder
    return fastrtc_stable_handler_class()(fn, fps=fps, skip_frames=skip_frames)


def hook_cleanup(webrtc, registry: SessionRegistry, gate=None) -> None:
    """Release a connection's session (and its place in ``gate``, a :class:`~webapp.live.gate.LiveGate`) when
    fastrtc cleans the connection up."""
    from common.compat import fastrtc_on_clean_up

    def after(webrtc_id: str) -> None:
        try:
            registry.release(webrtc_id)
        finally:
            if gate is not None:
                gate.forget(webrtc_id)

    fastrtc_on_clean_up(webrtc, after)
    if gate is not None:
        gate.attach(webrtc)
