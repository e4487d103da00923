"""A browserless WebRTC peer for the Live tab: aiortc sends a real video to ``python app.py`` through
fastrtc's own signalling and reads the processed video back (tests and ``benchmarks.live_load``).

Signalling, as fastrtc's page does it: the peer opens a data channel named ``text``, posts its offer
to ``/gradio_api/component_server`` (``fn_name="offer"`` on the WebRTC component), sets the answer,
then sends the page's control values through the ``set_input_gradio`` event (Gradio's call API);
from then on fastrtc calls the app's handler for every frame.

Every sent frame carries a bar code in a strip at its bottom (:func:`stamp`): the peer's id, a frame
counter and a checksum, black and white cells 16 px wide that survive VP8 both ways and the busy
notice's dimming.  :func:`read_mark` reads it back from a returned frame, so each returned frame is
matched to the frame it answers (latency) and to the peer it belongs to (no mix-ups).
"""
from __future__ import annotations

import asyncio
import json
import time
import uuid
from dataclasses import dataclass, field

import numpy as np

STRIP = 40  # rows at the bottom kept free of faces (the scene is drawn above)
MARK_H = 16  # rows of the bar code (the bottom of the strip)
CELL = 16  # px per bit
PEER_BITS, COUNT_BITS, SUM_BITS = 8, 20, 8
DEBUG_DIR = None
_BITS = 2 + PEER_BITS + COUNT_BITS + SUM_BITS + 2  # guards: white, black ... black, white


def _checksum(peer: int, counter: int) -> int:
    return (peer * 37 + counter * 11 + (counter >> 8) * 5 + 0x5A) & 0xFF


def _bits(peer: int, counter: int) -> list[int]:
    def b(v, n):
        return [(v >> (n - 1 - i)) & 1 for i in range(n)]

    return [1, 0] + b(peer, PEER_BITS) + b(counter, COUNT_BITS) + b(_checksum(peer, counter), SUM_BITS) + [0, 1]


def stamp(frame: np.ndarray, peer: int, counter: int) -> np.ndarray:
    """Write (peer, counter) as a bar code into the bottom ``MARK_H`` rows of ``frame`` (in place)."""
    h, w = frame.shape[:2]
    assert w >= _BITS * CELL, f"frame too narrow for the marker ({w} < {_BITS * CELL})"
    counter %= 1 << COUNT_BITS
    row = frame[h - MARK_H:]
    row[:] = 0
    for i, bit in enumerate(_bits(peer, counter)):
        if bit:
            row[:, i * CELL:(i + 1) * CELL] = 255
    return frame


def read_mark(gray: np.ndarray) -> tuple[int, int] | None:
    """(peer, counter) from a returned frame's luminance, or None when unreadable (bad guards or checksum)."""
    h = gray.shape[0]
    cells = gray[h - MARK_H + 4:h - 4, :_BITS * CELL].reshape(MARK_H - 8, _BITS, CELL)[:, :, 4:-4]
    v = cells.mean(axis=(0, 2))
    lo, hi = v[[1, -2]].mean(), v[[0, -1]].mean()
    if hi - lo < 30:  # no contrast: not our marker
        return None
    bits = (v > (lo + hi) / 2).astype(int).tolist()
    if bits[:2] != [1, 0] or bits[-2:] != [0, 1]:
        return None
    body = bits[2:-2]

    def num(bs):
        return int("".join(map(str, bs)), 2)

    peer = num(body[:PEER_BITS])
    counter = num(body[PEER_BITS:PEER_BITS + COUNT_BITS])
    if num(body[PEER_BITS + COUNT_BITS:]) != _checksum(peer, counter):
        return None
    return peer, counter


def scene_frames(scenario: str = "crowd", n_frames: int = 90, seed: int = 0, size=(640, 480), **params):
    """BGR frames of a :mod:`testkit.synth` scene (real face crops on a real background) drawn above the
    marker strip, looping cleanly is not needed (the counter tells frames apart)."""
    import cv2

    from .synth import make_sequence

    w, h = size
    seq = make_sequence(scenario, fps=30, seconds=n_frames / 30, size=(w, h - STRIP), seed=seed, **params)
    out = []
    for rgb in seq.frames:
        f = np.zeros((h, w, 3), np.uint8)
        f[:h - STRIP] = cv2.cvtColor(np.asarray(rgb), cv2.COLOR_RGB2BGR)
        f[h - STRIP:] = 40
        out.append(f)
    return out


