"""Live streams over real WebRTC against ``python app.py``: browserless aiortc peers
(:mod:`testkit.rtc_peer`) send real face crops (``testkit.synth`` ``crowd``) through fastrtc's own
signalling, each frame carrying a bar code with the peer's id and a frame counter.

Checks that every peer gets its own frames back, analysed (faces drawn), never another's, and that
users over ``LIVE_MAX_STREAMS`` are told their place in line and start in that order.  Speed is
measured by ``python -m benchmarks.live_load``, never asserted here.
"""
from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from testkit.rtc_peer import LivePeer, read_mark, scene_frames, stamp
from testkit.server import ONE_ADDRESS_MANY_CLIENTS, start_app


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    env = {"LIVE_MAX_STREAMS": "2", "LIVE_BUSY_SLOTS": "2", "LOG_LEVEL": "WARNING", **ONE_ADDRESS_MANY_CLIENTS}
    with start_app(tmp_path_factory.mktemp("live-load"), env) as (url, proc):
        yield url


@pytest.fixture(scope="module")
def scenes():
    return [scene_frames("crowd", 45, seed=s, n=4) for s in range(2)]


def test_marker_round_trip(scenes):
    f = scenes[0][0].copy()
    stamp(f, 7, 123456)
    grey = f.mean(axis=2)
    assert read_mark(grey) == (7, 123456)
    assert read_mark(grey // 3) == (7, 123456)  # dimmed (the busy notice) still reads
    grey[-10:, 40:60] = 255 - grey[-10:, 40:60]  # a label drawn over it: unreadable, never misread
    assert read_mark(grey) is None


def test_two_streams_each_get_their_own_frames_back_analysed(server, scenes):
    async def run():
        async with httpx.AsyncClient(timeout=60) as client:
            config = (await client.get(server + "config")).json()
            # the first peer encodes as it sends (as a browser does); the second sends a pre-encoded loop
            # (benchmarks.live_load --peer-video pre), whose bar codes repeat every 10 s: both must read back
            peers = [LivePeer(server, k + 1, scenes[k], pre_encoded=k == 1) for k in range(2)]
            assert all(await asyncio.gather(*(p.connect(client, config) for p in peers)))
            t_end = time.time() + 30
            while time.time() < t_end and (min(sum(r.annotated for r in p.stats.returned) for p in peers) < 40
                                           or len(peers[1].stats.sent_t) < 400):  # past one loop of 300
                await asyncio.sleep(0.5)
            await asyncio.gather(*(p.close() for p in peers))
            return peers

    peers = asyncio.run(run())
    for p in peers:
        st = p.stats
        done = [r for r in st.returned if r.annotated]
        print(f"\npeer {p.peer}: sent {len(st.sent_t)}, returned {len(st.returned)} ({len(done)} with faces drawn), "
              f"broken {st.unreadable}, repeats {st.repeats}, median latency "
              f"{sorted(r.latency_ms for r in done)[len(done) // 2] if done else None} ms")
        assert not st.foreign, f"peer {p.peer} got another stream's frames: {st.foreign[:5]}"
        assert len(done) >= 40, f"peer {p.peer}: only {len(done)} analysed frames came back"
        assert not any(r.busy for r in st.returned)
        counters = [r.counter for r in st.returned]
        assert counters == sorted(counters), "frames came back out of order"
        assert max(counters) >= 300 and st.unreadable <= 5, (max(counters), st.unreadable)


def test_users_over_the_limit_are_told_their_place_and_start_in_order(server, scenes):
    """Two streams run (the limit); the third and fourth user see their own video dimmed with their place
    in line (on the frame and as a warning); when a stream ends, the first in line starts by itself."""
    async def run():
        async with httpx.AsyncClient(timeout=60) as client:
            config = (await client.get(server + "config")).json()
            running = [LivePeer(server, k + 1, scenes[k % 2]) for k in range(2)]
            assert all(await asyncio.gather(*(p.connect(client, config) for p in running)))
            await _until(lambda: all(any(r.annotated for r in p.stats.returned) for p in running), 20)
            first, second = LivePeer(server, 3, scenes[0]), LivePeer(server, 4, scenes[1])
            assert await first.connect(client, config)
            await _until(lambda: first.stats.warnings(), 15)
            assert await second.connect(client, config)
            await _until(lambda: second.stats.warnings() and sum(r.busy for r in second.stats.returned) >= 10, 15)
            busy_before = (sum(r.busy for r in first.stats.returned), sum(r.busy for r in second.stats.returned))
            await running[0].close()  # a place frees: the first in line starts
            await _until(lambda: sum(r.annotated for r in first.stats.returned) >= 10, 20)
            await asyncio.sleep(1.0)
            n_second = sum(r.annotated for r in second.stats.returned)
            await asyncio.gather(*(p.close() for p in (running[1], first, second)))
            return first, second, busy_before, n_second

    first, second, busy_before, n_second = asyncio.run(run())
    w1, w2 = first.stats.warnings(), second.stats.warnings()
    print(f"\nthird user: {w1[0]!r}\nfourth user: {w2[0]!r}")
    assert w1[0] == ("Server busy: all 2 live streams are in use. You are next in line. Your stream starts by "
                     "itself when one ends, or try again later.")
    assert "You are number 2 in line (1 ahead of you)." in w2[0]
    assert all(b >= 10 for b in busy_before), f"busy frames before a place freed: {busy_before}"
    assert sum(r.annotated for r in first.stats.returned) >= 10, "the first in line did not start"
    assert n_second == 0, "the second in line started before the first"
    assert not first.stats.foreign and not second.stats.foreign


async def _until(pred, timeout: float) -> None:
    t_end = time.time() + timeout
    while not pred():
        assert time.time() < t_end, "timed out"
        await asyncio.sleep(0.2)
