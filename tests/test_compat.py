"""Every change to a third-party library's internals lives in common.compat; each test here fails if the
upstream internal that a patch relies on moves (a new release renamed or removed it)."""
import inspect

import pytest

from common import compat


def _source(obj) -> str:
    return inspect.getsource(obj)


def test_fastrtc_video_callback_is_where_the_patch_puts_its_replacement():
    import fastrtc.webrtc_connection_mixin as mixin
    from fastrtc.tracks import VideoCallback, split_output  # noqa: F401  (the replacement imports these)
    from fastrtc.utils import DataChannel, WebRTCError, create_message  # noqa: F401

    assert mixin.VideoCallback.__name__ in ("VideoCallback", "PooledVideoCallback")
    assert "VideoCallback(" in _source(mixin)  # the mixin builds its callbacks through this module name
    src = _source(VideoCallback)
    for name in ("frame_queue", "latest_frame", "latest_args", "accept_input_in_background", "wait_for_channel",
                 "add_frame_to_payload", "event_handler", "skip_frames", "set_additional_outputs", "channel",
                 "mode", "async def recv"):
        assert name in src, f"fastrtc's VideoCallback no longer has {name!r}: review common/compat.py"


def test_the_pooled_callback_still_subclasses_fastrtc_s():
    from fastrtc.tracks import VideoCallback

    from webapp.live.pool import _pooled_class

    assert issubclass(_pooled_class(), VideoCallback)


def test_video_stream_handler_callable_is_set_once_and_kept():
    from fastrtc import VideoStreamHandler

    assert "callable" in getattr(VideoStreamHandler, "__dataclass_fields__", {}) or "self.callable" in _source(VideoStreamHandler)

    def first(frame):
        return frame

    h = compat.fastrtc_stable_handler_class()(first)
    h.callable = lambda frame: None  # what fastrtc's WebRTC.stream does with a second event
    assert h.callable is first


def test_webrtc_component_has_the_clean_up_hook():
    from fastrtc import WebRTC

    assert callable(getattr(WebRTC, "clean_up", None))
    seen = []

    class Fake:
        def clean_up(self, webrtc_id):
            return "cleaned " + webrtc_id

    w = Fake()
    compat.fastrtc_on_clean_up(w, seen.append)
    assert w.clean_up("abc") == "cleaned abc" and seen == ["abc"]



def test_fastrtc_keeps_its_connections_where_the_live_gate_reads_and_closes_them():
    """fastrtc_open_connections / fastrtc_close_connection read ``pcs`` and ``concurrency_limit`` and call
    ``clean_up``: a real WebRTC component has them, and closing a real (unconnected) aiortc peer
    connection through the helper removes it and stops the tracks clean_up returns."""
    import asyncio
    import inspect

    from aiortc import RTCPeerConnection
    from fastrtc import WebRTC
    from fastrtc.webrtc_connection_mixin import WebRTCConnectionMixin

    src = inspect.getsource(WebRTCConnectionMixin)
    for name in ("self.pcs", "concurrency_limit", "def clean_up"):
        assert name in src, f"fastrtc's WebRTCConnectionMixin no longer has {name!r}: review common/compat.py"
    assert issubclass(WebRTC, WebRTCConnectionMixin)
    w = WebRTC(modality="video", mode="send-receive")
    assert compat.fastrtc_open_connections(w) == {}

    stopped = []

    class Track:
        def stop(self):
            stopped.append(True)

    async def run():
        pc = RTCPeerConnection()
        w.pcs["abc"] = pc
        w.clean_up = lambda webrtc_id: [Track()]  # the tracks fastrtc would hand back
        assert compat.fastrtc_open_connections(w) == {"abc": pc}
        assert await compat.fastrtc_close_connection(w, "abc") is True
        assert await compat.fastrtc_close_connection(w, "abc") is False
        return pc.connectionState

    assert asyncio.run(run()) == "closed"
    assert stopped == [True] and compat.fastrtc_open_connections(w) == {}

def test_uvicorn_protocol_table_and_h11_internals():
    from uvicorn import config
    from uvicorn.protocols.http.h11_impl import H11Protocol

    assert {"auto", "h11"} <= set(config.HTTP_PROTOCOLS)
    for name in ("connection_made", "data_received", "connection_lost"):
        assert callable(getattr(H11Protocol, name))
    src = _source(H11Protocol)
    for name in ("self.conn", "self.cycle", "self.transport", "self.client"):
        assert name in src, f"uvicorn's H11Protocol no longer has {name}: review common/compat.py"


