"""Disk use bounded (issue 15): uploads no analysis uses are removed within minutes (here: seconds),
the caches keep a quota (oldest out first), and new work is refused while the disk is nearly full.
The upload case runs against a real ``python app.py``."""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

import httpx
import pytest

from testkit.assets import feat_data
from testkit.server import call_api, start_app
from webapp.guards.disk import RECENT_S, DiskFull, DiskGuard


def _file(p: Path, size: int, age_s: float) -> Path:
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(b"x" * size)
    t = time.time() - age_s
    os.utime(p, (t, t))
    return p


def test_quota_removes_the_oldest_first_and_never_a_recent_file(tmp_path):
    up, out = tmp_path / "gradio", tmp_path / "out"
    old = [_file(up / f"h{k}" / "a.jpg", 1000, 3600 - k * 60) for k in range(5)]  # oldest first
    recent = _file(out / "run" / "v.mp4", 3000, RECENT_S / 4)
    g = DiskGuard([up, out], quota_bytes=5000, unclaimed_s=None)
    assert g.sweep() == {"unclaimed": 0, "quota": 3}  # 8000 B -> 5000 B: the 3 oldest go
    assert [p.exists() for p in old] == [False, False, False, True, True] and recent.exists()
    assert not (up / "h0").exists()  # an upload's emptied folder goes too
    assert g.sweep() == {"unclaimed": 0, "quota": 0}


def test_free_space_check_refuses_new_work_with_a_clear_message(tmp_path):
    from webapp.media import Media, UserInputError

    g = DiskGuard(min_free_bytes=1 << 62, free_path=tmp_path)  # more than any disk has
    with pytest.raises(DiskFull, match="server is busy"):
        g.check_free()
    with pytest.raises(UserInputError, match=r"server is busy \(its disk is nearly full\)"):
        Media(disk=g, output_dir=tmp_path).analyze_image_file(str(feat_data() / "multi_face.jpg"))
    g.min_free_bytes = 0
    _, res = Media(disk=g, output_dir=tmp_path).analyze_image_file(str(feat_data() / "multi_face.jpg"),
                                                                  annotate=False)
    assert len(res["faces"]) == 5


def _call(client: httpx.Client, api: str, data: list) -> list:
    """A named endpoint with an already uploaded file (no new upload)."""
    kind, body = call_api(client, api, data)
    assert kind == "complete", body
    return json.loads(body)


def test_uploads_no_analysis_uses_are_removed_and_used_ones_stay(tmp_path):
    env = {"UPLOAD_UNCLAIMED_S": "3", "DISK_SWEEP_S": "0.5", "GRADIO_TEMP_DIR": str(tmp_path / "gradio")}
    photo = feat_data() / "multi_face.jpg"
    with start_app(tmp_path, env) as (url, _proc), httpx.Client(base_url=url, timeout=60) as client:
        files = [("files", (f"p{k}.jpg", photo.read_bytes(), "image/jpeg")) for k in range(3)]
        paths = client.post("gradio_api/upload", files=files).json()
        assert len(paths) == 3 and all(Path(p).is_file() for p in paths)
        assert all(Path(p).is_relative_to(tmp_path / "gradio") for p in paths)
        used = paths[0]
        result = _call(client, "analyze_image", [{"path": used, "meta": {"_type": "gradio.FileData"}},
                                                 "fer-mini-xception", "standard"])
        assert len(result[0]["faces"]) == 5
        t0 = time.time()
        while time.time() - t0 < 15 and any(Path(p).exists() for p in paths[1:]):
            time.sleep(0.25)
        took = time.time() - t0
        assert not any(Path(p).exists() for p in paths[1:]), "unclaimed uploads are still on disk"
        assert Path(used).is_file()  # the one an analysis used stays (Gradio's own cache expiry applies)
        print(f"\nunclaimed uploads removed {took:.1f} s after the analysis (UPLOAD_UNCLAIMED_S=3)")
        # the server still serves the next client
        again = client.post("gradio_api/upload", files=[("files", ("q.jpg", photo.read_bytes(), "image/jpeg"))])
        assert again.status_code == 200 and Path(again.json()[0]).is_file()