@dataclass
class Returned:
    counter: int
    t: float  # arrival (time.time())
    latency_ms: float
    annotated: bool  # something was drawn on it (boxes, labels)
    busy: bool  # dimmed: the server's "busy" notice


@dataclass
class PeerStats:
    peer: int
    sent_t: dict = field(default_factory=dict)  # counter -> time sent
    returned: list = field(default_factory=list)  # first arrival of each counter (Returned)
    seen: set = field(default_factory=set)
    repeats: int = 0  # the same frame arriving again (fastrtc answers a backlog with the latest)
    unreadable: int = 0
    global_of: dict = field(default_factory=dict)  # counter in the bar code -> the last frame number sent with it
    foreign: list = field(default_factory=list)  # (peer id read, counter): another stream's frame
    refused: str = ""  # signalling refused (e.g. concurrency_limit_reached)
    messages: list = field(default_factory=list)  # data-channel messages (warnings, errors)
    sizes: dict = field(default_factory=dict)  # (width, height) of the returned frames -> how many

    def warnings(self) -> list[str]:
        """The warnings the server sent over the data channel (``{"type": "warning", "message": ...}``)."""
        out = []
        for m in self.messages:
            try:
                d = json.loads(m)
            except ValueError:
                continue
            if isinstance(d, dict) and d.get("type") == "warning":
                out.append(str(d.get("message")))
        return out


#: A pre-encoded peer loops over this many frames (10 s at 30 fps; bar-code counters repeat after it).
PRE_ENCODED_FRAMES = 300


def pre_encode(frames: list[np.ndarray], peer: int, n: int = PRE_ENCODED_FRAMES,
               bitrate: int = 1_000_000) -> list[bytes]:
    """``n`` frames of ``frames`` (looped) stamped with counters 0..n-1, encoded once as VP8 with the
    settings aiortc uses for a live camera (realtime, CBR), one key frame at the start of the loop."""
    import av

    codec = av.CodecContext.create("libvpx", "w")
    h, w = frames[0].shape[:2]
    codec.width, codec.height, codec.pix_fmt, codec.bit_rate = w, h, "yuv420p", bitrate
    codec.gop_size, codec.qmin, codec.qmax = n + 1, 2, 56
    codec.options = {"bufsize": str(bitrate), "cpu-used": "-6", "deadline": "realtime", "lag-in-frames": "0",
                     "minrate": str(bitrate), "maxrate": str(bitrate), "partitions": "0", "static-thresh": "1",
                     "undershoot-pct": "100", "overshoot-pct": "15"}
    out: list[bytes] = []
    for i in range(n):
        f = av.VideoFrame.from_ndarray(stamp(frames[i % len(frames)].copy(), peer, i), format="bgr24")
        f = f.reformat(format="yuv420p")
        f.pts = i
        out.append(b"".join(bytes(p) for p in codec.encode(f)))
    assert all(out), "the VP8 encoder held frames back"
    return out


def _source_track(frames: list[np.ndarray], peer: int, stats: PeerStats, encoded: list[bytes] | None = None,
                  held=lambda: False):
    """The peer's camera: ``frames`` stamped and encoded as they are sent (as a browser does), or the
    ``encoded`` loop (:func:`pre_encode`) sent as it is, which costs the peer almost nothing.  While
    ``held()`` is true nothing is sent (a peer that stops mid-stream without closing)."""
    from aiortc import VideoStreamTrack
    from av import Packet, VideoFrame

    class Marked(VideoStreamTrack):
        def __init__(self):
            super().__init__()
            self.n = 0

        async def recv(self):
            while held():
                await asyncio.sleep(0.2)
            pts, time_base = await self.next_timestamp()
            i = self.n
            self.n += 1
            if encoded is not None:
                k = i % len(encoded)
                out = Packet(encoded[k])
            else:
                k = i % (1 << COUNT_BITS)
                out = VideoFrame.from_ndarray(stamp(frames[i % len(frames)].copy(), peer, i), format="bgr24")
            out.pts, out.time_base = pts, time_base
            stats.sent_t[i] = time.time()
            stats.global_of[k] = i
            return out

    return Marked()


