"""Gaze from the 478-point mesh's irises, relative to the head, and "looking at the camera".

Takes (N, 478, 3) landmarks (frame pixels, z on the scale of x, as
:class:`tracker.facemesh.FaceMeshModel` returns them) and gives (N,) arrays, NaN where a face has no
landmarks or is turned beyond :data:`tracker.facegeom.PROFILE_YAW` (an eye seen edge-on).

Per eye, the iris centre's offset from the midpoint of the eye corners is read in the head's own
axes (the outer-eye-corner line and the forehead-chin line of :func:`tracker.facegeom.head_pose`,
in 3D, so a turned head does not shorten it) and turned into an angle with a simple eyeball model:
half the corner-to-corner width is about 15 mm and the eyeball's radius about 12 mm, so
``sin(angle) = offset / half width * 15 / 12``.  Yaw > 0: the eyes turn to the person's left;
pitch > 0: up (the signs of the head pose, so that head + eyes is where the person looks).  Both
eyes are averaged, and :data:`PITCH_OFFSET_DEG` is taken off the pitch: the iris centre sits above the
corners' midpoint when a person looks straight ahead (the median over the real test photos, where
people mostly look into the camera, was about 8 degrees).  It is an approximation (no calibration, no per-person eye geometry): a few
degrees of bias per person are expected, which is why "looking at the camera" uses a wide cone.
"""
from __future__ import annotations

import numpy as np

from .facegeom import CHIN, EYE_OUTER, FOREHEAD, PROFILE_YAW

#: (outer corner, inner corner, iris centre) of the person's right and left eye.
EYES = ((33, 133, 468), (263, 362, 473))
EYE_HALF_WIDTH_OVER_RADIUS = 15.0 / 12.0
#: "looking at the camera": head pose plus gaze within this many degrees of the camera, both ways.
AT_CAMERA_DEG = 12.0
PITCH_OFFSET_DEG = 8.0


def iris_centres(lms: np.ndarray) -> np.ndarray:
    """(N, 2, 2) the person's right and left iris centres (x, y frame pixels); NaN without irises."""
    lms = np.asarray(lms, np.float32)
    if lms.ndim != 3 or lms.shape[1] < 478:
        return np.full((len(lms), 2, 2), np.nan, np.float32)
    return lms[:, [468, 473], :2].copy()


def gaze(lms: np.ndarray, head_yaw: np.ndarray, head_pitch: np.ndarray) -> dict[str, np.ndarray]:
    """``gaze_yaw``, ``gaze_pitch`` (degrees, relative to the head) and ``looking_at_camera`` (0/1)."""
    p = np.asarray(lms, np.float64)
    n = len(p)
    out = {k: np.full(n, np.nan, np.float32) for k in ("gaze_yaw", "gaze_pitch", "looking_at_camera")}
    if n == 0 or p.ndim != 3 or p.shape[1] < 478:
        return out
    x = p[:, EYE_OUTER[1]] - p[:, EYE_OUTER[0]]
    down = p[:, CHIN] - p[:, FOREHEAD]
    with np.errstate(invalid="ignore", divide="ignore"):
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        y = down - np.sum(down * x, axis=1, keepdims=True) * x
        y /= np.linalg.norm(y, axis=1, keepdims=True)
        yaws, pitches = [], []
        for outer, inner, iris in EYES:
            mid = (p[:, outer] + p[:, inner]) / 2
            half = np.linalg.norm(p[:, outer] - p[:, inner], axis=1) / 2
            off = p[:, iris] - mid
            sx = np.sum(off * x, axis=1) / half * EYE_HALF_WIDTH_OVER_RADIUS
            sy = np.sum(off * y, axis=1) / half * EYE_HALF_WIDTH_OVER_RADIUS
            yaws.append(np.degrees(np.arcsin(np.clip(sx, -1, 1))))
            pitches.append(-np.degrees(np.arcsin(np.clip(sy, -1, 1))) - PITCH_OFFSET_DEG)
        gy = np.mean(yaws, axis=0)
        gp = np.mean(pitches, axis=0)
    hy = np.asarray(head_yaw, np.float64)
    hp = np.asarray(head_pitch, np.float64)
    ok = np.isfinite(gy) & np.isfinite(hy) & (np.abs(hy) <= PROFILE_YAW)
    out["gaze_yaw"][ok] = gy[ok]
    out["gaze_pitch"][ok] = gp[ok]
    at = (np.abs(hy + gy) <= AT_CAMERA_DEG) & (np.abs(hp + gp) <= AT_CAMERA_DEG)
    out["looking_at_camera"][ok] = at[ok]
    return out
