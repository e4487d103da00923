"""Face landmarks: MediaPipe's 468-point face mesh model, run directly on each tracked face.

``face_landmark.tflite`` (Apache-2.0, from the mediapipe 0.10.21 wheel, see
``tracker/models/README.md``) takes a 192x192 RGB crop in [0, 1] and returns
468 points (x, y, z in crop pixels; z is depth, smaller is nearer the camera,
on roughly the scale of x) and a face-presence logit.  It runs through
``ai-edge-litert``'s interpreter, so the face is not detected a second time:
the crop comes from the tracker's box, rotated so that the detector's two eye
keypoints are level (as MediaPipe's own face-mesh graph does), 1.5x the box.

One interpreter call per face (the model's batch is 1; resizing it to a batch
gave no gain here).  Faces smaller than ``min_face`` pixels, or where the
model says there is no face, get NaN landmarks: empty values, not noise.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from common.checks import boolean, number, validate, whole
from common.native import quiet_native_logs

from .geometry import face_roi_transforms

MODEL_PATH = Path(__file__).resolve().parent / "models" / "face_landmark.tflite"
N_POINTS = 468
INPUT = 192
ROI_SCALE = 1.5  # crop side / face box side (MediaPipe's face-mesh graph uses 1.5)


@dataclass(frozen=True)
class LandmarkConfig:
    """Landmark stage settings; every value is checked when the config is made."""

    face_states: bool = True  # False: emotions only, no landmarks, eye/head measures or states
    landmark_interval_s: float = 0.0  # per face, at most one landmark run every this many seconds (0: every frame)
    landmark_min_face: int = 64  # faces smaller than this (box side, pixels) get no landmarks (eye measures
    #                              of smaller faces are noise: a smile reads as shut eyes)
    landmark_max_faces: int = 1  # at most this many faces measured per frame, the longest-waiting first (0: all);
    #                              one costs ~6 ms with the 478-point mesh and blendshapes (benchmarks/results)
    away_yaw_deg: float = 30.0  # "looking away" when |yaw| stays beyond this ...
    away_pitch_deg: float = 25.0  # ... or |pitch| beyond this ...
    away_s: float = 1.0  # ... for this long (seconds)
    drowsy_perclos: float = 0.15  # drowsy when PERCLOS over the last 60 s reaches this share

    def __post_init__(self):
        validate(self, "landmarks", {
            "face_states": boolean,
            "landmark_interval_s": number(0.0, 5.0),
            "landmark_min_face": whole(8, 4096),
            "landmark_max_faces": whole(0, 1024),
            "away_yaw_deg": number(5.0, 90.0),
            "away_pitch_deg": number(5.0, 90.0),
            "away_s": number(0.0, 60.0),
            "drowsy_perclos": number(0.01, 1.0),
        })


def roi_transforms(boxes: np.ndarray, keypoints: np.ndarray | None) -> np.ndarray:
    """(N, 2, 3) affine maps from frame pixels to the 192x192 model crop of each face."""
    return face_roi_transforms(boxes, keypoints, INPUT, ROI_SCALE)


class LandmarkModel:
    """``face_landmark.tflite`` on face boxes of RGB uint8 frames.  Thread-safe (one call at a time)."""

    def __init__(self, path: str | Path = MODEL_PATH, threads: int = 2):
        """``threads``: LiteRT's interpreter threads (2: one per core; the batch command line gives each
        of its workers its share)."""
        from ai_edge_litert.interpreter import Interpreter

        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"face landmark model {path} not found (see tracker/models/README.md)")
        with quiet_native_logs():
            self._it = Interpreter(model_path=str(path), num_threads=threads)
            self._it.allocate_tensors()
            self._in = self._it.get_input_details()[0]["index"]
            outs = {tuple(o["shape"])[-1]: o["index"] for o in self._it.get_output_details()}
            self._pts, self._flag = outs[N_POINTS * 3], outs[1]
            self._lock = threading.Lock()
            self._invoke(np.zeros((1, INPUT, INPUT, 3), np.float32))  # the first call's cost, now

    def _invoke(self, x: np.ndarray) -> tuple[np.ndarray, float]:
        with self._lock:
            self._it.set_tensor(self._in, x)
            self._it.invoke()
            pts = self._it.get_tensor(self._pts).reshape(N_POINTS, 3).copy()
            logit = float(self._it.get_tensor(self._flag).reshape(-1)[0])
        return pts, logit

    def run(self, rgb: np.ndarray, boxes: np.ndarray, keypoints: np.ndarray | None = None,
            min_face: int = 40, todo: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Landmarks of each face: ((N, 468, 3) frame pixels, NaN where none; (N,) presence 0-1).

        ``z`` is in frame pixels too (depth relative to the face).  ``todo``: a mask of the faces
        to run (others get NaN).
        """
        boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
        n = len(boxes)
        lms = np.full((n, N_POINTS, 3), np.nan, np.float32)
        presence = np.full(n, np.nan, np.float32)
        if n == 0:
            return lms, presence
        side = np.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])
        run = np.isfinite(side) & (side >= min_face)
        if todo is not None:
            run &= np.asarray(todo, bool)
        mats = roi_transforms(boxes, keypoints)
        for i in np.flatnonzero(run):
            m = mats[i]
            crop = cv2.warpAffine(rgb, m, (INPUT, INPUT), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
            x = crop.astype(np.float32)[None] * (1.0 / 255.0)
            pts, logit = self._invoke(x)
            presence[i] = 1.0 / (1.0 + np.exp(-logit))
            if presence[i] < 0.5:
                continue
            inv = cv2.invertAffineTransform(m)
            xy = pts[:, :2] @ inv[:, :2].T + inv[:, 2]
            scale = np.sqrt(abs(np.linalg.det(inv[:, :2])))
            lms[i, :, :2] = xy
            lms[i, :, 2] = pts[:, 2] * scale
        return lms, presence
