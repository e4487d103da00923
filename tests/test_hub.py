"""The Hub path of model loading, for real: huggingface_hub's hf_hub_download
against a local fake Hub server (HF_ENDPOINT) and a pre-populated cache.

huggingface_hub reads HF_HOME / HF_ENDPOINT / HF_HUB_OFFLINE at import, so
each scenario runs in a fresh Python process with its own environment.
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper

from classifier.spec import DEFAULT_MODEL
from tests.fakehub import FakeHub

REPO = Path(__file__).resolve().parents[1]
FER = REPO / "classifier" / "models" / "fer_mini_xception.onnx"

SCRIPT = r"""
import json, sys, time
import numpy as np
from skimage import data
from classifier.hub import load_classifier, resolve, ModelUnavailable
from classifier.spec import ModelSpec, get_spec
args = json.loads(sys.argv[1])
spec = ModelSpec.from_dict(args["spec"]) if "spec" in args else get_spec(args["name"])
out = {}
t0 = time.monotonic()
try:
    out["path"] = str(resolve(spec, token=args.get("token")))
except ModelUnavailable as e:
    out["error"] = str(e)
out["resolve_s"] = time.monotonic() - t0
clf, warn = load_classifier(spec, token=args.get("token"))
out["model"] = clf.spec.id
out["warning"] = warn
out["classes"] = list(clf.classes)
img = data.astronaut()
boxes = np.array([[175, 65, 270, 170], [175, 65, 270, 170], [300, 300, 380, 380]], np.float32)
p = clf.predict(img, boxes)
out["probs"] = p.tolist()
print("RESULT" + json.dumps(out))
"""


def run(env_extra: dict, **args) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
    env.update(env_extra)
    env["PYTHONPATH"] = str(REPO)
    r = subprocess.run([sys.executable, "-c", SCRIPT, json.dumps(args)], env=env, cwd=REPO,
                       capture_output=True, text=True, timeout=120)
    line = [l for l in r.stdout.splitlines() if l.startswith("RESULT")]
    assert line, f"subprocess failed:\n{r.stdout}\n{r.stderr[-3000:]}"
    return json.loads(line[0][len("RESULT"):])


def hub_spec(repo_id: str, filename: str, revision: str = "main") -> dict:
    d = json.loads((REPO / "classifier" / "specs" / "fer-mini-xception.json").read_text())
    d.update(id="fer-from-hub", source="hub", repo_id=repo_id, filename=filename, revision=revision, path="")
    return d


def closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def ferplus_like_model(path: Path) -> None:
    """A small ONNX model with the ONNX Model Zoo FER+ interface: input ``Input3``
    [1, 1, 64, 64] (batch fixed to 1, grey 0-255), 8 raw scores out."""
    rng = np.random.default_rng(0)
    w = rng.normal(0, 1e-3, (64 * 64, 8)).astype(np.float32)
    w[:, 7] += 2e-4  # leans to the last class (contempt)
    g = helper.make_graph(
        [helper.make_node("Reshape", ["Input3", "shape"], ["flat"]),
         helper.make_node("MatMul", ["flat", "W"], ["Plus692_Output_0"])],
        "ferplus_like",
        [helper.make_tensor_value_info("Input3", TensorProto.FLOAT, [1, 1, 64, 64])],
        [helper.make_tensor_value_info("Plus692_Output_0", TensorProto.FLOAT, [1, 8])],
        [helper.make_tensor("shape", TensorProto.INT64, [2], [1, 4096]),
         helper.make_tensor("W", TensorProto.FLOAT, w.shape, w.ravel())],
    )
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), str(path))


def test_download_from_hub_then_offline_from_cache(tmp_path):
    with FakeHub() as hub:
        commit = hub.add("test-org/fer-copy", "model.onnx", FER.read_bytes())
        env = {"HF_HOME": str(tmp_path / "hf"), "HF_ENDPOINT": hub.url}
        out = run(env, spec=hub_spec("test-org/fer-copy", "model.onnx"))
        assert "error" not in out, out
        assert out["model"] == "fer-from-hub" and out["warning"] is None
        path = Path(out["path"])
        # The standard Hub cache layout under HF_HOME, at the served commit.
        assert path.is_file() and path.read_bytes() == FER.read_bytes()
        assert f"models--test-org--fer-copy/snapshots/{commit}/model.onnx" in str(path)
        assert any(r.startswith("GET /test-org/fer-copy/resolve/main/model.onnx") for r in hub.requests)
        # Same model from the Hub gives the same answer as the embedded one: a happy astronaut.
        p = np.array(out["probs"])
        assert out["classes"][int(p[0].argmax())] == "happiness"
    # Server gone; offline mode serves the cached copy without any request.
    out2 = run({"HF_HOME": str(tmp_path / "hf"), "HF_HUB_OFFLINE": "1", "HF_ENDPOINT": hub.url},
               spec=hub_spec("test-org/fer-copy", "model.onnx"))
    assert out2["path"] == out["path"] and out2["warning"] is None
    # Also without HF_HUB_OFFLINE: an unreachable Hub falls back to the cache quickly.
    out3 = run({"HF_HOME": str(tmp_path / "hf"), "HF_ENDPOINT": f"http://127.0.0.1:{closed_port()}"},
               spec=hub_spec("test-org/fer-copy", "model.onnx"))
    assert out3["path"] == out["path"] and out3["warning"] is None


def test_revision_and_token(tmp_path):
    with FakeHub() as hub:
        hub.add("test-org/private", "model.onnx", FER.read_bytes(), revision="v1")
        hub.private["test-org/private"] = "secret-token"
        env = {"HF_HOME": str(tmp_path / "hf"), "HF_ENDPOINT": hub.url}
        no_token = run(env, spec=hub_spec("test-org/private", "model.onnx", revision="v1"))
        assert "error" in no_token and "test-org/private" in no_token["error"]
        assert no_token["model"] == DEFAULT_MODEL  # fell back to the embedded default
        assert "embedded default" in no_token["warning"]
        ok = run(env, spec=hub_spec("test-org/private", "model.onnx", revision="v1"), token="secret-token")
        assert "error" not in ok and ok["model"] == "fer-from-hub"
        assert any("/resolve/v1/model.onnx" in r for r in hub.requests)


def _ferplus_cache(tmp_path: Path) -> Path:
    """A Hub cache populated by hand with a FER+-like stand-in at the built-in spec's repo and path."""
    from classifier.spec import get_spec

    spec = get_spec("ferplus-8")
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo_dir = tmp_path / "hf" / "hub" / ("models--" + spec.repo_id.replace("/", "--"))
    target = repo_dir / "snapshots" / commit / spec.filename
    target.parent.mkdir(parents=True)
    ferplus_like_model(target)
    (repo_dir / "refs").mkdir()
    (repo_dir / "refs" / spec.revision).write_text(commit)
    return target


