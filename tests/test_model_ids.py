"""Clients name models by id only (a path is refused, with the same words whether it exists or not);
the operator offers more through EMOTION_MODELS_DIR; loaded models are bounded (LRU)."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from classifier.spec import builtin_specs
from testkit.assets import feat_data
from testkit.server import start_app

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    from gradio_client import Client

    tmp = tmp_path_factory.mktemp("ids")
    extra = tmp / "models"
    extra.mkdir()
    spec = json.loads((REPO / "classifier/specs/fer-mini-xception.json").read_text())
    spec.update(id="operator-fer", path=str(REPO / "classifier/models/fer_mini_xception.onnx"), source="file")
    (extra / "operator-fer.json").write_text(json.dumps(spec))
    with start_app(tmp / "app", {"EMOTION_MODELS_DIR": str(extra)}) as (url, _proc):
        yield Client(url, verbose=False), extra / "operator-fer.json"


def _refusal(client, model: str) -> str:
    from gradio_client import handle_file
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError) as e:
        client.predict(handle_file(str(feat_data() / "single_face.jpg")), model, api_name="/analyze_image")
    return str(e.value)


def test_a_path_is_never_a_model_for_a_client(app):
    client, operator_spec = app
    existing = str(REPO / "classifier/specs/ferplus-8.json")  # a real spec file on the server
    missing = "/nonexistent/evil.json"
    a, b, c = _refusal(client, existing), _refusal(client, missing), _refusal(client, str(operator_spec))
    offered = ", ".join(sorted([*builtin_specs(), "operator-fer"]))  # the built-in models and the operator's
    for msg, name in ((a, existing), (b, missing), (c, str(operator_spec))):
        assert "unknown model" in msg and f"choose one of: {offered}" in msg, msg
    # the same words whether the path exists or not (no probing of the server's files)
    assert a.replace(existing[:60], "X") == b.replace(missing[:60], "X") == c.replace(str(operator_spec)[:60], "X")
    # the server goes on serving, and the operator's model is offered by its id
    from gradio_client import handle_file

    r = client.predict(handle_file(str(feat_data() / "single_face.jpg")), "operator-fer", api_name="/analyze_image")
    assert r["model"] == "operator-fer" and len(r["faces"]) == 1


def test_live_controls_take_ids_only(monkeypatch):
    from webapp.live.session import LiveControls

    spec = str(REPO / "classifier/specs/ferplus-8.json")
    assert LiveControls.from_inputs(spec, "standard").model is None  # the preset's model instead
    assert LiveControls.from_inputs("ferplus-8", "standard").model == "ferplus-8"


def test_the_library_still_takes_a_spec_path_and_the_cache_is_bounded(tmp_path):
    from classifier import hub
    from classifier.spec import ModelSpec, get_spec

    base = get_spec(str(REPO / "classifier/specs/fer-mini-xception.json"))  # a path works in the library
    cache, other = hub.ClassifierCache(size=2), hub.ClassifierCache(size=2)
    held = []
    for k in range(cache.size + 3):
        clf, warn = cache.load(ModelSpec.from_dict({**base.to_dict(), "id": f"copy-{k}"}))
        assert warn is None and clf.spec.id == f"copy-{k}"
        held.append(clf)
        assert len(cache) <= cache.size
    assert held[0].predict  # evicted from the cache, still usable by whoever holds it
    ids = cache.ids()
    assert f"copy-{cache.size + 2}" in ids and "copy-0" not in ids
    assert len(other) == 0 and "copy-0" not in hub.DEFAULT_CACHE.ids()  # caches share nothing
    clf, _ = hub.load_classifier(str(REPO / "classifier/specs/fer-mini-xception.json"))
    assert clf.spec.id in hub.DEFAULT_CACHE.ids()  # the library's default cache
    with pytest.raises(ValueError, match="at least 1"):
        hub.ClassifierCache(size=0)
