"""The application object: one Server per set of settings, sharing nothing with another in the same
process; the settings read from the environment once; one retention sweeper for every kind of file."""
import os
import time
from pathlib import Path

import httpx
import pytest

from testkit.assets import feat_data
from testkit.browser import free_port
from webapp.server import Server
from webapp.settings import Settings


def test_settings_come_from_the_environment_once_and_parse_like_the_docs_say(tmp_path):
    s = Settings.from_env({"LIVE_MAX_STREAMS": "3", "LIVE_TIME_LIMIT": "off", "VIDEO_MAX_SECONDS": "none",
                           "DISK_QUOTA_MB": "10", "OUTPUT_DIR": str(tmp_path), "LIVE_DETECT_EVERY": "50",
                           "SPACE_ID": "me/space", "TURN_URLS": "turn:x", "UNRELATED": "1"})
    assert (s.live_max_streams, s.live_time_limit_s, s.video_max_seconds, s.disk_quota_mb) == (3, None, None, 10.0)
    assert s.output_dir == tmp_path and s.live_detect_every == 10  # clamped to 1..10
    assert s.trust_proxy and s.rtc_env == {"TURN_URLS": "turn:x"}
    assert Settings.from_env({}) == Settings()  # nothing set: the documented defaults
    s = Settings.from_env({"EMOTION_MODEL_CACHE": "1", "EMOTION_HUB_TIMEOUT": "2.5"})
    server = Server(s)
    assert (server.loader.cache.size, server.loader.cache.hub_timeout_s) == (1, 2.5)
    server.close()
    with pytest.raises(ValueError, match="LIVE_MAX_STREAMS must be a number"):
        Settings.from_env({"LIVE_MAX_STREAMS": "many"})


def _client(url: str) -> httpx.Client:
    return httpx.Client(base_url=url, timeout=120)


def _analyses_until_refused(client: httpx.Client, path: str, tries: int = 8) -> list[int]:
    data = {"data": [{"path": path, "meta": {"_type": "gradio.FileData"}}, "fer-mini-xception", "standard"]}
    return [client.post("gradio_api/call/analyze_image", json=data).status_code for _ in range(tries)]


def test_two_servers_with_different_limits_in_one_process_share_no_state(tmp_path):
    """Two real servers in this process, one allowing 1 queued request per address and 1 live stream, the
    other 6 and 3: each refuses by its own limits, and what one counts the other never sees."""
    strict = Server(Settings(queue_burst_per_client=1, queue_rate_per_client=0.001, live_max_streams=1,
                             live_dir=tmp_path / "a" / "live", output_dir=tmp_path / "a" / "out"))
    lenient = Server(Settings(queue_burst_per_client=6, queue_rate_per_client=0.001, live_max_streams=3,
                              live_dir=tmp_path / "b" / "live", output_dir=tmp_path / "b" / "out"))
    assert strict.fairness is not lenient.fairness and strict.disk is not lenient.disk
    assert strict.registry is not lenient.registry and strict.media is not lenient.media
    assert strict.loader.cache is not lenient.loader.cache and strict.media.models is strict.loader.cache
    assert strict.loader.meshes is not lenient.loader.meshes and strict.media.meshes is strict.loader.meshes
    ports = free_port(), free_port()
    try:
        for server, port in zip((strict, lenient), ports):
            server.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
        photo = (feat_data() / "single_face.jpg").read_bytes()
        codes = {}
        for name, port in zip(("strict", "lenient"), ports):
            with _client(f"http://127.0.0.1:{port}/") as c:
                path = c.post("gradio_api/upload", files=[("files", ("p.jpg", photo, "image/jpeg"))]).json()[0]
                codes[name] = _analyses_until_refused(c, path)
        assert codes["strict"] == [200] + [429] * 7, codes
        assert codes["lenient"] == [200] * 6 + [429] * 2, codes
        t_end = time.monotonic() + 60  # the accepted calls run in the queue: each server measures faces
        while time.monotonic() < t_end and not (len(strict.loader.meshes) and len(lenient.loader.meshes)):
            time.sleep(0.1)  # with its own face-mesh model
        assert len(strict.loader.meshes) == len(lenient.loader.meshes) == 1
        assert strict.fairness.buckets.refused == 7 and lenient.fairness.buckets.refused == 2
        # live slots: one stream fills the strict server; the lenient one still admits two more
        assert strict.registry.admit("s1") is not None and strict.registry.admit("s2") is None
        assert lenient.registry.admit("l1") is not None and lenient.registry.admit("l2") is not None
        assert strict.registry.status("s2")["state"] == "waiting" and lenient.registry.status("l2")["state"] == "running"
        assert "only live stream slot" in strict.registry.status("s2")["message"]
    finally:
        for server in (strict, lenient):
            for sid in list(server.registry.active):
                server.registry.release(sid)
            server.close()


def _aged(p: Path, age_s: float) -> Path:
    t = time.time() - age_s
    os.utime(p, (t, t))
    return p


def test_one_sweeper_keeps_every_kind_of_file_for_its_time(tmp_path):
    """Processed outputs, Gradio's cache and unclaimed uploads go by age; live sessions by the registry's rules;
    one thread does it all, and nothing younger than its limit is touched."""
    cache = tmp_path / "gradio"
    server = Server(Settings(output_keep_s=3600, upload_unclaimed_s=60, disk_sweep_s=30,
                             live_dir=tmp_path / "live", output_dir=tmp_path / "out"))
    server.retention.cache_dir = lambda: cache
    out = server.output_dir
    old_run, new_run = out / "20260101-000000-aaaa", out / "20261206-000000-bbbb"
    for d in (old_run, new_run):
        d.mkdir(parents=True)
        (d / "x_timeline.csv").write_text("t\n")
    _aged(old_run, 7200)
    (cache / "h1").mkdir(parents=True)
    old_file = cache / "h1" / "old.mp4"
    old_file.write_bytes(b"0")
    _aged(old_file, 7200)
    new_file = cache / "h2" / "new.jpg"
    new_file.parent.mkdir()
    new_file.write_bytes(b"1")
    unclaimed = cache / "h3" / "up.jpg"
    unclaimed.parent.mkdir()
    unclaimed.write_bytes(b"2")
    server.disk.uploaded([unclaimed])
    server.disk._uploads[str(unclaimed.resolve())] -= 120  # stored two minutes ago, never analysed
    sess = server.registry.admit("gone")
    sess.last_seen -= server.settings.live_idle_s + 1  # a tab closed without a goodbye
    done = server.retention.sweep(disk=True)
    assert not old_run.exists() and new_run.exists()
    assert not old_file.exists() and not (cache / "h1").exists() and new_file.exists()
    assert not unclaimed.exists() and done["disk"]["unclaimed"] == 1
    assert done["live"] == 1 and "gone" not in server.registry.active and server.registry.get("gone") is not None
    try:
        threads = server.start()
        assert [t.name for t in threads] == ["retention"] and server.start() == threads
    finally:
        server.close()
