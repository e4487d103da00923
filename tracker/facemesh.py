"""MediaPipe's Face Landmarker models run directly on tracked faces: 478 landmarks, then 52 blendshapes.

Two files of MediaPipe's ``face_landmarker.task`` (Apache-2.0; see ``tracker/models/README.md``),
run through ``ai-edge-litert``'s interpreter as :mod:`tracker.landmarks` runs the older 468-point
model, so the face is not detected a second time:

1. ``face_landmarks_detector.tflite``: a 256x256 RGB crop in [0, 1] -> 478 points (x, y, z in crop
   pixels: the 468 of the face mesh, same numbering, and 10 iris points, 468-472 the person's right
   iris (centre first), 473-477 the left) and a face-presence logit.  The crop is MediaPipe's: the
   tracker's box, squared on its long side, 1.5x, turned so that the detector's two eye keypoints
   are level (``DetectionsToRectsCalculator`` + ``RectTransformationCalculator`` of its graph);
   corners map to corners as its ``ImageToTensorCalculator`` does.
2. ``face_blendshapes.tflite``: 146 of those points (:data:`BLENDSHAPE_POINTS`), x and y in *frame*
   pixels (what MediaPipe's ``LandmarksToTensorCalculator`` feeds it) -> 52 scores in [0, 1], ARKit's
   names (:data:`BLENDSHAPES`; ``_neutral`` first).

Given the same crop, the landmarks agree with MediaPipe's ``FaceLandmarker`` to a fraction of a
pixel and the scores to a few thousandths (``tests/test_facemesh.py``).  The scores are sensitive to
the crop: a crop a pixel off moves some by 0.05-0.1 (measured), so the crop follows MediaPipe's rule
exactly.  One interpreter call per face and model (the blendshape model cannot be resized to a batch
under XNNPACK; the landmark model gained nothing from one).
"""
from __future__ import annotations

import hashlib
import threading
from pathlib import Path

import cv2
import numpy as np

from .detect import quiet_native_logs
from .geometry import face_roi_transforms

MODELS = Path(__file__).resolve().parent / "models"
LANDMARK_MODEL = MODELS / "face_landmarks_detector.tflite"
BLENDSHAPE_MODEL = MODELS / "face_blendshapes.tflite"
#: sha256 of each shipped file (both from face_landmarker.task, sha256 64184e22...9ff; README)
SHA256 = {
    "face_landmarks_detector.tflite": "c7d54204ce0448474c7f3fa9af494787c0965cbdd6f20fc72867e43046bd43d5",
    "face_blendshapes.tflite": "4f36dded049db18d76048567439b2a7f58f1daabc00d78bfe8f3ad396a2d2082",
}
N_POINTS = 478
INPUT = 256
ROI_SCALE = 1.5
#: Iris points: (centre, 4 on the edge) of the person's right and left iris.
RIGHT_IRIS = (468, 469, 470, 471, 472)
LEFT_IRIS = (473, 474, 475, 476, 477)

#: The 146 landmarks the blendshape model reads, in its order (MediaPipe's face_blendshapes_graph.cc).
BLENDSHAPE_POINTS = (
    0, 1, 4, 5, 6, 7, 8, 10, 13, 14, 17, 21, 33, 37, 39, 40, 46, 52, 53, 54, 55, 58, 61, 63, 65, 66, 67,
    70, 78, 80, 81, 82, 84, 87, 88, 91, 93, 95, 103, 105, 107, 109, 127, 132, 133, 136, 144, 145, 146,
    148, 149, 150, 152, 153, 154, 155, 157, 158, 159, 160, 161, 162, 163, 168, 172, 173, 176, 178, 181,
    185, 191, 195, 197, 234, 246, 249, 251, 263, 267, 269, 270, 276, 282, 283, 284, 285, 288, 291, 293,
    295, 296, 297, 300, 308, 310, 311, 312, 314, 317, 318, 321, 323, 324, 332, 334, 336, 338, 356, 361,
    362, 365, 373, 374, 375, 377, 378, 379, 380, 381, 382, 384, 385, 386, 387, 388, 389, 390, 397, 398,
    400, 402, 405, 409, 415, 454, 466, 468, 469, 470, 471, 472, 473, 474, 475, 476, 477)