def live_inputs(config: dict, elem_id: str = "live-video", api_name: str = "set_input_gradio"):
    """(WebRTC component id, the page's current values of the stream's other inputs) from ``/config``."""
    comps = {c["id"]: c for c in config["components"]}
    cid = next(c["id"] for c in config["components"] if c.get("props", {}).get("elem_id") == elem_id)
    dep = next(d for d in config["dependencies"] if d.get("api_name") == api_name)
    assert dep["inputs"][0] == cid, "the stream's first input must be the WebRTC component"
    return cid, [comps[i].get("props", {}).get("value") for i in dep["inputs"][1:]]


_GREY: dict = {}


def _grey(frames: list[np.ndarray]) -> list[np.ndarray]:
    """Luminance of the source frames (shared by the peers that send the same frames)."""
    import cv2

    key = id(frames)
    if key not in _GREY:
        _GREY[key] = (frames, [cv2.cvtColor(f, cv2.COLOR_BGR2GRAY) for f in frames])
    return _GREY[key][1]


class LivePeer:
    """One browserless user of the Live tab (use inside a running asyncio loop)."""

    def __init__(self, url: str, peer: int, frames: list[np.ndarray], controls: list | None = None,
                 pre_encoded: bool = False):
        self.url = url if url.endswith("/") else url + "/"
        self.peer = peer
        self.frames = frames
        # pre_encoded: the video is encoded once, here, and sent as it is (the peer's CPU stays free)
        self.encoded = pre_encode(frames, peer) if pre_encoded else None
        self.grey = _grey(frames)
        self.controls = controls
        self.stats = PeerStats(peer)
        self.webrtc_id = uuid.uuid4().hex[:12]
        self.pc = None
        self._readers: list[asyncio.Task] = []
        self.connected = asyncio.Event()
        #: True: the camera stops sending (the connection stays open), as a peer stopping mid-stream.
        self.held = False

    async def connect(self, client, config: dict) -> bool:
        """Offer, answer, controls; False (and ``stats.refused``) when the server refuses the connection."""
        from aiortc import RTCPeerConnection, RTCSessionDescription

        cid, values = live_inputs(config)
        if self.controls is not None:
            values = list(self.controls)
        self.pc = pc = RTCPeerConnection()
        channel = pc.createDataChannel("text")

        @channel.on("open")
        def _():
            channel.send("handshake")

        @channel.on("message")
        def _(msg):
            self.stats.messages.append(msg)

        @pc.on("track")
        def _(track):
            self._readers.append(asyncio.ensure_future(self._read(track)))

        @pc.on("connectionstatechange")
        def _():
            if pc.connectionState == "connected":
                self.connected.set()

        pc.addTrack(_source_track(self.frames, self.peer, self.stats, self.encoded, held=lambda: self.held))
        await pc.setLocalDescription(await pc.createOffer())  # aiortc gathers every candidate here
        body = {"sdp": pc.localDescription.sdp, "type": pc.localDescription.type, "webrtc_id": self.webrtc_id}
        r = await client.post(f"{self.url}gradio_api/component_server",
                              json={"data": body, "component_id": cid, "fn_name": "offer",
                                    "session_hash": uuid.uuid4().hex[:10]})
        r.raise_for_status()
        answer = r.json()
        if answer.get("status") == "failed":
            self.stats.refused = json.dumps(answer.get("meta", {}))
            await pc.close()
            return False
        await pc.setRemoteDescription(RTCSessionDescription(sdp=answer["sdp"], type=answer["type"]))
        await asyncio.wait_for(self.connected.wait(), 30)
        await self.set_controls(client, values)
        return True

    async def set_controls(self, client, values: list) -> None:
        """What the page does on every control change: send the values with the connection id."""
        r = await client.post(f"{self.url}gradio_api/call/set_input_gradio", json={"data": [self.webrtc_id, *values]})
        r.raise_for_status()
        event = r.json()["event_id"]
        async with client.stream("GET", f"{self.url}gradio_api/call/set_input_gradio/{event}") as s:
            async for line in s.aiter_lines():
                if line.startswith("event:") and line.split(":", 1)[1].strip() in ("complete", "error"):
                    break

    async def _read(self, track) -> None:
        from aiortc.mediastreams import MediaStreamError

        st = self.stats
        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
            t = time.time()
            st.sizes[(frame.width, frame.height)] = st.sizes.get((frame.width, frame.height), 0) + 1
            arr = frame.to_ndarray()
            y = arr[:frame.height] if frame.format.name == "yuv420p" else frame.to_ndarray(format="gray")
            mark = read_mark(y)
            if mark is None:
                st.unreadable += 1
                if DEBUG_DIR is not None and st.unreadable <= 5:
                    import cv2
                    cv2.imwrite(f"{DEBUG_DIR}/unreadable-{self.peer}-{st.unreadable}.png", y)
                continue
            peer, counter = mark
            if peer != self.peer:
                st.foreign.append(mark)
                continue
            counter = st.global_of.get(counter, -1)  # the frame number (a pre-encoded loop repeats its codes)
            if counter in st.seen:
                st.repeats += 1
                continue
            sent = st.sent_t.get(counter)
            if sent is None:
                st.unreadable += 1
                continue
            st.seen.add(counter)
            ref = self.grey[(counter % len(self.encoded) if self.encoded else counter) % len(self.grey)]
            hh = y.shape[0] - STRIP
            if y.shape[:2] != ref.shape:
                annotated, busy = False, False
            else:
                a, b = y[:hh].astype(np.float32), ref[:hh]
                busy = float(a.mean()) < 0.6 * float(b.mean())
                annotated = not busy and float((np.abs(a - b) > 60).mean()) > 0.002
            st.returned.append(Returned(counter, t, (t - sent) * 1000, annotated, busy))

    async def close(self) -> None:
        if self.pc is not None:
            await self.pc.close()
        for r in self._readers:
            r.cancel()


