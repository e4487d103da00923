"""MediaPipe's own ``FaceLandmarker`` as the reference for :mod:`tracker.facemesh`.

MediaPipe 1.2.2 runs a ``.task`` bundle: an uncompressed zip of the detector, the 478-point model and
the blendshape model.  :func:`bundle` makes one from the shipped files (the detector is BlazeFace short
range, the model of the original bundle), so no file from outside is needed.

:func:`tracked` isolates the landmark stage.  In video mode MediaPipe detects a face once, then takes
each frame's crop from the previous frame's landmarks (:func:`tracker.facemesh.roi_from_landmarks`).
Fed the same photo again and again, with one face, the crop settles; its landmark smoothing settles
with it.  The result is MediaPipe's landmarks and scores for a crop we can compute exactly.
"""
from __future__ import annotations

import tempfile
import zipfile
from pathlib import Path

import numpy as np

from tracker.facemesh import BLENDSHAPE_MODEL, BLENDSHAPES, LANDMARK_MODEL, MODELS

_BUNDLE: Path | None = None


def bundle() -> Path:
    """A ``face_landmarker.task`` equivalent made from the shipped model files (cached per process)."""
    global _BUNDLE
    if _BUNDLE is None or not _BUNDLE.is_file():
        out = Path(tempfile.mkdtemp(prefix="facemesh-ref-")) / "face_landmarker.task"
        with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as z:  # MediaPipe refuses a compressed zip
            z.write(MODELS / "face_detection_short_range.tflite", "face_detector.tflite")
            z.write(LANDMARK_MODEL, "face_landmarks_detector.tflite")
            z.write(BLENDSHAPE_MODEL, "face_blendshapes.tflite")
        _BUNDLE = out
    return _BUNDLE


def _result(r, w: int, h: int, i: int = 0) -> tuple[np.ndarray, np.ndarray]:
    lms = np.array([[p.x * w, p.y * h, p.z * w] for p in r.face_landmarks[i]], np.float64)
    names = [c.category_name for c in r.face_blendshapes[i]]
    assert tuple(names) == BLENDSHAPES, names
    return lms, np.array([c.score for c in r.face_blendshapes[i]], np.float64)


def tracked(rgb: np.ndarray, frames: int = 30) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """MediaPipe on ``rgb`` repeated ``frames`` times in video mode, one face: (the landmarks of the
    frame before last (478, 3) frame pixels, the last frame's landmarks, its 52 scores); None: no face.

    The last frame's crop is :func:`tracker.facemesh.roi_from_landmarks` of the frame before's
    landmarks (once the smoothing has settled)."""
    import mediapipe as mp
    from mediapipe.tasks.python import BaseOptions, vision

    h, w = rgb.shape[:2]
    opts = vision.FaceLandmarkerOptions(base_options=BaseOptions(model_asset_path=str(bundle())),
                                        output_face_blendshapes=True, num_faces=1,
                                        running_mode=vision.RunningMode.VIDEO)
    img = mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(rgb))
    prev = last = None
    with vision.FaceLandmarker.create_from_options(opts) as fl:
        for k in range(frames):
            r = fl.detect_for_video(img, k * 33)
            if not r.face_landmarks:
                return None
            prev, last = last, _result(r, w, h)
    return prev[0], last[0], last[1]


def still(rgb: np.ndarray, num_faces: int = 10) -> list[tuple[np.ndarray, np.ndarray]]:
    """MediaPipe on one photo (image mode: its own detection): [(landmarks (478, 3), scores (52,))]."""
    import mediapipe as mp
    from mediapipe.tasks.python import BaseOptions, vision

    h, w = rgb.shape[:2]
    opts = vision.FaceLandmarkerOptions(base_options=BaseOptions(model_asset_path=str(bundle())),
                                        output_face_blendshapes=True, num_faces=num_faces)
    with vision.FaceLandmarker.create_from_options(opts) as fl:
        r = fl.detect(mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(rgb)))
    return [_result(r, w, h, i) for i in range(len(r.face_landmarks))]


def face_crops(images, min_face: int = 60, out_side: int = 480):
    """Real faces one per image: each face our detector finds (``full``, box side >= ``min_face``) in
    ``images`` (paths), cut out square at 3x its box and resized to ``out_side`` (MediaPipe's
    short-range detector wants a face that fills part of the image).  Yields (name, crop RGB)."""
    import cv2

    from testkit.assets import read_rgb
    from tracker.detect import FaceDetector

    det = FaceDetector("full")
    try:
        for path in images:
            img = read_rgb(path)
            d = det.detect(img, scan_all=True)
            for k, (x1, y1, x2, y2) in enumerate(d.boxes):
                side = max(x2 - x1, y2 - y1)
                if side < min_face:
                    continue
                cx, cy, half = (x1 + x2) / 2, (y1 + y2) / 2, 1.5 * side
                m = np.array([[out_side / (2 * half), 0, out_side / 2 - cx * out_side / (2 * half)],
                              [0, out_side / (2 * half), out_side / 2 - cy * out_side / (2 * half)]])
                crop = cv2.warpAffine(img, m, (out_side, out_side), flags=cv2.INTER_AREA if half * 2 > out_side
                                      else cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
                yield f"{Path(path).name}#{k}", crop
    finally:
        det.close()
