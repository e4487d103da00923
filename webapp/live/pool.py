"""Live frames on a bounded pool of worker threads instead of fastrtc's event loop.

fastrtc 0.0.34 calls a video handler synchronously inside its asyncio loop
(``fastrtc.tracks.VideoCallback.recv``): every connection's frames, the WebRTC
transport of all connections and Gradio's HTTP server share that one thread, so
N streams are analysed one frame after another on one core, and while a frame is
analysed no packet is read (UDP buffers overflow: broken frames, see
``benchmarks/live_load.py``).  :class:`LivePool` makes fastrtc build its video
tracks from ``PooledVideoCallback``, which awaits the handler on the server's pool of
``workers`` threads (MediaPipe, onnxruntime, OpenCV and the VP8 codec release the
GIL, so two streams really run on two cores).

Per-stream order and fairness: fastrtc's sender asks a track for one frame at a
time, so a stream never has more than one frame in the pool; the pool's queue is
first-in first-out, so with every stream waiting, each gets its turn in rotation
(round-robin) and none can starve the others.  Skip to latest: the frame
analysed is the newest one that has arrived when a worker takes the job (not the
one current when it was queued), and the frames it makes obsolete are dropped
from fastrtc's queue, which otherwise keeps every frame that arrived while the
handler was busy and answers each with the same (latest) frame again.
"""
from __future__ import annotations

import asyncio
import contextvars
import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import cast

import numpy as np

log = logging.getLogger(__name__)


class LivePool:
    """One server's live worker threads (``workers``; 0: frames run in fastrtc's event loop).

    The frame handler carries its pool (``handler.pool``); the fastrtc track built for a connection
    finds it there, so two servers in one process keep their own pools.  The change to fastrtc that
    routes frames here is applied once per process (:func:`common.compat.fastrtc_video_callback`).
    """

    def __init__(self, workers: int):
        self.workers = max(0, int(workers))
        self.executor = (ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="live-worker")
                         if self.workers else None)
        self._local = threading.local()  # the event loop of the connection a worker thread is serving
        if self.workers:
            _install_once()
            log.info("live frames run on %d worker threads", self.workers)

    def connection_loop(self) -> asyncio.AbstractEventLoop | None:
        """In a worker thread: the event loop its current frame's connection lives in (else None)."""
        return getattr(self._local, "loop", None)

    def close(self) -> None:
        if self.executor is not None:
            self.executor.shutdown(wait=False, cancel_futures=True)


_install_lock = threading.Lock()


def _install_once() -> None:
    from common.compat import fastrtc_video_callback

    with _install_lock:
        import fastrtc.webrtc_connection_mixin as mixin

        if getattr(mixin.VideoCallback, "__name__", "") != "PooledVideoCallback":
            fastrtc_video_callback(_pooled_class())


def _pooled_class():
    from fastrtc.tracks import VideoCallback, split_output
    from fastrtc.utils import DataChannel, WebRTCError, create_message

    from .handler import SKIP

    class PooledVideoCallback(VideoCallback):
        """fastrtc's ``VideoCallback`` with the frame conversion and the handler awaited on the pool."""

        def _run(self, pool, loop, frame, args_template):
            pool._local.loop = loop
            if self.skip_frames and self.latest_frame is not None:
                frame = self.latest_frame  # the newest frame at the time a worker is free
            arr = frame.to_ndarray(format="bgr24")
            args = self.add_frame_to_payload(args_template, arr)
            return frame, self.event_handler(*args)

        def array_to_frame(self, array):
            """The answer frame around the handler's array, without a copy (PyAV's ``from_ndarray`` copies it
            holding the GIL, ~0.3 ms a frame); the array is never written to again once returned."""
            from av import VideoFrame

            if array.dtype == np.uint8 and array.ndim == 3 and array.shape[2] == 3 and array.flags.c_contiguous:
                return VideoFrame.from_numpy_buffer(array, format="bgr24")
            return VideoFrame.from_ndarray(np.ascontiguousarray(array, dtype=np.uint8), format="bgr24")

        def _bounded(self, frame):
            """``frame`` scaled down to the handler's ``max_pixels`` (the frames echoed before the page's controls
            arrive are encoded too: they must not be bigger than the analysed ones)."""
            from .handler import bounded_size

            if frame is None:
                return frame
            w, h = bounded_size(frame.width, frame.height, getattr(self.event_handler, "max_pixels", None))
            if (w, h) == (frame.width, frame.height):
                return frame
            out = frame.reformat(width=w, height=h)
            out.pts, out.time_base = frame.pts, frame.time_base
            return out

        def _drop_backlog(self):
            q = self.frame_queue
            while self.skip_frames and not q.empty():
                q.get_nowait()

        async def recv(self):  # type: ignore[override]
            self.accept_input_in_background()
            try:
                while True:  # a frame the handler skips (a throttled stream's) is not answered
                    frame = await self.frame_queue.get()
                    gate = getattr(self.event_handler, "gate", None)
                    if gate is not None:  # media arrives: no longer half-open (the page's controls may come later)
                        gate.seen(self.context.webrtc_id)
                    self._drop_backlog()
                    await self.wait_for_channel()
                    if self.latest_args == "not_set":  # no controls yet: the frame goes back as it came, bounded
                        return self._bounded(self.latest_frame if self.skip_frames else frame)
                    ctx = contextvars.copy_context()  # the connection id and data channel (fastrtc's contextvars)
                    loop = asyncio.get_running_loop()
                    pool = getattr(self.event_handler, "pool", None)
                    if pool is None or pool.executor is None:  # a handler of no server of ours: fastrtc's way
                        frame, result = ctx.run(self._run, _NO_POOL, loop, frame, cast(list, self.latest_args))
                    else:
                        frame, result = await loop.run_in_executor(pool.executor, ctx.run, self._run, pool, loop, frame,
                                                                   cast(list, self.latest_args))
                    self._drop_backlog()
                    if result is SKIP:
                        continue
                    array, outputs = split_output(result)
                    if outputs.__class__.__name__ == "CloseStream":
                        cast(DataChannel, self.channel).send(create_message("end_stream", outputs.msg))
                        self.stop()
                        return None
                    if outputs.__class__.__name__ == "AdditionalOutputs" and self.set_additional_outputs and self.channel:
                        self.set_additional_outputs(outputs)
                        self.channel.send(create_message("fetch_output", []))
                    if array is None and self.mode == "send":
                        return
                    new_frame = self.array_to_frame(array)
                    new_frame.pts, new_frame.time_base = frame.pts, frame.time_base
                    return new_frame
            except Exception as e:
                if isinstance(e, WebRTCError):
                    raise
                raise WebRTCError(str(e)) from e

    return PooledVideoCallback


class _NoPool:
    _local = threading.local()


_NO_POOL = _NoPool()
