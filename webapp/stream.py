"""fastrtc glue for the Live tab: the frame handler, the "server busy" frame, and two
workarounds for fastrtc 0.0.34 (:func:`stable_handler`, :func:`hook_cleanup`).

fastrtc calls :class:`LiveHandler` for every video frame of every connection (in its
asyncio loop, one frame at a time per connection) with the frame and the current values
of the page's controls.  The connection id comes from
``fastrtc.get_current_context().webrtc_id``; the :class:`~webapp.registry.SessionRegistry`
maps it to the connection's own session, so two users never share state.
"""
from __future__ import annotations

import logging
from collections import deque
from typing import Callable

import cv2
import numpy as np

from .registry import SessionRegistry
from .session import LiveControls

log = logging.getLogger(__name__)


class LiveHandler:
    """``fn(frame_bgr, model, preset, half_life_s, min_face, min_score) -> frame_bgr`` for fastrtc."""

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
            ctl = LiveControls.from_inputs(*controls)
            sid = self._session_id()
            sess = self.registry.admit(sid, ctl)
            if sess is None:
                return self._busy(frame, sid)
            return sess.step(frame, ctl)
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


def stable_handler(fn: Callable, skip_frames: bool = True, fps: int = 30, workers: int | None = None):
    """A ``fastrtc.VideoStreamHandler`` that fastrtc cannot re-wrap.

    fastrtc 0.0.34 wraps ``handler.callable`` in an error decorator on *every*
    new connection (``webrtc_connection_mixin.handle_offer``), so the call
    stack grows by one frame per connection ever made and a long-running
    server ends in RecursionError.  Our handler already catches its errors, so
    later assignments to ``callable`` are ignored.

    ``workers`` (default ``LIVE_WORKERS``) threads run the handler, off fastrtc's event loop
    (:mod:`webapp.livepool`); 0 leaves it in the loop.
    """
    from fastrtc import VideoStreamHandler

    from . import livepool
    from . import settings as S

    livepool.install(S.LIVE_WORKERS if workers is None else workers)

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