#: The model's 52 outputs, in order: ARKit's blendshape names (``Left``/``Right``: the person's own side).
BLENDSHAPES = (
    "_neutral", "browDownLeft", "browDownRight", "browInnerUp", "browOuterUpLeft", "browOuterUpRight",
    "cheekPuff", "cheekSquintLeft", "cheekSquintRight", "eyeBlinkLeft", "eyeBlinkRight",
    "eyeLookDownLeft", "eyeLookDownRight", "eyeLookInLeft", "eyeLookInRight", "eyeLookOutLeft",
    "eyeLookOutRight", "eyeLookUpLeft", "eyeLookUpRight", "eyeSquintLeft", "eyeSquintRight",
    "eyeWideLeft", "eyeWideRight", "jawForward", "jawLeft", "jawOpen", "jawRight", "mouthClose",
    "mouthDimpleLeft", "mouthDimpleRight", "mouthFrownLeft", "mouthFrownRight", "mouthFunnel",
    "mouthLeft", "mouthLowerDownLeft", "mouthLowerDownRight", "mouthPressLeft", "mouthPressRight",
    "mouthPucker", "mouthRight", "mouthRollLower", "mouthRollUpper", "mouthShrugLower",
    "mouthShrugUpper", "mouthSmileLeft", "mouthSmileRight", "mouthStretchLeft", "mouthStretchRight",
    "mouthUpperUpLeft", "mouthUpperUpRight", "noseSneerLeft", "noseSneerRight")
BLENDSHAPE_INDEX = {n: i for i, n in enumerate(BLENDSHAPES)}


def check_model(path: Path) -> None:
    """Raise a clear error when a shipped model file is missing or not the expected bytes."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"face model {path} not found (see tracker/models/README.md)")
    want = SHA256.get(path.name)
    if want is None:
        return
    got = hashlib.sha256(path.read_bytes()).hexdigest()
    if got != want:
        raise ValueError(f"face model {path} has sha256 {got}, expected {want}: the file is damaged or "
                         f"not the one tracker/models/README.md names (a Git LFS pointer or a placeholder?)")


def roi_transforms(boxes: np.ndarray, keypoints: np.ndarray | None, size: int = INPUT) -> np.ndarray:
    """(N, 2, 3) affine maps from frame pixels to each face's ``size`` x ``size`` model crop."""
    return face_roi_transforms(boxes, keypoints, size, ROI_SCALE)


class FaceMeshModel:
    """478 landmarks and 52 blendshape scores per face box of RGB uint8 frames.  Thread-safe."""

    n_points = N_POINTS

    def __init__(self, landmark_path: str | Path = LANDMARK_MODEL, blendshape_path: str | Path | None = BLENDSHAPE_MODEL,
                 threads: int = 2):
        """``threads``: LiteRT's interpreter threads for the landmark model (2: one per core; the batch
        command line gives each of its workers its share).  ``blendshape_path=None``: landmarks only."""
        from ai_edge_litert.interpreter import Interpreter

        check_model(landmark_path)
        if blendshape_path is not None:
            check_model(blendshape_path)
        self._lock = threading.Lock()
        with quiet_native_logs():
            self._lm = Interpreter(model_path=str(landmark_path), num_threads=threads)
            self._lm.allocate_tensors()
            self._lm_in = self._lm.get_input_details()[0]["index"]
            outs = self._lm.get_output_details()
            self._pts = next(o["index"] for o in outs if o["shape"][-1] == N_POINTS * 3)
            self._flag = outs[1]["index"]  # MediaPipe reads the second output as the presence logit
            self._bs = None
            if blendshape_path is not None:
                self._bs = Interpreter(model_path=str(blendshape_path), num_threads=1)
                self._bs.allocate_tensors()
                self._bs_in = self._bs.get_input_details()[0]["index"]
                self._bs_out = self._bs.get_output_details()[0]["index"]
            # the first calls' cost, now
            self._invoke(np.zeros((1, INPUT, INPUT, 3), np.float32))
            if self._bs is not None:
                self._blend(np.zeros((len(BLENDSHAPE_POINTS), 2), np.float32))

    @property
    def blendshapes(self) -> bool:
        return self._bs is not None

    def _invoke(self, x: np.ndarray) -> tuple[np.ndarray, float]:
        with self._lock:
            self._lm.set_tensor(self._lm_in, x)
            self._lm.invoke()
            pts = self._lm.get_tensor(self._pts).reshape(N_POINTS, 3).copy()
            logit = float(self._lm.get_tensor(self._flag).reshape(-1)[0])
        return pts, logit

    def _blend(self, xy: np.ndarray) -> np.ndarray:
        with self._lock:
            self._bs.set_tensor(self._bs_in, np.ascontiguousarray(xy, np.float32)[None])
            self._bs.invoke()
            return self._bs.get_tensor(self._bs_out).reshape(-1).copy()

    def run_transforms(self, rgb: np.ndarray, mats: np.ndarray, todo: np.ndarray
                       ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The models on the crops ``mats`` (frame -> 256x256 crop) where ``todo``:
        ((N, 478, 3) frame pixels, (N,) presence 0-1, (N, 52) scores), NaN where not run or no face."""
        n = len(mats)
        lms = np.full((n, N_POINTS, 3), np.nan, np.float32)
        presence = np.full(n, np.nan, np.float32)
        scores = np.full((n, len(BLENDSHAPES)), np.nan, np.float32)
        for i in np.flatnonzero(todo):
            m = mats[i]
            crop = cv2.warpAffine(rgb, m, (INPUT, INPUT), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
            pts, logit = self._invoke(crop.astype(np.float32)[None] * (1.0 / 255.0))
            presence[i] = 1.0 / (1.0 + np.exp(-np.clip(logit, -80, 80)))
            if presence[i] < 0.5:
                continue
            inv = cv2.invertAffineTransform(m)
            xy = pts[:, :2] @ inv[:, :2].T + inv[:, 2]
            lms[i, :, :2] = xy
            lms[i, :, 2] = pts[:, 2] * np.sqrt(abs(np.linalg.det(inv[:, :2])))
            if self._bs is not None:
                scores[i] = self._blend(xy[list(BLENDSHAPE_POINTS)])
        return lms, presence, scores

    def run(self, rgb: np.ndarray, boxes: np.ndarray, keypoints: np.ndarray | None = None,
            min_face: int = 40, todo: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Landmarks, presence and blendshape scores of each face box (see :meth:`run_transforms`).

        ``keypoints``: the detector's (N, >=2, 2), the person's right and left eye first.
        Faces smaller than ``min_face`` pixels, or outside ``todo``, get NaN."""
        boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
        side = np.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])
        run = np.isfinite(side) & (side >= min_face)
        if todo is not None:
            run &= np.asarray(todo, bool)
        return self.run_transforms(rgb, roi_transforms(boxes, keypoints), run)