def test_prepopulated_cache_ferplus_spec(tmp_path):
    """The built-in ferplus-8 spec's interface (8 classes with contempt, batch fixed to 1,
    raw scores), loaded from a Hub cache populated by hand, offline, with its pin lifted."""
    from classifier.spec import get_spec

    _ferplus_cache(tmp_path)
    unpinned = {**get_spec("ferplus-8").to_dict(), "sha256": "", "size": 0}
    out = run({"HF_HOME": str(tmp_path / "hf"), "HF_HUB_OFFLINE": "1"}, spec=unpinned)
    assert out["warning"] is None and out["model"] == "ferplus-8"
    assert out["classes"] == ["neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear", "contempt"]
    p = np.array(out["probs"])
    assert p.shape == (3, 8)  # three faces through a batch-1 model
    np.testing.assert_allclose(p.sum(axis=1), 1, atol=1e-5)
    assert (p.argmax(axis=1) == 7).all()  # softmax of the raw scores, reordered to canonical


def test_a_file_that_does_not_match_the_pin_is_refused(tmp_path):
    """The built-in spec pins size and sha256: the stand-in in the cache is refused, the embedded
    default is used, and the warning says why."""
    target = _ferplus_cache(tmp_path)
    out = run({"HF_HOME": str(tmp_path / "hf"), "HF_HUB_OFFLINE": "1"}, name="ferplus-8")
    assert "refused the file of ferplus-8" in out["error"] and "35,040,571" in out["error"], out
    assert out["model"] == DEFAULT_MODEL and "embedded default" in out["warning"]
    # the same size but other bytes: refused by the sha256
    target.write_bytes(b"\0" * 35_040_571)
    out = run({"HF_HOME": str(tmp_path / "hf"), "HF_HUB_OFFLINE": "1"}, name="ferplus-8")
    assert "refused the file of ferplus-8" in out["error"] and "sha256" in out["error"], out


def test_unreachable_hub_fails_fast_with_clear_message(tmp_path):
    env = {"HF_HOME": str(tmp_path / "hf"), "HF_ENDPOINT": f"http://127.0.0.1:{closed_port()}"}
    out = run(env, name="ferplus-8")
    assert "onnxmodelzoo/legacy_models" in out["error"] and "emotion-ferplus-8.onnx" in out["error"]
    assert "local_files_only" not in out["warning"]  # huggingface_hub's advice, which no app user can act on
    # the endpoint probe found it unreachable and went cache-only: no retry back-off
    # (huggingface_hub alone retries 5 times, ~23 s; measured here: 0.3 s, see README)
    assert "not reachable" in out["error"]
    assert out["model"] == DEFAULT_MODEL and "embedded default" in out["warning"]
    off = run({"HF_HOME": str(tmp_path / "hf"), "HF_HUB_OFFLINE": "1"}, name="ferplus-8")
    assert "HF_HUB_OFFLINE" in off["error"] and "local_files_only" not in off["warning"]
