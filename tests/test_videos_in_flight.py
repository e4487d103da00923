"""One video in flight per client (issue 15): a second video from a client whose first is still queued or
running is refused at join time; other clients' videos still get in; a short image is answered while a
long video runs; a client whose video is done may send the next one.

A real ``python app.py`` (``VIDEO_MAX_PROCESS_S=40`` only bounds the test); clients on their own
loopback addresses (127.0.0.x)."""
from __future__ import annotations

import json
import threading
import time

import httpx

from testkit.assets import feat_data
from testkit.hostile_video import fast_clip
from testkit.server import call_result, start_app
from webapp.guards.fairness import VideosInFlight

MSG = "You already have a video being analysed"


def _client(addr: str, url: str) -> httpx.Client:
    return httpx.Client(base_url=url, timeout=120, transport=httpx.HTTPTransport(local_address=addr))


def _upload(c: httpx.Client, data: bytes, name: str) -> dict:
    path = c.post("gradio_api/upload", files=[("files", (name, data, "application/octet-stream"))]).json()[0]
    return {"path": path, "meta": {"_type": "gradio.FileData"}}


def _video(c, f, step=3):
    return c.post("gradio_api/call/analyze_video", json={"data": [f, step, "fer-mini-xception", "standard", False]})


def test_reservations_expire_and_count_per_address_and_session():
    v = VideosInFlight(1, reserve_max_s=5.0)
    t = v.reserve(None, "1.1.1.1", "s1")
    assert t is not None and v.reserve(None, "1.1.1.1", None) is None and v.reserve(None, "2.2.2.2", "s1") is None
    assert v.reserve(None, "2.2.2.2", "s2") is not None
    assert v.count(None, "1.1.1.1", None, now=time.monotonic() + 6) == 0  # a stale reservation expires
    v.release(t)
    assert v.refused == 2


def test_one_video_in_flight_per_client(tmp_path):
    long_clip = fast_clip(tmp_path / "long.mp4", 600, "mp4", rate=30).read_bytes()  # 20 s of 320x180 faces
    short_clip = (feat_data() / "single_face.mp4").read_bytes()
    photo = (feat_data() / "multi_face.jpg").read_bytes()
    with start_app(tmp_path / "srv", {"VIDEO_MAX_PROCESS_S": "20"}) as (url, proc):
        a, b, c = (_client(f"127.0.0.{i}", url) for i in (2, 3, 4))
        fa = _upload(a, long_clip, "long.mp4")
        first = _video(a, fa, step=1)
        assert first.status_code == 200, first.text
        done: dict = {}

        def wait_a():
            done["a"] = call_result(a, "analyze_video", first.json()["event_id"])
            done["a_t"] = time.monotonic()

        ta = threading.Thread(target=wait_a)
        ta.start()
        # the same client again, with the long one still running: refused before the queue
        again = _video(a, _upload(a, short_clip, "short.mp4"))
        assert again.status_code == 429 and MSG in again.json()["detail"], again.text
        # another client's video gets in (it waits for the video slot)
        fb = _video(b, _upload(b, short_clip, "b.mp4"))
        assert fb.status_code == 200, fb.text

        # a short image is answered while the long video runs (separate slots)
        t0 = time.monotonic()
        ev = c.post("gradio_api/call/analyze_image",
                    json={"data": [_upload(c, photo, "p.jpg"), "fer-mini-xception", "standard"]})
        kind, body = call_result(c, "analyze_image", ev.json()["event_id"])
        t_img = time.monotonic()
        assert kind == "complete" and len(json.loads(body)[0]["faces"]) == 5, body[:300]
        assert "a" not in done, "the image was answered only after the long video"
        ta.join(120)
        assert done["a"][0] == "complete", done["a"][1][:300]
        print(f"\nimage answered in {t_img - t0:.2f} s while the long video ran "
              f"(video finished {done['a_t'] - t_img:.1f} s later)")
        assert call_result(b, "analyze_video", fb.json()["event_id"])[0] == "complete"
        # the first video done: the client may send the next one
        nxt = _video(a, _upload(a, short_clip, "next.mp4"))
        assert nxt.status_code == 200, nxt.text
        assert call_result(a, "analyze_video", nxt.json()["event_id"])[0] == "complete"
        from tests.test_fairness import _rss_mb

        assert _rss_mb(proc) < 1500  # memory within a bound
        for x in (a, b, c):
            x.close()


def _fn_index(c: httpx.Client, api: str) -> int:
    deps = c.get("config").json()["dependencies"]
    return next(int(d["id"]) for d in deps if d.get("api_name") == api)


def _join(c: httpx.Client, fn: int, f: dict, session: str, step: int = 3) -> httpx.Response:
    """A video the way the page and ``gradio_client`` send it: ``queue/join`` with a session hash."""
    return c.post("gradio_api/queue/join", json={"data": [f, step, "fer-mini-xception", "standard", False], "fn_index": fn,
                                                  "session_hash": session, "event_data": None, "trigger_id": None})


def test_one_video_in_flight_per_session_across_addresses(tmp_path):
    """The limit also holds by Gradio session: a second address using the same session (a user whose
    address changes, or one session shared by two machines) is refused while the first video runs;
    that address with its own session gets in."""
    long_clip = fast_clip(tmp_path / "long.mp4", 1200, "mp4", rate=30).read_bytes()
    short_clip = (feat_data() / "single_face.mp4").read_bytes()
    with start_app(tmp_path / "srv", {"VIDEO_MAX_PROCESS_S": "20"}) as (url, proc):
        a, b = (_client(f"127.0.0.{i}", url) for i in (5, 6))
        fn = _fn_index(a, "analyze_video")
        first = _join(a, fn, _upload(a, long_clip, "long.mp4"), "shared-session", step=1)
        assert first.status_code == 200, first.text
        same_session = _join(b, fn, _upload(b, short_clip, "b.mp4"), "shared-session")
        assert same_session.status_code == 429 and MSG in same_session.json()["detail"], same_session.text
        own_session = _join(b, fn, _upload(b, short_clip, "b2.mp4"), "b-session")
        assert own_session.status_code == 200, own_session.text
        # the server still answers the page's own config afterwards, and no traceback reached the log
        assert a.get("config").status_code == 200
        for x in (a, b):
            x.close()
