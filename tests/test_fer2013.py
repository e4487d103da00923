"""FER2013 loader and the accuracy benchmark on it (the canonical protocol), and the specs' stated accuracy.

The FER2013 tests need the data on the machine (``testkit/fer2013.py``: $FER2013_GIT, $FER2013_DIR or the
project machines' mirror) and skip with the reason otherwise; the others always run, on EmoPy's real
FER2013 rows (``emopy-csv``) and on the committed results.
"""
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

import pipeline  # noqa: F401  (import order: pipeline before tracker)
from benchmarks import accuracy
from classifier import builtin_specs, get_spec
from testkit import fer2013
from testkit.assets import emopy_data
from testkit.labelled import FER2013, read_fer_csv

RESULTS = Path(accuracy.RESULTS) / "accuracy_fer2013.json"
need_fer = pytest.mark.skipif(fer2013.available() is not None, reason=f"FER2013 not here: {fer2013.available()}")


@need_fer
def test_canonical_splits_and_source():
    sizes = {}
    for split in ("Training", "PublicTest", "PrivateTest"):
        x, y = fer2013.load_split(split)
        assert x.dtype == np.uint8 and x.shape[1:] == (48, 48) and len(x) == len(y)
        sizes[split] = len(y)
    assert sizes == {"Training": 28709, "PublicTest": 3589, "PrivateTest": 3589}
    _, y = fer2013.load_split("PrivateTest")
    # angry 491, disgust 55, fear 528, happy 879, sad 594, surprise 416, neutral 626
    assert tuple(np.bincount(y, minlength=7)) == (491, 55, 528, 879, 594, 416, 626)
    _, yt = fer2013.load_split("Training")
    assert np.bincount(yt, minlength=7)[1] == 436  # disgust without the source repository's augmented copies
    meta = fer2013.metadata()
    assert meta["source"]["repository"] == "RecepTahirGunlu/Duygu-Tanima" and "research" in meta["licence"]
    assert len(meta["pixels_labels_sha256"]) == 64
    x, _ = fer2013.load_split("PublicTest")
    assert 60 < x.mean() < 200 and x.std() > 30  # real face images, not blanks


@need_fer
def test_training_labels_match_their_images():
    """The Training split's labels belong to its images: the embedded model, which was trained on FER2013,
    classifies 400 evenly spaced Training faces as well as it does PrivateTest (0.64 on 600 of them; 0.25 is the
    majority class, what shuffled labels would give). Guards the loader the training tool reads."""
    import onnxruntime as ort

    x, y = fer2013.load_split("Training")
    idx = np.linspace(0, len(y) - 1, 400).round().astype(int)
    spec = get_spec("fer-mini-xception")
    sess = ort.InferenceSession(str(spec.embedded_path()), providers=["CPUExecutionProvider"])
    xb = np.stack([cv2.resize(x[i], (64, 64), interpolation=cv2.INTER_LINEAR) for i in idx])
    probs = sess.run(["probs"], {"input": (xb.astype(np.float32) / 127.5 - 1.0)[:, None]})[0]
    assert float((probs.argmax(1) == y[idx]).mean()) > 0.5


@need_fer
def test_benchmark_on_a_privatetest_slice(tmp_path):
    """The benchmark through the app's classifier on 400 evenly spaced PrivateTest faces, checked
    against an independent run of the ONNX file (its own resize and scaling)."""
    out = tmp_path / "acc.json"
    assert accuracy.main(["--data", "fer2013-private", "--model", "fer-mini-xception", "--limit", "400",
                          "--out", str(out)]) == 0
    res = json.loads(out.read_text())
    (row,) = [r for r in res["results"] if r.get("available")]
    assert row["n"] == 400 and row["no_face"] == 0
    assert sum(map(sum, row["confusion"])) == 400
    assert set(row["true_classes"]) == set(FER2013)
    # the full set gives 0.582; 400 faces: standard error about 0.025
    assert 0.50 < row["accuracy"] < 0.67
    assert row["per_class"]["happiness"]["recall"] > 0.7

    import onnxruntime as ort

    x, y = fer2013.load_split("PrivateTest")
    idx = np.linspace(0, len(y) - 1, 400).round().astype(int)
    spec = get_spec("fer-mini-xception")
    sess = ort.InferenceSession(str(spec.embedded_path()), providers=["CPUExecutionProvider"])
    xb = np.stack([cv2.resize(x[i], (64, 64), interpolation=cv2.INTER_LINEAR) for i in idx])
    probs = sess.run(["probs"], {"input": (xb.astype(np.float32) / 127.5 - 1.0)[:, None]})[0]
    direct = float((probs.argmax(1) == y[idx]).mean())  # both in FER2013 order
    assert abs(direct - row["accuracy"]) <= 2 / 400