def test_gradio_queue_keeps_the_maps_the_patch_prunes():
    import gradio as gr

    with gr.Blocks() as demo:
        gr.Button().click(lambda: None)
    demo.queue()
    q, holder = demo._queue, demo.state_holder
    for name in ("event_analytics", "event_ids_to_events", "pending_event_ids_session",
                 "pending_messages_per_session"):
        assert hasattr(q, name), f"Gradio's Queue no longer has {name}: review common/compat.py"
    for name in ("session_data", "time_last_used", "lock"):
        assert hasattr(holder, name), f"Gradio's StateHolder no longer has {name}"
    q.event_analytics["e1"] = {"status": "success"}
    compat.gradio_forget_events(demo, ["e1"])
    assert "e1" not in q.event_analytics


def test_mediapipe_detector_finaliser_exists():
    from mediapipe.tasks.python import vision

    assert hasattr(vision.FaceDetector, "__del__")
    compat.mediapipe_detector_without_finaliser()
    assert vision.FaceDetector.__del__.__name__ == "_no_finaliser"


def test_the_installed_versions_are_the_tested_ones():
    compat.check_versions()  # the environment requirements.txt makes


@pytest.mark.parametrize("lib", sorted(compat.TESTED))
def test_startup_refuses_an_untested_version_with_a_clear_message(lib):
    versions = {n: v[0] for n, v in compat.TESTED.items()}
    versions[lib] = "99.0"
    with pytest.raises(compat.UntestedVersion) as e:
        compat.check_versions(versions)
    assert f"{lib} 99.0 (tested: {compat.TESTED[lib][0]})" in str(e.value)
    assert "pip install -r requirements.txt" in str(e.value)


def test_no_module_outside_common_compat_assigns_to_a_third_party_attribute():
    """A guard against patches creeping back: no `<library>.X = ...` / `HTTP_PROTOCOLS[..] =` in the product."""
    import re
    from pathlib import Path

    repo = Path(__file__).resolve().parents[1]
    pat = re.compile(r"^\s*(mixin|config|vision|gradio|gr|fastrtc|uvicorn|mp)\.[A-Za-z_.]+\s*=(?!=)|HTTP_PROTOCOLS\[|"
                     r"\.clean_up\s*=(?!=)|\.__del__\s*=(?!=)", re.M)
    hits = []
    for pkg in ("webapp", "export", "pipeline", "tracker", "classifier"):
        for f in (repo / pkg).rglob("*.py"):
            hits += [f"{f.relative_to(repo)}: {m.group(0).strip()}" for m in pat.finditer(f.read_text())]
    assert hits == []


def test_vp8_key_frames_announcing_a_huge_picture_never_reach_the_decoder():
    """A 2 KB packet claiming 16383x16383 is dropped before libvpx allocates for it (500-900 MB); a real
    640x480 key frame still decodes; the sizes are read from the header as RFC 6386 lays it out."""
    from aiortc.codecs.vpx import Vp8Decoder
    from aiortc.jitterbuffer import JitterFrame

    from testkit.rtc_attacks import garbage_packets
    from testkit.rtc_peer import pre_encode, scene_frames

    compat.aiortc_vp8_size_guard()
    real = pre_encode(scene_frames("crowd", 2, seed=1, n=1), 1, n=2)
    assert compat.vp8_announced_size(real[0]) == (640, 480) and compat.vp8_announced_size(real[1]) is None
    bomb = garbage_packets(3, announce=(16383, 16383))
    assert compat.vp8_announced_size(bomb[0]) == (16383, 16383)

    def rss_mb():
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * 4096 / 2**20

    d = Vp8Decoder()
    before = rss_mb()
    peak = before
    for i, b in enumerate(bomb):
        assert d.decode(JitterFrame(data=b, timestamp=i * 3000)) == []
        peak = max(peak, rss_mb())
    assert peak - before < 50, f"RSS grew {peak - before:.0f} MB"
    frames = d.decode(JitterFrame(data=real[0], timestamp=10_000))
    assert [(f.width, f.height) for f in frames] == [(640, 480)]


def test_aiortc_negotiates_vp8_alone():
    """After the patch aiortc's video codecs are VP8 and its RTX: H.264 is neither offered nor accepted."""
    from aiortc.codecs import CODECS, get_capabilities

    assert any(c.mimeType == "video/H264" for c in CODECS["video"]) or "aiortc_vp8_only" in compat._APPLIED
    compat.aiortc_vp8_only()
    assert [c.mimeType for c in get_capabilities("video").codecs] == ["video/VP8", "video/rtx"]
    vp8 = next(c for c in CODECS["video"] if c.mimeType == "video/VP8")
    assert next(c for c in CODECS["video"] if c.mimeType == "video/rtx").parameters["apt"] == vp8.payloadType