async def download_timeline(client, url: str, config: dict, webrtc_id: str, timeout_s: float = 60.0) -> dict:
    """What the Live tab's "Download the timeline recorded so far" button gets for connection ``webrtc_id``,
    through the page's own path (Gradio's queue: ``queue/join`` with the event's ``fn_index``, the result read
    from ``queue/data``, then each file fetched from its URL): ``{file name: bytes}``, or ``{"error": text}``."""
    url = url if url.endswith("/") else url + "/"
    button = next(c["id"] for c in config["components"] if c.get("props", {}).get("elem_id") == "live-download")
    dep = next(d for d in config["dependencies"] if d.get("targets") and d["targets"][0][0] == button)
    session = uuid.uuid4().hex[:10]
    r = await client.post(f"{url}gradio_api/queue/join", json={"data": [webrtc_id, None], "fn_index": dep["id"],
                                                               "session_hash": session, "event_data": None,
                                                               "trigger_id": button})
    if r.status_code != 200:
        return {"error": f"{r.status_code} {r.text[:200]}"}
    done = None
    async with client.stream("GET", f"{url}gradio_api/queue/data", params={"session_hash": session},
                             timeout=timeout_s) as s:
        async for line in s.aiter_lines():
            if not line.startswith("data:"):
                continue
            msg = json.loads(line[5:])
            if msg.get("msg") == "process_completed":
                done = msg
                break
    if done is None or not done.get("success"):
        return {"error": json.dumps((done or {}).get("output", done))[:300]}
    value = done["output"]["data"][0]
    files = value.get("value") if isinstance(value, dict) and "value" in value else value
    out = {}
    for f in files or []:
        r = await client.get(f["url"])
        r.raise_for_status()
        out[f.get("orig_name") or f["path"].rsplit("/", 1)[-1]] = r.content
    return out