class FaceMeshCache:
    """The loaded :class:`FaceMeshModel` of each thread count, built on first use.

    A model's calls are serialised by its own lock and it keeps no per-stream state, so the pipelines of
    one owner share it.  A server owns one (:class:`webapp.models.ModelLoader`); library calls that are
    given none use the process's default, :data:`DEFAULT_MESHES`.
    """

    def __init__(self):
        self._models: dict[int, FaceMeshModel] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._models)

    def get(self, threads: int = 2) -> FaceMeshModel:
        """The face-mesh + blendshape model with ``threads`` interpreter threads."""
        with self._lock:
            threads = int(threads)
            if threads not in self._models:
                self._models[threads] = FaceMeshModel(threads=threads)
            return self._models[threads]


#: The process's default models: library calls (:class:`pipeline.Pipeline`, ``analyze_image``, the CLI)
#: that are not given a :class:`FaceMeshCache` share it.
DEFAULT_MESHES = FaceMeshCache()


def roi_from_landmarks(lms: np.ndarray, size: int = INPUT) -> np.ndarray:
    """(2, 3) frame -> crop map MediaPipe's graph uses on the next video frame for one face's
    (478, 2+) landmarks: their bounding box, turned so that the outer eye corners (33, 263) are
    level, squared on its long side, 1.5x."""
    p = np.asarray(lms, np.float64)[:, :2]
    lo, hi = p.min(0), p.max(0)
    c = (lo + hi) / 2
    dx, dy = p[263] - p[33]
    side = max(hi - lo) * ROI_SCALE
    m = cv2.getRotationMatrix2D((float(c[0]), float(c[1])), float(np.degrees(np.arctan2(dy, dx))), size / max(side, 1.0))
    m[:, 2] += (size / 2 - c[0], size / 2 - c[1])
    return m


def follow_roi(mat: np.ndarray, box_then, box_now) -> np.ndarray:
    """A crop map made when a tracked face's box was ``box_then`` (x1, y1, x2, y2), moved with the box to
    ``box_now``: shifted by the centre's motion and scaled by the change of its longer side.  The crop keeps
    the landmarks' frame (:func:`roi_from_landmarks`), whichever detector drew the boxes."""
    m = np.asarray(mat, np.float64)
    b0, b1 = np.asarray(box_then, np.float64), np.asarray(box_now, np.float64)
    c0, c1 = (b0[:2] + b0[2:]) / 2, (b1[:2] + b1[2:]) / 2
    k = max(b0[2] - b0[0], b0[3] - b0[1], 1e-3) / max(b1[2] - b1[0], b1[3] - b1[1], 1e-3)
    a = m[:, :2] * k  # frame point p -> c0 + k (p - c1) -> crop
    return np.hstack([a, (m[:, :2] @ (c0 - k * c1) + m[:, 2])[:, None]])
