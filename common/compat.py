"""Every change this project makes to a third-party library's internals, in one place.

Each patch is a function that applies it once (idempotent), with a docstring saying why it
exists, which upstream behaviour it changes, and the versions it was written for.  Each has a
test in ``tests/test_compat.py`` that fails if the upstream internal it relies on moves.
:func:`check_versions` refuses, with a clear message, a library version outside the tested set.
"""
from __future__ import annotations

import threading

_APPLIED: set[str] = set()
_LOCK = threading.Lock()


def _once(name: str) -> bool:
    """True the first time ``name`` is asked for (the caller then applies the patch)."""
    with _LOCK:
        if name in _APPLIED:
            return False
        _APPLIED.add(name)
        return True


# -- MediaPipe -------------------------------------------------------------------------------

def mediapipe_detector_without_finaliser() -> None:
    """MediaPipe's Tasks ``FaceDetector.__del__`` replaced by a no-op.

    Why: mediapipe 1.2.2 closes a garbage-collected detector through its dispatcher's thread
    pool, which the collector may have shut down first: the process then waits for ever.  Every
    detector here is closed explicitly instead (``close()``, context managers, and at exit, see
    ``tracker.detect``); a detector that was never closed leaks its native part.
    Upstream: ``mediapipe.tasks.python.vision.FaceDetector.__del__`` (written for mediapipe 1.2.2).
    """
    if not _once("mediapipe_detector_without_finaliser"):
        return
    from mediapipe.tasks.python import vision

    def _no_finaliser(self) -> None:
        pass

    vision.FaceDetector.__del__ = _no_finaliser


# -- fastrtc ---------------------------------------------------------------------------------

def fastrtc_video_callback(replacement: type) -> None:
    """fastrtc's ``VideoCallback`` replaced by ``replacement`` (a subclass) for every new connection.

    Why: fastrtc runs a video handler inside the connection's event loop, one frame at a time, so a
    60 ms analysis delays every connection; the replacement (``webapp.live.pool``) awaits the handler
    on a worker pool, drops the backlog and wraps the answer frame without a copy.
    Upstream: ``fastrtc.webrtc_connection_mixin.VideoCallback`` (the name the mixin instantiates),
    and ``VideoCallback``'s ``recv``, ``frame_queue``, ``latest_frame``, ``latest_args``,
    ``accept_input_in_background``, ``wait_for_channel``, ``add_frame_to_payload``, ``event_handler``,
    ``skip_frames``, ``set_additional_outputs``, ``channel``, ``mode`` (written for fastrtc 0.0.34).
    """
    import fastrtc.webrtc_connection_mixin as mixin

    mixin.VideoCallback = replacement


def fastrtc_stable_handler_class() -> type:
    """A ``fastrtc.VideoStreamHandler`` whose ``callable`` cannot be replaced once set.

    Why: fastrtc wraps ``handler.callable`` in an error decorator on every new connection
    (``webrtc_connection_mixin.handle_offer``), so the call stack grows by one frame per connection
    ever made and a long-running server ends in RecursionError.  Our handler catches its own errors,
    so later assignments are ignored.  Upstream: ``VideoStreamHandler.callable``, a dataclass field
    reassigned by ``handle_offer`` (written for fastrtc 0.0.34).
    """
    from fastrtc import VideoStreamHandler

    class StableVideoStreamHandler(VideoStreamHandler):
        def __setattr__(self, name, value):
            if name == "callable" and "callable" in self.__dict__:
                return
            super().__setattr__(name, value)

    return StableVideoStreamHandler


def fastrtc_on_clean_up(webrtc, after) -> None:
    """Call ``after(webrtc_id)`` whenever fastrtc cleans a connection of ``webrtc`` up.

    Why: fastrtc offers no hook for a closed connection; the live registry must release the
    connection's slot and keep its timeline.  Upstream: the ``WebRTC`` component's ``clean_up``
    method, which fastrtc calls on every closed or failed connection (written for fastrtc 0.0.34).
    """
    import logging

    original = webrtc.clean_up

    def clean_up(webrtc_id: str):
        try:
            return original(webrtc_id)
        finally:
            try:
                after(webrtc_id)
            except Exception:  # pragma: no cover
                logging.getLogger(__name__).exception("after clean-up of live connection %s", webrtc_id)

    webrtc.clean_up = clean_up


# -- uvicorn ---------------------------------------------------------------------------------

def uvicorn_http_protocol(target: str) -> None:
    """uvicorn builds ``target`` ("module:Class", an ``H11Protocol`` subclass) for ``http="auto"`` and ``"h11"``.

    Why: uvicorn has no timeout for a request's headers or body; a client that sends them a byte at
    a time holds a connection for ever (``webapp.guards.slowclients`` closes such connections).
    Upstream: ``uvicorn.config.HTTP_PROTOCOLS``, and ``H11Protocol``'s ``connection_made``,
    ``data_received``, ``connection_lost``, ``conn``, ``cycle``, ``transport``, ``client``
    (written for uvicorn 0.55.0 with h11 0.16.0).
    """
    from uvicorn import config

    config.HTTP_PROTOCOLS["auto"] = target
    config.HTTP_PROTOCOLS["h11"] = target


# -- Gradio ----------------------------------------------------------------------------------

def gradio_forget_events(app, event_ids) -> None:
    """Drop what Gradio keeps of finished events ``event_ids`` (its analytics, its event map, and for an
    HTTP API call its session and an unread result).

    Why: Gradio 5.50 keeps every finished event's record, and every API call's session, for the life
    of the process: memory grows with the number of requests.  Upstream: ``Blocks._queue``'s
    ``event_analytics``, ``event_ids_to_events``, ``pending_event_ids_session``,
    ``pending_messages_per_session``, and ``Blocks.state_holder``'s ``session_data``,
    ``time_last_used`` and ``lock`` (written for gradio 5.50.0).
    """
    import contextlib

    blocks = app.get_blocks() if hasattr(app, "get_blocks") else app
    queue, holder = blocks._queue, blocks.state_holder
    for eid in event_ids:
        queue.event_analytics.pop(eid, None)
        queue.event_ids_to_events.pop(eid, None)
        if eid in queue.pending_event_ids_session or eid in holder.session_data:
            queue.pending_event_ids_session.pop(eid, None)
            with contextlib.suppress(KeyError):
                del queue.pending_messages_per_session[eid]
            with holder.lock:
                holder.session_data.pop(eid, None)
                holder.time_last_used.pop(eid, None)


# -- versions --------------------------------------------------------------------------------

#: The versions every patch above was written and tested for.
TESTED = {"gradio": ("5.50.0",), "fastrtc": ("0.0.34",), "uvicorn": ("0.55.0",), "mediapipe": ("1.2.2",)}


class UntestedVersion(RuntimeError):
    """A library the server patches is at a version the patches were not tested with."""


def check_versions(installed: dict[str, str] | None = None) -> None:
    """Refuse to start the server with a patched library outside :data:`TESTED`.

    ``installed``: name -> version (default: what is installed).  The message names each library, the
    version found and the tested ones, and how to install them.
    """
    if installed is None:
        from importlib.metadata import PackageNotFoundError, version

        installed = {}
        for name in TESTED:
            try:
                installed[name] = version(name)
            except PackageNotFoundError:
                installed[name] = "not installed"
    bad = [f"{n} {installed.get(n)} (tested: {', '.join(v)})" for n, v in TESTED.items() if installed.get(n) not in v]
    if bad:
        raise UntestedVersion(
            "this server changes internals of libraries at versions it was tested with, and found "
            + "; ".join(bad) + ". Install the tested set with `pip install -r requirements.txt`.")