def test_benchmark_on_emopy_fer_rows_and_missing_data(tmp_path, monkeypatch):
    """Always runs: the benchmark's FER2013 code path (whole 48x48 crops) on EmoPy's real FER2013 rows,
    and a FER2013 set that is not on the machine is reported as unavailable with the reason."""
    monkeypatch.setattr(fer2013, "CACHE", tmp_path / "cache")
    monkeypatch.setenv("FER2013_GIT", str(tmp_path / "no-such-git-dir"))
    assert "does not exist" in fer2013.available()
    out = tmp_path / "acc.json"
    assert accuracy.main(["--data", "emopy-csv", "--data", "fer2013-private", "--model", "fer-mini-xception",
                          "--out", str(out)]) == 0
    res = json.loads(out.read_text())["results"]
    (missing,) = [r for r in res if r.get("data") == "fer2013-private"]
    assert missing["available"] is False and "no-such-git-dir" in missing["reason"]
    (row,) = [r for r in res if r.get("data") == "emopy-csv"]
    items = read_fer_csv(emopy_data() / "sample.csv")
    assert row["n"] == len(items) == 7
    # the same rows classified one by one through the app's classifier
    clf, _ = accuracy.load_model("fer-mini-xception")
    pred = [clf.classes[int(np.argmax(accuracy._predict_crop(clf, it.image())))] for it in items]
    correct = sum(p == it.label for p, it in zip(pred, items))
    assert row["accuracy"] == pytest.approx(correct / 7)
    for c, pc in row["per_class"].items():
        truth = [it.label for it in items]
        if pc["support"]:
            assert pc["recall"] == pytest.approx(sum(p == t == c for p, t in zip(pred, truth)) / truth.count(c))


def test_loader_keeps_only_canonical_names_and_checks_counts(tmp_path, monkeypatch):
    """Always runs: augmented copies (``...jpg0.jpg``) are left out, and a folder that is not the whole
    FER2013 is refused with the counts, never cached as if it were."""
    assert fer2013.NAME_RE.match("test/angry/PrivateTest_10131363.jpg")
    assert fer2013.NAME_RE.match("train/disgust/Training_2.jpg")
    for bad in ("train/disgust/Training_2.jpg0.jpg", "train/disgust/Training_2.png", "test/angry/PrivateTest_x.jpg",
                "validation/angry/Training_2.jpg1.jpg"):
        assert not fer2013.NAME_RE.match(bad)
    items = read_fer_csv(emopy_data() / "sample.csv")  # real FER2013 faces, as JPEG files in the Kaggle layout
    root = tmp_path / "fer"
    for i, it in enumerate(items):
        d = root / "test" / {v: k for k, v in fer2013.FOLDER_CLASS.items()}[FER2013.index(it.label)]
        d.mkdir(parents=True, exist_ok=True)
        ok, jpg = cv2.imencode(".jpg", it.image()[..., 0])
        (d / f"PrivateTest_{i}.jpg").write_bytes(jpg.tobytes())
        (d / f"PrivateTest_{i}.jpg0.jpg").write_bytes(jpg.tobytes())
    monkeypatch.setenv("FER2013_DIR", str(root))
    monkeypatch.delenv("FER2013_GIT", raising=False)
    out = tmp_path / "cache" / "fer2013.npz"
    with pytest.raises(ValueError, match="expected 28709"):
        fer2013.build_cache(out)
    assert not out.exists()


def test_specs_state_the_measured_accuracy():
    """Every built-in spec that states a FER2013 PrivateTest accuracy has it from the committed results."""
    rows = {r["model"]: r for r in json.loads(RESULTS.read_text())["results"]
            if r.get("available") and r.get("data") == "fer2013-private"}
    stated = {s.id: s for s in builtin_specs().values() if s.test_accuracy is not None}
    assert "fer-mini-xception" in stated
    for mid, s in stated.items():
        assert mid in rows, f"{mid} states test_accuracy but {RESULTS.name} has no fer2013-private row for it"
        assert rows[mid]["n"] == 3589
        assert s.test_accuracy == pytest.approx(rows[mid]["accuracy"], abs=5e-5), mid
        assert isinstance(s.version, str) and s.version
