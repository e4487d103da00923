"""One frame's face measures from 468 face-mesh landmarks: eye openness, mouth opening, head pose.

All functions take (N, 468, 3) landmarks (x, y in frame pixels, z depth on the
scale of x, as :class:`tracker.landmarks.LandmarkModel` returns them) and give
(N,) arrays, NaN where a face has no landmarks.

* Eye aspect ratio (EAR, Soukupova & Cech 2016) per eye from six mesh points:
  (|p2-p6| + |p3-p5|) / (2 |p1-p4|), in 3D so that a turned head does not
  shorten the eye's width.  About 0.25-0.4 for open eyes, below 0.1 closed;
  smiling squints it (0.15-0.25), so states use each person's own baseline.
* Mouth opening: inner-lip gap over inner-lip width (13-14 over 78-308).
* Head pose from the model's own 3D geometry: the face's axes are the line
  between the outer eye corners (33 -> 263) and the line from forehead to chin
  (10 -> 152); yaw, pitch and roll are read from that rotation, in degrees:
  yaw > 0 when the person turns to their left (the image's right side of an
  unmirrored camera), pitch > 0 looking up, roll > 0 when the face is turned
  counter-clockwise in the image.  No 3D face model is needed.
"""
from __future__ import annotations

import numpy as np

#: Six EAR points per eye (p1..p6): outer/inner corner, two upper-lid and two lower-lid points.
RIGHT_EYE = (33, 160, 158, 133, 153, 144)  # the person's right eye (image left when facing the camera)
LEFT_EYE = (263, 387, 385, 362, 380, 373)
MOUTH = (13, 14, 78, 308)  # upper inner lip, lower inner lip, inner corners
EYE_OUTER = (33, 263)
FOREHEAD, CHIN = 10, 152
#: Points outlining each eye and the lips, for drawing.
EYE_CONTOURS = ((33, 246, 161, 160, 159, 158, 157, 173, 133, 155, 154, 153, 145, 144, 163, 7),
                (263, 466, 388, 387, 386, 385, 384, 398, 362, 382, 381, 380, 374, 373, 390, 249))
#: Beyond this |yaw| (degrees) an eye is seen edge-on: no eye measures (head pose only).
PROFILE_YAW = 40.0


def _dist(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.linalg.norm(a - b, axis=-1)


def eye_aspect_ratio(lms: np.ndarray, eye=RIGHT_EYE) -> np.ndarray:
    """(N,) EAR of one eye."""
    p = np.asarray(lms, np.float32)[:, list(eye)]
    width = _dist(p[:, 0], p[:, 3])
    with np.errstate(invalid="ignore", divide="ignore"):
        return (_dist(p[:, 1], p[:, 5]) + _dist(p[:, 2], p[:, 4])) / (2 * width)


def mouth_opening(lms: np.ndarray) -> np.ndarray:
    """(N,) inner-lip gap / inner-lip width (about 0-0.1 closed, 0.3-0.5 talking, > 0.6 yawning)."""
    p = np.asarray(lms, np.float32)[:, list(MOUTH)]
    with np.errstate(invalid="ignore", divide="ignore"):
        return _dist(p[:, 0], p[:, 1]) / _dist(p[:, 2], p[:, 3])


def head_pose(lms: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(yaw, pitch, roll) in degrees, each (N,); see the module doc for the signs."""
    p = np.asarray(lms, np.float64)
    n = len(p)
    yaw, pitch, roll = (np.full(n, np.nan, np.float32) for _ in range(3))
    if n == 0:
        return yaw, pitch, roll
    x = p[:, EYE_OUTER[1]] - p[:, EYE_OUTER[0]]  # the person's right -> left: image +x when frontal
    down = p[:, CHIN] - p[:, FOREHEAD]  # image +y when upright
    with np.errstate(invalid="ignore", divide="ignore"):
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        y = down - np.sum(down * x, axis=1, keepdims=True) * x
        y /= np.linalg.norm(y, axis=1, keepdims=True)
        z = np.cross(x, y)  # into the scene (away from the camera) when frontal
        roll[:] = np.degrees(np.arctan2(-x[:, 1], x[:, 0]))
        yaw[:] = np.degrees(np.arctan2(-z[:, 0], z[:, 2]))
        pitch[:] = np.degrees(np.arcsin(np.clip(z[:, 1], -1, 1)))
    return yaw, pitch, roll


def measures(lms: np.ndarray) -> dict[str, np.ndarray]:
    """Every per-frame measure: ``ear_r``, ``ear_l``, ``mouth_open``, ``yaw``, ``pitch``, ``roll``.

    A face turned beyond :data:`PROFILE_YAW` keeps its head pose but gets NaN eye measures.
    """
    yaw, pitch, roll = head_pose(lms)
    ear_r = eye_aspect_ratio(lms, RIGHT_EYE).astype(np.float32)
    ear_l = eye_aspect_ratio(lms, LEFT_EYE).astype(np.float32)
    profile = np.abs(yaw) > PROFILE_YAW
    ear_r[profile] = np.nan
    ear_l[profile] = np.nan
    return {"ear_r": ear_r, "ear_l": ear_l, "mouth_open": mouth_opening(lms).astype(np.float32),
            "yaw": yaw, "pitch": pitch, "roll": roll}


def eyes_in_frame(lms: np.ndarray, width: int, height: int) -> np.ndarray:
    """(N,) True where every point of both eyes (:data:`RIGHT_EYE`, :data:`LEFT_EYE`) lies inside the frame.

    A face cut by the frame's edge gets a mesh anyway (the crop is padded), but the points beyond the
    edge are guessed: its eyes can be measured only when they are in the frame."""
    p = np.asarray(lms, np.float32)
    if p.ndim != 3 or not len(p):
        return np.zeros(len(p), bool)
    e = p[:, list(RIGHT_EYE + LEFT_EYE), :2]
    with np.errstate(invalid="ignore"):
        inside = (e[..., 0] >= 0) & (e[..., 0] < width) & (e[..., 1] >= 0) & (e[..., 1] < height)
    return inside.all(axis=1)
