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


# -- aiortc ----------------------------------------------------------------------------------

#: VP8 key frames whose header announces more pixels than this never reach the decoder (4096x2160: more
#: than any webcam sends; the live handler closes peers above LIVE_REFUSE_PIXELS after decoding).
VP8_MAX_PIXELS = 4096 * 2160


def vp8_announced_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) a VP8 key frame's header announces (RFC 6386, 9.1), None for any other frame."""
    if len(data) < 10 or data[0] & 1 or data[3:6] != b"\x9d\x01\x2a":
        return None
    return int.from_bytes(data[6:8], "little") & 0x3FFF, int.from_bytes(data[8:10], "little") & 0x3FFF


def aiortc_vp8_size_guard() -> None:
    """aiortc's VP8 decoder drops key frames whose header announces more than :data:`VP8_MAX_PIXELS`.

    Why: libvpx allocates the frame buffers a key frame's header announces before it decodes a byte of
    picture, and aiortc hands it whatever a peer sends: one 2 KB packet of random bytes behind a key frame
    header claiming 16383x16383 made the decoder of that one connection allocate 500-900 MB (the
    ``garbage`` attack of ``benchmarks.live_hostile``).  A dropped key frame leaves the connection with no
    picture; the live gate then closes it as half-open or silent.  Upstream: ``aiortc.codecs.vpx.Vp8Decoder
    .decode`` (one ``JitterFrame`` in, decoded frames out; written for aiortc 1.16).
    """
    if not _once("aiortc_vp8_size_guard"):
        return
    import logging

    from aiortc.codecs import vpx

    original = vpx.Vp8Decoder.decode
    log = logging.getLogger("webapp.live")

    def decode(self, encoded_frame):
        size = vp8_announced_size(encoded_frame.data)
        if size is not None and size[0] * size[1] > VP8_MAX_PIXELS:
            if not getattr(self, "refused_size", None):
                log.info("dropping VP8 key frames announcing %dx%d", *size)
            self.refused_size = size
            return []
        return original(self, encoded_frame)

    vpx.Vp8Decoder.decode = decode


def aiortc_vp8_only() -> None:
    """aiortc answers video with VP8 only: it no longer offers or accepts H.264.

    Why: aiortc also decodes H.264 (libavcodec through PyAV), and an H.264 stream whose sequence parameter
    set announces a huge picture makes the decoder allocate for it: three packets of a few hundred bytes
    announcing 16368x8192 grew one decoder to about 570 MB (PyAV 18.1; 8192x8192: 290 MB).  VP8 has the
    size guard above, and every browser sends VP8 (RFC 7742 makes it mandatory), so the H.264 decoder only
    served hostile peers.  An offer without VP8 now fails to negotiate, and its connection never opens.
    Upstream: ``aiortc.codecs.CODECS["video"]`` (VP8 and its RTX, then two H.264 profiles and theirs, as
    ``init_codecs`` builds them; read when answering, by ``RTCPeerConnection.setRemoteDescription``; written
    for aiortc 1.16).
    """
    if not _once("aiortc_vp8_only"):
        return
    from aiortc.codecs import CODECS

    video = CODECS["video"]
    vp8 = {c.payloadType for c in video if c.mimeType.lower() == "video/vp8"}
    video[:] = [c for c in video if c.payloadType in vp8
                or (c.mimeType.lower() == "video/rtx" and c.parameters.get("apt") in vp8)]


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


def fastrtc_open_connections(webrtc) -> dict:
    """The peer connections ``webrtc`` holds (accepted offers, connected or not), by connection id.

    Why: fastrtc counts these against the stream's ``concurrency_limit`` and offers no way to list them;
    the live gate (``webapp.live.gate``) reads them to know whether an offer was accepted and whether the
    server is full.  Upstream: ``WebRTCConnectionMixin.pcs`` and ``concurrency_limit`` (written for fastrtc 0.0.34).
    """
    return webrtc.pcs


async def fastrtc_close_connection(webrtc, webrtc_id: str) -> bool:
    """Close connection ``webrtc_id`` of ``webrtc`` as fastrtc does for a failed one; False if it had none.

    Why: fastrtc closes a connection that never connects only after 30 s and one that stops sending media
    never; the live gate closes half-open and silent connections itself.  Upstream:
    ``WebRTCConnectionMixin.pcs``, ``clean_up`` (which returns the connection's tracks) and the tracks'
    ``stop`` (written for fastrtc 0.0.34).  Run it on the event loop that accepted the offer.
    """
    pc = webrtc.pcs.get(webrtc_id)
    if pc is None:
        return False
    try:
        await pc.close()
    finally:
        for track in webrtc.clean_up(webrtc_id) or ():
            try:
                track.stop()
            except Exception:  # pragma: no cover - already stopped
                pass
        webrtc.pcs.pop(webrtc_id, None)
    return True


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
TESTED = {"gradio": ("5.50.0",), "fastrtc": ("0.0.34",), "uvicorn": ("0.55.0",), "mediapipe": ("1.2.2",),
          "aiortc": ("1.16.0",)}


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
