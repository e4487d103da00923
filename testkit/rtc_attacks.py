"""Hostile WebRTC peers for the Live tab's tests and ``benchmarks.live_hostile``: offers that never connect,
offers in a codec the server refuses, and VP8 payloads that are noise.  The honest peer is
:class:`testkit.rtc_peer.LivePeer`.
"""
from __future__ import annotations

import uuid

import numpy as np

from .rtc_peer import live_inputs


def blackhole_sdp(sdp: str, port: int) -> str:
    """``sdp`` with every ICE candidate replaced by one at 127.0.0.1:``port`` (a UDP socket that never
    answers): the server's connectivity checks go unanswered, so the offer stays half-open until the server
    gives up on it."""
    out, done = [], set()
    section = 0
    for line in sdp.splitlines():
        if line.startswith("m="):
            section += 1
        if line.startswith("a=candidate:"):
            if section not in done:
                done.add(section)
                out.append(f"a=candidate:1 1 udp 2130706431 127.0.0.1 {port} typ host")
            continue
        out.append(line)
    return "\r\n".join(out) + "\r\n"


def h264_sdp(sdp: str, then_vp8: bool = False) -> str:
    """``sdp`` (an offer with a VP8 video section) offering H.264 (constrained baseline, as browsers offer it)
    in the VP8 payload type's place; every other video payload type (VP8's RTX, any H.264 of the original) left
    out.  ``then_vp8``: VP8 offered too, after H.264 (payload type 120), as a peer preferring H.264 would."""
    import re

    pt = re.search(r"^a=rtpmap:(\d+) VP8/90000", sdp, re.M).group(1)
    out, video, fb = [], False, []
    for line in sdp.splitlines():
        if line.startswith("m="):
            video = line.startswith("m=video")
            if video:
                line = " ".join(line.split()[:3] + [pt] + (["120"] if then_vp8 else []))
        elif video and (m := re.match(r"a=(rtpmap|fmtp|rtcp-fb):(\d+)", line)):
            if m.group(2) != pt or m.group(1) == "fmtp":
                continue
            if m.group(1) == "rtpmap":
                out.append(f"a=rtpmap:{pt} H264/90000")
                out.append(f"a=fmtp:{pt} level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f")
                if then_vp8:
                    out.append("a=rtpmap:120 VP8/90000")
                continue
            fb.append(line.replace(f":{pt} ", ":120 "))
        out.append(line)
    if then_vp8:
        at = next(i for i, line in enumerate(out) if line.startswith("a=rtpmap:120"))
        out[at + 1:at + 1] = fb
    return "\r\n".join(out) + "\r\n"


async def half_open_offer(client, url: str, config: dict, blackhole_port: int, webrtc_id: str | None = None) -> dict:
    """Post a video offer to the Live tab whose candidates lead nowhere (:func:`blackhole_sdp`), as an
    attacker who never completes ICE does; the server's answer (``{"status": "failed", ...}`` if refused).
    Nothing is kept on this side.  ``webrtc_id``: the connection id to offer for (default: a new one)."""
    from aiortc import RTCPeerConnection, VideoStreamTrack

    url = url if url.endswith("/") else url + "/"
    cid, _ = live_inputs(config)
    pc = RTCPeerConnection()
    pc.createDataChannel("text")
    pc.addTrack(VideoStreamTrack())
    try:
        await pc.setLocalDescription(await pc.createOffer())
        body = {"sdp": blackhole_sdp(pc.localDescription.sdp, blackhole_port), "type": "offer",
                "webrtc_id": webrtc_id or uuid.uuid4().hex[:12]}
        r = await client.post(f"{url}gradio_api/component_server",
                              json={"data": body, "component_id": cid, "fn_name": "offer",
                                    "session_hash": uuid.uuid4().hex[:10]})
        r.raise_for_status()
        return r.json()
    finally:
        await pc.close()


def garbage_packets(n: int = 30, size: int = 2000, seed: int = 0, announce: tuple[int, int] | None = None) -> list[bytes]:
    """``n`` VP8 "frames" for a hostile peer (``LivePeer.encoded``): random bytes, sent as the payload of the
    negotiated VP8 track; with ``announce`` each starts with a key frame header claiming that (width, height)
    (RFC 6386, 9.1), which makes a decoder allocate frame buffers of that size before it finds the rest is
    noise."""
    import struct

    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        body = rng.integers(0, 256, size, dtype=np.uint8).tobytes()
        if announce is not None:
            tag = (1 << 4) | (size << 5)  # key frame, version 0, shown, first partition size
            body = struct.pack("<I", tag)[:3] + b"\x9d\x01\x2a" + struct.pack("<HH", *announce) + body
        elif body[0] & 1 == 0:
            body = bytes([body[0] | 1]) + body[1:]  # an inter frame: never a key frame header by chance
        out.append(body)
    return out
