"""Fairness between clients (issue 15): one address flooding the queue cannot keep others out.

A real ``python app.py`` with its default queue (16 places, QUEUE_BURST_PER_CLIENT=6); the flooding
client and the honest one use different loopback addresses (127.0.0.2 and 127.0.0.3)."""
from __future__ import annotations

import concurrent.futures as cf
import json

import httpx

from testkit.assets import feat_data
from testkit.server import call_result, start_app
from webapp.guards.fairness import ClientBuckets, is_queued_request


def test_buckets_refill_and_are_per_address():
    b = ClientBuckets(burst=3, rate_per_s=1.0)
    assert [b.take("a", now=0.0) for _ in range(4)][:3] == [0.0, 0.0, 0.0]
    assert b.take("a", now=0.0) > 0 and b.take("b", now=0.0) == 0.0  # another address is not affected
    assert b.take("a", now=1.5) == 0.0  # refilled
    assert is_queued_request("POST", "/gradio_api/queue/join") and is_queued_request("POST", "/gradio_api/call/x")
    assert not is_queued_request("GET", "/gradio_api/queue/data") and not is_queued_request("POST", "/gradio_api/upload")


def _rss_mb(proc) -> float:
    import psutil

    p = psutil.Process(proc.pid)
    return sum(c.memory_info().rss for c in [p, *p.children(recursive=True)]) / 2**20


def _client(addr: str, url: str) -> httpx.Client:
    return httpx.Client(base_url=url, timeout=120, transport=httpx.HTTPTransport(local_address=addr))


def _upload(c: httpx.Client, data: bytes) -> str:
    return c.post("gradio_api/upload", files=[("files", ("p.jpg", data, "image/jpeg"))]).json()[0]


def test_a_flooding_address_gets_429_and_another_still_gets_in(tmp_path):
    photo = (feat_data() / "multi_face.jpg").read_bytes()
    # defaults, but for a small upload budget (3 MB, refilled at 10 KB/s) checked at the end
    with start_app(tmp_path, {"UPLOAD_BURST_MB_PER_CLIENT": "3", "UPLOAD_MB_PER_S_PER_CLIENT": "0.01"}) as (url, proc):
        flood, honest = _client("127.0.0.2", url), _client("127.0.0.3", url)
        path = _upload(flood, photo)
        data = {"data": [{"path": path, "meta": {"_type": "gradio.FileData"}}, "fer-mini-xception", "standard"]}
        with cf.ThreadPoolExecutor(24) as ex:
            answers = list(ex.map(lambda _: flood.post("gradio_api/call/analyze_image", json=data), range(24)))
        codes = [a.status_code for a in answers]
        refused = [a for a in answers if a.status_code == 429]
        assert codes.count(200) <= 8 and len(refused) >= 16, codes
        assert all("Too many requests from your address" in a.json()["detail"] for a in refused)
        # while the flood's accepted calls run, another address is served, not told "Queue is full"
        mine = _upload(honest, photo)
        ev = honest.post("gradio_api/call/analyze_image",
                         json={"data": [{"path": mine, "meta": {"_type": "gradio.FileData"}}, "fer-mini-xception",
                                        "standard"]})
        assert ev.status_code == 200, ev.text
        kind, body = call_result(honest, "analyze_image", ev.json()["event_id"])
        assert kind == "complete" and len(json.loads(body)[0]["faces"]) == 5, body[:300]
        for a in answers:
            if a.status_code == 200:
                assert call_result(flood, "analyze_image", a.json()["event_id"])[0] == "complete"
        print(f"\nflood of 24 from one address: {codes.count(200)} queued, {len(refused)} refused (429); "
              "the other address was served")
        # uploads: one address over its byte budget is refused before its body is read; another is not
        junk = b"\0" * (2 << 20)
        ups = [flood.post("gradio_api/upload", files=[("files", ("j.bin", junk, "application/octet-stream"))])
               for _ in range(2)]
        assert ups[0].status_code == 200 and ups[1].status_code == 429, [u.status_code for u in ups]
        assert "Too much uploaded from your address" in ups[1].json()["detail"]
        assert honest.post("gradio_api/upload", files=[("files", ("j.bin", junk, "x"))]).status_code == 200
        assert _rss_mb(proc) < 1500  # memory within a bound after the flood
        flood.close()
        honest.close()


def test_only_analyses_count_never_the_live_controls(tmp_path):
    """fastrtc forwards every Live control change through the queue: a slider drag must never get 429."""
    from webapp.server import Server

    server = Server(live_dir=tmp_path / "live", output_dir=tmp_path / "out")
    demo = server.build_demo()
    counts = server.fairness.counts
    ids = {fid: getattr(f.fn, "__name__", "") for fid, f in demo.fns.items()}
    to_stream = [fid for fid, name in ids.items() if name == "set_input_gradio"]
    analyses = [fid for fid, f in demo.fns.items()
                if f.api_name in ("analyze_image", "analyze_video", "ui") or str(f.api_name).startswith("ui_image")]
    assert to_stream and len(analyses) == 5
    join = "/gradio_api/queue/join"
    assert not any(counts(join, json.dumps({"fn_index": f, "data": []}).encode()) for f in to_stream)
    assert all(counts(join, json.dumps({"fn_index": f, "data": []}).encode()) for f in analyses)
    assert counts("/gradio_api/call/analyze_video", None) and not counts("/gradio_api/call/other", None)


def test_the_client_address_behind_a_trusted_proxy():
    from webapp.guards.fairness import Fairness
    from webapp.settings import Settings

    scope = {"client": ("10.0.0.9", 5000), "headers": [(b"x-forwarded-for", b"6.6.6.6, 203.0.113.7")]}
    plain = Fairness(Settings.from_env({}))
    assert plain.client_address(scope) == "10.0.0.9"  # no proxy trusted: the header is the client's word
    on_a_space = Fairness(Settings.from_env({"SPACE_ID": "user/space"}))
    assert on_a_space.client_address(scope) == "203.0.113.7"  # the entry the Space's proxy added
    assert Fairness(Settings.from_env({"TRUST_PROXY": "1"})).client_address(scope) == "203.0.113.7"


def test_gradio_client_sees_the_refusal_and_its_reason(tmp_path):
    """What a Python caller gets over its budget (docs/API.md, "Refusals"): ``httpx.HTTPStatusError`` with
    status 429 and the server's sentence in the response's ``detail``; after the wait, calls go through."""
    from gradio_client import Client, handle_file

    photo = str(feat_data() / "single_face.jpg")
    with start_app(tmp_path, {"QUEUE_BURST_PER_CLIENT": "1", "QUEUE_RATE_PER_CLIENT": "0.5"}) as (url, proc):
        client = Client(url, verbose=False)
        first = client.predict(handle_file(photo), api_name="/analyze_image")
        assert len(first["faces"]) == 1
        try:
            client.predict(handle_file(photo), api_name="/analyze_image")
        except httpx.HTTPStatusError as exc:
            assert exc.response.status_code == 429
            assert "Too many requests from your address" in exc.response.json()["detail"]
        else:
            raise AssertionError("a second call within the budget's refill time was not refused")
        import time

        time.sleep(2.2)  # one token back at 0.5 a second
        again = client.predict(handle_file(photo), api_name="/analyze_image")
        assert len(again["faces"]) == 1
